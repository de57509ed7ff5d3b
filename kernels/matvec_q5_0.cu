// matvec_q5_0.cu: decode mat-vec for Q5_0 weights (block_q5_0: fp16 d, qh:
// the fifth bits as a little-endian uint32 (element e at bit e), 16 bytes of
// nibbles as Q4_0; w = d * (q - 16)).  The generic kernel is in matvec.cuh.
//
// 4 lanes per block: lane j takes nibble bytes 4j..4j+3 (elements 4j..4j+3
// and 16+4j..16+4j+3), their fifth bits from qh, and the 8 floats of x they
// meet (two 16-byte loads).
#include "common.cuh"
#include "kernels.h"
#include "matvec.cuh"

#include "../lib/quant/blocks.h"

namespace {

struct Q5_0 {
    static constexpr int BYTES = 22, LANES = 4;
    __device__ static __forceinline__ float part(const unsigned char *blk, const float *xb, int j) {
        const float d = f16_bits_to_f32(ld_u16(blk));
        const uint32_t qh = ld_u32_a2(blk + 2);
        const uint32_t q = ld_u32_a2(blk + 6 + 4 * j);
        const uint32_t hl = qh >> (4 * j),
                       hh = qh >> (16 + 4 * j); // fifth bits of the low / high elements
        const float4 lo = ld_f32x4(xb + 4 * j), hi = ld_f32x4(xb + 16 + 4 * j);
        float s = 0.0f;
        s += (float)((int)((q & 15) | (hl & 1) << 4) - 16) * lo.x;
        s += (float)((int)(((q >> 8) & 15) | (hl >> 1 & 1) << 4) - 16) * lo.y;
        s += (float)((int)(((q >> 16) & 15) | (hl >> 2 & 1) << 4) - 16) * lo.z;
        s += (float)((int)(((q >> 24) & 15) | (hl >> 3 & 1) << 4) - 16) * lo.w;
        s += (float)((int)(((q >> 4) & 15) | (hh & 1) << 4) - 16) * hi.x;
        s += (float)((int)(((q >> 12) & 15) | (hh >> 1 & 1) << 4) - 16) * hi.y;
        s += (float)((int)(((q >> 20) & 15) | (hh >> 2 & 1) << 4) - 16) * hi.z;
        s += (float)((int)((q >> 28) | (hh >> 3 & 1) << 4) - 16) * hi.w;
        return d * s;
    }
};
static_assert(sizeof(block_q5_0) == Q5_0::BYTES, "block_q5_0 layout");

} // namespace

extern "C" int slim_cuda_matvec_q5_0(float *y, const void *w, size_t w_row_stride, const float *x,
                                     int64_t n, int64_t n_rows, void *stream) {
    return matvec_launch<Q5_0>(y, w, w_row_stride, x, n, n_rows, stream);
}
