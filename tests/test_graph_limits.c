// test_graph_limits.c: the engine's invariant (engine/checked.h): every
// number a graph file supplies is range-checked when the graph loads, and a
// graph that loads runs every op forward and backward. Each case builds a
// one- or two-op graph from JSON with vc_model_build; attributes at their
// documented limits must load and run (finite output), one past them (and
// non-integers, strings, stride 0, empty pool windows) must be refused with
// a message naming the node and the attribute.
#include <math.h>
#include <stdint.h>
#include "../engine/engine.h"
#include "testutil.h"

// op with attrs (JSON text) on a C x H x W input; conv gets a (Co, C/g, kh, kw) weight of ones.
static int build(vc_model **out, int C, int H, int W, const char *op, const char *attrs, int Co, int kh, int kw, int g,
                 vc_error *err) {
    char js[2048];
    int conv = !strcmp(op, "conv2d");
    snprintf(js, sizeof js,
             "{\"format\": \"viscnn.graph\", \"input\": {\"name\": \"x\", \"shape\": [%d, %d, %d]}, \"nodes\": ["
             "{\"name\": \"layer\", \"op\": \"%s\", \"inputs\": [\"x\"], %s \"attrs\": %s}]}",
             C, H, W, op, conv ? "\"params\": {\"weight\": \"w\"}," : "", attrs);
    static int64_t dim[4];
    dim[0] = Co; dim[1] = g ? C / g : 1; dim[2] = kh; dim[3] = kw;
    size_t nw = conv ? (size_t)dim[0] * dim[1] * dim[2] * dim[3] : 1;
    float *blob = malloc_check(nw * sizeof(float));   // the model owns it, as it owns a file's bytes
    for (size_t k = 0; k < nw; k++) blob[k] = 1.0f / 64;
    vc_tensor_src t = {"w", "F32", 4, dim, blob};
    vc_model *m = calloc_check(1, sizeof *m);
    m->path = strdup_check("limits.safetensors");
    m->blob = blob;
    m->blob_size = nw * sizeof(float);
    int rc = vc_model_build(m, js, conv ? 1 : 0, &t, err);
    if (rc) { vc_model_free(m); m = NULL; }
    *out = m;
    return rc;
}

// forward and backward on one image; 1 if every output and input gradient is finite
static int runs(vc_model *m) {
    vc_run *r = vc_run_new(m, 1);
    vc_error err;
    const vc_node *x = &m->nodes[0], *o = &m->nodes[m->output];
    float *img = malloc_check(x->size * sizeof(float)), *seed = malloc_check(o->size * sizeof(float));
    for (size_t k = 0; k < x->size; k++) img[k] = (float)(k % 5) - 2.0f;
    for (size_t k = 0; k < o->size; k++) seed[k] = 1.0f;
    int ok = vc_forward(r, img, -1, 0, &err) == VC_OK && vc_backward(r, m->output, seed, VC_BWD_INPUT | VC_BWD_PARAMS, &err) == VC_OK;
    const float *y = vc_run_act(r, m->output), *dx = vc_run_grad(r, 0);
    for (size_t k = 0; ok && k < o->size; k++) ok = isfinite(y[k]);
    for (size_t k = 0; ok && dx && k < x->size; k++) ok = isfinite(dx[k]);
    free(img); free(seed);
    vc_run_free(r);
    return ok;
}

static void loads(const char *name, int C, int H, int W, const char *op, const char *attrs, int Co, int kh, int kw, int g) {
    vc_model *m;
    vc_error err = {{0}};
    int rc = build(&m, C, H, W, op, attrs, Co, kh, kw, g, &err);
    int ok = rc == VC_OK && runs(m);
    tu_report(name, ok, "%s", rc ? err.msg : "forward/backward failed or not finite");
    vc_model_free(m);
}

static void refused(const char *name, int C, int H, int W, const char *op, const char *attrs, int Co, int kh, int kw, int g,
                    const char *want) {
    vc_model *m;
    vc_error err = {{0}};
    int rc = build(&m, C, H, W, op, attrs, Co, kh, kw, g, &err);
    tu_report(name, rc == VC_EINPUT && strstr(err.msg, want), "rc %d, message '%s', expected '%s'", rc, err.msg, want);
    vc_model_free(m);
}

int main(void) {
    // conv: limits load and run; one past them is refused
    loads("conv padding 1024 (limit) loads and runs", 1, 2, 2, "conv2d", "{\"kernel\": 1, \"padding\": 1024}", 1, 1, 1, 1);
    refused("conv padding 1025 refused", 1, 2, 2, "conv2d", "{\"kernel\": 1, \"padding\": 1025}", 1, 1, 1, 1, "attribute 'padding' must be an integer in [0, 1024]");
    refused("conv padding 2^31-1 refused", 1, 2, 2, "conv2d", "{\"kernel\": 1, \"padding\": [2147483647, 2147483647]}", 1, 1, 1, 1, "'padding'");
    loads("conv stride 1024 (limit) loads and runs", 1, 8, 8, "conv2d", "{\"kernel\": 3, \"stride\": 1024}", 2, 3, 3, 1);
    refused("conv stride 0 refused", 1, 8, 8, "conv2d", "{\"kernel\": 3, \"stride\": [0, 0]}", 2, 3, 3, 1, "attribute 'stride' must be an integer in [1, 1024]");
    refused("conv stride -1 refused", 1, 8, 8, "conv2d", "{\"kernel\": 3, \"stride\": -1}", 2, 3, 3, 1, "'stride'");
    loads("conv dilation 1024 with padding 1024 loads and runs", 1, 4, 4, "conv2d", "{\"kernel\": 2, \"dilation\": 1024, \"padding\": 1024}", 1, 2, 2, 1);
    refused("conv dilation 2^30 refused", 1, 4, 4, "conv2d", "{\"kernel\": 2, \"dilation\": 1073741824}", 1, 2, 2, 1, "'dilation'");
    refused("conv kernel 1025 refused", 1, 4, 4, "conv2d", "{\"kernel\": 1025}", 1, 1, 1, 1, "'kernel'");
    refused("conv groups 1e300 refused", 2, 4, 4, "conv2d", "{\"kernel\": 1, \"groups\": 1e300}", 2, 1, 1, 1, "got 1e+300");
    refused("conv groups 65537 refused", 2, 4, 4, "conv2d", "{\"kernel\": 1, \"groups\": 65537}", 2, 1, 1, 1, "'groups' must be an integer in [1, 65536]");
    refused("conv groups 1.5 refused (not an integer)", 2, 4, 4, "conv2d", "{\"kernel\": 1, \"groups\": 1.5}", 2, 1, 1, 1, "got 1.5");
    refused("conv kernel \"3\" refused (a string)", 1, 4, 4, "conv2d", "{\"kernel\": \"3\"}", 1, 3, 3, 1, "got a string");
    loads("conv groups 2 loads and runs", 2, 4, 4, "conv2d", "{\"kernel\": 1, \"groups\": 2}", 2, 1, 1, 2);
    loads("conv stride null is the default (1)", 1, 4, 4, "conv2d", "{\"kernel\": 3, \"stride\": null, \"padding\": 1}", 1, 3, 3, 1);
    refused("conv output channels 65537 refused", 1, 1, 1, "conv2d", "{\"kernel\": 1}", 65537, 1, 1, 1, "past the limits");
    refused("conv im2col panel over 2^30 values refused", 64, 16384, 16, "conv2d", "{\"kernel\": 32, \"padding\": 16}", 1, 32, 32, 1, "2^30");
    refused("input of more than 2^30 values refused", 4096, 16384, 16384, "relu", "{}", 0, 0, 0, 0, "more than 2^30 values");
    // pools
    loads("maxpool kernel 1024 stride 1 on 1024x1024 loads and runs", 1, 1024, 1024, "maxpool2d", "{\"kernel\": 1024, \"stride\": 1}", 0, 0, 0, 0);
    refused("maxpool kernel 2^31-1 refused", 1, 8, 8, "maxpool2d", "{\"kernel\": [2147483647, 2147483647]}", 0, 0, 0, 0, "'kernel'");
    refused("maxpool padding 1e300 refused", 1, 8, 8, "maxpool2d", "{\"kernel\": 2, \"padding\": [1e300, 1e300]}", 0, 0, 0, 0, "'padding'");
    refused("maxpool dilation 2^63-1 refused", 1, 8, 8, "maxpool2d", "{\"kernel\": 2, \"dilation\": 9223372036854775807}", 0, 0, 0, 0, "'dilation'");
    refused("maxpool window wholly in padding refused", 1, 28, 28, "maxpool2d", "{\"kernel\": 2, \"dilation\": 29, \"padding\": 1, \"stride\": 1}", 0, 0, 0, 0, "covers no input value");
    loads("maxpool dilation 3 padding 1 ceil_mode loads and runs", 1, 9, 9, "maxpool2d", "{\"kernel\": 3, \"dilation\": 3, \"padding\": 1, \"stride\": 2, \"ceil_mode\": true}", 0, 0, 0, 0);
    refused("avgpool with dilation refused", 1, 8, 8, "avgpool2d", "{\"kernel\": 2, \"dilation\": 2}", 0, 0, 0, 0, "no dilation");
    loads("avgpool ceil_mode, count_include_pad false loads and runs", 1, 7, 7, "avgpool2d", "{\"kernel\": 3, \"stride\": 2, \"padding\": 1, \"ceil_mode\": true, \"count_include_pad\": false}", 0, 0, 0, 0);
    refused("avgpool ceil_mode 2 refused", 1, 7, 7, "avgpool2d", "{\"kernel\": 3, \"ceil_mode\": 2}", 0, 0, 0, 0, "'ceil_mode' must be an integer in [0, 1]");
    loads("adaptive_avgpool2d output 65536x1 loads and runs", 1, 4, 4, "adaptive_avgpool2d", "{\"output\": [65536, 1]}", 0, 0, 0, 0);
    refused("adaptive_avgpool2d output 65537 refused", 1, 4, 4, "adaptive_avgpool2d", "{\"output\": 65537}", 0, 0, 0, 0, "'output'");
    refused("lrn size 1025 refused", 3, 4, 4, "lrn", "{\"size\": 1025}", 0, 0, 0, 0, "'size'");
    refused("lrn k 0 refused", 3, 4, 4, "lrn", "{\"size\": 2, \"k\": 0}", 0, 0, 0, 0, "k > 0");
    loads("lrn size 1024 loads and runs", 3, 4, 4, "lrn", "{\"size\": 1024}", 0, 0, 0, 0);
    refused("dropout p 1e300 refused", 1, 4, 4, "dropout", "{\"p\": 1e300}", 0, 0, 0, 0, "'p' must be a finite number");
    return tu_finish();
}
