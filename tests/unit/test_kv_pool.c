/* The KV block manager (lib/runtime/kv_pool.c) without a model: the "KV
 * rows" are a token array per block that the tests write through the block
 * tables and the pool copies on copy-on-write, so a wrong table, a missed
 * copy or a block handed out twice shows up as a wrong token read back. */
#include <stdlib.h>
#include <string.h>

#include "rng.h"
#include "runtime/kv_pool.h"
#include "suites.h"

enum { NB = 16, BS = 4 };

typedef struct rows {
    int32_t *r; /* [n_blocks][bs]: the token each row was computed for */
    int32_t bs;
} rows;

static slim_status copy_rows(void *user, int32_t dst, int32_t src) {
    rows *r = user;
    memcpy(r->r + (size_t)dst * r->bs, r->r + (size_t)src * r->bs, (size_t)r->bs * sizeof *r->r);
    return SLIM_OK;
}

static slim_kv_pool *make(int32_t nb, int32_t bs, rows *r) {
    r->bs = bs;
    r->r = malloc((size_t)nb * bs * sizeof *r->r);
    ck_assert_ptr_nonnull(r->r);
    for (int32_t i = 0; i < nb * bs; i++)
        r->r[i] = -1;
    slim_kv_pool *p = NULL;
    ck_assert_int_eq(slim_kv_pool_create(nb, bs, copy_rows, r, &p), SLIM_OK);
    return p;
}

/* "Compute" tokens[from .. to) of a sequence: write them through its table. */
static void compute(slim_kv_pool *p, rows *r, slim_kv_seq *s, const int32_t *tokens, int32_t to) {
    const int32_t from = s->n_tokens;
    ck_assert_int_eq(slim_kv_pool_reserve(p, s, to - from), SLIM_OK);
    for (int32_t i = from; i < to; i++)
        r->r[(size_t)s->blocks[i / r->bs] * r->bs + i % r->bs] = tokens[i];
    slim_kv_pool_commit(p, s, tokens, to);
    ck_assert_int_eq(s->n_tokens, to);
}

/* Every computed position reads back its token through the table. */
static void check_seq(const rows *r, const slim_kv_seq *s, const int32_t *tokens) {
    ck_assert_int_ge(s->n_blocks * r->bs, s->n_tokens);
    for (int32_t i = 0; i < s->n_tokens; i++)
        ck_assert_msg(r->r[(size_t)s->blocks[i / r->bs] * r->bs + i % r->bs] == tokens[i],
                      "position %d reads %d, want %d", i,
                      r->r[(size_t)s->blocks[i / r->bs] * r->bs + i % r->bs], tokens[i]);
}

static slim_kv_pool_stats stats(const slim_kv_pool *p) {
    slim_kv_pool_stats st;
    slim_kv_pool_get_stats(p, &st);
    ck_assert_int_eq(st.n_free + st.n_used + st.n_idle, st.n_blocks);
    ck_assert_int_le(st.n_idle, st.n_cached);
    return st;
}

static const int32_t T[] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20};

START_TEST(test_alloc_free) {
    rows r;
    slim_kv_pool *p = make(NB, BS, &r);
    slim_kv_seq s;
    slim_kv_seq_init(&s, 0);
    ck_assert_int_eq(slim_kv_pool_blocks_needed(p, &s, 9), 3);
    compute(p, &r, &s, T, 9);
    ck_assert_int_eq(s.n_blocks, 3);
    slim_kv_pool_stats st = stats(p);
    ck_assert_int_eq(st.n_used, 3);
    ck_assert_int_eq(st.n_cached, 2); /* two full blocks registered */
    compute(p, &r, &s, T, 12);        /* fills the third block in place */
    ck_assert_int_eq(s.n_blocks, 3);
    ck_assert_int_eq(stats(p).n_cached, 3);
    check_seq(&r, &s, T);
    slim_kv_pool_truncate(p, &s, 5);
    ck_assert_int_eq(s.n_blocks, 2);
    ck_assert_int_eq(s.n_hashed, 1);
    ck_assert_int_eq(stats(p).n_used, 2);
    slim_kv_pool_release(p, &s);
    st = stats(p);
    ck_assert_int_eq(st.n_used, 0);
    ck_assert_int_eq(st.n_idle, 3); /* the cached blocks stay, idle */
    ck_assert_int_eq(st.copies, 0);
    slim_kv_pool_evict_idle(p);
    st = stats(p);
    ck_assert_int_eq(st.n_free, NB);
    ck_assert_int_eq(st.n_cached, 0);
    slim_kv_pool_free(p);
    free(r.r);
}
END_TEST

START_TEST(test_prefix_hits) {
    rows r;
    slim_kv_pool *p = make(NB, BS, &r);
    slim_kv_seq a, b, c, d;
    slim_kv_seq_init(&a, 0);
    compute(p, &r, &a, T, 10); /* two full blocks cached */
    slim_kv_pool_release(p, &a);
    /* Same prompt: both full blocks; the limit leaves the last token to compute. */
    slim_kv_seq_init(&b, 0);
    ck_assert_int_eq(slim_kv_pool_attach_prefix(p, &b, T, 10, 9), 8);
    ck_assert_int_eq(b.n_tokens, 8);
    ck_assert_int_eq(stats(p).n_idle, 0);
    check_seq(&r, &b, T);
    compute(p, &r, &b, T, 10);
    check_seq(&r, &b, T);
    /* A prompt of exactly 8 tokens gets one block (its last token is computed). */
    slim_kv_seq_init(&c, 0);
    ck_assert_int_eq(slim_kv_pool_attach_prefix(p, &c, T, 8, 7), 4);
    ck_assert_int_eq(stats(p).n_used, 3); /* b's 3 blocks; c shares b's first */
    /* A different second block: only the first block hits. */
    int32_t u[10];
    memcpy(u, T, sizeof u);
    u[6] = 99;
    slim_kv_seq_init(&d, 0);
    ck_assert_int_eq(slim_kv_pool_attach_prefix(p, &d, u, 10, 9), 4);
    compute(p, &r, &d, u, 10);
    check_seq(&r, &d, u);
    check_seq(&r, &b, T);
    /* Another adapter (salt): no hit. */
    slim_kv_seq e;
    slim_kv_seq_init(&e, 7);
    ck_assert_int_eq(slim_kv_pool_attach_prefix(p, &e, T, 10, 9), 0);
    slim_kv_pool_stats st = stats(p);
    ck_assert_int_eq(st.hit_tokens, 8 + 4 + 4);
    ck_assert_int_eq(st.query_tokens, 10 + 8 + 10 + 10);
    slim_kv_pool_release(p, &b);
    slim_kv_pool_release(p, &c);
    slim_kv_pool_release(p, &d);
    slim_kv_pool_release(p, &e);
    ck_assert_int_eq(stats(p).n_used, 0);
    ck_assert_int_eq(stats(p).n_cached, 3); /* T's two blocks, u's second */
    slim_kv_pool_free(p);
    free(r.r);
}
END_TEST

START_TEST(test_fork_cow) {
    rows r;
    slim_kv_pool *p = make(NB, BS, &r);
    slim_kv_seq a, b;
    slim_kv_seq_init(&a, 0);
    slim_kv_seq_init(&b, 0);
    compute(p, &r, &a, T, 6); /* block 0 full (cached), block 1 half */
    ck_assert_int_eq(slim_kv_pool_fork(p, &a, &b), SLIM_OK);
    ck_assert_int_eq(stats(p).n_used, 2);
    /* b diverges: its half block is shared, so it is copied first. */
    int32_t u[8] = {1, 2, 3, 4, 5, 6, 70, 80};
    ck_assert_int_eq(slim_kv_pool_blocks_needed(p, &b, 2), 1);
    compute(p, &r, &b, u, 8);
    ck_assert_int_ne(a.blocks[1], b.blocks[1]);
    ck_assert_int_eq(a.blocks[0], b.blocks[0]);
    ck_assert_int_eq(stats(p).copies, 1);
    /* a's half block is now its own: written in place. */
    compute(p, &r, &a, T, 8);
    ck_assert_int_eq(stats(p).copies, 1);
    check_seq(&r, &a, T);
    check_seq(&r, &b, u);
    ck_assert_int_eq(stats(p).n_used, 3);
    /* Truncating into a cached full block, then writing: copied, the cache keeps T. */
    slim_kv_pool_truncate(p, &a, 6);
    int32_t w[8] = {1, 2, 3, 4, 5, 6, 60, 61};
    compute(p, &r, &a, w, 8);
    ck_assert_int_eq(stats(p).copies, 2);
    check_seq(&r, &a, w);
    slim_kv_pool_release(p, &a);
    slim_kv_pool_release(p, &b);
    slim_kv_seq c;
    slim_kv_seq_init(&c, 0);
    ck_assert_int_eq(slim_kv_pool_attach_prefix(p, &c, T, 9, 8), 8);
    check_seq(&r, &c, T);
    slim_kv_pool_release(p, &c);
    ck_assert_int_eq(stats(p).n_used, 0);
    slim_kv_pool_free(p);
    free(r.r);
}
END_TEST

START_TEST(test_full_and_lru) {
    rows r;
    slim_kv_pool *p = make(4, BS, &r);
    slim_kv_seq a, b;
    slim_kv_seq_init(&a, 0);
    slim_kv_seq_init(&b, 0);
    compute(p, &r, &a, T, 12);
    /* One block left: 5 tokens need two; nothing changes. */
    slim_kv_seq_init(&b, 0);
    ck_assert_int_eq(slim_kv_pool_reserve(p, &b, 5), SLIM_ERR_CONTEXT_FULL);
    ck_assert_int_eq(b.n_blocks, 0);
    ck_assert_int_eq(stats(p).n_free, 1);
    slim_kv_pool_release(p, &a); /* three idle cached blocks, deepest evicted first */
    ck_assert_int_eq(slim_kv_pool_available(p), 4);
    compute(p, &r, &b, T + 12, 8); /* takes the free block and one eviction */
    slim_kv_pool_stats st = stats(p);
    ck_assert_int_eq(st.evictions, 1);
    ck_assert_int_eq(st.n_cached, 4); /* 2 of T's + b's 2 */
    /* T's first two blocks survived: the third (deepest) went. */
    slim_kv_seq c;
    slim_kv_seq_init(&c, 0);
    ck_assert_int_eq(slim_kv_pool_attach_prefix(p, &c, T, 12, 12), 8);
    check_seq(&r, &c, T);
    slim_kv_pool_release(p, &b);
    slim_kv_pool_release(p, &c);
    ck_assert_int_eq(stats(p).n_used, 0);
    slim_kv_pool_free(p);
    free(r.r);
}
END_TEST

/* Random alloc / append / truncate / fork / release / attach over many
 * sequences sharing a small token alphabet (so prefixes repeat); every
 * sequence reads back its tokens after every operation, and at the end
 * nothing is referenced. */
START_TEST(test_random_ops) {
    enum { NS = 12, MAXT = 40, POOL = 40, BSZ = 3 };
    rows r;
    slim_kv_pool *p = make(POOL, BSZ, &r);
    slim_kv_seq s[NS];
    int32_t tok[NS][MAXT];
    rng_state = 12345;
    for (int i = 0; i < NS; i++)
        slim_kv_seq_init(&s[i], 0);
    for (int it = 0; it < 8000; it++) {
        const int i = (int)(rng_next() % NS);
        const int op = (int)(rng_next() % 10);
        slim_kv_seq *q = &s[i];
        if (op < 5) { /* append 1..5 tokens */
            int32_t n = 1 + (int32_t)(rng_next() % 5);
            if (q->n_tokens + n > MAXT) n = MAXT - q->n_tokens;
            if (n <= 0) continue;
            for (int32_t k = q->n_tokens; k < q->n_tokens + n; k++)
                tok[i][k] = (int32_t)(rng_next() % 2);
            if (slim_kv_pool_blocks_needed(p, q, n) > slim_kv_pool_available(p)) {
                ck_assert_int_eq(slim_kv_pool_reserve(p, q, n), SLIM_ERR_CONTEXT_FULL);
                continue;
            }
            compute(p, &r, q, tok[i], q->n_tokens + n);
        } else if (op == 5) {
            slim_kv_pool_truncate(p, q, (int32_t)(rng_next() % (q->n_tokens + 1)));
        } else if (op == 6) {
            const int j = (int)(rng_next() % NS);
            if (j == i) continue;
            slim_kv_pool_release(p, &s[j]);
            ck_assert_int_eq(slim_kv_pool_fork(p, q, &s[j]), SLIM_OK);
            memcpy(tok[j], tok[i], sizeof tok[i]);
        } else if (op == 7) {
            slim_kv_pool_release(p, q);
        } else { /* a new prompt from the cache */
            slim_kv_pool_release(p, q);
            const int32_t n = 1 + (int32_t)(rng_next() % MAXT);
            for (int32_t k = 0; k < n; k++)
                tok[i][k] = (int32_t)(rng_next() % 2);
            slim_kv_pool_attach_prefix(p, q, tok[i], n, n - 1);
        }
        for (int k = 0; k < NS; k++)
            check_seq(&r, &s[k], tok[k]);
        stats(p);
    }
    slim_kv_pool_stats st = stats(p);
    ck_assert_int_gt(st.hit_tokens, 0);
    ck_assert_int_gt(st.copies, 0);
    ck_assert_int_gt(st.evictions, 0);
    for (int i = 0; i < NS; i++)
        slim_kv_pool_release(p, &s[i]);
    st = stats(p);
    ck_assert_int_eq(st.n_used, 0);
    ck_assert_int_eq(st.n_free + st.n_idle, POOL);
    slim_kv_pool_evict_idle(p);
    ck_assert_int_eq(stats(p).n_free, POOL);
    slim_kv_pool_free(p);
    free(r.r);
}
END_TEST

/* A sliding-window pool: blocks out of the window go (cached ones idle), a
 * fork and a release skip the holes, and attach_window takes a prefix's
 * last blocks only when every one of them is still cached. */
START_TEST(test_window_drop_attach) {
    rows r;
    slim_kv_pool *p = make(NB, BS, &r);
    slim_kv_seq a, b, c;
    slim_kv_seq_init(&a, 0);
    compute(p, &r, &a, T, 18);          /* blocks 0..4, four full ones cached */
    slim_kv_pool_drop_before(p, &a, 9); /* positions 0..8 unseen: blocks 0, 1 go */
    ck_assert_int_eq(a.n_dropped, 2);
    ck_assert_int_eq(a.blocks[0], -1);
    ck_assert_int_eq(a.blocks[1], -1);
    slim_kv_pool_stats st = stats(p);
    ck_assert_int_eq(st.n_used, 3);
    ck_assert_int_eq(st.n_idle, 2);
    slim_kv_pool_drop_before(p, &a, 3); /* never undoes */
    ck_assert_int_eq(a.n_dropped, 2);
    slim_kv_seq_init(&b, 0);
    ck_assert_int_eq(slim_kv_pool_fork(p, &a, &b), SLIM_OK);
    ck_assert_int_eq(b.blocks[0], -1);
    ck_assert_int_eq(stats(p).n_used, 3);
    slim_kv_pool_release(p, &b);
    compute(p, &r, &a, T, 20); /* hashes chain across the dropped blocks */
    ck_assert_int_eq(stats(p).n_cached, 5);
    slim_kv_pool_release(p, &a);
    /* The first four blocks' prefix, its last two blocks wanted: cached. */
    slim_kv_seq_init(&c, 0);
    ck_assert(slim_kv_pool_attach_window(p, &c, T, 4, 2));
    ck_assert_int_eq(c.n_tokens, 16);
    ck_assert_int_eq(c.blocks[1], -1);
    for (int32_t i = 8; i < 16; i++)
        ck_assert_int_eq(r.r[(size_t)c.blocks[i / BS] * BS + i % BS], T[i]);
    ck_assert_int_eq(stats(p).n_used, 2);
    slim_kv_pool_release(p, &c);
    /* Evict the idle blocks: nothing attaches, nothing stays referenced. */
    slim_kv_pool_evict_idle(p);
    slim_kv_seq_init(&c, 0);
    ck_assert(!slim_kv_pool_attach_window(p, &c, T, 4, 2));
    ck_assert_int_eq(c.n_blocks, 0);
    ck_assert_int_eq(stats(p).n_used, 0);
    slim_kv_pool_release(p, &c);
    slim_kv_pool_free(p);
    free(r.r);
}
END_TEST

START_TEST(test_bad_args) {
    slim_kv_pool *p = (slim_kv_pool *)1;
    ck_assert_int_eq(slim_kv_pool_create(0, 16, NULL, NULL, &p), SLIM_ERR_INVALID_ARG);
    ck_assert_ptr_null(p);
    ck_assert_int_eq(slim_kv_pool_create(4, 0, NULL, NULL, &p), SLIM_ERR_INVALID_ARG);
    ck_assert_int_eq(slim_kv_pool_create(4, 16, NULL, NULL, NULL), SLIM_ERR_INVALID_ARG);
    slim_kv_pool_free(NULL);
    /* The hash chains: the same tokens under another parent or salt differ. */
    const uint64_t h = slim_kv_block_hash(0, T, 4, 0);
    ck_assert_uint_ne(h, slim_kv_block_hash(1, T, 4, 0));
    ck_assert_uint_ne(h, slim_kv_block_hash(0, T, 4, 1));
    ck_assert_uint_ne(h, slim_kv_block_hash(0, T + 1, 4, 0));
    ck_assert_uint_eq(h, slim_kv_block_hash(0, T, 4, 0));
}
END_TEST

Suite *suite_kv_pool(void) {
    Suite *s = suite_create("kv_pool");
    TCase *tc = tcase_create("kv_pool");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_alloc_free);
    tcase_add_test(tc, test_prefix_hits);
    tcase_add_test(tc, test_fork_cow);
    tcase_add_test(tc, test_full_and_lru);
    tcase_add_test(tc, test_random_ops);
    tcase_add_test(tc, test_window_drop_attach);
    tcase_add_test(tc, test_bad_args);
    suite_add_tcase(s, tc);
    return s;
}
