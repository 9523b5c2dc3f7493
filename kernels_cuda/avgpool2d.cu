// avgpool2d.cu: the CUDA twin of ops/avgpool2d.c, PyTorch's divisor:
// divisor_override if set; else with count_include_pad the window clipped to
// the padded input (H+2p), else clipped to the input. The backward gathers.
#include "kernels.h"

// the divisor of output (oh, ow)
__device__ static int avg_div(const pool2d_dims *d, int oh, int ow) {
    int inside = 0, padded = 0;
    for (int i = 0; i < d->kh; i++)
        for (int j = 0; j < d->kw; j++) {
            int h = oh * d->sh - d->ph + i, w = ow * d->sw - d->pw + j;
            if (h < d->H + d->ph && w < d->W + d->pw) padded++;
            if (h >= 0 && h < d->H && w >= 0 && w < d->W) inside++;
        }
    return d->divisor_override ? d->divisor_override : d->count_include_pad ? padded : inside;
}

__global__ static void avgpool_fwd_kernel(float *y, const float *x, pool2d_dims d) {
    CUDA_FOR(o, (size_t)d.N * d.C * d.Ho * d.Wo) {
        int ow = (int)(o % d.Wo), oh = (int)(o / d.Wo % d.Ho);
        const float *xp = x + o / ((size_t)d.Wo * d.Ho) * d.H * d.W;
        float s = 0.0f;
        int inside = 0;
        for (int i = 0; i < d.kh; i++)
            for (int j = 0; j < d.kw; j++) {
                int h = oh * d.sh - d.ph + i, w = ow * d.sw - d.pw + j;
                if (h < 0 || h >= d.H || w < 0 || w >= d.W) continue;
                s += xp[h * d.W + w];
                inside++;
            }
        y[o] = inside ? s / (float)avg_div(&d, oh, ow) : 0.0f;
    }
}

__global__ static void avgpool_bwd_kernel(float *dx, const float *dy, pool2d_dims d) {
    CUDA_FOR(t, (size_t)d.N * d.C * d.H * d.W) {
        int w = (int)(t % d.W), h = (int)(t / d.W % d.H);
        const float *dyp = dy + t / ((size_t)d.W * d.H) * d.Ho * d.Wo;
        float s = 0.0f;
        for (int i = 0; i < d.kh; i++) {
            int oh = h + d.ph - i;
            if (oh < 0 || oh % d.sh) continue;
            oh /= d.sh;
            if (oh >= d.Ho) continue;
            for (int j = 0; j < d.kw; j++) {
                int ow = w + d.pw - j;
                if (ow < 0 || ow % d.sw) continue;
                ow /= d.sw;
                if (ow >= d.Wo) continue;
                s += dyp[oh * d.Wo + ow] / (float)avg_div(&d, oh, ow);
            }
        }
        dx[t] += s;
    }
}

// y: (N,C,Ho,Wo)  x: (N,C,H,W)
void avgpool2d_forward_cuda(float *y, const float *x, const pool2d_dims *d) {
    avgpool_fwd_kernel<<<cuda_blocks((size_t)d->N * d->C * d->Ho * d->Wo), CUDA_THREADS>>>(y, x, *d);
    cuda_launch_check();
}
// dx += (N,C,H,W)  dy: (N,C,Ho,Wo)
void avgpool2d_backward_cuda(float *dx, const float *dy, const pool2d_dims *d) {
    avgpool_bwd_kernel<<<cuda_blocks((size_t)d->N * d->C * d->H * d->W), CUDA_THREADS>>>(dx, dy, *d);
    cuda_launch_check();
}
