/* Constraints in the batched engine (engine_constrain.h). */
#include "runtime/engine_constrain.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>

#include "core/grow.h"
#include "core/threadpool.h"
#include "runtime/constraint.h"

slim_status slim_econ_attach(slim_sampler *s, const slim_request_params *p, int32_t n_vocab) {
    slim_constraint *c = p->constraint;
    if (!c) return SLIM_OK;
    if (slim_constraint_n_vocab(c) != n_vocab)
        return slim_error(SLIM_ERR_INVALID_ARG,
                          "slim_engine_submit: the constraint is for a vocabulary of %d tokens, "
                          "the engine's model has %d",
                          (int)slim_constraint_n_vocab(c), (int)n_vocab);
    return slim_sampler_set_constraint(s, c);
}

int32_t slim_econ_forced(slim_sampler *s, slim_token *buf) {
    slim_constraint *c = slim_sampler_get_constraint(s);
    if (!c) return 0;
    size_t n = 0;
    /* a longer run than the buffer: its first part, the rest next time */
    if (slim_constraint_forced(c, slim_sampler_constraint_state(s), buf, SLIM_ECON_FORCED_MAX,
                               &n) != SLIM_OK)
        return 0;
    return (int32_t)n;
}

/* ---- the mask helper thread ---------------------------------------------------------------- */

typedef struct job {
    slim_constraint *c; /* a reference */
    slim_constraint_state s;
} job;

struct slim_econ {
    pthread_t thread;
    bool started, stop;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    job *queued; /* filled by the engine thread, handed over by kick */
    size_t n_queued, cap_queued;
    job *ready; /* under mu: for the helper */
    size_t n_ready, cap_ready;
};

slim_econ *slim_econ_new(void) {
    slim_econ *x = calloc(1, sizeof *x);
    if (!x) return NULL;
    pthread_mutex_init(&x->mu, NULL);
    pthread_cond_init(&x->cv, NULL);
    return x;
}

static void *helper(void *arg) {
    slim_econ *x = arg;
    job *mine = NULL;
    size_t cap = 0;
    pthread_mutex_lock(&x->mu);
    for (;;) {
        while (!x->stop && !x->n_ready)
            pthread_cond_wait(&x->cv, &x->mu);
        if (x->stop) break;
        /* swap the ready list out; compute without the lock */
        job *t = mine;
        size_t tc = cap, n = x->n_ready;
        mine = x->ready, cap = x->cap_ready;
        x->ready = t, x->cap_ready = tc, x->n_ready = 0;
        pthread_mutex_unlock(&x->mu);
        for (size_t i = 0; i < n; i++) {
            slim_constraint_prefetch(mine[i].c, mine[i].s);
            slim_constraint_free(mine[i].c);
        }
        pthread_mutex_lock(&x->mu);
    }
    pthread_mutex_unlock(&x->mu);
    free(mine);
    return NULL;
}

void slim_econ_add(slim_econ *x, const slim_sampler *s) {
    slim_constraint *c = slim_sampler_get_constraint(s);
    const slim_constraint_state st = slim_sampler_constraint_state(s);
    if (!x || !c || st < 0) return;
    if (!slim_grow((void **)&x->queued, &x->cap_queued, x->n_queued + 1, sizeof *x->queued))
        return; /* only a prefetch: the sampler computes it */
    x->queued[x->n_queued++] = (job){slim_constraint_retain(c), st};
}

void slim_econ_kick(slim_econ *x) {
    if (!x || !x->n_queued) return;
    if (!x->started) {
        x->started = slim_thread_start(&x->thread, helper, x) == 0;
        if (!x->started) { /* no thread: the sampler computes the masks */
            for (size_t i = 0; i < x->n_queued; i++)
                slim_constraint_free(x->queued[i].c);
            x->n_queued = 0;
            return;
        }
    }
    pthread_mutex_lock(&x->mu);
    /* jobs the helper has not started are for states already sampled past */
    for (size_t i = 0; i < x->n_ready; i++)
        slim_constraint_free(x->ready[i].c);
    x->n_ready = 0;
    if (slim_grow((void **)&x->ready, &x->cap_ready, x->n_queued, sizeof *x->ready)) {
        for (size_t i = 0; i < x->n_queued; i++)
            x->ready[x->n_ready++] = x->queued[i];
    } else {
        for (size_t i = 0; i < x->n_queued; i++)
            slim_constraint_free(x->queued[i].c);
    }
    x->n_queued = 0;
    pthread_cond_signal(&x->cv);
    pthread_mutex_unlock(&x->mu);
}

void slim_econ_free(slim_econ *x) {
    if (!x) return;
    if (x->started) {
        pthread_mutex_lock(&x->mu);
        x->stop = true;
        pthread_cond_signal(&x->cv);
        pthread_mutex_unlock(&x->mu);
        pthread_join(x->thread, NULL);
    }
    for (size_t i = 0; i < x->n_ready; i++)
        slim_constraint_free(x->ready[i].c);
    for (size_t i = 0; i < x->n_queued; i++)
        slim_constraint_free(x->queued[i].c);
    free(x->ready);
    free(x->queued);
    pthread_mutex_destroy(&x->mu);
    pthread_cond_destroy(&x->cv);
    free(x);
}
