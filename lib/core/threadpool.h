/* A fixed pool of worker threads that run one task at a time on all threads. */
#ifndef SLIM_CORE_THREADPOOL_H
#define SLIM_CORE_THREADPOOL_H

#include "core/error.h"

typedef struct slim_threadpool slim_threadpool;

/* fn runs once on each of nth threads with ith = 0 .. nth-1 (0 is the caller). */
typedef void (*slim_task_fn)(void *arg, int ith, int nth);

SLIM_HIDDEN slim_status slim_threadpool_create(int n_threads, slim_threadpool **out);
SLIM_HIDDEN void slim_threadpool_free(slim_threadpool *pool);
SLIM_HIDDEN int slim_threadpool_size(const slim_threadpool *pool);
/* Run fn on every thread and return when all have finished. */
SLIM_HIDDEN void slim_threadpool_run(slim_threadpool *pool, slim_task_fn fn, void *arg);

#endif
