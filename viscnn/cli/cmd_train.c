// cmd_train.c: viscnn train — trains a model from a graph template (or a
// model file) on a labelled set, prints one line per epoch with the test
// accuracy, and writes the model after every epoch (the last one wins).
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cjson/cJSON.h>
#include "cli.h"
#include "../imageset.h"
#include "../../train/train.h"
#include "../../engine/util.h"
#include "../api/api.h"

// What the callbacks need: the bar, and the model to write after each epoch.
typedef struct {
    int epochs;
    int bar;                  // stderr is a terminal
    const vc_model *m;
    const char *out;
    int argc;
    char **argv;
    const char *arch;
    const train_cfg *cfg;
    const train_optim_cfg *oc;
    train_epoch *hist;
    int n_train, n_test;
    int bar_epoch;            // the epoch the bar's clock started on
    double bar_t0;
    int save_rc;              // first failure to write the model
    vc_error save_err;
} train_view;

static char *train_record(int argc, char **argv, const char *arch, const train_cfg *c, const train_optim_cfg *o,
                          const train_epoch *h, int epochs_done, int n_train, int n_test);

static void on_batch(void *ctx, int epoch, int b, int nb, double loss, double acc) {
    train_view *v = ctx;
    if (!v->bar) return;
    if (epoch != v->bar_epoch) { v->bar_epoch = epoch; v->bar_t0 = cli_now(); }
    if (b % 10 && b != nb) return;
    int w = 30, f = (int)((long)b * w / nb);
    double dt = cli_now() - v->bar_t0, rate = dt > 0 ? b / dt : 0;   // batches/s over this epoch
    int eta = rate > 0 ? (int)((nb - b) / rate + 0.5) : 0;
    fprintf(stderr, "\repoch %d/%d [%.*s%*s] %d/%d  loss %.4f  acc %.2f%%  %.0f img/s  ETA %d:%02d ", epoch, v->epochs, f,
            "==============================", w - f, "", b, nb, loss, 100 * acc, rate * v->cfg->batch, eta / 60, eta % 60);
    if (b == nb) fprintf(stderr, "  testing...");
    fflush(stderr);
}

static void on_epoch(void *ctx, const train_epoch *e) {
    train_view *v = ctx;
    if (v->bar) fprintf(stderr, "\r%*s\r", 130, "");
    printf("epoch %d/%d  loss %.4f  train %.2f%%", e->epoch, v->epochs, e->loss, 100 * e->train_acc);
    if (e->test_acc >= 0) printf("  test %.2f%%", 100 * e->test_acc);
    printf("  lr %.6g  %.1f s\n", e->lr, e->seconds);
    fflush(stdout);
    v->hist[e->epoch - 1] = *e;
    if (v->save_rc) return;
    char *rec = train_record(v->argc, v->argv, v->arch, v->cfg, v->oc, v->hist, e->epoch, v->n_train, v->n_test);
    v->save_rc = train_model_save(v->m, v->out, "viscnn.train", rec, &v->save_err);
    free(rec);
}

static const char *optim_names[] = {"sgd", "adam", "adamw"};
static const char *sched_names[] = {"none", "cosine", "step"};

// The record kept in the model file's "viscnn.train" metadata.
static char *train_record(int argc, char **argv, const char *arch, const train_cfg *c, const train_optim_cfg *o,
                          const train_epoch *h, int epochs_done, int n_train, int n_test) {
    cJSON *r = cJSON_CreateObject();
    char cmd[4096] = "viscnn train";
    for (int i = 0; i < argc && strlen(cmd) < sizeof cmd - 256; i++)
        snprintf(cmd + strlen(cmd), sizeof cmd - strlen(cmd), " %s", argv[i]);
    cJSON_AddStringToObject(r, "command", cmd);
    cJSON_AddStringToObject(r, "arch", arch);
    cJSON_AddNumberToObject(r, "seed", (double)c->seed);
    cJSON_AddNumberToObject(r, "epochs", c->epochs);
    cJSON_AddNumberToObject(r, "batch", c->batch);
    cJSON_AddNumberToObject(r, "shards", c->shards);
    cJSON_AddStringToObject(r, "optimizer", optim_names[o->kind]);
    cJSON_AddNumberToObject(r, "lr", o->lr);
    if (o->kind == TRAIN_SGD) { cJSON_AddNumberToObject(r, "momentum", o->momentum); cJSON_AddBoolToObject(r, "nesterov", o->nesterov); }
    cJSON_AddNumberToObject(r, "weight_decay", o->weight_decay);
    cJSON_AddStringToObject(r, "schedule", sched_names[c->sched]);
    cJSON_AddNumberToObject(r, "train_images", n_train);
    cJSON_AddNumberToObject(r, "test_images", n_test);
    cJSON *hist = cJSON_AddArrayToObject(r, "history");
    for (int e = 0; e < epochs_done; e++) {
        cJSON *x = cJSON_CreateObject();
        cJSON_AddNumberToObject(x, "epoch", h[e].epoch);
        cJSON_AddNumberToObject(x, "loss", h[e].loss);
        cJSON_AddNumberToObject(x, "train_acc", h[e].train_acc);
        if (h[e].test_acc >= 0) cJSON_AddNumberToObject(x, "test_acc", h[e].test_acc);
        cJSON_AddNumberToObject(x, "seconds", h[e].seconds);
        cJSON_AddItemToArray(hist, x);
    }
    char *s = cJSON_PrintUnformatted(r);
    cJSON_Delete(r);
    return s;
}

int cmd_train(int argc, char **argv, vc_error *err) {
    cli_args a;
    static const char *const flags[] = {"nesterov", NULL};
    int rc = cli_parse(&a, "train", argc, argv, flags, err);
    if (rc) return rc;
    const char *arch = cli_opt(&a, "arch"), *out = cli_opt(&a, "o");
    const char *optim = cli_opt(&a, "optimizer"), *sched = cli_opt(&a, "schedule");
    if (a.n_pos) return vc_fail(err, VC_EINPUT, "train: unexpected argument '%s'", a.pos[0]);
    if (!arch) return vc_fail(err, VC_EINPUT, "train: missing --arch TEMPLATE.json (or a model file to train further)");
    if (!out) return vc_fail(err, VC_EINPUT, "train: missing -o OUT.safetensors");

    train_cfg cfg;
    train_cfg_defaults(&cfg);
    train_optim_cfg oc;
    train_optim_kind kind = TRAIN_SGD;
    if (optim) {
        int k = -1;
        for (int i = 0; i < 3; i++) if (!strcmp(optim, optim_names[i])) k = i;
        if (k < 0) return vc_fail(err, VC_EINPUT, "train: --optimizer %s: expected sgd, adam or adamw", optim);
        kind = (train_optim_kind)k;
    }
    train_optim_defaults(&oc, kind);
    int seed, limit, test_limit;
    if ((rc = cli_int(&a, "epochs", 10, 1, 100000, &cfg.epochs, err)) ||
        (rc = cli_int(&a, "batch", 64, 1, 1 << 20, &cfg.batch, err)) ||
        (rc = cli_int(&a, "shards", 2, 1, 64, &cfg.shards, err)) ||
        (rc = cli_int(&a, "seed", 0, 0, 2147483647, &seed, err)) ||
        (rc = cli_int(&a, "limit", 0, 0, 2147483647, &limit, err)) ||
        (rc = cli_int(&a, "test-limit", 0, 0, 2147483647, &test_limit, err)) ||
        (rc = cli_int(&a, "eval-batch", 500, 1, 1 << 20, &cfg.eval_batch, err)) ||
        (rc = cli_double(&a, "lr", oc.lr, 0, 1e6, &oc.lr, err)) ||
        (rc = cli_double(&a, "momentum", oc.momentum, 0, 1, &oc.momentum, err)) ||
        (rc = cli_double(&a, "weight-decay", oc.weight_decay, 0, 1e6, &oc.weight_decay, err)) ||
        (rc = cli_double(&a, "beta1", oc.beta1, 0, 1, &oc.beta1, err)) ||
        (rc = cli_double(&a, "beta2", oc.beta2, 0, 1, &oc.beta2, err)) ||
        (rc = cli_double(&a, "eps", oc.eps, 0, 1, &oc.eps, err)))
        return rc;
    oc.nesterov = cli_flag(&a, "nesterov");
    if (oc.nesterov && (kind != TRAIN_SGD || oc.momentum <= 0))
        return vc_fail(err, VC_EINPUT, "train: --nesterov needs --optimizer sgd with --momentum > 0");
    cfg.seed = (uint64_t)seed;
    if (sched) {
        int e = 0;
        double g = 0;
        char tail;
        if (!strcmp(sched, "none")) cfg.sched = TRAIN_SCHED_NONE;
        else if (!strcmp(sched, "cosine")) cfg.sched = TRAIN_SCHED_COSINE;
        else if (sscanf(sched, "step:%d:%lf%c", &e, &g, &tail) == 2 && e >= 1 && g > 0 && g <= 1) {
            cfg.sched = TRAIN_SCHED_STEP; cfg.step_epochs = e; cfg.step_gamma = g;
        } else return vc_fail(err, VC_EINPUT, "train: --schedule %s: expected none, cosine or step:EPOCHS:GAMMA", sched);
    }

    // Every step frees and reallocates the same activation buffers: keep them
    // in the heap rather than returning them to the kernel each time.
    mallopt(M_MMAP_THRESHOLD, 256 << 20);
    mallopt(M_TRIM_THRESHOLD, 512 << 20);
    vc_model *m = NULL;
    if ((rc = train_model_open(&m, arch, cfg.seed, err))) return rc;
    vc_labelled *trs = NULL, *tes = NULL;
    rc = cli_open_labelled(&trs, m, &a, "idx", "labels", "images", limit, 1, err);
    if (!rc) rc = cli_open_labelled(&tes, m, &a, "test-idx", "test-labels", "test-images", test_limit, 0, err);
    if (!rc) rc = cli_check_unused(&a, err);
    if (rc) { vc_labelled_free(trs); vc_labelled_free(tes); vc_model_free(m); return rc; }
    train_set tr = trs->s, te = tes ? tes->s : (train_set){0};

    printf("training %s (%s): %zu parameters, %d training images, %d test images\n", m->name, arch, m->n_weights,
           tr.d.n, te.d.n);
    printf("%s lr %g", optim_names[oc.kind], oc.lr);
    if (oc.kind == TRAIN_SGD) printf(" momentum %g%s", oc.momentum, oc.nesterov ? " nesterov" : "");
    printf(" weight decay %g, %s schedule, batch %d (%d shards), %d epochs, seed %d\n", oc.weight_decay,
           sched_names[cfg.sched], cfg.batch, cfg.shards, cfg.epochs, seed);
    fflush(stdout);

    double t0 = cli_now();
    train_epoch *hist = calloc_check(cfg.epochs, sizeof(train_epoch));
    train_view view = {cfg.epochs, isatty(2), m, out, argc, argv, arch, &cfg, &oc, hist, tr.d.n, te.d.n, 0, 0, VC_OK, {{0}}};
    train_callbacks cb = {on_batch, on_epoch, &view};
    rc = train_run(m, &tr.d, te.d.n ? &te.d : NULL, &cfg, &oc, &cb, hist, err);
    if (!rc && view.save_rc) { rc = view.save_rc; *err = view.save_err; }
    char what[160];
    snprintf(what, sizeof what, "%s after %d epochs, %zu parameters", m->name, cfg.epochs, m->n_weights);
    if (!rc) cli_wrote(out, what, t0);
    free(hist);
    vc_labelled_free(trs);
    vc_labelled_free(tes);
    vc_model_free(m);
    return rc;
}
