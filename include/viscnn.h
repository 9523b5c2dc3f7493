// viscnn.h: the public C API of libviscnn, a CNN microscope. docs/api.md is
// the contract of every function; this header is its summary.
//
//   vc_model     a loaded network (DAG of named nodes, PyTorch module paths)
//   vc_session   one thread's run over a model: a batch, its activations and
//                gradients, the exact per-kernel edge maps of any conv layer
//   vc_scoreset  importance of every conv node and kernel toward a target,
//                averaged over the images added to it
//   vc_subnet    a circuit: the nodes and kernels kept from a scoreset
//
// Conventions are PyTorch's: float32, NCHW activations, OIHW conv weights,
// module paths as node names ("features.3"). A node's activation for one
// image is (C,H,W); a vector node (linear, flatten) is (C,1,1).
//
// Errors: every function that can fail returns VC_OK or a VC_E* status and,
// when err is not NULL, fills err->msg with one line naming the file, node or
// argument and the reason. On failure the outputs are left as they were (a
// handle output is set to NULL). The library never exits and never prints to
// stdout.
//
// Threads: a vc_model is immutable once loaded and may be shared by any
// number of threads; every other handle (vc_session, vc_scoreset, vc_subnet)
// belongs to one thread at a time. Give each thread its own vc_session:
// forward, backward and edges on one shared model then give results
// identical to one thread. vc_subnet is read-only after extraction and may
// be shared too.
//
// Versioning: VISCNN_VERSION_MAJOR is the soname's major (libviscnn.so.0);
// it changes when a public symbol disappears or a function's signature or a
// public struct changes incompatibly. Minor versions only add.
#pragma once
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

#define VISCNN_VERSION_MAJOR 0
#define VISCNN_VERSION_MINOR 1
#define VISCNN_VERSION_PATCH 0
#define VISCNN_VERSION_STRING "0.1.0"

#if defined(__GNUC__)
#define VC_API __attribute__((visibility("default")))
#else
#define VC_API
#endif

enum { VC_OK = 0, VC_EINTERNAL = 1, VC_EINPUT = 2 };

typedef struct { char msg[1024]; } vc_error;

typedef struct vc_model vc_model;
typedef struct vc_session vc_session;
typedef struct vc_scoreset vc_scoreset;
typedef struct vc_subnet vc_subnet;

// The library's version as "MAJOR.MINOR.PATCH" (static storage). Compare
// with VISCNN_VERSION_STRING to detect a header/library mismatch.
VC_API const char *vc_version(void);

// Frees a buffer the library allocated for the caller (edge maps, grads).
VC_API void vc_free(void *p);

// ---- models ----------------------------------------------------------------
// A .safetensors model with viscnn.graph metadata (docs/model-format.md).
VC_API int vc_model_load(vc_model **out, const char *path, vc_error *err);
// The same from size bytes at data (copied; data may be freed after). name
// stands for the path in messages (NULL: "<memory>").
VC_API int vc_model_load_memory(vc_model **out, const void *data, size_t size, const char *name, vc_error *err);
VC_API void vc_model_free(vc_model *m);
// Number of nodes (node 0 is the input), the output node's index, and the
// number of class labels (0 when the model has none). Any pointer may be NULL.
VC_API int vc_model_size(const vc_model *m, int *n_nodes, int *output, int *n_labels, vc_error *err);
// Node index: name, op ("input", "conv2d", "relu", ...), shape (C,H,W) of one
// image. Strings live as long as the model. Any output may be NULL.
VC_API int vc_model_node(const vc_model *m, int index, const char **name, const char **op, int *c, int *h, int *w,
                         vc_error *err);
// The nodes whose outputs node `index` takes, in order (indices < index);
// *inputs is owned by the model. The input node has none.
VC_API int vc_model_node_inputs(const vc_model *m, int index, int *n_inputs, const int **inputs, vc_error *err);
VC_API int vc_model_find_node(const vc_model *m, const char *name, int *index, vc_error *err);
VC_API int vc_model_label(const vc_model *m, int k, const char **label, vc_error *err);
// A conv node's sizes: out-channels, in-channels per group, groups, output
// height and width (the size of one edge map). VC_EINPUT for other ops.
VC_API int vc_model_conv(const vc_model *m, int node, int *cout, int *cin_group, int *groups, int *ho, int *wo,
                         vc_error *err);

// ---- images ------------------------------------------------------------------
// Loads a PNG or JPEG and preprocesses it as the model's metadata says
// (resize, centre crop, normalise) into out: (C,H,W) of node 0.
VC_API int vc_image_preprocess(const vc_model *m, const char *path, float *out, vc_error *err);

// ---- sessions: forward, backward, edges ---------------------------------------
VC_API int vc_session_new(vc_session **out, const vc_model *m, vc_error *err);
VC_API void vc_session_free(vc_session *s);
// Runs the whole network on x: (n,C,H,W), n >= 1, keeping every activation.
VC_API int vc_session_forward(vc_session *s, const float *x, int n, vc_error *err);
// A node's output for the batch of the last forward: *data (n,C,H,W),
// *count floats, owned by the session, valid until its next forward,
// backward or free.
VC_API int vc_session_activation(const vc_session *s, int node, const float **data, size_t *count, vc_error *err);
// Gradients of a target for the batch of the last forward: "loss" (cross-
// entropy against labels[n], or the argmax where labels is NULL or
// labels[n] < 0), "class:K" (logit K) or "node:NAME:CH" (mean of a channel).
VC_API int vc_session_backward(vc_session *s, const char *target, const int *labels, vc_error *err);
// dF/d(output of node), as vc_session_activation; VC_EINPUT when the last
// backward did not reach the node.
VC_API int vc_session_gradient(const vc_session *s, int node, const float **data, size_t *count, vc_error *err);
// Exact edge maps of conv node `node` for image `image` of the last forward:
// e[j][i] = W[j,i] (*) x_i, (n_out, n_in, Ho, Wo) for the out-channels
// out_ch and in-channels in_ch (counted within the group of each out-channel);
// out_ch / in_ch NULL: all, in order (n_out / n_in then ignored). *maps not
// NULL: the caller's buffer of that many floats; NULL: allocated here, free
// with vc_free. Sum over all i of e[j][i] plus the bias is the conv output.
VC_API int vc_session_edges(vc_session *s, int node, int image, const int *out_ch, int n_out, const int *in_ch, int n_in,
                            float **maps, vc_error *err);
// Their gradients after vc_session_backward: dF/de[j][i] = dF/dy_j for every
// i, so one map per out-channel: (n_out, Ho, Wo), buffers as above.
VC_API int vc_session_edge_grads(vc_session *s, int node, int image, const int *out_ch, int n_out, float **grads,
                                 vc_error *err);

// ---- importance ------------------------------------------------------------------
// metric: "actxgrad", "act", "grad", "taylor", "weight", "snip"; target as
// vc_session_backward. batch: images per internal pass (e.g. 8). The scores
// are means over every image added (docs/importance.md).
VC_API int vc_importance_new(vc_scoreset **out, const vc_model *m, const char *metric, const char *target, int batch,
                             vc_error *err);
// x: (n,C,H,W); labels (n) or NULL (for "loss": the argmax).
VC_API int vc_importance_add(vc_scoreset *s, const float *x, int n, const int *labels, vc_error *err);
// Ends the accumulation; the scores are readable after it, adding is not.
VC_API int vc_importance_finish(vc_scoreset *s, vc_error *err);
VC_API void vc_importance_free(vc_scoreset *s);
// Scored conv layers (those before the target), in model order.
VC_API int vc_importance_layers(const vc_scoreset *s, int *n_layers, vc_error *err);
// Layer l: its conv node, cout, in-channels per group, node scores (cout) and
// kernel scores (cout, cin_group) [out][in], owned by the scoreset.
VC_API int vc_importance_layer(const vc_scoreset *s, int l, int *node, int *cout, int *cin_group, const float **nodes,
                               const float **kernels, vc_error *err);

// ---- circuits --------------------------------------------------------------------
// Extracts a circuit from finished scores: mode "keep:F", "keep:NODES,KERNELS",
// "threshold" or "hierarchical" (docs/circuits.md), dead parts removed.
VC_API int vc_subnet_extract(vc_subnet **out, const vc_scoreset *s, const char *mode, vc_error *err);
VC_API void vc_subnet_free(vc_subnet *c);
// Kept nodes and kernels, and the totals in the target's upstream cone.
VC_API int vc_subnet_counts(const vc_subnet *c, size_t *nodes, size_t *kernels, size_t *cone_nodes, size_t *cone_kernels,
                            vc_error *err);
// Layer l (as vc_importance_layer): kept flags of its nodes (cout) and kernels
// (cout, cin_group), 1 kept, owned by the circuit.
VC_API int vc_subnet_layer(const vc_subnet *c, int l, int *node, const unsigned char **nodes,
                           const unsigned char **kernels, vc_error *err);
// Masks the session's network to the circuit (removed kernels and nodes
// contribute nothing) for its following forwards; NULL: the whole network.
// The circuit must outlive its use in the session.
VC_API int vc_session_set_subnet(vc_session *s, const vc_subnet *c, vc_error *err);
// Faithfulness of the circuit on images x (n,C,H,W) (labels as for "loss"):
// Pearson r and relative error of the target's values, masked vs whole
// network, and top-1 agreement (class and loss targets; else NAN).
// Any output may be NULL.
VC_API int vc_subnet_evaluate(const vc_subnet *c, const float *x, int n, const int *labels, int batch, double *r,
                              double *rel_error, double *top1, vc_error *err);

#ifdef __cplusplus
}
#endif
