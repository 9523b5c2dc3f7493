// conv2d_edges.cu: the CUDA twin of ops/conv2d_edges.c, DESIGN §3. Edge
// (j, i) of a conv layer is e_ji = W[j,i] * x_i (the layer's geometry, no
// bias); i counts within its group.
//
// conv2d_edge_sums_cuda is the fused kernel: a block owns one image n, one
// input channel ci and a tile of EDGE_TILE out-channels of ci's group; each
// thread walks pixels p, loads the kh*kw window of x_ci at p once, builds the
// tile's EDGE_TILE edge values e_ji(p) in registers (weights in shared
// memory), multiplies by g_j(p) and adds |e g|, e g and |e| into per-thread
// registers. No edge map is ever written to memory; the block then reduces
// its threads' sums (warp shuffles, then in double across warps) and writes
// one value per edge. Arithmetic: N*C*(Co/groups)*Ho*Wo*kh*kw multiply-adds,
// one conv forward's worth.
#include "kernels.h"

#define EDGE_TILE 16

// e: (Cog, Ho, Wo) for input channel ci of image n
__global__ static void edge_maps_kernel(float *e, const float *x, const float *w, conv2d_dims d, int n, int ci) {
    const int Cg = d.C / d.groups, Cog = d.Co / d.groups, g = ci / Cg, i = ci % Cg, kk = d.kh * d.kw;
    const size_t P = (size_t)d.Ho * d.Wo;
    const float *xp = x + ((size_t)n * d.C + ci) * d.H * d.W;
    CUDA_FOR(t, (size_t)Cog * P) {
        int j = (int)(t / P), p = (int)(t % P), oh = p / d.Wo, ow = p % d.Wo;
        const float *wk = w + ((size_t)(g * Cog + j) * Cg + i) * kk;
        float s = 0.0f;
        for (int a = 0; a < d.kh; a++) {
            int h = oh * d.sh - d.ph + a * d.dh;
            if (h < 0 || h >= d.H) continue;
            for (int b = 0; b < d.kw; b++) {
                int ww = ow * d.sw - d.pw + b * d.dw;
                if (ww >= 0 && ww < d.W) s += wk[a * d.kw + b] * xp[(size_t)h * d.W + ww];
            }
        }
        e[t] = s;
    }
}

void conv2d_edge_maps_cuda(float *e, const float *x, const float *w, const conv2d_dims *d, int n, int ci) {
    edge_maps_kernel<<<cuda_blocks((size_t)(d->Co / d->groups) * d->Ho * d->Wo), CUDA_THREADS>>>(e, x, w, *d, n, ci);
    cuda_launch_check();
}

// grid: (N*C, ceil(Cog/EDGE_TILE)); dynamic shared memory: EDGE_TILE*kh*kw floats.
__global__ static void __launch_bounds__(CUDA_THREADS)
edge_sums_kernel(float *abs_eg, float *eg, float *abs_e, const float *x, const float *w, const float *g, conv2d_dims d) {
    extern __shared__ float ws[];                       // (EDGE_TILE, kh*kw): W[j0+jj, i]
    __shared__ double red[CUDA_THREADS / 32][3 * EDGE_TILE];
    const int Cg = d.C / d.groups, Cog = d.Co / d.groups, kk = d.kh * d.kw;
    const int n = blockIdx.x / d.C, ci = blockIdx.x % d.C, grp = ci / Cg, i = ci % Cg;
    const int j0 = blockIdx.y * EDGE_TILE, nj = Cog - j0 < EDGE_TILE ? Cog - j0 : EDGE_TILE;
    for (int t = threadIdx.x; t < EDGE_TILE * kk; t += blockDim.x) {
        int jj = t / kk;
        ws[t] = jj < nj ? w[((size_t)(grp * Cog + j0 + jj) * Cg + i) * kk + t % kk] : 0.0f;
    }
    __syncthreads();
    const int P = d.Ho * d.Wo;
    const float *xp = x + ((size_t)n * d.C + ci) * d.H * d.W;
    const float *gp = g ? g + ((size_t)n * d.Co + grp * Cog + j0) * P : NULL;
    float s_aeg[EDGE_TILE], s_eg[EDGE_TILE], s_ae[EDGE_TILE];
    #pragma unroll
    for (int jj = 0; jj < EDGE_TILE; jj++) s_aeg[jj] = s_eg[jj] = s_ae[jj] = 0.0f;
    for (int p = threadIdx.x; p < P; p += blockDim.x) {
        const int oh = p / d.Wo, ow = p % d.Wo;
        float e[EDGE_TILE];
        #pragma unroll
        for (int jj = 0; jj < EDGE_TILE; jj++) e[jj] = 0.0f;
        for (int a = 0; a < d.kh; a++) {
            const int h = oh * d.sh - d.ph + a * d.dh;
            if (h < 0 || h >= d.H) continue;
            for (int b = 0; b < d.kw; b++) {
                const int ww = ow * d.sw - d.pw + b * d.dw;
                if (ww < 0 || ww >= d.W) continue;
                const float xv = xp[(size_t)h * d.W + ww];
                const float *wk = ws + a * d.kw + b;
                #pragma unroll
                for (int jj = 0; jj < EDGE_TILE; jj++) e[jj] += wk[jj * kk] * xv;
            }
        }
        #pragma unroll
        for (int jj = 0; jj < EDGE_TILE; jj++) {
            if (jj >= nj) break;
            const float gv = gp ? gp[(size_t)jj * P + p] : 0.0f;
            s_aeg[jj] += fabsf(e[jj] * gv);
            s_eg[jj] += e[jj] * gv;
            s_ae[jj] += fabsf(e[jj]);
        }
    }
    // reduce: within each warp by shuffles, then across warps in double
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
    #pragma unroll
    for (int jj = 0; jj < EDGE_TILE; jj++) {
        float a = s_aeg[jj], b = s_eg[jj], c = s_ae[jj];
        for (int o = 16; o > 0; o >>= 1) {
            a += __shfl_down_sync(0xffffffffu, a, o);
            b += __shfl_down_sync(0xffffffffu, b, o);
            c += __shfl_down_sync(0xffffffffu, c, o);
        }
        if (lane == 0) { red[warp][jj] = a; red[warp][EDGE_TILE + jj] = b; red[warp][2 * EDGE_TILE + jj] = c; }
    }
    __syncthreads();
    if (threadIdx.x < 3 * EDGE_TILE) {
        const int which = threadIdx.x / EDGE_TILE, jj = threadIdx.x % EDGE_TILE;
        if (jj < nj) {
            double s = 0;
            for (int k = 0; k < (int)(blockDim.x / 32); k++) s += red[k][threadIdx.x];
            float *out = which == 0 ? abs_eg : which == 1 ? eg : abs_e;
            if (out) out[((size_t)n * d.Co + grp * Cog + j0 + jj) * Cg + i] = (float)s;
        }
    }
}

void conv2d_edge_sums_cuda(float *abs_eg, float *eg, float *abs_e, const float *x, const float *w,
                           const float *g, const conv2d_dims *d) {
    const int Cog = d->Co / d->groups;
    dim3 grid((unsigned)(d->N * d->C), (unsigned)((Cog + EDGE_TILE - 1) / EDGE_TILE));
    size_t shared = (size_t)EDGE_TILE * d->kh * d->kw * sizeof(float);
    if (shared > 48 * 1024)
        cuda_check(cudaFuncSetAttribute(edge_sums_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)shared));
    edge_sums_kernel<<<grid, CUDA_THREADS, shared>>>(abs_eg, eg, abs_e, x, w, g, *d);
    cuda_launch_check();
}

// The images' edge sums reduced on the device, so that one batch sends
// Co*cg floats to the host instead of N*Co*cg.
__global__ static void edge_reduce_kernel(float *out, const float *s, int N, size_t ne, int abs_each, float scale) {
    CUDA_FOR(k, ne) {
        float acc = 0.0f;
        for (int n = 0; n < N; n++) {
            float v = s[(size_t)n * ne + k];
            acc += (abs_each ? fabsf(v) : v) * scale;
        }
        out[k] = acc;
    }
}

void conv2d_edge_reduce_cuda(float *out, const float *s, int N, size_t ne, int abs_each, float scale) {
    edge_reduce_kernel<<<cuda_blocks(ne), CUDA_THREADS>>>(out, s, N, ne, abs_each, scale);
    cuda_launch_check();
}
