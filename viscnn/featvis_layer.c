// featvis_layer.c: feature visualisation of every node of a layer, in
// batches through the disk cache, split over MPI ranks (vc_featvis_layer).
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "viscnn_internal.h"
#include "featvis.h"
#include "dist.h"
#include "../loaders/image.h"
#include "../engine/util.h"

typedef struct { const char *what; int last; } progress;
static void progress_bar(void *ctx, int step, int steps) {
    progress *p = ctx;
    int tty = isatty(2), pct = (int)(100LL * step / steps);
    if (tty) {
        if (pct == p->last && step != steps) return;
        int fill = pct * 30 / 100;
        fprintf(stderr, "\r%s [%.*s%*s] %3d%% %d/%d", p->what, fill, "##############################", 30 - fill, "", pct, step,
                steps);
        if (step == steps) fputc('\n', stderr);
    } else {   // a log: one line per tenth
        if (pct / 10 == p->last / 10 && step != steps) return;
        fprintf(stderr, "%s: %3d%% (%d/%d steps)\n", p->what, pct, step, steps);
    }
    p->last = pct;
}

// The contact sheet: n pictures (c, h, w) on a grid, each magnified k times
// (nearest) to at least 64 pixels, 2-pixel grey gutters.
static int write_sheet(const char *path, const float *img, int n, int c, int h, int w, vc_error *err) {
    int k = 1;
    while (k * (h < w ? h : w) < 64) k++;
    int cols = (int)ceil(sqrt((double)n)), rows = (n + cols - 1) / cols, g = 2;
    int H = rows * (h * k + g) + g, W = cols * (w * k + g) + g;
    float *s = malloc_check((size_t)c * H * W * sizeof(float));
    for (size_t q = 0; q < (size_t)c * H * W; q++) s[q] = 0.5f;
    for (int b = 0; b < n; b++) {
        int oy = g + (b / cols) * (h * k + g), ox = g + (b % cols) * (w * k + g);
        for (int ch = 0; ch < c; ch++)
            for (int y = 0; y < h * k; y++)
                for (int x = 0; x < w * k; x++)
                    s[((size_t)ch * H + oy + y) * W + ox + x] = img[(((size_t)b * c + ch) * h + y / k) * w + x / k];
    }
    unsigned char *buf;
    size_t len;
    int rc = featvis_png_encode(s, c, H, W, &buf, &len, err);
    free(s);
    if (rc) return rc;
    rc = featvis_write_atomic(path, buf, len, err);
    free(buf);
    return rc;
}

// A cached picture back as floats (c, h, w), for the sheet.
static int png_decode(const char *path, int c, int h, int w, float *dst, vc_error *err) {
    vc_image im;
    int rc = image_load(&im, path, c, err);
    if (rc) return rc;
    if (im.h != h || im.w != w) rc = vc_fail(err, VC_EINPUT, "%s: a cached picture of %dx%d, expected %dx%d", path, im.h, im.w, h, w);
    else memcpy(dst, im.data, (size_t)c * h * w * sizeof(float));
    image_free(&im);
    return rc;
}

// Progress over several batches: batch k of nb, each of `steps` steps.
typedef struct { progress p; int k, nb; } progress_batches;
static void progress_all(void *ctx, int step, int steps) {
    progress_batches *q = ctx;
    progress_bar(&q->p, q->k * steps + step, q->nb * steps);
}

// --layer L --all: every node of L in batches of K nodes (unit u: nodes
// uK .. uK+K-1); in each, cached pictures are read and the rest optimised as
// one batch. Under mpirun (docs/mpi.md) unit u belongs to rank u % N: each
// rank reads or optimises its units and writes their PNGs (and cache
// entries); rank 0 gathers the pictures (floats, exact) and the traces and
// writes the sheet and the trace. The engine's per-image floats depend on
// which images share a batch (BLAS and FFT kernels treat a batch's columns
// unevenly), so the batches are the split's units: every picture is made in
// the same batch as in one process, and the files are that process's.
int featvis_layer(const vc_model *m, const char *layer, const vc_featvis_opts *o, int K, const char *cache,
                       const char *outdir, const char *trace, vc_error *err) {
    const int rank = dist_rank(), ranks = dist_size(), root = dist_is_root();
    int node = vc_model_find(m, layer);
    if (node < 0) return vc_fail(err, VC_EINPUT, "--layer %s: no layer %s in %s (see viscnn info)", layer, layer, m->path);
    int C = node == 0 ? m->nodes[0].c : m->nodes[node].c;
    vc_featvis_target *t = malloc_check((size_t)C * sizeof *t);
    for (int j = 0; j < C; j++) t[j] = (vc_featvis_target){node, j, -1};
    int rc = vc_featvis_check(m, &t[0], o, err);
    if (!rc && mkdir(outdir, 0755) != 0 && errno != EEXIST) rc = vc_fail(err, VC_EINPUT, "-o %s: cannot create the folder: %s", outdir, strerror(errno));
    char path[4200], sheet[4200];
    if (!rc && strlen(outdir) > 3800) rc = vc_fail(err, VC_EINPUT, "-o %s: path too long", outdir);
    if (!rc) {
        snprintf(sheet, sizeof sheet, "%s/%s.png", outdir, layer);
        rc = featvis_check_writable(sheet, err);
    }
    if (!rc && trace) rc = featvis_check_writable(trace, err);
    rc = dist_agree(rc, err);   // (every rank checks the same things)
    if (rc) { free(t); return rc; }
    const int U = (C + K - 1) / K;   // units (batches)
    unsigned char **png = calloc_check(C, sizeof *png);
    char **js = calloc_check(C, sizeof *js);
    size_t *pl = calloc_check(C, sizeof *pl), *jl = calloc_check(C, sizeof *jl);
    int *fresh = calloc_check(C, sizeof *fresh), nt = 0, mine = 0, nb = 0;   // fresh[j]: optimised here
    for (int u = rank; u < U; u += ranks) {
        int before = nt;
        for (int j = u * K; j < C && j < (u + 1) * K; j++, mine++)
            if (!cache || featvis_cache_read(cache, featvis_key(m, &t[j], o), &png[j], &pl[j], &js[j], &jl[j])) fresh[j] = 1, nt++;
        nb += nt > before;
    }
    double count[3] = {mine - nt, nt, nb};   // from the cache, to optimise, batches: over all ranks
    dist_sum(count, 3);
    if (root && count[2] <= 1)
        fprintf(stderr, "featvis %s: %d nodes, %d from the cache, %d to optimise as one batch\n", layer, C, (int)count[0], (int)count[1]);
    else if (root)
        fprintf(stderr, "featvis %s: %d nodes, %d from the cache, %d to optimise in %d batches of up to %d%s\n", layer, C,
                (int)count[0], (int)count[1], (int)count[2], K, ranks > 1 ? " (batch u on rank u % ranks)" : "");
    int c = m->nodes[0].c, h = o->size ? o->size : m->nodes[0].h, w = o->size ? o->size : m->nodes[0].w;
    size_t chw = (size_t)c * h * w;
    // the sheet needs every picture as floats: ours as optimised, cached ones
    // re-read through the image loader
    float *all = malloc_check(C * chw * sizeof(float));
    vc_featvis_target *tt = malloc_check((size_t)K * sizeof *tt);
    int *tj = malloc_check((size_t)K * sizeof *tj);
    progress_batches pb = {{layer, -1}, 0, nb};   // (rank 0's batches stand for the job's progress)
    for (int u = rank; u < U && !rc; u += ranks) {
        int n = 0;
        for (int j = u * K; j < C && j < (u + 1) * K; j++)
            if (fresh[j]) tj[n] = j, tt[n++] = t[j];
        if (!n) continue;
        vc_featvis_result res;
        rc = vc_featvis_batch(m, tt, n, o, &res, root ? progress_all : NULL, &pb, err);
        pb.k++;
        for (int q = 0; !rc && q < n; q++) {
            int j = tj[q];
            js[j] = featvis_trace_json(m, &t[j], o, &res, q, &jl[j]);
            rc = featvis_png_encode(res.img + q * chw, c, h, w, &png[j], &pl[j], err);
            if (!rc && cache) featvis_cache_write(cache, featvis_key(m, &t[j], o), png[j], pl[j], js[j], jl[j]);
            if (!rc) memcpy(all + j * chw, res.img + q * chw, chw * sizeof(float));
        }
        vc_featvis_result_free(&res);
    }
    free(tt);
    free(tj);
    for (int u = rank; u < U && !rc; u += ranks)
        for (int j = u * K; j < C && j < (u + 1) * K && !rc; j++) {
            snprintf(path, sizeof path, "%s/%s_%d.png", outdir, layer, j);
            rc = featvis_write_atomic(path, png[j], pl[j], err);
            if (!rc && !fresh[j]) rc = png_decode(path, c, h, w, all + j * chw, err);
        }
    rc = dist_agree(rc, err);   // a rank that failed: every rank stops here, exit 2 naming the cause
    if (!rc && ranks > 1) {   // rank 0 gathers the others' pictures and traces
        void **blk = calloc_check(C, sizeof *blk);
        size_t *bl = calloc_check(C, sizeof *bl);
        for (int j = 0; j < C; j++)
            if (j / K % ranks == rank) blk[j] = all + j * chw, bl[j] = chw * sizeof(float);
        dist_gather_to_root(blk, bl, C, K);
        for (int j = 0; root && j < C; j++)
            if (j / K % ranks) {
                if (bl[j] != chw * sizeof(float)) rc = vc_fail(err, VC_EINTERNAL, "featvis: picture %d arrived with %zu bytes", j, bl[j]);
                else memcpy(all + j * chw, blk[j], bl[j]);
                free(blk[j]);
            }
        free(blk);
        free(bl);
        if (trace) dist_gather_to_root((void **)js, jl, C, K);
    }
    if (!rc && root) rc = write_sheet(sheet, all, C, c, h, w, err);
    free(all);
    if (!rc && root && trace) {
        size_t tot = 4;
        for (int j = 0; j < C; j++) tot += jl[j] + 4;
        char *buf = malloc_check(tot), *q = buf;
        *q++ = '[';
        for (int j = 0; j < C; j++) {
            if (j) *q++ = ',';
            memcpy(q, js[j], jl[j]);
            q += jl[j];
        }
        *q++ = ']'; *q++ = '\n';
        rc = featvis_write_atomic(trace, buf, (size_t)(q - buf), err);
        free(buf);
    }
    if (ranks > 1) rc = dist_agree(rc, err);   // rank 0's writes: every rank exits with their status
    if (!rc && root) fprintf(stderr, "featvis %s: wrote %s and %d pictures in %s\n", layer, sheet, C, outdir);
    for (int j = 0; j < C; j++) { free(png[j]); free(js[j]); }
    free(png); free(js); free(pl); free(jl); free(fresh); free(t);
    return rc;
}

