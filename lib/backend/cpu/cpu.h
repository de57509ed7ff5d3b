/* The CPU backend's ops (see backend/backend.h for their contracts). */
#ifndef SLIM_BACKEND_CPU_CPU_H
#define SLIM_BACKEND_CPU_CPU_H

#include "backend/backend.h"

SLIM_HIDDEN slim_status slim_cpu_matmul(const slim_exec *ex, int n_w, const slim_tensor *const *w,
                                        const float *x, int64_t n_tokens, float *const *y);
/* A repacked matmul layout of one weight type (pack.c): groups of `rows` rows,
 * used when available() says this CPU has its kernel. */
typedef struct slim_cpu_packed_format {
    int32_t rows;
    bool (*available)(void);
    size_t (*size)(int64_t n, int64_t rows); /* NULL: the file's bytes, reordered */
    void (*pack)(const void *src, size_t src_stride, int64_t n, int64_t rows, void *dst);
    /* The activations as the gemm reads them (Q4_0/Q8_0: a copy laid out for the kernel;
     * Q4_K: int16 sums per 32 elements), made once per matmul and shared by the weights
     * that follow on the same activations; prep NULL: the gemm reads xq alone. */
    size_t (*prep_size)(int64_t n, int64_t n_tokens);
    void (*prep)(int64_t n, const void *xq, size_t xs, int64_t n_tokens, void *dst);
    int32_t prep_tile; /* tokens per independently prepared tile, for threads (0: one piece) */
    /* y[t * ldy + r] for the rows of groups [g0, g1), tokens [0, n_tokens);
     * xq rows xs bytes apart in the type's vec_dot_type, prep from prep (or NULL);
     * work: NULL or work_bytes (64-byte aligned) of the calling part's own */
    void (*gemm)(int64_t n, const void *packed, int64_t g0, int64_t g1, const void *xq, size_t xs,
                 const void *prep, int64_t n_tokens, float *y, int64_t ldy, void *work);
    size_t work_bytes; /* 0: the gemm takes no work area */
} slim_cpu_packed_format;
/* The repacked layout of a weight type, or NULL (none). */
SLIM_HIDDEN const slim_cpu_packed_format *slim_cpu_packed_format_of(int type);
/* Bytes a repacked copy of matmul weight t needs, 0 when it stays as it is. */
SLIM_HIDDEN size_t slim_cpu_packed_size(const slim_tensor *t);
/* Repack t into dst (slim_cpu_packed_size bytes, 64-byte aligned); t->packed = dst. */
SLIM_HIDDEN void slim_cpu_pack(slim_tensor *t, void *dst);
/* The prepare_weights op: every weight with a repacked layout repacked into
 * arena memory, its file pages dropped (backend.h). */
SLIM_HIDDEN slim_status slim_cpu_prepare_weights(slim_tensor *const *w, size_t n_w,
                                                 const slim_weight_arena *arena);
SLIM_HIDDEN void slim_cpu_get_row(const slim_tensor *table, int64_t row, float *out);
SLIM_HIDDEN void slim_cpu_rmsnorm(float *y, const float *x, const float *w, int64_t n,
                                  int64_t n_rows, float eps);
/* Row t at position pos[t]. */
SLIM_HIDDEN void slim_cpu_rope(float *x, int64_t n_rows, const int32_t *pos,
                               const slim_rope_args *r);
SLIM_HIDDEN void slim_cpu_act_mul(float *g, const float *u, int64_t n, slim_act act);
SLIM_HIDDEN void slim_cpu_add(float *y, const float *x, int64_t n);
SLIM_HIDDEN void slim_cpu_add_bias(float *y, const float *b, int64_t n, int64_t n_rows);
SLIM_HIDDEN void slim_cpu_scale(float *y, float s, int64_t n);
SLIM_HIDDEN void slim_cpu_softcap(float *y, float cap, int64_t n);
/* Row t of src to cache row rows[t]. */
SLIM_HIDDEN void slim_cpu_kv_store(void *cache, bool f32, const float *src, int64_t n_tokens,
                                   int64_t width, const int32_t *rows);
SLIM_HIDDEN void slim_cpu_attention(const slim_exec *ex, const slim_attn_args *a);

#endif
