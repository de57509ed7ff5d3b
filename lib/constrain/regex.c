/* Regular expressions (the ECMAScript subset JSON Schema "pattern" and users
 * need) to grammar expressions, exactly or not at all.
 *
 * Supported: literals, `.`, classes with ranges and negation, \d \w \s and
 * their negations, escapes (\t \n \r \f \v \0 \xHH \uHHHH \u{H..} and
 * escaped punctuation), groups ( ) (?: ) (?<name> ), alternation, the
 * quantifiers * + ? {m} {m,} {m,n} (lazy forms too: they do not change the
 * language), and ^ / $ at the start / end of a top-level alternative.
 * Anything else (lookaround, backreferences, \b, anchors elsewhere, flags) is
 * a compile error naming the construct and its byte offset.
 *
 * In JSON mode each character becomes a JSON string character: the raw
 * UTF-8 where JSON allows it, and the escape json.dumps writes for '"', '\'
 * and control characters (also "\/").  Other \uXXXX spellings are not
 * accepted for constrained characters: a subset of the encodings, so never
 * an invalid value. */
#include "constrain/constrain.h"
#include "constrain/jsongram.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { MAX_NEST = 100, MAX_REPEAT = 10000 };

SLIM_HIDDEN size_t slim_cranges_norm(uint32_t *r, size_t n, bool negate);

typedef struct rp {
    slim_cgb *b;
    const char *s;
    size_t n, i;
    int depth;
    bool json, search;
    int32_t any_json; /* any JSON string character, for unanchored patterns */
    slim_status st;
} rp;

static slim_status rerr(rp *p, size_t at, const char *what) {
    if (p->st == SLIM_OK)
        p->st = slim_error(SLIM_ERR_UNSUPPORTED, "regex: %s at offset %zu", what, at);
    return p->st;
}

typedef struct cps {
    uint32_t *r;
    size_t n, cap;
} cps;

static bool add(rp *p, cps *c, uint32_t lo, uint32_t hi) {
    if (c->n + 2 > c->cap) {
        size_t cap = c->cap ? 2 * c->cap : 16;
        uint32_t *q = realloc(c->r, cap * 2 * sizeof(uint32_t));
        if (!q) return p->b->oom = true, false;
        c->r = q;
        c->cap = cap;
    }
    c->r[2 * c->n] = lo;
    c->r[2 * c->n + 1] = hi;
    c->n++;
    return true;
}

static const uint32_t SPACE[] = {9,      13,     32,     32,     0xA0,   0xA0,   0x1680,
                                 0x1680, 0x2000, 0x200A, 0x2028, 0x2029, 0x202F, 0x202F,
                                 0x205F, 0x205F, 0x3000, 0x3000, 0xFEFF, 0xFEFF};
static const uint32_t DIGIT[] = {'0', '9'};
static const uint32_t WORD[] = {'0', '9', 'A', 'Z', '_', '_', 'a', 'z'};

/* Add the class of \d \w \s (negated for upper case) to c. */
static bool add_named(rp *p, cps *c, char e) {
    const uint32_t *t;
    size_t n;
    switch (e | 0x20) {
    case 'd': t = DIGIT, n = 1; break;
    case 'w': t = WORD, n = 4; break;
    case 's': t = SPACE, n = 10; break;
    default: return false;
    }
    if (!(e & 0x20)) { /* \D \W \S: the complement */
        cps tmp = {0};
        for (size_t i = 0; i < n; i++)
            if (!add(p, &tmp, t[2 * i], t[2 * i + 1])) return free(tmp.r), false;
        if (!add(p, &tmp, 0, 0)) return free(tmp.r), false; /* room for the complement */
        tmp.n--;
        size_t m = slim_cranges_norm(tmp.r, tmp.n, true);
        for (size_t i = 0; i < m; i++)
            if (!add(p, c, tmp.r[2 * i], tmp.r[2 * i + 1])) return free(tmp.r), false;
        free(tmp.r);
        return true;
    }
    for (size_t i = 0; i < n; i++)
        if (!add(p, c, t[2 * i], t[2 * i + 1])) return false;
    return true;
}

static int hexv(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* One literal character (after a backslash or raw); -1 on error, -2 for a
 * class escape (\d ...), whose letter is left in *cls. */
static int64_t rchar(rp *p, bool in_class, char *cls) {
    size_t at = p->i;
    unsigned char c = (unsigned char)p->s[p->i];
    if (c != '\\') {
        int len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
        if (!len || p->i + (size_t)len > p->n) return rerr(p, at, "invalid UTF-8"), -1;
        uint32_t v = len == 1 ? c : len == 2 ? c & 31 : len == 3 ? c & 15 : c & 7;
        for (int k = 1; k < len; k++) {
            unsigned char d = (unsigned char)p->s[p->i + (size_t)k];
            if ((d >> 6) != 2) return rerr(p, at, "invalid UTF-8"), -1;
            v = v << 6 | (d & 63);
        }
        if (v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) return rerr(p, at, "invalid UTF-8"), -1;
        p->i += (size_t)len;
        return v;
    }
    if (p->i + 1 >= p->n) return rerr(p, at, "trailing backslash"), -1;
    char e = p->s[p->i + 1];
    p->i += 2;
    switch (e) {
    case 't': return '\t';
    case 'n': return '\n';
    case 'r': return '\r';
    case 'f': return '\f';
    case 'v': return '\v';
    case '0':
        if (p->i < p->n && p->s[p->i] >= '0' && p->s[p->i] <= '9')
            return rerr(p, at, "octal escape"), -1;
        return 0;
    case 'd':
    case 'D':
    case 'w':
    case 'W':
    case 's':
    case 'S': *cls = e; return -2;
    case 'b':
        if (in_class) return '\b';
        return rerr(p, at, "word boundary \\b"), -1;
    case 'x':
    case 'u': {
        uint32_t v = 0;
        if (e == 'u' && p->i < p->n && p->s[p->i] == '{') {
            size_t k = p->i + 1;
            int nd = 0;
            while (k < p->n && hexv(p->s[k]) >= 0 && nd < 7)
                v = v * 16 + (uint32_t)hexv(p->s[k++]), nd++;
            if (!nd || k >= p->n || p->s[k] != '}' || v > 0x10FFFF)
                return rerr(p, at, "bad \\u{...} escape"), -1;
            p->i = k + 1;
            return v;
        }
        int nd = e == 'x' ? 2 : 4;
        for (int k = 0; k < nd; k++) {
            int h = p->i < p->n ? hexv(p->s[p->i]) : -1;
            if (h < 0) return rerr(p, at, "bad hex escape"), -1;
            v = v * 16 + (uint32_t)h;
            p->i++;
        }
        if (v >= 0xD800 && v <= 0xDFFF) return rerr(p, at, "surrogate escape"), -1;
        return v;
    }
    default:
        if ((e >= 'a' && e <= 'z') || (e >= 'A' && e <= 'Z') || (e >= '0' && e <= '9')) {
            char m[48];
            snprintf(m, sizeof m, "escape \\%c (backreference, property or unknown)", e);
            return rerr(p, at, m), -1;
        }
        if ((unsigned char)e >= 0x80) return rerr(p, at, "escaped non-ASCII character"), -1;
        return (unsigned char)e; /* escaped punctuation */
    }
}

/* The expression for one character of the set (ranges normalized). */
static int32_t set_expr(rp *p, uint32_t *r, size_t n) {
    slim_cgb *b = p->b;
    if (!p->json) return slim_cgb_cps(b, r, n);
    /* raw: the set minus '"', '\' and control characters */
    cps raw = {0};
    uint32_t ctl_lo[2] = {0,
                          0}; /* control characters present: bit masks for 0x00-0x0F, 0x10-0x1F */
    bool quote = false, bslash = false, slash = false;
    for (size_t i = 0; i < n; i++) {
        uint32_t lo = r[2 * i], hi = r[2 * i + 1];
        for (uint32_t c = lo; c <= hi && c < 0x20; c++)
            ctl_lo[c >> 4] |= 1u << (c & 15);
        if ('"' >= lo && '"' <= hi) quote = true;
        if ('\\' >= lo && '\\' <= hi) bslash = true;
        if ('/' >= lo && '/' <= hi) slash = true;
        if (lo < 0x20) lo = 0x20;
        if (lo > hi) continue;
        /* split around '"' and '\' */
        uint32_t cut[] = {'"', '\\'};
        for (int k = 0; k < 2; k++)
            if (cut[k] >= lo && cut[k] <= hi) {
                if (cut[k] > lo && !add(p, &raw, lo, cut[k] - 1)) goto oom;
                lo = cut[k] + 1;
            }
        if (lo <= hi && !add(p, &raw, lo, hi)) goto oom;
    }
    size_t base = b->nstk;
    if (raw.n) slim_cgb_push(b, slim_cgb_cps(b, raw.r, raw.n));
    free(raw.r);
    /* escapes: \" \\ \/ \b \f \n \r \t and \u00XX for control characters */
    uint64_t e[4] = {0};
#define SETB(ch) e[(ch) >> 6] |= 1ull << ((ch)&63)
    if (quote) SETB('"');
    if (bslash) SETB('\\');
    if (slash) SETB('/');
    if (ctl_lo[0] & (1u << 8)) SETB('b');
    if (ctl_lo[0] & (1u << 12)) SETB('f');
    if (ctl_lo[0] & (1u << 10)) SETB('n');
    if (ctl_lo[0] & (1u << 13)) SETB('r');
    if (ctl_lo[0] & (1u << 9)) SETB('t');
    size_t eb = b->nstk;
    if (e[0] | e[1]) slim_cgb_push(b, slim_cgb_set(b, e));
    for (int hi = 0; hi < 2; hi++) {
        if (!ctl_lo[hi]) continue;
        uint64_t d[4] = {0};
        for (int lo = 0; lo < 16; lo++)
            if (ctl_lo[hi] & (1u << lo)) {
                int ch = lo < 10 ? '0' + lo : 'a' + lo - 10;
                d[ch >> 6] |= 1ull << (ch & 63);
                if (lo >= 10) {
                    ch = 'A' + lo - 10;
                    d[ch >> 6] |= 1ull << (ch & 63);
                }
            }
        size_t sb = b->nstk;
        slim_cgb_push(b, slim_cgb_lit(b, hi ? "u001" : "u000", 4));
        slim_cgb_push(b, slim_cgb_set(b, d));
        slim_cgb_push(b, slim_cgb_seq(b, sb));
    }
    if (b->nstk > eb)
        slim_cgb_push(b, slim_cgb_seq2(b, slim_cgb_lit(b, "\\", 1), slim_cgb_alt(b, eb)));
#undef SETB
    return slim_cgb_alt(b, base);
oom:
    free(raw.r);
    b->oom = true;
    return -1;
}

static int32_t one_char(rp *p, uint32_t c) {
    uint32_t r[2] = {c, c};
    return set_expr(p, r, 1);
}

static int32_t ralt(rp *p);

static int32_t rclass(rp *p) {
    size_t at = p->i++;
    bool neg = p->i < p->n && p->s[p->i] == '^';
    if (neg) p->i++;
    cps c = {0};
    bool first = true;
    for (;;) {
        if (p->i >= p->n) {
            free(c.r);
            return rerr(p, at, "unterminated character class"), -1;
        }
        if (p->s[p->i] == ']' && !first) break;
        if (p->s[p->i] == ']' && first) { /* JS: [] matches nothing, [^] anything */
            break;
        }
        first = false;
        if (p->s[p->i] == '[' && p->i + 1 < p->n &&
            (p->s[p->i + 1] == ':' || p->s[p->i + 1] == '='))
            return free(c.r), rerr(p, p->i, "POSIX class"), -1;
        char cls = 0;
        int64_t lo = rchar(p, true, &cls);
        if (lo == -1) return free(c.r), -1;
        if (lo == -2) {
            if (!add_named(p, &c, cls)) return free(c.r), -1;
            continue;
        }
        int64_t hi = lo;
        if (p->i + 1 < p->n && p->s[p->i] == '-' && p->s[p->i + 1] != ']') {
            p->i++;
            hi = rchar(p, true, &cls);
            if (hi == -1) return free(c.r), -1;
            if (hi == -2) return free(c.r), rerr(p, at, "class escape as a range end"), -1;
            if (hi < lo) return free(c.r), rerr(p, at, "range out of order"), -1;
        }
        if (!add(p, &c, (uint32_t)lo, (uint32_t)hi)) return free(c.r), -1;
    }
    p->i++;
    if (!add(p, &c, 0, 0)) return free(c.r), -1; /* room for the complement */
    c.n--;
    size_t n = slim_cranges_norm(c.r, c.n, neg);
    int32_t e = n ? set_expr(p, c.r, n) : slim_cgb_none(p->b);
    free(c.r);
    return e;
}

static bool rnum(rp *p, int32_t *v) {
    return slim_cg_parse_count(p->s, p->n, &p->i, MAX_REPEAT, v);
}

/* One top-level-or-nested alternative; anchors are legal only at its ends at
 * depth 0. */
static int32_t rseq(rp *p, bool *anc_start, bool *anc_end) {
    slim_cgb *b = p->b;
    size_t base = b->nstk;
    bool any = false;
    while (p->i < p->n && p->st == SLIM_OK) {
        char c = p->s[p->i];
        size_t at = p->i;
        int32_t e;
        if (c == '|' || c == ')') break;
        if (c == '^') {
            if (p->depth || any) return rerr(p, at, "anchor ^ inside the pattern"), -1;
            *anc_start = true;
            p->i++;
            continue;
        }
        if (c == '$') {
            p->i++;
            if (p->depth || (p->i < p->n && p->s[p->i] != '|'))
                return rerr(p, at, "anchor $ inside the pattern"), -1;
            *anc_end = true;
            break;
        }
        any = true;
        if (c == '(') {
            p->i++;
            if (p->i < p->n && p->s[p->i] == '?') {
                if (p->i + 1 < p->n && p->s[p->i + 1] == ':')
                    p->i += 2;
                else if (p->i + 1 < p->n && p->s[p->i + 1] == '<' && p->i + 2 < p->n &&
                         p->s[p->i + 2] != '=' && p->s[p->i + 2] != '!') {
                    while (p->i < p->n && p->s[p->i] != '>')
                        p->i++;
                    if (p->i >= p->n) return rerr(p, at, "unterminated group name"), -1;
                    p->i++;
                } else
                    return rerr(p, at, "lookaround or group flag (?...)"), -1;
            }
            if (++p->depth > MAX_NEST) return rerr(p, at, "groups nested too deeply"), -1;
            e = ralt(p);
            if (e < 0) return -1;
            if (p->i >= p->n || p->s[p->i] != ')') return rerr(p, at, "unclosed group"), -1;
            p->i++;
            p->depth--;
        } else if (c == '[') {
            e = rclass(p);
        } else if (c == '.') {
            p->i++;
            uint32_t r[] = {0, 9, 11, 12, 14, 0x2027, 0x202A, 0x10FFFF}; /* not \n \r U+2028/9 */
            e = set_expr(p, r, 4);
        } else if (c == '*' || c == '+' || c == '?') {
            return rerr(p, at, "quantifier without an operand"), -1;
        } else if (c == '{' && p->i + 1 < p->n && p->s[p->i + 1] >= '0' && p->s[p->i + 1] <= '9') {
            return rerr(p, at, "quantifier without an operand"), -1;
        } else {
            char cls = 0;
            int64_t v = rchar(p, false, &cls);
            if (v == -1) return -1;
            if (v == -2) {
                cps cc = {0};
                if (!add_named(p, &cc, cls) || !add(p, &cc, 0, 0)) return free(cc.r), -1;
                cc.n--;
                size_t n = slim_cranges_norm(cc.r, cc.n, false);
                e = set_expr(p, cc.r, n);
                free(cc.r);
            } else {
                e = one_char(p, (uint32_t)v);
            }
        }
        if (e < 0) return -1;
        /* quantifiers */
        while (p->i < p->n) {
            char q = p->s[p->i];
            size_t qat = p->i;
            int32_t lo, hi;
            if (q == '*')
                lo = 0, hi = SLIM_CREP_INF, p->i++;
            else if (q == '+')
                lo = 1, hi = SLIM_CREP_INF, p->i++;
            else if (q == '?')
                lo = 0, hi = 1, p->i++;
            else if (q == '{') {
                size_t save = p->i++;
                if (!rnum(p, &lo)) { /* a literal '{' */
                    p->i = save;
                    break;
                }
                hi = lo;
                if (p->i < p->n && p->s[p->i] == ',') {
                    p->i++;
                    if (!rnum(p, &hi)) hi = SLIM_CREP_INF;
                }
                if (p->i >= p->n || p->s[p->i] != '}') {
                    p->i = save;
                    break;
                }
                p->i++;
                if (lo > MAX_REPEAT || (hi != SLIM_CREP_INF && hi > MAX_REPEAT))
                    return rerr(p, qat, "repetition count above 10000"), -1;
                if (hi < lo) return rerr(p, qat, "repetition {m,n} with n < m"), -1;
            } else
                break;
            if (p->i < p->n && p->s[p->i] == '?') p->i++; /* lazy: same language */
            e = slim_cgb_rep(b, e, lo, hi);
        }
        slim_cgb_push(b, e);
    }
    if (p->st != SLIM_OK) return -1;
    return slim_cgb_seq(b, base);
}

static int32_t ralt(rp *p) {
    slim_cgb *b = p->b;
    size_t base = b->nstk;
    bool top = p->depth == 0;
    for (;;) {
        bool as = false, ae = false;
        int32_t e = rseq(p, &as, &ae);
        if (e < 0) return -1;
        if (top && p->search) {
            size_t sb = b->nstk;
            if (!as) slim_cgb_push(b, slim_cgb_rep(b, p->any_json, 0, SLIM_CREP_INF));
            slim_cgb_push(b, e);
            if (!ae) slim_cgb_push(b, slim_cgb_rep(b, p->any_json, 0, SLIM_CREP_INF));
            e = slim_cgb_seq(b, sb);
        }
        slim_cgb_push(b, e);
        if (p->i < p->n && p->s[p->i] == '|') {
            p->i++;
            continue;
        }
        break;
    }
    return slim_cgb_alt(b, base);
}

slim_status slim_regex_build(slim_cgb *b, const char *re, size_t len, bool in_json, bool search,
                             int32_t *expr) {
    return slim_regex_build_any(b, re, len, in_json, search, -1, expr);
}

slim_status slim_regex_build_any(slim_cgb *b, const char *re, size_t len, bool in_json, bool search,
                                 int32_t any_char, int32_t *expr) {
    rp p = {.b = b, .s = re, .n = len, .json = in_json, .search = search, .st = SLIM_OK};
    p.any_json = any_char;
    if (search && any_char < 0) {
        if (in_json) {
            slim_cjson j;
            slim_cjson_init(b, &j, false);
            p.any_json = j.chr;
        } else {
            uint32_t all[2] = {0, 0x10FFFF};
            p.any_json = slim_cgb_cps(b, all, 1);
        }
    }
    int32_t e = ralt(&p);
    if (p.st != SLIM_OK) return p.st;
    if (p.i < p.n) return rerr(&p, p.i, "unmatched ')'");
    if (e < 0 || b->oom) return slim_error(SLIM_ERR_NOMEM, "regex: out of memory");
    *expr = e;
    return SLIM_OK;
}
