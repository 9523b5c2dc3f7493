// fuzz_graph.c: structure-aware fuzzing of the viscnn.graph JSON. The input
// bytes are a stream of choices from which a loadable-looking graph is built:
// a small input shape, then a chain (with an occasional add or concat of an
// earlier node) of ops whose attributes are drawn from extreme values
// (0, -1, 2^31-1, 2^63, 1e300, 1.5, "3", null, pairs of them) as well as
// ordinary ones, with weights whose shapes follow the attributes (or not).
// When vc_model_build accepts it, the harness runs forward and backward on
// one image and checks every output is finite: the engine's invariant is
// that a graph that loads runs every op without overflow, out-of-bounds
// access or hang.
#include <math.h>
#include <stdint.h>
#include <cjson/cJSON.h>
#include "fuzz_util.h"
#include "../../engine/engine.h"

typedef struct { const unsigned char *p; size_t n, i; } rd;
static unsigned pick(rd *r, unsigned n) { return r->i < r->n ? r->p[r->i++] % n : 0; }

static cJSON *extreme(rd *r) {
    static const double v[] = {0, 1, 2, 3, 5, -1, 2147483647.0, 9223372036854775807.0, 1e300, 1.5, 1024, 1025, 65536, 7, 4096};
    unsigned k = pick(r, 18);
    if (k == 15) return cJSON_CreateString("3");
    if (k == 16) return cJSON_CreateNull();
    if (k == 17) return cJSON_CreateTrue();
    return cJSON_CreateNumber(v[k]);
}
static cJSON *small(rd *r) { return cJSON_CreateNumber(pick(r, 4)); }
// mostly ordinary values, sometimes extreme ones; ints or [h, w]
static cJSON *attr(rd *r, int lo) {
    int mode = pick(r, 8);
    cJSON *(*f)(rd *) = mode < 2 ? extreme : small;
    if (mode == 7) return cJSON_CreateNumber(lo + (int)pick(r, 3));
    if (pick(r, 2)) { cJSON *a = cJSON_CreateArray(); cJSON_AddItemToArray(a, f(r)); cJSON_AddItemToArray(a, f(r)); return a; }
    return f(r);
}

static const char *ops[] = {"conv2d", "relu", "maxpool2d", "avgpool2d", "adaptive_avgpool2d", "batchnorm2d",
                            "lrn", "add", "concat", "flatten", "linear", "dropout", "log_softmax"};

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size) {
    rd r = {data, size, 0};
    int C = 1 + pick(&r, 3), H = 1 + pick(&r, 9), W = 1 + pick(&r, 9);
    cJSON *g = cJSON_CreateObject();
    cJSON_AddStringToObject(g, "format", "viscnn.graph");
    cJSON *in = cJSON_AddObjectToObject(g, "input");
    cJSON_AddStringToObject(in, "name", "input");
    cJSON *sh = cJSON_AddArrayToObject(in, "shape");
    cJSON_AddItemToArray(sh, cJSON_CreateNumber(C));
    cJSON_AddItemToArray(sh, cJSON_CreateNumber(H));
    cJSON_AddItemToArray(sh, cJSON_CreateNumber(W));
    cJSON *nodes = cJSON_AddArrayToObject(g, "nodes");
    int n_nodes = 1 + pick(&r, 6);
    // tensors: up to 4 per node, F32, shapes chosen from the bytes
    enum { MAXT = 32 };
    static char tname[MAXT][32];
    static int64_t tdim[MAXT][4];
    vc_tensor_src ts[MAXT];
    int nt = 0;
    // all tensor data in one blob, which the model owns (vc_model_free frees it)
    enum { BLOB = 1 << 16 };
    float *blob = malloc(BLOB * sizeof(float));
    size_t used = 0;
    int ch = C;   // the channels of the previous node, as far as we know
    for (int i = 0; i < n_nodes; i++) {
        cJSON *nd = cJSON_CreateObject();
        char name[16], prev[16];
        snprintf(name, sizeof name, "n%d", i);
        snprintf(prev, sizeof prev, i ? "n%d" : "input", i - 1);
        const char *op = ops[pick(&r, 13)];
        cJSON_AddStringToObject(nd, "name", name);
        cJSON_AddStringToObject(nd, "op", op);
        cJSON *ins = cJSON_AddArrayToObject(nd, "inputs");
        cJSON_AddItemToArray(ins, cJSON_CreateString(prev));
        if (!strcmp(op, "add") || (!strcmp(op, "concat") && pick(&r, 2))) {
            char other[16];
            int j = (int)pick(&r, (unsigned)i + 1) - 1;
            snprintf(other, sizeof other, j < 0 ? "input" : "n%d", j);
            cJSON_AddItemToArray(ins, cJSON_CreateString(other));
        }
        cJSON *at = cJSON_AddObjectToObject(nd, "attrs");
        const char *keys[] = {"kernel", "stride", "padding", "dilation", "groups", "ceil_mode", "count_include_pad",
                              "divisor_override", "size", "output", "eps", "alpha", "beta", "k", "p"};
        int lo[] = {1, 1, 0, 1, 1, 0, 0, 0, 1, 1, 0, 0, 0, 1, 0};
        int kh = 1 + pick(&r, 3), kw = kh;
        cJSON_AddItemToObject(at, "kernel", pick(&r, 4) ? cJSON_CreateNumber(kh) : attr(&r, 1));
        for (int k = 1; k < 15; k++)
            if (pick(&r, 3) == 0) cJSON_AddItemToObject(at, keys[k], attr(&r, lo[k]));
        int has_w = !strcmp(op, "conv2d") || !strcmp(op, "linear") || !strcmp(op, "batchnorm2d");
        if (has_w) {
            cJSON *ps = cJSON_AddObjectToObject(nd, "params");
            int co = 1 + pick(&r, 4);
            int roles = !strcmp(op, "batchnorm2d") ? 4 : 2;
            const char *rk[] = {"weight", "bias", "running_mean", "running_var"};
            for (int q = 0; q < roles && nt < MAXT; q++) {
                snprintf(tname[nt], sizeof tname[nt], "%s.%s", name, rk[q]);
                cJSON_AddStringToObject(ps, rk[q], tname[nt]);
                int rank;
                int64_t *d = tdim[nt];
                if (!strcmp(op, "conv2d") && q == 0) { rank = 4; d[0] = co; d[1] = ch; d[2] = kh; d[3] = kw; }
                else if (!strcmp(op, "linear") && q == 0) { rank = 2; d[0] = co; d[1] = ch * (1 + pick(&r, 2)); }
                else { rank = 1; d[0] = !strcmp(op, "batchnorm2d") ? ch : co; }
                if (pick(&r, 8) == 0) d[0] = pick(&r, 5);   // sometimes a wrong shape
                size_t cnt = 1;
                for (int k = 0; k < rank; k++) cnt *= (size_t)d[k];
                if (used + cnt > BLOB) break;
                float *t = blob + used;
                used += cnt;
                for (size_t k = 0; k < cnt; k++) t[k] = q == 3 ? 1.0f + (float)pick(&r, 3) : (float)pick(&r, 7) - 3.0f;
                if (cnt && pick(&r, 16) == 0) t[0] = pick(&r, 2) ? NAN : INFINITY;
                ts[nt] = (vc_tensor_src){tname[nt], "F32", rank, d, t};
                nt++;
            }
            if (!strcmp(op, "conv2d")) ch = co;
        }
        cJSON_AddItemToArray(nodes, nd);
    }
    char *js = cJSON_PrintUnformatted(g);
    cJSON_Delete(g);
    vc_model *m = calloc(1, sizeof *m);
    m->path = strdup("fuzz.safetensors");
    m->blob = blob;
    m->blob_size = BLOB * sizeof(float);
    vc_error err;
    // A graph within the documented limits (engine/checked.h) may
    // legitimately need gigabytes (padding 1024 on a small input: 2049x2049
    // maps); those are loaded and checked but not run, so that libFuzzer's
    // RSS limit finds leaks and runaway allocations, not big valid graphs.
    size_t act = 0;
    int fits = vc_model_build(m, js, nt, ts, &err) == VC_OK;
    for (int i = 0; fits && i < m->n_nodes; i++) act += m->nodes[i].size;
    if (fits && act <= ((size_t)8 << 20)) {   // 8 M floats of activations: 32 MB, a few times that in all
        // runs forward and backward on one image: a loaded graph must run
        vc_run *run = vc_run_new(m, 1);
        const vc_node *x = &m->nodes[0];
        float *img = malloc(x->size * sizeof(float));
        for (size_t k = 0; k < x->size; k++) img[k] = (float)(k % 7) - 3.0f;
        if (vc_forward(run, img, -1, 0, &err) == VC_OK) {
            const vc_node *o = &m->nodes[m->output];
            float *seed = malloc(o->size * sizeof(float));
            for (size_t k = 0; k < o->size; k++) seed[k] = 1.0f;
            vc_backward(run, m->output, seed, VC_BWD_PARAMS | VC_BWD_INPUT, &err);
            free(seed);
        }
        free(img);
        vc_run_free(run);
    }
    vc_model_free(m);
    free(js);
    return 0;
}
