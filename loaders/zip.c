// zip.c: the zip reader of zip.h. Sizes and offsets come from the central
// directory (zip64 extra fields where the 32-bit ones say 0xFFFFFFFF); the
// local header is read only to find where the data starts and to check that
// it names the same entry. Nothing is trusted before it is checked against
// the buffer's size.
#include "zip.h"
#include <limits.h>
#include <string.h>
#include <zlib.h>
#include "../engine/util.h"

enum {
    SIG_LOCAL = 0x04034b50, SIG_CENTRAL = 0x02014b50, SIG_EOCD = 0x06054b50,
    SIG_EOCD64 = 0x06064b50, SIG_LOC64 = 0x07064b50,
    EOCD_LEN = 22, LOC64_LEN = 20, EOCD64_LEN = 56, CENTRAL_LEN = 46, LOCAL_LEN = 30,
    MAX_ENTRIES = 1 << 24,
};

static uint32_t rd16(const unsigned char *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8; }
static uint32_t rd32(const unsigned char *p) { return rd16(p) | rd16(p + 2) << 16; }
static uint64_t rd64(const unsigned char *p) { return rd32(p) | (uint64_t)rd32(p + 4) << 32; }

int zip_is_zip(const unsigned char *buf, size_t size) {
    return size >= 4 && rd32(buf) == SIG_LOCAL;
}

void zip_close(zip_archive *z) {
    for (int i = 0; i < z->n; i++) free(z->e[i].name);
    free(z->e);
    z->e = NULL;
    z->n = 0;
}

const zip_entry *zip_find(const zip_archive *z, const char *name) {
    for (int i = 0; i < z->n; i++)
        if (!strcmp(z->e[i].name, name)) return &z->e[i];
    return NULL;
}

// Reads the zip64 extended-information extra field of a central directory
// entry: the 64-bit values of exactly those fields that hold 0xFFFFFFFF.
static int zip64_extra(const zip_archive *z, const unsigned char *x, size_t n, const char *name, uint64_t *usize,
                       uint64_t *csize, uint64_t *loff, vc_error *err) {
    int need_u = *usize == 0xFFFFFFFFu, need_c = *csize == 0xFFFFFFFFu, need_o = *loff == 0xFFFFFFFFu;
    while (n >= 4) {
        uint32_t id = rd16(x), len = rd16(x + 2);
        if (len > n - 4) break;
        if (id == 0x0001) {
            const unsigned char *p = x + 4;
            uint32_t left = len;
            uint64_t *want[3] = {need_u ? usize : NULL, need_c ? csize : NULL, need_o ? loff : NULL};
            for (int k = 0; k < 3; k++) {
                if (!want[k]) continue;
                if (left < 8) return vc_fail(err, VC_EINPUT, "%s: zip entry '%s': zip64 extra field is too short", z->path, name);
                *want[k] = rd64(p);
                p += 8;
                left -= 8;
            }
            return VC_OK;
        }
        x += 4 + len;
        n -= 4 + len;
    }
    if (need_u || need_c || need_o)
        return vc_fail(err, VC_EINPUT, "%s: zip entry '%s' has 32-bit sizes of 0xFFFFFFFF but no zip64 extra field",
                       z->path, name);
    return VC_OK;
}

// Finds the central directory: (offset, size, entry count).
static int find_directory(zip_archive *z, uint64_t *cd_off, uint64_t *cd_size, uint64_t *count, vc_error *err) {
    const unsigned char *b = z->buf;
    size_t size = z->size, eocd = SIZE_MAX;
    if (size >= EOCD_LEN) {
        size_t lo = size - EOCD_LEN > 65535 ? size - EOCD_LEN - 65535 : 0;
        for (size_t p = size - EOCD_LEN + 1; p-- > lo;)
            if (rd32(b + p) == SIG_EOCD && p + EOCD_LEN + rd16(b + p + 20) <= size) { eocd = p; break; }
    }
    if (eocd == SIZE_MAX)
        return vc_fail(err, VC_EINPUT, "%s: no zip end-of-central-directory record (the file is truncated or not a zip)", z->path);
    const unsigned char *e = b + eocd;
    int has64 = eocd >= LOC64_LEN && rd32(b + eocd - LOC64_LEN) == SIG_LOC64;
    if (!has64 && (rd16(e + 4) != 0 || rd16(e + 6) != 0 || rd16(e + 8) != rd16(e + 10)))   // zip64: see its record
        return vc_fail(err, VC_EINPUT, "%s: multi-disk zip archives are not supported", z->path);
    *count = rd16(e + 10);
    *cd_size = rd32(e + 12);
    *cd_off = rd32(e + 16);
    size_t end = eocd;   // the directory must end before this
    if (has64) {
        const unsigned char *l = b + eocd - LOC64_LEN;
        uint64_t off = rd64(l + 8);
        if (rd32(l + 4) != 0 || rd32(l + 16) != 1)
            return vc_fail(err, VC_EINPUT, "%s: multi-disk zip64 archives are not supported", z->path);
        if (off > eocd - LOC64_LEN || eocd - LOC64_LEN - off < EOCD64_LEN || rd32(b + off) != SIG_EOCD64)
            return vc_fail(err, VC_EINPUT, "%s: the zip64 locator points to no zip64 end-of-central-directory record", z->path);
        const unsigned char *r = b + off;
        if (rd32(r + 16) != 0 || rd32(r + 20) != 0 || rd64(r + 24) != rd64(r + 32))
            return vc_fail(err, VC_EINPUT, "%s: multi-disk zip64 archives are not supported", z->path);
        *count = rd64(r + 32);
        *cd_size = rd64(r + 40);
        *cd_off = rd64(r + 48);
        end = off;
        z->zip64 = 1;
    } else if (*count == 0xFFFF || *cd_size == 0xFFFFFFFFu || *cd_off == 0xFFFFFFFFu) {
        return vc_fail(err, VC_EINPUT, "%s: the zip needs a zip64 end-of-central-directory record and has none", z->path);
    }
    if (*cd_off > end || *cd_size > end - *cd_off)
        return vc_fail(err, VC_EINPUT, "%s: the zip central directory (offset %llu, %llu bytes) lies outside the file",
                       z->path, (unsigned long long)*cd_off, (unsigned long long)*cd_size);
    if (*count > *cd_size / CENTRAL_LEN || *count > MAX_ENTRIES)
        return vc_fail(err, VC_EINPUT, "%s: the zip claims %llu entries, more than its central directory can hold",
                       z->path, (unsigned long long)*count);
    return VC_OK;
}

int zip_open(zip_archive *z, const char *path, const unsigned char *buf, size_t size, vc_error *err) {
    memset(z, 0, sizeof *z);
    z->path = path;
    z->buf = buf;
    z->size = size;
    uint64_t cd_off = 0, cd_size = 0, count = 0;
    int rc = find_directory(z, &cd_off, &cd_size, &count, err);
    if (rc) return rc;
    z->e = calloc_check(count ? count : 1, sizeof(zip_entry));
    const unsigned char *p = buf + cd_off, *end = buf + cd_off + cd_size;
    for (uint64_t i = 0; i < count; i++) {
        if ((size_t)(end - p) < CENTRAL_LEN || rd32(p) != SIG_CENTRAL) {
            rc = vc_fail(err, VC_EINPUT, "%s: zip central directory entry %llu is damaged", path, (unsigned long long)i);
            break;
        }
        uint32_t flags = rd16(p + 8), method = rd16(p + 10), nlen = rd16(p + 28), xlen = rd16(p + 30),
                 clen = rd16(p + 32);
        if ((size_t)(end - p) - CENTRAL_LEN < (size_t)nlen + xlen + clen) {
            rc = vc_fail(err, VC_EINPUT, "%s: zip central directory entry %llu runs past the directory", path,
                         (unsigned long long)i);
            break;
        }
        zip_entry *e = &z->e[z->n];
        e->name = malloc_check(nlen + 1);
        memcpy(e->name, p + CENTRAL_LEN, nlen);
        e->name[nlen] = 0;
        z->n++;
        if (strlen(e->name) != nlen) { rc = vc_fail(err, VC_EINPUT, "%s: a zip entry name contains a NUL byte", path); break; }
        e->method = (int)method;
        e->crc = rd32(p + 16);
        e->csize = rd32(p + 20);
        e->usize = rd32(p + 24);
        uint64_t loff = rd32(p + 42);
        rc = zip64_extra(z, p + CENTRAL_LEN + nlen, xlen, e->name, &e->usize, &e->csize, &loff, err);
        if (rc) break;
        if (flags & 1) { rc = vc_fail(err, VC_EINPUT, "%s: zip entry '%s' is encrypted", path, vc_str(e->name)); break; }
        if (method != 0 && method != 8) {
            rc = vc_fail(err, VC_EINPUT, "%s: zip entry '%s' uses compression method %u; only stored and deflate are supported",
                         path, vc_str(e->name), method);
            break;
        }
        if (method == 0 && e->csize != e->usize) {
            rc = vc_fail(err, VC_EINPUT, "%s: stored zip entry '%s' has different compressed and uncompressed sizes", path, vc_str(e->name));
            break;
        }
        if (loff > size || size - loff < LOCAL_LEN || rd32(buf + loff) != SIG_LOCAL) {
            rc = vc_fail(err, VC_EINPUT, "%s: zip entry '%s': no local header at offset %llu (truncated or damaged file)",
                         path, vc_str(e->name), (unsigned long long)loff);
            break;
        }
        const unsigned char *l = buf + loff;
        uint64_t data = loff + LOCAL_LEN + rd16(l + 26) + rd16(l + 28);
        if (rd16(l + 26) != nlen || data > size || memcmp(l + LOCAL_LEN, e->name, nlen)) {
            rc = vc_fail(err, VC_EINPUT, "%s: zip entry '%s': its local header does not match the central directory", path, vc_str(e->name));
            break;
        }
        if (e->csize > size - data) {
            rc = vc_fail(err, VC_EINPUT, "%s: zip entry '%s' (%llu bytes at offset %llu) runs past the end of the file "
                         "(%zu bytes; truncated?)", path, vc_str(e->name), (unsigned long long)e->csize, (unsigned long long)data, size);
            break;
        }
        e->data = data;
        p += CENTRAL_LEN + nlen + xlen + clen;
    }
    if (rc) zip_close(z);
    return rc;
}

static uint32_t crc32_big(const unsigned char *p, size_t n) {
    uLong c = crc32(0L, Z_NULL, 0);
    while (n) {
        uInt k = n > (1u << 30) ? (1u << 30) : (uInt)n;
        c = crc32(c, p, k);
        p += k;
        n -= k;
    }
    return (uint32_t)c;
}

int zip_read(const zip_archive *z, const zip_entry *e, const unsigned char **data, unsigned char **owned,
             vc_error *err) {
    *data = NULL;
    *owned = NULL;
    const unsigned char *src = z->buf + e->data;
    if (e->method == 0) {
        if (crc32_big(src, e->csize) != e->crc)
            return vc_fail(err, VC_EINPUT, "%s: zip entry '%s' fails its CRC check (damaged file)", z->path, vc_str(e->name));
        *data = src;
        return VC_OK;
    }
    // Deflate expands at most ~1032:1; a larger claim is a lie, not a reason to allocate.
    if (e->usize > e->csize * 1032 + 1024 || e->usize > (uint64_t)SIZE_MAX / 2)
        return vc_fail(err, VC_EINPUT, "%s: zip entry '%s' claims %llu bytes from %llu compressed bytes", z->path,
                       e->name, (unsigned long long)e->usize, (unsigned long long)e->csize);
    unsigned char *out = malloc_check(e->usize);
    z_stream s;
    memset(&s, 0, sizeof s);
    if (inflateInit2(&s, -MAX_WBITS) != Z_OK) { free(out); return vc_fail(err, VC_EINTERNAL, "zlib: inflateInit2 failed"); }
    uint64_t in_left = e->csize, out_left = e->usize;
    s.next_in = (unsigned char *)(uintptr_t)src;
    s.next_out = out;
    int zr = Z_OK;
    while (zr == Z_OK) {
        if (s.avail_in == 0) { s.avail_in = in_left > (1u << 30) ? (1u << 30) : (uInt)in_left; in_left -= s.avail_in; }
        if (s.avail_out == 0) { s.avail_out = out_left > (1u << 30) ? (1u << 30) : (uInt)out_left; out_left -= s.avail_out; }
        uInt ai = s.avail_in, ao = s.avail_out;
        zr = inflate(&s, Z_NO_FLUSH);
        if (zr == Z_BUF_ERROR && (ai || ao) && (s.avail_in != ai || s.avail_out != ao)) zr = Z_OK;
        if (zr == Z_OK && s.avail_in == ai && s.avail_out == ao) zr = Z_BUF_ERROR;   // no progress: input ended early
    }
    int ok = zr == Z_STREAM_END && s.total_out == e->usize && out_left == 0 && s.avail_out == 0;
    inflateEnd(&s);
    if (!ok) {
        free(out);
        return vc_fail(err, VC_EINPUT, "%s: zip entry '%s' does not inflate to its %llu bytes (damaged file)", z->path,
                       e->name, (unsigned long long)e->usize);
    }
    if (crc32_big(out, e->usize) != e->crc) {
        free(out);
        return vc_fail(err, VC_EINPUT, "%s: zip entry '%s' fails its CRC check (damaged file)", z->path, vc_str(e->name));
    }
    *data = *owned = out;
    return VC_OK;
}
