// sample.cu: sampling on the device over n floats (logits): argmax, top-k and
// a softmax with temperature.  NaN counts as -inf everywhere, as in the CPU
// sampler (lib/runtime/sampler.c); order is "value descending, then index
// ascending", so argmax is the first maximum (the CPU's greedy pick) and top-k
// ties go to the lower index.
//
// Two or three launches over SM_CHUNK-element chunks (top-k: TK_CHUNK), one 256-thread block
// each, with partial results in the caller's scratch (slim_cuda_sample_scratch_bytes):
// - argmax: per-chunk best (value, index), then one block over the partials.
// - top-k (k <= 64): per chunk, k rounds of a block-wide best over the
//   elements after the previous pick (each thread caches its own best and
//   rescans only when it was picked); then the same kernel, one block, over
//   the chunks' k candidates each.  Output sorted.
// - softmax: chunk maxima; then each block takes the max of the maxima,
//   writes w = expf((x - max) / T) and its chunk's sum; then each block sums
//   the chunk sums in chunk order and divides.
// Every reduction has a fixed shape: the results are deterministic.
#include "common.cuh"
#include "kernels.h"
#include "util.cuh"

namespace {

constexpr int SM_THREADS = 256, SM_WARPS = SM_THREADS / 32;
constexpr int64_t SM_CHUNK = 8192;  // elements per block (32 per thread)
constexpr int64_t TK_CHUNK = 32768; // top-k: fewer, longer chunks (fewer candidates, rounds)
constexpr int SM_MAX_K = 64;
constexpr int NO_INDEX = 0x7fffffff;

__device__ __forceinline__ float no_nan(float x) { return x == x ? x : -INFINITY; }

// (va, ia) comes before (vb, ib): larger value, then lower index.
__device__ __forceinline__ bool before(float va, int ia, float vb, int ib) {
    return va > vb || (va == vb && ia < ib);
}

// The first (value, index) pair of the block in that order, for every thread.
// sv, si: __shared__ [SM_WARPS].  Three barriers: all threads must call it.
__device__ __forceinline__ void block_best(float &v, int &i, float *sv, int *si) {
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
    SLIM_UNROLL
    for (int o = 16; o > 0; o >>= 1) {
        const float ov = __shfl_xor_sync(SLIM_FULL_MASK, v, o);
        const int oi = __shfl_xor_sync(SLIM_FULL_MASK, i, o);
        if (before(ov, oi, v, i)) v = ov, i = oi;
    }
    if (lane == 0) sv[warp] = v, si[warp] = i;
    __syncthreads();
    if (warp == 0) {
        v = lane < SM_WARPS ? sv[lane] : -INFINITY;
        i = lane < SM_WARPS ? si[lane] : NO_INDEX;
        SLIM_UNROLL
        for (int o = 16; o > 0; o >>= 1) {
            const float ov = __shfl_xor_sync(SLIM_FULL_MASK, v, o);
            const int oi = __shfl_xor_sync(SLIM_FULL_MASK, i, o);
            if (before(ov, oi, v, i)) v = ov, i = oi;
        }
        if (lane == 0) sv[0] = v, si[0] = i;
    }
    __syncthreads();
    v = sv[0];
    i = si[0];
    __syncthreads(); // sv, si may be rewritten by the next call
}

// Per block: the best of [b * chunk, min(n, (b + 1) * chunk)) of x (or of the
// candidate pairs xv/xi when IN_PAIRS), to ov[b], oi[b].
template <bool IN_PAIRS>
__global__ void __launch_bounds__(SM_THREADS)
    argmax_kernel(const float *x, const int32_t *xi, int64_t n, int64_t chunk, float *ov,
                  int32_t *oi) {
    __shared__ float sv[SM_WARPS];
    __shared__ int si[SM_WARPS];
    POISON_SHARED(sv);
    POISON_SHARED(si);
    const int64_t lo = (int64_t)blockIdx.x * chunk, hi = lo + chunk < n ? lo + chunk : n;
    float v = -INFINITY;
    int i = NO_INDEX;
    for (int64_t p = lo + threadIdx.x; p < hi; p += SM_THREADS) {
        const float c = no_nan(x[p]);
        const int ci = IN_PAIRS ? xi[p] : (int)p;
        if (before(c, ci, v, i)) v = c, i = ci;
    }
    block_best(v, i, sv, si);
    if (threadIdx.x == 0) ov[blockIdx.x] = v, oi[blockIdx.x] = i;
}

// Per block: the k first elements (sorted) of its chunk, to ov/oi[b * k ..];
// (-inf, NO_INDEX) pads a chunk with fewer than k.
template <bool IN_PAIRS>
__global__ void __launch_bounds__(SM_THREADS)
    topk_kernel(const float *x, const int32_t *xi, int64_t n, int64_t chunk, int k, float *ov,
                int32_t *oi) {
    __shared__ float sv[SM_WARPS];
    __shared__ int si[SM_WARPS];
    POISON_SHARED(sv);
    POISON_SHARED(si);
    const int64_t lo = (int64_t)blockIdx.x * chunk, hi = lo + chunk < n ? lo + chunk : n;
    float last_v = INFINITY, my_v = -INFINITY;
    int last_i = -1, my_i = NO_INDEX;
    bool rescan = true;
    for (int r = 0; r < k; r++) {
        if (rescan) { // my first element after the last pick
            my_v = -INFINITY;
            my_i = NO_INDEX;
            for (int64_t p = lo + threadIdx.x; p < hi; p += SM_THREADS) {
                const float c = no_nan(x[p]);
                const int ci = IN_PAIRS ? xi[p] : (int)p;
                if (before(last_v, last_i, c, ci) && before(c, ci, my_v, my_i)) my_v = c, my_i = ci;
            }
        }
        float v = my_v;
        int i = my_i;
        block_best(v, i, sv, si);
        if (threadIdx.x == 0) {
            ov[(int64_t)blockIdx.x * k + r] = v;
            oi[(int64_t)blockIdx.x * k + r] = i;
        }
        rescan = my_i == i; // mine was picked (indices are unique; pads rescan to no effect)
        last_v = v;
        last_i = i;
    }
}

// Softmax passes.  Pass 1: chunk maxima to part[b].
__global__ void __launch_bounds__(SM_THREADS)
    chunk_max_kernel(const float *x, int64_t n, float *part) {
    __shared__ float scratch[32];
    POISON_SHARED(scratch);
    const int64_t lo = (int64_t)blockIdx.x * SM_CHUNK, hi = lo + SM_CHUNK < n ? lo + SM_CHUNK : n;
    float m = -INFINITY;
    for (int64_t p = lo + threadIdx.x; p < hi; p += SM_THREADS)
        m = fmaxf(m, no_nan(x[p]));
    SLIM_UNROLL
    for (int o = 16; o > 0; o >>= 1)
        m = fmaxf(m, __shfl_xor_sync(SLIM_FULL_MASK, m, o));
    if (threadIdx.x % 32 == 0) scratch[threadIdx.x / 32] = m;
    __syncthreads();
    if (threadIdx.x == 0) {
        float t = scratch[0];
        for (int w = 1; w < SM_WARPS; w++)
            t = fmaxf(t, scratch[w]);
        part[blockIdx.x] = t;
    }
}

// Pass 2: y = expf((x - max) / T) over the chunk, chunk sums to part[g + b].
__global__ void __launch_bounds__(SM_THREADS)
    exp_kernel(float *y, const float *x, int64_t n, float temp, float *part, int64_t g) {
    __shared__ float scratch[32];
    POISON_SHARED(scratch);
    float m = -INFINITY;
    for (int64_t b = 0; b < g; b++)
        m = fmaxf(m, part[b]);
    const int64_t lo = (int64_t)blockIdx.x * SM_CHUNK, hi = lo + SM_CHUNK < n ? lo + SM_CHUNK : n;
    float s = 0.0f;
    for (int64_t p = lo + threadIdx.x; p < hi; p += SM_THREADS) {
        const float w = expf((no_nan(x[p]) - m) / temp);
        y[p] = w;
        s += w;
    }
    s = block_sum<SM_WARPS>(s, scratch);
    if (threadIdx.x == 0) part[g + blockIdx.x] = s;
}

// Pass 3: y /= the sum of the chunk sums (added in chunk order by every block).
__global__ void __launch_bounds__(SM_THREADS)
    normalize_kernel(float *y, int64_t n, const float *sums, int64_t g) {
    float z = 0.0f;
    for (int64_t b = 0; b < g; b++)
        z += sums[b];
    const int64_t lo = (int64_t)blockIdx.x * SM_CHUNK, hi = lo + SM_CHUNK < n ? lo + SM_CHUNK : n;
    for (int64_t p = lo + threadIdx.x; p < hi; p += SM_THREADS)
        y[p] = y[p] / z;
}

inline int64_t n_chunks(int64_t n) { return (n + SM_CHUNK - 1) / SM_CHUNK; }

// Scratch layout: float values then int32 indices, each n_chunks * SM_MAX_K.
inline float *scratch_v(void *s) { return static_cast<float *>(s); }
inline int32_t *scratch_i(void *s, int64_t n) {
    return reinterpret_cast<int32_t *>(static_cast<float *>(s) + n_chunks(n) * SM_MAX_K);
}

bool bad_args(const void *x, int64_t n, const void *scratch) {
    return !x || !scratch || n < 0 || n > 0x7fffffff || ((uintptr_t)scratch & 3);
}

} // namespace

extern "C" size_t slim_cuda_sample_scratch_bytes(int64_t n) {
    return n <= 0 ? 0 : (size_t)n_chunks(n) * SM_MAX_K * (sizeof(float) + sizeof(int32_t));
}

extern "C" int slim_cuda_argmax(const float *x, int64_t n, int32_t *out, void *scratch,
                                void *stream) {
    if (bad_args(x, n, scratch) || !out) return (int)cudaErrorInvalidValue;
    if (n == 0) return 0;
    const int64_t g = n_chunks(n);
    float *pv = scratch_v(scratch);
    int32_t *pi = scratch_i(scratch, n);
    LAUNCH((argmax_kernel<false>), dim3((unsigned)g), dim3(SM_THREADS), 0, (cudaStream_t)stream, x,
           (const int32_t *)nullptr, n, SM_CHUNK, pv, pi);
    // One block over the g partials: its best goes to pv[g], pi[g] -> out.
    LAUNCH((argmax_kernel<true>), dim3(1), dim3(SM_THREADS), 0, (cudaStream_t)stream,
           (const float *)pv, (const int32_t *)pi, g, g, pv + g, out);
    return slim_launch_result();
}

extern "C" int slim_cuda_topk(const float *x, int64_t n, int k, float *out_v, int32_t *out_i,
                              void *scratch, void *stream) {
    if (bad_args(x, n, scratch) || !out_v || !out_i || k < 0 || k > SM_MAX_K || k > n)
        return (int)cudaErrorInvalidValue;
    if (n == 0 || k == 0) return 0;
    const int64_t g = (n + TK_CHUNK - 1) / TK_CHUNK; // <= n_chunks(n): the scratch fits
    float *pv = scratch_v(scratch);
    int32_t *pi = scratch_i(scratch, n);
    LAUNCH((topk_kernel<false>), dim3((unsigned)g), dim3(SM_THREADS), 0, (cudaStream_t)stream, x,
           (const int32_t *)nullptr, n, TK_CHUNK, k, pv, pi);
    LAUNCH((topk_kernel<true>), dim3(1), dim3(SM_THREADS), 0, (cudaStream_t)stream,
           (const float *)pv, (const int32_t *)pi, g * k, g * k, k, out_v, out_i);
    return slim_launch_result();
}

extern "C" int slim_cuda_softmax_temp(float *y, const float *x, int64_t n, float temp,
                                      void *scratch, void *stream) {
    if (bad_args(x, n, scratch) || !y || !(temp > 0.0f) || temp == INFINITY)
        return (int)cudaErrorInvalidValue;
    if (n == 0) return 0;
    const int64_t g = n_chunks(n);
    float *part = scratch_v(scratch); // g maxima, then g sums
    LAUNCH(chunk_max_kernel, dim3((unsigned)g), dim3(SM_THREADS), 0, (cudaStream_t)stream, x, n,
           part);
    LAUNCH(exp_kernel, dim3((unsigned)g), dim3(SM_THREADS), 0, (cudaStream_t)stream, y, x, n, temp,
           part, g);
    LAUNCH(normalize_kernel, dim3((unsigned)g), dim3(SM_THREADS), 0, (cudaStream_t)stream, y, n,
           (const float *)(part + g), g);
    return slim_launch_result();
}
