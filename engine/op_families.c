// op_families.c: op-table glue for hardtanh, hardswish, hardsigmoid, sigmoid,
// silu, gelu, mul, layernorm2d, channel_shuffle and channel_slice (see
// op_families.h; the kernels are in ops/). Shape inference checks every
// attribute and tensor, so that a bad model file is a clear error.
#include <math.h>
#include <string.h>
#include "op_families.h"
#include "../ops/ops.h"

static const vc_node *in_k(const vc_model *m, const vc_node *n, int k) { return &m->nodes[n->in[k]]; }
static size_t numel(const vc_run *r, int i) { return (size_t)r->N * run_node(r, i)->size; }

static int set_like(const vc_model *m, vc_node *n, const vc_node *x, int c, vc_error *err) {
    if (c <= 0) return vc_fail(err, VC_EINPUT, "%s: node %s (%s): output has no channels", m->path, vc_str(n->name), vc_op_names[n->op]);
    n->rank = x->rank; n->c = c; n->h = x->h; n->w = x->w;
    n->size = (size_t)c * x->h * x->w;
    return VC_OK;
}
static int no_params(const vc_model *m, const vc_node *n, vc_error *err) {
    for (int r = 0; r < VC_P_COUNT; r++)
        if (n->param[r] >= 0) return vc_fail(err, VC_EINPUT, "%s: node %s: %s takes no parameters", m->path, vc_str(n->name), vc_op_names[n->op]);
    return VC_OK;
}
static int need_4d(const vc_model *m, const vc_node *n, vc_error *err) {
    const vc_node *x = in_k(m, n, 0);
    if (x->rank != 4)
        return vc_fail(err, VC_EINPUT, "%s: node %s (%s) needs an (N,C,H,W) input, got (N,%d) from %s",
                       m->path, vc_str(n->name), vc_op_names[n->op], x->c, vc_str(x->name));
    return VC_OK;
}

// ---- elementwise activations --------------------------------------------------------
int fam_unary_infer(const vc_model *m, vc_node *n, vc_error *err) {
    if (no_params(m, n, err)) return VC_EINPUT;
    return set_like(m, n, in_k(m, n, 0), in_k(m, n, 0)->c, err);
}
int fam_hardtanh_infer(const vc_model *m, vc_node *n, vc_error *err) {
    if (!(n->a.min_val < n->a.max_val) || !isfinite(n->a.min_val) || !isfinite(n->a.max_val))
        return vc_fail(err, VC_EINPUT, "%s: node %s: hardtanh needs finite min_val < max_val, got %g and %g",
                       m->path, vc_str(n->name), n->a.min_val, n->a.max_val);
    return fam_unary_infer(m, n, err);
}
void fam_hardtanh_fwd(vc_run *r, int i) {
    const vc_node *n = run_node(r, i);
    hardtanh_forward(r->act[i], r->act[n->in[0]], numel(r, i), n->a.min_val, n->a.max_val);
}
void fam_hardtanh_bwd(vc_run *r, int i, int params) {
    (void)params;
    const vc_node *n = run_node(r, i);
    hardtanh_backward(r->grad[n->in[0]], r->grad[i], r->act[i], numel(r, i), n->a.min_val, n->a.max_val);
}
void fam_hardtanh_decide(const vc_run *r, int i, void *out) {
    const vc_node *n = run_node(r, i);
    hardtanh_decisions(out, r->act[i], numel(r, i), n->a.min_val, n->a.max_val);
}

// hardswish and hardsigmoid keep their region array in saved[i] (the decisions)
static uint8_t *region_buf(vc_run *r, int i) {
    if (!r->saved[i]) r->saved[i] = malloc_check(numel(r, i));
    return r->saved[i];
}
void fam_hardswish_fwd(vc_run *r, int i) {
    hardswish_forward(r->act[i], region_buf(r, i), r->act[run_node(r, i)->in[0]], numel(r, i));
}
void fam_hardswish_bwd(vc_run *r, int i, int params) {
    (void)params;
    int x = run_node(r, i)->in[0];
    hardswish_backward(r->grad[x], r->grad[i], r->saved[i], r->act[x], numel(r, i));
}
void fam_hardsigmoid_fwd(vc_run *r, int i) {
    hardsigmoid_forward(r->act[i], region_buf(r, i), r->act[run_node(r, i)->in[0]], numel(r, i));
}
void fam_hardsigmoid_bwd(vc_run *r, int i, int params) {
    (void)params;
    hardsigmoid_backward(r->grad[run_node(r, i)->in[0]], r->grad[i], r->saved[i], numel(r, i));
}
void fam_saved_region_decide(const vc_run *r, int i, void *out) { memcpy(out, r->saved[i], numel(r, i)); }

void fam_sigmoid_fwd(vc_run *r, int i) { sigmoid_forward(r->act[i], r->act[run_node(r, i)->in[0]], numel(r, i)); }
void fam_sigmoid_bwd(vc_run *r, int i, int params) {
    (void)params;
    sigmoid_backward(r->grad[run_node(r, i)->in[0]], r->grad[i], r->act[i], numel(r, i));
}
void fam_silu_fwd(vc_run *r, int i) { silu_forward(r->act[i], r->act[run_node(r, i)->in[0]], numel(r, i)); }
void fam_silu_bwd(vc_run *r, int i, int params) {
    (void)params;
    int x = run_node(r, i)->in[0];
    silu_backward(r->grad[x], r->grad[i], r->act[x], numel(r, i));
}
void fam_gelu_fwd(vc_run *r, int i) { gelu_forward(r->act[i], r->act[run_node(r, i)->in[0]], numel(r, i)); }
void fam_gelu_bwd(vc_run *r, int i, int params) {
    (void)params;
    int x = run_node(r, i)->in[0];
    gelu_backward(r->grad[x], r->grad[i], r->act[x], numel(r, i));
}

// ---- mul: x * gate (N,C,1,1) or x * same-shape, or x * weight (C) (layer scale) -------
int fam_mul_infer(const vc_model *m, vc_node *n, vc_error *err) {
    const vc_node *x = in_k(m, n, 0);
    int has_w = n->param[VC_P_WEIGHT] >= 0;
    for (int r = 1; r < VC_P_COUNT; r++)
        if (n->param[r] >= 0) return vc_fail(err, VC_EINPUT, "%s: node %s: mul takes only a 'weight' parameter", m->path, vc_str(n->name));
    if (n->n_in != (has_w ? 1 : 2))
        return vc_fail(err, VC_EINPUT, "%s: node %s: mul takes 2 inputs, or 1 input and a weight, got %d input%s%s",
                       m->path, vc_str(n->name), n->n_in, n->n_in == 1 ? "" : "s", has_w ? " and a weight" : "");
    if (has_w) {
        const vc_param *w = &m->params[n->param[VC_P_WEIGHT]];
        int ok = (w->rank == 1 || (w->rank == 3 && w->dim[1] == 1 && w->dim[2] == 1)) && w->dim[0] == x->c;
        if (!ok) return vc_fail(err, VC_EINPUT, "%s: node %s: mul weight '%s' must be (C) or (C,1,1) with C = %d",
                                m->path, vc_str(n->name), vc_str(w->name), x->c);
    } else {
        const vc_node *g = in_k(m, n, 1);
        int ok = g->rank == x->rank && g->c == x->c &&
                 ((g->h == x->h && g->w == x->w) || (g->rank == 4 && g->h == 1 && g->w == 1));
        if (!ok) return vc_fail(err, VC_EINPUT, "%s: node %s: mul of %s (%d,%d,%d) by %s (%d,%d,%d): the second operand must "
                                "have the first's shape or be (N,C,1,1)", m->path, vc_str(n->name), vc_str(x->name), x->c, x->h, x->w,
                                g->name, g->c, g->h, g->w);
    }
    return set_like(m, n, x, x->c, err);
}
typedef struct { const float *g; float *dg; int gN, gHW; } gate;
static gate mul_gate(const vc_run *r, const vc_node *n, int params) {
    const vc_node *x = in_k(r->m, n, 0);
    if (n->param[VC_P_WEIGHT] >= 0)
        return (gate){run_param(r, n, VC_P_WEIGHT), run_pgrad(r, n, VC_P_WEIGHT, params), 1, 1};
    const vc_node *g = in_k(r->m, n, 1);
    return (gate){r->act[n->in[1]], r->grad[n->in[1]], r->N, g->h * g->w == 1 && x->h * x->w != 1 ? 1 : x->h * x->w};
}
void fam_mul_fwd(vc_run *r, int i) {
    const vc_node *n = run_node(r, i);
    gate g = mul_gate(r, n, 0);
    mul_forward(r->act[i], r->act[n->in[0]], g.g, r->N, n->c, n->h * n->w, g.gN, g.gHW);
}
void fam_mul_bwd(vc_run *r, int i, int params) {
    const vc_node *n = run_node(r, i);
    gate g = mul_gate(r, n, params);
    if (n->n_in == 2 && n->in[0] == n->in[1]) {   // x * x: both halves land in one buffer, read x before writing
        float *dx = r->grad[n->in[0]];
        const float *x = r->act[n->in[0]];
        for (size_t k = 0; k < numel(r, i); k++) dx[k] += 2.0f * x[k] * r->grad[i][k];
        return;
    }
    mul_backward(r->grad[n->in[0]], g.dg, r->grad[i], r->act[n->in[0]], g.g, r->N, n->c, n->h * n->w, g.gN, g.gHW);
}

// ---- layernorm2d -------------------------------------------------------------------
int fam_layernorm2d_infer(const vc_model *m, vc_node *n, vc_error *err) {
    if (need_4d(m, n, err)) return VC_EINPUT;
    const vc_node *x = in_k(m, n, 0);
    if (!(n->a.eps > 0)) return vc_fail(err, VC_EINPUT, "%s: node %s: layernorm2d eps must be > 0", m->path, vc_str(n->name));
    if ((n->param[VC_P_WEIGHT] < 0) != (n->param[VC_P_BIAS] < 0) || n->param[VC_P_MEAN] >= 0 || n->param[VC_P_VAR] >= 0)
        return vc_fail(err, VC_EINPUT, "%s: node %s: layernorm2d takes weight and bias, or no parameters", m->path, vc_str(n->name));
    for (int r = VC_P_WEIGHT; r <= VC_P_BIAS; r++) {
        if (n->param[r] < 0) continue;
        const vc_param *p = &m->params[n->param[r]];
        if (p->rank != 1 || p->dim[0] != x->c)
            return vc_fail(err, VC_EINPUT, "%s: node %s: layernorm2d %s '%s' must be (%d)", m->path, vc_str(n->name),
                           r == VC_P_WEIGHT ? "weight" : "bias", vc_str(p->name), x->c);
    }
    return set_like(m, n, x, x->c, err);
}
void fam_layernorm2d_fwd(vc_run *r, int i) {
    const vc_node *n = run_node(r, i);
    layernorm2d_forward(r->act[i], r->act[n->in[0]], run_param(r, n, VC_P_WEIGHT), run_param(r, n, VC_P_BIAS),
                        n->a.eps, r->N, n->c, n->h * n->w);
}
void fam_layernorm2d_bwd(vc_run *r, int i, int params) {
    const vc_node *n = run_node(r, i);
    layernorm2d_backward(r->grad[n->in[0]], run_pgrad(r, n, VC_P_WEIGHT, params), run_pgrad(r, n, VC_P_BIAS, params),
                         r->grad[i], r->act[n->in[0]], run_param(r, n, VC_P_WEIGHT), n->a.eps, r->N, n->c, n->h * n->w);
}

// ---- channel_shuffle, channel_slice -------------------------------------------------
int fam_shuffle_infer(const vc_model *m, vc_node *n, vc_error *err) {
    if (no_params(m, n, err) || need_4d(m, n, err)) return VC_EINPUT;
    const vc_node *x = in_k(m, n, 0);
    if (n->a.groups < 1 || x->c % n->a.groups)
        return vc_fail(err, VC_EINPUT, "%s: node %s: channel_shuffle groups %d does not divide %d channels",
                       m->path, vc_str(n->name), n->a.groups, x->c);
    return set_like(m, n, x, x->c, err);
}
void fam_shuffle_fwd(vc_run *r, int i) {
    const vc_node *n = run_node(r, i);
    channel_shuffle_forward(r->act[i], r->act[n->in[0]], r->N, n->c, n->h * n->w, n->a.groups);
}
void fam_shuffle_bwd(vc_run *r, int i, int params) {
    (void)params;
    const vc_node *n = run_node(r, i);
    channel_shuffle_backward(r->grad[n->in[0]], r->grad[i], r->N, n->c, n->h * n->w, n->a.groups);
}
int fam_slice_infer(const vc_model *m, vc_node *n, vc_error *err) {
    if (no_params(m, n, err) || need_4d(m, n, err)) return VC_EINPUT;
    const vc_node *x = in_k(m, n, 0);
    if (n->a.start < 0 || n->a.end <= n->a.start || n->a.end > x->c)
        return vc_fail(err, VC_EINPUT, "%s: node %s: channel_slice [%d, %d) is not a non-empty range of %s's %d channels",
                       m->path, vc_str(n->name), n->a.start, n->a.end, vc_str(x->name), x->c);
    return set_like(m, n, x, n->a.end - n->a.start, err);
}
void fam_slice_fwd(vc_run *r, int i) {
    const vc_node *n = run_node(r, i), *x = in_k(r->m, n, 0);
    channel_slice_forward(r->act[i], r->act[n->in[0]], r->N, x->c, n->h * n->w, n->a.start, n->c);
}
void fam_slice_bwd(vc_run *r, int i, int params) {
    (void)params;
    const vc_node *n = run_node(r, i), *x = in_k(r->m, n, 0);
    channel_slice_backward(r->grad[n->in[0]], r->grad[i], r->N, x->c, n->h * n->w, n->a.start, n->c);
}
