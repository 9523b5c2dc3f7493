// checkpoint.c: a rank's partial sums on disk (checkpoint.h).
#include "../loaders/atomic_write.h"
#include "checkpoint.h"
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "../engine/util.h"

#define CKPT_MAGIC "viscnn-checkpoint 1\n"

static void ckpt_path(char *buf, size_t len, const char *dir, int rank, int size) {
    snprintf(buf, len, "%s/rank-%d-of-%d.ckpt", dir, rank, size);
}

int ckpt_load(const char *dir, const char *fingerprint, int rank, int size, double *state, size_t n, int *next,
              int *found, vc_error *err) {
    char path[4096];
    ckpt_path(path, sizeof path, dir, rank, size);
    *found = 0;
    // made now, so that an unusable DIR fails before the long work
    if (mkdir(dir, 0755) && errno != EEXIST) return vc_fail(err, VC_EINPUT, "--checkpoint %s: %s", dir, strerror(errno));
    FILE *f = fopen(path, "rb");
    if (!f) {
        if (errno == ENOENT) return VC_OK;
        return vc_fail(err, VC_EINPUT, "--checkpoint %s: %s", path, strerror(errno));
    }
    struct stat st;
    char line[8192], job[8192];
    size_t nd = 0;
    int rc = VC_OK, u = -1;
    if (fstat(fileno(f), &st) || !fgets(line, sizeof line, f) || strcmp(line, CKPT_MAGIC))
        rc = vc_fail(err, VC_EINPUT, "--checkpoint %s: not a viscnn checkpoint", path);
    else if (!fgets(job, sizeof job, f) || strncmp(job, "job ", 4) || !strchr(job, '\n'))
        rc = vc_fail(err, VC_EINPUT, "--checkpoint %s: no job line", path);
    else if (!fgets(line, sizeof line, f) || sscanf(line, "next %d doubles %zu\n", &u, &nd) != 2 || u < 0)
        rc = vc_fail(err, VC_EINPUT, "--checkpoint %s: no \"next U doubles N\" line", path);
    if (!rc) {
        *strchr(job, '\n') = 0;
        long head = ftell(f);
        if (strcmp(job + 4, fingerprint))
            rc = vc_fail(err, VC_EINPUT, "--checkpoint %s: written by a different job (%s), not this one (%s); "
                         "give another DIR or delete it", path, job + 4, fingerprint);
        else if (nd != n || head < 0 || (unsigned long long)st.st_size != (unsigned long long)head + (unsigned long long)n * sizeof(double))
            rc = vc_fail(err, VC_EINPUT, "--checkpoint %s: %lld bytes, expected %zu values after the header", path,
                         (long long)st.st_size, n);
        else if (fread(state, sizeof(double), n, f) != n)
            rc = vc_fail(err, VC_EINPUT, "--checkpoint %s: short read", path);
    }
    fclose(f);
    if (!rc) { *next = u; *found = 1; }
    return rc;
}

int ckpt_save(const char *dir, const char *fingerprint, int rank, int size, const double *state, size_t n, int next,
              vc_error *err) {
    char path[4096];
    if (mkdir(dir, 0755) && errno != EEXIST) return vc_fail(err, VC_EINPUT, "--checkpoint %s: %s", dir, strerror(errno));
    ckpt_path(path, sizeof path, dir, rank, size);
    vc_wfile w;   // the one atomic writer: unique temporary, fsync, rename (loaders/atomic_write.c)
    int rc = vc_wopen(&w, path, err);
    if (rc) return rc;
    fputs(CKPT_MAGIC, w.fp);
    fprintf(w.fp, "job %s\nnext %d doubles %zu\n", fingerprint, next, n);
    return vc_wcommit(&w, fwrite(state, sizeof(double), n, w.fp) == n, err);
}
