// chanmap.h: where an output channel of a node comes from, for the analysis
// walks (edge ends, the target layer of node:L:C, circuits' producers).
#pragma once
#include "viscnn_internal.h"

// Ops whose output channel c is input channel c transformed on its own: the
// pointwise activations, batchnorm, pooling, dropout, and mul's first operand
// (a squeeze-excitation gate or layer scale is part of the node it scales).
int chan_is_pointwise(vc_op op);
// Ops that keep channel identity but normalise across channels (lrn, layernorm2d).
int chan_is_cross_norm(vc_op op);
// The input node holding output channel ch of node (and that channel in *src),
// through pointwise ops, concat, channel_shuffle and channel_slice, and also
// through lrn / layernorm2d when cross_norm is set; -1 for anything else
// (conv, add, linear, flatten, the input).
int chan_source(const vc_model *m, int node, int ch, int cross_norm, int *src);
