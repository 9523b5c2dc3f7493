// conv2d_edges.c: the exact per-kernel ("edge") maps of a conv layer, and
// per-edge sums over those maps computed without ever storing them.
//
// Edge (j, i): e_ji = W[j,i] * x_(g*cg+i) (cross-correlation with the layer's
// stride/padding/dilation, no bias), so that sum_i e_ji + b_j = y_j.
//
// Fused sums (docs/architecture.md §3): for one image n and one input channel ci, im2col of
// that single channel gives col (kk, P); then, tile by tile over the P output
// pixels, a block of out-channels j builds its edge-map tile
//   acc[t] = sum_k W[j,i,k] * col[k, p0+t]           (kk FMAs per pixel)
// in a small buffer that stays in L1 and reduces |e*g|, e*g, |e| on the spot.
// That is one conv forward's arithmetic, and memory of kk*P + a tile.
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "ops.h"
#include "simd.h"
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

#if SIMD_X86
// ---- AVX2+FMA path, chosen at run time ------------------------------------------
// Roles swapped against the portable path: vectors run along out-channels and
// pixels are broadcast. A micro-tile is 16 out-channels x 6 pixels in 12
// registers; per tap k it loads 2 weight vectors and broadcasts 6 im2col
// values for 12 FMAs. g is transposed per image to gT (P6, Co16) so that the
// epilogue reads g along channels too, and |e*g| of the 6 pixels folds into
// per-channel vector sums: no horizontal sums until the end of a task.
// Everything is zero-padded (channels to 16, pixels to 6), so there are no
// tail loops: padded weights and padded im2col columns make e = 0 there.
//
// A task is one input channel ci and a chunk of PC pixels of one image; its
// sums go to part[ci][chunk] (doubles) and are added up in a fixed order
// afterwards, so the result does not depend on the thread schedule.
#define VC 16   // out-channels per micro-tile (2 vectors)
#define VP 6    // pixels per micro-tile

// col: (kk, ld) im2col, the tile's first pixel at col[0]; wp: (kk, VC) weights;
// gT: VP rows of VC channels, row stride gld; s: (3, VC) running sums.
__attribute__((target("avx2,fma"), always_inline))
static inline void edge_micro(const float *col, int ld, int kk, const float *wp, const float *gT, int gld,
                              float *s, int want) {
    // the q loops must unroll (-O2 does not) for a[][] to live in registers
    v8 a[VP][2];
    #pragma GCC unroll 8
    for (int q = 0; q < VP; q++) a[q][0] = a[q][1] = (v8){0};
    for (int k = 0; k < kk; k++) {
        const v8 w0 = ld8(wp + k * VC), w1 = ld8(wp + k * VC + 8);
        const float *ck = col + (size_t)k * ld;
        #pragma GCC unroll 8
        for (int q = 0; q < VP; q++) {
            const v8 c = bc8(ck[q]);
            a[q][0] += c * w0;
            a[q][1] += c * w1;
        }
    }
    v8 s1a = {0}, s1b = {0}, s2a = {0}, s2b = {0}, s3a = {0}, s3b = {0};
    #pragma GCC unroll 8
    for (int q = 0; q < VP; q++) {
        if (want == WANT_AEG) {   // gT holds |g| here: |e*g| = |e|*|g|, one FMA
            s1a += abs8(a[q][0]) * ld8(gT + q * gld);
            s1b += abs8(a[q][1]) * ld8(gT + q * gld + 8);
        } else if (want & (WANT_AEG | WANT_EG)) {
            const v8 v0 = a[q][0] * ld8(gT + q * gld), v1 = a[q][1] * ld8(gT + q * gld + 8);
            if (want & WANT_AEG) { s1a += abs8(v0); s1b += abs8(v1); }
            if (want & WANT_EG) { s2a += v0; s2b += v1; }
        }
        if (want & WANT_AE) { s3a += abs8(a[q][0]); s3b += abs8(a[q][1]); }
    }
    if (want & WANT_AEG) { st8(s, ld8(s) + s1a); st8(s + 8, ld8(s + 8) + s1b); }
    if (want & WANT_EG) { st8(s + VC, ld8(s + VC) + s2a); st8(s + VC + 8, ld8(s + VC + 8) + s2b); }
    if (want & WANT_AE) { st8(s + 2 * VC, ld8(s + 2 * VC) + s3a); st8(s + 2 * VC + 8, ld8(s + 2 * VC + 8) + s3b); }
}

// One task: pixels [p0, p0 + len) (len a multiple of VP) of one input channel.
// col: (kk, len) its im2col; wp: (Co16 / VC, kk, VC) the channel's weight
// panel; gT: (len, Co16) rows p0.. of the image's transposed g; acc: (Co16/VC,
// 3, VC) float sums, zeroed by the caller. The want switch is hoisted so that
// each case compiles to its own loop with only the sums it needs.
__attribute__((target("avx2,fma")))
static void edge_task_avx2(float *acc, const float *col, int len, int kk, const float *wp, const float *gT,
                           int Co16, int want) {
#define EDGE_LOOP(W)                                                                       \
    for (int p = 0; p < len; p += VP)                                                      \
        for (int jb = 0; jb < Co16 / VC; jb++)                                             \
            edge_micro(col + p, len, kk, wp + (size_t)jb * kk * VC,                       \
                       gT ? gT + (size_t)p * Co16 + jb * VC : NULL, Co16, /* no g for |e| alone */ \
                       acc + (size_t)jb * 3 * VC, (W));
    switch (want) {
    case WANT_AEG: EDGE_LOOP(WANT_AEG); break;
    case WANT_EG: EDGE_LOOP(WANT_EG); break;
    case WANT_AE: EDGE_LOOP(WANT_AE); break;
    default: EDGE_LOOP(WANT_AEG | WANT_EG | WANT_AE); break;
    }
#undef EDGE_LOOP
}

// im2col of one input channel xc: (H, W) for output pixels [p0, p0 + len):
// col: (kk, len); pixels at or past P and window taps over the padding are 0.
static void im2col_range(float *col, const float *xc, const conv2d_dims *d, int p0, int len) {
    const int P = d->Ho * d->Wo, Wo = d->Wo, kk = d->kh * d->kw;
    for (int k = 0; k < kk; k++) {
        const int di = (k / d->kw) * d->dh - d->ph, dj = (k % d->kw) * d->dw - d->pw;
        int ow_lo, ow_hi;   // output columns whose tap lands inside the row
        conv2d_valid_range(dj, d->sw, d->W, Wo, &ow_lo, &ow_hi);
        float *cr = col + (size_t)k * len;
        int p = p0, t = 0;
        while (t < len && p < P) {   // one output row's piece at a time
            const int oh = p / Wo, ow0 = p % Wo, ih = oh * d->sh + di;
            const int run = Wo - ow0 < len - t ? Wo - ow0 : len - t, ow1 = ow0 + run;
            float *o = cr + t - ow0;   // o[ow] for ow in [ow0, ow1)
            if (ih < 0 || ih >= d->H) {
                memset(o + ow0, 0, (size_t)run * sizeof(float));
            } else {
                const float *xr = xc + (size_t)ih * d->W + dj;   // xr[ow * sw]
                const int a = ow_lo > ow0 ? ow_lo : ow0, b = ow_hi < ow1 ? ow_hi : ow1;
                if (a >= b) {
                    memset(o + ow0, 0, (size_t)run * sizeof(float));
                } else {
                    for (int ow = ow0; ow < a; ow++) o[ow] = 0.0f;
                    if (d->sw == 1) memcpy(o + a, xr + a, (size_t)(b - a) * sizeof(float));
                    else for (int ow = a; ow < b; ow++) o[ow] = xr[ow * d->sw];
                    for (int ow = b; ow < ow1; ow++) o[ow] = 0.0f;
                }
            }
            t += run; p += run;
        }
        if (t < len) memset(cr + t, 0, (size_t)(len - t) * sizeof(float));
    }
}

static void edge_sums_avx2(float *abs_eg, float *eg, float *abs_e, const float *x, const float *w,
                           const float *g, const conv2d_dims *d, int want) {
    const int C = d->C, Co = d->Co, G = d->groups, cg = C / G, Cog = Co / G;
    const int kk = d->kh * d->kw, P = d->Ho * d->Wo;
    const int Co16 = (Cog + VC - 1) / VC * VC, P6 = (P + VP - 1) / VP * VP;
    // pixels per task: a multiple of VP whose im2col (kk x PC) stays near 64 KiB
    int PC = 16384 / kk / VP * VP;
    if (PC < 8 * VP) PC = 8 * VP;
    if (PC > P6) PC = P6;
    const int nchunk = (P6 + PC - 1) / PC;
    // weight panels, per input channel ci: (Co16 / VC, kk, VC), zero past Cog
    float *panel = calloc_check((size_t)C * Co16 * kk, sizeof(float));
    #pragma omp parallel for if ((long)C * Cog * kk >= 65536)
    for (int ci = 0; ci < C; ci++) {
        const int grp = ci / cg, i = ci % cg;
        float *pc = panel + (size_t)ci * Co16 * kk;
        for (int jj = 0; jj < Cog; jj++)
            for (int k = 0; k < kk; k++)
                pc[((size_t)(jj / VC) * kk + k) * VC + jj % VC] = w[((size_t)(grp * Cog + jj) * cg + i) * kk + k];
    }
    float *gT = want & (WANT_AEG | WANT_EG) ? calloc_check((size_t)G * P6 * Co16, sizeof(float)) : NULL;
    double *part = malloc_check((size_t)C * nchunk * Cog * 3 * sizeof(double));
    for (int n = 0; n < d->N; n++) {
        if (gT) {   // gT[grp]: (P6, Co16) = transpose of g[n, grp*Cog .. +Cog, :] (|g| when only
                    // |e*g| is wanted), padding stays 0
            const float *gn = g + (size_t)n * Co * P;
            #pragma omp parallel for collapse(2) if ((long)Co * P >= 32768)
            for (int grp = 0; grp < G; grp++)
                for (int p0 = 0; p0 < P; p0 += 64) {
                    const int p1 = p0 + 64 < P ? p0 + 64 : P;
                    for (int jj = 0; jj < Cog; jj++) {
                        const float *gr = gn + (size_t)(grp * Cog + jj) * P;
                        float *t = gT + (size_t)grp * P6 * Co16 + jj;
                        if (want == WANT_AEG) for (int p = p0; p < p1; p++) t[(size_t)p * Co16] = fabsf(gr[p]);
                        else for (int p = p0; p < p1; p++) t[(size_t)p * Co16] = gr[p];
                    }
                }
        }
        #pragma omp parallel
        {
            float *col = malloc_check((size_t)kk * PC * sizeof(float));
            float *acc = malloc_check((size_t)Co16 * 3 * sizeof(float));
            #pragma omp for schedule(dynamic)
            for (long task = 0; task < (long)C * nchunk; task++) {
                const int ci = (int)(task / nchunk), ch = (int)(task % nchunk), grp = ci / cg;
                const int p0 = ch * PC, len = P6 - p0 < PC ? P6 - p0 : PC;
                im2col_range(col, x + ((size_t)n * C + ci) * d->H * d->W, d, p0, len);
                memset(acc, 0, (size_t)Co16 * 3 * sizeof(float));
                edge_task_avx2(acc, col, len, kk, panel + (size_t)ci * Co16 * kk,
                               gT ? gT + ((size_t)grp * P6 + p0) * Co16 : NULL, Co16, want);
                double *pt = part + (size_t)task * Cog * 3;
                for (int jj = 0; jj < Cog; jj++)
                    for (int k = 0; k < 3; k++) pt[jj * 3 + k] = acc[((size_t)(jj / VC) * 3 + k) * VC + jj % VC];
            }
            free(col);
            free(acc);
        }
        #pragma omp parallel for if ((long)C * Cog * nchunk >= 16384)
        for (int ci = 0; ci < C; ci++) {
            const int grp = ci / cg, i = ci % cg;
            for (int jj = 0; jj < Cog; jj++) {
                double s[3] = {0, 0, 0};
                for (int ch = 0; ch < nchunk; ch++)
                    for (int k = 0; k < 3; k++) s[k] += part[(((size_t)ci * nchunk + ch) * Cog + jj) * 3 + k];
                const size_t o = ((size_t)n * Co + grp * Cog + jj) * cg + i;
                if (abs_eg) abs_eg[o] += (float)s[0];
                if (eg) eg[o] += (float)s[1];
                if (abs_e) abs_e[o] += (float)s[2];
            }
        }
    }
    free(panel);
    free(gT);
    free(part);
}

// VISCNN_GENERIC=1 in the environment forces the portable path (tests use it).
static int have_avx2(void) {
    const char *e = getenv("VISCNN_GENERIC");
    return cpu_has_avx2_fma() && !(e && *e && *e != '0');
}
#endif

void conv2d_edge_sums(float *abs_eg, float *eg, float *abs_e, const float *x, const float *w,
                      const float *g, const conv2d_dims *d) {
    const int N = d->N, C = d->C, Co = d->Co, cg = C / d->groups, Cog = Co / d->groups;
    const int kk = d->kh * d->kw, P = d->Ho * d->Wo;
    VC_ASSERT(g || (!abs_eg && !eg));
    const int want = (abs_eg ? WANT_AEG : 0) | (eg ? WANT_EG : 0) | (abs_e ? WANT_AE : 0);
    if (!want || N == 0 || P == 0) return;
    // depthwise and 1x1 layers have cheaper exact forms (ops/conv2d_edge_sums_thin.c)
    if (conv2d_edge_sums_depthwise_applies(d)) { conv2d_edge_sums_depthwise(abs_eg, eg, abs_e, x, w, g, d); return; }
    if (conv2d_edge_sums_pointwise_applies(d)) { conv2d_edge_sums_pointwise(abs_eg, eg, abs_e, x, w, g, d); return; }
#if SIMD_X86
    // the channel-vector layout pays from 8 out-channels per group (depthwise
    // layers would waste 15/16 of it and are cheap on the portable path)
    if (Cog >= 8 && have_avx2()) { edge_sums_avx2(abs_eg, eg, abs_e, x, w, g, d, want); return; }
#endif
    #pragma omp parallel
    {
        float *col = malloc_check((size_t)kk * P * sizeof(float));
        double *sums = malloc_check((size_t)Cog * 3 * sizeof(double));
        #pragma omp for schedule(dynamic)
        for (long task = 0; task < (long)N * C; task++) {
            const int n = (int)(task / C), ci = (int)(task % C), grp = ci / cg, i = ci % cg;
            conv2d_im2col(col, x + ((size_t)n * C + ci) * d->H * d->W, 1, d);
            memset(sums, 0, (size_t)Cog * 3 * sizeof(double));
            const float *wg = w + ((size_t)grp * Cog * cg + i) * kk;   // W[grp*Cog + jj, i, :], row stride cg*kk
            const float *gg = g ? g + ((size_t)n * Co + (size_t)grp * Cog) * P : NULL;
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
