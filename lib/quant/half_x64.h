/* F16 and BF16 weights repacked for the CPU: 64 rows interleaved by
 * element, so one pass over the activations feeds four 512-bit accumulators
 * (16 rows each) from one sequential stream.
 *
 * Why: a plain F16 row dot keeps one FMA chain (latency-bound at ~4 cycles
 * per 16 elements) and reading several rows at once runs at a fraction of
 * one stream's bandwidth on the machines measured (docs/PERFORMANCE.md).
 *
 * Group g (rows 64g .. 64g+63) is n steps of 64 halves: element i of each
 * row, row order.  Numerics: every (row, token) is the plain sequential
 *   y = fma(w[i], x[i], y), i = 0 .. n-1
 * in float, for decode and prefill alike (bitwise the same), which is the
 * scalar reference slim_half_x64_gemm_ref computes. */
#ifndef SLIM_QUANT_HALF_X64_H
#define SLIM_QUANT_HALF_X64_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/error.h"

enum { SLIM_X64_ROWS = 64 };
/* Prefill runs the elements in passes of SLIM_X64_KC, so that a group's slice
 * (64 rows x 2048) stays in L2 across the token tiles.  Given a work area of
 * SLIM_X64_WORK_BYTES, the first token tile also stores the slice widened to
 * float, and the later tiles read that instead of widening it again (F16 and
 * BF16 widen exactly, so the fmas are the same). */
enum { SLIM_X64_KC = 2048 };
#define SLIM_X64_WORK_BYTES ((size_t)SLIM_X64_KC * SLIM_X64_ROWS * sizeof(float))

/* True when this build has the repacked kernel (AVX-512). */
SLIM_HIDDEN bool slim_half_x64_available(void);

/* Repack rows (src_stride bytes apart, rows % 64 == 0) of n halves into dst
 * (n * rows * 2 bytes). */
SLIM_HIDDEN void slim_half_x64_pack(const void *src, size_t src_stride, int64_t n, int64_t rows,
                                    void *dst);

/* y[t * ldy + r] for the rows of groups [g0, g1) and tokens [0, n_tokens):
 * x F32 rows xs floats apart; bf16: the halves are BF16, else F16.  work:
 * NULL, or SLIM_X64_WORK_BYTES 64-byte aligned (the results do not depend on it). */
SLIM_HIDDEN void slim_half_x64_gemm(bool bf16, int64_t n, const void *packed, int64_t g0,
                                    int64_t g1, const float *x, size_t xs, int64_t n_tokens,
                                    float *y, int64_t ldy, float *work);

/* The same, one element at a time in plain C (tests). */
SLIM_HIDDEN void slim_half_x64_gemm_ref(bool bf16, int64_t n, const void *packed, int64_t g0,
                                        int64_t g1, const float *x, size_t xs, int64_t n_tokens,
                                        float *y, int64_t ldy);

#endif
