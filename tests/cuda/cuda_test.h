// cuda_test.h: shared by the CUDA tests (tests/cuda/test_*.c): device
// buffers, and the rule for a machine without a GPU. Cases are counted, not
// run, when there is no device; the program then prints
//   # cuda: no device (REASON), N CUDA tests not run
// and exits 0: the line is neither an ok nor a FAIL (tests/run.sh counts
// neither), so CI builds these programs on every run and says plainly that
// nothing was checked. With a device every case runs and prints ok/FAIL.
#pragma once
#include <cuda_runtime.h>
#include "testutil.h"
#include "cuda_common.h"

static int ct_have = -1, ct_not_run = 0;
static char ct_why[256];

static inline int ct_device(void) {
    if (ct_have < 0) {
        int n = 0;
        cudaError_t e = cudaGetDeviceCount(&n);
        if (e != cudaSuccess) snprintf(ct_why, sizeof ct_why, "%s", cudaGetErrorString(e));
        else if (n == 0) snprintf(ct_why, sizeof ct_why, "no CUDA device");
        ct_have = e == cudaSuccess && n > 0;
    }
    return ct_have;
}
// Whether to run case `name` now (selected and a device); counts it otherwise.
static inline int ct_run(const char *name) {
    if (!tu_selected(name)) return 0;
    if (!ct_device()) { ct_not_run++; return 0; }
    return 1;
}
static inline int ct_finish(void) {
    if (!ct_device()) {
        printf("# cuda: no device (%s), %d CUDA tests not run\n", ct_why, ct_not_run);
        return 0;
    }
    return tu_finish();
}
// A device copy of h (or uninitialised when h is NULL); NULL without a device,
// so that a program can set up its cases before ct_run counts them.
static inline float *ct_up(const float *h, size_t n) {
    float *d = NULL;
    if (!ct_device()) return NULL;
    cuda_check(cudaMalloc((void **)&d, (n ? n : 1) * sizeof(float)));
    if (h) cuda_check(cudaMemcpy(d, h, n * sizeof(float), cudaMemcpyHostToDevice));
    return d;
}
static inline float *ct_down(const float *d, size_t n) {
    float *h = (float *)malloc((n ? n : 1) * sizeof(float));
    cuda_check(cudaMemcpy(h, d, n * sizeof(float), cudaMemcpyDeviceToHost));
    return h;
}
