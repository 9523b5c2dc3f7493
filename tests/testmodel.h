// testmodel.h: building small viscnn model files inside C tests (header-only).
//
//   static mb b = {.rng = {SEED}};        // weights drawn from b.rng
//   mb_conv(&b, "c1", "input", cin_per_group, cout, kh, kw, "\"padding\": 1");
//   mb_op(&b, "r1", "relu", "\"c1\"", "");
//   mb_write(&b, "build/testdata/x/m.safetensors", "m", C, H, W, "fc", err);
//
// Conv weights are uniform in [wlo, whi] (default [0.1, 1]: all positive, so
// that gradient supports are exact); set b.wlo/b.whi for signed weights.
#pragma once
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "testutil.h"
#include "viscnn_internal.h"
#include "../loaders/safetensors.h"

#define MB_MAXT 64
typedef struct {
    char nodes[1 << 15];
    size_t len;
    int n_t;
    char tname[MB_MAXT][96];
    int dim[MB_MAXT][4];
    float *buf[MB_MAXT];
    st_out t[MB_MAXT];
    tu_rng rng;
    float wlo, whi;           // conv weight range; both 0 means [0.1, 1]
} mb;

static inline void mb_node(mb *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static inline void mb_node(mb *b, const char *fmt, ...) {
    if (b->len) b->nodes[b->len++] = ',';
    va_list ap;
    va_start(ap, fmt);
    b->len += vsnprintf(b->nodes + b->len, sizeof b->nodes - b->len, fmt, ap);
    va_end(ap);
    if (b->len >= sizeof b->nodes - 1) { fprintf(stderr, "testmodel: graph too long\n"); exit(1); }
}

// A tensor of values uniform in [lo, hi].
static inline void mb_tensor(mb *b, const char *name, int rank, int d0, int d1, int d2, int d3, float lo, float hi) {
    if (b->n_t >= MB_MAXT) { fprintf(stderr, "testmodel: too many tensors\n"); exit(1); }
    int i = b->n_t++, d[4] = {d0, d1, d2, d3};
    size_t n = 1;
    for (int k = 0; k < rank; k++) { b->dim[i][k] = d[k]; n *= (size_t)d[k]; }
    snprintf(b->tname[i], sizeof b->tname[i], "%.95s", name);
    b->buf[i] = (float *)malloc(n * sizeof(float));
    for (size_t k = 0; k < n; k++) b->buf[i][k] = lo + (hi - lo) * 0.5f * (tu_uniform(&b->rng) + 1.0f);
    b->t[i] = (st_out){b->tname[i], rank, b->dim[i], b->buf[i]};
}

// cin: input channels per group (the weight's dim 1). attrs: more JSON
// members after "kernel" (stride, padding, dilation, groups), or "".
static inline void mb_conv(mb *b, const char *name, const char *in, int cin, int cout, int kh, int kw, const char *attrs) {
    char w[96], bias[96];
    snprintf(w, sizeof w, "%s.weight", name);
    snprintf(bias, sizeof bias, "%s.bias", name);
    float lo = b->wlo || b->whi ? b->wlo : 0.1f, hi = b->wlo || b->whi ? b->whi : 1.0f;
    mb_tensor(b, w, 4, cout, cin, kh, kw, lo, hi);
    mb_tensor(b, bias, 1, cout, 0, 0, 0, lo < 0 ? -0.2f : 0.1f, 0.5f);
    mb_node(b, "{\"name\": \"%s\", \"op\": \"conv2d\", \"inputs\": [\"%s\"], \"params\": {\"weight\": \"%s\", "
               "\"bias\": \"%s\"}, \"attrs\": {\"kernel\": [%d, %d]%s%s}}",
            name, in, w, bias, kh, kw, attrs[0] ? ", " : "", attrs);
}

// inputs: the body of a JSON list ("\"a\", \"b\""); attrs: JSON members or "".
static inline void mb_op(mb *b, const char *name, const char *op, const char *inputs, const char *attrs) {
    mb_node(b, "{\"name\": \"%s\", \"op\": \"%s\", \"inputs\": [%s], \"attrs\": {%s}}", name, op, inputs, attrs);
}

// Eval batchnorm; lo/hi: ranges of weight, bias, running_mean, running_var.
static inline void mb_bn_ranges(mb *b, const char *name, const char *in, int c, const float lo[4], const float hi[4]) {
    const char *role[4] = {"weight", "bias", "running_mean", "running_var"};
    char t[4][96];
    for (int r = 0; r < 4; r++) {
        snprintf(t[r], sizeof t[r], "%s.%s", name, role[r]);
        mb_tensor(b, t[r], 1, c, 0, 0, 0, lo[r], hi[r]);
    }
    mb_node(b, "{\"name\": \"%s\", \"op\": \"batchnorm2d\", \"inputs\": [\"%s\"], \"params\": {\"weight\": \"%s\", "
               "\"bias\": \"%s\", \"running_mean\": \"%s\", \"running_var\": \"%s\"}, \"attrs\": {\"eps\": 1e-5}}",
            name, in, t[0], t[1], t[2], t[3]);
}
// Positive scale and shift, mean 0, var 1: keeps activations positive.
static inline void mb_bn(mb *b, const char *name, const char *in, int c) {
    const float lo[4] = {0.5f, 0.1f, 0.0f, 1.0f}, hi[4] = {1.5f, 0.5f, 0.0f, 1.0f};
    mb_bn_ranges(b, name, in, c, lo, hi);
}

static inline void mb_linear(mb *b, const char *name, const char *in, int nin, int nout, int bias) {
    char w[96], bn[96];
    snprintf(w, sizeof w, "%s.weight", name);
    snprintf(bn, sizeof bn, "%s.bias", name);
    mb_tensor(b, w, 2, nout, nin, 0, 0, b->wlo || b->whi ? b->wlo : 0.1f, b->wlo || b->whi ? b->whi : 1.0f);
    if (bias) {
        mb_tensor(b, bn, 1, nout, 0, 0, 0, -0.1f, 0.1f);
        mb_node(b, "{\"name\": \"%s\", \"op\": \"linear\", \"inputs\": [\"%s\"], \"params\": {\"weight\": \"%s\", "
                   "\"bias\": \"%s\"}}", name, in, w, bn);
    } else
        mb_node(b, "{\"name\": \"%s\", \"op\": \"linear\", \"inputs\": [\"%s\"], \"params\": {\"weight\": \"%s\"}}",
                name, in, w);
}

// Writes the model (input "input" of shape C,H,W; output: a node name, or
// NULL for the last node) to path, creating its folder, and resets b (its
// rng goes on).
static inline int mb_write(mb *b, const char *path, const char *name, int C, int H, int W, const char *output, vc_error *err) {
    char dir[512];
    snprintf(dir, sizeof dir, "%s", path);
    for (char *p = dir + 1; *p; p++)
        if (*p == '/') { *p = 0; mkdir(dir, 0777); *p = '/'; }
    size_t cap = b->len + 1024;
    char *g = (char *)malloc(cap), out[160] = "";
    if (output) snprintf(out, sizeof out, "\"output\": \"%s\", ", output);
    snprintf(g, cap, "{\"format\": \"viscnn.graph\", \"version\": 1, \"name\": \"%s\", \"input\": {\"name\": \"input\", "
                     "\"shape\": [%d, %d, %d]}, %s\"nodes\": [%s]}", name, C, H, W, out, b->nodes);
    const char *key = "viscnn.graph", *val = g;
    int rc = st_write(path, b->n_t, b->t, 1, &key, &val, err);
    for (int i = 0; i < b->n_t; i++) free(b->buf[i]);
    free(g);
    uint64_t seed = b->rng.s;
    float wlo = b->wlo, whi = b->whi;
    memset(b, 0, sizeof *b);
    b->rng.s = seed;
    b->wlo = wlo; b->whi = whi;
    return rc;
}
