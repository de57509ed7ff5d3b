// matvec_q4_0.cu: decode mat-vec for Q4_0 weights (block_q4_0: fp16 d, 16
// bytes of nibbles; byte k holds element k (low nibble) and k + 16 (high);
// w = d * (q - 8)).  The generic kernel is in matvec.cuh.
//
// 4 lanes per block: lane j takes nibble bytes 4j..4j+3 (one 4-byte word),
// i.e. elements 4j..4j+3 and 16+4j..16+4j+3, and the 8 floats of x they meet
// (two 16-byte loads).
#include "common.cuh"
#include "kernels.h"
#include "matvec.cuh"

#include "../lib/quant/blocks.h"

namespace {

struct Q4_0 {
    static constexpr int BYTES = 18, LANES = 4;
    __device__ static __forceinline__ float part(const unsigned char *blk, const float *xb, int j) {
        const float d = f16_bits_to_f32(ld_u16(blk));
        const uint32_t q = ld_u32_a2(blk + 2 + 4 * j);
        const float4 lo = ld_f32x4(xb + 4 * j), hi = ld_f32x4(xb + 16 + 4 * j);
        const float s =
            (float)((int)(q & 15) - 8) * lo.x + (float)((int)((q >> 8) & 15) - 8) * lo.y +
            (float)((int)((q >> 16) & 15) - 8) * lo.z + (float)((int)((q >> 24) & 15) - 8) * lo.w +
            (float)((int)((q >> 4) & 15) - 8) * hi.x + (float)((int)((q >> 12) & 15) - 8) * hi.y +
            (float)((int)((q >> 20) & 15) - 8) * hi.z + (float)((int)(q >> 28) - 8) * hi.w;
        return d * s;
    }
};
static_assert(sizeof(block_q4_0) == Q4_0::BYTES, "block_q4_0 layout");

} // namespace

extern "C" int slim_cuda_matvec_q4_0(float *y, const void *w, size_t w_row_stride, const float *x,
                                     int64_t n, int64_t n_rows, void *stream) {
    return matvec_launch<Q4_0>(y, w, w_row_stride, x, n, n_rows, stream);
}
