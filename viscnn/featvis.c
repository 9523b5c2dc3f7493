// featvis.c: feature visualisation by optimisation (docs/featvis.md): the
// picture's Fourier parameters (fourier.c) -> pixels -> random transform
// (transforms.c) -> the model up to the target layer -> objective; backward
// the same way; Adam on the parameters. A batch holds several targets of one
// layer, one picture each.
#include <math.h>
#include <string.h>
#include "featvis.h"
#include "fourier.h"
#include "rf.h"
#include "transforms.h"
#include "../engine/util.h"

void vc_featvis_defaults(vc_featvis_opts *o) {
    memset(o, 0, sizeof *o);
    o->steps = 512;
    o->lr = 0.05f;
    o->neuron = -1;
}

void vc_featvis_result_free(vc_featvis_result *r) {
    free(r->img); free(r->trace); free(r->final);
    memset(r, 0, sizeof *r);
}

int vc_featvis_parse(vc_featvis_target *t, const vc_model *m, const char *spec, int edge, vc_error *err) {
    const char *what = edge ? "--edge" : "--node", *form = edge ? "LAYER:OUT:IN" : "LAYER:CH";
    char buf[512];
    if (strlen(spec) >= sizeof buf) return vc_fail(err, VC_EINPUT, "%s: too long", what);
    snprintf(buf, sizeof buf, "%s", spec);
    long v[2] = {-1, -1};
    for (int k = edge; k >= 0; k--) {   // layer names are module paths: split from the right
        char *colon = strrchr(buf, ':'), *end;
        if (!colon) return vc_fail(err, VC_EINPUT, "%s %s: expected %s", what, spec, form);
        v[k] = strtol(colon + 1, &end, 10);
        if (end == colon + 1 || *end || v[k] < 0 || v[k] > 1 << 24)
            return vc_fail(err, VC_EINPUT, "%s %s: expected %s with non-negative integers", what, spec, form);
        *colon = 0;
    }
    int node = vc_model_find(m, buf);
    if (node < 0) return vc_fail(err, VC_EINPUT, "%s %s: no layer %s in %s (see viscnn info)", what, spec, buf, m->path);
    t->layer = node;
    t->out = (int)v[0];
    t->in = edge ? (int)v[1] : -1;
    return VC_OK;
}

int featvis_resolve(fv_resolved *r, const vc_model *m, const vc_featvis_target *t, const vc_featvis_opts *o,
                    vc_error *err) {
    memset(r, 0, sizeof *r);
    if (t->layer < 0 || t->layer >= m->n_nodes) return vc_fail(err, VC_EINPUT, "featvis: no node %d", t->layer);
    const vc_node *c = &m->nodes[t->layer];
    r->edge = t->in >= 0;
    r->neuron = o->neuron < 0 ? r->edge : o->neuron != 0;
    r->sign = o->negative ? -1 : 1;
    r->conv = t->layer;
    if (t->layer == 0) {   // an input colour channel: a node, its map is the input itself
        if (r->edge) return vc_fail(err, VC_EINPUT, "--edge %s:%d:%d: the input has no kernels (edges are conv kernels)", vc_str(c->name), t->out, t->in);
        if (t->out >= c->c) return vc_fail(err, VC_EINPUT, "--node %s:%d: the input has %d channels", vc_str(c->name), t->out, c->c);
        r->z_node = r->stop = 0;
        r->ch = t->out;
        return VC_OK;
    }
    if (c->op != VC_OP_CONV2D)
        return vc_fail(err, VC_EINPUT, "%s %s: is a %s, not a conv2d layer (nodes and edges are conv channels and kernels)",
                       r->edge ? "--edge" : "--node", vc_str(c->name), vc_op_names[c->op]);
    const vc_node *x = &m->nodes[c->in[0]];
    int cg = x->c / c->a.groups, cog = c->c / c->a.groups;
    if (t->out >= c->c)
        return vc_fail(err, VC_EINPUT, "%s %s:%d: layer %s has %d channels", r->edge ? "--edge" : "--node", vc_str(c->name), t->out, vc_str(c->name), c->c);
    if (r->edge && t->in >= cg)
        return vc_fail(err, VC_EINPUT, "--edge %s:%d:%d: layer %s has %d input channels per group", vc_str(c->name), t->out, t->in, vc_str(c->name), cg);
    if (r->edge) {
        r->in_node = r->stop = c->in[0];
        r->ch = (t->out / cog) * cg + t->in;
    } else {
        // the node map is the BN output when a BN is the conv's only consumer (docs/importance.md)
        int consumers = 0, bn = -1;
        for (int j = t->layer + 1; j < m->n_nodes; j++)
            for (int k = 0; k < m->nodes[j].n_in; k++)
                if (m->nodes[j].in[k] == t->layer) { consumers++; if (m->nodes[j].op == VC_OP_BATCHNORM2D) bn = j; }
        r->z_node = r->stop = consumers == 1 && bn >= 0 ? bn : t->layer;
        r->ch = t->out;
    }
    return VC_OK;
}

int vc_featvis_check(const vc_model *m, const vc_featvis_target *t, const vc_featvis_opts *o, vc_error *err) {
    fv_resolved rs;
    int rc = featvis_resolve(&rs, m, t, o, err);
    if (rc) return rc;
    if (o->steps < 1 || o->steps > 1000000) return vc_fail(err, VC_EINPUT, "--steps %d: must be in [1, 1000000]", o->steps);
    if (!(o->lr > 0 && o->lr <= 10)) return vc_fail(err, VC_EINPUT, "--lr %g: must be in (0, 10]", (double)o->lr);
    const vc_node *in = &m->nodes[0];
    int H = in->h, W = in->w;
    if (o->size && (o->size > H || o->size > W))
        return vc_fail(err, VC_EINPUT, "--size %d: larger than the model's input (%dx%d)", o->size, H, W);
    if (o->size < 0) return vc_fail(err, VC_EINPUT, "--size %d: must be positive", o->size);
    int Sh = o->size ? o->size : H, Sw = o->size ? o->size : W;
    // the receptive field of the target's centre unit (an edge map's units are the conv's)
    int node = rs.edge ? rs.conv : rs.z_node;
    vc_box box;
    if ((rc = rf_unit(m, node, m->nodes[node].h / 2, m->nodes[node].w / 2, &box, NULL, err))) return rc;
    int rh = box.y1 - box.y0 + 1, rw = box.x1 - box.x0 + 1;
    if (rh > H) rh = H;
    if (rw > W) rw = W;
    if (Sh < rh || Sw < rw)
        return vc_fail(err, VC_EINPUT, "--size %d: smaller than the receptive field (%dx%d pixels) of %s", o->size, rh, rw,
                       m->nodes[node].name);
    return VC_OK;
}

void featvis_edge_map(const vc_model *m, int conv, const float *x, int b, int j, int i, float *e) {
    const vc_node *c = &m->nodes[conv], *xn = &m->nodes[c->in[0]];
    int cg = xn->c / c->a.groups, cog = c->c / c->a.groups, ci = (j / cog) * cg + i;
    int kh = c->a.kernel[0], kw = c->a.kernel[1], Hi = xn->h, Wi = xn->w;
    const float *w = m->params[c->param[VC_P_WEIGHT]].data + ((size_t)j * cg + i) * kh * kw;
    const float *xp = x + ((size_t)b * xn->c + ci) * Hi * Wi;
    for (int oy = 0; oy < c->h; oy++)
        for (int ox = 0; ox < c->w; ox++) {
            float s = 0;
            for (int ky = 0; ky < kh; ky++) {
                int iy = oy * c->a.stride[0] - c->a.padding[0] + ky * c->a.dilation[0];
                if (iy < 0 || iy >= Hi) continue;
                for (int kx = 0; kx < kw; kx++) {
                    int ix = ox * c->a.stride[1] - c->a.padding[1] + kx * c->a.dilation[1];
                    if (ix >= 0 && ix < Wi) s += w[ky * kw + kx] * xp[iy * Wi + ix];
                }
            }
            e[oy * c->w + ox] = s;
        }
}

// Edge objective: units (oy, ox) of e_ji = W[j,i] * x_ci, their mean or the
// centre one; g (the conv input's map of image b) gets the gradient.
static float edge_eval(const vc_model *m, const float *x, const fv_resolved *rs, const vc_featvis_target *t, int b, float *g) {
    const vc_node *c = &m->nodes[rs->conv], *xn = &m->nodes[c->in[0]];
    int cg = xn->c / c->a.groups, kh = c->a.kernel[0], kw = c->a.kernel[1], Hi = xn->h, Wi = xn->w;
    const float *w = m->params[c->param[VC_P_WEIGHT]].data + ((size_t)t->out * cg + t->in) * kh * kw;
    const float *xp = x + ((size_t)b * xn->c + rs->ch) * Hi * Wi;
    float *gp = g ? g + (size_t)rs->ch * Hi * Wi : NULL;
    int y0 = 0, y1 = c->h, x0 = 0, x1 = c->w;
    if (rs->neuron) { y0 = c->h / 2; y1 = y0 + 1; x0 = c->w / 2; x1 = x0 + 1; }
    float unit = 1.0f / ((y1 - y0) * (x1 - x0));
    double s = 0;
    for (int oy = y0; oy < y1; oy++)
        for (int ox = x0; ox < x1; ox++)
            for (int ky = 0; ky < kh; ky++) {
                int iy = oy * c->a.stride[0] - c->a.padding[0] + ky * c->a.dilation[0];
                if (iy < 0 || iy >= Hi) continue;
                for (int kx = 0; kx < kw; kx++) {
                    int ix = ox * c->a.stride[1] - c->a.padding[1] + kx * c->a.dilation[1];
                    if (ix < 0 || ix >= Wi) continue;
                    s += w[ky * kw + kx] * xp[iy * Wi + ix];
                    if (gp) gp[iy * Wi + ix] += unit * w[ky * kw + kx];
                }
            }
    return (float)(s * unit);
}

float featvis_eval(const vc_model *m, const vc_run *r, const fv_resolved *rs, const vc_featvis_target *t, int b, float *g) {
    if (rs->edge) return edge_eval(m, vc_run_act(r, rs->in_node), rs, t, b, g);
    const vc_node *z = &m->nodes[rs->z_node];
    size_t P = (size_t)z->h * z->w;
    const float *a = vc_run_act(r, rs->z_node) + ((size_t)b * z->c + rs->ch) * P;
    float *gp = g ? g + (size_t)rs->ch * P : NULL;
    if (rs->neuron) {
        size_t k = (size_t)(z->h / 2) * z->w + z->w / 2;
        if (gp) gp[k] += 1;
        return a[k];
    }
    double s = 0;
    for (size_t k = 0; k < P; k++) s += a[k];
    if (gp)
        for (size_t k = 0; k < P; k++) gp[k] += 1.0f / P;
    return (float)(s / P);
}

// The per-picture random stream: the seed and the target, nothing else.
static uint64_t target_seed(uint64_t seed, const vc_featvis_target *t) {
    uint64_t s = seed ^ 0x5EEDF00DCAFEULL;
    int v[3] = {t->layer, t->out, t->in};
    for (int k = 0; k < 3; k++) { s ^= (uint64_t)(uint32_t)v[k] + 0x9E3779B97F4A7C15ULL * (k + 1); fv_rng_next(&s); }
    return fv_rng_next(&s);
}

// canvas u (C, Sh, Sw) -> model input x (C, H, W) through A, then the model's normalisation.
static void place(const vc_model *m, const float *u, int Sh, int Sw, const fv_affine *A, float *x) {
    const vc_node *in = &m->nodes[0];
    sample_forward(x, in->h, in->w, u, in->c, Sh, Sw, A, 0.5f);
    size_t hw = (size_t)in->h * in->w;
    for (int c = 0; c < in->c; c++)
        for (size_t k = 0; k < hw; k++) x[c * hw + k] = (x[c * hw + k] - m->pre.mean[c]) / m->pre.std[c];
}

void vc_featvis_to_input(const vc_model *m, const float *canvas, int h, int w, float *x) {
    fv_affine A;
    affine_identity(&A);
    place(m, canvas, h, w, &A, x);
}

int vc_featvis_objective(const vc_model *m, const vc_featvis_target *t, const vc_featvis_opts *o,
                         const float *x, int N, float *f, vc_error *err) {
    fv_resolved rs;
    int rc = featvis_resolve(&rs, m, t, o, err);
    if (rc) return rc;
    vc_run *r = vc_run_new(m, N);
    rc = vc_forward(r, x, rs.stop, VC_FWD_NOGRAD, err);
    for (int b = 0; !rc && b < N; b++) f[b] = featvis_eval(m, r, &rs, t, b, NULL);
    vc_run_free(r);
    return rc;
}

// Lucid's redirected ReLU gradient: a picture whose target sits behind ReLUs
// that are off everywhere it looks (a grey start often is) gets no gradient
// at all. Per image, when a ReLU passes no gradient anywhere, the gradient
// that would switch its dead units on (x <= 0, d(loss)/dy < 0) is let
// through instead. Runs as a backward hook on the ReLU's input node j: the
// ReLU (a later node) has done its own backward by then, and j's has not.
static void redirect_hook(void *ctx, const vc_run *r, int j, int phase) {
    const fv_state *st = ctx;
    if (phase != 1 || j <= 0 || st->relu_of[j] < 0) return;
    int i = st->relu_of[j];
    const float *dy = vc_run_grad(r, i), *x = vc_run_act(r, j);
    float *dx = (float *)vc_run_grad(r, j);   // the run's own buffer, between two backward steps
    if (!dy || !x || !dx) return;
    size_t sz = st->m->nodes[j].size;
    for (int b = 0; b < st->n; b++) {
        const float *db = dy + b * sz, *xb = x + b * sz;
        int passes = 0;
        for (size_t k = 0; k < sz && !passes; k++) passes = xb[k] > 0 && db[k] != 0;
        if (passes) continue;
        float *gb = dx + b * sz;
        for (size_t k = 0; k < sz; k++)
            if (xb[k] <= 0 && db[k] < 0) gb[k] += db[k];
    }
}

void featvis_state_free(fv_state *st) {
    vc_run_free(st->r);
    param_free(&st->P);
    free(st->rs); free(st->par); free(st->dpar); free(st->u); free(st->du); free(st->x); free(st->seed);
    free(st->relu_of);
    memset(st, 0, sizeof *st);
}

int featvis_state_init(fv_state *st, const vc_model *m, const vc_featvis_target *t, int n, const vc_featvis_opts *o,
                       vc_error *err) {
    memset(st, 0, sizeof *st);
    if (n < 1) return vc_fail(err, VC_EINPUT, "featvis: no targets");
    st->rs = malloc_check((size_t)n * sizeof *st->rs);
    int rc = VC_OK;
    for (int b = 0; b < n && !rc; b++) {
        rc = vc_featvis_check(m, &t[b], o, err);
        if (!rc) rc = featvis_resolve(&st->rs[b], m, &t[b], o, err);
        if (!rc && (t[b].layer != t[0].layer || st->rs[b].edge != st->rs[0].edge))
            rc = vc_fail(err, VC_EINPUT, "featvis: one batch holds targets of one layer, all nodes or all edges");
    }
    if (rc) { free(st->rs); st->rs = NULL; return rc; }
    const vc_node *in = &m->nodes[0];
    st->m = m; st->t = t; st->n = n;
    st->C = in->c; st->H = in->h; st->W = in->w;
    st->Sh = o->size ? o->size : st->H;
    st->Sw = o->size ? o->size : st->W;
    st->chw = (size_t)st->C * st->Sh * st->Sw;
    st->xin = in->size;
    st->ssz = m->nodes[st->rs[0].stop].size;
    param_init(&st->P, n, st->C, st->Sh, st->Sw);
    st->np = param_count(&st->P);
    st->par = malloc_check(st->np * sizeof(float));
    st->dpar = malloc_check(st->np * sizeof(float));
    st->u = malloc_check(n * st->chw * sizeof(float));
    st->du = malloc_check(n * st->chw * sizeof(float));
    st->x = malloc_check(n * st->xin * sizeof(float));
    st->seed = malloc_check(n * st->ssz * sizeof(float));
    st->r = vc_run_new(m, n);
    st->relu_of = malloc_check((size_t)m->n_nodes * sizeof(int));
    for (int j = 0; j < m->n_nodes; j++) st->relu_of[j] = -1;
    for (int i = m->n_nodes - 1; i > 0; i--)
        if (m->nodes[i].op == VC_OP_RELU) st->relu_of[m->nodes[i].in[0]] = i;
    vc_run_set_hook(st->r, redirect_hook, st);
    return VC_OK;
}

int featvis_state_grad(fv_state *st, const fv_affine *A, float *obj, vc_error *err) {
    const vc_model *m = st->m;
    int n = st->n, C = st->C, H = st->H, W = st->W, rc;
    size_t chw = st->chw, xin = st->xin, ssz = st->ssz, hw = (size_t)H * W;
    param_forward(&st->P, st->par, st->u);
    for (int b = 0; b < n; b++) place(m, st->u + b * chw, st->Sh, st->Sw, &A[b], st->x + b * xin);
    if ((rc = vc_forward(st->r, st->x, st->rs[0].stop, 0, err))) return rc;
    memset(st->seed, 0, n * ssz * sizeof(float));
    for (int b = 0; b < n; b++) {
        float *g = st->seed + b * ssz;
        obj[b] = featvis_eval(m, st->r, &st->rs[b], &st->t[b], b, g);
        for (size_t k = 0; k < ssz; k++) g[k] *= (float)-st->rs[b].sign;   // loss = -sign * objective
    }
    if ((rc = vc_backward(st->r, st->rs[0].stop, st->seed, VC_BWD_INPUT, err))) return rc;
    const float *gx = vc_run_grad(st->r, 0);
    VC_ASSERT(gx != NULL);
    memset(st->du, 0, n * chw * sizeof(float));
    for (int b = 0; b < n; b++) {
        float *gb = st->x + b * xin;   // x is free now: the gradient through the normalisation
        for (int c = 0; c < C; c++)
            for (size_t k = 0; k < hw; k++) gb[c * hw + k] = gx[b * xin + c * hw + k] / m->pre.std[c];
        sample_backward(st->du + b * chw, gb, H, W, C, st->Sh, st->Sw, &A[b]);
    }
    param_backward(&st->P, st->u, st->du, st->dpar);
    return VC_OK;
}

// Objective (times sign: larger is better) of pictures u (n, C, Sh, Sw) as
// written, untransformed; with du, also d(loss)/du.
static int measure(fv_state *st, const float *u, float *val, float *du, vc_error *err) {
    const vc_model *m = st->m;
    int n = st->n, rc;
    size_t hw = (size_t)st->H * st->W;
    for (int b = 0; b < n; b++) vc_featvis_to_input(m, u + b * st->chw, st->Sh, st->Sw, st->x + b * st->xin);
    if ((rc = vc_forward(st->r, st->x, st->rs[0].stop, du ? 0 : VC_FWD_NOGRAD, err))) return rc;
    if (du) memset(st->seed, 0, n * st->ssz * sizeof(float));
    for (int b = 0; b < n; b++) {
        float *g = du ? st->seed + b * st->ssz : NULL;
        val[b] = st->rs[b].sign * featvis_eval(m, st->r, &st->rs[b], &st->t[b], b, g);
        for (size_t k = 0; g && k < st->ssz; k++) g[k] *= (float)-st->rs[b].sign;
    }
    if (!du) return VC_OK;
    if ((rc = vc_backward(st->r, st->rs[0].stop, st->seed, VC_BWD_INPUT, err))) return rc;
    const float *gx = vc_run_grad(st->r, 0);
    fv_affine I;
    affine_identity(&I);
    memset(du, 0, n * st->chw * sizeof(float));
    for (int b = 0; b < n; b++) {
        float *gb = st->x + b * st->xin;
        for (int c = 0; c < st->C; c++)
            for (size_t k = 0; k < hw; k++) gb[c * hw + k] = gx[b * st->xin + c * hw + k] / m->pre.std[c];
        sample_backward(du + b * st->chw, gb, st->H, st->W, st->C, st->Sh, st->Sw, &I);
    }
    return VC_OK;
}

static void quantise(float *u, size_t n) {
    for (size_t k = 0; k < n; k++) u[k] = (float)lrintf(fminf(fmaxf(u[k], 0), 1) * 255) / 255;
}

// The polish: Frank-Wolfe steps on the 8-bit pictures in the box [0,1]. The
// vertex v is black or white per pixel as the untransformed gradient says;
// u + t (v - u) is tried for t = 1, 1/2, ..., 1/32 and a picture keeps the
// best one only when it raises its objective. A linear first layer's optimum
// is such a vertex, which the sigmoid only approaches; deeper layers mostly
// keep small steps or none. Never lowers a final objective.
static int polish(fv_state *st, float *u, int rounds, vc_error *err) {
    int n = st->n, rc = VC_OK;
    size_t chw = st->chw, N = n * chw;
    float *du = malloc_check(N * sizeof(float)), *ut = malloc_check(N * sizeof(float)), *best = malloc_check(N * sizeof(float));
    float *v0 = malloc_check(n * sizeof(float)), *vt = malloc_check(n * sizeof(float));
    for (int it = 0; it < rounds && !rc; it++) {
        if ((rc = measure(st, u, v0, du, err))) break;
        memcpy(best, u, N * sizeof(float));
        float *vb = malloc_check(n * sizeof(float));
        memcpy(vb, v0, n * sizeof(float));
        for (float t = 1; t > 1.0f / 40 && !rc; t *= 0.5f) {
            for (size_t k = 0; k < N; k++) {
                float v = du[k] < 0 ? 1.0f : du[k] > 0 ? 0.0f : u[k];
                ut[k] = u[k] + t * (v - u[k]);
            }
            quantise(ut, N);
            if ((rc = measure(st, ut, vt, NULL, err))) break;
            for (int b = 0; b < n; b++)
                if (vt[b] > vb[b]) { vb[b] = vt[b]; memcpy(best + b * chw, ut + b * chw, chw * sizeof(float)); }
        }
        memcpy(u, best, N * sizeof(float));
        free(vb);
    }
    free(du); free(ut); free(best); free(v0); free(vt);
    return rc;
}

int vc_featvis_batch(const vc_model *m, const vc_featvis_target *t, int n, const vc_featvis_opts *o,
                     vc_featvis_result *res, vc_featvis_progress fn, void *ctx, vc_error *err) {
    memset(res, 0, sizeof *res);
    fv_state st;
    int rc = featvis_state_init(&st, m, t, n, o, err);
    if (rc) return rc;
    size_t np = st.np, chw = st.chw, xin = st.xin;
    float *am = calloc_check(np, sizeof(float)), *av = calloc_check(np, sizeof(float));
    float *obj = malloc_check((size_t)n * sizeof(float));
    fv_affine *A = malloc_check((size_t)n * sizeof *A);
    uint64_t *rng = malloc_check((size_t)n * sizeof *rng);
    for (int b = 0; b < n; b++) {
        uint64_t s = target_seed(o->seed, &t[b]);
        param_randomize(&st.P, st.par, b, s, 0.01f);
        rng[b] = s ^ 0xA5A5A5A55A5A5A5AULL;
    }
    res->n = n; res->c = st.C; res->h = st.Sh; res->w = st.Sw; res->steps = o->steps;
    res->trace = malloc_check((size_t)n * o->steps * sizeof(float));
    res->final = malloc_check((size_t)n * sizeof(float));
    float b1 = 0.9f, b2 = 0.999f;
    const float eps = 1e-8f;
    double b1t = 1, b2t = 1;
    for (int step = 0; step < o->steps && !rc; step++) {
        // the last quarter of the steps without transforms, the pre-sigmoid
        // image clamped to [-6.5, 6.5] once, Adam restarted with beta2 = 0.9:
        // the picture is measured (and shown) as it is, so it is finished as
        // it is. (Transforms hide the canvas's corners often; what they leave
        // is undone here, and fresh Adam moments take full steps again where
        // the sigmoid's saturation has shrunk the gradients.)
        int plain = step >= o->steps - o->steps / 4;
        if (plain && step == o->steps - o->steps / 4) {
            memset(am, 0, np * sizeof(float));
            memset(av, 0, np * sizeof(float));
            b1t = b2t = 1;
            b2 = 0.9f;   // a short memory: steps stay full-sized while the sigmoid saturates
            // pixels the transforms drove deep into saturation (often the
            // wrong way for the untransformed picture) come back to the edge
            // of the 8-bit range, where they can move again
            param_clamp(&st.P, st.par, 6.5f);
        }
        for (int b = 0; b < n; b++)
            if (plain) affine_identity(&A[b]);
            else affine_random(&A[b], st.Sh, st.Sw, &rng[b]);
        if ((rc = featvis_state_grad(&st, A, obj, err))) break;
        for (int b = 0; b < n; b++) res->trace[(size_t)b * o->steps + step] = obj[b];
        b1t *= b1; b2t *= b2;
        float c1 = (float)(1 / (1 - b1t)), c2 = (float)(1 / (1 - b2t));
        for (size_t k = 0; k < np; k++) {
            float g = st.dpar[k];
            am[k] = b1 * am[k] + (1 - b1) * g;
            av[k] = b2 * av[k] + (1 - b2) * g * g;
            st.par[k] -= o->lr * (am[k] * c1) / (sqrtf(av[k] * c2) + eps);
        }
        if (fn) fn(ctx, step + 1, o->steps);
    }
    float *u = NULL;
    if (!rc) {   // the pictures as written (8-bit levels), measured without transforms
        u = malloc_check(n * chw * sizeof(float));
        param_forward(&st.P, st.par, u);
        quantise(u, n * chw);
        rc = polish(&st, u, 4, err);
        for (int b = 0; b < n; b++) vc_featvis_to_input(m, u + b * chw, st.Sh, st.Sw, st.x + b * xin);
        if (!rc) rc = vc_forward(st.r, st.x, st.rs[0].stop, VC_FWD_NOGRAD, err);
        for (int b = 0; !rc && b < n; b++) res->final[b] = featvis_eval(m, st.r, &st.rs[b], &t[b], b, NULL);
    }
    featvis_state_free(&st);
    free(am); free(av); free(obj); free(A); free(rng);
    if (rc) { free(u); vc_featvis_result_free(res); return rc; }
    res->img = u;
    return VC_OK;
}
