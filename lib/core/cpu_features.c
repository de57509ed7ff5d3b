/* CPU level detection: cpuid (with the OS's register-state support) through
 * __builtin_cpu_supports, then the SLIM_CPU override. */
#include "core/cpu_features.h"

#include <stdlib.h>
#include <string.h>

static const char *const level_names[SLIM_CPU_LEVEL_COUNT] = {"baseline", "avx2", "avx512"};

const char *slim_cpu_level_name(slim_cpu_level level) {
    return level >= 0 && level < SLIM_CPU_LEVEL_COUNT ? level_names[level] : "?";
}

static slim_cpu_level supported(void) {
#if defined(__x86_64__) && defined(__GNUC__)
    __builtin_cpu_init();
#if !defined(__clang__) && __GNUC__ >= 12
    /* the same feature sets as the -march=x86-64-v3 / -v4 the levels are built with */
    const int v3 = __builtin_cpu_supports("x86-64-v3");
    const int v4 = __builtin_cpu_supports("x86-64-v4");
#else /* older compilers name no levels: their main features */
    const int v3 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
                   __builtin_cpu_supports("bmi") && __builtin_cpu_supports("bmi2");
    const int v4 = v3 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                   __builtin_cpu_supports("avx512cd") && __builtin_cpu_supports("avx512dq") &&
                   __builtin_cpu_supports("avx512vl");
#endif
    if (v4 && __builtin_cpu_supports("avx512vnni")) return SLIM_CPU_AVX512;
    if (v3) return SLIM_CPU_AVX2;
#endif
    return SLIM_CPU_BASELINE;
}

static slim_cpu_level detect(void) {
    slim_cpu_level level = supported();
    const char *want = getenv("SLIM_CPU");
    for (int l = 0; want && l < (int)level; l++)
        if (strcmp(want, level_names[l]) == 0) level = (slim_cpu_level)l;
    return level;
}

slim_cpu_level slim_cpu_level_get(void) {
    /* -1: not read yet; racing first calls compute the same value */
    static int cached = -1;
    int level = __atomic_load_n(&cached, __ATOMIC_RELAXED);
    if (level < 0) {
        level = (int)detect();
        __atomic_store_n(&cached, level, __ATOMIC_RELAXED);
    }
    return (slim_cpu_level)level;
}
