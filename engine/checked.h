// checked.h: the one place where sizes that come from files are multiplied
// and added (shape inference, derived buffer sizes). Each helper computes in
// 64 bits, records an overflow in *ovf (sticky: a chain of operations is
// checked once at its end) and returns the wrapped value, which the caller
// must not use when *ovf is set.
//
// The graph limits (engine/graph.c enforces them when a model loads, before
// any op runs; docs/model-format.md lists them):
#pragma once
#include <stdint.h>

enum {
    VC_LIM_KERNEL = 1024,          // kernel[h|w]            1 .. 1024
    VC_LIM_STRIDE = 1024,          // stride                 1 .. 1024
    VC_LIM_PADDING = 1024,         // padding                0 .. 1024
    VC_LIM_DILATION = 1024,        // dilation               1 .. 1024
    VC_LIM_GROUPS = 65536,         // groups                 1 .. 65536
    VC_LIM_CHANNELS = 65536,       // channels of any node   1 .. 65536
    VC_LIM_SPATIAL = 65536,        // height / width of any node, adaptive output
    VC_LIM_LRN = 1024,             // lrn size               1 .. 1024
    VC_LIM_NODES = 1 << 20,        // nodes in a graph
};
// Elements of one image's output of any node, of any weight tensor and of a
// conv's im2col panel for one image (Cg*kh*kw*Ho*Wo): at most 2^30, so that
// every int-typed index inside ops/ stays below 2^31 for one image.
#define VC_LIM_ELEMS ((int64_t)1 << 30)

static inline int64_t ck_mul(int64_t a, int64_t b, int *ovf) {
    int64_t r;
    if (__builtin_mul_overflow(a, b, &r)) *ovf = 1;
    return r;
}
static inline int64_t ck_add(int64_t a, int64_t b, int *ovf) {
    int64_t r;
    if (__builtin_add_overflow(a, b, &r)) *ovf = 1;
    return r;
}
// PyTorch's conv / pool output size: floor((in + 2p - d(k-1) - 1) / s) + 1,
// ceil_mode rounding up (and the last window starting inside input or left
// padding); 0 when the window does not fit. s >= 1.
static inline int64_t ck_out_size(int64_t in, int64_t k, int64_t s, int64_t p, int64_t d, int ceil_mode, int *ovf) {
    int64_t span = ck_add(ck_add(in, ck_mul(2, p, ovf), ovf), -ck_add(ck_mul(d, k - 1, ovf), 1, ovf), ovf);
    if (*ovf || span < 0 || s < 1) return 0;
    int64_t out = (ceil_mode ? (span + s - 1) / s : span / s) + 1;
    if (ceil_mode && (out - 1) * s >= in + p) out--;
    return out;
}
