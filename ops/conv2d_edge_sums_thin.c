// conv2d_edge_sums_thin.c: the edge sums of conv2d_edge_sums (ops/conv2d_edges.c)
// for the two kinds of layer that make up the mobile families, where the
// general fused kernel (im2col of one input channel, then a tile of edge maps
// for a block of out-channels) does needless work:
//
// Depthwise (one input channel per group, cg == 1; MobileNet, EfficientNet):
// each out-channel j has a single edge, from input channel j / Cog, and its
// map is the conv's own output without the bias. It is made one output row
// at a time, tap by tap as conv2d_depthwise_forward does (no im2col), and
// reduced with g's row on the spot. Parallel over (image, out-channel).
//
// Pointwise (1x1, stride 1, no padding): e_ji[p] = W[j,i] * x_i[p], so the
// sums over pixels factor into GEMMs over the pixels, per image and group:
//   sum_p |e_ji g_j| = |W[j,i]| * (|g| |x|^T)[j,i]      (Cog, P) . (P, cg)
//   sum_p  e_ji g_j  =  W[j,i]  * ( g   x^T )[j,i]
//   sum_p |e_ji|     = |W[j,i]| * sum_p |x_i[p]|
// That is the conv's arithmetic once, at GEMM speed. The product W*x is
// rounded once where the fused kernel rounds it per pixel: the sums agree to
// float rounding (tests/test_edges.c compares both with conv2d_edge_sums_ref).
//
// Both accumulate (+=) into (N, Co, cg) arrays exactly as conv2d_edge_sums.
#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "ops.h"
#include "../engine/util.h"

int conv2d_edge_sums_depthwise_applies(const conv2d_dims *d) { return d->C / d->groups == 1; }

int conv2d_edge_sums_pointwise_applies(const conv2d_dims *d) {
    return d->kh == 1 && d->kw == 1 && d->sh == 1 && d->sw == 1 && d->ph == 0 && d->pw == 0;
}

// x: (N,C,H,W)  w: (Co,1,kh,kw)  g: (N,Co,Ho,Wo), NULL when only abs_e is asked
void conv2d_edge_sums_depthwise(float *abs_eg, float *eg, float *abs_e, const float *x, const float *w,
                                const float *g, const conv2d_dims *d) {
    const int C = d->C, Co = d->Co, Cog = Co / d->groups, H = d->H, W = d->W, Ho = d->Ho, Wo = d->Wo;
    const int kh = d->kh, kw = d->kw;
    #pragma omp parallel
    {
        float *row = malloc_check((size_t)Wo * sizeof(float));
        #pragma omp for collapse(2) schedule(static)
        for (int n = 0; n < d->N; n++)
            for (int j = 0; j < Co; j++) {
                const float *xp = x + ((size_t)n * C + j / Cog) * H * W, *wj = w + (size_t)j * kh * kw;
                const float *gp = g ? g + ((size_t)n * Co + j) * Ho * Wo : NULL;
                double s1 = 0, s2 = 0, s3 = 0;
                for (int oh = 0; oh < Ho; oh++) {
                    for (int ow = 0; ow < Wo; ow++) row[ow] = 0.0f;
                    for (int a = 0; a < kh; a++) {
                        const int ih = oh * d->sh - d->ph + a * d->dh;
                        if (ih < 0 || ih >= H) continue;
                        const float *xr = xp + (size_t)ih * W;
                        for (int b = 0; b < kw; b++) {
                            const int off = b * d->dw - d->pw;
                            const float wv = wj[a * kw + b];
                            int lo, hi;
                            conv2d_valid_range(off, d->sw, W, Wo, &lo, &hi);
                            if (d->sw == 1) {
                                const float *xs = xr + off;
                                #pragma omp simd
                                for (int ow = lo; ow < hi; ow++) row[ow] += wv * xs[ow];
                            } else {
                                for (int ow = lo; ow < hi; ow++) row[ow] += wv * xr[ow * d->sw + off];
                            }
                        }
                    }
                    float r1 = 0, r2 = 0, r3 = 0;   // one row in float, rows in double
                    const float *gr = gp ? gp + (size_t)oh * Wo : NULL;
                    if (abs_eg) {
                        #pragma omp simd reduction(+:r1)
                        for (int ow = 0; ow < Wo; ow++) r1 += fabsf(row[ow] * gr[ow]);
                    }
                    if (eg) {
                        #pragma omp simd reduction(+:r2)
                        for (int ow = 0; ow < Wo; ow++) r2 += row[ow] * gr[ow];
                    }
                    if (abs_e) {
                        #pragma omp simd reduction(+:r3)
                        for (int ow = 0; ow < Wo; ow++) r3 += fabsf(row[ow]);
                    }
                    s1 += r1; s2 += r2; s3 += r3;
                }
                const size_t o = (size_t)n * Co + j;   // (n, j, i = 0)
                if (abs_eg) abs_eg[o] += (float)s1;
                if (eg) eg[o] += (float)s2;
                if (abs_e) abs_e[o] += (float)s3;
            }
        free(row);
    }
}

// dst (n) = |src| (or src), in parallel for large n
static void copy_abs(float *dst, const float *src, size_t n, int take_abs) {
    #pragma omp parallel for schedule(static) if (n >= 65536)
    for (size_t k = 0; k < n; k++) dst[k] = take_abs ? fabsf(src[k]) : src[k];
}

// x: (N,C,H,W)  w: (Co,cg,1,1)  g: (N,Co,H,W), NULL when only abs_e is asked
void conv2d_edge_sums_pointwise(float *abs_eg, float *eg, float *abs_e, const float *x, const float *w,
                                const float *g, const conv2d_dims *d) {
    const int C = d->C, Co = d->Co, G = d->groups, cg = C / G, Cog = Co / G, P = d->Ho * d->Wo;
    // per image: |x| (C, P) and |g| (Co, P) in scratch slots 0 and 1 (this
    // thread's; no conv runs while the sums are made), the GEMM's (Cog, cg) in 2
    float *ax = ops_scratch(0, (size_t)C * P);
    float *ag = abs_eg ? ops_scratch(1, (size_t)Co * P) : NULL;
    float *M = ops_scratch(2, (size_t)Cog * cg);
    for (int n = 0; n < d->N; n++) {
        const float *xn = x + (size_t)n * C * P, *gn = g ? g + (size_t)n * Co * P : NULL;
        if (abs_eg || abs_e) copy_abs(ax, xn, (size_t)C * P, 1);
        if (ag) copy_abs(ag, gn, (size_t)Co * P, 1);
        for (int grp = 0; grp < G; grp++) {
            const float *wg = w + (size_t)grp * Cog * cg;   // (Cog, cg)
            const size_t o = ((size_t)n * Co + (size_t)grp * Cog) * cg;   // (n, grp*Cog, 0)
            if (abs_eg) {
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Cog, cg, P, 1.0f, ag + (size_t)grp * Cog * P, P,
                            ax + (size_t)grp * cg * P, P, 0.0f, M, cg);
                for (size_t k = 0; k < (size_t)Cog * cg; k++) abs_eg[o + k] += fabsf(wg[k]) * M[k];
            }
            if (eg) {
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Cog, cg, P, 1.0f, gn + (size_t)grp * Cog * P, P,
                            xn + (size_t)grp * cg * P, P, 0.0f, M, cg);
                for (size_t k = 0; k < (size_t)Cog * cg; k++) eg[o + k] += wg[k] * M[k];
            }
            if (abs_e) {
                for (int i = 0; i < cg; i++) {
                    const float *xi = ax + (size_t)(grp * cg + i) * P;
                    double s = 0;
                    #pragma omp simd reduction(+:s)
                    for (int p = 0; p < P; p++) s += xi[p];
                    for (int jj = 0; jj < Cog; jj++) abs_e[o + (size_t)jj * cg + i] += (float)(fabsf(wg[(size_t)jj * cg + i]) * s);
                }
            }
        }
    }
}
