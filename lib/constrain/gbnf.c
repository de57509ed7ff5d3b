/* llama.cpp's GBNF grammar syntax to the grammar builder.
 *
 *   root  ::= item ("," item)*     # comment
 *   item  ::= [a-z]+ | "lit\n" | [^"\\] | . | (a | b)? | x{2,5}
 *
 * Rules end at a newline outside parentheses; `|` may be followed by a
 * newline.  Escapes (\n \r \t \\ \" \[ \] \xHH \uHHHH \UHHHHHHHH) are code
 * points, written as UTF-8.  The start rule is "root".  Errors give
 * line:column (1-based, columns in bytes). */
#include "constrain/constrain.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { MAX_NEST = 200, MAX_REPEAT = 100000 };

typedef struct gp {
    slim_cgb *b;
    const char *s;
    size_t n, i;
    int depth;
    slim_status st;
} gp;

static slim_status perr(gp *p, size_t at, const char *fmt, const char *arg) {
    if (p->st != SLIM_OK) return p->st;
    size_t line = 1, col = 1;
    for (size_t k = 0; k < at && k < p->n; k++) {
        if (p->s[k] == '\n')
            line++, col = 1;
        else
            col++;
    }
    char msg[160];
    snprintf(msg, sizeof msg, fmt, arg);
    p->st = slim_error(SLIM_ERR_FORMAT, "gbnf:%zu:%zu: %s", line, col, msg);
    return p->st;
}

static bool word_char(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_';
}

static void space(gp *p, bool newline_ok) {
    while (p->i < p->n) {
        char c = p->s[p->i];
        if (c == ' ' || c == '\t')
            p->i++;
        else if (c == '#') {
            while (p->i < p->n && p->s[p->i] != '\n' && p->s[p->i] != '\r')
                p->i++;
        } else if (newline_ok && (c == '\n' || c == '\r'))
            p->i++;
        else
            break;
    }
}

static int hexval(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* One character (escape or UTF-8) at p->i as a code point; -1 on error. */
static int64_t pchar(gp *p) {
    size_t at = p->i;
    if (at >= p->n) return perr(p, at, "unexpected end of input%s", ""), -1;
    unsigned char c = (unsigned char)p->s[at];
    if (c == '\\') {
        if (at + 1 >= p->n) return perr(p, at, "unfinished escape%s", ""), -1;
        char e = p->s[at + 1];
        int nhex = e == 'x' ? 2 : e == 'u' ? 4 : e == 'U' ? 8 : 0;
        if (nhex) {
            uint32_t v = 0;
            for (int k = 0; k < nhex; k++) {
                int h = at + 2 + (size_t)k < p->n ? hexval(p->s[at + 2 + k]) : -1;
                if (h < 0)
                    return perr(p, at, "expected %s hex digits after the escape",
                                e == 'x'   ? "2"
                                : e == 'u' ? "4"
                                           : "8"),
                           -1;
                v = v * 16 + (uint32_t)h;
            }
            if (v > 0x10FFFF) return perr(p, at, "escape beyond U+10FFFF%s", ""), -1;
            p->i = at + 2 + (size_t)nhex;
            return v;
        }
        p->i = at + 2;
        switch (e) {
        case 'n': return '\n';
        case 'r': return '\r';
        case 't': return '\t';
        case '\\':
        case '"':
        case '[':
        case ']':
        case '-':
        case '^': return e;
        }
        char bad[2] = {e, 0};
        return perr(p, at, "unknown escape \\%s", bad), -1;
    }
    /* UTF-8, validated */
    int len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    if (!len || at + (size_t)len > p->n) return perr(p, at, "invalid UTF-8%s", ""), -1;
    uint32_t v = len == 1 ? c : len == 2 ? c & 31 : len == 3 ? c & 15 : c & 7;
    for (int k = 1; k < len; k++) {
        unsigned char d = (unsigned char)p->s[at + (size_t)k];
        if ((d >> 6) != 2) return perr(p, at, "invalid UTF-8%s", ""), -1;
        v = v << 6 | (d & 63);
    }
    static const uint32_t minv[] = {0, 0, 0x80, 0x800, 0x10000};
    if (v < minv[len] || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF))
        return perr(p, at, "invalid UTF-8%s", ""), -1;
    p->i = at + (size_t)len;
    return v;
}

static int cmp_u32(const void *a, const void *b) {
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

/* Sort and merge [lo,hi] pairs in place; optionally complement over the code
 * points.  r must have room for n + 1 pairs.  Returns the new count. */
SLIM_HIDDEN size_t slim_cranges_norm(uint32_t *r, size_t n, bool negate);
size_t slim_cranges_norm(uint32_t *r, size_t n, bool negate) {
    qsort(r, n, 2 * sizeof(uint32_t), cmp_u32);
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (k && r[2 * i] <= r[2 * k - 1] + 1) {
            if (r[2 * i + 1] > r[2 * k - 1]) r[2 * k - 1] = r[2 * i + 1];
        } else {
            r[2 * k] = r[2 * i];
            r[2 * k + 1] = r[2 * i + 1];
            k++;
        }
    }
    if (!negate) return k;
    uint32_t next = 0;
    size_t m = 0;
    for (size_t i = 0; i < k; i++) {
        uint32_t lo = r[2 * i], hi = r[2 * i + 1];
        if (lo > next) {
            r[2 * m] = next;
            r[2 * m + 1] = lo - 1;
            m++;
        }
        next = hi + 1;
    }
    if (next <= 0x10FFFF) {
        r[2 * m] = next;
        r[2 * m + 1] = 0x10FFFF;
        m++;
    }
    return m;
}

static int32_t pclass(gp *p) {
    size_t at = p->i++;
    bool neg = p->i < p->n && p->s[p->i] == '^';
    if (neg) p->i++;
    size_t n = 0, cap = 16;
    uint32_t *r = malloc(cap * 2 * sizeof(uint32_t));
    if (!r) return p->b->oom = true, -1;
    for (;;) {
        if (p->i >= p->n) {
            free(r);
            return perr(p, at, "unterminated character class%s", ""), -1;
        }
        if (p->s[p->i] == ']') break;
        int64_t lo = pchar(p), hi = lo;
        if (lo < 0) return free(r), -1;
        if (p->i + 1 < p->n && p->s[p->i] == '-' && p->s[p->i + 1] != ']') {
            p->i++;
            hi = pchar(p);
            if (hi < 0) return free(r), -1;
            if (hi < lo) {
                free(r);
                return perr(p, at, "character range out of order%s", ""), -1;
            }
        }
        if (n + 2 > cap) {
            cap *= 2;
            uint32_t *q = realloc(r, cap * 2 * sizeof(uint32_t));
            if (!q) return free(r), p->b->oom = true, -1;
            r = q;
        }
        r[2 * n] = (uint32_t)lo;
        r[2 * n + 1] = (uint32_t)hi;
        n++;
    }
    p->i++;
    n = slim_cranges_norm(r, n, neg);
    int32_t e = slim_cgb_cps(p->b, r, n);
    free(r);
    return e;
}

static int32_t palts(gp *p);

static bool pint(gp *p, int32_t *v) {
    return slim_cg_parse_count(p->s, p->n, &p->i, MAX_REPEAT, v);
}

static int32_t pseq(gp *p) {
    size_t base = p->b->nstk;
    bool nested = p->depth > 0;
    for (;;) {
        space(p, nested);
        if (p->i >= p->n) break;
        char c = p->s[p->i];
        size_t at = p->i;
        int32_t e;
        if (c == '"') {
            p->i++;
            size_t b2 = p->b->nstk;
            for (;;) {
                if (p->i >= p->n) return perr(p, at, "unterminated string literal%s", ""), -1;
                if (p->s[p->i] == '"') break;
                int64_t cp = pchar(p);
                if (cp < 0) return -1;
                uint32_t r[2] = {(uint32_t)cp, (uint32_t)cp};
                slim_cgb_push(p->b, slim_cgb_cps(p->b, r, 1));
            }
            p->i++;
            e = slim_cgb_seq(p->b, b2);
        } else if (c == '[') {
            e = pclass(p);
        } else if (c == '.') {
            p->i++;
            uint32_t r[2] = {0, 0x10FFFF};
            e = slim_cgb_cps(p->b, r, 1);
        } else if (c == '(') {
            if (++p->depth > MAX_NEST) return perr(p, at, "groups nested too deeply%s", ""), -1;
            p->i++;
            e = palts(p);
            if (e < 0) return -1;
            space(p, true);
            if (p->i >= p->n || p->s[p->i] != ')')
                return perr(p, at, "expected ')' to close this group%s", ""), -1;
            p->i++;
            p->depth--;
        } else if (word_char(c)) {
            size_t s0 = p->i;
            while (p->i < p->n && word_char(p->s[p->i]))
                p->i++;
            /* the name of the next rule: `name ::=` ends this one */
            size_t save = p->i;
            space(p, false);
            if (p->i + 3 <= p->n && memcmp(p->s + p->i, "::=", 3) == 0) {
                p->i = s0;
                break;
            }
            p->i = save;
            e = slim_cgb_ref(p->b, slim_cgb_rule_named(p->b, p->s + s0, p->i - s0));
        } else if (c == '<') {
            return perr(p, at, "token references (<...>) are not supported%s", ""), -1;
        } else {
            break;
        }
        if (e < 0) return -1;
        /* postfix operators */
        for (;;) {
            space(p, nested);
            if (p->i >= p->n) break;
            char o = p->s[p->i];
            int32_t lo, hi;
            if (o == '*')
                lo = 0, hi = SLIM_CREP_INF;
            else if (o == '+')
                lo = 1, hi = SLIM_CREP_INF;
            else if (o == '?')
                lo = 0, hi = 1;
            else if (o == '{') {
                size_t oat = p->i++;
                space(p, nested);
                if (!pint(p, &lo)) return perr(p, oat, "expected a number after '{'%s", ""), -1;
                space(p, nested);
                hi = lo;
                if (p->i < p->n && p->s[p->i] == ',') {
                    p->i++;
                    space(p, nested);
                    if (!pint(p, &hi)) hi = SLIM_CREP_INF;
                    space(p, nested);
                }
                if (p->i >= p->n || p->s[p->i] != '}')
                    return perr(p, oat, "expected '}' to close the repetition%s", ""), -1;
                if (lo > MAX_REPEAT || (hi != SLIM_CREP_INF && hi > MAX_REPEAT))
                    return perr(p, oat, "repetition count too large%s", ""), -1;
                if (hi < lo) return perr(p, oat, "repetition {m,n} with n < m%s", ""), -1;
            } else {
                break;
            }
            p->i++;
            e = slim_cgb_rep(p->b, e, lo, hi);
        }
        slim_cgb_push(p->b, e);
        if (p->st != SLIM_OK) return -1;
    }
    if (p->st != SLIM_OK) return -1;
    return slim_cgb_seq(p->b, base);
}

static int32_t palts(gp *p) {
    size_t base = p->b->nstk;
    for (;;) {
        int32_t e = pseq(p);
        if (e < 0) return -1;
        slim_cgb_push(p->b, e);
        space(p, p->depth > 0);
        if (p->i < p->n && p->s[p->i] == '|') {
            p->i++;
            space(p, true);
            continue;
        }
        break;
    }
    return slim_cgb_alt(p->b, base);
}

slim_status slim_gbnf_build(slim_cgb *b, const char *text, size_t len, int32_t *root) {
    gp p = {.b = b, .s = text, .n = len, .st = SLIM_OK};
    bool any = false;
    uint8_t *defined = NULL;
    size_t ndef = 0;
    for (;;) {
        space(&p, true);
        if (p.i >= p.n) break;
        size_t at = p.i;
        while (p.i < p.n && word_char(p.s[p.i]))
            p.i++;
        if (p.i == at) {
            perr(&p, at, "expected a rule name%s", "");
            break;
        }
        int32_t r = slim_cgb_rule_named(b, p.s + at, p.i - at);
        if (r < 0) break;
        if ((size_t)r >= ndef) {
            uint8_t *d = realloc(defined, (size_t)r + 64);
            if (!d) {
                b->oom = true;
                break;
            }
            memset(d + ndef, 0, (size_t)r + 64 - ndef);
            defined = d;
            ndef = (size_t)r + 64;
        }
        if (defined[r]) {
            char nm[64];
            snprintf(nm, sizeof nm, "%.*s", (int)(p.i - at > 60 ? 60 : p.i - at), p.s + at);
            perr(&p, at, "rule '%s' is defined twice", nm);
            break;
        }
        defined[r] = 1;
        space(&p, false);
        if (p.i + 3 > p.n || memcmp(p.s + p.i, "::=", 3) != 0) {
            perr(&p, p.i, "expected '::=' after the rule name%s", "");
            break;
        }
        p.i += 3;
        space(&p, true);
        int32_t e = palts(&p);
        if (e < 0) break;
        slim_cgb_rule_set(b, r, e);
        space(&p, false);
        if (p.i < p.n && p.s[p.i] != '\n' && p.s[p.i] != '\r') {
            char got[2] = {p.s[p.i], 0};
            perr(&p, p.i, "unexpected '%s'", got);
            break;
        }
        any = true;
    }
    free(defined);
    if (p.st != SLIM_OK) return p.st;
    if (b->oom) return slim_error(SLIM_ERR_NOMEM, "gbnf: out of memory");
    if (!any) return slim_error(SLIM_ERR_FORMAT, "gbnf: no rules");
    for (size_t r = 0; r < b->nr; r++)
        if (b->rule_name[r] && strcmp(b->rule_name[r], "root") == 0) {
            *root = (int32_t)r;
            return SLIM_OK;
        }
    return slim_error(SLIM_ERR_FORMAT, "gbnf: no rule named 'root'");
}
