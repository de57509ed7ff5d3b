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
 * pairs of one site, u one B t. */
typedef struct slim_lora_state {
    slim_lora_attached *list;
    int32_t n, cap;
    float *t, *u;
    int64_t t_floats, u_floats;
} slim_lora_state;

typedef struct slim_context slim_context;

/* y[i] += s * B (A x) for every attached adapter's pairs at (il, site); x is
 * the matmul's input of n_tokens rows, y its outputs (as passed to matmul). */
SLIM_HIDDEN slim_status slim_lora_apply(slim_context *ctx, int il, slim_lora_site site,
                                        const float *x, int64_t n_tokens, float *const *y);

/* Detach everything and release the scratch (slim_context_free). */
SLIM_HIDDEN void slim_lora_state_free(slim_context *ctx);

#endif
