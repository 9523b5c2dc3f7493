// imageset.c (api): viscnn.h's image sets, batches from .npy and progress
// reports (since 0.2), over viscnn/imageset.c.
#include <stdlib.h>
#include "api.h"
#include "../imageset.h"
#include "../../engine/util.h"

int vc_imageset_open(vc_imageset **out, const vc_model *m, const char *path, vc_error *err) {
    API_NEED(out, err);
    *out = NULL;
    API_NEED(m, err);
    API_NEED(path, err);
    vc_imageset *s = calloc_check(1, sizeof *s);
    int rc = imageset_open_path(s, m, path, err);
    if (rc) { imageset_free(s); free(s); return rc; }
    *out = s;
    return VC_OK;
}

int vc_imageset_open_npy(vc_imageset **out, const vc_model *m, const char *x_npy, const char *labels_npy, int by_label,
                         vc_error *err) {
    API_NEED(out, err);
    *out = NULL;
    API_NEED(m, err);
    API_NEED(x_npy, err);
    vc_imageset *s = calloc_check(1, sizeof *s);
    int rc = imageset_open_npy(s, m, x_npy, labels_npy, by_label, err);
    if (rc) { imageset_free(s); free(s); return rc; }
    *out = s;
    return VC_OK;
}

void vc_imageset_free(vc_imageset *s) {
    if (!s) return;
    imageset_free(s);
    free(s);
}

int vc_imageset_size(const vc_imageset *s, int *n_images, int *n_categories, const char **source, vc_error *err) {
    API_NEED(s, err);
    if (n_images) *n_images = s->n;
    if (n_categories) *n_categories = s->n_cat;
    if (source) *source = s->source;
    return VC_OK;
}

int vc_imageset_image(const vc_imageset *s, int i, const char **path, int *label, int *category, vc_error *err) {
    API_NEED(s, err);
    if (i < 0 || i >= s->n) return vc_fail(err, VC_EINPUT, "%s: image %d out of range [0, %d) in %s", __func__, i, s->n, s->source);
    if (path) *path = s->x ? NULL : s->ds.paths[i];
    if (label) *label = s->label[i];
    if (category) *category = s->cat[i];
    return VC_OK;
}

int vc_imageset_category(const vc_imageset *s, int c, const char **name, vc_error *err) {
    API_NEED(s, err);
    if (c < 0 || c >= s->n_cat)
        return vc_fail(err, VC_EINPUT, "%s: category %d out of range [0, %d) in %s", __func__, c, s->n_cat, s->source);
    if (name) *name = s->cat_names[c];
    return VC_OK;
}

int vc_imageset_find_category(const vc_imageset *s, const char *name, int *c, vc_error *err) {
    API_NEED(s, err);
    API_NEED(name, err);
    API_NEED(c, err);
    *c = imageset_find_category(s, name);
    return VC_OK;
}

int vc_imageset_load(const vc_imageset *s, const int *idx, int n, float *x, int *labels, vc_error *err) {
    API_NEED(s, err);
    API_NEED(idx, err);
    API_NEED(x, err);
    for (int k = 0; k < n; k++)
        if (idx[k] < 0 || idx[k] >= s->n)
            return vc_fail(err, VC_EINPUT, "%s: image %d out of range [0, %d) in %s", __func__, idx[k], s->n, s->source);
    return imageset_load(s, idx, n, x, labels, err);
}

int vc_imageset_set_checkpoint(vc_imageset *s, const char *dir, int every, vc_error *err) {
    API_NEED(s, err);
    if (every < 1) return vc_fail(err, VC_EINPUT, "%s: every %d images; need at least 1", __func__, every);
    s->checkpoint = dir;
    s->checkpoint_every = every;
    return VC_OK;
}

void vc_imageset_warn(const vc_imageset *s) {
    if (s) imageset_warn(s);
}

int vc_batch_read(const vc_model *m, const char *path, float **x, int *n, vc_error *err) {
    API_NEED(m, err);
    API_NEED(path, err);
    API_NEED(x, err);
    API_NEED(n, err);
    return imageset_read_batch(m, path, x, n, err);
}

void vc_progress_set_hook(vc_progress_fn fn, void *ctx) { progress_set_hook(fn, ctx); }
int vc_progress(const char *label, int done, int total) { return progress(label, done, total); }
