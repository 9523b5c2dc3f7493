// model.c: viscnn.h's version, models (queries) and image preprocessing.
#include <stdlib.h>
#include "api.h"
#include "../../loaders/image.h"
#include "../../engine/util.h"

const char *vc_version(void) { return VISCNN_VERSION_STRING; }

void vc_free(void *p) { free(p); }

int vc_model_size(const vc_model *m, int *n_nodes, int *output, int *n_labels, vc_error *err) {
    API_NEED(m, err);
    if (n_nodes) *n_nodes = m->n_nodes;
    if (output) *output = m->output;
    if (n_labels) *n_labels = m->n_labels;
    return VC_OK;
}

static int check_node(const vc_model *m, int index, const char *fn, vc_error *err) {
    if (index < 0 || index >= m->n_nodes)
        return vc_fail(err, VC_EINPUT, "%s: node %d out of range [0, %d) in %s", fn, index, m->n_nodes, m->path);
    return VC_OK;
}

int vc_model_node(const vc_model *m, int index, const char **name, const char **op, int *c, int *h, int *w, vc_error *err) {
    API_NEED(m, err);
    int rc = check_node(m, index, __func__, err);
    if (rc) return rc;
    const vc_node *n = &m->nodes[index];
    if (name) *name = n->name;
    if (op) *op = vc_op_names[n->op];
    if (c) *c = n->c;
    if (h) *h = n->h;
    if (w) *w = n->w;
    return VC_OK;
}

int vc_model_node_inputs(const vc_model *m, int index, int *n_inputs, const int **inputs, vc_error *err) {
    API_NEED(m, err);
    int rc = check_node(m, index, __func__, err);
    if (rc) return rc;
    if (n_inputs) *n_inputs = m->nodes[index].n_in;
    if (inputs) *inputs = m->nodes[index].in;
    return VC_OK;
}

int vc_model_find_node(const vc_model *m, const char *name, int *index, vc_error *err) {
    API_NEED(m, err);
    API_NEED(name, err);
    API_NEED(index, err);
    int i = vc_model_find(m, name);
    if (i < 0) return vc_fail(err, VC_EINPUT, "%s: no node named %s in %s", __func__, name, m->path);
    *index = i;
    return VC_OK;
}

int vc_model_label(const vc_model *m, int k, const char **label, vc_error *err) {
    API_NEED(m, err);
    API_NEED(label, err);
    if (k < 0 || k >= m->n_labels)
        return vc_fail(err, VC_EINPUT, "%s: label %d out of range [0, %d) in %s", __func__, k, m->n_labels, m->path);
    *label = m->labels[k];
    return VC_OK;
}

int vc_model_conv(const vc_model *m, int node, int *cout, int *cin_group, int *groups, int *ho, int *wo, vc_error *err) {
    API_NEED(m, err);
    int rc = check_node(m, node, __func__, err);
    if (rc) return rc;
    const vc_node *c = &m->nodes[node];
    if (c->op != VC_OP_CONV2D)
        return vc_fail(err, VC_EINPUT, "%s: node %s is a %s, not a conv2d layer", __func__, vc_str(c->name), vc_op_names[c->op]);
    if (cout) *cout = c->c;
    if (cin_group) *cin_group = m->nodes[c->in[0]].c / c->a.groups;
    if (groups) *groups = c->a.groups;
    if (ho) *ho = c->h;
    if (wo) *wo = c->w;
    return VC_OK;
}

int vc_image_preprocess(const vc_model *m, const char *path, float *out, vc_error *err) {
    API_NEED(m, err);
    API_NEED(path, err);
    API_NEED(out, err);
    return image_preprocess(out, path, &m->pre, m->nodes[0].h, m->nodes[0].w, err);
}
