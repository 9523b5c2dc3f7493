// engine.h: internals shared by the engine's files (not public API).
#pragma once
#include "viscnn_internal.h"
#include "util.h"

struct vc_backend;
struct vc_run {
    const vc_model *m;
    const struct vc_backend *be;  // where the buffers below live and the ops run (engine/backend.h)
    void *bstate;                 // the backend's per-run state (NULL on the CPU)
    int N;
    float **act;              // [node] output (N x size), NULL until computed
    float **grad;             // [node] d(target)/d(output), NULL if not reached by the last backward
    float **gbuf;             // [node] grad's storage, kept across backwards (no page faults each pass)
    void **saved;             // [node] what the op's backward needs (maxpool argmax, lrn scale, ...)
    float **pgrad;            // [param] accumulated parameter gradients
    float **kmask, **cmask;   // [node] conv masks: (Co, C/groups), (Co); NULL = none
    float **wmasked;          // [node] masked conv weight (and bias after it), built per forward
    unsigned char *retain;    // [node] keep through a NOGRAD forward
    int *last_use;            // [node] index of its last consumer
    int done;                 // nodes 0..done-1 have been computed by the last forward
    int train;
    uint64_t rng;
    vc_hook_fn hook;
    void *hook_ctx;
    double *prof;             // [2*node] forward, backward seconds; NULL unless VISCNN_PROFILE is set
    int prof_passes;          // forwards timed
};

// One op's CPU implementation. infer checks the node's attrs, inputs and
// params and fills its output shape; forward writes r->act[i]; backward reads
// r->grad[i] and accumulates into the inputs' grads (allocated by the caller)
// and, when params is set, into r->pgrad. null_dx: the backward skips an
// input whose gradient is NULL (so the input image's need not exist).
// An op that branches says how (decision) and decide writes the branches its
// last forward took, exactly as its backward reads them (vc_run_decisions);
// the decisions must be available while the node's output is.
typedef struct {
    int (*infer)(const vc_model *m, vc_node *n, vc_error *err);
    void (*forward)(vc_run *r, int i);
    void (*backward)(vc_run *r, int i, int params);
    int null_dx;
    vc_decision_kind decision;
    void (*decide)(const vc_run *r, int i, void *out);
} vc_op_impl;

extern const vc_op_impl vc_cpu_ops[VC_OP_COUNT];

// A tensor as a loader hands it to the engine: its state-dict name, dtype
// ("F32"; others are refused by name), shape and bytes (which must outlive
// the model: they are normally m->blob's).
typedef struct {
    const char *name;
    const char *dtype;
    int rank;
    const int64_t *dim;
    const void *data;
} vc_tensor_src;

// Builds m's graph from the viscnn.graph JSON and the tensor table: every
// node, attribute, input and parameter checked, shapes inferred. m->path
// (for messages) and m->blob are the caller's; on failure the caller frees m.
int vc_model_build(vc_model *m, const char *graph_json, int n_tensors, const vc_tensor_src *tensors, vc_error *err);

vc_op vc_op_from_name(const char *s);
static inline const vc_node *run_node(const vc_run *r, int i) { return &r->m->nodes[i]; }
static inline const float *run_param(const vc_run *r, const vc_node *n, int role) {
    return n->param[role] >= 0 ? r->m->params[n->param[role]].data : NULL;
}
static inline float *run_pgrad(const vc_run *r, const vc_node *n, int role, int params) {
    return params && n->param[role] >= 0 ? r->pgrad[n->param[role]] : NULL;
}
