// npy.c: read and write .npy arrays; see npy.h.
#include "npy.h"
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "../engine/util.h"
#include "fileio.h"
#include "atomic_write.h"

void npy_free(vc_npy *a) {
    free(a->f);
    free(a->i);
    memset(a, 0, sizeof *a);
}

// Finds 'key': VALUE in the header dict; returns a pointer to VALUE or NULL.
static const char *dict_get(const char *h, const char *key) {
    char pat[32];
    snprintf(pat, sizeof pat, "'%s'", key);
    const char *p = strstr(h, pat);
    if (!p) return NULL;
    p = strchr(p + strlen(pat), ':');
    if (!p) return NULL;
    p++;
    while (*p == ' ') p++;
    return p;
}

// Reads the magic, the header dict and the shape from fp (at offset 0) into
// a (rank, dim, size), checks what both readers need (C order, a
// little-endian dtype of 1..8 bytes, of the right kind), and leaves fp at the
// first data byte. dt: the dtype string ("<f4", ...); *bytes: its size.
static int read_header(FILE *fp, const char *path, vc_npy *a, char kind, char dt[8], int *bytes, vc_error *err) {
    unsigned char pre[12];
    if (fread(pre, 1, 10, fp) != 10 || memcmp(pre, "\x93NUMPY", 6)) return vc_fail(err, VC_EINPUT, "%s: not a .npy file", path);
    size_t hl;
    if (pre[6] == 1) hl = pre[8] | (pre[9] << 8);
    else {
        if (fread(pre + 10, 1, 2, fp) != 2) return vc_fail(err, VC_EINPUT, "%s: truncated .npy header", path);
        hl = (size_t)pre[8] | ((size_t)pre[9] << 8) | ((size_t)pre[10] << 16) | ((size_t)pre[11] << 24);
    }
    if (hl > 1 << 20) return vc_fail(err, VC_EINPUT, "%s: .npy header too large", path);
    char *hdr = malloc_check(hl + 1);
    int rc = VC_OK;
    if (fread(hdr, 1, hl, fp) != hl) { rc = vc_fail(err, VC_EINPUT, "%s: truncated .npy header", path); goto done; }
    hdr[hl] = 0;
    const char *descr = dict_get(hdr, "descr"), *fo = dict_get(hdr, "fortran_order"), *shape = dict_get(hdr, "shape");
    if (!descr || !fo || !shape || *shape != '(') { rc = vc_fail(err, VC_EINPUT, "%s: malformed .npy header", path); goto done; }
    if (!strncmp(fo, "True", 4)) { rc = vc_fail(err, VC_EINPUT, "%s: Fortran-order arrays are not supported (use np.ascontiguousarray)", path); goto done; }
    memset(dt, 0, 8);
    if (descr[0] != '\'' || sscanf(descr + 1, "%7[^']", dt) != 1) { rc = vc_fail(err, VC_EINPUT, "%s: malformed dtype in .npy header", path); goto done; }
    a->size = 1;
    const char *s = shape + 1;
    while (*s && *s != ')') {
        while (*s == ' ' || *s == ',') s++;
        if (*s == ')') break;
        char *end;
        long long v = strtoll(s, &end, 10);
        if (end == s || v < 0 || a->rank >= 8) { rc = vc_fail(err, VC_EINPUT, "%s: malformed shape in .npy header", path); goto done; }
        a->dim[a->rank++] = v;
        if (v && a->size > ((size_t)1 << 40) / (size_t)v) { rc = vc_fail(err, VC_EINPUT, "%s: .npy array too large", path); goto done; }
        a->size *= (size_t)v;
        s = end;
    }
    char order = dt[0], type = dt[1];
    *bytes = atoi(dt + 2);
    if ((order != '<' && order != '|' && order != '=') || *bytes < 1 || *bytes > 8) {
        rc = vc_fail(err, VC_EINPUT, "%s: dtype '%s' not supported (little-endian only)", path, dt); goto done;
    }
    int isfloat = type == 'f', isint = type == 'i' || type == 'u';
    if ((kind == 'f' && !isfloat) || (kind == 'i' && !isint))
        rc = vc_fail(err, VC_EINPUT, "%s: dtype '%s' is not %s", path, dt, kind == 'f' ? "a float type" : "an integer type");
done:
    free(hdr);
    return rc;
}

int npy_read_header(vc_npy *a, const char *path, char dtype[8], long *data_offset, vc_error *err) {
    memset(a, 0, sizeof *a);
    size_t fsize;
    FILE *fp = vc_fopen_regular(path, &fsize, err);
    if (!fp) return VC_EINPUT;
    int bytes;
    int rc = read_header(fp, path, a, 0, dtype, &bytes, err);
    if (!rc) *data_offset = ftell(fp);
    fclose(fp);
    return rc;
}

int npy_read(vc_npy *a, const char *path, char kind, vc_error *err) {
    memset(a, 0, sizeof *a);
    size_t fsize;
    FILE *fp = vc_fopen_regular(path, &fsize, err);
    if (!fp) return VC_EINPUT;
    char dt[8];
    int bytes = 0;
    unsigned char *raw = NULL;
    int rc = read_header(fp, path, a, kind, dt, &bytes, err);
    if (rc) goto done;
    // the header's shape against the bytes the file really has, before allocating
    long at = ftell(fp);
    size_t need;
    if (at < 0 || __builtin_mul_overflow(a->size, (size_t)bytes, &need) || need > fsize - (size_t)at) {
        rc = vc_fail(err, VC_EINPUT, "%s: .npy header's shape needs %zu elements of %d bytes, the file holds %zu bytes after its header (truncated?)",
                     path, a->size, bytes, at < 0 ? 0 : fsize - (size_t)at);
        goto done;
    }
    raw = malloc_check(need);
    if (fread(raw, (size_t)bytes, a->size, fp) != a->size) {
        rc = vc_fail(err, VC_EINPUT, "%s: .npy data is truncated (%zu elements expected)", path, a->size); goto done;
    }
    if (kind == 'f') {
        a->f = malloc_check(a->size * sizeof(float));
        for (size_t k = 0; k < a->size; k++) {
            if (bytes == 4) memcpy(&a->f[k], raw + 4 * k, 4);
            else if (bytes == 8) { double d; memcpy(&d, raw + 8 * k, 8); a->f[k] = (float)d; }
            else if (bytes == 2) {   // IEEE half
                uint16_t h; memcpy(&h, raw + 2 * k, 2);
                int e = (h >> 10) & 31, mnt = h & 1023;
                float v = e == 0 ? mnt * (1.0f / 16777216.0f) : e == 31 ? (mnt ? NAN : INFINITY) : ldexpf(1.0f + mnt / 1024.0f, e - 15);
                a->f[k] = (h & 0x8000) ? -v : v;
            } else { rc = vc_fail(err, VC_EINPUT, "%s: float dtype '%s' not supported", path, dt); goto done; }
            if (!isfinite(a->f[k])) {   // one NaN input makes every score NaN: refuse it, naming where
                long long ix[8] = {0};
                size_t rest = k;
                for (int q = a->rank - 1; q >= 0; q--) {
                    ix[q] = (long long)(rest % (size_t)a->dim[q]);   // dim > 0: the array holds element k
                    rest /= (size_t)a->dim[q];
                }
                char at[200] = "[";
                for (int q = 0; q < a->rank; q++)
                    snprintf(at + strlen(at), sizeof at - strlen(at), "%lld%s", ix[q], q + 1 < a->rank ? ", " : "");
                strcat(at, "]");
                rc = vc_fail(err, VC_EINPUT, "%s: non-finite value %g at index %s (flat %zu)", path, a->f[k], at, k);
                goto done;
            }
        }
    } else {
        a->i = malloc_check(a->size * sizeof(long long));
        for (size_t k = 0; k < a->size; k++) {
            unsigned char *p = raw + (size_t)bytes * k;
            uint64_t u = 0;
            for (int b = bytes - 1; b >= 0; b--) u = (u << 8) | p[b];
            long long v = (long long)u;
            if (dt[1] == 'i' && bytes < 8 && (u >> (8 * bytes - 1)) & 1) v = (long long)(u | (~0ULL << (8 * bytes)));
            a->i[k] = v;
        }
    }
done:
    free(raw);
    fclose(fp);
    if (rc) npy_free(a);
    return rc;
}

int npy_write(const char *path, const float *data, int rank, const long long *dim, vc_error *err) {
    char shape[256] = "";
    size_t n = 1;
    for (int k = 0; k < rank; k++) {
        snprintf(shape + strlen(shape), sizeof shape - strlen(shape), "%lld%s", dim[k], rank == 1 ? "," : k + 1 < rank ? ", " : "");
        n *= (size_t)dim[k];
    }
    char hdr[512];
    int hl = snprintf(hdr, sizeof hdr, "{'descr': '<f4', 'fortran_order': False, 'shape': (%s), }", shape);
    int total = 10 + hl + 1, pad = (64 - total % 64) % 64;
    memset(hdr + hl, ' ', pad);
    hl += pad;
    hdr[hl++] = '\n';
    vc_wfile w;
    if (vc_wopen(&w, path, err)) return VC_EINPUT;
    unsigned char pre[10] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, (unsigned char)(hl & 255), (unsigned char)(hl >> 8)};
    int ok = fwrite(pre, 1, 10, w.fp) == 10 && fwrite(hdr, 1, hl, w.fp) == (size_t)hl && fwrite(data, 4, n, w.fp) == n;
    return vc_wcommit(&w, ok, err);
}
