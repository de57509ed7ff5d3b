/* The constraint engine's one grammar form, its builder and its compiled form.
 *
 * Every front end (GBNF, regex, JSON Schema, choices) builds expressions with
 * the builder (slim_cgb): byte sets, sequences, alternatives, references to
 * named rules and counted repetition.  slim_cgb_compile lowers them to a flat,
 * immutable slim_cgrammar: each rule is a list of alternatives, each
 * alternative a run of items ending in END.  An item matches one byte from a
 * set (BYTES), calls a rule (REF), or repeats a rule min..max times (REP, with
 * a counter in the parser frame, so x{0,1000} stays one item).  Characters are
 * bytes: a class of code points becomes the alternation of its UTF-8 byte
 * sequences, so the matcher never decodes UTF-8 and never accepts a byte
 * sequence the class does not contain.
 *
 * Compilation rejects (fail closed) undefined rules and left recursion
 * (through nullable prefixes too), the one shape a top-down matcher cannot run. */
#ifndef SLIM_CONSTRAIN_GRAMMAR_H
#define SLIM_CONSTRAIN_GRAMMAR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/error.h"

enum {
    SLIM_CX_EMPTY,
    SLIM_CX_NONE,
    SLIM_CX_BYTES,
    SLIM_CX_SEQ,
    SLIM_CX_ALT,
    SLIM_CX_REF,
    SLIM_CX_REP
};
#define SLIM_CREP_INF INT32_MAX
enum { SLIM_CG_MAX_ITEMS = 1 << 22, SLIM_CG_MAX_RULES = 1 << 20 };

typedef struct slim_cx {
    uint8_t t;        /* SLIM_CX_* */
    int32_t a, n;     /* BYTES: set; SEQ/ALT: kids[a..a+n); REF: rule; REP: child expr */
    int32_t min, max; /* REP */
} slim_cx;

typedef struct slim_cgb {
    slim_cx *x;
    size_t nx, capx;
    int32_t *kids;
    size_t nk, capk;
    uint64_t (*sets)[4];
    size_t ns, caps;
    int32_t *rule_expr; /* -1: referenced but not defined */
    char **rule_name;
    size_t nr, capr;
    int32_t *stk; /* scratch stack: slim_cgb_push, then slim_cgb_seq/alt(base) */
    size_t nstk, capstk;
    bool oom;
} slim_cgb;

/* A decimal count at s[*i] (n bytes in all) for a repetition bound: false if
 * no digit is there; values above cap read as cap + 1, so the caller's range
 * check rejects them without overflow.  *i moves past the digits. */
SLIM_HIDDEN bool slim_cg_parse_count(const char *s, size_t n, size_t *i, int32_t cap, int32_t *v);

SLIM_HIDDEN void slim_cgb_init(slim_cgb *b);
SLIM_HIDDEN void slim_cgb_free(slim_cgb *b);

/* Expressions (ids; -1 after an allocation failure, which b->oom records and
 * every later call propagates). */
SLIM_HIDDEN int32_t slim_cgb_empty(slim_cgb *b);
SLIM_HIDDEN int32_t slim_cgb_none(slim_cgb *b);
SLIM_HIDDEN int32_t slim_cgb_set(slim_cgb *b, const uint64_t set[4]);
SLIM_HIDDEN int32_t slim_cgb_range(slim_cgb *b, uint8_t lo, uint8_t hi);
SLIM_HIDDEN int32_t slim_cgb_lit(slim_cgb *b, const char *s, size_t n);
/* A code point class: sorted, disjoint [lo, hi] pairs (n pairs); surrogates
 * and values past U+10FFFF are dropped. */
SLIM_HIDDEN int32_t slim_cgb_cps(slim_cgb *b, const uint32_t *ranges, size_t n);
SLIM_HIDDEN int32_t slim_cgb_ref(slim_cgb *b, int32_t rule);
SLIM_HIDDEN int32_t slim_cgb_rep(slim_cgb *b, int32_t child, int32_t min, int32_t max);
SLIM_HIDDEN void slim_cgb_push(slim_cgb *b, int32_t expr);
/* The sequence / alternation of the stack entries above `base` (popped). */
SLIM_HIDDEN int32_t slim_cgb_seq(slim_cgb *b, size_t base);
SLIM_HIDDEN int32_t slim_cgb_alt(slim_cgb *b, size_t base);
SLIM_HIDDEN int32_t slim_cgb_seq2(slim_cgb *b, int32_t x, int32_t y);
SLIM_HIDDEN int32_t slim_cgb_alt2(slim_cgb *b, int32_t x, int32_t y);

/* Rules: a new anonymous one (name may be NULL), or the one called `name`
 * (created undefined if new). */
SLIM_HIDDEN int32_t slim_cgb_rule_new(slim_cgb *b, const char *name, size_t len);
SLIM_HIDDEN int32_t slim_cgb_rule_named(slim_cgb *b, const char *name, size_t len);
SLIM_HIDDEN void slim_cgb_rule_set(slim_cgb *b, int32_t rule, int32_t expr);

/* ---- the compiled grammar ---------------------------------------------------------------- */

enum { SLIM_CI_BYTES, SLIM_CI_REF, SLIM_CI_REP, SLIM_CI_END };

typedef struct slim_citem {
    uint8_t kind;     /* SLIM_CI_* */
    int32_t arg;      /* BYTES: set index; REF/REP: rule */
    int32_t min, max; /* REP */
} slim_citem;

typedef struct slim_cgrammar {
    slim_citem *items;
    int32_t n_items;
    int32_t n_rules;
    int32_t *alt_off;   /* [n_rules + 1]: rule r's alternatives are alt_start[alt_off[r]..] */
    int32_t *alt_start; /* item index where each alternative starts */
    uint64_t (*sets)[4];
    int32_t n_sets;
    int32_t root;
    uint64_t hash; /* of the compiled form, for caches keyed by content */
} slim_cgrammar;

/* Lower the builder's rules (root: the start rule) into a grammar.  Errors:
 * SLIM_ERR_FORMAT for an undefined rule or left recursion (named),
 * SLIM_ERR_UNSUPPORTED for a part that can match empty text counted past 256
 * (the rule named), NOMEM. */
SLIM_HIDDEN slim_status slim_cgb_compile(slim_cgb *b, int32_t root, slim_cgrammar **out);
SLIM_HIDDEN void slim_cgrammar_free(slim_cgrammar *g);

static inline bool slim_cset_has(const uint64_t s[4], uint8_t c) {
    return (s[c >> 6] >> (c & 63)) & 1;
}

#endif
