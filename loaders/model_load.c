// model_load.c: a model file (.safetensors whose metadata holds viscnn.graph)
// -> vc_model. Reading the container is this file's job; checking and
// building the graph is the engine's (vc_model_build in engine/graph.c).
#include <stdlib.h>
#include "safetensors.h"
#include "../engine/engine.h"

static int model_from_st(vc_model **out, st_file f, const char *path, vc_error *err);

int vc_model_load(vc_model **out, const char *path, vc_error *err) {
    if (!out) return vc_fail(err, VC_EINPUT, "vc_model_load: argument out is NULL");
    *out = NULL;
    if (!path) return vc_fail(err, VC_EINPUT, "vc_model_load: argument path is NULL");
    st_file f;
    int rc = st_read(&f, path, err);
    if (rc) return rc;
    return model_from_st(out, f, path, err);
}

int vc_model_load_memory(vc_model **out, const void *data, size_t size, const char *name, vc_error *err) {
    if (!out) return vc_fail(err, VC_EINPUT, "vc_model_load_memory: argument out is NULL");
    *out = NULL;
    if (!name) name = "<memory>";
    if (!data) return vc_fail(err, VC_EINPUT, "%s: no data", name);
    st_file f;
    int rc = st_read_memory(&f, data, size, name, err);
    if (rc) return rc;
    return model_from_st(out, f, name, err);
}

// Builds the model from a parsed file, taking its buffer (freed either way).
static int model_from_st(vc_model **out, st_file f, const char *path, vc_error *err) {
    int rc;
    const char *gs = st_meta(&f, "viscnn.graph");
    if (!gs) { st_free(&f); return vc_fail(err, VC_EINPUT, "%s: no viscnn.graph in the safetensors metadata (not a viscnn model)", path); }
    vc_tensor_src *t = calloc_check(f.n ? f.n : 1, sizeof *t);
    for (int i = 0; i < f.n; i++)
        t[i] = (vc_tensor_src){f.t[i].name, f.t[i].dtype, f.t[i].rank, f.t[i].dim, f.data + f.t[i].begin};
    vc_model *m = calloc_check(1, sizeof(vc_model));
    m->path = strdup_check(path);
    m->blob = f.buf;
    m->blob_size = f.size;
    rc = vc_model_build(m, gs, f.n, t, err);
    free(t);
    f.buf = NULL;   // now owned by m
    st_free(&f);
    if (rc) { vc_model_free(m); return rc; }
    *out = m;
    return VC_OK;
}
