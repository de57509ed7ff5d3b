/* kernels.h: the single seam between C host code and the CUDA kernels.
 *
 * Plain C: no CUDA header is needed to include it.  Every launcher is
 * extern "C", takes device pointers (host memory under cudasim), sizes as
 * int64_t, and the stream as a `void *` holding a cudaStream_t (NULL: the
 * default stream).  A launcher only enqueues work; it returns 0 when the
 * launch was accepted, else a cudaError_t value (cudaErrorInvalidValue = 1 for
 * arguments it rejects, or the launch error).  Zero-sized work (n == 0 or
 * n_rows == 0) launches nothing and returns 0.
 *
 * Semantics are those of the CPU backend (lib/backend/backend.h,
 * lib/backend/cpu/ops.c), which is the reference the tests compare against
 * (tests/cudasim/test_ops.cc).  Reductions run in a fixed order: the same
 * inputs give bitwise the same outputs, whatever the launch's neighbours. */
#ifndef SLIM_KERNELS_KERNELS_H
#define SLIM_KERNELS_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* norm.cu: y = x / rms(x) * w over n_rows rows of n (w NULL: no weight);
 * rms(x) = sqrt(mean(x^2) + eps).  y == x (in place) is allowed. */
int slim_cuda_rmsnorm(float *y, const float *x, const float *w, int64_t n, int64_t n_rows,
                      float eps, void *stream);

/* rope.cu: RoPE in place on n_rows rows of n_heads heads of head_dim
 * (row r is at position pos0 + r), as slim_rope_args: pair i < n_rot/2 turns by
 * (pos * freq_scale) * theta_base^(-2i/n_rot) / freq_factors[i] and the rotated
 * values are scaled by mscale.  neox != 0: pairs (i, i + n_rot/2); else
 * (2i, 2i+1).  freq_factors: device array of n_rot/2 floats, or NULL (all 1).
 * Needs n_rot even and 0 <= n_rot <= head_dim. */
int slim_cuda_rope(float *x, int64_t n_rows, int32_t n_heads, int32_t head_dim, int32_t n_rot,
                   int32_t pos0, float theta_base, float freq_scale, float mscale,
                   const float *freq_factors, int neox, void *stream);

/* act.cu: element-wise ops on n floats. */
enum { SLIM_CUDA_ACT_GELU_TANH = 0, SLIM_CUDA_ACT_SILU = 1 }; /* = slim_act values */
/* g = act(g) * u */
int slim_cuda_act_mul(float *g, const float *u, int64_t n, int act, void *stream);
/* y += x */
int slim_cuda_add(float *y, const float *x, int64_t n, void *stream);
/* y[r][i] += b[i], n_rows rows of n */
int slim_cuda_add_bias(float *y, const float *b, int64_t n, int64_t n_rows, void *stream);
/* y *= s */
int slim_cuda_scale(float *y, float s, int64_t n, void *stream);

/* matvec_<type>.cu (matvec.cuh): decode mat-vec y[r] = dot(W row r, x),
 * r < n_rows, for a block-quantized weight in the GGUF layout
 * (lib/quant/blocks.h), kept quantized.  Row r starts at
 * (const char *)w + r * w_row_stride (bytes; even, >= the row size
 * n / 32 * block bytes).  n must be a positive multiple of 32; x must be
 * 16-byte aligned (it is read with 16-byte loads); w 2-byte aligned. */
int slim_cuda_matvec_q8_0(float *y, const void *w, size_t w_row_stride, const float *x, int64_t n,
                          int64_t n_rows, void *stream);
int slim_cuda_matvec_q4_0(float *y, const void *w, size_t w_row_stride, const float *x, int64_t n,
                          int64_t n_rows, void *stream);
int slim_cuda_matvec_q5_0(float *y, const void *w, size_t w_row_stride, const float *x, int64_t n,
                          int64_t n_rows, void *stream);

#ifdef __cplusplus
}
#endif

#endif
