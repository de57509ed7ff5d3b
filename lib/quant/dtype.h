/* The traits table that drives everything format-specific, per element type.
 * Values equal GGML's type ids so GGUF tensor types map directly. */
#ifndef SLIM_QUANT_DTYPE_H
#define SLIM_QUANT_DTYPE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/dtype.h"
#include "core/error.h"

/* Dot product of one weight row (n elements of the weight type) with one
 * activation row already converted to the traits' vec_dot_type. */
typedef float (*slim_vec_dot_fn)(int64_t n, const void *w, const void *x);

/* Several tokens at once: y[t * ldy + r] for rows r in [r0, r1) of w (rows
 * w_stride bytes apart, w pointing at row 0) and tokens t in [0, n_tokens) of x
 * (rows x_stride bytes apart, in vec_dot_type).  Every output is bitwise the
 * float vec_dot(n, row r, token t) returns: same integer block sums, same
 * per-block scaling, same lane-wise accumulation and final horizontal sum.
 * work: optional scratch (64-byte aligned, work_size bytes; NULL/0 for none)
 * where a kernel may keep unpacked weight rows; the results do not depend on it. */
typedef void (*slim_gemm_fn)(int64_t n, const void *w, size_t w_stride, int64_t r0, int64_t r1,
                             const void *x, size_t x_stride, int64_t n_tokens, float *y,
                             int64_t ldy, void *work, size_t work_size);

typedef struct slim_dtype_traits {
    const char *name;   /* "Q4_K" */
    int32_t block_size; /* elements per block (1 for plain floats) */
    int32_t type_size;  /* bytes per block */
    bool quantized;
    /* n elements (a multiple of block_size) to float. */
    void (*to_float)(const void *src, float *dst, int64_t n);
    /* Reference quantization of n floats (NULL where slim does not quantize to it). */
    void (*from_float)(const float *src, void *dst, int64_t n);
    slim_dtype vec_dot_type; /* what activations are converted to for vec_dot */
    slim_vec_dot_fn vec_dot; /* NULL for types that are never weights (Q8_K) */
    slim_gemm_fn gemm;       /* optional multi-token vec_dot (NULL: use vec_dot) */
} slim_dtype_traits;

/* Traits of a type at the active CPU level (backend/cpu/dispatch.c), or NULL
 * if the id is not a type slim knows. */
SLIM_HIDDEN const slim_dtype_traits *slim_dtype_traits_of(int type);

/* Bytes of a row of n elements; 0 if n is not a multiple of the block size
 * or the type is unknown.  Names and sizes are dtype.c's, the same at every level. */
SLIM_HIDDEN size_t slim_dtype_row_size(slim_dtype type, int64_t n);

SLIM_HIDDEN const char *slim_dtype_name(int type); /* "?" for unknown ids */

/* A type's block layout (elements and bytes per block) and its name; NULL,
 * the outputs untouched, for an id slim does not know.  For the file readers
 * and writers, which need the layout but none of a CPU level's kernels. */
SLIM_HIDDEN const char *slim_dtype_layout(int type, int32_t *block_size, int32_t *type_size);

/* ---- added by the quant module ------------------------------------------- */

/* The per-type traits, defined next to their code (float.c, q_legacy.c, q_k.c)
 * and gathered per CPU level in backend/cpu/traits.c; outside the kernels'
 * files, use slim_dtype_traits_of() (in a dispatch build these names are local
 * to each level's objects). */
SLIM_HIDDEN extern const slim_dtype_traits slim_traits_f32, slim_traits_f16, slim_traits_bf16;
SLIM_HIDDEN extern const slim_dtype_traits slim_traits_q4_0, slim_traits_q4_1, slim_traits_q5_0,
    slim_traits_q5_1, slim_traits_q8_0, slim_traits_q8_1;
SLIM_HIDDEN extern const slim_dtype_traits slim_traits_q2_k, slim_traits_q3_k, slim_traits_q4_k,
    slim_traits_q5_k, slim_traits_q6_k, slim_traits_q8_k;

/* Portable scalar versions of the dot products that also have a SIMD path
 * (the traits point at the SIMD one when the build has it; tests compare). */
SLIM_HIDDEN float slim_vec_dot_q8_0_q8_0_ref(int64_t n, const void *w, const void *x);
SLIM_HIDDEN float slim_vec_dot_q4_0_q8_0_ref(int64_t n, const void *w, const void *x);
SLIM_HIDDEN float slim_vec_dot_q4_1_q8_1_ref(int64_t n, const void *w, const void *x);
SLIM_HIDDEN float slim_vec_dot_q5_0_q8_0_ref(int64_t n, const void *w, const void *x);
SLIM_HIDDEN float slim_vec_dot_q4_k_q8_k_ref(int64_t n, const void *w, const void *x);
SLIM_HIDDEN float slim_vec_dot_q5_k_q8_k_ref(int64_t n, const void *w, const void *x);
SLIM_HIDDEN float slim_vec_dot_q6_k_q8_k_ref(int64_t n, const void *w, const void *x);

/* True when the traits' vec_dot for these types is a SIMD path (not the _ref). */
SLIM_HIDDEN bool slim_quant_has_simd(void);

/* ---- weight quantizers (quantize.c) -------------------------------------- */

/* Quantize n floats (a multiple of the type's block size) to `dst`. */
typedef void (*slim_quantize_fn)(const float *src, void *dst, int64_t n);
/* The quantizer that writes weights of `type` as llama.cpp does without an
 * importance matrix (F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0: GGML's
 * reference rounding; Q4_K, Q5_K, Q6_K: quantize_row_q*_K_ref), else NULL. */
SLIM_HIDDEN slim_quantize_fn slim_quantizer(slim_dtype type);
/* The float formats' writers (round to nearest even), also float.c's from_float. */
SLIM_HIDDEN void slim_f32_from_float(const float *src, void *dst, int64_t n);
SLIM_HIDDEN void slim_f16_from_float(const float *src, void *dst, int64_t n);
SLIM_HIDDEN void slim_bf16_from_float(const float *src, void *dst, int64_t n);

#endif
