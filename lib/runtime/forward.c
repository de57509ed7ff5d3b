/* The generic decoder forward pass, written once for every architecture: the
 * descriptor's flags choose the norms, activation and attention variants.
 * One step runs a batch of tokens from many sequences (runtime/step.h): the
 * step's description goes to the backend once (begin), and rope, kv_store
 * and attention read each token's position, sequence and KV row from it.
 * Every op goes through the context's backend, so the same code runs on the
 * CPU and on the GPU (where a single-token step is recorded once as a graph
 * and replayed). */
#include <stdlib.h>
#include <string.h>

#include "runtime/context.h"
#include "runtime/lora_apply.h"

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
    if (ctx->lora.active && (st = slim_lora_apply(ctx, il, SLIM_LORA_QKV, a->h, T, qkv_out)))
        return st;
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
        .theta_base = swa ? hp->rope_base_swa : hp->rope_base,
        .freq_scale = swa ? 1.0f : hp->rope_freq_scale,
        .mscale = hp->rope_mscale,
        .freq_factors = ctx->rope_factors,
        .neox = hp->rope_neox,
    };
    /* The sliding layers' rows and tables, when they have their own pool. */
    const slim_batch *view = ctx->swa_split && swa ? &ctx->swa_batch : &ctx->step_batch;
    if (ctx->swa_split && ctx->exec.batch != view && (st = ops->begin(&ctx->exec, view))) return st;
    ops->rope(&ctx->exec, a->q, T, &rope);
    rope.n_heads = nkv;
    ops->rope(&ctx->exec, a->k, T, &rope);
    ops->scale(&ctx->exec, a->q, hp->attn_scale, (int64_t)T * Qw);
    ops->kv_store(&ctx->exec, ctx->k_cache[il], a->k, T, KVw);
    ops->kv_store(&ctx->exec, ctx->v_cache[il], a->v, T, KVw);
    const slim_attn_args args = {
        .q = a->q,
        .out = a->h,
        .k_cache = ctx->k_cache[il],
        .v_cache = ctx->v_cache[il],
        .n_tokens = T,
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
    if (ctx->lora.active && (st = slim_lora_apply(ctx, il, SLIM_LORA_O, a->h, T, &a->o))) return st;
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
    if (ctx->lora.active &&
        (st = slim_lora_apply(ctx, il, SLIM_LORA_GATE_UP, a->h, T, gate_up_out)))
        return st;
    ops->act_mul(&ctx->exec, a->gate, a->up, (int64_t)T * F, m->arch->act);
    if ((st = matmul1(ctx, &l->w_down, a->gate, T, a->o))) return st;
    if (ctx->lora.active && (st = slim_lora_apply(ctx, il, SLIM_LORA_DOWN, a->gate, T, &a->o)))
        return st;
    if (m->arch->post_norms)
        ops->rmsnorm(&ctx->exec, a->o, a->o, l->post_ffn_norm.data, E, T, hp->norm_eps);
    ops->add(&ctx->exec, a->x, a->o, (int64_t)T * E);
    return SLIM_OK;
}

/* Final norm and output matrix for the n_want rows of x listed in idx
 * (ascending), into logits (host, n_want rows).  Backends that gather rows
 * take them all at once (in chunks of logits_rows); the others, runs of
 * consecutive rows. */
static slim_status output_block(slim_context *ctx, const int32_t *idx, int32_t n_want,
                                float *logits) {
    const slim_model *m = ctx->model;
    const slim_hparams *hp = &m->hp;
    const slim_backend_ops *ops = ctx->ops;
    slim_activations *a = &ctx->act;
    const int64_t E = hp->n_embd, V = hp->n_vocab;
    for (int32_t w0 = 0; w0 < n_want;) {
        int32_t n = n_want - w0 < ctx->logits_rows ? n_want - w0 : ctx->logits_rows;
        const float *x;
        if (ops->gather_rows) {
            ops->gather_rows(&ctx->exec, a->o, a->x, idx + w0, n, E);
            x = a->o;
        } else {
            int32_t run = 1;
            while (run < n && idx[w0 + run] == idx[w0] + run)
                run++;
            n = run;
            x = a->x + (int64_t)idx[w0] * E;
        }
        float *host = logits + (int64_t)w0 * V;
        /* The CPU writes straight into the host rows; a device backend into its buffer. */
        float *dst = a->logits_dev ? a->logits_dev : host;
        ops->rmsnorm(&ctx->exec, a->h, x, m->output_norm.data, E, n, hp->norm_eps);
        slim_status st = matmul1(ctx, &m->output, a->h, n, dst);
        if (st) return st;
        if (hp->final_softcap > 0) ops->softcap(&ctx->exec, dst, hp->final_softcap, (int64_t)n * V);
        ops->download(&ctx->exec, host, dst, (int64_t)n * V);
        w0 += n;
    }
    return SLIM_OK;
}

static slim_status forward_ops(slim_context *ctx, const int32_t *tokens, int32_t T,
                               const int32_t *idx, int32_t n_want, float *logits) {
    const slim_model *m = ctx->model;
    const slim_hparams *hp = &m->hp;
    slim_status st;
    ctx->ops->get_rows(&ctx->exec, &m->tok_embd, tokens, T, hp->embd_scale, ctx->act.x);
    for (int il = 0; il < hp->n_layer; il++) {
        if ((st = attention_block(ctx, il, T)) || (st = ffn_block(ctx, il, T))) return st;
    }
    return output_block(ctx, idx, n_want, logits);
}

/* Checks the step against the context; fills the backend's view of it. */
static slim_status step_prepare(slim_context *ctx, const slim_step *s, slim_batch *b) {
    const int32_t n_vocab = ctx->model->hp.n_vocab, bs = ctx->kv_block_size;
    if (!s || s->n_tokens < 1 || s->n_tokens > ctx->n_batch || !s->tokens || !s->pos || !s->seq ||
        s->n_seqs < 1 || !s->seqs)
        return slim_error(SLIM_ERR_INVALID_ARG,
                          "slim_forward_step: a step needs 1..%d tokens with their ids, positions "
                          "and sequences, and at least one sequence",
                          ctx->n_batch);
    if (s->n_seqs > ctx->step_seqs_cap) {
        slim_batch_seq *v = realloc(ctx->step_seqs, (size_t)s->n_seqs * sizeof *v);
        if (!v) return slim_error(SLIM_ERR_NOMEM, "slim_forward_step: out of memory");
        ctx->step_seqs = v;
        if (ctx->swa_split) {
            v = realloc(ctx->step_swa_seqs, (size_t)s->n_seqs * sizeof *v);
            if (!v) return slim_error(SLIM_ERR_NOMEM, "slim_forward_step: out of memory");
            ctx->step_swa_seqs = v;
        }
        ctx->step_seqs_cap = s->n_seqs;
    }
    for (int32_t i = 0; i < s->n_seqs; i++) {
        const slim_step_seq *q = &s->seqs[i];
        if (q->n_blocks < 0 || (q->n_blocks && !q->blocks))
            return slim_error(SLIM_ERR_INVALID_ARG,
                              "slim_forward_step: sequence %d has no block table", i);
        if (q->lora != SLIM_STEP_LORA_ALL && q->lora != SLIM_STEP_LORA_NONE &&
            (q->lora < 0 || q->lora >= ctx->lora.n))
            return slim_error(SLIM_ERR_INVALID_ARG,
                              "slim_forward_step: sequence %d asks for adapter %d of %d attached",
                              i, q->lora, ctx->lora.n);
        ctx->step_seqs[i] = (slim_batch_seq){q->blocks, q->n_blocks};
        if (ctx->swa_split) {
            const slim_step_table *w = s->swa_seqs ? &s->swa_seqs[i] : NULL;
            if (!w || w->n_blocks < 0 || (w->n_blocks && !w->blocks))
                return slim_error(SLIM_ERR_INVALID_ARG,
                                  "slim_forward_step: sequence %d has no sliding-window table", i);
            ctx->step_swa_seqs[i] = (slim_batch_seq){w->blocks, w->n_blocks};
        }
    }
    for (int32_t t = 0; t < s->n_tokens; t++) {
        const int32_t sq = s->seq[t], p = s->pos[t];
        if (s->tokens[t] < 0 || s->tokens[t] >= n_vocab)
            return slim_error(SLIM_ERR_INVALID_ARG,
                              "slim_forward_step: token %d has id %d outside 0..%d", t,
                              s->tokens[t], n_vocab - 1);
        if (sq < 0 || sq >= s->n_seqs)
            return slim_error(SLIM_ERR_INVALID_ARG,
                              "slim_forward_step: token %d is in sequence %d of %d", t, sq,
                              s->n_seqs);
        if (p < 0 || p >= ctx->n_ctx || p / bs >= s->seqs[sq].n_blocks)
            return slim_error(SLIM_ERR_INVALID_ARG,
                              "slim_forward_step: token %d at position %d: outside 0..%d or past "
                              "its sequence's %d blocks of %d",
                              t, p, ctx->n_ctx - 1, s->seqs[sq].n_blocks, bs);
        /* every block the token's attention reads must be in the pool */
        if (t + 1 == s->n_tokens || s->seq[t + 1] != sq)
            for (int32_t k = 0; k <= p / bs; k++)
                if (s->seqs[sq].blocks[k] < 0 || s->seqs[sq].blocks[k] >= ctx->n_kv_blocks)
                    return slim_error(SLIM_ERR_INVALID_ARG,
                                      "slim_forward_step: sequence %d's block %d is %d, outside "
                                      "0..%d",
                                      sq, k, s->seqs[sq].blocks[k], ctx->n_kv_blocks - 1);
        /* the sliding table: from the window of the sequence's first token here */
        if (ctx->swa_split && (t == 0 || s->seq[t - 1] != sq)) {
            int32_t last = p;
            for (int32_t u = t + 1; u < s->n_tokens && s->seq[u] == sq; u++)
                last = s->pos[u];
            const int32_t w = ctx->model->hp.swa_window, from = p - w + 1 > 0 ? p - w + 1 : 0;
            const slim_step_table *q = &s->swa_seqs[sq];
            for (int32_t k = from / bs; k <= last / bs; k++)
                if (k >= q->n_blocks || q->blocks[k] < 0 || q->blocks[k] >= ctx->n_swa_blocks)
                    return slim_error(SLIM_ERR_INVALID_ARG,
                                      "slim_forward_step: sequence %d's sliding-window block %d is "
                                      "%d, outside 0..%d",
                                      sq, k, k < q->n_blocks ? q->blocks[k] : -1,
                                      ctx->n_swa_blocks - 1);
        }
    }
    *b = (slim_batch){.n_tokens = s->n_tokens,
                      .tokens = s->tokens,
                      .pos = s->pos,
                      .seq = s->seq,
                      .row = ctx->step_row,
                      .n_seqs = s->n_seqs,
                      .block_size = bs,
                      .seqs = ctx->step_seqs};
    for (int32_t t = 0; t < s->n_tokens; t++)
        ctx->step_row[t] = (int32_t)slim_batch_kv_row(b, s->seq[t], s->pos[t]);
    ctx->step_batch = *b;
    if (ctx->swa_split) {
        ctx->swa_batch = *b;
        ctx->swa_batch.row = ctx->step_swa_row;
        ctx->swa_batch.seqs = ctx->step_swa_seqs;
        for (int32_t t = 0; t < s->n_tokens; t++)
            ctx->step_swa_row[t] =
                (int32_t)slim_batch_kv_row(&ctx->swa_batch, s->seq[t], s->pos[t]);
    }
    return SLIM_OK;
}

slim_status slim_forward_step(slim_context *ctx, const slim_step *step, float *logits) {
    if (!ctx) return slim_error(SLIM_ERR_INVALID_ARG, "slim_forward_step: ctx is NULL");
    slim_batch b;
    slim_status st = step_prepare(ctx, step, &b);
    if (st) return st;
    const int32_t T = step->n_tokens;
    int32_t n_want = 0;
    for (int32_t t = 0; t < T; t++)
        if (step->want && step->want[t]) ctx->step_idx[n_want++] = t;
    if (n_want && !logits)
        return slim_error(SLIM_ERR_INVALID_ARG,
                          "slim_forward_step: %d tokens want logits and logits is NULL", n_want);
    if ((st = slim_lora_plan(ctx, step))) return st;
    const slim_backend_ops *ops = ctx->ops;
    if ((st = ops->begin(&ctx->exec, &ctx->step_batch))) return st;
    /* Decode steps of many sequences: padded to the backend's bucket, recorded once per bucket. */
    const int32_t G = n_want == T && !ctx->lora.active && !ctx->swa_split && ops->graph_rows
                          ? ops->graph_rows(&ctx->exec)
                          : 0;
    const int64_t V = ctx->model->hp.n_vocab;
    float *staged = G >= T ? ops->graph_logits(&ctx->exec, (int64_t)G * V) : NULL;
    if (staged) {
        for (int32_t t = T; t < G; t++)
            ctx->step_idx[t] = t;
        if (!ops->graph_begin(&ctx->exec)) {
            st = forward_ops(ctx, step->tokens, G, ctx->step_idx, G, staged);
            slim_status end = ops->graph_end(&ctx->exec, st == SLIM_OK);
            if (!st) st = end;
        }
        slim_status fin = ops->finish(&ctx->exec);
        ctx->exec.batch = NULL;
        if (!st && !fin) memcpy(logits, staged, (size_t)(T * V) * sizeof(float));
        return st ? st : fin;
    }
    /* The recorded decode step has no adapters and downloads into act.logits. */
    if (T == 1 && n_want == 1 && logits == ctx->act.logits && ops->graph_begin &&
        !ctx->lora.active) {
        if (!ops->graph_begin(&ctx->exec)) {
            st = forward_ops(ctx, step->tokens, T, ctx->step_idx, n_want, logits);
            slim_status end = ops->graph_end(&ctx->exec, st == SLIM_OK);
            if (!st) st = end;
        }
    } else {
        st = forward_ops(ctx, step->tokens, T, ctx->step_idx, n_want, logits);
    }
    slim_status fin = ops->finish(&ctx->exec);
    ctx->exec.batch = NULL;
    return st ? st : fin;
}

slim_status slim_forward(slim_context *ctx, const int32_t *tokens, int32_t T, float *logits_all) {
    const int32_t n_ident = (ctx->n_ctx + ctx->kv_block_size - 1) / ctx->kv_block_size;
    if (n_ident > ctx->n_kv_blocks || ctx->swa_split)
        return slim_error(SLIM_ERR_UNSUPPORTED,
                          "slim_prefill: this context's %d KV blocks do not hold one sequence of "
                          "%d tokens",
                          ctx->n_kv_blocks, ctx->n_ctx);
    for (int32_t t = 0; t < T; t++) {
        ctx->step_pos[t] = ctx->n_past + t;
        ctx->step_want[t] = logits_all != NULL || t == T - 1;
    }
    const slim_step_seq seq = {ctx->ident_blocks, n_ident, SLIM_STEP_LORA_ALL};
    const slim_step step = {.n_tokens = T,
                            .tokens = tokens,
                            .pos = ctx->step_pos,
                            .seq = ctx->step_seq, /* all 0 */
                            .want = ctx->step_want,
                            .n_seqs = 1,
                            .seqs = &seq};
    slim_status st = slim_forward_step(ctx, &step, logits_all ? logits_all : ctx->act.logits);
    if (st) return st;
    if (logits_all)
        memcpy(ctx->act.logits, logits_all + (int64_t)(T - 1) * ctx->model->hp.n_vocab,
               (size_t)ctx->model->hp.n_vocab * sizeof(float));
    return SLIM_OK;
}
