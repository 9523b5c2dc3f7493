// cmd_edges.c: viscnn edges — the exact per-kernel maps e_ji of one conv
// layer for one image, and optionally the gradient g_j = dF/d(conv output j).
// OUT.npy: (J, I, Ho, Wo) for the selected out-channels J and in-channels I
// (I counted within the group); OUT.grad.npy: (J, Ho, Wo).
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "cli.h"
#include "picture.h"
#include "../imageset.h"
#include "../../engine/util.h"
#include "../../loaders/npy.h"
#include "../../ops/ops.h"

// "3", "0,2,5", "0-7,9" or NULL (all) -> sorted-as-given list in [0, n).
static int parse_list(const char *s, int n, int **out, int *cnt, const char *opt, vc_error *err) {
    *out = malloc_check((size_t)(n > 0 ? n : 1) * 4 * sizeof(int));
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
            return vc_fail(err, VC_EINPUT, "--%s %s: channel out of range [0, %d)", opt, s, n);
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
    return vc_fail(err, VC_EINPUT, "--%s %s: expected channels like 3, 0,2,5 or 0-7", opt, s);
}

int cmd_edges(int argc, char **argv, vc_error *err) {
    cli_args a;
    int rc = cli_parse(&a, "edges", argc, argv, (const char *const[]){"grad", NULL}, err);
    if (rc) return rc;
    if (a.n_pos != 1) return vc_fail(err, VC_EINPUT, "edges: expected one MODEL argument, got %d", a.n_pos);
    const char *out = cli_opt(&a, "o"), *layer = cli_opt(&a, "layer"), *js = cli_opt(&a, "out"),
               *is = cli_opt(&a, "in"), *tstr = cli_opt(&a, "target");
    int want_grad = cli_flag(&a, "grad");
    if (!out) return vc_fail(err, VC_EINPUT, "edges: missing -o OUT.npy");
    if (!layer) return vc_fail(err, VC_EINPUT, "edges: missing --layer L (a conv layer)");
    size_t ol = strlen(out);
    int png = cli_check_ext("edges", "-o", out, (const char *const[]){".npy", ".png", NULL}, err);
    if (png < 0) return VC_EINPUT;
    if (png && want_grad) return vc_fail(err, VC_EINPUT, "edges: --grad writes OUT.grad.npy beside OUT.npy; give -o OUT.npy");
    const char *image = cli_opt(&a, "image");
    struct stat st;   // one image: refuse a folder before anything walks it
    if (image && stat(image, &st) == 0 && S_ISDIR(st.st_mode))
        return vc_fail(err, VC_EINPUT, "edges: --image %s is a folder; give one image file", image);
    double t0 = cli_now();
    vc_model *m;
    if ((rc = vc_model_load(&m, a.pos[0], err))) return rc;
    vc_imageset set = {0};
    vc_target t;
    int *J = NULL, *I = NULL, nj = 0, ni = 0;
    float *x = NULL, *e = NULL, *maps = NULL, *gout = NULL, *seed = NULL;
    vc_run *r = NULL;
    int node = vc_model_find(m, layer);
    if (node < 0) rc = vc_fail(err, VC_EINPUT, "edges: --layer %s: no such layer in %s (see viscnn info)", layer, m->path);
    else if (m->nodes[node].op != VC_OP_CONV2D)
        rc = vc_fail(err, VC_EINPUT, "edges: --layer %s is a %s, not a conv2d layer", layer, vc_op_names[m->nodes[node].op]);
    const vc_node *c = rc ? NULL : &m->nodes[node], *xin = rc ? NULL : &m->nodes[c->in[0]];
    int cg = 0, Cog = 0;
    if (!rc) {
        cg = xin->c / c->a.groups;
        Cog = c->c / c->a.groups;
        rc = parse_list(js, c->c, &J, &nj, "out", err);
    }
    if (!rc) rc = parse_list(is, cg, &I, &ni, "in", err);
    if (!rc) rc = target_parse(&t, m, tstr ? tstr : "loss", err);
    if (!rc && want_grad && t.layer >= 0 && t.layer <= node)
        rc = vc_fail(err, VC_EINPUT, "edges: --target %s is at or before layer %s: no gradient flows back to it", t.text, layer);
    if (!rc) rc = imageset_open(&set, m, &a, 0, err);
    if (!rc && set.n != 1) rc = vc_fail(err, VC_EINPUT, "edges: %s holds %d images; give exactly one", set.source, set.n);
    if (!rc) rc = cli_check_unused(&a, err);
    int label = -1;
    if (!rc) {
        x = malloc_check(m->nodes[0].size * sizeof(float));
        rc = imageset_load(&set, (int[]){0}, 1, x, &label, err);
    }
    if (!rc) {
        r = vc_run_new(m, 1);
        rc = vc_forward(r, x, want_grad ? t.stop : node, 0, err);
    }
    if (!rc && want_grad) {
        seed = malloc_check(m->nodes[t.stop].size * sizeof(float));
        target_seed(&t, m, r, &label, seed);
        rc = vc_backward(r, t.stop, seed, 0, err);
    }
    if (!rc) {
        conv2d_dims d = {.N = 1, .C = xin->c, .H = xin->h, .W = xin->w, .Co = c->c, .kh = c->a.kernel[0], .kw = c->a.kernel[1],
                         .sh = c->a.stride[0], .sw = c->a.stride[1], .ph = c->a.padding[0], .pw = c->a.padding[1],
                         .dh = c->a.dilation[0], .dw = c->a.dilation[1], .groups = c->a.groups};
        conv2d_dims_finish(&d);
        size_t P = (size_t)d.Ho * d.Wo;
        e = malloc_check((size_t)Cog * P * sizeof(float));
        maps = malloc_check((size_t)nj * ni * P * sizeof(float));
        // one input channel's maps serve every selected out-channel of its group
        for (int grp = 0; !rc && grp < c->a.groups; grp++)
            for (int b = 0; b < ni; b++) {
                int any = 0;
                for (int q = 0; q < nj; q++) any |= J[q] / Cog == grp;
                if (!any) continue;
                if ((rc = vc_run_edge_maps(r, node, 0, grp * cg + I[b], e, err))) break;
                for (int q = 0; q < nj; q++)
                    if (J[q] / Cog == grp)
                        memcpy(maps + ((size_t)q * ni + b) * P, e + (size_t)(J[q] % Cog) * P, P * sizeof(float));
            }
        long long dim[4] = {nj, ni, d.Ho, d.Wo};
        if (!rc) rc = png ? picture_sheet(out, maps, nj, ni, d.Ho, d.Wo, err) : npy_write(out, maps, 4, dim, err);
        char what[160];
        snprintf(what, sizeof what, "%d edge maps of %s (%d out x %d in, %dx%d)%s", nj * ni, layer, nj, ni, d.Ho, d.Wo,
                 png ? ", a contact sheet" : "");
        if (!rc) cli_wrote(out, what, t0);
        if (!rc && want_grad) {
            const float *g = vc_run_grad(r, node);
            gout = calloc_check((size_t)nj * P, sizeof(float));
            for (int q = 0; g && q < nj; q++) memcpy(gout + (size_t)q * P, g + (size_t)J[q] * P, P * sizeof(float));
            char gp[4096];
            snprintf(gp, sizeof gp, "%.*s.grad.npy", (int)(ol - 4), out);
            long long gd[3] = {nj, d.Ho, d.Wo};
            rc = npy_write(gp, gout, 3, gd, err);
            snprintf(what, sizeof what, "%d gradient maps g_j of %s (%dx%d)", nj, layer, d.Ho, d.Wo);
            if (!rc) cli_wrote(gp, what, t0);
        }
    }
    free(J); free(I); free(x); free(e); free(maps); free(gout); free(seed);
    vc_run_free(r);
    imageset_free(&set);
    vc_model_free(m);
    return rc;
}
