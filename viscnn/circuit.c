// circuit.c: extracting circuits from scores (the modes of docs/circuits.md),
// dead-part removal, masked runs, and how faithfully a circuit preserves its
// target.
#include "circuit.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "imageset.h"
#include "../engine/util.h"
#include "chanmap.h"

const double vc_curve_fractions[VC_CURVE_N] = {0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1, 0.05, 0.01, 0.005, 0.001};

// ---- spec -----------------------------------------------------------------------

void circuit_spec_init(vc_circuit_spec *s) {
    s->mode = VC_C_THRESHOLD;
    s->node_threshold = s->edge_threshold = s->keep_nodes = s->keep_edges = NAN;
    s->iterative = 0;
}

// A fraction in [0, 1], the whole string.
static int parse_fraction(double *out, const char *s, const char *end_at) {
    char *end;
    double v = strtod(s, &end);
    if (end == s || end != end_at || !(v >= 0 && v <= 1)) return 0;
    *out = v;
    return 1;
}

int circuit_mode_parse(vc_circuit_spec *s, const char *text, vc_error *err) {
    if (!strcmp(text, "threshold")) { s->mode = VC_C_THRESHOLD; return VC_OK; }
    if (!strcmp(text, "hierarchical")) { s->mode = VC_C_HIERARCHICAL; return VC_OK; }
    if (!strncmp(text, "keep:", 5)) {
        const char *a = text + 5, *comma = strchr(a, ','), *end = a + strlen(a);
        s->mode = VC_C_KEEP;
        if (!comma && parse_fraction(&s->keep_edges, a, end)) { s->keep_nodes = 1; return VC_OK; }
        if (comma && parse_fraction(&s->keep_nodes, a, comma) && parse_fraction(&s->keep_edges, comma + 1, end)) return VC_OK;
        return vc_fail(err, VC_EINPUT, "--mode %s: expected keep:F or keep:NODES,EDGES with fractions in [0, 1]", text);
    }
    return vc_fail(err, VC_EINPUT, "--mode %s: expected threshold, hierarchical, keep:F or keep:NODES,EDGES", text);
}

int circuit_spec_check(vc_circuit_spec *s, vc_error *err) {
    const char *name = s->mode == VC_C_THRESHOLD ? "threshold" : s->mode == VC_C_HIERARCHICAL ? "hierarchical" : "keep";
    if (s->mode == VC_C_KEEP) {
        if (!isnan(s->node_threshold)) return vc_fail(err, VC_EINPUT, "--node-threshold does not apply to --mode keep (it sets fractions)");
        if (!isnan(s->edge_threshold)) return vc_fail(err, VC_EINPUT, "--edge-threshold does not apply to --mode keep (it sets fractions)");
        if (!(s->keep_nodes >= 0 && s->keep_nodes <= 1) || !(s->keep_edges >= 0 && s->keep_edges <= 1))
            return vc_fail(err, VC_EINPUT, "--mode keep: fractions must be in [0, 1]");
        if (s->iterative < 0 || s->iterative > 100)
            return vc_fail(err, VC_EINPUT, "--iterative %d: expected 1 to 100 rounds", s->iterative);
        return VC_OK;
    }
    if (!isnan(s->keep_nodes) || !isnan(s->keep_edges))
        return vc_fail(err, VC_EINPUT, "keep fractions do not apply to --mode %s", name);
    if (s->iterative) return vc_fail(err, VC_EINPUT, "--iterative applies to --mode keep only, not %s", name);
    double def = s->mode == VC_C_HIERARCHICAL ? 0.8 : 0.2;
    if (isnan(s->node_threshold)) s->node_threshold = def;
    if (isnan(s->edge_threshold)) s->edge_threshold = def;
    if (!(s->node_threshold >= 0 && s->node_threshold <= 1))
        return vc_fail(err, VC_EINPUT, "--node-threshold %g: expected a number in [0, 1]", s->node_threshold);
    if (!(s->edge_threshold >= 0 && s->edge_threshold <= 1))
        return vc_fail(err, VC_EINPUT, "--edge-threshold %g: expected a number in [0, 1]", s->edge_threshold);
    return VC_OK;
}

void circuit_spec_text(const vc_circuit_spec *s, char *buf, size_t n) {
    if (s->mode == VC_C_THRESHOLD) snprintf(buf, n, "threshold");
    else if (s->mode == VC_C_HIERARCHICAL) snprintf(buf, n, "hierarchical");
    else if (s->keep_nodes == 1) snprintf(buf, n, "keep:%g", s->keep_edges);
    else snprintf(buf, n, "keep:%g,%g", s->keep_nodes, s->keep_edges);
}

// ---- reachability ---------------------------------------------------------------

static unsigned char **reach_alloc(const vc_model *m) {
    unsigned char **r = calloc_check(m->n_nodes, sizeof(unsigned char *));
    for (int i = 0; i < m->n_nodes; i++) r[i] = calloc_check(m->nodes[i].c, 1);
    return r;
}

void circuit_reach_free(const vc_model *m, unsigned char **r) {
    for (int i = 0; r && i < m->n_nodes; i++) free(r[i]);
    free(r);
}

// layer_of[node] = scored layer index, or -1.
static int *layer_map(const vc_model *m, const vc_scores *layout) {
    int *lo = malloc_check(m->n_nodes * sizeof(int));
    for (int i = 0; i < m->n_nodes; i++) lo[i] = -1;
    for (int l = 0; layout && l < layout->n_layers; l++) lo[layout->l[l].node] = l;
    return lo;
}

// per-channel: channel c of the output reads channel c of each input (mul: of x
// and of its gate; the gate's SE branch is reached like an add's operand)
static int is_per_channel(vc_op op) { return chan_is_pointwise(op); }

static int any_set(const unsigned char *v, int n) {
    for (int k = 0; k < n; k++) if (v[k]) return 1;
    return 0;
}

// A scored conv's node j and kernel (j, i) count as present under c (c NULL or
// an unscored conv: everything is present).
#define NODE_ON(c, l, j) ((l) < 0 || !(c) || (c)->node[l][j])
#define EDGE_ON(c, l, e) ((l) < 0 || !(c) || (c)->edge[l][e])

void circuit_reach(unsigned char ***fwd, unsigned char ***bwd, const vc_model *m, const vc_scores *layout,
                   const vc_circuit *c, const vc_target *t) {
    int *lo = layer_map(m, layout);
    if (fwd) {
        unsigned char **F = *fwd = reach_alloc(m);
        memset(F[0], 1, m->nodes[0].c);
        for (int n = 1; n <= t->stop; n++) {
            const vc_node *nd = &m->nodes[n];
            const vc_node *x = &m->nodes[nd->in[0]];
            int l = lo[n];
            if (nd->op == VC_OP_CONV2D) {
                int cg = x->c / nd->a.groups, Cog = nd->c / nd->a.groups;
                for (int j = 0; j < nd->c; j++) {
                    if (!NODE_ON(c, l, j)) continue;
                    const unsigned char *in = F[nd->in[0]] + (j / Cog) * cg;
                    for (int i = 0; i < cg && !F[n][j]; i++)
                        if (in[i] && EDGE_ON(c, l, (size_t)j * cg + i)) F[n][j] = 1;
                }
            } else if (nd->op == VC_OP_CONCAT) {
                for (int k = 0, off = 0; k < nd->n_in; off += m->nodes[nd->in[k]].c, k++)
                    memcpy(F[n] + off, F[nd->in[k]], m->nodes[nd->in[k]].c);
            } else if (nd->op == VC_OP_ADD) {
                for (int k = 0; k < nd->n_in; k++)
                    for (int ch = 0; ch < nd->c; ch++) F[n][ch] |= F[nd->in[k]][ch];
            } else if (nd->op == VC_OP_FLATTEN) {
                int hw = x->h * x->w;
                for (int k = 0; k < nd->c; k++) F[n][k] = F[nd->in[0]][k / hw];
            } else if (nd->op == VC_OP_CHANNEL_SHUFFLE || nd->op == VC_OP_CHANNEL_SLICE) {
                for (int ch = 0, src; ch < nd->c; ch++) F[n][ch] = F[chan_source(m, n, ch, 0, &src)][src];
            } else if (nd->op == VC_OP_MUL) {
                for (int k = 0; k < nd->n_in; k++)
                    for (int ch = 0; ch < nd->c; ch++) F[n][ch] |= F[nd->in[k]][ch];
            } else if (is_per_channel(nd->op)) {
                memcpy(F[n], F[nd->in[0]], nd->c);
            } else {   // linear, lrn, log_softmax: every output channel sees every input channel
                int any = 0;
                for (int k = 0; k < nd->n_in; k++) any |= any_set(F[nd->in[k]], m->nodes[nd->in[k]].c);
                memset(F[n], any, nd->c);
            }
        }
    }
    if (bwd) {
        unsigned char **B = *bwd = reach_alloc(m);
        if (t->kind == VC_T_NODE) B[t->stop][t->ch] = 1;
        else memset(B[t->stop], 1, m->nodes[t->stop].c);
        for (int n = t->stop; n >= 1; n--) {
            const vc_node *nd = &m->nodes[n];
            if (!any_set(B[n], nd->c)) continue;
            const vc_node *x = &m->nodes[nd->in[0]];
            int l = lo[n];
            if (nd->op == VC_OP_CONV2D) {
                int cg = x->c / nd->a.groups, Cog = nd->c / nd->a.groups;
                for (int j = 0; j < nd->c; j++) {
                    if (!B[n][j] || !NODE_ON(c, l, j)) continue;
                    unsigned char *in = B[nd->in[0]] + (j / Cog) * cg;
                    for (int i = 0; i < cg; i++)
                        if (EDGE_ON(c, l, (size_t)j * cg + i)) in[i] = 1;
                }
            } else if (nd->op == VC_OP_CONCAT) {
                for (int k = 0, off = 0; k < nd->n_in; off += m->nodes[nd->in[k]].c, k++)
                    for (int ch = 0; ch < m->nodes[nd->in[k]].c; ch++) B[nd->in[k]][ch] |= B[n][off + ch];
            } else if (nd->op == VC_OP_FLATTEN) {
                int hw = x->h * x->w;
                for (int k = 0; k < nd->c; k++) if (B[n][k]) B[nd->in[0]][k / hw] = 1;
            } else if (nd->op == VC_OP_CHANNEL_SHUFFLE || nd->op == VC_OP_CHANNEL_SLICE) {
                for (int ch = 0, src; ch < nd->c; ch++)
                    if (B[n][ch]) B[chan_source(m, n, ch, 0, &src)][src] = 1;
            } else if (nd->op == VC_OP_ADD || is_per_channel(nd->op)) {
                for (int k = 0; k < nd->n_in; k++)
                    for (int ch = 0; ch < nd->c; ch++) B[nd->in[k]][ch] |= B[n][ch];
            } else {
                for (int k = 0; k < nd->n_in; k++) memset(B[nd->in[k]], 1, m->nodes[nd->in[k]].c);
            }
        }
    }
    free(lo);
}

// ---- normalisation --------------------------------------------------------------

// Over the entries v[q] with ok[q]: lo = the smallest, hi = the second
// largest (the largest when the second is not above lo); out = (v - lo) /
// (hi - lo), clamped to [0, 1] when `clamp`. Entries without ok, and all
// when every entry is equal, -> 0. One outlier (the largest) never sets the
// scale.
static void norm_robust(float *out, const float *v, const unsigned char *ok, size_t n, int clamp) {
    float lo = INFINITY, top = -INFINITY, second = -INFINITY;
    size_t cnt = 0;
    for (size_t q = 0; q < n; q++) {
        if (!ok[q]) continue;
        cnt++;
        if (v[q] < lo) lo = v[q];
        if (v[q] > top) { second = top; top = v[q]; }
        else if (v[q] > second) second = v[q];
    }
    float hi = cnt >= 2 && second > lo ? second : top;
    for (size_t q = 0; q < n; q++) {
        double x = ok[q] && cnt && hi > lo ? ((double)v[q] - lo) / ((double)hi - lo) : 0;
        out[q] = (float)(clamp ? (x < 0 ? 0 : x > 1 ? 1 : x) : x);
    }
}

// Robust min-max of every layer over the entries okn/oke (per layer: nodes,
// kernels); clamp: the [0, 1] values of display and thresholds, else the
// unclamped ones keep ranks by.
static void normalize(vc_scores *norm, const vc_scores *raw, unsigned char **okn, unsigned char **oke, int clamp) {
    scores_copy(norm, raw);
    for (int l = 0; l < raw->n_layers; l++) {
        const vc_layer_scores *L = &raw->l[l];
        norm_robust(norm->l[l].nodes, L->nodes, okn[l], L->cout, clamp);
        norm_robust(norm->l[l].edges, L->edges, oke[l], (size_t)L->cout * L->cg, clamp);
    }
}

// Per layer: the cone's nodes (okn) and the kernels into them (oke), both
// also bounded by `within` when given.
static void cone_entries(unsigned char ***okn, unsigned char ***oke, const vc_scores *raw, unsigned char **cone,
                         const vc_circuit *within) {
    *okn = calloc_check(raw->n_layers ? raw->n_layers : 1, sizeof(unsigned char *));
    *oke = calloc_check(raw->n_layers ? raw->n_layers : 1, sizeof(unsigned char *));
    for (int l = 0; l < raw->n_layers; l++) {
        const vc_layer_scores *L = &raw->l[l];
        (*okn)[l] = calloc_check(L->cout, 1);
        (*oke)[l] = calloc_check((size_t)L->cout * L->cg, 1);
        for (int j = 0; j < L->cout; j++) {
            (*okn)[l][j] = cone[L->node][j] && (!within || within->node[l][j]);
            for (int i = 0; i < L->cg; i++)
                (*oke)[l][(size_t)j * L->cg + i] = cone[L->node][j] && (!within || within->edge[l][(size_t)j * L->cg + i]);
        }
    }
}

static void free_rows(unsigned char **rows, int n) {
    for (int l = 0; rows && l < n; l++) free(rows[l]);
    free(rows);
}

void circuit_normalize(vc_scores *norm, const vc_scores *raw, const vc_model *m, const vc_target *t) {
    unsigned char **cone, **okn, **oke;
    circuit_reach(NULL, &cone, m, raw, NULL, t);
    cone_entries(&okn, &oke, raw, cone, NULL);
    normalize(norm, raw, okn, oke, 1);
    free_rows(okn, raw->n_layers);
    free_rows(oke, raw->n_layers);
    circuit_reach_free(m, cone);
}

// ---- selection ------------------------------------------------------------------

typedef struct { float v; size_t k; } ranked;
// Decreasing score; ties in increasing k (the lower index first).
static int by_score_desc(const void *a, const void *b) {
    const ranked *x = a, *y = b;
    if (x->v != y->v) return x->v > y->v ? -1 : 1;
    return x->k < y->k ? -1 : x->k > y->k;
}

size_t circuit_keep_count(double fraction, size_t n) {
    double want = fraction * (double)n - 1e-9;
    size_t k = want <= 0 ? 0 : (size_t)ceil(want);
    return k > n ? n : k;
}

// Sorts r (m entries) and marks the first `count` in keep.
static void keep_top(ranked *r, size_t m, size_t count, unsigned char *keep) {
    qsort(r, m, sizeof(ranked), by_score_desc);
    for (size_t q = 0; q < count && q < m; q++) keep[r[q].k] = 1;
}

// Sorts r and marks the shortest prefix whose score sum reaches share * total
// (negative scores count as 0); nothing when the total is 0.
static void keep_share(ranked *r, size_t m, double share, unsigned char *keep) {
    qsort(r, m, sizeof(ranked), by_score_desc);
    double total = 0, acc = 0;
    for (size_t q = 0; q < m; q++) total += r[q].v > 0 ? r[q].v : 0;
    for (size_t q = 0; q < m && total > 0 && acc < share * total; q++) {
        acc += r[q].v > 0 ? r[q].v : 0;
        keep[r[q].k] = 1;
    }
}

static void circuit_alloc(vc_circuit *c, const vc_scores *layout) {
    memset(c, 0, sizeof *c);
    c->n_layers = layout->n_layers;
    c->node = calloc_check(c->n_layers ? c->n_layers : 1, sizeof(unsigned char *));
    c->edge = calloc_check(c->n_layers ? c->n_layers : 1, sizeof(unsigned char *));
    for (int l = 0; l < c->n_layers; l++) {
        c->node[l] = calloc_check(layout->l[l].cout, 1);
        c->edge[l] = calloc_check((size_t)layout->l[l].cout * layout->l[l].cg, 1);
    }
}

static void count_kept(vc_circuit *c, const vc_scores *layout, size_t *nodes, size_t *edges) {
    *nodes = *edges = 0;
    for (int l = 0; l < c->n_layers; l++) {
        const vc_layer_scores *L = &layout->l[l];
        for (int j = 0; j < L->cout; j++) *nodes += c->node[l][j];
        for (size_t e = 0; e < (size_t)L->cout * L->cg; e++) *edges += c->edge[l][e];
    }
}

// For every scored layer l and in-channel ch (global), whether the node that
// produces it is a scored conv node that is not selected (then no kernel may
// read it). Traced back through per-channel ops and concat; an add, the input
// or anything else counts as present.
static unsigned char **producer_unselected(const vc_model *m, const vc_scores *layout, const vc_circuit *c, const int *lo) {
    unsigned char **out = calloc_check(layout->n_layers ? layout->n_layers : 1, sizeof(unsigned char *));
    for (int l = 0; l < layout->n_layers; l++) {
        const vc_layer_scores *L = &layout->l[l];
        out[l] = calloc_check(L->cin, 1);
        for (int ch0 = 0; ch0 < L->cin; ch0++) {
            int n = L->in_node, ch = ch0;
            for (;;) {
                const vc_node *nd = &m->nodes[n];
                if (nd->op == VC_OP_CONV2D) { out[l][ch0] = lo[n] >= 0 && !c->node[lo[n]][ch]; break; }
                int src, from = chan_source(m, n, ch, 0, &src);   // concat, shuffle, slice, per-channel ops
                if (from < 0) break;
                n = from, ch = src;
            }
        }
    }
    return out;
}

void circuit_remove_dead(vc_circuit *c, const vc_model *m, const vc_scores *layout, const vc_target *t) {
    unsigned char **F, **B;
    circuit_reach(&F, &B, m, layout, c, t);
    // One pass suffices: a selected node that is reached from the input and
    // reaches the target lies on a kept path, and so does every node on it.
    for (int l = 0; l < c->n_layers; l++) {
        const vc_layer_scores *L = &layout->l[l];
        int Cog = L->cout / L->groups;
        for (int j = 0; j < L->cout; j++) {
            c->node[l][j] = c->node[l][j] && F[L->node][j] && B[L->node][j];
            const unsigned char *in = F[L->in_node] + (j / Cog) * L->cg;
            for (int i = 0; i < L->cg; i++) {
                size_t e = (size_t)j * L->cg + i;
                c->edge[l][e] = c->edge[l][e] && c->node[l][j] && in[i];
            }
        }
    }
    circuit_reach_free(m, F);
    circuit_reach_free(m, B);
    count_kept(c, layout, &c->n_nodes, &c->n_edges);
}

static void count_cone(vc_circuit *c, const vc_scores *layout, unsigned char **cone) {
    c->total_nodes = c->total_edges = 0;
    for (int l = 0; l < layout->n_layers; l++) {
        const vc_layer_scores *L = &layout->l[l];
        for (int j = 0; j < L->cout; j++)
            if (cone[L->node][j]) { c->total_nodes++; c->total_edges += L->cg; }
    }
}

// The selection of every mode (docs/circuits.md). within: NULL, or a circuit
// whose nodes and kernels bound the choice (the rounds of --iterative).
static void extract(vc_circuit *c, const vc_model *m, const vc_scores *raw, const vc_target *t,
                    const vc_circuit_spec *spec, const vc_circuit *within) {
    unsigned char **cone, **okn, **oke;
    circuit_reach(NULL, &cone, m, raw, NULL, t);
    int *lo = layer_map(m, raw);
    circuit_alloc(c, raw);
    count_cone(c, raw, cone);
    cone_entries(&okn, &oke, raw, cone, within);
    // threshold: clamped normalised scores; keep: unclamped (an outlier ranks
    // first in its layer instead of tying at 1)
    vc_scores norm = {0};
    if (spec->mode != VC_C_HIERARCHICAL) normalize(&norm, raw, okn, oke, spec->mode == VC_C_THRESHOLD);
    size_t most = c->total_edges + c->total_nodes + 1;
    ranked *r = malloc_check(most * sizeof(ranked));

    // 1. nodes
    if (spec->mode == VC_C_KEEP) {   // global: every layer's cone nodes ranked together
        size_t n = 0, base = 0;
        for (int l = 0; l < raw->n_layers; base += raw->l[l].cout, l++)
            for (int j = 0; j < raw->l[l].cout; j++)
                if (okn[l][j]) r[n++] = (ranked){norm.l[l].nodes[j], base + (size_t)j};
        qsort(r, n, sizeof(ranked), by_score_desc);
        size_t keep = circuit_keep_count(spec->keep_nodes, c->total_nodes);
        for (size_t q = 0; q < keep && q < n; q++) {
            size_t k = r[q].k;
            int l = 0;
            for (; k >= (size_t)raw->l[l].cout; l++) k -= raw->l[l].cout;
            c->node[l][k] = 1;
        }
    } else
        for (int l = 0; l < raw->n_layers; l++) {
            const vc_layer_scores *L = &raw->l[l];
            if (spec->mode == VC_C_THRESHOLD) {
                for (int j = 0; j < L->cout; j++) c->node[l][j] = okn[l][j] && norm.l[l].nodes[j] >= spec->node_threshold;
                continue;
            }
            size_t n = 0;
            for (int j = 0; j < L->cout; j++)
                if (okn[l][j]) r[n++] = (ranked){L->nodes[j], (size_t)j};
            keep_share(r, n, spec->node_threshold, c->node[l]);
        }

    // 2. kernels: the candidates run into a selected node from a channel
    // whose producer is not an unselected node
    unsigned char **unsel = producer_unselected(m, raw, c, lo);
    size_t n_all = 0, base = 0;
    for (int l = 0; l < raw->n_layers; base += (size_t)raw->l[l].cout * raw->l[l].cg, l++) {
        const vc_layer_scores *L = &raw->l[l];
        const int Cog = L->cout / L->groups;
        #define CANDIDATE(j, i) (c->node[l][j] && !unsel[l][((j) / Cog) * L->cg + (i)] && oke[l][(size_t)(j) * L->cg + (i)])
        if (spec->mode == VC_C_THRESHOLD) {
            for (int j = 0; j < L->cout; j++)
                for (int i = 0; i < L->cg; i++)
                    c->edge[l][(size_t)j * L->cg + i] = CANDIDATE(j, i) && norm.l[l].edges[(size_t)j * L->cg + i] >= spec->edge_threshold;
        } else if (spec->mode == VC_C_HIERARCHICAL) {
            for (int j = 0; j < L->cout; j++) {   // each out-node: its top incoming kernels
                size_t n = 0;
                for (int i = 0; i < L->cg; i++)
                    if (CANDIDATE(j, i)) r[n++] = (ranked){L->edges[(size_t)j * L->cg + i], (size_t)j * L->cg + i};
                keep_share(r, n, spec->edge_threshold, c->edge[l]);
            }
            for (int ch = 0; ch < L->cin; ch++) {   // each in-channel: its top outgoing kernels (within its group)
                int g = ch / L->cg, i = ch % L->cg;
                size_t n = 0;
                for (int j = g * Cog; j < (g + 1) * Cog; j++)
                    if (CANDIDATE(j, i)) r[n++] = (ranked){L->edges[(size_t)j * L->cg + i], (size_t)j * L->cg + i};
                keep_share(r, n, spec->edge_threshold, c->edge[l]);
            }
        } else {   // keep: gather every layer's candidates, ranked together below
            for (int j = 0; j < L->cout; j++)
                for (int i = 0; i < L->cg; i++)
                    if (CANDIDATE(j, i)) r[n_all++] = (ranked){norm.l[l].edges[(size_t)j * L->cg + i], base + (size_t)j * L->cg + i};
        }
        #undef CANDIDATE
    }
    if (spec->mode == VC_C_KEEP) {
        qsort(r, n_all, sizeof(ranked), by_score_desc);
        size_t keep = circuit_keep_count(spec->keep_edges, c->total_edges);
        for (size_t q = 0; q < keep && q < n_all; q++) {
            size_t k = r[q].k;
            int l = 0;
            for (; k >= (size_t)raw->l[l].cout * raw->l[l].cg; l++) k -= (size_t)raw->l[l].cout * raw->l[l].cg;
            c->edge[l][k] = 1;
        }
    }
    free_rows(unsel, raw->n_layers);
    free_rows(okn, raw->n_layers);
    free_rows(oke, raw->n_layers);
    count_kept(c, raw, &c->sel_nodes, &c->sel_edges);
    circuit_remove_dead(c, m, raw, t);
    if (norm.l) scores_free(&norm);
    free(r);
    free(lo);
    circuit_reach_free(m, cone);
}

int circuit_extract(vc_circuit *c, const vc_model *m, const vc_scores *raw, const vc_target *t,
                    const vc_circuit_spec *spec_in, vc_error *err) {
    memset(c, 0, sizeof *c);
    vc_circuit_spec spec = *spec_in;
    int rc = circuit_spec_check(&spec, err);
    if (rc) return rc;
    if (spec.iterative > 1) return vc_fail(err, VC_EINPUT, "circuit: --iterative needs images (circuit_extract_iterative)");
    extract(c, m, raw, t, &spec, NULL);
    return VC_OK;
}

static int apply_mask(vc_run *r, const void *ctx, vc_error *err) {
    const void *const *p = ctx;   // {layout, circuit}
    return circuit_apply(r, p[0], p[1], err);
}

int circuit_extract_iterative(vc_circuit *c, vc_scores *scores, const vc_model *m, vc_metric metric,
                              const vc_target *t, const vc_imageset *s, const char *category, const vc_scores *first,
                              const vc_circuit_spec *spec_in, int batch, vc_error *err) {
    memset(c, 0, sizeof *c);
    memset(scores, 0, sizeof *scores);
    vc_circuit_spec spec = *spec_in;
    int rc = circuit_spec_check(&spec, err);
    if (rc) return rc;
    if (spec.mode != VC_C_KEEP) return vc_fail(err, VC_EINPUT, "circuit: --iterative applies to --mode keep only");
    int K = spec.iterative > 1 ? spec.iterative : 1;
    // re-scoring needs only the ranking category's images: a view of s with
    // that category alone (the other images belong to none)
    vc_imageset view = *s;
    int want = category && strcmp(category, "overall") ? imageset_find_category(s, category) : -1;
    if (category && strcmp(category, "overall") && want < 0)
        return vc_fail(err, VC_EINPUT, "circuit: no category %s in %s", category, s->source);
    if (want >= 0) {
        view.n_cat = 1;
        view.cat_names = s->cat_names + want;
        view.cat = malloc_check((s->n + 1) * sizeof(int));
        for (int i = 0; i < s->n; i++) view.cat[i] = s->cat[i] == want ? 0 : -1;
    }
    scores_copy(scores, first);
    vc_circuit prev = {0};
    for (int k = 1; k <= K && !rc; k++) {
        vc_circuit_spec round = spec;
        round.iterative = 0;
        // geometric schedule: F^(k/K) of the cone in round k, F in the last
        round.keep_nodes = k == K ? spec.keep_nodes : pow(spec.keep_nodes, (double)k / K);
        round.keep_edges = k == K ? spec.keep_edges : pow(spec.keep_edges, (double)k / K);
        if (k > 1) {   // re-score on the network pruned by the previous round
            vc_set_scores ss;
            const void *ctx[2] = {first, &prev};
            rc = importance_over_set_setup(&ss, m, metric, t, &view, batch, apply_mask, ctx, err);
            if (rc) break;
            const vc_scores *sel = want >= 0 ? &ss.cat[0] : &ss.overall;
            scores_free(scores);
            scores_copy(scores, sel);
            set_scores_free(&ss);
        }
        vc_circuit next;
        extract(&next, m, scores, t, &round, k > 1 ? &prev : NULL);
        circuit_free(&prev);
        prev = next;
        progress("iterative pruning", k, K);
    }
    if (view.cat != s->cat) free(view.cat);
    if (rc) { circuit_free(&prev); scores_free(scores); return rc; }
    *c = prev;
    return VC_OK;
}

void circuit_select_per_layer(vc_circuit *c, const vc_model *m, const vc_scores *raw, const vc_target *t,
                              const size_t *counts) {
    unsigned char **cone;
    circuit_reach(NULL, &cone, m, raw, NULL, t);
    circuit_alloc(c, raw);
    count_cone(c, raw, cone);
    for (int l = 0; l < raw->n_layers; l++) {
        const vc_layer_scores *L = &raw->l[l];
        ranked *r = malloc_check(((size_t)L->cout * L->cg + 1) * sizeof(ranked));
        size_t n = 0;
        for (int j = 0; j < L->cout; j++) {
            c->node[l][j] = cone[L->node][j];
            for (int i = 0; i < L->cg && cone[L->node][j]; i++, n++)
                r[n] = (ranked){L->edges[(size_t)j * L->cg + i], (size_t)j * L->cg + i};
        }
        keep_top(r, n, counts[l], c->edge[l]);
        free(r);
    }
    circuit_reach_free(m, cone);
    count_kept(c, raw, &c->sel_nodes, &c->sel_edges);
    circuit_remove_dead(c, m, raw, t);
}

void circuit_layer_edges(const vc_circuit *c, const vc_scores *layout, size_t *counts) {
    for (int l = 0; l < c->n_layers; l++) {
        counts[l] = 0;
        for (size_t e = 0; e < (size_t)layout->l[l].cout * layout->l[l].cg; e++) counts[l] += c->edge[l][e];
    }
}

void circuit_free(vc_circuit *c) {
    for (int l = 0; c->node && l < c->n_layers; l++) { free(c->node[l]); free(c->edge[l]); }
    free(c->node); free(c->edge);
    memset(c, 0, sizeof *c);
}

int circuit_apply(vc_run *r, const vc_scores *layout, const vc_circuit *c, vc_error *err) {
    for (int l = 0; l < c->n_layers; l++) {
        const vc_layer_scores *L = &layout->l[l];
        size_t ne = (size_t)L->cout * L->cg;
        float *km = malloc_check(ne * sizeof(float)), *cm = malloc_check(L->cout * sizeof(float));
        for (size_t e = 0; e < ne; e++) km[e] = c->edge[l][e];
        for (int j = 0; j < L->cout; j++) cm[j] = c->node[l][j];
        int rc = vc_run_set_kernel_mask(r, L->node, km, err);
        if (!rc) rc = vc_run_set_channel_mask(r, L->node, cm, err);
        free(km); free(cm);
        if (rc) return rc;
    }
    return VC_OK;
}

// ---- faithfulness ---------------------------------------------------------------

static int argmax(const float *v, int K) {
    int b = 0;
    for (int k = 1; k < K; k++) if (v[k] > v[b]) b = k;
    return b;
}

// Target values (and the output's argmax) of the images idx[0..n), of the
// full network (c NULL) or the circuit's masked one.
static int run_values(float *v, int *am, const vc_model *m, const vc_target *t, const vc_scores *layout,
                      const vc_circuit *c, const vc_imageset *s, const int *idx, int n, int batch, vc_error *err) {
    const vc_node *tn = &m->nodes[t->stop];
    size_t per = t->kind == VC_T_NODE ? (size_t)tn->h * tn->w : 1;
    float *x = malloc_check((size_t)batch * m->nodes[0].size * sizeof(float));
    int *lab = malloc_check(batch * sizeof(int));
    vc_run *r = NULL;
    int rc = VC_OK;
    for (int i0 = 0; i0 < n && !rc; i0 += batch) {
        int b = n - i0 < batch ? n - i0 : batch;
        if (!r || vc_run_batch(r) != b) {
            vc_run_free(r);
            r = vc_run_new(m, b);
            if (c) rc = circuit_apply(r, layout, c, err);
        }
        if (!rc) rc = imageset_load(s, idx + i0, b, x, lab, err);
        if (!rc) rc = vc_forward(r, x, t->stop, VC_FWD_NOGRAD, err);
        if (rc) break;
        const float *y = vc_run_act(r, t->stop);
        if (t->kind == VC_T_NODE) {
            for (int k = 0; k < b; k++)
                memcpy(v + (size_t)(i0 + k) * per, y + (size_t)k * tn->size + (size_t)t->ch * per, per * sizeof(float));
        } else {
            target_values(t, m, r, lab, v + i0);
            for (int k = 0; am && k < b; k++) am[i0 + k] = argmax(y + (size_t)k * tn->size, (int)tn->size);
        }
    }
    vc_run_free(r);
    free(x); free(lab);
    return rc;
}

int faith_reference(vc_faith_ref *ref, const vc_model *m, const vc_target *t, const vc_imageset *s,
                    const int *idx, int n_img, int batch, vc_error *err) {
    memset(ref, 0, sizeof *ref);
    if (n_img < 1) return vc_fail(err, VC_EINPUT, "faithfulness: no images to measure on");
    const vc_node *tn = &m->nodes[t->stop];
    ref->n_img = n_img;
    ref->idx = malloc_check(n_img * sizeof(int));
    memcpy(ref->idx, idx, n_img * sizeof(int));
    ref->values = (size_t)n_img * (t->kind == VC_T_NODE ? (size_t)tn->h * tn->w : 1);
    ref->f = malloc_check(ref->values * sizeof(float));
    if (t->kind != VC_T_NODE) ref->argmax = malloc_check(n_img * sizeof(int));
    int rc = run_values(ref->f, ref->argmax, m, t, NULL, NULL, s, idx, n_img, batch, err);
    if (rc) faith_reference_free(ref);
    return rc;
}

void faith_reference_free(vc_faith_ref *ref) {
    free(ref->idx); free(ref->f); free(ref->argmax);
    memset(ref, 0, sizeof *ref);
}

double pearson_r(const float *a, const float *b, size_t n, const char **note) {
    *note = NULL;
    double ma = 0, mb = 0;
    for (size_t k = 0; k < n; k++) { ma += a[k]; mb += b[k]; }
    ma /= (double)n; mb /= (double)n;
    double sab = 0, saa = 0, sbb = 0;
    for (size_t k = 0; k < n; k++) {
        double da = a[k] - ma, db = b[k] - mb;
        sab += da * db; saa += da * da; sbb += db * db;
    }
    if (!isfinite(sab) || !isfinite(saa) || !isfinite(sbb)) { *note = "a target value is not finite (NaN or infinity)"; return NAN; }
    if (n < 2 || (saa == 0 && sbb == 0)) { *note = "both the full network's and the circuit's target are constant over the images"; return NAN; }
    if (saa == 0) { *note = "the full network's target is constant over the images"; return NAN; }
    if (sbb == 0) { *note = "the circuit's target is constant over the images"; return NAN; }
    double r = sab / sqrt(saa * sbb);
    return r > 1 ? 1 : r < -1 ? -1 : r;
}

int faith_measure(vc_faith *out, const vc_faith_ref *ref, const vc_model *m, const vc_target *t,
                  const vc_scores *layout, const vc_circuit *c, const vc_imageset *s, int batch, vc_error *err) {
    memset(out, 0, sizeof *out);
    float *v = malloc_check(ref->values * sizeof(float));
    int *am = ref->argmax ? malloc_check(ref->n_img * sizeof(int)) : NULL;
    int rc = run_values(v, am, m, t, layout, c, s, ref->idx, ref->n_img, batch, err);
    if (!rc) {
        out->images = ref->n_img;
        out->values = ref->values;
        out->r = pearson_r(ref->f, v, ref->values, &out->r_note);
        double num = 0, den = 0;
        for (size_t k = 0; k < ref->values; k++) { num += fabs((double)v[k] - ref->f[k]); den += fabs((double)ref->f[k]); }
        if (den > 0) out->rel_error = num / den;
        else { out->rel_error = NAN; out->rel_note = "the full network's target is 0 on every image"; }
        out->top1 = NAN;
        if (am) {
            int agree = 0;
            for (int k = 0; k < ref->n_img; k++) agree += am[k] == ref->argmax[k];
            out->top1 = (double)agree / ref->n_img;
        }
        out->edges = c ? c->n_edges : 0;
        out->fraction = c && c->total_edges ? (double)c->n_edges / (double)c->total_edges : 1;
    }
    free(v); free(am);
    return rc;
}

int faith_curve(vc_faith *out, const double *fr, int n, const vc_model *m, const vc_scores *raw, const vc_target *t,
                const vc_faith_ref *ref, const vc_imageset *s, int batch, vc_error *err) {
    int rc = VC_OK;
    for (int k = 0; k < n && !rc; k++) {
        vc_circuit_spec spec;
        circuit_spec_init(&spec);
        spec.mode = VC_C_KEEP;
        spec.keep_nodes = 1;
        spec.keep_edges = fr[k];
        vc_circuit ck;
        rc = circuit_extract(&ck, m, raw, t, &spec, err);
        if (!rc) rc = faith_measure(&out[k], ref, m, t, raw, &ck, s, batch, err);
        circuit_free(&ck);
        progress("faithfulness curve", k + 1, n);
    }
    return rc;
}
