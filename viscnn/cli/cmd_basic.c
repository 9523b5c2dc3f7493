// cmd_basic.c: viscnn info — a model's layers, shapes, parameters, labels
// and totals (--json: the same as one JSON object).
#include <stdio.h>
#include <string.h>
#include "cli.h"

static int load_model(vc_model **m, cli_args *a, vc_error *err) {
    if (a->n_pos < 1) return cli_fail(err, VC_EINPUT, "%s: missing MODEL argument", a->cmd);
    return vc_model_load(m, a->pos[0], err);
}

static void shape_str(char *s, size_t n, int rank, int c, int h, int w) {
    if (rank == 2) snprintf(s, n, "(N,%d)", c);
    else snprintf(s, n, "(N,%d,%d,%d)", c, h, w);
}

int cmd_info(int argc, char **argv, vc_error *err) {
    cli_args a;
    vc_model *m = NULL;
    int rc = cli_parse(&a, "info", argc, argv, NULL, err);
    int json = rc ? 0 : cli_flag(&a, "json");
    if (!rc) rc = cli_check_unused(&a, err);
    if (!rc && a.n_pos > 1) rc = cli_fail(err, VC_EINPUT, "info: unexpected argument '%s'", a.pos[1]);
    if (!rc) rc = load_model(&m, &a, err);
    if (rc) return rc;
    if (json) {
        rc = vc_model_write_json(m, stdout, err);
        vc_model_free(m);
        return rc;
    }
    const char *name, *path, *in_name;
    int n_nodes, output, n_labels, resize, crop, channels, c, h, w, rank;
    float mean[3], std[3];
    size_t params, nodes, edges, weights;
    vc_model_about(m, &name, &path, NULL);
    vc_model_size(m, &n_nodes, &output, &n_labels, NULL);
    vc_model_preprocess(m, &resize, &crop, &channels, mean, std, NULL);
    vc_model_node(m, 0, &in_name, NULL, &c, &h, &w, NULL);
    vc_model_totals(m, &nodes, &edges, &weights, NULL);
    printf("model %s (%s)\n", vc_str(name), path);
    printf("input %s: (N,%d,%d,%d)", vc_str(in_name), c, h, w);
    if (resize || crop) printf("  resize %d, crop %d", resize, crop);
    printf("  mean [%g", mean[0]);
    for (int k = 1; k < channels && k < 3; k++) printf(", %g", mean[k]);
    printf("]  std [%g", std[0]);
    for (int k = 1; k < channels && k < 3; k++) printf(", %g", std[k]);
    printf("]\n\n%4s  %-28s %-19s %-20s %10s  %s\n", "#", "layer", "op", "output", "params", "inputs");
    for (int i = 1; i < n_nodes; i++) {
        const char *nname, *op;
        const int *in;
        int n_in;
        vc_model_node(m, i, &nname, &op, &c, &h, &w, NULL);
        vc_model_node_detail(m, i, &rank, &params, NULL);
        vc_model_node_inputs(m, i, &n_in, &in, NULL);
        char shp[64], ins[256] = "";
        shape_str(shp, sizeof shp, rank, c, h, w);
        for (int k = 0; k < n_in && strlen(ins) < 200; k++) {
            const char *iname;
            vc_model_node(m, in[k], &iname, NULL, NULL, NULL, NULL, NULL);
            snprintf(ins + strlen(ins), sizeof ins - strlen(ins), "%s%s", k ? ", " : "", vc_str(iname));
        }
        printf("%4d  %-28s %-19s %-20s %10zu  %s\n", i, vc_str(nname), op, shp, params, ins);
    }
    const char *oname;
    char shp[64];
    vc_model_node(m, output, &oname, NULL, &c, &h, &w, NULL);
    vc_model_node_detail(m, output, &rank, NULL, NULL);
    shape_str(shp, sizeof shp, rank, c, h, w);
    printf("\noutput %s %s%s\n", vc_str(oname), shp, n_labels ? ", with labels" : "");
    if (n_labels) {   // the names class:NAME and class folders are matched against
        printf("labels (%d):", n_labels);
        int col = 12;
        for (int k = 0; k < n_labels; k++) {
            const char *label;
            vc_model_label(m, k, &label, NULL);
            char item[320];
            int l = snprintf(item, sizeof item, "  %d %s", k, vc_str(label));
            if (col + l > 100) { printf("\n "); col = 1; }
            fputs(item, stdout);
            col += l;
        }
        printf("\n");
    }
    printf("layers: %d\nnodes (channels of the input and of conv layers): %zu\nedges (2-D conv kernels): %zu\nparameters: %zu\n",
           n_nodes - 1, nodes, edges, weights);
    vc_model_free(m);
    return VC_OK;
}
