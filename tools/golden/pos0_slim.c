/* slim's next-token logits at position 0: each token alone (BOS if none is
 * given) in a fresh context, n_vocab little-endian float32 per token written
 * to OUT in order; SLIM_CPU_REPACK=0 in the environment picks the plain
 * kernels.  Built and run by tools/golden/pos0_reference.py:
 *   cc -O2 -Iinclude tools/golden/pos0_slim.c build/libslim.a -lm -pthread -o build/pos0_slim
 *   build/pos0_slim MODEL.gguf OUT [N_THREADS [f16|f32 [TOKEN...]]]   (the KV cache type)
 * With "-s" before the tokens: instead one prefill of the whole token list
 * (n_ctx 512, as tests/unit/test_model.c), the logits of every position. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "slim.h"

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s MODEL.gguf OUT [N_THREADS [f16|f32 [TOKEN...]]]\n", argv[0]);
        return 2;
    }
    slim_model_params mp = slim_model_default_params();
    slim_model *m = NULL;
    if (slim_model_load(argv[1], &mp, &m)) {
        fprintf(stderr, "load: %s\n", slim_last_error());
        return 1;
    }
    slim_model_info info = {.struct_size = sizeof info};
    slim_model_get_info(m, &info);
    slim_context_params cp = slim_context_default_params();
    const int seq = argc > 5 && strcmp(argv[5], "-s") == 0;
    cp.n_ctx = seq ? 512 : 64;
    cp.n_threads = argc > 3 ? atoi(argv[3]) : 1;
    cp.kv_type = argc > 4 && strcmp(argv[4], "f32") == 0 ? SLIM_KV_F32 : SLIM_KV_F16;
    slim_context *ctx = NULL;
    FILE *f = fopen(argv[2], "wb");
    if (!f || slim_context_create(m, &cp, &ctx)) {
        fprintf(stderr, "cannot write %s or create a context: %s\n", argv[2], slim_last_error());
        return 1;
    }
    if (seq) {
        const size_t n = (size_t)(argc - 6);
        slim_token *toks = malloc((n ? n : 1) * sizeof *toks);
        float *all = malloc((n ? n : 1) * (size_t)info.n_vocab * sizeof *all);
        if (!toks || !all || !n) {
            fprintf(stderr, "no tokens or out of memory\n");
            return 1;
        }
        for (size_t i = 0; i < n; i++)
            toks[i] = (slim_token)atoi(argv[6 + i]);
        if (slim_prefill(ctx, toks, n, all)) {
            fprintf(stderr, "prefill of %zu tokens: %s\n", n, slim_last_error());
            return 1;
        }
        if (fwrite(all, sizeof(float) * (size_t)info.n_vocab, n, f) != n) {
            fprintf(stderr, "cannot write %s\n", argv[2]);
            return 1;
        }
        free(toks), free(all);
    }
    for (int i = 5; !seq && i < (argc > 5 ? argc : 6); i++) {
        const slim_token tok = i < argc ? (slim_token)atoi(argv[i]) : info.bos;
        slim_context_reset(ctx);
        if (slim_prefill(ctx, &tok, 1, NULL)) {
            fprintf(stderr, "eval of token %d: %s\n", (int)tok, slim_last_error());
            return 1;
        }
        if (fwrite(slim_get_logits(ctx), sizeof(float), (size_t)info.n_vocab, f) !=
            (size_t)info.n_vocab) {
            fprintf(stderr, "cannot write %s\n", argv[2]);
            return 1;
        }
    }
    slim_context_free(ctx);
    slim_model_free(m);
    return fclose(f) != 0;
}
