/* Q2_K and Q3_K weights repacked for the CPU: 16 rows interleaved so that one
 * 512-bit lane holds one row (why: see legacy_x16.h; the same measurements).
 *
 * Element 128h + 32s + l (h < 2, s < 4, l < 32) of a super-block is bits
 * 2s..2s+1 of qs[32h + l] (Q3_K: and bit 4h + s of hmask[l]); chunk c holds
 * l = 4c .. 4c + 3, and chunk group cg, chunks 4cg .. 4cg + 3, so element
 * 128h + 32s + l of group cg lies in sub-block 8h + 2s + cg, of pair 4h + s.
 *
 * Group g (rows 16g .. 16g+15) is n / 256 super-blocks of
 *   sc[8][16][2]       pair i (sub-blocks 2i, 2i + 1), per row: Q3_K's signed
 *                      6-bit scales as int8, Q2_K's bytes as the file has them
 *                      (scale in the low nibble, min in the high); a pair
 *                      widens to the int16 pair vpdpwssd takes
 *   part[2]            chunk group cg, in the order read:
 *     hm[4][16][4]     Q3_K only: chunk, row: hmask[4c ..+3]
 *     qs[2][4][16][4]  half h, chunk, row: qs[32h + 4c ..+3]
 *   d[16]              the rows' fp16 scales
 *   dmin[16]           Q2_K only: the rows' fp16 min scales
 * 1344 bytes for Q2_K (16 blocks of the file, reordered), 1824 for Q3_K (64
 * more: the scales unpacked).
 *
 * Numerics: per row and super-block, with the activation's Q8_K block,
 *   Q3_K: isum = sum_j sc_j * ((q - 4) . x over sub-block j)      exact int32
 *         y = fma(d * dx, (float)isum, y)
 *   Q2_K: isum = sum_j sc_j * (q . x over sub-block j)            exact int32
 *         msum = sum_j m_j * (sum of x over sub-block j)          exact int32
 *         y = fma(d * dx, (float)isum, y); y = fma(-(dmin * dx), (float)msum, y)
 * over the super-blocks in order, for decode and prefill alike.  The plain
 * dots (q_k.c) compute the same, so a matrix gives the same bits repacked or
 * not (tests/unit/test_cpu.c test_x16, tests/unit/test_repack_model.c). */
#ifndef SLIM_QUANT_Q23_K_X16_H
#define SLIM_QUANT_Q23_K_X16_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/error.h"

/* True when this build has the repacked kernels (AVX-512 VNNI). */
SLIM_HIDDEN bool slim_q23_kx16_available(void);

/* Bytes of the repacked Q3_K copy of `rows` rows (rows % 16 == 0) of n
 * elements (Q2_K's is the rows' own size). */
SLIM_HIDDEN size_t slim_q3_kx16_size(int64_t n, int64_t rows);

/* Repack rows (src_stride bytes apart, rows % 16 == 0) of n elements into dst. */
SLIM_HIDDEN void slim_q2_kx16_pack(const void *src, size_t src_stride, int64_t n, int64_t rows,
                                   void *dst);
SLIM_HIDDEN void slim_q3_kx16_pack(const void *src, size_t src_stride, int64_t n, int64_t rows,
                                   void *dst);

/* y[t * ldy + r] for the rows of groups [g0, g1) and tokens [0, n_tokens),
 * x Q8_K rows xs bytes apart (their bsums carry the mins and Q3_K's -4). */
SLIM_HIDDEN void slim_q2_kx16_gemm(int64_t n, const void *packed, int64_t g0, int64_t g1,
                                   const void *xq, size_t xs, int64_t n_tokens, float *y,
                                   int64_t ldy);
SLIM_HIDDEN void slim_q3_kx16_gemm(int64_t n, const void *packed, int64_t g0, int64_t g1,
                                   const void *xq, size_t xs, int64_t n_tokens, float *y,
                                   int64_t ldy);

/* The same, one element at a time (tests). */
SLIM_HIDDEN void slim_q2_kx16_gemm_ref(int64_t n, const void *packed, int64_t g0, int64_t g1,
                                       const void *xq, size_t xs, int64_t n_tokens, float *y,
                                       int64_t ldy);
SLIM_HIDDEN void slim_q3_kx16_gemm_ref(int64_t n, const void *packed, int64_t g0, int64_t g1,
                                       const void *xq, size_t xs, int64_t n_tokens, float *y,
                                       int64_t ldy);

#endif
