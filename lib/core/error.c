#include "core/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

enum { ERR_CAP = 1024 };
static _Thread_local char last_error[ERR_CAP];

static slim_log_fn log_fn;
static void *log_user;
static slim_log_level log_max = SLIM_LOG_INFO;

slim_status slim_error(slim_status status, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_error, sizeof last_error, fmt, ap);
    va_end(ap);
    return status;
}

slim_status slim_error_prefix(slim_status status, const char *fmt, ...) {
    char prefix[ERR_CAP], old[ERR_CAP];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    memcpy(old, last_error, sizeof old);
    size_t n = strlen(prefix);
    if (n > ERR_CAP - 3) n = ERR_CAP - 3;
    memcpy(last_error, prefix, n);
    memcpy(last_error + n, ": ", 2);
    size_t m = strlen(old);
    if (m > ERR_CAP - 3 - n) m = ERR_CAP - 3 - n;
    memcpy(last_error + n + 2, old, m);
    last_error[n + 2 + m] = '\0';
    return status;
}

void slim_error_clear(void) { last_error[0] = '\0'; }

const char *slim_last_error(void) { return last_error; }

const char *slim_status_string(slim_status status) {
    switch (status) {
    case SLIM_OK: return "ok";
    case SLIM_ERR_INVALID_ARG: return "invalid argument";
    case SLIM_ERR_NOMEM: return "out of memory";
    case SLIM_ERR_IO: return "I/O error";
    case SLIM_ERR_FORMAT: return "malformed file";
    case SLIM_ERR_UNSUPPORTED: return "unsupported";
    case SLIM_ERR_CONTEXT_FULL: return "context full";
    case SLIM_ERR_BACKEND: return "backend error";
    case SLIM_ERR_ABORTED: return "aborted";
    case SLIM_ERR_BUFFER_TOO_SMALL: return "buffer too small";
    case SLIM_ERR_INTERNAL: return "internal error";
    case SLIM_ERR_BUSY: return "busy";
    }
    return "unknown status";
}

void slim_set_log_callback(slim_log_fn fn, void *user, slim_log_level max_level) {
    log_fn = fn;
    log_user = user;
    log_max = max_level;
}

void slim_log(slim_log_level level, const char *fmt, ...) {
    if (!log_fn || level > log_max) return;
    char msg[ERR_CAP];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    log_fn(level, msg, log_user);
}
