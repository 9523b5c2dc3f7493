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
// Fast path, per image and per group, with K = Cg*kh*kw and P = Ho*Wo:
//   col  (K, P)   = im2col(x_g)            row (c,i,j), column (oh,ow)
//   y_g  (Cog, P) = W_g (Cog, K) . col     sgemm
//   dw_g (Cog, K) += dy_g . col^T          sgemm, beta = 1
//   dcol (K, P)   = W_g^T . dy_g           sgemm, then col2im adds into dx
// A 1x1 kernel with stride 1 and no padding has col == x_g (P = H*W), so the
// copy is skipped and dx gets W_g^T . dy_g directly (beta = 1).
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "ops.h"

// Always-on invariant check: these are caller bugs or out-of-memory, which the
// ops cannot report through their void signatures.
#define CONV_CHECK(cond) \
    do { if (!(cond)) { fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); abort(); } } while (0)

static void *malloc_or_die(size_t n, const char *file, int line) {
    void *p = malloc(n ? n : 1);
    if (!p) { fprintf(stderr, "%s:%d: out of memory allocating %zu bytes\n", file, line, n); abort(); }
    return p;
}
#define MALLOC_OR_DIE(n) malloc_or_die((n), __FILE__, __LINE__)

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

// Output positions o in [*lo, *hi) whose input index off + o*s lies in [0, n_in).
static void valid_range(int off, int s, int n_in, int n_out, int *lo, int *hi) {
    int l = off >= 0 ? 0 : (-off + s - 1) / s;
    int h = off > n_in - 1 ? 0 : (n_in - 1 - off) / s + 1;
    if (h > n_out) h = n_out;
    if (l > h) l = h;
    *lo = l; *hi = h;
}

// col: (Cg*kh*kw, Ho*Wo)  x: (Cg,H,W), one image's group slice. Writes every
// element of col (zeros where the window hangs over the padding).
void conv2d_im2col(float *col, const float *x, int Cg, const conv2d_dims *d) {
    const int H = d->H, W = d->W, Ho = d->Ho, Wo = d->Wo, kh = d->kh, kw = d->kw;
    const int rows = Cg * kh * kw;
    #pragma omp parallel for if ((long)rows * Ho * Wo >= OMP_MIN_WORK)
    for (int r = 0; r < rows; r++) {
        const int c = r / (kh * kw), i = r / kw % kh, j = r % kw;
        const float *xc = x + (size_t)c * H * W;
        float *cr = col + (size_t)r * Ho * Wo;
        int oh_lo, oh_hi, ow_lo, ow_hi;
        valid_range(i * d->dh - d->ph, d->sh, H, Ho, &oh_lo, &oh_hi);
        valid_range(j * d->dw - d->pw, d->sw, W, Wo, &ow_lo, &ow_hi);
        memset(cr, 0, sizeof(float) * (size_t)oh_lo * Wo);
        for (int oh = oh_lo; oh < oh_hi; oh++) {
            const float *xr = xc + (size_t)(oh * d->sh - d->ph + i * d->dh) * W + (j * d->dw - d->pw);
            float *co = cr + (size_t)oh * Wo;
            for (int ow = 0; ow < ow_lo; ow++) co[ow] = 0.0f;
            for (int ow = ow_lo; ow < ow_hi; ow++) co[ow] = xr[ow * d->sw];
            for (int ow = ow_hi; ow < Wo; ow++) co[ow] = 0.0f;
        }
        memset(cr + (size_t)oh_hi * Wo, 0, sizeof(float) * (size_t)(Ho - oh_hi) * Wo);
    }
}

// The adjoint of im2col: dx: (Cg,H,W) += scatter of col: (Cg*kh*kw, Ho*Wo).
// Parallel over channels: the kh*kw rows of one channel overlap in dx, those
// of different channels never do.
static void col2im_add(float *dx, const float *col, int Cg, const conv2d_dims *d) {
    const int H = d->H, W = d->W, Ho = d->Ho, Wo = d->Wo, kh = d->kh, kw = d->kw;
    #pragma omp parallel for if ((long)Cg * kh * kw * Ho * Wo >= OMP_MIN_WORK)
    for (int c = 0; c < Cg; c++) {
        float *dxc = dx + (size_t)c * H * W;
        for (int i = 0; i < kh; i++)
            for (int j = 0; j < kw; j++) {
                const float *cr = col + ((size_t)(c * kh + i) * kw + j) * Ho * Wo;
                int oh_lo, oh_hi, ow_lo, ow_hi;
                valid_range(i * d->dh - d->ph, d->sh, H, Ho, &oh_lo, &oh_hi);
                valid_range(j * d->dw - d->pw, d->sw, W, Wo, &ow_lo, &ow_hi);
                for (int oh = oh_lo; oh < oh_hi; oh++) {
                    float *xr = dxc + (size_t)(oh * d->sh - d->ph + i * d->dh) * W + (j * d->dw - d->pw);
                    const float *co = cr + (size_t)oh * Wo;
                    for (int ow = ow_lo; ow < ow_hi; ow++) xr[ow * d->sw] += co[ow];
                }
            }
    }
}

// y: (N,Co,Ho,Wo)  x: (N,C,H,W)  w: (Co,C/groups,kh,kw)  b: (Co) or NULL
void conv2d_forward(float *y, const float *x, const float *w, const float *b, const conv2d_dims *d) {
    check_dims(d);
    const int G = d->groups, Cg = d->C / G, Cog = d->Co / G;
    const int K = Cg * d->kh * d->kw, P = d->Ho * d->Wo;
    if (d->N == 0 || P == 0) return;
    const int pointwise = is_pointwise(d);
    float *col = pointwise ? NULL : MALLOC_OR_DIE(sizeof(float) * (size_t)K * P);   // (K, P)
    for (int n = 0; n < d->N; n++)
        for (int g = 0; g < G; g++) {
            const float *xg = x + ((size_t)n * d->C + (size_t)g * Cg) * d->H * d->W;   // (Cg,H,W)
            const float *wg = w + (size_t)g * Cog * K;                                 // (Cog,K)
            float *yg = y + ((size_t)n * d->Co + (size_t)g * Cog) * P;                 // (Cog,P)
            if (!pointwise) conv2d_im2col(col, xg, Cg, d);
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Cog, P, K,
                        1.0f, wg, K, pointwise ? xg : col, P, 0.0f, yg, P);
        }
    free(col);
    if (!b) return;
    const int NCo = d->N * d->Co;
    #pragma omp parallel for if ((long)NCo * P >= OMP_MIN_WORK)
    for (int nc = 0; nc < NCo; nc++) {
        float *yp = y + (size_t)nc * P;
        const float bc = b[nc % d->Co];
        #pragma omp simd
        for (int p = 0; p < P; p++) yp[p] += bc;
    }
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

    const int pointwise = is_pointwise(d);
    float *col = (dw && !pointwise) ? MALLOC_OR_DIE(sizeof(float) * (size_t)K * P) : NULL;    // (K, P)
    float *dcol = (dx && !pointwise) ? MALLOC_OR_DIE(sizeof(float) * (size_t)K * P) : NULL;   // (K, P)
    const size_t HW = (size_t)d->H * d->W;
    for (int n = 0; n < d->N; n++)
        for (int g = 0; g < G; g++) {
            const size_t xoff = ((size_t)n * d->C + (size_t)g * Cg) * HW;         // into (N,C,H,W)
            const float *dyg = dy + ((size_t)n * d->Co + (size_t)g * Cog) * P;   // (Cog,P)
            if (dw) {
                // forward: y_g = W_g . col  =>  dW_g += dy_g . col^T
                const float *xcol = x + xoff;                                    // (K,P) when pointwise
                if (!pointwise) { conv2d_im2col(col, x + xoff, Cg, d); xcol = col; }
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Cog, K, P,
                            1.0f, dyg, P, xcol, P, 1.0f, dw + (size_t)g * Cog * K, K);
            }
            if (dx) {
                // forward: y_g = W_g . col  =>  dcol = W_g^T . dy_g, dx_g += col2im(dcol)
                const float *wg = w + (size_t)g * Cog * K;                       // (Cog,K)
                if (pointwise) {
                    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, K, P, Cog,
                                1.0f, wg, K, dyg, P, 1.0f, dx + xoff, P);
                } else {
                    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, K, P, Cog,
                                1.0f, wg, K, dyg, P, 0.0f, dcol, P);
                    col2im_add(dx + xoff, dcol, Cg, d);
                }
            }
        }
    free(col);
    free(dcol);
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
