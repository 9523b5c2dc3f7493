// test_ops_families.c: the ops of the mobile and modern CNN families (issue 20):
// hardtanh (relu6), hardswish, hardsigmoid, sigmoid, silu, gelu, mul with
// channel broadcasting, layernorm2d, channel_shuffle, channel_slice; and the
// direct depthwise conv kernel (ops/conv2d_depthwise.c) against conv2d_*_ref.
//
// Each op is wrapped as a function of one flat vector v (its input and, where it
// has them, its second operand or parameters, concatenated) so that one harness
// runs every kind of case (protocol in testutil.h; argv[1] filters):
//   fwd-vs-ref / bwd-vs-ref  fast path against the plain *_ref twin, rel err <= 1e-6
//                            (1e-5 for the backward of mul and layernorm2d: reductions),
//                            on a size large enough for the parallel paths
//   grad                     central finite differences of L = sum(y * r) in double
//                            around float inputs (eps 1e-3), relative to max |ana|:
//                            <= 1e-2; inputs keep 0.05 away from the kinks (+-3, 0, 6)
//   accum                    backward adds into pre-filled d-buffers
//   hand                     values worked out by hand (and checked against
//                            PyTorch 1.13 while writing them), regions included
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "ops.h"
#include "testutil.h"

static tu_rng rng = {0x9E3779B97F4A7C15ULL};

// An op as y = f(v): n_v inputs, n_y outputs; bwd: dv += J^T dy.
typedef struct op_case {
    const char *name;
    int N, C, HW;
    size_t n_v, n_y;
    void (*fwd)(const struct op_case *o, float *y, const float *v, int ref);
    void (*bwd)(const struct op_case *o, float *dv, const float *dy, const float *v, const float *y, int ref);
    int extra;   // op-specific (groups, gN/gHW mode, slice start)
    double bwd_tol;   // 0: 1e-6; reductions (mul's dg, layernorm's dw) sum 460-1380 float terms in
                      // another order than the reference: 1e-5
} op_case;

static uint8_t *region_scratch(size_t n) {
    static uint8_t *buf; static size_t cap;
    if (n > cap) { free(buf); buf = malloc(n); cap = n; }
    return buf;
}

// ---- wrappers ------------------------------------------------------------------------
#define SZ(o) ((size_t)(o)->N * (o)->C * (o)->HW)
static void relu6_f(const op_case *o, float *y, const float *v, int ref) {
    (ref ? hardtanh_forward_ref : hardtanh_forward)(y, v, SZ(o), 0.0f, 6.0f);
}
static void relu6_b(const op_case *o, float *dv, const float *dy, const float *v, const float *y, int ref) {
    (void)v; (ref ? hardtanh_backward_ref : hardtanh_backward)(dv, dy, y, SZ(o), 0.0f, 6.0f);
}
static void hswish_f(const op_case *o, float *y, const float *v, int ref) {
    (ref ? hardswish_forward_ref : hardswish_forward)(y, region_scratch(SZ(o)), v, SZ(o));
}
static void hswish_b(const op_case *o, float *dv, const float *dy, const float *v, const float *y, int ref) {
    float *t = malloc(SZ(o) * sizeof(float));
    hardswish_forward_ref(t, region_scratch(SZ(o)), v, SZ(o));   // the forward's regions
    (void)y; (ref ? hardswish_backward_ref : hardswish_backward)(dv, dy, region_scratch(SZ(o)), v, SZ(o));
    free(t);
}
static void hsig_f(const op_case *o, float *y, const float *v, int ref) {
    (ref ? hardsigmoid_forward_ref : hardsigmoid_forward)(y, region_scratch(SZ(o)), v, SZ(o));
}
static void hsig_b(const op_case *o, float *dv, const float *dy, const float *v, const float *y, int ref) {
    float *t = malloc(SZ(o) * sizeof(float));
    hardsigmoid_forward_ref(t, region_scratch(SZ(o)), v, SZ(o));
    (void)y; (ref ? hardsigmoid_backward_ref : hardsigmoid_backward)(dv, dy, region_scratch(SZ(o)), SZ(o));
    free(t);
}
static void sig_f(const op_case *o, float *y, const float *v, int ref) { (ref ? sigmoid_forward_ref : sigmoid_forward)(y, v, SZ(o)); }
static void sig_b(const op_case *o, float *dv, const float *dy, const float *v, const float *y, int ref) {
    (void)v; (ref ? sigmoid_backward_ref : sigmoid_backward)(dv, dy, y, SZ(o));
}
static void silu_f(const op_case *o, float *y, const float *v, int ref) { (ref ? silu_forward_ref : silu_forward)(y, v, SZ(o)); }
static void silu_b(const op_case *o, float *dv, const float *dy, const float *v, const float *y, int ref) {
    (void)y; (ref ? silu_backward_ref : silu_backward)(dv, dy, v, SZ(o));
}
static void gelu_f(const op_case *o, float *y, const float *v, int ref) { (ref ? gelu_forward_ref : gelu_forward)(y, v, SZ(o)); }
static void gelu_b(const op_case *o, float *dv, const float *dy, const float *v, const float *y, int ref) {
    (void)y; (ref ? gelu_backward_ref : gelu_backward)(dv, dy, v, SZ(o));
}
// mul: v = [x (N,C,HW), g (gN,C,gHW)]; extra: 0 gate (N,C,1), 1 scale (1,C,1), 2 full (N,C,HW)
static void mul_shape(const op_case *o, int *gN, int *gHW) {
    *gN = o->extra == 1 ? 1 : o->N;
    *gHW = o->extra == 2 ? o->HW : 1;
}
static void mul_f(const op_case *o, float *y, const float *v, int ref) {
    int gN, gHW; mul_shape(o, &gN, &gHW);
    (ref ? mul_forward_ref : mul_forward)(y, v, v + SZ(o), o->N, o->C, o->HW, gN, gHW);
}
static void mul_b(const op_case *o, float *dv, const float *dy, const float *v, const float *y, int ref) {
    int gN, gHW; mul_shape(o, &gN, &gHW);
    (void)y; (ref ? mul_backward_ref : mul_backward)(dv, dv + SZ(o), dy, v, v + SZ(o), o->N, o->C, o->HW, gN, gHW);
}
// layernorm2d: v = [x (N,C,HW), w (C), b (C)]
static void ln_f(const op_case *o, float *y, const float *v, int ref) {
    (ref ? layernorm2d_forward_ref : layernorm2d_forward)(y, v, v + SZ(o), v + SZ(o) + o->C, 1e-6f, o->N, o->C, o->HW);
}
static void ln_b(const op_case *o, float *dv, const float *dy, const float *v, const float *y, int ref) {
    (void)y;
    (ref ? layernorm2d_backward_ref : layernorm2d_backward)(dv, dv + SZ(o), dv + SZ(o) + o->C, dy, v, v + SZ(o), 1e-6f,
                                                            o->N, o->C, o->HW);
}
static void shuf_f(const op_case *o, float *y, const float *v, int ref) {
    (ref ? channel_shuffle_forward_ref : channel_shuffle_forward)(y, v, o->N, o->C, o->HW, o->extra);
}
static void shuf_b(const op_case *o, float *dv, const float *dy, const float *v, const float *y, int ref) {
    (void)v; (void)y; (ref ? channel_shuffle_backward_ref : channel_shuffle_backward)(dv, dy, o->N, o->C, o->HW, o->extra);
}
// slice: channels [extra, C) of a 2C... input: v is (N, C + extra, HW), y (N, C, HW)
static void slice_f(const op_case *o, float *y, const float *v, int ref) {
    (ref ? channel_slice_forward_ref : channel_slice_forward)(y, v, o->N, o->C + o->extra, o->HW, o->extra, o->C);
}
static void slice_b(const op_case *o, float *dv, const float *dy, const float *v, const float *y, int ref) {
    (void)v; (void)y;
    (ref ? channel_slice_backward_ref : channel_slice_backward)(dv, dy, o->N, o->C + o->extra, o->HW, o->extra, o->C);
}

// Inputs in [-lo_hi, lo_hi] kept 0.05 from the kinks of the piecewise ops.
static float *inputs(size_t n, float scale) {
    float *v = tu_rand(&rng, n);
    for (size_t i = 0; i < n; i++) {
        v[i] *= scale;
        const float kinks[] = {-3.0f, 0.0f, 3.0f, 6.0f};
        for (int k = 0; k < 4; k++)
            if (fabsf(v[i] - kinks[k]) < 0.05f) v[i] = kinks[k] + (v[i] < kinks[k] ? -0.05f : 0.05f);
    }
    return v;
}

static void run_case(op_case *o, float scale) {
    char name[200];
    float *v = inputs(o->n_v, scale), *r = tu_rand(&rng, o->n_y);
    float *y = tu_zeros(o->n_y), *yr = tu_zeros(o->n_y);
    float *dv = tu_zeros(o->n_v), *dvr = tu_zeros(o->n_v);
    o->fwd(o, y, v, 0);
    o->fwd(o, yr, v, 1);
    snprintf(name, sizeof name, "%s fwd-vs-ref N=%d C=%d HW=%d", o->name, o->N, o->C, o->HW);
    if (tu_selected(name)) { double e = tu_rel_err(y, yr, o->n_y, 1e-6); tu_report(name, e <= 1e-6, "rel err %.3g", e); }
    o->bwd(o, dv, r, v, y, 0);
    o->bwd(o, dvr, r, v, yr, 1);
    snprintf(name, sizeof name, "%s bwd-vs-ref N=%d C=%d HW=%d", o->name, o->N, o->C, o->HW);
    if (tu_selected(name)) {
        double e = tu_rel_err(dv, dvr, o->n_v, 1e-6), tol = o->bwd_tol ? o->bwd_tol : 1e-6;
        tu_report(name, e <= tol, "rel err %.3g > %.3g", e, tol);
    }
    // accum: into a pre-filled buffer
    snprintf(name, sizeof name, "%s accum N=%d C=%d HW=%d", o->name, o->N, o->C, o->HW);
    if (tu_selected(name)) {
        float *fill = tu_rand(&rng, o->n_v), *acc = malloc(o->n_v * sizeof(float));
        memcpy(acc, fill, o->n_v * sizeof(float));
        o->bwd(o, acc, r, v, y, 0);
        for (size_t i = 0; i < o->n_v; i++) fill[i] += dv[i];
        double e = tu_rel_err(acc, fill, o->n_v, 1e-6);
        tu_report(name, e <= 1e-6, "rel err %.3g", e);
        free(fill); free(acc);
    }
    // finite differences, on at most 64 coordinates spread over v
    snprintf(name, sizeof name, "%s grad N=%d C=%d HW=%d", o->name, o->N, o->C, o->HW);
    if (tu_selected(name)) {
        double maxana = 1e-3, maxerr = 0;
        float *yp = tu_zeros(o->n_y);
        size_t step = o->n_v > 64 ? o->n_v / 64 : 1;
        for (size_t i = 0; i < o->n_v; i += step) {
            const float eps = 1e-3f;
            float keep = v[i];
            double lp = 0, lm = 0;
            v[i] = keep + eps; o->fwd(o, yp, v, 1);
            for (size_t k = 0; k < o->n_y; k++) lp += (double)yp[k] * r[k];
            v[i] = keep - eps; o->fwd(o, yp, v, 1);
            for (size_t k = 0; k < o->n_y; k++) lm += (double)yp[k] * r[k];
            v[i] = keep;
            double num = (lp - lm) / ((double)(keep + eps) - (double)(keep - eps));
            if (fabs(dvr[i]) > maxana) maxana = fabs(dvr[i]);
            if (fabs(num - dvr[i]) > maxerr) maxerr = fabs(num - dvr[i]);
        }
        for (size_t i = 0; i < o->n_v; i++) if (fabs(dvr[i]) > maxana) maxana = fabs(dvr[i]);
        tu_report(name, maxerr / maxana <= 1e-2, "max|num-ana|/max|ana| = %.3g", maxerr / maxana);
        free(yp);
    }
    free(v); free(r); free(y); free(yr); free(dv); free(dvr);
}

static void both_sizes(op_case o, size_t nv_small_extra, size_t nv_big_extra, float scale) {
    // small: FD; big (> 65536 elements): the parallel paths against the references
    op_case s = o, b = o;
    s.N = 2; s.C = 6; s.HW = 5;
    b.N = 3; b.C = 48; b.HW = 20 * 23;
    size_t sn = SZ(&s), bn = SZ(&b);
    s.n_y = sn; b.n_y = bn;
    s.n_v = sn + nv_small_extra; b.n_v = bn + nv_big_extra;
    if (o.fwd == slice_f) { s.n_v = (size_t)s.N * (s.C + o.extra) * s.HW; b.n_v = (size_t)b.N * (b.C + o.extra) * b.HW; }
    run_case(&s, scale);
    run_case(&b, scale);
}

// ---- hand cases ----------------------------------------------------------------------
static void check_vals(const char *name, const float *got, const float *want, int n, double tol) {
    if (!tu_selected(name)) return;
    for (int i = 0; i < n; i++)
        if (!(fabs((double)got[i] - want[i]) <= tol)) { tu_report(name, 0, "[%d] = %.9g, want %.9g", i, got[i], want[i]); return; }
    tu_report(name, 1, "");
}
static void check_bytes(const char *name, const uint8_t *got, const uint8_t *want, int n) {
    if (!tu_selected(name)) return;
    for (int i = 0; i < n; i++)
        if (got[i] != want[i]) { tu_report(name, 0, "[%d] = %d, want %d", i, got[i], want[i]); return; }
    tu_report(name, 1, "");
}

static void hand_cases(void) {
    // the kinks themselves, where PyTorch's backward conventions decide
    const float x[7] = {-4.0f, -3.0f, -1.5f, 0.0f, 3.0f, 6.0f, 7.0f};
    float y[7], dx[7];
    const float ones[7] = {1, 1, 1, 1, 1, 1, 1};
    uint8_t reg[7];
    hardtanh_forward(y, x, 7, 0.0f, 6.0f);
    check_vals("relu6 hand forward", y, (const float[]){0, 0, 0, 0, 3, 6, 6}, 7, 0);
    memset(dx, 0, sizeof dx);
    hardtanh_backward(dx, ones, y, 7, 0.0f, 6.0f);   // PyTorch: 0 at x <= 0 and x >= 6
    check_vals("relu6 hand backward (0 at both bounds)", dx, (const float[]){0, 0, 0, 0, 1, 0, 0}, 7, 0);
    hardtanh_decisions(reg, y, 7, 0.0f, 6.0f);
    check_bytes("relu6 hand regions", reg, (const uint8_t[]){0, 0, 0, 0, 1, 2, 2}, 7);
    hardswish_forward(y, reg, x, 7);
    check_vals("hardswish hand forward", y, (const float[]){0, 0, -0.375f, 0, 3, 6, 7}, 7, 1e-7);
    check_bytes("hardswish hand regions", reg, (const uint8_t[]){0, 1, 1, 1, 1, 2, 2}, 7);
    memset(dx, 0, sizeof dx);
    hardswish_backward(dx, ones, reg, x, 7);          // PyTorch: x/3 + 1/2 on [-3, 3]
    check_vals("hardswish hand backward", dx, (const float[]){0, -0.5f, 0, 0.5f, 1.5f, 1, 1}, 7, 1e-7);
    hardsigmoid_forward(y, reg, x, 7);
    check_vals("hardsigmoid hand forward", y, (const float[]){0, 0, 0.25f, 0.5f, 1, 1, 1}, 7, 1e-7);
    check_bytes("hardsigmoid hand regions", reg, (const uint8_t[]){0, 0, 1, 1, 2, 2, 2}, 7);
    memset(dx, 0, sizeof dx);
    hardsigmoid_backward(dx, ones, reg, 7);           // PyTorch: 1/6 on (-3, 3) only
    check_vals("hardsigmoid hand backward", dx, (const float[]){0, 0, 1.0f / 6, 1.0f / 6, 0, 0, 0}, 7, 1e-7);
    // gelu(1) = 0.8413447, silu(1) = 0.7310586, sigmoid(0) = 0.5 (torch 1.13)
    float g1, s1, sg;
    gelu_forward(&g1, (const float[]){1.0f}, 1);
    silu_forward(&s1, (const float[]){1.0f}, 1);
    sigmoid_forward(&sg, (const float[]){0.0f}, 1);
    check_vals("gelu silu sigmoid hand values", (const float[]){g1, s1, sg}, (const float[]){0.8413447f, 0.7310586f, 0.5f}, 3, 1e-6);
    // shuffle of 6 channels, 2 groups: 0 3 1 4 2 5
    float cx[6] = {0, 1, 2, 3, 4, 5}, cy[6];
    channel_shuffle_forward(cy, cx, 1, 6, 1, 2);
    check_vals("channel_shuffle hand (6 channels, 2 groups)", cy, (const float[]){0, 3, 1, 4, 2, 5}, 6, 0);
    // layernorm over 2 channels: x = (1, 3) -> (-1, 1) * w + b
    float lx[2] = {1, 3}, ly[2];
    layernorm2d_forward(ly, lx, (const float[]){2, 1}, (const float[]){0, 1}, 0.0f + 1e-12f, 1, 2, 1);
    check_vals("layernorm2d hand", ly, (const float[]){-2, 2}, 2, 1e-5);
}

// The direct depthwise kernel against conv2d's plain reference (itself held to
// finite differences in test_ops_conv.c), on the geometries the families use.
// Each case on the AVX2 loops (where the CPU has them) and on the portable ones.
static void depthwise_case_on(int N, int C, int H, int k, int s, int p, int dil, int generic);
static void depthwise_case(int N, int C, int H, int k, int s, int p, int dil) {
    depthwise_case_on(N, C, H, k, s, p, dil, 0);
    depthwise_case_on(N, C, H, k, s, p, dil, 1);
}
static void depthwise_case_on(int N, int C, int H, int k, int s, int p, int dil, int generic) {
    conv2d_dims d = {.N = N, .C = C, .H = H, .W = H + 3, .Co = C, .kh = k, .kw = k, .sh = s, .sw = s,
                     .ph = p, .pw = p, .dh = dil, .dw = dil, .groups = C};
    conv2d_dims_finish(&d);
    char name[160];
    snprintf(name, sizeof name, "conv2d depthwise direct (%s loops) N=%d C=%d H=%d W=%d k=%d s=%d p=%d d=%d",
             generic ? "portable" : "default", N, C, H, H + 3, k, s, p, dil);
    if (!tu_selected(name)) return;
    setenv("VISCNN_GENERIC", generic ? "1" : "0", 1);
    size_t nx = (size_t)N * C * d.H * d.W, ny = (size_t)N * C * d.Ho * d.Wo, nw = (size_t)C * k * k;
    float *x = tu_rand(&rng, nx), *w = tu_rand(&rng, nw), *b = tu_rand(&rng, C), *dy = tu_rand(&rng, ny);
    float *y = tu_zeros(ny), *yr = tu_zeros(ny), *dx = tu_rand(&rng, nx), *dxr = malloc(nx * sizeof(float));
    float *dw = tu_rand(&rng, nw), *dwr = malloc(nw * sizeof(float)), *db = tu_zeros(C), *dbr = tu_zeros(C);
    memcpy(dxr, dx, nx * sizeof(float));   // pre-filled: the backward must add
    memcpy(dwr, dw, nw * sizeof(float));
    int applies = conv2d_depthwise_applies(&d);
    conv2d_forward(y, x, w, b, &d);
    conv2d_forward_ref(yr, x, w, b, &d);
    conv2d_backward(dx, dw, db, dy, x, w, &d);
    conv2d_backward_ref(dxr, dwr, dbr, dy, x, w, &d);
    double ey = tu_rel_err(y, yr, ny, 1e-6), ex = tu_rel_err(dx, dxr, nx, 1e-6), ew = tu_rel_err(dw, dwr, nw, 1e-6);
    tu_report(name, (applies || getenv("VISCNN_NO_DEPTHWISE")) && ey <= 1e-6 && ex <= 1e-6 && ew <= 1e-5,
              "applies %d, rel err y %.3g dx %.3g dw %.3g", applies, ey, ex, ew);
    unsetenv("VISCNN_GENERIC");
    free(x); free(w); free(b); free(dy); free(y); free(yr); free(dx); free(dxr); free(dw); free(dwr); free(db); free(dbr);
}

int main(int argc, char **argv) {
    tu_init(argc, argv);
    hand_cases();
    depthwise_case(2, 5, 9, 3, 1, 1, 1);
    depthwise_case(2, 5, 9, 3, 2, 1, 1);
    depthwise_case(1, 4, 12, 5, 2, 2, 1);
    depthwise_case(2, 3, 11, 7, 1, 3, 1);
    depthwise_case(1, 3, 10, 3, 1, 2, 2);
    depthwise_case(3, 64, 28, 3, 1, 1, 1);   // large enough for the threads
    depthwise_case(1, 6, 4, 3, 1, 0, 1);     // no padding, 2x5 output
    depthwise_case(1, 2, 3, 5, 2, 2, 1);     // kernel larger than the map
    depthwise_case(2, 7, 13, 3, 2, 1, 1);    // stride 2, odd W (16): column phases of unequal length
    depthwise_case(3, 5, 14, 5, 2, 2, 1);    // 5x5 stride 2, even-sized map, batch 3 (efficientnet)
    depthwise_case(2, 4, 15, 3, 2, 2, 2);    // stride 2 with dilation 2
    depthwise_case(1, 3, 17, 3, 3, 1, 1);    // stride 3
    depthwise_case(2, 16, 57, 3, 2, 1, 1);   // stride 2 over a mobilenet-sized row (60 columns)
    depthwise_case(1, 5, 9, 3, 2, 0, 1);     // stride 2, no padding
    both_sizes((op_case){"relu6", .fwd = relu6_f, .bwd = relu6_b}, 0, 0, 8.0f);
    both_sizes((op_case){"hardswish", .fwd = hswish_f, .bwd = hswish_b}, 0, 0, 5.0f);
    both_sizes((op_case){"hardsigmoid", .fwd = hsig_f, .bwd = hsig_b}, 0, 0, 5.0f);
    both_sizes((op_case){"sigmoid", .fwd = sig_f, .bwd = sig_b}, 0, 0, 5.0f);
    both_sizes((op_case){"silu", .fwd = silu_f, .bwd = silu_b}, 0, 0, 5.0f);
    both_sizes((op_case){"gelu", .fwd = gelu_f, .bwd = gelu_b}, 0, 0, 4.0f);
    both_sizes((op_case){"mul gate (N,C,1,1)", .fwd = mul_f, .bwd = mul_b, .extra = 0, .bwd_tol = 1e-5}, 2 * 6, 3 * 48, 1.0f);
    both_sizes((op_case){"mul scale (C)", .fwd = mul_f, .bwd = mul_b, .extra = 1, .bwd_tol = 1e-5}, 6, 48, 1.0f);
    both_sizes((op_case){"mul same-shape", .fwd = mul_f, .bwd = mul_b, .extra = 2}, 2 * 6 * 5, 3 * 48 * 460, 1.0f);
    both_sizes((op_case){"layernorm2d", .fwd = ln_f, .bwd = ln_b, .bwd_tol = 1e-5}, 2 * 6, 2 * 48, 2.0f);
    both_sizes((op_case){"channel_shuffle g=2", .fwd = shuf_f, .bwd = shuf_b, .extra = 2}, 0, 0, 1.0f);
    both_sizes((op_case){"channel_shuffle g=3", .fwd = shuf_f, .bwd = shuf_b, .extra = 3}, 0, 0, 1.0f);
    both_sizes((op_case){"channel_slice start=4", .fwd = slice_f, .bwd = slice_b, .extra = 4}, 0, 0, 1.0f);
    return tu_finish();
}
