// viscnn_internal.h: the engine's C interface (internal: the public API is viscnn.h).
//
// Data path: model file -> vc_model (a DAG of named nodes, shapes inferred at
// load) -> vc_run (one batch: forward keeps what backward needs, backward
// gives gradients w.r.t. every activation, the input and, on request, every
// parameter) -> the analysis (edges, importance, circuits) built on top.
//
// Conventions are PyTorch's: NCHW activations, OIHW conv weights, per-side
// padding, PyTorch's output-size formulas, module paths as node names.
// Errors: functions return VC_OK or a VC_E* status and fill a vc_error whose
// message names the file/layer/argument and the reason. The library never
// exits and never prints to stdout.
#pragma once
#include <stddef.h>
#include <stdint.h>
#include "viscnn.h"   // the public API: status codes, vc_error, the opaque handles

#ifdef __cplusplus
extern "C" {
#endif

// Fills e (if not NULL) and returns code. printf-style.
int vc_fail(vc_error *e, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

// ---- ops ---------------------------------------------------------------------
// VC_OP_INPUT is the graph's input (always node 0); the rest are in
// docs/model-format.md. Keep vc_op_names (engine/ops_table.c) in sync.
typedef enum {
    VC_OP_INPUT = 0,
    VC_OP_CONV2D, VC_OP_LINEAR, VC_OP_RELU, VC_OP_MAXPOOL2D, VC_OP_AVGPOOL2D,
    VC_OP_ADAPTIVE_AVGPOOL2D, VC_OP_BATCHNORM2D, VC_OP_LRN, VC_OP_CONCAT, VC_OP_ADD,
    VC_OP_FLATTEN, VC_OP_DROPOUT, VC_OP_LOG_SOFTMAX,
    // the mobile / modern families (issue 20; engine/op_families.c)
    VC_OP_HARDTANH, VC_OP_HARDSWISH, VC_OP_HARDSIGMOID, VC_OP_SIGMOID, VC_OP_SILU, VC_OP_GELU,
    VC_OP_MUL, VC_OP_LAYERNORM2D, VC_OP_CHANNEL_SHUFFLE, VC_OP_CHANNEL_SLICE,
    VC_OP_COUNT
} vc_op;
extern const char *const vc_op_names[VC_OP_COUNT];

typedef struct {
    int kernel[2], stride[2], padding[2], dilation[2];
    int groups;
    int ceil_mode, count_include_pad, divisor_override;
    int output[2];            // adaptive pool
    int size;                 // lrn
    float eps, alpha, beta, k; // batchnorm eps; lrn alpha, beta, k
    float p;                  // dropout
    float min_val, max_val;   // hardtanh (relu6: 0, 6)
    int start, end;           // channel_slice: channels [start, end)
} vc_attrs;

// A parameter tensor: named by its PyTorch state-dict key.
typedef struct {
    char *name;
    int rank, dim[4];
    size_t size;              // number of floats
    float *data;
} vc_param;

enum { VC_P_WEIGHT, VC_P_BIAS, VC_P_MEAN, VC_P_VAR, VC_P_COUNT };

typedef struct {
    char *name;               // PyTorch module path, e.g. "features.3"
    vc_op op;
    int n_in, *in;            // indices of input nodes (earlier in the list)
    vc_attrs a;
    int param[VC_P_COUNT];    // index into vc_model.params, or -1
    int rank;                 // 4: (N,C,H,W); 2: (N,C) held as (N,C,1,1)
    int c, h, w;              // output shape of one image
    size_t size;              // c*h*w
} vc_node;

typedef struct {
    int channels;             // 1 gray, 3 RGB
    int resize, crop;         // 0 = absent
    float mean[3], std[3];
} vc_preprocess;

struct vc_model {             // viscnn.h's opaque vc_model
    char *path, *name;
    int n_nodes;
    vc_node *nodes;           // topological order; nodes[0] is the input
    int output;               // index of the output node
    int n_params;
    vc_param *params;
    vc_preprocess pre;
    int n_labels;
    char **labels;
    void *blob;               // file contents that params point into
    size_t blob_size;
    char *graph_json;         // the viscnn.graph metadata as read (for re-export)
    size_t n_edges, n_weights;// kernels in conv layers; floats in params
};

int vc_model_load(vc_model **out, const char *path, vc_error *err);
void vc_model_free(vc_model *m);
// Node index by name, or -1.
int vc_model_find(const vc_model *m, const char *name);

// ---- running a batch -----------------------------------------------------------
typedef struct vc_run vc_run;

// phase: 0 after a node's forward, 1 after its backward (grad of its output ready).
typedef void (*vc_hook_fn)(void *ctx, const vc_run *r, int node, int phase);

vc_run *vc_run_new(const vc_model *m, int N);
void vc_run_free(vc_run *r);
int vc_run_batch(const vc_run *r);

// Process-wide, once at start (the CLI and the benchmarks call it): glibc
// keeps freed memory for reuse instead of unmapping it, so a NOGRAD forward's
// freed activations (and every op's temporaries) cost no page faults on the
// next pass; resnet18's batch-8 forward ran ~20% faster. Peak memory is the
// same; it is just not handed back to the system before exit.
VC_API void vc_malloc_keep(void);

enum {
    VC_FWD_TRAIN     = 1,     // dropout active
    VC_FWD_NOGRAD    = 2,     // free activations once used, unless retained
};
// x: (N, C, H, W) of the model's input. Runs nodes 1..stop (stop < 0: all).
int vc_forward(vc_run *r, const float *x, int stop, int flags, vc_error *err);

enum {
    VC_BWD_PARAMS    = 1,     // also accumulate parameter gradients
    VC_BWD_INPUT     = 2,     // also compute d(target)/d(input image) (node 0)
};
// Seeds d(target)/d(out of node `from`) with dfrom (N x node size) and walks
// back to the first layer: every node's gradient, and node 0's (the input's)
// only with VC_BWD_INPUT (saliency; it costs the first conv's dx).
int vc_backward(vc_run *r, int from, const float *dfrom, int flags, vc_error *err);

// Output of a node (N x size) after forward; NULL if not computed or freed.
const float *vc_run_act(const vc_run *r, int node);
// d(target)/d(output of node) after backward; NULL if not reached.
const float *vc_run_grad(const vc_run *r, int node);
// Gradient of a parameter (index into model params) after VC_BWD_PARAMS.
const float *vc_run_param_grad(const vc_run *r, int param);
void vc_run_zero_param_grads(vc_run *r);

void vc_run_set_hook(vc_run *r, vc_hook_fn fn, void *ctx);
void vc_run_retain(vc_run *r, int node, int on);
// Masks inside conv (no weight copy in the model): kernel mask (Co, C/groups),
// channel mask (Co). 1 keeps, 0 removes; NULL clears. The run copies them.
int vc_run_set_kernel_mask(vc_run *r, int node, const float *mask, vc_error *err);
int vc_run_set_channel_mask(vc_run *r, int node, const float *mask, vc_error *err);
void vc_run_seed(vc_run *r, uint64_t seed);   // dropout stream in train mode

// ---- discrete decisions (docs/parity.md) ---------------------------------------
// Some ops branch on their input: relu on its sign, maxpool2d on which input
// of a window is largest. Near a tie, float32 rounding (whose order depends
// on the thread count) can take a branch that exact arithmetic would not; a
// float64 reference that replays the engine's own decisions then differs from
// the engine by rounding alone. A node's decisions are one value per output
// element (N x node size), in the output's layout:
typedef enum {
    VC_DEC_NONE = 0,          // the op never branches
    VC_DEC_REGION,            // uint8: the piece of a piecewise op each output is on
                              // (relu: 1 passes x (x > 0, or NaN), 0 clamped to 0)
    VC_DEC_ARGMAX,            // int32: the input each output took, as h*W+w in its
                              // (unpadded) input plane (maxpool2d; PyTorch's return_indices)
} vc_decision_kind;
vc_decision_kind vc_node_decisions(const vc_model *m, int node);
// Writes node's decisions of the last forward that computed it into out (N x size values of 1
// byte for VC_DEC_REGION, 4 for VC_DEC_ARGMAX). A NOGRAD forward frees what
// they are made of once it is used: call it from a forward hook (phase 0)
// then. VC_EINPUT when the node makes no decisions or they are gone.
int vc_run_decisions(const vc_run *r, int node, void *out, vc_error *err);

// Cross-entropy (mean over the batch) of the model output against labels;
// writes d(loss)/d(logits) into dlogits (N x K) when not NULL.
double vc_loss_cross_entropy(const vc_run *r, const int *labels, float *dlogits);

// ---- devices (engine/backend.c, docs/cuda.md) ----------------------------------
// A run lives on one device: its activations, gradients and the ops run there.
// The CPU always exists; CUDA only in a `make CUDA=1` build on a machine with a GPU.
typedef enum { VC_DEVICE_CPU = 0, VC_DEVICE_CUDA = 1 } vc_device;
// "cpu" | "cuda" -> *d; VC_EINPUT for other names.
int vc_device_parse(const char *s, vc_device *d, vc_error *err);
// Whether runs can be made on d here: VC_OK, or VC_EINPUT and the reason
// (not built with CUDA, no device, driver too old, ...).
int vc_device_available(vc_device d, vc_error *err);
// The device vc_run_new uses from now on (checked with vc_device_available).
int vc_set_device(vc_device d, vc_error *err);
vc_device vc_get_device(void);
// A run on a given device; NULL with err set when it cannot be made (no device,
// out of device memory).
vc_run *vc_run_new_on(const vc_model *m, int N, vc_device d, vc_error *err);
vc_device vc_run_device(const vc_run *r);
// Whether the last backward reached node (vc_run_grad would not be NULL), without
// copying the gradient to the host.
int vc_run_has_grad(const vc_run *r, int node);

// Reductions for the analysis, computed where the run lives (outputs in host
// memory). For conv node `conv` (input x = its input node's output, g = its
// output gradient, w its unmasked weight; docs/importance.md):
// e: (Co/groups, Ho, Wo) = the edge maps of input channel ci of image n (= conv2d_edge_maps).
int vc_run_edge_maps(vc_run *r, int conv, int n, int ci, float *e, vc_error *err);
// The edge scores of the batch, summed over its images n: acc (Co, C/groups) +=
// scale * sum_n s_n[j,i] with s_n = sum_p |e g| (ABS_EG), |sum_p e g| (EG_ABS),
// or sum_p |e| (ABS_E, no gradient needed). The edge maps are never stored.
typedef enum { VC_EDGE_ABS_EG, VC_EDGE_EG_ABS, VC_EDGE_ABS_E } vc_edge_score;
int vc_run_edge_scores(vc_run *r, int conv, vc_edge_score kind, float scale, float *acc, vc_error *err);
// out: (N, C) per image and channel of node's output z (g its gradient, zero when
// not reached), summed over the map in double: relu(z)|g|, relu(z), |g|, relu(z) g.
typedef enum { VC_SUM_RELU_Z_ABS_G, VC_SUM_RELU_Z, VC_SUM_ABS_G, VC_SUM_RELU_Z_G } vc_node_sum;
int vc_run_node_sums(vc_run *r, int node, vc_node_sum kind, double *out, vc_error *err);
// ---- feature visualisation (viscnn/featvis.c, docs/featvis.md) -----------------
// Lucid-style: a picture parameterised in Fourier space (1/f scaling, ImageNet
// colour decorrelation for RGB, sigmoid), random pad/jitter/scale/rotate each
// step, Adam; the objective is a node map z_j or an exact edge map e_ji of one
// conv layer, its channel mean or its centre unit, maximised or minimised. The
// forward and backward stop at the target layer.
typedef struct {
    int steps;                // Adam steps (512)
    int size;                 // canvas side in pixels, at most the model's input; 0: the input's own H x W
    uint64_t seed;            // with the target, fixes the picture (byte-identical on one machine)
    float lr;                 // Adam learning rate (0.05)
    int neuron;               // -1: default (node: channel mean; edge: centre unit); 0: channel mean; 1: centre unit
    int negative;             // minimise instead of maximise
} vc_featvis_opts;
void vc_featvis_defaults(vc_featvis_opts *o);

typedef struct {
    int layer;                // model node: a conv2d; for a node target also the input (0)
    int out;                  // node j: the out-channel (an input colour channel for layer 0)
    int in;                   // < 0: the node j; else the edge j <- in (in counted within j's group)
} vc_featvis_target;
// "LAYER:J" (edge = 0) or "LAYER:J:I" (edge = 1) -> t, checked against m.
int vc_featvis_parse(vc_featvis_target *t, const vc_model *m, const char *spec, int edge, vc_error *err);
// Checks t and o against m (layer kind, ranges, steps, lr, size vs the model's
// input and the target's receptive field). VC_EINPUT with a one-line reason.
int vc_featvis_check(const vc_model *m, const vc_featvis_target *t, const vc_featvis_opts *o, vc_error *err);

typedef struct {
    int n, c, h, w;           // n pictures of c x h x w
    float *img;               // (n, c, h, w) in [0,1], on the 8-bit levels the PNG holds
    int steps;
    float *trace;             // (n, steps): the objective at each step, under that step's transforms
    float *final;             // (n): the objective of the picture as written, without transforms
} vc_featvis_result;
void vc_featvis_result_free(vc_featvis_result *r);
typedef void (*vc_featvis_progress)(void *ctx, int step, int steps);
// Optimises n pictures together as one batch: targets of ONE layer, all nodes
// or all edges. Each picture's random stream (initialisation, transforms)
// depends only on (o->seed, its target), so any subset of a layer's targets
// can be run apart (e.g. split across MPI ranks). fn (may be NULL) after each step.
int vc_featvis_batch(const vc_model *m, const vc_featvis_target *t, int n, const vc_featvis_opts *o,
                     vc_featvis_result *res, vc_featvis_progress fn, void *ctx, vc_error *err);
// canvas (c, h, w) in [0,1] -> one model input (C, H, W), placed as the
// pictures are measured: centred, grey (0.5) around it, normalised.
void vc_featvis_to_input(const vc_model *m, const float *canvas, int h, int w, float *x);
// The objective (as o selects it) of target t on N model inputs x: f (N).
int vc_featvis_objective(const vc_model *m, const vc_featvis_target *t, const vc_featvis_opts *o,
                         const float *x, int N, float *f, vc_error *err);
// One picture as a PNG (and its trace as JSON; trace_json may be NULL),
// through the disk cache cache_dir (NULL: none), keyed by the model file's
// hash, the target and every setting: a hit is a file read. *cached (may be
// NULL) says whether it was. Outputs are written atomically.
int vc_featvis_png(const vc_model *m, const vc_featvis_target *t, const vc_featvis_opts *o, const char *cache_dir,
                   const char *png, const char *trace_json, int *cached, vc_error *err);

#ifdef __cplusplus
}
#endif
