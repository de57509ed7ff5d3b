// gemm_q.cu: prefill GEMM for the legacy 32-weight formats (Q4_0, Q4_1, Q5_0,
// Q5_1, Q8_0) against Q8_0 / Q8_1 activations, on tensor cores (gemm.cuh).
//
// A stage is 8 blocks (256 weights) per row; per block two k16 mma steps into
// a fresh accumulator give the block's integer sum, then the CPU's scaling
// (lib/quant/q_legacy.c, slim_vec_dot_*_ref):
//   Q4_0, Q5_0, Q8_0:  sum += (d_w * d_x) * isum
//   Q4_1, Q5_1:        sum += ((d_w * d_x) * isum + m_w * s_x)
// Q4_0 / Q5_0 subtract their offsets (8, 16) from the quants before the mma;
// the CPU subtracts 8 * sum(x) afterwards: the same integer.
#include "common.cuh"
#include "gemm.cuh"
#include "kernels.h"

#include "../lib/quant/blocks.h"

namespace {

// A format: BYTES per block; XBYTES / XQS: the activation block (Q8_0: d, qs
// at 2; Q8_1: d, s, qs at 4); MIN: has a min (and the activations' s);
// pair(blk, e): quants e, e+1 (e even) of a staged block as f16 integers.
struct GQ4_0 {
    static constexpr int BYTES = 18, XBYTES = 34, XQS = 2;
    static constexpr bool MIN = false;
    __device__ static __forceinline__ uint32_t pair(const unsigned char *blk, int e) {
        const uint32_t v = gm_s16(blk + 2 + (e & 15)) >> ((e >> 4) * 4);
        return gm_i2h2((int)(v & 15) - 8, (int)((v >> 8) & 15) - 8);
    }
};
struct GQ4_1 {
    static constexpr int BYTES = 20, XBYTES = 36, XQS = 4;
    static constexpr bool MIN = true;
    __device__ static __forceinline__ uint32_t pair(const unsigned char *blk, int e) {
        const uint32_t v = gm_s16(blk + 4 + (e & 15)) >> ((e >> 4) * 4);
        return gm_i2h2((int)(v & 15), (int)((v >> 8) & 15));
    }
};
// Fifth bits: bit e of the 32-bit qh word.
struct GQ5_0 {
    static constexpr int BYTES = 22, XBYTES = 34, XQS = 2;
    static constexpr bool MIN = false;
    __device__ static __forceinline__ uint32_t pair(const unsigned char *blk, int e) {
        const uint32_t qh = gm_s32(blk + 2) >> e;
        const uint32_t v = gm_s16(blk + 6 + (e & 15)) >> ((e >> 4) * 4);
        return gm_i2h2((int)((v & 15) | (qh & 1) << 4) - 16,
                       (int)(((v >> 8) & 15) | (qh & 2) << 3) - 16);
    }
};
struct GQ5_1 {
    static constexpr int BYTES = 24, XBYTES = 36, XQS = 4;
    static constexpr bool MIN = true;
    __device__ static __forceinline__ uint32_t pair(const unsigned char *blk, int e) {
        const uint32_t qh = gm_s32(blk + 4) >> e;
        const uint32_t v = gm_s16(blk + 8 + (e & 15)) >> ((e >> 4) * 4);
        return gm_i2h2((int)((v & 15) | (qh & 1) << 4), (int)(((v >> 8) & 15) | (qh & 2) << 3));
    }
};
struct GQ8_0 {
    static constexpr int BYTES = 34, XBYTES = 34, XQS = 2;
    static constexpr bool MIN = false;
    __device__ static __forceinline__ uint32_t pair(const unsigned char *blk, int e) {
        const uint32_t v = gm_s16(blk + 2 + e);
        return gm_i2h2((int)(int8_t)(v & 0xff), (int)(int8_t)(v >> 8));
    }
};
static_assert(sizeof(block_q4_0) == GQ4_0::BYTES && sizeof(block_q4_1) == GQ4_1::BYTES &&
                  sizeof(block_q5_0) == GQ5_0::BYTES && sizeof(block_q5_1) == GQ5_1::BYTES &&
                  sizeof(block_q8_0) == GQ8_0::BYTES && sizeof(block_q8_0) == GQ4_0::XBYTES &&
                  sizeof(block_q8_1) == GQ4_1::XBYTES,
              "legacy block layouts");

constexpr int GQ_CB = GM_KC / 32; // blocks per stage

template <typename Q>
__global__ void __launch_bounds__(GM_THREADS, 1)
    gemm_q_kernel(float *y, const unsigned char *w, size_t ws, const unsigned char *x, size_t xs,
                  int64_t nb, int64_t n_rows, int64_t n_tokens, int aligned16) {
    constexpr int PITCH = gm_round16(GQ_CB * Q::BYTES);
    __shared__ __align__(16) unsigned char sa[GM_BM * PITCH];
    POISON_SHARED(sa);
    __shared__ __align__(16) uint16_t sx[GM_BN * GM_XPITCH];
    POISON_SHARED(sx);
    __shared__ float sxd[GM_BN][GQ_CB];
    POISON_SHARED(sxd);
    __shared__ float sxs[GM_BN][GQ_CB];
    POISON_SHARED(sxs);

    const int warp = threadIdx.x / 32;
    const int wm = (warp / 2) * 32, wn = (warp % 2) * 16;
    const int64_t r0 = (int64_t)blockIdx.y * GM_BM, t0 = (int64_t)blockIdx.x * GM_BN;

    float acc[2][2][4];
    SLIM_UNROLL
    for (int i = 0; i < 16; i++)
        acc[i / 8][(i / 4) % 2][i % 4] = 0.0f;

    for (int64_t kb = 0; kb < nb; kb += GQ_CB) {
        const int nbk = (int)(nb - kb < GQ_CB ? nb - kb : GQ_CB);
        GM_REFILL_SYNC(); // every warp is done with the previous stage
        gm_stage_rows<PITCH>(sa, w, ws, r0, n_rows, (size_t)kb * Q::BYTES, nbk * Q::BYTES,
                             aligned16 != 0);
        // Activation quants: item = (token, block, 4 quants).
        for (int i = threadIdx.x; i < GM_BN * GQ_CB * 8; i += GM_THREADS) {
            const int t = i / (GQ_CB * 8), b = (i / 8) % GQ_CB, q = i % 8;
            uint32_t v = 0;
            if (t0 + t < n_tokens && b < nbk)
                v = ld_u32_a2(x + (size_t)(t0 + t) * xs + (size_t)(kb + b) * Q::XBYTES + Q::XQS +
                              4 * q);
            gm_put_x4(sx + t * GM_XPITCH + b * 32 + 4 * q, v);
        }
        for (int i = threadIdx.x; i < GM_BN * GQ_CB; i += GM_THREADS) {
            const int t = i / GQ_CB, b = i % GQ_CB;
            float d = 0.0f, s = 0.0f;
            if (t0 + t < n_tokens && b < nbk) {
                const unsigned char *xb = x + (size_t)(t0 + t) * xs + (size_t)(kb + b) * Q::XBYTES;
                d = f16_bits_to_f32(ld_u16(xb));
                if (Q::MIN) s = f16_bits_to_f32(ld_u16(xb + 2));
            }
            sxd[t][b] = d;
            sxs[t][b] = s;
        }
        __syncthreads();

        for (int b = 0; b < nbk; b++) {
            float p[2][2][4];
            SLIM_UNROLL
            for (int i = 0; i < 16; i++)
                p[i / 8][(i / 4) % 2][i % 4] = 0.0f;
            SLIM_UNROLL
            for (int j = 0; j < 32; j += 16) {
                uint32_t bf[4];
                gm_load_b(bf, sx, wn, b * 32 + j);
                gm_mma_step<Q>(p, sa, PITCH, wm, b * Q::BYTES, j, bf);
            }
            SLIM_UNROLL
            for (int i = 0; i < 16; i++) {
                const int mt = i / 8, nt = (i / 4) % 2, c = i % 4;
                const unsigned char *blk = sa + gm_row(wm, mt, c) * PITCH + b * Q::BYTES;
                const int tok = gm_tok(wn, nt, c);
                float term = __fmul_rn(__fmul_rn(gm_sh(blk), sxd[tok][b]), p[mt][nt][c]);
                if (Q::MIN) term = __fadd_rn(term, __fmul_rn(gm_sh(blk + 2), sxs[tok][b]));
                acc[mt][nt][c] = __fadd_rn(acc[mt][nt][c], term);
            }
        }
    }
    gm_store(y, acc, r0, t0, wm, wn, n_rows, n_tokens);
}

template <typename Q>
int gemm_q_launch(float *y, const void *w, size_t ws, const void *xq, size_t xs, int64_t n,
                  int64_t n_rows, int64_t n_tokens, void *stream) {
    const int64_t gx = (n_tokens + GM_BN - 1) / GM_BN, gy = (n_rows + GM_BM - 1) / GM_BM;
    if (gx > 0x7fffffff || gy > 65535) return (int)cudaErrorInvalidValue;
    const int aligned16 = (((uintptr_t)w | ws) & 15) == 0;
    LAUNCH((gemm_q_kernel<Q>), dim3((unsigned)gx, (unsigned)gy), dim3(GM_THREADS), 0,
           (cudaStream_t)stream, y, static_cast<const unsigned char *>(w), ws,
           static_cast<const unsigned char *>(xq), xs, n / 32, n_rows, n_tokens, aligned16);
    return slim_launch_result();
}

} // namespace

int slim_gemm_legacy(int dtype, float *y, const void *w, size_t ws, const void *xq, size_t xs,
                     int64_t n, int64_t n_rows, int64_t n_tokens, void *stream) {
    switch (dtype) {
    case SLIM_DTYPE_Q4_0:
        return gemm_q_launch<GQ4_0>(y, w, ws, xq, xs, n, n_rows, n_tokens, stream);
    case SLIM_DTYPE_Q4_1:
        return gemm_q_launch<GQ4_1>(y, w, ws, xq, xs, n, n_rows, n_tokens, stream);
    case SLIM_DTYPE_Q5_0:
        return gemm_q_launch<GQ5_0>(y, w, ws, xq, xs, n, n_rows, n_tokens, stream);
    case SLIM_DTYPE_Q5_1:
        return gemm_q_launch<GQ5_1>(y, w, ws, xq, xs, n, n_rows, n_tokens, stream);
    case SLIM_DTYPE_Q8_0:
        return gemm_q_launch<GQ8_0>(y, w, ws, xq, xs, n, n_rows, n_tokens, stream);
    default: return (int)cudaErrorInvalidValue;
    }
}
