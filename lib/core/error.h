/* Per-thread last-error message and internal logging. */
#ifndef SLIM_CORE_ERROR_H
#define SLIM_CORE_ERROR_H

#include "slim.h"

#define SLIM_HIDDEN __attribute__((visibility("hidden")))

/* Record `status` with a printf-style message as this thread's last error and
 * return `status`, so failures read: `return slim_error(SLIM_ERR_FORMAT, "...")`. */
SLIM_HIDDEN slim_status slim_error(slim_status status, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Prefix the current last-error message with "context: " (for callers adding
 * where, e.g. the file name) and return `status`. */
SLIM_HIDDEN slim_status slim_error_prefix(slim_status status, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

SLIM_HIDDEN void slim_error_clear(void);

SLIM_HIDDEN void slim_log(slim_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#endif
