// matvec.cuh: the decode mat-vec y = W x for block-quantized weights in the
// GGUF layout (lib/quant/blocks.h), x in f32, shared by matvec_<type>.cu.
//
// One warp per row, 4 rows per 128-thread block.  A block format Q gives
//   Q::BYTES  bytes per 32-weight block,
//   Q::LANES  lanes that share one block (each takes 32 / LANES weights),
//   Q::part(blk, xb, j)  lane j's (< LANES) part of dot(block, xb[0..31]),
//                        dequantized in registers.
// A warp step covers 32 / LANES consecutive blocks; lane l takes block
// l / LANES of the step.  The weights stay quantized.
//
// Order: each lane accumulates its blocks in increasing order (4 warp steps
// unrolled per iteration, their loads first), then a butterfly sum over the
// warp: fixed for a given n, so results are deterministic.
//
// Alignment: GGUF blocks are 34 (Q8_0), 18 (Q4_0), 22 (Q5_0) bytes, so their
// fields are only 2-byte aligned; 4-byte words are assembled from two 2-byte
// loads (ld_u32_a2, as llama.cpp does).  x is read with 16-byte loads.
// 16-byte weight loads would need a repacked layout (docs/CUDA.md).
#ifndef SLIM_KERNELS_MATVEC_CUH
#define SLIM_KERNELS_MATVEC_CUH

#include "common.cuh"
#include "util.cuh"

namespace {

constexpr int MV_WARPS = 4; // rows per block
constexpr int MV_THREADS = 32 * MV_WARPS;

template <typename Q>
__global__ void __launch_bounds__(MV_THREADS)
    matvec_kernel(float *y, const unsigned char *w, size_t w_row_stride, const float *x, int64_t nb,
                  int64_t n_rows) {
    constexpr int STEP = 32 / Q::LANES; // blocks per warp step
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
    const int64_t row = (int64_t)blockIdx.x * MV_WARPS + warp;
    if (row >= n_rows) return; // the whole warp leaves together
    const unsigned char *wr = w + row * w_row_stride;
    const int j = lane % Q::LANES;

    float acc = 0.0f;
    int64_t ib = lane / Q::LANES;
    for (; ib + 3 * STEP < nb; ib += 4 * STEP) {
        float p[4];
        SLIM_UNROLL
        for (int u = 0; u < 4; u++) {
            const int64_t b = ib + u * STEP;
            p[u] = Q::part(wr + b * Q::BYTES, x + b * 32, j);
        }
        SLIM_UNROLL
        for (int u = 0; u < 4; u++)
            acc += p[u];
    }
    for (; ib < nb; ib += STEP)
        acc += Q::part(wr + ib * Q::BYTES, x + ib * 32, j);

    acc = warp_sum(acc);
    if (lane == 0) y[row] = acc;
}

// Checks the arguments (see kernels.h) and launches matvec_kernel<Q>.
template <typename Q>
int matvec_launch(float *y, const void *w, size_t w_row_stride, const float *x, int64_t n,
                  int64_t n_rows, void *stream) {
    if (n <= 0 || n % 32 || n_rows < 0 || ((uintptr_t)x & 15) || ((uintptr_t)w & 1) ||
        (w_row_stride & 1) || (n_rows > 1 && w_row_stride < (size_t)(n / 32) * Q::BYTES))
        return (int)cudaErrorInvalidValue;
    if (n_rows == 0) return 0;
    const int64_t blocks = (n_rows + MV_WARPS - 1) / MV_WARPS;
    if (blocks > 0x7fffffff) return (int)cudaErrorInvalidValue;
    LAUNCH((matvec_kernel<Q>), dim3((unsigned)blocks), dim3(MV_THREADS), 0, (cudaStream_t)stream, y,
           static_cast<const unsigned char *>(w), w_row_stride, x, n / 32, n_rows);
    return slim_launch_result();
}

} // namespace

#endif // SLIM_KERNELS_MATVEC_CUH
