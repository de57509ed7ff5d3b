// matvec_q4_0.cu: decode mat-vec for Q4_0 weights (fp16 d, 16 nibble bytes;
// byte k holds element k (low nibble) and k + 16 (high); w = d * (q - 8))
// against Q8_0 activations, and Q4_1 (fp16 d, fp16 m, nibbles; w = d * q + m)
// against Q8_1 (matvec.cuh).
//
// 4 lanes per block: lane j takes nibble bytes 4j..4j+3 (elements 4j..4j+3
// and 16+4j..16+4j+3) and the two activation words they meet: two __dp4a.
// Q4_0's -8 goes through the activation sum (as slim_vec_dot_q4_0_q8_0_ref:
// isum - 8 * xsum, exact in int32); Q4_1's min through the Q8_1 block's s:
// (d_w d_x) isum + m_w s_x.
#include "common.cuh"
#include "kernels.h"
#include "matvec.cuh"

#include "../lib/quant/blocks.h"

namespace slim_mv {
namespace {

struct Q4_0 {
    static constexpr int BYTES = 18, XBYTES = 34, LANES = 4, UNROLL = 4;
    static constexpr bool TWO = false;
    __device__ static __forceinline__ Sums part(const unsigned char *wb, const unsigned char *xb,
                                                int j) {
        const uint32_t q = ld_u32_a2(wb + 2 + 4 * j);
        const uint32_t xl = ld_u32_a2(xb + 2 + 4 * j), xh = ld_u32_a2(xb + 18 + 4 * j);
        const int s = dp4a(q & NIB, xl, dp4a((q >> 4) & NIB, xh, 0));
        return Sums{s - 8 * dp4a(ONES, xl, dp4a(ONES, xh, 0)), 0};
    }
    __device__ static __forceinline__ float value(const unsigned char *wb, const unsigned char *xb,
                                                  Sums s) {
        return __fmul_rn(__fmul_rn(ld_h(wb), ld_h(xb)), (float)s.a);
    }
};
static_assert(sizeof(block_q4_0) == Q4_0::BYTES && sizeof(block_q8_0) == Q4_0::XBYTES,
              "block_q4_0 layout");

struct Q4_1 {
    static constexpr int BYTES = 20, XBYTES = 36, LANES = 4, UNROLL = 4;
    static constexpr bool TWO = false;
    __device__ static __forceinline__ Sums part(const unsigned char *wb, const unsigned char *xb,
                                                int j) {
        const uint32_t q = ld_u32_a2(wb + 4 + 4 * j);
        const uint32_t xl = ld_u32(xb + 4 + 4 * j), xh = ld_u32(xb + 20 + 4 * j);
        return Sums{dp4a(q & NIB, xl, dp4a((q >> 4) & NIB, xh, 0)), 0};
    }
    __device__ static __forceinline__ float value(const unsigned char *wb, const unsigned char *xb,
                                                  Sums s) {
        return __fadd_rn(__fmul_rn(__fmul_rn(ld_h(wb), ld_h(xb)), (float)s.a),
                         __fmul_rn(ld_h(wb + 2), ld_h(xb + 2)));
    }
};
static_assert(sizeof(block_q4_1) == Q4_1::BYTES && sizeof(block_q8_1) == Q4_1::XBYTES,
              "block_q4_1 layout");

} // namespace

int launch_q4_0(float *y, const void *w, size_t ws, const void *x, size_t xs, int64_t nb,
                int64_t n_rows, int64_t nt, void *stream) {
    return matvec_q_launch<Q4_0>(y, w, ws, x, xs, nb, n_rows, nt, stream);
}

int launch_q4_1(float *y, const void *w, size_t ws, const void *x, size_t xs, int64_t nb,
                int64_t n_rows, int64_t nt, void *stream) {
    return matvec_q_launch<Q4_1>(y, w, ws, x, xs, nb, n_rows, nt, stream);
}

} // namespace slim_mv
