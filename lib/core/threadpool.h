/* A fixed pool of worker threads that run one task at a time, split into
 * parts that any of the threads may take. */
#ifndef SLIM_CORE_THREADPOOL_H
#define SLIM_CORE_THREADPOOL_H

#include "core/error.h"

#include <pthread.h>

typedef struct slim_threadpool slim_threadpool;

/* pthread_create with every signal blocked in the new thread: a library's threads must not take
 * the program's asynchronous signals (a Ctrl-C handled on a worker cannot interrupt the main
 * thread's blocking read).  Returns pthread_create's result. */
SLIM_HIDDEN int slim_thread_start(pthread_t *thread, void *(*fn)(void *), void *arg);

/* One run calls fn once for each part ith = 0 .. nth-1, where 1 <= nth <= the pool's size. A part
 * may run on any thread (the caller included) and one thread may run several parts one after
 * another, so fn must split its work by (ith, nth) alone, give results that do not depend on nth,
 * and index any per-thread scratch by ith (below the pool's size). */
typedef void (*slim_task_fn)(void *arg, int ith, int nth);

SLIM_HIDDEN slim_status slim_threadpool_create(int n_threads, slim_threadpool **out);
SLIM_HIDDEN void slim_threadpool_free(slim_threadpool *pool);
SLIM_HIDDEN int slim_threadpool_size(const slim_threadpool *pool);
/* Run every part of fn and return when all have finished.  nth is the pool's size, or fewer while
 * the pool finds that some threads wait on others that the OS does not run (cores busy with other
 * work): then it runs with one thread fewer for a while, and tries again. */
SLIM_HIDDEN void slim_threadpool_run(slim_threadpool *pool, slim_task_fn fn, void *arg);
/* The nth of the last run (the pool's size before any), for tests and diagnostics. */
SLIM_HIDDEN int slim_threadpool_active(const slim_threadpool *pool);

#endif
