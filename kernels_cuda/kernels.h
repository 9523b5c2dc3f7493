// kernels.h: the CUDA op kernels, one file per op (kernels_cuda/<name>.cu,
// the twin of ops/<name>.c). Host functions over device pointers, with the
// argument order, shapes and conventions of ops/ops.h: outputs, then what the
// forward saves, then inputs, then parameters, then sizes; forwards WRITE
// (=), backwards ACCUMULATE (+=) into each d-buffer, NULL d-buffers skipped.
// All run on the default stream, in order; every launch is checked.
#pragma once
#include "cuda_common.h"

#ifdef __cplusplus
extern "C" {
#endif
#include "../ops/ops.h"

// ---- conv2d (conv2d.cu): im2col + cuBLAS, or cuDNN (VC_CUDNN builds) -------------
// Images per im2col chunk, so that the workspace stays near 64 Mi floats.
int conv2d_cuda_chunk(const conv2d_dims *d);
// Floats of workspace (ws) the forward and backward need.
size_t conv2d_cuda_workspace(const conv2d_dims *d);
// y: (N,Co,Ho,Wo)  x: (N,C,H,W)  w: (Co,C/groups,kh,kw)  b: (Co) or NULL
void conv2d_forward_cuda(float *y, const float *x, const float *w, const float *b, const conv2d_dims *d, float *ws);
// dx += (N,C,H,W)  dw += (Co,C/g,kh,kw)  db += (Co)  dy: (N,Co,Ho,Wo)
void conv2d_backward_cuda(float *dx, float *dw, float *db, const float *dy, const float *x, const float *w,
                          const conv2d_dims *d, float *ws);
// wm = w * kmask[j,i] * cmask[j], bm = b * cmask[j] (either mask NULL = ones; b, bm may be NULL)
void conv2d_mask_weights_cuda(float *wm, float *bm, const float *w, const float *b, const float *kmask,
                              const float *cmask, int Co, int Cg, int kk);
// dw += dwm * kmask[j,i] * cmask[j]; db += dbm * cmask[j] (the gradient through the masked copy)
void conv2d_mask_grads_cuda(float *dw, float *db, const float *dwm, const float *dbm, const float *kmask,
                            const float *cmask, int Co, int Cg, int kk);

// ---- conv2d edges (conv2d_edges.cu), DESIGN §3 ------------------------------------
// e: (Co/groups, Ho, Wo): the maps of input channel ci of image n (= conv2d_edge_maps)
void conv2d_edge_maps_cuda(float *e, const float *x, const float *w, const conv2d_dims *d, int n, int ci);
// abs_eg, eg, abs_e: (N, Co, cg), WRITTEN (=) with sum_p |e g|, e g, |e| (NULL skips;
// g may be NULL when only abs_e is asked). Fused: no edge map is ever stored.
void conv2d_edge_sums_cuda(float *abs_eg, float *eg, float *abs_e, const float *x, const float *w,
                           const float *g, const conv2d_dims *d);

// out: (ne) = scale * sum over n of s[n, k] (abs_each: |s[n, k]|), images in order.  s: (N, ne)
void conv2d_edge_reduce_cuda(float *out, const float *s, int N, size_t ne, int abs_each, float scale);

// ---- node sums (node_sums.cu; CPU twin: engine/backend_cpu.c) -----------------------
// out: (N, C) doubles, = sum over the map of f(z, g) (vc_node_sum kind; g NULL = 0)
void node_sums_cuda(double *out, const float *z, const float *g, int kind, int N, int C, int HW);

// ---- linear (linear.cu): y = x w^T + b (cuBLAS) ------------------------------------
void linear_forward_cuda(float *y, const float *x, const float *w, const float *b, int N, int In, int Out);
void linear_backward_cuda(float *dx, float *dw, float *db, const float *dy, const float *x, const float *w,
                          int N, int In, int Out);

// ---- element-wise and pooling ops --------------------------------------------------
void relu_forward_cuda(float *y, const float *x, size_t n);
void relu_backward_cuda(float *dx, const float *dy, const float *y, size_t n);
void maxpool2d_forward_cuda(float *y, int32_t *idx, const float *x, const pool2d_dims *d);
void maxpool2d_backward_cuda(float *dx, const float *dy, const int32_t *idx, const pool2d_dims *d);
void avgpool2d_forward_cuda(float *y, const float *x, const pool2d_dims *d);
void avgpool2d_backward_cuda(float *dx, const float *dy, const pool2d_dims *d);
void adaptive_avgpool2d_forward_cuda(float *y, const float *x, int N, int C, int H, int W, int Ho, int Wo);
void adaptive_avgpool2d_backward_cuda(float *dx, const float *dy, int N, int C, int H, int W, int Ho, int Wo);
void batchnorm2d_forward_cuda(float *y, const float *x, const float *gamma, const float *beta,
                              const float *mean, const float *var, float eps, int N, int C, int HW);
void batchnorm2d_backward_cuda(float *dx, float *dgamma, float *dbeta, const float *dy,
                               const float *x, const float *gamma, const float *mean, const float *var,
                               float eps, int N, int C, int HW);
void lrn_forward_cuda(float *y, float *scale, const float *x, int N, int C, int HW,
                      int size, float alpha, float beta, float k);
void lrn_backward_cuda(float *dx, const float *dy, const float *scale, const float *x, int N, int C, int HW,
                       int size, float alpha, float beta, float k);
// xs, dxs: host arrays of n_in device pointers
void concat_forward_cuda(float *y, const float *const *xs, const int *cs, int n_in, int N, int HW);
void concat_backward_cuda(float *const *dxs, const float *dy, const int *cs, int n_in, int N, int HW);
void add_forward_cuda(float *y, const float *a, const float *b, size_t n);
void add_backward_cuda(float *da, float *db, const float *dy, size_t n);
void flatten_forward_cuda(float *y, const float *x, size_t n);
void flatten_backward_cuda(float *dx, const float *dy, size_t n);
// eval only (training runs on the CPU): y = x, dx += dy
void dropout_forward_cuda(float *y, const float *x, size_t n);
void dropout_backward_cuda(float *dx, const float *dy, size_t n);
void log_softmax_forward_cuda(float *y, const float *x, int N, int K);
void log_softmax_backward_cuda(float *dx, const float *dy, const float *y, int N, int K);

#ifdef __cplusplus
}
#endif
