// session.c: viscnn.h's sessions — one thread's forward, backward and the
// exact edge maps of a conv layer (the same computation as `viscnn edges`).
#include <stdlib.h>
#include <string.h>
#include "api.h"
#include "../../engine/util.h"
#include "../../ops/ops.h"

int vc_session_new(vc_session **out, const vc_model *m, vc_error *err) {
    API_NEED(out, err);
    *out = NULL;
    API_NEED(m, err);
    vc_session *s = calloc_check(1, sizeof *s);
    s->m = m;
    *out = s;
    return VC_OK;
}

void vc_session_free(vc_session *s) {
    if (!s) return;
    vc_run_free(s->r);
    free(s);
}

static int apply_circuit(vc_run *r, const vc_subnet *c, vc_error *err) {
    return c ? circuit_apply(r, &c->layout, &c->c, err) : VC_OK;
}

// Forgets the last batch and makes s->r a run for n images (with the
// session's circuit), reusing it when it already is one.
static int run_for_batch(vc_session *s, int n, vc_error *err) {
    s->n = 0;
    s->backward = 0;
    if (s->r && vc_run_batch(s->r) == n) return VC_OK;
    vc_run_free(s->r);
    s->r = vc_run_new(s->m, n);
    int rc = apply_circuit(s->r, s->circuit, err);
    if (rc) { vc_run_free(s->r); s->r = NULL; }
    return rc;
}

int vc_session_forward(vc_session *s, const float *x, int n, vc_error *err) {
    API_NEED(s, err);
    API_NEED(x, err);
    if (n < 1) return vc_fail(err, VC_EINPUT, "%s: batch of %d images; need at least 1", __func__, n);
    int rc = run_for_batch(s, n, err);
    if (rc) return rc;
    rc = vc_forward(s->r, x, -1, 0, err);
    if (!rc) s->n = n;
    s->infer = 0;
    return rc;
}

int vc_session_infer(vc_session *s, const float *x, int n, int node, vc_error *err) {
    API_NEED(s, err);
    API_NEED(x, err);
    if (n < 1) return vc_fail(err, VC_EINPUT, "%s: batch of %d images; need at least 1", __func__, n);
    if (node < -1 || node >= s->m->n_nodes)
        return vc_fail(err, VC_EINPUT, "%s: node %d out of range [0, %d) in %s", __func__, node, s->m->n_nodes, s->m->path);
    int rc = run_for_batch(s, n, err);
    if (rc) return rc;
    rc = vc_forward(s->r, x, node < 0 ? s->m->output : node, VC_FWD_NOGRAD, err);
    if (!rc) s->n = n;
    s->infer = 1;
    return rc;
}

int vc_target_check(const vc_model *m, const char *target, int *layer, vc_error *err) {
    API_NEED(m, err);
    API_NEED(target, err);
    vc_target t;
    int rc = target_parse(&t, m, target, err);
    if (!rc && layer) *layer = t.layer;
    return rc;
}

static int check_run(const vc_session *s, int node, const char *fn, vc_error *err) {
    if (!s->n) return vc_fail(err, VC_EINPUT, "%s: no forward has run in this session", fn);
    if (node < 0 || node >= s->m->n_nodes)
        return vc_fail(err, VC_EINPUT, "%s: node %d out of range [0, %d) in %s", fn, node, s->m->n_nodes, s->m->path);
    return VC_OK;
}

int vc_session_activation(const vc_session *s, int node, const float **data, size_t *count, vc_error *err) {
    API_NEED(s, err);
    API_NEED(data, err);
    int rc = check_run(s, node, __func__, err);
    if (rc) return rc;
    const float *a = vc_run_act(s->r, node);
    if (!a && s->infer)
        return vc_fail(err, VC_EINPUT, "%s: the activation of %s was not kept (vc_session_infer keeps its node's only)", __func__,
                       vc_str(s->m->nodes[node].name));
    if (!a) return vc_fail(err, VC_EINTERNAL, "%s: activation of %s is missing", __func__, vc_str(s->m->nodes[node].name));
    *data = a;
    if (count) *count = (size_t)s->n * s->m->nodes[node].size;
    return VC_OK;
}

int vc_session_backward(vc_session *s, const char *target, const int *labels, vc_error *err) {
    API_NEED(s, err);
    API_NEED(target, err);
    int rc = check_run(s, 0, __func__, err);
    if (rc) return rc;
    if (s->infer) return vc_fail(err, VC_EINPUT, "%s: the last forward was vc_session_infer, which keeps nothing for backward", __func__);
    vc_target t;
    if ((rc = target_parse(&t, s->m, target, err))) return rc;
    for (int k = 0; labels && t.kind == VC_T_LOSS && k < s->n; k++)
        if (labels[k] >= (int)s->m->nodes[s->m->output].size)
            return vc_fail(err, VC_EINPUT, "%s: label %d of image %d out of range [0, %zu)", __func__, labels[k], k,
                           s->m->nodes[s->m->output].size);
    float *seed = malloc_check((size_t)s->n * s->m->nodes[t.stop].size * sizeof(float));
    target_seed(&t, s->m, s->r, labels, seed);
    rc = vc_backward(s->r, t.stop, seed, 0, err);
    free(seed);
    s->backward = !rc;
    return rc;
}

int vc_session_gradient(const vc_session *s, int node, const float **data, size_t *count, vc_error *err) {
    API_NEED(s, err);
    API_NEED(data, err);
    int rc = check_run(s, node, __func__, err);
    if (rc) return rc;
    const float *g = s->backward ? vc_run_grad(s->r, node) : NULL;
    if (!g) return vc_fail(err, VC_EINPUT, "%s: no gradient of %s: the last backward did not reach it (or none ran)", __func__,
                           s->m->nodes[node].name);
    *data = g;
    if (count) *count = (size_t)s->n * s->m->nodes[node].size;
    return VC_OK;
}

// Validates a channel list against [0, n); NULL means all (count n).
static int channels(const int *ch, int *cnt, int n, const char *what, const char *fn, vc_error *err) {
    if (!ch) { *cnt = n; return VC_OK; }
    if (*cnt < 1) return vc_fail(err, VC_EINPUT, "%s: %d %s channels given; need at least 1", fn, *cnt, what);
    for (int k = 0; k < *cnt; k++)
        if (ch[k] < 0 || ch[k] >= n) return vc_fail(err, VC_EINPUT, "%s: %s channel %d out of range [0, %d)", fn, what, ch[k], n);
    return VC_OK;
}

// The conv geometry of node for one image (the same dims as `viscnn edges`).
static int edge_setup(const vc_session *s, int node, int image, conv2d_dims *d, const char *fn, vc_error *err) {
    int rc = check_run(s, node, fn, err);
    if (rc) return rc;
    if (s->infer) return vc_fail(err, VC_EINPUT, "%s: the last forward was vc_session_infer, which keeps no edge inputs", fn);
    const vc_node *c = &s->m->nodes[node];
    if (c->op != VC_OP_CONV2D) return vc_fail(err, VC_EINPUT, "%s: node %s is a %s, not a conv2d layer", fn, vc_str(c->name), vc_op_names[c->op]);
    if (image < 0 || image >= s->n) return vc_fail(err, VC_EINPUT, "%s: image %d out of range [0, %d)", fn, image, s->n);
    const vc_node *xin = &s->m->nodes[c->in[0]];
    *d = (conv2d_dims){.N = s->n, .C = xin->c, .H = xin->h, .W = xin->w, .Co = c->c, .kh = c->a.kernel[0], .kw = c->a.kernel[1],
                       .sh = c->a.stride[0], .sw = c->a.stride[1], .ph = c->a.padding[0], .pw = c->a.padding[1],
                       .dh = c->a.dilation[0], .dw = c->a.dilation[1], .groups = c->a.groups};
    conv2d_dims_finish(d);
    return VC_OK;
}

int vc_session_edges(vc_session *s, int node, int image, const int *out_ch, int n_out, const int *in_ch, int n_in,
                     float **maps, vc_error *err) {
    API_NEED(s, err);
    API_NEED(maps, err);
    conv2d_dims d;
    int rc = edge_setup(s, node, image, &d, __func__, err);
    if (rc) return rc;
    const vc_node *c = &s->m->nodes[node];
    int cg = d.C / d.groups, Cog = d.Co / d.groups;
    if ((rc = channels(out_ch, &n_out, d.Co, "out", __func__, err))) return rc;
    if ((rc = channels(in_ch, &n_in, cg, "in", __func__, err))) return rc;
    size_t P = (size_t)d.Ho * d.Wo;
    float *dst = *maps ? *maps : malloc_check((size_t)n_out * n_in * P * sizeof(float));
    float *e = malloc_check((size_t)Cog * P * sizeof(float));
    const float *w = s->m->params[c->param[VC_P_WEIGHT]].data, *xa = vc_run_act(s->r, c->in[0]);
    // one input channel's maps serve every selected out-channel of its group
    for (int grp = 0; grp < d.groups; grp++)
        for (int b = 0; b < n_in; b++) {
            int any = 0;
            for (int q = 0; q < n_out; q++) any |= (out_ch ? out_ch[q] : q) / Cog == grp;
            if (!any) continue;
            conv2d_edge_maps(e, xa, w, &d, image, grp * cg + (in_ch ? in_ch[b] : b));
            for (int q = 0; q < n_out; q++) {
                int j = out_ch ? out_ch[q] : q;
                if (j / Cog == grp) memcpy(dst + ((size_t)q * n_in + b) * P, e + (size_t)(j % Cog) * P, P * sizeof(float));
            }
        }
    free(e);
    *maps = dst;
    return VC_OK;
}

int vc_session_edge_grads(vc_session *s, int node, int image, const int *out_ch, int n_out, float **grads, vc_error *err) {
    API_NEED(s, err);
    API_NEED(grads, err);
    conv2d_dims d;
    int rc = edge_setup(s, node, image, &d, __func__, err);
    if (rc) return rc;
    if ((rc = channels(out_ch, &n_out, d.Co, "out", __func__, err))) return rc;
    const float *g;
    if ((rc = vc_session_gradient(s, node, &g, NULL, err))) return rc;
    size_t P = (size_t)d.Ho * d.Wo;
    g += (size_t)image * s->m->nodes[node].size;
    float *dst = *grads ? *grads : malloc_check((size_t)n_out * P * sizeof(float));
    for (int q = 0; q < n_out; q++) memcpy(dst + (size_t)q * P, g + (size_t)(out_ch ? out_ch[q] : q) * P, P * sizeof(float));
    *grads = dst;
    return VC_OK;
}

int vc_session_set_subnet(vc_session *s, const vc_subnet *c, vc_error *err) {
    API_NEED(s, err);
    if (c && c->m != s->m) return vc_fail(err, VC_EINPUT, "%s: the circuit belongs to another model", __func__);
    // masks live in the run: the next forward builds a fresh one with them
    vc_run_free(s->r);
    s->r = NULL;
    s->n = 0;
    s->backward = 0;
    s->circuit = c;
    return VC_OK;
}
