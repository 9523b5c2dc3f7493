// conv2d_depthwise.c: the direct kernel for depthwise convolutions (groups ==
// C == Co, one input channel per kernel: MobileNet, EfficientNet, ShuffleNet,
// ConvNeXt). im2col over a single channel builds a (kh*kw, Ho*Wo) matrix to
// multiply by a (1, kh*kw) row: all copying and no reuse. Here each tap is one
// pass over an output row, a multiply-add of a contiguous (stride 1) or
// strided input row; the padding is handled by clipping each tap's range of
// output columns (conv2d_valid_range), so the inner loop has no branches.
//   y[n,c,oh,ow] = b[c] + sum_{i,j} w[c,i,j] x[n,c, oh*sh - ph + i*dh, ow*sw - pw + j*dw]
// Parallel over (image, channel); dw: over channels (each sums its images).
// The reference is conv2d_forward_ref / conv2d_backward_ref (ops/conv2d.c).
#include <stdlib.h>
#include <string.h>
#include "ops.h"

// VISCNN_NO_DEPTHWISE=1 sends these convs to im2col (benchmarks/families.sh compares the two).
int conv2d_depthwise_applies(const conv2d_dims *d) {
    const char *e = getenv("VISCNN_NO_DEPTHWISE");
    if (e && *e && *e != '0') return 0;
    return d->groups > 1 && d->groups == d->C && d->Co == d->C && d->kh * d->kw > 1 && d->kh * d->kw <= 64 * 64;
}

// y: (N,C,Ho,Wo)  x: (N,C,H,W)  w: (C,1,kh,kw)  b: (C) or NULL
void conv2d_depthwise_forward(float *y, const float *x, const float *w, const float *b, const conv2d_dims *d) {
    const int C = d->C, H = d->H, W = d->W, Ho = d->Ho, Wo = d->Wo, kh = d->kh, kw = d->kw;
    #pragma omp parallel for collapse(2) schedule(static)
    for (int n = 0; n < d->N; n++)
        for (int c = 0; c < C; c++) {
            const float *xp = x + ((size_t)n * C + c) * H * W, *wc = w + (size_t)c * kh * kw;
            float *yp = y + ((size_t)n * C + c) * Ho * Wo;
            for (int oh = 0; oh < Ho; oh++) {
                float *yr = yp + (size_t)oh * Wo;
                const float bias = b ? b[c] : 0.0f;
                for (int ow = 0; ow < Wo; ow++) yr[ow] = bias;
                for (int i = 0; i < kh; i++) {
                    const int ih = oh * d->sh - d->ph + i * d->dh;
                    if (ih < 0 || ih >= H) continue;
                    const float *xr = xp + (size_t)ih * W;
                    for (int j = 0; j < kw; j++) {
                        const int off = j * d->dw - d->pw;
                        const float wv = wc[i * kw + j];
                        int lo, hi;
                        conv2d_valid_range(off, d->sw, W, Wo, &lo, &hi);
                        if (d->sw == 1) {
                            const float *xs = xr + off;
                            #pragma omp simd
                            for (int ow = lo; ow < hi; ow++) yr[ow] += wv * xs[ow];
                        } else {
                            for (int ow = lo; ow < hi; ow++) yr[ow] += wv * xr[ow * d->sw + off];
                        }
                    }
                }
            }
        }
}

// dx += (N,C,H,W) (may be NULL)  dw += (C,1,kh,kw) (may be NULL)  dy: (N,C,Ho,Wo)
// x: needed for dw   w: needed for dx
void conv2d_depthwise_backward(float *dx, float *dw, const float *dy, const float *x, const float *w,
                               const conv2d_dims *d) {
    const int C = d->C, H = d->H, W = d->W, Ho = d->Ho, Wo = d->Wo, kh = d->kh, kw = d->kw;
    if (dx) {
        // the forward's taps, scattered: each (image, channel) plane is its own
        #pragma omp parallel for collapse(2) schedule(static)
        for (int n = 0; n < d->N; n++)
            for (int c = 0; c < C; c++) {
                float *dxp = dx + ((size_t)n * C + c) * H * W;
                const float *dyp = dy + ((size_t)n * C + c) * Ho * Wo, *wc = w + (size_t)c * kh * kw;
                for (int oh = 0; oh < Ho; oh++) {
                    const float *dyr = dyp + (size_t)oh * Wo;
                    for (int i = 0; i < kh; i++) {
                        const int ih = oh * d->sh - d->ph + i * d->dh;
                        if (ih < 0 || ih >= H) continue;
                        float *dxr = dxp + (size_t)ih * W;
                        for (int j = 0; j < kw; j++) {
                            const int off = j * d->dw - d->pw;
                            const float wv = wc[i * kw + j];
                            int lo, hi;
                            conv2d_valid_range(off, d->sw, W, Wo, &lo, &hi);
                            if (d->sw == 1) {
                                float *ds = dxr + off;
                                #pragma omp simd
                                for (int ow = lo; ow < hi; ow++) ds[ow] += wv * dyr[ow];
                            } else {
                                for (int ow = lo; ow < hi; ow++) dxr[ow * d->sw + off] += wv * dyr[ow];
                            }
                        }
                    }
                }
            }
    }
    if (dw) {
        #pragma omp parallel for schedule(static)
        for (int c = 0; c < C; c++) {
            float acc[64 * 64];   // kh*kw taps; larger kernels take the GEMM path (see applies)
            const int kk = kh * kw;
            for (int k = 0; k < kk; k++) acc[k] = 0.0f;
            for (int n = 0; n < d->N; n++) {
                const float *xp = x + ((size_t)n * C + c) * H * W, *dyp = dy + ((size_t)n * C + c) * Ho * Wo;
                for (int oh = 0; oh < Ho; oh++) {
                    const float *dyr = dyp + (size_t)oh * Wo;
                    for (int i = 0; i < kh; i++) {
                        const int ih = oh * d->sh - d->ph + i * d->dh;
                        if (ih < 0 || ih >= H) continue;
                        const float *xr = xp + (size_t)ih * W;
                        for (int j = 0; j < kw; j++) {
                            const int off = j * d->dw - d->pw;
                            int lo, hi;
                            conv2d_valid_range(off, d->sw, W, Wo, &lo, &hi);
                            float s = 0.0f;
                            if (d->sw == 1) {
                                const float *xs = xr + off;
                                #pragma omp simd reduction(+:s)
                                for (int ow = lo; ow < hi; ow++) s += dyr[ow] * xs[ow];
                            } else {
                                for (int ow = lo; ow < hi; ow++) s += dyr[ow] * xr[ow * d->sw + off];
                            }
                            acc[i * kw + j] += s;
                        }
                    }
                }
            }
            for (int k = 0; k < kk; k++) dw[(size_t)c * kk + k] += acc[k];
        }
    }
}
