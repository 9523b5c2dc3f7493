// relu.c: y = max(x, 0), as PyTorch's clamp_min: NaN passes through, -0 stays -0.
// Backward is PyTorch's threshold_backward on the output: dy is passed where
// y > 0 and where y is NaN, zeroed where y <= 0 (so the gradient at 0 is 0).
// Forward writes y (may alias x); backward accumulates into dx; relu_decisions
// writes the branch of each element (the sign mask) for replay.
#include "ops.h"

// y: (n)  x: (n)
void relu_forward(float *y, const float *x, size_t n) {
    #pragma omp parallel for simd schedule(static) if (n > 65536)
    for (size_t i = 0; i < n; i++) y[i] = x[i] < 0.0f ? 0.0f : x[i];
}

// dx += (n)  dy: (n)  y: (n) the forward's output
void relu_backward(float *dx, const float *dy, const float *y, size_t n) {
    #pragma omp parallel for simd schedule(static) if (n > 65536)
    for (size_t i = 0; i < n; i++) {
        const float g = dy[i];   // loaded unconditionally so that the loop vectorises
        dx[i] += y[i] <= 0.0f ? 0.0f : g;
    }
}

// region: (n) the branch each output took, as relu_backward reads it: 1 where
// dy passes (y > 0, or y is NaN), 0 where y <= 0 (y is 0). A reference
// replays it as y = region ? x : 0 (docs/parity.md).
void relu_decisions(uint8_t *region, const float *y, size_t n) {
    #pragma omp parallel for simd schedule(static) if (n > 65536)
    for (size_t i = 0; i < n; i++) region[i] = !(y[i] <= 0.0f);
}

void relu_forward_ref(float *y, const float *x, size_t n) {
    for (size_t i = 0; i < n; i++) {
        if (x[i] != x[i]) y[i] = x[i];          // NaN propagates
        else y[i] = x[i] > 0.0f ? x[i] : 0.0f;
    }
}

void relu_backward_ref(float *dx, const float *dy, const float *y, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (y[i] > 0.0f || y[i] != y[i]) dx[i] += dy[i];
}
