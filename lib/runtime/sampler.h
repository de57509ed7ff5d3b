/* The sampler's internal entry points for the engine (runtime/sampler.c). */
#ifndef SLIM_RUNTIME_SAMPLER_H
#define SLIM_RUNTIME_SAMPLER_H

#include "core/error.h"

/* SLIM_ERR_INVALID_ARG (message from `fn`) when a logit_bias token is outside
 * 0..n_vocab-1: lets the engine refuse it at submit rather than mid-request. */
SLIM_HIDDEN slim_status slim_sampler_check_vocab(const slim_sampler *s, int32_t n_vocab,
                                                 const char *fn);

#endif
