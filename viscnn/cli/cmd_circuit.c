// cmd_circuit.c: viscnn circuit — extract a circuit, measure it, export it
// (docs/circuits.md is the contract; the work is in viscnn/circuit.c).
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "../circuit.h"
#include "cli.h"
#include "../export.h"
#include "../imageset.h"
#include "../dist.h"
#include "../../engine/util.h"

#define MAX_CURVE 64

// One line per layer: kept nodes and edges, and the strongest kept edge.
static void print_summary(const vc_model *m, const vc_scores *raw, const vc_circuit *c, const unsigned char *show) {
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
        printf("  %-28s %5d/%-5d nodes %7d/%-7d edges", m->nodes[L->node].name, nodes, L->cout, edges, L->cout * L->cg);
        if (bj >= 0) printf("   strongest edge %d <- %d (%.3g)", bj, bi, L->edges[(size_t)bj * L->cg + bi]);
        printf("\n");
    }
}

// "--curve" may stand alone (the default fractions) or take F,F,...: the
// parser knows only flags and options, so a bare --curve gets the value "".
static int is_fraction_list(const char *s) {
    if (!*s) return 0;
    for (;;) {
        char *end;
        strtod(s, &end);
        if (end == s) return 0;
        if (!*end) return 1;
        if (*end != ',') return 0;
        s = end + 1;
    }
}

static int parse_curve(double *fr, int *n, const char *s, vc_error *err) {
    *n = 0;
    if (!*s) {
        memcpy(fr, vc_curve_fractions, sizeof vc_curve_fractions);
        *n = VC_CURVE_N;
        return VC_OK;
    }
    while (*s) {
        char *end;
        double v = strtod(s, &end);
        if (end == s || !(v > 0 && v <= 1) || (*end && *end != ',') || *n >= MAX_CURVE)
            return vc_fail(err, VC_EINPUT, "circuit: --curve: expected up to %d kept fractions in (0, 1], comma-separated", MAX_CURVE);
        fr[(*n)++] = v;
        s = *end ? end + 1 : end;
    }
    return VC_OK;
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

int cmd_circuit(int argc, char **argv, vc_error *err) {
    char **av = malloc_check((2 * (size_t)argc + 1) * sizeof(char *));
    int ac = 0;
    for (int k = 0; k < argc; k++) {
        av[ac++] = argv[k];
        if (!strcmp(argv[k], "--curve") && !(k + 1 < argc && is_fraction_list(argv[k + 1]))) av[ac++] = "";
    }
    cli_args a;
    int rc = cli_parse(&a, "circuit", ac, av, (const char *const[]){"faithfulness", NULL}, err);
    free(av);
    if (rc) return rc;
    if (a.n_pos != 1) return vc_fail(err, VC_EINPUT, "circuit: expected one MODEL argument, got %d", a.n_pos);
    const char *out = cli_opt(&a, "o"), *tstr = cli_opt(&a, "target"), *mstr = cli_opt(&a, "metric"),
               *mode_s = cli_opt(&a, "mode"), *pruned = cli_opt(&a, "pruned"), *cat = cli_opt(&a, "category"),
               *expr = cli_opt(&a, "contrast"), *tn_s = cli_opt(&a, "node-threshold"), *te_s = cli_opt(&a, "edge-threshold"),
               *eval_path = cli_opt(&a, "eval-images"), *curve_s = cli_opt(&a, "curve");
    int faith = cli_flag(&a, "faithfulness"), batch, n_curve = 0, iterative;
    double curve_fr[MAX_CURVE];
    if (!out) return vc_fail(err, VC_EINPUT, "circuit: missing -o OUT.json");
    if (cli_check_ext("circuit", "-o", out, (const char *const[]){".json", NULL}, err) < 0) return VC_EINPUT;
    if (pruned && cli_check_ext("circuit", "--pruned", pruned, (const char *const[]){".safetensors", NULL}, err) < 0)
        return VC_EINPUT;
    const char *layers[64];
    int n_layers = cli_opt_all(&a, "layer", layers, 64);
    if (n_layers > 64) return vc_fail(err, VC_EINPUT, "circuit: at most 64 --layer options");
    double t0 = cli_now();
    if ((rc = cli_int(&a, "batch", 8, 1, 4096, &batch, err))) return rc;
    if ((rc = cli_int(&a, "iterative", 0, 1, 100, &iterative, err))) return rc;
    if (eval_path && !faith) return vc_fail(err, VC_EINPUT, "circuit: --eval-images goes with --faithfulness (it says where to measure)");
    if (curve_s && !faith) return vc_fail(err, VC_EINPUT, "circuit: --curve goes with --faithfulness");
    if (curve_s && (rc = parse_curve(curve_fr, &n_curve, curve_s, err))) return rc;
    vc_circuit_spec spec;
    circuit_spec_init(&spec);
    if (mode_s && (rc = circuit_mode_parse(&spec, mode_s, err))) return rc;
    char *end;
    spec.node_threshold = tn_s ? strtod(tn_s, &end) : NAN;
    if (tn_s && (end == tn_s || *end)) return vc_fail(err, VC_EINPUT, "circuit: --node-threshold %s: expected a number in [0, 1]", tn_s);
    spec.edge_threshold = te_s ? strtod(te_s, &end) : NAN;
    if (te_s && (end == te_s || *end)) return vc_fail(err, VC_EINPUT, "circuit: --edge-threshold %s: expected a number in [0, 1]", te_s);
    spec.iterative = iterative;
    if ((rc = circuit_spec_check(&spec, err))) {
        char why[sizeof err->msg];
        snprintf(why, sizeof why, "%s", err->msg);
        return vc_fail(err, VC_EINPUT, "circuit: %s", why);
    }
    if (cat && expr) return vc_fail(err, VC_EINPUT, "circuit: give --category or --contrast, not both");
    if (iterative && expr)
        return vc_fail(err, VC_EINPUT, "circuit: --iterative does not apply to --contrast (re-scoring needs one image set's scores)");
    vc_metric metric = VC_CIRCUIT_DEFAULT_METRIC;
    if (mstr && (rc = metric_parse(&metric, mstr, err))) return rc;
    vc_model *m;
    if ((rc = vc_model_load(&m, a.pos[0], err))) return rc;
    vc_target t;
    vc_imageset set = {0}, evs = {0};
    vc_set_scores ss = {0};
    vc_scores con = {0}, norm = {0}, iter_scores = {0};
    vc_circuit c = {0};
    vc_faith_ref ref = {0};
    vc_faith fc = {0}, curve[MAX_CURVE];
    const vc_scores *raw = NULL;
    int *eidx = NULL, n_eval = 0;
    size_t clamped = 0, n_scores = 0;
    const vc_imageset *ev = &set;
    unsigned char *show = NULL;   // --layer: the layers printed and written
    rc = target_parse(&t, m, tstr ? tstr : "loss", err);
    if (n_layers) show = calloc_check(m->n_nodes, 1);
    for (int k = 0; !rc && k < n_layers; k++) {
        int node = vc_model_find(m, layers[k]);
        if (node <= 0) rc = vc_fail(err, VC_EINPUT, "circuit: --layer %s: no such layer in %s (see viscnn info)", layers[k], m->path);
        else show[node] = 1;
    }
    if (!rc) rc = imageset_open(&set, m, &a, 1, err);
    if (!rc) rc = cli_check_unused(&a, err);
    if (!rc && cat && strcmp(cat, "overall") && imageset_find_category(&set, cat) < 0)
        rc = vc_fail(err, VC_EINPUT, "circuit: --category %s: no such category in %s", cat, set.source);
    if (!rc && expr) rc = contrast_check(expr, &set, err);
    if (!rc && eval_path) { rc = imageset_open_path(&evs, m, eval_path, err); ev = &evs; }
    if (!rc && faith) rc = eval_indices(&eidx, &n_eval, ev, eval_path != NULL, cat, expr, &set, err);
    if (!rc) imageset_warn(&set);
    if (!rc && eval_path) imageset_warn(&evs);
    if (!rc) rc = importance_over_set(&ss, m, metric, &t, &set, batch, err);
    if (!rc && expr) {
        rc = contrast_scores(&con, &ss, expr, err);
        if (!rc) rc = contrast_clamped(&clamped, &n_scores, &ss, expr, err);
        raw = &con;
        if (!rc && dist_is_root()) {
            fprintf(stderr, "circuit: contrast \"%s\" clamped %zu of %zu scores (%.1f%%) from negative to 0\n", expr, clamped,
                    n_scores, n_scores ? 100.0 * (double)clamped / (double)n_scores : 0.0);
            size_t positive = 0;
            float *flat = malloc_check((n_scores + 1) * sizeof(float));
            scores_flatten(&con, flat);
            for (size_t k = 0; k < n_scores; k++) positive += flat[k] > 0;
            free(flat);
            if (!positive)
                fprintf(stderr, "circuit: warning: no score of the contrast is above 0 (%s): the circuit ranks ties "
                                "only and means nothing\n", clamped == n_scores ? "every one was negative" : "all were 0 or below");
            if (t.kind == VC_T_LOSS)
                fprintf(stderr, "circuit: note: with --target loss each category's scores follow its own label, so the "
                                "contrast compares different targets (docs/circuits.md)\n");
        }
    } else if (!rc) raw = set_scores_find(&ss, cat ? cat : "overall");
    const vc_scores *single = raw;   // the curve is single-shot keep:F from these
    if (!rc && iterative > 1) {
        rc = circuit_extract_iterative(&c, &iter_scores, m, metric, &t, &set, cat, raw, &spec, batch, err);
        if (!rc) raw = &iter_scores;
    } else if (!rc) rc = circuit_extract(&c, m, raw, &t, &spec, err);
    // Under MPI every rank has the scores and the circuit (the iterative rounds
    // score on all ranks); faithfulness, the pruned model and the output are rank 0's.
    const int root = dist_is_root();
    if (!rc && faith && root) {
        rc = faith_reference(&ref, m, &t, ev, eidx, n_eval, batch, err);
        if (!rc) rc = faith_measure(&fc, &ref, m, &t, raw, &c, ev, batch, err);
        if (!rc && n_curve) rc = faith_curve(curve, curve_fr, n_curve, m, single, &t, &ref, ev, batch, err);
    }
    if (!rc && pruned && root) rc = circuit_write_pruned(pruned, m, raw, &c, err);
    if (!rc && pruned && root) cli_wrote(pruned, "the circuit as a model (the rest zeroed)", t0);
    FILE *f = rc || !root ? NULL : export_open(out, err);
    if (!rc && root && !f) rc = VC_EINPUT;
    if (f) {
        char mode_text[64];
        circuit_spec_text(&spec, mode_text, sizeof mode_text);
        circuit_normalize(&norm, raw, m, &t);
        circuit_write_head_json(f, m, &t, metric, ss.images, set.source, expr ? expr : cat ? cat : "overall", &spec, &c);
        if (expr) fprintf(f, ",\n\"contrast\": {\"clamped\": %zu, \"scores\": %zu}", clamped, n_scores);
        if (faith) circuit_write_faithfulness_json(f, &t, eval_path != NULL, ev->source, &fc, curve, curve_fr, n_curve);
        fputs(",\n\"layers\": ", f);
        circuit_write_layers_json_only(f, m, &t, raw, &norm, &c, show);
        fputs("}\n", f);
        rc = export_close(f, out, 1, err);
        print_summary(m, raw, &c, show);
        printf("circuit (%s, %s): %zu of %zu nodes, %zu of %zu edges (selected %zu nodes, %zu edges; dead parts removed)",
               vc_metric_names[metric], mode_text, c.n_nodes, c.total_nodes, c.n_edges, c.total_edges, c.sel_nodes, c.sel_edges);
        printf(" -> %s\n", out);
        if (faith) {
            if (eval_path) printf("faithfulness, held-out, on %d images of %s: r = ", fc.images, ev->source);
            else printf("faithfulness, IN-SAMPLE (on %d of the images the scores came from; --eval-images PATH gives a "
                        "held-out figure): r = ", fc.images);
            if (fc.r_note) printf("undefined (%s)", fc.r_note); else printf("%.4f", fc.r);
            printf(", relative error %.4g", fc.rel_error);
            if (t.kind != VC_T_NODE) printf(", top-1 agreement %.3f", fc.top1);
            printf("\n");
            for (int k = 0; k < n_curve; k++) {
                printf("  keep %-6g %7zu edges  r = ", curve_fr[k], curve[k].edges);
                if (curve[k].r_note) printf("undefined"); else printf("%.4f", curve[k].r);
                printf("  relative error %.4g", curve[k].rel_error);
                if (t.kind != VC_T_NODE) printf("  top-1 agreement %.3f", curve[k].top1);
                printf("\n");
            }
        }
    }
    if (!rc) {
        char what[160];
        snprintf(what, sizeof what, "a circuit of %zu nodes and %zu edges%s%s", c.n_nodes, c.n_edges, faith ? ", with faithfulness" : "",
                 show ? " (the --layer layers only)" : "");
        cli_wrote(out, what, t0);
    }
    free(show);
    free(eidx);
    faith_reference_free(&ref);
    circuit_free(&c);
    if (norm.l) scores_free(&norm);
    if (con.l) scores_free(&con);
    if (iter_scores.l) scores_free(&iter_scores);
    set_scores_free(&ss);
    imageset_free(&set);
    if (eval_path) imageset_free(&evs);
    vc_model_free(m);
    return rc;
}
