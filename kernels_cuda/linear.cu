// linear.cu: the CUDA twin of ops/linear.c, y = x w^T + b, three cuBLAS GEMMs.
// Row-major (N,In) . (In,Out) is column-major's transpose, so each product is
// written for cuBLAS with the roles of rows and columns swapped.
#include "kernels.h"

// y: (N,Out) += b[o] per row
__global__ static void add_bias_kernel(float *y, const float *b, int N, int Out) {
    CUDA_FOR(t, (size_t)N * Out) y[t] += b[t % Out];
}

// db[o] += sum_n dy[n,o]; thread per o, images in order
__global__ static void bias_grad_kernel(float *db, const float *dy, int N, int Out) {
    CUDA_FOR(o, (size_t)Out) {
        double s = 0;
        for (int n = 0; n < N; n++) s += dy[(size_t)n * Out + o];
        db[o] += (float)s;
    }
}

// y: (N,Out)  x: (N,In)  w: (Out,In)  b: (Out) or NULL
void linear_forward_cuda(float *y, const float *x, const float *w, const float *b, int N, int In, int Out) {
    const float one = 1.0f, zero = 0.0f;
    // column-major y^T (Out, N) = w (Out, In) . x^T (In, N); w is stored as w^T (In, Out)
    cublas_check(cublasSgemm(cuda_blas(), CUBLAS_OP_T, CUBLAS_OP_N, Out, N, In, &one, w, In, x, In, &zero, y, Out));
    if (b) {
        add_bias_kernel<<<cuda_blocks((size_t)N * Out), CUDA_THREADS>>>(y, b, N, Out);
        cuda_launch_check();
    }
}

// dx += (N,In)  dw += (Out,In)  db += (Out)  dy: (N,Out)
void linear_backward_cuda(float *dx, float *dw, float *db, const float *dy, const float *x, const float *w,
                          int N, int In, int Out) {
    const float one = 1.0f;
    if (dx)   // dx^T (In, N) += w^T (In, Out) . dy^T (Out, N)
        cublas_check(cublasSgemm(cuda_blas(), CUBLAS_OP_N, CUBLAS_OP_N, In, N, Out, &one, w, In, dy, Out, &one, dx, In));
    if (dw)   // dw^T (In, Out) += x^T (In, N) . dy (N, Out)
        cublas_check(cublasSgemm(cuda_blas(), CUBLAS_OP_N, CUBLAS_OP_T, In, Out, N, &one, x, In, dy, Out, &one, dw, In));
    if (db) {
        bias_grad_kernel<<<cuda_blocks((size_t)Out), CUDA_THREADS>>>(db, dy, N, Out);
        cuda_launch_check();
    }
}
