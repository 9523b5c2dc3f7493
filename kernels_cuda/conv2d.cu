// conv2d.cu: the CUDA twin of ops/conv2d.c. im2col over a chunk of images,
// then one cuBLAS SGEMM per group with the chunk's images side by side:
//   forward   T_g (Cog, cn*P) = W_g (Cog, K) . col_g (K, cn*P),  y = T + b
//   backward  dW_g += dT_g . col_g^T,   dcol_g = W_g^T . dT_g,  dx += col2im(dcol)
// where K = Cg*kh*kw, P = Ho*Wo and dT is dy regrouped as (Co, cn*P). All
// reductions are deterministic (no atomics): col2im gathers.
// Workspace (floats): (C*kh*kw + Co) * cn * P: col, then T.
#include "kernels.h"

#define WS_TARGET ((size_t)64 << 20)   // floats of workspace to aim for

int conv2d_cuda_chunk(const conv2d_dims *d) {
    size_t per = ((size_t)d->C * d->kh * d->kw + d->Co) * d->Ho * d->Wo;
    size_t cn = per ? WS_TARGET / per : (size_t)d->N;
    if (cn < 1) cn = 1;
    if (cn > (size_t)d->N) cn = (size_t)d->N;
    return (int)cn;
}

size_t conv2d_cuda_workspace(const conv2d_dims *d) {
    return ((size_t)d->C * d->kh * d->kw + d->Co) * (size_t)conv2d_cuda_chunk(d) * d->Ho * d->Wo;
}

// col: (C*kh*kw, cn*P), row (c,i,j), column n*P + oh*Wo + ow; zero over padding.
// x: (cn, C, H, W)
__global__ static void im2col_kernel(float *col, const float *x, conv2d_dims d, int cn) {
    const size_t P = (size_t)d.Ho * d.Wo, cols = (size_t)cn * P, kk = (size_t)d.kh * d.kw;
    CUDA_FOR(t, (size_t)d.C * kk * cols) {
        size_t q = t % cols, row = t / cols;
        int n = (int)(q / P), p = (int)(q % P);
        int c = (int)(row / kk), r = (int)(row % kk);
        int i = r / d.kw, j = r % d.kw;
        int h = (p / d.Wo) * d.sh - d.ph + i * d.dh, w = (p % d.Wo) * d.sw - d.pw + j * d.dw;
        col[t] = h >= 0 && h < d.H && w >= 0 && w < d.W ? x[(((size_t)n * d.C + c) * d.H + h) * d.W + w] : 0.0f;
    }
}

// dx: (cn, C, H, W) += the sum of every dcol entry that im2col took from it.
__global__ static void col2im_kernel(float *dx, const float *dcol, conv2d_dims d, int cn) {
    const size_t P = (size_t)d.Ho * d.Wo, cols = (size_t)cn * P;
    CUDA_FOR(t, (size_t)cn * d.C * d.H * d.W) {
        int w = (int)(t % d.W), h = (int)(t / d.W % d.H), c = (int)(t / ((size_t)d.W * d.H) % d.C);
        int n = (int)(t / ((size_t)d.W * d.H * d.C));
        float s = 0.0f;
        for (int i = 0; i < d.kh; i++) {
            int oh = h + d.ph - i * d.dh;
            if (oh < 0 || oh % d.sh) continue;
            oh /= d.sh;
            if (oh >= d.Ho) continue;
            for (int j = 0; j < d.kw; j++) {
                int ow = w + d.pw - j * d.dw;
                if (ow < 0 || ow % d.sw) continue;
                ow /= d.sw;
                if (ow >= d.Wo) continue;
                size_t row = ((size_t)c * d.kh + i) * d.kw + j;
                s += dcol[row * cols + (size_t)n * P + (size_t)oh * d.Wo + ow];
            }
        }
        dx[t] += s;
    }
}

// y: (cn, Co, P) = t (Co, cn*P) regrouped, + b[j] (b may be NULL)
__global__ static void from_cp_kernel(float *y, const float *t, const float *b, int Co, int cn, size_t P) {
    CUDA_FOR(o, (size_t)cn * Co * P) {
        size_t p = o % P, j = o / P % Co, n = o / (P * Co);
        y[o] = t[j * cn * P + n * P + p] + (b ? b[j] : 0.0f);
    }
}

// t: (Co, cn*P) = dy (cn, Co, P) regrouped
__global__ static void to_cp_kernel(float *t, const float *dy, int Co, int cn, size_t P) {
    CUDA_FOR(o, (size_t)cn * Co * P) {
        size_t p = o % P, j = o / P % Co, n = o / (P * Co);
        t[j * cn * P + n * P + p] = dy[o];
    }
}

// db[j] += sum over images and pixels of dy[n, j, :]; one block per channel.
__global__ static void bias_grad_kernel(float *db, const float *dy, int N, int Co, size_t P) {
    __shared__ double part[CUDA_THREADS];
    const int j = blockIdx.x;
    double s = 0;
    for (size_t q = threadIdx.x; q < (size_t)N * P; q += blockDim.x) s += dy[((q / P) * Co + j) * P + q % P];
    part[threadIdx.x] = s;
    __syncthreads();
    for (int k = blockDim.x / 2; k > 0; k >>= 1) {
        if ((int)threadIdx.x < k) part[threadIdx.x] += part[threadIdx.x + k];
        __syncthreads();
    }
    if (threadIdx.x == 0) db[j] += (float)part[0];
}

static void im2col(float *col, const float *x, const conv2d_dims *d, int cn) {
    im2col_kernel<<<cuda_blocks((size_t)d->C * d->kh * d->kw * cn * d->Ho * d->Wo), CUDA_THREADS>>>(col, x, *d, cn);
    cuda_launch_check();
}

void conv2d_forward_cuda(float *y, const float *x, const float *w, const float *b, const conv2d_dims *d, float *ws) {
    const int Cg = d->C / d->groups, Cog = d->Co / d->groups, K = Cg * d->kh * d->kw, cnmax = conv2d_cuda_chunk(d);
    const size_t P = (size_t)d->Ho * d->Wo;
    const float one = 1.0f, zero = 0.0f;
    for (int n0 = 0; n0 < d->N; n0 += cnmax) {
        const int cn = d->N - n0 < cnmax ? d->N - n0 : cnmax;
        const int cols = (int)(cn * P);
        float *col = ws, *t = ws + (size_t)d->C * d->kh * d->kw * cn * P;
        im2col(col, x + (size_t)n0 * d->C * d->H * d->W, d, cn);
        for (int g = 0; g < d->groups; g++)   // column-major: T_g^T (cols, Cog) = col_g^T (cols, K) . W_g^T (K, Cog)
            cublas_check(cublasSgemm(cuda_blas(), CUBLAS_OP_N, CUBLAS_OP_N, cols, Cog, K, &one,
                                     col + (size_t)g * K * cols, cols, w + (size_t)g * Cog * K, K, &zero,
                                     t + (size_t)g * Cog * cols, cols));
        from_cp_kernel<<<cuda_blocks((size_t)cn * d->Co * P), CUDA_THREADS>>>(y + (size_t)n0 * d->Co * P, t, b, d->Co, cn, P);
        cuda_launch_check();
    }
}

void conv2d_backward_cuda(float *dx, float *dw, float *db, const float *dy, const float *x, const float *w,
                          const conv2d_dims *d, float *ws) {
    const int Cg = d->C / d->groups, Cog = d->Co / d->groups, K = Cg * d->kh * d->kw, cnmax = conv2d_cuda_chunk(d);
    const size_t P = (size_t)d->Ho * d->Wo;
    const float one = 1.0f, zero = 0.0f;
    if (db) {
        bias_grad_kernel<<<d->Co, CUDA_THREADS>>>(db, dy, d->N, d->Co, P);
        cuda_launch_check();
    }
    if (!dx && !dw) return;
    for (int n0 = 0; n0 < d->N; n0 += cnmax) {
        const int cn = d->N - n0 < cnmax ? d->N - n0 : cnmax;
        const int cols = (int)(cn * P);
        float *col = ws, *t = ws + (size_t)d->C * d->kh * d->kw * cn * P;
        to_cp_kernel<<<cuda_blocks((size_t)cn * d->Co * P), CUDA_THREADS>>>(t, dy + (size_t)n0 * d->Co * P, d->Co, cn, P);
        cuda_launch_check();
        if (dw) {
            im2col(col, x + (size_t)n0 * d->C * d->H * d->W, d, cn);
            for (int g = 0; g < d->groups; g++)   // dW_g^T (K, Cog) += col_g (K, cols) . dT_g^T (cols, Cog)
                cublas_check(cublasSgemm(cuda_blas(), CUBLAS_OP_T, CUBLAS_OP_N, K, Cog, cols, &one,
                                         col + (size_t)g * K * cols, cols, t + (size_t)g * Cog * cols, cols, &one,
                                         dw + (size_t)g * Cog * K, K));
        }
        if (dx) {
            for (int g = 0; g < d->groups; g++)   // dcol_g^T (cols, K) = dT_g^T (cols, Cog) . W_g (Cog, K)
                cublas_check(cublasSgemm(cuda_blas(), CUBLAS_OP_N, CUBLAS_OP_T, cols, K, Cog, &one,
                                         t + (size_t)g * Cog * cols, cols, w + (size_t)g * Cog * K, K, &zero,
                                         col + (size_t)g * K * cols, cols));
            col2im_kernel<<<cuda_blocks((size_t)cn * d->C * d->H * d->W), CUDA_THREADS>>>(
                dx + (size_t)n0 * d->C * d->H * d->W, col, *d, cn);
            cuda_launch_check();
        }
    }
}

// ---- masks (circuits): the effective weight and its gradient --------------------------
__global__ static void mask_weights_kernel(float *wm, float *bm, const float *w, const float *b, const float *kmask,
                                           const float *cmask, int Co, int Cg, int kk) {
    CUDA_FOR(t, (size_t)Co * Cg * kk) {
        size_t jc = t / kk;
        int j = (int)(jc / Cg);
        wm[t] = w[t] * ((cmask ? cmask[j] : 1.0f) * (kmask ? kmask[jc] : 1.0f));
        if (bm && t < (size_t)Co) bm[t] = b ? b[t] * (cmask ? cmask[t] : 1.0f) : 0.0f;
    }
}

void conv2d_mask_weights_cuda(float *wm, float *bm, const float *w, const float *b, const float *kmask,
                              const float *cmask, int Co, int Cg, int kk) {
    mask_weights_kernel<<<cuda_blocks((size_t)Co * Cg * kk), CUDA_THREADS>>>(wm, bm, w, b, kmask, cmask, Co, Cg, kk);
    cuda_launch_check();
}

__global__ static void mask_grads_kernel(float *dw, float *db, const float *dwm, const float *dbm, const float *kmask,
                                         const float *cmask, int Co, int Cg, int kk) {
    CUDA_FOR(t, (size_t)Co * Cg * kk) {
        size_t jc = t / kk;
        int j = (int)(jc / Cg);
        if (dw) dw[t] += ((cmask ? cmask[j] : 1.0f) * (kmask ? kmask[jc] : 1.0f)) * dwm[t];
        if (db && t < (size_t)Co) db[t] += (cmask ? cmask[t] : 1.0f) * dbm[t];
    }
}

void conv2d_mask_grads_cuda(float *dw, float *db, const float *dwm, const float *dbm, const float *kmask,
                            const float *cmask, int Co, int Cg, int kk) {
    mask_grads_kernel<<<cuda_blocks((size_t)Co * Cg * kk), CUDA_THREADS>>>(dw, db, dwm, dbm, kmask, cmask, Co, Cg, kk);
    cuda_launch_check();
}
