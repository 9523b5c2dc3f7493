// safetensors.c: read and write the .safetensors container; see safetensors.h.
#include "safetensors.h"
#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "../engine/util.h"
#include "fileio.h"
#include "atomic_write.h"

static size_t dtype_bytes(const char *dt) {
    static const struct { const char *n; size_t b; } t[] = {
        {"F64", 8}, {"F32", 4}, {"F16", 2}, {"BF16", 2}, {"I64", 8}, {"I32", 4},
        {"I16", 2}, {"I8", 1}, {"U8", 1}, {"BOOL", 1}, {"U16", 2}, {"U32", 4}, {"U64", 8}};
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
        if (!strcmp(dt, t[i].n)) return t[i].b;
    return 0;
}

void st_free(st_file *f) {
    if (!f) return;
    for (int i = 0; i < f->n; i++) free(f->t[i].name);
    free(f->t);
    for (int i = 0; i < f->n_meta; i++) { free(f->meta_key[i]); free(f->meta_val[i]); }
    free(f->meta_key);
    free(f->meta_val);
    free(f->buf);
    memset(f, 0, sizeof *f);
}

static int parse_header(st_file *f, cJSON *h, vc_error *err) {
    const char *p = f->path;
    if (!cJSON_IsObject(h)) return vc_fail(err, VC_EINPUT, "%s: safetensors header is not a JSON object", p);
    int cap = cJSON_GetArraySize(h);
    f->t = calloc_check(cap, sizeof(st_tensor));
    f->meta_key = calloc_check(cap + 1, sizeof(char *));
    f->meta_val = calloc_check(cap + 1, sizeof(char *));
    for (cJSON *e = h->child; e; e = e->next) {
        if (!strcmp(e->string, "__metadata__")) {
            if (!cJSON_IsObject(e)) return vc_fail(err, VC_EINPUT, "%s: __metadata__ is not an object", p);
            int nm = cJSON_GetArraySize(e);
            free(f->meta_key); free(f->meta_val);
            f->meta_key = calloc_check(nm + 1, sizeof(char *));
            f->meta_val = calloc_check(nm + 1, sizeof(char *));
            for (cJSON *m = e->child; m; m = m->next) {
                if (!cJSON_IsString(m))
                    return vc_fail(err, VC_EINPUT, "%s: metadata value '%s' is not a string", p, vc_str(m->string));
                f->meta_key[f->n_meta] = strdup_check(m->string);
                f->meta_val[f->n_meta] = strdup_check(m->valuestring);
                f->n_meta++;
            }
            continue;
        }
        st_tensor *t = &f->t[f->n];
        cJSON *dt = cJSON_GetObjectItemCaseSensitive(e, "dtype");
        cJSON *sh = cJSON_GetObjectItemCaseSensitive(e, "shape");
        cJSON *of = cJSON_GetObjectItemCaseSensitive(e, "data_offsets");
        if (!cJSON_IsString(dt) || !cJSON_IsArray(sh) || !cJSON_IsArray(of) || cJSON_GetArraySize(of) != 2)
            return vc_fail(err, VC_EINPUT, "%s: tensor '%s' lacks dtype, shape or data_offsets", p, vc_str(e->string));
        size_t eb = dtype_bytes(dt->valuestring);
        if (!eb) return vc_fail(err, VC_EINPUT, "%s: tensor '%s' has unknown dtype '%s'", p, vc_str(e->string), vc_str(dt->valuestring));
        snprintf(t->dtype, sizeof t->dtype, "%s", vc_str(dt->valuestring));
        t->rank = cJSON_GetArraySize(sh);
        if (t->rank > 8) return vc_fail(err, VC_EINPUT, "%s: tensor '%s' has rank %d > 8", p, vc_str(e->string), t->rank);
        double count = 1;
        int k = 0;
        for (cJSON *d = sh->child; d; d = d->next, k++) {
            if (!cJSON_IsNumber(d) || d->valuedouble < 0 || d->valuedouble > 1e12 || d->valuedouble != (double)(int64_t)d->valuedouble)
                return vc_fail(err, VC_EINPUT, "%s: tensor '%s' has a bad shape", p, vc_str(e->string));
            t->dim[k] = (int64_t)d->valuedouble;
            count *= (double)t->dim[k];
        }
        double b = cJSON_GetArrayItem(of, 0)->valuedouble, en = cJSON_GetArrayItem(of, 1)->valuedouble;
        if (!cJSON_IsNumber(cJSON_GetArrayItem(of, 0)) || !cJSON_IsNumber(cJSON_GetArrayItem(of, 1)) ||
            b < 0 || en < b || en > (double)f->data_size)
            return vc_fail(err, VC_EINPUT, "%s: tensor '%s' has data offsets [%.0f, %.0f] outside the %zu data bytes (file truncated?)",
                           p, vc_str(e->string), b, en, f->data_size);
        t->begin = (size_t)b;
        t->end = (size_t)en;
        if ((double)(t->end - t->begin) != count * (double)eb)
            return vc_fail(err, VC_EINPUT, "%s: tensor '%s' has %zu bytes, its shape needs %.0f", p, vc_str(e->string),
                           t->end - t->begin, count * (double)eb);
        t->name = strdup_check(e->string);
        f->n++;
    }
    return VC_OK;
}

static int st_parse(st_file *f, vc_error *err);

int st_read(st_file *f, const char *path, vc_error *err) {
    memset(f, 0, sizeof *f);
    f->path = path;
    size_t sz;
    FILE *fp = vc_fopen_regular(path, &sz, err);
    if (!fp) return VC_EINPUT;
    if (sz < 8) { fclose(fp); return vc_fail(err, VC_EINPUT, "%s: too short to be a safetensors file (%zu bytes)", path, sz); }
    f->size = sz;
    f->buf = malloc_check(f->size + 1);
    size_t got = fread(f->buf, 1, f->size, fp);
    fclose(fp);
    if (got != f->size) { st_free(f); return vc_fail(err, VC_EINPUT, "%s: read error", path); }
    return st_parse(f, err);
}

int st_read_memory(st_file *f, const void *data, size_t size, const char *name, vc_error *err) {
    memset(f, 0, sizeof *f);
    f->path = name;
    if (size < 8) return vc_fail(err, VC_EINPUT, "%s: too short to be a safetensors file (%zu bytes)", name, size);
    f->size = size;
    f->buf = malloc_check(size + 1);
    memcpy(f->buf, data, size);
    return st_parse(f, err);
}

// Parses f->buf (f->size bytes, f->path for messages); frees f on failure.
static int st_parse(st_file *f, vc_error *err) {
    const char *path = f->path;
    uint64_t hl = 0;
    for (int i = 7; i >= 0; i--) hl = (hl << 8) | f->buf[i];
    if (hl == 0 || hl > f->size - 8) {
        size_t size = f->size;
        st_free(f);
        return vc_fail(err, VC_EINPUT, "%s: header length %llu does not fit in the %zu-byte file (truncated or not safetensors)",
                       path, (unsigned long long)hl, size);
    }
    f->data = f->buf + 8 + hl;
    f->data_size = f->size - 8 - hl;
    cJSON *h = cJSON_ParseWithLength((const char *)f->buf + 8, (size_t)hl);
    if (!h) { st_free(f); return vc_fail(err, VC_EINPUT, "%s: safetensors header is not valid JSON", path); }
    f->path = path;
    int rc = parse_header(f, h, err);
    cJSON_Delete(h);
    if (rc) { st_free(f); return rc; }
    return VC_OK;
}

const st_tensor *st_find(const st_file *f, const char *name) {
    for (int i = 0; i < f->n; i++)
        if (!strcmp(f->t[i].name, name)) return &f->t[i];
    return NULL;
}

const char *st_meta(const st_file *f, const char *key) {
    for (int i = 0; i < f->n_meta; i++)
        if (!strcmp(f->meta_key[i], key)) return f->meta_val[i];
    return NULL;
}

int st_write_fp(FILE *fp, int n, const st_out *t, int n_meta, const char *const *keys, const char *const *vals) {
    cJSON *h = cJSON_CreateObject();
    if (n_meta) {
        cJSON *m = cJSON_AddObjectToObject(h, "__metadata__");
        for (int i = 0; i < n_meta; i++) cJSON_AddStringToObject(m, keys[i], vals[i]);
    }
    size_t off = 0;
    for (int i = 0; i < n; i++) {
        cJSON *e = cJSON_AddObjectToObject(h, t[i].name);
        cJSON_AddStringToObject(e, "dtype", "F32");
        cJSON *sh = cJSON_AddArrayToObject(e, "shape");
        size_t cnt = 1;
        for (int k = 0; k < t[i].rank; k++) {
            cJSON_AddItemToArray(sh, cJSON_CreateNumber(t[i].dim[k]));
            cnt *= (size_t)t[i].dim[k];
        }
        cJSON *of = cJSON_AddArrayToObject(e, "data_offsets");
        cJSON_AddItemToArray(of, cJSON_CreateNumber((double)off));
        off += cnt * 4;
        cJSON_AddItemToArray(of, cJSON_CreateNumber((double)off));
    }
    char *js = cJSON_PrintUnformatted(h);
    cJSON_Delete(h);
    size_t hl = strlen(js), pad = (8 - hl % 8) % 8;
    uint64_t L = hl + pad;
    unsigned char lb[8];
    for (int i = 0; i < 8; i++) lb[i] = (unsigned char)(L >> (8 * i));
    int ok = fwrite(lb, 1, 8, fp) == 8 && fwrite(js, 1, hl, fp) == hl && fwrite("        ", 1, pad, fp) == pad;
    free(js);
    for (int i = 0; i < n && ok; i++) {
        size_t cnt = 1;
        for (int k = 0; k < t[i].rank; k++) cnt *= (size_t)t[i].dim[k];
        ok = fwrite(t[i].data, 4, cnt, fp) == cnt;   // x86/ARM hosts are little-endian
    }
    return ok;
}

int st_write(const char *path, int n, const st_out *t, int n_meta,
             const char *const *keys, const char *const *vals, vc_error *err) {
    vc_wfile w;
    if (vc_wopen(&w, path, err)) return VC_EINPUT;
    return vc_wcommit(&w, st_write_fp(w.fp, n, t, n_meta, keys, vals), err);
}
