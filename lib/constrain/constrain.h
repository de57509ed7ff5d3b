/* The constraint engine, as the batched engine and the sampler will use it.
 *
 *   slim_cgrammar  compiled grammar (grammar.h), immutable, shareable; made by
 *                  slim_constrain_compile from GBNF, a regex, a JSON Schema,
 *                  a list of choices or "any JSON".
 *   slim_ctokens   the vocabulary as byte strings plus a trie over them, built
 *                  once per vocabulary, immutable, shareable.
 *   slim_cmatch    a grammar x vocabulary matcher: a lazily built automaton
 *                  over parser states with a per-state token-mask cache.  It
 *                  is NOT thread-safe: one per worker thread (or a lock).
 *
 * A request's position in the grammar is a state id (int32_t) of a matcher:
 * copying a state is copying the int, advancing is a table walk over the
 * token's bytes, and the mask for a state is computed once and cached, so a
 * batch of requests costs one cache lookup each in the steady state.
 *
 * Parser states are sets of pushdown stacks (each frame: an item of the
 * grammar, a repetition count and the frame to return to), hash-consed, so a
 * state is exact: a byte moves to the next state only if some stack can
 * consume it, and "accepting" means some stack has finished the start rule.
 * Tokens: special tokens (control, unknown, unused) are never allowed; the
 * end-of-generation tokens are allowed exactly where the grammar can end.
 * On any internal limit (states, frames, memory) the matcher fails closed:
 * the state is dead (no token allowed) and slim_error says why. */
#ifndef SLIM_CONSTRAIN_CONSTRAIN_H
#define SLIM_CONSTRAIN_CONSTRAIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "constrain/grammar.h"
#include "core/error.h"

typedef struct slim_vocab slim_vocab;

/* ---- compiling ------------------------------------------------------------------------- */

/* slim_constraint_kind (GBNF, REGEX, JSON_SCHEMA, CHOICES as NUL-separated strings,
 * JSON_OBJECT: any JSON object) is public: slim.h. */

typedef struct slim_constraint_opts {
    /* JSON: whitespace allowed between tokens (default compact: none) */
    bool json_whitespace;
} slim_constraint_opts;

/* Errors: SLIM_ERR_FORMAT (malformed input: GBNF line:column, regex offset,
 * schema JSON pointer), SLIM_ERR_UNSUPPORTED (a construct or keyword that
 * cannot be honoured exactly, named), SLIM_ERR_NOMEM. */
SLIM_HIDDEN slim_status slim_constrain_compile(slim_constraint_kind kind, const char *text,
                                               size_t len, const slim_constraint_opts *opts,
                                               slim_cgrammar **out);

/* The front ends (each builds into b and returns the start rule). */
SLIM_HIDDEN slim_status slim_gbnf_build(slim_cgb *b, const char *text, size_t len, int32_t *root);
/* A regex (the subset that can be honoured exactly) as an expression over
 * code points.  in_json: each character is written as a JSON string character
 * (escaped where JSON needs it); search: unanchored unless ^ / $ (JSON Schema
 * "pattern"), else the whole text must match. */
SLIM_HIDDEN slim_status slim_regex_build(slim_cgb *b, const char *re, size_t len, bool in_json,
                                         bool search, int32_t *expr);
/* The same, with `any_char` the expression an unanchored pattern may put
 * around the match (-1: made here). */
SLIM_HIDDEN slim_status slim_regex_build_any(slim_cgb *b, const char *re, size_t len, bool in_json,
                                             bool search, int32_t any_char, int32_t *expr);
SLIM_HIDDEN slim_status slim_schema_build(slim_cgb *b, const char *text, size_t len,
                                          const slim_constraint_opts *opts, int32_t *root);

/* ---- the vocabulary ---------------------------------------------------------------------- */

enum { SLIM_CTOK_NEVER = 0, SLIM_CTOK_TEXT = 1, SLIM_CTOK_EOS = 2 };
enum { SLIM_CTOK_LEN_MAX = 48 };

typedef struct slim_ctrie_node {
    uint8_t byte;
    uint8_t plain;    /* this byte and every byte below are printable ASCII but '"' and '\\' */
    uint8_t boundary; /* the bytes down to here end at a UTF-8 character boundary */
    uint8_t hc;       /* characters (UTF-8 lead bytes) from this byte down to the deepest
                         token below, at most 255 */
    uint16_t depth;
    uint16_t h;     /* bytes from the parent down to the deepest token below */
    int32_t next;   /* preorder index past this node's subtree */
    int32_t tok_lo; /* tokens ending here: order[tok_lo .. tok_lo + tok_n) */
    int32_t tok_n;
} slim_ctrie_node;

/* A trie over some of the tokens. */
typedef struct slim_ctrie {
    slim_ctrie_node *nodes; /* preorder; node 0 is the root */
    int32_t n;
    int32_t *order;     /* its tokens sorted by bytes */
    int32_t *tok_start; /* [n + 1]: order index of the first token at or after node i */
    /* [2 * n]: the ASCII bytes of node i and every node below it, bit b of
     * sub[2i + b / 64]; bit 0 (NUL) stands for NUL and every byte >= 0x80, so
     * a subtree whose set is inside the bytes a state loops on is all allowed */
    uint64_t *sub;
    int32_t max_depth;
} slim_ctrie;

typedef struct slim_ctokens {
    int32_t n_vocab;
    uint8_t *kind;  /* [n_vocab] SLIM_CTOK_* */
    uint32_t *off;  /* [n_vocab + 1] into bytes */
    uint8_t *bytes; /* every token's bytes */
    int32_t *eos;   /* EOS tokens */
    int32_t n_eos;
    /* String-safe tokens: complete UTF-8 characters other than '"', '\\' and
     * controls, then at most a valid start of one more.  Where the state loops
     * on every such character (inside a JSON string) a whole subtree of the
     * safe trie is allowed at once (safe_mask at the root). */
    uint32_t *safe_mask;
    /* safe_len_mask + c * words: the safe tokens of at most c characters (a
     * trailing partial one counted), c = 0 .. SLIM_CTOK_LEN_MAX */
    uint32_t *safe_len_mask;
    /* the most characters of a safe token with a non-ASCII byte (how far the
     * mask looks ahead over non-ASCII characters; ASCII ones are bytes) */
    int32_t na_chars;
    slim_ctrie safe, unsafe; /* the TEXT tokens, split */
} slim_ctokens;

/* From explicit byte strings (tests, tools): token i is bytes[off[i]..off[i+1]),
 * kind[i] a SLIM_CTOK_*. */
SLIM_HIDDEN slim_status slim_ctokens_new(int32_t n, const uint8_t *kind, const uint32_t *off,
                                         const uint8_t *bytes, slim_ctokens **out);
/* From a model vocabulary: each token's piece as detokenized output shows it;
 * control, unknown and unused tokens never; end-of-generation tokens EOS. */
SLIM_HIDDEN slim_status slim_ctokens_from_vocab(const slim_vocab *v, slim_ctokens **out);
SLIM_HIDDEN void slim_ctokens_free(slim_ctokens *t);

/* ---- matching ---------------------------------------------------------------------------- */

typedef struct slim_cmatch slim_cmatch;

enum {
    SLIM_CSTATE_DEAD = -1, /* nothing allowed: rejected, or failed closed */
    SLIM_CSTATE_DONE = -2, /* an EOS token was accepted: generation is over */
};

/* The grammar and tokens must outlive the matcher. */
SLIM_HIDDEN slim_status slim_cmatch_new(const slim_cgrammar *g, const slim_ctokens *t,
                                        slim_cmatch **out);
SLIM_HIDDEN void slim_cmatch_free(slim_cmatch *m);
/* Cache the masks of states (default on). */
SLIM_HIDDEN void slim_cmatch_set_mask_cache(slim_cmatch *m, bool on);

SLIM_HIDDEN int32_t slim_cmatch_start(slim_cmatch *m);
SLIM_HIDDEN int32_t slim_cmatch_advance_byte(slim_cmatch *m, int32_t s, uint8_t c);
SLIM_HIDDEN int32_t slim_cmatch_advance_bytes(slim_cmatch *m, int32_t s, const uint8_t *p,
                                              size_t n);
/* The state after `token`, SLIM_CSTATE_DONE for an allowed EOS, DEAD if the
 * token is not allowed. */
SLIM_HIDDEN int32_t slim_cmatch_advance_token(slim_cmatch *m, int32_t s, int32_t token);
/* True if the text so far is a complete sentence of the grammar. */
SLIM_HIDDEN bool slim_cmatch_accepting(slim_cmatch *m, int32_t s);
/* The allowed tokens: bit t of mask[t / 32] (n_vocab bits, rounded up to
 * whole words, all written).  The returned pointer (also copied to `mask` if
 * non-NULL) lives until the next call on this matcher. */
SLIM_HIDDEN const uint32_t *slim_cmatch_mask(slim_cmatch *m, int32_t s, uint32_t *mask);
/* The bytes every continuation must start with (up to cap; returns how many). */
SLIM_HIDDEN size_t slim_cmatch_forced_bytes(slim_cmatch *m, int32_t s, uint8_t *buf, size_t cap);
/* The one allowed token, or -1 when zero or several are allowed. */
SLIM_HIDDEN int32_t slim_cmatch_forced_token(slim_cmatch *m, int32_t s);
/* Counters for tools: states, frames, bytes held. */
SLIM_HIDDEN void slim_cmatch_stats(const slim_cmatch *m, size_t *states, size_t *frames,
                                   size_t *bytes);

#endif
