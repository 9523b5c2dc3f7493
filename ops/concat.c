// concat.c: concatenation along channels (torch.cat(dim=1)) of n_in inputs
// with the same N and H*W. Input i fills channels [off_i, off_i + cs[i]) of
// y, off_i = cs[0] + ... + cs[i-1]. Forward writes y; backward accumulates
// each input's slice of dy into dxs[i] (dxs[i] NULL: skip that input).
#include <string.h>
#include "ops.h"

// y: (N, sum cs, HW)  xs[i]: (N, cs[i], HW)  cs: (n_in)
void concat_forward(float *y, const float *const *xs, const int *cs, int n_in, int N, int HW) {
    int Ct = 0;
    for (int i = 0; i < n_in; i++) Ct += cs[i];
    #pragma omp parallel for schedule(static) if ((long)N * Ct * HW > 65536)
    for (int n = 0; n < N; n++) {
        int off = 0;
        for (int i = 0; i < n_in; i++) {
            memcpy(y + ((long)n * Ct + off) * HW, xs[i] + (long)n * cs[i] * HW,
                   (size_t)cs[i] * HW * sizeof(float));
            off += cs[i];
        }
    }
}

// dxs[i] += (N, cs[i], HW) or NULL  dy: (N, sum cs, HW)  cs: (n_in)
void concat_backward(float *const *dxs, const float *dy, const int *cs, int n_in, int N, int HW) {
    int Ct = 0;
    for (int i = 0; i < n_in; i++) Ct += cs[i];
    #pragma omp parallel for collapse(2) schedule(static) if ((long)N * Ct * HW > 65536)
    for (int n = 0; n < N; n++)
    for (int i = 0; i < n_in; i++) {
        if (!dxs[i]) continue;
        int off = 0;
        for (int j = 0; j < i; j++) off += cs[j];
        const float *src = dy + ((long)n * Ct + off) * HW;
        float *dst = dxs[i] + (long)n * cs[i] * HW;
        const long len = (long)cs[i] * HW;
        #pragma omp simd
        for (long p = 0; p < len; p++) dst[p] += src[p];
    }
}
