// fuzz_circuit.c: circuit JSON files (forward --circuit), read against the
// default model.
#include "fuzz_util.h"
#include "viscnn_internal.h"
#include "../../viscnn/circuit.h"
#include "../../viscnn/scores.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size) {
    static vc_model *m;
    vc_error err;
    if (!m && vc_model_load(&m, "models/fashion.safetensors", &err)) { fprintf(stderr, "%s\n", err.msg); abort(); }
    const char *p = fuzz_file(data, size, ".json");
    vc_circuit c;
    vc_scores layout;
    if (circuit_read(&c, &layout, m, p, &err) == VC_OK) { circuit_free(&c); scores_free(&layout); }
    return 0;
}
