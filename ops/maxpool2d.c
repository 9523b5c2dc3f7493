// maxpool2d.c: max pooling with padding, dilation and ceil_mode, as PyTorch's
// CPU max_pool2d_with_indices (NCHW contiguous).
//
// Window of output (oh,ow): rows oh*sh - ph + i*dh, i in [0,kh), clipped to
// [0,H); likewise columns. Padding never wins (it counts as -inf). Within the
// window, in row-major order, a value replaces the running max when
// `v > max || isnan(v)` (PyTorch's rule): ties keep the first maximum, and a
// NaN wins (the last NaN's index is kept). An all -inf window reports its
// first in-range element.
//
// The attributes must pass PyTorch's own checks (ph <= kh/2, pw <= kw/2), so
// that no window lies entirely in the padding; pool2d_dims_finish must have
// filled Ho, Wo. Forward writes y and idx; backward accumulates into dx.
#include <math.h>
#include "ops.h"

// first in-range tap of a dilated window starting at `start` (may be < 0)
static inline int first_tap(int start, int dil) {
    return start < 0 ? start + (-start + dil - 1) / dil * dil : start;
}

// One output (oh,ow) the plain way: PyTorch's loop over its clipped window.
static inline void max_window(float *yo, int32_t *io, const float *xp, const pool2d_dims *d,
                              int h0, int h1, int ow) {
    const int W = d->W;
    int w0 = ow * d->sw - d->pw;
    int w1 = w0 + (d->kw - 1) * d->dw + 1;
    if (w1 > W) w1 = W;
    w0 = first_tap(w0, d->dw);
    float m = -INFINITY;
    int32_t mi = h0 * W + w0;
    for (int h = h0; h < h1; h += d->dh) {
        const float *row = xp + (long)h * W;
        for (int w = w0; w < w1; w += d->dw) {
            float v = row[w];
            if (v > m || isnan(v)) { m = v; mi = h * W + w; }
        }
    }
    *yo = m;
    *io = mi;
}

// y: (N,C,Ho,Wo)  idx: (N,C,Ho,Wo) argmax as h*W+w in its plane  x: (N,C,H,W)
// Columns whose window lies inside [0,W) (the interior) run tap by tap
// across the whole output row, with the running max kept in y and idx: each
// output still sees its taps in row-major order, but the outputs' chains
// are independent, so the loop over ow vectorises instead of waiting on one
// compare-select chain. Border columns take max_window.
void maxpool2d_forward(float *y, int32_t *idx, const float *x, const pool2d_dims *d) {
    const int H = d->H, W = d->W, Ho = d->Ho, Wo = d->Wo;
    const int sw = d->sw, pw = d->pw, span_w = (d->kw - 1) * d->dw;
    // interior: ow*sw - pw >= 0 and ow*sw - pw + span_w <= W - 1
    int owa = (pw + sw - 1) / sw;
    int owb = W - 1 - span_w + pw < 0 ? 0 : (W - 1 - span_w + pw) / sw + 1;
    if (owb > Wo) owb = Wo;
    if (owa > owb) owa = owb;
    const long planes = (long)d->N * d->C;
    #pragma omp parallel for schedule(static) if (planes * Ho * Wo > 16384)
    for (long pl = 0; pl < planes; pl++) {
        const float *xp = x + pl * H * W;
        for (int oh = 0; oh < Ho; oh++) {
            float *yr = y + (pl * Ho + oh) * Wo;
            int32_t *ir = idx + (pl * Ho + oh) * Wo;
            int h0 = oh * d->sh - d->ph;
            int h1 = h0 + (d->kh - 1) * d->dh + 1;
            if (h1 > H) h1 = H;
            h0 = first_tap(h0, d->dh);
            for (int ow = 0; ow < owa; ow++) max_window(yr + ow, ir + ow, xp, d, h0, h1, ow);
            for (int ow = owb; ow < Wo; ow++) max_window(yr + ow, ir + ow, xp, d, h0, h1, ow);
            for (int ow = owa; ow < owb; ow++) { yr[ow] = -INFINITY; ir[ow] = h0 * W + ow * sw - pw; }
            for (int h = h0; h < h1; h += d->dh)
                for (int j = 0; j < d->kw; j++) {
                    const int off = h * W + j * d->dw - pw;   // tap (h, ow*sw + off - h*W)
                    const float *src = xp + off;
                    #pragma omp simd
                    for (int ow = owa; ow < owb; ow++) {
                        const float v = src[ow * sw];
                        const int take = (v > yr[ow]) | (v != v);
                        yr[ow] = take ? v : yr[ow];
                        ir[ow] = take ? off + ow * sw : ir[ow];
                    }
                }
        }
    }
}

// dx += (N,C,H,W)  dy: (N,C,Ho,Wo)  idx: (N,C,Ho,Wo) from the forward.
// Overlapping windows may route several dy to one x; each plane is one thread's.
void maxpool2d_backward(float *dx, const float *dy, const int32_t *idx, const pool2d_dims *d) {
    const long HW = (long)d->H * d->W, HWo = (long)d->Ho * d->Wo;
    const long planes = (long)d->N * d->C;
    #pragma omp parallel for schedule(static) if (planes * HWo > 16384)
    for (long pl = 0; pl < planes; pl++) {
        float *dxp = dx + pl * HW;
        const float *dyp = dy + pl * HWo;
        const int32_t *ip = idx + pl * HWo;
        for (long o = 0; o < HWo; o++) dxp[ip[o]] += dyp[o];
    }
}

void maxpool2d_forward_ref(float *y, int32_t *idx, const float *x, const pool2d_dims *d) {
    for (int n = 0; n < d->N; n++)
    for (int c = 0; c < d->C; c++) {
        const float *xp = x + ((long)n * d->C + c) * d->H * d->W;
        for (int oh = 0; oh < d->Ho; oh++)
        for (int ow = 0; ow < d->Wo; ow++) {
            float m = -INFINITY;
            int32_t mi = -1;
            for (int i = 0; i < d->kh; i++)
            for (int j = 0; j < d->kw; j++) {
                int h = oh * d->sh - d->ph + i * d->dh;
                int w = ow * d->sw - d->pw + j * d->dw;
                if (h < 0 || h >= d->H || w < 0 || w >= d->W) continue;
                float v = xp[h * d->W + w];
                if (mi < 0) mi = h * d->W + w;
                if (v > m || isnan(v)) { m = v; mi = h * d->W + w; }
            }
            long o = (((long)n * d->C + c) * d->Ho + oh) * d->Wo + ow;
            y[o] = m;
            idx[o] = mi;
        }
    }
}

void maxpool2d_backward_ref(float *dx, const float *dy, const int32_t *idx, const pool2d_dims *d) {
    for (int n = 0; n < d->N; n++)
    for (int c = 0; c < d->C; c++) {
        long pl = (long)n * d->C + c;
        for (long o = 0; o < (long)d->Ho * d->Wo; o++)
            dx[pl * d->H * d->W + idx[pl * d->Ho * d->Wo + o]] += dy[pl * d->Ho * d->Wo + o];
    }
}
