// fileio.c: see fileio.h.
#include "fileio.h"
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "../engine/util.h"

static const char *kind(mode_t m) {
    return S_ISDIR(m) ? "a directory" : S_ISFIFO(m) ? "a FIFO" : S_ISCHR(m) ? "a character device" :
           S_ISBLK(m) ? "a block device" : S_ISSOCK(m) ? "a socket" : "not a plain file";
}

int vc_open_regular(const char *path, size_t *size, vc_error *err) {
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
    if (fd < 0) { vc_fail(err, VC_EINPUT, "%s: cannot open: %s", path, strerror(errno)); return -1; }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        vc_fail(err, VC_EINPUT, "%s: cannot stat: %s", path, strerror(errno));
        close(fd);
        return -1;
    }
    if (!S_ISREG(st.st_mode)) {
        vc_fail(err, VC_EINPUT, "%s: not a regular file (%s)", path, kind(st.st_mode));
        close(fd);
        return -1;
    }
    int fl = fcntl(fd, F_GETFL);
    if (fl >= 0) fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
    *size = (size_t)st.st_size;
    return fd;
}

FILE *vc_fopen_regular(const char *path, size_t *size, vc_error *err) {
    int fd = vc_open_regular(path, size, err);
    if (fd < 0) return NULL;
    FILE *f = fdopen(fd, "rb");
    if (!f) { vc_fail(err, VC_EINTERNAL, "%s: cannot open: %s", path, strerror(errno)); close(fd); }
    return f;
}

char *vc_read_file(const char *path, size_t max, size_t *size, vc_error *err) {
    size_t n;
    FILE *f = vc_fopen_regular(path, &n, err);
    if (!f) return NULL;
    if (n > max) {
        fclose(f);
        vc_fail(err, VC_EINPUT, "%s: %zu bytes, more than the %zu this file may have", path, n, max);
        return NULL;
    }
    char *buf = malloc_check(n + 1);
    size_t got = fread(buf, 1, n, f);
    fclose(f);
    if (got != n) { free(buf); vc_fail(err, VC_EINPUT, "%s: read error (the file changed while read?)", path); return NULL; }
    buf[n] = 0;
    if (size) *size = n;
    return buf;
}
