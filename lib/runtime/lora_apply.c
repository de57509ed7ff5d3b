/* Attaching LoRA adapters to a context and applying them in a step: per
 * adapter, the step's tokens that use it, A then B on just their rows (or all
 * rows at once), scaled and added to the site's outputs. */
#include "runtime/lora_apply.h"

#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/context.h"
#include "runtime/step.h"

/* ------------------------------------------------------------------ contexts */

static slim_status grow_scratch(slim_context *ctx, float **buf, int64_t *have, int64_t need) {
    if (need <= *have) return SLIM_OK;
    float *p = ctx->ops->alloc((size_t)need * sizeof(float));
    if (!p)
        return slim_error(SLIM_ERR_NOMEM, "slim_context_attach_lora: out of %s memory",
                          ctx->ops->name);
    ctx->ops->release(*buf);
    *buf = p;
    *have = need;
    return SLIM_OK;
}

slim_status slim_context_attach_lora(slim_context *ctx, slim_lora *lora, float scale) {
    if (!ctx) return slim_error(SLIM_ERR_INVALID_ARG, "slim_context_attach_lora: ctx is NULL");
    if (!lora) return slim_error(SLIM_ERR_INVALID_ARG, "slim_context_attach_lora: lora is NULL");
    if (lora->model != ctx->model)
        return slim_error(SLIM_ERR_INVALID_ARG,
                          "slim_context_attach_lora: the adapter was loaded for another model");
    if (!isfinite(scale))
        return slim_error(SLIM_ERR_INVALID_ARG, "slim_context_attach_lora: scale %g is not finite",
                          (double)scale);
    slim_lora_state *ls = &ctx->lora;
    for (int32_t i = 0; i < ls->n; i++)
        if (ls->list[i].lora == lora) {
            ls->list[i].scale = scale;
            return SLIM_OK;
        }
    const slim_hparams *hp = &ctx->model->hp;
    const int64_t B = ctx->n_batch, Qw = (int64_t)hp->n_head * hp->head_dim;
    int64_t widest = hp->n_embd > hp->n_ff ? hp->n_embd : hp->n_ff;
    if (Qw > widest) widest = Qw;
    slim_status st;
    if ((st = grow_scratch(ctx, &ls->t, &ls->t_floats, B * lora->max_site_rank)) ||
        (st = grow_scratch(ctx, &ls->u, &ls->u_floats, B * lora->max_out)) ||
        (st = grow_scratch(ctx, &ls->xg, &ls->xg_floats, B * widest)))
        return st;
    if (ls->n == ls->cap) {
        const int32_t cap = ls->cap ? 2 * ls->cap : 4;
        slim_lora_attached *v = realloc(ls->list, (size_t)cap * sizeof *v);
        int32_t *rows = realloc(ls->rows, (size_t)cap * (size_t)B * sizeof *rows);
        if (rows) ls->rows = rows;
        int32_t *n_rows = realloc(ls->n_rows, (size_t)cap * sizeof *n_rows);
        if (n_rows) ls->n_rows = n_rows;
        if (v) ls->list = v;
        if (!v || !rows || !n_rows)
            return slim_error(SLIM_ERR_NOMEM, "slim_context_attach_lora: out of memory");
        ls->cap = cap;
    }
    atomic_fetch_add(&lora->refs, 1);
    ls->list[ls->n++] = (slim_lora_attached){.lora = lora, .scale = scale};
    return SLIM_OK;
}

slim_status slim_context_detach_lora(slim_context *ctx, slim_lora *lora) {
    if (!ctx) return slim_error(SLIM_ERR_INVALID_ARG, "slim_context_detach_lora: ctx is NULL");
    slim_lora_state *ls = &ctx->lora;
    for (int32_t i = 0; i < ls->n; i++)
        if (ls->list[i].lora == lora) {
            memmove(ls->list + i, ls->list + i + 1, (size_t)(ls->n - i - 1) * sizeof *ls->list);
            ls->n--;
            slim_lora_release(lora);
            return SLIM_OK;
        }
    return slim_error(SLIM_ERR_INVALID_ARG,
                      "slim_context_detach_lora: the adapter is not attached to this context");
}

slim_status slim_lora_plan(slim_context *ctx, const slim_step *step) {
    slim_lora_state *ls = &ctx->lora;
    ls->active = false;
    for (int32_t i = 0; i < ls->n; i++) {
        int32_t *rows = ls->rows + (int64_t)i * ctx->n_batch, n = 0;
        for (int32_t t = 0; t < step->n_tokens; t++) {
            const int32_t use = step->seqs[step->seq[t]].lora;
            if (use == SLIM_STEP_LORA_ALL || use == i) rows[n++] = t;
        }
        ls->n_rows[i] = n;
        if (n && ls->list[i].scale != 0) ls->active = true;
    }
    return SLIM_OK;
}

slim_status slim_lora_apply(slim_context *ctx, int il, slim_lora_site site, const float *x,
                            int64_t n_tokens, float *const *y) {
    const slim_backend_ops *ops = ctx->ops;
    const slim_lora_state *ls = &ctx->lora;
    const int s = il * SLIM_LORA_N_SITES + (int)site;
    slim_status st;
    for (int32_t i = 0; i < ls->n; i++) {
        const slim_lora *lo = ls->list[i].lora;
        const float scale = ls->list[i].scale;
        const int32_t k0 = lo->first[s], k1 = lo->first[s + 1];
        const int32_t *rows = ls->rows + (int64_t)i * ctx->n_batch;
        const int64_t nr = ls->n_rows[i];
        if (k0 == k1 || scale == 0 || nr == 0) continue; /* scale 0: exactly the base model */
        /* Some tokens only: their rows of x gathered, the sums scattered back. */
        const bool some = nr < n_tokens;
        const float *xa = x;
        if (some) {
            if (!ops->gather_rows || !ops->scatter_add_rows)
                return slim_error(SLIM_ERR_UNSUPPORTED,
                                  "lora: the %s backend runs one adapter set per step", ops->name);
            ops->gather_rows(&ctx->exec, ls->xg, x, rows, nr, lo->pairs[k0].a.ne[0]);
            xa = ls->xg;
        }
        /* Every A of the site reads the same x: one grouped matmul. */
        const slim_tensor *as[3];
        float *ts[3];
        int n = 0;
        int64_t off = 0;
        for (int32_t k = k0; k < k1 && n < 3; k++, n++) {
            as[n] = &lo->pairs[k].a;
            ts[n] = ls->t + off;
            off += nr * lo->pairs[k].a.ne[1];
        }
        if ((st = ops->matmul(&ctx->exec, n, as, xa, nr, ts))) return st;
        for (int j = 0; j < n; j++) {
            const slim_lora_pair *p = &lo->pairs[k0 + j];
            /* Scaling the rank-sized t is cheaper than the output-sized B t. */
            ops->scale(&ctx->exec, ts[j], scale * p->alpha_scale, nr * p->a.ne[1]);
            for (int o = 0; o < p->n_out; o++) {
                float *u = ls->u;
                const slim_tensor *b = &p->b[o];
                if ((st = ops->matmul(&ctx->exec, 1, &b, ts[j], nr, &u))) return st;
                if (some)
                    ops->scatter_add_rows(&ctx->exec, y[p->slot[o]], u, rows, nr, b->ne[1]);
                else
                    ops->add(&ctx->exec, y[p->slot[o]], u, nr * b->ne[1]);
            }
        }
    }
    return SLIM_OK;
}
