// fuzz_safetensors.c: the safetensors container (header length, JSON header,
// offsets) and, when it holds a viscnn.graph, the whole model build.
#include <stdint.h>
#include "fuzz_util.h"
#include "viscnn_internal.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size) {
    const char *p = fuzz_file(data, size, ".safetensors");
    vc_model *m = NULL;
    vc_error err;
    if (vc_model_load(&m, p, &err) == VC_OK) vc_model_free(m);
    return 0;
}
