// cli.c: argument parsing and batch loading shared by the commands.
#include "cli.h"
#include <stdlib.h>
#include <string.h>
#include "../../engine/util.h"
#include "../../loaders/image.h"
#include "../../loaders/npy.h"

int cli_parse(cli_args *a, const char *cmd, int argc, char **argv, const char *const *flags, vc_error *err) {
    memset(a, 0, sizeof *a);
    a->cmd = cmd;
    for (int i = 0; i < argc; i++) {
        const char *s = argv[i];
        if (s[0] == '-' && s[1] == '-' && s[2]) {
            if (a->n_opt >= 64) return vc_fail(err, VC_EINPUT, "%s: too many options", cmd);
            int is_flag = 0;
            for (int f = 0; flags && flags[f]; f++) if (!strcmp(flags[f], s + 2)) is_flag = 1;
            a->key[a->n_opt] = s + 2;
            if (!is_flag) {
                if (i + 1 >= argc) return vc_fail(err, VC_EINPUT, "%s: option --%s needs a value", cmd, s + 2);
                a->val[a->n_opt] = argv[++i];
            }
            a->n_opt++;
        } else if (!strcmp(s, "-o")) {
            if (i + 1 >= argc) return vc_fail(err, VC_EINPUT, "%s: option -o needs a value", cmd);
            a->key[a->n_opt] = "o";
            a->val[a->n_opt++] = argv[++i];
        } else {
            if (a->n_pos >= 256) return vc_fail(err, VC_EINPUT, "%s: too many arguments", cmd);
            a->pos[a->n_pos++] = s;
        }
    }
    return VC_OK;
}

const char *cli_opt(cli_args *a, const char *name) {
    const char *v = NULL;
    for (int i = 0; i < a->n_opt; i++)
        if (!strcmp(a->key[i], name)) { a->used[i] = 1; v = a->val[i]; }
    return v;
}

int cli_flag(cli_args *a, const char *name) {
    int on = 0;
    for (int i = 0; i < a->n_opt; i++)
        if (!strcmp(a->key[i], name)) { a->used[i] = 1; on = 1; }
    return on;
}

int cli_check_unused(cli_args *a, vc_error *err) {
    for (int i = 0; i < a->n_opt; i++)
        if (!a->used[i]) return vc_fail(err, VC_EINPUT, "%s: unknown option %s%s", a->cmd, a->key[i][1] ? "--" : "-", a->key[i]);
    return VC_OK;
}

int cli_int(cli_args *a, const char *name, int def, int lo, int hi, int *out, vc_error *err) {
    const char *v = cli_opt(a, name);
    *out = def;
    if (!v) return VC_OK;
    char *end;
    long x = strtol(v, &end, 10);
    if (end == v || *end || x < lo || x > hi)
        return vc_fail(err, VC_EINPUT, "%s: --%s %s: expected an integer in [%d, %d]", a->cmd, name, v, lo, hi);
    *out = (int)x;
    return VC_OK;
}

int cli_load_batch(const vc_model *m, cli_args *a, int n_images, const char *const *images,
                   float **x, int *N, vc_error *err) {
    const vc_node *in = &m->nodes[0];
    const char *npy = cli_opt(a, "input");
    *x = NULL;
    *N = 0;
    if (npy) {
        if (n_images) return vc_fail(err, VC_EINPUT, "%s: give images or --input, not both", a->cmd);
        vc_npy arr;
        int rc = npy_read(&arr, npy, 'f', err);
        if (rc) return rc;
        if (arr.rank != 4 || arr.dim[1] != in->c || arr.dim[2] != in->h || arr.dim[3] != in->w || arr.dim[0] < 1) {
            vc_fail(err, VC_EINPUT, "%s: shape (%lld,%lld,%lld,%lld) does not match the model input (N,%d,%d,%d)", npy,
                    arr.rank > 0 ? arr.dim[0] : -1, arr.rank > 1 ? arr.dim[1] : -1, arr.rank > 2 ? arr.dim[2] : -1,
                    arr.rank > 3 ? arr.dim[3] : -1, in->c, in->h, in->w);
            npy_free(&arr);
            return VC_EINPUT;
        }
        *N = (int)arr.dim[0];
        *x = arr.f;
        arr.f = NULL;
        npy_free(&arr);
        return VC_OK;
    }
    if (!n_images) return vc_fail(err, VC_EINPUT, "%s: no input: give image files or --input X.npy", a->cmd);
    float *buf = malloc_check((size_t)n_images * in->size * sizeof(float));
    for (int i = 0; i < n_images; i++) {
        int rc = image_preprocess(buf + (size_t)i * in->size, images[i], &m->pre, in->h, in->w, err);
        if (rc) { free(buf); return rc; }
    }
    *x = buf;
    *N = n_images;
    return VC_OK;
}
