// conv2d.c: 2-D convolution, exactly PyTorch's nn.Conv2d.
//
// Cross-correlation (no kernel flip), zero padding ph/pw on each side,
// stride, dilation, groups. Group g maps input channels [g*Cg, (g+1)*Cg) to
// output channels [g*Cog, (g+1)*Cog), Cg = C/groups, Cog = Co/groups;
// depthwise is groups == C.
//
//   y[n,co,oh,ow] = b[co] + sum_{c<Cg, i<kh, j<kw}
//       w[co,c,i,j] * x[n, g*Cg + c, oh*sh - ph + i*dh, ow*sw - pw + j*dw]
//   (x outside [0,H) x [0,W) reads as 0)
//
// Forward writes y (=). Backward accumulates (+=) into dx, dw, db; a NULL
// d-buffer is skipped.
//
// Fast path, per group of m images (m = 1 for large maps, see
// COLS_TARGET) and per conv group, with K = Cg*kh*kw, P = Ho*Wo, L = m*P:
//   col  (K, L)   = im2col(x_g)            row (c,i,j), column (image, oh, ow)
//   y_g  (Cog, L) = W_g (Cog, K) . col     sgemm (then scattered to the images)
//   dw_g (Cog, K) += dy_g . col^T          sgemm, beta = 1
//   dcol (K, L)   = W_g^T . dy_g           sgemm, then col2im adds into dx
// A 1x1 kernel with stride 1 and no padding has col == x_g when m = 1, so the
// copy is skipped and dx gets W_g^T . dy_g directly (beta = 1).
// 3x3 stride-1 layers (conv2d_winograd_applies) go to conv2d_winograd.c
// instead: forward, dw, and dx as the transposed conv.
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "ops.h"

// Always-on invariant check: these are caller bugs or out-of-memory, which the
// ops cannot report through their void signatures.
#define CONV_CHECK(cond) \
    do { if (!(cond)) { fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); abort(); } } while (0)

// OpenMP pays only for loops that move enough data; below this many elements
// the thread start-up costs more than the copy.
#define OMP_MIN_WORK 32768

static void check_dims(const conv2d_dims *d) {
    CONV_CHECK(d->N >= 0 && d->C > 0 && d->H > 0 && d->W > 0 && d->Co > 0);
    CONV_CHECK(d->kh > 0 && d->kw > 0 && d->sh > 0 && d->sw > 0);
    CONV_CHECK(d->ph >= 0 && d->pw >= 0 && d->dh > 0 && d->dw > 0);
    CONV_CHECK(d->groups > 0 && d->C % d->groups == 0 && d->Co % d->groups == 0);
    CONV_CHECK(d->Ho == conv_out_size(d->H, d->kh, d->sh, d->ph, d->dh));
    CONV_CHECK(d->Wo == conv_out_size(d->W, d->kw, d->sw, d->pw, d->dw));
}

static int is_pointwise(const conv2d_dims *d) {
    return d->kh == 1 && d->kw == 1 && d->sh == 1 && d->sw == 1 && d->ph == 0 && d->pw == 0;
}

// Images per GEMM. Late layers have few output pixels (resnet18's last
// convs: 7x7 = 49), and a GEMM with 49 columns runs at half the speed of one
// with several hundred; so images are grouped until a group has about
// COLS_TARGET columns, in groups of equal size. Layers with large maps keep
// one image per GEMM (no extra copies, smallest scratch).
#define COLS_TARGET 768

// Scratch slots (ops_scratch). 0: col, 1: dcol or the grouped output, 2:
// grouped dy, 3: the flipped weights of the backward's transposed conv, 4:
// its grouped dx. conv2d_winograd.c uses 0-2.

// col: (Cg*kh*kw, ld), image t's columns at [t*P, (t+1)*P), P = Ho*Wo, for m
// images x + t*xstride, each (Cg,H,W) (one image's group slice). Writes every
// element of those columns (zeros where the window hangs over the padding).
static void im2col_images(float *col, int ld, const float *x, int m, size_t xstride, int Cg, const conv2d_dims *d) {
    const int H = d->H, W = d->W, Ho = d->Ho, Wo = d->Wo, kh = d->kh, kw = d->kw;
    const int rows = Cg * kh * kw;
    #pragma omp parallel for collapse(2) if ((long)m * rows * Ho * Wo >= OMP_MIN_WORK)
    for (int t = 0; t < m; t++)
        for (int r = 0; r < rows; r++) {
            const int c = r / (kh * kw), i = r / kw % kh, j = r % kw;
            const float *xc = x + t * xstride + (size_t)c * H * W;
            float *cr = col + (size_t)r * ld + (size_t)t * Ho * Wo;
            int oh_lo, oh_hi, ow_lo, ow_hi;
            conv2d_valid_range(i * d->dh - d->ph, d->sh, H, Ho, &oh_lo, &oh_hi);
            conv2d_valid_range(j * d->dw - d->pw, d->sw, W, Wo, &ow_lo, &ow_hi);
            memset(cr, 0, sizeof(float) * (size_t)oh_lo * Wo);
            for (int oh = oh_lo; oh < oh_hi; oh++) {
                const float *xr = xc + (size_t)(oh * d->sh - d->ph + i * d->dh) * W + (j * d->dw - d->pw);
                float *co = cr + (size_t)oh * Wo;
                for (int ow = 0; ow < ow_lo; ow++) co[ow] = 0.0f;
                if (d->sw == 1) memcpy(co + ow_lo, xr + ow_lo, sizeof(float) * (size_t)(ow_hi - ow_lo));
                else for (int ow = ow_lo; ow < ow_hi; ow++) co[ow] = xr[ow * d->sw];
                for (int ow = ow_hi; ow < Wo; ow++) co[ow] = 0.0f;
            }
            memset(cr + (size_t)oh_hi * Wo, 0, sizeof(float) * (size_t)(Ho - oh_hi) * Wo);
        }
}

// col: (Cg*kh*kw, Ho*Wo)  x: (Cg,H,W), one image's group slice.
void conv2d_im2col(float *col, const float *x, int Cg, const conv2d_dims *d) {
    im2col_images(col, d->Ho * d->Wo, x, 1, 0, Cg, d);
}

// The adjoint of im2col_images: dx + t*xstride: (Cg,H,W) += scatter of image
// t's columns of col: (Cg*kh*kw, ld). Parallel over (image, channel): the
// kh*kw rows of one channel overlap in dx, those of different channels never do.
static void col2im_add(float *dx, size_t xstride, const float *col, int ld, int m, int Cg, const conv2d_dims *d) {
    const int H = d->H, W = d->W, Ho = d->Ho, Wo = d->Wo, kh = d->kh, kw = d->kw;
    #pragma omp parallel for collapse(2) if ((long)m * Cg * kh * kw * Ho * Wo >= OMP_MIN_WORK)
    for (int t = 0; t < m; t++)
        for (int c = 0; c < Cg; c++) {
            float *dxc = dx + t * xstride + (size_t)c * H * W;
            for (int i = 0; i < kh; i++)
                for (int j = 0; j < kw; j++) {
                    const float *cr = col + ((size_t)(c * kh + i) * kw + j) * ld + (size_t)t * Ho * Wo;
                    int oh_lo, oh_hi, ow_lo, ow_hi;
                    conv2d_valid_range(i * d->dh - d->ph, d->sh, H, Ho, &oh_lo, &oh_hi);
                    conv2d_valid_range(j * d->dw - d->pw, d->sw, W, Wo, &ow_lo, &ow_hi);
                    for (int oh = oh_lo; oh < oh_hi; oh++) {
                        float *xr = dxc + (size_t)(oh * d->sh - d->ph + i * d->dh) * W + (j * d->dw - d->pw);
                        const float *co = cr + (size_t)oh * Wo;
                        if (d->sw == 1) {
                            #pragma omp simd
                            for (int ow = ow_lo; ow < ow_hi; ow++) xr[ow] += co[ow];
                        } else {
                            for (int ow = ow_lo; ow < ow_hi; ow++) xr[ow * d->sw] += co[ow];
                        }
                    }
                }
        }
}

// Moves rows between a grouped (rows, m*P) layout, image t at columns
// [t*P, (t+1)*P), and the images' own (rows, P) slices at a + t*astride.
static void gather_rows(float *grouped, const float *a, size_t astride, int m, int rows, int P) {
    #pragma omp parallel for collapse(2) if ((long)m * rows * P >= OMP_MIN_WORK)
    for (int t = 0; t < m; t++)
        for (int r = 0; r < rows; r++)
            memcpy(grouped + (size_t)r * m * P + (size_t)t * P, a + t * astride + (size_t)r * P, sizeof(float) * P);
}
static void scatter_rows(float *a, size_t astride, const float *grouped, int m, int rows, int P) {
    #pragma omp parallel for collapse(2) if ((long)m * rows * P >= OMP_MIN_WORK)
    for (int t = 0; t < m; t++)
        for (int r = 0; r < rows; r++)
            memcpy(a + t * astride + (size_t)r * P, grouped + (size_t)r * m * P + (size_t)t * P, sizeof(float) * P);
}

// a: (rows, n), row r filled with v[r]
static void fill_rows(float *a, const float *v, int rows, int n) {
    #pragma omp parallel for if ((long)rows * n >= OMP_MIN_WORK)
    for (int r = 0; r < rows; r++) {
        float *ar = a + (size_t)r * n;
        const float vr = v[r];
        #pragma omp simd
        for (int i = 0; i < n; i++) ar[i] = vr;
    }
}

static void scatter_add_rows(float *a, size_t astride, const float *grouped, int m, int rows, int P) {
    #pragma omp parallel for collapse(2) if ((long)m * rows * P >= OMP_MIN_WORK)
    for (int t = 0; t < m; t++)
        for (int r = 0; r < rows; r++) {
            float *ar = a + t * astride + (size_t)r * P;
            const float *gr = grouped + (size_t)r * m * P + (size_t)t * P;
            #pragma omp simd
            for (int p = 0; p < P; p++) ar[p] += gr[p];
        }
}

// y: (N,Co,Ho,Wo)  x: (N,C,H,W)  w: (Co,C/groups,kh,kw)  b: (Co) or NULL
void conv2d_forward(float *y, const float *x, const float *w, const float *b, const conv2d_dims *d) {
    check_dims(d);
    const int G = d->groups, Cg = d->C / G, Cog = d->Co / G;
    const int K = Cg * d->kh * d->kw, P = d->Ho * d->Wo;
    if (d->N == 0 || P == 0) return;
    if (conv2d_winograd_applies(d)) { conv2d_winograd(y, x, w, b, d, 0); return; }
    if (conv2d_depthwise_applies(d)) { conv2d_depthwise_forward(y, x, w, b, d); return; }
    const int pointwise = is_pointwise(d), nb = images_per_group(d->N, P, COLS_TARGET);
    const size_t xs = (size_t)d->C * d->H * d->W, ys = (size_t)d->Co * P;   // per-image strides
    float *col = pointwise && nb == 1 ? NULL : ops_scratch(0, (size_t)K * nb * P);   // (K, m*P)
    float *out = nb > 1 ? ops_scratch(1, (size_t)Cog * nb * P) : NULL;            // (Cog, m*P)
    for (int n0 = 0; n0 < d->N; n0 += nb) {
        const int m = d->N - n0 < nb ? d->N - n0 : nb, ld = m * P;
        for (int g = 0; g < G; g++) {
            const float *xg = x + n0 * xs + (size_t)g * Cg * d->H * d->W;   // image n0's group slice
            const float *wg = w + (size_t)g * Cog * K;                       // (Cog, K)
            float *yg = y + n0 * ys + (size_t)g * Cog * P;
            const float *B = xg;                                             // (K, ld)
            if (col) { im2col_images(col, ld, xg, m, xs, Cg, d); B = col; }
            float *C = m > 1 ? out : yg;                                     // (Cog, ld)
            // The bias goes in first and the GEMM adds to it (beta = 1): OpenBLAS
            // would otherwise spend a pass zeroing C for beta = 0.
            if (b) fill_rows(C, b + (size_t)g * Cog, Cog, ld);
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Cog, ld, K,
                        1.0f, wg, K, B, ld, b ? 1.0f : 0.0f, C, ld);
            if (m > 1) scatter_rows(yg, ys, out, m, Cog, P);
        }
    }
}

// The transposed conv's weights, in scratch slot 3: W' (G, Cg, Cog, kh, kw)
// with W'[g, c, co] = W[g, co, c] rotated by 180 degrees.
static float *flip_weights(const float *w, const conv2d_dims *d) {
    const int G = d->groups, Cg = d->C / G, Cog = d->Co / G, kk = d->kh * d->kw;
    float *wt = ops_scratch(3, (size_t)G * Cg * Cog * kk);
    #pragma omp parallel for collapse(2) if ((long)G * Cg * Cog * kk >= OMP_MIN_WORK)
    for (int g = 0; g < G; g++)
        for (int c = 0; c < Cg; c++)
            for (int co = 0; co < Cog; co++)
                for (int k = 0; k < kk; k++)
                    wt[(((size_t)g * Cg + c) * Cog + co) * kk + k] = w[(((size_t)g * Cog + co) * Cg + c) * kk + (kk - 1 - k)];
    return wt;
}

// dx += (N,C,H,W)  dw += (Co,C/g,kh,kw)  db += (Co)  dy: (N,Co,Ho,Wo)
// x: (N,C,H,W) needed only for dw   w: (Co,C/g,kh,kw) needed only for dx
void conv2d_backward(float *dx, float *dw, float *db, const float *dy,
                     const float *x, const float *w, const conv2d_dims *d) {
    check_dims(d);
    const int G = d->groups, Cg = d->C / G, Cog = d->Co / G;
    const int K = Cg * d->kh * d->kw, P = d->Ho * d->Wo;
    if (d->N == 0 || P == 0) return;

    if (db) {
        // db[co] += sum over n, oh, ow of dy[n,co,oh,ow]
        #pragma omp parallel for if ((long)d->N * d->Co * P >= OMP_MIN_WORK)
        for (int co = 0; co < d->Co; co++) {
            float s = 0.0f;
            for (int n = 0; n < d->N; n++) {
                const float *dyp = dy + ((size_t)n * d->Co + co) * P;
                float sp = 0.0f;
                #pragma omp simd reduction(+:sp)
                for (int p = 0; p < P; p++) sp += dyp[p];
                s += sp;
            }
            db[co] += s;
        }
    }
    if (!dx && !dw) return;

    if (conv2d_depthwise_applies(d)) { conv2d_depthwise_backward(dx, dw, dy, x, w, d); return; }
    if (conv2d_winograd_applies(d)) {
        if (dw) conv2d_winograd_dw(dw, x, dy, d);
        if (dx) conv2d_winograd_dx(dx, dy, w, d);
        return;
    }
    const int kk = d->kh * d->kw;

    const int pointwise = is_pointwise(d), nb = images_per_group(d->N, P, COLS_TARGET);
    const int direct = pointwise && nb == 1;   // col == x and dx gets the GEMM directly
    const size_t xs = (size_t)d->C * d->H * d->W, ys = (size_t)d->Co * P, HW = (size_t)d->H * d->W;
    // Stride 1: dx is itself a convolution of dy, with the kernel flipped and
    // in/out channels swapped (padding (k-1)*dil - pad), W'[c, co] = flip(W[co, c]).
    conv2d_dims td = *d;   // the conv that maps dy to dx
    td.C = d->Co; td.H = d->Ho; td.W = d->Wo; td.Co = d->C;
    td.ph = (d->kh - 1) * d->dh - d->ph; td.pw = (d->kw - 1) * d->dw - d->pw;
    td.Ho = d->H; td.Wo = d->W;
    // The transposed conv as a plain GEMM, straight into dx for one image (no
    // zeroed dcol, no col2im):
    //   dx_g (Cg, m*H*W) = W'_g (Cg, Cog*kk) . im2col(dy_g) (Cog*kk, m*H*W)
    // Only when Cog <= Cg: im2col(dy) has Cog*kk rows where dcol has Cg*kk,
    // and with more outputs than inputs (alexnet's 64 -> 192) the dcol +
    // col2im way is faster.
    const int transposed = dx && !direct && d->sh == 1 && d->sw == 1 && Cog <= Cg &&
                           d->ph <= (d->kh - 1) * d->dh && d->pw <= (d->kw - 1) * d->dw;
    // grouped dy: (Cog, m*P), for dW and the dcol way of dx
    const int grouped_dy = nb > 1 && (dw || (dx && !transposed));
    float *col = dw && !direct ? ops_scratch(0, (size_t)K * nb * P) : NULL;   // (K, m*P)
    float *dyb = grouped_dy ? ops_scratch(2, (size_t)Cog * nb * P) : NULL;   // (Cog, m*P)
    float *dcol = NULL;    // (K, m*P), or im2col(dy) (Cog*kk, m*H*W) when transposed
    float *wt = NULL;      // W' for all groups: (G, Cg, Cog*kk)
    float *dxb = NULL;     // (Cg, m*H*W): a group of images' dx before it is added in
    if (transposed) {
        wt = flip_weights(w, d);
        dcol = ops_scratch(1, (size_t)Cog * kk * nb * HW);
        if (nb > 1) dxb = ops_scratch(4, (size_t)Cg * nb * HW);
    } else if (dx && !direct) {
        dcol = ops_scratch(1, (size_t)K * nb * P);
    }
    for (int n0 = 0; n0 < d->N; n0 += nb) {
        const int m = d->N - n0 < nb ? d->N - n0 : nb, ld = m * P;
        for (int g = 0; g < G; g++) {
            const size_t xoff = n0 * xs + (size_t)g * Cg * HW;
            const float *dyn = dy + n0 * ys + (size_t)g * Cog * P;          // (Cog, P) of image n0, stride ys
            const float *dyg = dyn;                                          // (Cog, ld)
            if (m > 1 && dyb) { gather_rows(dyb, dyn, ys, m, Cog, P); dyg = dyb; }
            if (dw) {
                // forward: y_g = W_g . col  =>  dW_g += dy_g . col^T
                const float *xcol = x + xoff;                                // (K, ld) when direct
                if (!direct) { im2col_images(col, ld, x + xoff, m, xs, Cg, d); xcol = col; }
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Cog, K, ld,
                            1.0f, dyg, ld, xcol, ld, 1.0f, dw + (size_t)g * Cog * K, K);
            }
            if (dx) {
                // forward: y_g = W_g . col  =>  dcol = W_g^T . dy_g, dx_g += col2im(dcol)
                const float *wg = w + (size_t)g * Cog * K;                   // (Cog, K)
                if (direct) {
                    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, K, P, Cog,
                                1.0f, wg, K, dyg, P, 1.0f, dx + xoff, P);
                } else if (transposed) {
                    const int L = m * (int)HW;
                    im2col_images(dcol, L, dyn, m, ys, Cog, &td);            // (Cog*kk, L)
                    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Cg, L, Cog * kk,
                                1.0f, wt + (size_t)g * Cg * Cog * kk, Cog * kk, dcol, L,
                                m == 1 ? 1.0f : 0.0f, m == 1 ? dx + xoff : dxb, L);
                    if (m > 1) scatter_add_rows(dx + xoff, xs, dxb, m, Cg, (int)HW);
                } else {
                    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, K, ld, Cog,
                                1.0f, wg, K, dyg, ld, 0.0f, dcol, ld);
                    col2im_add(dx + xoff, xs, dcol, ld, m, Cg, d);
                }
            }
        }
    }
}

// ---- reference: direct loops, single-threaded, double accumulators --------

// Input coordinate read by output (oh,ow) through kernel tap (i,j); returns 0
// when it falls in the padding.
static int ref_tap(const conv2d_dims *d, int oh, int ow, int i, int j, int *ih, int *iw) {
    *ih = oh * d->sh - d->ph + i * d->dh;
    *iw = ow * d->sw - d->pw + j * d->dw;
    return *ih >= 0 && *ih < d->H && *iw >= 0 && *iw < d->W;
}

// y: (N,Co,Ho,Wo)  x: (N,C,H,W)  w: (Co,C/groups,kh,kw)  b: (Co) or NULL
void conv2d_forward_ref(float *y, const float *x, const float *w, const float *b, const conv2d_dims *d) {
    check_dims(d);
    const int Cg = d->C / d->groups, Cog = d->Co / d->groups;
    for (int n = 0; n < d->N; n++)
        for (int co = 0; co < d->Co; co++) {
            const int g = co / Cog;
            for (int oh = 0; oh < d->Ho; oh++)
                for (int ow = 0; ow < d->Wo; ow++) {
                    double s = b ? b[co] : 0.0;
                    for (int c = 0; c < Cg; c++)
                        for (int i = 0; i < d->kh; i++)
                            for (int j = 0; j < d->kw; j++) {
                                int ih, iw;
                                if (!ref_tap(d, oh, ow, i, j, &ih, &iw)) continue;
                                s += (double)w[(((size_t)co * Cg + c) * d->kh + i) * d->kw + j] *
                                     x[(((size_t)n * d->C + g * Cg + c) * d->H + ih) * d->W + iw];
                            }
                    y[(((size_t)n * d->Co + co) * d->Ho + oh) * d->Wo + ow] = (float)s;
                }
        }
}

// dx += (N,C,H,W)  dw += (Co,C/g,kh,kw)  db += (Co)  dy: (N,Co,Ho,Wo)
// x: (N,C,H,W) read only for dw   w: (Co,C/g,kh,kw) read only for dx
// Every (n, co, oh, ow, c, i, j) term of the forward sum contributes
// dy * w to dx, dy * x to dw; each bias term dy to db. Sums are taken in
// double buffers and added to the caller's buffers once at the end.
void conv2d_backward_ref(float *dx, float *dw, float *db, const float *dy,
                         const float *x, const float *w, const conv2d_dims *d) {
    check_dims(d);
    const int Cg = d->C / d->groups, Cog = d->Co / d->groups;
    const size_t nx = (size_t)d->N * d->C * d->H * d->W;
    const size_t nw = (size_t)d->Co * Cg * d->kh * d->kw;
    double *gx = calloc(nx ? nx : 1, sizeof(double));
    double *gw = calloc(nw ? nw : 1, sizeof(double));
    double *gb = calloc((size_t)d->Co, sizeof(double));
    CONV_CHECK(gx && gw && gb);
    for (int n = 0; n < d->N; n++)
        for (int co = 0; co < d->Co; co++) {
            const int g = co / Cog;
            for (int oh = 0; oh < d->Ho; oh++)
                for (int ow = 0; ow < d->Wo; ow++) {
                    const double gy = dy[(((size_t)n * d->Co + co) * d->Ho + oh) * d->Wo + ow];
                    gb[co] += gy;
                    for (int c = 0; c < Cg; c++)
                        for (int i = 0; i < d->kh; i++)
                            for (int j = 0; j < d->kw; j++) {
                                int ih, iw;
                                if (!ref_tap(d, oh, ow, i, j, &ih, &iw)) continue;
                                const size_t wi = (((size_t)co * Cg + c) * d->kh + i) * d->kw + j;
                                const size_t xi = (((size_t)n * d->C + g * Cg + c) * d->H + ih) * d->W + iw;
                                if (dx) gx[xi] += gy * w[wi];
                                if (dw) gw[wi] += gy * x[xi];
                            }
                }
        }
    if (dx) for (size_t k = 0; k < nx; k++) dx[k] += (float)gx[k];
    if (dw) for (size_t k = 0; k < nw; k++) dw[k] += (float)gw[k];
    if (db) for (int k = 0; k < d->Co; k++) db[k] += (float)gb[k];
    free(gx); free(gw); free(gb);
}
