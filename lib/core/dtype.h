/* The element types: one vocabulary for the whole library (the traits that
 * give each its block layout live in quant/dtype.h).  Values equal GGML's type
 * ids so GGUF tensor types map directly.  Plain C, also included by C++. */
#ifndef SLIM_CORE_DTYPE_H
#define SLIM_CORE_DTYPE_H

typedef enum slim_dtype {
    SLIM_DTYPE_F32 = 0,
    SLIM_DTYPE_F16 = 1,
    SLIM_DTYPE_Q4_0 = 2,
    SLIM_DTYPE_Q4_1 = 3,
    SLIM_DTYPE_Q5_0 = 6,
    SLIM_DTYPE_Q5_1 = 7,
    SLIM_DTYPE_Q8_0 = 8,
    SLIM_DTYPE_Q8_1 = 9,
    SLIM_DTYPE_Q2_K = 10,
    SLIM_DTYPE_Q3_K = 11,
    SLIM_DTYPE_Q4_K = 12,
    SLIM_DTYPE_Q5_K = 13,
    SLIM_DTYPE_Q6_K = 14,
    SLIM_DTYPE_Q8_K = 15,
    SLIM_DTYPE_BF16 = 30,
    SLIM_DTYPE_COUNT = 40 /* table size, larger than any id above */
} slim_dtype;

#endif
