// linear.c: fully connected layer, exactly PyTorch's nn.Linear.
//
//   y[n,o] = b[o] + sum_i x[n,i] * w[o,i]        (y = x w^T + b)
//
// Forward writes y (=). Backward accumulates (+=) into dx, dw, db; a NULL
// d-buffer is skipped. The fast path is three sgemm calls (OpenBLAS), except
// for small batches: y and dx then use the AVX2 kernels below.
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <omp.h>
#include "ops.h"
#include "simd.h"

#define LINEAR_CHECK(cond) \
    do { if (!(cond)) { fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); abort(); } } while (0)

// ---- small batches (AVX2+FMA, chosen at run time) --------------------------------
// With a few images, y = x w^T is a matrix-vector product in disguise: the
// whole cost is streaming w (alexnet's first FC layer: 151 MB) once, and
// OpenBLAS's sgemm reaches a third of that speed at N = 8. These kernels
// read each weight once from memory, with the N images' rows in cache.
#if SIMD_X86
#define SMALL_N 16

// y (N,Out) += x (N,In) . w^T; In % 8 == 0. Blocks of 3 weight rows x 4
// images in 12 registers; missing rows/images read row 0 / image 0 and are
// not stored. The second group of 4 images finds the 3 rows in L2.
// (The bodies of the parallel loops are functions of their own: an OpenMP
// region is outlined into a function without the target attribute, which
// clang refuses to pass AVX vectors through.)
__attribute__((target("avx2,fma")))
static void linear_fwd_rows(float *y, const float *x, const float *w, int N, int In, int Out, int o0) {
    {
        const float *wr[3];
        for (int r = 0; r < 3; r++) wr[r] = w + (size_t)(o0 + r < Out ? o0 + r : o0) * In;
        for (int n0 = 0; n0 < N; n0 += 4) {
            const float *xr[4];
            for (int t = 0; t < 4; t++) xr[t] = x + (size_t)(n0 + t < N ? n0 + t : n0) * In;
            v8 acc[3][4];
            #pragma GCC unroll 4
            for (int r = 0; r < 3; r++)
                #pragma GCC unroll 4
                for (int t = 0; t < 4; t++) acc[r][t] = (v8){0};
            for (int i = 0; i < In; i += 8) {
                const v8 w0 = ld8(wr[0] + i), w1 = ld8(wr[1] + i), w2 = ld8(wr[2] + i);
                #pragma GCC unroll 4
                for (int t = 0; t < 4; t++) {
                    const v8 xv = ld8(xr[t] + i);
                    acc[0][t] += w0 * xv;
                    acc[1][t] += w1 * xv;
                    acc[2][t] += w2 * xv;
                }
            }
            for (int r = 0; r < 3 && o0 + r < Out; r++)
                for (int t = 0; t < 4 && n0 + t < N; t++) {
                    float s = 0;
                    for (int k = 0; k < 8; k++) s += acc[r][t][k];
                    y[(size_t)(n0 + t) * Out + o0 + r] += s;
                }
        }
    }
}

static void linear_fwd_small(float *y, const float *x, const float *w, int N, int In, int Out) {
    #pragma omp parallel for schedule(static) if ((long)Out * In >= 65536)
    for (int o0 = 0; o0 < Out; o0 += 3) linear_fwd_rows(y, x, w, N, In, Out, o0);
}

// dx (N,In) += dy (N,Out) . w; In % 8 == 0. Each thread takes a contiguous
// range of weight rows and streams them once, whole rows at a time (short
// strided pieces of rows leave the prefetcher behind: 3x slower), into its
// own copy of dx (N*In floats: in L2 for small N), added up at the end. A
// tile is 24 columns (3 vectors) x 4 images in 12 registers over OB rows.
#define OB 8
__attribute__((target("avx2,fma")))
static void linear_bwd_dx_rows(float *acc_dx, const float *dy, const float *w, int N, int In, int Out, int lo, int hi) {
    {
        for (int o0 = lo; o0 < hi; o0 += OB) {
            const int rows = hi - o0 < OB ? hi - o0 : OB;
            for (int c = 0; c < In; c += 24) {
                const int nv = (In - c) / 8 < 3 ? (In - c) / 8 : 3;   // vectors in this tile
                for (int n0 = 0; n0 < N; n0 += 4) {
                    const float *dyr[4];
                    for (int t = 0; t < 4; t++) dyr[t] = dy + (size_t)(n0 + t < N ? n0 + t : n0) * Out + o0;
                    v8 acc[4][3];
                    #pragma GCC unroll 4
                    for (int t = 0; t < 4; t++) acc[t][0] = acc[t][1] = acc[t][2] = (v8){0};
                    if (nv == 3) {
                        for (int o = 0; o < rows; o++) {
                            const float *wo = w + (size_t)(o0 + o) * In + c;
                            const v8 w0 = ld8(wo), w1 = ld8(wo + 8), w2 = ld8(wo + 16);
                            #pragma GCC unroll 4
                            for (int t = 0; t < 4; t++) {
                                const v8 g = bc8(dyr[t][o]);
                                acc[t][0] += g * w0;
                                acc[t][1] += g * w1;
                                acc[t][2] += g * w2;
                            }
                        }
                    } else {
                        for (int o = 0; o < rows; o++) {
                            const float *wo = w + (size_t)(o0 + o) * In + c;
                            for (int v = 0; v < nv; v++)
                                for (int t = 0; t < 4; t++) acc[t][v] += bc8(dyr[t][o]) * ld8(wo + 8 * v);
                        }
                    }
                    for (int t = 0; t < 4 && n0 + t < N; t++) {
                        float *d = acc_dx + (size_t)(n0 + t) * In + c;
                        for (int v = 0; v < nv; v++) st8(d + 8 * v, ld8(d + 8 * v) + acc[t][v]);
                    }
                }
            }
        }
    }
}

static void linear_bwd_dx_small(float *dx, const float *dy, const float *w, int N, int In, int Out) {
    const int T = (long)Out * In >= 65536 ? omp_get_max_threads() : 1;
    float *part = T > 1 ? calloc((size_t)(T - 1) * N * In, sizeof(float)) : NULL;
    if (T > 1 && !part) abort();
    #pragma omp parallel num_threads(T)
    {
        const int th = omp_get_thread_num(), nth = omp_get_num_threads();
        float *acc_dx = th == 0 ? dx : part + (size_t)(th - 1) * N * In;
        const int ob = (Out + nth - 1) / nth, lo = th * ob, hi = lo + ob < Out ? lo + ob : Out;
        linear_bwd_dx_rows(acc_dx, dy, w, N, In, Out, lo, hi);
    }
    for (int t = 1; t < T; t++) {
        const float *pt = part + (size_t)(t - 1) * N * In;
        for (size_t k = 0; k < (size_t)N * In; k++) dx[k] += pt[k];
    }
    free(part);
}
#endif

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
#if SIMD_X86
    if (N <= SMALL_N && In % 8 == 0 && cpu_has_avx2_fma()) { linear_fwd_small(y, x, w, N, In, Out); return; }
#endif
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
#if SIMD_X86
    if (dx && N <= SMALL_N && In % 8 == 0 && cpu_has_avx2_fma()) { linear_bwd_dx_small(dx, dy, w, N, In, Out); dx = NULL; }
#endif
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
