// parity_run.c: viscnn's side of the PyTorch parity test.
//
//   build/tests/parity_run DIR
//
// Reads DIR/model.safetensors, DIR/input.npy and DIR/labels.npy (written by
// tools/torch_dump.py), runs forward and the backward of the cross-entropy
// loss (mean over the batch, eval mode) with parameter gradients, and writes
// DIR/ours.safetensors:
//   "logits"          (N,K)
//   "dinput"          d loss / d input
//   "grad:<param>"    d loss / d param, for every parameter
// and DIR/decisions.npz: every ReLU's and max-pool's decisions of that
// forward (vc_run_decisions, as `viscnn forward --decisions` writes them),
// which tests/parity_check.py replays in PyTorch (tools/replay.py).
// tests/parity_check.py compares all of it with PyTorch.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "viscnn_internal.h"
#include "../loaders/npy.h"
#include "../loaders/npz.h"
#include "../loaders/safetensors.h"

static int die(const char *msg) { fprintf(stderr, "parity_run: %s\n", msg); return 1; }

int main(int argc, char **argv) {
    if (argc < 2) return die("usage: parity_run DIR");
    const char *dir = argv[1];
    char p[4096];
    vc_error err;
    vc_model *m;
    vc_npy x, lab;
    snprintf(p, sizeof p, "%s/model.safetensors", dir);
    if (vc_model_load(&m, p, &err)) return die(err.msg);
    snprintf(p, sizeof p, "%s/input.npy", dir);
    if (npy_read(&x, p, 'f', &err)) return die(err.msg);
    snprintf(p, sizeof p, "%s/labels.npy", dir);
    if (npy_read(&lab, p, 'i', &err)) return die(err.msg);
    int N = (int)x.dim[0];
    vc_run *r = vc_run_new(m, N);
    if (vc_forward(r, x.f, -1, 0, &err)) return die(err.msg);
    size_t K = m->nodes[m->output].size;
    int *labels = malloc(N * sizeof(int));
    for (int n = 0; n < N; n++) labels[n] = (int)lab.i[n];
    float *dl = malloc(N * K * sizeof(float));
    vc_loss_cross_entropy(r, labels, dl);
    if (vc_backward(r, m->output, dl, VC_BWD_PARAMS | VC_BWD_INPUT, &err)) return die(err.msg);

    int cap = 2 + m->n_params, n = 0;
    st_out *o = calloc(cap, sizeof(st_out));
    int (*dims)[4] = calloc(cap, sizeof *dims);
    char **names = calloc(cap, sizeof(char *));
    #define ADD(NAME, RANK, D0, D1, D2, D3, DATA) do { \
        names[n] = strdup(NAME); dims[n][0] = D0; dims[n][1] = D1; dims[n][2] = D2; dims[n][3] = D3; \
        o[n].name = names[n]; o[n].rank = RANK; o[n].dim = dims[n]; o[n].data = DATA; n++; } while (0)
    const vc_node *in = &m->nodes[0];
    ADD("logits", 2, N, (int)K, 0, 0, vc_run_act(r, m->output));
    ADD("dinput", 4, N, in->c, in->h, in->w, vc_run_grad(r, 0));
    for (int i = 0; i < m->n_params; i++) {
        const vc_param *pa = &m->params[i];
        snprintf(p, sizeof p, "grad:%s", pa->name);
        ADD(p, pa->rank, pa->dim[0], pa->dim[1], pa->dim[2], pa->dim[3], vc_run_param_grad(r, i));
    }
    snprintf(p, sizeof p, "%s/ours.safetensors", dir);
    if (st_write(p, n, o, 0, NULL, NULL, &err)) return die(err.msg);

    npz_writer *w;
    snprintf(p, sizeof p, "%s/decisions.npz", dir);
    if (npz_open(&w, p, &err)) return die(err.msg);
    for (int i = 1; i < m->n_nodes; i++) {
        vc_decision_kind kind = vc_node_decisions(m, i);
        if (kind == VC_DEC_NONE) continue;
        const vc_node *nd = &m->nodes[i];
        size_t item = kind == VC_DEC_REGION ? 1 : 4;
        void *buf = malloc((size_t)N * nd->size * item);
        long long dim[4] = {N, nd->c, nd->h, nd->w};
        if (!buf || vc_run_decisions(r, i, buf, &err) ||
            npz_add(w, nd->name, item == 1 ? "|u1" : "<i4", nd->rank, dim, buf, &err)) {
            npz_abort(w);
            return die(buf ? err.msg : "out of memory");
        }
        free(buf);
    }
    if (npz_close(w, &err)) return die(err.msg);
    for (int i = 0; i < n; i++) free(names[i]);
    free(names); free(dims); free(o); free(labels); free(dl);
    npy_free(&x); npy_free(&lab);
    vc_run_free(r);
    vc_model_free(m);
    return 0;
}
