// rf.h: analytic receptive fields. For any unit (node, y, x) of a model: the
// box of input pixels that can influence it, through every path of the DAG.
//
// Rules per op, from an output row interval [a, b] to its input's (columns
// alike, with the op's column attributes):
//   conv2d, maxpool2d        [a*s - p, b*s - p + d*(k-1)]
//   avgpool2d                the same with d = 1 (PyTorch's has no dilation)
//   adaptive_avgpool2d       [floor(a*H/Ho), ceil((b+1)*H/Ho) - 1]
//   relu, batchnorm2d, lrn,  [a, b] for every input (lrn mixes channels only;
//   dropout, add, concat     concat gives every input the interval)
//   flatten, linear,         the whole input map [0, H-1]: a unit of an (N,K)
//   log_softmax              node sees everything that reaches it
// Intervals are propagated in reverse topological order; where paths meet the
// covering interval (union) is kept. ceil_mode changes only how many output
// rows there are, not where a row's window lies.
//
// A box is the union over channels: the API takes no channel. (It matters
// only below a concat, where a channel picks one branch.)
#pragma once
#include "viscnn_internal.h"

typedef struct { int y0, x0, y1, x1; } vc_box;   // inclusive input-pixel bounds

static inline int rf_box_empty(vc_box b) { return b.y1 < b.y0 || b.x1 < b.x0; }

// The receptive field of unit (y, x) of node `node` (any channel).
//   box:     the unclipped box of the rules above. It may reach into padding:
//            negative, or >= the input's H/W.
//   clipped: the bounding box of the input pixels that are actually connected
//            to the unit, i.e. windows clipped to each map at EVERY node, not
//            just `box` cut to the image. It is smaller than box ∩ image where
//            some input rows fall between windows at a map's far edge
//            (conv k3 s2 on H=8 never reads row 7) or between dilated taps.
//            It is the support of d(unit)/d(input) when no weight is zero.
//            Empty when the unit reads only padding (conv k1 p2 on its border
//            rows): then {0, 0, -1, -1}; test with rf_box_empty.
// Either pointer may be NULL. The input node (0) gives the trivial box
// {y, x, y, x}. Errors (VC_EINPUT, one line naming the argument): node out of
// range, y or x outside the node's output map.
int rf_unit(const vc_model *m, int node, int y, int x, vc_box *box, vc_box *clipped, vc_error *err);

// jump/size/start of a node: when `affine`, the unclipped box of unit (y, x)
// is rows start[0] + y*jump[0] .. + size[0]-1, cols start[1] + x*jump[1] ..
// + size[1]-1. Every chain of conv/pool/elementwise ops is affine; a DAG is
// when the paths that meet agree on the jump (resnet, googlenet); adaptive
// pooling is when H is a multiple of Ho; after flatten jump is 0 and the box
// is the whole input. When not affine, jump/size/start are 0.
typedef struct {
    int affine;
    int jump[2];              // [rows, cols]: input pixels between neighbouring units
    int size[2];              // box height, width (the same for every unit)
    int start[2];             // top, left of unit (0, 0); negative in padding
} vc_rf_geom;
int rf_geom(const vc_model *m, int node, vc_rf_geom *g, vc_error *err);
