// namemap.h: a string -> int hash map (open addressing, FNV-1a), so that
// loading a graph of n nodes looks names up in O(1) rather than O(n).
// Keys are borrowed: they must outlive the map.
#pragma once
#include <stddef.h>

typedef struct {
    size_t cap;            // a power of two, at least twice the entries
    const char **key;
    int *val;
} vc_namemap;

void namemap_init(vc_namemap *h, size_t n_max);
void namemap_free(vc_namemap *h);
// Index stored under key, or -1.
int namemap_get(const vc_namemap *h, const char *key);
// Stores key -> val; returns the value already there (and keeps it), or -1.
int namemap_put(vc_namemap *h, const char *key, int val);
