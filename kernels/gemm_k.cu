// gemm_k.cu: prefill GEMM for the K-quants (Q4_K, Q5_K, Q6_K) against Q8_K
// activations, on tensor cores (gemm.cuh).
//
// A stage is one 256-weight super-block per row.  Per sub-block (32 weights
// for Q4_K/Q5_K: two k16 mma steps; 16 for Q6_K: one) a fresh accumulator
// holds the integer sum, which is added times its integer scale into an int32
// super-block sum, as lib/quant/q_k.c does; then the CPU's float scaling:
//   Q4_K, Q5_K:  sum += (x.d * d) * isum - (x.d * dmin) * msum,
//                msum = sum_j m_j * (bsums[2j] + bsums[2j+1])
//   Q6_K:        sum += (x.d * d) * isum
// Q6_K subtracts its offset 32 from the quants before the mma (the CPU goes
// through the block sums): the same integer isum.
#include "common.cuh"
#include "gemm.cuh"
#include "kernels.h"

#include "../lib/quant/blocks.h"

namespace {

// Q4_K / Q5_K: 6-bit scale (MIN = false) or min of sub-block j from the 12
// packed bytes at s (staged in shared memory).
template <bool MIN> __device__ __forceinline__ int gk_scale_min(const unsigned char *s, int j) {
    if (j < 4) return (int)(s[j + (MIN ? 4 : 0)] & 63);
    return MIN ? (int)((s[j + 4] >> 4) | (s[j] >> 6) << 4)
               : (int)((s[j + 4] & 15) | (s[j - 4] >> 6) << 4);
}

// A format: BYTES per super-block, SUB weights per integer group,
// pair(blk, e): quants e, e+1 (e even) as f16 integers; scale(blk, s): the
// integer scale of group s.
struct GQ4_K { // d, dmin, scales[12], qs[128]: e = 64c + 32h + l is nibble h of qs[32c + l]
    static constexpr int BYTES = 144, SUB = 32;
    static constexpr bool MIN = true;
    __device__ static __forceinline__ uint32_t pair(const unsigned char *blk, int e) {
        const uint32_t v = gm_s16(blk + 16 + 32 * (e / 64) + e % 32) >> (4 * ((e / 32) % 2));
        return gm_i2h2((int)(v & 15), (int)((v >> 8) & 15));
    }
    __device__ static __forceinline__ int scale(const unsigned char *blk, int s) {
        return gk_scale_min<false>(blk + 4, s);
    }
};
struct GQ5_K { // d, dmin, scales[12], qh[32], qs[128]: fifth bit e/32 of qh[e % 32]
    static constexpr int BYTES = 176, SUB = 32;
    static constexpr bool MIN = true;
    __device__ static __forceinline__ uint32_t pair(const unsigned char *blk, int e) {
        const int j = e / 32, l = e % 32;
        const uint32_t v = gm_s16(blk + 48 + 32 * (j / 2) + l) >> (4 * (j % 2));
        const uint32_t h = gm_s16(blk + 16 + l) >> j;
        return gm_i2h2((int)((v & 15) | (h & 1) << 4),
                       (int)(((v >> 8) & 15) | ((h >> 8) & 1) << 4));
    }
    __device__ static __forceinline__ int scale(const unsigned char *blk, int s) {
        return gk_scale_min<false>(blk + 4, s);
    }
};
struct GQ6_K { // ql[128], qh[64], scales[16] (int8), d; see blocks.h
    static constexpr int BYTES = 210, SUB = 16;
    static constexpr bool MIN = false;
    __device__ static __forceinline__ uint32_t pair(const unsigned char *blk, int e) {
        const int h = e / 128, s = (e / 32) % 4, l = e % 32;
        const uint32_t lo = gm_s16(blk + 64 * h + 32 * (s & 1) + l) >> (4 * (s >> 1));
        const uint32_t hi = gm_s16(blk + 128 + 32 * h + l) >> (2 * s);
        return gm_i2h2((int)((lo & 15) | (hi & 3) << 4) - 32,
                       (int)(((lo >> 8) & 15) | ((hi >> 8) & 3) << 4) - 32);
    }
    __device__ static __forceinline__ int scale(const unsigned char *blk, int s) {
        return (int)(int8_t)blk[192 + s];
    }
};
static_assert(sizeof(block_q4_K) == GQ4_K::BYTES && sizeof(block_q5_K) == GQ5_K::BYTES &&
                  sizeof(block_q6_K) == GQ6_K::BYTES && sizeof(block_q8_K) == 292,
              "K-quant block layouts");

constexpr int GK_XBYTES = 292, GK_XQS = 4, GK_XBS = 260; // block_q8_K: d, qs[256], bsums[16]

template <typename Q>
__global__ void __launch_bounds__(GM_THREADS, 1)
    gemm_k_kernel(float *y, const unsigned char *w, size_t ws, const unsigned char *x, size_t xs,
                  int64_t nb, int64_t n_rows, int64_t n_tokens, int aligned16) {
    constexpr int PITCH = gm_round16(Q::BYTES);
    __shared__ __align__(16) unsigned char sa[GM_BM * PITCH];
    POISON_SHARED(sa);
    __shared__ __align__(16) uint16_t sx[GM_BN * GM_XPITCH];
    POISON_SHARED(sx);
    __shared__ float sxd[GM_BN];
    POISON_SHARED(sxd);
    __shared__ int sbs[GM_BN][16];
    POISON_SHARED(sbs);

    const int warp = threadIdx.x / 32;
    const int wm = (warp / 2) * 32, wn = (warp % 2) * 16;
    const int64_t r0 = (int64_t)blockIdx.y * GM_BM, t0 = (int64_t)blockIdx.x * GM_BN;

    float acc[2][2][4];
    SLIM_UNROLL
    for (int i = 0; i < 16; i++)
        acc[i / 8][(i / 4) % 2][i % 4] = 0.0f;

    for (int64_t kb = 0; kb < nb; kb++) {
        GM_REFILL_SYNC(); // every warp is done with the previous stage
        gm_stage_rows<PITCH>(sa, w, ws, r0, n_rows, (size_t)kb * Q::BYTES, Q::BYTES,
                             aligned16 != 0);
        for (int i = threadIdx.x; i < GM_BN * 64; i += GM_THREADS) { // (token, 4 quants)
            const int t = i / 64, q = i % 64;
            uint32_t v = 0;
            if (t0 + t < n_tokens) {
                const unsigned char *p =
                    x + (size_t)(t0 + t) * xs + (size_t)kb * GK_XBYTES + GK_XQS + 4 * q;
                SLIM_CHECK_ALIGN(p, 4, "gemm_k activations");
                v = __ldg(reinterpret_cast<const unsigned int *>(p));
            }
            gm_put_x4(sx + t * GM_XPITCH + 4 * q, v);
        }
        for (int i = threadIdx.x; i < GM_BN * 17; i += GM_THREADS) { // (token, d or bsum j)
            const int t = i / 17, j = i % 17;
            const unsigned char *xb = x + (size_t)(t0 + t) * xs + (size_t)kb * GK_XBYTES;
            const bool ok = t0 + t < n_tokens;
            if (j == 16)
                sxd[t] = ok ? __ldg(reinterpret_cast<const float *>(xb)) : 0.0f;
            else
                sbs[t][j] = ok ? (int)(int16_t)ld_u16(xb + GK_XBS + 2 * j) : 0;
        }
        __syncthreads();

        int isum[2][2][4];
        SLIM_UNROLL
        for (int i = 0; i < 16; i++)
            isum[i / 8][(i / 4) % 2][i % 4] = 0;
        for (int s = 0; s < 256 / Q::SUB; s++) {
            float p[2][2][4];
            SLIM_UNROLL
            for (int i = 0; i < 16; i++)
                p[i / 8][(i / 4) % 2][i % 4] = 0.0f;
            SLIM_UNROLL
            for (int j = 0; j < Q::SUB; j += 16) {
                uint32_t bf[4];
                gm_load_b(bf, sx, wn, s * Q::SUB + j);
                gm_mma_step<Q>(p, sa, PITCH, wm, 0, s * Q::SUB + j, bf);
            }
            SLIM_UNROLL
            for (int i = 0; i < 16; i++) {
                const int mt = i / 8, nt = (i / 4) % 2, c = i % 4;
                const int sc = Q::scale(sa + gm_row(wm, mt, c) * PITCH, s);
                isum[mt][nt][c] += sc * (int)p[mt][nt][c]; // p: an exact integer
            }
        }
        SLIM_UNROLL
        for (int i = 0; i < 16; i++) {
            const int mt = i / 8, nt = (i / 4) % 2, c = i % 4;
            const unsigned char *blk = sa + gm_row(wm, mt, c) * PITCH;
            const int tok = gm_tok(wn, nt, c);
            float term;
            if constexpr (Q::MIN) {
                int msum = 0;
                SLIM_UNROLL
                for (int j = 0; j < 8; j++)
                    msum +=
                        gk_scale_min<true>(blk + 4, j) * (sbs[tok][2 * j] + sbs[tok][2 * j + 1]);
                term = __fadd_rn(__fmul_rn(__fmul_rn(sxd[tok], gm_sh(blk)), (float)isum[mt][nt][c]),
                                 -__fmul_rn(__fmul_rn(sxd[tok], gm_sh(blk + 2)), (float)msum));
            } else {
                term = __fmul_rn(__fmul_rn(sxd[tok], gm_sh(blk + 208)), (float)isum[mt][nt][c]);
            }
            acc[mt][nt][c] = __fadd_rn(acc[mt][nt][c], term);
        }
    }
    gm_store(y, acc, r0, t0, wm, wn, n_rows, n_tokens);
}

template <typename Q>
int gemm_k_launch(float *y, const void *w, size_t ws, const void *xq, size_t xs, int64_t n,
                  int64_t n_rows, int64_t n_tokens, void *stream) {
    const int64_t gx = (n_tokens + GM_BN - 1) / GM_BN, gy = (n_rows + GM_BM - 1) / GM_BM;
    if (gx > 0x7fffffff || gy > 65535) return (int)cudaErrorInvalidValue;
    // Q4_K / Q5_K super-blocks (144, 176 bytes) keep 16-byte alignment; Q6_K's 210 do not.
    const int aligned16 = Q::BYTES % 16 == 0 && (((uintptr_t)w | ws) & 15) == 0;
    LAUNCH((gemm_k_kernel<Q>), dim3((unsigned)gx, (unsigned)gy), dim3(GM_THREADS), 0,
           (cudaStream_t)stream, y, static_cast<const unsigned char *>(w), ws,
           static_cast<const unsigned char *>(xq), xs, n / 256, n_rows, n_tokens, aligned16);
    return slim_launch_result();
}

} // namespace

int slim_gemm_kquant(int dtype, float *y, const void *w, size_t ws, const void *xq, size_t xs,
                     int64_t n, int64_t n_rows, int64_t n_tokens, void *stream) {
    switch (dtype) {
    case SLIM_DTYPE_Q4_K:
        return gemm_k_launch<GQ4_K>(y, w, ws, xq, xs, n, n_rows, n_tokens, stream);
    case SLIM_DTYPE_Q5_K:
        return gemm_k_launch<GQ5_K>(y, w, ws, xq, xs, n, n_rows, n_tokens, stream);
    case SLIM_DTYPE_Q6_K:
        return gemm_k_launch<GQ6_K>(y, w, ws, xq, xs, n, n_rows, n_tokens, stream);
    default: return (int)cudaErrorInvalidValue;
    }
}
