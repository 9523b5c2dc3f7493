// dist.h: running one analysis as several processes (MPI ranks) — see
// docs/mpi.md. Built with MPI (make MPI=1, -DVC_MPI) the functions talk to
// MPI_COMM_WORLD; in the plain build they describe one process (rank 0 of 1)
// and do nothing, so the callers need no #ifdef.
//
// The contract the callers keep: every rank runs the same command with the
// same arguments and calls the collective functions (dist_agree, dist_sum)
// at the same points in the same order; a rank that fails keeps going to the
// next dist_agree (skipping its work), where every rank learns of the failure.
#pragma once
#include <stddef.h>
#include "viscnn_internal.h"

// Starts MPI when the process was launched by an MPI launcher (mpirun sets
// OMPI_COMM_WORLD_SIZE / PMI_SIZE / PMIX_RANK); otherwise, or in the plain
// build, nothing happens and the process is rank 0 of 1. Before MPI_Init it
// sets each rank's OpenMP threads and wait policy from the ranks on its node
// (dist_threads below); that may re-exec the program once (OpenMP reads its
// environment when it loads).
void dist_start(int *argc, char ***argv);
void dist_end(void);
int dist_rank(void);
int dist_size(void);
int dist_is_root(void);   // rank 0: the one that writes and prints

// Collective: every rank passes its rc. If any rank failed, every rank gets
// the rc and the message (err) of the lowest failing rank, and the error is
// marked as "reported by rank 0" on the others (dist_error_quiet). Returns the
// agreed rc (VC_OK when all ranks passed). One process: returns rc.
int dist_agree(int rc, vc_error *err);
// The same without waiting: posts this rank's rc (MPI_Iallreduce) and
// completes the check posted at the previous call, which has long finished
// by then, so that no rank waits for the others mid-run. Returns the agreed
// rc of that previous check (VC_OK when nobody had failed), not this rank's
// own: a rank that failed keeps going (doing nothing) until the agreement
// arrives. dist_agree completes a pending check first.
int dist_agree_async(int rc, vc_error *err);
// Whether this rank should stay silent about its error (rank 0 prints it).
int dist_error_quiet(void);
// Whether the last error was agreed by all ranks at dist_agree (1 in one process).
int dist_error_agreed(void);
// Ends every rank of the job with this exit status (MPI_Abort); one process: exit.
void dist_abort(int status) __attribute__((noreturn));

// Collective: buf (n doubles) becomes the element-wise sum over the ranks, on
// every rank (MPI_Allreduce; the sum of the ranks' partial sums, in the order
// MPI's algorithm takes for this number of ranks).
void dist_sum(double *buf, size_t n);

// Collective: blocks b = 0..n-1 of bytes, block b made by rank (b / per) % size (on
// its owner, blocks[b] and lens[b] are set). Afterwards rank 0 holds every
// block: the others' arrive as malloc'd copies (the caller frees them as its
// own); the other ranks' arrays are unchanged. Sent owner by owner in block
// order (point to point, any size). One process: nothing to do.
void dist_gather_to_root(void **blocks, size_t *lens, int n, int per);

// The thread policy of a rank that shares its node with `local` ranks on
// `cores` cores: threads = max(1, cores / local), and passive waiting (idle
// OpenMP threads sleep instead of spinning) whenever local > 1. Exposed for
// the tests and the benchmark's report.
int dist_threads_for(int cores, int local);
// What dist_start chose, for the one-line report ("2 ranks, 2 on this node:
// 1 thread each, OMP_WAIT_POLICY=passive"); "" for one process.
const char *dist_policy_text(void);
