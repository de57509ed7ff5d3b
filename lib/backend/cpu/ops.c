/* Element-wise and per-row CPU ops: norms, RoPE, activations, KV stores. */
#include <math.h>

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

void slim_cpu_rope(float *x, int64_t n_rows, int32_t n_heads, int32_t head_dim, int32_t n_rot,
                   int32_t pos0, float theta_base, float freq_scale, bool neox) {
    const int32_t half = n_rot / 2;
    for (int64_t r = 0; r < n_rows; r++) {
        const float p = (float)(pos0 + r) * freq_scale;
        for (int32_t h = 0; h < n_heads; h++) {
            float *v = x + (r * n_heads + h) * head_dim;
            for (int32_t i = 0; i < half; i++) {
                const float theta = p * powf(theta_base, -2.0f * (float)i / (float)n_rot);
                const float c = cosf(theta), s = sinf(theta);
                const int32_t a = neox ? i : 2 * i, b = neox ? i + half : 2 * i + 1;
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

void slim_cpu_scale(float *y, float s, int64_t n) {
    for (int64_t i = 0; i < n; i++)
        y[i] *= s;
}

void slim_cpu_kv_store(uint16_t *cache, const float *src, int64_t n_tokens, int64_t width,
                       int32_t pos0) {
    uint16_t *dst = cache + (size_t)pos0 * (size_t)width;
    for (int64_t i = 0; i < n_tokens * width; i++)
        dst[i] = slim_f32_to_fp16(src[i]);
}
