// importance.c: node and edge scores toward a target, image batch by image
// batch. Per batch: forward to the target, backward from it (parameter
// gradients only for snip), then per conv layer the node sums from z and g
// (vc_run_node_sums) and the edge scores from the fused edge kernel
// (vc_run_edge_scores: ops/conv2d_edges.c or kernels_cuda/conv2d_edges.cu),
// which never materialises the C_in x C_out edge maps.
#include "importance.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "../engine/util.h"
#include "../loaders/dataset.h"
#include "../ops/ops.h"
#include "chanmap.h"

const char *const vc_metric_names[VC_M_COUNT] = {"actxgrad", "act", "grad", "taylor", "weight", "snip"};

int metric_parse(vc_metric *out, const char *s, vc_error *err) {
    for (int i = 0; i < VC_M_COUNT; i++)
        if (!strcmp(s, vc_metric_names[i])) { *out = (vc_metric)i; return VC_OK; }
    return vc_fail(err, VC_EINPUT, "--metric %s: unknown metric (actxgrad, act, grad, taylor, weight, snip)", s);
}

// The BN that is a conv's only consumer, else -1.
static int bn_after(const vc_model *m, int conv) {
    int consumers = 0, bn = -1;
    for (int j = conv + 1; j < m->n_nodes; j++)
        for (int k = 0; k < m->nodes[j].n_in; k++)
            if (m->nodes[j].in[k] == conv) { consumers++; if (m->nodes[j].op == VC_OP_BATCHNORM2D) bn = j; }
    return consumers == 1 ? bn : -1;
}

int target_parse(vc_target *t, const vc_model *m, const char *s, vc_error *err) {
    memset(t, 0, sizeof *t);
    snprintf(t->text, sizeof t->text, "%s", s);
    t->layer = -1;
    t->node = t->stop = m->output;
    if (!strcmp(s, "loss")) { t->kind = VC_T_LOSS; return VC_OK; }
    if (!strncmp(s, "class:", 6)) {
        char *end, name[256];
        long k = strtol(s + 6, &end, 10);
        long K = (long)m->nodes[m->output].size;
        size_t nl = strlen(s + 6);   // class:NAME, NAME possibly in quotes that reached us
        if (nl >= 2 && (s[6] == '"' || s[6] == '\'') && s[6 + nl - 1] == s[6]) snprintf(name, sizeof name, "%.*s", (int)nl - 2, s + 7);
        else snprintf(name, sizeof name, "%s", s + 6);
        if (end == s + 6 || *end) k = name[0] ? dataset_find_label(m, name) : -1;
        if (k < 0 && !m->n_labels && (end == s + 6 || *end))
            return vc_fail(err, VC_EINPUT, "--target %s: the model has no labels: give class:K with K in [0, %ld)", s, K);
        if (k < 0 && (end == s + 6 || *end))
            return vc_fail(err, VC_EINPUT, "--target %s: no label '%s' in the model (viscnn info lists its %d labels)", s, name,
                           m->n_labels);
        if (k < 0 || k >= K)
            return vc_fail(err, VC_EINPUT, "--target %s: class must be an integer in [0, %ld) or a label", s, K);
        t->kind = VC_T_CLASS;
        t->ch = (int)k;
        return VC_OK;
    }
    if (!strncmp(s, "node:", 5)) {
        const char *colon = strrchr(s + 5, ':');
        if (!colon || colon == s + 5)
            return vc_fail(err, VC_EINPUT, "--target %s: expected node:LAYER:CHANNEL", s);
        char layer[256];
        snprintf(layer, sizeof layer, "%.*s", (int)(colon - (s + 5)), s + 5);
        int node = vc_model_find(m, layer);
        if (node <= 0) return vc_fail(err, VC_EINPUT, "--target %s: no layer '%s' in %s (see viscnn info)", s, layer, m->path);
        if (m->nodes[node].op == VC_OP_CONV2D && bn_after(m, node) >= 0) node = bn_after(m, node);
        char *end;
        long ch = strtol(colon + 1, &end, 10);
        if (end == colon + 1 || *end || ch < 0 || ch >= m->nodes[node].c)
            return vc_fail(err, VC_EINPUT, "--target %s: channel must be an integer in [0, %d) for layer %s",
                           s, m->nodes[node].c, layer);
        t->kind = VC_T_NODE;
        t->node = t->stop = node;
        t->ch = (int)ch;
        // the target layer: walk back through per-channel ops (and concat, shuffle,
        // slice, to the input holding the channel) to the conv that makes this map
        int l = node, c = (int)ch;
        while (l > 0 && m->nodes[l].op != VC_OP_CONV2D) {   // (and shuffles, slices, gates)
            int src, from = chan_source(m, l, c, 1, &src);
            if (from < 0) break;
            l = from, c = src;
        }
        if (m->nodes[node].rank != 4 || l <= 0 || m->nodes[l].op != VC_OP_CONV2D)
            return vc_fail(err, VC_EINPUT, "--target %s: %s is not the channel map of a conv layer (a conv, or per-channel "
                           "ops after one); for the model's outputs use class:K", s, layer);
        t->layer = l;
        int convs_before = 0;
        for (int i = 1; i < t->layer; i++) convs_before += m->nodes[i].op == VC_OP_CONV2D;
        if (!convs_before)
            return vc_fail(err, VC_EINPUT, "--target %s: no conv layer comes before layer %s, so nothing can be scored", s, layer);
        return VC_OK;
    }
    return vc_fail(err, VC_EINPUT, "--target %s: expected loss, class:K or node:LAYER:CHANNEL", s);
}

static int argmax(const float *v, int K) {
    int b = 0;
    for (int k = 1; k < K; k++) if (v[k] > v[b]) b = k;
    return b;
}

void target_seed(const vc_target *t, const vc_model *m, const vc_run *r, const int *labels, float *seed) {
    const vc_node *n = &m->nodes[t->stop];
    int N = vc_run_batch(r);
    memset(seed, 0, (size_t)N * n->size * sizeof(float));
    const float *y = vc_run_act(r, t->stop);
    if (t->kind == VC_T_NODE) {
        int HW = n->h * n->w;
        for (int i = 0; i < N; i++) {
            float one = 1.0f;
            channel_mean_backward(seed + (size_t)i * n->size, &one, 1, n->c, HW, t->ch);
        }
    } else if (t->kind == VC_T_CLASS) {
        for (int i = 0; i < N; i++) seed[(size_t)i * n->size + t->ch] = 1.0f;
    } else {
        int K = (int)n->size;
        for (int i = 0; i < N; i++) {
            int lab = labels && labels[i] >= 0 ? labels[i] : argmax(y + (size_t)i * K, K);
            // per image: dloss of that image alone (cross_entropy_backward divides by its N = 1)
            cross_entropy_backward(seed + (size_t)i * K, 1.0f, y + (size_t)i * K, &lab, 1, K);
        }
    }
}

void target_values(const vc_target *t, const vc_model *m, const vc_run *r, const int *labels, float *f) {
    const vc_node *n = &m->nodes[t->stop];
    const float *y = vc_run_act(r, t->stop);
    for (int i = 0; i < vc_run_batch(r); i++) {
        const float *yi = y + (size_t)i * n->size;
        if (t->kind == VC_T_NODE) channel_mean_forward(&f[i], yi, 1, n->c, n->h * n->w, t->ch);
        else if (t->kind == VC_T_CLASS) f[i] = yi[t->ch];
        else {
            int K = (int)n->size, lab = labels && labels[i] >= 0 ? labels[i] : argmax(yi, K);
            f[i] = (float)cross_entropy_forward(yi, &lab, 1, K);
        }
    }
}

int importance_begin(vc_importance *im, const vc_model *m, vc_metric metric, const vc_target *t, int batch, vc_error *err) {
    (void)err;
    memset(im, 0, sizeof *im);
    im->m = m;
    im->metric = metric;
    im->target = *t;
    im->batch = batch;
    scores_init(&im->sum, m, t->layer >= 0 ? t->layer : -1);
    int nl = im->sum.n_layers ? im->sum.n_layers : 1;
    im->off_nodes = malloc_check(nl * sizeof(size_t));
    im->off_edges = malloc_check(nl * sizeof(size_t));
    im->off_snip = malloc_check(nl * sizeof(size_t));
    size_t n = 1;
    for (int l = 0; l < im->sum.n_layers; l++) {
        im->off_nodes[l] = n;
        n += im->sum.l[l].cout;
        im->off_edges[l] = n;
        n += (size_t)im->sum.l[l].cout * im->sum.l[l].cg;
    }
    for (int l = 0; l < im->sum.n_layers; l++) {
        im->off_snip[l] = n;
        if (metric == VC_M_SNIP) n += m->params[m->nodes[im->sum.l[l].node].param[VC_P_WEIGHT]].size;
    }
    im->acc_n = n;
    im->acc = im->own_acc = calloc_check(n, sizeof(double));
    if (metric == VC_M_WEIGHT) return VC_OK;
    im->r = vc_run_new(m, batch);
    im->seed = malloc_check((size_t)batch * m->nodes[t->stop].size * sizeof(float));
    size_t most_c = 1, most_e = 1;
    for (int l = 0; l < im->sum.n_layers; l++) {
        if ((size_t)im->sum.l[l].cout > most_c) most_c = (size_t)im->sum.l[l].cout;
        size_t e = (size_t)im->sum.l[l].cout * im->sum.l[l].cg;
        if (e > most_e) most_e = e;
    }
    im->node_sums = malloc_check((size_t)batch * most_c * sizeof(double));
    im->edge_sums = malloc_check(most_e * sizeof(float));
    return VC_OK;
}

// Per-image node sums of layer L, added to the set's sums. The sums over each
// map are made where the run lives (vc_run_node_sums); here, per channel in
// image order, each image's score (a float) is added to the double sums.
static int add_node_scores(vc_importance *im, const vc_layer_scores *L, double *S_nodes, double *S_edges, int N,
                           vc_error *err) {
    const vc_node *zn = &im->m->nodes[L->z_node];
    const int m = zn->h * zn->w, C = L->cout;
    vc_node_sum kind = im->metric == VC_M_ACTXGRAD ? VC_SUM_RELU_Z_ABS_G : im->metric == VC_M_ACT ? VC_SUM_RELU_Z
                     : im->metric == VC_M_GRAD ? VC_SUM_ABS_G : VC_SUM_RELU_Z_G;
    int rc = vc_run_node_sums(im->r, L->z_node, kind, im->node_sums, err);
    if (rc) return rc;
    for (int j = 0; j < C; j++)
        for (int n = 0; n < N; n++) {
            double s = im->node_sums[(size_t)n * C + j];
            if (im->metric == VC_M_TAYLOR) s = fabs(s);
            const float v = (float)(s / m);   // the image's score, a float; summed in double
            S_nodes[j] += v;
            if (im->metric == VC_M_GRAD)   // a grad edge scores as its out-node
                for (int i = 0; i < L->cg; i++) S_edges[(size_t)j * L->cg + i] += v;
        }
    return VC_OK;
}

// The batch's edge scores of layer L, reduced over the batch where the run
// lives (vc_run_edge_scores, into a float buffer), then added to the set's
// double sums. Batches are the units MPI ranks share (docs/mpi.md), so the
// sums do not depend on the number of ranks.
static int add_edge_scores(vc_importance *im, const vc_layer_scores *L, double *S_edges, vc_error *err) {
    const vc_node *c = &im->m->nodes[L->node];
    conv2d_dims d = {.H = im->m->nodes[L->in_node].h, .W = im->m->nodes[L->in_node].w, .kh = c->a.kernel[0], .kw = c->a.kernel[1],
                     .sh = c->a.stride[0], .sw = c->a.stride[1], .ph = c->a.padding[0], .pw = c->a.padding[1],
                     .dh = c->a.dilation[0], .dw = c->a.dilation[1]};
    conv2d_dims_finish(&d);
    if (!vc_run_has_grad(im->r, L->node) && im->metric != VC_M_ACT) return VC_OK;   // not upstream of the target: all zero
    vc_edge_score kind = im->metric == VC_M_ACTXGRAD ? VC_EDGE_ABS_EG : im->metric == VC_M_TAYLOR ? VC_EDGE_EG_ABS : VC_EDGE_ABS_E;
    size_t ne = (size_t)L->cout * L->cg;
    memset(im->edge_sums, 0, ne * sizeof(float));
    int rc = vc_run_edge_scores(im->r, L->node, kind, 1.0f / (float)(d.Ho * d.Wo), im->edge_sums, err);
    if (rc) return rc;
    for (size_t k = 0; k < ne; k++) S_edges[k] += im->edge_sums[k];
    return VC_OK;
}

int importance_set_setup(vc_importance *im, int (*fn)(vc_run *r, const void *ctx, vc_error *err), const void *ctx,
                         vc_error *err) {
    im->setup = fn;
    im->setup_ctx = ctx;
    return fn && im->r ? fn(im->r, ctx, err) : VC_OK;
}

int importance_add(vc_importance *im, const float *x, int N, const int *labels, vc_error *err) {
    if (im->metric == VC_M_WEIGHT) { im->images += N; im->acc[0] += N; return VC_OK; }
    VC_ASSERT(N <= im->batch);
    int rc = VC_OK;
    if (N != vc_run_batch(im->r)) {   // a short last batch
        vc_run_free(im->r);
        im->r = vc_run_new(im->m, N);
        if (im->setup && (rc = im->setup(im->r, im->setup_ctx, err))) return rc;
    }
    rc = vc_forward(im->r, x, im->target.stop, 0, err);
    if (rc) return rc;
    target_seed(&im->target, im->m, im->r, labels, im->seed);
    rc = vc_backward(im->r, im->target.stop, im->seed, im->metric == VC_M_SNIP ? VC_BWD_PARAMS : 0, err);
    if (rc) return rc;
    if (im->metric == VC_M_SNIP) {
        for (int l = 0; l < im->sum.n_layers; l++) {
            int p = im->m->nodes[im->sum.l[l].node].param[VC_P_WEIGHT];
            const float *gw = vc_run_param_grad(im->r, p);
            double *G = im->acc + im->off_snip[l];
            for (size_t k = 0; gw && k < im->m->params[p].size; k++) G[k] += gw[k];
        }
        vc_run_zero_param_grads(im->r);
    } else
        for (int l = 0; l < im->sum.n_layers; l++) {
            double *nodes = im->acc + im->off_nodes[l], *edges = im->acc + im->off_edges[l];
            if ((rc = add_node_scores(im, &im->sum.l[l], nodes, edges, N, err))) return rc;
            if (im->metric != VC_M_GRAD && (rc = add_edge_scores(im, &im->sum.l[l], edges, err))) return rc;
        }
    im->images += N;
    im->acc[0] += N;
    return VC_OK;
}

void importance_end(vc_importance *im, vc_scores *out) {
    scores_copy(out, &im->sum);
    const vc_model *m = im->m;
    for (int l = 0; l < out->n_layers; l++) {
        vc_layer_scores *L = &out->l[l];
        const vc_node *c = &m->nodes[L->node];
        const int kk = c->a.kernel[0] * c->a.kernel[1];
        const float *w = m->params[c->param[VC_P_WEIGHT]].data;
        const double *gw = im->metric == VC_M_SNIP ? im->acc + im->off_snip[l] : NULL;
        if (im->metric == VC_M_WEIGHT || im->metric == VC_M_SNIP) {
            for (int j = 0; j < L->cout; j++) {
                double node = 0;
                for (int i = 0; i < L->cg; i++) {
                    const float *wk = w + ((size_t)j * L->cg + i) * kk;
                    // G summed in double, then rounded to the float it was before
                    const double *gk = gw ? gw + ((size_t)j * L->cg + i) * kk : NULL;
                    double s = 0;
                    for (int k = 0; k < kk; k++) s += fabs(gk ? (double)wk[k] * (float)gk[k] : (double)wk[k]);
                    L->edges[(size_t)j * L->cg + i] = (float)(s / kk);
                    node += s / kk;
                }
                L->nodes[j] = (float)(im->metric == VC_M_WEIGHT ? node / L->cg : node);
            }
        } else if (im->acc[0] > 0) {
            const double *sn = im->acc + im->off_nodes[l], *se = im->acc + im->off_edges[l], n = im->acc[0];
            for (int j = 0; j < L->cout; j++) L->nodes[j] = (float)(sn[j] / n);
            for (size_t k = 0; k < (size_t)L->cout * L->cg; k++) L->edges[k] = (float)(se[k] / n);
        }
    }
}

void importance_free(vc_importance *im) {
    free(im->own_acc); free(im->off_nodes); free(im->off_edges); free(im->off_snip);
    scores_free(&im->sum);
    vc_run_free(im->r);
    free(im->seed); free(im->node_sums); free(im->edge_sums);
    memset(im, 0, sizeof *im);
}

void scores_normalize(vc_scores *s) {
    for (int l = 0; l < s->n_layers; l++) {
        vc_layer_scores *L = &s->l[l];
        float *arr[2] = {L->nodes, L->edges};
        size_t cnt[2] = {(size_t)L->cout, (size_t)L->cout * L->cg};
        for (int a = 0; a < 2; a++) {
            float lo = INFINITY, hi = -INFINITY;
            for (size_t k = 0; k < cnt[a]; k++) { if (arr[a][k] < lo) lo = arr[a][k]; if (arr[a][k] > hi) hi = arr[a][k]; }
            for (size_t k = 0; k < cnt[a]; k++) arr[a][k] = hi > lo ? (arr[a][k] - lo) / (hi - lo) : 0.0f;
        }
    }
}
