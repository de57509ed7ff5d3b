/* A context: a paged KV cache (runtime/step.h), activation buffers and
 * threads for steps over many sequences (slim_forward_step), and the public
 * single-sequence API as a thin case of it: one sequence whose block table
 * is the identity 0, 1, 2, ... over the cache.  The buffers live in the
 * backend's memory (ops->alloc), except logits and the step's host arrays. */
#ifndef SLIM_RUNTIME_CONTEXT_H
#define SLIM_RUNTIME_CONTEXT_H

#include "backend/backend.h"
#include "runtime/lora_state.h"
#include "model/model.h"
#include "runtime/step.h"

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
    int32_t n_ctx, n_batch, n_threads, n_past; /* n_ctx: the longest sequence */
    int32_t logits_rows; /* output rows computed at once (device backends: a small buffer) */
    int32_t kv_block_size, n_kv_blocks;
    /* Sliding-window layers' caches hold n_swa_blocks blocks (== n_kv_blocks
     * unless swa_split: then their own pool, addressed by each sequence's
     * swa_blocks table, runtime/step.h). */
    int32_t n_swa_blocks;
    bool swa_split;
    void **k_cache, **v_cache; /* per layer: [its blocks * kv_block_size][n_head_kv * head_dim]
                                  fp16 or F32 */
    int32_t *ident_blocks;     /* the single-sequence API's block table 0, 1, 2, ... */
    /* one step's host arrays: [n_batch] each, seqs grown to the step's n_seqs */
    int32_t *step_pos, *step_seq, *step_row, *step_idx;
    uint8_t *step_want;
    slim_batch_seq *step_seqs;
    int32_t *step_swa_row;            /* swa_split: [n_batch] rows in the sliding layers' caches */
    slim_batch_seq *step_swa_seqs;    /* swa_split: the sliding tables, step_seqs_cap of them */
    slim_batch step_batch, swa_batch; /* this step's two views (swa_split) */
    int32_t step_seqs_cap;
    slim_activations act;
    const float *rope_factors; /* this context's RoPE frequency factors, or NULL */
    slim_lora_state lora;      /* attached LoRA adapters (model/lora.c) */
    bool has_logits;
};

/* The single-sequence step: n_tokens (<= n_batch) tokens at positions
 * n_past.. through the model, every attached adapter applied.  logits_all:
 * NULL, or n_tokens * n_vocab floats.  The last token's logits always go to
 * act.logits.  Does not advance n_past. */
SLIM_HIDDEN slim_status slim_forward(slim_context *ctx, const int32_t *tokens, int32_t n_tokens,
                                     float *logits_all);

/* A context whose KV cache is a pool of n_blocks blocks of block_size rows
 * per layer, for slim_forward_step.  p->n_batch is the step's token budget
 * (0: 512), p->n_ctx the longest sequence (0: as slim_context_create); the
 * single-sequence API on it uses blocks 0 .. n_ctx / block_size. */
SLIM_HIDDEN slim_status slim_context_create_paged(const slim_model *m, const slim_context_params *p,
                                                  int32_t block_size, int32_t n_blocks,
                                                  slim_context **out);

/* As slim_context_create_paged, with the sliding-window layers' caches in a
 * pool of their own of n_swa_blocks blocks when that is fewer (the CPU
 * backend only; elsewhere, or with no sliding layer, they share n_blocks:
 * ctx->swa_split says which). */
SLIM_HIDDEN slim_status slim_context_create_paged_swa(const slim_model *m,
                                                      const slim_context_params *p,
                                                      int32_t block_size, int32_t n_blocks,
                                                      int32_t n_swa_blocks, slim_context **out);

/* Copy every layer's K and V rows of block src to block dst (copy-on-write
 * forks); ordered before the next step on device backends. */
SLIM_HIDDEN void slim_kv_copy_block(slim_context *ctx, int32_t dst, int32_t src);

/* With swa_split: the same for the global layers' blocks (swa false) or the
 * sliding layers' (swa true) alone. */
SLIM_HIDDEN void slim_kv_copy_block_kind(slim_context *ctx, int32_t dst, int32_t src, bool swa);

#endif
