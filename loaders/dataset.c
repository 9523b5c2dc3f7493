// dataset.c: listing image sets (see dataset.h).
#include "dataset.h"
#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include "../engine/util.h"

static int is_image_name(const char *s) {
    const char *dot = strrchr(s, '.');
    return dot && (!strcasecmp(dot, ".png") || !strcasecmp(dot, ".jpg") || !strcasecmp(dot, ".jpeg"));
}
static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

// Sorted entries of dir: images (want_dirs=0) or subfolders (1).
static int list_dir(const char *dir, int want_dirs, char ***out, int *n, vc_error *err) {
    DIR *dp = opendir(dir);
    if (!dp) return vc_fail(err, VC_EINPUT, "%s: cannot open folder: %s", dir, strerror(errno));
    int cap = 64;
    char **v = malloc_check(cap * sizeof(char *));
    *n = 0;
    struct dirent *e;
    while ((e = readdir(dp))) {
        if (e->d_name[0] == '.') continue;
        char p[4096];
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        struct stat st;
        if (stat(p, &st) != 0) continue;
        int isdir = S_ISDIR(st.st_mode);
        if (want_dirs ? !isdir : (isdir || !is_image_name(e->d_name))) continue;
        if (*n == cap) { v = realloc(v, (cap *= 2) * sizeof(char *)); VC_ASSERT(v); }
        v[(*n)++] = strdup_check(e->d_name);
    }
    closedir(dp);
    qsort(v, *n, sizeof(char *), cmp_str);
    *out = v;
    return VC_OK;
}

static void add_image(vc_dataset *d, int *cap, const char *path, int cat) {
    if (d->n == *cap) {
        *cap = *cap ? *cap * 2 : 64;
        d->paths = realloc(d->paths, *cap * sizeof(char *));
        d->cat = realloc(d->cat, *cap * sizeof(int));
        VC_ASSERT(d->paths && d->cat);
    }
    d->paths[d->n] = strdup_check(path);
    d->cat[d->n++] = cat;
}

int dataset_open(vc_dataset *d, const char *path, vc_error *err) {
    memset(d, 0, sizeof *d);
    struct stat st;
    if (stat(path, &st) != 0) return vc_fail(err, VC_EINPUT, "%s: %s", path, strerror(errno));
    int cap = 0;
    const char *base = strrchr(path, '/');
    base = base && base[1] ? base + 1 : path;
    size_t pl = strlen(path);
    if (S_ISREG(st.st_mode) && pl > 4 && !strcasecmp(path + pl - 4, ".txt")) return dataset_open_list(d, path, err);
    if (!S_ISDIR(st.st_mode)) {
        add_image(d, &cap, path, 0);
        d->n_cat = 1;
        d->cat_names = malloc_check(sizeof(char *));
        d->cat_names[0] = strdup_check(base);
        return VC_OK;
    }
    char **subs = NULL, **imgs = NULL;
    int ns = 0, ni = 0, rc = list_dir(path, 1, &subs, &ns, err);
    if (!rc) rc = list_dir(path, 0, &imgs, &ni, err);
    if (!rc && ns > 0) {
        d->by_folder = 1;
        d->cat_names = malloc_check(ns * sizeof(char *));
        for (int s = 0; s < ns && !rc; s++) {
            char sp[4096];
            snprintf(sp, sizeof sp, "%s/%s", path, subs[s]);
            char **ci = NULL;
            int nci = 0;
            rc = list_dir(sp, 0, &ci, &nci, err);
            char **deeper = NULL;
            int nd = 0;
            if (!rc) rc = list_dir(sp, 1, &deeper, &nd, err);
            if (!rc && nd > 0) {   // class folders are read one level deep
                d->n_nested += nd;
                if (!d->nested_first) {
                    char np[8192];
                    snprintf(np, sizeof np, "%s/%s", sp, deeper[0]);
                    d->nested_first = strdup_check(np);
                }
            }
            for (int k = 0; k < nd; k++) free(deeper[k]);
            free(deeper);
            if (!rc && nci == 0) {
                d->n_empty++;
                if (!d->empty_first) d->empty_first = strdup_check(sp);
            }
            if (!rc && nci > 0) {
                int c = d->n_cat++;
                d->cat_names[c] = strdup_check(subs[s]);
                for (int k = 0; k < nci; k++) {
                    char ip[8192];
                    snprintf(ip, sizeof ip, "%s/%s", sp, ci[k]);
                    add_image(d, &cap, ip, c);
                }
            }
            for (int k = 0; k < nci; k++) free(ci[k]);
            free(ci);
        }
        if (!rc && ni > 0) {   // images beside the class folders belong to no class
            d->n_beside = ni;
            char ip[8192];
            snprintf(ip, sizeof ip, "%s/%s", path, imgs[0]);
            d->beside_first = strdup_check(ip);
        }
    } else if (!rc) {
        d->n_cat = 1;
        d->cat_names = malloc_check(sizeof(char *));
        d->cat_names[0] = strdup_check(base);
        for (int k = 0; k < ni; k++) {
            char ip[8192];
            snprintf(ip, sizeof ip, "%s/%s", path, imgs[k]);
            add_image(d, &cap, ip, 0);
        }
    }
    for (int k = 0; k < ns; k++) free(subs[k]);
    for (int k = 0; k < ni; k++) free(imgs[k]);
    free(subs); free(imgs);
    if (!rc && d->n == 0) rc = vc_fail(err, VC_EINPUT, "%s: no images (.png, .jpg, .jpeg) in this folder or its subfolders", path);
    if (rc) dataset_free(d);
    return rc;
}

void dataset_free(vc_dataset *d) {
    for (int i = 0; i < d->n; i++) free(d->paths[i]);
    for (int i = 0; i < d->n_cat; i++) free(d->cat_names[i]);
    free(d->paths); free(d->cat); free(d->cat_names);
    free(d->beside_first); free(d->nested_first); free(d->empty_first);
    memset(d, 0, sizeof *d);
}

// Case folded, with ' ', '_' and '-' one character.
static int name_char(unsigned char c) {
    if (c == ' ' || c == '_' || c == '-') return ' ';
    return c >= 'A' && c <= 'Z' ? c + 32 : c;
}

int dataset_name_eq(const char *a, const char *b) {
    for (; *a && *b; a++, b++)
        if (name_char((unsigned char)*a) != name_char((unsigned char)*b)) return 0;
    return *a == *b;
}

int dataset_find_label(const vc_model *m, const char *name) {
    for (int k = 0; k < m->n_labels; k++)   // an exact match wins over a loose one
        if (!strcmp(m->labels[k], name)) return k;
    for (int k = 0; k < m->n_labels; k++)
        if (dataset_name_eq(m->labels[k], name)) return k;
    return -1;
}

int dataset_label(const vc_dataset *d, int cat, const vc_model *m) {
    if (!d->by_folder) return -1;
    const char *name = d->cat_names[cat];
    int k = dataset_find_label(m, name);
    if (k >= 0) return k;
    char *end;
    long v = strtol(name, &end, 10);
    if (end != name && !*end && v >= 0 && (size_t)v < m->nodes[m->output].size) return (int)v;
    return -1;
}
