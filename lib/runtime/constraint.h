/* The public slim_constraint (slim.h) over the constraint engine
 * (lib/constrain): a compiled grammar, the model's constraint tokens and one
 * shared matcher under a lock; the per-model cache of compiled handles. */
#ifndef SLIM_RUNTIME_CONSTRAINT_H
#define SLIM_RUNTIME_CONSTRAINT_H

#include <pthread.h>
#include <stdatomic.h>

#include "constrain/constrain.h"

struct slim_constraint {
    atomic_int refs;
    const slim_model *model;
    slim_cgrammar *g;
    const slim_ctokens *t; /* the model's (slim_cmodel), shared */
    pthread_mutex_t lock;  /* guards m: its tables grow on every new state */
    slim_cmatch *m;
    int32_t n_vocab;
    /* the cache key: a hash of the content, then the content itself */
    uint64_t key;
    int32_t kind, json_whitespace, property_order;
    char *text;
    size_t len;
};

/* Constraint state kept per model: its vocabulary's constraint tokens and
 * the cache of compiled handles (freed with the model). */
typedef struct slim_cmodel slim_cmodel;
SLIM_HIDDEN void slim_cmodel_free(slim_cmodel *cm);

/* Compute and cache the state's mask (for a helper thread: warms the cache so
 * the sampler's lookup is a hit). */
SLIM_HIDDEN void slim_constraint_prefetch(slim_constraint *c, slim_constraint_state s);

/* The constraint attached to a sampler (runtime/sampler.c), or NULL. */
SLIM_HIDDEN slim_constraint *slim_sampler_get_constraint(const slim_sampler *s);

#endif
