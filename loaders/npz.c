// npz.c: the .npz writer of npz.h. Layout (PKZIP APPNOTE 6.3): per entry a
// local file header, the .npy bytes (STORED, so the CRC-32 and both sizes are
// known before the header is written: no data descriptors); then the central
// directory, a zip64 end-of-central-directory record and locator when a count,
// size or offset does not fit its 16/32-bit field, and the end record.
// Names are UTF-8 (general-purpose flag bit 11); times are 1980-01-01 00:00,
// so that equal arrays give byte-identical archives.
#include "npz.h"
#include "atomic_write.h"
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <zlib.h>
#include "../engine/util.h"

enum {
    SIG_LOCAL = 0x04034b50, SIG_CENTRAL = 0x02014b50, SIG_EOCD = 0x06054b50,
    SIG_EOCD64 = 0x06064b50, SIG_LOC64 = 0x07064b50,
    FLAG_UTF8 = 0x0800, DOS_DATE = (0 << 9) | (1 << 5) | 1,   // 1980-01-01
    V_PLAIN = 20, V_ZIP64 = 45,
};
#define U32_MAX 0xFFFFFFFFull

typedef struct {
    char *name;               // NAME.npy
    uint32_t crc;
    uint64_t size, offset;    // entry bytes (STORED: compressed = uncompressed); local header offset
} npz_entry;

struct npz_writer {
    char *path;
    vc_wfile wf;      // the temporary file (loaders/atomic_write.c)
    FILE *fp;
    uint64_t pos;             // bytes written so far
    int ok;                   // no write has failed
    int force64;
    int n, cap;
    npz_entry *e;
};

static void put(npz_writer *w, const void *p, size_t n) {
    if (w->ok && fwrite(p, 1, n, w->fp) != n) w->ok = 0;
    w->pos += n;
}
static void put16(npz_writer *w, uint32_t v) {
    unsigned char b[2] = {(unsigned char)v, (unsigned char)(v >> 8)};
    put(w, b, 2);
}
static void put32(npz_writer *w, uint32_t v) { put16(w, v & 0xFFFF); put16(w, v >> 16); }
static void put64(npz_writer *w, uint64_t v) { put32(w, (uint32_t)v); put32(w, (uint32_t)(v >> 32)); }

static uint32_t crc_of(uint32_t crc, const unsigned char *p, uint64_t n) {
    while (n) {   // zlib's crc32 takes a 32-bit length
        uInt k = n > (1u << 30) ? (1u << 30) : (uInt)n;
        crc = (uint32_t)crc32(crc, p, k);
        p += k;
        n -= k;
    }
    return crc;
}

int npz_open(npz_writer **out, const char *path, vc_error *err) {
    *out = NULL;
    npz_writer *w = calloc_check(1, sizeof *w);
    w->path = strdup_check(path);
    int rc = vc_wopen(&w->wf, path, err);
    if (rc) { free(w->path); free(w); return rc; }
    w->fp = w->wf.fp;
    w->ok = 1;
    *out = w;
    return VC_OK;
}

void npz_force_zip64(npz_writer *w) { w->force64 = 1; }

static void writer_free(npz_writer *w) {
    for (int i = 0; i < w->n; i++) free(w->e[i].name);
    free(w->e); free(w->path); free(w);
}

void npz_abort(npz_writer *w) {
    if (!w) return;
    if (w->fp) vc_wabort(&w->wf);
    w->fp = NULL;
    writer_free(w);
}

int npz_add(npz_writer *w, const char *name, const char *dtype, int rank, const long long *dim,
            const void *data, vc_error *err) {
    size_t item = strlen(dtype) >= 3 ? (size_t)atoi(dtype + 2) : 0;
    if (!item || !strchr("<|", dtype[0]) || (item != 1 && item != 2 && item != 4 && item != 8))
        return vc_fail(err, VC_EINPUT, "%s: entry '%s': unsupported dtype '%s'", w->path, name, dtype);
    if (rank < 0 || rank > 8) return vc_fail(err, VC_EINPUT, "%s: entry '%s': rank %d", w->path, name, rank);
    for (const char *c = name; *c; c++)
        if ((unsigned char)*c < 32) return vc_fail(err, VC_EINPUT, "%s: entry name with a control character", w->path);
    size_t nlen = strlen(name) + 4;
    if (!*name || nlen > 0xFFFF) return vc_fail(err, VC_EINPUT, "%s: entry name empty or too long", w->path);
    char *full = malloc_check(nlen + 1);
    sprintf(full, "%s.npy", name);
    for (int i = 0; i < w->n; i++)
        if (!strcmp(w->e[i].name, full)) {
            free(full);
            return vc_fail(err, VC_EINPUT, "%s: two entries named '%s'", w->path, name);
        }

    // the .npy header, as npy_write makes it (format 1.0, padded to 64 bytes)
    char shape[256] = "", hdr[512];
    uint64_t count = 1;
    for (int k = 0; k < rank; k++) {
        snprintf(shape + strlen(shape), sizeof shape - strlen(shape), "%lld%s", dim[k],
                 rank == 1 ? "," : k + 1 < rank ? ", " : "");
        count *= (uint64_t)dim[k];
    }
    int hl = snprintf(hdr, sizeof hdr, "{'descr': '%s', 'fortran_order': False, 'shape': (%s), }", dtype, shape);
    int pad = (64 - (10 + hl + 1) % 64) % 64;
    memset(hdr + hl, ' ', pad);
    hl += pad;
    hdr[hl++] = '\n';
    unsigned char pre[10] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, (unsigned char)(hl & 255), (unsigned char)(hl >> 8)};
    uint64_t nbytes = count * item, size = 10 + (uint64_t)hl + nbytes;
    uint32_t crc = crc_of(crc_of(crc_of(0, pre, 10), (const unsigned char *)hdr, hl), data, nbytes);

    if (w->n == w->cap) {
        w->cap = w->cap ? 2 * w->cap : 32;
        w->e = realloc(w->e, w->cap * sizeof *w->e);
        if (!w->e) abort();
    }
    npz_entry *e = &w->e[w->n++];
    e->name = full;
    e->crc = crc;
    e->size = size;
    e->offset = w->pos;
    int z64 = w->force64 || size >= U32_MAX;
    put32(w, SIG_LOCAL);
    put16(w, z64 ? V_ZIP64 : V_PLAIN);
    put16(w, FLAG_UTF8);
    put16(w, 0);                        // STORED
    put16(w, 0); put16(w, DOS_DATE);
    put32(w, crc);
    put32(w, z64 ? (uint32_t)U32_MAX : (uint32_t)size);
    put32(w, z64 ? (uint32_t)U32_MAX : (uint32_t)size);
    put16(w, (uint32_t)nlen);
    put16(w, z64 ? 20 : 0);
    put(w, e->name, nlen);
    if (z64) { put16(w, 0x0001); put16(w, 16); put64(w, size); put64(w, size); }
    put(w, pre, 10);
    put(w, hdr, hl);
    put(w, data, nbytes);
    if (!w->ok) return vc_fail(err, VC_EINPUT, "%s: write failed: %s", w->path, strerror(errno));
    return VC_OK;
}

int npz_close(npz_writer *w, vc_error *err) {
    uint64_t cd_start = w->pos;
    for (int i = 0; i < w->n; i++) {
        const npz_entry *e = &w->e[i];
        int big_size = w->force64 || e->size >= U32_MAX, big_off = w->force64 || e->offset >= U32_MAX;
        int xlen = (big_size ? 16 : 0) + (big_off ? 8 : 0);
        put32(w, SIG_CENTRAL);
        put16(w, xlen ? V_ZIP64 : V_PLAIN);   // made by (MS-DOS attributes)
        put16(w, xlen ? V_ZIP64 : V_PLAIN);   // needed
        put16(w, FLAG_UTF8);
        put16(w, 0);
        put16(w, 0); put16(w, DOS_DATE);
        put32(w, e->crc);
        put32(w, big_size ? (uint32_t)U32_MAX : (uint32_t)e->size);
        put32(w, big_size ? (uint32_t)U32_MAX : (uint32_t)e->size);
        put16(w, (uint32_t)strlen(e->name));
        put16(w, xlen ? (uint32_t)xlen + 4 : 0);
        put16(w, 0);                          // comment
        put16(w, 0);                          // disk
        put16(w, 0); put32(w, 0);             // internal, external attributes
        put32(w, big_off ? (uint32_t)U32_MAX : (uint32_t)e->offset);
        put(w, e->name, strlen(e->name));
        if (xlen) {
            put16(w, 0x0001); put16(w, (uint32_t)xlen);
            if (big_size) { put64(w, e->size); put64(w, e->size); }
            if (big_off) put64(w, e->offset);
        }
    }
    uint64_t cd_size = w->pos - cd_start;
    int z64 = w->force64 || w->n >= 0xFFFF || cd_size >= U32_MAX || cd_start >= U32_MAX;
    if (z64) {
        uint64_t eocd64 = w->pos;
        put32(w, SIG_EOCD64);
        put64(w, 44);                          // size of the rest of this record
        put16(w, V_ZIP64); put16(w, V_ZIP64);
        put32(w, 0); put32(w, 0);              // this disk, the directory's disk
        put64(w, (uint64_t)w->n); put64(w, (uint64_t)w->n);
        put64(w, cd_size); put64(w, cd_start);
        put32(w, SIG_LOC64);
        put32(w, 0); put64(w, eocd64); put32(w, 1);
    }
    put32(w, SIG_EOCD);
    put16(w, 0); put16(w, 0);
    put16(w, z64 ? 0xFFFF : (uint32_t)w->n); put16(w, z64 ? 0xFFFF : (uint32_t)w->n);
    put32(w, z64 ? (uint32_t)U32_MAX : (uint32_t)cd_size);
    put32(w, z64 ? (uint32_t)U32_MAX : (uint32_t)cd_start);
    put16(w, 0);
    int rc = vc_wcommit(&w->wf, w->ok, err);
    w->fp = NULL;
    writer_free(w);
    return rc;
}
