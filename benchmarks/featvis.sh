#!/usr/bin/env bash
# featvis.sh: viscnn featvis against the same loop in PyTorch 1.13
# (benchmarks/featvis_torch.py, torch.set_num_threads(2)), measured in the same run:
#   1. 512 steps for one alexnet features.10 channel at 224x224 (seeded weights)
#   2. 512 steps for every node of the default model's features.8, one batch of 64
# Each side is timed as a whole process (start, model load, all steps, PNG):
# wall seconds and CPU seconds (user + sys). On a shared machine wall time
# mostly measures waiting for a CPU; CPU time is the steadier of the two.
# Usage: benchmarks/featvis.sh [STEPS]. One line per case with both ratios.
set -eu
cd "$(dirname "$0")/.."
STEPS=${1:-512}
PY=/usr/bin/python3
B=build/bench
mkdir -p $B
export OMP_NUM_THREADS=2 OMP_WAIT_POLICY=PASSIVE
[ -f $B/alexnet.safetensors ] || $PY tools/torch2viscnn.py --torchvision alexnet --seed 0 -o $B/alexnet.safetensors > /dev/null
timed() { /usr/bin/time -f "%e %U %S" -o $B/time.txt "$@" > /dev/null 2>&1; awk '{printf "%s %s\n", $1, $2 + $3}' $B/time.txt; }
report() {   # name, ours "wall cpu", theirs "wall cpu"
    set -- "$1" $2 $3
    printf '%s, %s steps: viscnn %.1f s wall %.1f s CPU; PyTorch %.1f s wall %.1f s CPU; ratio %.2fx wall, %.2fx CPU\n' \
        "$1" "$STEPS" "$2" "$3" "$4" "$5" "$(echo "$2 / $4" | bc -l)" "$(echo "$3 / $5" | bc -l)"
}
o=$(timed bin/viscnn featvis $B/alexnet.safetensors --node features.10:0 --steps "$STEPS" --no-cache -o $B/fv_alexnet.png)
t=$(timed $PY benchmarks/featvis_torch.py --model alexnet --layer features.10 --channel 0 --steps "$STEPS")
report "featvis alexnet features.10:0 at 224x224" "$o" "$t"
rm -rf $B/fv_fashion
o=$(timed bin/viscnn featvis models/fashion.safetensors --layer features.8 --all --steps "$STEPS" --no-cache -o $B/fv_fashion)
t=$(timed $PY benchmarks/featvis_torch.py --model fashion --layer features.8 --all --steps "$STEPS")
report "featvis fashion features.8 --all (64 pictures, one batch) at 28x28" "$o" "$t"
