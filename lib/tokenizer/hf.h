/* A Hugging Face tokenizer.json pipeline, as the `tokenizers` package runs it:
 * added tokens split out first, then normalizer, pre-tokenizer, BPE model and
 * post-processor; the decoder chain for the way back.  hf_json.c loads it
 * (tokenizer.json, tokenizer_config.json, generation_config.json) into a
 * slim_vocab whose `hf` points here; hf_tok.c runs it.  Private to
 * lib/tokenizer. */
#ifndef SLIM_TOKENIZER_HF_H
#define SLIM_TOKENIZER_HF_H

#include "tokenizer/vocab_internal.h"

enum { HF_NORM_REPLACE, HF_NORM_PREPEND, HF_NORM_STRIP };
typedef struct hf_norm {
    int kind;
    char *a, *b; /* REPLACE: pattern, content; PREPEND: a */
    size_t alen, blen;
    bool left, right; /* STRIP */
} hf_norm;

enum { HF_PRE_SPLIT_RE, HF_PRE_SPLIT_STR, HF_PRE_BYTELEVEL, HF_PRE_METASPACE, HF_PRE_DIGITS };
/* Split behaviours (SplitDelimiterBehavior) */
enum { HF_SPLIT_REMOVED, HF_SPLIT_ISOLATED, HF_SPLIT_PREV, HF_SPLIT_NEXT, HF_SPLIT_CONTIGUOUS };
/* Metaspace prepend_scheme */
enum { HF_PREPEND_ALWAYS, HF_PREPEND_FIRST, HF_PREPEND_NEVER };
typedef struct hf_pre {
    int kind;
    int pre;      /* SPLIT_RE: SLIM_PRE_* */
    int behavior; /* SPLIT_STR: HF_SPLIT_* */
    char *pat;    /* SPLIT_STR: the pattern; METASPACE: the replacement's UTF-8 */
    size_t plen;
    bool prefix_space; /* BYTELEVEL */
    bool use_regex;    /* BYTELEVEL */
    int scheme;        /* METASPACE: HF_PREPEND_* */
    bool split;        /* METASPACE */
    bool individual;   /* DIGITS */
} hf_pre;

enum {
    HF_DEC_BYTELEVEL,
    HF_DEC_REPLACE,
    HF_DEC_BYTEFALLBACK,
    HF_DEC_FUSE,
    HF_DEC_STRIP,
    HF_DEC_METASPACE
};
typedef struct hf_dec {
    int kind;
    char *a, *b; /* REPLACE: pattern, content; STRIP, METASPACE: a is the character */
    size_t alen, blen;
    int start, stop; /* STRIP */
    int scheme;      /* METASPACE: HF_PREPEND_* */
} hf_dec;

typedef struct hf_added {
    int32_t id;
    const char *content; /* the vocab's text of id */
    size_t len;
    char *norm; /* normalized=true: the content through the normalizer */
    size_t nlen;
    bool special, lstrip, rstrip, normalized, single_word;
} hf_added;

/* A byte trie over added-token texts: which added token (index) ends where. */
typedef struct hf_trie {
    slim_trie_node *node; /* node 0 is the root; rank = index into added[] */
    int32_t n, cap;
    int32_t root[256];
} hf_trie;

struct slim_hf {
    hf_norm *norm;
    int n_norm;
    hf_pre *pre;
    int n_pre;
    bool byte_level; /* a ByteLevel pre-tokenizer (the last one): words in GPT-2 characters */
    hf_dec *dec;
    int n_dec;
    bool has_decoder; /* none: tokens are joined with spaces */

    hf_added *added;
    int32_t n_added;
    int32_t *added_of;   /* [v->n] index into added[], or -1 */
    hf_trie raw, normed; /* normalized = false / true */

    /* BPE */
    uint8_t *in_model; /* [v->n] the model's vocab has this id */
    int32_t unk;       /* model.unk_token, or -1 */
    bool byte_fallback, fuse_unk, ignore_merges;
    int32_t byte_id[256]; /* "<0xXX>" in the model's vocab, or -1 */
    uint64_t *mkey;       /* (left id << 32 | right id) + 1; 0 empty */
    uint32_t *mrank;
    int32_t *mnew;
    uint32_t mmask;

    /* post-processor: what encode(add_special_tokens=True) puts around the ids */
    int32_t *prefix, *suffix;
    int32_t n_prefix, n_suffix;
    bool post_set; /* tokenizer.json has a post_processor */
};

SLIM_HIDDEN void slim_hf_free(slim_hf *h); /* vocab_store.c */
/* The merge map's slot hash of a (left, right) key: hf_json.c fills the
 * map, hf_tok.c's slim_hf_merge reads it. */
static inline uint32_t slim_hf_merge_hash(uint64_t k) {
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdull;
    k ^= k >> 33;
    return (uint32_t)k;
}
/* hf_tok.c: (left, right) -> rank and merged id; false if no such merge */
SLIM_HIDDEN bool slim_hf_merge(const slim_hf *h, int32_t left, int32_t right, uint32_t *rank,
                               int32_t *merged);
/* Apply the normalizer to s[0..n) (malloc'd result in *out, *out_n). */
SLIM_HIDDEN slim_status slim_hf_normalize(const slim_hf *h, const char *s, size_t n, char **out,
                                          size_t *out_n);
/* hf_tok.c: the vocab functions for v->hf != NULL (arguments already checked) */
SLIM_HIDDEN slim_status slim_hf_tokenize(const slim_vocab *v, const char *text, size_t len,
                                         uint32_t flags, slim_ivec *out);
SLIM_HIDDEN slim_status slim_hf_detokenize(const slim_vocab *v, const int32_t *tokens, size_t n,
                                           bool special, char **out, size_t *out_n);
SLIM_HIDDEN slim_status slim_hf_piece(const slim_vocab *v, int32_t token, bool special, char **out,
                                      size_t *out_n);

#endif
