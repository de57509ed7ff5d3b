/* The loops over register tiles that every format's multi-token kernel
 * (traits.gemm) shares.  The including file defines GEMM_R and GEMM_C (the
 * tile's rows and tokens) and a tile function
 *   tile(nb, w_rows, w_stride, x, x_stride, nr, nc, y, ldy)
 * then instantiates DEFINE_GEMM(name, tile, block_size). */
#ifndef SLIM_QUANT_GEMM_TILE_H
#define SLIM_QUANT_GEMM_TILE_H

/* The loops over tiles: tokens in groups of GEMM_C,
 * rows in groups of GEMM_R (the caller's row range is small enough to stay in
 * cache while every token passes); a last partial group of tokens goes one
 * token at a time.  Each tile size is its own inlined copy. */
#define GEMM_TILE_ROWS(tile, NC, xt_, yt_)                                                         \
    switch (nr) {                                                                                  \
    case 4: tile(nb, wr, ws, xt_, xs, 4, NC, yt_, ldy); break;                                     \
    case 3: tile(nb, wr, ws, xt_, xs, 3, NC, yt_, ldy); break;                                     \
    case 2: tile(nb, wr, ws, xt_, xs, 2, NC, yt_, ldy); break;                                     \
    default: tile(nb, wr, ws, xt_, xs, 1, NC, yt_, ldy); break;                                    \
    }

#define DEFINE_GEMM(name, tile, QK)                                                                \
    static void name(int64_t n, const void *w, size_t ws, int64_t r0, int64_t r1, const void *x,   \
                     size_t xs, int64_t n_tokens, float *y, int64_t ldy, void *work,               \
                     size_t work_size) {                                                           \
        const int64_t nb = n / (QK);                                                               \
        for (int64_t t = 0; t < n_tokens; t += GEMM_C) {                                           \
            const int nc = n_tokens - t < GEMM_C ? (int)(n_tokens - t) : GEMM_C;                   \
            const char *xt = (const char *)x + (size_t)t * xs;                                     \
            for (int64_t r = r0; r < r1; r += GEMM_R) {                                            \
                const int nr = r1 - r < GEMM_R ? (int)(r1 - r) : GEMM_R;                           \
                const char *wr = (const char *)w + (size_t)r * ws;                                 \
                float *yt = y + t * ldy + r;                                                       \
                if (nc == GEMM_C) {                                                                \
                    GEMM_TILE_ROWS(tile, GEMM_C, xt, yt)                                           \
                } else {                                                                           \
                    for (int c = 0; c < nc; c++) {                                                 \
                        GEMM_TILE_ROWS(tile, 1, xt + (size_t)c * xs, yt + c * ldy)                 \
                    }                                                                              \
                }                                                                                  \
            }                                                                                      \
        }                                                                                          \
    }

#endif
