// hardswish.c: y = x * min(max(x + 3, 0), 6) / 6, PyTorch's hardswish.
// Three pieces, chosen on x exactly as PyTorch's hardswish_backward does:
//   region 0: x < -3        y = 0          dy/dx = 0
//   region 1: -3 <= x <= 3  y = x(x+3)/6   dy/dx = x/3 + 1/2
//   region 2: x > 3         y = x          dy/dx = 1
// (NaN: region 1, it propagates). The forward saves the region (uint8 per
// element): it is the op's decision (docs/parity.md) and the backward's branch.
// Forward writes y (must not alias x: the backward reads x); backward accumulates into dx.
#include "ops.h"

static inline uint8_t region_of(float x) { return x < -3.0f ? 0 : x > 3.0f ? 2 : 1; }

// y: (n)  region: (n) saved  x: (n)
void hardswish_forward(float *y, uint8_t *region, const float *x, size_t n) {
    #pragma omp parallel for simd schedule(static) if (n > 65536)
    for (size_t i = 0; i < n; i++) {
        float v = x[i], t = v + 3.0f;
        t = t < 0.0f ? 0.0f : t > 6.0f ? 6.0f : t;
        y[i] = v * t / 6.0f;
        region[i] = region_of(v);
    }
}

// dx += (n)  dy: (n)  region: (n) from the forward  x: (n)
void hardswish_backward(float *dx, const float *dy, const uint8_t *region, const float *x, size_t n) {
    #pragma omp parallel for simd schedule(static) if (n > 65536)
    for (size_t i = 0; i < n; i++) {
        const float g = dy[i], s = x[i] / 3.0f + 0.5f;
        dx[i] += region[i] == 0 ? 0.0f : region[i] == 2 ? g : g * s;
    }
}

void hardswish_forward_ref(float *y, uint8_t *region, const float *x, size_t n) {
    for (size_t i = 0; i < n; i++) {
        float v = x[i];
        region[i] = region_of(v);
        if (region[i] == 0) y[i] = 0.0f;
        else if (region[i] == 2) y[i] = v;
        else y[i] = v * (v + 3.0f) / 6.0f;
    }
}

void hardswish_backward_ref(float *dx, const float *dy, const uint8_t *region, const float *x, size_t n) {
    for (size_t i = 0; i < n; i++) {
        if (region[i] == 1) dx[i] += dy[i] * (x[i] / 3.0f + 0.5f);
        else if (region[i] == 2) dx[i] += dy[i];
    }
}
