/* Element-wise and per-row CPU ops: norms, RoPE, activations, KV stores. */
#include <math.h>
#include <string.h>

#include "backend/cpu/cpu.h"
#include "core/fp16.h"

void slim_cpu_rmsnorm(float *y, const float *x, const float *w, int64_t n, int64_t n_rows,
                      float eps) {
    for (int64_t r = 0; r < n_rows; r++, x += n, y += n) {
        double ss = 0; /* double: a fixed, order-independent-enough sum at these widths */
        for (int64_t i = 0; i < n; i++)
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

void slim_cpu_rope(float *x, int64_t n_rows, const slim_rope_args *r) {
    enum { MAX_PAIRS = 512 };
    const int32_t half = r->n_rot / 2;
    float inv_freq[MAX_PAIRS];
    for (int32_t i = 0; i < half && i < MAX_PAIRS; i++) {
        inv_freq[i] = powf(r->theta_base, -2.0f * (float)i / (float)r->n_rot);
        if (r->freq_factors) inv_freq[i] /= r->freq_factors[i];
    }
    for (int64_t row = 0; row < n_rows; row++) {
        const float p = (float)(r->pos0 + row) * r->freq_scale;
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
                       int32_t pos0) {
    if (f32) {
        memcpy((float *)cache + (size_t)pos0 * (size_t)width, src,
               (size_t)(n_tokens * width) * sizeof(float));
        return;
    }
    uint16_t *dst = (uint16_t *)cache + (size_t)pos0 * (size_t)width;
    for (int64_t i = 0; i < n_tokens * width; i++)
        dst[i] = slim_f32_to_fp16(src[i]);
}
