// cmd_rf.c: viscnn rf MODEL --layer L --y Y --x X — the receptive field of one
// unit as one line: the input pixels connected to it, then the unclipped box
// (which may reach into padding) and, when the layer has one, its jump.
// --json prints the same as JSON; --image IMG -o RF.png draws the field.
#include <stdio.h>
#include <stdlib.h>
#include "cli.h"
#include "picture.h"
#include "../export.h"
#include "../../engine/util.h"
#include "../../loaders/image.h"
#include "../rf.h"

int cmd_rf(int argc, char **argv, vc_error *err) {
    cli_args a;
    vc_model *m = NULL;
    int rc = cli_parse(&a, "rf", argc, argv, NULL, err);
    if (rc) return rc;
    const char *layer = cli_opt(&a, "layer"), *ys = cli_opt(&a, "y"), *xs = cli_opt(&a, "x"), *image = cli_opt(&a, "image"),
               *out = cli_opt(&a, "o");
    int json = cli_flag(&a, "json");
    double t0 = cli_now();
    if (!!image != !!out) return vc_fail(err, VC_EINPUT, "rf: --image IMG and -o RF.png go together (the picture and where to write it)");
    if (out && cli_check_ext("rf", "-o", out, (const char *const[]){".png", NULL}, err) < 0) return VC_EINPUT;
    int y, x;
    if ((rc = cli_int(&a, "y", 0, -1000000000, 1000000000, &y, err)) ||
        (rc = cli_int(&a, "x", 0, -1000000000, 1000000000, &x, err)) || (rc = cli_check_unused(&a, err)))
        return rc;
    if (a.n_pos < 1) return vc_fail(err, VC_EINPUT, "rf: missing MODEL argument");
    if (a.n_pos > 1) return vc_fail(err, VC_EINPUT, "rf: unexpected argument '%s'", a.pos[1]);
    if (!layer) return vc_fail(err, VC_EINPUT, "rf: missing --layer L (a layer name, see viscnn info)");
    if ((rc = vc_model_load(&m, a.pos[0], err))) return rc;
    int node = vc_model_find(m, layer);
    const vc_node *n = node >= 0 ? &m->nodes[node] : NULL;
    if (!n) rc = vc_fail(err, VC_EINPUT, "rf: --layer %s: no such layer in %s (see viscnn info)", layer, m->path);
    else if (!ys && n->h > 1) rc = vc_fail(err, VC_EINPUT, "rf: missing --y (%s has rows 0..%d)", n->name, n->h - 1);
    else if (!xs && n->w > 1) rc = vc_fail(err, VC_EINPUT, "rf: missing --x (%s has columns 0..%d)", n->name, n->w - 1);
    else if (y < 0 || y >= n->h) rc = vc_fail(err, VC_EINPUT, "rf: --y %d: outside %s's rows 0..%d", y, n->name, n->h - 1);
    else if (x < 0 || x >= n->w) rc = vc_fail(err, VC_EINPUT, "rf: --x %d: outside %s's columns 0..%d", x, n->name, n->w - 1);
    vc_box box, cl;
    vc_rf_geom g;
    if (!rc) rc = rf_unit(m, node, y, x, &box, &cl, err);
    if (!rc) rc = rf_geom(m, node, &g, err);
    if (!rc && json) {
        printf("{\"layer\": ");
        export_string(stdout, n->name);
        printf(", \"y\": %d, \"x\": %d, \"empty\": %s, \"rows\": [%d, %d], \"cols\": [%d, %d], "
               "\"unclipped\": {\"rows\": [%d, %d], \"cols\": [%d, %d]}",
               y, x, rf_box_empty(cl) ? "true" : "false", cl.y0, cl.y1, cl.x0, cl.x1, box.y0, box.y1, box.x0, box.x1);
        if (g.affine && n->rank == 4) printf(", \"jump\": [%d, %d]", g.jump[0], g.jump[1]);
        printf("}\n");
    } else if (!rc) {
        if (n->rank == 4) printf("%s (y=%d, x=%d): ", n->name, y, x);
        else printf("%s: ", n->name);
        if (rf_box_empty(cl)) printf("no input pixels (the unit reads only padding)");
        else printf("input rows %d..%d, cols %d..%d (%dx%d)", cl.y0, cl.y1, cl.x0, cl.x1, cl.y1 - cl.y0 + 1, cl.x1 - cl.x0 + 1);
        printf("; unclipped rows %d..%d, cols %d..%d (%dx%d)", box.y0, box.y1, box.x0, box.x1,
               box.y1 - box.y0 + 1, box.x1 - box.x0 + 1);
        if (g.affine && n->rank == 4) printf(", jump %dx%d", g.jump[0], g.jump[1]);
        printf("\n");
    }
    if (!rc && image) {   // the field on the image as the model sees it (resized, cropped)
        const vc_node *in = &m->nodes[0];
        float *xi = malloc_check(in->size * sizeof(float));
        rc = image_preprocess(xi, image, &m->pre, in->h, in->w, err);
        if (!rc) rc = picture_rf(out, xi, in->c, in->h, in->w, &m->pre, cl, err);
        free(xi);
        char what[160];
        snprintf(what, sizeof what, "the receptive field of %s (y=%d, x=%d) on %s (%dx%d)", n->name, y, x, image, in->h, in->w);
        if (!rc) cli_wrote(out, what, t0);
    }
    vc_model_free(m);
    return rc;
}
