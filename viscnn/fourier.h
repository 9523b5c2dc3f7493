// fourier.h: the one place viscnn calls an FFT library (FFTW3, single
// precision), and the Fourier image parameterisation of feature visualisation
// built on it (docs/featvis.md). A GPU backend swaps fourier.c's four fft_*
// functions for cuFFT; nothing else names FFTW.
#pragma once
#include <stdint.h>

// Plans for `count` real planes of h x w and their half spectra
// (h, w/2+1) complex, made once (FFTW_ESTIMATE: the same plan, so the same
// bits, every run). Unnormalised both ways, FFTW's sign conventions.
typedef struct fv_fft fv_fft;
fv_fft *fft_new(int h, int w, int count);
void fft_free(fv_fft *f);
// spec: (count, h, w/2+1, 2) re/im interleaved -> img: (count, h, w).
void fft_c2r(fv_fft *f, const float *spec, float *img);
// img: (count, h, w) -> spec: (count, h, w/2+1, 2).
void fft_r2c(fv_fft *f, const float *img, float *spec);

// The image of n pictures of C channels (1 gray, 3 RGB), h x w, in pixel
// range [0,1], from parameters p (n, C, h, w/2+1, 2):
//   t = irfft2(p * scale) / (4 sqrt(h w)),  scale(f) = 1 / max(|f|, 1/max(h,w))
//   (Lucid's fft_image: 1/f scaling, frequencies in cycles per pixel);
//   RGB: y_c = sum_d M[c][d] t_d, M Lucid's ImageNet colour-correlation square
//   root normalised by its largest column norm; gray: y = t;
//   u = sigmoid(y).
typedef struct {
    int n, C, h, w, wf;       // wf = w/2+1
    float *scale;             // (h, wf)
    float *t;                 // (n, C, h, w) scratch
    float *spec;              // (n, C, h, wf, 2) scratch
    fv_fft *fft;
} fv_param;

void param_init(fv_param *p, int n, int C, int h, int w);
void param_free(fv_param *p);
size_t param_count(const fv_param *p);   // floats of p per picture times n
// Normal(0, sd) parameters for picture b (Lucid's sd = 0.01), from its own seed.
void param_randomize(const fv_param *p, float *params, int b, uint64_t seed, float sd);
// u: (n, C, h, w).
void param_forward(fv_param *p, const float *params, float *u);
// du: d(loss)/du (n, C, h, w) -> dparams (overwritten), using u from forward.
void param_backward(fv_param *p, const float *u, const float *du, float *dparams);
// Re-expresses params so that the pre-sigmoid image y is clamped to [-T, T]
// (the parameterisation is invertible: r2c undoes c2r on Hermitian spectra).
// With T >= 6.3 the 8-bit picture is unchanged (sigmoid(6.3) rounds to 255),
// but pixels saturated far beyond get a usable gradient again.
void param_clamp(fv_param *p, float *params, float T);
// Plain reference of the forward (direct sums over the spectrum, double
// precision, no FFT library) for the tests.
void param_forward_ref(const fv_param *p, const float *params, float *u);

// splitmix64: the random stream of one picture (init and transforms).
static inline uint64_t fv_rng_next(uint64_t *s) {
    uint64_t z = (*s += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}
static inline double fv_rng_uniform(uint64_t *s) { return (fv_rng_next(s) >> 11) * (1.0 / 9007199254740992.0); }
