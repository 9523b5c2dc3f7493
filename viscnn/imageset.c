// imageset.c: image sources for the analysis commands (see imageset.h).
#include "imageset.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "../engine/util.h"
#include "../loaders/image.h"
#include "../loaders/npy.h"
#include "contrast.h"

static _Thread_local vc_progress_hook hook_fn;
static _Thread_local void *hook_ctx;

void progress_set_hook(vc_progress_hook fn, void *ctx) {
    hook_fn = fn;
    hook_ctx = ctx;
}

int progress(const char *label, int done, int total) {
    if (hook_fn) return hook_fn(hook_ctx, label, done, total);
    if (!isatty(2) || total <= 0) return 0;
    // the rate counts from the first report of this bar (its first batch is done by then)
    static _Thread_local const char *bar_label;
    static _Thread_local int bar_total, bar_done0, bar_last;
    static _Thread_local double bar_t0;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    double now = ts.tv_sec + 1e-9 * ts.tv_nsec;
    if (label != bar_label || total != bar_total || done < bar_last) {
        bar_label = label; bar_total = total; bar_done0 = done; bar_t0 = now;
    }
    bar_last = done;
    int w = 30, f = (int)((long)done * w / total);
    fprintf(stderr, "\r%s [%.*s%*s] %d/%d", label, f, "==============================", w - f, "", done, total);
    double rate = now > bar_t0 ? (done - bar_done0) / (now - bar_t0) : 0;
    if (rate > 0) {
        int eta = (int)((total - done) / rate + 0.5);
        fprintf(stderr, "  %.1f/s  ETA %d:%02d  ", rate, eta / 60, eta % 60);
    }
    if (done >= total) fputc('\n', stderr);
    fflush(stderr);
    return 0;
}

int imageset_read_batch(const vc_model *m, const char *npy, float **x, int *N, vc_error *err) {
    const vc_node *in = &m->nodes[0];
    *x = NULL;
    *N = 0;
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

int imageset_open_npy(vc_imageset *s, const vc_model *m, const char *input, const char *labels, int by_label, vc_error *err) {
    memset(s, 0, sizeof *s);
    s->m = m;
    int rc = imageset_read_batch(m, input, &s->x, &s->n, err);
    if (rc) return rc;
    s->source = input;
    s->cat = calloc_check(s->n, sizeof(int));
    s->label = malloc_check(s->n * sizeof(int));
    for (int i = 0; i < s->n; i++) s->label[i] = -1;
    if (labels) {
        vc_npy l;
        if ((rc = npy_read(&l, labels, 'i', err))) return rc;
        long K = (long)m->nodes[m->output].size;
        if (l.rank != 1 || (int)l.size != s->n) rc = vc_fail(err, VC_EINPUT, "%s: expected %d labels (one per image), shape differs", labels, s->n);
        for (size_t i = 0; !rc && i < l.size; i++)
            if (l.i[i] < 0 || l.i[i] >= K) rc = vc_fail(err, VC_EINPUT, "%s: label %lld at %zu is outside [0, %ld)", labels, l.i[i], i, K);
        for (int i = 0; !rc && i < s->n; i++) s->label[i] = (int)l.i[i];
        npy_free(&l);
        if (rc) return rc;
    }
    if (by_label && labels) {   // one category per label value, in label order
        int K = (int)m->nodes[m->output].size, *map = malloc_check(K * sizeof(int));
        for (int k = 0; k < K; k++) map[k] = -1;
        for (int i = 0; i < s->n; i++) map[s->label[i]] = 0;
        s->cat_names = malloc_check(K * sizeof(char *));
        for (int k = 0; k < K; k++)
            if (map[k] == 0) {
                map[k] = s->n_cat;
                char buf[32];
                snprintf(buf, sizeof buf, "%d", k);
                s->cat_names[s->n_cat++] = strdup_check(k < m->n_labels ? m->labels[k] : buf);
            }
        for (int i = 0; i < s->n; i++) s->cat[i] = map[s->label[i]];
        free(map);
    } else {
        s->n_cat = 1;
        s->cat_names = malloc_check(sizeof(char *));
        const char *b = strrchr(input, '/');
        s->cat_names[0] = strdup_check(b ? b + 1 : input);
    }
    return VC_OK;
}

void imageset_weights_only(vc_imageset *s, const vc_model *m) {
    memset(s, 0, sizeof *s);
    s->m = m;
    s->source = "(no images: weight scores)";
    s->n_cat = 1;
    s->cat_names = malloc_check(sizeof(char *));
    s->cat_names[0] = strdup_check("weights");
}

int imageset_open_path(vc_imageset *s, const vc_model *m, const char *path, vc_error *err) {
    memset(s, 0, sizeof *s);
    s->m = m;
    int rc = dataset_open(&s->ds, path, err);
    if (rc) return rc;
    s->source = path;
    s->n = s->ds.n;
    s->n_cat = s->ds.n_cat;
    s->cat_names = malloc_check(s->n_cat * sizeof(char *));
    for (int c = 0; c < s->n_cat; c++) s->cat_names[c] = strdup_check(s->ds.cat_names[c]);
    s->cat = malloc_check(s->n * sizeof(int));
    s->label = malloc_check(s->n * sizeof(int));
    for (int i = 0; i < s->n; i++) { s->cat[i] = s->ds.cat[i]; s->label[i] = dataset_label(&s->ds, s->cat[i], m); }
    return VC_OK;
}

void imageset_warn(const vc_imageset *s) {
    const vc_dataset *d = &s->ds;
    if (!d->by_folder) return;
    if (d->n_beside)
        fprintf(stderr, "viscnn: warning: %s: %d image%s beside the class folders belong%s to no class and %s not used (%s%s)\n",
                s->source, d->n_beside, d->n_beside > 1 ? "s" : "", d->n_beside > 1 ? "" : "s", d->n_beside > 1 ? "are" : "is",
                d->beside_first, d->n_beside > 1 ? ", ..." : "");
    if (d->n_nested)
        fprintf(stderr, "viscnn: warning: %s: %d folder%s inside class folders %s not read (%s%s); images are read one level down\n",
                s->source, d->n_nested, d->n_nested > 1 ? "s" : "", d->n_nested > 1 ? "are" : "is", d->nested_first,
                d->n_nested > 1 ? ", ..." : "");
    if (d->n_empty)
        fprintf(stderr, "viscnn: warning: %s: %d class folder%s with no images (%s%s)\n", s->source, d->n_empty,
                d->n_empty > 1 ? "s" : "", d->empty_first, d->n_empty > 1 ? ", ..." : "");
    int *seen = calloc_check(s->n_cat, sizeof(int));
    for (int i = 0; i < s->n; i++)
        if (s->label[i] < 0 && !seen[s->cat[i]]) {
            seen[s->cat[i]] = 1;
            fprintf(stderr, "viscnn: warning: %s: %s '%s' matches no label of the model (viscnn info lists them); "
                            "its images are scored against the model's top class\n", vc_str(s->source),
                    d->from_list ? "label" : "folder", vc_str(s->cat_names[s->cat[i]]));
        }
    free(seen);
}

int imageset_indices(const vc_imageset *s, const unsigned char *cats, int *idx) {
    int n = 0;
    for (int i = 0; i < s->n; i++) if (!cats || cats[s->cat[i]]) idx[n++] = i;
    return n;
}

int imageset_find_category(const vc_imageset *s, const char *name) {
    for (int c = 0; c < s->n_cat; c++) if (!strcmp(s->cat_names[c], name)) return c;
    for (int c = 0; c < s->n_cat; c++) if (dataset_name_eq(s->cat_names[c], name)) return c;
    return -1;
}

void imageset_free(vc_imageset *s) {
    for (int c = 0; c < s->n_cat; c++) free(s->cat_names[c]);
    free(s->cat_names); free(s->cat); free(s->label); free(s->x);
    dataset_free(&s->ds);
    memset(s, 0, sizeof *s);
}

int imageset_load(const vc_imageset *s, const int *idx, int n, float *x, int *labels, vc_error *err) {
    const vc_node *in = &s->m->nodes[0];
    for (int k = 0; k < n; k++) {
        float *xk = x + (size_t)k * in->size;
        if (s->x) memcpy(xk, s->x + (size_t)idx[k] * in->size, in->size * sizeof(float));
        else {
            int rc = image_preprocess(xk, s->ds.paths[idx[k]], &s->m->pre, in->h, in->w, err);
            if (rc) return rc;
        }
        if (labels) labels[k] = s->label[idx[k]];
    }
    return VC_OK;
}

void set_scores_free(vc_set_scores *s) {
    for (int c = 0; s->cat && c < s->n_cat; c++) scores_free(&s->cat[c]);
    free(s->cat);
    free(s->cat_images);
    if (s->overall.l) scores_free(&s->overall);
    memset(s, 0, sizeof *s);
}

const vc_scores *set_scores_find(const vc_set_scores *s, const char *name) {
    if (!strcmp(name, "overall")) return &s->overall;
    for (int c = 0; c < s->n_cat; c++) if (!strcmp(s->cat_names[c], name)) return &s->cat[c];
    return NULL;
}

int contrast_terms(const char *expr, const vc_imageset *set, double *coef, vc_error *err) {
    vc_contrast *c;
    int rc = contrast_parse(&c, expr, err);
    if (rc) return rc;
    int n = set->n_cat + 1;
    const char **names = malloc_check(n * sizeof(char *));
    double k0;
    for (int k = 0; k < set->n_cat; k++) names[k] = set->cat_names[k];
    names[set->n_cat] = "overall";
    rc = contrast_linear(c, n, names, coef, &k0, err);
    free(names);
    contrast_free(c);
    return rc;
}

int contrast_clamped(size_t *clamped, size_t *total, const vc_set_scores *ss, const char *expr, vc_error *err) {
    vc_contrast *c;
    int rc = contrast_parse(&c, expr, err);
    if (rc) return rc;
    int n = ss->n_cat + 1;
    const char **names = malloc_check(n * sizeof(char *));
    double *coef = malloc_check(n * sizeof(double)), k0;
    for (int k = 0; k < n; k++) names[k] = k < ss->n_cat ? ss->cat_names[k] : "overall";
    rc = contrast_linear(c, n, names, coef, &k0, err);
    size_t cnt = scores_count(&ss->overall);
    *clamped = 0;
    *total = cnt;
    if (!rc) {
        // the value contrast_eval computes before it clamps, in the same (double) arithmetic
        double *v = malloc_check(cnt * sizeof(double));
        float *flat = malloc_check(cnt * sizeof(float));
        for (size_t i = 0; i < cnt; i++) v[i] = k0;
        for (int k = 0; k < n; k++) {
            if (coef[k] == 0) continue;
            scores_flatten(k < ss->n_cat ? &ss->cat[k] : &ss->overall, flat);
            for (size_t i = 0; i < cnt; i++) v[i] += coef[k] * flat[i];
        }
        for (size_t i = 0; i < cnt; i++) *clamped += v[i] < 0;
        free(v); free(flat);
    }
    free(names); free(coef);
    contrast_free(c);
    return rc;
}
