/* Q4_K and Q5_K repacked 16 rows to a group (layout and numerics: q4_k_x16.h). */
#include <math.h>
#include <string.h>

#include "core/fp16.h"
#include "quant/blocks.h"
#include "quant/q4_k_x16.h"

#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VNNI__)
#define KX16_SIMD 1
#include <immintrin.h>

#include "core/simd_x86.h"
#else
#define KX16_SIMD 0
#endif

enum { R = 16 };

/* Pair p's scales and mins (sub-blocks 2p, 2p + 1), per row. */
typedef struct {
    uint8_t sc[2][R];
    uint8_t m[R][2];
} kx16_scales;

/* Q5_K's pair adds, per chunk, the fifth bits of the low and of the high
 * nibbles as 64-bit masks over the chunk's 64 bytes (bit 4k + e: row k, byte
 * e), one vpaddb each. */
typedef struct {
    struct {
        kx16_scales s;
        uint8_t qs[8][R][4];
    } part[4];
    uint16_t d[R], dmin[R];
} block_q4_Kx16;
typedef struct {
    struct {
        kx16_scales s;
        uint64_t qh[8][2];
        uint8_t qs[8][R][4];
    } part[4];
    uint16_t d[R], dmin[R];
} block_q5_Kx16;
_Static_assert(sizeof(block_q4_Kx16) == 2368, "block_q4_Kx16 size");
_Static_assert(sizeof(block_q5_Kx16) == 2880, "block_q5_Kx16 size");

/* The two layouts differ only by the masks: offsets, `five` 0 or 1. */
enum { KX16_PART4 = sizeof(((block_q4_Kx16 *)0)->part[0]), KX16_QH = sizeof(uint64_t[8][2]) };
#define KX16_PART(five) (KX16_PART4 + (five)*KX16_QH)
#define KX16_BLOCK(five) (4 * KX16_PART(five) + 4 * R)
_Static_assert(KX16_BLOCK(0) == sizeof(block_q4_Kx16) && KX16_BLOCK(1) == sizeof(block_q5_Kx16),
               "kx16 offsets");

static inline const kx16_scales *pair_scales(const char *blk, int five, int p) {
    return (const kx16_scales *)(blk + p * KX16_PART(five));
}
static inline const uint8_t *pair_qs(const char *blk, int five, int p, int c) {
    return (const uint8_t *)blk + p * KX16_PART(five) + sizeof(kx16_scales) + five * KX16_QH +
           c * R * 4;
}
/* Byte offset of chunk c's fifth-bit mask (hi: the high nibbles'), Q5_K only. */
static inline size_t qh_offset(int p, int c, int hi) {
    return (size_t)p * KX16_PART(1) + sizeof(kx16_scales) + (size_t)(2 * c + hi) * 8;
}
static inline uint64_t pair_qh(const char *blk, int p, int c, int hi) {
    uint64_t v;
    memcpy(&v, blk + qh_offset(p, c, hi), 8);
    return v;
}
static inline const uint16_t *block_d(const char *blk, int five) {
    return (const uint16_t *)(blk + 4 * KX16_PART(five));
}
static inline const uint16_t *block_dmin(const char *blk, int five) {
    return block_d(blk, five) + R;
}

bool slim_q4_kx16_available(void) { return KX16_SIMD; }

size_t slim_q4_kx16_size(int64_t n, int64_t rows) {
    return (size_t)(n / SLIM_QK_K) * (size_t)(rows / R) * sizeof(block_q4_Kx16);
}
size_t slim_q5_kx16_size(int64_t n, int64_t rows) {
    return (size_t)(n / SLIM_QK_K) * (size_t)(rows / R) * sizeof(block_q5_Kx16);
}

/* Q4_K's 6-bit scale and min of sub-block j (GGML's get_scale_min_k4). */
static void scale_min(int j, const uint8_t *s, uint8_t *sc, uint8_t *m) {
    if (j < 4) {
        *sc = s[j] & 63;
        *m = s[j + 4] & 63;
    } else {
        *sc = (uint8_t)((s[j + 4] & 0x0F) | (s[j - 4] >> 6) << 4);
        *m = (uint8_t)((s[j + 4] >> 4) | (s[j] >> 6) << 4);
    }
}

/* Row k of one packed block from a Q4_K or Q5_K block's fields (qh NULL for Q4_K). */
static void pack_row(const int five, char *blk, int k, uint16_t d, uint16_t dmin,
                     const uint8_t *scales, const uint8_t *qh, const uint8_t *qs) {
    ((uint16_t *)block_d(blk, five))[k] = d;
    ((uint16_t *)block_dmin(blk, five))[k] = dmin;
    for (int p = 0; p < 4; p++) {
        kx16_scales *s = (kx16_scales *)pair_scales(blk, five, p);
        scale_min(2 * p, scales, &s->sc[0][k], &s->m[k][0]);
        scale_min(2 * p + 1, scales, &s->sc[1][k], &s->m[k][1]);
        for (int c = 0; c < 8; c++) {
            memcpy((uint8_t *)pair_qs(blk, five, p, c) + 4 * k, qs + 32 * p + 4 * c, 4);
            for (int hi = 0; five && hi < 2; hi++) {
                uint64_t m = pair_qh(blk, p, c, hi);
                for (int e = 0; e < 4; e++)
                    m |= (uint64_t)((qh[4 * c + e] >> (2 * p + hi)) & 1) << (4 * k + e);
                memcpy(blk + qh_offset(p, c, hi), &m, 8);
            }
        }
    }
}

void slim_q4_kx16_pack(const void *src, size_t src_stride, int64_t n, int64_t rows, void *dst) {
    const int64_t nb = n / SLIM_QK_K;
    char *out = dst;
    for (int64_t g = 0; g < rows / R; g++)
        for (int64_t b = 0; b < nb; b++, out += KX16_BLOCK(0))
            for (int k = 0; k < R; k++) {
                const block_q4_K *in =
                    (const block_q4_K *)((const char *)src + (size_t)(g * R + k) * src_stride) + b;
                pack_row(0, out, k, in->d, in->dmin, in->scales, NULL, in->qs);
            }
}

void slim_q5_kx16_pack(const void *src, size_t src_stride, int64_t n, int64_t rows, void *dst) {
    const int64_t nb = n / SLIM_QK_K;
    char *out = dst;
    memset(dst, 0, slim_q5_kx16_size(n, rows)); /* pack_row ors the fifth bits in */
    for (int64_t g = 0; g < rows / R; g++)
        for (int64_t b = 0; b < nb; b++, out += KX16_BLOCK(1))
            for (int k = 0; k < R; k++) {
                const block_q5_K *in =
                    (const block_q5_K *)((const char *)src + (size_t)(g * R + k) * src_stride) + b;
                pack_row(1, out, k, in->d, in->dmin, in->scales, in->qh, in->qs);
            }
}

void slim_q4_kx16_xsum(int64_t n, const void *xq, size_t xs, int64_t n_tokens, int16_t *xsum) {
    const int64_t nb = n / SLIM_QK_K;
    for (int64_t t = 0; t < n_tokens; t++) {
        const block_q8_K *x = (const block_q8_K *)((const char *)xq + (size_t)t * xs);
        for (int64_t b = 0; b < nb; b++)
            for (int j = 0; j < 8; j++) /* |sum| <= 32 * 128: fits */
                xsum[(t * nb + b) * 8 + j] = (int16_t)(x[b].bsums[2 * j] + x[b].bsums[2 * j + 1]);
    }
}

static void gemm_ref(const int five, int64_t n, const void *packed, int64_t g0, int64_t g1,
                     const void *xq, size_t xs, int64_t n_tokens, float *y, int64_t ldy) {
    const int64_t nb = n / SLIM_QK_K;
    for (int64_t g = g0; g < g1; g++)
        for (int64_t t = 0; t < n_tokens; t++) {
            const block_q8_K *x = (const block_q8_K *)((const char *)xq + (size_t)t * xs);
            for (int k = 0; k < R; k++) {
                float acc = 0.0f;
                for (int64_t b = 0; b < nb; b++) {
                    const char *w = (const char *)packed + (size_t)(g * nb + b) * KX16_BLOCK(five);
                    int32_t isum = 0, msum = 0;
                    for (int j = 0; j < 8; j++) {
                        const int p = j / 2, hi = j % 2;
                        int32_t s = 0, xsum = 0;
                        for (int c = 0; c < 8; c++)
                            for (int e = 0; e < 4; e++) {
                                const uint8_t q = pair_qs(w, five, p, c)[4 * k + e];
                                const int h5 =
                                    five ? (int)(pair_qh(w, p, c, hi) >> (4 * k + e) & 1) : 0;
                                const int8_t xv = x[b].qs[64 * p + 32 * hi + 4 * c + e];
                                s += ((hi ? q >> 4 : q & 15) | h5 << 4) * xv;
                                xsum += xv;
                            }
                        isum += pair_scales(w, five, p)->sc[hi][k] * s;
                        msum += pair_scales(w, five, p)->m[k][hi] * xsum;
                    }
                    acc = fmaf(slim_fp16_to_f32(block_d(w, five)[k]) * x[b].d, (float)isum, acc);
                    acc = fmaf(-(slim_fp16_to_f32(block_dmin(w, five)[k]) * x[b].d), (float)msum,
                               acc);
                }
                y[t * ldy + g * R + k] = acc;
            }
        }
}

void slim_q4_kx16_gemm_ref(int64_t n, const void *packed, int64_t g0, int64_t g1, const void *xq,
                           size_t xs, int64_t n_tokens, float *y, int64_t ldy) {
    gemm_ref(0, n, packed, g0, g1, xq, xs, n_tokens, y, ldy);
}
void slim_q5_kx16_gemm_ref(int64_t n, const void *packed, int64_t g0, int64_t g1, const void *xq,
                           size_t xs, int64_t n_tokens, float *y, int64_t ldy) {
    gemm_ref(1, n, packed, g0, g1, xq, xs, n_tokens, y, ldy);
}

#if KX16_SIMD
enum { KX16_C = 4 }; /* tokens per register tile */
/* Chunk c of pair p as its low and high sub-blocks' quants (0..15, or 0..31
 * with Q5_K's fifth bits added). */
static inline __attribute__((always_inline)) void quants(const int five, const char *w, int p,
                                                         int c, __m512i *lo, __m512i *hi) {
    const __m512i low = _mm512_set1_epi8(0x0F);
    const __m512i q = _mm512_loadu_si512(pair_qs(w, five, p, c));
    *lo = _mm512_and_si512(q, low);
    *hi = _mm512_and_si512(_mm512_srli_epi16(q, 4), low);
    if (five) {
        const __m512i b4 = _mm512_set1_epi8(0x10);
        *lo = _mm512_mask_add_epi8(*lo, (__mmask64)pair_qh(w, p, c, 0), *lo, b4);
        *hi = _mm512_mask_add_epi8(*hi, (__mmask64)pair_qh(w, p, c, 1), *hi, b4);
    }
}

/* One group of 16 rows x nc tokens (nc and five compile-time constants in each copy). */
static inline __attribute__((always_inline)) void tile(const int five, const int nc, int64_t nb,
                                                       const char *w, const char *x, size_t xs,
                                                       const int16_t *xsum, float *y, int64_t ldy) {
    __m512 acc[KX16_C];
#pragma GCC unroll 4
    for (int t = 0; t < nc; t++)
        acc[t] = _mm512_setzero_ps();
    for (int64_t b = 0; b < nb; b++, w += KX16_BLOCK(five)) {
        __m512i isum[KX16_C], msum[KX16_C];
#pragma GCC unroll 4
        for (int t = 0; t < nc; t++) {
            isum[t] = _mm512_setzero_si512();
            msum[t] = _mm512_setzero_si512();
        }
#pragma GCC unroll 1
        for (int p = 0; p < 4; p++) {
            slim_prefetch_ahead(w + p * KX16_BLOCK(five) / 4, KX16_BLOCK(five) / 4);
            const kx16_scales *ps = pair_scales(w, five, p);
            const __m512i sc_lo = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)ps->sc[0]));
            const __m512i sc_hi = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)ps->sc[1]));
            const __m512i mp = _mm512_cvtepu8_epi16(_mm256_loadu_si256((const __m256i *)ps->m));
            __m512i lo[8], hi[8];
#pragma GCC unroll 8
            for (int c = 0; c < 8; c++)
                quants(five, w, p, c, &lo[c], &hi[c]);
#pragma GCC unroll 4
            for (int t = 0; t < nc; t++) {
                const block_q8_K *xb = (const block_q8_K *)(x + (size_t)t * xs) + b;
                __m512i s0 = _mm512_setzero_si512(), s1 = _mm512_setzero_si512();
#pragma GCC unroll 8
                for (int c = 0; c < 8; c++) {
                    s0 = _mm512_dpbusd_epi32(s0, lo[c], slim_bcast_i32x16(xb->qs + 64 * p + 4 * c));
                    s1 = _mm512_dpbusd_epi32(s1, hi[c],
                                             slim_bcast_i32x16(xb->qs + 64 * p + 32 + 4 * c));
                }
                isum[t] = _mm512_add_epi32(isum[t], _mm512_mullo_epi32(s0, sc_lo));
                isum[t] = _mm512_add_epi32(isum[t], _mm512_mullo_epi32(s1, sc_hi));
                msum[t] = _mm512_dpwssd_epi32(
                    msum[t], mp,
                    slim_bcast_i32x16(xsum + ((size_t)t * (size_t)nb + (size_t)b) * 8 + 2 * p));
            }
        }
        const __m512 d = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)block_d(w, five)));
        const __m512 dmin =
            _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)block_dmin(w, five)));
#pragma GCC unroll 4
        for (int t = 0; t < nc; t++) {
            const __m512 dx = _mm512_set1_ps(((const block_q8_K *)(x + (size_t)t * xs) + b)->d);
            acc[t] = _mm512_fmadd_ps(_mm512_mul_ps(d, dx), _mm512_cvtepi32_ps(isum[t]), acc[t]);
            acc[t] = _mm512_fnmadd_ps(_mm512_mul_ps(dmin, dx), _mm512_cvtepi32_ps(msum[t]), acc[t]);
        }
    }
#pragma GCC unroll 4
    for (int t = 0; t < nc; t++)
        _mm512_storeu_ps(y + t * ldy, acc[t]);
}

static inline __attribute__((always_inline)) void
gemm(const int five, int64_t n, const void *packed, int64_t g0, int64_t g1, const void *xq,
     size_t xs, const int16_t *xsum, int64_t n_tokens, float *y, int64_t ldy) {
    const int64_t nb = n / SLIM_QK_K;
    const size_t gs = (size_t)nb * KX16_BLOCK(five);
    const char *x = xq;
    for (int64_t g = g0; g < g1; g++) {
        const char *w = (const char *)packed + (size_t)g * gs;
        float *yg = y + g * R;
        int64_t t = 0;
        for (; t + KX16_C <= n_tokens; t += KX16_C)
            tile(five, KX16_C, nb, w, x + (size_t)t * xs, xs, xsum + t * nb * 8, yg + t * ldy, ldy);
        const char *xt = x + (size_t)t * xs;
        const int16_t *st = xsum + t * nb * 8;
        float *yt = yg + t * ldy;
        switch (n_tokens - t) {
        case 3: tile(five, 3, nb, w, xt, xs, st, yt, ldy); break;
        case 2: tile(five, 2, nb, w, xt, xs, st, yt, ldy); break;
        case 1: tile(five, 1, nb, w, xt, xs, st, yt, ldy); break;
        default: break;
        }
    }
}

void slim_q4_kx16_gemm(int64_t n, const void *packed, int64_t g0, int64_t g1, const void *xq,
                       size_t xs, const int16_t *xsum, int64_t n_tokens, float *y, int64_t ldy) {
    gemm(0, n, packed, g0, g1, xq, xs, xsum, n_tokens, y, ldy);
}
void slim_q5_kx16_gemm(int64_t n, const void *packed, int64_t g0, int64_t g1, const void *xq,
                       size_t xs, const int16_t *xsum, int64_t n_tokens, float *y, int64_t ldy) {
    gemm(1, n, packed, g0, g1, xq, xs, xsum, n_tokens, y, ldy);
}
#else
void slim_q4_kx16_gemm(int64_t n, const void *packed, int64_t g0, int64_t g1, const void *xq,
                       size_t xs, const int16_t *xsum, int64_t n_tokens, float *y, int64_t ldy) {
    slim_q4_kx16_gemm_ref(n, packed, g0, g1, xq, xs, n_tokens, y, ldy);
}
void slim_q5_kx16_gemm(int64_t n, const void *packed, int64_t g0, int64_t g1, const void *xq,
                       size_t xs, const int16_t *xsum, int64_t n_tokens, float *y, int64_t ldy) {
    slim_q5_kx16_gemm_ref(n, packed, g0, g1, xq, xs, n_tokens, y, ldy);
}
#endif
