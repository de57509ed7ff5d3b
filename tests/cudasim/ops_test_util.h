// ops_test_util.h: what the kernel-vs-CPU test programs (test_ops_*.cc)
// share: a seeded generator, aligned buffers, the policy x seed sweep and the
// bitwise-agreement runner.  Include after test_harness.h.
#ifndef CUDASIM_OPS_TEST_UTIL_H
#define CUDASIM_OPS_TEST_UTIL_H

#include <stdlib.h>
#include <string.h>

#include <string>
#include <vector>

#include "test_harness.h"

using cudasim::Policy;

static uint64_t g_rng = 0x9e3779b97f4a7c15ull;
static uint32_t rnd() {
    g_rng ^= g_rng << 13;
    g_rng ^= g_rng >> 7;
    g_rng ^= g_rng << 17;
    return (uint32_t)(g_rng >> 11);
}
static float frand(float lo, float hi) {
    return lo + (hi - lo) * (float)(rnd() & 0xffffff) / 16777216.0f;
}
static void fill(std::vector<float> &v, float lo, float hi) {
    for (auto &x : v)
        x = frand(lo, hi);
}

struct PolicySeed {
    Policy p;
    uint64_t seed;
};
static std::vector<PolicySeed> policies() {
    std::vector<PolicySeed> v;
    for (int p = 0; p < 4; p++)
        for (uint64_t s = 1; s <= 3; s++)
            v.push_back({(Policy)p, s});
    return v;
}

static bool same_bits(const std::vector<float> &a, const std::vector<float> &b) {
    return a.size() == b.size() &&
           (a.empty() || memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0);
}

// Float buffer with 64-byte aligned storage (device allocations are 256-byte
// aligned; std::vector only promises 16).
struct AlignedBuf {
    float *p;
    size_t n;
    explicit AlignedBuf(size_t n_)
        : p((float *)aligned_alloc(64, ((n_ * sizeof(float) + 63) / 64 + 1) * 64)), n(n_) {}
    ~AlignedBuf() { free(p); }
    AlignedBuf(const AlignedBuf &) = delete;
    AlignedBuf &operator=(const AlignedBuf &) = delete;
};

// Runs `launch` (which must write `out` from scratch) under every policy and
// seed; checks no emulator error, and that all runs agree bitwise.  The first
// run's output is left in `out`.
template <typename F>
static bool all_policies_same(const char *what, std::vector<float> &out, F launch) {
    std::vector<float> first;
    for (auto ps : policies()) {
        cudasim::set_policy(ps.p, ps.seed);
        launch(out);
        std::string e = cudasim::take_error();
        EXPECT(e.empty(), "%s, %s seed %llu: %s", what, cudasim::policy_name(ps.p),
               (unsigned long long)ps.seed, e.c_str());
        if (first.empty())
            first = out;
        else
            EXPECT(same_bits(first, out), "%s: %s seed %llu differs from the first run", what,
                   cudasim::policy_name(ps.p), (unsigned long long)ps.seed);
    }
    out = first;
    return true;
}

#ifdef SLIM_BACKEND_BACKEND_H
// One sequence of n tokens at positions pos0.. over the identity block table
// (row = position): the step the CPU reference ops read from slim_exec.batch.
struct IdentityStep {
    std::vector<int32_t> pos, seq;
    int32_t block0 = 0;
    slim_batch_seq s{};
    slim_batch b{};
    IdentityStep(int32_t pos0, int32_t n, int32_t n_ctx)
        : pos(n > 0 ? n : 1), seq(n > 0 ? n : 1, 0) {
        for (int32_t t = 0; t < n; t++)
            pos[t] = pos0 + t;
        s.blocks = &block0;
        s.n_blocks = 1;
        b.n_tokens = n;
        b.pos = pos.data();
        b.seq = seq.data();
        b.row = pos.data();
        b.n_seqs = 1;
        b.block_size = n_ctx > pos0 + n ? n_ctx : pos0 + n;
        b.seqs = &s;
    }
};
#endif

#endif
