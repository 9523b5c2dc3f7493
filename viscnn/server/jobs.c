// jobs.c: the compute thread (see server.h), its jobs and interactive tasks,
// the images it has run, and the adapters to the analysis library.
//
// The adapters (srv_*) are the only place where the server calls into
// importance, circuits, faithfulness, export and feature visualisation:
// when those grow (new circuit modes, dead-part removal, held-out
// faithfulness, feature visualisations), they are wired in here.
#include "server.h"
#include <cjson/cJSON.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "../export.h"
#include "../../engine/util.h"
#include "../../loaders/image.h"
#include "../../loaders/safetensors.h"

const char *const job_state_names[] = {"queued", "running", "done", "failed", "cancelled"};

enum { MAX_TASKS = 64, MAX_QUEUED = 32, BATCH = 8 };

struct itask {
    int (*fn)(vc_server *, void *, vc_error *);
    void *ctx;
    int started, done, rc;
    vc_error err;
    struct itask *next;
};

// ---- interactive tasks -------------------------------------------------------------------
// Runs every waiting task (the compute thread, s->mu not held).
static void run_tasks(vc_server *s) {
    for (;;) {
        pthread_mutex_lock(&s->mu);
        struct itask *t = s->tasks_head;
        if (t) {
            s->tasks_head = t->next;
            if (!s->tasks_head) s->tasks_tail = NULL;
            s->n_tasks--;
            t->started = 1;
        }
        pthread_mutex_unlock(&s->mu);
        if (!t) return;
        int rc = t->fn(s, t->ctx, &t->err);
        pthread_mutex_lock(&s->mu);
        t->rc = rc;
        t->done = 1;
        pthread_cond_broadcast(&s->done_cv);
        pthread_mutex_unlock(&s->mu);
    }
}

int interactive(vc_server *s, int (*fn)(vc_server *, void *, vc_error *), void *ctx, vc_error *err) {
    struct itask t = {.fn = fn, .ctx = ctx};
    pthread_mutex_lock(&s->mu);
    if (s->stop || s->n_tasks >= MAX_TASKS) {
        pthread_mutex_unlock(&s->mu);
        return vc_fail(err, VC_EINTERNAL, "busy: %d requests are waiting for the compute thread; try again", MAX_TASKS);
    }
    if (s->tasks_tail) s->tasks_tail->next = &t;
    else s->tasks_head = &t;
    s->tasks_tail = &t;
    s->n_tasks++;
    pthread_cond_signal(&s->cv);
    // The task lives on this stack: once the compute thread has started it,
    // wait for it to finish, however long; a task still queued after the
    // deadline is taken back.
    struct timespec dl;
    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_sec += 300;
    while (!t.done) {
        int timed = pthread_cond_timedwait(&s->done_cv, &s->mu, &dl) != 0;
        if (!t.started && !t.done && (timed || s->stop)) {   // take it back out of the queue
            struct itask **p = &s->tasks_head, *prev = NULL;
            while (*p && *p != &t) { prev = *p; p = &(*p)->next; }
            if (*p) {
                *p = t.next;
                if (s->tasks_tail == &t) s->tasks_tail = prev;
                s->n_tasks--;
            }
            pthread_mutex_unlock(&s->mu);
            return vc_fail(err, VC_EINTERNAL, s->stop ? "the server is stopping"
                                                      : "busy: the compute thread did not get to this request within 300 s");
        }
    }
    pthread_mutex_unlock(&s->mu);
    if (t.rc) *err = t.err;
    return t.rc;
}

// ---- jobs --------------------------------------------------------------------------------
typedef struct { vc_server *s; job *j; } hook_ctx;

// Progress of the running job's loops; serves waiting interactive tasks
// between batches; asks the loop to stop when the job is cancelled.
static int job_hook(void *ctx, const char *label, int done, int total) {
    hook_ctx *h = ctx;
    pthread_mutex_lock(&h->s->mu);
    snprintf(h->j->step, sizeof h->j->step, "%s", label);
    h->j->done = done;
    h->j->total = total;
    pthread_mutex_unlock(&h->s->mu);
    run_tasks(h->s);
    return h->j->cancel || h->s->stop;
}

static void job_free(job *j) {
    free(j->arg);
    free(j);
}

// Drops finished jobs beyond the newest MAX_JOBS_KEPT (mu held).
static void jobs_trim(vc_server *s) {
    int n = 0;
    for (job **p = &s->jobs; *p;) {
        job *j = *p;
        int finished = j->state >= JOB_DONE;
        if (finished && ++n > MAX_JOBS_KEPT) { *p = j->next_all; job_free(j); }
        else p = &j->next_all;
    }
}

static void *worker_main(void *arg) {
    vc_server *s = arg;
    omp_set_num_threads(s->max_threads);
    for (;;) {
        run_tasks(s);
        pthread_mutex_lock(&s->mu);
        while (!s->stop && !s->tasks_head && !s->queue_head) pthread_cond_wait(&s->cv, &s->mu);
        if (s->stop) { pthread_mutex_unlock(&s->mu); break; }
        if (s->tasks_head) { pthread_mutex_unlock(&s->mu); continue; }
        job *j = s->queue_head;
        s->queue_head = j->next_queue;
        if (!s->queue_head) s->queue_tail = NULL;
        s->n_queued--;
        if (j->cancel) {
            j->state = JOB_CANCELLED;
            j->t_end = now_s();
            pthread_mutex_unlock(&s->mu);
            continue;
        }
        j->state = JOB_RUNNING;
        j->t_start = now_s();
        s->running = j;
        pthread_mutex_unlock(&s->mu);

        hook_ctx h = {s, j};
        progress_set_hook(job_hook, &h);
        vc_error err = {{0}};
        int rc = j->run(s, j, &err);
        progress_set_hook(NULL, NULL);

        pthread_mutex_lock(&s->mu);
        j->t_end = now_s();
        if (j->cancel) j->state = JOB_CANCELLED;
        else if (rc) { j->state = JOB_FAILED; snprintf(j->error, sizeof j->error, "%s", err.msg[0] ? err.msg : "failed"); }
        else j->state = JOB_DONE;
        s->running = NULL;
        jobs_trim(s);
        pthread_cond_broadcast(&s->done_cv);
        pthread_mutex_unlock(&s->mu);
        if (j->state == JOB_FAILED) fprintf(stderr, "viscnn serve: job %d (%s) failed: %s\n", j->id, j->label, j->error);
    }
    return NULL;
}

int worker_start(vc_server *s) {
    return pthread_create(&s->worker, NULL, worker_main, s);
}

void worker_stop(vc_server *s) {
    pthread_mutex_lock(&s->mu);
    s->stop = 1;
    if (s->running) s->running->cancel = 1;
    pthread_cond_broadcast(&s->cv);
    pthread_cond_broadcast(&s->done_cv);
    pthread_mutex_unlock(&s->mu);
    pthread_join(s->worker, NULL);
    for (int k = 0; k < IMAGE_RUNS; k++) { vc_run_free(s->runs[k].r); free(s->runs[k].x); }
}

void jobs_free(vc_server *s) {
    for (job *j = s->jobs, *n; j; j = n) { n = j->next_all; job_free(j); }
    s->jobs = NULL;
}

int job_submit(vc_server *s, const char *kind, uint64_t key, const char *label,
               int (*run)(vc_server *, job *, vc_error *), void *arg) {
    pthread_mutex_lock(&s->mu);
    for (job *j = s->jobs; j; j = j->next_all)
        if (j->key == key && (j->state == JOB_QUEUED || j->state == JOB_RUNNING) && !j->cancel) {
            int id = j->id;
            pthread_mutex_unlock(&s->mu);
            free(arg);
            return id;
        }
    if (s->n_queued >= MAX_QUEUED || s->stop) {
        pthread_mutex_unlock(&s->mu);
        free(arg);
        return 0;
    }
    job *j = calloc_check(1, sizeof *j);
    j->id = ++s->next_job_id;
    snprintf(j->kind, sizeof j->kind, "%s", kind);
    snprintf(j->label, sizeof j->label, "%s", label);
    j->key = key;
    j->run = run;
    j->arg = arg;
    j->t_queued = now_s();
    j->next_all = s->jobs;
    s->jobs = j;
    if (s->queue_tail) s->queue_tail->next_queue = j;
    else s->queue_head = j;
    s->queue_tail = j;
    s->n_queued++;
    int id = j->id;
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
    return id;
}

static cJSON *job_to_json(const job *j) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "id", j->id);
    cJSON_AddStringToObject(o, "kind", j->kind);
    cJSON_AddStringToObject(o, "label", j->label);
    cJSON_AddStringToObject(o, "state", job_state_names[j->state]);
    cJSON_AddStringToObject(o, "step", j->step);
    cJSON_AddNumberToObject(o, "done", j->done);
    cJSON_AddNumberToObject(o, "total", j->total);
    if (j->state == JOB_FAILED) cJSON_AddStringToObject(o, "error", j->error);
    double end = j->state >= JOB_DONE ? j->t_end : now_s();
    if (j->t_start > 0) cJSON_AddNumberToObject(o, "seconds", end - j->t_start);
    return o;
}

void *job_json(vc_server *s, int id) {
    cJSON *o = NULL;
    pthread_mutex_lock(&s->mu);
    for (job *j = s->jobs; j && !o; j = j->next_all)
        if (j->id == id) o = job_to_json(j);
    pthread_mutex_unlock(&s->mu);
    return o;
}

void *jobs_json(vc_server *s) {
    cJSON *a = cJSON_CreateArray();
    pthread_mutex_lock(&s->mu);
    int n = 0;
    for (job *j = s->jobs; j && n < 50; j = j->next_all, n++) cJSON_AddItemToArray(a, job_to_json(j));
    pthread_mutex_unlock(&s->mu);
    return a;
}

int job_cancel(vc_server *s, int id) {
    int rc = -1;
    pthread_mutex_lock(&s->mu);
    for (job *j = s->jobs; j; j = j->next_all)
        if (j->id == id) {
            if (j->state >= JOB_DONE) rc = 1;
            else {
                j->cancel = 1;
                if (j->state == JOB_QUEUED) {   // out of the queue now
                    job **p = &s->queue_head, *prev = NULL;
                    while (*p && *p != j) { prev = *p; p = &(*p)->next_queue; }
                    if (*p) {
                        *p = j->next_queue;
                        if (s->queue_tail == j) s->queue_tail = prev;
                        s->n_queued--;
                    }
                    j->state = JOB_CANCELLED;
                    j->t_end = now_s();
                }
                rc = 0;
            }
            break;
        }
    pthread_mutex_unlock(&s->mu);
    return rc;
}

// ---- adapters to the analysis library ---------------------------------------------------
// Extraction modes as `viscnn circuit --mode` takes them (docs/circuits.md).
// The page sends both thresholds whatever the mode; they are taken where the
// mode uses them (threshold, hierarchical) and ignored for keep, whose
// fractions are in the mode text.
int srv_mode_parse(circuit_req *c, const char *mode, const char *tn, const char *te, vc_error *err) {
    if (!mode) mode = "threshold";
    if (strlen(mode) >= sizeof c->mode) return vc_fail(err, VC_EINPUT, "mode: too long");
    snprintf(c->mode, sizeof c->mode, "%s", mode);
    circuit_spec_init(&c->spec);
    int rc = circuit_mode_parse(&c->spec, mode, err);
    if (rc) return rc;
    if (c->spec.mode != VC_C_KEEP) {
        const char *v[2] = {tn, te};
        double *d[2] = {&c->spec.node_threshold, &c->spec.edge_threshold};
        for (int k = 0; k < 2; k++) {
            if (!v[k]) continue;
            char *end;
            *d[k] = strtod(v[k], &end);
            if (end == v[k] || *end || !(*d[k] >= 0 && *d[k] <= 1))
                return vc_fail(err, VC_EINPUT, "%s %s: expected a number in [0, 1]", k ? "te (edge threshold)" : "tn (node threshold)", v[k]);
        }
    }
    return circuit_spec_check(&c->spec, err);
}

int srv_circuit_extract(vc_circuit *c, const vc_model *m, const vc_scores *raw, const circuit_req *q, vc_error *err) {
    return circuit_extract(c, m, raw, &q->sr.t, &q->spec, err);
}

char *srv_circuit_json(vc_server *s, const circuit_req *q, const vc_scores *raw, const vc_circuit *c,
                       const char *faithfulness_json, int images, const char *source, size_t *len) {
    const vc_model *m = s->m;
    char *buf = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&buf, &n);
    if (!f) return NULL;
    vc_scores norm;
    circuit_normalize(&norm, raw, m, &q->sr.t);
    circuit_write_head_json(f, m, &q->sr.t, q->sr.metric, images, source, q->scores, &q->spec, c);
    if (faithfulness_json) fprintf(f, ",\n\"faithfulness\": %s", faithfulness_json);
    fputs(",\n\"layers\": ", f);
    circuit_write_layers_json(f, m, &q->sr.t, raw, &norm, c);
    fputs("}\n", f);
    fclose(f);
    scores_free(&norm);
    *len = n;
    return buf;
}

int srv_write_pruned(const char *path, const vc_model *m, const vc_scores *layout, const vc_circuit *c, vc_error *err) {
    return circuit_write_pruned(path, m, layout, c, err);
}

// Feature visualisation (issue 15, viscnn/featvis.c): the node (r->in < 0)
// or the edge (r->out <- r->in) of model node r->node with the default
// settings (docs/featvis.md), written as a PNG to `png`; job_featvis caches it
// under the server's key and /api/featvis serves it. A display node of the
// input (a colour channel) is a node target of layer 0.
const char *srv_featvis_missing(void) { return NULL; }

static int srv_featvis_render(vc_server *s, const featvis_req *r, const char *png, vc_error *err) {
    vc_featvis_opts o;
    vc_featvis_defaults(&o);
    vc_featvis_target t = {r->node, r->out, r->in};
    return vc_featvis_png(s->m, &t, &o, NULL, png, NULL, NULL, err);
}

// ---- job bodies ------------------------------------------------------------------------
// The set scores of q from the cache, or computed now (compute thread).
static int ensure_scores(vc_server *s, const scores_req *q, set_scores_entry **out, vc_error *err) {
    *out = scores_get(s, q);
    if (*out) return VC_OK;
    vc_imageset tmp = {0};
    const vc_imageset *set;
    int rc = set_open(s, q->set, &tmp, &set, err);
    vc_set_scores ss = {0};
    if (!rc) rc = importance_over_set(&ss, s->m, q->metric, &q->t, set, BATCH, err);
    if (!rc) rc = scores_put(s, scores_key(s, q), &ss, err);
    set_scores_free(&ss);
    imageset_free(&tmp);
    if (!rc) {
        *out = scores_get(s, q);
        if (!*out) rc = vc_fail(err, VC_EINTERNAL, "scores were computed but could not be read back from the cache");
    }
    return rc;
}

int job_importance(vc_server *s, job *j, vc_error *err) {
    set_scores_entry *e;
    int rc = ensure_scores(s, j->arg, &e, err);
    scores_release(s, e);
    return rc;
}

int job_layout(vc_server *s, job *j, vc_error *err) {
    layout_req *q = j->arg;
    set_scores_entry *e = NULL;
    int rc = VC_OK, need = projection_needs_images(q->p);
    if (need) rc = ensure_scores(s, &q->sr, &e, err);
    if (!rc && need && e->ss.n_cat < 2)
        rc = vc_fail(err, VC_EINPUT, "projection %s needs an image set with 2 or more categories (class subfolders); "
                     "this one has %d", vc_projection_names[q->p], e->ss.n_cat);
    vc_layout lay = {0};
    if (!rc) {
        progress("layout", 0, 1);
        rc = projection_run(&lay, s->m, &s->g, q->p, need ? &e->ss : NULL, err);
    }
    if (!rc) {
        char *buf = NULL;
        size_t n = 0;
        FILE *f = open_memstream(&buf, &n);
        fprintf(f, "{\"projection\": \"%s\", ", vc_projection_names[q->p]);
        projection_export_json(f, s->m, &s->g, &lay);
        fputs("}\n", f);
        fclose(f);
        rc = cache_write(s, "layout", j->key, "json", buf, n, err);
        free(buf);
    }
    layout_free(&lay);
    scores_release(s, e);
    return rc;
}

// The faithfulness of a circuit over the whole image set (in-sample: the
// scores came from the same images) and the curve over kept fractions, which
// depends on the scores only and is cached apart. The page's record:
// {"sample", "r", "r_note"?, "rel_error", "top1_agreement"?, "curve": [{"fraction",
// "edges", "r"}], "images", "values", "kept"}.
int job_faithfulness(vc_server *s, job *j, vc_error *err) {
    circuit_req *q = j->arg;
    set_scores_entry *e = NULL;
    vc_imageset tmp = {0};
    const vc_imageset *set = NULL;
    vc_scores con = {0};
    const vc_scores *raw = NULL;
    vc_circuit c = {0};
    vc_faith_ref ref = {0};
    vc_faith fc = {0};
    int *idx = NULL;
    int rc = ensure_scores(s, &q->sr, &e, err);
    if (!rc) rc = select_scores(e, q->scores, &con, &raw, err);
    if (!rc) rc = set_open(s, q->sr.set, &tmp, &set, err);
    if (!rc) rc = srv_circuit_extract(&c, s->m, raw, q, err);
    int total = 2 + VC_CURVE_N, step = 0;
    if (!rc && progress("faithfulness", step++, total)) rc = vc_fail(err, VC_EINPUT, "cancelled");
    if (!rc) {
        idx = malloc_check((set->n + 1) * sizeof(int));
        for (int k = 0; k < set->n; k++) idx[k] = k;
        rc = faith_reference(&ref, s->m, &q->sr.t, set, idx, set->n, BATCH, err);
    }
    if (!rc && progress("faithfulness", step++, total)) rc = vc_fail(err, VC_EINPUT, "cancelled");
    if (!rc) rc = faith_measure(&fc, &ref, s->m, &q->sr.t, raw, &c, set, BATCH, err);
    uint64_t ckey = hash_str(hash_bytes(scores_key(s, &q->sr), &(uint64_t){1}, 8), q->scores);
    char *curve = rc ? NULL : cache_read(s, "curve", ckey, "json", NULL);
    if (!rc && !curve) {
        char *buf = NULL;
        size_t n = 0;
        FILE *f = open_memstream(&buf, &n);
        fputc('[', f);
        for (int k = 0; k < VC_CURVE_N && !rc; k++) {
            if (progress("faithfulness", step++, total)) { rc = vc_fail(err, VC_EINPUT, "cancelled"); break; }
            vc_faith p;
            rc = faith_curve(&p, &vc_curve_fractions[k], 1, s->m, raw, &q->sr.t, &ref, set, BATCH, err);
            if (!rc) {
                fprintf(f, "%s{\"fraction\": %g, \"edges\": %zu, \"r\": ", k ? ", " : "", vc_curve_fractions[k], p.edges);
                export_float(f, p.r);
                fputc('}', f);
            }
        }
        fputc(']', f);
        fclose(f);
        if (!rc) rc = cache_write(s, "curve", ckey, "json", buf, n, err);
        curve = buf;
    }
    if (!rc) {
        char *buf = NULL;
        size_t n = 0;
        FILE *f = open_memstream(&buf, &n);
        fputs("{\"sample\": \"in-sample\", \"r\": ", f);
        export_float(f, fc.r);
        if (fc.r_note) { fputs(", \"r_note\": ", f); export_string(f, fc.r_note); }
        fputs(", \"rel_error\": ", f);
        export_float(f, fc.rel_error);
        if (q->sr.t.kind != VC_T_NODE) { fputs(", \"top1_agreement\": ", f); export_float(f, fc.top1); }
        fprintf(f, ", \"curve\": %s, \"images\": %d, \"values\": %zu, \"in_sample\": true, "
                   "\"kept\": {\"nodes\": %zu, \"edges\": %zu}}", curve, fc.images, fc.values, c.n_nodes, c.n_edges);
        fclose(f);
        rc = cache_write(s, "faith", j->key, "json", buf, n, err);
        free(buf);
    }
    free(curve);
    free(idx);
    faith_reference_free(&ref);
    circuit_free(&c);
    if (con.l) scores_free(&con);
    imageset_free(&tmp);
    scores_release(s, e);
    return rc;
}

int job_featvis(vc_server *s, job *j, vc_error *err) {
    char png[4096];
    cache_path(s, png, sizeof png, "featvis", j->key, "png");
    return srv_featvis_render(s, j->arg, png, err);
}

int select_scores(const set_scores_entry *e, const char *name, vc_scores *con, const vc_scores **raw, vc_error *err) {
    *raw = set_scores_find(&e->ss, name);
    if (*raw) return VC_OK;
    int rc = contrast_scores(con, &e->ss, name, err);
    if (!rc) *raw = con;
    return rc;
}
