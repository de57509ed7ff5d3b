/* A context's LoRA adapters: the attached list, its scratch, and the hook
 * forward.c calls at each site (the adapters themselves: model/lora.h). */
#ifndef SLIM_RUNTIME_LORA_APPLY_H
#define SLIM_RUNTIME_LORA_APPLY_H

#include "runtime/lora_state.h"

typedef struct slim_context slim_context;
typedef struct slim_step slim_step;

/* Which of the step's tokens use which attached adapter (their sequence's
 * slim_step_seq.lora), for slim_lora_apply. */
SLIM_HIDDEN slim_status slim_lora_plan(slim_context *ctx, const slim_step *step);

/* y[i] += s * B (A x) for each adapter's pairs at (il, site), on the rows of
 * the tokens that use it: all of them at once when every token does, else
 * gathered (A then B over just those rows) and scatter-added, as S-LoRA and
 * Punica group them, so a token's result never depends on the others. for every attached adapter's
 * pairs at (il, site); x is the matmul's input of n_tokens rows, y its outputs (as passed to
 * matmul). */
SLIM_HIDDEN slim_status slim_lora_apply(slim_context *ctx, int il, slim_lora_site site,
                                        const float *x, int64_t n_tokens, float *const *y);

#endif
