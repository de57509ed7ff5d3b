/* The grammar builder and its lowering to the compiled form (grammar.h). */
#include "constrain/grammar.h"

#include <stdlib.h>
#include <string.h>

#include "core/grow.h"

void slim_cgb_init(slim_cgb *b) { memset(b, 0, sizeof *b); }

void slim_cgb_free(slim_cgb *b) {
    for (size_t i = 0; i < b->nr; i++)
        free(b->rule_name[i]);
    free(b->x);
    free(b->kids);
    free(b->sets);
    free(b->rule_expr);
    free(b->rule_name);
    free(b->stk);
    memset(b, 0, sizeof *b);
}

static int32_t node(slim_cgb *b, uint8_t t, int32_t a, int32_t n, int32_t min, int32_t max) {
    if (b->oom || b->nx >= INT32_MAX / 2 ||
        !slim_grow((void **)&b->x, &b->capx, b->nx + 1, sizeof *b->x)) {
        b->oom = true;
        return -1;
    }
    b->x[b->nx] = (slim_cx){t, a, n, min, max};
    return (int32_t)b->nx++;
}

int32_t slim_cgb_empty(slim_cgb *b) { return node(b, SLIM_CX_EMPTY, 0, 0, 0, 0); }
int32_t slim_cgb_none(slim_cgb *b) { return node(b, SLIM_CX_NONE, 0, 0, 0, 0); }

int32_t slim_cgb_set(slim_cgb *b, const uint64_t set[4]) {
    if (!(set[0] | set[1] | set[2] | set[3])) return slim_cgb_none(b);
    if (b->oom || !slim_grow((void **)&b->sets, &b->caps, b->ns + 1, sizeof *b->sets)) {
        b->oom = true;
        return -1;
    }
    memcpy(b->sets[b->ns], set, sizeof b->sets[0]);
    return node(b, SLIM_CX_BYTES, (int32_t)b->ns++, 0, 0, 0);
}

int32_t slim_cgb_range(slim_cgb *b, uint8_t lo, uint8_t hi) {
    uint64_t s[4] = {0};
    for (unsigned c = lo; c <= hi; c++)
        s[c >> 6] |= 1ull << (c & 63);
    return slim_cgb_set(b, s);
}

void slim_cgb_push(slim_cgb *b, int32_t expr) {
    if (expr < 0) b->oom = true;
    if (b->oom || !slim_grow((void **)&b->stk, &b->capstk, b->nstk + 1, sizeof *b->stk)) {
        b->oom = true;
        return;
    }
    b->stk[b->nstk++] = expr;
}

static int32_t list(slim_cgb *b, size_t base, uint8_t t) {
    if (b->oom || base > b->nstk) {
        b->oom = true;
        return -1;
    }
    size_t n = b->nstk - base;
    if (n == 1) {
        b->nstk = base;
        return b->stk[base];
    }
    if (n == 0) return t == SLIM_CX_SEQ ? slim_cgb_empty(b) : slim_cgb_none(b);
    if (!slim_grow((void **)&b->kids, &b->capk, b->nk + n, sizeof *b->kids)) {
        b->oom = true;
        return -1;
    }
    memcpy(b->kids + b->nk, b->stk + base, n * sizeof *b->kids);
    int32_t r = node(b, t, (int32_t)b->nk, (int32_t)n, 0, 0);
    b->nk += n;
    b->nstk = base;
    return r;
}

int32_t slim_cgb_seq(slim_cgb *b, size_t base) { return list(b, base, SLIM_CX_SEQ); }
int32_t slim_cgb_alt(slim_cgb *b, size_t base) { return list(b, base, SLIM_CX_ALT); }

int32_t slim_cgb_seq2(slim_cgb *b, int32_t x, int32_t y) {
    size_t base = b->nstk;
    slim_cgb_push(b, x);
    slim_cgb_push(b, y);
    return slim_cgb_seq(b, base);
}

int32_t slim_cgb_alt2(slim_cgb *b, int32_t x, int32_t y) {
    size_t base = b->nstk;
    slim_cgb_push(b, x);
    slim_cgb_push(b, y);
    return slim_cgb_alt(b, base);
}

int32_t slim_cgb_lit(slim_cgb *b, const char *s, size_t n) {
    size_t base = b->nstk;
    for (size_t i = 0; i < n; i++)
        slim_cgb_push(b, slim_cgb_range(b, (uint8_t)s[i], (uint8_t)s[i]));
    return slim_cgb_seq(b, base);
}

int32_t slim_cgb_ref(slim_cgb *b, int32_t rule) {
    if (rule < 0) b->oom = true;
    return node(b, SLIM_CX_REF, rule, 0, 0, 0);
}

int32_t slim_cgb_rep(slim_cgb *b, int32_t child, int32_t min, int32_t max) {
    if (child < 0) b->oom = true;
    if (max == 0) return slim_cgb_empty(b);
    if (min == 1 && max == 1) return child;
    /* (e{a,c}){min,max} with a <= 1 is e{a*min, c*max}: every count in between
     * splits into min..max iterations of a..c.  One count is one parser stack,
     * where the nested form keeps a stack per split (.?{6,7674}: every count up
     * to 7674 live after each byte). */
    if (child >= 0 && !b->oom && b->x[child].t == SLIM_CX_REP && b->x[child].min <= 1) {
        int64_t a = b->x[child].min, c = b->x[child].max;
        int64_t lo = a * min;
        bool inf = c == SLIM_CREP_INF || max == SLIM_CREP_INF;
        int64_t hi = inf ? SLIM_CREP_INF : c * max;
        if ((inf || hi < SLIM_CREP_INF) && lo <= hi)
            return slim_cgb_rep(b, b->x[child].a, (int32_t)lo, (int32_t)hi);
    }
    return node(b, SLIM_CX_REP, child, 0, min, max);
}

/* ---- code point classes as UTF-8 byte sequences ------------------------------------------- */

static int enc(uint32_t c, uint8_t *o) {
    if (c < 0x80) return o[0] = (uint8_t)c, 1;
    if (c < 0x800) return o[0] = (uint8_t)(0xC0 | c >> 6), o[1] = (uint8_t)(0x80 | (c & 63)), 2;
    if (c < 0x10000) {
        o[0] = (uint8_t)(0xE0 | c >> 12);
        o[1] = (uint8_t)(0x80 | ((c >> 6) & 63));
        o[2] = (uint8_t)(0x80 | (c & 63));
        return 3;
    }
    o[0] = (uint8_t)(0xF0 | c >> 18);
    o[1] = (uint8_t)(0x80 | ((c >> 12) & 63));
    o[2] = (uint8_t)(0x80 | ((c >> 6) & 63));
    o[3] = (uint8_t)(0x80 | (c & 63));
    return 4;
}

/* Push the byte-range sequences of [lo, hi] (both encoded with the same
 * length) so that each sequence is a product of byte ranges. */
static void utf8_split(slim_cgb *b, uint32_t lo, uint32_t hi) {
    static const uint32_t lim[] = {0x7F, 0x7FF, 0xFFFF};
    for (int i = 0; i < 3; i++)
        if (lo <= lim[i] && hi > lim[i]) {
            utf8_split(b, lo, lim[i]);
            utf8_split(b, lim[i] + 1, hi);
            return;
        }
    uint8_t a[4], z[4];
    int n = enc(lo, a);
    enc(hi, z);
    for (int i = 1; i < n; i++) {
        uint32_t m = (1u << (6 * i)) - 1;
        if ((lo & ~m) != (hi & ~m)) {
            if (lo & m) {
                utf8_split(b, lo, lo | m);
                utf8_split(b, (lo | m) + 1, hi);
                return;
            }
            if ((hi & m) != m) {
                utf8_split(b, lo, (hi & ~m) - 1);
                utf8_split(b, hi & ~m, hi);
                return;
            }
        }
    }
    size_t base = b->nstk;
    for (int i = 0; i < n; i++)
        slim_cgb_push(b, slim_cgb_range(b, a[i], z[i]));
    slim_cgb_push(b, slim_cgb_seq(b, base));
}

int32_t slim_cgb_cps(slim_cgb *b, const uint32_t *r, size_t n) {
    size_t base = b->nstk;
    uint64_t ascii[4] = {0};
    for (size_t i = 0; i < n; i++) {
        uint32_t lo = r[2 * i], hi = r[2 * i + 1];
        if (hi > 0x10FFFF) hi = 0x10FFFF;
        if (lo > hi) continue;
        for (; lo <= hi && lo < 0x80; lo++) /* one byte set for all ASCII */
            ascii[lo >> 6] |= 1ull << (lo & 63);
        if (lo > hi) continue;
        if (lo < 0xD800 && hi >= 0xD800) {
            utf8_split(b, lo, 0xD7FF);
            lo = 0xE000;
        } else if (lo >= 0xD800 && lo <= 0xDFFF) {
            lo = 0xE000;
        }
        if (hi >= 0xD800 && hi <= 0xDFFF) hi = 0xD7FF;
        if (lo <= hi) utf8_split(b, lo, hi);
    }
    if (ascii[0] | ascii[1]) slim_cgb_push(b, slim_cgb_set(b, ascii));
    return slim_cgb_alt(b, base);
}

/* ---- rules ------------------------------------------------------------------------------- */

int32_t slim_cgb_rule_new(slim_cgb *b, const char *name, size_t len) {
    if (b->oom || b->nr >= SLIM_CG_MAX_RULES ||
        !slim_grow((void **)&b->rule_expr, &b->capr, b->nr + 1, sizeof *b->rule_expr)) {
        b->oom = true;
        return -1;
    }
    size_t cap = b->capr;
    void *p = realloc(b->rule_name, cap * sizeof *b->rule_name);
    if (!p) {
        b->oom = true;
        return -1;
    }
    b->rule_name = p;
    char *nm = NULL;
    if (name) {
        nm = malloc(len + 1);
        if (!nm) {
            b->oom = true;
            return -1;
        }
        memcpy(nm, name, len);
        nm[len] = 0;
    }
    b->rule_expr[b->nr] = -1;
    b->rule_name[b->nr] = nm;
    return (int32_t)b->nr++;
}

int32_t slim_cgb_rule_named(slim_cgb *b, const char *name, size_t len) {
    for (size_t i = 0; i < b->nr; i++) /* grammars have few named rules */
        if (b->rule_name[i] && strlen(b->rule_name[i]) == len &&
            memcmp(b->rule_name[i], name, len) == 0)
            return (int32_t)i;
    return slim_cgb_rule_new(b, name, len);
}

void slim_cgb_rule_set(slim_cgb *b, int32_t rule, int32_t expr) {
    if (rule < 0 || expr < 0 || (size_t)rule >= b->nr) {
        b->oom = true;
        return;
    }
    b->rule_expr[rule] = expr;
}

/* ---- lowering ---------------------------------------------------------------------------- */

typedef struct lower {
    slim_cgb *b;
    slim_cgrammar *g;
    size_t cap_items;
    int32_t *expr_rule; /* [b->nx] memo: expression -> anonymous rule, -1 */
    bool oom;
} lower;

static bool put_item(lower *L, slim_citem it) {
    if (L->g->n_items >= SLIM_CG_MAX_ITEMS ||
        !slim_grow((void **)&L->g->items, &L->cap_items, (size_t)L->g->n_items + 1,
                   sizeof(slim_citem)))
        return false;
    L->g->items[L->g->n_items++] = it;
    return true;
}

static int32_t rule_of(lower *L, int32_t e) {
    slim_cgb *b = L->b;
    if (b->x[e].t == SLIM_CX_REF) return b->x[e].a;
    if (L->expr_rule[e] >= 0) return L->expr_rule[e];
    int32_t r = slim_cgb_rule_new(b, NULL, 0);
    if (r < 0) return -1;
    slim_cgb_rule_set(b, r, e);
    L->expr_rule[e] = r;
    return r;
}

static bool lower_elem(lower *L, int32_t e) {
    const slim_cx x = L->b->x[e];
    switch (x.t) {
    case SLIM_CX_EMPTY: return true;
    case SLIM_CX_NONE: {
        /* an empty byte set: matches nothing */
        return put_item(L, (slim_citem){SLIM_CI_BYTES, -1, 0, 0});
    }
    case SLIM_CX_BYTES: return put_item(L, (slim_citem){SLIM_CI_BYTES, x.a, 0, 0});
    case SLIM_CX_SEQ:
        for (int32_t i = 0; i < x.n; i++)
            if (!lower_elem(L, L->b->kids[x.a + i])) return false;
        return true;
    case SLIM_CX_REF: return put_item(L, (slim_citem){SLIM_CI_REF, x.a, 0, 0});
    case SLIM_CX_ALT: {
        int32_t r = rule_of(L, e);
        return r >= 0 && put_item(L, (slim_citem){SLIM_CI_REF, r, 0, 0});
    }
    case SLIM_CX_REP: {
        int32_t r = rule_of(L, x.a);
        return r >= 0 && put_item(L, (slim_citem){SLIM_CI_REP, r, x.min, x.max});
    }
    }
    return false;
}

void slim_cgrammar_free(slim_cgrammar *g) {
    if (!g) return;
    free(g->items);
    free(g->alt_off);
    free(g->alt_start);
    free(g->sets);
    free(g);
}

static const char *rname(const slim_cgb *b, int32_t r) {
    return b->rule_name[r] ? b->rule_name[r] : "(anonymous)";
}

enum { NULLABLE_REP_MAX = 256 };

/* Nullable rules by fixpoint, the counts of nullable parts, then a
 * depth-first search for a cycle of calls made before any byte is consumed
 * (left recursion). */
static slim_status check(const slim_cgb *b, slim_cgrammar *g) {
    int32_t nr = g->n_rules;
    uint8_t *null = calloc((size_t)nr, 1);
    uint8_t *mark = calloc((size_t)nr, 1);
    int32_t *stack = malloc(sizeof(int32_t) * 2 * ((size_t)nr + 1));
    slim_status st = SLIM_OK;
    if (!null || !mark || !stack) {
        st = slim_error(SLIM_ERR_NOMEM, "grammar: out of memory");
        goto done;
    }
    for (bool changed = true; changed;) {
        changed = false;
        for (int32_t r = 0; r < nr; r++) {
            if (null[r]) continue;
            for (int32_t a = g->alt_off[r]; a < g->alt_off[r + 1] && !null[r]; a++) {
                int32_t p = g->alt_start[a];
                for (;; p++) {
                    const slim_citem *it = &g->items[p];
                    if (it->kind == SLIM_CI_END) {
                        null[r] = 1;
                        changed = true;
                        break;
                    }
                    if (it->kind == SLIM_CI_BYTES) break;
                    if (it->kind == SLIM_CI_REF && !null[it->arg]) break;
                    if (it->kind == SLIM_CI_REP && it->min > 0 && !null[it->arg]) break;
                }
            }
        }
    }
    /* A part that can match empty text: x{m,n} is x{0,n} (empty iterations
     * make up any count), and counting it keeps every count up to n live at
     * once (each split of the text among the iterations is its own parser
     * stack), so a far finite bound fails closed. */
    for (int32_t i = 0; i < g->n_items && st == SLIM_OK; i++) {
        slim_citem *it = &g->items[i];
        if (it->kind != SLIM_CI_REP || !null[it->arg]) continue;
        it->min = 0;
        if (it->max != SLIM_CREP_INF && it->max > NULLABLE_REP_MAX)
            st = slim_error(SLIM_ERR_UNSUPPORTED,
                            "grammar: a repetition counted up to %d of a part that can match "
                            "empty text (rule '%s'); at most %d is supported",
                            (int)it->max, rname(b, it->arg), NULLABLE_REP_MAX);
    }
    if (st != SLIM_OK) goto done;
    /* mark: 0 unvisited, 1 on the DFS path, 2 done.  stack: (rule, next alt item) */
    for (int32_t r0 = 0; r0 < nr && st == SLIM_OK; r0++) {
        if (mark[r0]) continue;
        /* iterative DFS over "calls at a nullable prefix" edges */
        stack[0] = r0;
        mark[r0] = 1;
        size_t sp = 1;
        /* per depth: the alternative and the item being looked at */
        int32_t *cur = malloc(sizeof(int32_t) * ((size_t)nr + 1));
        int32_t *alt = malloc(sizeof(int32_t) * ((size_t)nr + 1));
        if (!cur || !alt) {
            free(cur);
            free(alt);
            st = slim_error(SLIM_ERR_NOMEM, "grammar: out of memory");
            break;
        }
        alt[0] = g->alt_off[r0];
        cur[0] = alt[0] < g->alt_off[r0 + 1] ? g->alt_start[alt[0]] : -1;
        while (sp > 0) {
            size_t d = sp - 1;
            int32_t r = stack[2 * d];
            if (cur[d] < 0) {
                mark[r] = 2;
                sp--;
                continue;
            }
            const slim_citem *it = &g->items[cur[d]];
            int32_t callee = -1;
            bool go_on = false; /* does the alternative continue past this item? */
            if (it->kind == SLIM_CI_REF || it->kind == SLIM_CI_REP) {
                callee = it->arg;
                go_on = null[it->arg] || (it->kind == SLIM_CI_REP && it->min == 0);
            }
            if (go_on) {
                cur[d]++;
            } else {
                alt[d]++;
                cur[d] = alt[d] < g->alt_off[r + 1] ? g->alt_start[alt[d]] : -1;
            }
            if (callee >= 0) {
                if (mark[callee] == 1) {
                    st = slim_error(SLIM_ERR_FORMAT,
                                    "grammar: left recursion through rule '%s' (a rule that "
                                    "can reach itself before matching any text)",
                                    rname(b, callee));
                    break;
                }
                if (mark[callee] == 0) {
                    mark[callee] = 1;
                    stack[2 * sp] = callee;
                    alt[sp] = g->alt_off[callee];
                    cur[sp] = alt[sp] < g->alt_off[callee + 1] ? g->alt_start[alt[sp]] : -1;
                    sp++;
                }
            }
        }
        free(cur);
        free(alt);
    }
done:
    free(null);
    free(mark);
    free(stack);
    return st;
}

slim_status slim_cgb_compile(slim_cgb *b, int32_t root, slim_cgrammar **out) {
    *out = NULL;
    if (b->oom) return slim_error(SLIM_ERR_NOMEM, "grammar: out of memory while building");
    if (root < 0 || (size_t)root >= b->nr)
        return slim_error(SLIM_ERR_INVALID_ARG, "grammar: no start rule");
    lower L = {.b = b};
    L.g = calloc(1, sizeof *L.g);
    L.expr_rule = malloc(sizeof(int32_t) * (b->nx + 1));
    slim_status st = SLIM_OK;
    if (!L.g || !L.expr_rule) goto oom;
    memset(L.expr_rule, 0xff, sizeof(int32_t) * (b->nx + 1));
    slim_cgrammar *g = L.g;
    size_t cap_off = 0, n_alts = 0, cap_alt_start = 0;
    /* b->nr grows while lowering (anonymous rules), so loop on it */
    for (size_t r = 0; r < b->nr; r++) {
        if (b->rule_expr[r] < 0) {
            st = slim_error(SLIM_ERR_FORMAT, "grammar: rule '%s' is used but never defined",
                            rname(b, (int32_t)r));
            goto fail;
        }
        if (!slim_grow((void **)&g->alt_off, &cap_off, r + 2, sizeof(int32_t))) goto oom;
        int32_t e = b->rule_expr[r];
        const slim_cx x = b->x[e];
        int32_t n = x.t == SLIM_CX_ALT ? x.n : 1;
        g->alt_off[r] = (int32_t)n_alts;
        for (int32_t i = 0; i < n; i++) {
            int32_t ae = x.t == SLIM_CX_ALT ? b->kids[x.a + i] : e;
            if (b->x[ae].t == SLIM_CX_NONE) continue; /* an alternative that never matches */
            if (!slim_grow((void **)&g->alt_start, &cap_alt_start, n_alts + 1, sizeof(int32_t)))
                goto oom;
            g->alt_start[n_alts++] = g->n_items;
            if (!lower_elem(&L, ae) || !put_item(&L, (slim_citem){SLIM_CI_END, 0, 0, 0})) {
                if (g->n_items >= SLIM_CG_MAX_ITEMS) {
                    st = slim_error(SLIM_ERR_UNSUPPORTED, "grammar: more than %d items",
                                    SLIM_CG_MAX_ITEMS);
                    goto fail;
                }
                goto oom;
            }
            if (b->oom) goto oom;
        }
        g->alt_off[r + 1] = (int32_t)n_alts;
        g->n_rules = (int32_t)r + 1;
    }
    if (b->oom) goto oom;
    g->root = root;
    g->n_sets = (int32_t)b->ns;
    g->sets = malloc(sizeof *g->sets * (b->ns + 1));
    if (!g->sets) goto oom;
    if (b->ns) memcpy(g->sets, b->sets, sizeof *g->sets * b->ns);
    /* BYTES items with set -1 (NONE) get an all-zero set at the end */
    memset(g->sets[b->ns], 0, sizeof g->sets[0]);
    for (int32_t i = 0; i < g->n_items; i++)
        if (g->items[i].kind == SLIM_CI_BYTES && g->items[i].arg < 0)
            g->items[i].arg = (int32_t)b->ns;
    st = check(b, g);
    if (st != SLIM_OK) goto fail;
    uint64_t h = 0xcbf29ce484222325ull;
    for (int32_t i = 0; i < g->n_items; i++) {
        const slim_citem *it = &g->items[i];
        uint64_t v[4] = {it->kind, (uint64_t)it->arg, (uint64_t)it->min, (uint64_t)it->max};
        if (it->kind == SLIM_CI_BYTES) {
            const uint64_t *s = g->sets[it->arg];
            v[1] = s[0] ^ (s[1] * 31) ^ (s[2] * 1009) ^ (s[3] * 65537);
        }
        for (int k = 0; k < 4; k++)
            h = (h ^ v[k]) * 0x100000001b3ull;
    }
    for (int32_t r = 0; r <= g->n_rules; r++)
        h = (h ^ (uint64_t)g->alt_off[r]) * 0x100000001b3ull;
    g->hash = h ^ (uint64_t)root;
    free(L.expr_rule);
    *out = g;
    return SLIM_OK;
oom:
    st = slim_error(SLIM_ERR_NOMEM, "grammar: out of memory");
fail:
    free(L.expr_rule);
    slim_cgrammar_free(L.g);
    return st;
}

bool slim_cg_parse_count(const char *s, size_t n, size_t *i, int32_t cap, int32_t *v) {
    if (*i >= n || s[*i] < '0' || s[*i] > '9') return false;
    int64_t x = 0;
    while (*i < n && s[*i] >= '0' && s[*i] <= '9') {
        x = x * 10 + (s[(*i)++] - '0');
        if (x > cap) x = (int64_t)cap + 1;
    }
    *v = (int32_t)x;
    return true;
}
