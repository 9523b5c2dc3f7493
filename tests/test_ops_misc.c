// test_ops_misc.c: tests for the non-conv CPU ops: relu, maxpool2d,
// avgpool2d, adaptive_avgpool2d, batchnorm2d, lrn, concat, add, flatten,
// dropout, log_softmax, cross_entropy, channel_mean.
//
// Kinds of case (protocol in testutil.h; argv[1] filters by substring):
//   fwd-vs-ref / bwd-vs-ref  fast path against the plain *_ref twin, tu_rel_err <= 1e-6
//                            (maxpool: bitwise, indices equal)
//   hand                     tiny inputs with outputs worked out by hand (and
//                            checked once against PyTorch 1.13 while writing them)
//   grad                     central finite differences of L = sum(y * r), r random,
//                            in float with eps 1e-2 (LRN, softmax family: 1e-2 too; the
//                            error budget is O(eps^2) curvature plus float rounding of L
//                            over 2*eps, both well under 1e-3 for these sizes);
//                            passes when max|num - ana| / max(max|ana|, 1e-3) <= 1e-2.
//                            Inputs avoid kinks: relu |x| >= 0.1, maxpool distinct
//                            values 0.05 apart (eps 1e-2 cannot swap an argmax).
//   accum                    backward into pre-filled d-buffers adds (rel err <= 1e-6
//                            against fill + backward-into-zeros); NULL d-buffers skipped.
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "ops.h"
#include "testutil.h"

#define REF_TOL 1e-6
#define FD_TOL 1e-2
#define FD_EPS 1e-2f

static tu_rng rng = {0x243F6A8885A308D3ULL};

// ---- small helpers ---------------------------------------------------------

static float *copy_of(const float *a, size_t n) {
    float *p = (float *)malloc((n ? n : 1) * sizeof(float));
    memcpy(p, a, n * sizeof(float));
    return p;
}

static void add_into(float *a, const float *b, size_t n) {
    for (size_t i = 0; i < n; i++) a[i] += b[i];
}

static double dot(const float *a, const float *b, size_t n) {
    double s = 0.0;
    for (size_t i = 0; i < n; i++) s += (double)a[i] * b[i];
    return s;
}

// n distinct values, a shuffled 0..n-1 centred and scaled by 0.05
static float *distinct_values(size_t n) {
    float *p = (float *)malloc((n ? n : 1) * sizeof(float));
    for (size_t i = 0; i < n; i++) p[i] = ((float)i - (float)n / 2) * 0.05f;
    for (size_t i = n; i > 1; i--) {
        size_t j = (size_t)((tu_uniform(&rng) + 1.0f) * 0.5f * (float)i);
        if (j >= i) j = i - 1;
        float t = p[i - 1]; p[i - 1] = p[j]; p[j] = t;
    }
    return p;
}

// Report "got vs want" with tu_rel_err.
static void check_rel(const char *name, const float *got, const float *want, size_t n, double tol) {
    double e = tu_rel_err(got, want, n, 1e-6);
    tu_report(name, e <= tol, "rel err %.3g > %.3g", e, tol);
}

// Report elementwise agreement with hand values to an absolute tolerance.
static void check_hand(const char *name, const float *got, const float *want, size_t n, double tol) {
    for (size_t i = 0; i < n; i++) {
        if (!(fabs((double)got[i] - want[i]) <= tol)) {
            tu_report(name, 0, "[%zu] = %.9g, want %.9g", i, got[i], want[i]);
            return;
        }
    }
    tu_report(name, 1, "");
}

// Finite differences. loss() runs the forward on the context's current
// inputs and returns L = sum(y * r) in double. Returns max|num - ana| /
// max(max|ana|, 1e-3) over the n elements of p (perturbed in place, restored).
typedef double (*loss_fn)(void *ctx);
static double fd_err(loss_fn loss, void *ctx, float *p, size_t n, const float *ana, float eps) {
    double md = 0.0, ma = 1e-3;
    for (size_t i = 0; i < n; i++) {
        float keep = p[i], hi = keep + eps, lo = keep - eps;
        p[i] = hi; double lp = loss(ctx);
        p[i] = lo; double lm = loss(ctx);
        p[i] = keep;
        double num = (lp - lm) / ((double)hi - (double)lo);
        double d = fabs(num - ana[i]);
        if (d > md || d != d) md = d != d ? INFINITY : d;
        if (fabs(ana[i]) > ma) ma = fabs(ana[i]);
    }
    return md / ma;
}

static void report_fd(const char *name, double e) {
    tu_report(name, e <= FD_TOL, "fd rel err %.3g > %.3g", e, FD_TOL);
}

// ---- relu ------------------------------------------------------------------

typedef struct { float *x, *y, *r; size_t n; } relu_ctx;
static double relu_loss(void *c) {
    relu_ctx *k = (relu_ctx *)c;
    relu_forward(k->y, k->x, k->n);
    return dot(k->y, k->r, k->n);
}

static void test_relu(void) {
    static const size_t sizes[] = {1, 7, 1000, 100003};   // the last one takes the OpenMP path
    char name[256];
    for (size_t t = 0; t < sizeof sizes / sizeof *sizes; t++) {
        size_t n = sizes[t];
        float *x = tu_rand(&rng, n), *dy = tu_rand(&rng, n);
        x[0] = 0.0f;   // NaN is checked in "relu hand" (tu_rel_err counts NaN as a mismatch)
        if (n > 3) x[2] = -0.0f;
        float *y = tu_zeros(n), *yr = tu_zeros(n);
        snprintf(name, sizeof name, "relu fwd-vs-ref n=%zu", n);
        if (tu_selected(name)) {
            relu_forward(y, x, n);
            relu_forward_ref(yr, x, n);
            check_rel(name, y, yr, n, REF_TOL);
        }
        relu_forward(y, x, n);
        snprintf(name, sizeof name, "relu bwd-vs-ref n=%zu", n);
        if (tu_selected(name)) {
            float *dx = tu_zeros(n), *dxr = tu_zeros(n);
            relu_backward(dx, dy, y, n);
            relu_backward_ref(dxr, dy, y, n);
            check_rel(name, dx, dxr, n, REF_TOL);
            free(dx); free(dxr);
        }
        snprintf(name, sizeof name, "relu accum n=%zu", n);
        if (tu_selected(name)) {
            float *fill = tu_rand(&rng, n), *dx = copy_of(fill, n), *g = tu_zeros(n);
            relu_backward(dx, dy, y, n);
            relu_backward(g, dy, y, n);
            add_into(g, fill, n);
            check_rel(name, dx, g, n, REF_TOL);
            free(fill); free(dx); free(g);
        }
        free(x); free(dy); free(y); free(yr);
    }

    snprintf(name, sizeof name, "relu hand x=[-2,0,-0,3,nan]");
    if (tu_selected(name)) {
        float x[5] = {-2, 0, -0.0f, 3, NAN}, y[5], dx[5] = {0}, dy[5] = {1, 1, 1, 1, 1};
        relu_forward(y, x, 5);
        relu_backward(dx, dy, y, 5);
        // PyTorch: relu = [0,0,-0,3,nan], grad = [0,0,0,1,1] (threshold_backward passes NaN)
        int ok = y[0] == 0 && y[1] == 0 && y[2] == 0 && y[3] == 3 && isnan(y[4]) &&
                 dx[0] == 0 && dx[1] == 0 && dx[2] == 0 && dx[3] == 1 && dx[4] == 1;
        tu_report(name, ok, "y=[%g,%g,%g,%g,%g] dx=[%g,%g,%g,%g,%g]", y[0], y[1], y[2], y[3], y[4],
                  dx[0], dx[1], dx[2], dx[3], dx[4]);
    }

    snprintf(name, sizeof name, "relu grad n=64");
    if (tu_selected(name)) {
        size_t n = 64;
        float *x = tu_rand(&rng, n), *r = tu_rand(&rng, n), *y = tu_zeros(n), *dx = tu_zeros(n);
        for (size_t i = 0; i < n; i++) x[i] += x[i] < 0 ? -0.1f : 0.1f;   // |x| >= 0.1
        relu_forward(y, x, n);
        relu_backward(dx, r, y, n);
        relu_ctx c = {x, y, r, n};
        report_fd(name, fd_err(relu_loss, &c, x, n, dx, FD_EPS));
        free(x); free(r); free(y); free(dx);
    }
}

// ---- pools: shared case table ----------------------------------------------

typedef struct { int N, C, H, W, kh, kw, sh, sw, ph, pw, dh, dw, ceil, cip, div; } pool_case;

static pool2d_dims dims_of(const pool_case *pc) {
    pool2d_dims d = {pc->N, pc->C, pc->H, pc->W, pc->kh, pc->kw, pc->sh, pc->sw, pc->ph, pc->pw,
                     pc->dh, pc->dw, pc->ceil, pc->cip, pc->div, 0, 0};
    pool2d_dims_finish(&d);
    return d;
}

// "k=3 s=2" when square, "k=3x2 s=2x1" when not
static void fmt_pool(char *buf, size_t sz, const char *op, const char *kind, const pool_case *pc, int is_max) {
    char k[16], s[16], p[16], d[16];
    #define PAIR(b, a1, a2) (a1 == a2 ? snprintf(b, sizeof b, "%d", a1) : snprintf(b, sizeof b, "%dx%d", a1, a2))
    PAIR(k, pc->kh, pc->kw); PAIR(s, pc->sh, pc->sw); PAIR(p, pc->ph, pc->pw); PAIR(d, pc->dh, pc->dw);
    #undef PAIR
    if (is_max)
        snprintf(buf, sz, "%s %s N=%d C=%d H=%d W=%d k=%s s=%s p=%s d=%s ceil=%d", op, kind,
                 pc->N, pc->C, pc->H, pc->W, k, s, p, d, pc->ceil);
    else
        snprintf(buf, sz, "%s %s N=%d C=%d H=%d W=%d k=%s s=%s p=%s ceil=%d cip=%d div=%d", op, kind,
                 pc->N, pc->C, pc->H, pc->W, k, s, p, pc->ceil, pc->cip, pc->div);
}

// Explicit cases: the shapes of googlenet/alexnet/vgg pools, shapes where
// ceil_mode changes the size, non-square attributes, and big ones that take
// the OpenMP path. For avgpool, dh/dw are ignored (1).
static const pool_case pool_table[] = {
    //N  C   H    W   kh kw sh sw ph pw dh dw ceil cip div
    {2,  3,   7,   8, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 0},
    {1,  2,   7,   7, 3, 3, 2, 2, 0, 0, 1, 1, 1, 1, 0},   // ceil: 3 (floor: 3) windows hang over
    {1,  2,  13,  13, 3, 3, 2, 2, 0, 0, 1, 1, 1, 0, 0},   // ceil: 6 (floor: 6)
    {1,  2,  56,  56, 3, 3, 2, 2, 0, 0, 1, 1, 1, 1, 0},   // googlenet maxpool2: 28 (floor: 27)
    {1,  2, 112, 112, 3, 3, 2, 2, 0, 0, 1, 1, 1, 1, 0},   // googlenet maxpool1: 56 (floor: 55)
    {1,  3,  14,  14, 2, 2, 2, 2, 0, 0, 1, 1, 1, 1, 0},   // googlenet maxpool4: 7
    {1,  3,   7,   7, 2, 2, 2, 2, 0, 0, 1, 1, 1, 0, 0},   // ceil: 4 (floor: 3)
    {2,  3,  28,  28, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 0},   // inception branch pool
    {1,  2,  55,  55, 3, 3, 2, 2, 0, 0, 1, 1, 0, 1, 0},   // alexnet
    {1,  2,   5,   5, 2, 2, 2, 2, 1, 1, 1, 1, 1, 1, 0},   // ceil rule drops the last window: 3
    {2,  3,   9,   6, 3, 2, 2, 1, 1, 0, 2, 1, 1, 0, 0},   // non-square everything
    {2,  3,   6,   9, 2, 3, 1, 3, 1, 1, 1, 2, 0, 1, 3},
    {1,  1,   6,   1, 3, 1, 2, 1, 1, 0, 1, 1, 1, 1, 0},   // W=1
    {8, 16,  56,  56, 3, 3, 2, 2, 1, 1, 1, 1, 1, 0, 0},   // OpenMP path
    {4, 32,  27,  27, 3, 3, 2, 2, 0, 0, 1, 1, 0, 1, 0},   // OpenMP path
    {4, 32,  15,  15, 3, 3, 1, 1, 1, 1, 1, 1, 0, 0, 7},   // OpenMP path, divisor_override
};
#define N_POOL_TABLE (int)(sizeof pool_table / sizeof *pool_table)

// Sweep: k 1..3, s 1..3, p 0..min(1,k/2), d 1..2 (maxpool) or cip 0..1 and
// divisor_override {0,5} (avgpool), ceil 0..1; H varies with the case so that
// some strides leave a remainder (where ceil_mode adds a window) and some don't.
static int pool_sweep(pool_case *out, int is_max) {
    int n = 0;
    for (int k = 1; k <= 3; k++)
    for (int s = 1; s <= 3; s++)
    for (int p = 0; p <= 1 && p <= k / 2; p++)
    for (int v = 0; v < 4; v++)            // maxpool: d = 1 + v/2; avgpool: cip = v%2, div = v/2 ? 5 : 0
    for (int ceil = 0; ceil <= 1; ceil++) {
        pool_case c = {2, 3, 5 + n % 5, 6 + n % 4, k, k, s, s, p, p, 1, 1, ceil, 0, 0};
        if (is_max) { if (v % 2) continue; c.dh = c.dw = 1 + v / 2; }
        else { c.cip = v % 2; c.div = v / 2 ? 5 : 0; }
        out[n++] = c;
    }
    return n;
}

// ---- maxpool2d ---------------------------------------------------------------

typedef struct { pool2d_dims d; float *x, *y, *r; int32_t *idx; } pool_ctx;
static double maxpool_loss(void *c) {
    pool_ctx *k = (pool_ctx *)c;
    maxpool2d_forward(k->y, k->idx, k->x, &k->d);
    return dot(k->y, k->r, (size_t)k->d.N * k->d.C * k->d.Ho * k->d.Wo);
}

static void maxpool_case(const pool_case *pc, int with_accum) {
    char name[256];
    pool2d_dims d = dims_of(pc);
    size_t nx = (size_t)d.N * d.C * d.H * d.W, ny = (size_t)d.N * d.C * d.Ho * d.Wo;
    float *x = tu_rand(&rng, nx), *dy = tu_rand(&rng, ny);
    float *y = tu_zeros(ny), *yr = tu_zeros(ny);
    int32_t *idx = (int32_t *)calloc(ny + 1, sizeof(int32_t)), *idxr = (int32_t *)calloc(ny + 1, sizeof(int32_t));

    fmt_pool(name, sizeof name, "maxpool2d", "fwd-vs-ref", pc, 1);
    if (tu_selected(name)) {
        maxpool2d_forward(y, idx, x, &d);
        maxpool2d_forward_ref(yr, idxr, x, &d);
        size_t bad = ny;
        for (size_t i = 0; i < ny && bad == ny; i++)
            if (idx[i] != idxr[i] || memcmp(&y[i], &yr[i], sizeof(float))) bad = i;
        if (bad == ny) tu_report(name, 1, "");
        else tu_report(name, 0, "[%zu]: y=%g idx=%d, ref y=%g idx=%d", bad, y[bad], idx[bad], yr[bad], idxr[bad]);
    }
    // ties and NaN: values from {-1,0,1} with a few NaNs; indices must agree
    fmt_pool(name, sizeof name, "maxpool2d", "fwd-vs-ref-ties-nan", pc, 1);
    if (tu_selected(name)) {
        float *xt = tu_rand(&rng, nx);
        for (size_t i = 0; i < nx; i++) xt[i] = i % 17 == 5 ? NAN : roundf(xt[i]);
        maxpool2d_forward(y, idx, xt, &d);
        maxpool2d_forward_ref(yr, idxr, xt, &d);
        size_t bad = ny;
        for (size_t i = 0; i < ny && bad == ny; i++)
            if (idx[i] != idxr[i] || (y[i] != yr[i] && !(isnan(y[i]) && isnan(yr[i])))) bad = i;
        if (bad == ny) tu_report(name, 1, "");
        else tu_report(name, 0, "[%zu]: y=%g idx=%d, ref y=%g idx=%d", bad, y[bad], idx[bad], yr[bad], idxr[bad]);
        free(xt);
    }
    maxpool2d_forward(y, idx, x, &d);
    fmt_pool(name, sizeof name, "maxpool2d", "bwd-vs-ref", pc, 1);
    if (tu_selected(name)) {
        float *dx = tu_zeros(nx), *dxr = tu_zeros(nx);
        maxpool2d_backward(dx, dy, idx, &d);
        maxpool2d_backward_ref(dxr, dy, idx, &d);
        check_rel(name, dx, dxr, nx, REF_TOL);
        free(dx); free(dxr);
    }
    fmt_pool(name, sizeof name, "maxpool2d", "accum", pc, 1);
    if (with_accum && tu_selected(name)) {
        float *fill = tu_rand(&rng, nx), *dx = copy_of(fill, nx), *g = tu_zeros(nx);
        maxpool2d_backward(dx, dy, idx, &d);
        maxpool2d_backward(g, dy, idx, &d);
        add_into(g, fill, nx);
        check_rel(name, dx, g, nx, REF_TOL);
        free(fill); free(dx); free(g);
    }
    fmt_pool(name, sizeof name, "maxpool2d", "grad", pc, 1);
    if (nx <= 4096 && tu_selected(name)) {
        float *xd = distinct_values(nx), *dx = tu_zeros(nx);
        maxpool2d_forward(y, idx, xd, &d);
        maxpool2d_backward(dx, dy, idx, &d);
        pool_ctx c = {d, xd, y, dy, idx};
        report_fd(name, fd_err(maxpool_loss, &c, xd, nx, dx, FD_EPS));
        free(xd); free(dx);
    }
    free(x); free(dy); free(y); free(yr); free(idx); free(idxr);
}

static void test_maxpool_hand(void) {
    char name[256];
    snprintf(name, sizeof name, "maxpool2d hand output sizes (56,3,2,ceil)=28 (13)=6 (7)=3 (112)=56 (7,k2)=4 (5,k2,p1)=3");
    if (tu_selected(name)) {
        int got[6] = {pool_out_size(56, 3, 2, 0, 1, 1), pool_out_size(13, 3, 2, 0, 1, 1),
                      pool_out_size(7, 3, 2, 0, 1, 1), pool_out_size(112, 3, 2, 0, 1, 1),
                      pool_out_size(7, 2, 2, 0, 1, 1), pool_out_size(5, 2, 2, 1, 1, 1)};
        int want[6] = {28, 6, 3, 56, 4, 3};
        tu_report(name, !memcmp(got, want, sizeof got), "got %d %d %d %d %d %d",
                  got[0], got[1], got[2], got[3], got[4], got[5]);
    }
    snprintf(name, sizeof name, "maxpool2d hand 5x5 arange k=3 s=1 p=1 d=2");
    if (tu_selected(name)) {
        // taps of output (0,0) are rows/cols {-1,1,3}: the max is x[3][3] = 18
        float x[25], y[9];
        int32_t idx[9];
        for (int i = 0; i < 25; i++) x[i] = (float)i;
        pool_case pc = {1, 1, 5, 5, 3, 3, 1, 1, 1, 1, 2, 2, 0, 0, 0};
        pool2d_dims d = dims_of(&pc);
        maxpool2d_forward(y, idx, x, &d);
        const float want[9] = {18, 19, 18, 23, 24, 23, 18, 19, 18};
        int ok = d.Ho == 3 && d.Wo == 3;
        for (int i = 0; i < 9 && ok; i++) ok = y[i] == want[i] && idx[i] == (int)want[i];
        tu_report(name, ok, "Ho=%d y[0]=%g idx[0]=%d", d.Ho, y[0], idx[0]);
    }
    snprintf(name, sizeof name, "maxpool2d hand ties first, NaN wins (last NaN), -inf window");
    if (tu_selected(name)) {
        // row of 5, window 1x5: ties -> index 1 (first 3); NaNs at 1 and 3 -> index 3
        float a[5] = {1, 3, 3, 2, 3}, b[5] = {1, NAN, 3, NAN, 0}, y;
        int32_t ia, ib, ic;
        pool_case pc = {1, 1, 1, 5, 1, 5, 1, 1, 0, 0, 1, 1, 0, 0, 0};
        pool2d_dims d = dims_of(&pc);
        maxpool2d_forward(&y, &ia, a, &d);
        int ok = y == 3 && ia == 1;
        maxpool2d_forward(&y, &ib, b, &d);
        ok = ok && isnan(y) && ib == 3;
        // all -inf, padded window (1,3) p=(0,1): PyTorch reports -inf at index 0
        float c[3] = {-INFINITY, -INFINITY, -INFINITY};
        pool_case pc2 = {1, 1, 1, 3, 1, 3, 1, 3, 0, 1, 1, 1, 0, 0, 0};
        pool2d_dims d2 = dims_of(&pc2);
        maxpool2d_forward(&y, &ic, c, &d2);
        ok = ok && d2.Wo == 1 && y == -INFINITY && ic == 0;
        tu_report(name, ok, "idx ties=%d nan=%d -inf=%d", ia, ib, ic);
    }
}

// ---- avgpool2d ---------------------------------------------------------------

static double avgpool_loss(void *c) {
    pool_ctx *k = (pool_ctx *)c;
    avgpool2d_forward(k->y, k->x, &k->d);
    return dot(k->y, k->r, (size_t)k->d.N * k->d.C * k->d.Ho * k->d.Wo);
}

static void avgpool_case(const pool_case *pc0, int with_accum) {
    char name[256];
    pool_case pc = *pc0;
    pc.dh = pc.dw = 1;
    pool2d_dims d = dims_of(&pc);
    size_t nx = (size_t)d.N * d.C * d.H * d.W, ny = (size_t)d.N * d.C * d.Ho * d.Wo;
    float *x = tu_rand(&rng, nx), *dy = tu_rand(&rng, ny), *y = tu_zeros(ny), *yr = tu_zeros(ny);

    fmt_pool(name, sizeof name, "avgpool2d", "fwd-vs-ref", &pc, 0);
    if (tu_selected(name)) {
        avgpool2d_forward(y, x, &d);
        avgpool2d_forward_ref(yr, x, &d);
        check_rel(name, y, yr, ny, REF_TOL);
    }
    fmt_pool(name, sizeof name, "avgpool2d", "bwd-vs-ref", &pc, 0);
    if (tu_selected(name)) {
        float *dx = tu_zeros(nx), *dxr = tu_zeros(nx);
        avgpool2d_backward(dx, dy, &d);
        avgpool2d_backward_ref(dxr, dy, &d);
        check_rel(name, dx, dxr, nx, REF_TOL);
        free(dx); free(dxr);
    }
    fmt_pool(name, sizeof name, "avgpool2d", "accum", &pc, 0);
    if (with_accum && tu_selected(name)) {
        float *fill = tu_rand(&rng, nx), *dx = copy_of(fill, nx), *g = tu_zeros(nx);
        avgpool2d_backward(dx, dy, &d);
        avgpool2d_backward(g, dy, &d);
        add_into(g, fill, nx);
        check_rel(name, dx, g, nx, REF_TOL);
        free(fill); free(dx); free(g);
    }
    fmt_pool(name, sizeof name, "avgpool2d", "grad", &pc, 0);
    if (nx <= 4096 && tu_selected(name)) {
        float *dx = tu_zeros(nx);
        avgpool2d_backward(dx, dy, &d);
        pool_ctx c = {d, x, y, dy, NULL};
        report_fd(name, fd_err(avgpool_loss, &c, x, nx, dx, FD_EPS));
        free(dx);
    }
    free(x); free(dy); free(y); free(yr);
}

static void test_avgpool_hand(void) {
    char name[256];
    // x = 1..6 as (1,1,1,6), window 1x3, stride 2, pad (0,1), ceil: Wo = 4.
    // Windows (unclipped) [-1,2) [1,4) [3,6) [5,7): the last one ends at W+p = 7,
    // so its pool size is 2, not 3 (PyTorch's divisor rule).
    // PyTorch 1.13: cip=1 [1,3,5,3], cip=0 [1.5,3,5,6], divisor_override=2 [1.5,4.5,7.5,3].
    static const struct { int cip, div; float want[4]; } hc[] = {
        {1, 0, {1, 3, 5, 3}}, {0, 0, {1.5f, 3, 5, 6}}, {1, 2, {1.5f, 4.5f, 7.5f, 3}},
    };
    for (int t = 0; t < 3; t++) {
        snprintf(name, sizeof name, "avgpool2d hand x=1..6 k=1x3 s=1x2 p=0x1 ceil=1 cip=%d div=%d",
                 hc[t].cip, hc[t].div);
        if (!tu_selected(name)) continue;
        float x[6] = {1, 2, 3, 4, 5, 6}, y[4] = {0};
        pool_case pc = {1, 1, 1, 6, 1, 3, 1, 2, 0, 1, 1, 1, 1, hc[t].cip, hc[t].div};
        pool2d_dims d = dims_of(&pc);
        if (d.Ho != 1 || d.Wo != 4) { tu_report(name, 0, "Ho=%d Wo=%d, want 1 4", d.Ho, d.Wo); continue; }
        avgpool2d_forward(y, x, &d);
        check_hand(name, y, hc[t].want, 4, 1e-6);
    }
}

// ---- adaptive_avgpool2d ------------------------------------------------------

typedef struct { int N, C, H, W, Ho, Wo; } adapt_case;
static const adapt_case adapt_table[] = {
    {1, 1, 5, 5, 3, 3}, {2, 3, 7, 9, 3, 4}, {2, 3, 6, 6, 6, 6}, {2, 3, 4, 5, 7, 8},   // Ho > H
    {2, 3, 13, 13, 1, 1}, {2, 3, 14, 14, 4, 4},   // googlenet aux: 14 -> 4
    {4, 64, 13, 13, 6, 6},                        // alexnet, OpenMP path
    {4, 64, 7, 7, 1, 1},
};

typedef struct { adapt_case a; float *x, *y, *r; } adapt_ctx;
static double adapt_loss(void *c) {
    adapt_ctx *k = (adapt_ctx *)c;
    adaptive_avgpool2d_forward(k->y, k->x, k->a.N, k->a.C, k->a.H, k->a.W, k->a.Ho, k->a.Wo);
    return dot(k->y, k->r, (size_t)k->a.N * k->a.C * k->a.Ho * k->a.Wo);
}

static void test_adaptive(void) {
    char name[256];
    for (size_t t = 0; t < sizeof adapt_table / sizeof *adapt_table; t++) {
        adapt_case a = adapt_table[t];
        size_t nx = (size_t)a.N * a.C * a.H * a.W, ny = (size_t)a.N * a.C * a.Ho * a.Wo;
        float *x = tu_rand(&rng, nx), *dy = tu_rand(&rng, ny), *y = tu_zeros(ny), *yr = tu_zeros(ny);
        #define ADESC(kind) snprintf(name, sizeof name, "adaptive_avgpool2d %s N=%d C=%d H=%d W=%d Ho=%d Wo=%d", \
                                     kind, a.N, a.C, a.H, a.W, a.Ho, a.Wo)
        ADESC("fwd-vs-ref");
        if (tu_selected(name)) {
            adaptive_avgpool2d_forward(y, x, a.N, a.C, a.H, a.W, a.Ho, a.Wo);
            adaptive_avgpool2d_forward_ref(yr, x, a.N, a.C, a.H, a.W, a.Ho, a.Wo);
            check_rel(name, y, yr, ny, REF_TOL);
        }
        ADESC("bwd-vs-ref");
        if (tu_selected(name)) {
            float *dx = tu_zeros(nx), *dxr = tu_zeros(nx);
            adaptive_avgpool2d_backward(dx, dy, a.N, a.C, a.H, a.W, a.Ho, a.Wo);
            adaptive_avgpool2d_backward_ref(dxr, dy, a.N, a.C, a.H, a.W, a.Ho, a.Wo);
            check_rel(name, dx, dxr, nx, REF_TOL);
            free(dx); free(dxr);
        }
        ADESC("accum");
        if (tu_selected(name)) {
            float *fill = tu_rand(&rng, nx), *dx = copy_of(fill, nx), *g = tu_zeros(nx);
            adaptive_avgpool2d_backward(dx, dy, a.N, a.C, a.H, a.W, a.Ho, a.Wo);
            adaptive_avgpool2d_backward(g, dy, a.N, a.C, a.H, a.W, a.Ho, a.Wo);
            add_into(g, fill, nx);
            check_rel(name, dx, g, nx, REF_TOL);
            free(fill); free(dx); free(g);
        }
        ADESC("grad");
        if (nx <= 4096 && tu_selected(name)) {
            float *dx = tu_zeros(nx);
            adaptive_avgpool2d_backward(dx, dy, a.N, a.C, a.H, a.W, a.Ho, a.Wo);
            adapt_ctx c = {a, x, y, dy};
            report_fd(name, fd_err(adapt_loss, &c, x, nx, dx, FD_EPS));
            free(dx);
        }
        #undef ADESC
        free(x); free(dy); free(y); free(yr);
    }

    snprintf(name, sizeof name, "adaptive_avgpool2d hand 5->3 windows [0,2) [1,4) [3,5)");
    if (tu_selected(name)) {
        float x[5] = {1, 2, 3, 4, 5}, y[3], dx[5] = {0}, dy[3] = {1, 1, 1};
        adaptive_avgpool2d_forward(y, x, 1, 1, 1, 5, 1, 3);
        adaptive_avgpool2d_backward(dx, dy, 1, 1, 1, 5, 1, 3);
        // y = [1.5, 3, 4.5] (PyTorch); dx = [1/2, 1/2+1/3, 1/3, 1/3+1/2, 1/2]
        float want[8] = {1.5f, 3, 4.5f, 0.5f, 0.5f + 1.0f / 3, 1.0f / 3, 0.5f + 1.0f / 3, 0.5f};
        float got[8] = {y[0], y[1], y[2], dx[0], dx[1], dx[2], dx[3], dx[4]};
        check_hand(name, got, want, 8, 1e-6);
    }
}

// ---- batchnorm2d ---------------------------------------------------------------

typedef struct { int N, C, HW, affine; } bn_case;
static const bn_case bn_table[] = {
    {2, 3, 5, 1}, {2, 3, 5, 0}, {1, 1, 1, 1}, {3, 4, 49, 1}, {2, 32, 1100, 1}, {2, 32, 1100, 0},
};

typedef struct { bn_case b; float *x, *y, *r, *gamma, *beta, *mean, *var; } bn_ctx;
static double bn_loss(void *c) {
    bn_ctx *k = (bn_ctx *)c;
    batchnorm2d_forward(k->y, k->x, k->gamma, k->beta, k->mean, k->var, 1e-5f, k->b.N, k->b.C, k->b.HW);
    return dot(k->y, k->r, (size_t)k->b.N * k->b.C * k->b.HW);
}

static void test_batchnorm(void) {
    char name[256];
    const float eps = 1e-5f;
    for (size_t t = 0; t < sizeof bn_table / sizeof *bn_table; t++) {
        bn_case b = bn_table[t];
        size_t n = (size_t)b.N * b.C * b.HW, C = (size_t)b.C;
        float *x = tu_rand(&rng, n), *dy = tu_rand(&rng, n), *y = tu_zeros(n), *yr = tu_zeros(n);
        float *gamma = tu_rand(&rng, C), *beta = tu_rand(&rng, C), *mean = tu_rand(&rng, C), *var = tu_rand(&rng, C);
        for (size_t c = 0; c < C; c++) var[c] = var[c] * 0.5f + 1.0f;   // var in [0.5, 1.5)
        float *g = b.affine ? gamma : NULL, *bt = b.affine ? beta : NULL;
        #define BDESC(kind) snprintf(name, sizeof name, "batchnorm2d %s N=%d C=%d HW=%d affine=%d", \
                                     kind, b.N, b.C, b.HW, b.affine)
        BDESC("fwd-vs-ref");
        if (tu_selected(name)) {
            batchnorm2d_forward(y, x, g, bt, mean, var, eps, b.N, b.C, b.HW);
            batchnorm2d_forward_ref(yr, x, g, bt, mean, var, eps, b.N, b.C, b.HW);
            // floor 1: the fast path's folded y = x*a + (beta - mean*a) (PyTorch's)
            // carries an absolute error of a few ulp of its O(1) terms, which a
            // lone small output (N=C=HW=1) would show as a large relative error
            double e = tu_rel_err(y, yr, n, 1.0);
            tu_report(name, e <= REF_TOL, "rel err %.3g > %.3g", e, REF_TOL);
        }
        BDESC("bwd-vs-ref");
        if (tu_selected(name)) {
            float *dx = tu_zeros(n), *dxr = tu_zeros(n), *dg = tu_zeros(C), *dgr = tu_zeros(C);
            float *db = tu_zeros(C), *dbr = tu_zeros(C);
            batchnorm2d_backward(dx, dg, db, dy, x, g, mean, var, eps, b.N, b.C, b.HW);
            batchnorm2d_backward_ref(dxr, dgr, dbr, dy, x, g, mean, var, eps, b.N, b.C, b.HW);
            double e = fmax(tu_rel_err(dx, dxr, n, 1e-6),
                            fmax(tu_rel_err(dg, dgr, C, 1e-6), tu_rel_err(db, dbr, C, 1e-6)));
            tu_report(name, e <= REF_TOL, "rel err %.3g", e);
            free(dx); free(dxr); free(dg); free(dgr); free(db); free(dbr);
        }
        BDESC("accum");
        if (tu_selected(name)) {
            // pre-filled buffers add; then NULL dx / dgamma / dbeta are skipped one at a time
            float *fx = tu_rand(&rng, n), *fg = tu_rand(&rng, C), *fb = tu_rand(&rng, C);
            float *dx = copy_of(fx, n), *dg = copy_of(fg, C), *db = copy_of(fb, C);
            float *gx = tu_zeros(n), *gg = tu_zeros(C), *gb = tu_zeros(C);
            batchnorm2d_backward(dx, dg, db, dy, x, g, mean, var, eps, b.N, b.C, b.HW);
            batchnorm2d_backward(gx, gg, gb, dy, x, g, mean, var, eps, b.N, b.C, b.HW);
            add_into(gx, fx, n); add_into(gg, fg, C); add_into(gb, fb, C);
            double e = fmax(tu_rel_err(dx, gx, n, 1e-6), fmax(tu_rel_err(dg, gg, C, 1e-6), tu_rel_err(db, gb, C, 1e-6)));
            float *dx2 = copy_of(gx, n), *dg2 = copy_of(gg, C), *db2 = copy_of(gb, C);
            batchnorm2d_backward(NULL, dg2, NULL, dy, x, g, mean, var, eps, b.N, b.C, b.HW);
            batchnorm2d_backward(dx2, NULL, db2, dy, x, g, mean, var, eps, b.N, b.C, b.HW);
            // now dx2 = gx + dx_part, dg2 = gg + dg_part, db2 = gb + db_part
            add_into(gx, gx, n); add_into(gg, gg, C); add_into(gb, gb, C);   // 2*(fill + part)
            add_into(dx2, fx, n); add_into(dg2, fg, C); add_into(db2, fb, C); // likewise
            e = fmax(e, fmax(tu_rel_err(dx2, gx, n, 1e-6), fmax(tu_rel_err(dg2, gg, C, 1e-6), tu_rel_err(db2, gb, C, 1e-6))));
            tu_report(name, e <= REF_TOL, "rel err %.3g", e);
            free(fx); free(fg); free(fb); free(dx); free(dg); free(db); free(gx); free(gg); free(gb);
            free(dx2); free(dg2); free(db2);
        }
        BDESC("grad");
        if (n <= 4096 && tu_selected(name)) {
            float *dx = tu_zeros(n), *dg = tu_zeros(C), *db = tu_zeros(C);
            batchnorm2d_backward(dx, dg, db, dy, x, g, mean, var, eps, b.N, b.C, b.HW);
            bn_ctx c = {b, x, y, dy, g, bt, mean, var};
            double e = fd_err(bn_loss, &c, x, n, dx, FD_EPS);
            if (b.affine) {
                e = fmax(e, fd_err(bn_loss, &c, gamma, C, dg, FD_EPS));
                e = fmax(e, fd_err(bn_loss, &c, beta, C, db, FD_EPS));
            }
            report_fd(name, e);
            free(dx); free(dg); free(db);
        }
        #undef BDESC
        free(x); free(dy); free(y); free(yr); free(gamma); free(beta); free(mean); free(var);
    }

    snprintf(name, sizeof name, "batchnorm2d hand mean=1 var=3 eps=1 gamma=2 beta=-1");
    if (tu_selected(name)) {
        // invstd = 1/2: y = (x-1)/2*2 - 1 = x - 2; dx = dy*gamma*invstd = dy;
        // dgamma = sum dy*(x-1)/2, dbeta = sum dy
        float x[3] = {1, 3, -5}, y[3], dy[3] = {1, 2, 3}, dx[3] = {0}, dg = 0, db = 0;
        float gm = 2, bt = -1, mn = 1, vr = 3;
        batchnorm2d_forward(y, x, &gm, &bt, &mn, &vr, 1.0f, 1, 1, 3);
        batchnorm2d_backward(dx, &dg, &db, dy, x, &gm, &mn, &vr, 1.0f, 1, 1, 3);
        float got[8] = {y[0], y[1], y[2], dx[0], dx[1], dx[2], dg, db};
        float want[8] = {-1, 1, -7, 1, 2, 3, (0 * 1 + 1 * 2 + -3 * 3), 6};
        check_hand(name, got, want, 8, 1e-6);
    }
}

// ---- lrn ---------------------------------------------------------------------

typedef struct { int N, C, HW, size; float alpha, beta, k; } lrn_case;
static const lrn_case lrn_table[] = {
    {2, 7, 5, 5, 1e-4f, 0.75f, 2.0f},      // alexnet's parameters
    {1, 6, 3, 3, 1.0f, 0.75f, 2.0f},       // strong cross-channel term
    {2, 5, 4, 4, 0.5f, 0.75f, 1.0f},       // even size: window [c-2, c+1]
    {1, 3, 2, 7, 1.0f, 0.5f, 1.5f},        // size > C
    {1, 4, 3, 1, 2.0f, 0.75f, 1.0f},       // size 1
    {2, 32, 729, 5, 1e-4f, 0.75f, 2.0f},   // OpenMP path, pixel blocks with a remainder
    {1, 24, 300, 4, 1.0f, 0.75f, 1.0f},
};

typedef struct { lrn_case l; float *x, *y, *scale, *r; } lrn_ctx;
static double lrn_loss(void *c) {
    lrn_ctx *k = (lrn_ctx *)c;
    lrn_case l = k->l;
    lrn_forward(k->y, k->scale, k->x, l.N, l.C, l.HW, l.size, l.alpha, l.beta, l.k);
    return dot(k->y, k->r, (size_t)l.N * l.C * l.HW);
}

static void test_lrn(void) {
    char name[256];
    for (size_t t = 0; t < sizeof lrn_table / sizeof *lrn_table; t++) {
        lrn_case l = lrn_table[t];
        size_t n = (size_t)l.N * l.C * l.HW;
        float *x = tu_rand(&rng, n), *dy = tu_rand(&rng, n);
        for (size_t i = 0; i < n; i++) x[i] *= 2.0f;
        float *y = tu_zeros(n), *yr = tu_zeros(n), *s = tu_zeros(n), *sr = tu_zeros(n);
        #define LDESC(kind) snprintf(name, sizeof name, "lrn %s N=%d C=%d HW=%d size=%d alpha=%g beta=%g k=%g", \
                                     kind, l.N, l.C, l.HW, l.size, l.alpha, l.beta, l.k)
        LDESC("fwd-vs-ref");
        if (tu_selected(name)) {
            lrn_forward(y, s, x, l.N, l.C, l.HW, l.size, l.alpha, l.beta, l.k);
            lrn_forward_ref(yr, sr, x, l.N, l.C, l.HW, l.size, l.alpha, l.beta, l.k);
            check_rel(name, y, yr, n, REF_TOL);
        }
        lrn_forward(y, s, x, l.N, l.C, l.HW, l.size, l.alpha, l.beta, l.k);
        LDESC("bwd-vs-ref");
        if (tu_selected(name)) {
            float *dx = tu_zeros(n), *dxr = tu_zeros(n);
            lrn_backward(dx, dy, s, x, l.N, l.C, l.HW, l.size, l.alpha, l.beta, l.k);
            lrn_backward_ref(dxr, dy, s, x, l.N, l.C, l.HW, l.size, l.alpha, l.beta, l.k);
            check_rel(name, dx, dxr, n, REF_TOL);
            free(dx); free(dxr);
        }
        LDESC("accum");
        if (tu_selected(name)) {
            float *fill = tu_rand(&rng, n), *dx = copy_of(fill, n), *g = tu_zeros(n);
            lrn_backward(dx, dy, s, x, l.N, l.C, l.HW, l.size, l.alpha, l.beta, l.k);
            lrn_backward(g, dy, s, x, l.N, l.C, l.HW, l.size, l.alpha, l.beta, l.k);
            add_into(g, fill, n);
            check_rel(name, dx, g, n, REF_TOL);
            free(fill); free(dx); free(g);
        }
        LDESC("grad");
        if (n <= 4096 && tu_selected(name)) {
            float *dx = tu_zeros(n);
            lrn_backward(dx, dy, s, x, l.N, l.C, l.HW, l.size, l.alpha, l.beta, l.k);
            lrn_ctx c = {l, x, y, s, dy};
            report_fd(name, fd_err(lrn_loss, &c, x, n, dx, FD_EPS));
            free(dx);
        }
        #undef LDESC
        free(x); free(dy); free(y); free(yr); free(s); free(sr);
    }

    // x = 1..5 as (1,5,1,1), alpha=1 beta=0.75 k=2. size 3: windows of squares
    // [c-1,c+1] sum to 5,14,29,50,41 -> s = 2 + sum/3. size 4: [c-2,c+1] sum to
    // 5,14,30,54,50 -> s = 2 + sum/4. y = x / s^0.75; values from PyTorch 1.13.
    static const struct { int size; float want[5]; } hc[] = {
        {3, {0.377395242f, 0.482057095f, 0.475237966f, 0.445409954f, 0.634947062f}},
        {4, {0.413130701f, 0.556875348f, 0.554406822f, 0.512048602f, 0.672889888f}},
    };
    for (int t = 0; t < 2; t++) {
        snprintf(name, sizeof name, "lrn hand x=1..5 (1,5,1,1) size=%d alpha=1 beta=0.75 k=2", hc[t].size);
        if (!tu_selected(name)) continue;
        float x[5] = {1, 2, 3, 4, 5}, y[5], s[5];
        lrn_forward(y, s, x, 1, 5, 1, hc[t].size, 1.0f, 0.75f, 2.0f);
        check_hand(name, y, hc[t].want, 5, 2e-7);
    }
}

// ---- concat / add / flatten --------------------------------------------------

typedef struct { int n_in, N, HW; int cs[4]; } concat_case;
static const concat_case concat_table[] = {
    {1, 2, 5, {3}}, {2, 2, 5, {3, 4}}, {4, 3, 49, {8, 1, 5, 2}}, {3, 4, 784, {16, 24, 32}},   // last: OpenMP path
};

typedef struct { concat_case cc; float *xs[4], *y, *r; } concat_ctx;
static double concat_loss(void *c) {
    concat_ctx *k = (concat_ctx *)c;
    int Ct = 0;
    for (int i = 0; i < k->cc.n_in; i++) Ct += k->cc.cs[i];
    concat_forward(k->y, (const float *const *)k->xs, k->cc.cs, k->cc.n_in, k->cc.N, k->cc.HW);
    return dot(k->y, k->r, (size_t)k->cc.N * Ct * k->cc.HW);
}

static void test_concat(void) {
    char name[256];
    for (size_t t = 0; t < sizeof concat_table / sizeof *concat_table; t++) {
        concat_case cc = concat_table[t];
        int Ct = 0;
        for (int i = 0; i < cc.n_in; i++) Ct += cc.cs[i];
        size_t ny = (size_t)cc.N * Ct * cc.HW, nx[4];
        float *xs[4] = {0}, *dxs[4] = {0}, *fills[4] = {0};
        for (int i = 0; i < cc.n_in; i++) {
            nx[i] = (size_t)cc.N * cc.cs[i] * cc.HW;
            xs[i] = tu_rand(&rng, nx[i]);
        }
        float *y = tu_zeros(ny), *dy = tu_rand(&rng, ny);
        char cdesc[64] = "";
        for (int i = 0; i < cc.n_in; i++)
            snprintf(cdesc + strlen(cdesc), sizeof cdesc - strlen(cdesc), i ? ",%d" : "%d", cc.cs[i]);

        snprintf(name, sizeof name, "concat fwd N=%d C=[%s] HW=%d", cc.N, cdesc, cc.HW);
        if (tu_selected(name)) {
            concat_forward(y, (const float *const *)xs, cc.cs, cc.n_in, cc.N, cc.HW);
            int ok = 1, off = 0;   // element (n, off_i + c, p) of y is (n, c, p) of xs[i]
            for (int i = 0; i < cc.n_in && ok; i++) {
                for (int n = 0; n < cc.N && ok; n++)
                    for (int c = 0; c < cc.cs[i] && ok; c++)
                        for (int p = 0; p < cc.HW && ok; p++)
                            ok = y[((size_t)n * Ct + off + c) * cc.HW + p] == xs[i][((size_t)n * cc.cs[i] + c) * cc.HW + p];
                off += cc.cs[i];
            }
            tu_report(name, ok, "misplaced element in input %d", off);
        }
        snprintf(name, sizeof name, "concat accum N=%d C=[%s] HW=%d (input 1 NULL)", cc.N, cdesc, cc.HW);
        if (tu_selected(name)) {
            // dxs[1] NULL (when there is one) is skipped; the others add their slice
            for (int i = 0; i < cc.n_in; i++) { fills[i] = tu_rand(&rng, nx[i]); dxs[i] = copy_of(fills[i], nx[i]); }
            float *null_in[4] = {dxs[0], dxs[1], dxs[2], dxs[3]};
            if (cc.n_in > 1) null_in[1] = NULL;
            concat_backward(null_in, dy, cc.cs, cc.n_in, cc.N, cc.HW);
            int ok = 1, off = 0;
            for (int i = 0; i < cc.n_in && ok; i++) {
                for (int n = 0; n < cc.N && ok; n++)
                    for (int c = 0; c < cc.cs[i] && ok; c++)
                        for (int p = 0; p < cc.HW && ok; p++) {
                            size_t xi = ((size_t)n * cc.cs[i] + c) * cc.HW + p;
                            float want = fills[i][xi] + (null_in[i] ? dy[((size_t)n * Ct + off + c) * cc.HW + p] : 0.0f);
                            ok = dxs[i][xi] == want;
                        }
                off += cc.cs[i];
            }
            tu_report(name, ok, "wrong gradient slice");
            for (int i = 0; i < cc.n_in; i++) { free(dxs[i]); free(fills[i]); dxs[i] = NULL; }
        }
        snprintf(name, sizeof name, "concat grad N=%d C=[%s] HW=%d", cc.N, cdesc, cc.HW);
        if (ny <= 4096 && tu_selected(name)) {
            for (int i = 0; i < cc.n_in; i++) dxs[i] = tu_zeros(nx[i]);
            concat_backward(dxs, dy, cc.cs, cc.n_in, cc.N, cc.HW);
            concat_ctx c = {cc, {xs[0], xs[1], xs[2], xs[3]}, y, dy};
            double e = 0.0;
            for (int i = 0; i < cc.n_in; i++) e = fmax(e, fd_err(concat_loss, &c, xs[i], nx[i], dxs[i], FD_EPS));
            report_fd(name, e);
            for (int i = 0; i < cc.n_in; i++) free(dxs[i]);
        }
        for (int i = 0; i < cc.n_in; i++) free(xs[i]);
        free(y); free(dy);
    }
}

typedef struct { float *a, *b, *y, *r; size_t n; } add_ctx;
static double add_loss(void *c) {
    add_ctx *k = (add_ctx *)c;
    add_forward(k->y, k->a, k->b, k->n);
    return dot(k->y, k->r, k->n);
}
static double flatten_loss(void *c) {
    add_ctx *k = (add_ctx *)c;
    flatten_forward(k->y, k->a, k->n);
    return dot(k->y, k->r, k->n);
}

static void test_add_flatten(void) {
    static const size_t sizes[] = {1, 37, 100003};
    char name[256];
    for (size_t t = 0; t < sizeof sizes / sizeof *sizes; t++) {
        size_t n = sizes[t];
        float *a = tu_rand(&rng, n), *b = tu_rand(&rng, n), *dy = tu_rand(&rng, n), *y = tu_zeros(n);

        snprintf(name, sizeof name, "add fwd n=%zu", n);
        if (tu_selected(name)) {
            add_forward(y, a, b, n);
            int ok = 1;
            for (size_t i = 0; i < n && ok; i++) ok = y[i] == a[i] + b[i];
            tu_report(name, ok, "y != a + b");
        }
        snprintf(name, sizeof name, "add accum n=%zu (da, db, NULL, da==db)", n);
        if (tu_selected(name)) {
            float *da = copy_of(a, n), *db = copy_of(b, n), *both = copy_of(a, n);
            add_backward(da, NULL, dy, n);
            add_backward(NULL, db, dy, n);
            add_backward(both, both, dy, n);   // x + x: the same buffer gets dy twice
            int ok = 1;
            for (size_t i = 0; i < n && ok; i++)
                ok = da[i] == a[i] + dy[i] && db[i] == b[i] + dy[i] && both[i] == (a[i] + dy[i]) + dy[i];
            tu_report(name, ok, "wrong accumulation");
            free(da); free(db); free(both);
        }
        snprintf(name, sizeof name, "add grad n=%zu", n);
        if (n <= 4096 && tu_selected(name)) {
            float *da = tu_zeros(n), *db = tu_zeros(n);
            add_backward(da, db, dy, n);
            add_ctx c = {a, b, y, dy, n};
            report_fd(name, fmax(fd_err(add_loss, &c, a, n, da, FD_EPS), fd_err(add_loss, &c, b, n, db, FD_EPS)));
            free(da); free(db);
        }
        snprintf(name, sizeof name, "flatten fwd+accum n=%zu (copy and in place)", n);
        if (tu_selected(name)) {
            flatten_forward(y, a, n);
            int ok = !memcmp(y, a, n * sizeof(float));
            flatten_forward(y, y, n);
            ok = ok && !memcmp(y, a, n * sizeof(float));
            float *dx = copy_of(b, n);
            flatten_backward(dx, dy, n);
            for (size_t i = 0; i < n && ok; i++) ok = dx[i] == b[i] + dy[i];
            tu_report(name, ok, "copy or accumulation wrong");
            free(dx);
        }
        snprintf(name, sizeof name, "flatten grad n=%zu", n);
        if (n <= 4096 && tu_selected(name)) {
            float *dx = tu_zeros(n);
            flatten_backward(dx, dy, n);
            add_ctx c = {a, NULL, y, dy, n};
            report_fd(name, fd_err(flatten_loss, &c, a, n, dx, FD_EPS));
            free(dx);
        }
        free(a); free(b); free(dy); free(y);
    }
}

// ---- dropout -------------------------------------------------------------------

typedef struct { float *x, *y, *mask, *r; size_t n; float p; uint64_t seed; } drop_ctx;
static double drop_loss(void *c) {
    drop_ctx *k = (drop_ctx *)c;
    uint64_t s = k->seed;   // the same mask every time
    dropout_forward(k->y, k->mask, k->x, k->n, k->p, 1, &s);
    return dot(k->y, k->r, k->n);
}

static void test_dropout(void) {
    char name[256];
    static const float ps[] = {0.0f, 0.1f, 0.5f, 0.9f, 1.0f};
    const size_t n = 100000;
    float *x = tu_rand(&rng, n), *dy = tu_rand(&rng, n), *y = tu_zeros(n), *mask = tu_zeros(n);

    snprintf(name, sizeof name, "dropout eval n=%zu: identity, rng and mask untouched", n);
    if (tu_selected(name)) {
        uint64_t s = 12345;
        float *dx = copy_of(x, n);
        mask[0] = 7.0f;
        dropout_forward(y, mask, x, n, 0.5f, 0, &s);
        int ok = !memcmp(y, x, n * sizeof(float)) && s == 12345 && mask[0] == 7.0f;
        dropout_forward(y, NULL, x, n, 0.5f, 0, &s);
        ok = ok && !memcmp(y, x, n * sizeof(float));
        dropout_backward(dx, dy, NULL, n, 0);
        for (size_t i = 0; i < n && ok; i++) ok = dx[i] == x[i] + dy[i];
        tu_report(name, ok, "eval is not the identity");
        free(dx);
    }
    for (size_t t = 0; t < sizeof ps / sizeof *ps; t++) {
        float p = ps[t];
        snprintf(name, sizeof name, "dropout train stream n=%zu p=%g", n, p);
        if (tu_selected(name)) {
            // the mask follows tu_uniform's xorshift64* stream: u = (tu_uniform + 1)/2
            uint64_t s = 0x1234567ULL;
            tu_rng ref = {s};
            dropout_forward(y, mask, x, n, p, 1, &s);
            float keep = p < 1.0f ? 1.0f / (1.0f - p) : 0.0f;
            size_t kept = 0, bad = n;
            for (size_t i = 0; i < n; i++) {
                float u = (tu_uniform(&ref) + 1.0f) * 0.5f;
                float want = u < p ? 0.0f : keep;
                if (bad == n && (mask[i] != want || y[i] != x[i] * mask[i])) bad = i;
                kept += mask[i] != 0.0f;
            }
            double frac = (double)kept / n;
            int ok = bad == n && s == ref.s && fabs(frac - (1.0 - p)) < 0.01;
            tu_report(name, ok, "first bad %zu, kept %.4f want %.4f, rng %s", bad, frac, 1.0 - p,
                      s == ref.s ? "advanced" : "not advanced as the stream");
        }
    }
    snprintf(name, sizeof name, "dropout train two calls continue one stream, seed 0 usable");
    if (tu_selected(name)) {
        float *m2 = tu_zeros(n);
        uint64_t s1 = 99, s2 = 99, z = 0;
        dropout_forward(y, mask, x, n, 0.3f, 1, &s1);
        dropout_forward(y, m2, x, n / 3, 0.3f, 1, &s2);
        dropout_forward(y + n / 3, m2 + n / 3, x + n / 3, n - n / 3, 0.3f, 1, &s2);
        int ok = !memcmp(mask, m2, n * sizeof(float)) && s1 == s2;
        dropout_forward(y, mask, x, 1000, 0.3f, 1, &z);
        size_t kept = 0;
        for (size_t i = 0; i < 1000; i++) kept += mask[i] != 0.0f;
        ok = ok && z != 0 && kept > 600 && kept < 800;
        tu_report(name, ok, "split stream differs, or seed 0 stuck (kept %zu of 1000)", kept);
        free(m2);
    }
    snprintf(name, sizeof name, "dropout accum train p=0.5 n=%zu", n);
    if (tu_selected(name)) {
        uint64_t s = 5;
        dropout_forward(y, mask, x, n, 0.5f, 1, &s);
        float *dx = copy_of(x, n);
        dropout_backward(dx, dy, mask, n, 1);
        int ok = 1;
        for (size_t i = 0; i < n && ok; i++) ok = dx[i] == x[i] + dy[i] * mask[i];
        tu_report(name, ok, "dx != fill + dy*mask");
        free(dx);
    }
    snprintf(name, sizeof name, "dropout grad train p=0.3 n=200");
    if (tu_selected(name)) {
        drop_ctx c = {x, y, mask, dy, 200, 0.3f, 77};
        float *dx = tu_zeros(200);
        drop_loss(&c);
        dropout_backward(dx, dy, mask, 200, 1);
        report_fd(name, fd_err(drop_loss, &c, x, 200, dx, FD_EPS));
        free(dx);
    }
    free(x); free(dy); free(y); free(mask);
}

// ---- log_softmax / cross_entropy / channel_mean --------------------------------

typedef struct { int N, K; float offset; } sm_case;
static const sm_case sm_table[] = {
    {1, 1, 0}, {3, 10, 0}, {4, 7, 100.0f}, {2, 1000, -50.0f}, {64, 1000, 0},   // last: OpenMP path
};

typedef struct { float *x, *y, *r; int N, K; const int *labels; } sm_ctx;
static double logsm_loss(void *c) {
    sm_ctx *k = (sm_ctx *)c;
    log_softmax_forward(k->y, k->x, k->N, k->K);
    return dot(k->y, k->r, (size_t)k->N * k->K);
}
static double ce_loss(void *c) {
    sm_ctx *k = (sm_ctx *)c;
    return cross_entropy_forward(k->x, k->labels, k->N, k->K);
}

static void test_softmax_family(void) {
    char name[256];
    for (size_t t = 0; t < sizeof sm_table / sizeof *sm_table; t++) {
        sm_case sc = sm_table[t];
        size_t n = (size_t)sc.N * sc.K;
        float *x = tu_rand(&rng, n), *dy = tu_rand(&rng, n), *y = tu_zeros(n), *yr = tu_zeros(n);
        for (size_t i = 0; i < n; i++) x[i] = x[i] * 3.0f + sc.offset;
        int *labels = (int *)malloc(sc.N * sizeof(int));
        for (int i = 0; i < sc.N; i++) labels[i] = (i * 7 + 3) % sc.K;

        snprintf(name, sizeof name, "log_softmax fwd-vs-ref N=%d K=%d offset=%g", sc.N, sc.K, sc.offset);
        if (tu_selected(name)) {
            log_softmax_forward(y, x, sc.N, sc.K);
            log_softmax_forward_ref(yr, x, sc.N, sc.K);
            check_rel(name, y, yr, n, REF_TOL);
        }
        log_softmax_forward(y, x, sc.N, sc.K);
        snprintf(name, sizeof name, "log_softmax accum N=%d K=%d", sc.N, sc.K);
        if (tu_selected(name)) {
            float *fill = tu_rand(&rng, n), *dx = copy_of(fill, n), *g = tu_zeros(n);
            log_softmax_backward(dx, dy, y, sc.N, sc.K);
            log_softmax_backward(g, dy, y, sc.N, sc.K);
            add_into(g, fill, n);
            check_rel(name, dx, g, n, REF_TOL);
            free(fill); free(dx); free(g);
        }
        snprintf(name, sizeof name, "log_softmax grad N=%d K=%d offset=%g", sc.N, sc.K, sc.offset);
        if (n <= 4096 && tu_selected(name)) {
            float *dx = tu_zeros(n);
            log_softmax_backward(dx, dy, y, sc.N, sc.K);
            sm_ctx c = {x, y, dy, sc.N, sc.K, labels};
            report_fd(name, fd_err(logsm_loss, &c, x, n, dx, FD_EPS));
            free(dx);
        }
        snprintf(name, sizeof name, "cross_entropy vs log_softmax N=%d K=%d offset=%g", sc.N, sc.K, sc.offset);
        if (tu_selected(name)) {
            // loss = -mean_n log_softmax(x_n)[label_n], from the double reference
            log_softmax_forward_ref(yr, x, sc.N, sc.K);
            double want = 0.0, got = cross_entropy_forward(x, labels, sc.N, sc.K);
            for (int i = 0; i < sc.N; i++) want -= yr[(size_t)i * sc.K + labels[i]];
            want /= sc.N;
            double e = fabs(got - want) / fmax(fabs(want), 1e-3);
            tu_report(name, e <= 1e-5, "loss %.9g, want %.9g", got, want);
        }
        snprintf(name, sizeof name, "cross_entropy accum N=%d K=%d dloss=0.7", sc.N, sc.K);
        if (tu_selected(name)) {
            float *fill = tu_rand(&rng, n), *dx = copy_of(fill, n), *g = tu_zeros(n);
            cross_entropy_backward(dx, 0.7f, x, labels, sc.N, sc.K);
            cross_entropy_backward(g, 0.7f, x, labels, sc.N, sc.K);
            add_into(g, fill, n);
            check_rel(name, dx, g, n, REF_TOL);
            free(fill); free(dx); free(g);
        }
        snprintf(name, sizeof name, "cross_entropy grad N=%d K=%d offset=%g", sc.N, sc.K, sc.offset);
        if (n <= 4096 && tu_selected(name)) {
            float *dx = tu_zeros(n);
            cross_entropy_backward(dx, 1.0f, x, labels, sc.N, sc.K);
            sm_ctx c = {x, y, dy, sc.N, sc.K, labels};
            report_fd(name, fd_err(ce_loss, &c, x, n, dx, FD_EPS));
            free(dx);
        }
        free(x); free(dy); free(y); free(yr); free(labels);
    }

    snprintf(name, sizeof name, "log_softmax hand x=[1000,1000] and [1,2,3]");
    if (tu_selected(name)) {
        float x[5] = {1000, 1000, 1, 2, 3}, y[5];
        log_softmax_forward(y, x, 1, 2);
        log_softmax_forward(y + 2, x + 2, 1, 3);
        // log(e + e^2 + e^3) = 3.40760596
        float want[5] = {-0.693147181f, -0.693147181f, -2.40760596f, -1.40760596f, -0.407605964f};
        check_hand(name, y, want, 5, 1e-6);
    }
    snprintf(name, sizeof name, "cross_entropy hand equal logits = log K (K=10), [1,2,3]/2 = 0.40760596, [1000,0]/1 = 1000");
    if (tu_selected(name)) {
        float eq[20] = {0}, a[3] = {1, 2, 3}, b[2] = {1000, 0};
        for (int i = 0; i < 10; i++) eq[10 + i] = 5.0f;
        int l2[2] = {3, 9}, la = 2, lb = 1;
        double g1 = cross_entropy_forward(eq, l2, 2, 10);
        double g2 = cross_entropy_forward(a, &la, 1, 3);
        double g3 = cross_entropy_forward(b, &lb, 1, 2);
        int ok = fabs(g1 - log(10.0)) < 1e-12 && fabs(g2 - 0.407605964) < 1e-8 && fabs(g3 - 1000.0) < 1e-9;
        // gradient of equal logits: (1/K - onehot)/N
        float dx[20] = {0};
        cross_entropy_backward(dx, 1.0f, eq, l2, 2, 10);
        ok = ok && fabsf(dx[0] - 0.05f) < 1e-7f && fabsf(dx[3] - (0.1f - 1.0f) / 2) < 1e-7f;
        tu_report(name, ok, "losses %.12g %.12g %.12g, dx[0]=%g dx[3]=%g", g1, g2, g3, dx[0], dx[3]);
    }
    snprintf(name, sizeof name, "cross_entropy hand label out of range gives NaN");
    if (tu_selected(name)) {
        float a[3] = {1, 2, 3};
        int l = 3;
        tu_report(name, isnan(cross_entropy_forward(a, &l, 1, 3)), "loss not NaN");
    }
}

typedef struct { float *x, *f, *r; int N, C, HW, ch; } cm_ctx;
static double cm_loss(void *c) {
    cm_ctx *k = (cm_ctx *)c;
    channel_mean_forward(k->f, k->x, k->N, k->C, k->HW, k->ch);
    return dot(k->f, k->r, (size_t)k->N);
}

static void test_channel_mean(void) {
    char name[256];
    static const struct { int N, C, HW, ch; } cases[] = {{1, 1, 1, 0}, {2, 3, 5, 1}, {3, 4, 49, 3}, {2, 8, 3025, 0}};
    for (size_t t = 0; t < sizeof cases / sizeof *cases; t++) {
        int N = cases[t].N, C = cases[t].C, HW = cases[t].HW, ch = cases[t].ch;
        size_t n = (size_t)N * C * HW;
        float *x = tu_rand(&rng, n), *f = tu_zeros(N), *df = tu_rand(&rng, N);
        snprintf(name, sizeof name, "channel_mean fwd N=%d C=%d HW=%d ch=%d", N, C, HW, ch);
        if (tu_selected(name)) {
            channel_mean_forward(f, x, N, C, HW, ch);
            double e = 0.0;
            for (int i = 0; i < N; i++) {
                double s = 0.0;
                for (int p = 0; p < HW; p++) s += x[((size_t)i * C + ch) * HW + p];
                e = fmax(e, fabs(f[i] - s / HW));
            }
            tu_report(name, e <= 1e-7, "abs err %.3g", e);
        }
        snprintf(name, sizeof name, "channel_mean accum N=%d C=%d HW=%d ch=%d (other channels untouched)", N, C, HW, ch);
        if (tu_selected(name)) {
            float *fill = tu_rand(&rng, n), *dx = copy_of(fill, n);
            channel_mean_backward(dx, df, N, C, HW, ch);
            int ok = 1;
            for (int i = 0; i < N && ok; i++)
                for (int c = 0; c < C && ok; c++)
                    for (int p = 0; p < HW && ok; p++) {
                        size_t o = ((size_t)i * C + c) * HW + p;
                        ok = dx[o] == (c == ch ? fill[o] + df[i] / (float)HW : fill[o]);
                    }
            tu_report(name, ok, "wrong accumulation");
            free(fill); free(dx);
        }
        snprintf(name, sizeof name, "channel_mean grad N=%d C=%d HW=%d ch=%d", N, C, HW, ch);
        if (n <= 4096 && tu_selected(name)) {
            float *dx = tu_zeros(n);
            channel_mean_backward(dx, df, N, C, HW, ch);
            cm_ctx c = {x, f, df, N, C, HW, ch};
            report_fd(name, fd_err(cm_loss, &c, x, n, dx, FD_EPS));
            free(dx);
        }
        free(x); free(f); free(df);
    }
}

int main(int argc, char **argv) {
    tu_init(argc, argv);
    test_relu();

    pool_case sweep[256];
    for (int i = 0; i < N_POOL_TABLE; i++) maxpool_case(&pool_table[i], 1);
    int ns = pool_sweep(sweep, 1);
    for (int i = 0; i < ns; i++) maxpool_case(&sweep[i], 0);
    test_maxpool_hand();

    for (int i = 0; i < N_POOL_TABLE; i++) avgpool_case(&pool_table[i], 1);
    ns = pool_sweep(sweep, 0);
    for (int i = 0; i < ns; i++) avgpool_case(&sweep[i], 0);
    test_avgpool_hand();

    test_adaptive();
    test_batchnorm();
    test_lrn();
    test_concat();
    test_add_flatten();
    test_dropout();
    test_softmax_family();
    test_channel_mean();
    return tu_finish();
}
