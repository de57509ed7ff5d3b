// attention_prefill.cu: flash attention on tensor cores (mma.sync m16n8k16,
// f16 inputs, f32 accumulators), and slim_cuda_attention, which picks this
// path or the split-KV decode one (attention_decode.cu).
//
// One block of 4 warps per (tile of BM = 64 queries, head); warp w owns query
// rows 16w..16w+15.  Head dims are padded with zeros to DP (a multiple of 16,
// one instantiation per DP in prefill_launch).  Per key tile of BN keys:
//   - K and V rows go to shared memory (16-byte loads, zero-filled past the
//     block's key range and past head_dim);
//   - S = Q K^T: A fragments of Q (f16, staged in shared memory once) and B
//     fragments of K by ldmatrix, f32 accumulators;
//   - softcap, then the causal / sliding-window mask, applied only on tiles
//     that cross a boundary of some row's key range;
//   - online softmax in registers: row max over the 4 lanes of a quad,
//     rescale of the running sum and output, P = exp(S - max) rounded to f16
//     (the running sum adds the rounded values, so the weights that multiply
//     V sum to the divisor);
//   - O += P V: P straight from the S accumulators (the C fragment of m16n8 is
//     the A fragment of m16n8k16), V by ldmatrix.trans.
// Warps whose rows see nothing of a tile (all past the last query, or before
// the diagonal, or out of the window) skip it.  Every sum runs in a fixed
// order (mma in k order, fixed butterflies): results are deterministic.
// Blocks with the most keys (the last query tiles) are scheduled first.
#include "attention.cuh"
#include "common.cuh"
#include "kernels.h"
#include "ptx.cuh"
#include "util.cuh"

namespace {

using slim_attn::Args;

constexpr int PF_WARPS = 4;
constexpr int PF_THREADS = 32 * PF_WARPS;
constexpr int PF_BM = 16 * PF_WARPS; // queries per block
// Two blocks per SM: up to 255 registers (DP 256 takes ~240), no spills.
constexpr int PF_MIN_BLOCKS = 2;

template <int DP, int BN> constexpr size_t prefill_smem_bytes() {
    return (size_t)(PF_BM + 2 * BN) * (DP + 8) * sizeof(uint16_t);
}

template <int DP, int BN>
__global__ void __launch_bounds__(PF_THREADS, PF_MIN_BLOCKS) prefill_kernel(Args a) {
    static_assert(DP % 16 == 0 && BN % 16 == 0, "tiles are multiples of 16");
    constexpr int ST = DP + 8;  // row stride in halves: 16-byte rows, conflict-free ldmatrix
    constexpr int CPR = DP / 8; // 16-byte chunks per row
    SHARED_DYN(uint16_t, smem);
    uint16_t *Qs = smem, *Ks = Qs + PF_BM * ST, *Vs = Ks + BN * ST;

    const int tid = threadIdx.x, lane = tid % 32, warp = tid / 32;
    const int g = lane >> 2, tq = lane & 3;
    const int32_t pos0 = slim_attn::read_pos0(a);
    const int32_t t0 = (int32_t)(gridDim.x - 1 - blockIdx.x) * PF_BM; // heavy tiles first
    const int32_t h = blockIdx.y, kvh = h / (a.n_head / a.n_head_kv), hd = a.head_dim;
    const int32_t rows = min(PF_BM, a.n_tokens - t0);
    const int64_t q_stride = (int64_t)a.n_head * hd, kv_stride = (int64_t)a.n_head_kv * hd;
    const float *q = a.q + (int64_t)t0 * q_stride + (int64_t)h * hd;
    const uint16_t *kg = a.k + (int64_t)kvh * hd, *vg = a.v + (int64_t)kvh * hd;

    // Q tile to f16, zero rows past n_tokens and columns past head_dim.
    for (int i = tid; i < PF_BM * CPR; i += PF_THREADS) {
        const int r = i / CPR, c = (i % CPR) * 8;
        uint4 w = make_uint4(0, 0, 0, 0);
        if (r < rows && c < hd) {
            const float4 x0 = ld_f32x4(q + r * q_stride + c),
                         x1 = ld_f32x4(q + r * q_stride + c + 4);
            w = make_uint4(slim_attn::pack_f16x2(x0.x, x0.y), slim_attn::pack_f16x2(x0.z, x0.w),
                           slim_attn::pack_f16x2(x1.x, x1.y), slim_attn::pack_f16x2(x1.z, x1.w));
        }
        *reinterpret_cast<uint4 *>(&Qs[r * ST + c]) = w;
    }

    // Keys of the block: [kbeg, kend).  Rows past n_tokens take the last
    // query's position, so every row sees at least one key (no 0/0).
    const int32_t pos_first = pos0 + t0, pos_last = pos0 + t0 + rows - 1;
    const int32_t kbeg = slim_attn::first_key(pos_first, a.window), kend = pos_last + 1;
    const int32_t pa = min(pos_first + warp * 16 + g, pos_last), pb = min(pa + 8, pos_last);
    const int32_t fa = slim_attn::first_key(pa, a.window), fb = slim_attn::first_key(pb, a.window);
    // The warp's own range, for skipping tiles.
    const int32_t wpos_first = min(pos_first + warp * 16, pos_last);
    const int32_t wpos_last = min(pos_first + warp * 16 + 15, pos_last);
    const int32_t wkbeg = slim_attn::first_key(wpos_first, a.window);
    const bool warp_has_rows = warp * 16 < rows;

    float m[2] = {-INFINITY, -INFINITY}, l[2] = {0.0f, 0.0f};
    float o[DP / 8][4];
    SLIM_UNROLL
    for (int nf = 0; nf < DP / 8; nf++)
        o[nf][0] = o[nf][1] = o[nf][2] = o[nf][3] = 0.0f;

    for (int32_t k0 = kbeg / BN * BN; k0 < kend; k0 += BN) {
        __syncthreads(); // the previous tile's readers are done (first time: nothing to wait for)
        for (int i = tid; i < BN * CPR; i += PF_THREADS) {
            const int r = i / CPR, c = (i % CPR) * 8;
            const int32_t j = k0 + r;
            uint4 wk = make_uint4(0, 0, 0, 0), wv = wk;
            if (j >= kbeg && j < kend && c < hd) {
                wk = slim_attn::ld_u16x8(kg + j * kv_stride + c);
                wv = slim_attn::ld_u16x8(vg + j * kv_stride + c);
            }
            *reinterpret_cast<uint4 *>(&Ks[r * ST + c]) = wk;
            *reinterpret_cast<uint4 *>(&Vs[r * ST + c]) = wv;
        }
        __syncthreads(); // tiles (and the first time Q) are written
        if (!warp_has_rows || k0 > wpos_last || k0 + BN - 1 < wkbeg) continue;

        // S = Q K^T for this warp's 16 rows x BN keys.
        float s[BN / 8][4];
        SLIM_UNROLL
        for (int nf = 0; nf < BN / 8; nf++)
            s[nf][0] = s[nf][1] = s[nf][2] = s[nf][3] = 0.0f;
        SLIM_UNROLL
        for (int kk = 0; kk < DP / 16; kk++) {
            uint32_t qa[4];
            ldmatrix_x4(qa, &Qs[(warp * 16 + lane % 16) * ST + kk * 16 + (lane / 16) * 8]);
            SLIM_UNROLL
            for (int np = 0; np < BN / 16; np++) {
                uint32_t kb[4];
                ldmatrix_x4(kb, &Ks[(np * 16 + (lane / 16) * 8 + lane % 8) * ST + kk * 16 +
                                    ((lane / 8) & 1) * 8]);
                const uint32_t b0[2] = {kb[0], kb[1]}, b1[2] = {kb[2], kb[3]};
                mma_m16n8k16_f16(s[2 * np], qa, b0, s[2 * np]);
                mma_m16n8k16_f16(s[2 * np + 1], qa, b1, s[2 * np + 1]);
            }
        }

        if (a.softcap > 0.0f) {
            SLIM_UNROLL
            for (int nf = 0; nf < BN / 8; nf++)
                SLIM_UNROLL
            for (int i = 0; i < 4; i++)
                s[nf][i] = slim_attn::softcap_score(s[nf][i], a.softcap);
        }
        // Mask only where some row's range ends inside the tile.
        if (k0 + BN - 1 > wpos_first || k0 < slim_attn::first_key(wpos_last, a.window)) {
            SLIM_UNROLL
            for (int nf = 0; nf < BN / 8; nf++)
                SLIM_UNROLL
            for (int i = 0; i < 4; i++) {
                const int32_t j = k0 + nf * 8 + tq * 2 + (i & 1);
                const bool vis = i < 2 ? (j >= fa && j <= pa) : (j >= fb && j <= pb);
                if (!vis) s[nf][i] = -INFINITY;
            }
        }

        // Online softmax: the 4 lanes of a quad hold one row pair.
        float mx[2] = {m[0], m[1]};
        SLIM_UNROLL
        for (int nf = 0; nf < BN / 8; nf++) {
            mx[0] = fmaxf(mx[0], fmaxf(s[nf][0], s[nf][1]));
            mx[1] = fmaxf(mx[1], fmaxf(s[nf][2], s[nf][3]));
        }
        SLIM_UNROLL
        for (int x = 0; x < 2; x++) {
            mx[x] = fmaxf(mx[x], __shfl_xor_sync(SLIM_FULL_MASK, mx[x], 1));
            mx[x] = fmaxf(mx[x], __shfl_xor_sync(SLIM_FULL_MASK, mx[x], 2));
        }
        float base[2], alpha[2];
        SLIM_UNROLL
        for (int x = 0; x < 2; x++) {
            base[x] = mx[x] == -INFINITY ? 0.0f : mx[x]; // a row with nothing yet: exp(-inf) = 0
            alpha[x] = __expf(m[x] - base[x]);
            m[x] = mx[x];
            l[x] *= alpha[x];
        }
        SLIM_UNROLL
        for (int nf = 0; nf < DP / 8; nf++) {
            o[nf][0] *= alpha[0];
            o[nf][1] *= alpha[0];
            o[nf][2] *= alpha[1];
            o[nf][3] *= alpha[1];
        }
        uint32_t p[BN / 8][2]; // f16 pairs: rows g (c0, c1) and g + 8 (c2, c3)
        SLIM_UNROLL
        for (int nf = 0; nf < BN / 8; nf++) {
            p[nf][0] =
                slim_attn::pack_f16x2(__expf(s[nf][0] - base[0]), __expf(s[nf][1] - base[0]));
            p[nf][1] =
                slim_attn::pack_f16x2(__expf(s[nf][2] - base[1]), __expf(s[nf][3] - base[1]));
            const float2 ra = slim_attn::unpack_f16x2(p[nf][0]),
                         rb = slim_attn::unpack_f16x2(p[nf][1]);
            l[0] += ra.x + ra.y;
            l[1] += rb.x + rb.y;
        }

        // O += P V.
        SLIM_UNROLL
        for (int kk = 0; kk < BN / 16; kk++) {
            const uint32_t pa4[4] = {p[2 * kk][0], p[2 * kk][1], p[2 * kk + 1][0],
                                     p[2 * kk + 1][1]};
            SLIM_UNROLL
            for (int np = 0; np < DP / 16; np++) {
                uint32_t vb[4];
                ldmatrix_x4_trans(vb, &Vs[(kk * 16 + ((lane / 8) & 1) * 8 + lane % 8) * ST +
                                          np * 16 + (lane / 16) * 8]);
                const uint32_t b0[2] = {vb[0], vb[1]}, b1[2] = {vb[2], vb[3]};
                mma_m16n8k16_f16(o[2 * np], pa4, b0, o[2 * np]);
                mma_m16n8k16_f16(o[2 * np + 1], pa4, b1, o[2 * np + 1]);
            }
        }
    }

    if (!warp_has_rows) return; // no barrier follows
    SLIM_UNROLL
    for (int x = 0; x < 2; x++) {
        l[x] += __shfl_xor_sync(SLIM_FULL_MASK, l[x], 1);
        l[x] += __shfl_xor_sync(SLIM_FULL_MASK, l[x], 2);
    }
    const float inv_a = 1.0f / l[0], inv_b = 1.0f / l[1];
    const int ra = warp * 16 + g, rb = ra + 8;
    float *out = a.out + (int64_t)t0 * q_stride + (int64_t)h * hd;
    SLIM_UNROLL
    for (int nf = 0; nf < DP / 8; nf++) {
        const int c = nf * 8 + tq * 2;
        if (c >= hd) break; // head_dim is a multiple of 8: whole fragments
        if (ra < rows)
            *reinterpret_cast<float2 *>(out + ra * q_stride + c) =
                make_float2(o[nf][0] * inv_a, o[nf][1] * inv_a);
        if (rb < rows)
            *reinterpret_cast<float2 *>(out + rb * q_stride + c) =
                make_float2(o[nf][2] * inv_b, o[nf][3] * inv_b);
    }
}

template <int DP, int BN> int prefill_launch_dp(const Args &a, cudaStream_t stream) {
    constexpr size_t smem = prefill_smem_bytes<DP, BN>();
    if (smem > 48 * 1024) {
        const cudaError_t e =
            cudaFuncSetAttribute((const void *)prefill_kernel<DP, BN>,
                                 cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem);
        if (e != cudaSuccess) return (int)e;
    }
    const dim3 grid((unsigned)((a.n_tokens + PF_BM - 1) / PF_BM), (unsigned)a.n_head);
    LAUNCH((prefill_kernel<DP, BN>), grid, dim3(PF_THREADS), smem, stream, a);
    return slim_launch_result();
}

} // namespace

int slim_attn_prefill_launch(const Args &a, cudaStream_t stream) {
    // Head dims pad up to the next instantiated DP.  Tiles: 64 keys up to DP
    // 96, 32 above (shared memory: 40 KiB at DP 96, 34 KiB at 128, 50 KiB at
    // 192, 66 KiB at 256; the last two raise the 48 KiB default).
    const int d = a.head_dim;
    if (d <= 16) return prefill_launch_dp<16, 64>(a, stream);
    if (d <= 32) return prefill_launch_dp<32, 64>(a, stream);
    if (d <= 64) return prefill_launch_dp<64, 64>(a, stream);
    if (d <= 80) return prefill_launch_dp<80, 64>(a, stream);
    if (d <= 96) return prefill_launch_dp<96, 64>(a, stream);
    if (d <= 128) return prefill_launch_dp<128, 32>(a, stream);
    if (d <= 192) return prefill_launch_dp<192, 32>(a, stream);
    return prefill_launch_dp<256, 32>(a, stream);
}

extern "C" size_t slim_cuda_attention_scratch_bytes(int32_t n_tokens, int32_t n_head,
                                                    int32_t head_dim, int32_t n_ctx) {
    if (n_tokens <= 0 || n_head <= 0 || head_dim <= 0 || n_ctx <= 0) return 0;
    // Enough for every call of up to n_tokens tokens: only decode calls use it.
    if (n_tokens > slim_attn::DECODE_MAX_TOKENS) n_tokens = slim_attn::DECODE_MAX_TOKENS;
    return slim_attn_decode_scratch_bytes(n_tokens, n_head, head_dim, n_ctx);
}

extern "C" int slim_cuda_attention(float *out, const float *q, const uint16_t *k_cache,
                                   const uint16_t *v_cache, int32_t n_tokens, const int32_t *pos0,
                                   int32_t n_head, int32_t n_head_kv, int32_t head_dim,
                                   int32_t window, float softcap, int32_t n_ctx, void *scratch,
                                   void *stream) {
    const bool decode = n_tokens <= slim_attn::DECODE_MAX_TOKENS;
    if (n_tokens < 0 || n_head <= 0 || n_head_kv <= 0 || n_head % n_head_kv || head_dim < 8 ||
        head_dim > 256 || head_dim % 8 || window < 0 || !(softcap >= 0.0f) || isinf(softcap) ||
        n_ctx < n_tokens || n_head > 65535)
        return (int)cudaErrorInvalidValue;
    if (n_tokens == 0) return 0;
    if (!out || !q || !k_cache || !v_cache || !pos0 || ((uintptr_t)out & 15) ||
        ((uintptr_t)q & 15) || ((uintptr_t)k_cache & 15) || ((uintptr_t)v_cache & 15) ||
        ((uintptr_t)pos0 & 3) || (decode && (!scratch || ((uintptr_t)scratch & 15))))
        return (int)cudaErrorInvalidValue;
    Args a;
    a.out = out;
    a.q = q;
    a.k = k_cache;
    a.v = v_cache;
    a.pos0 = pos0;
    a.n_tokens = n_tokens;
    a.n_head = n_head;
    a.n_head_kv = n_head_kv;
    a.head_dim = head_dim;
    a.window = window;
    a.n_ctx = n_ctx;
    a.softcap = softcap;
    return decode ? slim_attn_decode_launch(a, scratch, (cudaStream_t)stream)
                  : slim_attn_prefill_launch(a, (cudaStream_t)stream);
}
