/* The batched engine (lib/runtime/engine.c).
 *
 * Scheduler tests run on a fake forward step (engine.h's seam): its "KV
 * rows" hold the token and position each row was written for, and a wanted
 * token's logits are a hash of its sequence's tokens read back through the
 * block table, so a wrong table, a lost copy-on-write or a recomputation
 * that differs changes the greedy output.  Each request's tokens are
 * compared with the same function run over the request alone.
 * The model tests run the real batched step against slim_context. */
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "rng.h"
#include "runtime/engine.h"
#include "suites.h"

/* ---- the fake model ---------------------------------------------------------- */

enum { FV = 64 }; /* vocabulary */

typedef struct fake {
    int32_t n_blocks, bs;
    int32_t *tok, *pos; /* per row */
    atomic_int bad;     /* rows read that were not written for that position */
    atomic_int steps, max_seqs_seen;
} fake;

static uint64_t mix(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static uint64_t seq_hash(const int32_t *tokens, int32_t n, int32_t lora) {
    uint64_t h = mix((uint64_t)(lora + 2));
    for (int32_t i = 0; i < n; i++)
        h = mix(h ^ (uint64_t)(uint32_t)tokens[i]);
    return h;
}

static void fake_logits(uint64_t h, float *l) {
    for (int32_t v = 0; v < FV; v++)
        l[v] = (float)(mix(h + (uint64_t)v * 0x9e37ULL) % 100000) / 1000.0f;
}

static slim_status fake_step(void *user, const slim_step *s, float *logits) {
    fake *f = user;
    atomic_fetch_add(&f->steps, 1);
    if (s->n_seqs > atomic_load(&f->max_seqs_seen)) atomic_store(&f->max_seqs_seen, s->n_seqs);
    for (int32_t t = 0; t < s->n_tokens; t++) {
        const slim_step_seq *q = &s->seqs[s->seq[t]];
        const int32_t p = s->pos[t];
        if (p / f->bs >= q->n_blocks) return slim_error(SLIM_ERR_INTERNAL, "fake: short table");
        const int64_t row = (int64_t)q->blocks[p / f->bs] * f->bs + p % f->bs;
        f->tok[row] = s->tokens[t];
        f->pos[row] = p;
    }
    int32_t out = 0;
    for (int32_t t = 0; t < s->n_tokens; t++) {
        if (!s->want || !s->want[t]) continue;
        const slim_step_seq *q = &s->seqs[s->seq[t]];
        int32_t *buf = malloc((size_t)(s->pos[t] + 1) * sizeof *buf);
        for (int32_t p = 0; p <= s->pos[t]; p++) {
            const int64_t row = (int64_t)q->blocks[p / f->bs] * f->bs + p % f->bs;
            if (f->pos[row] != p) atomic_fetch_add(&f->bad, 1);
            buf[p] = f->tok[row];
        }
        fake_logits(seq_hash(buf, s->pos[t] + 1, q->lora), logits + (size_t)out++ * FV);
        free(buf);
    }
    return SLIM_OK;
}

static slim_status fake_copy(void *user, int32_t dst, int32_t src) {
    fake *f = user;
    memcpy(f->tok + (size_t)dst * f->bs, f->tok + (size_t)src * f->bs, (size_t)f->bs * 4);
    memcpy(f->pos + (size_t)dst * f->bs, f->pos + (size_t)src * f->bs, (size_t)f->bs * 4);
    return SLIM_OK;
}

static slim_status fake_attach(void *user, slim_lora *lora, float scale) { return SLIM_OK; }

static slim_lora *fake_detached; /* the last adapter fake_detach was given */
static slim_status fake_detach(void *user, slim_lora *lora) {
    fake_detached = lora;
    return SLIM_OK;
}

static slim_engine *fake_engine(fake *f, int32_t n_blocks, slim_engine_params p) {
    f->n_blocks = n_blocks;
    f->bs = p.block_size;
    f->tok = malloc((size_t)n_blocks * f->bs * sizeof *f->tok);
    f->pos = malloc((size_t)n_blocks * f->bs * sizeof *f->pos);
    for (int32_t i = 0; i < n_blocks * f->bs; i++)
        f->pos[i] = -1;
    atomic_store(&f->bad, 0);
    atomic_store(&f->steps, 0);
    atomic_store(&f->max_seqs_seen, 0);
    const slim_engine_exec ex = {.step = fake_step,
                                 .copy = fake_copy,
                                 .attach = fake_attach,
                                 .detach = fake_detach,
                                 .user = f,
                                 .n_vocab = FV,
                                 .n_blocks = n_blocks};
    slim_engine *e = NULL;
    ck_assert_msg(slim_engine_create_exec(NULL, &p, &ex, &e) == SLIM_OK, "%s", slim_last_error());
    return e;
}

static void fake_free(fake *f) {
    free(f->tok);
    free(f->pos);
}

/* The greedy tokens the fake model gives a prompt alone. */
static void reference(const int32_t *prompt, int32_t n, int32_t max_tokens, int32_t lora,
                      int32_t *out) {
    int32_t *all = malloc((size_t)(n + max_tokens) * sizeof *all);
    memcpy(all, prompt, (size_t)n * sizeof *all);
    float l[FV];
    for (int32_t i = 0; i < max_tokens; i++) {
        fake_logits(seq_hash(all, n + i, lora), l);
        int32_t best = 0;
        for (int32_t v = 1; v < FV; v++)
            if (l[v] > l[best]) best = v;
        all[n + i] = out[i] = best;
    }
    free(all);
}

static slim_engine_params small_params(int32_t bs, int32_t step_tokens, int32_t max_seqs) {
    slim_engine_params p = slim_engine_default_params();
    p.block_size = bs;
    p.step_tokens = step_tokens;
    p.max_seqs = max_seqs;
    p.n_ctx = 4096;
    return p;
}

/* Poll a request to its end; returns the DONE event's fields copied. */
typedef struct result {
    int32_t tokens[512], n_tokens, n_events, finish, n_cached, n_prompt, n_completion;
    float logprob[512];
    slim_logprob top[512][4];
} result;

static void poll_done(slim_engine *e, uint64_t id, result *res) {
    memset(res, 0, sizeof *res);
    for (;;) {
        slim_event ev = {.struct_size = sizeof ev};
        ck_assert_msg(slim_engine_poll(e, id, -1, &ev) == SLIM_OK, "%s", slim_last_error());
        ck_assert_uint_eq(ev.request, id);
        if (ev.type == SLIM_EVENT_TOKEN) {
            ck_assert_int_lt(res->n_events, 512);
            res->logprob[res->n_events] = ev.logprob;
            for (int32_t k = 0; k < ev.n_top && k < 4; k++)
                res->top[res->n_events][k] = ev.top[k];
            res->n_events++;
            continue;
        }
        ck_assert_int_eq(ev.type, SLIM_EVENT_DONE);
        ck_assert_int_le(ev.n_tokens, 512);
        memcpy(res->tokens, ev.tokens, (size_t)ev.n_tokens * sizeof *ev.tokens);
        res->n_tokens = ev.n_tokens;
        res->finish = ev.finish_reason;
        res->n_cached = ev.n_cached;
        res->n_prompt = ev.n_prompt;
        res->n_completion = ev.n_completion;
        ck_assert_msg(ev.queue_ms >= 0 && ev.ttft_ms >= ev.queue_ms && ev.total_ms >= ev.ttft_ms,
                      "timings %g %g %g", ev.queue_ms, ev.ttft_ms, ev.total_ms);
        break;
    }
    ck_assert_int_eq(slim_engine_release(e, id), SLIM_OK);
}

static slim_engine_stats get_stats(slim_engine *e) {
    slim_engine_stats st = {.struct_size = sizeof st};
    ck_assert_int_eq(slim_engine_get_stats(e, &st), SLIM_OK);
    return st;
}

/* ---- scheduler on the fake ---------------------------------------------------- */

enum { NREQ = 64 };

typedef struct workload {
    int32_t prompt[NREQ][48], n_prompt[NREQ], max_tokens[NREQ], lora[NREQ];
    int32_t want[NREQ][32];
    int64_t need_tokens;
} workload;

/* 64 prompts of 3..47 tokens, a third sharing a 24-token prefix. */
static void make_workload(workload *w, int n_lora) {
    rng_state = 77;
    const int32_t shared[24] = {5,  9,  1,  33, 2,  7,  60, 8,  9,  10, 11, 12,
                                13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24};
    w->need_tokens = 0;
    for (int i = 0; i < NREQ; i++) {
        const int32_t n = 3 + (int32_t)(rng_next() % 45);
        for (int32_t k = 0; k < n; k++)
            w->prompt[i][k] = (i % 3 == 0 && k < 24) ? shared[k] : (int32_t)(rng_next() % FV);
        w->n_prompt[i] = n;
        w->max_tokens[i] = 4 + (int32_t)(rng_next() % 28);
        w->lora[i] = n_lora ? (int32_t)(rng_next() % (n_lora + 1)) - 1 : -1;
        reference(w->prompt[i], n, w->max_tokens[i], w->lora[i], w->want[i]);
        w->need_tokens += n + w->max_tokens[i];
    }
}

static uint64_t submit_tokens(slim_engine *e, const int32_t *t, int32_t n, int32_t max_tokens,
                              int32_t lora) {
    slim_request_params rp = slim_request_default_params();
    rp.tokens = t;
    rp.n_tokens = (size_t)n;
    rp.max_tokens = max_tokens;
    rp.lora = lora;
    uint64_t id = 0;
    ck_assert_msg(slim_engine_submit(e, &rp, &id) == SLIM_OK, "%s", slim_last_error());
    ck_assert_uint_ne(id, 0);
    return id;
}

static void check_result(const workload *w, int i, const result *res) {
    ck_assert_int_eq(res->finish, SLIM_FINISH_LENGTH);
    ck_assert_int_eq(res->n_tokens, w->max_tokens[i]);
    ck_assert_int_eq(res->n_events, w->max_tokens[i]);
    ck_assert_int_eq(res->n_prompt, w->n_prompt[i]);
    for (int32_t k = 0; k < res->n_tokens; k++)
        ck_assert_msg(res->tokens[k] == w->want[i][k], "request %d token %d: %d, alone %d", i, k,
                      res->tokens[k], w->want[i][k]);
}

/* 64 requests on a pool a quarter of their need: all complete as alone, with
 * preemptions, prefix hits and no block left referenced. */
START_TEST(test_fake_pressure) {
    static workload w;
    make_workload(&w, 2);
    fake f;
    const int32_t bs = 4, n_blocks = (int32_t)(w.need_tokens / 4 / bs);
    slim_engine *e = fake_engine(&f, n_blocks, small_params(bs, 96, 32));
    ck_assert_int_eq(slim_engine_attach_lora(e, (slim_lora *)&w, 1.0f, NULL), SLIM_OK);
    int32_t idx = -1;
    ck_assert_int_eq(slim_engine_attach_lora(e, (slim_lora *)&f, 1.0f, &idx), SLIM_OK);
    ck_assert_int_eq(idx, 1);
    ck_assert_int_eq(slim_engine_attach_lora(e, (slim_lora *)&f, 1.0f, NULL), SLIM_ERR_INVALID_ARG);
    uint64_t ids[NREQ];
    for (int i = 0; i < NREQ; i++)
        ids[i] = submit_tokens(e, w.prompt[i], w.n_prompt[i], w.max_tokens[i], w.lora[i]);
    static result res;
    for (int i = 0; i < NREQ; i++) {
        poll_done(e, ids[i], &res);
        check_result(&w, i, &res);
    }
    const slim_engine_stats st = get_stats(e);
    printf("engine (fake): %d requests, %lld tokens needed, pool %d blocks of %d: %lld steps, "
           "%lld preemptions, %lld prefix-hit tokens, widest step %d sequences\n",
           NREQ, (long long)w.need_tokens, n_blocks, bs, (long long)st.n_steps,
           (long long)st.n_preemptions, (long long)st.prefix_hit_tokens,
           atomic_load(&f.max_seqs_seen));
    ck_assert_int_eq(atomic_load(&f.bad), 0);
    ck_assert_int_gt(st.n_preemptions, 0);
    ck_assert_int_gt(st.prefix_hit_tokens, 0);
    ck_assert_int_le(atomic_load(&f.max_seqs_seen), 32);
    ck_assert_int_gt(atomic_load(&f.max_seqs_seen), 4);
    ck_assert_int_eq(st.kv_used, 0);
    ck_assert_int_eq(st.kv_free + st.kv_cached, st.kv_blocks);
    ck_assert_int_eq(st.n_running, 0);
    ck_assert_int_eq(st.n_waiting, 0);
    slim_engine_free(e);
    fake_free(&f);
}
END_TEST

/* The same prompt twice: the second attaches the first's full blocks (all
 * but the last token's block) and gives the same tokens; prompt
 * log-probabilities skip the cache. */
START_TEST(test_fake_prefix_and_logprobs) {
    fake f;
    slim_engine *e = fake_engine(&f, 64, small_params(4, 16, 8));
    int32_t prompt[21], want[6];
    for (int i = 0; i < 21; i++)
        prompt[i] = (i * 7 + 3) % FV;
    reference(prompt, 21, 6, -1, want);
    result a, b;
    poll_done(e, submit_tokens(e, prompt, 21, 6, -1), &a);
    ck_assert_int_eq(a.n_cached, 0);
    poll_done(e, submit_tokens(e, prompt, 21, 6, -1), &b);
    ck_assert_int_eq(b.n_cached, 20);
    ck_assert_int_eq(memcmp(a.tokens, want, sizeof want), 0);
    ck_assert_int_eq(memcmp(b.tokens, want, sizeof want), 0);
    /* A prompt of exactly 20 tokens gets 16 cached: its last token is computed. */
    poll_done(e, submit_tokens(e, prompt, 20, 2, -1), &b);
    ck_assert_int_eq(b.n_cached, 16);
    /* Another adapter: nothing cached. */
    ck_assert_int_eq(slim_engine_attach_lora(e, (slim_lora *)&a, 0.5f, NULL), SLIM_OK);
    poll_done(e, submit_tokens(e, prompt, 21, 2, 0), &b);
    ck_assert_int_eq(b.n_cached, 0);

    /* Log-probabilities of generated and prompt tokens against the fake's logits. */
    slim_request_params rp = slim_request_default_params();
    rp.tokens = prompt;
    rp.n_tokens = 21;
    rp.max_tokens = 3;
    rp.logprobs = 4;
    rp.prompt_logprobs = 1;
    uint64_t id;
    ck_assert_int_eq(slim_engine_submit(e, &rp, &id), SLIM_OK);
    int32_t all[24];
    memcpy(all, prompt, sizeof prompt);
    memcpy(all + 21, want, 3 * sizeof *all);
    float l[FV];
    int n_tok = 0;
    for (;;) {
        slim_event ev = {.struct_size = sizeof ev};
        ck_assert_int_eq(slim_engine_poll(e, id, -1, &ev), SLIM_OK);
        if (ev.type == SLIM_EVENT_DONE) {
            ck_assert_int_eq(ev.n_cached, 0);
            ck_assert_ptr_nonnull(ev.prompt_logprobs);
            ck_assert_int_eq(ev.n_prompt_top, 4);
            for (int32_t i = 1; i < 21; i++) {
                fake_logits(seq_hash(all, i, -1), l);
                double mx = -1e30, s = 0;
                for (int v = 0; v < FV; v++)
                    mx = fmax(mx, l[v]);
                for (int v = 0; v < FV; v++)
                    s += exp(l[v] - mx);
                const double lp = l[all[i]] - mx - log(s);
                ck_assert_int_eq(ev.prompt_logprobs[i].token, all[i]);
                ck_assert_msg(fabs(ev.prompt_logprobs[i].logprob - lp) < 1e-4,
                              "prompt token %d: %g vs %g", i, ev.prompt_logprobs[i].logprob, lp);
                const slim_logprob *top = ev.prompt_top + i * 4;
                for (int k = 0; k < 4; k++) { /* sorted, and nothing larger left out */
                    if (k) ck_assert(top[k].logprob <= top[k - 1].logprob);
                    int larger = 0;
                    for (int v = 0; v < FV; v++)
                        larger += l[v] > l[top[k].token];
                    ck_assert_int_eq(larger, k);
                }
            }
            break;
        }
        fake_logits(seq_hash(all, 21 + n_tok, -1), l);
        ck_assert_int_eq(ev.token, want[n_tok]);
        ck_assert_int_eq(ev.n_top, 4);
        ck_assert_int_eq(ev.top[0].token, want[n_tok]); /* greedy: the most likely */
        ck_assert_float_eq(ev.top[0].logprob, ev.logprob);
        ck_assert(ev.logprob < 0 && ev.top[3].logprob <= ev.top[2].logprob);
        n_tok++;
    }
    ck_assert_int_eq(n_tok, 3);
    slim_engine_release(e, id);
    ck_assert_int_eq(get_stats(e).kv_used, 0);
    ck_assert_int_eq(atomic_load(&f.bad), 0);
    slim_engine_free(e);
    fake_free(&f);
}
END_TEST

/* Callbacks from several submitting threads at once. */
typedef struct cb_req {
    int32_t tokens[40], n, finish;
    atomic_int done;
} cb_req;

static atomic_int cb_done_count;

static int on_event(const slim_event *ev, void *user) {
    cb_req *c = user;
    if (ev->type == SLIM_EVENT_TOKEN) {
        if (c->n < 40) c->tokens[c->n++] = ev->token;
    } else {
        c->finish = ev->finish_reason;
        atomic_store(&c->done, 1);
        atomic_fetch_add(&cb_done_count, 1);
    }
    return 0;
}

typedef struct submitter {
    slim_engine *e;
    const workload *w;
    cb_req *reqs;
    int first, count;
} submitter;

static void *submit_thread(void *arg) {
    submitter *s = arg;
    for (int i = s->first; i < s->first + s->count; i++) {
        slim_request_params rp = slim_request_default_params();
        rp.tokens = s->w->prompt[i];
        rp.n_tokens = (size_t)s->w->n_prompt[i];
        rp.max_tokens = s->w->max_tokens[i];
        rp.on_event = on_event;
        rp.user = &s->reqs[i];
        uint64_t id;
        if (slim_engine_submit(s->e, &rp, &id)) return (void *)1;
    }
    return NULL;
}

START_TEST(test_fake_threads) {
    static workload w;
    make_workload(&w, 0);
    fake f;
    slim_engine *e = fake_engine(&f, (int32_t)(w.need_tokens / 2 / 8), small_params(8, 32, 8));
    static cb_req reqs[NREQ];
    memset(reqs, 0, sizeof reqs);
    atomic_store(&cb_done_count, 0);
    pthread_t th[4];
    submitter sub[4];
    for (int t = 0; t < 4; t++) {
        sub[t] = (submitter){e, &w, reqs, t * 16, 16};
        ck_assert_int_eq(pthread_create(&th[t], NULL, submit_thread, &sub[t]), 0);
    }
    for (int t = 0; t < 4; t++) {
        void *ret;
        pthread_join(th[t], &ret);
        ck_assert_ptr_null(ret);
    }
    for (int spins = 0; atomic_load(&cb_done_count) < NREQ && spins < 20000; spins++)
        nanosleep(&(struct timespec){0, 1000000}, NULL);
    ck_assert_int_eq(atomic_load(&cb_done_count), NREQ);
    for (int i = 0; i < NREQ; i++) {
        ck_assert_int_eq(reqs[i].finish, SLIM_FINISH_LENGTH);
        ck_assert_int_eq(reqs[i].n, w.max_tokens[i]);
        ck_assert_int_eq(memcmp(reqs[i].tokens, w.want[i], (size_t)reqs[i].n * 4), 0);
    }
    ck_assert_int_eq(get_stats(e).kv_used, 0);
    slim_engine_free(e);
    fake_free(&f);
}
END_TEST

/* Cancel a running request and one still queued; free with requests in flight. */
START_TEST(test_fake_cancel) {
    fake f;
    slim_engine_params p = small_params(4, 16, 4);
    p.n_ctx = 100000;
    slim_engine *e = fake_engine(&f, 2000, p);
    int32_t prompt[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    const uint64_t a = submit_tokens(e, prompt, 8, 5000, -1);
    slim_event ev = {.struct_size = sizeof ev};
    ck_assert_int_eq(slim_engine_poll(e, a, -1, &ev), SLIM_OK);
    ck_assert_int_eq(ev.type, SLIM_EVENT_TOKEN);
    ck_assert_int_eq(slim_engine_poll(e, a, -1, &ev), SLIM_OK); /* the first step's counters */
    ck_assert_int_gt(get_stats(e).kv_used, 0);
    ck_assert_int_eq(slim_engine_cancel(e, a), SLIM_OK);
    do
        ck_assert_int_eq(slim_engine_poll(e, a, -1, &ev), SLIM_OK);
    while (ev.type == SLIM_EVENT_TOKEN);
    ck_assert_int_eq(ev.type, SLIM_EVENT_DONE);
    ck_assert_int_eq(ev.finish_reason, SLIM_FINISH_CANCELLED);
    ck_assert_int_lt(ev.n_completion, 5000);
    ck_assert_int_eq(get_stats(e).kv_used, 0);
    /* Polling past the end is an error; release forgets the id. */
    ck_assert_int_eq(slim_engine_poll(e, a, 0, &ev), SLIM_ERR_INVALID_ARG);
    ck_assert_int_eq(slim_engine_release(e, a), SLIM_OK);
    ck_assert_int_eq(slim_engine_poll(e, a, 0, &ev), SLIM_ERR_INVALID_ARG);
    ck_assert_int_eq(slim_engine_cancel(e, a), SLIM_ERR_INVALID_ARG);
    /* Non-blocking poll; release of an unfinished request; free with work left. */
    const uint64_t b = submit_tokens(e, prompt, 8, 5000, -1);
    const uint64_t c = submit_tokens(e, prompt, 8, 5000, -1);
    ck_assert_int_eq(slim_engine_poll(e, b, 0, &ev), SLIM_OK);
    ck_assert(ev.type == SLIM_EVENT_NONE || ev.type == SLIM_EVENT_TOKEN);
    ck_assert_int_eq(slim_engine_release(e, b), SLIM_OK);
    ck_assert_int_eq(slim_engine_poll(e, c, 1000, &ev), SLIM_OK);
    slim_engine_free(e);
    fake_free(&f);
}
END_TEST

/* A callback that holds the engine's thread at the first token until `open`,
 * and tries to detach its own adapter from there (never waits: BUSY). */
typedef struct gate {
    slim_engine *e;
    atomic_int open, tokens, done, detach_status;
} gate;

static int gate_event(const slim_event *ev, void *user) {
    gate *g = user;
    if (ev->type == SLIM_EVENT_DONE) {
        atomic_store(&g->done, 1);
        return 0;
    }
    if (atomic_fetch_add(&g->tokens, 1) == 0) {
        atomic_store(&g->detach_status, slim_engine_detach_lora(g->e, 0, -1));
        while (!atomic_load(&g->open))
            nanosleep(&(struct timespec){0, 1000000}, NULL);
    }
    return 0;
}

typedef struct detach_job {
    slim_engine *e;
    atomic_int status, returned;
} detach_job;

static void *detach_thread(void *arg) {
    detach_job *j = arg;
    atomic_store(&j->status, slim_engine_detach_lora(j->e, 0, -1));
    atomic_store(&j->returned, 1);
    return NULL;
}

/* Detach waits for the requests naming the adapter (or says BUSY), refuses
 * new ones meanwhile, and later adapters keep their indices and outputs. */
START_TEST(test_fake_detach) {
    fake f;
    slim_engine *e = fake_engine(&f, 256, small_params(4, 32, 8));
    int a = 0, b = 0;
    int32_t ia = -1, ib = -1;
    ck_assert_int_eq(slim_engine_attach_lora(e, (slim_lora *)&a, 1.0f, &ia), SLIM_OK);
    ck_assert_int_eq(slim_engine_attach_lora(e, (slim_lora *)&b, 1.0f, &ib), SLIM_OK);
    ck_assert_int_eq(ia, 0);
    ck_assert_int_eq(ib, 1);
    const int32_t prompt[6] = {3, 1, 4, 1, 5, 9};
    int32_t want[8];
    result res;
    reference(prompt, 6, 8, 1, want); /* adapter b is the context's second */
    poll_done(e, submit_tokens(e, prompt, 6, 8, ib), &res);
    ck_assert_int_eq(memcmp(res.tokens, want, sizeof want), 0);

    /* A request on adapter a, held inside its first token's callback. */
    gate g = {.e = e};
    slim_request_params rp = slim_request_default_params();
    rp.tokens = prompt;
    rp.n_tokens = 6;
    rp.max_tokens = 4;
    rp.lora = ia;
    rp.on_event = gate_event;
    rp.user = &g;
    uint64_t id = 0;
    ck_assert_int_eq(slim_engine_submit(e, &rp, &id), SLIM_OK);
    while (!atomic_load(&g.tokens))
        nanosleep(&(struct timespec){0, 1000000}, NULL);
    ck_assert_int_eq(atomic_load(&g.detach_status), SLIM_ERR_BUSY); /* from its own callback */
    ck_assert_int_eq(slim_engine_detach_lora(e, ia, 0), SLIM_ERR_BUSY);
    ck_assert_str_eq(slim_last_error(), "slim_engine_detach_lora: 1 unfinished request uses "
                                        "adapter 0");
    ck_assert_int_eq(slim_engine_detach_lora(e, ia, 30), SLIM_ERR_BUSY);
    ck_assert_ptr_null(fake_detached);
    /* A waiting detach: submits naming a are refused until it returns. */
    detach_job j = {.e = e};
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, detach_thread, &j), 0);
    slim_request_params q = slim_request_default_params();
    q.tokens = prompt;
    q.n_tokens = 6;
    q.max_tokens = 1;
    q.lora = ia;
    uint64_t extra[64];
    int n_extra = 0;
    for (;;) {
        uint64_t x = 0;
        const slim_status st = slim_engine_submit(e, &q, &x);
        if (st) {
            ck_assert_int_eq(st, SLIM_ERR_INVALID_ARG);
            break;
        }
        ck_assert_int_lt(n_extra, 64); /* the detach thread should have started by now */
        extra[n_extra++] = x;
        nanosleep(&(struct timespec){0, 2000000}, NULL);
    }
    ck_assert_int_eq(atomic_load(&j.returned), 0);
    atomic_store(&g.open, 1);
    for (int i = 0; i < n_extra; i++)
        poll_done(e, extra[i], &res);
    pthread_join(th, NULL);
    ck_assert_int_eq(atomic_load(&j.status), SLIM_OK);
    while (!atomic_load(&g.done)) /* its DONE callback follows the release of its adapter */
        nanosleep(&(struct timespec){0, 1000000}, NULL);
    ck_assert_ptr_eq(fake_detached, (slim_lora *)&a);
    /* a is gone; b keeps index 1 and is now the context's first adapter. */
    uint64_t x = 0;
    ck_assert_int_eq(slim_engine_submit(e, &q, &x), SLIM_ERR_INVALID_ARG);
    ck_assert_int_eq(slim_engine_detach_lora(e, ia, 0), SLIM_ERR_INVALID_ARG);
    ck_assert_int_eq(slim_engine_detach_lora(e, 7, 0), SLIM_ERR_INVALID_ARG);
    ck_assert_int_eq(slim_engine_detach_lora(e, -1, 0), SLIM_ERR_INVALID_ARG);
    ck_assert_int_eq(slim_engine_detach_lora(NULL, 0, 0), SLIM_ERR_INVALID_ARG);
    reference(prompt, 6, 8, 0, want);
    poll_done(e, submit_tokens(e, prompt, 6, 8, ib), &res);
    ck_assert_int_eq(memcmp(res.tokens, want, sizeof want), 0);
    /* Attaching a again gives a new index (2), the context's second. */
    int32_t ia2 = -1;
    ck_assert_int_eq(slim_engine_attach_lora(e, (slim_lora *)&a, 1.0f, &ia2), SLIM_OK);
    ck_assert_int_eq(ia2, 2);
    reference(prompt, 6, 8, 1, want);
    poll_done(e, submit_tokens(e, prompt, 6, 8, ia2), &res);
    ck_assert_int_eq(memcmp(res.tokens, want, sizeof want), 0);
    ck_assert_int_eq(get_stats(e).kv_used, 0);
    slim_engine_free(e);
    fake_free(&f);
    fake_detached = NULL;
}
END_TEST

START_TEST(test_fake_bad_args) {
    fake f;
    slim_engine_params p = small_params(4, 16, 4);
    p.max_queue = 2;
    p.n_ctx = 64;
    slim_engine *e = fake_engine(&f, 8, p); /* 32 tokens of KV */
    int32_t t[40] = {0};
    slim_request_params rp = slim_request_default_params();
    uint64_t id = 7;
    ck_assert_int_eq(slim_engine_submit(NULL, &rp, &id), SLIM_ERR_INVALID_ARG);
    ck_assert_int_eq(slim_engine_submit(e, NULL, &id), SLIM_ERR_INVALID_ARG);
    ck_assert_int_eq(slim_engine_submit(e, &rp, NULL), SLIM_ERR_INVALID_ARG);
    ck_assert_int_eq(slim_engine_submit(e, &rp, &id), SLIM_ERR_INVALID_ARG); /* no prompt */
    ck_assert_uint_eq(id, 0);
    ck_assert_ptr_nonnull(strstr(slim_last_error(), "neither tokens nor prompt"));
    rp.tokens = t;
    rp.n_tokens = 0;
    ck_assert_int_eq(slim_engine_submit(e, &rp, &id), SLIM_ERR_INVALID_ARG);
    rp.n_tokens = 4;
    rp.prompt = "text";
    t[2] = FV;
    ck_assert_int_eq(slim_engine_submit(e, &rp, &id), SLIM_ERR_INVALID_ARG);
    ck_assert_ptr_nonnull(strstr(slim_last_error(), "token 2 has id 64"));
    t[2] = 0;
    rp.n_tokens = 32; /* the pool holds 32 tokens: no room to generate */
    ck_assert_int_eq(slim_engine_submit(e, &rp, &id), SLIM_ERR_INVALID_ARG);
    ck_assert_ptr_nonnull(strstr(slim_last_error(), "KV pool"));
    rp.n_tokens = 4;
    rp.lora = 0;
    ck_assert_int_eq(slim_engine_submit(e, &rp, &id), SLIM_ERR_INVALID_ARG);
    rp.lora = -1;
    rp.logprobs = 21;
    ck_assert_int_eq(slim_engine_submit(e, &rp, &id), SLIM_ERR_INVALID_ARG);
    rp.logprobs = 0;
    rp.max_tokens = -1;
    ck_assert_int_eq(slim_engine_submit(e, &rp, &id), SLIM_ERR_INVALID_ARG);
    rp.max_tokens = 2;
    const char *stops[] = {"x", ""};
    rp.stop = stops;
    rp.n_stop = 2;
    ck_assert_int_eq(slim_engine_submit(e, &rp, &id), SLIM_ERR_INVALID_ARG);
    rp.n_stop = 0;
    slim_sampler_params sp = slim_sampler_default_params();
    sp.top_p = -1;
    rp.sampling = &sp;
    ck_assert_int_eq(slim_engine_submit(e, &rp, &id), SLIM_ERR_INVALID_ARG);
    /* logit_bias: a token outside the vocabulary is refused at submit; one inside
     * steers every greedy choice (the fake's logits lie in [0, 100)) */
    sp = slim_sampler_default_params();
    sp.temperature = 0;
    slim_logit_bias lb = {FV, 1.0f};
    sp.logit_bias = &lb;
    sp.n_logit_bias = 1;
    ck_assert_int_eq(slim_engine_submit(e, &rp, &id), SLIM_ERR_INVALID_ARG);
    ck_assert_msg(strstr(slim_last_error(), "logit_bias[0].token = 64"), "%s", slim_last_error());
    lb = (slim_logit_bias){5, 100.0f};
    ck_assert_int_eq(slim_engine_submit(e, &rp, &id), SLIM_OK);
    lb.token = 6; /* copied at submit: no effect */
    {
        result res;
        poll_done(e, id, &res);
        ck_assert_int_eq(res.n_tokens, 2);
        ck_assert_int_eq(res.tokens[0], 5);
        ck_assert_int_eq(res.tokens[1], 5);
    }
    rp.sampling = NULL;
    rp.struct_size = 3;
    ck_assert_int_eq(slim_engine_submit(e, &rp, &id), SLIM_ERR_INVALID_ARG);
    rp.struct_size = sizeof rp;
    /* Text prompts need a tokenizer: the fake has none. */
    rp.tokens = NULL;
    ck_assert_int_eq(slim_engine_submit(e, &rp, &id), SLIM_ERR_UNSUPPORTED);
    rp.tokens = t;
    /* The queue holds two unfinished requests. */
    uint64_t a, b;
    ck_assert_int_eq(slim_engine_submit(e, &rp, &a), SLIM_OK);
    ck_assert_int_eq(slim_engine_submit(e, &rp, &b), SLIM_OK);
    ck_assert_int_eq(slim_engine_submit(e, &rp, &id), SLIM_ERR_BUSY);
    result res;
    poll_done(e, a, &res);
    ck_assert_int_eq(slim_engine_submit(e, &rp, &id), SLIM_OK);
    poll_done(e, b, &res);
    poll_done(e, id, &res);
    /* poll / cancel / release / stats / attach / create */
    slim_event ev = {.struct_size = 1};
    ck_assert_int_eq(slim_engine_poll(e, 12345, 0, &ev), SLIM_ERR_INVALID_ARG);
    ev.struct_size = sizeof ev;
    ck_assert_int_eq(slim_engine_poll(NULL, 1, 0, &ev), SLIM_ERR_INVALID_ARG);
    ck_assert_int_eq(slim_engine_poll(e, 12345, 0, &ev), SLIM_ERR_INVALID_ARG);
    ck_assert_int_eq(slim_engine_poll(e, 1, 0, NULL), SLIM_ERR_INVALID_ARG);
    ck_assert_int_eq(slim_engine_cancel(NULL, 1), SLIM_ERR_INVALID_ARG);
    ck_assert_int_eq(slim_engine_release(e, 12345), SLIM_ERR_INVALID_ARG);
    ck_assert_int_eq(slim_engine_get_stats(e, NULL), SLIM_ERR_INVALID_ARG);
    slim_engine_stats st = {.struct_size = 0};
    ck_assert_int_eq(slim_engine_get_stats(e, &st), SLIM_ERR_INVALID_ARG);
    ck_assert_int_eq(slim_engine_attach_lora(e, NULL, 1, NULL), SLIM_ERR_INVALID_ARG);
    slim_engine_free(e);
    slim_engine_free(NULL);
    fake_free(&f);
    slim_engine *e2 = (slim_engine *)1;
    p = slim_engine_default_params();
    ck_assert_int_eq(slim_engine_create(NULL, &p, &e2), SLIM_ERR_INVALID_ARG);
    ck_assert_ptr_null(e2);
    ck_assert_int_eq(slim_engine_create(NULL, &p, NULL), SLIM_ERR_INVALID_ARG);
    const slim_engine_exec ex = {.step = fake_step, .user = &f, .n_vocab = FV, .n_blocks = 4};
    p.block_size = -1;
    ck_assert_int_eq(slim_engine_create_exec(NULL, &p, &ex, &e2), SLIM_ERR_INVALID_ARG);
    ck_assert_ptr_nonnull(strstr(slim_last_error(), "block_size"));
    p = slim_engine_default_params();
    p.struct_size = 1;
    ck_assert_int_eq(slim_engine_create_exec(NULL, &p, &ex, &e2), SLIM_ERR_INVALID_ARG);
}
END_TEST

/* ---- the real forward step ----------------------------------------------------- */

static slim_model *load_model(const char *path) {
    slim_model *m = NULL;
    ck_assert_msg(slim_model_load(path, NULL, &m) == SLIM_OK, "%s: %s", path, slim_last_error());
    return m;
}

static slim_lora *load_lora(const slim_model *m, const char *path) {
    slim_lora *l = NULL;
    ck_assert_msg(slim_lora_load(m, path, &l) == SLIM_OK, "%s: %s", path, slim_last_error());
    return l;
}

/* Greedy tokens of a prompt run alone through slim_context (adapter at scale 1 or none). */
static void greedy_alone(slim_model *m, slim_lora *lora, const int32_t *prompt, int32_t n,
                         int32_t max_tokens, int32_t *out) {
    slim_context_params cp = slim_context_default_params();
    cp.n_ctx = n + max_tokens + 1;
    cp.n_threads = 2;
    slim_context *ctx = NULL;
    ck_assert_int_eq(slim_context_create(m, &cp, &ctx), SLIM_OK);
    if (lora) ck_assert_int_eq(slim_context_attach_lora(ctx, lora, 1.0f), SLIM_OK);
    slim_sampler_params sp = slim_sampler_default_params();
    sp.temperature = 0;
    slim_sampler *smp = NULL;
    ck_assert_int_eq(slim_sampler_create(&sp, &smp), SLIM_OK);
    slim_model_info info = {.struct_size = sizeof info};
    slim_model_get_info(m, &info);
    ck_assert_int_eq(slim_prefill(ctx, prompt, (size_t)n, NULL), SLIM_OK);
    for (int32_t i = 0; i < max_tokens; i++) {
        ck_assert_int_eq(slim_sampler_sample(smp, slim_get_logits(ctx), info.n_vocab, &out[i]),
                         SLIM_OK);
        if (i + 1 < max_tokens) ck_assert_int_eq(slim_decode(ctx, out[i]), SLIM_OK);
    }
    slim_sampler_free(smp);
    slim_context_free(ctx);
}

/* n_req requests (random prompts of 4..40 tokens over the first 300 ids, a
 * third sharing a 20-token prefix, 6..20 tokens each, adapters mixed when
 * given) on a KV pool of a quarter of their need, blocks of 8, a step budget
 * of 96: every request's tokens equal the same prompt alone, and no block
 * stays referenced. */
/* max_seqs 4 on a sliding-window model: the sliding layers get a pool of
 * their own (checked: kv_swa_blocks, all freed at the end), with prefix hits
 * and an adapter. */
static void pressure_case(const char *path, const char *const *lora_paths, int n_lora, int n_req,
                          int32_t max_seqs) {
    slim_model *m = load_model(path);
    slim_lora *loras[2] = {0};
    for (int k = 0; k < n_lora; k++)
        loras[k] = load_lora(m, lora_paths[k]);
    slim_model_info info = {.struct_size = sizeof info};
    slim_model_get_info(m, &info);
    static int32_t prompt[NREQ][40], n_prompt[NREQ], max_tokens[NREQ], lora[NREQ];
    static int32_t want[NREQ][20];
    rng_state = 4242;
    int64_t need = 0;
    for (int i = 0; i < n_req; i++) {
        n_prompt[i] = 4 + (int32_t)(rng_next() % 37);
        for (int32_t k = 0; k < n_prompt[i]; k++)
            prompt[i][k] = (i % 3 == 0 && k < 20) ? 7 + k : 1 + (int32_t)(rng_next() % 299);
        max_tokens[i] = 6 + (int32_t)(rng_next() % 15);
        lora[i] = n_lora ? (int32_t)(rng_next() % (uint64_t)(n_lora + 1)) - 1 : -1;
        need += n_prompt[i] + max_tokens[i];
        greedy_alone(m, lora[i] >= 0 ? loras[lora[i]] : NULL, prompt[i], n_prompt[i], max_tokens[i],
                     want[i]);
    }
    slim_engine_params ep = slim_engine_default_params();
    ep.n_threads = 2;
    ep.block_size = 8;
    /* 4 sequences: a pool a twelfth of the need (requests wait for blocks),
     * and the sliding pool (4 x 4 blocks + a step of 32) the smaller one */
    ep.kv_tokens = (int32_t)(need / (max_seqs == 4 ? 12 : 4));
    ep.step_tokens = max_seqs == 4 ? 32 : 96;
    ep.max_seqs = max_seqs;
    ep.n_ctx = 64;
    slim_engine *e = NULL;
    ck_assert_msg(slim_engine_create(m, &ep, &e) == SLIM_OK, "%s", slim_last_error());
    for (int k = 0; k < n_lora; k++)
        ck_assert_int_eq(slim_engine_attach_lora(e, loras[k], 1.0f, NULL), SLIM_OK);
    uint64_t ids[NREQ];
    for (int i = 0; i < n_req; i++) {
        slim_request_params rp = slim_request_default_params();
        rp.tokens = prompt[i];
        rp.n_tokens = (size_t)n_prompt[i];
        rp.max_tokens = max_tokens[i];
        rp.stop_at_eos = 0;
        rp.lora = lora[i];
        ck_assert_msg(slim_engine_submit(e, &rp, &ids[i]) == SLIM_OK, "%s", slim_last_error());
    }
    static result res;
    for (int i = 0; i < n_req; i++) {
        poll_done(e, ids[i], &res);
        ck_assert_int_eq(res.finish, SLIM_FINISH_LENGTH);
        ck_assert_int_eq(res.n_tokens, max_tokens[i]);
        for (int32_t k = 0; k < res.n_tokens; k++)
            ck_assert_msg(res.tokens[k] == want[i][k],
                          "%s request %d (adapter %d) token %d: engine %d, alone %d", path, i,
                          lora[i], k, res.tokens[k], want[i][k]);
    }
    const slim_engine_stats st = get_stats(e);
    printf("engine %s: %d requests (%d adapters), %lld tokens needed, pool %d blocks of %d: "
           "%lld steps, %lld preemptions, %lld prefix-hit tokens; at the end %d used, %d cached, "
           "%d free\n",
           path, n_req, n_lora, (long long)need, st.kv_blocks, st.kv_block_size,
           (long long)st.n_steps, (long long)st.n_preemptions, (long long)st.prefix_hit_tokens,
           st.kv_used, st.kv_cached, st.kv_free);
    if (max_seqs == 4) {
        printf("  sliding-window layers: their own pool of %d blocks\n", st.kv_swa_blocks);
        ck_assert_int_gt(st.kv_swa_blocks, 0);
        ck_assert_int_lt(st.kv_swa_blocks, st.kv_blocks);
    }
    ck_assert_int_eq(st.kv_swa_used, 0);
    if (max_seqs > 4) ck_assert_int_gt(st.n_preemptions, 0);
    ck_assert_int_gt(st.prefix_hit_tokens, 0);
    ck_assert_int_eq(st.kv_used, 0);
    ck_assert_int_eq(st.kv_free + st.kv_cached, st.kv_blocks);
    slim_engine_free(e);
    for (int k = 0; k < n_lora; k++)
        slim_lora_free(loras[k]);
    slim_model_free(m);
}

START_TEST(test_model_pressure) {
    const char *const ab[] = {"tests/data/lora_llama3_a.gguf", "tests/data/lora_llama3_b.gguf"};
    pressure_case("tests/data/synth_llama3.gguf", ab, 2, NREQ, 32);
    pressure_case("tests/data/synth_gemma3.gguf", NULL, 0, NREQ, 32);
    const char *const g3[] = {"tests/data/lora_gemma3.gguf"};
    pressure_case("tests/data/synth_gemma3.gguf", g3, 1, NREQ, 4);
    pressure_case(test_model_path_smollm2(), NULL, 0, 32, 32);
}
END_TEST

/* Through the step-level call: a prompt computed whole, then a second
 * sequence that shares its first two full blocks (the prefix cache's case)
 * and computes only the rest, in chunks of odd sizes: logits memcmp-equal. */
static void prefix_logits_case(const char *path) {
    slim_model *m = load_model(path);
    slim_model_info info = {.struct_size = sizeof info};
    slim_model_get_info(m, &info);
    const int32_t V = info.n_vocab, N = 29, BS = 8;
    slim_context_params cp = slim_context_default_params();
    cp.n_ctx = 64;
    cp.n_batch = 32;
    cp.n_threads = 2;
    slim_context *ctx = NULL;
    ck_assert_int_eq(slim_paged_context_create(m, &cp, BS, 16, &ctx), SLIM_OK);
    int32_t tok[29], pos[29], seq[29];
    uint8_t want[29];
    for (int32_t i = 0; i < N; i++)
        tok[i] = (i * 37 + 11) % 300 + 1, pos[i] = i, seq[i] = 0, want[i] = 1;
    float *whole = malloc((size_t)N * V * sizeof *whole), *part = malloc((size_t)N * V * 4);
    const int32_t blocks_a[4] = {3, 0, 9, 4}, blocks_b[4] = {3, 0, 12, 7};
    slim_paged_seq qa = {blocks_a, 4, -1}, qb = {blocks_b, 4, -1};
    slim_paged_batch b = {.struct_size = sizeof b,
                          .n_tokens = N,
                          .tokens = tok,
                          .pos = pos,
                          .seq = seq,
                          .want = want,
                          .n_seqs = 1,
                          .seqs = &qa};
    ck_assert_msg(slim_paged_step(ctx, &b, whole) == SLIM_OK, "%s", slim_last_error());
    /* The cached part: positions 0..15 in blocks 3 and 0; compute 16..28 as 5 + 8. */
    b.seqs = &qb;
    int32_t done = 16;
    for (int32_t chunk = 5; done < N; chunk = N - done) {
        b.n_tokens = chunk;
        b.tokens = tok + done;
        b.pos = pos + done;
        ck_assert_msg(slim_paged_step(ctx, &b, part + (size_t)done * V) == SLIM_OK, "%s",
                      slim_last_error());
        done += chunk;
    }
    ck_assert_msg(!memcmp(part + 16 * V, whole + 16 * V, (size_t)(N - 16) * V * sizeof *part),
                  "%s: logits with the prefix from the cache differ from computed", path);
    /* And both equal the sequence through slim_prefill on an ordinary context. */
    slim_context *plain = NULL;
    ck_assert_int_eq(slim_context_create(m, &cp, &plain), SLIM_OK);
    ck_assert_int_eq(slim_prefill(plain, tok, (size_t)N, part), SLIM_OK);
    ck_assert_msg(!memcmp(part, whole, (size_t)N * V * sizeof *part),
                  "%s: paged step differs from slim_prefill", path);
    /* Bad step arguments come back as statuses. */
    b.n_tokens = 1;
    b.tokens = tok;
    b.pos = pos;
    qb.lora = 0; /* no adapter attached */
    ck_assert_int_eq(slim_paged_step(ctx, &b, part), SLIM_ERR_INVALID_ARG);
    qb.lora = -2;
    ck_assert_int_eq(slim_paged_step(ctx, &b, part), SLIM_ERR_INVALID_ARG);
    qb.lora = -1;
    ck_assert_int_eq(slim_paged_step(ctx, &b, NULL), SLIM_ERR_INVALID_ARG); /* wanted, no out */
    const int32_t bad_blocks[1] = {16};
    slim_paged_seq qc = {bad_blocks, 1, -1};
    b.seqs = &qc;
    ck_assert_int_eq(slim_paged_step(ctx, &b, part), SLIM_ERR_INVALID_ARG);
    b.seqs = &qa;
    b.n_seqs = 0;
    ck_assert_int_eq(slim_paged_step(ctx, &b, part), SLIM_ERR_INVALID_ARG);
    b.n_seqs = 1;
    b.struct_size = 8;
    ck_assert_int_eq(slim_paged_step(ctx, &b, part), SLIM_ERR_INVALID_ARG);
    ck_assert_int_eq(slim_paged_step(NULL, &b, part), SLIM_ERR_INVALID_ARG);
    ck_assert_int_eq(slim_paged_copy_block(ctx, 16, 0), SLIM_ERR_INVALID_ARG);
    ck_assert_int_eq(slim_paged_copy_block(ctx, 1, 3), SLIM_OK);
    slim_context *c2 = (slim_context *)1;
    ck_assert_int_eq(slim_paged_context_create(m, &cp, 0, 16, &c2), SLIM_ERR_INVALID_ARG);
    ck_assert_ptr_null(c2);
    ck_assert_int_eq(slim_paged_context_create(NULL, &cp, 8, 16, &c2), SLIM_ERR_INVALID_ARG);
    free(whole);
    free(part);
    slim_context_free(plain);
    slim_context_free(ctx);
    slim_model_free(m);
}

START_TEST(test_model_prefix_logits) {
    prefix_logits_case("tests/data/synth_llama3.gguf");
    prefix_logits_case(test_model_path_smollm2());
}
END_TEST

/* The engine's log-probability of `tok` from a logits row (its formula). */
static float logprob_of(const float *l, int32_t n, int32_t tok) {
    float mx = -INFINITY;
    for (int32_t i = 0; i < n; i++)
        if (l[i] > mx) mx = l[i];
    double s = 0;
    for (int32_t i = 0; i < n; i++)
        s += exp((double)l[i] - mx);
    return (float)(l[tok] - (mx + log(s)));
}

/* Greedy tokens and their log-probabilities from slim_context alone. */
static void reference_lp(slim_model *m, const int32_t *prompt, int32_t n, int32_t max_tokens,
                         int32_t *tok, float *lp) {
    slim_context_params cp = slim_context_default_params();
    cp.n_ctx = n + max_tokens + 1;
    cp.n_threads = 2;
    slim_context *ctx = NULL;
    ck_assert_int_eq(slim_context_create(m, &cp, &ctx), SLIM_OK);
    slim_model_info info = {.struct_size = sizeof info};
    slim_model_get_info(m, &info);
    ck_assert_int_eq(slim_prefill(ctx, prompt, (size_t)n, NULL), SLIM_OK);
    for (int32_t i = 0; i < max_tokens; i++) {
        const float *l = slim_get_logits(ctx);
        int32_t best = 0;
        for (int32_t v = 1; v < info.n_vocab; v++)
            if (l[v] > l[best]) best = v;
        tok[i] = best;
        lp[i] = logprob_of(l, info.n_vocab, best);
        if (i + 1 < max_tokens) ck_assert_int_eq(slim_decode(ctx, best), SLIM_OK);
    }
    slim_context_free(ctx);
}

typedef struct swa_watch {
    slim_engine *e;
    int32_t tokens[160], n;
    float lp[160];
    int32_t max_swa_used, last_used, n_cached, finish;
    atomic_int done;
} swa_watch;

static int swa_event(const slim_event *ev, void *user) {
    swa_watch *w = user;
    if (ev->type == SLIM_EVENT_DONE) {
        w->n_cached = ev->n_cached;
        w->finish = ev->finish_reason;
        atomic_store(&w->done, 1);
        return 0;
    }
    if (w->n < 160) {
        w->tokens[w->n] = ev->token;
        w->lp[w->n++] = ev->logprob;
    }
    slim_engine_stats st = {.struct_size = sizeof st};
    slim_engine_get_stats(w->e, &st);
    if (st.kv_swa_used > w->max_swa_used) w->max_swa_used = st.kv_swa_used;
    w->last_used = st.kv_used;
    return 0;
}

static void run_watched(slim_engine *e, const int32_t *prompt, int32_t n, int32_t max_tokens,
                        swa_watch *w) {
    memset(w, 0, sizeof *w);
    w->e = e;
    slim_request_params rp = slim_request_default_params();
    rp.tokens = prompt;
    rp.n_tokens = (size_t)n;
    rp.max_tokens = max_tokens;
    rp.stop_at_eos = 0;
    rp.logprobs = 1;
    rp.on_event = swa_event;
    rp.user = w;
    uint64_t id;
    ck_assert_int_eq(slim_engine_submit(e, &rp, &id), SLIM_OK);
    while (!atomic_load(&w->done))
        nanosleep(&(struct timespec){0, 2000000}, NULL);
}

/* Gemma 3's sliding-window layers (synth_gemma3: a 16-token window, 5 of 6
 * layers) keep their own small pool: a long sequence holds only its last
 * window there, gives bitwise the logits slim_context gives it alone (the
 * engine's log-probabilities, from the same formula, equal the reference's),
 * and a cached prefix whose last window is still cached is reused. */
START_TEST(test_model_sliding_window) {
    slim_model *m = load_model("tests/data/synth_gemma3.gguf");
    slim_engine_params ep = slim_engine_default_params();
    ep.n_threads = 2;
    ep.block_size = 4;
    ep.step_tokens = 16;
    ep.max_seqs = 4;
    ep.kv_tokens = 512;
    ep.n_ctx = 256;
    slim_engine *e = NULL;
    ck_assert_int_eq(slim_engine_create(m, &ep, &e), SLIM_OK);
    slim_engine_stats st = get_stats(e);
    /* per sequence: 15 positions back plus its own block and one part-filled: 6; and a step */
    ck_assert_int_eq(st.kv_swa_blocks, 4 * 6 + 4);
    ck_assert_int_eq(st.kv_blocks, 128);
    int32_t prompt[40], want_tok[150];
    float want_lp[150];
    for (int32_t i = 0; i < 40; i++)
        prompt[i] = (i * 53 + 7) % 250 + 1;
    static swa_watch w;
    /* A 40-token prompt and 20 tokens; the same again from the prefix cache. */
    reference_lp(m, prompt, 40, 20, want_tok, want_lp);
    for (int run = 0; run < 2; run++) {
        run_watched(e, prompt, 40, 20, &w);
        ck_assert_int_eq(w.finish, SLIM_FINISH_LENGTH);
        ck_assert_int_eq(w.n, 20);
        ck_assert_int_eq(memcmp(w.tokens, want_tok, 20 * sizeof *want_tok), 0);
        ck_assert_msg(!memcmp(w.lp, want_lp, 20 * sizeof *want_lp),
                      "run %d: log-probabilities differ from slim_context's", run);
        ck_assert_int_eq(w.n_cached, run ? 36 : 0);
        ck_assert_int_le(w.max_swa_used, 6);
    }
    /* A long one: 140 positions, 35 blocks in the global layers' pool, never
     * more than 6 in the sliding layers'. */
    prompt[0] = 2;
    reference_lp(m, prompt, 40, 100, want_tok, want_lp);
    run_watched(e, prompt, 40, 100, &w);
    ck_assert_int_eq(w.n, 100);
    ck_assert_int_eq(memcmp(w.tokens, want_tok, 100 * sizeof *want_tok), 0);
    ck_assert_msg(!memcmp(w.lp, want_lp, 100 * sizeof *want_lp),
                  "long run: log-probabilities differ from slim_context's");
    ck_assert_int_le(w.max_swa_used, 6);
    ck_assert_int_ge(w.last_used, 35);
    printf("engine sliding window (synth_gemma3, window 16, blocks of 4): 140 positions held %d "
           "global-layer blocks and at most %d sliding-layer blocks\n",
           w.last_used, w.max_swa_used);
    st = get_stats(e);
    ck_assert_int_eq(st.kv_used, 0);
    ck_assert_int_eq(st.kv_swa_used, 0);
    slim_engine_free(e);
    slim_model_free(m);
}
END_TEST

typedef struct text_out {
    char text[4096];
    size_t len;
} text_out;

static int collect(slim_token t, const char *piece, size_t len, void *user) {
    text_out *o = user;
    if (o->len + len < sizeof o->text) memcpy(o->text + o->len, piece, len), o->len += len;
    return 0;
}

/* Run a request to its end, concatenating the pieces of its events (DONE's
 * too); *before_last: bytes streamed before its last token event. */
static slim_event run_streamed(slim_engine *e, const slim_request_params *rp, text_out *streamed,
                               size_t *before_last, int32_t *n_token_events) {
    uint64_t id;
    ck_assert_int_eq(slim_engine_submit(e, rp, &id), SLIM_OK);
    streamed->len = 0;
    *n_token_events = 0;
    slim_event ev = {.struct_size = sizeof ev};
    for (;;) {
        ck_assert_int_eq(slim_engine_poll(e, id, -1, &ev), SLIM_OK);
        if (ev.type == SLIM_EVENT_TOKEN) {
            *before_last = streamed->len;
            (*n_token_events)++;
        }
        ck_assert_uint_lt(streamed->len + ev.piece_len, sizeof streamed->text);
        memcpy(streamed->text + streamed->len, ev.piece, ev.piece_len);
        streamed->len += ev.piece_len;
        if (ev.type == SLIM_EVENT_DONE) break;
    }
    streamed->text[streamed->len] = '\0';
    ck_assert_uint_eq(streamed->len, ev.text_len); /* the pieces add up to the text */
    ck_assert_int_eq(memcmp(streamed->text, ev.text, ev.text_len), 0);
    slim_event done = ev;
    done.text = NULL; /* lives until the release */
    ck_assert_int_eq(slim_engine_release(e, id), SLIM_OK);
    return done;
}

/* A text prompt on SmolLM2: the engine's text equals slim_generate's; a stop
 * string cuts it and none of its text is streamed; the same prompt again
 * reports cached tokens and gives bitwise the same log-probabilities. */
START_TEST(test_model_text) {
    slim_model *m = load_model(test_model_path_smollm2());
    const char *prompt = "The three primary colors are";
    slim_context_params cp = slim_context_default_params();
    cp.n_ctx = 128;
    cp.n_threads = 2;
    slim_context *ctx = NULL;
    ck_assert_int_eq(slim_context_create(m, &cp, &ctx), SLIM_OK);
    slim_sampler_params sp = slim_sampler_default_params();
    sp.temperature = 0;
    slim_sampler *smp = NULL;
    ck_assert_int_eq(slim_sampler_create(&sp, &smp), SLIM_OK);
    slim_generate_params gp = slim_generate_default_params();
    gp.max_tokens = 24;
    static text_out alone;
    alone.len = 0;
    ck_assert_int_eq(slim_generate(ctx, smp, prompt, &gp, collect, &alone, NULL), SLIM_OK);
    alone.text[alone.len] = '\0';
    slim_sampler_free(smp);
    slim_context_free(ctx);

    slim_engine_params ep = slim_engine_default_params();
    ep.n_threads = 2;
    ep.block_size = 4;
    ep.kv_tokens = 1024;
    ep.n_ctx = 128;
    slim_engine *e = NULL;
    ck_assert_int_eq(slim_engine_create(m, &ep, &e), SLIM_OK);
    slim_request_params rp = slim_request_default_params();
    rp.prompt = prompt;
    rp.max_tokens = 24;
    rp.logprobs = 5;
    float lp[2][24];
    slim_logprob top[2][24][5];
    int32_t n_cached[2];
    for (int run = 0; run < 2; run++) {
        uint64_t id;
        ck_assert_int_eq(slim_engine_submit(e, &rp, &id), SLIM_OK);
        int n = 0;
        for (;;) {
            slim_event ev = {.struct_size = sizeof ev};
            ck_assert_int_eq(slim_engine_poll(e, id, -1, &ev), SLIM_OK);
            if (ev.type == SLIM_EVENT_DONE) {
                ck_assert_int_eq(ev.status, SLIM_OK);
                ck_assert_uint_eq(ev.text_len, alone.len);
                ck_assert_str_eq(ev.text, alone.text);
                n_cached[run] = ev.n_cached;
                size_t n_prompt = 0;
                ck_assert_int_eq(slim_tokenize(m, prompt, strlen(prompt), SLIM_TOKENIZE_ADD_BOS,
                                               NULL, 0, &n_prompt),
                                 SLIM_OK);
                ck_assert_int_eq(ev.n_prompt, (int32_t)n_prompt);
                break;
            }
            ck_assert_int_lt(n, 24);
            lp[run][n] = ev.logprob;
            memcpy(top[run][n], ev.top, sizeof top[run][n]);
            n++;
        }
        slim_engine_release(e, id);
    }
    ck_assert_int_eq(n_cached[0], 0);
    ck_assert_int_gt(n_cached[1], 0);
    ck_assert_msg(!memcmp(lp[0], lp[1], sizeof lp[0]) && !memcmp(top[0], top[1], sizeof top[0]),
                  "log-probabilities with a cached prefix differ");
    /* A stop string from the middle of the text: the result ends just before it. */
    ck_assert_uint_gt(alone.len, 12);
    char stop[5];
    memcpy(stop, alone.text + 8, 4);
    stop[4] = '\0';
    const char *stops[] = {"zzzz-never", stop};
    rp.stop = stops;
    rp.n_stop = 2;
    rp.logprobs = 0;
    static text_out streamed;
    size_t before_last = 0;
    int32_t n_events = 0;
    slim_event ev = run_streamed(e, &rp, &streamed, &before_last, &n_events);
    ck_assert_int_eq(ev.finish_reason, SLIM_FINISH_STOP);
    ck_assert_uint_eq(ev.text_len, (size_t)(strstr(alone.text, stop) - alone.text));
    ck_assert_int_eq(memcmp(streamed.text, alone.text, ev.text_len), 0);
    /* A stop string that begins at byte 8 and matches the rest of the text
     * but one byte it never reaches: bytes 8 on are held back while they
     * could still begin it, then all come out with the last token. */
    char near[sizeof alone.text + 1];
    snprintf(near, sizeof near, "%s\x01", alone.text + 8);
    const char *near_stops[] = {near};
    rp.stop = near_stops;
    rp.n_stop = 1;
    ev = run_streamed(e, &rp, &streamed, &before_last, &n_events);
    ck_assert_int_eq(ev.finish_reason, SLIM_FINISH_LENGTH);
    ck_assert_int_eq(n_events, 24);
    ck_assert_str_eq(streamed.text, alone.text);
    ck_assert_uint_le(before_last, 8);
    /* Two stop strings, the later-matching one listed first: cut before the earlier. */
    char late[5];
    memcpy(late, alone.text + 10, 4);
    late[4] = '\0';
    const char *two[] = {late, stop};
    rp.stop = two;
    rp.n_stop = 2;
    ev = run_streamed(e, &rp, &streamed, &before_last, &n_events);
    ck_assert_int_eq(ev.finish_reason, SLIM_FINISH_STOP);
    ck_assert_uint_eq(ev.text_len, (size_t)(strstr(alone.text, stop) - alone.text));
    ck_assert_int_eq(get_stats(e).kv_used, 0);
    slim_engine_free(e);
    slim_model_free(m);
}
END_TEST

START_TEST(test_model_bad_args) {
    slim_model *m = load_model("tests/data/synth_llama3.gguf");
    slim_engine *e = (slim_engine *)1;
    slim_engine_params ep = slim_engine_default_params();
    ep.n_ctx = 1 << 30;
    ck_assert_int_eq(slim_engine_create(m, &ep, &e), SLIM_ERR_INVALID_ARG);
    ck_assert_ptr_null(e);
    ck_assert_ptr_nonnull(strstr(slim_last_error(), "n_ctx"));
    ep = slim_engine_default_params();
    ep.kv_tokens = 4;
    ep.block_size = 8; /* not one block */
    ck_assert_int_eq(slim_engine_create(m, &ep, &e), SLIM_ERR_INVALID_ARG);
    ep = slim_engine_default_params();
    ep.kv_type = 7;
    ck_assert_int_eq(slim_engine_create(m, &ep, &e), SLIM_ERR_INVALID_ARG);
    ep = slim_engine_default_params();
    ep.kv_tokens = 256;
    ep.n_threads = 1;
    ck_assert_int_eq(slim_engine_create(m, &ep, &e), SLIM_OK);
    slim_model *other = load_model("tests/data/synth_gemma3.gguf");
    slim_lora *foreign = load_lora(m, "tests/data/lora_llama3_b.gguf");
    slim_lora *l = load_lora(m, "tests/data/lora_llama3_a.gguf");
    ck_assert_int_eq(slim_engine_attach_lora(e, l, NAN, NULL), SLIM_ERR_INVALID_ARG);
    ck_assert_int_eq(slim_engine_attach_lora(e, l, 1.0f, NULL), SLIM_OK);
    slim_lora_free(l); /* the engine keeps its reference */
    ck_assert_int_eq(slim_engine_attach_lora(e, foreign, 0.5f, NULL), SLIM_OK);
    slim_lora_free(foreign);
    slim_request_params rp = slim_request_default_params();
    rp.prompt = "hello";
    rp.lora = 2;
    uint64_t id;
    ck_assert_int_eq(slim_engine_submit(e, &rp, &id), SLIM_ERR_INVALID_ARG);
    rp.lora = 1;
    rp.max_tokens = 3;
    ck_assert_int_eq(slim_engine_submit(e, &rp, &id), SLIM_OK);
    result res;
    poll_done(e, id, &res);
    ck_assert_int_eq(res.n_completion, 3);
    slim_engine_free(e);
    slim_model_free(other);
    slim_model_free(m);
}
END_TEST

Suite *suite_engine(void) {
    Suite *s = suite_create("engine");
    TCase *tc = tcase_create("fake");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_fake_pressure);
    tcase_add_test(tc, test_fake_prefix_and_logprobs);
    tcase_add_test(tc, test_fake_threads);
    tcase_add_test(tc, test_fake_cancel);
    tcase_add_test(tc, test_fake_detach);
    tcase_add_test(tc, test_fake_bad_args);
    suite_add_tcase(s, tc);
    TCase *tm = tcase_create("model");
    tcase_set_timeout(tm, 600);
    tcase_add_test(tm, test_model_pressure);
    tcase_add_test(tm, test_model_prefix_logits);
    tcase_add_test(tm, test_model_text);
    tcase_add_test(tm, test_model_sliding_window);
    tcase_add_test(tm, test_model_bad_args);
    suite_add_tcase(s, tm);
    return s;
}
