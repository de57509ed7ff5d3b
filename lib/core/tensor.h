/* A tensor: dtype, element counts, byte strides and data.  Weights are 2-D
 * (ne[0] = row length, ne[1] = rows) views into the model file. */
#ifndef SLIM_CORE_TENSOR_H
#define SLIM_CORE_TENSOR_H

#include <stddef.h>
#include <stdint.h>

#include "core/dtype.h"

typedef struct slim_tensor {
    const char *name; /* NULL: absent optional tensor */
    slim_dtype type;
    int32_t n_dims;
    int64_t ne[4]; /* elements per dimension, ne[0] fastest */
    size_t nb[4];  /* bytes between consecutive elements (nb[0]) / rows (nb[1]) / ... */
    const void *data;
    /* CPU only: the rows repacked for the SIMD kernel (quant/legacy_x16.h), in
     * groups of 16 rows, or NULL.  data stays valid (row lookups use it). */
    const void *packed;
} slim_tensor;

static inline const void *slim_tensor_row(const slim_tensor *t, int64_t row) {
    return (const char *)t->data + (size_t)row * t->nb[1];
}

/* Rows [r0, r0 + n) of a 2-D weight as a weight of its own (fused QKV, gate+up). */
static inline slim_tensor slim_tensor_view_rows(const slim_tensor *t, int64_t r0, int64_t n) {
    slim_tensor v = *t;
    v.ne[1] = n;
    v.data = slim_tensor_row(t, r0);
    v.packed = NULL; /* repacked at load per view (backend/cpu/pack.c), not re-sliced */
    v.nb[2] = v.nb[3] = v.nb[1] * (size_t)n;
    return v;
}

#endif
