#!/usr/bin/env bash
# gpu_bundle.sh DIR PROGRAM...: a folder that runs on a machine with CUDA but
# none of our Debian packages (a lent GPU machine): DIR/bin/ holds the
# programs, DIR/lib/ every shared library they load except the C library,
# the GPU driver and CUDA's own libraries (cuBLAS is hundreds of MB and is
# on such machines; cudart is linked statically). The programs find DIR/lib
# through their $ORIGIN/../lib rpath (kernels_cuda/cuda.mk). Then checks
# with ldd that nothing else is needed, and packs DIR.tar.gz (made for the
# device tool's 64 MiB carry limit). Called by `make gpu-bundle`.
set -eu
dir=$1; shift
rm -rf "$dir" "$dir.tar.gz"
mkdir -p "$dir/bin" "$dir/lib"
# what a target machine provides itself
# what a target machine provides itself (libgcc_s: every Linux; ours needs glibc 2.35)
system='^(linux-vdso|ld-linux|libc|libm|libpthread|libdl|librt|libresolv|libutil|libgcc_s|libstdc\+\+|libcuda|libcublas|libcublasLt|libcudart|libnvidia)[.-]'
for p in "$@"; do
    cp "$p" "$dir/bin/"
    ldd "$p" | awk '/=>/ && $3 ~ /^\// {print $1, $3}' | while read -r name path; do
        [[ $name =~ $system ]] && continue
        [ -e "$dir/lib/$name" ] || cp -L "$path" "$dir/lib/$name"
    done
done
# every library a bundled library needs must be bundled or a system one
bad=0
for f in "$dir"/bin/* "$dir"/lib/*; do
    while read -r name path; do
        [[ $name =~ $system ]] && continue
        if [ ! -e "$dir/lib/$name" ]; then echo "gpu_bundle: $f needs $name ($path), not bundled" >&2; bad=1; fi
    done < <(ldd "$f" 2>/dev/null | awk '/=>/ {print $1, $3}')
done
[ $bad = 0 ] || exit 1
# and the programs must resolve their bundled libraries from DIR/lib (not only the build machine's)
for p in "$dir"/bin/*; do
    readelf -d "$p" | grep -q 'ORIGIN/../lib' || { echo "gpu_bundle: $p has no \$ORIGIN/../lib rpath" >&2; exit 1; }
done
# the newest glibc any bundled file asks for: the target needs at least that
glibc=$(for f in "$dir"/bin/* "$dir"/lib/*; do objdump -T "$f" 2>/dev/null | grep -o 'GLIBC_[0-9.]*'; done | sort -V | tail -1)
echo "gpu_bundle: the target machine needs ${glibc:-no particular glibc} or newer (and libgcc_s, CUDA 13's libcublas, a driver for CUDA 13)"
tar -C "$(dirname "$dir")" -czf "$dir.tar.gz" "$(basename "$dir")"
echo "gpu_bundle: $dir ($(ls "$dir/bin" | wc -l) programs, $(ls "$dir/lib" | wc -l) libraries), $dir.tar.gz $(du -h "$dir.tar.gz" | cut -f1)"
