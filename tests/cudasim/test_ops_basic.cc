// test_ops.cc: the CUDA kernels of kernels/*.cu (through their kernels.h
// launchers) under the cudasim emulator, against the CPU backend's own code
// (lib/backend/cpu/ops.c and the quant traits in lib/quant, compiled as C
// and linked in).  Every case runs under 4 scheduling policies x 3 seeds
// (in-order, reverse, random, greedy), with shared memory poisoned by the
// kernels and output buffers pre-filled with NaN; sizes are ragged.
// Prints one line per test and ends with "N passed, N failed".
//
// Tolerances (see docs/CUDA.md, "Kernels"):
//   rmsnorm          |gpu - cpu| <= 1e-5 * |cpu| per element (f32 vs double sum of squares)
//   rope             |gpu - cpu| <= 1e-5 absolute (|x| <= 1, positions up to 1e5)
//   act_mul          |gpu - cpu| <= 1e-6 + 1e-5 * |cpu|
//   add, add_bias, scale: bitwise equal (one rounding each, same on both sides)
//   (matvec and the other decode kernels: test_ops_matvec.cc, test_ops_misc.cc)
// and every kernel must give bitwise the same output under every policy and seed.
#include "cudasim.h"
#include "kernels.h"
#include "util.cuh"

extern "C" {
#include "backend/cpu/cpu.h"
#include "quant/dtype.h"
}

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include <string>
#include <vector>

#include "test_harness.h"
#include "ops_test_util.h"

static const int64_t NS[] = {1, 31, 33, 257, 640, 1000};
static const int64_t ROWS[] = {1, 3, 17};

// ------------------------------------------------------------ rmsnorm
static bool t_rmsnorm() {
    for (int64_t n : NS)
        for (int64_t rows : ROWS)
            for (int use_w = 0; use_w < 2; use_w++)
                for (int in_place = 0; in_place < 2; in_place++) {
                    std::vector<float> x(n * rows), w(n), ref(n * rows), out(n * rows);
                    fill(x, -2.0f, 2.0f);
                    fill(w, 0.5f, 1.5f);
                    const float eps = 1e-6f;
                    slim_cpu_rmsnorm(ref.data(), x.data(), use_w ? w.data() : nullptr, n, rows,
                                     eps);
                    char what[96];
                    snprintf(what, sizeof what, "n=%lld rows=%lld w=%d in_place=%d", (long long)n,
                             (long long)rows, use_w, in_place);
                    const float *wp = use_w ? w.data() : nullptr;
                    int rc = 0;
                    if (!all_policies_same(what, out, [&](std::vector<float> &o) {
                            if (in_place) {
                                o = x;
                                rc |= slim_cuda_rmsnorm(o.data(), o.data(), wp, n, rows, eps,
                                                        nullptr);
                            } else {
                                std::fill(o.begin(), o.end(), NAN);
                                rc |= slim_cuda_rmsnorm(o.data(), x.data(), wp, n, rows, eps,
                                                        nullptr);
                            }
                        }))
                        return false;
                    EXPECT(rc == 0, "%s: launcher returned %d", what, rc);
                    for (int64_t i = 0; i < n * rows; i++)
                        EXPECT(fabsf(out[i] - ref[i]) <= 1e-5f * fabsf(ref[i]),
                               "%s: [%lld] %.9g vs cpu %.9g", what, (long long)i, out[i], ref[i]);
                }
    return true;
}

static bool t_rmsnorm_args() {
    std::vector<float> x(8, 1.0f);
    EXPECT(slim_cuda_rmsnorm(x.data(), x.data(), nullptr, 0, 5, 1e-6f, nullptr) == 0,
           "n = 0 is a no-op");
    EXPECT(slim_cuda_rmsnorm(x.data(), x.data(), nullptr, 8, 0, 1e-6f, nullptr) == 0,
           "no rows is a no-op");
    EXPECT(x[0] == 1.0f, "no-op wrote");
    EXPECT(slim_cuda_rmsnorm(x.data(), x.data(), nullptr, -1, 1, 1e-6f, nullptr) ==
               (int)cudaErrorInvalidValue,
           "negative n rejected");
    return true;
}

// ------------------------------------------------------------ rope
struct RopeCase {
    int32_t n_heads, head_dim, n_rot, pos0;
    float theta, freq_scale, mscale;
    bool factors, neox;
};

static bool t_rope() {
    const RopeCase cases[] = {
        {1, 64, 64, 0, 10000.0f, 1.0f, 1.0f, false, true},       // full rotary, neox
        {3, 64, 64, 7, 10000.0f, 1.0f, 1.0f, false, false},      // adjacent pairs
        {5, 80, 32, 1000, 10000.0f, 1.0f, 1.0f, false, true},    // partial rotary (Phi-like)
        {3, 96, 48, 3, 500000.0f, 0.25f, 1.0f, true, true},      // freq factors + linear scaling
        {2, 128, 128, 11, 1000000.0f, 1.0f, 1.19f, true, false}, // LongRoPE-style factors + mscale
        {3, 33, 22, 5, 10000.0f, 0.5f, 1.0f, false, false},      // odd head_dim, partial, adjacent
        {1, 2, 2, 0, 10000.0f, 1.0f, 1.0f, false, true},         // one pair
        {2, 64, 64, 100000, 500000.0f, 1.0f, 1.0f, false, true}, // long context: angles up to 1e5
    };
    for (const RopeCase &c : cases)
        for (int64_t rows : ROWS) {
            const int64_t n = rows * c.n_heads * c.head_dim;
            std::vector<float> x(n), ref(n), out(n), ff(c.n_rot / 2);
            fill(x, -1.0f, 1.0f);
            fill(ff, 1.0f, 8.0f);
            slim_rope_args a;
            a.n_heads = c.n_heads;
            a.head_dim = c.head_dim;
            a.n_rot = c.n_rot;
            a.theta_base = c.theta;
            a.freq_scale = c.freq_scale;
            a.mscale = c.mscale;
            a.freq_factors = c.factors ? ff.data() : nullptr;
            a.neox = c.neox;
            ref = x;
            std::vector<int32_t> pos(rows);
            for (int64_t r = 0; r < rows; r++)
                pos[r] = c.pos0 + (int32_t)r;
            slim_cpu_rope(ref.data(), rows, pos.data(), &a);
            char what[128];
            snprintf(what, sizeof what,
                     "heads=%d head_dim=%d n_rot=%d pos0=%d neox=%d factors=%d rows=%lld",
                     c.n_heads, c.head_dim, c.n_rot, c.pos0, c.neox, c.factors, (long long)rows);
            int rc = 0;
            if (!all_policies_same(what, out, [&](std::vector<float> &o) {
                    o = x;
                    rc |= slim_cuda_rope(o.data(), rows, c.n_heads, c.head_dim, c.n_rot, &c.pos0,
                                         c.theta, c.freq_scale, c.mscale,
                                         c.factors ? ff.data() : nullptr, c.neox, nullptr);
                }))
                return false;
            EXPECT(rc == 0, "%s: launcher returned %d", what, rc);
            for (int64_t i = 0; i < n; i++) {
                EXPECT(fabsf(out[i] - ref[i]) <= 1e-5f, "%s: [%lld] %.9g vs cpu %.9g", what,
                       (long long)i, out[i], ref[i]);
                if (i % c.head_dim >= c.n_rot)
                    EXPECT(out[i] == x[i], "%s: [%lld] beyond n_rot changed", what, (long long)i);
            }
        }
    EXPECT(slim_cuda_rope(nullptr, 1, 1, 8, 3, 0, 1e4f, 1, 1, nullptr, 1, nullptr) ==
               (int)cudaErrorInvalidValue,
           "odd n_rot rejected");
    EXPECT(slim_cuda_rope(nullptr, 1, 1, 8, 10, 0, 1e4f, 1, 1, nullptr, 1, nullptr) ==
               (int)cudaErrorInvalidValue,
           "n_rot > head_dim rejected");
    EXPECT(slim_cuda_rope(nullptr, 0, 1, 8, 8, 0, 1e4f, 1, 1, nullptr, 1, nullptr) == 0,
           "no rows is a no-op");
    float v[8] = {0};
    EXPECT(slim_cuda_rope(v, 1, 1, 8, 8, nullptr, 1e4f, 1, 1, nullptr, 1, nullptr) ==
               (int)cudaErrorInvalidValue,
           "NULL pos0 rejected");
    return true;
}

// ------------------------------------------------------------ element-wise
static bool t_act_mul() {
    const slim_act acts[2] = {SLIM_ACT_GELU_TANH, SLIM_ACT_SILU};
    const int cuda_acts[2] = {SLIM_CUDA_ACT_GELU_TANH, SLIM_CUDA_ACT_SILU};
    for (int k = 0; k < 2; k++)
        for (int64_t n : NS)
            for (int64_t rows : ROWS) {
                const int64_t m = n * rows; // element-wise: rows only make the sizes more ragged
                std::vector<float> g(m), u(m), ref, out(m);
                fill(g, -8.0f, 8.0f);
                fill(u, -2.0f, 2.0f);
                ref = g;
                slim_cpu_act_mul(ref.data(), u.data(), m, acts[k]);
                char what[64];
                snprintf(what, sizeof what, "act=%d n=%lld", k, (long long)m);
                int rc = 0;
                if (!all_policies_same(what, out, [&](std::vector<float> &o) {
                        o = g;
                        rc |= slim_cuda_act_mul(o.data(), u.data(), m, cuda_acts[k], nullptr);
                    }))
                    return false;
                EXPECT(rc == 0, "%s: launcher returned %d", what, rc);
                for (int64_t i = 0; i < m; i++)
                    EXPECT(fabsf(out[i] - ref[i]) <= 1e-6f + 1e-5f * fabsf(ref[i]),
                           "%s: [%lld] g=%.9g %.9g vs cpu %.9g", what, (long long)i, g[i], out[i],
                           ref[i]);
            }
    EXPECT(slim_cuda_act_mul(nullptr, nullptr, 4, 7, nullptr) == (int)cudaErrorInvalidValue,
           "bad act rejected");
    return true;
}

static bool t_add_scale_bias() {
    for (int64_t n : NS)
        for (int64_t rows : ROWS) {
            const int64_t m = n * rows;
            std::vector<float> y(m), x(m), b(n), ref, out(m);
            fill(y, -4.0f, 4.0f);
            fill(x, -4.0f, 4.0f);
            fill(b, -1.0f, 1.0f);
            char what[64];
            int rc = 0;

            ref = y;
            slim_cpu_add(ref.data(), x.data(), m);
            snprintf(what, sizeof what, "add n=%lld", (long long)m);
            if (!all_policies_same(what, out, [&](std::vector<float> &o) {
                    o = y;
                    rc |= slim_cuda_add(o.data(), x.data(), m, nullptr);
                }))
                return false;
            EXPECT(same_bits(out, ref), "%s: not bitwise equal to the CPU", what);

            ref = y;
            slim_cpu_add_bias(ref.data(), b.data(), n, rows);
            snprintf(what, sizeof what, "add_bias n=%lld rows=%lld", (long long)n, (long long)rows);
            if (!all_policies_same(what, out, [&](std::vector<float> &o) {
                    o = y;
                    rc |= slim_cuda_add_bias(o.data(), b.data(), n, rows, nullptr);
                }))
                return false;
            EXPECT(same_bits(out, ref), "%s: not bitwise equal to the CPU", what);

            ref = y;
            slim_cpu_scale(ref.data(), 0.3f, m);
            snprintf(what, sizeof what, "scale n=%lld", (long long)m);
            if (!all_policies_same(what, out, [&](std::vector<float> &o) {
                    o = y;
                    rc |= slim_cuda_scale(o.data(), 0.3f, m, nullptr);
                }))
                return false;
            EXPECT(same_bits(out, ref), "%s: not bitwise equal to the CPU", what);
            EXPECT(rc == 0, "launchers returned %d", rc);
        }
    return true;
}

// ------------------------------------------------------------ util.cuh under the emulator
__global__ void misaligned_load_kernel(const float *x, float *out) {
    float4 v = ld_f32x4(x + threadIdx.x); // thread 1 is misaligned
    out[threadIdx.x] = v.x;
}
__global__ void unaligned_u32_kernel(const unsigned char *p, uint32_t *out) {
    out[threadIdx.x] = ld_u32_a2(p + 2 * threadIdx.x);
}

static bool t_load_checks() {
    AlignedBuf x(64);
    for (int i = 0; i < 64; i++)
        x.p[i] = (float)i;
    float out[32];
    LAUNCH(misaligned_load_kernel, 1, 2, 0, 0, (const float *)x.p, out);
    std::string e = cudasim::take_error();
    EXPECT(e.find("ld_f32x4: address not 16-byte aligned") != std::string::npos, "'%s'", e.c_str());
    LAUNCH(misaligned_load_kernel, 1, 1, 0, 0, (const float *)x.p, out);
    e = cudasim::take_error();
    EXPECT(e.empty() && out[0] == 0.0f, "aligned load: '%s'", e.c_str());
    unsigned char bytes[80];
    for (int i = 0; i < 80; i++)
        bytes[i] = (unsigned char)(3 * i + 1);
    alignas(4) unsigned char b2[82];
    memcpy(b2 + 2, bytes, 80); // 2-byte aligned, not 4
    uint32_t u[32];
    LAUNCH(unaligned_u32_kernel, 1, 32, 0, 0, (const unsigned char *)(b2 + 2), u);
    EXPECT(cudasim::take_error().empty(), "ld_u32_a2 on 2-byte aligned data");
    for (int t = 0; t < 32; t++) {
        uint32_t want;
        memcpy(&want, bytes + 2 * t, 4);
        EXPECT(u[t] == want, "thread %d: %08x vs %08x", t, u[t], want);
    }
    LAUNCH(unaligned_u32_kernel, 1, 1, 0, 0, (const unsigned char *)(b2 + 3), u);
    e = cudasim::take_error();
    EXPECT(e.find("ld_u16: address not 2-byte aligned") != std::string::npos, "'%s'", e.c_str());
    return true;
}

int main() {
    run("rmsnorm vs slim_cpu_rmsnorm: n 1..1000, rows 1/3/17, w/no w, in place, 4 policies x 3 "
        "seeds",
        t_rmsnorm);
    run("rmsnorm launcher: empty and invalid sizes", t_rmsnorm_args);
    run("rope vs slim_cpu_rope: neox/adjacent, partial, freq factors, scaling, mscale, pos0",
        t_rope);
    run("act_mul (gelu-tanh, silu) vs slim_cpu_act_mul", t_act_mul);
    run("add / add_bias / scale bitwise vs the CPU backend", t_add_scale_bias);
    run("checked loads: misaligned 16-byte / 2-byte loads reported, 2x16-bit words", t_load_checks);
    printf("%d passed, %d failed\n", g_pass, g_fail);
    return g_fail ? 1 : 0;
}
