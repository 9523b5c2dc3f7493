// mul.c: y = x * g with g broadcast over what it lacks (PyTorch's broadcasting,
// restricted to the shapes CNNs use):
//   g (N,C,HW): elementwise;  g (N,C,1): a per-image channel gate (squeeze-
//   excitation);  g (1,C,1): a per-channel scale shared by the batch (layer
//   scale, a parameter).
// gN is 1 or N and gHW is 1 or HW: g is (gN, C, gHW).
// Backward: dx += dy * g;  dg += dy * x summed over the broadcast dims.
// Forward writes y (must not alias x or g: the backward reads both).
#include "ops.h"

static inline size_t g_at(int n, int c, int p, int C, int gN, int gHW) {
    return ((size_t)(gN == 1 ? 0 : n) * C + c) * gHW + (gHW == 1 ? 0 : p);
}

// y: (N,C,HW)  x: (N,C,HW)  g: (gN,C,gHW)
void mul_forward(float *y, const float *x, const float *g, int N, int C, int HW, int gN, int gHW) {
    #pragma omp parallel for collapse(2) schedule(static) if ((size_t)N * C * HW > 65536)
    for (int n = 0; n < N; n++)
        for (int c = 0; c < C; c++) {
            const float *xp = x + ((size_t)n * C + c) * HW;
            float *yp = y + ((size_t)n * C + c) * HW;
            const float *gp = g + g_at(n, c, 0, C, gN, gHW);
            if (gHW == 1) {
                const float s = gp[0];
                #pragma omp simd
                for (int p = 0; p < HW; p++) yp[p] = xp[p] * s;
            } else {
                #pragma omp simd
                for (int p = 0; p < HW; p++) yp[p] = xp[p] * gp[p];
            }
        }
}

// dx += (N,C,HW) (may be NULL)  dg += (gN,C,gHW) (may be NULL)  dy: (N,C,HW)
void mul_backward(float *dx, float *dg, const float *dy, const float *x, const float *g,
                  int N, int C, int HW, int gN, int gHW) {
    if (dx) {
        #pragma omp parallel for collapse(2) schedule(static) if ((size_t)N * C * HW > 65536)
        for (int n = 0; n < N; n++)
            for (int c = 0; c < C; c++) {
                const float *dyp = dy + ((size_t)n * C + c) * HW, *gp = g + g_at(n, c, 0, C, gN, gHW);
                float *dxp = dx + ((size_t)n * C + c) * HW;
                if (gHW == 1) {
                    const float s = gp[0];
                    #pragma omp simd
                    for (int p = 0; p < HW; p++) dxp[p] += dyp[p] * s;
                } else {
                    #pragma omp simd
                    for (int p = 0; p < HW; p++) dxp[p] += dyp[p] * gp[p];
                }
            }
    }
    if (!dg) return;
    // one thread per channel: a shared (gN = 1) gate sums over images without races
    #pragma omp parallel for schedule(static) if ((size_t)N * C * HW > 65536)
    for (int c = 0; c < C; c++)
        for (int n = 0; n < N; n++) {
            const float *dyp = dy + ((size_t)n * C + c) * HW, *xp = x + ((size_t)n * C + c) * HW;
            float *dgp = dg + g_at(n, c, 0, C, gN, gHW);
            if (gHW == 1) {
                double s = 0;
                for (int p = 0; p < HW; p++) s += (double)dyp[p] * xp[p];
                dgp[0] += (float)s;
            } else {
                for (int p = 0; p < HW; p++) dgp[p] += dyp[p] * xp[p];
            }
        }
}

void mul_forward_ref(float *y, const float *x, const float *g, int N, int C, int HW, int gN, int gHW) {
    for (int n = 0; n < N; n++)
        for (int c = 0; c < C; c++)
            for (int p = 0; p < HW; p++) {
                size_t i = ((size_t)n * C + c) * HW + p;
                y[i] = x[i] * g[g_at(n, c, p, C, gN, gHW)];
            }
}

void mul_backward_ref(float *dx, float *dg, const float *dy, const float *x, const float *g,
                      int N, int C, int HW, int gN, int gHW) {
    for (int n = 0; n < N; n++)
        for (int c = 0; c < C; c++)
            for (int p = 0; p < HW; p++) {
                size_t i = ((size_t)n * C + c) * HW + p, k = g_at(n, c, p, C, gN, gHW);
                if (dx) dx[i] += dy[i] * g[k];
                if (dg) dg[k] += dy[i] * x[i];
            }
}
