/* Public entry points that are thin: model introspection and the
 * tokenizer calls (argument checks here, the work in lib/tokenizer). */
#include <stdio.h>
#include <string.h>

#include "model/model.h"
#include "quant/dtype.h"

/* Copy the fields a caller's (possibly older, smaller) struct has room for. */
#define CHECK_STRUCT(fn, ptr, type)                                                                \
    do {                                                                                           \
        if (!(ptr)) return slim_error(SLIM_ERR_INVALID_ARG, fn ": output struct is NULL");         \
        if ((ptr)->struct_size < sizeof(size_t) || (ptr)->struct_size > sizeof(type))              \
            return slim_error(SLIM_ERR_INVALID_ARG, fn ": struct_size %zu is not a known size",    \
                              (ptr)->struct_size);                                                 \
    } while (0)

slim_status slim_model_get_info(const slim_model *m, slim_model_info *info) {
    if (!m) return slim_error(SLIM_ERR_INVALID_ARG, "slim_model_get_info: model is NULL");
    CHECK_STRUCT("slim_model_get_info", info, slim_model_info);
    const slim_hparams *hp = &m->hp;
    slim_model_info full = {
        .struct_size = info->struct_size,
        .architecture = m->arch->name,
        .name = m->name,
        .file_type = m->file_type,
        .n_params = m->n_params,
        .file_size = m->file_size,
        .n_vocab = hp->n_vocab,
        .n_ctx_train = hp->n_ctx_train,
        .n_embd = hp->n_embd,
        .n_layer = hp->n_layer,
        .n_head = hp->n_head,
        .n_head_kv = hp->n_head_kv,
        .head_dim = hp->head_dim,
        .bos = slim_vocab_bos(m->vocab),
        .eos = slim_vocab_eos(m->vocab),
    };
    memcpy(info, &full, info->struct_size);
    return SLIM_OK;
}

/* A Hugging Face directory has no GGUF metadata: its config is config.json. */
int64_t slim_model_meta_count(const slim_model *m) {
    return m && m->gguf ? (int64_t)m->gguf->n_kv : 0;
}

static slim_status copy_out(const char *fn, const char *src, char *buf, size_t cap) {
    size_t n = strlen(src);
    if (!buf || cap == 0) return SLIM_OK;
    if (n + 1 > cap) {
        memcpy(buf, src, cap - 1);
        buf[cap - 1] = '\0';
        return slim_error(SLIM_ERR_BUFFER_TOO_SMALL, "%s: %zu bytes needed, buffer has %zu", fn,
                          n + 1, cap);
    }
    memcpy(buf, src, n + 1);
    return SLIM_OK;
}

slim_status slim_model_meta_get(const slim_model *m, int64_t index, char *key, size_t key_cap,
                                char *value, size_t value_cap) {
    if (!m) return slim_error(SLIM_ERR_INVALID_ARG, "slim_model_meta_get: model is NULL");
    if (index < 0 || index >= slim_model_meta_count(m))
        return slim_error(SLIM_ERR_INVALID_ARG, "slim_model_meta_get: index %lld outside 0..%lld",
                          (long long)index, (long long)slim_model_meta_count(m) - 1);
    if ((!key && key_cap) || (!value && value_cap))
        return slim_error(SLIM_ERR_INVALID_ARG,
                          "slim_model_meta_get: a NULL buffer with a non-zero capacity");
    const slim_gguf_kv *kv = &m->gguf->kv[index];
    char text[512];
    slim_gguf_format_value(kv, text, sizeof text);
    slim_status st = copy_out("slim_model_meta_get", kv->key, key, key_cap);
    slim_status st2 = copy_out("slim_model_meta_get", text, value, value_cap);
    return st ? st : st2;
}

int64_t slim_model_tensor_count(const slim_model *m) {
    if (!m) return 0;
    return m->gguf ? (int64_t)m->gguf->n_tensors : (int64_t)m->st->n_tensors;
}

/* A safetensors tensor described like a GGUF one (ne[0] fastest). */
static slim_tensor_info st_info(const slim_model *m, int64_t index, size_t struct_size) {
    const slim_st_tensor *t = m->st->tensors[index];
    slim_tensor_info info = {.struct_size = struct_size,
                             .name = t->name,
                             .type = slim_st_dtype_name(t->dtype),
                             .n_dims = t->n_dims,
                             .ne = {1, 1, 1, 1},
                             .offset = t->offset,
                             .size = t->size};
    for (int d = 0; d < t->n_dims && d < 4; d++)
        info.ne[d] = t->shape[t->n_dims - 1 - d];
    return info;
}

slim_status slim_model_tensor_get(const slim_model *m, int64_t index, slim_tensor_info *info) {
    if (!m) return slim_error(SLIM_ERR_INVALID_ARG, "slim_model_tensor_get: model is NULL");
    CHECK_STRUCT("slim_model_tensor_get", info, slim_tensor_info);
    if (index < 0 || index >= slim_model_tensor_count(m))
        return slim_error(SLIM_ERR_INVALID_ARG, "slim_model_tensor_get: index %lld outside 0..%lld",
                          (long long)index, (long long)slim_model_tensor_count(m) - 1);
    if (!m->gguf) {
        const slim_tensor_info full = st_info(m, index, info->struct_size);
        memcpy(info, &full, info->struct_size);
        return SLIM_OK;
    }
    const slim_gguf_tensor *t = &m->gguf->tensors[index];
    slim_tensor_info full = {
        .struct_size = info->struct_size,
        .name = t->name,
        .type = slim_dtype_name(t->type),
        .n_dims = t->n_dims,
        .ne = {t->ne[0], t->ne[1], t->ne[2], t->ne[3]},
        .offset = t->offset,
        .size = t->size,
    };
    memcpy(info, &full, info->struct_size);
    return SLIM_OK;
}

/* A checkpoint directory without tokenizer files runs on token ids only. */
static slim_status no_vocab(const char *fn) {
    return slim_error(SLIM_ERR_UNSUPPORTED, "%s: the model has no tokenizer (no tokenizer.json)",
                      fn);
}

slim_status slim_tokenize(const slim_model *m, const char *text, size_t len, uint32_t flags,
                          slim_token *buf, size_t cap, size_t *n_out) {
    if (!m || !n_out || (!text && len))
        return slim_error(SLIM_ERR_INVALID_ARG, "slim_tokenize: model, text or n_out is NULL");
    if (flags & ~(uint32_t)(SLIM_TOKENIZE_ADD_BOS | SLIM_TOKENIZE_PARSE_SPECIAL))
        return slim_error(SLIM_ERR_INVALID_ARG, "slim_tokenize: unknown flags 0x%x", flags);
    if (!buf && cap)
        return slim_error(SLIM_ERR_INVALID_ARG, "slim_tokenize: buf is NULL but cap is %zu", cap);
    if (!m->vocab) return no_vocab("slim_tokenize");
    return slim_vocab_tokenize(m->vocab, text ? text : "", len, flags, buf, cap, n_out);
}

slim_status slim_detokenize(const slim_model *m, const slim_token *tokens, size_t n_tokens,
                            uint32_t flags, char *buf, size_t cap, size_t *n_out) {
    if (!m || !n_out || (!tokens && n_tokens))
        return slim_error(SLIM_ERR_INVALID_ARG, "slim_detokenize: model, tokens or n_out is NULL");
    if (flags & ~(uint32_t)SLIM_DETOKENIZE_RENDER_SPECIAL)
        return slim_error(SLIM_ERR_INVALID_ARG, "slim_detokenize: unknown flags 0x%x", flags);
    if (!buf && cap)
        return slim_error(SLIM_ERR_INVALID_ARG, "slim_detokenize: buf is NULL but cap is %zu", cap);
    if (!m->vocab) return no_vocab("slim_detokenize");
    return slim_vocab_detokenize(m->vocab, tokens, n_tokens, flags, buf, cap, n_out);
}

slim_status slim_token_to_piece(const slim_model *m, slim_token token, uint32_t flags, char *buf,
                                size_t cap, size_t *n_out) {
    if (!m || !n_out)
        return slim_error(SLIM_ERR_INVALID_ARG, "slim_token_to_piece: model or n_out is NULL");
    if (flags & ~(uint32_t)SLIM_DETOKENIZE_RENDER_SPECIAL)
        return slim_error(SLIM_ERR_INVALID_ARG, "slim_token_to_piece: unknown flags 0x%x", flags);
    if (!buf && cap)
        return slim_error(SLIM_ERR_INVALID_ARG, "slim_token_to_piece: buf is NULL but cap is %zu",
                          cap);
    if (!m->vocab) return no_vocab("slim_token_to_piece");
    return slim_vocab_token_to_piece(m->vocab, token, flags, buf, cap, n_out);
}

const char *slim_token_text(const slim_model *m, slim_token token) {
    return m && m->vocab ? slim_vocab_token_text(m->vocab, token) : NULL;
}
