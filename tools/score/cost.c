/* The cost of label scoring against generating one token (issue 15): after
 * the same prompt, the median time of slim_score over 10 single-token labels
 * and of choosing plus computing one generated token (greedy sample +
 * slim_decode), alternated R times.
 *
 *   make build/libslim.a && cc -O2 -Iinclude tools/score/cost.c build/libslim.a -lm -pthread \
 *       -o build/score_cost
 *   flock /tmp/slim-bench.lock build/score_cost models/gemma-3-270m-q4_k_m.gguf [THREADS] [R]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "slim.h"

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

#define CHECK(x)                                                                                   \
    do {                                                                                           \
        slim_status st_ = (x);                                                                     \
        if (st_) {                                                                                 \
            fprintf(stderr, "%s: %s\n", #x, slim_last_error());                                    \
            return 1;                                                                              \
        }                                                                                          \
    } while (0)

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: score_cost MODEL.gguf [THREADS] [R]\n");
        return 2;
    }
    const int threads = argc > 2 ? atoi(argv[2]) : 2, R = argc > 3 ? atoi(argv[3]) : 21;
    slim_model *m = NULL;
    CHECK(slim_model_load(argv[1], NULL, &m));
    slim_context_params cp = slim_context_default_params();
    cp.n_threads = threads;
    cp.n_ctx = 1024;
    slim_context *ctx = NULL;
    CHECK(slim_context_create(m, &cp, &ctx));
    const char *prompt = "Text: I am still waiting on my card to arrive, it has been two weeks.\n"
                         "Is this text about a card problem? Answer:";
    const char *labels[] = {" yes", " no",   " maybe", " good", " bad",
                            " red", " blue", " one",   " two",  " three"};
    for (int i = 0; i < 10; i++) {
        slim_token t[4];
        size_t n = 0;
        CHECK(slim_tokenize(m, labels[i], strlen(labels[i]), 0, t, 4, &n));
        if (n != 1) {
            fprintf(stderr, "label '%s' is %zu tokens, not 1\n", labels[i], n);
            return 1;
        }
    }
    slim_token toks[256];
    size_t np = 0;
    CHECK(slim_tokenize(m, prompt, strlen(prompt), SLIM_TOKENIZE_ADD_BOS, toks, 256, &np));
    CHECK(slim_prefill(ctx, toks, np, NULL));
    slim_sampler_params sp = slim_sampler_default_params();
    sp.temperature = 0;
    slim_sampler *smp = NULL;
    CHECK(slim_sampler_create(&sp, &smp));
    slim_model_info info = {.struct_size = sizeof info};
    CHECK(slim_model_get_info(m, &info));
    double *ts = malloc(sizeof(double) * (size_t)R), *tg = malloc(sizeof(double) * (size_t)R);
    slim_score_result res[10];
    for (int r = 0; r < R; r++) {
        slim_score_output out = {.struct_size = sizeof out, .results = res};
        double t0 = now_ms();
        CHECK(slim_score(ctx, labels, 10, NULL, &out));
        ts[r] = now_ms() - t0;
        slim_token tok;
        t0 = now_ms();
        CHECK(slim_sampler_sample(smp, slim_get_logits(ctx), info.n_vocab, &tok));
        CHECK(slim_decode(ctx, tok));
        tg[r] = now_ms() - t0;
        /* back to the prompt with its logits (not timed) */
        CHECK(slim_context_truncate(ctx, (int32_t)np - 1));
        CHECK(slim_decode(ctx, toks[np - 1]));
    }
    qsort(ts, (size_t)R, sizeof *ts, cmp);
    qsort(tg, (size_t)R, sizeof *tg, cmp);
    printf("%s, %d threads, prompt %zu tokens, %d alternated runs (medians):\n", argv[1], threads,
           np, R);
    printf("  score 10 single-token labels: %.3f ms\n", ts[R / 2]);
    printf("  generate one token (sample + decode): %.3f ms\n", tg[R / 2]);
    printf("  ratio: %.3fx\n", ts[R / 2] / tg[R / 2]);
    free(ts);
    free(tg);
    slim_sampler_free(smp);
    slim_context_free(ctx);
    slim_model_free(m);
    return 0;
}
