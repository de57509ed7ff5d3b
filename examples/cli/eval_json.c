/* slim eval: a small JSON DOM for task files, datasets and model outputs (the
 * CLI sees only slim.h, so it carries its own), and a growable string buffer
 * that writes JSON and HTML. */
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "eval.h"

typedef struct jp {
    const char *s, *end, *start;
    char *err;
    size_t err_cap;
    int depth;
} jp;

static void jp_fail(jp *p, const char *what) {
    if (p->err[0]) return;
    int line = 1, col = 1;
    for (const char *q = p->start; q < p->s && q < p->end; q++) {
        if (*q == '\n')
            line++, col = 1;
        else
            col++;
    }
    snprintf(p->err, p->err_cap, "%d:%d: %s", line, col, what);
}

static void jp_ws(jp *p) {
    while (p->s < p->end && (*p->s == ' ' || *p->s == '\t' || *p->s == '\n' || *p->s == '\r'))
        p->s++;
}

static ej *ej_new(int type) {
    ej *v = calloc(1, sizeof *v);
    if (v) v->type = type;
    return v;
}

static int push(ej *v, ej *item, char *key) {
    if (v->n == 0 || (v->n >= 4 && (v->n & (v->n - 1)) == 0)) {
        size_t cap = v->n ? v->n * 2 : 4;
        ej **ni = realloc(v->items, cap * sizeof *ni);
        if (!ni) return 0;
        v->items = ni;
        if (v->type == EJ_OBJ) {
            char **nk = realloc(v->keys, cap * sizeof *nk);
            if (!nk) return 0;
            v->keys = nk;
        }
    }
    v->items[v->n] = item;
    if (v->type == EJ_OBJ) v->keys[v->n] = key;
    v->n++;
    return 1;
}

static void put_utf8(sbuf *b, unsigned cp) {
    char u[4];
    size_t n;
    if (cp < 0x80)
        u[0] = (char)cp, n = 1;
    else if (cp < 0x800)
        u[0] = (char)(0xC0 | cp >> 6), u[1] = (char)(0x80 | (cp & 63)), n = 2;
    else if (cp < 0x10000)
        u[0] = (char)(0xE0 | cp >> 12), u[1] = (char)(0x80 | (cp >> 6 & 63)),
        u[2] = (char)(0x80 | (cp & 63)), n = 3;
    else
        u[0] = (char)(0xF0 | cp >> 18), u[1] = (char)(0x80 | (cp >> 12 & 63)),
        u[2] = (char)(0x80 | (cp >> 6 & 63)), u[3] = (char)(0x80 | (cp & 63)), n = 4;
    sb_add(b, u, n);
}

static int hex4(const char *s, unsigned *out) {
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        char c = s[i];
        v <<= 4;
        if (c >= '0' && c <= '9')
            v |= (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f')
            v |= (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            v |= (unsigned)(c - 'A' + 10);
        else
            return 0;
    }
    *out = v;
    return 1;
}

static char *jp_string(jp *p, size_t *len) {
    sbuf b = {0};
    p->s++; /* the opening quote */
    while (p->s < p->end && *p->s != '"') {
        unsigned char c = (unsigned char)*p->s;
        if (c < 0x20) {
            jp_fail(p, "control character in a string");
            sb_free(&b);
            return NULL;
        }
        if (c != '\\') {
            sb_add(&b, p->s++, 1);
            continue;
        }
        if (p->end - p->s < 2) break;
        char e = p->s[1];
        p->s += 2;
        const char *simple = strchr("\"\\/bfnrt", e);
        if (simple && e) {
            static const char out[] = "\"\\/\b\f\n\r\t";
            sb_add(&b, &out[simple - "\"\\/bfnrt"], 1);
        } else if (e == 'u' && p->end - p->s >= 4) {
            unsigned cp;
            if (!hex4(p->s, &cp)) break;
            p->s += 4;
            if (cp >= 0xD800 && cp < 0xDC00 && p->end - p->s >= 6 && p->s[0] == '\\' &&
                p->s[1] == 'u') {
                unsigned lo;
                if (hex4(p->s + 2, &lo) && lo >= 0xDC00 && lo < 0xE000) {
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                    p->s += 6;
                }
            }
            put_utf8(&b, cp);
        } else {
            jp_fail(p, "bad escape in a string");
            sb_free(&b);
            return NULL;
        }
    }
    if (p->s >= p->end || b.oom) {
        jp_fail(p, b.oom ? "out of memory" : "unterminated string");
        sb_free(&b);
        return NULL;
    }
    p->s++;
    sb_add(&b, "", 0);
    if (!b.p) b.p = calloc(1, 1);
    *len = b.n;
    return b.p;
}

static ej *jp_value(jp *p) {
    jp_ws(p);
    if (p->s >= p->end) {
        jp_fail(p, "unexpected end of input");
        return NULL;
    }
    if (++p->depth > 200) {
        jp_fail(p, "nested too deeply");
        return NULL;
    }
    ej *v = NULL;
    char c = *p->s;
    if (c == '{' || c == '[') {
        v = ej_new(c == '{' ? EJ_OBJ : EJ_ARR);
        if (!v) goto oom;
        p->s++;
        jp_ws(p);
        char close = c == '{' ? '}' : ']';
        if (p->s < p->end && *p->s == close) {
            p->s++;
            goto done;
        }
        for (;;) {
            char *key = NULL;
            if (v->type == EJ_OBJ) {
                jp_ws(p);
                size_t kl;
                if (p->s >= p->end || *p->s != '"' || !(key = jp_string(p, &kl))) {
                    jp_fail(p, "expected a string key");
                    goto bad;
                }
                jp_ws(p);
                if (p->s >= p->end || *p->s != ':') {
                    free(key);
                    jp_fail(p, "expected ':'");
                    goto bad;
                }
                p->s++;
            }
            ej *item = jp_value(p);
            if (!item || !push(v, item, key)) {
                free(key);
                ej_free(item);
                goto bad;
            }
            jp_ws(p);
            if (p->s < p->end && *p->s == ',') {
                p->s++;
                continue;
            }
            if (p->s < p->end && *p->s == close) {
                p->s++;
                break;
            }
            jp_fail(p, v->type == EJ_OBJ ? "expected ',' or '}'" : "expected ',' or ']'");
            goto bad;
        }
    } else if (c == '"') {
        if (!(v = ej_new(EJ_STR)) || !(v->str = jp_string(p, &v->len))) goto bad;
    } else if (c == 't' && p->end - p->s >= 4 && !memcmp(p->s, "true", 4)) {
        if (!(v = ej_new(EJ_BOOL))) goto oom;
        v->num = 1, p->s += 4;
    } else if (c == 'f' && p->end - p->s >= 5 && !memcmp(p->s, "false", 5)) {
        if (!(v = ej_new(EJ_BOOL))) goto oom;
        p->s += 5;
    } else if (c == 'n' && p->end - p->s >= 4 && !memcmp(p->s, "null", 4)) {
        if (!(v = ej_new(EJ_NULL))) goto oom;
        p->s += 4;
    } else if (c == '-' || (c >= '0' && c <= '9')) {
        char tmp[64];
        size_t n = 0;
        while (p->s + n < p->end && n < sizeof tmp - 1 && strchr("+-.eE0123456789", p->s[n]))
            n++;
        memcpy(tmp, p->s, n);
        tmp[n] = 0;
        char *e;
        double x = strtod(tmp, &e);
        if (e != tmp + n) {
            jp_fail(p, "bad number");
            return NULL;
        }
        if (!(v = ej_new(EJ_NUM))) goto oom;
        v->num = x, p->s += n;
    } else {
        jp_fail(p, "unexpected character");
        return NULL;
    }
done:
    p->depth--;
    return v;
oom:
    jp_fail(p, "out of memory");
bad:
    ej_free(v);
    return NULL;
}

ej *ej_parse(const char *text, size_t len, char *err, size_t err_cap) {
    jp p = {text, text + len, text, err, err_cap, 0};
    err[0] = 0;
    ej *v = jp_value(&p);
    if (!v) return NULL;
    jp_ws(&p);
    if (p.s != p.end) {
        jp_fail(&p, "text after the JSON value");
        ej_free(v);
        return NULL;
    }
    return v;
}

void ej_free(ej *v) {
    if (!v) return;
    for (size_t i = 0; i < v->n; i++) {
        ej_free(v->items[i]);
        if (v->keys) free(v->keys[i]);
    }
    free(v->items);
    free(v->keys);
    free(v->str);
    free(v);
}

const ej *ej_get(const ej *obj, const char *key) {
    if (!obj || obj->type != EJ_OBJ) return NULL;
    for (size_t i = 0; i < obj->n; i++)
        if (!strcmp(obj->keys[i], key)) return obj->items[i];
    return NULL;
}

const ej *ej_path(const ej *v, const char *path) {
    char key[256];
    while (v && *path) {
        const char *dot = strchr(path, '.');
        size_t n = dot ? (size_t)(dot - path) : strlen(path);
        if (n >= sizeof key) return NULL;
        memcpy(key, path, n);
        key[n] = 0;
        v = ej_get(v, key);
        path += n + (dot != NULL);
    }
    return v;
}

const char *ej_str(const ej *v) { return v && v->type == EJ_STR ? v->str : NULL; }

int ej_num(const ej *v, double *out) {
    if (!v || v->type != EJ_NUM) return 0;
    *out = v->num;
    return 1;
}

int ej_equal(const ej *a, const ej *b) {
    if (!a || !b || a->type != b->type) return a == b;
    switch (a->type) {
    case EJ_NULL: return 1;
    case EJ_BOOL:
    case EJ_NUM: return a->num == b->num;
    case EJ_STR: return a->len == b->len && !memcmp(a->str, b->str, a->len);
    case EJ_ARR:
        if (a->n != b->n) return 0;
        for (size_t i = 0; i < a->n; i++)
            if (!ej_equal(a->items[i], b->items[i])) return 0;
        return 1;
    default:
        if (a->n != b->n) return 0;
        for (size_t i = 0; i < a->n; i++)
            if (!ej_equal(a->items[i], ej_get(b, a->keys[i]))) return 0;
        return 1;
    }
}

/* ---- sbuf ---------------------------------------------------------------------------------- */
void sb_add(sbuf *b, const char *s, size_t n) {
    if (b->oom) return;
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->n + n + 1)
            cap *= 2;
        char *np = realloc(b->p, cap);
        if (!np) {
            b->oom = 1;
            return;
        }
        b->p = np, b->cap = cap;
    }
    if (n) memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = 0;
}

void sb_puts(sbuf *b, const char *s) { sb_add(b, s, strlen(s)); }

void sb_printf(sbuf *b, const char *fmt, ...) {
    char tmp[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    if ((size_t)n < sizeof tmp) {
        sb_add(b, tmp, (size_t)n);
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
    sb_add(b, big, (size_t)n);
    free(big);
}

void sb_json_str(sbuf *b, const char *s, size_t n) {
    sb_add(b, "\"", 1);
    size_t run = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != '"' && c != '\\' && c != 0x7f) continue;
        sb_add(b, s + run, i - run);
        run = i + 1;
        switch (c) {
        case '"': sb_add(b, "\\\"", 2); break;
        case '\\': sb_add(b, "\\\\", 2); break;
        case '\n': sb_add(b, "\\n", 2); break;
        case '\t': sb_add(b, "\\t", 2); break;
        case '\r': sb_add(b, "\\r", 2); break;
        default: sb_printf(b, "\\u%04x", c);
        }
    }
    sb_add(b, s + run, n - run);
    sb_add(b, "\"", 1);
}

void sb_html(sbuf *b, const char *s) {
    for (; *s; s++) {
        switch (*s) {
        case '<': sb_puts(b, "&lt;"); break;
        case '>': sb_puts(b, "&gt;"); break;
        case '&': sb_puts(b, "&amp;"); break;
        case '"': sb_puts(b, "&quot;"); break;
        default: sb_add(b, s, 1);
        }
    }
}

void sb_num(sbuf *b, double x) {
    if (!isfinite(x)) {
        sb_puts(b, "null");
        return;
    }
    char tmp[40];
    for (int prec = 6; prec <= 17; prec++) {
        snprintf(tmp, sizeof tmp, "%.*g", prec, x);
        if (strtod(tmp, NULL) == x) break;
    }
    sb_puts(b, tmp);
}

void sb_json(sbuf *b, const ej *v) {
    if (!v) {
        sb_puts(b, "null");
        return;
    }
    switch (v->type) {
    case EJ_NULL: sb_puts(b, "null"); break;
    case EJ_BOOL: sb_puts(b, v->num ? "true" : "false"); break;
    case EJ_NUM: sb_num(b, v->num); break;
    case EJ_STR: sb_json_str(b, v->str, v->len); break;
    default:
        sb_add(b, v->type == EJ_ARR ? "[" : "{", 1);
        for (size_t i = 0; i < v->n; i++) {
            if (i) sb_add(b, ",", 1);
            if (v->type == EJ_OBJ) {
                sb_json_str(b, v->keys[i], strlen(v->keys[i]));
                sb_add(b, ":", 1);
            }
            sb_json(b, v->items[i]);
        }
        sb_add(b, v->type == EJ_ARR ? "]" : "}", 1);
    }
}

void sb_free(sbuf *b) {
    free(b->p);
    *b = (sbuf){0};
}
