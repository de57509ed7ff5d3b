/* slim_generate: prompt in, tokens streamed out through a callback. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "runtime/constraint.h"
#include "runtime/engine_constrain.h"
#include "runtime/context.h"

slim_generate_params slim_generate_default_params(void) {
    return (slim_generate_params){.struct_size = sizeof(slim_generate_params),
                                  .max_tokens = 128,
                                  .stop_at_eos = 1,
                                  .tokenize_flags = SLIM_TOKENIZE_ADD_BOS};
}

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

enum { FORCED_CAP = 256 };

typedef struct g_piece {
    char small[256], *buf;
    size_t cap;
} g_piece;

/* A generated token: counted, then (unless it ends the generation) its piece
 * to the callback; *stop when the generation is over. */
static slim_status emit(slim_context *ctx, slim_sampler *sampler, const slim_generate_params *p,
                        slim_token tok, g_piece *pc, slim_token_fn on_token, void *user,
                        slim_generate_stats *s, bool *stop) {
    const slim_model *m = ctx->model;
    slim_sampler_accept(sampler, tok);
    s->n_generated++;
    if (p->stop_at_eos && slim_vocab_is_eog(m->vocab, tok)) {
        *stop = true;
        return SLIM_OK;
    }
    size_t n_piece = 0;
    slim_status st = slim_vocab_token_to_piece(m->vocab, tok, 0, pc->buf, pc->cap, &n_piece);
    if (st == SLIM_ERR_BUFFER_TOO_SMALL) { /* a long piece: grow once to its size */
        char *big = realloc(pc->buf == pc->small ? NULL : pc->buf, n_piece);
        if (!big) return slim_error(SLIM_ERR_NOMEM, "slim_generate: out of memory");
        pc->buf = big, pc->cap = n_piece;
        st = slim_vocab_token_to_piece(m->vocab, tok, 0, pc->buf, pc->cap, &n_piece);
    }
    if (st) return st;
    if (on_token && on_token(tok, pc->buf, n_piece, user)) *stop = true;
    if (s->n_generated >= p->max_tokens || ctx->n_past >= ctx->n_ctx) *stop = true;
    return SLIM_OK;
}

slim_status slim_generate(slim_context *ctx, slim_sampler *sampler, const char *prompt,
                          const slim_generate_params *params, slim_token_fn on_token, void *user,
                          slim_generate_stats *stats) {
    if (!ctx || !sampler || !prompt)
        return slim_error(SLIM_ERR_INVALID_ARG, "slim_generate: ctx, sampler or prompt is NULL");
    slim_generate_params p = slim_generate_default_params();
    if (params) {
        if (params->struct_size < sizeof(size_t) + sizeof(int32_t) ||
            params->struct_size > sizeof p)
            return slim_error(SLIM_ERR_INVALID_ARG,
                              "slim_generate: params->struct_size %zu is not a known size",
                              params->struct_size);
        memcpy(&p, params, params->struct_size);
    }
    if (p.max_tokens < 0)
        return slim_error(SLIM_ERR_INVALID_ARG, "slim_generate: max_tokens %d is negative",
                          p.max_tokens);
    if (stats && (stats->struct_size < sizeof(size_t) || stats->struct_size > sizeof *stats))
        return slim_error(SLIM_ERR_INVALID_ARG, "slim_generate: stats->struct_size %zu unknown",
                          stats->struct_size);
    const slim_model *m = ctx->model;
    slim_generate_stats s = {.struct_size = sizeof s};
    size_t n_prompt = 0, len = strlen(prompt);
    slim_status st = slim_tokenize(m, prompt, len, p.tokenize_flags, NULL, 0, &n_prompt);
    if (st) return st;
    if (n_prompt == 0)
        return slim_error(SLIM_ERR_INVALID_ARG, "slim_generate: prompt has no tokens");
    slim_token *toks = malloc(n_prompt * sizeof *toks);
    if (!toks) return slim_error(SLIM_ERR_NOMEM, "slim_generate: out of memory");
    if ((st = slim_tokenize(m, prompt, len, p.tokenize_flags, toks, n_prompt, &n_prompt))) goto out;
    for (size_t i = 0; i < n_prompt; i++)
        slim_sampler_accept_prompt(sampler, toks[i]);
    double t0 = now_ms();
    if ((st = slim_prefill(ctx, toks, n_prompt, NULL))) goto out;
    s.n_prompt = (int32_t)n_prompt;
    s.prompt_ms = now_ms() - t0;
    t0 = now_ms();
    /* With a constraint, the tokens it forces join the sampled one in one
     * prefill chunk (and come first, before anything is sampled). */
    slim_constraint *con = slim_sampler_get_constraint(sampler);
    slim_econ *pre = con ? slim_econ_new() : NULL; /* the next mask during the forward pass */
    slim_token chunk[FORCED_CAP + 1];
    g_piece pc;
    pc.buf = pc.small, pc.cap = sizeof pc.small;
    bool first = true, stop = p.max_tokens == 0;
    while (!stop) {
        size_t n_chunk = 0;
        if (!(first && con)) {
            slim_token tok;
            if ((st = slim_sampler_sample(sampler, slim_get_logits(ctx), m->hp.n_vocab, &tok)))
                break;
            chunk[n_chunk++] = tok;
            if ((st = emit(ctx, sampler, &p, tok, &pc, on_token, user, &s, &stop)) || stop) break;
        }
        first = false;
        size_t nf = 0;
        if (con && slim_constraint_forced(con, slim_sampler_constraint_state(sampler),
                                          chunk + n_chunk, FORCED_CAP, &nf) != SLIM_OK)
            nf = 0; /* a long forced run: sample it */
        for (size_t k = 0; k < nf && !stop && !st; k++) {
            if (s.n_generated >= p.max_tokens) {
                stop = true;
                break;
            }
            st = emit(ctx, sampler, &p, chunk[n_chunk], &pc, on_token, user, &s, &stop);
            n_chunk++;
        }
        if (st || stop || s.n_generated >= p.max_tokens) break;
        if (n_chunk == 0) continue;
        if (ctx->n_past + (int32_t)n_chunk > ctx->n_ctx) break;
        slim_econ_add(pre, sampler);
        slim_econ_kick(pre);
        if ((st = slim_prefill(ctx, chunk, n_chunk, NULL))) break;
    }
    slim_econ_free(pre);
    if (pc.buf != pc.small) free(pc.buf);
    s.gen_ms = now_ms() - t0;
out:
    free(toks);
    if (stats) {
        size_t keep = stats->struct_size;
        memcpy(stats, &s, keep);
        stats->struct_size = keep;
    }
    return st;
}
