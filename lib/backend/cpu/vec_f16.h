/* Float x fp16 vector kernels for attention over the fp16 KV cache: AVX2 +
 * F16C + FMA where the build has them, plain C otherwise. */
#ifndef SLIM_BACKEND_CPU_VEC_F16_H
#define SLIM_BACKEND_CPU_VEC_F16_H

#include <stdint.h>

#include "core/fp16.h"

#if defined(__AVX2__) && defined(__F16C__) && defined(__FMA__)
#include "core/simd_x86.h"

/* sum x[i] * h[i] */
static inline float slim_dot_f32_f16(const float *x, const uint16_t *h, int32_t n) {
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
    int32_t i = 0;
    for (; i + 16 <= n; i += 16) {
        a0 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i),
                             _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(h + i))), a0);
        a1 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i + 8),
                             _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(h + i + 8))), a1);
    }
    float s = slim_hsum_f32x8(_mm256_add_ps(a0, a1));
    for (; i < n; i++)
        s += x[i] * slim_fp16_to_f32(h[i]);
    return s;
}

/* y[i] += a * h[i] */
static inline void slim_axpy_f16(float *y, float a, const uint16_t *h, int32_t n) {
    const __m256 va = _mm256_set1_ps(a);
    int32_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 hv = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(h + i)));
        _mm256_storeu_ps(y + i, _mm256_fmadd_ps(va, hv, _mm256_loadu_ps(y + i)));
    }
    for (; i < n; i++)
        y[i] += a * slim_fp16_to_f32(h[i]);
}

#else

static inline float slim_dot_f32_f16(const float *x, const uint16_t *h, int32_t n) {
    float s = 0;
    for (int32_t i = 0; i < n; i++)
        s += x[i] * slim_fp16_to_f32(h[i]);
    return s;
}

static inline void slim_axpy_f16(float *y, float a, const uint16_t *h, int32_t n) {
    for (int32_t i = 0; i < n; i++)
        y[i] += a * slim_fp16_to_f32(h[i]);
}

#endif
#endif
