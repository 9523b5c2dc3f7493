// avgpool2d.c: average pooling with padding, ceil_mode, count_include_pad and
// divisor_override, as PyTorch's CPU avg_pool2d (NCHW contiguous; no dilation,
// d->dh/d->dw are ignored).
//
// PyTorch's window and divisor, per output (oh,ow) and likewise for columns:
//   h0 = oh*sh - ph;  h1 = min(h0 + kh, H + ph);  pool = (h1-h0)*(w1-w0)
//   then clip h0,h1 to [0,H) and w0,w1 to [0,W)
//   divisor = divisor_override ? divisor_override
//           : count_include_pad ? pool : (h1-h0)*(w1-w0)   (the clipped count)
// pool is taken before clipping, so with ceil_mode a window hanging past the
// right padding is NOT divided by k*k. An empty clipped window gives 0.
// Sums run in float in row-major window order, then one division (PyTorch's).
// pool2d_dims_finish must have filled Ho, Wo. Forward writes y; backward
// accumulates into dx.
#include "ops.h"

typedef struct { int h0, h1, w0, w1; float div; } avg_window;

static inline avg_window window_of(const pool2d_dims *d, int oh, int ow) {
    avg_window r;
    int h0 = oh * d->sh - d->ph, w0 = ow * d->sw - d->pw;
    int h1 = h0 + d->kh, w1 = w0 + d->kw;
    if (h1 > d->H + d->ph) h1 = d->H + d->ph;
    if (w1 > d->W + d->pw) w1 = d->W + d->pw;
    int pool = (h1 - h0) * (w1 - w0);
    if (h0 < 0) h0 = 0;
    if (w0 < 0) w0 = 0;
    if (h1 > d->H) h1 = d->H;
    if (w1 > d->W) w1 = d->W;
    r.h0 = h0; r.h1 = h1; r.w0 = w0; r.w1 = w1;
    r.div = (float)(d->divisor_override ? d->divisor_override
                    : d->count_include_pad ? pool : (h1 - h0) * (w1 - w0));
    return r;
}

// y: (N,C,Ho,Wo)  x: (N,C,H,W)
void avgpool2d_forward(float *y, const float *x, const pool2d_dims *d) {
    const int H = d->H, W = d->W, Ho = d->Ho, Wo = d->Wo;
    const long planes = (long)d->N * d->C;
    #pragma omp parallel for schedule(static) if (planes * Ho * Wo > 16384)
    for (long pl = 0; pl < planes; pl++) {
        const float *xp = x + pl * H * W;
        float *yp = y + pl * Ho * Wo;
        for (int oh = 0; oh < Ho; oh++)
        for (int ow = 0; ow < Wo; ow++) {
            avg_window r = window_of(d, oh, ow);
            if (r.h0 >= r.h1 || r.w0 >= r.w1) { yp[oh * Wo + ow] = 0.0f; continue; }
            float s = 0.0f;
            for (int h = r.h0; h < r.h1; h++)
                for (int w = r.w0; w < r.w1; w++) s += xp[h * W + w];
            yp[oh * Wo + ow] = s / r.div;
        }
    }
}

// dx += (N,C,H,W)  dy: (N,C,Ho,Wo).  Forward: y = sum(window)/div, so each
// x in the window receives dy/div. Each plane is one thread's.
void avgpool2d_backward(float *dx, const float *dy, const pool2d_dims *d) {
    const int H = d->H, W = d->W, Ho = d->Ho, Wo = d->Wo;
    const long planes = (long)d->N * d->C;
    #pragma omp parallel for schedule(static) if (planes * Ho * Wo > 16384)
    for (long pl = 0; pl < planes; pl++) {
        float *dxp = dx + pl * H * W;
        const float *dyp = dy + pl * Ho * Wo;
        for (int oh = 0; oh < Ho; oh++)
        for (int ow = 0; ow < Wo; ow++) {
            avg_window r = window_of(d, oh, ow);
            float g = dyp[oh * Wo + ow] / r.div;
            for (int h = r.h0; h < r.h1; h++)
                for (int w = r.w0; w < r.w1; w++) dxp[h * W + w] += g;
        }
    }
}

// The reference walks every tap of the k*k window (padding included) and
// counts by hand, without the clip-after-pool shortcut above.
void avgpool2d_forward_ref(float *y, const float *x, const pool2d_dims *d) {
    for (long pl = 0; pl < (long)d->N * d->C; pl++)
    for (int oh = 0; oh < d->Ho; oh++)
    for (int ow = 0; ow < d->Wo; ow++) {
        float s = 0.0f;
        int inside = 0, padded = 0;   // taps in the input; taps in input+padding
        for (int i = 0; i < d->kh; i++)
        for (int j = 0; j < d->kw; j++) {
            int h = oh * d->sh - d->ph + i, w = ow * d->sw - d->pw + j;
            if (h < d->H + d->ph && w < d->W + d->pw) padded++;
            if (h < 0 || h >= d->H || w < 0 || w >= d->W) continue;
            s += x[(pl * d->H + h) * d->W + w];
            inside++;
        }
        int div = d->divisor_override ? d->divisor_override
                : d->count_include_pad ? padded : inside;
        y[(pl * d->Ho + oh) * d->Wo + ow] = inside ? s / (float)div : 0.0f;
    }
}

void avgpool2d_backward_ref(float *dx, const float *dy, const pool2d_dims *d) {
    for (long pl = 0; pl < (long)d->N * d->C; pl++)
    for (int oh = 0; oh < d->Ho; oh++)
    for (int ow = 0; ow < d->Wo; ow++) {
        int inside = 0, padded = 0;
        for (int i = 0; i < d->kh; i++)
        for (int j = 0; j < d->kw; j++) {
            int h = oh * d->sh - d->ph + i, w = ow * d->sw - d->pw + j;
            if (h < d->H + d->ph && w < d->W + d->pw) padded++;
            if (h >= 0 && h < d->H && w >= 0 && w < d->W) inside++;
        }
        int div = d->divisor_override ? d->divisor_override
                : d->count_include_pad ? padded : inside;
        float g = dy[(pl * d->Ho + oh) * d->Wo + ow] / (float)div;
        for (int i = 0; i < d->kh; i++)
        for (int j = 0; j < d->kw; j++) {
            int h = oh * d->sh - d->ph + i, w = ow * d->sw - d->pw + j;
            if (h >= 0 && h < d->H && w >= 0 && w < d->W) dx[(pl * d->H + h) * d->W + w] += g;
        }
    }
}
