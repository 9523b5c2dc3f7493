// backend.cu: the CUDA backend (engine/backend.h). A run's device memory is
// planned once when the run is made (every node's activation and gradient,
// what pooling and LRN save, the conv workspace, the buffers of the
// analysis' reductions: one cudaMalloc) and reused by every batch; the
// parameter gradients take a second one on the first backward that asks for
// them. The model's parameters are uploaded once per model (a cache keyed by
// the model, dropped when vc_model_free calls forget_model) and shared by all
// its runs. The ops are vc_cuda_ops below: the same glue from graph nodes to
// kernels as engine/op_table.c, over device pointers.
extern "C" {
#include "../engine/backend.h"
}
#include <pthread.h>
#include "kernels.h"

// ---- the model's parameters on the device, once per model ------------------------------
typedef struct model_params {
    const vc_model *m;
    float *block;             // every parameter, back to back
    float **p;                // [param] into block
    struct model_params *next;
} model_params;
static model_params *param_cache;
static pthread_mutex_t param_lock = PTHREAD_MUTEX_INITIALIZER;

static float **params_on_device(const vc_model *m) {
    pthread_mutex_lock(&param_lock);
    model_params *e = param_cache;
    while (e && e->m != m) e = e->next;
    if (!e) {
        e = (model_params *)calloc_check(1, sizeof *e);
        e->m = m;
        e->p = (float **)calloc_check(m->n_params ? m->n_params : 1, sizeof(float *));
        size_t total = 0;
        for (int i = 0; i < m->n_params; i++) total += (m->params[i].size + 63) / 64 * 64;
        cuda_check(cudaMalloc((void **)&e->block, (total ? total : 1) * sizeof(float)));
        size_t off = 0;
        for (int i = 0; i < m->n_params; i++) {
            e->p[i] = e->block + off;
            cuda_check(cudaMemcpy(e->p[i], m->params[i].data, m->params[i].size * sizeof(float), cudaMemcpyHostToDevice));
            off += (m->params[i].size + 63) / 64 * 64;
        }
        e->next = param_cache;
        param_cache = e;
    }
    pthread_mutex_unlock(&param_lock);
    return e->p;
}

static void cuda_forget_model(const vc_model *m) {
    pthread_mutex_lock(&param_lock);
    for (model_params **pp = &param_cache; *pp; pp = &(*pp)->next)
        if ((*pp)->m == m) {
            model_params *e = *pp;
            *pp = e->next;
            cudaFree(e->block);   // at exit the context may be gone already; nothing to report then
            free(e->p);
            free(e);
            break;
        }
    pthread_mutex_unlock(&param_lock);
}

// ---- per-run state --------------------------------------------------------------------
typedef struct {
    float **p;                          // [param] the model's device parameters
    char *plan;                         // the one allocation below
    size_t *off_act, *off_grad, *off_saved, *cap_saved;   // [node] byte offsets into plan
    float *ws;                          // conv workspace (floats: conv2d_cuda_workspace)
    float *dwm;                         // masked conv backward: dW and db of the masked copy
    float *edge_out;                    // 2 x (N, Co, cg) of the widest conv: per image, then summed
    size_t edge_cap;
    float *edge_map;                    // (Co/groups, Ho, Wo) of the widest conv
    double *node_out;                   // (N, widest C)
    float *pgrad_block;                 // every parameter gradient, on the first request
    float **wm, **kmask, **cmask;       // [node] masked conv weight (+ bias); device copies of the masks
    float **hact, **hgrad, **hpgrad;    // host views
    unsigned char *hact_ok, *hgrad_ok, *hpgrad_ok;
    float *hedge;                       // host staging for edge scores: (Co, cg)
} cuda_run;

#define ALIGN(b) (((b) + 255) / 256 * 256)

static int cuda_available(vc_error *err) {
    static int state = -1;              // -1 unknown, 0 ok, 1 not available
    static char why[512];
    if (state < 0) {
        int n = 0;
        cudaError_t e = cudaGetDeviceCount(&n);
        if (e != cudaSuccess) {
            snprintf(why, sizeof why, "--device cuda: no usable CUDA device (%s: %s)", cudaGetErrorName(e), cudaGetErrorString(e));
            state = 1;
        } else if (n == 0) {
            snprintf(why, sizeof why, "--device cuda: no CUDA device on this machine");
            state = 1;
        } else {
            cudaDeviceProp p;
            cuda_check(cudaGetDeviceProperties(&p, 0));
            if (p.major < 9) {
                snprintf(why, sizeof why, "--device cuda: %s has compute capability %d.%d; this build has code for "
                         "sm_90 and newer (rebuild with make CUDA=1 CUDA_ARCH=sm_%d%d)", p.name, p.major, p.minor, p.major, p.minor);
                state = 1;
            } else state = 0;
        }
    }
    return state ? vc_fail(err, VC_EINPUT, "%s", why) : VC_OK;
}

static void cuda_run_fini(vc_run *r) {
    cuda_run *c = (cuda_run *)r->bstate;
    if (!c) return;
    int n = r->m->n_nodes;
    cudaFree(c->plan);
    cudaFree(c->pgrad_block);
    for (int i = 0; i < n; i++) { cudaFree(c->wm[i]); cudaFree(c->kmask[i]); cudaFree(c->cmask[i]); free(c->hact[i]); free(c->hgrad[i]); }
    for (int i = 0; i < r->m->n_params; i++) free(c->hpgrad[i]);
    free(c->off_act); free(c->off_grad); free(c->off_saved); free(c->cap_saved);
    free(c->wm); free(c->kmask); free(c->cmask);
    free(c->hact); free(c->hgrad); free(c->hpgrad); free(c->hact_ok); free(c->hgrad_ok); free(c->hpgrad_ok);
    free(c->hedge);
    free(c);
    r->bstate = NULL;
}

static int cuda_ops_missing(const vc_model *m, vc_error *err);

static int cuda_run_init(vc_run *r, vc_error *err) {
    const vc_model *m = r->m;
    const int n = m->n_nodes, N = r->N, np = m->n_params ? m->n_params : 1;
    if (cuda_ops_missing(m, err)) return VC_EINPUT;
    cuda_run *c = (cuda_run *)calloc_check(1, sizeof *c);
    r->bstate = c;
    c->p = params_on_device(m);
    c->off_act = (size_t *)calloc_check(n, sizeof(size_t));
    c->off_grad = (size_t *)calloc_check(n, sizeof(size_t));
    c->off_saved = (size_t *)calloc_check(n, sizeof(size_t));
    c->cap_saved = (size_t *)calloc_check(n, sizeof(size_t));
    c->wm = (float **)calloc_check(n, sizeof(float *));
    c->kmask = (float **)calloc_check(n, sizeof(float *));
    c->cmask = (float **)calloc_check(n, sizeof(float *));
    c->hact = (float **)calloc_check(n, sizeof(float *));
    c->hgrad = (float **)calloc_check(n, sizeof(float *));
    c->hpgrad = (float **)calloc_check(np, sizeof(float *));
    c->hact_ok = (unsigned char *)calloc_check(n, 1);
    c->hgrad_ok = (unsigned char *)calloc_check(n, 1);
    c->hpgrad_ok = (unsigned char *)calloc_check(np, 1);
    // the plan: byte offsets of every buffer, then one allocation
    size_t off = 0, ws = 1, dwm = 1, edge = 1, emap = 1, widest = 1;
    for (int i = 0; i < n; i++) {
        const vc_node *nd = &m->nodes[i];
        size_t bytes = (size_t)N * nd->size * sizeof(float);
        c->off_act[i] = off; off += ALIGN(bytes);
        c->off_grad[i] = off; off += ALIGN(bytes);
        if (nd->op == VC_OP_MAXPOOL2D || nd->op == VC_OP_LRN) {
            c->off_saved[i] = off; c->cap_saved[i] = bytes; off += ALIGN(bytes);   // int32 argmax / float scale
        }
        if ((size_t)nd->c > widest) widest = (size_t)nd->c;
        if (nd->op == VC_OP_CONV2D) {
            conv2d_dims d = vc_conv_dims(m, nd, N);
            size_t w = conv2d_cuda_workspace(&d), cg = (size_t)(d.C / d.groups);
            if (w > ws) ws = w;
            if ((size_t)d.Co * cg * d.kh * d.kw + d.Co > dwm) dwm = (size_t)d.Co * cg * d.kh * d.kw + d.Co;
            if ((size_t)N * d.Co * cg > edge) edge = (size_t)N * d.Co * cg;
            if ((size_t)(d.Co / d.groups) * d.Ho * d.Wo > emap) emap = (size_t)(d.Co / d.groups) * d.Ho * d.Wo;
        }
    }
    size_t o_ws = off; off += ALIGN(ws * sizeof(float));
    size_t o_dwm = off; off += ALIGN(dwm * sizeof(float));
    size_t o_edge = off; off += ALIGN(2 * edge * sizeof(float));
    size_t o_emap = off; off += ALIGN(emap * sizeof(float));
    size_t o_node = off; off += ALIGN((size_t)N * widest * sizeof(double));
    cudaError_t e = cudaMalloc((void **)&c->plan, off);
    if (e != cudaSuccess) {
        cudaGetLastError();   // clear the sticky-free error state
        size_t freeb = 0, total = 0;
        cudaMemGetInfo(&freeb, &total);
        cuda_run_fini(r);
        return vc_fail(err, VC_EINPUT, "cuda: a run of %s at batch %d needs %.1f MiB of device memory, %.1f MiB are free "
                       "(try a smaller --batch)", m->path ? m->path : "the model", N, off / 1048576.0, freeb / 1048576.0);
    }
    c->ws = (float *)(c->plan + o_ws);
    c->dwm = (float *)(c->plan + o_dwm);
    c->edge_out = (float *)(c->plan + o_edge);
    c->edge_cap = edge;
    c->edge_map = (float *)(c->plan + o_emap);
    c->node_out = (double *)(c->plan + o_node);
    c->hedge = (float *)malloc_check(edge * sizeof(float));
    return VC_OK;
}

static void *cuda_alloc(vc_run *r, vc_buf_kind kind, int index, size_t bytes) {
    cuda_run *c = (cuda_run *)r->bstate;
    const vc_model *m = r->m;
    switch (kind) {
    case VC_BUF_ACT:
        VC_ASSERT(bytes <= (size_t)r->N * m->nodes[index].size * sizeof(float));
        return c->plan + c->off_act[index];
    case VC_BUF_GRAD:
        VC_ASSERT(bytes <= (size_t)r->N * m->nodes[index].size * sizeof(float));
        return c->plan + c->off_grad[index];
    case VC_BUF_SAVED:
        VC_ASSERT(bytes <= c->cap_saved[index]);
        return c->plan + c->off_saved[index];
    case VC_BUF_PGRAD: {
        if (!c->pgrad_block) {
            size_t total = 0;
            for (int i = 0; i < m->n_params; i++) total += (m->params[i].size + 63) / 64 * 64;
            cuda_check(cudaMalloc((void **)&c->pgrad_block, (total ? total : 1) * sizeof(float)));
        }
        size_t off = 0;
        for (int i = 0; i < index; i++) off += (m->params[i].size + 63) / 64 * 64;
        VC_ASSERT(bytes <= m->params[index].size * sizeof(float));
        return c->pgrad_block + off;
    }
    }
    return NULL;
}

// Slices of the plan are not freed one by one: run_fini frees the plan.
static void cuda_free(vc_run *r, vc_buf_kind kind, int index, void *p) { (void)r; (void)kind; (void)index; (void)p; }

static void cuda_copy(void *dst, const void *src, size_t bytes, vc_copy_dir dir) {
    cudaMemcpyKind k = dir == VC_COPY_H2D ? cudaMemcpyHostToDevice : dir == VC_COPY_D2H ? cudaMemcpyDeviceToHost
                                                                                        : cudaMemcpyDeviceToDevice;
    cuda_check(cudaMemcpy(dst, src, bytes, k));
}
static void cuda_zero(void *p, size_t bytes) { cuda_check(cudaMemsetAsync(p, 0, bytes, 0)); }

static const float *cuda_host_view(const vc_run *r, vc_buf_kind kind, int index) {
    cuda_run *c = (cuda_run *)r->bstate;
    size_t n = kind == VC_BUF_PGRAD ? r->m->params[index].size : (size_t)r->N * r->m->nodes[index].size;
    float **h = kind == VC_BUF_ACT ? &c->hact[index] : kind == VC_BUF_GRAD ? &c->hgrad[index] : &c->hpgrad[index];
    unsigned char *ok = kind == VC_BUF_ACT ? &c->hact_ok[index] : kind == VC_BUF_GRAD ? &c->hgrad_ok[index] : &c->hpgrad_ok[index];
    const float *dev = kind == VC_BUF_ACT ? r->act[index] : kind == VC_BUF_GRAD ? r->grad[index] : r->pgrad[index];
    if (!*h) *h = (float *)malloc_check(n * sizeof(float));
    if (!*ok) { cuda_check(cudaMemcpy(*h, dev, n * sizeof(float), cudaMemcpyDeviceToHost)); *ok = 1; }
    return *h;
}

static void cuda_pass_begin(vc_run *r) {
    cuda_run *c = (cuda_run *)r->bstate;
    memset(c->hact_ok, 0, r->m->n_nodes);
    memset(c->hgrad_ok, 0, r->m->n_nodes);
    memset(c->hpgrad_ok, 0, r->m->n_params ? r->m->n_params : 1);
}

// ---- the analysis' reductions ------------------------------------------------------------
static void cuda_edge_maps(vc_run *r, int conv, int n, int ci, float *e) {
    cuda_run *c = (cuda_run *)r->bstate;
    const vc_node *nd = run_node(r, conv);
    conv2d_dims d = vc_conv_dims(r->m, nd, r->N);
    conv2d_edge_maps_cuda(c->edge_map, r->act[nd->in[0]], c->p[nd->param[VC_P_WEIGHT]], &d, n, ci);
    cuda_check(cudaMemcpy(e, c->edge_map, (size_t)(d.Co / d.groups) * d.Ho * d.Wo * sizeof(float), cudaMemcpyDeviceToHost));
}

// The fused kernel's per-image sums, reduced over the images on the device
// (edge_out: (N, Co, cg), then (Co, cg) after it), then added into acc.
static void cuda_edge_scores(vc_run *r, int conv, vc_edge_score kind, float scale, float *acc) {
    cuda_run *c = (cuda_run *)r->bstate;
    const vc_node *nd = run_node(r, conv);
    conv2d_dims d = vc_conv_dims(r->m, nd, r->N);
    const size_t per = (size_t)d.Co * (d.C / d.groups), ne = (size_t)r->N * per;
    VC_ASSERT(ne <= c->edge_cap);
    float *s = c->edge_out, *sum = c->edge_out + c->edge_cap;
    conv2d_edge_sums_cuda(kind == VC_EDGE_ABS_EG ? s : NULL, kind == VC_EDGE_EG_ABS ? s : NULL,
                          kind == VC_EDGE_ABS_E ? s : NULL, r->act[nd->in[0]], c->p[nd->param[VC_P_WEIGHT]],
                          r->grad[conv], &d);
    conv2d_edge_reduce_cuda(sum, s, r->N, per, kind == VC_EDGE_EG_ABS, scale);
    cuda_check(cudaMemcpy(c->hedge, sum, per * sizeof(float), cudaMemcpyDeviceToHost));
    for (size_t k = 0; k < per; k++) acc[k] += c->hedge[k];
}

static void cuda_node_sums(vc_run *r, int node, vc_node_sum kind, double *out) {
    cuda_run *c = (cuda_run *)r->bstate;
    const vc_node *nd = run_node(r, node);
    node_sums_cuda(c->node_out, r->act[node], r->grad[node], (int)kind, r->N, nd->c, nd->h * nd->w);
    cuda_check(cudaMemcpy(out, c->node_out, (size_t)r->N * nd->c * sizeof(double), cudaMemcpyDeviceToHost));
}

// ---- the op table: graph nodes -> kernels_cuda/*.cu ----------------------------------------
static const float *dparam(const vc_run *r, const vc_node *n, int role) {
    return n->param[role] >= 0 ? ((cuda_run *)r->bstate)->p[n->param[role]] : NULL;
}
static float *dpgrad(const vc_run *r, const vc_node *n, int role, int params) {
    return params && n->param[role] >= 0 ? r->pgrad[n->param[role]] : NULL;
}
static const vc_node *in0(const vc_run *r, const vc_node *n) { return &r->m->nodes[n->in[0]]; }

// The effective conv weight and bias under masks (w * kmask[j,i] * cmask[j], b * cmask[j]),
// made on the device each forward from the masks the run holds (copied up each time: Co*C/g floats).
static void conv_weights(vc_run *r, int i, const float **w, const float **b) {
    cuda_run *c = (cuda_run *)r->bstate;
    const vc_node *n = run_node(r, i);
    *w = dparam(r, n, VC_P_WEIGHT);
    *b = dparam(r, n, VC_P_BIAS);
    if (!r->kmask[i] && !r->cmask[i]) return;
    const int Co = n->c, Cg = in0(r, n)->c / n->a.groups, kk = n->a.kernel[0] * n->a.kernel[1];
    const size_t nw = (size_t)Co * Cg * kk;
    if (!c->wm[i]) cuda_check(cudaMalloc((void **)&c->wm[i], (nw + Co) * sizeof(float)));
    if (r->kmask[i]) {
        if (!c->kmask[i]) cuda_check(cudaMalloc((void **)&c->kmask[i], (size_t)Co * Cg * sizeof(float)));
        cuda_check(cudaMemcpy(c->kmask[i], r->kmask[i], (size_t)Co * Cg * sizeof(float), cudaMemcpyHostToDevice));
    }
    if (r->cmask[i]) {
        if (!c->cmask[i]) cuda_check(cudaMalloc((void **)&c->cmask[i], (size_t)Co * sizeof(float)));
        cuda_check(cudaMemcpy(c->cmask[i], r->cmask[i], (size_t)Co * sizeof(float), cudaMemcpyHostToDevice));
    }
    conv2d_mask_weights_cuda(c->wm[i], *b ? c->wm[i] + nw : NULL, *w, *b, r->kmask[i] ? c->kmask[i] : NULL,
                             r->cmask[i] ? c->cmask[i] : NULL, Co, Cg, kk);
    *w = c->wm[i];
    *b = *b ? c->wm[i] + nw : NULL;
}

static void conv2d_fwd(vc_run *r, int i) {
    const vc_node *n = run_node(r, i);
    conv2d_dims d = vc_conv_dims(r->m, n, r->N);
    const float *w, *b;
    conv_weights(r, i, &w, &b);
    conv2d_forward_cuda(r->act[i], r->act[n->in[0]], w, b, &d, ((cuda_run *)r->bstate)->ws);
}

static void conv2d_bwd(vc_run *r, int i, int params) {
    cuda_run *c = (cuda_run *)r->bstate;
    const vc_node *n = run_node(r, i);
    conv2d_dims d = vc_conv_dims(r->m, n, r->N);
    const float *w, *b;
    conv_weights(r, i, &w, &b);
    float *dw = dpgrad(r, n, VC_P_WEIGHT, params), *db = dpgrad(r, n, VC_P_BIAS, params);
    const int masked = r->kmask[i] || r->cmask[i];
    if (!masked || (!dw && !db)) {
        conv2d_backward_cuda(r->grad[n->in[0]], dw, db, r->grad[i], r->act[n->in[0]], w, &d, c->ws);
        return;
    }
    // d/dW of W*mask is mask * d/d(W*mask): the masked copy's gradient first, then scaled in
    const int Cg = d.C / d.groups, kk = d.kh * d.kw;
    const size_t nw = (size_t)d.Co * Cg * kk;
    float *dwe = dw ? c->dwm : NULL, *dbe = db ? c->dwm + nw : NULL;
    if (dwe) cuda_zero(dwe, nw * sizeof(float));
    if (dbe) cuda_zero(dbe, (size_t)d.Co * sizeof(float));
    conv2d_backward_cuda(r->grad[n->in[0]], dwe, dbe, r->grad[i], r->act[n->in[0]], w, &d, c->ws);
    conv2d_mask_grads_cuda(dw, db, dwe, dbe, r->kmask[i] ? c->kmask[i] : NULL, r->cmask[i] ? c->cmask[i] : NULL,
                           d.Co, Cg, kk);
}

static void linear_fwd(vc_run *r, int i) {
    const vc_node *n = run_node(r, i);
    linear_forward_cuda(r->act[i], r->act[n->in[0]], dparam(r, n, VC_P_WEIGHT), dparam(r, n, VC_P_BIAS),
                        r->N, in0(r, n)->c, n->c);
}
static void linear_bwd(vc_run *r, int i, int params) {
    const vc_node *n = run_node(r, i);
    linear_backward_cuda(r->grad[n->in[0]], dpgrad(r, n, VC_P_WEIGHT, params), dpgrad(r, n, VC_P_BIAS, params),
                         r->grad[i], r->act[n->in[0]], dparam(r, n, VC_P_WEIGHT), r->N, in0(r, n)->c, n->c);
}

static void relu_fwd(vc_run *r, int i) { relu_forward_cuda(r->act[i], r->act[run_node(r, i)->in[0]], r->N * run_node(r, i)->size); }
static void relu_bwd(vc_run *r, int i, int params) {
    (void)params;
    relu_backward_cuda(r->grad[run_node(r, i)->in[0]], r->grad[i], r->act[i], r->N * run_node(r, i)->size);
}
static void relu_decide(const vc_run *r, int i, void *out) {
    relu_decisions((uint8_t *)out, cuda_host_view(r, VC_BUF_ACT, i), r->N * run_node(r, i)->size);
}

static pool2d_dims pool_dims(const vc_run *r, const vc_node *n) {
    const vc_node *x = in0(r, n);
    pool2d_dims d = {.N = r->N, .C = x->c, .H = x->h, .W = x->w, .kh = n->a.kernel[0], .kw = n->a.kernel[1],
                     .sh = n->a.stride[0], .sw = n->a.stride[1], .ph = n->a.padding[0], .pw = n->a.padding[1],
                     .dh = n->a.dilation[0], .dw = n->a.dilation[1], .ceil_mode = n->a.ceil_mode,
                     .count_include_pad = n->a.count_include_pad, .divisor_override = n->a.divisor_override};
    pool2d_dims_finish(&d);
    return d;
}
static void maxpool2d_fwd(vc_run *r, int i) {
    const vc_node *n = run_node(r, i);
    if (!r->saved[i]) r->saved[i] = cuda_alloc(r, VC_BUF_SAVED, i, r->N * n->size * sizeof(int32_t));
    pool2d_dims d = pool_dims(r, n);
    maxpool2d_forward_cuda(r->act[i], (int32_t *)r->saved[i], r->act[n->in[0]], &d);
}
static void maxpool2d_bwd(vc_run *r, int i, int params) {
    (void)params;
    const vc_node *n = run_node(r, i);
    pool2d_dims d = pool_dims(r, n);
    maxpool2d_backward_cuda(r->grad[n->in[0]], r->grad[i], (const int32_t *)r->saved[i], &d);
}
static void maxpool2d_decide(const vc_run *r, int i, void *out) {
    cuda_check(cudaMemcpy(out, r->saved[i], r->N * run_node(r, i)->size * sizeof(int32_t), cudaMemcpyDeviceToHost));
}
static void avgpool2d_fwd(vc_run *r, int i) {
    const vc_node *n = run_node(r, i);
    pool2d_dims d = pool_dims(r, n);
    avgpool2d_forward_cuda(r->act[i], r->act[n->in[0]], &d);
}
static void avgpool2d_bwd(vc_run *r, int i, int params) {
    (void)params;
    const vc_node *n = run_node(r, i);
    pool2d_dims d = pool_dims(r, n);
    avgpool2d_backward_cuda(r->grad[n->in[0]], r->grad[i], &d);
}
static void adaptive_fwd(vc_run *r, int i) {
    const vc_node *n = run_node(r, i), *x = in0(r, n);
    adaptive_avgpool2d_forward_cuda(r->act[i], r->act[n->in[0]], r->N, x->c, x->h, x->w, n->h, n->w);
}
static void adaptive_bwd(vc_run *r, int i, int params) {
    (void)params;
    const vc_node *n = run_node(r, i), *x = in0(r, n);
    adaptive_avgpool2d_backward_cuda(r->grad[n->in[0]], r->grad[i], r->N, x->c, x->h, x->w, n->h, n->w);
}
static void bn_fwd(vc_run *r, int i) {
    const vc_node *n = run_node(r, i);
    batchnorm2d_forward_cuda(r->act[i], r->act[n->in[0]], dparam(r, n, VC_P_WEIGHT), dparam(r, n, VC_P_BIAS),
                             dparam(r, n, VC_P_MEAN), dparam(r, n, VC_P_VAR), n->a.eps, r->N, n->c, n->h * n->w);
}
static void bn_bwd(vc_run *r, int i, int params) {
    const vc_node *n = run_node(r, i);
    batchnorm2d_backward_cuda(r->grad[n->in[0]], dpgrad(r, n, VC_P_WEIGHT, params), dpgrad(r, n, VC_P_BIAS, params),
                              r->grad[i], r->act[n->in[0]], dparam(r, n, VC_P_WEIGHT), dparam(r, n, VC_P_MEAN),
                              dparam(r, n, VC_P_VAR), n->a.eps, r->N, n->c, n->h * n->w);
}
static void lrn_fwd(vc_run *r, int i) {
    const vc_node *n = run_node(r, i);
    if (!r->saved[i]) r->saved[i] = cuda_alloc(r, VC_BUF_SAVED, i, r->N * n->size * sizeof(float));
    lrn_forward_cuda(r->act[i], (float *)r->saved[i], r->act[n->in[0]], r->N, n->c, n->h * n->w, n->a.size, n->a.alpha,
                     n->a.beta, n->a.k);
}
static void lrn_bwd(vc_run *r, int i, int params) {
    (void)params;
    const vc_node *n = run_node(r, i);
    lrn_backward_cuda(r->grad[n->in[0]], r->grad[i], (const float *)r->saved[i], r->act[n->in[0]], r->N, n->c,
                      n->h * n->w, n->a.size, n->a.alpha, n->a.beta, n->a.k);
}
#define MAX_CONCAT 64   // as engine/op_table.c's concat_infer allows
static void concat_fwd(vc_run *r, int i) {
    const vc_node *n = run_node(r, i);
    const float *xs[MAX_CONCAT];
    int cs[MAX_CONCAT];
    for (int k = 0; k < n->n_in; k++) { xs[k] = r->act[n->in[k]]; cs[k] = r->m->nodes[n->in[k]].c; }
    concat_forward_cuda(r->act[i], xs, cs, n->n_in, r->N, n->h * n->w);
}
static void concat_bwd(vc_run *r, int i, int params) {
    (void)params;
    const vc_node *n = run_node(r, i);
    float *dxs[MAX_CONCAT];
    int cs[MAX_CONCAT];
    for (int k = 0; k < n->n_in; k++) { dxs[k] = r->grad[n->in[k]]; cs[k] = r->m->nodes[n->in[k]].c; }
    concat_backward_cuda(dxs, r->grad[i], cs, n->n_in, r->N, n->h * n->w);
}
static void add_fwd(vc_run *r, int i) {
    const vc_node *n = run_node(r, i);
    add_forward_cuda(r->act[i], r->act[n->in[0]], r->act[n->in[1]], r->N * n->size);
}
static void add_bwd(vc_run *r, int i, int params) {
    (void)params;
    const vc_node *n = run_node(r, i);
    if (n->in[0] == n->in[1]) {   // x + x: both contributions land in one buffer
        add_backward_cuda(r->grad[n->in[0]], NULL, r->grad[i], r->N * n->size);
        add_backward_cuda(r->grad[n->in[0]], NULL, r->grad[i], r->N * n->size);
    } else
        add_backward_cuda(r->grad[n->in[0]], r->grad[n->in[1]], r->grad[i], r->N * n->size);
}
static void flatten_fwd(vc_run *r, int i) { flatten_forward_cuda(r->act[i], r->act[run_node(r, i)->in[0]], r->N * run_node(r, i)->size); }
static void flatten_bwd(vc_run *r, int i, int params) {
    (void)params;
    flatten_backward_cuda(r->grad[run_node(r, i)->in[0]], r->grad[i], r->N * run_node(r, i)->size);
}
// eval only: vc_forward refuses training on a device
static void dropout_fwd(vc_run *r, int i) { dropout_forward_cuda(r->act[i], r->act[run_node(r, i)->in[0]], r->N * run_node(r, i)->size); }
static void dropout_bwd(vc_run *r, int i, int params) {
    (void)params;
    dropout_backward_cuda(r->grad[run_node(r, i)->in[0]], r->grad[i], r->N * run_node(r, i)->size);
}
static void log_softmax_fwd(vc_run *r, int i) {
    const vc_node *n = run_node(r, i);
    log_softmax_forward_cuda(r->act[i], r->act[n->in[0]], r->N, n->c);
}
static void log_softmax_bwd(vc_run *r, int i, int params) {
    (void)params;
    const vc_node *n = run_node(r, i);
    log_softmax_backward_cuda(r->grad[n->in[0]], r->grad[i], r->act[i], r->N, n->c);
}

// infer stays vc_cpu_ops' (shapes are the model's, not the device's); null_dx
// and the decision kinds are the CPU table's too.
static const vc_op_impl vc_cuda_ops[VC_OP_COUNT] = {
    [VC_OP_INPUT] = {},
    [VC_OP_CONV2D] = {NULL, conv2d_fwd, conv2d_bwd, 1},
    [VC_OP_LINEAR] = {NULL, linear_fwd, linear_bwd, 1},
    [VC_OP_RELU] = {NULL, relu_fwd, relu_bwd, 0, VC_DEC_REGION, relu_decide},
    [VC_OP_MAXPOOL2D] = {NULL, maxpool2d_fwd, maxpool2d_bwd, 0, VC_DEC_ARGMAX, maxpool2d_decide},
    [VC_OP_AVGPOOL2D] = {NULL, avgpool2d_fwd, avgpool2d_bwd},
    [VC_OP_ADAPTIVE_AVGPOOL2D] = {NULL, adaptive_fwd, adaptive_bwd},
    [VC_OP_BATCHNORM2D] = {NULL, bn_fwd, bn_bwd, 1},
    [VC_OP_LRN] = {NULL, lrn_fwd, lrn_bwd},
    [VC_OP_CONCAT] = {NULL, concat_fwd, concat_bwd, 1},
    [VC_OP_ADD] = {NULL, add_fwd, add_bwd},
    [VC_OP_FLATTEN] = {NULL, flatten_fwd, flatten_bwd},
    [VC_OP_DROPOUT] = {NULL, dropout_fwd, dropout_bwd},
    [VC_OP_LOG_SOFTMAX] = {NULL, log_softmax_fwd, log_softmax_bwd},
};
static_assert(sizeof vc_cuda_ops / sizeof vc_cuda_ops[0] == VC_OP_COUNT, "CUDA op table covers every op");

// An op added to the engine before its kernel: the run is refused, naming it.
static int cuda_ops_missing(const vc_model *m, vc_error *err) {
    for (int i = 1; i < m->n_nodes; i++)
        if (!vc_cuda_ops[m->nodes[i].op].forward || !vc_cuda_ops[m->nodes[i].op].backward)
            return vc_fail(err, VC_EINPUT, "--device cuda: node %s: op %s has no CUDA kernel yet (run it with --device cpu)",
                           m->nodes[i].name, vc_op_names[m->nodes[i].op]);
    return VC_OK;
}

const vc_backend vc_backend_cuda = {
    .name = "cuda",
    .ops = vc_cuda_ops,
    .available = cuda_available,
    .run_init = cuda_run_init,
    .run_fini = cuda_run_fini,
    .alloc = cuda_alloc,
    .free = cuda_free,
    .copy = cuda_copy,
    .zero = cuda_zero,
    .host_view = cuda_host_view,
    .pass_begin = cuda_pass_begin,
    .edge_maps = cuda_edge_maps,
    .edge_scores = cuda_edge_scores,
    .node_sums = cuda_node_sums,
    .forget_model = cuda_forget_model,
};
