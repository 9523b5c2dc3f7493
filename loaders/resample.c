// resample.c: PIL-compatible bilinear resampling (resample.h): the streaming
// row resizer the decoders feed, and the whole-image reference.
#include "resample.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void resample_coeffs_free(resample_coeffs *c)
{
    free(c->lo);
    free(c->n);
    free(c->k);
    memset(c, 0, sizeof *c);
}

int resample_coeffs_make(resample_coeffs *c, int in, int out)
{
    memset(c, 0, sizeof *c);
    double scale = (double)in / out;
    double filterscale = scale < 1.0 ? 1.0 : scale;
    double support = 1.0 * filterscale;
    c->ksize = (int)ceil(support) * 2 + 1;
    c->lo = malloc(sizeof(int) * out);
    c->n = malloc(sizeof(int) * out);
    c->k = calloc((size_t)out * c->ksize, sizeof(double));
    if (!c->lo || !c->n || !c->k) {
        resample_coeffs_free(c);
        return VC_EINTERNAL;
    }
    for (int o = 0; o < out; o++) {
        double center = (o + 0.5) * scale;
        int lo = (int)(center - support + 0.5);
        int hi = (int)(center + support + 0.5);
        if (lo < 0) lo = 0;
        if (hi > in) hi = in;
        int n = hi - lo;
        if (n > c->ksize) n = c->ksize;               // cannot happen; keeps writes in bounds
        double *k = c->k + (size_t)o * c->ksize, ww = 0;
        for (int t = 0; t < n; t++) {
            double x = fabs((t + lo - center + 0.5) / filterscale);
            k[t] = x < 1.0 ? 1.0 - x : 0.0;
            ww += k[t];
        }
        if (ww != 0.0)
            for (int t = 0; t < n; t++) k[t] /= ww;
        c->lo[o] = lo;
        c->n[o] = n;
    }
    return VC_OK;
}

// One row of `in` samples -> `out` samples through c (the horizontal pass).
static void hpass(float *d, const float *s, const resample_coeffs *c, int out)
{
    for (int o = 0; o < out; o++) {
        const double *k = c->k + (size_t)o * c->ksize;
        const float *sp = s + c->lo[o];
        double v = 0;
        for (int t = 0; t < c->n[o]; t++) v += k[t] * sp[t];
        d[o] = (float)v;
    }
}

// ---- streaming ----------------------------------------------------------------------

void row_resizer_free(row_resizer *r)
{
    resample_coeffs_free(&r->cx);
    resample_coeffs_free(&r->cy);
    free(r->hrow);
    free(r->acc);
    free(r->out);
    memset(r, 0, sizeof *r);
}

int row_resizer_init(row_resizer *r, int C, int H, int W, int h, int w)
{
    memset(r, 0, sizeof *r);
    if (C < 1 || H < 1 || W < 1 || h < 1 || w < 1) return VC_EINPUT;
    *r = (row_resizer){ .C = C, .H = H, .W = W, .h = h, .w = w };
    size_t out_n = (size_t)C * h * w;
    int rc = VC_OK;
    r->out = malloc(out_n * sizeof(float));
    r->hrow = malloc((size_t)C * w * sizeof(float));
    if (H != h) r->acc = calloc(out_n, sizeof(double));
    if (!r->out || !r->hrow || (H != h && !r->acc)) rc = VC_EINTERNAL;
    if (!rc && W != w) rc = resample_coeffs_make(&r->cx, W, w);
    if (!rc && H != h) rc = resample_coeffs_make(&r->cy, H, h);
    if (rc) row_resizer_free(r);
    return rc;
}

void row_resizer_push(row_resizer *r, const float *row)
{
    int C = r->C, W = r->W, w = r->w, h = r->h, y = r->y++;
    if (y >= r->H) return;
    for (int c = 0; c < C; c++) {
        if (W != w) hpass(r->hrow + (size_t)c * w, row + (size_t)c * W, &r->cx, w);
        else memcpy(r->hrow + (size_t)c * w, row + (size_t)c * W, sizeof(float) * w);
    }
    if (r->H == h) {                                  // no vertical pass: the row is an output row
        for (int c = 0; c < C; c++)
            memcpy(r->out + ((size_t)c * h + y) * w, r->hrow + (size_t)c * w, sizeof(float) * w);
        return;
    }
    // Output rows o whose window lo[o] .. lo[o]+n[o]-1 holds y. Windows start
    // and end in nondecreasing order, so the open ones are o0, o0+1, ...
    while (r->o0 < h && r->cy.lo[r->o0] + r->cy.n[r->o0] <= y) r->o0++;
    for (int o = r->o0; o < h && r->cy.lo[o] <= y; o++) {
        int t = y - r->cy.lo[o];
        if (t >= r->cy.n[o]) continue;
        double kt = r->cy.k[(size_t)o * r->cy.ksize + t];
        for (int c = 0; c < C; c++) {
            double *a = r->acc + ((size_t)c * h + o) * w;
            const float *s = r->hrow + (size_t)c * w;
            for (int x = 0; x < w; x++) a[x] += kt * s[x];
        }
    }
}

float *row_resizer_finish(row_resizer *r)
{
    if (r->y < r->H) {
        row_resizer_free(r);
        return NULL;
    }
    if (r->acc) {
        size_t n = (size_t)r->C * r->h * r->w;
        for (size_t i = 0; i < n; i++) r->out[i] = (float)r->acc[i];
    }
    float *out = r->out;
    r->out = NULL;
    row_resizer_free(r);
    return out;
}

// ---- the reference ------------------------------------------------------------------------

int resample_ref(float **dst, const float *src, int C, int H, int W, int h, int w)
{
    *dst = NULL;
    if (C < 1 || H < 1 || W < 1 || h < 1 || w < 1) return VC_EINPUT;
    float *out = malloc((size_t)C * h * w * sizeof(float));
    float *tmp = W != w ? malloc((size_t)C * H * w * sizeof(float)) : NULL;
    double *acc = malloc((size_t)w * sizeof(double));
    resample_coeffs cx = { 0 }, cy = { 0 };
    int rc = (!out || (W != w && !tmp) || !acc) ? VC_EINTERNAL : VC_OK;
    if (!rc && W != w) rc = resample_coeffs_make(&cx, W, w);
    if (!rc && H != h) rc = resample_coeffs_make(&cy, H, h);
    if (rc) {
        free(out);
        free(tmp);
        free(acc);
        resample_coeffs_free(&cx);
        resample_coeffs_free(&cy);
        return rc;
    }
    // Horizontal pass, src (C,H,W) -> mid (C,H,w); skipped when W == w, as in PIL.
    const float *mid = src;
    if (W != w) {
        for (size_t r = 0; r < (size_t)C * H; r++) hpass(tmp + r * w, src + r * W, &cx, w);
        mid = tmp;
    }
    // Vertical pass, mid (C,H,w) -> out (C,h,w).
    for (int c = 0; c < C; c++) {
        const float *m = mid + (size_t)c * H * w;
        float *d = out + (size_t)c * h * w;
        if (H == h) {
            memcpy(d, m, sizeof(float) * (size_t)h * w);
            continue;
        }
        for (int o = 0; o < h; o++) {
            const double *k = cy.k + (size_t)o * cy.ksize;
            for (int x = 0; x < w; x++) acc[x] = 0;
            for (int t = 0; t < cy.n[o]; t++) {
                const float *row = m + (size_t)(cy.lo[o] + t) * w;
                double kt = k[t];
                for (int x = 0; x < w; x++) acc[x] += kt * row[x];
            }
            for (int x = 0; x < w; x++) d[(size_t)o * w + x] = (float)acc[x];
        }
    }
    free(tmp);
    free(acc);
    resample_coeffs_free(&cx);
    resample_coeffs_free(&cy);
    *dst = out;
    return VC_OK;
}
