// train.c: the training loop, its optimizers and its models (see train.h).
#include "train.h"
#include <cblas.h>
#include <cjson/cJSON.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "../engine/util.h"
#include "../loaders/dataset.h"
#include "../loaders/idx.h"
#include "../loaders/image.h"
#include "../loaders/safetensors.h"

// OpenBLAS's own thread count; the shards run single-threaded BLAS side by side.
extern int openblas_get_num_threads(void);
extern void openblas_set_num_threads(int);

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
    size_t cap = 1 << 16, n = 0;
    char *s = malloc_check(cap + 1);
    size_t got;
    while ((got = fread(s + n, 1, cap - n, f)) > 0) {
        n += got;
        if (n == cap) { cap *= 2; char *t = realloc(s, cap + 1); if (!t) abort(); s = t; }
        if (cap > (64u << 20)) break;
    }
    int bad = ferror(f);
    fclose(f);
    if (bad) { free(s); vc_fail(err, VC_EINPUT, "%s: read error", path); return NULL; }
    s[n] = 0;
    return s;
}

static int attr_int(cJSON *attrs, const char *key, int *out) {
    cJSON *a = attrs ? cJSON_GetObjectItemCaseSensitive(attrs, key) : NULL;
    if (!cJSON_IsNumber(a) || a->valuedouble < 1 || a->valuedouble > (1 << 24) || a->valuedouble != (int)a->valuedouble) return -1;
    *out = (int)a->valuedouble;
    return 0;
}
static int attr_int_pair(cJSON *attrs, const char *key, int def, int out[2]) {
    cJSON *a = attrs ? cJSON_GetObjectItemCaseSensitive(attrs, key) : NULL;
    out[0] = out[1] = def;
    if (!a) return 0;
    if (cJSON_IsNumber(a)) { out[0] = out[1] = a->valueint; return 0; }
    if (cJSON_IsArray(a) && cJSON_GetArraySize(a) == 2) {
        out[0] = cJSON_GetArrayItem(a, 0)->valueint;
        out[1] = cJSON_GetArrayItem(a, 1)->valueint;
        return 0;
    }
    return -1;
}

typedef struct {
    char *name;
    int rank, dim[4];
    float *data;
} tmpl_tensor;

static void fill_uniform(float *p, size_t n, double bound, uint64_t *s) {
    for (size_t i = 0; i < n; i++) p[i] = (float)((2.0 * rng_uniform(s) - 1.0) * bound);
}

// Adds the tensor for role `key` of a node with shape dim (when the template
// names one) and sets *data to its storage; *data stays NULL when it does not.
static int tmpl_add(float **data, tmpl_tensor *t, int *nt, cJSON *params, const char *key, int rank, const int *dim,
                    const char *arch, const char *node, vc_error *err) {
    *data = NULL;
    cJSON *pn = params ? cJSON_GetObjectItemCaseSensitive(params, key) : NULL;
    if (!pn) return VC_OK;
    if (!cJSON_IsString(pn)) return vc_fail(err, VC_EINPUT, "%s: node %s: param '%s' is not a tensor name", arch, node, key);
    for (int i = 0; i < *nt; i++)
        if (!strcmp(t[i].name, pn->valuestring))
            return vc_fail(err, VC_EINPUT, "%s: node %s: tensor '%s' is used twice", arch, node, pn->valuestring);
    tmpl_tensor *x = &t[(*nt)++];
    x->name = strdup_check(pn->valuestring);
    x->rank = rank;
    size_t n = 1;
    for (int k = 0; k < rank; k++) { x->dim[k] = dim[k]; n *= (size_t)dim[k]; }
    x->data = malloc_check(n * sizeof(float));
    *data = x->data;
    return VC_OK;
}

int train_model_from_template(vc_model **out, const char *arch, uint64_t seed, vc_error *err) {
    *out = NULL;
    char *text = read_text(arch, err);
    if (!text) return VC_EINPUT;
    cJSON *g = cJSON_Parse(text);
    free(text);
    if (!g || !cJSON_IsObject(g)) { cJSON_Delete(g); return vc_fail(err, VC_EINPUT, "%s: not a JSON object (a viscnn.graph template)", arch); }
    cJSON *nodes = cJSON_GetObjectItemCaseSensitive(g, "nodes");
    if (!cJSON_IsArray(nodes)) { cJSON_Delete(g); return vc_fail(err, VC_EINPUT, "%s: the template has no \"nodes\" list", arch); }
    int cap = 4 * cJSON_GetArraySize(nodes) + 1, nt = 0, rc = VC_OK;
    tmpl_tensor *t = calloc_check(cap, sizeof(tmpl_tensor));
    uint64_t s = rng_derive(seed, STREAM_INIT);
    for (cJSON *e = nodes->child; e && !rc; e = e->next) {
        cJSON *nn = cJSON_GetObjectItemCaseSensitive(e, "name"), *op = cJSON_GetObjectItemCaseSensitive(e, "op");
        cJSON *params = cJSON_GetObjectItemCaseSensitive(e, "params"), *attrs = cJSON_GetObjectItemCaseSensitive(e, "attrs");
        const char *name = cJSON_IsString(nn) ? nn->valuestring : "?";
        if (!params) continue;
        if (!cJSON_IsString(op)) { rc = vc_fail(err, VC_EINPUT, "%s: node %s has no op", arch, name); break; }
        const char *o = op->valuestring;
        float *w = NULL, *b = NULL;
        if (!strcmp(o, "conv2d")) {
            int ci, co, k[2], groups = 1;
            cJSON *gr = attrs ? cJSON_GetObjectItemCaseSensitive(attrs, "groups") : NULL;
            if (cJSON_IsNumber(gr)) groups = gr->valueint;
            if (attr_int(attrs, "in_channels", &ci) || attr_int(attrs, "out_channels", &co) ||
                attr_int_pair(attrs, "kernel", 1, k) || k[0] < 1 || k[1] < 1 || groups < 1 || ci % groups || co % groups) {
                rc = vc_fail(err, VC_EINPUT, "%s: node %s: a template conv2d needs attrs in_channels, out_channels "
                             "(positive, divisible by groups) and kernel", arch, name);
                break;
            }
            int wd[4] = {co, ci / groups, k[0], k[1]};
            double bound = 1.0 / sqrt((double)(ci / groups) * k[0] * k[1]);
            if ((rc = tmpl_add(&w, t, &nt, params, "weight", 4, wd, arch, name, err))) break;
            if (w) fill_uniform(w, (size_t)co * (ci / groups) * k[0] * k[1], bound, &s);
            if ((rc = tmpl_add(&b, t, &nt, params, "bias", 1, &co, arch, name, err))) break;
            if (b) fill_uniform(b, co, bound, &s);
        } else if (!strcmp(o, "linear")) {
            int fi, fo;
            if (attr_int(attrs, "in_features", &fi) || attr_int(attrs, "out_features", &fo)) {
                rc = vc_fail(err, VC_EINPUT, "%s: node %s: a template linear needs attrs in_features and out_features", arch, name);
                break;
            }
            int wd[2] = {fo, fi};
            double bound = 1.0 / sqrt((double)fi);
            if ((rc = tmpl_add(&w, t, &nt, params, "weight", 2, wd, arch, name, err))) break;
            if (w) fill_uniform(w, (size_t)fo * fi, bound, &s);
            if ((rc = tmpl_add(&b, t, &nt, params, "bias", 1, &fo, arch, name, err))) break;
            if (b) fill_uniform(b, fo, bound, &s);
        } else if (!strcmp(o, "batchnorm2d")) {
            int c;
            if (attr_int(attrs, "num_features", &c)) {
                rc = vc_fail(err, VC_EINPUT, "%s: node %s: a template batchnorm2d needs attr num_features", arch, name);
                break;
            }
            static const char *keys[4] = {"weight", "bias", "running_mean", "running_var"};
            static const float init[4] = {1, 0, 0, 1};
            for (int r = 0; r < 4 && !rc; r++) {
                float *p;
                rc = tmpl_add(&p, t, &nt, params, keys[r], 1, &c, arch, name, err);
                for (int i = 0; p && i < c; i++) p[i] = init[r];
            }
        } else {
            rc = vc_fail(err, VC_EINPUT, "%s: node %s: cannot initialise the parameters of a template %s", arch, name, o);
        }
        if (nt > cap - 4) { rc = vc_fail(err, VC_EINPUT, "%s: too many parameters", arch); break; }
    }
    char *graph = rc ? NULL : cJSON_PrintUnformatted(g);
    cJSON_Delete(g);
    char tmp[] = "/tmp/viscnn-train-XXXXXX";
    int fd = -1;
    if (!rc) {
        fd = mkstemp(tmp);
        if (fd < 0) rc = vc_fail(err, VC_EINTERNAL, "cannot create a temporary file in /tmp");
        else close(fd);
    }
    if (!rc) {
        st_out *so = calloc_check(nt ? nt : 1, sizeof(st_out));
        for (int i = 0; i < nt; i++) so[i] = (st_out){t[i].name, t[i].rank, t[i].dim, t[i].data};
        const char *key = "viscnn.graph";
        rc = st_write(tmp, nt, so, 1, &key, (const char *const *)&graph, err);
        free(so);
        if (!rc) {
            vc_model *m = NULL;
            rc = vc_model_load(&m, tmp, err);
            if (rc && err) {   // the loader names the temporary file; name the template instead
                char msg[sizeof err->msg];
                const char *p = strstr(err->msg, tmp);
                snprintf(msg, sizeof msg, "%s%s", arch, p ? p + strlen(tmp) : "");
                if (p == err->msg) memcpy(err->msg, msg, sizeof msg);
            }
            if (!rc) { free(m->path); m->path = strdup_check(arch); *out = m; }
        }
        unlink(tmp);
    }
    free(graph);
    for (int i = 0; i < nt; i++) { free(t[i].name); free(t[i].data); }
    free(t);
    return rc;
}

int train_model_open(vc_model **out, const char *arch, uint64_t seed, vc_error *err) {
    size_t n = strlen(arch);
    if (n >= 5 && !strcmp(arch + n - 5, ".json")) return train_model_from_template(out, arch, seed, err);
    return vc_model_load(out, arch, err);
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
typedef struct {
    int S;                    // shards
    int n[64];                // images of each in the current batch
    vc_run *run[64];
    int run_n[64];            // N each run was made for
    float *x[64];             // (n_s, C, H, W)
    int *lab[64];
    float *dlog[64];          // (n_s, K)
    double loss[64];
    int correct[64];
    int rc[64];
    vc_error err[64];
} shards;

static void shards_free(shards *sh) {
    for (int s = 0; s < sh->S; s++) { vc_run_free(sh->run[s]); free(sh->x[s]); free(sh->lab[s]); free(sh->dlog[s]); }
    memset(sh, 0, sizeof *sh);
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
        sh->run_n[s] = sh->n[s];
        if (!sh->n[s]) continue;
        sh->run[s] = vc_run_new(m, sh->n[s]);
        vc_run_seed(sh->run[s], rng_derive(dropout_seed, (uint64_t)s + 1));
        sh->x[s] = malloc_check((size_t)sh->n[s] * m->nodes[0].size * sizeof(float));
        sh->lab[s] = malloc_check((size_t)sh->n[s] * sizeof(int));
        sh->dlog[s] = malloc_check((size_t)sh->n[s] * K * sizeof(float));
    }
}

static int argmax_row(const float *y, int K) {
    int best = 0;
    for (int k = 1; k < K; k++) if (y[k] > y[best]) best = k;
    return best;
}

// Runs every shard; train: forward (dropout on), loss, backward into param grads.
static int shards_run(shards *sh, const vc_model *m, const train_data *d, const int *idx, int train, int *pred, vc_error *err) {
    const int K = (int)m->nodes[m->output].size;
    int start[64], o = 0;
    for (int s = 0; s < sh->S; s++) { start[s] = o; o += sh->n[s]; }
    #pragma omp parallel for schedule(dynamic, 1) num_threads(sh->S)
    for (int s = 0; s < sh->S; s++) {
        sh->rc[s] = VC_OK;
        sh->loss[s] = 0;
        sh->correct[s] = 0;
        if (!sh->n[s]) continue;
        vc_run *r = sh->run[s];
        train_data_fill(sh->x[s], sh->lab[s], d, m, idx + start[s], sh->n[s]);
        int rc = vc_forward(r, sh->x[s], m->output, train ? VC_FWD_TRAIN : VC_FWD_NOGRAD, &sh->err[s]);
        if (!rc) {
            const float *y = vc_run_act(r, m->output);
            for (int i = 0; i < sh->n[s]; i++) {
                int k = argmax_row(y + (size_t)i * K, K);
                if (pred) pred[start[s] + i] = k;
                sh->correct[s] += k == sh->lab[s][i];
            }
        }
        if (!rc && train) {
            sh->loss[s] = vc_loss_cross_entropy(r, sh->lab[s], sh->dlog[s]);
            vc_run_zero_param_grads(r);
            rc = vc_backward(r, m->output, sh->dlog[s], VC_BWD_PARAMS, &sh->err[s]);
        }
        sh->rc[s] = rc;
    }
    for (int s = 0; s < sh->S; s++)
        if (sh->rc[s]) { if (err) *err = sh->err[s]; return sh->rc[s]; }
    return VC_OK;
}

// Shard count for evaluation: the cores, at most 64.
static int default_shards(void) {
    int t = omp_get_max_threads();
    return t < 1 ? 1 : t > 64 ? 64 : t;
}

// Makes each shard single-threaded inside (no nested OpenMP, one BLAS thread).
typedef struct { int blas, levels; } thread_state;
static thread_state threads_enter(void) {
    thread_state t = {openblas_get_num_threads(), omp_get_max_active_levels()};
    openblas_set_num_threads(1);
    omp_set_max_active_levels(1);
    return t;
}
static void threads_leave(thread_state t) {
    openblas_set_num_threads(t.blas);
    omp_set_max_active_levels(t.levels);
}

int train_evaluate(const vc_model *m, const train_data *d, int batch, int *pred, double *acc, vc_error *err) {
    shards sh = {0};
    sh.S = default_shards();
    if (batch < sh.S) batch = sh.S;
    int *idx = malloc_check((size_t)(d->n ? d->n : 1) * sizeof(int));
    for (int i = 0; i < d->n; i++) idx[i] = i;
    long correct = 0;
    int rc = VC_OK;
    thread_state ts = threads_enter();
    for (int b = 0; b < d->n && !rc; b += batch) {
        int cnt = d->n - b < batch ? d->n - b : batch;
        shards_layout(&sh, m, cnt, 0);
        rc = shards_run(&sh, m, d, idx + b, 0, pred ? pred + b : NULL, err);
        for (int s = 0; s < sh.S; s++) correct += sh.correct[s];
    }
    threads_leave(ts);
    shards_free(&sh);
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
    const int P = m->n_params;
    size_t *sizes = malloc_check((P ? P : 1) * sizeof(size_t));
    float **pdata = malloc_check((P ? P : 1) * sizeof(float *)), **gsum = malloc_check((P ? P : 1) * sizeof(float *));
    for (int i = 0; i < P; i++) {
        sizes[i] = m->params[i].size;
        pdata[i] = m->params[i].data;
        gsum[i] = malloc_check(sizes[i] * sizeof(float));
    }
    train_optimizer opt;
    train_optim_init(&opt, ocfg, P, sizes);
    shards sh = {0};
    sh.S = cfg->shards;
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
            if (cnt < sh.S) continue;   // a last batch too small to split: skipped
            shards_layout(&sh, m, cnt, rng_derive(dropout, (uint64_t)t));
            rc = shards_run(&sh, m, train, perm + off, 1, NULL, err);
            if (rc) break;
            // d(mean loss over the batch) = sum_s n_s/cnt * d(mean loss over shard s)
            for (int i = 0; i < P; i++) {
                float *gi = gsum[i];
                const long n = (long)sizes[i];
                const float w0 = (float)sh.n[0] / cnt;
                const float *g0 = vc_run_param_grad(sh.run[0], i);
                #pragma omp parallel for simd schedule(static) if (n > 65536)
                for (long k = 0; k < n; k++) gi[k] = w0 * g0[k];
                for (int s = 1; s < sh.S; s++) {
                    const float ws = (float)sh.n[s] / cnt, *gs = vc_run_param_grad(sh.run[s], i);
                    #pragma omp parallel for simd schedule(static) if (n > 65536)
                    for (long k = 0; k < n; k++) gi[k] += ws * gs[k];
                }
            }
            lr = sched_lr(cfg, ocfg->lr, t, T, ep);
            train_optim_step(&opt, pdata, gsum, lr);
            for (int s = 0; s < sh.S; s++) { loss_sum += sh.loss[s] * sh.n[s]; correct += sh.correct[s]; }
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
    shards_free(&sh);
    train_optim_free(&opt);
    for (int i = 0; i < P; i++) free(gsum[i]);
    free(gsum); free(pdata); free(sizes); free(perm);
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
            rc = vc_fail(err, VC_EINPUT, "%s: class folder '%s' is not a label of %s (see viscnn info)", folder, ds.cat_names[c], m->path);
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
