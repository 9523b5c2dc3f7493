// npy.h: NumPy .npy files (format 1.0/2.0/3.0), C order, little-endian.
#pragma once
#include <stddef.h>
#include "viscnn_internal.h"

typedef struct {
    int rank;
    long long dim[8];
    size_t size;              // number of elements
    float *f;                 // float data (read as float32; float64 converted)
    long long *i;             // integer data (int8..int64, uint8; for labels)
} vc_npy;

// kind: 'f' reads float16/32/64 into f; 'i' reads integers into i.
int npy_read(vc_npy *a, const char *path, char kind, vc_error *err);
void npy_free(vc_npy *a);
// Only the header: a's rank, dim and size (no data), the dtype string
// ("<f4", ...) and the file offset of the first data byte (for mmap).
int npy_read_header(vc_npy *a, const char *path, char dtype[8], long *data_offset, vc_error *err);
// Writes float32 (rank <= 8) to path (via path.tmp + rename).
int npy_write(const char *path, const float *data, int rank, const long long *dim, vc_error *err);
