/* The legacy 32-element block formats: Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q8_1.
 *
 * to_float matches GGML's dequantize_row_* (and gguf-py) bit for bit;
 * from_float is GGML's reference quantize_row_*_ref, same rounding.  The float
 * expressions must be evaluated as written (no FMA contraction: the project
 * builds with -std=c11, where GCC defaults to -ffp-contract=off); the golden
 * test checks the quantizers bit-exactly.
 *
 * Dot products: weights against activations quantized to Q8_0 (Q4_0, Q5_0,
 * Q8_0) or Q8_1 (Q4_1, Q5_1, Q8_1), as llama.cpp does.  Per block the integer
 * products are summed exactly in int32, then scaled once.  Each scalar kernel
 * is one fixed-length loop over the packed bytes that unpacks and multiplies in
 * registers, which the compiler vectorises (unpacking into a temporary array
 * first ran 3x slower: narrow stores do not forward to the wider loads);
 * Q8_0 and Q5_0 also have AVX2 paths.
 *
 * The loops multiply the unsigned stored quant and apply the offset (the -8 of
 * Q4_0, the -16 of Q5_0) through the activation sum: GCC 12 targeting VNNI
 * (-mavx512vnni, which -march=native turns on for AVX-512 machines) miscompiles
 * sum += ((u8 & 15) - 8) * s8 into vpdpbusd as if the difference were still
 * an unsigned byte (tests/unit/test_quant.c catches it). */
#include <math.h>
#include <string.h>

#if defined(__AVX2__)
#include "core/simd_x86.h"

#include <immintrin.h>
#endif

#include "core/fp16.h"
#include "quant/blocks.h"
#include "quant/dtype.h"
#include "quant/legacy_x16.h"
#include "quant/q4_1_x16.h"
#include "quant/q5_x16.h"

static inline float h2f(uint16_t h) { return slim_fp16_to_f32(h); }
static inline uint16_t f2h(float f) { return slim_f32_to_fp16(f); }

static inline uint32_t load_qh(const uint8_t qh[4]) {
    uint32_t v;
    memcpy(&v, qh, sizeof v);
    return v;
}

/* The first element of largest magnitude, with its sign (GGML's "max"). */
static inline float signed_absmax(const float *x, int n) {
    float amax = 0.0f, max = 0.0f;
    for (int j = 0; j < n; j++) {
        if (amax < fabsf(x[j])) {
            amax = fabsf(x[j]);
            max = x[j];
        }
    }
    return max;
}

static inline void min_max(const float *x, int n, float *min, float *max) {
    float lo = x[0], hi = x[0];
    for (int j = 1; j < n; j++) {
        if (x[j] < lo) lo = x[j];
        if (x[j] > hi) hi = x[j];
    }
    *min = lo;
    *max = hi;
}

/* ---- Q4_0 --------------------------------------------------------------- */

static void q4_0_to_float(const void *src, float *restrict y, int64_t n) {
    const block_q4_0 *b = src;
    for (int64_t i = 0; i < n / SLIM_QK4_0; i++, y += SLIM_QK4_0) {
        const float d = h2f(b[i].d);
        for (int j = 0; j < SLIM_QK4_0 / 2; j++) {
            y[j] = (float)((b[i].qs[j] & 0x0F) - 8) * d;
            y[j + SLIM_QK4_0 / 2] = (float)((b[i].qs[j] >> 4) - 8) * d;
        }
    }
}

static void q4_0_from_float(const float *restrict x, void *dst, int64_t n) {
    block_q4_0 *b = dst;
    for (int64_t i = 0; i < n / SLIM_QK4_0; i++, x += SLIM_QK4_0) {
        const float d = signed_absmax(x, SLIM_QK4_0) / -8;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        b[i].d = f2h(d);
        for (int j = 0; j < SLIM_QK4_0 / 2; j++) {
            const float x0 = x[j] * id, x1 = x[j + SLIM_QK4_0 / 2] * id;
            int q0 = (int)(x0 + 8.5f), q1 = (int)(x1 + 8.5f); /* truncation, as GGML */
            q0 = q0 > 15 ? 15 : q0;
            q1 = q1 > 15 ? 15 : q1;
            b[i].qs[j] = (uint8_t)(q0 | q1 << 4);
        }
    }
}

float slim_vec_dot_q4_0_q8_0_ref(int64_t n, const void *vw, const void *vx) {
    const block_q4_0 *restrict w = vw;
    const block_q8_0 *restrict x = vx;
    float sum = 0.0f;
    for (int64_t i = 0; i < n / SLIM_QK4_0; i++) {
        int32_t isum = 0, xsum = 0;
        for (int j = 0; j < 16; j++) {
            isum += (w[i].qs[j] & 0x0F) * x[i].qs[j] + (w[i].qs[j] >> 4) * x[i].qs[j + 16];
            xsum += x[i].qs[j] + x[i].qs[j + 16];
        }
        isum -= 8 * xsum;
        sum += h2f(w[i].d) * h2f(x[i].d) * (float)isum;
    }
    return sum;
}

/* ---- Q4_1 --------------------------------------------------------------- */

static void q4_1_to_float(const void *src, float *restrict y, int64_t n) {
    const block_q4_1 *b = src;
    for (int64_t i = 0; i < n / SLIM_QK4_1; i++, y += SLIM_QK4_1) {
        const float d = h2f(b[i].d), m = h2f(b[i].m);
        for (int j = 0; j < SLIM_QK4_1 / 2; j++) {
            y[j] = (float)(b[i].qs[j] & 0x0F) * d + m;
            y[j + SLIM_QK4_1 / 2] = (float)(b[i].qs[j] >> 4) * d + m;
        }
    }
}

static void q4_1_from_float(const float *restrict x, void *dst, int64_t n) {
    block_q4_1 *b = dst;
    for (int64_t i = 0; i < n / SLIM_QK4_1; i++, x += SLIM_QK4_1) {
        float min, max;
        min_max(x, SLIM_QK4_1, &min, &max);
        const float d = (max - min) / 15;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        b[i].d = f2h(d);
        b[i].m = f2h(min);
        for (int j = 0; j < SLIM_QK4_1 / 2; j++) {
            const float x0 = (x[j] - min) * id, x1 = (x[j + SLIM_QK4_1 / 2] - min) * id;
            int q0 = (int)(x0 + 0.5f), q1 = (int)(x1 + 0.5f);
            q0 = q0 > 15 ? 15 : q0;
            q1 = q1 > 15 ? 15 : q1;
            b[i].qs[j] = (uint8_t)(q0 | q1 << 4);
        }
    }
}

/* sum_j (d*q_j + m) * (dx*p_j) = d*dx*sum(q_j*p_j) + m*s, s = dx*sum(p_j) from the Q8_1 block */
float slim_vec_dot_q4_1_q8_1_ref(int64_t n, const void *vw, const void *vx) {
    const block_q4_1 *restrict w = vw;
    const block_q8_1 *restrict x = vx;
    float sum = 0.0f;
    for (int64_t i = 0; i < n / SLIM_QK4_1; i++) {
        int32_t isum = 0;
        for (int j = 0; j < 16; j++)
            isum += (w[i].qs[j] & 0x0F) * x[i].qs[j] + (w[i].qs[j] >> 4) * x[i].qs[j + 16];
        sum += h2f(w[i].d) * h2f(x[i].d) * (float)isum + h2f(w[i].m) * h2f(x[i].s);
    }
    return sum;
}

/* ---- Q5_0 --------------------------------------------------------------- */

static void q5_0_to_float(const void *src, float *restrict y, int64_t n) {
    const block_q5_0 *b = src;
    for (int64_t i = 0; i < n / SLIM_QK5_0; i++, y += SLIM_QK5_0) {
        const float d = h2f(b[i].d);
        const uint32_t qh = load_qh(b[i].qh);
        for (int j = 0; j < SLIM_QK5_0 / 2; j++) {
            const int h0 = (int)((qh >> j) & 1) << 4, h1 = (int)((qh >> (j + 16)) & 1) << 4;
            y[j] = (float)(((b[i].qs[j] & 0x0F) | h0) - 16) * d;
            y[j + SLIM_QK5_0 / 2] = (float)(((b[i].qs[j] >> 4) | h1) - 16) * d;
        }
    }
}

static void q5_0_from_float(const float *restrict x, void *dst, int64_t n) {
    block_q5_0 *b = dst;
    for (int64_t i = 0; i < n / SLIM_QK5_0; i++, x += SLIM_QK5_0) {
        const float d = signed_absmax(x, SLIM_QK5_0) / -16;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        b[i].d = f2h(d);
        uint32_t qh = 0;
        for (int j = 0; j < SLIM_QK5_0 / 2; j++) {
            const float x0 = x[j] * id, x1 = x[j + SLIM_QK5_0 / 2] * id;
            int q0 = (int)(x0 + 16.5f), q1 = (int)(x1 + 16.5f);
            q0 = q0 > 31 ? 31 : q0;
            q1 = q1 > 31 ? 31 : q1;
            b[i].qs[j] = (uint8_t)((q0 & 0x0F) | (q1 & 0x0F) << 4);
            qh |= (uint32_t)(q0 >> 4) << j;
            qh |= (uint32_t)(q1 >> 4) << (j + 16);
        }
        memcpy(b[i].qh, &qh, sizeof qh);
    }
}

float slim_vec_dot_q5_0_q8_0_ref(int64_t n, const void *vw, const void *vx) {
    const block_q5_0 *restrict w = vw;
    const block_q8_0 *restrict x = vx;
    float sum = 0.0f;
    for (int64_t i = 0; i < n / SLIM_QK5_0; i++) {
        const uint32_t qh = load_qh(w[i].qh);
        int32_t isum = 0, xsum = 0;
        for (int j = 0; j < 16; j++) {
            const int q0 = (int)((w[i].qs[j] & 0x0F) | ((qh >> j) & 1) << 4);
            const int q1 = (int)((w[i].qs[j] >> 4) | ((qh >> (j + 16)) & 1) << 4);
            isum += q0 * x[i].qs[j] + q1 * x[i].qs[j + 16];
            xsum += x[i].qs[j] + x[i].qs[j + 16];
        }
        isum -= 16 * xsum;
        sum += h2f(w[i].d) * h2f(x[i].d) * (float)isum;
    }
    return sum;
}

/* ---- Q5_1 --------------------------------------------------------------- */

static void q5_1_to_float(const void *src, float *restrict y, int64_t n) {
    const block_q5_1 *b = src;
    for (int64_t i = 0; i < n / SLIM_QK5_1; i++, y += SLIM_QK5_1) {
        const float d = h2f(b[i].d), m = h2f(b[i].m);
        const uint32_t qh = load_qh(b[i].qh);
        for (int j = 0; j < SLIM_QK5_1 / 2; j++) {
            const int h0 = (int)((qh >> j) & 1) << 4, h1 = (int)((qh >> (j + 16)) & 1) << 4;
            y[j] = (float)((b[i].qs[j] & 0x0F) | h0) * d + m;
            y[j + SLIM_QK5_1 / 2] = (float)((b[i].qs[j] >> 4) | h1) * d + m;
        }
    }
}

static void q5_1_from_float(const float *restrict x, void *dst, int64_t n) {
    block_q5_1 *b = dst;
    for (int64_t i = 0; i < n / SLIM_QK5_1; i++, x += SLIM_QK5_1) {
        float min, max;
        min_max(x, SLIM_QK5_1, &min, &max);
        const float d = (max - min) / 31;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        b[i].d = f2h(d);
        b[i].m = f2h(min);
        uint32_t qh = 0;
        for (int j = 0; j < SLIM_QK5_1 / 2; j++) {
            const float x0 = (x[j] - min) * id, x1 = (x[j + SLIM_QK5_1 / 2] - min) * id;
            /* GGML does not clamp here; (max - min) * id + 0.5 stays below 32 */
            const unsigned q0 = (unsigned)(x0 + 0.5f), q1 = (unsigned)(x1 + 0.5f);
            b[i].qs[j] = (uint8_t)((q0 & 0x0F) | (q1 & 0x0F) << 4);
            qh |= ((q0 >> 4) & 1u) << j;
            qh |= ((q1 >> 4) & 1u) << (j + 16);
        }
        memcpy(b[i].qh, &qh, sizeof qh);
    }
}

static float vec_dot_q5_1_q8_1(int64_t n, const void *vw, const void *vx) {
    const block_q5_1 *restrict w = vw;
    const block_q8_1 *restrict x = vx;
    float sum = 0.0f;
    for (int64_t i = 0; i < n / SLIM_QK5_1; i++) {
        const uint32_t qh = load_qh(w[i].qh);
        int32_t isum = 0;
        for (int j = 0; j < 16; j++) {
            const int q0 = (int)((w[i].qs[j] & 0x0F) | ((qh >> j) & 1) << 4);
            const int q1 = (int)((w[i].qs[j] >> 4) | ((qh >> (j + 16)) & 1) << 4);
            isum += q0 * x[i].qs[j] + q1 * x[i].qs[j + 16];
        }
#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VNNI__)
        /* the repacked kernel's numerics (q5_x16.h): the same bits packed or not */
        sum = fmaf(h2f(w[i].d) * h2f(x[i].d), (float)isum, sum);
        sum = fmaf(h2f(w[i].m), h2f(x[i].s), sum);
#else
        sum += h2f(w[i].d) * h2f(x[i].d) * (float)isum + h2f(w[i].m) * h2f(x[i].s);
#endif
    }
    return sum;
}

/* ---- Q8_0 --------------------------------------------------------------- */

static void q8_0_to_float(const void *src, float *restrict y, int64_t n) {
    const block_q8_0 *b = src;
    for (int64_t i = 0; i < n / SLIM_QK8_0; i++, y += SLIM_QK8_0) {
        const float d = h2f(b[i].d);
        for (int j = 0; j < SLIM_QK8_0; j++)
            y[j] = (float)b[i].qs[j] * d;
    }
}

/* amax/127 scale, round half away from zero: values stay in [-127, 127]
 * (the AVX2 dot products rely on activations never being -128). */
#if defined(__AVX512F__) && defined(__AVX512BW__)
/* roundf(v) (half away from zero) for |v| < 2^23, exactly: trunc, then one
 * step away where the (exact) remainder is at least a half. */
static inline __m512 round_half_away(__m512 v) {
    const __m512 t = _mm512_roundscale_ps(v, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
    const __mmask16 up =
        _mm512_cmp_ps_mask(_mm512_abs_ps(_mm512_sub_ps(v, t)), _mm512_set1_ps(0.5f), _CMP_GE_OQ);
    const __m512 one = _mm512_castsi512_ps(
        _mm512_or_si512(_mm512_castps_si512(_mm512_set1_ps(1.0f)),
                        _mm512_and_si512(_mm512_castps_si512(v), _mm512_set1_epi32(INT32_MIN))));
    return _mm512_mask_add_ps(t, up, t, one);
}

/* The same values as the scalar loop below, 16 lanes at a time (the max of
 * |x| is order-independent; mul and rounding are the same IEEE operations). */
static void q8_0_from_float(const float *restrict x, void *dst, int64_t n) {
    block_q8_0 *b = dst;
    for (int64_t i = 0; i < n / SLIM_QK8_0; i++, x += SLIM_QK8_0) {
        const __m512 v0 = _mm512_loadu_ps(x), v1 = _mm512_loadu_ps(x + 16);
        const float amax = _mm512_reduce_max_ps(_mm512_max_ps(
            _mm512_abs_ps(v1), _mm512_max_ps(_mm512_abs_ps(v0), _mm512_setzero_ps())));
        const float d = amax / 127;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        b[i].d = f2h(d);
        const __m512 vid = _mm512_set1_ps(id);
        const __m512i q0 = _mm512_cvttps_epi32(round_half_away(_mm512_mul_ps(v0, vid)));
        const __m512i q1 = _mm512_cvttps_epi32(round_half_away(_mm512_mul_ps(v1, vid)));
        _mm_storeu_si128((__m128i *)b[i].qs, _mm512_cvtepi32_epi8(q0));
        _mm_storeu_si128((__m128i *)(b[i].qs + 16), _mm512_cvtepi32_epi8(q1));
    }
}
#else
static void q8_0_from_float(const float *restrict x, void *dst, int64_t n) {
    block_q8_0 *b = dst;
    for (int64_t i = 0; i < n / SLIM_QK8_0; i++, x += SLIM_QK8_0) {
        float amax = 0.0f;
        for (int j = 0; j < SLIM_QK8_0; j++)
            amax = fmaxf(amax, fabsf(x[j]));
        const float d = amax / 127;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        b[i].d = f2h(d);
        for (int j = 0; j < SLIM_QK8_0; j++)
            b[i].qs[j] = (int8_t)roundf(x[j] * id);
    }
}
#endif

float slim_vec_dot_q8_0_q8_0_ref(int64_t n, const void *vw, const void *vx) {
    const block_q8_0 *restrict w = vw;
    const block_q8_0 *restrict x = vx;
    float sum = 0.0f;
    for (int64_t i = 0; i < n / SLIM_QK8_0; i++) {
        int32_t isum = 0;
        for (int j = 0; j < SLIM_QK8_0; j++)
            isum += w[i].qs[j] * x[i].qs[j];
        sum += h2f(w[i].d) * h2f(x[i].d) * (float)isum;
    }
    return sum;
}

/* ---- Q8_1 --------------------------------------------------------------- */

static void q8_1_to_float(const void *src, float *restrict y, int64_t n) {
    const block_q8_1 *b = src;
    for (int64_t i = 0; i < n / SLIM_QK8_1; i++, y += SLIM_QK8_1) {
        const float d = h2f(b[i].d);
        for (int j = 0; j < SLIM_QK8_1; j++)
            y[j] = (float)b[i].qs[j] * d;
    }
}

static void q8_1_from_float(const float *restrict x, void *dst, int64_t n) {
    block_q8_1 *b = dst;
    for (int64_t i = 0; i < n / SLIM_QK8_1; i++, x += SLIM_QK8_1) {
        float amax = 0.0f;
        for (int j = 0; j < SLIM_QK8_1; j++)
            amax = fmaxf(amax, fabsf(x[j]));
        const float d = amax / 127;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        b[i].d = f2h(d);
        int sum = 0;
        for (int j = 0; j < SLIM_QK8_1; j++) {
            b[i].qs[j] = (int8_t)roundf(x[j] * id);
            sum += b[i].qs[j];
        }
        b[i].s = f2h((float)sum * d);
    }
}

static float vec_dot_q8_1_q8_1(int64_t n, const void *vw, const void *vx) {
    const block_q8_1 *restrict w = vw;
    const block_q8_1 *restrict x = vx;
    float sum = 0.0f;
    for (int64_t i = 0; i < n / SLIM_QK8_1; i++) {
        int32_t isum = 0;
        for (int j = 0; j < SLIM_QK8_1; j++)
            isum += w[i].qs[j] * x[i].qs[j];
        sum += h2f(w[i].d) * h2f(x[i].d) * (float)isum;
    }
    return sum;
}

/* ---- AVX2 --------------------------------------------------------------- */

#if defined(__AVX2__)
/* AVX-512 VNNI builds replace every AVX2 kernel below with the zmm ones. */
#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__) &&                      \
    defined(__AVX512VNNI__)
#define LEGACY_Z 1
#else
#define LEGACY_Z 0
#endif

#if !LEGACY_Z
/* 8 int32 sums of 4 products each of w*x.  x must not hold -128 (Q8_0 from
 * from_float never does): |w| times sign(w)*x, pairs then fit int16. */
static inline __m256i dot_i8_pairs(__m256i w, __m256i x) {
    const __m256i aw = _mm256_sign_epi8(w, w);
    const __m256i sx = _mm256_sign_epi8(x, w);
    const __m256i p16 = _mm256_maddubs_epi16(aw, sx);
    return _mm256_madd_epi16(p16, _mm256_set1_epi16(1));
}

static float vec_dot_q8_0_q8_0_avx2(int64_t n, const void *vw, const void *vx) {
    const block_q8_0 *restrict w = vw;
    const block_q8_0 *restrict x = vx;
    __m256 acc = _mm256_setzero_ps();
    for (int64_t i = 0; i < n / SLIM_QK8_0; i++) {
        const __m256i qw = _mm256_loadu_si256((const __m256i *)w[i].qs);
        const __m256i qx = _mm256_loadu_si256((const __m256i *)x[i].qs);
        const __m256 d = _mm256_set1_ps(h2f(w[i].d) * h2f(x[i].d));
        acc = slim_madd_f32x8(d, _mm256_cvtepi32_ps(dot_i8_pairs(qw, qx)), acc);
    }
    return slim_hsum_f32x8(acc);
}

/* 16 packed bytes to 32: low nibbles (elements 0..15), then high nibbles. */
static inline __m256i unpack_nibbles_16(const uint8_t *p) {
    const __m128i b = _mm_loadu_si128((const __m128i *)p);
    const __m256i both =
        _mm256_inserti128_si256(_mm256_castsi128_si256(b), _mm_srli_epi16(b, 4), 1);
    return _mm256_and_si256(both, _mm256_set1_epi8(0x0F));
}

/* 0xFF in byte j where bit j of bits is set. */
static inline __m256i spread_bits_32(uint32_t bits) {
    const __m256i pick =
        _mm256_setr_epi64x(0, 0x0101010101010101, 0x0202020202020202, 0x0303030303030303);
    const __m256i bytes = _mm256_shuffle_epi8(_mm256_set1_epi32((int)bits), pick);
    const __m256i mask = _mm256_set1_epi64x((long long)0x8040201008040201ull);
    return _mm256_cmpeq_epi8(_mm256_and_si256(bytes, mask), mask);
}

static float vec_dot_q5_0_q8_0_avx2(int64_t n, const void *vw, const void *vx) {
    const block_q5_0 *restrict w = vw;
    const block_q8_0 *restrict x = vx;
    __m256 acc = _mm256_setzero_ps();
    for (int64_t i = 0; i < n / SLIM_QK5_0; i++) {
        /* q - 16 = nibble | 0xF0 (as int8) where the fifth bit is clear, else nibble */
        const __m256i hi =
            _mm256_andnot_si256(spread_bits_32(load_qh(w[i].qh)), _mm256_set1_epi8((char)0xF0));
        const __m256i qw = _mm256_or_si256(unpack_nibbles_16(w[i].qs), hi);
        const __m256i qx = _mm256_loadu_si256((const __m256i *)x[i].qs);
        const __m256 d = _mm256_set1_ps(h2f(w[i].d) * h2f(x[i].d));
        acc = slim_madd_f32x8(d, _mm256_cvtepi32_ps(dot_i8_pairs(qw, qx)), acc);
    }
    return slim_hsum_f32x8(acc);
}
/* Q4_0: unsigned nibbles times signed activations (maddubs needs no sign
 * trick: |q x| <= 15 * 127, pairs fit int16), minus 8 * sum(x). */
static float vec_dot_q4_0_q8_0_avx2(int64_t n, const void *vw, const void *vx) {
    const block_q4_0 *restrict w = vw;
    const block_q8_0 *restrict x = vx;
    const __m256i ones16 = _mm256_set1_epi16(1), eights = _mm256_set1_epi8(8);
    __m256 acc = _mm256_setzero_ps();
    for (int64_t i = 0; i < n / SLIM_QK4_0; i++) {
        const __m256i qw = unpack_nibbles_16(w[i].qs);
        const __m256i qx = _mm256_loadu_si256((const __m256i *)x[i].qs);
        const __m256i prod = _mm256_madd_epi16(_mm256_maddubs_epi16(qw, qx), ones16);
        const __m256i offs = _mm256_madd_epi16(_mm256_maddubs_epi16(eights, qx), ones16);
        const __m256 d = _mm256_set1_ps(h2f(w[i].d) * h2f(x[i].d));
        acc = slim_madd_f32x8(d, _mm256_cvtepi32_ps(_mm256_sub_epi32(prod, offs)), acc);
    }
    return slim_hsum_f32x8(acc);
}

/* Q4_1: d_w d_x sum(q x) + m_w s_x, the min folded through Q8_1's sum s. */
static float vec_dot_q4_1_q8_1_avx2(int64_t n, const void *vw, const void *vx) {
    const block_q4_1 *restrict w = vw;
    const block_q8_1 *restrict x = vx;
    const __m256i ones16 = _mm256_set1_epi16(1);
    __m256 acc = _mm256_setzero_ps();
    float mins = 0.0f;
    for (int64_t i = 0; i < n / SLIM_QK4_1; i++) {
        const __m256i qw = unpack_nibbles_16(w[i].qs);
        const __m256i qx = _mm256_loadu_si256((const __m256i *)x[i].qs);
        const __m256i prod = _mm256_madd_epi16(_mm256_maddubs_epi16(qw, qx), ones16);
        const __m256 d = _mm256_set1_ps(h2f(w[i].d) * h2f(x[i].d));
        acc = slim_madd_f32x8(d, _mm256_cvtepi32_ps(prod), acc);
        mins += h2f(w[i].m) * h2f(x[i].s);
    }
    return slim_hsum_f32x8(acc) + mins;
}
#endif /* !LEGACY_Z */

/* ---- multi-token kernels (gemm) ------------------------------------------
 *
 * A tile of up to GEMM_R weight rows x GEMM_C tokens walks the blocks once:
 * each weight block is unpacked once for GEMM_C tokens, each activation block
 * loaded once for GEMM_R rows.  Every (row, token) pair keeps its own
 * accumulator and does exactly what vec_dot does per block, so the output is
 * bitwise vec_dot's.
 *
 * AVX-512 VNNI builds: one zmm holds two consecutive blocks (lanes 0-7 the
 * even block, 8-15 the odd one; a last odd block uses the low half, the high
 * half zero).  Per block pair and (row, token): one vpdpbusd gives the 16
 * exact int32 lane sums, then acc += (d_w * d_x) * float(lanes), one FMA.
 * There vec_dot IS the 1 x 1 tile, so gemm == vec_dot bitwise by
 * construction.  Offsets go through vpdpbusd's accumulator input: Q4_0 and
 * Q5_0 multiply the unsigned stored quant and start the lanes at
 * -8 (-16) * sum(x) per token; Q8_0 multiplies x + 128 and starts at
 * -128 * sum(w) per row; Q4_1 adds m_w * s_x in lanes 0 and 8.
 *
 * AVX2 builds: a 4 x 2 tile of 256-bit lanes repeating the AVX2 vec_dot's
 * steps (Q8_0, Q5_0). */

#define GEMM_INLINE static inline __attribute__((always_inline))

#if LEGACY_Z
enum { GEMM_R = 4, GEMM_C = 4 };
enum { Z_Q4_0, Z_Q4_1, Z_Q5_0, Z_Q8_0 };

/* [a x 8, b x 8] */
GEMM_INLINE __m512 zpair_ps(float a, float b) {
    return _mm512_castpd_ps(_mm512_insertf64x4(_mm512_castps_pd(_mm512_set1_ps(a)),
                                               _mm256_castps_pd(_mm256_set1_ps(b)), 1));
}

/* 32 bytes at a, then 32 at b (or zeros when !two) */
GEMM_INLINE __m512i zload_2x32(const void *a, const void *b, int two) {
    const __m256i lo = _mm256_loadu_si256((const __m256i *)a);
    return two ? _mm512_inserti64x4(_mm512_castsi256_si512(lo),
                                    _mm256_loadu_si256((const __m256i *)b), 1)
               : _mm512_zextsi256_si512(lo);
}

/* Two blocks of 16 packed bytes to [a & 15, a >> 4, b & 15, b >> 4]. */
GEMM_INLINE __m512i znibbles(const uint8_t *a, const uint8_t *b, int two) {
    const __m128i la = _mm_loadu_si128((const __m128i *)a);
    const __m256i v = two ? _mm256_inserti128_si256(_mm256_castsi128_si256(la),
                                                    _mm_loadu_si128((const __m128i *)b), 1)
                          : _mm256_zextsi128_si256(la);
    __m512i z = _mm512_inserti64x4(_mm512_castsi256_si512(v), _mm256_srli_epi16(v, 4), 1);
    z = _mm512_shuffle_i64x2(z, z, _MM_SHUFFLE(3, 1, 2, 0));
    return _mm512_and_si512(z, _mm512_set1_epi8(0x0F));
}

/* The fp16 scales of blocks i, i+1 of up to 4 rows (or tokens) at once: h[k]
 * holds k's two (low half block i; zeros past n); zscale(v, k) = [k's a x 8, b x 8]. */
GEMM_INLINE __m256 zscales(const uint32_t h[4]) {
    /* built in registers: a store of the halves and a wide reload would stall */
    return _mm256_cvtph_ps(_mm_setr_epi32((int)h[0], (int)h[1], (int)h[2], (int)h[3]));
}
GEMM_INLINE __m512 zscale(__m256 v, int k) {
    const __m512i idx = _mm512_set_epi32(2 * k + 1, 2 * k + 1, 2 * k + 1, 2 * k + 1, 2 * k + 1,
                                         2 * k + 1, 2 * k + 1, 2 * k + 1, 2 * k, 2 * k, 2 * k,
                                         2 * k, 2 * k, 2 * k, 2 * k, 2 * k);
    return _mm512_permutexvar_ps(idx, _mm512_castps256_ps512(v));
}

GEMM_INLINE float zhsum(__m512 v) {
    const __m256 hi = _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1));
    return slim_hsum_f32x8(_mm256_add_ps(_mm512_castps512_ps256(v), hi));
}

/* Every format keeps the repacked kernels' numerics (legacy_x16.h,
 * q4_1_x16.h, q5_x16.h): one float per (row, token) in lane 0 of acc,
 * acc = fma(d_w * d_x, isum, acc) block by block with isum the block's exact
 * integer dot (Q4_1: then acc = fma(m_w, s_x, acc)), so a matrix gives the
 * same bits packed or not (tests/unit/test_repack_model.c). */
#define Z_EXACT(F) ((F) == Z_Q4_0 || (F) == Z_Q4_1 || (F) == Z_Q5_0 || (F) == Z_Q8_0)

GEMM_INLINE __m512 zexact(__m512 acc, float d, float isum) { /* isum: exact in float */
    return _mm512_zextps128_ps512(_mm_set_ss(fmaf(d, isum, _mm512_cvtss_f32(acc))));
}

GEMM_INLINE float zout(const int F, __m512 acc) {
    return Z_EXACT(F) ? _mm512_cvtss_f32(acc) : zhsum(acc);
}

/* The rows' part of a block pair (two) or of the last single block at block
 * index i: unpacked quants, per-row terms (Q8_0's -128 sum(w), Q4_1's mins)
 * and the [d_a x 8, d_b x 8] scales. */
GEMM_INLINE void zrows(const int F, const int two, int64_t i, const char *w, size_t ws, int nr,
                       __m512i qw[GEMM_R], __m512i aux[GEMM_R], __m512 dw[GEMM_R],
                       __m512 mw[GEMM_R]) {
    const int j = two ? 1 : 0;
    uint32_t hw[4] = {0}; /* the fp16 scales, converted 8 at a time */
#pragma GCC unroll 4
    for (int r = 0; r < nr; r++) {
        const char *row = w + (size_t)r * ws;
        if (F == Z_Q4_0) {
            const block_q4_0 *b = (const block_q4_0 *)row + i;
            qw[r] = znibbles(b[0].qs, b[j].qs, two);
            hw[r] = b[0].d | (uint32_t)(two ? b[1].d : 0) << 16;
        } else if (F == Z_Q4_1) {
            const block_q4_1 *b = (const block_q4_1 *)row + i;
            qw[r] = znibbles(b[0].qs, b[j].qs, two);
            hw[r] = b[0].d | (uint32_t)(two ? b[1].d : 0) << 16;
            mw[r] = _mm512_maskz_mov_ps(0x0101, zpair_ps(h2f(b[0].m), two ? h2f(b[1].m) : 0.0f));
        } else if (F == Z_Q5_0) {
            const block_q5_0 *b = (const block_q5_0 *)row + i;
            const __mmask64 hb =
                (__mmask64)load_qh(b[0].qh) | (two ? (__mmask64)load_qh(b[1].qh) << 32 : 0);
            qw[r] = _mm512_or_si512(znibbles(b[0].qs, b[j].qs, two),
                                    _mm512_maskz_mov_epi8(hb, _mm512_set1_epi8(0x10)));
            hw[r] = b[0].d | (uint32_t)(two ? b[1].d : 0) << 16;
        } else {
            const block_q8_0 *b = (const block_q8_0 *)row + i;
            qw[r] = zload_2x32(b[0].qs, b[j].qs, two);
            aux[r] = _mm512_sub_epi32(
                _mm512_setzero_si512(),
                _mm512_dpbusd_epi32(_mm512_setzero_si512(), _mm512_set1_epi8((char)0x80), qw[r]));
            hw[r] = b[0].d | (uint32_t)(two ? b[1].d : 0) << 16;
        }
    }
    const __m256 dws = zscales(hw);
#pragma GCC unroll 4
    for (int r = 0; r < nr; r++)
        dw[r] = zscale(dws, r);
}

/* The tokens' part: every (row, token) pair's lanes, scaled into acc. */
GEMM_INLINE void ztoks(const int F, const int two, int64_t i, const char *x, size_t xs, int nr,
                       int nc, const __m512i qw[GEMM_R], const __m512i aux[GEMM_R],
                       const __m512 dw[GEMM_R], const __m512 mw[GEMM_R],
                       __m512 acc[GEMM_R][GEMM_C]) {
    const int j = two ? 1 : 0;
    uint32_t hx[4] = {0};
#pragma GCC unroll 4
    for (int c = 0; c < nc; c++) {
        const char *xc = x + (size_t)c * xs;
        if (F == Z_Q4_1) {
            const block_q8_1 *bx = (const block_q8_1 *)xc + i;
            hx[c] = bx[0].d | (uint32_t)(two ? bx[1].d : 0) << 16;
        } else {
            const block_q8_0 *bx = (const block_q8_0 *)xc + i;
            hx[c] = bx[0].d | (uint32_t)(two ? bx[1].d : 0) << 16;
        }
    }
    const __m256 dxs = zscales(hx);
#pragma GCC unroll 4
    for (int c = 0; c < nc; c++) {
        __m512i qx, off = _mm512_setzero_si512();
        __m512 sx = _mm512_setzero_ps();
        const __m512 dx = zscale(dxs, c);
        if (F == Z_Q4_1) {
            const block_q8_1 *bx = (const block_q8_1 *)(x + (size_t)c * xs) + i;
            qx = zload_2x32(bx[0].qs, bx[j].qs, two);
            sx = _mm512_maskz_mov_ps(0x0101, zpair_ps(h2f(bx[0].s), two ? h2f(bx[1].s) : 0.0f));
        } else {
            const block_q8_0 *bx = (const block_q8_0 *)(x + (size_t)c * xs) + i;
            qx = zload_2x32(bx[0].qs, bx[j].qs, two);
        }
        if (F == Z_Q4_0 || F == Z_Q5_0)
            off = _mm512_sub_epi32(_mm512_setzero_si512(),
                                   _mm512_dpbusd_epi32(_mm512_setzero_si512(),
                                                       _mm512_set1_epi8(F == Z_Q4_0 ? 8 : 16), qx));
        if (F == Z_Q8_0) qx = _mm512_xor_si512(qx, _mm512_set1_epi8((char)0x80));
#pragma GCC unroll 4
        for (int r = 0; r < nr; r++) {
            const __m512i s = F == Z_Q8_0 ? _mm512_dpbusd_epi32(aux[r], qx, qw[r])
                                          : _mm512_dpbusd_epi32(off, qw[r], qx);
            if (Z_EXACT(F)) { /* block i (lanes 0-7), then i + 1 (lanes 8-15) */
                /* each half's exact sum, into lanes 0 and 8 */
                __m512i t = _mm512_add_epi32(s, _mm512_shuffle_epi32(s, _MM_PERM_BADC));
                t = _mm512_add_epi32(t, _mm512_shuffle_epi32(t, _MM_PERM_CDAB));
                t = _mm512_add_epi32(t, _mm512_shuffle_i32x4(t, t, _MM_SHUFFLE(2, 3, 0, 1)));
                const __m512 d = _mm512_mul_ps(dw[r], dx), f = _mm512_cvtepi32_ps(t);
                acc[r][c] = zexact(acc[r][c], _mm512_cvtss_f32(d), _mm512_cvtss_f32(f));
                if (F == Z_Q4_1)
                    acc[r][c] = zexact(acc[r][c], _mm512_cvtss_f32(mw[r]), _mm512_cvtss_f32(sx));
                if (two) {
                    acc[r][c] = zexact(acc[r][c], _mm_cvtss_f32(_mm512_extractf32x4_ps(d, 2)),
                                       _mm_cvtss_f32(_mm512_extractf32x4_ps(f, 2)));
                    if (F == Z_Q4_1)
                        acc[r][c] =
                            zexact(acc[r][c], _mm_cvtss_f32(_mm512_extractf32x4_ps(mw[r], 2)),
                                   _mm_cvtss_f32(_mm512_extractf32x4_ps(sx, 2)));
                }
                continue;
            }
            acc[r][c] = _mm512_fmadd_ps(_mm512_mul_ps(dw[r], dx), _mm512_cvtepi32_ps(s), acc[r][c]);
            if (F == Z_Q4_1) acc[r][c] = _mm512_fmadd_ps(mw[r], sx, acc[r][c]);
        }
    }
}

/* One block pair (two) or the last single block at block index i. */
GEMM_INLINE void zstep(const int F, const int two, int64_t i, const char *w, size_t ws,
                       const char *x, size_t xs, int nr, int nc, __m512 acc[GEMM_R][GEMM_C]) {
    __m512i qw[GEMM_R], aux[GEMM_R];
    __m512 dw[GEMM_R], mw[GEMM_R];
    zrows(F, two, i, w, ws, nr, qw, aux, dw, mw);
    ztoks(F, two, i, x, xs, nr, nc, qw, aux, dw, mw, acc);
}

GEMM_INLINE void ztile(const int F, int64_t nb, const char *w, size_t ws, const char *x, size_t xs,
                       int nr, int nc, float *y, int64_t ldy) {
    __m512 acc[GEMM_R][GEMM_C];
#pragma GCC unroll 4
    for (int r = 0; r < nr; r++)
#pragma GCC unroll 4
        for (int c = 0; c < nc; c++)
            acc[r][c] = _mm512_setzero_ps();
    int64_t i = 0;
    for (; i + 1 < nb; i += 2)
        zstep(F, 1, i, w, ws, x, xs, nr, nc, acc);
    if (i < nb) zstep(F, 0, i, w, ws, x, xs, nr, nc, acc);
#pragma GCC unroll 4
    for (int r = 0; r < nr; r++)
#pragma GCC unroll 4
        for (int c = 0; c < nc; c++)
            y[c * ldy + r] = zout(F, acc[r][c]);
}

#define Z_FORMAT(fmt, F, QK)                                                                       \
    GEMM_INLINE void fmt##_tile(int64_t nb, const char *w, size_t ws, const char *x, size_t xs,    \
                                int nr, int nc, float *y, int64_t ldy) {                           \
        ztile(F, nb, w, ws, x, xs, nr, nc, y, ldy);                                                \
    }                                                                                              \
    static float vec_dot_##fmt##_z(int64_t n, const void *w, const void *x) {                      \
        float y;                                                                                   \
        ztile(F, n / (QK), w, 0, x, 0, 1, 1, &y, 0);                                               \
        return y;                                                                                  \
    }

Z_FORMAT(q4_0, Z_Q4_0, SLIM_QK4_0)
Z_FORMAT(q4_1, Z_Q4_1, SLIM_QK4_1)
Z_FORMAT(q5_0, Z_Q5_0, SLIM_QK5_0)
Z_FORMAT(q8_0, Z_Q8_0, SLIM_QK8_0)

#include "quant/gemm_tile.h"

DEFINE_GEMM(gemm_q4_0_direct, q4_0_tile, SLIM_QK4_0)
DEFINE_GEMM(gemm_q4_1_direct, q4_1_tile, SLIM_QK4_1)
DEFINE_GEMM(gemm_q5_0_direct, q5_0_tile, SLIM_QK5_0)
DEFINE_GEMM(gemm_q8_0_direct, q8_0_tile, SLIM_QK8_0)

/* Prefill on plain rows: each 16 rows are repacked into the
 * work area (legacy_x16.h's layout, after the tokens' prepared copy) and run
 * through the repacked kernel, whose numerics the exact tiles share (so still
 * bitwise vec_dot), at its speed.  Returns the first row it did not do. */
static int64_t zx16(const int F, int64_t n, const char *w, size_t ws, int64_t r0, int64_t r1,
                    const void *x, size_t xs, int64_t n_tokens, float *y, int64_t ldy, void *work,
                    size_t work_size) {
    const size_t sums =
        ((F == Z_Q4_1 ? slim_q4_1x16_prep_size(n, n_tokens) : slim_q4_0x16_prep_size(n, n_tokens)) +
         63) &
        ~(size_t)63;
    const size_t rows = slim_dtype_row_size(F == Z_Q8_0   ? SLIM_DTYPE_Q8_0
                                            : F == Z_Q4_1 ? SLIM_DTYPE_Q4_1
                                            : F == Z_Q5_0 ? SLIM_DTYPE_Q5_0
                                                          : SLIM_DTYPE_Q4_0,
                                            n);
    if (!work || r1 - r0 < SLIM_X16_ROWS || sums + SLIM_X16_ROWS * rows > work_size) return r0;
    void *xp = work;
    char *packed = (char *)work + sums;
    if (F == Z_Q4_1)
        slim_q4_1x16_prep(n, x, xs, n_tokens, xp);
    else
        slim_q4_0x16_prep(n, x, xs, n_tokens, xp);
    for (; r0 + SLIM_X16_ROWS <= r1; r0 += SLIM_X16_ROWS) {
        if (F == Z_Q4_1) {
            slim_q4_1x16_pack(w + (size_t)r0 * ws, ws, n, SLIM_X16_ROWS, packed);
            slim_q4_1x16_gemm(n, packed, 0, 1, xp, n_tokens, y + r0, ldy);
        } else if (F == Z_Q5_0) {
            slim_q5_0x16_pack(w + (size_t)r0 * ws, ws, n, SLIM_X16_ROWS, packed);
            slim_q5_0x16_gemm(n, packed, 0, 1, xp, n_tokens, y + r0, ldy);
        } else if (F == Z_Q8_0) {
            slim_q8_0x16_pack(w + (size_t)r0 * ws, ws, n, SLIM_X16_ROWS, packed);
            slim_q8_0x16_gemm(n, packed, 0, 1, xp, n_tokens, y + r0, ldy);
        } else {
            slim_q4_0x16_pack(w + (size_t)r0 * ws, ws, n, SLIM_X16_ROWS, packed);
            slim_q4_0x16_gemm(n, packed, 0, 1, xp, n_tokens, y + r0, ldy);
        }
    }
    return r0;
}

#define Z_GEMM(fmt, name, F)                                                                       \
    static void gemm_##name(int64_t n, const void *w, size_t ws, int64_t r0, int64_t r1,           \
                            const void *x, size_t xs, int64_t n_tokens, float *y, int64_t ldy,     \
                            void *work, size_t work_size) {                                        \
        _Static_assert(Z_EXACT(F), "every format's gemm takes the exact 16-row path");             \
        r0 = zx16(F, n, w, ws, r0, r1, x, xs, n_tokens, y, ldy, work, work_size);                  \
        if (r0 < r1) gemm_##fmt##_direct(n, w, ws, r0, r1, x, xs, n_tokens, y, ldy, NULL, 0);      \
    }

Z_GEMM(q4_0, q4_0_q8_0, Z_Q4_0)
Z_GEMM(q4_1, q4_1_q8_1, Z_Q4_1)
Z_GEMM(q5_0, q5_0_q8_0, Z_Q5_0)
Z_GEMM(q8_0, q8_0_q8_0, Z_Q8_0)

#define VEC_DOT_Q4_0 vec_dot_q4_0_z
#define VEC_DOT_Q4_1 vec_dot_q4_1_z
#define VEC_DOT_Q5_0 vec_dot_q5_0_z
#define VEC_DOT_Q8_0 vec_dot_q8_0_z
#define GEMM_Q4_0 gemm_q4_0_q8_0
#define GEMM_Q4_1 gemm_q4_1_q8_1
#define GEMM_Q5_0 gemm_q5_0_q8_0
#define GEMM_Q8_0 gemm_q8_0_q8_0

#else /* AVX2 */
enum { GEMM_R = 4, GEMM_C = 2 };

/* Q8_0 x Q8_0, as vec_dot_q8_0_q8_0_avx2. */
GEMM_INLINE void q8_0_tile(int64_t nb, const char *w, size_t ws, const char *x, size_t xs, int nr,
                           int nc, float *y, int64_t ldy) {
    __m256 acc[GEMM_R][GEMM_C];
#pragma GCC unroll 4
    for (int r = 0; r < nr; r++)
#pragma GCC unroll 4
        for (int c = 0; c < nc; c++)
            acc[r][c] = _mm256_setzero_ps();
    for (int64_t i = 0; i < nb; i++) {
        __m256i qw[GEMM_R], aux[GEMM_R];
        float dw[GEMM_R];
#pragma GCC unroll 4
        for (int r = 0; r < nr; r++) {
            const block_q8_0 *b = (const block_q8_0 *)(w + (size_t)r * ws) + i;
            qw[r] = _mm256_loadu_si256((const __m256i *)b->qs);
            aux[r] = _mm256_sign_epi8(qw[r], qw[r]);
            dw[r] = h2f(b->d);
        }
#pragma GCC unroll 4
        for (int c = 0; c < nc; c++) {
            const block_q8_0 *bx = (const block_q8_0 *)(x + (size_t)c * xs) + i;
            const __m256i qx = _mm256_loadu_si256((const __m256i *)bx->qs);
            const float dx = h2f(bx->d);
#pragma GCC unroll 4
            for (int r = 0; r < nr; r++) {
                const __m256i s =
                    _mm256_madd_epi16(_mm256_maddubs_epi16(aux[r], _mm256_sign_epi8(qx, qw[r])),
                                      _mm256_set1_epi16(1));
                acc[r][c] =
                    slim_madd_f32x8(_mm256_set1_ps(dw[r] * dx), _mm256_cvtepi32_ps(s), acc[r][c]);
            }
        }
    }
#pragma GCC unroll 4
    for (int r = 0; r < nr; r++)
#pragma GCC unroll 4
        for (int c = 0; c < nc; c++)
            y[c * ldy + r] = slim_hsum_f32x8(acc[r][c]);
}

/* Q5_0 x Q8_0, as vec_dot_q5_0_q8_0_avx2. */
GEMM_INLINE void q5_0_tile(int64_t nb, const char *w, size_t ws, const char *x, size_t xs, int nr,
                           int nc, float *y, int64_t ldy) {
    __m256 acc[GEMM_R][GEMM_C];
#pragma GCC unroll 4
    for (int r = 0; r < nr; r++)
#pragma GCC unroll 4
        for (int c = 0; c < nc; c++)
            acc[r][c] = _mm256_setzero_ps();
    for (int64_t i = 0; i < nb; i++) {
        __m256i qw[GEMM_R], aux[GEMM_R];
        float dw[GEMM_R];
#pragma GCC unroll 4
        for (int r = 0; r < nr; r++) {
            const block_q5_0 *b = (const block_q5_0 *)(w + (size_t)r * ws) + i;
            const __m256i bit5 = spread_bits_32(load_qh(b->qh));
            qw[r] = _mm256_or_si256(unpack_nibbles_16(b->qs),
                                    _mm256_andnot_si256(bit5, _mm256_set1_epi8((char)0xF0)));
            aux[r] = _mm256_sign_epi8(qw[r], qw[r]);
            dw[r] = h2f(b->d);
        }
#pragma GCC unroll 4
        for (int c = 0; c < nc; c++) {
            const block_q8_0 *bx = (const block_q8_0 *)(x + (size_t)c * xs) + i;
            const __m256i qx = _mm256_loadu_si256((const __m256i *)bx->qs);
            const float dx = h2f(bx->d);
#pragma GCC unroll 4
            for (int r = 0; r < nr; r++) {
                const __m256i s =
                    _mm256_madd_epi16(_mm256_maddubs_epi16(aux[r], _mm256_sign_epi8(qx, qw[r])),
                                      _mm256_set1_epi16(1));
                acc[r][c] =
                    slim_madd_f32x8(_mm256_set1_ps(dw[r] * dx), _mm256_cvtepi32_ps(s), acc[r][c]);
            }
        }
    }
#pragma GCC unroll 4
    for (int r = 0; r < nr; r++)
#pragma GCC unroll 4
        for (int c = 0; c < nc; c++)
            y[c * ldy + r] = slim_hsum_f32x8(acc[r][c]);
}

#include "quant/gemm_tile.h"

DEFINE_GEMM(gemm_q8_0_q8_0, q8_0_tile, SLIM_QK8_0)
DEFINE_GEMM(gemm_q5_0_q8_0, q5_0_tile, SLIM_QK5_0)

#define VEC_DOT_Q8_0 vec_dot_q8_0_q8_0_avx2
#define VEC_DOT_Q5_0 vec_dot_q5_0_q8_0_avx2
#define VEC_DOT_Q4_0 vec_dot_q4_0_q8_0_avx2
#define VEC_DOT_Q4_1 vec_dot_q4_1_q8_1_avx2
#define GEMM_Q4_0 NULL
#define GEMM_Q4_1 NULL
#define GEMM_Q8_0 gemm_q8_0_q8_0
#define GEMM_Q5_0 gemm_q5_0_q8_0
#endif /* AVX-512 VNNI / AVX2 */
#else
#define GEMM_Q4_0 NULL
#define GEMM_Q4_1 NULL
#define GEMM_Q8_0 NULL
#define GEMM_Q5_0 NULL
#define VEC_DOT_Q4_0 slim_vec_dot_q4_0_q8_0_ref
#define VEC_DOT_Q4_1 slim_vec_dot_q4_1_q8_1_ref
#define VEC_DOT_Q8_0 slim_vec_dot_q8_0_q8_0_ref
#define VEC_DOT_Q5_0 slim_vec_dot_q5_0_q8_0_ref
#endif

/* ---- traits ------------------------------------------------------------- */

const slim_dtype_traits slim_traits_q4_0 = {
    .name = "Q4_0",
    .block_size = SLIM_QK4_0,
    .type_size = sizeof(block_q4_0),
    .quantized = true,
    .to_float = q4_0_to_float,
    .from_float = q4_0_from_float,
    .vec_dot_type = SLIM_DTYPE_Q8_0,
    .vec_dot = VEC_DOT_Q4_0,
    .gemm = GEMM_Q4_0,
};

const slim_dtype_traits slim_traits_q4_1 = {
    .name = "Q4_1",
    .block_size = SLIM_QK4_1,
    .type_size = sizeof(block_q4_1),
    .quantized = true,
    .to_float = q4_1_to_float,
    .from_float = q4_1_from_float,
    .vec_dot_type = SLIM_DTYPE_Q8_1,
    .vec_dot = VEC_DOT_Q4_1,
    .gemm = GEMM_Q4_1,
};

const slim_dtype_traits slim_traits_q5_0 = {
    .name = "Q5_0",
    .block_size = SLIM_QK5_0,
    .type_size = sizeof(block_q5_0),
    .quantized = true,
    .to_float = q5_0_to_float,
    .from_float = q5_0_from_float,
    .vec_dot_type = SLIM_DTYPE_Q8_0,
    .vec_dot = VEC_DOT_Q5_0,
    .gemm = GEMM_Q5_0,
};

const slim_dtype_traits slim_traits_q5_1 = {
    .name = "Q5_1",
    .block_size = SLIM_QK5_1,
    .type_size = sizeof(block_q5_1),
    .quantized = true,
    .to_float = q5_1_to_float,
    .from_float = q5_1_from_float,
    .vec_dot_type = SLIM_DTYPE_Q8_1,
    .vec_dot = vec_dot_q5_1_q8_1,
};

const slim_dtype_traits slim_traits_q8_0 = {
    .name = "Q8_0",
    .block_size = SLIM_QK8_0,
    .type_size = sizeof(block_q8_0),
    .quantized = true,
    .to_float = q8_0_to_float,
    .from_float = q8_0_from_float,
    .vec_dot_type = SLIM_DTYPE_Q8_0,
    .vec_dot = VEC_DOT_Q8_0,
    .gemm = GEMM_Q8_0,
};

const slim_dtype_traits slim_traits_q8_1 = {
    .name = "Q8_1",
    .block_size = SLIM_QK8_1,
    .type_size = sizeof(block_q8_1),
    .quantized = true,
    .to_float = q8_1_to_float,
    .from_float = q8_1_from_float,
    .vec_dot_type = SLIM_DTYPE_Q8_1,
    .vec_dot = vec_dot_q8_1_q8_1,
};
