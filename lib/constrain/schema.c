/* JSON Schema (draft 2020-12 and draft-07 keywords that constrain text) to a
 * grammar, exactly or not at all.
 *
 * A (sub)schema is compiled from a list of schema nodes that all apply
 * (allOf, $ref and its siblings, anyOf alternatives distributed over their
 * context): the list is merged keyword by keyword into one `ms`, then written
 * as the alternation of its JSON types.  Values are written compactly
 * (configurable whitespace), object members in definition order, extra
 * members (additionalProperties) after the defined ones, with keys that are
 * none of the defined names.  Keywords that constrain and cannot be honoured
 * exactly are compile errors naming the keyword and its JSON pointer;
 * annotations and unknown keywords (which validators ignore) are ignored.
 * oneOf is compiled as anyOf only where its alternatives are provably
 * disjoint (different JSON types, or a required property with disjoint
 * const/enum values), so an accepted value always matches exactly one.
 * docs/STRUCTURED.md has the per-keyword table. */
#include "constrain/constrain.h"
#include "constrain/jsongram.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/grow.h"
#include "format/json.h"

SLIM_HIDDEN size_t slim_cranges_norm(uint32_t *r, size_t n, bool negate);

enum { T_NULL = 1, T_BOOL = 2, T_INT = 4, T_FRAC = 8, T_STR = 16, T_ARR = 32, T_OBJ = 64 };
enum { T_ALL = 127, MAX_LIST = 16, MAX_DEPTH = 64, MAX_WORK = 200000 };

typedef struct nl { /* the nodes that all apply */
    const slim_json *v[MAX_LIST];
    int n;
} nl;

typedef struct prop {
    const char *name;
    size_t len;
    nl l;
    bool required;
} prop;

typedef struct ms {
    unsigned types;
    int64_t min_len, max_len, min_items, max_items; /* -1: none */
    const char *pattern, *format;
    size_t pattern_len;
    bool has_lo, has_hi, lo_ex, hi_ex;
    double lo, hi, mult;
    nl items; /* tail items */
    bool items_false;
    nl prefix[32];
    int n_prefix;
    prop *props;
    size_t n_props, cap_props;
    const slim_json *req[256];
    size_t n_req;
    nl addl;
    bool addl_false;
    const slim_json *enums[8]; /* arrays of allowed values; const as a 1-value view */
    const slim_json *consts[8];
    int n_enums, n_consts;
    const slim_json *anyof[16]; /* arrays of alternatives, not yet distributed */
    int n_anyof;
    bool anyof_is_one[16];
    bool none;
} ms;

typedef struct sc {
    slim_cgb *b;
    slim_cjson j;
    const slim_json *root;
    const slim_json **memo_node;
    int32_t *memo_rule;
    size_t n_memo, cap_memo, cap_memo2;
    int depth;
    long work;
    slim_status st;
    char ptr[512];
    /* anyOf/oneOf arrays already distributed, and the alternative taken: merged
     * where the combinator stands (keeps definition order) */
    const slim_json *skip[64];
    size_t skip_alt[64];
    int n_skip;
} sc;

static slim_status serr(sc *c, slim_status st, const char *fmt, const char *a, const char *ptr) {
    if (c->st != SLIM_OK) return c->st;
    char m[256];
    snprintf(m, sizeof m, fmt, a);
    c->st = slim_error(st, "json schema: %s at %s", m, ptr && *ptr ? ptr : "#");
    return c->st;
}

static bool key_is(const char *k, size_t kl, const char *s) {
    return strlen(s) == kl && memcmp(k, s, kl) == 0;
}

/* ---- $ref -------------------------------------------------------------------------------- */

static const slim_json *resolve(sc *c, const char *ref, size_t len) {
    if (len == 0 || ref[0] != '#') return NULL;
    const slim_json *v = c->root;
    size_t i = 1;
    if (i < len && ref[i] != '/') return NULL; /* anchors ($anchor) are not supported */
    while (i < len && v) {
        i++; /* '/' */
        char seg[256];
        size_t k = 0;
        while (i < len && ref[i] != '/' && k < sizeof seg - 1) {
            char ch = ref[i++];
            if (ch == '~' && i < len && (ref[i] == '0' || ref[i] == '1'))
                ch = ref[i++] == '0' ? '~' : '/';
            else if (ch == '%' && i + 1 < len) { /* percent-encoding in URI fragments */
                int h = 0;
                for (int q = 0; q < 2; q++) {
                    char x = ref[i + (size_t)q];
                    h = h * 16 + (x >= '0' && x <= '9'                 ? x - '0'
                                  : (x | 32) >= 'a' && (x | 32) <= 'f' ? (x | 32) - 'a' + 10
                                                                       : 0);
                }
                i += 2;
                ch = (char)h;
            }
            seg[k++] = ch;
        }
        seg[k] = 0;
        if (slim_json_type_of(v) == SLIM_JSON_ARRAY) {
            char *e;
            long idx = strtol(seg, &e, 10);
            v = *e || idx < 0 ? NULL : slim_json_at(v, (size_t)idx);
        } else {
            v = slim_json_getn(v, seg, k);
        }
    }
    return v;
}

/* ---- merging ----------------------------------------------------------------------------- */

static bool nl_add(nl *l, const slim_json *v) {
    if (l->n >= MAX_LIST) return false;
    l->v[l->n++] = v;
    return true;
}

static unsigned type_bits(const char *s, size_t n) {
    if (key_is(s, n, "null")) return T_NULL;
    if (key_is(s, n, "boolean")) return T_BOOL;
    if (key_is(s, n, "integer")) return T_INT;
    if (key_is(s, n, "number")) return T_INT | T_FRAC;
    if (key_is(s, n, "string")) return T_STR;
    if (key_is(s, n, "array")) return T_ARR;
    if (key_is(s, n, "object")) return T_OBJ;
    return 0;
}

static const char *const IGNORED[] = {
    "$schema",          "$id",           "id",          "$comment",       "$defs",
    "definitions",      "title",         "description", "default",        "examples",
    "example",          "deprecated",    "readOnly",    "writeOnly",      "contentEncoding",
    "contentMediaType", "contentSchema", "$anchor",     "$dynamicAnchor", "$vocabulary",
    "discriminator",    "nullable",      "then",        "else",           NULL};
static const char *const UNSUPPORTED[] = {"patternProperties",
                                          "propertyNames",
                                          "maxProperties",
                                          "dependencies",
                                          "dependentRequired",
                                          "dependentSchemas",
                                          "if",
                                          "unevaluatedProperties",
                                          "unevaluatedItems",
                                          "contains",
                                          "minContains",
                                          "maxContains",
                                          "$dynamicRef",
                                          "$recursiveRef",
                                          "uniqueItems",
                                          "minProperties",
                                          NULL};
static const char *const STD_FORMATS[] = {"date-time",    "date",
                                          "time",         "duration",
                                          "email",        "idn-email",
                                          "hostname",     "idn-hostname",
                                          "ipv4",         "ipv6",
                                          "uri",          "uri-reference",
                                          "iri",          "iri-reference",
                                          "uuid",         "uri-template",
                                          "json-pointer", "relative-json-pointer",
                                          "regex",        NULL};
static const char *const OUR_FORMATS[] = {"date-time", "date", "time", "email",
                                          "ipv4",      "uri",  "uuid", NULL};

static bool in_list(const char *const *l, const char *k, size_t kl) {
    for (; *l; l++)
        if (key_is(k, kl, *l)) return true;
    return false;
}

static int64_t as_count(const slim_json *v) {
    int64_t x;
    if (slim_json_i64(v, &x) && x >= 0) return x > INT32_MAX ? INT32_MAX : x;
    double d;
    if (slim_json_num(v, &d) && d >= 0 && d == floor(d))
        return d > INT32_MAX ? INT32_MAX : (int64_t)d;
    return -2;
}

static void ptr_push(sc *c, size_t *save, const char *seg, size_t n) {
    *save = strlen(c->ptr);
    size_t room = sizeof c->ptr - *save - 2;
    if (n > room) n = room;
    c->ptr[*save] = '/';
    memcpy(c->ptr + *save + 1, seg, n);
    c->ptr[*save + 1 + n] = 0;
}

static bool merge(sc *c, ms *m, const slim_json *s, int depth);

static bool merge_list_kw(sc *c, ms *m, const slim_json *arr, const char *kw, int depth) {
    if (slim_json_type_of(arr) != SLIM_JSON_ARRAY || slim_json_len(arr) == 0)
        return serr(c, SLIM_ERR_FORMAT, "%s must be a non-empty array", kw, c->ptr), false;
    for (size_t i = 0; i < slim_json_len(arr); i++) {
        size_t save;
        char idx[24];
        snprintf(idx, sizeof idx, "%zu", i);
        ptr_push(c, &save, idx, strlen(idx));
        bool ok = merge(c, m, slim_json_at(arr, i), depth + 1);
        c->ptr[save] = 0;
        if (!ok) return false;
    }
    return true;
}

static prop *find_prop(sc *c, ms *m, const char *name, size_t len) {
    for (size_t i = 0; i < m->n_props; i++)
        if (m->props[i].len == len && memcmp(m->props[i].name, name, len) == 0) return &m->props[i];
    if (!slim_grow((void **)&m->props, &m->cap_props, m->n_props + 1, sizeof(prop))) {
        serr(c, SLIM_ERR_NOMEM, "out of memory%s", "", c->ptr);
        return NULL;
    }
    prop *p = &m->props[m->n_props++];
    memset(p, 0, sizeof *p);
    p->name = name;
    p->len = len;
    return p;
}

static bool merge_bound(sc *c, ms *m, const char *k, size_t kl, const slim_json *v,
                        const slim_json *s) {
    double d;
    bool b;
    if (slim_json_bool(v, &b)) { /* draft-04 exclusiveMinimum: true */
        if (key_is(k, kl, "exclusiveMinimum") && b) m->lo_ex = true;
        if (key_is(k, kl, "exclusiveMaximum") && b) m->hi_ex = true;
        return true;
    }
    if (!slim_json_num(v, &d))
        return serr(c, SLIM_ERR_FORMAT, "%s must be a number", k, c->ptr), false;
    bool lower = key_is(k, kl, "minimum") || key_is(k, kl, "exclusiveMinimum");
    bool ex = key_is(k, kl, "exclusiveMinimum") || key_is(k, kl, "exclusiveMaximum");
    /* draft-04 style: "minimum" with a boolean exclusiveMinimum beside it */
    bool b4;
    if (!ex &&
        slim_json_bool(slim_json_get(s, lower ? "exclusiveMinimum" : "exclusiveMaximum"), &b4) &&
        b4)
        ex = true;
    if (lower) {
        if (!m->has_lo || d > m->lo || (d == m->lo && ex)) m->lo = d, m->lo_ex = ex;
        m->has_lo = true;
    } else {
        if (!m->has_hi || d < m->hi || (d == m->hi && ex)) m->hi = d, m->hi_ex = ex;
        m->has_hi = true;
    }
    return true;
}

static bool merge(sc *c, ms *m, const slim_json *s, int depth) {
    if (c->st != SLIM_OK) return false;
    if (depth > MAX_DEPTH)
        return serr(c, SLIM_ERR_UNSUPPORTED, "schemas nested or referenced %s", "too deeply",
                    c->ptr),
               false;
    bool bv;
    if (slim_json_bool(s, &bv)) {
        if (!bv) m->none = true;
        return true;
    }
    if (slim_json_type_of(s) != SLIM_JSON_OBJECT)
        return serr(c, SLIM_ERR_FORMAT, "a schema must be an object or a boolean%s", "", c->ptr),
               false;
    size_t n = slim_json_len(s);
    for (size_t i = 0; i < n && c->st == SLIM_OK; i++) {
        const char *k;
        size_t kl;
        const slim_json *v = slim_json_member(s, i, &k, &kl);
        size_t save;
        ptr_push(c, &save, k, kl);
        const char *ptr = c->ptr;
        bool ok = true;
        int64_t cnt;
        if (in_list(IGNORED, k, kl) || (kl > 2 && k[0] == 'x' && k[1] == '-')) {
        } else if (key_is(k, kl, "type")) {
            unsigned t = 0;
            if (slim_json_type_of(v) == SLIM_JSON_STRING) {
                size_t tl;
                const char *ts = slim_json_str(v, &tl);
                t = type_bits(ts, tl);
                if (!t) ok = (serr(c, SLIM_ERR_FORMAT, "unknown type '%s'", ts, ptr), false);
            } else if (slim_json_type_of(v) == SLIM_JSON_ARRAY) {
                for (size_t q = 0; q < slim_json_len(v); q++) {
                    size_t tl;
                    const char *ts = slim_json_str(slim_json_at(v, q), &tl);
                    unsigned tb = ts ? type_bits(ts, tl) : 0;
                    if (!tb)
                        ok = (serr(c, SLIM_ERR_FORMAT, "unknown type in %s", "type", ptr), false);
                    t |= tb;
                }
            } else
                ok = (serr(c, SLIM_ERR_FORMAT, "%s must be a string or an array", "type", ptr),
                      false);
            m->types &= t;
        } else if (key_is(k, kl, "enum")) {
            if (slim_json_type_of(v) != SLIM_JSON_ARRAY)
                ok = (serr(c, SLIM_ERR_FORMAT, "%s must be an array", "enum", ptr), false);
            else if (m->n_enums >= 8)
                ok = (serr(c, SLIM_ERR_UNSUPPORTED, "too many %s", "enum", ptr), false);
            else
                m->enums[m->n_enums++] = v;
        } else if (key_is(k, kl, "const")) {
            if (m->n_consts >= 8)
                ok = (serr(c, SLIM_ERR_UNSUPPORTED, "too many %s", "const", ptr), false);
            else
                m->consts[m->n_consts++] = v;
        } else if (key_is(k, kl, "properties")) {
            if (slim_json_type_of(v) != SLIM_JSON_OBJECT)
                ok = (serr(c, SLIM_ERR_FORMAT, "%s must be an object", "properties", ptr), false);
            for (size_t q = 0; ok && q < slim_json_len(v); q++) {
                const char *pk;
                size_t pl;
                const slim_json *pv = slim_json_member(v, q, &pk, &pl);
                prop *p = find_prop(c, m, pk, pl);
                if (!p || !nl_add(&p->l, pv))
                    ok = (serr(c, SLIM_ERR_UNSUPPORTED, "too many schemas for one %s", "property",
                               ptr),
                          false);
            }
        } else if (key_is(k, kl, "required")) {
            for (size_t q = 0; q < slim_json_len(v); q++) {
                if (m->n_req >= 256 || slim_json_type_of(slim_json_at(v, q)) != SLIM_JSON_STRING) {
                    ok = (serr(c, SLIM_ERR_UNSUPPORTED, "%s: too many or not strings", "required",
                               ptr),
                          false);
                    break;
                }
                m->req[m->n_req++] = slim_json_at(v, q);
            }
        } else if (key_is(k, kl, "additionalProperties")) {
            if (slim_json_bool(v, &bv)) {
                if (!bv) m->addl_false = true;
            } else if (!nl_add(&m->addl, v))
                ok = (serr(c, SLIM_ERR_UNSUPPORTED, "too many %s", "additionalProperties", ptr),
                      false);
        } else if (key_is(k, kl, "items") || key_is(k, kl, "additionalItems")) {
            if (slim_json_type_of(v) == SLIM_JSON_ARRAY && key_is(k, kl, "items")) {
                for (size_t q = 0; ok && q < slim_json_len(v); q++) {
                    if (q >= 32)
                        ok = (serr(c, SLIM_ERR_UNSUPPORTED, "more than 32 %s", "prefix items", ptr),
                              false);
                    else {
                        if ((int)q >= m->n_prefix) m->prefix[q].n = 0, m->n_prefix = (int)q + 1;
                        nl_add(&m->prefix[q], slim_json_at(v, q));
                    }
                }
            } else if (key_is(k, kl, "additionalItems") &&
                       slim_json_type_of(slim_json_get(s, "items")) != SLIM_JSON_ARRAY) {
                /* without a tuple "items", additionalItems does nothing */
            } else if (slim_json_bool(v, &bv)) {
                if (!bv) m->items_false = true;
            } else if (!nl_add(&m->items, v))
                ok = (serr(c, SLIM_ERR_UNSUPPORTED, "too many %s", "items", ptr), false);
        } else if (key_is(k, kl, "prefixItems")) {
            for (size_t q = 0; ok && q < slim_json_len(v); q++) {
                if (q >= 32)
                    ok = (serr(c, SLIM_ERR_UNSUPPORTED, "more than 32 %s", "prefixItems", ptr),
                          false);
                else {
                    if ((int)q >= m->n_prefix) m->prefix[q].n = 0, m->n_prefix = (int)q + 1;
                    nl_add(&m->prefix[q], slim_json_at(v, q));
                }
            }
        } else if (key_is(k, kl, "minItems") || key_is(k, kl, "maxItems") ||
                   key_is(k, kl, "minLength") || key_is(k, kl, "maxLength")) {
            cnt = as_count(v);
            if (cnt < 0)
                ok = (serr(c, SLIM_ERR_FORMAT, "%s must be a non-negative integer", "count", ptr),
                      false);
            else if (k[1] == 'i' && k[3] == 'I')
                m->min_items = cnt > m->min_items ? cnt : m->min_items;
            else if (k[1] == 'a' && k[3] == 'I')
                m->max_items = m->max_items < 0 || cnt < m->max_items ? cnt : m->max_items;
            else if (k[1] == 'i')
                m->min_len = cnt > m->min_len ? cnt : m->min_len;
            else
                m->max_len = m->max_len < 0 || cnt < m->max_len ? cnt : m->max_len;
        } else if (key_is(k, kl, "minimum") || key_is(k, kl, "maximum") ||
                   key_is(k, kl, "exclusiveMinimum") || key_is(k, kl, "exclusiveMaximum")) {
            ok = merge_bound(c, m, k, kl, v, s);
        } else if (key_is(k, kl, "multipleOf")) {
            double d;
            if (!slim_json_num(v, &d) || d <= 0)
                ok = (serr(c, SLIM_ERR_FORMAT, "%s must be a positive number", "multipleOf", ptr),
                      false);
            else if (m->mult && m->mult != d)
                ok = (serr(c, SLIM_ERR_UNSUPPORTED, "two different %s", "multipleOf", ptr), false);
            else
                m->mult = d;
        } else if (key_is(k, kl, "pattern")) {
            size_t pl;
            const char *ps = slim_json_str(v, &pl);
            if (!ps)
                ok = (serr(c, SLIM_ERR_FORMAT, "%s must be a string", "pattern", ptr), false);
            else if (m->pattern && (m->pattern_len != pl || memcmp(m->pattern, ps, pl)))
                ok = (serr(c, SLIM_ERR_UNSUPPORTED, "two different %s values (intersection)",
                           "pattern", ptr),
                      false);
            else
                m->pattern = ps, m->pattern_len = pl;
        } else if (key_is(k, kl, "format")) {
            size_t fl;
            const char *fs = slim_json_str(v, &fl);
            if (!fs)
                ok = (serr(c, SLIM_ERR_FORMAT, "%s must be a string", "format", ptr), false);
            else if (in_list(OUR_FORMATS, fs, fl)) {
                if (m->format && strcmp(m->format, fs))
                    ok = (serr(c, SLIM_ERR_UNSUPPORTED, "two different formats (%s)", fs, ptr),
                          false);
                m->format = fs;
            } else if (in_list(STD_FORMATS, fs, fl)) {
                ok =
                    (serr(c, SLIM_ERR_UNSUPPORTED, "format '%s' is not supported", fs, ptr), false);
            } /* other formats are unknown to validators: annotations */
        } else if (key_is(k, kl, "allOf")) {
            ok = merge_list_kw(c, m, v, "allOf", depth);
        } else if (key_is(k, kl, "anyOf") || key_is(k, kl, "oneOf")) {
            int taken = -1;
            for (int q = 0; q < c->n_skip; q++)
                if (c->skip[q] == v) taken = q;
            if (taken >= 0) {
                ok = merge(c, m, slim_json_at(v, c->skip_alt[taken]), depth + 1);
            } else if (slim_json_type_of(v) != SLIM_JSON_ARRAY || slim_json_len(v) == 0)
                ok = (serr(c, SLIM_ERR_FORMAT, "%s must be a non-empty array", "anyOf/oneOf", ptr),
                      false);
            else if (m->n_anyof >= 16)
                ok = (serr(c, SLIM_ERR_UNSUPPORTED, "too many %s", "anyOf/oneOf", ptr), false);
            else {
                m->anyof_is_one[m->n_anyof] = k[0] == 'o';
                m->anyof[m->n_anyof++] = v;
            }
        } else if (key_is(k, kl, "not")) {
            const slim_json *t = slim_json_get(v, "type");
            size_t tl;
            const char *ts = slim_json_str(t, &tl);
            if (slim_json_bool(v, &bv)) {
                if (bv) m->none = true;
            } else if (slim_json_type_of(v) == SLIM_JSON_OBJECT && slim_json_len(v) == 0) {
                m->none = true;
            } else if (slim_json_type_of(v) == SLIM_JSON_OBJECT && slim_json_len(v) == 1 && ts &&
                       type_bits(ts, tl)) {
                m->types &= ~type_bits(ts, tl);
            } else
                ok = (serr(c, SLIM_ERR_UNSUPPORTED, "keyword '%s' (other than not:{type})", "not",
                           ptr),
                      false);
        } else if (key_is(k, kl, "$ref")) {
            size_t rl;
            const char *rs = slim_json_str(v, &rl);
            const slim_json *t = rs ? resolve(c, rs, rl) : NULL;
            if (!t)
                ok = (serr(c, SLIM_ERR_UNSUPPORTED,
                           "$ref '%s' is not a local reference that resolves", rs ? rs : "?", ptr),
                      false);
            else
                ok = merge(c, m, t, depth + 1);
        } else if (in_list(UNSUPPORTED, k, kl)) {
            bool trivial = false;
            if (key_is(k, kl, "uniqueItems") && slim_json_bool(v, &bv) && !bv) trivial = true;
            if (key_is(k, kl, "minProperties")) {
                int64_t mp = as_count(v);
                size_t nreq = 0;
                const slim_json *rq = slim_json_get(s, "required");
                nreq = slim_json_len(rq);
                if (mp >= 0 && (size_t)mp <= nreq) trivial = true;
            }
            if (key_is(k, kl, "patternProperties") && slim_json_len(v) == 0) trivial = true;
            if (key_is(k, kl, "if") && !slim_json_get(s, "then") && !slim_json_get(s, "else"))
                trivial = true;
            if (!trivial) {
                char kn[64];
                snprintf(kn, sizeof kn, "%.*s", (int)(kl > 60 ? 60 : kl), k);
                ok = (serr(c, SLIM_ERR_UNSUPPORTED, "keyword '%s' is not supported", kn, ptr),
                      false);
            }
        }
        c->ptr[save] = 0;
        if (!ok) return false;
    }
    return c->st == SLIM_OK;
}

/* ---- writing values ---------------------------------------------------------------------- */

static int32_t gen_list(sc *c, const nl *l);

/* One schema node, memoized so $ref cycles become grammar recursion. */
static int32_t gen_node(sc *c, const slim_json *s) {
    for (size_t i = 0; i < c->n_memo; i++)
        if (c->memo_node[i] == s) return slim_cgb_ref(c->b, c->memo_rule[i]);
    int32_t r = slim_cgb_rule_new(c->b, NULL, 0);
    if (r < 0 || !slim_grow((void **)&c->memo_node, &c->cap_memo, c->n_memo + 1, sizeof(void *)) ||
        !slim_grow((void **)&c->memo_rule, &c->cap_memo2, c->n_memo + 1, sizeof(int32_t))) {
        serr(c, SLIM_ERR_NOMEM, "out of memory%s", "", c->ptr);
        return -1;
    }
    c->memo_node[c->n_memo] = s;
    c->memo_rule[c->n_memo++] = r;
    nl l = {.n = 1};
    l.v[0] = s;
    int32_t e = gen_list(c, &l);
    if (e < 0) return -1;
    slim_cgb_rule_set(c->b, r, e);
    return slim_cgb_ref(c->b, r);
}

/* A value inside this one (member, item): a new instance, so the anyOf
 * choices made for this one do not apply to it. */
static int32_t gen_sub(sc *c, const nl *l) {
    if (l->n == 0) return slim_cjson_value(&c->j);
    int saved = c->n_skip;
    c->n_skip = 0;
    int32_t e = l->n == 1 ? gen_node(c, l->v[0]) : gen_list(c, l);
    c->n_skip = saved;
    return e;
}

/* The canonical compact text of a JSON value (json.dumps, separators (",", ":"),
 * ensure_ascii=False), appended to a growing buffer. */
typedef struct sbuf {
    char *p;
    size_t n, cap;
    bool oom;
} sbuf;

static void sput(sbuf *s, const char *t, size_t n) {
    if (s->oom || !slim_grow((void **)&s->p, &s->cap, s->n + n + 1, 1)) {
        s->oom = true;
        return;
    }
    memcpy(s->p + s->n, t, n);
    s->n += n;
}

static void sput_str(sbuf *s, const char *t, size_t n) {
    sput(s, "\"", 1);
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)t[i];
        char e[8];
        if (ch == '"')
            sput(s, "\\\"", 2);
        else if (ch == '\\')
            sput(s, "\\\\", 2);
        else if (ch == '\n')
            sput(s, "\\n", 2);
        else if (ch == '\r')
            sput(s, "\\r", 2);
        else if (ch == '\t')
            sput(s, "\\t", 2);
        else if (ch == '\b')
            sput(s, "\\b", 2);
        else if (ch == '\f')
            sput(s, "\\f", 2);
        else if (ch < 0x20)
            snprintf(e, sizeof e, "\\u%04x", ch), sput(s, e, 6);
        else
            sput(s, (const char *)&t[i], 1);
    }
    sput(s, "\"", 1);
}

static void sput_num(sbuf *s, const slim_json *v) {
    int64_t i;
    double d = 0;
    char t[40];
    if (slim_json_i64(v, &i) && fabs((double)i) < 1e15) {
        /* an integer in the schema; Python would print 2.0 for a float 2.0, but
         * the JSON text does not say which it was: take the integer */
        snprintf(t, sizeof t, "%lld", (long long)i);
    } else {
        slim_json_num(v, &d);
        for (int p = 1; p <= 17; p++) {
            snprintf(t, sizeof t, "%.*g", p, d);
            if (strtod(t, NULL) == d) break;
        }
        if (!strpbrk(t, ".en")) strcat(t, ".0");
    }
    sput(s, t, strlen(t));
}

static void sput_value(sbuf *s, const slim_json *v) {
    switch (slim_json_type_of(v)) {
    case SLIM_JSON_NULL: sput(s, "null", 4); break;
    case SLIM_JSON_BOOL: {
        bool b = false;
        slim_json_bool(v, &b);
        sput(s, b ? "true" : "false", b ? 4 : 5);
        break;
    }
    case SLIM_JSON_NUMBER: sput_num(s, v); break;
    case SLIM_JSON_STRING: {
        size_t n;
        const char *t = slim_json_str(v, &n);
        sput_str(s, t, n);
        break;
    }
    case SLIM_JSON_ARRAY:
        sput(s, "[", 1);
        for (size_t i = 0; i < slim_json_len(v); i++) {
            if (i) sput(s, ",", 1);
            sput_value(s, slim_json_at(v, i));
        }
        sput(s, "]", 1);
        break;
    case SLIM_JSON_OBJECT:
        sput(s, "{", 1);
        for (size_t i = 0; i < slim_json_len(v); i++) {
            const char *k;
            size_t kl;
            const slim_json *x = slim_json_member(v, i, &k, &kl);
            if (i) sput(s, ",", 1);
            sput_str(s, k, kl);
            sput(s, ":", 1);
            sput_value(s, x);
        }
        sput(s, "}", 1);
        break;
    default: break;
    }
}

static unsigned value_type(const slim_json *v) {
    switch (slim_json_type_of(v)) {
    case SLIM_JSON_NULL: return T_NULL;
    case SLIM_JSON_BOOL: return T_BOOL;
    case SLIM_JSON_NUMBER: {
        double d = 0;
        slim_json_num(v, &d);
        return d == floor(d) ? T_INT : T_FRAC;
    }
    case SLIM_JSON_STRING: return T_STR;
    case SLIM_JSON_ARRAY: return T_ARR;
    case SLIM_JSON_OBJECT: return T_OBJ;
    default: return 0;
    }
}

static size_t cp_len(const char *s, size_t n) {
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        k += ((unsigned char)s[i] & 0xC0) != 0x80;
    return k;
}

/* Does value v satisfy everything else in m?  -1: cannot tell (error). */
static int value_ok(const ms *m, const slim_json *v) {
    unsigned t = value_type(v);
    if (!(t & m->types)) return 0;
    if (t == T_STR) {
        size_t n;
        const char *s = slim_json_str(v, &n);
        size_t cl = cp_len(s, n);
        if (m->min_len >= 0 && (int64_t)cl < m->min_len) return 0;
        if (m->max_len >= 0 && (int64_t)cl > m->max_len) return 0;
        if (m->pattern || m->format) return -1;
    }
    if (t == T_INT || t == T_FRAC) {
        double d = 0;
        slim_json_num(v, &d);
        if (m->has_lo && (d < m->lo || (m->lo_ex && d == m->lo))) return 0;
        if (m->has_hi && (d > m->hi || (m->hi_ex && d == m->hi))) return 0;
        if (m->mult) {
            double q = d / m->mult;
            if (q != floor(q)) return -1;
        }
    }
    if (t == T_ARR &&
        (m->n_prefix || m->items.n || m->items_false || m->min_items >= 0 || m->max_items >= 0))
        return -1;
    if (t == T_OBJ && (m->n_props || m->n_req || m->addl.n || m->addl_false)) return -1;
    return 1;
}

static bool same_value(const slim_json *a, const slim_json *b) {
    sbuf x = {0}, y = {0};
    sput_value(&x, a);
    sput_value(&y, b);
    bool r = !x.oom && !y.oom && x.n == y.n && (x.n == 0 || memcmp(x.p, y.p, x.n) == 0);
    free(x.p);
    free(y.p);
    return r;
}

static int32_t gen_enum(sc *c, const ms *m) {
    /* the candidate values: the first enum/const, filtered by all the others */
    const slim_json *cand[1024];
    size_t nc = 0;
    if (m->n_consts)
        cand[nc++] = m->consts[0];
    else
        for (size_t i = 0; i < slim_json_len(m->enums[0]) && nc < 1024; i++)
            cand[nc++] = slim_json_at(m->enums[0], i);
    size_t base = c->b->nstk;
    for (size_t i = 0; i < nc; i++) {
        bool keep = true;
        for (int q = 0; q < m->n_consts && keep; q++)
            keep = same_value(cand[i], m->consts[q]);
        for (int q = 0; q < m->n_enums && keep; q++) {
            bool any = false;
            for (size_t k = 0; k < slim_json_len(m->enums[q]) && !any; k++)
                any = same_value(cand[i], slim_json_at(m->enums[q], k));
            keep = any;
        }
        for (size_t k = 0; k < i && keep; k++) /* duplicates */
            keep = !same_value(cand[i], cand[k]);
        if (!keep) continue;
        int ok = value_ok(m, cand[i]);
        if (ok < 0) {
            serr(c, SLIM_ERR_UNSUPPORTED, "enum/const together with %s",
                 "keywords it cannot check (pattern, format, multipleOf, array/object keywords)",
                 c->ptr);
            return -1;
        }
        if (!ok) continue;
        sbuf s = {0};
        sput_value(&s, cand[i]);
        if (s.oom) return serr(c, SLIM_ERR_NOMEM, "out of memory%s", "", c->ptr), -1;
        slim_cgb_push(c->b, slim_cgb_lit(c->b, s.p, s.n));
        free(s.p);
    }
    return slim_cgb_alt(c->b, base);
}

/* ---- numbers ----------------------------------------------------------------------------- */

/* Decimal strings of n digits between lo and hi (digit strings, same length). */
static int32_t digits_range(slim_cgb *b, const char *lo, const char *hi, int n) {
    if (n == 0) return slim_cgb_empty(b);
    int32_t any = slim_cgb_range(b, '0', '9');
    bool lo0 = true, hi9 = true;
    for (int i = 1; i < n; i++)
        lo0 &= lo[i] == '0', hi9 &= hi[i] == '9';
    if (lo0 && hi9)
        return slim_cgb_seq2(b, slim_cgb_range(b, (uint8_t)lo[0], (uint8_t)hi[0]),
                             slim_cgb_rep(b, any, n - 1, n - 1));
    if (lo[0] == hi[0])
        return slim_cgb_seq2(b, slim_cgb_range(b, (uint8_t)lo[0], (uint8_t)lo[0]),
                             digits_range(b, lo + 1, hi + 1, n - 1));
    char nines[24], zeros[24];
    memset(nines, '9', sizeof nines);
    memset(zeros, '0', sizeof zeros);
    size_t base = b->nstk;
    slim_cgb_push(b, slim_cgb_seq2(b, slim_cgb_range(b, (uint8_t)lo[0], (uint8_t)lo[0]),
                                   digits_range(b, lo + 1, nines, n - 1)));
    if (hi[0] - lo[0] >= 2)
        slim_cgb_push(
            b, slim_cgb_seq2(b, slim_cgb_range(b, (uint8_t)(lo[0] + 1), (uint8_t)(hi[0] - 1)),
                             slim_cgb_rep(b, any, n - 1, n - 1)));
    slim_cgb_push(b, slim_cgb_seq2(b, slim_cgb_range(b, (uint8_t)hi[0], (uint8_t)hi[0]),
                                   digits_range(b, zeros, hi + 1, n - 1)));
    return slim_cgb_alt(b, base);
}

/* Unsigned decimal integers (no leading zeros) in [a, b]; b < 0: unbounded. */
static int32_t uint_range(slim_cgb *b, int64_t a, int64_t hi) {
    if (hi >= 0 && a > hi) return slim_cgb_none(b);
    char as[24], hs[24];
    int la = snprintf(as, sizeof as, "%lld", (long long)a);
    int lh = hi >= 0 ? snprintf(hs, sizeof hs, "%lld", (long long)hi) : 19;
    size_t base = b->nstk;
    for (int d = la; d <= lh; d++) {
        char lo_d[24], hi_d[24];
        if (d == la)
            memcpy(lo_d, as, (size_t)d);
        else
            lo_d[0] = '1', memset(lo_d + 1, '0', (size_t)d - 1);
        if (hi >= 0 && d == lh)
            memcpy(hi_d, hs, (size_t)d);
        else
            memset(hi_d, '9', (size_t)d);
        if (d == 1 && lo_d[0] == '0' && hi_d[0] >= '0') {
            slim_cgb_push(b, slim_cgb_range(b, '0', (uint8_t)hi_d[0]));
            continue;
        }
        slim_cgb_push(b, digits_range(b, lo_d, hi_d, d));
    }
    if (hi < 0) /* 20 digits and more */
        slim_cgb_push(
            b, slim_cgb_seq2(b, slim_cgb_range(b, '1', '9'),
                             slim_cgb_rep(b, slim_cgb_range(b, '0', '9'), 19, SLIM_CREP_INF)));
    return slim_cgb_alt(b, base);
}

#define UNB INT64_MIN
/* Integers in [lo, hi] (UNB: unbounded). */
static int32_t int_range(slim_cgb *b, int64_t lo, int64_t hi) {
    size_t base = b->nstk;
    if (hi == UNB || hi >= 0)
        slim_cgb_push(b, uint_range(b, lo == UNB || lo < 0 ? 0 : lo, hi == UNB ? -1 : hi));
    if (lo == UNB || lo < 0) {
        int64_t mlo = hi == UNB || hi >= 0 ? 1 : -hi, mhi = lo == UNB ? -1 : -lo;
        slim_cgb_push(b, slim_cgb_seq2(b, slim_cgb_lit(b, "-", 1), uint_range(b, mlo, mhi)));
    }
    return slim_cgb_alt(b, base);
}

/* Integer multiples of k (no bounds): remainders as rules. */
static int32_t int_multiple(sc *c, int64_t k) {
    slim_cgb *b = c->b;
    int32_t r0 = slim_cgb_rule_new(b, NULL, 0);
    for (int64_t r = 1; r < k; r++)
        slim_cgb_rule_new(b, NULL, 0);
    for (int64_t r = 0; r < k; r++) {
        size_t base = b->nstk;
        for (int d = 0; d < 10; d++)
            slim_cgb_push(
                b, slim_cgb_seq2(b, slim_cgb_range(b, (uint8_t)('0' + d), (uint8_t)('0' + d)),
                                 slim_cgb_ref(b, r0 + (int32_t)((10 * r + d) % k))));
        if (r == 0) slim_cgb_push(b, slim_cgb_empty(b));
        slim_cgb_rule_set(b, r0 + (int32_t)r, slim_cgb_alt(b, base));
    }
    size_t base = b->nstk;
    for (int d = 1; d < 10; d++)
        slim_cgb_push(b, slim_cgb_seq2(b, slim_cgb_range(b, (uint8_t)('0' + d), (uint8_t)('0' + d)),
                                       slim_cgb_ref(b, r0 + (int32_t)(d % k))));
    int32_t pos = slim_cgb_alt(b, base);
    return slim_cgb_alt2(b, slim_cgb_lit(b, "0", 1),
                         slim_cgb_seq2(b, slim_cgb_rep(b, slim_cgb_lit(b, "-", 1), 0, 1), pos));
}

static bool to_i64(double d, int64_t *out) {
    if (!(fabs(d) < 9e18)) return false;
    *out = (int64_t)d;
    return true;
}

static int32_t gen_numbers(sc *c, const ms *m) {
    slim_cgb *b = c->b;
    bool frac = m->types & T_FRAC;
    if (m->mult) {
        int64_t k;
        if (m->mult != floor(m->mult) || !to_i64(m->mult, &k) || k > 1000)
            return serr(c, SLIM_ERR_UNSUPPORTED, "multipleOf %s",
                        "that is not an integer up to 1000", c->ptr),
                   -1;
        if (m->has_lo || m->has_hi)
            return serr(c, SLIM_ERR_UNSUPPORTED, "multipleOf with %s", "minimum/maximum", c->ptr),
                   -1;
        return k == 1 ? c->j.integer : int_multiple(c, k); /* only whole numbers: integers */
    }
    if (!m->has_lo && !m->has_hi) return frac ? c->j.number : c->j.integer;
    /* integer bounds */
    int64_t lo = UNB, hi = UNB;
    if (m->has_lo) {
        double d = m->lo_ex ? floor(m->lo) + 1 : ceil(m->lo);
        if (frac && m->lo != floor(m->lo))
            return serr(c, SLIM_ERR_UNSUPPORTED, "%s that is not an integer on a number", "minimum",
                        c->ptr),
                   -1;
        if (!to_i64(d, &lo))
            return serr(c, SLIM_ERR_UNSUPPORTED, "%s beyond 9e18", "minimum", c->ptr), -1;
    }
    if (m->has_hi) {
        double d = m->hi_ex ? ceil(m->hi) - 1 : floor(m->hi);
        if (frac && m->hi != floor(m->hi))
            return serr(c, SLIM_ERR_UNSUPPORTED, "%s that is not an integer on a number", "maximum",
                        c->ptr),
                   -1;
        if (!to_i64(d, &hi))
            return serr(c, SLIM_ERR_UNSUPPORTED, "%s beyond 9e18", "maximum", c->ptr), -1;
    }
    if (lo != UNB && hi != UNB && lo > hi && !frac) return slim_cgb_none(b);
    int32_t ints = lo != UNB && hi != UNB && lo > hi ? slim_cgb_none(b) : int_range(b, lo, hi);
    if (!frac) return ints;
    /* non-integers I.F (F not all zeros): positive ones lie in (I, I+1), so
     * lo <= x <= hi for integer bounds iff lo <= I <= hi - 1, exclusive or not;
     * negative -(I.F) iff -hi <= I <= -lo - 1.  Whole numbers may be written
     * with ".0"s.  No exponents (a subset: never an invalid value). */
    int64_t blo = m->has_lo ? (int64_t)m->lo : UNB, bhi = m->has_hi ? (int64_t)m->hi : UNB;
    int32_t fracpart = slim_cgb_seq2(
        b, slim_cgb_lit(b, ".", 1),
        slim_cgb_seq2(b, slim_cgb_rep(b, slim_cgb_range(b, '0', '9'), 0, SLIM_CREP_INF),
                      slim_cgb_range(b, '1', '9')));
    size_t base = b->nstk;
    slim_cgb_push(b,
                  slim_cgb_seq2(b, ints,
                                slim_cgb_rep(b,
                                             slim_cgb_seq2(b, slim_cgb_lit(b, ".", 1),
                                                           slim_cgb_rep(b, slim_cgb_lit(b, "0", 1),
                                                                        1, SLIM_CREP_INF)),
                                             0, 1)));
    int64_t plo = blo == UNB || blo < 0 ? 0 : blo, phi = bhi == UNB ? -1 : bhi - 1;
    if (bhi == UNB || phi >= plo)
        slim_cgb_push(b, slim_cgb_seq2(b, uint_range(b, plo, phi), fracpart));
    int64_t nlo = bhi == UNB || bhi > 0 ? 0 : -bhi, nhi = blo == UNB ? -1 : -blo - 1;
    if (blo == UNB || nhi >= nlo)
        slim_cgb_push(b, slim_cgb_seq2(b, slim_cgb_lit(b, "-", 1),
                                       slim_cgb_seq2(b, uint_range(b, nlo, nhi), fracpart)));
    return slim_cgb_alt(b, base);
}

/* ---- strings ----------------------------------------------------------------------------- */

static int32_t re(sc *c, const char *s) {
    int32_t e = -1;
    if (slim_regex_build_any(c->b, s, strlen(s), true, false, c->j.chr, &e) != SLIM_OK) {
        c->st = SLIM_ERR_INTERNAL;
        return -1;
    }
    return e;
}

static int32_t gen_format(sc *c, const char *f) {
    static const char date[] = "([1-9][0-9]{3}|0[1-9][0-9]{2}|00[1-9][0-9]|000[1-9])-((0[13578]|1["
                               "02])-(0[1-9]|[12][0-9]|3[01])|"
                               "(0[469]|11)-(0[1-9]|[12][0-9]|30)|02-(0[1-9]|1[0-9]|2[0-8]))";
    static const char time[] =
        "([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\\.[0-9]+)?(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9])";
    char buf[512];
    if (!strcmp(f, "date")) return re(c, date);
    if (!strcmp(f, "time")) return re(c, time);
    if (!strcmp(f, "date-time")) {
        snprintf(buf, sizeof buf, "%sT%s", date, time);
        return re(c, buf);
    }
    if (!strcmp(f, "uuid"))
        return re(c, "[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}");
    if (!strcmp(f, "email"))
        return re(
            c,
            "[A-Za-z0-9!#$%&'*+=?^_`{|}~-]+(\\.[A-Za-z0-9!#$%&'*+=?^_`{|}~-]+)*@"
            "[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)+");
    if (!strcmp(f, "ipv4"))
        return re(c, "((25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])\\.){3}(25[0-5]|2[0-4][0-9]|1["
                     "0-9][0-9]|[1-9]?[0-9])");
    if (!strcmp(f, "uri"))
        return re(c,
                  "[A-Za-z][A-Za-z0-9+.-]*://[A-Za-z0-9._~-]+(:[0-9]+)?(/"
                  "([A-Za-z0-9._~!$&'()*+,;=:@-]|%[0-9A-Fa-f]{2})*)*"
                  "(\\?([A-Za-z0-9._~!$&'()*+,;=:@/"
                  "?-]|%[0-9A-Fa-f]{2})*)?(#([A-Za-z0-9._~!$&'()*+,;=:@/?-]|%[0-9A-Fa-f]{2})*)?");
    return serr(c, SLIM_ERR_UNSUPPORTED, "format '%s'", f, c->ptr), -1;
}

static int32_t gen_string(sc *c, const ms *m) {
    slim_cgb *b = c->b;
    int32_t q = slim_cgb_lit(b, "\"", 1);
    bool lens = m->min_len > 0 || m->max_len >= 0;
    int32_t body;
    if (m->pattern || m->format) {
        if (lens)
            return serr(c, SLIM_ERR_UNSUPPORTED, "%s with minLength/maxLength",
                        m->pattern ? "pattern" : "format", c->ptr),
                   -1;
        if (m->pattern && m->format)
            return serr(c, SLIM_ERR_UNSUPPORTED, "%s together", "pattern and format", c->ptr), -1;
        if (m->format)
            body = gen_format(c, m->format);
        else {
            slim_status st =
                slim_regex_build_any(b, m->pattern, m->pattern_len, true, true, c->j.chr, &body);
            if (st != SLIM_OK) {
                char msg[200];
                snprintf(msg, sizeof msg, "pattern: %s", slim_last_error());
                return serr(c, st, "%s", msg, c->ptr), -1;
            }
        }
    } else {
        body = slim_cgb_rep(b, c->j.chr, m->min_len > 0 ? (int32_t)m->min_len : 0,
                            m->max_len >= 0 ? (int32_t)m->max_len : SLIM_CREP_INF);
    }
    if (body < 0) return -1;
    size_t base = b->nstk;
    slim_cgb_push(b, q);
    slim_cgb_push(b, body);
    slim_cgb_push(b, q);
    return slim_cgb_seq(b, base);
}

/* ---- arrays ------------------------------------------------------------------------------ */

static int32_t gen_array(sc *c, const ms *m) {
    slim_cgb *b = c->b;
    int32_t ws = c->j.ws, comma = slim_cgb_seq2(b, slim_cgb_lit(b, ",", 1), ws);
    int64_t mn = m->min_items < 0 ? 0 : m->min_items, mx = m->max_items;
    int np = m->n_prefix;
    if (mx >= 0 && mn > mx) return slim_cgb_none(b);
    /* tail item and its count */
    int32_t item = -1;
    int64_t tmin = mn > np ? mn - np : 0, tmax = mx < 0 ? SLIM_CREP_INF : mx - np;
    if (m->items_false) tmax = 0;
    if (tmax < 0) tmax = 0;
    if (tmin > tmax) tmin = tmax + 1; /* impossible */
    if (tmax > 0 && tmin <= tmax) item = gen_sub(c, &m->items);
    if (c->st != SLIM_OK) return -1;
    if (tmax > INT32_MAX - 1) tmax = SLIM_CREP_INF;
    /* after >= 1 element: ("," item){tmin,tmax}; before any: item ("," item){..} */
    int32_t after, fresh;
    if (tmin > tmax)
        after = fresh = slim_cgb_none(b);
    else if (tmax == 0)
        after = fresh = slim_cgb_empty(b);
    else {
        int32_t more = slim_cgb_seq2(b, slim_cgb_seq2(b, ws, comma), item);
        after = slim_cgb_rep(b, more, (int32_t)tmin, (int32_t)tmax);
        int32_t hmax = tmax == SLIM_CREP_INF ? SLIM_CREP_INF : (int32_t)tmax - 1;
        int32_t first =
            slim_cgb_seq2(b, item, slim_cgb_rep(b, more, tmin > 0 ? (int32_t)tmin - 1 : 0, hmax));
        fresh = tmin > 0 ? first : slim_cgb_rep(b, first, 0, 1);
    }
    /* prefix items from the last: stopping before item i is allowed iff i >= minItems */
    for (int i = np - 1; i >= 0; i--) {
        if (mx >= 0 && i >= mx) { /* beyond maxItems */
            after = fresh = (i >= mn ? slim_cgb_empty(b) : slim_cgb_none(b));
            continue;
        }
        int32_t e = gen_sub(c, &m->prefix[i]);
        if (e < 0) return -1;
        int32_t stop = i >= mn ? slim_cgb_empty(b) : slim_cgb_none(b);
        int32_t na = slim_cgb_alt2(
            b, slim_cgb_seq2(b, slim_cgb_seq2(b, ws, comma), slim_cgb_seq2(b, e, after)), stop);
        int32_t nf = slim_cgb_alt2(b, slim_cgb_seq2(b, e, after), stop);
        after = na, fresh = nf;
    }
    size_t base = b->nstk;
    slim_cgb_push(b, slim_cgb_lit(b, "[", 1));
    slim_cgb_push(b, ws);
    slim_cgb_push(b, fresh);
    slim_cgb_push(b, ws);
    slim_cgb_push(b, slim_cgb_lit(b, "]", 1));
    return slim_cgb_seq(b, base);
}

/* ---- objects ----------------------------------------------------------------------------- */

static size_t decode_cps(const char *s, size_t n, uint32_t *out) {
    size_t k = 0;
    for (size_t i = 0; i < n;) {
        unsigned char ch = (unsigned char)s[i];
        int len = ch < 0x80 ? 1 : (ch >> 5) == 6 ? 2 : (ch >> 4) == 14 ? 3 : 4;
        uint32_t v = len == 1 ? ch : len == 2 ? ch & 31 : len == 3 ? ch & 15 : ch & 7;
        for (int q = 1; q < len && i + (size_t)q < n; q++)
            v = v << 6 | ((unsigned char)s[i + (size_t)q] & 63);
        out[k++] = v;
        i += (size_t)len;
    }
    return k;
}

static int cmp_u32s(const void *a, const void *b) {
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

/* The rest of a key after the prefix shared by names ids[0..cnt) up to depth. */
static int32_t trie_node(sc *c, uint32_t **cps, const size_t *lens, const size_t *ids, size_t cnt,
                         size_t depth, int32_t rest) {
    slim_cgb *b = c->b;
    if (c->depth > MAX_DEPTH * 8)
        return serr(c, SLIM_ERR_UNSUPPORTED, "property name %s", "too long", c->ptr), -1;
    bool terminal = false;
    uint32_t *ch = malloc((cnt + 1) * 2 * sizeof(uint32_t));
    size_t *sub = malloc((cnt + 1) * sizeof(size_t));
    if (!ch || !sub)
        return free(ch), free(sub), serr(c, SLIM_ERR_NOMEM, "out of memory%s", "", c->ptr), -1;
    size_t nch = 0;
    for (size_t i = 0; i < cnt; i++) {
        if (lens[ids[i]] == depth)
            terminal = true;
        else
            ch[nch++] = cps[ids[i]][depth];
    }
    qsort(ch, nch, sizeof(uint32_t), cmp_u32s);
    size_t u = 0;
    for (size_t i = 0; i < nch; i++)
        if (!u || ch[u - 1] != ch[i]) ch[u++] = ch[i];
    nch = u;
    size_t base = b->nstk;
    if (!terminal) slim_cgb_push(b, slim_cgb_lit(b, "\"", 1));
    /* a first character that no name continues with: raw characters minus children */
    uint32_t *r = malloc((nch + 4) * 2 * sizeof(uint32_t));
    if (!r) return free(ch), free(sub), serr(c, SLIM_ERR_NOMEM, "out of memory%s", "", c->ptr), -1;
    size_t nr = 0;
    r[nr * 2] = 0, r[nr * 2 + 1] = 0x1F, nr++;
    r[nr * 2] = '"', r[nr * 2 + 1] = '"', nr++;
    r[nr * 2] = '\\', r[nr * 2 + 1] = '\\', nr++;
    for (size_t i = 0; i < nch; i++)
        r[nr * 2] = ch[i], r[nr * 2 + 1] = ch[i], nr++;
    nr = slim_cranges_norm(r, nr, true);
    if (nr) slim_cgb_push(b, slim_cgb_seq2(b, slim_cgb_cps(b, r, nr), rest));
    free(r);
    c->depth++;
    for (size_t k = 0; k < nch && c->st == SLIM_OK; k++) {
        size_t ns = 0;
        for (size_t i = 0; i < cnt; i++)
            if (lens[ids[i]] > depth && cps[ids[i]][depth] == ch[k]) sub[ns++] = ids[i];
        uint32_t one[2] = {ch[k], ch[k]};
        int32_t next = trie_node(c, cps, lens, sub, ns, depth + 1, rest);
        if (next < 0) break;
        slim_cgb_push(b, slim_cgb_seq2(b, slim_cgb_cps(b, one, 1), next));
    }
    c->depth--;
    free(ch);
    free(sub);
    if (c->st != SLIM_OK) {
        b->nstk = base;
        return -1;
    }
    return slim_cgb_alt(b, base);
}

/* A key (with quotes) that is none of the names: a trie over their code
 * points; raw characters only (no escapes: a subset of the spellings). */
static int32_t key_not_in(sc *c, const ms *m) {
    slim_cgb *b = c->b;
    size_t n = m->n_props;
    uint32_t **cp = calloc(n + 1, sizeof *cp);
    size_t *cl = calloc(n + 1, sizeof *cl);
    size_t *idx = malloc((n + 1) * sizeof *idx);
    int32_t e = -1;
    bool ok = cp && cl && idx;
    for (size_t i = 0; ok && i < n; i++) {
        cp[i] = malloc((m->props[i].len + 1) * sizeof(uint32_t));
        ok = cp[i] != NULL;
        if (ok) cl[i] = decode_cps(m->props[i].name, m->props[i].len, cp[i]);
        idx[i] = i;
    }
    if (ok) {
        uint32_t raw[] = {0x20, 0x21, 0x23, 0x5B, 0x5D, 0x10FFFF};
        int32_t rest = slim_cgb_seq2(b, slim_cgb_rep(b, slim_cgb_cps(b, raw, 3), 0, SLIM_CREP_INF),
                                     slim_cgb_lit(b, "\"", 1));
        e = trie_node(c, cp, cl, idx, n, 0, rest);
    } else {
        serr(c, SLIM_ERR_NOMEM, "out of memory%s", "", c->ptr);
    }
    for (size_t i = 0; cp && i < n; i++)
        free(cp[i]);
    free(cp);
    free(cl);
    free(idx);
    if (e < 0) return -1;
    return slim_cgb_seq2(b, slim_cgb_lit(b, "\"", 1), e);
}

static int32_t gen_object(sc *c, ms *m) {
    slim_cgb *b = c->b;
    int32_t ws = c->j.ws,
            colon = slim_cgb_seq2(b, slim_cgb_seq2(b, ws, slim_cgb_lit(b, ":", 1)), ws);
    int32_t sep = slim_cgb_seq2(b, slim_cgb_seq2(b, ws, slim_cgb_lit(b, ",", 1)), ws);
    /* required names not among the properties become properties of the
     * additionalProperties schema */
    for (size_t i = 0; i < m->n_req; i++) {
        size_t rl;
        const char *rn = slim_json_str(m->req[i], &rl);
        size_t before = m->n_props;
        prop *p = find_prop(c, m, rn, rl);
        if (!p) return -1;
        if (m->n_props > before) {
            if (m->addl_false) return slim_cgb_none(b);
            p->l = m->addl;
        }
        p->required = true;
    }
    /* extra members */
    int32_t extra = -1;
    if (!m->addl_false) {
        int32_t k = key_not_in(c, m);
        if (k < 0) return -1;
        int32_t v = gen_sub(c, &m->addl);
        if (v < 0) return -1;
        extra = slim_cgb_seq2(b, k, slim_cgb_seq2(b, colon, v));
    }
    /* A: the rest after >= 1 member; F: the rest with none yet */
    int32_t A, F;
    if (extra >= 0) {
        int32_t more = slim_cgb_rep(b, slim_cgb_seq2(b, sep, extra), 0, SLIM_CREP_INF);
        A = more;
        F = slim_cgb_rep(b, slim_cgb_seq2(b, extra, more), 0, 1);
    } else {
        A = F = slim_cgb_empty(b);
    }
    for (size_t i = m->n_props; i-- > 0;) {
        prop *p = &m->props[i];
        sbuf s = {0};
        sput_str(&s, p->name, p->len);
        if (s.oom) return serr(c, SLIM_ERR_NOMEM, "out of memory%s", "", c->ptr), -1;
        int32_t key = slim_cgb_lit(b, s.p, s.n);
        free(s.p);
        size_t save;
        ptr_push(c, &save, "properties/", 11);
        size_t l2 = strlen(c->ptr);
        snprintf(c->ptr + l2, sizeof c->ptr - l2, "%.*s", (int)(p->len > 100 ? 100 : p->len),
                 p->name);
        int32_t v = gen_sub(c, &p->l);
        c->ptr[save] = 0;
        if (v < 0) return -1;
        int32_t member = slim_cgb_seq2(b, key, slim_cgb_seq2(b, colon, v));
        /* rules keep the chain linear in the number of properties */
        int32_t ra = slim_cgb_rule_new(b, NULL, 0), rf = slim_cgb_rule_new(b, NULL, 0);
        int32_t withA = slim_cgb_seq2(b, slim_cgb_seq2(b, sep, member), A);
        int32_t withF = slim_cgb_seq2(b, member, A);
        slim_cgb_rule_set(b, ra, p->required ? withA : slim_cgb_alt2(b, withA, A));
        slim_cgb_rule_set(b, rf, p->required ? withF : slim_cgb_alt2(b, withF, F));
        A = slim_cgb_ref(b, ra);
        F = slim_cgb_ref(b, rf);
    }
    size_t base = b->nstk;
    slim_cgb_push(b, slim_cgb_lit(b, "{", 1));
    slim_cgb_push(b, ws);
    slim_cgb_push(b, F);
    slim_cgb_push(b, ws);
    slim_cgb_push(b, slim_cgb_lit(b, "}", 1));
    return slim_cgb_seq(b, base);
}

/* ---- types and oneOf ------------------------------------------------------------------- */

static int32_t gen_types(sc *c, ms *m) {
    slim_cgb *b = c->b;
    if (m->n_enums || m->n_consts) return gen_enum(c, m);
    size_t base = b->nstk;
    if (m->types & T_NULL) slim_cgb_push(b, c->j.null);
    if (m->types & T_BOOL) slim_cgb_push(b, c->j.boolean);
    if (m->types & (T_INT | T_FRAC)) slim_cgb_push(b, gen_numbers(c, m));
    if ((m->types & T_STR) && c->st == SLIM_OK) slim_cgb_push(b, gen_string(c, m));
    if ((m->types & T_ARR) && c->st == SLIM_OK) slim_cgb_push(b, gen_array(c, m));
    if ((m->types & T_OBJ) && c->st == SLIM_OK) slim_cgb_push(b, gen_object(c, m));
    if (c->st != SLIM_OK) {
        b->nstk = base;
        return -1;
    }
    return slim_cgb_alt(b, base);
}

/* The values of a required property fixed by const/enum: a discriminator. */
static bool disc_values(sc *c, const ms *m, const char *name, size_t len, const slim_json **vals,
                        size_t *nv) {
    bool req = false;
    for (size_t i = 0; i < m->n_req; i++) {
        size_t rl;
        const char *rn = slim_json_str(m->req[i], &rl);
        if (rl == len && memcmp(rn, name, len) == 0) req = true;
    }
    if (!req) return false;
    for (size_t i = 0; i < m->n_props; i++) {
        const prop *p = &m->props[i];
        if (p->len != len || memcmp(p->name, name, len)) continue;
        ms pm;
        memset(&pm, 0, sizeof pm);
        pm.types = T_ALL;
        pm.min_len = pm.max_len = pm.min_items = pm.max_items = -1;
        bool ok = true;
        for (int k = 0; k < p->l.n && ok; k++)
            ok = merge(c, &pm, p->l.v[k], 0);
        free(pm.props);
        if (!ok) return false;
        *nv = 0;
        if (pm.n_consts)
            vals[(*nv)++] = pm.consts[0];
        else if (pm.n_enums)
            for (size_t k = 0; k < slim_json_len(pm.enums[0]) && *nv < 64; k++)
                vals[(*nv)++] = slim_json_at(pm.enums[0], k);
        else
            return false;
        return true;
    }
    return false;
}

static bool oneof_disjoint(sc *c, const nl *l, const slim_json *arr) {
    size_t na = slim_json_len(arr);
    if (na > 64) return false;
    ms *ms_ = calloc(na, sizeof(ms));
    if (!ms_) return false;
    bool ok = true;
    for (size_t i = 0; i < na && ok; i++) {
        ms *m = &ms_[i];
        m->types = T_ALL;
        m->min_len = m->max_len = m->min_items = m->max_items = -1;
        c->skip_alt[c->n_skip - 1] = i;
        for (int k = 0; k < l->n && ok; k++)
            ok = merge(c, m, l->v[k], 0);
        if (m->none) m->types = 0;
        if (ok && m->n_anyof > 0) ok = false; /* nested combinators: cannot tell */
    }
    for (size_t i = 0; i < na && ok; i++)
        for (size_t k = i + 1; k < na && ok; k++) {
            unsigned common = ms_[i].types & ms_[k].types;
            if (!common) continue;
            /* integers are numbers too; an exact-type split needs no more */
            bool dis = false;
            if (common == T_OBJ) { /* a discriminator property with disjoint values */
                for (size_t p = 0; p < ms_[i].n_props && !dis; p++) {
                    const slim_json *va[64], *vb[64];
                    size_t na_ = 0, nb_ = 0;
                    const prop *pp = &ms_[i].props[p];
                    if (!disc_values(c, &ms_[i], pp->name, pp->len, va, &na_) ||
                        !disc_values(c, &ms_[k], pp->name, pp->len, vb, &nb_))
                        continue;
                    bool overlap = false;
                    for (size_t x = 0; x < na_ && !overlap; x++)
                        for (size_t y = 0; y < nb_ && !overlap; y++)
                            overlap = same_value(va[x], vb[y]);
                    dis = !overlap;
                }
            }
            if (!dis && (ms_[i].n_enums || ms_[i].n_consts) &&
                (ms_[k].n_enums || ms_[k].n_consts) && !ms_[i].n_enums + !ms_[k].n_enums == 2) {
                /* two consts */
                dis = !same_value(ms_[i].consts[0], ms_[k].consts[0]);
            }
            if (!dis) ok = false;
        }
    for (size_t i = 0; i < na; i++)
        free(ms_[i].props);
    free(ms_);
    if (c->st != SLIM_OK) return false;
    return ok;
}

/* Distribute the first anyOf/oneOf over the context, or write the merged form. */
static int32_t gen_list(sc *c, const nl *l) {
    if (c->st != SLIM_OK) return -1;
    if (++c->work > MAX_WORK || c->depth > MAX_DEPTH * 4)
        return serr(c, SLIM_ERR_UNSUPPORTED, "schema too large or recursive %s", "to compile",
                    c->ptr),
               -1;
    ms m;
    memset(&m, 0, sizeof m);
    m.types = T_ALL;
    m.min_len = m.max_len = m.min_items = m.max_items = -1;
    for (int i = 0; i < l->n; i++)
        if (!merge(c, &m, l->v[i], 0)) {
            free(m.props);
            return -1;
        }
    int32_t e;
    c->depth++;
    if (m.none || !m.types) {
        e = slim_cgb_none(c->b);
    } else if (m.n_anyof) {
        const slim_json *arr = m.anyof[0];
        bool one = m.anyof_is_one[0];
        if (c->n_skip >= 64) {
            free(m.props);
            c->depth--;
            return serr(c, SLIM_ERR_UNSUPPORTED, "too many nested %s", "anyOf/oneOf", c->ptr), -1;
        }
        c->skip[c->n_skip] = arr;
        c->skip_alt[c->n_skip++] = 0;
        size_t na = slim_json_len(arr);
        if (one && !oneof_disjoint(c, l, arr)) {
            e = -1;
            serr(c, SLIM_ERR_UNSUPPORTED,
                 "%s alternatives that may overlap (compiling them as anyOf could accept a value "
                 "matching two)",
                 "oneOf", c->ptr);
        } else {
            size_t base = c->b->nstk;
            e = 0;
            for (size_t i = 0; i < na && e >= 0; i++) {
                c->skip_alt[c->n_skip - 1] = i;
                e = gen_list(c, l);
                slim_cgb_push(c->b, e);
            }
            if (e >= 0)
                e = slim_cgb_alt(c->b, base);
            else
                c->b->nstk = base;
        }
        c->n_skip--;
    } else {
        e = gen_types(c, &m);
    }
    c->depth--;
    free(m.props);
    return c->st == SLIM_OK ? e : -1;
}

slim_status slim_schema_build(slim_cgb *b, const char *text, size_t len,
                              const slim_constraint_opts *opts, int32_t *root) {
    slim_json_doc *doc = NULL;
    slim_status st = slim_json_parse(text, len, "json schema", &doc);
    if (st != SLIM_OK) return st;
    sc c = {.b = b, .st = SLIM_OK};
    c.root = slim_json_root(doc);
    slim_cjson_init(b, &c.j, opts && opts->json_whitespace);
    int32_t e = gen_node(&c, c.root);
    if (c.st == SLIM_OK && (e < 0 || b->oom))
        c.st = slim_error(SLIM_ERR_NOMEM, "json schema: out of memory");
    if (c.st == SLIM_OK) {
        *root = slim_cgb_rule_new(b, "root", 4);
        slim_cgb_rule_set(b, *root, slim_cgb_seq2(b, e, c.j.ws));
    }
    free(c.memo_node);
    free(c.memo_rule);
    slim_json_free(doc);
    return c.st;
}
