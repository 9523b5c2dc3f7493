// test_pth.c: the PyTorch checkpoint reader (loaders/pth.c, pickle.c, zip.c)
// on hand-built files: a two-tensor state dict as torch.save writes it (zip
// and legacy), pickles that must be refused, strided and viewed tensors, and
// a fuzz of the zip container, the pickle inside a well-formed zip, and the
// legacy layout (random mutations; the reader must refuse or load, never
// crash; tests/test_pth.py runs this under AddressSanitizer).
//
//   build/tests/test_pth [FILTER] [--iters=N] [--seed-file=F.pth]...
#include <zlib.h>
#include "testutil.h"
#include "../engine/util.h"
#include "../loaders/pth.h"

// ---- building files -------------------------------------------------------------
typedef struct { unsigned char *p; size_t n, cap; } buf;
static void put(buf *b, const void *s, size_t n) {
    if (!n) return;
    if (b->n + n > b->cap) { b->cap = (b->n + n) * 2 + 64; b->p = realloc(b->p, b->cap); }
    memcpy(b->p + b->n, s, n);
    b->n += n;
}
static void put_s(buf *b, const char *s) { put(b, s, strlen(s)); }
static void put_u(buf *b, uint64_t v, int n) { for (int i = 0; i < n; i++) { unsigned char c = (unsigned char)(v >> (8 * i)); put(b, &c, 1); } }
static void op(buf *b, int c) { unsigned char x = (unsigned char)c; put(b, &x, 1); }
static void str(buf *b, const char *s) { op(b, 'X'); put_u(b, strlen(s), 4); put_s(b, s); }
static void int1(buf *b, int v) { op(b, 'K'); op(b, v); }

// _rebuild_tensor_v2(('storage', FloatStorage, key, 'cpu', numel[, None]), offset, size, stride, False, OrderedDict())
static void tensor(buf *b, const char *key, int numel, int offset, int rank, const int *size, const int *stride, int legacy) {
    put_s(b, "ctorch._utils\n_rebuild_tensor_v2\n((");
    str(b, "storage");
    put_s(b, "ctorch\nFloatStorage\n");
    str(b, key);
    str(b, "cpu");
    int1(b, numel);
    if (legacy) op(b, 'N');
    put_s(b, "tQ");
    int1(b, offset);
    op(b, '(');
    for (int k = 0; k < rank; k++) int1(b, size[k]);
    op(b, 't');
    op(b, '(');
    for (int k = 0; k < rank; k++) int1(b, stride[k]);
    put_s(b, "t\x89" "ccollections\nOrderedDict\n)RtR");
}

// The state dict {w: arange(6) as (2, 3) [or its transpose's view, strides (1, 2)], b: [0.5, -1]}.
static buf state_pickle(int legacy, int transposed) {
    buf b = {0};
    put_s(&b, "\x80\x02" "ccollections\nOrderedDict\n)R(");
    str(&b, "w");
    int sz[2] = {2, 3}, st[2] = {3, 1}, tsz[2] = {3, 2}, tst[2] = {1, 3};
    if (transposed) tensor(&b, "0", 6, 0, 2, tsz, tst, legacy);
    else tensor(&b, "0", 6, 0, 2, sz, st, legacy);
    str(&b, "b");
    int bs[1] = {2}, bt[1] = {1};
    tensor(&b, "1", 2, 0, 1, bs, bt, legacy);
    put_s(&b, "u.");
    return b;
}
static const float W[6] = {0, 1, 2, 3, 4, 5}, B[2] = {0.5f, -1.0f};
static const float WT[6] = {0, 3, 1, 4, 2, 5};   // W viewed as its (3, 2) transpose, row-major

// A stored zip: entries (name, data, size).
static buf make_zip(int n, const char *const *names, const unsigned char *const *data, const size_t *sizes) {
    buf z = {0}, cd = {0};
    for (int i = 0; i < n; i++) {
        uint32_t crc = (uint32_t)crc32(0, data[i], (uInt)sizes[i]);
        size_t off = z.n, nl = strlen(names[i]);
        put_u(&z, 0x04034b50, 4); put_u(&z, 20, 2); put_u(&z, 0, 2); put_u(&z, 0, 2); put_u(&z, 0, 4);
        put_u(&z, crc, 4); put_u(&z, sizes[i], 4); put_u(&z, sizes[i], 4); put_u(&z, nl, 2); put_u(&z, 0, 2);
        put(&z, names[i], nl);
        put(&z, data[i], sizes[i]);
        put_u(&cd, 0x02014b50, 4); put_u(&cd, 20, 2); put_u(&cd, 20, 2); put_u(&cd, 0, 2); put_u(&cd, 0, 2);
        put_u(&cd, 0, 4); put_u(&cd, crc, 4); put_u(&cd, sizes[i], 4); put_u(&cd, sizes[i], 4); put_u(&cd, nl, 2);
        put_u(&cd, 0, 2); put_u(&cd, 0, 2); put_u(&cd, 0, 2); put_u(&cd, 0, 2); put_u(&cd, 0, 4); put_u(&cd, off, 4);
        put(&cd, names[i], nl);
    }
    size_t cd_off = z.n;
    put(&z, cd.p, cd.n);
    put_u(&z, 0x06054b50, 4); put_u(&z, 0, 2); put_u(&z, 0, 2); put_u(&z, n, 2); put_u(&z, n, 2);
    put_u(&z, cd.n, 4); put_u(&z, cd_off, 4); put_u(&z, 0, 2);
    free(cd.p);
    return z;
}

static buf zip_with_pickle(const buf *pkl) {
    const char *names[4] = {"a/data.pkl", "a/data/0", "a/data/1", "a/version"};
    const unsigned char *data[4] = {pkl->p, (const unsigned char *)W, (const unsigned char *)B, (const unsigned char *)"3\n"};
    size_t sizes[4] = {pkl->n, sizeof W, sizeof B, 2};
    return make_zip(4, names, data, sizes);
}

static buf legacy_with_pickle(const buf *pkl) {
    buf b = {0};
    put(&b, "\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19\x2e", 15);   // magic
    put(&b, "\x80\x02M\xe9\x03.", 6);                                              // 1001
    put_s(&b, "\x80\x02}(");                                                       // sys_info
    str(&b, "little_endian");
    put_s(&b, "\x88u.");
    put(&b, pkl->p, pkl->n);
    put_s(&b, "\x80\x02](");                                                       // storage keys
    str(&b, "1");
    str(&b, "0");
    put_s(&b, "e.");
    put_u(&b, 2, 8); put(&b, B, sizeof B);
    put_u(&b, 6, 8); put(&b, W, sizeof W);
    return b;
}

// ---- checks ------------------------------------------------------------------------
static int values_ok(pth_file *f, int transposed, char *why, size_t n) {
    const char *names[2] = {"w", "b"};
    const float *want[2] = {transposed ? WT : W, B};
    size_t cnt[2] = {6, 2};
    for (int i = 0; i < 2; i++) {
        const pth_tensor *t = pth_find(f, names[i]);
        if (!t) { snprintf(why, n, "no tensor '%s'", names[i]); return 0; }
        const float *d;
        float *own;
        vc_error e = {{0}};
        if (pth_float32(f, t, &d, &own, &e)) { snprintf(why, n, "%s", e.msg); return 0; }
        int ok = t->numel == cnt[i] && !memcmp(d, want[i], cnt[i] * 4);
        free(own);
        if (!ok) { snprintf(why, n, "tensor '%s' has the wrong values", names[i]); return 0; }
    }
    return 1;
}

static void case_load(const char *name, const buf *file, int transposed) {
    if (!tu_selected(name)) return;
    pth_file f;
    vc_error e = {{0}};
    char why[1200] = "";
    int ok = !pth_read_mem(&f, "mem.pth", file->p, file->n, &e);
    if (!ok) snprintf(why, sizeof why, "%s", e.msg);
    if (ok) {
        ok = f.n == 2 && values_ok(&f, transposed, why, sizeof why);
        if (ok && transposed) {   // w is the (3, 2) transpose view, strides (1, 3): gathered into a copy
            const pth_tensor *t = pth_find(&f, "w");
            ok = t->dim[0] == 3 && t->stride[0] == 1;
            if (!ok) snprintf(why, sizeof why, "the strided tensor has the wrong shape or strides");
        }
        pth_free(&f);
    }
    tu_report(name, ok, "%s", why);
}

static void case_refuse(const char *name, const buf *file, const char *want) {
    if (!tu_selected(name)) return;
    pth_file f;
    vc_error e = {{0}};
    int rc = pth_read_mem(&f, "mem.pth", file->p, file->n, &e);
    if (!rc) pth_free(&f);
    tu_report(name, rc == VC_EINPUT && strstr(e.msg, want) && !strchr(e.msg, '\n'),
              "rc %d, message '%s', expected one line with '%s'", rc, e.msg, want);
}

// A state-dict pickle with `inject` spliced in before the final STOP.
static buf pickle_with(const char *inject, size_t n) {
    buf p = state_pickle(0, 0);
    p.n--;   // drop '.'
    put(&p, inject, n);
    put_s(&p, ".");
    return p;
}

// ---- fuzzing -------------------------------------------------------------------------
static uint64_t rnd(tu_rng *r) {
    r->s ^= r->s >> 12; r->s ^= r->s << 25; r->s ^= r->s >> 27;
    return r->s * 2685821657736338717ULL;
}

static void mutate(tu_rng *r, buf *b) {
    int kind = (int)(rnd(r) % 5);
    if (b->n == 0) return;
    size_t at = rnd(r) % b->n;
    switch (kind) {
    case 0: for (int k = 1 + (int)(rnd(r) % 4); k-- > 0;) b->p[rnd(r) % b->n] ^= (unsigned char)(1u << (rnd(r) % 8)); break;
    case 1: for (int k = 1 + (int)(rnd(r) % 4); k-- > 0;) b->p[rnd(r) % b->n] = (unsigned char)rnd(r); break;
    case 2: b->n = at; break;   // truncate
    case 3: {                   // a boundary value in a 1/2/4/8-byte field
        static const uint64_t v[] = {0, 1, 0x7f, 0x80, 0xff, 0xffff, 0x7fffffff, 0xffffffff, 0x8000000000000000ull, ~0ull};
        uint64_t x = v[rnd(r) % 10];
        int w = 1 << (rnd(r) % 4);
        for (int i = 0; i < w && at + i < b->n; i++) b->p[at + i] = (unsigned char)(x >> (8 * i));
        break;
    }
    default: {                  // duplicate a slice
        size_t len = rnd(r) % 32, from = rnd(r) % b->n;
        if (from + len > b->n) len = b->n - from;
        unsigned char tmp[32];
        memcpy(tmp, b->p + from, len);
        buf c = {0};
        put(&c, b->p, at);
        put(&c, tmp, len);
        put(&c, b->p + at, b->n - at);
        free(b->p);
        *b = c;
    }
    }
}

// Loads the file and touches every tensor; 1 if it loaded.
static int exercise(const buf *b) {
    pth_file f;
    vc_error e = {{0}};
    unsigned char *copy = malloc(b->n ? b->n : 1);   // exactly sized, so ASan sees any overread
    memcpy(copy, b->p, b->n);
    int rc = pth_read_mem(&f, "fuzz.pth", copy, b->n, &e);
    VC_ASSERT(rc == VC_OK || rc == VC_EINPUT);
    if (!rc) {
        double sum = 0;
        for (int i = 0; i < f.n; i++) {
            const float *d;
            float *own;
            if (pth_float32(&f, &f.t[i], &d, &own, &e)) continue;
            for (size_t k = 0; k < f.t[i].numel; k++) sum += d[k];
            free(own);
        }
        (void)sum;
        pth_free(&f);
    }
    free(copy);
    return !rc;
}

// which: 0 mutate the file, 1 mutate the pickle and rebuild a valid zip around it.
static void case_fuzz(const char *name, const buf *seed, const buf *pkl, int iters, uint64_t s) {
    if (!tu_selected(name)) return;
    tu_rng r = {s};
    int loaded = 0;
    for (int i = 0; i < iters; i++) {
        buf m = {0};
        put(&m, pkl ? pkl->p : seed->p, pkl ? pkl->n : seed->n);
        for (int k = 1 + (int)(rnd(&r) % 3); k-- > 0;) mutate(&r, &m);
        if (pkl) {
            buf z = zip_with_pickle(&m);
            loaded += exercise(&z);
            free(z.p);
        } else {
            loaded += exercise(&m);
        }
        free(m.p);
    }
    char full[256];
    snprintf(full, sizeof full, "%s: %d mutations, %d loaded, %d refused, no crash", name, iters, loaded, iters - loaded);
    tu_report(full, 1, "");
}

static buf read_file(const char *path) {
    buf b = {0};
    FILE *fp = fopen(path, "rb");
    if (!fp) return b;
    unsigned char tmp[65536];
    size_t k;
    while ((k = fread(tmp, 1, sizeof tmp, fp)) > 0) put(&b, tmp, k);
    fclose(fp);
    return b;
}

int main(int argc, char **argv) {
    tu_init(1, argv);
    (void)tu_rand; (void)tu_zeros; (void)tu_rel_err;
    int iters = 3000;
    const char *seeds[16];
    int n_seeds = 0;
    for (int i = 1; i < argc; i++) {
        if (!strncmp(argv[i], "--iters=", 8)) iters = atoi(argv[i] + 8);
        else if (!strncmp(argv[i], "--seed-file=", 12) && n_seeds < 16) seeds[n_seeds++] = argv[i] + 12;
        else tu_filter = argv[i];
    }
    buf zp = state_pickle(0, 0), lp = state_pickle(1, 0), tp = state_pickle(0, 1);
    buf zip = zip_with_pickle(&zp), leg = legacy_with_pickle(&lp), tz = zip_with_pickle(&tp);
    case_load("load zip state dict", &zip, 0);
    case_load("load legacy state dict", &leg, 0);
    case_load("load zip state dict with a transposed (strided) tensor", &tz, 1);

    // Pickles that must be refused, each spliced into an otherwise valid file.
#define INJ(s) s, sizeof(s) - 1   // byte strings with NULs: the length from the literal
    static const struct { const char *name, *want, *inject; size_t n; } bad[] = {
        {"refuse GLOBAL os.system", "os.system, which a state dict never needs; refusing", INJ("cos\nsystem\n")},
        {"refuse GLOBAL builtins.eval + REDUCE", "builtins.eval", INJ("cbuiltins\neval\n(X\x01\x00\x00\x001tR")},
        {"refuse STACK_GLOBAL posix.system", "posix.system", INJ("X\x05\x00\x00\x00posixX\x06\x00\x00\x00system\x93")},
        {"refuse INST opcode", "opcode 0x69", INJ("ios\nsystem\n")},
        {"refuse NEWOBJ opcode", "opcode 0x81", INJ("ccollections\nOrderedDict\n)\x81")},
        {"refuse calling a storage type", "FloatStorage directly", INJ("ctorch\nFloatStorage\n)R")},
        {"refuse BUILD on a list", "state of a list", INJ("]]b")},
        {"refuse an unset memo", "never set", INJ("h\x63")},
        {"refuse a 9-byte integer", "9-byte integer", INJ("\x8a\x09" "123456789")},
        {"refuse a string longer than the file", "ends early", INJ("X\xff\xff\xff\x7f")},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        buf p = pickle_with(bad[i].inject, bad[i].n), z = zip_with_pickle(&p);
        case_refuse(bad[i].name, &z, bad[i].want);
        free(p.p);
        free(z.p);
    }
    buf cut = {0};
    put(&cut, leg.p, leg.n - 3);
    case_refuse("refuse a legacy file cut short", &cut, "truncated?");
    buf badcrc = {0};
    put(&badcrc, zip.p, zip.n);
    badcrc.p[30 + strlen("a/data.pkl") + zp.n + 30 + strlen("a/data/0") + 5] ^= 1;   // a byte of w's data
    {
        const char *name = "damaged storage fails its CRC check when read";
        pth_file f;
        vc_error e = {{0}};
        int rc = pth_read_mem(&f, "mem.pth", badcrc.p, badcrc.n, &e);
        int ok = rc == VC_EINPUT && strstr(e.msg, "CRC");
        if (!rc) {
            for (int i = 0; i < f.n && !ok; i++) {
                const float *d;
                float *own;
                ok = pth_float32(&f, &f.t[i], &d, &own, &e) == VC_EINPUT && strstr(e.msg, "CRC");
                if (!ok) free(own);
            }
            pth_free(&f);
        }
        if (tu_selected(name)) tu_report(name, ok, "no CRC error: '%s'", e.msg);
    }

    case_fuzz("fuzz zip container", &zip, NULL, iters, 1);
    case_fuzz("fuzz pickle inside a valid zip", NULL, &zp, iters, 2);
    case_fuzz("fuzz legacy file", &leg, NULL, iters, 3);
    for (int i = 0; i < n_seeds; i++) {
        buf s = read_file(seeds[i]);
        char name[300];
        snprintf(name, sizeof name, "fuzz %s", seeds[i]);
        if (!s.n) tu_report(name, 0, "cannot read the seed file");
        else case_fuzz(name, &s, NULL, iters, 10 + (uint64_t)i);
        free(s.p);
    }
    free(zp.p); free(lp.p); free(tp.p); free(zip.p); free(leg.p); free(tz.p); free(cut.p); free(badcrc.p);
    return tu_finish();
}
