// flatten.cu: the CUDA twin of ops/flatten.c: (N,C,H,W) -> (N, C*H*W), the
// same memory; a device copy forward, an accumulation backward.
#include "kernels.h"

__global__ static void acc_kernel(float *dx, const float *dy, size_t n) {
    CUDA_FOR(i, n) dx[i] += dy[i];
}

void flatten_forward_cuda(float *y, const float *x, size_t n) {
    if (y != x) cuda_check(cudaMemcpyAsync(y, x, n * sizeof(float), cudaMemcpyDeviceToDevice, 0));
}
void flatten_backward_cuda(float *dx, const float *dy, size_t n) {
    acc_kernel<<<cuda_blocks(n), CUDA_THREADS>>>(dx, dy, n);
    cuda_launch_check();
}
