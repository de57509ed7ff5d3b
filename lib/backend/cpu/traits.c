/* This CPU level's traits table: the element types' kernels as compiled for
 * the level.  The level's own files (cpu.c, matmul.c) look types up here, not
 * through dispatch.c, which sits above every level and picks one. */
#include "backend/cpu/traits.h"

const slim_dtype_traits *const slim_cpu_traits[SLIM_DTYPE_COUNT] = {
    [SLIM_DTYPE_F32] = &slim_traits_f32,   [SLIM_DTYPE_F16] = &slim_traits_f16,
    [SLIM_DTYPE_Q4_0] = &slim_traits_q4_0, [SLIM_DTYPE_Q4_1] = &slim_traits_q4_1,
    [SLIM_DTYPE_Q5_0] = &slim_traits_q5_0, [SLIM_DTYPE_Q5_1] = &slim_traits_q5_1,
    [SLIM_DTYPE_Q8_0] = &slim_traits_q8_0, [SLIM_DTYPE_Q8_1] = &slim_traits_q8_1,
    [SLIM_DTYPE_Q2_K] = &slim_traits_q2_k, [SLIM_DTYPE_Q3_K] = &slim_traits_q3_k,
    [SLIM_DTYPE_Q4_K] = &slim_traits_q4_k, [SLIM_DTYPE_Q5_K] = &slim_traits_q5_k,
    [SLIM_DTYPE_Q6_K] = &slim_traits_q6_k, [SLIM_DTYPE_Q8_K] = &slim_traits_q8_k,
    [SLIM_DTYPE_BF16] = &slim_traits_bf16,
};

const slim_dtype_traits *slim_cpu_traits_of(int type) {
    return type >= 0 && type < SLIM_DTYPE_COUNT ? slim_cpu_traits[type] : NULL;
}
