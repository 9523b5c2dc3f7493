// trainer.c (api): viscnn.h's training (since 0.2): models from templates,
// the trainer's settings, the loop with callbacks, the record kept in a
// trained model's "viscnn.train" metadata; the work is train/train.c.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cjson/cJSON.h>
#include "api.h"
#include "../../engine/util.h"
#include "../../train/train.h"

static const char *optim_names[] = {"sgd", "adam", "adamw"};
static const char *sched_names[] = {"none", "cosine", "step"};

struct vc_trainer {
    train_cfg cfg;
    train_optim_cfg oc;
    vc_batch_fn on_batch;
    vc_epoch_fn on_epoch;
    void *ctx;
    train_epoch *hist;        // (hist_n) epochs done by the last vc_train
    int hist_n, hist_cap;
};

int vc_train_model_new(vc_model **out, const char *arch, unsigned long long seed, vc_error *err) {
    API_NEED(out, err);
    *out = NULL;
    API_NEED(arch, err);
    return train_model_open(out, arch, (uint64_t)seed, err);
}

int vc_model_save(const vc_model *m, const char *path, const char *key, const char *value, vc_error *err) {
    API_NEED(m, err);
    API_NEED(path, err);
    if (!key != !value) return vc_fail(err, VC_EINPUT, "%s: give both key and value, or neither", __func__);
    return train_model_save(m, path, key, value, err);
}

int vc_trainer_new(vc_trainer **out, const char *optimizer, vc_error *err) {
    API_NEED(out, err);
    *out = NULL;
    int k = -1;
    for (int i = 0; i < 3; i++) if (!strcmp(optimizer ? optimizer : "sgd", optim_names[i])) k = i;
    if (k < 0) return vc_fail(err, VC_EINPUT, "--optimizer %s: expected sgd, adam or adamw", optimizer);
    vc_trainer *t = calloc_check(1, sizeof *t);
    train_cfg_defaults(&t->cfg);
    train_optim_defaults(&t->oc, (train_optim_kind)k);
    *out = t;
    return VC_OK;
}

void vc_trainer_free(vc_trainer *t) {
    if (!t) return;
    free(t->hist);
    free(t);
}

// name -> the setting it stands for; is_int: an integer setting.
static int setting(vc_trainer *t, const char *name, double **d, int **i, uint64_t **u) {
    *d = NULL; *i = NULL; *u = NULL;
    if (!strcmp(name, "epochs")) *i = &t->cfg.epochs;
    else if (!strcmp(name, "batch")) *i = &t->cfg.batch;
    else if (!strcmp(name, "shards")) *i = &t->cfg.shards;
    else if (!strcmp(name, "eval_batch")) *i = &t->cfg.eval_batch;
    else if (!strcmp(name, "seed")) *u = &t->cfg.seed;
    else if (!strcmp(name, "lr")) *d = &t->oc.lr;
    else if (!strcmp(name, "momentum")) *d = &t->oc.momentum;
    else if (!strcmp(name, "nesterov")) *i = &t->oc.nesterov;
    else if (!strcmp(name, "weight_decay")) *d = &t->oc.weight_decay;
    else if (!strcmp(name, "beta1")) *d = &t->oc.beta1;
    else if (!strcmp(name, "beta2")) *d = &t->oc.beta2;
    else if (!strcmp(name, "eps")) *d = &t->oc.eps;
    else return -1;
    return 0;
}

int vc_trainer_set(vc_trainer *t, const char *name, double value, vc_error *err) {
    API_NEED(t, err);
    API_NEED(name, err);
    double *d;
    int *i;
    uint64_t *u;
    if (setting(t, name, &d, &i, &u)) return vc_fail(err, VC_EINPUT, "%s: no setting named %s", __func__, name);
    if (!(value >= 0) || (!d && value != (double)(long long)value) || (i && value > 2147483647.0))
        return vc_fail(err, VC_EINPUT, "%s: %s %g: out of range", __func__, name, value);
    if ((i == &t->cfg.epochs || i == &t->cfg.batch || i == &t->cfg.shards || i == &t->cfg.eval_batch) && value < 1)
        return vc_fail(err, VC_EINPUT, "%s: %s %g: need at least 1", __func__, name, value);
    if (d) *d = value;
    else if (i) *i = (int)value;
    else *u = (uint64_t)value;
    return VC_OK;
}

int vc_trainer_get(const vc_trainer *t, const char *name, double *value, vc_error *err) {
    API_NEED(t, err);
    API_NEED(name, err);
    API_NEED(value, err);
    double *d;
    int *i;
    uint64_t *u;
    if (setting((vc_trainer *)t, name, &d, &i, &u)) return vc_fail(err, VC_EINPUT, "%s: no setting named %s", __func__, name);
    *value = d ? *d : i ? (double)*i : (double)*u;
    return VC_OK;
}

int vc_trainer_schedule(vc_trainer *t, const char *schedule, vc_error *err) {
    API_NEED(t, err);
    API_NEED(schedule, err);
    int e = 0;
    double g = 0;
    char tail;
    if (!strcmp(schedule, "none")) t->cfg.sched = TRAIN_SCHED_NONE;
    else if (!strcmp(schedule, "cosine")) t->cfg.sched = TRAIN_SCHED_COSINE;
    else if (sscanf(schedule, "step:%d:%lf%c", &e, &g, &tail) == 2 && e >= 1 && g > 0 && g <= 1) {
        t->cfg.sched = TRAIN_SCHED_STEP; t->cfg.step_epochs = e; t->cfg.step_gamma = g;
    } else return vc_fail(err, VC_EINPUT, "--schedule %s: expected none, cosine or step:EPOCHS:GAMMA", schedule);
    return VC_OK;
}

int vc_trainer_names(const vc_trainer *t, const char **optimizer, const char **schedule, vc_error *err) {
    API_NEED(t, err);
    if (optimizer) *optimizer = optim_names[t->oc.kind];
    if (schedule) *schedule = sched_names[t->cfg.sched];
    return VC_OK;
}

void vc_trainer_callbacks(vc_trainer *t, vc_batch_fn on_batch, vc_epoch_fn on_epoch, void *ctx) {
    if (!t) return;
    t->on_batch = on_batch;
    t->on_epoch = on_epoch;
    t->ctx = ctx;
}

static void on_batch(void *ctx, int epoch, int b, int nb, double loss, double acc) {
    vc_trainer *t = ctx;
    if (t->on_batch) t->on_batch(t->ctx, epoch, b, nb, loss, acc);
}

static void on_epoch(void *ctx, const train_epoch *e) {
    vc_trainer *t = ctx;
    if (t->hist_n < t->hist_cap) t->hist[t->hist_n++] = *e;
    vc_epoch pe = {e->epoch, e->loss, e->train_acc, e->test_acc, e->lr, e->seconds};
    if (t->on_epoch) t->on_epoch(t->ctx, &pe);
}

int vc_train(vc_trainer *t, vc_model *m, const vc_labelled *train, const vc_labelled *test, vc_error *err) {
    API_NEED(t, err);
    API_NEED(m, err);
    API_NEED(train, err);
    if (t->oc.nesterov && (t->oc.kind != TRAIN_SGD || t->oc.momentum <= 0))
        return vc_fail(err, VC_EINPUT, "--nesterov needs --optimizer sgd with --momentum > 0");
    free(t->hist);
    t->hist = calloc_check((size_t)t->cfg.epochs, sizeof(train_epoch));
    t->hist_n = 0;
    t->hist_cap = t->cfg.epochs;
    train_epoch *history = calloc_check((size_t)t->cfg.epochs, sizeof(train_epoch));
    train_callbacks cb = {on_batch, on_epoch, t};
    int rc = train_run(m, &train->s.d, test && test->s.d.n ? &test->s.d : NULL, &t->cfg, &t->oc, &cb, history, err);
    free(history);
    return rc;
}

char *vc_trainer_record(const vc_trainer *t, const char *command, const char *arch, int n_train, int n_test) {
    if (!t) return NULL;
    const train_cfg *c = &t->cfg;
    const train_optim_cfg *o = &t->oc;
    cJSON *r = cJSON_CreateObject();
    cJSON_AddStringToObject(r, "command", command ? command : "");
    cJSON_AddStringToObject(r, "arch", arch ? arch : "");
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
    for (int e = 0; e < t->hist_n; e++) {
        const train_epoch *h = &t->hist[e];
        cJSON *x = cJSON_CreateObject();
        cJSON_AddNumberToObject(x, "epoch", h->epoch);
        cJSON_AddNumberToObject(x, "loss", h->loss);
        cJSON_AddNumberToObject(x, "train_acc", h->train_acc);
        if (h->test_acc >= 0) cJSON_AddNumberToObject(x, "test_acc", h->test_acc);
        cJSON_AddNumberToObject(x, "seconds", h->seconds);
        cJSON_AddItemToArray(hist, x);
    }
    char *s = cJSON_PrintUnformatted(r);
    cJSON_Delete(r);
    char *out = s ? strdup_check(s) : NULL;   // cJSON's allocator may differ from malloc: hand back a malloc'd copy
    cJSON_free(s);
    return out;
}
