#!/usr/bin/env bash
# test_cli.sh: end-to-end CLI checks on a converted torchvision AlexNet
# (seeded weights) and real photographs from python3-skimage's data folder.
set -u
cd "$(dirname "$0")/.."
PY=/usr/bin/python3
V=${VISCNN:-bin/viscnn}
D=build/testdata/cli
mkdir -p "$D"
ok()   { echo "ok   $*"; }
fail() { echo "FAIL $*"; }
check() { local name=$1; shift; if "$@"; then ok "$name"; else fail "$name"; fi; }

IMGDIR=$($PY -c 'import skimage, os; print(os.path.join(os.path.dirname(skimage.__file__), "data"))' 2>/dev/null)
imgs=()
for f in chelsea.png coffee.png astronaut.png; do [ -f "$IMGDIR/$f" ] && imgs+=("$IMGDIR/$f"); done
[ ${#imgs[@]} -ge 2 ] || fail "cli: photographs not found in python3-skimage's data folder ($IMGDIR)"

M=$D/alexnet.safetensors
if [ ! -f "$M" ] || [ tools/torch2viscnn.py -nt "$M" ]; then
    $PY tools/torch2viscnn.py --torchvision alexnet --seed 0 -o "$M" > "$D/convert.log" 2>&1
fi
check "cli convert alexnet (tools/torch2viscnn.py)" test -s "$M"

out=$($V info "$M" 2>&1); rc=$?
check "cli info alexnet: exit 0, 5 conv layers, 2,000,000+ edges listed" \
    test $rc = 0 -a "$(grep -c ' conv2d ' <<< "$out")" = 5 -a -n "$(grep '^edges (2-D conv kernels): ' <<< "$out")"

# predict on photographs, saving the exact preprocessed batch it used
pred=$($V predict "$M" "${imgs[@]}" --save-input "$D/x.npy" 2>&1); rc=$?
check "cli predict alexnet on ${#imgs[@]} photographs: exit 0" test $rc = 0
ours=$(awk '/^  [0-9]\./ {printf "%s ", $2} /^[^ ]/ && NR > 1 {print ""} END {print ""}' <<< "$pred" | sed 's/ *$//; /^$/d')
theirs=$($PY tests/torch_top5.py "$M" "$D/x.npy" alexnet 2>&1)
echo "# viscnn top-5:  $(tr '\n' '|' <<< "$ours")"
echo "# PyTorch top-5: $(tr '\n' '|' <<< "$theirs")"
check "cli predict top-5 indices equal PyTorch's on the same preprocessed input" test "$ours" = "$theirs"
check "cli predict prints labels (ImageNet class names)" grep -q '[a-z]' <<< "$(grep '^  1\.' <<< "$pred" | head -1 | cut -c20-)"

# forward: raw logits and one layer, compared with PyTorch in tests/torch_top5.py --forward
$V forward "$M" --input "$D/x.npy" -o "$D/logits.npy"; rc1=$?
$V forward "$M" --input "$D/x.npy" --layer features.3 -o "$D/f3.npy"; rc2=$?
cmp=$($PY tests/torch_top5.py "$M" "$D/x.npy" alexnet --forward "$D/logits.npy" --layer features.3 "$D/f3.npy" 2>&1)
echo "# $cmp"
check "cli forward logits and --layer features.3 match PyTorch (rel err <= 1e-4)" test $rc1 = 0 -a $rc2 = 0 -a "${cmp%% *}" = match

# usage errors: exit 2 with one line
for args in "" "bogus" "info" "info /nonexistent.safetensors" "forward $M --input $D/x.npy" \
            "forward $M --input $D/x.npy --layer nope -o $D/n.npy" "predict $M --top 0 ${imgs[0]}" "info $M --frobnicate 1"; do
    err=$($V $args 2>&1 >/dev/null); rc=$?
    check "cli usage error 'viscnn $args' -> exit 2, one line" test $rc = 2 -a "$(wc -l <<< "$err")" = 1 -a -n "$err"
done

# --device (issue 17): cpu gives the same bytes as no flag; cuda on this CPU
# build is refused with one line saying why; a command that computes nothing
# refuses the flag
$V forward "$M" --input "$D/x.npy" --device cpu -o "$D/logits_cpu.npy"; rc=$?
check "cli forward --device cpu: exit 0, output identical to no --device" test $rc = 0 -a -n "$(cmp "$D/logits.npy" "$D/logits_cpu.npy" && echo same)"
err=$($V forward "$M" --input "$D/x.npy" --device cuda -o "$D/logits_cuda.npy" 2>&1 >/dev/null); rc=$?
check "cli forward --device cuda without a CUDA build: exit 2, one line naming make CUDA=1, no output file" \
    test $rc = 2 -a "$(wc -l <<< "$err")" = 1 -a ! -e "$D/logits_cuda.npy" -a -n "$(grep 'make CUDA=1' <<< "$err")"
err=$($V info "$M" --device cpu 2>&1 >/dev/null); rc=$?
check "cli info --device cpu: exit 2 (info computes nothing on a device)" test $rc = 2 -a "$(wc -l <<< "$err")" = 1
