/* Batch invariance of the forward step (issue 13, item 7): a sequence's
 * logits are bitwise the same whatever else shares its steps.
 *
 * test_batch_matmul: every weight format's CPU matmul (plain and, where the
 * format has one, repacked), one token at a time and in batches of 2, 5, 16
 * and 32 at 1 and 2 threads, memcmp-equal row by row to one 33-token call.
 *
 * test_batch_<model>: sequences of different lengths arriving at different
 * steps, prompts chunked at odd sizes then decoded one token per step, some
 * sharing their first blocks with an earlier sequence (the later one skips
 * those positions and reads the earlier one's KV rows through its block
 * table), some with different LoRA adapters (one of those attached, none, or
 * all), block ids shuffled, under step token budgets of 1, 2, 5, 16 and 32 at
 * 1 and 2 threads (slim_forward_step on a paged context): every logits row of
 * every position a sequence computes is memcmp-equal to the same sequence
 * run alone through the single-sequence API (slim_prefill of the whole
 * sequence in one call, 1 thread, only that sequence's adapters attached). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cpu/cpu.h"
#include "backend/cpu/kernels.h"
#include "core/fp16.h"
#include "quant/blocks.h"
#include "quant/dtype.h"
#include "rng.h"
#include "runtime/context.h"
#include "slim.h"
#include "suites.h"

/* ------------------------------------------------------------------ matmul */

/* A row of random K-quant blocks (no quantizer for Q2_K..Q6_K): random bits,
 * then fp16 scales of a sane size. */
static void random_k_row(slim_dtype type, char *row, int64_t n) {
    const slim_dtype_traits *tr = slim_dtype_traits_of(type);
    const int64_t nb = n / tr->block_size;
    for (size_t i = 0; i < (size_t)(nb * tr->type_size); i++)
        row[i] = (char)(rng_next() & 0xFF);
    for (int64_t b = 0; b < nb; b++) {
        const uint16_t d = slim_f32_to_fp16((float)(rng_unif() * 0.01 + 0.001));
        const uint16_t m = slim_f32_to_fp16((float)(rng_unif() * 0.01));
        switch (type) {
        case SLIM_DTYPE_Q2_K: ((block_q2_K *)row)[b].d = d, ((block_q2_K *)row)[b].dmin = m; break;
        case SLIM_DTYPE_Q3_K: ((block_q3_K *)row)[b].d = d; break;
        case SLIM_DTYPE_Q4_K: ((block_q4_K *)row)[b].d = d, ((block_q4_K *)row)[b].dmin = m; break;
        case SLIM_DTYPE_Q5_K: ((block_q5_K *)row)[b].d = d, ((block_q5_K *)row)[b].dmin = m; break;
        default: ((block_q6_K *)row)[b].d = d; break;
        }
    }
}

static void matmul_run(const slim_tensor *w, const float *x, int64_t T, int threads, float *y) {
    slim_threadpool *pool = NULL;
    ck_assert_int_eq(slim_threadpool_create(threads, &pool), SLIM_OK);
    slim_exec ex = {.pool = pool, .scratch_size = sizeof(float) * (size_t)(w->ne[0] * T) + 4096};
    ex.scratch = malloc(ex.scratch_size);
    ck_assert_ptr_nonnull(ex.scratch);
    const slim_tensor *wl[1] = {w};
    float *yl[1] = {y};
    ck_assert_int_eq(slim_cpu_kernels_active()->matmul(&ex, 1, wl, x, T, yl), SLIM_OK);
    free(ex.scratch);
    slim_threadpool_free(pool);
}

START_TEST(test_batch_matmul) {
    static const slim_dtype types[] = {
        SLIM_DTYPE_F32,  SLIM_DTYPE_F16,  SLIM_DTYPE_BF16, SLIM_DTYPE_Q4_0, SLIM_DTYPE_Q4_1,
        SLIM_DTYPE_Q5_0, SLIM_DTYPE_Q5_1, SLIM_DTYPE_Q8_0, SLIM_DTYPE_Q2_K, SLIM_DTYPE_Q3_K,
        SLIM_DTYPE_Q4_K, SLIM_DTYPE_Q5_K, SLIM_DTYPE_Q6_K};
    static const int64_t batches[] = {1, 2, 5, 16, 32};
    enum { N = 512, T = 33 };
    rng_state = 0xBA7C4u;
    int n_checked = 0;
    for (size_t it = 0; it < sizeof types / sizeof types[0]; it++) {
        const slim_dtype_traits *tr = slim_dtype_traits_of(types[it]);
        ck_assert_msg(tr && tr->vec_dot, "type %d", types[it]);
        for (int64_t rows = 40; rows <= 64;
             rows += 24) { /* a ragged tail; whole 16/64-row groups */
            const size_t ws = slim_dtype_row_size(types[it], N);
            char *w = malloc(ws * (size_t)rows);
            float *wf = malloc(sizeof(float) * N), *x = malloc(sizeof(float) * N * T);
            float *y = malloc(sizeof(float) * (size_t)(rows * T)),
                  *yb = malloc(sizeof(float) * (size_t)(rows * T));
            ck_assert(w && wf && x && y && yb);
            for (int64_t r = 0; r < rows; r++) {
                if (!tr->from_float) {
                    random_k_row(types[it], w + (size_t)r * ws, N);
                    continue;
                }
                for (int i = 0; i < N; i++)
                    wf[i] = (float)(rng_unif() * 2 - 1) * (r % 7 == 3 ? 0.01f : 1.0f);
                tr->from_float(wf, w + (size_t)r * ws, N);
            }
            for (int i = 0; i < N * T; i++)
                x[i] = (float)(rng_unif() * 4 - 2);
            slim_tensor wt = {
                .name = "w",
                .type = types[it],
                .n_dims = 2,
                .ne = {N, rows, 1, 1},
                .nb = {(size_t)tr->type_size, ws, ws * (size_t)rows, ws * (size_t)rows},
                .data = w};
            void *packed = NULL;
            for (int pk = 0; pk < 2; pk++) {
                if (pk) { /* the repacked copy, where the format has one */
                    const size_t pb = slim_cpu_packed_size(&wt);
                    if (!pb) break;
                    packed = aligned_alloc(64, (pb + 63) & ~(size_t)63);
                    ck_assert_ptr_nonnull(packed);
                    slim_cpu_pack(&wt, packed);
                    ck_assert_ptr_eq(wt.packed, packed);
                }
                matmul_run(&wt, x, T, 1, y);
                for (int threads = 1; threads <= 2; threads++)
                    for (size_t ib = 0; ib < sizeof batches / sizeof batches[0]; ib++) {
                        const int64_t B = batches[ib];
                        /* every token once, in batches of B starting at odd offsets */
                        for (int64_t t0 = 0; t0 < T; t0 += B) {
                            const int64_t nb = T - t0 < B ? T - t0 : B;
                            matmul_run(&wt, x + t0 * N, nb, threads, yb);
                            ck_assert_msg(
                                memcmp(yb, y + t0 * rows, sizeof(float) * (size_t)(rows * nb)) == 0,
                                "%s%s rows %lld: tokens %lld..%lld in a batch of %lld, "
                                "%d threads, differ from one batch of %d",
                                tr->name, pk ? " repacked" : "", (long long)rows, (long long)t0,
                                (long long)(t0 + nb - 1), (long long)nb, threads, T);
                            n_checked++;
                        }
                    }
            }
            free(packed);
            free(w);
            free(wf);
            free(x);
            free(y);
            free(yb);
        }
    }
    printf("batch matmul: %d batches of every format (plain and repacked) bitwise equal to one "
           "batch of %d tokens\n",
           n_checked, T);
}
END_TEST

/* ------------------------------------------------------------------ models */

typedef struct seq_spec {
    int32_t len, prompt, chunk, arrive;
    int32_t share_from, share_blocks; /* -1: none; else the first blocks of that sequence */
    int32_t lora;                     /* SLIM_STEP_LORA_* or an adapter index */
} seq_spec;

typedef struct batch_case {
    const char *name;
    slim_model *model;
    slim_lora **loras;
    const float *scales;
    int32_t n_loras;
    const seq_spec *seqs;
    int32_t n_seqs;
    int32_t block_size, n_ctx;
    int32_t kv_type;
    const int32_t *budgets;
    int32_t n_budgets;
} batch_case;

typedef struct seq_run {
    int32_t *tokens;
    float *ref; /* [len][n_vocab] alone */
    int32_t *blocks, n_blocks;
    int32_t done; /* next position */
} seq_run;

/* The sequence alone through the single-sequence API: one prefill of every
 * token, 1 thread, only its adapters attached. */
static float *run_alone(const batch_case *c, const seq_spec *s, const int32_t *tokens) {
    const int32_t V = c->model->hp.n_vocab;
    slim_context_params cp = slim_context_default_params();
    cp.n_ctx = c->n_ctx;
    cp.n_batch = c->n_ctx;
    cp.n_threads = 1;
    cp.kv_type = c->kv_type;
    slim_context *ctx = NULL;
    ck_assert_msg(slim_context_create(c->model, &cp, &ctx) == SLIM_OK, "%s", slim_last_error());
    for (int32_t i = 0; i < c->n_loras; i++)
        if (s->lora == SLIM_STEP_LORA_ALL || s->lora == i)
            ck_assert_int_eq(slim_context_attach_lora(ctx, c->loras[i], c->scales[i]), SLIM_OK);
    float *out = malloc(sizeof(float) * (size_t)s->len * (size_t)V);
    ck_assert_ptr_nonnull(out);
    ck_assert_msg(slim_prefill(ctx, tokens, (size_t)s->len, out) == SLIM_OK, "%s",
                  slim_last_error());
    slim_context_free(ctx);
    return out;
}

/* One run of every sequence under a step token budget; returns the number of
 * logits rows compared. */
static int64_t run_batched(const batch_case *c, seq_run *runs, int32_t budget, int threads) {
    const int32_t V = c->model->hp.n_vocab, bs = c->block_size, S = c->n_seqs;
    int32_t total_blocks = 0;
    for (int32_t i = 0; i < S; i++)
        total_blocks += (c->seqs[i].len + bs - 1) / bs;
    const int32_t pool = total_blocks + 3;
    slim_context_params cp = slim_context_default_params();
    cp.n_ctx = c->n_ctx;
    cp.n_batch = budget;
    cp.n_threads = threads;
    cp.kv_type = c->kv_type;
    slim_context *ctx = NULL;
    ck_assert_msg(slim_context_create_paged(c->model, &cp, bs, pool, &ctx) == SLIM_OK, "%s",
                  slim_last_error());
    for (int32_t i = 0; i < c->n_loras; i++)
        ck_assert_int_eq(slim_context_attach_lora(ctx, c->loras[i], c->scales[i]), SLIM_OK);
    /* Block ids: a shuffled pool, shared prefixes through the tables. */
    int32_t *ids = malloc(sizeof(int32_t) * (size_t)pool);
    ck_assert_ptr_nonnull(ids);
    for (int32_t i = 0; i < pool; i++)
        ids[i] = i;
    for (int32_t i = pool - 1; i > 0; i--) {
        const int32_t j = (int32_t)(rng_next() % (uint64_t)(i + 1)), t = ids[i];
        ids[i] = ids[j];
        ids[j] = t;
    }
    int32_t next_id = 0;
    for (int32_t i = 0; i < S; i++) {
        const seq_spec *s = &c->seqs[i];
        seq_run *r = &runs[i];
        r->n_blocks = (s->len + bs - 1) / bs;
        for (int32_t k = 0; k < r->n_blocks; k++)
            r->blocks[k] = k < s->share_blocks ? runs[s->share_from].blocks[k] : ids[next_id++];
        r->done = s->share_from >= 0 ? s->share_blocks * bs : 0;
    }
    int32_t *tok = malloc(sizeof(int32_t) * (size_t)budget * 3);
    uint8_t *want = malloc((size_t)budget);
    slim_step_seq *sseq = malloc(sizeof *sseq * (size_t)S);
    int32_t *owner = malloc(sizeof(int32_t) * (size_t)budget);
    float *logits = malloc(sizeof(float) * (size_t)budget * (size_t)V);
    ck_assert(tok && want && sseq && owner && logits);
    int32_t *pos = tok + budget, *seq = tok + 2 * budget;
    int64_t compared = 0;
    for (int32_t step = 0;; step++) {
        int32_t n = 0, n_s = 0, left = 0;
        int32_t map[64]; /* sequence -> index in this step's seqs */
        ck_assert_int_le(S, 64);
        for (int32_t i = 0; i < S; i++) {
            map[i] = -1;
            if (runs[i].done < c->seqs[i].len) left++;
        }
        if (!left) break;
        ck_assert_int_lt(step, 10000);
        /* decodes first, then prefill chunks; the order rotates with the step */
        for (int pass = 0; pass < 2; pass++)
            for (int32_t k = 0; k < S && n < budget; k++) {
                const int32_t i = (k + step) % S;
                const seq_spec *s = &c->seqs[i];
                seq_run *r = &runs[i];
                if (step < s->arrive || r->done >= s->len) continue;
                /* a shared prefix must be in the cache before it is read */
                if (s->share_from >= 0 && runs[s->share_from].done < s->share_blocks * bs) continue;
                const bool decoding = r->done >= s->prompt;
                if (decoding != (pass == 0)) continue;
                int32_t take = decoding ? 1 : s->prompt - r->done;
                if (!decoding && take > s->chunk) take = s->chunk;
                if (take > budget - n) take = budget - n;
                if (map[i] < 0) {
                    map[i] = n_s;
                    sseq[n_s++] = (slim_step_seq){r->blocks, r->n_blocks, s->lora};
                }
                for (int32_t j = 0; j < take; j++, n++) {
                    tok[n] = r->tokens[r->done + j];
                    pos[n] = r->done + j;
                    seq[n] = map[i];
                    owner[n] = i;
                    want[n] = 1;
                }
                r->done += take;
            }
        if (!n) continue; /* waiting for a prefix owner or an arrival */
        const slim_step st = {.n_tokens = n,
                              .tokens = tok,
                              .pos = pos,
                              .seq = seq,
                              .want = want,
                              .n_seqs = n_s,
                              .seqs = sseq};
        ck_assert_msg(slim_forward_step(ctx, &st, logits) == SLIM_OK, "%s: %s", c->name,
                      slim_last_error());
        for (int32_t t = 0; t < n; t++) {
            const float *ref = runs[owner[t]].ref + (size_t)pos[t] * (size_t)V;
            ck_assert_msg(memcmp(logits + (size_t)t * (size_t)V, ref, sizeof(float) * (size_t)V) ==
                              0,
                          "%s: sequence %d position %d differs from the sequence alone (step %d "
                          "of %d tokens, %d sequences, budget %d, %d threads)",
                          c->name, owner[t], pos[t], step, n, n_s, budget, threads);
            compared++;
        }
    }
    free(tok);
    free(want);
    free(sseq);
    free(owner);
    free(logits);
    free(ids);
    slim_context_free(ctx);
    return compared;
}

static void run_case(const batch_case *c) {
    const int32_t V = c->model->hp.n_vocab, S = c->n_seqs;
    seq_run *runs = calloc((size_t)S, sizeof *runs);
    ck_assert_ptr_nonnull(runs);
    for (int32_t i = 0; i < S; i++) {
        const seq_spec *s = &c->seqs[i];
        ck_assert(s->len <= c->n_ctx && s->prompt <= s->len);
        runs[i].tokens = malloc(sizeof(int32_t) * (size_t)s->len);
        runs[i].blocks = malloc(sizeof(int32_t) * (size_t)(s->len / c->block_size + 1));
        ck_assert(runs[i].tokens && runs[i].blocks);
        for (int32_t p = 0; p < s->len; p++)
            runs[i].tokens[p] = s->share_from >= 0 && p < s->share_blocks * c->block_size
                                    ? runs[s->share_from].tokens[p]
                                    : (int32_t)(rng_next() % (uint64_t)V);
        runs[i].ref = run_alone(c, s, runs[i].tokens);
    }
    int64_t compared = 0;
    for (int32_t b = 0; b < c->n_budgets; b++)
        for (int threads = 1; threads <= 2; threads++)
            compared += run_batched(c, runs, c->budgets[b], threads);
    printf("batch %-8s %d sequences, %d adapters, budgets", c->name, S, c->n_loras);
    for (int32_t b = 0; b < c->n_budgets; b++)
        printf(" %d", c->budgets[b]);
    printf(" x 1, 2 threads: %lld logits rows memcmp-equal to each sequence alone\n",
           (long long)compared);
    for (int32_t i = 0; i < S; i++) {
        free(runs[i].tokens);
        free(runs[i].ref);
        free(runs[i].blocks);
    }
    free(runs);
}

static const int32_t all_budgets[] = {1, 2, 5, 16, 32};

/* Seven sequences over blocks of 8: prompts chunked by 7, 5, 11, 3, 13;
 * 2 and 6 share 2 and 3 blocks of 0 (same adapter); 3 is decode only. */
static void synth_case(const char *arch, const char *const *lora_files, int32_t n_loras,
                       int32_t kv_type) {
    char path[128];
    snprintf(path, sizeof path, "tests/data/synth_%s.gguf", arch);
    slim_model *m = NULL;
    ck_assert_msg(slim_model_load(path, NULL, &m) == SLIM_OK, "%s", slim_last_error());
    slim_lora *loras[2] = {NULL, NULL};
    static const float scales[2] = {1.0f, 0.75f};
    for (int32_t i = 0; i < n_loras; i++) {
        snprintf(path, sizeof path, "tests/data/%s", lora_files[i]);
        ck_assert_msg(slim_lora_load(m, path, &loras[i]) == SLIM_OK, "%s", slim_last_error());
    }
    const int32_t A = n_loras ? 0 : SLIM_STEP_LORA_NONE, Z = n_loras ? n_loras - 1 : A;
    const int32_t ALL = n_loras ? SLIM_STEP_LORA_ALL : SLIM_STEP_LORA_NONE;
    const seq_spec seqs[] = {
        {37, 30, 7, 0, -1, 0, A}, {21, 13, 5, 0, -1, 0, SLIM_STEP_LORA_NONE},
        {45, 40, 11, 2, 0, 2, A}, {9, 1, 1, 1, -1, 0, ALL},
        {30, 17, 3, 4, -1, 0, Z}, {26, 26, 26, 0, -1, 0, SLIM_STEP_LORA_NONE},
        {33, 24, 13, 3, 0, 3, A},
    };
    const batch_case c = {.name = arch,
                          .model = m,
                          .loras = loras,
                          .scales = scales,
                          .n_loras = n_loras,
                          .seqs = seqs,
                          .n_seqs = (int32_t)(sizeof seqs / sizeof seqs[0]),
                          .block_size = 8,
                          .n_ctx = 64,
                          .kv_type = kv_type,
                          .budgets = all_budgets,
                          .n_budgets = 5};
    run_case(&c);
    for (int32_t i = 0; i < n_loras; i++)
        slim_lora_free(loras[i]);
    slim_model_free(m);
}

START_TEST(test_batch_synth) {
    static const char *const llama3[] = {"lora_llama3_a.gguf", "lora_llama3_b.gguf"};
    static const char *const gemma3[] = {"lora_gemma3.gguf"};
    static const char *const phi3[] = {"lora_phi3.gguf"};
    rng_state = 0x5EB47u;
    synth_case("llama3", llama3, 2, SLIM_KV_F16);
    synth_case("gemma3", gemma3, 1, SLIM_KV_F16);
    synth_case("phi3", phi3, 1, SLIM_KV_F16);
    synth_case("mistral", NULL, 0, SLIM_KV_F32);
    synth_case("qwen2", NULL, 0, SLIM_KV_F16);
    synth_case("gemma2", NULL, 0, SLIM_KV_F16);
    synth_case("gemma", NULL, 0, SLIM_KV_F32);
}
END_TEST

/* The real models, briefly: three short sequences over blocks of 4, one
 * sharing a block of another, budgets 2, 5 and 32. */
static void real_case(const char *name, const char *path) {
    slim_model *m = NULL;
    ck_assert_msg(slim_model_load(path, NULL, &m) == SLIM_OK, "%s: %s", path, slim_last_error());
    static const seq_spec seqs[] = {
        {9, 7, 3, 0, -1, 0, SLIM_STEP_LORA_NONE},
        {6, 2, 2, 1, -1, 0, SLIM_STEP_LORA_NONE},
        {7, 6, 5, 1, 0, 1, SLIM_STEP_LORA_NONE},
    };
    static const int32_t budgets[] = {2, 5, 32};
    const batch_case c = {.name = name,
                          .model = m,
                          .seqs = seqs,
                          .n_seqs = 3,
                          .block_size = 4,
                          .n_ctx = 16,
                          .kv_type = SLIM_KV_F16,
                          .budgets = budgets,
                          .n_budgets = 3};
    run_case(&c);
    slim_model_free(m);
}

START_TEST(test_batch_real) {
    rng_state = 0x4EA1u;
    real_case("gemma3", test_model_path());
    real_case("smollm2", test_model_path_smollm2());
}
END_TEST

/* Steps the context must refuse, with the reason. */
START_TEST(test_batch_errors) {
    slim_model *m = NULL;
    ck_assert_int_eq(slim_model_load("tests/data/synth_llama3.gguf", NULL, &m), SLIM_OK);
    slim_context_params cp = slim_context_default_params();
    cp.n_ctx = 32;
    cp.n_batch = 4;
    cp.n_threads = 1;
    slim_context *ctx = NULL;
    ck_assert_int_eq(slim_context_create_paged(m, &cp, 0, 4, &ctx), SLIM_ERR_INVALID_ARG);
    ck_assert_int_eq(slim_context_create_paged(m, &cp, 8, 0, &ctx), SLIM_ERR_INVALID_ARG);
    ck_assert_int_eq(slim_context_create_paged(m, &cp, 8, 3, &ctx), SLIM_OK);
    int32_t blocks[2] = {1, 2}, tokens[2] = {5, 6}, pos[2] = {0, 1}, seq[2] = {0, 0};
    slim_step_seq sq = {blocks, 2, SLIM_STEP_LORA_NONE};
    slim_step st = {
        .n_tokens = 2, .tokens = tokens, .pos = pos, .seq = seq, .n_seqs = 1, .seqs = &sq};
    ck_assert_int_eq(slim_forward_step(ctx, &st, NULL), SLIM_OK);
    /* the single-sequence API needs n_ctx / block_size blocks: 4 of 3 */
    ck_assert_int_eq(slim_prefill(ctx, tokens, 2, NULL), SLIM_ERR_UNSUPPORTED);
    st.n_tokens = 5;
    ck_assert_int_eq(slim_forward_step(ctx, &st, NULL), SLIM_ERR_INVALID_ARG);
    st.n_tokens = 2;
    pos[1] = 16; /* past the table's 2 blocks */
    ck_assert_int_eq(slim_forward_step(ctx, &st, NULL), SLIM_ERR_INVALID_ARG);
    ck_assert(strstr(slim_last_error(), "position 16") != NULL);
    pos[1] = 1;
    blocks[0] = 3; /* outside the pool */
    ck_assert_int_eq(slim_forward_step(ctx, &st, NULL), SLIM_ERR_INVALID_ARG);
    blocks[0] = 1;
    sq.lora = 0; /* no adapter attached */
    ck_assert_int_eq(slim_forward_step(ctx, &st, NULL), SLIM_ERR_INVALID_ARG);
    sq.lora = SLIM_STEP_LORA_ALL;
    seq[1] = 1;
    ck_assert_int_eq(slim_forward_step(ctx, &st, NULL), SLIM_ERR_INVALID_ARG);
    seq[1] = 0;
    tokens[0] = -1;
    ck_assert_int_eq(slim_forward_step(ctx, &st, NULL), SLIM_ERR_INVALID_ARG);
    tokens[0] = 5;
    const uint8_t want[2] = {0, 1};
    st.want = want;
    ck_assert_int_eq(slim_forward_step(ctx, &st, NULL), SLIM_ERR_INVALID_ARG);
    slim_context_free(ctx);
    slim_model_free(m);
}
END_TEST

Suite *suite_batch(void) {
    Suite *s = suite_create("batch");
    TCase *tc = tcase_create("invariance");
    tcase_set_timeout(tc, 900);
    tcase_add_test(tc, test_batch_matmul);
    tcase_add_test(tc, test_batch_synth);
    tcase_add_test(tc, test_batch_real);
    tcase_add_test(tc, test_batch_errors);
    suite_add_tcase(s, tc);
    return s;
}
