// api.c: the JSON API of `viscnn serve`. Every endpoint is a GET with query
// parameters unless marked POST; answers are JSON (maps and bitsets inside
// as base64 of little-endian float32 / bytes), errors {"error": "..."} with
// a 4xx status naming the parameter and the reason. Work that is not cached
// answers 202 {"job": {...}}: the page polls /api/job and asks again.
//
//   /api/model                      the model, its display graph, the image set, defaults
//   /api/layout      projection [set metric]          node positions per display layer
//   /api/scores      set target metric scores         normalised node/edge scores per conv layer
//   /api/circuit     ... mode tn te                    kept nodes and edges (bitsets), sizes
//   /api/faithfulness ... mode tn te                   r of this circuit and the curve over kept fractions
//   /api/export      ... mode tn te format=json|pruned the circuit file (as `viscnn circuit` writes it)
//   /api/act         image layer ch                    activation map before and after the ReLU
//   /api/maps        image nodes=L:C,L:C,...          many nodes' maps after the ReLU (diagram)
//   /api/edge        image layer out in                exact edge map, its input map, its kernel
//   /api/kernel      layer out in                      one 2-D kernel
//   /api/rf          layer y x                         receptive field of a unit (input pixels)
//   /api/featvis     node=L:C | edge=L:J:I             feature visualisation (PNG)
//   /api/input       image                             the model's input for an image (what it sees)
//   /api/predict     image                             top classes
//   /api/uploads                                       uploaded images
//   POST /api/upload (body: PNG or JPEG bytes, ?name=)  -> {"id": "up:HEX"}
//   /api/jobs, /api/job?id=N, POST /api/job/cancel?id=N
//
// Parameters: set = "main" | "up:HEX" (an uploaded image); target = loss |
// class:K | node:LAYER:CH; metric = actxgrad | act | grad | taylor | weight |
// snip; scores = "overall" | a category | a contrast ("sneaker - overall");
// mode = threshold | hierarchical | keep:F; tn, te in [0, 1]; image = "m:IDX"
// (the set's IDX-th image) | "up:HEX"; layer = a display layer's name (the
// input node's name, a conv's, an add's).
#include "../../loaders/atomic_write.h"
#include "server.h"
#include <cjson/cJSON.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "../rf.h"
#include "../../engine/util.h"
#include "../../loaders/image.h"
#include "../../ops/ops.h"

enum { UPLOAD_MAX_SIDE = 4096, UPLOAD_MAX_PIXELS = 16 << 20 };

// ---- small helpers ---------------------------------------------------------------------
static void add_b64(cJSON *o, const char *key, const void *p, size_t n) {
    char *b = base64(p, n);
    cJSON_AddStringToObject(o, key, b);
    free(b);
}

// A float map as {"h", "w", "data": base64 float32, "min", "max"}.
static cJSON *map_json(const float *v, int h, int w) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "h", h);
    cJSON_AddNumberToObject(o, "w", w);
    float lo = INFINITY, hi = -INFINITY;
    for (size_t k = 0; k < (size_t)h * w; k++) { if (v[k] < lo) lo = v[k]; if (v[k] > hi) hi = v[k]; }
    cJSON_AddNumberToObject(o, "min", isfinite(lo) ? lo : 0);
    cJSON_AddNumberToObject(o, "max", isfinite(hi) ? hi : 0);
    add_b64(o, "data", v, (size_t)h * w * sizeof(float));
    return o;
}

static int bad(http_resp *r, const vc_error *err) {
    resp_error(r, 400, "%s", err->msg);
    return -1;
}

// Integer argument in [lo, hi]; def when absent and not required.
static int arg_int(const http_req *q, http_resp *r, const char *key, long lo, long hi, long def, int required, long *out) {
    const char *v = req_arg(q, key);
    *out = def;
    if (!v) {
        if (!required) return 0;
        resp_error(r, 400, "missing parameter %s", key);
        return -1;
    }
    char *end;
    errno = 0;
    long x = strtol(v, &end, 10);
    if (end == v || *end || errno || x < lo || x > hi) {
        resp_error(r, 400, "parameter %s=%.64s: expected an integer in [%ld, %ld]", key, v, lo, hi);
        return -1;
    }
    *out = x;
    return 0;
}

static const char *arg_req(const http_req *q, http_resp *r, const char *key) {
    const char *v = req_arg(q, key);
    if (!v) resp_error(r, 400, "missing parameter %s", key);
    return v;
}

// The display layer called name, or -1.
static int dlayer_find(const vc_server *s, const char *name) {
    for (int l = 0; l < s->g.n_layers; l++)
        if (!strcmp(s->m->nodes[s->g.l[l].node].name, name)) return l;
    return -1;
}

static int arg_dlayer(vc_server *s, const http_req *q, http_resp *r, const char *key, int *dl) {
    const char *v = arg_req(q, r, key);
    if (!v) return -1;
    *dl = dlayer_find(s, v);
    if (*dl < 0) {
        resp_error(r, 400, "parameter %s=%.200s: no such layer in the display graph (an input, conv or add node of %s)",
                   key, v, s->m->name);
        return -1;
    }
    return 0;
}

// The node whose output is the map of display layer dl before its ReLU
// (a conv's BN when the BN is its only consumer), and the ReLU after it (or -1).
static int only_consumer(const vc_model *m, int node) {
    int n = 0, c = -1;
    for (int j = node + 1; j < m->n_nodes; j++)
        for (int k = 0; k < m->nodes[j].n_in; k++)
            if (m->nodes[j].in[k] == node) { n++; c = j; }
    return n == 1 ? c : -1;
}

static void display_maps(const vc_server *s, int dl, int *pre, int *post) {
    const vc_model *m = s->m;
    *pre = s->g.l[dl].node;
    *post = -1;
    if (s->g.l[dl].kind == VC_DL_INPUT) return;
    int c = only_consumer(m, *pre);
    if (s->g.l[dl].kind == VC_DL_CONV && c >= 0 && m->nodes[c].op == VC_OP_BATCHNORM2D) {
        *pre = c;
        c = only_consumer(m, c);
    }
    if (c >= 0 && m->nodes[c].op == VC_OP_RELU) *post = c;
}

static int parse_image_id(vc_server *s, const char *id, http_resp *r) {
    if (!strncmp(id, "m:", 2)) {
        char *end;
        long k = strtol(id + 2, &end, 10);
        if (end != id + 2 && !*end && k >= 0 && k < s->main_set.n && strlen(id) < 20) return 0;
        resp_error(r, 400, "image %.64s: the image set has images m:0 .. m:%d", id, s->main_set.n - 1);
        return -1;
    }
    char path[4096];
    if (strlen(id) < 96 && !upload_path(s, id, path, sizeof path)) return 0;
    resp_error(r, 400, "image %.64s: expected m:IDX (an image of the set) or up:HEX (an uploaded image)", id);
    return -1;
}

// x: (C, H, W) the model's input for image id.
static int image_input(vc_server *s, const char *id, float *x, int *label, vc_error *err) {
    const vc_node *in = &s->m->nodes[0];
    *label = -1;
    if (!strncmp(id, "m:", 2)) {
        int k = atoi(id + 2);
        return imageset_load(&s->main_set, &k, 1, x, label, err);
    }
    char path[4096];
    if (upload_path(s, id, path, sizeof path)) return vc_fail(err, VC_EINPUT, "image %s: no such upload", id);
    int rc = image_preprocess(x, path, &s->m->pre, in->h, in->w, err);
    if (rc) {   // no server paths in messages
        const char *colon = strstr(err->msg, ": ");
        if (colon) memmove(err->msg, colon + 2, strlen(colon + 2) + 1);
    }
    return rc;
}

// The run of image id with every activation kept (compute thread only).
static int image_run_get(vc_server *s, const char *id, image_run **out, vc_error *err) {
    uint64_t key = hash_str(HASH_SEED, id);
    image_run *slot = &s->runs[0];
    for (int k = 0; k < IMAGE_RUNS; k++) {
        if (s->runs[k].r && s->runs[k].key == key) {
            s->runs[k].used = ++s->run_clock;
            *out = &s->runs[k];
            return VC_OK;
        }
        if (s->runs[k].used < slot->used) slot = &s->runs[k];
    }
    vc_run_free(slot->r);
    free(slot->x);
    memset(slot, 0, sizeof *slot);
    slot->x = malloc_check(s->m->nodes[0].size * sizeof(float));
    int rc = image_input(s, id, slot->x, &slot->label, err);
    if (!rc) {
        slot->r = vc_run_new(s->m, 1);
        rc = vc_forward(slot->r, slot->x, -1, 0, err);
    }
    if (rc) {
        vc_run_free(slot->r);
        free(slot->x);
        memset(slot, 0, sizeof *slot);
        return rc;
    }
    slot->key = key;
    snprintf(slot->id, sizeof slot->id, "%s", id);
    slot->used = ++s->run_clock;
    *out = slot;
    return VC_OK;
}

static void add_rf_geom(vc_server *s, cJSON *o, int node) {
    vc_rf_geom g;
    vc_error err;
    if (rf_geom(s->m, node, &g, &err)) return;
    cJSON *r = cJSON_AddObjectToObject(o, "rf");
    cJSON_AddBoolToObject(r, "affine", g.affine);
    cJSON_AddItemToObject(r, "jump", cJSON_CreateIntArray(g.jump, 2));
    cJSON_AddItemToObject(r, "size", cJSON_CreateIntArray(g.size, 2));
    cJSON_AddItemToObject(r, "start", cJSON_CreateIntArray(g.start, 2));
}

// ---- parameters shared by the analysis endpoints ---------------------------------------
static int parse_scores_req(vc_server *s, const http_req *q, http_resp *r, scores_req *sr) {
    memset(sr, 0, sizeof *sr);
    vc_error err = {{0}};
    const char *set = req_arg(q, "set"), *t = req_arg(q, "target"), *metric = req_arg(q, "metric");
    if (!set) set = "main";
    char path[4096];
    if (strcmp(set, "main") && (strlen(set) >= sizeof sr->set || upload_path(s, set, path, sizeof path))) {
        resp_error(r, 400, "set %.64s: expected \"main\" or the id of an uploaded image (up:HEX)", set);
        return -1;
    }
    snprintf(sr->set, sizeof sr->set, "%s", set);
    if (t && strlen(t) >= sizeof sr->t.text) { resp_error(r, 400, "target: too long"); return -1; }
    if (target_parse(&sr->t, s->m, t ? t : s->o.target, &err)) return bad(r, &err);
    sr->metric = VC_M_ACTXGRAD;
    if (metric && metric_parse(&sr->metric, metric, &err)) return bad(r, &err);
    return 0;
}

static int parse_circuit_req(vc_server *s, const http_req *q, http_resp *r, circuit_req *cr) {
    memset(cr, 0, sizeof *cr);
    if (parse_scores_req(s, q, r, &cr->sr)) return -1;
    const char *sc = req_arg(q, "scores");
    if (!sc) sc = "overall";
    if (strlen(sc) > CONTRAST_MAX_LEN) { resp_error(r, 400, "scores: expression longer than %d bytes", CONTRAST_MAX_LEN); return -1; }
    snprintf(cr->scores, sizeof cr->scores, "%s", sc);
    vc_error err = {{0}};
    if (srv_mode_parse(cr, req_arg(q, "mode"), req_arg(q, "tn"), req_arg(q, "te"), &err)) return bad(r, &err);
    return 0;
}

static void resp_job(http_resp *r, vc_server *s, int id) {
    cJSON *j = id ? job_json(s, id) : NULL;
    if (!j) { resp_error(r, 503, "the job queue is full; try again when a job has finished"); return; }
    cJSON *o = cJSON_CreateObject();
    cJSON_AddItemToObject(o, "job", j);
    resp_json(r, 202, o);
}

// Cached set scores for sr, or a 202 with the job that computes them.
static set_scores_entry *need_scores(vc_server *s, const scores_req *sr, http_resp *r) {
    set_scores_entry *e = scores_get(s, sr);
    if (e) return e;
    scores_req *arg = malloc_check(sizeof *arg);
    *arg = *sr;
    char label[256];
    snprintf(label, sizeof label, "importance: %.120s, %s over %.60s", sr->t.text, vc_metric_names[sr->metric],
             strcmp(sr->set, "main") ? sr->set : "the image set");
    resp_job(r, s, job_submit(s, "importance", scores_key(s, sr), label, job_importance, arg));
    return NULL;
}

uint64_t circuit_key(vc_server *s, const circuit_req *c) {
    uint64_t h = hash_str(scores_key(s, &c->sr), c->scores);
    h = hash_str(h, c->mode);
    const vc_circuit_spec *p = &c->spec;
    int keep = p->mode == VC_C_KEEP;
    double v[4] = {keep ? 0 : p->node_threshold, keep ? 0 : p->edge_threshold, keep ? p->keep_nodes : 0, keep ? p->keep_edges : 0};
    return hash_bytes(h, v, sizeof v);
}

// ---- endpoints -------------------------------------------------------------------------
static void api_model(vc_server *s, const http_req *q, http_resp *r) {
    (void)q;
    const vc_model *m = s->m;
    cJSON *o = cJSON_CreateObject(), *mo = cJSON_AddObjectToObject(o, "model");
    cJSON_AddStringToObject(mo, "name", m->name);
    cJSON_AddStringToObject(mo, "path", m->path);
    cJSON_AddStringToObject(mo, "hash", s->model_hex);
    cJSON *in = cJSON_AddObjectToObject(mo, "input");
    cJSON_AddStringToObject(in, "name", m->nodes[0].name);
    cJSON_AddNumberToObject(in, "c", m->nodes[0].c);
    cJSON_AddNumberToObject(in, "h", m->nodes[0].h);
    cJSON_AddNumberToObject(in, "w", m->nodes[0].w);
    cJSON_AddNumberToObject(mo, "classes", (double)m->nodes[m->output].size);
    cJSON *labels = cJSON_AddArrayToObject(mo, "labels");
    for (int k = 0; k < m->n_labels; k++) cJSON_AddItemToArray(labels, cJSON_CreateString(m->labels[k]));
    size_t channels = m->nodes[0].c, identity = 0;
    for (int i = 1; i < m->n_nodes; i++) if (m->nodes[i].op == VC_OP_CONV2D) channels += m->nodes[i].c;
    cJSON *layers = cJSON_AddArrayToObject(o, "layers");
    for (int l = 0; l < s->g.n_layers; l++) {
        const vc_dlayer *D = &s->g.l[l];
        const vc_node *n = &m->nodes[D->node];
        int pre, post;
        display_maps(s, l, &pre, &post);
        cJSON *L = cJSON_CreateObject();
        cJSON_AddStringToObject(L, "name", n->name);
        cJSON_AddStringToObject(L, "kind", vc_dlayer_kind_names[D->kind]);
        cJSON_AddNumberToObject(L, "node", D->node);
        cJSON_AddNumberToObject(L, "channels", D->c);
        cJSON_AddNumberToObject(L, "h", m->nodes[pre].h);
        cJSON_AddNumberToObject(L, "w", m->nodes[pre].w);
        cJSON_AddStringToObject(L, "pre", m->nodes[pre].name);
        if (post >= 0) cJSON_AddStringToObject(L, "post", m->nodes[post].name);
        if (D->kind == VC_DL_CONV) {
            cJSON_AddNumberToObject(L, "groups", D->groups);
            cJSON_AddNumberToObject(L, "cg", D->cg);
            cJSON_AddItemToObject(L, "kernel", cJSON_CreateIntArray(n->a.kernel, 2));
            cJSON_AddItemToObject(L, "stride", cJSON_CreateIntArray(n->a.stride, 2));
            cJSON_AddItemToObject(L, "padding", cJSON_CreateIntArray(n->a.padding, 2));
            cJSON_AddItemToObject(L, "dilation", cJSON_CreateIntArray(n->a.dilation, 2));
        }
        if (D->kind == VC_DL_ADD) identity += (size_t)D->n_src;
        if (D->n_src) {   // flat [layer, ch, layer, ch, ...]
            int *flat = malloc_check(2 * D->n_src * sizeof(int));
            for (int k = 0; k < D->n_src; k++) { flat[2 * k] = D->src[k].layer; flat[2 * k + 1] = D->src[k].ch; }
            cJSON_AddItemToObject(L, "src", cJSON_CreateIntArray(flat, 2 * D->n_src));
            free(flat);
        }
        cJSON_AddItemToArray(layers, L);
    }
    cJSON *counts = cJSON_AddObjectToObject(o, "counts");
    cJSON_AddNumberToObject(counts, "nodes", (double)channels);
    cJSON_AddNumberToObject(counts, "edges", (double)m->n_edges);
    cJSON_AddNumberToObject(counts, "display_nodes", dgraph_nodes(&s->g));
    cJSON_AddNumberToObject(counts, "identity_edges", (double)identity);
    cJSON *set = cJSON_AddObjectToObject(o, "set");
    cJSON_AddStringToObject(set, "id", "main");
    cJSON_AddStringToObject(set, "source", s->main_set.source);
    cJSON_AddNumberToObject(set, "images", s->main_set.n);
    cJSON *cats = cJSON_AddArrayToObject(set, "categories");
    for (int c = 0; c < s->main_set.n_cat; c++) {
        cJSON *co = cJSON_CreateObject();
        int n = 0;
        for (int i = 0; i < s->main_set.n; i++) n += s->main_set.cat[i] == c;
        cJSON_AddStringToObject(co, "name", s->main_set.cat_names[c]);
        cJSON_AddNumberToObject(co, "images", n);
        cJSON_AddItemToArray(cats, co);
    }
    cJSON *imgs = cJSON_AddArrayToObject(set, "list");
    for (int i = 0; i < s->main_set.n && i < 20000; i++) {
        cJSON *io = cJSON_CreateObject();
        char id[32];
        snprintf(id, sizeof id, "m:%d", i);
        const char *p = s->main_set.ds.paths ? s->main_set.ds.paths[i] : "", *b = strrchr(p, '/');
        cJSON_AddStringToObject(io, "id", id);
        cJSON_AddStringToObject(io, "name", b ? b + 1 : p);
        cJSON_AddNumberToObject(io, "cat", s->main_set.cat[i]);
        cJSON_AddItemToArray(imgs, io);
    }
    cJSON *lists = cJSON_AddObjectToObject(o, "choices");
    cJSON *ms = cJSON_AddArrayToObject(lists, "metrics");
    for (int k = 0; k < VC_M_COUNT; k++) cJSON_AddItemToArray(ms, cJSON_CreateString(vc_metric_names[k]));
    cJSON *ps = cJSON_AddArrayToObject(lists, "projections");
    for (int k = 0; k < VC_PROJ_COUNT; k++) cJSON_AddItemToArray(ps, cJSON_CreateString(vc_projection_names[k]));
    cJSON *d = cJSON_AddObjectToObject(o, "defaults");
    cJSON_AddStringToObject(d, "set", "main");
    cJSON_AddStringToObject(d, "scores", "overall");
    cJSON_AddStringToObject(d, "target", s->o.target);
    cJSON_AddStringToObject(d, "metric", "actxgrad");
    cJSON_AddStringToObject(d, "projection", s->main_set.n_cat >= 2 ? "mds-smooth" : "grid");
    cJSON_AddStringToObject(d, "mode", "threshold");
    cJSON_AddNumberToObject(d, "tn", 0.2);
    cJSON_AddNumberToObject(d, "te", 0.2);
    cJSON_AddStringToObject(d, "image", "m:0");
    cJSON *f = cJSON_AddObjectToObject(o, "features");
    cJSON_AddBoolToObject(f, "featvis", s->featvis_missing == NULL);
    if (s->featvis_missing) cJSON_AddStringToObject(f, "featvis_missing", s->featvis_missing);
    cJSON_AddNumberToObject(f, "upload_bytes", SERVER_UPLOAD_MAX);
    cJSON_AddNumberToObject(f, "curve_points", VC_CURVE_N);
    resp_json(r, 200, o);
}

static void api_layout(vc_server *s, const http_req *q, http_resp *r) {
    const char *p = req_arg(q, "projection");
    layout_req lq = {0};
    vc_error err = {{0}};
    if (!p) { resp_error(r, 400, "missing parameter projection (mds, mds-smooth, grid, weights)"); return; }
    if (projection_parse(&lq.p, p, &err)) { bad(r, &err); return; }
    uint64_t key = hash_str(hash_str(s->model_hash, "layout"), vc_projection_names[lq.p]);
    if (projection_needs_images(lq.p)) {
        // class MDS uses the loss's per-category scores (the paper's)
        if (parse_scores_req(s, q, r, &lq.sr)) return;
        vc_target loss;
        target_parse(&loss, s->m, "loss", &err);
        lq.sr.t = loss;
        key = hash_bytes(key, &(uint64_t){scores_key(s, &lq.sr)}, 8);
    }
    size_t len;
    char *buf = cache_read(s, "layout", key, "json", &len);
    if (buf) { resp_text(r, 200, "application/json", buf, len); return; }
    if (lq.p == VC_PROJ_GRID) {   // instant: no job
        vc_layout lay;
        if (projection_run(&lay, s->m, &s->g, lq.p, NULL, &err)) { resp_error(r, 500, "%s", err.msg); return; }
        char *out = NULL;
        size_t n = 0;
        FILE *f = open_memstream(&out, &n);
        fputs("{\"projection\": \"grid\", ", f);
        projection_export_json(f, s->m, &s->g, &lay);
        fputs("}\n", f);
        fclose(f);
        layout_free(&lay);
        cache_write(s, "layout", key, "json", out, n, &err);
        resp_text(r, 200, "application/json", out, n);
        return;
    }
    layout_req *arg = malloc_check(sizeof *arg);
    *arg = lq;
    char label[128];
    snprintf(label, sizeof label, "layout: %s", vc_projection_names[lq.p]);
    resp_job(r, s, job_submit(s, "layout", key, label, job_layout, arg));
}

static void api_scores(vc_server *s, const http_req *q, http_resp *r) {
    circuit_req cr;
    if (parse_circuit_req(s, q, r, &cr)) return;
    set_scores_entry *e = need_scores(s, &cr.sr, r);
    if (!e) return;
    vc_scores con = {0}, norm = {0};
    const vc_scores *raw;
    vc_error err = {{0}};
    if (select_scores(e, cr.scores, &con, &raw, &err)) { bad(r, &err); scores_release(s, e); return; }
    scores_copy(&norm, raw);
    scores_normalize(&norm);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "target", cr.sr.t.text);
    cJSON_AddStringToObject(o, "metric", vc_metric_names[cr.sr.metric]);
    cJSON_AddStringToObject(o, "scores", cr.scores);
    cJSON_AddNumberToObject(o, "images", e->ss.images);
    cJSON *cats = cJSON_AddArrayToObject(o, "categories");
    for (int c = 0; c < e->ss.n_cat; c++) cJSON_AddItemToArray(cats, cJSON_CreateString(e->ss.cat_names[c]));
    cJSON *layers = cJSON_AddArrayToObject(o, "layers");
    for (int l = 0; l < norm.n_layers; l++) {
        const vc_layer_scores *L = &norm.l[l], *R = &raw->l[l];
        cJSON *lo = cJSON_CreateObject();
        cJSON_AddStringToObject(lo, "name", s->m->nodes[L->node].name);
        cJSON_AddNumberToObject(lo, "dlayer", s->g.layer_of[L->node]);
        add_b64(lo, "nodes", L->nodes, L->cout * sizeof(float));
        add_b64(lo, "edges", L->edges, (size_t)L->cout * L->cg * sizeof(float));
        add_b64(lo, "raw_nodes", R->nodes, R->cout * sizeof(float));
        float emin = INFINITY, emax = -INFINITY;
        for (size_t k = 0; k < (size_t)R->cout * R->cg; k++) {
            if (R->edges[k] < emin) emin = R->edges[k];
            if (R->edges[k] > emax) emax = R->edges[k];
        }
        cJSON_AddNumberToObject(lo, "edge_min", isfinite(emin) ? emin : 0);
        cJSON_AddNumberToObject(lo, "edge_max", isfinite(emax) ? emax : 0);
        cJSON_AddItemToArray(layers, lo);
    }
    if (con.l) scores_free(&con);
    scores_free(&norm);
    scores_release(s, e);
    resp_json(r, 200, o);
}

static void add_bits(cJSON *o, const char *key, const unsigned char *v, size_t n) {
    unsigned char *b = calloc_check(n / 8 + 1, 1);
    for (size_t k = 0; k < n; k++) if (v[k]) b[k >> 3] |= (unsigned char)(1u << (k & 7));
    add_b64(o, key, b, (n + 7) / 8);
    free(b);
}

// Scores and circuit of a request (200 path); NULL with r filled otherwise.
typedef struct { set_scores_entry *e; vc_scores con; const vc_scores *raw; vc_circuit c; } circuit_ctx;

static int circuit_begin(vc_server *s, const circuit_req *cr, http_resp *r, circuit_ctx *x) {
    memset(x, 0, sizeof *x);
    x->e = need_scores(s, &cr->sr, r);
    if (!x->e) return -1;
    vc_error err = {{0}};
    if (select_scores(x->e, cr->scores, &x->con, &x->raw, &err) || srv_circuit_extract(&x->c, s->m, x->raw, cr, &err)) {
        bad(r, &err);
        if (x->con.l) scores_free(&x->con);
        scores_release(s, x->e);
        return -1;
    }
    return 0;
}

static void circuit_end(vc_server *s, circuit_ctx *x) {
    circuit_free(&x->c);
    if (x->con.l) scores_free(&x->con);
    scores_release(s, x->e);
}

static void api_circuit(vc_server *s, const http_req *q, http_resp *r) {
    double t0 = now_s();
    circuit_req cr;
    circuit_ctx x;
    if (parse_circuit_req(s, q, r, &cr) || circuit_begin(s, &cr, r, &x)) return;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "target", cr.sr.t.text);
    cJSON_AddStringToObject(o, "mode", cr.mode);
    cJSON *kept = cJSON_AddObjectToObject(o, "kept");
    cJSON_AddNumberToObject(kept, "nodes", (double)x.c.n_nodes);
    cJSON_AddNumberToObject(kept, "edges", (double)x.c.n_edges);
    cJSON_AddNumberToObject(kept, "cone_nodes", (double)x.c.total_nodes);
    cJSON_AddNumberToObject(kept, "cone_edges", (double)x.c.total_edges);
    cJSON *layers = cJSON_AddArrayToObject(o, "layers");
    for (int l = 0; l < x.c.n_layers; l++) {
        const vc_layer_scores *L = &x.raw->l[l];
        cJSON *lo = cJSON_CreateObject();
        cJSON_AddStringToObject(lo, "name", s->m->nodes[L->node].name);
        cJSON_AddNumberToObject(lo, "dlayer", s->g.layer_of[L->node]);
        add_bits(lo, "nodes", x.c.node[l], L->cout);
        add_bits(lo, "edges", x.c.edge[l], (size_t)L->cout * L->cg);
        cJSON_AddItemToArray(layers, lo);
    }
    size_t len;
    char *faith = cache_read(s, "faith", circuit_key(s, &cr), "json", &len);
    if (faith) cJSON_AddItemToObject(o, "faithfulness", cJSON_Parse(faith));
    free(faith);
    circuit_end(s, &x);
    cJSON_AddNumberToObject(o, "server_ms", (now_s() - t0) * 1e3);
    resp_json(r, 200, o);
}

static void api_faithfulness(vc_server *s, const http_req *q, http_resp *r) {
    circuit_req cr;
    if (parse_circuit_req(s, q, r, &cr)) return;
    uint64_t key = circuit_key(s, &cr);
    size_t len;
    char *buf = cache_read(s, "faith", key, "json", &len);
    if (buf) { resp_text(r, 200, "application/json", buf, len); return; }
    // validate the scores selection now (a contrast with an unknown name is a 400, not a failed job)
    set_scores_entry *e = scores_get(s, &cr.sr);
    if (e) {
        vc_scores con = {0};
        const vc_scores *raw;
        vc_error err = {{0}};
        int rc = select_scores(e, cr.scores, &con, &raw, &err);
        if (con.l) scores_free(&con);
        scores_release(s, e);
        if (rc) { bad(r, &err); return; }
    }
    circuit_req *arg = malloc_check(sizeof *arg);
    *arg = cr;
    char label[256];
    snprintf(label, sizeof label, "faithfulness: %.120s, %.40s, %.40s", cr.sr.t.text, cr.scores, cr.mode);
    resp_job(r, s, job_submit(s, "faithfulness", key, label, job_faithfulness, arg));
}

static void api_export(vc_server *s, const http_req *q, http_resp *r) {
    circuit_req cr;
    circuit_ctx x;
    const char *format = req_arg(q, "format");
    if (!format) format = "json";
    if (strcmp(format, "json") && strcmp(format, "pruned")) {
        resp_error(r, 400, "format %.32s: expected json or pruned", format);
        return;
    }
    if (parse_circuit_req(s, q, r, &cr) || circuit_begin(s, &cr, r, &x)) return;
    char base[160];
    snprintf(base, sizeof base, "circuit-%s-%016llx", s->m->name, (unsigned long long)circuit_key(s, &cr));
    for (char *p = base; *p; p++) if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '-')) *p = '_';
    if (!strcmp(format, "json")) {
        size_t len;
        char *faith = cache_read(s, "faith", circuit_key(s, &cr), "json", &len);
        char src[4200];
        if (strcmp(cr.sr.set, "main")) snprintf(src, sizeof src, "%s", cr.sr.set);
        else snprintf(src, sizeof src, "%s", s->main_set.source);
        char *out = srv_circuit_json(s, &cr, x.raw, &x.c, faith, x.e->ss.images, src, &len);
        free(faith);
        resp_text(r, 200, "application/json", out, len);
        snprintf(r->disposition, sizeof r->disposition, "attachment; filename=\"%s.json\"", base);
    } else {
        char path[4096];
        vc_error err = {{0}};
        cache_path(s, path, sizeof path, "pruned", circuit_key(s, &cr), "safetensors");
        if (access(path, R_OK) && srv_write_pruned(path, s->m, x.raw, &x.c, &err)) {
            resp_error(r, 500, "pruned model: %s", err.msg);
        } else {
            r->status = 200;
            r->ctype = "application/octet-stream";
            r->file = strdup_check(path);
            snprintf(r->disposition, sizeof r->disposition, "attachment; filename=\"%s.safetensors\"", base);
        }
    }
    circuit_end(s, &x);
}

// ---- maps of one image (compute thread) ---------------------------------------------
typedef struct {
    char image[96];
    int dl, ch, pre, post;
    float *a, *b;             // pre, post maps (h, w)
    int h, w;
    // edge
    int out, in, ci, Cog, src_node;
    float *e, *x, *k;         // edge map (Ho, Wo), input map (H, W), kernel (kh, kw)
    int xh, xw;
    float bias;
    // predict
    float *logits;
    int label;
} map_task;

static int act_fn(vc_server *s, void *ctx, vc_error *err) {
    map_task *t = ctx;
    image_run *ir;
    int rc = image_run_get(s, t->image, &ir, err);
    if (rc) return rc;
    const vc_node *n = &s->m->nodes[t->pre];
    size_t P = (size_t)n->h * n->w;
    t->h = n->h;
    t->w = n->w;
    const float *a = vc_run_act(ir->r, t->pre), *b = t->post >= 0 ? vc_run_act(ir->r, t->post) : NULL;
    if (!a) return vc_fail(err, VC_EINTERNAL, "activation of %s was not kept", vc_str(n->name));
    t->a = malloc_check(P * sizeof(float));
    memcpy(t->a, a + t->ch * P, P * sizeof(float));
    if (b) {
        t->b = malloc_check(P * sizeof(float));
        memcpy(t->b, b + t->ch * P, P * sizeof(float));
    }
    return VC_OK;
}

static void api_act(vc_server *s, const http_req *q, http_resp *r) {
    map_task t = {0};
    long ch;
    const char *img = arg_req(q, r, "image");
    if (!img || parse_image_id(s, img, r) || arg_dlayer(s, q, r, "layer", &t.dl)) return;
    if (arg_int(q, r, "ch", 0, s->g.l[t.dl].c - 1, 0, 1, &ch)) return;
    snprintf(t.image, sizeof t.image, "%s", img);
    t.ch = (int)ch;
    display_maps(s, t.dl, &t.pre, &t.post);
    vc_error err = {{0}};
    int rc = interactive(s, act_fn, &t, &err);
    if (rc) { resp_error(r, rc == VC_EINPUT ? 400 : 503, "%s", err.msg); free(t.a); free(t.b); return; }
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "image", t.image);
    cJSON_AddStringToObject(o, "layer", s->m->nodes[s->g.l[t.dl].node].name);
    cJSON_AddNumberToObject(o, "ch", t.ch);
    cJSON *pre = map_json(t.a, t.h, t.w);
    cJSON_AddStringToObject(pre, "node", s->m->nodes[t.pre].name);
    cJSON_AddItemToObject(o, "pre", pre);
    if (t.b) {
        cJSON *post = map_json(t.b, t.h, t.w);
        cJSON_AddStringToObject(post, "node", s->m->nodes[t.post].name);
        cJSON_AddItemToObject(o, "post", post);
    }
    add_rf_geom(s, o, t.pre);
    free(t.a); free(t.b);
    resp_json(r, 200, o);
}

// Many nodes' maps at once (the circuit diagram): after the ReLU where there is one.
enum { MAPS_MAX = 256 };
typedef struct {
    char image[96];
    int n, node[MAPS_MAX], ch[MAPS_MAX];
    float *v[MAPS_MAX];
} maps_task;

static int maps_fn(vc_server *s, void *ctx, vc_error *err) {
    maps_task *t = ctx;
    image_run *ir;
    int rc = image_run_get(s, t->image, &ir, err);
    if (rc) return rc;
    for (int k = 0; k < t->n; k++) {
        const vc_node *n = &s->m->nodes[t->node[k]];
        size_t P = (size_t)n->h * n->w;
        const float *a = vc_run_act(ir->r, t->node[k]);
        if (!a) return vc_fail(err, VC_EINTERNAL, "activation of %s was not kept", vc_str(n->name));
        t->v[k] = malloc_check(P * sizeof(float));
        memcpy(t->v[k], a + t->ch[k] * P, P * sizeof(float));
    }
    return VC_OK;
}

static void api_maps(vc_server *s, const http_req *q, http_resp *r) {
    maps_task *t = calloc_check(1, sizeof *t);
    const char *img = arg_req(q, r, "image"), *nodes = img ? arg_req(q, r, "nodes") : NULL;
    if (!img || !nodes || parse_image_id(s, img, r)) { free(t); return; }
    snprintf(t->image, sizeof t->image, "%s", img);
    char *list = strdup_check(nodes), *save = NULL;
    for (char *tok = strtok_r(list, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        char *colon = strrchr(tok, ':'), *end;
        long ch = colon ? strtol(colon + 1, &end, 10) : -1;
        int dl = -1;
        if (colon) { *colon = 0; dl = dlayer_find(s, tok); }
        if (t->n >= MAPS_MAX || dl < 0 || end == colon + 1 || *end || ch < 0 || ch >= s->g.l[dl].c) {
            resp_error(r, 400, t->n >= MAPS_MAX ? "nodes: at most %d at once" : "nodes: expected LAYER:CH,LAYER:CH,... (display layers)", MAPS_MAX);
            free(list); free(t);
            return;
        }
        int pre, post;
        display_maps(s, dl, &pre, &post);
        t->node[t->n] = post >= 0 ? post : pre;
        t->ch[t->n++] = (int)ch;
    }
    free(list);
    vc_error err = {{0}};
    int rc = interactive(s, maps_fn, t, &err);
    cJSON *o = rc ? NULL : cJSON_CreateObject(), *a = rc ? NULL : cJSON_AddArrayToObject(o, "maps");
    for (int k = 0; k < t->n; k++) {
        if (!rc && t->v[k]) {
            const vc_node *n = &s->m->nodes[t->node[k]];
            cJSON *m = map_json(t->v[k], n->h, n->w);
            cJSON_AddStringToObject(m, "node", n->name);
            cJSON_AddNumberToObject(m, "ch", t->ch[k]);
            cJSON_AddItemToArray(a, m);
        }
        free(t->v[k]);
    }
    free(t);
    if (rc) resp_error(r, rc == VC_EINPUT ? 400 : 503, "%s", err.msg);
    else resp_json(r, 200, o);
}

// The conv's dims for one image.
static conv2d_dims conv_dims(const vc_model *m, const vc_node *c) {
    const vc_node *xin = &m->nodes[c->in[0]];
    conv2d_dims d = {.N = 1, .C = xin->c, .H = xin->h, .W = xin->w, .Co = c->c, .kh = c->a.kernel[0], .kw = c->a.kernel[1],
                     .sh = c->a.stride[0], .sw = c->a.stride[1], .ph = c->a.padding[0], .pw = c->a.padding[1],
                     .dh = c->a.dilation[0], .dw = c->a.dilation[1], .groups = c->a.groups};
    conv2d_dims_finish(&d);
    return d;
}

static int edge_fn(vc_server *s, void *ctx, vc_error *err) {
    map_task *t = ctx;
    image_run *ir;
    int rc = image_run_get(s, t->image, &ir, err);
    if (rc) return rc;
    const vc_model *m = s->m;
    const vc_node *c = &m->nodes[s->g.l[t->dl].node], *xin = &m->nodes[c->in[0]];
    conv2d_dims d = conv_dims(m, c);
    size_t P = (size_t)d.Ho * d.Wo, X = (size_t)xin->h * xin->w;
    const float *xa = vc_run_act(ir->r, c->in[0]), *w = m->params[c->param[VC_P_WEIGHT]].data;
    if (!xa) return vc_fail(err, VC_EINTERNAL, "activation of %s was not kept", vc_str(xin->name));
    float *all = malloc_check((size_t)t->Cog * P * sizeof(float));
    conv2d_edge_maps(all, xa, w, &d, 0, t->ci);
    t->e = malloc_check(P * sizeof(float));
    memcpy(t->e, all + (size_t)(t->out % t->Cog) * P, P * sizeof(float));
    free(all);
    t->x = malloc_check(X * sizeof(float));
    memcpy(t->x, xa + (size_t)t->ci * X, X * sizeof(float));
    t->h = d.Ho; t->w = d.Wo; t->xh = xin->h; t->xw = xin->w;
    return VC_OK;
}

static int arg_kernel(vc_server *s, const http_req *q, http_resp *r, map_task *t) {
    long out, in;
    if (arg_dlayer(s, q, r, "layer", &t->dl)) return -1;
    const vc_dlayer *D = &s->g.l[t->dl];
    if (D->kind != VC_DL_CONV) {
        resp_error(r, 400, "layer %s is a %s layer; edges with kernels belong to conv layers",
                   s->m->nodes[D->node].name, vc_dlayer_kind_names[D->kind]);
        return -1;
    }
    if (arg_int(q, r, "out", 0, D->c - 1, 0, 1, &out) || arg_int(q, r, "in", 0, D->cg - 1, 0, 1, &in)) return -1;
    t->out = (int)out;
    t->in = (int)in;
    t->Cog = D->c / D->groups;
    t->ci = (t->out / t->Cog) * D->cg + t->in;
    return 0;
}

static cJSON *kernel_json(vc_server *s, const map_task *t) {
    const vc_node *c = &s->m->nodes[s->g.l[t->dl].node];
    int kh = c->a.kernel[0], kw = c->a.kernel[1];
    const float *w = s->m->params[c->param[VC_P_WEIGHT]].data + ((size_t)t->out * s->g.l[t->dl].cg + t->in) * kh * kw;
    cJSON *k = map_json(w, kh, kw);
    if (c->param[VC_P_BIAS] >= 0) cJSON_AddNumberToObject(k, "bias", s->m->params[c->param[VC_P_BIAS]].data[t->out]);
    return k;
}

static void add_edge_ids(vc_server *s, cJSON *o, const map_task *t) {
    cJSON_AddStringToObject(o, "layer", s->m->nodes[s->g.l[t->dl].node].name);
    cJSON_AddNumberToObject(o, "out", t->out);
    cJSON_AddNumberToObject(o, "in", t->in);
    cJSON_AddNumberToObject(o, "in_channel", t->ci);
    vc_dsrc src = dgraph_kernel_source(&s->g, t->dl, t->out, t->in);
    cJSON *so = cJSON_AddObjectToObject(o, "source");
    cJSON_AddNumberToObject(so, "dlayer", src.layer);
    cJSON_AddNumberToObject(so, "ch", src.ch);
    if (src.layer >= 0) cJSON_AddStringToObject(so, "layer", s->m->nodes[s->g.l[src.layer].node].name);
}

static void api_kernel(vc_server *s, const http_req *q, http_resp *r) {
    map_task t = {0};
    if (arg_kernel(s, q, r, &t)) return;
    cJSON *o = cJSON_CreateObject();
    add_edge_ids(s, o, &t);
    cJSON_AddItemToObject(o, "kernel", kernel_json(s, &t));
    resp_json(r, 200, o);
}

static void api_edge(vc_server *s, const http_req *q, http_resp *r) {
    map_task t = {0};
    const char *img = arg_req(q, r, "image");
    if (!img || parse_image_id(s, img, r) || arg_kernel(s, q, r, &t)) return;
    snprintf(t.image, sizeof t.image, "%s", img);
    vc_error err = {{0}};
    int rc = interactive(s, edge_fn, &t, &err);
    if (rc) { resp_error(r, rc == VC_EINPUT ? 400 : 503, "%s", err.msg); free(t.e); free(t.x); return; }
    const vc_node *c = &s->m->nodes[s->g.l[t.dl].node];
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "image", t.image);
    add_edge_ids(s, o, &t);
    cJSON_AddItemToObject(o, "kernel", kernel_json(s, &t));
    cJSON *in = map_json(t.x, t.xh, t.xw);
    cJSON_AddStringToObject(in, "node", s->m->nodes[c->in[0]].name);
    add_rf_geom(s, in, c->in[0]);
    cJSON_AddItemToObject(o, "input", in);
    cJSON *e = map_json(t.e, t.h, t.w);
    add_rf_geom(s, e, s->g.l[t.dl].node);
    cJSON_AddItemToObject(o, "edge", e);
    free(t.e); free(t.x);
    resp_json(r, 200, o);
}

static void api_rf(vc_server *s, const http_req *q, http_resp *r) {
    int dl;
    long y, x;
    const char *name = arg_req(q, r, "layer");
    if (!name) return;
    int node = vc_model_find(s->m, name);
    if (node < 0 && (dl = dlayer_find(s, name)) >= 0) node = s->g.l[dl].node;
    if (node < 0) { resp_error(r, 400, "layer %.200s: no such layer in %s", name, s->m->name); return; }
    const vc_node *n = &s->m->nodes[node];
    if (arg_int(q, r, "y", 0, n->h - 1, 0, 1, &y) || arg_int(q, r, "x", 0, n->w - 1, 0, 1, &x)) return;
    vc_box box, clip;
    vc_error err = {{0}};
    if (rf_unit(s->m, node, (int)y, (int)x, &box, &clip, &err)) { bad(r, &err); return; }
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "layer", n->name);
    cJSON_AddItemToObject(o, "box", cJSON_CreateIntArray((int[]){box.y0, box.x0, box.y1, box.x1}, 4));
    cJSON_AddItemToObject(o, "clipped", cJSON_CreateIntArray((int[]){clip.y0, clip.x0, clip.y1, clip.x1}, 4));
    resp_json(r, 200, o);
}

static void api_featvis(vc_server *s, const http_req *q, http_resp *r) {
    const char *node = req_arg(q, "node"), *edge = req_arg(q, "edge");
    if (!!node == !!edge) { resp_error(r, 400, "give node=LAYER:CH or edge=LAYER:OUT:IN (one of them)"); return; }
    const char *spec = node ? node : edge;
    featvis_req fr = {0};
    fr.in = -1;
    // LAYER may contain ':'? Node names are module paths (dots); split from the right.
    char buf[512];
    if (strlen(spec) >= sizeof buf) { resp_error(r, 400, "%s: too long", node ? "node" : "edge"); return; }
    snprintf(buf, sizeof buf, "%s", spec);
    long v[2] = {-1, -1};
    int want = node ? 1 : 2;
    for (int k = want - 1; k >= 0; k--) {
        char *colon = strrchr(buf, ':'), *end;
        if (!colon) goto malformed;
        v[k] = strtol(colon + 1, &end, 10);
        if (end == colon + 1 || *end || v[k] < 0) goto malformed;
        *colon = 0;
    }
    int dl = dlayer_find(s, buf);
    if (dl < 0) { resp_error(r, 400, "%s %.200s: no layer %.200s in the display graph", node ? "node" : "edge", spec, buf); return; }
    const vc_dlayer *D = &s->g.l[dl];
    if (v[0] >= D->c || (edge && (D->kind != VC_DL_CONV || v[1] >= D->cg))) {
        resp_error(r, 400, "%s %.200s: out of range (layer %s has %d channels%s)", node ? "node" : "edge", spec, buf, D->c,
                   D->kind == VC_DL_CONV ? " and kernels in [0, C_in/groups)" : "");
        return;
    }
    snprintf(fr.layer, sizeof fr.layer, "%.*s", (int)sizeof fr.layer - 1, buf);
    fr.node = D->node;
    fr.out = (int)v[0];
    fr.in = edge ? (int)v[1] : -1;
    if (s->featvis_missing) { resp_error(r, 501, "%s", s->featvis_missing); return; }
    uint64_t key = hash_str(hash_str(s->model_hash, "featvis"), spec);
    char path[4096];
    cache_path(s, path, sizeof path, "featvis", key, "png");
    if (!access(path, R_OK)) {
        r->status = 200;
        r->ctype = "image/png";
        r->file = strdup_check(path);
        return;
    }
    featvis_req *arg = malloc_check(sizeof *arg);
    *arg = fr;
    char label[300];
    snprintf(label, sizeof label, "feature visualisation %.200s", spec);
    resp_job(r, s, job_submit(s, "featvis", key, label, job_featvis, arg));
    return;
malformed:
    resp_error(r, 400, "%s %.200s: expected %s", node ? "node" : "edge", spec, node ? "LAYER:CH" : "LAYER:OUT:IN");
}

static void api_input(vc_server *s, const http_req *q, http_resp *r) {
    const char *img = arg_req(q, r, "image");
    if (!img || parse_image_id(s, img, r)) return;
    const vc_node *in = &s->m->nodes[0];
    float *x = malloc_check(in->size * sizeof(float));
    int label;
    vc_error err = {{0}};
    if (image_input(s, img, x, &label, &err)) { bad(r, &err); free(x); return; }
    // what the model sees, back in [0, 1]: x * std + mean
    for (int c = 0; c < in->c; c++)
        for (size_t p = 0; p < (size_t)in->h * in->w; p++) {
            float *v = &x[c * (size_t)in->h * in->w + p];
            *v = *v * s->m->pre.std[c < 3 ? c : 0] + s->m->pre.mean[c < 3 ? c : 0];
        }
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "image", img);
    cJSON_AddNumberToObject(o, "c", in->c);
    cJSON_AddNumberToObject(o, "h", in->h);
    cJSON_AddNumberToObject(o, "w", in->w);
    cJSON_AddNumberToObject(o, "label", label);
    add_b64(o, "data", x, in->size * sizeof(float));
    free(x);
    resp_json(r, 200, o);
}

static int predict_fn(vc_server *s, void *ctx, vc_error *err) {
    map_task *t = ctx;
    image_run *ir;
    int rc = image_run_get(s, t->image, &ir, err);
    if (rc) return rc;
    size_t K = s->m->nodes[s->m->output].size;
    t->logits = malloc_check(K * sizeof(float));
    memcpy(t->logits, vc_run_act(ir->r, s->m->output), K * sizeof(float));
    t->label = ir->label;
    return VC_OK;
}

static void api_predict(vc_server *s, const http_req *q, http_resp *r) {
    map_task t = {0};
    const char *img = arg_req(q, r, "image");
    if (!img || parse_image_id(s, img, r)) return;
    snprintf(t.image, sizeof t.image, "%s", img);
    vc_error err = {{0}};
    if (interactive(s, predict_fn, &t, &err)) { resp_error(r, 503, "%s", err.msg); return; }
    int K = (int)s->m->nodes[s->m->output].size;
    int logsm = s->m->nodes[s->m->output].op == VC_OP_LOG_SOFTMAX;
    double mx = -INFINITY, z = 0;
    for (int k = 0; k < K; k++) if (t.logits[k] > mx) mx = t.logits[k];
    for (int k = 0; k < K; k++) z += exp(t.logits[k] - mx);
    cJSON *o = cJSON_CreateObject(), *top = cJSON_AddArrayToObject(o, "top");
    cJSON_AddNumberToObject(o, "label", t.label);
    unsigned char *used = calloc_check(K, 1);
    for (int n = 0; n < 5 && n < K; n++) {
        int b = -1;
        for (int k = 0; k < K; k++) if (!used[k] && (b < 0 || t.logits[k] > t.logits[b])) b = k;
        used[b] = 1;
        cJSON *e = cJSON_CreateObject();
        cJSON_AddNumberToObject(e, "class", b);
        if (b < s->m->n_labels) cJSON_AddStringToObject(e, "label", s->m->labels[b]);
        cJSON_AddNumberToObject(e, "value", t.logits[b]);
        cJSON_AddNumberToObject(e, "p", logsm ? exp(t.logits[b]) : exp(t.logits[b] - mx) / z);
        cJSON_AddItemToArray(top, e);
    }
    free(used);
    free(t.logits);
    resp_json(r, 200, o);
}

// ---- uploads -----------------------------------------------------------------------------
// Width and height from a PNG or JPEG header; 0 when not one.
static int image_dims(const unsigned char *b, size_t n, int *w, int *h, const char **ext) {
    if (n >= 24 && !memcmp(b, "\x89PNG\r\n\x1a\n", 8) && !memcmp(b + 12, "IHDR", 4)) {
        *w = (int)((uint32_t)b[16] << 24 | b[17] << 16 | b[18] << 8 | b[19]);
        *h = (int)((uint32_t)b[20] << 24 | b[21] << 16 | b[22] << 8 | b[23]);
        *ext = "png";
        return 1;
    }
    if (n >= 4 && b[0] == 0xFF && b[1] == 0xD8 && b[2] == 0xFF) {
        size_t i = 2;
        while (i + 9 < n) {
            if (b[i] != 0xFF) return 0;
            int mk = b[i + 1];
            if (mk == 0xFF) { i++; continue; }
            size_t len = (size_t)b[i + 2] << 8 | b[i + 3];
            if (mk >= 0xC0 && mk <= 0xCF && mk != 0xC4 && mk != 0xC8 && mk != 0xCC) {
                *h = b[i + 5] << 8 | b[i + 6];
                *w = b[i + 7] << 8 | b[i + 8];
                *ext = "jpg";
                return 1;
            }
            if (len < 2) return 0;
            i += 2 + len;
        }
    }
    return 0;
}

static void api_upload(vc_server *s, const http_req *q, http_resp *r) {
    const unsigned char *b = (const unsigned char *)q->body;
    int w = 0, h = 0;
    const char *ext = NULL;
    if (!q->body_len) { resp_error(r, 400, "upload: empty body (send the PNG or JPEG file as the request body)"); return; }
    if (!image_dims(b, q->body_len, &w, &h, &ext)) { resp_error(r, 415, "upload: not a PNG or JPEG image"); return; }
    if (w < 1 || h < 1 || w > UPLOAD_MAX_SIDE || h > UPLOAD_MAX_SIDE || (long)w * h > UPLOAD_MAX_PIXELS) {
        resp_error(r, 413, "upload: image is %dx%d; at most %dx%d pixels are accepted", w, h, UPLOAD_MAX_SIDE, UPLOAD_MAX_SIDE);
        return;
    }
    uint64_t key = hash_bytes(HASH_SEED, b, q->body_len);
    char hex[17], path[4200];
    snprintf(hex, sizeof hex, "%016llx", (unsigned long long)key);
    snprintf(path, sizeof path, "%s/%s.%s", s->upload_dir, hex, ext);
    vc_wfile wf;   // loaders/atomic_write.c: renamed to path once it decodes
    vc_error werr;
    if (vc_wopen(&wf, path, &werr)) { resp_error(r, 500, "upload: cannot write to the cache folder"); return; }
    if (fwrite(b, 1, q->body_len, wf.fp) != q->body_len || fflush(wf.fp) != 0) {
        vc_wabort(&wf);
        resp_error(r, 500, "upload: cannot write to the cache folder");
        return;
    }
    const char *tmp = wf.tmp;
    // it must decode and preprocess as the model needs; one at a time (a
    // 4096x4096 RGB image is 200 MB as floats)
    static pthread_mutex_t decode_mu = PTHREAD_MUTEX_INITIALIZER;
    const vc_node *in = &s->m->nodes[0];
    float *x = malloc_check(in->size * sizeof(float));
    vc_error err = {{0}};
    pthread_mutex_lock(&decode_mu);
    int rc = image_preprocess(x, tmp, &s->m->pre, in->h, in->w, &err);
    pthread_mutex_unlock(&decode_mu);
    free(x);
    if (rc) {
        vc_wabort(&wf);
        const char *colon = strstr(err.msg, ": ");
        resp_error(r, 400, "upload: the image does not decode: %s", colon ? colon + 2 : err.msg);
        return;
    }
    if (vc_wcommit(&wf, 1, &werr)) { resp_error(r, 500, "upload: cannot store the image"); return; }
    // its display name, sanitised
    const char *name = req_arg(q, "name");
    char clean[128] = "upload";
    if (name && *name) {
        size_t k = 0;
        for (const char *p = name; *p && k < sizeof clean - 1; p++)
            clean[k++] = (isalnum((unsigned char)*p) || strchr("._- ", *p)) ? *p : '_';
        clean[k] = 0;
    }
    char np[4200];
    snprintf(np, sizeof np, "%s/%s.name", s->upload_dir, hex);
    vc_wfile nf;
    if (!vc_wopen(&nf, np, &werr)) vc_wcommit(&nf, fputs(clean, nf.fp) >= 0, &werr);
    cJSON *o = cJSON_CreateObject();
    char id[32];
    snprintf(id, sizeof id, "up:%s", hex);
    cJSON_AddStringToObject(o, "id", id);
    cJSON_AddStringToObject(o, "name", clean);
    cJSON_AddNumberToObject(o, "w", w);
    cJSON_AddNumberToObject(o, "h", h);
    resp_json(r, 200, o);
}

static void api_uploads(vc_server *s, const http_req *q, http_resp *r) {
    (void)q;
    cJSON *a = cJSON_CreateArray();
    DIR *d = opendir(s->upload_dir);
    struct dirent *de;
    while (d && (de = readdir(d))) {
        size_t n = strlen(de->d_name);
        if (n != 20 || de->d_name[0] == '.' || (strcmp(de->d_name + 16, ".png") && strcmp(de->d_name + 16, ".jpg"))) continue;
        char id[32], np[4200], name[128] = "upload";
        snprintf(id, sizeof id, "up:%.16s", de->d_name);
        snprintf(np, sizeof np, "%s/%.16s.name", s->upload_dir, de->d_name);
        FILE *f = fopen(np, "r");
        if (f) { if (!fgets(name, sizeof name, f)) snprintf(name, sizeof name, "upload"); fclose(f); }
        struct stat st;
        snprintf(np, sizeof np, "%s/%s", s->upload_dir, de->d_name);
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "id", id);
        cJSON_AddStringToObject(o, "name", name);
        cJSON_AddNumberToObject(o, "time", stat(np, &st) ? 0 : (double)st.st_mtime);
        cJSON_AddItemToArray(a, o);
    }
    if (d) closedir(d);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddItemToObject(o, "uploads", a);
    resp_json(r, 200, o);
}

// ---- jobs ------------------------------------------------------------------------------
static void api_jobs(vc_server *s, const http_req *q, http_resp *r) {
    (void)q;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddItemToObject(o, "jobs", jobs_json(s));
    resp_json(r, 200, o);
}

static void api_job(vc_server *s, const http_req *q, http_resp *r) {
    long id;
    if (arg_int(q, r, "id", 1, 1L << 30, 0, 1, &id)) return;
    cJSON *j = job_json(s, (int)id);
    if (!j) { resp_error(r, 404, "job %ld: no such job", id); return; }
    resp_json(r, 200, j);
}

static void api_cancel(vc_server *s, const http_req *q, http_resp *r) {
    long id;
    if (arg_int(q, r, "id", 1, 1L << 30, 0, 1, &id)) return;
    int rc = job_cancel(s, (int)id);
    if (rc < 0) { resp_error(r, 404, "job %ld: no such job", id); return; }
    cJSON *j = job_json(s, (int)id);
    resp_json(r, 200, j ? j : cJSON_CreateObject());
}

static void api_health(vc_server *s, const http_req *q, http_resp *r) {
    (void)q;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "status", "ok");
    cJSON_AddNumberToObject(o, "uptime", now_s() - s->started);
    resp_json(r, 200, o);
}

static const struct {
    const char *path, *method;
    void (*fn)(vc_server *, const http_req *, http_resp *);
} routes[] = {
    {"/api/model", "GET", api_model},
    {"/api/layout", "GET", api_layout},
    {"/api/scores", "GET", api_scores},
    {"/api/circuit", "GET", api_circuit},
    {"/api/faithfulness", "GET", api_faithfulness},
    {"/api/export", "GET", api_export},
    {"/api/act", "GET", api_act},
    {"/api/edge", "GET", api_edge},
    {"/api/maps", "GET", api_maps},
    {"/api/kernel", "GET", api_kernel},
    {"/api/rf", "GET", api_rf},
    {"/api/featvis", "GET", api_featvis},
    {"/api/input", "GET", api_input},
    {"/api/predict", "GET", api_predict},
    {"/api/uploads", "GET", api_uploads},
    {"/api/upload", "POST", api_upload},
    {"/api/jobs", "GET", api_jobs},
    {"/api/job", "GET", api_job},
    {"/api/job/cancel", "POST", api_cancel},
    {"/api/health", "GET", api_health},
};

void api_handle(vc_server *s, const http_req *q, http_resp *r) {
    for (size_t k = 0; k < sizeof routes / sizeof routes[0]; k++) {
        if (strcmp(q->path, routes[k].path)) continue;
        int head = !strcmp(q->method, "HEAD") && !strcmp(routes[k].method, "GET");
        if (strcmp(q->method, routes[k].method) && !head) {
            resp_error(r, 405, "%s %s: use %s", q->method, q->path, routes[k].method);
            return;
        }
        routes[k].fn(s, q, r);
        return;
    }
    resp_error(r, 404, "%.200s: no such API endpoint (see viscnn/server/api.c)", q->path);
}
