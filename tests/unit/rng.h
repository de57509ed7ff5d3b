/* The unit tests' random numbers: splitmix64 over a per-file state, seeded
 * by each test so every run sees the same data. */
#ifndef SLIM_TESTS_RNG_H
#define SLIM_TESTS_RNG_H

#include <stdint.h>

static uint64_t rng_state;

static inline uint64_t rng_next(void) {
    uint64_t z = (rng_state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* Uniform in [0, 1) with 53 random bits. */
static inline double rng_unif(void) {
    return (double)(rng_next() >> 11) * (1.0 / 9007199254740992.0);
}

#endif
