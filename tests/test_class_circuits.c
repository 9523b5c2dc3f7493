// test_class_circuits.c: class circuits of the embedded default model are
// faithful on held-out images (issues 4 and 12; the full protocol, with every
// metric and class specificity, is benchmarks/circuits.c).
//
// For each Fashion-MNIST class K: scores of the default circuit metric for
// logit K from the class's first 50 test images (those of data/fashion);
// circuits keep:F for F = 5, 10, 20 %; faithfulness (Pearson r of logit K,
// full network vs circuit) on two held-out groups of the class's test images
// that no folder of data/ holds (its images 100-199 and 200-299). Baselines of
// the same per-layer kept-kernel counts: the top kernels by mean |W| within
// each layer, and random kernels (mean r of 5 seeds). The circuit must beat
// |W| for at least 9 of the 10 classes and random for all 10, at every F, on
// both groups. The per-class numbers are printed ("#" lines).
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "testutil.h"
#include "viscnn_internal.h"
#include "../loaders/idx.h"
#include "../viscnn/circuit.h"
#include "../viscnn/imageset.h"

#define MODEL "models/fashion.safetensors"
#define IMAGES "/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz"
#define LABELS "/usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz"
#define N_SCORE 50
#define GROUP 100
#define FIRST_HELD 100   // data/fashion holds a class's test images 0-49, data/fashion-heldout 50-99
#define N_RANDOM 5
#define PER (FIRST_HELD + 2 * GROUP)

static const double fractions[3] = {0.05, 0.10, 0.20};

static int beats(double a, double b) { return !isnan(a) && (isnan(b) || a > b); }

int main(int argc, char **argv) {
    tu_init(argc, argv);
    vc_error err = {{0}};
    vc_model *m;
    vc_idx_set set;
    if (vc_model_load(&m, MODEL, &err)) { tu_report("class circuits: load the default model", 0, "%s", err.msg); return tu_finish(); }
    if (idx_read_set(&set, IMAGES, LABELS, &err)) { tu_report("class circuits: Fashion-MNIST test set", 0, "%s", err.msg); return tu_finish(); }
    const vc_node *in = &m->nodes[0];
    const vc_metric metric = VC_CIRCUIT_DEFAULT_METRIC;
    int K = (int)m->nodes[m->output].size, wins[2][3][2] = {{{0}}}, rc = VC_OK;
    float *x = malloc((size_t)PER * in->size * sizeof(float));
    int *lab = malloc(PER * sizeof(int)), *cat = calloc(PER, sizeof(int)), idx[PER];
    tu_rng rng = {20261206};
    for (int k = 0; k < K && !rc; k++) {
        int n = 0;
        for (int i = 0; i < set.n && n < PER; i++) {
            if (set.labels[i] != k) continue;
            for (size_t p = 0; p < in->size; p++)
                x[(size_t)n * in->size + p] = (set.pixels[(size_t)i * in->size + p] / 255.0f - m->pre.mean[0]) / m->pre.std[0];
            lab[n++] = k;
        }
        if (n < PER) { tu_report("class circuits: images", 0, "class %d has %d test images (need %d)", k, n, PER); rc = 1; break; }
        vc_imageset s = {.n = PER, .n_cat = 1, .cat = cat, .label = lab, .x = x, .m = m, .source = IMAGES};
        char tt[32];
        snprintf(tt, sizeof tt, "class:%d", k);
        vc_target t;
        vc_importance im;
        vc_scores sc, wt;
        rc = target_parse(&t, m, tt, &err);
        if (!rc) rc = importance_begin(&im, m, metric, &t, N_SCORE, &err);
        if (!rc) rc = importance_add(&im, x, N_SCORE, lab, &err);
        if (rc) { tu_report("class circuits: importance", 0, "%s", err.msg); break; }
        importance_end(&im, &sc);
        importance_free(&im);
        importance_begin(&im, m, VC_M_WEIGHT, &t, N_SCORE, &err);
        importance_end(&im, &wt);
        importance_free(&im);
        double r[2][3][3];   // [group][F][circuit, |W|, random]
        for (int g = 0; g < 2 && !rc; g++) {
            for (int q = 0; q < GROUP; q++) idx[q] = FIRST_HELD + g * GROUP + q;
            vc_faith_ref ref;
            rc = faith_reference(&ref, m, &t, &s, idx, GROUP, GROUP, &err);
            for (int f = 0; f < 3 && !rc; f++) {
                vc_circuit_spec spec;
                circuit_spec_init(&spec);
                spec.mode = VC_C_KEEP;
                spec.keep_nodes = 1;
                spec.keep_edges = fractions[f];
                vc_circuit c, b;
                vc_faith q;
                size_t counts[16];
                rc = circuit_extract(&c, m, &sc, &t, &spec, &err);
                if (!rc) rc = faith_measure(&q, &ref, m, &t, &sc, &c, &s, GROUP, &err);
                if (rc) break;
                r[g][f][0] = q.r;
                circuit_layer_edges(&c, &sc, counts);
                circuit_select_per_layer(&b, m, &wt, &t, counts);
                rc = faith_measure(&q, &ref, m, &t, &sc, &b, &s, GROUP, &err);
                r[g][f][1] = q.r;
                circuit_free(&b);
                r[g][f][2] = 0;
                for (int rep = 0; rep < N_RANDOM && !rc; rep++) {
                    vc_scores rs;
                    scores_copy(&rs, &sc);
                    for (int l = 0; l < rs.n_layers; l++)
                        for (size_t e = 0; e < (size_t)rs.l[l].cout * rs.l[l].cg; e++) rs.l[l].edges[e] = tu_uniform(&rng) + 1.0f;
                    circuit_select_per_layer(&b, m, &rs, &t, counts);
                    rc = faith_measure(&q, &ref, m, &t, &sc, &b, &s, GROUP, &err);
                    r[g][f][2] += (isnan(q.r) ? 0 : q.r) / N_RANDOM;
                    circuit_free(&b);
                    scores_free(&rs);
                }
                circuit_free(&c);
                wins[g][f][0] += beats(r[g][f][0], r[g][f][1]);
                wins[g][f][1] += beats(r[g][f][0], r[g][f][2]);
            }
            faith_reference_free(&ref);
        }
        if (rc) { tu_report("class circuits: faithfulness", 0, "%s", err.msg); break; }
        for (int g = 0; g < 2; g++)
            printf("# class %d %-12s group %c r %s %.3f %.3f %.3f | |W| %.3f %.3f %.3f | random %.3f %.3f %.3f\n", k,
                   k < m->n_labels ? m->labels[k] : "?", 'A' + g, vc_metric_names[metric], r[g][0][0], r[g][1][0], r[g][2][0],
                   r[g][0][1], r[g][1][1], r[g][2][1], r[g][0][2], r[g][1][2], r[g][2][2]);
        scores_free(&sc);
        scores_free(&wt);
    }
    for (int g = 0; g < 2 && !rc; g++)
        for (int f = 0; f < 3; f++) {
            char name[200];
            snprintf(name, sizeof name, "class circuits held-out group %c keep %.0f%%: %s beats |W| for %d/10 classes (need 9), "
                     "random for %d/10 (need 10)", 'A' + g, fractions[f] * 100, vc_metric_names[metric], wins[g][f][0], wins[g][f][1]);
            tu_report(name, wins[g][f][0] >= 9 && wins[g][f][1] >= K, "too few");
        }
    free(x); free(lab); free(cat);
    idx_set_free(&set);
    vc_model_free(m);
    return tu_finish();
}
