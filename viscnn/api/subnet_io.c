// subnet_io.c (api): circuits read back from their JSON, and a forward that
// records every branching node's decisions (since 0.2).
#include <stdlib.h>
#include <string.h>
#include <cjson/cJSON.h>
#include "api.h"
#include "../../engine/util.h"
#include "../../loaders/fileio.h"
#include "../../loaders/npz.h"

// The "target" a circuit file names ("loss" when it names none).
static int file_target(vc_target *t, const vc_model *m, const char *path, vc_error *err) {
    size_t size;
    char *text = vc_read_file(path, (size_t)1 << 31, &size, err);
    if (!text) return VC_EINPUT;
    cJSON *j = cJSON_ParseWithLength(text, size);
    free(text);
    const cJSON *v = j ? cJSON_GetObjectItemCaseSensitive(j, "target") : NULL;
    int rc = target_parse(t, m, cJSON_IsString(v) ? v->valuestring : "loss", err);
    cJSON_Delete(j);
    return rc;
}

int vc_subnet_load(vc_subnet **out, const vc_model *m, const char *path, vc_error *err) {
    API_NEED(out, err);
    *out = NULL;
    API_NEED(m, err);
    API_NEED(path, err);
    vc_subnet *c = calloc_check(1, sizeof *c);
    c->m = m;
    int rc = circuit_read(&c->c, &c->layout, m, path, err);
    if (!rc) rc = file_target(&c->target, m, path, err);
    if (rc) {
        circuit_free(&c->c);
        if (c->layout.l) scores_free(&c->layout);
        free(c);
        return rc;
    }
    *out = c;
    return VC_OK;
}

// Streams each branching node's decisions into the archive from a forward
// hook as the node finishes (an inference forward frees them after).
typedef struct {
    const vc_model *m;
    npz_writer *w;
    void *buf;
    size_t cap;
    int rc;
    vc_error err;
} decision_sink;

static void decisions_hook(void *ctx, const vc_run *r, int node, int phase) {
    decision_sink *s = ctx;
    const vc_model *m = s->m;
    vc_decision_kind kind = vc_node_decisions(m, node);
    if (phase != 0 || s->rc || kind == VC_DEC_NONE) return;
    const vc_node *nd = &m->nodes[node];
    int N = vc_run_batch(r);
    size_t item = kind == VC_DEC_REGION ? 1 : 4, bytes = (size_t)N * nd->size * item;
    if (bytes > s->cap) { free(s->buf); s->buf = malloc_check(bytes); s->cap = bytes; }
    long long dim[4] = {N, nd->c, nd->h, nd->w};
    s->rc = vc_run_decisions(r, node, s->buf, &s->err);
    if (!s->rc)
        s->rc = npz_add(s->w, nd->name, kind == VC_DEC_REGION ? "|u1" : "<i4", nd->rank, dim, s->buf, &s->err);
}

int vc_session_infer_decisions(vc_session *s, const float *x, int n, int node, const char *npz, vc_error *err) {
    API_NEED(s, err);
    API_NEED(x, err);
    API_NEED(npz, err);
    if (n < 1) return vc_fail(err, VC_EINPUT, "%s: batch of %d images; need at least 1", __func__, n);
    if (node < -1 || node >= s->m->n_nodes)
        return vc_fail(err, VC_EINPUT, "%s: node %d out of range [0, %d) in %s", __func__, node, s->m->n_nodes, s->m->path);
    decision_sink sink = {.m = s->m};
    int rc = npz_open(&sink.w, npz, err);
    if (rc) return rc;
    s->n = 0;
    s->backward = 0;
    s->infer = 1;
    if (!s->r || vc_run_batch(s->r) != n) {
        vc_run_free(s->r);
        s->r = vc_run_new(s->m, n);
        if (s->circuit) rc = circuit_apply(s->r, &s->circuit->layout, &s->circuit->c, err);
        if (rc) { vc_run_free(s->r); s->r = NULL; }
    }
    if (!rc) {
        vc_run_set_hook(s->r, decisions_hook, &sink);
        rc = vc_forward(s->r, x, node < 0 ? s->m->output : node, VC_FWD_NOGRAD, err);
        vc_run_set_hook(s->r, NULL, NULL);
    }
    if (!rc && sink.rc) { rc = sink.rc; if (err) *err = sink.err; }
    if (!rc) rc = npz_close(sink.w, err);
    else npz_abort(sink.w);
    free(sink.buf);
    if (!rc) s->n = n;
    return rc;
}
