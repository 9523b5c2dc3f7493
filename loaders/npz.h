// npz.h: writing NumPy .npz archives: a zip of .npy entries, STORED
// (uncompressed), as np.savez writes them and np.load reads them. Entries
// are streamed one at a time (an archive may be larger than memory); zip64
// records are written where a size or offset needs them. The archive goes to
// PATH.tmp and is renamed to PATH by npz_close, so a failed write leaves no
// half-written PATH.
#pragma once
#include <stddef.h>
#include "viscnn_internal.h"

typedef struct npz_writer npz_writer;

int npz_open(npz_writer **w, const char *path, vc_error *err);
// Adds NAME.npy: dtype is a NumPy descr ("|u1", "<i4", "<f4"), data holds
// prod(dim) elements of its size, C order. Names must be unique and must not
// hold control characters.
int npz_add(npz_writer *w, const char *name, const char *dtype, int rank, const long long *dim,
            const void *data, vc_error *err);
// Writes the central directory and renames PATH.tmp to PATH; frees w.
int npz_close(npz_writer *w, vc_error *err);
// Removes PATH.tmp and frees w (after a failure; NULL is allowed).
void npz_abort(npz_writer *w);
// Tests only: write zip64 records for every entry, as for a > 4 GiB archive.
void npz_force_zip64(npz_writer *w);
