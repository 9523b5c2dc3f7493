// op_table.c: the CPU dispatch table. For every op: shape inference (with the
// checks that make a bad model file a clear error), and the glue from graph
// nodes to the plain kernels of ops/ops.h.
#include <math.h>
#include <string.h>
#include "engine.h"
#include "checked.h"
#include "../ops/ops.h"
#include "backend.h"
#include "op_families.h"

const char *const vc_op_names[VC_OP_COUNT] = {
    [VC_OP_INPUT] = "input", [VC_OP_CONV2D] = "conv2d", [VC_OP_LINEAR] = "linear",
    [VC_OP_RELU] = "relu", [VC_OP_MAXPOOL2D] = "maxpool2d", [VC_OP_AVGPOOL2D] = "avgpool2d",
    [VC_OP_ADAPTIVE_AVGPOOL2D] = "adaptive_avgpool2d", [VC_OP_BATCHNORM2D] = "batchnorm2d",
    [VC_OP_LRN] = "lrn", [VC_OP_CONCAT] = "concat", [VC_OP_ADD] = "add", [VC_OP_FLATTEN] = "flatten",
    [VC_OP_DROPOUT] = "dropout", [VC_OP_LOG_SOFTMAX] = "log_softmax",
    [VC_OP_HARDTANH] = "hardtanh", [VC_OP_HARDSWISH] = "hardswish", [VC_OP_HARDSIGMOID] = "hardsigmoid",
    [VC_OP_SIGMOID] = "sigmoid", [VC_OP_SILU] = "silu", [VC_OP_GELU] = "gelu", [VC_OP_MUL] = "mul",
    [VC_OP_LAYERNORM2D] = "layernorm2d", [VC_OP_CHANNEL_SHUFFLE] = "channel_shuffle",
    [VC_OP_CHANNEL_SLICE] = "channel_slice",
};
_Static_assert(sizeof vc_op_names / sizeof vc_op_names[0] == VC_OP_COUNT, "op name table");

vc_op vc_op_from_name(const char *s) {
    for (int i = 1; i < VC_OP_COUNT; i++)
        if (vc_op_names[i] && !strcmp(vc_op_names[i], s)) return (vc_op)i;
    return VC_OP_INPUT;   // "not an op"
}

// ---- shape inference helpers --------------------------------------------------
static const vc_node *in0(const vc_model *m, const vc_node *n) { return &m->nodes[n->in[0]]; }

static int check_param(const vc_model *m, const vc_node *n, int role, const char *what,
                       int rank, const int *dim, vc_error *err) {
    if (n->param[role] < 0) return VC_OK;
    const vc_param *p = &m->params[n->param[role]];
    int ok = p->rank == rank;
    for (int k = 0; ok && k < rank; k++) ok = p->dim[k] == dim[k];
    if (ok) return VC_OK;
    char got[96] = "", want[96] = "";
    for (int k = 0; k < p->rank; k++) snprintf(got + strlen(got), sizeof got - strlen(got), "%s%d", k ? "," : "", p->dim[k]);
    for (int k = 0; k < rank; k++) snprintf(want + strlen(want), sizeof want - strlen(want), "%s%d", k ? "," : "", dim[k]);
    return vc_fail(err, VC_EINPUT, "%s: node %s: %s tensor '%s' has shape [%s], expected [%s]",
                   m->path, vc_str(n->name), what, vc_str(p->name), got, want);
}

static int need_spatial(const vc_model *m, const vc_node *n, vc_error *err) {
    if (in0(m, n)->rank != 4)
        return vc_fail(err, VC_EINPUT, "%s: node %s (%s) needs an (N,C,H,W) input, got (N,%d) from %s",
                       m->path, vc_str(n->name), vc_op_names[n->op], in0(m, n)->c, vc_str(in0(m, n)->name));
    return VC_OK;
}

// Every node's shape passes here: the limits of engine/checked.h hold for
// every node of a graph that loads (with them, every int index inside ops/
// stays below 2^31 for one image).
static int set_shape(const vc_model *m, vc_node *n, int rank, int64_t c, int64_t h, int64_t w, vc_error *err) {
    if (c <= 0 || h <= 0 || w <= 0)
        return vc_fail(err, VC_EINPUT, "%s: node %s (%s): output shape (%lld,%lld,%lld) is empty for input (%d,%d,%d)",
                       m->path, vc_str(n->name), vc_op_names[n->op], (long long)c, (long long)h, (long long)w,
                       in0(m, n)->c, in0(m, n)->h, in0(m, n)->w);
    int ovf = 0;
    int64_t size = ck_mul(ck_mul(c, h, &ovf), w, &ovf);
    if (ovf || size > VC_LIM_ELEMS || h > VC_LIM_SPATIAL || w > VC_LIM_SPATIAL || (rank == 4 && c > VC_LIM_CHANNELS))
        return vc_fail(err, VC_EINPUT, "%s: node %s (%s): output shape (%lld,%lld,%lld) is past the limits "
                       "(channels %d, height and width %d, 2^30 values per image)", m->path, vc_str(n->name), vc_op_names[n->op],
                       (long long)c, (long long)h, (long long)w, VC_LIM_CHANNELS, VC_LIM_SPATIAL);
    n->rank = rank; n->c = (int)c; n->h = (int)h; n->w = (int)w;
    n->size = (size_t)size;
    return VC_OK;
}

// Output height and width of a conv or pool node, in checked 64-bit
// arithmetic, and the same as ops/shapes.c computes in int (which the limits
// make exact).
static int window_out(const vc_model *m, const vc_node *n, int ceil_mode, int64_t *ho, int64_t *wo, vc_error *err) {
    const vc_node *x = in0(m, n);
    int ovf = 0;
    *ho = ck_out_size(x->h, n->a.kernel[0], n->a.stride[0], n->a.padding[0], n->a.dilation[0], ceil_mode, &ovf);
    *wo = ck_out_size(x->w, n->a.kernel[1], n->a.stride[1], n->a.padding[1], n->a.dilation[1], ceil_mode, &ovf);
    if (ovf) return vc_fail(err, VC_EINPUT, "%s: node %s: output size overflows", m->path, vc_str(n->name));
    return VC_OK;
}

static int same_as_input(const vc_model *m, vc_node *n, vc_error *err) {
    const vc_node *x = in0(m, n);
    return set_shape(m, n, x->rank, x->c, x->h, x->w, err);
}

// ---- conv2d ---------------------------------------------------------------------
static conv2d_dims conv_dims(const vc_model *m, const vc_node *n, int N) {
    const vc_node *x = in0(m, n);
    conv2d_dims d = {.N = N, .C = x->c, .H = x->h, .W = x->w, .Co = n->c,
                     .kh = n->a.kernel[0], .kw = n->a.kernel[1], .sh = n->a.stride[0], .sw = n->a.stride[1],
                     .ph = n->a.padding[0], .pw = n->a.padding[1], .dh = n->a.dilation[0], .dw = n->a.dilation[1],
                     .groups = n->a.groups};
    conv2d_dims_finish(&d);
    return d;
}

// engine/backend.h: the same geometry for the backends
conv2d_dims vc_conv_dims(const vc_model *m, const vc_node *n, int N) { return conv_dims(m, n, N); }

static int conv2d_infer(const vc_model *m, vc_node *n, vc_error *err) {
    if (need_spatial(m, n, err)) return VC_EINPUT;
    if (n->param[VC_P_WEIGHT] < 0) return vc_fail(err, VC_EINPUT, "%s: node %s: conv2d has no weight", m->path, vc_str(n->name));
    const vc_param *w = &m->params[n->param[VC_P_WEIGHT]];
    const vc_node *x = in0(m, n);
    int g = n->a.groups;
    if (w->rank != 4) return vc_fail(err, VC_EINPUT, "%s: node %s: weight '%s' has rank %d, expected 4", m->path, vc_str(n->name), vc_str(w->name), w->rank);
    if (g < 1 || x->c % g || w->dim[0] % g)
        return vc_fail(err, VC_EINPUT, "%s: node %s: groups=%d does not divide in channels %d and out channels %d",
                       m->path, vc_str(n->name), g, x->c, w->dim[0]);
    for (int k = 0; k < 2; k++)
        if (n->a.kernel[k] < 1 || n->a.stride[k] < 1 || n->a.padding[k] < 0 || n->a.dilation[k] < 1)
            return vc_fail(err, VC_EINPUT, "%s: node %s: bad kernel/stride/padding/dilation", m->path, vc_str(n->name));
    int wd[4] = {w->dim[0], x->c / g, n->a.kernel[0], n->a.kernel[1]};
    if (check_param(m, n, VC_P_WEIGHT, "weight", 4, wd, err)) return VC_EINPUT;
    if (check_param(m, n, VC_P_BIAS, "bias", 1, wd, err)) return VC_EINPUT;
    n->c = w->dim[0];
    int64_t ho, wo;
    if (window_out(m, n, 0, &ho, &wo, err)) return VC_EINPUT;
    // the im2col panel of one image: (C/g * kh * kw) x (Ho * Wo)
    int ovf = 0;
    int64_t panel = ck_mul(ck_mul(ck_mul(x->c / g, n->a.kernel[0], &ovf), n->a.kernel[1], &ovf), ck_mul(ho, wo, &ovf), &ovf);
    if (ovf || panel > VC_LIM_ELEMS)
        return vc_fail(err, VC_EINPUT, "%s: node %s: conv2d's unfolded input (C/groups*kh*kw*Ho*Wo) is past 2^30 values", m->path, vc_str(n->name));
    if (set_shape(m, n, 4, w->dim[0], ho, wo, err)) return VC_EINPUT;
    conv2d_dims d = conv_dims(m, n, 1);
    VC_ASSERT(d.Ho == ho && d.Wo == wo);
    return VC_OK;
}

// The effective weight and bias under masks: w*kmask[j,i]*cmask[j], b*cmask[j].
static void conv_masked_weights(vc_run *r, int i, const float **w, const float **b) {
    const vc_node *n = run_node(r, i);
    *w = run_param(r, n, VC_P_WEIGHT);
    *b = run_param(r, n, VC_P_BIAS);
    if (!r->kmask[i] && !r->cmask[i]) return;
    int Co = n->c, Cg = in0(r->m, n)->c / n->a.groups, kk = n->a.kernel[0] * n->a.kernel[1];
    size_t nw = (size_t)Co * Cg * kk;
    if (!r->wmasked[i]) r->wmasked[i] = malloc_check((nw + Co) * sizeof(float));
    float *wm = r->wmasked[i], *bm = wm + nw;
    for (int j = 0; j < Co; j++) {
        float cm = r->cmask[i] ? r->cmask[i][j] : 1.0f;
        for (int c = 0; c < Cg; c++) {
            float km = cm * (r->kmask[i] ? r->kmask[i][(size_t)j * Cg + c] : 1.0f);
            const float *src = *w + ((size_t)j * Cg + c) * kk;
            float *dst = wm + ((size_t)j * Cg + c) * kk;
            for (int k = 0; k < kk; k++) dst[k] = src[k] * km;
        }
        bm[j] = *b ? (*b)[j] * cm : 0.0f;
    }
    *w = wm;
    *b = *b ? bm : NULL;
}

static void conv2d_fwd(vc_run *r, int i) {
    const vc_node *n = run_node(r, i);
    conv2d_dims d = conv_dims(r->m, n, r->N);
    const float *w, *b;
    conv_masked_weights(r, i, &w, &b);
    conv2d_forward(r->act[i], r->act[n->in[0]], w, b, &d);
}

static void conv2d_bwd(vc_run *r, int i, int params) {
    const vc_node *n = run_node(r, i);
    conv2d_dims d = conv_dims(r->m, n, r->N);
    const float *w, *b;
    conv_masked_weights(r, i, &w, &b);
    float *dw = run_pgrad(r, n, VC_P_WEIGHT, params), *db = run_pgrad(r, n, VC_P_BIAS, params);
    int masked = r->kmask[i] || r->cmask[i];
    float *dwe = dw, *dbe = db;
    size_t nw = (size_t)d.Co * (d.C / d.groups) * d.kh * d.kw;
    if (masked && dw) dwe = calloc_check(nw, sizeof(float));
    if (masked && db) dbe = calloc_check(d.Co, sizeof(float));
    conv2d_backward(r->grad[n->in[0]], dwe, dbe, r->grad[i], r->act[n->in[0]], w, &d);
    if (masked) {
        // d/dW of W*mask is mask * d/d(W*mask); the masked copy's layout is the weight's.
        int Cg = d.C / d.groups, kk = d.kh * d.kw;
        for (int j = 0; dw && j < d.Co; j++)
            for (int c = 0; c < Cg; c++) {
                float km = (r->cmask[i] ? r->cmask[i][j] : 1.0f) * (r->kmask[i] ? r->kmask[i][(size_t)j * Cg + c] : 1.0f);
                for (int k = 0; k < kk; k++) dw[((size_t)j * Cg + c) * kk + k] += km * dwe[((size_t)j * Cg + c) * kk + k];
            }
        for (int j = 0; db && j < d.Co; j++) db[j] += (r->cmask[i] ? r->cmask[i][j] : 1.0f) * dbe[j];
        if (dwe != dw) free(dwe);
        if (dbe != db) free(dbe);
    }
}

// ---- linear ---------------------------------------------------------------------
static int linear_infer(const vc_model *m, vc_node *n, vc_error *err) {
    const vc_node *x = in0(m, n);
    if (x->rank != 2)
        return vc_fail(err, VC_EINPUT, "%s: node %s: linear needs an (N,K) input, got (N,%d,%d,%d) from %s (flatten first)",
                       m->path, vc_str(n->name), x->c, x->h, x->w, vc_str(x->name));
    if (n->param[VC_P_WEIGHT] < 0) return vc_fail(err, VC_EINPUT, "%s: node %s: linear has no weight", m->path, vc_str(n->name));
    const vc_param *w = &m->params[n->param[VC_P_WEIGHT]];
    int wd[2] = {w->rank == 2 ? w->dim[0] : -1, x->c};
    if (check_param(m, n, VC_P_WEIGHT, "weight", 2, wd, err)) return VC_EINPUT;
    if (check_param(m, n, VC_P_BIAS, "bias", 1, wd, err)) return VC_EINPUT;
    return set_shape(m, n, 2, w->dim[0], 1, 1, err);
}
static void linear_fwd(vc_run *r, int i) {
    const vc_node *n = run_node(r, i);
    linear_forward(r->act[i], r->act[n->in[0]], run_param(r, n, VC_P_WEIGHT), run_param(r, n, VC_P_BIAS),
                   r->N, in0(r->m, n)->c, n->c);
}
static void linear_bwd(vc_run *r, int i, int params) {
    const vc_node *n = run_node(r, i);
    linear_backward(r->grad[n->in[0]], run_pgrad(r, n, VC_P_WEIGHT, params), run_pgrad(r, n, VC_P_BIAS, params),
                    r->grad[i], r->act[n->in[0]], run_param(r, n, VC_P_WEIGHT), r->N, in0(r->m, n)->c, n->c);
}

// ---- relu -------------------------------------------------------------------------
static void relu_fwd(vc_run *r, int i) {
    relu_forward(r->act[i], r->act[run_node(r, i)->in[0]], r->N * run_node(r, i)->size);
}
static void relu_bwd(vc_run *r, int i, int params) {
    (void)params;
    relu_backward(r->grad[run_node(r, i)->in[0]], r->grad[i], r->act[i], r->N * run_node(r, i)->size);
}

static void relu_decide(const vc_run *r, int i, void *out) {
    relu_decisions(out, r->act[i], r->N * run_node(r, i)->size);
}

// ---- pools ------------------------------------------------------------------------
static pool2d_dims pool_dims(const vc_model *m, const vc_node *n, int N) {
    const vc_node *x = in0(m, n);
    pool2d_dims d = {.N = N, .C = x->c, .H = x->h, .W = x->w, .kh = n->a.kernel[0], .kw = n->a.kernel[1],
                     .sh = n->a.stride[0], .sw = n->a.stride[1], .ph = n->a.padding[0], .pw = n->a.padding[1],
                     .dh = n->a.dilation[0], .dw = n->a.dilation[1], .ceil_mode = n->a.ceil_mode,
                     .count_include_pad = n->a.count_include_pad, .divisor_override = n->a.divisor_override};
    pool2d_dims_finish(&d);
    return d;
}
// Whether every output window of a pool (per dimension) holds at least one
// input tap: a window that falls wholly into padding or between dilated taps
// has no argmax (maxpool's backward would index -1) and no count (avgpool).
static int pool_windows_hit(int64_t in, int64_t k, int64_t s, int64_t p, int64_t d, int64_t out) {
    for (int64_t o = 0; o < out; o++) {
        int64_t start = o * s - p, i0 = start >= 0 ? 0 : (-start + d - 1) / d;
        if (i0 >= k || start + i0 * d >= in) return 0;
    }
    return 1;
}

static int pool_infer(const vc_model *m, vc_node *n, vc_error *err) {
    if (need_spatial(m, n, err)) return VC_EINPUT;
    if (n->op == VC_OP_AVGPOOL2D && (n->a.dilation[0] != 1 || n->a.dilation[1] != 1))
        return vc_fail(err, VC_EINPUT, "%s: node %s: avgpool2d has no dilation", m->path, vc_str(n->name));
    for (int k = 0; k < 2; k++) {
        if (n->a.kernel[k] < 1 || n->a.stride[k] < 1 || n->a.dilation[k] < 1 || n->a.padding[k] < 0)
            return vc_fail(err, VC_EINPUT, "%s: node %s: bad kernel/stride/padding/dilation", m->path, vc_str(n->name));
        if (n->a.padding[k] * 2 > n->a.kernel[k])
            return vc_fail(err, VC_EINPUT, "%s: node %s: padding %d is more than half the kernel %d (PyTorch rejects it too)",
                           m->path, vc_str(n->name), n->a.padding[k], n->a.kernel[k]);
    }
    int64_t ho, wo;
    if (window_out(m, n, n->a.ceil_mode, &ho, &wo, err) || set_shape(m, n, 4, in0(m, n)->c, ho, wo, err)) return VC_EINPUT;
    const vc_node *x = in0(m, n);
    if (!pool_windows_hit(x->h, n->a.kernel[0], n->a.stride[0], n->a.padding[0], n->a.dilation[0], ho) ||
        !pool_windows_hit(x->w, n->a.kernel[1], n->a.stride[1], n->a.padding[1], n->a.dilation[1], wo))
        return vc_fail(err, VC_EINPUT, "%s: node %s: a pooling window covers no input value (padding/dilation too large for input %dx%d)",
                       m->path, vc_str(n->name), x->h, x->w);
    pool2d_dims d = pool_dims(m, n, 1);
    VC_ASSERT(d.Ho == ho && d.Wo == wo);
    return VC_OK;
}
static void maxpool2d_fwd(vc_run *r, int i) {
    const vc_node *n = run_node(r, i);
    if (!r->saved[i]) r->saved[i] = malloc_check(r->N * n->size * sizeof(int32_t));
    pool2d_dims d = pool_dims(r->m, n, r->N);
    maxpool2d_forward(r->act[i], r->saved[i], r->act[n->in[0]], &d);
}
static void maxpool2d_bwd(vc_run *r, int i, int params) {
    (void)params;
    const vc_node *n = run_node(r, i);
    pool2d_dims d = pool_dims(r->m, n, r->N);
    maxpool2d_backward(r->grad[n->in[0]], r->grad[i], r->saved[i], &d);
}
// the argmax the forward saved for the backward, as it is
static void maxpool2d_decide(const vc_run *r, int i, void *out) {
    memcpy(out, r->saved[i], r->N * run_node(r, i)->size * sizeof(int32_t));
}
static void avgpool2d_fwd(vc_run *r, int i) {
    const vc_node *n = run_node(r, i);
    pool2d_dims d = pool_dims(r->m, n, r->N);
    avgpool2d_forward(r->act[i], r->act[n->in[0]], &d);
}
static void avgpool2d_bwd(vc_run *r, int i, int params) {
    (void)params;
    const vc_node *n = run_node(r, i);
    pool2d_dims d = pool_dims(r->m, n, r->N);
    avgpool2d_backward(r->grad[n->in[0]], r->grad[i], &d);
}

static int adaptive_infer(const vc_model *m, vc_node *n, vc_error *err) {
    if (need_spatial(m, n, err)) return VC_EINPUT;
    return set_shape(m, n, 4, in0(m, n)->c, n->a.output[0], n->a.output[1], err);
}
static void adaptive_fwd(vc_run *r, int i) {
    const vc_node *n = run_node(r, i), *x = in0(r->m, n);
    adaptive_avgpool2d_forward(r->act[i], r->act[n->in[0]], r->N, x->c, x->h, x->w, n->h, n->w);
}
static void adaptive_bwd(vc_run *r, int i, int params) {
    (void)params;
    const vc_node *n = run_node(r, i), *x = in0(r->m, n);
    adaptive_avgpool2d_backward(r->grad[n->in[0]], r->grad[i], r->N, x->c, x->h, x->w, n->h, n->w);
}

// ---- batchnorm2d (eval) -------------------------------------------------------------
static int bn_infer(const vc_model *m, vc_node *n, vc_error *err) {
    if (need_spatial(m, n, err)) return VC_EINPUT;
    int c[1] = {in0(m, n)->c};
    if (n->param[VC_P_MEAN] < 0 || n->param[VC_P_VAR] < 0)
        return vc_fail(err, VC_EINPUT, "%s: node %s: batchnorm2d needs running_mean and running_var", m->path, vc_str(n->name));
    if ((n->param[VC_P_WEIGHT] < 0) != (n->param[VC_P_BIAS] < 0))
        return vc_fail(err, VC_EINPUT, "%s: node %s: batchnorm2d needs both weight and bias, or neither", m->path, vc_str(n->name));
    if (!(n->a.eps > 0)) return vc_fail(err, VC_EINPUT, "%s: node %s: batchnorm2d eps must be > 0", m->path, vc_str(n->name));
    if (check_param(m, n, VC_P_WEIGHT, "weight", 1, c, err) || check_param(m, n, VC_P_BIAS, "bias", 1, c, err) ||
        check_param(m, n, VC_P_MEAN, "running_mean", 1, c, err) || check_param(m, n, VC_P_VAR, "running_var", 1, c, err))
        return VC_EINPUT;
    return same_as_input(m, n, err);
}
static void bn_fwd(vc_run *r, int i) {
    const vc_node *n = run_node(r, i);
    batchnorm2d_forward(r->act[i], r->act[n->in[0]], run_param(r, n, VC_P_WEIGHT), run_param(r, n, VC_P_BIAS),
                        run_param(r, n, VC_P_MEAN), run_param(r, n, VC_P_VAR), n->a.eps, r->N, n->c, n->h * n->w);
}
static void bn_bwd(vc_run *r, int i, int params) {
    const vc_node *n = run_node(r, i);
    batchnorm2d_backward(r->grad[n->in[0]], run_pgrad(r, n, VC_P_WEIGHT, params), run_pgrad(r, n, VC_P_BIAS, params),
                         r->grad[i], r->act[n->in[0]], run_param(r, n, VC_P_WEIGHT), run_param(r, n, VC_P_MEAN),
                         run_param(r, n, VC_P_VAR), n->a.eps, r->N, n->c, n->h * n->w);
}

// ---- lrn ----------------------------------------------------------------------------
static int lrn_infer(const vc_model *m, vc_node *n, vc_error *err) {
    if (need_spatial(m, n, err)) return VC_EINPUT;
    if (n->a.size < 1) return vc_fail(err, VC_EINPUT, "%s: node %s: lrn size must be >= 1", m->path, vc_str(n->name));
    if (!(n->a.k > 0) || !(n->a.alpha >= 0)) return vc_fail(err, VC_EINPUT, "%s: node %s: lrn needs k > 0 and alpha >= 0", m->path, vc_str(n->name));
    return same_as_input(m, n, err);
}
static void lrn_fwd(vc_run *r, int i) {
    const vc_node *n = run_node(r, i);
    if (!r->saved[i]) r->saved[i] = malloc_check(r->N * n->size * sizeof(float));
    lrn_forward(r->act[i], r->saved[i], r->act[n->in[0]], r->N, n->c, n->h * n->w, n->a.size, n->a.alpha, n->a.beta, n->a.k);
}
static void lrn_bwd(vc_run *r, int i, int params) {
    (void)params;
    const vc_node *n = run_node(r, i);
    lrn_backward(r->grad[n->in[0]], r->grad[i], r->saved[i], r->act[n->in[0]], r->N, n->c, n->h * n->w,
                 n->a.size, n->a.alpha, n->a.beta, n->a.k);
}

// ---- concat, add, flatten, dropout, log_softmax ----------------------------------------
#define MAX_CONCAT 64
static int concat_infer(const vc_model *m, vc_node *n, vc_error *err) {
    if (n->n_in > MAX_CONCAT) return vc_fail(err, VC_EINPUT, "%s: node %s: concat of more than %d inputs", m->path, vc_str(n->name), MAX_CONCAT);
    int64_t c = 0;
    const vc_node *x0 = in0(m, n);
    for (int k = 0; k < n->n_in; k++) {
        const vc_node *x = &m->nodes[n->in[k]];
        if (x->rank != x0->rank || x->h != x0->h || x->w != x0->w)
            return vc_fail(err, VC_EINPUT, "%s: node %s: concat inputs %s (%d,%d,%d) and %s (%d,%d,%d) differ in spatial size",
                           m->path, vc_str(n->name), vc_str(x0->name), x0->c, x0->h, x0->w, vc_str(x->name), x->c, x->h, x->w);
        c += x->c;
    }
    return set_shape(m, n, x0->rank, c, x0->h, x0->w, err);
}
static void concat_fwd(vc_run *r, int i) {
    const vc_node *n = run_node(r, i);
    const float *xs[MAX_CONCAT];
    int cs[MAX_CONCAT];
    for (int k = 0; k < n->n_in; k++) { xs[k] = r->act[n->in[k]]; cs[k] = r->m->nodes[n->in[k]].c; }
    concat_forward(r->act[i], xs, cs, n->n_in, r->N, n->h * n->w);
}
static void concat_bwd(vc_run *r, int i, int params) {
    (void)params;
    const vc_node *n = run_node(r, i);
    float *dxs[MAX_CONCAT];
    int cs[MAX_CONCAT];
    for (int k = 0; k < n->n_in; k++) { dxs[k] = r->grad[n->in[k]]; cs[k] = r->m->nodes[n->in[k]].c; }
    concat_backward(dxs, r->grad[i], cs, n->n_in, r->N, n->h * n->w);
}

static int add_infer(const vc_model *m, vc_node *n, vc_error *err) {
    const vc_node *a = &m->nodes[n->in[0]], *b = &m->nodes[n->in[1]];
    if (a->rank != b->rank || a->c != b->c || a->h != b->h || a->w != b->w)
        return vc_fail(err, VC_EINPUT, "%s: node %s: add of %s (%d,%d,%d) and %s (%d,%d,%d): shapes differ",
                       m->path, vc_str(n->name), vc_str(a->name), a->c, a->h, a->w, vc_str(b->name), b->c, b->h, b->w);
    return same_as_input(m, n, err);
}
static void add_fwd(vc_run *r, int i) {
    const vc_node *n = run_node(r, i);
    add_forward(r->act[i], r->act[n->in[0]], r->act[n->in[1]], r->N * n->size);
}
static void add_bwd(vc_run *r, int i, int params) {
    (void)params;
    const vc_node *n = run_node(r, i);
    if (n->in[0] == n->in[1]) {   // x + x: both contributions land in one buffer
        add_backward(r->grad[n->in[0]], NULL, r->grad[i], r->N * n->size);
        add_backward(r->grad[n->in[0]], NULL, r->grad[i], r->N * n->size);
    } else
        add_backward(r->grad[n->in[0]], r->grad[n->in[1]], r->grad[i], r->N * n->size);
}

static int flatten_infer(const vc_model *m, vc_node *n, vc_error *err) {
    const vc_node *x = in0(m, n);
    return set_shape(m, n, 2, (int)x->size, 1, 1, err);
}
static void flatten_fwd(vc_run *r, int i) {
    flatten_forward(r->act[i], r->act[run_node(r, i)->in[0]], r->N * run_node(r, i)->size);
}
static void flatten_bwd(vc_run *r, int i, int params) {
    (void)params;
    flatten_backward(r->grad[run_node(r, i)->in[0]], r->grad[i], r->N * run_node(r, i)->size);
}

static int dropout_infer(const vc_model *m, vc_node *n, vc_error *err) {
    if (!(n->a.p >= 0 && n->a.p < 1)) return vc_fail(err, VC_EINPUT, "%s: node %s: dropout p must be in [0,1)", m->path, vc_str(n->name));
    return same_as_input(m, n, err);
}
static void dropout_fwd(vc_run *r, int i) {
    const vc_node *n = run_node(r, i);
    if (r->train && !r->saved[i]) r->saved[i] = malloc_check(r->N * n->size * sizeof(float));
    dropout_forward(r->act[i], r->train ? r->saved[i] : NULL, r->act[n->in[0]], r->N * n->size, n->a.p, r->train, &r->rng);
}
static void dropout_bwd(vc_run *r, int i, int params) {
    (void)params;
    const vc_node *n = run_node(r, i);
    dropout_backward(r->grad[n->in[0]], r->grad[i], r->saved[i], r->N * n->size, r->train);
}

static int log_softmax_infer(const vc_model *m, vc_node *n, vc_error *err) {
    if (in0(m, n)->rank != 2)
        return vc_fail(err, VC_EINPUT, "%s: node %s: log_softmax needs an (N,K) input", m->path, vc_str(n->name));
    return same_as_input(m, n, err);
}
static void log_softmax_fwd(vc_run *r, int i) {
    const vc_node *n = run_node(r, i);
    log_softmax_forward(r->act[i], r->act[n->in[0]], r->N, n->c);
}
static void log_softmax_bwd(vc_run *r, int i, int params) {
    (void)params;
    const vc_node *n = run_node(r, i);
    log_softmax_backward(r->grad[n->in[0]], r->grad[i], r->act[i], r->N, n->c);
}

const vc_op_impl vc_cpu_ops[VC_OP_COUNT] = {
    [VC_OP_CONV2D] = {conv2d_infer, conv2d_fwd, conv2d_bwd, 1},
    [VC_OP_LINEAR] = {linear_infer, linear_fwd, linear_bwd, 1},
    [VC_OP_RELU] = {same_as_input, relu_fwd, relu_bwd, 0, VC_DEC_REGION, relu_decide},
    [VC_OP_MAXPOOL2D] = {pool_infer, maxpool2d_fwd, maxpool2d_bwd, 0, VC_DEC_ARGMAX, maxpool2d_decide},
    [VC_OP_AVGPOOL2D] = {pool_infer, avgpool2d_fwd, avgpool2d_bwd},
    [VC_OP_ADAPTIVE_AVGPOOL2D] = {adaptive_infer, adaptive_fwd, adaptive_bwd},
    [VC_OP_BATCHNORM2D] = {bn_infer, bn_fwd, bn_bwd, 1},
    [VC_OP_LRN] = {lrn_infer, lrn_fwd, lrn_bwd},
    [VC_OP_CONCAT] = {concat_infer, concat_fwd, concat_bwd, 1},
    [VC_OP_ADD] = {add_infer, add_fwd, add_bwd},
    [VC_OP_FLATTEN] = {flatten_infer, flatten_fwd, flatten_bwd},
    [VC_OP_DROPOUT] = {dropout_infer, dropout_fwd, dropout_bwd},
    [VC_OP_LOG_SOFTMAX] = {log_softmax_infer, log_softmax_fwd, log_softmax_bwd},
    // issue 20's ops (engine/op_families.c)
    [VC_OP_HARDTANH] = {fam_hardtanh_infer, fam_hardtanh_fwd, fam_hardtanh_bwd, 0, VC_DEC_REGION, fam_hardtanh_decide},
    [VC_OP_HARDSWISH] = {fam_unary_infer, fam_hardswish_fwd, fam_hardswish_bwd, 0, VC_DEC_REGION, fam_saved_region_decide},
    [VC_OP_HARDSIGMOID] = {fam_unary_infer, fam_hardsigmoid_fwd, fam_hardsigmoid_bwd, 0, VC_DEC_REGION, fam_saved_region_decide},
    [VC_OP_SIGMOID] = {fam_unary_infer, fam_sigmoid_fwd, fam_sigmoid_bwd},
    [VC_OP_SILU] = {fam_unary_infer, fam_silu_fwd, fam_silu_bwd},
    [VC_OP_GELU] = {fam_unary_infer, fam_gelu_fwd, fam_gelu_bwd},
    [VC_OP_MUL] = {fam_mul_infer, fam_mul_fwd, fam_mul_bwd},
    [VC_OP_LAYERNORM2D] = {fam_layernorm2d_infer, fam_layernorm2d_fwd, fam_layernorm2d_bwd, 1},
    [VC_OP_CHANNEL_SHUFFLE] = {fam_shuffle_infer, fam_shuffle_fwd, fam_shuffle_bwd},
    [VC_OP_CHANNEL_SLICE] = {fam_slice_infer, fam_slice_fwd, fam_slice_bwd},
};

// ---- discrete decisions (viscnn.h) ---------------------------------------------------
vc_decision_kind vc_node_decisions(const vc_model *m, int node) {
    if (node < 1 || node >= m->n_nodes) return VC_DEC_NONE;
    return vc_cpu_ops[m->nodes[node].op].decision;
}

int vc_run_decisions(const vc_run *r, int node, void *out, vc_error *err) {
    const vc_model *m = r->m;
    if (node < 0 || node >= m->n_nodes) return vc_fail(err, VC_EINPUT, "decisions: no node %d", node);
    const vc_node *n = &m->nodes[node];
    const vc_op_impl *op = &r->be->ops[n->op];
    if (node == 0 || op->decision == VC_DEC_NONE)
        return vc_fail(err, VC_EINPUT, "decisions: node %s (%s) makes no decisions", vc_str(n->name), vc_op_names[n->op]);
    if (!r->act[node] || (op->decision == VC_DEC_ARGMAX && !r->saved[node]))
        return vc_fail(err, VC_EINPUT, "decisions: node %s was not computed, or its output was freed", vc_str(n->name));
    op->decide(r, node, out);
    return VC_OK;
}
