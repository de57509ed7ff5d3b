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

#if defined(__AVX512F__)
/* AVX-512: a tile of up to 4 weight rows x 4 tokens, 16 elements per step,
 * one FMA per (row, token) into its own 16 lanes; lane sums added in order,
 * then the tail.  vec_dot is the 1 x 1 tile, so gemm == vec_dot bitwise.
 * BF (0: F16 via vcvtph2ps, 1: BF16, the bits shifted into a float's top
 * half) is a compile-time constant in every instance. */
enum { F16_R = 4, F16_C = 4 };

static inline __attribute__((always_inline)) void half_tile(const int BF, int64_t n,
                                                            const uint16_t *w, size_t ws,
                                                            const float *x, size_t xs, int nr,
                                                            int nc, float *y, int64_t ldy) {
    __m512 acc[F16_R][F16_C];
#pragma GCC unroll 4
    for (int r = 0; r < nr; r++)
#pragma GCC unroll 8
        for (int c = 0; c < nc; c++)
            acc[r][c] = _mm512_setzero_ps();
    int64_t i = 0;
    for (; i + NACC <= n; i += NACC) {
        __m512 wv[F16_R];
#pragma GCC unroll 4
        for (int r = 0; r < nr; r++) {
            const __m256i h = _mm256_loadu_si256((const __m256i *)(w + (size_t)r * ws + i));
            wv[r] = BF ? _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16))
                       : _mm512_cvtph_ps(h);
        }
#pragma GCC unroll 8
        for (int c = 0; c < nc; c++) {
            __m512 xv = _mm512_loadu_ps(x + (size_t)c * xs + i);
            __asm__("" : "+v"(xv)); /* one load per token, not one per FMA (load-port bound) */
#pragma GCC unroll 4
            for (int r = 0; r < nr; r++)
                acc[r][c] = _mm512_fmadd_ps(wv[r], xv, acc[r][c]);
        }
    }
#pragma GCC unroll 4
    for (int r = 0; r < nr; r++)
#pragma GCC unroll 8
        for (int c = 0; c < nc; c++) {
            float a[NACC];
            _mm512_storeu_ps(a, acc[r][c]);
            float s = sum_acc(a);
            const uint16_t *wr = w + (size_t)r * ws;
            const float *xc = x + (size_t)c * xs;
            for (int64_t k = i; k < n; k++)
                s += (BF ? slim_bf16_to_f32(wr[k]) : slim_fp16_to_f32(wr[k])) * xc[k];
            y[c * ldy + r] = s;
        }
}

/* rows [r0, r1) x tokens; strides in bytes as the traits say */
static inline __attribute__((always_inline)) void
half_gemm(const int BF, int64_t n, const void *vw, size_t ws, int64_t r0, int64_t r1,
          const void *vx, size_t xs, int64_t n_tokens, float *y, int64_t ldy) {
    const size_t wse = ws / sizeof(uint16_t), xse = xs / sizeof(float);
    for (int64_t t = 0; t < n_tokens; t += F16_C) {
        const int nc = n_tokens - t < F16_C ? (int)(n_tokens - t) : F16_C;
        const float *xt = (const float *)vx + (size_t)t * xse;
        for (int64_t r = r0; r < r1; r += F16_R) {
            const int nr = r1 - r < F16_R ? (int)(r1 - r) : F16_R;
            const uint16_t *wr = (const uint16_t *)vw + (size_t)r * wse;
            float *yt = y + t * ldy + r;
            if (nr == F16_R && nc == F16_C)
                half_tile(BF, n, wr, wse, xt, xse, F16_R, F16_C, yt, ldy);
            else /* ragged edges: one (row, token) at a time */
                for (int c = 0; c < nc; c++)
                    for (int k = 0; k < nr; k++)
                        half_tile(BF, n, wr + (size_t)k * wse, wse, xt + (size_t)c * xse, xse, 1, 1,
                                  yt + c * ldy + k, ldy);
        }
    }
}

static float f16_vec_dot(int64_t n, const void *vw, const void *vx) {
    float y;
    half_tile(0, n, vw, 0, vx, 0, 1, 1, &y, 0);
    return y;
}
static float bf16_vec_dot(int64_t n, const void *vw, const void *vx) {
    float y;
    half_tile(1, n, vw, 0, vx, 0, 1, 1, &y, 0);
    return y;
}
static void f16_gemm(int64_t n, const void *w, size_t ws, int64_t r0, int64_t r1, const void *x,
                     size_t xs, int64_t n_tokens, float *y, int64_t ldy, void *work,
                     size_t work_size) {
    half_gemm(0, n, w, ws, r0, r1, x, xs, n_tokens, y, ldy);
}
static void bf16_gemm(int64_t n, const void *w, size_t ws, int64_t r0, int64_t r1, const void *x,
                      size_t xs, int64_t n_tokens, float *y, int64_t ldy, void *work,
                      size_t work_size) {
    half_gemm(1, n, w, ws, r0, r1, x, xs, n_tokens, y, ldy);
}
#define F16_GEMM f16_gemm
#define BF16_GEMM bf16_gemm
#else
#define F16_GEMM NULL
#define BF16_GEMM NULL
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
#endif

static void bf16_to_float(const void *src, float *dst, int64_t n) {
    const uint16_t *s = src;
    for (int64_t i = 0; i < n; i++)
        dst[i] = slim_bf16_to_f32(s[i]);
}

#if !defined(__AVX512F__)
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
#endif

const slim_dtype_traits slim_traits_f32 = {
    .name = "F32",
    .block_size = 1,
    .type_size = 4,
    .quantized = false,
    .to_float = f32_to_float,
    .from_float = slim_f32_from_float,
    .vec_dot_type = SLIM_DTYPE_F32,
    .vec_dot = f32_vec_dot,
};

const slim_dtype_traits slim_traits_f16 = {
    .name = "F16",
    .block_size = 1,
    .type_size = 2,
    .quantized = false,
    .to_float = f16_to_float,
    .from_float = slim_f16_from_float,
    .vec_dot_type = SLIM_DTYPE_F32,
    .vec_dot = f16_vec_dot,
    .gemm = F16_GEMM,
};

const slim_dtype_traits slim_traits_bf16 = {
    .name = "BF16",
    .block_size = 1,
    .type_size = 2,
    .quantized = false,
    .to_float = bf16_to_float,
    .from_float = slim_bf16_from_float,
    .vec_dot_type = SLIM_DTYPE_F32,
    .vec_dot = bf16_vec_dot,
    .gemm = BF16_GEMM,
};
