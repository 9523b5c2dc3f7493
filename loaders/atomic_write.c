// atomic_write.c: see atomic_write.h.
#include "atomic_write.h"
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "../engine/util.h"

// Live temporaries, for the signal handler: it may only read these fixed
// buffers (async-signal-safe: unlink, signal, raise).
#define SLOTS 64
#define TMP_MAX_LEN 4096
static char live[SLOTS][TMP_MAX_LEN];
static volatile sig_atomic_t used[SLOTS];
static FILE *volatile owner[SLOTS];   // for vc_wclose_fp
static vc_wfile byfp[SLOTS];
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;

static void on_signal(int sig) {
    for (int i = 0; i < SLOTS; i++)
        if (used[i]) unlink(live[i]);
    signal(sig, SIG_DFL);
    raise(sig);
}

static void install_handlers(void) {
    static int done;
    if (done) return;
    done = 1;
    int sigs[2] = {SIGINT, SIGTERM};
    for (int k = 0; k < 2; k++) {
        struct sigaction old;
        if (sigaction(sigs[k], NULL, &old) == 0 && old.sa_handler == SIG_DFL) {
            struct sigaction sa;
            memset(&sa, 0, sizeof sa);
            sa.sa_handler = on_signal;
            sigemptyset(&sa.sa_mask);
            sigaction(sigs[k], &sa, NULL);
        }
    }
}

int vc_wopen(vc_wfile *w, const char *path, vc_error *err) {
    memset(w, 0, sizeof *w);
    w->slot = -1;
    const char *slash = strrchr(path, '/');
    size_t dl = slash ? (size_t)(slash - path + 1) : 0;
    const char *base = path + dl;
    if (!*base) return vc_fail(err, VC_EINPUT, "%s: cannot write: the path names a folder", path);
    size_t tl = strlen(path) + 32;
    if (tl >= TMP_MAX_LEN) return vc_fail(err, VC_EINPUT, "%s: cannot write: the path is too long", path);
    char *tmp = malloc_check(tl);
    static unsigned long serial;
    int fd = -1;
    for (int attempt = 0; attempt < 100 && fd < 0; attempt++) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        unsigned long r = (unsigned long)ts.tv_nsec ^ ((unsigned long)getpid() << 16) ^ (__atomic_fetch_add(&serial, 1, __ATOMIC_RELAXED) * 2654435761UL);
        snprintf(tmp, tl, "%.*s.%s.tmp-%06lx", (int)dl, path, base, r & 0xffffff);
        fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0666);   // umask applies
        if (fd < 0 && errno != EEXIST) break;
    }
    if (fd < 0) {
        int e = errno;
        free(tmp);
        return vc_fail(err, VC_EINPUT, "%s: cannot write: %s", path, strerror(e));
    }
    w->fp = fdopen(fd, "wb");
    if (!w->fp) { close(fd); unlink(tmp); free(tmp); return vc_fail(err, VC_EINTERNAL, "%s: cannot write: out of memory", path); }
    w->tmp = tmp;
    w->path = strdup_check(path);
    pthread_mutex_lock(&mu);
    install_handlers();
    for (int i = 0; i < SLOTS; i++)
        if (!used[i]) {
            memcpy(live[i], tmp, strlen(tmp) + 1);
            used[i] = 1;
            w->slot = i;
            break;
        }
    pthread_mutex_unlock(&mu);
    return VC_OK;
}

static void release(vc_wfile *w) {
    if (w->slot >= 0) {
        pthread_mutex_lock(&mu);
        used[w->slot] = 0;
        owner[w->slot] = NULL;
        pthread_mutex_unlock(&mu);
    }
    free(w->tmp);
    free(w->path);
    w->tmp = w->path = NULL;
    w->fp = NULL;
    w->slot = -1;
}

void vc_wabort(vc_wfile *w) {
    if (w->fp) fclose(w->fp);
    if (w->tmp) unlink(w->tmp);
    release(w);
}

static void fsync_dir(const char *path) {
    const char *slash = strrchr(path, '/');
    char dir[TMP_MAX_LEN];
    if (!slash) strcpy(dir, ".");
    else snprintf(dir, sizeof dir, "%.*s", (int)(slash - path == 0 ? 1 : slash - path), path);
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) { fsync(fd); close(fd); }
}

int vc_wcommit(vc_wfile *w, int ok, vc_error *err) {
    int e = 0;
    if (ok && (fflush(w->fp) != 0 || ferror(w->fp))) { ok = 0; e = errno; }
    if (ok && fsync(fileno(w->fp)) != 0) { ok = 0; e = errno; }
    if (fclose(w->fp) != 0 && ok) { ok = 0; e = errno; }
    w->fp = NULL;
    if (ok && rename(w->tmp, w->path) != 0) { ok = 0; e = errno; }
    if (!ok) {
        unlink(w->tmp);
        int rc = vc_fail(err, VC_EINPUT, "%s: write failed%s%s", w->path, e ? ": " : "", e ? strerror(e) : "");
        release(w);
        return rc;
    }
    fsync_dir(w->path);
    release(w);
    return VC_OK;
}

FILE *vc_wopen_fp(const char *path, vc_error *err) {
    vc_wfile w;
    if (vc_wopen(&w, path, err)) return NULL;
    if (w.slot < 0) {   // more than SLOTS files open at once
        vc_wabort(&w);
        vc_fail(err, VC_EINTERNAL, "%s: too many outputs open at once", path);
        return NULL;
    }
    pthread_mutex_lock(&mu);
    byfp[w.slot] = w;
    owner[w.slot] = w.fp;
    pthread_mutex_unlock(&mu);
    return w.fp;
}

int vc_wclose_fp(FILE *fp, int ok, vc_error *err) {
    vc_wfile w = {0};
    int found = 0;
    pthread_mutex_lock(&mu);
    for (int i = 0; i < SLOTS; i++)
        if (used[i] && owner[i] == fp) { w = byfp[i]; found = 1; break; }
    pthread_mutex_unlock(&mu);
    if (!found) return vc_fail(err, VC_EINTERNAL, "vc_wclose_fp: not a file from vc_wopen_fp");
    return vc_wcommit(&w, ok, err);
}
