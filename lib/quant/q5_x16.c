/* Q5_0 and Q5_1 repacked 16 rows to a group (layout and numerics:
 * q5_x16.h).  One register tile serves both; M (a compile-time constant in
 * each copy) says whether the format has mins (Q5_1). */
#include <math.h>
#include <string.h>

#include "core/fp16.h"
#include "quant/blocks.h"
#include "quant/legacy_x16.h"
#include "quant/q5_x16.h"

#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VNNI__)
#define X16_SIMD 1
#include <immintrin.h>

#include "core/simd_x86.h"
#else
#define X16_SIMD 0
#endif

typedef struct {
    uint16_t d[SLIM_X16_ROWS];
    uint64_t qh[8];
    uint8_t qs[4][SLIM_X16_ROWS][4];
} block_q5_0x16;
_Static_assert(sizeof(block_q5_0x16) == SLIM_X16_ROWS * sizeof(block_q5_0), "block_q5_0x16 size");

typedef struct {
    uint16_t d[SLIM_X16_ROWS];
    uint16_t m[SLIM_X16_ROWS];
    uint64_t qh[8];
    uint8_t qs[4][SLIM_X16_ROWS][4];
} block_q5_1x16;
_Static_assert(sizeof(block_q5_1x16) == SLIM_X16_ROWS * sizeof(block_q5_1), "block_q5_1x16 size");

bool slim_q5_x16_available(void) { return X16_SIMD; }

static uint32_t load_u32(const uint8_t *p) {
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

/* One row's block into slot k: d, the fifth bits (nibble c of qh goes to
 * chunk c's mask at bits 4k..4k+3) and the packed bytes. */
static void pack_row(uint16_t *d, uint64_t qh[8], uint8_t qs[4][SLIM_X16_ROWS][4], int k,
                     uint16_t dk, const uint8_t qhk[4], const uint8_t *qsk) {
    d[k] = dk;
    const uint32_t h = load_u32(qhk);
    for (int c = 0; c < 8; c++)
        qh[c] |= (uint64_t)(h >> (4 * c) & 15) << (4 * k);
    for (int c = 0; c < 4; c++)
        memcpy(qs[c][k], qsk + 4 * c, 4);
}

void slim_q5_0x16_pack(const void *src, size_t src_stride, int64_t n, int64_t rows, void *dst) {
    const int64_t nb = n / SLIM_QK5_0;
    block_q5_0x16 *out = dst;
    for (int64_t g = 0; g < rows / SLIM_X16_ROWS; g++)
        for (int64_t b = 0; b < nb; b++, out++) {
            memset(out->qh, 0, sizeof out->qh);
            for (int k = 0; k < SLIM_X16_ROWS; k++) {
                const block_q5_0 *in =
                    (const block_q5_0 *)((const char *)src +
                                         (size_t)(g * SLIM_X16_ROWS + k) * src_stride) +
                    b;
                pack_row(out->d, out->qh, out->qs, k, in->d, in->qh, in->qs);
            }
        }
}

void slim_q5_1x16_pack(const void *src, size_t src_stride, int64_t n, int64_t rows, void *dst) {
    const int64_t nb = n / SLIM_QK5_1;
    block_q5_1x16 *out = dst;
    for (int64_t g = 0; g < rows / SLIM_X16_ROWS; g++)
        for (int64_t b = 0; b < nb; b++, out++) {
            memset(out->qh, 0, sizeof out->qh);
            for (int k = 0; k < SLIM_X16_ROWS; k++) {
                const block_q5_1 *in =
                    (const block_q5_1 *)((const char *)src +
                                         (size_t)(g * SLIM_X16_ROWS + k) * src_stride) +
                    b;
                out->m[k] = in->m;
                pack_row(out->d, out->qh, out->qs, k, in->d, in->qh, in->qs);
            }
        }
}

/* The prepared activations' layout (legacy_x16.c): per block of a tile of
 * nc tokens the quants, the sums (Q5_0: int32 -8 sum(x); Q5_1: float s),
 * the scales. */
enum { PREP_BYTES = 40 }; /* per token and block */
#define PREP_SUMS(nc) (32 * (nc))
#define PREP_SCALES(nc) (36 * (nc))

/* The block's fields by format (M: Q5_1). */
#define BSIZE(M) ((M) ? sizeof(block_q5_1x16) : sizeof(block_q5_0x16))
#define FIELD(M, w, f) ((M) ? ((const block_q5_1x16 *)(w))->f : ((const block_q5_0x16 *)(w))->f)

/* Weight quant j (0..31) of row k in a block, 0..31 (Q5_0's -16 not applied). */
static int quant(const int M, const void *w, int k, int j) {
    const int c = j % 16 / 4, i = j % 4;
    const uint8_t q = FIELD(M, w, qs)[c][k][i];
    const int hc = j / 4; /* the fifth bit's chunk: element j = 4 hc + i */
    const int h = (int)(FIELD(M, w, qh)[hc] >> (4 * k + i) & 1);
    return (j < 16 ? q & 15 : q >> 4) | h << 4;
}

static void gemm_ref(const int M, int64_t n, const void *packed, int64_t g0, int64_t g1,
                     const void *xq, size_t xs, int64_t n_tokens, float *y, int64_t ldy) {
    const int64_t nb = n / 32;
    for (int64_t g = g0; g < g1; g++)
        for (int64_t t = 0; t < n_tokens; t++) {
            const char *xr = (const char *)xq + (size_t)t * xs;
            for (int k = 0; k < SLIM_X16_ROWS; k++) {
                float acc = 0.0f;
                for (int64_t b = 0; b < nb; b++) {
                    const void *w = (const char *)packed + (size_t)(g * nb + b) * BSIZE(M);
                    const int8_t *qx =
                        M ? ((const block_q8_1 *)xr)[b].qs : ((const block_q8_0 *)xr)[b].qs;
                    const uint16_t dxh =
                        M ? ((const block_q8_1 *)xr)[b].d : ((const block_q8_0 *)xr)[b].d;
                    int32_t isum = 0, xsum = 0; /* the offset through the sum: q_legacy.c's note */
                    for (int j = 0; j < 32; j++) {
                        isum += quant(M, w, k, j) * qx[j];
                        xsum += qx[j];
                    }
                    if (!M) isum -= 16 * xsum;
                    const float d = slim_fp16_to_f32(FIELD(M, w, d)[k]) * slim_fp16_to_f32(dxh);
                    acc = fmaf(d, (float)isum, acc);
                    if (M)
                        acc = fmaf(slim_fp16_to_f32(((const block_q5_1x16 *)w)->m[k]),
                                   slim_fp16_to_f32(((const block_q8_1 *)xr)[b].s), acc);
                }
                y[t * ldy + g * SLIM_X16_ROWS + k] = acc;
            }
        }
}

void slim_q5_0x16_gemm_ref(int64_t n, const void *packed, int64_t g0, int64_t g1, const void *xq,
                           size_t xs, int64_t n_tokens, float *y, int64_t ldy) {
    gemm_ref(0, n, packed, g0, g1, xq, xs, n_tokens, y, ldy);
}

void slim_q5_1x16_gemm_ref(int64_t n, const void *packed, int64_t g0, int64_t g1, const void *xq,
                           size_t xs, int64_t n_tokens, float *y, int64_t ldy) {
    gemm_ref(1, n, packed, g0, g1, xq, xs, n_tokens, y, ldy);
}

#if X16_SIMD
/* One group of 16 rows x nc tokens (M and nc compile-time constants in each
 * copy), xp at the tile's first block: q4_1_x16.c's tile with the fifth bits
 * or'ed in from their byte masks, and Q5_0's offset (-16 sum(x), twice the
 * prepared -8 sum(x)) starting the integer sums. */
static inline __attribute__((always_inline)) void
tile(const int M, const int nc, int64_t nb, const char *w, const char *xp, float *y, int64_t ldy) {
    enum { SPLIT = 2 };
    const int split = nc <= 2 ? SPLIT : 1;
    __m512 acc[SLIM_X16_TOKENS];
#pragma GCC unroll 8
    for (int t = 0; t < nc; t++)
        acc[t] = _mm512_setzero_ps();
    const __m512i low = _mm512_set1_epi8(0x0F), bit4 = _mm512_set1_epi8(0x10);
    for (int64_t b = 0; b < nb; b++, w += BSIZE(M), xp += PREP_BYTES * nc) {
        slim_prefetch_ahead(w, BSIZE(M));
        const uint64_t *qh = FIELD(M, w, qh);
        __m512i q[8]; /* the 5-bit quants of 4 bytes x 16 rows, element order */
#pragma GCC unroll 4
        for (int c = 0; c < 4; c++) {
            const __m512i v = _mm512_loadu_si512(FIELD(M, w, qs)[c]);
            q[c] = _mm512_mask_mov_epi8(_mm512_and_si512(v, low), (__mmask64)qh[c],
                                        _mm512_or_si512(_mm512_and_si512(v, low), bit4));
            const __m512i hi = _mm512_and_si512(_mm512_srli_epi16(v, 4), low);
            q[c + 4] = _mm512_mask_mov_epi8(hi, (__mmask64)qh[c + 4], _mm512_or_si512(hi, bit4));
        }
        const int8_t *xq = (const int8_t *)xp;
        __m512i s[SLIM_X16_TOKENS][SPLIT];
#pragma GCC unroll 8
        for (int t = 0; t < nc; t++) {
            s[t][0] = M ? _mm512_setzero_si512()
                        : _mm512_slli_epi32(slim_bcast_i32x16(xp + PREP_SUMS(nc) + 4 * t), 1);
            if (split == 2) s[t][1] = _mm512_setzero_si512();
        }
#pragma GCC unroll 8
        for (int c = 0; c < 8; c++)
#pragma GCC unroll 8
            for (int t = 0; t < nc; t++) {
                const int h = split == 2 ? c / 4 : 0;
                s[t][h] =
                    _mm512_dpbusd_epi32(s[t][h], q[c], slim_bcast_i32x16(xq + 32 * t + 4 * c));
            }
        const __m512 dw = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)FIELD(M, w, d)));
        const __m512 mw =
            M ? _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)((const block_q5_1x16 *)w)->m))
              : _mm512_setzero_ps();
        const float *sx = (const float *)(xp + PREP_SUMS(nc));
        const float *dx = (const float *)(xp + PREP_SCALES(nc));
#pragma GCC unroll 8
        for (int t = 0; t < nc; t++) {
            const __m512i st = split == 2 ? _mm512_add_epi32(s[t][0], s[t][1]) : s[t][0];
            const __m512 d = _mm512_mul_ps(dw, _mm512_set1_ps(dx[t]));
            acc[t] = _mm512_fmadd_ps(d, _mm512_cvtepi32_ps(st), acc[t]);
            if (M) acc[t] = _mm512_fmadd_ps(mw, _mm512_set1_ps(sx[t]), acc[t]);
        }
    }
#pragma GCC unroll 8
    for (int t = 0; t < nc; t++)
        _mm512_storeu_ps(y + t * ldy, acc[t]);
}

static inline __attribute__((always_inline)) void gemm(const int M, int64_t n, const void *packed,
                                                       int64_t g0, int64_t g1, const void *xp,
                                                       int64_t n_tokens, float *y, int64_t ldy) {
    const int64_t nb = n / 32;
    const size_t group = (size_t)nb * BSIZE(M);
    for (int64_t g = g0; g < g1; g++) {
        const char *w = (const char *)packed + (size_t)g * group;
        for (int64_t t = 0; t < n_tokens; t += SLIM_X16_TOKENS) {
            const char *xt = (const char *)xp + (size_t)t * (size_t)nb * PREP_BYTES;
            float *yt = y + g * SLIM_X16_ROWS + t * ldy;
            switch (n_tokens - t < SLIM_X16_TOKENS ? n_tokens - t : SLIM_X16_TOKENS) {
            case 8: tile(M, 8, nb, w, xt, yt, ldy); break;
            case 7: tile(M, 7, nb, w, xt, yt, ldy); break;
            case 6: tile(M, 6, nb, w, xt, yt, ldy); break;
            case 5: tile(M, 5, nb, w, xt, yt, ldy); break;
            case 4: tile(M, 4, nb, w, xt, yt, ldy); break;
            case 3: tile(M, 3, nb, w, xt, yt, ldy); break;
            case 2: tile(M, 2, nb, w, xt, yt, ldy); break;
            default: tile(M, 1, nb, w, xt, yt, ldy); break;
            }
        }
    }
}
_Static_assert(SLIM_X16_TOKENS == 8, "the switch above covers 1..8 tokens");

#else
/* No repacking at this level (slim_q5_x16_available): a scalar loop over
 * the prepared activations, with the reference's numerics. */
static void gemm(const int M, int64_t n, const void *packed, int64_t g0, int64_t g1, const void *xp,
                 int64_t n_tokens, float *y, int64_t ldy) {
    const int64_t nb = n / 32;
    for (int64_t g = g0; g < g1; g++)
        for (int64_t t = 0; t < n_tokens; t++) {
            const int64_t t0 = t - t % SLIM_X16_TOKENS;
            const int nc = n_tokens - t0 < SLIM_X16_TOKENS ? (int)(n_tokens - t0) : SLIM_X16_TOKENS;
            const char *xt = (const char *)xp + (size_t)t0 * (size_t)nb * PREP_BYTES;
            const int i = (int)(t - t0);
            for (int k = 0; k < SLIM_X16_ROWS; k++) {
                float acc = 0.0f;
                for (int64_t b = 0; b < nb; b++) {
                    const void *w = (const char *)packed + (size_t)(g * nb + b) * BSIZE(M);
                    const char *xb = xt + (size_t)b * PREP_BYTES * (size_t)nc;
                    int32_t isum = 0, xsum = 0;
                    float dx;
                    for (int j = 0; j < 32; j++) {
                        isum += quant(M, w, k, j) * (int8_t)xb[32 * i + j];
                        xsum += (int8_t)xb[32 * i + j];
                    }
                    if (!M) isum -= 16 * xsum;
                    memcpy(&dx, xb + PREP_SCALES(nc) + 4 * i, 4);
                    acc = fmaf(slim_fp16_to_f32(FIELD(M, w, d)[k]) * dx, (float)isum, acc);
                    if (M) {
                        float sx;
                        memcpy(&sx, xb + PREP_SUMS(nc) + 4 * i, 4);
                        acc = fmaf(slim_fp16_to_f32(((const block_q5_1x16 *)w)->m[k]), sx, acc);
                    }
                }
                y[t * ldy + g * SLIM_X16_ROWS + k] = acc;
            }
        }
}
#endif

void slim_q5_0x16_gemm(int64_t n, const void *packed, int64_t g0, int64_t g1, const void *xp,
                       int64_t n_tokens, float *y, int64_t ldy) {
    gemm(0, n, packed, g0, g1, xp, n_tokens, y, ldy);
}

void slim_q5_1x16_gemm(int64_t n, const void *packed, int64_t g0, int64_t g1, const void *xp,
                       int64_t n_tokens, float *y, int64_t ldy) {
    gemm(1, n, packed, g0, g1, xp, n_tokens, y, ldy);
}
