// fuzz_util.h: shared by the libFuzzer harnesses (tests/fuzz/README.md).
// Parsers that take a path get the input through a file in /dev/shm (or
// /tmp), one per process, rewritten for every input.
#pragma once
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

__attribute__((unused)) static const char *fuzz_file(const unsigned char *data, size_t size, const char *suffix) {
    static char path[256];
    if (!path[0]) {
        const char *dir = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
        snprintf(path, sizeof path, "%s/viscnn-fuzz-%d%s", dir, (int)getpid(), suffix);
    }
    FILE *f = fopen(path, "wb");
    if (!f) abort();
    if (size && fwrite(data, 1, size, f) != size) abort();
    fclose(f);
    return path;
}
