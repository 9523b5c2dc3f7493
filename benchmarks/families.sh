#!/usr/bin/env bash
# families.sh: forward + backward of mobilenet_v2 and efficientnet_b0 against
# PyTorch 1.13 (batch 8, 224x224, 2 threads), in alternating rounds in the
# same run (as benchmarks/run.sh does), with the direct depthwise kernel and
# without it (VISCNN_NO_DEPTHWISE=1: im2col + GEMM per channel); and every
# node and edge actxgrad score of mobilenet_v2 against our own forward +
# backward. Prints a markdown table.
#
#   benchmarks/families.sh [ROUNDS [REPS]]
set -u
cd "$(dirname "$0")/.."
unset OPENBLAS_CORETYPE OPENBLAS_L2_SIZE
export OMP_NUM_THREADS=2 OPENBLAS_NUM_THREADS=2
PY=/usr/bin/python3
B=build/bench
ROUNDS=${1:-3}; REPS=${2:-3}
mkdir -p $B
make -s bin/viscnn $B/bench_run >/dev/null || exit 1
[ -f "$B/x8.npy" ] || $PY -c "import numpy as np; np.save('$B/x8.npy', np.random.default_rng(0).standard_normal((8,3,224,224)).astype(np.float32))"
median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2) }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", a / b }'; }
echo "| model, batch 8, 224x224 | ours | ours, depthwise by im2col | PyTorch | ours / PyTorch | im2col / PyTorch |"
echo "|---|---|---|---|---|---|"
for m in mobilenet_v2 efficientnet_b0; do
    [ -f "$B/$m.safetensors" ] || $PY tools/torch2viscnn.py --torchvision $m --seed 0 -o $B/$m.safetensors >/dev/null || exit 1
    o=(); i=(); t=(); q=(); qi=()
    for ((k = 0; k < ROUNDS; k++)); do
        read -r _ ours _ _ < <($B/bench_run $B/$m.safetensors $B/x8.npy fwdbwd $REPS)
        read -r _ im _ _ < <(VISCNN_NO_DEPTHWISE=1 $B/bench_run $B/$m.safetensors $B/x8.npy fwdbwd $REPS)
        read -r _ _ theirs _ _ < <($PY benchmarks/bench_torch.py fwdbwd --model $m --batch 8 --reps $REPS --input $B/x8.npy)
        o+=("$ours"); i+=("$im"); t+=("$theirs"); q+=("$(ratio "$ours" "$theirs")"); qi+=("$(ratio "$im" "$theirs")")
    done
    echo "| $m forward+backward | $(printf '%s\n' "${o[@]}" | median)s | $(printf '%s\n' "${i[@]}" | median)s | $(printf '%s\n' "${t[@]}" | median)s | $(printf '%s\n' "${q[@]}" | median) | $(printf '%s\n' "${qi[@]}" | median) |"
done
m=mobilenet_v2
o=(); s=(); q=()
for ((k = 0; k < ROUNDS; k++)); do
    read -r _ fb _ _ < <($B/bench_run $B/$m.safetensors $B/x8.npy fwdbwd $REPS)
    read -r _ imp _ _ < <($B/bench_run $B/$m.safetensors $B/x8.npy importance $REPS)
    o+=("$fb"); s+=("$imp"); q+=("$(ratio "$imp" "$fb")")
done
echo
echo "| mobilenet_v2, batch 8 | ours forward+backward | every node and edge actxgrad score (loss) | ratio |"
echo "|---|---|---|---|"
echo "| | $(printf '%s\n' "${o[@]}" | median)s | $(printf '%s\n' "${s[@]}" | median)s | $(printf '%s\n' "${q[@]}" | median) |"
