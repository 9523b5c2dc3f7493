// cuda_common.h: what every kernels_cuda/*.cu shares: checked CUDA and cuBLAS
// calls, the check after every launch (and VISCNN_CUDA_SYNC=1, which also
// synchronises after every call so that an error shows where it happened),
// the cuBLAS handle, and grid sizes.
//
// A CUDA error inside an op is not a user error (shapes were checked when the
// model loaded, memory was planned when the run was made): like malloc_check,
// it names the call, file and line and aborts.
#pragma once
#include <cuda_runtime.h>
#include <cublas_v2.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#ifdef __cplusplus
extern "C" {
#endif

#define cuda_check(call) cuda_check_((call), #call, __FILE__, __LINE__)
#define cublas_check(call) cublas_check_((call), #call, __FILE__, __LINE__)
// After every kernel launch.
#define cuda_launch_check() cuda_launch_check_(__FILE__, __LINE__)

void cuda_check_(cudaError_t e, const char *what, const char *file, int line);
void cublas_check_(cublasStatus_t s, const char *what, const char *file, int line);
void cuda_launch_check_(const char *file, int line);
// VISCNN_CUDA_SYNC=1: synchronise after every call and launch (slow; for debugging).
int cuda_sync_debug(void);

// This thread's cuBLAS handle (pure FP32: no TF32), on the default stream.
cublasHandle_t cuda_blas(void);

#ifdef __cplusplus
}
#endif

// Grid for n independent elements with 256 threads a block (grid-stride loops).
static inline unsigned cuda_blocks(size_t n) {
    size_t b = (n + 255) / 256;
    return (unsigned)(b > 65535u * 16u ? 65535u * 16u : (b ? b : 1));
}
#define CUDA_THREADS 256
#define CUDA_FOR(i, n) for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < (size_t)(n); \
                            i += (size_t)blockDim.x * gridDim.x)
