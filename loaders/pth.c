// pth.c: the PyTorch checkpoint reader of pth.h. The layouts are those
// torch/serialization.py writes (_save for zip, _legacy_save for legacy) and
// reads back (_load, _legacy_load); the pickle parts go through pickle.c.
#include "pth.h"
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include "../engine/util.h"

// The legacy format starts with the pickled magic number 0x1950a86a20f9469cfc6c:
// PROTO n, (protocol 4+: FRAME of 8 length bytes,) LONG1 of these 10 bytes, STOP.
static const unsigned char LEGACY_MAGIC[10] = {0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19};

// Length of the magic-number pickle at the start of buf, or 0 if it is not there.
static size_t legacy_magic(const unsigned char *buf, size_t size) {
    if (size < 2 || buf[0] != 0x80 || buf[1] < 2 || buf[1] > 5) return 0;
    size_t p = 2;
    if (buf[1] >= 4 && size > p && buf[p] == 0x95) p += 9;   // FRAME
    if (size < p + 13 || buf[p] != 0x8a || buf[p + 1] != 10 || memcmp(buf + p + 2, LEGACY_MAGIC, 10) ||
        buf[p + 12] != '.')
        return 0;
    return p + 13;
}
enum { LEGACY_PROTOCOL = 1001, MAX_KEY = 256 };
static const int64_t MAX_ELEMS = (int64_t)1 << 48;

const char *pth_shown(char out[80], const char *s) {
    size_t k = 0;
    for (; *s && k < 76; s++) out[k++] = (*s >= 32 && *s < 127) ? *s : '?';
    if (*s) { out[k++] = '.'; out[k++] = '.'; out[k++] = '.'; }
    out[k] = 0;
    return out;
}

// ---- string -> index hashes (open addressing, power-of-two tables) ----------
typedef const char *(*key_fn)(const pth_file *f, int i);
static const char *storage_key(const pth_file *f, int i) { return f->storages[i].key; }
static const char *tensor_key(const pth_file *f, int i) { return f->t[i].name; }

static size_t hash_slot(const pth_file *f, const int *tab, size_t cap, key_fn kf, const char *key) {
    uint64_t h = 1469598103934665603ull;
    for (const char *s = key; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
    size_t i = (size_t)h & (cap - 1);
    while (tab[i] >= 0 && strcmp(kf(f, tab[i]), key)) i = (i + 1) & (cap - 1);
    return i;
}

static int *hash_build(const pth_file *f, int n, key_fn kf, size_t *cap) {
    size_t c = 16;
    while (c < 2 * (size_t)n + 2) c *= 2;
    int *tab = malloc_check(c * sizeof(int));
    for (size_t i = 0; i < c; i++) tab[i] = -1;
    for (int i = 0; i < n; i++) tab[hash_slot(f, tab, c, kf, kf(f, i))] = i;   // a later equal key wins
    *cap = c;
    return tab;
}

static int find_storage(const pth_file *f, const char *key) {
    return f->n_keys ? f->keys[hash_slot(f, f->keys, f->n_keys, storage_key, key)] : -1;
}

const pth_tensor *pth_find(const pth_file *f, const char *name) {
    if (!f->n_names) return NULL;
    int i = f->names[hash_slot(f, f->names, f->n_names, tensor_key, name)];
    return i >= 0 ? &f->t[i] : NULL;
}

static int add_storage(pth_file *f, const char *key, pk_dtype dtype, int64_t numel) {
    if (f->n_storages == f->cap_storages) {
        f->cap_storages = f->cap_storages ? 2 * f->cap_storages : 64;
        f->storages = realloc(f->storages, (size_t)f->cap_storages * sizeof(pth_storage));
        VC_ASSERT(f->storages);
    }
    int i = f->n_storages++;
    pth_storage *s = &f->storages[i];
    memset(s, 0, sizeof *s);
    s->key = strdup_check(key);
    s->dtype = dtype;
    s->numel = numel;
    s->root = i;
    if (2 * (size_t)f->n_storages + 2 > f->n_keys) {   // grow and rehash
        free(f->keys);
        f->keys = hash_build(f, f->n_storages, storage_key, &f->n_keys);
    } else {
        f->keys[hash_slot(f, f->keys, f->n_keys, storage_key, key)] = i;
    }
    return i;
}

// ---- persistent ids -----------------------------------------------------------
typedef struct {
    pth_file *f;
    int storages_ok;          // only the state-dict pickle may refer to storages
} reader;

// ('storage', torch.XStorage, key, location, numel) [+ view (key, offset, size) or None in legacy files]
static int persistent(void *ctx, pk_vm *vm, pk_obj *pid, pk_obj **out, vc_error *err) {
    reader *r = ctx;
    pth_file *f = r->f;
    char k1[80], k2[80];
    size_t want = f->legacy ? 6 : 5;
    if (!r->storages_ok) return vc_fail(err, VC_EINPUT, "%s: a header pickle refers to a storage", f->path);
    pk_obj **it = pid->items;
    if (pid->t != PK_TUPLE || pid->n != want || it[0]->t != PK_STR || strcmp(it[0]->s, "storage"))
        return vc_fail(err, VC_EINPUT, "%s: a persistent id is not ('storage', type, key, location, size%s)", f->path,
                       f->legacy ? ", view" : "");
    if (it[1]->t != PK_GLOBAL || it[1]->i < PK_G_STORAGE || it[2]->t != PK_STR || it[3]->t != PK_STR ||
        it[4]->t != PK_INT || it[4]->i < 0 || it[4]->i > MAX_ELEMS || it[2]->len == 0 || it[2]->len > MAX_KEY ||
        strlen(it[2]->s) != it[2]->len)
        return vc_fail(err, VC_EINPUT, "%s: a storage reference is malformed (%s, %s, %s, %s)", f->path,
                       pk_type_name(it[1]), pk_type_name(it[2]), pk_type_name(it[3]), pk_type_name(it[4]));
    pk_dtype dtype = (pk_dtype)(it[1]->i - PK_G_STORAGE);
    int idx = find_storage(f, it[2]->s);
    if (idx < 0) idx = add_storage(f, it[2]->s, dtype, it[4]->i);
    pth_storage *s = &f->storages[idx];
    if (s->root != idx || s->dtype != dtype || s->numel != it[4]->i)
        return vc_fail(err, VC_EINPUT, "%s: storage '%s' is referred to with different types or sizes", f->path,
                       pth_shown(k1, it[2]->s));
    if (want == 6 && it[5]->t != PK_NONE) {   // a legacy storage view
        pk_obj *v = it[5];
        if (v->t != PK_TUPLE || v->n != 3 || v->items[0]->t != PK_STR || v->items[1]->t != PK_INT ||
            v->items[2]->t != PK_INT || v->items[0]->len == 0 || v->items[0]->len > MAX_KEY ||
            strlen(v->items[0]->s) != v->items[0]->len)
            return vc_fail(err, VC_EINPUT, "%s: a storage view of '%s' is malformed", f->path, pth_shown(k1, it[2]->s));
        int64_t off = v->items[1]->i, n = v->items[2]->i;
        if (off < 0 || n < 0 || off > s->numel || n > s->numel - off)
            return vc_fail(err, VC_EINPUT, "%s: storage view '%s' (offset %lld, %lld elements) lies outside storage '%s' "
                           "of %lld elements", f->path, pth_shown(k1, v->items[0]->s), (long long)off, (long long)n,
                           pth_shown(k2, it[2]->s), (long long)s->numel);
        int vi = find_storage(f, v->items[0]->s);
        if (vi < 0) {
            vi = add_storage(f, v->items[0]->s, dtype, n);
            f->storages[vi].root = idx;
            f->storages[vi].view_offset = off;
        } else if (f->storages[vi].root != idx || f->storages[vi].view_offset != off || f->storages[vi].numel != n) {
            return vc_fail(err, VC_EINPUT, "%s: storage view '%s' is defined twice, differently", f->path,
                           pth_shown(k1, v->items[0]->s));
        }
        idx = vi;
    }
    *out = pk_new_storage(vm, idx, dtype);
    if (!*out) return vc_fail(err, VC_EINPUT, "%s: too many pickle objects", f->path);
    return VC_OK;
}

// ---- the state dict -------------------------------------------------------------
static int check_tensor(pth_file *f, pth_tensor *t, vc_error *err) {
    char k1[80], k2[80];
    const pth_storage *s = &f->storages[t->storage];
    uint64_t numel = 1, last = 0;   // last: highest element index used, relative to the offset
    for (int k = 0; k < t->rank; k++) {
        if (__builtin_mul_overflow(numel, (uint64_t)t->dim[k], &numel)) numel = UINT64_MAX;
        uint64_t step;
        if (t->dim[k] > 0 && (__builtin_mul_overflow((uint64_t)(t->dim[k] - 1), (uint64_t)t->stride[k], &step) ||
                              __builtin_add_overflow(last, step, &last)))
            last = UINT64_MAX;
    }
    if (numel > (uint64_t)MAX_ELEMS)
        return vc_fail(err, VC_EINPUT, "%s: tensor '%s' has too many elements", f->path, pth_shown(k1, t->name));
    t->numel = (size_t)numel;
    if (numel > 0 && (last >= (uint64_t)MAX_ELEMS || (uint64_t)t->offset + last >= (uint64_t)s->numel))
        return vc_fail(err, VC_EINPUT, "%s: tensor '%s' (storage offset %lld, shape/stride reaching %llu more elements) "
                       "lies outside its storage '%s' of %lld elements", f->path, pth_shown(k1, t->name),
                       (long long)t->offset, last >= (uint64_t)MAX_ELEMS ? (unsigned long long)MAX_ELEMS : (unsigned long long)last,
                       pth_shown(k2, s->key), (long long)s->numel);
    return VC_OK;
}

static int collect(pth_file *f, pk_obj *top, vc_error *err) {
    if (top->t != PK_DICT)
        return vc_fail(err, VC_EINPUT, "%s: holds a %s, not a state dict (a dict of tensors)", f->path, pk_type_name(top));
    pk_obj *d = top;
    static const char *const nest[] = {"state_dict", "model"};
    for (int k = 0; k < 2 && d == top; k++) {
        pk_obj *x = pk_dict_get(top, nest[k]);
        if (x && x->t == PK_DICT) { d = x; f->nested = nest[k]; }
    }
    size_t pairs = d->n / 2;
    f->t = calloc_check(pairs ? pairs : 1, sizeof(pth_tensor));
    for (size_t i = 0; i < pairs; i++) {
        pk_obj *k = d->items[2 * i], *v = d->items[2 * i + 1];
        if (k->t != PK_STR || v->t != PK_TENSOR) { f->n_other++; continue; }
        pth_tensor *t = &f->t[f->n++];
        t->name = strdup_check(k->s);
        const pk_tensor *pt = v->tensor;
        t->dtype = pt->dtype;
        t->rank = pt->rank;
        memcpy(t->dim, pt->dim, sizeof t->dim);
        memcpy(t->stride, pt->stride, sizeof t->stride);
        t->offset = pt->offset;
        t->storage = pt->storage;
    }
    if (!f->n)
        return vc_fail(err, VC_EINPUT, "%s: holds a dict with no tensors, not a state dict", f->path);
    int all = 1;
    for (int i = 0; i < f->n && all; i++) all = !strncmp(f->t[i].name, "module.", 7);
    if (all) {
        f->stripped_module = 1;
        for (int i = 0; i < f->n; i++) memmove(f->t[i].name, f->t[i].name + 7, strlen(f->t[i].name + 7) + 1);
    }
    for (int i = 0; i < f->n; i++) {
        int rc = check_tensor(f, &f->t[i], err);
        if (rc) return rc;
    }
    f->names = hash_build(f, f->n, tensor_key, &f->n_names);
    return VC_OK;
}

// ---- zip ------------------------------------------------------------------------
static int read_zip(pth_file *f, pk_vm *vm, reader *r, vc_error *err) {
    int rc = zip_open(&f->zip, f->path, f->buf, f->size, err);
    if (rc) return rc;
    for (int i = 0; i < f->zip.n; i++)
        if (strstr(f->zip.e[i].name, "constants.pkl") || strstr(f->zip.e[i].name, "/code/"))
            return vc_fail(err, VC_EINPUT, "%s: a TorchScript archive (torch.jit.save), not a state dict; "
                           "save model.state_dict() with torch.save instead", f->path);
    const zip_entry *pkl = NULL;
    for (int i = 0; i < f->zip.n && !pkl; i++) {
        const char *nm = f->zip.e[i].name, *slash = strchr(nm, '/');
        size_t len = strlen(nm);
        if (len >= 8 && !strcmp(nm + len - 8, "data.pkl") && (slash ? slash == nm + len - 9 : len == 8)) pkl = &f->zip.e[i];
    }
    if (!pkl) return vc_fail(err, VC_EINPUT, "%s: a zip without data.pkl, so not a torch.save checkpoint", f->path);
    size_t plen = strlen(pkl->name) - 8;
    f->prefix = malloc_check(plen + 1);
    memcpy(f->prefix, pkl->name, plen);
    f->prefix[plen] = 0;
    char *name = malloc_check(plen + MAX_KEY + 16);
    sprintf(name, "%sbyteorder", f->prefix);
    const zip_entry *bo = zip_find(&f->zip, name);
    if (bo) {
        const unsigned char *d;
        unsigned char *own;
        rc = zip_read(&f->zip, bo, &d, &own, err);
        if (!rc && !(bo->usize == 6 && !memcmp(d, "little", 6)))
            rc = vc_fail(err, VC_EINPUT, "%s: the tensors are stored big-endian; only little-endian files are supported", f->path);
        free(own);
    }
    const unsigned char *data = NULL;
    unsigned char *owned = NULL;
    pk_obj *top = NULL;
    if (!rc) rc = zip_read(&f->zip, pkl, &data, &owned, err);
    if (!rc) {
        size_t used;
        r->storages_ok = 1;
        rc = pk_load(vm, data, pkl->usize, &used, &top, err);
    }
    free(owned);
    for (int i = 0; i < f->n_storages && !rc; i++) {
        pth_storage *s = &f->storages[i];
        char k1[80];
        sprintf(name, "%sdata/%s", f->prefix, s->key);
        s->entry = zip_find(&f->zip, name);
        if (!s->entry)
            rc = vc_fail(err, VC_EINPUT, "%s: storage '%s' (zip entry data/%s) is missing", f->path, pth_shown(k1, s->key), pth_shown(k1, s->key));
        else if (s->entry->usize < (uint64_t)s->numel * pk_dtype_size[s->dtype])
            rc = vc_fail(err, VC_EINPUT, "%s: storage '%s' holds %llu bytes, its reference says %lld %s elements", f->path,
                         pth_shown(k1, s->key), (unsigned long long)s->entry->usize, (long long)s->numel, pk_dtype_names[s->dtype]);
    }
    free(name);
    if (!rc) rc = collect(f, top, err);
    return rc;
}

// ---- legacy -----------------------------------------------------------------------
static int read_legacy(pth_file *f, pk_vm *vm, reader *r, vc_error *err) {
    size_t pos = legacy_magic(f->buf, f->size), used;
    pk_obj *o;
    f->legacy = 1;
    int rc = pk_load(vm, f->buf + pos, f->size - pos, &used, &o, err);
    if (rc) return rc;
    if (o->t != PK_INT || o->i != LEGACY_PROTOCOL)
        return vc_fail(err, VC_EINPUT, "%s: legacy checkpoint protocol %lld is not supported (only %d)", f->path,
                       o->t == PK_INT ? (long long)o->i : -1LL, LEGACY_PROTOCOL);
    pos += used;
    if ((rc = pk_load(vm, f->buf + pos, f->size - pos, &used, &o, err))) return rc;
    pk_obj *le = pk_dict_get(o, "little_endian");
    if (o->t != PK_DICT) return vc_fail(err, VC_EINPUT, "%s: the legacy sys_info header is not a dict", f->path);
    if (le && le->t == PK_BOOL && !le->i)
        return vc_fail(err, VC_EINPUT, "%s: written on a big-endian machine; only little-endian files are supported", f->path);
    pos += used;
    r->storages_ok = 1;
    pk_obj *top;
    if ((rc = pk_load(vm, f->buf + pos, f->size - pos, &used, &top, err))) return rc;
    r->storages_ok = 0;
    pos += used;
    pk_obj *keys;
    if ((rc = pk_load(vm, f->buf + pos, f->size - pos, &used, &keys, err))) return rc;
    pos += used;
    if (keys->t != PK_LIST) return vc_fail(err, VC_EINPUT, "%s: the legacy storage key list is a %s", f->path, pk_type_name(keys));
    char k1[80];
    for (size_t i = 0; i < keys->n; i++) {
        pk_obj *k = keys->items[i];
        int idx = k->t == PK_STR ? find_storage(f, k->s) : -1;
        if (idx < 0 || f->storages[idx].root != idx)
            return vc_fail(err, VC_EINPUT, "%s: the legacy storage list names %s '%s', which no tensor uses", f->path,
                           k->t == PK_STR ? "storage" : "a non-string", k->t == PK_STR ? pth_shown(k1, k->s) : "?");
        pth_storage *s = &f->storages[idx];
        if (s->bytes) return vc_fail(err, VC_EINPUT, "%s: the legacy storage list names '%s' twice", f->path, pth_shown(k1, s->key));
        if (f->size - pos < 8)
            return vc_fail(err, VC_EINPUT, "%s: the file ends before storage '%s' (%zu of %zu storages read; truncated?)",
                           f->path, pth_shown(k1, s->key), i, keys->n);
        uint64_t n = 0;
        for (int b = 7; b >= 0; b--) n = n << 8 | f->buf[pos + b];
        pos += 8;
        if (n != (uint64_t)s->numel)
            return vc_fail(err, VC_EINPUT, "%s: storage '%s' holds %llu elements, its reference says %lld", f->path,
                           pth_shown(k1, s->key), (unsigned long long)n, (long long)s->numel);
        uint64_t bytes = n * (uint64_t)pk_dtype_size[s->dtype];
        if (bytes > f->size - pos)
            return vc_fail(err, VC_EINPUT, "%s: storage '%s' (%llu bytes) runs past the end of the file (%zu of %zu "
                           "storages complete; truncated?)", f->path, pth_shown(k1, s->key), (unsigned long long)bytes, i, keys->n);
        s->bytes = f->buf + pos;
        pos += bytes;
    }
    for (int i = 0; i < f->n_storages; i++)
        if (f->storages[i].root == i && !f->storages[i].bytes)
            return vc_fail(err, VC_EINPUT, "%s: storage '%s' is used but missing from the legacy storage list", f->path,
                           pth_shown(k1, f->storages[i].key));
    return collect(f, top, err);
}

// ---- entry points -------------------------------------------------------------------
int pth_read_mem(pth_file *f, const char *path, const unsigned char *buf, size_t size, vc_error *err) {
    memset(f, 0, sizeof *f);
    f->path = strdup_check(path);
    f->buf = buf;
    f->size = size;
    reader r = {f, 0};
    int rc;
    if (zip_is_zip(buf, size)) {
        pk_vm *vm = pk_vm_new(f->path, persistent, &r);
        rc = read_zip(f, vm, &r, err);
        pk_vm_free(vm);
    } else if (legacy_magic(buf, size)) {
        pk_vm *vm = pk_vm_new(f->path, persistent, &r);
        rc = read_legacy(f, vm, &r, err);
        pk_vm_free(vm);
    } else if (size >= 262 && !memcmp(buf + 257, "ustar", 5)) {
        rc = vc_fail(err, VC_EINPUT, "%s: a tar-format checkpoint (torch < 0.1.10); re-save it with a newer torch", path);
    } else if (size >= 3 && buf[0] == 0x80 && buf[1] <= 5) {
        rc = vc_fail(err, VC_EINPUT, "%s: a bare pickle, not a torch.save checkpoint (no zip, no legacy magic number)", path);
    } else {
        rc = vc_fail(err, VC_EINPUT, "%s: not a PyTorch checkpoint (neither a zip, as torch >= 1.6 writes, nor the legacy format)",
                     path);
    }
    if (rc) pth_free(f);
    return rc;
}

int pth_read(pth_file *f, const char *path, vc_error *err) {
    memset(f, 0, sizeof *f);
    int fd = open(path, O_RDONLY);
    if (fd < 0) return vc_fail(err, VC_EINPUT, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return vc_fail(err, VC_EINPUT, "%s: not a regular file", path);
    }
    if (st.st_size == 0) { close(fd); return vc_fail(err, VC_EINPUT, "%s: the file is empty", path); }
    void *map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (map == MAP_FAILED) return vc_fail(err, VC_EINPUT, "%s: cannot map: %s", path, strerror(errno));
    int rc = pth_read_mem(f, path, map, (size_t)st.st_size, err);
    if (rc) { munmap(map, (size_t)st.st_size); return rc; }
    f->map = map;
    return VC_OK;
}

void pth_free(pth_file *f) {
    for (int i = 0; i < f->n; i++) free(f->t[i].name);
    free(f->t);
    for (int i = 0; i < f->n_storages; i++) { free(f->storages[i].key); free(f->storages[i].owned); }
    free(f->storages);
    free(f->keys);
    free(f->names);
    free(f->prefix);
    zip_close(&f->zip);
    if (f->map) munmap(f->map, f->size);
    free(f->path);
    memset(f, 0, sizeof *f);
}

int pth_float32(pth_file *f, const pth_tensor *t, const float **data, float **owned, vc_error *err) {
    char k1[80];
    *data = NULL;
    *owned = NULL;
    if (t->dtype != PK_F32)
        return vc_fail(err, VC_EINPUT, "%s: tensor '%s' is %s (torch.%s); only float32 tensors can be loaded", f->path,
                       pth_shown(k1, t->name), pk_dtype_names[t->dtype], pk_storage_names[t->dtype]);
    const pth_storage *s = &f->storages[t->storage];
    pth_storage *root = &f->storages[s->root];
    if (!root->bytes) {   // zip: read (and CRC-check) the entry on first use
        int rc = zip_read(&f->zip, root->entry, &root->bytes, &root->owned, err);
        if (rc) return rc;
    }
    const unsigned char *src = root->bytes + (size_t)(s->view_offset + t->offset) * 4;
    int contiguous = 1;
    int64_t expect = 1;
    for (int k = t->rank - 1; k >= 0; k--) {
        if (t->dim[k] != 1 && t->stride[k] != expect) contiguous = 0;
        expect *= t->dim[k];
    }
    if (contiguous && ((uintptr_t)src & 3) == 0) {
        *data = (const float *)(uintptr_t)src;
        return VC_OK;
    }
    float *out = malloc_check(t->numel * sizeof(float));
    if (contiguous) {
        memcpy(out, src, t->numel * sizeof(float));
    } else {   // row-major walk over the strided layout (bounds were checked in check_tensor)
        int64_t idx[PK_MAX_RANK] = {0};
        for (size_t i = 0; i < t->numel; i++) {
            int64_t at = 0;
            for (int k = 0; k < t->rank; k++) at += idx[k] * t->stride[k];
            memcpy(&out[i], src + (size_t)at * 4, 4);
            for (int k = t->rank - 1; k >= 0; k--) {
                if (++idx[k] < t->dim[k]) break;
                idx[k] = 0;
            }
        }
    }
    *data = *owned = out;
    return VC_OK;
}
