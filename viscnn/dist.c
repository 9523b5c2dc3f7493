// dist.c: MPI glue (dist.h). The only file that includes mpi.h; without
// -DVC_MPI it is the one-process implementation.
#define _GNU_SOURCE   // sched_getaffinity, CPU_COUNT
#include "dist.h"
#include "../engine/util.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <omp.h>
#include <sched.h>
#ifdef VC_MPI
#include <mpi.h>
#endif

static int g_rank = 0, g_size = 1, g_quiet = 0, g_agreed = 0;
static char g_policy[160];

int dist_rank(void) { return g_rank; }
int dist_size(void) { return g_size; }
int dist_is_root(void) { return g_rank == 0; }
int dist_error_quiet(void) { return g_quiet; }
int dist_error_agreed(void) { return g_size == 1 || g_agreed; }
const char *dist_policy_text(void) { return g_policy; }

int dist_threads_for(int cores, int local) {
    if (local < 1) local = 1;
    int t = cores / local;
    return t < 1 ? 1 : t;
}

#ifdef VC_MPI
static int g_started = 0;

// Ranks on this node as the launcher tells it before MPI_Init (OpenMPI,
// MPICH/Hydra), or 0 when it does not say.
static int launcher_local_size(void) {
    const char *vars[] = {"OMPI_COMM_WORLD_LOCAL_SIZE", "MPI_LOCALNRANKS", "PMI_LOCAL_SIZE", NULL};
    for (int i = 0; vars[i]; i++) {
        const char *v = getenv(vars[i]);
        if (v && atoi(v) > 0) return atoi(v);
    }
    return 0;
}

static int launched_by_mpi(void) {
    return getenv("OMPI_COMM_WORLD_SIZE") || getenv("PMI_SIZE") || getenv("PMIX_RANK");
}
#endif

void dist_start(int *argc, char ***argv) {
#ifdef VC_MPI
    if (g_started || !launched_by_mpi()) return;
    // VISCNN_THREAD_POLICY=off keeps OpenMP's defaults (the benchmark's "before").
    const char *pol = getenv("VISCNN_THREAD_POLICY");
    int policy = !(pol && !strcmp(pol, "off"));
    int local = launcher_local_size();
    // libgomp reads OMP_WAIT_POLICY once, when it loads: set it and exec
    // ourselves again (same pid, before MPI_Init, so the launcher does not notice).
    if (policy && local > 1 && !getenv("OMP_WAIT_POLICY") && !getenv("VISCNN_DIST_REEXEC")) {
        setenv("OMP_WAIT_POLICY", "PASSIVE", 1);
        setenv("VISCNN_DIST_REEXEC", "1", 1);
        execv("/proc/self/exe", *argv);
        // exec failed: go on with the active policy (threads are still limited below)
    }
    MPI_Init(argc, argv);
    g_started = 1;
    MPI_Comm_rank(MPI_COMM_WORLD, &g_rank);
    MPI_Comm_size(MPI_COMM_WORLD, &g_size);
    MPI_Comm node;
    MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, g_rank, MPI_INFO_NULL, &node);
    MPI_Comm_size(node, &local);
    MPI_Comm_free(&node);
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    if (cores < 1) cores = 1;
    // a rank that the launcher bound to fewer cores (mpirun binds 1 or 2 ranks
    // to one core each) gets no more threads than those cores
    cpu_set_t set;
    int bound = sched_getaffinity(0, sizeof set, &set) == 0 ? CPU_COUNT(&set) : (int)cores;
    const char *wait = getenv("OMP_WAIT_POLICY");
    if (policy && !getenv("OMP_NUM_THREADS")) {
        int t = dist_threads_for((int)cores, local);
        omp_set_num_threads(bound >= 1 && bound < t ? bound : t);
    }
    snprintf(g_policy, sizeof g_policy, "%d ranks, %d on this node (%ld cores): %d thread%s each, OMP_WAIT_POLICY=%s%s",
             g_size, local, cores, omp_get_max_threads(), omp_get_max_threads() == 1 ? "" : "s",
             wait ? wait : "default", policy ? "" : " (VISCNN_THREAD_POLICY=off)");
    if (g_rank == 0 && g_size > 1) fprintf(stderr, "viscnn: %s\n", g_policy);
#else
    (void)argc; (void)argv;
#endif
}

void dist_end(void) {
#ifdef VC_MPI
    if (g_started) {
        fflush(stderr);
        fflush(stdout);
        MPI_Barrier(MPI_COMM_WORLD);   // no rank leaves (and has mpirun end the job) before rank 0 has printed
        MPI_Finalize();
    }
    g_started = 0;
#endif
}

void dist_abort(int status) {
    fflush(stderr);
#ifdef VC_MPI
    if (g_started) MPI_Abort(MPI_COMM_WORLD, status);
#endif
    exit(status);
}

#ifdef VC_MPI
// The check dist_agree_async posted and has not completed yet.
static MPI_Request g_req = MPI_REQUEST_NULL;
static int g_req_mine, g_req_first;

// Every rank learns the rc and message of rank `first` (which failed).
static int adopt(int first, int rc, vc_error *err) {
    int code = rc;
    MPI_Bcast(&code, 1, MPI_INT, first, MPI_COMM_WORLD);
    MPI_Bcast(err->msg, (int)sizeof err->msg, MPI_CHAR, first, MPI_COMM_WORLD);
    err->msg[sizeof err->msg - 1] = 0;
    if (g_rank != 0) g_quiet = 1;
    g_agreed = 1;
    return code;
}

// Completes the posted check: the lowest rank that had failed then, or g_size.
static int finish_posted(void) {
    if (g_req == MPI_REQUEST_NULL) return g_size;
    MPI_Wait(&g_req, MPI_STATUS_IGNORE);
    return g_req_first;
}
#endif

int dist_agree_async(int rc, vc_error *err) {
#ifdef VC_MPI
    if (g_size == 1) return rc;
    int first = finish_posted();
    if (first < g_size) return adopt(first, rc, err);
    g_req_mine = rc ? g_rank : g_size;
    MPI_Iallreduce(&g_req_mine, &g_req_first, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD, &g_req);
    return VC_OK;
#else
    (void)err;
    return rc;
#endif
}

int dist_agree(int rc, vc_error *err) {
#ifdef VC_MPI
    if (g_size == 1) return rc;
    int first = finish_posted();
    if (first < g_size) return adopt(first, rc, err);
    // the lowest failing rank: MIN over (failed ? rank : size)
    int mine = rc ? g_rank : g_size;
    MPI_Allreduce(&mine, &first, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
    if (first == g_size) return VC_OK;
    return adopt(first, rc, err);
#else
    (void)err;
    return rc;
#endif
}

void dist_sum(double *buf, size_t n) {
#ifdef VC_MPI
    if (g_size == 1) return;
    const size_t chunk = (size_t)1 << 26;   // MPI counts are ints
    for (size_t o = 0; o < n; o += chunk) {
        size_t k = n - o < chunk ? n - o : chunk;
        MPI_Allreduce(MPI_IN_PLACE, buf + o, (int)k, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
    }
#else
    (void)buf; (void)n;
#endif
}

#ifdef VC_MPI
// Bytes between two ranks in pieces that fit MPI's int counts.
static const size_t piece = (size_t)1 << 30;
static void send_bytes(const void *p, size_t n, int to) {
    for (size_t o = 0; o < n; o += piece)
        MPI_Send((const char *)p + o, (int)(n - o < piece ? n - o : piece), MPI_BYTE, to, 0, MPI_COMM_WORLD);
}
static void recv_bytes(void *p, size_t n, int from) {
    for (size_t o = 0; o < n; o += piece)
        MPI_Recv((char *)p + o, (int)(n - o < piece ? n - o : piece), MPI_BYTE, from, 0, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
}
#endif

void dist_gather_to_root(void **blocks, size_t *lens, int n, int per) {
#ifdef VC_MPI
    if (g_size == 1) return;
    // rank 0 receives in block order; each owner sends its blocks in that
    // order too, so the messages from one owner match up (MPI keeps their order)
    for (int b = 0; b < n; b++) {
        int owner = b / per % g_size;
        if (owner == 0) continue;
        if (g_rank == owner) {
            unsigned long long len = lens[b];
            MPI_Send(&len, 1, MPI_UNSIGNED_LONG_LONG, 0, 0, MPI_COMM_WORLD);
            send_bytes(blocks[b], lens[b], 0);
        } else if (g_rank == 0) {
            unsigned long long len;
            MPI_Recv(&len, 1, MPI_UNSIGNED_LONG_LONG, owner, 0, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
            blocks[b] = malloc_check(len ? (size_t)len : 1);
            lens[b] = (size_t)len;
            recv_bytes(blocks[b], lens[b], owner);
        }
    }
#else
    (void)blocks; (void)lens; (void)n; (void)per;
#endif
}
