/* slim serve: a growing buffer, a small JSON writer, OpenAI's error envelope. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/grow.h"
#include "serve.h"

void srv_buf_free(srv_buf *b) {
    free(b->p);
    memset(b, 0, sizeof *b);
}

void srv_raw(srv_buf *b, const char *s, size_t n) {
    if (b->oom) return;
    if (!slim_grow((void **)&b->p, &b->cap, b->len + n + 1, 1)) {
        b->oom = 1;
        return;
    }
    if (n) memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

void srv_cstr(srv_buf *b, const char *s) { srv_raw(b, s, strlen(s)); }

void srv_printf(srv_buf *b, const char *fmt, ...) {
    char small[256];
    va_list ap;
    va_start(ap, fmt);
    const int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    if ((size_t)n < sizeof small) {
        srv_raw(b, small, (size_t)n);
        return;
    }
    char *big = malloc((size_t)n + 1);
    if (!big) {
        b->oom = 1;
        return;
    }
    va_start(ap, fmt);
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    va_end(ap);
    srv_raw(b, big, (size_t)n);
    free(big);
}

/* The comma before a value or key, unless it follows a key or opens its container. */
static void sep(srv_buf *b) {
    if (b->after_key) {
        b->after_key = 0;
        return;
    }
    if (b->depth > 0 && b->depth <= (int)sizeof b->items) {
        if (b->items[b->depth - 1]) srv_raw(b, ",", 1);
        b->items[b->depth - 1] = 1;
    }
}

static void open_(srv_buf *b, char c) {
    sep(b);
    srv_raw(b, &c, 1);
    b->depth++;
    if (b->depth <= (int)sizeof b->items) b->items[b->depth - 1] = 0;
}

static void close_(srv_buf *b, char c) {
    if (b->depth > 0) b->depth--;
    srv_raw(b, &c, 1);
}

void srv_obj(srv_buf *b) { open_(b, '{'); }
void srv_obj_end(srv_buf *b) { close_(b, '}'); }
void srv_arr(srv_buf *b) { open_(b, '['); }
void srv_arr_end(srv_buf *b) { close_(b, ']'); }

void srv_keyn(srv_buf *b, const char *key, size_t n) {
    srv_jstr(b, key, n);
    srv_raw(b, ":", 1);
    b->after_key = 1;
}

void srv_key(srv_buf *b, const char *key) { srv_keyn(b, key, strlen(key)); }

/* Bytes of the valid UTF-8 character at s[0..n), or 0 if it is not one (RFC 3629: no
 * overlong forms, surrogates or code points past U+10FFFF); *partial is set when s is a
 * valid start that was cut short. */
static size_t utf8_char(const unsigned char *s, size_t n, int *partial) {
    *partial = 0;
    const unsigned c = s[0];
    size_t len;
    unsigned lo = 0x80, hi = 0xBF; /* the second byte's range */
    if (c < 0x80) return 1;
    if (c >= 0xC2 && c <= 0xDF)
        len = 2;
    else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        if (c == 0xE0) lo = 0xA0;
        if (c == 0xED) hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        if (c == 0xF0) lo = 0x90;
        if (c == 0xF4) hi = 0x8F;
    } else
        return 0;
    for (size_t i = 1; i < len; i++) {
        if (i >= n) {
            *partial = 1;
            return 0;
        }
        const unsigned d = s[i];
        if (d < (i == 1 ? lo : 0x80) || d > (i == 1 ? hi : 0xBF)) return 0;
    }
    return len;
}

size_t srv_utf8_complete(const char *s, size_t n) {
    /* Only the last three bytes can start a character still waiting for bytes. */
    for (size_t back = 1; back <= 3 && back <= n; back++) {
        const unsigned char *p = (const unsigned char *)s + n - back;
        int partial;
        if (*p >= 0xC0 && !utf8_char(p, back, &partial) && partial) return n - back;
        if (*p < 0x80 || *p >= 0xC0) break;
    }
    return n;
}

void srv_jstr(srv_buf *b, const char *s, size_t n) {
    sep(b);
    static const char hex[] = "0123456789abcdef";
    const unsigned char *u = (const unsigned char *)s;
    srv_raw(b, "\"", 1);
    size_t run = 0; /* start of the plain bytes not yet copied */
    for (size_t i = 0; i < n;) {
        const unsigned char c = u[i];
        const char *esc = NULL;
        char ctl[7];
        size_t adv = 1;
        if (c == '"')
            esc = "\\\"";
        else if (c == '\\')
            esc = "\\\\";
        else if (c == '\n')
            esc = "\\n";
        else if (c == '\r')
            esc = "\\r";
        else if (c == '\t')
            esc = "\\t";
        else if (c < 0x20) {
            snprintf(ctl, sizeof ctl, "\\u00%c%c", hex[c >> 4], hex[c & 15]);
            esc = ctl;
        } else if (c >= 0x80) {
            int partial;
            adv = utf8_char(u + i, n - i, &partial);
            if (!adv) {
                esc = "\xEF\xBF\xBD"; /* U+FFFD */
                adv = 1;
            }
        }
        if (esc) {
            srv_raw(b, s + run, i - run);
            srv_cstr(b, esc);
            run = i + adv;
        }
        i += adv;
    }
    srv_raw(b, s + run, n - run);
    srv_raw(b, "\"", 1);
}

void srv_jcstr(srv_buf *b, const char *s) { srv_jstr(b, s, strlen(s)); }

void srv_jint(srv_buf *b, long long v) {
    sep(b);
    srv_printf(b, "%lld", v);
}

void srv_jnum(srv_buf *b, double v) {
    sep(b);
    if (!isfinite(v)) v = -9999.0;
    srv_printf(b, "%.9g", v);
}

void srv_jbool(srv_buf *b, int v) {
    sep(b);
    srv_cstr(b, v ? "true" : "false");
}

void srv_jnull(srv_buf *b) {
    sep(b);
    srv_cstr(b, "null");
}

int srv_fail(srv_err *e, int status, const char *param, const char *fmt, ...) {
    e->status = status;
    e->type = status == 401   ? "authentication_error"
              : status == 404 ? "not_found_error"
              : status == 429 ? "rate_limit_error"
              : status >= 500 ? "server_error"
                              : "invalid_request_error";
    e->code = NULL;
    snprintf(e->param, sizeof e->param, "%s", param ? param : "");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->msg, sizeof e->msg, fmt, ap);
    va_end(ap);
    return 0;
}

void srv_write_error(srv_buf *b, const srv_err *e) {
    srv_obj(b);
    srv_key(b, "error");
    srv_obj(b);
    srv_key(b, "message");
    srv_jcstr(b, e->msg);
    srv_key(b, "type");
    srv_jcstr(b, e->type ? e->type : "invalid_request_error");
    srv_key(b, "param");
    if (e->param[0])
        srv_jcstr(b, e->param);
    else
        srv_jnull(b);
    srv_key(b, "code");
    if (e->code)
        srv_jcstr(b, e->code);
    else
        srv_jint(b, e->status);
    srv_obj_end(b);
    srv_obj_end(b);
}
