// matvec_float.cu: decode mat-vec for F32, F16 and BF16 weights against an f32
// activation row (their vec_dot_type; matvec.cuh for the dispatcher).
//
// One warp per row, MV_WARPS rows per block.  Lane l takes the 16-byte chunks
// l, l + 32, ... of the row (4 f32 or 8 f16/bf16 weights) and the floats of x
// they meet (16-byte loads), multiplies in f32 and accumulates in chunk order;
// then a butterfly over the warp: deterministic for a given n.  The CPU sums
// in 16 interleaved partial sums, so results differ in rounding only.
#include "common.cuh"
#include "kernels.h"
#include "matvec.cuh"

namespace slim_mv {
namespace {

template <int T> struct FChunk { static constexpr int ELEMS = T == SLIM_DTYPE_F32 ? 4 : 8; };

__device__ __forceinline__ float bf16_lo(uint32_t v) { return __uint_as_float(v << 16); }
__device__ __forceinline__ float bf16_hi(uint32_t v) { return __uint_as_float(v & 0xffff0000u); }

// dot of chunk c (16 bytes of weights) with the floats of x it meets.
template <int T>
__device__ __forceinline__ float chunk_dot(const unsigned char *wr, const float *x, int64_t c) {
    const uint4 v = __ldg(reinterpret_cast<const uint4 *>(wr + 16 * c));
    if constexpr (T == SLIM_DTYPE_F32) {
        const float4 a = ld_f32x4(x + 4 * c);
        return __uint_as_float(v.x) * a.x + __uint_as_float(v.y) * a.y +
               __uint_as_float(v.z) * a.z + __uint_as_float(v.w) * a.w;
    } else {
        const float4 a = ld_f32x4(x + 8 * c), b = ld_f32x4(x + 8 * c + 4);
        float w[8];
        const uint32_t u[4] = {v.x, v.y, v.z, v.w};
        SLIM_UNROLL
        for (int k = 0; k < 4; k++) {
            w[2 * k] = T == SLIM_DTYPE_F16 ? f16_bits_to_f32(u[k] & 0xffff) : bf16_lo(u[k]);
            w[2 * k + 1] = T == SLIM_DTYPE_F16 ? f16_bits_to_f32(u[k] >> 16) : bf16_hi(u[k]);
        }
        return w[0] * a.x + w[1] * a.y + w[2] * a.z + w[3] * a.w + w[4] * b.x + w[5] * b.y +
               w[6] * b.z + w[7] * b.w;
    }
}

template <int T>
__device__ __forceinline__ float row_dot_f(const unsigned char *wr, const float *x, int64_t nc,
                                           int lane) {
    float acc = 0.0f;
    int64_t c = lane;
    for (; c + 32 < nc; c += 64) { // two chunks in flight
        const float p0 = chunk_dot<T>(wr, x, c), p1 = chunk_dot<T>(wr, x, c + 32);
        acc += p0;
        acc += p1;
    }
    if (c < nc) acc += chunk_dot<T>(wr, x, c);
    return warp_sum(acc);
}

// One pass over the row per token (matvec.cuh): each token bitwise its one-token result.
template <int T>
__global__ void __launch_bounds__(MV_THREADS)
    matvec_f_kernel(float *y, const unsigned char *w, size_t w_row_stride, const unsigned char *x,
                    size_t x_stride, int64_t nc, int64_t n_rows, int64_t n_tokens) {
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
    const int64_t row = (int64_t)blockIdx.x * MV_WARPS + warp;
    if (row >= n_rows) return;
    const unsigned char *wr = w + row * w_row_stride;
    SLIM_CHECK_ALIGN(wr, 16, "matvec_f_kernel row");
    for (int64_t t = 0; t < n_tokens; t++) {
        const float acc =
            row_dot_f<T>(wr, reinterpret_cast<const float *>(x + t * x_stride), nc, lane);
        if (lane == 0) y[t * n_rows + row] = acc;
    }
}

template <int T>
int matvec_f_launch(float *y, const void *w, size_t ws, const void *x, size_t xs, int64_t nc,
                    int64_t n_rows, int64_t nt, void *stream) {
    const int64_t blocks = (n_rows + MV_WARPS - 1) / MV_WARPS;
    LAUNCH((matvec_f_kernel<T>), dim3((unsigned)blocks), dim3(MV_THREADS), 0, (cudaStream_t)stream,
           y, static_cast<const unsigned char *>(w), ws, static_cast<const unsigned char *>(x), xs,
           nc, n_rows, nt);
    return slim_launch_result();
}

} // namespace

int launch_f32(float *y, const void *w, size_t ws, const void *x, size_t xs, int64_t nc,
               int64_t n_rows, int64_t nt, void *stream) {
    return matvec_f_launch<SLIM_DTYPE_F32>(y, w, ws, x, xs, nc, n_rows, nt, stream);
}
int launch_f16(float *y, const void *w, size_t ws, const void *x, size_t xs, int64_t nc,
               int64_t n_rows, int64_t nt, void *stream) {
    return matvec_f_launch<SLIM_DTYPE_F16>(y, w, ws, x, xs, nc, n_rows, nt, stream);
}
int launch_bf16(float *y, const void *w, size_t ws, const void *x, size_t xs, int64_t nc,
                int64_t n_rows, int64_t nt, void *stream) {
    return matvec_f_launch<SLIM_DTYPE_BF16>(y, w, ws, x, xs, nc, n_rows, nt, stream);
}

} // namespace slim_mv
