// top_kernels.c: the ten most important kernels (edges) for a class over a
// folder of images, by the actxgrad metric — the top rows of the edge scores
// that `viscnn importance MODEL --images FOLDER --target class:K -o S.csv`
// writes (images in name order, batches of 8, so the sums are the same).
//   ./top_kernels MODEL FOLDER CLASS
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <viscnn.h>

static int cmp_name(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

int main(int argc, char **argv) {
    if (argc != 4) { fprintf(stderr, "usage: top_kernels MODEL FOLDER CLASS\n"); return 2; }
    DIR *d = opendir(argv[2]);
    if (!d) { fprintf(stderr, "top_kernels: %s: cannot open the folder\n", argv[2]); return 2; }
    char *names[10000];
    int n = 0;
    for (struct dirent *de; (de = readdir(d)) && n < 10000;) {
        const char *dot = strrchr(de->d_name, '.');
        if (dot && (!strcasecmp(dot, ".png") || !strcasecmp(dot, ".jpg") || !strcasecmp(dot, ".jpeg"))) names[n++] = strdup(de->d_name);
    }
    closedir(d);
    qsort(names, n, sizeof *names, cmp_name);
    vc_error e;
    vc_model *m = NULL;
    vc_scoreset *s = NULL;
    char target[64], path[4096];
    snprintf(target, sizeof target, "class:%s", argv[3]);
    int c, h, w, rc = vc_model_load(&m, argv[1], &e) || vc_model_node(m, 0, NULL, NULL, &c, &h, &w, &e) ||
                      vc_importance_new(&s, m, "actxgrad", target, 8, &e);
    size_t sz = (size_t)c * h * w;
    float *x = rc ? NULL : malloc(sz * (n ? n : 1) * sizeof(float));
    for (int k = 0; !rc && k < n; k++) {
        snprintf(path, sizeof path, "%s/%s", argv[2], names[k]);
        rc = vc_image_preprocess(m, path, x + k * sz, &e);
    }
    if (!rc) rc = vc_importance_add(s, x, n, NULL, &e) || vc_importance_finish(s, &e);
    int n_layers = 0;
    if (!rc) rc = vc_importance_layers(s, &n_layers, &e);
    struct { float score; int layer, out, in; } best[10];
    int nb = 0;
    for (int l = 0; !rc && l < n_layers; l++) {
        int node, cout, cg;
        const float *k;
        rc = vc_importance_layer(s, l, &node, &cout, &cg, NULL, &k, &e);
        for (int j = 0; !rc && j < cout; j++)
            for (int i = 0; i < cg; i++) {   // insert into the sorted top ten (ties: earlier kernel first)
                float v = k[(size_t)j * cg + i];
                int p = nb < 10 ? nb++ : 10;
                while (p > 0 && best[p - 1].score < v) { if (p < 10) best[p] = best[p - 1]; p--; }
                if (p < 10) { best[p].score = v; best[p].layer = node; best[p].out = j; best[p].in = i; }
            }
    }
    for (int b = 0; !rc && b < nb; b++) {
        const char *name;
        vc_model_node(m, best[b].layer, &name, NULL, NULL, NULL, NULL, &e);
        printf("%s %d %d %.9g\n", name, best[b].out, best[b].in, best[b].score);
    }
    if (rc) fprintf(stderr, "top_kernels: %s\n", e.msg);
    for (int k = 0; k < n; k++) free(names[k]);
    free(x);
    vc_importance_free(s);
    vc_model_free(m);
    return rc ? 2 : 0;
}
