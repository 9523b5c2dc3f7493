// fuzz_image.c: PNG and JPEG decoding (the format is chosen by magic bytes,
// so one harness covers both; the corpus holds seeds of each), gray and RGB.
#include "fuzz_util.h"
#include "../../loaders/image.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size) {
    static int once;
    if (!once) { image_set_max_pixels(4 << 20); once = 1; }   // keep each input cheap
    const char *p = fuzz_file(data, size, ".img");
    vc_image img;
    vc_error err;
    for (int c = 1; c <= 3; c += 2)
        if (image_load(&img, p, c, &err) == VC_OK) image_free(&img);
    return 0;
}
