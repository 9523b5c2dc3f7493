// run.c: executing a model on one batch. Forward keeps every activation (and
// what each op saves) so that backward can walk the graph in reverse, one
// rule per op, accumulating d(target)/d(output) into every upstream node.
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "engine.h"
#include "../ops/ops.h"
#include "backend.h"

void vc_malloc_keep(void) {
#ifdef M_MMAP_THRESHOLD
    mallopt(M_MMAP_THRESHOLD, 1 << 30);   // big buffers from the heap, not fresh mmaps
    mallopt(M_TRIM_THRESHOLD, 1 << 30);   // and freed ones stay there for the next pass
#endif
}

vc_run *vc_run_new_on(const vc_model *m, int N, vc_device dev, vc_error *err) {
    if (vc_device_available(dev, err)) return NULL;
    vc_run *r = calloc_check(1, sizeof(vc_run));
    int n = m->n_nodes;
    r->m = m;
    r->be = dev == VC_DEVICE_CUDA ? &vc_backend_cuda : &vc_backend_cpu;
    r->N = N;
    r->act = calloc_check(n, sizeof(float *));
    r->grad = calloc_check(n, sizeof(float *));
    r->gbuf = calloc_check(n, sizeof(float *));
    r->saved = calloc_check(n, sizeof(void *));
    r->kmask = calloc_check(n, sizeof(float *));
    r->cmask = calloc_check(n, sizeof(float *));
    r->wmasked = calloc_check(n, sizeof(float *));
    r->retain = calloc_check(n, 1);
    r->last_use = calloc_check(n, sizeof(int));
    r->pgrad = calloc_check(m->n_params ? m->n_params : 1, sizeof(float *));
    for (int i = 0; i < n; i++)
        for (int k = 0; k < m->nodes[i].n_in; k++)
            if (r->last_use[m->nodes[i].in[k]] < i) r->last_use[m->nodes[i].in[k]] = i;
    r->rng = 0x9E3779B97F4A7C15ULL;
    const char *prof = getenv("VISCNN_PROFILE");
    if (prof && *prof && strcmp(prof, "0") != 0) r->prof = calloc_check(2 * (size_t)n, sizeof(double));
    // a failed run_init leaves r->bstate NULL, which run_fini accepts
    if (r->be->run_init && r->be->run_init(r, err)) { vc_run_free(r); return NULL; }
    return r;
}

// On the default device (vc_set_device checked that it exists): failing
// here is running out of (device) memory, an internal error like malloc's.
vc_run *vc_run_new(const vc_model *m, int N) {
    vc_error err = {{0}};
    vc_run *r = vc_run_new_on(m, N, vc_get_device(), &err);
    if (!r) { fprintf(stderr, "viscnn: %s\n", err.msg); abort(); }
    return r;
}

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}

// VISCNN_PROFILE=1: on vc_run_free, every node's forward and backward time
// summed over the run's passes, to stderr, one line per node in model order.
static void profile_print(const vc_run *r) {
    const vc_model *m = r->m;
    double tf = 0, tb = 0;
    for (int i = 0; i < m->n_nodes; i++) { tf += r->prof[2 * i]; tb += r->prof[2 * i + 1]; }
    fprintf(stderr, "profile: %d forward pass(es), batch %d: forward %.4f s, backward %.4f s\n",
            r->prof_passes, r->N, tf, tb);
    fprintf(stderr, "%-32s %-12s %10s %10s %6s\n", "node", "op", "fwd s", "bwd s", "%");
    for (int i = 1; i < m->n_nodes; i++) {
        double f = r->prof[2 * i], b = r->prof[2 * i + 1];
        if (f + b == 0) continue;
        fprintf(stderr, "%-32s %-12s %10.4f %10.4f %6.1f\n", vc_str(m->nodes[i].name),
                vc_op_names[m->nodes[i].op], f, b, 100 * (f + b) / (tf + tb));
    }
}

void vc_run_free(vc_run *r) {
    if (!r) return;
    if (r->prof) { profile_print(r); free(r->prof); }
    const vc_backend *be = r->be;
    for (int i = 0; i < r->m->n_nodes; i++) {
        if (r->act[i]) be->free(r, VC_BUF_ACT, i, r->act[i]);
        if (r->gbuf[i]) be->free(r, VC_BUF_GRAD, i, r->gbuf[i]);
        if (r->saved[i]) be->free(r, VC_BUF_SAVED, i, r->saved[i]);
        free(r->kmask[i]); free(r->cmask[i]); free(r->wmasked[i]);
    }
    for (int i = 0; i < r->m->n_params; i++)
        if (r->pgrad[i]) be->free(r, VC_BUF_PGRAD, i, r->pgrad[i]);
    if (be->run_fini) be->run_fini(r);
    free(r->act); free(r->grad); free(r->gbuf); free(r->saved); free(r->kmask); free(r->cmask); free(r->wmasked);
    free(r->retain); free(r->last_use); free(r->pgrad);
    free(r);
}

int vc_run_batch(const vc_run *r) { return r->N; }
// On a device the run's buffers are not host memory: the backend hands out
// a host copy, made when first asked for after a pass.
const float *vc_run_act(const vc_run *r, int node) {
    if (!r->act[node] || !r->be->host_view) return r->act[node];
    return r->be->host_view(r, VC_BUF_ACT, node);
}
const float *vc_run_grad(const vc_run *r, int node) {
    if (!r->grad[node] || !r->be->host_view) return r->grad[node];
    return r->be->host_view(r, VC_BUF_GRAD, node);
}
const float *vc_run_param_grad(const vc_run *r, int p) {
    if (!r->pgrad[p] || !r->be->host_view) return r->pgrad[p];
    return r->be->host_view(r, VC_BUF_PGRAD, p);
}
void vc_run_set_hook(vc_run *r, vc_hook_fn fn, void *ctx) { r->hook = fn; r->hook_ctx = ctx; }
void vc_run_retain(vc_run *r, int node, int on) { r->retain[node] = (unsigned char)(on != 0); }
void vc_run_seed(vc_run *r, uint64_t seed) { r->rng = seed ? seed : 0x9E3779B97F4A7C15ULL; }

void vc_run_zero_param_grads(vc_run *r) {
    for (int i = 0; i < r->m->n_params; i++)
        if (r->pgrad[i]) r->be->zero(r->pgrad[i], r->m->params[i].size * sizeof(float));
    if (r->be->pass_begin) r->be->pass_begin(r);
}

static int set_mask(vc_run *r, float **slot, int node, const float *mask, size_t n, vc_error *err) {
    if (node < 0 || node >= r->m->n_nodes || r->m->nodes[node].op != VC_OP_CONV2D)
        return vc_fail(err, VC_EINPUT, "mask: node %d is not a conv2d layer", node);
    if (!mask) { free(*slot); *slot = NULL; return VC_OK; }
    if (!*slot) *slot = malloc_check(n * sizeof(float));
    memcpy(*slot, mask, n * sizeof(float));
    return VC_OK;
}
int vc_run_set_kernel_mask(vc_run *r, int node, const float *mask, vc_error *err) {
    if (node < 0 || node >= r->m->n_nodes) return vc_fail(err, VC_EINPUT, "mask: no node %d", node);
    const vc_node *n = &r->m->nodes[node];
    size_t cnt = n->op == VC_OP_CONV2D ? (size_t)n->c * (r->m->nodes[n->in[0]].c / n->a.groups) : 0;
    return set_mask(r, &r->kmask[node], node, mask, cnt, err);
}
int vc_run_set_channel_mask(vc_run *r, int node, const float *mask, vc_error *err) {
    if (node < 0 || node >= r->m->n_nodes) return vc_fail(err, VC_EINPUT, "mask: no node %d", node);
    return set_mask(r, &r->cmask[node], node, mask, (size_t)r->m->nodes[node].c, err);
}

int vc_forward(vc_run *r, const float *x, int stop, int flags, vc_error *err) {
    const vc_model *m = r->m;
    if (stop < 0) stop = m->n_nodes - 1;
    if (stop >= m->n_nodes) return vc_fail(err, VC_EINPUT, "forward: no node %d", stop);
    r->train = (flags & VC_FWD_TRAIN) != 0;
    if (r->train && r->be != &vc_backend_cpu)
        return vc_fail(err, VC_EINPUT, "forward: training (dropout active) runs on the CPU only, not on %s", vc_str(r->be->name));
    int nograd = (flags & VC_FWD_NOGRAD) != 0;
    const vc_backend *be = r->be;
    if (be->pass_begin) be->pass_begin(r);
    size_t n0 = (size_t)r->N * m->nodes[0].size;
    if (!r->act[0]) r->act[0] = be->alloc(r, VC_BUF_ACT, 0, n0 * sizeof(float));
    be->copy(r->act[0], x, n0 * sizeof(float), VC_COPY_H2D);
    if (r->hook) r->hook(r->hook_ctx, r, 0, 0);
    for (int i = 1; i <= stop; i++) {
        const vc_node *n = &m->nodes[i];
        for (int k = 0; k < n->n_in; k++) VC_ASSERT(r->act[n->in[k]] != NULL);
        if (!r->act[i]) r->act[i] = be->alloc(r, VC_BUF_ACT, i, (size_t)r->N * n->size * sizeof(float));
        double t0 = r->prof ? now_s() : 0;
        be->ops[n->op].forward(r, i);
        if (r->prof) r->prof[2 * i] += now_s() - t0;
        if (r->hook) r->hook(r->hook_ctx, r, i, 0);
        if (nograd)   // inference: drop inputs nobody later needs
            for (int k = 0; k < n->n_in; k++) {
                int j = n->in[k];
                if (r->last_use[j] <= i && j != stop && !r->retain[j] && r->act[j]) {
                    be->free(r, VC_BUF_ACT, j, r->act[j]); r->act[j] = NULL;
                    if (r->saved[j]) be->free(r, VC_BUF_SAVED, j, r->saved[j]);
                    r->saved[j] = NULL;
                }
            }
    }
    r->done = stop + 1;
    r->prof_passes++;
    return VC_OK;
}

static float *grad_buffer(vc_run *r, int i) {
    if (!r->gbuf[i]) r->gbuf[i] = r->be->alloc(r, VC_BUF_GRAD, i, (size_t)r->N * r->m->nodes[i].size * sizeof(float));
    return r->gbuf[i];
}

int vc_backward(vc_run *r, int from, const float *dfrom, int flags, vc_error *err) {
    const vc_model *m = r->m;
    if (from < 0 || from >= r->done)
        return vc_fail(err, VC_EINPUT, "backward: node %s was not computed by the last forward",
                       from >= 0 && from < m->n_nodes ? m->nodes[from].name : "?");
    int params = (flags & VC_BWD_PARAMS) != 0, input = (flags & VC_BWD_INPUT) != 0;
    const vc_backend *be = r->be;
    if (be->pass_begin) be->pass_begin(r);
    for (int i = 0; i < m->n_nodes; i++) r->grad[i] = NULL;
    if (params)
        for (int p = 0; p < m->n_params; p++)
            if (!r->pgrad[p]) {
                r->pgrad[p] = be->alloc(r, VC_BUF_PGRAD, p, m->params[p].size * sizeof(float));
                be->zero(r->pgrad[p], m->params[p].size * sizeof(float));
            }
    size_t nf = (size_t)r->N * m->nodes[from].size;
    r->grad[from] = grad_buffer(r, from);
    be->copy(r->grad[from], dfrom, nf * sizeof(float), VC_COPY_H2D);
    for (int i = from; i >= 1; i--) {
        if (!r->grad[i]) continue;
        const vc_node *n = &m->nodes[i];
        // a hook may read any node's gradient: host copies made earlier in the walk may be partial sums
        if (r->hook && be->pass_begin) be->pass_begin(r);
        if (r->hook) r->hook(r->hook_ctx, r, i, 1);
        for (int k = 0; k < n->n_in; k++) {
            int j = n->in[k];
            if (!r->act[j]) return vc_fail(err, VC_EINPUT, "backward: activation of %s was freed (forward ran without grad)", vc_str(m->nodes[j].name));
            if (!r->grad[j] && (j > 0 || input || !be->ops[n->op].null_dx)) {
                r->grad[j] = grad_buffer(r, j);
                be->zero(r->grad[j], (size_t)r->N * m->nodes[j].size * sizeof(float));
            }
        }
        double t0 = r->prof ? now_s() : 0;
        be->ops[n->op].backward(r, i, params);
        if (r->prof) r->prof[2 * i + 1] += now_s() - t0;
    }
    if (r->hook && be->pass_begin) be->pass_begin(r);
    if (r->hook && r->grad[0]) r->hook(r->hook_ctx, r, 0, 1);
    return VC_OK;
}

double vc_loss_cross_entropy(const vc_run *r, const int *labels, float *dlogits) {
    const vc_node *o = &r->m->nodes[r->m->output];
    const float *x = vc_run_act(r, r->m->output);
    VC_ASSERT(x != NULL);
    double loss = cross_entropy_forward(x, labels, r->N, (int)o->size);
    if (dlogits) {
        memset(dlogits, 0, (size_t)r->N * o->size * sizeof(float));
        cross_entropy_backward(dlogits, 1.0f, x, labels, r->N, (int)o->size);
    }
    return loss;
}
