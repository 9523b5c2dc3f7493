// cmd_forward.c: viscnn forward — running a model on a batch and writing a
// layer's output (.npy, or a contact sheet .png), optionally as a circuit's
// masked network (--circuit) or with the branches it took (--decisions, for
// replay in the float64 reference; docs/parity.md).
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "../circuit.h"
#include "cli.h"
#include "picture.h"
#include "viscnn_internal.h"
#include "../../engine/util.h"
#include "../../loaders/npy.h"
#include "../../loaders/npz.h"

static int load_model(vc_model **m, cli_args *a, vc_error *err) {
    if (a->n_pos < 1) return vc_fail(err, VC_EINPUT, "%s: missing MODEL argument", a->cmd);
    return vc_model_load(m, a->pos[0], err);
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
    int png = out ? cli_check_ext("forward", "-o", out, (const char *const[]){".npy", ".png", NULL}, err) : 0;
    if (png < 0) return VC_EINPUT;
    if (dpath && cli_check_ext("forward", "--decisions", dpath, (const char *const[]){".npz", NULL}, err) < 0) return VC_EINPUT;
    double t0 = cli_now();
    float *x = NULL;
    int N = 0, node = -1;
    rc = load_model(&m, &a, err);
    if (!rc && a.n_pos > 1) rc = vc_fail(err, VC_EINPUT, "forward: unexpected argument '%s'", a.pos[1]);
    if (!rc) {
        node = layer ? vc_model_find(m, layer) : m->output;
        if (node < 0) rc = vc_fail(err, VC_EINPUT, "forward: --layer %s: no such layer in %s (see viscnn info)", layer, m->path);
        else if (png && m->nodes[node].rank != 4)
            rc = vc_fail(err, VC_EINPUT, "forward: -o %s: a picture needs a layer with maps (--layer L of shape (N,C,H,W))", out);
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
        char what[160];
        if (png) {   // the first image's channels, as near a square grid as they go
            int cols = (int)ceil(sqrt((double)nd->c)), rows = (nd->c + cols - 1) / cols;
            float *sheet = calloc_check((size_t)rows * cols * nd->h * nd->w, sizeof(float));
            memcpy(sheet, vc_run_act(r, node), (size_t)nd->c * nd->h * nd->w * sizeof(float));
            rc = picture_sheet(out, sheet, rows, cols, nd->h, nd->w, err);
            free(sheet);
            snprintf(what, sizeof what, "%d channel maps of %s for image 0 (%dx%d), a contact sheet", nd->c, nd->name, nd->h, nd->w);
        } else {
            rc = npy_write(out, vc_run_act(r, node), nd->rank, dim, err);
            if (nd->rank == 4) snprintf(what, sizeof what, "%s output (%d,%d,%d,%d)", nd->name, N, nd->c, nd->h, nd->w);
            else snprintf(what, sizeof what, "%s output (%d,%d)", nd->name, N, nd->c);
        }
        if (!rc) cli_wrote(out, what, t0);
    }
    if (sink.w) {
        if (!rc) rc = npz_close(sink.w, err);
        if (!rc) cli_wrote(dpath, "the decisions of every branching node", t0);
        else npz_abort(sink.w);
    }
    free(sink.buf);
    vc_run_free(r);
    free(x);
    vc_model_free(m);
    return rc;
}
