// circuit_io.c: circuit JSON (docs/circuits.md): writing the layers with
// both ends of every edge named, and reading a circuit back so that other
// commands can run it as a masked network.
#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "circuit.h"
#include "export.h"
#include "projection.h"
#include "../engine/util.h"
#include "../loaders/safetensors.h"
#include "../loaders/fileio.h"

// ", "score": RAW, "norm": NORM}" closing one kept node or edge.
static void write_scores(FILE *f, float raw, float norm) {
    fputs(", \"score\": ", f);
    export_float(f, raw);
    fputs(", \"norm\": ", f);
    export_float(f, norm);
    fputc('}', f);
}

void circuit_write_layers_json(FILE *f, const vc_model *m, const vc_target *t, const vc_scores *raw,
                               const vc_scores *norm, const vc_circuit *c) {
    circuit_write_layers_json_only(f, m, t, raw, norm, c, NULL);
}

void circuit_write_layers_json_only(FILE *f, const vc_model *m, const vc_target *t, const vc_scores *raw,
                                    const vc_scores *norm, const vc_circuit *c, const unsigned char *show) {
    vc_dgraph g;
    dgraph_build(&g, m);
    unsigned char **F, **B;
    circuit_reach(&F, &B, m, raw, c, t);
    int *lo = malloc_check(m->n_nodes * sizeof(int));
    for (int i = 0; i < m->n_nodes; i++) lo[i] = -1;
    for (int l = 0; l < raw->n_layers; l++) lo[raw->l[l].node] = l;
    fputs("[", f);
    int first_layer = 1;
    for (int d = 1; d < g.n_layers; d++) {
        const vc_dlayer *D = &g.l[d];
        if (D->node > t->stop || (D->kind == VC_DL_CONV && lo[D->node] < 0) || (show && !show[D->node])) continue;
        const char *name = m->nodes[D->node].name;
        fputs(first_layer ? "\n{\"name\": " : ",\n{\"name\": ", f);
        first_layer = 0;
        export_string(f, name);
        int first = 1;
        if (D->kind == VC_DL_CONV) {
            int l = lo[D->node];
            const vc_layer_scores *L = &raw->l[l], *N = &norm->l[l];
            fputs(", \"kind\": \"conv\", \"nodes\": [", f);
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
                    vc_dsrc src = dgraph_kernel_source(&g, d, j, i);
                    fputs(first ? "{\"out_layer\": " : ",\n {\"out_layer\": ", f);
                    export_string(f, name);
                    fprintf(f, ", \"out_ch\": %d, \"kernel_index\": %d, \"in_layer\": ", j, i);
                    if (src.layer >= 0) export_string(f, m->nodes[g.l[src.layer].node].name);
                    else fputs("null", f);
                    fprintf(f, ", \"in_ch\": %d", src.ch);
                    write_scores(f, L->edges[e], N->edges[e]);
                    first = 0;
                }
        } else {   // add: channels on a kept path, identity edges from the operands that carry one
            const vc_node *nd = &m->nodes[D->node];
            fputs(", \"kind\": \"add\", \"nodes\": [", f);
            for (int ch = 0; ch < D->c; ch++)
                if (F[D->node][ch] && B[D->node][ch]) { fprintf(f, "%s{\"ch\": %d}", first ? "" : ",", ch); first = 0; }
            fputs("], \"edges\": [", f);
            first = 1;
            for (int k = 0; k < 2; k++)
                for (int ch = 0; ch < D->c; ch++) {
                    vc_dsrc src = D->src[k * D->c + ch];
                    if (!F[D->node][ch] || !B[D->node][ch] || !F[nd->in[k]][ch]) continue;
                    fputs(first ? "{\"out_layer\": " : ",\n {\"out_layer\": ", f);
                    export_string(f, name);
                    fprintf(f, ", \"out_ch\": %d, \"operand\": %d, \"in_layer\": ", ch, k);
                    if (src.layer >= 0) export_string(f, m->nodes[g.l[src.layer].node].name);
                    else fputs("null", f);
                    fprintf(f, ", \"in_ch\": %d}", src.ch);
                    first = 0;
                }
        }
        fputs("]}", f);
    }
    fputs("\n]", f);
    free(lo);
    circuit_reach_free(m, F);
    circuit_reach_free(m, B);
    dgraph_free(&g);
}

void circuit_write_faith_json(FILE *f, const vc_faith *q, const vc_target *t, double keep) {
    fputc('{', f);
    if (!isnan(keep)) fprintf(f, "\"keep\": %g, ", keep);
    fprintf(f, "\"edges\": %zu, \"fraction\": ", q->edges);
    export_float(f, q->fraction);
    fputs(", \"r\": ", f);
    export_float(f, q->r);
    if (q->r_note) { fputs(", \"r_note\": ", f); export_string(f, q->r_note); }
    fputs(", \"rel_error\": ", f);
    export_float(f, q->rel_error);
    if (q->rel_note) { fputs(", \"rel_error_note\": ", f); export_string(f, q->rel_note); }
    if (t->kind != VC_T_NODE) { fputs(", \"top1_agreement\": ", f); export_float(f, q->top1); }
    fputc('}', f);
}

void circuit_write_head_json(FILE *f, const vc_model *m, const vc_target *t, vc_metric metric, int images,
                             const char *source, const char *scores, const vc_circuit_spec *spec, const vc_circuit *c) {
    char mode_text[64];
    circuit_spec_text(spec, mode_text, sizeof mode_text);
    fprintf(f, "{\"target\": ");
    export_string(f, t->text);
    fprintf(f, ", \"metric\": \"%s\", \"images\": %d, \"source\": ", vc_metric_names[metric], images);
    export_string(f, source);
    fputs(", \"model\": ", f);
    export_string(f, m->path);
    fputs(", \"scores\": ", f);
    export_string(f, scores);
    fprintf(f, ", \"mode\": \"%s\"", mode_text);
    if (spec->mode == VC_C_KEEP) fprintf(f, ", \"keep\": {\"nodes\": %g, \"edges\": %g}", spec->keep_nodes, spec->keep_edges);
    else fprintf(f, ", \"thresholds\": {\"node\": %g, \"edge\": %g}", spec->node_threshold, spec->edge_threshold);
    if (spec->iterative) fprintf(f, ", \"iterative\": %d", spec->iterative);
    fputs(", \"normalisation\": \"robust min-max per layer (scale: the second-largest score)\"", f);
    fprintf(f, ",\n\"kept\": {\"nodes\": %zu, \"edges\": %zu, \"selected_nodes\": %zu, \"selected_edges\": %zu, "
               "\"cone_nodes\": %zu, \"cone_edges\": %zu}",
            c->n_nodes, c->n_edges, c->sel_nodes, c->sel_edges, c->total_nodes, c->total_edges);
}

void circuit_write_faithfulness_json(FILE *f, const vc_target *t, int held_out, const char *source, const vc_faith *fc,
                                     const vc_faith *curve, const double *curve_fr, int n_curve) {
    fprintf(f, ",\n\"faithfulness\": {\"sample\": \"%s\", \"source\": ", held_out ? "held-out" : "in-sample");
    export_string(f, source);
    fprintf(f, ", \"images\": %d, \"values\": %zu, \"circuit\": ", fc->images, fc->values);
    circuit_write_faith_json(f, fc, t, NAN);
    if (n_curve) {
        fputs(",\n  \"curve\": [", f);
        for (int k = 0; k < n_curve; k++) {
            if (k) fputs(",\n    ", f);
            circuit_write_faith_json(f, &curve[k], t, curve_fr[k]);
        }
        fputs("]", f);
    }
    fputs("}", f);
}

int circuit_write_pruned(const char *path, const vc_model *m, const vc_scores *layout, const vc_circuit *c, vc_error *err) {
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

// A whole number in [0, n) from JSON, else -1.
static int json_index(const cJSON *x, int n) {
    if (!cJSON_IsNumber(x) || !(x->valuedouble >= 0 && x->valuedouble < n) || x->valuedouble != floor(x->valuedouble)) return -1;
    return (int)x->valuedouble;
}

int circuit_read(vc_circuit *c, vc_scores *layout, const vc_model *m, const char *path, vc_error *err) {
    memset(c, 0, sizeof *c);
    memset(layout, 0, sizeof *layout);   // freed on every error path below, set or not (found by fuzz_circuit)
    char *buf = vc_read_file(path, (size_t)1 << 30, NULL, err);
    if (!buf) return VC_EINPUT;
    cJSON *j = cJSON_Parse(buf);
    free(buf);
    if (!j) return vc_fail(err, VC_EINPUT, "%s: not valid JSON", path);
    int rc = VC_OK;
    cJSON *layers = cJSON_GetObjectItemCaseSensitive(j, "layers");
    if (!cJSON_IsArray(layers)) rc = vc_fail(err, VC_EINPUT, "%s: no \"layers\" array (not a viscnn circuit)", path);
    if (!rc) {
        scores_init(layout, m, -1);
        c->n_layers = layout->n_layers;
        c->node = calloc_check(c->n_layers ? c->n_layers : 1, sizeof(unsigned char *));
        c->edge = calloc_check(c->n_layers ? c->n_layers : 1, sizeof(unsigned char *));
        for (int l = 0; l < c->n_layers; l++) {   // layers not listed run unmasked
            const vc_layer_scores *L = &layout->l[l];
            c->node[l] = malloc_check(L->cout);
            c->edge[l] = malloc_check((size_t)L->cout * L->cg);
            memset(c->node[l], 1, L->cout);
            memset(c->edge[l], 1, (size_t)L->cout * L->cg);
        }
    }
    for (cJSON *e = rc ? NULL : layers->child; e && !rc; e = e->next) {
        cJSON *name = cJSON_GetObjectItemCaseSensitive(e, "name"), *kind = cJSON_GetObjectItemCaseSensitive(e, "kind");
        if (cJSON_IsString(kind) && !strcmp(kind->valuestring, "add")) continue;   // derived from the convs
        cJSON *nodes = cJSON_GetObjectItemCaseSensitive(e, "nodes"), *edges = cJSON_GetObjectItemCaseSensitive(e, "edges");
        int l = -1;
        for (int q = 0; cJSON_IsString(name) && q < layout->n_layers; q++)
            if (!strcmp(m->nodes[layout->l[q].node].name, name->valuestring)) l = q;
        if (l < 0 || !cJSON_IsArray(nodes) || !cJSON_IsArray(edges)) {
            rc = vc_fail(err, VC_EINPUT, "%s: layer %s is not a conv layer of %s", path,
                         cJSON_IsString(name) ? vc_str(name->valuestring) : "?", m->path);
            break;
        }
        const vc_layer_scores *L = &layout->l[l];
        memset(c->node[l], 0, L->cout);
        memset(c->edge[l], 0, (size_t)L->cout * L->cg);
        for (cJSON *x = nodes->child; x && !rc; x = x->next) {
            int ch = json_index(cJSON_GetObjectItemCaseSensitive(x, "ch"), L->cout);
            if (ch < 0) rc = vc_fail(err, VC_EINPUT, "%s: layer %s: bad node (needs ch in [0, %d))", path, vc_str(name->valuestring), L->cout);
            else c->node[l][ch] = 1;
        }
        for (cJSON *x = edges->child; x && !rc; x = x->next) {
            int o = json_index(cJSON_GetObjectItemCaseSensitive(x, "out_ch"), L->cout);
            int i = json_index(cJSON_GetObjectItemCaseSensitive(x, "kernel_index"), L->cg);
            if (o < 0 || i < 0)
                rc = vc_fail(err, VC_EINPUT, "%s: layer %s: bad edge (needs out_ch in [0, %d) and kernel_index in [0, %d))",
                             path, vc_str(name->valuestring), L->cout, L->cg);
            else c->edge[l][(size_t)o * L->cg + i] = 1;
        }
    }
    cJSON_Delete(j);
    if (rc) { circuit_free(c); if (layout->l) scores_free(layout); }
    return rc;
}
