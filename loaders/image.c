// image.c: PNG/JPEG decoding into float (C,H,W), PIL-compatible bilinear
// resize, torchvision-compatible preprocessing, and an 8-bit PNG writer.
//
// Parity targets (tests/test_image.c measures them):
//   decoding       = PIL.Image.open(p).convert("RGB" | "L") / 255, exactly, for
//                    8-bit PNG and for JPEG (same libjpeg-turbo, same defaults:
//                    islow DCT, fancy upsampling);
//   image_resize   = PIL Image.resize(BILINEAR) up to PIL's 8-bit rounding;
//   preprocess     = torchvision Resize(int) -> CenterCrop -> ToTensor -> Normalize.
//
// libpng and libjpeg report errors by longjmp into the decoder that called
// them; everything they allocate is released there. Buffers this file
// allocates between setjmp and a possible longjmp are held in volatile
// pointers so the error path can free them.
#include "image.h"

#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdio.h>                                    // before jpeglib.h, which uses FILE
#include <stdlib.h>
#include <string.h>

#include <jpeglib.h>
#include <jerror.h>                                   // JWRN_* / JERR_* codes, ERREXIT
#include <png.h>
#include "fileio.h"
#include "atomic_write.h"
#include "resample.h"

// ---- reading the file ----------------------------------------------------------

// Whole file into *buf (malloc'ed, *n bytes). Reads in chunks so that pipes
// work and directories fail with a clear errno.
static int read_all(unsigned char **buf, size_t *n, const char *path, vc_error *err)
{
    *buf = NULL;
    *n = 0;
    size_t fsize;
    FILE *f = vc_fopen_regular(path, &fsize, err);
    if (!f) return VC_EINPUT;
    size_t cap = 1 << 16, len = 0;
    unsigned char *b = malloc(cap);
    if (!b) {
        fclose(f);
        return vc_fail(err, VC_EINTERNAL, "%s: out of memory reading the file", path);
    }
    for (;;) {
        if (len == cap) {
            unsigned char *nb = cap <= SIZE_MAX / 2 ? realloc(b, cap * 2) : NULL;
            if (!nb) {
                free(b);
                fclose(f);
                return vc_fail(err, VC_EINTERNAL, "%s: out of memory reading the file", path);
            }
            b = nb;
            cap *= 2;
        }
        size_t r = fread(b + len, 1, cap - len, f);
        len += r;
        if (r == 0) break;
    }
    if (ferror(f)) {
        int e = errno;
        free(b);
        fclose(f);
        return vc_fail(err, VC_EINPUT, "%s: cannot read: %s", path, strerror(e));
    }
    fclose(f);
    *buf = b;
    *n = len;
    return VC_OK;
}

// ---- pixel conversion ------------------------------------------------------------

// PIL's convert("L") for 8-bit RGB (Convert.c, L24): ITU-R 601-2 luma,
// R*299/1000 + G*587/1000 + B*114/1000 in 16.16 fixed point, rounded.
static inline int luma8(int r, int g, int b)
{
    return (r * 19595 + g * 38470 + b * 7471 + 0x8000) >> 16;
}

// p: one row of w pixels, `stride` interleaved samples each, of `depth` bits
// (8, or 16 big-endian); the first ncolor (1 gray, 3 RGB) samples of a pixel
// are colour, the rest (alpha, ...) are ignored. d: (channels, w) planar.
static void row_to_planar(float *d, const unsigned char *p, int w, int stride, int ncolor, int depth, int channels)
{
    size_t bytes = (size_t)stride * (depth / 8);
    for (int i = 0; i < w; i++, p += bytes) {
        if (depth == 8) {
            if (ncolor == 1) {
                float v = p[0] / 255.0f;
                for (int c = 0; c < channels; c++) d[(size_t)c * w + i] = v;
            } else if (channels == 3) {
                d[i] = p[0] / 255.0f;
                d[w + i] = p[1] / 255.0f;
                d[2 * (size_t)w + i] = p[2] / 255.0f;
            } else {
                d[i] = luma8(p[0], p[1], p[2]) / 255.0f;
            }
        } else {
            float s[3];
            for (int k = 0; k < ncolor; k++) s[k] = ((p[2 * k] << 8) | p[2 * k + 1]) / 65535.0f;
            if (ncolor == 1) {
                for (int c = 0; c < channels; c++) d[(size_t)c * w + i] = s[0];
            } else if (channels == 3) {
                for (int c = 0; c < 3; c++) d[(size_t)c * w + i] = s[c];
            } else {
                d[i] = (s[0] * 299 + s[1] * 587 + s[2] * 114) / 1000.0f;
            }
        }
    }
}

// What a decoder makes of the rows it reads: `channels` planes, resized to
// the size size() picks from the header's (NULL: the image's own size).
// Rows go through a row_resizer as they are decoded, so memory is one row of
// the file plus the result.
typedef struct {
    int channels;
    int (*size)(void *ctx, const char *path, int H, int W, int *h, int *w, vc_error *err);
    void *ctx;
} decode_want;

// The decoder's sink for an H x W image: r set up for the wanted size, row
// a (channels, W) buffer. Errors name path.
// (*r is on the heap, not the decoder's stack: it changes between the
// decoder's setjmp and a longjmp, and its error path frees what it holds.)
static int sink_start(row_resizer **r, float **row, const decode_want *want, const char *path, int H, int W,
                      vc_error *err)
{
    int h = H, w = W;
    *r = NULL;
    *row = NULL;
    if (want->size) {
        int rc = want->size(want->ctx, path, H, W, &h, &w, err);
        if (rc) return rc;
    }
    row_resizer *rs = calloc(1, sizeof *rs);
    if (!rs || row_resizer_init(rs, want->channels, H, W, h, w) ||
        !(*row = malloc(sizeof(float) * want->channels * (size_t)W))) {
        if (rs) row_resizer_free(rs);
        free(rs);
        return vc_fail(err, VC_EINTERNAL, "%s: out of memory for a %dx%d image resized to %dx%d", path, W, H, w, h);
    }
    *r = rs;
    return VC_OK;
}

static void sink_free(row_resizer *r)
{
    if (r) row_resizer_free(r);
    free(r);
}

static int sink_finish(vc_image *img, row_resizer *r, const char *path, vc_error *err)
{
    int C = r->C, h = r->h, w = r->w;
    float *out = row_resizer_finish(r);
    free(r);
    if (!out) return vc_fail(err, VC_EINPUT, "%s: the image ended before its last row", path);
    *img = (vc_image){ C, h, w, out };
    return VC_OK;
}

static long long max_pixels = IMAGE_DEFAULT_MAX_PIXELS;

void image_set_max_pixels(long long n) { max_pixels = n > 0 ? n : IMAGE_DEFAULT_MAX_PIXELS; }

// Called with the header's size before anything is decoded or allocated:
// a small file can declare a huge image (a PNG of zero rows compresses ~1000:1).
static int check_size(const char *path, const char *fmt, long long h, long long w, vc_error *err)
{
    if (h < 1 || w < 1 || h > IMAGE_MAX_SIDE || w > IMAGE_MAX_SIDE)
        return vc_fail(err, VC_EINPUT, "%s: %s image size %lldx%lld (WxH) is out of range (1..%d per side)",
                       path, fmt, w, h, IMAGE_MAX_SIDE);
    if (w * h > max_pixels)
        return vc_fail(err, VC_EINPUT, "%s: %lldx%lld %s image has %lld pixels, more than the budget of %lld "
                       "(--max-pixels N raises it)", path, w, h, fmt, w * h, max_pixels);
    return VC_OK;
}

// ---- PNG -----------------------------------------------------------------------------

typedef struct {
    const unsigned char *p;
    size_t n, pos;
    volatile int oom;                                 // the failure was ours: out of memory
    char msg[256];
} png_src;

static void png_on_error(png_structp png, png_const_charp msg)
{
    png_src *s = png_get_error_ptr(png);
    snprintf(s->msg, sizeof s->msg, "%s", msg);
    png_longjmp(png, 1);
}

// Warnings are ignored (PIL ignores them too: bad sRGB profiles and the like),
// except a compressed stream that ends before the image does: libpng 1.6 treats
// that as a benign error and fills the rest with zeros.
static void png_on_warning(png_structp png, png_const_charp msg)
{
    if (strstr(msg, "Not enough image data")) png_error(png, msg);
}

static void png_ignore_warning(png_structp png, png_const_charp msg)
{
    (void)png;
    (void)msg;
}

static void png_read_mem(png_structp png, png_bytep out, size_t len)
{
    png_src *s = png_get_io_ptr(png);
    if (len > s->n - s->pos) png_error(png, "unexpected end of file (truncated)");
    memcpy(out, s->p + s->pos, len);
    s->pos += len;
}

static int decode_png(vc_image *img, const unsigned char *data, size_t n, const char *path,
                      const decode_want *want, vc_error *err)
{
    // IHDR must come first (PNG spec 5.6); checking its size here gives a clear
    // message before libpng, which reads past IHDR before we could look.
    if (n >= 24 && memcmp(data + 12, "IHDR", 4) == 0) {
        unsigned long long w = 0, h = 0;
        for (int i = 0; i < 4; i++) w = w << 8 | data[16 + i], h = h << 8 | data[20 + i];
        int rc = check_size(path, "PNG", (long long)h, (long long)w, err);
        if (rc) return rc;
    }
    png_src src = { data, n, 0, 0, "" };
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &src, png_on_error, png_on_warning);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!info) {
        png_destroy_read_struct(&png, NULL, NULL);
        return vc_fail(err, VC_EINTERNAL, "%s: out of memory starting libpng", path);
    }
    unsigned char *volatile px = NULL;
    png_bytep *volatile rows = NULL;
    float *volatile frow = NULL;
    row_resizer *volatile rs = NULL;
    if (setjmp(png_jmpbuf(png))) {
        free(px);
        free(rows);
        free(frow);
        sink_free(rs);
        png_destroy_read_struct(&png, &info, NULL);
        if (src.oom) return vc_fail(err, VC_EINTERNAL, "%s: out of memory for a PNG image", path);
        return vc_fail(err, VC_EINPUT, "%s: corrupt or truncated PNG: %s", path, src.msg);
    }
    png_set_read_fn(png, &src, png_read_mem);
    png_set_user_limits(png, IMAGE_MAX_SIDE, IMAGE_MAX_SIDE);
    png_read_info(png, info);
    png_uint_32 w32, h32;
    int depth, ctype, interlace;
    png_get_IHDR(png, info, &w32, &h32, &depth, &ctype, &interlace, NULL, NULL);
    int rc = check_size(path, "PNG", h32, w32, err);
    if (rc) {
        png_destroy_read_struct(&png, &info, NULL);
        return rc;
    }
    int h = (int)h32, w = (int)w32;
    if (ctype == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);   // (+ alpha if tRNS)
    if (ctype == PNG_COLOR_TYPE_GRAY && depth < 8) png_set_expand_gray_1_2_4_to_8(png);
    int passes = png_set_interlace_handling(png);
    png_read_update_info(png, info);
    int comp = png_get_channels(png, info);           // 1 G, 2 GA, 3 RGB, 4 RGBA
    depth = png_get_bit_depth(png, info);             // 8 or 16 now
    size_t rowbytes = png_get_rowbytes(png, info);
    if ((depth != 8 && depth != 16) || comp < 1 || comp > 4 || rowbytes != (size_t)w * comp * (depth / 8))
        png_error(png, "unsupported pixel layout");
    float *fr;
    row_resizer *r;
    rc = sink_start(&r, &fr, want, path, h, w, err);
    if (rc) {
        png_destroy_read_struct(&png, &info, NULL);
        return rc;
    }
    frow = fr;
    rs = r;
    // An interlaced image needs all its rows before any is complete; the
    // others are read one row at a time.
    px = malloc(rowbytes * (passes > 1 ? (size_t)h : 1));
    rows = passes > 1 ? malloc(sizeof(png_bytep) * h) : NULL;
    if (!px || (passes > 1 && !rows)) {
        src.oom = 1;
        png_error(png, "out of memory");
    }
    if (passes > 1) {
        for (int y = 0; y < h; y++) rows[y] = px + rowbytes * y;
        png_read_image(png, rows);
    }
    for (int y = 0; y < h; y++) {
        const unsigned char *p = px;
        if (passes > 1) p += rowbytes * y;
        else png_read_row(png, px, NULL);
        row_to_planar(frow, p, w, comp, comp <= 2 ? 1 : 3, depth, want->channels);
        row_resizer_push(rs, frow);
    }
    png_read_end(png, NULL);
    png_destroy_read_struct(&png, &info, NULL);
    free(rows);
    free(px);
    free(frow);
    return sink_finish(img, rs, path, err);
}

// ---- JPEG ------------------------------------------------------------------------------

typedef struct {
    struct jpeg_error_mgr pub;
    jmp_buf jb;
    volatile int oom;                                 // the failure was ours: out of memory
    char msg[JMSG_LENGTH_MAX];
} jpeg_err;

static void jpeg_on_error(j_common_ptr ci)
{
    jpeg_err *e = (jpeg_err *)ci->err;
    ci->err->format_message(ci, e->msg);
    longjmp(e->jb, 1);
}

// Warnings (level -1) that mean the image data is cut or damaged are fatal —
// libjpeg would otherwise pad with grey, and PIL refuses truncated files too.
// Other warnings (extraneous bytes before a marker, ...) are ignored, as by PIL.
static void jpeg_on_message(j_common_ptr ci, int level)
{
    if (level >= 0) return;
    int code = ci->err->msg_code;
    if (code == JWRN_JPEG_EOF || code == JWRN_HIT_MARKER || code == JWRN_MUST_RESYNC) jpeg_on_error(ci);
    ci->err->num_warnings++;
}

static void jpeg_on_output(j_common_ptr ci) { (void)ci; }

// CMYK samples from libjpeg are in Adobe polarity (inverted), which PIL always
// assumes ("CMYK;I"); then PIL's cmyk2rgb: R = (255-K) - round(C*(255-K)/255).
static void cmyk_to_rgb(unsigned char *px, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const unsigned char *q = px + 4 * i;
        int nk = q[3];                                // 255 - K, K = 255 - raw
        unsigned char rgb[3];
        for (int c = 0; c < 3; c++) {
            int t = (255 - q[c]) * nk + 128;
            int v = nk - (((t >> 8) + t) >> 8);
            rgb[c] = (unsigned char)(v < 0 ? 0 : v);
        }
        memcpy(px + 3 * i, rgb, 3);                   // in place: 3*i <= 4*i
    }
}

static int decode_jpeg(vc_image *img, const unsigned char *data, size_t n, const char *path,
                       const decode_want *want, vc_error *err)
{
    struct jpeg_decompress_struct ci;
    jpeg_err je;
    memset(&ci, 0, sizeof ci);
    je.msg[0] = 0;
    je.oom = 0;
    ci.err = jpeg_std_error(&je.pub);
    je.pub.error_exit = jpeg_on_error;
    je.pub.emit_message = jpeg_on_message;
    je.pub.output_message = jpeg_on_output;
    unsigned char *volatile px = NULL;
    float *volatile frow = NULL;
    row_resizer *volatile rs = NULL;
    if (setjmp(je.jb)) {
        jpeg_destroy_decompress(&ci);
        free(px);
        free(frow);
        sink_free(rs);
        if (je.oom) return vc_fail(err, VC_EINTERNAL, "%s: out of memory for a JPEG image", path);
        return vc_fail(err, VC_EINPUT, "%s: corrupt or truncated JPEG: %s", path, je.msg);
    }
    jpeg_create_decompress(&ci);
    jpeg_mem_src(&ci, data, (unsigned long)n);
    jpeg_read_header(&ci, TRUE);
    int rc = check_size(path, "JPEG", ci.image_height, ci.image_width, err);
    if (rc) {
        jpeg_destroy_decompress(&ci);
        return rc;
    }
    switch (ci.jpeg_color_space) {
    case JCS_GRAYSCALE: ci.out_color_space = JCS_GRAYSCALE; break;
    case JCS_CMYK:
    case JCS_YCCK: ci.out_color_space = JCS_CMYK; break;
    default: ci.out_color_space = JCS_RGB; break;
    }
    jpeg_start_decompress(&ci);
    int h = (int)ci.output_height, w = (int)ci.output_width, comp = ci.output_components;
    float *fr;
    row_resizer *r;
    rc = sink_start(&r, &fr, want, path, h, w, err);
    if (rc) {
        jpeg_destroy_decompress(&ci);
        return rc;
    }
    frow = fr;
    rs = r;
    px = malloc((size_t)w * comp);
    if (!px) {
        je.oom = 1;
        ERREXIT(&ci, JERR_OUT_OF_MEMORY);
    }
    while (ci.output_scanline < ci.output_height) {
        JSAMPROW row = px;
        if (jpeg_read_scanlines(&ci, &row, 1) != 1) ERREXIT(&ci, JERR_INPUT_EOF);
        if (comp == 4) cmyk_to_rgb(px, (size_t)w);
        row_to_planar(frow, px, w, comp == 4 ? 3 : comp, comp == 1 ? 1 : 3, 8, want->channels);
        row_resizer_push(rs, frow);
    }
    jpeg_finish_decompress(&ci);
    jpeg_destroy_decompress(&ci);
    free(px);
    free(frow);
    return sink_finish(img, rs, path, err);
}

// ---- loading -------------------------------------------------------------------------

static int load_as(vc_image *img, const char *path, const decode_want *want, vc_error *err)
{
    memset(img, 0, sizeof *img);
    int channels = want->channels;
    if (channels != 1 && channels != 3)
        return vc_fail(err, VC_EINPUT, "%s: channels must be 1 or 3, not %d", path, channels);
    unsigned char *data;
    size_t n;
    int rc = read_all(&data, &n, path, err);
    if (rc) return rc;
    static const unsigned char png_magic[8] = { 0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n' };
    if (n == 0)
        rc = vc_fail(err, VC_EINPUT, "%s: empty file, not a PNG or JPEG image", path);
    else if (n >= 8 && memcmp(data, png_magic, 8) == 0)
        rc = decode_png(img, data, n, path, want, err);
    else if (n >= 3 && data[0] == 0xff && data[1] == 0xd8 && data[2] == 0xff)
        rc = decode_jpeg(img, data, n, path, want, err);
    else
        rc = vc_fail(err, VC_EINPUT, "%s: not a PNG or JPEG image", path);
    free(data);
    if (rc) image_free(img);
    return rc;
}

int image_load(vc_image *img, const char *path, int channels, vc_error *err)
{
    decode_want want = { channels, NULL, NULL };
    return load_as(img, path, &want, err);
}

void image_free(vc_image *img)
{
    if (!img) return;
    free(img->data);
    memset(img, 0, sizeof *img);
}

// ---- resize -------------------------------------------------------------------------

// Through the streaming resizer (resample.h), a row at a time, as the
// decoders use it: one code path for every resize.
int image_resize(vc_image *dst, const vc_image *src, int h, int w)
{
    memset(dst, 0, sizeof *dst);
    if (h < 1 || w < 1 || !src->data || src->c < 1 || src->h < 1 || src->w < 1) return VC_EINPUT;
    int C = src->c, H = src->h, W = src->w;
    row_resizer r;
    int rc = row_resizer_init(&r, C, H, W, h, w);
    float *row = rc ? NULL : malloc(sizeof(float) * C * (size_t)W);
    if (rc || !row) {
        row_resizer_free(&r);
        return rc ? rc : VC_EINTERNAL;
    }
    for (int y = 0; y < H; y++) {
        for (int c = 0; c < C; c++) memcpy(row + (size_t)c * W, src->data + ((size_t)c * H + y) * W, sizeof(float) * W);
        row_resizer_push(&r, row);
    }
    free(row);
    *dst = (vc_image){ C, h, w, row_resizer_finish(&r) };
    return VC_OK;
}

// ---- preprocessing -------------------------------------------------------------------------

// torchvision CenterCrop offset along a side of n pixels: int(round((n - crop)
// / 2.0)) with Python's round-half-to-even; when crop > n the side is first
// zero-padded by (crop - n) // 2 before, so the offset is negative.
static int crop_offset(int n, int crop)
{
    if (crop > n) return -((crop - n) / 2);
    int d = n - crop, half = d / 2;
    if (d % 2 && half % 2) half++;                    // x.5 rounds to the even neighbour
    return half;
}

typedef struct {
    const vc_preprocess *pp;
    int out_h, out_w;
} preprocess_ctx;

// The size an H x W image is resized to before the crop: the shorter side
// to pp->resize (torchvision Resize(int)); with neither resize nor crop,
// the model's input size; else unchanged.
static int pp_size(void *ctx, const char *path, int H, int W, int *h, int *w, vc_error *err)
{
    const preprocess_ctx *c = ctx;
    const vc_preprocess *pp = c->pp;
    *h = H;
    *w = W;
    if (pp->resize > 0) {
        int shrt = H < W ? H : W, lng = H < W ? W : H;
        double nl = (double)((long long)pp->resize * lng) / shrt;    // Python: int(size * long / short)
        if (nl > IMAGE_MAX_SIDE || pp->resize > IMAGE_MAX_SIDE)
            return vc_fail(err, VC_EINPUT, "%s: resizing %dx%d to a shorter side of %d gives more than %d per side",
                           path, W, H, pp->resize, IMAGE_MAX_SIDE);
        if (W <= H) *w = pp->resize, *h = (int)nl;
        else *h = pp->resize, *w = (int)nl;
    } else if (pp->crop <= 0) {
        *h = c->out_h, *w = c->out_w;
    }
    return VC_OK;
}

int image_preprocess(float *out, const char *path, const vc_preprocess *pp, int out_h, int out_w,
                     vc_error *err)
{
    if (pp->channels != 1 && pp->channels != 3)
        return vc_fail(err, VC_EINPUT, "%s: preprocessing wants 1 or 3 channels, not %d", path, pp->channels);
    if (out_h < 1 || out_w < 1)
        return vc_fail(err, VC_EINPUT, "%s: bad model input size %dx%d", path, out_w, out_h);
    for (int c = 0; c < pp->channels; c++)
        if (!(pp->std[c] != 0.0f) || !isfinite(pp->std[c]) || !isfinite(pp->mean[c]))
            return vc_fail(err, VC_EINPUT, "%s: preprocessing mean/std[%d] = %g/%g is unusable", path, c,
                           pp->mean[c], pp->std[c]);
    // decoded row by row straight into the resized size (pp_size)
    preprocess_ctx ctx = { pp, out_h, out_w };
    decode_want want = { pp->channels, pp_size, &ctx };
    vc_image img;
    int rc = load_as(&img, path, &want, err);
    if (rc) return rc;
    int ch = img.h, cw = img.w, top = 0, left = 0;
    if (pp->crop > 0) {
        ch = cw = pp->crop;
        top = crop_offset(img.h, pp->crop);
        left = crop_offset(img.w, pp->crop);
    }
    if (ch != out_h || cw != out_w) {
        rc = vc_fail(err, VC_EINPUT, "%s: preprocessed image is %dx%d but the model input is %dx%d (WxH)",
                     path, cw, ch, out_w, out_h);
        image_free(&img);
        return rc;
    }
    for (int c = 0; c < img.c; c++) {
        const float *s = img.data + (size_t)c * img.h * img.w;
        float m = pp->mean[c], sd = pp->std[c];
        for (int y = 0; y < out_h; y++) {
            int sy = top + y;
            float *o = out + ((size_t)c * out_h + y) * out_w;
            for (int x = 0; x < out_w; x++) {
                int sx = left + x;
                float v = (sy >= 0 && sy < img.h && sx >= 0 && sx < img.w) ? s[(size_t)sy * img.w + sx] : 0.0f;
                o[x] = (v - m) / sd;
            }
        }
    }
    image_free(&img);
    return VC_OK;
}

// ---- writing PNG ---------------------------------------------------------------------------

int image_save_png(const char *path, const vc_image *img, vc_error *err)
{
    if (!img || !img->data || (img->c != 1 && img->c != 3) || img->h < 1 || img->w < 1 ||
        img->h > IMAGE_MAX_SIDE || img->w > IMAGE_MAX_SIDE)
        return vc_fail(err, VC_EINPUT, "%s: cannot save a %dx%dx%d (CxHxW) image as PNG (need 1 or 3 channels)",
                       path, img ? img->c : 0, img ? img->h : 0, img ? img->w : 0);
    int C = img->c, H = img->h, W = img->w;
    unsigned char *row = malloc((size_t)W * C);
    if (!row) return vc_fail(err, VC_EINTERNAL, "%s: out of memory", path);
    vc_wfile wf;
    if (vc_wopen(&wf, path, err)) { free(row); return VC_EINPUT; }
    FILE *f = wf.fp;
    png_src ctx = { NULL, 0, 0, 0, "out of memory" }; // only its msg is used here
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &ctx, png_on_error, png_ignore_warning);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    int failed = !info;
    if (!failed && setjmp(png_jmpbuf(png))) failed = 1;
    if (failed) {
        png_destroy_write_struct(&png, &info);
        vc_wabort(&wf);
        free(row);
        return vc_fail(err, VC_EINPUT, "%s: writing PNG failed: %s", path, ctx.msg);
    }
    png_init_io(png, f);
    png_set_IHDR(png, info, W, H, 8, C == 1 ? PNG_COLOR_TYPE_GRAY : PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    size_t hw = (size_t)H * W;
    for (int y = 0; y < H; y++) {
        for (int x = 0; x < W; x++)
            for (int c = 0; c < C; c++) {
                float v = img->data[c * hw + (size_t)y * W + x];
                v = v > 0.0f ? (v < 1.0f ? v : 1.0f) : 0.0f;   // NaN -> 0
                row[(size_t)x * C + c] = (unsigned char)lrintf(v * 255.0f);
            }
        png_write_row(png, row);
    }
    png_write_end(png, info);
    png_destroy_write_struct(&png, &info);
    free(row);
    return vc_wcommit(&wf, 1, err);
}
