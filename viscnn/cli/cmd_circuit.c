// cmd_circuit.c: viscnn circuit — extract a circuit, measure it, export it
// (docs/circuits.md is the contract; the work is vc_circuit_find).
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cli.h"

#define MAX_CURVE 64

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
    if (!*s) {   // the default fractions
        *n = -1;
        return VC_OK;
    }
    while (*s) {
        char *end;
        double v = strtod(s, &end);
        if (end == s || !(v > 0 && v <= 1) || (*end && *end != ',') || *n >= MAX_CURVE)
            return cli_fail(err, VC_EINPUT, "circuit: --curve: expected up to %d kept fractions in (0, 1], comma-separated", MAX_CURVE);
        fr[(*n)++] = v;
        s = *end ? end + 1 : end;
    }
    return VC_OK;
}

int cmd_circuit(int argc, char **argv, vc_error *err) {
    char **av = cli_malloc((2 * (size_t)argc + 1) * sizeof(char *));
    int ac = 0;
    for (int k = 0; k < argc; k++) {
        av[ac++] = argv[k];
        if (!strcmp(argv[k], "--curve") && !(k + 1 < argc && is_fraction_list(argv[k + 1]))) av[ac++] = "";
    }
    cli_args a;
    int rc = cli_parse(&a, "circuit", ac, av, (const char *const[]){"faithfulness", NULL}, err);
    free(av);
    if (rc) return rc;
    if (a.n_pos != 1) return cli_fail(err, VC_EINPUT, "circuit: expected one MODEL argument, got %d", a.n_pos);
    const char *out = cli_opt(&a, "o"), *tstr = cli_opt(&a, "target"), *mstr = cli_opt(&a, "metric"),
               *mode_s = cli_opt(&a, "mode"), *pruned = cli_opt(&a, "pruned"), *cat = cli_opt(&a, "category"),
               *expr = cli_opt(&a, "contrast"), *tn_s = cli_opt(&a, "node-threshold"), *te_s = cli_opt(&a, "edge-threshold"),
               *eval_path = cli_opt(&a, "eval-images"), *curve_s = cli_opt(&a, "curve");
    int faith = cli_flag(&a, "faithfulness"), batch, n_curve = 0, iterative;
    double curve_fr[MAX_CURVE];
    if (!out) return cli_fail(err, VC_EINPUT, "circuit: missing -o OUT.json");
    if (cli_check_ext("circuit", "-o", out, (const char *const[]){".json", NULL}, err) < 0) return VC_EINPUT;
    if (pruned && cli_check_ext("circuit", "--pruned", pruned, (const char *const[]){".safetensors", NULL}, err) < 0)
        return VC_EINPUT;
    const char *layers[64];
    int n_layers = cli_opt_all(&a, "layer", layers, 64);
    if (n_layers > 64) return cli_fail(err, VC_EINPUT, "circuit: at most 64 --layer options");
    double t0 = cli_now();
    if ((rc = cli_int(&a, "batch", 8, 1, 4096, &batch, err))) return rc;
    if ((rc = cli_int(&a, "iterative", 0, 1, 100, &iterative, err))) return rc;
    if (eval_path && !faith) return cli_fail(err, VC_EINPUT, "circuit: --eval-images goes with --faithfulness (it says where to measure)");
    if (curve_s && !faith) return cli_fail(err, VC_EINPUT, "circuit: --curve goes with --faithfulness");
    if (curve_s && (rc = parse_curve(curve_fr, &n_curve, curve_s, err))) return rc;
    vc_circuit_settings cs;
    vc_circuit_settings_default(&cs);
    cs.mode = mode_s;
    if (mode_s && (rc = vc_circuit_check(&cs, err))) return rc;   // the mode's own message before the thresholds'
    char *end;
    cs.node_threshold = tn_s ? strtod(tn_s, &end) : NAN;
    if (tn_s && (end == tn_s || *end)) return cli_fail(err, VC_EINPUT, "circuit: --node-threshold %s: expected a number in [0, 1]", tn_s);
    cs.edge_threshold = te_s ? strtod(te_s, &end) : NAN;
    if (te_s && (end == te_s || *end)) return cli_fail(err, VC_EINPUT, "circuit: --edge-threshold %s: expected a number in [0, 1]", te_s);
    cs.iterative = iterative;
    cs.metric = mstr;
    cs.target = tstr;
    cs.category = cat;
    cs.contrast = expr;
    cs.batch = batch;
    cs.faithfulness = faith;
    cs.curve = curve_fr;
    cs.n_curve = n_curve;
    cs.layers = layers;
    cs.n_layers = n_layers;
    if ((rc = vc_circuit_check(&cs, err))) return rc;
    vc_model *m;
    if ((rc = vc_model_load(&m, a.pos[0], err))) return rc;
    vc_imageset *set = NULL, *evs = NULL;
    vc_subnet *c = NULL;
    rc = vc_target_check(m, tstr ? tstr : "loss", NULL, err);
    for (int k = 0; !rc && k < n_layers; k++) {
        int node = -1;
        vc_model_find_node(m, layers[k], &node, NULL);
        if (node <= 0) rc = cli_fail(err, VC_EINPUT, "circuit: --layer %s: no such layer in %s (see viscnn info)", layers[k], cli_model_path(m));
    }
    if (!rc) rc = cli_open_set(&set, m, &a, 1, err);
    if (!rc) rc = cli_check_unused(&a, err);
    int ci = 0;
    const char *source = NULL;
    if (!rc) vc_imageset_size(set, NULL, NULL, &source, NULL);
    if (!rc && cat && strcmp(cat, "overall") && !vc_imageset_find_category(set, cat, &ci, err) && ci < 0)
        rc = cli_fail(err, VC_EINPUT, "circuit: --category %s: no such category in %s", cat, source);
    if (!rc && expr) rc = vc_contrast_check(expr, set, err);
    if (!rc && eval_path) rc = vc_imageset_open(&evs, m, eval_path, err);
    cs.eval = evs;
    if (!rc) rc = vc_circuit_find(&c, m, set, &cs, err);
    // Under MPI every rank has the scores and the circuit; the pruned model and the output are rank 0's.
    const int root = vc_dist_is_root();
    if (!rc && pruned && root) rc = vc_subnet_write_pruned(c, pruned, err);
    if (!rc && pruned && root) cli_wrote(pruned, "the circuit as a model (the rest zeroed)", t0);
    if (!rc && root) rc = vc_subnet_write_json(c, out, err);
    if (!rc && root) vc_subnet_summary(c, stdout, out, NULL);
    size_t n_nodes = 0, n_edges = 0;
    if (!rc) vc_subnet_counts(c, &n_nodes, &n_edges, NULL, NULL, NULL);
    if (!rc && root) {
        char what[160];
        snprintf(what, sizeof what, "a circuit of %zu nodes and %zu edges%s%s", n_nodes, n_edges, faith ? ", with faithfulness" : "",
                 n_layers ? " (the --layer layers only)" : "");
        cli_wrote(out, what, t0);
    }
    vc_subnet_free(c);
    vc_imageset_free(set);
    vc_imageset_free(evs);
    vc_model_free(m);
    return rc;
}
