/* The batched engine's constraint hooks (engine_constrain.c): a request's
 * constraint rides on its sampler (mask before sampling, state advanced on
 * accept); forced tokens are appended as a prefill chunk; the masks a step's
 * requests will need are computed on a helper thread while the step's forward
 * pass runs. */
#ifndef SLIM_RUNTIME_ENGINE_CONSTRAIN_H
#define SLIM_RUNTIME_ENGINE_CONSTRAIN_H

#include "core/error.h"

enum { SLIM_ECON_FORCED_MAX = 64 };

/* Attach the request's constraint (params->constraint, may be NULL) to its
 * sampler, after the prompt went into the sampler's history. */
SLIM_HIDDEN slim_status slim_econ_attach(slim_sampler *s, const slim_request_params *p,
                                         int32_t n_vocab);
/* The tokens the sampler's constraint forces now (at most
 * SLIM_ECON_FORCED_MAX), 0 without a constraint. */
SLIM_HIDDEN int32_t slim_econ_forced(slim_sampler *s, slim_token *buf);

/* The helper thread (started on first use). */
typedef struct slim_econ slim_econ;
SLIM_HIDDEN slim_econ *slim_econ_new(void);
SLIM_HIDDEN void slim_econ_free(slim_econ *x);
/* Queue the mask of the sampler's current constraint state (no-op without a
 * constraint), then slim_econ_kick to start computing the queued ones. */
SLIM_HIDDEN void slim_econ_add(slim_econ *x, const slim_sampler *s);
SLIM_HIDDEN void slim_econ_kick(slim_econ *x);

#endif
