#!/usr/bin/env bash
# probe.sh: says which dependencies this machine has (✓/✗) by compiling and
# linking a one-line program against each. Exit 1 if a required one is missing.
# Optional ones (nvcc, cuDNN) only switch features; they never fail the build.
CC=${CC:-cc}
missing=0
probe() {   # name, required(1/0), header, link flags, [code]
    local name=$1 req=$2 hdr=$3 libs=$4 code=${5:-}
    if printf '#include <%s>\nint main(void){%s return 0;}\n' "$hdr" "$code" |
        $CC -x c - -o /dev/null $libs >/dev/null 2>&1; then
        echo "  ✓ $name"
    else
        echo "  ✗ $name${req:+$([ "$req" = 1 ] && echo ' (required)')}"
        [ "$req" = 1 ] && missing=1
    fi
}
echo "dependencies:"
BLAS_DIR=${OPENBLAS_DIR:-/usr/lib/$($CC -print-multiarch)/openblas-openmp}
BLAS="-L$BLAS_DIR -l:libopenblas.so.0"
probe "OpenBLAS, OpenMP build (cblas.h, $BLAS_DIR)" 1 cblas.h "$BLAS" "cblas_sgemm(CblasRowMajor,CblasNoTrans,CblasNoTrans,0,0,0,1,0,1,0,1,0,0,0);"
probe "LAPACKE (lapacke.h, -llapacke)" 1 lapacke.h "-llapacke $BLAS"
probe "libpng" 1 png.h "-lpng"
probe "zlib" 1 zlib.h "-lz"
probe "libjpeg-turbo" 1 "stdio.h>
#include <jpeglib.h" "-ljpeg"
probe "cJSON" 1 cjson/cJSON.h "-lcjson"
probe "OpenMP" 1 omp.h "-fopenmp" "(void)omp_get_max_threads();"
probe "libmicrohttpd (viscnn serve)" 1 microhttpd.h "-lmicrohttpd" "(void)MHD_is_feature_supported(MHD_FEATURE_IPv6);"
probe "FFTW3 single precision (fftw3.h, -lfftw3f: viscnn featvis)" 1 fftw3.h "-lfftw3f" "(void)fftwf_alloc_real(1);"
if command -v nvcc >/dev/null 2>&1 || [ -x /usr/local/cuda/bin/nvcc ]; then
    NVCC_BIN=$([ -x /usr/local/cuda/bin/nvcc ] && echo /usr/local/cuda/bin/nvcc || command -v nvcc)
    CUDA_DIR=$(dirname "$(dirname "$NVCC_BIN")")
    echo "  ✓ nvcc $("$NVCC_BIN" --version | sed -n 's/.*release \([0-9.]*\).*/\1/p') ($NVCC_BIN; make cuda / make CUDA=1 builds build/cuda/, docs/cuda.md)"
    if [ -f "$CUDA_DIR/include/cublas_v2.h" ]; then echo "  ✓ cuBLAS ($CUDA_DIR)"; else echo "  ✗ cuBLAS (the CUDA backend needs it)"; fi
    if [ -f "$CUDA_DIR/include/cudnn.h" ] || [ -f /usr/include/cudnn.h ]; then
        echo "  ✓ cuDNN headers (not used yet: conv is im2col + cuBLAS, docs/cuda.md)"
    else
        echo "  ✗ cuDNN (optional)"
    fi
    if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
        echo "  ✓ GPU: $(nvidia-smi -L | head -1)"
    else
        echo "  ✗ GPU (none here: the CUDA tests build but do not run)"
    fi
else
    echo "  ✗ nvcc (optional: CUDA backend not built)"
fi
if command -v mpicc >/dev/null 2>&1 && command -v mpirun >/dev/null 2>&1 &&
   printf '#include <mpi.h>\nint main(void){return MPI_Init(0,0);}\n' | mpicc -x c - -o /dev/null >/dev/null 2>&1; then
    echo "  ✓ OpenMPI (mpicc, mpirun: make MPI=1, the MPI tests)"
else
    echo "  ✗ OpenMPI (libopenmpi-dev openmpi-bin: make MPI=1; make test needs it for the MPI tests)"
    [ "${NEED_TORCH:-0}" = 1 ] && missing=1
fi
# clang with its ASan, UBSan and libFuzzer runtimes (libclang-rt-14-dev): make test SAN=1, make fuzz
if command -v clang >/dev/null 2>&1 && printf 'int LLVMFuzzerTestOneInput(const char *d, unsigned long n) { (void)d; (void)n; return 0; }\n' |
        clang -x c - -fsanitize=fuzzer,address,undefined -o /tmp/viscnn-probe-fuzz.$$ >/dev/null 2>&1; then
    echo "  ✓ clang + ASan/UBSan/libFuzzer (make test SAN=1, make fuzz)"
else
    echo "  ✗ clang + ASan/UBSan/libFuzzer (clang libclang-rt-14-dev: make test needs it for fuzzing and ThreadSanitizer; make test SAN=1, make fuzz)"
    [ "${NEED_TORCH:-0}" = 1 ] && missing=1
fi
rm -f /tmp/viscnn-probe-fuzz.$$
if [ -x /usr/bin/python3 ] && /usr/bin/python3 -c 'import torch, torchvision, numpy' >/dev/null 2>&1; then
    echo "  ✓ PyTorch for tests and tools (/usr/bin/python3: torch, torchvision, numpy)"
else
    echo "  ✗ PyTorch for tests and tools (/usr/bin/python3 python3-torch python3-torchvision python3-numpy)"
    [ "${NEED_TORCH:-0}" = 1 ] && missing=1
fi
if [ -d /usr/share/datasets/fashion-mnist ] && [ -d /usr/share/darknet/data ]; then
    echo "  ✓ data packages (dataset-fashion-mnist, darknet's photographs)"
else
    echo "  ✗ data packages (dataset-fashion-mnist, darknet's photographs: make data, tests)"
    [ "${NEED_TORCH:-0}" = 1 ] && missing=1
fi
# The browser GUI: three.js (the page) and playwright-core (its tests) in
# web/node_modules as web/package-lock.json pins them; Chromium for the tests.
WEB=$(cd "$(dirname "$0")/.." && pwd)/web
if command -v node >/dev/null 2>&1 && [ -f "$WEB/node_modules/three/build/three.module.js" ] &&
   [ -f "$WEB/node_modules/.package-lock.json" ] && [ ! "$WEB/package-lock.json" -nt "$WEB/node_modules/.package-lock.json" ]; then
    echo "  ✓ web/node_modules (three.js $(sed -n 's/.*"version": "\(.*\)".*/\1/p' "$WEB/node_modules/three/package.json" | head -1); npm ci in web/)"
else
    echo "  ✗ web/node_modules (node, and three.js from npm ci in web/: the GUI page)"
    [ "${NEED_WEB:-0}" = 1 ] && missing=1
fi
if [ -x /usr/bin/chromium ] && [ -f "$WEB/node_modules/playwright-core/package.json" ]; then
    echo "  ✓ chromium + playwright-core (browser tests)"
else
    echo "  ✗ chromium + playwright-core (browser tests: Debian's chromium, npm ci in web/)"
    [ "${NEED_TORCH:-0}" = 1 ] && missing=1
fi
exit $missing
