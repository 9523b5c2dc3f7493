// importance_set.c: importance over an image set (imageset.h) — the units
// (batches) of the set, which rank scores which, decoding the next unit in a
// second thread while this one computes, checkpoints, and the final sum over
// the ranks (docs/mpi.md). With one process and no checkpoint it is the loop
// it always was: per category, its images in order, `batch` at a time.
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "imageset.h"
#include "checkpoint.h"
#include "dist.h"
#include "../engine/util.h"

// Every DIST_SYNC_ROUNDS rounds of units (ranks units each) the ranks post an
// error check that completes at the next one (dist_agree_async: nobody
// waits), so that a rank that failed stops the others early.
#define DIST_SYNC_ROUNDS 8

typedef struct {
    const vc_imageset *s;
    const int *idx;
    int n;
    float *x;
    int *lab;
    int rc;
    vc_error err;
    pthread_t th;
    int running;
} unit_load;

static void *load_main(void *p) {
    unit_load *L = p;
    L->rc = imageset_load(L->s, L->idx, L->n, L->x, L->lab, &L->err);
    return NULL;
}

static void load_start(unit_load *L, const int *idx, int n) {
    L->idx = idx;
    L->n = n;
    L->rc = VC_OK;
    L->running = pthread_create(&L->th, NULL, load_main, L) == 0;
    if (!L->running) load_main(L);   // no thread: decode here
}

static int load_wait(unit_load *L, vc_error *err) {
    if (L->running) pthread_join(L->th, NULL);
    L->running = 0;
    if (L->rc) *err = L->err;
    return L->rc;
}

// FNV-1a over the image paths, labels and categories: part of a checkpoint's
// job line, so that a checkpoint is never resumed on another image list.
static unsigned long long set_hash(const vc_imageset *s) {
    unsigned long long h = 1469598103934665603ull;
    for (int i = 0; i < s->n; i++) {
        const char *p = s->x ? "" : s->ds.paths[i];
        for (; *p; p++) { h ^= (unsigned char)*p; h *= 1099511628211ull; }
        int v[2] = {s->label[i], s->cat[i]};
        for (size_t k = 0; k < sizeof v; k++) { h ^= ((unsigned char *)v)[k]; h *= 1099511628211ull; }
    }
    return h;
}

int importance_over_set(vc_set_scores *out, const vc_model *m, vc_metric metric, const vc_target *t,
                        const vc_imageset *s, int batch, vc_error *err) {
    return importance_over_set_setup(out, m, metric, t, s, batch, NULL, NULL, err);
}

int importance_over_set_setup(vc_set_scores *out, const vc_model *m, vc_metric metric, const vc_target *t,
                              const vc_imageset *s, int batch, int (*setup)(vc_run *, const void *, vc_error *),
                              const void *ctx, vc_error *err) {
    memset(out, 0, sizeof *out);
    out->n_cat = s->n_cat;
    out->cat_names = s->cat_names;
    out->cat = calloc_check(s->n_cat, sizeof(vc_scores));
    out->cat_images = calloc_check(s->n_cat, sizeof(int));
    // units: the images by category (order), cut into batches
    int *order = malloc_check((s->n + 1) * sizeof(int)), *u_start = malloc_check((s->n + 1) * sizeof(int));
    int *u_n = malloc_check((s->n + 1) * sizeof(int)), *u_cat = malloc_check((s->n + 1) * sizeof(int));
    int n_units = 0, k = 0;
    for (int c = 0; c < s->n_cat; c++) {
        int first = k;
        for (int i = 0; i < s->n; i++) if (s->cat[i] == c) order[k++] = i;
        for (int o = first; o < k; o += batch) {
            u_start[n_units] = o;
            u_n[n_units] = k - o < batch ? k - o : batch;
            u_cat[n_units++] = c;
        }
    }
    const int rank = dist_rank(), ranks = dist_size(), load = metric != VC_M_WEIGHT;
    size_t in_size = m->nodes[0].size;
    unit_load L[2] = {{.s = s}, {.s = s}};
    for (int b = 0; b < 2; b++) {
        L[b].x = malloc_check((size_t)batch * in_size * sizeof(float));
        L[b].lab = malloc_check(batch * sizeof(int));
    }
    vc_importance im;
    int rc = importance_begin(&im, m, metric, t, batch, err);
    if (!rc) rc = importance_set_setup(&im, setup, ctx, err);
    size_t per = im.acc_n, n_state = per * (size_t)s->n_cat;
    double *state = calloc_check(n_state ? n_state : 1, sizeof(double));
    // checkpoints: only the plain scoring pass (a setup changes the network)
    const char *ck = setup ? NULL : s->checkpoint;
    char job[1536];
    int next = 0;
    if (ck) {
        snprintf(job, sizeof job, "model=%s metric=%s target=%s batch=%d ranks=%d images=%d categories=%d values=%zu "
                 "set=%016llx", m->path, vc_metric_names[metric], t->text, batch, ranks, s->n, s->n_cat, per, set_hash(s));
        for (char *p = job; *p; p++) if (*p == '\n') *p = '?';
        int found = 0;
        if (!rc) rc = ckpt_load(ck, job, rank, ranks, state, n_state, &next, &found, err);
        if (!rc && found && next > n_units) rc = vc_fail(err, VC_EINPUT, "--checkpoint %s: unit %d is past the set's %d", ck, next, n_units);
        if (!rc && found && dist_is_root())
            fprintf(stderr, "importance: resuming from %s (rank 0 at unit %d of %d)\n", ck, next, n_units);
    }
    // this rank's units from `next` on: u = rank (mod ranks)
    int cur = next + ((rank - next % ranks) % ranks + ranks) % ranks, since_ck = 0, done = 0, b = 0;
    if (!rc && load && cur < n_units) load_start(&L[b], order + u_start[cur], u_n[cur]);
    for (int u = 0; u < n_units; u++) {
        if (ranks > 1 && u && u % (DIST_SYNC_ROUNDS * ranks) == 0) {
            int agreed = dist_agree_async(rc, err);
            if (agreed) { rc = agreed; break; }
        }
        done += u_n[u];
        if (rc || u != cur) continue;
        if (load) rc = load_wait(&L[b], err);
        cur += ranks;
        if (!rc && load && cur < n_units) load_start(&L[b ^ 1], order + u_start[cur], u_n[cur]);
        im.acc = state + per * (size_t)u_cat[u];
        if (!rc) rc = importance_add(&im, L[b].x, u_n[u], L[b].lab, err);
        b ^= 1;
        since_ck += u_n[u];
        if (!rc && ck && (since_ck >= s->checkpoint_every)) {
            rc = ckpt_save(ck, job, rank, ranks, state, n_state, u + 1, err);
            since_ck = 0;
        }
        if (!rc && dist_is_root() && progress("importance", done, s->n)) rc = vc_fail(err, VC_EINPUT, "cancelled");
    }
    for (int q = 0; q < 2; q++) {   // a unit decoded for nothing (after an error)
        vc_error e2;
        if (L[q].running) load_wait(&L[q], &e2);
    }
    rc = dist_agree(rc, err);
    if (!rc && ck) rc = ckpt_save(ck, job, rank, ranks, state, n_state, n_units, err);
    rc = dist_agree(rc, err);
    if (!rc) dist_sum(state, n_state);
    for (int c = 0; c < s->n_cat && !rc; c++) {
        im.acc = state + per * (size_t)c;
        importance_end(&im, &out->cat[c]);
        out->cat_images[c] = (int)im.acc[0];
        out->images += out->cat_images[c];
    }
    if (!rc) {   // overall: the mean of the categories, each weighing the same
        scores_copy(&out->overall, &out->cat[0]);
        for (int c = 1; c < s->n_cat; c++) scores_axpby(&out->overall, 1.0f, &out->cat[c], 1.0f);
        scores_axpby(&out->overall, 1.0f / s->n_cat, &out->overall, 0.0f);
    }
    if (n_state) im.acc = im.own_acc;
    importance_free(&im);
    free(state);
    for (int q = 0; q < 2; q++) { free(L[q].x); free(L[q].lab); }
    free(order); free(u_start); free(u_n); free(u_cat);
    if (rc) set_scores_free(out);
    return rc;
}
