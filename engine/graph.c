// graph.c: a parsed model (the viscnn.graph JSON and a table of named
// tensors, handed over by a loader: loaders/model_load.c) -> vc_model.
// Everything a file can get wrong is checked here, once, with a message that
// names the file and the node: unknown ops, dangling inputs, cycles, missing
// or misshapen tensors. After vc_model_build succeeds the engine trusts the graph.
#include <cjson/cJSON.h>
#include <math.h>
#include <string.h>
#include "engine.h"
#include "backend.h"

#define MAX_IN 64

void vc_model_free(vc_model *m) {
    if (!m) return;
    vc_backends_forget_model(m);
    for (int i = 0; i < m->n_nodes; i++) { free(m->nodes[i].name); free(m->nodes[i].in); }
    free(m->nodes);
    for (int i = 0; i < m->n_params; i++) {
        free(m->params[i].name);
        if (m->params[i].data && ((unsigned char *)m->params[i].data < (unsigned char *)m->blob ||
                                  (unsigned char *)m->params[i].data >= (unsigned char *)m->blob + m->blob_size))
            free(m->params[i].data);
    }
    free(m->params);
    for (int i = 0; i < m->n_labels; i++) free(m->labels[i]);
    free(m->labels);
    free(m->path);
    free(m->name);
    free(m->graph_json);
    free(m->blob);
    free(m);
}

int vc_model_find(const vc_model *m, const char *name) {
    for (int i = 0; i < m->n_nodes; i++)
        if (!strcmp(m->nodes[i].name, name)) return i;
    return -1;
}

// Reads an int or [h, w] attribute; absent -> def (for both).
static int attr_pair(cJSON *attrs, const char *key, int out[2], int def, const char *path, const char *node, vc_error *err) {
    cJSON *a = attrs ? cJSON_GetObjectItemCaseSensitive(attrs, key) : NULL;
    out[0] = out[1] = def;
    if (!a || cJSON_IsNull(a)) return VC_OK;
    if (cJSON_IsNumber(a)) { out[0] = out[1] = a->valueint; return VC_OK; }
    if (cJSON_IsArray(a) && cJSON_GetArraySize(a) == 2 && cJSON_IsNumber(cJSON_GetArrayItem(a, 0)) &&
        cJSON_IsNumber(cJSON_GetArrayItem(a, 1))) {
        out[0] = cJSON_GetArrayItem(a, 0)->valueint;
        out[1] = cJSON_GetArrayItem(a, 1)->valueint;
        return VC_OK;
    }
    return vc_fail(err, VC_EINPUT, "%s: node %s: attribute '%s' must be an int or [h, w]", path, node, key);
}
static double attr_num(cJSON *attrs, const char *key, double def) {
    cJSON *a = attrs ? cJSON_GetObjectItemCaseSensitive(attrs, key) : NULL;
    if (cJSON_IsBool(a)) return cJSON_IsTrue(a);
    return cJSON_IsNumber(a) ? a->valuedouble : def;
}

static int parse_attrs(vc_node *n, cJSON *attrs, const char *path, vc_error *err) {
    vc_attrs *a = &n->a;
    if (attrs && !cJSON_IsObject(attrs)) return vc_fail(err, VC_EINPUT, "%s: node %s: attrs is not an object", path, n->name);
    if (attr_pair(attrs, "kernel", a->kernel, 1, path, n->name, err) ||
        attr_pair(attrs, "stride", a->stride, 0, path, n->name, err) ||
        attr_pair(attrs, "padding", a->padding, 0, path, n->name, err) ||
        attr_pair(attrs, "dilation", a->dilation, 1, path, n->name, err) ||
        attr_pair(attrs, "output", a->output, 1, path, n->name, err))
        return VC_EINPUT;
    if (n->op == VC_OP_CONV2D || n->op == VC_OP_MAXPOOL2D || n->op == VC_OP_AVGPOOL2D) {
        if (!attrs || !cJSON_GetObjectItemCaseSensitive(attrs, "kernel"))
            return vc_fail(err, VC_EINPUT, "%s: node %s: %s needs a 'kernel' attribute", path, n->name, vc_op_names[n->op]);
    }
    if (a->stride[0] == 0) {   // PyTorch: conv stride defaults to 1, pool stride to the kernel
        a->stride[0] = n->op == VC_OP_CONV2D ? 1 : a->kernel[0];
        a->stride[1] = n->op == VC_OP_CONV2D ? 1 : a->kernel[1];
    }
    a->groups = (int)attr_num(attrs, "groups", 1);
    a->ceil_mode = (int)attr_num(attrs, "ceil_mode", 0);
    a->count_include_pad = (int)attr_num(attrs, "count_include_pad", 1);
    a->divisor_override = (int)attr_num(attrs, "divisor_override", 0);
    a->size = (int)attr_num(attrs, "size", 0);
    a->eps = (float)attr_num(attrs, "eps", 1e-5);
    a->alpha = (float)attr_num(attrs, "alpha", 1e-4);
    a->beta = (float)attr_num(attrs, "beta", 0.75);
    a->k = (float)attr_num(attrs, "k", 1.0);
    a->p = (float)attr_num(attrs, "p", 0.5);
    a->min_val = (float)attr_num(attrs, "min_val", -1.0);
    a->max_val = (float)attr_num(attrs, "max_val", 1.0);
    a->start = (int)attr_num(attrs, "start", 0);
    a->end = (int)attr_num(attrs, "end", 0);
    return VC_OK;
}

// Attaches the file's tensor `tname` as model param; returns its index or -1 with err set.
typedef struct { int n; const vc_tensor_src *t; } tensor_table;

static const vc_tensor_src *table_find(const tensor_table *f, const char *name) {
    for (int i = 0; i < f->n; i++)
        if (!strcmp(f->t[i].name, name)) return &f->t[i];
    return NULL;
}

static int add_param(vc_model *m, const tensor_table *f, const char *tname, const char *node, vc_error *err) {
    for (int i = 0; i < m->n_params; i++)
        if (!strcmp(m->params[i].name, tname)) return i;   // shared (tied) parameter
    const vc_tensor_src *t = table_find(f, tname);
    if (!t) { vc_fail(err, VC_EINPUT, "%s: node %s: tensor '%s' is missing from the file", m->path, node, tname); return -1; }
    if (strcmp(t->dtype, "F32")) { vc_fail(err, VC_EINPUT, "%s: tensor '%s' is %s, only F32 is supported", m->path, tname, t->dtype); return -1; }
    if (t->rank > 4) { vc_fail(err, VC_EINPUT, "%s: tensor '%s' has rank %d > 4", m->path, tname, t->rank); return -1; }
    vc_param *p = &m->params[m->n_params];
    p->name = strdup_check(tname);
    p->rank = t->rank;
    p->size = 1;
    for (int k = 0; k < t->rank; k++) {
        if (t->dim[k] > (1 << 30)) { vc_fail(err, VC_EINPUT, "%s: tensor '%s' is too large", m->path, tname); return -1; }
        p->dim[k] = (int)t->dim[k];
        p->size *= (size_t)t->dim[k];
    }
    const unsigned char *src = t->data;
    if (((uintptr_t)src & 3) == 0) p->data = (float *)(uintptr_t)src;   // points into m->blob
    else {
        p->data = malloc_check(p->size * sizeof(float));
        memcpy(p->data, src, p->size * sizeof(float));
    }
    return m->n_params++;
}

static const char *role_key[VC_P_COUNT] = {"weight", "bias", "running_mean", "running_var"};

// Orders nodes so that every input precedes its user, keeping the file's
// order wherever it already is one (a stable Kahn: always the earliest ready
// node), so that layers are listed as the model file lists them. Fails on a cycle.
static int topo_sort(vc_model *m, int **in_idx, int *n_in, vc_node *tmp, vc_error *err) {
    int n = m->n_nodes;
    int *indeg = calloc_check(n, sizeof(int)), *order = malloc_check(n * sizeof(int)), *pos = malloc_check(n * sizeof(int));
    unsigned char *placed = calloc_check(n, 1);
    for (int i = 0; i < n; i++) indeg[i] = n_in[i];
    int tail = 0, lo = 0;   // nodes before lo are all placed
    while (tail < n) {
        int u = -1;
        for (int i = lo; i < n; i++)
            if (!placed[i] && indeg[i] == 0) { u = i; break; }
        if (u < 0) break;   // a cycle
        placed[u] = 1;
        order[tail++] = u;
        while (lo < n && placed[lo]) lo++;
        for (int v = 0; v < n; v++)
            for (int k = 0; k < n_in[v]; k++)
                if (in_idx[v][k] == u) indeg[v]--;
    }
    free(placed);
    int rc = VC_OK;
    if (tail < n) {
        int bad = 0;
        for (int i = 0; i < n; i++) if (indeg[i] > 0) { bad = i; break; }
        rc = vc_fail(err, VC_EINPUT, "%s: the graph has a cycle through node %s", m->path, tmp[bad].name);
    } else {
        for (int i = 0; i < n; i++) pos[order[i]] = i;
        for (int i = 0; i < n; i++) {
            m->nodes[i] = tmp[order[i]];
            m->nodes[i].n_in = n_in[order[i]];
            m->nodes[i].in = in_idx[order[i]];
            in_idx[order[i]] = NULL;
            for (int k = 0; k < m->nodes[i].n_in; k++) m->nodes[i].in[k] = pos[m->nodes[i].in[k]];
        }
    }
    free(indeg); free(order); free(pos);
    return rc;
}

static int build(vc_model *m, const tensor_table *f, cJSON *g, vc_error *err) {
    const char *path = m->path;
    cJSON *fmt = cJSON_GetObjectItemCaseSensitive(g, "format");
    if (!cJSON_IsString(fmt) || strcmp(fmt->valuestring, "viscnn.graph"))
        return vc_fail(err, VC_EINPUT, "%s: viscnn.graph metadata lacks \"format\": \"viscnn.graph\"", path);
    cJSON *name = cJSON_GetObjectItemCaseSensitive(g, "name");
    m->name = strdup_check(cJSON_IsString(name) ? name->valuestring : "model");
    cJSON *input = cJSON_GetObjectItemCaseSensitive(g, "input");
    cJSON *ishape = input ? cJSON_GetObjectItemCaseSensitive(input, "shape") : NULL;
    cJSON *iname = input ? cJSON_GetObjectItemCaseSensitive(input, "name") : NULL;
    if (!cJSON_IsArray(ishape) || cJSON_GetArraySize(ishape) != 3 || !cJSON_IsString(iname))
        return vc_fail(err, VC_EINPUT, "%s: graph input must have a name and a shape [C, H, W]", path);
    int ic = cJSON_GetArrayItem(ishape, 0)->valueint, ih = cJSON_GetArrayItem(ishape, 1)->valueint,
        iw = cJSON_GetArrayItem(ishape, 2)->valueint;
    if (ic < 1 || ih < 1 || iw < 1 || ic > 4096 || ih > 16384 || iw > 16384)
        return vc_fail(err, VC_EINPUT, "%s: graph input shape [%d, %d, %d] is not valid", path, ic, ih, iw);
    cJSON *nodes = cJSON_GetObjectItemCaseSensitive(g, "nodes");
    if (!cJSON_IsArray(nodes) || cJSON_GetArraySize(nodes) < 1)
        return vc_fail(err, VC_EINPUT, "%s: graph has no nodes", path);
    int n = cJSON_GetArraySize(nodes) + 1;
    vc_node *tmp = calloc_check(n, sizeof(vc_node));
    int **in_idx = calloc_check(n, sizeof(int *)), *n_in = calloc_check(n, sizeof(int));
    m->nodes = calloc_check(n, sizeof(vc_node));
    m->params = calloc_check((size_t)n * VC_P_COUNT, sizeof(vc_param));
    m->n_nodes = n;
    int rc = VC_OK;
    tmp[0].name = strdup_check(iname->valuestring);
    tmp[0].op = VC_OP_INPUT;
    for (int r = 0; r < VC_P_COUNT; r++) tmp[0].param[r] = -1;
    tmp[0].rank = 4; tmp[0].c = ic; tmp[0].h = ih; tmp[0].w = iw;
    tmp[0].size = (size_t)ic * ih * iw;
    int i = 1;
    for (cJSON *e = nodes->child; e && !rc; e = e->next, i++) {
        vc_node *nd = &tmp[i];
        for (int r = 0; r < VC_P_COUNT; r++) nd->param[r] = -1;
        cJSON *nn = cJSON_GetObjectItemCaseSensitive(e, "name"), *op = cJSON_GetObjectItemCaseSensitive(e, "op");
        if (!cJSON_IsString(nn) || !cJSON_IsString(op)) { rc = vc_fail(err, VC_EINPUT, "%s: graph node #%d lacks a name or an op", path, i); break; }
        nd->name = strdup_check(nn->valuestring);
        for (int j = 0; j < i; j++)
            if (!strcmp(tmp[j].name, nd->name)) { rc = vc_fail(err, VC_EINPUT, "%s: node name '%s' is used twice", path, nd->name); break; }
        if (rc) break;
        nd->op = vc_op_from_name(op->valuestring);
        if (nd->op == VC_OP_INPUT) { rc = vc_fail(err, VC_EINPUT, "%s: node %s: unknown op '%s'", path, nd->name, op->valuestring); break; }
        rc = parse_attrs(nd, cJSON_GetObjectItemCaseSensitive(e, "attrs"), path, err);
    }
    // Resolve input names against all nodes (a later name means a cycle or bad order).
    i = 1;
    for (cJSON *e = nodes->child; e && !rc; e = e->next, i++) {
        cJSON *ins = cJSON_GetObjectItemCaseSensitive(e, "inputs");
        int k = cJSON_GetArraySize(ins);
        int want = tmp[i].op == VC_OP_ADD ? 2 : tmp[i].op == VC_OP_CONCAT || tmp[i].op == VC_OP_MUL ? -1 : 1;
        if (!cJSON_IsArray(ins) || k < 1 || k > MAX_IN || (want > 0 && k != want)) {
            rc = vc_fail(err, VC_EINPUT, "%s: node %s: %s takes %s input%s, got %d", path, tmp[i].name,
                         vc_op_names[tmp[i].op], want == 2 ? "2" : want == 1 ? "1" : "1 or more", want == 1 ? "" : "s", k);
            break;
        }
        in_idx[i] = malloc_check(k * sizeof(int));
        n_in[i] = k;
        int j = 0;
        for (cJSON *s = ins->child; s; s = s->next, j++) {
            int found = -1;
            for (int q = 0; q < n && cJSON_IsString(s); q++)
                if (!strcmp(tmp[q].name, s->valuestring)) { found = q; break; }
            if (found < 0) {
                rc = vc_fail(err, VC_EINPUT, "%s: node %s: input '%s' is not a node of the graph", path, tmp[i].name,
                             cJSON_IsString(s) ? s->valuestring : "?");
                break;
            }
            in_idx[i][j] = found;
        }
        if (rc) break;
        cJSON *params = cJSON_GetObjectItemCaseSensitive(e, "params");
        for (int r = 0; r < VC_P_COUNT && !rc; r++) {
            cJSON *pn = params ? cJSON_GetObjectItemCaseSensitive(params, role_key[r]) : NULL;
            if (!pn) continue;
            if (!cJSON_IsString(pn)) { rc = vc_fail(err, VC_EINPUT, "%s: node %s: param '%s' is not a tensor name", path, tmp[i].name, role_key[r]); break; }
            tmp[i].param[r] = add_param(m, f, pn->valuestring, tmp[i].name, err);
            if (tmp[i].param[r] < 0) rc = VC_EINPUT;
        }
    }
    if (!rc) rc = topo_sort(m, in_idx, n_in, tmp, err);
    if (!rc && strcmp(m->nodes[0].name, tmp[0].name))
        rc = vc_fail(err, VC_EINPUT, "%s: node %s takes no input (only the graph input may)", path, m->nodes[0].name);
    for (int q = 0; q < n; q++) free(in_idx[q]);
    free(in_idx);
    free(n_in);
    if (rc) {   // names not yet moved into m->nodes belong to tmp
        for (int q = 0; q < n; q++) if (!m->nodes[q].name) free(tmp[q].name);
        free(tmp);
        return rc;
    }
    free(tmp);
    for (int q = 1; q < n && !rc; q++) rc = vc_cpu_ops[m->nodes[q].op].infer(m, &m->nodes[q], err);
    if (rc) return rc;
    cJSON *out = cJSON_GetObjectItemCaseSensitive(g, "output");
    m->output = cJSON_IsString(out) ? vc_model_find(m, out->valuestring) : m->n_nodes - 1;
    if (m->output < 0) return vc_fail(err, VC_EINPUT, "%s: graph output '%s' is not a node", path, out->valuestring);
    for (int q = 0; q < n; q++)
        if (m->nodes[q].op == VC_OP_CONV2D)
            m->n_edges += (size_t)m->nodes[q].c * (m->nodes[m->nodes[q].in[0]].c / m->nodes[q].a.groups);
    for (int q = 0; q < m->n_params; q++) m->n_weights += m->params[q].size;
    return VC_OK;
}

static int parse_meta(vc_model *m, cJSON *g, vc_error *err) {
    vc_preprocess *p = &m->pre;
    const vc_node *x = &m->nodes[0];
    p->channels = x->c;
    for (int c = 0; c < 3; c++) { p->mean[c] = 0; p->std[c] = 1; }
    cJSON *pp = cJSON_GetObjectItemCaseSensitive(g, "preprocess");
    if (pp) {
        p->resize = (int)attr_num(pp, "resize", 0);
        p->crop = (int)attr_num(pp, "crop", 0);
        p->channels = (int)attr_num(pp, "channels", x->c);
        cJSON *mean = cJSON_GetObjectItemCaseSensitive(pp, "mean"), *std = cJSON_GetObjectItemCaseSensitive(pp, "std");
        for (int c = 0; c < 3 && c < p->channels; c++) {
            if (cJSON_IsArray(mean) && cJSON_GetArraySize(mean) > c) p->mean[c] = (float)cJSON_GetArrayItem(mean, c)->valuedouble;
            if (cJSON_IsArray(std) && cJSON_GetArraySize(std) > c) p->std[c] = (float)cJSON_GetArrayItem(std, c)->valuedouble;
            if (!(p->std[c] > 0)) return vc_fail(err, VC_EINPUT, "%s: preprocess std[%d] must be > 0", m->path, c);
        }
        if (p->channels != x->c) return vc_fail(err, VC_EINPUT, "%s: preprocess channels %d differ from the input's %d", m->path, p->channels, x->c);
    }
    cJSON *labels = cJSON_GetObjectItemCaseSensitive(g, "labels");
    if (cJSON_IsArray(labels)) {
        int k = cJSON_GetArraySize(labels);
        m->labels = calloc_check(k, sizeof(char *));
        for (cJSON *l = labels->child; l; l = l->next)
            m->labels[m->n_labels++] = strdup_check(cJSON_IsString(l) ? l->valuestring : "?");
        const vc_node *o = &m->nodes[m->output];
        if ((size_t)k != o->size)
            return vc_fail(err, VC_EINPUT, "%s: %d labels for an output of width %zu", m->path, k, o->size);
    }
    return VC_OK;
}

int vc_model_build(vc_model *m, const char *graph_json, int n_tensors, const vc_tensor_src *tensors, vc_error *err) {
    cJSON *g = cJSON_Parse(graph_json);
    if (!g) return vc_fail(err, VC_EINPUT, "%s: viscnn.graph metadata is not valid JSON", m->path);
    m->graph_json = strdup_check(graph_json);
    tensor_table f = {n_tensors, tensors};
    int rc = build(m, &f, g, err);
    if (!rc) rc = parse_meta(m, g, err);
    cJSON_Delete(g);
    return rc;
}
