// attention_paged.cu: attention for a batched step of many sequences over a
// paged fp16 KV cache (slim_cpu_attention's semantics with ex->batch): query t
// sits at position pos[t] of sequence seq[t] and reads that sequence's keys
// through its block table.
//
// One warp per (token, head).  Keys go in ascending order in tiles of 32:
// lane i scores key jc + i (its K row through the table, q from shared
// memory), the warp takes the tile's max and sum (online softmax in f32), then
// every lane adds p * v for its dims over the tile's keys in order.  Every sum
// has a fixed order, so results are deterministic and a query's result
// depends only on its own sequence and position, never on the rest of the
// step.  A first, simple kernel: K rows are read per lane (not coalesced);
// the single-sequence kernels (attention_prefill.cu, attention_decode.cu)
// remain the fast path for slim_context's identity table.
#include "attention.cuh"
#include "common.cuh"
#include "kernels.h"
#include "util.cuh"

namespace {

constexpr int PG_THREADS = 32;
constexpr int PG_MAX_HD = 256;
constexpr int PG_DIMS = PG_MAX_HD / PG_THREADS; // dims per lane

struct PagedArgs {
    float *out;
    const float *q;
    const uint16_t *k, *v;
    const int32_t *pos, *seq, *tables, *table_off;
    int32_t block_size, n_head, n_head_kv, head_dim, window;
    float softcap;
};

__device__ __forceinline__ float warp_max(float v) {
    SLIM_UNROLL
    for (int o = 16; o > 0; o >>= 1)
        v = fmaxf(v, __shfl_xor_sync(SLIM_FULL_MASK, v, o));
    return v;
}

__global__ void __launch_bounds__(PG_THREADS) paged_kernel(PagedArgs a) {
    __shared__ float Qs[PG_MAX_HD];
    POISON_SHARED(Qs);
    const int32_t h = (int32_t)blockIdx.x, t = (int32_t)blockIdx.y, lane = (int32_t)threadIdx.x;
    const int32_t hd = a.head_dim, g = h / (a.n_head / a.n_head_kv);
    const int64_t kvw = (int64_t)a.n_head_kv * hd;
    const float *q = a.q + ((int64_t)t * a.n_head + h) * hd;
    for (int32_t d = lane; d < hd; d += PG_THREADS)
        Qs[d] = q[d];
    __syncthreads();
    const int32_t pos = __ldg(a.pos + t);
    const int32_t *tab = a.tables + __ldg(a.table_off + __ldg(a.seq + t));
    const int32_t j0 = slim_attn::first_key(pos, a.window);
    float acc[PG_DIMS];
    SLIM_UNROLL
    for (int k = 0; k < PG_DIMS; k++)
        acc[k] = 0.0f;
    float m = -INFINITY, l = 0.0f;
    for (int32_t jc = j0; jc <= pos; jc += PG_THREADS) {
        const int32_t j = jc + lane;
        const bool valid = j <= pos;
        int32_t row = 0;
        float s = -INFINITY;
        if (valid) {
            row = __ldg(tab + j / a.block_size) * a.block_size + j % a.block_size;
            const uint16_t *kr = a.k + (int64_t)row * kvw + (int64_t)g * hd;
            float dot = 0.0f;
            for (int32_t d = 0; d < hd; d++)
                dot = fmaf(Qs[d], f16_bits_to_f32(kr[d]), dot);
            s = slim_attn::softcap_score(dot, a.softcap);
        }
        const float mn = fmaxf(m, warp_max(s)); // finite: key jc is valid
        const float p = valid ? expf(s - mn) : 0.0f;
        const float alpha = expf(m - mn); // 0 on the first tile
        l = l * alpha + warp_sum(p);
        SLIM_UNROLL
        for (int k = 0; k < PG_DIMS; k++)
            acc[k] *= alpha;
        const int32_t nk = pos - jc + 1 < PG_THREADS ? pos - jc + 1 : PG_THREADS;
        for (int32_t kk = 0; kk < nk; kk++) {
            const float pk = __shfl_sync(SLIM_FULL_MASK, p, kk);
            const int32_t rk = __shfl_sync(SLIM_FULL_MASK, row, kk);
            const uint16_t *vr = a.v + (int64_t)rk * kvw + (int64_t)g * hd;
            SLIM_UNROLL
            for (int k = 0; k < PG_DIMS; k++) {
                const int32_t d = lane + PG_THREADS * k;
                if (d < hd) acc[k] = fmaf(pk, f16_bits_to_f32(vr[d]), acc[k]);
            }
        }
        m = mn;
    }
    float *o = a.out + ((int64_t)t * a.n_head + h) * hd;
    const float inv = 1.0f / l;
    SLIM_UNROLL
    for (int k = 0; k < PG_DIMS; k++) {
        const int32_t d = lane + PG_THREADS * k;
        if (d < hd) o[d] = acc[k] * inv;
    }
}

} // namespace

extern "C" int slim_cuda_attention_paged(float *out, const float *q, const uint16_t *k_cache,
                                         const uint16_t *v_cache, int32_t n_tokens,
                                         const int32_t *pos, const int32_t *seq,
                                         const int32_t *tables, const int32_t *table_off,
                                         int32_t block_size, int32_t n_head, int32_t n_head_kv,
                                         int32_t head_dim, int32_t window, float softcap,
                                         void *stream) {
    if (n_tokens < 0 || n_tokens > 65535 || n_head < 1 || n_head_kv < 1 || n_head % n_head_kv ||
        head_dim < 8 || head_dim > PG_MAX_HD || head_dim % 8 || block_size < 1 || window < 0 ||
        !(softcap >= 0.0f))
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
    a.block_size = block_size;
    a.n_head = n_head;
    a.n_head_kv = n_head_kv;
    a.head_dim = head_dim;
    a.window = window;
    a.softcap = softcap;
    LAUNCH(paged_kernel, dim3((unsigned)n_head, (unsigned)n_tokens), dim3(PG_THREADS), 0,
           (cudaStream_t)stream, a);
    return slim_launch_result();
}
