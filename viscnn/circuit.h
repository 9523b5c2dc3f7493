// circuit.h: circuits — the nodes (channels) and edges (kernels) of the conv
// layers that preserve a target (DESIGN §5) — their extraction from scores,
// masked runs, faithfulness and export.
#pragma once
#include "importance.h"

typedef enum { VC_C_THRESHOLD, VC_C_HIERARCHICAL, VC_C_KEEP } vc_circuit_mode;

typedef struct {
    int n_layers;             // same layers as the scores it came from
    unsigned char **node;     // [l][cout] 1 = kept
    unsigned char **edge;     // [l][cout * cg]
    size_t n_nodes, n_edges;  // kept
    size_t total_nodes, total_edges;   // in the target's upstream cone
} vc_circuit;

// Which channels of every model node can influence the target (structural
// upstream cone). rel[node][ch]; free with cone_free.
unsigned char **cone_compute(const vc_model *m, const vc_target *t);
void cone_free(const vc_model *m, unsigned char **rel);

// mode THRESHOLD: t_node/t_edge on per-layer min-max normalised scores;
// HIERARCHICAL: cumulative shares t_node/t_edge (both: an edge is kept only
// with both its ends); KEEP: the global top `fraction` of the cone's kernels
// by per-layer normalised score, and every node of the cone (only kernels are removed: a node
// whose kernels all go still passes its bias on).
int circuit_extract(vc_circuit *c, const vc_model *m, const vc_scores *raw, const vc_target *t,
                    vc_circuit_mode mode, double t_node, double t_edge, double fraction, vc_error *err);
void circuit_free(vc_circuit *c);
// Reads a circuit JSON written by `viscnn circuit` (layers it does not list
// run unmasked); layout gets the model's conv layers.
int circuit_read(vc_circuit *c, vc_scores *layout, const vc_model *m, const char *path, vc_error *err);
// Sets the conv masks of r: kernel masks from edges, channel masks from nodes.
int circuit_apply(vc_run *r, const vc_scores *layout, const vc_circuit *c, vc_error *err);

// Target activations over a set, of the full network (c NULL) or of the
// circuit's masked network: node targets give every pixel of the target
// channel, class targets the logit, loss the per-image loss. *v is malloc'd.
struct vc_imageset;
int target_activations(float **v, size_t *n, const vc_model *m, const vc_target *t, const vc_scores *layout,
                       const vc_circuit *c, const struct vc_imageset *s, int batch, vc_error *err);
// Pearson correlation (1 when both are constant and equal, 0 when one is constant).
double pearson(const float *a, const float *b, size_t n);

// The kept fractions of the faithfulness curve (DESIGN §5).
#define VC_CURVE_N 13
extern const double vc_curve_fractions[VC_CURVE_N];
