// gemm_cublas.cu: the prefill matmul through cuBLAS (reference and fallback;
// kernels.h, slim_cuda_gemm_cublas) and the per-shape rule
// slim_cuda_gemm_prefer_cublas.
//
// The weight is dequantized to f16 (dequant.cuh's dequant_elem: the traits'
// to_float bit for bit, then one rounding to f16; F16 weights are used in
// place), x is rounded to f16, and one cublasGemmEx computes, column-major,
// Y (n_rows x n_tokens, ld n_rows) = W16^T (W16: n x n_rows, ld = its row
// stride) * X16 (n x n_tokens, ld n), f16 inputs, f32 output, compute 32F.
// F32 weights skip both conversions (f32 inputs, compute 32F).
// Under cudasim cuBLAS is tests/cudasim/cublas_sim.cc.
#include "common.cuh"
#include "dequant.cuh"
#include "kernels.h"
#include "util.cuh"

#include <cublas_v2.h>

namespace {

constexpr int GC_THREADS = 256;

// 8 consecutive weights per thread (n % 8 == 0: one 16-byte store, else one
// element at a time), rows of n halves apart in dst.
template <int DT>
__global__ void __launch_bounds__(GC_THREADS)
    gc_dequant_f16_kernel(uint16_t *dst, const unsigned char *w, size_t ws, int64_t n,
                          int64_t n_rows) {
    const int64_t groups = (n + 7) / 8, total = groups * n_rows;
    for (int64_t i = (int64_t)blockIdx.x * GC_THREADS + threadIdx.x; i < total;
         i += (int64_t)gridDim.x * GC_THREADS) {
        const int64_t r = i / groups, i0 = (i % groups) * 8;
        const unsigned char *row = w + (size_t)r * ws;
        uint16_t *d = dst + r * n + i0;
        if (n % 8 == 0) {
            float f[8];
            dequant_run<DT, 8>(row, i0, f);
            uint32_t h[8];
            SLIM_UNROLL
            for (int k = 0; k < 8; k++)
                h[k] = __half_as_ushort(__float2half_rn(f[k]));
            SLIM_CHECK_ALIGN(d, 16, "gc_dequant_f16 store");
            *reinterpret_cast<uint4 *>(d) = make_uint4(h[0] | h[1] << 16, h[2] | h[3] << 16,
                                                       h[4] | h[5] << 16, h[6] | h[7] << 16);
        } else {
            for (int64_t k = i0; k < n && k < i0 + 8; k++)
                d[k - i0] = __half_as_ushort(__float2half_rn(dequant_elem<DT>(row, k)));
        }
    }
}

__global__ void __launch_bounds__(GC_THREADS)
    gc_f32_to_f16_kernel(uint16_t *dst, const float *x, int64_t count) {
    for (int64_t i = (int64_t)blockIdx.x * GC_THREADS + threadIdx.x; i < count;
         i += (int64_t)gridDim.x * GC_THREADS)
        dst[i] = __half_as_ushort(__float2half_rn(__ldg(x + i)));
}

unsigned gc_blocks(int64_t work) {
    const int64_t b = (work + GC_THREADS - 1) / GC_THREADS;
    return (unsigned)(b < 65536 ? (b > 0 ? b : 1) : 65536);
}

template <int DT>
int gc_dequant(uint16_t *dst, const void *w, size_t ws, int64_t n, int64_t n_rows,
               cudaStream_t stream) {
    LAUNCH((gc_dequant_f16_kernel<DT>), dim3(gc_blocks((n + 7) / 8 * n_rows)), dim3(GC_THREADS), 0,
           stream, dst, static_cast<const unsigned char *>(w), ws, n, n_rows);
    return slim_launch_result();
}

int gc_dequant_any(int dtype, uint16_t *dst, const void *w, size_t ws, int64_t n, int64_t n_rows,
                   cudaStream_t s) {
    switch (dtype) {
    case SLIM_DTYPE_BF16: return gc_dequant<SLIM_DTYPE_BF16>(dst, w, ws, n, n_rows, s);
    case SLIM_DTYPE_Q4_0: return gc_dequant<SLIM_DTYPE_Q4_0>(dst, w, ws, n, n_rows, s);
    case SLIM_DTYPE_Q4_1: return gc_dequant<SLIM_DTYPE_Q4_1>(dst, w, ws, n, n_rows, s);
    case SLIM_DTYPE_Q5_0: return gc_dequant<SLIM_DTYPE_Q5_0>(dst, w, ws, n, n_rows, s);
    case SLIM_DTYPE_Q5_1: return gc_dequant<SLIM_DTYPE_Q5_1>(dst, w, ws, n, n_rows, s);
    case SLIM_DTYPE_Q8_0: return gc_dequant<SLIM_DTYPE_Q8_0>(dst, w, ws, n, n_rows, s);
    case SLIM_DTYPE_Q4_K: return gc_dequant<SLIM_DTYPE_Q4_K>(dst, w, ws, n, n_rows, s);
    case SLIM_DTYPE_Q5_K: return gc_dequant<SLIM_DTYPE_Q5_K>(dst, w, ws, n, n_rows, s);
    case SLIM_DTYPE_Q6_K: return gc_dequant<SLIM_DTYPE_Q6_K>(dst, w, ws, n, n_rows, s);
    default: return (int)cudaErrorInvalidValue;
    }
}

// Weights per block and bytes per block of the types slim_cuda_gemm takes.
bool gc_format(int dtype, int *qk, int *bytes) {
    switch (dtype) {
    case SLIM_DTYPE_F32: *qk = 1, *bytes = 4; return true;
    case SLIM_DTYPE_F16:
    case SLIM_DTYPE_BF16: *qk = 1, *bytes = 2; return true;
    case SLIM_DTYPE_Q4_0: *qk = 32, *bytes = 18; return true;
    case SLIM_DTYPE_Q4_1: *qk = 32, *bytes = 20; return true;
    case SLIM_DTYPE_Q5_0: *qk = 32, *bytes = 22; return true;
    case SLIM_DTYPE_Q5_1: *qk = 32, *bytes = 24; return true;
    case SLIM_DTYPE_Q8_0: *qk = 32, *bytes = 34; return true;
    case SLIM_DTYPE_Q4_K: *qk = 256, *bytes = 144; return true;
    case SLIM_DTYPE_Q5_K: *qk = 256, *bytes = 176; return true;
    case SLIM_DTYPE_Q6_K: *qk = 256, *bytes = 210; return true;
    default: return false;
    }
}

} // namespace

extern "C" int slim_cuda_gemm_cublas(void *cublas_handle, int dtype, float *y, const void *w,
                                     size_t w_row_stride, const float *x, int64_t n, int64_t n_rows,
                                     int64_t n_tokens, void *w16_scratch, void *x16_scratch,
                                     void *stream) {
    int qk, bytes;
    if (!cublas_handle || !gc_format(dtype, &qk, &bytes) || n <= 0 || n % qk || n_rows < 0 ||
        n_tokens < 0 || n > 0x7fffffff || n_rows > 0x7fffffff || n_tokens > 0x7fffffff)
        return (int)cudaErrorInvalidValue;
    const size_t row = (size_t)(n / qk) * bytes;
    const size_t align = dtype == SLIM_DTYPE_F32 ? 4 : 2;
    if (((uintptr_t)w % align) || (w_row_stride % align) || (n_rows > 1 && w_row_stride < row) ||
        ((uintptr_t)x & 3) || w_row_stride / align > 0x7fffffff)
        return (int)cudaErrorInvalidValue;
    const bool f32 = dtype == SLIM_DTYPE_F32, in_place = dtype == SLIM_DTYPE_F16 || f32;
    if ((!in_place && (!w16_scratch || ((uintptr_t)w16_scratch & 15))) ||
        (!f32 && (!x16_scratch || ((uintptr_t)x16_scratch & 1))))
        return (int)cudaErrorInvalidValue;
    if (n_rows == 0 || n_tokens == 0) return 0;

    cudaStream_t s = (cudaStream_t)stream;
    cublasHandle_t h = static_cast<cublasHandle_t>(cublas_handle);
    cublasStatus_t st = cublasSetStream(h, s);
    if (st != CUBLAS_STATUS_SUCCESS) return 1000 + (int)st;
    const void *a = w, *b = x;
    int lda = (int)(w_row_stride / align);
    if (!in_place) {
        int rc = gc_dequant_any(dtype, static_cast<uint16_t *>(w16_scratch), w, w_row_stride, n,
                                n_rows, s);
        if (rc) return rc;
        a = w16_scratch;
        lda = (int)n;
    }
    if (!f32) {
        LAUNCH(gc_f32_to_f16_kernel, dim3(gc_blocks(n * n_tokens)), dim3(GC_THREADS), 0, s,
               static_cast<uint16_t *>(x16_scratch), x, n * n_tokens);
        int rc = slim_launch_result();
        if (rc) return rc;
        b = x16_scratch;
    }
    const cudaDataType t = f32 ? CUDA_R_32F : CUDA_R_16F;
    const float one = 1.0f, zero = 0.0f;
    st = cublasGemmEx(h, CUBLAS_OP_T, CUBLAS_OP_N, (int)n_rows, (int)n_tokens, (int)n, &one, a, t,
                      lda, b, t, (int)n, &zero, y, CUDA_R_32F, (int)n_rows, CUBLAS_COMPUTE_32F,
                      CUBLAS_GEMM_DEFAULT);
    return st == CUBLAS_STATUS_SUCCESS ? 0 : 1000 + (int)st;
}

extern "C" int slim_cuda_gemm_prefer_cublas(int dtype, int64_t n, int64_t n_rows,
                                            int64_t n_tokens) {
    (void)n;
    (void)n_rows;
    return (dtype == SLIM_DTYPE_F16 || dtype == SLIM_DTYPE_BF16) && n_tokens >= 32;
}
