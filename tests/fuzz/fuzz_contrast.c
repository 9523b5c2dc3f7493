// fuzz_contrast.c: contrast expressions ("a - 0.5*(b + c)"), parsed and
// evaluated over a fixed set of category names.
#include "fuzz_util.h"
#include "../../viscnn/contrast.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size) {
    char *s = malloc(size + 1);
    memcpy(s, data, size);
    s[size] = 0;
    vc_contrast *c = NULL;
    vc_error err;
    if (contrast_parse(&c, s, &err) == VC_OK) {
        const char *names[] = {"a", "b", "sneaker", "tshirt_top", "x1"};
        double coef[5], constant;
        contrast_linear(c, 5, names, coef, &constant, &err);
        contrast_free(c);
    }
    free(s);
    return 0;
}
