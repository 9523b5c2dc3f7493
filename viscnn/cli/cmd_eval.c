// cmd_eval.c: viscnn eval — the accuracy of a model on a labelled set, overall
// and per class: an IDX pair, a folder of class subfolders, or a
// preprocessed batch with its labels.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cli.h"
#include "../export.h"
#include "../imageset.h"
#include "../../train/train.h"
#include "../../engine/util.h"

int cmd_eval(int argc, char **argv, vc_error *err) {
    cli_args a;
    int rc = cli_parse(&a, "eval", argc, argv, NULL, err);
    if (rc) return rc;
    if (a.n_pos < 1) return vc_fail(err, VC_EINPUT, "eval: missing MODEL argument");
    if (a.n_pos > 1) return vc_fail(err, VC_EINPUT, "eval: unexpected argument '%s'", a.pos[1]);
    int batch, limit;
    if ((rc = cli_int(&a, "batch", 500, 1, 1 << 20, &batch, err)) || (rc = cli_int(&a, "limit", 0, 0, 2147483647, &limit, err)))
        return rc;
    int json = cli_flag(&a, "json");
    vc_model *m = NULL;
    if ((rc = vc_model_load(&m, a.pos[0], err))) return rc;
    train_set s;
    memset(&s, 0, sizeof s);
    if (cli_opt(&a, "input")) {   // --input X.npy --labels L.npy
        vc_imageset is;
        rc = imageset_open(&is, m, &a, 0, err);
        if (!rc && !cli_opt(&a, "labels")) rc = vc_fail(err, VC_EINPUT, "eval: --input X.npy needs --labels L.npy");
        if (!rc) {
            s.d.n = limit > 0 && limit < is.n ? limit : is.n;
            s.f = is.x; is.x = NULL;
            s.labels = is.label; is.label = NULL;
            s.d.f = s.f;
            s.d.labels = s.labels;
        }
        imageset_free(&is);
    } else {
        rc = cli_open_labelled(&s, m, &a, "idx", "labels", "images", limit, 1, err);
    }
    if (!rc) rc = cli_check_unused(&a, err);
    const int K = (int)m->nodes[m->output].size;
    for (int i = 0; !rc && i < s.d.n; i++)
        if (s.d.labels[i] < 0 || s.d.labels[i] >= K)
            rc = vc_fail(err, VC_EINPUT, "eval: label %d of image %d is outside the model's %d classes", s.d.labels[i], i, K);
    int *pred = NULL;
    double acc = 0;
    if (!rc) {
        pred = malloc_check((size_t)(s.d.n ? s.d.n : 1) * sizeof(int));
        rc = train_evaluate(m, &s.d, batch, pred, &acc, err);
    }
    if (!rc) {
        long *hit = calloc_check(K, sizeof(long)), *tot = calloc_check(K, sizeof(long));
        long correct = 0;
        for (int i = 0; i < s.d.n; i++) {
            tot[s.d.labels[i]]++;
            if (pred[i] == s.d.labels[i]) { hit[s.d.labels[i]]++; correct++; }
        }
        if (json) {
            printf("{\"model\": ");
            export_string(stdout, m->path);
            printf(", \"images\": %d, \"correct\": %ld, \"accuracy\": %.6f, \"classes\": [", s.d.n, correct,
                   (double)correct / (s.d.n ? s.d.n : 1));
            int first = 1;
            for (int k = 0; k < K; k++) {
                if (!tot[k]) continue;
                printf("%s\n {\"class\": %d, \"name\": ", first ? "" : ",", k);
                export_string(stdout, k < m->n_labels ? m->labels[k] : "");
                printf(", \"images\": %ld, \"correct\": %ld, \"accuracy\": %.6f}", tot[k], hit[k], (double)hit[k] / tot[k]);
                first = 0;
            }
            printf("]}\n");
        } else {
            printf("accuracy %.2f%% (%ld/%d)\n", 100.0 * correct / (s.d.n ? s.d.n : 1), correct, s.d.n);
            for (int k = 0; k < K; k++)
                if (tot[k])
                    printf("  %3d %-24s %6.2f%% (%ld/%ld)\n", k, k < m->n_labels ? vc_str(m->labels[k]) : "", 100.0 * hit[k] / tot[k],
                           hit[k], tot[k]);
        }
        free(hit);
        free(tot);
    }
    free(pred);
    train_set_free(&s);
    vc_model_free(m);
    return rc;
}
