/* The K-quants (256-element super-blocks): Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, and
 * Q8_K, the activation format of their dot products.
 *
 * to_float matches GGML's dequantize_row_* (and gguf-py) bit for bit: the
 * sub-block scale is formed first (d * sc, exact in float) and then applied.
 * Quantizing to Q2_K..Q6_K is not implemented (from_float NULL); Q8_K has
 * GGML's quantize_row_q8_K_ref.
 *
 * Dot products against Q8_K: integer sums per sub-block, weighted by the
 * integer sub-block scales, in int32 (no overflow: at most 256 * 63 * 128 * 128
 * in magnitude), then one float scale per super-block.  The min terms of
 * Q2_K/Q4_K/Q5_K use the Q8_K block sums, and so do the offsets of Q3_K (-4)
 * and Q6_K (-32): the loops only multiply unsigned stored quants, because GCC 12
 * with AVX512-VNNI miscompiles sum += ((u8 & 63) - 32) * s8 (see q_legacy.c).
 * Q4_K and Q6_K also have AVX2 paths. */
#include <math.h>
#include <string.h>

#if defined(__AVX2__)
#include "core/simd_x86.h"

#include <immintrin.h>
#endif

#include "core/fp16.h"
#include "quant/blocks.h"
#include "quant/dtype.h"
#include "quant/q4_k_x16.h"
#include "quant/q6_k_x16.h"

static inline float h2f(uint16_t h) { return slim_fp16_to_f32(h); }

/* Q4_K/Q5_K: 6-bit scale and min of sub-block j (0..7) from the 12 packed bytes. */
static inline void scale_min_k4(int j, const uint8_t *s, int *sc, int *m) {
    if (j < 4) {
        *sc = s[j] & 63;
        *m = s[j + 4] & 63;
    } else {
        *sc = (s[j + 4] & 0x0F) | (s[j - 4] >> 6) << 4;
        *m = (s[j + 4] >> 4) | (s[j] >> 6) << 4;
    }
}

/* ---- Q2_K --------------------------------------------------------------- */

static void q2_k_to_float(const void *src, float *restrict y, int64_t n) {
    const block_q2_K *b = src;
    for (int64_t i = 0; i < n / SLIM_QK_K; i++, y += SLIM_QK_K) {
        const float d = h2f(b[i].d), dmin = h2f(b[i].dmin);
        for (int e = 0; e < SLIM_QK_K; e++) {
            const int h = e / 128, s = (e / 32) % 4, l = e % 32;
            const int q = (b[i].qs[32 * h + l] >> (2 * s)) & 3;
            const uint8_t sc = b[i].scales[e / 16];
            const float dl = d * (float)(sc & 0x0F), ml = dmin * (float)(sc >> 4);
            y[e] = dl * (float)q - ml;
        }
    }
}

static float vec_dot_q2_k_q8_k(int64_t n, const void *vw, const void *vx) {
    const block_q2_K *restrict w = vw;
    const block_q8_K *restrict x = vx;
    float sum = 0.0f;
    for (int64_t i = 0; i < n / SLIM_QK_K; i++) {
        int32_t isum = 0, msum = 0;
        for (int j = 0; j < SLIM_QK_K / 16; j++)
            msum += (w[i].scales[j] >> 4) * x[i].bsums[j];
        /* 16 bytes of qs hold 2-bit quants of 4 sub-blocks (shifts 0, 2, 4, 6) */
        for (int g = 0; g < 4; g++) { /* qs[16g .. 16g+15]: h = g/2, half = g%2 */
            const uint8_t *qs = w[i].qs + 16 * g;
            const int8_t *xq = x[i].qs + 128 * (g / 2) + 16 * (g % 2);
            int32_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
            for (int l = 0; l < 16; l++) {
                s0 += (qs[l] & 3) * xq[l];
                s1 += ((qs[l] >> 2) & 3) * xq[l + 32];
                s2 += ((qs[l] >> 4) & 3) * xq[l + 64];
                s3 += (qs[l] >> 6) * xq[l + 96];
            }
            const uint8_t *sc = w[i].scales + 8 * (g / 2) + g % 2; /* sub-block (128h + 32s)/16 */
            isum += (sc[0] & 0x0F) * s0 + (sc[2] & 0x0F) * s1 + (sc[4] & 0x0F) * s2 +
                    (sc[6] & 0x0F) * s3;
        }
        /* the repacked kernel's two fmas (q23_k_x16.h): the same bits either way */
        sum = fmaf(h2f(w[i].d) * x[i].d, (float)isum, sum);
        sum = fmaf(-(h2f(w[i].dmin) * x[i].d), (float)msum, sum);
    }
    return sum;
}

/* ---- Q3_K --------------------------------------------------------------- */

static void q3_k_to_float(const void *src, float *restrict y, int64_t n) {
    const block_q3_K *b = src;
    for (int64_t i = 0; i < n / SLIM_QK_K; i++, y += SLIM_QK_K) {
        const float d = h2f(b[i].d);
        int8_t sc[16];
        slim_q3_k_scales(b[i].scales, sc);
        for (int e = 0; e < SLIM_QK_K; e++) {
            const int h = e / 128, s = (e / 32) % 4, l = e % 32;
            const int lo = (b[i].qs[32 * h + l] >> (2 * s)) & 3;
            const int q = lo - ((b[i].hmask[l] >> (e / 32)) & 1 ? 0 : 4);
            y[e] = (d * (float)sc[e / 16]) * (float)q;
        }
    }
}

static float vec_dot_q3_k_q8_k(int64_t n, const void *vw, const void *vx) {
    const block_q3_K *restrict w = vw;
    const block_q8_K *restrict x = vx;
    float sum = 0.0f;
    for (int64_t i = 0; i < n / SLIM_QK_K; i++) {
        int8_t sc[16];
        slim_q3_k_scales(w[i].scales, sc);
        int32_t isum = 0, osum = 0; /* q + 4 in 0..7, the -4 through the block sums */
        for (int j = 0; j < 16; j++)
            osum += sc[j] * x[i].bsums[j];
        for (int g = 0; g < 4; g++) { /* as Q2_K; high bits from hmask[16*(g%2) + l] */
            const int h = g / 2;
            const uint8_t *qs = w[i].qs + 16 * g, *hm = w[i].hmask + 16 * (g % 2);
            const int8_t *xq = x[i].qs + 128 * h + 16 * (g % 2);
            int32_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
            for (int l = 0; l < 16; l++) {
                const int hb = hm[l] >> (4 * h); /* bits s = 0..3 of this half */
                s0 += ((qs[l] & 3) | (hb & 1) << 2) * xq[l];
                s1 += (((qs[l] >> 2) & 3) | (hb & 2) << 1) * xq[l + 32];
                s2 += (((qs[l] >> 4) & 3) | (hb & 4)) * xq[l + 64];
                s3 += ((qs[l] >> 6) | (hb & 8) >> 1) * xq[l + 96];
            }
            const int8_t *scg = sc + 8 * h + g % 2;
            isum += scg[0] * s0 + scg[2] * s1 + scg[4] * s2 + scg[6] * s3;
        }
        isum -= 4 * osum;
        sum = fmaf(h2f(w[i].d) * x[i].d, (float)isum, sum); /* as q23_k_x16.h */
    }
    return sum;
}

/* ---- Q4_K --------------------------------------------------------------- */

static void q4_k_to_float(const void *src, float *restrict y, int64_t n) {
    const block_q4_K *b = src;
    for (int64_t i = 0; i < n / SLIM_QK_K; i++, y += SLIM_QK_K) {
        const float d = h2f(b[i].d), dmin = h2f(b[i].dmin);
        for (int j = 0; j < 8; j++) { /* sub-blocks of 32 */
            int sc, m;
            scale_min_k4(j, b[i].scales, &sc, &m);
            const float d1 = d * (float)sc, m1 = dmin * (float)m;
            const uint8_t *qs = b[i].qs + 32 * (j / 2);
            const int shift = 4 * (j % 2);
            for (int l = 0; l < 32; l++)
                y[32 * j + l] = d1 * (float)((qs[l] >> shift) & 0x0F) - m1;
        }
    }
}

float slim_vec_dot_q4_k_q8_k_ref(int64_t n, const void *vw, const void *vx) {
    const block_q4_K *restrict w = vw;
    const block_q8_K *restrict x = vx;
    float sum = 0.0f;
    for (int64_t i = 0; i < n / SLIM_QK_K; i++) {
        int32_t isum = 0, msum = 0;
        for (int c = 0; c < 4; c++) { /* 32 bytes: sub-blocks 2c (low) and 2c+1 (high nibbles) */
            const uint8_t *qs = w[i].qs + 32 * c;
            const int8_t *xq = x[i].qs + 64 * c;
            int32_t slo = 0, shi = 0;
            for (int l = 0; l < 32; l++) {
                slo += (qs[l] & 0x0F) * xq[l];
                shi += (qs[l] >> 4) * xq[l + 32];
            }
            int sc0, m0, sc1, m1;
            scale_min_k4(2 * c, w[i].scales, &sc0, &m0);
            scale_min_k4(2 * c + 1, w[i].scales, &sc1, &m1);
            isum += sc0 * slo + sc1 * shi;
            const int16_t *bs = x[i].bsums + 4 * c;
            msum += m0 * (bs[0] + bs[1]) + m1 * (bs[2] + bs[3]);
        }
        sum += x[i].d * h2f(w[i].d) * (float)isum - x[i].d * h2f(w[i].dmin) * (float)msum;
    }
    return sum;
}

/* ---- Q5_K --------------------------------------------------------------- */

static void q5_k_to_float(const void *src, float *restrict y, int64_t n) {
    const block_q5_K *b = src;
    for (int64_t i = 0; i < n / SLIM_QK_K; i++, y += SLIM_QK_K) {
        const float d = h2f(b[i].d), dmin = h2f(b[i].dmin);
        for (int j = 0; j < 8; j++) {
            int sc, m;
            scale_min_k4(j, b[i].scales, &sc, &m);
            const float d1 = d * (float)sc, m1 = dmin * (float)m;
            const uint8_t *qs = b[i].qs + 32 * (j / 2);
            const int shift = 4 * (j % 2);
            for (int l = 0; l < 32; l++) {
                const int q = ((qs[l] >> shift) & 0x0F) | ((b[i].qh[l] >> j) & 1) << 4;
                y[32 * j + l] = d1 * (float)q - m1;
            }
        }
    }
}

/* fused: the repacked kernel's float steps (q4_k_x16.h), two fmas per
 * super-block, so a matrix gives the same bits packed or not; else the
 * portable reference's (x.d d) isum - (x.d dmin) msum, the CUDA kernels'. */
static inline float q5_k_dot(const bool fused, int64_t n, const void *vw, const void *vx) {
    const block_q5_K *restrict w = vw;
    const block_q8_K *restrict x = vx;
    float sum = 0.0f;
    for (int64_t i = 0; i < n / SLIM_QK_K; i++) {
        int32_t isum = 0, msum = 0;
        for (int c = 0; c < 4; c++) { /* as Q4_K, fifth bits 2c and 2c+1 of qh[l] */
            const uint8_t *qs = w[i].qs + 32 * c, *qh = w[i].qh;
            const int8_t *xq = x[i].qs + 64 * c;
            int32_t slo = 0, shi = 0;
            for (int l = 0; l < 32; l++) {
                const int hb = qh[l] >> (2 * c);
                slo += ((qs[l] & 0x0F) | (hb & 1) << 4) * xq[l];
                shi += ((qs[l] >> 4) | (hb & 2) << 3) * xq[l + 32];
            }
            int sc0, m0, sc1, m1;
            scale_min_k4(2 * c, w[i].scales, &sc0, &m0);
            scale_min_k4(2 * c + 1, w[i].scales, &sc1, &m1);
            isum += sc0 * slo + sc1 * shi;
            const int16_t *bs = x[i].bsums + 4 * c;
            msum += m0 * (bs[0] + bs[1]) + m1 * (bs[2] + bs[3]);
        }
        if (fused) {
            sum = fmaf(h2f(w[i].d) * x[i].d, (float)isum, sum);
            sum = fmaf(-(h2f(w[i].dmin) * x[i].d), (float)msum, sum);
        } else {
            sum += x[i].d * h2f(w[i].d) * (float)isum - x[i].d * h2f(w[i].dmin) * (float)msum;
        }
    }
    return sum;
}

float slim_vec_dot_q5_k_q8_k_ref(int64_t n, const void *vw, const void *vx) {
    return q5_k_dot(false, n, vw, vx);
}

#if defined(__AVX2__)
static float vec_dot_q5_k_fused(int64_t n, const void *vw, const void *vx) {
    return q5_k_dot(true, n, vw, vx);
}
#define VEC_DOT_Q5_K vec_dot_q5_k_fused
#else
#define VEC_DOT_Q5_K slim_vec_dot_q5_k_q8_k_ref
#endif

/* ---- Q6_K --------------------------------------------------------------- */

static void q6_k_to_float(const void *src, float *restrict y, int64_t n) {
    const block_q6_K *b = src;
    for (int64_t i = 0; i < n / SLIM_QK_K; i++, y += SLIM_QK_K) {
        const float d = h2f(b[i].d);
        for (int e = 0; e < SLIM_QK_K; e++) {
            const int h = e / 128, s = (e / 32) % 4, l = e % 32;
            const int lo = (b[i].ql[64 * h + 32 * (s & 1) + l] >> (4 * (s >> 1))) & 0x0F;
            const int hi = (b[i].qh[32 * h + l] >> (2 * s)) & 3;
            y[e] = (d * (float)b[i].scales[e / 16]) * (float)((lo | hi << 4) - 32);
        }
    }
}

float slim_vec_dot_q6_k_q8_k_ref(int64_t n, const void *vw, const void *vx) {
    const block_q6_K *restrict w = vw;
    const block_q8_K *restrict x = vx;
    float sum = 0.0f;
    for (int64_t i = 0; i < n / SLIM_QK_K; i++) {
        int32_t isum = 0, osum = 0; /* q in 0..63, the -32 through the block sums */
        for (int j = 0; j < 16; j++)
            osum += w[i].scales[j] * x[i].bsums[j];
        for (int g = 0; g < 4; g++) { /* h = g/2; l in [16*(g%2), +16): 4 sub-blocks of 16 */
            const int h = g / 2, l0 = 16 * (g % 2);
            const uint8_t *ql = w[i].ql + 64 * h + l0, *qh = w[i].qh + 32 * h + l0;
            const int8_t *xq = x[i].qs + 128 * h + l0;
            int32_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
            for (int l = 0; l < 16; l++) {
                s0 += ((ql[l] & 0x0F) | (qh[l] & 3) << 4) * xq[l];
                s1 += ((ql[l + 32] & 0x0F) | ((qh[l] >> 2) & 3) << 4) * xq[l + 32];
                s2 += ((ql[l] >> 4) | ((qh[l] >> 4) & 3) << 4) * xq[l + 64];
                s3 += ((ql[l + 32] >> 4) | (qh[l] >> 6) << 4) * xq[l + 96];
            }
            const int8_t *sc = w[i].scales + 8 * h + g % 2;
            isum += sc[0] * s0 + sc[2] * s1 + sc[4] * s2 + sc[6] * s3;
        }
        isum -= 32 * osum;
        sum += x[i].d * h2f(w[i].d) * (float)isum;
    }
    return sum;
}

/* ---- Q8_K --------------------------------------------------------------- */

static void q8_k_to_float(const void *src, float *restrict y, int64_t n) {
    const block_q8_K *b = src;
    for (int64_t i = 0; i < n / SLIM_QK_K; i++, y += SLIM_QK_K)
        for (int j = 0; j < SLIM_QK_K; j++)
            y[j] = b[i].d * (float)b[i].qs[j];
}

/* Round to nearest, ties to even, for |v| < 2^22 (GGML's nearest_int). */
static inline int nearest_int(float v) {
    const float t = v + 12582912.0f; /* 1.5 * 2^23 */
    int32_t bits;
    memcpy(&bits, &t, sizeof bits);
    return (bits & 0x007fffff) - 0x00400000;
}

/* GGML's quantize_row_q8_K_ref: scale -127/max where max is the first element
 * of largest magnitude, so q stays in [-127, 127]; an all-zero block gets
 * d = 0 and zero quants and sums. */
#if defined(__AVX512F__)
/* The same values as the scalar loop below, 16 lanes at a time: the largest
 * |x| (order-independent), then its first index; round-to-nearest-even is
 * nearest_int's rounding for these magnitudes (<= 127). */
static void q8_k_from_float(const float *restrict x, void *dst, int64_t n) {
    block_q8_K *b = dst;
    for (int64_t i = 0; i < n / SLIM_QK_K; i++, x += SLIM_QK_K) {
        __m512 m = _mm512_setzero_ps();
        for (int k = 0; k < SLIM_QK_K / 16; k++)
            m = _mm512_max_ps(_mm512_abs_ps(_mm512_loadu_ps(x + 16 * k)), m);
        const float amax = _mm512_reduce_max_ps(m);
        if (amax == 0.0f) {
            memset(&b[i], 0, sizeof b[i]);
            continue;
        }
        float max = 0.0f;
        for (int k = 0; k < SLIM_QK_K / 16; k++) {
            const __mmask16 hit = _mm512_cmp_ps_mask(_mm512_abs_ps(_mm512_loadu_ps(x + 16 * k)),
                                                     _mm512_set1_ps(amax), _CMP_EQ_OQ);
            if (hit) {
                max = x[16 * k + __builtin_ctz(hit)];
                break;
            }
        }
        const float iscale = -127.0f / max;
        const __m512 vs = _mm512_set1_ps(iscale);
        for (int k = 0; k < SLIM_QK_K / 16; k++) {
            const __m512 v = _mm512_roundscale_ps(_mm512_mul_ps(vs, _mm512_loadu_ps(x + 16 * k)),
                                                  _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
            const __m512i q = _mm512_min_epi32(_mm512_cvtps_epi32(v), _mm512_set1_epi32(127));
            _mm_storeu_si128((__m128i *)(b[i].qs + 16 * k), _mm512_cvtepi32_epi8(q));
            b[i].bsums[k] = (int16_t)_mm512_reduce_add_epi32(q);
        }
        b[i].d = 1 / iscale;
    }
}
#else
static void q8_k_from_float(const float *restrict x, void *dst, int64_t n) {
    block_q8_K *b = dst;
    for (int64_t i = 0; i < n / SLIM_QK_K; i++, x += SLIM_QK_K) {
        float amax = 0.0f, max = 0.0f;
        for (int j = 0; j < SLIM_QK_K; j++) {
            const float ax = x[j] < 0 ? -x[j] : x[j];
            if (ax > amax) {
                amax = ax;
                max = x[j];
            }
        }
        if (amax == 0.0f) {
            memset(&b[i], 0, sizeof b[i]);
            continue;
        }
        const float iscale = -127.0f / max;
        for (int j = 0; j < SLIM_QK_K; j++) {
            const int v = nearest_int(iscale * x[j]);
            b[i].qs[j] = (int8_t)(v < 127 ? v : 127);
        }
        for (int j = 0; j < SLIM_QK_K / 16; j++) {
            int sum = 0;
            for (int l = 0; l < 16; l++)
                sum += b[i].qs[16 * j + l];
            b[i].bsums[j] = (int16_t)sum;
        }
        b[i].d = 1 / iscale;
    }
}
#endif

/* ---- AVX2 --------------------------------------------------------------- */

#if defined(__AVX2__)
/* AVX-512 VNNI builds: 64 quants per zmm.  Per 64-element chunk and (row,
 * token): vpmaddubsw (unsigned quant x int8 activation, pairs exact in int16)
 * then vpdpwssd with the sub-block scales into 16 int32 lanes.  Q4_K's min
 * term is a tiny 4 x 4 integer product (rows' 8 mins x tokens' 8 block-sum
 * pairs, vpmaddwd) kept in one zmm, lane 4r + c; Q6_K's -32 goes into the
 * int16 pairs (q x - 32 x, exact).  Per super-block the lanes are summed
 * exactly and the row's one float goes acc = fma(d_w * d_x, isum, acc)
 * (Q4_K then acc = fma(-(dmin_w * d_x), msum, acc)): the numerics of the
 * repacked kernels (q4_k_x16.h, q6_k_x16.h), so a matrix gives the same bits
 * packed or not (tests/unit/test_repack_model.c).  vec_dot is the 1 x 1
 * tile, so gemm == vec_dot bitwise by construction. */
#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__) &&                      \
    defined(__AVX512VNNI__)
#define Q_K_Z 1
#else
#define Q_K_Z 0
#endif

#if Q_K_Z
enum { GEMM_R = 4, GEMM_C = 4 };
#define GEMM_INLINE static inline __attribute__((always_inline))

/* One step of the repacked kernels' per-row sum (q4_k_x16.h, q6_k_x16.h): the
 * running float in lane 0 of acc, acc = fma(d, (float)isum, acc) with isum
 * the exact sum of the int32 lanes.  So the plain path gives their bits. */
GEMM_INLINE __m512 zexact(__m512 acc, float d, int32_t isum) {
    return _mm512_zextps128_ps512(_mm_set_ss(fmaf(d, (float)isum, _mm512_cvtss_f32(acc))));
}

/* Q4_K's 8 scales and 8 mins (6 bits each) as 16 bytes, scales first. */
GEMM_INLINE __m128i q4_k_scales_mins(const uint8_t *s) {
    uint32_t u[3];
    memcpy(u, s, 12);
    const uint32_t m1 = 0x3f3f3f3f, m2 = 0x0f0f0f0f, m3 = 0x03030303;
    const uint32_t u3 = ((u[2] >> 4) & m2) | (((u[1] >> 6) & m3) << 4);
    const uint32_t mins_lo = u[1] & m1;
    const uint32_t sc_hi = (u[2] & m2) | (((u[0] >> 6) & m3) << 4);
    return _mm_set_epi32((int)u3, (int)mins_lo, (int)sc_hi, (int)(u[0] & m1));
}

GEMM_INLINE void q4_k_tile(int64_t nb, const char *w, size_t ws, const char *x, size_t xs, int nr,
                           int nc, float *y, int64_t ldy) {
    const __m512i m4 = _mm512_set1_epi8(0x0F);
    /* lane l of the per-chunk scale vector: sub-block 2k + l / 16 (int16 pairs) */
    const __m512i sel = _mm512_srli_epi16(_mm512_set_epi16(31, 30, 29, 28, 27, 26, 25, 24, 23, 22,
                                                           21, 20, 19, 18, 17, 16, 15, 14, 13, 12,
                                                           11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0),
                                          4);
    __m512 acc[GEMM_R][GEMM_C]; /* lane 0: the row's running sum (zexact) */
#pragma GCC unroll 4
    for (int r = 0; r < nr; r++)
#pragma GCC unroll 4
        for (int c = 0; c < nc; c++)
            acc[r][c] = _mm512_setzero_ps();
    for (int64_t i = 0; i < nb; i++) {
        const block_q4_K *b[GEMM_R];
        const block_q8_K *bx[GEMM_C];
        __m512i sc[GEMM_R];
        __m512i mrow = _mm512_setzero_si512(); /* 128-bit lane r: row r's mins, int16 */
#pragma GCC unroll 4
        for (int r = 0; r < nr; r++) {
            b[r] = (const block_q4_K *)(w + (size_t)r * ws) + i;
            const __m256i sm = _mm256_cvtepu8_epi16(q4_k_scales_mins(b[r]->scales));
            sc[r] = _mm512_castsi256_si512(sm);
            mrow = _mm512_mask_broadcast_i32x4(mrow, (__mmask16)(0xF << (4 * r)),
                                               _mm256_extracti128_si256(sm, 1));
        }
        __m512i isum[GEMM_R][GEMM_C];
        __m512i msp[GEMM_C];
#pragma GCC unroll 4
        for (int c = 0; c < GEMM_C; c++) {
            if (c < nc) {
                bx[c] = (const block_q8_K *)(x + (size_t)c * xs) + i;
                const __m128i bs =
                    _mm_hadd_epi16(_mm_loadu_si128((const __m128i *)bx[c]->bsums),
                                   _mm_loadu_si128((const __m128i *)bx[c]->bsums + 1));
                msp[c] = _mm512_madd_epi16(mrow, _mm512_broadcast_i32x4(bs));
            } else {
                msp[c] = _mm512_setzero_si512();
            }
#pragma GCC unroll 4
            for (int r = 0; r < nr; r++)
                isum[r][c] = _mm512_setzero_si512();
        }
        /* msum(r, c) into lane 4r + c: sum of the 4 lanes of msp[c] in 128-bit lane r */
        const __m512i s01 = _mm512_add_epi32(_mm512_unpacklo_epi32(msp[0], msp[1]),
                                             _mm512_unpackhi_epi32(msp[0], msp[1]));
        const __m512i s23 = _mm512_add_epi32(_mm512_unpacklo_epi32(msp[2], msp[3]),
                                             _mm512_unpackhi_epi32(msp[2], msp[3]));
        int32_t msum[16];
        _mm512_storeu_si512(msum, _mm512_add_epi32(_mm512_unpacklo_epi64(s01, s23),
                                                   _mm512_unpackhi_epi64(s01, s23)));
#pragma GCC unroll 4
        for (int k = 0; k < 4; k++) {
            __m512i q[GEMM_R], s[GEMM_R];
#pragma GCC unroll 4
            for (int r = 0; r < nr; r++) {
                const __m256i v = _mm256_loadu_si256((const __m256i *)(b[r]->qs + 32 * k));
                q[r] = _mm512_and_si512(
                    _mm512_inserti64x4(_mm512_castsi256_si512(v), _mm256_srli_epi16(v, 4), 1), m4);
                s[r] = _mm512_permutexvar_epi16(
                    _mm512_add_epi16(sel, _mm512_set1_epi16((short)(2 * k))), sc[r]);
            }
#pragma GCC unroll 4
            for (int c = 0; c < nc; c++) {
                const __m512i xq = _mm512_loadu_si512((const void *)(bx[c]->qs + 64 * k));
#pragma GCC unroll 4
                for (int r = 0; r < nr; r++)
                    isum[r][c] =
                        _mm512_dpwssd_epi32(isum[r][c], _mm512_maddubs_epi16(q[r], xq), s[r]);
            }
        }
#pragma GCC unroll 4
        for (int c = 0; c < nc; c++)
#pragma GCC unroll 4
            for (int r = 0; r < nr; r++) {
                acc[r][c] =
                    zexact(acc[r][c], h2f(b[r]->d) * bx[c]->d, _mm512_reduce_add_epi32(isum[r][c]));
                acc[r][c] = zexact(acc[r][c], -(h2f(b[r]->dmin) * bx[c]->d), msum[4 * r + c]);
            }
    }
#pragma GCC unroll 4
    for (int r = 0; r < nr; r++)
#pragma GCC unroll 4
        for (int c = 0; c < nc; c++)
            y[c * ldy + r] = _mm512_cvtss_f32(acc[r][c]);
}

GEMM_INLINE void q6_k_tile(int64_t nb, const char *w, size_t ws, const char *x, size_t xs, int nr,
                           int nc, float *y, int64_t ldy) {
    const __m512i m4 = _mm512_set1_epi8(0x0F), m2 = _mm512_set1_epi8(3);
    /* lane l of the per-chunk scale vector: sub-block 4k + l / 8 (int16 pairs) */
    const __m512i sel = _mm512_srli_epi16(_mm512_set_epi16(31, 30, 29, 28, 27, 26, 25, 24, 23, 22,
                                                           21, 20, 19, 18, 17, 16, 15, 14, 13, 12,
                                                           11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0),
                                          3);
    __m512 acc[GEMM_R][GEMM_C];
#pragma GCC unroll 4
    for (int r = 0; r < nr; r++)
#pragma GCC unroll 4
        for (int c = 0; c < nc; c++)
            acc[r][c] = _mm512_setzero_ps();
    for (int64_t i = 0; i < nb; i++) {
        const block_q6_K *b[GEMM_R];
        const block_q8_K *bx[GEMM_C];
        __m512i sc[GEMM_R];
#pragma GCC unroll 4
        for (int r = 0; r < nr; r++) {
            b[r] = (const block_q6_K *)(w + (size_t)r * ws) + i;
            sc[r] = _mm512_castsi256_si512(
                _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)b[r]->scales)));
        }
#pragma GCC unroll 4
        for (int c = 0; c < nc; c++)
            bx[c] = (const block_q8_K *)(x + (size_t)c * xs) + i;
        __m512i isum[GEMM_R][GEMM_C];
#pragma GCC unroll 4
        for (int r = 0; r < nr; r++)
#pragma GCC unroll 4
            for (int c = 0; c < nc; c++)
                isum[r][c] = _mm512_setzero_si512();
                /* chunk k: elements 64k..64k+63 = 128h + 32s + l for h = k/2, s = 2(k%2), +1 */
#pragma GCC unroll 4
        for (int k = 0; k < 4; k++) {
            const int h = k / 2, odd = k % 2;
            __m512i q[GEMM_R], s[GEMM_R];
#pragma GCC unroll 4
            for (int r = 0; r < nr; r++) {
                const __m512i l = _mm512_loadu_si512((const void *)(b[r]->ql + 64 * h));
                const __m256i qh = _mm256_loadu_si256((const __m256i *)(b[r]->qh + 32 * h));
                const __m512i hz =
                    _mm512_inserti64x4(_mm512_castsi256_si512(qh), _mm256_srli_epi16(qh, 2), 1);
                const __m512i lo =
                    odd ? _mm512_and_si512(_mm512_srli_epi16(l, 4), m4) : _mm512_and_si512(l, m4);
                const __m512i hi =
                    odd ? _mm512_and_si512(_mm512_srli_epi16(hz, 4), m2) : _mm512_and_si512(hz, m2);
                q[r] = _mm512_or_si512(lo, _mm512_slli_epi16(hi, 4));
                s[r] = _mm512_permutexvar_epi16(
                    _mm512_add_epi16(sel, _mm512_set1_epi16((short)(4 * k))), sc[r]);
            }
#pragma GCC unroll 4
            for (int c = 0; c < nc; c++) {
                const __m512i xq = _mm512_loadu_si512((const void *)(bx[c]->qs + 64 * k));
                const __m512i off = _mm512_maddubs_epi16(_mm512_set1_epi8(32), xq);
#pragma GCC unroll 4
                for (int r = 0; r < nr; r++)
                    isum[r][c] = _mm512_dpwssd_epi32(
                        isum[r][c], _mm512_sub_epi16(_mm512_maddubs_epi16(q[r], xq), off), s[r]);
            }
        }
#pragma GCC unroll 4
        for (int c = 0; c < nc; c++)
#pragma GCC unroll 4
            for (int r = 0; r < nr; r++)
                acc[r][c] =
                    zexact(acc[r][c], h2f(b[r]->d) * bx[c]->d, _mm512_reduce_add_epi32(isum[r][c]));
    }
#pragma GCC unroll 4
    for (int r = 0; r < nr; r++)
#pragma GCC unroll 4
        for (int c = 0; c < nc; c++)
            y[c * ldy + r] = _mm512_cvtss_f32(acc[r][c]);
}

static float vec_dot_q4_k_z(int64_t n, const void *w, const void *x) {
    float y;
    q4_k_tile(n / SLIM_QK_K, w, 0, x, 0, 1, 1, &y, 0);
    return y;
}

static float vec_dot_q6_k_z(int64_t n, const void *w, const void *x) {
    float y;
    q6_k_tile(n / SLIM_QK_K, w, 0, x, 0, 1, 1, &y, 0);
    return y;
}

#include "quant/gemm_tile.h"

DEFINE_GEMM(gemm_q4_k_direct, q4_k_tile, SLIM_QK_K)
DEFINE_GEMM(gemm_q6_k_direct, q6_k_tile, SLIM_QK_K)

/* Prefill on plain rows with a work area: each 16 rows are repacked into it
 * (q4_k_x16.h / q6_k_x16.h's layout, after Q4_K's activation sums) and run
 * through the repacked kernel, whose numerics the tiles above share (so still
 * bitwise vec_dot), at its speed; the rows left over (fewer than 16), or all
 * of them without a large enough work area, go through the tiles. */
static void gemm_k_x16(const int q4, int64_t n, const void *w, size_t ws, int64_t r0, int64_t r1,
                       const void *x, size_t xs, int64_t n_tokens, float *y, int64_t ldy,
                       void *work, size_t work_size) {
    enum { X16 = 16 };
    const size_t sums =
        q4 ? ((size_t)(n / 32) * (size_t)n_tokens * sizeof(int16_t) + 63) & ~(size_t)63 : 0;
    const size_t packed =
        q4 ? slim_q4_kx16_size(n, X16) : X16 * slim_dtype_row_size(SLIM_DTYPE_Q6_K, n);
    if (work && r1 - r0 >= X16 && sums + packed <= work_size) {
        int16_t *xsum = work;
        char *pk = (char *)work + sums;
        if (q4) slim_q4_kx16_xsum(n, x, xs, n_tokens, xsum);
        for (; r0 + X16 <= r1; r0 += X16) {
            const char *wr = (const char *)w + (size_t)r0 * ws;
            if (q4) {
                slim_q4_kx16_pack(wr, ws, n, X16, pk);
                slim_q4_kx16_gemm(n, pk, 0, 1, x, xs, xsum, n_tokens, y + r0, ldy);
            } else {
                slim_q6_kx16_pack(wr, ws, n, X16, pk);
                slim_q6_kx16_gemm(n, pk, 0, 1, x, xs, n_tokens, y + r0, ldy);
            }
        }
    }
    if (r0 >= r1) return;
    if (q4)
        gemm_q4_k_direct(n, w, ws, r0, r1, x, xs, n_tokens, y, ldy, NULL, 0);
    else
        gemm_q6_k_direct(n, w, ws, r0, r1, x, xs, n_tokens, y, ldy, NULL, 0);
}

static void gemm_q4_k_q8_k(int64_t n, const void *w, size_t ws, int64_t r0, int64_t r1,
                           const void *x, size_t xs, int64_t n_tokens, float *y, int64_t ldy,
                           void *work, size_t work_size) {
    gemm_k_x16(1, n, w, ws, r0, r1, x, xs, n_tokens, y, ldy, work, work_size);
}

static void gemm_q6_k_q8_k(int64_t n, const void *w, size_t ws, int64_t r0, int64_t r1,
                           const void *x, size_t xs, int64_t n_tokens, float *y, int64_t ldy,
                           void *work, size_t work_size) {
    gemm_k_x16(0, n, w, ws, r0, r1, x, xs, n_tokens, y, ldy, work, work_size);
}

#define VEC_DOT_Q4_K vec_dot_q4_k_z
#define VEC_DOT_Q6_K vec_dot_q6_k_z
#define GEMM_Q4_K gemm_q4_k_q8_k
#define GEMM_Q6_K gemm_q6_k_q8_k
#else /* AVX2 */
/* 16-bit scale a for bytes 0..15 (one sub-block of 16), b for bytes 16..31. */
static inline __m256i scales_2x16(int a, int b) {
    return _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_set1_epi16((short)a)),
                                   _mm_set1_epi16((short)b), 1);
}

static float vec_dot_q4_k_q8_k_avx2(int64_t n, const void *vw, const void *vx) {
    const block_q4_K *restrict w = vw;
    const block_q8_K *restrict x = vx;
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    __m256 acc = _mm256_setzero_ps();
    float mins = 0.0f;
    for (int64_t i = 0; i < n / SLIM_QK_K; i++) {
        int sc[8], m[8];
        int32_t msum = 0;
        for (int j = 0; j < 8; j++) {
            scale_min_k4(j, w[i].scales, &sc[j], &m[j]);
            msum += m[j] * (x[i].bsums[2 * j] + x[i].bsums[2 * j + 1]);
        }
        __m256i isum = _mm256_setzero_si256();
        for (int c = 0; c < 4; c++) {
            const __m256i q = _mm256_loadu_si256((const __m256i *)(w[i].qs + 32 * c));
            const __m256i lo = _mm256_and_si256(q, m4);
            const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(q, 4), m4);
            const __m256i xl = _mm256_loadu_si256((const __m256i *)(x[i].qs + 64 * c));
            const __m256i xh = _mm256_loadu_si256((const __m256i *)(x[i].qs + 64 * c + 32));
            /* nibble * int8 pairs fit int16 (2 * 15 * 128), then * scale into int32 */
            const __m256i pl = _mm256_madd_epi16(_mm256_maddubs_epi16(lo, xl),
                                                 _mm256_set1_epi16((short)sc[2 * c]));
            const __m256i ph = _mm256_madd_epi16(_mm256_maddubs_epi16(hi, xh),
                                                 _mm256_set1_epi16((short)sc[2 * c + 1]));
            isum = _mm256_add_epi32(isum, _mm256_add_epi32(pl, ph));
        }
        const float dx = x[i].d;
        acc = slim_madd_f32x8(_mm256_set1_ps(dx * h2f(w[i].d)), _mm256_cvtepi32_ps(isum), acc);
        mins += dx * h2f(w[i].dmin) * (float)msum;
    }
    return slim_hsum_f32x8(acc) - mins;
}

/* The unsigned 6-bit q (0..63) is multiplied in; the -32 offset comes back
 * through the block sums: sum sc*(q-32)*x = sum sc*q*x - 32 * sum sc*bsum. */
static float vec_dot_q6_k_q8_k_avx2(int64_t n, const void *vw, const void *vx) {
    const block_q6_K *restrict w = vw;
    const block_q8_K *restrict x = vx;
    const __m256i m4 = _mm256_set1_epi8(0x0F), m2 = _mm256_set1_epi8(3);
    __m256 acc = _mm256_setzero_ps();
    float offs = 0.0f;
    for (int64_t i = 0; i < n / SLIM_QK_K; i++) {
        const int8_t *sc = w[i].scales;
        int32_t osum = 0;
        for (int j = 0; j < 16; j++)
            osum += sc[j] * x[i].bsums[j];
        __m256i isum = _mm256_setzero_si256();
        for (int h = 0; h < 2; h++) {
            const __m256i l0 = _mm256_loadu_si256((const __m256i *)(w[i].ql + 64 * h));
            const __m256i l1 = _mm256_loadu_si256((const __m256i *)(w[i].ql + 64 * h + 32));
            const __m256i qh = _mm256_loadu_si256((const __m256i *)(w[i].qh + 32 * h));
            __m256i q[4];
            q[0] = _mm256_or_si256(_mm256_and_si256(l0, m4),
                                   _mm256_slli_epi16(_mm256_and_si256(qh, m2), 4));
            q[1] = _mm256_or_si256(
                _mm256_and_si256(l1, m4),
                _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 2), m2), 4));
            q[2] = _mm256_or_si256(
                _mm256_and_si256(_mm256_srli_epi16(l0, 4), m4),
                _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 4), m2), 4));
            q[3] = _mm256_or_si256(
                _mm256_and_si256(_mm256_srli_epi16(l1, 4), m4),
                _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 6), m2), 4));
            for (int s = 0; s < 4; s++) {
                const int e = 128 * h + 32 * s;
                const __m256i xs = _mm256_loadu_si256((const __m256i *)(x[i].qs + e));
                /* q * int8 pairs fit int16 (2 * 63 * 128); then * int8 scale into int32 */
                const __m256i p = _mm256_maddubs_epi16(q[s], xs);
                isum = _mm256_add_epi32(
                    isum, _mm256_madd_epi16(p, scales_2x16(sc[e / 16], sc[e / 16 + 1])));
            }
        }
        const float dd = x[i].d * h2f(w[i].d);
        acc = slim_madd_f32x8(_mm256_set1_ps(dd), _mm256_cvtepi32_ps(isum), acc);
        offs += dd * (float)(32 * osum);
    }
    return slim_hsum_f32x8(acc) - offs;
}

/* ---- multi-token kernels (gemm) ------------------------------------------
 *
 * As in q_legacy.c: a tile of up to GEMM_R weight rows x GEMM_C tokens walks
 * the super-blocks once, unpacking each weight block once for the tile's
 * tokens and loading each activation block once for its rows.  Every (row,
 * token) pair repeats its vec_dot's operations: the same int32 lane sums
 * (exact integers), the same float scale products in the same order, the same
 * multiply-add into its own accumulator and scalar min/offset sum, and the
 * same horizontal sum at the end, so its output is bitwise vec_dot's. */

enum { GEMM_R = 4, GEMM_C = 2 };
#define GEMM_INLINE static inline __attribute__((always_inline))

GEMM_INLINE void q4_k_tile(int64_t nb, const char *w, size_t ws, const char *x, size_t xs, int nr,
                           int nc, float *y, int64_t ldy) {
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    __m256 acc[GEMM_R][GEMM_C];
    float mins[GEMM_R][GEMM_C];
#pragma GCC unroll 4
    for (int r = 0; r < nr; r++)
#pragma GCC unroll 4
        for (int c = 0; c < nc; c++) {
            acc[r][c] = _mm256_setzero_ps();
            mins[r][c] = 0.0f;
        }
    for (int64_t i = 0; i < nb; i++) {
        const block_q4_K *b[GEMM_R];
        const block_q8_K *bx[GEMM_C];
        int sc[GEMM_R][8], m[GEMM_R][8];
#pragma GCC unroll 4
        for (int r = 0; r < nr; r++) {
            b[r] = (const block_q4_K *)(w + (size_t)r * ws) + i;
            for (int j = 0; j < 8; j++)
                scale_min_k4(j, b[r]->scales, &sc[r][j], &m[r][j]);
        }
#pragma GCC unroll 4
        for (int c = 0; c < nc; c++)
            bx[c] = (const block_q8_K *)(x + (size_t)c * xs) + i;
        __m256i isum[GEMM_R][GEMM_C];
#pragma GCC unroll 4
        for (int r = 0; r < nr; r++)
#pragma GCC unroll 4
            for (int c = 0; c < nc; c++)
                isum[r][c] = _mm256_setzero_si256();
#pragma GCC unroll 4
        for (int k = 0; k < 4; k++) {
            __m256i lo[GEMM_R], hi[GEMM_R];
#pragma GCC unroll 4
            for (int r = 0; r < nr; r++) {
                const __m256i q = _mm256_loadu_si256((const __m256i *)(b[r]->qs + 32 * k));
                lo[r] = _mm256_and_si256(q, m4);
                hi[r] = _mm256_and_si256(_mm256_srli_epi16(q, 4), m4);
            }
#pragma GCC unroll 4
            for (int c = 0; c < nc; c++) {
                const __m256i xl = _mm256_loadu_si256((const __m256i *)(bx[c]->qs + 64 * k));
                const __m256i xh = _mm256_loadu_si256((const __m256i *)(bx[c]->qs + 64 * k + 32));
#pragma GCC unroll 4
                for (int r = 0; r < nr; r++) {
                    const __m256i pl = _mm256_madd_epi16(_mm256_maddubs_epi16(lo[r], xl),
                                                         _mm256_set1_epi16((short)sc[r][2 * k]));
                    const __m256i ph =
                        _mm256_madd_epi16(_mm256_maddubs_epi16(hi[r], xh),
                                          _mm256_set1_epi16((short)sc[r][2 * k + 1]));
                    isum[r][c] = _mm256_add_epi32(isum[r][c], _mm256_add_epi32(pl, ph));
                }
            }
        }
#pragma GCC unroll 4
        for (int c = 0; c < nc; c++) {
            const float dx = bx[c]->d;
#pragma GCC unroll 4
            for (int r = 0; r < nr; r++) {
                int32_t msum = 0;
                for (int j = 0; j < 8; j++)
                    msum += m[r][j] * (bx[c]->bsums[2 * j] + bx[c]->bsums[2 * j + 1]);
                acc[r][c] = slim_madd_f32x8(_mm256_set1_ps(dx * h2f(b[r]->d)),
                                            _mm256_cvtepi32_ps(isum[r][c]), acc[r][c]);
                mins[r][c] += dx * h2f(b[r]->dmin) * (float)msum;
            }
        }
    }
#pragma GCC unroll 4
    for (int r = 0; r < nr; r++)
#pragma GCC unroll 4
        for (int c = 0; c < nc; c++)
            y[c * ldy + r] = slim_hsum_f32x8(acc[r][c]) - mins[r][c];
}

/* The 6-bit quants of elements 128h + 32s .. +31 of a Q6_K block. */
GEMM_INLINE __m256i q6_k_quants(const block_q6_K *b, int h, int s) {
    const __m256i m4 = _mm256_set1_epi8(0x0F), m2 = _mm256_set1_epi8(3);
    const __m256i l = _mm256_loadu_si256((const __m256i *)(b->ql + 64 * h + 32 * (s & 1)));
    const __m256i qh = _mm256_loadu_si256((const __m256i *)(b->qh + 32 * h));
    const __m256i lo =
        s < 2 ? _mm256_and_si256(l, m4) : _mm256_and_si256(_mm256_srli_epi16(l, 4), m4);
    __m256i hb;
    switch (s) {
    case 0: hb = _mm256_and_si256(qh, m2); break;
    case 1: hb = _mm256_and_si256(_mm256_srli_epi16(qh, 2), m2); break;
    case 2: hb = _mm256_and_si256(_mm256_srli_epi16(qh, 4), m2); break;
    default: hb = _mm256_and_si256(_mm256_srli_epi16(qh, 6), m2); break;
    }
    return _mm256_or_si256(lo, _mm256_slli_epi16(hb, 4));
}

GEMM_INLINE void q6_k_tile(int64_t nb, const char *w, size_t ws, const char *x, size_t xs, int nr,
                           int nc, float *y, int64_t ldy) {
    __m256 acc[GEMM_R][GEMM_C];
    float offs[GEMM_R][GEMM_C];
#pragma GCC unroll 4
    for (int r = 0; r < nr; r++)
#pragma GCC unroll 4
        for (int c = 0; c < nc; c++) {
            acc[r][c] = _mm256_setzero_ps();
            offs[r][c] = 0.0f;
        }
    for (int64_t i = 0; i < nb; i++) {
        const block_q6_K *b[GEMM_R];
        const block_q8_K *bx[GEMM_C];
#pragma GCC unroll 4
        for (int r = 0; r < nr; r++)
            b[r] = (const block_q6_K *)(w + (size_t)r * ws) + i;
#pragma GCC unroll 4
        for (int c = 0; c < nc; c++)
            bx[c] = (const block_q8_K *)(x + (size_t)c * xs) + i;
        __m256i isum[GEMM_R][GEMM_C];
#pragma GCC unroll 4
        for (int r = 0; r < nr; r++)
#pragma GCC unroll 4
            for (int c = 0; c < nc; c++)
                isum[r][c] = _mm256_setzero_si256();
#pragma GCC unroll 2
        for (int h = 0; h < 2; h++)
#pragma GCC unroll 4
            for (int s = 0; s < 4; s++) {
                const int e = 128 * h + 32 * s;
                __m256i q[GEMM_R], scl[GEMM_R];
#pragma GCC unroll 4
                for (int r = 0; r < nr; r++) {
                    q[r] = q6_k_quants(b[r], h, s);
                    scl[r] = scales_2x16(b[r]->scales[e / 16], b[r]->scales[e / 16 + 1]);
                }
#pragma GCC unroll 4
                for (int c = 0; c < nc; c++) {
                    const __m256i xq = _mm256_loadu_si256((const __m256i *)(bx[c]->qs + e));
#pragma GCC unroll 4
                    for (int r = 0; r < nr; r++)
                        isum[r][c] = _mm256_add_epi32(
                            isum[r][c], _mm256_madd_epi16(_mm256_maddubs_epi16(q[r], xq), scl[r]));
                }
            }
#pragma GCC unroll 4
        for (int c = 0; c < nc; c++)
#pragma GCC unroll 4
            for (int r = 0; r < nr; r++) {
                int32_t osum = 0;
                for (int j = 0; j < 16; j++)
                    osum += b[r]->scales[j] * bx[c]->bsums[j];
                const float dd = bx[c]->d * h2f(b[r]->d);
                acc[r][c] =
                    slim_madd_f32x8(_mm256_set1_ps(dd), _mm256_cvtepi32_ps(isum[r][c]), acc[r][c]);
                offs[r][c] += dd * (float)(32 * osum);
            }
    }
#pragma GCC unroll 4
    for (int r = 0; r < nr; r++)
#pragma GCC unroll 4
        for (int c = 0; c < nc; c++)
            y[c * ldy + r] = slim_hsum_f32x8(acc[r][c]) - offs[r][c];
}

#include "quant/gemm_tile.h"

DEFINE_GEMM(gemm_q4_k_q8_k, q4_k_tile, SLIM_QK_K)
DEFINE_GEMM(gemm_q6_k_q8_k, q6_k_tile, SLIM_QK_K)

#define VEC_DOT_Q4_K vec_dot_q4_k_q8_k_avx2
#define VEC_DOT_Q6_K vec_dot_q6_k_q8_k_avx2
#define GEMM_Q4_K gemm_q4_k_q8_k
#define GEMM_Q6_K gemm_q6_k_q8_k
#endif /* AVX-512 VNNI / AVX2 */
#else
#define GEMM_Q4_K NULL
#define GEMM_Q6_K NULL
#define VEC_DOT_Q4_K slim_vec_dot_q4_k_q8_k_ref
#define VEC_DOT_Q6_K slim_vec_dot_q6_k_q8_k_ref
#endif

bool slim_quant_has_simd(void) {
#if defined(__AVX2__)
    return true;
#else
    return false;
#endif
}

/* ---- traits ------------------------------------------------------------- */

const slim_dtype_traits slim_traits_q2_k = {
    .name = "Q2_K",
    .block_size = SLIM_QK_K,
    .type_size = sizeof(block_q2_K),
    .quantized = true,
    .to_float = q2_k_to_float,
    .from_float = NULL,
    .vec_dot_type = SLIM_DTYPE_Q8_K,
    .vec_dot = vec_dot_q2_k_q8_k,
};

const slim_dtype_traits slim_traits_q3_k = {
    .name = "Q3_K",
    .block_size = SLIM_QK_K,
    .type_size = sizeof(block_q3_K),
    .quantized = true,
    .to_float = q3_k_to_float,
    .from_float = NULL,
    .vec_dot_type = SLIM_DTYPE_Q8_K,
    .vec_dot = vec_dot_q3_k_q8_k,
};

const slim_dtype_traits slim_traits_q4_k = {
    .name = "Q4_K",
    .block_size = SLIM_QK_K,
    .type_size = sizeof(block_q4_K),
    .quantized = true,
    .to_float = q4_k_to_float,
    .from_float = NULL,
    .vec_dot_type = SLIM_DTYPE_Q8_K,
    .vec_dot = VEC_DOT_Q4_K,
    .gemm = GEMM_Q4_K,
};

const slim_dtype_traits slim_traits_q5_k = {
    .name = "Q5_K",
    .block_size = SLIM_QK_K,
    .type_size = sizeof(block_q5_K),
    .quantized = true,
    .to_float = q5_k_to_float,
    .from_float = NULL,
    .vec_dot_type = SLIM_DTYPE_Q8_K,
    .vec_dot = VEC_DOT_Q5_K,
};

const slim_dtype_traits slim_traits_q6_k = {
    .name = "Q6_K",
    .block_size = SLIM_QK_K,
    .type_size = sizeof(block_q6_K),
    .quantized = true,
    .to_float = q6_k_to_float,
    .from_float = NULL,
    .vec_dot_type = SLIM_DTYPE_Q8_K,
    .vec_dot = VEC_DOT_Q6_K,
    .gemm = GEMM_Q6_K,
};

const slim_dtype_traits slim_traits_q8_k = {
    .name = "Q8_K",
    .block_size = SLIM_QK_K,
    .type_size = sizeof(block_q8_K),
    .quantized = true,
    .to_float = q8_k_to_float,
    .from_float = q8_k_from_float,
    .vec_dot_type = SLIM_DTYPE_Q8_K,
    .vec_dot = NULL, /* activations only, never a weight type */
};
