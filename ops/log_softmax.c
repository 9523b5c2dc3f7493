// log_softmax.c: log-softmax over the last dim of (N,K), stable:
//   y = (x - max) - log sum_k exp(x_k - max)
// in that order, as PyTorch: folding max + log(sum) first would round it to
// the ulp of max (6e-5 at 1000). The exp-sum runs in double in the fast path,
// everything in double in the ref.
// A row holding +inf or NaN, or all -inf, gives NaN (as PyTorch).
// Forward writes y; backward accumulates into dx.
#include <math.h>
#include "ops.h"

// y: (N,K)  x: (N,K)
void log_softmax_forward(float *y, const float *x, int N, int K) {
    #pragma omp parallel for schedule(static) if ((long)N * K > 16384)
    for (int n = 0; n < N; n++) {
        const float *xr = x + (long)n * K;
        float *yr = y + (long)n * K;
        float m = -INFINITY;
        for (int k = 0; k < K; k++) m = xr[k] > m || xr[k] != xr[k] ? xr[k] : m;
        double s = 0.0;
        for (int k = 0; k < K; k++) s += expf(xr[k] - m);
        const float ls = (float)log(s);
        #pragma omp simd
        for (int k = 0; k < K; k++) yr[k] = (xr[k] - m) - ls;
    }
}

// dx += (N,K)  dy: (N,K)  y: (N,K) the forward's output.
// softmax = exp(y), so dx = dy - softmax * sum_k dy.
void log_softmax_backward(float *dx, const float *dy, const float *y, int N, int K) {
    #pragma omp parallel for schedule(static) if ((long)N * K > 16384)
    for (int n = 0; n < N; n++) {
        const float *dyr = dy + (long)n * K, *yr = y + (long)n * K;
        float *dxr = dx + (long)n * K;
        double s = 0.0;
        #pragma omp simd reduction(+:s)
        for (int k = 0; k < K; k++) s += dyr[k];
        const float sf = (float)s;
        for (int k = 0; k < K; k++) dxr[k] += dyr[k] - expf(yr[k]) * sf;
    }
}

void log_softmax_forward_ref(float *y, const float *x, int N, int K) {
    for (int n = 0; n < N; n++) {
        double m = -INFINITY, s = 0.0;
        for (int k = 0; k < K; k++) if (x[(long)n * K + k] > m) m = x[(long)n * K + k];
        for (int k = 0; k < K; k++) s += exp((double)x[(long)n * K + k] - m);
        for (int k = 0; k < K; k++) y[(long)n * K + k] = (float)((double)x[(long)n * K + k] - m - log(s));
    }
}
