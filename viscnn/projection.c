// projection.c: the display graph and the layouts of its layers (see
// projection.h for the definitions and constants).
#include "projection.h"
#include <cblas.h>
#include <lapacke.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "export.h"
#include "chanmap.h"
#include "../engine/util.h"

const char *const vc_dlayer_kind_names[VC_DL_COUNT] = {"input", "conv", "add"};
const char *const vc_projection_names[VC_PROJ_COUNT] = {"mds", "mds-smooth", "grid", "weights"};

// ---- display graph ---------------------------------------------------------------

static int is_display_add(const vc_node *n) { return n->op == VC_OP_ADD && n->n_in == 2 && n->rank == 4; }

vc_dsrc dgraph_trace(const vc_dgraph *g, const vc_model *m, int node, int ch) {
    for (;;) {
        const vc_node *n = &m->nodes[node];
        if (ch < 0 || ch >= n->c) return (vc_dsrc){-1, -1};
        if (g->layer_of[node] >= 0) return (vc_dsrc){g->layer_of[node], ch};
        // per-channel ops, concat, shuffle, slice, gates (mul's operand 0), norms
        int src, from = chan_source(m, node, ch, 1, &src);
        if (from < 0) return (vc_dsrc){-1, -1};   // linear, flatten, log_softmax mix channels
        node = from, ch = src;
    }
}

void dgraph_build(vc_dgraph *g, const vc_model *m) {
    memset(g, 0, sizeof *g);
    g->layer_of = malloc_check(m->n_nodes * sizeof(int));
    for (int i = 0; i < m->n_nodes; i++) {
        const vc_node *n = &m->nodes[i];
        int shown = i == 0 || n->op == VC_OP_CONV2D || is_display_add(n);
        g->layer_of[i] = shown ? g->n_layers++ : -1;
    }
    g->l = calloc_check(g->n_layers, sizeof(vc_dlayer));
    for (int i = 0; i < m->n_nodes; i++) {
        if (g->layer_of[i] < 0) continue;
        const vc_node *n = &m->nodes[i];
        vc_dlayer *D = &g->l[g->layer_of[i]];
        D->node = i;
        D->c = n->c;
        D->groups = 1;
        if (i == 0) {
            D->kind = VC_DL_INPUT;
        } else if (n->op == VC_OP_CONV2D) {
            int cin = m->nodes[n->in[0]].c;
            D->kind = VC_DL_CONV;
            D->groups = n->a.groups;
            D->cg = cin / n->a.groups;
            D->n_src = cin;
            D->src = malloc_check(cin * sizeof(vc_dsrc));
            for (int c = 0; c < cin; c++) D->src[c] = dgraph_trace(g, m, n->in[0], c);
        } else {
            D->kind = VC_DL_ADD;
            D->n_src = 2 * n->c;
            D->src = malloc_check(D->n_src * sizeof(vc_dsrc));
            for (int k = 0; k < 2; k++)
                for (int c = 0; c < n->c; c++) D->src[k * n->c + c] = dgraph_trace(g, m, n->in[k], c);
        }
    }
}

void dgraph_free(vc_dgraph *g) {
    for (int l = 0; l < g->n_layers; l++) free(g->l[l].src);
    free(g->l);
    free(g->layer_of);
    memset(g, 0, sizeof *g);
}

vc_dsrc dgraph_kernel_source(const vc_dgraph *g, int layer, int j, int i) {
    const vc_dlayer *D = &g->l[layer];
    VC_ASSERT(D->kind == VC_DL_CONV && j >= 0 && j < D->c && i >= 0 && i < D->cg);
    return D->src[(j / (D->c / D->groups)) * D->cg + i];
}

int dgraph_nodes(const vc_dgraph *g) {
    int n = 0;
    for (int l = 0; l < g->n_layers; l++) n += g->l[l].c;
    return n;
}

// ---- layouts of one layer ----------------------------------------------------------

int projection_parse(vc_projection *p, const char *s, vc_error *err) {
    for (int i = 0; i < VC_PROJ_COUNT; i++)
        if (!strcmp(s, vc_projection_names[i])) { *p = (vc_projection)i; return VC_OK; }
    return vc_fail(err, VC_EINPUT, "--projection %s: unknown projection (mds, mds-smooth, grid, weights)", s);
}

int projection_needs_images(vc_projection p) { return p == VC_PROJ_MDS || p == VC_PROJ_MDS_SMOOTH; }

void layout_grid(double *p, int n) {
    if (n <= 0) return;
    int cols = (int)ceil(sqrt((double)n));
    while ((long)cols * cols < n) cols++;
    while (cols > 1 && (long)(cols - 1) * (cols - 1) >= n) cols--;
    int rows = (n + cols - 1) / cols;
    for (int k = 0; k < n; k++) {
        p[2 * k] = (k % cols) - 0.5 * (cols - 1);
        p[2 * k + 1] = (k / cols) - 0.5 * (rows - 1);
    }
}

void layout_sunflower(double *p, int n) {
    const double golden = 2.39996322972865332;   // pi * (3 - sqrt 5)
    double R = VC_PROJ_RADIUS * sqrt((double)n);
    for (int k = 0; k < n; k++) {
        double r = n == 1 ? 0 : R * sqrt((k + 0.5) / n), a = k * golden;
        p[2 * k] = r * cos(a);
        p[2 * k + 1] = r * sin(a);
    }
}

int mds_classical(double *x, const double *d, int n, vc_error *err) {
    if (n <= 0) return VC_OK;
    if (n == 1) { x[0] = x[1] = 0; return VC_OK; }
    // B = -1/2 J D2 J: double centring of the squared distances.
    double *b = malloc_check((size_t)n * n * sizeof(double)), *rm = calloc_check(n, sizeof(double)), all = 0;
    for (int i = 0; i < n; i++) {
        for (int j = 0; j < n; j++) {
            double v = d[(size_t)i * n + j];
            b[(size_t)i * n + j] = v * v;
            rm[i] += v * v;
        }
        all += rm[i];
        rm[i] /= n;
    }
    all /= (double)n * n;
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++) b[(size_t)i * n + j] = -0.5 * (b[(size_t)i * n + j] - rm[i] - rm[j] + all);
    double w[2], *z = malloc_check((size_t)n * 2 * sizeof(double));
    lapack_int found = 0, *supp = malloc_check((size_t)2 * n * sizeof(lapack_int));
    lapack_int info = LAPACKE_dsyevr(LAPACK_ROW_MAJOR, 'V', 'I', 'U', n, b, n, 0, 0, n - 1, n, 0, &found, w, z, 2, supp);
    int rc = VC_OK;
    if (info != 0 || found != 2) {
        rc = vc_fail(err, VC_EINTERNAL, "mds: LAPACKE_dsyevr failed (info %d, %d eigenvalues) on a %dx%d matrix",
                     (int)info, (int)found, n, n);
    } else {
        // w ascending: column 1 is the largest eigenvalue -> axis 0 (y).
        for (int a = 0; a < 2; a++) {
            int col = 1 - a, big = 0;
            for (int i = 1; i < n; i++) if (fabs(z[2 * i + col]) > fabs(z[2 * big + col])) big = i;
            double s = (z[2 * big + col] < 0 ? -1 : 1) * sqrt(w[col] > 0 ? w[col] : 0);
            for (int i = 0; i < n; i++) x[2 * i + a] = s * z[2 * i + col];
        }
    }
    free(b); free(rm); free(z); free(supp);
    return rc;
}

double mds_stress(const double *x, const double *d, int n) {
    double s = 0;
    for (int i = 0; i < n; i++)
        for (int j = i + 1; j < n; j++) {
            double dy = x[2 * i] - x[2 * j], dz = x[2 * i + 1] - x[2 * j + 1];
            double r = d[(size_t)i * n + j] - sqrt(dy * dy + dz * dz);
            s += r * r;
        }
    return s;
}

// One Guttman transform: xn = (1/n) B(x) x, i.e. row i = (1/n) sum_{j != i}
// (d_ij / |x_i - x_j|) (x_i - x_j). Returns the stress of x (not xn). Rows are
// independent, each summed in order: the result does not depend on threads.
static double guttman(double *xn, const double *x, const double *d, int n, double *row_stress) {
    #pragma omp parallel for schedule(static) if (n >= 1024)
    for (int i = 0; i < n; i++) {
        double ay = 0, az = 0, s = 0;
        for (int j = 0; j < n; j++) {
            if (j == i) continue;
            double dy = x[2 * i] - x[2 * j], dz = x[2 * i + 1] - x[2 * j + 1], dist = sqrt(dy * dy + dz * dz);
            double dij = d[(size_t)i * n + j], r = dij - dist;
            if (j > i) s += r * r;
            if (dist > 0) { ay += dij / dist * dy; az += dij / dist * dz; }
        }
        xn[2 * i] = ay / n;
        xn[2 * i + 1] = az / n;
        row_stress[i] = s;
    }
    double s = 0;
    for (int i = 0; i < n; i++) s += row_stress[i];
    return s;
}

double mds_smacof(double *x, const double *d, int n, int max_iter, double tol) {
    if (n < 2) return 0;
    double *xn = malloc_check((size_t)2 * n * sizeof(double)), *rs = malloc_check(n * sizeof(double));
    double scale = 0, prev = INFINITY;
    for (size_t k = 0; k < (size_t)n * n; k++) scale += d[k] * d[k];
    for (int it = 0; it < max_iter; it++) {
        double s = guttman(xn, x, d, n, rs);
        // x stays when it is (numerically) exact or the last step gained too little.
        if (s <= 1e-28 * scale || (it > 0 && prev - s < tol * prev)) break;
        memcpy(x, xn, (size_t)2 * n * sizeof(double));
        prev = s;
    }
    free(xn); free(rs);
    return mds_stress(x, d, n);
}

int layout_vectors(double *p, int *placed, const double *v, int n, int dim, vc_error *err) {
    *placed = 0;
    int *idx = malloc_check(n * sizeof(int)), k = 0;
    double *u = malloc_check((size_t)n * (dim ? dim : 1) * sizeof(double));
    for (int i = 0; i < n; i++) {
        const double *r = v + (size_t)i * dim;
        double ss = 0;
        for (int c = 0; c < dim; c++) ss += r[c] * r[c];
        if (!(ss > 0) || !isfinite(ss)) continue;
        double inv = 1 / sqrt(ss);
        for (int c = 0; c < dim; c++) u[(size_t)k * dim + c] = r[c] * inv;
        idx[k++] = i;
    }
    int rc = VC_OK;
    if (k > 0) {
        double *x = calloc_check((size_t)2 * k, sizeof(double));
        if (k >= 2) {
            // Unit vectors: |u_i - u_j|^2 = 2 - 2 <u_i, u_j>.
            double *gm = calloc_check((size_t)k * k, sizeof(double));
            cblas_dsyrk(CblasRowMajor, CblasUpper, CblasNoTrans, k, dim, 1.0, u, dim, 0.0, gm, k);
            for (int i = 0; i < k; i++) {
                gm[(size_t)i * k + i] = 0;
                for (int j = i + 1; j < k; j++) {
                    double q = 2 - 2 * gm[(size_t)i * k + j];
                    gm[(size_t)i * k + j] = gm[(size_t)j * k + i] = q > 0 ? sqrt(q) : 0;
                }
            }
            rc = mds_classical(x, gm, k, err);
            if (!rc) mds_smacof(x, gm, k, VC_SMACOF_ITERS, VC_SMACOF_TOL);
            free(gm);
        }
        if (!rc) {
            memset(p, 0, (size_t)2 * n * sizeof(double));
            double rmax = 0;
            for (int q = 0; q < k; q++) {
                p[2 * idx[q]] = x[2 * q];
                p[2 * idx[q] + 1] = x[2 * q + 1];
                double r = hypot(x[2 * q], x[2 * q + 1]);
                if (r > rmax) rmax = r;
            }
            if (rmax > 0) {
                double s = VC_PROJ_RADIUS * sqrt((double)n) / rmax;
                for (int q = 0; q < 2 * n; q++) p[q] *= s;
            }
            *placed = 1;
        }
        free(x);
    }
    free(idx); free(u);
    return rc;
}

double rotation_cost(const double *p, int n_e, const int *j, const double *q, int k) {
    double a = 2 * M_PI * k / VC_ROT_ANGLES, c = k ? cos(a) : 1, s = k ? sin(a) : 0, sum = 0;
    for (int e = 0; e < n_e; e++) {
        double y = p[2 * j[e]], z = p[2 * j[e] + 1];
        sum += hypot(c * y - s * z - q[2 * e], s * y + c * z - q[2 * e + 1]);
    }
    return sum;
}

int rotation_best(const double *p, int n_e, const int *j, const double *q) {
    int best = 0;
    double bc = rotation_cost(p, n_e, j, q, 0);
    for (int k = 1; k < VC_ROT_ANGLES; k++) {
        double c = rotation_cost(p, n_e, j, q, k);
        if (c < bc) { bc = c; best = k; }
    }
    return best;
}

void rotate_layer(double *p, int n, int k) {
    if (k % VC_ROT_ANGLES == 0) return;
    double a = 2 * M_PI * k / VC_ROT_ANGLES, c = cos(a), s = sin(a);
    for (int i = 0; i < n; i++) {
        double y = p[2 * i], z = p[2 * i + 1];
        p[2 * i] = c * y - s * z;
        p[2 * i + 1] = s * y + c * z;
    }
}

// ---- mds-smooth relaxation -----------------------------------------------------------

// Points binned in square cells of side `reach`: a pair closer than reach
// lies in the same or neighbouring cells.
typedef struct { long long key; int i; } cell_item;
static int cmp_cell(const void *a, const void *b) {
    const cell_item *u = a, *v = b;
    return u->key < v->key ? -1 : u->key > v->key ? 1 : u->i - v->i;
}
static long long cell_of(double v, double reach) {
    double c = floor(v / reach);
    return (long long)(c < -1e9 ? -1e9 : c > 1e9 ? 1e9 : c);
}
#define CELL_KEY(cy, cz) ((cy) * 4000000000LL + (cz))

// First item of cell `key` in the sorted items, or -1.
static int cell_find(const cell_item *it, int n, long long key) {
    int lo = 0, hi = n;
    while (lo < hi) { int mid = (lo + hi) / 2; if (it[mid].key < key) lo = mid + 1; else hi = mid; }
    return lo < n && it[lo].key == key ? lo : -1;
}

// Pairs closer than `reach` (each once, i < j, in a deterministic order).
// Returns the count; *pairs grows as needed.
static int close_pairs(const double *p, int n, double reach, cell_item *it, int **pairs, int *cap) {
    for (int i = 0; i < n; i++) { it[i].key = CELL_KEY(cell_of(p[2 * i], reach), cell_of(p[2 * i + 1], reach)); it[i].i = i; }
    qsort(it, n, sizeof(cell_item), cmp_cell);
    int np = 0;
    for (int a = 0; a < n; a++) {
        int i = it[a].i;
        long long cy = cell_of(p[2 * i], reach), cz = cell_of(p[2 * i + 1], reach);
        // the rest of its own cell, then the half-neighbourhood (each cell pair once)
        static const int nb[4][2] = {{0, 1}, {1, -1}, {1, 0}, {1, 1}};
        for (int q = -1; q < 4; q++) {
            int b = q < 0 ? a + 1 : cell_find(it, n, CELL_KEY(cy + nb[q][0], cz + nb[q][1]));
            if (b < 0) continue;
            long long key = q < 0 ? it[a].key : it[b].key;
            for (; b < n && it[b].key == key; b++) {
                int j = it[b].i;
                if (hypot(p[2 * i] - p[2 * j], p[2 * i + 1] - p[2 * j + 1]) >= reach) continue;
                if (np == *cap) {
                    *cap = *cap ? 2 * *cap : 256;
                    *pairs = realloc(*pairs, (size_t)*cap * 2 * sizeof(int));
                    VC_ASSERT(*pairs);
                }
                (*pairs)[2 * np] = i < j ? i : j;
                (*pairs)[2 * np + 1] = i < j ? j : i;
                np++;
            }
        }
    }
    return np;
}

// One sweep: every pair closer than `target` is pushed apart to exactly
// `target`, half each, in order (Gauss-Seidel). Coincident points part along
// a direction fixed by their indices. Returns how many pairs were closer than
// dmin before the sweep; with `only_if_bad`, a sweep that finds none moves
// nothing (so that 0 means: no pair closer than dmin now).
static int separate(double *p, int n, double dmin, double target, int only_if_bad, cell_item *cells, int **pairs, int *cap) {
    int np = close_pairs(p, n, target, cells, pairs, cap), bad = 0;
    for (int e = 0; e < np; e++) {
        int i = (*pairs)[2 * e], j = (*pairs)[2 * e + 1];
        bad += hypot(p[2 * j] - p[2 * i], p[2 * j + 1] - p[2 * i + 1]) < dmin;
    }
    if (only_if_bad && !bad) return 0;
    for (int e = 0; e < np; e++) {
        int i = (*pairs)[2 * e], j = (*pairs)[2 * e + 1];
        double dy = p[2 * j] - p[2 * i], dz = p[2 * j + 1] - p[2 * i + 1], dist = hypot(dy, dz);
        if (dist >= target) continue;
        if (dist < 1e-12 * target) {
            double a = 2.39996322972865332 * (double)(i + 1) + 0.7 * j;
            dy = cos(a); dz = sin(a); dist = 0;
        } else { dy /= dist; dz /= dist; }
        double h = 0.5 * (target - dist);
        p[2 * i] -= h * dy; p[2 * i + 1] -= h * dz;
        p[2 * j] += h * dy; p[2 * j + 1] += h * dz;
    }
    return bad;
}

double min_pair_distance(const double *p, int n) {
    double best = INFINITY;
    for (int i = 0; i < n; i++)
        for (int j = i + 1; j < n; j++) {
            double d = hypot(p[2 * i] - p[2 * j], p[2 * i + 1] - p[2 * j + 1]);
            if (d < best) best = d;
        }
    return best;
}

void relax_layer(double *p, const double *p0, int n, double dmin) {
    if (n < 2 || !(dmin > 0)) return;
    double target = dmin * VC_RELAX_SLACK;
    cell_item *cells = malloc_check(n * sizeof(cell_item));
    int *pairs = NULL, cap = 0;
    // the pull weakens linearly to 0 so that the last rounds are not jammed
    for (int it = 0; it < VC_RELAX_ITERS; it++) {
        double pull = VC_RELAX_PULL * (1 - (double)it / VC_RELAX_ITERS);
        for (int q = 0; q < 2 * n; q++) p[q] += pull * (p0[q] - p[q]);
        separate(p, n, dmin, target, 0, cells, &pairs, &cap);
    }
    int bad = 1;
    for (int it = 0; it < VC_RELAX_SWEEPS && bad; it++) bad = separate(p, n, dmin, target, 1, cells, &pairs, &cap);
    // Guaranteed end: scaling about the centroid multiplies every distance.
    for (int guard = 0; bad && guard < 100; guard++) {
        double md = min_pair_distance(p, n);
        if (md >= dmin) break;
        if (md > 0) {
            double cy = 0, cz = 0, s = target / md;
            for (int i = 0; i < n; i++) { cy += p[2 * i]; cz += p[2 * i + 1]; }
            cy /= n; cz /= n;
            for (int i = 0; i < n; i++) { p[2 * i] = cy + s * (p[2 * i] - cy); p[2 * i + 1] = cz + s * (p[2 * i + 1] - cz); }
        } else {
            separate(p, n, dmin, target, 0, cells, &pairs, &cap);
        }
    }
    free(cells); free(pairs);
}

// ---- whole-model projections -------------------------------------------------------------

// What a display layer contributes: node vectors (NULL: none) and node scores.
typedef struct {
    int dim;
    double *vec;              // (c, dim) or NULL
    double *score;            // (c)
} layer_data;

// Row ch of layer L's vectors, L2-normalised, added into out (scaled by a),
// zero-padded to the caller's width. Nothing when there is no vector.
static void add_unit_row(double *out, const layer_data *ld, vc_dsrc s, double a) {
    if (s.layer < 0 || !ld[s.layer].vec) return;
    const layer_data *L = &ld[s.layer];
    const double *r = L->vec + (size_t)s.ch * L->dim;
    double ss = 0;
    for (int c = 0; c < L->dim; c++) ss += r[c] * r[c];
    if (!(ss > 0) || !isfinite(ss)) return;
    double f = a / sqrt(ss);
    for (int c = 0; c < L->dim; c++) out[c] += f * r[c];
}

static double node_score(const layer_data *ld, vc_dsrc s) { return s.layer < 0 ? 0 : ld[s.layer].score[s.ch]; }

// The strongest edges into a layer, kept sorted (score desc; earlier first on ties).
typedef struct { int n; double s[VC_ROT_EDGES]; int j[VC_ROT_EDGES]; vc_dsrc src[VC_ROT_EDGES]; } top_edges;
static void top_push(top_edges *t, double s, int j, vc_dsrc src) {
    if (!(s > 0) || src.layer < 0 || (t->n == VC_ROT_EDGES && s <= t->s[t->n - 1])) return;
    int k = t->n < VC_ROT_EDGES ? t->n++ : VC_ROT_EDGES - 1;
    while (k > 0 && t->s[k - 1] < s) { t->s[k] = t->s[k - 1]; t->j[k] = t->j[k - 1]; t->src[k] = t->src[k - 1]; k--; }
    t->s[k] = s; t->j[k] = j; t->src[k] = src;
}

// mean_k |W[j, i, k]|, the weight-magnitude strength of kernel (j, i).
static double kernel_mag(const float *w, size_t kk) {
    double s = 0;
    for (size_t k = 0; k < kk; k++) s += fabs((double)w[k]);
    return s / (double)kk;
}

void layout_free(vc_layout *lay) {
    for (int l = 0; l < lay->n_layers; l++) free(lay->pos[l]);
    free(lay->pos); free(lay->c);
    memset(lay, 0, sizeof *lay);
}

int projection_run(vc_layout *out, const vc_model *m, const vc_dgraph *g, vc_projection proj,
                   const vc_set_scores *ss, vc_error *err) {
    memset(out, 0, sizeof *out);
    int with_scores = projection_needs_images(proj);
    if (with_scores && (!ss || ss->n_cat < 2))
        return vc_fail(err, VC_EINPUT, "%s needs an image set with class subfolders (2 or more categories); the set has %d",
                       vc_projection_names[proj], ss ? ss->n_cat : 0);
    int nl = g->n_layers;
    out->n_layers = nl;
    out->c = malloc_check(nl * sizeof(int));
    out->pos = calloc_check(nl, sizeof(double *));
    for (int l = 0; l < nl; l++) {
        out->c[l] = g->l[l].c;
        out->pos[l] = calloc_check((size_t)2 * g->l[l].c, sizeof(double));
    }
    if (proj == VC_PROJ_GRID) {
        for (int l = 0; l < nl; l++) layout_grid(out->pos[l], g->l[l].c);
        return VC_OK;
    }
    // score layer of each conv node (mds)
    int *sl_of = malloc_check(m->n_nodes * sizeof(int));
    for (int i = 0; i < m->n_nodes; i++) sl_of[i] = -1;
    if (with_scores)
        for (int s = 0; s < ss->overall.n_layers; s++) sl_of[ss->overall.l[s].node] = s;
    // vectors are kept only while a later add still needs them
    int *last_use = malloc_check(nl * sizeof(int));
    for (int l = 0; l < nl; l++) last_use[l] = l;
    for (int l = 0; l < nl; l++)
        if (g->l[l].kind == VC_DL_ADD)
            for (int k = 0; k < g->l[l].n_src; k++)
                if (g->l[l].src[k].layer >= 0) last_use[g->l[l].src[k].layer] = l;
    layer_data *ld = calloc_check(nl, sizeof(layer_data));
    int rc = VC_OK;
    for (int l = 0; l < nl && !rc; l++) {
        const vc_dlayer *D = &g->l[l];
        const vc_node *n = &m->nodes[D->node];
        layer_data *L = &ld[l];
        int C = D->c, sl = D->kind == VC_DL_CONV ? sl_of[D->node] : -1;
        L->score = calloc_check(C, sizeof(double));
        const float *w = NULL;
        size_t kk = 0;
        if (D->kind == VC_DL_CONV) {
            w = m->params[n->param[VC_P_WEIGHT]].data;   // (C_out, C_in/groups, kh, kw)
            kk = (size_t)n->a.kernel[0] * n->a.kernel[1];
        }
        // node vectors and scores
        if (D->kind == VC_DL_CONV && with_scores && sl >= 0) {
            L->dim = ss->n_cat;
            L->vec = malloc_check((size_t)C * L->dim * sizeof(double));
            for (int j = 0; j < C; j++) {
                for (int c = 0; c < ss->n_cat; c++) L->vec[(size_t)j * L->dim + c] = ss->cat[c].l[sl].nodes[j];
                L->score[j] = ss->overall.l[sl].nodes[j];
            }
        } else if (D->kind == VC_DL_CONV && !with_scores) {
            L->dim = (int)(D->cg * kk);
            L->vec = malloc_check((size_t)C * L->dim * sizeof(double));
            for (size_t q = 0; q < (size_t)C * L->dim; q++) L->vec[q] = w[q];
            for (int j = 0; j < C; j++) {
                double s = 0;
                for (int i = 0; i < D->cg; i++) s += kernel_mag(w + ((size_t)j * D->cg + i) * kk, kk);
                L->score[j] = D->cg ? s / D->cg : 0;
            }
        } else if (D->kind == VC_DL_ADD) {
            // operand widths (a channel of a concat may come from layers of different widths)
            int wd[2] = {0, 0};
            for (int k = 0; k < 2; k++)
                for (int c = 0; c < C; c++) {
                    vc_dsrc s = D->src[k * C + c];
                    if (s.layer >= 0 && ld[s.layer].vec && ld[s.layer].dim > wd[k]) wd[k] = ld[s.layer].dim;
                }
            L->dim = with_scores ? (wd[0] > wd[1] ? wd[0] : wd[1]) : wd[0] + wd[1];
            if (L->dim > 0) {
                L->vec = calloc_check((size_t)C * L->dim, sizeof(double));
                for (int c = 0; c < C; c++)
                    for (int k = 0; k < 2; k++) {
                        double *row = L->vec + (size_t)c * L->dim + (with_scores || !k ? 0 : wd[0]);
                        add_unit_row(row, ld, D->src[k * C + c], with_scores ? 0.5 : 1);
                    }
            }
            for (int c = 0; c < C; c++) L->score[c] = 0.5 * (node_score(ld, D->src[c]) + node_score(ld, D->src[C + c]));
        }
        // place
        double *p = out->pos[l];
        int placed = 0;
        if (L->vec) rc = layout_vectors(p, &placed, L->vec, C, L->dim, err);
        if (rc) break;
        if (!placed) layout_sunflower(p, C);
        if (placed && D->kind != VC_DL_INPUT) {
            top_edges t = {0};
            if (D->kind == VC_DL_CONV && (sl >= 0 || !with_scores)) {
                const float *es = with_scores ? ss->overall.l[sl].edges : NULL;   // (C_out, cg)
                for (int j = 0; j < C; j++)
                    for (int i = 0; i < D->cg; i++) {
                        size_t e = (size_t)j * D->cg + i;
                        top_push(&t, es ? es[e] : kernel_mag(w + e * kk, kk), j, dgraph_kernel_source(g, l, j, i));
                    }
            } else if (D->kind == VC_DL_ADD) {
                for (int c = 0; c < C; c++)
                    for (int k = 0; k < 2; k++) {
                        vc_dsrc s = D->src[k * C + c];
                        top_push(&t, 0.5 * (node_score(ld, s) + L->score[c]), c, s);
                    }
            }
            double q[2 * VC_ROT_EDGES];
            for (int e = 0; e < t.n; e++) {
                q[2 * e] = out->pos[t.src[e].layer][2 * t.src[e].ch];
                q[2 * e + 1] = out->pos[t.src[e].layer][2 * t.src[e].ch + 1];
            }
            if (t.n) rotate_layer(p, C, rotation_best(p, t.n, t.j, q));
        }
        if (proj == VC_PROJ_MDS_SMOOTH) {
            double *p0 = malloc_check((size_t)2 * C * sizeof(double));
            memcpy(p0, p, (size_t)2 * C * sizeof(double));
            relax_layer(p, p0, C, VC_SMOOTH_DMIN);
            free(p0);
        }
        for (int k = 0; k <= l; k++)
            if (ld[k].vec && last_use[k] <= l) { free(ld[k].vec); ld[k].vec = NULL; }
    }
    for (int l = 0; l < nl; l++) { free(ld[l].vec); free(ld[l].score); }
    free(ld); free(last_use); free(sl_of);
    if (rc) layout_free(out);
    return rc;
}

void projection_export_json(FILE *f, const vc_model *m, const vc_dgraph *g, const vc_layout *lay) {
    fputs("\"layers\": [", f);
    for (int l = 0; l < g->n_layers; l++) {
        const vc_dlayer *D = &g->l[l];
        fputs(l ? ",\n{\"name\": " : "\n{\"name\": ", f);
        export_string(f, m->nodes[D->node].name);
        fprintf(f, ", \"kind\": \"%s\", \"depth\": %d, \"channels\": %d, \"positions\": [",
                vc_dlayer_kind_names[D->kind], l, D->c);
        for (int c = 0; c < D->c; c++) {
            fputs(c ? ",[" : "[", f);
            export_float(f, lay->pos[l][2 * c] + 0.0);   // + 0.0: no "-0"
            fputc(',', f);
            export_float(f, lay->pos[l][2 * c + 1] + 0.0);
            fputc(']', f);
        }
        fputs("]}", f);
    }
    fputs("\n],\n\"sources\": [", f);
    int first = 1;
    for (int l = 0; l < g->n_layers; l++) {
        const vc_dlayer *D = &g->l[l];
        if (D->kind == VC_DL_INPUT) continue;
        fprintf(f, "%s{\"layer\": %d, \"from\": [", first ? "\n" : ",\n", l);
        for (int k = 0; k < D->n_src; k++) fprintf(f, "%s[%d,%d]", k ? "," : "", D->src[k].layer, D->src[k].ch);
        fputs("]}", f);
        first = 0;
    }
    fputs("\n]", f);
}
