/* The vocabulary's layout, shared by vocab.c (load, detokenize) and spm.c
 * (tokenize).  Private to lib/tokenizer. */
#ifndef SLIM_TOKENIZER_VOCAB_INTERNAL_H
#define SLIM_TOKENIZER_VOCAB_INTERNAL_H

#include "tokenizer/tokenizer.h"

/* Token attributes, as llama.cpp derives them from the GGUF token types plus
 * its text-based fix-ups (a bit set). */
enum {
    SLIM_ATTR_UNDEFINED = 0,
    SLIM_ATTR_UNKNOWN = 1u << 0,
    SLIM_ATTR_UNUSED = 1u << 1,
    SLIM_ATTR_NORMAL = 1u << 2,
    SLIM_ATTR_CONTROL = 1u << 3,
    SLIM_ATTR_USER_DEFINED = 1u << 4,
    SLIM_ATTR_BYTE = 1u << 5,
    SLIM_ATTR_LSTRIP = 1u << 7,
    SLIM_ATTR_RSTRIP = 1u << 8
};

/* A trie over the texts of the special tokens (control, user-defined,
 * unknown), used to find which of them occur in a text. */
typedef struct slim_trie_node {
    int32_t child;   /* first child, -1 if none */
    int32_t sibling; /* next sibling, -1 if none */
    int32_t rank;    /* index into special[] of the token ending here, -1 if none */
    uint8_t byte;
} slim_trie_node;

struct slim_vocab {
    int32_t n;
    char *text_buf;    /* every token's text, each NUL-terminated */
    const char **text; /* [n] into text_buf */
    uint32_t *len;     /* [n] text length in bytes */
    float *score;      /* [n] */
    uint16_t *attr;    /* [n] SLIM_ATTR_* */
    uint8_t *byte_val; /* [n] the byte of a BYTE token */

    /* text -> id: open addressing, linear probing */
    uint32_t hmask;
    int32_t *hslot; /* id or -1 */
    uint32_t *hhash;

    int32_t bos, eos, eot, eom, unk, sep, pad, mask;
    int32_t fim_pre, fim_suf, fim_mid, fim_pad, fim_rep, fim_sep;
    bool add_bos, add_eos, add_space_prefix;

    int32_t byte_tok[256]; /* token for each raw byte (byte fallback), -1 if none */

    /* special tokens in llama.cpp's matching order: longest text first */
    int32_t *special;
    int32_t n_special;
    slim_trie_node *trie; /* node 0 is the root */
    int32_t n_trie;
    int32_t root_child[256]; /* the root's children, indexed by byte */

    int32_t *eog; /* tokens that end generation */
    int32_t n_eog;
};

/* The id of the token whose text is exactly s[0..len), or -1. */
SLIM_HIDDEN int32_t slim_vocab_lookup(const slim_vocab *v, const char *s, size_t len);

#endif
