// test_api_threads.c: the public API's thread contract (include/viscnn.h,
// docs/api.md) — one vc_model shared by four threads, each with its own
// session and scoreset, gives results bit-identical to one thread: forward
// (every node's activation), backward, the exact edge maps and their
// gradients of two conv layers, and importance scores. Uses viscnn.h alone.
// Also built under ThreadSanitizer by tests/test_api_tsan.sh.
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "viscnn.h"
#include "testutil.h"

#define JOBS 4
#define ITERS 3
#define BATCH 3
static const char *MODEL = "models/fashion.safetensors";
static const char *TARGETS[JOBS] = {"class:7", "loss", "class:2", "node:features.6:5"};
static const char *LAYERS[2] = {"features.3", "features.6"};

typedef struct {
    float *acts, *maps[2], *grads[2];   // concatenated, in a fixed order
    float *scores;
    size_t n_acts, n_maps[2], n_grads[2], n_scores;
} result;

static const vc_model *model;
static float *inputs[JOBS];
static size_t in_size;
static result want[JOBS];

// Job k: BATCH synthetic images, forward, backward toward TARGETS[k], the
// edges of LAYERS for image k % BATCH, importance (actxgrad) over the batch.
static int job(int k, result *out, vc_error *e) {
    memset(out, 0, sizeof *out);
    vc_session *s = NULL;
    vc_scoreset *sc = NULL;
    int n_nodes, rc = vc_model_size(model, &n_nodes, NULL, NULL, e) || vc_session_new(&s, model, e) ||
                      vc_session_forward(s, inputs[k], BATCH, e) || vc_session_backward(s, TARGETS[k], NULL, e);
    for (int i = 0; !rc && i < n_nodes; i++) {
        const float *a;
        size_t n;
        if ((rc = vc_session_activation(s, i, &a, &n, e))) break;
        out->acts = realloc(out->acts, (out->n_acts + n) * sizeof(float));
        memcpy(out->acts + out->n_acts, a, n * sizeof(float));
        out->n_acts += n;
    }
    for (int l = 0; !rc && l < 2; l++) {
        int node, cout, cg, ho, wo;
        rc = vc_model_find_node(model, LAYERS[l], &node, e) || vc_model_conv(model, node, &cout, &cg, NULL, &ho, &wo, e) ||
             vc_session_edges(s, node, k % BATCH, NULL, 0, NULL, 0, &out->maps[l], e) ||
             vc_session_edge_grads(s, node, k % BATCH, NULL, 0, &out->grads[l], e);
        out->n_maps[l] = (size_t)cout * cg * ho * wo;
        out->n_grads[l] = (size_t)cout * ho * wo;
    }
    int n_layers = 0;
    if (!rc) rc = vc_importance_new(&sc, model, "actxgrad", TARGETS[k], 2, e) || vc_importance_add(sc, inputs[k], BATCH, NULL, e) ||
                  vc_importance_finish(sc, e) || vc_importance_layers(sc, &n_layers, e);
    for (int l = 0; !rc && l < n_layers; l++) {
        int cout, cg;
        const float *nodes, *kernels;
        if ((rc = vc_importance_layer(sc, l, NULL, &cout, &cg, &nodes, &kernels, e))) break;
        size_t n = (size_t)cout + (size_t)cout * cg;
        out->scores = realloc(out->scores, (out->n_scores + n) * sizeof(float));
        memcpy(out->scores + out->n_scores, nodes, cout * sizeof(float));
        memcpy(out->scores + out->n_scores + cout, kernels, (size_t)cout * cg * sizeof(float));
        out->n_scores += n;
    }
    vc_importance_free(sc);
    vc_session_free(s);
    return rc;
}

static void result_free(result *r) {
    free(r->acts); free(r->scores);
    for (int l = 0; l < 2; l++) { vc_free(r->maps[l]); vc_free(r->grads[l]); }
}

// Bit-identical (memcmp); the name of the first part that differs, or NULL.
static const char *differs(const result *a, const result *b) {
    if (a->n_acts != b->n_acts || memcmp(a->acts, b->acts, a->n_acts * sizeof(float))) return "activations";
    for (int l = 0; l < 2; l++) {
        if (a->n_maps[l] != b->n_maps[l] || memcmp(a->maps[l], b->maps[l], a->n_maps[l] * sizeof(float))) return "edge maps";
        if (a->n_grads[l] != b->n_grads[l] || memcmp(a->grads[l], b->grads[l], a->n_grads[l] * sizeof(float))) return "edge gradients";
    }
    if (a->n_scores != b->n_scores || memcmp(a->scores, b->scores, a->n_scores * sizeof(float))) return "importance scores";
    return NULL;
}

typedef struct { int id, failures; char why[1100]; } worker;

// Worker t runs job (t + it) % JOBS on iteration it: the four jobs run at once.
static void *work(void *arg) {
    worker *w = arg;
    for (int it = 0; it < ITERS; it++) {
        int k = (w->id + it) % JOBS;
        result r;
        vc_error e;
        const char *d = NULL;
        if (job(k, &r, &e)) snprintf(w->why, sizeof w->why, "job %d: %s", k, e.msg);
        else if ((d = differs(&r, &want[k]))) snprintf(w->why, sizeof w->why, "job %d iteration %d: %s differ", k, it, d);
        if (w->why[0]) w->failures++;
        result_free(&r);
    }
    return NULL;
}

int main(int argc, char **argv) {
    tu_init(argc, argv);
    vc_error e;
    vc_model *m;
    if (vc_model_load(&m, MODEL, &e)) { tu_report("load the default model", 0, "%s", e.msg); return tu_finish(); }
    model = m;
    int c, h, w;
    vc_model_node(m, 0, NULL, NULL, &c, &h, &w, &e);
    in_size = (size_t)c * h * w;
    tu_rng rng = {0x1234567ull};
    for (int k = 0; k < JOBS; k++) {
        inputs[k] = malloc(BATCH * in_size * sizeof(float));
        for (size_t i = 0; i < BATCH * in_size; i++) inputs[k][i] = 1.5f * tu_uniform(&rng);
    }
    int ok = 1;
    for (int k = 0; k < JOBS && ok; k++)
        if (job(k, &want[k], &e)) { tu_report("one thread: forward, backward, edges, importance", 0, "job %d: %s", k, e.msg); ok = 0; }
    if (ok) {
        // the reference is itself repeatable on one thread
        result again;
        const char *d = job(0, &again, &e) ? e.msg : differs(&again, &want[0]);
        tu_report("one thread: a second run of job 0 is bit-identical", !d, "%s", d);
        result_free(&again);
        pthread_t th[JOBS];
        worker wk[JOBS];
        for (int t = 0; t < JOBS; t++) {
            wk[t] = (worker){.id = t};
            pthread_create(&th[t], NULL, work, &wk[t]);
        }
        for (int t = 0; t < JOBS; t++) pthread_join(th[t], NULL);
        for (int t = 0; t < JOBS; t++) {
            char name[200];
            snprintf(name, sizeof name, "thread %d of %d on one shared model: %d jobs (forward, backward, edges of %s and %s, "
                     "importance) bit-identical to one thread", t, JOBS, ITERS, LAYERS[0], LAYERS[1]);
            tu_report(name, !wk[t].failures, "%d failures; last: %s", wk[t].failures, wk[t].why);
        }
    }
    for (int k = 0; k < JOBS; k++) { free(inputs[k]); if (ok) result_free(&want[k]); }
    vc_model_free(m);
    return tu_finish();
}
