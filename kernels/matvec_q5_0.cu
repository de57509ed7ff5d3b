// matvec_q5_0.cu: decode mat-vec for Q5_0 weights (fp16 d, qh: the fifth
// bits as a little-endian uint32, element e at bit e, then 16 nibble bytes as
// Q4_0; w = d * (q - 16)) against Q8_0 activations, and Q5_1 (fp16 d, fp16 m,
// qh, nibbles; w = d * q + m) against Q8_1 (matvec.cuh).
//
// 4 lanes per block: lane j takes nibble bytes 4j..4j+3, their fifth bits
// spread to bit 4 of each byte, and the two activation words they meet.
// Q5_0's -16 goes through the activation sum (isum - 16 * xsum, as
// slim_vec_dot_q5_0_q8_0_ref); Q5_1's min through the Q8_1 block's s.
#include "common.cuh"
#include "kernels.h"
#include "matvec.cuh"

#include "../lib/quant/blocks.h"

namespace slim_mv {
namespace {

// Bits 0..3 of h to bit 4 of bytes 0..3.
__device__ __forceinline__ uint32_t spread4(uint32_t h) {
    return ((h & 1) << 4) | ((h & 2) << 11) | ((h & 4) << 18) | ((h & 8) << 25);
}

// Lane j's 8 five-bit quants of a Q5 block whose qh is at qhp, nibbles at qsp,
// times the activation words xl, xh.
__device__ __forceinline__ int q5_dot(const unsigned char *qhp, const unsigned char *qsp, int j,
                                      uint32_t xl, uint32_t xh) {
    const uint32_t qh = ld_u32_a2(qhp), q = ld_u32_a2(qsp + 4 * j);
    const uint32_t lo = (q & NIB) | spread4(qh >> (4 * j));
    const uint32_t hi = ((q >> 4) & NIB) | spread4(qh >> (16 + 4 * j));
    return dp4a(lo, xl, dp4a(hi, xh, 0));
}

struct Q5_0 {
    static constexpr int BYTES = 22, XBYTES = 34, LANES = 4, UNROLL = 4;
    static constexpr bool TWO = false;
    __device__ static __forceinline__ Sums part(const unsigned char *wb, const unsigned char *xb,
                                                int j) {
        const uint32_t xl = ld_u32_a2(xb + 2 + 4 * j), xh = ld_u32_a2(xb + 18 + 4 * j);
        return Sums{q5_dot(wb + 2, wb + 6, j, xl, xh) - 16 * dp4a(ONES, xl, dp4a(ONES, xh, 0)), 0};
    }
    __device__ static __forceinline__ float value(const unsigned char *wb, const unsigned char *xb,
                                                  Sums s) {
        return __fmul_rn(__fmul_rn(ld_h(wb), ld_h(xb)), (float)s.a);
    }
};
static_assert(sizeof(block_q5_0) == Q5_0::BYTES && sizeof(block_q8_0) == Q5_0::XBYTES,
              "block_q5_0 layout");

struct Q5_1 {
    static constexpr int BYTES = 24, XBYTES = 36, LANES = 4, UNROLL = 4;
    static constexpr bool TWO = false;
    __device__ static __forceinline__ Sums part(const unsigned char *wb, const unsigned char *xb,
                                                int j) {
        const uint32_t xl = ld_u32(xb + 4 + 4 * j), xh = ld_u32(xb + 20 + 4 * j);
        return Sums{q5_dot(wb + 4, wb + 8, j, xl, xh), 0};
    }
    __device__ static __forceinline__ float value(const unsigned char *wb, const unsigned char *xb,
                                                  Sums s) {
        return __fadd_rn(__fmul_rn(__fmul_rn(ld_h(wb), ld_h(xb)), (float)s.a),
                         __fmul_rn(ld_h(wb + 2), ld_h(xb + 2)));
    }
};
static_assert(sizeof(block_q5_1) == Q5_1::BYTES && sizeof(block_q8_1) == Q5_1::XBYTES,
              "block_q5_1 layout");

} // namespace

int launch_q5_0(float *y, const void *w, size_t ws, const void *x, size_t xs, int64_t nb,
                int64_t n_rows, int64_t nt, void *stream) {
    return matvec_q_launch<Q5_0>(y, w, ws, x, xs, nb, n_rows, nt, stream);
}

int launch_q5_1(float *y, const void *w, size_t ws, const void *x, size_t xs, int64_t nb,
                int64_t n_rows, int64_t nt, void *stream) {
    return matvec_q_launch<Q5_1>(y, w, ws, x, xs, nb, n_rows, nt, stream);
}

} // namespace slim_mv
