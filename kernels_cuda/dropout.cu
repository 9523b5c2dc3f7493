// dropout.cu: the CUDA twin of ops/dropout.c in eval mode (identity). Train
// mode draws its mask from a serial xorshift stream that the CPU owns; a
// training forward on CUDA is refused by vc_forward, so only eval is here.
#include "kernels.h"

__global__ static void acc_kernel(float *dx, const float *dy, size_t n) {
    CUDA_FOR(i, n) dx[i] += dy[i];
}

// y = x: (n)
void dropout_forward_cuda(float *y, const float *x, size_t n) {
    if (y != x) cuda_check(cudaMemcpyAsync(y, x, n * sizeof(float), cudaMemcpyDeviceToDevice, 0));
}
// dx += dy: (n)
void dropout_backward_cuda(float *dx, const float *dy, size_t n) {
    acc_kernel<<<cuda_blocks(n), CUDA_THREADS>>>(dx, dy, n);
    cuda_launch_check();
}
