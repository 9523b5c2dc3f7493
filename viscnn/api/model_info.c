// model_info.c: viscnn.h's model details (since 0.2): name and path,
// preprocessing, per-node rank and parameters, totals, the JSON description.
#include <stdio.h>
#include "api.h"
#include "../export.h"

static int check_node(const vc_model *m, int index, const char *fn, vc_error *err) {
    if (index < 0 || index >= m->n_nodes)
        return vc_fail(err, VC_EINPUT, "%s: node %d out of range [0, %d) in %s", fn, index, m->n_nodes, m->path);
    return VC_OK;
}

int vc_model_about(const vc_model *m, const char **name, const char **path, vc_error *err) {
    API_NEED(m, err);
    if (name) *name = m->name;
    if (path) *path = m->path;
    return VC_OK;
}

int vc_model_preprocess(const vc_model *m, int *resize, int *crop, int *channels, float *mean, float *std, vc_error *err) {
    API_NEED(m, err);
    if (resize) *resize = m->pre.resize;
    if (crop) *crop = m->pre.crop;
    if (channels) *channels = m->pre.channels;
    for (int c = 0; c < m->pre.channels && c < 3; c++) {
        if (mean) mean[c] = m->pre.mean[c];
        if (std) std[c] = m->pre.std[c];
    }
    return VC_OK;
}

static size_t node_params(const vc_model *m, const vc_node *n) {
    size_t np = 0;
    for (int r = 0; r < VC_P_COUNT; r++) if (n->param[r] >= 0) np += m->params[n->param[r]].size;
    return np;
}

int vc_model_node_detail(const vc_model *m, int index, int *rank, size_t *params, vc_error *err) {
    API_NEED(m, err);
    int rc = check_node(m, index, __func__, err);
    if (rc) return rc;
    if (rank) *rank = m->nodes[index].rank;
    if (params) *params = node_params(m, &m->nodes[index]);
    return VC_OK;
}

static size_t conv_channels(const vc_model *m) {
    size_t channels = (size_t)m->nodes[0].c;
    for (int i = 1; i < m->n_nodes; i++) if (m->nodes[i].op == VC_OP_CONV2D) channels += (size_t)m->nodes[i].c;
    return channels;
}

int vc_model_totals(const vc_model *m, size_t *nodes, size_t *edges, size_t *params, vc_error *err) {
    API_NEED(m, err);
    if (nodes) *nodes = conv_channels(m);
    if (edges) *edges = m->n_edges;
    if (params) *params = m->n_weights;
    return VC_OK;
}

int vc_model_write_json(const vc_model *m, FILE *f, vc_error *err) {
    API_NEED(m, err);
    API_NEED(f, err);
    const vc_node *in = &m->nodes[0], *o = &m->nodes[m->output];
    fputs("{\"model\": ", f);
    export_string(f, m->name);
    fputs(", \"path\": ", f);
    export_string(f, m->path);
    fputs(", \"input\": {\"name\": ", f);
    export_string(f, in->name);
    fprintf(f, ", \"shape\": [%d, %d, %d], \"resize\": %d, \"crop\": %d, \"mean\": [", in->c, in->h, in->w, m->pre.resize,
            m->pre.crop);
    for (int c = 0; c < m->pre.channels && c < 3; c++) { if (c) fputs(", ", f); export_float(f, m->pre.mean[c]); }
    fputs("], \"std\": [", f);
    for (int c = 0; c < m->pre.channels && c < 3; c++) { if (c) fputs(", ", f); export_float(f, m->pre.std[c]); }
    fputs("]},\n\"layers\": [", f);
    for (int i = 1; i < m->n_nodes; i++) {
        const vc_node *n = &m->nodes[i];
        fputs(i > 1 ? ",\n {\"name\": " : "\n {\"name\": ", f);
        export_string(f, n->name);
        fprintf(f, ", \"op\": \"%s\", \"shape\": ", vc_op_names[n->op]);
        if (n->rank == 2) fprintf(f, "[%d]", n->c);
        else fprintf(f, "[%d, %d, %d]", n->c, n->h, n->w);
        fprintf(f, ", \"params\": %zu, \"inputs\": [", node_params(m, n));
        for (int k = 0; k < n->n_in; k++) { if (k) fputs(", ", f); export_string(f, m->nodes[n->in[k]].name); }
        fputs("]}", f);
    }
    fputs("],\n\"output\": ", f);
    export_string(f, o->name);
    fputs(", \"labels\": [", f);
    for (int k = 0; k < m->n_labels; k++) { if (k) fputs(", ", f); export_string(f, m->labels[k]); }
    fprintf(f, "], \"nodes\": %zu, \"edges\": %zu, \"parameters\": %zu}\n", conv_channels(m), m->n_edges, m->n_weights);
    if (ferror(f)) return vc_fail(err, VC_EINPUT, "%s: writing the model's JSON failed", m->path);
    return VC_OK;
}
