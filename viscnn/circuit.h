// circuit.h: circuits — the nodes (channels) and edges (kernels) of the conv
// layers that preserve a target — their extraction from scores, dead-part
// removal, masked runs, faithfulness and export. docs/circuits.md is the
// exact contract; docs/architecture.md §5 the idea.
//
// The circuit graph is the display graph of projection.h: nodes are the
// input's channels, the output channels of every scored conv layer and the
// channels of every residual `add`; edges are kernels (j, i) of the scored
// convs and the identity edges of the adds. Only conv nodes and kernels are
// selected; input channels are always there, add channels follow from their
// operands.
#pragma once
#include <stdio.h>
#include "importance.h"

struct vc_imageset;

typedef enum { VC_C_THRESHOLD, VC_C_HIERARCHICAL, VC_C_KEEP, VC_C_MODE_COUNT } vc_circuit_mode;

// The metric circuits are extracted with unless one is given: taylor, the
// first-order estimate of the target's change per image (signed over the
// map), whose circuits are the most faithful on held-out images
// (benchmarks/RESULTS.md, issue 12). Importance scores default to actxgrad.
#define VC_CIRCUIT_DEFAULT_METRIC VC_M_TAYLOR

// What to extract. A value that the mode does not use must stay NAN (iterative
// 0); circuit_spec_check rejects it (VC_EINPUT), so that no option is ever
// silently ignored.
typedef struct {
    vc_circuit_mode mode;
    double node_threshold;    // THRESHOLD: on normalised scores (default 0.2);
    double edge_threshold;    // HIERARCHICAL: cumulative shares (default 0.8)
    double keep_nodes;        // KEEP: fraction of the cone's nodes (keep:F -> 1)
    double keep_edges;        // KEEP: fraction of the cone's kernels
    int iterative;            // KEEP only: prune in K rounds, re-scoring on the pruned net (circuit_extract_iterative)
} vc_circuit_spec;

void circuit_spec_init(vc_circuit_spec *s);   // threshold mode, every value unset
// "threshold" | "hierarchical" | "keep:F" | "keep:NODES,EDGES" into s->mode
// and s->keep_*.
int circuit_mode_parse(vc_circuit_spec *s, const char *text, vc_error *err);
// Checks ranges and that no value is set that the mode does not use, then
// fills the defaults of the unset ones.
int circuit_spec_check(vc_circuit_spec *s, vc_error *err);
// "keep:0.1", "keep:0.5,0.1", "threshold", "hierarchical" (buf of n bytes).
void circuit_spec_text(const vc_circuit_spec *s, char *buf, size_t n);

typedef struct {
    int n_layers;             // the scored conv layers (those of the scores)
    unsigned char **node;     // [l][cout] 1 = kept
    unsigned char **edge;     // [l][cout * cg], [out][in within the group]
    size_t n_nodes, n_edges;  // kept (after dead-part removal)
    size_t sel_nodes, sel_edges;       // selected by the mode, before dead-part removal
    size_t total_nodes, total_edges;   // in the target's upstream cone
} vc_circuit;

// The normalised scores of thresholds and display (docs/circuits.md): per
// layer over the cone's entries, nodes and edges separately, robust min-max
// clamp((s - min) / (hi - min), 0, 1) with hi the second-largest score, so
// that one outlier cannot squash its layer. Entries outside the cone are 0.
// (keep ranks by the unclamped value.)
void circuit_normalize(vc_scores *norm, const vc_scores *raw, const vc_model *m, const vc_target *t);
// keep's count: the smallest k >= F*n (F*n rounded down by 1e-9 first).
size_t circuit_keep_count(double fraction, size_t n);

// Extracts a circuit from raw scores (any metric, contrast or mix; same layout
// as importance gives for t). Fails with VC_EINPUT on a bad spec.
int circuit_extract(vc_circuit *c, const vc_model *m, const vc_scores *raw, const vc_target *t,
                    const vc_circuit_spec *spec, vc_error *err);
// keep mode in spec->iterative rounds (>= 1): round k keeps F^(k/K) of the
// cone per layer (nodes and kernels), chosen within round k-1's circuit by
// scores of `metric` re-computed on the network pruned to it (round 1: the
// scores `first`, which must be `metric`'s over the same images). The scores
// of the last round go to *scores (same layout). category: the set's category
// whose scores rank (NULL or "overall": the mean over the categories).
int circuit_extract_iterative(vc_circuit *c, vc_scores *scores, const vc_model *m, vc_metric metric,
                              const vc_target *t, const struct vc_imageset *s, const char *category, const vc_scores *first,
                              const vc_circuit_spec *spec, int batch, vc_error *err);
// The size-matched selection of the benchmarks' baselines: per scored layer l,
// the top counts[l] of the cone's kernels by raw score (ties: lower index),
// every cone node, then dead-part removal.
void circuit_select_per_layer(vc_circuit *c, const vc_model *m, const vc_scores *raw, const vc_target *t,
                              const size_t *counts);
// Per-layer kept kernel counts (n_layers).
void circuit_layer_edges(const vc_circuit *c, const vc_scores *layout, size_t *counts);
void circuit_free(vc_circuit *c);

// Dead-part removal (docs/circuits.md): a node stays when it is selected, a
// kept path of selected kernels leads to it from the input and from it to the
// target; a kernel stays when it is selected, its out-node stays and its
// in-channel carries a kept path from the input. Recounts n_nodes, n_edges.
void circuit_remove_dead(vc_circuit *c, const vc_model *m, const vc_scores *layout, const vc_target *t);
// Reachability under a circuit (NULL: the whole network) for every model node
// up to the target, per channel: fwd[n][ch] = 1 when a kept path from the
// input reaches it, bwd[n][ch] = 1 when one leads from it to the target.
// Either may be NULL. Free each with circuit_reach_free.
void circuit_reach(unsigned char ***fwd, unsigned char ***bwd, const vc_model *m, const vc_scores *layout,
                   const vc_circuit *c, const vc_target *t);
void circuit_reach_free(const vc_model *m, unsigned char **r);

// Reads a circuit JSON written by circuit_write_json (layers it does not list
// run unmasked; "add" layers are derived and skipped); layout gets the
// model's conv layers.
int circuit_read(vc_circuit *c, vc_scores *layout, const vc_model *m, const char *path, vc_error *err);
// Sets the conv masks of r: kernel masks from edges, channel masks from nodes.
int circuit_apply(vc_run *r, const vc_scores *layout, const vc_circuit *c, vc_error *err);

// ---- faithfulness ---------------------------------------------------------------
// Values compared: node targets, every pixel of the target channel's map;
// class targets, the logit; loss, the per-image loss. Over the images idx.
typedef struct {
    int images;
    size_t values;
    double r;                 // Pearson r of circuit vs full; NAN when undefined, with r_note
    const char *r_note;       // NULL or why r is undefined (a constant series)
    double rel_error;         // mean|f_circuit - f| / mean|f|; NAN with rel_note when mean|f| = 0
    const char *rel_note;
    double top1;              // class and loss targets: fraction of images whose argmax agrees; else NAN
    size_t edges;             // the circuit's kept kernels
    double fraction;          // edges / cone edges
} vc_faith;

// The full network's values over a list of images, computed once.
typedef struct {
    int n_img;
    int *idx;                 // (n_img) indices into the image set
    float *f;                 // (values)
    size_t values;
    int *argmax;              // (n_img) class/loss targets, else NULL
} vc_faith_ref;

int faith_reference(vc_faith_ref *ref, const vc_model *m, const vc_target *t, const struct vc_imageset *s,
                    const int *idx, int n_img, int batch, vc_error *err);
void faith_reference_free(vc_faith_ref *ref);
// Runs the circuit's masked network on ref's images and compares.
int faith_measure(vc_faith *out, const vc_faith_ref *ref, const vc_model *m, const vc_target *t,
                  const vc_scores *layout, const vc_circuit *c, const struct vc_imageset *s, int batch, vc_error *err);
// The faithfulness curve: keep:1,F for each F of fr (n), extracted from raw
// and measured on ref's images.
int faith_curve(vc_faith *out, const double *fr, int n, const vc_model *m, const vc_scores *raw, const vc_target *t,
                const vc_faith_ref *ref, const struct vc_imageset *s, int batch, vc_error *err);
// Pearson correlation; NAN with *note set when either series is constant.
double pearson_r(const float *a, const float *b, size_t n, const char **note);

// The default kept fractions of the curve (docs/architecture.md §5), for --curve without a list.
#define VC_CURVE_N 13
extern const double vc_curve_fractions[VC_CURVE_N];

// ---- export ---------------------------------------------------------------------
// The "layers" array of circuit JSON (docs/circuits.md): conv layers with kept
// nodes and kernels (both ends named, raw and normalised scores) and add
// layers with their kept channels and identity edges, in graph order.
void circuit_write_layers_json(FILE *f, const vc_model *m, const vc_target *t, const vc_scores *raw,
                               const vc_scores *norm, const vc_circuit *c);
// The same restricted to the layers whose model node has show[node] != 0
// (show: m->n_nodes flags; NULL: all), for viscnn circuit --layer.
void circuit_write_layers_json_only(FILE *f, const vc_model *m, const vc_target *t, const vc_scores *raw,
                                    const vc_scores *norm, const vc_circuit *c, const unsigned char *show);
// The head of a circuit JSON document, from "{" through "kept" (no closing
// brace; the caller adds "contrast", "faithfulness" and "layers"): target,
// metric, images, source, model, scores (a category, "overall" or a contrast),
// mode, keep or thresholds, iterative, normalisation, kept counts. The CLI
// and the GUI's export write the same document through it.
void circuit_write_head_json(FILE *f, const vc_model *m, const vc_target *t, vc_metric metric, int images,
                             const char *source, const char *scores, const vc_circuit_spec *spec, const vc_circuit *c);
// ",\n"faithfulness": {...}" — sample ("held-out" or "in-sample"), source,
// images, values, the circuit's record and, when n_curve > 0, the curve.
void circuit_write_faithfulness_json(FILE *f, const vc_target *t, int held_out, const char *source, const vc_faith *circuit,
                                     const vc_faith *curve, const double *curve_fr, int n_curve);
// The model with the circuit baked into its weights: removed kernels zeroed,
// removed nodes' kernels and bias zeroed; the same graph (a safetensors file).
int circuit_write_pruned(const char *path, const vc_model *m, const vc_scores *layout, const vc_circuit *c, vc_error *err);
// One faithfulness record {["keep",] "edges", "fraction", "r", ["r_note",]
// "rel_error", ["rel_error_note",] ["top1_agreement"]}; keep NAN: omitted.
void circuit_write_faith_json(FILE *f, const vc_faith *q, const vc_target *t, double keep);
