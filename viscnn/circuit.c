// circuit.c: extracting circuits from scores (the modes of docs/circuits.md),
// dead-part removal, masked runs, and how faithfully a circuit preserves its
// target.
#include "circuit.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "imageset.h"
#include "../engine/util.h"

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

static int is_per_channel(vc_op op) {
    return op == VC_OP_BATCHNORM2D || op == VC_OP_RELU || op == VC_OP_MAXPOOL2D || op == VC_OP_AVGPOOL2D ||
           op == VC_OP_ADAPTIVE_AVGPOOL2D || op == VC_OP_DROPOUT;
}

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

// Over the entries v[k] with ok[k] (n of them): v / mean; entries without ok -> 0.
static void norm_by_mean(float *out, const float *v, const unsigned char *ok, size_t n, size_t stride_ok) {
    double sum = 0;
    size_t cnt = 0;
    for (size_t k = 0; k < n; k++) if (ok[k / stride_ok]) { sum += v[k]; cnt++; }
    double mean = cnt ? sum / (double)cnt : 0;
    for (size_t k = 0; k < n; k++) out[k] = ok[k / stride_ok] && mean > 0 ? (float)(v[k] / mean) : 0.0f;
}

// EXPERIMENT (temporary): VISCNN_CIRCUIT_NORM=minmax|mean|rank|robust
static void norm_layer(float *out, const float *v, const unsigned char *ok, size_t n, size_t stride_ok) {
    const char *k = getenv("VISCNN_CIRCUIT_NORM");
    if (!k || !strcmp(k, "mean")) { norm_by_mean(out, v, ok, n, stride_ok); return; }
    size_t cnt = 0;
    float *w = malloc_check((n + 1) * sizeof(float));
    for (size_t q = 0; q < n; q++) if (ok[q / stride_ok]) w[cnt++] = v[q];
    int cmpf(const void *a, const void *b) { float x = *(const float *)a, y = *(const float *)b; return x < y ? -1 : x > y; }
    qsort(w, cnt, sizeof(float), cmpf);
    for (size_t q = 0; q < n; q++) {
        if (!ok[q / stride_ok] || !cnt) { out[q] = 0; continue; }
        if (!strcmp(k, "minmax")) out[q] = w[cnt - 1] > w[0] ? (v[q] - w[0]) / (w[cnt - 1] - w[0]) : 0;
        else if (!strcmp(k, "robust")) {
            size_t kk = (size_t)ceil(0.01 * cnt); if (kk < 2) kk = 2; if (kk > cnt) kk = cnt;
            float hi = w[cnt - kk];
            out[q] = hi > w[0] ? (v[q] - w[0]) / (hi - w[0]) : 0;
        } else if (!strcmp(k, "share")) {   // 1 - share of the layer total held by strictly higher scores
            double tot = 0, above = 0;
            for (size_t a = 0; a < cnt; a++) tot += w[a];
            for (size_t a = 0; a < cnt; a++) if (w[a] > v[q]) above += w[a];
            out[q] = tot > 0 ? (float)(1.0 - above / tot) : 0;
        } else {   // rank: mid-rank / cnt
            size_t lo = 0, hi = cnt;
            while (lo < hi) { size_t md = (lo + hi) / 2; if (w[md] < v[q]) lo = md + 1; else hi = md; }
            size_t a = lo; hi = cnt;
            while (lo < hi) { size_t md = (lo + hi) / 2; if (w[md] <= v[q]) lo = md + 1; else hi = md; }
            out[q] = (float)(((double)a + (double)lo) / 2.0 / (double)cnt);
        }
    }
    free(w);
}

void circuit_normalize(vc_scores *norm, const vc_scores *raw, const vc_model *m, const vc_target *t) {
    unsigned char **cone;
    circuit_reach(NULL, &cone, m, raw, NULL, t);
    scores_copy(norm, raw);
    for (int l = 0; l < raw->n_layers; l++) {
        const vc_layer_scores *L = &raw->l[l];
        const unsigned char *ok = cone[L->node];
        norm_layer(norm->l[l].nodes, L->nodes, ok, L->cout, 1);
        norm_layer(norm->l[l].edges, L->edges, ok, (size_t)L->cout * L->cg, L->cg);
    }
    circuit_reach_free(m, cone);
}

// ---- selection ------------------------------------------------------------------

typedef struct { float v; size_t k; } ranked;
// Decreasing score; ties in increasing k (graph order).
static int by_score_desc(const void *a, const void *b) {
    const ranked *x = a, *y = b;
    if (x->v != y->v) return x->v > y->v ? -1 : 1;
    return x->k < y->k ? -1 : x->k > y->k;
}

static size_t count_for(double fraction, size_t n) {
    double want = fraction * (double)n - 1e-9;
    size_t k = want <= 0 ? 0 : (size_t)ceil(want);
    return k > n ? n : k;
}

// Marks the shortest prefix of r (m entries, sorted) whose score sum reaches
// share * total; nothing when the total is 0.
static void keep_share(const ranked *r, size_t m, double share, unsigned char *keep, size_t stride) {
    double total = 0, acc = 0;
    for (size_t q = 0; q < m; q++) total += r[q].v > 0 ? r[q].v : 0;
    for (size_t q = 0; q < m && total > 0 && acc < share * total; q++) {
        acc += r[q].v > 0 ? r[q].v : 0;
        keep[r[q].k * stride] = 1;
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
// read it). Traced through per-channel ops and concat; an add, the input or
// anything else counts as present.
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
                if (nd->op == VC_OP_CONCAT) {
                    int k = 0;
                    while (k < nd->n_in - 1 && ch >= m->nodes[nd->in[k]].c) ch -= m->nodes[nd->in[k++]].c;
                    n = nd->in[k];
                } else if (is_per_channel(nd->op)) n = nd->in[0];
                else break;
            }
        }
    }
    return out;
}

void circuit_remove_dead(vc_circuit *c, const vc_model *m, const vc_scores *layout, const vc_target *t) {
    if (getenv("VISCNN_CIRCUIT_NODEAD")) { count_kept(c, layout, &c->n_nodes, &c->n_edges); return; }
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

int circuit_extract(vc_circuit *c, const vc_model *m, const vc_scores *raw, const vc_target *t,
                    const vc_circuit_spec *spec_in, vc_error *err) {
    memset(c, 0, sizeof *c);
    vc_circuit_spec spec = *spec_in;
    int rc = circuit_spec_check(&spec, err);
    if (rc) return rc;
    unsigned char **cone;
    circuit_reach(NULL, &cone, m, raw, NULL, t);
    int *lo = layer_map(m, raw);
    circuit_alloc(c, raw);
    count_cone(c, raw, cone);
    vc_scores norm;
    circuit_normalize(&norm, raw, m, t);

    // 1. nodes
    if (spec.mode == VC_C_THRESHOLD) {
        for (int l = 0; l < raw->n_layers; l++)
            for (int j = 0; j < raw->l[l].cout; j++)
                c->node[l][j] = cone[raw->l[l].node][j] && norm.l[l].nodes[j] >= spec.node_threshold;
    } else if (spec.mode == VC_C_HIERARCHICAL) {
        for (int l = 0; l < raw->n_layers; l++) {
            const vc_layer_scores *L = &raw->l[l];
            ranked *r = malloc_check((L->cout + 1) * sizeof(ranked));
            size_t n = 0;
            for (int j = 0; j < L->cout; j++)
                if (cone[L->node][j]) r[n++] = (ranked){L->nodes[j], (size_t)j};
            qsort(r, n, sizeof(ranked), by_score_desc);
            keep_share(r, n, spec.node_threshold, c->node[l], 1);
            free(r);
        }
    } else {
        ranked *r = malloc_check((c->total_nodes + 1) * sizeof(ranked));
        size_t n = 0, base = 0;
        for (int l = 0; l < raw->n_layers; base += raw->l[l].cout, l++)
            for (int j = 0; j < raw->l[l].cout; j++)
                if (cone[raw->l[l].node][j]) r[n++] = (ranked){norm.l[l].nodes[j], base + j};
        qsort(r, n, sizeof(ranked), by_score_desc);
        size_t keep = count_for(spec.keep_nodes, n);
        for (size_t q = 0; q < keep; q++) {
            size_t k = r[q].k;
            int l = 0;
            for (; k >= (size_t)raw->l[l].cout; l++) k -= raw->l[l].cout;
            c->node[l][k] = 1;
        }
        free(r);
    }

    // 2. edges: candidates are the kernels into a selected node from a channel
    // whose producer is not an unselected node
    unsigned char **unsel = producer_unselected(m, raw, c, lo);
    #define CANDIDATE(l, L, j, i) (c->node[l][j] && !unsel[l][((j) / ((L)->cout / (L)->groups)) * (L)->cg + (i)])
    if (spec.mode == VC_C_THRESHOLD) {
        for (int l = 0; l < raw->n_layers; l++) {
            const vc_layer_scores *L = &raw->l[l];
            for (int j = 0; j < L->cout; j++)
                for (int i = 0; i < L->cg; i++)
                    c->edge[l][(size_t)j * L->cg + i] = CANDIDATE(l, L, j, i) && norm.l[l].edges[(size_t)j * L->cg + i] >= spec.edge_threshold;
        }
    } else if (spec.mode == VC_C_HIERARCHICAL) {
        for (int l = 0; l < raw->n_layers; l++) {
            const vc_layer_scores *L = &raw->l[l];
            int Cog = L->cout / L->groups;
            ranked *r = malloc_check(((size_t)(L->cg > Cog ? L->cg : Cog) + 1) * sizeof(ranked));
            for (int j = 0; j < L->cout; j++) {   // each out-node: its top incoming kernels
                size_t n = 0;
                for (int i = 0; i < L->cg; i++)
                    if (CANDIDATE(l, L, j, i)) r[n++] = (ranked){L->edges[(size_t)j * L->cg + i], (size_t)j * L->cg + i};
                qsort(r, n, sizeof(ranked), by_score_desc);
                keep_share(r, n, spec.edge_threshold, c->edge[l], 1);
            }
            for (int ch = 0; ch < L->cin; ch++) {   // each in-channel: its top outgoing kernels (within its group)
                int g = ch / L->cg, i = ch % L->cg;
                size_t n = 0;
                for (int j = g * Cog; j < (g + 1) * Cog; j++)
                    if (CANDIDATE(l, L, j, i)) r[n++] = (ranked){L->edges[(size_t)j * L->cg + i], (size_t)j * L->cg + i};
                qsort(r, n, sizeof(ranked), by_score_desc);
                keep_share(r, n, spec.edge_threshold, c->edge[l], 1);
            }
            free(r);
        }
    } else {
        size_t n = 0, base = 0;
        ranked *r = malloc_check((c->total_edges + 1) * sizeof(ranked));
        for (int l = 0; l < raw->n_layers; base += (size_t)raw->l[l].cout * raw->l[l].cg, l++) {
            const vc_layer_scores *L = &raw->l[l];
            for (int j = 0; j < L->cout; j++)
                for (int i = 0; i < L->cg; i++)
                    if (cone[L->node][j] && CANDIDATE(l, L, j, i))
                        r[n++] = (ranked){norm.l[l].edges[(size_t)j * L->cg + i], base + (size_t)j * L->cg + i};
        }
        qsort(r, n, sizeof(ranked), by_score_desc);
        size_t keep = count_for(spec.keep_edges, c->total_edges);
        for (size_t q = 0; q < keep && q < n; q++) {
            size_t k = r[q].k;
            int l = 0;
            for (; k >= (size_t)raw->l[l].cout * raw->l[l].cg; l++) k -= (size_t)raw->l[l].cout * raw->l[l].cg;
            c->edge[l][k] = 1;
        }
        free(r);
    }
    #undef CANDIDATE
    for (int l = 0; l < raw->n_layers; l++) free(unsel[l]);
    free(unsel);
    count_kept(c, raw, &c->sel_nodes, &c->sel_edges);
    circuit_remove_dead(c, m, raw, t);
    scores_free(&norm);
    free(lo);
    circuit_reach_free(m, cone);
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
        qsort(r, n, sizeof(ranked), by_score_desc);
        for (size_t q = 0; q < counts[l] && q < n; q++) c->edge[l][r[q].k] = 1;
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
