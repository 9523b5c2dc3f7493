// conv2d_depthwise.c: the direct kernel for depthwise convolutions (groups ==
// C == Co, one input channel per kernel: MobileNet, EfficientNet, ShuffleNet,
// ConvNeXt). im2col over a single channel builds a (kh*kw, Ho*Wo) matrix to
// multiply by a (1, kh*kw) row: all copying and no reuse. Here each tap is one
// pass over an output row, a multiply-add of a contiguous input row; the
// padding is handled by clipping each tap's range of output columns
// (conv2d_valid_range), so the inner loop has no branches.
//   y[n,c,oh,ow] = b[c] + sum_{i,j} w[c,i,j] x[n,c, oh*sh - ph + i*dh, ow*sw - pw + j*dw]
//
// Stride sw > 1: the plane is first split into its sw column phases,
//   xp[r][ih][q] = x[ih][q*sw + r]    (q < Wp = ceil(W / sw))
// so that tap column offset off reads phase r = off mod sw at q = ow +
// floor(off / sw): contiguous again, and the loops vectorise (a strided loop
// did not). The backward's dx is made in the same split layout and added
// back into the plane.
//
// Forward: parallel over (image, channel). Backward: parallel over channels,
// each walking its images, with dx (per plane) and dw in one pass over dy;
// dw sums each tap in a row of per-column float accumulators across rows and
// images (no horizontal sum per row), added up at the end.
// The loops are plain C with `omp simd`; on x86-64 the same bodies are also
// compiled for AVX2+FMA and chosen at run time (simd.h), as 8-float vectors.
// The reference is conv2d_forward_ref / conv2d_backward_ref (ops/conv2d.c).
#include <stdlib.h>
#include <stddef.h>
#include <string.h>
#include "ops.h"
#include "simd.h"
#include "../engine/util.h"

// VISCNN_NO_DEPTHWISE=1 sends these convs to im2col (benchmarks/families.sh compares the two).
int conv2d_depthwise_applies(const conv2d_dims *d) {
    const char *e = getenv("VISCNN_NO_DEPTHWISE");
    if (e && *e && *e != '0') return 0;
    return d->groups > 1 && d->groups == d->C && d->Co == d->C && d->kh * d->kw > 1 && d->kw <= 64 && d->kh <= 64;
}

static inline int floor_div(int a, int b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }

// The per-tap geometry, the same for every row: output columns [lo, hi) read
// the (phase) row at column ow + q0, in phase r.
typedef struct { int lo, hi, r, q0; } tap_cols;
static void tap_columns(tap_cols *t, const conv2d_dims *d) {
    for (int j = 0; j < d->kw; j++) {
        const int off = j * d->dw - d->pw;
        conv2d_valid_range(off, d->sw, d->W, d->Wo, &t[j].lo, &t[j].hi);
        t[j].q0 = floor_div(off, d->sw);
        t[j].r = off - t[j].q0 * d->sw;
    }
}

// xp: (sw, H, Wp) the column phases of plane x: (H, W)
static inline void split_phases(float *xp, const float *x, int H, int W, int sw, int Wp) {
    for (int r = 0; r < sw; r++)
        for (int ih = 0; ih < H; ih++) {
            float *o = xp + ((size_t)r * H + ih) * Wp;
            const float *xr = x + (size_t)ih * W + r;
            const int n = (W - r + sw - 1) / sw;   // columns r, r + sw, ... < W
            for (int q = 0; q < n; q++) o[q] = xr[(size_t)q * sw];
            for (int q = n; q < Wp; q++) o[q] = 0.0f;
        }
}
// dx: (H, W) += the phases dxp: (sw, H, Wp)
static inline void add_phases(float *dx, const float *dxp, int H, int W, int sw, int Wp) {
    for (int r = 0; r < sw; r++)
        for (int ih = 0; ih < H; ih++) {
            const float *o = dxp + ((size_t)r * H + ih) * Wp;
            float *xr = dx + (size_t)ih * W + r;
            const int n = (W - r + sw - 1) / sw;
            for (int q = 0; q < n; q++) xr[(size_t)q * sw] += o[q];
        }
}

// One (image, channel) plane of the forward. src: the plane (sw == 1, row
// length Wp = W) or its phases.
__attribute__((always_inline)) static inline void fwd_plane(float *yp, const float *src, int Wp, const float *wc, float bias,
                                                             const tap_cols *tc, const conv2d_dims *d) {
    const int H = d->H, Ho = d->Ho, Wo = d->Wo, kh = d->kh, kw = d->kw;
    for (int oh = 0; oh < Ho; oh++) {
        float *yr = yp + (size_t)oh * Wo;
        #pragma omp simd
        for (int ow = 0; ow < Wo; ow++) yr[ow] = bias;
        for (int i = 0; i < kh; i++) {
            const int ih = oh * d->sh - d->ph + i * d->dh;
            if (ih < 0 || ih >= H) continue;
            for (int j = 0; j < kw; j++) {
                const float wv = wc[i * kw + j];
                const int lo = tc[j].lo, n = tc[j].hi - lo;
                // column ow reads ow + q0 (q0 < 0 left of the border): the
                // pointers start at lo, whose element exists, never before
                // the plane (pointer arithmetic out of the array is undefined)
                const float *xs = src + (((ptrdiff_t)tc[j].r * H + ih) * Wp + tc[j].q0 + lo);
                float *yo = yr + lo;
                #pragma omp simd
                for (int k = 0; k < n; k++) yo[k] += wv * xs[k];
            }
        }
    }
}

// One channel of the backward, over all images: dxc/xc/dyc at image 0 with
// per-image strides; dx planes += (NULL: none), dwacc (kh*kw, Wo) +=.
// xbuf, dxbuf: (sw, H, Wp) when sw > 1.
__attribute__((always_inline)) static inline void bwd_channel(float *dxc, float *dwacc, const float *dyc, const float *xc,
                                                               const float *wc, size_t xstride, size_t ystride,
                                                               float *xbuf, float *dxbuf, int Wp, const tap_cols *tc,
                                                               const conv2d_dims *d) {
    const int H = d->H, W = d->W, Ho = d->Ho, Wo = d->Wo, kh = d->kh, kw = d->kw, sw = d->sw;
    for (int n = 0; n < d->N; n++) {
        const float *dyp = dyc + n * ystride;
        const float *src = xc ? xc + n * xstride : NULL;
        float *dst = dxc ? dxc + n * xstride : NULL;
        if (sw > 1) {
            if (src) { split_phases(xbuf, src, H, W, sw, Wp); src = xbuf; }
            if (dst) { memset(dxbuf, 0, sizeof(float) * sw * H * Wp); dst = dxbuf; }
        }
        for (int oh = 0; oh < Ho; oh++) {
            const float *dyr = dyp + (size_t)oh * Wo;
            for (int i = 0; i < kh; i++) {
                const int ih = oh * d->sh - d->ph + i * d->dh;
                if (ih < 0 || ih >= H) continue;
                for (int j = 0; j < kw; j++) {
                    const int lo = tc[j].lo, n = tc[j].hi - lo;
                    // as in the forward: offsets from lo, signed
                    const ptrdiff_t at = ((ptrdiff_t)tc[j].r * H + ih) * Wp + tc[j].q0 + lo;
                    const float *dy = dyr + lo;
                    if (dwacc) {
                        const float *xs = src + at;
                        float *a = dwacc + (size_t)(i * kw + j) * Wo + lo;
                        #pragma omp simd
                        for (int k = 0; k < n; k++) a[k] += dy[k] * xs[k];
                    }
                    if (dst) {
                        const float wv = wc[i * kw + j];
                        float *ds = dst + at;
                        #pragma omp simd
                        for (int k = 0; k < n; k++) ds[k] += wv * dy[k];
                    }
                }
            }
        }
        if (sw > 1 && dxc) add_phases(dxc + n * xstride, dxbuf, H, W, sw, Wp);
    }
}

#if SIMD_X86
__attribute__((target("avx2,fma"))) static void fwd_plane_avx2(float *yp, const float *src, int Wp, const float *wc,
                                                               float bias, const tap_cols *tc, const conv2d_dims *d) {
    fwd_plane(yp, src, Wp, wc, bias, tc, d);
}
__attribute__((target("avx2,fma"))) static void bwd_channel_avx2(float *dxc, float *dwacc, const float *dyc,
                                                                 const float *xc, const float *wc, size_t xstride,
                                                                 size_t ystride, float *xbuf, float *dxbuf, int Wp,
                                                                 const tap_cols *tc, const conv2d_dims *d) {
    bwd_channel(dxc, dwacc, dyc, xc, wc, xstride, ystride, xbuf, dxbuf, Wp, tc, d);
}
#endif
static void fwd_plane_generic(float *yp, const float *src, int Wp, const float *wc, float bias, const tap_cols *tc,
                              const conv2d_dims *d) {
    fwd_plane(yp, src, Wp, wc, bias, tc, d);
}
static void bwd_channel_generic(float *dxc, float *dwacc, const float *dyc, const float *xc, const float *wc,
                                size_t xstride, size_t ystride, float *xbuf, float *dxbuf, int Wp, const tap_cols *tc,
                                const conv2d_dims *d) {
    bwd_channel(dxc, dwacc, dyc, xc, wc, xstride, ystride, xbuf, dxbuf, Wp, tc, d);
}

// VISCNN_GENERIC=1 forces the portable loops (tests run both).
static int use_avx2(void) {
#if SIMD_X86
    const char *e = getenv("VISCNN_GENERIC");
    return cpu_has_avx2_fma() && !(e && *e && *e != '0');
#else
    return 0;
#endif
}

// y: (N,C,Ho,Wo)  x: (N,C,H,W)  w: (C,1,kh,kw)  b: (C) or NULL
void conv2d_depthwise_forward(float *y, const float *x, const float *w, const float *b, const conv2d_dims *d) {
    const int C = d->C, H = d->H, W = d->W, Ho = d->Ho, Wo = d->Wo, kk = d->kh * d->kw, sw = d->sw;
    // rows shorter than 16 columns run faster in the 4-wide loops than in a
    // mostly-remainder 8-wide one (7x7 and 14x14 maps)
    const int Wp = sw > 1 ? (W + sw - 1) / sw : W, avx2 = Wo >= 16 && use_avx2();
    tap_cols tc[64];
    tap_columns(tc, d);
    #pragma omp parallel
    {
        float *buf = sw > 1 ? malloc_check(sizeof(float) * sw * H * Wp) : NULL;
        #pragma omp for collapse(2) schedule(static)
        for (int n = 0; n < d->N; n++)
            for (int c = 0; c < C; c++) {
                const float *src = x + ((size_t)n * C + c) * H * W;
                if (buf) { split_phases(buf, src, H, W, sw, Wp); src = buf; }
                float *yp = y + ((size_t)n * C + c) * Ho * Wo;
                const float *wc = w + (size_t)c * kk, bias = b ? b[c] : 0.0f;
#if SIMD_X86
                if (avx2) { fwd_plane_avx2(yp, src, Wp, wc, bias, tc, d); continue; }
#endif
                (void)avx2;
                fwd_plane_generic(yp, src, Wp, wc, bias, tc, d);
            }
        free(buf);
    }
}

// dx += (N,C,H,W) (may be NULL)  dw += (C,1,kh,kw) (may be NULL)  dy: (N,C,Ho,Wo)
// x: needed for dw   w: needed for dx
void conv2d_depthwise_backward(float *dx, float *dw, const float *dy, const float *x, const float *w,
                               const conv2d_dims *d) {
    if (!dx && !dw) return;
    const int C = d->C, H = d->H, W = d->W, Wo = d->Wo, kk = d->kh * d->kw, sw = d->sw;
    const int Wp = sw > 1 ? (W + sw - 1) / sw : W, avx2 = use_avx2();
    const size_t xs = (size_t)C * H * W, ys = (size_t)C * d->Ho * Wo;
    tap_cols tc[64];
    tap_columns(tc, d);
    #pragma omp parallel
    {
        float *acc = dw ? malloc_check(sizeof(float) * kk * Wo) : NULL;
        float *xbuf = sw > 1 && dw ? malloc_check(sizeof(float) * sw * H * Wp) : NULL;
        float *dxbuf = sw > 1 && dx ? malloc_check(sizeof(float) * sw * H * Wp) : NULL;
        #pragma omp for schedule(static)
        for (int c = 0; c < C; c++) {
            float *dxc = dx ? dx + (size_t)c * H * W : NULL;
            const float *xc = dw ? x + (size_t)c * H * W : NULL, *dyc = dy + (size_t)c * d->Ho * Wo;
            const float *wc = w ? w + (size_t)c * kk : NULL;
            if (acc) memset(acc, 0, sizeof(float) * kk * Wo);
#if SIMD_X86
            if (avx2) bwd_channel_avx2(dxc, acc, dyc, xc, wc, xs, ys, xbuf, dxbuf, Wp, tc, d);
            else
#endif
                bwd_channel_generic(dxc, acc, dyc, xc, wc, xs, ys, xbuf, dxbuf, Wp, tc, d);
            (void)avx2;
            if (acc)
                for (int k = 0; k < kk; k++) {
                    const float *a = acc + (size_t)k * Wo;
                    double s = 0;
                    for (int ow = 0; ow < Wo; ow++) s += a[ow];
                    dw[(size_t)c * kk + k] += (float)s;
                }
        }
        free(acc); free(xbuf); free(dxbuf);
    }
}
