// cmd_eval.c: viscnn eval — the accuracy of a model on a labelled set, overall
// and per class: an IDX pair, a folder of class subfolders, or a
// preprocessed batch with its labels.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cli.h"

static const char *label_of(const vc_model *m, int k, int n_labels) {
    const char *s = "";
    if (k < n_labels) vc_model_label(m, k, &s, NULL);
    return s;
}

int cmd_eval(int argc, char **argv, vc_error *err) {
    cli_args a;
    int rc = cli_parse(&a, "eval", argc, argv, NULL, err);
    if (rc) return rc;
    if (a.n_pos < 1) return cli_fail(err, VC_EINPUT, "eval: missing MODEL argument");
    if (a.n_pos > 1) return cli_fail(err, VC_EINPUT, "eval: unexpected argument '%s'", a.pos[1]);
    int batch, limit;
    if ((rc = cli_int(&a, "batch", 500, 1, 1 << 20, &batch, err)) || (rc = cli_int(&a, "limit", 0, 0, 2147483647, &limit, err)))
        return rc;
    int json = cli_flag(&a, "json");
    vc_model *m = NULL;
    if ((rc = vc_model_load(&m, a.pos[0], err))) return rc;
    vc_labelled *s = NULL;
    if (cli_opt(&a, "input")) {   // --input X.npy --labels L.npy
        vc_imageset *is = NULL;
        rc = cli_open_set(&is, m, &a, 0, err);
        if (!rc && !cli_opt(&a, "labels")) rc = cli_fail(err, VC_EINPUT, "eval: --input X.npy needs --labels L.npy");
        if (!rc) rc = vc_labelled_from_imageset(&s, is, limit, err);
        vc_imageset_free(is);
    } else {
        rc = cli_open_labelled(&s, m, &a, "idx", "labels", "images", limit, 1, err);
    }
    if (!rc) rc = cli_check_unused(&a, err);
    int n = 0, output, n_labels, kc, kh, kw;
    const int *labels = NULL;
    if (!rc) vc_labelled_size(s, &n, &labels, NULL);
    vc_model_size(m, NULL, &output, &n_labels, NULL);
    vc_model_node(m, output, NULL, NULL, &kc, &kh, &kw, NULL);
    const int K = kc * kh * kw;
    for (int i = 0; !rc && i < n; i++)
        if (labels[i] < 0 || labels[i] >= K)
            rc = cli_fail(err, VC_EINPUT, "eval: label %d of image %d is outside the model's %d classes", labels[i], i, K);
    int *pred = NULL;
    double acc = 0;
    if (!rc) {
        pred = cli_malloc((size_t)(n ? n : 1) * sizeof(int));
        rc = vc_evaluate(m, s, batch, pred, &acc, err);
    }
    if (!rc) {
        long *hit = cli_calloc(K, sizeof(long)), *tot = cli_calloc(K, sizeof(long));
        long correct = 0;
        for (int i = 0; i < n; i++) {
            tot[labels[i]]++;
            if (pred[i] == labels[i]) { hit[labels[i]]++; correct++; }
        }
        if (json) {
            printf("{\"model\": ");
            vc_json_string(stdout, cli_model_path(m));
            printf(", \"images\": %d, \"correct\": %ld, \"accuracy\": %.6f, \"classes\": [", n, correct,
                   (double)correct / (n ? n : 1));
            int first = 1;
            for (int k = 0; k < K; k++) {
                if (!tot[k]) continue;
                printf("%s\n {\"class\": %d, \"name\": ", first ? "" : ",", k);
                vc_json_string(stdout, label_of(m, k, n_labels));
                printf(", \"images\": %ld, \"correct\": %ld, \"accuracy\": %.6f}", tot[k], hit[k], (double)hit[k] / tot[k]);
                first = 0;
            }
            printf("]}\n");
        } else {
            printf("accuracy %.2f%% (%ld/%d)\n", 100.0 * correct / (n ? n : 1), correct, n);
            for (int k = 0; k < K; k++)
                if (tot[k])
                    printf("  %3d %-24s %6.2f%% (%ld/%ld)\n", k, k < n_labels ? vc_str(label_of(m, k, n_labels)) : "", 100.0 * hit[k] / tot[k],
                           hit[k], tot[k]);
        }
        free(hit);
        free(tot);
    }
    free(pred);
    vc_labelled_free(s);
    vc_model_free(m);
    return rc;
}
