/* The CUDA backend: the backend.h op table over the kernels of kernels/
 * (declared in kernels/kernels.h) and the CUDA runtime.  Plain C host code:
 * it never touches device memory, and links unchanged against libcudart on a
 * GPU machine or against the emulator's stand-in (tests/cudasim) in tests.
 *
 * Per context: one stream, device scratch for quantized activations and
 * attention partials, and the step's token ids and first position in device
 * memory (uploaded by begin()), so that the single-token step, recorded once
 * as a CUDA graph, is valid at every position when replayed.  A step of one
 * sequence over the identity block table (slim_context's API) runs those
 * kernels; any other step (many sequences, paged) also uploads each token's
 * position, sequence and KV row and the block tables, and runs the per-row
 * rope / kv_store and the paged attention kernel, eagerly.  Kernel launch
 * errors are kept (the first one) and reported by finish(). */
#include "backend/backend.h"

#ifndef SLIM_WITH_CUDA

slim_status slim_backend_cuda(const slim_backend_ops **out) {
    *out = NULL;
    return slim_error(
        SLIM_ERR_UNSUPPORTED,
        "backend cuda: this build of slim has no CUDA support (build with make GPU=1)");
}

#else

#include <cuda_runtime_api.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels.h"
#include "quant/dtype.h"

typedef struct cuda_state {
    cudaStream_t stream;
    void *xq; /* activations converted to a weight's vec_dot_type */
    size_t xq_bytes;
    void *attn_scratch;
    int32_t *d_step; /* device: [0] the first position, [1..] the token ids */
    int32_t *h_step; /* pinned host staging for d_step */
    int32_t n_batch;
    /* a paged step: device [pos | seq | row] of its tokens, block tables */
    bool paged;
    int32_t *d_rows, *h_rows; /* 3 * n_batch */
    int32_t *d_tab, *h_tab;   /* per sequence its table's offset, then the tables */
    size_t tab_cap;           /* int32s in d_tab / h_tab */
    int32_t *d_pos, *d_seq, *d_row, block_size;
    cudaGraphExec_t graph; /* the recorded single-token step, or NULL */
    bool capturing;
    int err; /* first error of the step (a cudaError_t), 0 if none */
    char err_op[48];
} cuda_state;

static cuda_state *state(const slim_exec *ex) { return ex->dev; }

/* Keeps the first failure of a step for finish(). */
static void note(const slim_exec *ex, int rc, const char *op) {
    cuda_state *s = state(ex);
    if (rc && !s->err) {
        s->err = rc;
        snprintf(s->err_op, sizeof s->err_op, "%s", op);
    }
}

static slim_status cuda_fail(cudaError_t e, const char *what) {
    return slim_error(SLIM_ERR_BACKEND, "cuda: %s failed: %s (%s)", what, cudaGetErrorString(e),
                      cudaGetErrorName(e));
}

/* ---------------------------------------------------------------- ops */

static slim_status matmul(const slim_exec *ex, int n_w, const slim_tensor *const *w, const float *x,
                          int64_t n_tokens, float *const *y) {
    cuda_state *s = state(ex);
    slim_dtype converted = SLIM_DTYPE_COUNT; /* the vec_dot_type in s->xq, if any */
    for (int i = 0; i < n_w; i++) {
        const slim_dtype_traits *tr = slim_dtype_traits_of(w[i]->type);
        if (!tr || !tr->vec_dot)
            return slim_error(SLIM_ERR_UNSUPPORTED,
                              "matmul: weight '%s' has type %s with no kernel", w[i]->name,
                              slim_dtype_name(w[i]->type));
        const int64_t n = w[i]->ne[0], rows = w[i]->ne[1];
        const void *xq = x;
        size_t xq_row = (size_t)n * sizeof(float);
        if (tr->vec_dot_type != SLIM_DTYPE_F32) {
            xq_row = slim_dtype_row_size(tr->vec_dot_type, n);
            if (xq_row == 0 || xq_row * (size_t)n_tokens > s->xq_bytes)
                return slim_error(SLIM_ERR_INTERNAL, "matmul: scratch too small for '%s'",
                                  w[i]->name);
            if (converted != tr->vec_dot_type) {
                note(ex,
                     slim_cuda_quantize_rows(tr->vec_dot_type, s->xq, xq_row, x, n, n_tokens,
                                             s->stream),
                     "quantize_rows");
                converted = tr->vec_dot_type;
            }
            xq = s->xq;
        }
        int rc;
        if (n_tokens == 1)
            rc =
                slim_cuda_matvec(w[i]->type, y[i], w[i]->data, w[i]->nb[1], xq, n, rows, s->stream);
        else
            rc = slim_cuda_gemm(w[i]->type, y[i], w[i]->data, w[i]->nb[1], xq, xq_row, n, rows,
                                n_tokens, s->stream);
        note(ex, rc, n_tokens == 1 ? "matvec" : "gemm");
    }
    return SLIM_OK;
}

static void get_rows(const slim_exec *ex, const slim_tensor *table, const int32_t *tokens,
                     int64_t n_tokens, float scale, float *out) {
    cuda_state *s = state(ex);
    note(ex,
         slim_cuda_get_rows(table->type, out, table->data, table->nb[1], table->ne[0],
                            s->d_step + 1, n_tokens, scale, s->stream),
         "get_rows");
}

static void rmsnorm(const slim_exec *ex, float *y, const float *x, const float *w, int64_t n,
                    int64_t n_rows, float eps) {
    note(ex, slim_cuda_rmsnorm(y, x, w, n, n_rows, eps, state(ex)->stream), "rmsnorm");
}

static void rope(const slim_exec *ex, float *x, int64_t n_rows, const slim_rope_args *r) {
    cuda_state *s = state(ex);
    note(ex,
         (s->paged ? slim_cuda_rope_rows : slim_cuda_rope)(
             x, n_rows, r->n_heads, r->head_dim, r->n_rot, s->paged ? s->d_pos : s->d_step,
             r->theta_base, r->freq_scale, r->mscale, r->freq_factors, r->neox, s->stream),
         "rope");
}

static void act_mul(const slim_exec *ex, float *g, const float *u, int64_t n, slim_act act) {
    note(ex, slim_cuda_act_mul(g, u, n, (int)act, state(ex)->stream), "act_mul");
}
static void add(const slim_exec *ex, float *y, const float *x, int64_t n) {
    note(ex, slim_cuda_add(y, x, n, state(ex)->stream), "add");
}
static void add_bias(const slim_exec *ex, float *y, const float *b, int64_t n, int64_t n_rows) {
    note(ex, slim_cuda_add_bias(y, b, n, n_rows, state(ex)->stream), "add_bias");
}
static void scale(const slim_exec *ex, float *y, float sc, int64_t n) {
    note(ex, slim_cuda_scale(y, sc, n, state(ex)->stream), "scale");
}
static void softcap(const slim_exec *ex, float *y, float cap, int64_t n) {
    note(ex, slim_cuda_softcap(y, cap, n, state(ex)->stream), "softcap");
}

static void kv_store(const slim_exec *ex, void *cache, const float *src, int64_t n_tokens,
                     int64_t width) {
    cuda_state *s = state(ex);
    if (s->paged)
        note(ex, slim_cuda_kv_store_rows(cache, src, n_tokens, width, s->d_row, s->stream),
             "kv_store");
    else
        note(ex, slim_cuda_kv_store(cache, src, n_tokens, width, s->d_step, s->stream), "kv_store");
}

static void attention(const slim_exec *ex, const slim_attn_args *a) {
    cuda_state *s = state(ex);
    if (s->paged) {
        note(ex,
             slim_cuda_attention_paged(a->out, a->q, a->k_cache, a->v_cache, a->n_tokens, s->d_pos,
                                       s->d_seq, s->d_tab, s->d_tab, s->block_size, a->n_head,
                                       a->n_head_kv, a->head_dim, a->window, a->softcap, s->stream),
             "attention_paged");
        return;
    }
    note(ex,
         slim_cuda_attention(a->out, a->q, a->k_cache, a->v_cache, a->n_tokens, s->d_step,
                             a->n_head, a->n_head_kv, a->head_dim, a->window, a->softcap, a->n_ctx,
                             s->attn_scratch, s->stream),
         "attention");
}

/* ---------------------------------------------------------------- memory */

static void *dev_alloc(size_t bytes) {
    void *p = NULL;
    return cudaMalloc(&p, bytes ? bytes : 1) == cudaSuccess ? p : NULL;
}
static void dev_release(void *p) {
    if (p) cudaFree(p);
}
static void dev_copy(const slim_exec *ex, void *dst, const void *src, size_t bytes) {
    note(ex, cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, state(ex)->stream), "copy");
}
static void *pinned_alloc(size_t bytes) {
    void *p = NULL;
    return cudaMallocHost(&p, bytes ? bytes : 1) == cudaSuccess ? p : NULL;
}
static void pinned_release(void *p) {
    if (p) cudaFreeHost(p);
}

static slim_status weights_upload(const void *host, size_t bytes, void **dev) {
    *dev = dev_alloc(bytes);
    if (!*dev)
        return slim_error(SLIM_ERR_NOMEM, "cuda: out of device memory for %zu bytes of weights",
                          bytes);
    cudaError_t e = cudaMemcpy(*dev, host, bytes, cudaMemcpyHostToDevice);
    if (e != cudaSuccess) {
        cudaFree(*dev);
        *dev = NULL;
        return cuda_fail(e, "copying the weights to the device");
    }
    return SLIM_OK;
}

static void exec_free(slim_exec *ex) {
    cuda_state *s = ex->dev;
    if (!s) return;
    if (s->graph) cudaGraphExecDestroy(s->graph);
    dev_release(s->xq);
    dev_release(s->attn_scratch);
    dev_release(s->d_step);
    pinned_release(s->h_step);
    dev_release(s->d_rows);
    pinned_release(s->h_rows);
    dev_release(s->d_tab);
    pinned_release(s->h_tab);
    if (s->stream) cudaStreamDestroy(s->stream);
    free(s);
    ex->dev = NULL;
}

static slim_status exec_init(slim_exec *ex, const slim_exec_shape *sh) {
    cuda_state *s = calloc(1, sizeof *s);
    if (!s) return slim_error(SLIM_ERR_NOMEM, "cuda: out of memory");
    ex->dev = s;
    cudaError_t e = cudaStreamCreateWithFlags(&s->stream, cudaStreamNonBlocking);
    if (e != cudaSuccess) {
        exec_free(ex);
        return cuda_fail(e, "creating a stream");
    }
    s->n_batch = sh->n_batch;
    /* Quantized activations never take more than 4 bytes per element. */
    s->xq_bytes = (size_t)sh->n_batch * (size_t)sh->widest * sizeof(float);
    s->xq = dev_alloc(s->xq_bytes);
    s->attn_scratch = dev_alloc(
        slim_cuda_attention_scratch_bytes(sh->n_batch, sh->n_head, sh->head_dim, sh->n_ctx));
    s->d_step = dev_alloc((size_t)(sh->n_batch + 1) * sizeof(int32_t));
    s->h_step = pinned_alloc((size_t)(sh->n_batch + 1) * sizeof(int32_t));
    s->d_rows = dev_alloc((size_t)sh->n_batch * 3 * sizeof(int32_t));
    s->h_rows = pinned_alloc((size_t)sh->n_batch * 3 * sizeof(int32_t));
    if (!s->xq || !s->attn_scratch || !s->d_step || !s->h_step || !s->d_rows || !s->h_rows) {
        exec_free(ex);
        return slim_error(SLIM_ERR_NOMEM, "cuda: out of device memory for a context's scratch");
    }
    return SLIM_OK;
}

/* ---------------------------------------------------------------- steps */

/* A paged step's rows and tables to the device (after the previous step's
 * finish(), so the staging buffers are free). */
static slim_status upload_paged(cuda_state *s, const slim_batch *b) {
    const int32_t n = b->n_tokens;
    size_t need = (size_t)b->n_seqs;
    for (int32_t i = 0; i < b->n_seqs; i++)
        need += (size_t)b->seqs[i].n_blocks;
    if (need > s->tab_cap) {
        dev_release(s->d_tab);
        pinned_release(s->h_tab);
        s->tab_cap = 2 * need;
        s->d_tab = dev_alloc(s->tab_cap * sizeof(int32_t));
        s->h_tab = pinned_alloc(s->tab_cap * sizeof(int32_t));
        if (!s->d_tab || !s->h_tab) {
            s->tab_cap = 0;
            return slim_error(SLIM_ERR_NOMEM, "cuda: out of memory for %zu block table entries",
                              need);
        }
    }
    size_t at = (size_t)b->n_seqs;
    for (int32_t i = 0; i < b->n_seqs; i++) {
        s->h_tab[i] = (int32_t)at;
        memcpy(s->h_tab + at, b->seqs[i].blocks, (size_t)b->seqs[i].n_blocks * sizeof(int32_t));
        at += (size_t)b->seqs[i].n_blocks;
    }
    memcpy(s->h_rows, b->pos, (size_t)n * sizeof(int32_t));
    memcpy(s->h_rows + n, b->seq, (size_t)n * sizeof(int32_t));
    memcpy(s->h_rows + 2 * n, b->row, (size_t)n * sizeof(int32_t));
    s->d_pos = s->d_rows;
    s->d_seq = s->d_rows + n;
    s->d_row = s->d_rows + 2 * n;
    s->block_size = b->block_size;
    cudaError_t e = cudaMemcpyAsync(s->d_rows, s->h_rows, (size_t)(3 * n) * sizeof(int32_t),
                                    cudaMemcpyHostToDevice, s->stream);
    if (e == cudaSuccess)
        e = cudaMemcpyAsync(s->d_tab, s->h_tab, at * sizeof(int32_t), cudaMemcpyHostToDevice,
                            s->stream);
    return e == cudaSuccess ? SLIM_OK : cuda_fail(e, "uploading the step's block tables");
}

static slim_status begin(slim_exec *ex, const slim_batch *b) {
    cuda_state *s = state(ex);
    const int32_t n_tokens = b->n_tokens;
    if (n_tokens > s->n_batch)
        return slim_error(SLIM_ERR_INTERNAL, "cuda: %d tokens in a step of at most %d", n_tokens,
                          s->n_batch);
    /* One sequence at consecutive positions over the identity table: the
     * single-sequence kernels (and the decode graph). */
    bool ident = true;
    for (int32_t t = 0; t < n_tokens; t++)
        ident = ident && b->seq[t] == b->seq[0] && b->pos[t] == b->pos[0] + t;
    const slim_batch_seq *q = &b->seqs[b->seq[0]];
    for (int32_t k = 0; ident && k <= b->pos[n_tokens - 1] / b->block_size; k++)
        ident = q->blocks[k] == k;
    ex->batch = b;
    s->err = 0;
    s->paged = !ident;
    s->h_step[0] = b->pos[0];
    memcpy(s->h_step + 1, b->tokens, (size_t)n_tokens * sizeof(int32_t));
    cudaError_t e = cudaMemcpyAsync(s->d_step, s->h_step, (size_t)(n_tokens + 1) * sizeof(int32_t),
                                    cudaMemcpyHostToDevice, s->stream);
    if (e != cudaSuccess) return cuda_fail(e, "uploading the step's tokens");
    return s->paged ? upload_paged(s, b) : SLIM_OK;
}

static void download(const slim_exec *ex, float *host, const float *src, int64_t n) {
    cuda_state *s = state(ex);
    note(ex,
         cudaMemcpyAsync(host, src, (size_t)n * sizeof(float), cudaMemcpyDeviceToHost, s->stream),
         "download");
}

static slim_status finish(const slim_exec *ex) {
    cuda_state *s = state(ex);
    cudaError_t e = cudaStreamSynchronize(s->stream);
    if (s->err)
        return slim_error(SLIM_ERR_BACKEND, "cuda: %s failed: %s", s->err_op,
                          cudaGetErrorString((cudaError_t)s->err));
    return e == cudaSuccess ? SLIM_OK : cuda_fail(e, "the step");
}

static bool graph_begin(const slim_exec *ex) {
    cuda_state *s = state(ex);
    if (s->paged) { /* recorded steps are identity-table ones: this one runs eagerly */
        s->capturing = false;
        return false;
    }
    if (s->graph) {
        note(ex, cudaGraphLaunch(s->graph, s->stream), "graph launch");
        return true;
    }
    s->capturing =
        cudaStreamBeginCapture(s->stream, cudaStreamCaptureModeThreadLocal) == cudaSuccess;
    return false;
}

static slim_status graph_end(const slim_exec *ex, bool ok) {
    cuda_state *s = state(ex);
    if (!s->capturing) return SLIM_OK; /* the ops ran eagerly */
    s->capturing = false;
    cudaGraph_t graph = NULL;
    cudaError_t e = cudaStreamEndCapture(s->stream, &graph);
    if (e != cudaSuccess) return cuda_fail(e, "recording the decode step");
    if (ok && !s->err) {
        e = cudaGraphInstantiate(&s->graph, graph, 0);
        if (e == cudaSuccess) e = cudaGraphLaunch(s->graph, s->stream);
    }
    cudaGraphDestroy(graph);
    return e == cudaSuccess ? SLIM_OK : cuda_fail(e, "replaying the decode step");
}

static const slim_backend_ops cuda_ops = {
    .name = "cuda",
    .matmul = matmul,
    .get_rows = get_rows,
    .rmsnorm = rmsnorm,
    .rope = rope,
    .act_mul = act_mul,
    .add = add,
    .add_bias = add_bias,
    .scale = scale,
    .softcap = softcap,
    .kv_store = kv_store,
    .attention = attention,
    .alloc = dev_alloc,
    .release = dev_release,
    .copy = dev_copy,
    .alloc_host = pinned_alloc,
    .release_host = pinned_release,
    .exec_init = exec_init,
    .exec_free = exec_free,
    .begin = begin,
    .download = download,
    .finish = finish,
    .graph_begin = graph_begin,
    .graph_end = graph_end,
    .weights_upload = weights_upload,
    .weights_free = dev_release,
};

slim_status slim_backend_cuda(const slim_backend_ops **out) {
    *out = NULL;
    int n = 0;
    cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess)
        return slim_error(SLIM_ERR_BACKEND, "backend cuda: no usable GPU: %s (%s)",
                          cudaGetErrorString(e), cudaGetErrorName(e));
    if (n < 1) return slim_error(SLIM_ERR_BACKEND, "backend cuda: no CUDA device present");
    if ((e = cudaSetDevice(0)) != cudaSuccess) return cuda_fail(e, "selecting device 0");
    *out = &cuda_ops;
    return SLIM_OK;
}

#endif
