// log_softmax.cu: the CUDA twin of ops/log_softmax.c over the last dim, one
// block per row: m = max (NaN wins), s = sum exp(x - m) in double,
// y = x - m - log s; backward dx += dy - exp(y) * sum dy.
#include <math.h>
#include "kernels.h"

__global__ static void log_softmax_fwd_kernel(float *y, const float *x, int K) {
    __shared__ float pm[CUDA_THREADS];
    __shared__ double ps[CUDA_THREADS];
    const float *xr = x + (size_t)blockIdx.x * K;
    float *yr = y + (size_t)blockIdx.x * K;
    float m = -INFINITY;
    for (int k = threadIdx.x; k < K; k += blockDim.x) m = xr[k] > m || xr[k] != xr[k] ? xr[k] : m;
    pm[threadIdx.x] = m;
    __syncthreads();
    for (int h = blockDim.x / 2; h > 0; h >>= 1) {
        if ((int)threadIdx.x < h) { float o = pm[threadIdx.x + h]; if (o > pm[threadIdx.x] || o != o) pm[threadIdx.x] = o; }
        __syncthreads();
    }
    m = pm[0];
    double s = 0;
    for (int k = threadIdx.x; k < K; k += blockDim.x) s += expf(xr[k] - m);
    ps[threadIdx.x] = s;
    __syncthreads();
    for (int h = blockDim.x / 2; h > 0; h >>= 1) {
        if ((int)threadIdx.x < h) ps[threadIdx.x] += ps[threadIdx.x + h];
        __syncthreads();
    }
    const float ls = (float)log(ps[0]);
    for (int k = threadIdx.x; k < K; k += blockDim.x) yr[k] = (xr[k] - m) - ls;
}

__global__ static void log_softmax_bwd_kernel(float *dx, const float *dy, const float *y, int K) {
    __shared__ double ps[CUDA_THREADS];
    const size_t r = (size_t)blockIdx.x * K;
    double s = 0;
    for (int k = threadIdx.x; k < K; k += blockDim.x) s += dy[r + k];
    ps[threadIdx.x] = s;
    __syncthreads();
    for (int h = blockDim.x / 2; h > 0; h >>= 1) {
        if ((int)threadIdx.x < h) ps[threadIdx.x] += ps[threadIdx.x + h];
        __syncthreads();
    }
    const float sf = (float)ps[0];
    for (int k = threadIdx.x; k < K; k += blockDim.x) dx[r + k] += dy[r + k] - expf(y[r + k]) * sf;
}

// y, x: (N,K)
void log_softmax_forward_cuda(float *y, const float *x, int N, int K) {
    log_softmax_fwd_kernel<<<N, CUDA_THREADS>>>(y, x, K);
    cuda_launch_check();
}
// dx += (N,K)  dy: (N,K)  y: the forward's output
void log_softmax_backward_cuda(float *dx, const float *dy, const float *y, int N, int K) {
    log_softmax_bwd_kernel<<<N, CUDA_THREADS>>>(dx, dy, y, K);
    cuda_launch_check();
}
