// scores.c: allocation and element-wise arithmetic of vc_scores.
#include "scores.h"
#include <stdlib.h>
#include <string.h>
#include "../engine/util.h"

void scores_init(vc_scores *s, const vc_model *m, int stop) {
    if (stop < 0) stop = m->n_nodes;
    int n = 0;
    for (int i = 1; i < stop; i++) n += m->nodes[i].op == VC_OP_CONV2D;
    s->n_layers = 0;
    s->l = calloc_check(n ? n : 1, sizeof(vc_layer_scores));
    for (int i = 1; i < stop; i++) {
        const vc_node *c = &m->nodes[i];
        if (c->op != VC_OP_CONV2D) continue;
        vc_layer_scores *L = &s->l[s->n_layers++];
        L->node = i;
        L->in_node = c->in[0];
        L->z_node = i;
        // the node map is the BN output when a BN is the conv's only consumer
        int consumers = 0, bn = -1;
        for (int j = i + 1; j < m->n_nodes; j++)
            for (int k = 0; k < m->nodes[j].n_in; k++)
                if (m->nodes[j].in[k] == i) { consumers++; if (m->nodes[j].op == VC_OP_BATCHNORM2D) bn = j; }
        if (consumers == 1 && bn >= 0 && bn < stop) L->z_node = bn;
        L->cin = m->nodes[c->in[0]].c;
        L->cout = c->c;
        L->groups = c->a.groups;
        L->cg = L->cin / L->groups;
        L->nodes = calloc_check(L->cout, sizeof(float));
        L->edges = calloc_check((size_t)L->cout * L->cg, sizeof(float));
    }
}

void scores_free(vc_scores *s) {
    for (int i = 0; i < s->n_layers; i++) { free(s->l[i].nodes); free(s->l[i].edges); }
    free(s->l);
    memset(s, 0, sizeof *s);
}

void scores_copy(vc_scores *dst, const vc_scores *src) {
    dst->n_layers = src->n_layers;
    dst->l = calloc_check(src->n_layers ? src->n_layers : 1, sizeof(vc_layer_scores));
    for (int i = 0; i < src->n_layers; i++) {
        dst->l[i] = src->l[i];
        size_t ne = (size_t)src->l[i].cout * src->l[i].cg;
        dst->l[i].nodes = malloc_check(src->l[i].cout * sizeof(float));
        dst->l[i].edges = malloc_check(ne * sizeof(float));
        memcpy(dst->l[i].nodes, src->l[i].nodes, src->l[i].cout * sizeof(float));
        memcpy(dst->l[i].edges, src->l[i].edges, ne * sizeof(float));
    }
}

void scores_axpby(vc_scores *dst, float a, const vc_scores *src, float b) {
    for (int i = 0; i < dst->n_layers; i++) {
        vc_layer_scores *d = &dst->l[i];
        const vc_layer_scores *s = &src->l[i];
        for (int j = 0; j < d->cout; j++) d->nodes[j] = d->nodes[j] * a + s->nodes[j] * b;
        for (size_t k = 0; k < (size_t)d->cout * d->cg; k++) d->edges[k] = d->edges[k] * a + s->edges[k] * b;
    }
}

size_t scores_count(const vc_scores *s) {
    size_t n = 0;
    for (int i = 0; i < s->n_layers; i++) n += s->l[i].cout + (size_t)s->l[i].cout * s->l[i].cg;
    return n;
}

void scores_flatten(const vc_scores *s, float *out) {
    for (int i = 0; i < s->n_layers; i++) {
        const vc_layer_scores *L = &s->l[i];
        size_t ne = (size_t)L->cout * L->cg;
        memcpy(out, L->nodes, L->cout * sizeof(float)); out += L->cout;
        memcpy(out, L->edges, ne * sizeof(float)); out += ne;
    }
}

void scores_unflatten(vc_scores *s, const float *in) {
    for (int i = 0; i < s->n_layers; i++) {
        vc_layer_scores *L = &s->l[i];
        size_t ne = (size_t)L->cout * L->cg;
        memcpy(L->nodes, in, L->cout * sizeof(float)); in += L->cout;
        memcpy(L->edges, in, ne * sizeof(float)); in += ne;
    }
}

const vc_scores *scores_view(vc_scores_view *v, const vc_scores *src, const vc_model *m, const char *const *names, int n) {
    free(v->s.l);
    v->s.l = malloc_check((size_t)(src->n_layers ? src->n_layers : 1) * sizeof(vc_layer_scores));
    v->s.n_layers = 0;
    for (int l = 0; l < src->n_layers; l++) {
        int keep = n == 0;
        for (int k = 0; k < n && !keep; k++) keep = vc_model_find(m, names[k]) == src->l[l].node;
        if (keep) v->s.l[v->s.n_layers++] = src->l[l];
    }
    return &v->s;
}

int scores_view_check(const vc_model *m, const char *const *names, int n, const char *cmd, vc_error *err) {
    for (int k = 0; k < n; k++) {
        int node = vc_model_find(m, names[k]);
        if (node < 0) return vc_fail(err, VC_EINPUT, "%s: --layer %s: no such layer in %s (see viscnn info)", cmd, names[k], m->path);
        if (m->nodes[node].op != VC_OP_CONV2D)
            return vc_fail(err, VC_EINPUT, "%s: --layer %s is a %s; scores belong to conv2d layers", cmd, names[k],
                           vc_op_names[m->nodes[node].op]);
    }
    return VC_OK;
}
