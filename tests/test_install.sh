#!/usr/bin/env bash
# test_install.sh: viscnn as an installed C library (issue 21). Installs into a
# temporary DESTDIR, builds every example against the installed files alone
# (pkg-config, static and shared), runs each on the default model and checks
# it against bin/viscnn on the same input; then uninstalls and checks nothing
# it installed is left. Needs bin/viscnn and data/ (make, make data).
set -u
cd "$(dirname "$0")/.."
M=models/fashion.safetensors
IMG=data/fashion/sneaker/00009.png
DIR=data/fashion/sneaker
T=$(mktemp -d /tmp/viscnn-install.XXXXXX)
trap 'rm -rf "$T"' EXIT
fails=0
ok()   { echo "ok   $1"; }
fail() { echo "FAIL $1: $2"; fails=$((fails + 1)); }

[ -f "$IMG" ] || { fail "inputs" "$IMG missing (make data)"; exit 1; }
D=$T/root P=/usr/local
if make -s install DESTDIR="$D" PREFIX=$P > "$T/install.log" 2>&1; then ok "make install DESTDIR=… PREFIX=$P"
else fail "make install" "$(tail -3 "$T/install.log")"; exit 1; fi
L=$D$P/lib
for f in bin/viscnn include/viscnn.h lib/libviscnn.a lib/libviscnn.so lib/libviscnn.so.0 lib/pkgconfig/viscnn.pc share/doc/viscnn/README.md; do
    [ -e "$D$P/$f" ] || fail "installed $f" "missing"
done
so=$(ls "$L"/libviscnn.so.0.* 2>/dev/null)
[ -f "$so" ] && [ "$(readlink "$L/libviscnn.so.0")" = "$(basename "$so")" ] && [ "$(readlink "$L/libviscnn.so")" = libviscnn.so.0 ] \
    && ok "lib: $(basename "$so") with links libviscnn.so.0 and libviscnn.so" || fail "shared library links" "$(ls -l "$L")"
soname=$(readelf -d "$so" | sed -n 's/.*Library soname: \[\(.*\)\]/\1/p')
[ "$soname" = libviscnn.so.0 ] && ok "soname $soname" || fail "soname" "got '$soname'"
ext=$(nm --defined-only --extern-only "$L/libviscnn.a" 2>/dev/null | awk 'NF == 3 {print $3}')
[ -n "$ext" ] && [ -z "$(grep -v '^vc_' <<< "$ext")" ] && ok "lib/libviscnn.a defines only vc_* global symbols ($(wc -l <<< "$ext"))" \
    || fail "libviscnn.a symbols" "not vc_*: $(grep -v '^vc_' <<< "$ext" | head -5 | tr '\n' ' ')"
[ ! -e "$D$P/include/viscnn_internal.h" ] && ok "only the public header is installed" || fail "headers" "viscnn_internal.h installed"

# pkg-config on the installed .pc, its prefix moved into DESTDIR
pc() { PKG_CONFIG_PATH=$L/pkgconfig pkg-config --define-variable=prefix="$D$P" "$@" viscnn; }
[ "$(pc --modversion)" = "$(sed -n 's/^#define VISCNN_VERSION_STRING "\(.*\)"/\1/p' include/viscnn.h)" ] \
    && ok "pkg-config --modversion $(pc --modversion)" || fail "pkg-config" "$(pc --modversion 2>&1)"
for ex in classify edges_npy top_kernels; do
    # the examples are copied out of the tree so that nothing but the installed files can be found
    cp "examples/$ex.c" "$T/"
    if cc -Wall -Wextra -Werror "$T/$ex.c" $(pc --cflags --libs) -lm -o "$T/$ex.shared" 2> "$T/cc.log"; then
        ok "$ex: cc \$(pkg-config --cflags --libs viscnn), shared"
    else fail "$ex shared build" "$(head -3 "$T/cc.log")"; fi
    static=$(pc --libs --static | sed 's/-lviscnn/-Wl,-Bstatic -lviscnn -Wl,-Bdynamic/')
    if cc -Wall -Wextra -Werror "$T/$ex.c" $(pc --cflags) $static -lm -o "$T/$ex.static" 2> "$T/cc.log"; then
        ok "$ex: cc \$(pkg-config --cflags --libs --static viscnn), libviscnn.a"
    else fail "$ex static build" "$(head -3 "$T/cc.log")"; fi
done
# the shared build loads the installed library; the static one needs none
if LD_LIBRARY_PATH=$L ldd "$T/classify.shared" | grep -q "libviscnn.so.0 => $L/libviscnn.so.0" \
   && ! ldd "$T/classify.static" | grep -q libviscnn; then ok "shared build loads $L/libviscnn.so.0; static build loads no libviscnn"
else fail "ldd" "$(LD_LIBRARY_PATH=$L ldd "$T/classify.shared" | grep viscnn; ldd "$T/classify.static" | grep viscnn)"; fi

export LD_LIBRARY_PATH=$L
bin/viscnn predict $M "$IMG" --top 5 > "$T/predict.cli"
bin/viscnn edges $M --layer features.3 --image "$IMG" --grad --target class:7 -o "$T/cli.npy" 2> /dev/null
bin/viscnn edges $M --layer features.6 --image "$IMG" --out 0,5,63 --grad --target loss -o "$T/cli2.npy" 2> /dev/null
bin/viscnn importance $M --images "$DIR" --target class:7 -o "$T/scores.csv" 2> /dev/null
# the CLI's ten best edge scores, ranked as top_kernels ranks (ties: file order)
grep '^edge,' "$T/scores.csv" | awk -F, '{print NR, $2, $3, $4, $5}' | sort -k5,5gr -k1,1n | head -10 | cut -d' ' -f2- > "$T/top.cli"
for kind in shared static; do
    "$T/classify.$kind" $M "$IMG" 5 > "$T/predict.$kind" && cmp -s "$T/predict.$kind" "$T/predict.cli" \
        && ok "classify ($kind) prints what viscnn predict prints" || fail "classify ($kind)" "$(diff "$T/predict.$kind" "$T/predict.cli" | head -4)"
    "$T/edges_npy.$kind" $M "$IMG" features.3 class:7 "$T/ex.npy" && cmp -s "$T/ex.npy" "$T/cli.npy" && cmp -s "$T/ex.grad.npy" "$T/cli.grad.npy" \
        && ok "edges_npy ($kind) features.3 class:7: maps and gradients byte-identical to viscnn edges --grad" \
        || fail "edges_npy ($kind) features.3" "the .npy files differ from the CLI's"
    "$T/edges_npy.$kind" $M "$IMG" features.6 loss "$T/ex2.npy" 0,5,63 && cmp -s "$T/ex2.npy" "$T/cli2.npy" && cmp -s "$T/ex2.grad.npy" "$T/cli2.grad.npy" \
        && ok "edges_npy ($kind) features.6 --out 0,5,63 loss: byte-identical to the CLI's" \
        || fail "edges_npy ($kind) features.6" "the .npy files differ from the CLI's"
    "$T/top_kernels.$kind" $M "$DIR" 7 > "$T/top.$kind"
    # the CLI's CSV has 7 significant digits: compare names exactly, scores to 1e-6 relative
    if [ "$(wc -l < "$T/top.$kind")" = 10 ] && paste -d' ' "$T/top.$kind" "$T/top.cli" | awk '{
            if ($1 != $5 || $2 != $6 || $3 != $7) exit 1
            d = $4 - $8; if (d < 0) d = -d; if (d > 1e-6 * ($8 < 0 ? -$8 : $8) + 1e-12) exit 1 }'; then
        ok "top_kernels ($kind) class 7 over $DIR: the CLI's ten best edges, same order and scores"
    else fail "top_kernels ($kind)" "$(paste -d' ' "$T/top.$kind" "$T/top.cli" | head -3)"; fi
done
"$T/classify.shared" $M /nonexistent.png > /dev/null 2> "$T/err"; rc=$?
[ $rc = 2 ] && grep -q '/nonexistent.png' "$T/err" && ok "classify on a missing image: exit 2, the error names the file" \
    || fail "classify missing image" "rc $rc: $(cat "$T/err")"

if make -s uninstall DESTDIR="$D" PREFIX=$P > /dev/null 2>&1 && [ -z "$(find "$D" -type f -o -type l)" ]; then
    ok "make uninstall removes every installed file"
else fail "make uninstall" "left: $(find "$D" -type f -o -type l | head -5)"; fi
exit $((fails > 0))
