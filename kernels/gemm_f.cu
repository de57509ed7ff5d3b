// gemm_f.cu: slim_cuda_gemm (argument checks and dispatch per weight type,
// kernels.h) and the GEMM for float weights (F32, F16, BF16) with f32
// activations: an f32 FMA tiled kernel.
//
// Tile: 64 weight rows x 32 tokens per 256-thread block, K in stages of 32;
// both operands staged in shared memory as f32 (transposed, k-major, padded
// by one so that the stores are conflict-free).  Thread (rg, tg) owns rows
// rg + 16i (i < 4) and tokens tg + 16j (j < 2) and adds fmaf(w, x) in
// increasing k: deterministic.  The tails of n, rows and tokens are
// zero-filled (fmaf(0, 0, acc) leaves acc unchanged).  The weight type only
// changes the loads (F16/BF16 widened to f32 exactly), so the result is the
// exact product of the stored weights with x up to f32 rounding of the
// running sum; the CPU's vec_dot uses 16 partial sums, so the two differ only
// in summation order.  Tensor cores would need x rounded to f16/bf16 (or a
// split into hi + lo halves); the float weights here are the small synthetic
// test models, and large F16/BF16 weights can take the cuBLAS path.
#include "common.cuh"
#include "gemm.cuh"
#include "kernels.h"
#include "util.cuh"

namespace {

constexpr int GF_BM = 64, GF_BN = 32, GF_KC = 32, GF_THREADS = 256;

template <int DT> __device__ __forceinline__ float gf_load(const unsigned char *row, int64_t k) {
    if constexpr (DT == SLIM_DTYPE_F32) {
        const float *p = reinterpret_cast<const float *>(row) + k;
        SLIM_CHECK_ALIGN(p, 4, "gemm F32 weight");
        return __ldg(p);
    } else if constexpr (DT == SLIM_DTYPE_F16) {
        return f16_bits_to_f32(ld_u16(row + 2 * k));
    } else {
        return __uint_as_float(ld_u16(row + 2 * k) << 16);
    }
}

template <int DT>
__global__ void __launch_bounds__(GF_THREADS, 1)
    gemm_f_kernel(float *y, const unsigned char *w, size_t ws, const unsigned char *x, size_t xs,
                  int64_t n, int64_t n_rows, int64_t n_tokens) {
    __shared__ float sw[GF_KC][GF_BM + 1];
    POISON_SHARED(sw);
    __shared__ float sxt[GF_KC][GF_BN + 1];
    POISON_SHARED(sxt);

    const int tid = threadIdx.x, rg = tid % 16, tg = tid / 16;
    const int64_t r0 = (int64_t)blockIdx.y * GF_BM, t0 = (int64_t)blockIdx.x * GF_BN;
    float acc[4][2];
    SLIM_UNROLL
    for (int i = 0; i < 4; i++)
        SLIM_UNROLL
    for (int j = 0; j < 2; j++)
        acc[i][j] = 0.0f;

    for (int64_t k0 = 0; k0 < n; k0 += GF_KC) {
        __syncthreads(); // every thread is done with the previous stage
        for (int i = tid; i < GF_BM * GF_KC;
             i += GF_THREADS) { // consecutive threads: consecutive k
            const int row = i / GF_KC, k = i % GF_KC;
            float v = 0.0f;
            if (r0 + row < n_rows && k0 + k < n)
                v = gf_load<DT>(w + (size_t)(r0 + row) * ws, k0 + k);
            sw[k][row] = v;
        }
        for (int i = tid; i < GF_BN * GF_KC; i += GF_THREADS) {
            const int t = i / GF_KC, k = i % GF_KC;
            float v = 0.0f;
            if (t0 + t < n_tokens && k0 + k < n) {
                const float *p =
                    reinterpret_cast<const float *>(x + (size_t)(t0 + t) * xs) + k0 + k;
                SLIM_CHECK_ALIGN(p, 4, "gemm f32 activations");
                v = __ldg(p);
            }
            sxt[k][t] = v;
        }
        __syncthreads();
        SLIM_UNROLL
        for (int k = 0; k < GF_KC; k++) {
            float wv[4], xv[2];
            SLIM_UNROLL
            for (int i = 0; i < 4; i++)
                wv[i] = sw[k][rg + 16 * i];
            SLIM_UNROLL
            for (int j = 0; j < 2; j++)
                xv[j] = sxt[k][tg + 16 * j];
            SLIM_UNROLL
            for (int i = 0; i < 4; i++)
                SLIM_UNROLL
            for (int j = 0; j < 2; j++)
                acc[i][j] = fmaf(wv[i], xv[j], acc[i][j]);
        }
    }
    SLIM_UNROLL
    for (int i = 0; i < 4; i++)
        SLIM_UNROLL
    for (int j = 0; j < 2; j++) {
        const int64_t r = r0 + rg + 16 * i, t = t0 + tg + 16 * j;
        if (r < n_rows && t < n_tokens) y[t * n_rows + r] = acc[i][j];
    }
}

template <int DT>
int gemm_f_launch(float *y, const void *w, size_t ws, const void *x, size_t xs, int64_t n,
                  int64_t n_rows, int64_t n_tokens, void *stream) {
    const int64_t gx = (n_tokens + GF_BN - 1) / GF_BN, gy = (n_rows + GF_BM - 1) / GF_BM;
    if (gx > 0x7fffffff || gy > 65535) return (int)cudaErrorInvalidValue;
    LAUNCH((gemm_f_kernel<DT>), dim3((unsigned)gx, (unsigned)gy), dim3(GF_THREADS), 0,
           (cudaStream_t)stream, y, static_cast<const unsigned char *>(w), ws,
           static_cast<const unsigned char *>(x), xs, n, n_rows, n_tokens);
    return slim_launch_result();
}

// Per weight type: weights per block, bytes per weight block, bytes of the
// activations for one weight block, and the alignment of weights and activations.
struct GemmFormat {
    int qk, wbytes, xbytes, walign, xalign;
};
bool gemm_format(int dtype, GemmFormat *f) {
    switch (dtype) {
    case SLIM_DTYPE_F32: *f = {1, 4, 4, 4, 4}; return true;        // F32 x f32
    case SLIM_DTYPE_F16: *f = {1, 2, 4, 2, 4}; return true;        // F16 x f32
    case SLIM_DTYPE_BF16: *f = {1, 2, 4, 2, 4}; return true;       // BF16 x f32
    case SLIM_DTYPE_Q4_0: *f = {32, 18, 34, 2, 2}; return true;    // Q4_0 x Q8_0
    case SLIM_DTYPE_Q4_1: *f = {32, 20, 36, 2, 2}; return true;    // Q4_1 x Q8_1
    case SLIM_DTYPE_Q5_0: *f = {32, 22, 34, 2, 2}; return true;    // Q5_0 x Q8_0
    case SLIM_DTYPE_Q5_1: *f = {32, 24, 36, 2, 2}; return true;    // Q5_1 x Q8_1
    case SLIM_DTYPE_Q8_0: *f = {32, 34, 34, 2, 2}; return true;    // Q8_0 x Q8_0
    case SLIM_DTYPE_Q4_K: *f = {256, 144, 292, 2, 4}; return true; // Q4_K x Q8_K
    case SLIM_DTYPE_Q5_K: *f = {256, 176, 292, 2, 4}; return true; // Q5_K x Q8_K
    case SLIM_DTYPE_Q6_K: *f = {256, 210, 292, 2, 4}; return true; // Q6_K x Q8_K
    default: return false;
    }
}

} // namespace

extern "C" int slim_cuda_gemm_supported(int dtype) {
    GemmFormat f;
    return gemm_format(dtype, &f);
}

extern "C" int slim_cuda_gemm(int dtype, float *y, const void *w, size_t w_row_stride,
                              const void *xq, size_t xq_row_stride, int64_t n, int64_t n_rows,
                              int64_t n_tokens, void *stream) {
    GemmFormat f;
    if (!gemm_format(dtype, &f) || n <= 0 || n % f.qk || n_rows < 0 || n_tokens < 0)
        return (int)cudaErrorInvalidValue;
    const size_t w_row = (size_t)(n / f.qk) * f.wbytes, x_row = (size_t)(n / f.qk) * f.xbytes;
    if (((uintptr_t)w % f.walign) || (w_row_stride % f.walign) ||
        (n_rows > 1 && w_row_stride < w_row) || ((uintptr_t)xq % f.xalign) ||
        (xq_row_stride % f.xalign) || (n_tokens > 1 && xq_row_stride < x_row))
        return (int)cudaErrorInvalidValue;
    if (n_rows == 0 || n_tokens == 0) return 0;
    switch (dtype) {
    case SLIM_DTYPE_F32:
        return gemm_f_launch<SLIM_DTYPE_F32>(y, w, w_row_stride, xq, xq_row_stride, n, n_rows,
                                             n_tokens, stream);
    case SLIM_DTYPE_F16:
        return gemm_f_launch<SLIM_DTYPE_F16>(y, w, w_row_stride, xq, xq_row_stride, n, n_rows,
                                             n_tokens, stream);
    case SLIM_DTYPE_BF16:
        return gemm_f_launch<SLIM_DTYPE_BF16>(y, w, w_row_stride, xq, xq_row_stride, n, n_rows,
                                              n_tokens, stream);
    case SLIM_DTYPE_Q4_K:
    case SLIM_DTYPE_Q5_K:
    case SLIM_DTYPE_Q6_K:
        return slim_gemm_kquant(dtype, y, w, w_row_stride, xq, xq_row_stride, n, n_rows, n_tokens,
                                stream);
    default:
        return slim_gemm_legacy(dtype, y, w, w_row_stride, xq, xq_row_stride, n, n_rows, n_tokens,
                                stream);
    }
}
