/* The CPU backend's op table: the ops of cpu.h behind the backend.h
 * signatures; memory is malloc'd, steps need no setup or synchronisation.
 * In prefill, rmsnorm, rope and act_mul split rows (or elements) across the
 * pool; every row's or element's result is independent of the split. */
#include <stdlib.h>
#include <string.h>

#include "backend/cpu/cpu.h"
#include "backend/cpu/traits.h"
#include "quant/dtype.h"

static void get_rows(const slim_exec *ex, const slim_tensor *table, const int32_t *tokens,
                     int64_t n_tokens, float scale, float *out) {
    const int64_t n = table->ne[0];
    for (int64_t t = 0; t < n_tokens; t++) {
        slim_cpu_get_row(table, tokens[t], out + t * n);
        if (scale != 1.0f) slim_cpu_scale(out + t * n, scale, n);
    }
}

typedef struct rmsnorm_task {
    float *y;
    const float *x, *w;
    int64_t n, n_rows;
    float eps;
} rmsnorm_task;

static void rmsnorm_worker(void *arg, int ith, int nth) {
    const rmsnorm_task *t = arg;
    const int64_t r0 = t->n_rows * ith / nth, r1 = t->n_rows * (ith + 1) / nth;
    if (r1 > r0) slim_cpu_rmsnorm(t->y + r0 * t->n, t->x + r0 * t->n, t->w, t->n, r1 - r0, t->eps);
}

/* Rows split across the threads in prefill (each row's result is independent). */
static void rmsnorm(const slim_exec *ex, float *y, const float *x, const float *w, int64_t n,
                    int64_t n_rows, float eps) {
    rmsnorm_task t = {y, x, w, n, n_rows, eps};
    if (n_rows >= 8)
        slim_threadpool_run(ex->pool, rmsnorm_worker, &t);
    else
        slim_cpu_rmsnorm(y, x, w, n, n_rows, eps);
}

typedef struct rope_task {
    float *x;
    int64_t n_rows;
    const int32_t *pos;
    const slim_rope_args *r;
} rope_task;

static void rope_worker(void *arg, int ith, int nth) {
    const rope_task *t = arg;
    const int64_t r0 = t->n_rows * ith / nth, r1 = t->n_rows * (ith + 1) / nth;
    if (r1 > r0)
        slim_cpu_rope(t->x + r0 * t->r->n_heads * t->r->head_dim, r1 - r0, t->pos + r0, t->r);
}

/* Token rows split across the threads in prefill (each row's result is independent). */
static void rope(const slim_exec *ex, float *x, int64_t n_rows, const slim_rope_args *r) {
    rope_task t = {x, n_rows, ex->batch->pos, r};
    if (n_rows >= 8)
        slim_threadpool_run(ex->pool, rope_worker, &t);
    else
        slim_cpu_rope(x, n_rows, t.pos, r);
}

typedef struct act_task {
    float *g;
    const float *u;
    int64_t n;
    slim_act act;
} act_task;

static void act_worker(void *arg, int ith, int nth) {
    const act_task *t = arg;
    /* chunks of whole 64-float lines; the result does not depend on the split */
    const int64_t lines = (t->n + 63) / 64;
    const int64_t i0 = lines * ith / nth * 64, i1 = lines * (ith + 1) / nth * 64;
    const int64_t end = i1 < t->n ? i1 : t->n;
    if (i0 < end) slim_cpu_act_mul(t->g + i0, t->u + i0, end - i0, t->act);
}

static void act_mul(const slim_exec *ex, float *g, const float *u, int64_t n, slim_act act) {
    act_task t = {g, u, n, act};
    if (n < 4096) /* a decode step's few thousand: not worth waking the pool */
        slim_cpu_act_mul(g, u, n, act);
    else
        slim_threadpool_run(ex->pool, act_worker, &t);
}
static void add(const slim_exec *ex, float *y, const float *x, int64_t n) { slim_cpu_add(y, x, n); }
static void add_bias(const slim_exec *ex, float *y, const float *b, int64_t n, int64_t n_rows) {
    slim_cpu_add_bias(y, b, n, n_rows);
}
static void scale(const slim_exec *ex, float *y, float s, int64_t n) { slim_cpu_scale(y, s, n); }
static void softcap(const slim_exec *ex, float *y, float cap, int64_t n) {
    slim_cpu_softcap(y, cap, n);
}
static void kv_store(const slim_exec *ex, void *cache, const float *src, int64_t n_tokens,
                     int64_t width) {
    slim_cpu_kv_store(cache, ex->kv_f32, src, n_tokens, width, ex->batch->row);
}

static void gather_rows(const slim_exec *ex, float *dst, const float *src, const int32_t *idx,
                        int64_t n_idx, int64_t n) {
    for (int64_t i = 0; i < n_idx; i++)
        memcpy(dst + i * n, src + (int64_t)idx[i] * n, (size_t)n * sizeof(float));
}

static void scatter_add_rows(const slim_exec *ex, float *dst, const float *src, const int32_t *idx,
                             int64_t n_idx, int64_t n) {
    for (int64_t i = 0; i < n_idx; i++)
        slim_cpu_add(dst + (int64_t)idx[i] * n, src + i * n, n);
}

/* Every type with a dot product is a matmul weight; every type with a
 * to_float a table of rows. */
static bool supports(slim_dtype type, slim_weight_use use) {
    const slim_dtype_traits *tr = slim_cpu_traits_of(type);
    if (!tr) return false;
    return use == SLIM_USE_MATMUL ? tr->vec_dot != NULL : tr->to_float != NULL;
}

static void *host_alloc(size_t bytes) { return malloc(bytes ? bytes : 1); }
static void host_release(void *p) { free(p); }
static void copy(const slim_exec *ex, void *dst, const void *src, size_t bytes) {
    memmove(dst, src, bytes);
}
/* Quantized activations never take more than 4 bytes per element. */
static slim_status exec_init(slim_exec *ex, const slim_exec_shape *shape) {
    ex->scratch_size = (size_t)shape->n_batch * (size_t)shape->widest * sizeof(float);
    ex->scratch = malloc(ex->scratch_size ? ex->scratch_size : 1);
    if (!ex->scratch) {
        ex->scratch_size = 0;
        return slim_error(SLIM_ERR_NOMEM, "slim_context_create: out of memory for the scratch");
    }
    return SLIM_OK;
}
static void exec_free(slim_exec *ex) {
    free(ex->scratch);
    ex->scratch = NULL;
    ex->scratch_size = 0;
}
static slim_status begin(slim_exec *ex, const slim_batch *b) {
    ex->batch = b;
    return SLIM_OK;
}
static void download(const slim_exec *ex, float *host, const float *src, int64_t n) {
    if (host != src) memcpy(host, src, (size_t)n * sizeof(float));
}
static slim_status finish(const slim_exec *ex) { return SLIM_OK; }

static const slim_backend_ops cpu_ops = {
    .name = "cpu",
    .supports = supports,
    .prepare_weights = slim_cpu_prepare_weights,
    .matmul = slim_cpu_matmul,
    .get_rows = get_rows,
    .rmsnorm = rmsnorm,
    .rope = rope,
    .act_mul = act_mul,
    .add = add,
    .add_bias = add_bias,
    .scale = scale,
    .softcap = softcap,
    .kv_store = kv_store,
    .attention = slim_cpu_attention,
    .gather_rows = gather_rows,
    .scatter_add_rows = scatter_add_rows,
    .alloc = host_alloc,
    .release = host_release,
    .copy = copy,
    .alloc_host = host_alloc,
    .release_host = host_release,
    .exec_init = exec_init,
    .exec_free = exec_free,
    .begin = begin,
    .download = download,
    .finish = finish,
};

const slim_backend_ops *slim_backend_cpu(void) { return &cpu_ops; }
