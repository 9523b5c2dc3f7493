// idx.c: IDX (MNIST-style) files through zlib's gz* reader, which reads
// gzip and plain files alike. See idx.h for the format and the errors.
#include "idx.h"
#include <errno.h>
#include <string.h>
#include <zlib.h>
#include "../engine/util.h"
#include <unistd.h>
#include "fileio.h"

// zlib's message, less the "path: " it puts in front.
static const char *gz_msg(gzFile f, const char *path, int *zerr) {
    const char *msg = gzerror(f, zerr);
    size_t n = strlen(path);
    return !strncmp(msg, path, n) && msg[n] == ':' && msg[n + 1] == ' ' ? msg + n + 2 : msg;
}

// Reads exactly n bytes; returns 0 on success, else fills err naming what was being read.
static int gz_exact(gzFile f, void *buf, size_t n, const char *path, const char *what, vc_error *err) {
    unsigned char *p = buf;
    while (n > 0) {
        unsigned chunk = n > (1u << 30) ? (1u << 30) : (unsigned)n;
        int got = gzread(f, p, chunk);
        if (got < 0) {
            int zerr;
            const char *msg = gz_msg(f, path, &zerr);
            return vc_fail(err, VC_EINPUT, "%s: corrupt file while reading the %s (%s)", path, what, msg);
        }
        if (got == 0) {
            int zerr;
            const char *msg = gz_msg(f, path, &zerr);
            return vc_fail(err, VC_EINPUT, "%s: truncated: the file ends inside the %s%s%s%s", path, what,
                           zerr ? " (" : "", zerr ? msg : "", zerr ? ")" : "");
        }
        p += got;
        n -= (size_t)got;
    }
    return VC_OK;
}

void idx_free(vc_idx *a) {
    if (!a) return;
    free(a->data);
    memset(a, 0, sizeof *a);
}

int idx_read(vc_idx *a, const char *path, size_t max_bytes, vc_error *err) {
    memset(a, 0, sizeof *a);
    if (!max_bytes) max_bytes = (size_t)1 << 30;
    size_t fsize;
    int fd = vc_open_regular(path, &fsize, err);
    if (fd < 0) return VC_EINPUT;
    unsigned char magic[2] = {0, 0};
    int gz = pread(fd, magic, 2, 0) == 2 && magic[0] == 0x1f && magic[1] == 0x8b;
    // the most data the file can hold: itself, or ~1032x itself when deflated
    size_t can_hold = gz ? (fsize > SIZE_MAX / 1032 ? SIZE_MAX : fsize * 1032) : fsize;
    gzFile f = gzdopen(fd, "rb");
    if (!f) { close(fd); return vc_fail(err, VC_EINPUT, "%s: cannot open (%s)", path, errno ? strerror(errno) : "out of memory"); }
    unsigned char h[4], d[16];
    int rc = gz_exact(f, h, 4, path, "IDX header", err);
    if (!rc && (h[0] || h[1]))
        rc = vc_fail(err, VC_EINPUT, "%s: not an IDX file (the first two bytes are %02x %02x, not 00 00)", path, h[0], h[1]);
    if (!rc && h[2] != 0x08)
        rc = vc_fail(err, VC_EINPUT, "%s: IDX data type 0x%02x is not supported (only 0x08, unsigned byte)", path, h[2]);
    if (!rc && (h[3] < 1 || h[3] > 4))
        rc = vc_fail(err, VC_EINPUT, "%s: IDX file has %d dimensions (1 to 4 supported)", path, h[3]);
    if (!rc) rc = gz_exact(f, d, 4u * h[3], path, "IDX header", err);
    size_t size = 1;
    for (int k = 0; !rc && k < h[3]; k++) {
        uint32_t v = (uint32_t)d[4 * k] << 24 | (uint32_t)d[4 * k + 1] << 16 | (uint32_t)d[4 * k + 2] << 8 | d[4 * k + 3];
        if (v == 0 || v > (1u << 30) || size > max_bytes / v) {
            rc = vc_fail(err, VC_EINPUT, "%s: IDX dimension %d is %u: the data would be empty or larger than %zu bytes",
                         path, k, v, max_bytes);
            break;
        }
        a->dim[k] = (int)v;
        size *= v;
    }
    if (!rc && size > can_hold)
        rc = vc_fail(err, VC_EINPUT, "%s: IDX header claims %zu data bytes, more than the %zu-byte file can hold (truncated?)",
                     path, size, fsize);
    if (!rc) {
        a->rank = h[3];
        a->size = size;
        a->data = malloc_check(size);
        rc = gz_exact(f, a->data, size, path, "data", err);
    }
    if (!rc) {
        unsigned char extra;
        int got = gzread(f, &extra, 1);
        if (got != 0) {
            int zerr;
            const char *msg = gz_msg(f, path, &zerr);
            rc = got < 0 ? vc_fail(err, VC_EINPUT, "%s: corrupt file (%s)", path, msg)
                         : vc_fail(err, VC_EINPUT, "%s: %zu data bytes expected, the file has more", path, size);
        }
    }
    gzclose(f);
    if (rc) idx_free(a);
    return rc;
}

void idx_set_free(vc_idx_set *s) {
    if (!s) return;
    free(s->pixels);
    free(s->labels);
    memset(s, 0, sizeof *s);
}

int idx_read_set(vc_idx_set *s, const char *images, const char *labels, vc_error *err) {
    memset(s, 0, sizeof *s);
    vc_idx im, lb;
    int rc = idx_read(&im, images, 0, err);
    if (rc) return rc;
    if (im.rank != 3) {
        idx_free(&im);
        return vc_fail(err, VC_EINPUT, "%s: IDX images must have 3 dimensions (N, rows, cols), not %d", images, im.rank);
    }
    rc = idx_read(&lb, labels, 0, err);
    if (rc) { idx_free(&im); return rc; }
    if (lb.rank != 1) rc = vc_fail(err, VC_EINPUT, "%s: IDX labels must have 1 dimension (N), not %d", labels, lb.rank);
    else if (lb.dim[0] != im.dim[0])
        rc = vc_fail(err, VC_EINPUT, "%s: %d labels for the %d images of %s", labels, lb.dim[0], im.dim[0], images);
    if (!rc) {
        s->n = im.dim[0];
        s->rows = im.dim[1];
        s->cols = im.dim[2];
        s->pixels = im.data;
        im.data = NULL;
        s->labels = malloc_check((size_t)s->n * sizeof(int));
        for (int i = 0; i < s->n; i++) s->labels[i] = lb.data[i];
    }
    idx_free(&im);
    idx_free(&lb);
    return rc;
}
