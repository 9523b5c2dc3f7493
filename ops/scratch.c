// scratch.c: per-thread work buffers that the conv paths keep between calls.
// The same layer shapes come back every pass, and a fresh malloc of tens of
// MB would page-fault on every call; each slot grows to the largest size
// asked of it and is shared by every layer (and by the im2col and Winograd
// paths), so the memory kept is one layer's worth, not the sum over layers.
#include <stdio.h>
#include <stdlib.h>
#include "ops.h"

float *ops_scratch(int slot, size_t n) {
    static _Thread_local float *buf[OPS_SCRATCH_SLOTS];
    static _Thread_local size_t cap[OPS_SCRATCH_SLOTS];
    if (slot < 0 || slot >= OPS_SCRATCH_SLOTS) { fprintf(stderr, "ops_scratch: bad slot %d\n", slot); abort(); }
    if (n > cap[slot]) {
        free(buf[slot]);
        buf[slot] = malloc(n * sizeof(float));
        if (!buf[slot]) { fprintf(stderr, "ops_scratch: out of memory allocating %zu floats\n", n); abort(); }
        cap[slot] = n;
    }
    return buf[slot];
}
