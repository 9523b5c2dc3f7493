// cache.c: what the server keeps — results on disk under --cache DIR (so a
// restart reuses them) and set scores in memory — and the keys they go by.
//
// A key hashes everything a result depends on: the model file's contents,
// the image set (every file's path, size and modification time; an upload's
// contents), and the request (target, metric, projection, ...). Files are
// PREFIX-KEY.EXT, written to a temporary name and renamed, so a reader never
// sees half a file; a file that does not parse is ignored and recomputed.
//
// Set scores on disk ("scores-KEY.bin", little-endian as the machine is):
//   "VCSS0001", u64 key, i32 n_cat, i32 n_layers, i32 images,
//   n_layers x (i32 node, i32 cout, i32 cg),
//   n_cat x (i32 images, i32 name length, name bytes),
//   then (n_cat + 1) blocks of floats, the categories in order and then
//   "overall": per layer cout node scores, then cout*cg edge scores.
#include "../../loaders/atomic_write.h"
#include "server.h"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "../../engine/util.h"

double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

// FNV-1a, 64 bit: for cache keys, not for security.
uint64_t hash_bytes(uint64_t h, const void *p, size_t n) {
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) { h ^= b[i]; h *= 0x100000001b3ULL; }
    return h;
}

uint64_t hash_str(uint64_t h, const char *s) {
    return hash_bytes(h, s, strlen(s) + 1);   // the NUL separates fields
}

char *base64(const void *p, size_t n) {
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const unsigned char *b = p;
    char *out = malloc_check((n + 2) / 3 * 4 + 1), *o = out;
    size_t i = 0;
    for (; i + 2 < n; i += 3) {
        uint32_t v = (uint32_t)b[i] << 16 | (uint32_t)b[i + 1] << 8 | b[i + 2];
        *o++ = tab[v >> 18]; *o++ = tab[(v >> 12) & 63]; *o++ = tab[(v >> 6) & 63]; *o++ = tab[v & 63];
    }
    if (i < n) {
        uint32_t v = (uint32_t)b[i] << 16 | (i + 1 < n ? (uint32_t)b[i + 1] << 8 : 0);
        *o++ = tab[v >> 18]; *o++ = tab[(v >> 12) & 63];
        *o++ = i + 1 < n ? tab[(v >> 6) & 63] : '=';
        *o++ = '=';
    }
    *o = 0;
    return out;
}

uint64_t set_hash(const vc_server *s, const char *set) {
    if (!strcmp(set, "main")) return s->main_set_hash;
    return hash_str(HASH_SEED, set);   // uploads are named by their contents' hash
}

uint64_t scores_key(const vc_server *s, const scores_req *r) {
    uint64_t h = hash_str(s->model_hash, "scores");
    h = hash_bytes(h, &(uint64_t){set_hash(s, r->set)}, 8);
    h = hash_str(h, r->t.text);
    return hash_str(h, vc_metric_names[r->metric]);
}

void cache_path(const vc_server *s, char *buf, size_t n, const char *prefix, uint64_t key, const char *ext) {
    snprintf(buf, n, "%s/%s-%016llx.%s", s->cache_dir, prefix, (unsigned long long)key, ext);
}

char *cache_read(const vc_server *s, const char *prefix, uint64_t key, const char *ext, size_t *len) {
    char path[4096];
    cache_path(s, path, sizeof path, prefix, key, ext);
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char *buf = NULL;
    if (fseek(f, 0, SEEK_END) == 0) {
        long n = ftell(f);
        if (n >= 0 && n < (1L << 31) && fseek(f, 0, SEEK_SET) == 0) {
            buf = malloc_check((size_t)n + 1);
            if (fread(buf, 1, (size_t)n, f) != (size_t)n) { free(buf); buf = NULL; }
            else { buf[n] = 0; if (len) *len = (size_t)n; }
        }
    }
    fclose(f);
    return buf;
}

int cache_write(const vc_server *s, const char *prefix, uint64_t key, const char *ext, const void *data, size_t len, vc_error *err) {
    char path[4096];
    cache_path(s, path, sizeof path, prefix, key, ext);
    vc_wfile w;   // loaders/atomic_write.c
    if (vc_wopen(&w, path, err)) return VC_EINTERNAL;
    return vc_wcommit(&w, fwrite(data, 1, len, w.fp) == len, err) ? VC_EINTERNAL : VC_OK;
}

// ---- set scores ------------------------------------------------------------------------
static void entry_free(set_scores_entry *e) {
    if (!e) return;
    for (int c = 0; e->ss.cat && c < e->ss.n_cat; c++) scores_free(&e->ss.cat[c]);
    free(e->ss.cat);
    free(e->ss.cat_images);
    if (e->ss.overall.l) scores_free(&e->ss.overall);
    for (int c = 0; e->names && c < e->ss.n_cat; c++) free(e->names[c]);
    free(e->names);
    free(e);
}

// Puts e in the LRU (cache_mu held), evicting the least recently used
// entry that nobody holds. 0 when every slot is held: e stays out of it.
static int lru_insert(vc_server *s, set_scores_entry *e) {
    int slot = -1;
    for (int k = 0; k < SCORES_LRU && slot < 0; k++) if (!s->lru[k]) slot = k;
    if (slot < 0)
        for (int k = 0; k < SCORES_LRU; k++)
            if (!s->lru[k]->refs && (slot < 0 || s->lru[k]->used < s->lru[slot]->used)) slot = k;
    if (slot < 0) return 0;
    entry_free(s->lru[slot]);
    s->lru[slot] = e;
    return 1;
}

typedef struct { const char *p; size_t n, at; int bad; } rd;
static void rd_get(rd *r, void *out, size_t n) {
    if (r->bad || r->at + n > r->n) { r->bad = 1; memset(out, 0, n); return; }
    memcpy(out, r->p + r->at, n);
    r->at += n;
}

// Parses a scores file; NULL when it does not match the model.
static set_scores_entry *scores_parse(vc_server *s, const char *buf, size_t len, uint64_t key, int stop) {
    rd r = {buf, len, 0, 0};
    char magic[8];
    uint64_t k;
    int32_t n_cat, n_layers, images;
    rd_get(&r, magic, 8);
    rd_get(&r, &k, 8);
    rd_get(&r, &n_cat, 4); rd_get(&r, &n_layers, 4); rd_get(&r, &images, 4);
    if (r.bad || memcmp(magic, "VCSS0001", 8) || k != key || n_cat < 1 || n_cat > 100000) return NULL;
    vc_scores lay;
    scores_init(&lay, s->m, stop);
    int ok = lay.n_layers == n_layers;
    for (int l = 0; l < lay.n_layers && ok; l++) {
        int32_t v[3];
        rd_get(&r, v, sizeof v);
        ok = !r.bad && v[0] == lay.l[l].node && v[1] == lay.l[l].cout && v[2] == lay.l[l].cg;
    }
    set_scores_entry *e = calloc_check(1, sizeof *e);
    e->key = key;
    e->ss.n_cat = n_cat;
    e->ss.images = images;
    e->names = calloc_check(n_cat, sizeof(char *));
    e->ss.cat_names = e->names;
    e->ss.cat_images = calloc_check(n_cat, sizeof(int));
    e->ss.cat = calloc_check(n_cat, sizeof(vc_scores));
    for (int c = 0; c < n_cat && ok; c++) {
        int32_t im, nl;
        rd_get(&r, &im, 4);
        rd_get(&r, &nl, 4);
        if (r.bad || nl < 0 || nl > 4096) { ok = 0; break; }
        e->names[c] = calloc_check(nl + 1, 1);
        rd_get(&r, e->names[c], nl);
        e->ss.cat_images[c] = im;
    }
    for (int c = 0; c <= n_cat && ok; c++) {
        vc_scores *sc = c < n_cat ? &e->ss.cat[c] : &e->ss.overall;
        scores_copy(sc, &lay);
        for (int l = 0; l < sc->n_layers; l++) {
            rd_get(&r, sc->l[l].nodes, sc->l[l].cout * sizeof(float));
            rd_get(&r, sc->l[l].edges, (size_t)sc->l[l].cout * sc->l[l].cg * sizeof(float));
        }
        ok = !r.bad;
    }
    for (int c = 0; c < n_cat && ok; c++) ok = e->names[c] != NULL;
    scores_free(&lay);
    if (!ok || r.at != r.n) { entry_free(e); return NULL; }
    return e;
}

set_scores_entry *scores_get(vc_server *s, const scores_req *q) {
    uint64_t key = scores_key(s, q);
    pthread_mutex_lock(&s->cache_mu);
    for (int k = 0; k < SCORES_LRU; k++)
        if (s->lru[k] && s->lru[k]->key == key) {
            set_scores_entry *e = s->lru[k];
            e->refs++;
            e->used = ++s->lru_clock;
            pthread_mutex_unlock(&s->cache_mu);
            return e;
        }
    pthread_mutex_unlock(&s->cache_mu);
    int stop = q->t.layer >= 0 ? q->t.layer : -1;   // the layers importance_begin scores
    size_t len;
    char *buf = cache_read(s, "scores", key, "bin", &len);
    if (!buf) return NULL;
    set_scores_entry *e = scores_parse(s, buf, len, key, stop);
    free(buf);
    if (!e) return NULL;
    pthread_mutex_lock(&s->cache_mu);
    for (int k = 0; k < SCORES_LRU; k++)   // another thread read it meanwhile
        if (s->lru[k] && s->lru[k]->key == key) {
            entry_free(e);
            e = s->lru[k];
            goto held;
        }
    lru_insert(s, e);   // or not: then it lives until scores_release drops it
held:
    e->refs++;
    e->used = ++s->lru_clock;
    pthread_mutex_unlock(&s->cache_mu);
    return e;
}

void scores_release(vc_server *s, set_scores_entry *e) {
    if (!e) return;
    pthread_mutex_lock(&s->cache_mu);
    int kept = 0;
    for (int k = 0; k < SCORES_LRU; k++) kept |= s->lru[k] == e;
    if (--e->refs == 0 && !kept) entry_free(e);
    pthread_mutex_unlock(&s->cache_mu);
}

int scores_put(vc_server *s, uint64_t key, const vc_set_scores *ss, vc_error *err) {
    // serialise
    size_t cap = 64, n_float = scores_count(&ss->overall) * (size_t)(ss->n_cat + 1);
    for (int c = 0; c < ss->n_cat; c++) cap += 8 + strlen(ss->cat_names[c]);
    cap += (size_t)ss->overall.n_layers * 12 + n_float * sizeof(float);
    char *buf = malloc_check(cap), *p = buf;
    int32_t hdr[3] = {ss->n_cat, ss->overall.n_layers, ss->images};
    memcpy(p, "VCSS0001", 8); p += 8;
    memcpy(p, &key, 8); p += 8;
    memcpy(p, hdr, 12); p += 12;
    for (int l = 0; l < ss->overall.n_layers; l++) {
        int32_t v[3] = {ss->overall.l[l].node, ss->overall.l[l].cout, ss->overall.l[l].cg};
        memcpy(p, v, 12); p += 12;
    }
    for (int c = 0; c < ss->n_cat; c++) {
        int32_t v[2] = {ss->cat_images[c], (int32_t)strlen(ss->cat_names[c])};
        memcpy(p, v, 8); p += 8;
        memcpy(p, ss->cat_names[c], v[1]); p += v[1];
    }
    for (int c = 0; c <= ss->n_cat; c++) {
        const vc_scores *sc = c < ss->n_cat ? &ss->cat[c] : &ss->overall;
        for (int l = 0; l < sc->n_layers; l++) {
            memcpy(p, sc->l[l].nodes, sc->l[l].cout * sizeof(float)); p += sc->l[l].cout * sizeof(float);
            size_t ne = (size_t)sc->l[l].cout * sc->l[l].cg * sizeof(float);
            memcpy(p, sc->l[l].edges, ne); p += ne;
        }
    }
    int rc = cache_write(s, "scores", key, "bin", buf, (size_t)(p - buf), err);
    free(buf);
    // and in memory (a copy that owns its names)
    set_scores_entry *e = calloc_check(1, sizeof *e);
    e->key = key;
    e->ss.n_cat = ss->n_cat;
    e->ss.images = ss->images;
    e->names = calloc_check(ss->n_cat, sizeof(char *));
    e->ss.cat_names = e->names;
    e->ss.cat_images = calloc_check(ss->n_cat, sizeof(int));
    e->ss.cat = calloc_check(ss->n_cat, sizeof(vc_scores));
    for (int c = 0; c < ss->n_cat; c++) {
        e->names[c] = strdup_check(ss->cat_names[c]);
        e->ss.cat_images[c] = ss->cat_images[c];
        scores_copy(&e->ss.cat[c], &ss->cat[c]);
    }
    scores_copy(&e->ss.overall, &ss->overall);
    pthread_mutex_lock(&s->cache_mu);
    for (int k = 0; k < SCORES_LRU; k++)
        if (s->lru[k] && s->lru[k]->key == key && !s->lru[k]->refs) { entry_free(s->lru[k]); s->lru[k] = NULL; }
    e->used = ++s->lru_clock;
    if (!lru_insert(s, e)) entry_free(e);   // the disk has it
    pthread_mutex_unlock(&s->cache_mu);
    return rc;
}

void scores_cache_free(vc_server *s) {
    for (int k = 0; k < SCORES_LRU; k++) { entry_free(s->lru[k]); s->lru[k] = NULL; }
}

// ---- image sets ------------------------------------------------------------------------
int upload_path(const vc_server *s, const char *id, char *buf, size_t n) {
    if (strncmp(id, "up:", 3) || strlen(id) != 19) return -1;
    for (int k = 3; k < 19; k++)
        if (!((id[k] >= '0' && id[k] <= '9') || (id[k] >= 'a' && id[k] <= 'f'))) return -1;
    static const char *const ext[] = {"png", "jpg"};
    for (int e = 0; e < 2; e++) {
        snprintf(buf, n, "%s/%s.%s", s->upload_dir, id + 3, ext[e]);
        if (access(buf, R_OK) == 0) return 0;
    }
    return -1;
}

int set_open(vc_server *s, const char *set, vc_imageset *tmp, const vc_imageset **out, vc_error *err) {
    if (!strcmp(set, "main")) { *out = &s->main_set; return VC_OK; }
    char path[4096];
    if (upload_path(s, set, path, sizeof path))
        return vc_fail(err, VC_EINPUT, "set %s: expected \"main\" or the id of an uploaded image (up:HEX)", set);
    int rc = imageset_open_path(tmp, s->m, path, err);
    if (!rc) *out = tmp;
    return rc;
}
