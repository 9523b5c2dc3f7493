// channel_mean.c: the feature target, f[n] = mean over (H,W) of x[n,ch,:,:],
// summed in double. Forward writes f; backward accumulates df[n]/HW into
// every pixel of x[n,ch] and leaves the other channels of dx untouched.
#include "ops.h"

// f: (N)  x: (N,C,HW)  0 <= ch < C
void channel_mean_forward(float *f, const float *x, int N, int C, int HW, int ch) {
    for (int n = 0; n < N; n++) {
        const float *xp = x + ((long)n * C + ch) * HW;
        double s = 0.0;
        #pragma omp simd reduction(+:s)
        for (int i = 0; i < HW; i++) s += xp[i];
        f[n] = (float)(s / HW);
    }
}

// dx += (N,C,HW), channel ch only  df: (N)
void channel_mean_backward(float *dx, const float *df, int N, int C, int HW, int ch) {
    for (int n = 0; n < N; n++) {
        float *dxp = dx + ((long)n * C + ch) * HW;
        const float g = df[n] / (float)HW;
        #pragma omp simd
        for (int i = 0; i < HW; i++) dxp[i] += g;
    }
}
