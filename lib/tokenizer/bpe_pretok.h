/* BPE pre-tokenizers (bpe_pretok.c): split text into the words that BPE
 * merges run inside, as llama.cpp's unicode_regex_split() does for each
 * tokenizer.ggml.pre.  Private to lib/tokenizer. */
#ifndef SLIM_TOKENIZER_BPE_PRETOK_H
#define SLIM_TOKENIZER_BPE_PRETOK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tokenizer/unicode.h"

/* The regex sets of llama.cpp's LLAMA_VOCAB_PRE_TYPE_*; several
 * tokenizer.ggml.pre names share one (see bpe.c). */
enum {
    SLIM_PRE_DEFAULT, /* punctuation runs, GPT-2's regex, number runs, digit triples */
    SLIM_PRE_GPT2,    /* 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S) */
    SLIM_PRE_SMOLLM,  /* \p{N}, then GPT-2's */
    SLIM_PRE_LLAMA3,  /* Llama 3 / cl100k: (?i:'s|...)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|... */
    SLIM_PRE_QWEN2,   /* as Llama 3 with \p{N} for \p{N}{1,3} */
    SLIM_PRE_TEKKEN,  /* Mistral Nemo: case-aware words, \p{N} */
    SLIM_PRE_GPT4O,   /* o200k: case-aware words with contractions, \p{N}{1,3} */
    /* tokenizer.json's regexes, matched exactly as the `tokenizers` package's
     * Oniguruma does (true Unicode case groups, not llama.cpp's [^a-z]): */
    SLIM_PRE_LLAMA3_RE, /* Llama 3 / cl100k as a regex (no hand-written quirks) */
    SLIM_PRE_TEKKEN_HF, /* [^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}...]+|... */
    SLIM_PRE_GPT4O_HF,  /* o200k with the same case groups */
    SLIM_PRE_COUNT
};

/* Reusable buffers; zero-initialize, free with slim_pretok_free. */
typedef struct slim_pretok {
    uint32_t *cp; /* the text's code points */
    uint16_t *fl; /* their flags */
    size_t n_cp, cap_cp;
    size_t *piece; /* the words: lengths in code points, in order, summing to n_cp */
    size_t n_piece, cap_piece;
    size_t *piece2; /* scratch */
    size_t cap_piece2;
} slim_pretok;

/* Decode text (invalid UTF-8 as llama.cpp: U+FFFD per bad byte) and split it
 * with the pre-tokenizer `kind` (SLIM_PRE_*). */
SLIM_HIDDEN slim_status slim_pretok_split(slim_pretok *pt, int kind, const char *text, size_t len);
SLIM_HIDDEN void slim_pretok_free(slim_pretok *pt);

#endif
