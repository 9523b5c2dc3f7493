// test_rf.c: receptive fields (viscnn/rf.h) and `viscnn rf` (viscnn/cli/cmd_rf.c).
//
// Models are written by the test itself (build/testdata/rf/*.safetensors,
// graph JSON + F32 tensors) and loaded with vc_model_load.
// Kinds of case (protocol in testutil.h; argv[1] filters by substring):
//   hand    boxes worked out by hand in the comments: an AlexNet-like chain,
//           dilation, ceil_mode pools, padding-only units, adaptive pooling,
//           flatten/linear, the input node; jump/size/start.
//   brute   the engine as oracle: every unit of every node of four graphs
//           (a chain with asymmetric attrs and adaptive up/down-sampling, a
//           residual graph, an inception-like concat graph, paths that disagree
//           on the jump). The spatial part is linear or monotone (conv with
//           positive weights and biases, positive input, BN with positive
//           scale, ReLU that never clips, avg/adaptive pooling, LRN with a
//           tiny alpha), so d(unit)/d(input) is nonzero exactly on the pixels
//           connected to the unit: its bounding box must equal the clipped
//           box. A batch of N = h*w images seeds one unit each (every channel
//           at (y, x): boxes are unions over channels). Also checked per unit:
//           clipped lies inside the unclipped box; the unclipped box agrees
//           with jump/size/start when the node is affine.
//   error   bad node, y, x: VC_EINPUT with a one-line message naming it.
//   cli     cmd_rf in-process: the printed line, and bad arguments.
//   alexnet build/testdata/alexnet/model.safetensors (torchvision AlexNet from
//           tools/torch_dump.py, converted by tests/run.sh's parity section,
//           which runs before this test); a failure if absent.
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <sys/stat.h>
#include <unistd.h>
#include "testmodel.h"
#include "viscnn_internal.h"
#include "../loaders/safetensors.h"
#include "../viscnn/cli/cli.h"
#include "../viscnn/rf.h"

#define DIR "build/testdata/rf"

// ---- writing small models: tests/testmodel.h ------------------------------------

// Writes DIR/<name>.safetensors (input "input" of shape C,H,W) and loads it.
static int mb_save(mb *b, const char *name, int C, int H, int W, vc_model **m, vc_error *err) {
    char path[256];
    snprintf(path, sizeof path, DIR "/%s.safetensors", name);
    *m = NULL;
    int rc = mb_write(b, path, name, C, H, W, NULL, err);
    return rc ? rc : vc_model_load(m, path, err);
}

// ---- the models ------------------------------------------------------------------

// AlexNet's first three layers on a 1x224x224 input. Unit y of
//   features.0 conv k11 s4 p2  reads input rows [4y-2, 4y+8]                size 11, jump 4
//   features.2 maxpool k3 s2   reads features.0 rows [2y, 2y+2] -> [8y-2, 8y+16]   size 19, jump 8
//   features.3 conv k5 s1 p2   reads features.2 rows [y-2, y+2] -> [8y-18, 8y+32]  size 51, jump 8
// Maps: 224 -> 55 -> 27 -> 27.
static int make_alexlike(vc_model **m, vc_error *err) {
    static mb b = {.rng = {0x9E3779B97F4A7C15ULL}};
    mb_conv(&b, "features.0", "input", 1, 2, 11, 11, "\"stride\": [4, 4], \"padding\": [2, 2]");
    mb_op(&b, "features.1", "relu", "\"features.0\"", "");
    mb_op(&b, "features.2", "maxpool2d", "\"features.1\"", "\"kernel\": 3, \"stride\": 2");
    mb_conv(&b, "features.3", "features.2", 2, 2, 5, 5, "\"padding\": 2");
    mb_op(&b, "features.4", "relu", "\"features.3\"", "");
    return mb_save(&b, "alexlike", 1, 224, 224, m, err);
}

// Independent chains from one 1x8x9 input (H=8 rows, W=9 columns); worked out
// in the hand cases below.
static int make_misc(vc_model **m, vc_error *err) {
    static mb b = {.rng = {0xD1B54A32D192ED03ULL}};
    mb_conv(&b, "dil", "input", 1, 1, 3, 3, "\"padding\": 2, \"dilation\": 2");            // 8x9
    mb_conv(&b, "gap1", "input", 1, 1, 3, 3, "\"stride\": 2");                             // 3x4
    mb_conv(&b, "gap2", "gap1", 1, 1, 3, 3, "\"padding\": 1");                             // 3x4
    mb_conv(&b, "pad", "input", 1, 1, 1, 1, "\"padding\": 2");                             // 12x13
    mb_op(&b, "maxceil", "maxpool2d", "\"input\"", "\"kernel\": 3, \"stride\": 2, \"padding\": 1, \"ceil_mode\": true");  // 5x5
    mb_op(&b, "avgceil", "avgpool2d", "\"input\"", "\"kernel\": 2, \"stride\": 2, \"ceil_mode\": true");  // 4x5
    mb_op(&b, "ada", "adaptive_avgpool2d", "\"input\"", "\"output\": [3, 4]");              // 3x4
    mb_op(&b, "flat", "flatten", "\"dil\"", "");
    mb_linear(&b, "fc", "flat", 8 * 9, 3, 0);
    mb_op(&b, "out", "log_softmax", "\"fc\"", "");
    return mb_save(&b, "misc", 1, 8, 9, m, err);
}

// brute: a chain with different row/column attrs, adaptive down- and up-sampling,
// a 1x1 conv whose border units read only padding, then flatten/linear.
static int make_chain(vc_model **m, vc_error *err) {
    static mb b = {.rng = {0x2545F4914F6CDD1DULL}};
    mb_conv(&b, "c1", "input", 2, 3, 3, 5, "\"stride\": [2, 1], \"padding\": [1, 2], \"dilation\": [1, 2]");  // 12x22
    mb_bn(&b, "bn1", "c1", 3);
    mb_op(&b, "r1", "relu", "\"bn1\"", "");
    mb_op(&b, "a1", "avgpool2d", "\"r1\"", "\"kernel\": 3, \"stride\": 2, \"padding\": 1, \"ceil_mode\": true, "
                                           "\"count_include_pad\": false");                           // 7x12
    mb_conv(&b, "c2", "a1", 3, 2, 3, 3, "\"padding\": 1, \"dilation\": 2");                           // 5x10
    mb_op(&b, "down", "adaptive_avgpool2d", "\"c2\"", "\"output\": [3, 4]");                          // 3x4
    mb_op(&b, "up", "adaptive_avgpool2d", "\"down\"", "\"output\": [7, 5]");                          // 7x5
    mb_conv(&b, "c3", "up", 2, 2, 1, 1, "\"padding\": 1");                                            // 9x7
    mb_op(&b, "a2", "avgpool2d", "\"c2\"", "\"kernel\": [2, 3], \"stride\": [2, 3]");                   // 2x3, drops c2's last row, col
    mb_op(&b, "flat", "flatten", "\"c3\"", "");
    mb_linear(&b, "fc", "flat", 2 * 9 * 7, 3, 0);
    return mb_save(&b, "chain", 2, 23, 26, m, err);
}

// brute: two resnet basic blocks, the first with a strided conv path and a
// strided 1x1 downsample, the second with an identity shortcut.
static int make_residual(vc_model **m, vc_error *err) {
    static mb b = {.rng = {0x8BADF00DDEADBEEFULL}};
    mb_conv(&b, "stem", "input", 3, 4, 3, 3, "\"padding\": 1");                        // 15x15
    mb_conv(&b, "b1.conv1", "stem", 4, 4, 3, 3, "\"stride\": 2, \"padding\": 1");      // 8x8
    mb_bn(&b, "b1.bn1", "b1.conv1", 4);
    mb_op(&b, "b1.relu", "relu", "\"b1.bn1\"", "");
    mb_conv(&b, "b1.conv2", "b1.relu", 4, 4, 3, 3, "\"padding\": 1");                  // 8x8
    mb_conv(&b, "b1.down", "stem", 4, 4, 1, 1, "\"stride\": 2");                       // 8x8
    mb_op(&b, "b1.add", "add", "\"b1.conv2\", \"b1.down\"", "");
    mb_op(&b, "b1.relu#2", "relu", "\"b1.add\"", "");
    mb_conv(&b, "b2.conv1", "b1.relu#2", 4, 4, 3, 3, "\"padding\": 1");
    mb_op(&b, "b2.relu", "relu", "\"b2.conv1\"", "");
    mb_conv(&b, "b2.conv2", "b2.relu", 4, 4, 3, 3, "\"padding\": 1");
    mb_op(&b, "b2.add", "add", "\"b2.conv2\", \"b1.relu#2\"", "");
    mb_op(&b, "pool", "adaptive_avgpool2d", "\"b2.add\"", "\"output\": [1, 1]");
    mb_op(&b, "flat", "flatten", "\"pool\"", "");
    mb_linear(&b, "fc", "flat", 4, 2, 0);
    return mb_save(&b, "residual", 3, 15, 15, m, err);
}

// brute: an inception block (1x1, 1x1-3x3, 1x1-5x5, avgpool-1x1) concatenated,
// LRN, dropout, then a strided 3x3 that never reads the last row.
static int make_inception(vc_model **m, vc_error *err) {
    static mb b = {.rng = {0x0123456789ABCDEFULL}};
    mb_conv(&b, "stem", "input", 3, 4, 3, 3, "\"stride\": [1, 2], \"padding\": 1");   // 12x7
    mb_conv(&b, "br1", "stem", 4, 2, 1, 1, "");
    mb_conv(&b, "br2a", "stem", 4, 2, 1, 1, "");
    mb_conv(&b, "br2b", "br2a", 2, 2, 3, 3, "\"padding\": 1");
    mb_conv(&b, "br3a", "stem", 4, 2, 1, 1, "");
    mb_conv(&b, "br3b", "br3a", 2, 2, 5, 5, "\"padding\": 2");
    mb_op(&b, "br4a", "avgpool2d", "\"stem\"", "\"kernel\": 3, \"stride\": 1, \"padding\": 1");
    mb_conv(&b, "br4b", "br4a", 4, 2, 1, 1, "");
    mb_op(&b, "cat", "concat", "\"br1\", \"br2b\", \"br3b\", \"br4b\"", "");
    mb_op(&b, "lrn", "lrn", "\"cat\"", "\"size\": 5, \"alpha\": 1e-4, \"beta\": 0.75, \"k\": 1.0");
    mb_op(&b, "drop", "dropout", "\"lrn\"", "\"p\": 0.5");
    mb_conv(&b, "mix", "drop", 8, 2, 3, 3, "\"stride\": 2");                           // 5x3
    return mb_save(&b, "inception", 3, 12, 13, m, err);
}

// brute + geom: two paths whose jumps differ (2 and 3) meet in an add.
static int make_mismatch(vc_model **m, vc_error *err) {
    static mb b = {.rng = {0xC0FFEE1234567890ULL}};
    mb_conv(&b, "a", "input", 1, 1, 2, 2, "\"stride\": 2");                      // 4x4: rows [2y, 2y+1]
    mb_conv(&b, "b", "input", 1, 1, 3, 3, "\"stride\": 3, \"padding\": 2");      // 4x4: rows [3y-2, 3y]
    mb_op(&b, "sum", "add", "\"a\", \"b\"", "");
    return mb_save(&b, "mismatch", 1, 8, 8, m, err);
}

// ---- checks ------------------------------------------------------------------------
static int box_eq(vc_box a, vc_box b) {
    if (rf_box_empty(a) || rf_box_empty(b)) return rf_box_empty(a) && rf_box_empty(b);
    return a.y0 == b.y0 && a.x0 == b.x0 && a.y1 == b.y1 && a.x1 == b.x1;
}
static const char *box_str(char *s, size_t n, vc_box b) {
    if (rf_box_empty(b)) snprintf(s, n, "empty");
    else snprintf(s, n, "rows %d..%d cols %d..%d", b.y0, b.y1, b.x0, b.x1);
    return s;
}
#define EMPTY ((vc_box){0, 0, -1, -1})

typedef struct {
    const char *what;         // the reasoning, printed in the case name
    const char *node;
    int y, x;
    vc_box box, clipped;      // {y0, x0, y1, x1}
} hand_case;

static void run_hand(const char *model, const vc_model *m, const hand_case *c, int n) {
    for (int i = 0; i < n; i++) {
        char name[512], s1[64], s2[64], s3[64], s4[64];
        snprintf(name, sizeof name, "rf hand %s %s (y=%d, x=%d): %s", model, c[i].node, c[i].y, c[i].x, c[i].what);
        if (!tu_selected(name)) continue;
        vc_box box = {0}, cl = {0};
        vc_error err = {{0}};
        int node = m ? vc_model_find(m, c[i].node) : -1;
        int rc = node < 0 ? -1 : rf_unit(m, node, c[i].y, c[i].x, &box, &cl, &err);
        if (rc) { tu_report(name, 0, "rf_unit failed (%d): %s", rc, node < 0 ? "no such node" : err.msg); continue; }
        int ok = box_eq(box, c[i].box) && box_eq(cl, c[i].clipped) && !rf_box_empty(box);
        tu_report(name, ok, "box %s (want %s), clipped %s (want %s)", box_str(s1, 64, box), box_str(s2, 64, c[i].box),
                  box_str(s3, 64, cl), box_str(s4, 64, c[i].clipped));
    }
}

typedef struct {
    const char *node;
    int affine, jump[2], size[2], start[2];
} geom_case;

static void run_geom(const char *model, const vc_model *m, const geom_case *c, int n) {
    for (int i = 0; i < n; i++) {
        char name[256];
        if (c[i].affine)
            snprintf(name, sizeof name, "rf geom %s %s: jump %dx%d size %dx%d start %d,%d", model, c[i].node,
                     c[i].jump[0], c[i].jump[1], c[i].size[0], c[i].size[1], c[i].start[0], c[i].start[1]);
        else snprintf(name, sizeof name, "rf geom %s %s: not affine", model, c[i].node);
        if (!tu_selected(name)) continue;
        vc_rf_geom g;
        vc_error err = {{0}};
        int node = m ? vc_model_find(m, c[i].node) : -1;
        int rc = node < 0 ? -1 : rf_geom(m, node, &g, &err);
        if (rc) { tu_report(name, 0, "rf_geom failed: %s", node < 0 ? "no such node" : err.msg); continue; }
        int ok = g.affine == c[i].affine;
        for (int a = 0; a < 2 && ok && g.affine; a++)
            ok = g.jump[a] == c[i].jump[a] && g.size[a] == c[i].size[a] && g.start[a] == c[i].start[a];
        tu_report(name, ok, "got affine %d jump %dx%d size %dx%d start %d,%d", g.affine, g.jump[0], g.jump[1],
                  g.size[0], g.size[1], g.start[0], g.start[1]);
    }
}

// Bounding box of the pixels where any channel of g (C,H,W) is nonzero.
static vc_box support(const float *g, int C, int H, int W) {
    vc_box b = {H, W, -1, -1};
    for (int c = 0; c < C; c++)
        for (int y = 0; y < H; y++)
            for (int x = 0; x < W; x++)
                if (g[((size_t)c * H + y) * W + x] != 0.0f) {
                    if (y < b.y0) b.y0 = y;
                    if (y > b.y1) b.y1 = y;
                    if (x < b.x0) b.x0 = x;
                    if (x > b.x1) b.x1 = x;
                }
    return b.y1 < 0 ? EMPTY : b;
}

static void brute_node(const char *model, const vc_model *m, int node) {
    const vc_node *n = &m->nodes[node], *in = &m->nodes[0];
    char name[256];
    int N = n->h * n->w, n_empty = 0;
    snprintf(name, sizeof name, "rf brute %s %s (%s, %dx%d, %d units): clipped == support of d(unit)/d(input)",
             model, n->name, vc_op_names[n->op], n->h, n->w, N);
    if (!tu_selected(name)) return;
    tu_rng rng = {0x5DEECE66DULL + (uint64_t)node};
    float *x = (float *)malloc((size_t)N * in->size * sizeof(float));
    for (size_t i = 0; i < in->size; i++) x[i] = 0.5f + 0.25f * (tu_uniform(&rng) + 1.0f);
    for (int p = 1; p < N; p++) memcpy(x + (size_t)p * in->size, x, in->size * sizeof(float));
    float *d = tu_zeros((size_t)N * n->size);
    for (int p = 0; p < N; p++)
        for (int c = 0; c < n->c; c++) d[(size_t)p * n->size + (size_t)c * N + p] = 1.0f;
    vc_run *r = vc_run_new(m, N);
    vc_error err = {{0}};
    int rc = vc_forward(r, x, node, 0, &err);
    if (!rc) rc = vc_backward(r, node, d, VC_BWD_INPUT, &err);
    const float *g = rc ? NULL : vc_run_grad(r, 0);
    char why[1200] = "";
    vc_rf_geom geom;
    if (rc) snprintf(why, sizeof why, "engine: %s", err.msg);
    else if (!g) snprintf(why, sizeof why, "no input gradient");
    else if ((rc = rf_geom(m, node, &geom, &err))) snprintf(why, sizeof why, "rf_geom: %s", err.msg);
    for (int p = 0; p < N && !why[0]; p++) {
        int y = p / n->w, xx = p % n->w;
        vc_box box, cl, want = support(g + (size_t)p * in->size, in->c, in->h, in->w);
        char s1[64], s2[64], s3[64];
        if ((rc = rf_unit(m, node, y, xx, &box, &cl, &err))) { snprintf(why, sizeof why, "rf_unit: %s", err.msg); break; }
        n_empty += rf_box_empty(cl);
        if (!box_eq(cl, want))
            snprintf(why, sizeof why, "unit (%d,%d): clipped %s, gradient support %s", y, xx,
                     box_str(s1, 64, cl), box_str(s2, 64, want));
        else if (!rf_box_empty(cl) && (cl.y0 < box.y0 || cl.x0 < box.x0 || cl.y1 > box.y1 || cl.x1 > box.x1))
            snprintf(why, sizeof why, "unit (%d,%d): clipped %s outside unclipped %s", y, xx, box_str(s1, 64, cl),
                     box_str(s2, 64, box));
        else if (geom.affine) {
            vc_box a = {geom.start[0] + y * geom.jump[0], geom.start[1] + xx * geom.jump[1],
                        geom.start[0] + y * geom.jump[0] + geom.size[0] - 1,
                        geom.start[1] + xx * geom.jump[1] + geom.size[1] - 1};
            if (!box_eq(a, box))
                snprintf(why, sizeof why, "unit (%d,%d): unclipped %s, jump/size/start say %s", y, xx,
                         box_str(s1, 64, box), box_str(s3, 64, a));
        }
    }
    if (!why[0] && n_empty) {   // on a pass, say how many units read only padding (empty boxes)
        char note[64];
        snprintf(note, sizeof note, " [%d padding-only]", n_empty);
        strncat(name, note, sizeof name - strlen(name) - 1);
    }
    tu_report(name, !why[0], "%s", why);
    vc_run_free(r);
    free(x);
    free(d);
}

// Max pooling sends the gradient to one argmax per window, so its support is
// smaller than the pixels that can win: nodes above a maxpool are not checked.
static int after_maxpool(const vc_model *m, int node) {
    if (m->nodes[node].op == VC_OP_MAXPOOL2D) return 1;
    for (int k = 0; k < m->nodes[node].n_in; k++)
        if (after_maxpool(m, m->nodes[node].in[k])) return 1;
    return 0;
}

static void run_brute(const char *model, const vc_model *m) {
    if (!m) return;
    for (int i = 1; i < m->n_nodes; i++) {
        if (after_maxpool(m, i)) printf("# rf brute %s %s: after a maxpool, not checked\n", model, m->nodes[i].name);
        else brute_node(model, m, i);
    }
}

// ---- errors -------------------------------------------------------------------------
static void run_errors(const vc_model *m) {
    if (!m) return;
    int conv = vc_model_find(m, "features.3");   // 27x27
    struct { const char *name; int node, y, x; const char *needle; } c[] = {
        {"rf error node -1", -1, 0, 0, "node -1"},
        {"rf error node n_nodes", m->n_nodes, 0, 0, "does not exist"},
        {"rf error y=-1", conv, -1, 0, "y=-1"},
        {"rf error y=h (27)", conv, 27, 0, "y=27"},
        {"rf error x=w (27)", conv, 0, 27, "x=27"},
        {"rf error x=-5", conv, 3, -5, "x=-5"},
    };
    for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
        if (!tu_selected(c[i].name)) continue;
        vc_error err = {{0}};
        vc_box b;
        int rc = rf_unit(m, c[i].node, c[i].y, c[i].x, &b, NULL, &err);
        tu_report(c[i].name, rc == VC_EINPUT && strstr(err.msg, c[i].needle) && !strchr(err.msg, '\n'),
                  "rc %d, message '%s' (want VC_EINPUT naming '%s')", rc, err.msg, c[i].needle);
    }
    const char *name = "rf error rf_geom node 99";
    if (tu_selected(name)) {
        vc_error err = {{0}};
        vc_rf_geom g;
        int rc = rf_geom(m, 99, &g, &err);
        tu_report(name, rc == VC_EINPUT && strstr(err.msg, "node 99"), "rc %d, message '%s'", rc, err.msg);
    }
    name = "rf input node (y=3, x=4): trivial box, NULL outputs allowed";
    if (tu_selected(name)) {
        vc_error err = {{0}};
        vc_box b, cl;
        int rc = rf_unit(m, 0, 3, 4, &b, &cl, &err) || rf_unit(m, 0, 3, 4, NULL, NULL, &err) ||
                 rf_unit(m, conv, 3, 4, NULL, &cl, &err) || rf_unit(m, 0, 3, 4, &b, &cl, &err);
        tu_report(name, !rc && box_eq(b, (vc_box){3, 4, 3, 4}) && box_eq(cl, b), "rc %d (%s)", rc, err.msg);
    }
}

// ---- cli --------------------------------------------------------------------------------
// Runs cmd_rf with stdout captured into out.
static int run_cmd(char *out, size_t n, vc_error *err, int argc, ...) {
    char *argv[16];
    va_list ap;
    va_start(ap, argc);
    for (int i = 0; i < argc; i++) argv[i] = va_arg(ap, char *);
    va_end(ap);
    const char *path = DIR "/cli.out";
    fflush(stdout);
    int saved = dup(1), fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (saved < 0 || fd < 0) { snprintf(out, n, "cannot capture stdout"); return -1; }
    dup2(fd, 1);
    close(fd);
    int rc = cmd_rf(argc, argv, err);
    fflush(stdout);
    dup2(saved, 1);
    close(saved);
    FILE *f = fopen(path, "r");
    size_t k = f ? fread(out, 1, n - 1, f) : 0;
    out[k] = 0;
    if (f) fclose(f);
    return rc;
}

static void run_cli(int have_model) {
    if (!have_model) return;
    char out[1024];
    const char *M = DIR "/alexlike.safetensors";
    const char *name = "rf cli alexlike features.3 --y 5 --x 7: one line, rows 22..72, cols 38..88, jump 8";
    if (tu_selected(name)) {
        vc_error err = {{0}};
        int rc = run_cmd(out, sizeof out, &err, 7, M, "--layer", "features.3", "--y", "5", "--x", "7");
        const char *want = "features.3 (y=5, x=7): input rows 22..72, cols 38..88 (51x51); "
                           "unclipped rows 22..72, cols 38..88 (51x51), jump 8x8\n";
        tu_report(name, rc == 0 && !strcmp(out, want), "rc %d (%s), printed '%s'", rc, err.msg, out);
    }
    name = "rf cli alexlike features.0 --y 0 --x 54: clipped and unclipped differ";
    if (tu_selected(name)) {
        vc_error err = {{0}};
        int rc = run_cmd(out, sizeof out, &err, 7, M, "--layer", "features.0", "--y", "0", "--x", "54");
        const char *want = "features.0 (y=0, x=54): input rows 0..8, cols 214..223 (9x10); "
                           "unclipped rows -2..8, cols 214..224 (11x11), jump 4x4\n";
        tu_report(name, rc == 0 && !strcmp(out, want), "rc %d (%s), printed '%s'", rc, err.msg, out);
    }
    struct { const char *name; int argc; const char *argv[10]; const char *needle; } bad[] = {
        {"rf cli error: no --layer", 5, {M, "--y", "1", "--x", "1"}, "--layer"},
        {"rf cli error: unknown layer", 7, {M, "--layer", "nope", "--y", "1", "--x", "1"}, "nope"},
        {"rf cli error: --y 27 outside 0..26", 7, {M, "--layer", "features.3", "--y", "27", "--x", "1"}, "--y 27"},
        {"rf cli error: --x -1", 7, {M, "--layer", "features.3", "--y", "2", "--x", "-1"}, "--x -1"},
        {"rf cli error: --y not a number", 7, {M, "--layer", "features.3", "--y", "two", "--x", "1"}, "--y two"},
        {"rf cli error: missing --x", 5, {M, "--layer", "features.3", "--y", "2"}, "--x"},
        {"rf cli error: unknown option", 9, {M, "--layer", "features.3", "--y", "2", "--x", "1", "--zoom", "3"}, "--zoom"},
        {"rf cli error: missing model file", 7, {DIR "/nope.safetensors", "--layer", "a", "--y", "1", "--x", "1"}, "nope.safetensors"},
        {"rf cli error: no MODEL", 6, {"--layer", "features.3", "--y", "2", "--x", "1"}, "MODEL"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (!tu_selected(bad[i].name)) continue;
        vc_error err = {{0}};
        const char *const *v = bad[i].argv;
        int rc = run_cmd(out, sizeof out, &err, bad[i].argc, v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[8], v[9]);
        tu_report(bad[i].name, rc == VC_EINPUT && strstr(err.msg, bad[i].needle) && !strchr(err.msg, '\n') && !out[0],
                  "rc %d, message '%s', printed '%s' (want VC_EINPUT naming '%s', nothing printed)", rc, err.msg, out,
                  bad[i].needle);
    }
}

// ---- the real AlexNet, when the suite has converted one ------------------------------------
static void run_alexnet(void) {
    const char *path = "build/testdata/alexnet/model.safetensors";
    // tests/run.sh converts it before this runs: absent is a failure, not a skip
    if (access(path, R_OK)) { tu_report("rf alexnet torchvision: model", 0, "%s absent (tests/run.sh converts it first)", path); return; }
    vc_model *m = NULL;
    vc_error err = {{0}};
    int rc = vc_model_load(&m, path, &err);
    if (rc) { tu_report("rf alexnet torchvision: load", 0, "%s", err.msg); return; }
    // AlexNet: conv1 11/4 p2, pool 3/2, conv2 5 p2, pool 3/2, conv3-5 3 p1, pool 3/2:
    // sizes 11, 19, 51, 67, 99, 131, 163, 195; jumps 4, 8, 8, 16, 16, 16, 16, 32;
    // starts -2, -2, -18, -18, -34, -50, -66, -66.
    geom_case g[] = {
        {"features.0", 1, {4, 4}, {11, 11}, {-2, -2}},   {"features.2", 1, {8, 8}, {19, 19}, {-2, -2}},
        {"features.3", 1, {8, 8}, {51, 51}, {-18, -18}}, {"features.5", 1, {16, 16}, {67, 67}, {-18, -18}},
        {"features.6", 1, {16, 16}, {99, 99}, {-34, -34}}, {"features.8", 1, {16, 16}, {131, 131}, {-50, -50}},
        {"features.10", 1, {16, 16}, {163, 163}, {-66, -66}}, {"features.12", 1, {32, 32}, {195, 195}, {-66, -66}},
    };
    run_geom("alexnet", m, g, sizeof g / sizeof g[0]);
    // classifier.6 (a linear unit) sees the whole image; unclipped, features.12's whole
    // 6x6 map: [-66, -66 + 5*32 + 194] = [-66, 288].
    hand_case h[] = {
        {"a linear unit sees the whole image", "classifier.6", 0, 0, {-66, -66, 288, 288}, {0, 0, 223, 223}},
        {"features.10 centre", "features.10", 6, 6, {30, 30, 192, 192}, {30, 30, 192, 192}},
    };
    run_hand("alexnet", m, h, sizeof h / sizeof h[0]);
    vc_model_free(m);
}

int main(int argc, char **argv) {
    tu_init(argc, argv);
    (void)tu_rand;
    (void)tu_rel_err;
    struct { const char *name; int (*make)(vc_model **, vc_error *); vc_model *m; } models[] = {
        {"alexlike", make_alexlike, NULL}, {"misc", make_misc, NULL},           {"chain", make_chain, NULL},
        {"residual", make_residual, NULL}, {"inception", make_inception, NULL}, {"mismatch", make_mismatch, NULL},
    };
    enum { ALEX, MISC, CHAIN, RES, INC, MIS, NM };
    for (int i = 0; i < NM; i++) {
        vc_error err = {{0}};
        char name[128];
        snprintf(name, sizeof name, "rf write+load model %s", models[i].name);
        int rc = models[i].make(&models[i].m, &err);
        if (rc || tu_selected(name)) tu_report(name, !rc, "%s", err.msg);
    }

    // The AlexNet-like chain (rules in make_alexlike): features.0 unit 54 reads
    // [214, 224], the last row is padding; features.2 unit 26 reads [206, 224];
    // features.3 unit (5, 7): rows [22, 72], cols [38, 88]; unit (0, 26): rows
    // [-18, 32] -> features.2 rows 0..2 (rows -2, -1 are padding) -> clipped 0..32,
    // cols [190, 240] -> clipped 190..223.
    hand_case alex[] = {
        {"conv k11 s4 p2 corner", "features.0", 0, 0, {-2, -2, 8, 8}, {0, 0, 8, 8}},
        {"conv k11 s4 p2 far corner", "features.0", 54, 54, {214, 214, 224, 224}, {214, 214, 223, 223}},
        {"relu is the identity", "features.1", 54, 0, {214, -2, 224, 8}, {214, 0, 223, 8}},
        {"maxpool k3 s2 after conv", "features.2", 0, 26, {-2, 206, 16, 224}, {0, 206, 16, 223}},
        {"conv k5 p2 after pool: 51x51", "features.3", 5, 7, {22, 38, 72, 88}, {22, 38, 72, 88}},
        {"conv k5 p2 border", "features.3", 0, 26, {-18, 190, 32, 240}, {0, 190, 32, 223}},
    };
    run_hand("alexlike", models[ALEX].m, alex, sizeof alex / sizeof alex[0]);
    geom_case alex_g[] = {
        {"input", 1, {1, 1}, {1, 1}, {0, 0}},
        {"features.0", 1, {4, 4}, {11, 11}, {-2, -2}},
        {"features.2", 1, {8, 8}, {19, 19}, {-2, -2}},
        {"features.4", 1, {8, 8}, {51, 51}, {-18, -18}},
    };
    run_geom("alexlike", models[ALEX].m, alex_g, sizeof alex_g / sizeof alex_g[0]);

    // misc, input H=8 rows x W=9 columns:
    // dil (conv k3 d2 p2): unit a reads a-2, a, a+2. Unit 1: -1, 1, 3 -> clipped 1..3,
    //   not 0..3: the box is of connected pixels, not box ∩ image. Unit (7, 8): rows
    //   5, 7, 9 -> 5..7; cols 6, 8, 10 -> 6..8.
    // gap2 (conv k3 p1) on gap1 (conv k3 s2, 3x4 map; gap1 unit a reads [2a, 2a+2]):
    //   unit (2, 3): gap1 rows 1..3 of which 1..2 exist -> input rows 2..6 (row 7 is
    //   read by no window); unclipped 2..8. Cols: gap1 cols 2..4 -> 2..3 exist ->
    //   input 4..8; unclipped 4..10.
    // pad (conv k1 p2, 12x13): unit a reads a-2. (0,0) and (11, 12) read only padding;
    //   (1, 2): row -1 is padding, so nothing although column 0 exists.
    // maxceil (k3 s2 p1 ceil_mode, 5x5): unit 4 reads [7, 9] -> rows 7..7, cols 7..8.
    // avgceil (k2 s2 ceil_mode, 4x5): unit (3, 4): rows 6..7, cols 8..9 -> 8..8.
    // ada (adaptive 8x9 -> 3x4): row 1 [floor(8/3), ceil(16/3)-1] = [2, 5]; col 2
    //   [floor(18/4), ceil(27/4)-1] = [4, 6].
    // fc (linear on flatten of dil): the whole dil map -> rows [-2, 9], cols [-2, 10];
    //   clipped: the whole image. log_softmax likewise.
    hand_case misc[] = {
        {"dilation 2, taps -1,1,3", "dil", 1, 1, {-1, -1, 3, 3}, {1, 1, 3, 3}},
        {"dilation 2 far corner", "dil", 7, 8, {5, 6, 9, 10}, {5, 6, 7, 8}},
        {"row 7 falls between windows", "gap2", 2, 3, {2, 4, 8, 10}, {2, 4, 6, 8}},
        {"k1 p2 corner reads only padding", "pad", 0, 0, {-2, -2, -2, -2}, EMPTY},
        {"k1 p2 row in padding, col inside", "pad", 1, 2, {-1, 0, -1, 0}, EMPTY},
        {"k1 p2 far corner in padding", "pad", 11, 12, {9, 10, 9, 10}, EMPTY},
        {"k1 p2 inside", "pad", 2, 5, {0, 3, 0, 3}, {0, 3, 0, 3}},
        {"maxpool ceil_mode last window", "maxceil", 4, 4, {7, 7, 9, 9}, {7, 7, 7, 8}},
        {"avgpool ceil_mode last window", "avgceil", 3, 4, {6, 8, 7, 9}, {6, 8, 7, 8}},
        {"adaptive 8x9 -> 3x4", "ada", 1, 2, {2, 4, 5, 6}, {2, 4, 5, 6}},
        {"linear sees the whole input", "fc", 0, 0, {-2, -2, 9, 10}, {0, 0, 7, 8}},
        {"log_softmax sees the whole input", "out", 0, 0, {-2, -2, 9, 10}, {0, 0, 7, 8}},
        {"input node: trivial box", "input", 7, 8, {7, 8, 7, 8}, {7, 8, 7, 8}},
    };
    run_hand("misc", models[MISC].m, misc, sizeof misc / sizeof misc[0]);
    // ada rows 8 -> 3 are uneven; mismatch's paths have jumps 2 and 3. fc: jump 0,
    // every unit (there is one) sees rows [-2, 9]. avgceil: k2 s2.
    geom_case misc_g[] = {
        {"dil", 1, {1, 1}, {5, 5}, {-2, -2}},
        {"gap2", 1, {2, 2}, {7, 7}, {-2, -2}},
        {"avgceil", 1, {2, 2}, {2, 2}, {0, 0}},
        {"ada", 0, {0, 0}, {0, 0}, {0, 0}},
        {"fc", 1, {0, 0}, {12, 13}, {-2, -2}},
    };
    run_geom("misc", models[MISC].m, misc_g, sizeof misc_g / sizeof misc_g[0]);
    // residual b1.add unit y: conv path rows [2y-4, 2y+4], downsample [2y-1, 2y+1]:
    // same jump 2, covering box start -4, size 9. b2.add: + two 3x3 at jump 2 -> size 17.
    geom_case res_g[] = {
        {"b1.add", 1, {2, 2}, {9, 9}, {-4, -4}},
        {"b2.add", 1, {2, 2}, {17, 17}, {-8, -8}},
    };
    run_geom("residual", models[RES].m, res_g, sizeof res_g / sizeof res_g[0]);
    geom_case mis_g[] = {{"sum", 0, {0, 0}, {0, 0}, {0, 0}}, {"b", 1, {3, 3}, {3, 3}, {-2, -2}}};
    run_geom("mismatch", models[MIS].m, mis_g, sizeof mis_g / sizeof mis_g[0]);
    // sum unit 3: a reads [6, 7], b reads [7, 9] -> [6, 9], clipped [6, 7].
    hand_case mis[] = {{"add of jumps 2 and 3: covering box", "sum", 3, 0, {6, -2, 9, 1}, {6, 0, 7, 1}}};
    run_hand("mismatch", models[MIS].m, mis, 1);

    run_brute("misc", models[MISC].m);
    run_brute("chain", models[CHAIN].m);
    run_brute("residual", models[RES].m);
    run_brute("inception", models[INC].m);
    run_brute("mismatch", models[MIS].m);

    run_errors(models[ALEX].m);
    run_cli(models[ALEX].m != NULL);
    run_alexnet();
    for (int i = 0; i < NM; i++) vc_model_free(models[i].m);
    return tu_finish();
}
