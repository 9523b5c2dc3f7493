// linear.c: fully connected layer, exactly PyTorch's nn.Linear.
//
//   y[n,o] = b[o] + sum_i x[n,i] * w[o,i]        (y = x w^T + b)
//
// Forward writes y (=). Backward accumulates (+=) into dx, dw, db; a NULL
// d-buffer is skipped. The fast path is three sgemm calls (OpenBLAS).
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "ops.h"

#define LINEAR_CHECK(cond) \
    do { if (!(cond)) { fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); abort(); } } while (0)

// y: (N,Out)  x: (N,In)  w: (Out,In)  b: (Out) or NULL
void linear_forward(float *y, const float *x, const float *w, const float *b, int N, int In, int Out) {
    LINEAR_CHECK(N >= 0 && In >= 0 && Out >= 0);
    if (N == 0 || Out == 0) return;
    // y starts as the bias (or 0) and the product is added with beta = 1.
    for (int n = 0; n < N; n++) {
        float *yr = y + (size_t)n * Out;
        if (b) memcpy(yr, b, sizeof(float) * (size_t)Out);
        else memset(yr, 0, sizeof(float) * (size_t)Out);
    }
    if (In == 0) return;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, N, Out, In,
                1.0f, x, In, w, In, 1.0f, y, Out);
}

// dx += (N,In)  dw += (Out,In)  db += (Out)  dy: (N,Out)
// x: (N,In) read only for dw   w: (Out,In) read only for dx
void linear_backward(float *dx, float *dw, float *db, const float *dy,
                     const float *x, const float *w, int N, int In, int Out) {
    LINEAR_CHECK(N >= 0 && In >= 0 && Out >= 0);
    if (N == 0 || Out == 0) return;
    if (db)
        for (int n = 0; n < N; n++) {
            const float *dyr = dy + (size_t)n * Out;
            #pragma omp simd
            for (int o = 0; o < Out; o++) db[o] += dyr[o];
        }
    if (In == 0) return;
    if (dx)   // dx (N,In) += dy (N,Out) . w (Out,In)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, N, In, Out,
                    1.0f, dy, Out, w, In, 1.0f, dx, In);
    if (dw)   // dw (Out,In) += dy^T (Out,N) . x (N,In)
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, Out, In, N,
                    1.0f, dy, Out, x, In, 1.0f, dw, In);
}

// ---- reference: direct loops, single-threaded, double accumulators --------

// y: (N,Out)  x: (N,In)  w: (Out,In)  b: (Out) or NULL
void linear_forward_ref(float *y, const float *x, const float *w, const float *b, int N, int In, int Out) {
    for (int n = 0; n < N; n++)
        for (int o = 0; o < Out; o++) {
            double s = b ? b[o] : 0.0;
            for (int i = 0; i < In; i++) s += (double)x[(size_t)n * In + i] * w[(size_t)o * In + i];
            y[(size_t)n * Out + o] = (float)s;
        }
}

// dx += (N,In)  dw += (Out,In)  db += (Out)  dy: (N,Out)   x: (N,In)  w: (Out,In)
void linear_backward_ref(float *dx, float *dw, float *db, const float *dy,
                         const float *x, const float *w, int N, int In, int Out) {
    if (dx)   // dx[n,i] += sum_o dy[n,o] w[o,i]
        for (int n = 0; n < N; n++)
            for (int i = 0; i < In; i++) {
                double s = 0.0;
                for (int o = 0; o < Out; o++) s += (double)dy[(size_t)n * Out + o] * w[(size_t)o * In + i];
                dx[(size_t)n * In + i] += (float)s;
            }
    if (dw)   // dw[o,i] += sum_n dy[n,o] x[n,i]
        for (int o = 0; o < Out; o++)
            for (int i = 0; i < In; i++) {
                double s = 0.0;
                for (int n = 0; n < N; n++) s += (double)dy[(size_t)n * Out + o] * x[(size_t)n * In + i];
                dw[(size_t)o * In + i] += (float)s;
            }
    if (db)   // db[o] += sum_n dy[n,o]
        for (int o = 0; o < Out; o++) {
            double s = 0.0;
            for (int n = 0; n < N; n++) s += dy[(size_t)n * Out + o];
            db[o] += (float)s;
        }
}
