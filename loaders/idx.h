// idx.h: IDX files, the MNIST-style dataset format (Fashion-MNIST ships in it).
//
// Layout: 2 zero bytes, a type byte, the number of dimensions D, then D
// big-endian u32 sizes, then the data in row-major order. Only type 0x08
// (unsigned byte) is supported: images are (N, rows, cols) u8, labels (N) u8.
// Files may be gzip-compressed (read through zlib, which also reads plain
// files), so the Debian package's .gz files load as they are.
//
// Errors: a missing, unreadable, corrupt or truncated file, a bad header,
// trailing bytes or a size mismatch between images and labels is VC_EINPUT
// with one line that starts with the path.
#pragma once
#include "viscnn_internal.h"

typedef struct {
    int rank;
    int dim[4];
    size_t size;              // product of dims
    unsigned char *data;      // (dim[0], ..., dim[rank-1]) u8
} vc_idx;

// Reads a whole IDX file (gzip or plain). max_bytes bounds the data size
// (0 = 1 GiB) so that a corrupt header cannot ask for absurd memory.
int idx_read(vc_idx *a, const char *path, size_t max_bytes, vc_error *err);
void idx_free(vc_idx *a);

// An image set: n images of (rows, cols), u8, with one label each (0..255).
typedef struct {
    int n, rows, cols;
    unsigned char *pixels;    // (n, rows, cols)
    int *labels;              // (n)
} vc_idx_set;

// Reads images (rank 3) and labels (rank 1) and checks that the counts agree.
int idx_read_set(vc_idx_set *s, const char *images, const char *labels, vc_error *err);
void idx_set_free(vc_idx_set *s);
