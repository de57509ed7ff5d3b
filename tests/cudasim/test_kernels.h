// test_kernels.h: host-side launchers of the cudasim self-test kernels
// (test_kernels.cu, compiled by the host compiler under cudasim and by nvcc
// for the compile check).  Pointers are "device" pointers (host memory under
// cudasim).
#ifndef CUDASIM_TEST_KERNELS_H
#define CUDASIM_TEST_KERNELS_H

#include <stdint.h>

// Tiled matmul bug modes.
enum {
    MM_CORRECT = 0,
    MM_NO_SYNC_AFTER_LOAD = 1,    // planted bug (a)
    MM_NO_SYNC_BEFORE_REFILL = 2, // planted bug (b)
    MM_NO_TAIL_ZERO = 3,          // planted bug (c)
};

void tk_block_reduce(const int *in, int *out,
                     int nblocks); // 256 threads/block, static shared (template)
void tk_block_reduce_dyn(const int *in, int *out, int nblocks, int threads);  // dynamic shared
void tk_shuffle(const int *in, int *out, int nthreads, int width, int delta); // out: 4 x nthreads
void tk_shuffle_f64(const double *in, double *out, int width, int delta); // 32 threads, out: 4 x 32
void tk_vote(const int *in, unsigned *out, int nthreads);                 // out: 9 x nthreads
void tk_mma(const uint16_t *A, const uint16_t *B, const float *C, float *D, int bf16,
            int wrong_layout);
void tk_ldmatrix(const uint16_t *M, uint32_t *out, int misalign); // out: 32 lanes x 8
void tk_matmul(const float *A, const float *B, float *C, int M, int N, int K, int bug);
void tk_mma_matmul(const uint16_t *A, const uint16_t *B, float *C, int M, int N,
                   int K); // M%16, N%16, K%16 == 0
void tk_atomic_count(int *counter, int nblocks);
void tk_divergent_barrier(int *out, int kind); // kind 0..4: see test_kernels.cu

#endif
