// transforms.h: the random transforms of feature visualisation — pad, jitter,
// scale, rotate — composed into one affine map and applied with one bilinear
// sampling (and its exact backward), onto the model's input grid.
//
// Coordinates are pixel indices (row y, column x). The canvas (Sh x Sw, the
// picture being optimised) sits centred in the model's input (H x W) at the
// integer offset (oy, ox) = ((H - Sh) / 2, (W - Sw) / 2). An output pixel p
// reads the canvas at
//     q = A (p - o - c - t) + c,     c = ((Sh-1)/2, (Sw-1)/2), the canvas centre,
// so the identity (A = I, t = 0) copies the canvas exactly. Bilinear taps
// outside the canvas read `fill` (the pad: Lucid pads with grey 0.5) and take
// no gradient.
#pragma once
#include <stdint.h>

typedef struct {
    float a[2][2];            // canvas <- output linear part (inverse scale and rotation)
    float t[2];               // translation of the canvas on the output (jitter), pixels
} fv_affine;

void affine_identity(fv_affine *A);
// Each transform alone, applied after A (A := transform o A):
void affine_jitter(fv_affine *A, float dy, float dx);   // the canvas moves by (dy, dx)
void affine_scale(fv_affine *A, float s);                // magnified s times about its centre
void affine_rotate(fv_affine *A, float degrees);         // rotated about its centre

// Lucid's standard transforms scaled to the canvas: pad p pixels of grey
// around the canvas (the padded canvas fitted into the model's fixed input,
// i.e. scaled by S/(S+2p), so that the canvas's corners stay in view under
// the rotations), jitter ±j1 pixels, scale in {1 + (k-5)/50, k = 0..10}, rotate by an
// integer in [-10, 10] degrees, jitter ±j2; j1 = max(1, round(8 S/224)),
// j2 = max(1, round(4 S/224)), p = max(1, round(12 S/224)), S the canvas's longer side.
void affine_random(fv_affine *A, int Sh, int Sw, uint64_t *rng);

// out (C, H, W) = canvas u (C, Sh, Sw) sampled through A (fill outside).
void sample_forward(float *out, int H, int W, const float *u, int C, int Sh, int Sw, const fv_affine *A, float fill);
// du (C, Sh, Sw) += the transpose of the sampling applied to dout (C, H, W).
void sample_backward(float *du, const float *dout, int H, int W, int C, int Sh, int Sw, const fv_affine *A);
