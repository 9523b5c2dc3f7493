// concat.cu: the CUDA twin of ops/concat.c, along channels. One launch per
// input: y[n, off + c, :] = x_k[n, c, :] (and back, accumulating).
#include "kernels.h"

// y: (N, Cy, HW), x: (N, Ck, HW) landing at channel off
__global__ static void concat_fwd_kernel(float *y, const float *x, int Cy, int off, int Ck, int HW, int N) {
    CUDA_FOR(t, (size_t)N * Ck * HW) {
        size_t p = t % HW, c = t / HW % Ck, n = t / ((size_t)HW * Ck);
        y[(n * Cy + off + c) * HW + p] = x[t];
    }
}
__global__ static void concat_bwd_kernel(float *dx, const float *dy, int Cy, int off, int Ck, int HW, int N) {
    CUDA_FOR(t, (size_t)N * Ck * HW) {
        size_t p = t % HW, c = t / HW % Ck, n = t / ((size_t)HW * Ck);
        dx[t] += dy[(n * Cy + off + c) * HW + p];
    }
}

// y: (N, sum C_i, HW)  xs[i]: (N, C_i, HW), device pointers in a host array
void concat_forward_cuda(float *y, const float *const *xs, const int *cs, int n_in, int N, int HW) {
    int Cy = 0, off = 0;
    for (int k = 0; k < n_in; k++) Cy += cs[k];
    for (int k = 0; k < n_in; k++) {
        concat_fwd_kernel<<<cuda_blocks((size_t)N * cs[k] * HW), CUDA_THREADS>>>(y, xs[k], Cy, off, cs[k], HW, N);
        cuda_launch_check();
        off += cs[k];
    }
}
// dxs[i] += their slices of dy (NULL skips)
void concat_backward_cuda(float *const *dxs, const float *dy, const int *cs, int n_in, int N, int HW) {
    int Cy = 0, off = 0;
    for (int k = 0; k < n_in; k++) Cy += cs[k];
    for (int k = 0; k < n_in; k++) {
        if (dxs[k]) {
            concat_bwd_kernel<<<cuda_blocks((size_t)N * cs[k] * HW), CUDA_THREADS>>>(dxs[k], dy, Cy, off, cs[k], HW, N);
            cuda_launch_check();
        }
        off += cs[k];
    }
}
