// test_resample.c: the streaming row resizer (loaders/resample.c) against
// the whole-image reference, bit for bit; image_preprocess, which decodes a
// row at a time into it, against decode + reference + crop; and the memory a
// large photograph costs (issue 14: decoded row by row into the input size).
#include "testutil.h"
#include "../loaders/image.h"
#include "../loaders/resample.h"

#include <png.h>
#include <stdint.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static char g_dir[512];

static const char *tp(const char *name)
{
    static char buf[4][700];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", g_dir, name);
    return buf[k];
}

static int same_bits(const float *a, const float *b, size_t n, size_t *where)
{
    if (memcmp(a, b, n * sizeof *a) == 0) return 1;
    for (*where = 0; *where < n && !memcmp(a + *where, b + *where, sizeof *a); (*where)++) {}
    return 0;
}

// row_resizer on (C,H,W) random data -> (C,h,w) equals resample_ref exactly.
static void case_stream_vs_ref(tu_rng *r, int C, int H, int W, int h, int w)
{
    char name[160];
    snprintf(name, sizeof name, "row resizer = reference: (%d,%d,%d) -> (%d,%d,%d)", C, H, W, C, h, w);
    if (!tu_selected(name)) return;
    float *src = tu_rand(r, (size_t)C * H * W), *ref = NULL, *row = malloc(sizeof(float) * C * W);
    row_resizer rs;
    int rc = resample_ref(&ref, src, C, H, W, h, w) || row_resizer_init(&rs, C, H, W, h, w);
    if (rc) {
        tu_report(name, 0, "setup failed (%d)", rc);
        free(src), free(ref), free(row);
        return;
    }
    for (int y = 0; y < H; y++) {
        for (int c = 0; c < C; c++) memcpy(row + (size_t)c * W, src + ((size_t)c * H + y) * W, sizeof(float) * W);
        row_resizer_push(&rs, row);
    }
    float *out = row_resizer_finish(&rs);
    size_t at = 0;
    if (!out) tu_report(name, 0, "finish returned NULL");
    else if (!same_bits(out, ref, (size_t)C * h * w, &at)) tu_report(name, 0, "differs at %zu: %.9g vs %.9g", at, out[at], ref[at]);
    else tu_report(name, 1, "%zu values identical", (size_t)C * h * w);
    free(src), free(ref), free(row), free(out);
}

static void case_missing_rows(void)
{
    row_resizer rs;
    float row[4] = {1, 2, 3, 4};
    int rc = row_resizer_init(&rs, 1, 3, 4, 2, 2);
    row_resizer_push(&rs, row);
    float *out = rc ? NULL : row_resizer_finish(&rs);
    tu_report("row resizer: finishing before the last row gives NULL", !rc && !out, "rc %d out %p", rc, (void *)out);
    free(out);
    int bad = row_resizer_init(&rs, 1, 0, 4, 2, 2) == VC_EINPUT && row_resizer_init(&rs, 1, 3, 4, 2, -1) == VC_EINPUT;
    tu_report("row resizer: sizes < 1 are VC_EINPUT", bad, "");
}

// The old path: decode whole, resize whole (reference), crop, normalise.
static int preprocess_whole(float *out, const char *path, const vc_preprocess *pp, int oh, int ow, vc_error *err)
{
    vc_image img;
    if (image_load(&img, path, pp->channels, err)) return 1;
    int nh = img.h, nw = img.w;
    if (pp->resize > 0) {
        int s = img.h < img.w ? img.h : img.w, l = img.h < img.w ? img.w : img.h;
        int nl = (int)((double)((long long)pp->resize * l) / s);
        if (img.w <= img.h) nw = pp->resize, nh = nl;
        else nh = pp->resize, nw = nl;
    } else if (pp->crop <= 0) {
        nh = oh, nw = ow;
    }
    float *r = NULL;
    if (resample_ref(&r, img.data, img.c, img.h, img.w, nh, nw)) return 1;
    int top = 0, left = 0;
    if (pp->crop > 0) {   // (crops here are never larger than the resized image)
        int dh = nh - pp->crop, dw = nw - pp->crop;
        top = dh / 2 + ((dh % 2) && ((dh / 2) % 2));
        left = dw / 2 + ((dw % 2) && ((dw / 2) % 2));
    }
    for (int c = 0; c < img.c; c++)
        for (int y = 0; y < oh; y++)
            for (int x = 0; x < ow; x++)
                out[((size_t)c * oh + y) * ow + x] =
                    (r[((size_t)c * nh + top + y) * nw + left + x] - pp->mean[c]) / pp->std[c];
    free(r);
    image_free(&img);
    return 0;
}

static void case_preprocess(const char *label, const char *path, int channels, int resize, int crop, int oh, int ow)
{
    char name[200];
    snprintf(name, sizeof name, "preprocess, decoded row by row = whole image + reference: %s c=%d resize=%d crop=%d",
             label, channels, resize, crop);
    if (!tu_selected(name)) return;
    vc_preprocess pp = { channels, resize, crop, {0.485f, 0.456f, 0.406f}, {0.229f, 0.224f, 0.225f} };
    size_t n = (size_t)channels * oh * ow, at = 0;
    float *a = malloc(n * sizeof *a), *b = malloc(n * sizeof *b);
    vc_error err;
    if (image_preprocess(a, path, &pp, oh, ow, &err)) tu_report(name, 0, "image_preprocess: %s", err.msg);
    else if (preprocess_whole(b, path, &pp, oh, ow, &err)) tu_report(name, 0, "whole path: %s", err.msg);
    else if (!same_bits(a, b, n, &at)) tu_report(name, 0, "differs at %zu: %.9g vs %.9g", at, a[at], b[at]);
    else tu_report(name, 1, "%zu values identical", n);
    free(a), free(b);
}

// An Adam7-interlaced 16-bit RGBA PNG (the decoder reads those whole).
static void save_interlaced(const char *path, int h, int w)
{
    FILE *f = fopen(path, "wb");
    if (!f) return;
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png_create_info_struct(png);
    unsigned char *px = malloc((size_t)h * w * 8);
    png_bytep *rows = malloc(sizeof(png_bytep) * h);
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_write_struct(&png, &info);
        fclose(f), free(px), free(rows);
        return;
    }
    for (size_t i = 0; i < (size_t)h * w * 8; i++) px[i] = (unsigned char)((i * 131) % 251);
    for (int y = 0; y < h; y++) rows[y] = px + (size_t)y * w * 8;
    png_init_io(png, f);
    png_set_IHDR(png, info, w, h, 16, PNG_COLOR_TYPE_RGB_ALPHA, PNG_INTERLACE_ADAM7, PNG_COMPRESSION_TYPE_DEFAULT,
                 PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    png_write_image(png, rows);
    png_write_end(png, info);
    png_destroy_write_struct(&png, &info);
    fclose(f), free(px), free(rows);
}

static void save(const char *path, tu_rng *r, int c, int h, int w)
{
    vc_image img = { c, h, w, tu_rand(r, (size_t)c * h * w) };
    vc_error err;
    if (image_save_png(path, &img, &err)) fprintf(stderr, "# %s\n", err.msg);
    free(img.data);
}

// A 6000x4000 RGB PNG (smooth, so small on disk) preprocessed to 224x224 in
// a child process: its peak RSS, from wait4, against the 288 MB the whole
// image would take as floats.
static void case_memory(void)
{
    const char *name = "a 6000x4000 RGB photo preprocessed to 224x224 decodes row by row: peak RSS < 100 MB";
    if (!tu_selected(name)) return;
    enum { H = 4000, W = 6000 };
    vc_image img = { 3, H, W, malloc(sizeof(float) * 3 * H * W) };
    for (size_t i = 0; i < (size_t)3 * H * W; i++) img.data[i] = (float)((i / W + i % W) % 256) / 255.0f;
    const char *p = tp("big.png");
    vc_error err;
    int rc = image_save_png(p, &img, &err);
    free(img.data);
    if (rc) {
        tu_report(name, 0, "writing the PNG: %s", err.msg);
        return;
    }
    struct stat st;
    stat(p, &st);
    pid_t pid = fork();
    if (pid == 0) {
        vc_preprocess pp = { 3, 256, 224, {0.485f, 0.456f, 0.406f}, {0.229f, 0.224f, 0.225f} };
        static float out[3 * 224 * 224];
        _exit(image_preprocess(out, p, &pp, 224, 224, &err) ? 3 : 0);
    }
    int status = 0;
    struct rusage ru;
    if (pid < 0 || wait4(pid, &status, 0, &ru) != pid) {
        tu_report(name, 0, "fork/wait4 failed");
        return;
    }
    double mb = ru.ru_maxrss / 1024.0;
    printf("# %s: %lld bytes on disk, child peak RSS %.1f MB (exit %d)\n", p, (long long)st.st_size, mb,
           WIFEXITED(status) ? WEXITSTATUS(status) : -1);
    tu_report(name, WIFEXITED(status) && WEXITSTATUS(status) == 0 && mb < 100, "peak RSS %.1f MB, status %d", mb, status);
}

int main(int argc, char **argv)
{
    tu_init(argc, argv);
    if (tu_scratch_dir(g_dir, sizeof g_dir, "resample")) return tu_finish();
    tu_rng rng = { 0x5eed5eed12345ULL };
    static const int sizes[][5] = {
        {3, 480, 640, 224, 298}, {1, 37, 53, 28, 28}, {3, 28, 28, 224, 224}, {3, 100, 100, 100, 100},
        {3, 100, 100, 100, 57}, {3, 100, 100, 31, 100}, {1, 1, 1, 5, 7}, {1, 9, 1, 1, 1}, {3, 1000, 17, 3, 2},
        {1, 333, 777, 256, 597}, {3, 64, 48, 65, 47},
    };
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
        case_stream_vs_ref(&rng, sizes[i][0], sizes[i][1], sizes[i][2], sizes[i][3], sizes[i][4]);
    case_missing_rows();

    // files of every decoder path: 8-bit gray/RGB PNG, interlaced (read whole),
    // JPEG (skimage's), and the photos of make data when present
    save(tp("rgb.png"), &rng, 3, 300, 451);
    save(tp("gray.png"), &rng, 1, 97, 60);
    const char *sk = "/usr/lib/python3/dist-packages/skimage/data";
    char p1[600], p2[600], p3[600];
    snprintf(p1, sizeof p1, "%s/rocket.jpg", sk);
    snprintf(p2, sizeof p2, "%s/logo.png", sk);
    snprintf(p3, sizeof p3, "%s/astronaut.png", sk);
    case_preprocess("random RGB png", tp("rgb.png"), 3, 256, 224, 224, 224);
    case_preprocess("random RGB png", tp("rgb.png"), 1, 0, 0, 28, 28);
    case_preprocess("random gray png", tp("gray.png"), 3, 100, 0, 161, 100);
    case_preprocess("random gray png", tp("gray.png"), 1, 0, 0, 97, 60);
    case_preprocess("rocket.jpg", p1, 3, 256, 224, 224, 224);
    case_preprocess("rocket.jpg", p1, 1, 0, 0, 64, 64);
    case_preprocess("logo.png (RGBA)", p2, 3, 128, 112, 112, 112);
    case_preprocess("astronaut.png", p3, 3, 0, 0, 600, 300);
    save_interlaced(tp("adam7.png"), 45, 70);
    case_preprocess("interlaced 16-bit RGBA png", tp("adam7.png"), 3, 0, 0, 21, 13);
    case_preprocess("interlaced 16-bit RGBA png", tp("adam7.png"), 1, 40, 32, 32, 32);
    case_memory();
    tu_rm_dir(g_dir);
    return tu_finish();
}
