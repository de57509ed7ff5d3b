/* slim bench: prompt-processing and generation speed, llama-bench style.
 * pp: one prefill of -p tokens into an empty context; tg: -n single-token
 * decodes into an empty context.  Tokens are fixed ids (content does not
 * change the work).  Reports the median (and sample standard deviation) of
 * -r repetitions, as a Markdown table or (-o json) one JSON record per test
 * with every sample, for tools/bench/compare.py. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "eval.h"

double cli_now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int cli_cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Median of v[0..n) (v is left as is). */
static double median(const double *v, int n) {
    double *s = malloc((size_t)n * sizeof *s);
    if (!s) return NAN;
    memcpy(s, v, (size_t)n * sizeof *s);
    qsort(s, (size_t)n, sizeof *s, cli_cmp_double);
    const double m = n % 2 ? s[n / 2] : 0.5 * (s[n / 2 - 1] + s[n / 2]);
    free(s);
    return m;
}

static double mean(const double *v, int n) {
    double s = 0;
    for (int i = 0; i < n; i++)
        s += v[i];
    return s / n;
}

/* Sample standard deviation (n - 1), 0 for one sample. */
static double stddev(const double *v, int n) {
    if (n < 2) return 0.0;
    const double m = mean(v, n);
    double s = 0;
    for (int i = 0; i < n; i++)
        s += (v[i] - m) * (v[i] - m);
    return sqrt(s / (n - 1));
}

/* Bytes of weights one decoded token reads: every tensor, except the token
 * embedding when the model has a separate output matrix (then only one row
 * of it is read); with tied embeddings the output matmul reads all of it.
 * The KV cache is not counted. */
static unsigned long long weights_per_token(const slim_model *model) {
    unsigned long long total = 0, embd = 0;
    int has_output = 0;
    const int64_t n = slim_model_tensor_count(model);
    for (int64_t i = 0; i < n; i++) {
        slim_tensor_info ti = {.struct_size = sizeof ti};
        if (slim_model_tensor_get(model, i, &ti)) continue;
        total += ti.size;
        if (!strcmp(ti.name, "token_embd.weight")) embd = ti.size;
        if (!strcmp(ti.name, "output.weight")) has_output = 1;
    }
    return has_output ? total - embd : total;
}

/* Weights every prompt token multiplies: the elements of each matrix but
 * the token embedding and the output matrix (a prefill computes the logits of
 * its last token only), so 2 x this x tokens is a prefill's matmul FLOPs. */
static unsigned long long prompt_matmul_params(const slim_model *model) {
    unsigned long long total = 0;
    const int64_t n = slim_model_tensor_count(model);
    for (int64_t i = 0; i < n; i++) {
        slim_tensor_info ti = {.struct_size = sizeof ti};
        if (slim_model_tensor_get(model, i, &ti) || ti.n_dims < 2) continue;
        if (!strcmp(ti.name, "token_embd.weight") || !strcmp(ti.name, "output.weight")) continue;
        unsigned long long e = 1;
        for (int d = 0; d < ti.n_dims; d++)
            e *= (unsigned long long)ti.ne[d];
        total += e;
    }
    return total;
}

static void json_str(const char *s) {
    sbuf b = {0};
    sb_json_str(&b, s, strlen(s));
    fputs(b.oom ? "null" : b.p, stdout);
    sb_free(&b);
}

static const char bench_usage[] =
    "usage: slim bench -m FILE [-p N] [-n N] [-t THREADS] [-r REPS] [-o table|json] [--no-mmap]\n"
    "                  [--backend cpu|cuda]\n"
    "  Median tokens/s of a prefill of -p tokens (default 512, at most 8192) and of -n\n"
    "  single-token decodes (default 128), each from an empty context, over -r\n"
    "  repetitions (default 5).  -o json: one record per test with every sample.\n";

int cli_bench(int argc, char **argv) {
    const char *path = NULL;
    int n_prompt = 512, n_gen = 128, reps = 5, json = 0;
    slim_context_params cp = slim_context_default_params();
    slim_model_params mp = slim_model_default_params();
    static const char *const formats[] = {"table", "json", NULL};
    static const char *const backends[] = {"cpu", "cuda", NULL};
    cli_opts o = cli_opts_init("bench", argc, argv);
    const char *a;
    int got;
    while ((got = cli_next(&o, &a)) == CLI_OPTION || got == CLI_OPERAND) {
        long long x;
        int c;
        if (got == CLI_OPERAND) {
            return cli_extra(&o, a);
        } else if (cli_is(&o, "-h", "--help")) {
            fputs(bench_usage, stdout);
            return 0;
        } else if (cli_is(&o, "-m", "--model")) {
            if (!(path = cli_value(&o))) return 2;
        } else if (cli_is(&o, "-p", "--n-prompt")) {
            if (!cli_int(&o, 0, 8192, &x)) return 2; /* one prefill: at most one batch */
            n_prompt = (int)x;
        } else if (cli_is(&o, "-n", "--n-gen")) {
            if (!cli_int(&o, 0, 1 << 16, &x)) return 2;
            n_gen = (int)x;
        } else if (cli_is(&o, "-t", "--threads")) {
            if (!cli_int(&o, 1, 512, &x)) return 2;
            cp.n_threads = (int32_t)x;
        } else if (cli_is(&o, "-r", "--repetitions")) {
            if (!cli_int(&o, 1, 1000, &x)) return 2;
            reps = (int)x;
        } else if (cli_is(&o, "-o", "--output")) {
            if (!cli_choice(&o, formats, &c)) return 2;
            json = c == 1;
        } else if (cli_is(&o, NULL, "--no-mmap")) {
            mp.use_mmap = 0;
        } else if (cli_is(&o, NULL, "--backend")) {
            if (!cli_choice(&o, backends, &c)) return 2;
            mp.backend = c ? SLIM_BACKEND_CUDA : SLIM_BACKEND_CPU;
        } else {
            return cli_unknown(&o);
        }
    }
    if (got == CLI_ERR) return 2;
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
    if ((n_prompt > n_gen ? n_prompt : n_gen) >= info.n_ctx_train) { /* + the warm-up token */
        fprintf(stderr,
                "slim bench: option -%c: %d is more than this model's context of %d "
                "tokens allows (at most %d)\n",
                n_prompt > n_gen ? 'p' : 'n', n_prompt > n_gen ? n_prompt : n_gen, info.n_ctx_train,
                info.n_ctx_train - 1);
        slim_model_free(model);
        return 2;
    }
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
    cli_load load;
    cli_load_start(&load);
    for (int r = 0; r < reps; r++) {
        if (n_prompt > 0) {
            slim_context_reset(ctx);
            double t0 = cli_now_s();
            if ((st = slim_prefill(ctx, toks, (size_t)n_prompt, NULL))) break;
            pp[r] = n_prompt / (cli_now_s() - t0);
        }
        if (n_gen > 0) {
            slim_context_reset(ctx);
            double t0 = cli_now_s();
            for (int i = 0; i < n_gen && !st; i++)
                st = slim_decode(ctx, (one + i) % info.n_vocab);
            if (st) break;
            tg[r] = n_gen / (cli_now_s() - t0);
        }
    }
    if (st) {
        rc = cli_fail("bench", st);
        goto out;
    }
    int n_cpus;
    const double others = cli_load_warn(&load, "slim bench", &n_cpus);
    char threads[16] = "all";
    if (cp.n_threads > 0) snprintf(threads, sizeof threads, "%d", (int)cp.n_threads);
    const char *backend = mp.backend == SLIM_BACKEND_CUDA ? "cuda" : "cpu";
    const unsigned long long wpt = weights_per_token(model), pmp = prompt_matmul_params(model);
    struct {
        const char *kind;
        int n;
        const double *v;
    } tests[2] = {{"pp", n_prompt, pp}, {"tg", n_gen, tg}};
    if (!json)
        printf("| model | type | size | params | backend | threads | test | t/s (median of %d) | "
               "stddev |\n|---|---|---|---|---|---|---|---|---|\n",
               reps);
    else
        printf("[");
    int first = 1;
    for (int k = 0; k < 2; k++) {
        if (tests[k].n <= 0) continue;
        const double *v = tests[k].v;
        if (!json) {
            printf("| %s | %s | %.2f MiB | %.2f M | %s | %s | %s%d | %.2f | %.2f |\n", info.name,
                   info.file_type, (double)info.file_size / (1 << 20), (double)info.n_params / 1e6,
                   backend, threads, tests[k].kind, tests[k].n, median(v, reps), stddev(v, reps));
            continue;
        }
        printf("%s\n  {\"model\": ", first ? "" : ",");
        json_str(path);
        printf(", \"name\": ");
        json_str(info.name);
        printf(", \"arch\": ");
        json_str(info.architecture);
        printf(", \"type\": ");
        json_str(info.file_type);
        printf(", \"size\": %llu, \"params\": %llu, \"weights_per_token\": %llu, "
               "\"prompt_matmul_params\": %llu, "
               "\"backend\": \"%s\", \"threads\": %d, \"test\": \"%s%d\", \"n_prompt\": %d, "
               "\"n_gen\": %d, \"reps\": %d, \"median_ts\": %.4f, \"avg_ts\": %.4f, "
               "\"stddev_ts\": %.4f, \"samples_ts\": [",
               (unsigned long long)info.file_size, (unsigned long long)info.n_params, wpt, pmp,
               backend, (int)cp.n_threads, tests[k].kind, tests[k].n, k == 0 ? tests[k].n : 0,
               k == 1 ? tests[k].n : 0, reps, median(v, reps), mean(v, reps), stddev(v, reps));
        for (int r = 0; r < reps; r++)
            printf("%s%.4f", r ? ", " : "", v[r]);
        printf("], \"online_cpus\": %d, \"other_cpus\": ", n_cpus);
        printf(others >= 0 ? "%.2f}" : "null}", others);
        first = 0;
    }
    if (json) printf("\n]\n");
out:
    free(toks);
    free(pp);
    free(tg);
    slim_context_free(ctx);
    slim_model_free(model);
    return rc;
}
