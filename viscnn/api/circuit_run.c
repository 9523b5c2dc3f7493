// circuit_run.c (api): viscnn.h's vc_circuit_find — a circuit from an image
// set's scores, as `viscnn circuit` makes it: scores (per category, or a
// contrast), extraction (single-shot or iterative), faithfulness and its
// curve — and its exports: the JSON, the pruned model, the text summary
// (since 0.2; docs/circuits.md is the contract, viscnn/circuit.c the work).
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "api.h"
#include "../dist.h"
#include "../export.h"
#include "../imageset.h"
#include "../../engine/util.h"

#define MAX_CURVE 64

struct circuit_run {
    vc_metric metric;
    vc_circuit_spec spec;
    const vc_imageset *set, *ev;   // the scoring set; where faithfulness is measured
    int held_out;
    vc_set_scores ss;
    vc_scores con, iter_scores, norm;
    const vc_scores *raw;          // the scores the circuit comes from
    size_t clamped, n_scores;
    int faith, n_curve;
    vc_faith fc, curve[MAX_CURVE];
    double curve_fr[MAX_CURVE];
    unsigned char *show;           // layers written and printed (NULL: all)
    const char *scores_name;       // the contrast, the category or "overall"
    char *expr;
};

// One line per layer: kept nodes and edges, and the strongest kept edge.
static void print_summary(FILE *f, const vc_model *m, const vc_scores *raw, const vc_circuit *c, const unsigned char *show) {
    for (int l = 0; l < c->n_layers; l++) {
        const vc_layer_scores *L = &raw->l[l];
        if (show && !show[L->node]) continue;
        int nodes = 0, edges = 0, bj = -1, bi = -1;
        for (int j = 0; j < L->cout; j++) nodes += c->node[l][j];
        for (int j = 0; j < L->cout; j++)
            for (int i = 0; i < L->cg; i++) {
                size_t e = (size_t)j * L->cg + i;
                if (!c->edge[l][e]) continue;
                edges++;
                if (bj < 0 || L->edges[e] > L->edges[(size_t)bj * L->cg + bi]) { bj = j; bi = i; }
            }
        fprintf(f, "  %-28s %5d/%-5d nodes %7d/%-7d edges", m->nodes[L->node].name, nodes, L->cout, edges, L->cout * L->cg);
        if (bj >= 0) fprintf(f, "   strongest edge %d <- %d (%.3g)", bj, bi, L->edges[(size_t)bj * L->cg + bi]);
        fprintf(f, "\n");
    }
}

// The images faithfulness is measured on: of the scoring set (in-sample) or
// of --eval-images (held-out), restricted to the category the scores are
// for, or to the categories a contrast adds (positive coefficient).
static int eval_indices(int **idx, int *n, const vc_imageset *ev, int held_out, const char *cat, const char *expr,
                        const vc_imageset *set, vc_error *err) {
    unsigned char *cats = NULL;
    int rc = VC_OK;
    if (cat && strcmp(cat, "overall")) {
        int c = imageset_find_category(ev, cat);
        if (c < 0 && held_out && ev->n_cat > 1)
            rc = vc_fail(err, VC_EINPUT, "circuit: --eval-images %s has no category %s (give its folder, or one with a %s subfolder)",
                         ev->source, cat, cat);
        else if (c >= 0 && ev->n_cat > 1) { cats = calloc_check(ev->n_cat, 1); cats[c] = 1; }
    } else if (expr) {
        double *coef = malloc_check((set->n_cat + 1) * sizeof(double));
        rc = contrast_terms(expr, set, coef, err);
        int any = coef[set->n_cat] > 0;
        for (int k = 0; k < set->n_cat; k++) any |= coef[k] > 0;
        if (!rc && !any)
            rc = vc_fail(err, VC_EINPUT, "circuit: --faithfulness: the contrast %s adds no category (no positive coefficient), "
                         "so there are no images to measure on", expr);
        if (!rc && !(coef[set->n_cat] > 0) && ev->n_cat > 1) {
            cats = calloc_check(ev->n_cat, 1);
            for (int k = 0; k < set->n_cat && !rc; k++) {
                if (!(coef[k] > 0)) continue;
                int c = imageset_find_category(ev, set->cat_names[k]);
                if (c < 0) rc = vc_fail(err, VC_EINPUT, "circuit: --eval-images %s has no category %s (named by the contrast)",
                                        ev->source, set->cat_names[k]);
                else cats[c] = 1;
            }
        }
        free(coef);
    }
    *idx = malloc_check((ev->n + 1) * sizeof(int));
    *n = rc ? 0 : imageset_indices(ev, cats, *idx);
    free(cats);
    if (!rc && *n == 0) rc = vc_fail(err, VC_EINPUT, "circuit: no images to measure faithfulness on in %s", ev->source);
    return rc;
}


void circuit_run_free(struct circuit_run *r) {
    if (!r) return;
    free(r->show);
    free(r->expr);
    if (r->norm.l) scores_free(&r->norm);
    if (r->con.l) scores_free(&r->con);
    if (r->iter_scores.l) scores_free(&r->iter_scores);
    set_scores_free(&r->ss);
    free(r);
}

void vc_circuit_settings_default(vc_circuit_settings *s) {
    if (!s) return;
    memset(s, 0, sizeof *s);
    s->node_threshold = NAN;
    s->edge_threshold = NAN;
    s->batch = 8;
}

static int spec_of(vc_circuit_spec *spec, const vc_circuit_settings *s, vc_error *err) {
    circuit_spec_init(spec);
    int rc = s->mode ? circuit_mode_parse(spec, s->mode, err) : VC_OK;
    if (rc) return rc;
    spec->node_threshold = s->node_threshold;
    spec->edge_threshold = s->edge_threshold;
    spec->iterative = s->iterative;
    if ((rc = circuit_spec_check(spec, err))) {
        char why[sizeof err->msg];
        snprintf(why, sizeof why, "%s", err ? err->msg : "");
        return vc_fail(err, VC_EINPUT, "circuit: %s", why);
    }
    return VC_OK;
}

int vc_circuit_check(const vc_circuit_settings *s, vc_error *err) {
    API_NEED(s, err);
    vc_circuit_spec spec;
    int rc = spec_of(&spec, s, err);
    if (rc) return rc;
    if (s->category && s->contrast) return vc_fail(err, VC_EINPUT, "circuit: give --category or --contrast, not both");
    if (s->iterative && s->contrast)
        return vc_fail(err, VC_EINPUT, "circuit: --iterative does not apply to --contrast (re-scoring needs one image set's scores)");
    if (s->batch < 1) return vc_fail(err, VC_EINPUT, "circuit: batch %d; need at least 1", s->batch);
    if (s->n_curve > MAX_CURVE) return vc_fail(err, VC_EINPUT, "circuit: at most %d curve fractions", MAX_CURVE);
    for (int k = 0; k < s->n_curve; k++)
        if (!(s->curve[k] > 0 && s->curve[k] <= 1)) return vc_fail(err, VC_EINPUT, "circuit: curve fraction %g outside (0, 1]", s->curve[k]);
    vc_metric metric;
    return s->metric ? metric_parse(&metric, s->metric, err) : VC_OK;
}

int vc_circuit_find(vc_subnet **out, const vc_model *m, const vc_imageset *set, const vc_circuit_settings *s, vc_error *err) {
    API_NEED(out, err);
    *out = NULL;
    API_NEED(m, err);
    API_NEED(set, err);
    API_NEED(s, err);
    int rc = vc_circuit_check(s, err);
    if (rc) return rc;
    struct circuit_run *r = calloc_check(1, sizeof *r);
    vc_subnet *c = calloc_check(1, sizeof *c);
    c->m = m;
    c->run = r;
    spec_of(&r->spec, s, err);
    r->metric = VC_CIRCUIT_DEFAULT_METRIC;
    if (s->metric) metric_parse(&r->metric, s->metric, err);
    r->set = set;
    r->ev = s->eval ? s->eval : set;
    r->held_out = s->eval != NULL;
    r->faith = s->faithfulness;
    const char *cat = s->category, *expr = s->contrast;
    r->expr = expr ? strdup_check(expr) : NULL;
    r->scores_name = r->expr ? r->expr : cat ? cat : "overall";
    if (s->n_curve < 0) {
        memcpy(r->curve_fr, vc_curve_fractions, sizeof vc_curve_fractions);
        r->n_curve = VC_CURVE_N;
    } else {
        memcpy(r->curve_fr, s->curve, (size_t)s->n_curve * sizeof(double));
        r->n_curve = s->n_curve;
    }
    int *eidx = NULL, n_eval = 0, batch = s->batch;
    vc_faith_ref ref = {0};
    vc_target *t = &c->target;
    rc = target_parse(t, m, s->target ? s->target : "loss", err);
    if (s->n_layers) r->show = calloc_check(m->n_nodes, 1);
    for (int k = 0; !rc && k < s->n_layers; k++) {
        int node = vc_model_find(m, s->layers[k]);
        if (node <= 0) rc = vc_fail(err, VC_EINPUT, "circuit: --layer %s: no such layer in %s (see viscnn info)", s->layers[k], m->path);
        else r->show[node] = 1;
    }
    if (!rc && cat && strcmp(cat, "overall") && imageset_find_category(set, cat) < 0)
        rc = vc_fail(err, VC_EINPUT, "circuit: --category %s: no such category in %s", cat, set->source);
    if (!rc && expr) rc = contrast_check(expr, set, err);
    if (!rc && r->faith) rc = eval_indices(&eidx, &n_eval, r->ev, r->held_out, cat, expr, set, err);
    if (!rc) imageset_warn(set);
    if (!rc && r->held_out) imageset_warn(r->ev);
    if (!rc) rc = importance_over_set(&r->ss, m, r->metric, t, set, batch, err);
    if (!rc && expr) {
        rc = contrast_scores(&r->con, &r->ss, expr, err);
        if (!rc) rc = contrast_clamped(&r->clamped, &r->n_scores, &r->ss, expr, err);
        r->raw = &r->con;
        if (!rc && dist_is_root()) {
            fprintf(stderr, "circuit: contrast \"%s\" clamped %zu of %zu scores (%.1f%%) from negative to 0\n", expr, r->clamped,
                    r->n_scores, r->n_scores ? 100.0 * (double)r->clamped / (double)r->n_scores : 0.0);
            size_t positive = 0;
            float *flat = malloc_check((r->n_scores + 1) * sizeof(float));
            scores_flatten(&r->con, flat);
            for (size_t k = 0; k < r->n_scores; k++) positive += flat[k] > 0;
            free(flat);
            if (!positive)
                fprintf(stderr, "circuit: warning: no score of the contrast is above 0 (%s): the circuit ranks ties "
                                "only and means nothing\n", r->clamped == r->n_scores ? "every one was negative" : "all were 0 or below");
            if (t->kind == VC_T_LOSS)
                fprintf(stderr, "circuit: note: with --target loss each category's scores follow its own label, so the "
                                "contrast compares different targets (docs/circuits.md)\n");
        }
    } else if (!rc) r->raw = set_scores_find(&r->ss, cat ? cat : "overall");
    const vc_scores *single = r->raw;   // the curve is single-shot keep:F from these
    if (!rc && s->iterative > 1) {
        rc = circuit_extract_iterative(&c->c, &r->iter_scores, m, r->metric, t, set, cat, r->raw, &r->spec, batch, err);
        if (!rc) r->raw = &r->iter_scores;
    } else if (!rc) rc = circuit_extract(&c->c, m, r->raw, t, &r->spec, err);
    // Under MPI every rank has the scores and the circuit (the iterative rounds
    // score on all ranks); faithfulness is rank 0's.
    if (!rc && r->faith && dist_is_root()) {
        rc = faith_reference(&ref, m, t, r->ev, eidx, n_eval, batch, err);
        if (!rc) rc = faith_measure(&r->fc, &ref, m, t, r->raw, &c->c, r->ev, batch, err);
        if (!rc && s->n_curve) rc = faith_curve(r->curve, r->curve_fr, r->n_curve, m, single, t, &ref, r->ev, batch, err);
    }
    free(eidx);
    faith_reference_free(&ref);
    if (!rc) {
        scores_copy(&c->layout, r->raw);
        circuit_normalize(&r->norm, r->raw, m, t);
    }
    if (rc) { vc_subnet_free(c); return rc; }
    *out = c;
    return VC_OK;
}

static int need_run(const vc_subnet *c, const char *fn, vc_error *err) {
    if (!c->run) return vc_fail(err, VC_EINPUT, "%s: the circuit was not made by vc_circuit_find", fn);
    return VC_OK;
}

int vc_subnet_write_pruned(const vc_subnet *c, const char *path, vc_error *err) {
    API_NEED(c, err);
    API_NEED(path, err);
    return circuit_write_pruned(path, c->m, &c->layout, &c->c, err);
}

int vc_subnet_write_json(const vc_subnet *c, const char *path, vc_error *err) {
    API_NEED(c, err);
    API_NEED(path, err);
    int rc = need_run(c, __func__, err);
    if (rc) return rc;
    const struct circuit_run *r = c->run;
    const vc_model *m = c->m;
    FILE *f = export_open(path, err);
    if (!f) return VC_EINPUT;
    circuit_write_head_json(f, m, &c->target, r->metric, r->ss.images, r->set->source, r->scores_name, &r->spec, &c->c);
    if (r->expr) fprintf(f, ",\n\"contrast\": {\"clamped\": %zu, \"scores\": %zu}", r->clamped, r->n_scores);
    if (r->faith) circuit_write_faithfulness_json(f, &c->target, r->held_out, r->ev->source, &r->fc, r->curve, r->curve_fr, r->n_curve);
    fputs(",\n\"layers\": ", f);
    circuit_write_layers_json_only(f, m, &c->target, r->raw, &r->norm, &c->c, r->show);
    fputs("}\n", f);
    return export_close(f, path, 1, err);
}

int vc_subnet_summary(const vc_subnet *c, FILE *f, const char *json_path, vc_error *err) {
    API_NEED(c, err);
    API_NEED(f, err);
    int rc = need_run(c, __func__, err);
    if (rc) return rc;
    const struct circuit_run *r = c->run;
    const vc_circuit *cc = &c->c;
    char mode_text[64];
    circuit_spec_text(&r->spec, mode_text, sizeof mode_text);
    print_summary(f, c->m, r->raw, cc, r->show);
    fprintf(f, "circuit (%s, %s): %zu of %zu nodes, %zu of %zu edges (selected %zu nodes, %zu edges; dead parts removed)",
            vc_metric_names[r->metric], mode_text, cc->n_nodes, cc->total_nodes, cc->n_edges, cc->total_edges, cc->sel_nodes,
            cc->sel_edges);
    fprintf(f, " -> %s\n", json_path ? json_path : "");
    if (r->faith) {
        const vc_faith *fc = &r->fc;
        if (r->held_out) fprintf(f, "faithfulness, held-out, on %d images of %s: r = ", fc->images, r->ev->source);
        else fprintf(f, "faithfulness, IN-SAMPLE (on %d of the images the scores came from; --eval-images PATH gives a "
                        "held-out figure): r = ", fc->images);
        if (fc->r_note) fprintf(f, "undefined (%s)", fc->r_note); else fprintf(f, "%.4f", fc->r);
        fprintf(f, ", relative error %.4g", fc->rel_error);
        if (c->target.kind != VC_T_NODE) fprintf(f, ", top-1 agreement %.3f", fc->top1);
        fprintf(f, "\n");
        for (int k = 0; k < r->n_curve; k++) {
            fprintf(f, "  keep %-6g %7zu edges  r = ", r->curve_fr[k], r->curve[k].edges);
            if (r->curve[k].r_note) fprintf(f, "undefined"); else fprintf(f, "%.4f", r->curve[k].r);
            fprintf(f, "  relative error %.4g", r->curve[k].rel_error);
            if (c->target.kind != VC_T_NODE) fprintf(f, "  top-1 agreement %.3f", r->curve[k].top1);
            fprintf(f, "\n");
        }
    }
    return VC_OK;
}
