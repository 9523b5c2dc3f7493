// hardsigmoid.c: y = min(max(x + 3, 0), 6) / 6, PyTorch's hardsigmoid.
// Pieces, chosen on x as PyTorch's hardsigmoid_backward does:
//   region 0: x <= -3       y = 0          dy/dx = 0
//   region 1: -3 < x < 3    y = (x+3)/6    dy/dx = 1/6
//   region 2: x >= 3        y = 1          dy/dx = 0
// (NaN: region 1.) The region is saved by the forward (the output cannot
// tell it: x + 3 rounds to 6 for x just below 3) and is the op's decision.
// Forward writes y (may alias x); backward accumulates into dx.
#include "ops.h"

static inline uint8_t region_of(float x) { return x <= -3.0f ? 0 : x >= 3.0f ? 2 : 1; }

// y: (n)  region: (n) saved  x: (n)
void hardsigmoid_forward(float *y, uint8_t *region, const float *x, size_t n) {
    #pragma omp parallel for simd schedule(static) if (n > 65536)
    for (size_t i = 0; i < n; i++) {
        float v = x[i], t = v + 3.0f;
        region[i] = region_of(v);
        t = t < 0.0f ? 0.0f : t > 6.0f ? 6.0f : t;
        y[i] = t / 6.0f;
    }
}

// dx += (n)  dy: (n)  region: (n) from the forward
void hardsigmoid_backward(float *dx, const float *dy, const uint8_t *region, size_t n) {
    #pragma omp parallel for simd schedule(static) if (n > 65536)
    for (size_t i = 0; i < n; i++) {
        const float g = dy[i] / 6.0f;
        dx[i] += region[i] == 1 ? g : 0.0f;
    }
}

void hardsigmoid_forward_ref(float *y, uint8_t *region, const float *x, size_t n) {
    for (size_t i = 0; i < n; i++) {
        region[i] = region_of(x[i]);
        if (x[i] != x[i]) y[i] = x[i];
        else y[i] = region[i] == 0 ? 0.0f : region[i] == 2 ? 1.0f : (x[i] + 3.0f) / 6.0f;
    }
}

void hardsigmoid_backward_ref(float *dx, const float *dy, const uint8_t *region, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (region[i] == 1) dx[i] += dy[i] / 6.0f;
}
