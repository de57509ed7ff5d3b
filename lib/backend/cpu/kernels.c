/* This level's table of kernels (kernels.h); SLIM_CPU_LEVEL, set by the
 * Makefile for each level's compilation, names it. */
#include "backend/cpu/kernels.h"
#include "backend/cpu/traits.h"

#ifndef SLIM_CPU_LEVEL
#define SLIM_CPU_LEVEL single
#endif
#define KERNELS_NAME_(level) slim_cpu_kernels_##level
#define KERNELS_NAME(level) KERNELS_NAME_(level)
#define STR_(x) #x
#define STR(x) STR_(x)

SLIM_HIDDEN extern const slim_cpu_kernels KERNELS_NAME(SLIM_CPU_LEVEL);

const slim_cpu_kernels KERNELS_NAME(SLIM_CPU_LEVEL) = {
    .level = STR(SLIM_CPU_LEVEL),
    .traits = slim_cpu_traits,
    .backend = slim_backend_cpu,
    .packed_size = slim_cpu_packed_size,
    .pack = slim_cpu_pack,

    .matmul = slim_cpu_matmul,
    .attention = slim_cpu_attention,
    .act_mul = slim_cpu_act_mul,
    .quant_has_simd = slim_quant_has_simd,
    .vec_dot_ref =
        {
            [SLIM_DTYPE_Q4_0] = slim_vec_dot_q4_0_q8_0_ref,
            [SLIM_DTYPE_Q4_1] = slim_vec_dot_q4_1_q8_1_ref,
            [SLIM_DTYPE_Q5_0] = slim_vec_dot_q5_0_q8_0_ref,
            [SLIM_DTYPE_Q8_0] = slim_vec_dot_q8_0_q8_0_ref,
            [SLIM_DTYPE_Q4_K] = slim_vec_dot_q4_k_q8_k_ref,
            [SLIM_DTYPE_Q5_K] = slim_vec_dot_q5_k_q8_k_ref,
            [SLIM_DTYPE_Q6_K] = slim_vec_dot_q6_k_q8_k_ref,
        },
    .q4_0x16_available = slim_q4_0x16_available,
    .q4_0x16_pack = slim_q4_0x16_pack,
    .q4_0x16_prep_size = slim_q4_0x16_prep_size,
    .q4_0x16_prep = slim_q4_0x16_prep,
    .q4_0x16_gemm = slim_q4_0x16_gemm,
    .q4_0x16_gemm_ref = slim_q4_0x16_gemm_ref,
    .q4_1x16_available = slim_q4_1x16_available,
    .q4_1x16_pack = slim_q4_1x16_pack,
    .q4_1x16_prep_size = slim_q4_1x16_prep_size,
    .q4_1x16_prep = slim_q4_1x16_prep,
    .q4_1x16_gemm = slim_q4_1x16_gemm,
    .q4_1x16_gemm_ref = slim_q4_1x16_gemm_ref,
    .q5_x16_available = slim_q5_x16_available,
    .q5_0x16_pack = slim_q5_0x16_pack,
    .q5_0x16_gemm = slim_q5_0x16_gemm,
    .q5_0x16_gemm_ref = slim_q5_0x16_gemm_ref,
    .q5_1x16_pack = slim_q5_1x16_pack,
    .q5_1x16_gemm = slim_q5_1x16_gemm,
    .q5_1x16_gemm_ref = slim_q5_1x16_gemm_ref,
    .q8_0x16_pack = slim_q8_0x16_pack,
    .q8_0x16_gemm = slim_q8_0x16_gemm,
    .q8_0x16_gemm_ref = slim_q8_0x16_gemm_ref,
    .q23_kx16_available = slim_q23_kx16_available,
    .q3_kx16_size = slim_q3_kx16_size,
    .q2_kx16_pack = slim_q2_kx16_pack,
    .q2_kx16_gemm = slim_q2_kx16_gemm,
    .q2_kx16_gemm_ref = slim_q2_kx16_gemm_ref,
    .q3_kx16_pack = slim_q3_kx16_pack,
    .q3_kx16_gemm = slim_q3_kx16_gemm,
    .q3_kx16_gemm_ref = slim_q3_kx16_gemm_ref,
    .q4_kx16_available = slim_q4_kx16_available,
    .q4_kx16_size = slim_q4_kx16_size,
    .q4_kx16_pack = slim_q4_kx16_pack,
    .q4_kx16_xsum = slim_q4_kx16_xsum,
    .q4_kx16_gemm = slim_q4_kx16_gemm,
    .q4_kx16_gemm_ref = slim_q4_kx16_gemm_ref,
    .q5_kx16_size = slim_q5_kx16_size,
    .q5_kx16_pack = slim_q5_kx16_pack,
    .q5_kx16_gemm = slim_q5_kx16_gemm,
    .q5_kx16_gemm_ref = slim_q5_kx16_gemm_ref,
    .q6_kx16_available = slim_q6_kx16_available,
    .q6_kx16_pack = slim_q6_kx16_pack,
    .q6_kx16_gemm = slim_q6_kx16_gemm,
    .q6_kx16_gemm_ref = slim_q6_kx16_gemm_ref,
    .half_x64_available = slim_half_x64_available,
    .half_x64_pack = slim_half_x64_pack,
    .half_x64_gemm = slim_half_x64_gemm,
    .half_x64_gemm_ref = slim_half_x64_gemm_ref,
};
