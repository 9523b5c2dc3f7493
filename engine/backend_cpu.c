// backend_cpu.c: the CPU backend. Buffers are host memory from malloc (so the
// run's pointers are directly usable, and host_view is not needed); the ops
// are vc_cpu_ops (engine/op_table.c over ops/). The reductions are the plain
// loops the analysis used before backends existed, unchanged.
#include <math.h>
#include "backend.h"

static int cpu_available(vc_error *err) { (void)err; return VC_OK; }

static void *cpu_alloc(vc_run *r, vc_buf_kind kind, int index, size_t bytes) {
    (void)r; (void)kind; (void)index;
    return malloc_check(bytes);
}
static void cpu_free(vc_run *r, vc_buf_kind kind, int index, void *p) {
    (void)r; (void)kind; (void)index;
    free(p);
}
static void cpu_copy(void *dst, const void *src, size_t bytes, vc_copy_dir dir) {
    (void)dir;
    memcpy(dst, src, bytes);
}
static void cpu_zero(void *p, size_t bytes) { memset(p, 0, bytes); }

static void cpu_edge_maps(vc_run *r, int conv, int n, int ci, float *e) {
    const vc_node *c = run_node(r, conv);
    conv2d_dims d = vc_conv_dims(r->m, c, r->N);
    conv2d_edge_maps(e, r->act[c->in[0]], run_param(r, c, VC_P_WEIGHT), &d, n, ci);
}

// The run's state on the CPU: the per-image edge sums' buffer, kept for the
// next layer and batch (made on first use).
typedef struct { float *buf; size_t cap; } cpu_run;

static void cpu_run_fini(vc_run *r) {
    cpu_run *c = r->bstate;
    if (c) free(c->buf);
    free(c);
    r->bstate = NULL;
}

// Per-image sums from the fused kernel (ops/conv2d_edges.c), then added over
// the images in order, as the analysis always did: acc[k] += f(s_n[k]) * scale.
static void cpu_edge_scores(vc_run *r, int conv, vc_edge_score kind, float scale, float *acc) {
    const vc_node *c = run_node(r, conv);
    conv2d_dims d = vc_conv_dims(r->m, c, r->N);
    const size_t ne = (size_t)d.Co * (d.C / d.groups);
    if (!r->bstate) r->bstate = calloc_check(1, sizeof(cpu_run));
    cpu_run *st = r->bstate;
    if (st->cap < (size_t)d.N * ne) {
        free(st->buf);
        st->cap = (size_t)d.N * ne;
        st->buf = malloc_check(st->cap * sizeof(float));
    }
    float *buf = st->buf;
    memset(buf, 0, (size_t)d.N * ne * sizeof(float));
    conv2d_edge_sums(kind == VC_EDGE_ABS_EG ? buf : NULL, kind == VC_EDGE_EG_ABS ? buf : NULL,
                     kind == VC_EDGE_ABS_E ? buf : NULL, r->act[c->in[0]], run_param(r, c, VC_P_WEIGHT),
                     r->grad[conv], &d);
    for (int n = 0; n < d.N; n++)
        for (size_t k = 0; k < ne; k++) {
            float v = buf[(size_t)n * ne + k];
            acc[k] += (kind == VC_EDGE_EG_ABS ? fabsf(v) : v) * scale;
        }
}

// out[n*C + j] = sum_p f(z, g) for image n, channel j; parallel over channels,
// each (j, n) summed in double: f is rounded to float per pixel, as always, and
// the double sum runs in SIMD lanes (omp simd reduction; the order of double
// additions changes, not the float result). In pixel order it was a chain of
// dependent adds, as slow as the whole forward pass on mobilenet_v2.
static void cpu_node_sums(vc_run *r, int node, vc_node_sum kind, double *out) {
    const vc_node *zn = run_node(r, node);
    const float *z = r->act[node], *g = r->grad[node];
    const int m = zn->h * zn->w, C = zn->c, N = r->N;
    #pragma omp parallel for schedule(static) if ((long)N * C * m >= 65536)
    for (int j = 0; j < C; j++)
        for (int n = 0; n < N; n++) {
            const float *zp = z + ((size_t)n * C + j) * m;
            const float *gp = g ? g + ((size_t)n * C + j) * m : NULL;
            double s = 0;
            switch (kind) {
            case VC_SUM_RELU_Z_ABS_G:
                if (gp) {
                    #pragma omp simd reduction(+:s)
                    for (int p = 0; p < m; p++) s += (double)((zp[p] > 0 ? zp[p] : 0) * fabsf(gp[p]));
                }
                break;
            case VC_SUM_RELU_Z:
                #pragma omp simd reduction(+:s)
                for (int p = 0; p < m; p++) s += (double)(zp[p] > 0 ? zp[p] : 0.0f);
                break;
            case VC_SUM_ABS_G:
                if (gp) {
                    #pragma omp simd reduction(+:s)
                    for (int p = 0; p < m; p++) s += (double)fabsf(gp[p]);
                }
                break;
            case VC_SUM_RELU_Z_G:
                if (gp) {
                    #pragma omp simd reduction(+:s)
                    for (int p = 0; p < m; p++) s += (double)((zp[p] > 0 ? zp[p] : 0) * gp[p]);
                }
                break;
            }
            out[(size_t)n * C + j] = s;
        }
}

const vc_backend vc_backend_cpu = {
    .name = "cpu",
    .ops = vc_cpu_ops,
    .available = cpu_available,
    .run_fini = cpu_run_fini,
    .alloc = cpu_alloc,
    .free = cpu_free,
    .copy = cpu_copy,
    .zero = cpu_zero,
    .edge_maps = cpu_edge_maps,
    .edge_scores = cpu_edge_scores,
    .node_sums = cpu_node_sums,
};
