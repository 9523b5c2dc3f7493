// shapes.c: PyTorch's output-size formulas for conv and pooling, and the
// index arithmetic that conv2d.c and conv2d_winograd.c share.
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

// Images per group of N, so that a group has about `target` columns of
// `per_image` each, the groups of equal size (the last may be smaller).
int images_per_group(int N, int per_image, int target) {
    const int nb = (target + per_image - 1) / per_image;
    if (nb <= 1) return 1;
    if (nb >= N) return N;
    const int groups = (N + nb - 1) / nb;
    return (N + groups - 1) / groups;
}

// Output positions o in [*lo, *hi) whose input index off + o*s lies in [0, n_in).
void conv2d_valid_range(int off, int s, int n_in, int n_out, int *lo, int *hi) {
    int l = off >= 0 ? 0 : (-off + s - 1) / s;
    int h = off > n_in - 1 ? 0 : (n_in - 1 - off) / s + 1;
    if (h > n_out) h = n_out;
    if (l > h) l = h;
    *lo = l; *hi = h;
}
