/* Context lifetime, the paged KV cache, and prefill / decode in n_batch
 * chunks (one sequence over the identity block table). */
#include "runtime/context.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The single-sequence API's block size. */
enum { DEFAULT_BLOCK = 16 };

slim_context_params slim_context_default_params(void) {
    return (slim_context_params){.struct_size = sizeof(slim_context_params)};
}

static void *alloc_floats(const slim_backend_ops *ops, int64_t n, bool *ok) {
    void *p = ops->alloc((size_t)n * sizeof(float));
    if (!p) *ok = false;
    return p;
}

/* Detach every adapter and release the LoRA scratch. */
static void lora_state_free(slim_context *ctx) {
    slim_lora_state *ls = &ctx->lora;
    for (int32_t i = 0; i < ls->n; i++)
        slim_lora_release(ls->list[i].lora);
    free(ls->list);
    free(ls->rows);
    free(ls->n_rows);
    ctx->ops->release(ls->t);
    ctx->ops->release(ls->u);
    ctx->ops->release(ls->xg);
    memset(ls, 0, sizeof *ls);
}

void slim_context_free(slim_context *ctx) {
    if (!ctx) return;
    const slim_backend_ops *ops = ctx->ops;
    lora_state_free(ctx);
    if (ctx->k_cache)
        for (int32_t il = 0; il < ctx->model->hp.n_layer; il++)
            ops->release(ctx->k_cache[il]);
    if (ctx->v_cache)
        for (int32_t il = 0; il < ctx->model->hp.n_layer; il++)
            ops->release(ctx->v_cache[il]);
    free(ctx->k_cache);
    free(ctx->v_cache);
    free(ctx->ident_blocks);
    free(ctx->step_pos);
    free(ctx->step_seq);
    free(ctx->step_row);
    free(ctx->step_idx);
    free(ctx->step_want);
    free(ctx->step_seqs);
    free(ctx->step_swa_row);
    free(ctx->step_swa_seqs);
    slim_activations *a = &ctx->act;
    float *bufs[] = {a->x, a->h, a->q, a->k, a->v, a->o, a->gate, a->up, a->logits_dev};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++)
        ops->release(bufs[i]);
    ops->release_host(a->logits);
    free(a->attn_scratch);
    ops->exec_free(&ctx->exec); /* safe before or after a failed exec_init */
    slim_threadpool_free(ctx->exec.pool);
    free(ctx);
}

static slim_status context_alloc(slim_context *ctx) {
    const slim_hparams *hp = &ctx->model->hp;
    const slim_backend_ops *ops = ctx->ops;
    const int64_t B = ctx->n_batch, E = hp->n_embd, Qw = (int64_t)hp->n_head * hp->head_dim,
                  KVw = (int64_t)hp->n_head_kv * hp->head_dim, F = hp->n_ff;
    const int64_t widest = E > Qw ? (E > F ? E : F) : (Qw > F ? Qw : F);
    const bool device = ops->weights_upload != NULL;
    /* A device backend computes the output matrix for a few rows at a time
     * (a batch of 262k-entry rows would not fit); the CPU writes the caller's rows. */
    ctx->logits_rows = device ? (ctx->n_batch < 8 ? ctx->n_batch : 8) : ctx->n_batch;
    bool ok = true;
    slim_activations *a = &ctx->act;
    a->x = alloc_floats(ops, B * E, &ok);
    a->h = alloc_floats(ops, B * (E > Qw ? E : Qw), &ok);
    a->q = alloc_floats(ops, B * Qw, &ok);
    a->k = alloc_floats(ops, B * KVw, &ok);
    a->v = alloc_floats(ops, B * KVw, &ok);
    a->o = alloc_floats(ops, B * E, &ok);
    a->gate = alloc_floats(ops, B * F, &ok);
    a->up = alloc_floats(ops, B * F, &ok);
    if (device) a->logits_dev = alloc_floats(ops, (int64_t)ctx->logits_rows * hp->n_vocab, &ok);
    if (!(a->logits = ops->alloc_host((size_t)hp->n_vocab * sizeof(float)))) ok = false;
    if (!device) {
        a->attn_scratch = malloc((size_t)ctx->n_threads * (size_t)ctx->n_ctx * sizeof(float));
        if (!a->attn_scratch) ok = false;
    }
    ctx->k_cache = calloc((size_t)hp->n_layer, sizeof *ctx->k_cache);
    ctx->v_cache = calloc((size_t)hp->n_layer, sizeof *ctx->v_cache);
    const int32_t n_ident = (ctx->n_ctx + ctx->kv_block_size - 1) / ctx->kv_block_size;
    ctx->ident_blocks = malloc((size_t)n_ident * sizeof(int32_t));
    ctx->step_pos = malloc((size_t)B * sizeof(int32_t));
    ctx->step_seq = calloc((size_t)B, sizeof(int32_t));
    ctx->step_row = malloc((size_t)B * sizeof(int32_t));
    ctx->step_idx = malloc((size_t)B * sizeof(int32_t));
    ctx->step_want = malloc((size_t)B);
    if (!ok || !ctx->k_cache || !ctx->v_cache || !ctx->ident_blocks || !ctx->step_pos ||
        !ctx->step_seq || !ctx->step_row || !ctx->step_idx || !ctx->step_want)
        return slim_error(SLIM_ERR_NOMEM, "slim_context_create: out of %s memory for buffers",
                          ops->name);
    for (int32_t i = 0; i < n_ident; i++)
        ctx->ident_blocks[i] = i;
    if (ctx->swa_split) {
        ctx->step_swa_row = malloc((size_t)B * sizeof(int32_t));
        if (!ctx->step_swa_row)
            return slim_error(SLIM_ERR_NOMEM, "slim_context_create: out of memory for buffers");
    }
    for (int32_t il = 0; il < hp->n_layer; il++) {
        const int32_t nb = hp->layer_swa[il] ? ctx->n_swa_blocks : ctx->n_kv_blocks;
        const size_t cache_bytes = (size_t)nb * (size_t)ctx->kv_block_size * (size_t)KVw *
                                   (ctx->exec.kv_f32 ? sizeof(float) : sizeof(uint16_t));
        ctx->k_cache[il] = ops->alloc(cache_bytes);
        ctx->v_cache[il] = ops->alloc(cache_bytes);
        if (!ctx->k_cache[il] || !ctx->v_cache[il])
            return slim_error(SLIM_ERR_NOMEM,
                              "slim_context_create: out of %s memory for a KV cache of %d tokens "
                              "(%zu bytes per layer)",
                              ops->name, nb * ctx->kv_block_size, 2 * cache_bytes);
    }
    const slim_exec_shape shape = {.n_batch = ctx->n_batch,
                                   .n_ctx = ctx->n_ctx,
                                   .n_head = hp->n_head,
                                   .head_dim = hp->head_dim,
                                   .widest = widest};
    return ops->exec_init(&ctx->exec, &shape);
}

/* block_size 0: the single-sequence context (DEFAULT_BLOCK, the blocks
 * n_ctx needs, n_batch at most n_ctx). */
static slim_status context_create(const slim_model *model, const slim_context_params *params,
                                  int32_t block_size, int32_t n_blocks, int32_t n_swa_blocks,
                                  slim_context **out) {
    if (!out) return slim_error(SLIM_ERR_INVALID_ARG, "slim_context_create: out is NULL");
    *out = NULL;
    if (!model) return slim_error(SLIM_ERR_INVALID_ARG, "slim_context_create: model is NULL");
    slim_context_params p = slim_context_default_params();
    if (params) {
        if (params->struct_size < sizeof(size_t) + sizeof(int32_t) ||
            params->struct_size > sizeof p)
            return slim_error(SLIM_ERR_INVALID_ARG,
                              "slim_context_create: params->struct_size %zu is not a known size",
                              params->struct_size);
        memcpy(&p, params, params->struct_size);
    }
    const int32_t train = model->hp.n_ctx_train;
    if (p.n_ctx < 0 || p.n_ctx > train)
        return slim_error(SLIM_ERR_INVALID_ARG,
                          "slim_context_create: n_ctx %d outside 0..%d (the "
                          "model's training context)",
                          p.n_ctx, train);
    if (p.n_threads < 0 || p.n_threads > 512)
        return slim_error(SLIM_ERR_INVALID_ARG, "slim_context_create: n_threads %d outside 0..512",
                          p.n_threads);
    if (p.n_batch < 0 || p.n_batch > 8192)
        return slim_error(SLIM_ERR_INVALID_ARG, "slim_context_create: n_batch %d outside 0..8192",
                          p.n_batch);
    if (p.kv_type != SLIM_KV_F16 && p.kv_type != SLIM_KV_F32)
        return slim_error(SLIM_ERR_INVALID_ARG,
                          "slim_context_create: kv_type %d is not a slim_kv_type", p.kv_type);
    if (p.kv_type == SLIM_KV_F32 && model->ops->weights_upload)
        return slim_error(SLIM_ERR_UNSUPPORTED,
                          "slim_context_create: an F32 KV cache needs the CPU backend (%s keeps "
                          "fp16)",
                          model->ops->name);
    if (block_size < 0 || block_size > 4096 ||
        (block_size && (n_blocks < 1 || n_blocks > INT32_MAX / block_size)))
        return slim_error(SLIM_ERR_INVALID_ARG,
                          "slim_context_create_paged: %d blocks of %d rows: block size outside "
                          "1..4096, or not 1..%d rows",
                          n_blocks, block_size, INT32_MAX);
    slim_context *ctx = calloc(1, sizeof *ctx);
    if (!ctx) return slim_error(SLIM_ERR_NOMEM, "slim_context_create: out of memory");
    ctx->model = model;
    ctx->exec.kv_f32 = p.kv_type == SLIM_KV_F32;
    ctx->ops = model->ops;
    ctx->n_ctx = p.n_ctx ? p.n_ctx : (train < 4096 ? train : 4096);
    ctx->n_batch = p.n_batch ? p.n_batch : 512;
    ctx->rope_factors = slim_model_rope_factors(model, ctx->n_ctx);
    if (block_size) {
        ctx->kv_block_size = block_size;
        ctx->n_kv_blocks = n_blocks;
    } else {
        if (ctx->n_batch > ctx->n_ctx) ctx->n_batch = ctx->n_ctx;
        ctx->kv_block_size = DEFAULT_BLOCK;
        ctx->n_kv_blocks = (ctx->n_ctx + DEFAULT_BLOCK - 1) / DEFAULT_BLOCK;
    }
    ctx->n_swa_blocks = ctx->n_kv_blocks;
    bool any_swa = false;
    for (int32_t il = 0; il < model->hp.n_layer; il++)
        any_swa |= model->hp.layer_swa[il];
    /* The CPU backend reads each op's tables from ex->batch, so the sliding
     * layers can use their own; a device backend uploads one set per step. */
    if (block_size && any_swa && n_swa_blocks > 0 && n_swa_blocks < n_blocks &&
        !strcmp(model->ops->name, "cpu")) {
        ctx->n_swa_blocks = n_swa_blocks;
        ctx->swa_split = true;
    }
    long online = sysconf(_SC_NPROCESSORS_ONLN);
    ctx->n_threads = p.n_threads ? p.n_threads : (online > 0 ? (int32_t)online : 1);
    slim_status st = slim_threadpool_create(ctx->n_threads, &ctx->exec.pool);
    if (!st) st = context_alloc(ctx);
    if (st) {
        slim_context_free(ctx);
        return st;
    }
    const slim_hparams *hp = &model->hp;
    slim_log(SLIM_LOG_INFO,
             "context: %s, n_ctx %d, n_batch %d, %d threads, KV cache %.1f MiB (%s, %d blocks of "
             "%d)",
             ctx->ops->name, ctx->n_ctx, ctx->n_batch, ctx->n_threads,
             2.0 * hp->n_layer * ctx->n_kv_blocks * ctx->kv_block_size * hp->n_head_kv *
                 hp->head_dim * (ctx->exec.kv_f32 ? 4 : 2) / (1 << 20),
             ctx->exec.kv_f32 ? "f32" : "fp16", ctx->n_kv_blocks, ctx->kv_block_size);
    *out = ctx;
    return SLIM_OK;
}

slim_status slim_context_create(const slim_model *model, const slim_context_params *params,
                                slim_context **out) {
    return context_create(model, params, 0, 0, 0, out);
}

slim_status slim_context_create_paged(const slim_model *m, const slim_context_params *p,
                                      int32_t block_size, int32_t n_blocks, slim_context **out) {
    if (block_size < 1)
        return slim_error(SLIM_ERR_INVALID_ARG,
                          "slim_context_create_paged: block size %d is not positive", block_size);
    return context_create(m, p, block_size, n_blocks, 0, out);
}

slim_status slim_context_create_paged_swa(const slim_model *m, const slim_context_params *p,
                                          int32_t block_size, int32_t n_blocks,
                                          int32_t n_swa_blocks, slim_context **out) {
    if (block_size < 1)
        return slim_error(SLIM_ERR_INVALID_ARG,
                          "slim_context_create_paged: block size %d is not positive", block_size);
    return context_create(m, p, block_size, n_blocks, n_swa_blocks, out);
}

/* kind: 0 global layers, 1 sliding layers, 2 both. */
static void copy_block(slim_context *ctx, int32_t dst, int32_t src, int kind) {
    const int32_t nb = kind == 1 ? ctx->n_swa_blocks : ctx->n_kv_blocks;
    if (dst == src || dst < 0 || src < 0 || dst >= nb || src >= nb) return;
    const slim_hparams *hp = &ctx->model->hp;
    const size_t row = (size_t)hp->n_head_kv * (size_t)hp->head_dim *
                       (ctx->exec.kv_f32 ? sizeof(float) : sizeof(uint16_t));
    const size_t block = row * (size_t)ctx->kv_block_size;
    for (int32_t il = 0; il < hp->n_layer; il++) {
        if (kind != 2 && hp->layer_swa[il] != (kind == 1)) continue;
        ctx->ops->copy(&ctx->exec, (char *)ctx->k_cache[il] + (size_t)dst * block,
                       (char *)ctx->k_cache[il] + (size_t)src * block, block);
        ctx->ops->copy(&ctx->exec, (char *)ctx->v_cache[il] + (size_t)dst * block,
                       (char *)ctx->v_cache[il] + (size_t)src * block, block);
    }
}

void slim_kv_copy_block(slim_context *ctx, int32_t dst, int32_t src) {
    if (ctx) copy_block(ctx, dst, src, 2);
}

void slim_kv_copy_block_kind(slim_context *ctx, int32_t dst, int32_t src, bool swa) {
    if (ctx) copy_block(ctx, dst, src, ctx->swa_split ? (swa ? 1 : 0) : 2);
}

void slim_context_reset(slim_context *ctx) {
    if (!ctx) return;
    ctx->n_past = 0;
    ctx->has_logits = false;
}

slim_status slim_context_truncate(slim_context *ctx, int32_t n_past) {
    if (!ctx) return slim_error(SLIM_ERR_INVALID_ARG, "slim_context_truncate: ctx is NULL");
    if (n_past < 0 || n_past > ctx->n_past)
        return slim_error(SLIM_ERR_INVALID_ARG, "slim_context_truncate: n_past %d outside 0..%d",
                          n_past, ctx->n_past);
    /* The cache rows at positions >= n_past stay as they are: attention reads
     * only positions < n_past, and the next forward pass overwrites them. */
    if (n_past < ctx->n_past) {
        ctx->n_past = n_past;
        ctx->has_logits = false;
    }
    return SLIM_OK;
}

int32_t slim_context_n_past(const slim_context *ctx) { return ctx ? ctx->n_past : 0; }
int32_t slim_context_n_ctx(const slim_context *ctx) { return ctx ? ctx->n_ctx : 0; }

const float *slim_get_logits(const slim_context *ctx) {
    return ctx && ctx->has_logits ? ctx->act.logits : NULL;
}

slim_status slim_prefill(slim_context *ctx, const slim_token *tokens, size_t n_tokens,
                         float *all_logits) {
    if (!ctx) return slim_error(SLIM_ERR_INVALID_ARG, "slim_prefill: ctx is NULL");
    if (!tokens || n_tokens == 0)
        return slim_error(SLIM_ERR_INVALID_ARG, "slim_prefill: no tokens");
    if (n_tokens > (size_t)(ctx->n_ctx - ctx->n_past))
        return slim_error(SLIM_ERR_CONTEXT_FULL,
                          "slim_prefill: %zu tokens do not fit: %d of %d context positions used",
                          n_tokens, ctx->n_past, ctx->n_ctx);
    const int32_t n_vocab = ctx->model->hp.n_vocab;
    for (size_t i = 0; i < n_tokens; i++)
        if (tokens[i] < 0 || tokens[i] >= n_vocab)
            return slim_error(SLIM_ERR_INVALID_ARG,
                              "slim_prefill: token %zu has id %d outside 0..%d", i, tokens[i],
                              n_vocab - 1);
    for (size_t done = 0; done < n_tokens;) {
        int32_t chunk = (int32_t)(n_tokens - done < (size_t)ctx->n_batch ? n_tokens - done
                                                                         : (size_t)ctx->n_batch);
        float *rows = all_logits ? all_logits + done * (size_t)n_vocab : NULL;
        slim_status st = slim_forward(ctx, tokens + done, chunk, rows);
        if (st) {
            ctx->has_logits = false;
            return st;
        }
        ctx->n_past += chunk;
        done += (size_t)chunk;
    }
    ctx->has_logits = true;
    return SLIM_OK;
}

slim_status slim_decode(slim_context *ctx, slim_token token) {
    return slim_prefill(ctx, &token, 1, NULL);
}
