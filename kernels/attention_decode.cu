// attention_decode.cu: split-KV attention (flash-decoding) for a few queries
// (n_tokens <= slim_attn::DECODE_MAX_TOKENS), all in f32 on CUDA cores.
//
// The key range [0, n_ctx) is cut into chunks of chunk_keys(n_ctx) keys (a
// multiple of DEC_TILE = 128, at most 128 chunks).  decode_partial_kernel: one
// 128-thread block per (chunk, kv head, block of RB query rows); a query row is
// a (token, head of the kv group) pair, so the heads of one group share every
// K and V load.  Per tile of 128 keys:
//   A. thread j computes the scores of key j for the RB rows (its K row by
//      16-byte loads, q from shared memory), softcap, mask -> S[RB][128];
//   B. warp w updates the running max / sum of rows w, w + 4 (online softmax)
//      and turns S into exp(S - max);
//   C. thread (d-group of 8 dims, key slice) rescales its RB x 8 accumulators
//      and adds p * v over its keys (16-byte V loads).
// At the end the key slices are summed in order and the block writes, per row,
// its unnormalized output, max and sum (scratch).  Blocks whose keys lie
// outside every row's range at the current *pos0 exit at once; the grid only
// depends on n_ctx, n_tokens and the heads, so a captured graph replays at
// any position.  decode_combine_kernel then merges, per (token, head), the
// chunks that intersect that row's key range in increasing chunk order.
// Every sum has a fixed order: results are deterministic.
#include "attention.cuh"
#include "common.cuh"
#include "kernels.h"
#include "util.cuh"

namespace {

using slim_attn::Args;
using slim_attn::DEC_TILE;

constexpr int DEC_THREADS = 128;
static_assert(DEC_TILE == DEC_THREADS, "phase A: one key per thread");
constexpr int DEC_MAX_HD = 256;
// Three blocks (12 warps) per SM: RB = 8 fits in ~168 registers without spills.
constexpr int DEC_MIN_BLOCKS = 3;

struct Partials {
    float *o;   // [n_tokens * n_head][n_chunks][head_dim], relative to the chunk's max
    float2 *ml; // [n_tokens * n_head][n_chunks]: (max, sum)
};

Partials partials(void *scratch, const Args &a) {
    const int64_t rows = (int64_t)a.n_tokens * a.n_head, nch = slim_attn::n_chunks(a.n_ctx);
    Partials p;
    p.o = static_cast<float *>(scratch);
    p.ml = reinterpret_cast<float2 *>(p.o + rows * nch * a.head_dim);
    return p;
}

template <int RB>
__global__ void __launch_bounds__(DEC_THREADS, DEC_MIN_BLOCKS)
    decode_partial_kernel(Args a, Partials part) {
    __shared__ __align__(16) float Qs[RB][DEC_MAX_HD];
    __shared__ float S[RB][DEC_TILE];
    __shared__ float Alpha[RB], Mrow[RB], Lrow[RB];
    __shared__ __align__(16) float red[8 * DEC_THREADS * RB]; // [key slice][row][dim]
    POISON_SHARED(Qs);
    POISON_SHARED(S);
    POISON_SHARED(Alpha);
    POISON_SHARED(Mrow);
    POISON_SHARED(Lrow);
    POISON_SHARED(red);

    const int tid = threadIdx.x, lane = tid % 32, warp = tid / 32;
    const int32_t pos0 = slim_attn::read_pos0(a);
    const int32_t chunk = blockIdx.x, kvh = blockIdx.y, hd = a.head_dim;
    const int32_t group = a.n_head / a.n_head_kv, n_rows = a.n_tokens * group;
    const int32_t row0 = blockIdx.z * RB; // rows are (token, head in group), token-major
    const int32_t ck = slim_attn::chunk_keys(a.n_ctx), nch = slim_attn::n_chunks(a.n_ctx);

    // Key range of the block: the union of its rows' ranges, within the chunk.
    const int32_t t_first = row0 / group, t_last = (min(row0 + RB, n_rows) - 1) / group;
    const int32_t kbeg = max(slim_attn::first_key(pos0 + t_first, a.window), chunk * ck);
    const int32_t kend = min(pos0 + t_last + 1, chunk * ck + ck);
    if (kbeg >= kend) return; // whole block, before any barrier

    // Row positions (-1: no row, sees nothing).
    int32_t rpos[RB], rfirst[RB];
    SLIM_UNROLL
    for (int r = 0; r < RB; r++) {
        rpos[r] = row0 + r < n_rows ? pos0 + (row0 + r) / group : -1;
        rfirst[r] = slim_attn::first_key(rpos[r], a.window);
    }

    const int64_t q_stride = (int64_t)a.n_head * hd, kv_stride = (int64_t)a.n_head_kv * hd;
    for (int i = tid; i < RB * hd; i += DEC_THREADS) {
        const int r = i / hd, d = i % hd, R = row0 + r;
        Qs[r][d] =
            R < n_rows
                ? a.q[(int64_t)(R / group) * q_stride + (int64_t)(kvh * group + R % group) * hd + d]
                : 0.0f;
    }
    if (tid < RB) {
        Mrow[tid] = -INFINITY;
        Lrow[tid] = 0.0f;
    }

    // Phase C layout: NDG groups of 8 dims x NKS key slices.
    const int ndg = hd / 8, nks = DEC_THREADS / ndg;
    const int dg = tid % ndg, ks = tid / ndg;
    const bool c_active = ks < nks;
    float acc[RB][8];
    SLIM_UNROLL
    for (int r = 0; r < RB; r++)
        SLIM_UNROLL
    for (int e = 0; e < 8; e++)
        acc[r][e] = 0.0f;

    const uint16_t *kg = a.k + (int64_t)kvh * hd, *vg = a.v + (int64_t)kvh * hd;
    __syncthreads(); // Qs, Mrow, Lrow

    for (int32_t k0 = kbeg / DEC_TILE * DEC_TILE; k0 < kend; k0 += DEC_TILE) {
        // A: scores of key k0 + tid.
        {
            const int32_t j = k0 + tid;
            float s[RB];
            SLIM_UNROLL
            for (int r = 0; r < RB; r++)
                s[r] = 0.0f;
            const bool in = j >= kbeg && j < kend;
            if (in) {
                const uint16_t *kr = kg + j * kv_stride;
                for (int d = 0; d < hd; d += 8) {
                    const uint4 w = slim_attn::ld_u16x8(kr + d);
                    const float2 k01 = slim_attn::unpack_f16x2(w.x),
                                 k23 = slim_attn::unpack_f16x2(w.y);
                    const float2 k45 = slim_attn::unpack_f16x2(w.z),
                                 k67 = slim_attn::unpack_f16x2(w.w);
                    SLIM_UNROLL
                    for (int r = 0; r < RB; r++) {
                        const float4 qa = *reinterpret_cast<const float4 *>(&Qs[r][d]);
                        const float4 qb = *reinterpret_cast<const float4 *>(&Qs[r][d + 4]);
                        float t = s[r];
                        t = fmaf(qa.x, k01.x, t);
                        t = fmaf(qa.y, k01.y, t);
                        t = fmaf(qa.z, k23.x, t);
                        t = fmaf(qa.w, k23.y, t);
                        t = fmaf(qb.x, k45.x, t);
                        t = fmaf(qb.y, k45.y, t);
                        t = fmaf(qb.z, k67.x, t);
                        t = fmaf(qb.w, k67.y, t);
                        s[r] = t;
                    }
                }
            }
            SLIM_UNROLL
            for (int r = 0; r < RB; r++) {
                const bool vis = in && j >= rfirst[r] && j <= rpos[r];
                S[r][tid] = vis ? slim_attn::softcap_score(s[r], a.softcap) : -INFINITY;
            }
        }
        __syncthreads();

        // B: online softmax statistics, rows w and w + 4 for warp w.
        for (int r = warp; r < RB; r += DEC_THREADS / 32) {
            float v[DEC_TILE / 32], mx = Mrow[r];
            SLIM_UNROLL
            for (int i = 0; i < DEC_TILE / 32; i++) {
                v[i] = S[r][lane + 32 * i];
                mx = fmaxf(mx, v[i]);
            }
            SLIM_UNROLL
            for (int o = 16; o > 0; o >>= 1)
                mx = fmaxf(mx, __shfl_xor_sync(SLIM_FULL_MASK, mx, o));
            const float base = mx == -INFINITY ? 0.0f : mx;
            float sum = 0.0f;
            SLIM_UNROLL
            for (int i = 0; i < DEC_TILE / 32; i++) {
                v[i] = __expf(v[i] - base);
                S[r][lane + 32 * i] = v[i];
                sum += v[i];
            }
            sum = warp_sum(sum);
            if (lane == 0) { // every lane read Mrow[r] before the shuffles
                const float alpha = __expf(Mrow[r] - base);
                Alpha[r] = alpha;
                Lrow[r] = Lrow[r] * alpha + sum;
                Mrow[r] = mx;
            }
        }
        __syncthreads();

        // C: acc = acc * alpha + sum_j p_j v_j over this thread's key slice.
        if (c_active) {
            SLIM_UNROLL
            for (int r = 0; r < RB; r++) {
                const float al = Alpha[r];
                SLIM_UNROLL
                for (int e = 0; e < 8; e++)
                    acc[r][e] *= al;
            }
            const int32_t jlo = max(kbeg - k0, 0), jhi = min(kend - k0, DEC_TILE);
            int jj = ks;
            if (jj < jlo) jj += (jlo - jj + nks - 1) / nks * nks;
            for (; jj < jhi; jj += nks) {
                const uint4 w = slim_attn::ld_u16x8(vg + (k0 + jj) * kv_stride + dg * 8);
                float vv[8];
                float2 t = slim_attn::unpack_f16x2(w.x);
                vv[0] = t.x, vv[1] = t.y;
                t = slim_attn::unpack_f16x2(w.y);
                vv[2] = t.x, vv[3] = t.y;
                t = slim_attn::unpack_f16x2(w.z);
                vv[4] = t.x, vv[5] = t.y;
                t = slim_attn::unpack_f16x2(w.w);
                vv[6] = t.x, vv[7] = t.y;
                SLIM_UNROLL
                for (int r = 0; r < RB; r++) {
                    const float p = S[r][jj];
                    SLIM_UNROLL
                    for (int e = 0; e < 8; e++)
                        acc[r][e] = fmaf(p, vv[e], acc[r][e]);
                }
            }
        }
        __syncthreads(); // S and Alpha are rewritten by the next tile
    }

    // Sum the key slices in order and write the chunk's partials.
    if (c_active) {
        SLIM_UNROLL
        for (int r = 0; r < RB; r++) {
            float *dst = &red[(ks * RB + r) * hd + dg * 8];
            *reinterpret_cast<float4 *>(dst) =
                make_float4(acc[r][0], acc[r][1], acc[r][2], acc[r][3]);
            *reinterpret_cast<float4 *>(dst + 4) =
                make_float4(acc[r][4], acc[r][5], acc[r][6], acc[r][7]);
        }
    }
    __syncthreads();
    for (int i = tid; i < RB * hd; i += DEC_THREADS) {
        const int r = i / hd, d = i % hd, R = row0 + r;
        if (R >= n_rows) break; // rows are in order: the rest are past n_rows too
        float o = 0.0f;
        for (int k = 0; k < nks; k++)
            o += red[(k * RB + r) * hd + d];
        const int64_t orow = (int64_t)(R / group) * a.n_head + kvh * group + R % group;
        part.o[(orow * nch + chunk) * hd + d] = o;
        if (d == 0) part.ml[orow * nch + chunk] = make_float2(Mrow[r], Lrow[r]);
    }
}

// One block per (token, head): merge the chunks that hold the row's keys.
__global__ void __launch_bounds__(DEC_THREADS) decode_combine_kernel(Args a, Partials part) {
    __shared__ float W[slim_attn::DEC_MAX_CHUNKS];
    __shared__ float Inv;
    POISON_SHARED(W);
    POISON_SHARED(Inv);
    const int32_t pos0 = slim_attn::read_pos0(a);
    const int32_t orow = blockIdx.x, t = orow / a.n_head, hd = a.head_dim;
    const int32_t ck = slim_attn::chunk_keys(a.n_ctx), nch = slim_attn::n_chunks(a.n_ctx);
    const int32_t pos = pos0 + t;
    const int32_t c_lo = slim_attn::first_key(pos, a.window) / ck, c_hi = pos / ck;
    const float2 *ml = part.ml + (int64_t)orow * nch;

    float M = -INFINITY;
    for (int32_t c = c_lo; c <= c_hi; c++)
        M = fmaxf(M, ml[c].x);
    for (int32_t c = c_lo + threadIdx.x; c <= c_hi; c += DEC_THREADS)
        W[c - c_lo] = __expf(ml[c].x - M);
    __syncthreads();
    if (threadIdx.x == 0) {
        float L = 0.0f;
        for (int32_t c = c_lo; c <= c_hi; c++)
            L += ml[c].y * W[c - c_lo];
        Inv = 1.0f / L;
    }
    __syncthreads();
    const float inv = Inv;
    const float *po = part.o + (int64_t)orow * nch * hd;
    float *out = a.out + (int64_t)orow * hd; // out row t, head h = orow % n_head
    for (int d = threadIdx.x; d < hd; d += DEC_THREADS) {
        float o = 0.0f;
        for (int32_t c = c_lo; c <= c_hi; c++)
            o = fmaf(po[(int64_t)c * hd + d], W[c - c_lo], o);
        out[d] = o * inv;
    }
}

template <int RB> int decode_launch_rb(const Args &a, Partials p, cudaStream_t stream) {
    const int32_t group = a.n_head / a.n_head_kv, n_rows = a.n_tokens * group;
    const dim3 grid((unsigned)slim_attn::n_chunks(a.n_ctx), (unsigned)a.n_head_kv,
                    (unsigned)((n_rows + RB - 1) / RB));
    LAUNCH((decode_partial_kernel<RB>), grid, dim3(DEC_THREADS), 0, stream, a, p);
    int rc = slim_launch_result();
    if (rc) return rc;
    LAUNCH(decode_combine_kernel, dim3((unsigned)(a.n_tokens * a.n_head)), dim3(DEC_THREADS), 0,
           stream, a, p);
    return slim_launch_result();
}

} // namespace

size_t slim_attn_decode_scratch_bytes(int32_t n_tokens, int32_t n_head, int32_t head_dim,
                                      int32_t n_ctx) {
    const size_t rows = (size_t)n_tokens * (size_t)n_head, nch = (size_t)slim_attn::n_chunks(n_ctx);
    return rows * nch * ((size_t)head_dim + 2) * sizeof(float);
}

int slim_attn_decode_launch(const Args &a, void *scratch, cudaStream_t stream) {
    const Partials p = partials(scratch, a);
    const int32_t rows = a.n_tokens * (a.n_head / a.n_head_kv);
    if (rows <= 1) return decode_launch_rb<1>(a, p, stream);
    if (rows <= 2) return decode_launch_rb<2>(a, p, stream);
    if (rows <= 4) return decode_launch_rb<4>(a, p, stream);
    return decode_launch_rb<8>(a, p, stream);
}
