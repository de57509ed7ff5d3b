/* A forward pass hands out hundreds of small runs per token (tens of microseconds each), so
 * threads spin briefly between runs instead of sleeping.  On a machine where other processes keep
 * cores busy, a fixed split makes every run wait for whichever thread the OS has descheduled, for
 * a whole time slice (milliseconds), and a spinning thread takes cycles from the one with work.
 * Three things keep that graceful:
 * - parts are claimed, not assigned: a thread that finishes takes the parts nobody has started,
 *   so a worker that is not running when a run starts costs nothing;
 * - waiting spins with pause for a short while, then yields the core, then sleeps;
 * - every part is timed: parts are of even size, so when the slowest part of a run takes much
 *   longer than the quickest, its thread was descheduled in it (whichever thread that was, the
 *   caller included).  When over a window of runs that excess outweighs what the last thread
 *   brings, the threads cost more than they give: the pool runs with one thread fewer for a hold
 *   time, then tries again (the hold doubles while the tries soon fail).
 * Parts are split by (ith, nth) alone, so results do not depend on who runs them. */
#include "core/threadpool.h"

#include <pthread.h>
#include <signal.h>
#include <sched.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define CPU_RELAX() _mm_pause()
#else
#define CPU_RELAX() ((void)0)
#endif

/* Waiting: pause for SPIN_S (the gaps between one token's runs are a few microseconds, between
 * tokens tens), then sched_yield until YIELD_S (lets a thread sharing the core run), then sleep. */
#define SPIN_S 50e-6
#define YIELD_S 500e-6
/* Contention: with nth threads, one fewer would make each part nth/(nth-1) times longer, and save
 * the excess of the slowest part over the quickest.  A window of WINDOW runs straggles when
 * (nth-1) * sum(slowest - quickest) > sum(quickest) + SLACK_S (noise; a descheduled thread costs a
 * time slice, a millisecond or more).  It drops one thread for HOLD_MIN_S; a straggle within
 * TRY_HOLDS holds of the last try (the cores are still busy) doubles the hold, up to HOLD_MAX_S. */
enum { WINDOW = 32 };
#define SLACK_S 500e-6
#define HOLD_MIN_S 20e-3
#define HOLD_MAX_S 1.0
#define TRY_HOLDS 4

enum { LINE = 64 };

typedef struct worker {
    alignas(LINE) slim_threadpool *pool;
    int index;
    atomic_bool sleeping; /* waiting on cv: the caller must signal it */
    pthread_cond_t cv;
    pthread_t thread;
} worker;

struct slim_threadpool {
    /* the caller's side: the run in progress and the contention monitor */
    int n_threads;
    worker *workers;
    pthread_mutex_t mu;
    pthread_cond_t cv_done;
    slim_task_fn fn; /* written before `claim` publishes a run, read after a part is claimed */
    void *arg;
    uint32_t gen;         /* runs published */
    int active;           /* nth of the next run (before a try) */
    int last;             /* nth of the last run */
    int runs;             /* runs in the window */
    double quick, excess; /* the window's sums of quickest parts and (nth-1) x slowest - quickest */
    double *part_s;       /* each part's seconds in the last run */
    double hold, resume;  /* the hold time and when it ends */
    double raised;        /* when the pool last tried one thread more */
    alignas(LINE) _Atomic uint64_t claim; /* gen << 32 | nth << 16 | next part to take */
    alignas(LINE) atomic_int done;        /* parts finished in this run */
    atomic_bool caller_sleeping;          /* waiting on cv_done */
    atomic_bool stop;
};

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static uint32_t claim_gen(uint64_t c) { return (uint32_t)(c >> 32); }
static int claim_nth(uint64_t c) { return (int)(c >> 16 & 0xffff); }
static int claim_next(uint64_t c) { return (int)(c & 0xffff); }

/* One step of a wait that began at *start (0: not yet timed): pause, or past SPIN_S yield;
 * returns false once YIELD_S has passed, when the waiter should sleep.  The clock is read every
 * 32 pauses (a pause is tens of nanoseconds, a clock read about as much). */
static bool wait_step(double *start, unsigned *spins) {
    if (++*spins % 32) {
        CPU_RELAX();
        return true;
    }
    const double t = now_s();
    if (*start == 0) *start = t;
    if (t - *start < SPIN_S) {
        CPU_RELAX();
        return true;
    }
    if (t - *start < YIELD_S) {
        sched_yield();
        return true;
    }
    return false;
}

/* Take and run the parts of run gen that nobody has started; the last to finish wakes the caller
 * if it sleeps. */
static void take_parts(slim_threadpool *pool, uint32_t gen) {
    uint64_t c = atomic_load_explicit(&pool->claim, memory_order_acquire);
    while (claim_gen(c) == gen && claim_next(c) < claim_nth(c)) {
        if (!atomic_compare_exchange_weak_explicit(&pool->claim, &c, c + 1, memory_order_acquire,
                                                   memory_order_acquire))
            continue;
        /* run gen cannot end (and fn change) before this part is done */
        const int nth = claim_nth(c), ith = claim_next(c);
        const double t0 = now_s();
        pool->fn(pool->arg, ith, nth);
        pool->part_s[ith] = now_s() - t0; /* read by the caller after done says all are */
        if (atomic_fetch_add(&pool->done, 1) + 1 == nth && atomic_load(&pool->caller_sleeping)) {
            pthread_mutex_lock(&pool->mu);
            pthread_cond_signal(&pool->cv_done);
            pthread_mutex_unlock(&pool->mu);
        }
        c = atomic_load_explicit(&pool->claim, memory_order_acquire);
    }
}

/* Wait for a run newer than *seen that includes this worker (runs with fewer threads pass it by);
 * false on stop. */
static bool wait_for_run(worker *w, uint32_t *seen) {
    slim_threadpool *pool = w->pool;
    double start = 0;
    unsigned spins = 0;
    for (;;) {
        if (atomic_load_explicit(&pool->stop, memory_order_relaxed)) return false;
        const uint64_t c = atomic_load_explicit(&pool->claim, memory_order_acquire);
        if (claim_gen(c) != *seen) {
            *seen = claim_gen(c);
            if (claim_nth(c) > w->index) return true;
        }
        if (wait_step(&start, &spins)) continue;
        pthread_mutex_lock(&pool->mu);
        atomic_store(&w->sleeping, true);
        while (claim_gen(atomic_load(&pool->claim)) == *seen && !atomic_load(&pool->stop))
            pthread_cond_wait(&w->cv, &pool->mu);
        atomic_store(&w->sleeping, false);
        pthread_mutex_unlock(&pool->mu);
    }
}

static void *worker_main(void *p) {
    worker *w = p;
    uint32_t seen = 0;
    while (wait_for_run(w, &seen))
        take_parts(w->pool, seen);
    return NULL;
}

int slim_thread_start(pthread_t *thread, void *(*fn)(void *), void *arg) {
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old); /* the new thread inherits this mask */
    const int rc = pthread_create(thread, NULL, fn, arg);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return rc;
}

slim_status slim_threadpool_create(int n_threads, slim_threadpool **out) {
    *out = NULL;
    if (n_threads < 1 || n_threads > 1024)
        return slim_error(SLIM_ERR_INVALID_ARG, "threadpool: n_threads %d outside 1..1024",
                          n_threads);
    const size_t size = (sizeof(slim_threadpool) + LINE - 1) / LINE * LINE;
    slim_threadpool *pool = aligned_alloc(LINE, size);
    worker *workers = aligned_alloc(LINE, (size_t)n_threads * sizeof *workers);
    double *part_s = calloc((size_t)n_threads, sizeof *part_s);
    if (!pool || !workers || !part_s) {
        free(pool);
        free(workers);
        free(part_s);
        return slim_error(SLIM_ERR_NOMEM, "threadpool: out of memory");
    }
    memset(pool, 0, size);
    memset(workers, 0, (size_t)n_threads * sizeof *workers);
    pool->workers = workers;
    pool->part_s = part_s;
    pool->active = pool->last = n_threads;
    pool->hold = HOLD_MIN_S;
    pthread_mutex_init(&pool->mu, NULL);
    pthread_cond_init(&pool->cv_done, NULL);
    for (int i = 1; i < n_threads; i++) {
        worker *w = &workers[i];
        w->pool = pool;
        w->index = i;
        pthread_cond_init(&w->cv, NULL);
        pool->n_threads = i; /* workers started so far, for slim_threadpool_free */
        if (slim_thread_start(&w->thread, worker_main, w) != 0) {
            pthread_cond_destroy(&w->cv);
            slim_threadpool_free(pool);
            return slim_error(SLIM_ERR_BACKEND, "threadpool: cannot start thread %d", i);
        }
    }
    pool->n_threads = n_threads;
    *out = pool;
    return SLIM_OK;
}

void slim_threadpool_free(slim_threadpool *pool) {
    if (!pool) return;
    pthread_mutex_lock(&pool->mu);
    atomic_store(&pool->stop, true);
    for (int i = 1; i < pool->n_threads; i++)
        pthread_cond_signal(&pool->workers[i].cv);
    pthread_mutex_unlock(&pool->mu);
    for (int i = 1; i < pool->n_threads; i++) {
        pthread_join(pool->workers[i].thread, NULL);
        pthread_cond_destroy(&pool->workers[i].cv);
    }
    pthread_mutex_destroy(&pool->mu);
    pthread_cond_destroy(&pool->cv_done);
    free(pool->workers);
    free(pool->part_s);
    free(pool);
}

int slim_threadpool_size(const slim_threadpool *pool) { return pool ? pool->n_threads : 1; }

int slim_threadpool_active(const slim_threadpool *pool) { return pool ? pool->last : 1; }

static void wait_done(slim_threadpool *pool, int nth) {
    double start = 0;
    unsigned spins = 0;
    while (atomic_load_explicit(&pool->done, memory_order_acquire) < nth)
        if (!wait_step(&start, &spins)) {
            pthread_mutex_lock(&pool->mu);
            atomic_store(&pool->caller_sleeping, true);
            while (atomic_load(&pool->done) < nth)
                pthread_cond_wait(&pool->cv_done, &pool->mu);
            atomic_store(&pool->caller_sleeping, false);
            pthread_mutex_unlock(&pool->mu);
        }
}

/* The contention monitor, after a run of nth > 1 parts. */
static void monitor(slim_threadpool *pool, int nth) {
    double lo = pool->part_s[0], hi = lo;
    for (int i = 1; i < nth; i++) {
        lo = pool->part_s[i] < lo ? pool->part_s[i] : lo;
        hi = pool->part_s[i] > hi ? pool->part_s[i] : hi;
    }
    pool->quick += lo;
    pool->excess += (nth - 1) * (hi - lo);
    pool->runs++;
    const bool straggled = pool->excess > pool->quick + SLACK_S;
    if (!straggled && pool->runs < WINDOW) return;
    if (straggled) {
        /* a try that straggles soon (within TRY_HOLDS holds) failed: the hold doubles; after a
         * longer quiet spell it starts afresh */
        const double t = now_s();
        pool->hold = t - pool->raised >= TRY_HOLDS * pool->hold ? HOLD_MIN_S
                     : pool->hold * 2 < HOLD_MAX_S              ? pool->hold * 2
                                                                : HOLD_MAX_S;
        pool->active--;
        pool->resume = t + pool->hold;
    }
    pool->runs = 0;
    pool->quick = pool->excess = 0;
}

void slim_threadpool_run(slim_threadpool *pool, slim_task_fn fn, void *arg) {
    if (!pool || pool->n_threads == 1) {
        fn(arg, 0, 1);
        return;
    }
    if (pool->active < pool->n_threads) {
        const double t = now_s();
        if (t >= pool->resume) { /* try one thread more */
            pool->active++;
            pool->raised = t;
            pool->runs = 0;
            pool->quick = pool->excess = 0;
            pool->resume = t + pool->hold;
        }
    }
    const int nth = pool->last = pool->active;
    if (nth == 1) {
        fn(arg, 0, 1);
        return;
    }
    pool->fn = fn;
    pool->arg = arg;
    atomic_store_explicit(&pool->done, 0, memory_order_relaxed);
    const uint32_t gen = ++pool->gen;
    atomic_store(&pool->claim, (uint64_t)gen << 32 | (uint64_t)nth << 16);
    for (int i = 1; i < nth; i++)
        if (atomic_load(&pool->workers[i].sleeping)) {
            pthread_mutex_lock(&pool->mu);
            pthread_cond_signal(&pool->workers[i].cv);
            pthread_mutex_unlock(&pool->mu);
        }
    take_parts(pool, gen);
    wait_done(pool, nth);
    monitor(pool, nth);
}
