#!/usr/bin/env bash
# install-deps.sh: installs what viscnn needs from Debian 12's packages
# (sudo when not root). Safe to run again: apt skips what is there.
set -e
pkgs="build-essential pkg-config libopenblas-dev libopenblas0-openmp liblapacke-dev libpng-dev zlib1g-dev libjpeg62-turbo-dev
libcjson-dev python3-torch python3-torchvision python3-numpy python3-pil python3-skimage opencv-doc
dataset-fashion-mnist darknet"
missing=""
for p in $pkgs; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -z "$missing" ]; then echo "install-deps: all packages present"; exit 0; fi
echo "install-deps: installing$missing"
SUDO=""
[ "$(id -u)" = 0 ] || SUDO=sudo
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q $missing
