// transforms.c: affine transforms and bilinear sampling for feature
// visualisation (transforms.h). The sampling is linear in the canvas, so its
// backward is its transpose: each output pixel's gradient goes to the (up to)
// four canvas pixels it read, with the same bilinear weights.
#include <math.h>
#include <string.h>
#include "fourier.h"
#include "transforms.h"

void affine_identity(fv_affine *A) {
    memset(A, 0, sizeof *A);
    A->a[0][0] = A->a[1][1] = 1;
}

// A transform T moves the canvas: output point p' = T(p). The sampler needs
// the inverse, canvas <- output, so we compose inverses: A_new = A_old o T^-1
// on the linear part, and translations add on the output side.
static void compose_linear(fv_affine *A, const float m[2][2]) {
    float r[2][2];
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 2; j++) r[i][j] = A->a[i][0] * m[0][j] + A->a[i][1] * m[1][j];
    memcpy(A->a, r, sizeof r);
    // a translation applied before this transform turns with it
    float t0 = A->t[0], t1 = A->t[1];
    float det = m[0][0] * m[1][1] - m[0][1] * m[1][0];
    A->t[0] = (m[1][1] * t0 - m[0][1] * t1) / det;
    A->t[1] = (-m[1][0] * t0 + m[0][0] * t1) / det;
}

void affine_jitter(fv_affine *A, float dy, float dx) { A->t[0] += dy; A->t[1] += dx; }

void affine_scale(fv_affine *A, float s) {
    const float m[2][2] = {{1 / s, 0}, {0, 1 / s}};
    compose_linear(A, m);
}

void affine_rotate(fv_affine *A, float degrees) {
    float th = degrees * (float)M_PI / 180, c = cosf(th), s = sinf(th);
    const float m[2][2] = {{c, s}, {-s, c}};   // inverse rotation, (y, x) order
    compose_linear(A, m);
}

void affine_random(fv_affine *A, int Sh, int Sw, uint64_t *rng) {
    int S = Sh > Sw ? Sh : Sw;
    int p = (int)lround(12.0 * S / 224), j1 = (int)lround(8.0 * S / 224), j2 = (int)lround(4.0 * S / 224);
    if (p < 1) p = 1;
    if (j1 < 1) j1 = 1;
    if (j2 < 1) j2 = 1;
    affine_identity(A);
    // pad: Lucid feeds the model the canvas with p grey pixels around it; our
    // model's input has a fixed size, so the padded canvas is fitted into it
    affine_scale(A, (float)S / (S + 2 * p));
    affine_jitter(A, (float)(fv_rng_next(rng) % (2 * j1 + 1)) - j1, (float)(fv_rng_next(rng) % (2 * j1 + 1)) - j1);
    affine_scale(A, 1 + ((int)(fv_rng_next(rng) % 11) - 5) / 50.0f);
    affine_rotate(A, (float)((int)(fv_rng_next(rng) % 21) - 10));
    affine_jitter(A, (float)(fv_rng_next(rng) % (2 * j2 + 1)) - j2, (float)(fv_rng_next(rng) % (2 * j2 + 1)) - j2);
}

// The four taps of output pixel (y, x): canvas indices (-1 when outside) and weights.
typedef struct { int idx[4]; float w[4]; } taps;

static inline void tap(taps *t, int y, int x, int H, int W, int Sh, int Sw, const fv_affine *A) {
    (void)H; (void)W;
    float cy = (Sh - 1) * 0.5f, cx = (Sw - 1) * 0.5f;
    float py = (float)(y - (H - Sh) / 2) - cy - A->t[0], px = (float)(x - (W - Sw) / 2) - cx - A->t[1];
    float qy = A->a[0][0] * py + A->a[0][1] * px + cy, qx = A->a[1][0] * py + A->a[1][1] * px + cx;
    float fy = floorf(qy), fx = floorf(qx);
    int y0 = (int)fy, x0 = (int)fx;
    float ay = qy - fy, ax = qx - fx;
    int ys[2] = {y0, y0 + 1}, xs[2] = {x0, x0 + 1};
    float wy[2] = {1 - ay, ay}, wx[2] = {1 - ax, ax};
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 2; j++) {
            int k = 2 * i + j;
            t->w[k] = wy[i] * wx[j];
            t->idx[k] = ys[i] >= 0 && ys[i] < Sh && xs[j] >= 0 && xs[j] < Sw ? ys[i] * Sw + xs[j] : -1;
        }
}

void sample_forward(float *out, int H, int W, const float *u, int C, int Sh, int Sw, const fv_affine *A, float fill) {
    size_t hw = (size_t)H * W, shw = (size_t)Sh * Sw;
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) {
            taps t;
            tap(&t, y, x, H, W, Sh, Sw, A);
            for (int c = 0; c < C; c++) {
                float v = 0;
                for (int k = 0; k < 4; k++) v += t.w[k] * (t.idx[k] >= 0 ? u[c * shw + t.idx[k]] : fill);
                out[c * hw + (size_t)y * W + x] = v;
            }
        }
}

void sample_backward(float *du, const float *dout, int H, int W, int C, int Sh, int Sw, const fv_affine *A) {
    size_t hw = (size_t)H * W, shw = (size_t)Sh * Sw;
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) {
            taps t;
            tap(&t, y, x, H, W, Sh, Sw, A);
            for (int c = 0; c < C; c++) {
                float g = dout[c * hw + (size_t)y * W + x];
                for (int k = 0; k < 4; k++)
                    if (t.idx[k] >= 0) du[c * shw + t.idx[k]] += t.w[k] * g;
            }
        }
}
