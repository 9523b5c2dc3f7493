// testutil.h: tiny shared helpers for the C tests (header-only).
//
// Protocol read by tests/run.sh: every case prints exactly one line,
//   "ok   <case description>"            or
//   "FAIL <case description>: <reason>"
// and a test program exits non-zero when any of its cases failed.
// A case description is one line that names the op and its shapes, e.g.
//   "conv2d fwd-vs-ref N=2 C=3 H=7 k=3 s=2 p=1 d=2 g=1".
// argv[1], when given, filters cases by substring (ggml's test-backend-ops habit).
#pragma once
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <unistd.h>

static int tu_failed = 0, tu_passed = 0;
static const char *tu_filter = NULL;

static inline void tu_init(int argc, char **argv) { tu_filter = argc > 1 ? argv[1] : NULL; }
static inline int tu_selected(const char *name) { return !tu_filter || strstr(name, tu_filter) != NULL; }
static inline int tu_finish(void) {
    fprintf(stderr, "# %d passed, %d failed\n", tu_passed, tu_failed);
    return tu_failed ? 1 : 0;
}

// Report one case. ok != 0 passes. fmt describes the reason on failure.
static inline void tu_report(const char *name, int ok, const char *fmt, ...) {
    if (ok) { printf("ok   %s\n", name); tu_passed++; }
    else {
        printf("FAIL %s: ", name);
        va_list ap; va_start(ap, fmt); vprintf(fmt, ap); va_end(ap);
        printf("\n"); tu_failed++;
    }
    fflush(stdout);
}

// Deterministic RNG (xorshift64*), uniform in [-1, 1).
typedef struct { uint64_t s; } tu_rng;
static inline float tu_uniform(tu_rng *r) {
    r->s ^= r->s >> 12; r->s ^= r->s << 25; r->s ^= r->s >> 27;
    uint64_t v = r->s * 2685821657736338717ULL;
    return (float)((v >> 40) * (1.0 / 16777216.0)) * 2.0f - 1.0f;
}
static inline float *tu_rand(tu_rng *r, size_t n) {
    float *p = (float *)malloc((n ? n : 1) * sizeof(float));
    for (size_t i = 0; i < n; i++) p[i] = tu_uniform(r);
    return p;
}
static inline float *tu_zeros(size_t n) { return (float *)calloc(n ? n : 1, sizeof(float)); }

// max |a-b| / max(max |b|, floor). Used for "fast vs ref" and parity checks.
static inline double tu_rel_err(const float *a, const float *b, size_t n, double floor_) {
    double md = 0, mr = floor_;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]);
        if (d > md || d != d) md = d != d ? INFINITY : d;
        if (fabs((double)b[i]) > mr) mr = fabs((double)b[i]);
    }
    return md / mr;
}

// A fresh scratch folder $TMPDIR/vc_test_NAME_XXXXXX (or under /tmp) in dir;
// 0, or -1 after a FAIL line.
static inline int tu_scratch_dir(char *dir, size_t size, const char *name) {
    const char *td = getenv("TMPDIR");
    snprintf(dir, size, "%s/vc_test_%s_XXXXXX", td && *td ? td : "/tmp", name);
    if (mkdtemp(dir)) return 0;
    tu_report("scratch directory", 0, "mkdtemp %s failed", dir);
    return -1;
}

// Removes dir and everything in it.
static inline void tu_rm_dir(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    char p[1024];
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        int n = snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        if (n < 0 || (size_t)n >= sizeof p) continue;
        if (remove(p) != 0) tu_rm_dir(p);
    }
    closedir(d);
    rmdir(dir);
}
