/* The generic decoder forward pass, written once for every architecture: the
 * descriptor's flags choose the norms, activation and attention variants.
 * Every op goes through the context's backend, so the same code runs on the
 * CPU and on the GPU (where a single-token step is recorded once as a graph
 * and replayed). */
#include <string.h>

#include "runtime/context.h"

/* One weight times the context's activations. */
static slim_status matmul1(slim_context *ctx, const slim_tensor *w, const float *x, int64_t T,
                           float *y) {
    return ctx->ops->matmul(&ctx->exec, 1, &w, x, T, &y);
}

static slim_status attention_block(slim_context *ctx, int il, int32_t T) {
    const slim_model *m = ctx->model;
    const slim_hparams *hp = &m->hp;
    const slim_layer *l = &m->layers[il];
    const slim_backend_ops *ops = ctx->ops;
    slim_activations *a = &ctx->act;
    const int32_t hd = hp->head_dim, nh = hp->n_head, nkv = hp->n_head_kv;
    const int64_t E = hp->n_embd, Qw = (int64_t)nh * hd, KVw = (int64_t)nkv * hd;
    const bool swa = hp->layer_swa[il];
    slim_status st;

    ops->rmsnorm(&ctx->exec, a->h, a->x, l->attn_norm.data, E, T, hp->norm_eps);
    const slim_tensor *qkv[] = {&l->wq, &l->wk, &l->wv};
    float *qkv_out[] = {a->q, a->k, a->v};
    if ((st = ops->matmul(&ctx->exec, 3, qkv, a->h, T, qkv_out))) return st;
    if (ctx->lora.n && (st = slim_lora_apply(ctx, il, SLIM_LORA_QKV, a->h, T, qkv_out))) return st;
    if (l->bq.name) ops->add_bias(&ctx->exec, a->q, l->bq.data, Qw, T);
    if (l->bk.name) ops->add_bias(&ctx->exec, a->k, l->bk.data, KVw, T);
    if (l->bv.name) ops->add_bias(&ctx->exec, a->v, l->bv.data, KVw, T);
    if (m->arch->qk_norm) {
        ops->rmsnorm(&ctx->exec, a->q, a->q, l->q_norm.data, hd, (int64_t)T * nh, hp->norm_eps);
        ops->rmsnorm(&ctx->exec, a->k, a->k, l->k_norm.data, hd, (int64_t)T * nkv, hp->norm_eps);
    }
    slim_rope_args rope = {
        .n_heads = nh,
        .head_dim = hd,
        .n_rot = hp->n_rot,
        .pos0 = ctx->n_past,
        .theta_base = swa ? hp->rope_base_swa : hp->rope_base,
        .freq_scale = swa ? 1.0f : hp->rope_freq_scale,
        .mscale = hp->rope_mscale,
        .freq_factors = ctx->rope_factors,
        .neox = hp->rope_neox,
    };
    ops->rope(&ctx->exec, a->q, T, &rope);
    rope.n_heads = nkv;
    ops->rope(&ctx->exec, a->k, T, &rope);
    ops->scale(&ctx->exec, a->q, hp->attn_scale, (int64_t)T * Qw);
    ops->kv_store(&ctx->exec, ctx->k_cache[il], a->k, T, KVw, ctx->n_past);
    ops->kv_store(&ctx->exec, ctx->v_cache[il], a->v, T, KVw, ctx->n_past);
    const slim_attn_args args = {
        .q = a->q,
        .out = a->h,
        .k_cache = ctx->k_cache[il],
        .v_cache = ctx->v_cache[il],
        .n_tokens = T,
        .pos0 = ctx->n_past,
        .n_head = nh,
        .n_head_kv = nkv,
        .head_dim = hd,
        .window = swa ? hp->swa_window : 0,
        .softcap = hp->attn_softcap,
        .scratch = a->attn_scratch,
        .n_ctx = ctx->n_ctx,
    };
    ops->attention(&ctx->exec, &args);
    if ((st = matmul1(ctx, &l->wo, a->h, T, a->o))) return st;
    if (ctx->lora.n && (st = slim_lora_apply(ctx, il, SLIM_LORA_O, a->h, T, &a->o))) return st;
    if (m->arch->post_norms)
        ops->rmsnorm(&ctx->exec, a->o, a->o, l->post_attn_norm.data, E, T, hp->norm_eps);
    ops->add(&ctx->exec, a->x, a->o, (int64_t)T * E);
    return SLIM_OK;
}

static slim_status ffn_block(slim_context *ctx, int il, int32_t T) {
    const slim_model *m = ctx->model;
    const slim_hparams *hp = &m->hp;
    const slim_layer *l = &m->layers[il];
    const slim_backend_ops *ops = ctx->ops;
    slim_activations *a = &ctx->act;
    const int64_t E = hp->n_embd, F = hp->n_ff;
    slim_status st;
    ops->rmsnorm(&ctx->exec, a->h, a->x, l->ffn_norm.data, E, T, hp->norm_eps);
    const slim_tensor *gate_up[] = {&l->w_gate, &l->w_up};
    float *gate_up_out[] = {a->gate, a->up};
    if ((st = ops->matmul(&ctx->exec, 2, gate_up, a->h, T, gate_up_out))) return st;
    if (ctx->lora.n && (st = slim_lora_apply(ctx, il, SLIM_LORA_GATE_UP, a->h, T, gate_up_out)))
        return st;
    ops->act_mul(&ctx->exec, a->gate, a->up, (int64_t)T * F, m->arch->act);
    if ((st = matmul1(ctx, &l->w_down, a->gate, T, a->o))) return st;
    if (ctx->lora.n && (st = slim_lora_apply(ctx, il, SLIM_LORA_DOWN, a->gate, T, &a->o)))
        return st;
    if (m->arch->post_norms)
        ops->rmsnorm(&ctx->exec, a->o, a->o, l->post_ffn_norm.data, E, T, hp->norm_eps);
    ops->add(&ctx->exec, a->x, a->o, (int64_t)T * E);
    return SLIM_OK;
}

/* Final norm and output matrix for rows [first, T), in chunks of the
 * backend's logits buffer, into logits_all (or act.logits for the last row). */
static slim_status output_block(slim_context *ctx, int32_t T, float *logits_all) {
    const slim_model *m = ctx->model;
    const slim_hparams *hp = &m->hp;
    const slim_backend_ops *ops = ctx->ops;
    slim_activations *a = &ctx->act;
    const int64_t E = hp->n_embd, V = hp->n_vocab;
    const int32_t first = logits_all ? 0 : T - 1;
    for (int32_t r0 = first; r0 < T; r0 += ctx->logits_rows) {
        const int32_t n = T - r0 < ctx->logits_rows ? T - r0 : ctx->logits_rows;
        float *host = logits_all ? logits_all + (int64_t)r0 * V : a->logits;
        /* The CPU writes straight into the host rows; a device backend into its buffer. */
        float *dst = a->logits_dev ? a->logits_dev : host;
        ops->rmsnorm(&ctx->exec, a->h, a->x + (int64_t)r0 * E, m->output_norm.data, E, n,
                     hp->norm_eps);
        slim_status st = matmul1(ctx, &m->output, a->h, n, dst);
        if (st) return st;
        if (hp->final_softcap > 0) ops->softcap(&ctx->exec, dst, hp->final_softcap, (int64_t)n * V);
        ops->download(&ctx->exec, host, dst, (int64_t)n * V);
    }
    return SLIM_OK;
}

static slim_status forward_ops(slim_context *ctx, const int32_t *tokens, int32_t T,
                               float *logits_all) {
    const slim_model *m = ctx->model;
    const slim_hparams *hp = &m->hp;
    slim_status st;
    ctx->ops->get_rows(&ctx->exec, &m->tok_embd, tokens, T, hp->embd_scale, ctx->act.x);
    for (int il = 0; il < hp->n_layer; il++) {
        if ((st = attention_block(ctx, il, T)) || (st = ffn_block(ctx, il, T))) return st;
    }
    return output_block(ctx, T, logits_all);
}

slim_status slim_forward(slim_context *ctx, const int32_t *tokens, int32_t T, float *logits_all) {
    const slim_backend_ops *ops = ctx->ops;
    slim_status st = ops->begin(&ctx->exec, tokens, T, ctx->n_past);
    if (st) return st;
    /* The recorded decode step has no adapters: with some, the ops run eagerly. */
    if (T == 1 && !logits_all && ops->graph_begin && !ctx->lora.n) {
        if (!ops->graph_begin(&ctx->exec)) {
            st = forward_ops(ctx, tokens, T, NULL);
            slim_status end = ops->graph_end(&ctx->exec, st == SLIM_OK);
            if (!st) st = end;
        }
    } else {
        st = forward_ops(ctx, tokens, T, logits_all);
    }
    slim_status fin = ops->finish(&ctx->exec);
    if (st) return st;
    if (fin) return fin;
    if (logits_all)
        memcpy(ctx->act.logits, logits_all + (int64_t)(T - 1) * ctx->model->hp.n_vocab,
               (size_t)ctx->model->hp.n_vocab * sizeof(float));
    return SLIM_OK;
}
