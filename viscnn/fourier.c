// fourier.c: FFTs (FFTW3f) and the Fourier image parameterisation (fourier.h).
//
// The half spectrum X (h, w/2+1) stands for a Hermitian full spectrum. In the
// self-conjugate columns (kx = 0 and, for even w, kx = w/2) X[ky] and X[h-ky]
// are twins, so the forward first replaces both by their Hermitian part
// (X[ky] + conj X[h-ky]) / 2: c2r is then well defined for every parameter
// vector (FFTW's result on a non-Hermitian input depends on its algorithm).
// Gradient: d/dRe X + i d/dIm X = c(kx) * r2c(g)[ky, kx], c = 1 in the
// self-conjugate columns, 2 elsewhere (their conjugate twins are implied);
// the symmetrisation's transpose leaves r2c of a real g unchanged (it is
// Hermitian already). tests/test_featvis.c checks this by finite differences.
#include <fftw3.h>
#include <math.h>
#include <pthread.h>
#include <string.h>
#include "fourier.h"
#include "../engine/util.h"

struct fv_fft {
    int h, w, wf, count;
    float *real;
    fftwf_complex *cplx;
    fftwf_plan c2r, r2c;
};

// FFTW's planner is not thread-safe (the server plans on its compute thread).
static pthread_mutex_t plan_lock = PTHREAD_MUTEX_INITIALIZER;

fv_fft *fft_new(int h, int w, int count) {
    fv_fft *f = calloc_check(1, sizeof *f);
    f->h = h; f->w = w; f->wf = w / 2 + 1; f->count = count;
    size_t nr = (size_t)count * h * w, nc = (size_t)count * h * f->wf;
    f->real = fftwf_alloc_real(nr);
    f->cplx = fftwf_alloc_complex(nc);
    VC_ASSERT(f->real && f->cplx);
    int dims[2] = {h, w};
    pthread_mutex_lock(&plan_lock);
    f->c2r = fftwf_plan_many_dft_c2r(2, dims, count, f->cplx, NULL, 1, h * f->wf, f->real, NULL, 1, h * w, FFTW_ESTIMATE);
    f->r2c = fftwf_plan_many_dft_r2c(2, dims, count, f->real, NULL, 1, h * w, f->cplx, NULL, 1, h * f->wf, FFTW_ESTIMATE);
    pthread_mutex_unlock(&plan_lock);
    VC_ASSERT(f->c2r && f->r2c);
    return f;
}

void fft_free(fv_fft *f) {
    if (!f) return;
    pthread_mutex_lock(&plan_lock);
    fftwf_destroy_plan(f->c2r);
    fftwf_destroy_plan(f->r2c);
    pthread_mutex_unlock(&plan_lock);
    fftwf_free(f->real);
    fftwf_free(f->cplx);
    free(f);
}

void fft_c2r(fv_fft *f, const float *spec, float *img) {
    memcpy(f->cplx, spec, (size_t)f->count * f->h * f->wf * 2 * sizeof(float));   // c2r overwrites its input
    fftwf_execute(f->c2r);
    memcpy(img, f->real, (size_t)f->count * f->h * f->w * sizeof(float));
}

void fft_r2c(fv_fft *f, const float *img, float *spec) {
    memcpy(f->real, img, (size_t)f->count * f->h * f->w * sizeof(float));
    fftwf_execute(f->r2c);
    memcpy(spec, f->cplx, (size_t)f->count * f->h * f->wf * 2 * sizeof(float));
}

// ---- the parameterisation ---------------------------------------------------------
// Lucid's color_correlation_svd_sqrt, divided by its largest column norm.
static const float corr_raw[3][3] = {{0.26f, 0.09f, 0.02f}, {0.27f, 0.00f, -0.05f}, {0.27f, -0.09f, 0.03f}};
static void corr_matrix(float M[3][3]) {
    float mx = 0;
    for (int d = 0; d < 3; d++) {
        float s = 0;
        for (int c = 0; c < 3; c++) s += corr_raw[c][d] * corr_raw[c][d];
        if (sqrtf(s) > mx) mx = sqrtf(s);
    }
    for (int c = 0; c < 3; c++)
        for (int d = 0; d < 3; d++) M[c][d] = corr_raw[c][d] / mx;
}

void param_init(fv_param *p, int n, int C, int h, int w) {
    memset(p, 0, sizeof *p);
    p->n = n; p->C = C; p->h = h; p->w = w; p->wf = w / 2 + 1;
    p->scale = malloc_check((size_t)h * p->wf * sizeof(float));
    float fmin = 1.0f / (h > w ? h : w);
    for (int y = 0; y < h; y++) {
        float fy = (float)(y <= (h - 1) / 2 ? y : y - h) / h;   // numpy fftfreq
        for (int x = 0; x < p->wf; x++) {
            float fx = (float)x / w, f = sqrtf(fx * fx + fy * fy);
            p->scale[y * p->wf + x] = 1.0f / (f > fmin ? f : fmin);
        }
    }
    p->t = malloc_check((size_t)n * C * h * w * sizeof(float));
    p->spec = malloc_check(param_count(p) * sizeof(float));
    p->fft = fft_new(h, w, n * C);
}

void param_free(fv_param *p) {
    free(p->scale); free(p->t); free(p->spec);
    fft_free(p->fft);
    memset(p, 0, sizeof *p);
}

size_t param_count(const fv_param *p) { return (size_t)p->n * p->C * p->h * p->wf * 2; }

void param_randomize(const fv_param *p, float *params, int b, uint64_t seed, float sd) {
    size_t per = (size_t)p->C * p->h * p->wf * 2;
    float *q = params + (size_t)b * per;
    uint64_t s = seed;
    for (size_t k = 0; k < per; k += 2) {   // Box-Muller, two normals per draw
        double u1 = fv_rng_uniform(&s), u2 = fv_rng_uniform(&s);
        if (u1 < 1e-300) u1 = 1e-300;
        double r = sqrt(-2 * log(u1));
        q[k] = (float)(sd * r * cos(2 * M_PI * u2));
        q[k + 1] = (float)(sd * r * sin(2 * M_PI * u2));
    }
}

// Replaces the self-conjugate columns of spec (n*C planes of (h, wf, 2)) by
// their Hermitian part.
static void hermitian(const fv_param *p, float *spec) {
    size_t hf = (size_t)p->h * p->wf;
    int cols[2] = {0, p->w % 2 == 0 ? p->wf - 1 : -1};
    for (size_t q = 0; q < (size_t)p->n * p->C; q++)
        for (int c = 0; c < 2; c++) {
            if (cols[c] < 0 || (c == 1 && cols[1] == 0)) continue;
            for (int y = 0; y <= p->h / 2; y++) {
                int y2 = (p->h - y) % p->h;
                float *a = spec + 2 * (q * hf + (size_t)y * p->wf + cols[c]), *b = spec + 2 * (q * hf + (size_t)y2 * p->wf + cols[c]);
                float re = 0.5f * (a[0] + b[0]), im = 0.5f * (a[1] - b[1]);
                a[0] = re; a[1] = im;
                b[0] = re; b[1] = -im;
            }
        }
}

static float norm_const(const fv_param *p) { return 1.0f / (4.0f * sqrtf((float)p->h * p->w)); }

// t (n, C, h, w) -> u: colour mixing and sigmoid.
static void to_pixels(const fv_param *p, const float *t, float *u) {
    size_t hw = (size_t)p->h * p->w;
    float M[3][3];
    corr_matrix(M);
    #pragma omp parallel for if (p->n > 1)
    for (int b = 0; b < p->n; b++) {
        const float *tb = t + (size_t)b * p->C * hw;
        float *ub = u + (size_t)b * p->C * hw;
        for (size_t k = 0; k < hw; k++)
            for (int c = 0; c < p->C; c++) {
                float y = p->C == 3 ? M[c][0] * tb[k] + M[c][1] * tb[hw + k] + M[c][2] * tb[2 * hw + k] : tb[k];
                ub[c * hw + k] = 1.0f / (1.0f + expf(-y));
            }
    }
}

void param_forward(fv_param *p, const float *params, float *u) {
    size_t planes = (size_t)p->n * p->C, hf = (size_t)p->h * p->wf;
    float k = norm_const(p);
    for (size_t q = 0; q < planes; q++)
        for (size_t f = 0; f < hf; f++) {
            float s = p->scale[f] * k;
            p->spec[2 * (q * hf + f)] = params[2 * (q * hf + f)] * s;
            p->spec[2 * (q * hf + f) + 1] = params[2 * (q * hf + f) + 1] * s;
        }
    hermitian(p, p->spec);
    fft_c2r(p->fft, p->spec, p->t);
    to_pixels(p, p->t, u);
}

void param_backward(fv_param *p, const float *u, const float *du, float *dparams) {
    size_t hw = (size_t)p->h * p->w, hf = (size_t)p->h * p->wf, planes = (size_t)p->n * p->C;
    float M[3][3];
    corr_matrix(M);
    // dt_d = sum_c M[c][d] * du_c * u_c (1 - u_c)
    #pragma omp parallel for if (p->n > 1)
    for (int b = 0; b < p->n; b++) {
        const float *ub = u + (size_t)b * p->C * hw, *gb = du + (size_t)b * p->C * hw;
        float *tb = p->t + (size_t)b * p->C * hw;
        for (size_t k = 0; k < hw; k++) {
            float dy[3];
            for (int c = 0; c < p->C; c++) dy[c] = gb[c * hw + k] * ub[c * hw + k] * (1 - ub[c * hw + k]);
            if (p->C == 3)
                for (int d = 0; d < 3; d++) tb[d * hw + k] = M[0][d] * dy[0] + M[1][d] * dy[1] + M[2][d] * dy[2];
            else
                tb[k] = dy[0];
        }
    }
    fft_r2c(p->fft, p->t, p->spec);
    float k = norm_const(p);
    int last = p->w % 2 == 0 ? p->wf - 1 : -1;   // the self-conjugate Nyquist column (even w)
    for (size_t q = 0; q < planes; q++)
        for (int y = 0; y < p->h; y++)
            for (int x = 0; x < p->wf; x++) {
                size_t f = q * hf + (size_t)y * p->wf + x;
                float s = p->scale[y * p->wf + x] * k * (x == 0 || x == last ? 1.0f : 2.0f);
                dparams[2 * f] = p->spec[2 * f] * s;
                dparams[2 * f + 1] = p->spec[2 * f + 1] * s;
            }
}

void param_forward_ref(const fv_param *p, const float *params, float *u) {
    size_t hw = (size_t)p->h * p->w, hf = (size_t)p->h * p->wf;
    int last = p->w % 2 == 0 ? p->wf - 1 : -1;
    float *t = malloc_check((size_t)p->n * p->C * hw * sizeof(float));
    float *X = malloc_check(param_count(p) * sizeof(float));
    memcpy(X, params, param_count(p) * sizeof(float));
    hermitian(p, X);
    double k = norm_const(p);
    for (size_t q = 0; q < (size_t)p->n * p->C; q++)
        for (int y = 0; y < p->h; y++)
            for (int x = 0; x < p->w; x++) {
                // the full Hermitian spectrum: twice the real part of each
                // half-spectrum term outside the self-conjugate columns
                double acc = 0;
                for (int ky = 0; ky < p->h; ky++)
                    for (int kx = 0; kx < p->wf; kx++) {
                        size_t f = q * hf + (size_t)ky * p->wf + kx;
                        double s = p->scale[ky * p->wf + kx] * k, re = X[2 * f] * s, im = X[2 * f + 1] * s;
                        double ph = 2 * M_PI * ((double)ky * y / p->h + (double)kx * x / p->w);
                        double c = kx == 0 || kx == last ? 1 : 2;
                        acc += c * (re * cos(ph) - im * sin(ph));
                    }
                t[q * hw + (size_t)y * p->w + x] = (float)acc;
            }
    to_pixels(p, t, u);
    free(t);
    free(X);
}

// 3x3 inverse by cofactors.
static void inv3(const float M[3][3], float R[3][3]) {
    double det = M[0][0] * (M[1][1] * M[2][2] - M[1][2] * M[2][1]) - M[0][1] * (M[1][0] * M[2][2] - M[1][2] * M[2][0]) +
                 M[0][2] * (M[1][0] * M[2][1] - M[1][1] * M[2][0]);
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 3; j++) {
            int a = (j + 1) % 3, b = (j + 2) % 3, c = (i + 1) % 3, d = (i + 2) % 3;
            R[i][j] = (float)((M[a][c] * M[b][d] - M[a][d] * M[b][c]) / det);
        }
}

void param_clamp(fv_param *p, float *params, float T) {
    size_t hw = (size_t)p->h * p->w, hf = (size_t)p->h * p->wf;
    float M[3][3], Mi[3][3];
    corr_matrix(M);
    inv3(M, Mi);
    float k = norm_const(p);
    for (size_t q = 0; q < (size_t)p->n * p->C; q++)
        for (size_t f = 0; f < hf; f++) {
            float s = p->scale[f] * k;
            p->spec[2 * (q * hf + f)] = params[2 * (q * hf + f)] * s;
            p->spec[2 * (q * hf + f) + 1] = params[2 * (q * hf + f) + 1] * s;
        }
    hermitian(p, p->spec);
    fft_c2r(p->fft, p->spec, p->t);
    for (int b = 0; b < p->n; b++) {
        float *tb = p->t + (size_t)b * p->C * hw;
        for (size_t i = 0; i < hw; i++) {
            float y[3];
            for (int c = 0; c < p->C; c++)
                y[c] = p->C == 3 ? M[c][0] * tb[i] + M[c][1] * tb[hw + i] + M[c][2] * tb[2 * hw + i] : tb[i];
            for (int c = 0; c < p->C; c++) y[c] = y[c] > T ? T : y[c] < -T ? -T : y[c];
            for (int c = 0; c < p->C; c++)
                tb[c * hw + i] = p->C == 3 ? Mi[c][0] * y[0] + Mi[c][1] * y[1] + Mi[c][2] * y[2] : y[0];
        }
    }
    fft_r2c(p->fft, p->t, p->spec);   // c2r's inverse up to the factor h*w
    for (size_t q = 0; q < (size_t)p->n * p->C; q++)
        for (size_t f = 0; f < hf; f++) {
            float s = 1.0f / (p->scale[f] * k * (float)hw);
            params[2 * (q * hf + f)] = p->spec[2 * (q * hf + f)] * s;
            params[2 * (q * hf + f) + 1] = p->spec[2 * (q * hf + f) + 1] * s;
        }
}
