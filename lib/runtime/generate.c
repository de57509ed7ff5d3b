/* slim_generate: prompt in, tokens streamed out through a callback. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

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
        slim_sampler_accept(sampler, toks[i]);
    double t0 = now_ms();
    if ((st = slim_prefill(ctx, toks, n_prompt, NULL))) goto out;
    s.n_prompt = (int32_t)n_prompt;
    s.prompt_ms = now_ms() - t0;
    t0 = now_ms();
    char small[256], *piece = small;
    size_t piece_cap = sizeof small;
    for (int32_t i = 0; i < p.max_tokens; i++) {
        slim_token tok;
        if ((st = slim_sampler_sample(sampler, slim_get_logits(ctx), m->hp.n_vocab, &tok))) break;
        slim_sampler_accept(sampler, tok);
        s.n_generated++;
        if (p.stop_at_eos && slim_vocab_is_eog(m->vocab, tok)) break;
        size_t n_piece = 0;
        st = slim_vocab_token_to_piece(m->vocab, tok, 0, piece, piece_cap, &n_piece);
        if (st == SLIM_ERR_BUFFER_TOO_SMALL) { /* a long piece: grow once to its size */
            char *big = realloc(piece == small ? NULL : piece, n_piece);
            if (!big) {
                st = slim_error(SLIM_ERR_NOMEM, "slim_generate: out of memory");
                break;
            }
            piece = big, piece_cap = n_piece;
            st = slim_vocab_token_to_piece(m->vocab, tok, 0, piece, piece_cap, &n_piece);
        }
        if (st) break;
        if (on_token && on_token(tok, piece, n_piece, user)) break;
        if (i + 1 == p.max_tokens || ctx->n_past >= ctx->n_ctx) break;
        if ((st = slim_decode(ctx, tok))) break;
    }
    s.gen_ms = now_ms() - t0;
    if (piece != small) free(piece);
out:
    free(toks);
    if (stats) {
        size_t keep = stats->struct_size;
        memcpy(stats, &s, keep);
        stats->struct_size = keep;
    }
    return st;
}
