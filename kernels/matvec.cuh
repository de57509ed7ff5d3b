// matvec.cuh: the decode mat-vec y = W x shared by matvec_<type>.cu.  The
// weights stay quantized (GGUF layout, lib/quant/blocks.h); x is the
// activation row already converted to the weight type's vec_dot_type
// (quantize.cu: Q8_0, Q8_1 or Q8_K; plain f32 for F32/F16/BF16 weights),
// exactly as the CPU backend's matmul does (lib/backend/cpu/matmul.c).
//
// Quantized types: one warp per row, MV_WARPS rows per block.  A block
// format Q gives
//   Q::BYTES, Q::XBYTES   bytes of a weight block and of an activation block
//   Q::LANES              lanes that share one block (a warp step covers
//                         32 / LANES consecutive blocks; lane l takes block
//                         l / LANES of the step as its part j = l % LANES)
//   Q::TWO                whether a part has a second integer sum (mins)
//   Q::part(wb, xb, j)    lane j's integer sums (__dp4a on the quants)
//   Q::value(wb, xb, s)   the block's float from the block's integer sums,
//                         with the CPU vec_dot's expression for the block
// The integer sums of a block are exact, so after the sum over its lanes
// (xor shuffles within the group) they equal the CPU's isum/msum; value()
// rounds exactly as the CPU does per block (__fmul_rn: no FMA contraction).
// Only the order of the final float additions differs from the CPU: the
// group's first lane adds its blocks in increasing order, then a butterfly
// over the warp (fixed for a given n: deterministic).
//
// Several tokens (a batched decode step, up to MV_MAX_TOKENS): the warp
// walks its row once per token with the same code, so each token's result
// is bitwise the one-token result, and the row's bytes come from DRAM once
// (the later passes hit L1/L2).
//
// Alignment: legacy blocks (18..34 bytes) and Q6_K (210) are only 2-byte
// aligned: 4-byte words are two 2-byte loads (ld_u32_a2, as llama.cpp does);
// Q4_K/Q5_K weights (144/176 bytes) and the Q8_1/Q8_K activations (36/292)
// are 4-byte aligned and use 4-byte loads.
#ifndef SLIM_KERNELS_MATVEC_CUH
#define SLIM_KERNELS_MATVEC_CUH

#include "common.cuh"
#include "util.cuh"

namespace slim_mv {

constexpr int MV_WARPS = 4; // rows per block
constexpr int MV_THREADS = 32 * MV_WARPS;
constexpr int MV_MAX_TOKENS = 8;

// 4 bytes from 4-byte aligned global memory, read-only path.
__device__ __forceinline__ uint32_t ld_u32(const unsigned char *p) {
    SLIM_CHECK_ALIGN(p, 4, "ld_u32");
    return __ldg(reinterpret_cast<const unsigned int *>(p));
}
__device__ __forceinline__ float ld_h(const unsigned char *p) { return f16_bits_to_f32(ld_u16(p)); }
__device__ __forceinline__ int dp4a(uint32_t a, uint32_t b, int c) {
    return __dp4a((int)a, (int)b, c);
}
constexpr uint32_t NIB = 0x0f0f0f0fu, ONES = 0x01010101u;

struct Sums {
    int a, b;
};

// One row against one activation row: the warp's sum (every lane holds it).
template <typename Q>
__device__ __forceinline__ float row_dot(const unsigned char *wr, const unsigned char *x,
                                         int64_t nb, int lane) {
    constexpr int L = Q::LANES, STEP = 32 / L, U = Q::UNROLL;
    const int g = lane / L, j = lane % L;
    float acc = 0.0f;
    // Warp-uniform trip count (the group sums are shuffles); blocks past the
    // end contribute zero sums and are not added.
    for (int64_t base = 0; base < nb; base += U * STEP) {
        Sums s[U];
        SLIM_UNROLL
        for (int u = 0; u < U; u++) {
            const int64_t ib = base + u * STEP + g;
            s[u] = ib < nb ? Q::part(wr + ib * Q::BYTES, x + ib * Q::XBYTES, j) : Sums{0, 0};
        }
        SLIM_UNROLL
        for (int o = L / 2; o > 0; o >>= 1)
            SLIM_UNROLL
        for (int u = 0; u < U; u++) {
            s[u].a += __shfl_xor_sync(SLIM_FULL_MASK, s[u].a, o);
            if constexpr (Q::TWO) s[u].b += __shfl_xor_sync(SLIM_FULL_MASK, s[u].b, o);
        }
        if (j == 0) {
            SLIM_UNROLL
            for (int u = 0; u < U; u++) {
                const int64_t ib = base + u * STEP + g;
                if (ib < nb) acc += Q::value(wr + ib * Q::BYTES, x + ib * Q::XBYTES, s[u]);
            }
        }
    }
    return warp_sum(acc);
}

// y[t * n_rows + r] = row r . activation row t (x + t * x_stride), t < n_tokens.
template <typename Q>
__global__ void __launch_bounds__(MV_THREADS)
    matvec_q_kernel(float *y, const unsigned char *w, size_t w_row_stride, const unsigned char *x,
                    size_t x_stride, int64_t nb, int64_t n_rows, int64_t n_tokens) {
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
    const int64_t row = (int64_t)blockIdx.x * MV_WARPS + warp;
    if (row >= n_rows) return; // the whole warp leaves together
    const unsigned char *wr = w + row * w_row_stride;
    for (int64_t t = 0; t < n_tokens; t++) {
        const float acc = row_dot<Q>(wr, x + t * x_stride, nb, lane);
        if (lane == 0) y[t * n_rows + row] = acc;
    }
}

// Launch for n_rows rows of nb blocks (arguments checked by the dispatcher).
template <typename Q>
int matvec_q_launch(float *y, const void *w, size_t w_row_stride, const void *x, size_t x_stride,
                    int64_t nb, int64_t n_rows, int64_t n_tokens, void *stream) {
    const int64_t blocks = (n_rows + MV_WARPS - 1) / MV_WARPS;
    LAUNCH((matvec_q_kernel<Q>), dim3((unsigned)blocks), dim3(MV_THREADS), 0, (cudaStream_t)stream,
           y, static_cast<const unsigned char *>(w), w_row_stride,
           static_cast<const unsigned char *>(x), x_stride, nb, n_rows, n_tokens);
    return slim_launch_result();
}

// The per-format launchers (matvec_<type>.cu), reached through the
// dispatcher slim_cuda_matvec (matvec_dispatch.cu).  nb: blocks per row;
// x_stride: bytes between activation rows; n_tokens of them.
typedef int (*launch_fn)(float *y, const void *w, size_t w_row_stride, const void *x,
                         size_t x_stride, int64_t nb, int64_t n_rows, int64_t n_tokens,
                         void *stream);
int launch_q8_0(float *, const void *, size_t, const void *, size_t, int64_t, int64_t, int64_t,
                void *);
int launch_q4_0(float *, const void *, size_t, const void *, size_t, int64_t, int64_t, int64_t,
                void *);
int launch_q4_1(float *, const void *, size_t, const void *, size_t, int64_t, int64_t, int64_t,
                void *);
int launch_q5_0(float *, const void *, size_t, const void *, size_t, int64_t, int64_t, int64_t,
                void *);
int launch_q5_1(float *, const void *, size_t, const void *, size_t, int64_t, int64_t, int64_t,
                void *);
int launch_q4_k(float *, const void *, size_t, const void *, size_t, int64_t, int64_t, int64_t,
                void *);
int launch_q5_k(float *, const void *, size_t, const void *, size_t, int64_t, int64_t, int64_t,
                void *);
int launch_q6_k(float *, const void *, size_t, const void *, size_t, int64_t, int64_t, int64_t,
                void *);
// Float weights: nb = n / 4 (F32) or n / 8 (F16, BF16): 16-byte chunks.
int launch_f32(float *, const void *, size_t, const void *, size_t, int64_t, int64_t, int64_t,
               void *);
int launch_f16(float *, const void *, size_t, const void *, size_t, int64_t, int64_t, int64_t,
               void *);
int launch_bf16(float *, const void *, size_t, const void *, size_t, int64_t, int64_t, int64_t,
                void *);

} // namespace slim_mv

#endif // SLIM_KERNELS_MATVEC_CUH
