/* Q4_0 and Q8_0 repacked 16 rows to a group (layout and numerics:
 * legacy_x16.h).  One register tile serves both; Q8 (a compile-time
 * constant in each copy) picks the format. */
#include <math.h>
#include <string.h>

#include "core/fp16.h"
#include "quant/blocks.h"
#include "quant/legacy_x16.h"

#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VNNI__)
#define X16_SIMD 1
#include <immintrin.h>

#include "core/simd_x86.h"
#else
#define X16_SIMD 0
#endif

typedef struct {
    uint16_t d[SLIM_X16_ROWS];
    uint8_t qs[4][SLIM_X16_ROWS][4];
} block_q4_0x16;
_Static_assert(sizeof(block_q4_0x16) == SLIM_X16_ROWS * sizeof(block_q4_0), "block_q4_0x16 size");

typedef struct {
    uint16_t d[SLIM_X16_ROWS];
    uint8_t qs[8][SLIM_X16_ROWS][4]; /* quant + 128 */
} block_q8_0x16;
_Static_assert(sizeof(block_q8_0x16) == SLIM_X16_ROWS * sizeof(block_q8_0), "block_q8_0x16 size");

bool slim_q4_0x16_available(void) { return X16_SIMD; }

void slim_q4_0x16_pack(const void *src, size_t src_stride, int64_t n, int64_t rows, void *dst) {
    const int64_t nb = n / SLIM_QK4_0;
    block_q4_0x16 *out = dst;
    for (int64_t g = 0; g < rows / SLIM_X16_ROWS; g++)
        for (int64_t b = 0; b < nb; b++, out++)
            for (int k = 0; k < SLIM_X16_ROWS; k++) {
                const block_q4_0 *in =
                    (const block_q4_0 *)((const char *)src +
                                         (size_t)(g * SLIM_X16_ROWS + k) * src_stride) +
                    b;
                out->d[k] = in->d;
                for (int c = 0; c < 4; c++)
                    memcpy(out->qs[c][k], in->qs + 4 * c, 4);
            }
}

void slim_q8_0x16_pack(const void *src, size_t src_stride, int64_t n, int64_t rows, void *dst) {
    const int64_t nb = n / SLIM_QK8_0;
    block_q8_0x16 *out = dst;
    for (int64_t g = 0; g < rows / SLIM_X16_ROWS; g++)
        for (int64_t b = 0; b < nb; b++, out++)
            for (int k = 0; k < SLIM_X16_ROWS; k++) {
                const block_q8_0 *in =
                    (const block_q8_0 *)((const char *)src +
                                         (size_t)(g * SLIM_X16_ROWS + k) * src_stride) +
                    b;
                out->d[k] = in->d;
                for (int c = 0; c < 8; c++) { /* 4 quants + 128: the sign bits flipped */
                    uint32_t v;
                    memcpy(&v, in->qs + 4 * c, 4);
                    v ^= 0x80808080u;
                    memcpy(out->qs[c][k], &v, 4);
                }
            }
}

/* Offsets in the prepared activations (the layout in legacy_x16.h), per
 * block of a tile of nc tokens: the quants, then the sums, then the scales. */
enum { PREP_BYTES = 40 }; /* per token and block */
#define PREP_SUMS(nc) (32 * (nc))
#define PREP_SCALES(nc) (36 * (nc))

size_t slim_q4_0x16_prep_size(int64_t n, int64_t n_tokens) {
    return (size_t)n_tokens * (size_t)(n / SLIM_QK8_0) * PREP_BYTES;
}

void slim_q4_0x16_prep(int64_t n, const void *xq, size_t xs, int64_t n_tokens, void *xp) {
    const int64_t nb = n / SLIM_QK8_0;
    char *o = xp;
    for (int64_t t0 = 0; t0 < n_tokens; t0 += SLIM_X16_TOKENS) {
        const int nc = n_tokens - t0 < SLIM_X16_TOKENS ? (int)(n_tokens - t0) : SLIM_X16_TOKENS;
        for (int64_t b = 0; b < nb; b++, o += PREP_BYTES * nc)
            for (int t = 0; t < nc; t++) {
                const block_q8_0 *x =
                    (const block_q8_0 *)((const char *)xq + (size_t)(t0 + t) * xs) + b;
                int32_t sum = 0;
                for (int j = 0; j < SLIM_QK8_0; j++)
                    sum += x->qs[j];
                const int32_t off = -8 * sum;
                const float d = slim_fp16_to_f32(x->d);
                memcpy(o + 32 * t, x->qs, 32);
                memcpy(o + PREP_SUMS(nc) + 4 * t, &off, 4);
                memcpy(o + PREP_SCALES(nc) + 4 * t, &d, 4);
            }
    }
}

/* Weight quant j (0..31) of row k in a block, offset removed. */
static int quant(const int q8, const void *block, int k, int j) {
    if (q8) return ((const block_q8_0x16 *)block)->qs[j / 4][k][j % 4] - 128;
    const uint8_t q = ((const block_q4_0x16 *)block)->qs[j % 16 / 4][k][j % 4];
    return (j < 16 ? q & 15 : q >> 4) - 8;
}

static void gemm_ref(const int q8, int64_t n, const void *packed, int64_t g0, int64_t g1,
                     const void *xq, size_t xs, int64_t n_tokens, float *y, int64_t ldy) {
    const int64_t nb = n / SLIM_QK8_0;
    const size_t bsize = q8 ? sizeof(block_q8_0x16) : sizeof(block_q4_0x16);
    for (int64_t g = g0; g < g1; g++)
        for (int64_t t = 0; t < n_tokens; t++) {
            const block_q8_0 *x = (const block_q8_0 *)((const char *)xq + (size_t)t * xs);
            for (int k = 0; k < SLIM_X16_ROWS; k++) {
                float acc = 0.0f;
                for (int64_t b = 0; b < nb; b++) {
                    const void *w = (const char *)packed + (size_t)(g * nb + b) * bsize;
                    int32_t isum = 0;
                    for (int j = 0; j < SLIM_QK8_0; j++)
                        isum += quant(q8, w, k, j) * x[b].qs[j];
                    const uint16_t dw =
                        q8 ? ((const block_q8_0x16 *)w)->d[k] : ((const block_q4_0x16 *)w)->d[k];
                    const float d = slim_fp16_to_f32(dw) * slim_fp16_to_f32(x[b].d);
                    acc = fmaf(d, (float)isum, acc);
                }
                y[t * ldy + g * SLIM_X16_ROWS + k] = acc;
            }
        }
}

void slim_q4_0x16_gemm_ref(int64_t n, const void *packed, int64_t g0, int64_t g1, const void *xq,
                           size_t xs, int64_t n_tokens, float *y, int64_t ldy) {
    gemm_ref(0, n, packed, g0, g1, xq, xs, n_tokens, y, ldy);
}

void slim_q8_0x16_gemm_ref(int64_t n, const void *packed, int64_t g0, int64_t g1, const void *xq,
                           size_t xs, int64_t n_tokens, float *y, int64_t ldy) {
    gemm_ref(1, n, packed, g0, g1, xq, xs, n_tokens, y, ldy);
}

#if X16_SIMD
/* One group of 16 rows x nc tokens (Q8 and nc compile-time constants in
 * each copy), xp at the tile's first block.  Q4_0: the unsigned nibbles;
 * Q8_0: the quants + 128.  Either way the offset (8 or 128 times the
 * activation block's sum) starts the token's integer sum.  The tokens' sums
 * are interleaved chunk by chunk so that nc independent vpdpbusd chains are
 * in flight (exact int32: the same isum in any order); the float steps stay
 * one mul and one fma per row, token and block, in block order. */
static inline __attribute__((always_inline)) void
tile(const int Q8, const int nc, int64_t nb, const char *w, const char *xp, float *y, int64_t ldy) {
    const size_t bsize = Q8 ? sizeof(block_q8_0x16) : sizeof(block_q4_0x16);
    __m512 acc[SLIM_X16_TOKENS];
#pragma GCC unroll 8
    for (int t = 0; t < nc; t++)
        acc[t] = _mm512_setzero_ps();
    const __m512i low = _mm512_set1_epi8(0x0F);
    for (int64_t b = 0; b < nb; b++, w += bsize, xp += PREP_BYTES * nc) {
        /* not Q8_0's decode: 10% slower with it, prefill 10% faster */
        if (!Q8 || nc > 1) slim_prefetch_ahead(w, bsize);
        __m512i q[8]; /* the unsigned quants of 4 bytes x 16 rows, element order */
        if (Q8) {
#pragma GCC unroll 8
            for (int c = 0; c < 8; c++)
                q[c] = _mm512_loadu_si512(((const block_q8_0x16 *)w)->qs[c]);
        } else {
#pragma GCC unroll 4
            for (int c = 0; c < 4; c++) {
                const __m512i v = _mm512_loadu_si512(((const block_q4_0x16 *)w)->qs[c]);
                q[c] = _mm512_and_si512(v, low);
                q[c + 4] = _mm512_and_si512(_mm512_srli_epi16(v, 4), low);
            }
        }
        const int8_t *xq = (const int8_t *)xp;
        __m512i s[SLIM_X16_TOKENS];
#pragma GCC unroll 8
        for (int t = 0; t < nc; t++) {
            const __m512i off = slim_bcast_i32x16(xp + PREP_SUMS(nc) + 4 * t); /* -8 sum(x) */
            s[t] = Q8 ? _mm512_slli_epi32(off, 4) : off;
        }
#pragma GCC unroll 8
        for (int c = 0; c < 8; c++)
#pragma GCC unroll 8
            for (int t = 0; t < nc; t++)
                s[t] = _mm512_dpbusd_epi32(s[t], q[c], slim_bcast_i32x16(xq + 32 * t + 4 * c));
        const __m512 dw = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)w)); /* d[16] */
        const float *dx = (const float *)(xp + PREP_SCALES(nc));
#pragma GCC unroll 8
        for (int t = 0; t < nc; t++) {
            const __m512 d = _mm512_mul_ps(dw, _mm512_set1_ps(dx[t]));
            acc[t] = _mm512_fmadd_ps(d, _mm512_cvtepi32_ps(s[t]), acc[t]);
        }
    }
#pragma GCC unroll 8
    for (int t = 0; t < nc; t++)
        _mm512_storeu_ps(y + t * ldy, acc[t]);
}

static inline __attribute__((always_inline)) void gemm(const int Q8, int64_t n, const void *packed,
                                                       int64_t g0, int64_t g1, const void *xp,
                                                       int64_t n_tokens, float *y, int64_t ldy) {
    const int64_t nb = n / SLIM_QK8_0;
    const size_t group = (size_t)nb * (Q8 ? sizeof(block_q8_0x16) : sizeof(block_q4_0x16));
    for (int64_t g = g0; g < g1; g++) {
        const char *w = (const char *)packed + (size_t)g * group;
        for (int64_t t = 0; t < n_tokens; t += SLIM_X16_TOKENS) {
            const char *xt = (const char *)xp + (size_t)t * (size_t)nb * PREP_BYTES;
            float *yt = y + g * SLIM_X16_ROWS + t * ldy;
            switch (n_tokens - t < SLIM_X16_TOKENS ? n_tokens - t : SLIM_X16_TOKENS) {
            case 8: tile(Q8, 8, nb, w, xt, yt, ldy); break;
            case 7: tile(Q8, 7, nb, w, xt, yt, ldy); break;
            case 6: tile(Q8, 6, nb, w, xt, yt, ldy); break;
            case 5: tile(Q8, 5, nb, w, xt, yt, ldy); break;
            case 4: tile(Q8, 4, nb, w, xt, yt, ldy); break;
            case 3: tile(Q8, 3, nb, w, xt, yt, ldy); break;
            case 2: tile(Q8, 2, nb, w, xt, yt, ldy); break;
            default: tile(Q8, 1, nb, w, xt, yt, ldy); break;
            }
        }
    }
}
_Static_assert(SLIM_X16_TOKENS == 8, "the switch above covers 1..8 tokens");

#else
/* No repacking at this level (slim_q4_0x16_available): a scalar loop over
 * the prepared activations, with the reference's numerics. */
static void gemm(const int q8, int64_t n, const void *packed, int64_t g0, int64_t g1,
                 const void *xp, int64_t n_tokens, float *y, int64_t ldy) {
    const int64_t nb = n / SLIM_QK8_0;
    const size_t bsize = q8 ? sizeof(block_q8_0x16) : sizeof(block_q4_0x16);
    for (int64_t g = g0; g < g1; g++)
        for (int64_t t = 0; t < n_tokens; t++) {
            const int64_t t0 = t - t % SLIM_X16_TOKENS;
            const int nc = n_tokens - t0 < SLIM_X16_TOKENS ? (int)(n_tokens - t0) : SLIM_X16_TOKENS;
            const char *xt = (const char *)xp + (size_t)t0 * (size_t)nb * PREP_BYTES;
            const int i = (int)(t - t0);
            for (int k = 0; k < SLIM_X16_ROWS; k++) {
                float acc = 0.0f;
                for (int64_t b = 0; b < nb; b++) {
                    const void *w = (const char *)packed + (size_t)(g * nb + b) * bsize;
                    const char *xb = xt + (size_t)b * PREP_BYTES * (size_t)nc;
                    int32_t isum = 0;
                    float dx;
                    for (int j = 0; j < SLIM_QK8_0; j++)
                        isum += quant(q8, w, k, j) * (int8_t)xb[32 * i + j];
                    memcpy(&dx, xb + PREP_SCALES(nc) + 4 * i, 4);
                    const uint16_t dw =
                        q8 ? ((const block_q8_0x16 *)w)->d[k] : ((const block_q4_0x16 *)w)->d[k];
                    acc = fmaf(slim_fp16_to_f32(dw) * dx, (float)isum, acc);
                }
                y[t * ldy + g * SLIM_X16_ROWS + k] = acc;
            }
        }
}
#endif

void slim_q4_0x16_gemm(int64_t n, const void *packed, int64_t g0, int64_t g1, const void *xp,
                       int64_t n_tokens, float *y, int64_t ldy) {
    gemm(0, n, packed, g0, g1, xp, n_tokens, y, ldy);
}

void slim_q8_0x16_gemm(int64_t n, const void *packed, int64_t g0, int64_t g1, const void *xp,
                       int64_t n_tokens, float *y, int64_t ldy) {
    gemm(1, n, packed, g0, g1, xp, n_tokens, y, ldy);
}
