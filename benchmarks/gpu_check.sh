#!/usr/bin/env bash
# gpu_check.sh [BUNDLE]: the CUDA backend's checks and benchmarks on a GPU
# machine, in one go and under 8 minutes (issue 17, docs/cuda.md). Made for
# a lent H100 with CUDA 13, cuBLAS and PyTorch but no network and none of our
# Debian packages, so it runs a bundle built elsewhere:
#   here:   make gpu-bundle     (build/gpu-bundle.tar.gz, < 64 MiB)
#   there:  benchmarks/gpu_check.sh build/gpu-bundle.tar.gz
# BUNDLE is that tarball or its unpacked folder (default: build/gpu-bundle,
# else build/gpu-bundle.tar.gz). Steps, each with its own time limit:
#   1. the device, and ldd of the bundled programs (cuBLAS found)
#   2. build/cuda/tests/test_cuda_ops: every op forward and backward vs the CPU backend
#   3. test_cuda_models: alexnet, resnet18, googlenet: passes, masks, edge maps,
#      all six metrics' node and edge scores vs the CPU backend
#   4. the CLI: viscnn forward --device cuda vs --device cpu on the default model
#   5. benchmarks: alexnet forward+backward at batch 64 (viscnn vs PyTorch, FP32
#      and PyTorch's TF32 default), all node+edge actxgrad scores of alexnet over
#      1,024 images (viscnn vs the fastest PyTorch way)
# and prints one table. Exit status 0 only when every step passed.
set -u
cd "$(dirname "$0")/.."
B=${1:-}
[ -n "$B" ] || { [ -d build/gpu-bundle ] && B=build/gpu-bundle; } || true
[ -n "$B" ] || B=build/gpu-bundle.tar.gz
if [ -f "$B" ]; then
    T=$(mktemp -d /tmp/viscnn-gpu.XXXXXX)
    trap 'rm -rf "$T"' EXIT
    tar -C "$T" -xzf "$B" || { echo "gpu_check: cannot unpack $B"; exit 1; }
    B=$T/$(ls "$T" | head -1)
fi
[ -x "$B/bin/viscnn" ] || { echo "gpu_check: no bundle at $B (make gpu-bundle first)"; exit 1; }
PY=${PYTHON:-python3}
# cuBLAS from the machine: CUDA's own folder, else PyTorch's wheel (nvidia-cublas)
for d in /usr/local/cuda/lib64 /usr/local/cuda-13*/lib64 /usr/local/cuda/targets/x86_64-linux/lib \
         $($PY -c 'import nvidia.cublas, os; print(os.path.join(list(nvidia.cublas.__path__)[0], "lib"))' 2>/dev/null); do
    [ -f "$d/libcublas.so.13" ] && { export LD_LIBRARY_PATH=$d${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}; break; }
done
declare -A R
status=0
step() {   # step KEY LIMIT_S CMD...: runs CMD, keeps its output in $OUT_KEY.log
    local key=$1 lim=$2; shift 2
    local t0=$SECONDS
    timeout "$lim" "$@" > "/tmp/gpu_check.$key.log" 2>&1
    local rc=$?
    R[$key.rc]=$rc; R[$key.s]=$((SECONDS - t0))
    [ $rc = 0 ] || status=1
    return $rc
}
echo "== device"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>&1 | head -2 || echo "(no nvidia-smi)"
GPU=$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1)
echo "== ldd"
if ldd "$B/bin/viscnn" | grep 'not found'; then echo "gpu_check: the bundle misses libraries (above)"; status=1; fi

for t in test_cuda_ops test_cuda_models; do
    echo "== $t"
    step "$t" 300 "$B/bin/$t"
    grep -E '^(FAIL|#)' "/tmp/gpu_check.$t.log" | head -40
    R[$t.ok]=$(grep -c '^ok ' "/tmp/gpu_check.$t.log"); R[$t.fail]=$(grep -c '^FAIL' "/tmp/gpu_check.$t.log")
    # a program that found no device ran nothing: that is not a pass here
    if grep -q '^# cuda: no device' "/tmp/gpu_check.$t.log"; then R[$t.fail]="NOT RUN (no device)"; status=1; fi
    [ "${R[$t.rc]}" = 0 ] || tail -3 "/tmp/gpu_check.$t.log"
done

echo "== CLI: forward --device cuda vs cpu"
X=/tmp/gpu_check.x.npy
if $PY -c "import numpy as np; np.save('$X', np.random.default_rng(0).standard_normal((8,1,28,28)).astype(np.float32))" 2>/dev/null &&
   step cli_cpu 60 "$B/bin/viscnn" forward models/fashion.safetensors --input "$X" --device cpu -o /tmp/gpu_check.cpu.npy &&
   step cli_cuda 60 "$B/bin/viscnn" forward models/fashion.safetensors --input "$X" --device cuda -o /tmp/gpu_check.cuda.npy; then
    R[cli]=$($PY -c "import numpy as np; a=np.load('/tmp/gpu_check.cpu.npy'); b=np.load('/tmp/gpu_check.cuda.npy'); e=abs(a-b).max()/abs(a).max(); print('ok' if e<=1e-5 else 'FAIL', '%.2g' % e)")
else
    R[cli]="FAIL (see /tmp/gpu_check.cli_*.log)"; status=1
fi
case "${R[cli]}" in ok*) ;; *) status=1 ;; esac
echo "${R[cli]}"

echo "== benchmarks"
bench() {   # bench KEY LIMIT CMD...: keeps the seconds= of the last line
    step "$1" "$2" "${@:3}"
    R[$1]=$(tail -1 "/tmp/gpu_check.$1.log" | sed -n 's/.*seconds=\([0-9.]*\).*/\1/p')
    R[$1.line]=$(tail -1 "/tmp/gpu_check.$1.log")
    echo "${R[$1.line]}"
}
bench ours_fb 120 "$B/bin/gpu_bench" fwdbwd --batch 64 --reps 10
bench torch_fb 120 $PY benchmarks/gpu_torch.py fwdbwd --batch 64 --reps 10
bench torch_fb_tf32 120 $PY benchmarks/gpu_torch.py fwdbwd --batch 64 --reps 10 --tf32
bench ours_sc 180 "$B/bin/gpu_bench" scores --images 1024 --batch 64 --reps 3
bench torch_sc 180 $PY benchmarks/gpu_torch.py scores --images 1024 --batch 64 --reps 3
grep '^#' /tmp/gpu_check.torch_sc.log

ratio() { [ -n "${R[$1]:-}" ] && [ -n "${R[$2]:-}" ] && awk -v a="${R[$1]}" -v b="${R[$2]}" 'BEGIN{printf "%.2fx", a/b}' || echo "n/a"; }
echo
echo "## viscnn CUDA backend on ${GPU:-an unknown GPU}, $(date -u +%Y-%m-%d)"
echo
echo "| check | result |"
echo "|---|---|"
for t in test_cuda_ops test_cuda_models; do
    echo "| $t (vs CPU backend) | ${R[$t.ok]:-0} ok, ${R[$t.fail]:-?} FAIL lines, exit ${R[$t.rc]:-?}, ${R[$t.s]:-?} s |"
done
echo "| viscnn forward --device cuda vs cpu (default model, 8 images) | ${R[cli]} |"
echo
echo "| benchmark | viscnn (s) | PyTorch (s) | ratio (target) |"
echo "|---|---|---|---|"
echo "| alexnet fwd+bwd batch 64, FP32 | ${R[ours_fb]:-failed} | ${R[torch_fb]:-failed} | $(ratio ours_fb torch_fb) (<= 1.0x) |"
echo "| alexnet fwd+bwd batch 64, PyTorch with TF32 (its default) | ${R[ours_fb]:-failed} | ${R[torch_fb_tf32]:-failed} | $(ratio ours_fb torch_fb_tf32) |"
echo "| alexnet all node+edge actxgrad, 1,024 images | ${R[ours_sc]:-failed} | ${R[torch_sc]:-failed} ($(sed -n 's/.*method=\([a-z]*\).*/\1/p' /tmp/gpu_check.torch_sc.log | tail -1)) | $(ratio ours_sc torch_sc) (<= 0.5x) |"
echo
echo "lines: ${R[ours_sc.line]:-}; ${R[torch_sc.line]:-}"
exit $status
