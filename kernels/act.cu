// act.cu: element-wise ops: gated activations (GELU-tanh, SiLU), residual
// add, bias add, scale, soft-capping.  Grid-stride loops, one element per thread per step,
// with the CPU reference's expressions (lib/backend/cpu/ops.c).
#include "common.cuh"
#include "kernels.h"
#include "util.cuh"

namespace {

constexpr int EW_THREADS = 256;
constexpr int64_t EW_MAX_BLOCKS = 65535 * 8;

__device__ __forceinline__ float gelu_tanh(float x) {
    const float k = 0.7978845608028654f; // sqrt(2/pi)
    return 0.5f * x * (1.0f + tanhf(k * (x + 0.044715f * x * x * x)));
}

__device__ __forceinline__ float silu(float x) { return x / (1.0f + expf(-x)); }

#define EW_LOOP(i, n)                                                                              \
    for (int64_t i = (int64_t)blockIdx.x * EW_THREADS + threadIdx.x; i < (n);                      \
         i += (int64_t)gridDim.x * EW_THREADS)

template <int ACT>
__global__ void __launch_bounds__(EW_THREADS) act_mul_kernel(float *g, const float *u, int64_t n) {
    EW_LOOP(i, n) {
        const float x = g[i];
        g[i] = (ACT == SLIM_CUDA_ACT_GELU_TANH ? gelu_tanh(x) : silu(x)) * u[i];
    }
}

__global__ void __launch_bounds__(EW_THREADS) add_kernel(float *y, const float *x, int64_t n) {
    EW_LOOP(i, n) y[i] += x[i];
}

__global__ void __launch_bounds__(EW_THREADS)
    add_bias_kernel(float *y, const float *b, int64_t n, int64_t total) {
    EW_LOOP(i, total) y[i] += b[i % n];
}

__global__ void __launch_bounds__(EW_THREADS) scale_kernel(float *y, float s, int64_t n) {
    EW_LOOP(i, n) y[i] *= s;
}

// Gemma's logit soft-capping, the CPU's expression (lib/model/forward.c).
__global__ void __launch_bounds__(EW_THREADS) softcap_kernel(float *y, float cap, int64_t n) {
    EW_LOOP(i, n) y[i] = __fmul_rn(cap, tanhf(y[i] / cap));
}

inline dim3 ew_grid(int64_t n) {
    int64_t b = (n + EW_THREADS - 1) / EW_THREADS;
    return dim3((unsigned)(b < EW_MAX_BLOCKS ? b : EW_MAX_BLOCKS));
}

} // namespace

extern "C" int slim_cuda_act_mul(float *g, const float *u, int64_t n, int act, void *stream) {
    if (n < 0 || (act != SLIM_CUDA_ACT_GELU_TANH && act != SLIM_CUDA_ACT_SILU))
        return (int)cudaErrorInvalidValue;
    if (n == 0) return 0;
    if (act == SLIM_CUDA_ACT_GELU_TANH)
        LAUNCH((act_mul_kernel<SLIM_CUDA_ACT_GELU_TANH>), ew_grid(n), dim3(EW_THREADS), 0,
               (cudaStream_t)stream, g, u, n);
    else
        LAUNCH((act_mul_kernel<SLIM_CUDA_ACT_SILU>), ew_grid(n), dim3(EW_THREADS), 0,
               (cudaStream_t)stream, g, u, n);
    return slim_launch_result();
}

extern "C" int slim_cuda_add(float *y, const float *x, int64_t n, void *stream) {
    if (n < 0) return (int)cudaErrorInvalidValue;
    if (n == 0) return 0;
    LAUNCH(add_kernel, ew_grid(n), dim3(EW_THREADS), 0, (cudaStream_t)stream, y, x, n);
    return slim_launch_result();
}

extern "C" int slim_cuda_add_bias(float *y, const float *b, int64_t n, int64_t n_rows,
                                  void *stream) {
    if (n < 0 || n_rows < 0) return (int)cudaErrorInvalidValue;
    if (n == 0 || n_rows == 0) return 0;
    LAUNCH(add_bias_kernel, ew_grid(n * n_rows), dim3(EW_THREADS), 0, (cudaStream_t)stream, y, b, n,
           n * n_rows);
    return slim_launch_result();
}

extern "C" int slim_cuda_scale(float *y, float s, int64_t n, void *stream) {
    if (n < 0) return (int)cudaErrorInvalidValue;
    if (n == 0) return 0;
    LAUNCH(scale_kernel, ew_grid(n), dim3(EW_THREADS), 0, (cudaStream_t)stream, y, s, n);
    return slim_launch_result();
}

extern "C" int slim_cuda_softcap(float *y, float cap, int64_t n, void *stream) {
    if (n < 0 || !(cap > 0.0f) || cap == INFINITY) return (int)cudaErrorInvalidValue;
    if (n == 0) return 0;
    LAUNCH(softcap_kernel, ew_grid(n), dim3(EW_THREADS), 0, (cudaStream_t)stream, y, cap, n);
    return slim_launch_result();
}
