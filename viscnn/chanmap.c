// chanmap.c: channel provenance through the ops that move or keep channels (chanmap.h).
#include "chanmap.h"
#include "../ops/ops.h"

int chan_is_pointwise(vc_op op) {
    switch (op) {
    case VC_OP_BATCHNORM2D: case VC_OP_RELU: case VC_OP_MAXPOOL2D: case VC_OP_AVGPOOL2D:
    case VC_OP_ADAPTIVE_AVGPOOL2D: case VC_OP_DROPOUT: case VC_OP_HARDTANH: case VC_OP_HARDSWISH:
    case VC_OP_HARDSIGMOID: case VC_OP_SIGMOID: case VC_OP_SILU: case VC_OP_GELU: case VC_OP_MUL:
        return 1;
    default:
        return 0;
    }
}

int chan_is_cross_norm(vc_op op) { return op == VC_OP_LRN || op == VC_OP_LAYERNORM2D; }

int chan_source(const vc_model *m, int node, int ch, int cross_norm, int *src) {
    const vc_node *n = &m->nodes[node];
    if (node <= 0 || ch < 0 || ch >= n->c) return -1;
    if (chan_is_pointwise(n->op) || (cross_norm && chan_is_cross_norm(n->op))) { *src = ch; return n->in[0]; }
    switch (n->op) {
    case VC_OP_CONCAT: {
        int k = 0;
        while (k < n->n_in && ch >= m->nodes[n->in[k]].c) ch -= m->nodes[n->in[k++]].c;
        if (k == n->n_in) return -1;
        *src = ch;
        return n->in[k];
    }
    case VC_OP_CHANNEL_SHUFFLE:
        *src = channel_shuffle_src(ch, n->c, n->a.groups);
        return n->in[0];
    case VC_OP_CHANNEL_SLICE:
        *src = n->a.start + ch;
        return n->in[0];
    default:
        return -1;
    }
}
