// matvec_q8_0.cu: decode mat-vec for Q8_0 weights (block_q8_0: fp16 d, 32
// int8 q; w = d * q) against Q8_0 activations (matvec.cuh).
//
// 8 lanes per block: lane j takes quants 4j..4j+3 of the weight and of the
// activation (one word each), one __dp4a; the block is
// (d_w * d_x) * isum, as slim_vec_dot_q8_0_q8_0_ref.
#include "common.cuh"
#include "kernels.h"
#include "matvec.cuh"

#include "../lib/quant/blocks.h"

namespace slim_mv {
namespace {

struct Q8_0 {
    static constexpr int BYTES = 34, XBYTES = 34, LANES = 8, UNROLL = 4;
    static constexpr bool TWO = false;
    __device__ static __forceinline__ Sums part(const unsigned char *wb, const unsigned char *xb,
                                                int j) {
        return Sums{dp4a(ld_u32_a2(wb + 2 + 4 * j), ld_u32_a2(xb + 2 + 4 * j), 0), 0};
    }
    __device__ static __forceinline__ float value(const unsigned char *wb, const unsigned char *xb,
                                                  Sums s) {
        return __fmul_rn(__fmul_rn(ld_h(wb), ld_h(xb)), (float)s.a);
    }
};
static_assert(sizeof(block_q8_0) == Q8_0::BYTES, "block_q8_0 layout");

} // namespace

int launch_q8_0(float *y, const void *w, size_t ws, const void *x, size_t xs, int64_t nb,
                int64_t n_rows, int64_t nt, void *stream) {
    return matvec_q_launch<Q8_0>(y, w, ws, x, xs, nb, n_rows, nt, stream);
}

} // namespace slim_mv
