/* CPU matmul: activations are converted once to the weight type's vec_dot
 * type (tokens split across the threads), then each thread takes a contiguous range of weight rows
 * and, for a tile of rows, runs every token through it so the tile stays in cache.  With two or
 * more tokens, a format's gemm (register tiles of rows x tokens, each output bitwise its vec_dot)
 * does the tile.  Weights repacked at load (slim_tensor.packed) go to their own kernel, for one
 * token and many alike. */
#include <string.h>

#include "backend/cpu/cpu.h"
#include "backend/cpu/traits.h"
#include "quant/blocks.h"
#include "quant/dtype.h"

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
    const void *prep; /* the format's prepared activations, or NULL */
    int64_t n_tokens;
    float *y;
    char *work;       /* the format's work area for each part, or NULL */
    size_t work_size; /* bytes per part, at least the format's work_bytes */
} packed_task;

/* Groups of rows split across the threads; each group runs every token. */
static void packed_worker(void *arg, int ith, int nth) {
    const packed_task *t = arg;
    const slim_tensor *w = t->w;
    const slim_cpu_packed_format *f = slim_cpu_packed_format_of(w->type);
    const int64_t n = w->ne[0], rows = w->ne[1], groups = rows / f->rows;
    const int64_t g0 = groups * ith / nth, g1 = groups * (ith + 1) / nth;
    f->gemm(n, w->packed, g0, g1, t->xq, t->xq_row, t->prep, t->n_tokens, t->y, rows,
            t->work ? t->work + (size_t)ith * t->work_size : NULL);
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

/* Weights that share the converted activations (q, k, v; gate, up) run in one pool run: each part
 * does its share of every weight, one after another.  A row's result does not depend on the split,
 * so this is bitwise the same as a run per weight, with one barrier instead of two or three. */
enum { MAX_FUSED = 4 };

typedef struct fused_task {
    int n;
    slim_task_fn fn[MAX_FUSED];
    void *arg[MAX_FUSED];
    matmul_task mt[MAX_FUSED];
    packed_task pt[MAX_FUSED];
} fused_task;

static void fused_worker(void *arg, int ith, int nth) {
    const fused_task *f = arg;
    for (int j = 0; j < f->n; j++)
        f->fn[j](f->arg[j], ith, nth);
}

/* The scratch past its first `held` bytes (the activations, which later weights may reuse) as
 * one work area per thread of at least `want` bytes, 64-byte aligned; NULL when it is too small. */
static char *work_areas(const slim_exec *ex, size_t held, size_t want, size_t *each) {
    *each = 0;
    if (!ex->scratch) return NULL;
    const uintptr_t lo = ((uintptr_t)ex->scratch + held + 63) & ~(uintptr_t)63;
    const uintptr_t hi = (uintptr_t)ex->scratch + ex->scratch_size;
    const size_t nth = (size_t)slim_threadpool_size(ex->pool);
    if (hi <= lo) return NULL;
    const size_t size = (size_t)(hi - lo) / nth & ~(size_t)63;
    if (!size || size < want) return NULL;
    *each = size;
    return (char *)lo;
}

/* Run what is queued; done before the scratch under it changes. */
static void flush(const slim_exec *ex, fused_task *f) {
    if (f->n == 1)
        slim_threadpool_run(ex->pool, f->fn[0], f->arg[0]);
    else if (f->n > 1)
        slim_threadpool_run(ex->pool, fused_worker, f);
    f->n = 0;
}

static void queue_packed(const slim_exec *ex, fused_task *f, packed_task pt) {
    if (f->n == MAX_FUSED) flush(ex, f);
    f->pt[f->n] = pt;
    f->fn[f->n] = packed_worker;
    f->arg[f->n] = &f->pt[f->n];
    f->n++;
}

typedef struct prep_task {
    const slim_cpu_packed_format *f;
    int64_t n, n_tokens;
    const char *xq;
    size_t xq_row;
    char *xp;
} prep_task;

/* The activations prepared for a repacked kernel: whole token tiles split
 * across the threads (a tile's layout starts at its first token). */
static void prep_worker(void *arg, int ith, int nth) {
    const prep_task *p = arg;
    const int64_t tile = p->f->prep_tile, tiles = (p->n_tokens + tile - 1) / tile;
    const int64_t t0 = tiles * ith / nth * tile, t1 = tiles * (ith + 1) / nth * tile;
    const int64_t end = t1 < p->n_tokens ? t1 : p->n_tokens;
    if (end > t0)
        p->f->prep(p->n, p->xq + (size_t)t0 * p->xq_row, p->xq_row, end - t0,
                   p->xp + p->f->prep_size(p->n, t0));
}

slim_status slim_cpu_matmul(const slim_exec *ex, int n_w, const slim_tensor *const *w,
                            const float *x, int64_t n_tokens, float *const *y) {
    fused_task f = {0};
    slim_dtype converted = SLIM_DTYPE_COUNT; /* the vec_dot_type in the scratch, if any */
    size_t held = 0; /* bytes of converted activations at the start of the scratch */
    /* for packed weights, past them: the activations as their kernel reads them, and the
     * function that made them */
    const void *prep = NULL;
    void (*prep_of)(int64_t, const void *, size_t, int64_t, void *) = NULL;
    for (int i = 0; i < n_w; i++) {
        const slim_dtype_traits *tr = slim_cpu_traits_of(w[i]->type);
        if (!tr || !tr->vec_dot) {
            flush(ex, &f);
            return slim_error(SLIM_ERR_UNSUPPORTED,
                              "matmul: weight '%s' has type %s with no dot product", w[i]->name,
                              slim_dtype_name(w[i]->type));
        }
        const int64_t n = w[i]->ne[0];
        matmul_task task = {.w = w[i],
                            .n_tokens = n_tokens,
                            .y = y[i],
                            .dot = tr->vec_dot,
                            /* Q4_1 at one token too: its tiles of 4 rows keep 4
                               accumulator chains in flight where vec_dot keeps one */
                            .gemm =
                                n_tokens >= 2 || w[i]->type == SLIM_DTYPE_Q4_1 ? tr->gemm : NULL};
        if (tr->vec_dot_type == SLIM_DTYPE_F32) {
            task.xq = (const char *)x;
            task.xq_row = (size_t)n * sizeof(float);
        } else {
            task.xq_row = slim_dtype_row_size(tr->vec_dot_type, n);
            if (task.xq_row == 0 || task.xq_row * (size_t)n_tokens > ex->scratch_size) {
                flush(ex, &f);
                return slim_error(SLIM_ERR_INTERNAL, "matmul: scratch too small for '%s'",
                                  w[i]->name);
            }
            char *xq = ex->scratch;
            if (converted != tr->vec_dot_type) {
                flush(ex, &f); /* the queued weights read the activations this overwrites */
                const slim_dtype_traits *vt = slim_cpu_traits_of(tr->vec_dot_type);
                quantize_task q = {vt->from_float, x, n, n_tokens, xq, task.xq_row};
                if (n_tokens >= 2)
                    slim_threadpool_run(ex->pool, quantize_worker, &q);
                else
                    quantize_worker(&q, 0, 1);
                converted = tr->vec_dot_type;
                held = task.xq_row * (size_t)n_tokens;
                prep_of = NULL;
            }
            task.xq = xq;
        }
        if (w[i]->packed) {
            const slim_cpu_packed_format *pf = slim_cpu_packed_format_of(w[i]->type);
            if (pf->prep && prep_of != pf->prep) {
                /* kept while the activations are (Q4_0 and Q8_0 share theirs) */
                const size_t bytes = pf->prep_size(n, n_tokens);
                const size_t at = (held + 63) & ~(size_t)63;
                if (at + bytes > ex->scratch_size) {
                    flush(ex, &f);
                    return slim_error(SLIM_ERR_INTERNAL, "matmul: scratch too small for '%s'",
                                      w[i]->name);
                }
                flush(ex, &f); /* a queued gemm's work area may lie where this goes */
                char *s = (char *)ex->scratch + at;
                if (pf->prep_tile && n_tokens > pf->prep_tile) {
                    prep_task pp = {pf, n, n_tokens, task.xq, task.xq_row, s};
                    slim_threadpool_run(ex->pool, prep_worker, &pp);
                } else
                    pf->prep(n, task.xq, task.xq_row, n_tokens, s);
                prep_of = pf->prep;
                prep = s;
                held = at + bytes; /* kept from the gemm work areas below */
            }
            size_t each = 0;
            char *work = pf->work_bytes && n_tokens >= 2
                             ? work_areas(ex, held, pf->work_bytes, &each)
                             : NULL;
            queue_packed(ex, &f,
                         (packed_task){w[i], task.xq, task.xq_row, pf->prep ? prep : NULL, n_tokens,
                                       y[i], work, each});
            continue;
        }
        if (task.gemm) task.work = work_areas(ex, held, 1, &task.work_size);
        if (f.n == MAX_FUSED) flush(ex, &f);
        f.mt[f.n] = task;
        f.fn[f.n] = matmul_worker;
        f.arg[f.n] = &f.mt[f.n];
        f.n++;
    }
    flush(ex, &f);
    return SLIM_OK;
}

void slim_cpu_get_row(const slim_tensor *table, int64_t row, float *out) {
    const slim_dtype_traits *tr = slim_cpu_traits_of(table->type);
    tr->to_float(slim_tensor_row(table, row), out, table->ne[0]);
}
