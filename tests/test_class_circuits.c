// test_class_circuits.c: class circuits of the embedded default model are
// meaningful (issue 4). For each Fashion-MNIST class K, over its first 100 test
// images, the circuit for logit K extracted with actxgrad at 5%, 10% and 20%
// of kernels kept must be more faithful (Pearson r between the full and the
// circuit's logit K over the images) than a `weight` (magnitude) circuit and
// than the mean of 5 random circuits of the same size, for at least 9 of the
// 10 classes at each fraction. The per-class numbers are printed ("#" lines)
// and written to build/class_circuits.md for benchmarks/RESULTS.md.
#include <stdlib.h>
#include <string.h>
#include "testutil.h"
#include "viscnn.h"
#include "../loaders/idx.h"
#include "../viscnn/circuit.h"
#include "../viscnn/imageset.h"

#define MODEL "models/fashion.safetensors"
#define IMAGES "/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz"
#define LABELS "/usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz"
#define PER_CLASS 100   // the first 100 test images of each class
#define N_RANDOM 5

static const double fractions[3] = {0.05, 0.10, 0.20};

static int faith(double *r, const vc_model *m, const vc_target *t, const vc_scores *scores, double f,
                 const vc_imageset *s, const float *base, vc_error *err) {
    vc_circuit c;
    float *v;
    size_t n;
    int rc = circuit_extract(&c, m, scores, t, VC_C_KEEP, 0, 0, f, err);
    if (!rc) rc = target_activations(&v, &n, m, t, scores, &c, s, PER_CLASS, err);
    if (!rc) { *r = pearson(base, v, n); free(v); }
    circuit_free(&c);
    return rc;
}

int main(int argc, char **argv) {
    tu_init(argc, argv);
    vc_error err = {{0}};
    vc_model *m;
    vc_idx_set set;
    if (vc_model_load(&m, MODEL, &err)) { tu_report("class circuits: load the default model", 0, "%s", err.msg); return tu_finish(); }
    if (idx_read_set(&set, IMAGES, LABELS, &err)) { tu_report("class circuits: Fashion-MNIST test set", 0, "%s", err.msg); return tu_finish(); }
    const vc_node *in = &m->nodes[0];
    int K = (int)m->nodes[m->output].size, wins[3][2] = {{0}};
    float *x = malloc((size_t)PER_CLASS * in->size * sizeof(float));
    int *lab = malloc(PER_CLASS * sizeof(int));
    FILE *md = fopen("build/class_circuits.md", "w");
    if (md) fprintf(md, "| class | r actxgrad 5%% / 10%% / 20%% | r weight | r random (mean of %d) |\n|---|---|---|---|\n", N_RANDOM);
    tu_rng rng = {20261126};
    for (int k = 0; k < K; k++) {
        int n = 0;
        for (int i = 0; i < set.n && n < PER_CLASS; i++) {
            if (set.labels[i] != k) continue;
            for (size_t p = 0; p < in->size; p++)
                x[(size_t)n * in->size + p] = (set.pixels[(size_t)i * in->size + p] / 255.0f - m->pre.mean[0]) / m->pre.std[0];
            lab[n++] = k;
        }
        vc_imageset s = {.n = n, .n_cat = 1, .label = lab, .x = x, .m = m, .source = IMAGES};
        char tt[32];
        snprintf(tt, sizeof tt, "class:%d", k);
        vc_target t;
        vc_importance im;
        vc_scores act, wt;
        float *base = NULL;
        size_t nb;
        int rc = target_parse(&t, m, tt, &err);
        if (!rc) rc = importance_begin(&im, m, VC_M_ACTXGRAD, &t, n, &err);
        if (!rc) rc = importance_add(&im, x, n, lab, &err);
        if (rc) { tu_report("class circuits: importance", 0, "%s", err.msg); break; }
        importance_end(&im, &act);
        importance_free(&im);
        importance_begin(&im, m, VC_M_WEIGHT, &t, n, &err);
        importance_end(&im, &wt);
        importance_free(&im);
        rc = target_activations(&base, &nb, m, &t, &act, NULL, &s, PER_CLASS, &err);
        double ra[3], rw[3], rr[3];
        for (int q = 0; q < 3 && !rc; q++) {
            rc = faith(&ra[q], m, &t, &act, fractions[q], &s, base, &err);
            if (!rc) rc = faith(&rw[q], m, &t, &wt, fractions[q], &s, base, &err);
            rr[q] = 0;
            for (int rep = 0; rep < N_RANDOM && !rc; rep++) {   // random scores: a random circuit of the same size
                vc_scores rs;
                scores_copy(&rs, &act);
                for (int l = 0; l < rs.n_layers; l++)
                    for (size_t e = 0; e < (size_t)rs.l[l].cout * rs.l[l].cg; e++) rs.l[l].edges[e] = tu_uniform(&rng) + 1.0f;
                double r;
                rc = faith(&r, m, &t, &rs, fractions[q], &s, base, &err);
                rr[q] += r / N_RANDOM;
                scores_free(&rs);
            }
            if (!rc) { wins[q][0] += ra[q] > rw[q]; wins[q][1] += ra[q] > rr[q]; }
        }
        if (rc) { tu_report("class circuits: faithfulness", 0, "%s", err.msg); break; }
        const char *name = k < m->n_labels ? m->labels[k] : "?";
        printf("# class %d %-12s r actxgrad %.3f %.3f %.3f | weight %.3f %.3f %.3f | random %.3f %.3f %.3f\n", k, name,
               ra[0], ra[1], ra[2], rw[0], rw[1], rw[2], rr[0], rr[1], rr[2]);
        if (md) fprintf(md, "| %d %s | %.3f / %.3f / %.3f | %.3f / %.3f / %.3f | %.3f / %.3f / %.3f |\n", k, name,
                        ra[0], ra[1], ra[2], rw[0], rw[1], rw[2], rr[0], rr[1], rr[2]);
        free(base);
        scores_free(&act);
        scores_free(&wt);
    }
    if (md) fclose(md);
    for (int q = 0; q < 3; q++) {
        char name[160];
        snprintf(name, sizeof name, "class circuits keep %.0f%%: actxgrad beats weight for %d/10 classes, random for %d/10 (need 9)",
                 fractions[q] * 100, wins[q][0], wins[q][1]);
        tu_report(name, wins[q][0] >= 9 && wins[q][1] >= 9, "too few");
    }
    free(x); free(lab);
    idx_set_free(&set);
    vc_model_free(m);
    return tu_finish();
}
