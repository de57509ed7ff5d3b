/* CPU backend ops with SIMD paths (lib/backend/cpu): the gated activations
 * and attention against double-precision references written here, and the
 * invariances the model suites rely on: an element's or a token's result does
 * not depend on how the work is split (lengths, thread counts, one token at a
 * time vs a whole batch), bitwise. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cpu/kernels.h"
#include "core/cpu_features.h"
#include "core/fp16.h"
#include "core/threadpool.h"
#include "quant/blocks.h"
#include "quant/half_x64.h"
#include "rng.h"
#include "suites.h"

/* The kernels of the CPU level this process runs (SLIM_CPU forces a lower one). */
#define K (slim_cpu_kernels_active())

static float rng_sym(float a) { return (float)(a * (2.0 * rng_unif() - 1.0)); }

/* act(g) * u against the double formulas: GELU-tanh 0.5 x (1 + tanh(s)),
 * SiLU x / (1 + e^-x); within 2^-20 |x u| (a few float ulps of the
 * unrounded product; the GELU of very negative x is far below that).  Odd
 * lengths (masked tails), extremes (+-30, +-90, 0); then the same elements
 * computed as two pieces split at odd offsets are bitwise the same. */
START_TEST(test_act_mul) {
    static const int64_t lens[] = {1, 15, 16, 17, 100, 1001};
    rng_state = 0xAC7u;
    for (int act = 0; act < 2; act++)
        for (size_t il = 0; il < sizeof lens / sizeof lens[0]; il++) {
            const int64_t n = lens[il];
            float *g = malloc(sizeof(float) * (size_t)n), *u = malloc(sizeof(float) * (size_t)n);
            float *y = malloc(sizeof(float) * (size_t)n), *z = malloc(sizeof(float) * (size_t)n);
            ck_assert(g && u && y && z);
            static const float extremes[] = {30.0f, -30.0f, 90.0f, -90.0f, 0.0f, -1e-30f};
            for (int64_t i = 0; i < n; i++) {
                g[i] = i < 6 && n > 6 ? extremes[i] : rng_sym(12.0f);
                u[i] = rng_sym(2.0f);
            }
            memcpy(y, g, sizeof(float) * (size_t)n);
            K->act_mul(y, u, n, act == 0 ? SLIM_ACT_GELU_TANH : SLIM_ACT_SILU);
            for (int64_t i = 0; i < n; i++) {
                const double x = g[i];
                const double a =
                    act == 0
                        ? 0.5 * x * (1.0 + tanh(0.7978845608028654 * (x + 0.044715 * x * x * x)))
                        : x / (1.0 + exp(-x));
                const double want = a * u[i], tol = ldexp(fabs(x * u[i]), -20) + 1e-37;
                ck_assert_msg(isfinite(y[i]) && fabs(y[i] - want) <= tol,
                              "%s n=%lld i=%lld: x=%.9g u=%.9g got %.9g want %.9g",
                              act == 0 ? "gelu" : "silu", (long long)n, (long long)i, x,
                              (double)u[i], (double)y[i], want);
            }
            const int64_t cut = n / 3 | 1;
            memcpy(z, g, sizeof(float) * (size_t)n);
            if (cut < n) {
                K->act_mul(z, u, cut, act == 0 ? SLIM_ACT_GELU_TANH : SLIM_ACT_SILU);
                K->act_mul(z + cut, u + cut, n - cut,
                           act == 0 ? SLIM_ACT_GELU_TANH : SLIM_ACT_SILU);
                ck_assert_msg(memcmp(y, z, sizeof(float) * (size_t)n) == 0,
                              "act_mul n=%lld split at %lld differs", (long long)n, (long long)cut);
            }
            free(g);
            free(u);
            free(y);
            free(z);
        }
}
END_TEST

typedef struct attn_case {
    int32_t n_head, n_head_kv, head_dim, n_tokens, pos0, window;
    float softcap;
    int32_t block; /* KV block size, the blocks in reverse order; 0: one block */
} attn_case;

/* Runs slim_cpu_attention with a pool of n_threads over tokens [t0, t0 + nt). */
static void run_attention(const attn_case *c, int n_threads, const float *q, const uint16_t *k,
                          const uint16_t *v, int32_t n_ctx, int32_t t0, int32_t nt, float *out) {
    slim_threadpool *pool = NULL;
    ck_assert_int_eq(slim_threadpool_create(n_threads, &pool), SLIM_OK);
    float *scratch = malloc(sizeof(float) * (size_t)n_threads * (size_t)n_ctx);
    ck_assert_ptr_nonnull(scratch);
    const int64_t qw = (int64_t)c->n_head * c->head_dim;
    /* one sequence; with c->block, position p in block n_blocks - 1 - p / block, so the
     * cache holds k and v (position-major) moved there, else in row p */
    const int32_t bsz = c->block > 0 ? c->block : n_ctx, n_blocks = (n_ctx + bsz - 1) / bsz;
    const int64_t kvw = (int64_t)c->n_head_kv * c->head_dim;
    int32_t *pos = malloc(sizeof(int32_t) * (size_t)nt), *seq = calloc((size_t)nt, sizeof(int32_t)),
            *row = malloc(sizeof(int32_t) * (size_t)nt),
            *blocks = malloc(sizeof(int32_t) * (size_t)n_blocks);
    uint16_t *kc = malloc(sizeof(uint16_t) * (size_t)(n_blocks * bsz * kvw)),
             *vc = malloc(sizeof(uint16_t) * (size_t)(n_blocks * bsz * kvw));
    ck_assert(pos && seq && row && blocks && kc && vc);
    for (int32_t i = 0; i < n_blocks; i++)
        blocks[i] = n_blocks - 1 - i;
    for (int32_t p = 0; p < n_ctx; p++) {
        const int64_t r = (int64_t)blocks[p / bsz] * bsz + p % bsz;
        memcpy(kc + r * kvw, k + p * kvw, sizeof(uint16_t) * (size_t)kvw);
        memcpy(vc + r * kvw, v + p * kvw, sizeof(uint16_t) * (size_t)kvw);
    }
    for (int32_t t = 0; t < nt; t++) {
        pos[t] = c->pos0 + t0 + t;
        row[t] = blocks[pos[t] / bsz] * bsz + pos[t] % bsz;
    }
    const slim_batch_seq bs = {blocks, n_blocks};
    const slim_batch b = {.n_tokens = nt,
                          .pos = pos,
                          .seq = seq,
                          .row = row,
                          .n_seqs = 1,
                          .block_size = bsz,
                          .seqs = &bs};
    const slim_exec ex = {.pool = pool, .scratch = NULL, .scratch_size = 0, .batch = &b};
    const slim_attn_args a = {.q = q + t0 * qw,
                              .out = out + t0 * qw,
                              .k_cache = kc,
                              .v_cache = vc,
                              .n_tokens = nt,
                              .n_head = c->n_head,
                              .n_head_kv = c->n_head_kv,
                              .head_dim = c->head_dim,
                              .window = c->window,
                              .softcap = c->softcap,
                              .scratch = scratch,
                              .n_ctx = n_ctx};
    K->attention(&ex, &a);
    free(pos);
    free(seq);
    free(row);
    free(blocks);
    free(kc);
    free(vc);
    free(scratch);
    slim_threadpool_free(pool);
}

/* Causal GQA attention over an fp16 cache against a double-precision
 * softmax-weighted sum (within 2e-5 max|v|: float dot products of <= 256
 * terms, a ~1 ulp exp, float accumulation over <= 110 keys); then the same
 * tokens with 2 threads, and one at a time (decode steps), bitwise equal to
 * the 1-thread batch.  Head dims 64/96/256 take the grouped AVX-512 path
 * where the build has it, 80 the per-head one; groups of 1-4 heads there
 * (10 split 4 + 4 + 2; 9 over 3 KV heads: the odd head scored as its own
 * pair), keys in eights and the remainder; the last three through a block
 * table of 16, 7 and 32 rows, blocks in reverse order. */
START_TEST(test_attention) {
    static const attn_case cases[] = {
        {4, 1, 256, 70, 0, 0, 0.0f, 0},  {4, 1, 256, 5, 37, 13, 0.0f, 0},
        {8, 2, 64, 40, 3, 0, 5.0f, 0},   {6, 3, 96, 17, 0, 29, 0.0f, 0},
        {3, 1, 80, 9, 37, 0, 0.0f, 0},   {2, 2, 64, 1, 90, 0, 0.0f, 0},
        {10, 1, 64, 6, 0, 0, 0.0f, 0},   {9, 3, 64, 21, 50, 0, 0.0f, 0},
        {8, 2, 64, 80, 30, 0, 0.0f, 16}, {6, 3, 96, 17, 60, 29, 0.0f, 7},
        {4, 1, 256, 9, 70, 0, 0.0f, 32},
    };
    rng_state = 0xA77u;
    for (size_t ic = 0; ic < sizeof cases / sizeof cases[0]; ic++) {
        const attn_case *c = &cases[ic];
        const int32_t hd = c->head_dim, n_ctx = c->pos0 + c->n_tokens + 3;
        const int64_t qw = (int64_t)c->n_head * hd, kvw = (int64_t)c->n_head_kv * hd;
        float *q = malloc(sizeof(float) * (size_t)(c->n_tokens * qw));
        uint16_t *k = malloc(sizeof(uint16_t) * (size_t)(n_ctx * kvw));
        uint16_t *v = malloc(sizeof(uint16_t) * (size_t)(n_ctx * kvw));
        float *o1 = malloc(sizeof(float) * (size_t)(c->n_tokens * qw));
        float *o2 = malloc(sizeof(float) * (size_t)(c->n_tokens * qw));
        float *o3 = malloc(sizeof(float) * (size_t)(c->n_tokens * qw));
        double *p = malloc(sizeof(double) * (size_t)n_ctx);
        ck_assert(q && k && v && o1 && o2 && o3 && p);
        for (int64_t i = 0; i < c->n_tokens * qw; i++)
            q[i] = rng_sym(0.5f);
        double vmax = 0;
        for (int64_t i = 0; i < n_ctx * kvw; i++) {
            k[i] = slim_f32_to_fp16(rng_sym(1.0f));
            v[i] = slim_f32_to_fp16(rng_sym(1.0f));
            vmax = fmax(vmax, fabs(slim_fp16_to_f32(v[i])));
        }
        run_attention(c, 1, q, k, v, n_ctx, 0, c->n_tokens, o1);
        run_attention(c, 2, q, k, v, n_ctx, 0, c->n_tokens, o2);
        for (int32_t t = 0; t < c->n_tokens; t++)
            run_attention(c, 2, q, k, v, n_ctx, t, 1, o3);
        ck_assert_msg(memcmp(o1, o2, sizeof(float) * (size_t)(c->n_tokens * qw)) == 0,
                      "case %zu: 2 threads differ from 1", ic);
        ck_assert_msg(memcmp(o1, o3, sizeof(float) * (size_t)(c->n_tokens * qw)) == 0,
                      "case %zu: one token at a time differs from the batch", ic);
        const int32_t group = c->n_head / c->n_head_kv;
        for (int32_t t = 0; t < c->n_tokens; t++)
            for (int32_t h = 0; h < c->n_head; h++) {
                const int32_t pos = c->pos0 + t, g = h / group;
                const int32_t j0 =
                    c->window > 0 && pos - c->window + 1 > 0 ? pos - c->window + 1 : 0;
                const float *qh = q + t * qw + (int64_t)h * hd;
                double mx = -INFINITY, sum = 0;
                for (int32_t j = j0; j <= pos; j++) {
                    double s = 0;
                    for (int32_t i = 0; i < hd; i++)
                        s += (double)qh[i] * slim_fp16_to_f32(k[j * kvw + (int64_t)g * hd + i]);
                    if (c->softcap > 0) s = c->softcap * tanh(s / c->softcap);
                    p[j] = s;
                    mx = fmax(mx, s);
                }
                for (int32_t j = j0; j <= pos; j++) {
                    p[j] = exp(p[j] - mx);
                    sum += p[j];
                }
                for (int32_t i = 0; i < hd; i++) {
                    double want = 0;
                    for (int32_t j = j0; j <= pos; j++)
                        want += p[j] * slim_fp16_to_f32(v[j * kvw + (int64_t)g * hd + i]);
                    want /= sum;
                    const float got = o1[t * qw + (int64_t)h * hd + i];
                    ck_assert_msg(fabs(got - want) <= 2e-5 * vmax,
                                  "case %zu t=%d h=%d i=%d: %.9g, want %.9g", ic, t, h, i,
                                  (double)got, want);
                }
            }
        free(q);
        free(k);
        free(v);
        free(o1);
        free(o2);
        free(o3);
        free(p);
    }
}
END_TEST

/* slim_cpu_matmul with 1 and 2 threads over T tokens of x: the weight with
 * its packed copy gives bitwise y (what the packed kernel gave), and
 * without it (the plain kernels) within tl[i] of y, bitwise y if `same`. */
static void check_matmul(const slim_tensor *plain, const void *packed, const float *x, int64_t T,
                         const float *y, const double *tl, bool same) {
    const int64_t n = plain->ne[0], rows = plain->ne[1];
    slim_tensor wp = *plain;
    wp.packed = packed;
    for (int threads = 1; threads <= 2; threads++) {
        slim_threadpool *pool = NULL;
        ck_assert_int_eq(slim_threadpool_create(threads, &pool), SLIM_OK);
        /* the activations, and room past them for two threads' gemm work areas */
        slim_exec ex = {.pool = pool,
                        .scratch_size = sizeof(float) * (size_t)(n * T) + 2 * SLIM_X64_WORK_BYTES};
        ex.scratch = malloc(ex.scratch_size);
        float *ym = malloc(sizeof(float) * (size_t)(rows * T));
        ck_assert(ex.scratch && ym);
        const slim_tensor *wl[1] = {&wp};
        float *yl[1] = {ym};
        ck_assert_int_eq(K->matmul(&ex, 1, wl, x, T, yl), SLIM_OK);
        ck_assert(memcmp(ym, y, sizeof(float) * (size_t)(rows * T)) == 0);
        wl[0] = plain;
        ck_assert_int_eq(K->matmul(&ex, 1, wl, x, T, yl), SLIM_OK);
        for (int64_t i = 0; i < rows * T; i++)
            ck_assert_msg(same ? ym[i] == y[i] : fabs((double)ym[i] - y[i]) <= tl[i],
                          "%s n=%lld: plain vs packed matmul %lld: %.9g vs %.9g",
                          slim_dtype_name(plain->type), (long long)n, (long long)i, (double)ym[i],
                          (double)y[i]);
        free(ym);
        free(ex.scratch);
        slim_threadpool_free(pool);
    }
}

/* Random Q4_0 / Q4_1 / Q5_0 / Q5_1 / Q8_0 / Q2_K / Q3_K / Q4_K / Q5_K / Q6_K rows: random
 * quants and packed scales, fp16 scales of mixed magnitude (some zero); the K-quants' dmin
 * positive, as quantizers write them. */
static void random_blocks(slim_dtype type, void *blocks, int64_t n_blocks) {
    for (int64_t i = 0; i < n_blocks; i++) {
        const uint64_t r = rng_next();
        const uint16_t d =
            (r & 63) == 0 ? 0
                          : slim_f32_to_fp16((float)ldexp(rng_unif() + 0.5, -(int)(r >> 8 & 7)));
        if (type == SLIM_DTYPE_Q4_0) {
            block_q4_0 *b = (block_q4_0 *)blocks + i;
            b->d = d;
            for (int j = 0; j < SLIM_QK4_0 / 2; j++)
                b->qs[j] = (uint8_t)rng_next();
        } else if (type == SLIM_DTYPE_Q4_1) { /* min: signed, some zero */
            block_q4_1 *b = (block_q4_1 *)blocks + i;
            b->d = d;
            b->m =
                (r & 60) == 0 ? 0 : slim_f32_to_fp16(-16 * slim_fp16_to_f32(d) * (float)rng_unif());
            for (int j = 0; j < SLIM_QK4_1 / 2; j++)
                b->qs[j] = (uint8_t)rng_next();
        } else if (type == SLIM_DTYPE_Q5_0) {
            block_q5_0 *b = (block_q5_0 *)blocks + i;
            b->d = d;
            for (int j = 0; j < 4; j++)
                b->qh[j] = (uint8_t)rng_next();
            for (int j = 0; j < SLIM_QK5_0 / 2; j++)
                b->qs[j] = (uint8_t)rng_next();
        } else if (type == SLIM_DTYPE_Q5_1) {
            block_q5_1 *b = (block_q5_1 *)blocks + i;
            b->d = d;
            b->m =
                (r & 60) == 0 ? 0 : slim_f32_to_fp16(-32 * slim_fp16_to_f32(d) * (float)rng_unif());
            for (int j = 0; j < 4; j++)
                b->qh[j] = (uint8_t)rng_next();
            for (int j = 0; j < SLIM_QK5_1 / 2; j++)
                b->qs[j] = (uint8_t)rng_next();
        } else if (type == SLIM_DTYPE_Q8_0) {
            block_q8_0 *b = (block_q8_0 *)blocks + i;
            b->d = d;
            for (int j = 0; j < SLIM_QK8_0; j++)
                b->qs[j] = (int8_t)rng_next();
        } else if (type == SLIM_DTYPE_Q2_K) {
            block_q2_K *b = (block_q2_K *)blocks + i;
            b->d = slim_f32_to_fp16(slim_fp16_to_f32(d) / 16);
            b->dmin = slim_f32_to_fp16((float)ldexp(rng_unif(), -8));
            for (int j = 0; j < SLIM_QK_K / 16; j++)
                b->scales[j] = (uint8_t)rng_next();
            for (int j = 0; j < SLIM_QK_K / 4; j++)
                b->qs[j] = (uint8_t)rng_next();
        } else if (type == SLIM_DTYPE_Q3_K) {
            block_q3_K *b = (block_q3_K *)blocks + i;
            b->d = slim_f32_to_fp16(slim_fp16_to_f32(d) / 64);
            for (int j = 0; j < SLIM_QK_K / 8; j++)
                b->hmask[j] = (uint8_t)rng_next();
            for (int j = 0; j < SLIM_QK_K / 4; j++)
                b->qs[j] = (uint8_t)rng_next();
            for (int j = 0; j < 12; j++)
                b->scales[j] = (uint8_t)rng_next();
        } else if (type == SLIM_DTYPE_Q6_K) {
            block_q6_K *b = (block_q6_K *)blocks + i;
            b->d = slim_f32_to_fp16(slim_fp16_to_f32(d) / 64);
            for (int j = 0; j < SLIM_QK_K / 16; j++)
                b->scales[j] = (int8_t)rng_next();
            for (int j = 0; j < SLIM_QK_K / 2; j++)
                b->ql[j] = (uint8_t)rng_next();
            for (int j = 0; j < SLIM_QK_K / 4; j++)
                b->qh[j] = (uint8_t)rng_next();
        } else if (type == SLIM_DTYPE_Q5_K) {
            block_q5_K *b = (block_q5_K *)blocks + i;
            b->d = slim_f32_to_fp16(slim_fp16_to_f32(d) / 128);
            b->dmin = slim_f32_to_fp16((float)ldexp(rng_unif(), -8));
            for (int j = 0; j < SLIM_K_SCALE_SIZE; j++)
                b->scales[j] = (uint8_t)rng_next();
            for (int j = 0; j < SLIM_QK_K / 8; j++)
                b->qh[j] = (uint8_t)rng_next();
            for (int j = 0; j < SLIM_QK_K / 2; j++)
                b->qs[j] = (uint8_t)rng_next();
        } else {
            block_q4_K *b = (block_q4_K *)blocks + i;
            b->d = slim_f32_to_fp16(slim_fp16_to_f32(d) / 64);
            b->dmin = slim_f32_to_fp16((float)ldexp(rng_unif(), -8));
            for (int j = 0; j < SLIM_K_SCALE_SIZE; j++)
                b->scales[j] = (uint8_t)rng_next();
            for (int j = 0; j < SLIM_QK_K / 2; j++)
                b->qs[j] = (uint8_t)rng_next();
        }
    }
}

/* The kernels over 16-row groups, with what a test needs to drive them. */
typedef struct x16_format {
    slim_dtype type, act; /* weights, activations (vec_dot_type) */
    int64_t qk;           /* elements per weight block */
    size_t block, act_block;
    size_t (*size)(int64_t n, int64_t rows); /* NULL: the plain rows' bytes */
    void (*pack)(const void *src, size_t stride, int64_t n, int64_t rows, void *dst);
    void (*xsum)(int64_t n, const void *xq, size_t xs, int64_t n_tokens, int16_t *xsum);
    void (*gemm)(int64_t n, const void *packed, int64_t g0, int64_t g1, const void *xq, size_t xs,
                 const int16_t *xsum, int64_t n_tokens, float *y, int64_t ldy);
    void (*ref)(int64_t n, const void *packed, int64_t g0, int64_t g1, const void *xq, size_t xs,
                int64_t n_tokens, float *y, int64_t ldy);
    int64_t lens[3];
} x16_format;

/* Q2_K's, Q3_K's and Q6_K's kernels take no sums (Q8_K's bsums carry the mins and
 * offsets), nor Q4_0's and Q8_0's (their prepared activations carry them): adapters. */
static void q6_k_no_sums(int64_t n, const void *xq, size_t xs, int64_t n_tokens, int16_t *xsum) {
    memset(xsum, 0x5A, sizeof(int16_t) * (size_t)(n / 32 * n_tokens)); /* must not be read */
}
static void q6_k_gemm(int64_t n, const void *packed, int64_t g0, int64_t g1, const void *xq,
                      size_t xs, const int16_t *xsum, int64_t n_tokens, float *y, int64_t ldy) {
    K->q6_kx16_gemm(n, packed, g0, g1, xq, xs, n_tokens, y, ldy);
}
static void q2_k_gemm(int64_t n, const void *packed, int64_t g0, int64_t g1, const void *xq,
                      size_t xs, const int16_t *xsum, int64_t n_tokens, float *y, int64_t ldy) {
    K->q2_kx16_gemm(n, packed, g0, g1, xq, xs, n_tokens, y, ldy);
}
static void q3_k_gemm(int64_t n, const void *packed, int64_t g0, int64_t g1, const void *xq,
                      size_t xs, const int16_t *xsum, int64_t n_tokens, float *y, int64_t ldy) {
    K->q3_kx16_gemm(n, packed, g0, g1, xq, xs, n_tokens, y, ldy);
}

/* Q4_0 and Q8_0 take their activations prepared for exactly the tokens of
 * the call (slim_q4_0x16_prep): adapters that prepare them from xq. */
static void legacy_x16_gemm(bool q8, int64_t n, const void *packed, int64_t g0, int64_t g1,
                            const void *xq, size_t xs, int64_t n_tokens, float *y, int64_t ldy) {
    void *xp = malloc(K->q4_0x16_prep_size(n, n_tokens));
    ck_assert(xp);
    K->q4_0x16_prep(n, xq, xs, n_tokens, xp);
    (q8 ? K->q8_0x16_gemm : K->q4_0x16_gemm)(n, packed, g0, g1, xp, n_tokens, y, ldy);
    free(xp);
}
static void q4_0_gemm(int64_t n, const void *packed, int64_t g0, int64_t g1, const void *xq,
                      size_t xs, const int16_t *xsum, int64_t n_tokens, float *y, int64_t ldy) {
    legacy_x16_gemm(false, n, packed, g0, g1, xq, xs, n_tokens, y, ldy);
}
/* Q4_1, Q5_1 (Q8_1 activations: Q4_1's preparation) and Q5_0 (Q4_0's) */
static void q8_1_x16_gemm(int type, int64_t n, const void *packed, int64_t g0, int64_t g1,
                          const void *xq, size_t xs, int64_t n_tokens, float *y, int64_t ldy) {
    const bool q8_1 = type != SLIM_DTYPE_Q5_0;
    void *xp = malloc(q8_1 ? K->q4_1x16_prep_size(n, n_tokens) : K->q4_0x16_prep_size(n, n_tokens));
    ck_assert(xp);
    (q8_1 ? K->q4_1x16_prep : K->q4_0x16_prep)(n, xq, xs, n_tokens, xp);
    (type == SLIM_DTYPE_Q4_1   ? K->q4_1x16_gemm
     : type == SLIM_DTYPE_Q5_0 ? K->q5_0x16_gemm
                               : K->q5_1x16_gemm)(n, packed, g0, g1, xp, n_tokens, y, ldy);
    free(xp);
}
static void q4_1_gemm(int64_t n, const void *packed, int64_t g0, int64_t g1, const void *xq,
                      size_t xs, const int16_t *xsum, int64_t n_tokens, float *y, int64_t ldy) {
    q8_1_x16_gemm(SLIM_DTYPE_Q4_1, n, packed, g0, g1, xq, xs, n_tokens, y, ldy);
}
static void q5_0_gemm(int64_t n, const void *packed, int64_t g0, int64_t g1, const void *xq,
                      size_t xs, const int16_t *xsum, int64_t n_tokens, float *y, int64_t ldy) {
    q8_1_x16_gemm(SLIM_DTYPE_Q5_0, n, packed, g0, g1, xq, xs, n_tokens, y, ldy);
}
static void q5_1_gemm(int64_t n, const void *packed, int64_t g0, int64_t g1, const void *xq,
                      size_t xs, const int16_t *xsum, int64_t n_tokens, float *y, int64_t ldy) {
    q8_1_x16_gemm(SLIM_DTYPE_Q5_1, n, packed, g0, g1, xq, xs, n_tokens, y, ldy);
}
static void q8_0_gemm(int64_t n, const void *packed, int64_t g0, int64_t g1, const void *xq,
                      size_t xs, const int16_t *xsum, int64_t n_tokens, float *y, int64_t ldy) {
    legacy_x16_gemm(true, n, packed, g0, g1, xq, xs, n_tokens, y, ldy);
}

/* The repacked Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K, Q3_K, Q4_K, Q5_K and Q6_K kernels
 * (quant/legacy_x16.h, q4_1_x16.h, q5_x16.h, q23_k_x16.h, q4_k_x16.h, q6_k_x16.h) for
 * several row lengths, 16, 48 and 80 rows and 1 to 17 tokens (full and ragged
 * token tiles; one token over groups 1.. as well):
 * - the SIMD kernel is bitwise its scalar reference;
 * - within 2^-20 sum |term| |x| + 1e-30 of the double dot of the dequantized
 *   row with the dequantized activations (|term|: |w|, or for Q2_K, Q4_K, Q5_K
 *   |d sc q| + |dmin m|, the two products the kernel subtracts);
 * - a token alone (decode) gives bitwise what it gives in a batch;
 * - through slim_cpu_matmul with 1 and 2 threads, packed weights give bitwise
 *   the same, and the plain vec_dot / gemm path agrees within twice the bound. */
START_TEST(test_x16) {
    /* the active level's kernels (not constants: no static table) */
    const x16_format x16_formats[] = {
        {SLIM_DTYPE_Q4_0,
         SLIM_DTYPE_Q8_0,
         SLIM_QK4_0,
         sizeof(block_q4_0),
         sizeof(block_q8_0),
         NULL,
         K->q4_0x16_pack,
         q6_k_no_sums,
         q4_0_gemm,
         K->q4_0x16_gemm_ref,
         {32, 96, 2080}},
        {SLIM_DTYPE_Q4_1,
         SLIM_DTYPE_Q8_1,
         SLIM_QK4_1,
         sizeof(block_q4_1),
         sizeof(block_q8_1),
         NULL,
         K->q4_1x16_pack,
         q6_k_no_sums,
         q4_1_gemm,
         K->q4_1x16_gemm_ref,
         {32, 96, 2080}},
        {SLIM_DTYPE_Q5_0,
         SLIM_DTYPE_Q8_0,
         SLIM_QK5_0,
         sizeof(block_q5_0),
         sizeof(block_q8_0),
         NULL,
         K->q5_0x16_pack,
         q6_k_no_sums,
         q5_0_gemm,
         K->q5_0x16_gemm_ref,
         {32, 96, 2080}},
        {SLIM_DTYPE_Q5_1,
         SLIM_DTYPE_Q8_1,
         SLIM_QK5_1,
         sizeof(block_q5_1),
         sizeof(block_q8_1),
         NULL,
         K->q5_1x16_pack,
         q6_k_no_sums,
         q5_1_gemm,
         K->q5_1x16_gemm_ref,
         {32, 96, 2080}},
        {SLIM_DTYPE_Q8_0,
         SLIM_DTYPE_Q8_0,
         SLIM_QK8_0,
         sizeof(block_q8_0),
         sizeof(block_q8_0),
         NULL,
         K->q8_0x16_pack,
         q6_k_no_sums,
         q8_0_gemm,
         K->q8_0x16_gemm_ref,
         {32, 96, 2080}},
        {SLIM_DTYPE_Q2_K,
         SLIM_DTYPE_Q8_K,
         SLIM_QK_K,
         sizeof(block_q2_K),
         sizeof(block_q8_K),
         NULL,
         K->q2_kx16_pack,
         q6_k_no_sums,
         q2_k_gemm,
         K->q2_kx16_gemm_ref,
         {256, 768, 2304}},
        {SLIM_DTYPE_Q3_K,
         SLIM_DTYPE_Q8_K,
         SLIM_QK_K,
         sizeof(block_q3_K),
         sizeof(block_q8_K),
         K->q3_kx16_size,
         K->q3_kx16_pack,
         q6_k_no_sums,
         q3_k_gemm,
         K->q3_kx16_gemm_ref,
         {256, 768, 2304}},
        {SLIM_DTYPE_Q4_K,
         SLIM_DTYPE_Q8_K,
         SLIM_QK_K,
         sizeof(block_q4_K),
         sizeof(block_q8_K),
         K->q4_kx16_size,
         K->q4_kx16_pack,
         K->q4_kx16_xsum,
         K->q4_kx16_gemm,
         K->q4_kx16_gemm_ref,
         {256, 2304, 4352}}, /* 4352: the decode tile of four groups (nb >= 16) */
        {SLIM_DTYPE_Q5_K,
         SLIM_DTYPE_Q8_K,
         SLIM_QK_K,
         sizeof(block_q5_K),
         sizeof(block_q8_K),
         K->q5_kx16_size,
         K->q5_kx16_pack,
         K->q4_kx16_xsum,
         K->q5_kx16_gemm,
         K->q5_kx16_gemm_ref,
         {256, 2304, 4352}},
        {SLIM_DTYPE_Q6_K,
         SLIM_DTYPE_Q8_K,
         SLIM_QK_K,
         sizeof(block_q6_K),
         sizeof(block_q8_K),
         NULL,
         K->q6_kx16_pack,
         q6_k_no_sums,
         q6_k_gemm,
         K->q6_kx16_gemm_ref,
         {256, 768, 2304}},
    };
    static const int64_t row_counts[] = {16, 48, 80}; /* 80: a tile of 4 groups and one more */
    rng_state = 0x40016u;
    for (size_t f = 0; f < sizeof x16_formats / sizeof x16_formats[0]; f++)
        for (size_t il = 0; il < 3; il++)
            for (size_t ir = 0; ir < sizeof row_counts / sizeof row_counts[0]; ir++) {
                const x16_format *F = &x16_formats[f];
                const slim_dtype_traits *wt_tr = slim_dtype_traits_of(F->type);
                const slim_dtype_traits *xt_tr = slim_dtype_traits_of(F->act);
                const int64_t n = F->lens[il], rows = row_counts[ir], T = 17, nb = n / F->qk;
                const size_t ws = (size_t)nb * F->block,
                             xs = (size_t)(n / xt_tr->block_size) * F->act_block;
                char *w = malloc(ws * (size_t)rows), *w0 = malloc(ws);
                const size_t pbytes = F->size ? F->size(n, rows) : ws * (size_t)rows;
                void *packed = aligned_alloc(64, (pbytes + 63) & ~(size_t)63);
                float *xf = malloc(sizeof(float) * (size_t)(n * T));
                float *wf = malloc(sizeof(float) * (size_t)n),
                      *pf = malloc(sizeof(float) * (size_t)n);
                float *xd = malloc(sizeof(float) * (size_t)(n * T));
                char *xq = malloc(xs * (size_t)T);
                int16_t *xsum = malloc(sizeof(int16_t) * (size_t)(n / 32 * T));
                float *y = malloc(sizeof(float) * (size_t)(rows * T)),
                      *yr = malloc(sizeof(float) * (size_t)(rows * T));
                float *y1 = malloc(sizeof(float) * (size_t)rows);
                double *tl = malloc(sizeof(double) * (size_t)(rows * T));
                ck_assert(w && w0 && packed && xf && wf && pf && xd && xq && xsum && y && yr &&
                          y1 && tl);
                random_blocks(F->type, w, nb * rows);
                for (int64_t i = 0; i < n * T; i++)
                    xf[i] = rng_sym(3.0f);
                for (int64_t t = 0; t < T; t++) {
                    xt_tr->from_float(xf + t * n, xq + (size_t)t * xs, n);
                    xt_tr->to_float(xq + (size_t)t * xs, xd + t * n, n);
                }
                F->pack(w, ws, n, rows, packed);
                F->xsum(n, xq, xs, T, xsum);
                for (int64_t nt = 1; nt <= T; nt += (nt < 9 ? 1 : 8)) {
                    F->gemm(n, packed, 0, rows / 16, xq, xs, xsum, nt, y, rows);
                    F->ref(n, packed, 0, rows / 16, xq, xs, nt, yr, rows);
                    ck_assert_msg(memcmp(y, yr, sizeof(float) * (size_t)(rows * nt)) == 0,
                                  "%s x16 n=%lld rows=%lld tokens=%lld: SIMD != scalar reference",
                                  wt_tr->name, (long long)n, (long long)rows, (long long)nt);
                }
                if (rows > 16) { /* a range that starts past group 0 (a second thread's) */
                    F->gemm(n, packed, 1, rows / 16, xq, xs, xsum, 1, y, rows);
                    F->ref(n, packed, 0, rows / 16, xq, xs, 1, yr, rows);
                    ck_assert_msg(memcmp(y + 16, yr + 16, sizeof(float) * (size_t)(rows - 16)) == 0,
                                  "%s x16 n=%lld rows=%lld groups 1..: SIMD != scalar reference",
                                  wt_tr->name, (long long)n, (long long)rows);
                }
                for (int64_t r = 0; r < rows; r++) {
                    const char *row = w + (size_t)r * ws;
                    wt_tr->to_float(row, wf, n);
                    memcpy(w0, row, ws); /* Q4_K, Q4_1 without mins: the d sc q part alone */
                    for (int64_t b = 0; F->type == SLIM_DTYPE_Q2_K && b < nb; b++)
                        ((block_q2_K *)w0)[b].dmin = 0;
                    for (int64_t b = 0; F->type == SLIM_DTYPE_Q4_K && b < nb; b++)
                        ((block_q4_K *)w0)[b].dmin = 0;
                    for (int64_t b = 0; F->type == SLIM_DTYPE_Q5_K && b < nb; b++)
                        ((block_q5_K *)w0)[b].dmin = 0;
                    for (int64_t b = 0; F->type == SLIM_DTYPE_Q4_1 && b < nb; b++)
                        ((block_q4_1 *)w0)[b].m = 0;
                    for (int64_t b = 0; F->type == SLIM_DTYPE_Q5_1 && b < nb; b++)
                        ((block_q5_1 *)w0)[b].m = 0;
                    wt_tr->to_float(w0, pf, n);
                    for (int64_t t = 0; t < T; t++) {
                        double want = 0, mag = 0;
                        /* Q4_1's min meets the activations through Q8_1's s
                         * (fp16 of d * sum(q), as llama.cpp's): the reference takes it too */
                        const bool q41 = F->type == SLIM_DTYPE_Q4_1 || F->type == SLIM_DTYPE_Q5_1;
                        for (int64_t i = 0; i < n; i++) {
                            const double xv = xd[t * n + i];
                            want += (q41 ? (double)pf[i] : (double)wf[i]) * xv;
                            mag += (fabs((double)pf[i]) + (q41 ? 0 : fabs((double)pf[i] - wf[i]))) *
                                   fabs(xv);
                        }
                        for (int64_t b = 0; q41 && b < nb; b++) {
                            const double m = slim_fp16_to_f32(F->type == SLIM_DTYPE_Q4_1
                                                                  ? ((const block_q4_1 *)row)[b].m
                                                                  : ((const block_q5_1 *)row)[b].m);
                            const double sx =
                                slim_fp16_to_f32(((const block_q8_1 *)(xq + (size_t)t * xs))[b].s);
                            want += m * sx;
                            mag += fabs(m * sx);
                        }
                        const double got = y[t * rows + r], tol = ldexp(mag, -20) + 1e-30;
                        tl[t * rows + r] = 2 * tol;
                        const float plain = wt_tr->vec_dot(n, row, xq + (size_t)t * xs);
                        /* where the level repacks, its plain kernel has the same numerics */
                        ck_assert_msg(!K->q4_0x16_available() || plain == (float)got,
                                      "%s x16 n=%lld row %lld token %lld: packed %.9g != plain "
                                      "vec_dot %.9g",
                                      wt_tr->name, (long long)n, (long long)r, (long long)t, got,
                                      (double)plain);
                        ck_assert_msg(fabs(got - want) <= tol &&
                                          fabs((double)plain - got) <= 2 * tol,
                                      "%s x16 n=%lld row %lld token %lld: got %.9g, double %.9g, "
                                      "plain vec_dot %.9g",
                                      wt_tr->name, (long long)n, (long long)r, (long long)t, got,
                                      want, (double)plain);
                    }
                }
                for (int64_t t = 0; t < T; t++) { /* decode: one token at a time */
                    F->gemm(n, packed, 0, rows / 16, xq + (size_t)t * xs, xs, xsum + t * (n / 32),
                            1, y1, rows);
                    ck_assert(memcmp(y1, y + t * rows, sizeof(float) * (size_t)rows) == 0);
                }
                /* the CPU matmul, packed and plain, 1 and 2 threads */
                slim_tensor wt = {.name = "w",
                                  .type = F->type,
                                  .n_dims = 2,
                                  .ne = {n, rows, 1, 1},
                                  .nb = {F->block, ws, ws * (size_t)rows, ws * (size_t)rows},
                                  .data = w};
                check_matmul(&wt, packed, xf, T, y, tl, K->q4_0x16_available());
                free(w);
                free(w0);
                free(packed);
                free(xf);
                free(wf);
                free(pf);
                free(xd);
                free(xq);
                free(xsum);
                free(y);
                free(yr);
                free(y1);
                free(tl);
            }
}
END_TEST

/* The repacked F16 / BF16 kernel (quant/half_x64.h), 64 and 128 rows, odd
 * row lengths, 1 to 14 tokens (from 12 on, with a work area, the later token
 * tiles read the widened slice): the SIMD kernel is bitwise its scalar
 * reference (sequential fmaf per row); within 2^-20 sum |w x| of the double
 * dot; one token alone gives bitwise what it gives in a batch; the CPU matmul
 * with packed weights (1 and 2 threads, scratch with room for work areas) is
 * bitwise the kernel, and the plain F16/BF16 path agrees within the bound. */
START_TEST(test_half_x64) {
    static const int64_t lens[] = {1, 17, 2048 + 5};
    float *work = aligned_alloc(64, SLIM_X64_WORK_BYTES);
    ck_assert(work);
    rng_state = 0x64u;
    for (int bf = 0; bf < 2; bf++)
        for (size_t il = 0; il < sizeof lens / sizeof lens[0]; il++)
            for (int64_t rows = 64; rows <= 128; rows += 64) {
                const int64_t n = lens[il], T = 14;
                const slim_dtype type = bf ? SLIM_DTYPE_BF16 : SLIM_DTYPE_F16;
                uint16_t *w = malloc(sizeof(uint16_t) * (size_t)(n * rows));
                void *packed =
                    aligned_alloc(64, (sizeof(uint16_t) * (size_t)(n * rows) + 63) & ~(size_t)63);
                float *x = malloc(sizeof(float) * (size_t)(n * T));
                float *y = malloc(sizeof(float) * (size_t)(rows * T)),
                      *yr = malloc(sizeof(float) * (size_t)(rows * T));
                float *y1 = malloc(sizeof(float) * (size_t)rows);
                double *tl = malloc(sizeof(double) * (size_t)(rows * T));
                ck_assert(w && packed && x && y && yr && y1 && tl);
                for (int64_t i = 0; i < n * rows; i++)
                    w[i] = bf ? slim_f32_to_bf16(rng_sym(2.0f)) : slim_f32_to_fp16(rng_sym(2.0f));
                for (int64_t i = 0; i < n * T; i++)
                    x[i] = rng_sym(3.0f);
                K->half_x64_pack(w, sizeof(uint16_t) * (size_t)n, n, rows, packed);
                for (int64_t nt = 1; nt <= T; nt++) {
                    K->half_x64_gemm(bf, n, packed, 0, rows / 64, x, (size_t)n, nt, y, rows, work);
                    K->half_x64_gemm_ref(bf, n, packed, 0, rows / 64, x, (size_t)n, nt, yr, rows);
                    ck_assert_msg(
                        memcmp(y, yr, sizeof(float) * (size_t)(rows * nt)) == 0,
                        "half_x64 bf16=%d n=%lld rows=%lld tokens=%lld: SIMD != reference", bf,
                        (long long)n, (long long)rows, (long long)nt);
                }
                for (int64_t r = 0; r < rows; r++)
                    for (int64_t t = 0; t < T; t++) {
                        double want = 0, mag = 0;
                        for (int64_t i = 0; i < n; i++) {
                            const uint16_t h = w[r * n + i];
                            const double p =
                                (double)(bf ? slim_bf16_to_f32(h) : slim_fp16_to_f32(h)) *
                                x[t * n + i];
                            want += p;
                            mag += fabs(p);
                        }
                        const double tol = ldexp(mag, -20) + 1e-30;
                        tl[t * rows + r] = 2 * tol;
                        ck_assert_msg(fabs(y[t * rows + r] - want) <= tol,
                                      "half_x64 n=%lld row %lld token %lld: %.9g vs double %.9g",
                                      (long long)n, (long long)r, (long long)t,
                                      (double)y[t * rows + r], want);
                    }
                for (int64_t t = 0; t < T; t++) {
                    K->half_x64_gemm(bf, n, packed, 0, rows / 64, x + t * n, (size_t)n, 1, y1, rows,
                                     NULL);
                    ck_assert(memcmp(y1, y + t * rows, sizeof(float) * (size_t)rows) == 0);
                }
                const size_t ws = sizeof(uint16_t) * (size_t)n;
                slim_tensor wt = {.name = "w",
                                  .type = type,
                                  .n_dims = 2,
                                  .ne = {n, rows, 1, 1},
                                  .nb = {2, ws, ws * (size_t)rows, ws * (size_t)rows},
                                  .data = w};
                check_matmul(&wt, packed, x, T, y, tl, false);
                free(w);
                free(packed);
                free(x);
                free(y);
                free(yr);
                free(y1);
                free(tl);
            }
    free(work);
}
END_TEST

/* The CPU level in use (docs/ARCHITECTURE.md, "CPU dispatch"): in the
 * dispatch build it is the highest this CPU has, or the lower one SLIM_CPU
 * names (make test-levels runs the suites at each); its table is the one
 * everything uses (traits, backend, repacking), and its kernels are those of
 * its instruction set: SIMD dot products from AVX2 on, the repacked kernels
 * (and so repacking at load) only with AVX-512 VNNI. */
START_TEST(test_cpu_level) {
    const slim_cpu_kernels *k = K;
    ck_assert_ptr_eq(slim_backend_cpu(), k->backend());
    for (int t = 0; t < SLIM_DTYPE_COUNT; t++)
        ck_assert_ptr_eq(slim_dtype_traits_of(t), k->traits[t]);
    if (strcmp(k->level, "single") == 0) return; /* ARCH=native: one target */
    const slim_cpu_level level = slim_cpu_level_get();
    ck_assert_str_eq(k->level, slim_cpu_level_name(level));
#if defined(__x86_64__)
    __builtin_cpu_init();
    const bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    const bool avx512 = avx2 && __builtin_cpu_supports("avx512bw") &&
                        __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vnni");
    slim_cpu_level want = avx512 ? SLIM_CPU_AVX512 : avx2 ? SLIM_CPU_AVX2 : SLIM_CPU_BASELINE;
    const char *env = getenv("SLIM_CPU");
    for (int l = 0; env && l < (int)want; l++)
        if (strcmp(env, slim_cpu_level_name((slim_cpu_level)l)) == 0) want = (slim_cpu_level)l;
    ck_assert_int_eq(level, want);
    ck_assert(k->quant_has_simd() == (level >= SLIM_CPU_AVX2));
    const bool x16 = level == SLIM_CPU_AVX512;
    ck_assert(k->q4_0x16_available() == x16 && k->q4_1x16_available() == x16 &&
              k->q5_x16_available() == x16 && k->q4_kx16_available() == x16 &&
              k->q6_kx16_available() == x16 && k->q23_kx16_available() == x16 &&
              k->half_x64_available() == x16);
    slim_tensor w = {.name = "w", .type = SLIM_DTYPE_Q4_0, .ne = {64, 16, 1, 1}};
    ck_assert((slim_cpu_packed_size(&w) > 0) == x16);
#else
    ck_assert_int_eq(level, SLIM_CPU_BASELINE);
#endif
}
END_TEST

/* The CPU backend says what it runs: every weight type with a dot product as
 * a matmul weight (the K-quants the CUDA kernels lack among them), every type
 * with a to_float as a table of rows; Q8_K (activations only) and ids slim
 * does not know as neither. */
START_TEST(test_supports) {
    const slim_backend_ops *ops = slim_backend_cpu();
    ck_assert_ptr_nonnull(ops->supports);
    const slim_dtype weights[] = {
        SLIM_DTYPE_F32,  SLIM_DTYPE_F16,  SLIM_DTYPE_BF16, SLIM_DTYPE_Q4_0, SLIM_DTYPE_Q4_1,
        SLIM_DTYPE_Q5_0, SLIM_DTYPE_Q5_1, SLIM_DTYPE_Q8_0, SLIM_DTYPE_Q2_K, SLIM_DTYPE_Q3_K,
        SLIM_DTYPE_Q4_K, SLIM_DTYPE_Q5_K, SLIM_DTYPE_Q6_K};
    for (size_t i = 0; i < sizeof weights / sizeof weights[0]; i++) {
        ck_assert_msg(ops->supports(weights[i], SLIM_USE_MATMUL), "%s",
                      slim_dtype_name(weights[i]));
        ck_assert_msg(ops->supports(weights[i], SLIM_USE_ROWS), "%s", slim_dtype_name(weights[i]));
    }
    ck_assert(!ops->supports(SLIM_DTYPE_Q8_K, SLIM_USE_MATMUL));
    ck_assert(!ops->supports((slim_dtype)4, SLIM_USE_MATMUL)); /* GGML's removed Q4_2 */
    ck_assert(!ops->supports((slim_dtype)4, SLIM_USE_ROWS));
}
END_TEST

Suite *suite_cpu(void) {
    Suite *s = suite_create("cpu");
    TCase *tc = tcase_create("ops");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_act_mul);
    tcase_add_test(tc, test_attention);
    tcase_add_test(tc, test_x16);
    tcase_add_test(tc, test_half_x64);
    tcase_add_test(tc, test_cpu_level);
    tcase_add_test(tc, test_supports);
    suite_add_tcase(s, tc);
    return s;
}
