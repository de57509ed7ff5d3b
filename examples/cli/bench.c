/* slim bench: prompt-processing and generation speed, llama-bench style.
 * pp: one prefill of -p tokens into an empty context; tg: -n single-token
 * decodes into an empty context.  Tokens are fixed ids (content does not
 * change the work).  Reports the median of -r repetitions. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static const char bench_usage[] =
    "usage: slim bench -m FILE [-p N] [-n N] [-t THREADS] [-r REPS] [--no-mmap] [--backend "
    "cpu|cuda]\n"
    "  Median tokens/s of a prefill of -p tokens (default 512) and of -n\n"
    "  single-token decodes (default 128), each from an empty context.\n";

int cli_bench(int argc, char **argv) {
    const char *path = NULL;
    int n_prompt = 512, n_gen = 128, reps = 5;
    slim_context_params cp = slim_context_default_params();
    slim_model_params mp = slim_model_default_params();
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        double d;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(bench_usage, stdout);
            return 0;
        } else if (!strcmp(a, "-m") && v) {
            path = v, i++;
        } else if (!strcmp(a, "-p") && cli_parse_num(a, v, 0, 1 << 16, &d)) {
            n_prompt = (int)d, i++;
        } else if (!strcmp(a, "-n") && cli_parse_num(a, v, 0, 1 << 16, &d)) {
            n_gen = (int)d, i++;
        } else if (!strcmp(a, "-t") && cli_parse_num(a, v, 1, 512, &d)) {
            cp.n_threads = (int32_t)d, i++;
        } else if (!strcmp(a, "-r") && cli_parse_num(a, v, 1, 1000, &d)) {
            reps = (int)d, i++;
        } else if (!strcmp(a, "--no-mmap")) {
            mp.use_mmap = 0;
        } else if (!strcmp(a, "--backend") && v && (!strcmp(v, "cpu") || !strcmp(v, "cuda"))) {
            mp.backend = !strcmp(v, "cuda") ? SLIM_BACKEND_CUDA : SLIM_BACKEND_CPU, i++;
        } else {
            fprintf(stderr, "slim bench: bad or unknown option '%s'\n%s", a, bench_usage);
            return 2;
        }
    }
    if (!path) {
        fprintf(stderr, "slim bench: -m FILE is required\n%s", bench_usage);
        return 2;
    }
    slim_model *model = NULL;
    slim_context *ctx = NULL;
    slim_status st = slim_model_load(path, &mp, &model);
    if (st) return cli_fail("load", st);
    slim_model_info info = {.struct_size = sizeof info};
    slim_model_get_info(model, &info);
    cp.n_ctx = (n_prompt > n_gen ? n_prompt : n_gen) + 1;
    cp.n_batch = n_prompt > 0 ? n_prompt : 1;
    int rc = 0;
    slim_token *toks = malloc((size_t)(n_prompt > 0 ? n_prompt : 1) * sizeof *toks);
    double *pp = calloc((size_t)reps, sizeof *pp), *tg = calloc((size_t)reps, sizeof *tg);
    if (!toks || !pp || !tg) {
        rc = cli_fail("bench", SLIM_ERR_NOMEM);
        goto out;
    }
    if ((st = slim_context_create(model, &cp, &ctx))) {
        rc = cli_fail("context", st);
        goto out;
    }
    /* Fixed ids spread over the vocabulary (content does not change the work). */
    for (int i = 0; i < n_prompt; i++)
        toks[i] = (1000 + (i * 7919) % 20000) % info.n_vocab;
    const slim_token one = 1000 % info.n_vocab;
    if ((st = slim_decode(ctx, one))) { /* warm-up: page in the weights */
        rc = cli_fail("decode", st);
        goto out;
    }
    for (int r = 0; r < reps; r++) {
        if (n_prompt > 0) {
            slim_context_reset(ctx);
            double t0 = now_s();
            if ((st = slim_prefill(ctx, toks, (size_t)n_prompt, NULL))) break;
            pp[r] = n_prompt / (now_s() - t0);
        }
        if (n_gen > 0) {
            slim_context_reset(ctx);
            double t0 = now_s();
            for (int i = 0; i < n_gen && !st; i++)
                st = slim_decode(ctx, (one + i) % info.n_vocab);
            if (st) break;
            tg[r] = n_gen / (now_s() - t0);
        }
    }
    if (st) {
        rc = cli_fail("bench", st);
        goto out;
    }
    char threads[16] = "all";
    if (cp.n_threads > 0) snprintf(threads, sizeof threads, "%d", (int)cp.n_threads);
    printf("| model | type | threads | test | t/s (median of %d) |\n|---|---|---|---|---|\n", reps);
    if (n_prompt > 0)
        printf("| %s | %s | %s | pp%d | %.2f |\n", info.name, info.file_type, threads, n_prompt,
               median(pp, reps));
    if (n_gen > 0)
        printf("| %s | %s | %s | tg%d | %.2f |\n", info.name, info.file_type, threads, n_gen,
               median(tg, reps));
out:
    free(toks);
    free(pp);
    free(tg);
    slim_context_free(ctx);
    slim_model_free(model);
    return rc;
}
