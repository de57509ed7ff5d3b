// rows.cu: gathering and scatter-adding rows of floats by a device index
// array, for LoRA adapters that apply to some of a step's tokens only
// (lib/model/lora.c: gathered inputs, scattered sums, as S-LoRA / Punica
// group them per adapter).  Grid-stride, one element per thread per step;
// the add is the CPU's y += x, so results are bitwise slim_cpu_add's.
#include "common.cuh"
#include "kernels.h"
#include "util.cuh"

namespace {

constexpr int ROWS_THREADS = 256;
constexpr int64_t ROWS_MAX_BLOCKS = 65535 * 8;

__global__ void __launch_bounds__(ROWS_THREADS)
    gather_rows_kernel(float *dst, const float *src, const int32_t *idx, int64_t total, int64_t n) {
    for (int64_t i = (int64_t)blockIdx.x * ROWS_THREADS + threadIdx.x; i < total;
         i += (int64_t)gridDim.x * ROWS_THREADS) {
        const int64_t r = i / n;
        dst[i] = src[(int64_t)__ldg(idx + r) * n + (i - r * n)];
    }
}

__global__ void __launch_bounds__(ROWS_THREADS)
    scatter_add_rows_kernel(float *dst, const float *src, const int32_t *idx, int64_t total,
                            int64_t n) {
    for (int64_t i = (int64_t)blockIdx.x * ROWS_THREADS + threadIdx.x; i < total;
         i += (int64_t)gridDim.x * ROWS_THREADS) {
        const int64_t r = i / n;
        float *y = dst + (int64_t)__ldg(idx + r) * n + (i - r * n);
        *y = __fadd_rn(*y, src[i]);
    }
}

int64_t rows_blocks(int64_t total) {
    const int64_t b = (total + ROWS_THREADS - 1) / ROWS_THREADS;
    return b < ROWS_MAX_BLOCKS ? b : ROWS_MAX_BLOCKS;
}

} // namespace

extern "C" int slim_cuda_gather_rows(float *dst, const float *src, const int32_t *idx,
                                     int64_t n_idx, int64_t n, void *stream) {
    if (n_idx < 0 || n < 0) return (int)cudaErrorInvalidValue;
    const int64_t total = n_idx * n;
    if (total == 0) return 0;
    if (!dst || !src || !idx) return (int)cudaErrorInvalidValue;
    LAUNCH(gather_rows_kernel, dim3((unsigned)rows_blocks(total)), dim3(ROWS_THREADS), 0,
           (cudaStream_t)stream, dst, src, idx, total, n);
    return slim_launch_result();
}

extern "C" int slim_cuda_scatter_add_rows(float *dst, const float *src, const int32_t *idx,
                                          int64_t n_idx, int64_t n, void *stream) {
    if (n_idx < 0 || n < 0) return (int)cudaErrorInvalidValue;
    const int64_t total = n_idx * n;
    if (total == 0) return 0;
    if (!dst || !src || !idx) return (int)cudaErrorInvalidValue;
    LAUNCH(scatter_add_rows_kernel, dim3((unsigned)rows_blocks(total)), dim3(ROWS_THREADS), 0,
           (cudaStream_t)stream, dst, src, idx, total, n);
    return slim_launch_result();
}
