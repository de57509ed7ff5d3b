/* The batched engine (slim_engine in slim.h): requests, the scheduler and
 * the step thread over a paged KV pool (runtime/kv_pool.h).
 *
 * The engine drives the forward pass through a small seam, so the scheduler
 * can be tested with a fake model: the real one runs slim_forward_step on a
 * paged slim_context (runtime/step.h). */
#ifndef SLIM_RUNTIME_ENGINE_H
#define SLIM_RUNTIME_ENGINE_H

#include "core/error.h"
#include "runtime/step.h"

typedef struct slim_engine_exec {
    /* Run one step (logits: one n_vocab row per wanted token). */
    slim_status (*step)(void *user, const slim_step *step, float *logits);
    /* Copy a KV block's rows (copy-on-write). */
    slim_status (*copy)(void *user, int32_t dst, int32_t src);
    /* Attach an adapter to the model's context (NULL: adapters unsupported). */
    slim_status (*attach)(void *user, slim_lora *lora, float scale);
    /* Detach one (NULL: detaching unsupported). */
    slim_status (*detach)(void *user, slim_lora *lora);
    void *user;
    int32_t n_vocab;
    int32_t n_blocks; /* KV pool blocks */
    /* > 0: the sliding-window layers keep their own pool of this many blocks
     * (step_seq.swa_blocks); their queries see swa_window positions. */
    int32_t n_swa_blocks, swa_window;
    /* Copy a sliding-window pool block's rows (with n_swa_blocks). */
    slim_status (*copy_swa)(void *user, int32_t dst, int32_t src);
} slim_engine_exec;

/* An engine over `exec` (its blocks of params->block_size tokens, its
 * step_tokens budget).  `model` may be NULL: then prompts must be token ids,
 * pieces are empty and no token ends a generation by itself. */
SLIM_HIDDEN slim_status slim_engine_create_exec(const slim_model *model,
                                                const slim_engine_params *params,
                                                const slim_engine_exec *exec, slim_engine **out);

#endif
