// shapes.c: PyTorch's output-size formulas for conv and pooling.
#include "ops.h"

int conv_out_size(int in, int k, int s, int p, int d) {
    int span = in + 2 * p - d * (k - 1) - 1;
    if (span < 0 || s <= 0) return 0;
    return span / s + 1;
}

int pool_out_size(int in, int k, int s, int p, int d, int ceil_mode) {
    int span = in + 2 * p - d * (k - 1) - 1;
    if (span < 0 || s <= 0) return 0;
    int out = (ceil_mode ? (span + s - 1) / s : span / s) + 1;
    // the last window must start inside the input or the left padding
    if (ceil_mode && (out - 1) * s >= in + p) out--;
    return out;
}

void conv2d_dims_finish(conv2d_dims *d) {
    d->Ho = conv_out_size(d->H, d->kh, d->sh, d->ph, d->dh);
    d->Wo = conv_out_size(d->W, d->kw, d->sw, d->pw, d->dw);
}

void pool2d_dims_finish(pool2d_dims *d) {
    d->Ho = pool_out_size(d->H, d->kh, d->sh, d->ph, d->dh, d->ceil_mode);
    d->Wo = pool_out_size(d->W, d->kw, d->sw, d->pw, d->dw, d->ceil_mode);
}
