// attention_paged.cu: attention for a batched step of many sequences over a
// paged fp16 KV cache (slim_cpu_attention's semantics with ex->batch): query t
// sits at position pos[t] of sequence seq[t] and reads that sequence's keys
// through its block table.
//
// One block per (token, kv head[, chunk]); its warps are the query heads of
// the kv head's group (warp per head, up to PA_WARPS, each taking every
// PA_WARPS-th head), so the group's heads share every K/V load.  Keys are cut
// into chunks of a fixed size that depends only on n_ctx
// (slim_cuda_attention_paged_chunk), counted from key 0 of the sequence; a
// chunk is read in tiles of 32 keys (16-byte loads through the block table
// into shared memory), lane i scores key i of the tile, online softmax in f32,
// then every lane adds p * v for its dims over the tile's keys in order.  A
// chunk gives a partial (max, sum, output); the partials of a query are merged
// in chunk order, with one merge expression (pa_merge).
//
// Two launch modes, bitwise equal: with scratch, one block per chunk writes
// its partial and a combine kernel merges them (decode: a few tokens, long
// contexts: the parallelism is in the chunks); without, each block walks its
// chunks itself and merges as it goes (prefill chunks: the parallelism is in
// the tokens).  Every sum has a fixed order given by the query's position
// only, so a query's result depends on its own sequence and position, never
// on the rest of the step, the mode or the batch size (the invariance of
// docs/CUDA.md).  A query at a negative position is padding (a CUDA graph's
// bucket rows): its output is zero and no key is read.
#include "attention.cuh"
#include "common.cuh"
#include "kernels.h"
#include "util.cuh"

namespace {

constexpr int PA_WARPS = 4;
constexpr int PA_TILE = 32; // keys per tile
constexpr int PA_MAX_HD = 256;
constexpr int PA_DIMS = PA_MAX_HD / 32;  // output dims per lane
constexpr int PA_KW = PA_MAX_HD / 2 + 1; // K tile row in 4-byte words, padded: lane i reads row i
constexpr int PA_COMBINE_THREADS = 32;

struct PagedArgs {
    float *out;
    const float *q;
    const uint16_t *k, *v;
    const int32_t *pos, *seq, *tables, *table_off;
    float *part; // split mode: [token][head][chunk][2 + head_dim]; NULL: one pass
    int32_t block_size, n_head, n_head_kv, head_dim, window, chunk, n_chunks;
    float softcap;
};

__device__ __forceinline__ float warp_max(float v) {
    SLIM_UNROLL
    for (int o = 16; o > 0; o >>= 1)
        v = fmaxf(v, __shfl_xor_sync(SLIM_FULL_MASK, v, o));
    return v;
}

// (M, L, acc) <- (M, L, acc) merged with (m, l, a): the only place partials
// meet, used by both modes, with explicit roundings (no contraction choices).
__device__ __forceinline__ void pa_merge(float &M, float &L, float *acc, float m, float l,
                                         const float *a) {
    const float mn = fmaxf(M, m);
    const float ea = expf(M - mn), eb = expf(m - mn);
    L = __fmaf_rn(l, eb, __fmul_rn(L, ea));
    SLIM_UNROLL
    for (int k = 0; k < PA_DIMS; k++)
        acc[k] = __fmaf_rn(a[k], eb, __fmul_rn(acc[k], ea));
    M = mn;
}

// Chunks [*c0, *c1] hold the keys query at pos sees.
__device__ __forceinline__ void pa_chunks(const PagedArgs &a, int32_t pos, int32_t *c0,
                                          int32_t *c1) {
    *c0 = slim_attn::first_key(pos, a.window) / a.chunk;
    *c1 = pos / a.chunk;
}

template <bool SPLIT> __global__ void __launch_bounds__(32 * PA_WARPS) paged_kernel(PagedArgs a) {
    __shared__ uint32_t Ks[PA_TILE][PA_KW];
    POISON_SHARED(Ks);
    __shared__ __align__(16) uint32_t Vs[PA_TILE][PA_MAX_HD / 2];
    POISON_SHARED(Vs);
    __shared__ float Qs[PA_WARPS][PA_MAX_HD];
    POISON_SHARED(Qs);
    __shared__ int32_t rows[PA_TILE];
    POISON_SHARED(rows);

    const int32_t t = (int32_t)blockIdx.z, g = (int32_t)blockIdx.y;
    const int32_t nw = (int32_t)blockDim.x / 32, w = (int32_t)threadIdx.x / 32,
                  lane = (int32_t)threadIdx.x % 32;
    const int32_t hd = a.head_dim, hd2 = hd / 2, group = a.n_head / a.n_head_kv;
    const int64_t kvw = (int64_t)a.n_head_kv * hd;
    const int32_t pos = __ldg(a.pos + t);
    if (pos < 0) { // padding
        if (!SPLIT)
            for (int32_t i = threadIdx.x; i < group * hd; i += blockDim.x)
                a.out[((int64_t)t * a.n_head + (int64_t)g * group) * hd + i] = 0.0f;
        return;
    }
    const int32_t j0 = slim_attn::first_key(pos, a.window);
    int32_t c0, c1;
    pa_chunks(a, pos, &c0, &c1);
    if (SPLIT) {
        if ((int32_t)blockIdx.x < c0 || (int32_t)blockIdx.x > c1) return;
        c0 = c1 = (int32_t)blockIdx.x;
    }
    const int32_t *tab = a.tables + __ldg(a.table_off + __ldg(a.seq + t));
    const int32_t hpw = (group + nw - 1) / nw;

    for (int32_t r = 0; r < hpw; r++) {
        const int32_t hi = w + r * nw, h = g * group + hi;
        const bool active = hi < group;
        if (active) {
            const float *q = a.q + ((int64_t)t * a.n_head + h) * hd;
            for (int32_t d = lane; d < hd; d += 32)
                Qs[w][d] = q[d];
        }
        __syncwarp();
        float M = -INFINITY, L = 0.0f, ACC[PA_DIMS];
        SLIM_UNROLL
        for (int k = 0; k < PA_DIMS; k++)
            ACC[k] = 0.0f;
        for (int32_t c = c0; c <= c1; c++) {
            const int32_t kb = c * a.chunk > j0 ? c * a.chunk : j0;
            const int32_t ke = (c + 1) * a.chunk - 1 < pos ? (c + 1) * a.chunk - 1 : pos;
            float m = -INFINITY, l = 0.0f, acc[PA_DIMS];
            SLIM_UNROLL
            for (int k = 0; k < PA_DIMS; k++)
                acc[k] = 0.0f;
            for (int32_t jt = kb; jt <= ke; jt += PA_TILE) {
                const int32_t nk = ke - jt + 1 < PA_TILE ? ke - jt + 1 : PA_TILE;
                __syncthreads(); // every warp is done with the previous tile
                for (int32_t i = threadIdx.x; i < nk; i += blockDim.x) {
                    const int32_t j = jt + i;
                    rows[i] = __ldg(tab + j / a.block_size) * a.block_size + j % a.block_size;
                }
                __syncthreads();
                // 16-byte loads: 8 halves of one key's K or V row each.
                const int32_t per_row = hd / 8;
                for (int32_t i = threadIdx.x; i < 2 * nk * per_row; i += blockDim.x) {
                    const bool is_v = i >= nk * per_row;
                    const int32_t ii = is_v ? i - nk * per_row : i, kk = ii / per_row,
                                  d8 = ii % per_row;
                    const uint16_t *src =
                        (is_v ? a.v : a.k) + (int64_t)rows[kk] * kvw + (int64_t)g * hd + 8 * d8;
                    const uint4 u = slim_attn::ld_u16x8(src);
                    uint32_t *dst = is_v ? &Vs[kk][4 * d8] : &Ks[kk][4 * d8];
                    dst[0] = u.x;
                    dst[1] = u.y;
                    dst[2] = u.z;
                    dst[3] = u.w;
                }
                __syncthreads();
                if (!active) continue;
                float s = -INFINITY;
                if (lane < nk) {
                    float dot = 0.0f;
                    for (int32_t d2 = 0; d2 < hd2; d2++) {
                        const uint32_t kw = Ks[lane][d2];
                        dot = __fmaf_rn(Qs[w][2 * d2], f16_bits_to_f32(kw & 0xffffu), dot);
                        dot = __fmaf_rn(Qs[w][2 * d2 + 1], f16_bits_to_f32(kw >> 16), dot);
                    }
                    s = slim_attn::softcap_score(dot, a.softcap);
                }
                const float mn = fmaxf(m, warp_max(s)); // finite: key 0 of the tile is valid
                const float p = lane < nk ? expf(s - mn) : 0.0f;
                const float alpha = expf(m - mn); // 0 on the first tile
                l = __fmaf_rn(l, alpha, warp_sum(p));
                SLIM_UNROLL
                for (int k = 0; k < PA_DIMS; k++)
                    acc[k] = __fmul_rn(acc[k], alpha);
                for (int32_t kk = 0; kk < nk; kk++) {
                    const float pk = __shfl_sync(SLIM_FULL_MASK, p, kk);
                    const uint16_t *vr = reinterpret_cast<const uint16_t *>(Vs[kk]);
                    SLIM_UNROLL
                    for (int k = 0; k < PA_DIMS; k++) {
                        const int32_t d = lane + 32 * k;
                        if (d < hd) acc[k] = __fmaf_rn(pk, f16_bits_to_f32(vr[d]), acc[k]);
                    }
                }
                m = mn;
            }
            if (!active) continue;
            if (SPLIT) {
                float *pp = a.part + (((int64_t)t * a.n_head + h) * a.n_chunks + c) * (hd + 2);
                if (lane == 0) {
                    pp[0] = m;
                    pp[1] = l;
                }
                SLIM_UNROLL
                for (int k = 0; k < PA_DIMS; k++)
                    if (lane + 32 * k < hd) pp[2 + lane + 32 * k] = acc[k];
            } else if (c == c0) {
                M = m;
                L = l;
                SLIM_UNROLL
                for (int k = 0; k < PA_DIMS; k++)
                    ACC[k] = acc[k];
            } else {
                pa_merge(M, L, ACC, m, l, acc);
            }
        }
        if (!SPLIT && active) {
            float *o = a.out + ((int64_t)t * a.n_head + h) * hd;
            SLIM_UNROLL
            for (int k = 0; k < PA_DIMS; k++)
                if (lane + 32 * k < hd) o[lane + 32 * k] = ACC[k] / L;
        }
        __syncwarp(); // Qs[w] is rewritten for the next head
    }
}

// Split mode's second pass: one warp per (token, head) merges the chunks'
// partials in chunk order, exactly as the one-pass kernel does.
__global__ void __launch_bounds__(PA_COMBINE_THREADS) paged_combine_kernel(PagedArgs a) {
    const int32_t h = (int32_t)blockIdx.x, t = (int32_t)blockIdx.y, lane = (int32_t)threadIdx.x;
    const int32_t hd = a.head_dim, pos = __ldg(a.pos + t);
    float *o = a.out + ((int64_t)t * a.n_head + h) * hd;
    if (pos < 0) {
        for (int32_t d = lane; d < hd; d += 32)
            o[d] = 0.0f;
        return;
    }
    int32_t c0, c1;
    pa_chunks(a, pos, &c0, &c1);
    const float *base = a.part + ((int64_t)t * a.n_head + h) * a.n_chunks * (hd + 2);
    float M = 0.0f, L = 0.0f, ACC[PA_DIMS], acc[PA_DIMS];
    for (int32_t c = c0; c <= c1; c++) {
        const float *pp = base + (int64_t)c * (hd + 2);
        SLIM_UNROLL
        for (int k = 0; k < PA_DIMS; k++)
            acc[k] = lane + 32 * k < hd ? pp[2 + lane + 32 * k] : 0.0f;
        if (c == c0) {
            M = pp[0];
            L = pp[1];
            SLIM_UNROLL
            for (int k = 0; k < PA_DIMS; k++)
                ACC[k] = acc[k];
        } else {
            pa_merge(M, L, ACC, pp[0], pp[1], acc);
        }
    }
    SLIM_UNROLL
    for (int k = 0; k < PA_DIMS; k++)
        if (lane + 32 * k < hd) o[lane + 32 * k] = ACC[k] / L;
}

} // namespace

extern "C" int32_t slim_cuda_attention_paged_chunk(int32_t n_ctx) {
    if (n_ctx < 1) return 0;
    const int32_t per = (n_ctx + 63) / 64; // at most 64 chunks
    const int32_t c = (per + PA_TILE - 1) / PA_TILE * PA_TILE;
    return c > 256 ? c : 256;
}

extern "C" size_t slim_cuda_attention_paged_scratch_bytes(int32_t n_tokens, int32_t n_head,
                                                          int32_t head_dim, int32_t n_ctx) {
    if (n_tokens < 1 || n_head < 1 || head_dim < 1 || n_ctx < 1) return 0;
    const int32_t chunk = slim_cuda_attention_paged_chunk(n_ctx);
    const size_t n_chunks = (size_t)((n_ctx + chunk - 1) / chunk);
    return (size_t)n_tokens * (size_t)n_head * n_chunks * (size_t)(head_dim + 2) * sizeof(float);
}

extern "C" int slim_cuda_attention_paged(float *out, const float *q, const uint16_t *k_cache,
                                         const uint16_t *v_cache, int32_t n_tokens,
                                         const int32_t *pos, const int32_t *seq,
                                         const int32_t *tables, const int32_t *table_off,
                                         int32_t block_size, int32_t n_head, int32_t n_head_kv,
                                         int32_t head_dim, int32_t window, float softcap,
                                         int32_t n_ctx, void *scratch, void *stream) {
    if (n_tokens < 0 || n_tokens > 65535 || n_head < 1 || n_head_kv < 1 || n_head % n_head_kv ||
        head_dim < 8 || head_dim > PA_MAX_HD || head_dim % 8 || block_size < 1 || window < 0 ||
        n_ctx < 1 || !(softcap >= 0.0f))
        return (int)cudaErrorInvalidValue;
    if (n_tokens == 0) return 0;
    if (!out || !q || !k_cache || !v_cache || !pos || !seq || !tables || !table_off)
        return (int)cudaErrorInvalidValue;
    PagedArgs a;
    a.out = out;
    a.q = q;
    a.k = k_cache;
    a.v = v_cache;
    a.pos = pos;
    a.seq = seq;
    a.tables = tables;
    a.table_off = table_off;
    a.part = static_cast<float *>(scratch);
    a.block_size = block_size;
    a.n_head = n_head;
    a.n_head_kv = n_head_kv;
    a.head_dim = head_dim;
    a.window = window;
    a.softcap = softcap;
    a.chunk = slim_cuda_attention_paged_chunk(n_ctx);
    a.n_chunks = (n_ctx + a.chunk - 1) / a.chunk;
    const int32_t group = n_head / n_head_kv;
    const dim3 block((unsigned)(32 * (group < PA_WARPS ? group : PA_WARPS)));
    const cudaStream_t st = (cudaStream_t)stream;
    if (scratch) {
        LAUNCH(paged_kernel<true>,
               dim3((unsigned)a.n_chunks, (unsigned)n_head_kv, (unsigned)n_tokens), block, 0, st,
               a);
        int rc = slim_launch_result();
        if (rc) return rc;
        LAUNCH(paged_combine_kernel, dim3((unsigned)n_head, (unsigned)n_tokens),
               dim3(PA_COMBINE_THREADS), 0, st, a);
    } else {
        LAUNCH(paged_kernel<false>, dim3(1, (unsigned)n_head_kv, (unsigned)n_tokens), block, 0, st,
               a);
    }
    return slim_launch_result();
}
