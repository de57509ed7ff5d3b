/* GGUF/GGML quantization blocks, laid out byte for byte as GGML stores them
 * (ggml-common.h).  Plain structs of fixed-width integers so the same header
 * serves C and CUDA; fp16 fields are raw IEEE half bits (uint16_t), converted
 * with core/fp16.h on the CPU.  All multi-byte fields are little-endian in the
 * file and read in place, so slim assumes a little-endian host, as GGUF does.
 *
 * Legacy formats have 32 elements per block, stored as two halves: in a byte
 * of packed nibbles, the low nibble is element j and the high nibble element
 * j + 16.  K-quants have 256-element super-blocks split into sub-blocks of 16 or
 * 32 with their own quantized scales; the layouts are described per struct. */
#ifndef SLIM_QUANT_BLOCKS_H
#define SLIM_QUANT_BLOCKS_H

#include <stdint.h>

#define SLIM_QK4_0 32
#define SLIM_QK4_1 32
#define SLIM_QK5_0 32
#define SLIM_QK5_1 32
#define SLIM_QK8_0 32
#define SLIM_QK8_1 32
#define SLIM_QK_K 256
#define SLIM_K_SCALE_SIZE 12

#if defined(__cplusplus)
#define SLIM_BLOCK_ASSERT(t, size) static_assert(sizeof(t) == (size), #t " has the wrong size")
#else
#define SLIM_BLOCK_ASSERT(t, size) _Static_assert(sizeof(t) == (size), #t " has the wrong size")
#endif

/* w = d * (q - 8), q in 0..15 */
typedef struct {
    uint16_t d;                 /* fp16 scale */
    uint8_t qs[SLIM_QK4_0 / 2]; /* nibbles */
} block_q4_0;
SLIM_BLOCK_ASSERT(block_q4_0, 2 + SLIM_QK4_0 / 2);

/* w = d * q + m, q in 0..15 */
typedef struct {
    uint16_t d; /* fp16 scale */
    uint16_t m; /* fp16 min */
    uint8_t qs[SLIM_QK4_1 / 2];
} block_q4_1;
SLIM_BLOCK_ASSERT(block_q4_1, 4 + SLIM_QK4_1 / 2);

/* w = d * (q - 16), q = nibble | bit j of qh (as a little-endian uint32) << 4 */
typedef struct {
    uint16_t d;
    uint8_t qh[4]; /* fifth bits, element j at bit j */
    uint8_t qs[SLIM_QK5_0 / 2];
} block_q5_0;
SLIM_BLOCK_ASSERT(block_q5_0, 2 + 4 + SLIM_QK5_0 / 2);

/* w = d * q + m, q in 0..31 (fifth bits as Q5_0) */
typedef struct {
    uint16_t d;
    uint16_t m;
    uint8_t qh[4];
    uint8_t qs[SLIM_QK5_1 / 2];
} block_q5_1;
SLIM_BLOCK_ASSERT(block_q5_1, 4 + 4 + SLIM_QK5_1 / 2);

/* w = d * q */
typedef struct {
    uint16_t d;
    int8_t qs[SLIM_QK8_0];
} block_q8_0;
SLIM_BLOCK_ASSERT(block_q8_0, 2 + SLIM_QK8_0);

/* w = d * q; s = d * sum(q), rounded to fp16 (used by Q4_1/Q5_1 dot products) */
typedef struct {
    uint16_t d;
    uint16_t s;
    int8_t qs[SLIM_QK8_1];
} block_q8_1;
SLIM_BLOCK_ASSERT(block_q8_1, 4 + SLIM_QK8_1);

/* 16 sub-blocks of 16.  scales[j]: low nibble scale, high nibble min of
 * sub-block j.  Element e = 128*h + 32*s + l (h < 2, s < 4, l < 32) is bits
 * 2s..2s+1 of qs[32*h + l].  w = d*sc*q - dmin*m. */
typedef struct {
    uint8_t scales[SLIM_QK_K / 16];
    uint8_t qs[SLIM_QK_K / 4];
    uint16_t d;    /* fp16 scale of the scales */
    uint16_t dmin; /* fp16 scale of the mins */
} block_q2_K;
SLIM_BLOCK_ASSERT(block_q2_K, 2 * 2 + SLIM_QK_K / 16 + SLIM_QK_K / 4);

/* 16 sub-blocks of 16 with signed 6-bit scales (stored + 32): scale j has its
 * low 4 bits in scales[j % 8] (low nibble for j < 8, high nibble otherwise) and
 * its high 2 bits at bits 2*(j/4) of scales[8 + j%4].  Element e = 128*h + 32*s
 * + l: low 2 bits as Q2_K, high bit = bit e/32 of hmask[l]; q = low - 4 when the
 * high bit is clear, else low.  w = d*(sc - 32)*q. */
typedef struct {
    uint8_t hmask[SLIM_QK_K / 8];
    uint8_t qs[SLIM_QK_K / 4];
    uint8_t scales[12];
    uint16_t d;
} block_q3_K;
SLIM_BLOCK_ASSERT(block_q3_K, 2 + SLIM_QK_K / 4 + SLIM_QK_K / 8 + 12);

/* Q3_K's 16 scales, sc - 32 each (the plain dot and the repacked layout share it). */
static inline void slim_q3_k_scales(const uint8_t s[12], int8_t out[16]) {
    for (int j = 0; j < 16; j++) {
        const int lo = (s[j % 8] >> (4 * (j / 8))) & 0x0F;
        const int hi = (s[8 + j % 4] >> (2 * (j / 4))) & 3;
        out[j] = (int8_t)((lo | hi << 4) - 32);
    }
}

/* 8 sub-blocks of 32 with 6-bit scales and mins packed in 12 bytes (j < 4:
 * sc = scales[j] & 63, m = scales[j+4] & 63; j >= 4: sc = (scales[j+4] & 15) |
 * (scales[j-4] >> 6) << 4, m = (scales[j+4] >> 4) | (scales[j] >> 6) << 4).
 * Element e = 64*c + 32*h + l is the low (h = 0) or high (h = 1) nibble of
 * qs[32*c + l].  w = d*sc*q - dmin*m. */
typedef struct {
    uint16_t d;
    uint16_t dmin;
    uint8_t scales[SLIM_K_SCALE_SIZE];
    uint8_t qs[SLIM_QK_K / 2];
} block_q4_K;
SLIM_BLOCK_ASSERT(block_q4_K, 2 * 2 + SLIM_K_SCALE_SIZE + SLIM_QK_K / 2);

/* Q4_K plus a fifth bit: bit e/32 of qh[e % 32]. */
typedef struct {
    uint16_t d;
    uint16_t dmin;
    uint8_t scales[SLIM_K_SCALE_SIZE];
    uint8_t qh[SLIM_QK_K / 8];
    uint8_t qs[SLIM_QK_K / 2];
} block_q5_K;
SLIM_BLOCK_ASSERT(block_q5_K, 2 * 2 + SLIM_K_SCALE_SIZE + SLIM_QK_K / 2 + SLIM_QK_K / 8);

/* 16 sub-blocks of 16 with int8 scales.  Element e = 128*h + 32*s + l
 * (h < 2, s < 4, l < 32): low 4 bits are the low (s < 2) or high (s >= 2)
 * nibble of ql[64*h + 32*(s & 1) + l], high 2 bits are bits 2s..2s+1 of
 * qh[32*h + l].  w = (d*scales[e/16])*(q - 32). */
typedef struct {
    uint8_t ql[SLIM_QK_K / 2];
    uint8_t qh[SLIM_QK_K / 4];
    int8_t scales[SLIM_QK_K / 16];
    uint16_t d;
} block_q6_K;
SLIM_BLOCK_ASSERT(block_q6_K, 2 + SLIM_QK_K / 16 + 3 * SLIM_QK_K / 4);

/* Activations for K-quant dot products: w = d*q; bsums[j] = sum of qs[16j..16j+15]. */
typedef struct {
    float d;
    int8_t qs[SLIM_QK_K];
    int16_t bsums[SLIM_QK_K / 16];
} block_q8_K;
SLIM_BLOCK_ASSERT(block_q8_K, 4 + SLIM_QK_K + SLIM_QK_K / 16 * 2);

#endif
