/* The generic decoder forward pass, written once for every architecture: the
 * descriptor's flags choose the norms, activation and attention variants. */
#include <math.h>
#include <string.h>

#include "runtime/context.h"

static void softcap(float *x, int64_t n, float cap) {
    for (int64_t i = 0; i < n; i++)
        x[i] = cap * tanhf(x[i] / cap);
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

    ops->rmsnorm(a->h, a->x, l->attn_norm.data, E, T, hp->norm_eps);
    if ((st = ops->matmul(&ctx->exec, &l->wq, a->h, T, a->q)) ||
        (st = ops->matmul(&ctx->exec, &l->wk, a->h, T, a->k)) ||
        (st = ops->matmul(&ctx->exec, &l->wv, a->h, T, a->v)))
        return st;
    if (l->bq.name) ops->add_bias(a->q, l->bq.data, Qw, T);
    if (l->bk.name) ops->add_bias(a->k, l->bk.data, KVw, T);
    if (l->bv.name) ops->add_bias(a->v, l->bv.data, KVw, T);
    if (m->arch->qk_norm) {
        ops->rmsnorm(a->q, a->q, l->q_norm.data, hd, (int64_t)T * nh, hp->norm_eps);
        ops->rmsnorm(a->k, a->k, l->k_norm.data, hd, (int64_t)T * nkv, hp->norm_eps);
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
        .neox = m->arch->rope_neox,
    };
    ops->rope(a->q, T, &rope);
    rope.n_heads = nkv;
    ops->rope(a->k, T, &rope);
    ops->scale(a->q, hp->attn_scale, (int64_t)T * Qw);
    ops->kv_store(ctx->k_cache[il], a->k, T, KVw, ctx->n_past);
    ops->kv_store(ctx->v_cache[il], a->v, T, KVw, ctx->n_past);
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
    if ((st = ops->matmul(&ctx->exec, &l->wo, a->h, T, a->o))) return st;
    if (m->arch->post_norms) ops->rmsnorm(a->o, a->o, l->post_attn_norm.data, E, T, hp->norm_eps);
    ops->add(a->x, a->o, (int64_t)T * E);
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
    ops->rmsnorm(a->h, a->x, l->ffn_norm.data, E, T, hp->norm_eps);
    if ((st = ops->matmul(&ctx->exec, &l->w_gate, a->h, T, a->gate)) ||
        (st = ops->matmul(&ctx->exec, &l->w_up, a->h, T, a->up)))
        return st;
    ops->act_mul(a->gate, a->up, (int64_t)T * F, m->arch->act);
    if ((st = ops->matmul(&ctx->exec, &l->w_down, a->gate, T, a->o))) return st;
    if (m->arch->post_norms) ops->rmsnorm(a->o, a->o, l->post_ffn_norm.data, E, T, hp->norm_eps);
    ops->add(a->x, a->o, (int64_t)T * E);
    return SLIM_OK;
}

slim_status slim_forward(slim_context *ctx, const int32_t *tokens, int32_t T, float *logits_all) {
    const slim_model *m = ctx->model;
    const slim_hparams *hp = &m->hp;
    const slim_backend_ops *ops = ctx->ops;
    slim_activations *a = &ctx->act;
    const int64_t E = hp->n_embd, V = hp->n_vocab;
    slim_status st;

    for (int32_t t = 0; t < T; t++) {
        ops->get_row(&m->tok_embd, tokens[t], a->x + t * E);
        if (hp->embd_scale != 1.0f) ops->scale(a->x + t * E, hp->embd_scale, E);
    }
    for (int il = 0; il < hp->n_layer; il++) {
        if ((st = attention_block(ctx, il, T)) || (st = ffn_block(ctx, il, T))) return st;
    }
    /* Logits: every row when asked, else only the last token's. */
    const int32_t first = logits_all ? 0 : T - 1;
    ops->rmsnorm(a->h, a->x + first * E, m->output_norm.data, E, T - first, hp->norm_eps);
    float *dst = logits_all ? logits_all : a->logits;
    if ((st = ops->matmul(&ctx->exec, &m->output, a->h, T - first, dst))) return st;
    if (hp->final_softcap > 0) softcap(dst, (int64_t)(T - first) * V, hp->final_softcap);
    if (logits_all) memcpy(a->logits, logits_all + (int64_t)(T - 1) * V, (size_t)V * sizeof(float));
    return SLIM_OK;
}
