// channel_slice.c: channels [start, start + Co) of x, one piece of x.chunk(k, dim=1)
// or x[:, a:b]. Backward adds dy into those channels of dx.
// Forward writes y (must not alias x).
#include <string.h>
#include "ops.h"

// y: (N,Co,HW)  x: (N,C,HW); 0 <= start, start + Co <= C
void channel_slice_forward(float *y, const float *x, int N, int C, int HW, int start, int Co) {
    for (int n = 0; n < N; n++)
        memcpy(y + (size_t)n * Co * HW, x + ((size_t)n * C + start) * HW, (size_t)Co * HW * sizeof(float));
}

// dx += (N,C,HW)  dy: (N,Co,HW)
void channel_slice_backward(float *dx, const float *dy, int N, int C, int HW, int start, int Co) {
    #pragma omp parallel for schedule(static) if ((size_t)N * Co * HW > 65536)
    for (int n = 0; n < N; n++) {
        float *d = dx + ((size_t)n * C + start) * HW;
        const float *s = dy + (size_t)n * Co * HW;
        for (size_t i = 0; i < (size_t)Co * HW; i++) d[i] += s[i];
    }
}

void channel_slice_forward_ref(float *y, const float *x, int N, int C, int HW, int start, int Co) {
    for (int n = 0; n < N; n++)
        for (int c = 0; c < Co; c++)
            for (int p = 0; p < HW; p++) y[((size_t)n * Co + c) * HW + p] = x[((size_t)n * C + start + c) * HW + p];
}

void channel_slice_backward_ref(float *dx, const float *dy, int N, int C, int HW, int start, int Co) {
    for (int n = 0; n < N; n++)
        for (int c = 0; c < Co; c++)
            for (int p = 0; p < HW; p++) dx[((size_t)n * C + start + c) * HW + p] += dy[((size_t)n * Co + c) * HW + p];
}
