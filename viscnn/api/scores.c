// scores.c: viscnn.h's importance (a scoreset accumulates over images, as
// `viscnn importance` does over a folder) and circuits (vc_subnet: extract,
// mask, evaluate), on top of viscnn/importance.c and viscnn/circuit.c.
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "api.h"
#include "../imageset.h"
#include "../../engine/util.h"

static int check_labels(const vc_model *m, const vc_target *t, const int *labels, int n, const char *fn, vc_error *err) {
    int K = (int)m->nodes[m->output].size;
    for (int k = 0; labels && t->kind == VC_T_LOSS && k < n; k++)
        if (labels[k] >= K) return vc_fail(err, VC_EINPUT, "%s: label %d of image %d out of range [0, %d)", fn, labels[k], k, K);
    return VC_OK;
}

int vc_importance_new(vc_scoreset **out, const vc_model *m, const char *metric, const char *target, int batch, vc_error *err) {
    API_NEED(out, err);
    *out = NULL;
    API_NEED(m, err);
    API_NEED(metric, err);
    API_NEED(target, err);
    if (batch < 1 || batch > 4096) return vc_fail(err, VC_EINPUT, "%s: batch %d out of range [1, 4096]", __func__, batch);
    vc_scoreset *s = calloc_check(1, sizeof *s);
    s->m = m;
    int rc = metric_parse(&s->metric, metric, err);
    if (!rc) rc = target_parse(&s->target, m, target, err);
    if (!rc) rc = importance_begin(&s->im, m, s->metric, &s->target, batch, err);
    if (rc) { free(s); return rc; }
    *out = s;
    return VC_OK;
}

int vc_importance_add(vc_scoreset *s, const float *x, int n, const int *labels, vc_error *err) {
    API_NEED(s, err);
    API_NEED(x, err);
    if (s->finished) return vc_fail(err, VC_EINPUT, "%s: the scores are finished; nothing can be added", __func__);
    if (n < 1) return vc_fail(err, VC_EINPUT, "%s: %d images; need at least 1", __func__, n);
    int rc = check_labels(s->m, &s->target, labels, n, __func__, err);
    size_t sz = s->m->nodes[0].size;
    // in chunks of the batch size, in order, as importance_over_set feeds a set
    for (int i = 0; !rc && i < n; i += s->im.batch) {
        int k = n - i < s->im.batch ? n - i : s->im.batch;
        rc = importance_add(&s->im, x + (size_t)i * sz, k, labels ? labels + i : NULL, err);
    }
    return rc;
}

int vc_importance_finish(vc_scoreset *s, vc_error *err) {
    API_NEED(s, err);
    if (s->finished) return vc_fail(err, VC_EINPUT, "%s: the scores are already finished", __func__);
    if (!s->im.images) return vc_fail(err, VC_EINPUT, "%s: no images were added", __func__);
    importance_end(&s->im, &s->scores);
    importance_free(&s->im);
    s->finished = 1;
    return VC_OK;
}

void vc_importance_free(vc_scoreset *s) {
    if (!s) return;
    if (s->finished) scores_free(&s->scores);
    else importance_free(&s->im);
    free(s);
}

static int check_finished(const vc_scoreset *s, const char *fn, vc_error *err) {
    return s->finished ? VC_OK : vc_fail(err, VC_EINPUT, "%s: the scores are not finished (vc_importance_finish)", fn);
}

int vc_importance_layers(const vc_scoreset *s, int *n_layers, vc_error *err) {
    API_NEED(s, err);
    API_NEED(n_layers, err);
    int rc = check_finished(s, __func__, err);
    if (!rc) *n_layers = s->scores.n_layers;
    return rc;
}

static int layer_of(const vc_scores *sc, int l, const char *fn, vc_error *err) {
    if (l < 0 || l >= sc->n_layers) return vc_fail(err, VC_EINPUT, "%s: layer %d out of range [0, %d)", fn, l, sc->n_layers);
    return VC_OK;
}

int vc_importance_layer(const vc_scoreset *s, int l, int *node, int *cout, int *cin_group, const float **nodes,
                        const float **kernels, vc_error *err) {
    API_NEED(s, err);
    int rc = check_finished(s, __func__, err);
    if (!rc) rc = layer_of(&s->scores, l, __func__, err);
    if (rc) return rc;
    const vc_layer_scores *L = &s->scores.l[l];
    if (node) *node = L->node;
    if (cout) *cout = L->cout;
    if (cin_group) *cin_group = L->cg;
    if (nodes) *nodes = L->nodes;
    if (kernels) *kernels = L->edges;
    return VC_OK;
}

int vc_subnet_extract(vc_subnet **out, const vc_scoreset *s, const char *mode, vc_error *err) {
    API_NEED(out, err);
    *out = NULL;
    API_NEED(s, err);
    API_NEED(mode, err);
    int rc = check_finished(s, __func__, err);
    if (rc) return rc;
    vc_circuit_spec spec;
    circuit_spec_init(&spec);
    if ((rc = circuit_mode_parse(&spec, mode, err)) || (rc = circuit_spec_check(&spec, err))) return rc;
    vc_subnet *c = calloc_check(1, sizeof *c);
    c->m = s->m;
    c->target = s->target;
    scores_copy(&c->layout, &s->scores);
    rc = circuit_extract(&c->c, s->m, &c->layout, &c->target, &spec, err);
    if (rc) { scores_free(&c->layout); free(c); return rc; }
    *out = c;
    return VC_OK;
}

void vc_subnet_free(vc_subnet *c) {
    if (!c) return;
    circuit_free(&c->c);
    if (c->layout.l) scores_free(&c->layout);
    circuit_run_free(c->run);
    free(c);
}

int vc_subnet_counts(const vc_subnet *c, size_t *nodes, size_t *kernels, size_t *cone_nodes, size_t *cone_kernels,
                     vc_error *err) {
    API_NEED(c, err);
    if (nodes) *nodes = c->c.n_nodes;
    if (kernels) *kernels = c->c.n_edges;
    if (cone_nodes) *cone_nodes = c->c.total_nodes;
    if (cone_kernels) *cone_kernels = c->c.total_edges;
    return VC_OK;
}

int vc_subnet_layer(const vc_subnet *c, int l, int *node, const unsigned char **nodes, const unsigned char **kernels,
                    vc_error *err) {
    API_NEED(c, err);
    int rc = layer_of(&c->layout, l, __func__, err);
    if (rc) return rc;
    if (node) *node = c->layout.l[l].node;
    if (nodes) *nodes = c->c.node[l];
    if (kernels) *kernels = c->c.edge[l];
    return VC_OK;
}

int vc_subnet_evaluate(const vc_subnet *c, const float *x, int n, const int *labels, int batch, double *r,
                       double *rel_error, double *top1, vc_error *err) {
    API_NEED(c, err);
    API_NEED(x, err);
    if (n < 1) return vc_fail(err, VC_EINPUT, "%s: %d images; need at least 1", __func__, n);
    if (batch < 1 || batch > 4096) return vc_fail(err, VC_EINPUT, "%s: batch %d out of range [1, 4096]", __func__, batch);
    int rc = check_labels(c->m, &c->target, labels, n, __func__, err);
    if (rc) return rc;
    // the images as one in-memory set of one category (imageset's --input form)
    vc_imageset set = {.n = n, .n_cat = 1, .x = (float *)x, .m = c->m, .source = "<memory>"};
    set.cat = calloc_check(n, sizeof(int));
    set.label = malloc_check(n * sizeof(int));
    int *idx = malloc_check(n * sizeof(int));
    for (int k = 0; k < n; k++) { set.label[k] = labels ? labels[k] : -1; idx[k] = k; }
    vc_faith_ref ref = {0};
    vc_faith q = {0};
    rc = faith_reference(&ref, c->m, &c->target, &set, idx, n, batch, err);
    if (!rc) rc = faith_measure(&q, &ref, c->m, &c->target, &c->layout, &c->c, &set, batch, err);
    if (!rc) {
        if (r) *r = q.r;
        if (rel_error) *rel_error = q.rel_error;
        if (top1) *top1 = q.top1;
    }
    faith_reference_free(&ref);
    free(set.cat); free(set.label); free(idx);
    return rc;
}
