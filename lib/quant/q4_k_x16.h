/* Q4_K and Q5_K weights repacked for the CPU: 16 rows interleaved so that one
 * 512-bit lane holds one row (why: see legacy_x16.h; the same measurements).
 *
 * Group g (rows 16g .. 16g+15) is n / 256 super-blocks of
 *   part[4]            pair p (sub-blocks 2p, 2p + 1), in the order read:
 *     sc[2][16]        sub-blocks 2p, 2p + 1's 6-bit scales, per row
 *     m[16][2]         their 6-bit mins, per row (a pair of bytes that
 *                      widen to the int16 pair vpdpwssd takes)
 *     qh[8][2]         Q5_K only: chunk c's fifth bits, uint64 masks over
 *                      its 64 bytes (bit 4k + e: row k, byte e), of the low
 *                      nibbles' sub-block then the high ones'
 *     qs[8][16][4]     chunk c, row: the row's bytes qs[32p + 4c ..+3]
 *                      (low nibbles: sub-block 2p, high: 2p + 1)
 *   d[16], dmin[16]    the rows' fp16 super-block scales
 * 2368 bytes for Q4_K, 2880 for Q5_K: 64 more than 16 blocks of the file
 * (the scales unpacked).  Each pair's scales come before its quants so that
 * the kernel reads the block front to back (a jump back to a header costs the
 * hardware prefetcher: docs/PERFORMANCE.md); the kernel also prefetches
 * ~7 KiB ahead itself (slim_prefetch_ahead), one group at a time.
 *
 * Numerics: per row and super-block, with the activation's Q8_K block,
 *   isum = sum_j sc_j * (q . x over sub-block j)    exact int32 (q 0..15 or 0..31)
 *   msum = sum_j m_j * (sum of x over sub-block j)   exact int32
 *   y = fma(d * dx, (float)isum, y); y = fma(-(dmin * dx), (float)msum, y)
 * over the super-blocks in order, for decode and prefill alike.  The plain
 * kernels (q_k.c: Q4_K's AVX-512 VNNI tiles, Q5_K's scalar loop) compute the
 * same, so a matrix gives the same bits repacked or not
 * (tests/unit/test_cpu.c test_x16, tests/unit/test_repack_model.c). */
#ifndef SLIM_QUANT_Q4_K_X16_H
#define SLIM_QUANT_Q4_K_X16_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/error.h"

/* True when this build has the repacked kernel (AVX-512 VNNI). */
SLIM_HIDDEN bool slim_q4_kx16_available(void);

/* Bytes of the repacked copy of `rows` rows (rows % 16 == 0) of n elements. */
SLIM_HIDDEN size_t slim_q4_kx16_size(int64_t n, int64_t rows);
SLIM_HIDDEN size_t slim_q5_kx16_size(int64_t n, int64_t rows);

SLIM_HIDDEN void slim_q4_kx16_pack(const void *src, size_t src_stride, int64_t n, int64_t rows,
                                   void *dst);
SLIM_HIDDEN void slim_q5_kx16_pack(const void *src, size_t src_stride, int64_t n, int64_t rows,
                                   void *dst);

/* Each Q8_K activation block's 8 sub-block sums (bsums added in pairs):
 * xsum[(t * (n / 256) + b) * 8 + j]. */
SLIM_HIDDEN void slim_q4_kx16_xsum(int64_t n, const void *xq, size_t xs, int64_t n_tokens,
                                   int16_t *xsum);

/* y[t * ldy + r] for the rows of groups [g0, g1) and tokens [0, n_tokens),
 * x Q8_K rows xs bytes apart, xsum from slim_q4_kx16_xsum. */
SLIM_HIDDEN void slim_q4_kx16_gemm(int64_t n, const void *packed, int64_t g0, int64_t g1,
                                   const void *xq, size_t xs, const int16_t *xsum, int64_t n_tokens,
                                   float *y, int64_t ldy);
SLIM_HIDDEN void slim_q5_kx16_gemm(int64_t n, const void *packed, int64_t g0, int64_t g1,
                                   const void *xq, size_t xs, const int16_t *xsum, int64_t n_tokens,
                                   float *y, int64_t ldy);

/* The same, one element at a time (tests). */
SLIM_HIDDEN void slim_q4_kx16_gemm_ref(int64_t n, const void *packed, int64_t g0, int64_t g1,
                                       const void *xq, size_t xs, int64_t n_tokens, float *y,
                                       int64_t ldy);
SLIM_HIDDEN void slim_q5_kx16_gemm_ref(int64_t n, const void *packed, int64_t g0, int64_t g1,
                                       const void *xq, size_t xs, int64_t n_tokens, float *y,
                                       int64_t ldy);

#endif
