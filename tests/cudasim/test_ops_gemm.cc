// test_ops_gemm.cc: the prefill GEMM (slim_cuda_gemm: kernels/gemm_*.cu) and
// the cuBLAS path (slim_cuda_gemm_cublas, against tests/cudasim/cublas_sim.cc)
// under the cudasim emulator, against the CPU's own dot products (lib/quant,
// compiled as C and linked in).  Every case runs under 4 policies x 3 seeds
// and must agree bitwise across them; shared memory is poisoned, outputs are
// pre-filled with NaN; sizes are ragged (rows 1, 17, 65 = tile + 1; tokens 2,
// 5, 17, 33 = tile + 1; n one block, a stage, a stage + 1 block, ...).
//
// Tolerances:
//   quantized weights: bitwise equal to the CPU's scalar reference dot
//     (slim_vec_dot_*_ref; for Q5_1 and Q5_K the traits' vec_dot, which is
//     scalar) on the same quantized activations: the kernel computes the same
//     integer block sums exactly (small integers in f16, exact f32 mma sums)
//     and the same float scaling in the same block order.  Also
//     |gpu - vec_dot| <= 1e-5 * sum_i |w_i x_i| against the traits' vec_dot
//     (which may be an AVX2 path that sums in another order); measured max
//     relative error printed.
//   float weights (F32, F16, BF16; f32 FMA kernel): |gpu - vec_dot| <=
//     1e-5 * sum_i |w_i x_i| (both are f32 sums of the same exact products
//     in different orders: error ~ sqrt(n) * 2^-24 relative to sum |w x|).
//   cuBLAS path: |gpu - cpu| <= 2^-9 * sum_i |w_i x_i|, cpu = the traits'
//     vec_dot on f32 x (F32 weights: 1e-5): x and the dequantized weights are
//     each rounded to f16 (relative 2^-11 each), so each product is off by at
//     most ~2^-10 relative; 2^-9 leaves room for f32 summation.
//   cuBLAS stand-in: against a naive double triple loop over the same f16
//     inputs, |c - ref| <= 1e-5 * sum |a b| + 1e-6 |C| (f32 accumulation).
#include "cudasim.h"
#include "kernels.h"
#include "gemm.cuh"

#include <cublas_v2.h>

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

// The scalar reference dot of each quantized type (bitwise target).
static slim_vec_dot_fn ref_dot(slim_dtype t) {
    switch (t) {
    case SLIM_DTYPE_Q4_0: return slim_vec_dot_q4_0_q8_0_ref;
    case SLIM_DTYPE_Q4_1: return slim_vec_dot_q4_1_q8_1_ref;
    case SLIM_DTYPE_Q5_0: return slim_vec_dot_q5_0_q8_0_ref;
    case SLIM_DTYPE_Q8_0: return slim_vec_dot_q8_0_q8_0_ref;
    case SLIM_DTYPE_Q4_K: return slim_vec_dot_q4_k_q8_k_ref;
    case SLIM_DTYPE_Q5_K: return slim_vec_dot_q5_k_q8_k_ref;
    case SLIM_DTYPE_Q6_K: return slim_vec_dot_q6_k_q8_k_ref;
    default: return slim_dtype_traits_of(t)->vec_dot; // Q5_1: scalar only
    }
}

static bool is_kquant(slim_dtype t) {
    return t == SLIM_DTYPE_Q4_K || t == SLIM_DTYPE_Q5_K || t == SLIM_DTYPE_Q6_K;
}

// n_rows weight rows of n at stride bytes: from random floats through the
// traits' from_float, or (K-quants, which slim cannot quantize to) random
// bytes with small f16 super-block scales.
static void make_weights(slim_dtype t, unsigned char *w, size_t stride, int64_t n, int64_t rows) {
    const slim_dtype_traits *tr = slim_dtype_traits_of(t);
    std::vector<float> f(n);
    for (int64_t r = 0; r < rows; r++) {
        unsigned char *row = w + r * stride;
        if (!is_kquant(t)) {
            for (auto &v : f)
                v = frand(-0.1f, 0.1f) * (rnd() % 16 == 0 ? 10.0f : 1.0f); // a few outliers
            tr->from_float(f.data(), row, n);
            continue;
        }
        const size_t bytes = slim_dtype_row_size(t, n);
        for (size_t i = 0; i < bytes; i++)
            row[i] = (unsigned char)rnd();
        for (int64_t b = 0; b < n / 256; b++) {
            unsigned char *blk = row + b * tr->type_size;
            const uint16_t d = slim_f32_to_fp16(frand(1e-4f, 2e-3f));
            const uint16_t dmin = slim_f32_to_fp16(frand(1e-4f, 2e-3f));
            if (t == SLIM_DTYPE_Q6_K) {
                memcpy(blk + 208, &d, 2);
            } else {
                memcpy(blk, &d, 2);
                memcpy(blk + 2, &dmin, 2);
            }
        }
    }
}

struct GemmData {
    slim_dtype type;
    int64_t n, rows, tokens;
    size_t ws, xs;
    std::vector<unsigned char> wbuf, xbuf;
    unsigned char *w, *xq;
    std::vector<float> xf; // f32 activations [tokens][n]
};

// w_offset: shift of the weight buffer from 64-byte alignment; pad: extra bytes per row.
static void make_data(GemmData &d, slim_dtype t, int64_t n, int64_t rows, int64_t tokens,
                      size_t w_offset, size_t pad) {
    const slim_dtype_traits *tr = slim_dtype_traits_of(t);
    const slim_dtype xt = tr->vec_dot_type;
    d.type = t;
    d.n = n;
    d.rows = rows;
    d.tokens = tokens;
    d.ws = slim_dtype_row_size(t, n) + pad;
    d.xs = slim_dtype_row_size(xt, n) + (pad ? 4 : 0);
    d.wbuf.assign(d.ws * rows + w_offset + 64, 0xAB);
    d.xbuf.assign(d.xs * tokens + 64, 0xCD);
    d.w = d.wbuf.data() + ((64 - ((uintptr_t)d.wbuf.data() & 63)) & 63) + w_offset;
    d.xq = d.xbuf.data() + ((64 - ((uintptr_t)d.xbuf.data() & 63)) & 63);
    make_weights(t, d.w, d.ws, n, rows);
    d.xf.resize(n * tokens);
    fill(d.xf, -1.0f, 1.0f);
    for (int64_t i = 0; i < n * tokens; i += 97)
        d.xf[i] *= 8.0f; // outliers set the Q8 scales
    for (int64_t tk = 0; tk < tokens; tk++)
        slim_dtype_traits_of(xt)->from_float(d.xf.data() + tk * n, d.xq + tk * d.xs, n);
}

// sum_i |w_i x_i| per (row, token), from the dequantized weights and activations.
static std::vector<double> magnitudes(const GemmData &d, bool quantized_x) {
    const slim_dtype_traits *tr = slim_dtype_traits_of(d.type);
    std::vector<float> wr(d.n), xr(d.n);
    std::vector<double> mag(d.rows * d.tokens);
    for (int64_t t = 0; t < d.tokens; t++) {
        if (quantized_x)
            slim_dtype_traits_of(tr->vec_dot_type)->to_float(d.xq + t * d.xs, xr.data(), d.n);
        else
            memcpy(xr.data(), d.xf.data() + t * d.n, d.n * sizeof(float));
        for (int64_t r = 0; r < d.rows; r++) {
            tr->to_float(d.w + r * d.ws, wr.data(), d.n);
            double a = 0;
            for (int64_t i = 0; i < d.n; i++)
                a += fabs((double)wr[i] * xr[i]);
            mag[t * d.rows + r] = a;
        }
    }
    return mag;
}

static double g_max_rel[SLIM_DTYPE_COUNT], g_max_rel_cublas[SLIM_DTYPE_COUNT];

static bool gemm_case(slim_dtype t, int64_t n, int64_t rows, int64_t tokens, size_t w_offset = 0,
                      size_t pad = 0) {
    GemmData d;
    make_data(d, t, n, rows, tokens, w_offset, pad);
    const slim_dtype_traits *tr = slim_dtype_traits_of(t);
    char what[128];
    snprintf(what, sizeof what, "%s n=%lld rows=%lld tokens=%lld w_offset=%zu pad=%zu", tr->name,
             (long long)n, (long long)rows, (long long)tokens, w_offset, pad);
    std::vector<float> out(rows * tokens);
    int rc = 0;
    if (!all_policies_same(what, out, [&](std::vector<float> &o) {
            std::fill(o.begin(), o.end(), NAN);
            rc |= slim_cuda_gemm(t, o.data(), d.w, d.ws, d.xq, d.xs, n, rows, tokens, nullptr);
            rc |= (int)cudaDeviceSynchronize(); // CUDASIM_DEFERRED=1 runs work only here
        }))
        return false;
    EXPECT(rc == 0, "%s: launcher returned %d", what, rc);
    const std::vector<double> mag = magnitudes(d, tr->quantized);
    for (int64_t tk = 0; tk < tokens; tk++)
        for (int64_t r = 0; r < rows; r++) {
            const float g = out[tk * rows + r];
            const unsigned char *wr = d.w + r * d.ws, *xr = d.xq + tk * d.xs;
            const float cpu = tr->vec_dot(n, wr, xr);
            const double m = mag[tk * rows + r], err = fabs((double)g - cpu);
            EXPECT(err <= 1e-5 * m, "%s: row %lld token %lld: %.9g vs vec_dot %.9g (sum|wx| %.3g)",
                   what, (long long)r, (long long)tk, g, cpu, m);
            if (m > 0 && err / m > g_max_rel[t]) g_max_rel[t] = err / m;
            if (tr->quantized) {
                const float ref = ref_dot(t)(n, wr, xr);
                EXPECT(memcmp(&g, &ref, 4) == 0,
                       "%s: row %lld token %lld: %.9g not bitwise the reference dot %.9g", what,
                       (long long)r, (long long)tk, g, ref);
            }
        }
    return true;
}

static const slim_dtype LEGACY[] = {SLIM_DTYPE_Q4_0, SLIM_DTYPE_Q4_1, SLIM_DTYPE_Q5_0,
                                    SLIM_DTYPE_Q5_1, SLIM_DTYPE_Q8_0};
static const slim_dtype KQUANTS[] = {SLIM_DTYPE_Q4_K, SLIM_DTYPE_Q5_K, SLIM_DTYPE_Q6_K};
static const slim_dtype FLOATS[] = {SLIM_DTYPE_F32, SLIM_DTYPE_F16, SLIM_DTYPE_BF16};

struct Shape {
    int64_t blocks, rows, tokens;
};
// Rows 1 / 17 / 65 (a tile + 1), tokens 2 / 5 / 17 / 33 (a tile + 1); blocks:
// one, a stage (8 legacy blocks), a stage + 1, several stages.
static const Shape SHAPES[] = {{1, 1, 2},  {1, 17, 5},  {3, 65, 17}, {8, 17, 33}, {9, 65, 5},
                               {9, 1, 33}, {17, 17, 2}, {2, 65, 33}, {20, 3, 17}};

static bool t_gemm_legacy() {
    for (slim_dtype t : LEGACY) {
        for (const Shape &s : SHAPES)
            if (!gemm_case(t, 32 * s.blocks, s.rows, s.tokens)) return false;
        // 2-byte aligned weights (no 16-byte staging) and padded row strides.
        if (!gemm_case(t, 32 * 9, 17, 5, 2, 0)) return false;
        if (!gemm_case(t, 32 * 3, 5, 3, 0, 6)) return false;
    }
    return true;
}

static bool t_gemm_kquant() {
    const Shape shapes[] = {{1, 1, 2}, {1, 17, 5}, {2, 65, 17}, {3, 17, 33}, {1, 65, 33}};
    for (slim_dtype t : KQUANTS) {
        for (const Shape &s : shapes)
            if (!gemm_case(t, 256 * s.blocks, s.rows, s.tokens)) return false;
        if (!gemm_case(t, 512, 17, 5, 2, 0)) return false;
        if (!gemm_case(t, 256, 5, 3, 0, 10)) return false;
    }
    return true;
}

static bool t_gemm_float() {
    const int64_t NS[] = {1, 31, 33, 200};
    const int64_t ROWS[] = {1, 17, 65};
    const int64_t TOKS[] = {2, 5, 33};
    for (slim_dtype t : FLOATS)
        for (int64_t n : NS)
            for (int64_t rows : ROWS)
                for (int64_t tokens : TOKS)
                    if ((n + rows + tokens) % 2 == 0 || n == 200) // half the grid, all n = 200
                        if (!gemm_case(t, n, rows, tokens)) return false;
    return true;
}

static bool t_gemm_args() {
    std::vector<unsigned char> w(4096, 0), x(4096, 0);
    float y[4];
    const int bad = (int)cudaErrorInvalidValue;
    unsigned char *wa = w.data() + ((64 - ((uintptr_t)w.data() & 63)) & 63);
    unsigned char *xa = x.data() + ((64 - ((uintptr_t)x.data() & 63)) & 63);
    EXPECT(slim_cuda_gemm(SLIM_DTYPE_Q8_0, y, wa, 34, xa, 34, 48, 2, 2, nullptr) == bad,
           "n not a multiple of 32");
    EXPECT(slim_cuda_gemm(SLIM_DTYPE_Q4_K, y, wa, 144, xa, 292, 128, 2, 2, nullptr) == bad,
           "K-quant n not a multiple of 256");
    EXPECT(slim_cuda_gemm(SLIM_DTYPE_Q2_K, y, wa, 84, xa, 292, 256, 2, 2, nullptr) == bad,
           "unsupported type (Q2_K)");
    EXPECT(slim_cuda_gemm(SLIM_DTYPE_Q8_K, y, wa, 292, xa, 292, 256, 2, 2, nullptr) == bad,
           "Q8_K is not a weight type");
    EXPECT(slim_cuda_gemm(SLIM_DTYPE_Q8_0, y, wa, 32, xa, 34, 32, 2, 2, nullptr) == bad,
           "weight stride below the row size");
    EXPECT(slim_cuda_gemm(SLIM_DTYPE_Q8_0, y, wa, 34, xa, 32, 32, 2, 2, nullptr) == bad,
           "activation stride below the row size");
    EXPECT(slim_cuda_gemm(SLIM_DTYPE_Q8_0, y, wa + 1, 34, xa, 34, 32, 2, 2, nullptr) == bad,
           "odd weight address");
    EXPECT(slim_cuda_gemm(SLIM_DTYPE_Q4_K, y, wa, 144, xa + 2, 292, 256, 2, 2, nullptr) == bad,
           "Q8_K activations not 4-byte aligned");
    EXPECT(slim_cuda_gemm(SLIM_DTYPE_F32, y, wa + 2, 8, xa, 8, 2, 2, 2, nullptr) == bad,
           "F32 weights not 4-byte aligned");
    EXPECT(slim_cuda_gemm(SLIM_DTYPE_Q8_0, y, wa, 34, xa, 34, 0, 2, 2, nullptr) == bad, "n = 0");
    EXPECT(slim_cuda_gemm(SLIM_DTYPE_Q8_0, y, wa, 34, xa, 34, 32, -1, 2, nullptr) == bad,
           "negative rows");
    y[0] = 7.0f;
    EXPECT(slim_cuda_gemm(SLIM_DTYPE_Q8_0, y, wa, 34, xa, 34, 32, 0, 2, nullptr) == 0,
           "no rows is a no-op");
    EXPECT(slim_cuda_gemm(SLIM_DTYPE_Q8_0, y, wa, 34, xa, 34, 32, 2, 0, nullptr) == 0,
           "no tokens is a no-op");
    EXPECT(y[0] == 7.0f, "a no-op wrote");
    return true;
}

// Planted bug: gemm_q.cu recompiled here without the barrier before the
// stage is refilled (GM_REFILL_SYNC).  Under the greedy policy a warp then
// refills the shared tiles while others still read the previous stage.
#undef GM_REFILL_SYNC
#define GM_REFILL_SYNC() ((void)0)
namespace planted {
#include "gemm_q.cu"
}
#undef GM_REFILL_SYNC
#define GM_REFILL_SYNC() __syncthreads()

static bool t_planted_refill_race() {
    GemmData d;
    make_data(d, SLIM_DTYPE_Q8_0, 32 * 17, 65, 33, 0, 0); // 3 stages
    std::vector<float> good(d.rows * d.tokens), bad(d.rows * d.tokens);
    cudasim::set_policy(cudasim::POLICY_IN_ORDER, 1);
    EXPECT(slim_cuda_gemm(SLIM_DTYPE_Q8_0, good.data(), d.w, d.ws, d.xq, d.xs, d.n, d.rows,
                          d.tokens, nullptr) == 0 &&
               cudaDeviceSynchronize() == cudaSuccess,
           "reference run");
    bool caught = false;
    for (uint64_t seed = 1; seed <= 3 && !caught; seed++) {
        cudasim::set_policy(cudasim::POLICY_GREEDY, seed);
        std::fill(bad.begin(), bad.end(), NAN);
        planted::slim_gemm_legacy(SLIM_DTYPE_Q8_0, bad.data(), d.w, d.ws, d.xq, d.xs, d.n, d.rows,
                                  d.tokens, nullptr);
        (void)cudaDeviceSynchronize();
        caught = !same_bits(good, bad) || !cudasim::take_error().empty();
    }
    EXPECT(caught, "the missing refill barrier went unnoticed under greedy");
    return true;
}

// ------------------------------------------------------------ the cuBLAS stand-in
static float to_type(float v, cudaDataType t) {
    if (t == CUDA_R_16F) return __half2float(__float2half_rn(v));
    if (t == CUDA_R_16BF) return __bfloat162float(__float2bfloat16_rn(v));
    return v;
}
static void put(std::vector<unsigned char> &buf, cudaDataType t, size_t i, float v) {
    if (t == CUDA_R_16F) {
        __half h = __float2half_rn(v);
        memcpy(buf.data() + 2 * i, &h, 2);
    } else if (t == CUDA_R_16BF) {
        __nv_bfloat16 h = __float2bfloat16_rn(v);
        memcpy(buf.data() + 2 * i, &h, 2);
    } else {
        memcpy(buf.data() + 4 * i, &v, 4);
    }
}
static float get(const std::vector<unsigned char> &buf, cudaDataType t, size_t i) {
    if (t == CUDA_R_16F) {
        __half h;
        memcpy(&h, buf.data() + 2 * i, 2);
        return __half2float(h);
    }
    if (t == CUDA_R_16BF) {
        __nv_bfloat16 h;
        memcpy(&h, buf.data() + 2 * i, 2);
        return __bfloat162float(h);
    }
    float f;
    memcpy(&f, buf.data() + 4 * i, 4);
    return f;
}
static size_t tsize(cudaDataType t) { return t == CUDA_R_32F ? 4 : 2; }

// One (strided batched) product against a double triple loop over the same
// converted inputs.
static bool standin_case(cublasHandle_t h, cudaDataType at, cudaDataType ct, cublasOperation_t ta,
                         cublasOperation_t tb, int m, int n, int k, float alpha, float beta,
                         int batch) {
    const int ra = ta == CUBLAS_OP_N ? m : k, ca = ta == CUBLAS_OP_N ? k : m;
    const int rb = tb == CUBLAS_OP_N ? k : n, cb = tb == CUBLAS_OP_N ? n : k;
    const int lda = ra + 3, ldb = rb + 1, ldc = m + 2;
    const long long sa = (long long)lda * ca + 5, sb = (long long)ldb * cb + 3,
                    sc = (long long)ldc * n + 7;
    std::vector<unsigned char> A(sa * batch * tsize(at)), B(sb * batch * tsize(at)),
        C(sc * batch * tsize(ct));
    for (size_t i = 0; i < A.size() / tsize(at); i++)
        put(A, at, i, frand(-1, 1));
    for (size_t i = 0; i < B.size() / tsize(at); i++)
        put(B, at, i, frand(-1, 1));
    for (size_t i = 0; i < C.size() / tsize(ct); i++)
        put(C, ct, i, beta == 0.0f ? NAN : frand(-1, 1));
    const std::vector<unsigned char> C0 = C;
    cublasStatus_t st =
        batch == 1 && sa > 0
            ? cublasGemmEx(h, ta, tb, m, n, k, &alpha, A.data(), at, lda, B.data(), at, ldb, &beta,
                           C.data(), ct, ldc, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT)
            : cublasGemmStridedBatchedEx(h, ta, tb, m, n, k, &alpha, A.data(), at, lda, sa,
                                         B.data(), at, ldb, sb, &beta, C.data(), ct, ldc, sc, batch,
                                         CUBLAS_COMPUTE_32F_FAST_16F, CUBLAS_GEMM_DEFAULT);
    EXPECT(st == CUBLAS_STATUS_SUCCESS && cudaDeviceSynchronize() == cudaSuccess, "status %d",
           (int)st);
    for (int b = 0; b < batch; b++)
        for (int j = 0; j < n; j++)
            for (int i = 0; i < m; i++) {
                double ref = 0, mag = 0;
                for (int l = 0; l < k; l++) {
                    const long long ia =
                        ta == CUBLAS_OP_N ? i + (long long)l * lda : l + (long long)i * lda;
                    const long long ib =
                        tb == CUBLAS_OP_N ? l + (long long)j * ldb : j + (long long)l * ldb;
                    const double p = (double)get(A, at, b * sa + ia) * get(B, at, b * sb + ib);
                    ref += p;
                    mag += fabs(p);
                }
                const long long ic = b * sc + i + (long long)j * ldc;
                const double c0 = beta == 0.0f ? 0.0 : get(C0, ct, ic);
                ref = alpha * ref + beta * c0;
                const double tol =
                    1e-5 * (fabs(alpha) * mag + fabs(beta * c0)) +
                    (ct == CUDA_R_32F ? 0 : (ct == CUDA_R_16F ? 1e-3 : 8e-3) * fabs(ref)) + 1e-30;
                const float c = get(C, ct, ic);
                EXPECT(
                    fabs(c - ref) <= tol,
                    "at=%d ct=%d ta=%d tb=%d m=%d n=%d k=%d beta=%g batch %d (%d,%d): %.9g vs %.9g",
                    (int)at, (int)ct, (int)ta, (int)tb, m, n, k, beta, b, i, j, c, ref);
            }
    // Past the last column of C in each batch: untouched.
    for (int b = 0; b < batch; b++)
        for (long long i = (long long)ldc * n;
             i < sc && b * sc + i < (long long)(C.size() / tsize(ct)); i++)
            EXPECT(memcmp(C.data() + (b * sc + i) * tsize(ct), C0.data() + (b * sc + i) * tsize(ct),
                          tsize(ct)) == 0,
                   "wrote outside C");
    return true;
}

static bool t_cublas_standin() {
    cublasHandle_t h = nullptr;
    EXPECT(cublasCreate(&h) == CUBLAS_STATUS_SUCCESS && h, "create");
    EXPECT(cublasSetMathMode(h, CUBLAS_TF32_TENSOR_OP_MATH) == CUBLAS_STATUS_SUCCESS, "math mode");
    EXPECT(cublasSetStream(h, nullptr) == CUBLAS_STATUS_SUCCESS, "stream");
    const cudaDataType types[] = {CUDA_R_16F, CUDA_R_16BF, CUDA_R_32F};
    const cublasOperation_t ops[] = {CUBLAS_OP_N, CUBLAS_OP_T};
    for (cudaDataType at : types)
        for (int same_c = 0; same_c < 2; same_c++)
            for (cublasOperation_t ta : ops)
                for (cublasOperation_t tb : ops)
                    for (int bc = 0; bc < 2; bc++) {
                        const cudaDataType ct = same_c ? at : CUDA_R_32F;
                        if (!standin_case(h, at, ct, ta, tb, 5, 7, 9, 1.5f, bc ? 0.5f : 0.0f, 1))
                            return false;
                        if (!standin_case(h, at, ct, ta, tb, 3, 2, 17, -0.75f, bc ? 2.0f : 0.0f, 3))
                            return false;
                    }
    if (!standin_case(h, CUDA_R_32F, CUDA_R_32F, CUBLAS_OP_N, CUBLAS_OP_N, 4, 3, 0, 1.0f, 0.5f, 1))
        return false; // k = 0: C = beta * C
    float a[16] = {0}, c[16] = {0}, one = 1, zero = 0;
    const cublasStatus_t inv = CUBLAS_STATUS_INVALID_VALUE, ns = CUBLAS_STATUS_NOT_SUPPORTED;
    auto ex = [&](cublasHandle_t hh, int m, int lda, cudaDataType at, cudaDataType bt,
                  cublasComputeType_t ctp, const float *al) {
        return cublasGemmEx(hh, CUBLAS_OP_N, CUBLAS_OP_N, m, 2, 2, al, a, at, lda, a, bt, 2, &zero,
                            c, CUDA_R_32F, 4, ctp, CUBLAS_GEMM_DEFAULT);
    };
    EXPECT(ex(nullptr, 2, 2, CUDA_R_32F, CUDA_R_32F, CUBLAS_COMPUTE_32F, &one) ==
               CUBLAS_STATUS_NOT_INITIALIZED,
           "null handle");
    EXPECT(ex(h, -1, 2, CUDA_R_32F, CUDA_R_32F, CUBLAS_COMPUTE_32F, &one) == inv, "m < 0");
    EXPECT(ex(h, 3, 2, CUDA_R_32F, CUDA_R_32F, CUBLAS_COMPUTE_32F, &one) == inv, "lda < m");
    EXPECT(ex(h, 2, 2, CUDA_R_32F, CUDA_R_32F, CUBLAS_COMPUTE_32F, nullptr) == inv, "null alpha");
    EXPECT(ex(h, 2, 2, CUDA_R_8I, CUDA_R_8I, CUBLAS_COMPUTE_32F, &one) == ns, "int8 inputs");
    EXPECT(ex(h, 2, 2, CUDA_R_16F, CUDA_R_32F, CUBLAS_COMPUTE_32F, &one) == ns, "mixed inputs");
    EXPECT(ex(h, 2, 2, CUDA_R_16F, CUDA_R_16F, CUBLAS_COMPUTE_16F, &one) == ns, "compute 16F");
    EXPECT(cublasGemmEx(h, CUBLAS_OP_N, CUBLAS_OP_N, 2, 2, 2, &one, a, CUDA_R_32F, 2, a, CUDA_R_32F,
                        2, &zero, c, CUDA_R_32F, 1, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT) == inv,
           "ldc < m");
    EXPECT(cublasDestroy(h) == CUBLAS_STATUS_SUCCESS, "destroy");
    return true;
}

// ------------------------------------------------------------ slim_cuda_gemm_cublas
static bool cublas_path_case(cublasHandle_t h, slim_dtype t, int64_t n, int64_t rows,
                             int64_t tokens, size_t pad) {
    GemmData d;
    make_data(d, t, n, rows, tokens, 0, pad);
    const slim_dtype_traits *tr = slim_dtype_traits_of(t);
    char what[128];
    snprintf(what, sizeof what, "cublas path %s n=%lld rows=%lld tokens=%lld pad=%zu", tr->name,
             (long long)n, (long long)rows, (long long)tokens, pad);
    AlignedBuf w16((rows * n + 1) / 2 + 8), x16((tokens * n + 1) / 2 + 8), x(tokens * n);
    memcpy(x.p, d.xf.data(), tokens * n * sizeof(float));
    std::vector<float> out(rows * tokens);
    int rc = 0;
    if (!all_policies_same(what, out, [&](std::vector<float> &o) {
            std::fill(o.begin(), o.end(), NAN);
            rc |= slim_cuda_gemm_cublas(h, t, o.data(), d.w, d.ws, x.p, n, rows, tokens, w16.p,
                                        x16.p, nullptr);
            rc |= (int)cudaDeviceSynchronize();
        }))
        return false;
    EXPECT(rc == 0, "%s: launcher returned %d", what, rc);
    std::vector<float> wr(n);
    for (int64_t r = 0; r < rows; r++) {
        tr->to_float(d.w + r * d.ws, wr.data(), n);
        for (int64_t tk = 0; tk < tokens; tk++) {
            double ref = 0, mag = 0;
            for (int64_t i = 0; i < n; i++) {
                ref += (double)wr[i] * x.p[tk * n + i];
                mag += fabs((double)wr[i] * x.p[tk * n + i]);
            }
            const double tol = (t == SLIM_DTYPE_F32 ? 1e-5 : 1.0 / 512) * mag;
            const float g = out[tk * rows + r];
            EXPECT(fabs(g - ref) <= tol, "%s: row %lld token %lld: %.9g vs %.9g (sum|wx| %.3g)",
                   what, (long long)r, (long long)tk, g, ref, mag);
            const int ti = t + 0; // per-type max relative error of the cuBLAS path
            if (mag > 0 && fabs(g - ref) / mag > g_max_rel_cublas[ti])
                g_max_rel_cublas[ti] = fabs(g - ref) / mag;
        }
    }
    return true;
}

static bool t_gemm_cublas() {
    cublasHandle_t h = nullptr;
    EXPECT(cublasCreate(&h) == CUBLAS_STATUS_SUCCESS, "create");
    for (slim_dtype t : FLOATS) {
        if (!cublas_path_case(h, t, 33, 17, 5, 0)) return false;
        if (!cublas_path_case(h, t, 64, 65, 33, 8)) return false;
    }
    for (slim_dtype t : LEGACY) {
        if (!cublas_path_case(h, t, 32, 17, 5, 0)) return false;
        if (!cublas_path_case(h, t, 96, 65, 33, 6)) return false;
    }
    for (slim_dtype t : KQUANTS) {
        if (!cublas_path_case(h, t, 256, 17, 5, 0)) return false;
        if (!cublas_path_case(h, t, 512, 3, 33, 10)) return false;
    }
    float y[4];
    AlignedBuf x(64), s(64);
    std::vector<unsigned char> w(4096);
    const int bad = (int)cudaErrorInvalidValue;
    EXPECT(slim_cuda_gemm_cublas(nullptr, SLIM_DTYPE_F16, y, w.data(), 64, x.p, 32, 2, 2, s.p, s.p,
                                 nullptr) == bad,
           "null handle");
    EXPECT(slim_cuda_gemm_cublas(h, SLIM_DTYPE_Q8_0, y, w.data(), 34, x.p, 32, 2, 2, nullptr, s.p,
                                 nullptr) == bad,
           "quantized weights need the f16 scratch");
    EXPECT(slim_cuda_gemm_cublas(h, SLIM_DTYPE_Q8_0, y, w.data(), 34, x.p, 32, 2, 2, s.p + 1, s.p,
                                 nullptr) == bad,
           "f16 weight scratch not 16-byte aligned");
    EXPECT(slim_cuda_gemm_cublas(h, SLIM_DTYPE_F16, y, w.data(), 64, x.p, 32, 2, 2, nullptr,
                                 nullptr, nullptr) == bad,
           "F16 needs the x scratch");
    EXPECT(slim_cuda_gemm_cublas(h, SLIM_DTYPE_Q4_K, y, w.data(), 144, x.p, 32, 2, 2, s.p, s.p,
                                 nullptr) == bad,
           "K-quant n not a multiple of 256");
    EXPECT(slim_cuda_gemm_cublas(h, SLIM_DTYPE_Q2_K, y, w.data(), 84, x.p, 256, 2, 2, s.p, s.p,
                                 nullptr) == bad,
           "unsupported type");
    EXPECT(slim_cuda_gemm_cublas(h, SLIM_DTYPE_F32, y, w.data(), 64, x.p, 32, 0, 2, nullptr,
                                 nullptr, nullptr) == 0,
           "no rows is a no-op");
    EXPECT(slim_cuda_gemm_prefer_cublas(SLIM_DTYPE_F16, 4096, 4096, 32) == 1 &&
               slim_cuda_gemm_prefer_cublas(SLIM_DTYPE_BF16, 4096, 4096, 31) == 0 &&
               slim_cuda_gemm_prefer_cublas(SLIM_DTYPE_Q4_K, 4096, 4096, 512) == 0 &&
               slim_cuda_gemm_prefer_cublas(SLIM_DTYPE_F32, 64, 64, 512) == 0,
           "prefer rule");
    EXPECT(cublasDestroy(h) == CUBLAS_STATUS_SUCCESS, "destroy");
    return true;
}

int main() {
    run("gemm Q4_0/Q4_1/Q5_0/Q5_1/Q8_0: bitwise the reference dot, ragged rows/tokens/blocks, "
        "2-byte aligned and padded rows",
        t_gemm_legacy);
    run("gemm Q4_K/Q5_K/Q6_K: bitwise the reference dot, 1..3 super-blocks, ragged", t_gemm_kquant);
    run("gemm F32/F16/BF16 (f32 FMA) vs vec_dot within 1e-5 sum|wx|, n 1..200", t_gemm_float);
    run("gemm launcher: invalid arguments rejected, empty work is a no-op", t_gemm_args);
    run("planted bug: no barrier before refilling the stage is caught under greedy",
        t_planted_refill_race);
    run("cuBLAS stand-in vs a double triple loop: 16F/16BF/32F, N/T, ld padding, alpha/beta, "
        "beta 0 over NaN, strided batches, invalid arguments",
        t_cublas_standin);
    run("slim_cuda_gemm_cublas (dequantize to f16 + cublasGemmEx) vs the exact product within "
        "2^-9 sum|wx|; arguments; prefer rule",
        t_gemm_cublas);
    printf("max |gpu - vec_dot| / sum|wx|:");
    for (int t = 0; t < SLIM_DTYPE_COUNT; t++)
        if (g_max_rel[t] > 0) printf(" %s %.2g", slim_dtype_name(t), g_max_rel[t]);
    printf("\nmax |cublas path - exact| / sum|wx|:");
    for (int t = 0; t < SLIM_DTYPE_COUNT; t++)
        if (g_max_rel_cublas[t] > 0) printf(" %s %.2g", slim_dtype_name(t), g_max_rel_cublas[t]);
    printf("\n");
    printf("%d passed, %d failed\n", g_pass, g_fail);
    return g_fail ? 1 : 0;
}
