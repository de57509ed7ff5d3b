/* Q5_0 and Q5_1 weights repacked for the CPU: 16 rows interleaved so that
 * one 512-bit lane holds one row (why: legacy_x16.h).
 *
 * Group g (rows 16g .. 16g+15) is nb = n / 32 blocks of
 *   d[16]        the rows' fp16 scales of this block
 *   m[16]        (Q5_1 only) the rows' fp16 mins
 *   qh[8]        chunk c's fifth bits as the byte mask of its 64 bytes: bit
 *                4k + i is element 4c + i's fifth bit of row k
 *   qs[4][16][4] chunk c, row k: the row's packed bytes 4c .. 4c+3 (low
 *                nibbles: elements 4c..4c+3, chunk c; high: 16+4c..16+4c+3,
 *                chunk c + 4)
 * 352 (Q5_1: 384) bytes, the same as 16 blocks of the format.
 *
 * Activations: Q5_0 takes Q4_0's prepared Q8_0 rows (slim_q4_0x16_prep,
 * whose -8 sum(x) doubles to Q5_0's -16 sum(x)), Q5_1 Q4_1's prepared Q8_1
 * rows (slim_q4_1x16_prep).
 *
 * Numerics: per row, over the blocks in order, with isum the exact integer
 * dot of the 5-bit quants (Q5_0: minus 16) and the activation block,
 *   Q5_0: y = fma(d_w * d_x, (float)isum, y)
 *   Q5_1: y = fma(d_w * d_x, (float)isum, y); y = fma(m_w, s_x, y)
 * for prefill and decode alike.  The plain AVX-512 VNNI kernels (q_legacy.c)
 * compute the same, so a matrix gives the same bits repacked or not. */
#ifndef SLIM_QUANT_Q5_X16_H
#define SLIM_QUANT_Q5_X16_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/error.h"

/* True when this build has the repacked kernels (AVX-512 VNNI). */
SLIM_HIDDEN bool slim_q5_x16_available(void);

/* Repack rows (src_stride bytes apart, rows % 16 == 0) into dst, which holds
 * as many bytes as the rows' blocks. */
SLIM_HIDDEN void slim_q5_0x16_pack(const void *src, size_t src_stride, int64_t n, int64_t rows,
                                   void *dst);
SLIM_HIDDEN void slim_q5_1x16_pack(const void *src, size_t src_stride, int64_t n, int64_t rows,
                                   void *dst);

/* y[t * ldy + r] for the rows of groups [g0, g1) and tokens [0, n_tokens),
 * xp prepared for exactly those tokens (above). */
SLIM_HIDDEN void slim_q5_0x16_gemm(int64_t n, const void *packed, int64_t g0, int64_t g1,
                                   const void *xp, int64_t n_tokens, float *y, int64_t ldy);
SLIM_HIDDEN void slim_q5_1x16_gemm(int64_t n, const void *packed, int64_t g0, int64_t g1,
                                   const void *xp, int64_t n_tokens, float *y, int64_t ldy);

/* The same, one element at a time from the Q8_0 (Q5_0) or Q8_1 (Q5_1) rows (tests). */
SLIM_HIDDEN void slim_q5_0x16_gemm_ref(int64_t n, const void *packed, int64_t g0, int64_t g1,
                                       const void *xq, size_t xs, int64_t n_tokens, float *y,
                                       int64_t ldy);
SLIM_HIDDEN void slim_q5_1x16_gemm_ref(int64_t n, const void *packed, int64_t g0, int64_t g1,
                                       const void *xq, size_t xs, int64_t n_tokens, float *y,
                                       int64_t ldy);

#endif
