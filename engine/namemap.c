// namemap.c: see namemap.h.
#include "namemap.h"
#include <stdint.h>
#include <string.h>
#include "util.h"

static uint64_t hash(const char *s) {
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

void namemap_init(vc_namemap *h, size_t n_max) {
    h->cap = 16;
    while (h->cap < 2 * n_max + 1) h->cap *= 2;
    h->key = calloc_check(h->cap, sizeof(char *));
    h->val = calloc_check(h->cap, sizeof(int));
}

void namemap_free(vc_namemap *h) {
    free(h->key);
    free(h->val);
    memset(h, 0, sizeof *h);
}

int namemap_get(const vc_namemap *h, const char *key) {
    for (size_t i = hash(key) & (h->cap - 1);; i = (i + 1) & (h->cap - 1)) {
        if (!h->key[i]) return -1;
        if (!strcmp(h->key[i], key)) return h->val[i];
    }
}

int namemap_put(vc_namemap *h, const char *key, int val) {
    for (size_t i = hash(key) & (h->cap - 1);; i = (i + 1) & (h->cap - 1)) {
        if (!h->key[i]) { h->key[i] = key; h->val[i] = val; return -1; }
        if (!strcmp(h->key[i], key)) return h->val[i];
    }
}
