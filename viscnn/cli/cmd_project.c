// cmd_project.c: viscnn project — where every display node goes (docs/architecture.md §6).
//
//   viscnn project MODEL --projection mds|mds-smooth|grid|weights
//                  [--images PATH | --input X.npy [--labels L.npy]]
//                  [--target T] [--metric M] [--batch B] -o OUT.json
//
// mds and mds-smooth need per-category scores: --images PATH with class
// subfolders, or --input with --labels (one category per label value); 2 or
// more categories. grid and weights need no images: image, target and metric
// options are accepted (so that a GUI can pass the same ones) and not used.
//
// OUT.json (positions are (y, z) within the layer; depth is x):
//   {"projection": "mds", "model": PATH,
//    ["metric", "target", "images", "source", "categories": [NAME...],]   (mds, mds-smooth)
//    "layers": [{"name": "input" | conv name | add name, "kind": "input"|"conv"|"add",
//                "depth": d, "channels": C, "positions": [[y, z] x C]}],
//    "sources": [{"layer": d, "from": [[src_depth, src_ch] ...]}]}
// "sources" has one entry per conv and add layer: a conv lists C_in pairs,
// indexed by the conv's global in-channel (kernel (j, i) reads in-channel
// (j / (C_out/groups)) * (C_in/groups) + i); an add lists 2*C pairs, operand 0's
// channels then operand 1's (identity edges). [-1, -1]: the channel does not
// come from a display node (it went through linear/flatten).
#include <stdio.h>
#include <string.h>
#include "cli.h"
#include "../export.h"
#include "../imageset.h"
#include "../dist.h"
#include "../projection.h"

int cmd_project(int argc, char **argv, vc_error *err) {
    cli_args a;
    int rc = cli_parse(&a, "project", argc, argv, NULL, err);
    if (rc) return rc;
    if (a.n_pos != 1) return vc_fail(err, VC_EINPUT, "project: expected one MODEL argument, got %d", a.n_pos);
    const char *out = cli_opt(&a, "o"), *pstr = cli_opt(&a, "projection"), *tstr = cli_opt(&a, "target"),
               *mstr = cli_opt(&a, "metric");
    int batch;
    if (!pstr) return vc_fail(err, VC_EINPUT, "project: missing --projection mds|mds-smooth|grid|weights");
    vc_projection proj;
    if ((rc = projection_parse(&proj, pstr, err))) return rc;
    if (!out) return vc_fail(err, VC_EINPUT, "project: missing -o OUT.json");
    if (cli_check_ext("project", "-o", out, (const char *const[]){".json", NULL}, err) < 0) return VC_EINPUT;
    double t0 = cli_now();
    if ((rc = cli_int(&a, "batch", 8, 1, 4096, &batch, err))) return rc;
    vc_metric metric = VC_M_ACTXGRAD;
    if (mstr && (rc = metric_parse(&metric, mstr, err))) return rc;
    int need = projection_needs_images(proj);
    if (need && !cli_opt(&a, "images") && !cli_opt(&a, "input"))
        return vc_fail(err, VC_EINPUT, "project: --projection %s needs --images PATH (class subfolders) or --input X.npy --labels L.npy", pstr);
    vc_model *m;
    if ((rc = vc_model_load(&m, a.pos[0], err))) return rc;
    vc_target t;
    vc_imageset set = {0};
    vc_set_scores ss = {0};
    vc_dgraph g = {0};
    vc_layout lay = {0};
    rc = target_parse(&t, m, tstr ? tstr : "loss", err);
    if (!need) {   // accepted, not used
        cli_opt(&a, "images"); cli_opt(&a, "input"); cli_opt(&a, "labels");
    }
    if (!rc && need) rc = imageset_open(&set, m, &a, 1, err);
    if (!rc) rc = cli_check_unused(&a, err);
    if (!rc && need && set.n_cat < 2)
        rc = vc_fail(err, VC_EINPUT, "project: %s needs an image set with class subfolders (2 or more categories); %s has %d%s",
                     pstr, set.source, set.n_cat, set.x ? " (give --labels L.npy to make one category per label)" : "");
    if (!rc && need) imageset_warn(&set);
    if (!rc && need) rc = importance_over_set(&ss, m, metric, &t, &set, batch, err);
    const int root = dist_is_root();   // under MPI: all ranks score, rank 0 lays out and writes
    if (!rc && root) {
        dgraph_build(&g, m);
        rc = projection_run(&lay, m, &g, proj, need ? &ss : NULL, err);
    }
    FILE *f = rc || !root ? NULL : export_open(out, err);
    if (!rc && root && !f) rc = VC_EINPUT;
    if (f) {
        fprintf(f, "{\"projection\": \"%s\", \"model\": ", vc_projection_names[proj]);
        export_string(f, m->path);
        if (need) {
            fprintf(f, ", \"metric\": \"%s\", \"target\": ", vc_metric_names[metric]);
            export_string(f, t.text);
            fprintf(f, ", \"images\": %d, \"source\": ", ss.images);
            export_string(f, set.source);
            fputs(", \"categories\": [", f);
            for (int c = 0; c < ss.n_cat; c++) {
                if (c) fputs(", ", f);
                export_string(f, ss.cat_names[c]);
            }
            fputc(']', f);
        }
        fputs(",\n", f);
        projection_export_json(f, m, &g, &lay);
        fputs("}\n", f);
        rc = export_close(f, out, 1, err);
        char what[160];
        snprintf(what, sizeof what, "%s layout of %d display layers, %d nodes", vc_projection_names[proj], g.n_layers,
                 dgraph_nodes(&g));
        if (!rc) cli_wrote(out, what, t0);
    }
    layout_free(&lay);
    dgraph_free(&g);
    set_scores_free(&ss);
    imageset_free(&set);
    vc_model_free(m);
    return rc;
}
