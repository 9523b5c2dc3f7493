// featvis.h: internals of feature visualisation shared by featvis.c,
// featvis_io.c and the tests (the public API is in include/viscnn.h).
#pragma once
#include "viscnn_internal.h"
#include "fourier.h"
#include "transforms.h"

// A target resolved against the model.
typedef struct {
    int edge, neuron, sign;   // sign +1 maximise, -1 minimise
    int conv;                 // the conv node (0 for an input node)
    int z_node;               // node target: the node map's node (BN after the conv, else the conv)
    int in_node;              // edge target: the conv's input node
    int stop;                 // where the forward stops and the backward starts
    int ch;                   // node: channel of z; edge: global in-channel of the conv's input
} fv_resolved;

int featvis_resolve(fv_resolved *r, const vc_model *m, const vc_featvis_target *t, const vc_featvis_opts *o,
                    vc_error *err);
// Objective of target t for image b of run r (forward done to t's stop); when
// g is not NULL, adds d(objective)/d(output of the stop node) for image b to
// g (the stop node's map for that image, C x h x w).
float featvis_eval(const vc_model *m, const vc_run *r, const fv_resolved *rs, const vc_featvis_target *t, int b, float *g);
// The exact edge map e_ji of conv `conv` on image b: (Ho, Wo), from the input activation x.
void featvis_edge_map(const vc_model *m, int conv, const float *x, int b, int j, int i, float *e);

// One batch's optimisation state; featvis_state_grad is one step without the
// update: pictures from st->par, placed through A (n), forward, objectives
// into obj (n), backward to st->dpar = d(loss)/d(par), loss = -sign * objective
// summed over the batch.
typedef struct {
    const vc_model *m;
    const vc_featvis_target *t;
    fv_resolved *rs;
    int n, C, H, W, Sh, Sw;
    size_t chw, xin, ssz, np;
    fv_param P;
    float *par, *dpar, *u, *du, *x, *seed;
    int *relu_of;             // [node] the ReLU that reads it, or -1 (the redirected gradient)
    vc_run *r;
} fv_state;
int featvis_state_init(fv_state *st, const vc_model *m, const vc_featvis_target *t, int n, const vc_featvis_opts *o,
                       vc_error *err);
int featvis_state_grad(fv_state *st, const fv_affine *A, float *obj, vc_error *err);
void featvis_state_free(fv_state *st);

// 64-bit hash of bytes (FNV-1a over 8-byte words, then the tail).
uint64_t featvis_hash(uint64_t h, const void *p, size_t n);
// Cache key of one picture: the model file's hash, the target, every setting.
uint64_t featvis_key(const vc_model *m, const vc_featvis_target *t, const vc_featvis_opts *o);
// PNG bytes of picture (c, h, w) in [0,1] (8-bit, rounded): malloc'd into *buf.
int featvis_png_encode(const float *img, int c, int h, int w, unsigned char **buf, size_t *len, vc_error *err);
// Writes bytes to path atomically: a unique temp file beside it
// (O_CREAT|O_EXCL|O_NOFOLLOW), fsync, rename; nothing is left on failure.
int featvis_write_atomic(const char *path, const void *buf, size_t len, vc_error *err);
// Checks that a file can be created beside path (before the long work).
int featvis_check_writable(const char *path, vc_error *err);
// The disk cache: DIR/KEY.png and DIR/KEY.json. read: 0 on a hit (both
// malloc'd); write: best effort (a cache that cannot be written is no error).
int featvis_cache_read(const char *dir, uint64_t key, unsigned char **png, size_t *pl, char **json, size_t *jl);
void featvis_cache_write(const char *dir, uint64_t key, const unsigned char *png, size_t pl, const char *json, size_t jl);
// Trace JSON of picture b of res into a malloc'd string.
char *featvis_trace_json(const vc_model *m, const vc_featvis_target *t, const vc_featvis_opts *o,
                         const vc_featvis_result *res, int b, size_t *len);
