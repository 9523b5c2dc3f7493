// cmd_train.c: viscnn train — trains a model from a graph template (or a
// model file) on a labelled set, prints one line per epoch with the test
// accuracy, and writes the model after every epoch (the last one wins).
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "cli.h"

// What the callbacks need: the bar, and the model to write after each epoch.
typedef struct {
    int epochs;
    int bar;                  // stderr is a terminal
    int batch;
    const vc_model *m;
    const vc_trainer *t;
    const char *out;
    const char *command;
    const char *arch;
    int n_train, n_test;
    int bar_epoch;            // the epoch the bar's clock started on
    double bar_t0;
    int save_rc;              // first failure to write the model
    vc_error save_err;
} train_view;

static void on_batch(void *ctx, int epoch, int b, int nb, double loss, double acc) {
    train_view *v = ctx;
    if (!v->bar) return;
    if (epoch != v->bar_epoch) { v->bar_epoch = epoch; v->bar_t0 = cli_now(); }
    if (b % 10 && b != nb) return;
    int w = 30, f = (int)((long)b * w / nb);
    double dt = cli_now() - v->bar_t0, rate = dt > 0 ? b / dt : 0;   // batches/s over this epoch
    int eta = rate > 0 ? (int)((nb - b) / rate + 0.5) : 0;
    fprintf(stderr, "\repoch %d/%d [%.*s%*s] %d/%d  loss %.4f  acc %.2f%%  %.0f img/s  ETA %d:%02d ", epoch, v->epochs, f,
            "==============================", w - f, "", b, nb, loss, 100 * acc, rate * v->batch, eta / 60, eta % 60);
    if (b == nb) fprintf(stderr, "  testing...");
    fflush(stderr);
}

static void on_epoch(void *ctx, const vc_epoch *e) {
    train_view *v = ctx;
    if (v->bar) fprintf(stderr, "\r%*s\r", 130, "");
    printf("epoch %d/%d  loss %.4f  train %.2f%%", e->epoch, v->epochs, e->loss, 100 * e->train_acc);
    if (e->test_acc >= 0) printf("  test %.2f%%", 100 * e->test_acc);
    printf("  lr %.6g  %.1f s\n", e->lr, e->seconds);
    fflush(stdout);
    if (v->save_rc) return;
    char *rec = vc_trainer_record(v->t, v->command, v->arch, v->n_train, v->n_test);
    v->save_rc = vc_model_save(v->m, v->out, "viscnn.train", rec, &v->save_err);
    vc_free(rec);
}

static double get(const vc_trainer *t, const char *name) {
    double v = 0;
    vc_trainer_get(t, name, &v, NULL);
    return v;
}

int cmd_train(int argc, char **argv, vc_error *err) {
    cli_args a;
    static const char *const flags[] = {"nesterov", NULL};
    int rc = cli_parse(&a, "train", argc, argv, flags, err);
    if (rc) return rc;
    const char *arch = cli_opt(&a, "arch"), *out = cli_opt(&a, "o");
    const char *optim = cli_opt(&a, "optimizer"), *sched = cli_opt(&a, "schedule");
    if (a.n_pos) return cli_fail(err, VC_EINPUT, "train: unexpected argument '%s'", a.pos[0]);
    if (!arch) return cli_fail(err, VC_EINPUT, "train: missing --arch TEMPLATE.json (or a model file to train further)");
    if (!out) return cli_fail(err, VC_EINPUT, "train: missing -o OUT.safetensors");
    if (cli_check_ext("train", "-o", out, (const char *const[]){".safetensors", NULL}, err) < 0) return VC_EINPUT;

    vc_trainer *t;
    if ((rc = vc_trainer_new(&t, optim, err))) return rc;
    int epochs, batch, shards, seed, limit, test_limit, eval_batch;
    double lr, momentum, wd, beta1, beta2, eps;
    if ((rc = cli_int(&a, "epochs", 10, 1, 100000, &epochs, err)) ||
        (rc = cli_int(&a, "batch", 64, 1, 1 << 20, &batch, err)) ||
        (rc = cli_int(&a, "shards", 2, 1, 64, &shards, err)) ||
        (rc = cli_int(&a, "seed", 0, 0, 2147483647, &seed, err)) ||
        (rc = cli_int(&a, "limit", 0, 0, 2147483647, &limit, err)) ||
        (rc = cli_int(&a, "test-limit", 0, 0, 2147483647, &test_limit, err)) ||
        (rc = cli_int(&a, "eval-batch", 500, 1, 1 << 20, &eval_batch, err)) ||
        (rc = cli_double(&a, "lr", get(t, "lr"), 0, 1e6, &lr, err)) ||
        (rc = cli_double(&a, "momentum", get(t, "momentum"), 0, 1, &momentum, err)) ||
        (rc = cli_double(&a, "weight-decay", get(t, "weight_decay"), 0, 1e6, &wd, err)) ||
        (rc = cli_double(&a, "beta1", get(t, "beta1"), 0, 1, &beta1, err)) ||
        (rc = cli_double(&a, "beta2", get(t, "beta2"), 0, 1, &beta2, err)) ||
        (rc = cli_double(&a, "eps", get(t, "eps"), 0, 1, &eps, err))) {
        vc_trainer_free(t);
        return rc;
    }
    int nesterov = cli_flag(&a, "nesterov");
    const char *oname, *sname;
    vc_trainer_names(t, &oname, NULL, NULL);
    if (nesterov && (strcmp(oname, "sgd") || momentum <= 0)) {
        vc_trainer_free(t);
        return cli_fail(err, VC_EINPUT, "train: --nesterov needs --optimizer sgd with --momentum > 0");
    }
    const char *names[] = {"epochs", "batch", "shards", "seed", "eval_batch", "lr", "momentum", "weight_decay", "beta1", "beta2",
                           "eps", "nesterov"};
    double vals[] = {epochs, batch, shards, seed, eval_batch, lr, momentum, wd, beta1, beta2, eps, nesterov};
    for (int k = 0; !rc && k < (int)(sizeof vals / sizeof vals[0]); k++) rc = vc_trainer_set(t, names[k], vals[k], err);
    if (!rc && sched) rc = vc_trainer_schedule(t, sched, err);
    if (rc) { vc_trainer_free(t); return rc; }
    vc_trainer_names(t, NULL, &sname, NULL);

    // Every step frees and reallocates the same activation buffers: keep them
    // in the heap rather than returning them to the kernel each time.
    mallopt(M_MMAP_THRESHOLD, 256 << 20);
    mallopt(M_TRIM_THRESHOLD, 512 << 20);
    vc_model *m = NULL;
    if ((rc = vc_train_model_new(&m, arch, (unsigned long long)seed, err))) { vc_trainer_free(t); return rc; }
    vc_labelled *tr = NULL, *te = NULL;
    rc = cli_open_labelled(&tr, m, &a, "idx", "labels", "images", limit, 1, err);
    if (!rc) rc = cli_open_labelled(&te, m, &a, "test-idx", "test-labels", "test-images", test_limit, 0, err);
    if (!rc) rc = cli_check_unused(&a, err);
    if (rc) { vc_labelled_free(tr); vc_labelled_free(te); vc_model_free(m); vc_trainer_free(t); return rc; }
    int n_train = 0, n_test = 0;
    vc_labelled_size(tr, &n_train, NULL, NULL);
    if (te) vc_labelled_size(te, &n_test, NULL, NULL);
    const char *name;
    size_t params;
    vc_model_about(m, &name, NULL, NULL);
    vc_model_totals(m, NULL, NULL, &params, NULL);

    printf("training %s (%s): %zu parameters, %d training images, %d test images\n", vc_str(name), arch, params, n_train, n_test);
    printf("%s lr %g", oname, lr);
    if (!strcmp(oname, "sgd")) printf(" momentum %g%s", momentum, nesterov ? " nesterov" : "");
    printf(" weight decay %g, %s schedule, batch %d (%d shards), %d epochs, seed %d\n", wd, sname, batch, shards, epochs, seed);
    fflush(stdout);

    char cmd[4096] = "viscnn train";
    for (int i = 0; i < argc && strlen(cmd) < sizeof cmd - 256; i++)
        snprintf(cmd + strlen(cmd), sizeof cmd - strlen(cmd), " %s", argv[i]);
    double t0 = cli_now();
    train_view view = {epochs, isatty(2), batch, m, t, out, cmd, arch, n_train, n_test, 0, 0, VC_OK, {{0}}};
    vc_trainer_callbacks(t, on_batch, on_epoch, &view);
    rc = vc_train(t, m, tr, n_test ? te : NULL, err);
    if (!rc && view.save_rc) { rc = view.save_rc; *err = view.save_err; }
    char what[160];
    snprintf(what, sizeof what, "%s after %d epochs, %zu parameters", vc_str(name), epochs, params);
    if (!rc) cli_wrote(out, what, t0);
    vc_labelled_free(tr);
    vc_labelled_free(te);
    vc_trainer_free(t);
    vc_model_free(m);
    return rc;
}
