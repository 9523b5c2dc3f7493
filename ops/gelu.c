// gelu.c: GELU, the exact (erf) form PyTorch's nn.GELU() uses by default:
//   y = x Phi(x) = x/2 (1 + erf(x / sqrt 2)),  dy/dx = Phi(x) + x phi(x),
// phi the standard normal density. (The tanh approximation is not used by any
// torchvision CNN and is not implemented.)
// Forward writes y (must not alias x: the backward reads x); backward accumulates into dx.
#include <math.h>
#include "ops.h"

#define INV_SQRT2 0.70710678118654752440
#define INV_SQRT_2PI 0.39894228040143267794

// y, x: (n)
void gelu_forward(float *y, const float *x, size_t n) {
    #pragma omp parallel for schedule(static) if (n > 16384)
    for (size_t i = 0; i < n; i++) y[i] = 0.5f * x[i] * (1.0f + erff(x[i] * (float)INV_SQRT2));
}

// dx += (n)  dy: (n)  x: (n) the forward's input
void gelu_backward(float *dx, const float *dy, const float *x, size_t n) {
    #pragma omp parallel for schedule(static) if (n > 16384)
    for (size_t i = 0; i < n; i++) {
        float v = x[i];
        float cdf = 0.5f * (1.0f + erff(v * (float)INV_SQRT2));
        float pdf = (float)INV_SQRT_2PI * expf(-0.5f * v * v);
        dx[i] += dy[i] * (cdf + v * pdf);
    }
}

void gelu_forward_ref(float *y, const float *x, size_t n) {
    for (size_t i = 0; i < n; i++) y[i] = (float)(0.5 * x[i] * (1.0 + erf(x[i] * INV_SQRT2)));
}

void gelu_backward_ref(float *dx, const float *dy, const float *x, size_t n) {
    for (size_t i = 0; i < n; i++) {
        double v = x[i];
        dx[i] += (float)(dy[i] * (0.5 * (1.0 + erf(v * INV_SQRT2)) + v * INV_SQRT_2PI * exp(-0.5 * v * v)));
    }
}
