// cmd_edges.c: viscnn edges — the exact per-kernel maps e_ji of one conv
// layer for one image, and optionally the gradient g_j = dF/d(conv output j).
// OUT.npy: (J, I, Ho, Wo) for the selected out-channels J and in-channels I
// (I counted within the group); OUT.grad.npy: (J, Ho, Wo).
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "cli.h"
#include "picture.h"

// "3", "0,2,5", "0-7,9" or NULL (all) -> sorted-as-given list in [0, n).
static int parse_list(const char *s, int n, int **out, int *cnt, const char *opt, vc_error *err) {
    *out = cli_malloc((size_t)(n > 0 ? n : 1) * 4 * sizeof(int));
    *cnt = 0;
    if (!s) { for (int k = 0; k < n; k++) (*out)[(*cnt)++] = k; return VC_OK; }
    const char *p = s;
    while (*p) {
        char *end;
        long a = strtol(p, &end, 10), b = a;
        if (end == p) goto bad;
        p = end;
        if (*p == '-') { b = strtol(p + 1, &end, 10); if (end == p + 1) goto bad; p = end; }
        if (a < 0 || b >= n || a > b) {
            free(*out);
            *out = NULL;
            return cli_fail(err, VC_EINPUT, "--%s %s: channel out of range [0, %d)", opt, s, n);
        }
        for (long k = a; k <= b; k++) {
            if (*cnt >= n * 4) goto bad;
            (*out)[(*cnt)++] = (int)k;
        }
        if (*p == ',') p++;
        else if (*p) goto bad;
    }
    if (*cnt) return VC_OK;
bad:
    free(*out);
    *out = NULL;
    return cli_fail(err, VC_EINPUT, "--%s %s: expected channels like 3, 0,2,5 or 0-7", opt, s);
}

int cmd_edges(int argc, char **argv, vc_error *err) {
    cli_args a;
    int rc = cli_parse(&a, "edges", argc, argv, (const char *const[]){"grad", NULL}, err);
    if (rc) return rc;
    if (a.n_pos != 1) return cli_fail(err, VC_EINPUT, "edges: expected one MODEL argument, got %d", a.n_pos);
    const char *out = cli_opt(&a, "o"), *layer = cli_opt(&a, "layer"), *js = cli_opt(&a, "out"),
               *is = cli_opt(&a, "in"), *tstr = cli_opt(&a, "target");
    int want_grad = cli_flag(&a, "grad");
    if (!out) return cli_fail(err, VC_EINPUT, "edges: missing -o OUT.npy");
    if (!layer) return cli_fail(err, VC_EINPUT, "edges: missing --layer L (a conv layer)");
    size_t ol = strlen(out);
    int png = cli_check_ext("edges", "-o", out, (const char *const[]){".npy", ".png", NULL}, err);
    if (png < 0) return VC_EINPUT;
    if (png && want_grad) return cli_fail(err, VC_EINPUT, "edges: --grad writes OUT.grad.npy beside OUT.npy; give -o OUT.npy");
    const char *image = cli_opt(&a, "image");
    struct stat st;   // one image: refuse a folder before anything walks it
    if (image && stat(image, &st) == 0 && S_ISDIR(st.st_mode))
        return cli_fail(err, VC_EINPUT, "edges: --image %s is a folder; give one image file", image);
    double t0 = cli_now();
    vc_model *m;
    if ((rc = vc_model_load(&m, a.pos[0], err))) return rc;
    vc_imageset *set = NULL;
    const char *target = tstr ? tstr : "loss", *op = NULL;
    int *J = NULL, *I = NULL, nj = 0, ni = 0, tlayer = -1, node = -1;
    int cout = 0, cg = 0, Ho = 0, Wo = 0;
    float *x = NULL, *maps = NULL, *gout = NULL;
    vc_session *r = NULL;
    if (vc_model_find_node(m, layer, &node, NULL)) rc = cli_fail(err, VC_EINPUT, "edges: --layer %s: no such layer in %s (see viscnn info)", layer, cli_model_path(m));
    else if (vc_model_node(m, node, NULL, &op, NULL, NULL, NULL, NULL), strcmp(op, "conv2d"))
        rc = cli_fail(err, VC_EINPUT, "edges: --layer %s is a %s, not a conv2d layer", layer, op);
    if (!rc) {
        vc_model_conv(m, node, &cout, &cg, NULL, &Ho, &Wo, NULL);
        rc = parse_list(js, cout, &J, &nj, "out", err);
    }
    if (!rc) rc = parse_list(is, cg, &I, &ni, "in", err);
    if (!rc) rc = vc_target_check(m, target, &tlayer, err);
    if (!rc && want_grad && tlayer >= 0 && tlayer <= node)
        rc = cli_fail(err, VC_EINPUT, "edges: --target %s is at or before layer %s: no gradient flows back to it", target, layer);
    if (!rc) rc = cli_open_set(&set, m, &a, 0, err);
    int n_set = 0;
    const char *source = NULL;
    if (!rc) vc_imageset_size(set, &n_set, NULL, &source, NULL);
    if (!rc && n_set != 1) rc = cli_fail(err, VC_EINPUT, "edges: %s holds %d images; give exactly one", source, n_set);
    if (!rc) rc = cli_check_unused(&a, err);
    int label = -1;
    if (!rc) {
        int c, h, w;
        vc_model_node(m, 0, NULL, NULL, &c, &h, &w, NULL);
        x = cli_malloc((size_t)c * h * w * sizeof(float));
        rc = vc_imageset_load(set, (int[]){0}, 1, x, &label, err);
    }
    if (!rc) rc = vc_session_new(&r, m, err);
    if (!rc) rc = vc_session_forward(r, x, 1, err);
    if (!rc && want_grad) rc = vc_session_backward(r, target, &label, err);
    if (!rc) {
        rc = vc_session_edges(r, node, 0, J, nj, I, ni, &maps, err);
        long long dim[4] = {nj, ni, Ho, Wo};
        if (!rc) rc = png ? picture_sheet(out, maps, nj, ni, Ho, Wo, err) : vc_npy_write(out, maps, 4, dim, err);
        char what[160];
        snprintf(what, sizeof what, "%d edge maps of %s (%d out x %d in, %dx%d)%s", nj * ni, layer, nj, ni, Ho, Wo,
                 png ? ", a contact sheet" : "");
        if (!rc) cli_wrote(out, what, t0);
        if (!rc && want_grad) {
            // g_j = dF/d(conv output j); zero where the target's gradient does not reach the layer
            if (vc_session_edge_grads(r, node, 0, J, nj, &gout, NULL)) gout = cli_calloc((size_t)nj * Ho * Wo, sizeof(float));
            char gp[4096];
            snprintf(gp, sizeof gp, "%.*s.grad.npy", (int)(ol - 4), out);
            long long gd[3] = {nj, Ho, Wo};
            rc = vc_npy_write(gp, gout, 3, gd, err);
            snprintf(what, sizeof what, "%d gradient maps g_j of %s (%dx%d)", nj, layer, Ho, Wo);
            if (!rc) cli_wrote(gp, what, t0);
        }
    }
    free(J); free(I); free(x); vc_free(maps); vc_free(gout);
    vc_session_free(r);
    vc_imageset_free(set);
    vc_model_free(m);
    return rc;
}
