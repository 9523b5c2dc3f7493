// lrn.cu: the CUDA twin of ops/lrn.c (PyTorch's LocalResponseNorm across
// channels): s_c = k + alpha/size * sum_{c' in [c - size/2, c + (size-1)/2]} x_c'^2,
// y_c = x_c * s_c^-beta. The backward gathers: x_c receives from every output
// c' whose window holds c, i.e. c' in [c - (size-1)/2, c + size/2].
#include <math.h>
#include "kernels.h"

__global__ static void lrn_fwd_kernel(float *y, float *scale, const float *x, int C, int HW, int size,
                                      float alpha, float beta, float k, size_t n) {
    CUDA_FOR(o, n) {
        int p = (int)(o % HW), c = (int)(o / HW % C);
        size_t base = o / ((size_t)HW * C) * C * HW;
        float sum = 0.0f;
        for (int cc = c - size / 2; cc <= c + (size - 1) / 2; cc++) {
            if (cc < 0 || cc >= C) continue;
            float v = x[base + (size_t)cc * HW + p];
            sum += v * v;
        }
        scale[o] = sum / (float)size * alpha + k;
        y[o] = x[o] / powf(scale[o], beta);
    }
}

__global__ static void lrn_bwd_kernel(float *dx, const float *dy, const float *scale, const float *x, int C, int HW,
                                      int size, float alpha, float beta, size_t n) {
    CUDA_FOR(o, n) {
        int p = (int)(o % HW), c = (int)(o / HW % C);
        size_t base = o / ((size_t)HW * C) * C * HW;
        double acc = dy[o] * pow((double)scale[o], -beta);
        double cross = 0;
        for (int cc = c - (size - 1) / 2; cc <= c + size / 2; cc++) {
            if (cc < 0 || cc >= C) continue;
            size_t oc = base + (size_t)cc * HW + p;
            cross += -(double)dy[oc] * x[oc] * beta * pow((double)scale[oc], -beta - 1.0) * alpha / size * 2.0;
        }
        dx[o] += (float)(acc + cross * x[o]);
    }
}

// y: (N,C,HW)  scale: (N,C,HW) saved s  x: (N,C,HW)
void lrn_forward_cuda(float *y, float *scale, const float *x, int N, int C, int HW,
                      int size, float alpha, float beta, float k) {
    size_t n = (size_t)N * C * HW;
    lrn_fwd_kernel<<<cuda_blocks(n), CUDA_THREADS>>>(y, scale, x, C, HW, size, alpha, beta, k, n);
    cuda_launch_check();
}
// dx += (N,C,HW)
void lrn_backward_cuda(float *dx, const float *dy, const float *scale, const float *x, int N, int C, int HW,
                       int size, float alpha, float beta, float k) {
    (void)k;
    size_t n = (size_t)N * C * HW;
    lrn_bwd_kernel<<<cuda_blocks(n), CUDA_THREADS>>>(dx, dy, scale, x, C, HW, size, alpha, beta, n);
    cuda_launch_check();
}
