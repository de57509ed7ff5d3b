/* Which level of the CPU kernels this machine runs (docs/ARCHITECTURE.md, "CPU dispatch"). */
#ifndef SLIM_CORE_CPU_FEATURES_H
#define SLIM_CORE_CPU_FEATURES_H

#include "core/error.h"

/* In increasing order; each includes the ones before. */
typedef enum slim_cpu_level {
    SLIM_CPU_BASELINE, /* x86-64-v2 (SSE4.2, POPCNT), or the architecture's baseline */
    SLIM_CPU_AVX2,     /* x86-64-v3: AVX2, FMA, F16C, BMI1/2, LZCNT, MOVBE */
    SLIM_CPU_AVX512,   /* x86-64-v4 (AVX-512 F, BW, CD, DQ, VL) and AVX-512 VNNI */
    SLIM_CPU_LEVEL_COUNT
} slim_cpu_level;

/* The highest level this CPU and OS support, lowered to the one the environment
 * variable SLIM_CPU names (baseline, avx2, avx512) where that is lower: tests
 * force a level with it.  Other values of SLIM_CPU are ignored.  Read once. */
SLIM_HIDDEN slim_cpu_level slim_cpu_level_get(void);

/* "baseline", "avx2", "avx512". */
SLIM_HIDDEN const char *slim_cpu_level_name(slim_cpu_level level);

#endif
