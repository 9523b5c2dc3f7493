// test_projection.c: the display graph and the projections (viscnn/projection.h)
// and `viscnn project` (viscnn/cli/cmd_project.c).
//
// Kinds of case (protocol in testutil.h; argv[1] filters by substring):
//   mds       classical MDS recovers known 2-D configurations from their
//             distances (pairwise distances to 1e-6 relative: translation,
//             rotation and reflection do not matter); SMACOF keeps an exact
//             fit, never raises the stress, and refines a perturbed start;
//             sign convention; layout_vectors (zero rows, scale, duplicates).
//   rotation  the 64-angle search never lengthens the strongest edges versus
//             angle 0, and finds a planted rotation.
//   relax     mds-smooth relaxation: no pair closer than the minimum after it,
//             from coincident points, clusters and separated points.
//   grid      shape, centring and spacing of the grid.
//   dgraph    a model with residual adds (one of them on the image) and a
//             concat feeding a grouped conv: layers, kinds and the source
//             (display layer, channel) of every kernel and identity edge.
//   cli       cmd_project in-process on that model: grid, weights, mds (two
//             or more categories from --input/--labels), mds-smooth; byte-for-
//             byte determinism; bad input -> VC_EINPUT (exit 2); and, when
//             bin/viscnn has been built, the real exit status and one line.
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cjson/cJSON.h>
#include "testmodel.h"
#include "viscnn_internal.h"
#include "../loaders/npy.h"
#include "../loaders/safetensors.h"
#include "../viscnn/cli/cli.h"
#include "../viscnn/projection.h"

#define DIR "build/testdata/projection"

// ---- small helpers ---------------------------------------------------------------------
static double urand(tu_rng *r) { return (double)tu_uniform(r); }

static void dist_matrix(double *d, const double *x, int n, int dim) {
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++) {
            double s = 0;
            for (int c = 0; c < dim; c++) { double t = x[i * dim + c] - x[j * dim + c]; s += t * t; }
            d[i * n + j] = sqrt(s);
        }
}

// max_ij | |x_i - x_j| - d_ij | / max d
static double dist_err(const double *x, const double *d, int n) {
    double e = 0, mx = 1e-300;
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++) {
            double g = hypot(x[2 * i] - x[2 * j], x[2 * i + 1] - x[2 * j + 1]);
            if (fabs(g - d[i * n + j]) > e) e = fabs(g - d[i * n + j]);
            if (d[i * n + j] > mx) mx = d[i * n + j];
        }
    return e / mx;
}

// ---- mds -------------------------------------------------------------------------------
static void test_mds(void) {
    static const int sizes[] = {2, 3, 5, 12, 40, 200};
    for (size_t t = 0; t < sizeof sizes / sizeof *sizes; t++) {
        int n = sizes[t];
        char name[160];
        snprintf(name, sizeof name, "mds classical recovers a random 2-D configuration n=%d (pairwise distances, rel err < 1e-6)", n);
        if (!tu_selected(name)) continue;
        tu_rng r = {0x1234567ULL + (uint64_t)n};
        double *p = malloc(2 * n * sizeof(double)), *d = malloc((size_t)n * n * sizeof(double)), *x = malloc(2 * n * sizeof(double));
        for (int i = 0; i < 2 * n; i++) p[i] = 3 * urand(&r) + (i % 2 ? 10 : -4);   // off-centre, anisotropic
        dist_matrix(d, p, n, 2);
        vc_error err = {{0}};
        int rc = mds_classical(x, d, n, &err);
        double e = rc ? INFINITY : dist_err(x, d, n);
        tu_report(name, !rc && e < 1e-6, "rc %d (%s), rel err %.3g", rc, err.msg, e);
        free(p); free(d); free(x);
    }

    // A regular hexagon: the two top eigenvalues are equal (any basis of the plane).
    if (tu_selected("mds classical recovers a regular hexagon plus centre (degenerate eigenvalues)")) {
        double p[14] = {0, 0}, d[49], x[14];
        for (int k = 0; k < 6; k++) { p[2 + 2 * k] = cos(k * M_PI / 3); p[3 + 2 * k] = sin(k * M_PI / 3); }
        dist_matrix(d, p, 7, 2);
        vc_error err = {{0}};
        int rc = mds_classical(x, d, 7, &err);
        double e = rc ? INFINITY : dist_err(x, d, 7);
        tu_report("mds classical recovers a regular hexagon plus centre (degenerate eigenvalues)", !rc && e < 1e-6, "rel err %.3g", e);
    }

    if (tu_selected("mds classical: centred, signs fixed (largest-|.| coordinate of each axis positive), same bytes twice")) {
        int n = 30;
        tu_rng r = {77};
        double p[60], d[900], x[60], x2[60];
        for (int i = 0; i < 60; i++) p[i] = urand(&r) * (i % 2 ? 1 : 3);
        dist_matrix(d, p, n, 2);
        vc_error err;
        int rc = mds_classical(x, d, n, &err) | mds_classical(x2, d, n, &err);
        int ok = !rc && !memcmp(x, x2, sizeof x);
        double cy = 0, cz = 0;
        for (int a = 0; a < 2; a++) {
            int big = 0;
            for (int i = 1; i < n; i++) if (fabs(x[2 * i + a]) > fabs(x[2 * big + a])) big = i;
            ok &= x[2 * big + a] > 0;
        }
        for (int i = 0; i < n; i++) { cy += x[2 * i]; cz += x[2 * i + 1]; }
        ok &= fabs(cy) < 1e-9 && fabs(cz) < 1e-9;
        // axis 0 carries the larger variance
        double vy = 0, vz = 0;
        for (int i = 0; i < n; i++) { vy += x[2 * i] * x[2 * i]; vz += x[2 * i + 1] * x[2 * i + 1]; }
        ok &= vy >= vz;
        tu_report("mds classical: centred, signs fixed (largest-|.| coordinate of each axis positive), same bytes twice", ok,
                  "rc %d, centroid (%.3g, %.3g), var %.3g %.3g", rc, cy, cz, vy, vz);
    }

    if (tu_selected("mds smacof keeps an exact 2-D fit (rel err < 1e-6) n=25")) {
        int n = 25;
        tu_rng r = {99};
        double p[50], d[625], x[50];
        for (int i = 0; i < 50; i++) p[i] = urand(&r);
        dist_matrix(d, p, n, 2);
        vc_error err;
        int rc = mds_classical(x, d, n, &err);
        double s = mds_smacof(x, d, n, VC_SMACOF_ITERS, VC_SMACOF_TOL), e = dist_err(x, d, n);
        tu_report("mds smacof keeps an exact 2-D fit (rel err < 1e-6) n=25", !rc && e < 1e-6 && s < 1e-10, "err %.3g stress %.3g", e, s);
    }

    if (tu_selected("mds smacof refines a perturbed start back to the configuration (rel err < 1e-4) n=20")) {
        int n = 20;
        tu_rng r = {4242};
        double p[40], d[400], x[40];
        for (int i = 0; i < 40; i++) p[i] = 2 * urand(&r);
        dist_matrix(d, p, n, 2);
        for (int i = 0; i < 40; i++) x[i] = p[i] + 0.05 * urand(&r);
        double s0 = mds_stress(x, d, n), s = mds_smacof(x, d, n, 2000, 1e-15), e = dist_err(x, d, n);
        tu_report("mds smacof refines a perturbed start back to the configuration (rel err < 1e-4) n=20", e < 1e-4 && s < s0,
                  "stress %.3g -> %.3g, err %.3g", s0, s, e);
    }

    // Non-Euclidean-in-2-D data (points in 5-D): SMACOF can only lower the stress.
    for (int t = 0; t < 4; t++) {
        char name[160];
        int n = 10 + 30 * t;
        snprintf(name, sizeof name, "mds smacof never raises the stress of classical MDS (5-D points, n=%d)", n);
        if (!tu_selected(name)) continue;
        tu_rng r = {1000 + (uint64_t)t};
        double *p = malloc(5 * n * sizeof(double)), *d = malloc((size_t)n * n * sizeof(double)), *x = malloc(2 * n * sizeof(double));
        for (int i = 0; i < 5 * n; i++) p[i] = urand(&r);
        dist_matrix(d, p, n, 5);
        vc_error err;
        int rc = mds_classical(x, d, n, &err);
        double s0 = mds_stress(x, d, n), s1 = mds_smacof(x, d, n, VC_SMACOF_ITERS, VC_SMACOF_TOL);
        tu_report(name, !rc && s1 <= s0, "stress %.6g -> %.6g", s0, s1);
        free(p); free(d); free(x);
    }

    if (tu_selected("mds layout_vectors: zero rows at the centre, radius 0.5*sqrt(n), equal directions coincide")) {
        // 12 rows of 3-D scores: rows 0 and 5 zero, row 7 = 2 * row 3 (same direction).
        int n = 12, dim = 3, placed;
        tu_rng r = {5};
        double v[36], p[24], p2[24];
        for (int i = 0; i < 36; i++) v[i] = fabs(urand(&r));
        for (int c = 0; c < 3; c++) { v[0 * 3 + c] = 0; v[5 * 3 + c] = 0; v[7 * 3 + c] = 2 * v[3 * 3 + c]; }
        vc_error err;
        int rc = layout_vectors(p, &placed, v, n, dim, &err);
        layout_vectors(p2, &placed, v, n, dim, &err);
        double rmax = 0;
        for (int i = 0; i < n; i++) if (hypot(p[2 * i], p[2 * i + 1]) > rmax) rmax = hypot(p[2 * i], p[2 * i + 1]);
        int ok = !rc && placed && p[0] == 0 && p[1] == 0 && p[10] == 0 && p[11] == 0 &&
                 fabs(rmax - 0.5 * sqrt(12.0)) < 1e-9 && hypot(p[6] - p[14], p[7] - p[15]) < 1e-6 && !memcmp(p, p2, sizeof p);
        double zero[6] = {0};
        int placed0 = 1;
        rc |= layout_vectors(p2, &placed0, zero, 2, 3, &err);
        ok &= !placed0;
        tu_report("mds layout_vectors: zero rows at the centre, radius 0.5*sqrt(n), equal directions coincide", ok,
                  "rc %d, rmax %.6g, zero rows at (%g,%g) (%g,%g), dup gap %.3g, all-zero placed %d", rc, rmax, p[0], p[1],
                  p[10], p[11], hypot(p[6] - p[14], p[7] - p[15]), placed0);
    }
}

// ---- rotation --------------------------------------------------------------------------
static void test_rotation(void) {
    for (int t = 0; t < 20; t++) {
        char name[160];
        int n = 3 + t * 7, ne = 1 + (t * 13) % VC_ROT_EDGES;
        snprintf(name, sizeof name, "rotation search never lengthens the strongest edges vs angle 0 (n=%d, %d edges)", n, ne);
        if (!tu_selected(name)) continue;
        tu_rng r = {31 + (uint64_t)t};
        double *p = malloc(2 * n * sizeof(double)), q[2 * VC_ROT_EDGES];
        int j[VC_ROT_EDGES];
        for (int i = 0; i < 2 * n; i++) p[i] = 3 * urand(&r);
        for (int e = 0; e < ne; e++) { j[e] = (int)((urand(&r) + 1) * 0.5 * n) % n; q[2 * e] = 3 * urand(&r); q[2 * e + 1] = 3 * urand(&r); }
        double c0 = rotation_cost(p, ne, j, q, 0);
        int k = rotation_best(p, ne, j, q);
        double ck = rotation_cost(p, ne, j, q, k);
        int ok = ck <= c0;
        for (int a = 0; a < VC_ROT_ANGLES; a++) ok &= rotation_cost(p, ne, j, q, a) >= ck;
        rotate_layer(p, n, k);
        double after = rotation_cost(p, ne, j, q, 0);
        ok &= after <= c0 * (1 + 1e-12) && fabs(after - ck) <= 1e-9 * (1 + ck);
        tu_report(name, ok, "angle 0: %.6g, best k=%d: %.6g, after rotating: %.6g", c0, k, ck, after);
        free(p);
    }
    if (tu_selected("rotation search finds a planted rotation (k=23 of 64)")) {
        int n = 15, j[15];
        tu_rng r = {8};
        double p[30], q[30];
        for (int i = 0; i < 30; i++) q[i] = urand(&r);
        memcpy(p, q, sizeof p);
        rotate_layer(p, n, VC_ROT_ANGLES - 23);   // p = R(-23) q, so R(23) p = q
        for (int i = 0; i < n; i++) j[i] = i;
        int k = rotation_best(p, n, j, q);
        tu_report("rotation search finds a planted rotation (k=23 of 64)", k == 23 && rotation_cost(p, n, j, q, k) < 1e-9,
                  "found k=%d cost %.3g", k, rotation_cost(p, n, j, q, k));
    }
}

// ---- relax -----------------------------------------------------------------------------
static void test_relax(void) {
    static const struct { const char *what; int n; double spread, dmin; } cases[] = {
        {"all points coincident", 50, 0, 0.5},
        {"two coincident", 2, 0, 0.5},
        {"tight cluster", 200, 0.3, 0.5},
        {"mds-sized layer", 256, 8, 0.5},
        {"large layer, half at the centre", 1000, 15, 0.5},
        {"big minimum", 60, 1, 2.0},
    };
    for (size_t t = 0; t < sizeof cases / sizeof *cases; t++) {
        char name[200];
        int n = cases[t].n;
        snprintf(name, sizeof name, "relax %s (n=%d, dmin=%g): min pair distance >= dmin, deterministic", cases[t].what, n, cases[t].dmin);
        if (!tu_selected(name)) continue;
        tu_rng r = {600 + (uint64_t)t};
        double *p0 = malloc(2 * n * sizeof(double)), *p = malloc(2 * n * sizeof(double)), *p2 = malloc(2 * n * sizeof(double));
        for (int i = 0; i < 2 * n; i++) p0[i] = (t == 4 && i < n) ? 0 : cases[t].spread * urand(&r);
        memcpy(p, p0, 2 * n * sizeof(double));
        memcpy(p2, p0, 2 * n * sizeof(double));
        relax_layer(p, p0, n, cases[t].dmin);
        relax_layer(p2, p0, n, cases[t].dmin);
        double md = min_pair_distance(p, n), mv = 0;
        for (int i = 0; i < n; i++) { double v = hypot(p[2 * i] - p0[2 * i], p[2 * i + 1] - p0[2 * i + 1]); if (v > mv) mv = v; }
        int ok = md >= cases[t].dmin && !memcmp(p, p2, 2 * n * sizeof(double));
        for (int i = 0; i < 2 * n; i++) ok &= isfinite(p[i]);
        tu_report(name, ok, "min distance %.6g, largest move %.3g", md, mv);
        free(p0); free(p); free(p2);
    }
    if (tu_selected("relax leaves an already separated layer where it is")) {
        double p0[50], p[50];
        layout_grid(p0, 25);
        memcpy(p, p0, sizeof p);
        relax_layer(p, p0, 25, 0.5);
        tu_report("relax leaves an already separated layer where it is", !memcmp(p, p0, sizeof p), "moved");
    }
}

// ---- grid ------------------------------------------------------------------------------
static void test_grid(void) {
    static const int sizes[] = {1, 2, 3, 4, 5, 10, 16, 17, 64, 100, 512};
    for (size_t t = 0; t < sizeof sizes / sizeof *sizes; t++) {
        int n = sizes[t], cols = 1;
        while (cols * cols < n) cols++;
        int rows = (n + cols - 1) / cols;
        char name[160];
        snprintf(name, sizeof name, "grid n=%d: %d columns x %d rows, spacing 1, centred", n, cols, rows);
        if (!tu_selected(name)) continue;
        double *p = malloc(2 * n * sizeof(double));
        layout_grid(p, n);
        double y0 = INFINITY, y1 = -INFINITY, z0 = INFINITY, z1 = -INFINITY;
        int ok = 1;
        for (int k = 0; k < n; k++) {
            double y = p[2 * k], z = p[2 * k + 1];
            y0 = fmin(y0, y); y1 = fmax(y1, y); z0 = fmin(z0, z); z1 = fmax(z1, z);
            ok &= y == (k % cols) - 0.5 * (cols - 1) && z == (k / cols) - 0.5 * (rows - 1);
        }
        double md = min_pair_distance(p, n);
        ok &= y1 - y0 == (n >= cols ? cols - 1 : n - 1) && z1 - z0 == rows - 1 && z0 == -z1 && (n < 2 || md == 1);
        tu_report(name, ok, "y %g..%g z %g..%g min distance %g", y0, y1, z0, z1, md);
        free(p);
    }
}

// ---- the test model (tests/testmodel.h) ---------------------------------------------
// input 3x8x8 -> c0 -> add0 = input + c0 -> c1 -> bn1 -> relu1 -> c2;
// add1 = c2 + relu1 -> relu -> maxpool 2 (4x4) -> c3a (2, 1x1), c3b (3, 3x3);
// cat = [c3a, c3b, pool] (9) -> c4 (6, groups 3) -> relu -> c5 (2) -> flatten -> fc (3).
static const char *const model_path = DIR "/resconcat.safetensors";
static int make_model(void) {
    static mb b = {.rng = {0xA5A5A5A5DEADBEEFULL}, .wlo = -1, .whi = 1};
    const char *same3 = "\"stride\": [1, 1], \"padding\": [1, 1], \"dilation\": [1, 1], \"groups\": 1";
    const char *same1 = "\"stride\": [1, 1], \"padding\": [0, 0], \"dilation\": [1, 1], \"groups\": 1";
    mb_conv(&b, "c0", "input", 3, 3, 3, 3, same3);
    mb_op(&b, "add0", "add", "\"input\", \"c0\"", "");
    mb_conv(&b, "c1", "add0", 3, 4, 3, 3, same3);
    const float lo[4] = {0.5f, -0.1f, -0.1f, 0.5f}, hi[4] = {1.5f, 0.3f, 0.1f, 1.5f};
    mb_bn_ranges(&b, "bn1", "c1", 4, lo, hi);
    mb_op(&b, "relu1", "relu", "\"bn1\"", "");
    mb_conv(&b, "c2", "relu1", 4, 4, 3, 3, same3);
    mb_op(&b, "add1", "add", "\"c2\", \"relu1\"", "");
    mb_op(&b, "relu2", "relu", "\"add1\"", "");
    mb_op(&b, "pool", "maxpool2d", "\"relu2\"", "\"kernel\": [2, 2], \"stride\": [2, 2], \"padding\": [0, 0], \"dilation\": [1, 1], \"ceil_mode\": false");
    mb_conv(&b, "c3a", "pool", 4, 2, 1, 1, same1);
    mb_conv(&b, "c3b", "pool", 4, 3, 3, 3, same3);
    mb_op(&b, "cat", "concat", "\"c3a\", \"c3b\", \"pool\"", "");
    mb_conv(&b, "c4", "cat", 3, 6, 3, 3, "\"stride\": [1, 1], \"padding\": [1, 1], \"dilation\": [1, 1], \"groups\": 3");
    mb_op(&b, "relu4", "relu", "\"c4\"", "");
    mb_conv(&b, "c5", "relu4", 6, 2, 1, 1, same1);
    mb_op(&b, "flat", "flatten", "\"c5\"", "");
    mb_linear(&b, "fc", "flat", 32, 3, 1);
    vc_error err = {{0}};
    int rc = mb_write(&b, model_path, "resconcat", 3, 8, 8, "fc", &err);
    if (rc) fprintf(stderr, "# st_write: %s\n", err.msg);
    return rc;
}

// x.npy: 6 random images; labels.npy (int64): 0 1 2 0 1 2.
static int write_inputs(void) {
    tu_rng r = {0xBADC0FFEEULL};
    float *x = tu_rand(&r, 6 * 3 * 8 * 8);
    long long dim[4] = {6, 3, 8, 8};
    vc_error err;
    int rc = npy_write(DIR "/x.npy", x, 4, dim, &err);
    free(x);
    if (rc) return rc;
    FILE *f = fopen(DIR "/labels.npy", "wb");
    if (!f) return 1;
    char hdr[128];
    int len = snprintf(hdr, sizeof hdr, "{'descr': '<i8', 'fortran_order': False, 'shape': (6,), }");
    int pad = 64 - (10 + len + 1) % 64;
    fwrite("\x93NUMPY\x01\x00", 1, 8, f);
    unsigned short hl = (unsigned short)(len + pad + 1);
    fputc(hl & 255, f); fputc(hl >> 8, f);
    fwrite(hdr, 1, len, f);
    for (int i = 0; i < pad; i++) fputc(' ', f);
    fputc('\n', f);
    for (int i = 0; i < 6; i++) { long long v = i % 3; fwrite(&v, 8, 1, f); }
    return fclose(f) != 0;
}

// ---- dgraph ----------------------------------------------------------------------------
static void test_dgraph(const vc_model *m) {
    const char *name = "dgraph resconcat: display layers input, c0, add0, c1, c2, add1, c3a, c3b, c4, c5 with kinds and channels";
    vc_dgraph g;
    dgraph_build(&g, m);
    #define L(nm) (vc_model_find(m, nm) >= 0 ? g.layer_of[vc_model_find(m, nm)] : -9)
    if (tu_selected(name)) {
        static const struct { const char *n; vc_dlayer_kind k; int c; } want[] = {
            {"input", VC_DL_INPUT, 3}, {"c0", VC_DL_CONV, 3}, {"add0", VC_DL_ADD, 3}, {"c1", VC_DL_CONV, 4},
            {"c2", VC_DL_CONV, 4}, {"add1", VC_DL_ADD, 4}, {"c3a", VC_DL_CONV, 2}, {"c3b", VC_DL_CONV, 3},
            {"c4", VC_DL_CONV, 6}, {"c5", VC_DL_CONV, 2}};
        int ok = g.n_layers == 10 && L("input") == 0, prev = -1;
        char why[256] = "";
        for (int k = 0; k < 10 && ok; k++) {
            int l = L(want[k].n);
            if (l < 0 || l >= g.n_layers || g.l[l].kind != want[k].k || g.l[l].c != want[k].c) {
                ok = 0;
                snprintf(why, sizeof why, "%s: layer %d", want[k].n, l);
            }
            if (k < 6 && l <= prev) { ok = 0; snprintf(why, sizeof why, "%s out of graph order", want[k].n); }
            if (k < 6) prev = l;
        }
        for (const char *nm = "bn1\0relu1\0relu2\0pool\0cat\0relu4\0flat\0fc\0"; *nm && ok; nm += strlen(nm) + 1)
            if (L(nm) != -1) { ok = 0; snprintf(why, sizeof why, "%s should not be a display layer", nm); }
        ok &= dgraph_nodes(&g) == 3 + 3 + 3 + 4 + 4 + 4 + 2 + 3 + 6 + 2;
        tu_report(name, ok, "%s (n_layers %d)", why, g.n_layers);
    }
    name = "dgraph resconcat: every kernel's and identity edge's source (through bn/relu/pool/concat, grouped conv)";
    if (tu_selected(name)) {
        char why[256] = "";
        int ok = 1;
        #define CHECK(got, wl, wc, ...) do { vc_dsrc s_ = (got); if (ok && (s_.layer != (wl) || s_.ch != (wc))) { \
            ok = 0; snprintf(why, sizeof why, __VA_ARGS__); \
            snprintf(why + strlen(why), sizeof why - strlen(why), ": got (%d,%d), want (%d,%d)", s_.layer, s_.ch, (wl), (wc)); } } while (0)
        for (int j = 0; j < 3; j++) for (int i = 0; i < 3; i++) CHECK(dgraph_kernel_source(&g, L("c0"), j, i), L("input"), i, "c0 (%d,%d)", j, i);
        for (int c = 0; c < 3; c++) {
            CHECK(g.l[L("add0")].src[c], L("input"), c, "add0 operand 0 ch %d", c);
            CHECK(g.l[L("add0")].src[3 + c], L("c0"), c, "add0 operand 1 ch %d", c);
        }
        for (int j = 0; j < 4; j++) for (int i = 0; i < 3; i++) CHECK(dgraph_kernel_source(&g, L("c1"), j, i), L("add0"), i, "c1 (%d,%d)", j, i);
        for (int j = 0; j < 4; j++) for (int i = 0; i < 4; i++) CHECK(dgraph_kernel_source(&g, L("c2"), j, i), L("c1"), i, "c2 (%d,%d)", j, i);
        for (int c = 0; c < 4; c++) {
            CHECK(g.l[L("add1")].src[c], L("c2"), c, "add1 operand 0 ch %d", c);
            CHECK(g.l[L("add1")].src[4 + c], L("c1"), c, "add1 operand 1 ch %d", c);
        }
        for (int j = 0; j < 2; j++) for (int i = 0; i < 4; i++) CHECK(dgraph_kernel_source(&g, L("c3a"), j, i), L("add1"), i, "c3a (%d,%d)", j, i);
        for (int j = 0; j < 3; j++) for (int i = 0; i < 4; i++) CHECK(dgraph_kernel_source(&g, L("c3b"), j, i), L("add1"), i, "c3b (%d,%d)", j, i);
        // cat = [c3a 0..1, c3b 0..2, pool(add1) 0..3]; c4: 3 groups of 3 in-channels, 2 out each
        vc_dsrc cat[9] = {{L("c3a"), 0}, {L("c3a"), 1}, {L("c3b"), 0}, {L("c3b"), 1}, {L("c3b"), 2},
                          {L("add1"), 0}, {L("add1"), 1}, {L("add1"), 2}, {L("add1"), 3}};
        ok &= g.l[L("c4")].groups == 3 && g.l[L("c4")].cg == 3 && g.l[L("c4")].n_src == 9;
        for (int j = 0; j < 6; j++)
            for (int i = 0; i < 3; i++) CHECK(dgraph_kernel_source(&g, L("c4"), j, i), cat[(j / 2) * 3 + i].layer, cat[(j / 2) * 3 + i].ch, "c4 (%d,%d)", j, i);
        for (int j = 0; j < 2; j++) for (int i = 0; i < 6; i++) CHECK(dgraph_kernel_source(&g, L("c5"), j, i), L("c4"), i, "c5 (%d,%d)", j, i);
        // tracing from non-display nodes
        CHECK(dgraph_trace(&g, m, vc_model_find(m, "cat"), 6), L("add1"), 1, "trace cat ch 6");
        CHECK(dgraph_trace(&g, m, vc_model_find(m, "fc"), 0), -1, -1, "trace fc (linear mixes channels)");
        tu_report(name, ok, "%s", why);
    }
    dgraph_free(&g);
}

// ---- cli -------------------------------------------------------------------------------
// Runs cmd_project with stdout silenced.
static int run_project(vc_error *err, int argc, const char **argv) {
    fflush(stdout);
    int saved = dup(1), fd = open("/dev/null", O_WRONLY);
    dup2(fd, 1);
    close(fd);
    memset(err, 0, sizeof *err);
    int rc = cmd_project(argc, (char **)argv, err);
    fflush(stdout);
    dup2(saved, 1);
    close(saved);
    return rc;
}

static char *slurp(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = malloc(len + 1);
    *n = fread(s, 1, len, f);
    s[*n] = 0;
    fclose(f);
    return s;
}

// Checks an output file against the display graph; returns "" or the reason.
// min_gap > 0: no two positions of a layer closer than that.
static const char *check_json(const char *path, const vc_model *m, const char *proj, double min_gap, char *why, size_t n) {
    size_t len;
    char *s = slurp(path, &len);
    cJSON *j = s ? cJSON_Parse(s) : NULL;
    free(s);
    snprintf(why, n, "%s", "");
    if (!j) { snprintf(why, n, "%s: missing or not JSON", path); return why; }
    vc_dgraph g;
    dgraph_build(&g, m);
    cJSON *layers = cJSON_GetObjectItem(j, "layers"), *sources = cJSON_GetObjectItem(j, "sources");
    cJSON *pj = cJSON_GetObjectItem(j, "projection");
    if (!cJSON_IsString(pj) || strcmp(pj->valuestring, proj)) snprintf(why, n, "projection member");
    else if (cJSON_GetArraySize(layers) != g.n_layers) snprintf(why, n, "%d layers, want %d", cJSON_GetArraySize(layers), g.n_layers);
    for (int l = 0; !*why && l < g.n_layers; l++) {
        cJSON *L = cJSON_GetArrayItem(layers, l), *pos = cJSON_GetObjectItem(L, "positions");
        const char *nm = cJSON_GetStringValue(cJSON_GetObjectItem(L, "name")), *kind = cJSON_GetStringValue(cJSON_GetObjectItem(L, "kind"));
        if (!nm || strcmp(nm, m->nodes[g.l[l].node].name) || !kind || strcmp(kind, vc_dlayer_kind_names[g.l[l].kind]) ||
            cJSON_GetObjectItem(L, "depth")->valueint != l || cJSON_GetObjectItem(L, "channels")->valueint != g.l[l].c ||
            cJSON_GetArraySize(pos) != g.l[l].c) { snprintf(why, n, "layer %d header", l); break; }
        double *p = malloc(2 * g.l[l].c * sizeof(double));
        for (int c = 0; c < g.l[l].c; c++) {
            cJSON *q = cJSON_GetArrayItem(pos, c);
            if (cJSON_GetArraySize(q) != 2 || !cJSON_IsNumber(cJSON_GetArrayItem(q, 0)) || !cJSON_IsNumber(cJSON_GetArrayItem(q, 1))) {
                snprintf(why, n, "layer %d position %d not [y, z]", l, c);
                break;
            }
            p[2 * c] = cJSON_GetArrayItem(q, 0)->valuedouble;
            p[2 * c + 1] = cJSON_GetArrayItem(q, 1)->valuedouble;
            if (hypot(p[2 * c], p[2 * c + 1]) > 0.5 * sqrt(g.l[l].c) + 1e-5 + (min_gap > 0 ? 10 : 0))
                snprintf(why, n, "layer %d position %d outside radius 0.5*sqrt(C)", l, c);
        }
        // printed with 7 significant digits
        if (!*why && min_gap > 0 && min_pair_distance(p, g.l[l].c) < min_gap * (1 - 1e-5))
            snprintf(why, n, "layer %d: two nodes %.6g apart (< %g)", l, min_pair_distance(p, g.l[l].c), min_gap);
        free(p);
    }
    int k = 0;
    for (int l = 0; !*why && l < g.n_layers; l++) {
        if (g.l[l].kind == VC_DL_INPUT) continue;
        cJSON *S = cJSON_GetArrayItem(sources, k++), *from = cJSON_GetObjectItem(S, "from");
        if (!S || cJSON_GetObjectItem(S, "layer")->valueint != l || cJSON_GetArraySize(from) != g.l[l].n_src) {
            snprintf(why, n, "sources entry %d (layer %d)", k - 1, l);
            break;
        }
        for (int i = 0; i < g.l[l].n_src; i++) {
            cJSON *q = cJSON_GetArrayItem(from, i);
            if (cJSON_GetArrayItem(q, 0)->valueint != g.l[l].src[i].layer || cJSON_GetArrayItem(q, 1)->valueint != g.l[l].src[i].ch) {
                snprintf(why, n, "sources layer %d entry %d", l, i);
                break;
            }
        }
    }
    if (!*why && cJSON_GetArraySize(sources) != k) snprintf(why, n, "%d sources entries, want %d", cJSON_GetArraySize(sources), k);
    dgraph_free(&g);
    cJSON_Delete(j);
    return why;
}

static int same_file(const char *a, const char *b) {
    size_t na, nb;
    char *x = slurp(a, &na), *y = slurp(b, &nb);
    int same = x && y && na == nb && !memcmp(x, y, na);
    free(x); free(y);
    return same;
}

static void test_cli(const vc_model *m) {
    const char *projs[4] = {"grid", "weights", "mds", "mds-smooth"};
    for (int p = 0; p < 4; p++) {
        char name[200], out1[128], out2[128], why[256];
        int mds = p >= 2;
        snprintf(name, sizeof name, "cli project --projection %s%s: exit 0, layers/positions/sources match the display graph, same bytes twice",
                 projs[p], mds ? " --input x.npy --labels labels.npy (3 categories)" : "");
        if (!tu_selected(name)) continue;
        snprintf(out1, sizeof out1, DIR "/%s.1.json", projs[p]);
        snprintf(out2, sizeof out2, DIR "/%s.2.json", projs[p]);
        const char *argv[12] = {model_path, "--projection", projs[p], "-o", out1, "--input", DIR "/x.npy", "--labels", DIR "/labels.npy", "--batch", "4"};
        vc_error err;
        int argc = mds ? 11 : 5;
        if (p == 1) { argv[5] = "--images"; argv[6] = "/nonexistent/ignored"; argc = 7; }   // accepted, not needed
        int rc1 = run_project(&err, argc, argv);
        char e1[1024];
        snprintf(e1, sizeof e1, "%s", err.msg);
        argv[4] = out2;
        int rc2 = run_project(&err, argc, argv);
        if (rc1 || rc2) { tu_report(name, 0, "rc %d %d: %s %s", rc1, rc2, e1, err.msg); continue; }
        check_json(out1, m, projs[p], p == 3 ? VC_SMOOTH_DMIN : 0, why, sizeof why);
        tu_report(name, !*why && same_file(out1, out2), "%s", *why ? why : "outputs differ");
    }

    // The grid output is exactly layout_grid per layer.
    if (tu_selected("cli project grid: positions are layout_grid's")) {
        vc_dgraph g;
        vc_layout lay;
        vc_error err;
        dgraph_build(&g, m);
        int rc = projection_run(&lay, m, &g, VC_PROJ_GRID, NULL, &err), ok = !rc;
        for (int l = 0; ok && l < g.n_layers; l++) {
            double p[64];
            layout_grid(p, g.l[l].c);
            ok = !memcmp(p, lay.pos[l], 2 * g.l[l].c * sizeof(double));
        }
        if (!rc) layout_free(&lay);
        dgraph_free(&g);
        tu_report("cli project grid: positions are layout_grid's", ok, "rc %d", rc);
    }

    static const struct { const char *what, *msg; int argc; const char *argv[12]; } bad[] = {
        {"mds on --input without labels (1 category)", "2 or more categories", 7,
         {NULL, "--projection", "mds", "-o", DIR "/bad.json", "--input", DIR "/x.npy"}},
        {"mds-smooth without images", "needs --images", 5, {NULL, "--projection", "mds-smooth", "-o", DIR "/bad.json"}},
        {"unknown projection", "unknown projection", 5, {NULL, "--projection", "tsne", "-o", DIR "/bad.json"}},
        {"missing --projection", "missing --projection", 3, {NULL, "-o", DIR "/bad.json"}},
        {"missing -o", "missing -o", 3, {NULL, "--projection", "grid"}},
        {"unknown option", "unknown option", 7, {NULL, "--projection", "grid", "-o", DIR "/bad.json", "--frobnicate", "1"}},
        {"bad metric", "unknown metric", 7, {NULL, "--projection", "weights", "-o", DIR "/bad.json", "--metric", "nope"}},
        {"bad target", "--target", 7, {NULL, "--projection", "grid", "-o", DIR "/bad.json", "--target", "class:99"}},
        {"missing model", "nonexistent", 5, {DIR "/nonexistent.safetensors", "--projection", "grid", "-o", DIR "/bad.json"}},
    };
    for (size_t t = 0; t < sizeof bad / sizeof *bad; t++) {
        char name[200];
        snprintf(name, sizeof name, "cli project bad input: %s -> VC_EINPUT (exit 2), message has '%s', no output file", bad[t].what, bad[t].msg);
        if (!tu_selected(name)) continue;
        const char *argv[12];
        memcpy(argv, bad[t].argv, sizeof argv);
        if (!argv[0]) argv[0] = model_path;
        remove(DIR "/bad.json");
        vc_error err;
        int rc = run_project(&err, bad[t].argc, argv);
        struct stat st;
        int ok = rc == VC_EINPUT && strstr(err.msg, bad[t].msg) && !strchr(err.msg, '\n') && stat(DIR "/bad.json", &st) != 0 &&
                 stat(DIR "/bad.json.tmp", &st) != 0;
        tu_report(name, ok, "rc %d, message '%s'", rc, err.msg);
    }

    // The real binary: exit status 2 and exactly one line on stderr.
    const char *name = "cli bin/viscnn project mds on a 1-category set: exit 2, one line on stderr";
    if (tu_selected(name)) {
        if (access("bin/viscnn", X_OK) != 0) {
            printf("# %s: bin/viscnn not built here; covered in-process above\n", name);
        } else {
            char cmd[512];
            snprintf(cmd, sizeof cmd, "bin/viscnn project %s --projection mds --input %s/x.npy -o %s/bad.json 2> %s/stderr.txt",
                     model_path, DIR, DIR, DIR);
            int st = system(cmd);
            size_t n;
            char *e = slurp(DIR "/stderr.txt", &n);
            int lines = 0;
            for (size_t i = 0; e && i < n; i++) lines += e[i] == '\n';
            tu_report(name, WIFEXITED(st) && WEXITSTATUS(st) == 2 && lines == 1 && e && strstr(e, "2 or more categories"),
                      "status %d, %d lines: %s", WIFEXITED(st) ? WEXITSTATUS(st) : -1, lines, e ? e : "");
            free(e);
        }
    }
}

int main(int argc, char **argv) {
    tu_init(argc, argv);
    (void)tu_zeros; (void)tu_rel_err;
    test_mds();
    test_rotation();
    test_relax();
    test_grid();
    vc_model *m = NULL;
    vc_error err = {{0}};
    int rc = make_model() || write_inputs();
    if (!rc) rc = vc_model_load(&m, model_path, &err);
    if (rc) tu_report("model resconcat: write and load", 0, "%s", err.msg);
    else {
        test_dgraph(m);
        test_cli(m);
        vc_model_free(m);
    }
    return tu_finish();
}
