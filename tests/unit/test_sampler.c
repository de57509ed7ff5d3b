/* Sampler: greedy, determinism, the filters' distributions, penalties, bad
 * arguments, and a full-size vocabulary. */
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "slim.h"
#include "suites.h"

static slim_sampler *make(slim_sampler_params p) {
    slim_sampler *s = NULL;
    ck_assert_int_eq(slim_sampler_create(&p, &s), SLIM_OK);
    ck_assert_ptr_nonnull(s);
    return s;
}

/* Filters off, temperature t. */
static slim_sampler_params plain(float t, uint64_t seed) {
    slim_sampler_params p = slim_sampler_default_params();
    p.temperature = t;
    p.top_k = 0;
    p.top_p = 1.0f;
    p.min_p = 0.0f;
    p.seed = seed;
    return p;
}

static slim_token sample1(slim_sampler *s, const float *l, int32_t n) {
    slim_token t = -1;
    ck_assert_int_eq(slim_sampler_sample(s, l, n, &t), SLIM_OK);
    ck_assert_int_ge(t, 0);
    ck_assert_int_lt(t, n);
    return t;
}

enum { DRAWS = 20000 };

/* Draw DRAWS tokens and compare frequencies with want[] within 0.02. */
static void check_freq(slim_sampler_params p, const float *l, int32_t n, const double *want) {
    slim_sampler *s = make(p);
    int counts[8] = {0};
    for (int i = 0; i < DRAWS; i++)
        counts[sample1(s, l, n)]++;
    for (int32_t i = 0; i < n; i++) {
        double f = (double)counts[i] / DRAWS;
        ck_assert_msg(fabs(f - want[i]) <= 0.02, "token %d: frequency %.4f, want %.4f", i, f,
                      want[i]);
    }
    slim_sampler_free(s);
}

static const float L3[3] = {-0.69314718f, -1.2039728f, -1.6094379f}; /* log .5 .3 .2 */

START_TEST(test_defaults) {
    slim_sampler_params p = slim_sampler_default_params();
    ck_assert_uint_eq(p.struct_size, sizeof p);
    ck_assert_float_eq(p.temperature, 0.8f);
    ck_assert_int_eq(p.top_k, 40);
    ck_assert_float_eq(p.top_p, 0.95f);
    ck_assert_float_eq(p.min_p, 0.05f);
    ck_assert_float_eq(p.repeat_penalty, 1.0f);
    ck_assert_int_eq(p.repeat_last_n, 64);
    slim_sampler *s = NULL;
    ck_assert_int_eq(slim_sampler_create(NULL, &s), SLIM_OK);
    ck_assert_ptr_nonnull(s);
    float l[4] = {0, 5, 1, 0};
    ck_assert_int_eq(sample1(s, l, 4), 1); /* min-p drops everything else */
    slim_sampler_free(s);
    slim_sampler_free(NULL);
    slim_sampler_accept(NULL, 3);
    slim_sampler_reset(NULL);
}
END_TEST

START_TEST(test_greedy) {
    slim_sampler *s = make(plain(0.0f, 1));
    float l[6] = {0.5f, -2.0f, 3.0f, 1.0f, 2.9f, -INFINITY};
    float copy[6];
    memcpy(copy, l, sizeof l);
    ck_assert_int_eq(sample1(s, l, 6), 2);
    ck_assert_mem_eq(l, copy, sizeof l);
    float tie[5] = {1.0f, 4.0f, 2.0f, 4.0f, 4.0f};
    ck_assert_int_eq(sample1(s, tie, 5), 1);
    float one[1] = {-7.0f};
    ck_assert_int_eq(sample1(s, one, 1), 0);
    /* NaN is never chosen; +inf wins. */
    float nan3[3] = {NAN, 1.0f, NAN};
    ck_assert_int_eq(sample1(s, nan3, 3), 1);
    float inf3[3] = {1.0f, INFINITY, INFINITY};
    ck_assert_int_eq(sample1(s, inf3, 3), 1);
    slim_sampler_free(s);
    /* Negative temperature is greedy too. */
    s = make(plain(-1.0f, 1));
    ck_assert_int_eq(sample1(s, l, 6), 2);
    slim_sampler_free(s);
    /* Sampling at a temperature leaves the logits untouched as well. */
    slim_sampler_params p = slim_sampler_default_params();
    p.repeat_penalty = 1.3f;
    p.frequency_penalty = 0.5f;
    s = make(p);
    slim_sampler_accept(s, 2);
    slim_sampler_accept(s, 5);
    for (int i = 0; i < 50; i++)
        sample1(s, l, 6);
    ck_assert_mem_eq(l, copy, sizeof l);
    slim_sampler_free(s);
}
END_TEST

static void draw_seq(slim_sampler *s, slim_token *seq, int n) {
    float l[16];
    for (int i = 0; i < 16; i++)
        l[i] = 0.1f * (float)(i % 5);
    for (int i = 0; i < n; i++)
        seq[i] = sample1(s, l, 16);
}

START_TEST(test_seed) {
    slim_token a[200], b[200], c[200], d[200];
    slim_sampler *s1 = make(plain(1.0f, 42)), *s2 = make(plain(1.0f, 42));
    slim_sampler *s3 = make(plain(1.0f, 43));
    draw_seq(s1, a, 200);
    draw_seq(s2, b, 200);
    draw_seq(s3, c, 200);
    ck_assert_mem_eq(a, b, sizeof a);
    int differ = 0;
    for (int i = 0; i < 200; i++)
        differ += a[i] != c[i];
    ck_assert_int_gt(differ, 100); /* 16 near-uniform tokens: ~190 expected */
    /* The stream moves on, then reset restarts it. */
    draw_seq(s1, d, 200);
    ck_assert_int_ne(memcmp(a, d, sizeof a), 0);
    slim_sampler_reset(s1);
    draw_seq(s1, d, 200);
    ck_assert_mem_eq(a, d, sizeof a);
    /* Many distinct tokens show up (the draw is not stuck). */
    int seen[16] = {0}, distinct = 0;
    for (int i = 0; i < 200; i++)
        distinct += !seen[a[i]]++;
    ck_assert_int_eq(distinct, 16);
    slim_sampler_free(s1);
    slim_sampler_free(s2);
    slim_sampler_free(s3);
}
END_TEST

START_TEST(test_filters_equal_greedy) {
    slim_sampler_params pk = plain(5.0f, 7), pp = plain(2.0f, 8), pm = plain(3.0f, 9);
    pk.top_k = 1;
    pp.top_p = 1e-6f;
    pm.min_p = 1.0f;
    slim_sampler *g = make(plain(0.0f, 1));
    slim_sampler *sk = make(pk), *sp = make(pp), *sm = make(pm);
    unsigned x = 12345;
    for (int round = 0; round < 200; round++) {
        float l[50];
        for (int i = 0; i < 50; i++) {
            x = x * 1103515245u + 12345u;
            l[i] = (float)((x >> 8) % 100000) / 1000.0f - 50.0f + (float)i * 1e-4f;
        }
        slim_token want = sample1(g, l, 50);
        ck_assert_int_eq(sample1(sk, l, 50), want);
        ck_assert_int_eq(sample1(sp, l, 50), want);
        ck_assert_int_eq(sample1(sm, l, 50), want);
    }
    slim_sampler_free(g);
    slim_sampler_free(sk);
    slim_sampler_free(sp);
    slim_sampler_free(sm);
}
END_TEST

START_TEST(test_distributions) {
    const double t1[3] = {0.5, 0.3, 0.2};
    check_freq(plain(1.0f, 1), L3, 3, t1);
    /* T = 0.5 squares the probabilities: .25 .09 .04 over .38. */
    const double t05[3] = {0.25 / 0.38, 0.09 / 0.38, 0.04 / 0.38};
    check_freq(plain(0.5f, 2), L3, 3, t05);
    /* T = 2: sqrt .5 .3 .2 renormalised. */
    double r2 = sqrt(0.5) + sqrt(0.3) + sqrt(0.2);
    const double t2[3] = {sqrt(0.5) / r2, sqrt(0.3) / r2, sqrt(0.2) / r2};
    check_freq(plain(2.0f, 3), L3, 3, t2);
    const double two[3] = {0.625, 0.375, 0.0};
    slim_sampler_params p = plain(1.0f, 4);
    p.top_k = 2;
    check_freq(p, L3, 3, two);
    p = plain(1.0f, 5);
    p.top_p = 0.7f; /* .5 < .7 <= .8: two tokens */
    check_freq(p, L3, 3, two);
    p.top_p = 0.9f; /* .8 < .9: all three */
    check_freq(p, L3, 3, t1);
    p.top_p = 0.4f; /* the first alone */
    const double first[3] = {1.0, 0.0, 0.0};
    check_freq(p, L3, 3, first);
    p = plain(1.0f, 6);
    p.min_p = 0.5f; /* .2 < .5 * .5 */
    check_freq(p, L3, 3, two);
    p.min_p = 0.35f; /* .2 >= .175: all */
    check_freq(p, L3, 3, t1);
    /* Top-k applies before top-p: k = 2 leaves .625/.375, p = .6 keeps only the first. */
    p = plain(1.0f, 7);
    p.top_k = 2;
    p.top_p = 0.6f;
    check_freq(p, L3, 3, first);
    /* Temperature applies before top-p: at T = .5 the first has .658 >= .6. */
    p = plain(0.5f, 8);
    p.top_p = 0.6f;
    check_freq(p, L3, 3, first);
    /* +inf logits share the mass; NaN and -inf get none. */
    float inf4[4] = {1.0f, INFINITY, NAN, INFINITY};
    const double half[4] = {0.0, 0.5, 0.0, 0.5};
    check_freq(plain(1.0f, 9), inf4, 4, half);
    float nan4[4] = {NAN, 0.0f, -INFINITY, 0.0f};
    const double half2[4] = {0.0, 0.5, 0.0, 0.5};
    check_freq(plain(1.0f, 10), nan4, 4, half2);
    p = plain(1.0f, 12); /* NaN through the top-k heap too */
    p.top_k = 3;
    float nan5[5] = {NAN, 0.0f, NAN, 0.0f, -INFINITY};
    const double half3[5] = {0.0, 0.5, 0.0, 0.5, 0.0};
    check_freq(p, nan5, 5, half3);
    /* Ties at a cut go to the lower ids, as in greedy. */
    float flat[4] = {1.0f, 1.0f, 1.0f, 1.0f};
    const double low2[4] = {0.5, 0.5, 0.0, 0.0};
    p = plain(1.0f, 13);
    p.top_k = 2;
    check_freq(p, flat, 4, low2);
    p = plain(1.0f, 14);
    p.top_p = 0.4f; /* .25 < .4 <= .5 */
    check_freq(p, flat, 4, low2);
}
END_TEST

START_TEST(test_repeat_penalty) {
    slim_sampler_params p = plain(0.0f, 1);
    p.repeat_penalty = 1.1f;
    p.repeat_last_n = 64;
    slim_sampler *s = make(p);
    float l[2] = {2.0f, 1.9f};
    ck_assert_int_eq(sample1(s, l, 2), 0);
    slim_sampler_accept(s, 0); /* 2.0 / 1.1 = 1.818 < 1.9 */
    ck_assert_int_eq(sample1(s, l, 2), 1);
    /* Counted once however often it occurs: 2.0 / 1.1 > 1.8. */
    float l2[2] = {2.0f, 1.8f};
    slim_sampler_accept(s, 0);
    slim_sampler_accept(s, 0);
    ck_assert_int_eq(sample1(s, l2, 2), 0);
    /* Negative logits are multiplied: -1.0 * 1.1 = -1.1 < -1.05. */
    slim_sampler_reset(s);
    float neg[2] = {-1.0f, -1.05f};
    ck_assert_int_eq(sample1(s, neg, 2), 0);
    slim_sampler_accept(s, 0);
    ck_assert_int_eq(sample1(s, neg, 2), 1);
    /* Reset forgets the history. */
    slim_sampler_reset(s);
    ck_assert_int_eq(sample1(s, l, 2), 0);
    /* Out-of-range history tokens are ignored. */
    slim_sampler_accept(s, 100);
    slim_sampler_accept(s, -3);
    ck_assert_int_eq(sample1(s, l, 2), 0);
    slim_sampler_free(s);
}
END_TEST

START_TEST(test_presence_frequency) {
    slim_sampler_params p = plain(0.0f, 1);
    p.presence_penalty = 0.3f;
    slim_sampler *s = make(p);
    float l[2] = {1.0f, 0.8f};
    slim_sampler_accept(s, 0); /* 1.0 - 0.3 = 0.7 < 0.8 */
    ck_assert_int_eq(sample1(s, l, 2), 1);
    slim_sampler_free(s);
    p.presence_penalty = 0.1f;
    s = make(p);
    slim_sampler_accept(s, 0);
    slim_sampler_accept(s, 0); /* presence does not grow with the count: 0.9 > 0.8 */
    ck_assert_int_eq(sample1(s, l, 2), 0);
    slim_sampler_free(s);

    p = plain(0.0f, 1);
    p.frequency_penalty = 0.2f;
    s = make(p);
    float f[2] = {1.0f, 0.5f};
    slim_sampler_accept(s, 0);
    slim_sampler_accept(s, 0); /* 1.0 - 2 * 0.2 = 0.6 > 0.5 */
    ck_assert_int_eq(sample1(s, f, 2), 0);
    slim_sampler_accept(s, 0); /* 1.0 - 3 * 0.2 = 0.4 < 0.5 */
    ck_assert_int_eq(sample1(s, f, 2), 1);
    slim_sampler_free(s);

    /* As a distribution: logits 0, 0 and token 0 seen once with frequency 1
     * gives p0 = e^-1 / (1 + e^-1). */
    p = plain(1.0f, 11);
    p.frequency_penalty = 1.0f;
    s = make(p);
    slim_sampler_accept(s, 0);
    float z[2] = {0.0f, 0.0f};
    int c0 = 0;
    for (int i = 0; i < DRAWS; i++)
        c0 += sample1(s, z, 2) == 0;
    double want = exp(-1.0) / (1.0 + exp(-1.0));
    ck_assert_msg(fabs((double)c0 / DRAWS - want) <= 0.02, "p0 %.4f want %.4f", (double)c0 / DRAWS,
                  want);
    slim_sampler_free(s);
}
END_TEST

START_TEST(test_penalty_window) {
    slim_sampler_params p = plain(0.0f, 1);
    p.repeat_penalty = 1.1f;
    p.repeat_last_n = 2;
    slim_sampler *s = make(p);
    float l[8] = {2.0f, 1.9f, 0, 0, 0, 0, 0, 0};
    slim_sampler_accept(s, 0);
    slim_sampler_accept(s, 5); /* window {0, 5}: penalised */
    ck_assert_int_eq(sample1(s, l, 8), 1);
    slim_sampler_accept(s, 6); /* window {5, 6}: 0 has left */
    ck_assert_int_eq(sample1(s, l, 8), 0);
    slim_sampler_accept(s, 0); /* back in */
    ck_assert_int_eq(sample1(s, l, 8), 1);
    slim_sampler_free(s);
    /* repeat_last_n = 0 turns the penalties off. */
    p.repeat_last_n = 0;
    p.presence_penalty = 5.0f;
    s = make(p);
    slim_sampler_accept(s, 0);
    ck_assert_int_eq(sample1(s, l, 8), 0);
    slim_sampler_free(s);
}
END_TEST

static void expect_bad(slim_sampler_params p, const char *field) {
    slim_sampler *s = (slim_sampler *)&p; /* must be overwritten with NULL */
    ck_assert_int_eq(slim_sampler_create(&p, &s), SLIM_ERR_INVALID_ARG);
    ck_assert_ptr_null(s);
    ck_assert_msg(strstr(slim_last_error(), field), "message \"%s\" lacks \"%s\"",
                  slim_last_error(), field);
}

START_TEST(test_bad_params) {
    slim_sampler_params d = slim_sampler_default_params(), p;
    p = d, p.temperature = NAN, expect_bad(p, "temperature");
    p = d, p.temperature = INFINITY, expect_bad(p, "temperature");
    p = d, p.top_p = 0.0f, expect_bad(p, "top_p");
    p = d, p.top_p = -0.5f, expect_bad(p, "top_p");
    p = d, p.top_p = NAN, expect_bad(p, "top_p");
    p = d, p.min_p = 1.5f, expect_bad(p, "min_p");
    p = d, p.min_p = NAN, expect_bad(p, "min_p");
    p = d, p.repeat_penalty = 0.0f, expect_bad(p, "repeat_penalty");
    p = d, p.repeat_penalty = -1.0f, expect_bad(p, "repeat_penalty");
    p = d, p.repeat_penalty = NAN, expect_bad(p, "repeat_penalty");
    p = d, p.repeat_last_n = -1, expect_bad(p, "repeat_last_n");
    p = d, p.presence_penalty = NAN, expect_bad(p, "presence_penalty");
    p = d, p.frequency_penalty = -INFINITY, expect_bad(p, "frequency_penalty");
    p = d, p.struct_size = 0, expect_bad(p, "struct_size");
    p = d, p.struct_size = sizeof p + 8, expect_bad(p, "struct_size");
    ck_assert_int_eq(slim_sampler_create(&d, NULL), SLIM_ERR_INVALID_ARG);
    ck_assert_str_ne(slim_last_error(), "");

    /* Off values in range are fine: top_p >= 1, min_p <= 0, top_k <= 0. */
    p = d, p.top_p = 5.0f, p.min_p = -1.0f, p.top_k = -3;
    slim_sampler *s = make(p);
    slim_sampler_free(s);
    /* An older caller's smaller struct: fields past struct_size take defaults. */
    p = d;
    p.struct_size = offsetof(slim_sampler_params, presence_penalty);
    p.presence_penalty = NAN;
    p.frequency_penalty = NAN;
    p.temperature = 0.0f;
    s = make(p);
    float l[3] = {1.0f, 3.0f, 2.0f};
    slim_sampler_accept(s, 1);
    ck_assert_int_eq(sample1(s, l, 3), 1); /* defaults: no penalty; greedy from the struct */
    slim_sampler_free(s);
}
END_TEST

START_TEST(test_bad_args) {
    slim_sampler *s = make(slim_sampler_default_params());
    float l[3] = {1, 2, 3};
    slim_token t = 77;
    ck_assert_int_eq(slim_sampler_sample(NULL, l, 3, &t), SLIM_ERR_INVALID_ARG);
    ck_assert_str_ne(slim_last_error(), "");
    ck_assert_int_eq(slim_sampler_sample(s, NULL, 3, &t), SLIM_ERR_INVALID_ARG);
    ck_assert_ptr_nonnull(strstr(slim_last_error(), "logits"));
    ck_assert_int_eq(slim_sampler_sample(s, l, 3, NULL), SLIM_ERR_INVALID_ARG);
    ck_assert_int_eq(slim_sampler_sample(s, l, 0, &t), SLIM_ERR_INVALID_ARG);
    ck_assert_ptr_nonnull(strstr(slim_last_error(), "n_vocab"));
    ck_assert_int_eq(slim_sampler_sample(s, l, -4, &t), SLIM_ERR_INVALID_ARG);
    float bad[3] = {NAN, -INFINITY, NAN};
    ck_assert_int_eq(slim_sampler_sample(s, bad, 3, &t), SLIM_ERR_INVALID_ARG);
    ck_assert_ptr_nonnull(strstr(slim_last_error(), "NaN"));
    ck_assert_int_eq(t, 77);
    slim_sampler_free(s);
    s = make(plain(0.0f, 0));
    ck_assert_int_eq(slim_sampler_sample(s, bad, 3, &t), SLIM_ERR_INVALID_ARG);
    slim_sampler_free(s);
}
END_TEST

enum { BIG = 262144 };

static float *big_logits(unsigned seed) {
    float *l = malloc(BIG * sizeof *l);
    ck_assert_ptr_nonnull(l);
    for (int i = 0; i < BIG; i++) {
        seed = seed * 1664525u + 1013904223u;
        l[i] = (float)(seed >> 8) / (float)(1u << 24) * 20.0f - 10.0f;
    }
    return l;
}

static int cmp_desc(const void *a, const void *b) {
    float x = *(const float *)a, y = *(const float *)b;
    return (x < y) - (x > y);
}

/* The k-th largest logit. */
static float kth(const float *l, int k) {
    float *c = malloc(BIG * sizeof *c);
    ck_assert_ptr_nonnull(c);
    memcpy(c, l, BIG * sizeof *c);
    qsort(c, BIG, sizeof *c, cmp_desc);
    float v = c[k - 1];
    free(c);
    return v;
}

START_TEST(test_big_vocab_top_k) {
    float *l = big_logits(99);
    float *copy = malloc(BIG * sizeof *copy);
    memcpy(copy, l, BIG * sizeof *l);
    float cut = kth(l, 40);
    slim_sampler_params p = plain(2.0f, 5);
    p.top_k = 40;
    slim_sampler *s = make(p);
    int distinct = 0;
    char *hit = calloc(BIG, 1);
    for (int i = 0; i < 2000; i++) {
        slim_token t = sample1(s, l, BIG);
        ck_assert_msg(l[t] >= cut, "token %d logit %g below the 40th %g", t, l[t], cut);
        distinct += !hit[t]++;
    }
    ck_assert_int_le(distinct, 40);
    ck_assert_int_ge(distinct, 30); /* at T = 2 over a 0.01-wide band: near uniform */
    ck_assert_mem_eq(l, copy, BIG * sizeof *l);
    slim_sampler_free(s);
    /* A large k takes the quickselect path. */
    cut = kth(l, 5000);
    p.top_k = 5000;
    p.temperature = 2.0f; /* without top-k ~83% of the draws would fall outside */
    s = make(p);
    memset(hit, 0, BIG);
    distinct = 0;
    for (int i = 0; i < 2000; i++) {
        slim_token t = sample1(s, l, BIG);
        ck_assert_msg(l[t] >= cut, "token %d logit %g below the 5000th %g", t, l[t], cut);
        distinct += !hit[t]++;
    }
    ck_assert_int_gt(distinct, 40);
    slim_sampler_free(s);
    free(hit);
    free(copy);
    free(l);
}
END_TEST

START_TEST(test_big_vocab_top_p) {
    /* No top-k: top-p over the whole vocabulary.  Logits with a clear head so
     * the nucleus is a known set: 100 tokens at 10 + small steps, the rest low. */
    float *l = big_logits(7);
    for (int i = 0; i < BIG; i++)
        l[i] -= 30.0f;
    for (int i = 0; i < 100; i++)
        l[(i * 2621) % BIG] = 10.0f + 0.001f * (float)i;
    slim_sampler_params p = plain(1.0f, 3);
    p.top_p = 0.5f;
    slim_sampler *s = make(p);
    for (int i = 0; i < 500; i++) {
        slim_token t = sample1(s, l, BIG);
        ck_assert_msg(l[t] >= 10.0f + 0.001f * 50.5f, "token %d logit %g outside the top 49", t,
                      l[t]);
    }
    slim_sampler_free(s);
    /* Defaults (top-k 40, top-p .95, min-p .05) also stay in the head. */
    s = make(slim_sampler_default_params());
    for (int i = 0; i < 500; i++)
        ck_assert_float_ge(l[sample1(s, l, BIG)], 10.0f);
    slim_sampler_free(s);
    /* Top-p alone over a flat-ish vocabulary: the nucleus is large (exercises
     * the growing partial sort); the draw stays in the top-p set. */
    free(l);
    l = big_logits(3);
    /* Uniform logits in [-10, 10): the top .3 of the mass lies above 10 + ln .7,
     * about 4700 tokens. */
    float cut = kth(l, 5200);
    p = plain(1.0f, 4);
    p.top_p = 0.3f;
    s = make(p);
    float lo = 10.0f;
    for (int i = 0; i < 200; i++) {
        float v = l[sample1(s, l, BIG)];
        ck_assert_float_ge(v, cut);
        if (v < lo) lo = v;
    }
    ck_assert_float_lt(lo, 9.8f); /* and not only the very top */
    slim_sampler_free(s);
    free(l);
}
END_TEST

/* logit_bias: added to the logits before the penalties and the temperature;
 * the same token twice adds; -inf bans; the list is copied at create; an older
 * struct_size leaves it off; bad entries are errors naming them. */
START_TEST(test_logit_bias) {
    const float L[4] = {1.0f, 3.0f, 2.0f, 0.0f};
    slim_logit_bias *b = malloc(2 * sizeof *b);
    ck_assert_ptr_nonnull(b);
    slim_sampler_params p = plain(0, 1);
    p.logit_bias = b;
    p.n_logit_bias = 1;

    b[0] = (slim_logit_bias){1, -100.0f}; /* ban the argmax: the next one wins */
    slim_sampler *s = make(p);
    b[0] = (slim_logit_bias){3, 100.0f}; /* changed after create: no effect */
    ck_assert_int_eq(sample1(s, L, 4), 2);
    slim_sampler_free(s);
    s = make(p); /* now token 3 forced */
    ck_assert_int_eq(sample1(s, L, 4), 3);
    slim_sampler_free(s);
    b[0] = (slim_logit_bias){1, -INFINITY};
    s = make(p);
    ck_assert_int_eq(sample1(s, L, 4), 2);
    slim_sampler_free(s);

    /* 3 - 0.6 = 2.4 beats 2; 3 - 2 * 0.6 = 1.8 does not */
    b[0] = b[1] = (slim_logit_bias){1, -0.6f};
    s = make(p);
    ck_assert_int_eq(sample1(s, L, 4), 1);
    slim_sampler_free(s);
    p.n_logit_bias = 2;
    s = make(p);
    ck_assert_int_eq(sample1(s, L, 4), 2);
    slim_sampler_free(s);

    /* before the temperature: probs .5 .3 .2 with token 2's logit + log 2.5
     * become weights .5 .3 .5, i.e. 5/13 3/13 5/13; the penalty window holds token 0
     * (presence 0.5: after the bias, .5 * e^-.5) */
    slim_sampler_params q = plain(1, 42);
    b[0] = (slim_logit_bias){2, logf(2.5f)};
    q.logit_bias = b;
    q.n_logit_bias = 1;
    const double want[3] = {5 / 13.0, 3 / 13.0, 5 / 13.0};
    check_freq(q, L3, 3, want);
    q.presence_penalty = 0.5f;
    slim_sampler *sp = make(q);
    slim_sampler_accept(sp, 0);
    int counts[3] = {0};
    for (int i = 0; i < DRAWS; i++)
        counts[sample1(sp, L3, 3)]++;
    slim_sampler_free(sp);
    const double w0 = 0.5 * exp(-0.5), z = w0 + 0.3 + 0.5;
    const double want2[3] = {w0 / z, 0.3 / z, 0.5 / z};
    for (int i = 0; i < 3; i++)
        ck_assert_msg(fabs((double)counts[i] / DRAWS - want2[i]) <= 0.02,
                      "penalty after bias: token %d frequency %.4f, want %.4f", i,
                      (double)counts[i] / DRAWS, want2[i]);

    /* a caller built before logit_bias existed: its struct_size leaves it off */
    p.n_logit_bias = 1;
    b[0] = (slim_logit_bias){1, -100.0f};
    p.struct_size = offsetof(slim_sampler_params, logit_bias);
    s = make(p);
    ck_assert_int_eq(sample1(s, L, 4), 1);
    slim_sampler_free(s);
    p.struct_size = sizeof p;

    /* errors */
    slim_token t;
    b[0] = (slim_logit_bias){4, 1.0f}; /* outside a 4-token vocabulary: at sampling */
    s = make(p);
    ck_assert_int_eq(slim_sampler_sample(s, L, 4, &t), SLIM_ERR_INVALID_ARG);
    ck_assert_ptr_nonnull(strstr(slim_last_error(), "logit_bias[0].token = 4"));
    slim_sampler_free(s);
    const slim_logit_bias bad[3] = {{-1, 1.0f}, {0, NAN}, {0, INFINITY}};
    const char *msg[3] = {"logit_bias[0].token = -1", "logit_bias[0].bias = nan",
                          "logit_bias[0].bias = inf"};
    for (int i = 0; i < 3; i++) {
        b[0] = bad[i];
        s = NULL;
        ck_assert_int_eq(slim_sampler_create(&p, &s), SLIM_ERR_INVALID_ARG);
        ck_assert_ptr_null(s);
        ck_assert_msg(strstr(slim_last_error(), msg[i]), "%s", slim_last_error());
    }
    p.logit_bias = NULL;
    ck_assert_int_eq(slim_sampler_create(&p, &s), SLIM_ERR_INVALID_ARG);
    ck_assert_ptr_nonnull(strstr(slim_last_error(), "n_logit_bias = 1"));
    free(b);
}
END_TEST

Suite *suite_sampler(void) {
    Suite *s = suite_create("sampler");
    TCase *tc = tcase_create("sampler");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_defaults);
    tcase_add_test(tc, test_greedy);
    tcase_add_test(tc, test_seed);
    tcase_add_test(tc, test_filters_equal_greedy);
    tcase_add_test(tc, test_distributions);
    tcase_add_test(tc, test_repeat_penalty);
    tcase_add_test(tc, test_presence_frequency);
    tcase_add_test(tc, test_penalty_window);
    tcase_add_test(tc, test_bad_params);
    tcase_add_test(tc, test_bad_args);
    tcase_add_test(tc, test_big_vocab_top_k);
    tcase_add_test(tc, test_big_vocab_top_p);
    tcase_add_test(tc, test_logit_bias);
    suite_add_tcase(s, tc);
    return s;
}
