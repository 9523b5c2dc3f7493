// silu.c: y = x sigmoid(x) (SiLU, swish). Backward from the input:
// dx += dy s (1 + x (1 - s)), s = sigmoid(x).
// Forward writes y (must not alias x: the backward reads x); backward accumulates into dx.
#include <math.h>
#include "ops.h"

// y, x: (n)
void silu_forward(float *y, const float *x, size_t n) {
    #pragma omp parallel for schedule(static) if (n > 16384)
    for (size_t i = 0; i < n; i++) y[i] = x[i] / (1.0f + expf(-x[i]));
}

// dx += (n)  dy: (n)  x: (n) the forward's input
void silu_backward(float *dx, const float *dy, const float *x, size_t n) {
    #pragma omp parallel for schedule(static) if (n > 16384)
    for (size_t i = 0; i < n; i++) {
        float s = 1.0f / (1.0f + expf(-x[i]));
        dx[i] += dy[i] * s * (1.0f + x[i] * (1.0f - s));
    }
}

void silu_forward_ref(float *y, const float *x, size_t n) {
    for (size_t i = 0; i < n; i++) y[i] = (float)((double)x[i] / (1.0 + exp(-(double)x[i])));
}

void silu_backward_ref(float *dx, const float *dy, const float *x, size_t n) {
    for (size_t i = 0; i < n; i++) {
        double s = 1.0 / (1.0 + exp(-(double)x[i]));
        dx[i] += (float)(dy[i] * s * (1.0 + x[i] * (1.0 - s)));
    }
}
