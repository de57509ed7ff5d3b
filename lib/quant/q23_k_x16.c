/* Q2_K and Q3_K repacked 16 rows to a group (layout and numerics: q23_k_x16.h). */
#include <math.h>
#include <string.h>

#include "core/fp16.h"
#include "quant/blocks.h"
#include "quant/q23_k_x16.h"

#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VNNI__)
#define Q23X16_SIMD 1
#include <immintrin.h>

#include "core/simd_x86.h"
#else
#define Q23X16_SIMD 0
#endif

enum { R = 16 };

typedef struct {
    uint8_t sc[8][R][2]; /* low nibble: scale, high: min */
    struct {
        uint8_t qs[2][4][R][4];
    } part[2];
    uint16_t d[R], dmin[R];
} block_q2_Kx16;
_Static_assert(sizeof(block_q2_Kx16) == R * sizeof(block_q2_K), "block_q2_Kx16 size");

typedef struct {
    int8_t sc[8][R][2];
    struct {
        uint8_t hm[4][R][4];
        uint8_t qs[2][4][R][4];
    } part[2];
    uint16_t d[R];
} block_q3_Kx16;
_Static_assert(sizeof(block_q3_Kx16) == R * sizeof(block_q3_K) + 64, "block_q3_Kx16 size");

bool slim_q23_kx16_available(void) { return Q23X16_SIMD; }

size_t slim_q3_kx16_size(int64_t n, int64_t rows) {
    return (size_t)(rows / R) * (size_t)(n / SLIM_QK_K) * sizeof(block_q3_Kx16);
}

/* Row k's 2-bit quants of one super-block into part[cg].qs[h][c % 4][k]
 * (parts `part_bytes` apart from qs0, part 0's qs). */
static void pack_qs(uint8_t *qs0, size_t part_bytes, const uint8_t *qs, int k) {
    for (int h = 0; h < 2; h++)
        for (int c = 0; c < 8; c++)
            memcpy(qs0 + (size_t)(c / 4) * part_bytes + (size_t)((4 * h + c % 4) * R + k) * 4,
                   qs + 32 * h + 4 * c, 4);
}

void slim_q2_kx16_pack(const void *src, size_t src_stride, int64_t n, int64_t rows, void *dst) {
    const int64_t nb = n / SLIM_QK_K;
    block_q2_Kx16 *out = dst;
    for (int64_t g = 0; g < rows / R; g++)
        for (int64_t b = 0; b < nb; b++, out++)
            for (int k = 0; k < R; k++) {
                const block_q2_K *in =
                    (const block_q2_K *)((const char *)src + (size_t)(g * R + k) * src_stride) + b;
                for (int j = 0; j < 16; j++)
                    out->sc[j / 2][k][j % 2] = in->scales[j];
                pack_qs(out->part[0].qs[0][0][0], sizeof out->part[0], in->qs, k);
                out->d[k] = in->d;
                out->dmin[k] = in->dmin;
            }
}

void slim_q3_kx16_pack(const void *src, size_t src_stride, int64_t n, int64_t rows, void *dst) {
    const int64_t nb = n / SLIM_QK_K;
    block_q3_Kx16 *out = dst;
    for (int64_t g = 0; g < rows / R; g++)
        for (int64_t b = 0; b < nb; b++, out++)
            for (int k = 0; k < R; k++) {
                const block_q3_K *in =
                    (const block_q3_K *)((const char *)src + (size_t)(g * R + k) * src_stride) + b;
                int8_t sc[16];
                slim_q3_k_scales(in->scales, sc);
                for (int j = 0; j < 16; j++)
                    out->sc[j / 2][k][j % 2] = sc[j];
                for (int c = 0; c < 8; c++)
                    memcpy(out->part[c / 4].hm[c % 4][k], in->hmask + 4 * c, 4);
                pack_qs(out->part[0].qs[0][0][0], sizeof out->part[0], in->qs, k);
                out->d[k] = in->d;
            }
}

/* Quant e (0..3) of chunk c (0..7), run s of half h, row k: Q2_K's 0..3,
 * Q3_K's -4..3. */
static int quant(bool three, const void *blk, int h, int s, int c, int k, int e) {
    if (!three) {
        const block_q2_Kx16 *w = blk;
        return (w->part[c / 4].qs[h][c % 4][k][e] >> (2 * s)) & 3;
    }
    const block_q3_Kx16 *w = blk;
    const int lo = (w->part[c / 4].qs[h][c % 4][k][e] >> (2 * s)) & 3;
    return lo - ((w->part[c / 4].hm[c % 4][k][e] >> (4 * h + s)) & 1 ? 0 : 4);
}

static void gemm_ref(bool three, int64_t n, const void *packed, int64_t g0, int64_t g1,
                     const void *xq, size_t xs, int64_t n_tokens, float *y, int64_t ldy) {
    const int64_t nb = n / SLIM_QK_K;
    const size_t bytes = three ? sizeof(block_q3_Kx16) : sizeof(block_q2_Kx16);
    for (int64_t g = g0; g < g1; g++)
        for (int64_t t = 0; t < n_tokens; t++) {
            const block_q8_K *x = (const block_q8_K *)((const char *)xq + (size_t)t * xs);
            for (int k = 0; k < R; k++) {
                float acc = 0.0f;
                for (int64_t b = 0; b < nb; b++) {
                    const char *blk = (const char *)packed + (size_t)(g * nb + b) * bytes;
                    const block_q2_Kx16 *w2 = (const void *)blk;
                    const block_q3_Kx16 *w3 = (const void *)blk;
                    int32_t isum = 0, msum = 0;
                    for (int j = 0; j < 16; j++) { /* sub-block 8h + 2s + cg */
                        const int h = j / 8, s = j / 2 % 4, cg = j % 2;
                        int32_t sub = 0;
                        for (int c = 4 * cg; c < 4 * cg + 4; c++)
                            for (int e = 0; e < 4; e++)
                                sub += quant(three, blk, h, s, c, k, e) *
                                       x[b].qs[128 * h + 32 * s + 4 * c + e];
                        if (three) {
                            isum += w3->sc[j / 2][k][j % 2] * sub;
                        } else {
                            const int sm = w2->sc[j / 2][k][j % 2];
                            isum += (sm & 15) * sub;
                            msum += (sm >> 4) * x[b].bsums[j];
                        }
                    }
                    const float d = slim_fp16_to_f32(three ? w3->d[k] : w2->d[k]);
                    acc = fmaf(d * x[b].d, (float)isum, acc);
                    if (!three)
                        acc = fmaf(-(slim_fp16_to_f32(w2->dmin[k]) * x[b].d), (float)msum, acc);
                }
                y[t * ldy + g * R + k] = acc;
            }
        }
}

void slim_q2_kx16_gemm_ref(int64_t n, const void *packed, int64_t g0, int64_t g1, const void *xq,
                           size_t xs, int64_t n_tokens, float *y, int64_t ldy) {
    gemm_ref(false, n, packed, g0, g1, xq, xs, n_tokens, y, ldy);
}

void slim_q3_kx16_gemm_ref(int64_t n, const void *packed, int64_t g0, int64_t g1, const void *xq,
                           size_t xs, int64_t n_tokens, float *y, int64_t ldy) {
    gemm_ref(true, n, packed, g0, g1, xq, xs, n_tokens, y, ldy);
}

#if Q23X16_SIMD
enum { Q23X16_C = 4 }; /* tokens per register tile */

/* Pair i's scale bytes of the 16 rows as int16 pairs (Q2_K's unsigned). */
static inline __m512i scale_pairs(bool three, const void *pair) {
    const __m256i v = _mm256_loadu_si256(pair);
    return three ? _mm512_cvtepi8_epi16(v) : _mm512_cvtepu8_epi16(v);
}

/* One group of 16 rows x nc tokens (three and nc compile-time constants in
 * each copy).  The unsigned quants (Q3_K's q + 4, 0..7) go through vpdpbusd;
 * Q3_K's -4 and Q2_K's mins come from Q8_K's bsums (vpdpwssd of the pairs). */
static inline __attribute__((always_inline)) void tile(const bool three, const int nc, int64_t nb,
                                                       const char *w, const char *x, size_t xs,
                                                       float *y, int64_t ldy) {
    const size_t bytes = three ? sizeof(block_q3_Kx16) : sizeof(block_q2_Kx16);
    __m512 acc[Q23X16_C];
#pragma GCC unroll 4
    for (int t = 0; t < nc; t++)
        acc[t] = _mm512_setzero_ps();
    const __m512i m2 = _mm512_set1_epi8(3), m3 = _mm512_set1_epi8(7), nib = _mm512_set1_epi32(15);
    for (int64_t b = 0; b < nb; b++, w += bytes) {
        const block_q2_Kx16 *w2 = (const void *)w;
        const block_q3_Kx16 *w3 = (const void *)w;
        __m512i isum[Q23X16_C], msum[Q23X16_C];
#pragma GCC unroll 4
        for (int t = 0; t < nc; t++) {
            isum[t] = _mm512_setzero_si512();
            msum[t] = _mm512_setzero_si512();
        }
#pragma GCC unroll 1
        for (int hh = 0; hh < 4; hh++) { /* chunk group cg = hh / 2, half h = hh % 2 */
            const int cg = hh >> 1, h = hh & 1;
            slim_prefetch_ahead(w + hh * bytes / 4, bytes / 4);
            const uint8_t *qs = three ? w3->part[cg].qs[h][0][0] : w2->part[cg].qs[h][0][0];
            const __m128i half_shift = _mm_cvtsi32_si128(4 * h);
            __m512i q[4][4]; /* run s, chunk */
#pragma GCC unroll 4
            for (int c = 0; c < 4; c++) {
                const __m512i v = _mm512_loadu_si512(qs + 64 * c);
                /* Q3_K: hmask bits 4h .. 4h + 3 down to bits 0..3 */
                const __m512i hb =
                    three ? _mm512_srl_epi16(_mm512_loadu_si512(w3->part[cg].hm[c][0]), half_shift)
                          : _mm512_setzero_si512();
#pragma GCC unroll 4
                for (int s = 0; s < 4; s++) {
                    const __m512i lo = s ? _mm512_srli_epi16(v, 2 * s) : v;
                    if (!three) {
                        q[s][c] = _mm512_and_si512(lo, m2);
                        continue;
                    }
                    /* bit s of hb to bit 2, beside lo's two: 0xE4 = (m2 ? lo : hi) */
                    const __m512i hi = s == 0   ? _mm512_slli_epi16(hb, 2)
                                       : s == 1 ? _mm512_slli_epi16(hb, 1)
                                       : s == 2 ? hb
                                                : _mm512_srli_epi16(hb, 1);
                    q[s][c] = _mm512_and_si512(_mm512_ternarylogic_epi32(lo, hi, m2, 0xE4), m3);
                }
            }
#pragma GCC unroll 4
            for (int t = 0; t < nc; t++) {
                const block_q8_K *xb = (const block_q8_K *)(x + (size_t)t * xs) + b;
#pragma GCC unroll 4
                for (int s = 0; s < 4; s++) {
                    __m512i sub = _mm512_setzero_si512();
#pragma GCC unroll 4
                    for (int c = 0; c < 4; c++)
                        sub = _mm512_dpbusd_epi32(
                            sub, q[s][c],
                            slim_bcast_i32x16(xb->qs + 128 * h + 32 * s + 4 * (4 * cg + c)));
                    const __m512i pair =
                        scale_pairs(three, three ? (const void *)w3->sc[4 * h + s]
                                                 : (const void *)w2->sc[4 * h + s]);
                    __m512i sc;
                    if (three)
                        sc = cg ? _mm512_srai_epi32(pair, 16)
                                : _mm512_srai_epi32(_mm512_slli_epi32(pair, 16), 16);
                    else
                        sc = _mm512_and_si512(cg ? _mm512_srli_epi32(pair, 16) : pair, nib);
                    isum[t] = _mm512_add_epi32(isum[t], _mm512_mullo_epi32(sub, sc));
                }
            }
        }
#pragma GCC unroll 4
        for (int t = 0; t < nc; t++) {
            const block_q8_K *xb = (const block_q8_K *)(x + (size_t)t * xs) + b;
#pragma GCC unroll 8
            for (int i = 0; i < 8; i++) {
                const __m512i pair =
                    scale_pairs(three, three ? (const void *)w3->sc[i] : (const void *)w2->sc[i]);
                msum[t] = _mm512_dpwssd_epi32(msum[t], three ? pair : _mm512_srli_epi16(pair, 4),
                                              slim_bcast_i32x16(xb->bsums + 2 * i));
            }
        }
        const __m512 d =
            _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(three ? w3->d : w2->d)));
#pragma GCC unroll 4
        for (int t = 0; t < nc; t++) {
            const __m512 dx = _mm512_set1_ps(((const block_q8_K *)(x + (size_t)t * xs) + b)->d);
            if (three) {
                const __m512i tot = _mm512_sub_epi32(isum[t], _mm512_slli_epi32(msum[t], 2));
                acc[t] = _mm512_fmadd_ps(_mm512_mul_ps(d, dx), _mm512_cvtepi32_ps(tot), acc[t]);
            } else {
                const __m512 dmin = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)w2->dmin));
                acc[t] = _mm512_fmadd_ps(_mm512_mul_ps(d, dx), _mm512_cvtepi32_ps(isum[t]), acc[t]);
                acc[t] =
                    _mm512_fnmadd_ps(_mm512_mul_ps(dmin, dx), _mm512_cvtepi32_ps(msum[t]), acc[t]);
            }
        }
    }
#pragma GCC unroll 4
    for (int t = 0; t < nc; t++)
        _mm512_storeu_ps(y + t * ldy, acc[t]);
}

static inline __attribute__((always_inline)) void gemm(bool three, int64_t n, const void *packed,
                                                       int64_t g0, int64_t g1, const void *xq,
                                                       size_t xs, int64_t n_tokens, float *y,
                                                       int64_t ldy) {
    const int64_t nb = n / SLIM_QK_K;
    const size_t bytes = three ? sizeof(block_q3_Kx16) : sizeof(block_q2_Kx16);
    const char *x = xq;
    for (int64_t g = g0; g < g1; g++) {
        const char *w = (const char *)packed + (size_t)(g * nb) * bytes;
        float *yg = y + g * R;
        int64_t t = 0;
        for (; t + Q23X16_C <= n_tokens; t += Q23X16_C)
            tile(three, Q23X16_C, nb, w, x + (size_t)t * xs, xs, yg + t * ldy, ldy);
        const char *xt = x + (size_t)t * xs;
        float *yt = yg + t * ldy;
        switch (n_tokens - t) {
        case 3: tile(three, 3, nb, w, xt, xs, yt, ldy); break;
        case 2: tile(three, 2, nb, w, xt, xs, yt, ldy); break;
        case 1: tile(three, 1, nb, w, xt, xs, yt, ldy); break;
        default: break;
        }
    }
}

void slim_q2_kx16_gemm(int64_t n, const void *packed, int64_t g0, int64_t g1, const void *xq,
                       size_t xs, int64_t n_tokens, float *y, int64_t ldy) {
    gemm(false, n, packed, g0, g1, xq, xs, n_tokens, y, ldy);
}

void slim_q3_kx16_gemm(int64_t n, const void *packed, int64_t g0, int64_t g1, const void *xq,
                       size_t xs, int64_t n_tokens, float *y, int64_t ldy) {
    gemm(true, n, packed, g0, g1, xq, xs, n_tokens, y, ldy);
}
#else
void slim_q2_kx16_gemm(int64_t n, const void *packed, int64_t g0, int64_t g1, const void *xq,
                       size_t xs, int64_t n_tokens, float *y, int64_t ldy) {
    slim_q2_kx16_gemm_ref(n, packed, g0, g1, xq, xs, n_tokens, y, ldy);
}

void slim_q3_kx16_gemm(int64_t n, const void *packed, int64_t g0, int64_t g1, const void *xq,
                       size_t xs, int64_t n_tokens, float *y, int64_t ldy) {
    slim_q3_kx16_gemm_ref(n, packed, g0, g1, xq, xs, n_tokens, y, ldy);
}
#endif
