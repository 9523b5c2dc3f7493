// test_cuda_models.c: whole models on the CUDA backend against the CPU
// backend: torchvision's alexnet, resnet18 and googlenet (built-in templates,
// seeded random weights, batch-norm statistics randomised so that BN is not
// the identity), random input images at 224x224, batch 2.
//   - forward: every node's output; backward with parameters: the input's
//     gradient and every parameter gradient; with kernel and channel masks
//     on a conv layer (circuits): output and that layer's weight gradient
//   - exact edge maps (vc_run_edge_maps) of one conv layer, every in-channel
//   - importance: all six metrics x targets loss, class:K, node:LAYER:CH,
//     node and edge scores of every layer
// Error: per tensor (per layer for scores) max |cuda - cpu| / max |cpu|;
// activations and gradients <= 1e-4 (a deep chain of FP32 ops summed in a
// different order), scores <= 1e-3 (the bound). Without a device
// nothing runs (tests/cuda/cuda_test.h).
#include "cuda_test.h"
#include "../../train/train.h"
#include "../../viscnn/importance.h"

#define TOL_ACT 1e-4
#define TOL_SCORE 1e-3

typedef struct { const char *arch, *node_target, *edge_layer; } model_case;

static void randomise_bn(vc_model *m, tu_rng *rng) {
    for (int i = 0; i < m->n_nodes; i++) {
        const vc_node *n = &m->nodes[i];
        if (n->op != VC_OP_BATCHNORM2D) continue;
        for (int role = 0; role < VC_P_COUNT; role++) {
            if (n->param[role] < 0) continue;
            vc_param *p = &m->params[n->param[role]];
            for (size_t k = 0; k < p->size; k++) {
                float u = tu_uniform(rng);
                p->data[k] = role == VC_P_VAR ? 0.5f + 0.5f * (u + 1) : role == VC_P_WEIGHT ? 1.0f + 0.3f * u : 0.1f * u;
            }
        }
    }
}

static double err_of(const float *a, const float *b, size_t n) { return tu_rel_err(a, b, n, 1e-12); }

// Runs forward + backward (params, input) on both devices; compares; frees.
static void pass_case(const vc_model *m, const float *x, int N, const char *tag, int masked) {
    char name[256];
    snprintf(name, sizeof name, "cuda model %s forward (every node) + backward (input, every parameter)%s", tag,
             masked ? " with kernel and channel masks on one conv layer" : "");
    if (!ct_run(name)) return;
    vc_error err = {{0}};
    vc_run *r[2] = {vc_run_new_on(m, N, VC_DEVICE_CPU, &err), vc_run_new_on(m, N, VC_DEVICE_CUDA, &err)};
    if (!r[0] || !r[1]) { tu_report(name, 0, "%s", err.msg); vc_run_free(r[0]); vc_run_free(r[1]); return; }
    int conv = -1;
    for (int i = 1; i < m->n_nodes && conv < 0; i++)
        if (m->nodes[i].op == VC_OP_CONV2D && i > 4) conv = i;
    float *km = NULL, *cm = NULL;
    if (masked) {
        const vc_node *c = &m->nodes[conv];
        size_t nk = (size_t)c->c * (m->nodes[c->in[0]].c / c->a.groups);
        tu_rng mr = {99};
        km = malloc(nk * sizeof(float)); cm = malloc(c->c * sizeof(float));
        for (size_t k = 0; k < nk; k++) km[k] = tu_uniform(&mr) > -0.4f;
        for (int j = 0; j < c->c; j++) cm[j] = tu_uniform(&mr) > -0.6f;
    }
    const vc_node *out = &m->nodes[m->output];
    float *seed = malloc((size_t)N * out->size * sizeof(float));
    tu_rng sr = {7};
    for (size_t k = 0; k < (size_t)N * out->size; k++) seed[k] = tu_uniform(&sr);
    int rc = 0;
    for (int d = 0; d < 2 && !rc; d++) {
        if (masked) rc = vc_run_set_kernel_mask(r[d], conv, km, &err) || vc_run_set_channel_mask(r[d], conv, cm, &err);
        if (!rc) rc = vc_forward(r[d], x, -1, 0, &err);
        if (!rc) rc = vc_backward(r[d], m->output, seed, VC_BWD_PARAMS | VC_BWD_INPUT, &err);
    }
    if (rc) { tu_report(name, 0, "%s", err.msg); goto done; }
    double worst = 0;
    const char *where = "";
    for (int i = 0; i < m->n_nodes; i++) {
        size_t n = (size_t)N * m->nodes[i].size;
        double ea = err_of(vc_run_act(r[1], i), vc_run_act(r[0], i), n);
        if (ea > worst || ea != ea) { worst = ea; where = m->nodes[i].name; }
        if (vc_run_grad(r[0], i) && vc_run_grad(r[1], i)) {
            double eg = err_of(vc_run_grad(r[1], i), vc_run_grad(r[0], i), n);
            if (eg > worst || eg != eg) { worst = eg; where = m->nodes[i].name; }
        } else if (!vc_run_grad(r[0], i) != !vc_run_grad(r[1], i)) { worst = INFINITY; where = m->nodes[i].name; }
    }
    for (int p = 0; p < m->n_params; p++) {
        double ep = err_of(vc_run_param_grad(r[1], p), vc_run_param_grad(r[0], p), m->params[p].size);
        if (ep > worst || ep != ep) { worst = ep; where = m->params[p].name; }
    }
    tu_report(name, worst <= TOL_ACT, "normalised max error %.3g at %s (> %.0e)", worst, where, TOL_ACT);
done:
    free(seed); free(km); free(cm);
    vc_run_free(r[0]); vc_run_free(r[1]);
}

static void edge_maps_case(const vc_model *m, const float *x, int N, const char *tag, const char *layer) {
    char name[256];
    snprintf(name, sizeof name, "cuda model %s exact edge maps of %s (image 1, every in-channel)", tag, layer);
    if (!ct_run(name)) return;
    vc_error err = {{0}};
    int node = vc_model_find(m, layer);
    vc_run *r[2] = {vc_run_new_on(m, N, VC_DEVICE_CPU, &err), vc_run_new_on(m, N, VC_DEVICE_CUDA, &err)};
    if (node < 0 || !r[0] || !r[1]) { tu_report(name, 0, "no layer %s or %s", layer, err.msg); goto done; }
    const vc_node *c = &m->nodes[node];
    const size_t ne = (size_t)(c->c / c->a.groups) * c->h * c->w;
    float *e[2] = {malloc(ne * sizeof(float)), malloc(ne * sizeof(float))};
    double worst = 0;
    int rc = vc_forward(r[0], x, node, 0, &err) || vc_forward(r[1], x, node, 0, &err);
    for (int ci = 0; !rc && ci < m->nodes[c->in[0]].c; ci++) {
        rc = vc_run_edge_maps(r[0], node, N - 1, ci, e[0], &err) || vc_run_edge_maps(r[1], node, N - 1, ci, e[1], &err);
        double er = err_of(e[1], e[0], ne);
        if (er > worst || er != er) worst = er;
    }
    if (rc) tu_report(name, 0, "%s", err.msg);
    else tu_report(name, worst <= TOL_ACT, "normalised max error %.3g (> %.0e)", worst, TOL_ACT);
    free(e[0]); free(e[1]);
done:
    vc_run_free(r[0]); vc_run_free(r[1]);
}

static int scores_on(vc_device dev, const vc_model *m, vc_metric metric, const vc_target *t, const float *x, int N,
                     const int *labels, vc_scores *out, vc_error *err) {
    vc_importance im;
    int rc = vc_set_device(dev, err);
    if (!rc) rc = importance_begin(&im, m, metric, t, N, err);
    if (!rc) rc = importance_add(&im, x, N, labels, err);
    if (!rc) importance_end(&im, out);
    importance_free(&im);
    vc_set_device(VC_DEVICE_CPU, NULL);
    return rc;
}

static void importance_case(const vc_model *m, const float *x, int N, const char *tag, vc_metric metric, const char *target) {
    char name[256];
    snprintf(name, sizeof name, "cuda model %s importance %s target %s: node and edge scores of every layer", tag,
             vc_metric_names[metric], target);
    if (!ct_run(name)) return;
    vc_error err = {{0}};
    vc_target t;
    vc_scores s[2] = {{0}, {0}};
    int labels[2] = {3, 1};
    int rc = target_parse(&t, m, target, &err);
    if (!rc) rc = scores_on(VC_DEVICE_CPU, m, metric, &t, x, N, labels, &s[0], &err);
    if (!rc) rc = scores_on(VC_DEVICE_CUDA, m, metric, &t, x, N, labels, &s[1], &err);
    if (rc) { tu_report(name, 0, "%s", err.msg); goto done; }
    double worst = 0;
    char where[160] = "";
    for (int l = 0; l < s[0].n_layers; l++) {
        const vc_layer_scores *a = &s[0].l[l], *b = &s[1].l[l];
        double en = err_of(b->nodes, a->nodes, a->cout), ee = err_of(b->edges, a->edges, (size_t)a->cout * a->cg);
        if (en > worst || en != en) { worst = en; snprintf(where, sizeof where, "nodes of %s", m->nodes[a->node].name); }
        if (ee > worst || ee != ee) { worst = ee; snprintf(where, sizeof where, "edges of %s", m->nodes[a->node].name); }
    }
    tu_report(name, s[0].n_layers > 0 && worst <= TOL_SCORE, "normalised max error %.3g at %s (> %.0e)", worst, where, TOL_SCORE);
done:
    scores_free(&s[0]); scores_free(&s[1]);
}

int main(int argc, char **argv) {
    tu_init(argc, argv);
    static const model_case models[] = {
        {"alexnet", "node:features.8:5", "features.3"},
        {"resnet18", "node:layer3.0.conv1:5", "layer2.0.conv1"},
        {"googlenet", "node:inception4a.branch2.1.conv:3", "inception3a.branch3.1.conv"},
    };
    const int N = 2;
    for (size_t k = 0; k < sizeof models / sizeof models[0]; k++) {
        const model_case *mc = &models[k];
        vc_error err = {{0}};
        vc_model *m = NULL;
        float *x = NULL;
        // without a device the cases below only count themselves (ct_run): no model is built
        if (ct_device() && train_model_from_template(&m, mc->arch, 1 + k, &err)) {
            char name[128];
            snprintf(name, sizeof name, "cuda model %s: build from the built-in template", mc->arch);
            tu_report(name, 0, "%s", err.msg);
            continue;
        }
        tu_rng rng = {1000 + k};
        if (m) {
            randomise_bn(m, &rng);
            x = tu_rand(&rng, (size_t)N * m->nodes[0].size);
        }
        pass_case(m, x, N, mc->arch, 0);
        pass_case(m, x, N, mc->arch, 1);
        edge_maps_case(m, x, N, mc->arch, mc->edge_layer);
        const char *targets[3] = {"loss", "class:3", mc->node_target};
        for (int metric = 0; metric < VC_M_COUNT; metric++)
            for (int t = 0; t < 3; t++) importance_case(m, x, N, mc->arch, (vc_metric)metric, targets[t]);
        free(x);
        vc_model_free(m);
    }
    return ct_finish();
}
