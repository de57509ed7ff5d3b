/* The CPU backend's ops (see backend/backend.h for their contracts). */
#ifndef SLIM_BACKEND_CPU_CPU_H
#define SLIM_BACKEND_CPU_CPU_H

#include "backend/backend.h"

SLIM_HIDDEN slim_status slim_cpu_matmul(const slim_exec *ex, int n_w, const slim_tensor *const *w,
                                        const float *x, int64_t n_tokens, float *const *y);
/* Bytes a repacked copy of matmul weight t needs, 0 when it stays as it is. */
SLIM_HIDDEN size_t slim_cpu_packed_size(const slim_tensor *t);
/* Repack t into dst (slim_cpu_packed_size bytes, 64-byte aligned); t->packed = dst. */
SLIM_HIDDEN void slim_cpu_pack(slim_tensor *t, void *dst);
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
