// test_cuda_ops.c: every CUDA op (kernels_cuda/*.cu), forward and backward,
// against the CPU backend's kernel (ops/*.c, the path vc_cpu_ops runs) on
// the same random inputs. Backward buffers start random, so accumulation
// (+=) is checked too. Error: max |gpu - cpu| / max |cpu| (tu_rel_err) must
// be <= 1e-5 (every path here is deterministic: cuBLAS FP32 without TF32,
// gathers instead of atomics); the argmax of maxpool must match exactly.
// Without a device nothing runs (tests/cuda/cuda_test.h).
#include "cuda_test.h"
#include "kernels.h"

#define TOL 1e-5

// Compares device buffer d with host reference ref (n floats) as case "name".
static void check(const char *name, const float *d, const float *ref, size_t n) {
    float *h = ct_down(d, n);
    double e = tu_rel_err(h, ref, n, 1e-6);
    tu_report(name, e <= TOL, "normalised max error %.3g > %.0e", e, TOL);
    free(h);
}

static tu_rng rng = {0x1234567ULL};

// ---- conv2d and its edges ----------------------------------------------------------------
typedef struct { int N, C, H, W, Co, k, s, p, d, g; } conv_case;

static void conv_cases(const conv_case *c) {
    conv2d_dims d = {.N = c->N, .C = c->C, .H = c->H, .W = c->W, .Co = c->Co, .kh = c->k, .kw = c->k, .sh = c->s, .sw = c->s,
                     .ph = c->p, .pw = c->p, .dh = c->d, .dw = c->d, .groups = c->g};
    conv2d_dims_finish(&d);
    char tag[160], name[256];
    snprintf(tag, sizeof tag, "N=%d C=%d H=%d W=%d Co=%d k=%d s=%d p=%d d=%d g=%d", c->N, c->C, c->H, c->W, c->Co, c->k, c->s,
             c->p, c->d, c->g);
    const int Cg = d.C / d.groups;
    const size_t nx = (size_t)d.N * d.C * d.H * d.W, ny = (size_t)d.N * d.Co * d.Ho * d.Wo,
                 nw = (size_t)d.Co * Cg * d.kh * d.kw, P = (size_t)d.Ho * d.Wo;
    float *x = tu_rand(&rng, nx), *w = tu_rand(&rng, nw), *b = tu_rand(&rng, d.Co), *dy = tu_rand(&rng, ny);
    float *dx0 = tu_rand(&rng, nx), *dw0 = tu_rand(&rng, nw), *db0 = tu_rand(&rng, d.Co);
    float *X = ct_up(x, nx), *Wd = ct_up(w, nw), *B = ct_up(b, d.Co), *DY = ct_up(dy, ny), *Y = ct_up(NULL, ny);
    float *WS = ct_up(NULL, conv2d_cuda_workspace(&d));

    snprintf(name, sizeof name, "cuda conv2d forward %s", tag);
    if (ct_run(name)) {
        float *y = tu_zeros(ny);
        conv2d_forward(y, x, w, b, &d);
        conv2d_forward_cuda(Y, X, Wd, B, &d, WS);
        check(name, Y, y, ny);
        free(y);
    }
    snprintf(name, sizeof name, "cuda conv2d backward dx dw db %s", tag);
    if (ct_run(name)) {
        float *dx = malloc(nx * 4), *dw = malloc(nw * 4), *db = malloc(d.Co * 4);
        memcpy(dx, dx0, nx * 4); memcpy(dw, dw0, nw * 4); memcpy(db, db0, d.Co * 4);
        float *DX = ct_up(dx0, nx), *DW = ct_up(dw0, nw), *DB = ct_up(db0, d.Co);
        conv2d_backward(dx, dw, db, dy, x, w, &d);
        conv2d_backward_cuda(DX, DW, DB, DY, X, Wd, &d, WS);
        char sub[300];
        snprintf(sub, sizeof sub, "%s: dx", name); check(sub, DX, dx, nx);
        snprintf(sub, sizeof sub, "%s: dw", name); check(sub, DW, dw, nw);
        snprintf(sub, sizeof sub, "%s: db", name); check(sub, DB, db, d.Co);
        cudaFree(DX); cudaFree(DW); cudaFree(DB); free(dx); free(dw); free(db);
    }
    snprintf(name, sizeof name, "cuda conv2d masked weights and their gradient %s", tag);
    if (ct_run(name)) {
        const int kk = d.kh * d.kw;
        float *km = tu_rand(&rng, (size_t)d.Co * Cg), *cm = tu_rand(&rng, d.Co);
        for (size_t q = 0; q < (size_t)d.Co * Cg; q++) km[q] = km[q] > 0;   // 0/1 as circuits set them
        float *wm = malloc(nw * 4), *bm = malloc(d.Co * 4), *dw = malloc(nw * 4), *db = malloc(d.Co * 4);
        memcpy(dw, dw0, nw * 4); memcpy(db, db0, d.Co * 4);
        for (int j = 0; j < d.Co; j++) {
            for (int c = 0; c < Cg; c++)
                for (int k = 0; k < kk; k++) {
                    size_t q = ((size_t)j * Cg + c) * kk + k;
                    wm[q] = w[q] * (cm[j] * km[(size_t)j * Cg + c]);
                    dw[q] += (cm[j] * km[(size_t)j * Cg + c]) * w[q];   // w stands in for d(masked w)
                }
            bm[j] = b[j] * cm[j];
            db[j] += cm[j] * b[j];
        }
        float *KM = ct_up(km, (size_t)d.Co * Cg), *CM = ct_up(cm, d.Co), *WM = ct_up(NULL, nw), *BM = ct_up(NULL, d.Co);
        float *DW = ct_up(dw0, nw), *DB = ct_up(db0, d.Co);
        conv2d_mask_weights_cuda(WM, BM, Wd, B, KM, CM, d.Co, Cg, kk);
        conv2d_mask_grads_cuda(DW, DB, Wd, B, KM, CM, d.Co, Cg, kk);
        char sub[300];
        snprintf(sub, sizeof sub, "%s: w", name); check(sub, WM, wm, nw);
        snprintf(sub, sizeof sub, "%s: b", name); check(sub, BM, bm, d.Co);
        snprintf(sub, sizeof sub, "%s: dw", name); check(sub, DW, dw, nw);
        snprintf(sub, sizeof sub, "%s: db", name); check(sub, DB, db, d.Co);
        cudaFree(KM); cudaFree(CM); cudaFree(WM); cudaFree(BM); cudaFree(DW); cudaFree(DB);
        free(km); free(cm); free(wm); free(bm); free(dw); free(db);
    }
    snprintf(name, sizeof name, "cuda conv2d edge maps (every image and in-channel) %s", tag);
    if (ct_run(name)) {
        const size_t ne = (size_t)(d.Co / d.groups) * P;
        float *e = malloc(ne * 4), *E = ct_up(NULL, ne);
        double worst = 0;
        for (int n = 0; n < d.N; n++)
            for (int ci = 0; ci < d.C; ci++) {
                conv2d_edge_maps(e, x, w, &d, n, ci);
                conv2d_edge_maps_cuda(E, X, Wd, &d, n, ci);
                float *h = ct_down(E, ne);
                double er = tu_rel_err(h, e, ne, 1e-6);
                if (er > worst || er != er) worst = er;
                free(h);
            }
        tu_report(name, worst <= TOL, "normalised max error %.3g > %.0e", worst, TOL);
        cudaFree(E); free(e);
    }
    snprintf(name, sizeof name, "cuda conv2d fused edge sums |e g|, e g, |e| %s", tag);
    if (ct_run(name)) {
        const size_t ns = (size_t)d.N * d.Co * Cg;
        float *aeg = tu_zeros(ns), *eg = tu_zeros(ns), *ae = tu_zeros(ns);
        float *AEG = ct_up(NULL, ns), *EG = ct_up(NULL, ns), *AE = ct_up(NULL, ns);
        conv2d_edge_sums(aeg, eg, ae, x, w, dy, &d);
        conv2d_edge_sums_cuda(AEG, EG, AE, X, Wd, DY, &d);
        char sub[300];
        snprintf(sub, sizeof sub, "%s: |e g|", name); check(sub, AEG, aeg, ns);
        snprintf(sub, sizeof sub, "%s: e g", name); check(sub, EG, eg, ns);
        snprintf(sub, sizeof sub, "%s: |e|", name); check(sub, AE, ae, ns);
        // reduced over the images as importance does: sum_n |s_n| * scale (taylor's form)
        float *red = tu_zeros((size_t)d.Co * Cg), *RED = ct_up(NULL, (size_t)d.Co * Cg);
        for (int n = 0; n < d.N; n++)
            for (size_t k = 0; k < (size_t)d.Co * Cg; k++) red[k] += fabsf(eg[(size_t)n * d.Co * Cg + k]) * 0.25f;
        conv2d_edge_reduce_cuda(RED, EG, d.N, (size_t)d.Co * Cg, 1, 0.25f);
        snprintf(sub, sizeof sub, "%s: sum over images of |e g|", name); check(sub, RED, red, (size_t)d.Co * Cg);
        cudaFree(RED); free(red);
        // only |e|, with no gradient (the act metric)
        cuda_check(cudaMemset(AE, 0, ns * 4));
        conv2d_edge_sums_cuda(NULL, NULL, AE, X, Wd, NULL, &d);
        snprintf(sub, sizeof sub, "%s: |e| without g", name); check(sub, AE, ae, ns);
        cudaFree(AEG); cudaFree(EG); cudaFree(AE); free(aeg); free(eg); free(ae);
    }
    cudaFree(X); cudaFree(Wd); cudaFree(B); cudaFree(DY); cudaFree(Y); cudaFree(WS);
    free(x); free(w); free(b); free(dy); free(dx0); free(dw0); free(db0);
}

// ---- node sums (the node scores' reductions) ----------------------------------------------
static void node_sums_case(void) {
    const int N = 3, C = 5, HW = 37;
    const char *kinds[4] = {"relu(z)|g|", "relu(z)", "|g|", "relu(z) g"};
    float *z = tu_rand(&rng, (size_t)N * C * HW), *g = tu_rand(&rng, (size_t)N * C * HW);
    float *Z = ct_up(z, (size_t)N * C * HW), *G = ct_up(g, (size_t)N * C * HW);
    double *O = NULL;
    if (ct_device()) cuda_check(cudaMalloc((void **)&O, (size_t)N * C * sizeof(double)));
    for (int k = 0; k < 4; k++) {
        char name[128];
        snprintf(name, sizeof name, "cuda node sums %s N=%d C=%d HW=%d", kinds[k], N, C, HW);
        if (!ct_run(name)) continue;
        node_sums_cuda(O, Z, G, k, N, C, HW);
        double o[15], worst = 0, scale = 1e-12;
        cuda_check(cudaMemcpy(o, O, sizeof o, cudaMemcpyDeviceToHost));
        for (int q = 0; q < N * C; q++) {
            double s = 0;
            for (int p = 0; p < HW; p++) {
                float zv = z[(size_t)q * HW + p], rz = zv > 0 ? zv : 0, gv = g[(size_t)q * HW + p];
                s += k == 0 ? rz * fabsf(gv) : k == 1 ? rz : k == 2 ? fabsf(gv) : rz * gv;
            }
            if (fabs(o[q] - s) > worst) worst = fabs(o[q] - s);
            if (fabs(s) > scale) scale = fabs(s);
        }
        tu_report(name, worst / scale <= TOL, "normalised max error %.3g", worst / scale);
    }
    cudaFree(Z); cudaFree(G); cudaFree(O); free(z); free(g);
}

// ---- linear ---------------------------------------------------------------------------------
static void linear_case(int N, int In, int Out) {
    char name[128], sub[200];
    snprintf(name, sizeof name, "cuda linear forward+backward N=%d In=%d Out=%d", N, In, Out);
    if (!ct_run(name)) return;
    size_t nx = (size_t)N * In, nw = (size_t)Out * In, ny = (size_t)N * Out;
    float *x = tu_rand(&rng, nx), *w = tu_rand(&rng, nw), *b = tu_rand(&rng, Out), *dy = tu_rand(&rng, ny);
    float *dx = tu_rand(&rng, nx), *dw = tu_rand(&rng, nw), *db = tu_rand(&rng, Out), *y = tu_zeros(ny);
    float *X = ct_up(x, nx), *Wd = ct_up(w, nw), *B = ct_up(b, Out), *DY = ct_up(dy, ny), *Y = ct_up(NULL, ny);
    float *DX = ct_up(dx, nx), *DW = ct_up(dw, nw), *DB = ct_up(db, Out);
    linear_forward(y, x, w, b, N, In, Out);
    linear_forward_cuda(Y, X, Wd, B, N, In, Out);
    linear_backward(dx, dw, db, dy, x, w, N, In, Out);
    linear_backward_cuda(DX, DW, DB, DY, X, Wd, N, In, Out);
    snprintf(sub, sizeof sub, "%s: y", name); check(sub, Y, y, ny);
    snprintf(sub, sizeof sub, "%s: dx", name); check(sub, DX, dx, nx);
    snprintf(sub, sizeof sub, "%s: dw", name); check(sub, DW, dw, nw);
    snprintf(sub, sizeof sub, "%s: db", name); check(sub, DB, db, Out);
    cudaFree(X); cudaFree(Wd); cudaFree(B); cudaFree(DY); cudaFree(Y); cudaFree(DX); cudaFree(DW); cudaFree(DB);
    free(x); free(w); free(b); free(dy); free(dx); free(dw); free(db); free(y);
}

// ---- pools ------------------------------------------------------------------------------------
typedef struct { int N, C, H, W, k, s, p, d, ceil, cip, div; } pool_case;

static void pool_cases(const pool_case *c, int maxpool) {
    pool2d_dims d = {.N = c->N, .C = c->C, .H = c->H, .W = c->W, .kh = c->k, .kw = c->k, .sh = c->s, .sw = c->s, .ph = c->p,
                     .pw = c->p, .dh = c->d, .dw = c->d, .ceil_mode = c->ceil, .count_include_pad = c->cip,
                     .divisor_override = c->div};
    pool2d_dims_finish(&d);
    char name[256], sub[300];
    snprintf(name, sizeof name, "cuda %s forward+backward N=%d C=%d H=%d W=%d k=%d s=%d p=%d d=%d ceil=%d%s", maxpool ? "maxpool2d" : "avgpool2d",
             c->N, c->C, c->H, c->W, c->k, c->s, c->p, c->d, c->ceil, maxpool ? "" : c->div ? " divisor_override" : c->cip ? " count_include_pad" : "");
    if (!ct_run(name)) return;
    size_t nx = (size_t)d.N * d.C * d.H * d.W, ny = (size_t)d.N * d.C * d.Ho * d.Wo;
    float *x = tu_rand(&rng, nx), *dy = tu_rand(&rng, ny), *dx = tu_rand(&rng, nx), *y = tu_zeros(ny);
    float *X = ct_up(x, nx), *DY = ct_up(dy, ny), *DX = ct_up(dx, nx), *Y = ct_up(NULL, ny);
    if (maxpool) {
        int32_t *idx = malloc(ny * 4), *IDX, *idx_gpu = malloc(ny * 4);
        cuda_check(cudaMalloc((void **)&IDX, ny * 4));
        maxpool2d_forward(y, idx, x, &d);
        maxpool2d_forward_cuda(Y, IDX, X, &d);
        maxpool2d_backward(dx, dy, idx, &d);
        maxpool2d_backward_cuda(DX, DY, IDX, &d);
        cuda_check(cudaMemcpy(idx_gpu, IDX, ny * 4, cudaMemcpyDeviceToHost));
        snprintf(sub, sizeof sub, "%s: argmax identical", name);
        tu_report(sub, !memcmp(idx, idx_gpu, ny * 4), "argmax differs");
        cudaFree(IDX); free(idx); free(idx_gpu);
    } else {
        avgpool2d_forward(y, x, &d);
        avgpool2d_forward_cuda(Y, X, &d);
        avgpool2d_backward(dx, dy, &d);
        avgpool2d_backward_cuda(DX, DY, &d);
    }
    snprintf(sub, sizeof sub, "%s: y", name); check(sub, Y, y, ny);
    snprintf(sub, sizeof sub, "%s: dx", name); check(sub, DX, dx, nx);
    cudaFree(X); cudaFree(DY); cudaFree(DX); cudaFree(Y); free(x); free(dy); free(dx); free(y);
}

static void adaptive_case(int H, int W, int Ho, int Wo) {
    char name[128], sub[200];
    const int N = 2, C = 3;
    snprintf(name, sizeof name, "cuda adaptive_avgpool2d forward+backward %dx%d -> %dx%d", H, W, Ho, Wo);
    if (!ct_run(name)) return;
    size_t nx = (size_t)N * C * H * W, ny = (size_t)N * C * Ho * Wo;
    float *x = tu_rand(&rng, nx), *dy = tu_rand(&rng, ny), *dx = tu_rand(&rng, nx), *y = tu_zeros(ny);
    float *X = ct_up(x, nx), *DY = ct_up(dy, ny), *DX = ct_up(dx, nx), *Y = ct_up(NULL, ny);
    adaptive_avgpool2d_forward(y, x, N, C, H, W, Ho, Wo);
    adaptive_avgpool2d_forward_cuda(Y, X, N, C, H, W, Ho, Wo);
    adaptive_avgpool2d_backward(dx, dy, N, C, H, W, Ho, Wo);
    adaptive_avgpool2d_backward_cuda(DX, DY, N, C, H, W, Ho, Wo);
    snprintf(sub, sizeof sub, "%s: y", name); check(sub, Y, y, ny);
    snprintf(sub, sizeof sub, "%s: dx", name); check(sub, DX, dx, nx);
    cudaFree(X); cudaFree(DY); cudaFree(DX); cudaFree(Y); free(x); free(dy); free(dx); free(y);
}

// ---- batchnorm2d, lrn ----------------------------------------------------------------------------
static void bn_case(int affine) {
    char name[128], sub[200];
    const int N = 2, C = 5, HW = 13;
    snprintf(name, sizeof name, "cuda batchnorm2d forward+backward N=%d C=%d HW=%d%s", N, C, HW, affine ? "" : " affine=False");
    if (!ct_run(name)) return;
    size_t n = (size_t)N * C * HW;
    float *x = tu_rand(&rng, n), *dy = tu_rand(&rng, n), *dx = tu_rand(&rng, n), *y = tu_zeros(n);
    float *gm = tu_rand(&rng, C), *bt = tu_rand(&rng, C), *mean = tu_rand(&rng, C), *var = tu_rand(&rng, C);
    float *dg = tu_rand(&rng, C), *dbt = tu_rand(&rng, C);
    for (int c = 0; c < C; c++) var[c] = 0.5f + fabsf(var[c]);
    float *X = ct_up(x, n), *DY = ct_up(dy, n), *DX = ct_up(dx, n), *Y = ct_up(NULL, n), *GM = ct_up(gm, C), *BT = ct_up(bt, C);
    float *M = ct_up(mean, C), *V = ct_up(var, C), *DG = ct_up(dg, C), *DBT = ct_up(dbt, C);
    batchnorm2d_forward(y, x, affine ? gm : NULL, affine ? bt : NULL, mean, var, 1e-5f, N, C, HW);
    batchnorm2d_forward_cuda(Y, X, affine ? GM : NULL, affine ? BT : NULL, M, V, 1e-5f, N, C, HW);
    batchnorm2d_backward(dx, affine ? dg : NULL, affine ? dbt : NULL, dy, x, affine ? gm : NULL, mean, var, 1e-5f, N, C, HW);
    batchnorm2d_backward_cuda(DX, affine ? DG : NULL, affine ? DBT : NULL, DY, X, affine ? GM : NULL, M, V, 1e-5f, N, C, HW);
    snprintf(sub, sizeof sub, "%s: y", name); check(sub, Y, y, n);
    snprintf(sub, sizeof sub, "%s: dx", name); check(sub, DX, dx, n);
    if (affine) {
        snprintf(sub, sizeof sub, "%s: dgamma", name); check(sub, DG, dg, C);
        snprintf(sub, sizeof sub, "%s: dbeta", name); check(sub, DBT, dbt, C);
    }
    cudaFree(X); cudaFree(DY); cudaFree(DX); cudaFree(Y); cudaFree(GM); cudaFree(BT); cudaFree(M); cudaFree(V); cudaFree(DG); cudaFree(DBT);
    free(x); free(dy); free(dx); free(y); free(gm); free(bt); free(mean); free(var); free(dg); free(dbt);
}

static void lrn_case(int size) {
    char name[128], sub[200];
    const int N = 2, C = 9, HW = 11;
    const float alpha = 0.5f, beta = 0.75f, k = 2.0f;
    snprintf(name, sizeof name, "cuda lrn forward+backward N=%d C=%d HW=%d size=%d", N, C, HW, size);
    if (!ct_run(name)) return;
    size_t n = (size_t)N * C * HW;
    float *x = tu_rand(&rng, n), *dy = tu_rand(&rng, n), *dx = tu_rand(&rng, n), *y = tu_zeros(n), *s = tu_zeros(n);
    float *X = ct_up(x, n), *DY = ct_up(dy, n), *DX = ct_up(dx, n), *Y = ct_up(NULL, n), *S = ct_up(NULL, n);
    lrn_forward(y, s, x, N, C, HW, size, alpha, beta, k);
    lrn_forward_cuda(Y, S, X, N, C, HW, size, alpha, beta, k);
    lrn_backward(dx, dy, s, x, N, C, HW, size, alpha, beta, k);
    lrn_backward_cuda(DX, DY, S, X, N, C, HW, size, alpha, beta, k);
    snprintf(sub, sizeof sub, "%s: y", name); check(sub, Y, y, n);
    snprintf(sub, sizeof sub, "%s: scale", name); check(sub, S, s, n);
    snprintf(sub, sizeof sub, "%s: dx", name); check(sub, DX, dx, n);
    cudaFree(X); cudaFree(DY); cudaFree(DX); cudaFree(Y); cudaFree(S); free(x); free(dy); free(dx); free(y); free(s);
}

// ---- concat, add, flatten, dropout, relu, log_softmax -------------------------------------------
static void small_ops(void) {
    char sub[200];
    const int N = 2, HW = 6, cs[3] = {2, 3, 4};
    const char *name = "cuda concat forward+backward N=2 C=2,3,4 HW=6";
    if (ct_run(name)) {
        size_t nx[3], ny = (size_t)N * 9 * HW;
        float *x[3], *X[3], *dx[3], *DX[3], *dy = tu_rand(&rng, ny), *DY = ct_up(dy, ny), *y = tu_zeros(ny), *Y = ct_up(NULL, ny);
        for (int k = 0; k < 3; k++) {
            nx[k] = (size_t)N * cs[k] * HW;
            x[k] = tu_rand(&rng, nx[k]); X[k] = ct_up(x[k], nx[k]);
            dx[k] = tu_rand(&rng, nx[k]); DX[k] = ct_up(dx[k], nx[k]);
        }
        concat_forward(y, (const float *const *)x, cs, 3, N, HW);
        concat_forward_cuda(Y, (const float *const *)X, cs, 3, N, HW);
        concat_backward(dx, dy, cs, 3, N, HW);
        concat_backward_cuda(DX, DY, cs, 3, N, HW);
        snprintf(sub, sizeof sub, "%s: y", name); check(sub, Y, y, ny);
        for (int k = 0; k < 3; k++) {
            snprintf(sub, sizeof sub, "%s: dx%d", name, k); check(sub, DX[k], dx[k], nx[k]);
            cudaFree(X[k]); cudaFree(DX[k]); free(x[k]); free(dx[k]);
        }
        cudaFree(DY); cudaFree(Y); free(dy); free(y);
    }
    const size_t n = 1000;
    name = "cuda add, flatten, dropout (eval), relu forward+backward n=1000";
    if (ct_run(name)) {
        float *a = tu_rand(&rng, n), *b = tu_rand(&rng, n), *dy = tu_rand(&rng, n), *da = tu_rand(&rng, n), *db = tu_rand(&rng, n);
        for (size_t i = 0; i < n; i += 7) a[i] = 0.0f;   // relu at exactly 0: no gradient
        float *A = ct_up(a, n), *B = ct_up(b, n), *DY = ct_up(dy, n), *DA = ct_up(da, n), *DB = ct_up(db, n);
        float *y = tu_zeros(n), *Y = ct_up(NULL, n);
        add_forward(y, a, b, n); add_forward_cuda(Y, A, B, n);
        snprintf(sub, sizeof sub, "%s: add y", name); check(sub, Y, y, n);
        add_backward(da, db, dy, n); add_backward_cuda(DA, DB, DY, n);
        snprintf(sub, sizeof sub, "%s: add da", name); check(sub, DA, da, n);
        snprintf(sub, sizeof sub, "%s: add db", name); check(sub, DB, db, n);
        flatten_forward(y, a, n); flatten_forward_cuda(Y, A, n);
        snprintf(sub, sizeof sub, "%s: flatten y", name); check(sub, Y, y, n);
        flatten_backward(da, dy, n); flatten_backward_cuda(DA, DY, n);
        snprintf(sub, sizeof sub, "%s: flatten dx", name); check(sub, DA, da, n);
        uint64_t s = 1;
        dropout_forward(y, NULL, b, n, 0.5f, 0, &s); dropout_forward_cuda(Y, B, n);
        snprintf(sub, sizeof sub, "%s: dropout y", name); check(sub, Y, y, n);
        dropout_backward(db, dy, NULL, n, 0); dropout_backward_cuda(DB, DY, n);
        snprintf(sub, sizeof sub, "%s: dropout dx", name); check(sub, DB, db, n);
        relu_forward(y, a, n); relu_forward_cuda(Y, A, n);
        snprintf(sub, sizeof sub, "%s: relu y", name); check(sub, Y, y, n);
        relu_backward(da, dy, y, n); relu_backward_cuda(DA, DY, Y, n);
        snprintf(sub, sizeof sub, "%s: relu dx", name); check(sub, DA, da, n);
        cudaFree(A); cudaFree(B); cudaFree(DY); cudaFree(DA); cudaFree(DB); cudaFree(Y);
        free(a); free(b); free(dy); free(da); free(db); free(y);
    }
    const int Ks[2] = {10, 1000};
    for (int t = 0; t < 2; t++) {
        char nm[128];
        const int Nn = 3, K = Ks[t];
        snprintf(nm, sizeof nm, "cuda log_softmax forward+backward N=%d K=%d", Nn, K);
        if (!ct_run(nm)) continue;
        size_t m = (size_t)Nn * K;
        float *x = tu_rand(&rng, m), *dy = tu_rand(&rng, m), *dx = tu_rand(&rng, m), *y = tu_zeros(m);
        for (size_t i = 0; i < m; i++) x[i] *= 8.0f;
        float *X = ct_up(x, m), *DY = ct_up(dy, m), *DX = ct_up(dx, m), *Y = ct_up(NULL, m);
        log_softmax_forward(y, x, Nn, K); log_softmax_forward_cuda(Y, X, Nn, K);
        log_softmax_backward(dx, dy, y, Nn, K); log_softmax_backward_cuda(DX, DY, Y, Nn, K);
        snprintf(sub, sizeof sub, "%s: y", nm); check(sub, Y, y, m);
        snprintf(sub, sizeof sub, "%s: dx", nm); check(sub, DX, dx, m);
        cudaFree(X); cudaFree(DY); cudaFree(DX); cudaFree(Y); free(x); free(dy); free(dx); free(y);
    }
}

int main(int argc, char **argv) {
    tu_init(argc, argv);
    static const conv_case convs[] = {
        {2, 3, 13, 11, 8, 3, 1, 1, 1, 1},      // small, odd sizes
        {2, 3, 35, 35, 16, 11, 4, 2, 1, 1},    // alexnet's first layer, scaled down
        {2, 16, 9, 9, 32, 3, 1, 1, 1, 1},      // 3x3 s1 C,Co >= 16: the CPU's Winograd path
        {2, 8, 10, 10, 8, 3, 2, 1, 2, 2},      // stride, dilation, groups
        {3, 12, 7, 7, 12, 3, 1, 1, 1, 12},     // depthwise
        {2, 16, 7, 7, 24, 1, 1, 0, 1, 1},      // 1x1
        {2, 6, 8, 6, 4, 5, 2, 2, 1, 2},        // 5x5 stride 2, groups
        {70, 4, 5, 5, 3, 3, 1, 0, 1, 1},       // many images: one im2col chunk for all
    };
    for (size_t i = 0; i < sizeof convs / sizeof convs[0]; i++) conv_cases(&convs[i]);
    node_sums_case();
    linear_case(3, 37, 11);
    linear_case(64, 1000, 40);
    static const pool_case maxp[] = {
        {2, 3, 13, 13, 3, 2, 0, 1, 0, 0, 0}, {2, 4, 14, 14, 3, 2, 1, 1, 1, 0, 0},
        {1, 2, 9, 9, 2, 2, 0, 2, 0, 0, 0}, {2, 3, 8, 8, 3, 1, 1, 1, 0, 0, 0},
    };
    for (size_t i = 0; i < sizeof maxp / sizeof maxp[0]; i++) pool_cases(&maxp[i], 1);
    static const pool_case avgp[] = {
        {2, 3, 9, 9, 3, 2, 1, 1, 0, 1, 0}, {2, 3, 9, 9, 3, 2, 1, 1, 1, 0, 0}, {2, 3, 8, 8, 2, 2, 0, 1, 0, 0, 3},
    };
    for (size_t i = 0; i < sizeof avgp / sizeof avgp[0]; i++) pool_cases(&avgp[i], 0);
    adaptive_case(13, 13, 6, 6);
    adaptive_case(7, 7, 7, 7);
    adaptive_case(10, 5, 4, 3);
    adaptive_case(7, 7, 1, 1);
    bn_case(1);
    bn_case(0);
    lrn_case(5);
    lrn_case(2);
    small_ops();
    return ct_finish();
}
