// test_ops_misc.cc: the small decode kernels under the cudasim emulator
// against the CPU backend's code: embedding rows (embed.cu), KV store
// (kv.cu), soft-capping (act.cu) and sampling (sample.cu).  Every case runs
// under 4 policies x 3 seeds, outputs pre-filled with NaN, ragged sizes; all
// runs must agree bitwise.
//
// Tolerances:
//   get_rows: bitwise slim_cpu_get_row (the traits' to_float), then
//     slim_cpu_scale when scale != 1 (both are single IEEE operations per
//     element, written as __fmul_rn / __fadd_rn on the device).
//   kv_store: bitwise slim_cpu_kv_store (fp16 round to nearest even).
//   softcap: within 2 ulp of cap * tanhf(x / cap) (CUDA's tanhf is within 2
//     ulp; the emulator uses the same libm, so it measures 0).
//   argmax, top-k: exact (indices and values) vs a plain CPU scan / sort.
//   softmax_temp: |gpu - cpu| <= 1e-6 * cpu + 1e-12, cpu = expf((x - max) / T)
//     / (double sum): the GPU sums the weights in f32 in a fixed tree
//     (relative error ~ log2(n) ulp); measured maximum printed.
#include "cudasim.h"
#include "kernels.h"

extern "C" {
#include "backend/cpu/cpu.h"
#include "core/fp16.h"
#include "quant/dtype.h"
}

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include <algorithm>
#include <string>
#include <vector>

#include "test_harness.h"
#include "ops_test_util.h"

// ------------------------------------------------------------ get_rows
static void random_block(slim_dtype t, unsigned char *b) {
    const slim_dtype_traits *tr = slim_dtype_traits_of(t);
    for (int i = 0; i < tr->type_size; i++)
        b[i] = (unsigned char)rnd();
    auto put = [&](size_t off, float v) {
        const uint16_t h = slim_f32_to_fp16(v);
        memcpy(b + off, &h, 2);
    };
    switch (t) {
    case SLIM_DTYPE_F32: {
        const float v = frand(-3.0f, 3.0f);
        memcpy(b, &v, 4);
        break;
    }
    case SLIM_DTYPE_F16: put(0, frand(-3.0f, 3.0f)); break;
    case SLIM_DTYPE_BF16: b[1] = (unsigned char)(0x3c + rnd() % 8); break; // finite
    case SLIM_DTYPE_Q4_0:
    case SLIM_DTYPE_Q5_0:
    case SLIM_DTYPE_Q8_0: put(0, frand(-0.05f, 0.05f)); break;
    case SLIM_DTYPE_Q4_1:
    case SLIM_DTYPE_Q5_1:
        put(0, frand(0.001f, 0.05f));
        put(2, frand(-0.5f, 0.5f));
        break;
    case SLIM_DTYPE_Q2_K:
        put(80, frand(0.001f, 0.05f));
        put(82, frand(0.0f, 0.05f));
        break;
    case SLIM_DTYPE_Q3_K: put(108, frand(-0.05f, 0.05f)); break;
    case SLIM_DTYPE_Q4_K:
    case SLIM_DTYPE_Q5_K:
        put(0, frand(0.001f, 0.05f));
        put(2, frand(0.0f, 0.05f));
        break;
    case SLIM_DTYPE_Q6_K: put(208, frand(-0.05f, 0.05f)); break;
    default: break;
    }
}

static bool t_get_rows() {
    const slim_dtype types[] = {SLIM_DTYPE_F32,  SLIM_DTYPE_F16,  SLIM_DTYPE_BF16, SLIM_DTYPE_Q4_0,
                                SLIM_DTYPE_Q4_1, SLIM_DTYPE_Q5_0, SLIM_DTYPE_Q5_1, SLIM_DTYPE_Q8_0,
                                SLIM_DTYPE_Q2_K, SLIM_DTYPE_Q3_K, SLIM_DTYPE_Q4_K, SLIM_DTYPE_Q5_K,
                                SLIM_DTYPE_Q6_K};
    for (slim_dtype t : types) {
        const slim_dtype_traits *tr = slim_dtype_traits_of(t);
        const int64_t bs = tr->block_size;
        const int64_t ns[] = {bs == 1 ? 37 : bs, bs == 1 ? 1000 : bs * (bs == 256 ? 3 : 9)};
        for (int64_t n : ns)
            for (float scale : {1.0f, 45.254833995939045f}) { // sqrt(2048), Gemma's embedding scale
                const int64_t n_table = 11, n_ids = 5;
                const size_t row = slim_dtype_row_size(t, n),
                             stride = row + (t == SLIM_DTYPE_F32 ? 8 : 6);
                std::vector<unsigned char> table(stride * n_table + 8);
                for (int64_t r = 0; r < n_table; r++)
                    for (int64_t b = 0; b < n / bs; b++)
                        random_block(t, table.data() + r * stride + b * tr->type_size);
                const int32_t ids[n_ids] = {3, 0, 10, 3, 7};
                std::vector<float> ref(n * n_ids), out(n * n_ids);
                slim_tensor tt = {};
                tt.name = "tok_embd";
                tt.type = t;
                tt.n_dims = 2;
                tt.ne[0] = n;
                tt.ne[1] = n_table;
                tt.nb[0] = tr->type_size;
                tt.nb[1] = stride;
                tt.data = table.data();
                for (int64_t i = 0; i < n_ids; i++) {
                    slim_cpu_get_row(&tt, ids[i], ref.data() + i * n);
                    if (scale != 1.0f) slim_cpu_scale(ref.data() + i * n, scale, n);
                }
                char what[96];
                snprintf(what, sizeof what, "%s n=%lld scale=%g", tr->name, (long long)n, scale);
                int rc = 0;
                if (!all_policies_same(what, out, [&](std::vector<float> &o) {
                        std::fill(o.begin(), o.end(), NAN);
                        rc |= slim_cuda_get_rows(t, o.data(), table.data(), stride, n, ids, n_ids,
                                                 scale, nullptr);
                    }))
                    return false;
                EXPECT(rc == 0, "%s: launcher returned %d", what, rc);
                for (int64_t i = 0; i < n * n_ids; i++)
                    EXPECT(memcmp(&out[i], &ref[i], 4) == 0, "%s: [%lld] %.9g vs cpu %.9g", what,
                           (long long)i, out[i], ref[i]);
            }
    }
    const int32_t neg[1] = {-1};
    std::vector<float> o(32, 0.0f);
    std::vector<unsigned char> tb(34 * 2);
    EXPECT(slim_cuda_get_rows(SLIM_DTYPE_Q8_0, o.data(), tb.data(), 34, 32, neg, 1, 1.0f,
                              nullptr) == 0 &&
               isnan(o[0]) && isnan(o[31]),
           "a negative id gives NaN");
    const int bad = (int)cudaErrorInvalidValue;
    EXPECT(slim_cuda_get_rows(SLIM_DTYPE_Q8_0, o.data(), tb.data(), 34, 48, neg, 1, 1.0f,
                              nullptr) == bad,
           "n not a multiple of 32");
    EXPECT(slim_cuda_get_rows(SLIM_DTYPE_Q8_K, o.data(), tb.data(), 292, 256, neg, 1, 1.0f,
                              nullptr) == bad,
           "Q8_K is not a table type");
    EXPECT(slim_cuda_get_rows(SLIM_DTYPE_Q8_0, o.data(), tb.data() + 1, 34, 32, neg, 1, 1.0f,
                              nullptr) == bad,
           "odd table address");
    EXPECT(slim_cuda_get_rows(SLIM_DTYPE_Q8_0, o.data(), tb.data(), 32, 32, neg, 1, 1.0f,
                              nullptr) == bad,
           "stride below the row size");
    EXPECT(slim_cuda_get_rows(SLIM_DTYPE_Q8_0, o.data(), tb.data(), 34, 32, neg, 0, 1.0f,
                              nullptr) == 0,
           "no ids is a no-op");
    return true;
}

// ------------------------------------------------------------ kv_store
static bool t_kv_store() {
    for (int64_t width : {1, 33, 640})
        for (int64_t n_tokens : {1, 3, 17})
            for (int32_t pos0 : {0, 5}) {
                const int64_t n_ctx = 24;
                std::vector<float> src(n_tokens * width);
                fill(src, -70000.0f, 70000.0f); // overflow to inf, and...
                for (size_t i = 0; i < src.size(); i += 3)
                    src[i] = frand(-1.0f, 1.0f) * (i % 2 ? 1e-6f : 1.0f); // ...subnormals
                src[0] = 0.0f;
                if (src.size() > 1) src[1] = -0.0f;
                std::vector<uint16_t> ref(n_ctx * width, 0x7e00);
                std::vector<int32_t> rows(n_tokens);
                for (int64_t t = 0; t < n_tokens; t++)
                    rows[t] = pos0 + (int32_t)t;
                slim_cpu_kv_store(ref.data(), false, src.data(), n_tokens, width, rows.data());
                // The cache as floats (2 halves each) for all_policies_same.
                std::vector<float> out((n_ctx * width + 1) / 2);
                char what[64];
                snprintf(what, sizeof what, "width=%lld tokens=%lld pos0=%d", (long long)width,
                         (long long)n_tokens, pos0);
                int rc = 0;
                if (!all_policies_same(what, out, [&](std::vector<float> &o) {
                        std::fill(o.begin(), o.end(), NAN);
                        uint16_t *c = (uint16_t *)o.data();
                        for (int64_t i = 0; i < n_ctx * width; i++)
                            c[i] = 0x7e00; // fp16 NaN
                        rc |= slim_cuda_kv_store(c, src.data(), n_tokens, width, &pos0, nullptr);
                    }))
                    return false;
                EXPECT(rc == 0, "%s: launcher returned %d", what, rc);
                EXPECT(memcmp(out.data(), ref.data(), ref.size() * 2) == 0,
                       "%s: cache differs from the CPU's", what);
            }
    const int32_t p = 0;
    EXPECT(slim_cuda_kv_store(nullptr, nullptr, -1, 4, &p, nullptr) == (int)cudaErrorInvalidValue,
           "negative tokens");
    EXPECT(slim_cuda_kv_store(nullptr, nullptr, 1, 4, nullptr, nullptr) ==
               (int)cudaErrorInvalidValue,
           "NULL pos0");
    EXPECT(slim_cuda_kv_store(nullptr, nullptr, 0, 4, &p, nullptr) == 0, "no tokens is a no-op");
    return true;
}

// ------------------------------------------------------------ softcap
static int32_t ulp_diff(float a, float b) {
    int32_t ia, ib;
    memcpy(&ia, &a, 4);
    memcpy(&ib, &b, 4);
    if (ia < 0) ia = (int32_t)0x80000000 - ia;
    if (ib < 0) ib = (int32_t)0x80000000 - ib;
    return ia > ib ? ia - ib : ib - ia;
}

static bool t_softcap() {
    for (int64_t n : {1, 31, 1000, 4099})
        for (float cap : {30.0f, 50.0f}) {
            std::vector<float> x(n), ref(n), out(n);
            fill(x, -200.0f, 200.0f);
            for (int64_t i = 0; i < n; i++)
                ref[i] = cap * tanhf(x[i] / cap); // lib/runtime/forward.c's softcap
            char what[64];
            snprintf(what, sizeof what, "n=%lld cap=%g", (long long)n, cap);
            int rc = 0;
            if (!all_policies_same(what, out, [&](std::vector<float> &o) {
                    o = x;
                    rc |= slim_cuda_softcap(o.data(), cap, n, nullptr);
                }))
                return false;
            EXPECT(rc == 0, "%s: launcher returned %d", what, rc);
            for (int64_t i = 0; i < n; i++)
                EXPECT(ulp_diff(out[i], ref[i]) <= 2, "%s: [%lld] %.9g vs cpu %.9g", what,
                       (long long)i, out[i], ref[i]);
        }
    float y = 1.0f;
    EXPECT(slim_cuda_softcap(&y, 0.0f, 1, nullptr) == (int)cudaErrorInvalidValue, "cap 0");
    EXPECT(slim_cuda_softcap(&y, NAN, 1, nullptr) == (int)cudaErrorInvalidValue, "cap NaN");
    return true;
}

// ------------------------------------------------------------ sampling
static std::vector<float> logits(int64_t n, int kind) {
    std::vector<float> v(n);
    fill(v, -20.0f, 20.0f);
    if (kind == 1) { // ties at the top, NaN, -inf and coarse values
        for (auto &x : v)
            x = (float)(int)(x / 4.0f);
        v[n / 2] = NAN;
        v[n - 1] = -INFINITY;
        v[n / 3] = 5.0f;
        v[n / 5] = 5.0f;
    }
    return v;
}

static float clean(float x) { return x == x ? x : -INFINITY; }

static bool t_argmax() {
    for (int64_t n : {1, 255, 8193, 262144})
        for (int kind = 0; kind < 2; kind++) {
            if (n < 16 && kind == 1) continue;
            std::vector<float> x = logits(n, kind);
            int64_t want = 0;
            for (int64_t i = 1; i < n; i++)
                if (clean(x[i]) > clean(x[want])) want = i;
            std::vector<char> scratch(slim_cuda_sample_scratch_bytes(n) + 16);
            std::vector<float> out(1);
            char what[64];
            snprintf(what, sizeof what, "argmax n=%lld kind=%d", (long long)n, kind);
            int rc = 0;
            if (!all_policies_same(what, out, [&](std::vector<float> &o) {
                    int32_t idx = -7;
                    memset(scratch.data(), 0xff, scratch.size());
                    rc |= slim_cuda_argmax(x.data(), n, &idx, scratch.data(), nullptr);
                    o[0] = (float)idx;
                }))
                return false;
            EXPECT(rc == 0, "%s: launcher returned %d", what, rc);
            EXPECT((int64_t)out[0] == want, "%s: %lld vs cpu %lld", what, (long long)out[0],
                   (long long)want);
        }
    std::vector<float> allneg(300, -INFINITY);
    std::vector<char> s(slim_cuda_sample_scratch_bytes(300));
    int32_t idx = -1;
    EXPECT(slim_cuda_argmax(allneg.data(), 300, &idx, s.data(), nullptr) == 0 && idx == 0,
           "all -inf: index 0 (got %d)", idx);
    EXPECT(slim_cuda_argmax(allneg.data(), 300, &idx, nullptr, nullptr) ==
               (int)cudaErrorInvalidValue,
           "NULL scratch");
    return true;
}

static bool t_topk() {
    for (int64_t n : {64, 1000, 20000, 262144})
        for (int k : {1, 7, 64})
            for (int kind = 0; kind < 2; kind++) {
                if (n == 262144 && (k != 64 || kind != 1)) continue; // emulation time
                std::vector<float> x = logits(n, kind);
                std::vector<int32_t> order(n);
                for (int64_t i = 0; i < n; i++)
                    order[i] = (int32_t)i;
                std::partial_sort(order.begin(), order.begin() + k, order.end(),
                                  [&](int32_t a, int32_t b) {
                                      const float va = clean(x[a]), vb = clean(x[b]);
                                      return va > vb || (va == vb && a < b);
                                  });
                std::vector<char> scratch(slim_cuda_sample_scratch_bytes(n));
                std::vector<float> out(2 * k);
                char what[64];
                snprintf(what, sizeof what, "topk n=%lld k=%d kind=%d", (long long)n, k, kind);
                int rc = 0;
                if (!all_policies_same(what, out, [&](std::vector<float> &o) {
                        std::vector<int32_t> oi(k, -7);
                        std::fill(o.begin(), o.end(), NAN);
                        memset(scratch.data(), 0xff, scratch.size());
                        rc |= slim_cuda_topk(x.data(), n, k, o.data(), oi.data(), scratch.data(),
                                             nullptr);
                        for (int j = 0; j < k; j++)
                            o[k + j] = (float)oi[j];
                    }))
                    return false;
                EXPECT(rc == 0, "%s: launcher returned %d", what, rc);
                for (int j = 0; j < k; j++) {
                    EXPECT((int32_t)out[k + j] == order[j], "%s: [%d] index %d vs cpu %d", what, j,
                           (int32_t)out[k + j], order[j]);
                    EXPECT(out[j] == clean(x[order[j]]), "%s: [%d] value %.9g vs %.9g", what, j,
                           out[j], x[order[j]]);
                }
            }
    std::vector<float> x(100, 1.0f), v(65);
    std::vector<int32_t> i(65);
    std::vector<char> s(slim_cuda_sample_scratch_bytes(100));
    EXPECT(slim_cuda_topk(x.data(), 100, 65, v.data(), i.data(), s.data(), nullptr) ==
               (int)cudaErrorInvalidValue,
           "k > 64");
    EXPECT(slim_cuda_topk(x.data(), 10, 11, v.data(), i.data(), s.data(), nullptr) ==
               (int)cudaErrorInvalidValue,
           "k > n");
    EXPECT(slim_cuda_topk(x.data(), 100, 3, v.data(), i.data(), s.data(), nullptr) == 0 &&
               i[0] == 0 && i[1] == 1 && i[2] == 2,
           "all equal: the lowest indices");
    return true;
}

static double g_softmax_worst;

static bool t_softmax() {
    for (int64_t n : {1, 255, 8193, 262144})
        for (float temp : {0.7f, 1.0f, 1.5f})
            for (int kind = 0; kind < 2; kind++) {
                if (n < 16 && kind == 1) continue;
                if (n == 262144 && temp != 0.7f) continue; // emulation time
                std::vector<float> x = logits(n, kind), ref(n), out(n);
                float m = -INFINITY;
                for (float v : x)
                    m = fmaxf(m, clean(v));
                double z = 0;
                for (int64_t i = 0; i < n; i++) {
                    ref[i] = expf((clean(x[i]) - m) / temp); // the CPU sampler's weights
                    z += ref[i];
                }
                for (auto &r : ref)
                    r = (float)(r / z);
                std::vector<char> scratch(slim_cuda_sample_scratch_bytes(n));
                char what[64];
                snprintf(what, sizeof what, "softmax n=%lld T=%g kind=%d", (long long)n, temp,
                         kind);
                int rc = 0;
                if (!all_policies_same(what, out, [&](std::vector<float> &o) {
                        std::fill(o.begin(), o.end(), NAN);
                        memset(scratch.data(), 0xff, scratch.size());
                        rc |= slim_cuda_softmax_temp(o.data(), x.data(), n, temp, scratch.data(),
                                                     nullptr);
                    }))
                    return false;
                EXPECT(rc == 0, "%s: launcher returned %d", what, rc);
                for (int64_t i = 0; i < n; i++) {
                    const double err = fabs((double)out[i] - ref[i]);
                    EXPECT(err <= 1e-6 * ref[i] + 1e-12, "%s: [%lld] %.9g vs cpu %.9g", what,
                           (long long)i, out[i], ref[i]);
                    if (ref[i] > 1e-30 && err / ref[i] > g_softmax_worst)
                        g_softmax_worst = err / ref[i];
                }
            }
    // In place.
    std::vector<float> x = logits(1000, 0), y(1000);
    std::vector<char> s(slim_cuda_sample_scratch_bytes(1000));
    EXPECT(slim_cuda_softmax_temp(y.data(), x.data(), 1000, 1.0f, s.data(), nullptr) == 0,
           "out of place");
    EXPECT(slim_cuda_softmax_temp(x.data(), x.data(), 1000, 1.0f, s.data(), nullptr) == 0 &&
               same_bits(x, y),
           "in place = out of place");
    EXPECT(slim_cuda_softmax_temp(y.data(), x.data(), 1000, 0.0f, s.data(), nullptr) ==
               (int)cudaErrorInvalidValue,
           "temperature 0");
    return true;
}

int main() {
    run("get_rows vs slim_cpu_get_row (+ scale) bitwise: 13 dtypes, ragged n, padded strides, "
        "repeated ids",
        t_get_rows);
    run("kv_store vs slim_cpu_kv_store bitwise: device pos0, overflow, subnormals, -0", t_kv_store);
    run("softcap within 2 ulp of cap * tanhf(x / cap)", t_softcap);
    run("argmax: first maximum, NaN as -inf, n up to 262144", t_argmax);
    run("top-k (k <= 64): sorted, ties to the lower index, n up to 262144", t_topk);
    run("softmax with temperature vs expf + double sum, n up to 262144, in place", t_softmax);
    printf("softmax max relative error %.2g\n", g_softmax_worst);
    printf("%d passed, %d failed\n", g_pass, g_fail);
    return g_fail ? 1 : 0;
}
