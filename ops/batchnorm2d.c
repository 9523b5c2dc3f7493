// batchnorm2d.c: batch normalisation in eval mode (running statistics).
// The fast path folds each channel into y = x*a + b with, as PyTorch's CPU
// kernel computes them in float,
//   invstd = 1/sqrt(var + eps),  a = invstd*gamma,  b = beta - mean*a.
// PyTorch's AVX2/AVX-512 kernels are compiled with FMA contraction, so both
// b = beta - mean*a and y = x*a + b are single fused operations there; fmaf
// does the same and reproduces their output bit for bit whatever this file is
// compiled with (checked against PyTorch 1.13; with -mfma the loop
// vectorises, without it fmaf is a libm call).
// gamma/beta NULL mean affine=False (gamma 1, beta 0). Forward writes y;
// backward accumulates into dx, dgamma, dbeta (each may be NULL).
#include <math.h>
#include "ops.h"
#include "simd.h"

// y = fmaf(x, a, b) over a plane. Built for AVX2+FMA as well and chosen at run
// time: fmaf then compiles to vfmadd in a vectorised loop instead of a libm
// call per element (same results: fmaf is exact either way).
static void plane_fma_generic(float *y, const float *x, float a, float b, int n) {
    for (int i = 0; i < n; i++) y[i] = fmaf(x[i], a, b);
}
#if SIMD_X86
__attribute__((target("avx2,fma"))) static void plane_fma_avx2(float *y, const float *x, float a, float b, int n) {
    #pragma omp simd
    for (int i = 0; i < n; i++) y[i] = fmaf(x[i], a, b);
}
static void plane_fma(float *y, const float *x, float a, float b, int n) {
    if (cpu_has_avx2_fma()) plane_fma_avx2(y, x, a, b, n);
    else plane_fma_generic(y, x, a, b, n);
}
#else
#define plane_fma plane_fma_generic
#endif

// y: (N,C,HW)  x: (N,C,HW)  gamma, beta, mean, var: (C)
void batchnorm2d_forward(float *y, const float *x, const float *gamma, const float *beta,
                         const float *mean, const float *var, float eps, int N, int C, int HW) {
    const long planes = (long)N * C;
    #pragma omp parallel for schedule(static) if (planes * HW > 65536)
    for (long pl = 0; pl < planes; pl++) {
        int c = (int)(pl % C);
        float invstd = 1.0f / sqrtf(var[c] + eps);
        float a = gamma ? invstd * gamma[c] : invstd;
        float b = fmaf(-mean[c], a, beta ? beta[c] : 0.0f);
        plane_fma(y + pl * HW, x + pl * HW, a, b, HW);
    }
}

// dx += (N,C,HW)  dgamma += (C)  dbeta += (C)  dy: (N,C,HW)  x: (N,C,HW)
// gamma, mean, var: (C).  With xhat = (x - mean)*invstd and y = xhat*gamma + beta:
//   dx = (dy*invstd)*gamma,  dgamma = sum_{n,hw} dy*xhat,  dbeta = sum_{n,hw} dy
// Here invstd is 1/sqrt(var + eps) in double rounded to float, and dx is
// rounded in that order, as PyTorch's eval backward (bit for bit); the sums
// run in double and are added once.
void batchnorm2d_backward(float *dx, float *dgamma, float *dbeta, const float *dy,
                          const float *x, const float *gamma, const float *mean, const float *var,
                          float eps, int N, int C, int HW) {
    if (dx) {
        const long planes = (long)N * C;
        #pragma omp parallel for schedule(static) if (planes * HW > 65536)
        for (long pl = 0; pl < planes; pl++) {
            int c = (int)(pl % C);
            const float invstd = (float)(1.0 / sqrt((double)var[c] + eps));
            const float g = gamma ? gamma[c] : 1.0f;
            const float *dyp = dy + pl * HW;
            float *dxp = dx + pl * HW;
            #pragma omp simd
            for (int i = 0; i < HW; i++) dxp[i] += dyp[i] * invstd * g;
        }
    }
    if (dgamma || dbeta) {
        #pragma omp parallel for schedule(static) if ((long)N * C * HW > 65536)
        for (int c = 0; c < C; c++) {
            double dot = 0.0, sum = 0.0;
            const double m = mean[c];
            for (int n = 0; n < N; n++) {
                const float *xp = x + ((long)n * C + c) * HW;
                const float *dyp = dy + ((long)n * C + c) * HW;
                #pragma omp simd reduction(+:dot,sum)
                for (int i = 0; i < HW; i++) {
                    dot += ((double)xp[i] - m) * dyp[i];
                    sum += dyp[i];
                }
            }
            if (dgamma) dgamma[c] += (float)(dot / sqrt((double)var[c] + eps));
            if (dbeta) dbeta[c] += (float)sum;
        }
    }
}

void batchnorm2d_forward_ref(float *y, const float *x, const float *gamma, const float *beta,
                             const float *mean, const float *var, float eps, int N, int C, int HW) {
    for (int n = 0; n < N; n++)
    for (int c = 0; c < C; c++)
    for (int i = 0; i < HW; i++) {
        long o = ((long)n * C + c) * HW + i;
        double xhat = ((double)x[o] - mean[c]) / sqrt((double)var[c] + eps);
        y[o] = (float)(xhat * (gamma ? gamma[c] : 1.0) + (beta ? beta[c] : 0.0));
    }
}

void batchnorm2d_backward_ref(float *dx, float *dgamma, float *dbeta, const float *dy,
                              const float *x, const float *gamma, const float *mean, const float *var,
                              float eps, int N, int C, int HW) {
    for (int c = 0; c < C; c++) {
        double invstd = 1.0 / sqrt((double)var[c] + eps), g = gamma ? gamma[c] : 1.0;
        double dg = 0.0, db = 0.0;
        for (int n = 0; n < N; n++)
        for (int i = 0; i < HW; i++) {
            long o = ((long)n * C + c) * HW + i;
            if (dx) dx[o] += (float)(dy[o] * g * invstd);
            dg += dy[o] * ((double)x[o] - mean[c]) * invstd;
            db += dy[o];
        }
        if (dgamma) dgamma[c] += (float)dg;
        if (dbeta) dbeta[c] += (float)db;
    }
}
