// adaptive_avgpool2d.c: PyTorch's adaptive average pooling (NCHW contiguous).
// Output row i covers input rows [floor(i*H/Ho), ceil((i+1)*H/Ho)); likewise
// columns. Windows may overlap when H is not a multiple of Ho, and Ho > H
// repeats rows. As PyTorch: a float sum in row-major order, then y = sum/kh/kw
// (two divisions); backward spreads dy/kh/kw. Forward writes y; backward
// accumulates into dx.
#include <math.h>
#include "ops.h"

static inline int start_index(int i, int out, int in) { return (int)((long)i * in / out); }
static inline int end_index(int i, int out, int in) { return (int)(((long)(i + 1) * in + out - 1) / out); }

// y: (N,C,Ho,Wo)  x: (N,C,H,W)
void adaptive_avgpool2d_forward(float *y, const float *x, int N, int C, int H, int W, int Ho, int Wo) {
    const long planes = (long)N * C;
    #pragma omp parallel for schedule(static) if (planes * H * W > 32768)
    for (long pl = 0; pl < planes; pl++) {
        const float *xp = x + pl * H * W;
        float *yp = y + pl * Ho * Wo;
        for (int oh = 0; oh < Ho; oh++) {
            int h0 = start_index(oh, Ho, H), h1 = end_index(oh, Ho, H);
            for (int ow = 0; ow < Wo; ow++) {
                int w0 = start_index(ow, Wo, W), w1 = end_index(ow, Wo, W);
                float s = 0.0f;
                for (int h = h0; h < h1; h++)
                    for (int w = w0; w < w1; w++) s += xp[h * W + w];
                yp[oh * Wo + ow] = s / (float)(h1 - h0) / (float)(w1 - w0);
            }
        }
    }
}

// dx += (N,C,H,W)  dy: (N,C,Ho,Wo). Each plane is one thread's.
void adaptive_avgpool2d_backward(float *dx, const float *dy, int N, int C, int H, int W, int Ho, int Wo) {
    const long planes = (long)N * C;
    #pragma omp parallel for schedule(static) if (planes * H * W > 32768)
    for (long pl = 0; pl < planes; pl++) {
        float *dxp = dx + pl * H * W;
        const float *dyp = dy + pl * Ho * Wo;
        for (int oh = 0; oh < Ho; oh++) {
            int h0 = start_index(oh, Ho, H), h1 = end_index(oh, Ho, H);
            for (int ow = 0; ow < Wo; ow++) {
                int w0 = start_index(ow, Wo, W), w1 = end_index(ow, Wo, W);
                float g = dyp[oh * Wo + ow] / (float)(h1 - h0) / (float)(w1 - w0);
                for (int h = h0; h < h1; h++)
                    for (int w = w0; w < w1; w++) dxp[h * W + w] += g;
            }
        }
    }
}

// The reference finds each window by floating-point floor/ceil, as the
// formula in ops.h reads, instead of integer division.
void adaptive_avgpool2d_forward_ref(float *y, const float *x, int N, int C, int H, int W, int Ho, int Wo) {
    for (long pl = 0; pl < (long)N * C; pl++)
    for (int oh = 0; oh < Ho; oh++)
    for (int ow = 0; ow < Wo; ow++) {
        int h0 = (int)floor((double)oh * H / Ho), h1 = (int)ceil((double)(oh + 1) * H / Ho);
        int w0 = (int)floor((double)ow * W / Wo), w1 = (int)ceil((double)(ow + 1) * W / Wo);
        float s = 0.0f;
        for (int h = h0; h < h1; h++)
            for (int w = w0; w < w1; w++) s += x[(pl * H + h) * W + w];
        y[(pl * Ho + oh) * Wo + ow] = s / (float)(h1 - h0) / (float)(w1 - w0);
    }
}

void adaptive_avgpool2d_backward_ref(float *dx, const float *dy, int N, int C, int H, int W, int Ho, int Wo) {
    for (long pl = 0; pl < (long)N * C; pl++)
    for (int oh = 0; oh < Ho; oh++)
    for (int ow = 0; ow < Wo; ow++) {
        int h0 = (int)floor((double)oh * H / Ho), h1 = (int)ceil((double)(oh + 1) * H / Ho);
        int w0 = (int)floor((double)ow * W / Wo), w1 = (int)ceil((double)(ow + 1) * W / Wo);
        float g = dy[(pl * Ho + oh) * Wo + ow] / (float)(h1 - h0) / (float)(w1 - w0);
        for (int h = h0; h < h1; h++)
            for (int w = w0; w < w1; w++) dx[(pl * H + h) * W + w] += g;
    }
}
