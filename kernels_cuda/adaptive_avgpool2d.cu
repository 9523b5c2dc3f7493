// adaptive_avgpool2d.cu: the CUDA twin of ops/adaptive_avgpool2d.c. Output
// cell i covers rows [floor(i*H/Ho), ceil((i+1)*H/Ho)), likewise columns. The
// backward gathers: input row h lies in cells floor(h*Ho/H) .. (cells overlap
// by at most the rounding), found by testing a small range.
#include "kernels.h"

__device__ static int lo_of(int i, int in, int out) { return (int)(((long long)i * in) / out); }
__device__ static int hi_of(int i, int in, int out) { return (int)(((long long)(i + 1) * in + out - 1) / out); }

__global__ static void adaptive_fwd_kernel(float *y, const float *x, int N, int C, int H, int W, int Ho, int Wo) {
    CUDA_FOR(o, (size_t)N * C * Ho * Wo) {
        int ow = (int)(o % Wo), oh = (int)(o / Wo % Ho);
        const float *xp = x + o / ((size_t)Wo * Ho) * H * W;
        int h0 = lo_of(oh, H, Ho), h1 = hi_of(oh, H, Ho), w0 = lo_of(ow, W, Wo), w1 = hi_of(ow, W, Wo);
        float s = 0.0f;
        for (int h = h0; h < h1; h++)
            for (int w = w0; w < w1; w++) s += xp[h * W + w];
        y[o] = s / (float)(h1 - h0) / (float)(w1 - w0);
    }
}

__global__ static void adaptive_bwd_kernel(float *dx, const float *dy, int N, int C, int H, int W, int Ho, int Wo) {
    CUDA_FOR(t, (size_t)N * C * H * W) {
        int w = (int)(t % W), h = (int)(t / W % H);
        const float *dyp = dy + t / ((size_t)W * H) * Ho * Wo;
        // cells containing h: oh with lo(oh) <= h < hi(oh); lo is monotone, so scan from the last cell starting <= h
        int oh_last = (int)(((long long)h * Ho + Ho - 1) / H);   // >= every oh with lo(oh) <= h ... clipped below
        if (oh_last > Ho - 1) oh_last = Ho - 1;
        int ow_last = (int)(((long long)w * Wo + Wo - 1) / W);
        if (ow_last > Wo - 1) ow_last = Wo - 1;
        float s = 0.0f;
        for (int oh = oh_last; oh >= 0 && hi_of(oh, H, Ho) > h; oh--) {
            if (lo_of(oh, H, Ho) > h) continue;
            for (int ow = ow_last; ow >= 0 && hi_of(ow, W, Wo) > w; ow--) {
                if (lo_of(ow, W, Wo) > w) continue;
                s += dyp[oh * Wo + ow] / (float)(hi_of(oh, H, Ho) - lo_of(oh, H, Ho)) / (float)(hi_of(ow, W, Wo) - lo_of(ow, W, Wo));
            }
        }
        dx[t] += s;
    }
}

// y: (N,C,Ho,Wo)  x: (N,C,H,W)
void adaptive_avgpool2d_forward_cuda(float *y, const float *x, int N, int C, int H, int W, int Ho, int Wo) {
    adaptive_fwd_kernel<<<cuda_blocks((size_t)N * C * Ho * Wo), CUDA_THREADS>>>(y, x, N, C, H, W, Ho, Wo);
    cuda_launch_check();
}
// dx += (N,C,H,W)  dy: (N,C,Ho,Wo)
void adaptive_avgpool2d_backward_cuda(float *dx, const float *dy, int N, int C, int H, int W, int Ho, int Wo) {
    adaptive_bwd_kernel<<<cuda_blocks((size_t)N * C * H * W), CUDA_THREADS>>>(dx, dy, N, C, H, W, Ho, Wo);
    cuda_launch_check();
}
