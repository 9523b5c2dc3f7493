// simd.h: the 8-float vectors (GCC vector extensions) that the AVX2+FMA
// kernels of conv2d_edges.c, linear.c and batchnorm2d.c are written with,
// and the run-time check that chooses them. Only on x86-64 with GCC/clang;
// elsewhere SIMD_X86 is 0 and the files keep their portable loops.
#pragma once
#if defined(__x86_64__) && defined(__GNUC__)
#define SIMD_X86 1
#include <string.h>

typedef float v8 __attribute__((vector_size(32)));
typedef int v8i __attribute__((vector_size(32)));
__attribute__((target("avx2,fma"))) static inline v8 ld8(const float *p) { v8 v; memcpy(&v, p, 32); return v; }
__attribute__((target("avx2,fma"))) static inline void st8(float *p, v8 v) { memcpy(p, &v, 32); }
__attribute__((target("avx2,fma"))) static inline v8 bc8(float x) { return (v8){x, x, x, x, x, x, x, x}; }
__attribute__((target("avx2,fma"))) static inline v8 abs8(v8 x) { return (v8)((v8i)x & 0x7fffffff); }

// Whether this CPU has AVX2 and FMA (asked once per file that uses it).
static inline int cpu_has_avx2_fma(void) {
    static int cached = -1;
    if (cached < 0) cached = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    return cached;
}
#else
#define SIMD_X86 0
#endif
