#!/usr/bin/env bash
# install-deps.sh: installs what viscnn needs from Debian 12's packages
# (sudo when not root), then the browser GUI's JavaScript libraries from npm
# into web/node_modules, exactly as web/package-lock.json pins them (npm ci).
# Safe to run again: apt skips what is there, npm ci runs only when
# web/node_modules is missing or older than the lock file.
set -e
cd "$(dirname "$0")/.."
pkgs="build-essential pkg-config libopenblas-dev libopenblas0-openmp liblapacke-dev libpng-dev zlib1g-dev libjpeg62-turbo-dev
libcjson-dev libmicrohttpd-dev libfftw3-dev chromium python3-torch python3-torchvision python3-numpy python3-pil python3-skimage opencv-doc
dataset-fashion-mnist darknet"
# OpenMPI: make MPI=1 and its tests (tests/test_mpi.py, docs/mpi.md)
pkgs="$pkgs libopenmpi-dev openmpi-bin"
# clang with its sanitiser and libFuzzer runtimes, valgrind: make test SAN=1, make fuzz (issue 14)
pkgs="$pkgs clang libclang-rt-14-dev valgrind"
missing=""
for p in $pkgs; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
# Node.js and npm (web/: three.js for the page, playwright-core for the
# browser tests): Debian's, unless a node with npm is already installed
command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 || missing="$missing nodejs npm"
if [ -z "$missing" ]; then echo "install-deps: all packages present"
else
    echo "install-deps: installing$missing"
    SUDO=""
    [ "$(id -u)" = 0 ] || SUDO=sudo
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get update -q
    $SUDO apt-get install -y -q $missing
fi
if [ ! -f web/node_modules/.package-lock.json ] || [ web/package-lock.json -nt web/node_modules/.package-lock.json ]; then
    echo "install-deps: npm ci in web/ (three.js, playwright-core, pinned by web/package-lock.json)"
    (cd web && npm ci --no-audit --no-fund)
fi
