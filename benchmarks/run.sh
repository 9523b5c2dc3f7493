#!/usr/bin/env bash
# run.sh: `make bench`. Measures viscnn against Debian's PyTorch 1.13 (2
# threads) in the same run on the same machine, prints one table of ratios
# (ours / PyTorch, median over alternating rounds of REPS reps each) and appends a dated section to
# benchmarks/RESULTS.md.
#
#   benchmarks/run.sh [--smoke]
#
# --smoke: a short version for CI (tiny sizes, nothing appended) that checks
# the benchmark programs still work.
#
# OpenBLAS: this environment may set OPENBLAS_CORETYPE/OPENBLAS_L2_SIZE (for
# old OpenBLAS builds on some CPUs); PyTorch's oneDNN picks its own kernels,
# so for the benchmark both variables are unset together, for both sides.
set -u
cd "$(dirname "$0")/.."
SMOKE=0
[ "${1:-}" = "--smoke" ] && SMOKE=1
unset OPENBLAS_CORETYPE OPENBLAS_L2_SIZE
export OMP_NUM_THREADS=2 OPENBLAS_NUM_THREADS=2
PY=/usr/bin/python3
B=build/bench
mkdir -p $B
make -s bin/viscnn $B/bench_run >/dev/null || exit 1

if [ $SMOKE = 1 ]; then REPS=1; ROUNDS=1; MODELS="alexnet"; IMP_N=4; SCALE="2 4"; DISS_N=2
else REPS=5; ROUNDS=3; MODELS="alexnet vgg11 resnet18 googlenet"; IMP_N=64; SCALE="8 64 512"; DISS_N=16; fi

# inputs: seeded N(0,1) batches (the timings do not depend on the values)
mkx() { [ -f "$B/x$1.npy" ] || $PY -c "import numpy as np; np.save('$B/x$1.npy', np.random.default_rng(0).standard_normal(($1,3,224,224)).astype(np.float32))"; }
model() { [ -f "$B/$1.safetensors" ] || $PY tools/torch2viscnn.py --torchvision "$1" --seed 0 -o "$B/$1.safetensors" >/dev/null || exit 1; }
mkx 8
rows=()
row() { rows+=("$(printf '| %-46s | %10s | %10s | %7s | %s |' "$1" "$2" "$3" "$4" "$5")"); }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", a / b }'; }
verdict() { awk -v r="$1" -v t="$2" 'BEGIN { print (r <= t ? "met" : "MISSED") " (<= " t ")" }'; }

# This shared machine drifts between fast and slow phases that last tens of
# seconds, so the two sides are measured in alternating rounds (ours, then
# PyTorch, ROUNDS times, REPS reps each): a round's ratio compares runs a few
# seconds apart, and the table gives the median over the rounds.
median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2) }'; }
for m in $MODELS; do
    model $m
    for mode in forward fwdbwd; do
        o=(); t=(); q=()
        for ((k = 0; k < ROUNDS; k++)); do
            read -r _ ours _ _ < <($B/bench_run $B/$m.safetensors $B/x8.npy $mode $REPS)
            read -r _ _ theirs _ _ < <($PY benchmarks/bench_torch.py $mode --model $m --batch 8 --reps $REPS --input $B/x8.npy)
            o+=("$ours"); t+=("$theirs"); q+=("$(ratio "$ours" "$theirs")")
        done
        ours=$(printf '%s\n' "${o[@]}" | median); theirs=$(printf '%s\n' "${t[@]}" | median)
        r=$(printf '%s\n' "${q[@]}" | median)
        row "$m $mode, batch 8, 224x224" "${ours}s" "${theirs}s" "$r" "$(verdict "$r" 1.0)"
    done
done

# importance: all nodes and edges, actxgrad toward the loss, alexnet. Ours,
# the original tool's dissection and the fastest PyTorch way, in alternating
# rounds like the model rows; ratios per image, median over the rounds. The
# lean dissection (only what the scores need) once, for information.
model alexnet
mkx $IMP_N; mkx $DISS_N
per_image() { sed -n 's/.*per_image=\([0-9.e+-]*\).*/\1/p' <<< "$1"; }
o=(); d=(); f=(); qd=(); qf=(); rss=(); drss=()
for ((k = 0; k < ROUNDS; k++)); do
    read -r _ ti _ ri < <($B/bench_run $B/alexnet.safetensors $B/x$IMP_N.npy importance 1 8)
    dis=$($PY benchmarks/bench_torch.py dissection --model alexnet --batch 8 --images $DISS_N --reps 1 --input $B/x$DISS_N.npy)
    fast=$($PY benchmarks/bench_torch.py fastest --model alexnet --batch 8 --images $IMP_N --reps 1 --input $B/x$IMP_N.npy)
    opi=$(awk -v t="$ti" -v n="$IMP_N" 'BEGIN { printf "%.4f", t / n }')
    o+=("$opi"); d+=("$(per_image "$dis")"); f+=("$(per_image "$fast")"); rss+=("$ri"); drss+=("$(awk '{print $5}' <<< "$dis")")
    qd+=("$(ratio "$opi" "$(per_image "$dis")")"); qf+=("$(ratio "$opi" "$(per_image "$fast")")")
done
fast_m=$(sed -n 's/.*method=\([^ ]*\).*/\1/p' <<< "$fast")
lean=$($PY benchmarks/bench_torch.py dissection --style lean --model alexnet --batch 8 --images $DISS_N --reps 1 --input $B/x$DISS_N.npy)
ours_pi=$(printf '%s\n' "${o[@]}" | median); ri=$(printf '%s\n' "${rss[@]}" | median); dis_rss=$(printf '%s\n' "${drss[@]}" | median)
read -r _ tb _ _ < <($B/bench_run $B/alexnet.safetensors $B/x8.npy fwdbwd $REPS)
r=$(printf '%s\n' "${qd[@]}" | median)
row "importance alexnet / original dissection (per image)" "${ours_pi}s" "$(printf '%s\n' "${d[@]}" | median)s" "$r" "$(verdict "$r" 0.05)"
r=$(printf '%s\n' "${qf[@]}" | median)
row "importance alexnet / fastest PyTorch ($fast_m)" "${ours_pi}s" "$(printf '%s\n' "${f[@]}" | median)s" "$r" "$(verdict "$r" 0.5)"
r=$(ratio "$ri" "$dis_rss")
row "importance peak RSS / dissection's" "$((ri / 1024))MiB" "$((dis_rss / 1024))MiB" "$r" "$(verdict "$r" 0.1)"
r=$(ratio "$ours_pi" "$(per_image "$lean")")
row "importance alexnet / lean dissection (per image)" "${ours_pi}s" "$(per_image "$lean")s" "$r" "information"
per_batch=$(awk -v p="$ours_pi" 'BEGIN { printf "%.4f", p * 8 }')
r=$(ratio "$per_batch" "$tb");    row "importance / our fwd+bwd, per batch of 8" "${per_batch}s" "${tb}s (ours)" "$r" "$(verdict "$r" 1.5)"
read -r _ _ _ gf < <($B/bench_run sgemm $([ $SMOKE = 1 ] && echo 256 || echo 2048))
# conv arithmetic of alexnet per image: forward MACs of the 5 convs (the edges redo one forward)
flops=$(awk 'BEGIN { f = 2 * (55*55*64*3*121 + 27*27*192*64*25 + 13*13*384*192*9 + 13*13*256*384*9 + 13*13*256*256*9); printf "%.0f", f }')
eg=$(awk -v f="$flops" -v t="$ours_pi" 'BEGIN { printf "%.1f", 3 * f / t * 1e-9 }')
row "importance GFLOP/s (3 conv passes) vs cblas_sgemm" "${eg}" "${gf}" "$(ratio "$eg" "$gf")" "information"
for n in $SCALE; do
    mkx $n
    read -r _ tn _ rn < <($B/bench_run $B/alexnet.safetensors $B/x$n.npy importance 1 8)
    row "importance scaling: $n images" "${tn}s" "$(awk -v t="$tn" -v n="$n" 'BEGIN { printf "%.4f s/img", t / n }')" "-" "peak RSS $((rn / 1024)) MiB"
done

info=$($B/bench_run info)
head="| measurement | viscnn | PyTorch | ratio | target |"
sep="|---|---|---|---|---|"
echo "$info, $(nproc) cores"
echo "$head"; echo "$sep"; printf '%s\n' "${rows[@]}"
if [ $SMOKE = 0 ]; then
    {
        echo
        echo "## $(date -u +%Y-%m-%d) — make bench"
        echo
        echo "Command: \`make bench\` (benchmarks/run.sh). $(nproc) cores, OMP_NUM_THREADS=2, torch.set_num_threads(2),"
        echo "OPENBLAS_CORETYPE/L2_SIZE unset for both sides; $info; $(uname -m). Model rows: median over $ROUNDS"
        echo "alternating rounds (ours, then PyTorch) of the per-round medians of $REPS reps; ratio = median of the rounds' ratios."
        echo "Importance rows: $ROUNDS rounds of (ours on $IMP_N images, the original-style dissection on $DISS_N, the fastest"
        echo "PyTorch way on $IMP_N), per-image ratios, median over the rounds; the lean dissection once."
        echo
        echo "$head"; echo "$sep"; printf '%s\n' "${rows[@]}"
    } >> benchmarks/RESULTS.md
    echo "(appended to benchmarks/RESULTS.md)"
fi
