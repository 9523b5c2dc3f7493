#!/usr/bin/env bash
# featvis.sh: viscnn featvis against the same loop in PyTorch 1.13
# (benchmarks/featvis_torch.py, 2 threads), measured in the same run:
#   1. 512 steps for one alexnet features.10 channel at 224x224 (seeded weights)
#   2. 512 steps for every node of the default model's features.8, one batch of 64
# Usage: benchmarks/featvis.sh [STEPS]. Prints one line per case with the ratio.
set -eu
cd "$(dirname "$0")/.."
STEPS=${1:-512}
PY=/usr/bin/python3
B=build/bench
mkdir -p $B
export OMP_NUM_THREADS=2 OMP_WAIT_POLICY=PASSIVE
[ -f $B/alexnet.safetensors ] || $PY tools/torch2viscnn.py --torchvision alexnet --seed 0 -o $B/alexnet.safetensors > /dev/null
ours() { local t0 t1; t0=$(date +%s.%N); bin/viscnn featvis "$@" --steps "$STEPS" --no-cache 2>/dev/null >/dev/null; t1=$(date +%s.%N); echo "$t1 - $t0" | bc; }
case1() {
    local o t
    o=$(ours $B/alexnet.safetensors --node features.10:0 -o $B/fv_alexnet.png)
    t=$($PY benchmarks/featvis_torch.py --model alexnet --layer features.10 --channel 0 --steps "$STEPS" | awk '{print $6}')
    printf 'featvis alexnet features.10:0 224x224, %s steps: viscnn %.2f s, PyTorch %.2f s, ratio %.2fx\n' "$STEPS" "$o" "$t" "$(echo "$o / $t" | bc -l)"
}
case2() {
    local o t
    rm -rf $B/fv_fashion
    o=$(ours models/fashion.safetensors --layer features.8 --all -o $B/fv_fashion)
    t=$($PY benchmarks/featvis_torch.py --model fashion --layer features.8 --all --steps "$STEPS" | awk '{print $6}')
    printf 'featvis fashion features.8 --all (64 pictures, one batch) 28x28, %s steps: viscnn %.2f s, PyTorch %.2f s, ratio %.2fx\n' "$STEPS" "$o" "$t" "$(echo "$o / $t" | bc -l)"
}
case1
case2
