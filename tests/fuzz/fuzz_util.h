// fuzz_util.h: shared by the libFuzzer harnesses (tests/fuzz/README.md).
// Parsers that take a path get the input through a file in /dev/shm (or
// /tmp), one per process, rewritten for every input.
#pragma once
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char fuzz_path[256];
static void fuzz_file_remove(void) { unlink(fuzz_path); }

// The file is removed when the harness exits (libFuzzer ends a timed run with exit()).
__attribute__((unused)) static const char *fuzz_file(const unsigned char *data, size_t size, const char *suffix) {
    char *path = fuzz_path;
    if (!path[0]) {
        const char *dir = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
        snprintf(path, sizeof fuzz_path, "%s/viscnn-fuzz-%d%s", dir, (int)getpid(), suffix);
        atexit(fuzz_file_remove);
    }
    FILE *f = fopen(path, "wb");
    if (!f) abort();
    if (size && fwrite(data, 1, size, f) != size) abort();
    fclose(f);
    return path;
}
