// node_sums.cu: per image and channel, the sum over the map of f(z, g) for the
// node scores (vc_run_node_sums; the CPU twin is cpu_node_sums in
// engine/backend_cpu.c): relu(z)|g|, relu(z), |g|, relu(z) g. One block per
// (image, channel), summed in double.
#include "kernels.h"

__global__ static void node_sums_kernel(double *out, const float *z, const float *g, int kind, int HW) {
    __shared__ double part[CUDA_THREADS];
    const size_t base = (size_t)blockIdx.x * HW;   // blockIdx.x = n*C + j
    double s = 0;
    for (int p = threadIdx.x; p < HW; p += blockDim.x) {
        float zv = z[base + p], rz = zv > 0 ? zv : 0.0f;
        float gv = g ? g[base + p] : 0.0f;
        switch (kind) {
        case 0: s += (double)(rz * fabsf(gv)); break;   // VC_SUM_RELU_Z_ABS_G
        case 1: s += rz; break;                         // VC_SUM_RELU_Z
        case 2: s += fabsf(gv); break;                  // VC_SUM_ABS_G
        default: s += (double)(rz * gv); break;         // VC_SUM_RELU_Z_G
        }
    }
    part[threadIdx.x] = s;
    __syncthreads();
    for (int k = blockDim.x / 2; k > 0; k >>= 1) {
        if ((int)threadIdx.x < k) part[threadIdx.x] += part[threadIdx.x + k];
        __syncthreads();
    }
    if (threadIdx.x == 0) out[blockIdx.x] = part[0];
}

void node_sums_cuda(double *out, const float *z, const float *g, int kind, int N, int C, int HW) {
    node_sums_kernel<<<(unsigned)(N * C), CUDA_THREADS>>>(out, z, g, kind, HW);
    cuda_launch_check();
}
