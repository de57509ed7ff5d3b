/* F32, F16 and BF16: conversions and dot products with F32 activations.
 *
 * The dot products keep 16 independent float partial sums so the compiler can
 * vectorise them without reassociating a single accumulator (which C forbids
 * without -ffast-math); the tail is added after the main loop.  F16 uses F16C
 * conversions where the build has them (GCC does not vectorise _Float16). */
#include <string.h>

#if defined(__F16C__) && defined(__AVX__)
#include <immintrin.h>
#define HAVE_F16C 1
#endif

#include "core/fp16.h"
#include "quant/dtype.h"

#define NACC 16

static void f32_to_float(const void *src, float *dst, int64_t n) {
    memcpy(dst, src, (size_t)n * sizeof(float));
}

static void f32_from_float(const float *src, void *dst, int64_t n) {
    memcpy(dst, src, (size_t)n * sizeof(float));
}

static float sum_acc(const float acc[NACC]) {
    float s = 0.0f;
    for (int k = 0; k < NACC; k++)
        s += acc[k];
    return s;
}

static float f32_vec_dot(int64_t n, const void *vw, const void *vx) {
    const float *restrict w = vw;
    const float *restrict x = vx;
    float acc[NACC] = {0};
    int64_t i = 0;
    for (; i + NACC <= n; i += NACC)
        for (int k = 0; k < NACC; k++)
            acc[k] += w[i + k] * x[i + k];
    float s = sum_acc(acc);
    for (; i < n; i++)
        s += w[i] * x[i];
    return s;
}

static void f16_to_float(const void *src, float *dst, int64_t n) {
    const uint16_t *s = src;
    int64_t i = 0;
#ifdef HAVE_F16C
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(s + i))));
#endif
    for (; i < n; i++)
        dst[i] = slim_fp16_to_f32(s[i]);
}

static void f16_from_float(const float *src, void *dst, int64_t n) {
    uint16_t *d = dst;
    for (int64_t i = 0; i < n; i++)
        d[i] = slim_f32_to_fp16(src[i]);
}

static float f16_vec_dot(int64_t n, const void *vw, const void *vx) {
    const uint16_t *restrict w = vw;
    const float *restrict x = vx;
    float acc[NACC] = {0};
    int64_t i = 0;
#ifdef HAVE_F16C /* the same partial sums, computed the same way (mul, then add) */
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
    for (; i + NACC <= n; i += NACC) {
        const __m256 w0 = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(w + i)));
        const __m256 w1 = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(w + i + 8)));
        a0 = _mm256_add_ps(a0, _mm256_mul_ps(w0, _mm256_loadu_ps(x + i)));
        a1 = _mm256_add_ps(a1, _mm256_mul_ps(w1, _mm256_loadu_ps(x + i + 8)));
    }
    _mm256_storeu_ps(acc, a0);
    _mm256_storeu_ps(acc + 8, a1);
#else
    for (; i + NACC <= n; i += NACC)
        for (int k = 0; k < NACC; k++)
            acc[k] += slim_fp16_to_f32(w[i + k]) * x[i + k];
#endif
    float s = sum_acc(acc);
    for (; i < n; i++)
        s += slim_fp16_to_f32(w[i]) * x[i];
    return s;
}

static void bf16_to_float(const void *src, float *dst, int64_t n) {
    const uint16_t *s = src;
    for (int64_t i = 0; i < n; i++)
        dst[i] = slim_bf16_to_f32(s[i]);
}

static void bf16_from_float(const float *src, void *dst, int64_t n) {
    uint16_t *d = dst;
    for (int64_t i = 0; i < n; i++)
        d[i] = slim_f32_to_bf16(src[i]);
}

static float bf16_vec_dot(int64_t n, const void *vw, const void *vx) {
    const uint16_t *restrict w = vw;
    const float *restrict x = vx;
    float acc[NACC] = {0};
    int64_t i = 0;
    for (; i + NACC <= n; i += NACC)
        for (int k = 0; k < NACC; k++)
            acc[k] += slim_bf16_to_f32(w[i + k]) * x[i + k];
    float s = sum_acc(acc);
    for (; i < n; i++)
        s += slim_bf16_to_f32(w[i]) * x[i];
    return s;
}

const slim_dtype_traits slim_traits_f32 = {
    .name = "F32",
    .block_size = 1,
    .type_size = 4,
    .quantized = false,
    .to_float = f32_to_float,
    .from_float = f32_from_float,
    .vec_dot_type = SLIM_DTYPE_F32,
    .vec_dot = f32_vec_dot,
};

const slim_dtype_traits slim_traits_f16 = {
    .name = "F16",
    .block_size = 1,
    .type_size = 2,
    .quantized = false,
    .to_float = f16_to_float,
    .from_float = f16_from_float,
    .vec_dot_type = SLIM_DTYPE_F32,
    .vec_dot = f16_vec_dot,
};

const slim_dtype_traits slim_traits_bf16 = {
    .name = "BF16",
    .block_size = 1,
    .type_size = 2,
    .quantized = false,
    .to_float = bf16_to_float,
    .from_float = bf16_from_float,
    .vec_dot_type = SLIM_DTYPE_F32,
    .vec_dot = bf16_vec_dot,
};
