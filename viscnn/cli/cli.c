// cli.c: argument parsing and batch loading shared by the commands.
#include "cli.h"
#include "help_table.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <stdarg.h>

int cli_fail(vc_error *e, int code, const char *fmt, ...) {
    if (e) {
        char raw[sizeof e->msg];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(raw, sizeof raw, fmt, ap);
        va_end(ap);
        size_t o = 0;
        for (const unsigned char *s = (const unsigned char *)raw; *s && o + 5 < sizeof e->msg; s++) {
            if (*s < 0x20 || *s == 0x7f) o += (size_t)snprintf(e->msg + o, 5, "\\x%02x", *s);
            else e->msg[o++] = (char)*s;
        }
        e->msg[o] = 0;
    }
    return code;
}

static void *check_alloc(void *p, size_t n) {
    if (!p) { fprintf(stderr, "viscnn: out of memory (%zu bytes)\n", n); abort(); }
    return p;
}
void *cli_malloc(size_t n) { return check_alloc(malloc(n ? n : 1), n); }
void *cli_calloc(size_t n, size_t size) { return check_alloc(calloc(n ? n : 1, size ? size : 1), n * size); }
char *cli_strdup(const char *s) {
    size_t n = strlen(s) + 1;
    return memcpy(cli_malloc(n), s, n);
}

// Options naming a file the command writes.
static int is_output(const char *key) {
    static const char *const outs[] = {"o", "save-input", "decisions", "pruned", "trace", NULL};
    for (int i = 0; outs[i]; i++)
        if (!strcmp(outs[i], key)) return 1;
    return 0;
}

// An output that is the very file an argument reads (`circuit M.safetensors
// -o M.safetensors`) would replace the input, model included, with no way
// back: refused. Compared by device and inode, so other spellings of the
// path and hard links count; an output that is a symlink to an input is
// not the input (the write replaces the link, not its target). `train` may
// write over the model it starts from (training in place).
static int check_outputs(const cli_args *a, vc_error *err) {
    if (!strcmp(a->cmd, "train")) return VC_OK;
    for (int i = 0; i < a->n_opt; i++) {
        struct stat so, si;
        if (!a->val[i] || !is_output(a->key[i]) || lstat(a->val[i], &so) || !S_ISREG(so.st_mode)) continue;
        for (int j = -a->n_pos; j < a->n_opt; j++) {
            const char *in = j < 0 ? a->pos[j + a->n_pos] : is_output(a->key[j]) ? NULL : a->val[j];
            if (!in || stat(in, &si) || !S_ISREG(si.st_mode) || si.st_dev != so.st_dev || si.st_ino != so.st_ino) continue;
            return cli_fail(err, VC_EINPUT, "%s: %s%s %s: is the input %s; writing it would replace that file "
                            "(choose another output name)", a->cmd, cli_dash(a->key[i]), a->key[i],
                            a->val[i], in);
        }
    }
    return VC_OK;
}

// Options are checked against the help table (help_table.c): an option it
// does not list for the command is refused here, so the code can accept no
// undocumented option. `flags` (NULL-terminated, may be NULL) is what callers
// used to pass before the table knew; each must be a flag there.
int cli_parse(cli_args *a, const char *cmd, int argc, char **argv, const char *const *flags, vc_error *err) {
    memset(a, 0, sizeof *a);
    a->cmd = cmd;
    const cli_help_entry *h = cli_help_find(cmd);
    if (!h) return cli_fail(err, VC_EINTERNAL, "%s: the command has no entry in the help table (viscnn/cli/help_table.c)", cmd);
    for (int f = 0; flags && flags[f]; f++) {
        const cli_option *o = cli_help_option(h, flags[f]);
        if (!o || o->arg) return cli_fail(err, VC_EINTERNAL, "%s: --%s is no flag in the help table", cmd, flags[f]);
    }
    for (int i = 0; i < argc; i++) {
        const char *s = argv[i];
        int long_opt = s[0] == '-' && s[1] == '-' && s[2];
        if (!long_opt && strcmp(s, "-o")) {
            if (a->n_pos >= 256) return cli_fail(err, VC_EINPUT, "%s: too many arguments", cmd);
            a->pos[a->n_pos++] = s;
            continue;
        }
        if (a->n_opt >= 64) return cli_fail(err, VC_EINPUT, "%s: too many options", cmd);
        const char *name = s + (long_opt ? 2 : 1), *eq = long_opt ? strchr(name, '=') : NULL;
        size_t nl = eq ? (size_t)(eq - name) : strlen(name);
        char key[64];
        if (nl >= sizeof key) nl = sizeof key - 1;
        memcpy(key, name, nl);
        key[nl] = 0;
        const cli_option *o = cli_help_option(h, key);
        if (o && long_opt != (cli_dash(o->name)[1] == '-')) o = NULL;   // -o only, never --o
        if (!o) return cli_fail(err, VC_EINPUT, "%s: unknown option %.*s (viscnn %s --help lists them)", cmd,
                               (int)(nl + (long_opt ? 2 : 1)), s, cmd);
        a->key[a->n_opt] = o->name;
        if (!o->arg && eq) return cli_fail(err, VC_EINPUT, "%s: option --%s takes no value", cmd, o->name);
        if (o->arg) {
            if (eq) a->val[a->n_opt] = eq + 1;
            else if (i + 1 < argc) a->val[a->n_opt] = argv[++i];
            else return cli_fail(err, VC_EINPUT, "%s: option %s needs a value (%s)", cmd, s, o->arg);
        }
        a->n_opt++;
    }
    return check_outputs(a, err);
}

const char *cli_opt(cli_args *a, const char *name) {
    const char *v = NULL;
    for (int i = 0; i < a->n_opt; i++)
        if (!strcmp(a->key[i], name)) { a->used[i] = 1; v = a->val[i]; }
    return v;
}

int cli_opt_all(cli_args *a, const char *name, const char **out, int max) {
    int n = 0;
    for (int i = 0; i < a->n_opt; i++)
        if (!strcmp(a->key[i], name)) { a->used[i] = 1; if (n < max) out[n] = a->val[i]; n++; }
    return n;
}

int cli_flag(cli_args *a, const char *name) {
    int on = 0;
    for (int i = 0; i < a->n_opt; i++)
        if (!strcmp(a->key[i], name)) { a->used[i] = 1; on = 1; }
    return on;
}

int cli_check_unused(cli_args *a, vc_error *err) {
    for (int i = 0; i < a->n_opt; i++)
        if (!a->used[i]) return cli_fail(err, VC_EINPUT, "%s: option %s%s does not apply here (viscnn %s --help says when it does)", a->cmd,
                                    cli_dash(a->key[i]), a->key[i], a->cmd);
    return VC_OK;
}

int cli_int(cli_args *a, const char *name, int def, int lo, int hi, int *out, vc_error *err) {
    const char *v = cli_opt(a, name);
    *out = def;
    if (!v) return VC_OK;
    char *end;
    long x = strtol(v, &end, 10);
    if (end == v || *end || x < lo || x > hi)
        return cli_fail(err, VC_EINPUT, "%s: --%s %s: expected an integer in [%d, %d]", a->cmd, name, v, lo, hi);
    *out = (int)x;
    return VC_OK;
}

int cli_load_batch(const vc_model *m, cli_args *a, int n_images, const char *const *images,
                   float **x, int *N, vc_error *err) {
    const char *npy = cli_opt(a, "input");
    *x = NULL;
    *N = 0;
    if (npy) {
        if (n_images) return cli_fail(err, VC_EINPUT, "%s: give images or --input, not both", a->cmd);
        return vc_batch_read(m, npy, x, N, err);
    }
    if (!n_images) return cli_fail(err, VC_EINPUT, "%s: no input: give image files or --input X.npy", a->cmd);
    int c, h, w;
    vc_model_node(m, 0, NULL, NULL, &c, &h, &w, NULL);
    size_t size = (size_t)c * h * w;
    float *buf = cli_malloc((size_t)n_images * size * sizeof(float));
    for (int i = 0; i < n_images; i++) {
        int rc = vc_image_preprocess(m, images[i], buf + (size_t)i * size, err);
        if (rc) { free(buf); return rc; }
    }
    *x = buf;
    *N = n_images;
    return VC_OK;
}

int cli_double(cli_args *a, const char *name, double def, double lo, double hi, double *out, vc_error *err) {
    const char *v = cli_opt(a, name);
    *out = def;
    if (!v) return VC_OK;
    char *end;
    double x = strtod(v, &end);
    if (end == v || *end || !(x >= lo && x <= hi))
        return cli_fail(err, VC_EINPUT, "%s: --%s %s: expected a number in [%g, %g]", a->cmd, name, v, lo, hi);
    *out = x;
    return VC_OK;
}

// --idx IMAGES --labels LABELS, or --images FOLDER (keys prefixed for the test set).
int cli_open_labelled(vc_labelled **s, const vc_model *m, cli_args *a, const char *idx_key, const char *labels_key,
                      const char *images_key, int limit, int required, vc_error *err) {
    const char *idx = cli_opt(a, idx_key), *labels = cli_opt(a, labels_key), *images = cli_opt(a, images_key);
    *s = NULL;
    if (idx && images) return cli_fail(err, VC_EINPUT, "%s: give --%s or --%s, not both", a->cmd, idx_key, images_key);
    if (idx && !labels) return cli_fail(err, VC_EINPUT, "%s: --%s IMAGES needs --%s LABELS", a->cmd, idx_key, labels_key);
    if (labels && !idx) return cli_fail(err, VC_EINPUT, "%s: --%s goes with --%s IMAGES", a->cmd, labels_key, idx_key);
    if (idx) return vc_labelled_open_idx(s, m, idx, labels, limit, err);
    if (images) {
        int rc = vc_labelled_open_folder(s, m, images, limit, err);
        vc_imageset *w;   // the set opened: name what its class folders leave out
        if (!rc && vc_imageset_open(&w, m, images, err) == VC_OK) { vc_imageset_warn(w); vc_imageset_free(w); }
        return rc;
    }
    if (required) return cli_fail(err, VC_EINPUT, "%s: give --%s IMAGES --%s LABELS (IDX) or --%s FOLDER (class subfolders)",
                                 a->cmd, idx_key, labels_key, images_key);
    return VC_OK;
}

int cli_open_set(vc_imageset **s, const vc_model *m, cli_args *a, int by_label, vc_error *err) {
    *s = NULL;
    const char *images = cli_opt(a, "images"), *input = cli_opt(a, "input"), *labels = cli_opt(a, "labels");
    const char *ck = cli_opt(a, "checkpoint");
    if (!images) images = cli_opt(a, "image");
    if (!!images == !!input) return cli_fail(err, VC_EINPUT, "%s: give --images PATH or --input X.npy (one of them)", a->cmd);
    if (labels && !input) return cli_fail(err, VC_EINPUT, "%s: --labels goes with --input", a->cmd);
    int every, rc = cli_int(a, "checkpoint-every", 1024, 1, 1 << 30, &every, err);
    if (rc) return rc;
    if (!ck && cli_opt(a, "checkpoint-every"))
        return cli_fail(err, VC_EINPUT, "%s: --checkpoint-every goes with --checkpoint DIR", a->cmd);
    rc = images ? vc_imageset_open(s, m, images, err) : vc_imageset_open_npy(s, m, input, labels, by_label, err);
    if (!rc && ck) rc = vc_imageset_set_checkpoint(*s, ck, every, err);
    return rc;
}

int cli_check_layers(const vc_model *m, const char *const *names, int n, const char *cmd, vc_error *err) {
    for (int k = 0; k < n; k++) {
        int node;
        const char *op;
        if (vc_model_find_node(m, names[k], &node, NULL))
            return cli_fail(err, VC_EINPUT, "%s: --layer %s: no such layer in %s (see viscnn info)", cmd, names[k], cli_model_path(m));
        vc_model_node(m, node, NULL, &op, NULL, NULL, NULL, NULL);
        if (strcmp(op, "conv2d"))
            return cli_fail(err, VC_EINPUT, "%s: --layer %s is a %s; scores belong to conv2d layers", cmd, names[k], op);
    }
    return VC_OK;
}

const char *cli_model_path(const vc_model *m) {
    const char *path = NULL;
    vc_model_about(m, NULL, &path, NULL);
    return path;
}

double cli_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

void cli_wrote(const char *path, const char *what, double t0) {
    struct stat st;
    double size = stat(path, &st) == 0 ? (double)st.st_size : 0;
    const char *unit = "bytes";
    if (size >= 1e6) { size /= 1e6; unit = "MB"; }
    else if (size >= 1e3) { size /= 1e3; unit = "kB"; }
    fprintf(stderr, "wrote %s: %s, %.*f %s, %.2f s\n", path, what, strcmp(unit, "bytes") ? 1 : 0, size, unit, cli_now() - t0);
}

int cli_check_ext(const char *cmd, const char *opt, const char *path, const char *const *exts, vc_error *err) {
    const char *dot = strrchr(path, '.'), *slash = strrchr(path, '/');
    for (int k = 0; exts[k]; k++)
        if (dot && (!slash || dot > slash) && dot != path && !strcmp(dot, exts[k])) return k;
    char list[256] = "";
    for (int k = 0; exts[k]; k++)
        snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", k ? (exts[k + 1] ? ", " : " or ") : "", exts[k]);
    cli_fail(err, VC_EINPUT, "%s: %s %s: the output must end in %s", cmd, opt, path, list);
    return -1;
}

void cli_put_escaped(FILE *f, const char *s) {
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p < 0x20 || *p == 0x7f || *p == '\\') fprintf(f, "\\x%02x", *p);
        else fputc(*p, f);
    }
}
