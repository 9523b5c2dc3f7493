// importance.h: node and edge importance toward a target (docs/importance.md
// is the exact contract; docs/architecture.md §4 the idea).
#pragma once
#include "scores.h"

typedef enum { VC_M_ACTXGRAD, VC_M_ACT, VC_M_GRAD, VC_M_TAYLOR, VC_M_WEIGHT, VC_M_SNIP, VC_M_COUNT } vc_metric;
extern const char *const vc_metric_names[VC_M_COUNT];
int metric_parse(vc_metric *out, const char *s, vc_error *err);

typedef enum { VC_T_LOSS, VC_T_NODE, VC_T_CLASS } vc_target_kind;
typedef struct {
    vc_target_kind kind;
    int node;                 // NODE: node whose channel mean is F; LOSS/CLASS: the model output
    int ch;                   // NODE: channel; CLASS: class index
    int layer;                // NODE: the target layer's conv (scores stop before it), else -1
    int stop;                 // forward runs nodes 0..stop
    char text[256];           // as given: "loss", "node:features.8:3", "class:7"
} vc_target;

// "loss" | "class:K" | "node:LAYER:CH" (LAYER a node name; a conv followed by
// its BN means the BN output).
int target_parse(vc_target *t, const vc_model *m, const char *s, vc_error *err);
// Writes dF/d(output of t->stop) for the batch in r: seed (N x size). Loss uses
// labels[n] (or the argmax when labels is NULL or labels[n] < 0), per image.
void target_seed(const vc_target *t, const vc_model *m, const vc_run *r, const int *labels, float *seed);
// F for each image after a forward: f (N).
void target_values(const vc_target *t, const vc_model *m, const vc_run *r, const int *labels, float *f);

// Accumulates scores over the images of one set (one category).
typedef struct {
    const vc_model *m;
    vc_metric metric;
    vc_target target;
    vc_scores sum;            // the layout of the scores (its floats stay 0; the sums are in acc)
    int images;               // images added through this accumulator (acc[0] counts those of acc)
    // The sums, in double, so that they do not depend on how the images were
    // split (docs/mpi.md): acc[0] = images, then per layer its cout node sums
    // and cout*cg edge sums, then (snip) per layer the sum of dF/dW. Per-image
    // contributions are the same floats as before; only the running sums are
    // double. acc may be pointed at another array of acc_n doubles (one per
    // category, a checkpoint, a reduction): importance_add and importance_end
    // use whatever it points to.
    double *acc, *own_acc;
    size_t acc_n;
    size_t *off_nodes, *off_edges, *off_snip;   // (n_layers) offsets into acc
    vc_run *r;
    int batch;
    float *seed;
    double *node_sums;        // (batch, most out-channels of a layer): vc_run_node_sums' output
    float *edge_sums;         // (most cout*cg of a layer): one batch's edge scores, vc_run_edge_scores' output
    int (*setup)(vc_run *r, const void *ctx, vc_error *err);   // run on every run it makes (circuit masks); NULL: none
    const void *setup_ctx;
} vc_importance;

int importance_begin(vc_importance *im, const vc_model *m, vc_metric metric, const vc_target *t, int batch, vc_error *err);
// Scores on a modified network: fn(r, ctx) is applied now and to every run
// the accumulator makes later (circuit masks: circuit_apply).
int importance_set_setup(vc_importance *im, int (*fn)(vc_run *r, const void *ctx, vc_error *err), const void *ctx,
                         vc_error *err);
// x: (N,C,H,W) with N <= batch; labels (N) or NULL (argmax).
int importance_add(vc_importance *im, const float *x, int N, const int *labels, vc_error *err);
// Final scores of the set (means over its images; weight/snip as defined).
void importance_end(vc_importance *im, vc_scores *out);
void importance_free(vc_importance *im);

// Per layer min-max to [0,1], nodes and edges separately (all equal -> 0).
void scores_normalize(vc_scores *s);
