/* Q4_1 weights repacked for the CPU: 16 rows interleaved so that one 512-bit
 * lane holds one row (why: legacy_x16.h, the same measurements; SmolLM2's
 * decode spent ~70% of its time in the plain Q4_1 dot, docs/PERFORMANCE.md).
 *
 * Group g (rows 16g .. 16g+15) is nb = n / 32 blocks of
 *   d[16]        the rows' fp16 scales of this block
 *   m[16]        the rows' fp16 mins of this block
 *   qs[4][16][4] chunk c, row k: the row's packed bytes 4c .. 4c+3 (low
 *                nibbles: elements 4c..4c+3, high: 16+4c..16+4c+3)
 * 320 bytes, the same as 16 Q4_1 blocks.
 *
 * The activations are Q8_1 rows, prepared once per matmul in Q4_0's layout
 * (legacy_x16.h, 40 bytes per token and block) with the sum slot holding
 * the float of the Q8_1 block's s (d * sum(q), as fp16): qs[nc][32],
 * s[nc], d[nc] per tile of nc tokens and block.
 *
 * Numerics: per row, y = sum over blocks in order of
 *   y = fma(d_w * d_x, (float)isum, y); y = fma(m_w, s_x, y)
 * with isum the exact integer dot of the unsigned nibbles and the Q8_1
 * quants, for prefill and decode alike (so they agree bitwise).  The plain
 * AVX-512 VNNI kernel (q_legacy.c) computes the same, so a matrix gives the
 * same bits repacked or not (SLIM_CPU_REPACK=0); the lower levels, which do
 * not repack, sum lane-wise. */
#ifndef SLIM_QUANT_Q4_1_X16_H
#define SLIM_QUANT_Q4_1_X16_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/error.h"

/* True when this build has the repacked kernel (AVX-512 VNNI). */
SLIM_HIDDEN bool slim_q4_1x16_available(void);

/* Repack rows (src_stride bytes apart, rows % 16 == 0) into dst, which holds
 * as many bytes as the rows' blocks. */
SLIM_HIDDEN void slim_q4_1x16_pack(const void *src, size_t src_stride, int64_t n, int64_t rows,
                                   void *dst);

/* The activations as the kernel reads them, from n_tokens Q8_1 rows xs bytes
 * apart, in tiles of SLIM_X16_TOKENS tokens (the layout above).  A gemm over
 * n_tokens tokens takes the prep of exactly those n_tokens rows. */
SLIM_HIDDEN size_t slim_q4_1x16_prep_size(int64_t n, int64_t n_tokens);
SLIM_HIDDEN void slim_q4_1x16_prep(int64_t n, const void *xq, size_t xs, int64_t n_tokens,
                                   void *xp);

/* y[t * ldy + r] for the rows of groups [g0, g1) and tokens [0, n_tokens):
 * packed as slim_q4_1x16_pack wrote it, xp from slim_q4_1x16_prep. */
SLIM_HIDDEN void slim_q4_1x16_gemm(int64_t n, const void *packed, int64_t g0, int64_t g1,
                                   const void *xp, int64_t n_tokens, float *y, int64_t ldy);

/* The same results computed one element at a time from the Q8_1 rows (tests). */
SLIM_HIDDEN void slim_q4_1x16_gemm_ref(int64_t n, const void *packed, int64_t g0, int64_t g1,
                                       const void *xq, size_t xs, int64_t n_tokens, float *y,
                                       int64_t ldy);

#endif
