// test_featvis_converge.c: feature visualisation converges (issue 15), on the
// default model models/fashion.safetensors over data/fashion.
//   nodes: for every node of every conv layer, the picture's final objective
//     (channel mean of z_j, measured without transforms on the PNG's 8-bit
//     levels) exceeds the node's strongest response over the image set (the
//     same objective on every image), for >= 95% of nodes per layer and overall;
//   edges: 300 edges sampled with a fixed seed, the same number per conv
//     layer: the edge picture's centre unit of e_ji exceeds the strongest unit
//     of e_ji at any position of any image, for >= 95% of them.
// It also prints the edge fractions of two stand-ins that need no edge maps,
// the picture of the edge's output node and that of its input node
// (benchmarks/RESULTS.md records all of them). Each layer's targets run as one
// batch. Optional argv[1]: steps (default 512); argv[2]: one conv layer only
// (a quick look while tuning; the stand-in of its input node then needs that
// layer's predecessor, so use it for the first conv layer or read nodes only).
#include "testutil.h"
#include "viscnn_internal.h"
#include "../viscnn/featvis.h"
#include "../viscnn/imageset.h"

// The node whose pictures stand for channel ch of node `in`: walk back through
// per-channel single-input ops to a conv (its BN counts as it) or the input.
static int source_layer(const vc_model *m, int in) {
    for (;;) {
        const vc_node *n = &m->nodes[in];
        if (in == 0 || n->op == VC_OP_CONV2D) return in;
        if (n->op == VC_OP_RELU || n->op == VC_OP_MAXPOOL2D || n->op == VC_OP_AVGPOOL2D || n->op == VC_OP_BATCHNORM2D ||
            n->op == VC_OP_DROPOUT || n->op == VC_OP_LRN) in = n->in[0];
        else return -1;
    }
}

int main(int argc, char **argv) {
    int steps = argc > 1 ? atoi(argv[1]) : 512;
    vc_error err = {{0}};
    vc_model *m;
    if (vc_model_load(&m, "models/fashion.safetensors", &err)) { tu_report("load the default model", 0, "%s", err.msg); return tu_finish(); }
    vc_imageset set = {0};
    if (imageset_open_path(&set, m, "data/fashion", &err)) { tu_report("open data/fashion", 0, "%s", err.msg); return tu_finish(); }
    int N = set.n;
    size_t xin = m->nodes[0].size;
    float *x = malloc(N * xin * sizeof(float));
    int *idx = malloc(N * sizeof(int)), *lab = malloc(N * sizeof(int));
    for (int k = 0; k < N; k++) idx[k] = k;
    if (imageset_load(&set, idx, N, x, lab, &err)) { tu_report("load data/fashion", 0, "%s", err.msg); return tu_finish(); }
    vc_featvis_opts o;
    vc_featvis_defaults(&o);
    o.steps = steps;
    int layers[64], nl = 0;
    for (int i = 1; i < m->n_nodes && nl < 64; i++)
        if (m->nodes[i].op == VC_OP_CONV2D && (argc < 3 || !strcmp(argv[2], m->nodes[i].name))) layers[nl++] = i;
    float **pics = calloc(m->n_nodes, sizeof(float *));   // node pictures per conv layer (and the input)
    size_t chw = xin;                                       // canvas = the model's input
    int tot_n = 0, won_n = 0;
    vc_run *r = vc_run_new(m, N);
    // the input's colour channels: their pictures (the input-node stand-in of the first layer's edges)
    {
        int C = m->nodes[0].c;
        vc_featvis_target t[3];
        for (int j = 0; j < C; j++) t[j] = (vc_featvis_target){0, j, -1};
        vc_featvis_result res;
        if (vc_featvis_batch(m, t, C, &o, &res, NULL, NULL, &err)) { tu_report("featvis input", 0, "%s", err.msg); return tu_finish(); }
        pics[0] = res.img;
        res.img = NULL;
        vc_featvis_result_free(&res);
    }
    for (int l = 0; l < nl; l++) {
        int L = layers[l], C = m->nodes[L].c;
        char name[200];
        vc_featvis_target *t = malloc(C * sizeof *t);
        for (int j = 0; j < C; j++) t[j] = (vc_featvis_target){L, j, -1};
        fv_resolved rs;
        featvis_resolve(&rs, m, &t[0], &o, &err);
        if (vc_forward(r, x, rs.stop, VC_FWD_NOGRAD, &err)) { tu_report("forward", 0, "%s", err.msg); return tu_finish(); }
        float *best = malloc(C * sizeof(float));
        for (int j = 0; j < C; j++) {
            featvis_resolve(&rs, m, &t[j], &o, &err);
            best[j] = -INFINITY;
            for (int b = 0; b < N; b++) best[j] = fmaxf(best[j], featvis_eval(m, r, &rs, &t[j], b, NULL));
        }
        vc_featvis_result res;
        if (vc_featvis_batch(m, t, C, &o, &res, NULL, NULL, &err)) { tu_report("featvis", 0, "%s", err.msg); return tu_finish(); }
        int won = 0;
        double margin = 0;
        int shown = 0;
        for (int j = 0; j < C; j++) {
            won += res.final[j] > best[j];
            margin += res.final[j] - best[j];
            if (res.final[j] <= best[j] && shown++ < 4)
                printf("#   node %s:%d: picture %.6g, strongest over the set %.6g\n", m->nodes[L].name, j, res.final[j], best[j]);
        }
        snprintf(name, sizeof name, "featvis converges: nodes of %s (%d, one batch): %d/%d = %.1f%% beat their strongest response over %d images (mean margin %+.3g)",
                 m->nodes[L].name, C, won, C, 100.0 * won / C, N, margin / C);
        printf("# %s\n", name);   // per layer: information; the bar is over all nodes
        tot_n += C; won_n += won;
        pics[L] = res.img;
        res.img = NULL;
        vc_featvis_result_free(&res);
        free(best); free(t);
    }
    char name[300];
    snprintf(name, sizeof name, "featvis converges: all %d conv nodes: %.1f%% beat their strongest response", tot_n, 100.0 * won_n / tot_n);
    tu_report(name, won_n >= 0.95 * tot_n, "below 95%%");

    // edges: 300, the same number per conv layer, seeded
    int per = 300 / nl, tot_e = 0, won_e = 0, won_out = 0, won_in = 0;
    uint64_t s = 2026;
    float *e = malloc(m->nodes[layers[0]].size * sizeof(float) * 64);
    float *xp = malloc(per * xin * sizeof(float));
    for (int l = 0; l < nl; l++) {
        int L = layers[l];
        const vc_node *c = &m->nodes[L];
        int cg = m->nodes[c->in[0]].c / c->a.groups, cog = c->c / c->a.groups;
        vc_featvis_target *t = malloc(per * sizeof *t);
        // distinct kernels while the layer has enough; a layer with fewer
        // kernels than `per` (features.0 has 32) gives every kernel, then
        // seeded repeats (a repeat is the same target, so the same picture)
        int nk = c->c * cg;
        for (int k = 0; k < per; k++) {
            for (;;) {
                t[k] = (vc_featvis_target){L, (int)(fv_rng_next(&s) % c->c), (int)(fv_rng_next(&s) % cg)};
                int dup = 0;
                for (int q = k < nk ? 0 : (k / nk) * nk; q < k; q++) dup |= t[q].out == t[k].out && t[q].in == t[k].in;
                if (!dup) break;
            }
        }
        // the strongest unit of e_ji anywhere on any image
        if (vc_forward(r, x, c->in[0], VC_FWD_NOGRAD, &err)) { tu_report("forward", 0, "%s", err.msg); return tu_finish(); }
        float *best = malloc(per * sizeof(float));
        size_t P = (size_t)c->h * c->w;
        for (int k = 0; k < per; k++) {
            best[k] = -INFINITY;
            for (int b = 0; b < N; b++) {
                featvis_edge_map(m, L, vc_run_act(r, c->in[0]), b, t[k].out, t[k].in, e);
                for (size_t p = 0; p < P; p++) best[k] = fmaxf(best[k], e[p]);
            }
        }
        vc_featvis_result res;
        if (vc_featvis_batch(m, t, per, &o, &res, NULL, NULL, &err)) { tu_report("featvis edges", 0, "%s", err.msg); return tu_finish(); }
        int won = 0, shown = 0;
        for (int k = 0; k < per; k++) {
            won += res.final[k] > best[k];
            if (res.final[k] <= best[k] && shown++ < 4)
                printf("#   edge %s:%d:%d: picture %.6g, strongest over the set %.6g\n", c->name, t[k].out, t[k].in, res.final[k], best[k]);
        }
        // stand-ins: the centre unit of e_ji on the output node's picture and on the input node's
        int src = source_layer(m, c->in[0]);
        vc_featvis_opts on = o;
        on.neuron = 1;
        int wo = 0, wi = 0;
        for (int which = 0; which < 2; which++) {
            for (int k = 0; k < per; k++) {
                int ci = (t[k].out / cog) * cg + t[k].in;
                const float *pic = which == 0 ? pics[L] + (size_t)t[k].out * chw : src >= 0 && pics[src] ? pics[src] + (size_t)ci * chw : NULL;
                if (!pic) { tu_report("stand-in pictures", 0, "no picture for the input of %s", c->name); return tu_finish(); }
                vc_featvis_to_input(m, pic, m->nodes[0].h, m->nodes[0].w, xp + k * xin);
            }
            vc_run *rp = vc_run_new(m, per);
            if (vc_forward(rp, xp, c->in[0], VC_FWD_NOGRAD, &err)) { tu_report("forward", 0, "%s", err.msg); return tu_finish(); }
            for (int k = 0; k < per; k++) {
                fv_resolved rs;
                featvis_resolve(&rs, m, &t[k], &on, &err);
                float v = featvis_eval(m, rp, &rs, &t[k], k, NULL);
                if (which == 0) wo += v > best[k]; else wi += v > best[k];
            }
            vc_run_free(rp);
        }
        snprintf(name, sizeof name, "featvis converges: %d edges of %s (one batch): centre unit of e_ji beats its strongest unit "
                 "over %d images for %.1f%% (stand-ins: output node's picture %.1f%%, input node's picture %.1f%%)",
                 per, c->name, N, 100.0 * won / per, 100.0 * wo / per, 100.0 * wi / per);
        printf("# %s\n", name);
        tot_e += per; won_e += won; won_out += wo; won_in += wi;
        vc_featvis_result_free(&res);
        free(best); free(t);
    }
    snprintf(name, sizeof name, "featvis converges: %d sampled edges: edge pictures %.1f%%; stand-ins: output node's picture %.1f%%, "
             "input node's picture %.1f%%", tot_e, 100.0 * won_e / tot_e, 100.0 * won_out / tot_e, 100.0 * won_in / tot_e);
    tu_report(name, won_e >= 0.95 * tot_e, "below 95%%");
    printf("# featvis convergence fractions: nodes %.3f, edges %.3f, stand-ins output-node %.3f, input-node %.3f (%d steps)\n",
           (double)won_n / tot_n, (double)won_e / tot_e, (double)won_out / tot_e, (double)won_in / tot_e, steps);
    vc_run_free(r);
    for (int i = 0; i < m->n_nodes; i++) free(pics[i]);
    free(pics); free(e); free(xp); free(x); free(idx); free(lab);
    imageset_free(&set);
    vc_model_free(m);
    return tu_finish();
}
