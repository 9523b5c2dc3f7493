// checkpoint.h: a rank's partial sums on disk (--checkpoint DIR), so that a
// killed importance run resumes where it stopped (docs/mpi.md).
//
// One file per rank, DIR/rank-R-of-P.ckpt:
//   "viscnn-checkpoint 1\n"
//   "job FINGERPRINT\n"            what the sums are of (model, metric, target,
//                                  batch, ranks, images and a hash of their paths)
//   "next U doubles N\n"           the rank has added every unit it owns below U
//   N doubles, native byte order   its accumulators (importance.h), all categories
// Written to a unique temp file in DIR, fsync'd, renamed over the old one, so
// a kill leaves either the old or the new checkpoint, never half of one.
#pragma once
#include <stddef.h>
#include "viscnn_internal.h"

// Loads the rank's checkpoint into state (n doubles) and *next; *found = 0
// (state untouched) when there is none. A checkpoint of another job, or a
// file whose size does not match, is VC_EINPUT naming the file.
int ckpt_load(const char *dir, const char *fingerprint, int rank, int size, double *state, size_t n, int *next,
              int *found, vc_error *err);
int ckpt_save(const char *dir, const char *fingerprint, int rank, int size, const double *state, size_t n, int next,
              vc_error *err);
