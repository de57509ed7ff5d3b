/* One level's CPU kernels as a table (docs/ARCHITECTURE.md, "CPU dispatch").
 * In the dispatch build (ARCH unset) the files of lib/quant and lib/backend/cpu
 * that hold kernels are compiled once per level (baseline, AVX2, AVX-512) and
 * each level's objects expose only its table, slim_cpu_kernels_<level>
 * (kernels.c); dispatch.c picks one for this CPU.  In a one-target build
 * (ARCH=native) there is one table, slim_cpu_kernels_single, and the
 * functions are also reachable by their names.  Code outside those files
 * (the model, the tests, tools/bench) reaches the kernels through the table
 * of slim_cpu_kernels_active(), or slim_dtype_traits_of and the backend ops. */
#ifndef SLIM_BACKEND_CPU_KERNELS_H
#define SLIM_BACKEND_CPU_KERNELS_H

#include "backend/cpu/cpu.h"
#include "quant/dtype.h"
#include "quant/half_x64.h"
#include "quant/legacy_x16.h"
#include "quant/q23_k_x16.h"
#include "quant/q4_1_x16.h"
#include "quant/q5_x16.h"
#include "quant/q4_k_x16.h"
#include "quant/q6_k_x16.h"

#define SLIM_KERNEL_FN(f) __typeof__(f) *

typedef struct slim_cpu_kernels {
    const char *level; /* "baseline", "avx2", "avx512"; "single" in a one-target build */
    const slim_dtype_traits *const *traits; /* [SLIM_DTYPE_COUNT], NULL for unknown ids */
    SLIM_KERNEL_FN(slim_backend_cpu) backend;
    SLIM_KERNEL_FN(slim_cpu_packed_size) packed_size;
    SLIM_KERNEL_FN(slim_cpu_pack) pack;

    /* The rest for the tests and tools/bench/repack.c. */
    SLIM_KERNEL_FN(slim_cpu_matmul) matmul;
    SLIM_KERNEL_FN(slim_cpu_attention) attention;
    SLIM_KERNEL_FN(slim_cpu_act_mul) act_mul;
    SLIM_KERNEL_FN(slim_quant_has_simd) quant_has_simd;
    /* the scalar references of the dot products that have a SIMD path, by weight type */
    slim_vec_dot_fn vec_dot_ref[SLIM_DTYPE_COUNT];
    SLIM_KERNEL_FN(slim_q4_0x16_available) q4_0x16_available;
    SLIM_KERNEL_FN(slim_q4_0x16_pack) q4_0x16_pack;
    SLIM_KERNEL_FN(slim_q4_0x16_prep_size) q4_0x16_prep_size;
    SLIM_KERNEL_FN(slim_q4_0x16_prep) q4_0x16_prep;
    SLIM_KERNEL_FN(slim_q4_0x16_gemm) q4_0x16_gemm;
    SLIM_KERNEL_FN(slim_q4_0x16_gemm_ref) q4_0x16_gemm_ref;
    SLIM_KERNEL_FN(slim_q4_1x16_available) q4_1x16_available;
    SLIM_KERNEL_FN(slim_q4_1x16_pack) q4_1x16_pack;
    SLIM_KERNEL_FN(slim_q4_1x16_prep_size) q4_1x16_prep_size;
    SLIM_KERNEL_FN(slim_q4_1x16_prep) q4_1x16_prep;
    SLIM_KERNEL_FN(slim_q4_1x16_gemm) q4_1x16_gemm;
    SLIM_KERNEL_FN(slim_q4_1x16_gemm_ref) q4_1x16_gemm_ref;
    SLIM_KERNEL_FN(slim_q5_x16_available) q5_x16_available;
    SLIM_KERNEL_FN(slim_q5_0x16_pack) q5_0x16_pack;
    SLIM_KERNEL_FN(slim_q5_0x16_gemm) q5_0x16_gemm;
    SLIM_KERNEL_FN(slim_q5_0x16_gemm_ref) q5_0x16_gemm_ref;
    SLIM_KERNEL_FN(slim_q5_1x16_pack) q5_1x16_pack;
    SLIM_KERNEL_FN(slim_q5_1x16_gemm) q5_1x16_gemm;
    SLIM_KERNEL_FN(slim_q5_1x16_gemm_ref) q5_1x16_gemm_ref;
    SLIM_KERNEL_FN(slim_q8_0x16_pack) q8_0x16_pack;
    SLIM_KERNEL_FN(slim_q8_0x16_gemm) q8_0x16_gemm;
    SLIM_KERNEL_FN(slim_q8_0x16_gemm_ref) q8_0x16_gemm_ref;
    SLIM_KERNEL_FN(slim_q23_kx16_available) q23_kx16_available;
    SLIM_KERNEL_FN(slim_q3_kx16_size) q3_kx16_size;
    SLIM_KERNEL_FN(slim_q2_kx16_pack) q2_kx16_pack;
    SLIM_KERNEL_FN(slim_q2_kx16_gemm) q2_kx16_gemm;
    SLIM_KERNEL_FN(slim_q2_kx16_gemm_ref) q2_kx16_gemm_ref;
    SLIM_KERNEL_FN(slim_q3_kx16_pack) q3_kx16_pack;
    SLIM_KERNEL_FN(slim_q3_kx16_gemm) q3_kx16_gemm;
    SLIM_KERNEL_FN(slim_q3_kx16_gemm_ref) q3_kx16_gemm_ref;
    SLIM_KERNEL_FN(slim_q4_kx16_available) q4_kx16_available;
    SLIM_KERNEL_FN(slim_q4_kx16_size) q4_kx16_size;
    SLIM_KERNEL_FN(slim_q4_kx16_pack) q4_kx16_pack;
    SLIM_KERNEL_FN(slim_q4_kx16_xsum) q4_kx16_xsum;
    SLIM_KERNEL_FN(slim_q4_kx16_gemm) q4_kx16_gemm;
    SLIM_KERNEL_FN(slim_q4_kx16_gemm_ref) q4_kx16_gemm_ref;
    SLIM_KERNEL_FN(slim_q5_kx16_size) q5_kx16_size;
    SLIM_KERNEL_FN(slim_q5_kx16_pack) q5_kx16_pack;
    SLIM_KERNEL_FN(slim_q5_kx16_gemm) q5_kx16_gemm;
    SLIM_KERNEL_FN(slim_q5_kx16_gemm_ref) q5_kx16_gemm_ref;
    SLIM_KERNEL_FN(slim_q6_kx16_available) q6_kx16_available;
    SLIM_KERNEL_FN(slim_q6_kx16_pack) q6_kx16_pack;
    SLIM_KERNEL_FN(slim_q6_kx16_gemm) q6_kx16_gemm;
    SLIM_KERNEL_FN(slim_q6_kx16_gemm_ref) q6_kx16_gemm_ref;
    SLIM_KERNEL_FN(slim_half_x64_available) half_x64_available;
    SLIM_KERNEL_FN(slim_half_x64_pack) half_x64_pack;
    SLIM_KERNEL_FN(slim_half_x64_gemm) half_x64_gemm;
    SLIM_KERNEL_FN(slim_half_x64_gemm_ref) half_x64_gemm_ref;
} slim_cpu_kernels;

/* The table this process uses: the CPU's level (core/cpu_features.h, SLIM_CPU
 * lowers it), or the one-target build's. */
SLIM_HIDDEN const slim_cpu_kernels *slim_cpu_kernels_active(void);

#endif
