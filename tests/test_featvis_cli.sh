#!/usr/bin/env bash
# test_featvis_cli.sh: viscnn featvis end to end on the default model —
# byte-identical PNGs for the same seed, the cache, the trace JSON, --layer
# --all (sheet + one PNG per node), and bad input (exit 2, one line, no PNG).
set -u
cd "$(dirname "$0")/.."
V=bin/viscnn
M=models/fashion.safetensors
D=build/testdata/featvis_cli
rm -rf "$D"; mkdir -p "$D"
ok()   { echo "ok   $*"; }
fail() { echo "FAIL $*"; }
check() { local name=$1; shift; if "$@"; then ok "$name"; else fail "$name"; fi; }

$V featvis $M --node features.6:3 --steps 64 --seed 7 --no-cache -o $D/a.png --trace $D/a.json 2> $D/a.log; ra=$?
$V featvis $M --node features.6:3 --steps 64 --seed 7 --no-cache -o $D/b.png 2> $D/b.log; rb=$?
$V featvis $M --node features.6:3 --steps 64 --seed 8 --no-cache -o $D/c.png 2> $D/c.log; rc=$?
check "featvis reproducible: --seed 7 twice gives byte-identical PNGs, --seed 8 another" \
    test $ra = 0 -a $rb = 0 -a $rc = 0 -a -s $D/a.png && cmp -s $D/a.png $D/b.png && ! cmp -s $D/a.png $D/c.png
check "featvis trace JSON: 64 per-step objectives and the final objective without transforms" \
    /usr/bin/python3 -c "import json,sys; d=json.load(open('$D/a.json')); sys.exit(not (len(d['trace'])==64 and isinstance(d['final'], float) and d['node']==3 and d['layer']=='features.6'))"
check "featvis PNG: 28x28 grayscale, the model's own input size" \
    /usr/bin/python3 -c "from PIL import Image; im=Image.open('$D/a.png'); import sys; sys.exit(not (im.size==(28,28) and im.mode=='L'))"

# the cache: a second request is a file read, identical bytes
$V featvis $M --edge features.3:2:7 --steps 64 --cache $D/cache -o $D/e1.png --trace $D/e1.json 2> $D/e1.log; r1=$?
t0=$(date +%s%N)
$V featvis $M --edge features.3:2:7 --steps 64 --cache $D/cache -o $D/e2.png --trace $D/e2.json 2> $D/e2.log; r2=$?
t1=$(date +%s%N)
check "featvis cache: the second request is served from the cache (byte-identical PNG and trace, $(( (t1 - t0) / 1000000 )) ms)" \
    test $r1 = 0 -a $r2 = 0 && grep -q "from the cache" $D/e2.log && cmp -s $D/e1.png $D/e2.png && cmp -s $D/e1.json $D/e2.json
$V featvis $M --edge features.3:2:7 --steps 64 --lr 0.04 --cache $D/cache -o $D/e3.png 2> $D/e3.log
check "featvis cache: another setting (--lr) is another key" test -s $D/e3.png && ! grep -q "from the cache" $D/e3.log

# a layer as one batch
$V featvis $M --layer features.3 --all --steps 32 --cache $D/cache -o $D/all 2> $D/all.log; r=$?
n=$(ls $D/all/features.3_*.png 2>/dev/null | wc -l)
check "featvis --layer features.3 --all: a contact sheet and 32 per-node PNGs, progress reported" \
    test $r = 0 -a "$n" = 32 -a -s $D/all/features.3.png && grep -q "100%" $D/all.log
$V featvis $M --layer features.3 --all --batch 12 --steps 32 --no-cache -o $D/all12 2> $D/all12.log; r=$?
n=$(ls $D/all12/features.3_*.png 2>/dev/null | wc -l)
check "featvis --layer features.3 --all --batch 12: 32 nodes in 3 batches, the sheet and 32 PNGs, progress to 100% once" \
    test $r = 0 -a "$n" = 32 -a -s $D/all12/features.3.png && grep -q "in 3 batches of up to 12" $D/all12.log && \
    test "$(grep -c "100%" $D/all12.log)" = 1
$V featvis $M --node features.3:5 --steps 32 --cache $D/cache -o $D/one.png 2> $D/one.log
check "featvis --all and --node share the cache: node features.3:5 alone is a cache hit, the same picture" \
    grep -q "from the cache" $D/one.log && cmp -s $D/one.png $D/all/features.3_5.png

# bad input: exit 2, one line naming the argument, no PNG left behind
bad() {
    local name=$1 want=$2; shift 2
    rm -f $D/bad.png $D/bad.png.*
    local err; err=$("$@" 2>&1 >/dev/null); local rc=$?
    local lines; lines=$(printf '%s\n' "$err" | grep -c .)
    local left; left=$(ls $D/bad.png* 2>/dev/null | wc -l)
    if [ $rc = 2 ] && [ "$lines" = 1 ] && [ "$left" = 0 ] && grep -q -- "$want" <<< "$err"; then ok "featvis bad input: $name ($err)"
    else fail "featvis bad input: $name: exit $rc, $lines lines, $left files left: $err"; fi
}
bad "a node that does not exist" "16 channels\|32 channels" $V featvis $M --node features.3:999 --no-cache -o $D/bad.png
bad "a layer that does not exist" "no layer" $V featvis $M --node features.99:1 --no-cache -o $D/bad.png
bad "an edge that does not exist" "input channels" $V featvis $M --edge features.3:1:32 --no-cache -o $D/bad.png
bad "a malformed edge" "LAYER:OUT:IN" $V featvis $M --edge features.3:1 --no-cache -o $D/bad.png
bad "a layer that is not a conv" "not a conv2d layer" $V featvis $M --node features.1:0 --no-cache -o $D/bad.png
bad "an edge of the input" "no kernels" $V featvis $M --edge input:0:0 --no-cache -o $D/bad.png
bad "--steps 0" "steps" $V featvis $M --node features.3:1 --steps 0 --no-cache -o $D/bad.png
bad "--size smaller than the receptive field" "receptive field" $V featvis $M --node features.8:1 --size 20 --no-cache -o $D/bad.png
bad "--size larger than the model's input" "larger than the model" $V featvis $M --node features.8:1 --size 40 --no-cache -o $D/bad.png
bad "--lr 0" "lr" $V featvis $M --node features.3:1 --lr 0 --no-cache -o $D/bad.png
bad "--batch without --all" "needs --layer" $V featvis $M --node features.3:1 --batch 4 --no-cache -o $D/bad.png
bad "--batch 0" "batch" $V featvis $M --layer features.3 --all --batch 0 --no-cache -o $D/bad.png
rm -f $D/bad.png
err=$($V featvis $M --node features.3:1 --steps 8 --no-cache -o /nonexistent-dir/x.png 2>&1 >/dev/null); rc=$?
check "featvis bad input: an unwritable output path: exit 2, one line ($err)" \
    test $rc = 2 -a "$(printf '%s\n' "$err" | grep -c .)" = 1 -a ! -e /nonexistent-dir/x.png
mkdir -p $D/ro && touch $D/ro/keep
err=$($V featvis $M --node features.3:1 --steps 8 --no-cache -o $D/ro 2>&1 >/dev/null); rc=$?
check "featvis bad input: an output that is a folder: exit 2, one line ($err)" \
    test $rc = 2 -a "$(printf '%s\n' "$err" | grep -c .)" = 1 -a "$(ls $D/ro | wc -l)" = 1
err=$($V featvis $M --node features.3:1 --steps 8 --no-cache -o $D/t.png --trace /nonexistent-dir/t.json 2>&1 >/dev/null); rc=$?
check "featvis bad input: an unwritable trace path: exit 2, one line, no PNG either ($err)" \
    test $rc = 2 -a "$(printf '%s\n' "$err" | grep -c .)" = 1 -a ! -e $D/t.png

# the same paths under AddressSanitizer + UBSan (make test builds build/asan/viscnn)
A=build/asan/viscnn
if [ -x $A ]; then
    log=$D/asan.log; : > $log; r=0
    for args in "--node features.3:5" "--edge features.6:1:2 --trace $D/asan.json" "--node input:0" \
                "--node features.8:3 --negative --neuron --size 26" "--layer features.0 --all" "--layer features.0 --all"; do
        $A featvis $M $args --steps 8 --cache $D/asan-cache -o $D/asan-out$([ "${args#--layer}" != "$args" ] || echo .png) >> $log 2>&1 || r=1
    done
    $A featvis $M --node features.3:999 -o $D/asan-bad.png >> $log 2>&1; [ $? = 2 ] || r=1
    check "featvis under AddressSanitizer/UBSan: node, edge, input node, neuron/negative/size, --all twice (cache), a bad target: no report" \
        test $r = 0 -a "$(grep -c 'ERROR: \|runtime error' $log)" = 0
else
    fail "featvis under AddressSanitizer: build/asan/viscnn missing (make build/asan/viscnn)"
fi
