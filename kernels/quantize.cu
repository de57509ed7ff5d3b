// quantize.cu: activation rows to the dot-product formats Q8_0, Q8_1 and Q8_K,
// bitwise equal to the CPU traits' from_float (lib/quant/q_legacy.c, q_k.c),
// so that the mat-vec's integer sums are the CPU's.
//
// Q8_0/Q8_1: 8 lanes per 32-element block (4 elements each, one 16-byte
// load), a warp does 4 blocks.  amax is a max (exact in any order); then the
// CPU's d = amax / 127, id = 1 / d (IEEE division, the CUDA default),
// q = roundf(x * id) (round half away from zero, as C), d (and Q8_1's
// s = sum(q) * d) rounded to fp16 to nearest even.
// Q8_K: one warp per 256-element block (8 elements per lane).  The CPU's scale
// comes from the FIRST element of largest magnitude: the warp reduces
// (|x|, index) pairs, ties to the lower index; iscale = -127 / max,
// q = min(nearest(iscale * x), 127) with nearest = round to even (GGML's
// nearest_int, exact for |v| < 2^22), bsums per 16, d = 1 / iscale; an
// all-zero block is all zero bytes.  __fmul_rn keeps nvcc from fusing the
// product into anything.
#include "common.cuh"
#include "kernels.h"
#include "util.cuh"

#include "../lib/quant/blocks.h"

namespace {

constexpr int QZ_THREADS = 256;
constexpr int QZ_WARPS = QZ_THREADS / 32;

__device__ __forceinline__ uint32_t f32_to_f16_bits(float f) {
    return (uint32_t)__half_as_ushort(__float2half_rn(f));
}
__device__ __forceinline__ void st_u16(unsigned char *p, uint32_t v) {
    SLIM_CHECK_ALIGN(p, 2, "st_u16");
    *reinterpret_cast<unsigned short *>(p) = (unsigned short)v;
}
__device__ __forceinline__ void st_u32(unsigned char *p, uint32_t v) {
    SLIM_CHECK_ALIGN(p, 4, "st_u32");
    *reinterpret_cast<unsigned int *>(p) = v;
}
__device__ __forceinline__ uint32_t pack4(int a, int b, int c, int d) {
    return (uint32_t)(a & 255) | (uint32_t)(b & 255) << 8 | (uint32_t)(c & 255) << 16 |
           (uint32_t)(d & 255) << 24;
}

// Q8_0 (Q81 = false) or Q8_1: block = 34 or 36 bytes.
template <bool Q81>
__global__ void __launch_bounds__(QZ_THREADS)
    quantize_q8_kernel(unsigned char *dst, size_t dst_row_stride, const float *x, int64_t n,
                       int64_t nb, int64_t total) {
    constexpr int BYTES = Q81 ? 36 : 34, QS = Q81 ? 4 : 2;
    const int lane = threadIdx.x % 32, j = lane % 8;
    const int64_t gb = ((int64_t)blockIdx.x * QZ_WARPS + threadIdx.x / 32) * 4 + lane / 8;
    const bool valid = gb < total; // the whole warp runs the shuffles
    const int64_t row = valid ? gb / nb : 0, ib = valid ? gb % nb : 0;
    float4 v = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
    if (valid) v = ld_f32x4(x + row * n + ib * 32 + 4 * j);

    float amax = fmaxf(fmaxf(fabsf(v.x), fabsf(v.y)), fmaxf(fabsf(v.z), fabsf(v.w)));
    SLIM_UNROLL
    for (int o = 4; o > 0; o >>= 1)
        amax = fmaxf(amax, __shfl_xor_sync(SLIM_FULL_MASK, amax, o));
    const float d = amax / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    const int q0 = (int)roundf(__fmul_rn(v.x, id)), q1 = (int)roundf(__fmul_rn(v.y, id));
    const int q2 = (int)roundf(__fmul_rn(v.z, id)), q3 = (int)roundf(__fmul_rn(v.w, id));
    int sum = 0;
    if constexpr (Q81) {
        sum = (int)(int8_t)q0 + (int)(int8_t)q1 + (int)(int8_t)q2 + (int)(int8_t)q3;
        SLIM_UNROLL
        for (int o = 4; o > 0; o >>= 1)
            sum += __shfl_xor_sync(SLIM_FULL_MASK, sum, o);
    }
    if (!valid) return;
    unsigned char *b = dst + row * dst_row_stride + ib * BYTES;
    const uint32_t packed = pack4(q0, q1, q2, q3);
    st_u16(b + QS + 4 * j, packed & 0xffff);
    st_u16(b + QS + 4 * j + 2, packed >> 16);
    if (j == 0) {
        st_u16(b, f32_to_f16_bits(d));
        if constexpr (Q81) st_u16(b + 2, f32_to_f16_bits(__fmul_rn((float)sum, d)));
    }
}

__global__ void __launch_bounds__(QZ_THREADS)
    quantize_q8_k_kernel(unsigned char *dst, size_t dst_row_stride, const float *x, int64_t n,
                         int64_t nb, int64_t total) {
    const int lane = threadIdx.x % 32;
    const int64_t gb = (int64_t)blockIdx.x * QZ_WARPS + threadIdx.x / 32;
    if (gb >= total) return; // the whole warp leaves together
    const int64_t row = gb / nb, ib = gb % nb;
    const float *xb = x + row * n + ib * 256 + 8 * lane;
    const float4 a = ld_f32x4(xb), c = ld_f32x4(xb + 4);
    const float v[8] = {a.x, a.y, a.z, a.w, c.x, c.y, c.z, c.w};

    // First element of largest magnitude: in lane order, then ties to the lower index.
    float amax = 0.0f, max = 0.0f;
    int idx = 0x7fffffff;
    SLIM_UNROLL
    for (int k = 0; k < 8; k++) {
        const float ax = v[k] < 0 ? -v[k] : v[k];
        if (ax > amax) {
            amax = ax;
            max = v[k];
            idx = 8 * lane + k;
        }
    }
    SLIM_UNROLL
    for (int o = 16; o > 0; o >>= 1) {
        const float oa = __shfl_xor_sync(SLIM_FULL_MASK, amax, o);
        const float om = __shfl_xor_sync(SLIM_FULL_MASK, max, o);
        const int oi = __shfl_xor_sync(SLIM_FULL_MASK, idx, o);
        if (oa > amax || (oa == amax && oi < idx)) {
            amax = oa;
            max = om;
            idx = oi;
        }
    }
    unsigned char *b = dst + row * dst_row_stride + ib * 292;
    if (amax == 0.0f) { // warp-uniform
        st_u32(b + 4 + 8 * lane, 0);
        st_u32(b + 8 + 8 * lane, 0);
        if (lane % 2 == 0) st_u16(b + 260 + lane, 0);
        if (lane == 0) st_u32(b, 0);
        return;
    }
    const float iscale = -127.0f / max;
    int q[8], s = 0;
    SLIM_UNROLL
    for (int k = 0; k < 8; k++) {
        const int t = (int)rintf(__fmul_rn(iscale, v[k]));
        q[k] = t < 127 ? t : 127;
        s += q[k];
    }
    s += __shfl_xor_sync(SLIM_FULL_MASK, s, 1); // sub-block of 16 = lanes 2m, 2m + 1
    st_u32(b + 4 + 8 * lane, pack4(q[0], q[1], q[2], q[3]));
    st_u32(b + 8 + 8 * lane, pack4(q[4], q[5], q[6], q[7]));
    if (lane % 2 == 0) st_u16(b + 260 + lane, (uint32_t)(s & 0xffff));
    if (lane == 0) {
        const float d = 1.0f / iscale;
        st_u32(b, __float_as_uint(d));
    }
}

} // namespace

extern "C" int slim_cuda_quantize_rows(int vec_dot_type, void *dst, size_t dst_row_stride,
                                       const float *x, int64_t n, int64_t n_rows, void *stream) {
    const bool k = vec_dot_type == SLIM_DTYPE_Q8_K;
    if ((vec_dot_type != SLIM_DTYPE_Q8_0 && vec_dot_type != SLIM_DTYPE_Q8_1 && !k) || n < 0 ||
        n_rows < 0)
        return (int)cudaErrorInvalidValue;
    if (n == 0 || n_rows == 0) return 0;
    const int block = k ? 256 : 32, bytes = k ? 292 : vec_dot_type == SLIM_DTYPE_Q8_1 ? 36 : 34;
    const size_t align = k ? 4 : 2;
    const int64_t nb = n / block;
    if (n % block || ((uintptr_t)x & 15) || ((uintptr_t)dst % align) ||
        (n_rows > 1 && (dst_row_stride % align || dst_row_stride < (size_t)(nb * bytes))))
        return (int)cudaErrorInvalidValue;
    const int64_t total = nb * n_rows;
    const int64_t per_cta = k ? QZ_WARPS : QZ_WARPS * 4;
    const int64_t grid = (total + per_cta - 1) / per_cta;
    if (grid > 0x7fffffff) return (int)cudaErrorInvalidValue;
    unsigned char *d = static_cast<unsigned char *>(dst);
    if (k)
        LAUNCH(quantize_q8_k_kernel, dim3((unsigned)grid), dim3(QZ_THREADS), 0,
               (cudaStream_t)stream, d, dst_row_stride, x, n, nb, total);
    else if (vec_dot_type == SLIM_DTYPE_Q8_1)
        LAUNCH((quantize_q8_kernel<true>), dim3((unsigned)grid), dim3(QZ_THREADS), 0,
               (cudaStream_t)stream, d, dst_row_stride, x, n, nb, total);
    else
        LAUNCH((quantize_q8_kernel<false>), dim3((unsigned)grid), dim3(QZ_THREADS), 0,
               (cudaStream_t)stream, d, dst_row_stride, x, n, nb, total);
    return slim_launch_result();
}
