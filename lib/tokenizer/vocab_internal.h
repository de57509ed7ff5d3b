/* The vocabulary's layout, shared by vocab_store.c (lookup, free), vocab.c
 * (load, detokenize), hf_json.c / hf_tok.c (tokenizer.json), tokenize.c
 * (special tokens, the tokenize entry), spm.c (SentencePiece) and bpe.c
 * (byte-level BPE).  Private to lib/tokenizer. */
#ifndef SLIM_TOKENIZER_VOCAB_INTERNAL_H
#define SLIM_TOKENIZER_VOCAB_INTERNAL_H

#include <stddef.h>

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

enum { SLIM_VOCAB_SPM, SLIM_VOCAB_BPE };

/* The GGUF keys of the special token ids and where each lands in slim_vocab
 * (read by vocab.c, written by vocab_export.c); deprecated ones are only read. */
typedef struct slim_vocab_id_key {
    const char *key;
    size_t off;
    bool deprecated;
} slim_vocab_id_key;
enum { SLIM_VOCAB_N_ID_KEYS = 17 };
extern SLIM_HIDDEN const slim_vocab_id_key
    slim_vocab_id_keys[SLIM_VOCAB_N_ID_KEYS]; /* tokenizer.ggml.model "llama", "gpt2" */

/* A Hugging Face tokenizer.json pipeline (hf.h).  A vocab loaded by
 * slim_vocab_from_hf_dir has one: tokenize, detokenize and token_to_piece run
 * it instead of llama.cpp's paths.  Its `type` is then the closest GGUF model:
 * SLIM_VOCAB_BPE for byte-level BPE (a ByteLevel pre-tokenizer; `pre` is the
 * SLIM_PRE_* of its split regex), SLIM_VOCAB_SPM for SentencePiece-style BPE
 * (U+2581 for spaces, <0xXX> byte fallback: Llama 2, Mistral v3, Gemma) whose
 * merges are in merge_buf/merges like a gpt2 vocab's (mslot stays NULL) and
 * whose scores are all 0 (tokenizer.json has none; the merge order is the
 * priority).  Attributes: model tokens NORMAL (BYTE for <0xXX> with byte
 * fallback, UNKNOWN for unk_token), special added tokens CONTROL, other added
 * tokens USER_DEFINED; ids that no token has (holes) UNUSED with an empty
 * text. */
typedef struct slim_hf slim_hf;

/* A BPE merge "left right": its text (left, a space, right) in merge_buf. */
typedef struct slim_merge {
    uint32_t off, left, right; /* offset into merge_buf, lengths of the two sides */
} slim_merge;

struct slim_vocab {
    int type; /* SLIM_VOCAB_* */
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

    /* byte-level BPE */
    int pre;            /* SLIM_PRE_* (bpe_pretok.h) */
    bool ignore_merges; /* a pre-tokenized word that is a token is taken whole */
    bool clean_spaces;  /* detokenize drops spaces before ?!., and some apostrophes */
    char *merge_buf;
    slim_merge *merges; /* [n_merges], index = rank */
    int32_t n_merges;
    uint32_t mmask;
    int32_t *mslot; /* (left, right) -> rank: open addressing, -1 empty */

    slim_hf *hf;         /* a tokenizer.json pipeline (hf.h), or NULL (GGUF) */
    char *chat_template; /* a Hugging Face directory's chat template, or NULL */
};

typedef struct slim_ivec {
    int32_t *p;
    size_t n, cap;
} slim_ivec;
SLIM_HIDDEN bool slim_ivec_push(slim_ivec *v, int32_t x);

/* vocab_store.c, below the loaders and tokenizers. */
/* The id of the token whose text is exactly s[0..len), or -1. */
SLIM_HIDDEN int32_t slim_vocab_lookup(const slim_vocab *v, const char *s, size_t len);
/* Enter token id's text in the text -> id map (hslot / hhash sized by the
 * loader); the id already holding that text, or -1. */
SLIM_HIDDEN int32_t slim_vocab_hash_insert(slim_vocab *v, int32_t id);

/* Tokenize one text fragment (no special tokens in it), appending to out.
 * *session holds scratch buffers between calls: NULL at first, then freed
 * with the matching _free. */
typedef struct slim_spm_session slim_spm_session;
SLIM_HIDDEN slim_status slim_spm_fragment(slim_spm_session **session, const slim_vocab *v,
                                          const char *text, size_t len, bool space_prefix,
                                          slim_ivec *out);
SLIM_HIDDEN void slim_spm_session_free(slim_spm_session *session);
typedef struct slim_bpe_session slim_bpe_session;
SLIM_HIDDEN slim_status slim_bpe_fragment(slim_bpe_session **session, const slim_vocab *v,
                                          const char *text, size_t len, slim_ivec *out);
SLIM_HIDDEN void slim_bpe_session_free(slim_bpe_session *session);

/* BPE load: merges, tokenizer.ggml.pre and what it implies (bpe.c). */
SLIM_HIDDEN slim_status slim_bpe_load(const slim_gguf *g, slim_vocab *v);
/* A normal BPE token's bytes (GPT-2 byte decoding of its text, as llama.cpp's
 * llama_decode_text) to dst (up to cap bytes), skipping up to lstrip leading
 * spaces; returns the full length. */
SLIM_HIDDEN size_t slim_bpe_decode(const char *text, size_t len, int lstrip, char *dst, size_t cap);
/* llama.cpp's clean_up_tokenization_spaces on s[0..n), in place; new length. */
SLIM_HIDDEN size_t slim_bpe_clean_spaces(char *s, size_t n);

#endif
