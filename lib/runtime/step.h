/* One forward step over many sequences: the contract between the batched
 * forward pass (runtime/forward.c, the backends) and whoever schedules
 * sequences (the engine in runtime/engine.c, slim_context's single-sequence
 * API, callers of the public step-level call).
 *
 * The KV cache of a context is a pool of n_kv_blocks blocks of kv_block_size
 * token rows each, per layer (fp16 or F32, [n_kv_blocks * kv_block_size]
 * [n_head_kv * head_dim]).  A sequence owns an ordered list of block ids, its
 * block table: position p of the sequence lives in row
 *     blocks[p / kv_block_size] * kv_block_size + p % kv_block_size.
 * The step writes the keys and values of its tokens into those rows, then
 * each token attends to positions 0 .. pos of its own sequence (or its
 * sliding window) through the table.  Which blocks are free, shared or cached
 * is the scheduler's business (runtime/kv_pool.c); the forward pass only
 * reads the tables it is given.
 *
 * Batch invariance: a token's logits depend only on its sequence's tokens,
 * positions and adapter, never on what else is in the step, how the prompt
 * was split into steps, the thread count or the block ids. */
#ifndef SLIM_RUNTIME_STEP_H
#define SLIM_RUNTIME_STEP_H

#include <stdint.h>

#include "core/error.h"

/* step_seq.lora: every adapter attached to the context (slim_context's API). */
#define SLIM_STEP_LORA_ALL (-2)
/* step_seq.lora: no adapter. */
#define SLIM_STEP_LORA_NONE (-1)

typedef struct slim_step_table {
    const int32_t *blocks;
    int32_t n_blocks;
} slim_step_table;

typedef struct slim_step_seq {
    const int32_t *blocks; /* block table: enough blocks for every position in the step */
    int32_t n_blocks;
    int32_t lora; /* an index into the context's attached adapters, or SLIM_STEP_LORA_* */
} slim_step_seq;

typedef struct slim_step {
    int32_t n_tokens;      /* 1 .. the context's n_batch */
    const int32_t *tokens; /* [n_tokens] token ids */
    const int32_t *pos;    /* [n_tokens] position of each token in its sequence */
    const int32_t *seq;    /* [n_tokens] index into seqs; a sequence's tokens in ascending
                              position, every earlier position already in the cache or
                              earlier in this step */
    const uint8_t *want;   /* [n_tokens] non-zero: this token's logits go out; NULL: none */
    int32_t n_seqs;
    const slim_step_seq *seqs;
    /* A context with swa_split (runtime/context.h): [n_seqs] the sliding-
     * window layers' tables, into their own pool.  Entries only for blocks a
     * query of the step sees through the window (from the block of the
     * sequence's first token position - window + 1 on); earlier ones may be -1. */
    const slim_step_table *swa_seqs;
} slim_step;

typedef struct slim_context slim_context;

/* Run one step.  logits receives one n_vocab row per token with want[t] set,
 * in token order (host memory, n_want * n_vocab floats); it may be NULL when
 * no token is wanted.  On error nothing about the sequences' earlier KV rows
 * changes (the rows of this step's own positions may have been written). */
SLIM_HIDDEN slim_status slim_forward_step(slim_context *ctx, const slim_step *step, float *logits);

#endif
