// bench_run.c: times one kind of work on one batch, in its own process so
// that its peak RSS is its own.
//
//   build/bench/bench_run MODEL X.npy MODE [REPS [BATCH]]
//   build/bench/bench_run info | sgemm [N]
//
// MODE: forward      eval forward of the whole X batch
//       fwdbwd       forward + backward of the cross-entropy loss (argmax
//                    labels) with parameter gradients: the plain baseline
//       importance   every node and edge score, actxgrad toward the loss,
//                    over all images of X in batches of BATCH (default: all);
//                    X is memory-mapped and each batch's pages are dropped
//                    after use, so the peak RSS does not count the whole
//                    input (the scaling runs go to 512 images = 308 MB)
// Prints: MODE median_seconds min_seconds peak_rss_kib
// info: the OpenBLAS core and thread count; sgemm: GFLOP/s of cblas_sgemm
// on an N x N x N product (default 2048), median of REPS=5.
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <cblas.h>
#include <omp.h>
#include "viscnn_internal.h"
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

char *openblas_get_corename(void);
int openblas_get_num_threads(void);

// A float32 .npy (header read by loaders/npy.c), memory-mapped: *data at the
// first element, *n the first dimension. Returns the mapping (NULL on failure).
static void *map_npy(const char *path, size_t *len, const float **data, long *n) {
    vc_npy h;
    char dt[8];
    long off;
    vc_error err;
    if (npy_read_header(&h, path, dt, &off, &err) || strcmp(dt + 1, "f4") || h.rank < 1) return NULL;
    int fd = open(path, O_RDONLY);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0 || (size_t)st.st_size < (size_t)off + h.size * sizeof(float)) {
        if (fd >= 0) close(fd);
        return NULL;
    }
    unsigned char *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (p == MAP_FAILED) return NULL;
    *len = (size_t)st.st_size;
    *data = (const float *)(p + off);
    *n = (long)h.dim[0];
    return p;
}

static int sgemm_bench(int n) {
    float *a = malloc((size_t)n * n * 4), *b = malloc((size_t)n * n * 4), *c = malloc((size_t)n * n * 4);
    for (size_t i = 0; i < (size_t)n * n; i++) { a[i] = (float)(i % 7) * 0.1f; b[i] = (float)(i % 5) * 0.1f; }
    double t[5];
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1, a, n, b, n, 0, c, n);
    for (int k = 0; k < 5; k++) {
        double t0 = now();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1, a, n, b, n, 0, c, n);
        t[k] = now() - t0;
    }
    qsort(t, 5, sizeof(double), cmp_d);
    printf("sgemm %d %.4f %.1f\n", n, t[2], 2.0 * n * n * (double)n / t[2] * 1e-9);
    free(a); free(b); free(c);
    return 0;
}

int main(int argc, char **argv) {
    if (!getenv("VISCNN_NO_MALLOC_KEEP")) vc_malloc_keep();   // as bin/viscnn
    if (argc >= 2 && !strcmp(argv[1], "info")) {
        printf("openblas_core %s openblas_threads %d omp_threads %d\n", openblas_get_corename(),
               openblas_get_num_threads(), omp_get_max_threads());
        return 0;
    }
    if (argc >= 2 && !strcmp(argv[1], "sgemm")) return sgemm_bench(argc > 2 ? atoi(argv[2]) : 2048);
    if (argc < 4) { fprintf(stderr, "usage: bench_run MODEL X.npy forward|fwdbwd|importance [REPS]\n"); return 2; }
    const char *mode = argv[3];
    int reps = argc > 4 ? atoi(argv[4]) : 5;
    int total = 0, B = 0;
    vc_error err;
    vc_model *m;
    vc_npy x = {0};
    const int imp = !strcmp(mode, "importance");
    if (vc_model_load(&m, argv[1], &err)) { fprintf(stderr, "%s\n", err.msg); return 2; }
    size_t map_len = 0;
    void *map = NULL;
    const float *xf;
    long nx = 0;
    if (imp) {
        if (!(map = map_npy(argv[2], &map_len, &xf, &nx))) { fprintf(stderr, "%s: not a float32 .npy\n", argv[2]); return 2; }
        total = (int)nx;
    } else {
        if (npy_read(&x, argv[2], 'f', &err)) { fprintf(stderr, "%s\n", err.msg); return 2; }
        xf = x.f;
        total = (int)x.dim[0];
    }
    const long page = sysconf(_SC_PAGESIZE);
    B = argc > 5 ? atoi(argv[5]) : total;
    if (B < 1 || B > total) B = total;
    int N = strcmp(mode, "importance") ? total : B;
    size_t K = m->nodes[m->output].size;
    double *t = malloc(reps * sizeof(double));
    vc_run *r = strcmp(mode, "importance") ? vc_run_new(m, N) : NULL;
    float *dl = malloc(N * K * sizeof(float));
    int *lab = malloc(N * sizeof(int));
    vc_target tg;
    target_parse(&tg, m, "loss", &err);
    for (int k = -1; k < reps; k++) {   // k = -1: warm-up, not timed (as bench_torch.py)
        double t0 = now();
        if (!strcmp(mode, "forward")) {
            if (vc_forward(r, xf, -1, VC_FWD_NOGRAD, &err)) goto fail;
        } else if (!strcmp(mode, "fwdbwd")) {
            if (vc_forward(r, xf, -1, 0, &err)) goto fail;
            for (int n = 0; n < N; n++) lab[n] = -1;
            target_seed(&tg, m, r, lab, dl);
            if (vc_backward(r, m->output, dl, VC_BWD_PARAMS, &err)) goto fail;
        } else if (!strcmp(mode, "importance")) {
            vc_importance im;
            vc_scores s;
            if (importance_begin(&im, m, VC_M_ACTXGRAD, &tg, B, &err)) goto fail;
            const int upto = k < 0 ? B : total;   // the warm-up does one batch
            for (int i0 = 0; i0 < upto; i0 += B) {
                int nb = total - i0 < B ? total - i0 : B;
                const float *xb = xf + (size_t)i0 * m->nodes[0].size;
                if (importance_add(&im, xb, nb, NULL, &err)) goto fail;
                // drop the batch's pages: RSS holds one batch of input at a time
                uintptr_t lo = ((uintptr_t)xb + page - 1) / page * page;
                uintptr_t hi = ((uintptr_t)(xb + (size_t)nb * m->nodes[0].size)) / page * page;
                if (hi > lo) madvise((void *)lo, hi - lo, MADV_DONTNEED);
            }
            importance_end(&im, &s);
            scores_free(&s);
            importance_free(&im);
        } else { fprintf(stderr, "unknown mode %s\n", mode); return 2; }
        if (k >= 0) t[k] = now() - t0;
    }
    vc_run_free(r);
    if (map) munmap(map, map_len);
    qsort(t, reps, sizeof(double), cmp_d);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("%s %.4f %.4f %ld\n", mode, t[reps / 2], t[0], ru.ru_maxrss);
    return 0;
fail:
    fprintf(stderr, "%s\n", err.msg);
    return 1;
}
