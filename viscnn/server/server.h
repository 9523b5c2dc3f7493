// server.h: `viscnn serve` — the HTTP server behind the browser GUI (the
// README's GUI section). libmicrohttpd answers requests on its own threads; JSON goes through
// cJSON. The pieces:
//
//   server.c  the daemon: binding, routing, static files of web/, request
//             and response plumbing, the bad-request guards
//   api.c     the JSON API, one handler per endpoint (table at its top)
//   jobs.c    the one compute thread, its job queue and its queue of short
//             interactive tasks, and the adapters: the only place that calls
//             into importance, circuits, faithfulness, feature visualisation
//             and export, so that new library functions wire in here
//   cache.c   results on disk (reused across restarts) and in memory; keys
//
// Threads. Every computation that runs the network happens on ONE compute
// thread, which owns the cores (OpenMP teams and OpenBLAS size to them): a
// second concurrent viscnn computation would oversubscribe the machine, and
// OpenMP threads spin while they wait. Long work (importance over a set,
// layouts, faithfulness, feature visualisations) is a job; short work (one
// image's activations, an edge map) is an interactive task that the compute
// thread runs before the next job and, while a job runs, between its
// batches (through the progress hook of viscnn/imageset.h). Request threads
// only parse, read caches, extract circuits from cached scores (no network
// run) and format answers, so a request that needs only cached results never
// waits for the compute thread.
#pragma once
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include "viscnn_internal.h"
#include "../imageset.h"
#include "../projection.h"
#include "../circuit.h"
#include "../contrast.h"

typedef struct {
    const char *model_path;
    const char *images;       // --images PATH (the main image set)
    const char *host;         // default 127.0.0.1
    int port;                 // 0: any free port
    const char *cache_dir;
    const char *web_dir;      // static files (default: web/ beside the binary's repo, or ./web)
    const char *target;       // the first view's target (default loss)
    int threads;              // compute thread's OpenMP threads (0: all cores)
    int no_precompute;
} server_opts;

// Runs until SIGINT/SIGTERM. Prints the URL on stdout once listening.
int server_run(const server_opts *o, vc_error *err);

// ---- internals shared by the server's files ----------------------------------------

// An HTTP answer: a body (owned, freed after sending) or a file to stream.
typedef struct {
    int status;
    const char *ctype;
    char *body;
    size_t len;
    char *file;               // path to send instead of body (owned)
    char disposition[256];    // Content-Disposition, or ""
    int no_store;             // Cache-Control: no-store
} http_resp;

// The request as the handlers see it.
typedef struct {
    void *conn;               // struct MHD_Connection *
    const char *method, *path;
    const char *body;         // POST body (upload), may contain NULs
    size_t body_len;
} http_req;

// Query parameter (decoded) or NULL.
const char *req_arg(const http_req *q, const char *key);

void resp_json(http_resp *r, int status, void *cjson);        // takes a cJSON *, frees it
void resp_error(http_resp *r, int status, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void resp_text(http_resp *r, int status, const char *ctype, char *body, size_t len);   // takes body

// ---- the server's state -------------------------------------------------------------
typedef struct job job;
typedef struct set_scores_entry set_scores_entry;

typedef struct {
    uint64_t key;
    char id[96];              // image id: "m:IDX" (main set) or "up:HEX" (upload)
    vc_run *r;                // forward of the whole network, every activation kept
    float *x;                 // (C, H, W) the preprocessed input
    int label;
    uint64_t used;
} image_run;

enum { IMAGE_RUNS = 3, SCORES_LRU = 6, MAX_JOBS_KEPT = 256 };
#define SERVER_UPLOAD_MAX (8 << 20)   // bytes of an uploaded image

typedef struct vc_server {
    server_opts o;
    vc_model *m;
    uint64_t model_hash;
    char model_hex[17];
    vc_dgraph g;
    vc_imageset main_set;
    uint64_t main_set_hash;
    char *cache_dir, *web_dir, *web_real, *upload_dir;
    int max_threads;

    // compute thread: jobs and interactive tasks
    pthread_t worker;
    pthread_mutex_t mu;
    pthread_cond_t cv;        // worker wakes: new task or job, or stop
    pthread_cond_t done_cv;   // requesters wake: a task finished
    int stop;
    struct itask *tasks_head, *tasks_tail;
    int n_tasks;
    job *jobs;                // every job (newest first), finished ones trimmed to MAX_JOBS_KEPT
    job *queue_head, *queue_tail;
    int n_queued;
    int next_job_id;
    job *running;

    // image runs (compute thread only)
    image_run runs[IMAGE_RUNS];
    uint64_t run_clock;

    // caches (request threads): set scores in memory
    pthread_mutex_t cache_mu;
    set_scores_entry *lru[SCORES_LRU];
    uint64_t lru_clock;

    double started;
    const char *featvis_missing;   // NULL when feature visualisation is built in
} vc_server;

// ---- jobs.c ----------------------------------------------------------------------------
// A request for the scores of an image set: what the importance job computes.
typedef struct {
    char set[96];             // "main" or "up:HEX"
    vc_target t;
    vc_metric metric;
} scores_req;

typedef enum { JOB_QUEUED, JOB_RUNNING, JOB_DONE, JOB_FAILED, JOB_CANCELLED } job_state;
extern const char *const job_state_names[];

struct job {
    int id;
    char kind[24];            // "importance", "layout", "faithfulness", "featvis"
    char label[256];          // what the page shows
    uint64_t key;             // what it computes (deduplicates requests)
    job_state state;
    int done, total;          // progress of the current step
    char step[64];
    char error[1024];
    volatile int cancel;
    double t_queued, t_start, t_end;
    int (*run)(vc_server *s, job *j, vc_error *err);
    void *arg;                // owned, freed with the job
    job *next_all, *next_queue;
};

int worker_start(vc_server *s);
// Stops the compute thread (a running job is cancelled at its next batch;
// waiting requests are answered "stopping"); jobs_free after the daemon stopped.
void worker_stop(vc_server *s);
void jobs_free(vc_server *s);
// Queues a job unless one with the same key is queued or running (then
// returns that one's id). 0 when the queue is full. arg is owned by the job.
int job_submit(vc_server *s, const char *kind, uint64_t key, const char *label,
               int (*run)(vc_server *, job *, vc_error *), void *arg);
// A snapshot of job id as JSON (cJSON *), or NULL when unknown.
void *job_json(vc_server *s, int id);
void *jobs_json(vc_server *s);
int job_cancel(vc_server *s, int id);   // 0 ok, -1 unknown, 1 already finished
// Runs fn(s, ctx, err) on the compute thread and waits for it. Returns its
// status, or VC_EINTERNAL with "busy" when too many tasks are waiting.
int interactive(vc_server *s, int (*fn)(vc_server *, void *, vc_error *), void *ctx, vc_error *err);

// Job bodies (jobs.c): importance over a set, layouts, faithfulness.
int job_importance(vc_server *s, job *j, vc_error *err);
int job_layout(vc_server *s, job *j, vc_error *err);
int job_faithfulness(vc_server *s, job *j, vc_error *err);
int job_featvis(vc_server *s, job *j, vc_error *err);

typedef struct {
    vc_projection p;
    scores_req sr;            // mds, mds-smooth: the per-category scores
} layout_req;

// A circuit request: the scores to use and how to extract.
typedef struct {
    scores_req sr;
    char scores[CONTRAST_MAX_LEN + 1];   // "overall", a category, or a contrast
    char mode[64];            // as given: threshold | hierarchical | keep:F | keep:NODES,EDGES
    vc_circuit_spec spec;     // checked, defaults filled (circuit_spec_check)
} circuit_req;

// Adapters to the analysis library: change these when the library grows.
int srv_mode_parse(circuit_req *c, const char *mode, const char *tn, const char *te, vc_error *err);
int srv_circuit_extract(vc_circuit *c, const vc_model *m, const vc_scores *raw, const circuit_req *q, vc_error *err);
// The circuit as `viscnn circuit -o` writes it (same format), into a string.
char *srv_circuit_json(vc_server *s, const circuit_req *q, const vc_scores *raw, const vc_circuit *c,
                       const char *faithfulness_json, int images, const char *source, size_t *len);
// The model with the circuit's removed kernels and nodes zeroed, as a file.
int srv_write_pruned(const char *path, const vc_model *m, const vc_scores *layout, const vc_circuit *c, vc_error *err);
// Feature visualisation (issue 15): whether it is built in, and its job.
typedef struct {
    char layer[256];
    int out, in;              // in < 0: the node out; else the edge (out <- in)
    int node;                 // model node
} featvis_req;
const char *srv_featvis_missing(void);
// "overall", a category, or a contrast (evaluated into *con) of cached scores.
int select_scores(const set_scores_entry *e, const char *name, vc_scores *con, const vc_scores **raw, vc_error *err);

// ---- cache.c ---------------------------------------------------------------------------
uint64_t hash_bytes(uint64_t h, const void *p, size_t n);
uint64_t hash_str(uint64_t h, const char *s);
#define HASH_SEED 0xcbf29ce484222325ULL

// Keys
uint64_t scores_key(const vc_server *s, const scores_req *r);
uint64_t set_hash(const vc_server *s, const char *set);

// Cached set scores: a held entry (release with scores_release), or NULL.
struct set_scores_entry {
    uint64_t key;
    vc_set_scores ss;         // cat_names owned by the entry
    char **names;
    int refs;
    uint64_t used;
};
set_scores_entry *scores_get(vc_server *s, const scores_req *q);
void scores_release(vc_server *s, set_scores_entry *e);
// Stores ss (copied) in memory and on disk.
int scores_put(vc_server *s, uint64_t key, const vc_set_scores *ss, vc_error *err);

// Files in the cache folder: PREFIX-KEY.EXT
void cache_path(const vc_server *s, char *buf, size_t n, const char *prefix, uint64_t key, const char *ext);
// Reads a whole cached file (malloc'd, NUL-terminated) or NULL.
char *cache_read(const vc_server *s, const char *prefix, uint64_t key, const char *ext, size_t *len);
int cache_write(const vc_server *s, const char *prefix, uint64_t key, const char *ext, const void *data, size_t len, vc_error *err);

// Opens an image set by name ("main" is borrowed, uploads are opened here).
int set_open(vc_server *s, const char *set, vc_imageset *tmp, const vc_imageset **out, vc_error *err);
// Upload folder path of an "up:HEX" id, or -1 when the id is malformed/unknown.
int upload_path(const vc_server *s, const char *id, char *buf, size_t n);

void scores_cache_free(vc_server *s);

// ---- api.c -----------------------------------------------------------------------------
void api_handle(vc_server *s, const http_req *q, http_resp *r);
// What a circuit's faithfulness is cached under (scores, selection, mode, thresholds).
uint64_t circuit_key(vc_server *s, const circuit_req *c);
// Base64 of n bytes (malloc'd, NUL-terminated).
char *base64(const void *p, size_t n);
double now_s(void);
