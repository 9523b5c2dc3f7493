// channel_shuffle.c: ShuffleNet's channel shuffle, a fixed permutation of the
// channels: view (N, g, C/g, HW), transpose the two channel axes, view back.
// Output channel c takes input channel src(c) = (c % g) * (C/g) + c / g.
// Backward applies the inverse: dx[src(c)] += dy[c].
// Forward writes y (must not alias x).
#include <string.h>
#include "ops.h"

int channel_shuffle_src(int c, int C, int groups) { return (c % groups) * (C / groups) + c / groups; }

// y, x: (N,C,HW); C % groups == 0
void channel_shuffle_forward(float *y, const float *x, int N, int C, int HW, int groups) {
    #pragma omp parallel for collapse(2) schedule(static) if ((size_t)N * C * HW > 65536)
    for (int n = 0; n < N; n++)
        for (int c = 0; c < C; c++)
            memcpy(y + ((size_t)n * C + c) * HW, x + ((size_t)n * C + channel_shuffle_src(c, C, groups)) * HW,
                   (size_t)HW * sizeof(float));
}

// dx += (N,C,HW)  dy: (N,C,HW)
void channel_shuffle_backward(float *dx, const float *dy, int N, int C, int HW, int groups) {
    #pragma omp parallel for collapse(2) schedule(static) if ((size_t)N * C * HW > 65536)
    for (int n = 0; n < N; n++)
        for (int c = 0; c < C; c++) {
            float *d = dx + ((size_t)n * C + channel_shuffle_src(c, C, groups)) * HW;
            const float *s = dy + ((size_t)n * C + c) * HW;
            for (int p = 0; p < HW; p++) d[p] += s[p];
        }
}

// The reference: the 5-D index arithmetic of view/transpose/view, literally.
void channel_shuffle_forward_ref(float *y, const float *x, int N, int C, int HW, int groups) {
    int cpg = C / groups;
    for (int n = 0; n < N; n++)
        for (int i = 0; i < groups; i++)          // x viewed as (N, groups, cpg, HW)
            for (int j = 0; j < cpg; j++)         // y viewed as (N, cpg, groups, HW)
                for (int p = 0; p < HW; p++)
                    y[(((size_t)n * cpg + j) * groups + i) * HW + p] = x[(((size_t)n * groups + i) * cpg + j) * HW + p];
}

void channel_shuffle_backward_ref(float *dx, const float *dy, int N, int C, int HW, int groups) {
    int cpg = C / groups;
    for (int n = 0; n < N; n++)
        for (int i = 0; i < groups; i++)
            for (int j = 0; j < cpg; j++)
                for (int p = 0; p < HW; p++)
                    dx[(((size_t)n * groups + i) * cpg + j) * HW + p] += dy[(((size_t)n * cpg + j) * groups + i) * HW + p];
}
