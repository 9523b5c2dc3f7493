// resample.h: PIL's bilinear (triangle-filter, antialiased) resampling of
// planar float images, whole or row by row as a decoder produces them.
//
// PIL resizes in two separable passes, horizontal first; the horizontal
// result is rounded to the pixel type (here float) before the vertical pass,
// and each output pixel sums its window in double, in input order. Both
// versions here do exactly that, so their results are bit-identical.
#pragma once
#include "viscnn_internal.h"

// Output pixel o of a pass from `in` to `out` pixels reads inputs
// lo[o] .. lo[o]+n[o]-1 with weights k[o*ksize + t], which sum to 1
// (PIL's precompute_coeffs, support 1).
typedef struct {
    int ksize;
    int *lo, *n;
    double *k;
} resample_coeffs;

int resample_coeffs_make(resample_coeffs *c, int in, int out);
void resample_coeffs_free(resample_coeffs *c);

// A streaming resize of a (C,H,W) image to (C,h,w). Rows arrive top to
// bottom as (C,W) planar floats; each is resized horizontally at once and
// added into the output rows whose vertical window holds it. Memory: one
// input row and the output with its double accumulators, never (C,H,W), so a
// large photograph is decoded straight into the model's input size.
typedef struct {
    int C, H, W, h, w;
    resample_coeffs cx, cy;   // cx unused when W == w, cy when H == h
    float *hrow;              // (C,w) the current row after the horizontal pass
    double *acc;              // (C,h,w) vertical sums; NULL when H == h
    float *out;               // (C,h,w)
    int y, o0;                // next input row; first output row still open
} row_resizer;

// VC_EINPUT for sizes < 1, VC_EINTERNAL when out of memory (r zeroed).
int row_resizer_init(row_resizer *r, int C, int H, int W, int h, int w);
// row: input row r->y, (C,W) planar.
void row_resizer_push(row_resizer *r, const float *row);
// After all H rows: the (C,h,w) result, malloc'ed and now the caller's.
// Frees everything else in r.
float *row_resizer_finish(row_resizer *r);
void row_resizer_free(row_resizer *r);

// The plain reference: both passes over the whole image, (C,H,W) src ->
// (C,h,w) dst (malloc'ed). VC_EINPUT for sizes < 1, VC_EINTERNAL when out of
// memory. Tests check row_resizer against it.
int resample_ref(float **dst, const float *src, int C, int H, int W, int h, int w);
