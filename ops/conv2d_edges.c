// conv2d_edges.c: the exact per-kernel ("edge") maps of a conv layer, and
// per-edge sums over those maps computed without ever storing them.
//
// Edge (j, i): e_ji = W[j,i] * x_(g*cg+i) (cross-correlation with the layer's
// stride/padding/dilation, no bias), so that sum_i e_ji + b_j = y_j.
//
// Fused sums (DESIGN §3): for one image n and one input channel ci, im2col of
// that single channel gives col (kk, P); then, tile by tile over the P output
// pixels, a block of out-channels j builds its edge-map tile
//   acc[t] = sum_k W[j,i,k] * col[k, p0+t]           (kk FMAs per pixel)
// in a small buffer that stays in L1 and reduces |e*g|, e*g, |e| on the spot.
// That is one conv forward's arithmetic, and memory of kk*P + a tile.
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "ops.h"
#include "../engine/util.h"

#define TILE 128   // output pixels per tile
#define JB 4       // out-channels per block: one col tile load serves JB maps

void conv2d_edge_maps(float *e, const float *x, const float *w, const conv2d_dims *d, int n, int ci) {
    const int cg = d->C / d->groups, Cog = d->Co / d->groups, kk = d->kh * d->kw, P = d->Ho * d->Wo;
    const int grp = ci / cg, i = ci % cg;
    float *col = malloc_check((size_t)kk * P * sizeof(float));
    conv2d_im2col(col, x + ((size_t)n * d->C + ci) * d->H * d->W, 1, d);
    #pragma omp parallel for if ((long)Cog * kk * P > 65536)
    for (int jj = 0; jj < Cog; jj++) {
        const float *wji = w + ((size_t)(grp * Cog + jj) * cg + i) * kk;
        float *ej = e + (size_t)jj * P;
        memset(ej, 0, (size_t)P * sizeof(float));
        for (int k = 0; k < kk; k++) {
            const float wk = wji[k], *cr = col + (size_t)k * P;
            #pragma omp simd
            for (int p = 0; p < P; p++) ej[p] += wk * cr[p];
        }
    }
    free(col);
}

void conv2d_edge_maps_ref(float *e, const float *x, const float *w, const conv2d_dims *d, int n, int ci) {
    const int cg = d->C / d->groups, Cog = d->Co / d->groups;
    const int grp = ci / cg, i = ci % cg;
    const float *xc = x + ((size_t)n * d->C + ci) * d->H * d->W;
    for (int jj = 0; jj < Cog; jj++)
        for (int oh = 0; oh < d->Ho; oh++)
            for (int ow = 0; ow < d->Wo; ow++) {
                double s = 0;
                for (int a = 0; a < d->kh; a++)
                    for (int b = 0; b < d->kw; b++) {
                        int ih = oh * d->sh - d->ph + a * d->dh, iw = ow * d->sw - d->pw + b * d->dw;
                        if (ih < 0 || ih >= d->H || iw < 0 || iw >= d->W) continue;
                        s += (double)w[(((size_t)(grp * Cog + jj) * cg + i) * d->kh + a) * d->kw + b] * xc[(size_t)ih * d->W + iw];
                    }
                e[((size_t)jj * d->Ho + oh) * d->Wo + ow] = (float)s;
            }
}

void conv2d_edge_sums(float *abs_eg, float *eg, float *abs_e, const float *x, const float *w,
                      const float *g, const conv2d_dims *d) {
    const int N = d->N, C = d->C, Co = d->Co, cg = C / d->groups, Cog = Co / d->groups;
    const int kk = d->kh * d->kw, P = d->Ho * d->Wo;
    VC_ASSERT(g || (!abs_eg && !eg));
    #pragma omp parallel
    {
        float *col = malloc_check((size_t)kk * P * sizeof(float));
        double *sums = malloc_check((size_t)Cog * 3 * sizeof(double));
        float acc[JB][TILE];
        #pragma omp for schedule(dynamic)
        for (long task = 0; task < (long)N * C; task++) {
            const int n = (int)(task / C), ci = (int)(task % C), grp = ci / cg, i = ci % cg;
            conv2d_im2col(col, x + ((size_t)n * C + ci) * d->H * d->W, 1, d);
            memset(sums, 0, (size_t)Cog * 3 * sizeof(double));
            for (int p0 = 0; p0 < P; p0 += TILE) {
                const int len = P - p0 < TILE ? P - p0 : TILE;
                for (int j0 = 0; j0 < Cog; j0 += JB) {
                    const int nb = Cog - j0 < JB ? Cog - j0 : JB;
                    for (int b = 0; b < nb; b++) memset(acc[b], 0, (size_t)len * sizeof(float));
                    for (int k = 0; k < kk; k++) {
                        const float *cr = col + (size_t)k * P + p0;
                        for (int b = 0; b < nb; b++) {
                            const float wk = w[((size_t)(grp * Cog + j0 + b) * cg + i) * kk + k];
                            float *a = acc[b];
                            #pragma omp simd
                            for (int t = 0; t < len; t++) a[t] += wk * cr[t];
                        }
                    }
                    for (int b = 0; b < nb; b++) {
                        const int j = grp * Cog + j0 + b;
                        const float *a = acc[b];
                        float s1 = 0, s2 = 0, s3 = 0;
                        if (g) {
                            const float *gj = g + ((size_t)n * Co + j) * P + p0;
                            #pragma omp simd reduction(+:s1, s2, s3)
                            for (int t = 0; t < len; t++) {
                                const float v = a[t] * gj[t];
                                s1 += fabsf(v);
                                s2 += v;
                                s3 += fabsf(a[t]);
                            }
                        } else {
                            #pragma omp simd reduction(+:s3)
                            for (int t = 0; t < len; t++) s3 += fabsf(a[t]);
                        }
                        double *sj = sums + (size_t)(j0 + b) * 3;
                        sj[0] += s1; sj[1] += s2; sj[2] += s3;
                    }
                }
            }
            for (int jj = 0; jj < Cog; jj++) {
                const size_t o = ((size_t)n * Co + grp * Cog + jj) * cg + i;
                if (abs_eg) abs_eg[o] += (float)sums[jj * 3 + 0];
                if (eg) eg[o] += (float)sums[jj * 3 + 1];
                if (abs_e) abs_e[o] += (float)sums[jj * 3 + 2];
            }
        }
        free(col);
        free(sums);
    }
}

void conv2d_edge_sums_ref(float *abs_eg, float *eg, float *abs_e, const float *x, const float *w,
                          const float *g, const conv2d_dims *d) {
    const int cg = d->C / d->groups, Cog = d->Co / d->groups, P = d->Ho * d->Wo;
    float *e = malloc_check((size_t)Cog * P * sizeof(float));
    for (int n = 0; n < d->N; n++)
        for (int ci = 0; ci < d->C; ci++) {
            const int grp = ci / cg, i = ci % cg;
            conv2d_edge_maps_ref(e, x, w, d, n, ci);
            for (int jj = 0; jj < Cog; jj++) {
                const int j = grp * Cog + jj;
                double s1 = 0, s2 = 0, s3 = 0;
                for (int p = 0; p < P; p++) {
                    double v = e[(size_t)jj * P + p], gv = g ? g[((size_t)n * d->Co + j) * P + p] : 0;
                    s1 += fabs(v * gv); s2 += v * gv; s3 += fabs(v);
                }
                const size_t o = ((size_t)n * d->Co + j) * cg + i;
                if (abs_eg) abs_eg[o] += (float)s1;
                if (eg) eg[o] += (float)s2;
                if (abs_e) abs_e[o] += (float)s3;
            }
        }
    free(e);
}
