// test_image.c: loaders/image.c — PNG/JPEG decoding, bilinear resize,
// preprocessing, PNG writing, and every way a file can be bad.
//
// Reference values come from tests/image_oracle.py run by /usr/bin/python3
// (PIL for decoding and resizing, torchvision for preprocessing), started once
// in the background while the self-contained cases run. If the oracle cannot
// run (no PIL, no torchvision), the cases that need it FAIL.
// Photographs: python3-skimage's data folder (astronaut, chelsea, coffee,
// camera, rocket, palettes); all other inputs are written at run time into a
// fresh directory under $TMPDIR (or /tmp), removed at the end.
//
// Tolerances:
//   decoding vs PIL: exact (1e-6) — same libjpeg-turbo, same conversions;
//   resize vs PIL BILINEAR: 2/255 max abs (PIL rounds to 8 bits after each
//   pass, we stay in float);
//   preprocess vs torchvision: 0.03 max abs after Normalize (2/255 / std).
//
// Build (from the repo root), then run from the repo root:
//   gcc -O2 -Wall -Wextra -Iinclude -Itests tests/test_image.c
//       loaders/image.c engine/error.c -o test_image -lpng -ljpeg -lz -lm
#define _POSIX_C_SOURCE 200809L                   // mkdtemp, popen, strdup under -std=c11
#include <stdio.h>

#include <dirent.h>
#include <errno.h>
#include <jpeglib.h>
#include <png.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

#include "../loaders/image.h"
#include "testutil.h"

static const char *SK = "/usr/lib/python3/dist-packages/skimage/data";
static char g_dir[512];
static const float MEAN3[3] = { 0.485f, 0.456f, 0.406f }, STD3[3] = { 0.229f, 0.224f, 0.225f };
static const float MEAN1 = 0.5f, STD1 = 0.25f;        // keep in sync with image_oracle.py

// ---- helpers --------------------------------------------------------------------

// Path inside the scratch directory; 8 rotating buffers.
static const char *tp(const char *name)
{
    static char buf[8][640];
    static int i;
    char *b = buf[i++ & 7];
    snprintf(b, sizeof buf[0], "%s/%s", g_dir, name);
    return b;
}

static const char *skp(const char *name)
{
    static char buf[8][640];
    static int i;
    char *b = buf[i++ & 7];
    snprintf(b, sizeof buf[0], "%s/%s", SK, name);
    return b;
}

static int write_bytes(const char *path, const void *p, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    int ok = fwrite(p, 1, n, f) == n;
    return fclose(f) == 0 && ok ? 0 : -1;
}

static unsigned char *read_bytes(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *p = malloc(len > 0 ? (size_t)len : 1);
    *n = fread(p, 1, (size_t)len, f);
    fclose(f);
    return p;
}

// The oracle's format: int32 c, h, w, then float32 (c,h,w).
static float *read_bin(const char *path, int *c, int *h, int *w)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    int32_t d[3];
    float *p = NULL;
    if (fread(d, 4, 3, f) == 3 && d[0] > 0 && d[1] > 0 && d[2] > 0) {
        size_t n = (size_t)d[0] * d[1] * d[2];
        p = malloc(n * sizeof(float));
        if (fread(p, sizeof(float), n, f) != n) {
            free(p);
            p = NULL;
        }
        *c = d[0], *h = d[1], *w = d[2];
    }
    fclose(f);
    return p;
}

static double max_abs_diff(const float *a, const float *b, size_t n, double *mean)
{
    double m = 0, s = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]);
        if (d > m || d != d) m = d != d ? INFINITY : d;
        s += d;
    }
    if (mean) *mean = n ? s / n : 0;
    return m;
}

// px: (h, w, comp) 8-bit. cs: JCS_GRAYSCALE, JCS_RGB or JCS_CMYK.
static int write_jpeg(const char *path, const unsigned char *px, int h, int w, int comp, J_COLOR_SPACE cs,
                      int quality, int progressive)
{
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    struct jpeg_compress_struct ci;
    struct jpeg_error_mgr jerr;
    ci.err = jpeg_std_error(&jerr);
    jpeg_create_compress(&ci);
    jpeg_stdio_dest(&ci, f);
    ci.image_width = w;
    ci.image_height = h;
    ci.input_components = comp;
    ci.in_color_space = cs;
    jpeg_set_defaults(&ci);
    jpeg_set_quality(&ci, quality, TRUE);
    if (progressive) jpeg_simple_progression(&ci);
    jpeg_start_compress(&ci, TRUE);
    while (ci.next_scanline < ci.image_height) {
        JSAMPROW row = (JSAMPROW)px + (size_t)ci.next_scanline * w * comp;
        jpeg_write_scanlines(&ci, &row, 1);
    }
    jpeg_finish_compress(&ci);
    jpeg_destroy_compress(&ci);
    return fclose(f);
}

// Any PNG libpng can write. data: h rows of packed samples as the PNG stores
// them (16-bit big-endian, sub-byte depths packed MSB first).
static int write_png_raw(const char *path, int h, int w, int depth, int ctype, const unsigned char *data,
                         const png_color *pal, int npal, const unsigned char *trns, int ntrns, int interlace)
{
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png_create_info_struct(png);
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_write_struct(&png, &info);
        fclose(f);
        return -1;
    }
    png_init_io(png, f);
    png_set_IHDR(png, info, w, h, depth, ctype, interlace ? PNG_INTERLACE_ADAM7 : PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    if (pal) png_set_PLTE(png, info, pal, npal);
    if (trns) png_set_tRNS(png, info, trns, ntrns, NULL);
    png_write_info(png, info);
    int ch = ctype == PNG_COLOR_TYPE_GRAY || ctype == PNG_COLOR_TYPE_PALETTE ? 1
           : ctype == PNG_COLOR_TYPE_GRAY_ALPHA ? 2 : ctype == PNG_COLOR_TYPE_RGB ? 3 : 4;
    size_t rowbytes = ((size_t)w * ch * depth + 7) / 8;
    png_bytep *rows = malloc(sizeof(png_bytep) * h);
    for (int y = 0; y < h; y++) rows[y] = (png_bytep)data + rowbytes * y;
    png_write_image(png, rows);
    png_write_end(png, info);
    png_destroy_write_struct(&png, &info);
    free(rows);
    return fclose(f);
}

// A PNG that is just the signature and an IHDR with the given size.
static int write_png_header_only(const char *path, uint32_t w, uint32_t h)
{
    unsigned char b[8 + 25] = { 0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n', 0, 0, 0, 13, 'I', 'H', 'D', 'R' };
    unsigned char *p = b + 16;
    for (int i = 0; i < 4; i++) p[i] = (unsigned char)(w >> (24 - 8 * i)), p[4 + i] = (unsigned char)(h >> (24 - 8 * i));
    p[8] = 8, p[9] = 0, p[10] = p[11] = p[12] = 0;      // 8-bit gray
    uint32_t crc = (uint32_t)crc32(0, b + 12, 17);
    for (int i = 0; i < 4; i++) b[29 + i] = (unsigned char)(crc >> (24 - 8 * i));
    return write_bytes(path, b, sizeof b);
}

static float q255(float v)
{
    v = v > 0 ? (v < 1 ? v : 1) : 0;
    return (float)lrintf(v * 255.0f) / 255.0f;
}

// ---- the oracle ------------------------------------------------------------------

enum { MAX_JOBS = 64 };
static char g_jobs[MAX_JOBS][1400];
static int g_njobs;
static FILE *g_oracle;
static int g_oracle_rc = -1;

static const char *job(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static const char *job(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(g_jobs[g_njobs++], sizeof g_jobs[0], fmt, ap);
    va_end(ap);
    return g_jobs[g_njobs - 1];
}

static void oracle_start(void)
{
    static char cmd[MAX_JOBS * 1400 + 1024];
    const char *src = __FILE__;
    const char *slash = strrchr(src, '/');
    int n = snprintf(cmd, sizeof cmd, "/usr/bin/python3 %.*s%simage_oracle.py", slash ? (int)(slash - src + 1) : 0,
                     src, slash ? "" : "tests/");
    for (int i = 0; i < g_njobs; i++) n += snprintf(cmd + n, sizeof cmd - n, " '%s'", g_jobs[i]);
    fflush(stdout);
    g_oracle = popen(cmd, "r");
}

static int oracle_wait(void)
{
    if (g_oracle) {
        g_oracle_rc = pclose(g_oracle);
        g_oracle = NULL;
    }
    return g_oracle_rc;
}

// Loads one oracle output (waiting for the oracle first).
static float *oracle(const char *out, int *c, int *h, int *w, char *why, size_t nwhy)
{
    if (oracle_wait() != 0) {
        int st = g_oracle_rc;
        snprintf(why, nwhy, "the PIL/torchvision oracle (/usr/bin/python3 tests/image_oracle.py) %s %d (see stderr)",
                 st == -1 ? "did not start, errno" : WIFEXITED(st) ? "exited with status" : "was killed by signal",
                 st == -1 ? errno : WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
        return NULL;
    }
    float *p = read_bin(out, c, h, w);
    if (!p) snprintf(why, nwhy, "oracle output %s missing", out);
    return p;
}

// ---- cases -----------------------------------------------------------------------

// Loads path with `channels`, compares with an oracle file.
static void case_vs_oracle_decode(const char *name, const char *path, int channels, const char *out)
{
    if (!tu_selected(name)) return;
    char why[1200] = "";
    int c, h, w;
    float *ref = oracle(out, &c, &h, &w, why, sizeof why);
    if (!ref) {
        tu_report(name, 0, "%s", why);
        return;
    }
    vc_image img;
    vc_error err = { "" };
    int rc = image_load(&img, path, channels, &err);
    if (rc) tu_report(name, 0, "image_load: %s", err.msg);
    else if (img.c != c || img.h != h || img.w != w)
        tu_report(name, 0, "shape %dx%dx%d, PIL %dx%dx%d", img.c, img.h, img.w, c, h, w);
    else {
        double mean, m = max_abs_diff(img.data, ref, (size_t)c * h * w, &mean);
        tu_report(name, m <= 1e-6, "max abs diff %.3g (%.2f levels) > 1e-6", m, m * 255);
        fprintf(stderr, "#   %s: max abs diff vs PIL %.3g\n", name, m);
    }
    image_free(&img);
    free(ref);
}

static void case_resize_vs_pil(const char *name, const char *path, int h, int w, const char *out)
{
    if (!tu_selected(name)) return;
    char why[1200] = "";
    int c, rh, rw;
    float *ref = oracle(out, &c, &rh, &rw, why, sizeof why);
    if (!ref) {
        tu_report(name, 0, "%s", why);
        return;
    }
    vc_image img, r = { 0 };
    vc_error err = { "" };
    if (image_load(&img, path, 3, &err)) tu_report(name, 0, "image_load: %s", err.msg);
    else if (image_resize(&r, &img, h, w)) tu_report(name, 0, "image_resize failed");
    else if (r.c != c || r.h != rh || r.w != rw) tu_report(name, 0, "shape mismatch vs PIL %dx%dx%d", c, rh, rw);
    else {
        double mean, m = max_abs_diff(r.data, ref, (size_t)c * rh * rw, &mean);
        tu_report(name, m <= 2.0 / 255, "max abs diff %.4f (%.2f levels) > 2/255", m, m * 255);
        fprintf(stderr, "#   %s: max abs %.5f (%.2f levels), mean abs %.6f (%.3f levels)\n", name, m, m * 255, mean,
               mean * 255);
    }
    image_free(&img);
    image_free(&r);
    free(ref);
}

static void case_preprocess_vs_tv(const char *name, const char *path, int channels, int resize, int crop, int oh,
                                  int ow, const char *out)
{
    if (!tu_selected(name)) return;
    char why[1200] = "";
    int c, h, w;
    float *ref = oracle(out, &c, &h, &w, why, sizeof why);
    if (!ref) {
        tu_report(name, 0, "%s", why);
        return;
    }
    vc_preprocess pp = { .channels = channels, .resize = resize, .crop = crop };
    for (int i = 0; i < 3; i++) {
        pp.mean[i] = channels == 3 ? MEAN3[i] : MEAN1;
        pp.std[i] = channels == 3 ? STD3[i] : STD1;
    }
    float *x = malloc(sizeof(float) * channels * oh * ow);
    vc_error err = { "" };
    int rc = image_preprocess(x, path, &pp, oh, ow, &err);
    if (rc) tu_report(name, 0, "image_preprocess: %s", err.msg);
    else if (c != channels || h != oh || w != ow)
        tu_report(name, 0, "torchvision gives %dx%dx%d, expected %dx%dx%d", c, h, w, channels, oh, ow);
    else {
        double mean, m = max_abs_diff(x, ref, (size_t)c * h * w, &mean);
        tu_report(name, m <= 0.03, "max abs diff %.4f > 0.03", m);
        fprintf(stderr, "#   %s: max abs %.5f, mean abs %.6f (after Normalize)\n", name, m, mean);
    }
    free(x);
    free(ref);
}

// A bad input: VC_EINPUT, a one-line message starting with "path:", img zeroed.
static void case_bad(const char *name, const char *path, int channels)
{
    if (!tu_selected(name)) return;
    vc_image img = { 7, 7, 7, (float *)&img };
    vc_error err = { "" };
    int rc = image_load(&img, path, channels, &err);
    size_t n = strlen(path);
    if (rc != VC_EINPUT) tu_report(name, 0, "status %d, expected VC_EINPUT (msg \"%s\")", rc, err.msg);
    else if (strncmp(err.msg, path, n) != 0 || err.msg[n] != ':' || strchr(err.msg, '\n'))
        tu_report(name, 0, "message \"%s\" is not one line starting with the path", err.msg);
    else if (img.data || img.c || img.h || img.w) tu_report(name, 0, "image not zeroed on failure");
    else tu_report(name, 1, "");
    if (rc == VC_EINPUT) fprintf(stderr, "#   %s: %s\n", name, err.msg);
    if (rc == VC_OK) image_free(&img);
}

// Fills a (c,h,w) random image with values on the 8-bit grid.
static vc_image rand_image(tu_rng *r, int c, int h, int w)
{
    vc_image img = { c, h, w, malloc(sizeof(float) * c * h * w) };
    for (int i = 0; i < c * h * w; i++) img.data[i] = (float)lrintf((tu_uniform(r) * 0.5f + 0.5f) * 255) / 255;
    return img;
}

static void case_roundtrip(tu_rng *r, int c, int h, int w)
{
    char name[128];
    snprintf(name, sizeof name, "png roundtrip c=%d %dx%d (exact to 1/255, clamped)", c, w, h);
    if (!tu_selected(name)) return;
    size_t n = (size_t)c * h * w;
    vc_image img = { c, h, w, tu_rand(r, n) };
    for (size_t i = 0; i < n; i++) img.data[i] = img.data[i] * 0.7f + 0.5f;     // [-0.2, 1.2): clamps too
    img.data[0] = NAN;
    img.data[n - 1] = 0.5f / 255;                     // ties round to even: lrintf(0.5) = 0
    const char *p = tp("roundtrip.png");
    vc_error err = { "" };
    vc_image back = { 0 };
    int rc = image_save_png(p, &img, &err);
    struct stat st;
    char tmp[700];
    snprintf(tmp, sizeof tmp, "%s.tmp", p);
    if (rc) tu_report(name, 0, "image_save_png: %s", err.msg);
    else if (stat(tmp, &st) == 0) tu_report(name, 0, "%s left behind", tmp);
    else if ((rc = image_load(&back, p, c, &err))) tu_report(name, 0, "image_load: %s", err.msg);
    else if (back.c != c || back.h != h || back.w != w) tu_report(name, 0, "shape %dx%dx%d", back.c, back.h, back.w);
    else {
        double m = 0;
        for (size_t i = 0; i < n; i++) m = fmax(m, fabs(back.data[i] - q255(img.data[i])));
        tu_report(name, m <= 1e-7 && back.data[0] == 0.0f, "max abs diff %.3g vs the 8-bit quantised input", m);
    }
    image_free(&img);
    image_free(&back);
}

// A PNG variant written by libpng directly; expect: (3,h,w) floats.
static void case_png_variant(const char *name, int h, int w, int depth, int ctype, const unsigned char *data,
                             const png_color *pal, int npal, const unsigned char *trns, int ntrns, int interlace,
                             const float *expect)
{
    if (!tu_selected(name)) return;
    const char *p = tp("variant.png");
    if (write_png_raw(p, h, w, depth, ctype, data, pal, npal, trns, ntrns, interlace)) {
        tu_report(name, 0, "could not write the test PNG");
        return;
    }
    vc_image img3 = { 0 }, img1 = { 0 };
    vc_error err = { "" };
    size_t hw = (size_t)h * w;
    if (image_load(&img3, p, 3, &err) || image_load(&img1, p, 1, &err)) tu_report(name, 0, "image_load: %s", err.msg);
    else if (img3.c != 3 || img3.h != h || img3.w != w || img1.c != 1)
        tu_report(name, 0, "shape %dx%dx%d", img3.c, img3.h, img3.w);
    else {
        double m = max_abs_diff(img3.data, expect, 3 * hw, NULL), mg = 0;
        // Gray from the expected RGB: PIL's luma on 8-bit data, float weights on 16-bit.
        for (size_t i = 0; i < hw; i++) {
            double r = expect[i], g = expect[hw + i], b = expect[2 * hw + i], L;
            if (depth == 16) L = (r * 299 + g * 587 + b * 114) / 1000;
            else {
                int R = (int)lrint(r * 255), G = (int)lrint(g * 255), B = (int)lrint(b * 255);
                L = ((R * 19595 + G * 38470 + B * 7471 + 0x8000) >> 16) / 255.0;
            }
            mg = fmax(mg, fabs(img1.data[i] - L));
        }
        tu_report(name, m <= 1e-6 && mg <= 1e-6, "max abs diff rgb %.3g gray %.3g", m, mg);
    }
    image_free(&img3);
    image_free(&img1);
}

static void cases_png_variants(tu_rng *r)
{
    enum { H = 11, W = 13 };
    unsigned char d[H * W * 8];
    float e[3 * H * W];
    size_t hw = H * W;
    // Gray at 1, 2, 4 bits: packed MSB first, value v scales to v * 255 / (2^b - 1).
    for (int bits = 1; bits <= 4; bits *= 2) {
        memset(d, 0, sizeof d);
        int rowbytes = (W * bits + 7) / 8, maxv = (1 << bits) - 1;
        for (int y = 0; y < H; y++)
            for (int x = 0; x < W; x++) {
                int v = (x * 7 + y * 3) & maxv;
                d[y * rowbytes + x * bits / 8] |= (unsigned char)(v << (8 - bits - (x * bits) % 8));
                for (int c = 0; c < 3; c++) e[c * hw + y * W + x] = (float)(v * (255 / maxv)) / 255;
            }
        char name[96];
        snprintf(name, sizeof name, "png gray %d-bit %dx%d", bits, W, H);
        case_png_variant(name, H, W, bits, PNG_COLOR_TYPE_GRAY, d, NULL, 0, NULL, 0, 0, e);
    }
    // 8/16-bit gray, gray+alpha, RGB, RGBA; interlaced RGB.
    struct { const char *name; int ctype, depth, interlace; } v[] = {
        { "png gray 8-bit", PNG_COLOR_TYPE_GRAY, 8, 0 },
        { "png gray 16-bit", PNG_COLOR_TYPE_GRAY, 16, 0 },
        { "png gray+alpha 8-bit (alpha dropped)", PNG_COLOR_TYPE_GRAY_ALPHA, 8, 0 },
        { "png gray+alpha 16-bit (alpha dropped)", PNG_COLOR_TYPE_GRAY_ALPHA, 16, 0 },
        { "png rgb 8-bit", PNG_COLOR_TYPE_RGB, 8, 0 },
        { "png rgb 16-bit", PNG_COLOR_TYPE_RGB, 16, 0 },
        { "png rgba 8-bit (alpha dropped)", PNG_COLOR_TYPE_RGBA, 8, 0 },
        { "png rgba 16-bit (alpha dropped)", PNG_COLOR_TYPE_RGBA, 16, 0 },
        { "png rgb 8-bit interlaced (Adam7)", PNG_COLOR_TYPE_RGB, 8, 1 },
        { "png gray+alpha 16-bit interlaced (Adam7)", PNG_COLOR_TYPE_GRAY_ALPHA, 16, 1 },
    };
    for (size_t k = 0; k < sizeof v / sizeof v[0]; k++) {
        int ch = v[k].ctype == PNG_COLOR_TYPE_GRAY ? 1 : v[k].ctype == PNG_COLOR_TYPE_GRAY_ALPHA ? 2
               : v[k].ctype == PNG_COLOR_TYPE_RGB ? 3 : 4;
        int nb = v[k].depth / 8, ncolor = ch <= 2 ? 1 : 3;
        for (size_t i = 0; i < hw; i++)
            for (int s = 0; s < ch; s++) {
                unsigned val = (unsigned)((tu_uniform(r) * 0.5f + 0.5f) * (nb == 2 ? 65535 : 255));
                unsigned char *q = d + (i * ch + s) * nb;
                if (nb == 2) q[0] = (unsigned char)(val >> 8), q[1] = (unsigned char)val;
                else q[0] = (unsigned char)val;
                if (s < ncolor) {
                    float f = (float)val / (nb == 2 ? 65535.0f : 255.0f);
                    if (ncolor == 1) e[i] = e[hw + i] = e[2 * hw + i] = f;
                    else e[s * hw + i] = f;
                }
            }
        case_png_variant(v[k].name, H, W, v[k].depth, v[k].ctype, d, NULL, 0, NULL, 0, v[k].interlace, e);
    }
    // Palette: 8-bit with tRNS (alpha dropped), and 2-bit.
    png_color pal[256];
    unsigned char trns[256];
    for (int i = 0; i < 256; i++) {
        pal[i].red = (png_byte)(i * 7), pal[i].green = (png_byte)(255 - i), pal[i].blue = (png_byte)(i * 13 + 5);
        trns[i] = (unsigned char)(i * 3);
    }
    for (int bits = 2; bits <= 8; bits += 6) {
        memset(d, 0, sizeof d);
        int rowbytes = (W * bits + 7) / 8, maxv = (1 << bits) - 1;
        for (int y = 0; y < H; y++)
            for (int x = 0; x < W; x++) {
                int idx = (x * 5 + y * 11) & maxv;
                d[y * rowbytes + x * bits / 8] |= (unsigned char)(idx << (8 - bits - (x * bits) % 8));
                e[y * W + x] = pal[idx].red / 255.0f;
                e[hw + y * W + x] = pal[idx].green / 255.0f;
                e[2 * hw + y * W + x] = pal[idx].blue / 255.0f;
            }
        char name[96];
        snprintf(name, sizeof name, "png palette %d-bit%s", bits, bits == 8 ? " with tRNS (alpha dropped)" : "");
        case_png_variant(name, H, W, bits, PNG_COLOR_TYPE_PALETTE, d, pal, maxv + 1, bits == 8 ? trns : NULL,
                         bits == 8 ? 256 : 0, 0, e);
    }
}

static void case_gray_rgb(tu_rng *r)
{
    const char *name = "gray png -> 3 channels replicates; rgb png -> 1 channel is 601-2 luma";
    if (!tu_selected(name)) return;
    vc_image g = rand_image(r, 1, 9, 14), c = rand_image(r, 3, 9, 14), g3 = { 0 }, c1 = { 0 };
    vc_error err = { "" };
    int rc = image_save_png(tp("g.png"), &g, &err) || image_save_png(tp("c.png"), &c, &err) ||
             image_load(&g3, tp("g.png"), 3, &err) || image_load(&c1, tp("c.png"), 1, &err);
    if (rc) tu_report(name, 0, "%s", err.msg);
    else {
        double m = 0, ml = 0;
        size_t hw = 9 * 14;
        for (int k = 0; k < 3; k++)
            for (size_t i = 0; i < hw; i++) m = fmax(m, fabs(g3.data[k * hw + i] - g.data[i]));
        // Against the spec's formula in real numbers: within half a level.
        for (size_t i = 0; i < hw; i++) {
            double L = (c.data[i] * 255 * 299 + c.data[hw + i] * 255 * 587 + c.data[2 * hw + i] * 255 * 114) / 1000;
            ml = fmax(ml, fabs(c1.data[i] * 255 - L));
        }
        tu_report(name, m == 0 && ml <= 0.5 + 1e-4, "replicate diff %.3g, luma diff %.3g levels", m, ml);
    }
    image_free(&g);
    image_free(&c);
    image_free(&g3);
    image_free(&c1);
}

static void case_jpeg_gray(void)
{
    const char *name = "jpeg gray 37x21 q100: 1 channel close to source, 3 channels replicate";
    if (!tu_selected(name)) return;
    enum { H = 21, W = 37 };
    unsigned char px[H * W];
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) px[y * W + x] = (unsigned char)(40 + 4 * x + 3 * y);
    vc_image g = { 0 }, g3 = { 0 };
    vc_error err = { "" };
    if (write_jpeg(tp("gray.jpg"), px, H, W, 1, JCS_GRAYSCALE, 100, 0)) {
        tu_report(name, 0, "could not write the JPEG");
        return;
    }
    if (image_load(&g, tp("gray.jpg"), 1, &err) || image_load(&g3, tp("gray.jpg"), 3, &err))
        tu_report(name, 0, "%s", err.msg);
    else if (g.c != 1 || g.h != H || g.w != W || g3.c != 3) tu_report(name, 0, "shape %dx%dx%d", g.c, g.h, g.w);
    else {
        double m = 0, mr = 0;
        for (int i = 0; i < H * W; i++) {
            m = fmax(m, fabs(g.data[i] - px[i] / 255.0));
            for (int k = 0; k < 3; k++) mr = fmax(mr, fabs(g3.data[k * H * W + i] - g.data[i]));
        }
        tu_report(name, m <= 3.0 / 255 && mr == 0, "vs source %.3g levels, replicate diff %.3g", m * 255, mr);
    }
    image_free(&g);
    image_free(&g3);
}

static void cases_resize_self(tu_rng *r)
{
    // Constant images stay constant (weights are normalised) at any size.
    int sizes[][2] = { { 5, 7 }, { 17, 40 }, { 100, 3 }, { 1, 1 }, { 23, 17 }, { 64, 64 }, { 2, 300 } };
    vc_image k = { 3, 17, 23, malloc(sizeof(float) * 3 * 17 * 23) };
    for (int i = 0; i < 17 * 23; i++) k.data[i] = 0.37f, k.data[391 + i] = 1.0f, k.data[782 + i] = 0.0f;
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        char name[96];
        snprintf(name, sizeof name, "resize constant 23x17 -> %dx%d stays constant", sizes[s][1], sizes[s][0]);
        if (!tu_selected(name)) continue;
        vc_image o;
        if (image_resize(&o, &k, sizes[s][0], sizes[s][1])) {
            tu_report(name, 0, "image_resize failed");
            continue;
        }
        size_t hw = (size_t)o.h * o.w;
        float *want = tu_zeros(3 * hw);
        for (size_t i = 0; i < hw; i++) want[i] = 0.37f, want[hw + i] = 1.0f;
        double m = tu_rel_err(o.data, want, 3 * hw, 1.0);
        tu_report(name, o.c == 3 && o.h == sizes[s][0] && o.w == sizes[s][1] && m <= 1e-6, "max deviation %.3g", m);
        free(want);
        image_free(&o);
    }
    image_free(&k);

    const char *name = "resize to the same size is the identity";
    if (tu_selected(name)) {
        vc_image a = rand_image(r, 3, 13, 29), o;
        int rc = image_resize(&o, &a, 13, 29);
        tu_report(name, !rc && memcmp(o.data, a.data, sizeof(float) * 3 * 13 * 29) == 0, "differs");
        image_free(&a);
        image_free(&o);
    }
    name = "resize rejects sizes < 1 with VC_EINPUT";
    if (tu_selected(name)) {
        vc_image a = rand_image(r, 1, 4, 4), o;
        int rc1 = image_resize(&o, &a, 0, 4), rc2 = image_resize(&o, &a, 4, -1);
        tu_report(name, rc1 == VC_EINPUT && rc2 == VC_EINPUT && !o.data, "statuses %d %d", rc1, rc2);
        image_free(&a);
    }
    // A 1-pixel-wide line shrunk by 3: the triangle filter spreads it over the
    // PIL support (3 input pixels each side of the centre).
    name = "resize 9 -> 3 uses the antialiasing triangle of support 3";
    if (tu_selected(name)) {
        vc_image a = { 1, 1, 9, calloc(9, sizeof(float)) }, o;
        a.data[4] = 1;
        int rc = image_resize(&o, &a, 1, 3);
        // Output pixel 1 has centre 4.5 and reads inputs 2..7 with weights
        // 1-|i+0.5-4.5|/3 = 1/3, 2/3, 1, 2/3, 1/3, 0, normalised by their sum 3:
        // input 4 gets 1/3. Output 0 (centre 1.5) gives input 4 weight 1-3/3 = 0.
        tu_report(name, !rc && fabs(o.data[1] - 1.0 / 3) < 1e-6 && fabs(o.data[0]) < 1e-7 && fabs(o.data[2]) < 1e-7,
                  "got %g %g %g", rc ? 0 : o.data[0], rc ? 0 : o.data[1], rc ? 0 : o.data[2]);
        image_free(&a);
        image_free(&o);
    }
}

static void cases_preprocess_self(void)
{
    const char *name = "preprocess size mismatch -> VC_EINPUT naming path and sizes";
    if (tu_selected(name)) {
        vc_preprocess pp = { .channels = 3, .resize = 256, .crop = 224, .mean = { 0, 0, 0 }, .std = { 1, 1, 1 } };
        float *x = malloc(sizeof(float) * 3 * 200 * 200);
        vc_error err = { "" };
        const char *p = skp("astronaut.png");
        int rc = image_preprocess(x, p, &pp, 200, 200, &err);
        tu_report(name, rc == VC_EINPUT && strncmp(err.msg, p, strlen(p)) == 0 && strstr(err.msg, "224x224") &&
                            strstr(err.msg, "200x200"),
                  "status %d, msg \"%s\"", rc, err.msg);
        fprintf(stderr, "#   %s: %s\n", name, err.msg);
        free(x);
    }
    name = "preprocess of a bad file -> VC_EINPUT starting with the path";
    if (tu_selected(name)) {
        vc_preprocess pp = { .channels = 1, .mean = { 0 }, .std = { 1 } };
        float x[16];
        vc_error err = { "" };
        const char *p = tp("does-not-exist.png");
        int rc = image_preprocess(x, p, &pp, 4, 4, &err);
        tu_report(name, rc == VC_EINPUT && strncmp(err.msg, p, strlen(p)) == 0, "status %d, msg \"%s\"", rc, err.msg);
    }
    name = "preprocess: std 0 or channels 2 -> VC_EINPUT";
    if (tu_selected(name)) {
        vc_preprocess pp = { .channels = 3, .mean = { 0, 0, 0 }, .std = { 1, 0, 1 } };
        float x[48];
        vc_error err = { "" };
        int rc1 = image_preprocess(x, skp("astronaut.png"), &pp, 4, 4, &err);
        pp.channels = 2;
        pp.std[1] = 1;
        int rc2 = image_preprocess(x, skp("astronaut.png"), &pp, 4, 4, &err);
        tu_report(name, rc1 == VC_EINPUT && rc2 == VC_EINPUT, "statuses %d %d", rc1, rc2);
    }
}

static void cases_save_errors(void)
{
    const char *name = "save_png to a missing directory -> VC_EINPUT, no .tmp left";
    if (tu_selected(name)) {
        float v[4] = { 0 };
        vc_image img = { 1, 2, 2, v };
        vc_error err = { "" };
        const char *p = tp("no/such/dir/x.png");
        int rc = image_save_png(p, &img, &err);
        tu_report(name, rc == VC_EINPUT && strncmp(err.msg, p, strlen(p)) == 0, "status %d, msg \"%s\"", rc, err.msg);
    }
    name = "save_png of a 2-channel image -> VC_EINPUT";
    if (tu_selected(name)) {
        float v[8] = { 0 };
        vc_image img = { 2, 2, 2, v };
        vc_error err = { "" };
        int rc = image_save_png(tp("two.png"), &img, &err);
        struct stat st;
        tu_report(name, rc == VC_EINPUT && stat(tp("two.png"), &st) != 0, "status %d", rc);
    }
    name = "image_free on a zeroed image, twice";
    if (tu_selected(name)) {
        vc_image img = { 0 };
        image_free(&img);
        image_free(&img);
        image_free(NULL);
        tu_report(name, 1, "");
    }
}

static void cases_bad(void)
{
    // Files made here.
    char text[700], empty[700];                       // tp() buffers rotate; keep copies
    snprintf(text, sizeof text, "%s", tp("notes.png"));   // a text file with an image's extension
    write_bytes(text, "hello, this is not an image\n", 28);
    snprintf(empty, sizeof empty, "%s", tp("empty.jpg"));
    write_bytes(empty, "", 0);
    size_t n;
    unsigned char *b = read_bytes(skp("astronaut.png"), &n);
    if (b) {
        write_bytes(tp("trunc.png"), b, n / 2);
        write_bytes(tp("sig-only.png"), b, 8);
        write_bytes(tp("header-only.png"), b, 33);    // signature + IHDR, no IDAT
        b[n / 3] ^= 0x55;                              // inside IDAT: CRC mismatch
        write_bytes(tp("crc.png"), b, n);
        free(b);
    }
    b = read_bytes(tp("rgb.jpg"), &n);
    if (b) {
        write_bytes(tp("trunc.jpg"), b, n * 6 / 10);
        write_bytes(tp("magic-only.jpg"), b, 3);
        write_bytes(tp("header.jpg"), b, 200);         // cut inside the headers
        for (size_t i = n / 2; i < n - 2; i++) b[i] = (unsigned char)(i * 37);   // garbage entropy data
        write_bytes(tp("garbage.jpg"), b, n);
        free(b);
    }
    b = read_bytes(tp("progressive.jpg"), &n);
    if (b) {
        write_bytes(tp("trunc-progressive.jpg"), b, n * 8 / 10);
        free(b);
    }
    write_png_header_only(tp("huge.png"), 40000, 1);
    write_png_header_only(tp("zero.png"), 0, 10);
    unsigned char *wide = calloc((size_t)40000 * 8, 1);
    write_jpeg(tp("huge.jpg"), wide, 8, 40000, 1, JCS_GRAYSCALE, 50, 0);
    free(wide);
    mkdir(tp("a-directory.png"), 0700);

    case_bad("bad: text file named .png", text, 3);
    case_bad("bad: zero-byte file", empty, 3);
    case_bad("bad: missing file", tp("missing.png"), 3);
    case_bad("bad: a directory", tp("a-directory.png"), 3);
    case_bad("bad: truncated PNG (half of astronaut.png)", tp("trunc.png"), 3);
    case_bad("bad: PNG signature only", tp("sig-only.png"), 3);
    case_bad("bad: PNG header without image data", tp("header-only.png"), 3);
    case_bad("bad: PNG with a corrupt IDAT (CRC)", tp("crc.png"), 3);
    case_bad("bad: PNG 40000x1 (absurd size)", tp("huge.png"), 3);
    case_bad("bad: PNG 0x10 (zero size)", tp("zero.png"), 3);
    case_bad("bad: truncated JPEG (60%)", tp("trunc.jpg"), 3);
    case_bad("bad: truncated JPEG as gray", tp("trunc.jpg"), 1);
    case_bad("bad: truncated progressive JPEG (80%)", tp("trunc-progressive.jpg"), 3);
    case_bad("bad: JPEG magic only", tp("magic-only.jpg"), 3);
    case_bad("bad: JPEG cut inside its headers", tp("header.jpg"), 3);
    case_bad("bad: JPEG with garbage entropy data", tp("garbage.jpg"), 3);
    case_bad("bad: JPEG 40000x8 (absurd size)", tp("huge.jpg"), 1);
    case_bad("bad: skimage truncated.jpg", skp("truncated.jpg"), 3);
    case_bad("bad: channels=2 requested", skp("astronaut.png"), 2);
}

int main(int argc, char **argv)
{
    tu_init(argc, argv);
    if (tu_scratch_dir(g_dir, sizeof g_dir, "image")) return tu_finish();
    tu_rng rng = { 0x1234567887654321ULL };
    struct stat st;
    if (stat(skp("astronaut.png"), &st) != 0)
        tu_report("skimage photographs present", 0, "%s missing (install python3-skimage)", skp("astronaut.png"));

    // Inputs the oracle needs: an RGB JPEG, an Adobe CMYK JPEG, a random-noise PNG.
    {
        enum { H = 48, W = 64 };
        unsigned char rgb[H * W * 3], cmyk[H * W * 4];
        for (int y = 0; y < H; y++)
            for (int x = 0; x < W; x++) {
                unsigned char *p = rgb + (y * W + x) * 3, *q = cmyk + (y * W + x) * 4;
                p[0] = (unsigned char)(4 * x), p[1] = (unsigned char)(5 * y), p[2] = (unsigned char)((x * y) & 255);
                q[0] = (unsigned char)(4 * x), q[1] = (unsigned char)(5 * y), q[2] = (unsigned char)(255 - 3 * x);
                q[3] = (unsigned char)(128 + 2 * y);
            }
        write_jpeg(tp("rgb.jpg"), rgb, H, W, 3, JCS_RGB, 90, 0);
        write_jpeg(tp("progressive.jpg"), rgb, H, W, 3, JCS_RGB, 75, 1);
        write_jpeg(tp("cmyk.jpg"), cmyk, H, W, 4, JCS_CMYK, 90, 0);
        vc_image noise = rand_image(&rng, 3, 128, 96);
        vc_error err;
        if (image_save_png(tp("noise.png"), &noise, &err)) fprintf(stderr, "# %s\n", err.msg);
        image_free(&noise);
    }
    // Paths are strdup'ed: tp() and skp() hand out rotating buffers.
    struct { const char *label; char *path; int channels; } dec[] = {
        { "astronaut.png rgb", strdup(skp("astronaut.png")), 3 },
        { "astronaut.png gray (convert L)", strdup(skp("astronaut.png")), 1 },
        { "camera.png (gray) as rgb", strdup(skp("camera.png")), 3 },
        { "random-noise png gray (convert L)", strdup(tp("noise.png")), 1 },
        { "palette_color.png rgb", strdup(skp("palette_color.png")), 3 },
        { "green_palette.png gray", strdup(skp("green_palette.png")), 1 },
        { "foo3x5x4indexed.png (palette + tRNS) rgb", strdup(skp("foo3x5x4indexed.png")), 3 },
        { "logo.png (RGBA) rgb", strdup(skp("logo.png")), 3 },
        { "logo.png (RGBA) gray", strdup(skp("logo.png")), 1 },
        { "rocket.jpg rgb", strdup(skp("rocket.jpg")), 3 },
        { "rocket.jpg gray (convert L)", strdup(skp("rocket.jpg")), 1 },
        { "test-written rgb.jpg rgb", strdup(tp("rgb.jpg")), 3 },
        { "test-written progressive jpeg rgb", strdup(tp("progressive.jpg")), 3 },
        { "test-written Adobe CMYK jpeg rgb", strdup(tp("cmyk.jpg")), 3 },
        { "test-written Adobe CMYK jpeg gray", strdup(tp("cmyk.jpg")), 1 },
    };
    enum { NDEC = sizeof dec / sizeof dec[0] };
    char dec_out[NDEC][700], dec_name[NDEC][160];
    for (int i = 0; i < NDEC; i++) {
        snprintf(dec_out[i], sizeof dec_out[i], "%s/dec%d.bin", g_dir, i);
        snprintf(dec_name[i], sizeof dec_name[i], "decode vs PIL: %s", dec[i].label);
        if (tu_selected(dec_name[i])) job("%s:%s:%s", dec[i].channels == 3 ? "rgb" : "l", dec[i].path, dec_out[i]);
    }
    struct { const char *file; int h, w; } rs[] = {
        { "astronaut.png", 189, 301 }, { "astronaut.png", 224, 224 }, { "astronaut.png", 700, 613 },
        { "chelsea.png", 113, 170 }, { "chelsea.png", 640, 97 }, { "coffee.png", 37, 1000 },
    };
    enum { NRS = sizeof rs / sizeof rs[0] };
    char rs_out[NRS][700], rs_name[NRS][160];
    for (int i = 0; i < NRS; i++) {
        snprintf(rs_out[i], sizeof rs_out[i], "%s/resize%d.bin", g_dir, i);
        snprintf(rs_name[i], sizeof rs_name[i], "resize vs PIL BILINEAR: %s -> %dx%d (WxH), 2/255", rs[i].file,
                 rs[i].w, rs[i].h);
        if (tu_selected(rs_name[i])) job("resize:%s:%d:%d:%s", skp(rs[i].file), rs[i].h, rs[i].w, rs_out[i]);
    }
    // resize 0 with crop 0 means "straight to out_h x out_w" (the oracle's HxW Resize).
    struct { const char *file; int ch, resize, crop, oh, ow; } pre[] = {
        { "astronaut.png", 3, 256, 224, 224, 224 },   // the ImageNet recipe
        { "astronaut.png", 1, 256, 224, 224, 224 },
        { "chelsea.png", 3, 256, 224, 224, 224 },     // 451x300: long side int(256*451/300) = 384
        { "coffee.png", 3, 256, 351, 351, 351 },      // 600x400 -> 384x256: pad rows by 47, cols 16.5 -> 16
        { "coffee.png", 3, 255, 223, 223, 223 },      // 600x400 -> 382x255 (382.5 truncated), left 79.5 -> 80
        { "chelsea.png", 3, 100, 0, 100, 150 },       // resize only
        { "chelsea.png", 3, 0, 0, 200, 300 },         // neither: straight to 200x300
        { "chelsea.png", 3, 0, 120, 120, 120 },       // crop only
    };
    enum { NPRE = sizeof pre / sizeof pre[0] };
    char pre_out[NPRE][700], pre_name[NPRE][200];
    for (int i = 0; i < NPRE; i++) {
        snprintf(pre_out[i], sizeof pre_out[i], "%s/pre%d.bin", g_dir, i);
        snprintf(pre_name[i], sizeof pre_name[i], "preprocess vs torchvision: %s c=%d resize=%d crop=%d -> %dx%d, 0.03",
                 pre[i].file, pre[i].ch, pre[i].resize, pre[i].crop, pre[i].ow, pre[i].oh);
        if (!tu_selected(pre_name[i])) continue;
        char rz[32];
        if (pre[i].resize == 0 && pre[i].crop == 0) snprintf(rz, sizeof rz, "%dx%d", pre[i].oh, pre[i].ow);
        else snprintf(rz, sizeof rz, "%d", pre[i].resize);
        job("tv:%s:%s:%d:%d:%s", skp(pre[i].file), rz, pre[i].crop, pre[i].ch, pre_out[i]);
    }
    if (g_njobs) oracle_start();   // only what the filter selected: torch alone takes seconds to import

    // Self-contained cases run while the oracle works.
    case_roundtrip(&rng, 3, 23, 37);
    case_roundtrip(&rng, 1, 64, 3);
    case_roundtrip(&rng, 1, 1, 1);
    cases_png_variants(&rng);
    case_gray_rgb(&rng);
    case_jpeg_gray();
    cases_resize_self(&rng);
    cases_preprocess_self();
    cases_save_errors();
    cases_bad();

    for (int i = 0; i < NDEC; i++) case_vs_oracle_decode(dec_name[i], dec[i].path, dec[i].channels, dec_out[i]);
    for (int i = 0; i < NRS; i++) case_resize_vs_pil(rs_name[i], skp(rs[i].file), rs[i].h, rs[i].w, rs_out[i]);
    for (int i = 0; i < NPRE; i++)
        case_preprocess_vs_tv(pre_name[i], skp(pre[i].file), pre[i].ch, pre[i].resize, pre[i].crop, pre[i].oh,
                              pre[i].ow, pre_out[i]);
    oracle_wait();
    for (int i = 0; i < NDEC; i++) free(dec[i].path);
    tu_rm_dir(g_dir);
    return tu_finish();
}
