// gpu_bench.c: viscnn's side of benchmarks/gpu_check.sh (CUDA backend).
//   gpu_bench fwdbwd [--batch 64] [--reps 10] [--device cuda|cpu]
//       alexnet (built-in template, seeded random weights) forward, mean
//       cross-entropy against argmax labels, backward with every parameter
//       gradient, on one batch of N(0,1)-ish random images; after one
//       untimed warm-up, the median over reps of the wall time (the device
//       synchronised before the clock stops).
//   gpu_bench scores [--images 1024] [--batch 64] [--reps 3] [--device cuda|cpu]
//       every node and edge actxgrad score of alexnet toward the loss over
//       the images (importance_begin/add/end, exactly what viscnn importance
//       runs), median over reps (one warm-up batch first).
// Prints one line: MODE seconds=S images_per_s=R batch=B device=D
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cuda_runtime.h>
#include "../train/train.h"
#include "../viscnn/importance.h"

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}
static void sync_device(vc_device d) { if (d == VC_DEVICE_CUDA) cudaDeviceSynchronize(); }
static int cmp(const void *a, const void *b) { double x = *(const double *)a, y = *(const double *)b; return (x > y) - (x < y); }
static void die(const char *what, const vc_error *e) { fprintf(stderr, "gpu_bench: %s: %s\n", what, e->msg); exit(2); }

int main(int argc, char **argv) {
    if (argc < 2 || (strcmp(argv[1], "fwdbwd") && strcmp(argv[1], "scores"))) {
        fprintf(stderr, "usage: gpu_bench fwdbwd|scores [--batch B] [--images N] [--reps R] [--device cuda|cpu]\n");
        return 2;
    }
    const int scores = !strcmp(argv[1], "scores");
    int batch = 64, images = 1024, reps = scores ? 3 : 10;
    vc_device dev = VC_DEVICE_CUDA;
    vc_error err = {{0}};
    for (int i = 2; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--batch")) batch = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--images")) images = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--reps")) reps = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--device")) { if (vc_device_parse(argv[i + 1], &dev, &err)) die("--device", &err); }
        else { fprintf(stderr, "gpu_bench: unknown option %s\n", argv[i]); return 2; }
    }
    if (batch < 1 || images < 1 || reps < 1 || reps > 100) { fprintf(stderr, "gpu_bench: bad --batch/--images/--reps\n"); return 2; }
    if (vc_set_device(dev, &err)) die("device", &err);
    vc_malloc_keep();
    vc_model *m = NULL;
    if (train_model_from_template(&m, "alexnet", 0, &err)) die("alexnet", &err);
    const size_t per = m->nodes[0].size;
    const int nx = scores ? (images < batch ? images : batch) * 2 : batch;   // a few distinct batches of input
    float *x = malloc((size_t)nx * per * sizeof(float));
    uint64_t s = 88172645463325252ULL;
    for (size_t k = 0; k < (size_t)nx * per; k++) {
        s ^= s << 13; s ^= s >> 7; s ^= s << 17;
        x[k] = (float)((s >> 40) * (1.0 / 16777216.0)) * 3.4f - 1.7f;   // uniform, variance ~1
    }
    double *t = malloc(reps * sizeof(double));
    if (!scores) {
        vc_run *r = vc_run_new(m, batch);
        const int K = (int)m->nodes[m->output].size;
        float *dlog = malloc((size_t)batch * K * sizeof(float));
        int *lab = malloc(batch * sizeof(int));
        for (int rep = -1; rep < reps; rep++) {
            double t0 = now();
            if (vc_forward(r, x, -1, 0, &err)) die("forward", &err);
            const float *y = vc_run_act(r, m->output);   // argmax labels, as the PyTorch side
            for (int n = 0; n < batch; n++) {
                int b = 0;
                for (int k = 1; k < K; k++) if (y[(size_t)n * K + k] > y[(size_t)n * K + b]) b = k;
                lab[n] = b;
            }
            vc_loss_cross_entropy(r, lab, dlog);
            if (vc_backward(r, m->output, dlog, VC_BWD_PARAMS, &err)) die("backward", &err);
            sync_device(dev);
            if (rep >= 0) t[rep] = now() - t0;
            vc_run_zero_param_grads(r);
            sync_device(dev);
        }
        free(dlog); free(lab);
        vc_run_free(r);
    } else {
        vc_target tg;
        if (target_parse(&tg, m, "loss", &err)) die("target", &err);
        for (int rep = -1; rep < reps; rep++) {
            vc_importance im;
            vc_scores out;
            double t0 = now();
            if (importance_begin(&im, m, VC_M_ACTXGRAD, &tg, batch, &err)) die("importance", &err);
            const int todo = rep < 0 ? batch : images;
            for (int done = 0; done < todo; done += batch) {
                int n = todo - done < batch ? todo - done : batch;
                const float *xb = x + (size_t)((done / batch) % 2) * batch * per;   // two distinct batches, alternating
                if (importance_add(&im, xb, n, NULL, &err)) die("importance", &err);
            }
            importance_end(&im, &out);
            sync_device(dev);
            if (rep >= 0) t[rep] = now() - t0;
            scores_free(&out);
            importance_free(&im);
        }
    }
    qsort(t, reps, sizeof(double), cmp);
    double med = t[reps / 2];
    int n_img = scores ? images : batch;
    printf("%s seconds=%.4f images_per_s=%.1f batch=%d images=%d device=%s\n", argv[1], med, n_img / med, batch, n_img,
           dev == VC_DEVICE_CUDA ? "cuda" : "cpu");
    free(t); free(x);
    vc_model_free(m);
    return 0;
}
