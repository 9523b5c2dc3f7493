// batchnorm2d.cu: the CUDA twin of ops/batchnorm2d.c (eval mode):
// y = (x - mean) / sqrt(var + eps) * gamma + beta per channel; gamma/beta NULL
// = affine=False. Per-channel factors in double, as the reference.
#include <math.h>
#include "kernels.h"

__global__ static void bn_fwd_kernel(float *y, const float *x, const float *gamma, const float *beta,
                                     const float *mean, const float *var, float eps, int C, int HW, size_t n) {
    CUDA_FOR(o, n) {
        int c = (int)(o / HW % C);
        double xhat = ((double)x[o] - mean[c]) / sqrt((double)var[c] + eps);
        y[o] = (float)(xhat * (gamma ? gamma[c] : 1.0) + (beta ? beta[c] : 0.0));
    }
}

__global__ static void bn_dx_kernel(float *dx, const float *dy, const float *gamma, const float *var, float eps,
                                    int C, int HW, size_t n) {
    CUDA_FOR(o, n) {
        int c = (int)(o / HW % C);
        dx[o] += (float)(dy[o] * (gamma ? gamma[c] : 1.0) / sqrt((double)var[c] + eps));
    }
}

// one block per channel: dgamma[c] += sum dy (x - mean) / sqrt(var + eps), dbeta[c] += sum dy
__global__ static void bn_param_kernel(float *dgamma, float *dbeta, const float *dy, const float *x, const float *mean,
                                       const float *var, float eps, int N, int C, int HW) {
    __shared__ double pg[CUDA_THREADS], pb[CUDA_THREADS];
    const int c = blockIdx.x;
    const double invstd = 1.0 / sqrt((double)var[c] + eps);
    double sg = 0, sb = 0;
    for (size_t q = threadIdx.x; q < (size_t)N * HW; q += blockDim.x) {
        size_t o = ((q / HW) * C + c) * HW + q % HW;
        sg += dy[o] * ((double)x[o] - mean[c]) * invstd;
        sb += dy[o];
    }
    pg[threadIdx.x] = sg; pb[threadIdx.x] = sb;
    __syncthreads();
    for (int k = blockDim.x / 2; k > 0; k >>= 1) {
        if ((int)threadIdx.x < k) { pg[threadIdx.x] += pg[threadIdx.x + k]; pb[threadIdx.x] += pb[threadIdx.x + k]; }
        __syncthreads();
    }
    if (threadIdx.x == 0) {
        if (dgamma) dgamma[c] += (float)pg[0];
        if (dbeta) dbeta[c] += (float)pb[0];
    }
}

// y, x: (N,C,HW)  gamma, beta, mean, var: (C)
void batchnorm2d_forward_cuda(float *y, const float *x, const float *gamma, const float *beta,
                              const float *mean, const float *var, float eps, int N, int C, int HW) {
    size_t n = (size_t)N * C * HW;
    bn_fwd_kernel<<<cuda_blocks(n), CUDA_THREADS>>>(y, x, gamma, beta, mean, var, eps, C, HW, n);
    cuda_launch_check();
}
// dx += (N,C,HW)  dgamma += (C)  dbeta += (C)
void batchnorm2d_backward_cuda(float *dx, float *dgamma, float *dbeta, const float *dy,
                               const float *x, const float *gamma, const float *mean, const float *var,
                               float eps, int N, int C, int HW) {
    size_t n = (size_t)N * C * HW;
    if (dx) {
        bn_dx_kernel<<<cuda_blocks(n), CUDA_THREADS>>>(dx, dy, gamma, var, eps, C, HW, n);
        cuda_launch_check();
    }
    if (dgamma || dbeta) {
        bn_param_kernel<<<C, CUDA_THREADS>>>(dgamma, dbeta, dy, x, mean, var, eps, N, C, HW);
        cuda_launch_check();
    }
}
