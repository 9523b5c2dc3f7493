// cmd_circuit.c: viscnn circuit — extract a circuit, measure it, export it.
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "../circuit.h"
#include "cli.h"
#include "../export.h"
#include "../imageset.h"
#include "../../engine/util.h"
#include "../../loaders/safetensors.h"


// The model with the circuit's pruning baked into the weights: removed
// kernels zeroed, removed nodes' kernels and bias zeroed. Same graph.
static int write_pruned(const char *path, const vc_model *m, const vc_scores *layout, const vc_circuit *c, vc_error *err) {
    st_out *t = calloc_check(m->n_params, sizeof(st_out));
    float **copies = calloc_check(m->n_params, sizeof(float *));
    for (int p = 0; p < m->n_params; p++) {
        t[p].name = m->params[p].name;
        t[p].rank = m->params[p].rank;
        t[p].dim = m->params[p].dim;
        t[p].data = m->params[p].data;
    }
    for (int l = 0; l < c->n_layers; l++) {
        const vc_layer_scores *L = &layout->l[l];
        const vc_node *n = &m->nodes[L->node];
        int pw = n->param[VC_P_WEIGHT], pb = n->param[VC_P_BIAS];
        size_t kk = (size_t)n->a.kernel[0] * n->a.kernel[1];
        copies[pw] = malloc_check(m->params[pw].size * sizeof(float));
        memcpy(copies[pw], m->params[pw].data, m->params[pw].size * sizeof(float));
        for (int j = 0; j < L->cout; j++)
            for (int i = 0; i < L->cg; i++)
                if (!c->edge[l][(size_t)j * L->cg + i] || !c->node[l][j])
                    memset(copies[pw] + ((size_t)j * L->cg + i) * kk, 0, kk * sizeof(float));
        t[pw].data = copies[pw];
        if (pb >= 0) {
            copies[pb] = malloc_check(m->params[pb].size * sizeof(float));
            for (int j = 0; j < L->cout; j++) copies[pb][j] = c->node[l][j] ? m->params[pb].data[j] : 0.0f;
            t[pb].data = copies[pb];
        }
    }
    const char *keys[1] = {"viscnn.graph"}, *vals[1] = {m->graph_json};
    int rc = st_write(path, m->n_params, t, 1, keys, vals, err);
    for (int p = 0; p < m->n_params; p++) free(copies[p]);
    free(copies); free(t);
    return rc;
}

// ", "score": RAW, "norm": NORM}" closing one kept node or edge.
static void write_scores(FILE *f, float raw, float norm) {
    fputs(", \"score\": ", f);
    export_float(f, raw);
    fputs(", \"norm\": ", f);
    export_float(f, norm);
    fputc('}', f);
}

static void write_circuit_layers(FILE *f, const vc_model *m, const vc_scores *raw, const vc_scores *norm, const vc_circuit *c) {
    fputs("[", f);
    for (int l = 0; l < c->n_layers; l++) {
        const vc_layer_scores *L = &raw->l[l], *N = &norm->l[l];
        fputs(l ? ",\n{\"name\": " : "\n{\"name\": ", f);
        export_string(f, m->nodes[L->node].name);
        fputs(", \"nodes\": [", f);
        int first = 1;
        for (int j = 0; j < L->cout; j++) {
            if (!c->node[l][j]) continue;
            fprintf(f, "%s{\"ch\": %d", first ? "" : ",", j);
            write_scores(f, L->nodes[j], N->nodes[j]);
            first = 0;
        }
        fputs("], \"edges\": [", f);
        first = 1;
        for (int j = 0; j < L->cout; j++)
            for (int i = 0; i < L->cg; i++) {
                size_t e = (size_t)j * L->cg + i;
                if (!c->edge[l][e]) continue;
                fprintf(f, "%s{\"out\": %d, \"in\": %d", first ? "" : ",", j, i);
                write_scores(f, L->edges[e], N->edges[e]);
                first = 0;
            }
        fputs("]}", f);
    }
    fputs("\n]", f);
}

// One line per layer: kept nodes and edges, and the strongest kept edge.
static void print_summary(const vc_model *m, const vc_scores *raw, const vc_circuit *c) {
    for (int l = 0; l < c->n_layers; l++) {
        const vc_layer_scores *L = &raw->l[l];
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

int cmd_circuit(int argc, char **argv, vc_error *err) {
    cli_args a;
    int rc = cli_parse(&a, "circuit", argc, argv, (const char *const[]){"faithfulness", NULL}, err);
    if (rc) return rc;
    if (a.n_pos != 1) return vc_fail(err, VC_EINPUT, "circuit: expected one MODEL argument, got %d", a.n_pos);
    const char *out = cli_opt(&a, "o"), *tstr = cli_opt(&a, "target"), *mstr = cli_opt(&a, "metric"),
               *mode_s = cli_opt(&a, "mode"), *pruned = cli_opt(&a, "pruned"), *cat = cli_opt(&a, "category"),
               *expr = cli_opt(&a, "contrast"), *tn_s = cli_opt(&a, "node-threshold"), *te_s = cli_opt(&a, "edge-threshold");
    int faith = cli_flag(&a, "faithfulness"), batch;
    if (!out) return vc_fail(err, VC_EINPUT, "circuit: missing -o OUT.json");
    if ((rc = cli_int(&a, "batch", 8, 1, 4096, &batch, err))) return rc;
    vc_circuit_mode mode = VC_C_THRESHOLD;
    double fraction = 1, tn, te;
    if (!mode_s || !strcmp(mode_s, "threshold")) mode = VC_C_THRESHOLD;
    else if (!strcmp(mode_s, "hierarchical")) mode = VC_C_HIERARCHICAL;
    else if (!strncmp(mode_s, "keep:", 5)) {
        char *end;
        mode = VC_C_KEEP;
        fraction = strtod(mode_s + 5, &end);
        if (end == mode_s + 5 || *end || !(fraction >= 0 && fraction <= 1))
            return vc_fail(err, VC_EINPUT, "circuit: --mode %s: keep:F needs F in [0, 1]", mode_s);
    } else return vc_fail(err, VC_EINPUT, "circuit: --mode %s: expected threshold, hierarchical or keep:F", mode_s);
    double def = mode == VC_C_HIERARCHICAL ? 0.8 : 0.2;
    char *end;
    tn = tn_s ? strtod(tn_s, &end) : def;
    if (tn_s && (*end || end == tn_s || !(tn >= 0 && tn <= 1))) return vc_fail(err, VC_EINPUT, "circuit: --node-threshold %s: expected a number in [0, 1]", tn_s);
    te = te_s ? strtod(te_s, &end) : def;
    if (te_s && (*end || end == te_s || !(te >= 0 && te <= 1))) return vc_fail(err, VC_EINPUT, "circuit: --edge-threshold %s: expected a number in [0, 1]", te_s);
    if (cat && expr) return vc_fail(err, VC_EINPUT, "circuit: give --category or --contrast, not both");
    vc_metric metric = VC_M_ACTXGRAD;
    if (mstr && (rc = metric_parse(&metric, mstr, err))) return rc;
    vc_model *m;
    if ((rc = vc_model_load(&m, a.pos[0], err))) return rc;
    vc_target t;
    vc_imageset set = {0};
    vc_set_scores ss = {0};
    vc_scores con = {0}, norm = {0};
    vc_circuit c = {0};
    const vc_scores *raw = NULL;
    float *base = NULL, *cv = NULL;
    double r = NAN, curve_r[VC_CURVE_N];
    size_t curve_e[VC_CURVE_N];
    rc = target_parse(&t, m, tstr ? tstr : "loss", err);
    if (!rc) rc = imageset_open(&set, m, &a, 1, err);
    if (!rc) rc = cli_check_unused(&a, err);
    if (!rc && cat) {
        int found = !strcmp(cat, "overall");
        for (int q = 0; q < set.n_cat; q++) found |= !strcmp(cat, set.cat_names[q]);
        if (!found) rc = vc_fail(err, VC_EINPUT, "circuit: --category %s: no such category in %s", cat, set.source);
    }
    if (!rc && expr) rc = contrast_check(expr, &set, err);
    if (!rc) rc = importance_over_set(&ss, m, metric, &t, &set, batch, err);
    if (!rc && expr) { rc = contrast_scores(&con, &ss, expr, err); raw = &con; }
    else if (!rc) raw = set_scores_find(&ss, cat ? cat : "overall");
    if (!rc) rc = circuit_extract(&c, m, raw, &t, mode, tn, te, fraction, err);
    if (!rc && faith) {
        size_t nb, nv;
        rc = target_activations(&base, &nb, m, &t, raw, NULL, &set, batch, err);
        if (!rc) rc = target_activations(&cv, &nv, m, &t, raw, &c, &set, batch, err);
        if (!rc) r = pearson(base, cv, nb);
        for (int k = 0; k < VC_CURVE_N && !rc; k++) {
            vc_circuit ck;
            float *v;
            rc = circuit_extract(&ck, m, raw, &t, VC_C_KEEP, 0, 0, vc_curve_fractions[k], err);
            if (!rc) rc = target_activations(&v, &nv, m, &t, raw, &ck, &set, batch, err);
            if (!rc) { curve_r[k] = pearson(base, v, nb); curve_e[k] = ck.n_edges; free(v); }
            circuit_free(&ck);
            progress("faithfulness curve", k + 1, VC_CURVE_N);
        }
    }
    if (!rc && pruned) rc = write_pruned(pruned, m, raw, &c, err);
    FILE *f = rc ? NULL : export_open(out, err);
    if (!rc && !f) rc = VC_EINPUT;
    if (!rc) {
        scores_copy(&norm, raw);
        scores_normalize(&norm);
        fprintf(f, "{\"target\": ");
        export_string(f, t.text);
        fprintf(f, ", \"metric\": \"%s\", \"images\": %d, \"source\": ", vc_metric_names[metric], ss.images);
        export_string(f, set.source);
        fputs(", \"model\": ", f);
        export_string(f, m->path);
        fputs(", \"scores\": ", f);
        export_string(f, expr ? expr : cat ? cat : "overall");
        fputs(", \"mode\": ", f);
        export_string(f, mode_s ? mode_s : "threshold");
        if (mode == VC_C_KEEP) fprintf(f, ", \"keep\": %g", fraction);
        else fprintf(f, ", \"thresholds\": {\"node\": %g, \"edge\": %g}", tn, te);
        fprintf(f, ",\n\"kept\": {\"nodes\": %zu, \"edges\": %zu, \"cone_nodes\": %zu, \"cone_edges\": %zu}",
                c.n_nodes, c.n_edges, c.total_nodes, c.total_edges);
        if (faith) {
            fputs(",\n\"faithfulness\": {\"r\": ", f);
            export_float(f, r);
            fputs(", \"curve\": [", f);
            for (int k = 0; k < VC_CURVE_N; k++) {
                fprintf(f, "%s{\"fraction\": %g, \"edges\": %zu, \"r\": ", k ? ", " : "", vc_curve_fractions[k], curve_e[k]);
                export_float(f, curve_r[k]);
                fputc('}', f);
            }
            fputs("]}", f);
        }
        fputs(",\n\"layers\": ", f);
        write_circuit_layers(f, m, raw, &norm, &c);
        fputs("}\n", f);
        rc = export_close(f, out, 1, err);
        print_summary(m, raw, &c);
        printf("circuit: %zu of %zu nodes, %zu of %zu edges", c.n_nodes, c.total_nodes, c.n_edges, c.total_edges);
        if (faith) printf(", faithfulness r = %.4f", r);
        printf(" -> %s\n", out);
    }
    free(base); free(cv);
    circuit_free(&c);
    if (norm.l) scores_free(&norm);
    if (con.l) scores_free(&con);
    set_scores_free(&ss);
    imageset_free(&set);
    vc_model_free(m);
    return rc;
}
