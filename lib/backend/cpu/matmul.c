/* CPU matmul: activations are converted once to the weight type's vec_dot
 * type (tokens split across the threads), then each thread takes a contiguous range of weight rows
 * and, for a tile of rows, runs every token through it so the tile stays in cache.  With two or
 * more tokens, a format's gemm (register tiles of rows x tokens, each output bitwise its vec_dot)
 * does the tile.  Weights repacked at load (slim_tensor.packed) go to their own kernel, for one
 * token and many alike. */
#include <string.h>

#include "backend/cpu/cpu.h"
#include "quant/blocks.h"
#include "quant/dtype.h"
#include "quant/half_x64.h"
#include "quant/legacy_x16.h"
#include "quant/q4_k_x16.h"
#include "quant/q6_k_x16.h"

enum { ROW_TILE = 16 };

typedef struct matmul_task {
    const slim_tensor *w;
    const char *xq;
    size_t xq_row;
    int64_t n_tokens;
    float *y;
    slim_vec_dot_fn dot;
    slim_gemm_fn gemm; /* NULL: one vec_dot per (row, token) */
    char *work;        /* per-thread gemm work areas (unpacked rows), or NULL */
    size_t work_size;  /* bytes per thread, a multiple of 64 */
} matmul_task;

static void matmul_worker(void *arg, int ith, int nth) {
    const matmul_task *t = arg;
    const int64_t n_rows = t->w->ne[1], n = t->w->ne[0];
    const int64_t r0 = n_rows * ith / nth, r1 = n_rows * (ith + 1) / nth;
    for (int64_t rt = r0; rt < r1; rt += ROW_TILE) {
        const int64_t rend = rt + ROW_TILE < r1 ? rt + ROW_TILE : r1;
        if (t->gemm) { /* bitwise the same floats as the vec_dot loop below */
            t->gemm(n, t->w->data, t->w->nb[1], rt, rend, t->xq, t->xq_row, t->n_tokens, t->y,
                    n_rows, t->work ? t->work + (size_t)ith * t->work_size : NULL, t->work_size);
            continue;
        }
        for (int64_t tok = 0; tok < t->n_tokens; tok++) {
            const void *x = t->xq + (size_t)tok * t->xq_row;
            float *y = t->y + tok * n_rows;
            for (int64_t r = rt; r < rend; r++)
                y[r] = t->dot(n, slim_tensor_row(t->w, r), x);
        }
    }
}

typedef struct packed_task {
    const slim_tensor *w;
    const char *xq;
    size_t xq_row;
    const void *xsum; /* Q4_0, Q8_0: slim_q4_0x16_prep's; Q4_K: int16 sums; else NULL */
    int64_t n_tokens;
    float *y;
} packed_task;

/* Groups of rows split across the threads; each group runs every token. */
static void packed_worker(void *arg, int ith, int nth) {
    const packed_task *t = arg;
    const slim_tensor *w = t->w;
    const int64_t n = w->ne[0], rows = w->ne[1];
    const int64_t groups =
        rows /
        (w->type == SLIM_DTYPE_F16 || w->type == SLIM_DTYPE_BF16 ? SLIM_X64_ROWS : SLIM_X16_ROWS);
    const int64_t g0 = groups * ith / nth, g1 = groups * (ith + 1) / nth;
    switch (w->type) {
    case SLIM_DTYPE_Q4_0:
        slim_q4_0x16_gemm(n, w->packed, g0, g1, t->xsum, t->n_tokens, t->y, rows);
        break;
    case SLIM_DTYPE_Q8_0:
        slim_q8_0x16_gemm(n, w->packed, g0, g1, t->xsum, t->n_tokens, t->y, rows);
        break;
    case SLIM_DTYPE_Q4_K:
        slim_q4_kx16_gemm(n, w->packed, g0, g1, t->xq, t->xq_row, (const int16_t *)t->xsum,
                          t->n_tokens, t->y, rows);
        break;
    case SLIM_DTYPE_Q6_K:
        slim_q6_kx16_gemm(n, w->packed, g0, g1, t->xq, t->xq_row, t->n_tokens, t->y, rows);
        break;
    default: /* F16, BF16: F32 activations */
        slim_half_x64_gemm(w->type == SLIM_DTYPE_BF16, n, w->packed, g0, g1, (const float *)t->xq,
                           t->xq_row / sizeof(float), t->n_tokens, t->y, rows);
        break;
    }
}

typedef void (*from_float_fn)(const float *src, void *dst, int64_t n);

typedef struct quantize_task {
    from_float_fn from_float;
    const float *x;
    int64_t n, n_tokens;
    char *xq;
    size_t xq_row;
} quantize_task;

/* Tokens split across the threads: each row's conversion is independent. */
static void quantize_worker(void *arg, int ith, int nth) {
    const quantize_task *q = arg;
    const int64_t t0 = q->n_tokens * ith / nth, t1 = q->n_tokens * (ith + 1) / nth;
    for (int64_t tok = t0; tok < t1; tok++)
        q->from_float(q->x + tok * q->n, q->xq + (size_t)tok * q->xq_row, q->n);
}

typedef struct prep_task {
    int64_t n, n_tokens;
    const char *xq;
    size_t xq_row;
    char *xp;
} prep_task;

/* Q4_0/Q8_0 activations prepared for the repacked kernels: whole token tiles
 * split across the threads (a tile's layout starts at its first token). */
static void prep_worker(void *arg, int ith, int nth) {
    const prep_task *p = arg;
    const int64_t tiles = (p->n_tokens + SLIM_X16_TOKENS - 1) / SLIM_X16_TOKENS;
    const int64_t t0 = tiles * ith / nth * SLIM_X16_TOKENS,
                  t1 = tiles * (ith + 1) / nth * SLIM_X16_TOKENS;
    const int64_t end = t1 < p->n_tokens ? t1 : p->n_tokens;
    if (end > t0)
        slim_q4_0x16_prep(p->n, p->xq + (size_t)t0 * p->xq_row, p->xq_row, end - t0,
                          p->xp + slim_q4_0x16_prep_size(p->n, t0));
}

slim_status slim_cpu_matmul(const slim_exec *ex, int n_w, const slim_tensor *const *w,
                            const float *x, int64_t n_tokens, float *const *y) {
    slim_dtype converted = SLIM_DTYPE_COUNT; /* the vec_dot_type in the scratch, if any */
    size_t held = 0;         /* bytes of converted activations at the start of the scratch */
    const void *xsum = NULL; /* for packed weights, past them: their sums or prepared copy */
    for (int i = 0; i < n_w; i++) {
        const slim_dtype_traits *tr = slim_dtype_traits_of(w[i]->type);
        if (!tr || !tr->vec_dot)
            return slim_error(SLIM_ERR_UNSUPPORTED,
                              "matmul: weight '%s' has type %s with no dot product", w[i]->name,
                              slim_dtype_name(w[i]->type));
        const int64_t n = w[i]->ne[0];
        matmul_task task = {.w = w[i],
                            .n_tokens = n_tokens,
                            .y = y[i],
                            .dot = tr->vec_dot,
                            .gemm = n_tokens >= 2 ? tr->gemm : NULL};
        if (tr->vec_dot_type == SLIM_DTYPE_F32) {
            task.xq = (const char *)x;
            task.xq_row = (size_t)n * sizeof(float);
        } else {
            task.xq_row = slim_dtype_row_size(tr->vec_dot_type, n);
            if (task.xq_row == 0 || task.xq_row * (size_t)n_tokens > ex->scratch_size)
                return slim_error(SLIM_ERR_INTERNAL, "matmul: scratch too small for '%s'",
                                  w[i]->name);
            char *xq = ex->scratch;
            if (converted != tr->vec_dot_type) {
                const slim_dtype_traits *vt = slim_dtype_traits_of(tr->vec_dot_type);
                quantize_task q = {vt->from_float, x, n, n_tokens, xq, task.xq_row};
                if (n_tokens >= 2)
                    slim_threadpool_run(ex->pool, quantize_worker, &q);
                else
                    quantize_worker(&q, 0, 1);
                converted = tr->vec_dot_type;
                held = task.xq_row * (size_t)n_tokens;
                xsum = NULL;
            }
            task.xq = xq;
        }
        if (w[i]->packed && (w[i]->type == SLIM_DTYPE_Q4_0 || w[i]->type == SLIM_DTYPE_Q8_0 ||
                             w[i]->type == SLIM_DTYPE_Q4_K)) {
            /* Q4_K: one int16 of activation sums per 32 elements; Q4_0 and Q8_0: the
             * activations copied as their kernel reads them */
            const size_t sums = w[i]->type == SLIM_DTYPE_Q4_K
                                    ? (size_t)(n / 32) * (size_t)n_tokens * sizeof(int16_t)
                                    : slim_q4_0x16_prep_size(n, n_tokens);
            const size_t at = (held + 63) & ~(size_t)63;
            if (at + sums > ex->scratch_size)
                return slim_error(SLIM_ERR_INTERNAL, "matmul: scratch too small for '%s'",
                                  w[i]->name);
            if (!xsum) {
                void *s = (char *)ex->scratch + at;
                /* Q4_0 and Q8_0 share theirs (the same Q8_0 activations) */
                if (w[i]->type == SLIM_DTYPE_Q4_K)
                    slim_q4_kx16_xsum(n, task.xq, task.xq_row, n_tokens, s);
                else if (n_tokens > SLIM_X16_TOKENS) {
                    prep_task pp = {n, n_tokens, task.xq, task.xq_row, s};
                    slim_threadpool_run(ex->pool, prep_worker, &pp);
                } else
                    slim_q4_0x16_prep(n, task.xq, task.xq_row, n_tokens, s);
                xsum = s;
                held = at + sums; /* kept from the gemm work areas below */
            }
            packed_task pt = {w[i], task.xq, task.xq_row, xsum, n_tokens, y[i]};
            slim_threadpool_run(ex->pool, packed_worker, &pt);
            continue;
        }
        if (w[i]->packed) { /* Q6_K (no sums: Q8_K's bsums serve), F16, BF16 */
            packed_task pt = {w[i], task.xq, task.xq_row, NULL, n_tokens, y[i]};
            slim_threadpool_run(ex->pool, packed_worker, &pt);
            continue;
        }
        /* the scratch past the activations: each thread's gemm work area */
        if (task.gemm && ex->scratch) {
            /* past the converted activations, which later weights may reuse */
            const uintptr_t lo = ((uintptr_t)ex->scratch + held + 63) & ~(uintptr_t)63;
            const uintptr_t hi = (uintptr_t)ex->scratch + ex->scratch_size;
            const int nth = slim_threadpool_size(ex->pool);
            if (hi > lo) {
                task.work_size = (size_t)(hi - lo) / (size_t)nth & ~(size_t)63;
                task.work = task.work_size ? (char *)lo : NULL;
            }
        }
        slim_threadpool_run(ex->pool, matmul_worker, &task);
    }
    return SLIM_OK;
}

void slim_cpu_get_row(const slim_tensor *table, int64_t row, float *out) {
    const slim_dtype_traits *tr = slim_dtype_traits_of(table->type);
    tr->to_float(slim_tensor_row(table, row), out, table->ne[0]);
}
