// cmd_importance.c: viscnn importance — node and edge scores over an image set.
#include <stdlib.h>
#include <string.h>
#include "cli.h"
#include "../contrast.h"
#include "../export.h"
#include "../imageset.h"
#include "../dist.h"
#include "../../engine/util.h"

// Evaluates a contrast over the set's categories (and "overall") into out.
int contrast_scores(vc_scores *out, const vc_set_scores *ss, const char *expr, vc_error *err) {
    vc_contrast *c;
    int rc = contrast_parse(&c, expr, err);
    if (rc) return rc;
    int n = ss->n_cat + 1;
    const char **names = malloc_check(n * sizeof(char *));
    const float **vals = malloc_check(n * sizeof(float *));
    size_t cnt = scores_count(&ss->overall);
    float *flat = malloc_check((size_t)n * cnt * sizeof(float)), *res = malloc_check(cnt * sizeof(float));
    for (int k = 0; k < n; k++) {
        const vc_scores *s = k < ss->n_cat ? &ss->cat[k] : &ss->overall;
        names[k] = k < ss->n_cat ? ss->cat_names[k] : "overall";
        scores_flatten(s, flat + (size_t)k * cnt);
        vals[k] = flat + (size_t)k * cnt;
    }
    rc = contrast_eval(c, n, names, vals, cnt, res, err);
    if (!rc) {
        scores_copy(out, &ss->overall);
        scores_unflatten(out, res);
    }
    free(names); free(vals); free(flat); free(res);
    contrast_free(c);
    return rc;
}

// Checks an expression against the set's categories before the long computation.
int contrast_check(const char *expr, const vc_imageset *set, vc_error *err) {
    vc_contrast *c;
    int rc = contrast_parse(&c, expr, err);
    if (rc) return rc;
    int n = set->n_cat + 1;
    const char **names = malloc_check(n * sizeof(char *));
    double *coef = malloc_check(n * sizeof(double)), k0;
    for (int k = 0; k < set->n_cat; k++) names[k] = set->cat_names[k];
    names[set->n_cat] = "overall";
    rc = contrast_linear(c, n, names, coef, &k0, err);
    free(names); free(coef);
    contrast_free(c);
    return rc;
}

int cmd_importance(int argc, char **argv, vc_error *err) {
    cli_args a;
    int rc = cli_parse(&a, "importance", argc, argv, (const char *const[]){"by-class", NULL}, err);
    if (rc) return rc;
    if (a.n_pos != 1) return vc_fail(err, VC_EINPUT, "importance: expected one MODEL argument, got %d", a.n_pos);
    const char *out = cli_opt(&a, "o"), *tstr = cli_opt(&a, "target"), *mstr = cli_opt(&a, "metric"),
               *expr = cli_opt(&a, "contrast");
    int by_class = cli_flag(&a, "by-class"), batch;
    if (!out) return vc_fail(err, VC_EINPUT, "importance: missing -o OUT.json|OUT.csv");
    int csv = cli_check_ext("importance", "-o", out, (const char *const[]){".json", ".csv", NULL}, err);
    if (csv < 0) return VC_EINPUT;
    const char *layers[64];
    int n_layers = cli_opt_all(&a, "layer", layers, 64);
    if (n_layers > 64) return vc_fail(err, VC_EINPUT, "importance: at most 64 --layer options");
    double t0 = cli_now();
    if ((rc = cli_int(&a, "batch", 8, 1, 4096, &batch, err))) return rc;
    vc_metric metric = VC_M_ACTXGRAD;
    if (mstr && (rc = metric_parse(&metric, mstr, err))) return rc;
    vc_model *m;
    if ((rc = vc_model_load(&m, a.pos[0], err))) return rc;
    vc_target t;
    vc_imageset set = {0};
    vc_set_scores ss = {0};
    vc_scores con = {0};
    vc_scores_view view = {0};
    rc = target_parse(&t, m, tstr ? tstr : "loss", err);
    if (!rc) rc = scores_view_check(m, layers, n_layers, "importance", err);
    if (!rc && metric == VC_M_WEIGHT && !cli_opt(&a, "images") && !cli_opt(&a, "input")) {
        if (by_class || expr) rc = vc_fail(err, VC_EINPUT, "importance: --by-class and --contrast need images (categories)");
        else imageset_weights_only(&set, m);   // weight scores read no image
    } else if (!rc) rc = imageset_open(&set, m, &a, by_class, err);
    if (!rc) rc = cli_check_unused(&a, err);
    if (!rc && expr) rc = contrast_check(expr, &set, err);
    if (!rc) imageset_warn(&set);
    if (!rc) rc = importance_over_set(&ss, m, metric, &t, &set, batch, err);
    if (!rc && expr) rc = contrast_scores(&con, &ss, expr, err);
    int write = !rc && dist_is_root();   // under MPI every rank has the scores; rank 0 writes
    FILE *f = !write ? NULL : export_open(out, err);
    if (write && !f) rc = VC_EINPUT;
    if (f && csv) {
        fprintf(f, by_class || expr ? "kind,layer,out,in,score,category\n" : "kind,layer,out,in,score\n");
        export_scores_csv(f, m, scores_view(&view, &ss.overall, m, layers, n_layers), by_class || expr ? "overall" : NULL);
        for (int c = 0; by_class && c < ss.n_cat; c++)
            export_scores_csv(f, m, scores_view(&view, &ss.cat[c], m, layers, n_layers), ss.cat_names[c]);
        if (expr) export_scores_csv(f, m, scores_view(&view, &con, m, layers, n_layers), expr);
        rc = export_close(f, out, 1, err);
    } else if (f) {
        fprintf(f, "{\"metric\": \"%s\", \"target\": ", vc_metric_names[metric]);
        export_string(f, t.text);
        fprintf(f, ", \"images\": %d, \"source\": ", ss.images);
        export_string(f, set.source);
        fputs(", \"model\": ", f);
        export_string(f, m->path);
        fputs(",\n\"layers\": ", f);
        export_layers_json(f, m, scores_view(&view, &ss.overall, m, layers, n_layers));
        if (by_class) {
            fputs(",\n\"categories\": {", f);
            for (int c = 0; c < ss.n_cat; c++) {
                fputs(c ? ",\n" : "\n", f);
                export_string(f, ss.cat_names[c]);
                fprintf(f, ": {\"images\": %d, \"layers\": ", ss.cat_images[c]);
                export_layers_json(f, m, scores_view(&view, &ss.cat[c], m, layers, n_layers));
                fputc('}', f);
            }
            fputs("}", f);
        }
        if (expr) {
            fputs(",\n\"contrast\": {\"expression\": ", f);
            export_string(f, expr);
            fputs(", \"layers\": ", f);
            export_layers_json(f, m, scores_view(&view, &con, m, layers, n_layers));
            fputc('}', f);
        }
        fputs("}\n", f);
        rc = export_close(f, out, 1, err);
    }
    if (!rc && write) {
        char what[200];
        char over[64] = "from the weights alone";
        if (ss.images || metric != VC_M_WEIGHT) snprintf(over, sizeof over, "over %d images", ss.images);
        snprintf(what, sizeof what, "%s scores of %d layer%s %s%s%s", vc_metric_names[metric], view.s.n_layers,
                 view.s.n_layers == 1 ? "" : "s", over, by_class ? ", per class" : "", expr ? ", a contrast" : "");
        cli_wrote(out, what, t0);
    }
    free(view.s.l);
    if (con.l) scores_free(&con);
    set_scores_free(&ss);
    imageset_free(&set);
    vc_model_free(m);
    return rc;
}
