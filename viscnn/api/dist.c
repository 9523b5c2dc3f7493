// dist.c (api): viscnn.h's vc_dist_* over viscnn/dist.c, whose plain build
// is one process and whose MPI build (build/mpi/dist.o) talks to MPI.
#include "api.h"
#include "../dist.h"

void vc_dist_start(int *argc, char ***argv) { dist_start(argc, argv); }
void vc_dist_end(void) { dist_end(); }
int vc_dist_rank(void) { return dist_rank(); }
int vc_dist_size(void) { return dist_size(); }
int vc_dist_is_root(void) { return dist_is_root(); }
int vc_dist_agree(int rc, vc_error *err) { return dist_agree(rc, err); }
int vc_dist_error_quiet(void) { return dist_error_quiet(); }
int vc_dist_error_agreed(void) { return dist_error_agreed(); }
void vc_dist_abort(int status) { dist_abort(status); }
void vc_dist_sum(double *buf, size_t n) { dist_sum(buf, n); }
void vc_dist_gather_to_root(void **blocks, size_t *lens, int n, int per) { dist_gather_to_root(blocks, lens, n, per); }
