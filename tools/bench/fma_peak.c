/* fma_peak: this core's float32 FMA peak, the ceiling of compute-bound
 * prefill (F16/BF16 weights are widened to float32 and multiplied with FMA).
 *
 * 12 independent chains of vfmadd on 512-bit (AVX-512F) or 256-bit (AVX2 +
 * FMA) registers, enough to cover the FMA latency on current x86 cores, -n
 * iterations each.  Timed by the thread's CPU clock as well as the wall clock:
 * on a shared machine the CPU clock leaves out the time the OS ran other
 * work, so GFLOP/s per CPU second is the core's peak at the clock it ran.
 * Reported: best of -r runs, GFLOP/s (2 per FMA lane) for each width.
 *
 * usage: fma_peak [-n ITERS] [-r RUNS]
 * build: make bench-fma   (-> build/fma_peak) */
#include <immintrin.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { CHAINS = 12 };

static double clock_s(clockid_t id) {
    struct timespec t;
    clock_gettime(id, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

__attribute__((target("avx512f"))) static float run512(long iters) {
    __m512 acc[CHAINS];
    const __m512 a = _mm512_set1_ps(0.999999f), b = _mm512_set1_ps(1e-7f);
    for (int c = 0; c < CHAINS; c++)
        acc[c] = _mm512_set1_ps((float)c);
    for (long i = 0; i < iters; i++)
#pragma GCC unroll 16 /* the chains in registers */
        for (int c = 0; c < CHAINS; c++)
            acc[c] = _mm512_fmadd_ps(acc[c], a, b);
    __m512 s = acc[0];
    for (int c = 1; c < CHAINS; c++)
        s = _mm512_add_ps(s, acc[c]);
    return _mm512_reduce_add_ps(s);
}

__attribute__((target("avx2,fma"))) static float run256(long iters) {
    __m256 acc[CHAINS];
    const __m256 a = _mm256_set1_ps(0.999999f), b = _mm256_set1_ps(1e-7f);
    for (int c = 0; c < CHAINS; c++)
        acc[c] = _mm256_set1_ps((float)c);
    for (long i = 0; i < iters; i++)
#pragma GCC unroll 16 /* the chains in registers */
        for (int c = 0; c < CHAINS; c++)
            acc[c] = _mm256_fmadd_ps(acc[c], a, b);
    __m256 s = acc[0];
    for (int c = 1; c < CHAINS; c++)
        s = _mm256_add_ps(s, acc[c]);
    float v[8];
    _mm256_storeu_ps(v, s);
    return v[0] + v[1] + v[2] + v[3] + v[4] + v[5] + v[6] + v[7];
}

int main(int argc, char **argv) {
    long iters = 20000000;
    int runs = 5;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "-n"))
            iters = atol(argv[i + 1]);
        else if (!strcmp(argv[i], "-r"))
            runs = atoi(argv[i + 1]);
        else {
            fprintf(stderr, "usage: fma_peak [-n ITERS] [-r RUNS]\n");
            return 2;
        }
    }
    if (iters < 1 || runs < 1) {
        fprintf(stderr, "fma_peak: -n and -r must be >= 1\n");
        return 2;
    }
    __builtin_cpu_init();
    printf("| width | GFLOP/s per CPU second (best) | GFLOP/s wall (best) |\n|---|---|---|\n");
    for (int w = 0; w < 2; w++) {
        const int lanes = w ? 8 : 16;
        if (!w && !__builtin_cpu_supports("avx512f")) continue;
        if (w && !(__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))) continue;
        double best_cpu = 0, best_wall = 0;
        volatile float sink = 0;
        for (int r = 0; r < runs; r++) {
            const double c0 = clock_s(CLOCK_THREAD_CPUTIME_ID), t0 = clock_s(CLOCK_MONOTONIC);
            sink += w ? run256(iters) : run512(iters);
            const double c1 = clock_s(CLOCK_THREAD_CPUTIME_ID), t1 = clock_s(CLOCK_MONOTONIC);
            const double flop = 2.0 * lanes * CHAINS * (double)iters;
            if (flop / (c1 - c0) > best_cpu) best_cpu = flop / (c1 - c0);
            if (flop / (t1 - t0) > best_wall) best_wall = flop / (t1 - t0);
        }
        (void)sink;
        printf("| %d-bit | %.1f | %.1f |\n", lanes * 32, best_cpu * 1e-9, best_wall * 1e-9);
    }
    return 0;
}
