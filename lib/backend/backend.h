/* The ops a compute backend provides.  The model layer calls these only: it
 * never knows which backend runs them.  Activations are float rows, one row
 * per token; weights are slim_tensor views.  The CPU backend is the reference;
 * the CUDA backend (later) implements the same table. */
#ifndef SLIM_BACKEND_BACKEND_H
#define SLIM_BACKEND_BACKEND_H

#include <stdbool.h>
#include <stdint.h>

#include "core/tensor.h"
#include "core/threadpool.h"

/* Everything an op may use besides its operands: the threads, and a scratch
 * area owned by the context (large enough for the widest quantized activation
 * batch, sized at context creation). */
typedef struct slim_exec {
    slim_threadpool *pool;
    void *scratch;
    size_t scratch_size;
} slim_exec;

/* One attention call: n_tokens queries at positions pos0.., attending to the
 * layer's KV cache (fp16, [n_ctx][n_head_kv * head_dim]) which already holds
 * the keys and values of these tokens. */
typedef struct slim_attn_args {
    const float *q; /* [n_tokens][n_head * head_dim], already scaled */
    float *out;     /* [n_tokens][n_head * head_dim] */
    const uint16_t *k_cache, *v_cache;
    int32_t n_tokens, pos0;
    int32_t n_head, n_head_kv, head_dim;
    int32_t window; /* > 0: a query at p sees keys at p - window + 1 .. p */
    float softcap;  /* > 0: scores = softcap * tanh(scores / softcap) */
    float *scratch; /* n_threads * n_ctx floats */
    int32_t n_ctx;
} slim_attn_args;

typedef enum slim_act { SLIM_ACT_GELU_TANH, SLIM_ACT_SILU } slim_act;

/* RoPE on the first n_rot dims of each head: pair i (of n_rot / 2) turns by
 * (pos * freq_scale) * theta_base^(-2i / n_rot) / freq_factors[i], and the
 * rotated values are scaled by mscale (LongRoPE's attention factor, else 1).
 * neox: pairs (i, i + n_rot/2); else adjacent pairs (2i, 2i+1). */
typedef struct slim_rope_args {
    int32_t n_heads, head_dim, n_rot, pos0;
    float theta_base, freq_scale, mscale;
    const float *freq_factors; /* NULL: all 1 */
    bool neox;
} slim_rope_args;

typedef struct slim_backend_ops {
    const char *name;
    /* y[t][r] = dot(w row r, x[t]) for t < n_tokens, r < w->ne[1]. */
    slim_status (*matmul)(const slim_exec *ex, const slim_tensor *w, const float *x,
                          int64_t n_tokens, float *y);
    /* Row `row` of an embedding table, as floats. */
    void (*get_row)(const slim_tensor *table, int64_t row, float *out);
    /* y = x / rms(x) * w over rows of n (w NULL: no weight); in place allowed. */
    void (*rmsnorm)(float *y, const float *x, const float *w, int64_t n, int64_t n_rows, float eps);
    /* Rotate n_rows rows (positions pos0 + row) of n_heads heads, see slim_rope_args. */
    void (*rope)(float *x, int64_t n_rows, const slim_rope_args *r);
    /* g = act(g) * u, n elements. */
    void (*act_mul)(float *g, const float *u, int64_t n, slim_act act);
    void (*add)(float *y, const float *x, int64_t n); /* y += x */
    /* y[r][i] += b[i] for n_rows rows of n */
    void (*add_bias)(float *y, const float *b, int64_t n, int64_t n_rows);
    void (*scale)(float *y, float s, int64_t n);
    /* Store n_tokens rows of width into the fp16 cache at row pos0. */
    void (*kv_store)(uint16_t *cache, const float *src, int64_t n_tokens, int64_t width,
                     int32_t pos0);
    void (*attention)(const slim_exec *ex, const slim_attn_args *a);
} slim_backend_ops;

SLIM_HIDDEN const slim_backend_ops *slim_backend_cpu(void);

#endif
