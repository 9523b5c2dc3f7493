// cmd_forward.c: viscnn forward — running a model on a batch and writing a
// layer's output (.npy, or a contact sheet .png), optionally as a circuit's
// masked network (--circuit) or with the branches it took (--decisions, for
// replay in the float64 reference; docs/parity.md).
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cli.h"
#include "picture.h"

static int load_model(vc_model **m, cli_args *a, vc_error *err) {
    if (a->n_pos < 1) return cli_fail(err, VC_EINPUT, "%s: missing MODEL argument", a->cmd);
    return vc_model_load(m, a->pos[0], err);
}

int cmd_forward(int argc, char **argv, vc_error *err) {
    cli_args a;
    vc_model *m = NULL;
    int rc = cli_parse(&a, "forward", argc, argv, NULL, err);
    if (rc) return rc;
    const char *out = cli_opt(&a, "o"), *layer = cli_opt(&a, "layer"), *cpath = cli_opt(&a, "circuit");
    const char *dpath = cli_opt(&a, "decisions");
    if (!out && !dpath) return cli_fail(err, VC_EINPUT, "forward: missing -o OUT.npy (or --decisions D.npz)");
    if (!cli_opt(&a, "input")) return cli_fail(err, VC_EINPUT, "forward: missing --input IN.npy");
    int png = out ? cli_check_ext("forward", "-o", out, (const char *const[]){".npy", ".png", NULL}, err) : 0;
    if (png < 0) return VC_EINPUT;
    if (dpath && cli_check_ext("forward", "--decisions", dpath, (const char *const[]){".npz", NULL}, err) < 0) return VC_EINPUT;
    double t0 = cli_now();
    float *x = NULL;
    int N = 0, node = -1, rank = 0;
    rc = load_model(&m, &a, err);
    if (!rc && a.n_pos > 1) rc = cli_fail(err, VC_EINPUT, "forward: unexpected argument '%s'", a.pos[1]);
    if (!rc) {
        if (layer) { if (vc_model_find_node(m, layer, &node, NULL)) node = -1; }
        else vc_model_size(m, NULL, &node, NULL, NULL);
        if (node >= 0) vc_model_node_detail(m, node, &rank, NULL, NULL);
        if (node < 0) rc = cli_fail(err, VC_EINPUT, "forward: --layer %s: no such layer in %s (see viscnn info)", layer, cli_model_path(m));
        else if (png && rank != 4)
            rc = cli_fail(err, VC_EINPUT, "forward: -o %s: a picture needs a layer with maps (--layer L of shape (N,C,H,W))", out);
    }
    if (!rc) rc = cli_load_batch(m, &a, 0, NULL, &x, &N, err);
    if (!rc) rc = cli_check_unused(&a, err);
    vc_session *r = NULL;
    vc_subnet *circ = NULL;
    if (!rc) rc = vc_session_new(&r, m, err);
    if (!rc && cpath) {   // run the circuit as a masked network
        rc = vc_subnet_load(&circ, m, cpath, err);
        if (!rc) rc = vc_session_set_subnet(r, circ, err);
    }
    if (!rc) rc = dpath ? vc_session_infer_decisions(r, x, N, node, dpath, err) : vc_session_infer(r, x, N, node, err);
    const float *act = NULL;
    if (!rc) rc = vc_session_activation(r, node, &act, NULL, err);
    if (!rc && out) {
        const char *name;
        int C, H, W;
        vc_model_node(m, node, &name, NULL, &C, &H, &W, NULL);
        long long dim[4] = {N, C, H, W};
        char what[160];
        if (png) {   // the first image's channels, as near a square grid as they go
            int cols = (int)ceil(sqrt((double)C)), rows = (C + cols - 1) / cols;
            float *sheet = cli_calloc((size_t)rows * cols * H * W, sizeof(float));
            memcpy(sheet, act, (size_t)C * H * W * sizeof(float));
            rc = picture_sheet(out, sheet, rows, cols, H, W, err);
            free(sheet);
            snprintf(what, sizeof what, "%d channel maps of %s for image 0 (%dx%d), a contact sheet", C, vc_str(name), H, W);
        } else {
            rc = vc_npy_write(out, act, rank, dim, err);
            if (rank == 4) snprintf(what, sizeof what, "%s output (%d,%d,%d,%d)", vc_str(name), N, C, H, W);
            else snprintf(what, sizeof what, "%s output (%d,%d)", vc_str(name), N, C);
        }
        if (!rc) cli_wrote(out, what, t0);
    }
    if (!rc && dpath) cli_wrote(dpath, "the decisions of every branching node", t0);
    vc_session_free(r);
    vc_subnet_free(circ);
    free(x);
    vc_model_free(m);
    return rc;
}
