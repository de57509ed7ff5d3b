/* LoRA adapters (lib/model/lora.c) through the public API.
 *
 * Against llama.cpp: tools/golden/gen_lora.py writes random adapters for the
 * synthetic models (tests/data/lora_*.gguf, PEFT directories lora_llama3_a/
 * and lora_phi3/) and llama.cpp's full logits with the adapters applied
 * (lora_*.bin, 48 tokens of gen_synthetic.py's sequence).  Pass marks are
 * test_arch.c's: top-1 equal at >= 99% of the positions and max |slim -
 * llama.cpp| within the model's tolerance (0.03; gemma3 0.06: fp16 K/V and
 * llama.cpp's GELU table), here over the whole vocabulary.  The adapters move
 * llama.cpp's logits by 9 to 11 (max), so a wrong scale, a missing module or a
 * wrong Q/K row order fails by far.  The script checks its own reading of
 * llama.cpp: a float64 numpy model with the adapters merged into the weights
 * matches llama.cpp's run-time LoRA to 5e-6 (Gemma 3: 8e-3, the GELU table).
 *
 * The PEFT copy of lora_llama3_a (A in F16, B in BF16, rank_pattern, Q/K rows
 * in Hugging Face order) holds the same values as the GGUF: slim must give
 * bitwise the logits of the GGUF adapter.  lora_phi3/ (fused qkv_proj and
 * gate_up_proj, rsLoRA, alpha_pattern) matches its GGUF, which has the scales
 * folded into B, to float rounding.
 *
 * API semantics: two contexts decoding interleaved with different adapters;
 * threads decoding while adapters are loaded and freed; detach and scale 0
 * giving the base logits bitwise; re-attach replacing the scale; free while
 * attached; another model's adapter; malformed adapters. */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "slim.h"
#include "suites.h"

#define LORA_DATA "tests/data/"
enum { LORA_N_CTX = 256 }; /* as llama.cpp ran (Phi-3: LongRoPE long factors) */

typedef struct lora_golden {
    uint32_t n_vocab, n_tokens;
    int32_t *tokens;
    float *logits; /* [n_tokens][n_vocab] */
} lora_golden;

static lora_golden *golden_load(const char *name) {
    char path[128];
    snprintf(path, sizeof path, LORA_DATA "%s", name);
    size_t size;
    uint8_t *buf = test_read_whole(path, &size);
    ck_assert_msg(size >= 16 && memcmp(buf, "SLIMLRA1", 8) == 0, "%s: bad magic", path);
    lora_golden *g = calloc(1, sizeof *g);
    ck_assert_ptr_nonnull(g);
    memcpy(&g->n_vocab, buf + 8, 4);
    memcpy(&g->n_tokens, buf + 12, 4);
    const size_t T = g->n_tokens, V = g->n_vocab;
    ck_assert_msg(T >= 8 && T <= LORA_N_CTX && V > 0 && V < 100000, "%s: header", path);
    ck_assert_msg(size == 16 + T * 4 + T * V * 4, "%s: %zu bytes", path, size);
    g->tokens = malloc(T * sizeof(int32_t));
    g->logits = malloc(T * V * sizeof(float));
    ck_assert(g->tokens && g->logits);
    memcpy(g->tokens, buf + 16, T * 4);
    memcpy(g->logits, buf + 16 + T * 4, T * V * 4);
    free(buf);
    return g;
}

static void golden_free(lora_golden *g) {
    free(g->tokens);
    free(g->logits);
    free(g);
}

static slim_model *load_model(const char *arch) {
    char path[128];
    snprintf(path, sizeof path, LORA_DATA "synth_%s.gguf", arch);
    slim_model *m = NULL;
    ck_assert_msg(slim_model_load(path, NULL, &m) == SLIM_OK, "%s", slim_last_error());
    return m;
}

static slim_lora *load_lora(const slim_model *m, const char *name) {
    char path[128];
    snprintf(path, sizeof path, LORA_DATA "%s", name);
    slim_lora *l = NULL;
    ck_assert_msg(slim_lora_load(m, path, &l) == SLIM_OK, "%s: %s", name, slim_last_error());
    ck_assert_ptr_nonnull(l);
    return l;
}

static slim_context *new_ctx(const slim_model *m, int32_t n_batch, int32_t n_threads) {
    slim_context_params cp = slim_context_default_params();
    cp.n_ctx = LORA_N_CTX;
    cp.n_batch = n_batch;
    cp.n_threads = n_threads;
    slim_context *ctx = NULL;
    ck_assert_msg(slim_context_create(m, &cp, &ctx) == SLIM_OK, "%s", slim_last_error());
    return ctx;
}

/* Every position's logits of the golden tokens (caller frees). */
static float *run_all(slim_context *ctx, const lora_golden *g) {
    float *out = malloc((size_t)g->n_tokens * g->n_vocab * sizeof(float));
    ck_assert_ptr_nonnull(out);
    slim_context_reset(ctx);
    ck_assert_msg(slim_prefill(ctx, g->tokens, g->n_tokens, out) == SLIM_OK, "%s",
                  slim_last_error());
    return out;
}

/* Rows [t0, t1) against llama.cpp: max |d| over the vocabulary, top-1. */
static void compare_rows(const char *what, const float *got, const lora_golden *g, int t0, int t1,
                         double tol) {
    const int V = (int)g->n_vocab;
    double max_d = 0;
    int top1 = 0, worst = 0;
    for (int t = t0; t < t1; t++) {
        const float *a = got + (size_t)(t - t0) * V, *b = g->logits + (size_t)t * V;
        for (int v = 0; v < V; v++) {
            ck_assert_msg(isfinite(a[v]), "%s: logit %d at %d is %g", what, v, t, a[v]);
            const double d = fabs((double)a[v] - b[v]);
            if (d > max_d) max_d = d, worst = t;
        }
        top1 += test_argmax(a, V) == test_argmax(b, V);
    }
    const double agree = (double)top1 / (t1 - t0);
    fprintf(stderr,
            "lora %-28s vs llama.cpp: %d positions, top-1 agreement %.4f, max |dlogit| %.5f at "
            "%d (tolerance %.2f)\n",
            what, t1 - t0, agree, max_d, worst, tol);
    ck_assert_msg(agree >= 0.99, "%s: top-1 agreement %.4f", what, agree);
    ck_assert_msg(max_d <= tol, "%s: max |dlogit| %.5f at %d > %.2f", what, max_d, worst, tol);
}

static double max_abs_diff(const float *a, const float *b, size_t n) {
    double d = 0;
    for (size_t i = 0; i < n; i++)
        d = fmax(d, fabs((double)a[i] - b[i]));
    return d;
}

/* One model + adapters at scales vs a golden; returns the logits. */
static float *check_golden(const char *what, slim_model *m, slim_lora **l, const float *scales,
                           int n, const char *golden, double tol, int32_t n_batch) {
    lora_golden *g = golden_load(golden);
    slim_context *ctx = new_ctx(m, n_batch, 2);
    for (int i = 0; i < n; i++)
        ck_assert_msg(slim_context_attach_lora(ctx, l[i], scales[i]) == SLIM_OK, "%s",
                      slim_last_error());
    float *got = run_all(ctx, g);
    char name[96];
    snprintf(name, sizeof name, "%s (n_batch %d)", what, n_batch);
    compare_rows(name, got, g, 0, (int)g->n_tokens, tol);
    slim_context_free(ctx);
    golden_free(g);
    return got;
}

START_TEST(test_lora_llama3_gguf_and_peft) {
    slim_model *m = load_model("llama3");
    slim_lora *gguf = load_lora(m, "lora_llama3_a.gguf");
    slim_lora *peft = load_lora(m, "lora_llama3_a");
    const float one = 1.0f;
    float *a = check_golden("llama3 + a.gguf", m, &gguf, &one, 1, "lora_llama3_a.bin", 0.03, 64);
    float *b = check_golden("llama3 + a (PEFT)", m, &peft, &one, 1, "lora_llama3_a.bin", 0.03, 64);
    /* Chunks of 7 tokens: the KV cache across batches, and T == 1 steps. */
    float *c = check_golden("llama3 + a.gguf", m, &gguf, &one, 1, "lora_llama3_a.bin", 0.03, 7);
    const size_t n = 48 * 320;
    /* Same values, Q/K rows un-permuted back by slim: bitwise the GGUF's. */
    ck_assert_msg(max_abs_diff(a, b, n) == 0, "PEFT vs GGUF differ by %g", max_abs_diff(a, b, n));
    ck_assert_msg(max_abs_diff(a, c, n) == 0, "n_batch 64 vs 7 differ by %g",
                  max_abs_diff(a, c, n));
    /* The adapter matters: the base model is far from these logits. */
    lora_golden *g = golden_load("lora_llama3_a.bin");
    slim_context *base = new_ctx(m, 64, 2);
    float *z = run_all(base, g);
    ck_assert_msg(max_abs_diff(a, z, n) > 3, "adapter moves logits by only %g",
                  max_abs_diff(a, z, n));
    free(a), free(b), free(c), free(z);
    golden_free(g);
    slim_context_free(base);
    slim_lora_free(gguf);
    slim_lora_free(peft);
    slim_model_free(m);
}
END_TEST

START_TEST(test_lora_llama3_two_adapters) {
    slim_model *m = load_model("llama3");
    slim_lora *l[2] = {load_lora(m, "lora_llama3_a.gguf"), load_lora(m, "lora_llama3_b.gguf")};
    const float scales[2] = {0.5f, -1.25f};
    free(check_golden("llama3 + 0.5 a - 1.25 b", m, l, scales, 2, "lora_llama3_ab.bin", 0.03, 64));
    /* The PEFT copy of a mixed with the GGUF b. */
    slim_lora *pa = load_lora(m, "lora_llama3_a");
    slim_lora *l2[2] = {pa, l[1]};
    free(check_golden("llama3 + 0.5 a(PEFT) - 1.25 b", m, l2, scales, 2, "lora_llama3_ab.bin", 0.03,
                      16));
    slim_lora_free(pa);
    slim_lora_free(l[0]);
    slim_lora_free(l[1]);
    slim_model_free(m);
}
END_TEST

START_TEST(test_lora_gemma3) {
    slim_model *m = load_model("gemma3");
    slim_lora *l = load_lora(m, "lora_gemma3.gguf");
    const float one = 1.0f;
    free(check_golden("gemma3 + F16 adapter", m, &l, &one, 1, "lora_gemma3.bin", 0.06, 64));
    slim_lora_free(l);
    slim_model_free(m);
}
END_TEST

START_TEST(test_lora_phi3_fused) {
    slim_model *m = load_model("phi3");
    slim_lora *gguf = load_lora(m, "lora_phi3.gguf");
    slim_lora *peft = load_lora(m, "lora_phi3");
    const float s = 0.8f;
    float *a = check_golden("phi3 + qkv/gate_up.gguf", m, &gguf, &s, 1, "lora_phi3.bin", 0.03, 64);
    float *b = check_golden("phi3 + PEFT rsLoRA", m, &peft, &s, 1, "lora_phi3.bin", 0.03, 64);
    /* Folded vs run-time scales: float rounding only, amplified by this
     * model (one ulp more of the scale moves its logits by 2.8e-4). */
    const double d = max_abs_diff(a, b, 48 * 320);
    fprintf(stderr, "lora phi3 PEFT vs GGUF: max |dlogit| %g\n", d);
    ck_assert_msg(d < 1e-3, "phi3 PEFT vs GGUF differ by %g", d);
    free(a), free(b);
    slim_lora_free(gguf);
    slim_lora_free(peft);
    slim_model_free(m);
}
END_TEST

/* Two contexts of one model, different adapters, one token at a time in
 * turn: each matches its own llama.cpp reference at every position. */
START_TEST(test_lora_interleaved_contexts) {
    slim_model *m = load_model("llama3");
    slim_lora *a = load_lora(m, "lora_llama3_a.gguf"), *b = load_lora(m, "lora_llama3_b.gguf");
    lora_golden *ga = golden_load("lora_llama3_a.bin"), *gab = golden_load("lora_llama3_ab.bin");
    slim_context *c1 = new_ctx(m, 8, 1), *c2 = new_ctx(m, 8, 2);
    ck_assert_int_eq(slim_context_attach_lora(c1, a, 1.0f), SLIM_OK);
    ck_assert_int_eq(slim_context_attach_lora(c2, b, -1.25f), SLIM_OK);
    ck_assert_int_eq(slim_context_attach_lora(c2, a, 0.5f), SLIM_OK);
    const int T = (int)ga->n_tokens, V = (int)ga->n_vocab;
    float *r1 = malloc((size_t)T * V * sizeof(float)), *r2 = malloc((size_t)T * V * sizeof(float));
    ck_assert(r1 && r2);
    for (int t = 0; t < T; t++) {
        ck_assert_int_eq(slim_decode(c1, ga->tokens[t]), SLIM_OK);
        ck_assert_int_eq(slim_decode(c2, gab->tokens[t]), SLIM_OK);
        memcpy(r1 + (size_t)t * V, slim_get_logits(c1), (size_t)V * sizeof(float));
        memcpy(r2 + (size_t)t * V, slim_get_logits(c2), (size_t)V * sizeof(float));
    }
    compare_rows("interleaved ctx 1 (a)", r1, ga, 0, T, 0.03);
    compare_rows("interleaved ctx 2 (0.5 a - 1.25 b)", r2, gab, 0, T, 0.03);
    free(r1), free(r2);
    slim_context_free(c1);
    slim_context_free(c2);
    golden_free(ga), golden_free(gab);
    slim_lora_free(a), slim_lora_free(b);
    slim_model_free(m);
}
END_TEST

typedef struct worker {
    slim_model *model;
    slim_lora *lora;
    float scale;
    const lora_golden *g;
    double max_d;
    int status;
} worker;

static void *worker_run(void *arg) {
    worker *w = arg;
    slim_context_params cp = slim_context_default_params();
    cp.n_ctx = LORA_N_CTX;
    cp.n_batch = 16;
    cp.n_threads = 1;
    slim_context *ctx = NULL;
    if ((w->status = slim_context_create(w->model, &cp, &ctx))) return NULL;
    if ((w->status = slim_context_attach_lora(ctx, w->lora, w->scale))) goto out;
    /* The caller's handle goes now: the context keeps the adapter alive. */
    slim_lora_free(w->lora);
    const int V = (int)w->g->n_vocab;
    for (int rep = 0; rep < 3; rep++) {
        slim_context_reset(ctx);
        for (uint32_t t = 0; t < w->g->n_tokens; t++) {
            if ((w->status = slim_decode(ctx, w->g->tokens[t]))) goto out;
            const float *lg = slim_get_logits(ctx);
            for (int v = 0; v < V; v++)
                w->max_d = fmax(w->max_d, fabs((double)lg[v] - w->g->logits[(size_t)t * V + v]));
        }
    }
out:
    slim_context_free(ctx); /* detaches: the adapter is freed here */
    return NULL;
}

/* Contexts decoding on two threads while the main thread loads and frees
 * adapters of the same model (run under SAN=1 for races on the model). */
START_TEST(test_lora_threads) {
    slim_model *m = load_model("llama3");
    lora_golden *ga = golden_load("lora_llama3_a.bin");
    worker w[2] = {{.model = m, .lora = load_lora(m, "lora_llama3_a.gguf"), .scale = 1, .g = ga},
                   {.model = m, .lora = load_lora(m, "lora_llama3_a"), .scale = 1, .g = ga}};
    pthread_t th[2];
    for (int i = 0; i < 2; i++)
        ck_assert_int_eq(pthread_create(&th[i], NULL, worker_run, &w[i]), 0);
    for (int i = 0; i < 20; i++) {
        slim_lora *l = NULL;
        ck_assert_int_eq(slim_lora_load(m, LORA_DATA "lora_llama3_b.gguf", &l), SLIM_OK);
        slim_lora_free(l);
    }
    for (int i = 0; i < 2; i++) {
        pthread_join(th[i], NULL);
        ck_assert_msg(w[i].status == SLIM_OK, "thread %d: %s", i, slim_status_string(w[i].status));
        fprintf(stderr, "lora thread %d: max |dlogit| vs llama.cpp %.5f\n", i, w[i].max_d);
        ck_assert_msg(w[i].max_d <= 0.03, "thread %d: %g", i, w[i].max_d);
    }
    golden_free(ga);
    slim_model_free(m);
}
END_TEST

/* Detach and scale 0 give bitwise the logits of a context that never had an
 * adapter; attaching again replaces the scale; free while attached. */
START_TEST(test_lora_attach_semantics) {
    slim_model *m = load_model("llama3");
    lora_golden *g = golden_load("lora_llama3_a.bin");
    const size_t n = (size_t)g->n_tokens * g->n_vocab;
    slim_context *plain = new_ctx(m, 16, 2);
    float *base = run_all(plain, g);

    slim_lora *a = load_lora(m, "lora_llama3_a.gguf");
    slim_context *ctx = new_ctx(m, 16, 2);
    ck_assert_int_eq(slim_context_attach_lora(ctx, a, 0.0f), SLIM_OK);
    float *zero = run_all(ctx, g);
    ck_assert_msg(max_abs_diff(zero, base, n) == 0, "scale 0 vs base: %g",
                  max_abs_diff(zero, base, n));
    /* Same adapter again: the scale is replaced, not added. */
    ck_assert_int_eq(slim_context_attach_lora(ctx, a, 3.0f), SLIM_OK);
    ck_assert_int_eq(slim_context_attach_lora(ctx, a, 1.0f), SLIM_OK);
    float *one = run_all(ctx, g);
    compare_rows("re-attached at scale 1", one, g, 0, (int)g->n_tokens, 0.03);
    /* The handle freed while attached: still works, freed at detach. */
    slim_lora_free(a);
    float *again = run_all(ctx, g);
    ck_assert_msg(max_abs_diff(one, again, n) == 0, "after free: %g", max_abs_diff(one, again, n));
    ck_assert_int_eq(slim_context_detach_lora(ctx, a), SLIM_OK);
    float *off = run_all(ctx, g);
    ck_assert_msg(max_abs_diff(off, base, n) == 0, "detached vs base: %g",
                  max_abs_diff(off, base, n));
    /* Detaching what is not attached. */
    slim_lora *b = load_lora(m, "lora_llama3_b.gguf");
    ck_assert_int_eq(slim_context_detach_lora(ctx, b), SLIM_ERR_INVALID_ARG);
    ck_assert_ptr_nonnull(strstr(slim_last_error(), "not attached"));
    /* A context freed with an adapter attached releases it (ASan: no leak). */
    slim_context *c3 = new_ctx(m, 4, 1);
    ck_assert_int_eq(slim_context_attach_lora(c3, b, 1.0f), SLIM_OK);
    slim_lora_free(b);
    slim_context_free(c3);
    /* The KV cache keeps what tokens were computed with: a prefix computed
     * with the adapter, then detached, differs from the base continuation. */
    slim_lora *a2 = load_lora(m, "lora_llama3_a.gguf");
    ck_assert_int_eq(slim_context_attach_lora(ctx, a2, 1.0f), SLIM_OK);
    slim_context_reset(ctx);
    ck_assert_int_eq(slim_prefill(ctx, g->tokens, 24, NULL), SLIM_OK);
    ck_assert_int_eq(slim_context_detach_lora(ctx, a2), SLIM_OK);
    ck_assert_int_eq(slim_decode(ctx, g->tokens[24]), SLIM_OK);
    const float *mixed = slim_get_logits(ctx);
    ck_assert_msg(max_abs_diff(mixed, base + (size_t)24 * g->n_vocab, g->n_vocab) > 0.1,
                  "cache computed with the adapter should still show");
    slim_lora_free(a2);
    free(base), free(zero), free(one), free(again), free(off);
    slim_context_free(ctx);
    slim_context_free(plain);
    golden_free(g);
    slim_model_free(m);
}
END_TEST

START_TEST(test_lora_args) {
    slim_model *llama = load_model("llama3"), *gemma = load_model("gemma3");
    slim_lora *l = NULL;
    ck_assert_int_eq(slim_lora_load(NULL, LORA_DATA "lora_llama3_a.gguf", &l),
                     SLIM_ERR_INVALID_ARG);
    ck_assert_ptr_null(l);
    ck_assert_int_eq(slim_lora_load(llama, NULL, &l), SLIM_ERR_INVALID_ARG);
    ck_assert_int_eq(slim_lora_load(llama, LORA_DATA "lora_llama3_a.gguf", NULL),
                     SLIM_ERR_INVALID_ARG);
    ck_assert_int_eq(slim_lora_load(llama, LORA_DATA "no_such_adapter", &l), SLIM_ERR_IO);
    ck_assert_ptr_nonnull(strstr(slim_last_error(), "no_such_adapter"));
    /* A llama adapter on a gemma3 model: the architecture is checked. */
    ck_assert_int_eq(slim_lora_load(gemma, LORA_DATA "lora_llama3_a.gguf", &l), SLIM_ERR_FORMAT);
    ck_assert_msg(strstr(slim_last_error(), "architecture"), "%s", slim_last_error());
    /* A PEFT adapter has no architecture: the shapes catch it. */
    ck_assert_int_eq(slim_lora_load(gemma, LORA_DATA "lora_llama3_a", &l), SLIM_ERR_FORMAT);
    ck_assert_msg(strstr(slim_last_error(), "another model"), "%s", slim_last_error());
    /* A model file is not an adapter. */
    ck_assert_int_eq(slim_lora_load(llama, LORA_DATA "synth_llama3.gguf", &l), SLIM_ERR_FORMAT);
    ck_assert_msg(strstr(slim_last_error(), "not an adapter"), "%s", slim_last_error());
    /* Attaching an adapter of another model. */
    l = load_lora(llama, "lora_llama3_a.gguf");
    slim_context *gctx = new_ctx(gemma, 4, 1);
    ck_assert_int_eq(slim_context_attach_lora(gctx, l, 1.0f), SLIM_ERR_INVALID_ARG);
    ck_assert_msg(strstr(slim_last_error(), "another model"), "%s", slim_last_error());
    ck_assert_int_eq(slim_context_attach_lora(NULL, l, 1.0f), SLIM_ERR_INVALID_ARG);
    ck_assert_int_eq(slim_context_attach_lora(gctx, NULL, 1.0f), SLIM_ERR_INVALID_ARG);
    slim_context *lctx = new_ctx(llama, 4, 1);
    ck_assert_int_eq(slim_context_attach_lora(lctx, l, NAN), SLIM_ERR_INVALID_ARG);
    ck_assert_int_eq(slim_context_attach_lora(lctx, l, INFINITY), SLIM_ERR_INVALID_ARG);
    ck_assert_int_eq(slim_context_detach_lora(NULL, l), SLIM_ERR_INVALID_ARG);
    ck_assert_int_eq(slim_context_detach_lora(lctx, NULL), SLIM_ERR_INVALID_ARG);
    slim_lora_free(NULL);
    slim_lora_free(l);
    slim_context_free(gctx);
    slim_context_free(lctx);
    slim_model_free(llama);
    slim_model_free(gemma);
}
END_TEST

/* ---- malformed adapters, made from the good ones in a temporary directory */

static char tmp_dir[64];

static void tmp_setup(void) {
    snprintf(tmp_dir, sizeof tmp_dir, "/tmp/slim_lora_XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(tmp_dir));
}

static void tmp_cleanup(void) {
    const char *files[] = {"bad.gguf", "adapter_config.json", "adapter_model.safetensors"};
    char path[160];
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", tmp_dir, files[i]);
        unlink(path);
    }
    rmdir(tmp_dir);
}

static void write_file(const char *path, const void *data, size_t n) {
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(data, 1, n, f), n);
    fclose(f);
}

/* Replace every occurrence of `from` by `to` (same length). */
static int replace_all(uint8_t *buf, size_t n, const char *from, const char *to) {
    const size_t k = strlen(from);
    ck_assert_uint_eq(strlen(to), k);
    int hits = 0;
    for (size_t i = 0; i + k <= n; i++)
        if (memcmp(buf + i, from, k) == 0) memcpy(buf + i, to, k), hits++;
    return hits;
}

/* A copy of the GGUF adapter with `from` replaced by `to`, or cut to `cut`
 * bytes; loading it must fail with `want` and a message containing `msg`. */
static void bad_gguf(slim_model *m, const char *from, const char *to, size_t cut, slim_status want,
                     const char *msg) {
    size_t n;
    uint8_t *buf = test_read_whole(LORA_DATA "lora_llama3_a.gguf", &n);
    if (from) ck_assert_msg(replace_all(buf, n, from, to) > 0, "'%s' not in the file", from);
    if (cut) n = cut;
    char path[128];
    snprintf(path, sizeof path, "%s/bad.gguf", tmp_dir);
    write_file(path, buf, n);
    free(buf);
    slim_lora *l = NULL;
    const slim_status st = slim_lora_load(m, path, &l);
    ck_assert_msg(st == want && !l, "%s -> %s: status %d (%s)", from ? from : "cut", to ? to : "",
                  st, slim_last_error());
    ck_assert_msg(strstr(slim_last_error(), msg) && strstr(slim_last_error(), path),
                  "%s: message '%s' lacks '%s'", from ? from : "cut", slim_last_error(), msg);
}

START_TEST(test_lora_malformed_gguf) {
    tmp_setup();
    slim_model *m = load_model("llama3");
    bad_gguf(m, "blk.0.attn_q.weight.lora_b", "blk.0.attn_q.weight.lora_c", 0, SLIM_ERR_FORMAT,
             "lora_b");
    bad_gguf(m, "blk.0.attn_q.weight.lora_a", "blk.0.attn_q.weight.lora_c", 0, SLIM_ERR_FORMAT,
             "lora_a");
    /* Layer 1's rank-4 Q pair renamed K: B has Q's 64 rows, K has 16. */
    bad_gguf(m, "blk.1.attn_q.", "blk.1.attn_k.", 0, SLIM_ERR_FORMAT, "16 outputs");
    /* A layer the model does not have. */
    bad_gguf(m, "blk.0.attn_v.", "blk.7.attn_v.", 0, SLIM_ERR_FORMAT, "layer 7");
    bad_gguf(m, "blk.0.ffn_gate.", "blk.0.ffn_gatx.", 0, SLIM_ERR_UNSUPPORTED, "ffn_gatx");
    bad_gguf(m, "blk.0.ffn_down.weight", "blk.0.ffn_down.weighx", 0, SLIM_ERR_UNSUPPORTED,
             "ffn_down.weighx");
    bad_gguf(m, "adapter", "adaptex", 0, SLIM_ERR_FORMAT, "not an adapter");
    /* adapter.type missing (renamed) */
    bad_gguf(m, "adapter.type", "adapter.typx", 0, SLIM_ERR_UNSUPPORTED, "adapter.type");
    bad_gguf(m, NULL, NULL, 1000, SLIM_ERR_FORMAT, "");
    bad_gguf(m, NULL, NULL, 20, SLIM_ERR_FORMAT, "");
    slim_model_free(m);
    tmp_cleanup();
}
END_TEST

/* A PEFT directory with `config` (NULL: the good one) and the safetensors
 * with `from` replaced by `to` (or cut to `cut` bytes, or absent). */
static void bad_peft(slim_model *m, const char *config, const char *from, const char *to, long cut,
                     slim_status want, const char *msg) {
    char path[160];
    size_t n;
    uint8_t *buf;
    snprintf(path, sizeof path, "%s/adapter_config.json", tmp_dir);
    if (config) {
        write_file(path, config, strlen(config));
    } else {
        buf = test_read_whole(LORA_DATA "lora_llama3_a/adapter_config.json", &n);
        write_file(path, buf, n);
        free(buf);
    }
    snprintf(path, sizeof path, "%s/adapter_model.safetensors", tmp_dir);
    buf = test_read_whole(LORA_DATA "lora_llama3_a/adapter_model.safetensors", &n);
    if (from) ck_assert_msg(replace_all(buf, n, from, to) > 0, "'%s' not in the file", from);
    if (cut > 0) n = (size_t)cut;
    unlink(path);
    if (cut >= 0) write_file(path, buf, n);
    free(buf);
    slim_lora *l = NULL;
    const slim_status st = slim_lora_load(m, tmp_dir, &l);
    if (want == SLIM_OK) {
        ck_assert_msg(st == SLIM_OK && l, "the good copy: %s", slim_last_error());
        slim_lora_free(l);
        return;
    }
    ck_assert_msg(st == want && !l, "case '%s': status %d (%s)", msg, st, slim_last_error());
    ck_assert_msg(strstr(slim_last_error(), msg), "message '%s' lacks '%s'", slim_last_error(),
                  msg);
}

START_TEST(test_lora_malformed_peft) {
    tmp_setup();
    slim_model *m = load_model("llama3");
    const char *rp = "\"rank_pattern\": {\"layers.1.self_attn.q_proj\": 4, "
                     "\"layers.1.self_attn.v_proj\": 4, \"layers.1.mlp.down_proj\": 4}";
    char cfg[512];
    /* The copy itself loads (so the cases below fail for their one change). */
    snprintf(cfg, sizeof cfg, "{\"r\": 8, \"lora_alpha\": 16, %s}", rp);
    bad_peft(m, cfg, NULL, NULL, 0, SLIM_OK, "");
    snprintf(cfg, sizeof cfg, "{\"r\": 8, \"lora_alpha\": 16, \"fan_in_fan_out\": true, %s}", rp);
    bad_peft(m, cfg, NULL, NULL, 0, SLIM_ERR_UNSUPPORTED, "fan_in_fan_out");
    snprintf(cfg, sizeof cfg, "{\"r\": 8, \"bias\": \"all\", %s}", rp);
    bad_peft(m, cfg, NULL, NULL, 0, SLIM_ERR_UNSUPPORTED, "bias 'all'");
    snprintf(cfg, sizeof cfg, "{\"r\": 8, \"modules_to_save\": [\"lm_head\"], %s}", rp);
    bad_peft(m, cfg, NULL, NULL, 0, SLIM_ERR_UNSUPPORTED, "lm_head");
    snprintf(cfg, sizeof cfg, "{\"r\": 8, \"use_dora\": true, %s}", rp);
    bad_peft(m, cfg, NULL, NULL, 0, SLIM_ERR_UNSUPPORTED, "DoRA");
    snprintf(cfg, sizeof cfg, "{\"r\": \"eight\", %s}", rp);
    bad_peft(m, cfg, NULL, NULL, 0, SLIM_ERR_FORMAT, "r: expected");
    snprintf(cfg, sizeof cfg, "{\"peft_type\": \"IA3\", %s}", rp);
    bad_peft(m, cfg, NULL, NULL, 0, SLIM_ERR_UNSUPPORTED, "IA3");
    bad_peft(m, "{\"r\": 8,", NULL, NULL, 0, SLIM_ERR_FORMAT, "adapter_config.json:1:");
    /* Without rank_pattern, layer 1's rank-4 tensors contradict r = 8. */
    bad_peft(m, "{\"r\": 8}", NULL, NULL, 0, SLIM_ERR_FORMAT, "rank 4 in the tensors, 8");
    bad_peft(m, "{\"r\": 8, \"rank_pattern\": {\"layers\\\\.1.*\": 4}}", NULL, NULL, 0,
             SLIM_ERR_UNSUPPORTED, "regular expression");
    snprintf(cfg, sizeof cfg, "{\"r\": 8, %s}", rp);
    bad_peft(m, cfg, "q_proj.lora_B", "q_proj.lora_X", 0, SLIM_ERR_FORMAT, "no lora_B");
    /* layers.0.mlp.up_proj -> embed_tokens.up_proj: not a layer module. */
    bad_peft(m, cfg, "layers.0.mlp.up_proj", "embed_tokens.up_proj", 0, SLIM_ERR_UNSUPPORTED,
             "embed_tokens");
    bad_peft(m, cfg, "layers.0.mlp.up_proj", "layers.0.mlp.xx_proj", 0, SLIM_ERR_UNSUPPORTED,
             "mlp.xx_proj");
    /* Gemma 3 multimodal bases put language_model before layers: the tail
     * decides.  A vision tower's layers are refused. */
    bad_peft(m, cfg, "base_model.model.model.layers", "language_model.X.model.layers", 0, SLIM_OK,
             "");
    bad_peft(m, cfg, "base_model.model.model.layers", "model.vision_tower.enc.layers", 0,
             SLIM_ERR_UNSUPPORTED, "vision_tower");
    bad_peft(m, cfg, NULL, NULL, 5000, SLIM_ERR_FORMAT, "adapter_model.safetensors");
    bad_peft(m, cfg, NULL, NULL, -1, SLIM_ERR_IO, "adapter_model");
    slim_model_free(m);
    tmp_cleanup();
}
END_TEST

/* ---- PEFT's own logits: Hugging Face directories (tools/golden/gen_hf.py)
 *
 * tests/data/hf/<case>/lora{,2}/ are PEFT adapters with PEFT's logits of the
 * base + adapter (golden.bin: i32 magic "GHLS", n_tokens, n_vocab, tokens,
 * F32 logits); lora{,2}.gguf are the same adapters converted by llama.cpp's
 * convert_lora_to_gguf.py.  slim loads the base from its directory (NEOX Q/K
 * rows), so the GGUF adapters' Llama Q/K rows are un-permuted at load: both
 * forms must give PEFT's logits at scale 1.  (The converter ignores
 * use_rslora and llama.cpp scales by alpha / r, so for an rsLoRA adapter
 * gen_hf.py converts a copy whose lora_alpha is alpha * sqrt(r).)  Tolerance as
 * test_hf_model.c's F32 bar: max |d| <= 1e-4 x the golden's std, top-1 at
 * every position. */
static const char *hf_root(void) {
    const char *d = getenv("SLIM_TEST_HF_DIR");
    return d && *d ? d : "tests/data/hf";
}

static void hf_lora_case(const char *base, const char *sub) {
    char dir[512], path[600];
    snprintf(dir, sizeof dir, "%s/%s", hf_root(), base);
    snprintf(path, sizeof path, "%s/%s/golden.bin", dir, sub);
    size_t size;
    uint8_t *buf = test_read_whole(path, &size);
    int32_t hdr[3];
    ck_assert(size >= 12);
    memcpy(hdr, buf, 12);
    const size_t T = (size_t)hdr[1], V = (size_t)hdr[2];
    ck_assert_msg(hdr[0] == 0x534C4847 && hdr[1] > 0 && hdr[1] <= 256 && hdr[2] > 0 &&
                      size == 12 + 4 * T + 4 * T * V,
                  "%s: bad header", path);
    const int32_t *tokens = (const int32_t *)(buf + 12);
    const float *ref = (const float *)(buf + 12 + 4 * T);
    double sum = 0, sum2 = 0;
    for (size_t i = 0; i < T * V; i++)
        sum += ref[i], sum2 += (double)ref[i] * ref[i];
    const double mean = sum / (double)(T * V), sd = sqrt(sum2 / (double)(T * V) - mean * mean);
    slim_model *m = NULL;
    ck_assert_msg(slim_model_load(dir, NULL, &m) == SLIM_OK, "%s: %s", dir, slim_last_error());
    slim_context_params cp = slim_context_default_params();
    cp.n_ctx = 128;
    cp.n_threads = 2;
    cp.kv_type = SLIM_KV_F32;
    slim_context *ctx = NULL;
    ck_assert_int_eq(slim_context_create(m, &cp, &ctx), SLIM_OK);
    float *out = malloc(T * V * sizeof(float));
    ck_assert_ptr_nonnull(out);
    for (int form = 0; form < 2; form++) {
        snprintf(path, sizeof path, "%s/%s%s", dir, sub, form ? ".gguf" : "");
        slim_lora *l = NULL;
        ck_assert_msg(slim_lora_load(m, path, &l) == SLIM_OK, "%s: %s", path, slim_last_error());
        ck_assert_int_eq(slim_context_attach_lora(ctx, l, 1.0f), SLIM_OK);
        slim_lora_free(l);
        slim_context_reset(ctx);
        ck_assert_msg(slim_prefill(ctx, tokens, T, out) == SLIM_OK, "%s", slim_last_error());
        ck_assert_int_eq(slim_context_detach_lora(ctx, l), SLIM_OK);
        double max_d = 0;
        int top1 = 0;
        for (size_t i = 0; i < T * V; i++) {
            const double d = fabs((double)out[i] - ref[i]);
            if (!(d <= max_d)) max_d = d;
        }
        for (size_t t = 0; t < T; t++)
            top1 += test_argmax(out + t * V, (int)V) == test_argmax(ref + t * V, (int)V);
        fprintf(stderr, "lora %-34s vs PEFT: top-1 %d/%zu, max |d| %.3g = %.3g x std\n", path, top1,
                T, max_d, max_d / sd);
        ck_assert_msg(top1 == (int)T, "%s: top-1 differs at %zu positions", path, T - (size_t)top1);
        ck_assert_msg(max_d / sd <= 1e-4, "%s: max |d| %.3g x std > 1e-4", path, max_d / sd);
    }
    free(out);
    free(buf);
    slim_context_free(ctx);
    slim_model_free(m);
}

START_TEST(test_lora_hf_peft) {
    static const char *const cases[] = {"llama", "llama_tied", "mistral", "qwen2",
                                        "gemma", "gemma2",     "gemma3",  "phi3"};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        hf_lora_case(cases[i], "lora");
        hf_lora_case(cases[i], "lora2");
    }
}
END_TEST

Suite *suite_lora(void) {
    Suite *s = suite_create("lora");
    TCase *tc = tcase_create("lora");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_lora_llama3_gguf_and_peft);
    tcase_add_test(tc, test_lora_llama3_two_adapters);
    tcase_add_test(tc, test_lora_gemma3);
    tcase_add_test(tc, test_lora_phi3_fused);
    tcase_add_test(tc, test_lora_interleaved_contexts);
    tcase_add_test(tc, test_lora_threads);
    tcase_add_test(tc, test_lora_attach_semantics);
    tcase_add_test(tc, test_lora_args);
    tcase_add_test(tc, test_lora_malformed_gguf);
    tcase_add_test(tc, test_lora_malformed_peft);
    tcase_add_test(tc, test_lora_hf_peft);
    suite_add_tcase(s, tc);
    return s;
}
