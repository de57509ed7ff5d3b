/* A strict RFC 8259 JSON parser into an immutable DOM (see json.h).
 *
 * Two passes over the text with the same recursive-descent code:
 *   1. validate and measure: the grammar, escapes, UTF-8, depth; the number of
 *      values, decoded string bytes, index slots, and the element count of
 *      every container (in document order, kept in a temporary array);
 *   2. build into one allocation sized from those counts: each container
 *      reserves its children contiguously when it opens, so no value is ever
 *      moved; numbers are converted; keys are checked for duplicates and
 *      objects with more than INDEX_MIN members get an open-addressing hash
 *      index (uint32 slots, a power of two >= 2n).
 * The document never points into the text.  Everything is bounded by the text
 * length (at most SLIM_JSON_MAX_TEXT), so counts fit in 32 bits. */
#include "format/json.h"

#include "core/utf8.h"

#include <errno.h>
#include <float.h>
#include <locale.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/grow.h"
#include "format/mmap.h"

enum {
    INDEX_MIN = 8,      /* objects with more members than this get a hash index */
    NUM_STACK_BUF = 64, /* number tokens up to this long are converted from the stack */
};

struct slim_json {
    uint8_t type;   /* slim_json_type */
    uint8_t is_int; /* numbers: u.num.i holds the exact value */
    uint8_t has_index;
    uint32_t n; /* string bytes, array elements or object members */
    union {
        struct {
            double d;
            int64_t i;
        } num;
        const char *s;
        struct {
            slim_json *items; /* arrays: n values; objects: n (key, value) pairs */
            uint32_t *index;  /* objects with has_index: slots of member index + 1 */
        } c;
        bool b;
    } u;
};

struct slim_json_doc {
    slim_json *root;
    const char *name;
    size_t bytes; /* the whole allocation, this header included */
};

typedef struct jparser {
    const uint8_t *p;
    size_t len, pos;
    const char *name;
    bool build;
    int depth;
    /* pass 1 */
    size_t n_nodes, n_index, n_chars;
    uint32_t *counts; /* element count of each container, in the order they open */
    size_t n_counts, cap_counts;
    /* pass 2 */
    size_t count_i;
    slim_json *nodes;
    size_t node_next;
    uint32_t *index;
    size_t index_next;
    char *chars;
    size_t char_next;
} jparser;

/* ---- UTF-8 -------------------------------------------------------------------------------- */

static size_t utf8_put(char *out, uint32_t cp) {
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | cp >> 6);
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | cp >> 12);
        out[1] = (char)(0x80 | (cp >> 6 & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | cp >> 18);
    out[1] = (char)(0x80 | (cp >> 12 & 0x3F));
    out[2] = (char)(0x80 | (cp >> 6 & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

static size_t utf8_len(uint32_t cp) {
    return cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
}

/* ---- errors ------------------------------------------------------------------------------- */

/* Describe the input at `pos` for "got ...": 'x', end of input, byte 0x0a. */
static void describe(const jparser *P, size_t pos, char *buf, size_t cap) {
    if (pos >= P->len) {
        snprintf(buf, cap, "end of input");
        return;
    }
    uint8_t c = P->p[pos];
    if (c > 0x20 && c < 0x7F) {
        snprintf(buf, cap, "'%c'", c);
        return;
    }
    size_t k = c >= 0x80 ? slim_utf8_seq_len(P->p + pos, P->len - pos) : 0;
    if (k > 1) {
        snprintf(buf, cap, "'%.*s'", (int)k, (const char *)P->p + pos);
        return;
    }
    snprintf(buf, cap, "byte 0x%02x", c);
}

static slim_status jerr_at(const jparser *P, size_t pos, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static slim_status jerr_at(const jparser *P, size_t pos, const char *fmt, ...) {
    size_t line = 1, col = 1;
    if (pos > P->len) pos = P->len;
    for (size_t i = 0; i < pos; i++) {
        uint8_t c = P->p[i];
        if (c == '\n') {
            line++;
            col = 1;
        } else if ((c & 0xC0) != 0x80) {
            col++;
        }
    }
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return slim_error(SLIM_ERR_FORMAT, "%s:%zu:%zu: %s", P->name, line, col, msg);
}

/* "expected <what>, got <description of the input at pos>". */
static slim_status jexpect(const jparser *P, size_t pos, const char *what) {
    char got[32];
    describe(P, pos, got, sizeof got);
    return jerr_at(P, pos, "expected %s, got %s", what, got);
}

/* ---- lexing ------------------------------------------------------------------------------- */

static void skip_ws(jparser *P) {
    while (P->pos < P->len) {
        uint8_t c = P->p[P->pos];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r') break;
        P->pos++;
    }
}

static int hexval(uint8_t c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* The 4 hex digits of a \u escape at `at` (pointing at the 'u'). */
static slim_status rd_hex4(const jparser *P, size_t at, uint32_t *out) {
    uint32_t v = 0;
    for (size_t k = 1; k <= 4; k++) {
        int h = at + k < P->len ? hexval(P->p[at + k]) : -1;
        if (h < 0) return jexpect(P, at + k, "4 hex digits after \\u");
        v = v << 4 | (uint32_t)h;
    }
    *out = v;
    return SLIM_OK;
}

/* A string at P->pos (the opening quote).  Pass 1 measures the decoded bytes,
 * pass 2 writes them (NUL-terminated) and points `dst` at them. */
static slim_status parse_string(jparser *P, slim_json *dst) {
    size_t open = P->pos, i = P->pos + 1, n = 0;
    const uint8_t *p = P->p;
    char *out = P->build ? P->chars + P->char_next : NULL;
    for (;;) {
        /* a run of plain bytes */
        size_t run = i;
        while (i < P->len && p[i] >= 0x20 && p[i] < 0x80 && p[i] != '"' && p[i] != '\\')
            i++;
        if (out && i > run) memcpy(out + n, p + run, i - run);
        n += i - run;
        if (i >= P->len)
            return jerr_at(P, open,
                           "unterminated string (no closing '\"' before the end of input)");
        uint8_t c = p[i];
        if (c == '"') break;
        if (c < 0x20)
            return jerr_at(P, i, "control character 0x%02x in a string (it must be escaped)", c);
        if (c >= 0x80) {
            size_t k = slim_utf8_seq_len(p + i, P->len - i);
            if (!k) return jerr_at(P, i, "invalid UTF-8 (byte 0x%02x) in a string", c);
            if (out) memcpy(out + n, p + i, k);
            n += k;
            i += k;
            continue;
        }
        /* c == '\\' */
        if (i + 1 >= P->len) return jexpect(P, i + 1, "an escape character after '\\'");
        uint8_t e = p[i + 1];
        char ch;
        switch (e) {
        case '"': ch = '"'; break;
        case '\\': ch = '\\'; break;
        case '/': ch = '/'; break;
        case 'b': ch = '\b'; break;
        case 'f': ch = '\f'; break;
        case 'n': ch = '\n'; break;
        case 'r': ch = '\r'; break;
        case 't': ch = '\t'; break;
        case 'u': {
            uint32_t cp;
            slim_status s = rd_hex4(P, i + 1, &cp);
            if (s) return s;
            size_t esc_at = i;
            i += 6;
            if (cp >= 0xDC00 && cp <= 0xDFFF)
                return jerr_at(P, esc_at, "lone low surrogate \\u%04X in a string", cp);
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                uint32_t lo = 0;
                if (i + 1 < P->len && p[i] == '\\' && p[i + 1] == 'u') {
                    if ((s = rd_hex4(P, i + 1, &lo))) return s;
                }
                if (lo < 0xDC00 || lo > 0xDFFF)
                    return jerr_at(P, esc_at,
                                   "lone high surrogate \\u%04X in a string (expected a low "
                                   "surrogate \\uDC00-\\uDFFF escape after it)",
                                   cp);
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                i += 6;
            }
            if (out)
                n += utf8_put(out + n, cp);
            else
                n += utf8_len(cp);
            continue;
        }
        default: {
            char got[32];
            describe(P, i + 1, got, sizeof got);
            return jerr_at(P, i, "invalid escape '\\' followed by %s in a string", got);
        }
        }
        if (out) out[n] = ch;
        n++;
        i += 2;
    }
    P->pos = i + 1;
    if (out) {
        out[n] = '\0';
        dst->type = SLIM_JSON_STRING;
        dst->n = (uint32_t)n;
        dst->u.s = out;
        P->char_next += n + 1;
    } else {
        P->n_chars += n + 1;
    }
    return SLIM_OK;
}

/* ---- numbers ------------------------------------------------------------------------------ */

static pthread_once_t c_locale_once = PTHREAD_ONCE_INIT;
static locale_t c_locale;

static void c_locale_init(void) { c_locale = newlocale(LC_NUMERIC_MASK, "C", (locale_t)0); }

/* strtod in the "C" locale, whatever the application set. */
static double strtod_c(const char *s) {
    pthread_once(&c_locale_once, c_locale_init);
    if (c_locale) return strtod_l(s, NULL, c_locale);
    return strtod(s, NULL);
}

/* Whether the number text is an integer that fits int64, from its digits:
 * value = digits(int part . frac part) * 10^(exp - n_frac). */
static bool exact_i64(const uint8_t *s, size_t n, int64_t *out) {
    size_t i = 0;
    bool neg = false;
    if (s[i] == '-') {
        neg = true;
        i++;
    }
    size_t d0 = i;
    while (i < n && s[i] >= '0' && s[i] <= '9')
        i++;
    size_t d1 = i, f0 = i, f1 = i;
    if (i < n && s[i] == '.') {
        f0 = ++i;
        while (i < n && s[i] >= '0' && s[i] <= '9')
            i++;
        f1 = i;
    }
    long long e = 0;
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        bool eneg = false;
        if (s[i] == '+' || s[i] == '-') eneg = s[i++] == '-';
        for (; i < n; i++)
            if (e < 1000000000000000LL) e = e * 10 + (s[i] - '0'); /* saturates */
        if (eneg) e = -e;
    }
    /* The significant digits are the int part then the frac part, without
     * leading zeros; trailing zeros move into the exponent. */
    size_t ni = d1 - d0, nf = f1 - f0, total = ni + nf;
#define DIG(k) (s[(k) < ni ? d0 + (k) : f0 + (k)-ni])
    size_t first = 0, last = total;
    while (first < total && DIG(first) == '0')
        first++;
    if (first == total) {
        *out = 0;
        return true;
    }
    while (DIG(last - 1) == '0')
        last--;
    e += (long long)(total - last) - (long long)nf;
    size_t nd = last - first;
    if (e < 0 || nd > 19 || (long long)nd + e > 19) return false;
    uint64_t v = 0;
    for (size_t k = first; k < last; k++)
        v = v * 10 + (uint64_t)(DIG(k) - '0'); /* at most 19 digits: fits */
#undef DIG
    for (long long k = 0; k < e; k++) {
        if (v > UINT64_MAX / 10) return false;
        v *= 10;
    }
    if (neg) {
        if (v > (uint64_t)INT64_MAX + 1) return false;
        *out = v == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)v;
    } else {
        if (v > (uint64_t)INT64_MAX) return false;
        *out = (int64_t)v;
    }
    return true;
}

static slim_status parse_number(jparser *P, slim_json *dst) {
    const uint8_t *p = P->p;
    size_t start = P->pos, i = P->pos;
    if (p[i] == '-') i++;
    if (i >= P->len || p[i] < '0' || p[i] > '9') return jexpect(P, i, "a digit after '-'");
    if (p[i] == '0') {
        i++;
        if (i < P->len && p[i] >= '0' && p[i] <= '9')
            return jerr_at(P, i - 1, "leading zeros are not allowed in a number");
    } else {
        while (i < P->len && p[i] >= '0' && p[i] <= '9')
            i++;
    }
    if (i < P->len && p[i] == '.') {
        i++;
        if (i >= P->len || p[i] < '0' || p[i] > '9') return jexpect(P, i, "a digit after '.'");
        while (i < P->len && p[i] >= '0' && p[i] <= '9')
            i++;
    }
    if (i < P->len && (p[i] == 'e' || p[i] == 'E')) {
        i++;
        if (i < P->len && (p[i] == '+' || p[i] == '-')) i++;
        if (i >= P->len || p[i] < '0' || p[i] > '9')
            return jexpect(P, i, "a digit in the exponent");
        while (i < P->len && p[i] >= '0' && p[i] <= '9')
            i++;
    }
    P->pos = i;
    if (!P->build) return SLIM_OK;

    size_t n = i - start;
    char stack[NUM_STACK_BUF];
    char *buf = n < sizeof stack ? stack : malloc(n + 1);
    if (!buf) return slim_error(SLIM_ERR_NOMEM, "%s: out of memory for a number", P->name);
    memcpy(buf, p + start, n);
    buf[n] = '\0';
    double d = strtod_c(buf);
    if (buf != stack) free(buf);
    if (isinf(d)) return jerr_at(P, start, "number out of range (beyond the double range)");
    dst->type = SLIM_JSON_NUMBER;
    dst->u.num.d = d;
    dst->is_int = exact_i64(p + start, n, &dst->u.num.i);
    return SLIM_OK;
}

/* ---- values ------------------------------------------------------------------------------- */

static slim_status parse_value(jparser *P, slim_json *dst);

static uint64_t hash_bytes(const char *s, size_t n) {
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (uint8_t)s[i]) * 1099511628211ull;
    return h ^ (h >> 29);
}

static size_t index_cap(size_t n) {
    size_t cap = 16;
    while (cap < 2 * n)
        cap *= 2;
    return cap;
}

static slim_status enter(jparser *P, size_t at) {
    if (++P->depth > SLIM_JSON_MAX_DEPTH)
        return jerr_at(P, at, "nesting deeper than %d arrays/objects", SLIM_JSON_MAX_DEPTH);
    return SLIM_OK;
}

/* Pass 1: open a count slot for a container; pass 2: take its count and reserve its children. */
static slim_status open_container(jparser *P, size_t *slot, uint32_t *n, slim_json **items,
                                  size_t per_item) {
    if (!P->build) {
        if (!slim_grow((void **)&P->counts, &P->cap_counts, P->n_counts + 1, sizeof *P->counts))
            return slim_error(SLIM_ERR_NOMEM, "%s: out of memory", P->name);
        *slot = P->n_counts++;
        P->counts[*slot] = 0;
        *n = 0;
        *items = NULL;
        return SLIM_OK;
    }
    *n = P->counts[P->count_i++];
    *items = P->nodes + P->node_next;
    P->node_next += (size_t)*n * per_item;
    return SLIM_OK;
}

static slim_status parse_array(jparser *P, slim_json *dst) {
    size_t open = P->pos, slot = 0;
    slim_status s = enter(P, open);
    if (s) return s;
    uint32_t n;
    slim_json *items;
    if ((s = open_container(P, &slot, &n, &items, 1))) return s;
    P->pos++;
    skip_ws(P);
    uint32_t k = 0;
    if (P->pos < P->len && P->p[P->pos] == ']') {
        P->pos++;
    } else {
        for (;;) {
            if ((s = parse_value(P, items ? &items[k] : NULL))) return s;
            k++;
            skip_ws(P);
            if (P->pos < P->len && P->p[P->pos] == ',') {
                P->pos++;
                continue;
            }
            if (P->pos < P->len && P->p[P->pos] == ']') {
                P->pos++;
                break;
            }
            return jexpect(P, P->pos, "',' or ']' after an array element");
        }
    }
    P->depth--;
    if (!P->build) {
        P->counts[slot] = k;
        P->n_nodes += k;
        return SLIM_OK;
    }
    dst->type = SLIM_JSON_ARRAY;
    dst->n = n;
    dst->u.c.items = items;
    dst->u.c.index = NULL;
    return SLIM_OK;
}

/* Pass 2: record member k's key (items[2k]) in the object's index or check it
 * against the earlier keys; a duplicate is an error at the key. */
static slim_status add_key(jparser *P, slim_json *obj, uint32_t k, size_t key_at) {
    const slim_json *key = &obj->u.c.items[2 * k];
    uint32_t dup = 0;
    if (obj->has_index) {
        size_t mask = index_cap(obj->n) - 1;
        for (size_t h = hash_bytes(key->u.s, key->n) & mask;; h = (h + 1) & mask) {
            uint32_t v = obj->u.c.index[h];
            if (!v) {
                obj->u.c.index[h] = k + 1;
                break;
            }
            const slim_json *o = &obj->u.c.items[2 * (v - 1)];
            if (o->n == key->n && memcmp(o->u.s, key->u.s, key->n) == 0) {
                dup = v;
                break;
            }
        }
    } else {
        for (uint32_t j = 0; j < k && !dup; j++) {
            const slim_json *o = &obj->u.c.items[2 * j];
            if (o->n == key->n && memcmp(o->u.s, key->u.s, key->n) == 0) dup = j + 1;
        }
    }
    if (!dup) return SLIM_OK;
    char shown[80];
    size_t m = key->n < 64 ? key->n : 64;
    while (m < key->n && m > 0 && ((uint8_t)key->u.s[m] & 0xC0) == 0x80)
        m--;
    snprintf(shown, sizeof shown, "%.*s%s", (int)m, key->u.s, m < key->n ? "..." : "");
    for (char *c = shown; *c; c++)
        if ((uint8_t)*c < 0x20) *c = '?';
    return jerr_at(P, key_at, "duplicate key \"%s\" (also member #%u of this object)", shown,
                   dup - 1);
}

static slim_status parse_object(jparser *P, slim_json *dst) {
    size_t open = P->pos, slot = 0;
    slim_status s = enter(P, open);
    if (s) return s;
    uint32_t n;
    slim_json *items;
    if ((s = open_container(P, &slot, &n, &items, 2))) return s;
    if (P->build) {
        dst->type = SLIM_JSON_OBJECT;
        dst->n = n;
        dst->u.c.items = items;
        dst->u.c.index = NULL;
        dst->has_index = n > INDEX_MIN;
        if (dst->has_index) {
            dst->u.c.index = P->index + P->index_next;
            P->index_next += index_cap(n);
        }
    }
    P->pos++;
    skip_ws(P);
    uint32_t k = 0;
    if (P->pos < P->len && P->p[P->pos] == '}') {
        P->pos++;
    } else {
        for (;;) {
            if (P->pos >= P->len || P->p[P->pos] != '"')
                return jexpect(P, P->pos, k ? "a string key after ','" : "a string key or '}'");
            size_t key_at = P->pos;
            if ((s = parse_string(P, items ? &items[2 * k] : NULL))) return s;
            if (items && (s = add_key(P, dst, k, key_at))) return s;
            skip_ws(P);
            if (P->pos >= P->len || P->p[P->pos] != ':')
                return jexpect(P, P->pos, "':' after an object key");
            P->pos++;
            if ((s = parse_value(P, items ? &items[2 * k + 1] : NULL))) return s;
            k++;
            skip_ws(P);
            if (P->pos < P->len && P->p[P->pos] == ',') {
                P->pos++;
                skip_ws(P);
                continue;
            }
            if (P->pos < P->len && P->p[P->pos] == '}') {
                P->pos++;
                break;
            }
            return jexpect(P, P->pos, "',' or '}' after an object member");
        }
    }
    P->depth--;
    if (!P->build) {
        P->counts[slot] = k;
        P->n_nodes += 2 * (size_t)k;
        if (k > INDEX_MIN) P->n_index += index_cap(k);
    }
    return SLIM_OK;
}

static slim_status parse_literal(jparser *P, slim_json *dst) {
    static const struct {
        const char *text;
        size_t len;
        slim_json_type type;
        bool b;
    } lits[] = {{"true", 4, SLIM_JSON_BOOL, true},
                {"false", 5, SLIM_JSON_BOOL, false},
                {"null", 4, SLIM_JSON_NULL, false}};
    for (size_t k = 0; k < 3; k++) {
        if (P->p[P->pos] != lits[k].text[0]) continue;
        size_t i = 1;
        while (i < lits[k].len && P->pos + i < P->len && P->p[P->pos + i] == lits[k].text[i])
            i++;
        if (i < lits[k].len) {
            char what[32];
            snprintf(what, sizeof what, "'%c' (in '%s')", lits[k].text[i], lits[k].text);
            return jexpect(P, P->pos + i, what);
        }
        P->pos += lits[k].len;
        if (dst) {
            dst->type = (uint8_t)lits[k].type;
            dst->u.b = lits[k].b;
        }
        return SLIM_OK;
    }
    return jexpect(P, P->pos, "a value");
}

static slim_status parse_value(jparser *P, slim_json *dst) {
    skip_ws(P);
    if (P->pos >= P->len) return jexpect(P, P->pos, "a value");
    uint8_t c = P->p[P->pos];
    switch (c) {
    case '{': return parse_object(P, dst);
    case '[': return parse_array(P, dst);
    case '"': return parse_string(P, dst);
    case 't':
    case 'f':
    case 'n': return parse_literal(P, dst);
    default:
        if (c == '-' || (c >= '0' && c <= '9')) return parse_number(P, dst);
        return jexpect(P, P->pos, "a value");
    }
}

/* One complete document: BOM, value, trailing whitespace. */
static slim_status parse_doc(jparser *P, slim_json *root) {
    P->pos = 0;
    P->depth = 0;
    if (P->len >= 3 && memcmp(P->p, "\xEF\xBB\xBF", 3) == 0) P->pos = 3;
    slim_status s = parse_value(P, root);
    if (s) return s;
    skip_ws(P);
    if (P->pos < P->len) return jexpect(P, P->pos, "end of input after the JSON value");
    return SLIM_OK;
}

/* ---- API ---------------------------------------------------------------------------------- */

slim_status slim_json_parse(const char *text, size_t len, const char *name, slim_json_doc **out) {
    if (!out) return slim_error(SLIM_ERR_INVALID_ARG, "slim_json_parse: out is NULL");
    *out = NULL;
    if (!name) name = "json";
    if (!text && len) return slim_error(SLIM_ERR_INVALID_ARG, "slim_json_parse: text is NULL");
    if (len > SLIM_JSON_MAX_TEXT)
        return slim_error(SLIM_ERR_FORMAT, "%s: %zu bytes exceeds the %zu-byte JSON size limit",
                          name, len, SLIM_JSON_MAX_TEXT);
    jparser P = {.p = (const uint8_t *)(text ? text : ""), .len = len, .name = name};

    slim_status s = parse_doc(&P, NULL);
    if (s) {
        free(P.counts);
        return s;
    }
    P.n_nodes += 1; /* the root */

    /* One allocation: header, values, index slots, string bytes, the name. */
    size_t name_len = strlen(name);
    size_t off_nodes = (sizeof(slim_json_doc) + 15) & ~(size_t)15;
    size_t off_index = off_nodes + P.n_nodes * sizeof(slim_json); /* all bounded by 24 * 1 GiB */
    size_t off_chars = off_index + P.n_index * sizeof(uint32_t);
    size_t off_name = off_chars + P.n_chars;
    size_t total = off_name + name_len + 1;
    unsigned char *mem = malloc(total);
    if (!mem) {
        free(P.counts);
        return slim_error(SLIM_ERR_NOMEM, "%s: out of memory for a %zu-byte JSON document", name,
                          total);
    }
    slim_json_doc *doc = (slim_json_doc *)mem;
    P.nodes = (slim_json *)(mem + off_nodes);
    P.index = (uint32_t *)(mem + off_index);
    P.chars = (char *)(mem + off_chars);
    memset(P.nodes, 0, P.n_nodes * sizeof(slim_json));
    memset(P.index, 0, P.n_index * sizeof(uint32_t));
    memcpy(mem + off_name, name, name_len + 1);
    doc->root = P.nodes;
    doc->name = (const char *)(mem + off_name);
    doc->bytes = total;
    P.node_next = 1;
    P.build = true;
    s = parse_doc(&P, doc->root);
    free(P.counts);
    if (s) {
        free(mem);
        return s;
    }
    if (P.node_next != P.n_nodes || P.index_next != P.n_index || P.char_next != P.n_chars) {
        free(mem);
        return slim_error(SLIM_ERR_INTERNAL, "%s: JSON passes disagree", name);
    }
    *out = doc;
    return SLIM_OK;
}

slim_status slim_json_parse_file(const char *path, slim_json_doc **out) {
    if (!out) return slim_error(SLIM_ERR_INVALID_ARG, "slim_json_parse_file: out is NULL");
    *out = NULL;
    if (!path) return slim_error(SLIM_ERR_INVALID_ARG, "slim_json_parse_file: path is NULL");
    slim_file_map map;
    slim_status s = slim_file_map_open(path, false, &map); /* names the path */
    if (s) return s;
    s = slim_json_parse(map.data, map.size, path, out);
    slim_file_map_close(&map);
    return s;
}

void slim_json_free(slim_json_doc *doc) { free(doc); }

const slim_json *slim_json_root(const slim_json_doc *doc) { return doc ? doc->root : NULL; }

const char *slim_json_doc_name(const slim_json_doc *doc) { return doc ? doc->name : "json"; }

slim_json_type slim_json_type_of(const slim_json *v) {
    return v ? (slim_json_type)v->type : SLIM_JSON_NONE;
}

const char *slim_json_type_name(slim_json_type t) {
    switch (t) {
    case SLIM_JSON_NONE: return "nothing";
    case SLIM_JSON_NULL: return "null";
    case SLIM_JSON_BOOL: return "boolean";
    case SLIM_JSON_NUMBER: return "number";
    case SLIM_JSON_STRING: return "string";
    case SLIM_JSON_ARRAY: return "array";
    case SLIM_JSON_OBJECT: return "object";
    }
    return "?";
}

const slim_json *slim_json_getn(const slim_json *obj, const char *key, size_t len) {
    if (!obj || obj->type != SLIM_JSON_OBJECT || (!key && len)) return NULL;
    if (!key) key = "";
    const slim_json *items = obj->u.c.items;
    if (obj->has_index) {
        size_t mask = index_cap(obj->n) - 1;
        for (size_t h = hash_bytes(key, len) & mask;; h = (h + 1) & mask) {
            uint32_t v = obj->u.c.index[h];
            if (!v) return NULL;
            const slim_json *k = &items[2 * (v - 1)];
            if (k->n == len && memcmp(k->u.s, key, len) == 0) return k + 1;
        }
    }
    for (uint32_t i = 0; i < obj->n; i++) {
        const slim_json *k = &items[2 * i];
        if (k->n == len && memcmp(k->u.s, key, len) == 0) return k + 1;
    }
    return NULL;
}

const slim_json *slim_json_get(const slim_json *obj, const char *key) {
    return key ? slim_json_getn(obj, key, strlen(key)) : NULL;
}

const slim_json *slim_json_at(const slim_json *v, size_t i) {
    if (!v || i >= v->n) return NULL;
    if (v->type == SLIM_JSON_ARRAY) return &v->u.c.items[i];
    if (v->type == SLIM_JSON_OBJECT) return &v->u.c.items[2 * i + 1];
    return NULL;
}

const slim_json *slim_json_member(const slim_json *obj, size_t i, const char **key,
                                  size_t *key_len) {
    if (!obj || obj->type != SLIM_JSON_OBJECT || i >= obj->n) return NULL;
    const slim_json *k = &obj->u.c.items[2 * i];
    if (key) *key = k->u.s;
    if (key_len) *key_len = k->n;
    return k + 1;
}

size_t slim_json_len(const slim_json *v) {
    return v && (v->type == SLIM_JSON_ARRAY || v->type == SLIM_JSON_OBJECT) ? v->n : 0;
}

const char *slim_json_str(const slim_json *v, size_t *len) {
    if (!v || v->type != SLIM_JSON_STRING) return NULL;
    if (len) *len = v->n;
    return v->u.s;
}

bool slim_json_num(const slim_json *v, double *out) {
    if (!v || v->type != SLIM_JSON_NUMBER) return false;
    if (out) *out = v->u.num.d;
    return true;
}

bool slim_json_i64(const slim_json *v, int64_t *out) {
    if (!v || v->type != SLIM_JSON_NUMBER || !v->is_int) return false;
    if (out) *out = v->u.num.i;
    return true;
}

bool slim_json_bool(const slim_json *v, bool *out) {
    if (!v || v->type != SLIM_JSON_BOOL) return false;
    if (out) *out = v->u.b;
    return true;
}

bool slim_json_is_null(const slim_json *v) { return v && v->type == SLIM_JSON_NULL; }

/* ---- config getters ----------------------------------------------------------------------- */

enum { PATH_SHOWN = 200 };

/* Walk the dotted path.  *out: the value, or NULL when it (or a parent) is
 * missing or null.  A parent that is neither an object nor null is an error. */
static slim_status cfg_lookup(const slim_json_doc *doc, const slim_json *obj, const char *path,
                              const slim_json **out) {
    *out = NULL;
    const char *name = slim_json_doc_name(doc);
    if (!path) return slim_error(SLIM_ERR_INVALID_ARG, "%s: slim_json_cfg: path is NULL", name);
    const slim_json *cur = obj;
    const char *seg = path;
    for (;;) {
        if (!cur || cur->type == SLIM_JSON_NULL) return SLIM_OK;
        const char *dot = strchr(seg, '.');
        size_t n = dot ? (size_t)(dot - seg) : strlen(seg);
        if (cur->type != SLIM_JSON_OBJECT) {
            int shown = (int)(seg - path) - 1;
            if (shown <= 0)
                return slim_error(SLIM_ERR_FORMAT, "%s: expected an object, got %s (at %.*s)", name,
                                  slim_json_type_name((slim_json_type)cur->type), PATH_SHOWN, path);
            return slim_error(SLIM_ERR_FORMAT, "%s: %.*s: expected an object, got %s (at %.*s)",
                              name, shown < PATH_SHOWN ? shown : PATH_SHOWN, path,
                              slim_json_type_name((slim_json_type)cur->type), PATH_SHOWN, path);
        }
        cur = slim_json_getn(cur, seg, n);
        if (!dot) break;
        seg = dot + 1;
    }
    if (cur && cur->type != SLIM_JSON_NULL) *out = cur;
    return SLIM_OK;
}

static slim_status cfg_missing(const slim_json_doc *doc, const char *path) {
    return slim_error(SLIM_ERR_FORMAT, "%s: %.*s: missing required key", slim_json_doc_name(doc),
                      PATH_SHOWN, path);
}

static slim_status cfg_type(const slim_json_doc *doc, const char *path, const char *want,
                            const slim_json *v) {
    return slim_error(SLIM_ERR_FORMAT, "%s: %.*s: expected %s, got %s", slim_json_doc_name(doc),
                      PATH_SHOWN, path, want, slim_json_type_name((slim_json_type)v->type));
}

slim_status slim_json_cfg_value(const slim_json_doc *doc, const slim_json *obj, const char *path,
                                slim_json_type want, bool required, const slim_json **out) {
    const slim_json *v;
    slim_status s = cfg_lookup(doc, obj, path, &v);
    if (out) *out = NULL;
    if (s) return s;
    if (!v) return required ? cfg_missing(doc, path) : SLIM_OK;
    if (want != SLIM_JSON_NONE && v->type != want) {
        const char *w = want == SLIM_JSON_ARRAY    ? "an array"
                        : want == SLIM_JSON_OBJECT ? "an object"
                        : want == SLIM_JSON_STRING ? "a string"
                        : want == SLIM_JSON_NUMBER ? "a number"
                        : want == SLIM_JSON_BOOL   ? "a boolean"
                                                   : "null";
        return cfg_type(doc, path, w, v);
    }
    if (out) *out = v;
    return SLIM_OK;
}

slim_status slim_json_cfg_i64(const slim_json_doc *doc, const slim_json *obj, const char *path,
                              const int64_t *def, int64_t min, int64_t max, int64_t *out) {
    const slim_json *v;
    slim_status s = cfg_lookup(doc, obj, path, &v);
    if (s) return s;
    int64_t x;
    if (!v) {
        if (!def) return cfg_missing(doc, path);
        x = *def;
    } else if (v->type != SLIM_JSON_NUMBER) {
        return cfg_type(doc, path, "an integer", v);
    } else if (!v->is_int) {
        return slim_error(SLIM_ERR_FORMAT, "%s: %.*s: expected an integer, got %.17g",
                          slim_json_doc_name(doc), PATH_SHOWN, path, v->u.num.d);
    } else {
        x = v->u.num.i;
        if (x < min || x > max)
            return slim_error(SLIM_ERR_FORMAT, "%s: %.*s: %lld is out of range [%lld, %lld]",
                              slim_json_doc_name(doc), PATH_SHOWN, path, (long long)x,
                              (long long)min, (long long)max);
    }
    if (out) *out = x;
    return SLIM_OK;
}

slim_status slim_json_cfg_f64(const slim_json_doc *doc, const slim_json *obj, const char *path,
                              const double *def, double *out) {
    const slim_json *v;
    slim_status s = cfg_lookup(doc, obj, path, &v);
    if (s) return s;
    double x;
    if (!v) {
        if (!def) return cfg_missing(doc, path);
        x = *def;
    } else if (v->type != SLIM_JSON_NUMBER) {
        return cfg_type(doc, path, "a number", v);
    } else {
        x = v->u.num.d;
    }
    if (out) *out = x;
    return SLIM_OK;
}

slim_status slim_json_cfg_f32(const slim_json_doc *doc, const slim_json *obj, const char *path,
                              const float *def, float *out) {
    double d = 0.0, dd = def ? (double)*def : 0.0;
    slim_status s = slim_json_cfg_f64(doc, obj, path, def ? &dd : NULL, &d);
    if (s) return s;
    if (fabs(d) > (double)FLT_MAX)
        return slim_error(SLIM_ERR_FORMAT, "%s: %.*s: %g is out of the float range",
                          slim_json_doc_name(doc), PATH_SHOWN, path, d);
    if (out) *out = (float)d;
    return SLIM_OK;
}

slim_status slim_json_cfg_bool(const slim_json_doc *doc, const slim_json *obj, const char *path,
                               const bool *def, bool *out) {
    const slim_json *v;
    slim_status s = cfg_lookup(doc, obj, path, &v);
    if (s) return s;
    bool x;
    if (!v) {
        if (!def) return cfg_missing(doc, path);
        x = *def;
    } else if (v->type != SLIM_JSON_BOOL) {
        return cfg_type(doc, path, "a boolean", v);
    } else {
        x = v->u.b;
    }
    if (out) *out = x;
    return SLIM_OK;
}

slim_status slim_json_cfg_str(const slim_json_doc *doc, const slim_json *obj, const char *path,
                              const char *def, const char **out, size_t *len) {
    const slim_json *v;
    slim_status s = cfg_lookup(doc, obj, path, &v);
    if (s) return s;
    const char *x;
    size_t n;
    if (!v) {
        if (!def) return cfg_missing(doc, path);
        x = def;
        n = strlen(def);
    } else if (v->type != SLIM_JSON_STRING) {
        return cfg_type(doc, path, "a string", v);
    } else {
        x = v->u.s;
        n = v->n;
    }
    if (out) *out = x;
    if (len) *len = n;
    return SLIM_OK;
}
