// test_kernels.cu: kernels for the cudasim self-tests, including planted bugs
// the emulator must catch.  Compiled by the host compiler (emulation) and by
// nvcc (compile check), so it only uses what kernels/ may use.
#include "common.cuh"
#include "ptx.cuh"
#include "test_kernels.h"

#define FULL 0xffffffffu

// ------------------------------------------------------------ block reduction
template <int BS> __device__ int block_sum(int v) {
    __shared__ int s[BS]; // static shared inside a template __device__ helper
    POISON_SHARED(s);
    int t = threadIdx.x;
    s[t] = v;
    __syncthreads();
    for (int stride = BS / 2; stride > 0; stride >>= 1) {
        if (t < stride) s[t] += s[t + stride];
        __syncthreads();
    }
    int r = s[0];
    __syncthreads(); // s is reused by the next call
    return r;
}

template <int BS> __global__ void block_reduce_kernel(const int *in, int *out) {
    int v = in[blockIdx.x * BS + threadIdx.x];
    int r = block_sum<BS>(v);
    int r2 = block_sum<BS>(2 * v); // twice: the shared array is reused
    if (threadIdx.x == 0) out[blockIdx.x] = r + r2;
}

void tk_block_reduce(const int *in, int *out, int nblocks) {
    LAUNCH((block_reduce_kernel<256>), nblocks, 256, 0, 0, in, out);
}

__global__ void block_reduce_dyn_kernel(const int *in, int *out) {
    SHARED_DYN(int, s);
    int t = threadIdx.x, n = blockDim.x;
    s[t] = in[blockIdx.x * n + t];
    __syncthreads();
    // n need not be a power of two
    for (int active = n; active > 1;) {
        int half = (active + 1) / 2;
        if (t < active - half) s[t] += s[t + half];
        __syncthreads();
        active = half;
    }
    if (t == 0) out[blockIdx.x] = s[0];
}

void tk_block_reduce_dyn(const int *in, int *out, int nblocks, int threads) {
    LAUNCH(block_reduce_dyn_kernel, nblocks, threads, threads * sizeof(int), 0, in, out);
}

// ------------------------------------------------------------ shuffles
__global__ void shuffle_kernel(const int *in, int *out, int width, int delta) {
    int i = threadIdx.x, n = blockDim.x;
    int v = in[i];
    int lane = i % 32;
    out[0 * n + i] =
        __shfl_sync(FULL, v, (lane * 7 + delta) % 32, width); // srcLane may exceed width
    out[1 * n + i] = __shfl_up_sync(FULL, v, delta, width);
    out[2 * n + i] = __shfl_down_sync(FULL, v, delta, width);
    out[3 * n + i] = __shfl_xor_sync(FULL, v, delta, width);
}

void tk_shuffle(const int *in, int *out, int nthreads, int width, int delta) {
    LAUNCH(shuffle_kernel, 1, nthreads, 0, 0, in, out, width, delta);
}

__global__ void shuffle_f64_kernel(const double *in, double *out, int width, int delta) {
    int i = threadIdx.x;
    double v = in[i];
    out[0 * 32 + i] = __shfl_sync(FULL, v, (i * 7 + delta) % 32, width);
    out[1 * 32 + i] = __shfl_up_sync(FULL, v, delta, width);
    out[2 * 32 + i] = __shfl_down_sync(FULL, v, delta, width);
    out[3 * 32 + i] = __shfl_xor_sync(FULL, v, delta, width);
}

void tk_shuffle_f64(const double *in, double *out, int width, int delta) {
    LAUNCH(shuffle_f64_kernel, 1, 32, 0, 0, in, out, width, delta);
}

// ------------------------------------------------------------ votes & reductions
__global__ void vote_kernel(const int *in, unsigned *out) {
    int i = threadIdx.x, n = blockDim.x;
    int v = in[i];
    out[0 * n + i] = __ballot_sync(FULL, v > 0);
    out[1 * n + i] = __any_sync(FULL, v > 90);
    out[2 * n + i] = __all_sync(FULL, v > -90);
    out[3 * n + i] = (unsigned)__reduce_add_sync(FULL, v);
    out[4 * n + i] = (unsigned)__reduce_min_sync(FULL, v);
    out[5 * n + i] = (unsigned)__reduce_max_sync(FULL, v);
    out[6 * n + i] = __reduce_and_sync(FULL, (unsigned)v);
    out[7 * n + i] = __reduce_or_sync(FULL, (unsigned)v);
    out[8 * n + i] = __reduce_xor_sync(FULL, (unsigned)v);
    __syncwarp();
}

void tk_vote(const int *in, unsigned *out, int nthreads) {
    LAUNCH(vote_kernel, 1, nthreads, 0, 0, in, out);
}

// ------------------------------------------------------------ mma fragments
__device__ __forceinline__ uint32_t pack2(uint16_t lo, uint16_t hi) {
    return (uint32_t)lo | ((uint32_t)hi << 16);
}

// One warp: D(16x8) = A(16x16, row-major) * B(16x8, stored [k][n]) + C(16x8).
// Fragments written out from the PTX ISA table, independently of ptx_layout.
__global__ void mma_kernel(const uint16_t *A, const uint16_t *B, const float *C, float *D, int bf16,
                           int wrong) {
    int lane = threadIdx.x;
    int g = lane >> 2, t = lane & 3;
    uint32_t a[4], b[2];
    float c[4], d[4];
    a[0] = pack2(A[g * 16 + 2 * t], A[g * 16 + 2 * t + 1]);
    a[1] = pack2(A[(g + 8) * 16 + 2 * t], A[(g + 8) * 16 + 2 * t + 1]);
    a[2] = pack2(A[g * 16 + 2 * t + 8], A[g * 16 + 2 * t + 9]);
    a[3] = pack2(A[(g + 8) * 16 + 2 * t + 8], A[(g + 8) * 16 + 2 * t + 9]);
    if (wrong) { // planted bug (d): rows g+8 and columns +8 swapped
        uint32_t x = a[1];
        a[1] = a[2];
        a[2] = x;
    }
    b[0] = pack2(B[(2 * t) * 8 + g], B[(2 * t + 1) * 8 + g]);
    b[1] = pack2(B[(2 * t + 8) * 8 + g], B[(2 * t + 9) * 8 + g]);
    c[0] = C[g * 8 + 2 * t];
    c[1] = C[g * 8 + 2 * t + 1];
    c[2] = C[(g + 8) * 8 + 2 * t];
    c[3] = C[(g + 8) * 8 + 2 * t + 1];
    if (bf16)
        mma_m16n8k16_bf16(d, a, b, c);
    else
        mma_m16n8k16_f16(d, a, b, c);
    D[g * 8 + 2 * t] = d[0];
    D[g * 8 + 2 * t + 1] = d[1];
    D[(g + 8) * 8 + 2 * t] = d[2];
    D[(g + 8) * 8 + 2 * t + 1] = d[3];
}

void tk_mma(const uint16_t *A, const uint16_t *B, const float *C, float *D, int bf16,
            int wrong_layout) {
    LAUNCH(mma_kernel, 1, 32, 0, 0, A, B, C, D, bf16, wrong_layout);
}

// ------------------------------------------------------------ ldmatrix
__global__ void ldmatrix_kernel(const uint16_t *M, uint32_t *out, int misalign) {
    __shared__ __align__(16) uint16_t s[16 * 16 + 8];
    POISON_SHARED(s);
    int lane = threadIdx.x;
    for (int i = lane; i < 256; i += 32)
        s[i] = M[i];
    __syncthreads();
    // lane l addresses row l%16, column block l/16: matrices (rows 0-7, cols 0-7),
    // (rows 8-15, cols 0-7), (rows 0-7, cols 8-15), (rows 8-15, cols 8-15).
    const uint16_t *p = &s[(lane % 16) * 16 + (lane / 16) * 8 + (misalign ? 1 : 0)];
    uint32_t r[8];
    ldmatrix_x4(r, p);
    ldmatrix_x4_trans(r + 4, p);
    for (int i = 0; i < 8; i++)
        out[lane * 8 + i] = r[i];
}

void tk_ldmatrix(const uint16_t *M, uint32_t *out, int misalign) {
    LAUNCH(ldmatrix_kernel, 1, 32, 0, 0, M, out, misalign);
}

// ------------------------------------------------------------ tiled matmul (f32, shared tiles)
#define TILE 16
__global__ void matmul_kernel(const float *A, const float *B, float *C, int M, int N, int K,
                              int bug) {
    __shared__ float As[TILE][TILE];
    __shared__ float Bs[TILE][TILE];
    POISON_SHARED(As);
    POISON_SHARED(Bs);
    int tx = threadIdx.x, ty = threadIdx.y;
    int row = blockIdx.y * TILE + ty, col = blockIdx.x * TILE + tx;
    float acc = 0.0f;
    for (int k0 = 0; k0 < K; k0 += TILE) {
        bool ina = row < M && k0 + tx < K, inb = k0 + ty < K && col < N;
        if (bug != MM_NO_TAIL_ZERO) {
            As[ty][tx] = ina ? A[row * K + k0 + tx] : 0.0f;
            Bs[ty][tx] = inb ? B[(k0 + ty) * N + col] : 0.0f;
        } else { // planted bug (c): the tail is left as it was
            if (ina) As[ty][tx] = A[row * K + k0 + tx];
            if (inb) Bs[ty][tx] = B[(k0 + ty) * N + col];
        }
        if (bug != MM_NO_SYNC_AFTER_LOAD) __syncthreads(); // planted bug (a) skips it
        for (int k = 0; k < TILE; k++)
            acc += As[ty][k] * Bs[k][tx];
        if (bug != MM_NO_SYNC_BEFORE_REFILL) __syncthreads(); // planted bug (b) skips it
    }
    if (row < M && col < N) C[row * N + col] = acc;
}

void tk_matmul(const float *A, const float *B, float *C, int M, int N, int K, int bug) {
    dim3 grid((N + TILE - 1) / TILE, (M + TILE - 1) / TILE), block(TILE, TILE);
    LAUNCH(matmul_kernel, grid, block, 0, 0, A, B, C, M, N, K, bug);
}

// ------------------------------------------------------------ tensor-core matmul (ldmatrix + mma)
// Block = 2 warps computing a 16x16 tile of C = A(MxK, row-major f16) * B(KxN, row-major f16);
// warp w owns columns 8w..8w+7.  Tiles of A and B pass through shared memory.
__global__ void mma_matmul_kernel(const uint16_t *A, const uint16_t *B, float *C, int M, int N,
                                  int K) {
    __shared__ __align__(16) uint16_t As[16][16];
    __shared__ __align__(16) uint16_t Bs[16][16];
    POISON_SHARED(As);
    POISON_SHARED(Bs);
    int tid = threadIdx.x, lane = tid % 32, warp = tid / 32;
    int m0 = blockIdx.y * 16, n0 = blockIdx.x * 16;
    if (m0 + 16 > M || n0 + 16 > N || K % 16) __trap(); // shapes are multiples of 16
    float acc[4] = {0.0f, 0.0f, 0.0f, 0.0f};
    for (int k0 = 0; k0 < K; k0 += 16) {
        for (int i = tid; i < 256; i += 64) {
            As[i / 16][i % 16] = A[(m0 + i / 16) * K + k0 + i % 16];
            Bs[i / 16][i % 16] = B[(k0 + i / 16) * N + n0 + i % 16];
        }
        __syncthreads();
        uint32_t a[4], b[4];
        ldmatrix_x4(a, &As[lane % 16][(lane / 16) * 8]);
        ldmatrix_x4_trans(b,
                          &Bs[lane % 16][(lane / 16) * 8]); // b[0..1]: columns 0-7, b[2..3]: 8-15
        uint32_t bw[2] = {warp ? b[2] : b[0], warp ? b[3] : b[1]}; // no dynamic register indexing
        mma_m16n8k16_f16(acc, a, bw, acc);
        __syncthreads();
    }
    int g = lane >> 2, t = lane & 3;
    int col = n0 + 8 * warp + 2 * t;
    C[(m0 + g) * N + col] = acc[0];
    C[(m0 + g) * N + col + 1] = acc[1];
    C[(m0 + g + 8) * N + col] = acc[2];
    C[(m0 + g + 8) * N + col + 1] = acc[3];
}

void tk_mma_matmul(const uint16_t *A, const uint16_t *B, float *C, int M, int N, int K) {
    dim3 grid(N / 16, M / 16);
    LAUNCH(mma_matmul_kernel, grid, 64, 0, 0, A, B, C, M, N, K);
}

// ------------------------------------------------------------ atomics
__global__ void atomic_count_kernel(int *counter) {
    atomicAdd(counter, 1);
    __syncthreads();
    atomicAdd(counter + 1, (int)threadIdx.x);
}

void tk_atomic_count(int *counter, int nblocks) {
    LAUNCH(atomic_count_kernel, nblocks, 64, 0, 0, counter);
}

// ------------------------------------------------------------ planted bug (e) and friends
__global__ void divergent_kernel(int *out, int kind) {
    int t = threadIdx.x;
    int v = t;
    if (kind == 0) { // halves of the block wait at different barriers
        if (t < 16) {
            __syncthreads();
        } else {
            __syncthreads();
        }
    } else if (kind == 1) { // half the block returns before a barrier
        if (t >= 16) return;
        __syncthreads();
    } else if (kind == 2) { // a lane leaves before a warp shuffle
        if (t == 31) return;
        v = __shfl_xor_sync(FULL, v, 1);
    } else if (kind == 3) { // not a full mask
        v = __shfl_sync(0x0000ffffu, v, 0);
    } else { // lanes of one warp meet in different intrinsics
        if (t % 2)
            v = __shfl_sync(FULL, v, 0);
        else
            v = __shfl_xor_sync(FULL, v, 1);
    }
    out[t] = v;
}

void tk_divergent_barrier(int *out, int kind) { LAUNCH(divergent_kernel, 1, 64, 0, 0, out, kind); }
