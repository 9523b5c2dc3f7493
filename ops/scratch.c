// scratch.c: per-thread work buffers that the conv paths keep between calls.
// The same layer shapes come back every pass, and a fresh malloc of tens of
// MB would page-fault on every call; each slot grows to the largest size
// asked of it and is shared by every layer (and by the im2col and Winograd
// paths), so the memory kept is one layer's worth, not the sum over layers.
// A thread's buffers are freed when it exits (a pthread key's destructor):
// training's worker threads come and go (LeakSanitizer found them leaking).
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include "ops.h"

static pthread_key_t key;
static pthread_once_t key_once = PTHREAD_ONCE_INIT;
static void release(void *p) {
    float **b = p;
    for (int i = 0; i < OPS_SCRATCH_SLOTS; i++) { free(b[i]); b[i] = NULL; }
}
static void make_key(void) { pthread_key_create(&key, release); }

float *ops_scratch(int slot, size_t n) {
    static _Thread_local float *buf[OPS_SCRATCH_SLOTS];
    static _Thread_local size_t cap[OPS_SCRATCH_SLOTS];
    static _Thread_local int registered;
    if (slot < 0 || slot >= OPS_SCRATCH_SLOTS) { fprintf(stderr, "ops_scratch: bad slot %d\n", slot); abort(); }
    if (n > cap[slot]) {
        if (!registered) {
            pthread_once(&key_once, make_key);
            pthread_setspecific(key, buf);
            registered = 1;
        }
        free(buf[slot]);
        buf[slot] = malloc(n * sizeof(float));
        if (!buf[slot]) { fprintf(stderr, "ops_scratch: out of memory allocating %zu floats\n", n); abort(); }
        cap[slot] = n;
    }
    return buf[slot];
}
