#!/usr/bin/env bash
# mpi.sh: the MPI measurements of benchmarks/RESULTS.md (issue 18; docs/mpi.md).
# Needs build/mpi/viscnn, bin/viscnn, mpirun, data/photos and the converted
# torchvision models build/testdata/{alexnet,resnet18} (the parity step of
# make test, or tools/torch_dump.py). Prints markdown; records nothing.
#
#  1. 512 images (data/photos repeated, in a list file with two labels),
#     torchvision alexnet (seeded random weights), importance --by-class,
#     wall time and CPU time (user+sys, mpirun and all ranks) of the whole
#     mpirun command (start-up included on every side):
#       1 rank x 2 threads | 2 ranks (chosen: 1 thread each)
#       3 ranks on the 2 cores, thread policy on (1 thread each, passive wait)
#       3 ranks on the 2 cores, VISCNN_THREAD_POLICY=off (OpenMP's defaults:
#         2 threads each, spinning while they wait) -- the slowdown it fixes.
#  2. per-image CPU cost (user + sys seconds) of importance on one thread, for
#     alexnet and resnet18 at 224x224: the slope between N1 and N2 images (so
#     that model loading cancels), for the paper calculation.
set -u
cd "$(dirname "$0")/.."
# --bind-to none: mpirun binds one or two ranks to one core each, which would
# put the 1-rank x 2-thread side on a single core
MPIRUN="mpirun --oversubscribe --bind-to none"
[ "$(id -u)" = 0 ] && MPIRUN="$MPIRUN --allow-run-as-root"
V=build/mpi/viscnn
A=build/testdata/alexnet/model.safetensors
R=build/testdata/resnet18/model.safetensors
OUT=build/bench-mpi
N=${N:-512}
REPS=${REPS:-2}
mkdir -p "$OUT"
for f in "$V" bin/viscnn "$A" "$R"; do [ -e "$f" ] || { echo "mpi.sh: $f missing" >&2; exit 1; }; done
command -v mpirun >/dev/null || { echo "mpi.sh: mpirun missing" >&2; exit 1; }

# list files: k images, photos in turn, labels "a" and "b" alternating
mklist() {   # k file
    ls data/photos | awk -v k="$1" -v d="$PWD/data/photos" '{p[n++]=d"/"$0} END {for (i = 0; i < k; i++) print p[i % n] "\t" (i % 2 ? "b" : "a")}' > "$2"
}
mklist "$N" "$OUT/list$N.txt"

wall() {   # label, env..., -- cmd...: best of REPS wall seconds; CPU seconds (user+sys of
           # mpirun and every rank) of that run in $OUT/cpu.last
    local best= bestcpu=
    for r in $(seq "$REPS"); do
        /usr/bin/time -f "%e %U %S" -o "$OUT/t.txt" env "$@" > "$OUT/run.log" 2>&1 ||
            { echo "mpi.sh: failed: $*" >&2; tail -3 "$OUT/run.log" >&2; exit 1; }
        local w c
        w=$(awk '{print $1}' "$OUT/t.txt"); c=$(awk '{print $2 + $3}' "$OUT/t.txt")
        if [ -z "$best" ] || awk -v a="$w" -v b="$best" 'BEGIN {exit !(a < b)}'; then best=$w bestcpu=$c; fi
    done
    echo "$bestcpu" > "$OUT/cpu.last"
    echo "$best"
}
echo "### $N images, alexnet (224x224), importance --by-class, $(nproc) cores; best of $REPS, wall s (mpirun start-up included)"
echo
args="importance $A --images $OUT/list$N.txt --by-class -o $OUT/a.json"
t_1x2=$(wall OMP_NUM_THREADS=2 OMP_WAIT_POLICY=PASSIVE $MPIRUN -np 1 $V $args); c_1x2=$(cat "$OUT/cpu.last")
cp "$OUT/a.json" "$OUT/ref.json"
t_2x1=$(wall $MPIRUN -np 2 $V $args); c_2x1=$(cat "$OUT/cpu.last")
policy_2=$(grep -m1 "ranks," "$OUT/run.log")
cmp -s "$OUT/a.json" "$OUT/ref.json" && same2=identical || same2="differs (thread counts differ: docs/mpi.md)"
t_3on=$(wall $MPIRUN -np 3 $V $args); c_3on=$(cat "$OUT/cpu.last")
policy_on=$(grep -m1 "ranks," "$OUT/run.log")
t_3off=$(wall VISCNN_THREAD_POLICY=off $MPIRUN -np 3 $V $args); c_3off=$(cat "$OUT/cpu.last")
policy_off=$(grep -m1 "ranks," "$OUT/run.log")
echo "| configuration | wall s | vs 1 rank x 2 threads | CPU s (user+sys, all ranks) | CPU vs 1 rank x 2 threads |"
echo "|---|---|---|---|---|"
for row in "1 rank x 2 threads (OMP_NUM_THREADS=2)|$t_1x2|$c_1x2" "2 ranks x 1 thread (chosen by the policy)|$t_2x1|$c_2x1" \
           "3 ranks on 2 cores, policy on (1 thread each, passive)|$t_3on|$c_3on" \
           "3 ranks on 2 cores, VISCNN_THREAD_POLICY=off (2 threads each, spinning)|$t_3off|$c_3off"; do
    IFS='|' read -r label t c <<< "$row"
    echo "| $label | $t | $(awk -v a="$t" -v b="$t_1x2" 'BEGIN {printf "%.2fx", a / b}') | $c | $(awk -v a="$c" -v b="$c_1x2" 'BEGIN {printf "%.2fx", a / b}') |"
done
echo
echo "(3 ranks off / on: $(awk -v a="$t_3off" -v b="$t_3on" 'BEGIN {printf "%.2fx", a / b}'); 2 ranks: JSON $same2 to 1 rank x 2 threads;"
echo "off: $policy_off; on: $policy_on; 2 ranks: $policy_2)"
echo

echo "### per-image CPU cost of importance, 1 thread, batch 8 (user+sys s, slope between the two sizes)"
echo
echo "| model | images | CPU s | per image s |"
echo "|---|---|---|---|"
cpu() {   # model n -> user+sys seconds
    mklist "$2" "$OUT/cpu$2.txt"
    /usr/bin/time -f "%U %S" -o "$OUT/time.txt" env OMP_NUM_THREADS=1 bin/viscnn importance "$1" --images "$OUT/cpu$2.txt" \
        --by-class -o "$OUT/cpu.json" > /dev/null 2>&1 || { echo "mpi.sh: cpu run failed" >&2; exit 1; }
    awk '{print $1 + $2}' "$OUT/time.txt"
}
for m in alexnet resnet18; do
    f=build/testdata/$m/model.safetensors
    n1=8; n2=${CPU_N:-40}
    c1=$(cpu "$f" $n1); c2=$(cpu "$f" $n2)
    echo "| $m | $n1 / $n2 | $c1 / $c2 | $(awk -v a="$c1" -v b="$c2" -v n1=$n1 -v n2=$n2 'BEGIN {printf "%.3f", (b - a) / (n2 - n1)}') |"
done
