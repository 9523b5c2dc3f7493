// cmd_predict.c: viscnn predict — the top classes of images: files, folders
// (read like --images PATH; class folders give labels, and then accuracy),
// or a preprocessed batch (--input X.npy). Images run in chunks of CHUNK, so
// a folder of any size needs memory for one chunk (all of them only with
// --save-input).
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "cli.h"

#define CHUNK 64

typedef struct {
    int n, cap;
    char **path;              // NULL for --input rows
    int *label;               // -1: unknown
} predict_list;

static void list_add(predict_list *l, const char *path, int label) {
    if (l->n == l->cap) {
        l->cap = l->cap ? 2 * l->cap : 64;
        l->path = realloc(l->path, l->cap * sizeof(char *));
        l->label = realloc(l->label, l->cap * sizeof(int));
        if (!l->path || !l->label) { fputs("viscnn: out of memory\n", stderr); abort(); }
    }
    l->path[l->n] = path ? cli_strdup(path) : NULL;
    l->label[l->n++] = label;
}

static void list_free(predict_list *l) {
    for (int i = 0; i < l->n; i++) free(l->path[i]);
    free(l->path);
    free(l->label);
}

// Files as given; folders expanded (class folders: each image with its label).
static int collect(predict_list *l, const vc_model *m, int n, const char *const *paths, vc_error *err) {
    for (int k = 0; k < n; k++) {
        struct stat st;
        if (stat(paths[k], &st) == 0 && S_ISDIR(st.st_mode)) {
            vc_imageset *s;
            int rc = vc_imageset_open(&s, m, paths[k], err), n = 0;
            if (rc) return rc;
            vc_imageset_warn(s);
            vc_imageset_size(s, &n, NULL, NULL, NULL);
            for (int i = 0; i < n; i++) {
                const char *path;
                int label;
                vc_imageset_image(s, i, &path, &label, NULL, NULL);
                list_add(l, path, label);
            }
            vc_imageset_free(s);
        } else list_add(l, paths[k], -1);
    }
    return VC_OK;
}

static const char *label_of(const vc_model *m, int k) {
    const char *s = "";
    vc_model_label(m, k, &s, NULL);
    return s;
}

// Top-`top` classes of one output row by logit (ties: the lower index), with softmax probabilities.
static void top_classes(const float *y, int K, int top, int *idx, double *p) {
    double mx = -INFINITY, s = 0;
    for (int k = 0; k < K; k++) if (y[k] > mx) mx = y[k];
    for (int k = 0; k < K; k++) s += exp((double)y[k] - mx);
    for (int k = 0; k < K; k++) idx[k] = k;
    for (int t = 0; t < top; t++)   // partial selection sort
        for (int k = t + 1; k < K; k++)
            if (y[idx[k]] > y[idx[t]] || (y[idx[k]] == y[idx[t]] && idx[k] < idx[t])) {
                int tmp = idx[t]; idx[t] = idx[k]; idx[k] = tmp;
            }
    for (int t = 0; t < top; t++) p[t] = exp((double)y[idx[t]] - mx) / s;
}

int cmd_predict(int argc, char **argv, vc_error *err) {
    cli_args a;
    int rc = cli_parse(&a, "predict", argc, argv, NULL, err);
    if (rc) return rc;
    int top, json = cli_flag(&a, "json");
    const char *save = cli_opt(&a, "save-input"), *npy = cli_opt(&a, "input");
    if ((rc = cli_int(&a, "top", 5, 1, 1000000, &top, err))) return rc;
    if ((rc = cli_check_unused(&a, err))) return rc;
    if (a.n_pos < 1) return cli_fail(err, VC_EINPUT, "predict: missing MODEL argument");
    if (npy && a.n_pos > 1) return cli_fail(err, VC_EINPUT, "predict: give images or --input, not both");
    if (!npy && a.n_pos < 2) return cli_fail(err, VC_EINPUT, "predict: no input: give images, folders or --input X.npy");
    if (save && cli_check_ext("predict", "--save-input", save, (const char *const[]){".npy", NULL}, err) < 0) return VC_EINPUT;
    vc_model *m;
    if ((rc = vc_model_load(&m, a.pos[0], err))) return rc;
    int c, h, w, output, n_labels;
    vc_model_node(m, 0, NULL, NULL, &c, &h, &w, NULL);
    vc_model_size(m, NULL, &output, &n_labels, NULL);
    const size_t in_size = (size_t)c * h * w;
    int kc, kh, kw;
    vc_model_node(m, output, NULL, NULL, &kc, &kh, &kw, NULL);
    const int K = kc * kh * kw;
    if (top > K) top = K;
    predict_list l = {0};
    float *all = NULL, *x = NULL;   // all: --input's batch, or every image for --save-input
    int N = 0;
    if (npy) {
        rc = cli_load_batch(m, &a, 0, NULL, &all, &N, err);
        for (int i = 0; !rc && i < N; i++) list_add(&l, NULL, -1);
    } else {
        rc = collect(&l, m, a.n_pos - 1, a.pos + 1, err);
        N = l.n;
        if (!rc && save) all = cli_malloc((size_t)N * in_size * sizeof(float));
    }
    double t0 = cli_now();
    if (!rc && !npy && !all) x = cli_malloc((size_t)CHUNK * in_size * sizeof(float));
    int *idx = cli_malloc(K * sizeof(int)), *pred = cli_malloc((N ? N : 1) * sizeof(int));
    double *p = cli_malloc(K * sizeof(double));
    vc_session *r = NULL;
    if (!rc) rc = vc_session_new(&r, m, err);
    if (!rc && json) {
        fputs("{\"model\": ", stdout);
        vc_json_string(stdout, cli_model_path(m));
        fputs(", \"predictions\": [", stdout);
    }
    for (int s = 0; !rc && s < N; s += CHUNK) {
        int n = N - s < CHUNK ? N - s : CHUNK;
        float *xs = all ? all + (size_t)s * in_size : x;
        for (int i = 0; !npy && !rc && i < n; i++)
            rc = vc_image_preprocess(m, l.path[s + i], xs + (size_t)i * in_size, err);
        if (!rc) rc = vc_session_infer(r, xs, n, output, err);
        const float *y = NULL;
        if (!rc) rc = vc_session_activation(r, output, &y, NULL, err);
        if (rc) break;
        for (int i = 0; i < n; i++) {
            int g = s + i;
            top_classes(y + (size_t)i * K, K, top, idx, p);
            pred[g] = idx[0];
            char name[32];
            snprintf(name, sizeof name, "input[%d]", g);
            const char *label = l.path[g] ? l.path[g] : name;
            if (json) {
                fputs(g ? ",\n {\"image\": " : "\n {\"image\": ", stdout);
                vc_json_string(stdout, label);
                if (l.label[g] >= 0) printf(", \"label\": %d", l.label[g]);
                fputs(", \"top\": [", stdout);
                for (int t = 0; t < top; t++) {
                    printf("%s{\"class\": %d, \"p\": ", t ? ", " : "", idx[t]);
                    vc_json_number(stdout, p[t]);
                    if (idx[t] < n_labels) { fputs(", \"name\": ", stdout); vc_json_string(stdout, label_of(m, idx[t])); }
                    fputc('}', stdout);
                }
                fputs("]}", stdout);
                continue;
            }
            cli_put_escaped(stdout, label);   // a file name from a folder may hold escape sequences
            fputc('\n', stdout);
            for (int t = 0; t < top; t++)
                printf("  %d. %5d  %.4f  %s\n", t + 1, idx[t], p[t], idx[t] < n_labels ? vc_str(label_of(m, idx[t])) : "");
        }
        if (N > CHUNK) vc_progress("predict", s + n, N);
    }
    int labelled = 0, correct = 0;
    for (int i = 0; !rc && i < N; i++)
        if (l.label[i] >= 0) { labelled++; correct += pred[i] == l.label[i]; }
    if (!rc && json) {
        fputs("]", stdout);
        if (labelled) printf(",\n\"accuracy\": {\"correct\": %d, \"labelled\": %d, \"value\": %.6f}", correct, labelled,
                             (double)correct / labelled);
        fputs("}\n", stdout);
    } else if (!rc && labelled)
        printf("accuracy %.2f%% (%d/%d) on the images in class folders\n", 100.0 * correct / labelled, correct, labelled);
    if (!rc && save) {
        long long dim[4] = {N, c, h, w};
        rc = vc_npy_write(save, all, 4, dim, err);
        char what[64];
        snprintf(what, sizeof what, "%d preprocessed images (%d,%d,%d,%d)", N, N, c, h, w);
        if (!rc) cli_wrote(save, what, t0);
    }
    vc_session_free(r);
    free(idx); free(pred); free(p); free(x); free(all);
    list_free(&l);
    vc_model_free(m);
    return rc;
}
