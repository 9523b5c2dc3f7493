// fuzz_idx.c: IDX files (plain or gzip), with a 64 MB cap like the CLI's.
#include "fuzz_util.h"
#include "../../loaders/idx.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size) {
    const char *p = fuzz_file(data, size, ".idx");
    vc_idx a;
    vc_error err;
    if (idx_read(&a, p, (size_t)64 << 20, &err) == VC_OK) idx_free(&a);
    return 0;
}
