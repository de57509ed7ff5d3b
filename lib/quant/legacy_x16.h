/* Q4_0 and Q8_0 weights repacked for the CPU: 16 rows interleaved so that
 * one 512-bit lane holds one row (the layout llama.cpp calls q4_0_8x8,
 * widened to 16).
 *
 * Why: generation reads each weight once per token, and on the machines
 * measured (docs/PERFORMANCE.md) reading several rows of a plain Q4_0 matrix
 * at once runs at a third of the bandwidth of one sequential stream, while one
 * row at a time spends ~10 cycles per block pair unpacking and scaling.  In
 * this layout a group of 16 rows is one sequential stream, and a block of 16
 * rows costs 8 vpdpbusd, one scale conversion and one FMA.
 *
 * Group g (rows 16g .. 16g+15) is nb = n / 32 blocks of
 *   d[16]        the rows' fp16 scales of this block
 *   qs[4][16][4] chunk c, row k: the row's packed bytes 4c .. 4c+3 (low
 *                nibbles: elements 4c..4c+3, high: 16+4c..16+4c+3)
 * 288 bytes, the same as 16 Q4_0 blocks.  Q8_0's group is blocks of
 *   d[16]        the rows' fp16 scales of this block
 *   qs[8][16][4] chunk c, row k: the row's quants 4c .. 4c+3, plus 128
 *                (unsigned: vpdpbusd's unsigned side; the activations'
 *                block sums take the 128 back out)
 * 544 bytes, the same as 16 Q8_0 blocks.
 *
 * Numerics: per row, y = sum over blocks in order of
 *   fma(d_w * d_x, (float)isum, y)
 * with isum the exact integer dot of the weight quants (Q4_0: q - 8) and the
 * Q8_0 activation block, for prefill and decode alike (so they agree
 * bitwise).  The plain AVX-512 VNNI kernels (q_legacy.c) compute the same, so
 * a matrix gives the same bits repacked or not (SLIM_CPU_REPACK=0); the
 * lower levels, which do not repack, sum lane-wise. */
#ifndef SLIM_QUANT_LEGACY_X16_H
#define SLIM_QUANT_LEGACY_X16_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/error.h"

enum { SLIM_X16_ROWS = 16 };

/* True when this build has the repacked kernel (AVX-512 VNNI). */
SLIM_HIDDEN bool slim_q4_0x16_available(void);

/* Repack rows (src_stride bytes apart, rows % 16 == 0) into dst, which holds
 * as many bytes as the rows' blocks (Q8_0 alike). */
SLIM_HIDDEN void slim_q4_0x16_pack(const void *src, size_t src_stride, int64_t n, int64_t rows,
                                   void *dst);

/* The activations as the kernels read them, built once per matmul from n_tokens
 * Q8_0 rows (xs bytes apart) and shared by the threads: tokens in tiles of
 * SLIM_X16_TOKENS (the last one ragged: nc tokens), per tile and block
 *   qs[nc][32]   the tokens' quants
 *   off[nc]      int32, -8 * the sum of the quants (the Q4_0 offset's share)
 *   d[nc]        float, the block's scale
 * 40 bytes per token and block.  Why: the kernel reads one sequential stream
 * instead of one per token (and per token's sums), which the prefetcher
 * keeps up with while the weights stream past.  A gemm over n_tokens tokens
 * takes the prep of exactly those n_tokens rows. */
enum { SLIM_X16_TOKENS = 8 };
SLIM_HIDDEN size_t slim_q4_0x16_prep_size(int64_t n, int64_t n_tokens);
SLIM_HIDDEN void slim_q4_0x16_prep(int64_t n, const void *xq, size_t xs, int64_t n_tokens,
                                   void *xp);

/* y[t * ldy + r] for the rows of groups [g0, g1) and tokens [0, n_tokens):
 * packed as slim_q4_0x16_pack wrote it, xp from slim_q4_0x16_prep. */
SLIM_HIDDEN void slim_q4_0x16_gemm(int64_t n, const void *packed, int64_t g0, int64_t g1,
                                   const void *xp, int64_t n_tokens, float *y, int64_t ldy);

/* The same results computed one element at a time (tests). */
SLIM_HIDDEN void slim_q4_0x16_gemm_ref(int64_t n, const void *packed, int64_t g0, int64_t g1,
                                       const void *xq, size_t xs, int64_t n_tokens, float *y,
                                       int64_t ldy);

/* Q8_0: the same (the activations are slim_q4_0x16_prep's, shared). */
SLIM_HIDDEN void slim_q8_0x16_pack(const void *src, size_t src_stride, int64_t n, int64_t rows,
                                   void *dst);
SLIM_HIDDEN void slim_q8_0x16_gemm(int64_t n, const void *packed, int64_t g0, int64_t g1,
                                   const void *xp, int64_t n_tokens, float *y, int64_t ldy);
SLIM_HIDDEN void slim_q8_0x16_gemm_ref(int64_t n, const void *packed, int64_t g0, int64_t g1,
                                       const void *xq, size_t xs, int64_t n_tokens, float *y,
                                       int64_t ldy);

#endif
