// layernorm2d.c: LayerNorm over the channels of every pixel, with a per-channel
// affine: what ConvNeXt computes as permute(0,2,3,1) -> LayerNorm(C) -> permute back.
//   mu = mean_c x[n,c,p],  var = mean_c (x - mu)^2 (biased),  r = 1/sqrt(var + eps)
//   xh = (x - mu) r,  y = xh w[c] + b[c]
// Backward (per pixel, gh = dy w):
//   dx = r (gh - mean_c gh - xh mean_c(gh xh)),  dw += sum dy xh,  db += sum dy
// Moments are accumulated in double. Nothing is saved: the backward recomputes them.
// Forward writes y (may alias x); backward accumulates into dx, dw, db (each may be NULL).
#include <math.h>
#include <stdlib.h>
#include "ops.h"

// mu, r: (HW) of image x: (C,HW)
static void moments(double *mu, double *r, const float *x, int C, int HW, float eps) {
    for (int p = 0; p < HW; p++) mu[p] = 0, r[p] = 0;
    for (int c = 0; c < C; c++)
        for (int p = 0; p < HW; p++) mu[p] += x[(size_t)c * HW + p];
    for (int p = 0; p < HW; p++) mu[p] /= C;
    for (int c = 0; c < C; c++)
        for (int p = 0; p < HW; p++) { double d = x[(size_t)c * HW + p] - mu[p]; r[p] += d * d; }
    for (int p = 0; p < HW; p++) r[p] = 1.0 / sqrt(r[p] / C + eps);
}

// y: (N,C,HW)  x: (N,C,HW)  w, b: (C) or NULL (no affine)
void layernorm2d_forward(float *y, const float *x, const float *w, const float *b, float eps, int N, int C, int HW) {
    #pragma omp parallel for schedule(static) if ((size_t)N * C * HW > 65536)
    for (int n = 0; n < N; n++) {
        double *mu = malloc(2 * (size_t)HW * sizeof(double)), *r = mu + HW;
        const float *xn = x + (size_t)n * C * HW;
        float *yn = y + (size_t)n * C * HW;
        moments(mu, r, xn, C, HW, eps);
        for (int c = 0; c < C; c++) {
            float wc = w ? w[c] : 1.0f, bc = b ? b[c] : 0.0f;
            for (int p = 0; p < HW; p++)
                yn[(size_t)c * HW + p] = (float)((xn[(size_t)c * HW + p] - mu[p]) * r[p]) * wc + bc;
        }
        free(mu);
    }
}

// dx += (N,C,HW)  dw, db += (C)  dy: (N,C,HW)  x, w as in the forward
void layernorm2d_backward(float *dx, float *dw, float *db, const float *dy, const float *x, const float *w,
                          float eps, int N, int C, int HW) {
    for (int n = 0; n < N; n++) {   // images in order: dw, db sum over them
        double *mu = malloc(4 * (size_t)HW * sizeof(double)), *r = mu + HW, *mg = r + HW, *mgx = mg + HW;
        const float *xn = x + (size_t)n * C * HW, *dyn = dy + (size_t)n * C * HW;
        moments(mu, r, xn, C, HW, eps);
        for (int p = 0; p < HW; p++) mg[p] = mgx[p] = 0;
        #pragma omp parallel for schedule(static) if ((size_t)C * HW > 65536)
        for (int c = 0; c < C; c++) {
            double sw = 0, sb = 0;
            for (int p = 0; p < HW; p++) {
                double xh = (xn[(size_t)c * HW + p] - mu[p]) * r[p], g = dyn[(size_t)c * HW + p];
                sw += g * xh; sb += g;
            }
            if (dw) dw[c] += (float)sw;
            if (db) db[c] += (float)sb;
        }
        if (!dx) { free(mu); continue; }
        for (int c = 0; c < C; c++) {
            double wc = w ? w[c] : 1.0;
            for (int p = 0; p < HW; p++) {
                double gh = dyn[(size_t)c * HW + p] * wc, xh = (xn[(size_t)c * HW + p] - mu[p]) * r[p];
                mg[p] += gh; mgx[p] += gh * xh;
            }
        }
        float *dxn = dx + (size_t)n * C * HW;
        #pragma omp parallel for schedule(static) if ((size_t)C * HW > 65536)
        for (int c = 0; c < C; c++) {
            double wc = w ? w[c] : 1.0;
            for (int p = 0; p < HW; p++) {
                double gh = dyn[(size_t)c * HW + p] * wc, xh = (xn[(size_t)c * HW + p] - mu[p]) * r[p];
                dxn[(size_t)c * HW + p] += (float)(r[p] * (gh - mg[p] / C - xh * mgx[p] / C));
            }
        }
        free(mu);
    }
}

// The reference: one pixel at a time, straight from the formulas.
void layernorm2d_forward_ref(float *y, const float *x, const float *w, const float *b, float eps, int N, int C, int HW) {
    for (int n = 0; n < N; n++)
        for (int p = 0; p < HW; p++) {
            const float *xp = x + (size_t)n * C * HW + p;
            double mu = 0, var = 0;
            for (int c = 0; c < C; c++) mu += xp[(size_t)c * HW];
            mu /= C;
            for (int c = 0; c < C; c++) var += (xp[(size_t)c * HW] - mu) * (xp[(size_t)c * HW] - mu);
            double r = 1.0 / sqrt(var / C + eps);
            for (int c = 0; c < C; c++)
                y[(size_t)n * C * HW + (size_t)c * HW + p] = (float)((xp[(size_t)c * HW] - mu) * r * (w ? w[c] : 1.0) + (b ? b[c] : 0.0));
        }
}

void layernorm2d_backward_ref(float *dx, float *dw, float *db, const float *dy, const float *x, const float *w,
                              float eps, int N, int C, int HW) {
    for (int n = 0; n < N; n++)
        for (int p = 0; p < HW; p++) {
            size_t o = (size_t)n * C * HW + p;
            double mu = 0, var = 0, mg = 0, mgx = 0;
            for (int c = 0; c < C; c++) mu += x[o + (size_t)c * HW];
            mu /= C;
            for (int c = 0; c < C; c++) var += (x[o + (size_t)c * HW] - mu) * (x[o + (size_t)c * HW] - mu);
            double r = 1.0 / sqrt(var / C + eps);
            for (int c = 0; c < C; c++) {
                double xh = (x[o + (size_t)c * HW] - mu) * r, g = dy[o + (size_t)c * HW];
                if (dw) dw[c] += (float)(g * xh);
                if (db) db[c] += (float)g;
                mg += g * (w ? w[c] : 1.0);
                mgx += g * (w ? w[c] : 1.0) * xh;
            }
            for (int c = 0; dx && c < C; c++) {
                double xh = (x[o + (size_t)c * HW] - mu) * r, gh = dy[o + (size_t)c * HW] * (w ? w[c] : 1.0);
                dx[o + (size_t)c * HW] += (float)(r * (gh - mg / C - xh * mgx / C));
            }
        }
}
