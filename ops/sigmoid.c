// sigmoid.c: y = 1 / (1 + exp(-x)). Backward from the output: dx += dy y (1 - y).
// Forward writes y (may alias x); backward accumulates into dx.
#include <math.h>
#include "ops.h"

// y, x: (n)
void sigmoid_forward(float *y, const float *x, size_t n) {
    #pragma omp parallel for schedule(static) if (n > 16384)
    for (size_t i = 0; i < n; i++) y[i] = 1.0f / (1.0f + expf(-x[i]));
}

// dx += (n)  dy: (n)  y: (n) the forward's output
void sigmoid_backward(float *dx, const float *dy, const float *y, size_t n) {
    #pragma omp parallel for simd schedule(static) if (n > 65536)
    for (size_t i = 0; i < n; i++) dx[i] += dy[i] * y[i] * (1.0f - y[i]);
}

void sigmoid_forward_ref(float *y, const float *x, size_t n) {
    for (size_t i = 0; i < n; i++) y[i] = (float)(1.0 / (1.0 + exp(-(double)x[i])));
}

void sigmoid_backward_ref(float *dx, const float *dy, const float *y, size_t n) {
    for (size_t i = 0; i < n; i++) dx[i] += (float)((double)dy[i] * y[i] * (1.0 - y[i]));
}
