// test_ops_paged.cc: slim_cuda_attention_paged (kernels/attention_paged.cu)
// under the emulator against slim_cpu_attention over the same paged batch
// (lib/backend/cpu/attention.c with ex->batch: per token its position,
// sequence and block table).  Each case is a step of several sequences with
// scattered block tables: prefill runs and single decode tokens at positions
// that cross chunk boundaries (256-key chunks at these n_ctx), GQA 1/2/4/6/8
// and MQA, head_dim 8..256, windows, softcap, and padding rows (position -1).
// Cache rows no query may read (other blocks, keys past a sequence's last
// query, before the window) hold fp16 NaN; outputs start as NaN.
//
// Checked, per case:
//  - both launch modes (split over chunks with scratch, one pass without)
//    under 4 policies x 3 seeds: all 24 runs bitwise equal;
//  - every real row within the f32 decode bound of test_ops_attention.cc
//    (|gpu - cpu| <= V ((e^(2 delta) - 1) + 1e-5), delta = 2^-15 A) of the CPU;
//    padding rows exactly 0;
//  - batch invariance: a query run alone (a step of one token) gives bitwise
//    its row of the batched result.
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
static double g_worst, g_worst_ratio;

static uint16_t f16_bits(float x) { return __half_as_ushort(__float2half_rn(x)); }
static float f16_val(uint16_t b) { return __half2float(__ushort_as_half(b)); }
static const uint16_t F16_NAN = 0x7e00;

struct SeqPlan {
    int32_t first, count; // query positions first .. first + count - 1
};

struct Case {
    int32_t hd, n_head, n_kv, window, block_size, n_ctx;
    float softcap;
    std::vector<SeqPlan> seqs;
    int32_t n_pad; // padding rows at the end
};

// Device arrays for one launch (host memory under the emulator).
struct Launch {
    std::vector<int32_t> pos, seq, tab;
};

static bool paged_case(const Case &c) {
    const int32_t S = (int32_t)c.seqs.size(), bs = c.block_size;
    const int64_t kvw = (int64_t)c.n_kv * c.hd, qw = (int64_t)c.n_head * c.hd;
    // Block tables: a shuffled pool, each sequence the blocks its last query needs.
    std::vector<int32_t> n_blocks(S);
    int32_t pool = 0;
    for (int32_t s = 0; s < S; s++) {
        n_blocks[s] = (c.seqs[s].first + c.seqs[s].count - 1) / bs + 1;
        pool += n_blocks[s];
    }
    pool += 3; // blocks nobody owns
    std::vector<int32_t> perm(pool);
    for (int32_t i = 0; i < pool; i++)
        perm[i] = i;
    for (int32_t i = pool - 1; i > 0; i--)
        std::swap(perm[i], perm[rnd() % (uint32_t)(i + 1)]);
    Launch L;
    std::vector<int32_t> off(S), row;
    L.tab.resize(S);
    for (int32_t s = 0, at = 0; s < S; s++) {
        L.tab[s] = S + at;
        for (int32_t k = 0; k < n_blocks[s]; k++)
            L.tab.push_back(perm[at + k]);
        off[s] = at;
        at += n_blocks[s];
    }
    auto kv_row = [&](int32_t s, int32_t p) {
        return (int64_t)perm[off[s] + p / bs] * bs + p % bs;
    };
    // The cache: readable rows random, the rest NaN.
    const int64_t rows = (int64_t)pool * bs;
    AlignedBuf kb((size_t)(rows * kvw / 2 + 8)), vb((size_t)(rows * kvw / 2 + 8));
    uint16_t *k = (uint16_t *)kb.p, *v = (uint16_t *)vb.p;
    std::fill(k, k + rows * kvw, F16_NAN);
    std::fill(v, v + rows * kvw, F16_NAN);
    for (int32_t s = 0; s < S; s++) {
        const int32_t lo = c.window > 0 ? std::max(0, c.seqs[s].first - c.window + 1) : 0;
        for (int32_t p = lo; p < c.seqs[s].first + c.seqs[s].count; p++)
            for (int64_t i = 0; i < kvw; i++) {
                k[kv_row(s, p) * kvw + i] = f16_bits(frand(-1.0f, 1.0f));
                v[kv_row(s, p) * kvw + i] = f16_bits(frand(-1.0f, 1.0f));
            }
    }
    // The step: sequences' tokens interleaved by position, then padding.
    for (int32_t j = 0;; j++) {
        bool any = false;
        for (int32_t s = 0; s < S; s++)
            if (j < c.seqs[s].count) {
                L.pos.push_back(c.seqs[s].first + j);
                L.seq.push_back(s);
                any = true;
            }
        if (!any) break;
    }
    const int32_t n_real = (int32_t)L.pos.size(), n = n_real + c.n_pad;
    for (int32_t t = n_real; t < n; t++) {
        L.pos.push_back(-1);
        L.seq.push_back(0);
    }
    for (int32_t t = 0; t < n_real; t++)
        row.push_back((int32_t)kv_row(L.seq[t], L.pos[t]));
    const float qa = 5.0f * 3.0f / sqrtf((float)c.hd);
    AlignedBuf q((size_t)(n * qw)), out((size_t)(n * qw));
    for (int64_t i = 0; i < n * qw; i++)
        q.p[i] = frand(-qa, qa);

    // CPU reference over the real tokens (the sequences' tables as slim_batch_seq).
    std::vector<slim_batch_seq> bseq(S);
    for (int32_t s = 0; s < S; s++)
        bseq[s] = {perm.data() + off[s], n_blocks[s]};
    slim_batch b{};
    b.n_tokens = n_real;
    b.pos = L.pos.data();
    b.seq = L.seq.data();
    b.row = row.data();
    b.n_seqs = S;
    b.block_size = bs;
    b.seqs = bseq.data();
    slim_exec ex{};
    ex.pool = g_pool;
    ex.batch = &b;
    std::vector<float> ref((size_t)(n_real * qw)), cpu_scratch((size_t)c.n_ctx);
    slim_attn_args aa{};
    aa.q = q.p;
    aa.out = ref.data();
    aa.k_cache = k;
    aa.v_cache = v;
    aa.n_tokens = n_real;
    aa.n_head = c.n_head;
    aa.n_head_kv = c.n_kv;
    aa.head_dim = c.hd;
    aa.window = c.window;
    aa.softcap = c.softcap;
    aa.scratch = cpu_scratch.data();
    aa.n_ctx = c.n_ctx;
    slim_cpu_attention(&ex, &aa);

    const size_t sb = slim_cuda_attention_paged_scratch_bytes(n, c.n_head, c.hd, c.n_ctx);
    EXPECT(sb > 0, "scratch bytes");
    AlignedBuf scratch(sb / 4 + 1);
    char what[200];
    snprintf(what, sizeof what,
             "hd=%d heads=%d/%d seqs=%d tokens=%d+%d pad window=%d softcap=%g "
             "block=%d ctx=%d",
             c.hd, c.n_head, c.n_kv, S, n_real, c.n_pad, c.window, c.softcap, bs, c.n_ctx);
    int rc = 0;
    std::vector<float> res[2];
    for (int split = 0; split < 2; split++)
        if (!all_policies_same(what, res[split], [&](std::vector<float> &o) {
                std::fill(out.p, out.p + n * qw, NAN);
                std::fill(scratch.p, scratch.p + sb / 4, NAN);
                rc |= slim_cuda_attention_paged(out.p, q.p, k, v, n, L.pos.data(), L.seq.data(),
                                                L.tab.data(), L.tab.data(), bs, c.n_head, c.n_kv,
                                                c.hd, c.window, c.softcap, c.n_ctx,
                                                split ? scratch.p : nullptr, nullptr);
                o.assign(out.p, out.p + n * qw);
            }))
            return false;
    EXPECT(rc == 0, "%s: launcher returned %d", what, rc);
    EXPECT(same_bits(res[0], res[1]), "%s: split and one-pass launches differ", what);

    const int32_t group = c.n_head / c.n_kv;
    for (int32_t t = 0; t < n; t++)
        for (int32_t h = 0; h < c.n_head; h++) {
            const float *o = res[1].data() + (t * c.n_head + h) * c.hd;
            if (t >= n_real) {
                for (int32_t i = 0; i < c.hd; i++)
                    EXPECT(o[i] == 0.0f, "%s: padding row %d head %d: %g", what, t, h, o[i]);
                continue;
            }
            const int32_t pos = L.pos[t], s = L.seq[t], g = h / group;
            const int32_t j0 = c.window > 0 ? std::max(0, pos - c.window + 1) : 0;
            const float *qr = q.p + (t * c.n_head + h) * c.hd;
            double A = 0, V = 0;
            for (int32_t j = j0; j <= pos; j++) {
                const int64_t r = kv_row(s, j);
                double a = 0;
                for (int32_t i = 0; i < c.hd; i++) {
                    a += fabs(qr[i] * f16_val(k[r * kvw + g * c.hd + i]));
                    V = std::max(V, (double)fabsf(f16_val(v[r * kvw + g * c.hd + i])));
                }
                A = std::max(A, a);
            }
            const double tol = V * (expm1(2 * ldexp(A, -15)) + 1e-5);
            for (int32_t i = 0; i < c.hd; i++) {
                const double e = fabs((double)o[i] - ref[(t * c.n_head + h) * c.hd + i]);
                EXPECT(e <= tol,
                       "%s: t=%d (seq %d pos %d) h=%d i=%d: %.9g vs cpu %.9g (%.3g > %.3g)", what,
                       t, s, pos, h, i, o[i], ref[(t * c.n_head + h) * c.hd + i], e, tol);
                g_worst = std::max(g_worst, e / V);
                g_worst_ratio = std::max(g_worst_ratio, e / tol);
            }
        }

    // Invariance: the first and last real tokens, each alone.
    for (int32_t t : {0, n_real - 1}) {
        AlignedBuf q1((size_t)qw), o1((size_t)qw);
        std::copy(q.p + t * qw, q.p + (t + 1) * qw, q1.p);
        std::fill(o1.p, o1.p + qw, NAN);
        const int32_t p1 = L.pos[t], s1 = L.seq[t];
        EXPECT(slim_cuda_attention_paged(o1.p, q1.p, k, v, 1, &p1, &s1, L.tab.data(), L.tab.data(),
                                         bs, c.n_head, c.n_kv, c.hd, c.window, c.softcap, c.n_ctx,
                                         scratch.p, nullptr) == 0,
               "alone");
        EXPECT(memcmp(o1.p, res[0].data() + t * qw, (size_t)qw * sizeof(float)) == 0,
               "%s: token %d alone differs from its row in the batch", what, t);
    }
    return true;
}

static bool t_cases() {
    const Case cases[] = {
        // decode-like: one token per sequence, long contexts over several chunks
        {64, 8, 2, 0, 16, 1024, 0.0f, {{700, 1}, {255, 1}, {256, 1}, {3, 1}, {513, 1}}, 3},
        {128, 4, 4, 0, 32, 600, 0.0f, {{300, 1}, {0, 1}}, 0},
        {256, 4, 1, 0, 8, 512, 0.0f, {{290, 1}, {40, 1}, {17, 1}}, 1},
        // mixed prefill chunks and decodes, window, softcap, GQA 6 (more heads than warps)
        {32, 12, 2, 100, 16, 700, 0.0f, {{250, 12}, {0, 9}, {520, 1}}, 2},
        {16, 4, 2, 0, 8, 400, 30.0f, {{0, 20}, {258, 3}, {99, 1}}, 0},
        {8, 8, 1, 37, 4, 300, 0.0f, {{5, 40}, {280, 1}}, 5},
        {96, 6, 3, 0, 16, 300, 0.0f, {{120, 17}, {7, 1}, {31, 2}}, 0},
    };
    for (const Case &c : cases)
        if (!paged_case(c)) return false;
    return true;
}

static bool t_args() {
    AlignedBuf q(64), out(64), kv(64), scratch(4096);
    const uint16_t *k = (const uint16_t *)kv.p;
    const int32_t pos = 0, seq = 0, tab[2] = {1, 0};
    const int bad = (int)cudaErrorInvalidValue;
    auto call = [&](int32_t nt, int32_t nh, int32_t nkv, int32_t hd, int32_t bsz, int32_t win,
                    float cap, int32_t n_ctx) {
        return slim_cuda_attention_paged(out.p, q.p, k, k, nt, &pos, &seq, tab, tab, bsz, nh, nkv,
                                         hd, win, cap, n_ctx, scratch.p, nullptr);
    };
    EXPECT(call(1, 2, 1, 16, 4, 0, 0, 8) == 0, "valid call");
    EXPECT(cudasim::take_error().empty(), "valid call failed");
    EXPECT(call(0, 2, 1, 16, 4, 0, 0, 8) == 0, "no tokens: no-op");
    EXPECT(call(-1, 2, 1, 16, 4, 0, 0, 8) == bad, "n_tokens < 0");
    EXPECT(call(1, 3, 2, 16, 4, 0, 0, 8) == bad, "n_head %% n_kv");
    EXPECT(call(1, 2, 1, 12, 4, 0, 0, 8) == bad, "head_dim %% 8");
    EXPECT(call(1, 2, 1, 264, 4, 0, 0, 8) == bad, "head_dim > 256");
    EXPECT(call(1, 2, 1, 16, 0, 0, 0, 8) == bad, "block_size 0");
    EXPECT(call(1, 2, 1, 16, 4, -1, 0, 8) == bad, "window < 0");
    EXPECT(call(1, 2, 1, 16, 4, 0, NAN, 8) == bad, "softcap NaN");
    EXPECT(call(1, 2, 1, 16, 4, 0, 0, 0) == bad, "n_ctx 0");
    EXPECT(slim_cuda_attention_paged_chunk(100) == 256 &&
               slim_cuda_attention_paged_chunk(131072) == 2048,
           "chunk sizes %d %d", slim_cuda_attention_paged_chunk(100),
           slim_cuda_attention_paged_chunk(131072));
    EXPECT(cudasim::take_error().empty(), "a rejected call launched");
    return true;
}

// rows.cu: gather and scatter-add against the CPU's loops (bitwise).
static bool t_rows() {
    const int64_t n = 37, R = 9;
    const int32_t idx[4] = {7, 0, 3, 8};
    std::vector<float> src(R * n), dst0(R * n);
    fill(src, -3, 3);
    fill(dst0, -3, 3);
    std::vector<float> g(4 * n, NAN), want(4 * n);
    for (int i = 0; i < 4; i++)
        std::copy(src.begin() + idx[i] * n, src.begin() + (idx[i] + 1) * n, want.begin() + i * n);
    EXPECT(slim_cuda_gather_rows(g.data(), src.data(), idx, 4, n, nullptr) == 0, "gather");
    EXPECT(same_bits(g, want), "gather differs");
    std::vector<float> d = dst0, dw = dst0;
    for (int i = 0; i < 4; i++)
        for (int64_t j = 0; j < n; j++)
            dw[idx[i] * n + j] += src[i * n + j];
    EXPECT(slim_cuda_scatter_add_rows(d.data(), src.data(), idx, 4, n, nullptr) == 0, "scatter");
    EXPECT(same_bits(d, dw), "scatter-add differs");
    EXPECT(slim_cuda_gather_rows(g.data(), src.data(), nullptr, 4, n, nullptr) ==
               (int)cudaErrorInvalidValue,
           "NULL idx");
    EXPECT(slim_cuda_gather_rows(g.data(), src.data(), idx, 0, n, nullptr) == 0, "empty");
    EXPECT(cudasim::take_error().empty(), "emulator error");
    return true;
}

int main() {
    if (slim_threadpool_create(1, &g_pool) != SLIM_OK) {
        printf("threadpool failed\n0 passed, 1 failed\n");
        return 1;
    }
    run("paged attention vs slim_cpu_attention over scattered block tables: decodes across "
        "chunks, prefill runs, GQA 1..8/MQA, head_dim 8..256, window, softcap, padding; split = "
        "one-pass, bitwise; a token alone = its batch row, bitwise",
        t_cases);
    run("paged attention launcher: invalid arguments rejected, empty work, chunk sizes", t_args);
    run("gather / scatter-add rows (LoRA's grouped rows) bitwise the CPU's", t_rows);
    printf("max err / max|v|: %.3g (%.3g of the bound)\n", g_worst, g_worst_ratio);
    slim_threadpool_free(g_pool);
    printf("%d passed, %d failed\n", g_pass, g_fail);
    return g_fail ? 1 : 0;
}
