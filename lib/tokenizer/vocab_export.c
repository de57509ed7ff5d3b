/* A slim_vocab back to GGUF tokenizer.ggml.* metadata, as llama.cpp's
 * converters write it: "llama" (SentencePiece: tokens, scores, token_type)
 * or "gpt2" (byte-level BPE: tokens, token_type, merges, pre), the special
 * ids and add_* flags, the chat template.  Token types come back from the
 * attributes; the fix-ups vocab.c applied on load (control tokens found by
 * text, "unused") are ones llama.cpp applies again, so writing their result
 * changes nothing for either reader. */
#include <stdlib.h>
#include <string.h>

#include "format/gguf_write.h"
#include "tokenizer/bpe_pretok.h"
#include "tokenizer/vocab_internal.h"

static int32_t token_type(uint16_t a) {
    if (a & SLIM_ATTR_BYTE) return SLIM_TOKEN_TYPE_BYTE;
    if (a & SLIM_ATTR_UNKNOWN) return SLIM_TOKEN_TYPE_UNKNOWN;
    /* user-defined first: an end-of-generation text turns one into control
     * on load (slim adds the bit, llama.cpp sets it), so it reads back alike */
    if (a & SLIM_ATTR_USER_DEFINED) return SLIM_TOKEN_TYPE_USER_DEFINED;
    if (a & SLIM_ATTR_CONTROL) return SLIM_TOKEN_TYPE_CONTROL;
    if (a & SLIM_ATTR_UNUSED) return SLIM_TOKEN_TYPE_UNUSED;
    if (a & SLIM_ATTR_NORMAL) return SLIM_TOKEN_TYPE_NORMAL;
    return 0; /* undefined */
}

/* A tokenizer.ggml.pre name llama.cpp maps to the same split rules and
 * flags (bpe.c's table), or NULL. */
static const char *pre_name(const slim_vocab *v) {
    static const struct {
        int kind;
        bool clean_spaces, ignore_merges;
        const char *name;
    } names[] = {
        {SLIM_PRE_DEFAULT, true, false, "default"},  {SLIM_PRE_GPT2, true, false, "gpt-2"},
        {SLIM_PRE_GPT2, false, false, "trillion"},   {SLIM_PRE_SMOLLM, false, false, "smollm"},
        {SLIM_PRE_SMOLLM, true, false, "starcoder"}, {SLIM_PRE_LLAMA3, true, true, "llama-bpe"},
        {SLIM_PRE_LLAMA3, true, false, "dbrx"},      {SLIM_PRE_QWEN2, false, false, "qwen2"},
        {SLIM_PRE_QWEN2, true, false, "megrez"},     {SLIM_PRE_TEKKEN, false, true, "tekken"},
        {SLIM_PRE_GPT4O, false, false, "gpt-4o"},
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (names[i].kind == v->pre && names[i].clean_spaces == v->clean_spaces &&
            names[i].ignore_merges == v->ignore_merges)
            return names[i].name;
    return NULL;
}

static slim_status write_merges(const slim_vocab *v, slim_gguf_writer *w) {
    size_t n = (size_t)v->n_merges;
    const char **s = malloc((n ? n : 1) * sizeof *s);
    uint32_t *len = malloc((n ? n : 1) * sizeof *len);
    slim_status st = SLIM_OK;
    if (!s || !len) {
        st = slim_error(SLIM_ERR_NOMEM, "vocabulary export: out of memory");
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        const slim_merge *m = &v->merges[i];
        s[i] = v->merge_buf + m->off;
        if (m->left) {
            len[i] = m->left + 1 + m->right;
        } else if (i + 1 < n) { /* a merge without a space (never matches): as stored */
            len[i] = v->merges[i + 1].off - m->off;
        } else {
            len[i] = 0; /* its length is not kept; empty never matches either */
        }
    }
    st = slim_gguf_writer_kv_str_arr(w, "tokenizer.ggml.merges", s, len, n);
out:
    free(s);
    free(len);
    return st;
}

slim_status slim_vocab_write_gguf(const slim_vocab *v, const char *pre, const char *chat_template,
                                  size_t tmpl_len, slim_gguf_writer *w) {
    slim_status st;
    if (!v) {
        if ((st = slim_gguf_writer_kv_str(w, "tokenizer.ggml.model", "none", 4))) return st;
        return chat_template
                   ? slim_gguf_writer_kv_str(w, "tokenizer.chat_template", chat_template, tmpl_len)
                   : SLIM_OK;
    }
    const char *model;
    if (v->type == SLIM_VOCAB_SPM) {
        model = "llama";
    } else if (v->type == SLIM_VOCAB_BPE) {
        model = "gpt2";
        if (!pre && !(pre = pre_name(v)))
            return slim_error(SLIM_ERR_UNSUPPORTED,
                              "vocabulary export: no tokenizer.ggml.pre of llama.cpp has this "
                              "vocabulary's pre-tokenizer rules (kind %d)",
                              v->pre);
    } else {
        return slim_error(SLIM_ERR_UNSUPPORTED,
                          "vocabulary export: vocabulary kind %d has no GGUF form", v->type);
    }
    const size_t n = (size_t)v->n;
    int32_t *types = malloc(n * sizeof *types);
    if (!types) return slim_error(SLIM_ERR_NOMEM, "vocabulary export: out of memory");
    for (size_t i = 0; i < n; i++)
        types[i] = token_type(v->attr[i]);
    if ((st = slim_gguf_writer_kv_str(w, "tokenizer.ggml.model", model, strlen(model))) ||
        (v->type == SLIM_VOCAB_BPE &&
         (st = slim_gguf_writer_kv_str(w, "tokenizer.ggml.pre", pre, strlen(pre)))) ||
        (st = slim_gguf_writer_kv_str_arr(w, "tokenizer.ggml.tokens", v->text, v->len, n)) ||
        (v->type == SLIM_VOCAB_SPM &&
         (st = slim_gguf_writer_kv_arr(w, "tokenizer.ggml.scores", SLIM_GGUF_FLOAT32, v->score,
                                       n))) ||
        (st = slim_gguf_writer_kv_arr(w, "tokenizer.ggml.token_type", SLIM_GGUF_INT32, types, n)) ||
        (v->type == SLIM_VOCAB_BPE && (st = write_merges(v, w)))) {
        free(types);
        return st;
    }
    free(types);
    for (size_t i = 0; i < SLIM_VOCAB_N_ID_KEYS; i++) {
        const slim_vocab_id_key *k = &slim_vocab_id_keys[i];
        int32_t id;
        memcpy(&id, (const char *)v + k->off, sizeof id);
        if (k->deprecated) continue; /* written under the current names only */
        if (id >= 0 && id < v->n && (st = slim_gguf_writer_kv_u32(w, k->key, (uint32_t)id)))
            return st;
    }
    if ((st = slim_gguf_writer_kv_bool(w, "tokenizer.ggml.add_bos_token", v->add_bos)) ||
        (st = slim_gguf_writer_kv_bool(w, "tokenizer.ggml.add_eos_token", v->add_eos)) ||
        (st = slim_gguf_writer_kv_bool(w, "tokenizer.ggml.add_space_prefix", v->add_space_prefix)))
        return st;
    if (chat_template)
        return slim_gguf_writer_kv_str(w, "tokenizer.chat_template", chat_template, tmpl_len);
    return SLIM_OK;
}
