// scores.h: importance scores of a model's conv layers, as the analysis
// layer (importance, contrasts, circuits, projections, export) passes them.
//
// Per conv layer: one score per node (output channel) and one per edge
// (2-D kernel W[j,i]), edges indexed [out][in] like the weight tensor, with
// `in` counted within the group (in-channel = group*cg + i).
#pragma once
#include <stddef.h>
#include "viscnn_internal.h"

typedef struct {
    int node;                 // the conv node's index in the model
    int z_node;               // node whose output is the node map z (a BN right after the conv, else the conv)
    int in_node;              // the conv's input node
    int cin, cout, groups, cg;// cg = cin / groups
    float *nodes;             // (cout)
    float *edges;             // (cout, cg)
} vc_layer_scores;

typedef struct {
    int n_layers;
    vc_layer_scores *l;       // in model order
} vc_scores;

// Allocates zeroed scores for every conv layer of m before node `stop`
// (stop < 0: all conv layers).
void scores_init(vc_scores *s, const vc_model *m, int stop);
void scores_free(vc_scores *s);
void scores_copy(vc_scores *dst, const vc_scores *src);
// dst = dst*a + src*b, element-wise over nodes and edges (same layout).
void scores_axpby(vc_scores *dst, float a, const vc_scores *src, float b);
// Total number of floats (nodes + edges) and flat access, for code that
// treats the scores as one vector (contrasts).
size_t scores_count(const vc_scores *s);
void scores_flatten(const vc_scores *s, float *out);
void scores_unflatten(vc_scores *s, const float *in);

// A view of some layers of a scores set (--layer L, repeatable): the layer
// entries are copied, their arrays shared with the source. names NULL or
// n = 0: every layer. Free v->s.l (only) when done.
typedef struct { vc_scores s; } vc_scores_view;
const vc_scores *scores_view(vc_scores_view *v, const vc_scores *src, const vc_model *m, const char *const *names, int n);
// Fails unless every name is a conv layer of m ("CMD: --layer NAME: ...").
int scores_view_check(const vc_model *m, const char *const *names, int n, const char *cmd, vc_error *err);
