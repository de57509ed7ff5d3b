// dequant.cuh: weight elements to float on the device, bitwise equal to the
// CPU traits' to_float (lib/quant/float.c, q_legacy.c, q_k.c) for every
// weight format slim reads: F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0,
// Q2_K, Q3_K, Q4_K, Q5_K, Q6_K.
//
// Interface (stable; used by embed.cu and by the GEMM path):
//   dq_traits<DTYPE>::BLOCK, ::BYTES   elements and bytes per block
//   dequant_elem<DTYPE>(row, i)        element i of the row that starts at
//                                      `row` (block 0), as the CPU's float
//   dequant_run<DTYPE, N>(row, i0, out)  N consecutive elements from i0
//                                      (N divides 16, i0 % N == 0): out[0..N)
// DTYPE is a slim_dtype value (lib/core/dtype.h).  `row` must be 2-byte
// aligned (GGUF blocks are), 4-byte for F32; all loads are read-only (__ldg).
//
// Bitwise: each expression is the CPU's, in its order, with the products and
// sums that the CPU rounds separately written as __fmul_rn / __fadd_rn so
// that nvcc cannot contract them into an FMA (a - b is a + (-b), exactly).
#ifndef SLIM_KERNELS_DEQUANT_CUH
#define SLIM_KERNELS_DEQUANT_CUH

#include "common.cuh"
#include "kernels.h"
#include "util.cuh"

#include "../lib/quant/blocks.h"

namespace {

// The type ids are lib/core/dtype.h's slim_dtype (GGML's ids), the one
// vocabulary of the C code and the kernels; kernels.h includes it.
static_assert(SLIM_DTYPE_F32 == 0 && SLIM_DTYPE_F16 == 1 && SLIM_DTYPE_Q4_0 == 2 &&
                  SLIM_DTYPE_Q4_1 == 3 && SLIM_DTYPE_Q5_0 == 6 && SLIM_DTYPE_Q5_1 == 7 &&
                  SLIM_DTYPE_Q8_0 == 8 && SLIM_DTYPE_Q8_1 == 9 && SLIM_DTYPE_Q2_K == 10 &&
                  SLIM_DTYPE_Q3_K == 11 && SLIM_DTYPE_Q4_K == 12 && SLIM_DTYPE_Q5_K == 13 &&
                  SLIM_DTYPE_Q6_K == 14 && SLIM_DTYPE_Q8_K == 15 && SLIM_DTYPE_BF16 == 30,
              "slim_dtype ids are GGML's");

template <int DTYPE> struct dq_traits;
template <> struct dq_traits<SLIM_DTYPE_F32> { static constexpr int BLOCK = 1, BYTES = 4; };
template <> struct dq_traits<SLIM_DTYPE_F16> { static constexpr int BLOCK = 1, BYTES = 2; };
template <> struct dq_traits<SLIM_DTYPE_BF16> { static constexpr int BLOCK = 1, BYTES = 2; };
template <> struct dq_traits<SLIM_DTYPE_Q4_0> { static constexpr int BLOCK = 32, BYTES = 18; };
template <> struct dq_traits<SLIM_DTYPE_Q4_1> { static constexpr int BLOCK = 32, BYTES = 20; };
template <> struct dq_traits<SLIM_DTYPE_Q5_0> { static constexpr int BLOCK = 32, BYTES = 22; };
template <> struct dq_traits<SLIM_DTYPE_Q5_1> { static constexpr int BLOCK = 32, BYTES = 24; };
template <> struct dq_traits<SLIM_DTYPE_Q8_0> { static constexpr int BLOCK = 32, BYTES = 34; };
template <> struct dq_traits<SLIM_DTYPE_Q2_K> { static constexpr int BLOCK = 256, BYTES = 84; };
template <> struct dq_traits<SLIM_DTYPE_Q3_K> { static constexpr int BLOCK = 256, BYTES = 110; };
template <> struct dq_traits<SLIM_DTYPE_Q4_K> { static constexpr int BLOCK = 256, BYTES = 144; };
template <> struct dq_traits<SLIM_DTYPE_Q5_K> { static constexpr int BLOCK = 256, BYTES = 176; };
template <> struct dq_traits<SLIM_DTYPE_Q6_K> { static constexpr int BLOCK = 256, BYTES = 210; };
static_assert(sizeof(block_q4_1) == 20 && sizeof(block_q5_1) == 24 && sizeof(block_q2_K) == 84 &&
                  sizeof(block_q3_K) == 110 && sizeof(block_q4_K) == 144 &&
                  sizeof(block_q5_K) == 176 && sizeof(block_q6_K) == 210,
              "dq_traits sizes");

__device__ __forceinline__ uint32_t dq_u8(const unsigned char *p) { return __ldg(p); }
__device__ __forceinline__ float dq_h(const unsigned char *p) { return f16_bits_to_f32(ld_u16(p)); }

// Q4_K / Q5_K: the 6-bit scale (MIN = false) or min (MIN = true) of sub-block j.
template <bool MIN> __device__ __forceinline__ int dq_k4_scale(const unsigned char *s, int j) {
    if (j < 4) return (int)(dq_u8(s + j + (MIN ? 4 : 0)) & 63);
    return MIN ? (int)((dq_u8(s + j + 4) >> 4) | (dq_u8(s + j) >> 6) << 4)
               : (int)((dq_u8(s + j + 4) & 15) | (dq_u8(s + j - 4) >> 6) << 4);
}

template <int DTYPE>
__device__ __forceinline__ float dequant_elem(const unsigned char *row, int64_t i) {
    constexpr int BLOCK = dq_traits<DTYPE>::BLOCK, BYTES = dq_traits<DTYPE>::BYTES;
    const unsigned char *b = row + (i / BLOCK) * BYTES;
    const int e = (int)(i % BLOCK);
    if constexpr (DTYPE == SLIM_DTYPE_F32) {
        SLIM_CHECK_ALIGN(b, 4, "dequant_elem<F32>");
        return __ldg(reinterpret_cast<const float *>(b));
    } else if constexpr (DTYPE == SLIM_DTYPE_F16) {
        return f16_bits_to_f32(ld_u16(b));
    } else if constexpr (DTYPE == SLIM_DTYPE_BF16) {
        return __uint_as_float(ld_u16(b) << 16);
    } else if constexpr (DTYPE == SLIM_DTYPE_Q4_0 || DTYPE == SLIM_DTYPE_Q4_1) {
        constexpr int QS = DTYPE == SLIM_DTYPE_Q4_0 ? 2 : 4;
        const uint32_t byte = dq_u8(b + QS + e % 16);
        const int q = (int)(e < 16 ? byte & 15 : byte >> 4);
        if constexpr (DTYPE == SLIM_DTYPE_Q4_0)
            return (float)(q - 8) * dq_h(b);
        else
            return __fadd_rn(__fmul_rn((float)q, dq_h(b)), dq_h(b + 2));
    } else if constexpr (DTYPE == SLIM_DTYPE_Q5_0 || DTYPE == SLIM_DTYPE_Q5_1) {
        constexpr int QH = DTYPE == SLIM_DTYPE_Q5_0 ? 2 : 4;
        const uint32_t qh = ld_u32_a2(b + QH);
        const uint32_t byte = dq_u8(b + QH + 4 + e % 16);
        const int q = (int)((e < 16 ? byte & 15 : byte >> 4) | ((qh >> e) & 1) << 4);
        if constexpr (DTYPE == SLIM_DTYPE_Q5_0)
            return (float)(q - 16) * dq_h(b);
        else
            return __fadd_rn(__fmul_rn((float)q, dq_h(b)), dq_h(b + 2));
    } else if constexpr (DTYPE == SLIM_DTYPE_Q8_0) {
        return (float)(int8_t)dq_u8(b + 2 + e) * dq_h(b);
    } else if constexpr (DTYPE == SLIM_DTYPE_Q2_K) { // scales[16], qs[64], d, dmin
        const int h = e / 128, s = (e / 32) % 4, l = e % 32;
        const int q = (int)((dq_u8(b + 16 + 32 * h + l) >> (2 * s)) & 3);
        const uint32_t sc = dq_u8(b + e / 16);
        const float dl = __fmul_rn(dq_h(b + 80), (float)(sc & 15));
        const float ml = __fmul_rn(dq_h(b + 82), (float)(sc >> 4));
        return __fadd_rn(__fmul_rn(dl, (float)q), -ml);
    } else if constexpr (DTYPE == SLIM_DTYPE_Q3_K) { // hmask[32], qs[64], scales[12], d
        const int h = e / 128, s = (e / 32) % 4, l = e % 32, j = e / 16;
        const int lo4 = (int)((dq_u8(b + 96 + j % 8) >> (4 * (j / 8))) & 15);
        const int hi2 = (int)((dq_u8(b + 96 + 8 + j % 4) >> (2 * (j / 4))) & 3);
        const int sc = (int)(int8_t)((lo4 | hi2 << 4) - 32);
        const int lo = (int)((dq_u8(b + 32 + 32 * h + l) >> (2 * s)) & 3);
        const int q = lo - ((dq_u8(b + l) >> (e / 32)) & 1 ? 0 : 4);
        return __fmul_rn(__fmul_rn(dq_h(b + 108), (float)sc), (float)q);
    } else if constexpr (DTYPE == SLIM_DTYPE_Q4_K || DTYPE == SLIM_DTYPE_Q5_K) {
        // d, dmin, scales[12], (Q5_K: qh[32]), qs[128]
        const int j = e / 32, l = e % 32;
        constexpr int QS = DTYPE == SLIM_DTYPE_Q4_K ? 16 : 48;
        int q = (int)((dq_u8(b + QS + 32 * (j / 2) + l) >> (4 * (j % 2))) & 15);
        if constexpr (DTYPE == SLIM_DTYPE_Q5_K) q |= (int)((dq_u8(b + 16 + l) >> j) & 1) << 4;
        const float d1 = __fmul_rn(dq_h(b), (float)dq_k4_scale<false>(b + 4, j));
        const float m1 = __fmul_rn(dq_h(b + 2), (float)dq_k4_scale<true>(b + 4, j));
        return __fadd_rn(__fmul_rn(d1, (float)q), -m1);
    } else if constexpr (DTYPE == SLIM_DTYPE_Q6_K) { // ql[128], qh[64], scales[16], d
        const int h = e / 128, s = (e / 32) % 4, l = e % 32;
        const int lo = (int)((dq_u8(b + 64 * h + 32 * (s & 1) + l) >> (4 * (s >> 1))) & 15);
        const int hi = (int)((dq_u8(b + 128 + 32 * h + l) >> (2 * s)) & 3);
        const float sc = (float)(int8_t)dq_u8(b + 192 + e / 16);
        return __fmul_rn(__fmul_rn(dq_h(b + 208), sc), (float)((lo | hi << 4) - 32));
    } else {
        static_assert(DTYPE == SLIM_DTYPE_F32, "dequant_elem: unsupported type");
        return 0.0f;
    }
}

template <int DTYPE, int N>
__device__ __forceinline__ void dequant_run(const unsigned char *row, int64_t i0, float *out) {
    static_assert(N >= 1 && 16 % N == 0, "dequant_run: N divides 16");
    SLIM_UNROLL
    for (int k = 0; k < N; k++)
        out[k] = dequant_elem<DTYPE>(row, i0 + k);
}

} // namespace

#endif // SLIM_KERNELS_DEQUANT_CUH
