// test_api.c: the public API's contract (include/viscnn.h, docs/api.md) on
// the default model, through viscnn.h alone: versions, loading from a path and
// from memory, node listing, bad arguments (VC_EINPUT with a message naming
// them, outputs untouched), the edge invariant sum_i e_ji + b_j = y_j through
// caller and library buffers, importance and circuits (extract, mask, evaluate).
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "viscnn.h"
#include "testutil.h"

static const char *MODEL = "models/fashion.safetensors";

// rc must be VC_EINPUT and e->msg must contain want.
static void expect_einput(const char *name, int rc, const vc_error *e, const char *want) {
    tu_report(name, rc == VC_EINPUT && strstr(e->msg, want), "rc %d, message \"%s\" (wanted one naming \"%s\")", rc, e->msg, want);
}

static void *read_file(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    *n = (size_t)ftell(f);
    rewind(f);
    void *p = malloc(*n);
    if (fread(p, 1, *n, f) != *n) { free(p); p = NULL; }
    fclose(f);
    return p;
}

int main(int argc, char **argv) {
    tu_init(argc, argv);
    vc_error e = {{0}};
    tu_report("vc_version() is the header's VISCNN_VERSION_STRING", !strcmp(vc_version(), VISCNN_VERSION_STRING), "%s", vc_version());
    vc_model *m = (vc_model *)1, *mm = NULL;
    expect_einput("vc_model_load of a missing file: VC_EINPUT naming it", vc_model_load(&m, "/nonexistent/x.safetensors", &e), &e,
                  "/nonexistent/x.safetensors");
    tu_report("... and the handle is NULL", m == NULL, "%p", (void *)m);
    expect_einput("vc_model_load_memory of garbage: VC_EINPUT naming the buffer",
                  vc_model_load_memory(&mm, "not a model at all", 18, "garbage-buffer", &e), &e, "garbage-buffer");
    if (vc_model_load(&m, MODEL, &e)) { tu_report("load the default model", 0, "%s", e.msg); return tu_finish(); }
    size_t fsize = 0;
    void *bytes = read_file(MODEL, &fsize);
    if (!bytes) { tu_report("read the model file", 0, "%s", MODEL); return tu_finish(); }
    expect_einput("vc_model_load_memory of a truncated file: VC_EINPUT", vc_model_load_memory(&mm, bytes, fsize / 2, "half", &e), &e, "half");
    int rc = vc_model_load_memory(&mm, bytes, fsize, NULL, &e);
    free(bytes);   // the model keeps its own copy
    tu_report("vc_model_load_memory of the file's bytes (freed right after)", !rc, "%s", e.msg);

    int n_nodes, output, n_labels, c, h, w, k;
    const char *name, *op, *label;
    rc = vc_model_size(m, &n_nodes, &output, &n_labels, &e) || vc_model_node(m, 0, &name, &op, &c, &h, &w, &e) ||
         vc_model_label(m, 7, &label, &e);
    tu_report("list: input (1,28,28), 10 labels, label 7 is sneaker, output is the last node",
              !rc && !strcmp(op, "input") && c == 1 && h == 28 && w == 28 && n_labels == 10 && !strcmp(label, "sneaker") &&
              output == n_nodes - 1, "rc %d op %s c %d h %d w %d labels %d", rc, op, c, h, w, n_labels);
    int n_in, add_ok = 1, conv3;
    const int *ins;
    vc_model_find_node(m, "features.3", &conv3, &e);
    rc = vc_model_node_inputs(m, conv3, &n_in, &ins, &e);
    tu_report("vc_model_node_inputs: features.3 takes features.2", !rc && n_in == 1 && ins[0] == conv3 - 1, "rc %d n_in %d", rc, n_in);
    for (int i = 1; i < n_nodes && add_ok; i++) {
        add_ok = !vc_model_node_inputs(m, i, &n_in, &ins, &e) && n_in >= 1;
        for (int q = 0; add_ok && q < n_in; q++) add_ok = ins[q] >= 0 && ins[q] < i;
    }
    tu_report("every node but the input takes earlier nodes (a topological order)", add_ok, "%s", e.msg);
    expect_einput("vc_model_node out of range", vc_model_node(m, n_nodes, &name, NULL, NULL, NULL, NULL, &e), &e, "out of range");
    expect_einput("vc_model_find_node of an unknown name names it", vc_model_find_node(m, "features.99", &k, &e), &e, "features.99");
    int relu;
    vc_model_find_node(m, "features.1", &relu, &e);
    expect_einput("vc_model_conv on a relu says what it is", vc_model_conv(m, relu, NULL, NULL, NULL, NULL, NULL, &e), &e, "relu");
    expect_einput("a NULL argument is VC_EINPUT, not a crash", vc_model_find_node(m, NULL, &k, &e), &e, "NULL");
    vc_model *none;
    expect_einput("vc_model_load with a NULL path", vc_model_load(&none, NULL, &e), &e, "path");
    vc_model_free(NULL);
    vc_session_free(NULL);
    vc_importance_free(NULL);
    vc_subnet_free(NULL);
    vc_free(NULL);
    tu_report("every free function accepts NULL", 1, "");

    tu_rng rng = {42};
    float *x = tu_rand(&rng, 2 * 28 * 28);
    vc_session *s, *s2;
    const float *a, *g;
    size_t n;
    vc_session_new(&s, m, &e);
    expect_einput("activation before any forward", vc_session_activation(s, 1, &a, &n, &e), &e, "no forward");
    int conv, cout, cg, ho, wo;
    rc = vc_session_forward(s, x, 2, &e) || vc_model_find_node(m, "features.3", &conv, &e) ||
         vc_model_conv(m, conv, &cout, &cg, NULL, &ho, &wo, &e) || vc_session_activation(s, output, &a, &n, &e);
    tu_report("forward of 2 images: the output is (2, 10)", !rc && n == 20, "rc %d n %zu %s", rc, n, e.msg);
    vc_session_new(&s2, mm, &e);
    const float *a2;
    rc = vc_session_forward(s2, x, 2, &e) || vc_session_activation(s2, output, &a2, &n, &e);
    tu_report("the model loaded from memory computes bit-identical outputs", !rc && !memcmp(a, a2, 20 * sizeof(float)), "%s", e.msg);
    expect_einput("gradient before any backward", vc_session_gradient(s, conv, &g, &n, &e), &e, "features.3");
    expect_einput("backward toward a bad target", vc_session_backward(s, "class:99", NULL, &e), &e, "99");
    expect_einput("backward with an out-of-range label", vc_session_backward(s, "loss", (int[]){3, 10}, &e), &e, "label 10");

    // the edge invariant on image 1, into a library buffer
    float *maps = NULL, *y;
    rc = vc_session_backward(s, "class:3", NULL, &e) || vc_session_edges(s, conv, 1, NULL, 0, NULL, 0, &maps, &e) ||
         vc_session_activation(s, conv, &a, &n, &e);
    double worst = 0;
    size_t P = (size_t)ho * wo;
    y = malloc(cout * P * sizeof(float));
    for (int j = 0; !rc && j < cout; j++)   // sum_i e_ji = y_j - b_j: the bias is what is left of y_j at any pixel
        for (size_t p = 0; p < P; p++) {
            double sum = 0;
            for (int i = 0; i < cg; i++) sum += maps[((size_t)j * cg + i) * P + p];
            y[j * P + p] = (float)sum;
        }
    for (int j = 0; !rc && j < cout; j++) {
        const float *yj = a + ((size_t)cout + j) * P;   // image 1
        double b = yj[0] - y[j * P];
        for (size_t p = 0; p < P; p++) worst = fmax(worst, fabs(yj[p] - b - y[j * P + p]));
    }
    tu_report("edges features.3 image 1: sum_i e_ji + b_j = the conv output (library buffer)", !rc && worst < 1e-4,
              "rc %d max error %g %s", rc, worst, e.msg);
    // a selection into the caller's buffer is the same slice of the full set
    int J[2] = {31, 4}, I[3] = {0, 17, 5};
    float *sel = malloc(2 * 3 * P * sizeof(float)), *mine = sel;
    rc = vc_session_edges(s, conv, 1, J, 2, I, 3, &mine, &e);
    int same = !rc && mine == sel;
    for (int q = 0; same && q < 2; q++)
        for (int b = 0; b < 3; b++)
            same &= !memcmp(sel + ((size_t)q * 3 + b) * P, maps + ((size_t)J[q] * cg + I[b]) * P, P * sizeof(float));
    tu_report("edges --out 31,4 --in 0,17,5 into the caller's buffer: the same maps as the full set", same, "rc %d %s", rc, e.msg);
    float *gr = NULL;
    rc = vc_session_edge_grads(s, conv, 1, J, 2, &gr, &e) || vc_session_gradient(s, conv, &g, &n, &e);
    tu_report("edge gradients of out-channels 31,4 are dF/dy_j of image 1",
              !rc && !memcmp(gr, g + ((size_t)cout + 31) * P, P * 4) && !memcmp(gr + P, g + ((size_t)cout + 4) * P, P * 4), "%s", e.msg);
    expect_einput("edges of image 2 of a 2-image batch", vc_session_edges(s, conv, 2, NULL, 0, NULL, 0, &maps, &e), &e, "image 2");
    expect_einput("edges of an out-channel out of range", vc_session_edges(s, conv, 0, (int[]){32}, 1, NULL, 0, &maps, &e), &e, "32");
    expect_einput("edges of a relu", vc_session_edges(s, relu, 0, NULL, 0, NULL, 0, &maps, &e), &e, "relu");
    vc_free(maps); vc_free(gr); free(sel); free(y);

    // importance and circuits
    vc_scoreset *sc = NULL;
    expect_einput("importance with an unknown metric names it", vc_importance_new(&sc, m, "bogus", "loss", 4, &e), &e, "bogus");
    float *xs = tu_rand(&rng, 6 * 28 * 28);
    for (int i = 0; i < 6 * 28 * 28; i++) xs[i] = 1.2f * xs[i];
    int n_layers = 0;
    rc = vc_importance_new(&sc, m, "taylor", "class:7", 4, &e);
    expect_einput("scores read before vc_importance_finish", vc_importance_layers(sc, &n_layers, &e), &e, "not finished");
    rc = rc || vc_importance_add(sc, xs, 6, NULL, &e) || vc_importance_finish(sc, &e) || vc_importance_layers(sc, &n_layers, &e);
    tu_report("importance taylor class:7 over 6 images: 4 conv layers scored", !rc && n_layers == 4, "rc %d layers %d %s", rc, n_layers, e.msg);
    expect_einput("adding after finish", vc_importance_add(sc, xs, 1, NULL, &e), &e, "finished");
    vc_subnet *all = NULL, *small = NULL;
    expect_einput("a bad circuit mode", vc_subnet_extract(&small, sc, "keep:2", &e), &e, "keep");
    double r = 0, rel = 1, top1 = 0;
    rc = vc_subnet_extract(&all, sc, "keep:1", &e) || vc_subnet_evaluate(all, xs, 6, NULL, 4, &r, &rel, &top1, &e);
    tu_report("keep:1 is the whole network: r = 1, relative error 0, top-1 agreement 1", !rc && fabs(r - 1) < 1e-9 && rel == 0 && top1 == 1,
              "rc %d r %g rel %g top1 %g %s", rc, r, rel, top1, e.msg);
    size_t kn, kk, tn, tk;
    rc = vc_subnet_extract(&small, sc, "keep:0.05", &e) || vc_subnet_counts(small, &kn, &kk, &tn, &tk, &e) ||
         vc_subnet_evaluate(small, xs, 6, NULL, 4, &r, &rel, &top1, &e);
    tu_report("keep:0.05 keeps at most 5% of the cone's kernels and is evaluated", !rc && kk > 0 && kk <= (size_t)ceil(0.05 * tk) && isfinite(rel),
              "rc %d kept %zu of %zu %s", rc, kk, tk, e.msg);
    const float *full, *masked;
    float *full_copy = malloc(20 * sizeof(float));
    rc = vc_session_forward(s, x, 2, &e) || vc_session_activation(s, output, &full, &n, &e);
    if (!rc) memcpy(full_copy, full, 20 * sizeof(float));
    rc = rc || vc_session_set_subnet(s, small, &e) || vc_session_forward(s, x, 2, &e) || vc_session_activation(s, output, &masked, &n, &e);
    tu_report("vc_session_set_subnet: the masked network's output differs", !rc && memcmp(full_copy, masked, 20 * sizeof(float)), "%s", e.msg);
    rc = vc_session_set_subnet(s, NULL, &e) || vc_session_forward(s, x, 2, &e) || vc_session_activation(s, output, &full, &n, &e);
    tu_report("vc_session_set_subnet(NULL): bit-identical to the whole network again", !rc && !memcmp(full_copy, full, 20 * sizeof(float)), "%s", e.msg);
    expect_einput("a circuit of another model is refused", vc_session_set_subnet(s2, small, &e), &e, "another model");
    free(full_copy); free(xs); free(x);
    vc_subnet_free(all); vc_subnet_free(small);
    vc_importance_free(sc);
    vc_session_free(s); vc_session_free(s2);
    vc_model_free(mm); vc_model_free(m);
    return tu_finish();
}
