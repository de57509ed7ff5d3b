/* GGUF v2/v3 reader (little-endian files only).
 *
 * Layout (v2 and v3 share it; v3 only added big-endian files, which slim does
 * not read):
 *   magic "GGUF", u32 version, u64 tensor_count, u64 kv_count,
 *   kv_count x { string key, u32 type, value },
 *   tensor_count x { string name, u32 n_dims, u64 ne[n_dims], u32 type, u64 offset },
 *   padding to `general.alignment` (default 32), tensor data.
 * A string is u64 length + bytes; an array is u32 element type, u64 count, elements.
 *
 * Everything is validated here, once, against the buffer, with overflow-safe
 * arithmetic; nothing is allocated in proportion to a count before that count
 * has been checked against what the remaining bytes could possibly hold.
 * Choices beyond the spec:
 *   - nested arrays (an array of arrays) are rejected with SLIM_ERR_UNSUPPORTED;
 *   - keys and tensor names must be non-empty, at most 65535 bytes, valid UTF-8
 *     (no overlong forms, surrogates or code points past U+10FFFF) and free of
 *     NUL bytes; string values are not checked (they are bytes to slim);
 *   - BOOL values (scalars and array elements) must be 0 or 1;
 *   - general.alignment, if present, must be a UINT32 nonzero power of two;
 *   - tensor dims must be > 0; tensors may overlap.
 * Array element data (arr_data) points into the file and may be unaligned:
 * read it with memcpy. */
#include "format/gguf.h"

#include "core/utf8.h"
#include "quant/dtype.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum {
    GGUF_DEFAULT_ALIGNMENT = 32,
    GGUF_MAX_NAME = 65535,
    /* The fewest bytes one KV can take: key length, a 1-byte key, type, a 1-byte value. */
    GGUF_MIN_KV_BYTES = 8 + 1 + 4 + 1,
    /* The fewest bytes one tensor info can take: name length, a 1-byte name,
     * n_dims, one dim, type, offset. */
    GGUF_MIN_TENSOR_BYTES = 8 + 1 + 4 + 8 + 4 + 8,
    WHERE_CAP = 192,
    NAME_SHOWN = 96, /* bytes of a name shown in an error message */
};

typedef struct gguf_impl {
    slim_gguf pub; /* first: a slim_gguf * from open is a gguf_impl * */
    bool owns_map;
} gguf_impl;

typedef struct parser {
    const uint8_t *p;
    uint64_t size;
    uint64_t pos; /* always <= size */
    char where[WHERE_CAP];
} parser;

typedef unsigned long long ull;
typedef long long ll;

/* ---- text output shared by error messages and format_value ---------------------------- */

/* A bounded writer: once a piece does not fit, as much of it as fits goes in
 * (never splitting a UTF-8 sequence) and nothing more does; finish() then
 * appends "..." (3 bytes are kept for it). */
typedef struct sbuf {
    char *buf;
    size_t cap, len, reserve;
    bool full;
} sbuf;

static void sb_init(sbuf *b, char *buf, size_t cap) {
    b->buf = buf;
    b->cap = cap;
    b->len = 0;
    b->reserve = cap >= 4 ? 3 : 0;
    b->full = cap == 0;
    if (cap) buf[0] = '\0';
}

static void sb_putn(sbuf *b, const char *s, size_t n) {
    if (b->full) return;
    size_t avail = b->cap - b->len - 1 - b->reserve; /* len + 1 + reserve <= cap always */
    if (n > avail) {
        while (avail > 0 && ((uint8_t)s[avail] & 0xC0u) == 0x80u)
            avail--;
        memcpy(b->buf + b->len, s, avail);
        b->len += avail;
        b->buf[b->len] = '\0';
        b->full = true;
        return;
    }
    memcpy(b->buf + b->len, s, n);
    b->len += n;
    b->buf[b->len] = '\0';
}

static void sb_puts(sbuf *b, const char *s) { sb_putn(b, s, strlen(s)); }

static void sb_printf(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(sbuf *b, const char *fmt, ...) {
    char tmp[64];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    sb_putn(b, tmp, (size_t)n < sizeof tmp ? (size_t)n : sizeof tmp - 1);
}

static void sb_finish(sbuf *b) {
    if (!b->full || b->cap < 4) return;
    memcpy(b->buf + b->len, "...", 4);
    b->len += 3;
}

/* Index of the first byte that is not valid UTF-8, or n if all are. */
static uint64_t utf8_check(const uint8_t *s, uint64_t n) {
    uint64_t i = 0;
    while (i < n) {
        size_t k = slim_utf8_seq_len(s + i, n - i);
        if (!k) return i;
        i += k;
    }
    return n;
}

/* Append s[0..n) quoted in single quotes, escaping control bytes, quotes,
 * backslashes and invalid UTF-8; at most `max` input bytes, then "...". */
static void sb_quoted(sbuf *b, const char *str, uint64_t n, uint64_t max) {
    const uint8_t *s = (const uint8_t *)str;
    sb_putn(b, "'", 1);
    uint64_t i = 0;
    while (i < n) {
        if (i >= max) {
            sb_puts(b, "...");
            break;
        }
        uint8_t c = s[i];
        size_t k = 1;
        char esc[8];
        if (c == '\n')
            sb_puts(b, "\\n");
        else if (c == '\t')
            sb_puts(b, "\\t");
        else if (c == '\r')
            sb_puts(b, "\\r");
        else if (c == '\\' || c == '\'') {
            esc[0] = '\\';
            esc[1] = (char)c;
            sb_putn(b, esc, 2);
        } else if (c < 0x20 || c == 0x7F) {
            snprintf(esc, sizeof esc, "\\x%02x", c);
            sb_puts(b, esc);
        } else if (c < 0x80) {
            sb_putn(b, (const char *)s + i, 1);
        } else if ((k = slim_utf8_seq_len(s + i, n - i)) != 0) {
            sb_putn(b, (const char *)s + i, k);
        } else {
            k = 1;
            snprintf(esc, sizeof esc, "\\x%02x", c);
            sb_puts(b, esc);
        }
        i += k;
    }
    sb_putn(b, "'", 1);
}

/* Shortest decimal text that reads back as the same float / double. */
static void fmt_real(char *out, size_t cap, double v, bool is_f32) {
    if (isnan(v)) {
        snprintf(out, cap, "nan");
        return;
    }
    if (isinf(v)) {
        snprintf(out, cap, v < 0 ? "-inf" : "inf");
        return;
    }
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(out, cap, "%.*g", prec, v);
        if (is_f32 ? strtof(out, NULL) == (float)v : strtod(out, NULL) == v) return;
    }
}

/* ---- errors ------------------------------------------------------------------------------- */

static slim_status perr(const parser *r, slim_status s, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static slim_status perr(const parser *r, slim_status s, const char *fmt, ...) {
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return slim_error(s, "gguf: %s: %s", r->where, msg);
}

/* "key #5", "key #5 ('general.name')", "tensor #3", "tensor 'blk.0.attn_q.weight'". */
static void set_where(parser *r, bool is_key, uint64_t index, const char *name) {
    sbuf b;
    sb_init(&b, r->where, sizeof r->where);
    if (!name) {
        sb_printf(&b, "%s #%llu", is_key ? "key" : "tensor", (ull)index);
    } else if (is_key) {
        sb_printf(&b, "key #%llu (", (ull)index);
        sb_quoted(&b, name, strlen(name), NAME_SHOWN);
        sb_putn(&b, ")", 1);
    } else {
        sb_puts(&b, "tensor ");
        sb_quoted(&b, name, strlen(name), NAME_SHOWN);
    }
    sb_finish(&b);
}

/* ---- little-endian reads, each checked against the remaining bytes ------------------------ */

static uint16_t ld16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static uint32_t ld32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static uint64_t ld64(const uint8_t *p) { return (uint64_t)ld32(p) | (uint64_t)ld32(p + 4) << 32; }

static slim_status need(const parser *r, uint64_t n, const char *what) {
    if (r->size - r->pos >= n) return SLIM_OK;
    return perr(r, SLIM_ERR_FORMAT,
                "%s: truncated: need %llu bytes at offset 0x%llx, only %llu left (file size "
                "0x%llx)",
                what, (ull)n, (ull)r->pos, (ull)(r->size - r->pos), (ull)r->size);
}

static slim_status rd_u32(parser *r, const char *what, uint32_t *v) {
    slim_status s = need(r, 4, what);
    if (s) return s;
    *v = ld32(r->p + r->pos);
    r->pos += 4;
    return SLIM_OK;
}

static slim_status rd_u64(parser *r, const char *what, uint64_t *v) {
    slim_status s = need(r, 8, what);
    if (s) return s;
    *v = ld64(r->p + r->pos);
    r->pos += 8;
    return SLIM_OK;
}

/* A string: u64 length, then that many bytes (checked against what remains). */
static slim_status rd_str(parser *r, const char *what, slim_gguf_str *out) {
    uint64_t at = r->pos, len;
    slim_status s = rd_u64(r, what, &len);
    if (s) return s;
    if (len > r->size - r->pos)
        return perr(r, SLIM_ERR_FORMAT,
                    "%s length %llu exceeds remaining %llu bytes at offset 0x%llx", what, (ull)len,
                    (ull)(r->size - r->pos), (ull)at);
    out->ptr = (const char *)r->p + r->pos;
    out->len = len;
    r->pos += len;
    return SLIM_OK;
}

/* A key or tensor name: a string, validated, copied with a NUL. */
static slim_status rd_name(parser *r, const char *what, char **out) {
    uint64_t at = r->pos;
    slim_gguf_str str;
    slim_status s = rd_str(r, what, &str);
    if (s) return s;
    if (str.len == 0) return perr(r, SLIM_ERR_FORMAT, "empty %s at offset 0x%llx", what, (ull)at);
    if (str.len > GGUF_MAX_NAME)
        return perr(r, SLIM_ERR_FORMAT, "%s length %llu exceeds %d at offset 0x%llx", what,
                    (ull)str.len, GGUF_MAX_NAME, (ull)at);
    const void *nul = memchr(str.ptr, 0, str.len);
    if (nul)
        return perr(r, SLIM_ERR_FORMAT, "%s contains a NUL byte at offset 0x%llx", what,
                    (ull)((const uint8_t *)nul - r->p));
    uint64_t bad = utf8_check((const uint8_t *)str.ptr, str.len);
    if (bad != str.len)
        return perr(r, SLIM_ERR_FORMAT, "%s is not valid UTF-8 (byte 0x%02x at offset 0x%llx)",
                    what, (uint8_t)str.ptr[bad], (ull)(at + 8 + bad));
    char *copy = malloc(str.len + 1);
    if (!copy)
        return perr(r, SLIM_ERR_NOMEM, "out of memory copying a %llu-byte %s", (ull)str.len, what);
    memcpy(copy, str.ptr, str.len);
    copy[str.len] = '\0';
    *out = copy;
    return SLIM_OK;
}

/* ---- a name -> index set for duplicate detection ----------------------------------------- */

typedef struct name_set {
    uint64_t *slot; /* index + 1, 0 = empty */
    uint64_t mask;
} name_set;

static uint64_t hash_name(const char *s) {
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++)
        h = (h ^ (uint8_t)*s) * 1099511628211ull;
    return h;
}

static bool set_init(name_set *set, uint64_t n) {
    uint64_t cap = 8;
    while (cap < 2 * n)
        cap *= 2; /* n is bounded by the file size / 14 */
    set->slot = calloc(cap, sizeof *set->slot);
    set->mask = cap - 1;
    return set->slot != NULL;
}

/* Insert names[i] unless an equal name is present; returns the earlier index + 1, or 0. */
static uint64_t set_insert(name_set *set, const char *name, uint64_t index,
                           const char *(*name_of)(const void *, uint64_t), const void *arr) {
    for (uint64_t h = hash_name(name) & set->mask;; h = (h + 1) & set->mask) {
        uint64_t v = set->slot[h];
        if (!v) {
            set->slot[h] = index + 1;
            return 0;
        }
        if (strcmp(name_of(arr, v - 1), name) == 0) return v;
    }
}

static const char *kv_name_of(const void *arr, uint64_t i) {
    return ((const slim_gguf_kv *)arr)[i].key;
}
static const char *tensor_name_of(const void *arr, uint64_t i) {
    return ((const slim_gguf_tensor *)arr)[i].name;
}

/* ---- values --------------------------------------------------------------------------------- */

/* Bytes of one element of a fixed-size type; 0 for STRING / ARRAY. */
static uint64_t type_size(uint32_t t) {
    static const uint8_t sz[] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};
    return t < sizeof sz ? sz[t] : 0;
}

static bool type_is_unsigned(slim_gguf_type t) {
    return t == SLIM_GGUF_UINT8 || t == SLIM_GGUF_UINT16 || t == SLIM_GGUF_UINT32 ||
           t == SLIM_GGUF_UINT64;
}
static bool type_is_signed(slim_gguf_type t) {
    return t == SLIM_GGUF_INT8 || t == SLIM_GGUF_INT16 || t == SLIM_GGUF_INT32 ||
           t == SLIM_GGUF_INT64;
}

static slim_status rd_array(parser *r, slim_gguf_kv *kv) {
    uint64_t at = r->pos, n;
    uint32_t et;
    slim_status s = rd_u32(r, "array element type", &et);
    if (s) return s;
    if (et == SLIM_GGUF_ARRAY)
        return perr(r, SLIM_ERR_UNSUPPORTED, "nested arrays are not supported (offset 0x%llx)",
                    (ull)at);
    if (et > SLIM_GGUF_FLOAT64)
        return perr(r, SLIM_ERR_FORMAT, "unknown array element type %u at offset 0x%llx", et,
                    (ull)at);
    at = r->pos;
    if ((s = rd_u64(r, "array length", &n))) return s;
    uint64_t rem = r->size - r->pos;
    kv->arr_type = (slim_gguf_type)et;

    if (et == SLIM_GGUF_STRING) {
        if (n > rem / 8) /* each string takes at least its 8-byte length */
            return perr(r, SLIM_ERR_FORMAT,
                        "array of %llu strings exceeds remaining %llu bytes at offset 0x%llx",
                        (ull)n, (ull)rem, (ull)at);
        kv->arr_strs = calloc(n ? n : 1, sizeof *kv->arr_strs);
        if (!kv->arr_strs)
            return perr(r, SLIM_ERR_NOMEM, "out of memory for an array of %llu strings", (ull)n);
        kv->arr_n = n;
        for (uint64_t j = 0; j < n; j++) {
            char what[48];
            snprintf(what, sizeof what, "string #%llu", (ull)j);
            if ((s = rd_str(r, what, &kv->arr_strs[j]))) return s;
        }
        return SLIM_OK;
    }

    uint64_t es = type_size(et), bytes;
    if (__builtin_mul_overflow(n, es, &bytes) || bytes > rem)
        return perr(r, SLIM_ERR_FORMAT,
                    "array of %llu %s elements exceeds remaining %llu bytes at offset 0x%llx",
                    (ull)n, slim_gguf_type_name((slim_gguf_type)et), (ull)rem, (ull)at);
    if (et == SLIM_GGUF_BOOL) {
        for (uint64_t j = 0; j < n; j++)
            if (r->p[r->pos + j] > 1)
                return perr(r, SLIM_ERR_FORMAT,
                            "array element %llu: bool value %u is not 0 or 1 at offset 0x%llx",
                            (ull)j, r->p[r->pos + j], (ull)(r->pos + j));
    }
    kv->arr_n = n;
    kv->arr_data = r->p + r->pos;
    r->pos += bytes;
    return SLIM_OK;
}

static slim_status rd_value(parser *r, slim_gguf_kv *kv) {
    slim_gguf_type t = kv->type;
    if (t == SLIM_GGUF_STRING) return rd_str(r, "string", &kv->v.str);
    if (t == SLIM_GGUF_ARRAY) return rd_array(r, kv);
    uint64_t n = type_size(t);
    slim_status s = need(r, n, "value");
    if (s) return s;
    const uint8_t *p = r->p + r->pos;
    switch (t) {
    case SLIM_GGUF_UINT8: kv->v.u64 = p[0]; break;
    case SLIM_GGUF_INT8: kv->v.i64 = (int8_t)p[0]; break;
    case SLIM_GGUF_UINT16: kv->v.u64 = ld16(p); break;
    case SLIM_GGUF_INT16: kv->v.i64 = (int16_t)ld16(p); break;
    case SLIM_GGUF_UINT32: kv->v.u64 = ld32(p); break;
    case SLIM_GGUF_INT32: kv->v.i64 = (int32_t)ld32(p); break;
    case SLIM_GGUF_UINT64: kv->v.u64 = ld64(p); break;
    case SLIM_GGUF_INT64: kv->v.i64 = (int64_t)ld64(p); break;
    case SLIM_GGUF_FLOAT32: {
        uint32_t bits = ld32(p);
        float f;
        memcpy(&f, &bits, sizeof f);
        kv->v.f64 = f;
        break;
    }
    case SLIM_GGUF_FLOAT64: {
        uint64_t bits = ld64(p);
        memcpy(&kv->v.f64, &bits, sizeof kv->v.f64);
        break;
    }
    case SLIM_GGUF_BOOL:
        if (p[0] > 1)
            return perr(r, SLIM_ERR_FORMAT, "bool value %u is not 0 or 1 at offset 0x%llx", p[0],
                        (ull)r->pos);
        kv->v.b = p[0] != 0;
        break;
    default: return perr(r, SLIM_ERR_INTERNAL, "unhandled value type %d", (int)t);
    }
    r->pos += n;
    return SLIM_OK;
}

/* ---- the file ------------------------------------------------------------------------------- */

static slim_status parse_header(parser *r, slim_gguf *g) {
    snprintf(r->where, sizeof r->where, "header");
    if (r->size < 4)
        return perr(r, SLIM_ERR_FORMAT, "file too small for a GGUF header (%llu bytes)",
                    (ull)r->size);
    if (memcmp(r->p, "GGUF", 4) != 0)
        return perr(r, SLIM_ERR_FORMAT,
                    "bad magic %02x %02x %02x %02x at offset 0x0 (expected 'GGUF')", r->p[0],
                    r->p[1], r->p[2], r->p[3]);
    r->pos = 4;
    uint32_t v;
    slim_status s = rd_u32(r, "version", &v);
    if (s) return s;
    if (v != 2 && v != 3) {
        uint32_t sw = __builtin_bswap32(v);
        if (sw >= 1 && sw <= 3)
            return perr(r, SLIM_ERR_UNSUPPORTED,
                        "big-endian GGUF (version field 0x%08x at offset 0x4) is not supported", v);
        return perr(r, SLIM_ERR_UNSUPPORTED,
                    "GGUF version %u (at offset 0x4) is not supported (only 2 and 3)", v);
    }
    g->version = v;
    uint64_t nt, nkv;
    if ((s = rd_u64(r, "tensor_count", &nt))) return s;
    if ((s = rd_u64(r, "kv_count", &nkv))) return s;
    uint64_t rem = r->size - r->pos;
    if (nt > rem / GGUF_MIN_TENSOR_BYTES)
        return perr(r, SLIM_ERR_FORMAT,
                    "tensor_count %llu at offset 0x8: the remaining %llu bytes hold at most "
                    "%llu tensor infos",
                    (ull)nt, (ull)rem, (ull)(rem / GGUF_MIN_TENSOR_BYTES));
    if (nkv > rem / GGUF_MIN_KV_BYTES)
        return perr(r, SLIM_ERR_FORMAT,
                    "kv_count %llu at offset 0x10: the remaining %llu bytes hold at most %llu "
                    "key-value pairs",
                    (ull)nkv, (ull)rem, (ull)(rem / GGUF_MIN_KV_BYTES));
    if (nt * GGUF_MIN_TENSOR_BYTES + nkv * GGUF_MIN_KV_BYTES > rem) /* no overflow: see above */
        return perr(r, SLIM_ERR_FORMAT,
                    "tensor_count %llu and kv_count %llu need at least %llu bytes, only %llu "
                    "remain after the header",
                    (ull)nt, (ull)nkv, (ull)(nt * GGUF_MIN_TENSOR_BYTES + nkv * GGUF_MIN_KV_BYTES),
                    (ull)rem);
    g->n_tensors = nt;
    g->n_kv = nkv;
    return SLIM_OK;
}

static slim_status parse_kvs(parser *r, slim_gguf *g) {
    g->kv = calloc(g->n_kv ? g->n_kv : 1, sizeof *g->kv);
    name_set set = {0};
    if (!g->kv || !set_init(&set, g->n_kv)) {
        free(set.slot);
        return perr(r, SLIM_ERR_NOMEM, "out of memory for %llu key-value pairs", (ull)g->n_kv);
    }
    slim_status s = SLIM_OK;
    for (uint64_t i = 0; i < g->n_kv && !s; i++) {
        slim_gguf_kv *kv = &g->kv[i];
        set_where(r, true, i, NULL);
        if ((s = rd_name(r, "key", &kv->key))) break;
        set_where(r, true, i, kv->key);
        uint64_t dup = set_insert(&set, kv->key, i, kv_name_of, g->kv);
        if (dup) {
            s = perr(r, SLIM_ERR_FORMAT, "duplicate key (also key #%llu), ending at offset 0x%llx",
                     (ull)(dup - 1), (ull)r->pos);
            break;
        }
        uint64_t at = r->pos;
        uint32_t t;
        if ((s = rd_u32(r, "value type", &t))) break;
        if (t > SLIM_GGUF_FLOAT64) {
            s = perr(r, SLIM_ERR_FORMAT, "unknown value type %u at offset 0x%llx", t, (ull)at);
            break;
        }
        kv->type = (slim_gguf_type)t;
        s = rd_value(r, kv);
    }
    free(set.slot);
    return s;
}

static slim_status get_alignment(parser *r, slim_gguf *g) {
    g->alignment = GGUF_DEFAULT_ALIGNMENT;
    const slim_gguf_kv *kv = slim_gguf_find(g, "general.alignment");
    if (!kv) return SLIM_OK;
    snprintf(r->where, sizeof r->where, "key 'general.alignment'");
    if (kv->type != SLIM_GGUF_UINT32)
        return perr(r, SLIM_ERR_FORMAT, "type is %s, expected uint32",
                    slim_gguf_type_name(kv->type));
    uint64_t a = kv->v.u64;
    if (a == 0 || (a & (a - 1)) != 0)
        return perr(r, SLIM_ERR_FORMAT, "alignment %llu is not a nonzero power of two", (ull)a);
    g->alignment = a;
    return SLIM_OK;
}

static slim_status parse_tensor_info(parser *r, slim_gguf *g, slim_gguf_tensor *t) {
    uint64_t at = r->pos;
    uint32_t nd;
    slim_status s = rd_u32(r, "n_dims", &nd);
    if (s) return s;
    if (nd < 1 || nd > 4)
        return perr(r, SLIM_ERR_FORMAT, "n_dims %u out of range 1..4 at offset 0x%llx", nd,
                    (ull)at);
    t->n_dims = (int32_t)nd;
    int64_t nel = 1;
    for (int d = 0; d < 4; d++)
        t->ne[d] = 1;
    for (uint32_t d = 0; d < nd; d++) {
        char what[16];
        snprintf(what, sizeof what, "ne[%u]", d);
        uint64_t v;
        at = r->pos;
        if ((s = rd_u64(r, what, &v))) return s;
        if (v == 0) return perr(r, SLIM_ERR_FORMAT, "%s is 0 at offset 0x%llx", what, (ull)at);
        if (v > (uint64_t)INT64_MAX)
            return perr(r, SLIM_ERR_FORMAT, "%s = %llu exceeds INT64_MAX at offset 0x%llx", what,
                        (ull)v, (ull)at);
        t->ne[d] = (int64_t)v;
        if (__builtin_mul_overflow(nel, t->ne[d], &nel))
            return perr(r, SLIM_ERR_FORMAT,
                        "element count overflows int64 at %s = %llu (offset 0x%llx)", what, (ull)v,
                        (ull)at);
    }
    at = r->pos;
    uint32_t type;
    if ((s = rd_u32(r, "type", &type))) return s;
    int32_t block = 0, bytes = 0;
    const char *tname = type <= 0x7fffffffu ? slim_dtype_layout((int)type, &block, &bytes) : NULL;
    if (!tname)
        return perr(r, SLIM_ERR_UNSUPPORTED, "unknown tensor type %u at offset 0x%llx", type,
                    (ull)at);
    t->type = (slim_dtype)type;
    if (t->ne[0] % block != 0)
        return perr(r, SLIM_ERR_FORMAT, "ne[0] = %lld is not a multiple of %s's block size %d",
                    (ll)t->ne[0], tname, (int)block);
    int64_t size;
    if (__builtin_mul_overflow(t->ne[0] / block, (int64_t)bytes, &size) ||
        __builtin_mul_overflow(size, t->ne[1], &size) ||
        __builtin_mul_overflow(size, t->ne[2], &size) ||
        __builtin_mul_overflow(size, t->ne[3], &size))
        return perr(r, SLIM_ERR_FORMAT, "byte size of %lld %s elements overflows int64", (ll)nel,
                    tname);
    t->size = (uint64_t)size;
    at = r->pos;
    uint64_t off;
    if ((s = rd_u64(r, "offset", &off))) return s;
    if (off % g->alignment != 0)
        return perr(r, SLIM_ERR_FORMAT,
                    "data offset 0x%llx (field at offset 0x%llx) is not a multiple of the "
                    "alignment %llu",
                    (ull)off, (ull)at, (ull)g->alignment);
    t->offset = off; /* relative to the data section until that is known */
    return SLIM_OK;
}

static slim_status parse_tensors(parser *r, slim_gguf *g) {
    g->tensors = calloc(g->n_tensors ? g->n_tensors : 1, sizeof *g->tensors);
    name_set set = {0};
    if (!g->tensors || !set_init(&set, g->n_tensors)) {
        free(set.slot);
        return perr(r, SLIM_ERR_NOMEM, "out of memory for %llu tensor infos", (ull)g->n_tensors);
    }
    slim_status s = SLIM_OK;
    for (uint64_t i = 0; i < g->n_tensors && !s; i++) {
        slim_gguf_tensor *t = &g->tensors[i];
        set_where(r, false, i, NULL);
        if ((s = rd_name(r, "name", &t->name))) break;
        set_where(r, false, i, t->name);
        uint64_t dup = set_insert(&set, t->name, i, tensor_name_of, g->tensors);
        if (dup) {
            s = perr(r, SLIM_ERR_FORMAT,
                     "duplicate tensor name (also tensor #%llu), ending at offset 0x%llx",
                     (ull)(dup - 1), (ull)r->pos);
            break;
        }
        s = parse_tensor_info(r, g, t);
    }
    free(set.slot);
    if (s) return s;

    /* The data section starts at the end of the infos rounded up to the alignment. */
    uint64_t start;
    if (__builtin_add_overflow(r->pos, g->alignment - 1, &start)) {
        snprintf(r->where, sizeof r->where, "tensor data");
        return perr(r, SLIM_ERR_FORMAT, "data section offset overflows");
    }
    start &= ~(g->alignment - 1);
    g->data_offset = start;
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        slim_gguf_tensor *t = &g->tensors[i];
        uint64_t begin, end;
        if (__builtin_add_overflow(start, t->offset, &begin) ||
            __builtin_add_overflow(begin, t->size, &end) || end > r->size) {
            set_where(r, false, i, t->name);
            if (__builtin_add_overflow(start, t->offset, &begin))
                return perr(r, SLIM_ERR_FORMAT,
                            "data offset 0x%llx + data section 0x%llx overflows (file size "
                            "0x%llx)",
                            (ull)t->offset, (ull)start, (ull)r->size);
            if (__builtin_add_overflow(begin, t->size, &end))
                return perr(r, SLIM_ERR_FORMAT,
                            "data at 0x%llx + size 0x%llx overflows (file size 0x%llx)", (ull)begin,
                            (ull)t->size, (ull)r->size);
            return perr(r, SLIM_ERR_FORMAT, "data [0x%llx, 0x%llx) past end of file (size 0x%llx)",
                        (ull)begin, (ull)end, (ull)r->size);
        }
        t->offset = begin;
        t->data = r->p + begin;
    }
    return SLIM_OK;
}

static slim_status parse(slim_gguf *g) {
    parser r = {.p = g->map.data, .size = g->map.size, .pos = 0};
    slim_status s;
    if ((s = parse_header(&r, g))) return s;
    if ((s = parse_kvs(&r, g))) return s;
    if ((s = get_alignment(&r, g))) return s;
    return parse_tensors(&r, g);
}

/* ---- API ------------------------------------------------------------------------------------ */

void slim_gguf_close(slim_gguf *g) {
    if (!g) return;
    gguf_impl *impl = (gguf_impl *)g;
    if (g->kv)
        for (uint64_t i = 0; i < g->n_kv; i++) {
            free(g->kv[i].key);
            free(g->kv[i].arr_strs);
        }
    free(g->kv);
    if (g->tensors)
        for (uint64_t i = 0; i < g->n_tensors; i++)
            free(g->tensors[i].name);
    free(g->tensors);
    if (impl->owns_map) slim_file_map_close(&g->map);
    free(impl);
}

static slim_status open_common(gguf_impl *impl, slim_gguf **out) {
    slim_status s = parse(&impl->pub);
    if (s) {
        slim_gguf_close(&impl->pub);
        return s;
    }
    *out = &impl->pub;
    return SLIM_OK;
}

slim_status slim_gguf_open_memory(const void *data, size_t size, slim_gguf **out) {
    if (!out) return slim_error(SLIM_ERR_INVALID_ARG, "slim_gguf_open_memory: out is NULL");
    *out = NULL;
    if (!data && size)
        return slim_error(SLIM_ERR_INVALID_ARG, "slim_gguf_open_memory: data is NULL");
    gguf_impl *impl = calloc(1, sizeof *impl);
    if (!impl) return slim_error(SLIM_ERR_NOMEM, "gguf: out of memory");
    impl->pub.map.data = data;
    impl->pub.map.size = size;
    impl->owns_map = false;
    return open_common(impl, out);
}

slim_status slim_gguf_open(const char *path, bool use_mmap, slim_gguf **out) {
    if (!out) return slim_error(SLIM_ERR_INVALID_ARG, "slim_gguf_open: out is NULL");
    *out = NULL;
    if (!path) return slim_error(SLIM_ERR_INVALID_ARG, "slim_gguf_open: path is NULL");
    gguf_impl *impl = calloc(1, sizeof *impl);
    if (!impl) return slim_error(SLIM_ERR_NOMEM, "%s: gguf: out of memory", path);
    slim_status s = slim_file_map_open(path, use_mmap, &impl->pub.map); /* names the path */
    if (s) {
        free(impl);
        return s;
    }
    impl->owns_map = true;
    s = open_common(impl, out);
    if (s) return slim_error_prefix(s, "%s", path);
    return SLIM_OK;
}

const slim_gguf_kv *slim_gguf_find(const slim_gguf *g, const char *key) {
    if (!g || !key || !g->kv) return NULL;
    for (uint64_t i = 0; i < g->n_kv; i++)
        if (g->kv[i].key && strcmp(g->kv[i].key, key) == 0) return &g->kv[i];
    return NULL;
}

const slim_gguf_tensor *slim_gguf_find_tensor(const slim_gguf *g, const char *name) {
    if (!g || !name || !g->tensors) return NULL;
    for (uint64_t i = 0; i < g->n_tensors; i++)
        if (g->tensors[i].name && strcmp(g->tensors[i].name, name) == 0) return &g->tensors[i];
    return NULL;
}

bool slim_gguf_get_i64(const slim_gguf *g, const char *key, int64_t *out) {
    const slim_gguf_kv *kv = slim_gguf_find(g, key);
    if (!kv) return false;
    if (type_is_unsigned(kv->type)) {
        if (kv->v.u64 > (uint64_t)INT64_MAX) return false;
        if (out) *out = (int64_t)kv->v.u64;
        return true;
    }
    if (type_is_signed(kv->type)) {
        if (out) *out = kv->v.i64;
        return true;
    }
    return false;
}

bool slim_gguf_get_u32(const slim_gguf *g, const char *key, uint32_t *out) {
    const slim_gguf_kv *kv = slim_gguf_find(g, key);
    if (!kv) return false;
    if (type_is_unsigned(kv->type)) {
        if (kv->v.u64 > UINT32_MAX) return false;
        if (out) *out = (uint32_t)kv->v.u64;
        return true;
    }
    if (type_is_signed(kv->type)) {
        if (kv->v.i64 < 0 || kv->v.i64 > (int64_t)UINT32_MAX) return false;
        if (out) *out = (uint32_t)kv->v.i64;
        return true;
    }
    return false;
}

bool slim_gguf_get_f32(const slim_gguf *g, const char *key, float *out) {
    const slim_gguf_kv *kv = slim_gguf_find(g, key);
    if (!kv) return false;
    float f;
    if (type_is_unsigned(kv->type))
        f = (float)kv->v.u64;
    else if (type_is_signed(kv->type))
        f = (float)kv->v.i64;
    else if (kv->type == SLIM_GGUF_FLOAT32 || kv->type == SLIM_GGUF_FLOAT64)
        f = (float)kv->v.f64;
    else
        return false;
    if (out) *out = f;
    return true;
}

bool slim_gguf_get_bool(const slim_gguf *g, const char *key, bool *out) {
    const slim_gguf_kv *kv = slim_gguf_find(g, key);
    if (!kv || kv->type != SLIM_GGUF_BOOL) return false;
    if (out) *out = kv->v.b;
    return true;
}

bool slim_gguf_get_str(const slim_gguf *g, const char *key, slim_gguf_str *out) {
    const slim_gguf_kv *kv = slim_gguf_find(g, key);
    if (!kv || kv->type != SLIM_GGUF_STRING) return false;
    if (out) *out = kv->v.str;
    return true;
}

bool slim_gguf_get_arr(const slim_gguf *g, const char *key, slim_gguf_type type,
                       const slim_gguf_kv **out) {
    const slim_gguf_kv *kv = slim_gguf_find(g, key);
    if (!kv || kv->type != SLIM_GGUF_ARRAY || kv->arr_type != type) return false;
    if (out) *out = kv;
    return true;
}

const char *slim_gguf_type_name(slim_gguf_type t) {
    switch (t) {
    case SLIM_GGUF_UINT8: return "uint8";
    case SLIM_GGUF_INT8: return "int8";
    case SLIM_GGUF_UINT16: return "uint16";
    case SLIM_GGUF_INT16: return "int16";
    case SLIM_GGUF_UINT32: return "uint32";
    case SLIM_GGUF_INT32: return "int32";
    case SLIM_GGUF_FLOAT32: return "float32";
    case SLIM_GGUF_BOOL: return "bool";
    case SLIM_GGUF_STRING: return "string";
    case SLIM_GGUF_ARRAY: return "array";
    case SLIM_GGUF_UINT64: return "uint64";
    case SLIM_GGUF_INT64: return "int64";
    case SLIM_GGUF_FLOAT64: return "float64";
    }
    return "?";
}

enum { FMT_ARRAY_ITEMS = 8, FMT_ITEM_BYTES = 48, FMT_STRING_BYTES = 256 };

/* One array element (fixed-size types) from little-endian bytes. */
static void sb_elem(sbuf *b, slim_gguf_type t, const uint8_t *p) {
    char num[40];
    switch (t) {
    case SLIM_GGUF_UINT8: sb_printf(b, "%u", p[0]); break;
    case SLIM_GGUF_INT8: sb_printf(b, "%d", (int8_t)p[0]); break;
    case SLIM_GGUF_UINT16: sb_printf(b, "%u", ld16(p)); break;
    case SLIM_GGUF_INT16: sb_printf(b, "%d", (int16_t)ld16(p)); break;
    case SLIM_GGUF_UINT32: sb_printf(b, "%u", ld32(p)); break;
    case SLIM_GGUF_INT32: sb_printf(b, "%d", (int32_t)ld32(p)); break;
    case SLIM_GGUF_UINT64: sb_printf(b, "%llu", (ull)ld64(p)); break;
    case SLIM_GGUF_INT64: sb_printf(b, "%lld", (ll)(int64_t)ld64(p)); break;
    case SLIM_GGUF_BOOL: sb_puts(b, p[0] ? "true" : "false"); break;
    case SLIM_GGUF_FLOAT32: {
        uint32_t bits = ld32(p);
        float f;
        memcpy(&f, &bits, sizeof f);
        fmt_real(num, sizeof num, f, true);
        sb_puts(b, num);
        break;
    }
    case SLIM_GGUF_FLOAT64: {
        uint64_t bits = ld64(p);
        double d;
        memcpy(&d, &bits, sizeof d);
        fmt_real(num, sizeof num, d, false);
        sb_puts(b, num);
        break;
    }
    default: sb_puts(b, "?"); break;
    }
}

void slim_gguf_format_value(const slim_gguf_kv *kv, char *buf, size_t cap) {
    if (!buf || cap == 0) return;
    sbuf b;
    sb_init(&b, buf, cap);
    if (!kv) {
        sb_finish(&b);
        return;
    }
    char num[40];
    switch (kv->type) {
    case SLIM_GGUF_UINT8:
    case SLIM_GGUF_UINT16:
    case SLIM_GGUF_UINT32:
    case SLIM_GGUF_UINT64: sb_printf(&b, "%llu", (ull)kv->v.u64); break;
    case SLIM_GGUF_INT8:
    case SLIM_GGUF_INT16:
    case SLIM_GGUF_INT32:
    case SLIM_GGUF_INT64: sb_printf(&b, "%lld", (ll)kv->v.i64); break;
    case SLIM_GGUF_FLOAT32:
    case SLIM_GGUF_FLOAT64:
        fmt_real(num, sizeof num, kv->v.f64, kv->type == SLIM_GGUF_FLOAT32);
        sb_puts(&b, num);
        break;
    case SLIM_GGUF_BOOL: sb_puts(&b, kv->v.b ? "true" : "false"); break;
    case SLIM_GGUF_STRING: sb_quoted(&b, kv->v.str.ptr, kv->v.str.len, FMT_STRING_BYTES); break;
    case SLIM_GGUF_ARRAY: {
        sb_printf(&b, "[%s; %llu] [", slim_gguf_type_name(kv->arr_type), (ull)kv->arr_n);
        uint64_t shown = kv->arr_n < FMT_ARRAY_ITEMS ? kv->arr_n : FMT_ARRAY_ITEMS;
        uint64_t es = type_size(kv->arr_type);
        for (uint64_t i = 0; i < shown; i++) {
            if (i) sb_puts(&b, ", ");
            if (kv->arr_type == SLIM_GGUF_STRING && kv->arr_strs)
                sb_quoted(&b, kv->arr_strs[i].ptr, kv->arr_strs[i].len, FMT_ITEM_BYTES);
            else if (es && kv->arr_data)
                sb_elem(&b, kv->arr_type, (const uint8_t *)kv->arr_data + i * es);
            else
                sb_puts(&b, "?");
        }
        if (shown < kv->arr_n) sb_puts(&b, shown ? ", ..." : "...");
        sb_puts(&b, "]");
        break;
    }
    default: sb_puts(&b, "?"); break;
    }
    sb_finish(&b);
}
