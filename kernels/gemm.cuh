// gemm.cuh: the prefill GEMM y[t * n_rows + r] = dot(W row r, activation row t)
// for block-quantized weights on tensor cores (gemm_q.cu: Q4_0, Q4_1, Q5_0,
// Q5_1, Q8_0; gemm_k.cu: Q4_K, Q5_K, Q6_K), and the internal launchers that
// slim_cuda_gemm (gemm_f.cu) dispatches to.
//
// Numerics (the CPU's vec_dot, kernels.h): the activations come already
// quantized to the weight type's vec_dot_type (Q8_0, Q8_1, Q8_K).  Weight and
// activation quants are small integers, exact in f16; mma.m16n8k16 multiplies
// them exactly and sums them exactly in its f32 accumulators (every partial
// sum is an integer below 2^24).  A fresh accumulator per integer group (a
// 32-weight block; a K-quant sub-block of 32 or 16) holds exactly the CPU's
// integer sum.  Then the float scaling is the CPU's expression, with
// __fmul_rn/__fadd_rn so that nvcc cannot contract it into an FMA, added to
// the output's accumulator in block order: every output is bitwise what the
// scalar reference dot product (slim_vec_dot_*_ref, the traits' scalar
// vec_dot) returns.  K-quants add sc * sub-block sum in int32 per super-block
// first, as the CPU does.
//
// Tile: 64 weight rows x 32 tokens per 128-thread block, 4 warps of 32 rows x
// 16 tokens (2 x 2 mma tiles).  K advances 256 elements at a time (8 legacy
// blocks or one super-block):
//   - the weight rows' quantized bytes are staged in shared memory as they are
//     (16-byte loads when rows are 16-byte aligned, else 2-byte loads) and
//     unpacked to f16 integers in registers, straight into A fragments
//     (Q::pair: two consecutive quants of a block);
//   - the activation quants are converted once to f16 in shared memory
//     ([token][k], rows padded to 264 halves so that ldmatrix is conflict-free)
//     and read as B fragments with ldmatrix.x4; their scales (and Q8_K block
//     sums) go to small shared arrays.
// Rows past n_rows and tokens past n_tokens are zero-filled and not stored.
// Grid: x over token tiles (fastest, so the blocks that share a weight tile
// run together and it is read from DRAM about once), y over row tiles.
#ifndef SLIM_KERNELS_GEMM_CUH
#define SLIM_KERNELS_GEMM_CUH

#include "common.cuh"
#include "ptx.cuh"
#include "util.cuh"

// Internal launchers (arguments already checked by slim_cuda_gemm): return 0
// or a cudaError_t value; cudaErrorInvalidValue for a dtype they do not handle.
int slim_gemm_legacy(int dtype, float *y, const void *w, size_t w_row_stride, const void *xq,
                     size_t xq_row_stride, int64_t n, int64_t n_rows, int64_t n_tokens,
                     void *stream);
int slim_gemm_kquant(int dtype, float *y, const void *w, size_t w_row_stride, const void *xq,
                     size_t xq_row_stride, int64_t n, int64_t n_rows, int64_t n_tokens,
                     void *stream);

// The barrier before a stage's shared tiles are refilled; a macro only so
// that the test can plant its absence (tests/cudasim/test_ops_gemm.cc).
#ifndef GM_REFILL_SYNC
#define GM_REFILL_SYNC() __syncthreads()
#endif

namespace {

constexpr int GM_BM = 64, GM_BN = 32; // weight rows x tokens per block
constexpr int GM_THREADS = 128;       // 4 warps: 2 (rows) x 2 (tokens)
constexpr int GM_KC = 256;            // K elements per shared-memory stage
constexpr int GM_XPITCH = GM_KC + 8;  // halves per token row of the activation tile

__host__ __device__ constexpr int gm_round16(int b) { return (b + 15) / 16 * 16; }

// 16 bytes from 16-byte aligned global memory (read-only path).
__device__ __forceinline__ uint4 gm_ld_u32x4(const void *p) {
    SLIM_CHECK_ALIGN(p, 16, "gm_ld_u32x4");
    return __ldg(reinterpret_cast<const uint4 *>(p));
}

// Two small integers (|v| < 512) as an f16x2 register, low half first; exact.
// 0x6400 | (v + 512) is the f16 1024 + v + 512; subtracting 1536 leaves v.
__device__ __forceinline__ uint32_t gm_i2h2(int lo, int hi) {
    const uint32_t u = ((uint32_t)(lo + 512) | ((uint32_t)(hi + 512) << 16)) + 0x64006400u;
    const __half2 h =
        __hsub2(*reinterpret_cast<const __half2 *>(&u), __floats2half2_rn(1536.0f, 1536.0f));
    return *reinterpret_cast<const uint32_t *>(&h);
}

// Shared-memory byte reads of a staged block (2-byte aligned at even offsets).
__device__ __forceinline__ uint32_t gm_s16(const unsigned char *p) {
    return *reinterpret_cast<const unsigned short *>(p);
}
__device__ __forceinline__ float gm_sh(const unsigned char *p) {
    return f16_bits_to_f32(gm_s16(p));
}
__device__ __forceinline__ uint32_t gm_s32(const unsigned char *p) { // 2-byte aligned
    return gm_s16(p) | (gm_s16(p + 2) << 16);
}

// Stages rows [r0, r0 + GM_BM) of the weight, bytes [off, off + bytes) of each
// row, at sa + row * PITCH; rows past n_rows and bytes past `bytes` (up to the
// pitch) become zeros.  aligned16: w, the row stride and off are multiples of 16.
template <int PITCH>
__device__ __forceinline__ void gm_stage_rows(unsigned char *sa, const unsigned char *w, size_t ws,
                                              int64_t r0, int64_t n_rows, size_t off, int bytes,
                                              bool aligned16) {
    constexpr int W16 = PITCH / 16;
    for (int i = threadIdx.x; i < GM_BM * W16; i += GM_THREADS) {
        const int row = i / W16, c = (i % W16) * 16;
        uint4 v = make_uint4(0, 0, 0, 0);
        if (r0 + row < n_rows && c < bytes) {
            const unsigned char *src = w + (size_t)(r0 + row) * ws + off + c;
            if (aligned16 && c + 16 <= bytes) {
                v = gm_ld_u32x4(src);
            } else {
                uint32_t h[8];
                SLIM_UNROLL
                for (int k = 0; k < 8; k++)
                    h[k] = c + 2 * k + 2 <= bytes ? ld_u16(src + 2 * k) : 0u;
                v = make_uint4(h[0] | h[1] << 16, h[2] | h[3] << 16, h[4] | h[5] << 16,
                               h[6] | h[7] << 16);
            }
        }
        *reinterpret_cast<uint4 *>(sa + row * PITCH + c) = v;
    }
}

// Four int8 activation quants (a little-endian word) to f16 at dst (8-byte aligned).
__device__ __forceinline__ void gm_put_x4(uint16_t *dst, uint32_t q) {
    uint2 v;
    v.x = gm_i2h2((int)(int8_t)(q & 0xff), (int)(int8_t)((q >> 8) & 0xff));
    v.y = gm_i2h2((int)(int8_t)((q >> 16) & 0xff), (int)(int8_t)(q >> 24));
    *reinterpret_cast<uint2 *>(dst) = v;
}

// The warp's B fragments for k16 step at k (elements into the stage) and its
// two n8 tiles: b[0..1] tokens wn..wn+7, b[2..3] tokens wn+8..wn+15.
__device__ __forceinline__ void gm_load_b(uint32_t b[4], const uint16_t *sx, int wn, int k) {
    const int lane = threadIdx.x % 32;
    ldmatrix_x4(b, sx + (wn + (lane / 16) * 8 + lane % 8) * GM_XPITCH + k + ((lane / 8) % 2) * 8);
}

// One k16 step of the warp's 32 x 16 tile: A fragments from the staged blocks
// (element j of the block for lane's rows; Q::pair unpacks), into p.
template <typename Q>
__device__ __forceinline__ void gm_mma_step(float p[2][2][4], const unsigned char *sa, int pitch,
                                            int wm, int blk_off, int j, const uint32_t b[4]) {
    const int lane = threadIdx.x % 32, g = lane / 4, t4 = lane % 4;
    SLIM_UNROLL
    for (int mt = 0; mt < 2; mt++) {
        const unsigned char *lo = sa + (wm + mt * 16 + g) * pitch + blk_off;
        const unsigned char *hi = lo + 8 * pitch;
        const int e = j + 2 * t4;
        uint32_t a[4];
        a[0] = Q::pair(lo, e);
        a[1] = Q::pair(hi, e);
        a[2] = Q::pair(lo, e + 8);
        a[3] = Q::pair(hi, e + 8);
        mma_m16n8k16_f16(p[mt][0], a, b, p[mt][0]);
        mma_m16n8k16_f16(p[mt][1], a, b + 2, p[mt][1]);
    }
}

// Output (mt, nt, c) of a thread: its row and token within the block tile.
__device__ __forceinline__ int gm_row(int wm, int mt, int c) {
    return wm + mt * 16 + (threadIdx.x % 32) / 4 + (c >= 2 ? 8 : 0);
}
__device__ __forceinline__ int gm_tok(int wn, int nt, int c) {
    return wn + nt * 8 + 2 * (threadIdx.x % 4) + (c & 1);
}

__device__ __forceinline__ void gm_store(float *y, const float acc[2][2][4], int64_t r0, int64_t t0,
                                         int wm, int wn, int64_t n_rows, int64_t n_tokens) {
    SLIM_UNROLL
    for (int mt = 0; mt < 2; mt++)
        SLIM_UNROLL
    for (int nt = 0; nt < 2; nt++)
        SLIM_UNROLL
    for (int c = 0; c < 4; c++) {
        const int64_t r = r0 + gm_row(wm, mt, c), t = t0 + gm_tok(wn, nt, c);
        if (r < n_rows && t < n_tokens) y[t * n_rows + r] = acc[mt][nt][c];
    }
}

} // namespace

#endif // SLIM_KERNELS_GEMM_CUH
