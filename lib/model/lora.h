/* LoRA adapters applied at run time, without merging: for a weight W with an
 * adapter pair A (r x in), B (out x r), y = W x + s * B (A x), where s is the
 * context's scale times the adapter's alpha / r (alpha / sqrt(r) for rsLoRA).
 * An adapter is read-only after load and reference counted (the caller's
 * handle plus one per context it is attached to), so contexts on other
 * threads may use it while it is freed.  Each context keeps its own list of
 * attached adapters and scratch buffers (lora.c). */
#ifndef SLIM_MODEL_LORA_H
#define SLIM_MODEL_LORA_H

#include "model/model.h"

/* Where forward.c calls in: after the grouped Q/K/V matmul (outputs q, k,
 * v), the attention output, the grouped gate/up matmul (gate, up) and the
 * down projection. */
typedef enum slim_lora_site {
    SLIM_LORA_QKV,
    SLIM_LORA_O,
    SLIM_LORA_GATE_UP,
    SLIM_LORA_DOWN,
    SLIM_LORA_N_SITES
} slim_lora_site;

/* One adapter attached to a context. */
typedef struct slim_lora_attached {
    slim_lora *lora;
    float scale; /* the caller's scale (the adapter's alpha / r is per pair) */
} slim_lora_attached;

/* A context's adapters and scratch (in backend memory): t holds A x for the
 * pairs of one site, u one B t, xg the gathered inputs of one adapter's
 * tokens.  Per step (slim_lora_plan): which tokens use each adapter. */
typedef struct slim_lora_state {
    slim_lora_attached *list;
    int32_t n, cap;
    float *t, *u, *xg;
    int64_t t_floats, u_floats, xg_floats;
    int32_t *rows;   /* host: [cap][n_batch] the step's tokens using adapter i, ascending */
    int32_t *n_rows; /* host: [cap] */
    bool active;     /* some adapter applies to some token of the step */
} slim_lora_state;

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

/* Detach everything and release the scratch (slim_context_free). */
SLIM_HIDDEN void slim_lora_state_free(slim_context *ctx);

#endif
