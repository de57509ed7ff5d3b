// kv.cu: KV-cache store: n_tokens rows of width floats, rounded to fp16
// (nearest even, as lib/core/fp16.h), into the cache at rows *pos0 + t.  pos0
// is a device pointer so a captured CUDA graph stores at the current position
// at every replay.  Grid-stride, one element per thread per step; bitwise
// equal to slim_cpu_kv_store.
#include "common.cuh"
#include "kernels.h"
#include "util.cuh"

namespace {

constexpr int KV_THREADS = 256;
constexpr int64_t KV_MAX_BLOCKS = 65535 * 8;

__global__ void __launch_bounds__(KV_THREADS)
    kv_store_kernel(uint16_t *cache, const float *src, int64_t total, int64_t width,
                    const int32_t *pos0) {
    uint16_t *dst = cache + (int64_t)__ldg(pos0) * width;
    for (int64_t i = (int64_t)blockIdx.x * KV_THREADS + threadIdx.x; i < total;
         i += (int64_t)gridDim.x * KV_THREADS)
        dst[i] = __half_as_ushort(__float2half_rn(src[i]));
}

// Row t of src to cache row rows[t] (a batched step over block tables).
__global__ void __launch_bounds__(KV_THREADS)
    kv_store_rows_kernel(uint16_t *cache, const float *src, int64_t total, int64_t width,
                         const int32_t *rows) {
    for (int64_t i = (int64_t)blockIdx.x * KV_THREADS + threadIdx.x; i < total;
         i += (int64_t)gridDim.x * KV_THREADS) {
        const int64_t t = i / width;
        const int32_t row = __ldg(rows + t);
        if (row >= 0) // a negative row is padding
            cache[(int64_t)row * width + (i - t * width)] =
                __half_as_ushort(__float2half_rn(src[i]));
    }
}

} // namespace

extern "C" int slim_cuda_kv_store(uint16_t *cache, const float *src, int64_t n_tokens,
                                  int64_t width, const int32_t *pos0, void *stream) {
    if (n_tokens < 0 || width < 0 || !pos0) return (int)cudaErrorInvalidValue;
    const int64_t total = n_tokens * width;
    if (total == 0) return 0;
    int64_t blocks = (total + KV_THREADS - 1) / KV_THREADS;
    if (blocks > KV_MAX_BLOCKS) blocks = KV_MAX_BLOCKS;
    LAUNCH(kv_store_kernel, dim3((unsigned)blocks), dim3(KV_THREADS), 0, (cudaStream_t)stream,
           cache, src, total, width, pos0);
    return slim_launch_result();
}

extern "C" int slim_cuda_kv_store_rows(uint16_t *cache, const float *src, int64_t n_tokens,
                                       int64_t width, const int32_t *rows, void *stream) {
    if (n_tokens < 0 || width < 0 || !rows) return (int)cudaErrorInvalidValue;
    const int64_t total = n_tokens * width;
    if (total == 0) return 0;
    int64_t blocks = (total + KV_THREADS - 1) / KV_THREADS;
    if (blocks > KV_MAX_BLOCKS) blocks = KV_MAX_BLOCKS;
    LAUNCH(kv_store_rows_kernel, dim3((unsigned)blocks), dim3(KV_THREADS), 0, (cudaStream_t)stream,
           cache, src, total, width, rows);
    return slim_launch_result();
}
