/* repack: the CPU's repacked matmul kernels against the plain row kernels
 * they replace, one thread, weights far larger than the caches.
 *
 * For each format (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, F16; -f NAME: that
 * one alone) a random matrix of about
 * 256 MiB with rows of n elements (-n, default 2048) is timed two ways: decode: one token; plain =
 * the traits' vec_dot per row, packed = the repacked kernel over all row groups (what
 * slim_cpu_matmul runs); prefill: -T tokens (default 64); plain = the traits' gemm over 16-row
 *           tiles with a work area (no gemm: vec_dot per row and token),
 *           packed = the repacked kernel;
 * best of -r runs (default 5), as ns per weight row and GB/s of weights.
 * Before timing, the packed results of the first group are checked bitwise
 * against the kernel's scalar reference (the unit tests do the full checks).
 *
 * -s MiB sets the weights' size instead (-s 0.5: from this core's L2, which
 * tells a kernel's arithmetic limit from its memory limit).
 *
 * usage: repack [-n N] [-T TOKENS] [-r REPS] [-s MiB] [-f FORMAT]
 * build: make bench-repack   (-> build/repack; links build/libslim.a) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backend/cpu/kernels.h"
#include "core/bigalloc.h"
#include "core/fp16.h"
#include "quant/blocks.h"

/* The kernels of the CPU level this process runs (SLIM_CPU forces a lower one). */
#define K (slim_cpu_kernels_active())

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static uint64_t rng = 0x5EED;
static uint64_t next(void) {
    uint64_t z = (rng += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* Random bytes with sane fp16 scales (or random F16 values) per format. */
static void fill(slim_dtype type, char *w, size_t bytes, size_t block) {
    for (size_t i = 0; i < bytes; i += 8) {
        const uint64_t v = next();
        memcpy(w + i, &v, bytes - i < 8 ? bytes - i : 8);
    }
    const uint16_t small = slim_f32_to_fp16(0.01f);
    for (size_t off = 0; off + block <= bytes; off += block) {
        char *b = w + off;
        if (type == SLIM_DTYPE_Q4_0) ((block_q4_0 *)b)->d = small;
        if (type == SLIM_DTYPE_Q4_1) ((block_q4_1 *)b)->d = ((block_q4_1 *)b)->m = small;
        if (type == SLIM_DTYPE_Q5_0) ((block_q5_0 *)b)->d = small;
        if (type == SLIM_DTYPE_Q5_1) ((block_q5_1 *)b)->d = ((block_q5_1 *)b)->m = small;
        if (type == SLIM_DTYPE_Q8_0) ((block_q8_0 *)b)->d = small;
        if (type == SLIM_DTYPE_Q2_K) ((block_q2_K *)b)->d = ((block_q2_K *)b)->dmin = small;
        if (type == SLIM_DTYPE_Q3_K) ((block_q3_K *)b)->d = small;
        if (type == SLIM_DTYPE_Q4_K) ((block_q4_K *)b)->d = ((block_q4_K *)b)->dmin = small;
        if (type == SLIM_DTYPE_Q5_K) ((block_q5_K *)b)->d = ((block_q5_K *)b)->dmin = small;
        if (type == SLIM_DTYPE_Q6_K) ((block_q6_K *)b)->d = small;
        if (type == SLIM_DTYPE_F16)
            for (size_t k = 0; k < block; k += 2)
                memcpy(b + k, &small, 2);
    }
}

static double size_mib = 256;

static void run(slim_dtype type, int64_t n, int64_t T, int reps) {
    const slim_dtype_traits *tr = slim_dtype_traits_of(type);
    const slim_dtype xt = tr->vec_dot_type;
    const size_t ws = slim_dtype_row_size(type, n);
    const int64_t group = type == SLIM_DTYPE_F16 ? SLIM_X64_ROWS : SLIM_X16_ROWS;
    const int64_t rows = (int64_t)(size_mib * 1048576.0) / (int64_t)ws / group * group;
    if (rows < group) {
        printf("| %s | %lld | -s %.2f MiB holds no row group |\n", tr->name, (long long)n,
               size_mib);
        return;
    }
    const size_t bytes = ws * (size_t)rows;
    size_t packed_bytes = bytes;
    if (type == SLIM_DTYPE_Q4_K) packed_bytes = K->q4_kx16_size(n, rows);
    if (type == SLIM_DTYPE_Q5_K) packed_bytes = K->q5_kx16_size(n, rows);
    if (type == SLIM_DTYPE_Q3_K) packed_bytes = K->q3_kx16_size(n, rows);
    /* both in huge pages, as the library's repacked copy and a mapped file's page cache are */
    char *w = slim_bigalloc(bytes), *p = slim_bigalloc(packed_bytes);
    float *xf = malloc(sizeof(float) * (size_t)(n * T)),
          *y = malloc(sizeof(float) * (size_t)(rows * T));
    float *yr = malloc(sizeof(float) * (size_t)(group * T));
    const size_t xs = xt == SLIM_DTYPE_F32 ? sizeof(float) * (size_t)n : slim_dtype_row_size(xt, n);
    char *xq = malloc(xs * (size_t)T);
    int16_t *xsum = malloc(sizeof(int16_t) * (size_t)(n / 32 * T));
    /* Q4_0, Q8_0, Q4_1, Q5_0, Q5_1: prepared per call (the same size) */
    void *xp = malloc(K->q4_0x16_prep_size(n, T));
    char *work = aligned_alloc(64, 1u << 22);
    if (!w || !p || !xf || !y || !yr || !xq || !xsum || !xp || !work) {
        fprintf(stderr, "repack: out of memory\n");
        exit(1);
    }
    fill(type, w, bytes, type == SLIM_DTYPE_F16 ? 2 : (size_t)tr->type_size);
    for (int64_t i = 0; i < n * T; i++)
        xf[i] = (float)((double)(next() >> 11) / 9007199254740992.0 - 0.5);
    for (int64_t t = 0; t < T; t++) {
        if (xt == SLIM_DTYPE_F32)
            memcpy(xq + (size_t)t * xs, xf + t * n, xs);
        else
            slim_dtype_traits_of(xt)->from_float(xf + t * n, xq + (size_t)t * xs, n);
    }
    if (type == SLIM_DTYPE_Q4_0 || type == SLIM_DTYPE_Q8_0) {
        (type == SLIM_DTYPE_Q4_0 ? K->q4_0x16_pack : K->q8_0x16_pack)(w, ws, n, rows, p);
    } else if (type == SLIM_DTYPE_Q4_1) {
        K->q4_1x16_pack(w, ws, n, rows, p);
    } else if (type == SLIM_DTYPE_Q5_0 || type == SLIM_DTYPE_Q5_1) {
        (type == SLIM_DTYPE_Q5_0 ? K->q5_0x16_pack : K->q5_1x16_pack)(w, ws, n, rows, p);
    } else if (type == SLIM_DTYPE_Q4_K || type == SLIM_DTYPE_Q5_K) {
        (type == SLIM_DTYPE_Q4_K ? K->q4_kx16_pack : K->q5_kx16_pack)(w, ws, n, rows, p);
        K->q4_kx16_xsum(n, xq, xs, T, xsum);
    } else if (type == SLIM_DTYPE_Q6_K) {
        K->q6_kx16_pack(w, ws, n, rows, p);
    } else if (type == SLIM_DTYPE_Q2_K || type == SLIM_DTYPE_Q3_K) {
        (type == SLIM_DTYPE_Q2_K ? K->q2_kx16_pack : K->q3_kx16_pack)(w, ws, n, rows, p);
    } else {
        K->half_x64_pack(w, ws, n, rows, p);
    }
    const int64_t groups = rows / group;
#define PACKED(nt, out, ldy, g1)                                                                   \
    do {                                                                                           \
        if (type == SLIM_DTYPE_Q4_0)                                                               \
            K->q4_0x16_gemm(n, p, 0, g1, (K->q4_0x16_prep(n, xq, xs, nt, xp), xp), nt, out, ldy);  \
        else if (type == SLIM_DTYPE_Q4_1)                                                          \
            K->q4_1x16_gemm(n, p, 0, g1, (K->q4_1x16_prep(n, xq, xs, nt, xp), xp), nt, out, ldy);  \
        else if (type == SLIM_DTYPE_Q5_0)                                                          \
            K->q5_0x16_gemm(n, p, 0, g1, (K->q4_0x16_prep(n, xq, xs, nt, xp), xp), nt, out, ldy);  \
        else if (type == SLIM_DTYPE_Q5_1)                                                          \
            K->q5_1x16_gemm(n, p, 0, g1, (K->q4_1x16_prep(n, xq, xs, nt, xp), xp), nt, out, ldy);  \
        else if (type == SLIM_DTYPE_Q8_0)                                                          \
            K->q8_0x16_gemm(n, p, 0, g1, (K->q4_0x16_prep(n, xq, xs, nt, xp), xp), nt, out, ldy);  \
        else if (type == SLIM_DTYPE_Q4_K)                                                          \
            K->q4_kx16_gemm(n, p, 0, g1, xq, xs, xsum, nt, out, ldy);                              \
        else if (type == SLIM_DTYPE_Q5_K)                                                          \
            K->q5_kx16_gemm(n, p, 0, g1, xq, xs, xsum, nt, out, ldy);                              \
        else if (type == SLIM_DTYPE_Q6_K)                                                          \
            K->q6_kx16_gemm(n, p, 0, g1, xq, xs, nt, out, ldy);                                    \
        else if (type == SLIM_DTYPE_Q2_K)                                                          \
            K->q2_kx16_gemm(n, p, 0, g1, xq, xs, nt, out, ldy);                                    \
        else if (type == SLIM_DTYPE_Q3_K)                                                          \
            K->q3_kx16_gemm(n, p, 0, g1, xq, xs, nt, out, ldy);                                    \
        else                                                                                       \
            K->half_x64_gemm(false, n, p, 0, g1, (const float *)xq, (size_t)n, nt, out, ldy,       \
                             (float *)work);                                                       \
    } while (0)
    /* check: the first group, all tokens, against the scalar reference */
    float *yc = malloc(sizeof(float) * (size_t)(group * T));
    PACKED(T, yc, group, 1);
    if (type == SLIM_DTYPE_Q4_0) K->q4_0x16_gemm_ref(n, p, 0, 1, xq, xs, T, yr, group);
    if (type == SLIM_DTYPE_Q4_1) K->q4_1x16_gemm_ref(n, p, 0, 1, xq, xs, T, yr, group);
    if (type == SLIM_DTYPE_Q5_0) K->q5_0x16_gemm_ref(n, p, 0, 1, xq, xs, T, yr, group);
    if (type == SLIM_DTYPE_Q5_1) K->q5_1x16_gemm_ref(n, p, 0, 1, xq, xs, T, yr, group);
    if (type == SLIM_DTYPE_Q8_0) K->q8_0x16_gemm_ref(n, p, 0, 1, xq, xs, T, yr, group);
    if (type == SLIM_DTYPE_Q4_K) K->q4_kx16_gemm_ref(n, p, 0, 1, xq, xs, T, yr, group);
    if (type == SLIM_DTYPE_Q5_K) K->q5_kx16_gemm_ref(n, p, 0, 1, xq, xs, T, yr, group);
    if (type == SLIM_DTYPE_Q6_K) K->q6_kx16_gemm_ref(n, p, 0, 1, xq, xs, T, yr, group);
    if (type == SLIM_DTYPE_Q2_K) K->q2_kx16_gemm_ref(n, p, 0, 1, xq, xs, T, yr, group);
    if (type == SLIM_DTYPE_Q3_K) K->q3_kx16_gemm_ref(n, p, 0, 1, xq, xs, T, yr, group);
    if (type == SLIM_DTYPE_F16)
        K->half_x64_gemm_ref(false, n, p, 0, 1, (const float *)xq, (size_t)n, T, yr, group);
    const int same = memcmp(yc, yr, sizeof(float) * (size_t)(group * T)) == 0;
    free(yc);
    double best[4] = {1e30, 1e30, 1e30, 1e30}; /* plain/packed x decode/prefill */
    for (int r = 0; r < reps; r++) {
        double t0 = now();
        for (int64_t row = 0; row < rows; row++)
            y[row] = tr->vec_dot(n, w + (size_t)row * ws, xq);
        double t1 = now();
        PACKED(1, y, rows, groups);
        double t2 = now();
        for (int64_t row = 0; row < rows; row += 16) {
            if (tr->gemm) {
                tr->gemm(n, w, ws, row, row + 16, xq, xs, T, y, rows, work, 1u << 22);
                continue;
            }
            for (int64_t t = 0; t < T; t++) /* no gemm (Q5_1): vec_dot per row and token */
                for (int64_t k = row; k < row + 16; k++)
                    y[t * rows + k] = tr->vec_dot(n, w + (size_t)k * ws, xq + (size_t)t * xs);
        }
        double t3 = now();
        PACKED(T, y, rows, groups);
        double t4 = now();
        const double d[4] = {t1 - t0, t2 - t1, t3 - t2, t4 - t3};
        for (int k = 0; k < 4; k++)
            if (d[k] < best[k]) best[k] = d[k];
    }
    printf("| %s | %lld | %.1f / %.1f = %.2fx | %.1f / %.1f GB/s | %.0f / %.0f = %.2fx | %s |\n",
           tr->name, (long long)n, 1e9 * best[0] / (double)rows, 1e9 * best[1] / (double)rows,
           best[0] / best[1], (double)bytes / best[0] / 1e9, (double)bytes / best[1] / 1e9,
           1e9 * best[2] / (double)rows, 1e9 * best[3] / (double)rows, best[2] / best[3],
           same ? "bitwise" : "DIFFERS");
    free(w);
    free(p);
    free(xf);
    free(y);
    free(yr);
    free(xq);
    free(xsum);
    free(xp);
    free(work);
}

int main(int argc, char **argv) {
    int64_t n = 2048, T = 64;
    int reps = 5;
    const char *only = NULL;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "-n"))
            n = atoll(argv[i + 1]);
        else if (!strcmp(argv[i], "-T"))
            T = atoll(argv[i + 1]);
        else if (!strcmp(argv[i], "-r"))
            reps = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "-s"))
            size_mib = atof(argv[i + 1]);
        else if (!strcmp(argv[i], "-f"))
            only = argv[i + 1];
    }
    if (n <= 0 || n % 256 || T < 1 || reps < 1 || !(size_mib > 0 && size_mib <= 65536)) {
        fprintf(stderr, "usage: repack [-n N (a multiple of 256)] [-T TOKENS] [-r REPS] [-s MiB] "
                        "[-f FORMAT]\n");
        return 2;
    }
    if (!K->q4_0x16_available() || !K->half_x64_available()) {
        fprintf(stderr, "repack: this build has no repacked kernels (needs AVX-512 VNNI)\n");
        return 1;
    }
    printf("one thread, ~%g MiB of weights, n = %lld, prefill %lld tokens, best of %d\n\n",
           size_mib, (long long)n, (long long)T, reps);
    printf("| format | n | decode ns/row plain / packed | decode GB/s plain / packed | prefill "
           "ns/row plain / packed | packed vs its reference |\n|---|---|---|---|---|---|\n");
    const slim_dtype types[] = {SLIM_DTYPE_Q4_0, SLIM_DTYPE_Q4_1, SLIM_DTYPE_Q5_0, SLIM_DTYPE_Q5_1,
                                SLIM_DTYPE_Q8_0, SLIM_DTYPE_Q2_K, SLIM_DTYPE_Q3_K, SLIM_DTYPE_Q4_K,
                                SLIM_DTYPE_Q5_K, SLIM_DTYPE_Q6_K, SLIM_DTYPE_F16};
    int ran = 0;
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
        if (!only || !strcmp(only, slim_dtype_traits_of(types[i])->name)) {
            run(types[i], n, T, reps);
            ran++;
        }
    if (!ran) {
        fprintf(stderr, "repack: no format named '%s'\n", only);
        return 2;
    }
    return 0;
}
