// test_backend.c: the backend seam on the CPU (engine/backend.h, viscnn.h
// "devices"): device names, the CPU build's refusal of CUDA with its reason,
// and the reductions the analysis asks a run for (vc_run_edge_maps,
// vc_run_edge_scores, vc_run_node_sums) against plain loops over the run's
// own activations and gradients. The CUDA side of the same functions is
// tests/cuda/test_cuda_models.c.
#include "testutil.h"
#include "../train/train.h"
#include "../ops/ops.h"

static conv2d_dims dims_of(const vc_model *m, int conv, int N) {
    const vc_node *c = &m->nodes[conv], *x = &m->nodes[c->in[0]];
    conv2d_dims d = {.N = N, .C = x->c, .H = x->h, .W = x->w, .Co = c->c, .kh = c->a.kernel[0], .kw = c->a.kernel[1],
                     .sh = c->a.stride[0], .sw = c->a.stride[1], .ph = c->a.padding[0], .pw = c->a.padding[1],
                     .dh = c->a.dilation[0], .dw = c->a.dilation[1], .groups = c->a.groups};
    conv2d_dims_finish(&d);
    return d;
}

int main(int argc, char **argv) {
    tu_init(argc, argv);
    vc_error err = {{0}};
    vc_device d;
    tu_report("backend device names: cpu, cuda; others refused with the list",
              !vc_device_parse("cpu", &d, &err) && d == VC_DEVICE_CPU && !vc_device_parse("cuda", &d, &err) &&
              d == VC_DEVICE_CUDA && vc_device_parse("gpu", &d, &err) == VC_EINPUT && strstr(err.msg, "cpu, cuda"),
              "%s", err.msg);
    // this program links the CPU objects only (build/libviscnn.a): CUDA is absent and says how to get it
    int rc = vc_set_device(VC_DEVICE_CUDA, &err);
    tu_report("backend CPU build: --device cuda refused (VC_EINPUT) naming make CUDA=1; the default stays cpu",
              rc == VC_EINPUT && strstr(err.msg, "make CUDA=1") && vc_get_device() == VC_DEVICE_CPU, "rc %d: %s", rc, err.msg);

    vc_model *m = NULL;
    if (train_model_from_template(&m, "fashion", 5, &err)) { tu_report("backend model", 0, "%s", err.msg); return tu_finish(); }
    const int N = 3;
    tu_rng rng = {77};
    float *x = tu_rand(&rng, (size_t)N * m->nodes[0].size);
    vc_run *r = vc_run_new_on(m, N, VC_DEVICE_CPU, &err);
    tu_report("backend vc_run_new_on cpu", r && vc_run_device(r) == VC_DEVICE_CPU, "%s", err.msg);
    if (!r) return tu_finish();
    const vc_node *out = &m->nodes[m->output];
    float *seed = tu_rand(&rng, (size_t)N * out->size);
    if (vc_forward(r, x, -1, 0, &err) || vc_backward(r, m->output, seed, 0, &err)) {
        tu_report("backend forward/backward", 0, "%s", err.msg);
        return tu_finish();
    }
    for (int conv = 1; conv < m->n_nodes; conv++) {
        if (m->nodes[conv].op != VC_OP_CONV2D) continue;
        const vc_node *c = &m->nodes[conv];
        conv2d_dims dd = dims_of(m, conv, N);
        const int Cg = dd.C / dd.groups, Cog = dd.Co / dd.groups;
        const size_t P = (size_t)dd.Ho * dd.Wo, ne = (size_t)dd.Co * Cg;
        const float *xa = vc_run_act(r, c->in[0]), *g = vc_run_grad(r, conv), *w = m->params[c->param[VC_P_WEIGHT]].data;
        char name[160];
        // edge maps: the plain definition e_ji(p) = sum_k W[j,i,k] x_i(window k)
        snprintf(name, sizeof name, "backend %s: vc_run_edge_maps = conv2d_edge_maps_ref, every image and in-channel", c->name);
        float *e = malloc((size_t)Cog * P * 4), *eref = malloc((size_t)Cog * P * 4);
        double worst = 0;
        for (int n = 0; n < N; n++)
            for (int ci = 0; ci < dd.C; ci++) {
                rc = vc_run_edge_maps(r, conv, n, ci, e, &err);
                conv2d_edge_maps_ref(eref, xa, w, &dd, n, ci);
                double er = rc ? INFINITY : tu_rel_err(e, eref, (size_t)Cog * P, 1e-6);
                if (er > worst || er != er) worst = er;
            }
        tu_report(name, worst <= 1e-5, "error %.3g %s", worst, err.msg);
        // edge scores: acc += scale * sum_n f(s_n), from the reference per-image sums
        float *aeg = tu_zeros(N * ne), *eg = tu_zeros(N * ne), *ae = tu_zeros(N * ne);
        conv2d_edge_sums_ref(aeg, eg, ae, xa, w, g, &dd);
        const vc_edge_score kinds[3] = {VC_EDGE_ABS_EG, VC_EDGE_EG_ABS, VC_EDGE_ABS_E};
        const float *src[3] = {aeg, eg, ae};
        for (int k = 0; k < 3; k++) {
            float *acc = tu_rand(&rng, ne), *ref = malloc(ne * 4);   // starts random: += is checked
            memcpy(ref, acc, ne * 4);
            for (int n = 0; n < N; n++)
                for (size_t q = 0; q < ne; q++) {
                    float v = src[k][(size_t)n * ne + q];
                    ref[q] += (k == 1 ? fabsf(v) : v) * 0.5f;
                }
            rc = vc_run_edge_scores(r, conv, kinds[k], 0.5f, acc, &err);
            double er = rc ? INFINITY : tu_rel_err(acc, ref, ne, 1e-6);
            snprintf(name, sizeof name, "backend %s: vc_run_edge_scores %s = reference sums over the images", c->name,
                     k == 0 ? "sum|eg|" : k == 1 ? "|sum eg|" : "sum|e|");
            tu_report(name, er <= 1e-5, "error %.3g %s", er, err.msg);
            free(acc); free(ref);
        }
        // node sums of the conv's output
        const char *kn[4] = {"relu(z)|g|", "relu(z)", "|g|", "relu(z) g"};
        double *ns = malloc((size_t)N * dd.Co * sizeof(double));
        for (int k = 0; k < 4; k++) {
            rc = vc_run_node_sums(r, conv, (vc_node_sum)k, ns, &err);
            double wd = 0, sc = 1e-12;
            for (int n = 0; n < N; n++)
                for (int j = 0; j < dd.Co; j++) {
                    double s = 0;
                    for (size_t p = 0; p < P; p++) {
                        double z = xa ? vc_run_act(r, conv)[((size_t)n * dd.Co + j) * P + p] : 0, rz = z > 0 ? z : 0;
                        double gv = g[((size_t)n * dd.Co + j) * P + p];
                        s += k == 0 ? rz * fabs(gv) : k == 1 ? rz : k == 2 ? fabs(gv) : rz * gv;
                    }
                    if (fabs(s - ns[(size_t)n * dd.Co + j]) > wd) wd = fabs(s - ns[(size_t)n * dd.Co + j]);
                    if (fabs(s) > sc) sc = fabs(s);
                }
            snprintf(name, sizeof name, "backend %s: vc_run_node_sums %s = plain double sums", c->name, kn[k]);
            tu_report(name, !rc && wd / sc <= 1e-6, "error %.3g %s", wd / sc, err.msg);
        }
        free(ns); free(e); free(eref); free(aeg); free(eg); free(ae);
    }
    tu_report("backend vc_run_has_grad: every node reached by the backward, not the input",
              vc_run_has_grad(r, m->output) && vc_run_has_grad(r, 1) && !vc_run_has_grad(r, 0), "");
    rc = vc_run_edge_scores(r, m->output, VC_EDGE_ABS_E, 1.0f, seed, &err);
    tu_report("backend vc_run_edge_scores on a non-conv node: VC_EINPUT", rc == VC_EINPUT, "rc %d", rc);
    vc_run_free(r);
    free(x); free(seed);
    vc_model_free(m);
    return tu_finish();
}
