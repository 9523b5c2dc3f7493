// train.c: the training loop, its optimizers and its models (see train.h).
#include "train.h"
#include <cblas.h>   // OpenBLAS: openblas_{get,set}_num_threads
#include <cjson/cJSON.h>
#include <math.h>
#include <omp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "../viscnn/arch.h"
#include "../engine/util.h"
#include "../loaders/dataset.h"
#include "../loaders/idx.h"
#include "../loaders/image.h"
#include "../loaders/safetensors.h"

// ---- random numbers: splitmix64, one stream per purpose ---------------------
static uint64_t rng_next(uint64_t *s) {
    uint64_t z = (*s += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}
static double rng_uniform(uint64_t *s) { return (double)(rng_next(s) >> 11) * (1.0 / 9007199254740992.0); }
// Uniform in [0, n) without modulo bias.
static uint64_t rng_below(uint64_t *s, uint64_t n) {
    uint64_t lim = UINT64_MAX - UINT64_MAX % n, v;
    do v = rng_next(s); while (v >= lim);
    return v % n;
}
// Independent seeds for the streams derived from the user's seed.
static uint64_t rng_derive(uint64_t seed, uint64_t purpose) {
    uint64_t s = seed ^ (purpose * 0xD1B54A32D192ED03ULL);
    return rng_next(&s);
}
enum { STREAM_INIT = 1, STREAM_SHUFFLE = 2, STREAM_DROPOUT = 3 };

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

// ---- models ---------------------------------------------------------------------
static char *read_text(const char *path, vc_error *err) {
    FILE *f = fopen(path, "rb");
    if (!f) { vc_fail(err, VC_EINPUT, "%s: cannot open", path); return NULL; }
    size_t cap = 1 << 16, n = 0, got;
    char *s = malloc_check(cap + 1);
    while ((got = fread(s + n, 1, cap - n, f)) > 0) {
        n += got;
        if (n < cap) continue;
        if (cap >= (256u << 20)) { fclose(f); free(s); vc_fail(err, VC_EINPUT, "%s: too large for a template", path); return NULL; }
        cap *= 2;
        char *t = realloc(s, cap + 1);
        if (!t) { fclose(f); free(s); vc_fail(err, VC_EINTERNAL, "%s: out of memory", path); return NULL; }
        s = t;
    }
    int bad = ferror(f);
    fclose(f);
    if (bad) { free(s); vc_fail(err, VC_EINPUT, "%s: read error", path); return NULL; }
    s[n] = 0;
    return s;
}

static void fill_uniform(float *p, size_t n, double bound, uint64_t *s) {
    for (size_t i = 0; i < n; i++) p[i] = (float)((2.0 * rng_uniform(s) - 1.0) * bound);
}

// One tensor of the new model: its shape from "param_shapes", its values drawn here.
typedef struct {
    const char *name;         // borrowed from the template
    int rank, dim[4];
    size_t size;
    float *data;
} tmpl_tensor;

// Looks up (or adds, with its shape) tensor `tname`; returns its index or -1 with err set.
static int tmpl_tensor_get(tmpl_tensor *t, int *nt, cJSON *shapes, const char *tname, const char *arch,
                           const char *node, vc_error *err) {
    for (int i = 0; i < *nt; i++) if (!strcmp(t[i].name, tname)) return i;
    cJSON *sh = cJSON_GetObjectItemCaseSensitive(shapes, tname);
    int n = cJSON_GetArraySize(sh);
    if (!cJSON_IsArray(sh) || n < 1 || n > 4) {
        vc_fail(err, VC_EINPUT, "%s: node %s: \"param_shapes\" has no shape (1 to 4 sizes) for '%s'", arch, node, tname);
        return -1;
    }
    tmpl_tensor *x = &t[*nt];
    x->name = tname;
    x->rank = n;
    x->size = 1;
    int k = 0;
    for (cJSON *d = sh->child; d; d = d->next, k++) {
        if (!cJSON_IsNumber(d) || d->valuedouble < 1 || d->valuedouble > (1 << 30) || x->size > ((size_t)1 << 32)) {
            vc_fail(err, VC_EINPUT, "%s: param_shapes: '%s' has a size that is not a positive integer", arch, tname);
            return -1;
        }
        x->dim[k] = (int)d->valuedouble;
        x->size *= (size_t)x->dim[k];
    }
    x->data = calloc_check(x->size, sizeof(float));
    return (*nt)++;
}

static const char *role_keys[VC_P_COUNT] = {"weight", "bias", "running_mean", "running_var"};

// The template's text: a file, or a built-in architecture (viscnn/arch.h).
static char *template_text(const char *arch, vc_error *err) {
    if (access(arch, F_OK) == 0) return read_text(arch, err);
    const vc_arch_template *t = vc_arch_find(arch);
    if (t) return strdup_check(t->json);
    char names[1024];
    vc_arch_list(names, sizeof names);
    vc_fail(err, VC_EINPUT, "--arch %s: no such file, nor a built-in architecture (%s)", arch, names);
    return NULL;
}

int train_model_from_template(vc_model **out, const char *arch, uint64_t seed, vc_error *err) {
    *out = NULL;
    char *text = template_text(arch, err);
    if (!text) return VC_EINPUT;
    cJSON *g = cJSON_Parse(text);
    free(text);
    if (!g || !cJSON_IsObject(g)) { cJSON_Delete(g); return vc_fail(err, VC_EINPUT, "%s: not a JSON object (a viscnn.graph template)", arch); }
    cJSON *shapes = cJSON_DetachItemFromObjectCaseSensitive(g, "param_shapes");
    cJSON *nodes = cJSON_GetObjectItemCaseSensitive(g, "nodes");
    int rc = VC_OK;
    if (!cJSON_IsObject(shapes)) rc = vc_fail(err, VC_EINPUT, "%s: the template has no \"param_shapes\" object", arch);
    else if (!cJSON_IsArray(nodes)) rc = vc_fail(err, VC_EINPUT, "%s: the template has no \"nodes\" list", arch);
    int cap = rc ? 1 : VC_P_COUNT * cJSON_GetArraySize(nodes) + 1, nt = 0;
    tmpl_tensor *t = calloc_check(cap, sizeof(tmpl_tensor));
    uint64_t s = rng_derive(seed, STREAM_INIT);
    // PyTorch's reset_parameters, module by module in graph order: weight, then bias.
    for (cJSON *e = rc ? NULL : nodes->child; e && !rc; e = e->next) {
        cJSON *nn = cJSON_GetObjectItemCaseSensitive(e, "name"), *op = cJSON_GetObjectItemCaseSensitive(e, "op");
        cJSON *params = cJSON_GetObjectItemCaseSensitive(e, "params");
        const char *name = cJSON_IsString(nn) ? nn->valuestring : "?", *o = cJSON_IsString(op) ? op->valuestring : "?";
        if (!cJSON_IsObject(params)) continue;
        int idx[VC_P_COUNT];
        for (int r = 0; r < VC_P_COUNT; r++) {
            cJSON *pn = cJSON_GetObjectItemCaseSensitive(params, role_keys[r]);
            idx[r] = -1;
            if (!pn) continue;
            if (!cJSON_IsString(pn)) { rc = vc_fail(err, VC_EINPUT, "%s: node %s: param '%s' is not a tensor name", arch, vc_str(name), role_keys[r]); break; }
            int before = nt;
            idx[r] = tmpl_tensor_get(t, &nt, shapes, pn->valuestring, arch, name, err);
            if (idx[r] < 0) { rc = VC_EINPUT; break; }
            if (nt == before) idx[r] = -1;   // tied to an earlier node's tensor: already initialised
        }
        if (rc) break;
        if (!strcmp(o, "conv2d") || !strcmp(o, "linear")) {
            // kaiming_uniform_(a=sqrt(5)) -> bound 1/sqrt(fan_in); the bias uses the weight's fan_in.
            double fan_in = 0;
            if (idx[VC_P_WEIGHT] >= 0) {
                tmpl_tensor *w = &t[idx[VC_P_WEIGHT]];
                fan_in = (double)(w->size / (size_t)w->dim[0]);
                fill_uniform(w->data, w->size, 1.0 / sqrt(fan_in), &s);
            }
            if (idx[VC_P_BIAS] >= 0) {
                tmpl_tensor *b = &t[idx[VC_P_BIAS]];
                if (fan_in > 0) fill_uniform(b->data, b->size, 1.0 / sqrt(fan_in), &s);
            }
        } else if (!strcmp(o, "batchnorm2d")) {
            static const float init[VC_P_COUNT] = {1, 0, 0, 1};
            for (int r = 0; r < VC_P_COUNT; r++)
                for (size_t i = 0; idx[r] >= 0 && i < t[idx[r]].size; i++) t[idx[r]].data[i] = init[r];
        } else {
            rc = vc_fail(err, VC_EINPUT, "%s: node %s: cannot initialise the parameters of a %s", arch, name, o);
        }
    }
    char *graph = rc ? NULL : cJSON_PrintUnformatted(g);
    char tmp[] = "/tmp/viscnn-train-XXXXXX";
    if (!rc) {
        int fd = mkstemp(tmp);
        if (fd < 0) rc = vc_fail(err, VC_EINTERNAL, "cannot create a temporary file in /tmp");
        else close(fd);
    }
    if (!rc) {
        st_out *so = calloc_check(nt ? nt : 1, sizeof(st_out));
        for (int i = 0; i < nt; i++) so[i] = (st_out){t[i].name, t[i].rank, t[i].dim, t[i].data};
        const char *key = "viscnn.graph";
        rc = st_write(tmp, nt, so, 1, &key, (const char *const *)&graph, err);
        free(so);
        vc_model *m = NULL;
        vc_error inner = {{0}};
        if (!rc && (rc = vc_model_load(&m, tmp, &inner))) {   // name the template, not the temporary file
            const char *p = strstr(inner.msg, tmp);
            vc_fail(err, rc, "%s: %s", arch, p ? p + strlen(tmp) + (p[strlen(tmp)] == ':' ? 2 : 0) : inner.msg);
        }
        if (!rc) { free(m->path); m->path = strdup_check(arch); *out = m; }
        unlink(tmp);
    }
    free(graph);
    for (int i = 0; i < nt; i++) free(t[i].data);
    free(t);
    cJSON_Delete(shapes);
    cJSON_Delete(g);
    return rc;
}

int train_model_open(vc_model **out, const char *arch, uint64_t seed, vc_error *err) {
    size_t n = strlen(arch);
    if (n >= 12 && !strcmp(arch + n - 12, ".safetensors")) return vc_model_load(out, arch, err);
    return train_model_from_template(out, arch, seed, err);
}

int train_model_save(const vc_model *m, const char *path, const char *extra_key, const char *extra_val, vc_error *err) {
    st_out *so = calloc_check(m->n_params ? m->n_params : 1, sizeof(st_out));
    for (int i = 0; i < m->n_params; i++)
        so[i] = (st_out){m->params[i].name, m->params[i].rank, m->params[i].dim, m->params[i].data};
    const char *keys[2] = {"viscnn.graph", extra_key}, *vals[2] = {m->graph_json, extra_val};
    int rc = st_write(path, m->n_params, so, extra_key ? 2 : 1, keys, vals, err);
    free(so);
    return rc;
}

// ---- data -------------------------------------------------------------------------
void train_data_fill(float *x, int *labels, const train_data *d, const vc_model *m, const int *idx, int count) {
    const vc_node *in = &m->nodes[0];
    const size_t sz = in->size, hw = (size_t)in->h * in->w;
    for (int i = 0; i < count; i++) {
        float *xi = x + (size_t)i * sz;
        if (d->f) memcpy(xi, d->f + (size_t)idx[i] * sz, sz * sizeof(float));
        else {
            const unsigned char *u = d->u8 + (size_t)idx[i] * sz;
            for (int c = 0; c < in->c; c++) {
                const int cc = c < 3 ? c : 2;
                const float mean = m->pre.mean[cc], inv = 1.0f / m->pre.std[cc];
                for (size_t p = 0; p < hw; p++) xi[c * hw + p] = ((float)u[c * hw + p] / 255.0f - mean) * inv;
            }
        }
        if (labels) labels[i] = d->labels[idx[i]];
    }
}

// ---- the optimizer -------------------------------------------------------------------
void train_optim_defaults(train_optim_cfg *c, train_optim_kind kind) {
    memset(c, 0, sizeof *c);
    c->kind = kind;
    c->lr = kind == TRAIN_SGD ? 0.01 : 0.001;
    c->momentum = kind == TRAIN_SGD ? 0.9 : 0;
    c->weight_decay = kind == TRAIN_ADAMW ? 0.01 : 0;
    c->beta1 = 0.9;
    c->beta2 = 0.999;
    c->eps = 1e-8;
}

void train_optim_init(train_optimizer *o, const train_optim_cfg *cfg, int n, const size_t *sizes) {
    memset(o, 0, sizeof *o);
    o->cfg = *cfg;
    o->n = n;
    o->size = malloc_check((n ? n : 1) * sizeof(size_t));
    o->m1 = calloc_check(n ? n : 1, sizeof(float *));
    o->m2 = calloc_check(n ? n : 1, sizeof(float *));
    for (int i = 0; i < n; i++) {
        o->size[i] = sizes[i];
        if (cfg->kind != TRAIN_SGD || cfg->momentum != 0) o->m1[i] = calloc_check(sizes[i], sizeof(float));
        if (cfg->kind != TRAIN_SGD) o->m2[i] = calloc_check(sizes[i], sizeof(float));
    }
}

void train_optim_free(train_optimizer *o) {
    for (int i = 0; i < o->n; i++) { free(o->m1[i]); free(o->m2[i]); }
    free(o->m1); free(o->m2); free(o->size);
    memset(o, 0, sizeof *o);
}

// p, g: (size[i]) per parameter i. Float32 arithmetic in PyTorch's order.
void train_optim_step(train_optimizer *o, float *const *p, float *const *g, double lr) {
    const train_optim_cfg *c = &o->cfg;
    o->step++;
    const float flr = (float)lr, wd = (float)c->weight_decay;
    if (c->kind == TRAIN_SGD) {
        const float mom = (float)c->momentum;
        const int first = o->step == 1;
        for (int i = 0; i < o->n; i++) {
            float *pi = p[i], *buf = o->m1[i];
            const float *gi = g[i];
            const long n = (long)o->size[i];
            #pragma omp parallel for simd schedule(static) if (n > 65536)
            for (long k = 0; k < n; k++) {
                float d = wd != 0 ? gi[k] + wd * pi[k] : gi[k];
                if (buf) {
                    buf[k] = first ? d : buf[k] * mom + d;
                    d = c->nesterov ? d + mom * buf[k] : buf[k];
                }
                pi[k] += -flr * d;
            }
        }
        return;
    }
    const double b1 = c->beta1, b2 = c->beta2;
    const double bc1 = 1.0 - pow(b1, (double)o->step), bc2 = 1.0 - pow(b2, (double)o->step);
    const float step_size = (float)(lr / bc1), bc2_sqrt = (float)sqrt(bc2), eps = (float)c->eps;
    const float fb1 = (float)b1, fb2 = (float)b2, a1 = (float)(1.0 - b1), a2 = (float)(1.0 - b2);
    const int decoupled = c->kind == TRAIN_ADAMW;
    const float decay = (float)(1.0 - lr * c->weight_decay);
    for (int i = 0; i < o->n; i++) {
        float *pi = p[i], *m = o->m1[i], *v = o->m2[i];
        const float *gi = g[i];
        const long n = (long)o->size[i];
        #pragma omp parallel for simd schedule(static) if (n > 65536)
        for (long k = 0; k < n; k++) {
            float d = gi[k];
            if (decoupled) { if (wd != 0) pi[k] *= decay; }
            else if (wd != 0) d = d + wd * pi[k];
            m[k] = m[k] * fb1 + a1 * d;
            v[k] = v[k] * fb2 + a2 * (d * d);
            const float denom = sqrtf(v[k]) / bc2_sqrt + eps;
            pi[k] += -step_size * (m[k] / denom);
        }
    }
}

// ---- shards: a batch as parallel pieces -------------------------------------------------
// Shard 0 runs on the calling thread, shard s > 0 on worker thread s. The
// workers are plain threads that sleep on a condition variable between
// batches (OpenMP's spinning workers cost a loaded machine a third of its
// time here), and every op inside a shard runs single-threaded.
enum { MAX_SHARDS = 64 };

typedef struct shards shards;
struct shards {
    int S;                    // shards
    int n[MAX_SHARDS];        // images of each in the current batch
    vc_run *run[MAX_SHARDS];
    int run_n[MAX_SHARDS];    // N each run was made for
    float *x[MAX_SHARDS];     // (n_s, C, H, W)
    int *lab[MAX_SHARDS];
    float *dlog[MAX_SHARDS];  // (n_s, K)
    double loss[MAX_SHARDS];
    int correct[MAX_SHARDS];
    int rc[MAX_SHARDS];
    vc_error err[MAX_SHARDS];
    // the current job
    const vc_model *m;
    const train_data *d;
    const int *idx;
    int start[MAX_SHARDS];
    int train;
    int *pred;
    // the workers
    pthread_t th[MAX_SHARDS];
    int n_th;
    pthread_mutex_t mu;
    pthread_cond_t go, done;
    unsigned gen;             // job number
    int pending, quit;
    struct worker_arg *args;
};

static int argmax_row(const float *y, int K) {
    int best = 0;
    for (int k = 1; k < K; k++) if (y[k] > y[best]) best = k;
    return best;
}

// One shard of the current job: forward (dropout on when training), then loss and backward into param grads.
static void shard_work(shards *sh, int s) {
    const vc_model *m = sh->m;
    const int K = (int)m->nodes[m->output].size;
    sh->rc[s] = VC_OK;
    sh->loss[s] = 0;
    sh->correct[s] = 0;
    if (!sh->n[s]) return;
    vc_run *r = sh->run[s];
    train_data_fill(sh->x[s], sh->lab[s], sh->d, m, sh->idx + sh->start[s], sh->n[s]);
    int rc = vc_forward(r, sh->x[s], m->output, sh->train ? VC_FWD_TRAIN : VC_FWD_NOGRAD, &sh->err[s]);
    if (!rc) {
        const float *y = vc_run_act(r, m->output);
        for (int i = 0; i < sh->n[s]; i++) {
            int k = argmax_row(y + (size_t)i * K, K);
            if (sh->pred) sh->pred[sh->start[s] + i] = k;
            sh->correct[s] += k == sh->lab[s][i];
        }
    }
    if (!rc && sh->train) {
        sh->loss[s] = vc_loss_cross_entropy(r, sh->lab[s], sh->dlog[s]);
        vc_run_zero_param_grads(r);
        rc = vc_backward(r, m->output, sh->dlog[s], VC_BWD_PARAMS, &sh->err[s]);
    }
    sh->rc[s] = rc;
}

typedef struct worker_arg { shards *sh; int s; } worker_arg;

static void *worker_main(void *p) {
    shards *sh = ((worker_arg *)p)->sh;
    const int s = ((worker_arg *)p)->s;
    omp_set_num_threads(1);
    unsigned seen = 0;
    for (;;) {
        pthread_mutex_lock(&sh->mu);
        while (sh->gen == seen && !sh->quit) pthread_cond_wait(&sh->go, &sh->mu);
        if (sh->quit) { pthread_mutex_unlock(&sh->mu); return NULL; }
        seen = sh->gen;
        pthread_mutex_unlock(&sh->mu);
        shard_work(sh, s);
        pthread_mutex_lock(&sh->mu);
        if (--sh->pending == 0) pthread_cond_signal(&sh->done);
        pthread_mutex_unlock(&sh->mu);
    }
}

// S shards; the worker threads start here. sh must stay at this address until shards_free.
static shards *shards_new(int S) {
    shards *sh = calloc_check(1, sizeof *sh);
    sh->S = S;
    pthread_mutex_init(&sh->mu, NULL);
    pthread_cond_init(&sh->go, NULL);
    pthread_cond_init(&sh->done, NULL);
    worker_arg *args = calloc_check(S, sizeof(worker_arg));
    for (int s = 1; s < S; s++) {
        args[s] = (worker_arg){sh, s};
        if (pthread_create(&sh->th[s], NULL, worker_main, &args[s]) != 0) break;   // the rest run inline
        sh->n_th = s;
    }
    sh->args = args;
    return sh;
}

static void shards_free(shards *sh) {
    if (!sh) return;
    pthread_mutex_lock(&sh->mu);
    sh->quit = 1;
    pthread_cond_broadcast(&sh->go);
    pthread_mutex_unlock(&sh->mu);
    for (int s = 1; s <= sh->n_th; s++) pthread_join(sh->th[s], NULL);
    for (int s = 0; s < sh->S; s++) { vc_run_free(sh->run[s]); free(sh->x[s]); free(sh->lab[s]); free(sh->dlog[s]); }
    pthread_mutex_destroy(&sh->mu);
    pthread_cond_destroy(&sh->go);
    pthread_cond_destroy(&sh->done);
    free(sh->args);
    free(sh);
}

// Splits `count` images into S near-equal pieces and makes sure each has a run of its size.
static void shards_layout(shards *sh, const vc_model *m, int count, uint64_t dropout_seed) {
    const int K = (int)m->nodes[m->output].size;
    for (int s = 0; s < sh->S; s++) {
        sh->n[s] = count / sh->S + (s < count % sh->S);
        if (sh->run[s] && sh->run_n[s] == sh->n[s]) continue;
        vc_run_free(sh->run[s]);
        free(sh->x[s]); free(sh->lab[s]); free(sh->dlog[s]);
        sh->run[s] = NULL;
        sh->x[s] = NULL; sh->lab[s] = NULL; sh->dlog[s] = NULL;
        sh->run_n[s] = sh->n[s];
        if (!sh->n[s]) continue;
        sh->run[s] = vc_run_new(m, sh->n[s]);
        vc_run_seed(sh->run[s], rng_derive(dropout_seed, (uint64_t)s + 1));
        sh->x[s] = malloc_check((size_t)sh->n[s] * m->nodes[0].size * sizeof(float));
        sh->lab[s] = malloc_check((size_t)sh->n[s] * sizeof(int));
        sh->dlog[s] = malloc_check((size_t)sh->n[s] * K * sizeof(float));
    }
}

// Runs every shard of images idx[0..count) (count = sum of sh->n).
static int shards_run(shards *sh, const vc_model *m, const train_data *d, const int *idx, int train, int *pred, vc_error *err) {
    int o = 0;
    for (int s = 0; s < sh->S; s++) { sh->start[s] = o; o += sh->n[s]; }
    sh->m = m; sh->d = d; sh->idx = idx; sh->train = train; sh->pred = pred;
    pthread_mutex_lock(&sh->mu);
    sh->pending = sh->n_th;
    sh->gen++;
    pthread_cond_broadcast(&sh->go);
    pthread_mutex_unlock(&sh->mu);
    shard_work(sh, 0);
    for (int s = sh->n_th + 1; s < sh->S; s++) shard_work(sh, s);   // threads that could not start
    pthread_mutex_lock(&sh->mu);
    while (sh->pending > 0) pthread_cond_wait(&sh->done, &sh->mu);
    pthread_mutex_unlock(&sh->mu);
    for (int s = 0; s < sh->S; s++)
        if (sh->rc[s]) { if (err) *err = sh->err[s]; return sh->rc[s]; }
    return VC_OK;
}

// Shard count for evaluation: the cores, at most MAX_SHARDS.
static int default_shards(void) {
    int t = omp_get_max_threads();
    return t < 1 ? 1 : t > MAX_SHARDS ? MAX_SHARDS : t;
}

// Single-threaded ops on this thread and in BLAS while shards run side by side.
typedef struct { int blas, omp; } thread_state;
static thread_state threads_enter(void) {
    thread_state t = {openblas_get_num_threads(), omp_get_max_threads()};
    openblas_set_num_threads(1);
    omp_set_num_threads(1);
    return t;
}
static void threads_leave(thread_state t) {
    openblas_set_num_threads(t.blas);
    omp_set_num_threads(t.omp);
}

int train_evaluate(const vc_model *m, const train_data *d, int batch, int *pred, double *acc, vc_error *err) {
    shards *sh = shards_new(default_shards());
    if (batch < sh->S) batch = sh->S;
    int *idx = malloc_check((size_t)(d->n ? d->n : 1) * sizeof(int));
    for (int i = 0; i < d->n; i++) idx[i] = i;
    long correct = 0;
    int rc = VC_OK;
    thread_state ts = threads_enter();
    for (int b = 0; b < d->n && !rc; b += batch) {
        int cnt = d->n - b < batch ? d->n - b : batch;
        shards_layout(sh, m, cnt, 0);
        rc = shards_run(sh, m, d, idx + b, 0, pred ? pred + b : NULL, err);
        for (int s = 0; s < sh->S; s++) correct += sh->correct[s];
    }
    threads_leave(ts);
    shards_free(sh);
    free(idx);
    *acc = d->n ? (double)correct / d->n : 0;
    return rc;
}

// ---- the loop ------------------------------------------------------------------------------
void train_cfg_defaults(train_cfg *c) {
    memset(c, 0, sizeof *c);
    c->epochs = 1;
    c->batch = 64;
    c->shards = 2;
    c->sched = TRAIN_SCHED_NONE;
    c->step_epochs = 1;
    c->step_gamma = 0.1;
    c->eval_batch = 500;
}

static double sched_lr(const train_cfg *c, double lr0, long t, long T, int epoch) {
    if (c->sched == TRAIN_SCHED_COSINE) return lr0 * 0.5 * (1.0 + cos(M_PI * (double)t / (double)T));
    if (c->sched == TRAIN_SCHED_STEP) return lr0 * pow(c->step_gamma, epoch / c->step_epochs);
    return lr0;
}

int train_run(vc_model *m, const train_data *train, const train_data *test, const train_cfg *cfg,
              const train_optim_cfg *ocfg, const train_callbacks *cb, train_epoch *history, vc_error *err) {
    const int K = (int)m->nodes[m->output].size;
    if (cfg->batch < 1 || cfg->epochs < 1 || cfg->shards < 1 || cfg->shards > 64)
        return vc_fail(err, VC_EINPUT, "train: batch, epochs and shards must be positive (shards at most 64)");
    if (cfg->batch < cfg->shards) return vc_fail(err, VC_EINPUT, "train: batch %d is smaller than the %d shards", cfg->batch, cfg->shards);
    if (train->n < 1) return vc_fail(err, VC_EINPUT, "train: no training images");
    const train_data *sets[2] = {train, test};
    for (int q = 0; q < 2; q++)
        for (int i = 0; sets[q] && i < sets[q]->n; i++)
            if (sets[q]->labels[i] < 0 || sets[q]->labels[i] >= K)
                return vc_fail(err, VC_EINPUT, "train: %s label %d of image %d is outside the model's %d classes",
                               q ? "test" : "training", sets[q]->labels[i], i, K);
    // Trainable parameters: all but batchnorm running statistics (eval-mode
    // batchnorm keeps them fixed; their gradient is never computed).
    const int NP = m->n_params;
    unsigned char *frozen = calloc_check(NP ? NP : 1, 1);
    for (int q = 0; q < m->n_nodes; q++)
        for (int r = VC_P_MEAN; r <= VC_P_VAR; r++)
            if (m->nodes[q].param[r] >= 0) frozen[m->nodes[q].param[r]] = 1;
    int P = 0, *pi = malloc_check((NP ? NP : 1) * sizeof(int));
    for (int i = 0; i < NP; i++) if (!frozen[i]) pi[P++] = i;
    free(frozen);
    size_t *sizes = malloc_check((P ? P : 1) * sizeof(size_t));
    float **pdata = malloc_check((P ? P : 1) * sizeof(float *)), **gsum = malloc_check((P ? P : 1) * sizeof(float *));
    for (int j = 0; j < P; j++) {
        sizes[j] = m->params[pi[j]].size;
        pdata[j] = m->params[pi[j]].data;
        gsum[j] = malloc_check(sizes[j] * sizeof(float));
    }
    train_optimizer opt;
    train_optim_init(&opt, ocfg, P, sizes);
    shards *sh = shards_new(cfg->shards);
    int *perm = malloc_check((size_t)train->n * sizeof(int));
    for (int i = 0; i < train->n; i++) perm[i] = i;
    uint64_t shuffle = rng_derive(cfg->seed, STREAM_SHUFFLE), dropout = rng_derive(cfg->seed, STREAM_DROPOUT);
    const int nb = (train->n + cfg->batch - 1) / cfg->batch;
    const long T = (long)nb * cfg->epochs;
    long t = 0;
    int rc = VC_OK;
    thread_state ts = threads_enter();
    for (int ep = 0; ep < cfg->epochs && !rc; ep++) {
        double t0 = now_s(), loss_sum = 0, lr = ocfg->lr;
        long correct = 0, seen = 0;
        for (int i = train->n - 1; i > 0; i--) {   // Fisher-Yates
            int j = (int)rng_below(&shuffle, (uint64_t)i + 1), tmp = perm[i];
            perm[i] = perm[j]; perm[j] = tmp;
        }
        for (int b = 0; b < nb && !rc; b++, t++) {
            const int off = b * cfg->batch, cnt = train->n - off < cfg->batch ? train->n - off : cfg->batch;
            if (cnt < sh->S) continue;   // a last batch too small to split: skipped
            shards_layout(sh, m, cnt, rng_derive(dropout, (uint64_t)t));
            rc = shards_run(sh, m, train, perm + off, 1, NULL, err);
            if (rc) break;
            // d(mean loss over the batch) = sum_s n_s/cnt * d(mean loss over shard s)
            for (int j = 0; j < P; j++) {
                float *gi = gsum[j];
                const long n = (long)sizes[j];
                const float w0 = (float)sh->n[0] / cnt;
                const float *g0 = vc_run_param_grad(sh->run[0], pi[j]);
                #pragma omp parallel for simd schedule(static) if (n > 65536)
                for (long k = 0; k < n; k++) gi[k] = w0 * g0[k];
                for (int s = 1; s < sh->S; s++) {
                    const float ws = (float)sh->n[s] / cnt, *gs = vc_run_param_grad(sh->run[s], pi[j]);
                    #pragma omp parallel for simd schedule(static) if (n > 65536)
                    for (long k = 0; k < n; k++) gi[k] += ws * gs[k];
                }
            }
            lr = sched_lr(cfg, ocfg->lr, t, T, ep);
            train_optim_step(&opt, pdata, gsum, lr);
            for (int s = 0; s < sh->S; s++) { loss_sum += sh->loss[s] * sh->n[s]; correct += sh->correct[s]; }
            seen += cnt;
            if (cb && cb->on_batch) cb->on_batch(cb->ctx, ep + 1, b + 1, nb, loss_sum / seen, (double)correct / seen);
        }
        if (rc) break;
        train_epoch e = {ep + 1, seen ? loss_sum / seen : 0, seen ? (double)correct / seen : 0, -1, lr, 0};
        if (!isfinite(e.loss)) { rc = vc_fail(err, VC_EINPUT, "train: the loss diverged to %g in epoch %d (lower --lr)", e.loss, ep + 1); break; }
        if (test) {
            threads_leave(ts);
            rc = train_evaluate(m, test, cfg->eval_batch, NULL, &e.test_acc, err);
            ts = threads_enter();
        }
        e.seconds = now_s() - t0;
        if (history) history[ep] = e;
        if (cb && cb->on_epoch) cb->on_epoch(cb->ctx, &e);
    }
    threads_leave(ts);
    shards_free(sh);
    train_optim_free(&opt);
    for (int j = 0; j < P; j++) free(gsum[j]);
    free(gsum); free(pdata); free(sizes); free(perm); free(pi);
    return rc;
}

// ---- labelled sets from files -------------------------------------------------------------
void train_set_free(train_set *s) {
    free(s->u8); free(s->f); free(s->labels);
    memset(s, 0, sizeof *s);
}

int train_set_open_idx(train_set *s, const vc_model *m, const char *images, const char *labels, int limit, vc_error *err) {
    memset(s, 0, sizeof *s);
    const vc_node *in = &m->nodes[0];
    vc_idx_set set;
    int rc = idx_read_set(&set, images, labels, err);
    if (rc) return rc;
    if (in->c != 1 || set.rows != in->h || set.cols != in->w)
        rc = vc_fail(err, VC_EINPUT, "%s: images are 1x%dx%d, the model %s takes %dx%dx%d", images, set.rows, set.cols,
                     m->path, in->c, in->h, in->w);
    if (rc) { idx_set_free(&set); return rc; }
    s->d.n = limit > 0 && limit < set.n ? limit : set.n;
    s->u8 = set.pixels;
    s->labels = set.labels;
    s->d.u8 = s->u8;
    s->d.labels = s->labels;
    return VC_OK;
}

int train_set_open_folder(train_set *s, const vc_model *m, const char *folder, int limit, vc_error *err) {
    memset(s, 0, sizeof *s);
    const vc_node *in = &m->nodes[0];
    vc_dataset ds;
    int rc = dataset_open(&ds, folder, err);
    if (rc) return rc;
    if (!ds.by_folder) rc = vc_fail(err, VC_EINPUT, "%s: a labelled set needs class subfolders (named by the model's labels)", folder);
    for (int c = 0; !rc && c < ds.n_cat; c++)
        if (dataset_label(&ds, c, m) < 0)
            rc = vc_fail(err, VC_EINPUT, "%s: class folder '%s' is not a label of %s (see viscnn info)", folder, vc_str(ds.cat_names[c]), m->path);
    if (!rc) {
        int n = limit > 0 && limit < ds.n ? limit : ds.n;
        s->f = malloc_check((size_t)(n ? n : 1) * in->size * sizeof(float));
        s->labels = malloc_check((size_t)(n ? n : 1) * sizeof(int));
        for (int i = 0; i < n && !rc; i++) {
            rc = image_preprocess(s->f + (size_t)i * in->size, ds.paths[i], &m->pre, in->h, in->w, err);
            s->labels[i] = dataset_label(&ds, ds.cat[i], m);
        }
        s->d.n = n;
        s->d.f = s->f;
        s->d.labels = s->labels;
    }
    dataset_free(&ds);
    if (rc) train_set_free(s);
    return rc;
}
