// util.cuh: helpers shared by the kernels: checked global loads, fixed-order
// warp and block reductions, and the launch result of a launcher.
#ifndef SLIM_KERNELS_UTIL_CUH
#define SLIM_KERNELS_UTIL_CUH

#include "common.cuh"

#define SLIM_FULL_MASK 0xffffffffu

// `#pragma unroll` for nvcc; the host compiler (cudasim) would warn about it.
#if defined(__CUDACC__)
#define SLIM_UNROLL _Pragma("unroll")
#else
#define SLIM_UNROLL
#endif

// ------------------------------------------------------------ loads
// Vector loads need their natural alignment on the GPU (a misaligned one is a
// fault).  Host memory does not care, so under cudasim these helpers check the
// address and abort the launch with a report instead.
#if defined(CUDASIM)
#define SLIM_CHECK_ALIGN(p, a, what)                                                               \
    do {                                                                                           \
        if (reinterpret_cast<uintptr_t>(p) & ((a)-1))                                              \
            ::cudasim::device_error(__FILE__, __LINE__, what ": address not " #a "-byte aligned"); \
    } while (0)
#else
#define SLIM_CHECK_ALIGN(p, a, what) ((void)0)
#endif

// 16 bytes (4 floats) from 16-byte aligned global memory, read-only path.
__device__ __forceinline__ float4 ld_f32x4(const float *p) {
    SLIM_CHECK_ALIGN(p, 16, "ld_f32x4");
    return __ldg(reinterpret_cast<const float4 *>(p));
}

// 2 bytes from 2-byte aligned global memory, read-only path.
__device__ __forceinline__ uint32_t ld_u16(const void *p) {
    SLIM_CHECK_ALIGN(p, 2, "ld_u16");
    return __ldg(reinterpret_cast<const unsigned short *>(p));
}

// 4 bytes from memory that is only 2-byte aligned (GGUF blocks: 34, 18, 22
// bytes), as two 2-byte loads, little-endian.
__device__ __forceinline__ uint32_t ld_u32_a2(const void *p) {
    const unsigned char *b = static_cast<const unsigned char *>(p);
    return ld_u16(b) | (ld_u16(b + 2) << 16);
}

// IEEE half bits (a GGUF block's fp16 scale) to float, exact.
__device__ __forceinline__ float f16_bits_to_f32(uint32_t bits) {
    __half_raw r;
    r.x = (unsigned short)bits;
    return __half2float(__half(r));
}

// ------------------------------------------------------------ reductions
// Butterfly sum over the 32 lanes: every lane ends with the same value (float
// addition is commutative), in an order fixed by the lane numbering.
__device__ __forceinline__ float warp_sum(float v) {
    SLIM_UNROLL
    for (int o = 16; o > 0; o >>= 1)
        v += __shfl_xor_sync(SLIM_FULL_MASK, v, o);
    return v;
}

// Sum over a block of NWARPS full warps; every thread gets the result.
// scratch: __shared__ float[32].  Contains two __syncthreads: all threads of
// the block must call it.  Safe to call again with the same scratch.
template <int NWARPS> __device__ __forceinline__ float block_sum(float v, float *scratch) {
    static_assert(NWARPS >= 1 && NWARPS <= 32, "block_sum: 1..32 warps");
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
    v = warp_sum(v);
    if (lane == 0) scratch[warp] = v;
    __syncthreads();
    float t = lane < NWARPS ? scratch[lane] : 0.0f;
    t = warp_sum(t);
    __syncthreads(); // scratch may be rewritten by the next call
    return t;
}

// ------------------------------------------------------------ launch result
// 0 when the launch was accepted, else a cudaError_t value.  Under cudasim
// the launch already ran; a failure is pending in the emulator (the caller's
// test takes it with cudasim::take_error()).
static inline int slim_launch_result() {
#if defined(__CUDACC__)
    return (int)cudaGetLastError();
#else
    return ::cudasim::error_pending() ? (int)cudaErrorLaunchFailure : 0;
#endif
}

#endif // SLIM_KERNELS_UTIL_CUH
