// fileio.h: opening untrusted input files. Only regular files are read: a
// directory, FIFO or device is refused by fstat before a byte is read (a FIFO
// is opened non-blocking, so that opening it cannot hang), and the file's
// size is returned so that every size read from a header can be compared
// with it before anything is allocated.
#pragma once
#include <stdio.h>
#include "viscnn_internal.h"

// fd of the regular file at path (O_RDONLY|O_CLOEXEC), its size in *size; -1 with err set.
int vc_open_regular(const char *path, size_t *size, vc_error *err);
// The same as a stdio stream ("rb").
FILE *vc_fopen_regular(const char *path, size_t *size, vc_error *err);
// The whole regular file, NUL-terminated, if it is at most max bytes.
char *vc_read_file(const char *path, size_t max, size_t *size, vc_error *err);
