// server.c: the daemon of `viscnn serve` (see server.h): binding, the
// request plumbing of libmicrohttpd, the static files of web/ and the
// guards every request passes before a handler sees it.
//
// Guards: a URL path is at most 2048 bytes, its query 16 KiB; static paths are checked after
// libmicrohttpd has percent-decoded them once: only [A-Za-z0-9._/-], no
// segment starting with '.', no "//", no '%' left (a double-encoded "..")
// and a resolved path (realpath) inside web/; in web/node_modules only three.js
// is served. Request bodies: only POST, at most SERVER_UPLOAD_MAX bytes (413
// after reading at most BODY_DISCARD_MAX of a larger one, at once when the
// Content-Length says so).
#include "server.h"
#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <microhttpd.h>
#include <netdb.h>
#include <omp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "../../engine/util.h"

enum { URL_MAX = 2048, QUERY_MAX = 16384, BODY_DISCARD_MAX = 64 << 20 };

const char *req_arg(const http_req *q, const char *key) {
    return MHD_lookup_connection_value((struct MHD_Connection *)q->conn, MHD_GET_ARGUMENT_KIND, key);
}

void resp_text(http_resp *r, int status, const char *ctype, char *body, size_t len) {
    free(r->body);
    r->status = status;
    r->ctype = ctype;
    r->body = body;
    r->len = len;
}

void resp_json(http_resp *r, int status, void *json) {
    char *s = cJSON_PrintUnformatted(json);
    cJSON_Delete(json);
    if (!s) { resp_error(r, 500, "out of memory formatting JSON"); return; }
    resp_text(r, status, "application/json", s, strlen(s));
}

void resp_error(http_resp *r, int status, const char *fmt, ...) {
    char msg[1200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "error", msg);
    cJSON_AddNumberToObject(o, "status", status);
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    resp_text(r, status, "application/json", s, strlen(s));
    r->file = NULL;
}

static int hexval(char c) {
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

// ---- static files ------------------------------------------------------------------------
static const struct { const char *ext, *type; } types[] = {
    {".html", "text/html; charset=utf-8"}, {".js", "text/javascript; charset=utf-8"},
    {".mjs", "text/javascript; charset=utf-8"}, {".css", "text/css; charset=utf-8"},
    {".png", "image/png"}, {".svg", "image/svg+xml"}, {".ico", "image/x-icon"},
};

static void serve_static(vc_server *s, const char *url, const char *method, http_resp *r) {
    if (strcmp(method, "GET") && strcmp(method, "HEAD")) { resp_error(r, 405, "%s: static files take GET", method); return; }
    const char *rel = !strcmp(url, "/") ? "index.html" : url + 1;
    int ok = url[0] == '/' && rel[0] && !strstr(rel, "//") && rel[strlen(rel) - 1] != '/';
    for (const char *p = rel; ok && *p; p++) {
        char c = *p;
        ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-' || c == '/';
        if (c == '.' && (p == rel || p[-1] == '/')) ok = 0;   // "..", hidden files
    }
    if (!ok) {
        resp_error(r, 400, "%.200s: not a file of the web folder (only [A-Za-z0-9._-] names, no '..', no hidden files)", url);
        return;
    }
    if (!strncmp(rel, "node_modules/", 13) && strncmp(rel, "node_modules/three/", 19)) {
        resp_error(r, 404, "%.200s: not served", url);
        return;
    }
    const char *type = NULL, *dot = strrchr(rel, '.');
    for (size_t k = 0; dot && k < sizeof types / sizeof types[0]; k++) if (!strcmp(dot, types[k].ext)) type = types[k].type;
    if (!type) { resp_error(r, 404, "%.200s: not served (file type)", url); return; }
    char path[PATH_MAX + 64], real[PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", s->web_dir, rel);
    size_t wl = strlen(s->web_real);
    if (!realpath(path, real) || strncmp(real, s->web_real, wl) || real[wl] != '/') {
        resp_error(r, 404, "%.200s: no such file", url);
        return;
    }
    struct stat st;
    if (stat(real, &st) || !S_ISREG(st.st_mode)) { resp_error(r, 404, "%.200s: no such file", url); return; }
    r->status = 200;
    r->ctype = type;
    r->file = strdup_check(real);
}

// Percent-decoding of paths and query values, in place. A "%00" stays as
// it is: decoded, it would cut the string short ("/index.html%00.png" would
// become "/index.html"), and left alone it fails the path check.
static size_t unescape(void *cls, struct MHD_Connection *c, char *s) {
    (void)cls; (void)c;
    char *w = s;
    for (const char *r = s; *r; r++) {
        int hi, lo;
        if (r[0] == '%' && (hi = hexval(r[1])) >= 0 && (lo = hexval(r[2])) >= 0 && (hi || lo)) {
            *w++ = (char)(hi << 4 | lo);
            r += 2;
        } else *w++ = *r;
    }
    *w = 0;
    return (size_t)(w - s);
}

// Total length of the query's keys and values.
static enum MHD_Result sum_args(void *cls, enum MHD_ValueKind kind, const char *key, const char *value) {
    (void)kind;
    *(size_t *)cls += strlen(key) + (value ? strlen(value) : 0) + 2;
    return MHD_YES;
}

// ---- libmicrohttpd glue --------------------------------------------------------------------
typedef struct {
    char *body;
    size_t len, seen;
    int too_big, answered;
} conn_state;

static enum MHD_Result send_resp(struct MHD_Connection *c, http_resp *r, int api) {
    struct MHD_Response *mr = NULL;
    if (r->file) {
        int fd = open(r->file, O_RDONLY | O_CLOEXEC);
        struct stat st;
        if (fd >= 0 && fstat(fd, &st) == 0) mr = MHD_create_response_from_fd((uint64_t)st.st_size, fd);
        else {
            if (fd >= 0) close(fd);
            resp_error(r, 404, "file vanished");
        }
    }
    if (!mr) {
        mr = MHD_create_response_from_buffer(r->len, r->body, MHD_RESPMEM_MUST_FREE);
        r->body = NULL;
    }
    if (!mr) return MHD_NO;
    MHD_add_response_header(mr, "Content-Type", r->ctype ? r->ctype : "application/octet-stream");
    MHD_add_response_header(mr, "Cache-Control", api ? "no-store" : "no-cache");
    MHD_add_response_header(mr, "X-Content-Type-Options", "nosniff");
    if (r->disposition[0]) MHD_add_response_header(mr, "Content-Disposition", r->disposition);
    enum MHD_Result ret = MHD_queue_response(c, (unsigned)r->status, mr);
    MHD_destroy_response(mr);
    return ret;
}

static enum MHD_Result answer(vc_server *s, struct MHD_Connection *c, const char *url, const char *method, conn_state *st) {
    http_resp r = {0};
    int api = !strncmp(url, "/api/", 5) || !strcmp(url, "/api");
    size_t qlen = 0;
    MHD_get_connection_values(c, MHD_GET_ARGUMENT_KIND, sum_args, &qlen);
    if (strlen(url) > URL_MAX || qlen > QUERY_MAX) resp_error(&r, 414, "URL longer than %d bytes", strlen(url) > URL_MAX ? URL_MAX : QUERY_MAX);
    else if (st->too_big) resp_error(&r, 413, "request body larger than %d bytes", SERVER_UPLOAD_MAX);
    else if (strcmp(method, "GET") && strcmp(method, "HEAD") && strcmp(method, "POST"))
        resp_error(&r, 405, "method %.32s not allowed (GET, HEAD, POST)", method);
    else if (api) {
        http_req q = {c, method, url, st->body, st->len};
        api_handle(s, &q, &r);
    } else serve_static(s, url, method, &r);
    if (r.status >= 500 && r.status != 501) fprintf(stderr, "viscnn serve: %s %s -> %d %.*s\n", method, url, r.status, (int)(r.len < 300 ? r.len : 300), r.body ? r.body : "");
    enum MHD_Result ret = send_resp(c, &r, api);
    free(r.body);
    free(r.file);
    st->answered = 1;
    return ret;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                                  const char *version, const char *upload_data, size_t *upload_data_size, void **con_cls) {
    (void)version;
    vc_server *s = cls;
    conn_state *st = *con_cls;
    if (!st) {   // first call: headers only
        st = calloc(1, sizeof *st);
        if (!st) return MHD_NO;
        *con_cls = st;
        const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (cl && strtoull(cl, NULL, 10) > (unsigned long long)BODY_DISCARD_MAX) {
            st->too_big = 1;
            return answer(s, c, url, method, st);
        }
        return MHD_YES;
    }
    if (*upload_data_size) {
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        st->seen += n;
        if (st->answered) return MHD_YES;
        if (!st->too_big && strcmp(method, "POST")) st->too_big = st->seen > 65536;   // GET bodies: ignored, bounded
        else if (!st->too_big && st->len + n <= SERVER_UPLOAD_MAX) {
            char *b = realloc(st->body, st->len + n);
            if (!b) return MHD_NO;
            memcpy(b + st->len, upload_data, n);
            st->body = b;
            st->len += n;
        } else if (!st->too_big) {
            st->too_big = 1;
            free(st->body);
            st->body = NULL;
            st->len = 0;
        }
        if (st->too_big && st->seen > BODY_DISCARD_MAX) return answer(s, c, url, method, st);
        return MHD_YES;
    }
    if (st->answered) return MHD_YES;
    return answer(s, c, url, method, st);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode toe) {
    (void)cls; (void)c; (void)toe;
    conn_state *st = *con_cls;
    if (st) { free(st->body); free(st); }
    *con_cls = NULL;
}

// ---- start-up ----------------------------------------------------------------------------
static int mkdirs(const char *path) {
    char buf[PATH_MAX];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *p = buf + 1; *p; p++)
        if (*p == '/') { *p = 0; mkdir(buf, 0755); *p = '/'; }
    return mkdir(buf, 0755) == 0 || errno == EEXIST ? 0 : -1;
}

// web/ beside the repository's bin/ (bin/viscnn -> ../web), else ./web.
static char *find_web_dir(void) {
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 16);
    if (n > 0) {
        exe[n] = 0;
        for (int up = 0; up < 3; up++) {
            char *sl = strrchr(exe, '/');
            if (!sl) break;
            *sl = 0;
            char cand[PATH_MAX + 32];
            snprintf(cand, sizeof cand, "%s/web/index.html", exe);
            if (!access(cand, R_OK)) { cand[strlen(cand) - 11] = 0; return strdup_check(cand); }
        }
    }
    return strdup_check("web");
}

// What the image set's cached results depend on: every file's path and
// contents (files over 1 MiB, and everything after the first 64 MiB read,
// by size and modification time instead), and the categories. Contents, not
// times, so that a set written again the same (make data) keeps its cache.
static uint64_t main_set_hash(const vc_imageset *set) {
    uint64_t h = hash_str(HASH_SEED, "set");
    size_t budget = 64u << 20;
    char *buf = malloc_check(1u << 20);
    for (int i = 0; i < set->n; i++) {
        const char *p = set->ds.paths[i];
        struct stat st;
        h = hash_str(h, p);
        if (stat(p, &st)) continue;
        size_t n = 0;
        FILE *f = (size_t)st.st_size <= (1u << 20) && (size_t)st.st_size <= budget ? fopen(p, "rb") : NULL;
        if (f) {
            n = fread(buf, 1, 1u << 20, f);
            fclose(f);
            budget -= n;
            h = hash_bytes(h, buf, n);
        } else {
            int64_t v[3] = {(int64_t)st.st_size, (int64_t)st.st_mtim.tv_sec, (int64_t)st.st_mtim.tv_nsec};
            h = hash_bytes(h, v, sizeof v);
        }
        h = hash_bytes(h, &set->cat[i], sizeof(int));
    }
    free(buf);
    for (int c = 0; c < set->n_cat; c++) h = hash_str(h, set->cat_names[c]);
    return h;
}

static int is_loopback(const struct sockaddr *sa) {
    if (sa->sa_family == AF_INET) return (ntohl(((const struct sockaddr_in *)sa)->sin_addr.s_addr) >> 24) == 127;
    if (sa->sa_family == AF_INET6) {
        const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;
        return IN6_IS_ADDR_LOOPBACK(a);
    }
    return 0;
}

// The first view: scores for the default target, the default layout, the
// default circuit's faithfulness. Jobs are queued in that order.
static void precompute(vc_server *s, int *ids, int *n) {
    *n = 0;
    vc_error err;
    scores_req sr = {0};
    snprintf(sr.set, sizeof sr.set, "main");
    sr.metric = VC_M_ACTXGRAD;
    if (target_parse(&sr.t, s->m, s->o.target, &err)) return;
    set_scores_entry *e = scores_get(s, &sr);
    if (e) scores_release(s, e);
    else {
        scores_req *a = malloc_check(sizeof *a);
        *a = sr;
        int id = job_submit(s, "importance", scores_key(s, &sr), "importance for the first view", job_importance, a);
        if (id) ids[(*n)++] = id;
    }
    if (s->main_set.n_cat >= 2) {
        layout_req *l = calloc_check(1, sizeof *l);
        l->p = VC_PROJ_MDS_SMOOTH;
        l->sr = sr;
        target_parse(&l->sr.t, s->m, "loss", &err);
        uint64_t key = hash_str(hash_str(s->model_hash, "layout"), vc_projection_names[l->p]);
        key = hash_bytes(key, &(uint64_t){scores_key(s, &l->sr)}, 8);
        char path[4096];
        cache_path(s, path, sizeof path, "layout", key, "json");
        if (access(path, R_OK)) {
            int id = job_submit(s, "layout", key, "layout for the first view (mds-smooth)", job_layout, l);
            if (id) ids[(*n)++] = id;
        } else free(l);
    }
    // the default circuit's faithfulness (the circuit panel's curve)
    circuit_req *c = calloc_check(1, sizeof *c);
    c->sr = sr;
    snprintf(c->scores, sizeof c->scores, "overall");
    if (srv_mode_parse(c, "threshold", NULL, NULL, &err)) { free(c); return; }
    uint64_t key = circuit_key(s, c);
    char path[4096];
    cache_path(s, path, sizeof path, "faith", key, "json");
    if (access(path, R_OK)) {
        int id = job_submit(s, "faithfulness", key, "faithfulness of the first view's circuit", job_faithfulness, c);
        if (id) ids[(*n)++] = id;
    } else free(c);
}

static int parse_host(const char *host, int port, struct sockaddr_storage *ss, socklen_t *len, vc_error *err) {
    struct addrinfo hints = {0}, *res;
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE;
    char ps[16];
    snprintf(ps, sizeof ps, "%d", port);
    int rc = getaddrinfo(host, ps, &hints, &res);
    if (rc) return vc_fail(err, VC_EINPUT, "--host %s: %s", host, gai_strerror(rc));
    memcpy(ss, res->ai_addr, res->ai_addrlen);
    *len = res->ai_addrlen;
    freeaddrinfo(res);
    return VC_OK;
}

int server_run(const server_opts *o, vc_error *err) {
    vc_server *s = calloc_check(1, sizeof *s);
    s->o = *o;
    if (!s->o.host) s->o.host = "127.0.0.1";
    if (!s->o.target) s->o.target = "loss";
    s->started = now_s();
    s->featvis_missing = srv_featvis_missing();
    pthread_mutex_init(&s->mu, NULL);
    pthread_mutex_init(&s->cache_mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    pthread_cond_init(&s->done_cv, NULL);
    struct sockaddr_storage addr;
    socklen_t alen;
    struct MHD_Daemon *d = NULL;
    int rc = parse_host(s->o.host, o->port, &addr, &alen, err);
    if (!rc) rc = vc_model_load(&s->m, o->model_path, err);
    if (!rc) {
        vc_target t;
        rc = target_parse(&t, s->m, s->o.target, err);
    }
    if (!rc) {
        rc = imageset_open_path(&s->main_set, s->m, o->images, err);
        if (!rc) imageset_warn(&s->main_set);
        if (!rc && s->main_set.n < 1) rc = vc_fail(err, VC_EINPUT, "--images %s: no images", o->images);
    }
    if (!rc) {
        dgraph_build(&s->g, s->m);
        s->model_hash = hash_bytes(hash_str(HASH_SEED, "model"), s->m->blob, s->m->blob_size);
        snprintf(s->model_hex, sizeof s->model_hex, "%016llx", (unsigned long long)s->model_hash);
        s->main_set_hash = main_set_hash(&s->main_set);
        s->cache_dir = strdup_check(o->cache_dir);
        s->upload_dir = malloc_check(strlen(o->cache_dir) + 16);
        sprintf(s->upload_dir, "%s/uploads", o->cache_dir);
        if (mkdirs(s->cache_dir) || mkdirs(s->upload_dir))
            rc = vc_fail(err, VC_EINPUT, "--cache %s: cannot create: %s", o->cache_dir, strerror(errno));
    }
    if (!rc) {
        s->web_dir = o->web_dir ? strdup_check(o->web_dir) : find_web_dir();
        char real[PATH_MAX], idx[PATH_MAX + 16];
        snprintf(idx, sizeof idx, "%s/index.html", s->web_dir);
        if (!realpath(s->web_dir, real) || access(idx, R_OK))
            rc = vc_fail(err, VC_EINPUT, "web folder %s: no index.html there (give --web DIR)", s->web_dir);
        else {
            s->web_real = strdup_check(real);
            char three[PATH_MAX + 64];
            snprintf(three, sizeof three, "%s/node_modules/three/build/three.module.js", real);
            if (access(three, R_OK))
                fprintf(stderr, "viscnn serve: warning: %s is missing: the page needs three.js (run `npm ci` in web/, "
                                "or scripts/install-deps.sh)\n", three);
        }
    }
    if (rc) goto out;
    s->max_threads = o->threads > 0 ? o->threads : omp_get_max_threads();

    // signals are taken by sigwait below; every thread started from here on
    // inherits the block
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);
    if (worker_start(s)) { rc = vc_fail(err, VC_EINTERNAL, "cannot start the compute thread"); goto out; }
    unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL | MHD_USE_ERROR_LOG;
    if (addr.ss_family == AF_INET6) flags |= MHD_USE_IPv6;
    d = MHD_start_daemon(flags, 0, NULL, NULL, on_request, s,
                         MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr,
                         MHD_OPTION_CONNECTION_LIMIT, (unsigned)1000,
                         MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)120,
                         MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(256 * 1024),
                         MHD_OPTION_LISTEN_BACKLOG_SIZE, (unsigned)1024,
                         MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL,
                         MHD_OPTION_UNESCAPE_CALLBACK, unescape, NULL,
                         MHD_OPTION_END);
    if (!d) {
        rc = vc_fail(err, VC_EINPUT, "cannot listen on %s port %d: %s", s->o.host, o->port, strerror(errno));
        worker_stop(s);
        jobs_free(s);
        goto out;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    int port = info ? info->port : o->port;
    if (!is_loopback((struct sockaddr *)&addr))
        fprintf(stderr, "viscnn serve: warning: listening on %s, reachable from other machines; the API has no "
                        "authentication and runs computations for anyone who can connect\n", s->o.host);
    int v6 = addr.ss_family == AF_INET6;
    printf("viscnn serve: http://%s%s%s:%d/  (model %s, %d images in %d categories from %s; cache %s; %d threads)\n",
           v6 ? "[" : "", s->o.host, v6 ? "]" : "", port, s->m->name, s->main_set.n, s->main_set.n_cat,
           s->main_set.source, s->cache_dir, s->max_threads);
    fflush(stdout);

    int ids[4], n_pre = 0, announced = 0;
    if (!o->no_precompute) precompute(s, ids, &n_pre);
    if (!n_pre) {
        printf("viscnn serve: first view ready (%s)\n", o->no_precompute ? "computed on demand" : "from the cache");
        fflush(stdout);
        announced = 1;
    }
    for (;;) {
        struct timespec ts = {0, 200 * 1000 * 1000};
        int sig = sigtimedwait(&sigs, NULL, &ts);
        if (sig == SIGINT || sig == SIGTERM) break;
        if (!announced) {
            int pending = 0, failed = 0;
            pthread_mutex_lock(&s->mu);
            for (job *j = s->jobs; j; j = j->next_all)
                for (int k = 0; k < n_pre; k++)
                    if (j->id == ids[k]) { pending += j->state < JOB_DONE; failed += j->state > JOB_DONE; }
            pthread_mutex_unlock(&s->mu);
            if (!pending) {
                printf("viscnn serve: first view %s (%.1f s)\n", failed ? "precomputed with errors (see above)" : "ready",
                       now_s() - s->started);
                fflush(stdout);
                announced = 1;
            }
        }
    }
    printf("viscnn serve: stopping\n");
    fflush(stdout);
    worker_stop(s);        // first: requests waiting for it are answered, so that
    MHD_stop_daemon(d);    // the connection threads this joins can finish
    jobs_free(s);
out:
    scores_cache_free(s);
    dgraph_free(&s->g);
    imageset_free(&s->main_set);
    vc_model_free(s->m);
    free(s->cache_dir); free(s->upload_dir); free(s->web_dir); free(s->web_real);
    free(s);
    return rc;
}
