// matvec_k.cu: decode mat-vec for the K-quants Q4_K, Q5_K and Q6_K (256-element
// super-blocks, lib/quant/blocks.h) against Q8_K activations (float d, 256
// int8 q, 16 int16 block sums; matvec.cuh).
//
// 16 lanes per super-block (a warp step covers 2).  Q4_K/Q5_K: lane j takes
// chunk c = j / 4 (32 quant bytes: sub-blocks 2c in the low nibbles, 2c+1 in
// the high ones), bytes 8(j % 4)..+7 of it: four __dp4a weighted by the two
// 6-bit sub-block scales, plus min(j / 2) * bsums[j] for the min term; the
// super-block is x.d d isum - x.d dmin msum (slim_vec_dot_q4_k_q8_k_ref).
// Q6_K: lane j takes half h = j / 8 and positions l = 4(j % 8)..+3 of all four
// 32-element rows of that half (16 six-bit quants), each weighted by its
// int8 sub-block scale, and the offset -32 * scales[j] * bsums[j]; the
// super-block is x.d d isum (slim_vec_dot_q6_k_q8_k_ref).  All sums exact in
// int32, so equal to the CPU's.
#include "common.cuh"
#include "kernels.h"
#include "matvec.cuh"

#include "../lib/quant/blocks.h"

namespace slim_mv {
namespace {

constexpr int XQS = 4, XBS = 260; // Q8_K: qs and bsums offsets

__device__ __forceinline__ int u8(const unsigned char *p) { return (int)__ldg(p); }
__device__ __forceinline__ int bsum(const unsigned char *xb, int j) {
    return (int)(int16_t)ld_u16(xb + XBS + 2 * j);
}

// The 6-bit scale (MIN = false) or min of sub-block k of a Q4_K/Q5_K block
// (scales at s), as scale_min_k4.
template <bool MIN> __device__ __forceinline__ int k4_scale(const unsigned char *s, int k) {
    if (k < 4) return u8(s + k + (MIN ? 4 : 0)) & 63;
    return MIN ? (u8(s + k + 4) >> 4) | (u8(s + k) >> 6) << 4
               : (u8(s + k + 4) & 15) | (u8(s + k - 4) >> 6) << 4;
}

template <bool Q5> struct Q45_K {
    static constexpr int BYTES = Q5 ? 176 : 144, XBYTES = 292, LANES = 16, UNROLL = 2;
    static constexpr bool TWO = true;
    static constexpr int QS = Q5 ? 48 : 16;
    __device__ static __forceinline__ Sums part(const unsigned char *wb, const unsigned char *xb,
                                                int j) {
        const int c = j / 4, t = j % 4;
        const uint32_t q0 = ld_u32(wb + QS + 32 * c + 8 * t),
                       q1 = ld_u32(wb + QS + 32 * c + 8 * t + 4);
        uint32_t l0 = q0 & NIB, l1 = q1 & NIB, h0 = (q0 >> 4) & NIB, h1 = (q1 >> 4) & NIB;
        if constexpr (Q5) { // fifth bits 2c (low nibbles) and 2c + 1 of qh[8t..8t+7]
            const uint32_t b0 = ld_u32(wb + 16 + 8 * t) >> (2 * c),
                           b1 = ld_u32(wb + 16 + 8 * t + 4) >> (2 * c);
            l0 |= (b0 & ONES) << 4;
            l1 |= (b1 & ONES) << 4;
            h0 |= ((b0 >> 1) & ONES) << 4;
            h1 |= ((b1 >> 1) & ONES) << 4;
        }
        const unsigned char *xq = xb + XQS + 64 * c + 8 * t;
        const int slo = dp4a(l0, ld_u32(xq), dp4a(l1, ld_u32(xq + 4), 0));
        const int shi = dp4a(h0, ld_u32(xq + 32), dp4a(h1, ld_u32(xq + 36), 0));
        const int isum =
            k4_scale<false>(wb + 4, 2 * c) * slo + k4_scale<false>(wb + 4, 2 * c + 1) * shi;
        return Sums{isum, k4_scale<true>(wb + 4, j / 2) * bsum(xb, j)};
    }
    __device__ static __forceinline__ float value(const unsigned char *wb, const unsigned char *xb,
                                                  Sums s) {
        const float xd = __ldg(reinterpret_cast<const float *>(xb));
        return __fadd_rn(__fmul_rn(__fmul_rn(xd, ld_h(wb)), (float)s.a),
                         -__fmul_rn(__fmul_rn(xd, ld_h(wb + 2)), (float)s.b));
    }
};
static_assert(sizeof(block_q4_K) == Q45_K<false>::BYTES &&
                  sizeof(block_q5_K) == Q45_K<true>::BYTES && sizeof(block_q8_K) == 292,
              "K-quant layouts");

struct Q6_K {
    static constexpr int BYTES = 210, XBYTES = 292, LANES = 16, UNROLL = 2;
    static constexpr bool TWO = false;
    __device__ static __forceinline__ Sums part(const unsigned char *wb, const unsigned char *xb,
                                                int j) {
        const int h = j / 8, l0 = 4 * (j % 8);
        const uint32_t ql0 = ld_u32_a2(wb + 64 * h + l0), ql1 = ld_u32_a2(wb + 64 * h + 32 + l0);
        const uint32_t qh = ld_u32_a2(wb + 128 + 32 * h + l0);
        const uint32_t q[4] = {(ql0 & NIB) | (qh & 0x03030303u) << 4,
                               (ql1 & NIB) | ((qh >> 2) & 0x03030303u) << 4,
                               ((ql0 >> 4) & NIB) | ((qh >> 4) & 0x03030303u) << 4,
                               ((ql1 >> 4) & NIB) | ((qh >> 6) & 0x03030303u) << 4};
        const unsigned char *sc = wb + 192 + 8 * h + (l0 >= 16);
        const unsigned char *xq = xb + XQS + 128 * h + l0;
        int isum = 0;
        SLIM_UNROLL
        for (int s = 0; s < 4; s++)
            isum += (int)(int8_t)u8(sc + 2 * s) * dp4a(q[s], ld_u32(xq + 32 * s), 0);
        return Sums{isum - 32 * (int)(int8_t)u8(wb + 192 + j) * bsum(xb, j), 0};
    }
    __device__ static __forceinline__ float value(const unsigned char *wb, const unsigned char *xb,
                                                  Sums s) {
        const float xd = __ldg(reinterpret_cast<const float *>(xb));
        return __fmul_rn(__fmul_rn(xd, ld_h(wb + 208)), (float)s.a);
    }
};
static_assert(sizeof(block_q6_K) == Q6_K::BYTES, "block_q6_K layout");

} // namespace

int launch_q4_k(float *y, const void *w, size_t ws, const void *x, size_t xs, int64_t nb,
                int64_t n_rows, int64_t nt, void *stream) {
    return matvec_q_launch<Q45_K<false>>(y, w, ws, x, xs, nb, n_rows, nt, stream);
}

int launch_q5_k(float *y, const void *w, size_t ws, const void *x, size_t xs, int64_t nb,
                int64_t n_rows, int64_t nt, void *stream) {
    return matvec_q_launch<Q45_K<true>>(y, w, ws, x, xs, nb, n_rows, nt, stream);
}

int launch_q6_k(float *y, const void *w, size_t ws, const void *x, size_t xs, int64_t nb,
                int64_t n_rows, int64_t nt, void *stream) {
    return matvec_q_launch<Q6_K>(y, w, ws, x, xs, nb, n_rows, nt, stream);
}

} // namespace slim_mv
