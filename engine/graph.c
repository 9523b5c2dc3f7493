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
#include "checked.h"
#include "namemap.h"

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

// Attribute values are untrusted: every one must be a number of the right
// kind (an integer where an integer is meant, finite where a real is) inside
// the limits of engine/checked.h, or the model does not load.
static int num_int(const cJSON *v, long lo, long hi, int *out) {
    if (cJSON_IsBool(v)) { *out = cJSON_IsTrue(v); return *out >= lo && *out <= hi; }
    if (!cJSON_IsNumber(v)) return 0;
    double d = v->valuedouble;
    if (!(d >= (double)lo && d <= (double)hi) || d != floor(d)) return 0;
    *out = (int)d;
    return 1;
}
static const char *num_text(const cJSON *v, char buf[48]) {
    if (cJSON_IsNumber(v)) snprintf(buf, 48, "%.15g", v->valuedouble);
    else snprintf(buf, 48, "a %s", cJSON_IsString(v) ? "string" : cJSON_IsArray(v) ? "list" : cJSON_IsObject(v) ? "object" : "null");
    return buf;
}

// An int or [h, w] attribute in [lo, hi]; absent -> def (for both).
static int attr_pair(cJSON *attrs, const char *key, int out[2], int def, long lo, long hi, const char *path, const char *node, vc_error *err) {
    cJSON *a = attrs ? cJSON_GetObjectItemCaseSensitive(attrs, key) : NULL;
    out[0] = out[1] = def;
    if (!a || cJSON_IsNull(a)) return VC_OK;
    if (cJSON_IsNumber(a) && num_int(a, lo, hi, &out[0])) { out[1] = out[0]; return VC_OK; }
    if (cJSON_IsArray(a) && cJSON_GetArraySize(a) == 2 && num_int(cJSON_GetArrayItem(a, 0), lo, hi, &out[0]) &&
        num_int(cJSON_GetArrayItem(a, 1), lo, hi, &out[1]))
        return VC_OK;
    char b[48];
    const cJSON *bad = a;
    if (cJSON_IsArray(a) && cJSON_GetArraySize(a) == 2)
        bad = num_int(cJSON_GetArrayItem(a, 0), lo, hi, &out[0]) ? cJSON_GetArrayItem(a, 1) : cJSON_GetArrayItem(a, 0);
    return vc_fail(err, VC_EINPUT, "%s: node %s: attribute '%s' must be an integer in [%ld, %ld] or a pair [h, w] of them, got %s",
                   path, vc_str(node), key, lo, hi, cJSON_IsArray(a) && bad == a ? "a list that is not a pair" : num_text(bad, b));
}
static int attr_int(cJSON *attrs, const char *key, int *out, int def, long lo, long hi, const char *path, const char *node, vc_error *err) {
    cJSON *a = attrs ? cJSON_GetObjectItemCaseSensitive(attrs, key) : NULL;
    *out = def;
    if (!a || cJSON_IsNull(a) || num_int(a, lo, hi, out)) return VC_OK;
    char b[48];
    return vc_fail(err, VC_EINPUT, "%s: node %s: attribute '%s' must be an integer in [%ld, %ld], got %s",
                   path, vc_str(node), key, lo, hi, num_text(a, b));
}
static int attr_real(cJSON *attrs, const char *key, float *out, double def, const char *path, const char *node, vc_error *err) {
    cJSON *a = attrs ? cJSON_GetObjectItemCaseSensitive(attrs, key) : NULL;
    *out = (float)def;
    if (!a || cJSON_IsNull(a)) return VC_OK;
    if (cJSON_IsNumber(a) && isfinite((float)a->valuedouble)) { *out = (float)a->valuedouble; return VC_OK; }
    char b[48];
    return vc_fail(err, VC_EINPUT, "%s: node %s: attribute '%s' must be a finite number, got %s", path, vc_str(node), key, num_text(a, b));
}
// The preprocess block's numbers (not a node's).
static double meta_num(cJSON *pp, const char *key, double def) {
    cJSON *a = pp ? cJSON_GetObjectItemCaseSensitive(pp, key) : NULL;
    return cJSON_IsNumber(a) ? a->valuedouble : def;
}

static int parse_attrs(vc_node *n, cJSON *attrs, const char *path, vc_error *err) {
    vc_attrs *a = &n->a;
    const char *nm = n->name;
    if (attrs && !cJSON_IsObject(attrs)) return vc_fail(err, VC_EINPUT, "%s: node %s: attrs is not an object", path, vc_str(nm));
    if (attr_pair(attrs, "kernel", a->kernel, 1, 1, VC_LIM_KERNEL, path, nm, err) ||
        attr_pair(attrs, "stride", a->stride, 0, 1, VC_LIM_STRIDE, path, nm, err) ||
        attr_pair(attrs, "padding", a->padding, 0, 0, VC_LIM_PADDING, path, nm, err) ||
        attr_pair(attrs, "dilation", a->dilation, 1, 1, VC_LIM_DILATION, path, nm, err) ||
        attr_pair(attrs, "output", a->output, 1, 1, VC_LIM_SPATIAL, path, nm, err))
        return VC_EINPUT;
    if (n->op == VC_OP_CONV2D || n->op == VC_OP_MAXPOOL2D || n->op == VC_OP_AVGPOOL2D) {
        if (!attrs || !cJSON_GetObjectItemCaseSensitive(attrs, "kernel"))
            return vc_fail(err, VC_EINPUT, "%s: node %s: %s needs a 'kernel' attribute", path, vc_str(nm), vc_op_names[n->op]);
    }
    if (a->stride[0] == 0) {   // absent. PyTorch: conv stride defaults to 1, pool stride to the kernel
        a->stride[0] = n->op == VC_OP_CONV2D ? 1 : a->kernel[0];
        a->stride[1] = n->op == VC_OP_CONV2D ? 1 : a->kernel[1];
    }
    if (attr_int(attrs, "groups", &a->groups, 1, 1, VC_LIM_GROUPS, path, nm, err) ||
        attr_int(attrs, "ceil_mode", &a->ceil_mode, 0, 0, 1, path, nm, err) ||
        attr_int(attrs, "count_include_pad", &a->count_include_pad, 1, 0, 1, path, nm, err) ||
        attr_int(attrs, "divisor_override", &a->divisor_override, 0, 0, VC_LIM_KERNEL * VC_LIM_KERNEL, path, nm, err) ||
        attr_int(attrs, "size", &a->size, 0, 0, VC_LIM_LRN, path, nm, err) ||
        attr_real(attrs, "eps", &a->eps, 1e-5, path, nm, err) || attr_real(attrs, "alpha", &a->alpha, 1e-4, path, nm, err) ||
        attr_real(attrs, "beta", &a->beta, 0.75, path, nm, err) || attr_real(attrs, "k", &a->k, 1.0, path, nm, err) ||
        attr_real(attrs, "p", &a->p, 0.5, path, nm, err) ||
        attr_real(attrs, "min_val", &a->min_val, -1.0, path, nm, err) || attr_real(attrs, "max_val", &a->max_val, 1.0, path, nm, err) ||
        attr_int(attrs, "start", &a->start, 0, 0, VC_LIM_CHANNELS, path, nm, err) ||
        attr_int(attrs, "end", &a->end, 0, 0, VC_LIM_CHANNELS, path, nm, err))
        return VC_EINPUT;
    return VC_OK;
}

// The file's tensors by name, and the model's params by name (a tied
// parameter is attached once).
typedef struct { int n; const vc_tensor_src *t; vc_namemap by_name, params; } tensor_table;

// Attaches the file's tensor `tname` as model param; returns its index or -1 with err set.
static int add_param(vc_model *m, tensor_table *f, const char *tname, const char *node, vc_error *err) {
    int have = namemap_get(&f->params, tname);
    if (have >= 0) return have;   // shared (tied) parameter
    int ti = namemap_get(&f->by_name, tname);
    if (ti < 0) { vc_fail(err, VC_EINPUT, "%s: node %s: tensor '%s' is missing from the file", m->path, vc_str(node), vc_str(tname)); return -1; }
    const vc_tensor_src *t = &f->t[ti];
    if (strcmp(t->dtype, "F32")) { vc_fail(err, VC_EINPUT, "%s: tensor '%s' is %s, only F32 is supported", m->path, vc_str(tname), vc_str(t->dtype)); return -1; }
    if (t->rank > 4) { vc_fail(err, VC_EINPUT, "%s: tensor '%s' has rank %d > 4", m->path, vc_str(tname), t->rank); return -1; }
    int ovf = 0;
    int64_t size = 1;
    for (int k = 0; k < t->rank; k++) size = ck_mul(size, t->dim[k] < 0 ? -1 : t->dim[k], &ovf);
    if (ovf || size < 0 || size > VC_LIM_ELEMS) {
        vc_fail(err, VC_EINPUT, "%s: tensor '%s' has more than 2^30 elements", m->path, vc_str(tname));
        return -1;
    }
    const unsigned char *src = t->data;
    for (int64_t q = 0; q < size; q++) {   // one bad weight would make every score NaN
        float v;
        memcpy(&v, src + 4 * q, 4);
        if (!isfinite(v)) {
            vc_fail(err, VC_EINPUT, "%s: tensor '%s' holds a non-finite value (%g) at flat index %lld",
                    m->path, vc_str(tname), v, (long long)q);
            return -1;
        }
    }
    vc_param *p = &m->params[m->n_params];
    p->name = strdup_check(tname);
    p->rank = t->rank;
    p->size = (size_t)size;
    for (int k = 0; k < t->rank; k++) p->dim[k] = (int)t->dim[k];
    if (((uintptr_t)src & 3) == 0) p->data = (float *)(uintptr_t)src;   // points into m->blob
    else {
        p->data = malloc_check(p->size * sizeof(float));
        memcpy(p->data, src, p->size * sizeof(float));
    }
    namemap_put(&f->params, p->name, m->n_params);
    return m->n_params++;
}

static const char *role_key[VC_P_COUNT] = {"weight", "bias", "running_mean", "running_var"};

// A binary min-heap of node indices: the ready node that comes first in the file.
static void heap_push(int *h, int *n, int v) {
    int i = (*n)++;
    for (; i > 0 && h[(i - 1) / 2] > v; i = (i - 1) / 2) h[i] = h[(i - 1) / 2];
    h[i] = v;
}
static int heap_pop(int *h, int *n) {
    int top = h[0], v = h[--*n], i = 0;
    for (;;) {
        int c = 2 * i + 1;
        if (c >= *n) break;
        if (c + 1 < *n && h[c + 1] < h[c]) c++;
        if (h[c] >= v) break;
        h[i] = h[c];
        i = c;
    }
    h[i] = v;
    return top;
}

// Orders nodes so that every input precedes its user, keeping the file's
// order wherever it already is one (a stable Kahn: always the earliest ready
// node, from a heap; users found through a CSR list: O(E log n) in all), so
// that layers are listed as the model file lists them. Fails on a cycle.
static int topo_sort(vc_model *m, int **in_idx, int *n_in, vc_node *tmp, vc_error *err) {
    int n = m->n_nodes;
    int *indeg = calloc_check(n, sizeof(int)), *order = malloc_check(n * sizeof(int)), *pos = malloc_check(n * sizeof(int));
    int *ustart = calloc_check((size_t)n + 1, sizeof(int)), *heap = malloc_check(n * sizeof(int));
    size_t n_edges = 0;
    for (int v = 0; v < n; v++) {
        indeg[v] = n_in[v];
        n_edges += (size_t)n_in[v];
        for (int k = 0; k < n_in[v]; k++) ustart[in_idx[v][k] + 1]++;
    }
    for (int u = 0; u < n; u++) ustart[u + 1] += ustart[u];
    int *users = malloc_check(n_edges * sizeof(int)), *fill = malloc_check(n * sizeof(int));
    memcpy(fill, ustart, n * sizeof(int));
    for (int v = 0; v < n; v++)
        for (int k = 0; k < n_in[v]; k++) users[fill[in_idx[v][k]]++] = v;   // once per input slot (x + x counts twice)
    int tail = 0, nh = 0;
    for (int i = 0; i < n; i++) if (indeg[i] == 0) heap_push(heap, &nh, i);
    while (nh > 0) {
        int u = heap_pop(heap, &nh);
        order[tail++] = u;
        for (int e = ustart[u]; e < ustart[u + 1]; e++)
            if (--indeg[users[e]] == 0) heap_push(heap, &nh, users[e]);
    }
    free(users); free(fill); free(ustart); free(heap);
    int rc = VC_OK;
    if (tail < n) {
        int bad = 0;
        for (int i = 0; i < n; i++) if (indeg[i] > 0) { bad = i; break; }
        rc = vc_fail(err, VC_EINPUT, "%s: the graph has a cycle through node %s", m->path, vc_str(tmp[bad].name));
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

static int build(vc_model *m, tensor_table *f, cJSON *g, vc_error *err) {
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
    int ic, ih, iw;
    if (!num_int(cJSON_GetArrayItem(ishape, 0), 1, 4096, &ic) || !num_int(cJSON_GetArrayItem(ishape, 1), 1, 16384, &ih) ||
        !num_int(cJSON_GetArrayItem(ishape, 2), 1, 16384, &iw))
        return vc_fail(err, VC_EINPUT, "%s: graph input shape must be integers [C, H, W] with C in [1, 4096] and H, W in [1, 16384]", path);
    if ((int64_t)ic * ih * iw > VC_LIM_ELEMS)
        return vc_fail(err, VC_EINPUT, "%s: graph input shape [%d, %d, %d] has more than 2^30 values", path, ic, ih, iw);
    cJSON *nodes = cJSON_GetObjectItemCaseSensitive(g, "nodes");
    if (!cJSON_IsArray(nodes) || cJSON_GetArraySize(nodes) < 1)
        return vc_fail(err, VC_EINPUT, "%s: graph has no nodes", path);
    if (cJSON_GetArraySize(nodes) >= VC_LIM_NODES)
        return vc_fail(err, VC_EINPUT, "%s: graph has %d nodes, more than the limit %d", path, cJSON_GetArraySize(nodes), VC_LIM_NODES - 1);
    int n = cJSON_GetArraySize(nodes) + 1;
    vc_node *tmp = calloc_check(n, sizeof(vc_node));
    int **in_idx = calloc_check(n, sizeof(int *)), *n_in = calloc_check(n, sizeof(int));
    m->nodes = calloc_check(n, sizeof(vc_node));
    m->params = calloc_check((size_t)n * VC_P_COUNT, sizeof(vc_param));
    m->n_nodes = n;
    vc_namemap names;
    namemap_init(&names, (size_t)n);
    namemap_init(&f->params, (size_t)n * VC_P_COUNT);
    int rc = VC_OK;
    tmp[0].name = strdup_check(iname->valuestring);
    namemap_put(&names, tmp[0].name, 0);
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
        if (namemap_put(&names, nd->name, i) >= 0) { rc = vc_fail(err, VC_EINPUT, "%s: node name '%s' is used twice", path, vc_str(nd->name)); break; }
        nd->op = vc_op_from_name(op->valuestring);
        if (nd->op == VC_OP_INPUT) { rc = vc_fail(err, VC_EINPUT, "%s: node %s: unknown op '%s'", path, vc_str(nd->name), vc_str(op->valuestring)); break; }
        rc = parse_attrs(nd, cJSON_GetObjectItemCaseSensitive(e, "attrs"), path, err);
    }
    // Resolve input names against all nodes (a later name means a cycle or bad order).
    i = 1;
    for (cJSON *e = nodes->child; e && !rc; e = e->next, i++) {
        cJSON *ins = cJSON_GetObjectItemCaseSensitive(e, "inputs");
        int k = cJSON_GetArraySize(ins);
        int want = tmp[i].op == VC_OP_ADD ? 2 : tmp[i].op == VC_OP_CONCAT || tmp[i].op == VC_OP_MUL ? -1 : 1;
        if (!cJSON_IsArray(ins) || k < 1 || k > MAX_IN || (want > 0 && k != want)) {
            rc = vc_fail(err, VC_EINPUT, "%s: node %s: %s takes %s input%s, got %d", path, vc_str(tmp[i].name),
                         vc_op_names[tmp[i].op], want == 2 ? "2" : want == 1 ? "1" : "1 to 64", want == 1 ? "" : "s", k);
            break;
        }
        in_idx[i] = malloc_check(k * sizeof(int));
        n_in[i] = k;
        int j = 0;
        for (cJSON *s = ins->child; s; s = s->next, j++) {
            int found = cJSON_IsString(s) ? namemap_get(&names, s->valuestring) : -1;
            if (found < 0) {
                rc = vc_fail(err, VC_EINPUT, "%s: node %s: input '%s' is not a node of the graph", path, vc_str(tmp[i].name),
                             cJSON_IsString(s) ? vc_str(s->valuestring) : "?");
                break;
            }
            in_idx[i][j] = found;
        }
        if (rc) break;
        cJSON *params = cJSON_GetObjectItemCaseSensitive(e, "params");
        for (int r = 0; r < VC_P_COUNT && !rc; r++) {
            cJSON *pn = params ? cJSON_GetObjectItemCaseSensitive(params, role_key[r]) : NULL;
            if (!pn) continue;
            if (!cJSON_IsString(pn)) { rc = vc_fail(err, VC_EINPUT, "%s: node %s: param '%s' is not a tensor name", path, vc_str(tmp[i].name), role_key[r]); break; }
            tmp[i].param[r] = add_param(m, f, pn->valuestring, tmp[i].name, err);
            if (tmp[i].param[r] < 0) rc = VC_EINPUT;
        }
    }
    namemap_free(&names);
    if (!rc) rc = topo_sort(m, in_idx, n_in, tmp, err);
    if (!rc && strcmp(m->nodes[0].name, tmp[0].name))
        rc = vc_fail(err, VC_EINPUT, "%s: node %s takes no input (only the graph input may)", path, vc_str(m->nodes[0].name));
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
    if (m->output < 0) return vc_fail(err, VC_EINPUT, "%s: graph output '%s' is not a node", path, vc_str(out->valuestring));
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
        double rs = meta_num(pp, "resize", 0), cr = meta_num(pp, "crop", 0), ch = meta_num(pp, "channels", x->c);
        if (!(rs >= 0 && rs <= 16384 && rs == floor(rs)) || !(cr >= 0 && cr <= 16384 && cr == floor(cr)) ||
            !(ch >= 1 && ch <= 3 && ch == floor(ch)))
            return vc_fail(err, VC_EINPUT, "%s: preprocess resize and crop must be integers in [0, 16384], channels 1 to 3", m->path);
        p->resize = (int)rs;
        p->crop = (int)cr;
        p->channels = (int)ch;
        cJSON *mean = cJSON_GetObjectItemCaseSensitive(pp, "mean"), *std = cJSON_GetObjectItemCaseSensitive(pp, "std");
        for (int c = 0; c < 3 && c < p->channels; c++) {
            if (cJSON_IsArray(mean) && cJSON_GetArraySize(mean) > c) p->mean[c] = (float)cJSON_GetArrayItem(mean, c)->valuedouble;
            if (cJSON_IsArray(std) && cJSON_GetArraySize(std) > c) p->std[c] = (float)cJSON_GetArrayItem(std, c)->valuedouble;
            if (!isfinite(p->mean[c]) || !isfinite(p->std[c]) || !(p->std[c] > 0)) return vc_fail(err, VC_EINPUT, "%s: preprocess mean[%d] and std must be finite, std > 0", m->path, c);
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
    tensor_table f = {n_tensors, tensors, {0}, {0}};
    namemap_init(&f.by_name, (size_t)n_tensors);
    for (int i = 0; i < n_tensors; i++) namemap_put(&f.by_name, tensors[i].name, i);
    int rc = build(m, &f, g, err);
    namemap_free(&f.by_name);
    namemap_free(&f.params);
    if (!rc) rc = parse_meta(m, g, err);
    cJSON_Delete(g);
    return rc;
}
