// test_decisions.c: the engine's discrete decisions (vc_run_decisions) and
// the .npz writer that `viscnn forward --decisions` streams them into.
//
// - decisions of relu (after conv and after linear) and maxpool2d (padding,
//   stride, ceil_mode, dilation; exact ties) equal the branches their
//   backward takes: the relu mask is (y > 0), the argmax is that of the
//   plain maxpool2d_forward_ref (first maximum, padding never wins);
//   kinds per op; refusals for ops without decisions and freed outputs.
// - npz: entries of several dtypes and ranks, plain and zip64, read back by
//   loaders/zip.c (CRC checked) and by NumPy (/usr/bin/python3); duplicate
//   names and unwritable paths refused, nothing left behind.
#include <stdint.h>
#include <unistd.h>
#include "testmodel.h"
#include "ops.h"
#include "../loaders/npz.h"
#include "../loaders/zip.h"

#define DIR "build/testdata/decisions"

// ---- decisions ------------------------------------------------------------------
typedef struct {
    int node;
    uint8_t *region;          // copied from the hook, or NULL
    int rc;
} hook_grab;

static void grab_hook(void *ctx, const vc_run *r, int node, int phase) {
    hook_grab *g = ctx;
    if (phase == 0 && node == g->node) {
        vc_error err;
        g->region = malloc(1 << 20);
        g->rc = vc_run_decisions(r, node, g->region, &err);
    }
}

static void test_decisions(void) {
    if (!tu_selected("decisions")) return;
    vc_error err;
    mb b = {.rng = {42}, .wlo = -1.0f, .whi = 1.0f};
    // conv -> relu -> maxpool (k3 s2 p1 ceil, k2 d2) -> flatten -> linear -> relu
    mb_conv(&b, "c1", "input", 2, 4, 3, 3, "\"padding\": [1, 1]");
    mb_op(&b, "r1", "relu", "\"c1\"", "");
    mb_op(&b, "p1", "maxpool2d", "\"r1\"",
          "\"kernel\": [3, 3], \"stride\": [2, 2], \"padding\": [1, 1], \"ceil_mode\": true");
    mb_op(&b, "p2", "maxpool2d", "\"p1\"", "\"kernel\": [2, 2], \"stride\": [1, 1], \"dilation\": [2, 2]");
    mb_op(&b, "f", "flatten", "\"p2\"", "");
    mb_linear(&b, "fc", "f", 4 * 2 * 3, 6, 1);
    mb_op(&b, "r2", "relu", "\"fc\"", "");
    const char *path = DIR "/m.safetensors";
    vc_model *m = NULL;
    if (mb_write(&b, path, "m", 2, 7, 8, NULL, &err) || vc_model_load(&m, path, &err)) {
        tu_report("decisions: build the test model", 0, "%s", err.msg);
        return;
    }
    int c1 = vc_model_find(m, "c1"), r1 = vc_model_find(m, "r1"), p1 = vc_model_find(m, "p1"),
        p2 = vc_model_find(m, "p2"), r2 = vc_model_find(m, "r2");
    tu_report("decisions: kinds (relu region, maxpool2d argmax, conv2d/input none)",
              vc_node_decisions(m, r1) == VC_DEC_REGION && vc_node_decisions(m, r2) == VC_DEC_REGION &&
              vc_node_decisions(m, p1) == VC_DEC_ARGMAX && vc_node_decisions(m, c1) == VC_DEC_NONE &&
              vc_node_decisions(m, 0) == VC_DEC_NONE && vc_node_decisions(m, 999) == VC_DEC_NONE, "wrong kind");

    const int N = 3;
    const vc_node *in = &m->nodes[0];
    size_t nx = (size_t)N * in->size;
    float *x = malloc(nx * sizeof(float));
    tu_rng rng = {7};
    for (size_t k = 0; k < nx; k++) x[k] = tu_uniform(&rng);
    // image 2 is all zero: every relu output 0, so every pool window is a tie
    for (size_t k = 2 * in->size; k < nx; k++) x[k] = 0.0f;
    vc_run *r = vc_run_new(m, N);
    if (vc_forward(r, x, -1, 0, &err)) { tu_report("decisions: forward", 0, "%s", err.msg); return; }

    for (int pass = 0; pass < 2; pass++) {
        int node = pass ? r2 : r1;
        size_t n = (size_t)N * m->nodes[node].size;
        uint8_t *reg = malloc(n);
        int rc = vc_run_decisions(r, node, reg, &err);
        const float *y = vc_run_act(r, node);
        size_t bad = 0, on = 0;
        for (size_t k = 0; k < n; k++) { bad += reg[k] != (y[k] > 0.0f); on += reg[k]; }
        char name[96];
        snprintf(name, sizeof name, "decisions: relu %s (N=%d, %zu values) = (y > 0)", m->nodes[node].name, N, n);
        tu_report(name, rc == 0 && bad == 0 && on > 0 && on < n, "rc %d, %zu differ, %zu of %zu on", rc, bad, on, n);
        free(reg);
    }
    for (int pass = 0; pass < 2; pass++) {
        int node = pass ? p2 : p1;
        const vc_node *nd = &m->nodes[node], *xn = &m->nodes[nd->in[0]];
        pool2d_dims d = {.N = N, .C = xn->c, .H = xn->h, .W = xn->w, .kh = nd->a.kernel[0], .kw = nd->a.kernel[1],
                         .sh = nd->a.stride[0], .sw = nd->a.stride[1], .ph = nd->a.padding[0], .pw = nd->a.padding[1],
                         .dh = nd->a.dilation[0], .dw = nd->a.dilation[1], .ceil_mode = nd->a.ceil_mode};
        pool2d_dims_finish(&d);
        size_t n = (size_t)N * nd->size;
        int32_t *got = malloc(n * 4), *want = malloc(n * 4);
        float *yref = malloc(n * sizeof(float));
        int rc = vc_run_decisions(r, node, got, &err);
        maxpool2d_forward_ref(yref, want, vc_run_act(r, nd->in[0]), &d);
        size_t bad = 0;
        for (size_t k = 0; k < n; k++) bad += got[k] != want[k];
        // the all-zero image: every window ties, the first in-range tap wins
        size_t per = nd->size, ties_first = 1;
        for (size_t k = 2 * per; k < 3 * per; k++) ties_first &= got[k] == want[k];
        char name[128];
        snprintf(name, sizeof name, "decisions: maxpool2d %s (%dx%d s%d p%d d%d%s) = maxpool2d_forward_ref's argmax",
                 nd->name, d.kh, d.kw, d.sh, d.ph, d.dh, d.ceil_mode ? " ceil" : "");
        tu_report(name, rc == 0 && bad == 0 && ties_first && d.Ho == nd->h && d.Wo == nd->w,
                  "rc %d, %zu of %zu differ", rc, bad, n);
        free(got); free(want); free(yref);
    }
    uint8_t dummy[8];
    tu_report("decisions: refused for conv2d and the input (no decisions)",
              vc_run_decisions(r, c1, dummy, &err) == VC_EINPUT && strstr(err.msg, "c1") &&
              vc_run_decisions(r, 0, dummy, &err) == VC_EINPUT && vc_run_decisions(r, -1, dummy, &err) == VC_EINPUT,
              "not refused: %s", err.msg);
    vc_run_free(r);

    // NOGRAD: available from the hook, gone after
    r = vc_run_new(m, N);
    hook_grab g = {.node = r1};
    vc_run_set_hook(r, grab_hook, &g);
    int rc = vc_forward(r, x, -1, VC_FWD_NOGRAD, &err);
    int after = vc_run_decisions(r, r1, dummy, &err);
    tu_report("decisions: NOGRAD forward, from the hook (freed afterwards: refused with a reason)",
              rc == 0 && g.rc == 0 && after == VC_EINPUT && strstr(err.msg, "freed"), "rc %d, hook %d, after %d", rc, g.rc, after);
    free(g.region);
    vc_run_free(r);
    free(x);
    vc_model_free(m);
}

// ---- npz ------------------------------------------------------------------------
static unsigned char *slurp(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    *n = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc(*n ? *n : 1);
    if (fread(b, 1, *n, f) != *n) { free(b); b = NULL; }
    fclose(f);
    return b;
}

// Checks one entry read back by zip.c: its .npy header names dtype and shape,
// and its data bytes equal `data`.
static int entry_ok(const zip_archive *z, const char *name, const char *descr, const char *shape,
                    const void *data, size_t nbytes, char *why, size_t wn) {
    vc_error err;
    const zip_entry *e = zip_find(z, name);
    if (!e) { snprintf(why, wn, "no entry %s", name); return 0; }
    const unsigned char *p;
    unsigned char *owned;
    if (zip_read(z, e, &p, &owned, &err)) { snprintf(why, wn, "%.200s", err.msg); return 0; }
    int ok = e->usize >= 10 && !memcmp(p, "\x93NUMPY\x01\x00", 8);
    size_t hl = ok ? (size_t)p[8] | (size_t)p[9] << 8 : 0;
    char hdr[600] = "";
    if (ok && hl < sizeof hdr) memcpy(hdr, p + 10, hl);
    char want[256];
    snprintf(want, sizeof want, "{'descr': '%s', 'fortran_order': False, 'shape': %s, }", descr, shape);
    ok = ok && (10 + hl) % 64 == 0 && !strncmp(hdr, want, strlen(want)) && e->usize == 10 + hl + nbytes &&
         !memcmp(p + 10 + hl, data, nbytes);
    if (!ok) snprintf(why, wn, "%s: header '%.80s' or data differ", name, hdr);
    free(owned);
    return ok;
}

static void test_npz(void) {
    if (!tu_selected("npz")) return;
    vc_error err;
    mkdir("build", 0777); mkdir("build/testdata", 0777); mkdir(DIR, 0777);
    uint8_t u[6] = {0, 1, 1, 0, 1, 255};
    int32_t i4[4] = {-1, 0, 7, 1 << 30};
    float f[1] = {3.5f};
    long long du[2] = {2, 3}, di[1] = {4};
    for (int z64 = 0; z64 < 2; z64++) {
        char path[256], name[160], why[256] = "";
        snprintf(path, sizeof path, DIR "/t%d.npz", z64);
        snprintf(name, sizeof name, "npz: write u1 (2,3), i4 (4,), f4 () entries%s; zip.c reads them back, CRCs checked",
                 z64 ? ", zip64 records" : "");
        npz_writer *w;
        int rc = npz_open(&w, path, &err);
        if (!rc && z64) npz_force_zip64(w);
        if (!rc) rc = npz_add(w, "layer1.0.relu#2", "|u1", 2, du, u, &err);
        if (!rc) rc = npz_add(w, "maxpool", "<i4", 1, di, i4, &err);
        if (!rc) rc = npz_add(w, "scalar", "<f4", 0, NULL, f, &err);
        if (!rc) rc = npz_close(w, &err);
        else npz_abort(w);
        size_t n = 0;
        unsigned char *buf = rc ? NULL : slurp(path, &n);
        zip_archive z;
        int ok = buf && !zip_open(&z, path, buf, n, &err);
        if (!buf || !ok) snprintf(why, sizeof why, "%.200s", err.msg);
        if (ok) {
            ok = z.n == 3 && z.zip64 == z64 &&
                 entry_ok(&z, "layer1.0.relu#2.npy", "|u1", "(2, 3)", u, 6, why, sizeof why) &&
                 entry_ok(&z, "maxpool.npy", "<i4", "(4,)", i4, 16, why, sizeof why) &&
                 entry_ok(&z, "scalar.npy", "<f4", "()", f, 4, why, sizeof why);
            if (!ok && !why[0]) snprintf(why, sizeof why, "%d entries, zip64 %d", z.n, z.zip64);
            zip_close(&z);
        }
        tu_report(name, ok && access(DIR "/t0.npz.tmp", F_OK) != 0, "%s", why);
        free(buf);

        // NumPy reads it (np.load: zipfile, zip64 included)
        snprintf(name, sizeof name, "npz: NumPy reads the%s archive", z64 ? " zip64" : "");
        char cmd[1024];
        snprintf(cmd, sizeof cmd,
                 "/usr/bin/python3 -c \"import numpy as np, sys\n"
                 "z = np.load(sys.argv[1])\n"
                 "a, b, c = z['layer1.0.relu#2'], z['maxpool'], z['scalar']\n"
                 "ok = (a.dtype == np.uint8 and a.tolist() == [[0, 1, 1], [0, 1, 255]] and b.dtype == np.int32\n"
                 "      and b.tolist() == [-1, 0, 7, 1 << 30] and c.dtype == np.float32 and c.shape == () and c == 3.5)\n"
                 "sys.exit(0 if ok and sorted(z.files) == ['layer1.0.relu#2', 'maxpool', 'scalar'] else 1)\" %s",
                 path);
        int prc = system(cmd);
        tu_report(name, prc == 0, "/usr/bin/python3 + numpy failed to read it or read other values (status %d)", prc);
    }
    // refusals
    npz_writer *w;
    int rc = npz_open(&w, DIR "/dup.npz", &err);
    int dup = rc ? -1 : npz_add(w, "a", "|u1", 1, di, u, &err);
    int dup2 = rc || dup ? -1 : npz_add(w, "a", "|u1", 1, di, u, &err);
    if (!rc) npz_abort(w);
    tu_report("npz: a second entry of the same name is refused; abort leaves no file",
              dup == 0 && dup2 == VC_EINPUT && strstr(err.msg, "two entries") &&
              access(DIR "/dup.npz", F_OK) != 0 && access(DIR "/dup.npz.tmp", F_OK) != 0, "%d %d %s", dup, dup2, err.msg);
    rc = npz_open(&w, "/nonexistent/dir/d.npz", &err);
    tu_report("npz: an unwritable path is refused with the path and the reason",
              rc == VC_EINPUT && strstr(err.msg, "/nonexistent/dir/d.npz") && strstr(err.msg, "cannot write"), "%s", err.msg);
}

int main(int argc, char **argv) {
    tu_init(argc, argv);
    test_decisions();
    test_npz();
    return tu_finish();
}
