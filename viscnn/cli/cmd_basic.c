// cmd_basic.c: viscnn info | predict | forward — looking at a model and
// running it, with no analysis on top (forward --decisions: the branches it
// took, for replay in the float64 reference; docs/parity.md).
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "../circuit.h"
#include "cli.h"
#include "../../engine/util.h"
#include "../../loaders/npy.h"
#include "../../loaders/npz.h"

static int load_model(vc_model **m, cli_args *a, vc_error *err) {
    if (a->n_pos < 1) return vc_fail(err, VC_EINPUT, "%s: missing MODEL argument", a->cmd);
    return vc_model_load(m, a->pos[0], err);
}

static void shape_str(char *s, size_t n, const vc_node *nd) {
    if (nd->rank == 2) snprintf(s, n, "(N,%d)", nd->c);
    else snprintf(s, n, "(N,%d,%d,%d)", nd->c, nd->h, nd->w);
}

int cmd_info(int argc, char **argv, vc_error *err) {
    cli_args a;
    vc_model *m = NULL;
    int rc = cli_parse(&a, "info", argc, argv, NULL, err);
    if (!rc) rc = cli_check_unused(&a, err);
    if (!rc) rc = load_model(&m, &a, err);
    if (rc) return rc;
    printf("model %s (%s)\n", vc_str(m->name), m->path);
    printf("input %s: (N,%d,%d,%d)", m->nodes[0].name, m->nodes[0].c, m->nodes[0].h, m->nodes[0].w);
    if (m->pre.resize || m->pre.crop) printf("  resize %d, crop %d", m->pre.resize, m->pre.crop);
    printf("  mean [%g", m->pre.mean[0]);
    for (int c = 1; c < m->pre.channels && c < 3; c++) printf(", %g", m->pre.mean[c]);
    printf("]  std [%g", m->pre.std[0]);
    for (int c = 1; c < m->pre.channels && c < 3; c++) printf(", %g", m->pre.std[c]);
    printf("]\n\n%4s  %-28s %-19s %-20s %10s  %s\n", "#", "layer", "op", "output", "params", "inputs");
    size_t channels = m->nodes[0].c;
    for (int i = 1; i < m->n_nodes; i++) {
        const vc_node *n = &m->nodes[i];
        char shp[64], ins[256] = "";
        shape_str(shp, sizeof shp, n);
        size_t np = 0;
        for (int r = 0; r < VC_P_COUNT; r++) if (n->param[r] >= 0) np += m->params[n->param[r]].size;
        for (int k = 0; k < n->n_in && strlen(ins) < 200; k++)
            snprintf(ins + strlen(ins), sizeof ins - strlen(ins), "%s%s", k ? ", " : "", vc_str(m->nodes[n->in[k]].name));
        printf("%4d  %-28s %-19s %-20s %10zu  %s\n", i, vc_str(n->name), vc_op_names[n->op], shp, np, ins);
        if (n->op == VC_OP_CONV2D) channels += n->c;
    }
    const vc_node *o = &m->nodes[m->output];
    char shp[64];
    shape_str(shp, sizeof shp, o);
    printf("\noutput %s %s%s\n", vc_str(o->name), shp, m->n_labels ? ", with labels" : "");
    printf("layers: %d\nnodes (channels of the input and of conv layers): %zu\nedges (2-D conv kernels): %zu\nparameters: %zu\n",
           m->n_nodes - 1, channels, m->n_edges, m->n_weights);
    vc_model_free(m);
    return VC_OK;
}

int cmd_predict(int argc, char **argv, vc_error *err) {
    cli_args a;
    vc_model *m = NULL;
    int rc = cli_parse(&a, "predict", argc, argv, NULL, err);
    if (rc) return rc;
    int top;
    const char *save = cli_opt(&a, "save-input");
    if ((rc = cli_int(&a, "top", 5, 1, 1000000, &top, err))) return rc;
    float *x = NULL;
    int N = 0;
    if (!rc) rc = load_model(&m, &a, err);
    if (!rc) rc = cli_load_batch(m, &a, a.n_pos - 1, a.pos + 1, &x, &N, err);
    if (!rc) rc = cli_check_unused(&a, err);
    if (!rc && save) {
        long long dim[4] = {N, m->nodes[0].c, m->nodes[0].h, m->nodes[0].w};
        rc = npy_write(save, x, 4, dim, err);
    }
    vc_run *r = NULL;
    if (!rc) {
        r = vc_run_new(m, N);
        rc = vc_forward(r, x, m->output, VC_FWD_NOGRAD, err);
    }
    if (!rc) {
        const float *y = vc_run_act(r, m->output);
        int K = (int)m->nodes[m->output].size;
        if (top > K) top = K;
        int *idx = malloc_check(K * sizeof(int));
        for (int n = 0; n < N; n++) {
            const float *yn = y + (size_t)n * K;
            double mx = -INFINITY, s = 0;
            for (int k = 0; k < K; k++) if (yn[k] > mx) mx = yn[k];
            for (int k = 0; k < K; k++) s += exp((double)yn[k] - mx);
            for (int k = 0; k < K; k++) idx[k] = k;
            for (int t = 0; t < top; t++)   // partial selection sort: ties keep the lower index
                for (int k = t + 1; k < K; k++)
                    if (yn[idx[k]] > yn[idx[t]] || (yn[idx[k]] == yn[idx[t]] && idx[k] < idx[t])) {
                        int tmp = idx[t]; idx[t] = idx[k]; idx[k] = tmp;
                    }
            printf("%s\n", a.n_pos > 1 ? a.pos[1 + n] : "input");
            for (int t = 0; t < top; t++) {
                int k = idx[t];
                printf("  %d. %5d  %.4f  %s\n", t + 1, k, exp((double)yn[k] - mx) / s,
                       k < m->n_labels ? vc_str(m->labels[k]) : "");
            }
        }
        free(idx);
    }
    vc_run_free(r);
    free(x);
    vc_model_free(m);
    return rc;
}

// --decisions D.npz: every branching node's decisions (vc_run_decisions), one
// .npy entry per node named by the node, streamed to the archive from a
// forward hook as each node finishes (a NOGRAD forward frees them after).
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

int cmd_forward(int argc, char **argv, vc_error *err) {
    cli_args a;
    vc_model *m = NULL;
    int rc = cli_parse(&a, "forward", argc, argv, NULL, err);
    if (rc) return rc;
    const char *out = cli_opt(&a, "o"), *layer = cli_opt(&a, "layer"), *cpath = cli_opt(&a, "circuit");
    const char *dpath = cli_opt(&a, "decisions");
    if (!out && !dpath) return vc_fail(err, VC_EINPUT, "forward: missing -o OUT.npy (or --decisions D.npz)");
    if (!cli_opt(&a, "input")) return vc_fail(err, VC_EINPUT, "forward: missing --input IN.npy");
    float *x = NULL;
    int N = 0, node = -1;
    rc = load_model(&m, &a, err);
    if (!rc && a.n_pos > 1) rc = vc_fail(err, VC_EINPUT, "forward: unexpected argument '%s'", a.pos[1]);
    if (!rc) {
        node = layer ? vc_model_find(m, layer) : m->output;
        if (node < 0) rc = vc_fail(err, VC_EINPUT, "forward: --layer %s: no such layer in %s (see viscnn info)", layer, m->path);
    }
    if (!rc) rc = cli_load_batch(m, &a, 0, NULL, &x, &N, err);
    if (!rc) rc = cli_check_unused(&a, err);
    vc_run *r = NULL;
    vc_circuit circ = {0};
    vc_scores layout = {0};
    if (!rc) r = vc_run_new(m, N);
    if (!rc && cpath) {   // run the circuit as a masked network
        rc = circuit_read(&circ, &layout, m, cpath, err);
        if (!rc) rc = circuit_apply(r, &layout, &circ, err);
        circuit_free(&circ);
        if (layout.l) scores_free(&layout);
    }
    decision_sink sink = {.m = m};
    if (!rc && dpath) {
        rc = npz_open(&sink.w, dpath, err);
        if (!rc) vc_run_set_hook(r, decisions_hook, &sink);
    }
    if (!rc) rc = vc_forward(r, x, node, VC_FWD_NOGRAD, err);
    if (!rc && sink.rc) { rc = sink.rc; *err = sink.err; }
    if (!rc && out) {
        const vc_node *nd = &m->nodes[node];
        long long dim[4] = {N, nd->c, nd->h, nd->w};
        rc = npy_write(out, vc_run_act(r, node), nd->rank, dim, err);
    }
    if (sink.w) {
        if (!rc) rc = npz_close(sink.w, err);
        else npz_abort(sink.w);
    }
    free(sink.buf);
    vc_run_free(r);
    free(x);
    vc_model_free(m);
    return rc;
}
