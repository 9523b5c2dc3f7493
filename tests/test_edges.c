// test_edges.c: the per-kernel edge maps and the fused edge sums
// (ops/conv2d_edges.c) against their plain references, on both code paths
// (AVX2 micro-kernel and the portable one), and the invariant
// sum_i e_ji + b_j == conv output.
#include <stdlib.h>
#include "testutil.h"
#include "ops.h"

typedef struct { int N, C, H, W, Co, k, s, p, d, g; } ecase;

static const ecase cases[] = {
    {1, 3, 11, 11, 8, 3, 1, 1, 1, 1},
    {2, 4, 9, 13, 6, 3, 2, 1, 1, 1},     // P not a multiple of 16
    {2, 5, 20, 20, 13, 3, 1, 1, 1, 1},   // Co not a multiple of 6
    {1, 6, 17, 15, 12, 3, 1, 2, 2, 2},   // dilation, groups
    {2, 8, 12, 12, 8, 3, 1, 1, 1, 8},    // depthwise
    {1, 8, 12, 12, 16, 3, 2, 1, 1, 8},   // depthwise, multiplier 2
    {1, 3, 35, 35, 7, 11, 4, 2, 1, 1},   // alexnet-like first layer
    {2, 16, 7, 7, 32, 1, 1, 0, 1, 1},    // 1x1
    {1, 4, 27, 27, 24, 5, 1, 2, 1, 1},   // 5x5
    {1, 3, 64, 64, 20, 11, 1, 5, 1, 1},  // many pixel chunks per channel (AVX2 path), Co not a multiple of 16
    {2, 6, 30, 30, 40, 3, 1, 1, 1, 2},   // groups with 20 out-channels each
    {1, 5, 9, 9, 9, 3, 1, 1, 1, 1},      // 9 out-channels: smallest width on the AVX2 path
    // the depthwise and pointwise paths (ops/conv2d_edge_sums_thin.c)
    {3, 7, 13, 11, 7, 3, 2, 1, 1, 7},    // depthwise, stride 2, odd sizes, batch 3
    {2, 5, 15, 17, 5, 5, 2, 2, 1, 5},    // depthwise 5x5 stride 2 (efficientnet)
    {2, 4, 10, 9, 4, 3, 1, 2, 2, 4},     // depthwise, dilation 2
    {1, 3, 8, 8, 6, 3, 1, 0, 1, 3},      // depthwise, no padding, multiplier 2
    {3, 24, 13, 11, 40, 1, 1, 0, 1, 1},  // 1x1, odd map, batch 3
    {2, 12, 9, 9, 18, 1, 1, 0, 1, 3},    // grouped 1x1
    {1, 32, 56, 56, 16, 1, 1, 0, 1, 1},  // 1x1 over 3136 pixels (the sums run over many terms)
    {2, 6, 9, 9, 10, 1, 2, 0, 1, 1},     // 1x1 stride 2: not pointwise, the general path
};

static conv2d_dims dims_of(const ecase *c) {
    conv2d_dims d = {.N = c->N, .C = c->C, .H = c->H, .W = c->W, .Co = c->Co, .kh = c->k, .kw = c->k, .sh = c->s, .sw = c->s,
                     .ph = c->p, .pw = c->p, .dh = c->d, .dw = c->d, .groups = c->g};
    conv2d_dims_finish(&d);
    return d;
}

int main(int argc, char **argv) {
    tu_init(argc, argv);
    tu_rng rng = {12345};
    char name[256];
    for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++) {
        const ecase *c = &cases[ci];
        conv2d_dims d = dims_of(c);
        int cg = c->C / c->g, Cog = c->Co / c->g, P = d.Ho * d.Wo;
        size_t nx = (size_t)c->N * c->C * c->H * c->W, nw = (size_t)c->Co * cg * c->k * c->k, ny = (size_t)c->N * c->Co * P;
        float *x = tu_rand(&rng, nx), *w = tu_rand(&rng, nw), *b = tu_rand(&rng, c->Co), *g = tu_rand(&rng, ny);
        const char *desc = "N=%d C=%d H=%d W=%d Co=%d k=%d s=%d p=%d d=%d g=%d";
        char shape[160];
        snprintf(shape, sizeof shape, desc, c->N, c->C, c->H, c->W, c->Co, c->k, c->s, c->p, c->d, c->g);

        // maps vs ref, and the invariant
        snprintf(name, sizeof name, "edges maps-vs-ref and sum_i e + b == conv %s", shape);
        if (tu_selected(name)) {
            float *y = tu_zeros(ny), *sum = tu_zeros(ny), *e = tu_zeros((size_t)Cog * P), *er = tu_zeros((size_t)Cog * P);
            conv2d_forward_ref(y, x, w, b, &d);
            double worst = 0;
            for (int n = 0; n < c->N; n++)
                for (int k = 0; k < c->C; k++) {
                    conv2d_edge_maps(e, x, w, &d, n, k);
                    conv2d_edge_maps_ref(er, x, w, &d, n, k);
                    double err = tu_rel_err(e, er, (size_t)Cog * P, 1e-6);
                    if (err > worst) worst = err;
                    int grp = k / cg;
                    for (int jj = 0; jj < Cog; jj++)
                        for (int p = 0; p < P; p++) sum[((size_t)n * c->Co + grp * Cog + jj) * P + p] += e[(size_t)jj * P + p];
                }
            for (int n = 0; n < c->N; n++)
                for (int j = 0; j < c->Co; j++)
                    for (int p = 0; p < P; p++) sum[((size_t)n * c->Co + j) * P + p] += b[j];
            double inv = tu_rel_err(sum, y, ny, 1e-6);
            tu_report(name, worst <= 1e-5 && inv <= 1e-5, "maps rel err %.3g, invariant rel err %.3g", worst, inv);
            free(y); free(sum); free(e); free(er);
        }
        // fused sums vs ref, on both paths
        for (int path = 0; path < 2; path++) {
            snprintf(name, sizeof name, "edges sums-vs-ref (%s path) %s", path ? "portable" : "default", shape);
            if (!tu_selected(name)) continue;
            setenv("VISCNN_GENERIC", path ? "1" : "0", 1);
            size_t ne = (size_t)c->N * c->Co * cg;
            float *a1 = tu_zeros(ne), *a2 = tu_zeros(ne), *a3 = tu_zeros(ne), *r1 = tu_zeros(ne), *r2 = tu_zeros(ne), *r3 = tu_zeros(ne);
            for (size_t k = 0; k < ne; k++) { a1[k] = r1[k] = 0.5f; }   // accumulation: += into what is there
            conv2d_edge_sums(a1, a2, a3, x, w, g, &d);
            conv2d_edge_sums_ref(r1, r2, r3, x, w, g, &d);
            double e1 = tu_rel_err(a1, r1, ne, 1e-6), e2 = tu_rel_err(a2, r2, ne, 1e-6), e3 = tu_rel_err(a3, r3, ne, 1e-6);
            // |e*g| alone (the actxgrad case) must give the same numbers
            float *b1 = tu_zeros(ne);
            conv2d_edge_sums(b1, NULL, NULL, x, w, g, &d);
            for (size_t k = 0; k < ne; k++) b1[k] += 0.5f;
            double e4 = tu_rel_err(b1, r1, ne, 1e-6);
            // e*g alone (taylor) and |e| alone (act) too: each has its own compiled loop
            float *b2 = tu_zeros(ne), *b3 = tu_zeros(ne);
            conv2d_edge_sums(NULL, b2, NULL, x, w, g, &d);
            conv2d_edge_sums(NULL, NULL, b3, x, w, NULL, &d);
            double e5 = tu_rel_err(b2, r2, ne, 1e-6), e6 = tu_rel_err(b3, r3, ne, 1e-6);
            tu_report(name, e1 <= 1e-5 && e2 <= 1e-5 && e3 <= 1e-5 && e4 <= 1e-5 && e5 <= 1e-5 && e6 <= 1e-5,
                      "|eg| %.3g, eg %.3g, |e| %.3g, alone: |eg| %.3g, eg %.3g, |e| %.3g", e1, e2, e3, e4, e5, e6);
            free(a1); free(a2); free(a3); free(r1); free(r2); free(r3); free(b1); free(b2); free(b3);
        }
        unsetenv("VISCNN_GENERIC");
        free(x); free(w); free(b); free(g);
    }
    return tu_finish();
}
