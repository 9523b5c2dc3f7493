// util.h: checked allocation and always-on invariants (internal).
#pragma once
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "viscnn.h"

// Out of memory is not a user error: report where and abort.
#define malloc_check(n) malloc_check_((n), __FILE__, __LINE__)
#define calloc_check(n, s) calloc_check_((n), (s), __FILE__, __LINE__)
static inline void *malloc_check_(size_t n, const char *f, int l) {
    void *p = malloc(n ? n : 1);
    if (!p) { fprintf(stderr, "viscnn: out of memory (%zu bytes) at %s:%d\n", n, f, l); abort(); }
    return p;
}
static inline void *calloc_check_(size_t n, size_t s, const char *f, int l) {
    void *p = calloc(n ? n : 1, s ? s : 1);
    if (!p) { fprintf(stderr, "viscnn: out of memory (%zu bytes) at %s:%d\n", n * s, f, l); abort(); }
    return p;
}
static inline char *strdup_check(const char *s) {
    size_t n = strlen(s) + 1;
    char *p = (char *)malloc_check(n);
    memcpy(p, s, n);
    return p;
}

#define VC_ASSERT(c) do { if (!(c)) { \
    fprintf(stderr, "viscnn: internal error: %s at %s:%d\n", #c, __FILE__, __LINE__); abort(); } } while (0)

// A string from a file (a layer, tensor or class name), fit to print inside
// a message: bytes outside printable ASCII (and '\') as \xNN, cut to
// VC_STR_MAX characters with "..." after. The result lives until 8 more calls
// on the same thread.
#define VC_STR_MAX 80
VC_API const char *vc_str(const char *s);
