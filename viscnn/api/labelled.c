// labelled.c (api): viscnn.h's labelled sets and accuracy (since 0.2), over
// train/train.h's train_set and train_evaluate.
#include <stdlib.h>
#include <string.h>
#include "api.h"
#include "../imageset.h"
#include "../../engine/util.h"
#include "../../train/train.h"


static int finish(vc_labelled **out, vc_labelled *l, int rc) {
    if (rc) { train_set_free(&l->s); free(l); return rc; }
    *out = l;
    return VC_OK;
}

int vc_labelled_open_idx(vc_labelled **out, const vc_model *m, const char *images, const char *labels, int limit, vc_error *err) {
    API_NEED(out, err);
    *out = NULL;
    API_NEED(m, err);
    API_NEED(images, err);
    API_NEED(labels, err);
    vc_labelled *l = calloc_check(1, sizeof *l);
    return finish(out, l, train_set_open_idx(&l->s, m, images, labels, limit, err));
}

int vc_labelled_open_folder(vc_labelled **out, const vc_model *m, const char *folder, int limit, vc_error *err) {
    API_NEED(out, err);
    *out = NULL;
    API_NEED(m, err);
    API_NEED(folder, err);
    vc_labelled *l = calloc_check(1, sizeof *l);
    return finish(out, l, train_set_open_folder(&l->s, m, folder, limit, err));
}

int vc_labelled_from_imageset(vc_labelled **out, const vc_imageset *s, int limit, vc_error *err) {
    API_NEED(out, err);
    *out = NULL;
    API_NEED(s, err);
    int n = limit > 0 && limit < s->n ? limit : s->n;
    for (int i = 0; i < n; i++)
        if (s->label[i] < 0) return vc_fail(err, VC_EINPUT, "%s: image %d has no label", s->source, i);
    vc_labelled *l = calloc_check(1, sizeof *l);
    size_t size = s->m->nodes[0].size;
    int *idx = malloc_check((size_t)(n ? n : 1) * sizeof(int));
    for (int i = 0; i < n; i++) idx[i] = i;
    l->s.f = malloc_check((size_t)(n ? n : 1) * size * sizeof(float));
    l->s.labels = malloc_check((size_t)(n ? n : 1) * sizeof(int));
    int rc = imageset_load(s, idx, n, l->s.f, l->s.labels, err);
    free(idx);
    l->s.d.n = n;
    l->s.d.f = l->s.f;
    l->s.d.labels = l->s.labels;
    return finish(out, l, rc);
}

void vc_labelled_free(vc_labelled *s) {
    if (!s) return;
    train_set_free(&s->s);
    free(s);
}

int vc_labelled_size(const vc_labelled *s, int *n, const int **labels, vc_error *err) {
    API_NEED(s, err);
    if (n) *n = s->s.d.n;
    if (labels) *labels = s->s.d.labels;
    return VC_OK;
}

int vc_evaluate(const vc_model *m, const vc_labelled *s, int batch, int *pred, double *accuracy, vc_error *err) {
    API_NEED(m, err);
    API_NEED(s, err);
    if (batch < 1) return vc_fail(err, VC_EINPUT, "%s: batch %d; need at least 1", __func__, batch);
    double acc = 0;
    int rc = train_evaluate(m, &s->s.d, batch, pred, &acc, err);
    if (!rc && accuracy) *accuracy = acc;
    return rc;
}
