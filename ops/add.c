// add.c: y = a + b, same shape (residual connections). Forward writes y (may
// alias a or b); backward accumulates dy into da and into db, each may be
// NULL, and da == db (x + x) correctly receives dy twice.
#include "ops.h"

// y, a, b: (n)
void add_forward(float *y, const float *a, const float *b, size_t n) {
    #pragma omp parallel for simd schedule(static) if (n > 65536)
    for (size_t i = 0; i < n; i++) y[i] = a[i] + b[i];
}

// da += (n)  db += (n)  dy: (n)
void add_backward(float *da, float *db, const float *dy, size_t n) {
    if (da) {
        #pragma omp parallel for simd schedule(static) if (n > 65536)
        for (size_t i = 0; i < n; i++) da[i] += dy[i];
    }
    if (db) {
        #pragma omp parallel for simd schedule(static) if (n > 65536)
        for (size_t i = 0; i < n; i++) db[i] += dy[i];
    }
}
