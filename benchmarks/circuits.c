// circuits.c: class circuits of the default model measured on held-out
// images (issue 12; the protocol is in benchmarks/README.md).
//
// For each class k of models/fashion.safetensors, target class:k:
//   scores   from class k's first 50 Fashion-MNIST test images (the images
//            of data/fashion/<label>/, scripts/make-data.sh);
//   circuits keep:F (F of the cone's kernels; nodes follow, dead parts
//            removed) for F = 5, 10, 20 % with every metric, and two
//            baselines with the default metric's per-layer kept-kernel
//            counts: |W| (the top kernels by mean |W| within each layer) and
//            random kernels (N_SEEDS seeds);
//   measured on two disjoint held-out groups of class k's test images that
//            are in no folder of data/: A = the class's test images 100..199,
//            B = 200..299 (data/ holds 0..49 and 50..99 of each class).
//   specificity: on each group, is class k's circuit (default metric) the
//            most faithful of the ten class circuits for logit k on class k's
//            images?
// Prints the markdown tables recorded in benchmarks/RESULTS.md and exits 0;
// `--check` exits 1 unless the target is met (the default metric beats
// |W| in >= 9/10 and random in 10/10 classes at every F on both groups).
// --metric M makes M the metric the baselines are size-matched to (default:
// the circuit default, taylor); --iterative K extracts every circuit with
// circuit_extract_iterative (K rounds, re-scored on the pruned network).
//
//   build/bench/circuits [--metric M] [--iterative K] [--check]   (make bench-circuits)
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "viscnn_internal.h"
#include "../loaders/idx.h"
#include "../viscnn/circuit.h"
#include "../viscnn/imageset.h"

#define MODEL "models/fashion.safetensors"
#define IMAGES "/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz"
#define LABELS "/usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz"
#define N_SCORE 50
#define GROUP 100
#define GROUP_START 100   // per-class index of group A; B follows
#define N_SEEDS 5
#define NF 3
#define NG 2
#define MAXK 16

static const double fractions[NF] = {0.05, 0.10, 0.20};

static void die(const char *what, const vc_error *err) {
    fprintf(stderr, "circuits: %s: %s\n", what, err->msg);
    exit(2);
}

// xorshift64*: uniform in [0, 1)
static double uniform(unsigned long long *s) {
    *s ^= *s >> 12; *s ^= *s << 25; *s ^= *s >> 27;
    return (double)((*s * 2685821657736338717ULL) >> 11) * (1.0 / 9007199254740992.0);
}

// A NaN r (undefined: constant output) loses every comparison.
static int beats(double a, double b) {
    if (isnan(a)) return 0;
    return isnan(b) || a > b;
}

static void scores_of(vc_scores *out, const vc_model *m, vc_metric metric, const vc_target *t, const vc_imageset *s,
                      const int *idx, int n) {
    vc_importance im;
    vc_error err = {{0}};
    float *x = malloc((size_t)n * m->nodes[0].size * sizeof(float));
    int *lab = malloc(n * sizeof(int));
    if (importance_begin(&im, m, metric, t, n, &err) || imageset_load(s, idx, n, x, lab, &err) ||
        importance_add(&im, x, n, lab, &err))
        die("importance", &err);
    importance_end(&im, out);
    importance_free(&im);
    free(x); free(lab);
}

static vc_faith last;   // the latest measurement (relative error, top-1)

static double measure(const vc_model *m, const vc_target *t, const vc_scores *layout, const vc_circuit *c,
                      const vc_faith_ref *ref, const vc_imageset *s) {
    vc_error err = {{0}};
    if (faith_measure(&last, ref, m, t, layout, c, s, GROUP, &err)) die("faithfulness", &err);
    return last.r;
}

int main(int argc, char **argv) {
    vc_metric def = VC_CIRCUIT_DEFAULT_METRIC;
    int check = 0, iterative = 0;
    vc_error err = {{0}};
    for (int a = 1; a < argc; a++) {
        if (!strcmp(argv[a], "--check")) check = 1;
        else if (!strcmp(argv[a], "--metric") && a + 1 < argc) { if (metric_parse(&def, argv[++a], &err)) die("--metric", &err); }
        else if (!strcmp(argv[a], "--iterative") && a + 1 < argc) iterative = atoi(argv[++a]);
        else { fprintf(stderr, "usage: circuits [--metric M] [--iterative K] [--check]\n"); return 2; }
    }
    // One thread: the work is thousands of small runs, and on a loaded
    // machine OpenMP threads waiting for each other made it 10x slower.
    omp_set_num_threads(1);
    vc_model *m;
    vc_idx_set set;
    if (vc_model_load(&m, MODEL, &err)) die("model", &err);
    if (idx_read_set(&set, IMAGES, LABELS, &err)) die("Fashion-MNIST test set", &err);
    const int K = (int)m->nodes[m->output].size;
    if (K > MAXK) { fprintf(stderr, "circuits: too many classes\n"); return 2; }
    const size_t px = m->nodes[0].size;
    // One in-memory image set: for class k, images k*per + [0, per) are the
    // class's first `per` test images; category 3k holds the scoring images
    // (0..N_SCORE-1), 3k+1 group A, 3k+2 group B, 3k none (the images of
    // data/fashion-heldout, N_SCORE..GROUP_START-1, are not used).
    const int per = GROUP_START + NG * GROUP;
    vc_imageset s = {0};
    s.n = K * per;
    s.n_cat = 3 * K;
    s.cat_names = malloc(s.n_cat * sizeof(char *));
    for (int c = 0; c < s.n_cat; c++) {
        s.cat_names[c] = malloc(32);
        snprintf(s.cat_names[c], 32, "%d-%s", c / 3, (const char *[]){"score", "A", "B"}[c % 3]);
    }
    s.x = malloc((size_t)s.n * px * sizeof(float));
    s.cat = malloc(s.n * sizeof(int));
    s.label = malloc(s.n * sizeof(int));
    s.m = m;
    s.source = IMAGES;
    for (int k = 0; k < K; k++) {
        int got = 0;
        for (int i = 0; i < set.n && got < per; i++) {
            if (set.labels[i] != k) continue;
            float *x = s.x + (size_t)(k * per + got) * px;
            for (size_t p = 0; p < px; p++) x[p] = (set.pixels[(size_t)i * px + p] / 255.0f - m->pre.mean[0]) / m->pre.std[0];
            s.cat[k * per + got] = got < N_SCORE ? 3 * k : got < GROUP_START ? -1 : 3 * k + 1 + (got - GROUP_START) / GROUP;
            s.label[k * per + got] = k;
            got++;
        }
        if (got < per) { fprintf(stderr, "circuits: class %d has only %d test images\n", k, got); return 2; }
    }
    int score_idx[N_SCORE], gidx[NG][GROUP];

    // r[metric][k][f][g], baselines
    static double r_metric[VC_M_COUNT][MAXK][NF][NG], r_mag[MAXK][NF][NG], r_rand[MAXK][NF][NG], r_rand_max[MAXK][NF][NG];
    static double spec_r[NG][NF][MAXK][MAXK];   // [g][f][images/logit k][circuit c]
    static size_t kept_edges[MAXK][NF];
    static double rel_err[MAXK][NF][NG], top1[MAXK][NF][NG];
    vc_scores layouts[MAXK];
    vc_circuit circ[MAXK][NF];
    vc_target targets[MAXK];
    for (int k = 0; k < K; k++) {
        char tt[32];
        snprintf(tt, sizeof tt, "class:%d", k);
        if (target_parse(&targets[k], m, tt, &err)) die("target", &err);
        const vc_target *t = &targets[k];
        for (int q = 0; q < N_SCORE; q++) score_idx[q] = k * per + q;
        for (int g = 0; g < NG; g++)
            for (int q = 0; q < GROUP; q++) gidx[g][q] = k * per + GROUP_START + g * GROUP + q;
        vc_faith_ref ref[NG];
        for (int g = 0; g < NG; g++)
            if (faith_reference(&ref[g], m, t, &s, gidx[g], GROUP, GROUP, &err)) die("reference", &err);
        vc_scores sc[VC_M_COUNT];
        for (int mt = 0; mt < VC_M_COUNT; mt++) scores_of(&sc[mt], m, (vc_metric)mt, t, &s, score_idx, N_SCORE);
        for (int f = 0; f < NF; f++) {
            vc_circuit_spec spec;
            circuit_spec_init(&spec);
            spec.mode = VC_C_KEEP;
            spec.keep_nodes = 1;
            spec.keep_edges = fractions[f];
            spec.iterative = iterative;
            for (int mt = 0; mt < VC_M_COUNT; mt++) {
                vc_circuit c;
                if (iterative > 1) {
                    vc_scores last;
                    if (circuit_extract_iterative(&c, &last, m, (vc_metric)mt, t, &s, s.cat_names[3 * k], &sc[mt], &spec,
                                                  N_SCORE, &err))
                        die("extract", &err);
                    scores_free(&last);
                } else if (circuit_extract(&c, m, &sc[mt], t, &spec, &err)) die("extract", &err);
                for (int g = 0; g < NG; g++) {
                    r_metric[mt][k][f][g] = measure(m, t, &sc[mt], &c, &ref[g], &s);
                    if (mt == (int)def) { rel_err[k][f][g] = last.rel_error; top1[k][f][g] = last.top1; }
                }
                if (mt == (int)def) { circ[k][f] = c; kept_edges[k][f] = c.n_edges; }
                else circuit_free(&c);
            }
            size_t counts[64];
            circuit_layer_edges(&circ[k][f], &sc[def], counts);
            vc_circuit c;
            circuit_select_per_layer(&c, m, &sc[VC_M_WEIGHT], t, counts);
            for (int g = 0; g < NG; g++) r_mag[k][f][g] = measure(m, t, &sc[def], &c, &ref[g], &s);
            circuit_free(&c);
            unsigned long long seed = 0x9E3779B97F4A7C15ULL * (unsigned long long)(1 + k * NF + f);
            for (int g = 0; g < NG; g++) { r_rand[k][f][g] = 0; r_rand_max[k][f][g] = -INFINITY; }
            for (int rep = 0; rep < N_SEEDS; rep++) {
                vc_scores rs;
                scores_copy(&rs, &sc[def]);
                for (int l = 0; l < rs.n_layers; l++)
                    for (size_t e = 0; e < (size_t)rs.l[l].cout * rs.l[l].cg; e++) rs.l[l].edges[e] = (float)uniform(&seed);
                circuit_select_per_layer(&c, m, &rs, t, counts);
                for (int g = 0; g < NG; g++) {
                    double r = measure(m, t, &rs, &c, &ref[g], &s);
                    double rr = isnan(r) ? 0 : r;   // an undefined r counts as 0 in the mean
                    r_rand[k][f][g] += rr / N_SEEDS;
                    if (rr > r_rand_max[k][f][g]) r_rand_max[k][f][g] = rr;
                }
                circuit_free(&c);
                scores_free(&rs);
            }
        }
        scores_copy(&layouts[k], &sc[def]);
        for (int mt = 0; mt < VC_M_COUNT; mt++) scores_free(&sc[mt]);
        for (int g = 0; g < NG; g++) faith_reference_free(&ref[g]);
        fprintf(stderr, "circuits: class %d done\n", k);
    }
    // specificity: circuit c on class k's images, logit k
    for (int k = 0; k < K; k++) {
        for (int g = 0; g < NG; g++) {
            for (int q = 0; q < GROUP; q++) gidx[g][q] = k * per + GROUP_START + g * GROUP + q;
            vc_faith_ref ref;
            if (faith_reference(&ref, m, &targets[k], &s, gidx[g], GROUP, GROUP, &err)) die("reference", &err);
            for (int f = 0; f < NF; f++)
                for (int c = 0; c < K; c++) spec_r[g][f][k][c] = measure(m, &targets[k], &layouts[c], &circ[c][f], &ref, &s);
            faith_reference_free(&ref);
        }
    }

    // ---- tables ----
    const char *gname[NG] = {"A (test images 100-199 of each class)", "B (test images 200-299 of each class)"};
    int met = 1;
    printf("default metric: %s%s\n\n", vc_metric_names[def], iterative ? " (iterative)" : "");
    for (int g = 0; g < NG; g++) {
        printf("### held-out group %s: Pearson r of logit k, circuit vs full network, 100 images of class k\n\n", gname[g]);
        printf("| class | kept edges 5/10/20%% |");
        for (int mt = 0; mt < VC_M_COUNT; mt++) printf(" %s |", vc_metric_names[mt]);
        printf(" \\|W\\| same sizes | random same sizes (mean of %d) |\n|---|---|", N_SEEDS);
        for (int mt = 0; mt < VC_M_COUNT + 2; mt++) printf("---|");
        printf("\n");
        for (int k = 0; k < K; k++) {
            printf("| %d %s | %zu / %zu / %zu |", k, k < m->n_labels ? m->labels[k] : "?", kept_edges[k][0], kept_edges[k][1], kept_edges[k][2]);
            for (int mt = 0; mt < VC_M_COUNT; mt++)
                printf(" %.2f / %.2f / %.2f |", r_metric[mt][k][0][g], r_metric[mt][k][1][g], r_metric[mt][k][2][g]);
            printf(" %.2f / %.2f / %.2f |", r_mag[k][0][g], r_mag[k][1][g], r_mag[k][2][g]);
            printf(" %.2f / %.2f / %.2f |\n", r_rand[k][0][g], r_rand[k][1][g], r_rand[k][2][g]);
        }
        printf("\n%s circuits, group %c: relative error of logit k (mean |f_circuit - f| / mean |f|) and top-1 agreement "
               "with the full network\n\n| class | rel. error 5/10/20%% | top-1 5/10/20%% |\n|---|---|---|\n",
               vc_metric_names[def], 'A' + g);
        for (int k = 0; k < K; k++)
            printf("| %d %s | %.2f / %.2f / %.2f | %.2f / %.2f / %.2f |\n", k, k < m->n_labels ? m->labels[k] : "?",
                   rel_err[k][0][g], rel_err[k][1][g], rel_err[k][2][g], top1[k][0][g], top1[k][1][g], top1[k][2][g]);
        printf("\nwins of %s (group %c): ", vc_metric_names[def], 'A' + g);
        for (int f = 0; f < NF; f++) {
            int wm = 0, wr = 0, wrmax = 0, spec = 0;
            double mean_r = 0;
            for (int k = 0; k < K; k++) {
                wm += beats(r_metric[def][k][f][g], r_mag[k][f][g]);
                wr += beats(r_metric[def][k][f][g], r_rand[k][f][g]);
                wrmax += beats(r_metric[def][k][f][g], r_rand_max[k][f][g]);
                int best = 1;
                for (int c = 0; c < K; c++) if (c != k && !beats(spec_r[g][f][k][k], spec_r[g][f][k][c])) best = 0;
                spec += best;
                mean_r += r_metric[def][k][f][g] / K;
            }
            printf("%s%.0f%%: |W| %d/%d, random %d/%d (every seed %d/%d), own circuit best %d/%d, mean r %.3f",
                   f ? "; " : "", fractions[f] * 100, wm, K, wr, K, wrmax, K, spec, K, mean_r);
            if (wm < 9 || wr < K) met = 0;
        }
        printf("\n\n");
    }
    printf("target (%s beats |W| in >= 9/10 and random in 10/10 classes at 5, 10, 20%% on both groups): %s\n",
           vc_metric_names[def], met ? "met" : "NOT met");
    for (int k = 0; k < K; k++) {
        for (int f = 0; f < NF; f++) circuit_free(&circ[k][f]);
        scores_free(&layouts[k]);
    }
    for (int c = 0; c < s.n_cat; c++) free(s.cat_names[c]);
    free(s.cat_names); free(s.x); free(s.cat); free(s.label);
    idx_set_free(&set);
    vc_model_free(m);
    return check && !met ? 1 : 0;
}
