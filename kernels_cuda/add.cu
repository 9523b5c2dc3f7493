// add.cu: the CUDA twin of ops/add.c: y = a + b (same shape); da += dy, db += dy.
#include "kernels.h"

__global__ static void add_fwd_kernel(float *y, const float *a, const float *b, size_t n) {
    CUDA_FOR(i, n) y[i] = a[i] + b[i];
}
__global__ static void acc_kernel(float *dx, const float *dy, size_t n) {
    CUDA_FOR(i, n) dx[i] += dy[i];
}

// y, a, b: (n)
void add_forward_cuda(float *y, const float *a, const float *b, size_t n) {
    add_fwd_kernel<<<cuda_blocks(n), CUDA_THREADS>>>(y, a, b, n);
    cuda_launch_check();
}
// da += dy, db += dy (either NULL skips)
void add_backward_cuda(float *da, float *db, const float *dy, size_t n) {
    if (da) { acc_kernel<<<cuda_blocks(n), CUDA_THREADS>>>(da, dy, n); cuda_launch_check(); }
    if (db) { acc_kernel<<<cuda_blocks(n), CUDA_THREADS>>>(db, dy, n); cuda_launch_check(); }
}
