// rope.cu: rotary position embedding in place, one thread per rotated pair.
// The first row's position is read from device memory (pos0), so a captured
// CUDA graph rotates at the current position at every replay; or each row's
// own position (slim_cuda_rope_rows, a batched step of many sequences).
//
// The angle is computed with the CPU reference's expressions in the same
// order (powf, divide by the frequency factor, times the scaled position);
// its sine and cosine come from a reduction to [-pi, pi] in double and the
// fast __sincosf there (abs error < 2^-21 on that range).  sinf/cosf of the
// unreduced angle (positions reach 1e5) would pull in the slow range reduction,
// which needs a local-memory stack frame.  On a GPU, powf differs by an ulp
// or so and nvcc may contract the rotation into FMAs (docs/CUDA.md gives the
// tolerance).
#include "common.cuh"
#include "kernels.h"
#include "util.cuh"

namespace {

constexpr int ROPE_THREADS = 256;

// sin and cos of a float angle of any size: reduced by 2 pi in double (error
// ~ |theta| * 2^-53), rounded to float, then the fast path.
__device__ __forceinline__ void sincos_any(float theta, float *s, float *c) {
    const double t = (double)theta;
    const double k = rint(t * 0.15915494309189535); // 1 / (2 pi)
    const float r = (float)fma(-k, 6.283185307179586, t);
    __sincosf(r, s, c);
}

__global__ void __launch_bounds__(ROPE_THREADS)
    rope_kernel(float *x, int64_t n_pairs, int32_t n_heads, int32_t head_dim, int32_t n_rot,
                const int32_t *pos_p, int per_row, float theta_base, float freq_scale, float mscale,
                const float *freq_factors, int neox) {
    const int32_t half = n_rot / 2;
    const int32_t pos0 = per_row ? 0 : __ldg(pos_p);
    for (int64_t idx = (int64_t)blockIdx.x * ROPE_THREADS + threadIdx.x; idx < n_pairs;
         idx += (int64_t)gridDim.x * ROPE_THREADS) {
        const int32_t i = (int32_t)(idx % half);
        const int64_t rh = idx / half; // row * n_heads + head
        const int64_t row = rh / n_heads;

        float inv_freq = powf(theta_base, -2.0f * (float)i / (float)n_rot);
        if (freq_factors) inv_freq /= freq_factors[i];
        const float p = (float)(per_row ? __ldg(pos_p + row) : pos0 + (int32_t)row) * freq_scale;
        const float theta = p * inv_freq;
        float s, c;
        sincos_any(theta, &s, &c);
        s *= mscale;
        c *= mscale;

        float *v = x + rh * head_dim;
        const int32_t a = neox ? i : 2 * i, b = neox ? i + half : 2 * i + 1;
        const float x0 = v[a], x1 = v[b];
        v[a] = x0 * c - x1 * s;
        v[b] = x0 * s + x1 * c;
    }
}

} // namespace

static int rope_launch(float *x, int64_t n_rows, int32_t n_heads, int32_t head_dim, int32_t n_rot,
                       const int32_t *pos0, int per_row, float theta_base, float freq_scale,
                       float mscale, const float *freq_factors, int neox, void *stream) {
    if (n_rows < 0 || n_heads < 0 || head_dim < 0 || n_rot < 0 || n_rot % 2 || n_rot > head_dim)
        return (int)cudaErrorInvalidValue;
    const int64_t n_pairs = n_rows * n_heads * (int64_t)(n_rot / 2);
    if (n_pairs == 0) return 0;
    if (!pos0) return (int)cudaErrorInvalidValue;
    int64_t blocks = (n_pairs + ROPE_THREADS - 1) / ROPE_THREADS;
    if (blocks > 65535 * 32) blocks = 65535 * 32; // grid-stride beyond this
    LAUNCH(rope_kernel, dim3((unsigned)blocks), dim3(ROPE_THREADS), 0, (cudaStream_t)stream, x,
           n_pairs, n_heads, head_dim, n_rot, pos0, per_row, theta_base, freq_scale, mscale,
           freq_factors, neox);
    return slim_launch_result();
}

extern "C" int slim_cuda_rope(float *x, int64_t n_rows, int32_t n_heads, int32_t head_dim,
                              int32_t n_rot, const int32_t *pos0, float theta_base,
                              float freq_scale, float mscale, const float *freq_factors, int neox,
                              void *stream) {
    return rope_launch(x, n_rows, n_heads, head_dim, n_rot, pos0, 0, theta_base, freq_scale, mscale,
                       freq_factors, neox, stream);
}

extern "C" int slim_cuda_rope_rows(float *x, int64_t n_rows, int32_t n_heads, int32_t head_dim,
                                   int32_t n_rot, const int32_t *pos, float theta_base,
                                   float freq_scale, float mscale, const float *freq_factors,
                                   int neox, void *stream) {
    return rope_launch(x, n_rows, n_heads, head_dim, n_rot, pos, 1, theta_base, freq_scale, mscale,
                       freq_factors, neox, stream);
}
