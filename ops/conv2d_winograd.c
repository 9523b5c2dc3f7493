// conv2d_winograd.c: 3x3 stride-1 convolution by Winograd's F(2x2, 3x3)
// (Lavin & Gray 2015), the fast path of conv2d_forward and conv2d_backward:
// the forward, dx (a stride-1 conv's dx is itself a 3x3 stride-1 conv of dy)
// and dw (conv2d_winograd_dw).
//
// The output is cut into 2x2 tiles; tile (r, c) of an image reads the 4x4
// input patch d at rows 2r - ph .., columns 2c - pw .. (zeros outside).
// Per tile, per (co, ci) pair:
//   y_tile (2x2) = A^T [ (G g G^T) .* (B^T d B) ] A
// with g the 3x3 kernel and
//   B^T = | 1  0 -1  0 |   G = |  1    0    0  |   A^T = | 1  1  1  0 |
//         | 0  1  1  0 |       | 1/2  1/2  1/2 |         | 0  1 -1 -1 |
//         | 0 -1  1  0 |       | 1/2 -1/2  1/2 |
//         | 0  1  0 -1 |       |  0    0    1  |
// The sum over ci moves inside, so each of the 16 positions xi of the 4x4
// transformed tile is one GEMM over all tiles:
//   U (16, Co, C)  = G g G^T of every kernel, position-major
//   V (16, C, T)   = B^T d B of every input tile (T tiles of a group of images)
//   M_xi (Co, T)   = U_xi (Co, C) . V_xi (C, T)          16 sgemm calls
//   y              = A^T M A per tile, plus the bias
// That is 16 multiplies per 4 outputs where the direct conv needs 36: 2.25x
// less GEMM arithmetic, and V holds 4 values per input pixel and channel
// where im2col holds 9. The transforms only add and halve, so the rounding
// stays within a few ulps of the direct sum (tests compare against the
// double-precision reference at 1e-5).
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "ops.h"

#define OMP_MIN_WORK 32768
// Tiles per group of images: the GEMMs run at full speed from a few hundred
// columns; larger groups only grow V and M.
#define TILES_TARGET 256

static void *malloc_or_die(size_t n) {
    void *p = malloc(n ? n : 1);
    if (!p) { fprintf(stderr, "conv2d_winograd: out of memory allocating %zu bytes\n", n); abort(); }
    return p;
}

// Scratch slots (ops_scratch): 0: U (or dU), 1: V, 2: M (or Z).

// VISCNN_NO_WINOGRAD=1 sends these convs to im2col (tests compare the two).
int conv2d_winograd_applies(const conv2d_dims *d) {
    const char *e = getenv("VISCNN_NO_WINOGRAD");
    if (e && *e && *e != '0') return 0;
    return d->kh == 3 && d->kw == 3 && d->sh == 1 && d->sw == 1 && d->dh == 1 && d->dw == 1 &&
           d->groups == 1 && d->ph <= 2 && d->pw <= 2 && d->C >= 16 && d->Co >= 16 && d->Ho > 0 && d->Wo > 0;
}

// The 16 planes of U, V and M lie at a stride whose byte offset is 64 past a
// multiple of 4 KiB: at a power-of-two stride the 16 streams a transform
// reads or writes together would all map to the same L1 cache sets.
static size_t plane_stride(size_t n) { return (n + 1023) / 1024 * 1024 + 16; }

// U: (16, R, Q), plane stride SU: G g G^T of every kernel. Not flipped: R =
// Co, Q = C and g = w[r, q]. Flipped (the transposed conv of the backward's
// dx): R = C, Q = Co and g = w[q, r] rotated by 180 degrees; since G J = P G
// (J reverses 3 entries, P swaps entries 0 and 3 of 4), G rot(g) G^T is
// G g G^T with rows and columns permuted by P, so the rotation is only an
// index map. RB rows at a time: their kernels are gathered into t (9 rows of
// Q per row r), the transform runs vectorised along q into u (16 rows, row
// stride Q + 16, off the 4 KiB sets), then is copied out.
static void transform_weights(float *U, size_t SU, const float *w, int Co, int C, int flip) {
    enum { RB = 8 };   // rows per task: flipped, their kernels w[q, r0 .. r0 + RB) are adjacent
    const int R = flip ? C : Co, Q = flip ? Co : C, ld = Q + 16;
    static const int P4[4] = {3, 1, 2, 0};
    #pragma omp parallel if ((long)R * Q * 16 >= OMP_MIN_WORK)
    {
        float *t = malloc_or_die(sizeof(float) * RB * 9 * ld), *u = malloc_or_die(sizeof(float) * 16 * ld);
        #pragma omp for schedule(static)
        for (int r0 = 0; r0 < R; r0 += RB) {
            const int nr = R - r0 < RB ? R - r0 : RB;
            for (int q = 0; q < Q; q++)
                for (int i = 0; i < nr; i++) {
                    const float *g = flip ? w + ((size_t)q * C + r0 + i) * 9 : w + ((size_t)(r0 + i) * C + q) * 9;
                    for (int k = 0; k < 9; k++) t[(i * 9 + k) * ld + q] = g[k];
                }
            for (int i = 0; i < nr; i++) {
                const float *ti = t + (size_t)i * 9 * ld;
                // a = G g (4x3), a[i][j] in u's row 4i + j; then u = a G^T in
                // place, row by row. Written out: GCC does not vectorise the
                // loop with small arrays in it.
                for (int j = 0; j < 3; j++) {
                    const float *g0 = ti + j * ld, *g1 = ti + (3 + j) * ld, *g2 = ti + (6 + j) * ld;
                    float *a0 = u + (size_t)j * ld, *a1 = u + (size_t)(4 + j) * ld;
                    float *a2 = u + (size_t)(8 + j) * ld, *a3 = u + (size_t)(12 + j) * ld;
                    #pragma omp simd
                    for (int q = 0; q < Q; q++) {
                        a0[q] = g0[q];
                        a1[q] = 0.5f * (g0[q] + g1[q] + g2[q]);
                        a2[q] = 0.5f * (g0[q] - g1[q] + g2[q]);
                        a3[q] = g2[q];
                    }
                }
                for (int r = 0; r < 4; r++) {
                    float *u0 = u + (size_t)(4 * r) * ld, *u1 = u0 + ld, *u2 = u1 + ld, *u3 = u2 + ld;
                    #pragma omp simd
                    for (int q = 0; q < Q; q++) {
                        const float a0 = u0[q], a1 = u1[q], a2 = u2[q];
                        u1[q] = 0.5f * (a0 + a1 + a2);
                        u2[q] = 0.5f * (a0 - a1 + a2);
                        u3[q] = a2;
                    }
                }
                for (int k = 0; k < 16; k++) {
                    const int src = flip ? P4[k / 4] * 4 + P4[k % 4] : k;
                    memcpy(U + k * SU + (size_t)(r0 + i) * Q, u + (size_t)src * ld, sizeof(float) * Q);
                }
            }
        }
        free(t);
        free(u);
    }
}

// V: (16, C, T), plane stride SV, for images x + t*xstride, t < m, each
// (C, H, W); tile index (t*th + r)*tw + c. One task is one (image, channel).
// Each row of the zero-padded input (2*th + 2 rows, 2*tw + 2 columns) is
// split into even and odd columns and given its row transform d B once
// (q: 4 vectors of tw per padded row, shared by the two tile rows that read
// it); then each tile row's column transform B^T q writes its 16 planes.
static void transform_input(float *V, size_t SV, const float *x, int m, size_t xstride, const conv2d_dims *d,
                            int th, int tw) {
    const int C = d->C, H = d->H, W = d->W, rows = 2 * th + 2;
    const size_t T = (size_t)m * th * tw;
    #pragma omp parallel if ((long)m * C * H * W >= OMP_MIN_WORK)
    {
        float *eo = malloc_or_die(sizeof(float) * 2 * (tw + 1));
        float *q = malloc_or_die(sizeof(float) * (size_t)rows * 4 * tw);   // q[row][j][c]
        int e_lo, e_hi, o_lo, o_hi;   // columns k with input column 2k - pw (+1) inside [0, W)
        conv2d_valid_range(-d->pw, 2, W, tw + 1, &e_lo, &e_hi);
        conv2d_valid_range(1 - d->pw, 2, W, tw + 1, &o_lo, &o_hi);
        #pragma omp for collapse(2) schedule(static)
        for (int t = 0; t < m; t++)
            for (int ci = 0; ci < C; ci++) {
                const float *xc = x + t * xstride + (size_t)ci * H * W;
                for (int pr = 0; pr < rows; pr++) {
                    float *q0 = q + (size_t)pr * 4 * tw, *q1 = q0 + tw, *q2 = q1 + tw, *q3 = q2 + tw;
                    const int ih = pr - d->ph;
                    if (ih < 0 || ih >= H) { memset(q0, 0, sizeof(float) * 4 * tw); continue; }
                    const float *xr = xc + (size_t)ih * W;
                    float *e = eo, *o = eo + tw + 1;
                    for (int k = 0; k < e_lo; k++) e[k] = 0.0f;
                    #pragma omp simd
                    for (int k = e_lo; k < e_hi; k++) e[k] = xr[2 * k - d->pw];
                    for (int k = e_hi; k <= tw; k++) e[k] = 0.0f;
                    for (int k = 0; k < o_lo; k++) o[k] = 0.0f;
                    #pragma omp simd
                    for (int k = o_lo; k < o_hi; k++) o[k] = xr[2 * k + 1 - d->pw];
                    for (int k = o_hi; k <= tw; k++) o[k] = 0.0f;
                    // the patch row at tile column c is e[c], o[c], e[c+1], o[c+1]
                    #pragma omp simd
                    for (int c = 0; c < tw; c++) {
                        q0[c] = e[c] - e[c + 1];
                        q1[c] = o[c] + e[c + 1];
                        q2[c] = e[c + 1] - o[c];
                        q3[c] = o[c] - o[c + 1];
                    }
                }
                float *vc = V + (size_t)ci * T + (size_t)t * th * tw;
                for (int r = 0; r < th; r++) {
                    const float *a0 = q + (size_t)(2 * r) * 4 * tw, *a1 = a0 + 4 * tw, *a2 = a1 + 4 * tw,
                                *a3 = a2 + 4 * tw;
                    float *vr = vc + (size_t)r * tw;
                    for (int j = 0; j < 4; j++) {
                        const float *b0 = a0 + j * tw, *b1 = a1 + j * tw, *b2 = a2 + j * tw, *b3 = a3 + j * tw;
                        float *v0 = vr + (size_t)j * SV, *v1 = vr + (size_t)(4 + j) * SV;
                        float *v2 = vr + (size_t)(8 + j) * SV, *v3 = vr + (size_t)(12 + j) * SV;
                        #pragma omp simd
                        for (int c = 0; c < tw; c++) {
                            v0[c] = b0[c] - b2[c];
                            v1[c] = b1[c] + b2[c];
                            v2[c] = b2[c] - b1[c];
                            v3[c] = b1[c] - b3[c];
                        }
                    }
                }
            }
        free(eo);
        free(q);
    }
}

// y + t*ystride: (Co, Ho, Wo) (=, or += when acc) from M: (16, Co, T), plane
// stride SM, plus b. Per tile row: A^T M (2 rows of 4 vectors over the tile
// columns), then the row transform into the two output rows.
static void transform_output(float *y, size_t ystride, const float *M, size_t SM, const float *b, int m, int Co,
                             const conv2d_dims *d, int th, int tw, int acc) {
    const int Ho = d->Ho, Wo = d->Wo;
    const size_t T = (size_t)m * th * tw;
    #pragma omp parallel if ((long)m * Co * Ho * Wo >= OMP_MIN_WORK)
    {
        float *s = malloc_or_die(sizeof(float) * 8 * tw);     // s[a][j][c] = (A^T M)[a][j]
        float *rows = malloc_or_die(sizeof(float) * 4 * tw);  // the tile row's 2 output rows, 2*tw each
        #pragma omp for collapse(2) schedule(static)
        for (int t = 0; t < m; t++)
            for (int co = 0; co < Co; co++) {
                float *yc = y + t * ystride + (size_t)co * Ho * Wo;
                const float *mc = M + (size_t)co * T + (size_t)t * th * tw;
                const float bias = b ? b[co] : 0.0f;
                for (int r = 0; r < th; r++) {
                    const float *mr = mc + (size_t)r * tw;
                    for (int j = 0; j < 4; j++) {
                        const float *m0 = mr + (size_t)j * SM, *m1 = mr + (size_t)(4 + j) * SM;
                        const float *m2 = mr + (size_t)(8 + j) * SM, *m3 = mr + (size_t)(12 + j) * SM;
                        float *s0 = s + (size_t)j * tw, *s1 = s + (size_t)(4 + j) * tw;
                        #pragma omp simd
                        for (int c = 0; c < tw; c++) {
                            s0[c] = m0[c] + m1[c] + m2[c];
                            s1[c] = m1[c] - m2[c] - m3[c];
                        }
                    }
                    for (int a = 0; a < 2; a++) {
                        const float *s0 = s + (size_t)a * 4 * tw, *s1 = s0 + tw, *s2 = s1 + tw, *s3 = s2 + tw;
                        float *yo = rows + (size_t)a * 2 * tw;
                        #pragma omp simd
                        for (int c = 0; c < tw; c++) {
                            yo[2 * c] = s0[c] + s1[c] + s2[c] + bias;
                            yo[2 * c + 1] = s1[c] - s2[c] - s3[c] + bias;
                        }
                    }
                    for (int a = 0; a < 2 && 2 * r + a < Ho; a++) {
                        float *yr = yc + (size_t)(2 * r + a) * Wo;
                        const float *src = rows + (size_t)a * 2 * tw;
                        if (acc) {
                            #pragma omp simd
                            for (int k = 0; k < Wo; k++) yr[k] += src[k];
                        } else {
                            memcpy(yr, src, sizeof(float) * Wo);
                        }
                    }
                }
            }
        free(s);
        free(rows);
    }
}

// Z: (16, Co, T), plane stride SZ, from dy + t*ystride: (Co, Ho, Wo), t < m:
// per 2x2 tile dY of dy (zeros past Ho, Wo), Z = A dY A^T, the gradient of
// the forward's 4x4 product U .* V. Per tile row, the two dy rows are split
// into even and odd columns (dY[a][0], dY[a][1] of every tile column).
static void transform_dy(float *Z, size_t SZ, const float *dy, size_t ystride, int m, int Co, const conv2d_dims *d,
                         int th, int tw) {
    const int Ho = d->Ho, Wo = d->Wo;
    const size_t T = (size_t)m * th * tw;
    #pragma omp parallel if ((long)m * Co * Ho * Wo >= OMP_MIN_WORK)
    {
        float *buf = malloc_or_die(sizeof(float) * 12 * tw);   // 4 split rows, then r[i][b] (8 rows)
        #pragma omp for collapse(2) schedule(static)
        for (int t = 0; t < m; t++)
            for (int co = 0; co < Co; co++) {
                const float *yc = dy + t * ystride + (size_t)co * Ho * Wo;
                float *zc = Z + (size_t)co * T + (size_t)t * th * tw;
                for (int r = 0; r < th; r++) {
                    float *ev[2] = {buf, buf + 2 * tw}, *od[2] = {buf + tw, buf + 3 * tw};
                    for (int a = 0; a < 2; a++) {
                        if (2 * r + a >= Ho) {
                            memset(ev[a], 0, sizeof(float) * tw);
                            memset(od[a], 0, sizeof(float) * tw);
                            continue;
                        }
                        const float *yr = yc + (size_t)(2 * r + a) * Wo;
                        const int full = Wo / 2;   // tile columns with both outputs inside
                        float *e = ev[a], *o = od[a];
                        #pragma omp simd
                        for (int c = 0; c < full; c++) { e[c] = yr[2 * c]; o[c] = yr[2 * c + 1]; }
                        if (full < tw) { e[full] = yr[2 * full]; o[full] = 0.0f; }
                    }
                    // (A dY)[i][b], i < 4, b < 2: rows dY0 and dY1 combined
                    float *q = buf + 4 * tw;   // q[i*2 + b][c]
                    #pragma omp simd
                    for (int c = 0; c < tw; c++) {
                        const float y00 = ev[0][c], y01 = od[0][c], y10 = ev[1][c], y11 = od[1][c];
                        q[0 * tw + c] = y00;        q[1 * tw + c] = y01;
                        q[2 * tw + c] = y00 + y10;  q[3 * tw + c] = y01 + y11;
                        q[4 * tw + c] = y00 - y10;  q[5 * tw + c] = y01 - y11;
                        q[6 * tw + c] = -y10;       q[7 * tw + c] = -y11;
                    }
                    float *zr = zc + (size_t)r * tw;
                    for (int i = 0; i < 4; i++) {   // Z[i][j] = (A dY)[i] A^T
                        const float *q0 = q + (size_t)(2 * i) * tw, *q1 = q0 + tw;
                        float *z0 = zr + (size_t)(4 * i) * SZ, *z1 = z0 + SZ, *z2 = z1 + SZ, *z3 = z2 + SZ;
                        #pragma omp simd
                        for (int c = 0; c < tw; c++) {
                            z0[c] = q0[c];
                            z1[c] = q0[c] + q1[c];
                            z2[c] = q0[c] - q1[c];
                            z3[c] = -q1[c];
                        }
                    }
                }
            }
        free(buf);
    }
}

// dw: (Co, C, 3, 3) += G^T dU G per (co, ci), dU: (16, Co, C), plane stride
// SU. One output channel at a time, vectorised along ci into t, then added
// to dw's contiguous (C, 9) block.
static void transform_dweights(float *dw, const float *dU, size_t SU, int Co, int C) {
    const int ld = C + 16;
    #pragma omp parallel if ((long)Co * C * 16 >= OMP_MIN_WORK)
    {
        float *t = malloc_or_die(sizeof(float) * 21 * ld);   // a (12 rows), then dg (9 rows)
        #pragma omp for schedule(static)
        for (int co = 0; co < Co; co++) {
            const float *du = dU + (size_t)co * C;
            // a = G^T u (3x4), a[i][j] in t's row 4i + j; written out so that GCC
            // vectorises along c.
            for (int j = 0; j < 4; j++) {
                const float *u0 = du + j * SU, *u1 = du + (4 + j) * SU, *u2 = du + (8 + j) * SU, *u3 = du + (12 + j) * SU;
                float *a0 = t + (size_t)j * ld, *a1 = t + (size_t)(4 + j) * ld, *a2 = t + (size_t)(8 + j) * ld;
                #pragma omp simd
                for (int c = 0; c < C; c++) {
                    a0[c] = u0[c] + 0.5f * (u1[c] + u2[c]);
                    a1[c] = 0.5f * (u1[c] - u2[c]);
                    a2[c] = 0.5f * (u1[c] + u2[c]) + u3[c];
                }
            }
            for (int i = 0; i < 3; i++) {   // row i of a G (3x3) into rows 12 + 3i ..
                const float *a0 = t + (size_t)(4 * i) * ld, *a1 = a0 + ld, *a2 = a1 + ld, *a3 = a2 + ld;
                float *r0 = t + (size_t)(12 + 3 * i) * ld, *r1 = r0 + ld, *r2 = r1 + ld;
                #pragma omp simd
                for (int c = 0; c < C; c++) {
                    r0[c] = a0[c] + 0.5f * (a1[c] + a2[c]);
                    r1[c] = 0.5f * (a1[c] - a2[c]);
                    r2[c] = 0.5f * (a1[c] + a2[c]) + a3[c];
                }
            }
            float *g = dw + (size_t)co * C * 9;
            for (int c = 0; c < C; c++)
                for (int k = 0; k < 9; k++) g[(size_t)c * 9 + k] += t[(12 + k) * ld + c];
        }
        free(t);
    }
}

// y: (N, R, Ho, Wo) (=, or += when acc) = b + the conv of d (x: (N, d->C,
// H, W), R = d->Co outputs) whose U is transform_weights(w, Co, C, flip).
static void winograd_conv(float *y, const float *x, const float *w, int Co, int C, int flip, const float *b,
                          const conv2d_dims *d, int acc) {
    const int N = d->N, Ci = d->C, R = d->Co;
    const int th = (d->Ho + 1) / 2, tw = (d->Wo + 1) / 2, tiles = th * tw;
    if (N == 0) return;
    const int nb = images_per_group(N, tiles, TILES_TARGET);
    const size_t xs = (size_t)Ci * d->H * d->W, ys = (size_t)R * d->Ho * d->Wo;
    const size_t SU = plane_stride((size_t)R * Ci), SV = plane_stride((size_t)Ci * nb * tiles);
    const size_t SM = plane_stride((size_t)R * nb * tiles);
    float *U = ops_scratch(0, 16 * SU), *V = ops_scratch(1, 16 * SV), *M = ops_scratch(2, 16 * SM);
    transform_weights(U, SU, w, Co, C, flip);
    for (int n0 = 0; n0 < N; n0 += nb) {
        const int m = N - n0 < nb ? N - n0 : nb;
        const int T = m * tiles;
        transform_input(V, SV, x + n0 * xs, m, xs, d, th, tw);
        // 16 independent GEMMs: one thread each (OpenBLAS runs single-threaded
        // inside a parallel region), so no GEMM is split below its good size.
        #pragma omp parallel for schedule(dynamic)
        for (int k = 0; k < 16; k++)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, R, T, Ci, 1.0f, U + k * SU, Ci,
                        V + k * SV, T, 0.0f, M + k * SM, T);
        transform_output(y + n0 * ys, ys, M, SM, b, m, R, d, th, tw, acc);
    }
}

// y: (N, Co, Ho, Wo) = b + conv(x, w), or y += conv(x, w) (+ b) when acc.
// x: (N, C, H, W), w: (Co, C, 3, 3), b: (Co) or NULL; d must satisfy
// conv2d_winograd_applies.
void conv2d_winograd(float *y, const float *x, const float *w, const float *b, const conv2d_dims *d, int acc) {
    winograd_conv(y, x, w, d->Co, d->C, 0, b, d, acc);
}

// dx: (N, C, H, W) += the input gradient of conv2d_winograd's conv d from
// dy: (N, Co, Ho, Wo): the transposed conv, i.e. dy convolved (padding 2 -
// p) with the kernels rotated by 180 degrees and in/out channels swapped.
void conv2d_winograd_dx(float *dx, const float *dy, const float *w, const conv2d_dims *d) {
    conv2d_dims td = *d;
    td.C = d->Co; td.H = d->Ho; td.W = d->Wo; td.Co = d->C;
    td.ph = 2 - d->ph; td.pw = 2 - d->pw;
    td.Ho = d->H; td.Wo = d->W;
    winograd_conv(dx, dy, w, d->Co, d->C, 1, NULL, &td, 1);
}

// dw: (Co, C, 3, 3) += the weight gradient of conv2d_winograd's conv, from
// x: (N, C, H, W) and dy: (N, Co, Ho, Wo). The forward per tile is
// y = A^T (U .* V) A with U = G g G^T, so
//   dU_xi (Co, C) = sum over tiles of Z_xi (Co, T) . V_xi^T,  Z = A dY A^T
//   dg            = G^T dU G
// 16 GEMMs with the tiles as their inner dimension: 2.25x less arithmetic
// than dy . im2col(x)^T.
void conv2d_winograd_dw(float *dw, const float *x, const float *dy, const conv2d_dims *d) {
    const int N = d->N, C = d->C, Co = d->Co;
    const int th = (d->Ho + 1) / 2, tw = (d->Wo + 1) / 2, tiles = th * tw;
    if (N == 0) return;
    const int nb = images_per_group(N, tiles, TILES_TARGET);
    const size_t xs = (size_t)C * d->H * d->W, ys = (size_t)Co * d->Ho * d->Wo;
    const size_t SU = plane_stride((size_t)Co * C), SV = plane_stride((size_t)C * nb * tiles);
    const size_t SZ = plane_stride((size_t)Co * nb * tiles);
    float *dU = ops_scratch(0, 16 * SU), *V = ops_scratch(1, 16 * SV), *Z = ops_scratch(2, 16 * SZ);
    for (int n0 = 0; n0 < N; n0 += nb) {
        const int m = N - n0 < nb ? N - n0 : nb;
        const int T = m * tiles;
        transform_input(V, SV, x + n0 * xs, m, xs, d, th, tw);
        transform_dy(Z, SZ, dy + n0 * ys, ys, m, Co, d, th, tw);
        #pragma omp parallel for schedule(dynamic)
        for (int k = 0; k < 16; k++)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Co, C, T, 1.0f, Z + k * SZ, T,
                        V + k * SV, T, n0 ? 1.0f : 0.0f, dU + k * SU, C);
    }
    transform_dweights(dw, dU, SU, Co, C);
}
