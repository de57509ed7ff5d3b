/* simple.c: a tour of the slim API in one function: README.md's example with
 * greedy sampling and a token limit (the params structs).
 * usage: simple MODEL.gguf [PROMPT] */
#include <stdio.h>

#include "slim.h"

static int print_piece(slim_token token, const char *piece, size_t len, void *user) {
    (void)token, (void)user;
    fwrite(piece, 1, len, stdout);
    fflush(stdout);
    return 0; /* non-zero stops generation */
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s MODEL.gguf [PROMPT]\n", argv[0]);
        return 2;
    }
    const char *prompt = argc > 2 ? argv[2] : "The capital of France is";
    slim_model *model = NULL;
    slim_context *ctx = NULL;
    slim_sampler *sampler = NULL;
    slim_status st = slim_model_load(argv[1], NULL, &model); /* NULL params: defaults */
    if (st == SLIM_OK) st = slim_context_create(model, NULL, &ctx);
    slim_sampler_params sp = slim_sampler_default_params();
    sp.temperature = 0; /* greedy */
    if (st == SLIM_OK) st = slim_sampler_create(&sp, &sampler);
    slim_generate_params gp = slim_generate_default_params();
    gp.max_tokens = 32;
    if (st == SLIM_OK) {
        printf("%s", prompt);
        st = slim_generate(ctx, sampler, prompt, &gp, print_piece, NULL, NULL);
        printf("\n");
    }
    if (st != SLIM_OK) fprintf(stderr, "%s: %s\n", slim_status_string(st), slim_last_error());
    slim_sampler_free(sampler); /* every *_free accepts NULL */
    slim_context_free(ctx);
    slim_model_free(model);
    return st == SLIM_OK ? 0 : 1;
}
