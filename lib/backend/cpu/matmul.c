/* CPU matmul: activations are converted once to the weight type's vec_dot
 * type, then each thread takes a contiguous range of weight rows and, for a
 * tile of rows, runs every token through it so the tile stays in cache.  With
 * two or more tokens, a format's gemm (register tiles of rows x tokens, each
 * output bitwise its vec_dot) does the tile. */
#include <string.h>

#include "backend/cpu/cpu.h"

enum { ROW_TILE = 16 };

typedef struct matmul_task {
    const slim_tensor *w;
    const char *xq;
    size_t xq_row;
    int64_t n_tokens;
    float *y;
    slim_vec_dot_fn dot;
    slim_gemm_fn gemm; /* NULL: one vec_dot per (row, token) */
} matmul_task;

static void matmul_worker(void *arg, int ith, int nth) {
    const matmul_task *t = arg;
    const int64_t n_rows = t->w->ne[1], n = t->w->ne[0];
    const int64_t r0 = n_rows * ith / nth, r1 = n_rows * (ith + 1) / nth;
    for (int64_t rt = r0; rt < r1; rt += ROW_TILE) {
        const int64_t rend = rt + ROW_TILE < r1 ? rt + ROW_TILE : r1;
        if (t->gemm) { /* bitwise the same floats as the vec_dot loop below */
            t->gemm(n, t->w->data, t->w->nb[1], rt, rend, t->xq, t->xq_row, t->n_tokens, t->y,
                    n_rows);
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

slim_status slim_cpu_matmul(const slim_exec *ex, int n_w, const slim_tensor *const *w,
                            const float *x, int64_t n_tokens, float *const *y) {
    slim_dtype converted = SLIM_DTYPE_COUNT; /* the vec_dot_type in the scratch, if any */
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
                for (int64_t tok = 0; tok < n_tokens; tok++)
                    vt->from_float(x + tok * n, xq + (size_t)tok * task.xq_row, n);
                converted = tr->vec_dot_type;
            }
            task.xq = xq;
        }
        slim_threadpool_run(ex->pool, matmul_worker, &task);
    }
    return SLIM_OK;
}

void slim_cpu_get_row(const slim_tensor *table, int64_t row, float *out) {
    const slim_dtype_traits *tr = slim_dtype_traits_of(table->type);
    tr->to_float(slim_tensor_row(table, row), out, table->ne[0]);
}
