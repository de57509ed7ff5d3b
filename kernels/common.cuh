// common.cuh: what every kernel file includes first.
//
// Under nvcc: the real CUDA toolchain; LAUNCH is <<<>>>, SHARED_DYN is an
// extern __shared__ byte array, POISON_SHARED is a no-op.
// Under the host compiler (no __CUDACC__): tests/cudasim/cudasim.h, the CPU
// emulation of the CUDA execution model (build with -Itests/cudasim).
//
// LAUNCH(kernel, grid, block, smem, stream, args...) launches a kernel; a
// template kernel whose arguments contain commas is passed in parentheses:
// LAUNCH((k<64, 2>), grid, block, 0, stream, x, y).
#ifndef SLIM_KERNELS_COMMON_CUH
#define SLIM_KERNELS_COMMON_CUH

#if defined(__CUDACC__)

#include <cuda_runtime.h>
#include <cuda_fp16.h>
#include <cuda_bf16.h>
#include <stdint.h>

#define LAUNCH(kernel, grid, block, smem, stream, ...)                                             \
    kernel<<<(grid), (block), (smem), (stream)>>>(__VA_ARGS__)
#define SHARED_DYN(T, name)                                                                        \
    extern __shared__ __align__(128) unsigned char slim_dyn_smem_[];                               \
    T *name = reinterpret_cast<T *>(slim_dyn_smem_)
#define POISON_SHARED(var) ((void)0)

#else

#include "cudasim.h"

#endif

#endif // SLIM_KERNELS_COMMON_CUH
