/* The LoRA part of a slim_context: its attached adapters and scratch (the
 * functions that use them: runtime/lora_apply.h). */
#ifndef SLIM_RUNTIME_LORA_STATE_H
#define SLIM_RUNTIME_LORA_STATE_H

#include "model/lora.h"

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

#endif
