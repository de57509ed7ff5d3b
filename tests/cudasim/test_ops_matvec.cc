// test_ops_matvec.cc: activation quantization (quantize.cu) and the decode
// mat-vec for every weight format (matvec_*.cu) under the cudasim emulator,
// against the CPU backend's own code (the quant traits of lib/quant, linked
// in as C).  Every case runs under 4 policies x 3 seeds, outputs pre-filled
// with NaN, ragged sizes, and all runs must agree bitwise.
//
// Tolerances:
//   quantize_rows Q8_0/Q8_1/Q8_K: bitwise equal to the traits' from_float
//     (memcmp of the blocks): same amax, division, rounding and fp16 rounding.
//   matvec: |gpu - cpu| <= 1e-5 * sum_i |w_i x_i| + 1e-30, cpu = the traits'
//     vec_dot on the same quantized activation bytes, w_i / x_i the traits'
//     to_float of weight and activation.  The block values are computed with
//     the CPU's integer sums and float expression, so only the order of the
//     final float additions differs (<= ~n_blocks ulp of the partial sums;
//     the F32/F16/BF16 products differ in the order of all n additions, ~log2
//     n ulp in the butterfly); 1e-5 relative is ~170 ulp of that magnitude.
//     The measured maximum of |gpu - cpu| / sum|w x| is printed.
#include "cudasim.h"
#include "kernels.h"

extern "C" {
#include "core/fp16.h"
#include "quant/blocks.h"
#include "quant/dtype.h"
}

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include <string>
#include <vector>

#include "test_harness.h"
#include "ops_test_util.h"

static const int64_t ROWS[] = {1, 3, 17, 33};

// Bytes in a float vector (4-byte aligned storage, NaN-prefilled by the runs).
static unsigned char *bytes(std::vector<float> &v) { return (unsigned char *)v.data(); }

static void fill_acts(float *x, int64_t n, int kind) {
    for (int64_t i = 0; i < n; i++)
        x[i] = frand(-1.0f, 1.0f) * (rnd() % 16 == 0 ? 8.0f : 1.0f);
    if (kind == 1 && n >= 64) { // special blocks: zeros, a tie of opposite signs, constants
        for (int i = 0; i < 32; i++)
            x[i] = 0.0f;
        x[33] = -3.0f;
        x[40] = 3.0f;
        for (int i = 64; i < 96 && i < n; i++)
            x[i] = 0.5f;
    }
}

// ------------------------------------------------------------ quantize
static bool quant_case(slim_dtype vt, int64_t n, int64_t rows, size_t pad, int kind) {
    const slim_dtype_traits *tr = slim_dtype_traits_of(vt);
    const size_t row = slim_dtype_row_size(vt, n), stride = row + pad;
    AlignedBuf x(n * rows);
    fill_acts(x.p, n * rows, kind);
    if (kind == 1 && vt == SLIM_DTYPE_Q8_K && n >= 512) { // a zero super-block, a tie at 256+
        for (int i = 0; i < 256; i++)
            x.p[i] = 0.0f;
        x.p[300] = -9.0f;
        x.p[301] = 9.0f;
    }
    std::vector<float> ref((stride * rows + 3) / 4, NAN), out(ref.size());
    for (int64_t r = 0; r < rows; r++)
        tr->from_float(x.p + r * n, bytes(ref) + r * stride, n);
    char what[96];
    snprintf(what, sizeof what, "%s n=%lld rows=%lld pad=%zu kind=%d", tr->name, (long long)n,
             (long long)rows, pad, kind);
    int rc = 0;
    if (!all_policies_same(what, out, [&](std::vector<float> &o) {
            std::fill(o.begin(), o.end(), NAN);
            rc |= slim_cuda_quantize_rows(vt, o.data(), stride, x.p, n, rows, nullptr);
        }))
        return false;
    EXPECT(rc == 0, "%s: launcher returned %d", what, rc);
    for (int64_t r = 0; r < rows; r++)
        for (size_t b = 0; b < row; b++)
            EXPECT(bytes(out)[r * stride + b] == bytes(ref)[r * stride + b],
                   "%s: row %lld byte %zu: %02x vs cpu %02x", what, (long long)r, b,
                   bytes(out)[r * stride + b], bytes(ref)[r * stride + b]);
    return true;
}

static bool t_quantize() {
    const int64_t N32[] = {32, 96, 640, 4128};
    for (slim_dtype vt : {SLIM_DTYPE_Q8_0, SLIM_DTYPE_Q8_1})
        for (int64_t n : N32)
            for (int64_t rows : {1, 3, 17})
                for (int kind = 0; kind < 2; kind++)
                    if (!quant_case(vt, n, rows, rows == 3 ? 6 : 0, kind)) return false;
    for (int64_t n : {256, 768, 2304})
        for (int64_t rows : {1, 3, 17})
            for (int kind = 0; kind < 2; kind++)
                if (!quant_case(SLIM_DTYPE_Q8_K, n, rows, rows == 3 ? 8 : 0, kind)) return false;
    return true;
}

static bool t_quantize_args() {
    AlignedBuf x(512);
    std::vector<float> d(512);
    const int bad = (int)cudaErrorInvalidValue;
    EXPECT(slim_cuda_quantize_rows(SLIM_DTYPE_Q4_0, d.data(), 0, x.p, 32, 1, nullptr) == bad,
           "not a dot-product type");
    EXPECT(slim_cuda_quantize_rows(SLIM_DTYPE_Q8_0, d.data(), 0, x.p, 48, 1, nullptr) == bad,
           "n not a multiple of 32");
    EXPECT(slim_cuda_quantize_rows(SLIM_DTYPE_Q8_K, d.data(), 0, x.p, 288, 1, nullptr) == bad,
           "n not a multiple of 256");
    EXPECT(slim_cuda_quantize_rows(SLIM_DTYPE_Q8_0, d.data(), 0, x.p + 1, 32, 1, nullptr) == bad,
           "x not 16-byte aligned");
    EXPECT(slim_cuda_quantize_rows(SLIM_DTYPE_Q8_0, d.data(), 32, x.p, 32, 2, nullptr) == bad,
           "stride below the row size");
    EXPECT(slim_cuda_quantize_rows(SLIM_DTYPE_Q8_K, bytes(d) + 2, 292, x.p, 256, 1, nullptr) == bad,
           "Q8_K dst not 4-byte aligned");
    EXPECT(slim_cuda_quantize_rows(SLIM_DTYPE_Q8_0, d.data(), 34, x.p, 0, 2, nullptr) == 0,
           "n = 0 is a no-op");
    EXPECT(slim_cuda_quantize_rows(SLIM_DTYPE_Q8_0, d.data(), 34, x.p, 32, -1, nullptr) == bad,
           "negative rows");
    return true;
}

// ------------------------------------------------------------ matvec
static double g_worst[40]; // max |gpu - cpu| / sum|w x| per dtype

// K-quants have no quantizer: random bytes with sane fp16 scales.
static void random_k_block(slim_dtype t, unsigned char *b) {
    const size_t size = slim_dtype_traits_of(t)->type_size;
    for (size_t i = 0; i < size; i++)
        b[i] = (unsigned char)rnd();
    auto put = [&](size_t off, float v) {
        const uint16_t h = slim_f32_to_fp16(v);
        memcpy(b + off, &h, 2);
    };
    if (t == SLIM_DTYPE_Q4_K || t == SLIM_DTYPE_Q5_K) {
        put(0, frand(0.001f, 0.01f));
        put(2, frand(0.0f, 0.01f));
    } else if (t == SLIM_DTYPE_Q6_K) {
        put(208, frand(0.0005f, 0.005f));
    }
}

static bool is_k(slim_dtype t) {
    return t == SLIM_DTYPE_Q4_K || t == SLIM_DTYPE_Q5_K || t == SLIM_DTYPE_Q6_K;
}

// w_offset: the weight buffer's shift (2: only 2-byte aligned); pad: extra
// bytes between rows; x_offset: the activation's shift (Q8_0: 2).
static bool matvec_case(slim_dtype t, int64_t n, int64_t rows, size_t w_offset, size_t pad,
                        size_t x_offset) {
    const slim_dtype_traits *tr = slim_dtype_traits_of(t);
    const slim_dtype vt = tr->vec_dot_type;
    const slim_dtype_traits *vtr = slim_dtype_traits_of(vt);
    const size_t row = slim_dtype_row_size(t, n), stride = row + pad;
    std::vector<float> wstore((stride * rows + w_offset + 64) / 4 + 4);
    unsigned char *w = bytes(wstore) + w_offset;
    memset(w, 0xAB, stride * rows);
    std::vector<float> wf(n), wrow(n), xf(n), xd(n), ref(rows), mag(rows), out(rows);
    fill_acts(xf.data(), n, 0);
    const size_t xrow = slim_dtype_row_size(vt, n);
    std::vector<float> xstore((xrow + x_offset + 64) / 4 + 4);
    unsigned char *xq = bytes(xstore) + x_offset;
    vtr->from_float(xf.data(), xq, n);
    vtr->to_float(xq, xd.data(), n);
    for (int64_t r = 0; r < rows; r++) {
        unsigned char *wr = w + r * stride;
        if (is_k(t)) {
            for (int64_t b = 0; b < n / 256; b++)
                random_k_block(t, wr + b * tr->type_size);
        } else {
            for (auto &v : wf)
                v = frand(-0.1f, 0.1f) * (rnd() % 16 == 0 ? 10.0f : 1.0f); // a few outliers
            tr->from_float(wf.data(), wr, n);
        }
        tr->to_float(wr, wrow.data(), n);
        ref[r] = tr->vec_dot(n, wr, xq);
        double a = 0;
        for (int64_t i = 0; i < n; i++)
            a += fabs((double)wrow[i] * xd[i]);
        mag[r] = (float)a;
    }
    char what[112];
    snprintf(what, sizeof what, "%s n=%lld rows=%lld w_offset=%zu pad=%zu x_offset=%zu", tr->name,
             (long long)n, (long long)rows, w_offset, pad, x_offset);
    int rc = 0;
    if (!all_policies_same(what, out, [&](std::vector<float> &o) {
            std::fill(o.begin(), o.end(), NAN);
            rc |= slim_cuda_matvec(t, o.data(), w, stride, xq, n, rows, nullptr);
        }))
        return false;
    EXPECT(rc == 0, "%s: launcher returned %d", what, rc);
    for (int64_t r = 0; r < rows; r++) {
        const double err = fabs((double)out[r] - ref[r]);
        EXPECT(err <= 1e-5 * mag[r] + 1e-30, "%s: row %lld: %.9g vs cpu %.9g (sum|wx| %.3g)", what,
               (long long)r, out[r], ref[r], mag[r]);
        if (mag[r] > 0 && err / mag[r] > g_worst[t]) g_worst[t] = err / mag[r];
    }
    return true;
}

static bool t_matvec_legacy() {
    const slim_dtype types[] = {SLIM_DTYPE_Q8_0, SLIM_DTYPE_Q4_0, SLIM_DTYPE_Q4_1, SLIM_DTYPE_Q5_0,
                                SLIM_DTYPE_Q5_1};
    const int64_t NBS[] = {1, 3, 7, 20, 33, 129}; // n = 32 .. 4128
    for (slim_dtype t : types) {
        const size_t xo = slim_dtype_traits_of(t)->vec_dot_type == SLIM_DTYPE_Q8_0 ? 2 : 0;
        for (int64_t nb : NBS)
            for (int64_t rows : ROWS)
                if (!matvec_case(t, nb * 32, rows, 0, 0, 0)) return false;
        if (!matvec_case(t, 20 * 32, 17, 2, 0, xo)) return false; // 2-byte aligned w and x
        if (!matvec_case(t, 13 * 32, 3, 2, 6, xo)) return false;  // padded stride
        if (!matvec_case(t, 33 * 32, 5, 0, 34 * 3, 0)) return false;
    }
    return true;
}

static bool t_matvec_k() {
    const slim_dtype types[] = {SLIM_DTYPE_Q4_K, SLIM_DTYPE_Q5_K, SLIM_DTYPE_Q6_K};
    for (slim_dtype t : types) {
        for (int64_t n : {256, 768, 2304})
            for (int64_t rows : ROWS)
                if (!matvec_case(t, n, rows, 0, 0, 0)) return false;
        const size_t wo = t == SLIM_DTYPE_Q6_K ? 2 : 0; // Q6_K rows are only 2-byte aligned
        if (!matvec_case(t, 1280, 5, wo, t == SLIM_DTYPE_Q6_K ? 2 : 12, 0)) return false;
    }
    return true;
}

static bool t_matvec_float() {
    const slim_dtype types[] = {SLIM_DTYPE_F32, SLIM_DTYPE_F16, SLIM_DTYPE_BF16};
    for (slim_dtype t : types) {
        for (int64_t n : {8, 40, 264, 1000, 4104})
            for (int64_t rows : ROWS)
                if (!matvec_case(t, n, rows, 0, 0, 0)) return false;
        if (!matvec_case(t, 520, 5, 0, 48, 0)) return false; // padded stride
    }
    return true;
}

// A small batch (slim_cuda_matvec_tokens, 1..8 activation rows at a padded
// stride): every token's outputs bitwise the one-token mat-vec's on its row.
static bool t_matvec_tokens() {
    const slim_dtype types[] = {SLIM_DTYPE_F32,  SLIM_DTYPE_F16,  SLIM_DTYPE_BF16, SLIM_DTYPE_Q8_0,
                                SLIM_DTYPE_Q4_0, SLIM_DTYPE_Q4_1, SLIM_DTYPE_Q5_0, SLIM_DTYPE_Q5_1,
                                SLIM_DTYPE_Q4_K, SLIM_DTYPE_Q5_K, SLIM_DTYPE_Q6_K};
    for (slim_dtype t : types) {
        const slim_dtype_traits *tr = slim_dtype_traits_of(t);
        const slim_dtype_traits *vtr = slim_dtype_traits_of(tr->vec_dot_type);
        const int64_t n = is_k(t) ? 512 : 320, rows = 7;
        const size_t row = slim_dtype_row_size(t, n),
                     xrow = slim_dtype_row_size(tr->vec_dot_type, n);
        const size_t xstride = (xrow + 16 + 15) / 16 * 16; // padded, 16-byte aligned
        std::vector<float> wstore((row * rows + 64) / 4 + 4), xstore((xstride * 8 + 64) / 4 + 4);
        unsigned char *w = bytes(wstore), *xq = bytes(xstore);
        std::vector<float> wf(n), xf(n);
        for (int64_t r = 0; r < rows; r++) {
            if (is_k(t)) {
                for (int64_t b = 0; b < n / 256; b++)
                    random_k_block(t, w + r * row + b * tr->type_size);
            } else {
                for (auto &v : wf)
                    v = frand(-0.1f, 0.1f);
                tr->from_float(wf.data(), w + r * row, n);
            }
        }
        for (int k = 0; k < 8; k++) {
            fill_acts(xf.data(), n, k);
            vtr->from_float(xf.data(), xq + k * xstride, n);
        }
        std::vector<float> one((size_t)8 * rows);
        for (int k = 0; k < 8; k++)
            EXPECT(slim_cuda_matvec(t, one.data() + k * rows, w, row, xq + k * xstride, n, rows,
                                    nullptr) == 0,
                   "%s: one token", tr->name);
        for (int64_t nt = 1; nt <= 8; nt++) {
            char what[64];
            snprintf(what, sizeof what, "%s tokens=%lld", tr->name, (long long)nt);
            std::vector<float> out((size_t)nt * rows);
            int rc = 0;
            if (!all_policies_same(what, out, [&](std::vector<float> &o) {
                    std::fill(o.begin(), o.end(), NAN);
                    rc |= slim_cuda_matvec_tokens(t, o.data(), w, row, xq, xstride, n, rows, nt,
                                                  nullptr);
                }))
                return false;
            EXPECT(rc == 0, "%s: launcher returned %d", what, rc);
            EXPECT(memcmp(out.data(), one.data(), out.size() * sizeof(float)) == 0,
                   "%s: differs from the one-token mat-vec", what);
        }
        EXPECT(slim_cuda_matvec_tokens(t, one.data(), w, row, xq, xstride, n, rows, 9, nullptr) ==
                   (int)cudaErrorInvalidValue,
               "%s: 9 tokens accepted", tr->name);
    }
    return true;
}

static bool t_matvec_args() {
    std::vector<float> w(4096), x(1024), y(4);
    const int bad = (int)cudaErrorInvalidValue;
    EXPECT(slim_cuda_matvec(SLIM_DTYPE_Q2_K, y.data(), w.data(), 84, x.data(), 256, 1, nullptr) ==
               bad,
           "unsupported dtype");
    EXPECT(!slim_cuda_matvec_supported(SLIM_DTYPE_Q8_K) &&
               slim_cuda_matvec_supported(SLIM_DTYPE_Q6_K),
           "supported()");
    EXPECT(slim_cuda_matvec(SLIM_DTYPE_Q8_0, y.data(), w.data(), 68, x.data(), 48, 2, nullptr) ==
               bad,
           "n not a multiple of 32");
    EXPECT(slim_cuda_matvec(SLIM_DTYPE_Q4_K, y.data(), w.data(), 144, x.data(), 128, 1, nullptr) ==
               bad,
           "n not a multiple of 256");
    EXPECT(slim_cuda_matvec(SLIM_DTYPE_Q8_0, y.data(), bytes(w) + 1, 68, x.data(), 64, 2,
                            nullptr) == bad,
           "odd weight address");
    EXPECT(slim_cuda_matvec(SLIM_DTYPE_Q4_K, y.data(), bytes(w) + 2, 144, x.data(), 256, 1,
                            nullptr) == bad,
           "Q4_K weight not 4-byte aligned");
    EXPECT(slim_cuda_matvec(SLIM_DTYPE_Q4_1, y.data(), w.data(), 40, bytes(x) + 2, 64, 1,
                            nullptr) == bad,
           "Q8_1 activation not 4-byte aligned");
    EXPECT(slim_cuda_matvec(SLIM_DTYPE_F32, y.data(), w.data(), 64, x.data() + 1, 16, 2, nullptr) ==
               bad,
           "f32 x not 16-byte aligned");
    EXPECT(slim_cuda_matvec(SLIM_DTYPE_F16, y.data(), w.data(), 40, x.data(), 16, 2, nullptr) ==
               bad,
           "f16 stride not 16-byte aligned");
    EXPECT(slim_cuda_matvec(SLIM_DTYPE_Q8_0, y.data(), w.data(), 66, x.data(), 64, 2, nullptr) ==
               bad,
           "row stride below the row size");
    EXPECT(slim_cuda_matvec(SLIM_DTYPE_Q8_0, y.data(), w.data(), 68, x.data(), 64, 0, nullptr) == 0,
           "no rows is a no-op");
    EXPECT(slim_cuda_matvec(SLIM_DTYPE_Q8_0, y.data(), w.data(), 68, x.data(), -32, 1, nullptr) ==
               bad,
           "negative n");
    return true;
}

// The GPU quantizer feeding the mat-vec: the whole decode path vs the CPU's
// matmul order of operations (from_float, then vec_dot).
static bool t_quantize_then_matvec() {
    const slim_dtype types[] = {SLIM_DTYPE_Q4_0, SLIM_DTYPE_Q5_1, SLIM_DTYPE_Q6_K};
    for (slim_dtype t : types) {
        const slim_dtype_traits *tr = slim_dtype_traits_of(t);
        const int64_t n = 768, rows = 9;
        const size_t row = slim_dtype_row_size(t, n);
        std::vector<unsigned char> w(row * rows);
        std::vector<float> wf(n);
        for (int64_t r = 0; r < rows; r++) {
            if (is_k(t)) {
                for (int64_t b = 0; b < n / 256; b++)
                    random_k_block(t, w.data() + r * row + b * tr->type_size);
            } else {
                fill(wf, -0.1f, 0.1f);
                tr->from_float(wf.data(), w.data() + r * row, n);
            }
        }
        AlignedBuf x(n);
        fill_acts(x.p, n, 0);
        std::vector<float> xq((slim_dtype_row_size(tr->vec_dot_type, n) + 3) / 4), ref(rows),
            out(rows);
        slim_dtype_traits_of(tr->vec_dot_type)->from_float(x.p, xq.data(), n);
        for (int64_t r = 0; r < rows; r++)
            ref[r] = tr->vec_dot(n, w.data() + r * row, xq.data());
        std::vector<float> gq(xq.size());
        int rc = 0;
        if (!all_policies_same(tr->name, out, [&](std::vector<float> &o) {
                std::fill(o.begin(), o.end(), NAN);
                std::fill(gq.begin(), gq.end(), NAN);
                rc |= slim_cuda_quantize_rows(tr->vec_dot_type, gq.data(), 0, x.p, n, 1, nullptr);
                rc |= slim_cuda_matvec(t, o.data(), w.data(), row, gq.data(), n, rows, nullptr);
            }))
            return false;
        EXPECT(rc == 0, "%s: launchers returned %d", tr->name, rc);
        EXPECT(memcmp(gq.data(), xq.data(), slim_dtype_row_size(tr->vec_dot_type, n)) == 0,
               "%s: GPU activation bytes differ", tr->name);
        for (int64_t r = 0; r < rows; r++)
            EXPECT(fabsf(out[r] - ref[r]) <= 1e-5f * (fabsf(ref[r]) + 1.0f),
                   "%s row %lld: %.9g vs %.9g", tr->name, (long long)r, out[r], ref[r]);
    }
    return true;
}

int main() {
    run("quantize_rows Q8_0/Q8_1/Q8_K bitwise vs traits from_float: ragged n, rows 1/3/17, "
        "padded strides, zero blocks, ties",
        t_quantize);
    run("quantize_rows: invalid arguments rejected", t_quantize_args);
    run("matvec Q8_0/Q4_0/Q4_1/Q5_0/Q5_1 vs traits vec_dot: 1..129 blocks, rows 1/3/17/33, "
        "2-byte aligned w/x, strides",
        t_matvec_legacy);
    run("matvec Q4_K/Q5_K/Q6_K vs traits vec_dot: n 256/768/2304/1280, rows 1/3/17/33, strides",
        t_matvec_k);
    run("matvec F32/F16/BF16 vs traits vec_dot: n 8..4104, rows 1/3/17/33, strides",
        t_matvec_float);
    run("matvec: invalid arguments rejected", t_matvec_args);
    run("matvec of 1..8 tokens (a batched decode step), 11 types: each token bitwise the "
        "one-token mat-vec",
        t_matvec_tokens);
    run("quantize_rows + matvec = the CPU matmul's from_float + vec_dot", t_quantize_then_matvec);
    printf("max |gpu - cpu| / sum|w x|:");
    for (int t = 0; t < 40; t++)
        if (g_worst[t] > 0) printf(" %s %.2g", slim_dtype_name(t), g_worst[t]);
    printf("\n%d passed, %d failed\n", g_pass, g_fail);
    return g_fail ? 1 : 0;
}
