// cmd_importance.c: viscnn importance — node and edge scores over an image set.
#include <stdlib.h>
#include <string.h>
#include "cli.h"

int cmd_importance(int argc, char **argv, vc_error *err) {
    cli_args a;
    int rc = cli_parse(&a, "importance", argc, argv, (const char *const[]){"by-class", NULL}, err);
    if (rc) return rc;
    if (a.n_pos != 1) return cli_fail(err, VC_EINPUT, "importance: expected one MODEL argument, got %d", a.n_pos);
    const char *out = cli_opt(&a, "o"), *tstr = cli_opt(&a, "target"), *mstr = cli_opt(&a, "metric"),
               *expr = cli_opt(&a, "contrast");
    int by_class = cli_flag(&a, "by-class"), batch;
    if (!out) return cli_fail(err, VC_EINPUT, "importance: missing -o OUT.json|OUT.csv");
    int csv = cli_check_ext("importance", "-o", out, (const char *const[]){".json", ".csv", NULL}, err);
    if (csv < 0) return VC_EINPUT;
    const char *layers[64];
    int n_layers = cli_opt_all(&a, "layer", layers, 64);
    if (n_layers > 64) return cli_fail(err, VC_EINPUT, "importance: at most 64 --layer options");
    double t0 = cli_now();
    if ((rc = cli_int(&a, "batch", 8, 1, 4096, &batch, err))) return rc;
    const char *metric = mstr ? mstr : "actxgrad", *target = tstr ? tstr : "loss";
    if (mstr && (rc = vc_metric_check(mstr, err))) return rc;
    vc_model *m;
    if ((rc = vc_model_load(&m, a.pos[0], err))) return rc;
    vc_imageset *set = NULL;
    vc_setscores *ss = NULL;
    int weight = !strcmp(metric, "weight");
    rc = vc_target_check(m, target, NULL, err);
    if (!rc) rc = cli_check_layers(m, layers, n_layers, "importance", err);
    if (!rc && weight && !cli_opt(&a, "images") && !cli_opt(&a, "input")) {
        if (by_class || expr) rc = cli_fail(err, VC_EINPUT, "importance: --by-class and --contrast need images (categories)");
        // else: weight scores read no image (set stays NULL)
    } else if (!rc) rc = cli_open_set(&set, m, &a, by_class, err);
    if (!rc) rc = cli_check_unused(&a, err);
    if (!rc && expr) rc = vc_contrast_check(expr, set, err);
    if (!rc) vc_imageset_warn(set);
    if (!rc) rc = vc_importance_over_set(&ss, m, metric, target, set, batch, err);
    if (!rc && expr) rc = vc_setscores_contrast(ss, expr, err);
    int write = !rc && vc_dist_is_root(), n_written = 0, images = 0;   // under MPI every rank has the scores; rank 0 writes
    if (write) rc = vc_setscores_write(ss, out, by_class, layers, n_layers, &n_written, err);
    if (!rc && write) {
        vc_setscores_size(ss, &images, NULL, NULL);
        char what[200];
        char over[64] = "from the weights alone";
        if (images || !weight) snprintf(over, sizeof over, "over %d images", images);
        snprintf(what, sizeof what, "%s scores of %d layer%s %s%s%s", metric, n_written,
                 n_written == 1 ? "" : "s", over, by_class ? ", per class" : "", expr ? ", a contrast" : "");
        cli_wrote(out, what, t0);
    }
    vc_setscores_free(ss);
    vc_imageset_free(set);
    vc_model_free(m);
    return rc;
}
