/* AVX2 and AVX-512 helpers shared by the x86 kernels (include only under __AVX2__). */
#ifndef SLIM_CORE_SIMD_X86_H
#define SLIM_CORE_SIMD_X86_H

#include <immintrin.h>
#include <stdint.h>
#include <string.h>

/* The sum of the 8 lanes, in a fixed order. */
static inline float slim_hsum_f32x8(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* a * b + c, fused where the build has FMA. */
static inline __m256 slim_madd_f32x8(__m256 a, __m256 b, __m256 c) {
#if defined(__FMA__)
    return _mm256_fmadd_ps(a, b, c);
#else
    return _mm256_add_ps(_mm256_mul_ps(a, b), c);
#endif
}

/* How far ahead of its reads a repacked matmul kernel prefetches its weights,
 * in bytes, and the prefetch itself: the lines of [p + AHEAD, p + AHEAD +
 * bytes), called once for each span the kernel is about to read.  Why: on the
 * AMD family 1Ah host of 2026-12-07 the hardware prefetcher alone left
 * decode from DRAM at 20 GB/s (Q6_K) to 28 GB/s (Q4_K) on one core against
 * 38-40 with this, and ~7 KiB ahead was the best of 1-13 KiB for both
 * (docs/PERFORMANCE.md).  Past the end of the weights it only touches
 * addresses, which a prefetch never faults on.  always_inline: left a call,
 * GCC 12 finds the function free of side effects and deletes the call. */
enum { SLIM_PREFETCH_AHEAD = 7168 };
static inline __attribute__((always_inline)) void slim_prefetch_ahead(const void *p, size_t bytes) {
    const char *a = (const char *)((uintptr_t)p + SLIM_PREFETCH_AHEAD);
    for (size_t o = 0; o < bytes; o += 64)
        _mm_prefetch(a + o, _MM_HINT_T0);
}

#if defined(__AVX512F__)
/* The 4 bytes at p (any alignment) in each of the 16 int32 lanes: the
 * activation operand of the repacked kernels' vpdpbusd. */
static inline __m512i slim_bcast_i32x16(const void *p) {
    int32_t v;
    memcpy(&v, p, 4);
    return _mm512_set1_epi32(v);
}
#endif

#endif
