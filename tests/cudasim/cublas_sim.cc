// cublas_sim.cc: a cuBLAS stand-in for the cudasim builds, with the real
// prototypes of <cublas_v2.h> (CUDA 13; cublasCreate/Destroy/SetStream/
// GetStream are macros for the _v2 symbols defined here).  Only what slim
// uses: handles, stream, math mode, cublasGemmEx and cublasGemmStridedBatchedEx.
//
// Semantics (cuBLAS docs): column-major C = alpha * op(A) op(B) + beta * C,
// op(A) m x k, op(B) k x n; op N, T (C = T for real types); A/B types
// CUDA_R_16F, CUDA_R_16BF or CUDA_R_32F (both the same), C CUDA_R_32F or the
// A/B type; compute CUBLAS_COMPUTE_32F and its _PEDANTIC / _FAST_* variants,
// all computed as plain f32 (each product of the converted inputs, summed in
// increasing k in f32, then alpha * sum + beta * C): the tests' tolerances
// must cover tensor-core rounding.  alpha, beta: host floats.  beta == 0:
// C is only written (NaN in C is ignored).  Statuses: NOT_INITIALIZED for a
// null handle, INVALID_VALUE for negative sizes, bad op, lda/ldb/ldc below the
// minimum, null alpha/beta, negative batchCount; NOT_SUPPORTED for other
// types and compute types.  m, n or batchCount 0: nothing to do.
// The work is enqueued on the handle's stream (cudasim::enqueue), so it is
// ordered with the kernels and copies of that stream, deferred and captured
// into graphs like them.
#include "cudasim.h"

#include <cublas_v2.h>

#include <vector>

struct cublasContext {
    cudaStream_t stream;
    cublasMath_t math;
};

extern "C" {

cublasStatus_t cublasCreate_v2(cublasHandle_t *handle) {
    if (!handle) return CUBLAS_STATUS_INVALID_VALUE;
    *handle = new cublasContext{nullptr, CUBLAS_DEFAULT_MATH};
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasDestroy_v2(cublasHandle_t handle) {
    if (!handle) return CUBLAS_STATUS_NOT_INITIALIZED;
    delete handle;
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasSetStream_v2(cublasHandle_t handle, cudaStream_t stream) {
    if (!handle) return CUBLAS_STATUS_NOT_INITIALIZED;
    handle->stream = stream;
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasGetStream_v2(cublasHandle_t handle, cudaStream_t *stream) {
    if (!handle) return CUBLAS_STATUS_NOT_INITIALIZED;
    if (!stream) return CUBLAS_STATUS_INVALID_VALUE;
    *stream = handle->stream;
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasSetMathMode(cublasHandle_t handle, cublasMath_t mode) {
    if (!handle) return CUBLAS_STATUS_NOT_INITIALIZED;
    handle->math = mode;
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasGetMathMode(cublasHandle_t handle, cublasMath_t *mode) {
    if (!handle) return CUBLAS_STATUS_NOT_INITIALIZED;
    if (!mode) return CUBLAS_STATUS_INVALID_VALUE;
    *mode = handle->math;
    return CUBLAS_STATUS_SUCCESS;
}

} // extern "C"

namespace {

float load(const void *p, cudaDataType t, long long i) {
    switch (t) {
    case CUDA_R_16F: return __half2float(static_cast<const __half *>(p)[i]);
    case CUDA_R_16BF: return __bfloat162float(static_cast<const __nv_bfloat16 *>(p)[i]);
    default: return static_cast<const float *>(p)[i];
    }
}

void store(void *p, cudaDataType t, long long i, float v) {
    switch (t) {
    case CUDA_R_16F: static_cast<__half *>(p)[i] = __float2half_rn(v); break;
    case CUDA_R_16BF: static_cast<__nv_bfloat16 *>(p)[i] = __float2bfloat16_rn(v); break;
    default: static_cast<float *>(p)[i] = v; break;
    }
}

bool is_op(cublasOperation_t op) {
    return op == CUBLAS_OP_N || op == CUBLAS_OP_T || op == CUBLAS_OP_C;
}

cublasStatus_t gemm(const char *what, cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb,
                    int m, int n, int k, const void *alpha, const void *A, cudaDataType at, int lda,
                    long long sa, const void *B, cudaDataType bt, int ldb, long long sb,
                    const void *beta, void *C, cudaDataType ct, int ldc, long long sc, int batch,
                    cublasComputeType_t compute) {
    if (!h) return CUBLAS_STATUS_NOT_INITIALIZED;
    if (m < 0 || n < 0 || k < 0 || batch < 0 || !is_op(ta) || !is_op(tb) || !alpha || !beta)
        return CUBLAS_STATUS_INVALID_VALUE;
    const int rows_a = ta == CUBLAS_OP_N ? m : k, rows_b = tb == CUBLAS_OP_N ? k : n;
    if (lda < (rows_a > 1 ? rows_a : 1) || ldb < (rows_b > 1 ? rows_b : 1) || ldc < (m > 1 ? m : 1))
        return CUBLAS_STATUS_INVALID_VALUE;
    const bool in_ok = at == bt && (at == CUDA_R_16F || at == CUDA_R_16BF || at == CUDA_R_32F);
    const bool out_ok = ct == CUDA_R_32F || ct == at;
    const bool compute_ok =
        compute == CUBLAS_COMPUTE_32F || compute == CUBLAS_COMPUTE_32F_PEDANTIC ||
        compute == CUBLAS_COMPUTE_32F_FAST_16F || compute == CUBLAS_COMPUTE_32F_FAST_16BF ||
        compute == CUBLAS_COMPUTE_32F_FAST_TF32;
    if (!in_ok || !out_ok || !compute_ok) return CUBLAS_STATUS_NOT_SUPPORTED;
    if (m == 0 || n == 0 || batch == 0) return CUBLAS_STATUS_SUCCESS;
    const float al = *static_cast<const float *>(alpha), be = *static_cast<const float *>(beta);
    cudaError_t e = cudasim::enqueue(h->stream, what, [=]() {
        for (int b = 0; b < batch; b++)
            for (int j = 0; j < n; j++)
                for (int i = 0; i < m; i++) {
                    float acc = 0.0f;
                    for (int l = 0; l < k; l++) {
                        const long long ia =
                            ta == CUBLAS_OP_N ? i + (long long)l * lda : l + (long long)i * lda;
                        const long long ib =
                            tb == CUBLAS_OP_N ? l + (long long)j * ldb : j + (long long)l * ldb;
                        acc += load(A, at, b * sa + ia) * load(B, bt, b * sb + ib);
                    }
                    const long long ic = b * sc + i + (long long)j * ldc;
                    float v = al * acc;
                    if (be != 0.0f) v += be * load(C, ct, ic);
                    store(C, ct, ic, v);
                }
    });
    return e == cudaSuccess ? CUBLAS_STATUS_SUCCESS : CUBLAS_STATUS_EXECUTION_FAILED;
}

} // namespace

extern "C" {

cublasStatus_t cublasGemmEx(cublasHandle_t handle, cublasOperation_t transa,
                            cublasOperation_t transb, int m, int n, int k, const void *alpha,
                            const void *A, cudaDataType Atype, int lda, const void *B,
                            cudaDataType Btype, int ldb, const void *beta, void *C,
                            cudaDataType Ctype, int ldc, cublasComputeType_t computeType,
                            cublasGemmAlgo_t algo) {
    (void)algo;
    return gemm("cublasGemmEx", handle, transa, transb, m, n, k, alpha, A, Atype, lda, 0, B, Btype,
                ldb, 0, beta, C, Ctype, ldc, 0, 1, computeType);
}

cublasStatus_t cublasGemmStridedBatchedEx(cublasHandle_t handle, cublasOperation_t transa,
                                          cublasOperation_t transb, int m, int n, int k,
                                          const void *alpha, const void *A, cudaDataType Atype,
                                          int lda, long long int strideA, const void *B,
                                          cudaDataType Btype, int ldb, long long int strideB,
                                          const void *beta, void *C, cudaDataType Ctype, int ldc,
                                          long long int strideC, int batchCount,
                                          cublasComputeType_t computeType, cublasGemmAlgo_t algo) {
    (void)algo;
    return gemm("cublasGemmStridedBatchedEx", handle, transa, transb, m, n, k, alpha, A, Atype, lda,
                strideA, B, Btype, ldb, strideB, beta, C, Ctype, ldc, strideC, batchCount,
                computeType);
}

} // extern "C"
