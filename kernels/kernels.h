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

/* slim_dtype: every `int dtype` / `vec_dot_type` below is one of its values
 * (GGML's ids), the same enum the C code uses; name them, never number them. */
#include "../lib/core/dtype.h"

#ifdef __cplusplus
extern "C" {
#endif

/* norm.cu: y = x / rms(x) * w over n_rows rows of n (w NULL: no weight);
 * rms(x) = sqrt(mean(x^2) + eps).  y == x (in place) is allowed. */
int slim_cuda_rmsnorm(float *y, const float *x, const float *w, int64_t n, int64_t n_rows,
                      float eps, void *stream);

/* rope.cu: RoPE in place on n_rows rows of n_heads heads of head_dim
 * (row r is at position *pos0 + r; pos0 is a DEVICE pointer to one int32, read
 * by the kernel, so a captured graph replays at the current position), as
 * slim_rope_args: pair i < n_rot/2 turns by
 * (pos * freq_scale) * theta_base^(-2i/n_rot) / freq_factors[i] and the rotated
 * values are scaled by mscale.  neox != 0: pairs (i, i + n_rot/2); else
 * (2i, 2i+1).  freq_factors: device array of n_rot/2 floats, or NULL (all 1).
 * Needs n_rot even and 0 <= n_rot <= head_dim. */
int slim_cuda_rope(float *x, int64_t n_rows, int32_t n_heads, int32_t head_dim, int32_t n_rot,
                   const int32_t *pos0, float theta_base, float freq_scale, float mscale,
                   const float *freq_factors, int neox, void *stream);

/* The same with row r at position pos[r] (pos: a DEVICE array of n_rows int32). */
int slim_cuda_rope_rows(float *x, int64_t n_rows, int32_t n_heads, int32_t head_dim, int32_t n_rot,
                        const int32_t *pos, float theta_base, float freq_scale, float mscale,
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

/* act.cu: y = cap * tanh(y / cap) (Gemma's logit soft-capping), cap > 0 finite. */
int slim_cuda_softcap(float *y, float cap, int64_t n, void *stream);

/* quantize.cu: n_rows rows of n floats (x, rows contiguous, 16-byte aligned)
 * to the dot-product format vec_dot_type: a slim_dtype id, Q8_0 (8), Q8_1 (9)
 * or Q8_K (15); n a multiple of 32 (Q8_K: 256).  Row r goes to
 * (char *)dst + r * dst_row_stride (>= the row size when n_rows > 1; dst and
 * the stride 2-byte aligned, 4-byte for Q8_K).  Bitwise the traits'
 * from_float. */
int slim_cuda_quantize_rows(int vec_dot_type, void *dst, size_t dst_row_stride, const float *x,
                            int64_t n, int64_t n_rows, void *stream);

/* matvec_*.cu (matvec.cuh): decode mat-vec y[r] = dot(W row r, xq), r < n_rows.
 * dtype: a slim_dtype id: F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q4_K,
 * Q5_K, Q6_K (slim_cuda_matvec_supported).  Weights stay in their GGUF layout;
 * row r starts at (const char *)w + r * w_row_stride.  xq is ONE activation
 * row already in the weight type's vec_dot_type (slim_cuda_quantize_rows):
 * f32 for F32/F16/BF16, Q8_0 for Q4_0/Q5_0/Q8_0, Q8_1 for Q4_1/Q5_1, Q8_K for
 * the K-quants.  n: a multiple of 32 (K-quants 256, F32 4, F16/BF16 8).
 * Alignment (address and, with several rows, stride): F32/F16/BF16 16 bytes
 * (w and x); Q4_K/Q5_K weights 4; other weights 2; xq 2 for Q8_0, 4 for Q8_1
 * and Q8_K.  Quantized types: the CPU's exact integer block sums (__dp4a) and
 * its float expression per block; only the order of the additions of the
 * block values differs from the traits' vec_dot. */
int slim_cuda_matvec(int dtype, float *y, const void *w, size_t w_row_stride, const void *xq,
                     int64_t n, int64_t n_rows, void *stream);
/* The same for a small batch: y[t * n_rows + r] = dot(W row r, activation row
 * t at (const char *)xq + t * xq_row_stride), t < n_tokens <= 8 (the stride
 * aligned as xq).  The warp of a row walks it once per token with the
 * one-token code: each token's result is bitwise slim_cuda_matvec's, and the
 * weights come from DRAM once. */
int slim_cuda_matvec_tokens(int dtype, float *y, const void *w, size_t w_row_stride, const void *xq,
                            size_t xq_row_stride, int64_t n, int64_t n_rows, int64_t n_tokens,
                            void *stream);
int slim_cuda_matvec_supported(int dtype);

/* embed.cu: out[i][0..n) = to_float(row ids[i] of table) * scale (scale == 1:
 * no multiply), bitwise the CPU's get_row then scale.  ids: DEVICE array of
 * n_ids int32 (a negative id gives a row of NaN; ids past the table are the
 * caller's bug).  dtype: F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K,
 * Q3_K, Q4_K, Q5_K, Q6_K; n a multiple of the block size; table and
 * row_stride 2-byte aligned (F32: 4), row_stride >= the row size. */
int slim_cuda_get_rows(int dtype, float *out, const void *table, size_t row_stride, int64_t n,
                       const int32_t *ids, int64_t n_ids, float scale, void *stream);
/* 1 when slim_cuda_get_rows has a kernel for dtype, else 0. */
int slim_cuda_get_rows_supported(int dtype);

/* kv.cu: cache[(*pos0 + t) * width + i] = fp16(src[t * width + i]) (round to
 * nearest even), t < n_tokens; pos0 is a DEVICE pointer to one int32.
 * Bitwise slim_cpu_kv_store. */
int slim_cuda_kv_store(uint16_t *cache, const float *src, int64_t n_tokens, int64_t width,
                       const int32_t *pos0, void *stream);

/* The same with row t of src stored at cache row rows[t] (a DEVICE array);
 * a negative rows[t] (padding) stores nothing. */
int slim_cuda_kv_store_rows(uint16_t *cache, const float *src, int64_t n_tokens, int64_t width,
                            const int32_t *rows, void *stream);

/* sample.cu: reductions over n floats (n <= 2^31 - 1), NaN counted as -inf,
 * order = value descending then index ascending.  scratch: a device buffer of
 * slim_cuda_sample_scratch_bytes(n) bytes (4-byte aligned), shared by the
 * three.  Deterministic (fixed reduction shapes).
 *   argmax: *out = the first index of the maximum (the CPU sampler's greedy
 *           pick; all -inf/NaN: 0).
 *   topk:   out_v/out_i[0..k) = the k first elements in that order, k <= 64,
 *           k <= n.
 *   softmax_temp: y = exp((x - max) / temp) / sum (temp > 0, finite; y == x
 *           allowed). */
size_t slim_cuda_sample_scratch_bytes(int64_t n);
int slim_cuda_argmax(const float *x, int64_t n, int32_t *out, void *scratch, void *stream);
int slim_cuda_topk(const float *x, int64_t n, int k, float *out_v, int32_t *out_i, void *scratch,
                   void *stream);
int slim_cuda_softmax_temp(float *y, const float *x, int64_t n, float temp, void *scratch,
                           void *stream);

/* gemm_f.cu, gemm_q.cu, gemm_k.cu (gemm.cuh): prefill matmul
 * y[t * n_rows + r] = dot(W row r, activation row t), r < n_rows, t < n_tokens.
 * dtype: a slim_dtype id (lib/core/dtype.h): F32, F16, BF16, Q4_0, Q4_1,
 * Q5_0, Q5_1, Q8_0, Q4_K, Q5_K, Q6_K.  W row r starts at
 * (const char *)w + r * w_row_stride; activation row t at
 * (const char *)xq + t * xq_row_stride, already in the weight type's
 * vec_dot_type: f32 for F32/F16/BF16, Q8_0 blocks for Q4_0/Q5_0/Q8_0, Q8_1
 * for Q4_1/Q5_1, Q8_K for the K-quants.  n > 0, a multiple of the block size
 * (32; 256 for K-quants; any n for the float types).  Alignment: w and
 * w_row_stride 2-byte (F32: 4); xq and xq_row_stride 2-byte for Q8_0/Q8_1,
 * 4-byte for Q8_K and f32; strides >= the row sizes when there are several
 * rows / tokens.  n_rows <= 65535 * 64.
 * Quantized weights: bitwise what the CPU's scalar reference dot product
 * returns for each (row, token) (slim_vec_dot_*_ref; the traits' vec_dot
 * where it is scalar): exact integer block sums on tensor cores, then the
 * CPU's float scaling in block order.  Float weights: an f32 FMA kernel
 * (the exact product up to f32 summation-order rounding). */
int slim_cuda_gemm(int dtype, float *y, const void *w, size_t w_row_stride, const void *xq,
                   size_t xq_row_stride, int64_t n, int64_t n_rows, int64_t n_tokens, void *stream);
/* 1 when slim_cuda_gemm has a kernel for dtype, else 0. */
int slim_cuda_gemm_supported(int dtype);

/* gemm_cublas.cu: the same product through cuBLAS (reference and fallback).
 * x: f32 activations (NOT quantized), rows n floats apart (16-byte aligned
 * not required; 4-byte).  F16 weights are used in place (w_row_stride a
 * multiple of 2 bytes); F32 weights go to cublasGemmEx in f32 (compute 32F);
 * every other dtype of slim_cuda_gemm is first dequantized (as the traits'
 * to_float, then rounded to f16) into w16_scratch (n_rows * n halves,
 * 16-byte aligned).  x is rounded to f16 into x16_scratch (n_tokens * n
 * halves; unused for F32).  Then one cublasGemmEx (f16 x f16 -> f32, compute
 * 32F) on the handle's math mode, on `stream` (set on the handle).
 * Returns 0, cudaErrorInvalidValue for rejected arguments, a launch error,
 * or 1000 + the cublasStatus_t of a failed cuBLAS call.  Results differ from
 * the CPU by the f16 rounding of x (and of the weights for non-F16 types):
 * |y - cpu| <~ 2^-10 * sum_i |w_i x_i|. */
int slim_cuda_gemm_cublas(void *cublas_handle, int dtype, float *y, const void *w,
                          size_t w_row_stride, const float *x, int64_t n, int64_t n_rows,
                          int64_t n_tokens, void *w16_scratch, void *x16_scratch, void *stream);

/* Which path to take for a prefill matmul: 1 = slim_cuda_gemm_cublas, 0 =
 * slim_cuda_gemm.  cuBLAS only for F16/BF16 weights with n_tokens >= 32: the
 * fused kernel has no tensor-core path for float weights, and from ~32
 * tokens on the product is compute-bound.  Quantized weights always take
 * slim_cuda_gemm: it reads the quantized bytes once per 32 tokens (0.56-1.06
 * bytes per weight, against ~6 for dequantize-to-f16 + cuBLAS) and matches the
 * CPU's integer numerics, which the CPU-vs-CUDA top-1 agreement relies on.
 * F32 weights (tiny test models) stay on the f32 kernel. */
int slim_cuda_gemm_prefer_cublas(int dtype, int64_t n, int64_t n_rows, int64_t n_tokens);

/* attention_prefill.cu, attention_decode.cu (attention.cuh): causal attention
 * of n_tokens queries at positions *pos0 + t over the fp16 KV cache, as
 * slim_cpu_attention (slim_attn_args): q f32 [n_tokens][n_head * head_dim],
 * already scaled; k_cache / v_cache fp16 bits [n_ctx][n_head_kv * head_dim],
 * holding rows 0 .. *pos0 + n_tokens - 1; out f32 like q.  GQA: head h reads
 * kv head h / (n_head / n_head_kv).  window > 0: the query at p sees keys
 * p - window + 1 .. p.  softcap > 0: s = softcap * tanh(s / softcap).
 * pos0 is a DEVICE pointer to one int32, read by the kernels (a captured
 * decode graph replays at every position); the grid depends only on n_tokens,
 * the heads and n_ctx.  *pos0 outside 0 .. n_ctx - n_tokens traps.
 * n_tokens <= 4: split-KV decode in f32 (scratch: at least
 * slim_cuda_attention_scratch_bytes(n_tokens, n_head, head_dim, n_ctx) bytes,
 * 16-byte aligned; asked with a larger n_tokens it gives enough for any call
 * of up to that many tokens); more: flash attention on tensor cores (q and P rounded to
 * f16; no scratch, may be NULL).  Needs head_dim a multiple of 8 in 8..256,
 * n_head a multiple of n_head_kv, n_ctx >= n_tokens, out / q / caches
 * 16-byte aligned.  Deterministic. */
size_t slim_cuda_attention_scratch_bytes(int32_t n_tokens, int32_t n_head, int32_t head_dim,
                                         int32_t n_ctx);
int slim_cuda_attention(float *out, const float *q, const uint16_t *k_cache,
                        const uint16_t *v_cache, int32_t n_tokens, const int32_t *pos0,
                        int32_t n_head, int32_t n_head_kv, int32_t head_dim, int32_t window,
                        float softcap, int32_t n_ctx, void *scratch, void *stream);

/* attention_paged.cu: the same attention for a batched step of many
 * sequences over a paged fp16 cache: query t sits at position pos[t] of
 * sequence seq[t], whose block table is tables[table_off[seq[t]] ..]; key j
 * of that sequence is cache row tables[table_off[s] + j / block_size] *
 * block_size + j % block_size.  A negative pos[t] marks padding: that row's
 * output is zero.  One block per (token, kv head), the group's query heads
 * one warp each, keys in chunks of slim_cuda_attention_paged_chunk(n_ctx)
 * (from key 0, positions < n_ctx) read in tiles of 32, online softmax in f32,
 * the chunks' partials merged in chunk order.  With scratch (at least
 * slim_cuda_attention_paged_scratch_bytes(n_tokens, ...) bytes, 4-byte
 * aligned) one block per chunk and a combine kernel; scratch NULL: each block
 * walks its chunks.  Both give bitwise the same result, which depends only on
 * the query and its own sequence's keys: batch invariant.  pos, seq, tables
 * and table_off are DEVICE arrays.  Needs head_dim a multiple of 8 in
 * 8..256, n_head a multiple of n_head_kv, block_size >= 1, caches 16-byte
 * aligned. */
int32_t slim_cuda_attention_paged_chunk(int32_t n_ctx);
size_t slim_cuda_attention_paged_scratch_bytes(int32_t n_tokens, int32_t n_head, int32_t head_dim,
                                               int32_t n_ctx);
int slim_cuda_attention_paged(float *out, const float *q, const uint16_t *k_cache,
                              const uint16_t *v_cache, int32_t n_tokens, const int32_t *pos,
                              const int32_t *seq, const int32_t *tables, const int32_t *table_off,
                              int32_t block_size, int32_t n_head, int32_t n_head_kv,
                              int32_t head_dim, int32_t window, float softcap, int32_t n_ctx,
                              void *scratch, void *stream);

/* rows.cu: dst[i][0..n) = src[idx[i]][0..n) (gather), and
 * dst[idx[i]][0..n) += src[i][0..n) (scatter-add, the CPU's add: bitwise), for
 * i < n_idx; idx is a DEVICE array; scatter targets must be distinct (the
 * LoRA rows of one adapter are). */
int slim_cuda_gather_rows(float *dst, const float *src, const int32_t *idx, int64_t n_idx,
                          int64_t n, void *stream);
int slim_cuda_scatter_add_rows(float *dst, const float *src, const int32_t *idx, int64_t n_idx,
                               int64_t n, void *stream);

#ifdef __cplusplus
}
#endif

#endif
