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
#define JB 4       // out-channels per block in the generic path

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

// ---- the fused kernel ------------------------------------------------------------
// One task = one image n and one input channel ci. col: (kk, P) im2col of that
// channel. For each pixel tile and each block of JB out-channels, the edge-map
// tile of every j is built in registers and reduced against g on the spot.
// sums: (Cog, 3) doubles: |e*g|, e*g, |e| summed over the pixels.
enum { WANT_AEG = 1, WANT_EG = 2, WANT_AE = 4 };

static void edge_task_generic(double *sums, const float *col, int P, int kk, const float *w, int wstride,
                              const float *g, int Cog, int want) {
    float acc[JB][TILE];
    for (int p0 = 0; p0 < P; p0 += TILE) {
        const int len = P - p0 < TILE ? P - p0 : TILE;
        for (int j0 = 0; j0 < Cog; j0 += JB) {
            const int nb = Cog - j0 < JB ? Cog - j0 : JB;
            for (int b = 0; b < nb; b++) memset(acc[b], 0, (size_t)len * sizeof(float));
            for (int k = 0; k < kk; k++) {
                const float *cr = col + (size_t)k * P + p0;
                for (int b = 0; b < nb; b++) {
                    const float wk = w[(size_t)(j0 + b) * wstride + k];
                    float *a = acc[b];
                    #pragma omp simd
                    for (int t = 0; t < len; t++) a[t] += wk * cr[t];
                }
            }
            for (int b = 0; b < nb; b++) {
                const float *a = acc[b], *gj = g ? g + (size_t)(j0 + b) * P + p0 : NULL;
                float s1 = 0, s2 = 0, s3 = 0;
                if (gj && (want & (WANT_AEG | WANT_EG))) {
                    #pragma omp simd reduction(+:s1, s2)
                    for (int t = 0; t < len; t++) { const float v = a[t] * gj[t]; s1 += fabsf(v); s2 += v; }
                }
                if (want & WANT_AE) {
                    #pragma omp simd reduction(+:s3)
                    for (int t = 0; t < len; t++) s3 += fabsf(a[t]);
                }
                double *sj = sums + (size_t)(j0 + b) * 3;
                sj[0] += s1; sj[1] += s2; sj[2] += s3;
            }
        }
    }
}

#if defined(__x86_64__) && defined(__GNUC__)
// AVX2+FMA micro-kernel, chosen at run time when the CPU has them: a block of
// 6 out-channels x 16 pixels lives in 12 vector registers while the kk taps
// stream through (2 pixel loads + 6 weight broadcasts per 12 FMAs).
typedef float v8 __attribute__((vector_size(32)));
typedef int v8i __attribute__((vector_size(32)));
#define VJ 6
__attribute__((target("avx2,fma"))) static inline v8 ld8(const float *p) { v8 v; memcpy(&v, p, 32); return v; }
__attribute__((target("avx2,fma"))) static inline v8 abs8(v8 x) { return (v8)((v8i)x & 0x7fffffff); }
__attribute__((target("avx2,fma"))) static inline float hsum8(v8 x) {
    float s = 0;
    for (int i = 0; i < 8; i++) s += x[i];
    return s;
}

__attribute__((target("avx2,fma")))
static void edge_task_avx2(double *sums, const float *col, int P, int kk, const float *w, int wstride,
                           const float *g, int Cog, int want, float *wpanel, const float *zeros) {
    const int P16 = P & ~15;
    for (int j0 = 0; j0 < Cog; j0 += VJ) {
        const int nb = Cog - j0 < VJ ? Cog - j0 : VJ;
        // weights of the block, tap-major, zero rows past nb: wpanel[k*VJ + b]
        for (int k = 0; k < kk; k++)
            for (int b = 0; b < VJ; b++) wpanel[k * VJ + b] = b < nb ? w[(size_t)(j0 + b) * wstride + k] : 0.0f;
        const float *gr[VJ];
        for (int b = 0; b < VJ; b++) gr[b] = g && b < nb ? g + (size_t)(j0 + b) * P : zeros;
        v8 s1[VJ], s2[VJ], s3[VJ];
        for (int b = 0; b < VJ; b++) s1[b] = s2[b] = s3[b] = (v8){0};
        for (int p = 0; p < P16; p += 16) {
            v8 a0[VJ], a1[VJ];
            for (int b = 0; b < VJ; b++) a0[b] = a1[b] = (v8){0};
            for (int k = 0; k < kk; k++) {
                const v8 c0 = ld8(col + (size_t)k * P + p), c1 = ld8(col + (size_t)k * P + p + 8);
                const float *wk = wpanel + k * VJ;
                for (int b = 0; b < VJ; b++) {
                    const v8 wb = (v8){0} + wk[b];
                    a0[b] += wb * c0;
                    a1[b] += wb * c1;
                }
            }
            if (want & (WANT_AEG | WANT_EG))
                for (int b = 0; b < VJ; b++) {
                    const v8 v0 = a0[b] * ld8(gr[b] + p), v1 = a1[b] * ld8(gr[b] + p + 8);
                    s1[b] += abs8(v0) + abs8(v1);
                    s2[b] += v0 + v1;
                }
            if (want & WANT_AE)
                for (int b = 0; b < VJ; b++) s3[b] += abs8(a0[b]) + abs8(a1[b]);
        }
        for (int b = 0; b < nb; b++) {
            double *sj = sums + (size_t)(j0 + b) * 3;
            sj[0] += hsum8(s1[b]); sj[1] += hsum8(s2[b]); sj[2] += hsum8(s3[b]);
            for (int p = P16; p < P; p++) {   // the last P % 16 pixels
                float e = 0;
                for (int k = 0; k < kk; k++) e += wpanel[k * VJ + b] * col[(size_t)k * P + p];
                const float v = e * (g ? gr[b][p] : 0.0f);
                sj[0] += fabsf(v); sj[1] += v; sj[2] += fabsf(e);
            }
        }
    }
}
// VISCNN_GENERIC=1 in the environment forces the portable path (tests use it).
static int have_avx2(void) {
    static int cached = -1;
    if (cached < 0) cached = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    const char *e = getenv("VISCNN_GENERIC");
    return cached && !(e && *e && *e != '0');
}
#endif

void conv2d_edge_sums(float *abs_eg, float *eg, float *abs_e, const float *x, const float *w,
                      const float *g, const conv2d_dims *d) {
    const int N = d->N, C = d->C, Co = d->Co, cg = C / d->groups, Cog = Co / d->groups;
    const int kk = d->kh * d->kw, P = d->Ho * d->Wo;
    VC_ASSERT(g || (!abs_eg && !eg));
    const int want = (abs_eg ? WANT_AEG : 0) | (eg ? WANT_EG : 0) | (abs_e ? WANT_AE : 0);
    if (!want) return;
    #pragma omp parallel
    {
        float *col = malloc_check((size_t)kk * P * sizeof(float));
        double *sums = malloc_check((size_t)Cog * 3 * sizeof(double));
#if defined(__x86_64__) && defined(__GNUC__)
        float *wpanel = malloc_check((size_t)kk * VJ * sizeof(float));
        float *zeros = calloc_check((size_t)P + 16, sizeof(float));
        const int fast = have_avx2();
#endif
        #pragma omp for schedule(dynamic)
        for (long task = 0; task < (long)N * C; task++) {
            const int n = (int)(task / C), ci = (int)(task % C), grp = ci / cg, i = ci % cg;
            conv2d_im2col(col, x + ((size_t)n * C + ci) * d->H * d->W, 1, d);
            memset(sums, 0, (size_t)Cog * 3 * sizeof(double));
            const float *wg = w + ((size_t)grp * Cog * cg + i) * kk;   // W[grp*Cog + jj, i, :], row stride cg*kk
            const float *gg = g ? g + ((size_t)n * Co + (size_t)grp * Cog) * P : NULL;
#if defined(__x86_64__) && defined(__GNUC__)
            if (fast) edge_task_avx2(sums, col, P, kk, wg, cg * kk, gg, Cog, want, wpanel, zeros);
            else
#endif
                edge_task_generic(sums, col, P, kk, wg, cg * kk, gg, Cog, want);
            for (int jj = 0; jj < Cog; jj++) {
                const size_t o = ((size_t)n * Co + grp * Cog + jj) * cg + i;
                if (abs_eg) abs_eg[o] += (float)sums[jj * 3 + 0];
                if (eg) eg[o] += (float)sums[jj * 3 + 1];
                if (abs_e) abs_e[o] += (float)sums[jj * 3 + 2];
            }
        }
        free(col);
        free(sums);
#if defined(__x86_64__) && defined(__GNUC__)
        free(wpanel);
        free(zeros);
#endif
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
