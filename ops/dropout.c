// dropout.c: inverted dropout, as torch.nn.functional.dropout.
// Eval (train == 0): y = x; mask, p and *rng are not touched.
// Train: for i = 0..n-1 in order, one draw of the xorshift64* stream
//   s ^= s >> 12; s ^= s << 25; s ^= s >> 27;
//   u = ((s * 2685821657736338717) >> 40) / 2^24          (uniform in [0,1))
//   mask[i] = u < p ? 0 : 1/(1-p)
// with s = *rng on entry (0 is replaced by a fixed non-zero seed, since
// xorshift never leaves 0) and *rng = s on return, so consecutive calls
// continue one stream. Each element is kept with probability 1-p; p >= 1
// drops everything (mask 0, as PyTorch). y = x * mask.
// This is the generator of tests/testutil.h's tu_uniform (u there is 2u-1).
// The stream is serial by nature; the multiply runs after it in parallel.
// Forward writes y (may alias x) and mask; backward accumulates into dx.
#include <string.h>
#include "ops.h"

// y: (n)  mask: (n), may be NULL in eval  x: (n)  rng: (1) state, advanced
void dropout_forward(float *y, float *mask, const float *x, size_t n, float p, int train, uint64_t *rng) {
    if (!train) {
        if (y != x) memcpy(y, x, n * sizeof(float));
        return;
    }
    const float keep = p < 1.0f ? 1.0f / (1.0f - p) : 0.0f;
    uint64_t s = *rng ? *rng : 0x9E3779B97F4A7C15ULL;
    for (size_t i = 0; i < n; i++) {
        s ^= s >> 12; s ^= s << 25; s ^= s >> 27;
        float u = (float)(((s * 2685821657736338717ULL) >> 40) * (1.0 / 16777216.0));
        mask[i] = u < p ? 0.0f : keep;
    }
    *rng = s;
    #pragma omp parallel for simd schedule(static) if (n > 65536)
    for (size_t i = 0; i < n; i++) y[i] = x[i] * mask[i];
}

// dx += (n)  dy: (n)  mask: (n) from the forward (unused in eval)
void dropout_backward(float *dx, const float *dy, const float *mask, size_t n, int train) {
    if (!train) {
        #pragma omp parallel for simd schedule(static) if (n > 65536)
        for (size_t i = 0; i < n; i++) dx[i] += dy[i];
        return;
    }
    #pragma omp parallel for simd schedule(static) if (n > 65536)
    for (size_t i = 0; i < n; i++) dx[i] += dy[i] * mask[i];
}
