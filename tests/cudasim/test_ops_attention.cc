// test_ops_attention.cc: slim_cuda_attention (kernels/attention_prefill.cu,
// attention_decode.cu) under the cudasim emulator against slim_cpu_attention
// (lib/backend/cpu/attention.c, linked in as C).  Every case runs under 4
// scheduling policies x 3 seeds and must agree bitwise; outputs and the decode
// scratch are pre-filled with NaN, shared memory is poisoned by the kernels,
// and cache rows the call must not read (past *pos0 + n_tokens - 1, and before
// the first query's window) hold fp16 NaN.  Sizes are ragged against the tiles
// (prefill: 64 queries x 64 or 32 keys; decode: 128-key tiles, 8 query rows).
//
// Data: k, v uniform in [-1, 1] (fp16), q uniform with the scale that gives
// scores of standard deviation sigma (5, or 10 where the softcap binds), so
// |s| reaches 15-40.
//
// Tolerance, per output row (token, head), relative to V = max |v| over the
// head's cache rows.  With w_j the softmax weights and o = sum_j w_j v_j,
// sum_j dw_j = 0 gives |do| <= V * sum_j |dw_j|; perturbing every score by at
// most delta moves the weights by sum_j |dw_j| <= e^(2 delta) - 1; relative
// errors of at most u in each p_j, with the divisor summing the same values,
// give sum_j |dw_j| <= 2u / (1 - u).
//   prefill (tensor cores): q is rounded to f16 (relative 2^-11), so
//     delta <= 2^-11 * A + 2^-15 * A, with A = max over the row's keys of
//     sum_i |q_i k_i| and 2^-15 * A bounding both sides' f32 dot products
//     (hd * 2^-24 * A each, hd <= 256); P is rounded to f16 (u = 2^-11, and
//     2u / (1 - u) ~ 2^-10, taken as 2^-9 to cover its product with the
//     score term; f16 subnormals below 2^-14 add at most n_keys * 2^-25):
//       |gpu - cpu| <= V * ((e^(2 delta) - 1) (1 + 2^-9) + 2^-9 + n_keys * 2^-24 + 1e-5)
//   decode (f32 throughout): delta <= 2^-15 * A (the two f32 dot products);
//     __expf's relative error (2 + 1.16 |x|) 2^-23 averaged over the softmax
//     weights, and the f32 sums, stay below 1e-5:
//       |gpu - cpu| <= V * ((e^(2 delta) - 1) + 1e-5)
// The measured maxima (printed as "max err / V") are far below these.
#include "cudasim.h"
#include "kernels.h"

extern "C" {
#include "backend/cpu/cpu.h"
#include "core/threadpool.h"
}

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include <algorithm>
#include <string>
#include <vector>

#include "test_harness.h"
#include "ops_test_util.h"

static slim_threadpool *g_pool;

static uint16_t f16_bits(float x) { return __half_as_ushort(__float2half_rn(x)); }
static float f16_val(uint16_t b) { return __half2float(__ushort_as_half(b)); }
static const uint16_t F16_NAN = 0x7e00;

struct Case {
    int32_t hd, n_head, n_kv, n_tokens, pos0, window;
    float softcap, sigma;
    int32_t ctx_extra; // n_ctx = pos0 + n_tokens + ctx_extra
};

// Worst measured error / bound ratios, per path, for the report line.
static double g_worst[2], g_worst_ratio[2];

static bool attention_case(const Case &c) {
    const int32_t n_ctx = c.pos0 + c.n_tokens + c.ctx_extra;
    const int64_t qn = (int64_t)c.n_tokens * c.n_head * c.hd, kvw = (int64_t)c.n_kv * c.hd;
    const bool decode = c.n_tokens <= 4;
    AlignedBuf q(qn), kbuf(((size_t)n_ctx * kvw + 1) / 2 + 8),
        vbuf(((size_t)n_ctx * kvw + 1) / 2 + 8);
    uint16_t *k = (uint16_t *)kbuf.p, *v = (uint16_t *)vbuf.p;
    const float qa = c.sigma * sqrtf(3.0f) / (sqrtf((float)c.hd) * sqrtf(1.0f / 3.0f));
    for (int64_t i = 0; i < qn; i++)
        q.p[i] = frand(-qa, qa);
    const int32_t last = c.pos0 + c.n_tokens - 1;
    const int32_t lo = c.window > 0 ? std::max(0, c.pos0 - c.window + 1) : 0;
    for (int32_t j = 0; j < n_ctx; j++)
        for (int64_t i = 0; i < kvw; i++) {
            const bool unread = j > last || j < lo;
            k[j * kvw + i] = unread ? F16_NAN : f16_bits(frand(-1.0f, 1.0f));
            v[j * kvw + i] = unread ? F16_NAN : f16_bits(frand(-1.0f, 1.0f));
        }
    int32_t *pos0 = (int32_t *)aligned_alloc(64, 64);
    *pos0 = c.pos0;

    // CPU reference.
    std::vector<float> ref(qn), cpu_scratch(n_ctx);
    IdentityStep step(c.pos0, c.n_tokens, n_ctx);
    slim_exec ex{};
    ex.pool = g_pool;
    ex.batch = &step.b;
    slim_attn_args aa{};
    aa.q = q.p;
    aa.out = ref.data();
    aa.k_cache = k;
    aa.v_cache = v;
    aa.n_tokens = c.n_tokens;
    aa.n_head = c.n_head;
    aa.n_head_kv = c.n_kv;
    aa.head_dim = c.hd;
    aa.window = c.window;
    aa.softcap = c.softcap;
    aa.scratch = cpu_scratch.data();
    aa.n_ctx = n_ctx;
    slim_cpu_attention(&ex, &aa);

    const size_t sb = slim_cuda_attention_scratch_bytes(c.n_tokens, c.n_head, c.hd, n_ctx);
    EXPECT(sb > 0, "scratch %zu bytes for n_tokens %d", sb, c.n_tokens);
    AlignedBuf scratch(sb / 4 + 1), out(qn);
    char what[160];
    snprintf(what, sizeof what, "hd=%d heads=%d/%d tokens=%d pos0=%d window=%d softcap=%g ctx=%d",
             c.hd, c.n_head, c.n_kv, c.n_tokens, c.pos0, c.window, c.softcap, n_ctx);
    int rc = 0;
    std::vector<float> res(qn);
    if (!all_policies_same(what, res, [&](std::vector<float> &o) {
            std::fill(out.p, out.p + qn, NAN);
            std::fill(scratch.p, scratch.p + sb / 4, NAN);
            rc |= slim_cuda_attention(out.p, q.p, k, v, c.n_tokens, pos0, c.n_head, c.n_kv, c.hd,
                                      c.window, c.softcap, n_ctx, decode ? scratch.p : nullptr,
                                      nullptr);
            o.assign(out.p, out.p + qn);
        }))
        return false;
    free(pos0);
    EXPECT(rc == 0, "%s: launcher returned %d", what, rc);

    const int group = c.n_head / c.n_kv;
    double worst = 0, worst_ratio = 0;
    for (int32_t t = 0; t < c.n_tokens; t++)
        for (int32_t h = 0; h < c.n_head; h++) {
            const int32_t pos = c.pos0 + t, g = h / group;
            const int32_t j0 = c.window > 0 ? std::max(0, pos - c.window + 1) : 0;
            const float *qr = q.p + ((int64_t)t * c.n_head + h) * c.hd;
            double A = 0, V = 0;
            for (int32_t j = j0; j <= pos; j++) {
                double a = 0;
                for (int32_t i = 0; i < c.hd; i++) {
                    a += fabs(qr[i] * f16_val(k[j * kvw + g * c.hd + i]));
                    V = std::max(V, (double)fabsf(f16_val(v[j * kvw + g * c.hd + i])));
                }
                A = std::max(A, a);
            }
            const int32_t n_keys = pos - j0 + 1;
            double tol;
            if (decode)
                tol = V * (expm1(2 * ldexp(A, -15)) + 1e-5);
            else
                tol = V * (expm1(2 * (ldexp(A, -11) + ldexp(A, -15))) * (1 + ldexp(1, -9)) +
                           ldexp(1, -9) + n_keys * ldexp(1, -24) + 1e-5);
            for (int32_t i = 0; i < c.hd; i++) {
                const int64_t at = ((int64_t)t * c.n_head + h) * c.hd + i;
                const double e = fabs((double)res[at] - ref[at]);
                EXPECT(e <= tol, "%s: t=%d h=%d i=%d: %.9g vs cpu %.9g (err %.3g > tol %.3g)", what,
                       t, h, i, res[at], ref[at], e, tol);
                worst = std::max(worst, e / V);
                worst_ratio = std::max(worst_ratio, e / tol);
            }
        }
    g_worst[decode] = std::max(g_worst[decode], worst);
    g_worst_ratio[decode] = std::max(g_worst_ratio[decode], worst_ratio);
    return true;
}

// {hd, n_head, n_kv, n_tokens, pos0, window, softcap, sigma, ctx_extra}
static const Case DECODE_CASES[] = {
    {64, 4, 4, 1, 0, 0, 0, 5, 3},         // a single key
    {64, 8, 2, 1, 37, 0, 0, 5, 0},        // GQA 4, cache exactly full
    {8, 4, 2, 2, 37, 0, 0, 5, 11},        // smallest head_dim, 2 queries
    {16, 8, 8, 3, 5, 0, 0, 5, 7},         // no GQA, 3 queries
    {128, 8, 1, 1, 300, 0, 0, 5, 20},     // MQA (8 rows), 3 tiles / chunks
    {96, 6, 3, 3, 200, 50, 0, 5, 9},      // window, rows of 3 tokens x 2 heads
    {256, 4, 2, 2, 150, 0, 5, 10, 4},     // binding softcap
    {40, 16, 2, 4, 70, 0, 30, 5, 2},      // GQA 8, 4 queries: 4 row blocks of 8
    {64, 4, 1, 1, 600, 0, 0, 5, 19400},   // n_ctx 20001: 256-key chunks of 2 tiles
    {72, 2, 1, 2, 900, 300, 0, 5, 17000}, // window across chunks of 2 tiles
};

static const Case PREFILL_CASES[] = {
    {8, 2, 1, 17, 0, 0, 0, 5, 3},     // DP 16
    {16, 4, 4, 40, 37, 0, 0, 5, 0},   // no GQA, pos0 > 0
    {64, 8, 1, 70, 37, 0, 0, 5, 5},   // MQA, 2 query tiles
    {64, 8, 2, 5, 0, 0, 0, 5, 1},     // smallest prefill
    {64, 4, 2, 40, 0, 20, 0, 5, 2},   // window
    {32, 16, 2, 17, 3, 0, 0, 5, 1},   // GQA 8
    {96, 4, 2, 17, 37, 0, 5, 10, 0},  // binding softcap
    {128, 4, 2, 70, 37, 16, 0, 5, 3}, // window across query tiles
    {72, 2, 1, 17, 10, 0, 0, 5, 1},   // DP 80
    {80, 2, 2, 40, 200, 64, 0, 5, 1}, // chunked prefill with window
    {136, 2, 1, 17, 5, 0, 0, 5, 1},   // DP 192, > 48 KiB shared memory
    {256, 2, 1, 40, 37, 0, 0, 5, 1},  // DP 256
    {256, 2, 2, 70, 0, 30, 5, 10, 2}, // DP 256, window, softcap
};

// The grid of the brief: head_dim x n_tokens, with GQA ratio (1, 2, 4, 8,
// MQA), pos0 (0, 37), window (none, 13 or 29) and softcap (none, 5 binding)
// cycling so that each value meets several head_dims and both paths.
static bool t_sweep() {
    const int32_t HD[] = {8, 16, 64, 96, 128, 256}, NT[] = {1, 2, 3, 17, 40, 70};
    const int32_t HEADS[5][2] = {{2, 2}, {4, 2}, {8, 2}, {8, 1}, {4, 1}};
    int i = 0;
    for (int32_t hd : HD)
        for (int32_t nt : NT) {
            const int32_t *hk = HEADS[i % 5];
            const int32_t pos0 = (i / 2) % 2 ? 37 : 0, window = i % 3 == 1   ? 13
                                                                : i % 3 == 2 ? 29
                                                                             : 0;
            const bool cap = i % 4 == 3;
            const Case c = {
                hd, hk[0], hk[1], nt, pos0, window, cap ? 5.0f : 0.0f, cap ? 10.0f : 5.0f, i % 7};
            if (!attention_case(c)) return false;
            i++;
        }
    return true;
}

static bool t_decode() {
    for (const Case &c : DECODE_CASES)
        if (!attention_case(c)) return false;
    return true;
}

static bool t_prefill() {
    for (const Case &c : PREFILL_CASES)
        if (!attention_case(c)) return false;
    return true;
}

// One set of arguments, *pos0 changed between launches (what a replayed
// decode graph does): each step matches the CPU at its position.
static bool t_decode_replay() {
    const int32_t hd = 32, nh = 4, nkv = 2, n_ctx = 300;
    const int64_t kvw = nkv * hd;
    AlignedBuf q(nh * hd), out(nh * hd), kb(n_ctx * kvw / 2), vb(n_ctx * kvw / 2);
    uint16_t *k = (uint16_t *)kb.p, *v = (uint16_t *)vb.p;
    for (int64_t i = 0; i < n_ctx * kvw; i++) {
        k[i] = f16_bits(frand(-1, 1));
        v[i] = f16_bits(frand(-1, 1));
    }
    std::vector<float> qv(nh * hd);
    fill(qv, -2.0f, 2.0f);
    std::copy(qv.begin(), qv.end(), q.p);
    const size_t sb = slim_cuda_attention_scratch_bytes(1, nh, hd, n_ctx);
    AlignedBuf scratch(sb / 4);
    int32_t *pos0 = (int32_t *)aligned_alloc(64, 64);
    std::vector<float> ref(nh * hd), cpu_scratch(n_ctx);
    slim_exec ex{};
    ex.pool = g_pool;
    for (int32_t p : {0, 1, 127, 128, 129, 255, 299, 17}) {
        *pos0 = p;
        std::fill(out.p, out.p + nh * hd, NAN);
        std::fill(scratch.p, scratch.p + sb / 4, NAN);
        const int rc = slim_cuda_attention(out.p, q.p, k, v, 1, pos0, nh, nkv, hd, 0, 0.0f, n_ctx,
                                           scratch.p, nullptr);
        EXPECT(rc == 0, "pos %d: rc %d", p, rc);
        IdentityStep step(p, 1, n_ctx);
        ex.batch = &step.b;
        slim_attn_args aa{};
        aa.q = q.p;
        aa.out = ref.data();
        aa.k_cache = k;
        aa.v_cache = v;
        aa.n_tokens = 1;
        aa.n_head = nh;
        aa.n_head_kv = nkv;
        aa.head_dim = hd;
        aa.scratch = cpu_scratch.data();
        aa.n_ctx = n_ctx;
        slim_cpu_attention(&ex, &aa);
        for (int i = 0; i < nh * hd; i++)
            EXPECT(fabsf(out.p[i] - ref[i]) <= 1e-5f, "pos %d [%d]: %.9g vs %.9g", p, i, out.p[i],
                   ref[i]);
    }
    // A position the cache cannot hold traps (both paths).
    *pos0 = n_ctx;
    (void)slim_cuda_attention(out.p, q.p, k, v, 1, pos0, nh, nkv, hd, 0, 0.0f, n_ctx, scratch.p,
                              nullptr);
    std::string e = cudasim::take_error();
    EXPECT(e.find("__trap") != std::string::npos, "decode, pos0 = n_ctx: '%s'", e.c_str());
    *pos0 = n_ctx - 7;
    AlignedBuf q8(8 * nh * hd), out8(8 * nh * hd);
    for (int i = 0; i < 8 * nh * hd; i++)
        q8.p[i] = 0.0f;
    (void)slim_cuda_attention(out8.p, q8.p, k, v, 8, pos0, nh, nkv, hd, 0, 0.0f, n_ctx, nullptr,
                              nullptr);
    e = cudasim::take_error();
    EXPECT(e.find("__trap") != std::string::npos, "prefill, pos0 + n_tokens > n_ctx: '%s'",
           e.c_str());
    *pos0 = -1;
    (void)slim_cuda_attention(out8.p, q8.p, k, v, 8, pos0, nh, nkv, hd, 0, 0.0f, n_ctx, nullptr,
                              nullptr);
    e = cudasim::take_error();
    EXPECT(e.find("__trap") != std::string::npos, "prefill, pos0 < 0: '%s'", e.c_str());
    free(pos0);
    return true;
}

static bool t_args() {
    AlignedBuf q(64 * 8), out(64 * 8), kv(64 * 8), scratch(4096);
    const uint16_t *k = (const uint16_t *)kv.p;
    int32_t *pos0 = (int32_t *)aligned_alloc(64, 64);
    *pos0 = 0;
    const int bad = (int)cudaErrorInvalidValue;
    auto call = [&](float *o, const float *qq, const uint16_t *kk, int32_t nt, const int32_t *p,
                    int32_t nh, int32_t nkv, int32_t hd, int32_t win, float cap, int32_t n_ctx,
                    void *s) {
        return slim_cuda_attention(o, qq, kk, k, nt, p, nh, nkv, hd, win, cap, n_ctx, s, nullptr);
    };
    EXPECT(call(out.p, q.p, k, 1, pos0, 2, 1, 16, 0, 0, 8, scratch.p) == 0, "valid decode call");
    EXPECT(cudasim::take_error().empty(), "valid decode call failed");
    EXPECT(call(out.p, q.p, k, 0, pos0, 2, 1, 16, 0, 0, 8, nullptr) == 0, "no tokens: no-op");
    EXPECT(call(out.p, q.p, k, -1, pos0, 2, 1, 16, 0, 0, 8, scratch.p) == bad, "n_tokens < 0");
    EXPECT(call(out.p, q.p, k, 1, pos0, 3, 2, 16, 0, 0, 8, scratch.p) == bad, "n_head %% n_kv");
    EXPECT(call(out.p, q.p, k, 1, pos0, 2, 0, 16, 0, 0, 8, scratch.p) == bad, "n_kv = 0");
    EXPECT(call(out.p, q.p, k, 1, pos0, 2, 1, 12, 0, 0, 8, scratch.p) == bad, "head_dim %% 8");
    EXPECT(call(out.p, q.p, k, 1, pos0, 2, 1, 264, 0, 0, 8, scratch.p) == bad, "head_dim > 256");
    EXPECT(call(out.p, q.p, k, 1, pos0, 2, 1, 0, 0, 0, 8, scratch.p) == bad, "head_dim 0");
    EXPECT(call(out.p, q.p, k, 1, pos0, 2, 1, 16, -1, 0, 8, scratch.p) == bad, "window < 0");
    EXPECT(call(out.p, q.p, k, 1, pos0, 2, 1, 16, 0, -1.0f, 8, scratch.p) == bad, "softcap < 0");
    EXPECT(call(out.p, q.p, k, 1, pos0, 2, 1, 16, 0, NAN, 8, scratch.p) == bad, "softcap NaN");
    EXPECT(call(out.p, q.p, k, 5, pos0, 2, 1, 16, 0, 0, 4, nullptr) == bad, "n_ctx < n_tokens");
    EXPECT(call(out.p, q.p, k, 1, nullptr, 2, 1, 16, 0, 0, 8, scratch.p) == bad, "pos0 NULL");
    EXPECT(call(out.p, q.p, k, 1, pos0, 2, 1, 16, 0, 0, 8, nullptr) == bad,
           "decode without scratch");
    EXPECT(call(out.p, q.p + 1, k, 1, pos0, 2, 1, 16, 0, 0, 8, scratch.p) == bad, "q misaligned");
    EXPECT(call(out.p + 2, q.p, k, 1, pos0, 2, 1, 16, 0, 0, 8, scratch.p) == bad, "out misaligned");
    EXPECT(call(out.p, q.p, k + 4, 1, pos0, 2, 1, 16, 0, 0, 8, scratch.p) == bad, "k misaligned");
    EXPECT(call(out.p, q.p, k, 1, pos0, 2, 1, 16, 0, 0, 8, (char *)scratch.p + 4) == bad,
           "scratch misaligned");
    // Asked for more tokens than a decode call takes, it covers every decode call.
    EXPECT(slim_cuda_attention_scratch_bytes(5, 2, 16, 8) ==
               slim_cuda_attention_scratch_bytes(4, 2, 16, 8),
           "scratch for 5 tokens covers decode calls");
    EXPECT(slim_cuda_attention_scratch_bytes(1, 2, 16, 8) > 0, "decode needs scratch");
    EXPECT(cudasim::take_error().empty(), "a rejected call launched");
    free(pos0);
    return true;
}

int main() {
    if (slim_threadpool_create(1, &g_pool) != SLIM_OK) {
        printf("threadpool failed\n0 passed, 1 failed\n");
        return 1;
    }
    run("attention decode (split-KV) vs slim_cpu_attention: head_dim 8..256, GQA 1/2/4/8/MQA, "
        "1-4 tokens, pos0, window, softcap, multi-tile chunks",
        t_decode);
    run("attention prefill (mma) vs slim_cpu_attention: head_dim 8..256 (DP 16..256), GQA, "
        "5-70 tokens, pos0, window, softcap",
        t_prefill);
    run("attention sweep: head_dim {8,16,64,96,128,256} x n_tokens {1,2,3,17,40,70}, GQA "
        "1/2/4/8/MQA, pos0 0/37, window 0/13/29, softcap 0/5",
        t_sweep);
    run("attention decode: one argument set replayed at 8 positions (*pos0 on the device); bad "
        "positions trap",
        t_decode_replay);
    run("attention launcher: invalid arguments rejected, empty work", t_args);
    printf("max err / max|v|: decode %.3g (%.3g of the bound), prefill %.3g (%.3g of the bound)\n",
           g_worst[1], g_worst_ratio[1], g_worst[0], g_worst_ratio[0]);
    slim_threadpool_free(g_pool);
    printf("%d passed, %d failed\n", g_pass, g_fail);
    return g_fail ? 1 : 0;
}
