/* IEEE half and bfloat16 <-> float, bit-exact (round to nearest even). */
#ifndef SLIM_CORE_FP16_H
#define SLIM_CORE_FP16_H

#include <math.h>
#include <stdint.h>
#include <string.h>
#if defined(__F16C__)
#include <immintrin.h>
#endif

static inline float slim_bits_to_f32(uint32_t u) {
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}
static inline uint32_t slim_f32_to_bits(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

static inline float slim_fp16_to_f32(uint16_t h) {
#if defined(__F16C__)
    return _cvtsh_ss(h);
#elif defined(__aarch64__)
    __fp16 x;
    memcpy(&x, &h, sizeof x);
    return (float)x;
#else
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, exp = (h >> 10) & 0x1f, man = h & 0x3ff;
    if (exp == 0x1f) return slim_bits_to_f32(sign | 0x7f800000u | (man << 13));
    if (exp == 0) {
        float v = (float)man * (1.0f / 16777216.0f); /* man * 2^-24 */
        return sign ? -v : v;
    }
    return slim_bits_to_f32(sign | ((exp + 112) << 23) | (man << 13));
#endif
}

static inline uint16_t slim_f32_to_fp16(float f) {
#if defined(__F16C__)
    return (uint16_t)_cvtss_sh(f, _MM_FROUND_TO_NEAREST_INT);
#elif defined(__aarch64__)
    __fp16 x = (__fp16)f;
    uint16_t h;
    memcpy(&h, &x, sizeof h);
    return h;
#else
    uint32_t x = slim_f32_to_bits(f), sign = (x >> 16) & 0x8000;
    uint32_t ax = x & 0x7fffffffu;
    if (ax >= 0x7f800000u) return (uint16_t)(sign | 0x7c00 | (ax > 0x7f800000u ? 0x200 : 0));
    if (ax >= 0x477ff000u) return (uint16_t)(sign | 0x7c00); /* overflow to inf */
    if (ax < 0x38800000u) {                                  /* subnormal or zero */
        float v = slim_bits_to_f32(ax) * 16777216.0f;        /* exact scaling by 2^24 */
        uint32_t m = (uint32_t)nearbyintf(v);                /* default mode: nearest even */
        return (uint16_t)(sign | m);
    }
    uint32_t r = ax + 0xfff + ((ax >> 13) & 1); /* round to nearest even */
    return (uint16_t)(sign | ((r - 0x38000000u) >> 13));
#endif
}

static inline float slim_bf16_to_f32(uint16_t h) { return slim_bits_to_f32((uint32_t)h << 16); }

static inline uint16_t slim_f32_to_bf16(float f) {
    uint32_t x = slim_f32_to_bits(f);
    if ((x & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((x >> 16) | 64); /* quiet NaN */
    return (uint16_t)((x + (0x7fff + ((x >> 16) & 1))) >> 16);
}

#endif
