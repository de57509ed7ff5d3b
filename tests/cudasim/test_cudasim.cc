// test_cudasim.cc: self-tests of the CUDA emulator (tests/cudasim).
// Prints one line per test and ends with "N passed, N failed".
#include "cudasim.h"
#include "ptx.cuh"
#include "test_kernels.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include <string>
#include <vector>

#include "test_harness.h"

using cudasim::Policy;

static uint64_t g_rng = 12345;
static uint32_t rnd() {
    g_rng ^= g_rng << 13;
    g_rng ^= g_rng >> 7;
    g_rng ^= g_rng << 17;
    return (uint32_t)(g_rng >> 11);
}

struct PolicySeed {
    Policy p;
    uint64_t seed;
};
static std::vector<PolicySeed> all_policies() {
    std::vector<PolicySeed> v;
    for (int p = 0; p < 4; p++)
        for (uint64_t s = 1; s <= 3; s++)
            v.push_back({(Policy)p, s});
    return v;
}

// ------------------------------------------------------------ barriers
static bool t_block_reduce() {
    const int nb = 5;
    std::vector<int> in(nb * 256), out(nb);
    for (auto &x : in)
        x = (int)(rnd() % 2001) - 1000;
    for (auto ps : all_policies()) {
        cudasim::set_policy(ps.p, ps.seed);
        std::fill(out.begin(), out.end(), 0);
        tk_block_reduce(in.data(), out.data(), nb);
        std::string e = cudasim::take_error();
        EXPECT(e.empty(), "%s: %s", cudasim::policy_name(ps.p), e.c_str());
        for (int b = 0; b < nb; b++) {
            int s = 0;
            for (int i = 0; i < 256; i++)
                s += in[b * 256 + i];
            EXPECT(out[b] == 3 * s, "policy %s seed %d block %d: %d != %d",
                   cudasim::policy_name(ps.p), (int)ps.seed, b, out[b], 3 * s);
        }
    }
    return true;
}

static bool t_block_reduce_dyn() {
    for (int threads : {100, 256, 1024, 1}) {
        for (auto ps : all_policies()) {
            cudasim::set_policy(ps.p, ps.seed);
            const int nb = 3;
            std::vector<int> in(nb * threads), out(nb, -1);
            for (auto &x : in)
                x = (int)(rnd() % 100);
            tk_block_reduce_dyn(in.data(), out.data(), nb, threads);
            std::string e = cudasim::take_error();
            EXPECT(e.empty(), "%s", e.c_str());
            for (int b = 0; b < nb; b++) {
                int s = 0;
                for (int i = 0; i < threads; i++)
                    s += in[b * threads + i];
                EXPECT(out[b] == s, "threads %d policy %s: %d != %d", threads,
                       cudasim::policy_name(ps.p), out[b], s);
            }
        }
    }
    return true;
}

// ------------------------------------------------------------ shuffles (reference from the CUDA
// guide's wording)
static int ref_src(int mode, int lane, int arg, int width) {
    int seg = lane / width * width;
    switch (mode) {
    case 0: return seg + (arg % width);
    case 1: return lane % width >= arg ? lane - arg : lane;
    case 2: return lane % width + arg < width ? lane + arg : lane;
    default: {
        int s = lane ^ arg;
        return s >= seg + width ? lane : s; // later groups: own value; earlier groups allowed
    }
    }
}

static bool t_shuffle() {
    const int n = 64;
    std::vector<int> in(n), out(4 * n);
    for (auto &x : in)
        x = (int)rnd();
    for (int pol : {0, 2, 3}) {
        cudasim::set_policy((Policy)pol, 7);
        for (int width : {32, 16, 8, 4, 2, 1})
            for (int delta : {0, 1, 3, 5, 9, 16, 31}) {
                tk_shuffle(in.data(), out.data(), n, width, delta);
                std::string e = cudasim::take_error();
                EXPECT(e.empty(), "%s", e.c_str());
                for (int i = 0; i < n; i++) {
                    int lane = i % 32, base = i - lane;
                    int want[4] = {in[base + ref_src(0, lane, (lane * 7 + delta) % 32, width)],
                                   in[base + ref_src(1, lane, delta, width)],
                                   in[base + ref_src(2, lane, delta, width)],
                                   in[base + ref_src(3, lane, delta, width)]};
                    for (int m = 0; m < 4; m++)
                        EXPECT(out[m * n + i] == want[m],
                               "mode %d width %d delta %d thread %d: %d != %d", m, width, delta, i,
                               out[m * n + i], want[m]);
                }
            }
    }
    return true;
}

static bool t_shuffle_f64() {
    std::vector<double> in(32), out(4 * 32);
    for (auto &x : in)
        x = (double)rnd() / 7.0;
    for (int width : {32, 16, 8})
        for (int delta : {1, 2, 4, 8}) {
            tk_shuffle_f64(in.data(), out.data(), width, delta);
            for (int lane = 0; lane < 32; lane++) {
                double want[4] = {in[ref_src(0, lane, (lane * 7 + delta) % 32, width)],
                                  in[ref_src(1, lane, delta, width)],
                                  in[ref_src(2, lane, delta, width)],
                                  in[ref_src(3, lane, delta, width)]};
                for (int m = 0; m < 4; m++)
                    EXPECT(out[m * 32 + lane] == want[m], "mode %d width %d delta %d lane %d", m,
                           width, delta, lane);
            }
        }
    return true;
}

static bool t_vote() {
    for (int n : {64, 48}) {
        std::vector<int> in(n);
        std::vector<unsigned> out(9 * n);
        for (int i = 0; i < n; i++)
            in[i] = (int)(rnd() % 181) - 90; // in [-90, 90]
        in[3] = 95;                          // warp 0: any(v > 90) true
        for (int i = 0; i < n; i++)
            in[i] = i >= 32 ? std::abs(in[i]) % 80 : in[i]; // warp 1: any false
        in[40] = -95;                                       // warp 1: all(v > -90) false
        tk_vote(in.data(), out.data(), n);
        std::string e = cudasim::take_error();
        EXPECT(e.empty(), "%s", e.c_str());
        for (int w = 0; w * 32 < n; w++) {
            int lo = w * 32, hi = std::min(n, lo + 32);
            unsigned bal = 0, band = ~0u, bor = 0, bxor = 0;
            int any = 0, all = 1, sum = 0, mn = 1 << 30, mx = -(1 << 30);
            for (int i = lo; i < hi; i++) {
                int v = in[i];
                if (v > 0) bal |= 1u << (i - lo);
                any |= v > 90;
                all &= v > -90;
                sum += v;
                mn = std::min(mn, v);
                mx = std::max(mx, v);
                band &= (unsigned)v;
                bor |= (unsigned)v;
                bxor ^= (unsigned)v;
            }
            unsigned want[9] = {bal,           (unsigned)any, (unsigned)all,
                                (unsigned)sum, (unsigned)mn,  (unsigned)mx,
                                band,          bor,           bxor};
            for (int i = lo; i < hi; i++)
                for (int m = 0; m < 9; m++)
                    EXPECT(out[m * n + i] == want[m], "n %d op %d thread %d: 0x%x != 0x%x", n, m, i,
                           out[m * n + i], want[m]);
        }
    }
    return true;
}

// ------------------------------------------------------------ mma
static uint16_t f2h(float f) { return __half_as_ushort(__float2half(f)); }
static float h2f(uint16_t h) { return __half2float(__ushort_as_half(h)); }
static uint16_t f2bf(float f) { return __bfloat16_as_ushort(__float2bfloat16(f)); }
static float bf2f(uint16_t h) { return __bfloat162float(__ushort_as_bfloat16(h)); }

static bool t_mma_layout_table() {
    using namespace ptx_layout;
    // Entries read off the PTX ISA's m16n8k16 .f16/.bf16 tables for lanes 0, 5, 31.
    struct E {
        int lane, i, r, c;
    };
    const E a[] = {{0, 0, 0, 0},   {0, 1, 0, 1},   {0, 2, 8, 0},    {0, 3, 8, 1},   {0, 4, 0, 8},
                   {0, 5, 0, 9},   {0, 6, 8, 8},   {0, 7, 8, 9},    {5, 0, 1, 2},   {5, 1, 1, 3},
                   {5, 2, 9, 2},   {5, 3, 9, 3},   {5, 4, 1, 10},   {5, 5, 1, 11},  {5, 6, 9, 10},
                   {5, 7, 9, 11},  {31, 0, 7, 6},  {31, 1, 7, 7},   {31, 2, 15, 6}, {31, 3, 15, 7},
                   {31, 4, 7, 14}, {31, 5, 7, 15}, {31, 6, 15, 14}, {31, 7, 15, 15}};
    const E b[] = {{0, 0, 0, 0},  {0, 1, 1, 0},  {0, 2, 8, 0},   {0, 3, 9, 0},
                   {5, 0, 2, 1},  {5, 1, 3, 1},  {5, 2, 10, 1},  {5, 3, 11, 1},
                   {31, 0, 6, 7}, {31, 1, 7, 7}, {31, 2, 14, 7}, {31, 3, 15, 7}};
    const E c[] = {{0, 0, 0, 0},  {0, 1, 0, 1},  {0, 2, 8, 0},   {0, 3, 8, 1},
                   {5, 0, 1, 2},  {5, 1, 1, 3},  {5, 2, 9, 2},   {5, 3, 9, 3},
                   {31, 0, 7, 6}, {31, 1, 7, 7}, {31, 2, 15, 6}, {31, 3, 15, 7}};
    for (auto e : a)
        EXPECT(mma_a_row(e.lane, e.i) == e.r && mma_a_col(e.lane, e.i) == e.c, "A lane %d a%d",
               e.lane, e.i);
    for (auto e : b)
        EXPECT(mma_b_row(e.lane, e.i) == e.r && mma_b_col(e.lane, e.i) == e.c, "B lane %d b%d",
               e.lane, e.i);
    for (auto e : c)
        EXPECT(mma_c_row(e.lane, e.i) == e.r && mma_c_col(e.lane, e.i) == e.c, "C lane %d c%d",
               e.lane, e.i);
    // Each element of A, B and C is held by exactly one (lane, register half).
    int ca[16][16] = {}, cb[16][8] = {}, cc[16][8] = {};
    for (int l = 0; l < 32; l++) {
        for (int i = 0; i < 8; i++)
            ca[mma_a_row(l, i)][mma_a_col(l, i)]++;
        for (int i = 0; i < 4; i++)
            cb[mma_b_row(l, i)][mma_b_col(l, i)]++, cc[mma_c_row(l, i)][mma_c_col(l, i)]++;
    }
    for (int r = 0; r < 16; r++)
        for (int k = 0; k < 16; k++)
            EXPECT(ca[r][k] == 1, "A (%d,%d) held %d times", r, k, ca[r][k]);
    for (int r = 0; r < 16; r++)
        for (int k = 0; k < 8; k++)
            EXPECT(cb[r][k] == 1 && cc[r][k] == 1, "B/C (%d,%d)", r, k);
    return true;
}

// Returns the max |D - ref| of one mma on random tiles.
static double mma_err(int bf16, int wrong, uint64_t seed) {
    g_rng = seed * 7919 + 1;
    std::vector<uint16_t> A(256), B(128);
    std::vector<float> C(128), D(128, 0.0f);
    std::vector<float> Af(256), Bf(128);
    for (int i = 0; i < 256; i++) {
        float v = ((int)(rnd() % 2001) - 1000) / 256.0f;
        A[i] = bf16 ? f2bf(v) : f2h(v);
        Af[i] = bf16 ? bf2f(A[i]) : h2f(A[i]);
    }
    for (int i = 0; i < 128; i++) {
        float v = ((int)(rnd() % 2001) - 1000) / 256.0f;
        B[i] = bf16 ? f2bf(v) : f2h(v);
        Bf[i] = bf16 ? bf2f(B[i]) : h2f(B[i]);
        C[i] = ((int)(rnd() % 2001) - 1000) / 64.0f;
    }
    tk_mma(A.data(), B.data(), C.data(), D.data(), bf16, wrong);
    double err = 0;
    for (int r = 0; r < 16; r++)
        for (int n = 0; n < 8; n++) {
            double s = C[r * 8 + n];
            for (int k = 0; k < 16; k++)
                s += (double)Af[r * 16 + k] * Bf[k * 8 + n];
            err = std::max(err, fabs(s - D[r * 8 + n]));
        }
    return err;
}

static bool t_mma() {
    for (int bf16 = 0; bf16 < 2; bf16++)
        for (uint64_t s = 1; s <= 5; s++) {
            double e = mma_err(bf16, 0, s);
            std::string er = cudasim::take_error();
            EXPECT(er.empty(), "%s", er.c_str());
            EXPECT(e < 1e-3, "%s seed %d: max err %g", bf16 ? "bf16" : "f16", (int)s, e);
        }
    return true;
}

static bool t_planted_wrong_layout() { // planted bug (d)
    for (int bf16 = 0; bf16 < 2; bf16++) {
        double e = mma_err(bf16, 1, 3);
        EXPECT(e > 0.1, "wrong A fragment layout not caught (max err %g)", e);
    }
    return true;
}

// ------------------------------------------------------------ ldmatrix
static bool t_ldmatrix() {
    std::vector<uint16_t> M(256);
    std::vector<uint32_t> out(32 * 8);
    for (int i = 0; i < 256; i++)
        M[i] = (uint16_t)(i * 37 + 11);
    auto m = [&](int r, int c) { return (uint32_t)M[r * 16 + c]; };
    for (int pol = 0; pol < 4; pol++) {
        cudasim::set_policy((Policy)pol, 5);
        tk_ldmatrix(M.data(), out.data(), 0);
        std::string e = cudasim::take_error();
        EXPECT(e.empty(), "%s", e.c_str());
        for (int l = 0; l < 32; l++) {
            int g = l >> 2, t = l & 3;
            // x4 with these addresses = the mma A fragment of M (PTX A table)
            uint32_t a[4] = {m(g, 2 * t) | m(g, 2 * t + 1) << 16,
                             m(g + 8, 2 * t) | m(g + 8, 2 * t + 1) << 16,
                             m(g, 2 * t + 8) | m(g, 2 * t + 9) << 16,
                             m(g + 8, 2 * t + 8) | m(g + 8, 2 * t + 9) << 16};
            // x4.trans of M stored [k][n] = the mma B fragments for columns 0-7 and 8-15 (PTX B
            // table)
            uint32_t b[4] = {m(2 * t, g) | m(2 * t + 1, g) << 16,
                             m(2 * t + 8, g) | m(2 * t + 9, g) << 16,
                             m(2 * t, g + 8) | m(2 * t + 1, g + 8) << 16,
                             m(2 * t + 8, g + 8) | m(2 * t + 9, g + 8) << 16};
            for (int i = 0; i < 4; i++) {
                EXPECT(out[l * 8 + i] == a[i], "x4 lane %d reg %d: 0x%08x != 0x%08x", l, i,
                       out[l * 8 + i], a[i]);
                EXPECT(out[l * 8 + 4 + i] == b[i], "x4.trans lane %d reg %d: 0x%08x != 0x%08x", l,
                       i, out[l * 8 + 4 + i], b[i]);
            }
        }
    }
    tk_ldmatrix(M.data(), out.data(), 1);
    std::string e = cudasim::take_error();
    EXPECT(e.find("not 16-byte aligned") != std::string::npos,
           "misaligned ldmatrix not reported: '%s'", e.c_str());
    return true;
}

// ------------------------------------------------------------ tiled matmul
static bool matmul_run(int M, int N, int K, int bug, Policy p, uint64_t seed, double *err,
                       std::string *emsg) {
    g_rng = 99 + (uint64_t)M * 131 + (uint64_t)K;
    std::vector<float> A(M * K), B(K * N), C(M * N, 0.0f);
    for (auto &x : A)
        x = ((int)(rnd() % 201) - 100) / 16.0f;
    for (auto &x : B)
        x = ((int)(rnd() % 201) - 100) / 16.0f;
    cudasim::set_policy(p, seed);
    tk_matmul(A.data(), B.data(), C.data(), M, N, K, bug);
    *emsg = cudasim::take_error();
    double e = 0;
    for (int r = 0; r < M; r++)
        for (int c = 0; c < N; c++) {
            double s = 0;
            for (int k = 0; k < K; k++)
                s += (double)A[r * K + k] * B[k * N + c];
            double d = fabs(s - C[r * N + c]);
            e = std::max(e, d != d ? INFINITY : d);
        }
    *err = e;
    return emsg->empty() && e < 1e-3;
}

static bool t_matmul_policies() {
    for (auto ps : all_policies()) {
        double e;
        std::string m;
        bool ok = matmul_run(40, 36, 40, MM_CORRECT, ps.p, ps.seed, &e, &m);
        EXPECT(ok, "policy %s seed %d: err %g %s", cudasim::policy_name(ps.p), (int)ps.seed, e,
               m.c_str());
        ok = matmul_run(16, 16, 8, MM_CORRECT, ps.p, ps.seed, &e, &m);
        EXPECT(ok, "16x16x8 policy %s seed %d: err %g %s", cudasim::policy_name(ps.p), (int)ps.seed,
               e, m.c_str());
    }
    return true;
}

// A planted race must be caught under greedy for every seed; the other
// policies are reported for information.
static bool planted_race(int bug) {
    std::string caught_by;
    for (auto ps : all_policies()) {
        double e;
        std::string m;
        bool ok = matmul_run(40, 36, 40, bug, ps.p, ps.seed, &e, &m);
        if (ps.p == cudasim::POLICY_GREEDY) EXPECT(!ok, "greedy seed %d missed it", (int)ps.seed);
        if (!ok && ps.seed == 1) caught_by += std::string(" ") + cudasim::policy_name(ps.p);
    }
    printf("     (caught with seed 1 by:%s)\n", caught_by.c_str());
    return true;
}
static bool t_planted_no_sync_after_load() { return planted_race(MM_NO_SYNC_AFTER_LOAD); }
static bool t_planted_no_sync_before_refill() { return planted_race(MM_NO_SYNC_BEFORE_REFILL); }

static bool t_planted_tail() { // planted bug (c): shared memory poisoning exposes it
    for (int K : {8, 40}) {
        double e;
        std::string m;
        EXPECT(matmul_run(40, 36, K, MM_CORRECT, cudasim::POLICY_IN_ORDER, 1, &e, &m),
               "correct kernel K=%d: %g", K, e);
        bool ok = matmul_run(40, 36, K, MM_NO_TAIL_ZERO, cudasim::POLICY_IN_ORDER, 1, &e, &m);
        EXPECT(!ok, "missing tail zero-fill not caught for K=%d", K);
        if (K == 8)
            EXPECT(std::isinf(e), "K=8: expected NaN from poisoned shared memory, err %g", e);
    }
    return true;
}

static bool t_mma_matmul() {
    const int M = 32, N = 48, K = 64;
    std::vector<uint16_t> A(M * K), B(K * N);
    std::vector<float> Af(M * K), Bf(K * N), C(M * N);
    for (int i = 0; i < M * K; i++)
        A[i] = f2h(((int)(rnd() % 201) - 100) / 64.0f), Af[i] = h2f(A[i]);
    for (int i = 0; i < K * N; i++)
        B[i] = f2h(((int)(rnd() % 201) - 100) / 64.0f), Bf[i] = h2f(B[i]);
    for (auto ps : all_policies()) {
        cudasim::set_policy(ps.p, ps.seed);
        std::fill(C.begin(), C.end(), 0.0f);
        tk_mma_matmul(A.data(), B.data(), C.data(), M, N, K);
        std::string e = cudasim::take_error();
        EXPECT(e.empty(), "%s", e.c_str());
        for (int r = 0; r < M; r++)
            for (int c = 0; c < N; c++) {
                double s = 0;
                for (int k = 0; k < K; k++)
                    s += (double)Af[r * K + k] * Bf[k * N + c];
                EXPECT(fabs(s - C[r * N + c]) < 1e-3, "policy %s (%d,%d): %g != %g",
                       cudasim::policy_name(ps.p), r, c, C[r * N + c], s);
            }
    }
    return true;
}

// ------------------------------------------------------------ misuse is reported, never hangs
static bool expect_report(int kind, const char *needle) {
    std::vector<int> out(64, 0);
    for (int pol = 0; pol < 4; pol++) {
        cudasim::set_policy((Policy)pol, 2);
        tk_divergent_barrier(out.data(), kind);
        std::string e = cudasim::take_error();
        EXPECT(e.find(needle) != std::string::npos, "kind %d policy %s: expected '%s' in '%s'",
               kind, cudasim::policy_name((Policy)pol), needle, e.c_str());
        if (pol == 0) printf("     report: %s\n", e.c_str());
    }
    // the emulator still works after an aborted launch
    std::vector<int> in(256, 1), r(1);
    tk_block_reduce(in.data(), r.data(), 1);
    EXPECT(r[0] == 3 * 256 && !cudasim::error_pending(), "launch after a failed one");
    return true;
}
static bool t_planted_divergent_barrier() { return expect_report(0, "divergent __syncthreads"); }
static bool t_divergent_exit_barrier() { return expect_report(1, "exited while others wait"); }
static bool t_warp_deadlock() { return expect_report(2, "deadlock"); }
static bool t_partial_mask() { return expect_report(3, "full mask"); }
static bool t_mixed_intrinsics() { return expect_report(4, "different warp intrinsics"); }

static bool t_atomics() {
    for (int pol = 0; pol < 4; pol++) {
        cudasim::set_policy((Policy)pol, 1);
        int c[2] = {0, 0};
        tk_atomic_count(c, 7);
        EXPECT(c[0] == 7 * 64 && c[1] == 7 * (63 * 64 / 2), "%d %d", c[0], c[1]);
    }
    return true;
}

static bool t_bad_launch() {
    std::vector<int> in(4096), out(4);
    tk_block_reduce_dyn(in.data(), out.data(), 1, 2048);
    std::string e = cudasim::take_error();
    EXPECT(e.find("invalid block") != std::string::npos, "'%s'", e.c_str());
    return true;
}

int main() {
    run("barrier: block reduction, static shared in template helper, 4 policies x 3 seeds",
        t_block_reduce);
    run("barrier: dynamic shared reduction, 1/100/256/1024 threads", t_block_reduce_dyn);
    run("shfl idx/up/down/xor int, widths 32..1, vs CPU", t_shuffle);
    run("shfl idx/up/down/xor double", t_shuffle_f64);
    run("votes and reductions (full and partial last warp)", t_vote);
    run("mma.m16n8k16 layout vs PTX ISA table entries", t_mma_layout_table);
    run("mma.m16n8k16 f16/bf16 vs CPU matmul", t_mma);
    run("ldmatrix x4 / x4.trans vs PTX layouts; misaligned row reported", t_ldmatrix);
    run("tiled f32 matmul (shared tiles, tails), 4 policies x 3 seeds", t_matmul_policies);
    run("tensor-core matmul (ldmatrix + mma), 4 policies x 3 seeds", t_mma_matmul);
    run("atomics", t_atomics);
    run("invalid launch configuration reported", t_bad_launch);
    run("planted bug (a): no barrier after loading the tile", t_planted_no_sync_after_load);
    run("planted bug (b): no barrier before refilling the tile", t_planted_no_sync_before_refill);
    run("planted bug (c): tail not zero-filled", t_planted_tail);
    run("planted bug (d): wrong mma fragment layout", t_planted_wrong_layout);
    run("planted bug (e): divergent __syncthreads reported", t_planted_divergent_barrier);
    run("exit before a barrier reported", t_divergent_exit_barrier);
    run("warp shuffle deadlock reported", t_warp_deadlock);
    run("non-full shuffle mask reported", t_partial_mask);
    run("one warp in two different shuffles reported", t_mixed_intrinsics);
    printf("%d passed, %d failed\n", g_pass, g_fail);
    return g_fail ? 1 : 0;
}
