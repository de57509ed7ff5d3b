/* Q6_K weights repacked for the CPU: 16 rows interleaved so that one 512-bit
 * lane holds one row (why: see legacy_x16.h; the same measurements).
 *
 * Group g (rows 16g .. 16g+15) is n / 256 super-blocks of
 *   half[2]            half h of the block (elements 128h ..+127):
 *     sc[4][16][2]     sub-blocks 8h + 2i, 8h + 2i + 1's int8 scales, per
 *                      row (a pair that widens to the int16 pair vpdpwssd
 *                      takes)
 *     part[2][4]       quarter 2h + q, chunk c = 4q + i, each chunk:
 *       la[16][4]      row: ql[64h + 4c ..+3]
 *       lb[16][4]      row: ql[64h + 32 + 4c ..+3]
 *       qh[16][4]      row: qh[32h + 4c ..+3]
 *   d[16]              the rows' fp16 scales
 * 3360 bytes, the same as 16 Q6_K blocks.  The kernel reads it front to back:
 * stored as three streams 256 bytes apart (la, lb, qh) after one header,
 * decode read ~22 GB/s from DRAM on one core; read in order, ~29 on the
 * 2026-12 Zen 4 host, but 20 on the family 1Ah host of 2026-12-07, where the
 * kernel's own prefetch ~7 KiB ahead (slim_prefetch_ahead) gives ~40
 * (docs/PERFORMANCE.md).
 *
 * Numerics: per row and super-block, with the activation's Q8_K block,
 *   isum = sum_j sc_j * ((q - 32) . x over sub-block j)   exact int32
 *   y = fma(d * dx, (float)isum, y)
 * over the super-blocks in order, for decode and prefill alike.  The plain AVX-512 VNNI
 * kernel (q_k.c) computes the same, so a matrix gives the same bits repacked
 * or not (tests/unit/test_repack_model.c). */
#ifndef SLIM_QUANT_Q6_K_X16_H
#define SLIM_QUANT_Q6_K_X16_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/error.h"

/* True when this build has the repacked kernel (AVX-512 VNNI). */
SLIM_HIDDEN bool slim_q6_kx16_available(void);

/* Repack rows (src_stride bytes apart, rows % 16 == 0) of n elements into
 * dst (the same number of bytes as the rows). */
SLIM_HIDDEN void slim_q6_kx16_pack(const void *src, size_t src_stride, int64_t n, int64_t rows,
                                   void *dst);

/* y[t * ldy + r] for the rows of groups [g0, g1) and tokens [0, n_tokens),
 * x Q8_K rows xs bytes apart (their bsums carry the -32 offset's share). */
SLIM_HIDDEN void slim_q6_kx16_gemm(int64_t n, const void *packed, int64_t g0, int64_t g1,
                                   const void *xq, size_t xs, int64_t n_tokens, float *y,
                                   int64_t ldy);

/* The same, one element at a time (tests). */
SLIM_HIDDEN void slim_q6_kx16_gemm_ref(int64_t n, const void *packed, int64_t g0, int64_t g1,
                                       const void *xq, size_t xs, int64_t n_tokens, float *y,
                                       int64_t ldy);

#endif
