// lrn.c: local response normalisation across channels, exactly as
// torch.nn.functional.local_response_norm:
//   s_c = k + alpha * (1/size) * sum_{c' = c - size/2}^{c + (size-1)/2} x_c'^2
// (zero outside [0,C), the divisor is always size), y_c = x_c / s_c^beta.
// The sum runs over c' ascending in float and is divided by size before
// alpha is applied, in PyTorch's order (pad, avg_pool3d, mul, add, pow, div).
// Forward writes y and scale (= s); backward accumulates into dx.
//
// Backward: y_c = x_c * s_c^-beta and ds_c/dx_j = 2*alpha/size * x_j for each
// c whose window holds j, i.e. c in [j - (size-1)/2, j + size/2]:
//   dx_j = dy_j * s_j^-beta
//        - 2*alpha*beta/size * x_j * sum_{c = j-(size-1)/2}^{j+size/2} dy_c * x_c * s_c^(-beta-1)
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include "ops.h"

// Pixels per task: the fast paths work on (n, block of BLK pixels) so that the
// channel loop is innermost-but-one and the pixel loop vectorises.
#define BLK 256

// y: (N,C,HW)  scale: (N,C,HW)  x: (N,C,HW)
void lrn_forward(float *y, float *scale, const float *x, int N, int C, int HW,
                 int size, float alpha, float beta, float k) {
    const int nb = (HW + BLK - 1) / BLK;
    const int lo = size / 2, hi = (size - 1) / 2;
    #pragma omp parallel for schedule(static) if ((long)N * C * HW > 16384)
    for (long t = 0; t < (long)N * nb; t++) {
        const int n = (int)(t / nb), p0 = (int)(t % nb) * BLK;
        const int np = HW - p0 < BLK ? HW - p0 : BLK;
        const float *xn = x + (long)n * C * HW + p0;
        for (int c = 0; c < C; c++) {
            float acc[BLK];
            for (int i = 0; i < np; i++) acc[i] = 0.0f;
            int c0 = c - lo < 0 ? 0 : c - lo, c1 = c + hi >= C ? C - 1 : c + hi;
            for (int cc = c0; cc <= c1; cc++) {
                const float *xc = xn + (long)cc * HW;
                #pragma omp simd
                for (int i = 0; i < np; i++) acc[i] += xc[i] * xc[i];
            }
            const long o = ((long)n * C + c) * HW + p0;
            for (int i = 0; i < np; i++) {
                float s = acc[i] / (float)size * alpha + k;
                scale[o + i] = s;
                y[o + i] = x[o + i] / powf(s, beta);
            }
        }
    }
}

// dx += (N,C,HW)  dy: (N,C,HW)  scale: (N,C,HW) from the forward  x: (N,C,HW)
void lrn_backward(float *dx, const float *dy, const float *scale, const float *x, int N, int C, int HW,
                  int size, float alpha, float beta, float k) {
    (void)k;   // already folded into scale
    const int nb = (HW + BLK - 1) / BLK;
    const int lo = (size - 1) / 2, hi = size / 2;   // the backward window is mirrored
    const float coef = 2.0f * alpha * beta / (float)size;
    #pragma omp parallel if ((long)N * C * HW > 16384)
    {
        // per thread, for the current block: pw[c][i] = s_c^-beta and
        // q[c][i] = dy_c * x_c * s_c^(-beta-1) = dy_c * x_c * pw / s_c (one powf each)
        float *pw = (float *)malloc((size_t)2 * C * BLK * sizeof(float));
        if (!pw) { fprintf(stderr, "%s:%d: out of memory (lrn_backward)\n", __FILE__, __LINE__); abort(); }
        float *q = pw + (size_t)C * BLK;
        #pragma omp for schedule(static)
        for (long t = 0; t < (long)N * nb; t++) {
            const int n = (int)(t / nb), p0 = (int)(t % nb) * BLK;
            const int np = HW - p0 < BLK ? HW - p0 : BLK;
            const long base = (long)n * C * HW + p0;
            for (int c = 0; c < C; c++) {
                const long o = base + (long)c * HW;
                for (int i = 0; i < np; i++) {
                    float p = powf(scale[o + i], -beta);
                    pw[c * BLK + i] = p;
                    q[c * BLK + i] = dy[o + i] * x[o + i] * (p / scale[o + i]);
                }
            }
            for (int j = 0; j < C; j++) {
                float acc[BLK];
                for (int i = 0; i < np; i++) acc[i] = 0.0f;
                int c0 = j - lo < 0 ? 0 : j - lo, c1 = j + hi >= C ? C - 1 : j + hi;
                for (int c = c0; c <= c1; c++) {
                    #pragma omp simd
                    for (int i = 0; i < np; i++) acc[i] += q[c * BLK + i];
                }
                const long o = base + (long)j * HW;
                for (int i = 0; i < np; i++)
                    dx[o + i] += dy[o + i] * pw[j * BLK + i] - coef * x[o + i] * acc[i];
            }
        }
        free(pw);
    }
}

void lrn_forward_ref(float *y, float *scale, const float *x, int N, int C, int HW,
                     int size, float alpha, float beta, float k) {
    for (int n = 0; n < N; n++)
    for (int c = 0; c < C; c++)
    for (int p = 0; p < HW; p++) {
        float sum = 0.0f;
        for (int cc = c - size / 2; cc <= c + (size - 1) / 2; cc++) {
            if (cc < 0 || cc >= C) continue;
            float v = x[((long)n * C + cc) * HW + p];
            sum += v * v;
        }
        long o = ((long)n * C + c) * HW + p;
        scale[o] = sum / (float)size * alpha + k;
        y[o] = x[o] / powf(scale[o], beta);
    }
}

// The reference differentiates output by output: for each y_c, scatter its
// gradient into every x_j of its window (no mirrored window).
void lrn_backward_ref(float *dx, const float *dy, const float *scale, const float *x, int N, int C, int HW,
                      int size, float alpha, float beta, float k) {
    (void)k;
    for (int n = 0; n < N; n++)
    for (int c = 0; c < C; c++)
    for (int p = 0; p < HW; p++) {
        long o = ((long)n * C + c) * HW + p;
        double s = scale[o];
        dx[o] += (float)(dy[o] * pow(s, -beta));
        double g = -(double)dy[o] * x[o] * beta * pow(s, -beta - 1.0) * alpha / size * 2.0;
        for (int j = c - size / 2; j <= c + (size - 1) / 2; j++) {
            if (j < 0 || j >= C) continue;
            long oj = ((long)n * C + j) * HW + p;
            dx[oj] += (float)(g * x[oj]);
        }
    }
}
