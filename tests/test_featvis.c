// test_featvis.c: feature visualisation's pieces against references and
// finite differences — the Fourier parameterisation (vs a direct sum over the
// spectrum, and its gradient), each transform's bilinear sampling (identity,
// adjoint, finite differences), the whole step's gradient on the default
// model for node and edge objectives, and reproducibility.
#include <float.h>
#include "testutil.h"
#include "viscnn_internal.h"
#include "../viscnn/featvis.h"

static float frand(uint64_t *s) { return (float)(fv_rng_uniform(s) * 2 - 1); }

static void test_param_ref(int C, int h, int w) {
    char name[128];
    snprintf(name, sizeof name, "fourier param fwd-vs-ref n=2 C=%d h=%d w=%d", C, h, w);
    if (!tu_selected(name)) return;
    fv_param P;
    param_init(&P, 2, C, h, w);
    size_t np = param_count(&P), nu = (size_t)2 * C * h * w;
    float *par = malloc(np * 4), *u = malloc(nu * 4), *ur = malloc(nu * 4);
    uint64_t s = 1;
    for (size_t k = 0; k < np; k++) par[k] = frand(&s);
    param_forward(&P, par, u);
    param_forward_ref(&P, par, ur);
    double worst = 0;
    for (size_t k = 0; k < nu; k++) worst = fmax(worst, fabs(u[k] - ur[k]));
    tu_report(name, worst < 1e-5, "max |fft - ref| = %g", worst);
    free(par); free(u); free(ur);
    param_free(&P);
}

// loss = sum R*u; d/dpar by param_backward vs central differences of the
// double-precision reference, on every parameter.
static void test_param_grad(int C, int h, int w) {
    char name[128];
    snprintf(name, sizeof name, "fourier param gradient (1/f, %s, sigmoid) vs finite differences C=%d h=%d w=%d",
             C == 3 ? "colour decorrelation" : "gray", C, h, w);
    if (!tu_selected(name)) return;
    fv_param P;
    param_init(&P, 1, C, h, w);
    size_t np = param_count(&P), nu = (size_t)C * h * w;
    float *par = malloc(np * 4), *u = malloc(nu * 4), *R = malloc(nu * 4), *g = malloc(np * 4);
    uint64_t s = 7;
    for (size_t k = 0; k < np; k++) par[k] = 0.3f * frand(&s);
    for (size_t k = 0; k < nu; k++) R[k] = frand(&s);
    param_forward(&P, par, u);
    float *du = malloc(nu * 4);
    for (size_t k = 0; k < nu; k++) du[k] = R[k];
    param_backward(&P, u, du, g);
    double worst = 0, gmax = 0;
    const float eps = 1e-2f;
    for (size_t k = 0; k < np; k++) {
        float keep = par[k];
        double lp = 0, lm = 0;
        par[k] = keep + eps; param_forward_ref(&P, par, u);
        for (size_t q = 0; q < nu; q++) lp += R[q] * u[q];
        par[k] = keep - eps; param_forward_ref(&P, par, u);
        for (size_t q = 0; q < nu; q++) lm += R[q] * u[q];
        par[k] = keep;
        double fd = (lp - lm) / (2 * eps);
        worst = fmax(worst, fabs(fd - g[k]));
        gmax = fmax(gmax, fabs(g[k]));
    }
    tu_report(name, worst < 2e-3 * gmax + 1e-5, "max |analytic - fd| = %g (max |grad| %g)", worst, gmax);
    free(par); free(u); free(R); free(g); free(du);
    param_free(&P);
}

// The sampling through A: identity copies exactly; backward is the adjoint
// (<S u, R> = <u, S^T R>) and matches finite differences in u.
static void test_sampler(const char *what, int C, int Sh, int Sw, int H, int W, const fv_affine *A) {
    char name[160];
    snprintf(name, sizeof name, "transform %s: bilinear sampling backward vs finite differences and adjoint C=%d canvas %dx%d -> %dx%d",
             what, C, Sh, Sw, H, W);
    if (!tu_selected(name)) return;
    size_t nu = (size_t)C * Sh * Sw, no = (size_t)C * H * W;
    float *u = malloc(nu * 4), *o = malloc(no * 4), *R = malloc(no * 4), *du = calloc(nu, 4);
    uint64_t s = 3;
    for (size_t k = 0; k < nu; k++) u[k] = frand(&s);
    for (size_t k = 0; k < no; k++) R[k] = frand(&s);
    sample_forward(o, H, W, u, C, Sh, Sw, A, 0.5f);
    sample_backward(du, R, H, W, C, Sh, Sw, A);
    double worst = 0, gmax = 0;
    const float eps = 1e-2f;
    for (size_t k = 0; k < nu; k++) {
        float keep = u[k];
        double lp = 0, lm = 0;
        u[k] = keep + eps; sample_forward(o, H, W, u, C, Sh, Sw, A, 0.5f);
        for (size_t q = 0; q < no; q++) lp += (double)R[q] * o[q];
        u[k] = keep - eps; sample_forward(o, H, W, u, C, Sh, Sw, A, 0.5f);
        for (size_t q = 0; q < no; q++) lm += (double)R[q] * o[q];
        u[k] = keep;
        worst = fmax(worst, fabs((lp - lm) / (2 * eps) - du[k]));
        gmax = fmax(gmax, fabs(du[k]));
    }
    // adjoint with fill 0 (the fill is a constant, outside the linear part)
    sample_forward(o, H, W, u, C, Sh, Sw, A, 0.0f);
    double a = 0, b = 0;
    for (size_t q = 0; q < no; q++) a += (double)o[q] * R[q];
    for (size_t k = 0; k < nu; k++) b += (double)u[k] * du[k];
    tu_report(name, worst < 1e-3 * (gmax + 1) && fabs(a - b) < 1e-3 * (fabs(a) + 1) && gmax > 0,
              "max |analytic - fd| = %g, <Su,R> %g vs <u,S'R> %g", worst, a, b);
    free(u); free(o); free(R); free(du);
}

// param_clamp with a large T is the identity on the picture; with T = 6.5
// every 8-bit level stays and every pre-sigmoid value is within [-6.5, 6.5].
static void test_clamp(int C) {
    char name[128];
    snprintf(name, sizeof name, "fourier param clamp: round trip exact, T=6.5 keeps the 8-bit picture and bounds the logits C=%d", C);
    if (!tu_selected(name)) return;
    fv_param P;
    param_init(&P, 2, C, 10, 12);
    size_t np = param_count(&P), nu = (size_t)2 * C * 10 * 12;
    float *par = malloc(np * 4), *u0 = malloc(nu * 4), *u1 = malloc(nu * 4);
    uint64_t s = 21;
    for (size_t k = 0; k < np; k++) par[k] = 20 * frand(&s);
    param_forward(&P, par, u0);
    param_clamp(&P, par, 1e30f);
    param_forward(&P, par, u1);
    double rt = 0;
    for (size_t k = 0; k < nu; k++) rt = fmax(rt, fabs(u0[k] - u1[k]));
    param_clamp(&P, par, 6.5f);
    param_forward(&P, par, u1);
    int lv = 0, out = 0;
    for (size_t k = 0; k < nu; k++) {
        lv += lrintf(u0[k] * 255) != lrintf(u1[k] * 255);
        out += u1[k] > 1 / (1 + expf(-6.5f)) + 1e-4f || u1[k] < 1 / (1 + expf(6.5f)) - 1e-4f;
    }
    tu_report(name, rt < 1e-4 && lv == 0 && out == 0, "round trip %g, %d levels changed, %d beyond the clamp", rt, lv, out);
    free(par); free(u0); free(u1);
    param_free(&P);
}

static void test_identity(void) {
    const char *name = "transform identity: the canvas centred in the input, copied exactly, grey around it";
    if (!tu_selected(name)) return;
    int C = 3, Sh = 5, Sw = 6, H = 9, W = 9;
    float u[3 * 5 * 6], o[3 * 9 * 9];
    uint64_t s = 5;
    for (int k = 0; k < C * Sh * Sw; k++) u[k] = frand(&s);
    fv_affine A;
    affine_identity(&A);
    sample_forward(o, H, W, u, C, Sh, Sw, &A, 0.5f);
    int bad = 0, oy = (H - Sh) / 2, ox = (W - Sw) / 2;
    for (int c = 0; c < C; c++)
        for (int y = 0; y < H; y++)
            for (int x = 0; x < W; x++) {
                int in = y >= oy && y < oy + Sh && x >= ox && x < ox + Sw;
                float want = in ? u[(c * Sh + y - oy) * Sw + x - ox] : 0.5f;
                bad += o[(c * H + y) * W + x] != want;
            }
    tu_report(name, !bad, "%d pixels differ", bad);
}

// The whole step: params -> pixels -> transform -> normalise -> model to the
// target -> objective, and back. Central differences of the loss in a few of
// the largest-gradient parameters.
static void test_chain(const vc_model *m, const char *spec, int edge, int neuron, int negative) {
    char name[200];
    snprintf(name, sizeof name, "featvis step gradient vs finite differences: %s %s, %s%s, batch 2 with a random transform",
             edge ? "edge" : "node", spec, neuron ? "centre neuron" : "channel mean", negative ? ", negative" : "");
    if (!tu_selected(name)) return;
    vc_error err = {{0}};
    vc_featvis_target t[2];
    vc_featvis_opts o;
    vc_featvis_defaults(&o);
    o.neuron = neuron;
    o.negative = negative;
    if (vc_featvis_parse(&t[0], m, spec, edge, &err)) { tu_report(name, 0, "%s", err.msg); return; }
    t[1] = t[0];
    t[1].out = (t[0].out + 1) % m->nodes[t[0].layer].c;
    fv_state st;
    if (featvis_state_init(&st, m, t, 2, &o, &err)) { tu_report(name, 0, "%s", err.msg); return; }
    uint64_t s = 11;
    for (int b = 0; b < 2; b++) param_randomize(&st.P, st.par, b, 100 + b, 0.5f);
    fv_affine A[2];
    affine_random(&A[0], st.Sh, st.Sw, &s);
    affine_random(&A[1], st.Sh, st.Sw, &s);
    float obj[2];
    if (featvis_state_grad(&st, A, obj, &err)) { tu_report(name, 0, "%s", err.msg); featvis_state_free(&st); return; }
    float *g = malloc(st.np * 4);
    memcpy(g, st.dpar, st.np * 4);
    // the 12 largest gradients
    int pick[12];
    for (int q = 0; q < 12; q++) {
        pick[q] = -1;
        for (size_t k = 0; k < st.np; k++) {
            int used = 0;
            for (int r = 0; r < q; r++) used |= pick[r] == (int)k;
            if (!used && (pick[q] < 0 || fabsf(g[k]) > fabsf(g[pick[q]]))) pick[q] = (int)k;
        }
    }
    // Central differences of a float objective: besides 3 % of the
    // gradient, allow for the objective's rounding (8 float ulps of its
    // magnitude over 2 eps), which no eps removes: small eps amplifies it,
    // large eps crosses ReLU kinks. (Different compilers round differently;
    // clang's SAN build needs the allowance where gcc's release build did not.)
    double worst = 0, worst_ratio = 0;
    int sign = negative ? -1 : 1;
    for (int q = 0; q < 12; q++) {
        int k = pick[q];
        float keep = st.par[k], eps = 1e-3f;
        double l[2];
        for (int side = 0; side < 2; side++) {
            st.par[k] = keep + (side ? -eps : eps);
            featvis_state_grad(&st, A, obj, &err);
            l[side] = -sign * ((double)obj[0] + obj[1]);
        }
        st.par[k] = keep;
        double fd = (l[0] - l[1]) / (2 * eps);
        double allowed = 0.03 * fabs(g[k]) + 8 * FLT_EPSILON * (fabs(l[0]) + fabs(l[1])) / (2 * eps);
        worst = fmax(worst, fabs(fd - g[k]) / (fabs(g[k]) + 1e-6));
        worst_ratio = fmax(worst_ratio, fabs(fd - g[k]) / allowed);
    }
    tu_report(name, worst_ratio < 1 && fabsf(g[pick[0]]) > 0,
              "max relative error %g, %.2f of the allowance (largest gradient %g)", worst, worst_ratio, g[pick[0]]);
    free(g);
    featvis_state_free(&st);
}

static void test_repro(const vc_model *m) {
    const char *name = "featvis reproducible: the same seed gives identical pictures, another seed a different one";
    if (!tu_selected(name)) return;
    vc_error err = {{0}};
    vc_featvis_target t;
    vc_featvis_opts o;
    vc_featvis_defaults(&o);
    o.steps = 24;
    o.seed = 5;
    vc_featvis_parse(&t, m, "features.6:3", 0, &err);
    vc_featvis_result a, b, c;
    int rc = vc_featvis_batch(m, &t, 1, &o, &a, NULL, NULL, &err);
    rc = rc ? rc : vc_featvis_batch(m, &t, 1, &o, &b, NULL, NULL, &err);
    o.seed = 6;
    rc = rc ? rc : vc_featvis_batch(m, &t, 1, &o, &c, NULL, NULL, &err);
    if (rc) { tu_report(name, 0, "%s", err.msg); return; }
    size_t n = (size_t)a.c * a.h * a.w;
    tu_report(name, !memcmp(a.img, b.img, n * 4) && memcmp(a.img, c.img, n * 4) && a.final[0] == b.final[0],
              "same seed equal: %d, other seed differs: %d", !memcmp(a.img, b.img, n * 4), !!memcmp(a.img, c.img, n * 4));
    vc_featvis_result_free(&a); vc_featvis_result_free(&b); vc_featvis_result_free(&c);
}

// A target's picture depends on its own seed only, not on the batch it ran in
// (so --all can be split across processes): batch {a, b} vs {a} alone.
static void test_subset(const vc_model *m) {
    const char *name = "featvis batch independence: a target's picture in a batch of 3 equals its picture alone (to 8-bit levels)";
    if (!tu_selected(name)) return;
    vc_error err = {{0}};
    vc_featvis_target t[3];
    vc_featvis_opts o;
    vc_featvis_defaults(&o);
    o.steps = 24;
    for (int k = 0; k < 3; k++) t[k] = (vc_featvis_target){vc_model_find(m, "features.3"), 4 + 7 * k, -1};
    vc_featvis_result a, b;
    int rc = vc_featvis_batch(m, t, 3, &o, &a, NULL, NULL, &err);
    rc = rc ? rc : vc_featvis_batch(m, &t[1], 1, &o, &b, NULL, NULL, &err);
    if (rc) { tu_report(name, 0, "%s", err.msg); return; }
    size_t n = (size_t)a.c * a.h * a.w;
    double worst = 0;
    for (size_t k = 0; k < n; k++) worst = fmax(worst, fabs(a.img[n + k] - b.img[k]));
    tu_report(name, worst <= 1.5 / 255, "max pixel difference %g", worst);
    vc_featvis_result_free(&a); vc_featvis_result_free(&b);
}

int main(int argc, char **argv) {
    tu_init(argc, argv);
    test_param_ref(1, 8, 8);
    test_param_ref(3, 6, 7);
    test_param_ref(3, 5, 6);
    test_param_grad(1, 6, 6);
    test_param_grad(3, 5, 6);
    test_param_grad(3, 6, 5);
    test_clamp(1);
    test_clamp(3);
    test_identity();
    fv_affine A;
    affine_identity(&A); affine_jitter(&A, 2, -1);
    test_sampler("jitter (2, -1)", 2, 9, 9, 9, 9, &A);
    affine_identity(&A); affine_scale(&A, 1.1f);
    test_sampler("scale 1.1", 2, 9, 9, 9, 9, &A);
    affine_identity(&A); affine_scale(&A, 0.9f);
    test_sampler("scale 0.9 (pad shows)", 1, 9, 9, 9, 9, &A);
    affine_identity(&A); affine_rotate(&A, 7);
    test_sampler("rotate 7 degrees", 3, 8, 9, 8, 9, &A);
    affine_identity(&A);
    test_sampler("pad (canvas 5x6 inside a 9x10 input)", 1, 5, 6, 9, 10, &A);
    uint64_t s = 9;
    affine_random(&A, 12, 12, &s);
    test_sampler("random pad+jitter+scale+rotate+jitter", 3, 12, 12, 12, 12, &A);
    vc_model *m;
    vc_error err = {{0}};
    if (vc_model_load(&m, "models/fashion.safetensors", &err)) {
        tu_report("featvis on the default model: load models/fashion.safetensors", 0, "%s", err.msg);
        return tu_finish();
    }
    test_chain(m, "features.0:3", 0, 0, 0);
    test_chain(m, "features.3:5", 0, 1, 0);
    test_chain(m, "features.8:10", 0, 0, 1);
    test_chain(m, "features.3:2:7", 1, 1, 0);
    test_chain(m, "features.8:9:30", 1, 0, 0);
    test_chain(m, "features.6:1:4", 1, 1, 1);
    test_chain(m, "input:0", 0, 0, 0);
    test_repro(m);
    test_subset(m);
    vc_model_free(m);
    return tu_finish();
}
