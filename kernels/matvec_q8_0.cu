// matvec_q8_0.cu: decode mat-vec for Q8_0 weights (block_q8_0: fp16 d, 32
// int8 q; w = d * q).  The generic kernel is in matvec.cuh.
//
// 8 lanes per block: lane j takes quants 4j..4j+3 (one 4-byte word), the
// block's scale and 4 floats of x (one 16-byte load);
// part = d * (q0 x0 + q1 x1 + q2 x2 + q3 x3).
#include "common.cuh"
#include "kernels.h"
#include "matvec.cuh"

#include "../lib/quant/blocks.h"

namespace {

struct Q8_0 {
    static constexpr int BYTES = 34, LANES = 8;
    __device__ static __forceinline__ float part(const unsigned char *blk, const float *xb, int j) {
        const float d = f16_bits_to_f32(ld_u16(blk));
        const uint32_t q = ld_u32_a2(blk + 2 + 4 * j);
        const float4 v = ld_f32x4(xb + 4 * j);
        const float s = (float)(int8_t)(q & 0xff) * v.x + (float)(int8_t)((q >> 8) & 0xff) * v.y +
                        (float)(int8_t)((q >> 16) & 0xff) * v.z + (float)(int8_t)(q >> 24) * v.w;
        return d * s;
    }
};
static_assert(sizeof(block_q8_0) == Q8_0::BYTES, "block_q8_0 layout");

} // namespace

extern "C" int slim_cuda_matvec_q8_0(float *y, const void *w, size_t w_row_stride, const float *x,
                                     int64_t n, int64_t n_rows, void *stream) {
    return matvec_launch<Q8_0>(y, w, w_row_stride, x, n, n_rows, stream);
}
