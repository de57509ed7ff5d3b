/* Vocabulary and tokenizers: SentencePiece and byte-level BPE, as llama.cpp. */
#ifndef SLIM_TOKENIZER_TOKENIZER_H
#define SLIM_TOKENIZER_TOKENIZER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/error.h"
#include "format/gguf.h"

/* GGUF tokenizer.ggml.token_type values */
enum {
    SLIM_TOKEN_TYPE_NORMAL = 1,
    SLIM_TOKEN_TYPE_UNKNOWN = 2,
    SLIM_TOKEN_TYPE_CONTROL = 3,
    SLIM_TOKEN_TYPE_USER_DEFINED = 4,
    SLIM_TOKEN_TYPE_UNUSED = 5,
    SLIM_TOKEN_TYPE_BYTE = 6
};

typedef struct slim_vocab slim_vocab;

/* Build the vocabulary from a GGUF's tokenizer.ggml.* metadata (validated:
 * lengths, ids in range, types known).  The vocab keeps pointers into the
 * gguf's mapping: it must not outlive `g`. */
SLIM_HIDDEN slim_status slim_vocab_from_gguf(const slim_gguf *g, slim_vocab **out);
/* The vocab of a Hugging Face model directory: tokenizer.json (required),
 * tokenizer_config.json and generation_config.json (optional). */
SLIM_HIDDEN slim_status slim_vocab_from_hf_dir(const char *dir, slim_vocab **out);
/* The chat template text (tokenizer_config.json "chat_template", or
 * chat_template.jinja in the directory), or NULL.  Lives as long as the vocab. */
SLIM_HIDDEN const char *slim_vocab_chat_template(const slim_vocab *v);
SLIM_HIDDEN void slim_vocab_free(slim_vocab *v);

SLIM_HIDDEN int32_t slim_vocab_size(const slim_vocab *v);
SLIM_HIDDEN int32_t slim_vocab_bos(const slim_vocab *v); /* -1 if none */
SLIM_HIDDEN int32_t slim_vocab_eos(const slim_vocab *v); /* -1 if none */
/* True for tokens that end generation (EOS, EOT where the vocab has one). */
SLIM_HIDDEN bool slim_vocab_is_eog(const slim_vocab *v, int32_t token);

/* The semantics of the public slim_tokenize / slim_detokenize /
 * slim_token_to_piece / slim_token_text (see slim.h), for this vocab. */
SLIM_HIDDEN slim_status slim_vocab_tokenize(const slim_vocab *v, const char *text, size_t len,
                                            uint32_t flags, int32_t *buf, size_t cap,
                                            size_t *n_out);
SLIM_HIDDEN slim_status slim_vocab_detokenize(const slim_vocab *v, const int32_t *tokens,
                                              size_t n_tokens, uint32_t flags, char *buf,
                                              size_t cap, size_t *n_out);
SLIM_HIDDEN slim_status slim_vocab_token_to_piece(const slim_vocab *v, int32_t token,
                                                  uint32_t flags, char *buf, size_t cap,
                                                  size_t *n_out);
SLIM_HIDDEN const char *slim_vocab_token_text(const slim_vocab *v, int32_t token);

#endif
