#!/usr/bin/env bash
# abi-symbols.sh SO: the dynamic symbols a libviscnn.so defines, one a line,
# sorted, after a header naming its soname; abi/symbols.txt is this output
# for the committed library (tests/test_abi.sh checks it). Regenerate with
#   scripts/abi-symbols.sh build/libviscnn.so.MAJOR.MINOR > abi/symbols.txt
set -eu
so=$1
echo "# soname $(readelf -d "$so" | sed -n 's/.*Library soname: \[\(.*\)\]/\1/p')"
echo "# the public API's exported symbols; a symbol may leave this list only with a major version bump"
nm -D --defined-only "$so" | awk '{print $NF}' | sort
