/* Workers spin briefly on a generation counter before sleeping on a condition
 * variable: a forward pass hands out hundreds of small tasks per token, and a
 * condvar round trip per task would cost more than the task. */
#include "core/threadpool.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define CPU_RELAX() _mm_pause()
#else
#define CPU_RELAX() ((void)0)
#endif

/* ~0.1 ms of pause: covers the gaps between ops of one token, yet yields the
 * core soon when threads outnumber free cores. */
enum { SPIN_ITERS = 1 << 12 };

typedef struct worker {
    slim_threadpool *pool;
    int index;
} worker;

struct slim_threadpool {
    int n_threads;
    pthread_t *threads;
    worker *workers;
    pthread_mutex_t mu;
    pthread_cond_t cv_start, cv_done;
    atomic_uint generation;
    atomic_int pending;
    atomic_bool stop;
    slim_task_fn fn;
    void *arg;
};

static void *worker_main(void *p) {
    worker *w = p;
    slim_threadpool *pool = w->pool;
    unsigned seen = 0;
    for (;;) {
        int spins = 0;
        while (atomic_load_explicit(&pool->generation, memory_order_acquire) == seen &&
               !atomic_load(&pool->stop) && spins < SPIN_ITERS) {
            CPU_RELAX();
            spins++;
        }
        if (atomic_load_explicit(&pool->generation, memory_order_acquire) == seen &&
            !atomic_load(&pool->stop)) {
            pthread_mutex_lock(&pool->mu);
            while (atomic_load(&pool->generation) == seen && !atomic_load(&pool->stop))
                pthread_cond_wait(&pool->cv_start, &pool->mu);
            pthread_mutex_unlock(&pool->mu);
        }
        if (atomic_load(&pool->stop)) return NULL;
        seen = atomic_load_explicit(&pool->generation, memory_order_acquire);
        pool->fn(pool->arg, w->index, pool->n_threads);
        if (atomic_fetch_sub_explicit(&pool->pending, 1, memory_order_acq_rel) == 1) {
            pthread_mutex_lock(&pool->mu);
            pthread_cond_signal(&pool->cv_done);
            pthread_mutex_unlock(&pool->mu);
        }
    }
}

slim_status slim_threadpool_create(int n_threads, slim_threadpool **out) {
    *out = NULL;
    if (n_threads < 1 || n_threads > 1024)
        return slim_error(SLIM_ERR_INVALID_ARG, "threadpool: n_threads %d outside 1..1024",
                          n_threads);
    slim_threadpool *pool = calloc(1, sizeof *pool);
    if (!pool) return slim_error(SLIM_ERR_NOMEM, "threadpool: out of memory");
    pool->n_threads = n_threads;
    pool->threads = calloc((size_t)n_threads, sizeof *pool->threads);
    pool->workers = calloc((size_t)n_threads, sizeof *pool->workers);
    if (!pool->threads || !pool->workers) {
        free(pool->threads);
        free(pool->workers);
        free(pool);
        return slim_error(SLIM_ERR_NOMEM, "threadpool: out of memory");
    }
    pthread_mutex_init(&pool->mu, NULL);
    pthread_cond_init(&pool->cv_start, NULL);
    pthread_cond_init(&pool->cv_done, NULL);
    for (int i = 1; i < n_threads; i++) {
        pool->workers[i] = (worker){pool, i};
        if (pthread_create(&pool->threads[i], NULL, worker_main, &pool->workers[i]) != 0) {
            pool->n_threads = i; /* join the ones that started */
            slim_threadpool_free(pool);
            return slim_error(SLIM_ERR_BACKEND, "threadpool: cannot start thread %d", i);
        }
    }
    *out = pool;
    return SLIM_OK;
}

void slim_threadpool_free(slim_threadpool *pool) {
    if (!pool) return;
    pthread_mutex_lock(&pool->mu);
    atomic_store(&pool->stop, true);
    pthread_cond_broadcast(&pool->cv_start);
    pthread_mutex_unlock(&pool->mu);
    for (int i = 1; i < pool->n_threads; i++)
        pthread_join(pool->threads[i], NULL);
    pthread_mutex_destroy(&pool->mu);
    pthread_cond_destroy(&pool->cv_start);
    pthread_cond_destroy(&pool->cv_done);
    free(pool->threads);
    free(pool->workers);
    free(pool);
}

int slim_threadpool_size(const slim_threadpool *pool) { return pool ? pool->n_threads : 1; }

void slim_threadpool_run(slim_threadpool *pool, slim_task_fn fn, void *arg) {
    if (!pool || pool->n_threads == 1) {
        fn(arg, 0, 1);
        return;
    }
    pool->fn = fn;
    pool->arg = arg;
    atomic_store(&pool->pending, pool->n_threads - 1);
    pthread_mutex_lock(&pool->mu);
    atomic_fetch_add_explicit(&pool->generation, 1, memory_order_release);
    pthread_cond_broadcast(&pool->cv_start);
    pthread_mutex_unlock(&pool->mu);
    fn(arg, 0, pool->n_threads);
    int spins = 0;
    while (atomic_load_explicit(&pool->pending, memory_order_acquire) > 0 && spins < SPIN_ITERS) {
        CPU_RELAX();
        spins++;
    }
    if (atomic_load(&pool->pending) > 0) {
        pthread_mutex_lock(&pool->mu);
        while (atomic_load(&pool->pending) > 0)
            pthread_cond_wait(&pool->cv_done, &pool->mu);
        pthread_mutex_unlock(&pool->mu);
    }
}
