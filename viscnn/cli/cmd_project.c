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

int cmd_project(int argc, char **argv, vc_error *err) {
    cli_args a;
    int rc = cli_parse(&a, "project", argc, argv, NULL, err);
    if (rc) return rc;
    if (a.n_pos != 1) return cli_fail(err, VC_EINPUT, "project: expected one MODEL argument, got %d", a.n_pos);
    const char *out = cli_opt(&a, "o"), *pstr = cli_opt(&a, "projection"), *tstr = cli_opt(&a, "target"),
               *mstr = cli_opt(&a, "metric");
    int batch, need = 0;
    if (!pstr) return cli_fail(err, VC_EINPUT, "project: missing --projection mds|mds-smooth|grid|weights");
    if ((rc = vc_projection_check(pstr, &need, err))) return rc;
    if (!out) return cli_fail(err, VC_EINPUT, "project: missing -o OUT.json");
    if (cli_check_ext("project", "-o", out, (const char *const[]){".json", NULL}, err) < 0) return VC_EINPUT;
    double t0 = cli_now();
    if ((rc = cli_int(&a, "batch", 8, 1, 4096, &batch, err))) return rc;
    const char *metric = mstr ? mstr : "actxgrad", *target = tstr ? tstr : "loss";
    if (mstr && (rc = vc_metric_check(mstr, err))) return rc;
    if (need && !cli_opt(&a, "images") && !cli_opt(&a, "input"))
        return cli_fail(err, VC_EINPUT, "project: --projection %s needs --images PATH (class subfolders) or --input X.npy --labels L.npy", pstr);
    vc_model *m;
    if ((rc = vc_model_load(&m, a.pos[0], err))) return rc;
    vc_imageset *set = NULL;
    vc_setscores *ss = NULL;
    rc = vc_target_check(m, target, NULL, err);
    if (!need) {   // accepted, not used
        cli_opt(&a, "images"); cli_opt(&a, "input"); cli_opt(&a, "labels");
    }
    if (!rc && need) rc = cli_open_set(&set, m, &a, 1, err);
    if (!rc) rc = cli_check_unused(&a, err);
    int n_cat = 0;
    const char *source = NULL;
    if (!rc && need) vc_imageset_size(set, NULL, &n_cat, &source, NULL);
    if (!rc && need && n_cat < 2)
        rc = cli_fail(err, VC_EINPUT, "project: %s needs an image set with class subfolders (2 or more categories); %s has %d%s",
                      pstr, source, n_cat, cli_opt(&a, "input") ? " (give --labels L.npy to make one category per label)" : "");
    if (!rc && need) vc_imageset_warn(set);
    if (!rc && need) rc = vc_importance_over_set(&ss, m, metric, target, set, batch, err);
    int layers = 0, nodes = 0;
    if (!rc && vc_dist_is_root()) {   // under MPI: all ranks score, rank 0 lays out and writes
        rc = vc_project_write(m, pstr, ss, out, &layers, &nodes, err);
        char what[160];
        snprintf(what, sizeof what, "%s layout of %d display layers, %d nodes", pstr, layers, nodes);
        if (!rc) cli_wrote(out, what, t0);
    }
    vc_setscores_free(ss);
    vc_imageset_free(set);
    vc_model_free(m);
    return rc;
}
