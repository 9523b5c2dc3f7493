// backend.h: what the engine needs from a backend (internal). A run is bound
// to one backend for its life; its buffers r->act, r->gbuf (and r->grad),
// r->saved and r->pgrad live in that backend's memory. CPU:
// engine/backend_cpu.c (host memory, vc_cpu_ops); CUDA:
// kernels_cuda/backend.cu (device memory planned once per run, parameters
// uploaded once per model, vc_cuda_ops). A third backend is one more of these.
#pragma once
#include "engine.h"

typedef enum { VC_BUF_ACT, VC_BUF_GRAD, VC_BUF_SAVED, VC_BUF_PGRAD } vc_buf_kind;
typedef enum { VC_COPY_H2D, VC_COPY_D2H, VC_COPY_D2D } vc_copy_dir;

typedef struct vc_backend {
    const char *name;                 // "cpu", "cuda": what --device takes
    const vc_op_impl *ops;            // forward/backward/decide per op; infer is always vc_cpu_ops'
    // VC_OK when the backend can run in this process, else VC_EINPUT and the reason.
    int (*available)(vc_error *err);
    // Per-run state in r->bstate (memory plan, handles); NULL when there is none.
    int (*run_init)(vc_run *r, vc_error *err);
    void (*run_fini)(vc_run *r);
    // Storage for buffer `kind` of node (or parameter) `index`, bytes long, and its
    // release. The CPU mallocs and frees; CUDA hands out slices of its plan.
    void *(*alloc)(vc_run *r, vc_buf_kind kind, int index, size_t bytes);
    void (*free)(vc_run *r, vc_buf_kind kind, int index, void *p);
    void (*copy)(void *dst, const void *src, size_t bytes, vc_copy_dir dir);
    void (*zero)(void *p, size_t bytes);
    // A host copy of a buffer (made on demand, valid until the next pass), or
    // NULL for a backend whose memory is host memory.
    const float *(*host_view)(const vc_run *r, vc_buf_kind kind, int index);
    void (*pass_begin)(vc_run *r);    // a forward or backward starts: host views are stale
    // The analysis' reductions, on the run's own buffers (viscnn.h:
    // vc_run_edge_maps, vc_run_edge_scores, vc_run_node_sums); outputs are host memory.
    void (*edge_maps)(vc_run *r, int conv, int n, int ci, float *e);
    void (*edge_scores)(vc_run *r, int conv, vc_edge_score kind, float scale, float *acc);
    void (*node_sums)(vc_run *r, int node, vc_node_sum kind, double *out);
    // The model is being freed: drop whatever was kept for it (uploaded parameters).
    void (*forget_model)(const vc_model *m);
} vc_backend;

extern const vc_backend vc_backend_cpu;
// Defined only when the CUDA objects are linked in (make CUDA=1); the engine
// tests its address (a weak reference), so the CPU build needs no stub.
extern const vc_backend vc_backend_cuda __attribute__((weak));

// vc_model_free calls it: backends drop what they keep for the model.
void vc_backends_forget_model(const vc_model *m);

// conv geometry of node i for a batch of N (engine/op_table.c)
#include "../ops/ops.h"
conv2d_dims vc_conv_dims(const vc_model *m, const vc_node *n, int N);
