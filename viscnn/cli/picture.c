// picture.c: contact sheets and receptive-field pictures (see picture.h).
#include "picture.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cli.h"

// A picture being drawn: (3, h, w), values in [0, 1].
typedef struct { int c, h, w; float *data; } picture;

#define MAX_SIDE 8192
#define GAP 2

// 3x5 glyphs, one row per byte (bits 2..0 = left..right), for scale labels.
static const char glyph_chars[] = "0123456789.-+e";
static const unsigned char glyphs[][5] = {
    {7, 5, 5, 5, 7}, {2, 6, 2, 2, 7}, {7, 1, 7, 4, 7}, {7, 1, 7, 1, 7}, {5, 5, 7, 1, 1}, {7, 4, 7, 1, 7},
    {7, 4, 7, 5, 7}, {7, 1, 1, 1, 1}, {7, 5, 7, 5, 7}, {7, 5, 7, 1, 7}, {0, 0, 0, 0, 2}, {0, 0, 7, 0, 0},
    {0, 2, 7, 2, 0}, {7, 5, 7, 4, 7},
};

static void put(picture *im, int y, int x, float r, float g, float b) {
    if (y < 0 || x < 0 || y >= im->h || x >= im->w) return;
    size_t p = (size_t)y * im->w + x, plane = (size_t)im->h * im->w;
    im->data[p] = r;
    im->data[plane + p] = g;
    im->data[2 * plane + p] = b;
}

// Text in black at (y, x), each glyph pixel a s x s square; returns the width.
static int text(picture *im, int y, int x, const char *s, int scale, int draw) {
    int x0 = x;
    for (; *s; s++) {
        const char *g = strchr(glyph_chars, *s);
        if (g && draw)
            for (int r = 0; r < 5; r++)
                for (int c = 0; c < 3; c++)
                    if (glyphs[g - glyph_chars][r] >> (2 - c) & 1)
                        for (int dy = 0; dy < scale; dy++)
                            for (int dx = 0; dx < scale; dx++) put(im, y + r * scale + dy, x + c * scale + dx, 0, 0, 0);
        x += 4 * scale;
    }
    return x - x0;
}

// v in [-1, 1] -> blue, white, red.
static void diverging(float v, float *r, float *g, float *b) {
    static const float neg[3] = {0.23f, 0.30f, 0.75f}, pos[3] = {0.71f, 0.02f, 0.15f};
    if (!(v == v)) { *r = *g = *b = 0.5f; return; }
    if (v > 1) v = 1;
    if (v < -1) v = -1;
    const float *e = v < 0 ? neg : pos;
    float t = fabsf(v);
    *r = 1 + t * (e[0] - 1);
    *g = 1 + t * (e[1] - 1);
    *b = 1 + t * (e[2] - 1);
}

int picture_sheet(const char *path, const float *maps, int rows, int cols, int h, int w, vc_error *err) {
    int side = h > w ? h : w, s = (48 + side - 1) / side;
    if (s > 8) s = 8;
    if (s < 1) s = 1;
    long gw = (long)cols * (w * s + GAP) + GAP, gh = (long)rows * (h * s + GAP) + GAP;
    if (gw > MAX_SIDE || gh > MAX_SIDE)
        return cli_fail(err, VC_EINPUT, "%s: %d x %d maps of %dx%d make a picture over %d pixels a side; choose fewer (--out/--in)",
                       path, rows, cols, h, w, MAX_SIDE);
    size_t n = (size_t)rows * cols * h * w;
    double mx = 0;
    for (size_t i = 0; i < n; i++) if (fabs(maps[i]) > mx) mx = fabs(maps[i]);
    int scale = 2, bar_h = 12, text_h = 5 * scale, width = gw < 200 ? 200 : (int)gw;
    int height = (int)gh + 6 + bar_h + 4 + text_h + 4;
    picture im = {3, height, width, cli_malloc((size_t)3 * height * width * sizeof(float))};
    for (size_t i = 0; i < (size_t)3 * height * width; i++) im.data[i] = 1;
    for (int y = 0; y < gh; y++)
        for (int x = 0; x < gw; x++) put(&im, y, x, 0.6f, 0.6f, 0.6f);
    float r, g, b;
    for (int i = 0; i < rows; i++)
        for (int j = 0; j < cols; j++) {
            const float *mp = maps + ((size_t)i * cols + j) * h * w;
            int oy = GAP + i * (h * s + GAP), ox = GAP + j * (w * s + GAP);
            for (int y = 0; y < h * s; y++)
                for (int x = 0; x < w * s; x++) {
                    diverging(mx > 0 ? (float)(mp[(y / s) * w + x / s] / mx) : 0, &r, &g, &b);
                    put(&im, oy + y, ox + x, r, g, b);
                }
        }
    // the scale bar: -M .. 0 .. +M across the middle of the picture
    int bw = width - 40 < 400 ? width - 40 : 400, bx = (width - bw) / 2, by = (int)gh + 6;
    for (int x = 0; x < bw; x++) {
        diverging(2.0f * x / (bw - 1) - 1, &r, &g, &b);
        for (int y = 0; y < bar_h; y++) put(&im, by + y, bx + x, r, g, b);
    }
    char lo[32], hi[32];
    snprintf(hi, sizeof hi, "+%.3g", mx);
    snprintf(lo, sizeof lo, "-%.3g", mx);
    int ty = by + bar_h + 4;
    text(&im, ty, bx, lo, scale, 1);
    text(&im, ty, bx + bw / 2 - text(&im, 0, 0, "0", scale, 0) / 2, "0", scale, 1);
    text(&im, ty, bx + bw - text(&im, 0, 0, hi, scale, 0), hi, scale, 1);
    int rc = vc_png_write(path, im.data, 3, im.h, im.w, err);
    free(im.data);
    return rc;
}

int picture_rf(const char *path, const float *x, int c, int h, int w, const float *mean, const float *std, const int *bx,
               vc_error *err) {
    struct { int y0, x0, y1, x1; } box = {bx[0], bx[1], bx[2], bx[3]};
    int side = h > w ? h : w, s = (256 + side - 1) / side;
    if (s > 8) s = 8;
    if (s < 1) s = 1;
    int H = h * s, W = w * s;
    picture im = {3, H, W, cli_malloc((size_t)3 * H * W * sizeof(float))};
    for (int y = 0; y < H; y++)
        for (int xx = 0; xx < W; xx++) {
            int iy = y / s, ix = xx / s;
            int inside = iy >= box.y0 && iy <= box.y1 && ix >= box.x0 && ix <= box.x1;
            float v[3];
            for (int k = 0; k < 3; k++) {
                int ch = c == 1 ? 0 : k;
                v[k] = x[((size_t)ch * h + iy) * w + ix] * std[ch] + mean[ch];
                if (!inside) v[k] *= 0.35f;
            }
            put(&im, y, xx, v[0], v[1], v[2]);
        }
    if (box.y1 >= box.y0 && box.x1 >= box.x0)   // a 2-pixel red frame just outside the box
        for (int t = 1; t <= 2; t++) {
            int y0 = box.y0 * s - t, y1 = (box.y1 + 1) * s - 1 + t, x0 = box.x0 * s - t, x1 = (box.x1 + 1) * s - 1 + t;
            for (int xx = x0; xx <= x1; xx++) { put(&im, y0, xx, 1, 0, 0); put(&im, y1, xx, 1, 0, 0); }
            for (int y = y0; y <= y1; y++) { put(&im, y, x0, 1, 0, 0); put(&im, y, x1, 1, 0, 0); }
        }
    int rc = vc_png_write(path, im.data, 3, im.h, im.w, err);
    free(im.data);
    return rc;
}
