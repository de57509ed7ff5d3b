// embed.cu: embedding rows: out[i][:] = to_float(table row ids[i]) (* scale),
// bitwise equal to the CPU's get_row (the traits' to_float) followed, when
// scale != 1, by the `scale` op (one more rounding), as the model's forward
// does for Gemma's sqrt(n_embd).  ids is a device array, so a captured CUDA
// graph reads the current tokens at every replay.
//
// One 256-thread block per id, thread t takes elements t, t + 256, ... and
// dequantizes each on its own (dequant.cuh): the stores are coalesced and
// the block's bytes come through L1 once.
#include "common.cuh"
#include "dequant.cuh"
#include "kernels.h"
#include "util.cuh"

namespace {

constexpr int EMB_THREADS = 256;

template <int DT>
__global__ void __launch_bounds__(EMB_THREADS)
    get_rows_kernel(float *out, const unsigned char *table, size_t row_stride, int64_t n,
                    const int32_t *ids, float scale) {
    const int32_t id = __ldg(ids + blockIdx.x);
    float *o = out + (int64_t)blockIdx.x * n;
    if (id < 0) { // not a row: NaN, visible downstream
        for (int64_t i = threadIdx.x; i < n; i += EMB_THREADS)
            o[i] = NAN;
        return;
    }
    const unsigned char *row = table + (int64_t)id * row_stride;
    for (int64_t i = threadIdx.x; i < n; i += EMB_THREADS) {
        const float v = dequant_elem<DT>(row, i);
        o[i] = scale == 1.0f ? v : __fmul_rn(v, scale);
    }
}

template <int DT>
int get_rows_launch(float *out, const void *table, size_t row_stride, int64_t n, const int32_t *ids,
                    int64_t n_ids, float scale, void *stream) {
    constexpr int BLOCK = dq_traits<DT>::BLOCK, BYTES = dq_traits<DT>::BYTES;
    constexpr size_t ALIGN = DT == SLIM_DTYPE_F32 ? 4 : 2;
    if (n % BLOCK || ((uintptr_t)table % ALIGN) || row_stride % ALIGN ||
        row_stride < (size_t)(n / BLOCK) * BYTES)
        return (int)cudaErrorInvalidValue;
    LAUNCH((get_rows_kernel<DT>), dim3((unsigned)n_ids), dim3(EMB_THREADS), 0, (cudaStream_t)stream,
           out, static_cast<const unsigned char *>(table), row_stride, n, ids, scale);
    return slim_launch_result();
}

} // namespace

// The table types get_rows has a kernel for (every one with a dequant_elem).
#define EMB_TYPES(X)                                                                               \
    X(SLIM_DTYPE_F32)                                                                              \
    X(SLIM_DTYPE_F16)                                                                              \
    X(SLIM_DTYPE_BF16)                                                                             \
    X(SLIM_DTYPE_Q4_0)                                                                             \
    X(SLIM_DTYPE_Q4_1)                                                                             \
    X(SLIM_DTYPE_Q5_0)                                                                             \
    X(SLIM_DTYPE_Q5_1)                                                                             \
    X(SLIM_DTYPE_Q8_0)                                                                             \
    X(SLIM_DTYPE_Q2_K)                                                                             \
    X(SLIM_DTYPE_Q3_K)                                                                             \
    X(SLIM_DTYPE_Q4_K)                                                                             \
    X(SLIM_DTYPE_Q5_K)                                                                             \
    X(SLIM_DTYPE_Q6_K)

extern "C" int slim_cuda_get_rows(int dtype, float *out, const void *table, size_t row_stride,
                                  int64_t n, const int32_t *ids, int64_t n_ids, float scale,
                                  void *stream) {
    if (n < 0 || n_ids < 0 || n_ids > 0x7fffffff) return (int)cudaErrorInvalidValue;
    if (n == 0 || n_ids == 0) return 0;
#define EMB_CASE(DT)                                                                               \
    case DT: return get_rows_launch<DT>(out, table, row_stride, n, ids, n_ids, scale, stream);
    switch (dtype) {
        EMB_TYPES(EMB_CASE)
    default: return (int)cudaErrorInvalidValue;
    }
#undef EMB_CASE
}

extern "C" int slim_cuda_get_rows_supported(int dtype) {
#define EMB_CASE(DT) case DT:
    switch (dtype) {
        EMB_TYPES(EMB_CASE)
        return 1;
    default: return 0;
    }
#undef EMB_CASE
}
