/* Weight placement for the CPU: which matmul weights are repacked at load
 * into the layout of a faster kernel (docs/PERFORMANCE.md has the figures
 * that decided it): Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K, Q3_K, Q4_K, Q5_K and Q6_K in groups of 16
 * rows (AVX-512 VNNI builds), F16 and BF16 in groups of 64 (AVX-512 builds).  Other formats, and
 * matrices whose rows do not fill whole groups, stay as the file has them.  One table (formats[],
 * by weight type) holds each layout's pack, activation preparation and gemm, so matmul.c runs a
 * packed weight without knowing its format. */
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "backend/cpu/cpu.h"
#include "quant/dtype.h"
#include "quant/half_x64.h"
#include "quant/legacy_x16.h"
#include "quant/q23_k_x16.h"
#include "quant/q4_1_x16.h"
#include "quant/q5_x16.h"
#include "quant/q4_k_x16.h"
#include "quant/q6_k_x16.h"

/* The repacked layouts' preparation and gemm behind one signature each. */
static void q4_0_gemm(int64_t n, const void *packed, int64_t g0, int64_t g1, const void *xq,
                      size_t xs, const void *prep, int64_t n_tokens, float *y, int64_t ldy,
                      void *work) {
    slim_q4_0x16_gemm(n, packed, g0, g1, prep, n_tokens, y, ldy);
}
static void q4_1_gemm(int64_t n, const void *packed, int64_t g0, int64_t g1, const void *xq,
                      size_t xs, const void *prep, int64_t n_tokens, float *y, int64_t ldy,
                      void *work) {
    slim_q4_1x16_gemm(n, packed, g0, g1, prep, n_tokens, y, ldy);
}
static void q5_0_gemm(int64_t n, const void *packed, int64_t g0, int64_t g1, const void *xq,
                      size_t xs, const void *prep, int64_t n_tokens, float *y, int64_t ldy,
                      void *work) {
    slim_q5_0x16_gemm(n, packed, g0, g1, prep, n_tokens, y, ldy);
}
static void q5_1_gemm(int64_t n, const void *packed, int64_t g0, int64_t g1, const void *xq,
                      size_t xs, const void *prep, int64_t n_tokens, float *y, int64_t ldy,
                      void *work) {
    slim_q5_1x16_gemm(n, packed, g0, g1, prep, n_tokens, y, ldy);
}
static void q8_0_gemm(int64_t n, const void *packed, int64_t g0, int64_t g1, const void *xq,
                      size_t xs, const void *prep, int64_t n_tokens, float *y, int64_t ldy,
                      void *work) {
    slim_q8_0x16_gemm(n, packed, g0, g1, prep, n_tokens, y, ldy);
}
static void q2_k_gemm(int64_t n, const void *packed, int64_t g0, int64_t g1, const void *xq,
                      size_t xs, const void *prep, int64_t n_tokens, float *y, int64_t ldy,
                      void *work) {
    slim_q2_kx16_gemm(n, packed, g0, g1, xq, xs, n_tokens, y, ldy);
}
static void q3_k_gemm(int64_t n, const void *packed, int64_t g0, int64_t g1, const void *xq,
                      size_t xs, const void *prep, int64_t n_tokens, float *y, int64_t ldy,
                      void *work) {
    slim_q3_kx16_gemm(n, packed, g0, g1, xq, xs, n_tokens, y, ldy);
}
static size_t q4_k_sums_size(int64_t n, int64_t n_tokens) {
    return (size_t)(n / 32) * (size_t)n_tokens * sizeof(int16_t);
}
static void q4_k_sums(int64_t n, const void *xq, size_t xs, int64_t n_tokens, void *dst) {
    slim_q4_kx16_xsum(n, xq, xs, n_tokens, dst);
}
static void q4_k_gemm(int64_t n, const void *packed, int64_t g0, int64_t g1, const void *xq,
                      size_t xs, const void *prep, int64_t n_tokens, float *y, int64_t ldy,
                      void *work) {
    slim_q4_kx16_gemm(n, packed, g0, g1, xq, xs, prep, n_tokens, y, ldy);
}
static void q5_k_gemm(int64_t n, const void *packed, int64_t g0, int64_t g1, const void *xq,
                      size_t xs, const void *prep, int64_t n_tokens, float *y, int64_t ldy,
                      void *work) {
    slim_q5_kx16_gemm(n, packed, g0, g1, xq, xs, prep, n_tokens, y, ldy);
}
static void q6_k_gemm(int64_t n, const void *packed, int64_t g0, int64_t g1, const void *xq,
                      size_t xs, const void *prep, int64_t n_tokens, float *y, int64_t ldy,
                      void *work) {
    slim_q6_kx16_gemm(n, packed, g0, g1, xq, xs, n_tokens, y, ldy);
}
static void f16_gemm(int64_t n, const void *packed, int64_t g0, int64_t g1, const void *xq,
                     size_t xs, const void *prep, int64_t n_tokens, float *y, int64_t ldy,
                     void *work) {
    slim_half_x64_gemm(false, n, packed, g0, g1, xq, xs / sizeof(float), n_tokens, y, ldy, work);
}
static void bf16_gemm(int64_t n, const void *packed, int64_t g0, int64_t g1, const void *xq,
                      size_t xs, const void *prep, int64_t n_tokens, float *y, int64_t ldy,
                      void *work) {
    slim_half_x64_gemm(true, n, packed, g0, g1, xq, xs / sizeof(float), n_tokens, y, ldy, work);
}

/* Indexed by weight type; rows 0: no repacked layout. */
static const slim_cpu_packed_format formats[SLIM_DTYPE_COUNT] = {
    [SLIM_DTYPE_Q4_0] = {SLIM_X16_ROWS, slim_q4_0x16_available, NULL, slim_q4_0x16_pack,
                         slim_q4_0x16_prep_size, slim_q4_0x16_prep, SLIM_X16_TOKENS, q4_0_gemm},
    /* Q8_1 activations in Q4_0's layout, the sum slot holding s */
    [SLIM_DTYPE_Q4_1] = {SLIM_X16_ROWS, slim_q4_1x16_available, NULL, slim_q4_1x16_pack,
                         slim_q4_1x16_prep_size, slim_q4_1x16_prep, SLIM_X16_TOKENS, q4_1_gemm},
    /* Q5_0, Q5_1: Q4_0's and Q4_1's preparations, shared */
    [SLIM_DTYPE_Q5_0] = {SLIM_X16_ROWS, slim_q5_x16_available, NULL, slim_q5_0x16_pack,
                         slim_q4_0x16_prep_size, slim_q4_0x16_prep, SLIM_X16_TOKENS, q5_0_gemm},
    [SLIM_DTYPE_Q5_1] = {SLIM_X16_ROWS, slim_q5_x16_available, NULL, slim_q5_1x16_pack,
                         slim_q4_1x16_prep_size, slim_q4_1x16_prep, SLIM_X16_TOKENS, q5_1_gemm},
    /* Q8_0 activations as Q4_0's: the same preparation, shared */
    [SLIM_DTYPE_Q8_0] = {SLIM_X16_ROWS, slim_q4_0x16_available, NULL, slim_q8_0x16_pack,
                         slim_q4_0x16_prep_size, slim_q4_0x16_prep, SLIM_X16_TOKENS, q8_0_gemm},
    /* Q2_K, Q3_K: Q8_K's bsums carry the mins and the -4 */
    [SLIM_DTYPE_Q2_K] = {SLIM_X16_ROWS, slim_q23_kx16_available, NULL, slim_q2_kx16_pack, NULL,
                         NULL, 0, q2_k_gemm},
    [SLIM_DTYPE_Q3_K] = {SLIM_X16_ROWS, slim_q23_kx16_available, slim_q3_kx16_size,
                         slim_q3_kx16_pack, NULL, NULL, 0, q3_k_gemm},
    [SLIM_DTYPE_Q4_K] = {SLIM_X16_ROWS, slim_q4_kx16_available, slim_q4_kx16_size,
                         slim_q4_kx16_pack, q4_k_sums_size, q4_k_sums, 0, q4_k_gemm},
    /* Q5_K: Q4_K's layout with the fifth bits, and its activation sums */
    [SLIM_DTYPE_Q5_K] = {SLIM_X16_ROWS, slim_q4_kx16_available, slim_q5_kx16_size,
                         slim_q5_kx16_pack, q4_k_sums_size, q4_k_sums, 0, q5_k_gemm},
    /* Q8_K's bsums serve: nothing to prepare */
    [SLIM_DTYPE_Q6_K] = {SLIM_X16_ROWS, slim_q6_kx16_available, NULL, slim_q6_kx16_pack, NULL, NULL,
                         0, q6_k_gemm},
    [SLIM_DTYPE_F16] = {SLIM_X64_ROWS, slim_half_x64_available, NULL, slim_half_x64_pack, NULL,
                        NULL, 0, f16_gemm, SLIM_X64_WORK_BYTES},
    [SLIM_DTYPE_BF16] = {SLIM_X64_ROWS, slim_half_x64_available, NULL, slim_half_x64_pack, NULL,
                         NULL, 0, bf16_gemm, SLIM_X64_WORK_BYTES},
};

const slim_cpu_packed_format *slim_cpu_packed_format_of(int type) {
    return type >= 0 && type < SLIM_DTYPE_COUNT && formats[type].rows ? &formats[type] : NULL;
}

size_t slim_cpu_packed_size(const slim_tensor *t) {
    if (!t->name || t->packed || t->ne[1] <= 0 || t->ne[2] != 1 || t->ne[3] != 1) return 0;
    const slim_cpu_packed_format *f = slim_cpu_packed_format_of(t->type);
    if (!f || !f->available() || t->ne[1] % f->rows) return 0;
    /* every layout but Q3_K's, Q4_K's and Q5_K's (scales unpacked) is the file's bytes reordered */
    return f->size ? f->size(t->ne[0], t->ne[1])
                   : slim_dtype_row_size(t->type, t->ne[0]) * (size_t)t->ne[1];
}

void slim_cpu_pack(slim_tensor *t, void *dst) {
    slim_cpu_packed_format_of(t->type)->pack(t->data, t->nb[1], t->ne[0], t->ne[1], dst);
    t->packed = dst;
}

/* One weight's repacked copy; the mapped file's pages of the weight leave
 * the process (they stay in the page cache; a later read of t->data faults
 * them back in from the file, unchanged: the mapping is private and never
 * written).  Only the file's: weights converted at load live in anonymous
 * memory, where dropped pages read back as zeros (a tied embedding reads them). */
static slim_status pack_one(slim_tensor *t, const slim_weight_arena *arena) {
    const size_t bytes = slim_cpu_packed_size(t);
    if (!bytes) return SLIM_OK;
    void *dst = arena->alloc(arena->owner, bytes);
    if (!dst) return slim_error(SLIM_ERR_NOMEM, "model: out of memory repacking '%s'", t->name);
    slim_cpu_pack(t, dst);
    const uintptr_t start = (uintptr_t)t->data, end = start + t->nb[1] * (size_t)t->ne[1];
    const uintptr_t file = (uintptr_t)arena->file;
    if (file && start >= file && end <= file + arena->file_size) {
        const uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
        const uintptr_t lo = (start + page - 1) & ~(page - 1), hi = end & ~(page - 1);
        if (hi > lo) madvise((void *)lo, hi - lo, MADV_DONTNEED);
    }
    return SLIM_OK;
}

/* SLIM_CPU_REPACK=0 in the environment keeps the file's layout (A/B checks). */
slim_status slim_cpu_prepare_weights(slim_tensor *const *w, size_t n_w,
                                     const slim_weight_arena *arena) {
    const char *env = getenv("SLIM_CPU_REPACK");
    if (env && strcmp(env, "0") == 0) return SLIM_OK;
    slim_status st = SLIM_OK;
    for (size_t i = 0; !st && i < n_w; i++)
        st = pack_one(w[i], arena);
    return st;
}
