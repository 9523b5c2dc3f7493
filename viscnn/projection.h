// projection.h: the graph as the GUI draws it (docs/architecture.md §6), and where each of
// its nodes goes within its layer.
//
// Display graph. Display layers, in graph order (depth x = layer index):
//   input  the image's colour channels (model node 0);
//   conv   every conv2d node, one display node per output channel (the BN,
//          ReLU, pools, dropout and LRN after it act per channel and are
//          folded into it);
//   add    every (N,C,H,W) `add` node (residual): one display node per
//          channel, with an identity edge from channel ch of each operand.
// `concat` only relabels channels. Edges are the conv kernels (j, i) plus the
// identity edges of adds. The source of an edge is found by tracing the
// in-channel back through per-channel ops and concats to the display node
// (layer, channel) that produced it; channels that pass through linear,
// flatten or log_softmax trace to nothing ({-1, -1}).
//
// Projections give (y, z) per display node, each layer centred on (0, 0) and
// scaled so that its outermost node lies at radius VC_PROJ_RADIUS * sqrt(C)
// (C = the layer's channels; grid: spacing 1, which gives about the same
// extent), so that layers of every size can be drawn as they are:
//   grid        a centred square-ish grid, spacing 1, row by row.
//   mds         "class MDS": a conv node's vector is its per-category node
//               scores; an add node's is the mean of its operands' (L2-
//               normalised) vectors (an image-channel operand has none and
//               adds 0). Vectors are L2-normalised; zero vectors
//               sit at the layer's centre. Euclidean distances, classical MDS
//               to 2-D (LAPACKE_dsyevr on the double-centred squared
//               distances, eigenvector signs fixed so that the largest-|.|
//               component is positive), then SMACOF (at most
//               VC_SMACOF_ITERS Guttman transforms, stopping when the stress
//               drops by less than VC_SMACOF_TOL relative). Then each layer
//               (in order) is rotated by the one of VC_ROT_ANGLES angles
//               k*2pi/64 that minimises the summed (y, z) length of its
//               VC_ROT_EDGES strongest edges to earlier layers (ties: the
//               smallest k, so angle 0 wins unless another is strictly
//               shorter). Edge strength: the kernel's `overall` edge score;
//               an identity edge of an add counts with the mean of its two
//               endpoints' display-node scores (conv: its overall node score,
//               add: the mean of its operands', input: 0). Edges with score 0
//               or no source are not counted.
//   mds-smooth  mds, then per layer (right after its rotation, so that later
//               layers rotate against the relaxed positions) a relaxation:
//               VC_RELAX_ITERS rounds of a pull back towards the mds position
//               (VC_RELAX_PULL of the way in round 0, weakening linearly to 0)
//               each followed by one sweep that pushes every pair closer than
//               VC_RELAX_SLACK*dmin apart to that distance (half each, pairs
//               found in a cell grid, coincident points parted along a
//               direction fixed by their indices); then pull-free sweeps until
//               no pair is closer than dmin = VC_SMOOTH_DMIN. That end is
//               guaranteed: should VC_RELAX_SWEEPS sweeps not reach it, the
//               layer is scaled up about its centroid until they do. The
//               radius stays ~VC_PROJ_RADIUS*sqrt(C) (the pushes may widen it
//               slightly).
//   weights     mds on kernel weights (no images): a conv node's vector is
//               its incoming weights W[j] flattened (C_in/groups * kh * kw);
//               an add node's is the concatenation of its operands'
//               normalised vectors (their lengths may differ). Edge strength
//               for the rotation: mean_k |W[j,i,k]|; conv node score: the
//               mean of its incoming edges' strengths.
// A layer whose vectors are all zero or unknown (the input; conv layers at or
// after an importance target, which have no scores) is laid out as a
// sunflower (Vogel) spiral of the same radius and is not rotated.
#pragma once
#include <stdio.h>
#include "imageset.h"

// ---- display graph ---------------------------------------------------------------
typedef enum { VC_DL_INPUT, VC_DL_CONV, VC_DL_ADD, VC_DL_COUNT } vc_dlayer_kind;
extern const char *const vc_dlayer_kind_names[VC_DL_COUNT];   // "input", "conv", "add"

typedef struct { int layer, ch; } vc_dsrc;   // a display node; {-1, -1}: none

typedef struct {
    vc_dlayer_kind kind;
    int node;                 // the model node (0 for the input)
    int c;                    // display nodes = output channels
    int groups, cg;           // conv: groups, C_in/groups; else 1, 0
    int n_src;                // conv: C_in; add: 2*c; input: 0
    vc_dsrc *src;             // conv: (C_in) by the conv's global in-channel; add: (2, c) [operand][ch]
} vc_dlayer;

typedef struct {
    int n_layers;
    vc_dlayer *l;             // graph order; l[0] is the input
    int *layer_of;            // (model n_nodes): display layer of a model node, or -1
} vc_dgraph;

void dgraph_build(vc_dgraph *g, const vc_model *m);
void dgraph_free(vc_dgraph *g);
// The display node that shows channel ch of model node `node`.
vc_dsrc dgraph_trace(const vc_dgraph *g, const vc_model *m, int node, int ch);
// The source of kernel (j, i) of conv display layer `layer`, i counted within
// the group (in-channel = (j / (C_out/groups)) * cg + i), as in vc_scores.
vc_dsrc dgraph_kernel_source(const vc_dgraph *g, int layer, int j, int i);
// Total display nodes.
int dgraph_nodes(const vc_dgraph *g);

// ---- projections -----------------------------------------------------------------
typedef enum { VC_PROJ_MDS, VC_PROJ_MDS_SMOOTH, VC_PROJ_GRID, VC_PROJ_WEIGHTS, VC_PROJ_COUNT } vc_projection;
extern const char *const vc_projection_names[VC_PROJ_COUNT];  // "mds", "mds-smooth", "grid", "weights"
int projection_parse(vc_projection *p, const char *s, vc_error *err);
// Whether the projection needs per-category scores (mds, mds-smooth).
int projection_needs_images(vc_projection p);

#define VC_PROJ_RADIUS  0.5   // outermost node at 0.5*sqrt(C): the half-width of a spacing-1 grid
#define VC_SMACOF_ITERS 50
#define VC_SMACOF_TOL   1e-6
#define VC_ROT_ANGLES   64
#define VC_ROT_EDGES    40
#define VC_SMOOTH_DMIN  0.5   // mds-smooth: no two nodes of a layer closer than this
#define VC_RELAX_ITERS  100
#define VC_RELAX_PULL   0.05  // fraction of the way back to the mds position in round 0, falling linearly to 0
#define VC_RELAX_SLACK  1.1   // sweeps push close pairs apart to 1.1*dmin: slack so that they settle quickly
#define VC_RELAX_SWEEPS 2000  // pull-free sweeps before falling back to scaling

typedef struct {
    int n_layers;
    int *c;                   // (n_layers) channels
    double **pos;             // (n_layers) x (c, 2): y, z
} vc_layout;

// ss: per-category scores over an image set (mds, mds-smooth: at least two
// categories, else VC_EINPUT); ignored (may be NULL) for grid and weights.
int projection_run(vc_layout *out, const vc_model *m, const vc_dgraph *g, vc_projection p,
                   const vc_set_scores *ss, vc_error *err);
void layout_free(vc_layout *lay);

// Writes `"layers": [...], "sources": [...]` (members of the caller's JSON
// object; format in cmd_project.c).
void projection_export_json(FILE *f, const vc_model *m, const vc_dgraph *g, const vc_layout *lay);

// ---- building blocks (exposed for the tests) --------------------------------------
// Classical MDS: d (n, n) symmetric distances -> x (n, 2), centred, axes by
// decreasing eigenvalue, signs fixed (largest-|.| component of each
// eigenvector positive). Negative eigenvalues give a zero axis.
int mds_classical(double *x, const double *d, int n, vc_error *err);
// Stress sum_{i<j} (d_ij - |x_i - x_j|)^2.
double mds_stress(const double *x, const double *d, int n);
// SMACOF (unit weights) from x, in place; returns the final stress.
double mds_smacof(double *x, const double *d, int n, int max_iter, double tol);
// v (n, dim) -> p (n, 2): normalise rows, MDS + SMACOF, zero rows at the
// centre, scaled to radius VC_PROJ_RADIUS*sqrt(n). *placed = 0 when no row is
// nonzero and finite (p untouched), else 1.
int layout_vectors(double *p, int *placed, const double *v, int n, int dim, vc_error *err);
void layout_grid(double *p, int n);
void layout_sunflower(double *p, int n);
// Summed length sum_e |R(k) p[j_e] - q_e| for rotation k of VC_ROT_ANGLES.
double rotation_cost(const double *p, int n_e, const int *j, const double *q, int k);
// The k minimising rotation_cost (the smallest on ties).
int rotation_best(const double *p, int n_e, const int *j, const double *q);
void rotate_layer(double *p, int n, int k);
// mds-smooth relaxation: p (n, 2) starts at and is pulled towards p0; on
// return no two points are closer than dmin.
void relax_layer(double *p, const double *p0, int n, double dmin);
// Smallest pairwise distance (INFINITY when n < 2).
double min_pair_distance(const double *p, int n);
