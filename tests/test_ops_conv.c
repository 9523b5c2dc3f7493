// test_ops_conv.c: conv2d and linear, fast path vs *_ref, accumulation and
// NULL-skip conventions, hand-computed values, finite-difference gradients.
//
// Build:  gcc -O2 -Wall -Wextra -fopenmp -Iops -Itests tests/test_ops_conv.c
//           ops/conv2d.c ops/linear.c ops/shapes.c -o test_ops_conv -lopenblas -lm
// Run:    ./test_ops_conv [substring filter]
//
// Both ops have the same face (y from x, w, b; dx, dw, db from dy), so one
// `layer` wraps either and every check below is written once.
#include "ops.h"
#include "testutil.h"

// Fast path vs reference: float sgemm against double sums.
#define TOL_FAST_VS_REF 1e-5

// Finite differences: L = sum(y * r), central differences in float with
// eps = 1e-2, pass when |fd - g| <= FD_REL * |g| + FD_ABS. Both ops are
// linear in each of x, w, b, so the difference quotient has no truncation
// error; what remains is float rounding of the few outputs a perturbation
// touches (~1e-7 relative each) divided by 2*eps, i.e. ~1e-5. Any indexing
// bug moves a gradient by O(|x| |r|) ~ 0.1 and more, far outside the bound.
#define FD_EPS 1e-2f
#define FD_REL 1e-2
#define FD_ABS 1e-3

typedef struct {
    int is_conv;
    conv2d_dims cd;    // conv2d: geometry (Ho, Wo filled in by layer_init)
    int N, I, O;       // linear
    int bias;          // forward gets b (and backward db) when set, else NULL
    size_t nx, nw, nb, ny;
} layer;

static void layer_init(layer *L) {
    if (L->is_conv) {
        conv2d_dims *d = &L->cd;
        conv2d_dims_finish(d);
        L->nx = (size_t)d->N * d->C * d->H * d->W;
        L->nw = (size_t)d->Co * (d->C / d->groups) * d->kh * d->kw;
        L->nb = (size_t)d->Co;
        L->ny = (size_t)d->N * d->Co * d->Ho * d->Wo;
    } else {
        L->nx = (size_t)L->N * L->I;
        L->nw = (size_t)L->O * L->I;
        L->nb = (size_t)L->O;
        L->ny = (size_t)L->N * L->O;
    }
}

static void layer_name(char *buf, size_t n, const layer *L, const char *kind) {
    if (L->is_conv) {
        const conv2d_dims *d = &L->cd;
        snprintf(buf, n, "conv2d %s N=%d C=%d H=%d W=%d Co=%d k=%dx%d s=%d,%d p=%d,%d d=%d,%d g=%d%s",
                 kind, d->N, d->C, d->H, d->W, d->Co, d->kh, d->kw, d->sh, d->sw,
                 d->ph, d->pw, d->dh, d->dw, d->groups, L->bias ? "" : " nobias");
    } else {
        snprintf(buf, n, "linear %s N=%d I=%d O=%d%s", kind, L->N, L->I, L->O, L->bias ? "" : " nobias");
    }
}

static void fwd(const layer *L, int ref, float *y, const float *x, const float *w, const float *b) {
    if (!L->bias) b = NULL;
    if (L->is_conv) (ref ? conv2d_forward_ref : conv2d_forward)(y, x, w, b, &L->cd);
    else (ref ? linear_forward_ref : linear_forward)(y, x, w, b, L->N, L->I, L->O);
}

static void bwd(const layer *L, int ref, float *dx, float *dw, float *db, const float *dy,
                const float *x, const float *w) {
    if (L->is_conv) (ref ? conv2d_backward_ref : conv2d_backward)(dx, dw, db, dy, x, w, &L->cd);
    else (ref ? linear_backward_ref : linear_backward)(dx, dw, db, dy, x, w, L->N, L->I, L->O);
}

static float *copy_of(const float *a, size_t n) {
    float *p = (float *)malloc((n ? n : 1) * sizeof(float));
    memcpy(p, a, n * sizeof(float));
    return p;
}

// Random inputs and parameters of one layer, seeded per case.
typedef struct { float *x, *w, *b, *dy; } layer_data;

static layer_data data_new(const layer *L, uint64_t seed) {
    tu_rng r = {seed * 0x9E3779B97F4A7C15ULL + 1};
    layer_data D = {tu_rand(&r, L->nx), tu_rand(&r, L->nw), tu_rand(&r, L->nb), tu_rand(&r, L->ny)};
    return D;
}
static void data_free(layer_data *D) { free(D->x); free(D->w); free(D->b); free(D->dy); }

// ---- checks, one case line each ---------------------------------------------

// The forward must write every output: y starts as NaN.
static void check_fwd_vs_ref(const layer *L, uint64_t seed) {
    char name[256]; layer_name(name, sizeof name, L, "fwd-vs-ref");
    if (!tu_selected(name)) return;
    layer_data D = data_new(L, seed);
    float *yf = tu_zeros(L->ny), *yr = tu_zeros(L->ny);
    for (size_t k = 0; k < L->ny; k++) yf[k] = yr[k] = NAN;
    fwd(L, 0, yf, D.x, D.w, D.b);
    fwd(L, 1, yr, D.x, D.w, D.b);
    double e = tu_rel_err(yf, yr, L->ny, 1e-3);
    tu_report(name, e <= TOL_FAST_VS_REF, "y rel err %.3g > %g", e, TOL_FAST_VS_REF);
    free(yf); free(yr); data_free(&D);
}

// dx, dw, db from zeroed buffers, fast vs ref (db only when the layer has a bias).
static void check_bwd_vs_ref(const layer *L, uint64_t seed) {
    char name[256]; layer_name(name, sizeof name, L, "bwd-vs-ref");
    if (!tu_selected(name)) return;
    layer_data D = data_new(L, seed);
    float *g[2][3];
    for (int ref = 0; ref < 2; ref++) {
        g[ref][0] = tu_zeros(L->nx); g[ref][1] = tu_zeros(L->nw); g[ref][2] = tu_zeros(L->nb);
        bwd(L, ref, g[ref][0], g[ref][1], L->bias ? g[ref][2] : NULL, D.dy, D.x, D.w);
    }
    const char *what[3] = {"dx", "dw", "db"};
    const size_t sz[3] = {L->nx, L->nw, L->nb};
    double worst = 0; int wi = 0;
    for (int k = 0; k < 3; k++) {
        double e = tu_rel_err(g[0][k], g[1][k], sz[k], 1e-3);
        if (!(e <= worst)) { worst = e; wi = k; }
    }
    tu_report(name, worst <= TOL_FAST_VS_REF, "%s rel err %.3g > %g", what[wi], worst, TOL_FAST_VS_REF);
    for (int ref = 0; ref < 2; ref++) for (int k = 0; k < 3; k++) free(g[ref][k]);
    data_free(&D);
}

// Backward adds to what is already in the d-buffers: running it on buffers
// pre-filled with p must give p + (the result from zeros), fast and ref.
static void check_bwd_accum(const layer *L, uint64_t seed) {
    char name[256]; layer_name(name, sizeof name, L, "bwd-accum");
    if (!tu_selected(name)) return;
    layer_data D = data_new(L, seed);
    tu_rng r = {seed + 77};
    const size_t sz[3] = {L->nx, L->nw, L->nb};
    const char *what[3] = {"dx", "dw", "db"};
    double worst = 0; char bad[16] = "";
    for (int ref = 0; ref < 2; ref++) {
        float *g0[3], *g1[3], *pre[3];
        for (int k = 0; k < 3; k++) {
            g0[k] = tu_zeros(sz[k]);
            pre[k] = tu_rand(&r, sz[k]);
            g1[k] = copy_of(pre[k], sz[k]);
        }
        bwd(L, ref, g0[0], g0[1], g0[2], D.dy, D.x, D.w);
        bwd(L, ref, g1[0], g1[1], g1[2], D.dy, D.x, D.w);
        for (int k = 0; k < 3; k++) {
            for (size_t i = 0; i < sz[k]; i++) pre[k][i] += g0[k][i];
            double e = tu_rel_err(g1[k], pre[k], sz[k], 1e-3);
            if (!(e <= worst)) { worst = e; snprintf(bad, sizeof bad, "%s%s", ref ? "ref " : "", what[k]); }
            free(g0[k]); free(g1[k]); free(pre[k]);
        }
    }
    tu_report(name, worst <= TOL_FAST_VS_REF, "%s: pre-filled result != pre + gradient (rel err %.3g)", bad, worst);
    data_free(&D);
}

// A NULL d-buffer is skipped and does not change the others: each buffer
// computed alone equals the all-at-once result, fast and ref.
static void check_bwd_null(const layer *L, uint64_t seed) {
    char name[256]; layer_name(name, sizeof name, L, "bwd-null");
    if (!tu_selected(name)) return;
    layer_data D = data_new(L, seed);
    const size_t sz[3] = {L->nx, L->nw, L->nb};
    double worst = 0; int wk = 0, wref = 0;
    for (int ref = 0; ref < 2; ref++) {
        float *all[3], *one[3];
        for (int k = 0; k < 3; k++) { all[k] = tu_zeros(sz[k]); one[k] = tu_zeros(sz[k]); }
        bwd(L, ref, all[0], all[1], all[2], D.dy, D.x, D.w);
        bwd(L, ref, one[0], NULL, NULL, D.dy, D.x, D.w);
        bwd(L, ref, NULL, one[1], NULL, D.dy, D.x, D.w);
        bwd(L, ref, NULL, NULL, one[2], D.dy, D.x, D.w);
        bwd(L, ref, NULL, NULL, NULL, D.dy, D.x, D.w);
        for (int k = 0; k < 3; k++) {
            double e = tu_rel_err(one[k], all[k], sz[k], 1e-3);
            if (!(e <= worst)) { worst = e; wk = k; wref = ref; }
            free(all[k]); free(one[k]);
        }
    }
    tu_report(name, worst == 0, "%s%s alone differs from all-at-once (rel err %.3g)",
              wref ? "ref " : "", wk == 0 ? "dx" : wk == 1 ? "dw" : "db", worst);
    data_free(&D);
}

// L = sum(y * r) in double.
static double loss(const layer *L, int ref, float *y, const float *x, const float *w, const float *b,
                   const float *r) {
    fwd(L, ref, y, x, w, b);
    double s = 0;
    for (size_t k = 0; k < L->ny; k++) s += (double)y[k] * r[k];
    return s;
}

static void check_fd(const layer *L, int ref, uint64_t seed) {
    char name[256]; layer_name(name, sizeof name, L, ref ? "fd-ref" : "fd-fast");
    if (!tu_selected(name)) return;
    layer_data D = data_new(L, seed);   // D.dy plays r, the loss weights
    float *y = tu_zeros(L->ny);
    float *g[3] = {tu_zeros(L->nx), tu_zeros(L->nw), tu_zeros(L->nb)};
    bwd(L, ref, g[0], g[1], L->bias ? g[2] : NULL, D.dy, D.x, D.w);
    float *p[3] = {D.x, D.w, D.b};
    const size_t sz[3] = {L->nx, L->nw, L->bias ? L->nb : 0};
    const char *what[3] = {"x", "w", "b"};
    double worst = 0, wfd = 0, wg = 0; int wk = 0; size_t wi = 0;
    for (int k = 0; k < 3; k++)
        for (size_t i = 0; i < sz[k]; i++) {
            const float v = p[k][i];
            const float hp = v + FD_EPS, hm = v - FD_EPS;   // the steps float can represent
            p[k][i] = hp; double lp = loss(L, ref, y, D.x, D.w, D.b, D.dy);
            p[k][i] = hm; double lm = loss(L, ref, y, D.x, D.w, D.b, D.dy);
            p[k][i] = v;
            double fd = (lp - lm) / ((double)hp - (double)hm);
            double an = g[k][i];
            double excess = fabs(fd - an) / (FD_REL * fabs(an) + FD_ABS);
            if (!(excess <= worst)) { worst = excess; wfd = fd; wg = an; wk = k; wi = i; }
        }
    tu_report(name, worst <= 1.0, "d%s[%zu]: finite difference %.6g vs analytic %.6g",
              what[wk], wi, wfd, wg);
    free(y); for (int k = 0; k < 3; k++) free(g[k]);
    data_free(&D);
}

// ---- hand-computed values: pin the semantics both paths could share --------

typedef struct {
    const char *name;
    conv2d_dims d;
    float x[16], w[8], b[2];
    int has_bias;
    float y[9];
} conv_known;

static void check_conv_known(const conv_known *t) {
    char name[256]; snprintf(name, sizeof name, "conv2d known-values %s", t->name);
    if (!tu_selected(name)) return;
    conv2d_dims d = t->d;
    conv2d_dims_finish(&d);
    size_t ny = (size_t)d.N * d.Co * d.Ho * d.Wo;
    float yf[9], yr[9];
    conv2d_forward(yf, t->x, t->w, t->has_bias ? t->b : NULL, &d);
    conv2d_forward_ref(yr, t->x, t->w, t->has_bias ? t->b : NULL, &d);
    double ef = tu_rel_err(yf, t->y, ny, 1.0), er = tu_rel_err(yr, t->y, ny, 1.0);
    tu_report(name, ef <= 1e-6 && er <= 1e-6, "rel err fast %.3g ref %.3g (y0 fast %g ref %g want %g)",
              ef, er, yf[0], yr[0], t->y[0]);
}

static void check_linear_known(void) {
    const char *name = "linear known-values N=2 I=2 O=2";
    if (!tu_selected(name)) return;
    // y = x w^T + b with x = [[1,2],[3,-1]], w = [[1,0],[2,3]], b = [0.5,-1]
    const float x[4] = {1, 2, 3, -1}, w[4] = {1, 0, 2, 3}, b[2] = {0.5f, -1};
    const float want[4] = {1.5f, 7, 3.5f, 2};
    float yf[4], yr[4];
    linear_forward(yf, x, w, b, 2, 2, 2);
    linear_forward_ref(yr, x, w, b, 2, 2, 2);
    double ef = tu_rel_err(yf, want, 4, 1.0), er = tu_rel_err(yr, want, 4, 1.0);
    tu_report(name, ef <= 1e-6 && er <= 1e-6, "rel err fast %.3g ref %.3g", ef, er);
}

// ---- tables -------------------------------------------------------------------

//               N  C  H  W  Co kh kw sh sw ph pw dh dw g  bias
#define CONV(N, C, H, W, Co, kh, kw, sh, sw, ph, pw, dh, dw, g, bias) \
    {1, {N, C, H, W, Co, kh, kw, sh, sw, ph, pw, dh, dw, g, 0, 0}, 0, 0, 0, bias, 0, 0, 0, 0}
#define LINEAR(N, I, O, bias) {0, {0}, N, I, O, bias, 0, 0, 0, 0}

// fast vs ref, accumulation, NULL skipping
static layer conv_cases[] = {
    CONV(2, 3, 7, 6, 4, 3, 2, 2, 1, 1, 0, 2, 1, 1, 1),       // mixed h/w everything
    CONV(1, 3, 8, 8, 4, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1),       // plain 3x3 "same"
    CONV(3, 3, 8, 8, 4, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1),       // batch 3
    CONV(1, 4, 9, 7, 6, 3, 3, 2, 2, 1, 1, 1, 1, 2, 1),       // groups 2, stride 2
    CONV(3, 4, 6, 10, 8, 3, 1, 1, 2, 2, 0, 1, 1, 2, 0),      // groups 2, 3x1 kernel, no bias
    CONV(1, 5, 8, 8, 5, 3, 3, 1, 1, 1, 1, 1, 1, 5, 1),       // depthwise Co = C
    CONV(3, 4, 9, 9, 8, 3, 3, 2, 2, 1, 1, 1, 1, 4, 1),       // depthwise Co = 2C, stride 2
    CONV(2, 3, 7, 8, 6, 3, 3, 1, 1, 2, 2, 2, 2, 3, 0),       // depthwise Co = 2C, dilation 2
    CONV(1, 6, 5, 7, 4, 1, 1, 1, 1, 0, 0, 1, 1, 1, 1),       // 1x1 fast path
    CONV(3, 6, 5, 7, 8, 1, 1, 1, 1, 0, 0, 1, 1, 2, 0),       // 1x1 fast path, groups 2
    CONV(2, 6, 7, 7, 4, 1, 1, 2, 2, 0, 0, 1, 1, 1, 1),       // 1x1 stride 2 (im2col path)
    CONV(1, 3, 4, 5, 2, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1),       // 1x1 with padding (im2col path)
    CONV(2, 3, 4, 5, 2, 1, 1, 1, 1, 0, 1, 1, 1, 1, 1),       // 1x1, padding in w only
    CONV(2, 3, 4, 5, 2, 1, 1, 1, 1, 1, 0, 1, 1, 1, 0),       // 1x1, padding in h only
    CONV(1, 4, 5, 6, 2, 1, 1, 1, 2, 0, 0, 1, 1, 2, 1),       // 1x1, stride in w only
    CONV(2, 3, 63, 63, 8, 11, 11, 4, 4, 2, 2, 1, 1, 1, 1),   // alexnet conv1 shape, small
    CONV(2, 2, 13, 11, 3, 3, 3, 4, 4, 1, 1, 1, 1, 1, 1),     // stride 4, 3x3
    CONV(1, 3, 9, 8, 4, 3, 3, 1, 1, 2, 2, 2, 2, 1, 1),       // padding 2, dilation 2
    CONV(2, 2, 10, 9, 3, 3, 3, 1, 2, 2, 1, 2, 1, 1, 0),      // asymmetric s, p, d
    CONV(2, 2, 11, 6, 3, 5, 2, 3, 2, 2, 1, 1, 1, 1, 1),      // 5x2 kernel, s 3,2
    CONV(1, 2, 1, 9, 3, 1, 3, 1, 1, 0, 1, 1, 2, 1, 1),       // one-row input
    CONV(1, 3, 5, 5, 4, 5, 5, 1, 1, 0, 0, 1, 1, 1, 1),       // kernel = input: 1x1 output
    CONV(2, 16, 16, 16, 32, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1),   // large enough for OpenMP
    CONV(2, 16, 12, 12, 16, 3, 3, 1, 1, 1, 1, 1, 1, 4, 1),   // groups 4, OpenMP
    CONV(2, 32, 12, 12, 32, 3, 3, 2, 2, 1, 1, 1, 1, 32, 0),  // depthwise, more channels
    CONV(5, 3, 20, 20, 4, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1),     // images grouped 2, 2, 1 per GEMM
    CONV(5, 4, 20, 20, 6, 1, 1, 1, 1, 0, 0, 1, 1, 2, 1),     // the same, 1x1 and groups 2
    CONV(9, 8, 7, 7, 16, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1),      // all 9 images in one GEMM
    // Winograd F(2x2,3x3) (3x3, stride 1, C and Co >= 16): forward, and dx as
    // the transposed conv; odd maps (a half-used last tile), every padding
    // 0..2, more or fewer outputs than inputs, images grouped per GEMM
    CONV(2, 16, 13, 11, 24, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1),   // odd H, W
    CONV(3, 24, 9, 10, 16, 3, 3, 1, 1, 0, 0, 1, 1, 1, 0),    // padding 0 (dx: padding 2)
    CONV(2, 16, 7, 8, 16, 3, 3, 1, 1, 2, 2, 1, 1, 1, 1),     // padding 2 (dx: padding 0)
    CONV(2, 17, 6, 9, 19, 3, 3, 1, 1, 0, 2, 1, 1, 1, 1),     // padding 0 in h, 2 in w
    CONV(1, 16, 3, 3, 16, 3, 3, 1, 1, 0, 0, 1, 1, 1, 1),     // 1x1 output, one tile
    CONV(11, 32, 7, 7, 48, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1),    // resnet layer4-like: 16 tiles/image, groups of images
    CONV(3, 64, 28, 28, 16, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1),   // many tiles, Co < C
    CONV(2, 3, 97, 90, 16, 7, 7, 2, 2, 3, 3, 1, 1, 1, 1),    // resnet's 7x7 stride-2 first conv, odd map
};

// finite differences: tiny shapes, every element of x, w, b perturbed
static layer conv_fd_cases[] = {
    CONV(1, 2, 5, 4, 3, 3, 2, 2, 1, 1, 0, 2, 1, 1, 1),
    CONV(2, 4, 4, 5, 4, 3, 3, 1, 2, 1, 1, 1, 1, 2, 1),       // groups 2
    CONV(1, 3, 5, 5, 6, 3, 3, 2, 2, 1, 2, 1, 1, 3, 1),       // depthwise Co = 2C
    CONV(1, 3, 6, 5, 3, 3, 3, 1, 1, 2, 2, 2, 2, 3, 0),       // depthwise Co = C, dilation 2
    CONV(2, 4, 3, 4, 3, 1, 1, 1, 1, 0, 0, 1, 1, 1, 1),       // 1x1 fast path
    CONV(1, 2, 6, 6, 2, 1, 1, 2, 2, 0, 0, 1, 1, 1, 0),       // 1x1 stride 2, no bias
    CONV(1, 1, 9, 9, 2, 5, 5, 4, 4, 2, 2, 1, 1, 1, 1),       // stride 4, 5x5
    CONV(1, 16, 5, 4, 16, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1),     // Winograd path
};

static layer linear_cases[] = {
    LINEAR(1, 7, 5, 1), LINEAR(1, 7, 5, 0),
    LINEAR(5, 7, 5, 1), LINEAR(5, 7, 5, 0),
    LINEAR(5, 64, 33, 1), LINEAR(1, 1, 1, 1),
    LINEAR(9, 40, 70, 1), LINEAR(16, 400, 130, 0),   // small-batch kernels: column and row tails
    LINEAR(17, 64, 20, 1),                           // just past them (sgemm)
};

// 1 image, 1 channel, x = 1..16 as 4x4, w = [[1,2],[3,4]], s=2, p=1: each
// output sums the in-range taps of its window (worked by hand).
static const conv_known known_cases[] = {
    {"N=1 C=1 H=4 W=4 Co=1 k=2x2 s=2,2 p=1,1 d=1,1 g=1",
     {1, 1, 4, 4, 1, 2, 2, 2, 2, 1, 1, 1, 1, 1, 0, 0},
     {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}, {1, 2, 3, 4}, {0}, 0,
     {4, 18, 12, 46, 94, 44, 26, 44, 16}},
    // x = [1..5] as 1x5, w = [1,10] dilation 3, bias 0.5: y = [1+40, 2+50] + 0.5
    {"N=1 C=1 H=1 W=5 Co=1 k=1x2 s=1,1 p=0,0 d=1,3 g=1",
     {1, 1, 1, 5, 1, 1, 2, 1, 1, 0, 0, 1, 3, 1, 0, 0},
     {1, 2, 3, 4, 5}, {1, 10}, {0.5f}, 1,
     {41.5f, 52.5f}},
    // groups 2, 1x1: channel 0 (x=1,2) scaled by 2, channel 1 (x=3,4) by 3, bias -1, 1
    {"N=1 C=2 H=1 W=2 Co=2 k=1x1 s=1,1 p=0,0 d=1,1 g=2",
     {1, 2, 1, 2, 2, 1, 1, 1, 1, 0, 0, 1, 1, 2, 0, 0},
     {1, 2, 3, 4}, {2, 3}, {-1, 1}, 1,
     {1, 3, 10, 13}},
};

#define LEN(a) ((int)(sizeof(a) / sizeof((a)[0])))

int main(int argc, char **argv) {
    tu_init(argc, argv);
    for (int i = 0; i < LEN(known_cases); i++) check_conv_known(&known_cases[i]);
    check_linear_known();
    for (int i = 0; i < LEN(conv_cases); i++) {
        layer *L = &conv_cases[i];
        layer_init(L);
        check_fwd_vs_ref(L, 100 + i);
        check_bwd_vs_ref(L, 200 + i);
        check_bwd_accum(L, 300 + i);
        check_bwd_null(L, 400 + i);
    }
    for (int i = 0; i < LEN(conv_fd_cases); i++) {
        layer *L = &conv_fd_cases[i];
        layer_init(L);
        check_fd(L, 1, 500 + i);
        check_fd(L, 0, 500 + i);
    }
    for (int i = 0; i < LEN(linear_cases); i++) {
        layer *L = &linear_cases[i];
        layer_init(L);
        check_fwd_vs_ref(L, 600 + i);
        check_bwd_vs_ref(L, 700 + i);
        check_bwd_accum(L, 800 + i);
        check_bwd_null(L, 900 + i);
        check_fd(L, 1, 1000 + i);
        check_fd(L, 0, 1000 + i);
    }
    return tu_finish();
}
