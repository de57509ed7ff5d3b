/* Element-wise and per-row CPU ops: norms, RoPE, activations, KV stores. */
#include <math.h>
#include <string.h>

#include "backend/cpu/cpu.h"
#include "core/fp16.h"

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

void slim_cpu_rmsnorm(float *y, const float *x, const float *w, int64_t n, int64_t n_rows,
                      float eps) {
    for (int64_t r = 0; r < n_rows; r++, x += n, y += n) {
        double ss = 0; /* double: a fixed, order-independent-enough sum at these widths */
        int64_t i0 = 0;
#if defined(__AVX512F__)
        { /* 8 double lanes (each product of floats exact in double), then the rest */
            __m512d acc = _mm512_setzero_pd();
            for (; i0 + 8 <= n; i0 += 8) {
                const __m512d v = _mm512_cvtps_pd(_mm256_loadu_ps(x + i0));
                acc = _mm512_fmadd_pd(v, v, acc);
            }
            ss = _mm512_reduce_add_pd(acc);
        }
#endif
        for (int64_t i = i0; i < n; i++)
            ss += (double)x[i] * x[i];
        const float s = (float)(1.0 / sqrt(ss / (double)n + eps));
        if (w)
            for (int64_t i = 0; i < n; i++)
                y[i] = x[i] * s * w[i];
        else
            for (int64_t i = 0; i < n; i++)
                y[i] = x[i] * s;
    }
}

void slim_cpu_rope(float *x, int64_t n_rows, const int32_t *pos, const slim_rope_args *r) {
    enum { MAX_PAIRS = 512 };
    const int32_t half = r->n_rot / 2;
    float inv_freq[MAX_PAIRS];
    for (int32_t i = 0; i < half && i < MAX_PAIRS; i++) {
        inv_freq[i] = powf(r->theta_base, -2.0f * (float)i / (float)r->n_rot);
        if (r->freq_factors) inv_freq[i] /= r->freq_factors[i];
    }
    for (int64_t row = 0; row < n_rows; row++) {
        const float p = (float)pos[row] * r->freq_scale;
        for (int32_t i = 0; i < half && i < MAX_PAIRS; i++) {
            const float theta = p * inv_freq[i];
            const float c = cosf(theta) * r->mscale, s = sinf(theta) * r->mscale;
            const int32_t a = r->neox ? i : 2 * i, b = r->neox ? i + half : 2 * i + 1;
            for (int32_t h = 0; h < r->n_heads; h++) {
                float *v = x + (row * r->n_heads + h) * r->head_dim;
                const float x0 = v[a], x1 = v[b];
                v[a] = x0 * c - x1 * s;
                v[b] = x0 * s + x1 * c;
            }
        }
    }
}

#if defined(__AVX512F__)
#include "backend/cpu/simd_exp.h"

/* g = act(g) * u, 16 lanes at a time; the tail is a masked step of the same
 * code, so each element's result does not depend on n or on the thread split.
 * GELU-tanh: 0.5 x (1 + tanh(s)) = x / (1 + e^(-2s)), without 1 + tanh's
 * cancellation for negative x; SiLU: x / (1 + e^-x). */
void slim_cpu_act_mul(float *g, const float *u, int64_t n, slim_act act) {
    const __m512 one = _mm512_set1_ps(1.0f);
    for (int64_t i = 0; i < n; i += 16) {
        const __mmask16 m = n - i >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (n - i)) - 1);
        const __m512 x = _mm512_maskz_loadu_ps(m, g + i), uv = _mm512_maskz_loadu_ps(m, u + i);
        __m512 t;
        if (act == SLIM_ACT_GELU_TANH) {
            const __m512 x3 = _mm512_mul_ps(_mm512_mul_ps(x, x), x);
            const __m512 s = _mm512_mul_ps(_mm512_set1_ps(-2.0f * 0.7978845608028654f),
                                           _mm512_fmadd_ps(_mm512_set1_ps(0.044715f), x3, x));
            t = slim_exp_f32x16(s);
        } else {
            t = slim_exp_f32x16(_mm512_sub_ps(_mm512_setzero_ps(), x));
        }
        _mm512_mask_storeu_ps(g + i, m, _mm512_mul_ps(_mm512_div_ps(x, _mm512_add_ps(one, t)), uv));
    }
}
#else
void slim_cpu_act_mul(float *g, const float *u, int64_t n, slim_act act) {
    if (act == SLIM_ACT_GELU_TANH) {
        const float k = 0.7978845608028654f; /* sqrt(2/pi) */
        for (int64_t i = 0; i < n; i++) {
            const float x = g[i];
            g[i] = 0.5f * x * (1.0f + tanhf(k * (x + 0.044715f * x * x * x))) * u[i];
        }
    } else {
        for (int64_t i = 0; i < n; i++)
            g[i] = g[i] / (1.0f + expf(-g[i])) * u[i];
    }
}
#endif

void slim_cpu_add(float *y, const float *x, int64_t n) {
    for (int64_t i = 0; i < n; i++)
        y[i] += x[i];
}

void slim_cpu_add_bias(float *y, const float *b, int64_t n, int64_t n_rows) {
    for (int64_t r = 0; r < n_rows; r++, y += n)
        for (int64_t i = 0; i < n; i++)
            y[i] += b[i];
}

void slim_cpu_scale(float *y, float s, int64_t n) {
    for (int64_t i = 0; i < n; i++)
        y[i] *= s;
}

void slim_cpu_softcap(float *y, float cap, int64_t n) {
    for (int64_t i = 0; i < n; i++)
        y[i] = cap * tanhf(y[i] / cap);
}

void slim_cpu_kv_store(void *cache, bool f32, const float *src, int64_t n_tokens, int64_t width,
                       const int32_t *rows) {
    for (int64_t t = 0; t < n_tokens; t++, src += width) {
        const size_t at = (size_t)rows[t] * (size_t)width;
        if (f32) {
            memcpy((float *)cache + at, src, (size_t)width * sizeof(float));
            continue;
        }
        uint16_t *dst = (uint16_t *)cache + at;
        for (int64_t i = 0; i < width; i++)
            dst[i] = slim_f32_to_fp16(src[i]);
    }
}
