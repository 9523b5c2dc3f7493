// featvis_io.c: what feature visualisation writes — PNG bytes, the trace JSON,
// atomic files — and its disk cache (one PNG and one trace per key).
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <png.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "featvis.h"
#include "export.h"
#include "../engine/util.h"
#include "../loaders/atomic_write.h"

uint64_t featvis_hash(uint64_t h, const void *p, size_t n) {
    const unsigned char *s = p;
    size_t k = 0;
    for (; k + 8 <= n; k += 8) {
        uint64_t w;
        memcpy(&w, s + k, 8);
        h = (h ^ w) * 0x100000001B3ULL;
        h ^= h >> 29;
    }
    for (; k < n; k++) h = (h ^ s[k]) * 0x100000001B3ULL;
    return h;
}

// The version tag changes whenever the algorithm does, so old pictures are not served.
#define FEATVIS_VERSION "featvis-1"

uint64_t featvis_key(const vc_model *m, const vc_featvis_target *t, const vc_featvis_opts *o) {
    uint64_t h = featvis_hash(0xCBF29CE484222325ULL, FEATVIS_VERSION, sizeof FEATVIS_VERSION);
    h = featvis_hash(h, m->blob, m->blob_size);
    const char *name = m->nodes[t->layer].name;
    h = featvis_hash(h, name, strlen(name) + 1);
    int v[6] = {t->out, t->in, o->steps, o->size, o->neuron < 0 ? t->in >= 0 : o->neuron != 0, o->negative != 0};
    h = featvis_hash(h, v, sizeof v);
    h = featvis_hash(h, &o->seed, sizeof o->seed);
    h = featvis_hash(h, &o->lr, sizeof o->lr);
    return h;
}

typedef struct { unsigned char *buf; size_t len, cap; } membuf;
static void png_mem_write(png_structp png, png_bytep data, png_size_t n) {
    membuf *b = png_get_io_ptr(png);
    if (b->len + n > b->cap) {
        while (b->len + n > b->cap) b->cap = b->cap ? 2 * b->cap : 4096;
        unsigned char *nb = realloc(b->buf, b->cap);
        if (!nb) png_error(png, "out of memory");
        b->buf = nb;
    }
    memcpy(b->buf + b->len, data, n);
    b->len += n;
}
static void png_mem_flush(png_structp png) { (void)png; }

int featvis_png_encode(const float *img, int c, int h, int w, unsigned char **out, size_t *len, vc_error *err) {
    membuf b = {0};
    unsigned char *row = malloc_check((size_t)w * c);
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!info || setjmp(png_jmpbuf(png))) {
        png_destroy_write_struct(&png, &info);
        free(row); free(b.buf);
        return vc_fail(err, VC_EINTERNAL, "featvis: encoding the PNG failed");
    }
    png_set_write_fn(png, &b, png_mem_write, png_mem_flush);
    png_set_IHDR(png, info, w, h, 8, c == 1 ? PNG_COLOR_TYPE_GRAY : PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    size_t hw = (size_t)h * w;
    for (int y = 0; y < h; y++) {
        for (int x = 0; x < w; x++)
            for (int k = 0; k < c; k++) {
                float v = img[k * hw + (size_t)y * w + x];
                v = v != v ? 0 : v < 0 ? 0 : v > 1 ? 1 : v;
                row[(size_t)x * c + k] = (unsigned char)lrintf(v * 255);
            }
        png_write_row(png, row);
    }
    png_write_end(png, info);
    png_destroy_write_struct(&png, &info);
    free(row);
    *out = b.buf;
    *len = b.len;
    return VC_OK;
}

// Checked before any work starts, so that a bad -o fails at once: a
// temporary file can be made beside it (then removed).
int featvis_check_writable(const char *path, vc_error *err) {
    struct stat st;
    if (!stat(path, &st) && S_ISDIR(st.st_mode)) return vc_fail(err, VC_EINPUT, "%s: is a directory", path);
    vc_wfile w;
    int rc = vc_wopen(&w, path, err);
    if (!rc) vc_wabort(&w);
    return rc;
}

// Through the one atomic writer (loaders/atomic_write.c): a unique temporary
// beside path, fsync, rename, fsync the folder; removed on error or signal.
int featvis_write_atomic(const char *path, const void *buf, size_t len, vc_error *err) {
    vc_wfile w;
    int rc = vc_wopen(&w, path, err);
    if (rc) return rc;
    return vc_wcommit(&w, fwrite(buf, 1, len, w.fp) == len, err);
}

char *featvis_trace_json(const vc_model *m, const vc_featvis_target *t, const vc_featvis_opts *o,
                         const vc_featvis_result *res, int b, size_t *len) {
    char *buf = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&buf, &n);
    VC_ASSERT(f != NULL);
    int edge = t->in >= 0, neuron = o->neuron < 0 ? edge : o->neuron != 0;
    // names come from the model file: JSON-escaped
    fputs("{\"model\": ", f);
    export_string(f, m->name ? m->name : "");
    fputs(", \"layer\": ", f);
    export_string(f, m->nodes[t->layer].name);
    fputs(", ", f);
    if (edge) fprintf(f, "\"edge\": [%d, %d], ", t->out, t->in);
    else fprintf(f, "\"node\": %d, ", t->out);
    fprintf(f, "\"objective\": \"%s\", \"map\": \"%s\", \"negative\": %s, \"steps\": %d, \"size\": [%d, %d], "
               "\"seed\": %llu, \"lr\": %.9g,\n \"final\": %.9g,\n \"trace\": [",
            neuron ? "neuron" : "channel", edge ? "e_ji" : "z_j", o->negative ? "true" : "false", o->steps, res->h, res->w,
            (unsigned long long)o->seed, (double)o->lr, (double)res->final[b]);
    for (int s = 0; s < res->steps; s++)
        fprintf(f, "%s%.9g", s ? (s % 8 ? ", " : ",\n  ") : "", (double)res->trace[(size_t)b * res->steps + s]);
    fputs("]}\n", f);
    fclose(f);
    *len = n;
    return buf;
}

static int read_file(const char *path, unsigned char **buf, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return -1;
    size_t cap = 1 << 16, n = 0;
    unsigned char *b = malloc_check(cap);
    size_t k;
    while ((k = fread(b + n, 1, cap - n, f)) > 0) {
        n += k;
        if (n == cap) {
            b = realloc(b, cap *= 2);
            VC_ASSERT(b != NULL);
        }
    }
    int bad = ferror(f);
    fclose(f);
    if (bad || n == 0) { free(b); return -1; }
    *buf = b;
    *len = n;
    return 0;
}

static int mkdirs(const char *dir, vc_error *err) {
    char p[4096];
    if (strlen(dir) >= sizeof p) return vc_fail(err, VC_EINPUT, "%s: path too long", dir);
    snprintf(p, sizeof p, "%s", dir);
    for (char *s = p + 1; ; s++) {
        char c = *s;
        if (c == '/' || c == 0) {
            *s = 0;
            if (mkdir(p, 0755) != 0 && errno != EEXIST)
                return vc_fail(err, VC_EINPUT, "cache %s: cannot create %s: %s", dir, p, strerror(errno));
            *s = c;
        }
        if (!c) break;
    }
    return VC_OK;
}

static void cache_paths(const char *dir, uint64_t key, char *png, char *json, size_t cap) {
    snprintf(png, cap, "%s/%016llx.png", dir, (unsigned long long)key);
    snprintf(json, cap, "%s/%016llx.json", dir, (unsigned long long)key);
}

int featvis_cache_read(const char *dir, uint64_t key, unsigned char **png, size_t *pl, char **json, size_t *jl) {
    char cp[4200], cj[4200];
    if (strlen(dir) > 4000) return -1;
    cache_paths(dir, key, cp, cj, sizeof cp);
    unsigned char *a = NULL, *b = NULL;
    if (read_file(cp, &a, pl) || read_file(cj, &b, jl)) { free(a); return -1; }
    *png = a;
    *json = (char *)b;
    return 0;
}

void featvis_cache_write(const char *dir, uint64_t key, const unsigned char *png, size_t pl, const char *json, size_t jl) {
    char cp[4200], cj[4200];
    if (strlen(dir) > 4000 || mkdirs(dir, NULL)) return;   // a cache that cannot be written is no error
    cache_paths(dir, key, cp, cj, sizeof cp);
    if (!featvis_write_atomic(cj, json, jl, NULL)) featvis_write_atomic(cp, png, pl, NULL);
}

int vc_featvis_png(const vc_model *m, const vc_featvis_target *t, const vc_featvis_opts *o, const char *cache_dir,
                   const char *png, const char *trace_json, int *cached, vc_error *err) {
    if (cached) *cached = 0;
    int rc = vc_featvis_check(m, t, o, err);
    if (rc) return rc;
    if ((rc = featvis_check_writable(png, err))) return rc;
    if (trace_json && (rc = featvis_check_writable(trace_json, err))) return rc;
    uint64_t key = cache_dir ? featvis_key(m, t, o) : 0;
    unsigned char *a = NULL;
    char *b = NULL;
    size_t na = 0, nb = 0;
    if (cache_dir && !featvis_cache_read(cache_dir, key, &a, &na, &b, &nb)) {
        rc = featvis_write_atomic(png, a, na, err);
        if (!rc && trace_json && (rc = featvis_write_atomic(trace_json, b, nb, err))) unlink(png);
        free(a); free(b);
        if (!rc && cached) *cached = 1;
        return rc;
    }
    vc_featvis_result res;
    if ((rc = vc_featvis_batch(m, t, 1, o, &res, NULL, NULL, err))) return rc;
    unsigned char *pb = NULL;
    size_t pl = 0, jl = 0;
    char *js = featvis_trace_json(m, t, o, &res, 0, &jl);
    rc = featvis_png_encode(res.img, res.c, res.h, res.w, &pb, &pl, err);
    if (!rc && cache_dir) featvis_cache_write(cache_dir, key, pb, pl, js, jl);
    if (!rc) rc = featvis_write_atomic(png, pb, pl, err);
    if (!rc && trace_json && (rc = featvis_write_atomic(trace_json, js, jl, err))) unlink(png);
    free(pb); free(js);
    vc_featvis_result_free(&res);
    return rc;
}
