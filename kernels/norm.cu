// norm.cu: RMSNorm, one block per row.
//
// Thread t sums x[i]^2 for i = t, t + 256, ... in index order, then the block
// reduces with warp butterflies and one shared-memory step (util.cuh): the
// order depends only on n, so results are deterministic.  The sum is in f32
// (the CPU reference sums in double; see docs/CUDA.md for the tolerance).
#include "common.cuh"
#include "kernels.h"
#include "util.cuh"

namespace {

constexpr int NORM_THREADS = 256;

__global__ void __launch_bounds__(NORM_THREADS)
    rmsnorm_kernel(float *y, const float *x, const float *w, int64_t n, float eps) {
    __shared__ float scratch[32];
    POISON_SHARED(scratch);
    const int64_t row = blockIdx.x;
    const float *xr = x + row * n;
    float *yr = y + row * n;

    float ss = 0.0f;
    for (int64_t i = threadIdx.x; i < n; i += NORM_THREADS) {
        const float v = xr[i];
        ss += v * v;
    }
    ss = block_sum<NORM_THREADS / 32>(ss, scratch);
    const float s = rsqrtf(ss / (float)n + eps);

    // Each thread rewrites only the elements it read: in place is safe.
    if (w) {
        for (int64_t i = threadIdx.x; i < n; i += NORM_THREADS)
            yr[i] = xr[i] * s * w[i];
    } else {
        for (int64_t i = threadIdx.x; i < n; i += NORM_THREADS)
            yr[i] = xr[i] * s;
    }
}

} // namespace

extern "C" int slim_cuda_rmsnorm(float *y, const float *x, const float *w, int64_t n,
                                 int64_t n_rows, float eps, void *stream) {
    if (n < 0 || n_rows < 0 || n_rows > 0x7fffffff) return (int)cudaErrorInvalidValue;
    if (n == 0 || n_rows == 0) return 0;
    LAUNCH(rmsnorm_kernel, dim3((unsigned)n_rows), dim3(NORM_THREADS), 0, (cudaStream_t)stream, y,
           x, w, n, eps);
    return slim_launch_result();
}
