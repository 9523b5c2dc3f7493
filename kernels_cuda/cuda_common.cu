// cuda_common.cu: checked calls, the debug switch and the cuBLAS handle.
#include <string.h>
#include "cuda_common.h"

static void fail_cuda(cudaError_t e, const char *what, const char *file, int line) {
    fprintf(stderr, "viscnn: CUDA error %s (%s) in %s at %s:%d\n", cudaGetErrorName(e), cudaGetErrorString(e), what, file, line);
    abort();
}

// With VISCNN_CUDA_SYNC=1 every checked call also waits for the device and
// checks what it has run so far.
static void debug_sync(const char *what, const char *file, int line) {
    if (!cuda_sync_debug()) return;
    cudaError_t e = cudaDeviceSynchronize();
    if (e != cudaSuccess) fail_cuda(e, what, file, line);
}

void cuda_check_(cudaError_t e, const char *what, const char *file, int line) {
    if (e != cudaSuccess) fail_cuda(e, what, file, line);
    debug_sync(what, file, line);
}

void cublas_check_(cublasStatus_t s, const char *what, const char *file, int line) {
    if (s == CUBLAS_STATUS_SUCCESS) { debug_sync(what, file, line); return; }
    fprintf(stderr, "viscnn: cuBLAS error %s (%s) in %s at %s:%d\n", cublasGetStatusName(s), cublasGetStatusString(s),
            what, file, line);
    abort();
}


int cuda_sync_debug(void) {
    static int on = -1;
    if (on < 0) {
        const char *e = getenv("VISCNN_CUDA_SYNC");
        on = e && *e && strcmp(e, "0") != 0;
    }
    return on;
}

void cuda_launch_check_(const char *file, int line) {
    cuda_check_(cudaGetLastError(), "kernel launch", file, line);
}

// One handle per host thread: cuBLAS handles must not be used by two threads
// at once, and the server runs its jobs on several.
cublasHandle_t cuda_blas(void) {
    static thread_local cublasHandle_t h;
    if (!h) {
        cublas_check(cublasCreate(&h));
        // FP32 as the CPU computes it: the default math mode never rounds inputs to TF32
        // (unless NVIDIA_TF32_OVERRIDE=1 is set in the environment).
        cublas_check(cublasSetMathMode(h, CUBLAS_DEFAULT_MATH));
    }
    return h;
}
