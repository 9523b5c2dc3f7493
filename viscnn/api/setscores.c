// setscores.c (api): importance over a whole image set, per category and
// overall, contrasts between categories, and the JSON/CSV exports that
// `viscnn importance` writes (since 0.2); the work is viscnn/importance_set.c.
#include <stdlib.h>
#include <string.h>
#include "api.h"
#include "../export.h"
#include "../imageset.h"
#include "../projection.h"
#include "../../engine/util.h"

struct vc_setscores {
    const vc_model *m;
    vc_metric metric;
    vc_target t;
    const vc_imageset *set;   // the caller's, or &weights
    vc_imageset weights;      // the empty set of the weight metric without images
    vc_set_scores ss;
    vc_scores con;            // the contrast's scores, when con_expr
    char *con_expr;
};

int vc_metric_check(const char *metric, vc_error *err) {
    API_NEED(metric, err);
    vc_metric k;
    return metric_parse(&k, metric, err);
}

int vc_contrast_check(const char *expr, const vc_imageset *set, vc_error *err) {
    API_NEED(expr, err);
    API_NEED(set, err);
    return contrast_check(expr, set, err);
}

int vc_importance_over_set(vc_setscores **out, const vc_model *m, const char *metric, const char *target, const vc_imageset *set,
                           int batch, vc_error *err) {
    API_NEED(out, err);
    *out = NULL;
    API_NEED(m, err);
    API_NEED(metric, err);
    API_NEED(target, err);
    if (batch < 1) return vc_fail(err, VC_EINPUT, "%s: batch %d; need at least 1", __func__, batch);
    vc_setscores *s = calloc_check(1, sizeof *s);
    s->m = m;
    int rc = metric_parse(&s->metric, metric, err);
    if (!rc) rc = target_parse(&s->t, m, target, err);
    if (!rc && !set && s->metric != VC_M_WEIGHT)
        rc = vc_fail(err, VC_EINPUT, "%s: the %s metric needs images (only weight scores read none)", __func__, metric);
    if (!rc && !set) imageset_weights_only(&s->weights, m);
    s->set = set ? set : &s->weights;
    if (!rc) rc = importance_over_set(&s->ss, m, s->metric, &s->t, s->set, batch, err);
    if (rc) { vc_setscores_free(s); return rc; }
    *out = s;
    return VC_OK;
}

void vc_setscores_free(vc_setscores *s) {
    if (!s) return;
    if (s->con.l) scores_free(&s->con);
    free(s->con_expr);
    set_scores_free(&s->ss);
    imageset_free(&s->weights);
    free(s);
}

int vc_setscores_contrast(vc_setscores *s, const char *expr, vc_error *err) {
    API_NEED(s, err);
    API_NEED(expr, err);
    vc_scores con = {0};
    int rc = contrast_scores(&con, &s->ss, expr, err);
    if (rc) return rc;
    if (s->con.l) scores_free(&s->con);
    free(s->con_expr);
    s->con = con;
    s->con_expr = strdup_check(expr);
    return VC_OK;
}

int vc_setscores_size(const vc_setscores *s, int *images, int *n_categories, vc_error *err) {
    API_NEED(s, err);
    if (images) *images = s->ss.images;
    if (n_categories) *n_categories = s->ss.n_cat;
    return VC_OK;
}

int vc_setscores_write(const vc_setscores *s, const char *path, int by_class, const char *const *layers, int n_layers,
                       int *n_written, vc_error *err) {
    API_NEED(s, err);
    API_NEED(path, err);
    const char *dot = strrchr(path, '.');
    int csv = dot && !strcmp(dot, ".csv");
    if (!csv && !(dot && !strcmp(dot, ".json")))
        return vc_fail(err, VC_EINPUT, "%s: the output must end in .json or .csv", path);
    const vc_model *m = s->m;
    const vc_set_scores *ss = &s->ss;
    const char *expr = s->con_expr;
    vc_scores_view view = {0};
    FILE *f = export_open(path, err);
    if (!f) return VC_EINPUT;
    if (csv) {
        fprintf(f, by_class || expr ? "kind,layer,out,in,score,category\n" : "kind,layer,out,in,score\n");
        export_scores_csv(f, m, scores_view(&view, &ss->overall, m, layers, n_layers), by_class || expr ? "overall" : NULL);
        for (int c = 0; by_class && c < ss->n_cat; c++)
            export_scores_csv(f, m, scores_view(&view, &ss->cat[c], m, layers, n_layers), ss->cat_names[c]);
        if (expr) export_scores_csv(f, m, scores_view(&view, &s->con, m, layers, n_layers), expr);
    } else {
        fprintf(f, "{\"metric\": \"%s\", \"target\": ", vc_metric_names[s->metric]);
        export_string(f, s->t.text);
        fprintf(f, ", \"images\": %d, \"source\": ", ss->images);
        export_string(f, s->set->source);
        fputs(", \"model\": ", f);
        export_string(f, m->path);
        fputs(",\n\"layers\": ", f);
        export_layers_json(f, m, scores_view(&view, &ss->overall, m, layers, n_layers));
        if (by_class) {
            fputs(",\n\"categories\": {", f);
            for (int c = 0; c < ss->n_cat; c++) {
                fputs(c ? ",\n" : "\n", f);
                export_string(f, ss->cat_names[c]);
                fprintf(f, ": {\"images\": %d, \"layers\": ", ss->cat_images[c]);
                export_layers_json(f, m, scores_view(&view, &ss->cat[c], m, layers, n_layers));
                fputc('}', f);
            }
            fputs("}", f);
        }
        if (expr) {
            fputs(",\n\"contrast\": {\"expression\": ", f);
            export_string(f, expr);
            fputs(", \"layers\": ", f);
            export_layers_json(f, m, scores_view(&view, &s->con, m, layers, n_layers));
            fputc('}', f);
        }
        fputs("}\n", f);
    }
    if (n_written) *n_written = view.s.n_layers;
    free(view.s.l);
    return export_close(f, path, 1, err);
}

int vc_projection_check(const char *projection, int *needs_scores, vc_error *err) {
    API_NEED(projection, err);
    vc_projection p;
    int rc = projection_parse(&p, projection, err);
    if (!rc && needs_scores) *needs_scores = projection_needs_images(p);
    return rc;
}

int vc_project_write(const vc_model *m, const char *projection, const vc_setscores *s, const char *path, int *n_layers,
                     int *n_nodes, vc_error *err) {
    API_NEED(m, err);
    API_NEED(projection, err);
    API_NEED(path, err);
    vc_projection proj;
    int rc = projection_parse(&proj, projection, err);
    if (rc) return rc;
    int need = projection_needs_images(proj);
    if (need && !s) return vc_fail(err, VC_EINPUT, "%s: --projection %s needs per-category scores", __func__, projection);
    if (s && s->m != m) return vc_fail(err, VC_EINPUT, "%s: the scores belong to another model", __func__);
    vc_dgraph g = {0};
    vc_layout lay = {0};
    dgraph_build(&g, m);
    rc = projection_run(&lay, m, &g, proj, need ? &s->ss : NULL, err);
    FILE *f = rc ? NULL : export_open(path, err);
    if (!rc && !f) rc = VC_EINPUT;
    if (f) {
        fprintf(f, "{\"projection\": \"%s\", \"model\": ", vc_projection_names[proj]);
        export_string(f, m->path);
        if (need) {
            fprintf(f, ", \"metric\": \"%s\", \"target\": ", vc_metric_names[s->metric]);
            export_string(f, s->t.text);
            fprintf(f, ", \"images\": %d, \"source\": ", s->ss.images);
            export_string(f, s->set->source);
            fputs(", \"categories\": [", f);
            for (int c = 0; c < s->ss.n_cat; c++) {
                if (c) fputs(", ", f);
                export_string(f, s->ss.cat_names[c]);
            }
            fputc(']', f);
        }
        fputs(",\n", f);
        projection_export_json(f, m, &g, &lay);
        fputs("}\n", f);
        rc = export_close(f, path, 1, err);
    }
    if (!rc && n_layers) *n_layers = g.n_layers;
    if (!rc && n_nodes) *n_nodes = dgraph_nodes(&g);
    layout_free(&lay);
    dgraph_free(&g);
    return rc;
}
