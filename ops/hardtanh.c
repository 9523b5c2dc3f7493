// hardtanh.c: y = clamp(x, lo, hi), PyTorch's hardtanh (ReLU6 is lo=0, hi=6).
// Backward is PyTorch's hardtanh_backward: dy passes where lo < x < hi and is
// zeroed at and beyond the bounds. Since clamp is exact, the region can be read
// off the output: y <= lo (0), lo < y < hi or NaN (1), y >= hi (2).
// Forward writes y (may alias x); backward accumulates into dx.
#include "ops.h"

static inline uint8_t region_of(float y, float lo, float hi) { return y <= lo ? 0 : y >= hi ? 2 : 1; }

// y, x: (n)
void hardtanh_forward(float *y, const float *x, size_t n, float lo, float hi) {
    #pragma omp parallel for simd schedule(static) if (n > 65536)
    for (size_t i = 0; i < n; i++) {
        float v = x[i];
        y[i] = v < lo ? lo : v > hi ? hi : v;   // NaN fails both tests: it passes through
    }
}

// dx += (n)  dy: (n)  y: (n) the forward's output
void hardtanh_backward(float *dx, const float *dy, const float *y, size_t n, float lo, float hi) {
    #pragma omp parallel for simd schedule(static) if (n > 65536)
    for (size_t i = 0; i < n; i++) {
        const float g = dy[i];
        dx[i] += region_of(y[i], lo, hi) == 1 ? g : 0.0f;
    }
}

// region: (n) as the backward reads it; replayed as lo / x / hi (docs/parity.md).
void hardtanh_decisions(uint8_t *region, const float *y, size_t n, float lo, float hi) {
    #pragma omp parallel for simd schedule(static) if (n > 65536)
    for (size_t i = 0; i < n; i++) region[i] = region_of(y[i], lo, hi);
}

void hardtanh_forward_ref(float *y, const float *x, size_t n, float lo, float hi) {
    for (size_t i = 0; i < n; i++) {
        if (x[i] != x[i]) y[i] = x[i];
        else if (x[i] < lo) y[i] = lo;
        else if (x[i] > hi) y[i] = hi;
        else y[i] = x[i];
    }
}

void hardtanh_backward_ref(float *dx, const float *dy, const float *y, size_t n, float lo, float hi) {
    for (size_t i = 0; i < n; i++)
        if (!(y[i] <= lo) && !(y[i] >= hi)) dx[i] += dy[i];
}
