// Runtime-dispatched SIMD kernels for the HNSW walk (docs/INDEX.md "Kernels and CPU dispatch").
//
// A portable (baseline x86-64) build of rankd compiles its Swift kernels for SSE2 only. These C functions are
// compiled for AVX2 (and FMA where the result may use it) with `__attribute__((target(...)))`, so even a portable
// binary runs AVX2 code on a CPU that has it: `rankd_kernels_select` checks the CPU once (cpuid + xgetbv) and returns
// the table of batch kernels it may call, or a table of NULLs (the Swift kernels then serve every row).
#ifndef RANKD_KERNELS_H
#define RANKD_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// Scores `count` rows, `out[i] = score(query, base + rows[i] * stride)`, for one metric and row encoding.
/// `query` holds `dimension` floats (zero-padded to a multiple of 16 by the caller's scratch).
typedef void (*rankd_batch_kernel)(const float *query, const void *base, size_t stride, int dimension,
                                   const int32_t *rows, int count, float *out);

/// The batch kernels this CPU may run; NULL where only the Swift kernel serves.
typedef struct {
    /// Inner product over float32 rows. Bit-for-bit the result of the Swift `InnerProductKernel<F32Elements>`
    /// (same lanes, same two accumulators, same reduction order, no fused multiply-add).
    rankd_batch_kernel ip_f32;
    /// Inner product over i8 rows (a float32 scale, then `dimension` int8). Uses fused multiply-add, so it matches
    /// the host-tuned Swift kernel (`RANKD_FMA`) bit for bit and the portable one to rounding.
    rankd_batch_kernel ip_i8;
} rankd_kernel_table;

/// Which kernel level the CPU supports: 0 = none (Swift kernels only), 1 = AVX2 + FMA (with OS support for the
/// ymm state).
int rankd_kernels_cpu_level(void);

/// The kernels for `level` (clamped to what the CPU supports): level 0 gives a table of NULLs.
rankd_kernel_table rankd_kernels_select(int level);

#ifdef __cplusplus
}
#endif

#endif
