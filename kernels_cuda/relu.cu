// relu.cu: the CUDA twin of ops/relu.c. y = x < 0 ? 0 : x (NaN passes, -0
// stays); backward passes dy where y > 0 or y is NaN (dy zeroed where y <= 0).
#include "kernels.h"

__global__ static void relu_fwd_kernel(float *y, const float *x, size_t n) {
    CUDA_FOR(i, n) y[i] = x[i] < 0.0f ? 0.0f : x[i];
}
__global__ static void relu_bwd_kernel(float *dx, const float *dy, const float *y, size_t n) {
    CUDA_FOR(i, n) dx[i] += y[i] <= 0.0f ? 0.0f : dy[i];
}

// y: (n)  x: (n)
void relu_forward_cuda(float *y, const float *x, size_t n) {
    relu_fwd_kernel<<<cuda_blocks(n), CUDA_THREADS>>>(y, x, n);
    cuda_launch_check();
}
// dx += (n)  dy: (n)  y: (n) the forward's output
void relu_backward_cuda(float *dx, const float *dy, const float *y, size_t n) {
    relu_bwd_kernel<<<cuda_blocks(n), CUDA_THREADS>>>(dx, dy, y, n);
    cuda_launch_check();
}
