// bench_run.c: times one kind of work on one batch, in its own process so
// that its peak RSS is its own.
//
//   build/bench/bench_run MODEL X.npy MODE [REPS]
//
// MODE: forward      eval forward
//       fwdbwd       forward + backward of the cross-entropy loss (argmax
//                    labels) with parameter gradients: the plain baseline
//       importance   every node and edge score, actxgrad toward the loss
// Prints: MODE median_seconds min_seconds peak_rss_kib
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include "viscnn.h"
#include "../loaders/npy.h"
#include "../viscnn/importance.h"

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}
static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
    if (argc < 4) { fprintf(stderr, "usage: bench_run MODEL X.npy forward|fwdbwd|importance [REPS]\n"); return 2; }
    const char *mode = argv[3];
    int reps = argc > 4 ? atoi(argv[4]) : 5;
    vc_error err;
    vc_model *m;
    vc_npy x;
    if (vc_model_load(&m, argv[1], &err) || npy_read(&x, argv[2], 'f', &err)) { fprintf(stderr, "%s\n", err.msg); return 2; }
    int N = (int)x.dim[0];
    size_t K = m->nodes[m->output].size;
    double *t = malloc(reps * sizeof(double));
    vc_run *r = vc_run_new(m, N);
    float *dl = malloc(N * K * sizeof(float));
    int *lab = malloc(N * sizeof(int));
    vc_target tg;
    target_parse(&tg, m, "loss", &err);
    for (int k = 0; k < reps; k++) {
        double t0 = now();
        if (!strcmp(mode, "forward")) {
            if (vc_forward(r, x.f, -1, VC_FWD_NOGRAD, &err)) goto fail;
        } else if (!strcmp(mode, "fwdbwd")) {
            if (vc_forward(r, x.f, -1, 0, &err)) goto fail;
            for (int n = 0; n < N; n++) lab[n] = -1;
            target_seed(&tg, m, r, lab, dl);
            if (vc_backward(r, m->output, dl, VC_BWD_PARAMS, &err)) goto fail;
        } else if (!strcmp(mode, "importance")) {
            vc_importance im;
            vc_scores s;
            if (importance_begin(&im, m, VC_M_ACTXGRAD, &tg, N, &err) || importance_add(&im, x.f, N, NULL, &err)) goto fail;
            importance_end(&im, &s);
            scores_free(&s);
            importance_free(&im);
        } else { fprintf(stderr, "unknown mode %s\n", mode); return 2; }
        t[k] = now() - t0;
    }
    qsort(t, reps, sizeof(double), cmp_d);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("%s %.4f %.4f %ld\n", mode, t[reps / 2], t[0], ru.ru_maxrss);
    return 0;
fail:
    fprintf(stderr, "%s\n", err.msg);
    return 1;
}
