// imagelist.c: an image set given as a list file (dataset.h): LIST.txt with
// one image per line, "PATH" or "PATH LABEL" (the label after the last tab,
// or else the last space; a path with spaces needs a label, after a tab).
// Relative paths are relative to the list file's folder. Blank lines and
// lines starting with '#' are skipped. Labelled lists have one category per
// label, like class subfolders (integer labels in numeric order, names in
// byte order); an unlabelled list is one category named after the file. The
// images are not opened here: a rank of an MPI run decodes only its share,
// and a missing or broken image fails when it is loaded, naming its path.
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "dataset.h"
#include "../engine/util.h"

typedef struct { char *name; int idx; } label_ref;

static int is_int(const char *s) {
    if (!*s) return 0;
    for (; *s; s++) if (*s < '0' || *s > '9') return 0;
    return 1;
}

static int all_int;
static int cmp_label(const void *a, const void *b) {
    const char *x = *(char *const *)a, *y = *(char *const *)b;
    if (all_int) {
        size_t lx = strlen(x), ly = strlen(y);   // no leading zeros assumed: longer is larger
        while (lx > 1 && *x == '0') { x++; lx--; }
        while (ly > 1 && *y == '0') { y++; ly--; }
        if (lx != ly) return lx < ly ? -1 : 1;
    }
    return strcmp(x, y);
}

int dataset_open_list(vc_dataset *d, const char *path, vc_error *err) {
    memset(d, 0, sizeof *d);
    d->from_list = 1;
    FILE *f = fopen(path, "r");
    if (!f) return vc_fail(err, VC_EINPUT, "%s: %s", path, strerror(errno));
    const char *slash = strrchr(path, '/');
    int dir_len = slash ? (int)(slash - path) : 0;
    char *line = NULL;
    size_t cap_line = 0;
    ssize_t len;
    int cap = 0, lineno = 0, labelled = -1, rc = VC_OK;
    char **labels = NULL;   // (n) per image while reading
    while (!rc && (len = getline(&line, &cap_line, f)) >= 0) {
        lineno++;
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r')) line[--len] = 0;
        if (!len || line[0] == '#') continue;
        if ((size_t)len != strlen(line)) { rc = vc_fail(err, VC_EINPUT, "%s:%d: a NUL byte in the line", path, lineno); break; }
        char *sep = strrchr(line, '\t');
        if (!sep) sep = strrchr(line, ' ');
        char *label = NULL;
        if (sep) { *sep = 0; label = sep + 1; }
        if (sep && (!*label || !*line)) { rc = vc_fail(err, VC_EINPUT, "%s:%d: expected PATH or PATH LABEL", path, lineno); break; }
        if (labelled >= 0 && labelled != (label != NULL)) {
            rc = vc_fail(err, VC_EINPUT, "%s:%d: %s a label, unlike line 1 (label every line or none)", path, lineno,
                         label ? "has" : "lacks");
            break;
        }
        labelled = label != NULL;
        if (d->n == cap) {
            cap = cap ? cap * 2 : 256;
            d->paths = realloc(d->paths, cap * sizeof(char *));
            d->cat = realloc(d->cat, cap * sizeof(int));
            labels = realloc(labels, cap * sizeof(char *));
            VC_ASSERT(d->paths && d->cat && labels);
        }
        if (line[0] == '/' || !dir_len) d->paths[d->n] = strdup_check(line);
        else {
            size_t n = (size_t)dir_len + 1 + strlen(line) + 1;
            d->paths[d->n] = malloc_check(n);
            snprintf(d->paths[d->n], n, "%.*s/%s", dir_len, path, line);
        }
        labels[d->n] = label ? strdup_check(label) : NULL;
        d->cat[d->n++] = 0;
    }
    free(line);
    if (!rc && ferror(f)) rc = vc_fail(err, VC_EINPUT, "%s: read error", path);
    fclose(f);
    if (!rc && d->n == 0) rc = vc_fail(err, VC_EINPUT, "%s: no images listed (one path per line, optionally a label)", path);
    if (!rc && labelled == 1) {
        char **u = malloc_check(d->n * sizeof(char *));
        int nu = 0;
        all_int = 1;
        for (int i = 0; i < d->n; i++) { u[i] = labels[i]; all_int &= is_int(labels[i]); }
        qsort(u, d->n, sizeof(char *), cmp_label);
        for (int i = 0; i < d->n; i++) if (!nu || strcmp(u[nu - 1], u[i])) u[nu++] = u[i];
        d->n_cat = nu;
        d->by_folder = 1;
        d->cat_names = malloc_check(nu * sizeof(char *));
        for (int c = 0; c < nu; c++) d->cat_names[c] = strdup_check(u[c]);
        for (int i = 0; i < d->n; i++) {   // binary search of the sorted names
            int lo = 0, hi = nu - 1;
            while (lo < hi) {
                int mid = (lo + hi) / 2;
                if (cmp_label(&d->cat_names[mid], &labels[i]) < 0) lo = mid + 1; else hi = mid;
            }
            d->cat[i] = lo;
        }
        free(u);
    } else if (!rc) {
        d->n_cat = 1;
        d->cat_names = malloc_check(sizeof(char *));
        d->cat_names[0] = strdup_check(slash ? slash + 1 : path);
    }
    for (int i = 0; labels && i < d->n; i++) free(labels[i]);
    free(labels);
    if (rc) dataset_free(d);
    return rc;
}
