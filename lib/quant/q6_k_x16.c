/* Q6_K repacked 16 rows to a group (layout and numerics: q6_k_x16.h). */
#include <math.h>
#include <string.h>

#include "core/fp16.h"
#include "quant/blocks.h"
#include "quant/q6_k_x16.h"

#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VNNI__)
#define Q6X16_SIMD 1
#include <immintrin.h>

#include "core/simd_x86.h"
#else
#define Q6X16_SIMD 0
#endif

enum { R = 16 };

typedef struct { /* chunk c of 4 bytes per row, its three parts side by side */
    uint8_t la[R][4], lb[R][4], qh[R][4];
} q6_chunk;

typedef struct {
    struct {                 /* half h: its scales, then its quants */
        int8_t sc[4][R][2];  /* sub-blocks 8h + 2i, 8h + 2i + 1 */
        q6_chunk part[2][4]; /* quarter 2h + q: chunks 4q .. 4q + 3 */
    } half[2];
    uint16_t d[R];
} block_q6_Kx16;
_Static_assert(sizeof(block_q6_Kx16) == R * sizeof(block_q6_K), "block_q6_Kx16 size");

bool slim_q6_kx16_available(void) { return Q6X16_SIMD; }

void slim_q6_kx16_pack(const void *src, size_t src_stride, int64_t n, int64_t rows, void *dst) {
    const int64_t nb = n / SLIM_QK_K;
    block_q6_Kx16 *out = dst;
    for (int64_t g = 0; g < rows / R; g++)
        for (int64_t b = 0; b < nb; b++, out++)
            for (int k = 0; k < R; k++) {
                const block_q6_K *in =
                    (const block_q6_K *)((const char *)src + (size_t)(g * R + k) * src_stride) + b;
                out->d[k] = in->d;
                for (int j = 0; j < 16; j++)
                    out->half[j / 8].sc[j / 2 % 4][k][j % 2] = in->scales[j];
                for (int h = 0; h < 2; h++)
                    for (int c = 0; c < 8; c++) {
                        memcpy(out->half[h].part[c / 4][c % 4].la[k], in->ql + 64 * h + 4 * c, 4);
                        memcpy(out->half[h].part[c / 4][c % 4].lb[k], in->ql + 64 * h + 32 + 4 * c,
                               4);
                        memcpy(out->half[h].part[c / 4][c % 4].qh[k], in->qh + 32 * h + 4 * c, 4);
                    }
            }
}

/* Quant e (0..3 of the 4 bytes) of chunk c, part s (0..3) of half h, row k. */
static int q6(const block_q6_Kx16 *w, int h, int s, int c, int k, int e) {
    const q6_chunk *ch = &w->half[h].part[c / 4][c % 4];
    const uint8_t l = (s & 1 ? ch->lb : ch->la)[k][e];
    return ((s < 2 ? l & 15 : l >> 4) | ((ch->qh[k][e] >> (2 * s)) & 3) << 4) - 32;
}

void slim_q6_kx16_gemm_ref(int64_t n, const void *packed, int64_t g0, int64_t g1, const void *xq,
                           size_t xs, int64_t n_tokens, float *y, int64_t ldy) {
    const int64_t nb = n / SLIM_QK_K;
    for (int64_t g = g0; g < g1; g++)
        for (int64_t t = 0; t < n_tokens; t++) {
            const block_q8_K *x = (const block_q8_K *)((const char *)xq + (size_t)t * xs);
            for (int k = 0; k < R; k++) {
                const block_q6_Kx16 *w = (const block_q6_Kx16 *)packed + g * nb;
                float acc = 0.0f;
                for (int64_t b = 0; b < nb; b++) {
                    int32_t isum = 0;
                    for (int h = 0; h < 2; h++)
                        for (int s = 0; s < 4; s++)
                            for (int half = 0; half < 2; half++) {
                                const int j = 8 * h + 2 * s + half;
                                int32_t sub = 0;
                                for (int c = 4 * half; c < 4 * half + 4; c++)
                                    for (int e = 0; e < 4; e++)
                                        sub += q6(&w[b], h, s, c, k, e) *
                                               x[b].qs[128 * h + 32 * s + 4 * c + e];
                                isum += w[b].half[h].sc[j / 2 % 4][k][j % 2] * sub;
                            }
                    acc = fmaf(slim_fp16_to_f32(w[b].d[k]) * x[b].d, (float)isum, acc);
                }
                y[t * ldy + g * R + k] = acc;
            }
        }
}

#if Q6X16_SIMD
enum { Q6X16_C = 4 }; /* tokens per register tile */

/* One group of 16 rows x nc tokens (nc a compile-time constant in each copy).
 * The unsigned quants (q, 0..63) go through vpdpbusd; the -32 comes back as
 * 32 * sum_j sc_j * bsum_j (vpdpwssd of the scale pairs with Q8_K's bsums). */
static inline __attribute__((always_inline)) void tile(const int nc, int64_t nb,
                                                       const block_q6_Kx16 *w, const char *x,
                                                       size_t xs, float *y, int64_t ldy) {
    __m512 acc[Q6X16_C];
#pragma GCC unroll 4
    for (int t = 0; t < nc; t++)
        acc[t] = _mm512_setzero_ps();
    const __m512i m4 = _mm512_set1_epi8(0x0F), m2 = _mm512_set1_epi8(0x30);
    for (int64_t b = 0; b < nb; b++, w++) {
        __m512i isum[Q6X16_C], msum[Q6X16_C];
#pragma GCC unroll 4
        for (int t = 0; t < nc; t++) {
            isum[t] = _mm512_setzero_si512();
            msum[t] = _mm512_setzero_si512();
        }
#pragma GCC unroll 1
        for (int hh = 0; hh < 4; hh++) { /* half h = hh / 2, chunks 4 (hh & 1) .. +3 */
            const int h = hh >> 1, c0 = 4 * (hh & 1);
            slim_prefetch_ahead((const char *)w + hh * sizeof(*w) / 4, sizeof(*w) / 4);
            __m512i q[4][4]; /* part s, chunk */
#pragma GCC unroll 4
            for (int c = 0; c < 4; c++) {
                const __m512i la = _mm512_loadu_si512(w->half[h].part[hh & 1][c].la);
                const __m512i lb = _mm512_loadu_si512(w->half[h].part[hh & 1][c].lb);
                const __m512i qh = _mm512_loadu_si512(w->half[h].part[hh & 1][c].qh);
                /* (a & m4) | (hb & m2) in one vpternlog each: 0xE4 = (C ? B : A) */
                q[0][c] = _mm512_ternarylogic_epi32(la, _mm512_slli_epi16(qh, 4), m4, 0xE4);
                q[1][c] = _mm512_ternarylogic_epi32(lb, _mm512_slli_epi16(qh, 2), m4, 0xE4);
                q[2][c] = _mm512_ternarylogic_epi32(_mm512_srli_epi16(la, 4), qh, m4, 0xE4);
                q[3][c] = _mm512_ternarylogic_epi32(_mm512_srli_epi16(lb, 4),
                                                    _mm512_srli_epi16(qh, 2), m4, 0xE4);
#pragma GCC unroll 4
                for (int s = 0; s < 4; s++)
                    q[s][c] = _mm512_and_si512(q[s][c], _mm512_or_si512(m4, m2));
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
                            slim_bcast_i32x16(xb->qs + 128 * h + 32 * s + 4 * (c0 + c)));
                    const int j = 8 * h + 2 * s + (hh & 1);
                    const __m512i pair =
                        _mm512_cvtepi8_epi16(_mm256_loadu_si256((const __m256i *)w->half[h].sc[s]));
                    const __m512i sc = j & 1 ? _mm512_srai_epi32(pair, 16)
                                             : _mm512_srai_epi32(_mm512_slli_epi32(pair, 16), 16);
                    isum[t] = _mm512_add_epi32(isum[t], _mm512_mullo_epi32(sub, sc));
                }
            }
        }
#pragma GCC unroll 4
        for (int t = 0; t < nc; t++) {
            const block_q8_K *xb = (const block_q8_K *)(x + (size_t)t * xs) + b;
#pragma GCC unroll 8
            for (int i = 0; i < 8; i++)
                msum[t] = _mm512_dpwssd_epi32(msum[t],
                                              _mm512_cvtepi8_epi16(_mm256_loadu_si256(
                                                  (const __m256i *)w->half[i / 4].sc[i % 4])),
                                              slim_bcast_i32x16(xb->bsums + 2 * i));
        }
        const __m512 d = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)w->d));
#pragma GCC unroll 4
        for (int t = 0; t < nc; t++) {
            const __m512 dx = _mm512_set1_ps(((const block_q8_K *)(x + (size_t)t * xs) + b)->d);
            const __m512i tot = _mm512_sub_epi32(isum[t], _mm512_slli_epi32(msum[t], 5));
            acc[t] = _mm512_fmadd_ps(_mm512_mul_ps(d, dx), _mm512_cvtepi32_ps(tot), acc[t]);
        }
    }
#pragma GCC unroll 4
    for (int t = 0; t < nc; t++)
        _mm512_storeu_ps(y + t * ldy, acc[t]);
}

void slim_q6_kx16_gemm(int64_t n, const void *packed, int64_t g0, int64_t g1, const void *xq,
                       size_t xs, int64_t n_tokens, float *y, int64_t ldy) {
    const int64_t nb = n / SLIM_QK_K;
    const char *x = xq;
    for (int64_t g = g0; g < g1; g++) {
        const block_q6_Kx16 *w = (const block_q6_Kx16 *)packed + g * nb;
        float *yg = y + g * R;
        int64_t t = 0;
        for (; t + Q6X16_C <= n_tokens; t += Q6X16_C)
            tile(Q6X16_C, nb, w, x + (size_t)t * xs, xs, yg + t * ldy, ldy);
        const char *xt = x + (size_t)t * xs;
        float *yt = yg + t * ldy;
        switch (n_tokens - t) {
        case 3: tile(3, nb, w, xt, xs, yt, ldy); break;
        case 2: tile(2, nb, w, xt, xs, yt, ldy); break;
        case 1: tile(1, nb, w, xt, xs, yt, ldy); break;
        default: break;
        }
    }
}
#else
void slim_q6_kx16_gemm(int64_t n, const void *packed, int64_t g0, int64_t g1, const void *xq,
                       size_t xs, int64_t n_tokens, float *y, int64_t ldy) {
    slim_q6_kx16_gemm_ref(n, packed, g0, g1, xq, xs, n_tokens, y, ldy);
}
#endif
