// api_threads.c: throughput of the public API's thread model (issue 21) —
// JOBS jobs (forward of 8 images, backward toward class:K, every edge map of
// features.6 for one image) on one shared model: by one thread whose OpenMP
// team has every core, and by T application threads (T = 2, 4), each with
// its own session and an OpenMP team of one. Best of ROUNDS, interleaved.
//   make build/bench/api_threads && build/bench/api_threads
#include <omp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include "viscnn.h"

enum { JOBS = 32, BATCH = 8, ROUNDS = 3 };
static const vc_model *model;
static float *x;
static int layer;

static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + 1e-9 * t.tv_nsec; }

typedef struct { int first, step, omp; } share;

static void *run_jobs(void *arg) {
    const share *sh = arg;
    omp_set_num_threads(sh->omp);   // this thread's OpenMP team
    vc_session *s;
    vc_error e;
    float *maps = NULL;
    char target[32];
    if (vc_session_new(&s, model, &e)) { fprintf(stderr, "%s\n", e.msg); exit(1); }
    for (int j = sh->first; j < JOBS; j += sh->step) {
        snprintf(target, sizeof target, "class:%d", j % 10);
        if (vc_session_forward(s, x, BATCH, &e) || vc_session_backward(s, target, NULL, &e) ||
            vc_session_edges(s, layer, j % BATCH, NULL, 0, NULL, 0, &maps, &e)) { fprintf(stderr, "%s\n", e.msg); exit(1); }
        vc_free(maps);
        maps = NULL;
    }
    vc_session_free(s);
    return NULL;
}

static double timed(int threads, int omp) {
    pthread_t th[8];
    share sh[8];
    double t0 = now();
    for (int t = 0; t < threads; t++) {
        sh[t] = (share){t, threads, omp};
        pthread_create(&th[t], NULL, run_jobs, &sh[t]);
    }
    for (int t = 0; t < threads; t++) pthread_join(th[t], NULL);
    return now() - t0;
}

int main(int argc, char **argv) {
    vc_error e;
    vc_model *m;
    if (vc_model_load(&m, "models/fashion.safetensors", &e) || vc_model_find_node(m, "features.6", &layer, &e)) {
        fprintf(stderr, "%s\n", e.msg);
        return 1;
    }
    model = m;
    x = malloc(BATCH * 28 * 28 * sizeof(float));
    for (int i = 0; i < BATCH * 28 * 28; i++) x[i] = (float)((i * 2654435761u) % 1000) / 500.0f - 1.0f;
    int cores = omp_get_max_threads();
    if (argc == 3) {   // one configuration alone, for time(1): api_threads THREADS OMP
        printf("%d threads x %d OpenMP: %.3f s\n", atoi(argv[1]), atoi(argv[2]), timed(atoi(argv[1]), atoi(argv[2])));
        return 0;
    }
    double best[3] = {1e30, 1e30, 1e30};
    for (int r = 0; r < ROUNDS; r++) {
        double t;
        if ((t = timed(1, cores)) < best[0]) best[0] = t;
        if ((t = timed(2, 1)) < best[1]) best[1] = t;
        if ((t = timed(4, 1)) < best[2]) best[2] = t;
    }
    printf("%d jobs (forward batch %d + backward + features.6 edges), OMP_NUM_THREADS=%d\n", JOBS, BATCH, cores);
    printf("1 thread x %d OpenMP: %.3f s\n2 threads x 1 OpenMP: %.3f s (%.2fx)\n4 threads x 1 OpenMP: %.3f s (%.2fx)\n", cores,
           best[0], best[1], best[0] / best[1], best[2], best[0] / best[2]);
    free(x);
    vc_model_free(m);
    return 0;
}
