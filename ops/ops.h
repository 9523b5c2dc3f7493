// ops.h: the CPU op kernels, one file per op (ops/<name>.c).
//
// Every kernel works on plain float buffers, contiguous, PyTorch layouts:
// activations NCHW, conv weights OIHW (Cout, Cin/groups, kh, kw), linear
// weights (out, in). The engine (engine/) owns the graph and the memory; these
// functions know nothing about nodes or models.
//
// Argument order everywhere: outputs, then what the forward saves for the
// backward, then inputs, then parameters, then sizes. A backward takes the
// d-prefixed versions in the same order.
//
// Gradient convention: every backward ACCUMULATES (+=) into each d-buffer it
// is given (dx, dw, db, ...). A NULL d-buffer means "not needed": skip it.
// Forwards WRITE (=) their outputs.
//
// Each op also has a *_ref twin: plain, single-threaded, obviously right,
// used only by the tests to check the fast path.
#pragma once
#include <stdint.h>
#include <stddef.h>

// ---- output-size formulas (PyTorch's) ----------------------------------
// conv: floor((in + 2p - d(k-1) - 1) / s) + 1
int conv_out_size(int in, int k, int s, int p, int d);
// pools: as conv, with ceil instead of floor when ceil_mode, and the last
// window must start inside the input or the left padding (PyTorch rule:
// if ceil_mode and (out-1)*s >= in + p then out -= 1).
int pool_out_size(int in, int k, int s, int p, int d, int ceil_mode);
// Images per GEMM group for the conv paths: groups of about `target`
// columns of `per_image` each, of equal size (ops/shapes.c).
int images_per_group(int N, int per_image, int target);

// ---- scratch (ops/scratch.c) -----------------------------------------------
// A per-thread buffer of at least n floats, kept for the next call with the
// same slot (contents undefined). Valid until the next call for that slot on
// this thread: a caller that holds two buffers uses two slots.
#define OPS_SCRATCH_SLOTS 5
float *ops_scratch(int slot, size_t n);

// ---- conv2d (ops/conv2d.c) ----------------------------------------------
typedef struct {
    int N, C, H, W;          // input
    int Co, kh, kw;          // output channels, kernel
    int sh, sw, ph, pw, dh, dw;
    int groups;              // C % groups == 0, Co % groups == 0
    int Ho, Wo;              // filled by conv2d_dims_finish
} conv2d_dims;
void conv2d_dims_finish(conv2d_dims *d);   // computes Ho, Wo
// y: (N,Co,Ho,Wo)  x: (N,C,H,W)  w: (Co,C/groups,kh,kw)  b: (Co) or NULL
void conv2d_forward(float *y, const float *x, const float *w, const float *b, const conv2d_dims *d);
// dx += (N,C,H,W)  dw += (Co,C/g,kh,kw)  db += (Co)  dy: (N,Co,Ho,Wo)
void conv2d_backward(float *dx, float *dw, float *db, const float *dy,
                     const float *x, const float *w, const conv2d_dims *d);
// col: (Cg*kh*kw, Ho*Wo)  x: (Cg,H,W), one image's slice of Cg channels; zeros
// where a window hangs over the padding. Row (c,i,j), column (oh,ow).
void conv2d_im2col(float *col, const float *x, int Cg, const conv2d_dims *d);
// Output positions o in [*lo, *hi) whose input index off + o*s lies in [0, n_in) (ops/shapes.c).
void conv2d_valid_range(int off, int s, int n_in, int n_out, int *lo, int *hi);
void conv2d_forward_ref(float *y, const float *x, const float *w, const float *b, const conv2d_dims *d);
void conv2d_backward_ref(float *dx, float *dw, float *db, const float *dy,
                         const float *x, const float *w, const conv2d_dims *d);
// 3x3, stride 1, dilation 1, one group, padding <= 2, C and Co >= 16:
// conv2d_forward and conv2d_backward's dx and dw take the Winograd F(2x2,3x3) path
// (ops/conv2d_winograd.c); VISCNN_NO_WINOGRAD=1 turns it off.
int conv2d_winograd_applies(const conv2d_dims *d);
// y: (N,Co,Ho,Wo) = b + conv(x, w), or += when acc. b may be NULL.
void conv2d_winograd(float *y, const float *x, const float *w, const float *b, const conv2d_dims *d, int acc);
// dx: (N,C,H,W) += the input gradient of that conv from dy (w as in the forward).
void conv2d_winograd_dx(float *dx, const float *dy, const float *w, const conv2d_dims *d);
// dw: (Co,C,3,3) += the weight gradient of that conv from x and dy.
void conv2d_winograd_dw(float *dw, const float *x, const float *dy, const conv2d_dims *d);

// Depthwise (groups == C == Co, kernel larger than 1x1): conv2d_forward and
// conv2d_backward's dx and dw take the direct kernel of ops/conv2d_depthwise.c.
int conv2d_depthwise_applies(const conv2d_dims *d);
void conv2d_depthwise_forward(float *y, const float *x, const float *w, const float *b, const conv2d_dims *d);
void conv2d_depthwise_backward(float *dx, float *dw, const float *dy, const float *x, const float *w,
                               const conv2d_dims *d);

// ---- linear (ops/linear.c): y = x w^T + b ---------------------------------
// y: (N,Out)  x: (N,In)  w: (Out,In)  b: (Out) or NULL
void linear_forward(float *y, const float *x, const float *w, const float *b, int N, int In, int Out);
// dx += (N,In)  dw += (Out,In)  db += (Out)  dy: (N,Out)
void linear_backward(float *dx, float *dw, float *db, const float *dy,
                     const float *x, const float *w, int N, int In, int Out);
void linear_forward_ref(float *y, const float *x, const float *w, const float *b, int N, int In, int Out);
void linear_backward_ref(float *dx, float *dw, float *db, const float *dy,
                         const float *x, const float *w, int N, int In, int Out);

// ---- relu (ops/relu.c) ------------------------------------------------------
// y, x: (n).  Backward uses the forward's output: dx += dy * (y > 0)
// (PyTorch's threshold_backward: the gradient at exactly 0 is 0).
void relu_forward(float *y, const float *x, size_t n);
void relu_backward(float *dx, const float *dy, const float *y, size_t n);
void relu_forward_ref(float *y, const float *x, size_t n);
void relu_backward_ref(float *dx, const float *dy, const float *y, size_t n);
void relu_decisions(uint8_t *region, const float *y, size_t n);

// ---- pooling geometry, shared by maxpool2d and avgpool2d ------------------
typedef struct {
    int N, C, H, W;
    int kh, kw, sh, sw, ph, pw, dh, dw;   // dilation: maxpool only (avgpool: 1)
    int ceil_mode;
    int count_include_pad;                // avgpool only
    int divisor_override;                 // avgpool only; 0 = none
    int Ho, Wo;                           // filled by pool2d_dims_finish
} pool2d_dims;
void pool2d_dims_finish(pool2d_dims *d);

// ---- maxpool2d (ops/maxpool2d.c) ------------------------------------------
// y: (N,C,Ho,Wo)  idx: (N,C,Ho,Wo) saved argmax, flat index h*W+w within the
// (H,W) plane  x: (N,C,H,W). Padding counts as -inf. Ties: the first maximum
// in row-major window order wins (as PyTorch). NaN propagates.
void maxpool2d_forward(float *y, int32_t *idx, const float *x, const pool2d_dims *d);
void maxpool2d_backward(float *dx, const float *dy, const int32_t *idx, const pool2d_dims *d);
void maxpool2d_forward_ref(float *y, int32_t *idx, const float *x, const pool2d_dims *d);
void maxpool2d_backward_ref(float *dx, const float *dy, const int32_t *idx, const pool2d_dims *d);

// ---- avgpool2d (ops/avgpool2d.c) ------------------------------------------
// PyTorch's divisor: divisor_override if set; else if count_include_pad the
// window clipped to the padded input (H+2p), else clipped to the input.
void avgpool2d_forward(float *y, const float *x, const pool2d_dims *d);
void avgpool2d_backward(float *dx, const float *dy, const pool2d_dims *d);
void avgpool2d_forward_ref(float *y, const float *x, const pool2d_dims *d);
void avgpool2d_backward_ref(float *dx, const float *dy, const pool2d_dims *d);

// ---- adaptive_avgpool2d (ops/adaptive_avgpool2d.c) ------------------------
// Output cell i covers rows [floor(i*H/Ho), ceil((i+1)*H/Ho)), likewise cols.
// y: (N,C,Ho,Wo)  x: (N,C,H,W)
void adaptive_avgpool2d_forward(float *y, const float *x, int N, int C, int H, int W, int Ho, int Wo);
void adaptive_avgpool2d_backward(float *dx, const float *dy, int N, int C, int H, int W, int Ho, int Wo);
void adaptive_avgpool2d_forward_ref(float *y, const float *x, int N, int C, int H, int W, int Ho, int Wo);
void adaptive_avgpool2d_backward_ref(float *dx, const float *dy, int N, int C, int H, int W, int Ho, int Wo);

// ---- batchnorm2d, eval mode (ops/batchnorm2d.c) ---------------------------
// y = (x - mean) / sqrt(var + eps) * gamma + beta, per channel.
// y, x: (N,C,HW)  gamma, beta, mean, var: (C); gamma/beta NULL = affine=False.
void batchnorm2d_forward(float *y, const float *x, const float *gamma, const float *beta,
                         const float *mean, const float *var, float eps, int N, int C, int HW);
// dx += (N,C,HW)  dgamma += (C)  dbeta += (C)
void batchnorm2d_backward(float *dx, float *dgamma, float *dbeta, const float *dy,
                          const float *x, const float *gamma, const float *mean, const float *var,
                          float eps, int N, int C, int HW);
void batchnorm2d_forward_ref(float *y, const float *x, const float *gamma, const float *beta,
                             const float *mean, const float *var, float eps, int N, int C, int HW);
void batchnorm2d_backward_ref(float *dx, float *dgamma, float *dbeta, const float *dy,
                              const float *x, const float *gamma, const float *mean, const float *var,
                              float eps, int N, int C, int HW);

// ---- local response norm across channels (ops/lrn.c), PyTorch's -----------
// s_c = k + alpha/size * sum_{c' in [c - size/2, c + (size-1)/2]} x_c'^2
// (zero outside [0,C)), y_c = x_c * s_c^-beta.
// y: (N,C,HW)  scale: (N,C,HW) saved s  x: (N,C,HW)
void lrn_forward(float *y, float *scale, const float *x, int N, int C, int HW,
                 int size, float alpha, float beta, float k);
void lrn_backward(float *dx, const float *dy, const float *scale, const float *x, int N, int C, int HW,
                  int size, float alpha, float beta, float k);
void lrn_forward_ref(float *y, float *scale, const float *x, int N, int C, int HW,
                     int size, float alpha, float beta, float k);
void lrn_backward_ref(float *dx, const float *dy, const float *scale, const float *x, int N, int C, int HW,
                      int size, float alpha, float beta, float k);

// ---- concat along channels (ops/concat.c) ---------------------------------
// y: (N, sum C_i, HW)  xs[i]: (N, C_i, HW)
void concat_forward(float *y, const float *const *xs, const int *cs, int n_in, int N, int HW);
void concat_backward(float *const *dxs, const float *dy, const int *cs, int n_in, int N, int HW);

// ---- add (ops/add.c): y = a + b, same shape -------------------------------
void add_forward(float *y, const float *a, const float *b, size_t n);
void add_backward(float *da, float *db, const float *dy, size_t n);

// ---- flatten (ops/flatten.c): (N,C,H,W) -> (N, C*H*W); memory unchanged ---
void flatten_forward(float *y, const float *x, size_t n);
void flatten_backward(float *dx, const float *dy, size_t n);

// ---- dropout (ops/dropout.c) ----------------------------------------------
// Eval: identity. Train: mask[i] = 0 or 1/(1-p) drawn from a xorshift64*
// stream seeded with *rng (advanced in place); y = x * mask.
// mask: (n) saved, may be NULL in eval.
void dropout_forward(float *y, float *mask, const float *x, size_t n, float p, int train, uint64_t *rng);
void dropout_backward(float *dx, const float *dy, const float *mask, size_t n, int train);

// ---- log_softmax over the last dim (ops/log_softmax.c) --------------------
// y, x: (N,K).  Backward: dx += dy - exp(y) * sum_k dy
void log_softmax_forward(float *y, const float *x, int N, int K);
void log_softmax_backward(float *dx, const float *dy, const float *y, int N, int K);
void log_softmax_forward_ref(float *y, const float *x, int N, int K);

// ---- cross-entropy on logits, mean over the batch (ops/cross_entropy.c) ---
// loss = 1/N sum_n (logsumexp(x_n) - x_n[label_n])   x: (N,K)  labels: (N)
// Backward: dx += dloss/N * (softmax(x_n) - onehot(label_n)).
double cross_entropy_forward(const float *x, const int *labels, int N, int K);
void cross_entropy_backward(float *dx, float dloss, const float *x, const int *labels, int N, int K);

// ---- channel mean, the feature target (ops/channel_mean.c) ----------------
// f[n] = mean over (H,W) of x[n,ch]   x: (N,C,HW)  f: (N)
// Backward: dx[n,ch,:] += df[n] / HW.
void channel_mean_forward(float *f, const float *x, int N, int C, int HW, int ch);
void channel_mean_backward(float *dx, const float *df, int N, int C, int HW, int ch);

// ---- conv2d edges (ops/conv2d_edges.c): the per-kernel maps of docs/architecture.md §3 ---
// Edge (j, i): e_ji = W[j,i] * x_(g*cg+i) with the layer's geometry, no bias,
// so that sum_i e_ji + b_j = y_j. i counts within the group (cg = C/groups).
// e: (Co/groups, Ho, Wo): the maps of input channel ci (global index) of
// image n into every out-channel of ci's group.
void conv2d_edge_maps(float *e, const float *x, const float *w, const conv2d_dims *d, int n, int ci);
void conv2d_edge_maps_ref(float *e, const float *x, const float *w, const conv2d_dims *d, int n, int ci);
// Per-image, per-edge sums over the map, without materialising edge maps:
//   abs_eg[n,j,i] += sum_p |e_ji * g_j|,  eg[n,j,i] += sum_p e_ji * g_j,
//   abs_e[n,j,i]  += sum_p |e_ji|
// each (N, Co, cg), NULL to skip.  g: (N,Co,Ho,Wo) = dF/d(conv output); may be
// NULL when only abs_e is asked.  x: (N,C,H,W)  w: (Co,cg,kh,kw)
void conv2d_edge_sums(float *abs_eg, float *eg, float *abs_e, const float *x, const float *w,
                      const float *g, const conv2d_dims *d);
void conv2d_edge_sums_ref(float *abs_eg, float *eg, float *abs_e, const float *x, const float *w,
                          const float *g, const conv2d_dims *d);
// The same sums for depthwise layers (cg == 1: a direct tap loop per output
// row) and pointwise ones (1x1, stride 1, no padding: GEMMs over the pixels);
// conv2d_edge_sums takes these paths itself (ops/conv2d_edge_sums_thin.c).
int conv2d_edge_sums_depthwise_applies(const conv2d_dims *d);
int conv2d_edge_sums_pointwise_applies(const conv2d_dims *d);
void conv2d_edge_sums_depthwise(float *abs_eg, float *eg, float *abs_e, const float *x, const float *w,
                                const float *g, const conv2d_dims *d);
void conv2d_edge_sums_pointwise(float *abs_eg, float *eg, float *abs_e, const float *x, const float *w,
                                const float *g, const conv2d_dims *d);

// ---- activations of the mobile families (ops/hardtanh.c ... ops/gelu.c) ----
// All (n) elementwise. Piecewise ones report their piece per element as a
// region code (0 below, 1 the middle piece, 2 above; docs/parity.md).
// hardtanh: y = clamp(x, lo, hi) (ReLU6: 0, 6); the region is read off y.
void hardtanh_forward(float *y, const float *x, size_t n, float lo, float hi);
void hardtanh_backward(float *dx, const float *dy, const float *y, size_t n, float lo, float hi);
void hardtanh_decisions(uint8_t *region, const float *y, size_t n, float lo, float hi);
void hardtanh_forward_ref(float *y, const float *x, size_t n, float lo, float hi);
void hardtanh_backward_ref(float *dx, const float *dy, const float *y, size_t n, float lo, float hi);
// hardswish: y = x relu6(x+3)/6; region (n) saved by the forward
void hardswish_forward(float *y, uint8_t *region, const float *x, size_t n);
void hardswish_backward(float *dx, const float *dy, const uint8_t *region, const float *x, size_t n);
void hardswish_forward_ref(float *y, uint8_t *region, const float *x, size_t n);
void hardswish_backward_ref(float *dx, const float *dy, const uint8_t *region, const float *x, size_t n);
// hardsigmoid: y = relu6(x+3)/6; region (n) saved by the forward
void hardsigmoid_forward(float *y, uint8_t *region, const float *x, size_t n);
void hardsigmoid_backward(float *dx, const float *dy, const uint8_t *region, size_t n);
void hardsigmoid_forward_ref(float *y, uint8_t *region, const float *x, size_t n);
void hardsigmoid_backward_ref(float *dx, const float *dy, const uint8_t *region, size_t n);
// sigmoid (backward from y), silu and gelu (erf form; backward from x)
void sigmoid_forward(float *y, const float *x, size_t n);
void sigmoid_backward(float *dx, const float *dy, const float *y, size_t n);
void sigmoid_forward_ref(float *y, const float *x, size_t n);
void sigmoid_backward_ref(float *dx, const float *dy, const float *y, size_t n);
void silu_forward(float *y, const float *x, size_t n);
void silu_backward(float *dx, const float *dy, const float *x, size_t n);
void silu_forward_ref(float *y, const float *x, size_t n);
void silu_backward_ref(float *dx, const float *dy, const float *x, size_t n);
void gelu_forward(float *y, const float *x, size_t n);
void gelu_backward(float *dx, const float *dy, const float *x, size_t n);
void gelu_forward_ref(float *y, const float *x, size_t n);
void gelu_backward_ref(float *dx, const float *dy, const float *x, size_t n);

// ---- mul with channel broadcasting (ops/mul.c) ------------------------------
// y = x * g;  x, y: (N,C,HW)  g: (gN,C,gHW), gN in {1, N}, gHW in {1, HW}
void mul_forward(float *y, const float *x, const float *g, int N, int C, int HW, int gN, int gHW);
void mul_backward(float *dx, float *dg, const float *dy, const float *x, const float *g,
                  int N, int C, int HW, int gN, int gHW);
void mul_forward_ref(float *y, const float *x, const float *g, int N, int C, int HW, int gN, int gHW);
void mul_backward_ref(float *dx, float *dg, const float *dy, const float *x, const float *g,
                      int N, int C, int HW, int gN, int gHW);

// ---- LayerNorm over channels (ops/layernorm2d.c) ----------------------------
// y, x: (N,C,HW)  w, b: (C) or NULL
void layernorm2d_forward(float *y, const float *x, const float *w, const float *b, float eps, int N, int C, int HW);
void layernorm2d_backward(float *dx, float *dw, float *db, const float *dy, const float *x, const float *w,
                          float eps, int N, int C, int HW);
void layernorm2d_forward_ref(float *y, const float *x, const float *w, const float *b, float eps, int N, int C, int HW);
void layernorm2d_backward_ref(float *dx, float *dw, float *db, const float *dy, const float *x, const float *w,
                              float eps, int N, int C, int HW);

// ---- channel shuffle and channel slice (ops/channel_shuffle.c, channel_slice.c) ----
// shuffle: output channel c is input channel channel_shuffle_src(c, C, groups)
int channel_shuffle_src(int c, int C, int groups);
void channel_shuffle_forward(float *y, const float *x, int N, int C, int HW, int groups);
void channel_shuffle_backward(float *dx, const float *dy, int N, int C, int HW, int groups);
void channel_shuffle_forward_ref(float *y, const float *x, int N, int C, int HW, int groups);
void channel_shuffle_backward_ref(float *dx, const float *dy, int N, int C, int HW, int groups);
// slice: y = x[:, start:start+Co]
void channel_slice_forward(float *y, const float *x, int N, int C, int HW, int start, int Co);
void channel_slice_backward(float *dx, const float *dy, int N, int C, int HW, int start, int Co);
void channel_slice_forward_ref(float *y, const float *x, int N, int C, int HW, int start, int Co);
void channel_slice_backward_ref(float *dx, const float *dy, int N, int C, int HW, int start, int Co);
