// fuzz_npy.c: .npy headers and data, as floats and as integers.
#include "fuzz_util.h"
#include "../../loaders/npy.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size) {
    const char *p = fuzz_file(data, size, ".npy");
    vc_npy a;
    vc_error err;
    if (npy_read(&a, p, 'f', &err) == VC_OK) npy_free(&a);
    if (npy_read(&a, p, 'i', &err) == VC_OK) npy_free(&a);
    return 0;
}
