/* Weight quantizers from F32 for writing model files, as llama-quantize
 * writes them without an importance matrix: Q4_0, Q4_1, Q5_0, Q5_1, Q8_0 as
 * GGML's quantize_row_*_ref, Q4_K, Q5_K, Q6_K as quantize_row_q*_K_ref, and
 * F16/BF16 through their traits' from_float (round to nearest even).
 *
 * GGML converts the scaled values with a plain (int8_t) cast.  For a block of
 * denormals the inverse scale overflows to inf and that cast meets inf or NaN
 * (undefined in C; x86's conversion yields INT_MIN, low byte 0): trunc_i8
 * gives that result without the undefined behaviour, so such blocks come out
 * bitwise as llama.cpp's too.
 *
 * The K-quant searches are transcribed operation for operation: every float
 * sum is accumulated in the same order and rounded with the same
 * nearest_int, so the bytes equal llama.cpp's (tests/unit/test_convert.c
 * checks them against llama_model_quantize's output). */
#include <float.h>
#include <math.h>
#include <string.h>

#include "core/fp16.h"
#include "quant/blocks.h"
#include "quant/dtype.h"

#define GROUP_MAX_EPS 1e-15f

/* Round to nearest, ties to even, for |x| <= 2^22 (GGML's trick: the float
 * sum puts the integer in the low mantissa bits). */
static inline int nearest_int(float x) {
    float v = x + 12582912.f;
    int32_t i;
    memcpy(&i, &v, sizeof i);
    return (i & 0x007fffff) - 0x00400000;
}

/* (int8_t)v as GGML's x86 builds compute it: truncate to int32 (INT_MIN when
 * out of range or NaN), keep the low byte. */
static inline int8_t trunc_i8(float v) {
    int32_t i = v > -2147483648.0f && v < 2147483648.0f ? (int32_t)v : INT32_MIN;
    return (int8_t)(uint8_t)((uint32_t)i & 0xff);
}

static inline int imin(int a, int b) { return a < b ? a : b; }
static inline int imax(int a, int b) { return a > b ? a : b; }

/* ---- legacy formats: 32-element blocks ------------------------------------- */

/* The value of largest magnitude (the first of equal ones), sign kept. */
static float signed_absmax(const float *x, int n) {
    float amax = 0.0f, max = 0.0f;
    for (int j = 0; j < n; j++)
        if (amax < fabsf(x[j])) amax = fabsf(x[j]), max = x[j];
    return max;
}

static void q4_0_quantize(const float *restrict x, void *dst, int64_t n) {
    block_q4_0 *y = dst;
    for (int64_t i = 0; i < n / SLIM_QK4_0; i++, x += SLIM_QK4_0) {
        const float d = signed_absmax(x, SLIM_QK4_0) / -8;
        const float id = d ? 1.0f / d : 0.0f;
        y[i].d = slim_f32_to_fp16(d);
        for (int j = 0; j < SLIM_QK4_0 / 2; j++) {
            const uint8_t a = (uint8_t)imin(15, trunc_i8(x[j] * id + 8.5f));
            const uint8_t b = (uint8_t)imin(15, trunc_i8(x[j + SLIM_QK4_0 / 2] * id + 8.5f));
            y[i].qs[j] = (uint8_t)(a | b << 4);
        }
    }
}

static void q4_1_quantize(const float *restrict x, void *dst, int64_t n) {
    block_q4_1 *y = dst;
    for (int64_t i = 0; i < n / SLIM_QK4_1; i++, x += SLIM_QK4_1) {
        float lo = FLT_MAX, hi = -FLT_MAX;
        for (int j = 0; j < SLIM_QK4_1; j++) {
            if (x[j] < lo) lo = x[j];
            if (x[j] > hi) hi = x[j];
        }
        const float d = (hi - lo) / 15;
        const float id = d ? 1.0f / d : 0.0f;
        y[i].d = slim_f32_to_fp16(d);
        y[i].m = slim_f32_to_fp16(lo);
        for (int j = 0; j < SLIM_QK4_1 / 2; j++) {
            const uint8_t a = (uint8_t)imin(15, trunc_i8((x[j] - lo) * id + 0.5f));
            const uint8_t b = (uint8_t)imin(15, trunc_i8((x[j + SLIM_QK4_1 / 2] - lo) * id + 0.5f));
            y[i].qs[j] = (uint8_t)(a | b << 4);
        }
    }
}

static void q5_0_quantize(const float *restrict x, void *dst, int64_t n) {
    block_q5_0 *y = dst;
    for (int64_t i = 0; i < n / SLIM_QK5_0; i++, x += SLIM_QK5_0) {
        const float d = signed_absmax(x, SLIM_QK5_0) / -16;
        const float id = d ? 1.0f / d : 0.0f;
        y[i].d = slim_f32_to_fp16(d);
        uint32_t qh = 0;
        for (int j = 0; j < SLIM_QK5_0 / 2; j++) {
            const uint8_t a = (uint8_t)imin(31, trunc_i8(x[j] * id + 16.5f));
            const uint8_t b = (uint8_t)imin(31, trunc_i8(x[j + SLIM_QK5_0 / 2] * id + 16.5f));
            y[i].qs[j] = (uint8_t)((a & 0x0F) | (b & 0x0F) << 4);
            qh |= (uint32_t)((a & 0x10u) >> 4) << j;
            qh |= (uint32_t)((b & 0x10u) >> 4) << (j + SLIM_QK5_0 / 2);
        }
        memcpy(y[i].qh, &qh, sizeof qh);
    }
}

static void q5_1_quantize(const float *restrict x, void *dst, int64_t n) {
    block_q5_1 *y = dst;
    for (int64_t i = 0; i < n / SLIM_QK5_1; i++, x += SLIM_QK5_1) {
        float lo = FLT_MAX, hi = -FLT_MAX;
        for (int j = 0; j < SLIM_QK5_1; j++) {
            if (x[j] < lo) lo = x[j];
            if (x[j] > hi) hi = x[j];
        }
        const float d = (hi - lo) / 31;
        const float id = d ? 1.0f / d : 0.0f;
        y[i].d = slim_f32_to_fp16(d);
        y[i].m = slim_f32_to_fp16(lo);
        uint32_t qh = 0;
        for (int j = 0; j < SLIM_QK5_1 / 2; j++) { /* GGML: (uint8_t), no clamp */
            const uint8_t a = (uint8_t)trunc_i8((x[j] - lo) * id + 0.5f);
            const uint8_t b = (uint8_t)trunc_i8((x[j + SLIM_QK5_1 / 2] - lo) * id + 0.5f);
            y[i].qs[j] = (uint8_t)((a & 0x0F) | (b & 0x0F) << 4);
            qh |= (uint32_t)((a & 0x10u) >> 4) << j;
            qh |= (uint32_t)((b & 0x10u) >> 4) << (j + SLIM_QK5_1 / 2);
        }
        memcpy(y[i].qh, &qh, sizeof qh);
    }
}

static void q8_0_quantize(const float *restrict x, void *dst, int64_t n) {
    block_q8_0 *y = dst;
    for (int64_t i = 0; i < n / SLIM_QK8_0; i++, x += SLIM_QK8_0) {
        float amax = 0.0f;
        for (int j = 0; j < SLIM_QK8_0; j++)
            amax = amax > fabsf(x[j]) ? amax : fabsf(x[j]);
        const float d = amax / 127;
        const float id = d ? 1.0f / d : 0.0f;
        y[i].d = slim_f32_to_fp16(d);
        for (int j = 0; j < SLIM_QK8_0; j++)
            y[i].qs[j] = trunc_i8(roundf(x[j] * id));
    }
}

/* ---- K-quants: 256-element super-blocks ------------------------------------- */

/* Scale and min for n values quantized to 0..nmax (x ~ scale*L - min): start
 * from the min/max grid, then try nstep+1 stretched grids, each followed by a
 * weighted least-squares fit of scale and min; keep the lowest weighted
 * squared error.  Returns the scale, *neg_min = -min (min clamped to <= 0). */
static float fit_scale_min(int n, int nmax, const float *x, const float *w, uint8_t *L,
                           float *neg_min, uint8_t *Laux, float rmin, float rdelta, int nstep) {
    float lo = x[0], hi = x[0];
    float sum_w = w[0], sum_x = sum_w * x[0];
    for (int i = 1; i < n; i++) {
        if (x[i] < lo) lo = x[i];
        if (x[i] > hi) hi = x[i];
        sum_w += w[i];
        sum_x += w[i] * x[i];
    }
    if (lo > 0) lo = 0;
    if (hi == lo) {
        memset(L, 0, (size_t)n);
        *neg_min = -lo;
        return 0.f;
    }
    float iscale = nmax / (hi - lo);
    float scale = 1 / iscale;
    float best = 0;
    for (int i = 0; i < n; i++) {
        int l = nearest_int(iscale * (x[i] - lo));
        L[i] = (uint8_t)imax(0, imin(nmax, l));
        float diff = scale * L[i] + lo - x[i];
        best += w[i] * (diff * diff);
    }
    for (int is = 0; is <= nstep; is++) {
        iscale = (rmin + rdelta * is + nmax) / (hi - lo);
        float sum_l = 0, sum_l2 = 0, sum_xl = 0;
        for (int i = 0; i < n; i++) {
            int l = imax(0, imin(nmax, nearest_int(iscale * (x[i] - lo))));
            Laux[i] = (uint8_t)l;
            sum_l += w[i] * l;
            sum_l2 += w[i] * l * l;
            sum_xl += w[i] * l * x[i];
        }
        float D = sum_w * sum_l2 - sum_l * sum_l;
        if (D > 0) {
            float this_scale = (sum_w * sum_xl - sum_x * sum_l) / D;
            float this_min = (sum_l2 * sum_x - sum_l * sum_xl) / D;
            if (this_min > 0) {
                this_min = 0;
                this_scale = sum_xl / sum_l2;
            }
            float err = 0;
            for (int i = 0; i < n; i++) {
                float diff = this_scale * Laux[i] + this_min - x[i];
                err += w[i] * (diff * diff);
            }
            if (err < best) {
                memcpy(L, Laux, (size_t)n);
                best = err;
                scale = this_scale;
                lo = this_min;
            }
        }
    }
    *neg_min = -lo;
    return scale;
}

/* Symmetric scale for n values quantized to -nmax..nmax-1 (stored + nmax),
 * weighted by x^2: the max-based scale refined over 18 nearby grids. */
static float fit_scale_sym(int n, int nmax, const float *x, int8_t *L) {
    float amax = 0, max = 0;
    for (int i = 0; i < n; i++) {
        float ax = fabsf(x[i]);
        if (ax > amax) {
            amax = ax;
            max = x[i];
        }
    }
    if (amax < GROUP_MAX_EPS) {
        memset(L, 0, (size_t)n);
        return 0.f;
    }
    float iscale = -nmax / max;
    float sumlx = 0, suml2 = 0;
    for (int i = 0; i < n; i++) {
        int l = imax(-nmax, imin(nmax - 1, nearest_int(iscale * x[i])));
        L[i] = (int8_t)(l + nmax);
        float w = x[i] * x[i];
        sumlx += w * x[i] * l;
        suml2 += w * l * l;
    }
    float scale = suml2 ? sumlx / suml2 : 0.0f;
    float best = scale * sumlx;
    for (int is = -9; is <= 9; is++) {
        if (is == 0) continue;
        iscale = -(nmax + 0.1f * is) / max;
        sumlx = suml2 = 0;
        for (int i = 0; i < n; i++) {
            int l = imax(-nmax, imin(nmax - 1, nearest_int(iscale * x[i])));
            float w = x[i] * x[i];
            sumlx += w * x[i] * l;
            suml2 += w * l * l;
        }
        if (suml2 > 0 && sumlx * sumlx > best * suml2) {
            for (int i = 0; i < n; i++)
                L[i] = (int8_t)(nmax + imax(-nmax, imin(nmax - 1, nearest_int(iscale * x[i]))));
            scale = sumlx / suml2;
            best = scale * sumlx;
        }
    }
    return scale;
}

static inline void scale_min_k4(int j, const uint8_t *q, uint8_t *d, uint8_t *m) {
    if (j < 4) {
        *d = q[j] & 63;
        *m = q[j + 4] & 63;
    } else {
        *d = (uint8_t)((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4));
        *m = (uint8_t)((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
    }
}

/* The part Q4_K and Q5_K share: 8 sub-blocks of 32 with 6-bit scales and
 * mins, then the final levels 0..nmax in L against the rounded scales. */
static void k_scales_mins(const float *x, int nmax, float rmin, int nstep, uint8_t *scales_out,
                          uint16_t *d_out, uint16_t *dmin_out, uint8_t *L) {
    float scales[8], mins[8], weights[32];
    uint8_t Laux[32];
    float max_scale = 0, max_min = 0;
    for (int j = 0; j < 8; j++) {
        float sum_x2 = 0;
        for (int l = 0; l < 32; l++)
            sum_x2 += x[32 * j + l] * x[32 * j + l];
        float av_x = sqrtf(sum_x2 / 32);
        for (int l = 0; l < 32; l++)
            weights[l] = av_x + fabsf(x[32 * j + l]);
        scales[j] = fit_scale_min(32, nmax, x + 32 * j, weights, L + 32 * j, &mins[j], Laux, rmin,
                                  0.1f, nstep);
        if (scales[j] > max_scale) max_scale = scales[j];
        if (mins[j] > max_min) max_min = mins[j];
    }
    float inv_scale = max_scale > 0 ? 63.f / max_scale : 0.f;
    float inv_min = max_min > 0 ? 63.f / max_min : 0.f;
    memset(scales_out, 0, SLIM_K_SCALE_SIZE);
    for (int j = 0; j < 8; j++) {
        uint8_t ls = (uint8_t)nearest_int(inv_scale * scales[j]);
        uint8_t lm = (uint8_t)nearest_int(inv_min * mins[j]);
        ls = ls < 63 ? ls : 63;
        lm = lm < 63 ? lm : 63;
        if (j < 4) {
            scales_out[j] = ls;
            scales_out[j + 4] = lm;
        } else {
            scales_out[j + 4] = (uint8_t)((ls & 0xF) | ((lm & 0xF) << 4));
            scales_out[j - 4] |= (uint8_t)((ls >> 4) << 6);
            scales_out[j] |= (uint8_t)((lm >> 4) << 6);
        }
    }
    *d_out = slim_f32_to_fp16(max_scale / 63.f);
    *dmin_out = slim_f32_to_fp16(max_min / 63.f);
    for (int j = 0; j < 8; j++) {
        uint8_t sc, m;
        scale_min_k4(j, scales_out, &sc, &m);
        const float d = slim_fp16_to_f32(*d_out) * sc;
        if (!d) continue;
        const float dm = slim_fp16_to_f32(*dmin_out) * m;
        for (int i = 0; i < 32; i++)
            L[32 * j + i] = (uint8_t)imax(0, imin(nmax, nearest_int((x[32 * j + i] + dm) / d)));
    }
}

static void q4_k_quantize(const float *restrict x, void *dst, int64_t n) {
    block_q4_K *y = dst;
    uint8_t L[SLIM_QK_K];
    for (int64_t i = 0; i < n / SLIM_QK_K; i++, x += SLIM_QK_K) {
        k_scales_mins(x, 15, -1.f, 20, y[i].scales, &y[i].d, &y[i].dmin, L);
        uint8_t *q = y[i].qs;
        for (int j = 0; j < SLIM_QK_K; j += 64, q += 32)
            for (int l = 0; l < 32; l++)
                q[l] = (uint8_t)(L[j + l] | (L[j + l + 32] << 4));
    }
}

static void q5_k_quantize(const float *restrict x, void *dst, int64_t n) {
    block_q5_K *y = dst;
    uint8_t L[SLIM_QK_K];
    for (int64_t i = 0; i < n / SLIM_QK_K; i++, x += SLIM_QK_K) {
        k_scales_mins(x, 31, -0.5f, 15, y[i].scales, &y[i].d, &y[i].dmin, L);
        uint8_t *qh = y[i].qh, *ql = y[i].qs;
        memset(qh, 0, SLIM_QK_K / 8);
        uint8_t m1 = 1, m2 = 2;
        for (int b = 0; b < SLIM_QK_K; b += 64, ql += 32, m1 <<= 2, m2 <<= 2) {
            for (int j = 0; j < 32; j++) {
                int l1 = L[b + j], l2 = L[b + j + 32];
                if (l1 > 15) l1 -= 16, qh[j] |= m1;
                if (l2 > 15) l2 -= 16, qh[j] |= m2;
                ql[j] = (uint8_t)(l1 | (l2 << 4));
            }
        }
    }
}

static void q6_k_quantize(const float *restrict x, void *dst, int64_t n) {
    block_q6_K *y = dst;
    int8_t L[SLIM_QK_K];
    float scales[SLIM_QK_K / 16];
    for (int64_t i = 0; i < n / SLIM_QK_K; i++, x += SLIM_QK_K) {
        float max_scale = 0, max_abs_scale = 0;
        for (int ib = 0; ib < SLIM_QK_K / 16; ib++) {
            const float scale = fit_scale_sym(16, 32, x + 16 * ib, L + 16 * ib);
            scales[ib] = scale;
            if (fabsf(scale) > max_abs_scale) {
                max_abs_scale = fabsf(scale);
                max_scale = scale;
            }
        }
        if (max_abs_scale < GROUP_MAX_EPS) {
            memset(&y[i], 0, sizeof y[i]);
            continue;
        }
        float iscale = -128.f / max_scale;
        y[i].d = slim_f32_to_fp16(1 / iscale);
        for (int ib = 0; ib < SLIM_QK_K / 16; ib++)
            y[i].scales[ib] = (int8_t)imin(127, nearest_int(iscale * scales[ib]));
        for (int j = 0; j < SLIM_QK_K / 16; j++) {
            float d = slim_fp16_to_f32(y[i].d) * y[i].scales[j];
            if (!d) continue;
            for (int k = 0; k < 16; k++)
                L[16 * j + k] = (int8_t)(imax(-32, imin(31, nearest_int(x[16 * j + k] / d))) + 32);
        }
        uint8_t *ql = y[i].ql, *qh = y[i].qh;
        for (int j = 0; j < SLIM_QK_K; j += 128, ql += 64, qh += 32) {
            for (int l = 0; l < 32; l++) {
                const uint8_t q1 = L[j + l] & 0xF, q2 = L[j + l + 32] & 0xF,
                              q3 = L[j + l + 64] & 0xF, q4 = L[j + l + 96] & 0xF;
                ql[l] = (uint8_t)(q1 | (q3 << 4));
                ql[l + 32] = (uint8_t)(q2 | (q4 << 4));
                qh[l] = (uint8_t)((L[j + l] >> 4) | ((L[j + l + 32] >> 4) << 2) |
                                  ((L[j + l + 64] >> 4) << 4) | ((L[j + l + 96] >> 4) << 6));
            }
        }
    }
}

void slim_f32_from_float(const float *src, void *dst, int64_t n) {
    memcpy(dst, src, (size_t)n * sizeof(float));
}

void slim_f16_from_float(const float *src, void *dst, int64_t n) {
    uint16_t *d = dst;
    for (int64_t i = 0; i < n; i++)
        d[i] = slim_f32_to_fp16(src[i]);
}

void slim_bf16_from_float(const float *src, void *dst, int64_t n) {
    uint16_t *d = dst;
    for (int64_t i = 0; i < n; i++)
        d[i] = slim_f32_to_bf16(src[i]);
}

slim_quantize_fn slim_quantizer(slim_dtype type) {
    switch (type) {
    case SLIM_DTYPE_F32: return slim_f32_from_float;
    case SLIM_DTYPE_F16: return slim_f16_from_float;
    case SLIM_DTYPE_BF16: return slim_bf16_from_float;
    case SLIM_DTYPE_Q4_0: return q4_0_quantize;
    case SLIM_DTYPE_Q4_1: return q4_1_quantize;
    case SLIM_DTYPE_Q5_0: return q5_0_quantize;
    case SLIM_DTYPE_Q5_1: return q5_1_quantize;
    case SLIM_DTYPE_Q8_0: return q8_0_quantize;
    case SLIM_DTYPE_Q4_K: return q4_k_quantize;
    case SLIM_DTYPE_Q5_K: return q5_k_quantize;
    case SLIM_DTYPE_Q6_K: return q6_k_quantize;
    default: return NULL;
    }
}
