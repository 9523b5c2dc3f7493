// fuzz_pth.c: PyTorch checkpoints from memory: the zip container (torch >=
// 1.6) and the legacy format, both through the pickle VM; every tensor found
// is converted to float32.
#include "fuzz_util.h"
#include "../../loaders/pth.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size) {
    pth_file f;
    vc_error err;
    if (pth_read_mem(&f, "fuzz.pth", data, size, &err) != VC_OK) return 0;
    for (int i = 0; i < f.n; i++) {
        const float *x;
        float *owned = NULL;
        if (pth_float32(&f, &f.t[i], &x, &owned, &err) == VC_OK) free(owned);
    }
    pth_free(&f);
    return 0;
}
