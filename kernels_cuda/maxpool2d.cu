// maxpool2d.cu: the CUDA twin of ops/maxpool2d.c. Padding is -inf; the first
// maximum in row-major window order wins; NaN propagates; idx is the flat
// h*W+w of the winner in its (H,W) plane. The backward gathers (each input
// element sums the windows that chose it), so it is deterministic.
#include <math.h>
#include "kernels.h"

__global__ static void maxpool_fwd_kernel(float *y, int32_t *idx, const float *x, pool2d_dims d) {
    CUDA_FOR(o, (size_t)d.N * d.C * d.Ho * d.Wo) {
        int ow = (int)(o % d.Wo), oh = (int)(o / d.Wo % d.Ho);
        const float *xp = x + o / ((size_t)d.Wo * d.Ho) * d.H * d.W;
        float m = -INFINITY;
        int32_t mi = -1;
        for (int i = 0; i < d.kh; i++) {
            int h = oh * d.sh - d.ph + i * d.dh;
            if (h < 0 || h >= d.H) continue;
            for (int j = 0; j < d.kw; j++) {
                int w = ow * d.sw - d.pw + j * d.dw;
                if (w < 0 || w >= d.W) continue;
                float v = xp[h * d.W + w];
                if (mi < 0) mi = h * d.W + w;
                if (v > m || isnan(v)) { m = v; mi = h * d.W + w; }
            }
        }
        y[o] = m;
        idx[o] = mi;
    }
}

__global__ static void maxpool_bwd_kernel(float *dx, const float *dy, const int32_t *idx, pool2d_dims d) {
    CUDA_FOR(t, (size_t)d.N * d.C * d.H * d.W) {
        int w = (int)(t % d.W), h = (int)(t / d.W % d.H);
        size_t pl = t / ((size_t)d.W * d.H), base = pl * d.Ho * d.Wo;
        const int32_t me = h * d.W + w;
        float s = 0.0f;
        // output rows/cols whose window can contain (h, w)
        for (int i = 0; i < d.kh; i++) {
            int oh = h + d.ph - i * d.dh;
            if (oh < 0 || oh % d.sh) continue;
            oh /= d.sh;
            if (oh >= d.Ho) continue;
            for (int j = 0; j < d.kw; j++) {
                int ow = w + d.pw - j * d.dw;
                if (ow < 0 || ow % d.sw) continue;
                ow /= d.sw;
                if (ow >= d.Wo) continue;
                size_t o = base + (size_t)oh * d.Wo + ow;
                if (idx[o] == me) s += dy[o];
            }
        }
        dx[t] += s;
    }
}

// y: (N,C,Ho,Wo)  idx: (N,C,Ho,Wo)  x: (N,C,H,W)
void maxpool2d_forward_cuda(float *y, int32_t *idx, const float *x, const pool2d_dims *d) {
    maxpool_fwd_kernel<<<cuda_blocks((size_t)d->N * d->C * d->Ho * d->Wo), CUDA_THREADS>>>(y, idx, x, *d);
    cuda_launch_check();
}
// dx += (N,C,H,W)  dy: (N,C,Ho,Wo)  idx: the forward's argmax
void maxpool2d_backward_cuda(float *dx, const float *dy, const int32_t *idx, const pool2d_dims *d) {
    maxpool_bwd_kernel<<<cuda_blocks((size_t)d->N * d->C * d->H * d->W), CUDA_THREADS>>>(dx, dy, idx, *d);
    cuda_launch_check();
}
