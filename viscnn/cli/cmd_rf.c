// cmd_rf.c: viscnn rf MODEL --layer L --y Y --x X — the receptive field of one
// unit as one line: the input pixels connected to it, then the unclipped box
// (which may reach into padding) and, when the layer has one, its jump.
// --json prints the same as JSON; --image IMG -o RF.png draws the field.
#include <stdio.h>
#include <stdlib.h>
#include "cli.h"
#include "picture.h"

int cmd_rf(int argc, char **argv, vc_error *err) {
    cli_args a;
    vc_model *m = NULL;
    int rc = cli_parse(&a, "rf", argc, argv, NULL, err);
    if (rc) return rc;
    const char *layer = cli_opt(&a, "layer"), *ys = cli_opt(&a, "y"), *xs = cli_opt(&a, "x"), *image = cli_opt(&a, "image"),
               *out = cli_opt(&a, "o");
    int json = cli_flag(&a, "json");
    double t0 = cli_now();
    if (!!image != !!out) return cli_fail(err, VC_EINPUT, "rf: --image IMG and -o RF.png go together (the picture and where to write it)");
    if (out && cli_check_ext("rf", "-o", out, (const char *const[]){".png", NULL}, err) < 0) return VC_EINPUT;
    int y, x;
    if ((rc = cli_int(&a, "y", 0, -1000000000, 1000000000, &y, err)) ||
        (rc = cli_int(&a, "x", 0, -1000000000, 1000000000, &x, err)) || (rc = cli_check_unused(&a, err)))
        return rc;
    if (a.n_pos < 1) return cli_fail(err, VC_EINPUT, "rf: missing MODEL argument");
    if (a.n_pos > 1) return cli_fail(err, VC_EINPUT, "rf: unexpected argument '%s'", a.pos[1]);
    if (!layer) return cli_fail(err, VC_EINPUT, "rf: missing --layer L (a layer name, see viscnn info)");
    if ((rc = vc_model_load(&m, a.pos[0], err))) return rc;
    int node = -1, rank = 0, nh = 0, nw = 0;
    const char *name = NULL;
    if (vc_model_find_node(m, layer, &node, NULL) == VC_OK)
        vc_model_node_detail(m, node, &rank, NULL, NULL), vc_model_node(m, node, &name, NULL, NULL, &nh, &nw, NULL);
    if (node < 0) rc = cli_fail(err, VC_EINPUT, "rf: --layer %s: no such layer in %s (see viscnn info)", layer, cli_model_path(m));
    else if (!ys && nh > 1) rc = cli_fail(err, VC_EINPUT, "rf: missing --y (%s has rows 0..%d)", name, nh - 1);
    else if (!xs && nw > 1) rc = cli_fail(err, VC_EINPUT, "rf: missing --x (%s has columns 0..%d)", name, nw - 1);
    else if (y < 0 || y >= nh) rc = cli_fail(err, VC_EINPUT, "rf: --y %d: outside %s's rows 0..%d", y, name, nh - 1);
    else if (x < 0 || x >= nw) rc = cli_fail(err, VC_EINPUT, "rf: --x %d: outside %s's columns 0..%d", x, name, nw - 1);
    int box[4], cl[4], affine = 0, jump[2];   // {y0, x0, y1, x1}
    if (!rc) rc = vc_model_rf(m, node, y, x, box, cl, &affine, jump, err);
    int empty = cl[2] < cl[0] || cl[3] < cl[1];
    if (!rc && json) {
        printf("{\"layer\": ");
        vc_json_string(stdout, name);
        printf(", \"y\": %d, \"x\": %d, \"empty\": %s, \"rows\": [%d, %d], \"cols\": [%d, %d], "
               "\"unclipped\": {\"rows\": [%d, %d], \"cols\": [%d, %d]}",
               y, x, empty ? "true" : "false", cl[0], cl[2], cl[1], cl[3], box[0], box[2], box[1], box[3]);
        if (affine && rank == 4) printf(", \"jump\": [%d, %d]", jump[0], jump[1]);
        printf("}\n");
    } else if (!rc) {
        if (rank == 4) printf("%s (y=%d, x=%d): ", vc_str(name), y, x);
        else printf("%s: ", vc_str(name));
        if (empty) printf("no input pixels (the unit reads only padding)");
        else printf("input rows %d..%d, cols %d..%d (%dx%d)", cl[0], cl[2], cl[1], cl[3], cl[2] - cl[0] + 1, cl[3] - cl[1] + 1);
        printf("; unclipped rows %d..%d, cols %d..%d (%dx%d)", box[0], box[2], box[1], box[3],
               box[2] - box[0] + 1, box[3] - box[1] + 1);
        if (affine && rank == 4) printf(", jump %dx%d", jump[0], jump[1]);
        printf("\n");
    }
    if (!rc && image) {   // the field on the image as the model sees it (resized, cropped)
        int c, h, w;
        float mean[3], std[3];
        vc_model_node(m, 0, NULL, NULL, &c, &h, &w, NULL);
        vc_model_preprocess(m, NULL, NULL, NULL, mean, std, NULL);
        float *xi = cli_malloc((size_t)c * h * w * sizeof(float));
        rc = vc_image_preprocess(m, image, xi, err);
        if (!rc) rc = picture_rf(out, xi, c, h, w, mean, std, cl, err);
        free(xi);
        char what[160];
        snprintf(what, sizeof what, "the receptive field of %s (y=%d, x=%d) on %s (%dx%d)", vc_str(name), y, x, image, h, w);
        if (!rc) cli_wrote(out, what, t0);
    }
    vc_model_free(m);
    return rc;
}
