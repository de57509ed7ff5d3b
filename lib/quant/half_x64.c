/* F16 / BF16 repacked 64 rows to a group (layout and numerics: half_x64.h). */
#include <math.h>
#include <string.h>

#include "core/fp16.h"
#include "quant/half_x64.h"

#if defined(__AVX512F__)
#define X64_SIMD 1
#include <immintrin.h>

#include "core/simd_x86.h"
#else
#define X64_SIMD 0
#endif

bool slim_half_x64_available(void) { return X64_SIMD; }

void slim_half_x64_pack(const void *src, size_t src_stride, int64_t n, int64_t rows, void *dst) {
    enum { B = 32 }; /* elements per row per step: one cache line of each row */
    uint16_t *out = dst, tile[SLIM_X64_ROWS][B];
    for (int64_t g = 0; g < rows / SLIM_X64_ROWS; g++)
        /* rows lie src_stride apart (often 4 KiB: the same L1 set), so each
         * row's line is copied whole into `tile` and transposed from there */
        for (int64_t i0 = 0; i0 < n; i0 += B) {
            const int m = n - i0 < B ? (int)(n - i0) : B;
            for (int k = 0; k < SLIM_X64_ROWS; k++)
                memcpy(tile[k],
                       (const uint16_t *)((const char *)src +
                                          (size_t)(g * SLIM_X64_ROWS + k) * src_stride) +
                           i0,
                       (size_t)m * sizeof(uint16_t));
            for (int i = 0; i < m; i++)
                for (int k = 0; k < SLIM_X64_ROWS; k++)
                    *out++ = tile[k][i];
        }
}

void slim_half_x64_gemm_ref(bool bf16, int64_t n, const void *packed, int64_t g0, int64_t g1,
                            const float *x, size_t xs, int64_t n_tokens, float *y, int64_t ldy) {
    for (int64_t g = g0; g < g1; g++) {
        const uint16_t *w = (const uint16_t *)packed + (size_t)g * (size_t)n * SLIM_X64_ROWS;
        for (int64_t t = 0; t < n_tokens; t++)
            for (int k = 0; k < SLIM_X64_ROWS; k++) {
                float acc = 0.0f;
                for (int64_t i = 0; i < n; i++) {
                    const uint16_t h = w[(size_t)i * SLIM_X64_ROWS + k];
                    acc = fmaf(bf16 ? slim_bf16_to_f32(h) : slim_fp16_to_f32(h),
                               x[(size_t)t * xs + (size_t)i], acc);
                }
                y[t * ldy + g * SLIM_X64_ROWS + k] = acc;
            }
    }
}

#if X64_SIMD
enum { X64_C = 6 }; /* tokens per register tile: 4 x 6 accumulators */

/* BF: 0 F16, 1 BF16, 2 the float slice in the work area */
static inline __attribute__((always_inline)) __m512 widen(const int BF, const uint16_t *p) {
    if (BF == 2) return _mm512_load_ps((const float *)p);
    const __m256i h = _mm256_loadu_si256((const __m256i *)p);
    return BF ? _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16))
              : _mm512_cvtph_ps(h);
}

/* One group of 64 rows x nc tokens over n elements (BF and nc compile-time
 * constants), continuing from the sums in y unless first; PF: prefetch the
 * weights ahead (the first token tile of a pass, which reads them from DRAM)
 * and, with wf, store them widened there. */
static inline __attribute__((always_inline)) void tile(const int BF, const int nc, const int PF,
                                                       int64_t n, const uint16_t *w, const float *x,
                                                       size_t xs, float *y, int64_t ldy, bool first,
                                                       float *wf) {
    const int64_t step = BF == 2 ? 2 * SLIM_X64_ROWS : SLIM_X64_ROWS; /* in uint16_t */
    __m512 acc[4][X64_C];
#pragma GCC unroll 4
    for (int q = 0; q < 4; q++)
#pragma GCC unroll 8
        for (int c = 0; c < nc; c++)
            acc[q][c] = first ? _mm512_setzero_ps() : _mm512_loadu_ps(y + c * ldy + 16 * q);
    for (int64_t i = 0; i < n; i++, w += step) {
        if (PF) slim_prefetch_ahead(w, SLIM_X64_ROWS * 2);
        __m512 wv[4];
#pragma GCC unroll 4
        for (int q = 0; q < 4; q++)
            wv[q] = widen(BF, w + step / 4 * q);
        if (PF && wf)
#pragma GCC unroll 4
            for (int q = 0; q < 4; q++)
                _mm512_store_ps(wf + i * SLIM_X64_ROWS + 16 * q, wv[q]);
#pragma GCC unroll 8
        for (int c = 0; c < nc; c++) {
            const __m512 xv = _mm512_set1_ps(x[(size_t)c * xs + (size_t)i]);
#pragma GCC unroll 4
            for (int q = 0; q < 4; q++)
                acc[q][c] = _mm512_fmadd_ps(wv[q], xv, acc[q][c]);
        }
    }
#pragma GCC unroll 4
    for (int c = 0; c < nc; c++)
#pragma GCC unroll 4
        for (int q = 0; q < 4; q++)
            _mm512_storeu_ps(y + c * ldy + 16 * q, acc[q][c]);
}

/* Each pass (SLIM_X64_KC elements) continues the stored sums, so the fmas per
 * (row, token) are the same, in the same order, as one pass. */
static inline __attribute__((always_inline)) void gemm(const int BF, int64_t n, const void *packed,
                                                       int64_t g0, int64_t g1, const float *x,
                                                       size_t xs, int64_t n_tokens, float *y,
                                                       int64_t ldy, float *work) {
    const int64_t kc = n_tokens > 1 ? SLIM_X64_KC : n;
    /* from a second full tile on (build/repack -f F16: 2-3% faster at 512
     * tokens, within the noise at 48) */
    float *wf = n_tokens >= 2 * X64_C ? work : NULL;
    for (int64_t g = g0; g < g1; g++)
        for (int64_t k0 = 0; k0 < n; k0 += kc) {
            const int64_t kn = n - k0 < kc ? n - k0 : kc;
            const bool first = k0 == 0;
            const uint16_t *w =
                (const uint16_t *)packed + ((size_t)g * (size_t)n + (size_t)k0) * SLIM_X64_ROWS;
            const float *xk = x + k0;
            float *yg = y + g * SLIM_X64_ROWS;
            int64_t t = 0;
            if (X64_C <= n_tokens) { /* apart: a runtime PF test costs the loop 0.6% */
                tile(BF, X64_C, 1, kn, w, xk, xs, yg, ldy, first, wf);
                t = X64_C;
            }
            if (wf)
                for (; t + X64_C <= n_tokens; t += X64_C)
                    tile(2, X64_C, 0, kn, (const uint16_t *)wf, xk + (size_t)t * xs, xs,
                         yg + t * ldy, ldy, first, NULL);
            for (; t + X64_C <= n_tokens; t += X64_C)
                tile(BF, X64_C, 0, kn, w, xk + (size_t)t * xs, xs, yg + t * ldy, ldy, first, NULL);
            const float *xt = xk + (size_t)t * xs;
            float *yt = yg + t * ldy;
            switch (n_tokens - t) {
            case 5: tile(BF, 5, t == 0, kn, w, xt, xs, yt, ldy, first, NULL); break;
            case 4: tile(BF, 4, t == 0, kn, w, xt, xs, yt, ldy, first, NULL); break;
            case 3: tile(BF, 3, t == 0, kn, w, xt, xs, yt, ldy, first, NULL); break;
            case 2: tile(BF, 2, t == 0, kn, w, xt, xs, yt, ldy, first, NULL); break;
            case 1: tile(BF, 1, t == 0, kn, w, xt, xs, yt, ldy, first, NULL); break;
            default: break;
            }
        }
}

void slim_half_x64_gemm(bool bf16, int64_t n, const void *packed, int64_t g0, int64_t g1,
                        const float *x, size_t xs, int64_t n_tokens, float *y, int64_t ldy,
                        float *work) {
    if (bf16)
        gemm(1, n, packed, g0, g1, x, xs, n_tokens, y, ldy, work);
    else
        gemm(0, n, packed, g0, g1, x, xs, n_tokens, y, ldy, work);
}
#else
void slim_half_x64_gemm(bool bf16, int64_t n, const void *packed, int64_t g0, int64_t g1,
                        const float *x, size_t xs, int64_t n_tokens, float *y, int64_t ldy,
                        float *work) {
    (void)work;
    slim_half_x64_gemm_ref(bf16, n, packed, g0, g1, x, xs, n_tokens, y, ldy);
}
#endif
