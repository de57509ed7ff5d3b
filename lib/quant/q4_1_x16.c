/* Q4_1 repacked 16 rows to a group (layout and numerics: q4_1_x16.h). */
#include <math.h>
#include <string.h>

#include "core/fp16.h"
#include "quant/blocks.h"
#include "quant/legacy_x16.h"
#include "quant/q4_1_x16.h"

#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VNNI__)
#define X16_SIMD 1
#include <immintrin.h>

#include "core/simd_x86.h"
#else
#define X16_SIMD 0
#endif

typedef struct {
    uint16_t d[SLIM_X16_ROWS];
    uint16_t m[SLIM_X16_ROWS];
    uint8_t qs[4][SLIM_X16_ROWS][4];
} block_q4_1x16;
_Static_assert(sizeof(block_q4_1x16) == SLIM_X16_ROWS * sizeof(block_q4_1), "block_q4_1x16 size");

bool slim_q4_1x16_available(void) { return X16_SIMD; }

void slim_q4_1x16_pack(const void *src, size_t src_stride, int64_t n, int64_t rows, void *dst) {
    const int64_t nb = n / SLIM_QK4_1;
    block_q4_1x16 *out = dst;
    for (int64_t g = 0; g < rows / SLIM_X16_ROWS; g++)
        for (int64_t b = 0; b < nb; b++, out++)
            for (int k = 0; k < SLIM_X16_ROWS; k++) {
                const block_q4_1 *in =
                    (const block_q4_1 *)((const char *)src +
                                         (size_t)(g * SLIM_X16_ROWS + k) * src_stride) +
                    b;
                out->d[k] = in->d;
                out->m[k] = in->m;
                for (int c = 0; c < 4; c++)
                    memcpy(out->qs[c][k], in->qs + 4 * c, 4);
            }
}

/* Offsets in the prepared activations per block of a tile of nc tokens: the
 * quants, the Q8_1 sums s (float), the scales (legacy_x16.c's layout). */
enum { PREP_BYTES = 40 }; /* per token and block */
#define PREP_SUMS(nc) (32 * (nc))
#define PREP_SCALES(nc) (36 * (nc))

size_t slim_q4_1x16_prep_size(int64_t n, int64_t n_tokens) {
    return (size_t)n_tokens * (size_t)(n / SLIM_QK8_1) * PREP_BYTES;
}

void slim_q4_1x16_prep(int64_t n, const void *xq, size_t xs, int64_t n_tokens, void *xp) {
    const int64_t nb = n / SLIM_QK8_1;
    char *o = xp;
    for (int64_t t0 = 0; t0 < n_tokens; t0 += SLIM_X16_TOKENS) {
        const int nc = n_tokens - t0 < SLIM_X16_TOKENS ? (int)(n_tokens - t0) : SLIM_X16_TOKENS;
        for (int64_t b = 0; b < nb; b++, o += PREP_BYTES * nc)
            for (int t = 0; t < nc; t++) {
                const block_q8_1 *x =
                    (const block_q8_1 *)((const char *)xq + (size_t)(t0 + t) * xs) + b;
                const float s = slim_fp16_to_f32(x->s), d = slim_fp16_to_f32(x->d);
                memcpy(o + 32 * t, x->qs, 32);
                memcpy(o + PREP_SUMS(nc) + 4 * t, &s, 4);
                memcpy(o + PREP_SCALES(nc) + 4 * t, &d, 4);
            }
    }
}

/* Weight nibble j (0..31) of row k in a block. */
static int quant(const block_q4_1x16 *w, int k, int j) {
    const uint8_t q = w->qs[j % 16 / 4][k][j % 4];
    return j < 16 ? q & 15 : q >> 4;
}

void slim_q4_1x16_gemm_ref(int64_t n, const void *packed, int64_t g0, int64_t g1, const void *xq,
                           size_t xs, int64_t n_tokens, float *y, int64_t ldy) {
    const int64_t nb = n / SLIM_QK4_1;
    const block_q4_1x16 *pw = packed;
    for (int64_t g = g0; g < g1; g++)
        for (int64_t t = 0; t < n_tokens; t++) {
            const block_q8_1 *x = (const block_q8_1 *)((const char *)xq + (size_t)t * xs);
            for (int k = 0; k < SLIM_X16_ROWS; k++) {
                float acc = 0.0f;
                for (int64_t b = 0; b < nb; b++) {
                    const block_q4_1x16 *w = pw + g * nb + b;
                    int32_t isum = 0;
                    for (int j = 0; j < SLIM_QK4_1; j++)
                        isum += quant(w, k, j) * x[b].qs[j];
                    const float d = slim_fp16_to_f32(w->d[k]) * slim_fp16_to_f32(x[b].d);
                    acc = fmaf(d, (float)isum, acc);
                    acc = fmaf(slim_fp16_to_f32(w->m[k]), slim_fp16_to_f32(x[b].s), acc);
                }
                y[t * ldy + g * SLIM_X16_ROWS + k] = acc;
            }
        }
}

#if X16_SIMD
/* One group of 16 rows x nc tokens (nc a compile-time constant in each
 * copy), xp at the tile's first block.  The tokens' integer sums are
 * interleaved chunk by chunk (nc independent vpdpbusd chains; exact int32, so
 * the order does not matter); with one or two tokens each sum is split in
 * two chains (the low and high nibbles) added at the end, so that decode is
 * not one 8-deep chain per block.  The float steps are the reference's, in
 * block order. */
static inline __attribute__((always_inline)) void tile(const int nc, int64_t nb, const char *w,
                                                       const char *xp, float *y, int64_t ldy) {
    enum { SPLIT = 2 };
    const int split = nc <= 2 ? SPLIT : 1;
    __m512 acc[SLIM_X16_TOKENS];
#pragma GCC unroll 8
    for (int t = 0; t < nc; t++)
        acc[t] = _mm512_setzero_ps();
    const __m512i low = _mm512_set1_epi8(0x0F);
    for (int64_t b = 0; b < nb; b++, w += sizeof(block_q4_1x16), xp += PREP_BYTES * nc) {
        slim_prefetch_ahead(w, sizeof(block_q4_1x16));
        const block_q4_1x16 *bw = (const block_q4_1x16 *)w;
        __m512i q[8]; /* the nibbles of 4 bytes x 16 rows, element order */
#pragma GCC unroll 4
        for (int c = 0; c < 4; c++) {
            const __m512i v = _mm512_loadu_si512(bw->qs[c]);
            q[c] = _mm512_and_si512(v, low);
            q[c + 4] = _mm512_and_si512(_mm512_srli_epi16(v, 4), low);
        }
        const int8_t *xq = (const int8_t *)xp;
        __m512i s[SLIM_X16_TOKENS][SPLIT];
#pragma GCC unroll 8
        for (int t = 0; t < nc; t++)
#pragma GCC unroll 2
            for (int h = 0; h < split; h++)
                s[t][h] = _mm512_setzero_si512();
#pragma GCC unroll 8
        for (int c = 0; c < 8; c++)
#pragma GCC unroll 8
            for (int t = 0; t < nc; t++) {
                const int h = split == 2 ? c / 4 : 0;
                s[t][h] =
                    _mm512_dpbusd_epi32(s[t][h], q[c], slim_bcast_i32x16(xq + 32 * t + 4 * c));
            }
        const __m512 dw = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)bw->d));
        const __m512 mw = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)bw->m));
        const float *sx = (const float *)(xp + PREP_SUMS(nc));
        const float *dx = (const float *)(xp + PREP_SCALES(nc));
#pragma GCC unroll 8
        for (int t = 0; t < nc; t++) {
            const __m512i st = split == 2 ? _mm512_add_epi32(s[t][0], s[t][1]) : s[t][0];
            const __m512 d = _mm512_mul_ps(dw, _mm512_set1_ps(dx[t]));
            acc[t] = _mm512_fmadd_ps(d, _mm512_cvtepi32_ps(st), acc[t]);
            acc[t] = _mm512_fmadd_ps(mw, _mm512_set1_ps(sx[t]), acc[t]);
        }
    }
#pragma GCC unroll 8
    for (int t = 0; t < nc; t++)
        _mm512_storeu_ps(y + t * ldy, acc[t]);
}

static void gemm(int64_t n, const void *packed, int64_t g0, int64_t g1, const void *xp,
                 int64_t n_tokens, float *y, int64_t ldy) {
    const int64_t nb = n / SLIM_QK4_1;
    const size_t group = (size_t)nb * sizeof(block_q4_1x16);
    for (int64_t g = g0; g < g1; g++) {
        const char *w = (const char *)packed + (size_t)g * group;
        for (int64_t t = 0; t < n_tokens; t += SLIM_X16_TOKENS) {
            const char *xt = (const char *)xp + (size_t)t * (size_t)nb * PREP_BYTES;
            float *yt = y + g * SLIM_X16_ROWS + t * ldy;
            switch (n_tokens - t < SLIM_X16_TOKENS ? n_tokens - t : SLIM_X16_TOKENS) {
            case 8: tile(8, nb, w, xt, yt, ldy); break;
            case 7: tile(7, nb, w, xt, yt, ldy); break;
            case 6: tile(6, nb, w, xt, yt, ldy); break;
            case 5: tile(5, nb, w, xt, yt, ldy); break;
            case 4: tile(4, nb, w, xt, yt, ldy); break;
            case 3: tile(3, nb, w, xt, yt, ldy); break;
            case 2: tile(2, nb, w, xt, yt, ldy); break;
            default: tile(1, nb, w, xt, yt, ldy); break;
            }
        }
    }
}
_Static_assert(SLIM_X16_TOKENS == 8, "the switch above covers 1..8 tokens");

#else
/* No repacking at this level (slim_q4_1x16_available): a scalar loop over
 * the prepared activations, with the reference's numerics. */
static void gemm(int64_t n, const void *packed, int64_t g0, int64_t g1, const void *xp,
                 int64_t n_tokens, float *y, int64_t ldy) {
    const int64_t nb = n / SLIM_QK4_1;
    const block_q4_1x16 *pw = packed;
    for (int64_t g = g0; g < g1; g++)
        for (int64_t t = 0; t < n_tokens; t++) {
            const int64_t t0 = t - t % SLIM_X16_TOKENS;
            const int nc = n_tokens - t0 < SLIM_X16_TOKENS ? (int)(n_tokens - t0) : SLIM_X16_TOKENS;
            const char *xt = (const char *)xp + (size_t)t0 * (size_t)nb * PREP_BYTES;
            const int i = (int)(t - t0);
            for (int k = 0; k < SLIM_X16_ROWS; k++) {
                float acc = 0.0f;
                for (int64_t b = 0; b < nb; b++) {
                    const block_q4_1x16 *w = pw + g * nb + b;
                    const char *xb = xt + (size_t)b * PREP_BYTES * (size_t)nc;
                    int32_t isum = 0;
                    float dx, sx;
                    for (int j = 0; j < SLIM_QK4_1; j++)
                        isum += quant(w, k, j) * (int8_t)xb[32 * i + j];
                    memcpy(&dx, xb + PREP_SCALES(nc) + 4 * i, 4);
                    memcpy(&sx, xb + PREP_SUMS(nc) + 4 * i, 4);
                    acc = fmaf(slim_fp16_to_f32(w->d[k]) * dx, (float)isum, acc);
                    acc = fmaf(slim_fp16_to_f32(w->m[k]), sx, acc);
                }
                y[t * ldy + g * SLIM_X16_ROWS + k] = acc;
            }
        }
}
#endif

void slim_q4_1x16_gemm(int64_t n, const void *packed, int64_t g0, int64_t g1, const void *xp,
                       int64_t n_tokens, float *y, int64_t ldy) {
    gemm(n, packed, g0, g1, xp, n_tokens, y, ldy);
}
