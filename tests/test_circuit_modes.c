// test_circuit_modes.c: circuit extraction (viscnn/circuit.c) against a
// brute-force reference written from docs/circuits.md on a small graph with a
// BN, a grouped conv, a residual add, a max-pool, a concat, flatten and linear:
//
//   input(2) -> c1(4) -> bn1 -> r1 -> c2(4, groups 2) -> r2 -> add1 = r2 + r1
//   add1 -> mp -> c3(3) -> r3 ;  mp -> c4(2) -> r4 ;  cat(r3, r4)(5) -> c5(3)
//   -> r5 -> flatten -> fc(4)
//
// The reference knows this graph by hand (which display node produces each
// conv input channel), selects as the docs say with plain loops, and removes
// dead parts by enumerating every path from the input to the target through
// selected nodes and kernels: a node or kernel stays when some such path runs
// through it. Cases (argv[1] filters by substring):
//   modes    threshold, hierarchical, keep:F, keep:N,E on quantised random
//            scores (ties, zeros) for class, loss and node targets: the kept
//            nodes and kernels equal the reference's; sizes and cone counts;
//            dead-part removal happened in some cases and never in keep:1.
//   dead     a hand-made selection: a node without kept input kernels and one
//            without a path to the target go, with every kernel touching them.
//   spec     the flag that does not apply to a mode is an error, not a no-op;
//            mode strings; ranges.
//   norm     robust normalisation: one outlier does not squash its layer.
//   pearson  r of a constant series is NaN with a reason.
#include <math.h>
#include "testmodel.h"
#include "viscnn_internal.h"
#include "../viscnn/circuit.h"

#define MODEL "build/testdata/circuit_modes/m.safetensors"

// display layers of the reference graph
enum { D_IN, D_C1, D_C2, D_ADD, D_C3, D_C4, D_C5, D_T, D_N };
static const int dl_c[D_N] = {2, 4, 4, 4, 3, 2, 3, 1};
static const char *const conv_name[D_N] = {NULL, "c1", "c2", NULL, "c3", "c4", "c5", NULL};

typedef struct { int from_l, from_c, to_l, to_c; int layer; size_t e; } ref_edge;   // layer < 0: always there
typedef struct {
    int n_e;
    ref_edge e[512];
    int scored[D_N];          // display layer -> scored layer index or -1
} ref_graph;

static void add_edge(ref_graph *g, int fl, int fc, int tl, int tc, int layer, size_t e) {
    g->e[g->n_e++] = (ref_edge){fl, fc, tl, tc, layer, e};
}

// The producer (display layer, channel) of in-channel ch of conv display layer d.
static void producer(int d, int ch, int *pl, int *pc) {
    switch (d) {
    case D_C1: *pl = D_IN; *pc = ch; break;
    case D_C2: *pl = D_C1; *pc = ch; break;
    case D_C3: case D_C4: *pl = D_ADD; *pc = ch; break;
    default: if (ch < 3) { *pl = D_C3; *pc = ch; } else { *pl = D_C4; *pc = ch - 3; }
    }
}

// The graph for a target: tl/tc the display node the target reads (D_T for
// class/loss: every c5 channel through flatten + linear).
static void build_ref(ref_graph *g, const vc_scores *s, const vc_model *m, int target_layer, int target_ch) {
    memset(g, 0, sizeof *g);
    for (int d = 0; d < D_N; d++) g->scored[d] = -1;
    for (int l = 0; l < s->n_layers; l++)
        for (int d = 0; d < D_N; d++)
            if (conv_name[d] && !strcmp(m->nodes[s->l[l].node].name, conv_name[d])) g->scored[d] = l;
    const int cin[D_N] = {0, 2, 4, 0, 4, 4, 5, 0}, groups[D_N] = {1, 1, 2, 1, 1, 1, 1, 1};
    for (int d = D_C1; d <= D_C5; d++) {
        if (d == D_ADD) {
            for (int ch = 0; ch < 4; ch++) { add_edge(g, D_C2, ch, D_ADD, ch, -1, 0); add_edge(g, D_C1, ch, D_ADD, ch, -1, 0); }
            continue;
        }
        int cg = cin[d] / groups[d], cog = dl_c[d] / groups[d];
        for (int j = 0; j < dl_c[d]; j++)
            for (int i = 0; i < cg; i++) {
                int pl, pc;
                producer(d, (j / cog) * cg + i, &pl, &pc);
                add_edge(g, pl, pc, d, j, g->scored[d], (size_t)j * cg + i);
            }
    }
    if (target_layer == D_T) for (int ch = 0; ch < 3; ch++) add_edge(g, D_C5, ch, D_T, 0, -1, 0);
    else add_edge(g, target_layer, target_ch, D_T, 0, -1, 0);
}

// Is display node (d, ch) present under the selection (unscored: always)?
static int node_on(const ref_graph *g, const unsigned char *const *sel_node, int d, int ch) {
    return g->scored[d] < 0 || sel_node[g->scored[d]][ch];
}
static int edge_on(const unsigned char *const *sel_edge, const ref_edge *e) {
    return e->layer < 0 || sel_edge[e->layer][e->e];
}

// Brute force: every path from an input channel to the target through
// present nodes and edges; marks what it passes. Paths past a node that cannot
// reach the target are still walked (no pruning): the graph is tiny.
typedef struct {
    const ref_graph *g;
    const unsigned char *const *sn, *const *se;
    int path_n[D_N * 8], path_c[D_N * 8], path_e[D_N * 8], depth;
    unsigned char on_node[D_N][8];
    unsigned char on_edge[512];
    long paths;
} walker;

static void walk(walker *w, int d, int ch) {
    if (d == D_T) {
        w->paths++;
        for (int k = 0; k < w->depth; k++) { w->on_node[w->path_n[k]][w->path_c[k]] = 1; w->on_edge[w->path_e[k]] = 1; }
        return;
    }
    for (int k = 0; k < w->g->n_e; k++) {
        const ref_edge *e = &w->g->e[k];
        if (e->from_l != d || e->from_c != ch || !edge_on(w->se, e)) continue;
        if (e->to_l != D_T && !node_on(w->g, w->sn, e->to_l, e->to_c)) continue;
        w->path_n[w->depth] = e->to_l; w->path_c[w->depth] = e->to_c; w->path_e[w->depth] = k;
        w->depth++;
        walk(w, e->to_l, e->to_c);
        w->depth--;
    }
}

// Applies dead-part removal by brute force to a selection, in place.
static void ref_remove_dead(const ref_graph *g, const vc_scores *s, unsigned char **sn, unsigned char **se) {
    walker w = {.g = g, .sn = (const unsigned char *const *)sn, .se = (const unsigned char *const *)se};
    for (int ch = 0; ch < dl_c[D_IN]; ch++) walk(&w, D_IN, ch);
    for (int d = 0; d < D_N; d++) {
        int l = g->scored[d];
        if (l < 0) continue;
        for (int j = 0; j < s->l[l].cout; j++) sn[l][j] = sn[l][j] && w.on_node[d][j];
    }
    for (int k = 0; k < g->n_e; k++)
        if (g->e[k].layer >= 0) se[g->e[k].layer][g->e[k].e] = se[g->e[k].layer][g->e[k].e] && w.on_edge[k];
}

// ---- reference selection --------------------------------------------------------------

// Cone: display nodes with any path to the target in the full graph.
static int reaches(const ref_graph *g, int d, int ch) {
    if (d == D_T) return 1;
    for (int k = 0; k < g->n_e; k++)
        if (g->e[k].from_l == d && g->e[k].from_c == ch && reaches(g, g->e[k].to_l, g->e[k].to_c)) return 1;
    return 0;
}

// Indices 0..n-1 ordered by score desc, index asc.
static void order(int *ix, const float *v, int n) {
    for (int a = 0; a < n; a++) ix[a] = a;
    for (int a = 0; a < n; a++)
        for (int b = a + 1; b < n; b++)
            if (v[ix[b]] > v[ix[a]] || (v[ix[b]] == v[ix[a]] && ix[b] < ix[a])) { int t = ix[a]; ix[a] = ix[b]; ix[b] = t; }
}

// robust min-max over the values with ok: lo = min, hi = the second largest
// (the largest when that is not above lo); clamped to [0, 1] for thresholds,
// not for keep
static void ref_norm(float *out, const float *v, const unsigned char *ok, int n, int clamp) {
    float w[512] = {0};
    int cnt = 0;
    for (int a = 0; a < n; a++) if (ok[a]) w[cnt++] = v[a];
    int ix[512];
    order(ix, w, cnt);   // descending
    float lo = cnt ? w[ix[cnt - 1]] : 0, hi = cnt >= 2 ? w[ix[1]] : lo;
    if (!(hi > lo) && cnt) hi = w[ix[0]];
    for (int a = 0; a < n; a++) {
        double x = ok[a] && hi > lo ? ((double)v[a] - lo) / ((double)hi - lo) : 0;
        out[a] = (float)(!clamp ? x : x < 0 ? 0 : x > 1 ? 1 : x);
    }
}

// keep the prefix (of ix, m entries) whose score sum first reaches share*total
static void ref_share(const int *ix, int m, const float *v, double share, unsigned char *keep) {
    double total = 0, acc = 0;
    for (int a = 0; a < m; a++) total += v[ix[a]] > 0 ? v[ix[a]] : 0;
    for (int a = 0; a < m && total > 0 && acc < share * total; a++) { acc += v[ix[a]] > 0 ? v[ix[a]] : 0; keep[ix[a]] = 1; }
}

static size_t ref_count(double f, size_t n) {
    size_t k = 0;
    while (k < n && (double)k < f * (double)n - 1e-9) k++;
    return k;
}

// A global ranking entry: value, then graph order (layer, index).
typedef struct { float u; int l, k; } gent;
static void gsort(gent *e, int n) {
    for (int a = 0; a < n; a++)
        for (int b = a + 1; b < n; b++) {
            int before = e[b].u > e[a].u || (e[b].u == e[a].u && (e[b].l < e[a].l || (e[b].l == e[a].l && e[b].k < e[a].k)));
            if (before) { gent t = e[a]; e[a] = e[b]; e[b] = t; }
        }
}

static void ref_select(const ref_graph *g, const vc_scores *s, const vc_circuit_spec *sp, unsigned char **sn, unsigned char **se) {
    gent ge[2048];
    int ng = 0;
    size_t cone_nodes = 0, cone_edges = 0;
    for (int d = 0; d < D_N; d++) {
        int l = g->scored[d];
        if (l < 0) continue;
        const vc_layer_scores *L = &s->l[l];
        unsigned char cone[8] = {0};
        int nc = 0;
        for (int j = 0; j < L->cout; j++) nc += cone[j] = (unsigned char)reaches(g, d, j);
        cone_nodes += nc;
        cone_edges += (size_t)nc * L->cg;
        float vn[8], nn[8];
        int ix[512], m = 0;
        for (int j = 0; j < L->cout; j++) vn[j] = cone[j] ? L->nodes[j] : -1;
        memset(sn[l], 0, L->cout);
        if (sp->mode == VC_C_THRESHOLD) {
            ref_norm(nn, L->nodes, cone, L->cout, 1);
            for (int j = 0; j < L->cout; j++) sn[l][j] = cone[j] && nn[j] >= sp->node_threshold;
        } else if (sp->mode == VC_C_HIERARCHICAL) {
            int o[8];
            order(o, vn, L->cout);
            for (int a = 0; a < L->cout; a++) if (cone[o[a]]) ix[m++] = o[a];
            ref_share(ix, m, L->nodes, sp->node_threshold, sn[l]);
        } else {
            ref_norm(nn, L->nodes, cone, L->cout, 0);
            for (int j = 0; j < L->cout; j++) if (cone[j]) ge[ng++] = (gent){nn[j], l, j};
        }
    }
    if (sp->mode == VC_C_KEEP) {   // nodes ranked across layers
        gsort(ge, ng);
        for (size_t a = 0; a < ref_count(sp->keep_nodes, cone_nodes) && (int)a < ng; a++) sn[ge[a].l][ge[a].k] = 1;
        ng = 0;
    }
    // kernels: candidates need a selected out-node and a producer that is not an unselected conv node
    for (int d = 0; d < D_N; d++) {
        int l = g->scored[d];
        if (l < 0) continue;
        const vc_layer_scores *L = &s->l[l];
        size_t ne_ = (size_t)L->cout * L->cg;
        unsigned char cand[512] = {0}, cone_e[512] = {0};
        for (int k = 0; k < g->n_e; k++) {
            const ref_edge *e = &g->e[k];
            if (e->layer != l) continue;
            int pl = e->from_l, pc = e->from_c;
            cone_e[e->e] = (unsigned char)reaches(g, d, e->to_c);
            cand[e->e] = cone_e[e->e] && sn[l][e->to_c] && (g->scored[pl] < 0 || sn[g->scored[pl]][pc]);
        }
        memset(se[l], 0, ne_);
        if (sp->mode == VC_C_THRESHOLD) {
            float nrm[512];
            ref_norm(nrm, L->edges, cone_e, (int)ne_, 1);
            for (size_t e = 0; e < ne_; e++) se[l][e] = cand[e] && nrm[e] >= sp->edge_threshold;
        } else if (sp->mode == VC_C_HIERARCHICAL) {
            int cog = L->cout / L->groups;
            for (int j = 0; j < L->cout; j++) {
                float v[512]; int o[512], m = 0, ix[512];
                for (int i = 0; i < L->cg; i++) v[i] = L->edges[(size_t)j * L->cg + i];
                order(o, v, L->cg);
                for (int a = 0; a < L->cg; a++) if (cand[(size_t)j * L->cg + o[a]]) ix[m++] = o[a];
                unsigned char k2[512] = {0};
                ref_share(ix, m, v, sp->edge_threshold, k2);
                for (int i = 0; i < L->cg; i++) if (k2[i]) se[l][(size_t)j * L->cg + i] = 1;
            }
            for (int ch = 0; ch < L->cin; ch++) {
                int gi = ch / L->cg, i = ch % L->cg;
                float v[512]; int o[512], m = 0, ix[512];
                for (int q = 0; q < cog; q++) v[q] = L->edges[(size_t)(gi * cog + q) * L->cg + i];
                order(o, v, cog);
                for (int a = 0; a < cog; a++) if (cand[(size_t)(gi * cog + o[a]) * L->cg + i]) ix[m++] = o[a];
                unsigned char k2[512] = {0};
                ref_share(ix, m, v, sp->edge_threshold, k2);
                for (int q = 0; q < cog; q++) if (k2[q]) se[l][(size_t)(gi * cog + q) * L->cg + i] = 1;
            }
        } else {
            float u[512];
            ref_norm(u, L->edges, cone_e, (int)ne_, 0);
            for (size_t e = 0; e < ne_; e++) if (cand[e]) ge[ng++] = (gent){u[e], l, (int)e};
        }
    }
    if (sp->mode == VC_C_KEEP) {   // kernels ranked across layers
        gsort(ge, ng);
        for (size_t a = 0; a < ref_count(sp->keep_edges, cone_edges) && (int)a < ng; a++) se[ge[a].l][ge[a].k] = 1;
    }
}

// ---- model ----------------------------------------------------------------------------

static int make_model(vc_error *err) {
    static mb b = {.rng = {20261206}};
    b.wlo = -1; b.whi = 1;
    mb_conv(&b, "c1", "input", 2, 4, 3, 3, "\"padding\": [1, 1]");
    mb_bn(&b, "bn1", "c1", 4);
    mb_op(&b, "r1", "relu", "\"bn1\"", "");
    mb_conv(&b, "c2", "r1", 2, 4, 3, 3, "\"padding\": [1, 1], \"groups\": 2");
    mb_op(&b, "r2", "relu", "\"c2\"", "");
    mb_op(&b, "add1", "add", "\"r2\", \"r1\"", "");
    mb_op(&b, "mp", "maxpool2d", "\"add1\"", "\"kernel\": [2, 2], \"stride\": [2, 2], \"padding\": [0, 0], \"dilation\": [1, 1], \"ceil_mode\": false");
    mb_conv(&b, "c3", "mp", 4, 3, 3, 3, "\"padding\": [1, 1]");
    mb_op(&b, "r3", "relu", "\"c3\"", "");
    mb_conv(&b, "c4", "mp", 4, 2, 1, 1, "");
    mb_op(&b, "r4", "relu", "\"c4\"", "");
    mb_op(&b, "cat", "concat", "\"r3\", \"r4\"", "");
    mb_conv(&b, "c5", "cat", 5, 3, 3, 3, "\"padding\": [1, 1]");
    mb_op(&b, "r5", "relu", "\"c5\"", "");
    mb_op(&b, "flat", "flatten", "\"r5\"", "");
    mb_linear(&b, "fc", "flat", 3 * 3 * 3, 4, 1);
    return mb_write(&b, MODEL, "circuit_modes", 2, 6, 6, "fc", err);
}

// Quantised random scores in {0, 0.25, ..., 2}: many ties and zeros.
static void random_scores(vc_scores *s, tu_rng *r) {
    for (int l = 0; l < s->n_layers; l++) {
        vc_layer_scores *L = &s->l[l];
        for (int j = 0; j < L->cout; j++) L->nodes[j] = floorf((tu_uniform(r) + 1) * 4.5f) * 0.25f;
        for (size_t e = 0; e < (size_t)L->cout * L->cg; e++) L->edges[e] = floorf((tu_uniform(r) + 1) * 4.5f) * 0.25f;
    }
}

static unsigned char **rows(const vc_scores *s, int edges) {
    unsigned char **r = calloc(s->n_layers, sizeof(unsigned char *));
    for (int l = 0; l < s->n_layers; l++) r[l] = calloc(edges ? (size_t)s->l[l].cout * s->l[l].cg : (size_t)s->l[l].cout, 1);
    return r;
}
static void rows_free(unsigned char **r, int n) { for (int l = 0; l < n; l++) free(r[l]); free(r); }

// Compares the library's circuit with the reference; describes the first difference.
static int same(const vc_circuit *c, unsigned char **sn, unsigned char **se, const vc_scores *s, const vc_model *m,
                char *why, size_t nw) {
    size_t nn = 0, nE = 0;
    for (int l = 0; l < s->n_layers; l++) {
        const vc_layer_scores *L = &s->l[l];
        for (int j = 0; j < L->cout; j++) {
            nn += sn[l][j];
            if (c->node[l][j] != sn[l][j]) {
                snprintf(why, nw, "node %s:%d kept %d, reference %d", m->nodes[L->node].name, j, c->node[l][j], sn[l][j]);
                return 0;
            }
        }
        for (size_t e = 0; e < (size_t)L->cout * L->cg; e++) {
            nE += se[l][e];
            if (c->edge[l][e] != se[l][e]) {
                snprintf(why, nw, "kernel %s (%zu,%zu) kept %d, reference %d", m->nodes[L->node].name, e / L->cg, e % L->cg,
                         c->edge[l][e], se[l][e]);
                return 0;
            }
        }
    }
    if (c->n_nodes != nn || c->n_edges != nE) { snprintf(why, nw, "counts %zu/%zu vs %zu/%zu", c->n_nodes, c->n_edges, nn, nE); return 0; }
    return 1;
}

static void case_modes(const vc_model *m, vc_error *err) {
    const char *targets[4] = {"class:2", "loss", "node:c5:1", "node:r3:0"};
    const int tl[4] = {D_T, D_T, D_C5, D_C3}, tc[4] = {0, 0, 1, 0};
    const char *modes[8] = {"threshold", "threshold", "hierarchical", "hierarchical", "keep:0.3", "keep:0.6,0.4", "keep:1", "keep:0.5,1"};
    const double thr[8][2] = {{0.2, 0.2}, {0.6, 0.35}, {0.8, 0.8}, {0.5, 0.95}, {NAN, NAN}, {NAN, NAN}, {NAN, NAN}, {NAN, NAN}};
    tu_rng rng = {777};
    for (int ti = 0; ti < 4; ti++)
        for (int mi = 0; mi < 8; mi++) {
            char name[160];
            snprintf(name, sizeof name, "modes %s --mode %s thresholds %g/%g: library = brute force (20 seeds)", targets[ti],
                     modes[mi], thr[mi][0], thr[mi][1]);
            if (!tu_selected(name)) continue;
            vc_target t;
            if (target_parse(&t, m, targets[ti], err)) { tu_report(name, 0, "%s", err->msg); continue; }
            int ok = 1, removed = 0;
            size_t cone_n = 0, cone_e = 0;
            char why[1200] = "";
            for (int seed = 0; seed < 20 && ok; seed++) {
                vc_scores s;
                scores_init(&s, m, t.layer >= 0 ? t.layer : -1);
                random_scores(&s, &rng);
                ref_graph g;
                build_ref(&g, &s, m, tl[ti], tc[ti]);
                vc_circuit_spec sp;
                circuit_spec_init(&sp);
                if (circuit_mode_parse(&sp, modes[mi], err)) { ok = 0; snprintf(why, sizeof why, "%s", err->msg); scores_free(&s); break; }
                sp.node_threshold = thr[mi][0];
                sp.edge_threshold = thr[mi][1];
                vc_circuit c;
                if (circuit_extract(&c, m, &s, &t, &sp, err)) { ok = 0; snprintf(why, sizeof why, "%s", err->msg); scores_free(&s); break; }
                circuit_spec_check(&sp, err);   // the defaults the library used
                unsigned char **sn = rows(&s, 0), **se = rows(&s, 1);
                ref_select(&g, &s, &sp, sn, se);
                size_t sel_n = 0, sel_e = 0;
                for (int l = 0; l < s.n_layers; l++) {
                    for (int j = 0; j < s.l[l].cout; j++) sel_n += sn[l][j];
                    for (size_t e = 0; e < (size_t)s.l[l].cout * s.l[l].cg; e++) sel_e += se[l][e];
                }
                if (sel_n != c.sel_nodes || sel_e != c.sel_edges) {
                    ok = 0;
                    snprintf(why, sizeof why, "seed %d: selected %zu nodes %zu kernels, reference %zu %zu", seed, c.sel_nodes,
                             c.sel_edges, sel_n, sel_e);
                }
                ref_remove_dead(&g, &s, sn, se);
                if (ok && !same(&c, sn, se, &s, m, why, sizeof why)) ok = 0;
                removed += c.n_nodes < c.sel_nodes || c.n_edges < c.sel_edges;
                if (ok && !strcmp(modes[mi], "keep:1") && (c.n_nodes != c.total_nodes || c.n_edges != c.total_edges)) {
                    ok = 0;
                    snprintf(why, sizeof why, "keep:1 kept %zu/%zu nodes, %zu/%zu kernels", c.n_nodes, c.total_nodes, c.n_edges, c.total_edges);
                }
                cone_n = c.total_nodes; cone_e = c.total_edges;
                rows_free(sn, s.n_layers); rows_free(se, s.n_layers);
                circuit_free(&c);
                scores_free(&s);
            }
            // cone sizes by hand: class/loss: all 16 nodes, 8+8+12+8+15 kernels; node:c5:1:
            // c1..c4 (13 nodes; 8+8+12+8); node:r3:0: c1, c2 (8 nodes, 8+8)
            size_t want_n = ti < 2 ? 16 : ti == 2 ? 13 : 8, want_e = ti < 2 ? 51 : ti == 2 ? 36 : 16;
            if (ok && (cone_n != want_n || cone_e != want_e)) {
                ok = 0;
                snprintf(why, sizeof why, "cone %zu nodes %zu kernels, expected %zu %zu", cone_n, cone_e, want_n, want_e);
            }
            tu_report(name, ok, "%s", why);
            (void)removed;
        }
    // dead-part removal is exercised: over the cases above, count circuits where it removed something
    const char *name = "modes dead-part removal removes parts in keep:0.3 (class:2) for some seeds";
    if (tu_selected(name)) {
        vc_target t;
        target_parse(&t, m, "class:2", err);
        int hit = 0;
        for (int seed = 0; seed < 20; seed++) {
            vc_scores s;
            scores_init(&s, m, -1);
            random_scores(&s, &rng);
            vc_circuit_spec sp;
            circuit_spec_init(&sp);
            circuit_mode_parse(&sp, "keep:0.3", err);
            vc_circuit c;
            if (!circuit_extract(&c, m, &s, &t, &sp, err)) { hit += c.n_nodes < c.sel_nodes || c.n_edges < c.sel_edges; circuit_free(&c); }
            scores_free(&s);
        }
        tu_report(name, hit > 0, "never removed anything in 20 seeds");
    }
}

// A hand-made selection: every node selected; c2's node 1 gets no kept
// kernel (dead from the input); c3's node 2 has no kept kernel into c5 (dead
// toward the target). Both go, and so do the kernels that touch them.
static void case_dead(const vc_model *m, vc_error *err) {
    const char *name = "dead hand-made: a node with no input path and one with no path to the target go, with their kernels";
    if (!tu_selected(name)) return;
    vc_target t;
    target_parse(&t, m, "class:0", err);
    vc_scores s;
    scores_init(&s, m, -1);
    vc_circuit c;
    size_t counts[5];
    for (int l = 0; l < s.n_layers; l++) counts[l] = (size_t)s.l[l].cout * s.l[l].cg;
    circuit_select_per_layer(&c, m, &s, &t, counts);   // everything
    int l2 = 1, l3 = 2, l5 = 4;   // c2, c3, c5 (graph order c1 c2 c3 c4 c5)
    int ok = c.n_nodes == 16 && c.n_edges == 51;
    for (int i = 0; i < 2; i++) c.edge[l2][1 * 2 + i] = 0;           // c2 node 1: no kernel in
    for (int j = 0; j < 3; j++) c.edge[l5][(size_t)j * 5 + 2] = 0;   // c3 node 2 feeds c5 through cat channel 2 only
    circuit_remove_dead(&c, m, &s, &t);
    ok = ok && !c.node[l2][1] && !c.node[l3][2];
    // c2 node 1 feeds add1 ch 1 (with c1 ch 1, which stays): the add still carries c1; c3's kernels from add1 ch 1 stay
    for (int i = 0; i < 4; i++) ok = ok && !c.edge[l3][2 * 4 + i];   // c3 node 2's kernels went with it
    ok = ok && c.node[l2][0] && c.node[l3][0] && c.edge[l3][0 * 4 + 1];
    ok = ok && c.n_nodes == 14 && c.n_edges == 51 - 2 - 3 - 4;
    tu_report(name, ok, "kept %zu nodes %zu kernels (expected 14, 42); c2:1 %d c3:2 %d", c.n_nodes, c.n_edges, c.node[l2][1], c.node[l3][2]);
    circuit_free(&c);
    scores_free(&s);
}

static void case_spec(vc_error *err) {
    struct { const char *mode; double tn, te, kn, ke; int it; const char *expect; } cs[] = {
        {"keep:0.1", 0.5, NAN, NAN, NAN, 0, "--node-threshold does not apply"},
        {"keep:0.1", NAN, 0.5, NAN, NAN, 0, "--edge-threshold does not apply"},
        {"threshold", NAN, NAN, NAN, NAN, 3, "--iterative applies to --mode keep"},
        {"hierarchical", NAN, NAN, NAN, NAN, 2, "--iterative applies to --mode keep"},
        {"threshold", NAN, NAN, NAN, 0.3, 0, "keep fractions do not apply"},
        {"threshold", 1.5, NAN, NAN, NAN, 0, "--node-threshold 1.5"},
        {"hierarchical", NAN, -0.1, NAN, NAN, 0, "--edge-threshold -0.1"},
    };
    for (size_t k = 0; k < sizeof cs / sizeof cs[0]; k++) {
        char name[200];
        snprintf(name, sizeof name, "spec --mode %s node %g edge %g iterative %d -> VC_EINPUT \"%s\"", cs[k].mode, cs[k].tn, cs[k].te,
                 cs[k].it, cs[k].expect);
        if (!tu_selected(name)) continue;
        vc_circuit_spec sp;
        circuit_spec_init(&sp);
        int rc = circuit_mode_parse(&sp, cs[k].mode, err);
        sp.node_threshold = cs[k].tn; sp.edge_threshold = cs[k].te; sp.iterative = cs[k].it;
        if (!isnan(cs[k].ke)) sp.keep_edges = cs[k].ke;
        if (!rc) rc = circuit_spec_check(&sp, err);
        tu_report(name, rc == VC_EINPUT && strstr(err->msg, cs[k].expect), "rc %d: %s", rc, err->msg);
    }
    const char *bad[] = {"keep:2", "keep:0.5,", "keep:,0.5", "keep:a", "keep:0.1,0.2,0.3", "keep", "keep:", "thresh", "keep:-0.1"};
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        char name[160];
        snprintf(name, sizeof name, "spec --mode %s -> VC_EINPUT", bad[k]);
        if (!tu_selected(name)) continue;
        vc_circuit_spec sp;
        circuit_spec_init(&sp);
        int rc = circuit_mode_parse(&sp, bad[k], err);
        tu_report(name, rc == VC_EINPUT && strstr(err->msg, bad[k]), "rc %d: %s", rc, err->msg);
    }
    const char *name = "spec keep:0.25 = keep:1,0.25; keep:0.5,0.1; defaults 0.2 (threshold) and 0.8 (hierarchical)";
    if (tu_selected(name)) {
        vc_circuit_spec a, b, c, d;
        circuit_spec_init(&a); circuit_spec_init(&b); circuit_spec_init(&c); circuit_spec_init(&d);
        int ok = !circuit_mode_parse(&a, "keep:0.25", err) && a.mode == VC_C_KEEP && a.keep_nodes == 1 && a.keep_edges == 0.25;
        ok = ok && !circuit_mode_parse(&b, "keep:0.5,0.1", err) && b.keep_nodes == 0.5 && b.keep_edges == 0.1;
        ok = ok && !circuit_mode_parse(&c, "threshold", err) && !circuit_spec_check(&c, err) && c.node_threshold == 0.2 && c.edge_threshold == 0.2;
        ok = ok && !circuit_mode_parse(&d, "hierarchical", err) && !circuit_spec_check(&d, err) && d.node_threshold == 0.8;
        ok = ok && circuit_keep_count(0.1, 7200) == 720 && circuit_keep_count(0.05, 1024) == 52 && circuit_keep_count(0, 10) == 0 &&
             circuit_keep_count(1, 10) == 10 && circuit_keep_count(0.001, 100) == 1;
        tu_report(name, ok, "%s", err->msg);
    }
}

// One outlier among a layer's kernels: robust normalisation keeps the rest
// spread over [0, 1] (min-max would put them all under 0.03).
static void case_norm(const vc_model *m, vc_error *err) {
    const char *name = "norm one outlier in a layer does not squash it (robust min-max, second largest)";
    if (!tu_selected(name)) return;
    vc_target t;
    target_parse(&t, m, "class:0", err);
    vc_scores s, n;
    scores_init(&s, m, -1);
    tu_rng r = {5};
    for (int l = 0; l < s.n_layers; l++)
        for (size_t e = 0; e < (size_t)s.l[l].cout * s.l[l].cg; e++) s.l[l].edges[e] = 0.1f + 0.05f * tu_uniform(&r);
    s.l[4].edges[7] = 10.0f;   // c5: 15 kernels, one outlier
    circuit_normalize(&n, &s, m, &t);
    int above_half = 0;
    for (size_t e = 0; e < 15; e++) above_half += n.l[4].edges[e] > 0.5f;
    int ok = n.l[4].edges[7] == 1.0f && above_half >= 4;
    for (size_t e = 0; e < 15; e++) ok = ok && n.l[4].edges[e] >= 0 && n.l[4].edges[e] <= 1;
    tu_report(name, ok, "outlier -> %g, %d of 15 above 0.5", n.l[4].edges[7], above_half);
    scores_free(&s); scores_free(&n);
}

static void case_pearson(void) {
    const char *name = "pearson r of a constant series is NaN with a reason; r of a line is 1, of its mirror -1";
    if (!tu_selected(name)) return;
    float a[5] = {1, 2, 3, 4, 5}, b[5] = {2, 4, 6, 8, 10}, c[5] = {7, 7, 7, 7, 7}, d[5] = {5, 4, 3, 2, 1};
    const char *n1, *n2, *n3, *n4, *n5;
    double r1 = pearson_r(a, b, 5, &n1), r2 = pearson_r(a, c, 5, &n2), r3 = pearson_r(c, a, 5, &n3), r4 = pearson_r(c, c, 5, &n4),
           r5 = pearson_r(a, d, 5, &n5);
    int ok = fabs(r1 - 1) < 1e-12 && !n1 && isnan(r2) && n2 && strstr(n2, "circuit") && isnan(r3) && n3 && strstr(n3, "full") &&
             isnan(r4) && n4 && fabs(r5 + 1) < 1e-12 && !n5;
    tu_report(name, ok, "r %g %g %g %g %g", r1, r2, r3, r4, r5);
}

int main(int argc, char **argv) {
    tu_init(argc, argv);
    vc_error err = {{0}};
    vc_model *m = NULL;
    if (make_model(&err) || vc_model_load(&m, MODEL, &err)) {
        tu_report("circuit modes: build the test model", 0, "%s", err.msg);
        return tu_finish();
    }
    case_modes(m, &err);
    case_dead(m, &err);
    case_spec(&err);
    case_norm(m, &err);
    case_pearson();
    vc_model_free(m);
    return tu_finish();
}
