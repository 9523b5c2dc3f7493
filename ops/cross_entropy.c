// cross_entropy.c: cross-entropy on logits, mean over the batch, as
// torch.nn.functional.cross_entropy(x, labels) (no weights, no smoothing):
//   loss = 1/N sum_n (logsumexp(x_n) - x_n[label_n])
// computed stably (max subtracted) and accumulated in double. Labels must lie
// in [0,K); PyTorch's ignore_index is not supported, and an out-of-range
// label makes the loss NaN (and its row's gradient NaN) instead of reading
// out of bounds. The backward accumulates into dx.
#include <math.h>
#include "ops.h"

// logsumexp of one row, in double
static double row_lse(const float *xr, int K) {
    double m = -INFINITY, s = 0.0;
    for (int k = 0; k < K; k++) if (xr[k] > m) m = xr[k];
    for (int k = 0; k < K; k++) s += exp((double)xr[k] - m);
    return m + log(s);
}

// x: (N,K) logits  labels: (N) in [0,K)
double cross_entropy_forward(const float *x, const int *labels, int N, int K) {
    double total = 0.0;
    #pragma omp parallel for reduction(+:total) schedule(static) if ((long)N * K > 16384)
    for (int n = 0; n < N; n++) {
        const float *xr = x + (long)n * K;
        int l = labels[n];
        total += (l >= 0 && l < K) ? row_lse(xr, K) - xr[l] : NAN;
    }
    return total / N;   // N = 0: NaN, as PyTorch's mean over nothing
}

// dx += (N,K)  x: (N,K)  labels: (N).  dloss is d(outer)/d(loss), a scalar:
//   dx_nk += dloss/N * (softmax(x_n)_k - [k == label_n])
void cross_entropy_backward(float *dx, float dloss, const float *x, const int *labels, int N, int K) {
    #pragma omp parallel for schedule(static) if ((long)N * K > 16384)
    for (int n = 0; n < N; n++) {
        const float *xr = x + (long)n * K;
        float *dxr = dx + (long)n * K;
        int l = labels[n];
        double lse = (l >= 0 && l < K) ? row_lse(xr, K) : NAN;
        double g = (double)dloss / N;
        for (int k = 0; k < K; k++)
            dxr[k] += (float)(g * (exp((double)xr[k] - lse) - (k == l ? 1.0 : 0.0)));
    }
}
