/* A context: one sequence's KV cache, activation buffers and threads.  The
 * buffers live in the backend's memory (ops->alloc), except logits. */
#ifndef SLIM_RUNTIME_CONTEXT_H
#define SLIM_RUNTIME_CONTEXT_H

#include "backend/backend.h"
#include "model/lora.h"
#include "model/model.h"

typedef struct slim_activations {
    float *x;            /* [n_batch][n_embd] residual stream */
    float *h;            /* [n_batch][max(n_embd, q width)] normed input / attention output */
    float *q;            /* [n_batch][n_head * head_dim] */
    float *k, *v;        /* [n_batch][n_head_kv * head_dim] */
    float *o;            /* [n_batch][n_embd] */
    float *gate;         /* [n_batch][n_ff] */
    float *up;           /* [n_batch][n_ff] */
    float *logits;       /* [n_vocab] (last token), host memory */
    float *logits_dev;   /* device backends: [logits_rows][n_vocab]; NULL on the CPU */
    float *attn_scratch; /* [n_threads][n_ctx] */
} slim_activations;

struct slim_context {
    const slim_model *model;
    const slim_backend_ops *ops;
    slim_exec exec;
    int32_t n_ctx, n_batch, n_threads, n_past;
    int32_t logits_rows;       /* output rows computed at once (device backends: a small buffer) */
    void **k_cache, **v_cache; /* per layer: [n_ctx][n_head_kv * head_dim] fp16 or F32 */
    slim_activations act;
    const float *rope_factors; /* this context's RoPE frequency factors, or NULL */
    slim_lora_state lora;      /* attached LoRA adapters (model/lora.c) */
    bool has_logits;
};

/* Run n_tokens (<= n_batch) tokens at positions n_past.. through the model.
 * logits_all: NULL, or n_tokens * n_vocab floats.  The last token's logits
 * always go to act.logits.  Does not advance n_past. */
SLIM_HIDDEN slim_status slim_forward(slim_context *ctx, const int32_t *tokens, int32_t n_tokens,
                                     float *logits_all);

#endif
