/* The dtype traits table: one row per element type, indexed by GGML type id. */
#include "quant/dtype.h"

static const slim_dtype_traits *const traits_table[SLIM_DTYPE_COUNT] = {
    [SLIM_DTYPE_F32] = &slim_traits_f32,   [SLIM_DTYPE_F16] = &slim_traits_f16,
    [SLIM_DTYPE_Q4_0] = &slim_traits_q4_0, [SLIM_DTYPE_Q4_1] = &slim_traits_q4_1,
    [SLIM_DTYPE_Q5_0] = &slim_traits_q5_0, [SLIM_DTYPE_Q5_1] = &slim_traits_q5_1,
    [SLIM_DTYPE_Q8_0] = &slim_traits_q8_0, [SLIM_DTYPE_Q8_1] = &slim_traits_q8_1,
    [SLIM_DTYPE_Q2_K] = &slim_traits_q2_k, [SLIM_DTYPE_Q3_K] = &slim_traits_q3_k,
    [SLIM_DTYPE_Q4_K] = &slim_traits_q4_k, [SLIM_DTYPE_Q5_K] = &slim_traits_q5_k,
    [SLIM_DTYPE_Q6_K] = &slim_traits_q6_k, [SLIM_DTYPE_Q8_K] = &slim_traits_q8_k,
    [SLIM_DTYPE_BF16] = &slim_traits_bf16,
};

const slim_dtype_traits *slim_dtype_traits_of(int type) {
    if (type < 0 || type >= SLIM_DTYPE_COUNT) return NULL;
    return traits_table[type];
}

size_t slim_dtype_row_size(slim_dtype type, int64_t n) {
    const slim_dtype_traits *t = slim_dtype_traits_of((int)type);
    if (!t || n < 0 || n % t->block_size != 0) return 0;
    return (size_t)(n / t->block_size) * (size_t)t->type_size;
}

const char *slim_dtype_name(int type) {
    const slim_dtype_traits *t = slim_dtype_traits_of(type);
    return t ? t->name : "?";
}
