// AVX2 batch kernels; see include/rankd_kernels.h. Every function that uses AVX2 carries its own target attribute,
// so this file builds for baseline x86-64 and nothing here runs before `rankd_kernels_cpu_level` says it may.
#include "rankd_kernels.h"

#if defined(__x86_64__)
#include <cpuid.h>
#include <immintrin.h>

// The f32 kernel must reproduce the Swift kernel's rounding exactly: never contract a multiply and an add into FMA.
#pragma clang fp contract(off)

#define RANKD_AVX2 __attribute__((target("avx2,fma")))

static int cpu_level = -1;

int rankd_kernels_cpu_level(void) {
    if (cpu_level >= 0) return cpu_level;
    unsigned a, b, c, d;
    int level = 0;
    if (__get_cpuid(1, &a, &b, &c, &d)) {
        int osxsave = (c >> 27) & 1, avx = (c >> 28) & 1, fma = (c >> 12) & 1;
        if (osxsave && avx && fma) {
            unsigned lo, hi;
            __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
            int ymm_state = (lo & 6) == 6;  // the OS saves xmm and ymm registers
            if (ymm_state && __get_cpuid_count(7, 0, &a, &b, &c, &d) && ((b >> 5) & 1)) level = 1;
        }
    }
    cpu_level = level;
    return level;
}

// Sum of the 16 lanes held as lo (0..7) and hi (8..15), in the order of Swift's `horizontalSum`: halves, then
// quarters, then (v0 + v2) + (v1 + v3).
RANKD_AVX2 static inline float sum16(__m256 lo, __m256 hi) {
    __m256 v8 = _mm256_add_ps(lo, hi);
    __m128 v4 = _mm_add_ps(_mm256_castps256_ps128(v8), _mm256_extractf128_ps(v8, 1));
    float l[4];
    _mm_storeu_ps(l, v4);
    return (l[0] + l[2]) + (l[1] + l[3]);
}

RANKD_AVX2 static inline float ip_f32_row(const float *q, const float *x, int dimension) {
    // Swift: a0 takes lanes [i, i+16) and a1 lanes [i+16, i+32) of every 32-wide step; a trailing 16 goes to a0.
    __m256 a0l = _mm256_setzero_ps(), a0h = _mm256_setzero_ps();
    __m256 a1l = _mm256_setzero_ps(), a1h = _mm256_setzero_ps();
    int i = 0;
    for (; i + 32 <= dimension; i += 32) {
        a0l = _mm256_add_ps(a0l, _mm256_mul_ps(_mm256_loadu_ps(q + i), _mm256_loadu_ps(x + i)));
        a0h = _mm256_add_ps(a0h, _mm256_mul_ps(_mm256_loadu_ps(q + i + 8), _mm256_loadu_ps(x + i + 8)));
        a1l = _mm256_add_ps(a1l, _mm256_mul_ps(_mm256_loadu_ps(q + i + 16), _mm256_loadu_ps(x + i + 16)));
        a1h = _mm256_add_ps(a1h, _mm256_mul_ps(_mm256_loadu_ps(q + i + 24), _mm256_loadu_ps(x + i + 24)));
    }
    if (i + 16 <= dimension) {
        a0l = _mm256_add_ps(a0l, _mm256_mul_ps(_mm256_loadu_ps(q + i), _mm256_loadu_ps(x + i)));
        a0h = _mm256_add_ps(a0h, _mm256_mul_ps(_mm256_loadu_ps(q + i + 8), _mm256_loadu_ps(x + i + 8)));
        i += 16;
    }
    float sum = sum16(_mm256_add_ps(a0l, a1l), _mm256_add_ps(a0h, a1h));
    for (; i < dimension; i++) sum += q[i] * x[i];
    return sum;  // Swift multiplies by the f32 scale 1, which changes nothing
}

RANKD_AVX2 static void ip_f32_batch(const float *query, const void *base, size_t stride, int dimension,
                                    const int32_t *rows, int count, float *out) {
    const char *b = (const char *)base;
    for (int r = 0; r < count; r++) out[r] = ip_f32_row(query, (const float *)(b + (size_t)rows[r] * stride), dimension);
}

// 16 int8 at p as float32 lanes lo (0..7) and hi (8..15).
#define LOAD_I8x16(p, lo, hi)                                                         \
    do {                                                                              \
        __m128i v_ = _mm_loadu_si128((const __m128i *)(p));                           \
        lo = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(v_));                            \
        hi = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_unpackhi_epi64(v_, v_)));    \
    } while (0)

RANKD_AVX2 static inline float ip_i8_row(const float *q, const char *row, int dimension) {
    float scale;
    __builtin_memcpy(&scale, row, 4);
    const signed char *x = (const signed char *)(row + 4);
    __m256 a0l = _mm256_setzero_ps(), a0h = _mm256_setzero_ps();
    __m256 a1l = _mm256_setzero_ps(), a1h = _mm256_setzero_ps();
    __m256 lo, hi;
    int i = 0;
    for (; i + 32 <= dimension; i += 32) {
        LOAD_I8x16(x + i, lo, hi);
        a0l = _mm256_fmadd_ps(_mm256_loadu_ps(q + i), lo, a0l);
        a0h = _mm256_fmadd_ps(_mm256_loadu_ps(q + i + 8), hi, a0h);
        LOAD_I8x16(x + i + 16, lo, hi);
        a1l = _mm256_fmadd_ps(_mm256_loadu_ps(q + i + 16), lo, a1l);
        a1h = _mm256_fmadd_ps(_mm256_loadu_ps(q + i + 24), hi, a1h);
    }
    if (i + 16 <= dimension) {
        LOAD_I8x16(x + i, lo, hi);
        a0l = _mm256_fmadd_ps(_mm256_loadu_ps(q + i), lo, a0l);
        a0h = _mm256_fmadd_ps(_mm256_loadu_ps(q + i + 8), hi, a0h);
        i += 16;
    }
    float sum = sum16(_mm256_add_ps(a0l, a1l), _mm256_add_ps(a0h, a1h));
    for (; i < dimension; i++) sum += q[i] * (float)x[i];
    return sum * scale;
}

RANKD_AVX2 static void ip_i8_batch(const float *query, const void *base, size_t stride, int dimension,
                                   const int32_t *rows, int count, float *out) {
    const char *b = (const char *)base;
    for (int r = 0; r < count; r++) out[r] = ip_i8_row(query, b + (size_t)rows[r] * stride, dimension);
}

rankd_kernel_table rankd_kernels_select(int level) {
    rankd_kernel_table table = {0, 0};
    if (level >= 1 && rankd_kernels_cpu_level() >= 1) {
        table.ip_f32 = ip_f32_batch;
        table.ip_i8 = ip_i8_batch;
    }
    return table;
}

#else  // not x86-64: the Swift kernels serve everything

int rankd_kernels_cpu_level(void) { return 0; }

rankd_kernel_table rankd_kernels_select(int level) {
    (void)level;
    rankd_kernel_table table = {0, 0};
    return table;
}

#endif
