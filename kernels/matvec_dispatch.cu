// matvec_dispatch.cu: slim_cuda_matvec, the one entry point of the decode
// mat-vec: checks the arguments against the weight type's layout and calls the
// per-format launcher (matvec_<type>.cu, matvec.cuh).
#include "common.cuh"
#include "kernels.h"
#include "matvec.cuh"

namespace {

struct MvType {
    int dtype;
    int block;   // elements per block (float types: per 16-byte chunk)
    int bytes;   // bytes per block
    int w_align; // weight address and row stride alignment
    int x_align; // activation row alignment
    slim_mv::launch_fn launch;
};

const MvType MV_TYPES[] = {
    {SLIM_DTYPE_F32, 4, 16, 16, 16, slim_mv::launch_f32},    // F32 x f32
    {SLIM_DTYPE_F16, 8, 16, 16, 16, slim_mv::launch_f16},    // F16 x f32
    {SLIM_DTYPE_BF16, 8, 16, 16, 16, slim_mv::launch_bf16},  // BF16 x f32
    {SLIM_DTYPE_Q4_0, 32, 18, 2, 2, slim_mv::launch_q4_0},   // x Q8_0
    {SLIM_DTYPE_Q4_1, 32, 20, 2, 4, slim_mv::launch_q4_1},   // x Q8_1
    {SLIM_DTYPE_Q5_0, 32, 22, 2, 2, slim_mv::launch_q5_0},   // x Q8_0
    {SLIM_DTYPE_Q5_1, 32, 24, 2, 4, slim_mv::launch_q5_1},   // x Q8_1
    {SLIM_DTYPE_Q8_0, 32, 34, 2, 2, slim_mv::launch_q8_0},   // x Q8_0
    {SLIM_DTYPE_Q4_K, 256, 144, 4, 4, slim_mv::launch_q4_k}, // x Q8_K
    {SLIM_DTYPE_Q5_K, 256, 176, 4, 4, slim_mv::launch_q5_k}, // x Q8_K
    {SLIM_DTYPE_Q6_K, 256, 210, 2, 4, slim_mv::launch_q6_k}, // x Q8_K
};

const MvType *mv_type(int dtype) {
    for (const MvType &t : MV_TYPES)
        if (t.dtype == dtype) return &t;
    return nullptr;
}

} // namespace

extern "C" int slim_cuda_matvec_supported(int dtype) { return mv_type(dtype) != nullptr; }

extern "C" int slim_cuda_matvec_tokens(int dtype, float *y, const void *w, size_t w_row_stride,
                                       const void *xq, size_t xq_row_stride, int64_t n,
                                       int64_t n_rows, int64_t n_tokens, void *stream) {
    const MvType *t = mv_type(dtype);
    if (!t || n < 0 || n_rows < 0 || n_tokens < 0 || n_tokens > slim_mv::MV_MAX_TOKENS)
        return (int)cudaErrorInvalidValue;
    if (n == 0 || n_rows == 0 || n_tokens == 0) return 0;
    const int64_t nb = n / t->block;
    if (n % t->block || ((uintptr_t)w % t->w_align) || ((uintptr_t)xq % t->x_align) ||
        (n_rows > 1 && (w_row_stride % t->w_align || w_row_stride < (size_t)nb * t->bytes)) ||
        (n_tokens > 1 && xq_row_stride % t->x_align) ||
        (n_rows + slim_mv::MV_WARPS - 1) / slim_mv::MV_WARPS > 0x7fffffff)
        return (int)cudaErrorInvalidValue;
    return t->launch(y, w, w_row_stride, xq, xq_row_stride, nb, n_rows, n_tokens, stream);
}

extern "C" int slim_cuda_matvec(int dtype, float *y, const void *w, size_t w_row_stride,
                                const void *xq, int64_t n, int64_t n_rows, void *stream) {
    return slim_cuda_matvec_tokens(dtype, y, w, w_row_stride, xq, 0, n, n_rows, 1, stream);
}
