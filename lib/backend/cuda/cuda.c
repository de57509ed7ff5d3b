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
 * position, sequence and KV row and the block tables (at fixed device
 * addresses), and runs the per-row rope / kv_store and the paged attention
 * kernel.  A paged step of single-token decodes is padded to its batch-size
 * bucket (1, 2, 4, 8, 16, 32) and recorded once per bucket as a CUDA graph,
 * then replayed with the new step description uploaded first.
 *
 * Invariant mode (SLIM_CUDA_INVARIANT=1 when the context is created): every
 * step takes the paged kernels and every matmul the GEMM kernel, even at one
 * token, so a sequence's logits are bitwise the same whatever else is in its
 * step (docs/CUDA.md).  SLIM_CUDA_GRAPHS=0 runs every step eagerly (for A/B
 * checks of the recordings).  Kernel launch errors are kept (the first one) and
 * reported by finish(). */
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

/* kernels.h's act ids are backend.h's slim_act values (act_mul passes them on). */
_Static_assert(SLIM_CUDA_ACT_GELU_TANH == (int)SLIM_ACT_GELU_TANH &&
                   SLIM_CUDA_ACT_SILU == (int)SLIM_ACT_SILU,
               "kernels.h act ids are slim_act's");

/* Batch-size buckets of the recorded paged decode steps (capped by n_batch). */
enum { SLIM_CUDA_BUCKETS = 6 };
static const int32_t bucket_sizes[SLIM_CUDA_BUCKETS] = {1, 2, 4, 8, 16, 32};

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
    int32_t n_ctx;
    bool invariant;   /* SLIM_CUDA_INVARIANT: paged kernels and GEMM for every step */
    bool no_graphs;   /* SLIM_CUDA_GRAPHS=0: every step runs eagerly (A/B checks) */
    void *pa_scratch; /* the paged attention's chunk partials */
    int32_t pa_split; /* steps of up to this many tokens take the split (chunked) launch */
    /* LoRA row indices (host idx of gather/scatter) uploaded this step */
    int32_t *d_idx, *h_idx;
    int32_t idx_cap, idx_used;
    cudaGraphExec_t graph; /* the recorded single-token step, or NULL */
    /* paged decode steps recorded per bucket, their logits' host memory */
    cudaGraphExec_t bucket_graph[SLIM_CUDA_BUCKETS];
    float *bucket_logits[SLIM_CUDA_BUCKETS];
    int32_t bucket;      /* this step's bucket index, -1: none */
    int32_t bucket_rows; /* its rows (the step padded) */
    bool via_rows;       /* graph_logits gave this step its logits buffer */
    bool in_step;        /* begin() done, finish() not yet */
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

static void *dev_alloc(size_t bytes);
static void dev_release(void *p);
static void *pinned_alloc(size_t bytes);
static void pinned_release(void *p);

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
        /* Up to 8 tokens the mat-vec (each token bitwise its one-token
         * result); more, or any step in the invariant mode, the GEMM. */
        int rc = -1;
        if (n_tokens <= 8 && !s->invariant)
            rc = slim_cuda_matvec_tokens(w[i]->type, y[i], w[i]->data, w[i]->nb[1], xq, xq_row, n,
                                         rows, n_tokens, s->stream);
        if (rc == -1 || rc == (int)cudaErrorInvalidValue) /* shapes the mat-vec rejects: the GEMM */
            rc = slim_cuda_gemm(w[i]->type, y[i], w[i]->data, w[i]->nb[1], xq, xq_row, n, rows,
                                n_tokens, s->stream);
        note(ex, rc, "matmul");
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
                                       a->n_head_kv, a->head_dim, a->window, a->softcap, s->n_ctx,
                                       a->n_tokens <= s->pa_split ? s->pa_scratch : NULL,
                                       s->stream),
             "attention_paged");
        return;
    }
    note(ex,
         slim_cuda_attention(a->out, a->q, a->k_cache, a->v_cache, a->n_tokens, s->d_step,
                             a->n_head, a->n_head_kv, a->head_dim, a->window, a->softcap, a->n_ctx,
                             s->attn_scratch, s->stream),
         "attention");
}

/* The device copy of a host index array (gather / scatter rows): uploads of
 * this step are reused when the same indices come again (lora.c passes each
 * adapter's rows at every site), else appended; a full staging area waits
 * for the stream (never while recording: LoRA steps are not recorded). */
static const int32_t *upload_idx(const slim_exec *ex, const int32_t *idx, int64_t n) {
    cuda_state *s = state(ex);
    for (int32_t at = 0; at < s->idx_used; at += 1 + s->h_idx[at])
        if (s->h_idx[at] == n && !memcmp(s->h_idx + at + 1, idx, (size_t)n * sizeof(int32_t)))
            return s->d_idx + at + 1;
    if (s->capturing) {
        note(ex, (int)cudaErrorStreamCaptureUnsupported, "gather_rows (recording)");
        return NULL;
    }
    if (s->idx_used + 1 + n > s->idx_cap) {
        note(ex, (int)cudaStreamSynchronize(s->stream), "gather_rows (sync)");
        s->idx_used = 0;
        if (1 + n > s->idx_cap) {
            dev_release(s->d_idx);
            pinned_release(s->h_idx);
            s->idx_cap = (int32_t)(2 * (1 + n));
            s->d_idx = dev_alloc((size_t)s->idx_cap * sizeof(int32_t));
            s->h_idx = pinned_alloc((size_t)s->idx_cap * sizeof(int32_t));
            if (!s->d_idx || !s->h_idx) {
                s->idx_cap = 0;
                note(ex, (int)cudaErrorMemoryAllocation, "gather_rows (indices)");
                return NULL;
            }
        }
    }
    int32_t *h = s->h_idx + s->idx_used;
    h[0] = (int32_t)n;
    memcpy(h + 1, idx, (size_t)n * sizeof(int32_t));
    int32_t *d = s->d_idx + s->idx_used;
    s->idx_used += (int32_t)(1 + n);
    note(ex,
         cudaMemcpyAsync(d + 1, h + 1, (size_t)n * sizeof(int32_t), cudaMemcpyHostToDevice,
                         s->stream),
         "gather_rows (upload)");
    return d + 1;
}

static void gather_rows(const slim_exec *ex, float *dst, const float *src, const int32_t *idx,
                        int64_t n_idx, int64_t n) {
    cuda_state *s = state(ex);
    /* consecutive rows (a decode step's logits rows): a plain copy, fine in a graph */
    bool run = n_idx > 0;
    for (int64_t i = 1; run && i < n_idx; i++)
        run = idx[i] == idx[0] + i;
    if (run || n_idx == 0) {
        if (run)
            note(ex,
                 cudaMemcpyAsync(dst, src + (int64_t)idx[0] * n,
                                 (size_t)(n_idx * n) * sizeof(float), cudaMemcpyDeviceToDevice,
                                 s->stream),
                 "gather_rows");
        return;
    }
    const int32_t *d = upload_idx(ex, idx, n_idx);
    if (d) note(ex, slim_cuda_gather_rows(dst, src, d, n_idx, n, s->stream), "gather_rows");
}

static void scatter_add_rows(const slim_exec *ex, float *dst, const float *src, const int32_t *idx,
                             int64_t n_idx, int64_t n) {
    cuda_state *s = state(ex);
    const int32_t *d = upload_idx(ex, idx, n_idx);
    if (d)
        note(ex, slim_cuda_scatter_add_rows(dst, src, d, n_idx, n, s->stream), "scatter_add_rows");
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

static void drop_bucket_graphs(cuda_state *s) {
    for (int i = 0; i < SLIM_CUDA_BUCKETS; i++)
        if (s->bucket_graph[i]) {
            cudaGraphExecDestroy(s->bucket_graph[i]);
            s->bucket_graph[i] = NULL;
        }
}

static void exec_free(slim_exec *ex) {
    cuda_state *s = ex->dev;
    if (!s) return;
    if (s->graph) cudaGraphExecDestroy(s->graph);
    drop_bucket_graphs(s);
    for (int i = 0; i < SLIM_CUDA_BUCKETS; i++)
        pinned_release(s->bucket_logits[i]);
    dev_release(s->pa_scratch);
    dev_release(s->d_idx);
    pinned_release(s->h_idx);
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
    s->n_ctx = sh->n_ctx;
    s->bucket = -1;
    const char *inv = getenv("SLIM_CUDA_INVARIANT");
    s->invariant = inv && *inv && strcmp(inv, "0") != 0;
    const char *gr = getenv("SLIM_CUDA_GRAPHS");
    s->no_graphs = gr && strcmp(gr, "0") == 0;
    /* Decode-sized steps split the keys over blocks; larger ones have blocks enough. */
    s->pa_split = sh->n_batch < 64 ? sh->n_batch : 64;
    /* Quantized activations never take more than 4 bytes per element. */
    s->xq_bytes = (size_t)sh->n_batch * (size_t)sh->widest * sizeof(float);
    s->xq = dev_alloc(s->xq_bytes);
    s->attn_scratch = dev_alloc(
        slim_cuda_attention_scratch_bytes(sh->n_batch, sh->n_head, sh->head_dim, sh->n_ctx));
    s->d_step = dev_alloc((size_t)(sh->n_batch + 1) * sizeof(int32_t));
    s->h_step = pinned_alloc((size_t)(sh->n_batch + 1) * sizeof(int32_t));
    s->d_rows = dev_alloc((size_t)sh->n_batch * 3 * sizeof(int32_t));
    s->h_rows = pinned_alloc((size_t)sh->n_batch * 3 * sizeof(int32_t));
    s->pa_scratch = dev_alloc(
        slim_cuda_attention_paged_scratch_bytes(s->pa_split, sh->n_head, sh->head_dim, sh->n_ctx));
    if (!s->xq || !s->attn_scratch || !s->d_step || !s->h_step || !s->d_rows || !s->h_rows ||
        !s->pa_scratch) {
        exec_free(ex);
        return slim_error(SLIM_ERR_NOMEM, "cuda: out of device memory for a context's scratch");
    }
    return SLIM_OK;
}

/* ---------------------------------------------------------------- steps */

/* A paged step's rows and tables to the device (after the previous step's
 * finish(), so the staging buffers are free). */
static slim_status upload_paged(cuda_state *s, const slim_batch *b, int32_t n_rows) {
    const int32_t n = b->n_tokens, nb = s->n_batch;
    size_t need = (size_t)b->n_seqs;
    for (int32_t i = 0; i < b->n_seqs; i++)
        need += (size_t)b->seqs[i].n_blocks;
    if (need > s->tab_cap) {
        drop_bucket_graphs(s); /* they read the old tables */
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
    /* Fixed addresses (a recorded step reads them); rows past n pad a
     * bucket: position -1 and KV row -1 (no store, zero attention). */
    memcpy(s->h_rows, b->pos, (size_t)n * sizeof(int32_t));
    memcpy(s->h_rows + nb, b->seq, (size_t)n * sizeof(int32_t));
    memcpy(s->h_rows + 2 * nb, b->row, (size_t)n * sizeof(int32_t));
    for (int32_t t = n; t < n_rows; t++) {
        s->h_rows[t] = -1;
        s->h_rows[nb + t] = 0;
        s->h_rows[2 * nb + t] = -1;
    }
    s->d_pos = s->d_rows;
    s->d_seq = s->d_rows + nb;
    s->d_row = s->d_rows + 2 * nb;
    s->block_size = b->block_size;
    cudaError_t e = cudaMemcpyAsync(s->d_rows, s->h_rows, (size_t)(3 * nb) * sizeof(int32_t),
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
    bool ident = !s->invariant;
    for (int32_t t = 0; ident && t < n_tokens; t++)
        ident = ident && b->seq[t] == b->seq[0] && b->pos[t] == b->pos[0] + t;
    const slim_batch_seq *q = &b->seqs[b->seq[0]];
    for (int32_t k = 0; ident && k <= b->pos[n_tokens - 1] / b->block_size; k++)
        ident = q->blocks[k] == k;
    if (s->in_step) {
        /* Again within a step (forward.c: the sliding layers' own tables): the
         * pinned staging buffers may still feed queued copies, and queued
         * kernels read the device tables, so wait before rewriting them; the
         * step's first error stays. */
        cudaError_t e = cudaStreamSynchronize(s->stream);
        if (e != cudaSuccess) return cuda_fail(e, "switching the step's block tables");
    } else {
        s->err = 0;
    }
    ex->batch = b;
    s->paged = !ident;
    s->idx_used = 0;
    s->via_rows = false;
    /* A paged step of up to 32 tokens may run as its bucket's recording. */
    s->bucket = -1;
    s->bucket_rows = n_tokens;
    for (int i = 0; s->paged && i < SLIM_CUDA_BUCKETS && s->bucket < 0; i++)
        if (bucket_sizes[i] >= n_tokens) {
            s->bucket = i;
            s->bucket_rows = bucket_sizes[i] < s->n_batch ? bucket_sizes[i] : s->n_batch;
        }
    s->h_step[0] = b->pos[0];
    memcpy(s->h_step + 1, b->tokens, (size_t)n_tokens * sizeof(int32_t));
    for (int32_t t = n_tokens; t < s->bucket_rows; t++)
        s->h_step[1 + t] = 0; /* padding rows embed token 0 */
    cudaError_t e =
        cudaMemcpyAsync(s->d_step, s->h_step, (size_t)(s->bucket_rows + 1) * sizeof(int32_t),
                        cudaMemcpyHostToDevice, s->stream);
    if (e != cudaSuccess) return cuda_fail(e, "uploading the step's tokens");
    const slim_status st = s->paged ? upload_paged(s, b, s->bucket_rows) : SLIM_OK;
    s->in_step = st == SLIM_OK;
    return st;
}

static void download(const slim_exec *ex, float *host, const float *src, int64_t n) {
    cuda_state *s = state(ex);
    note(ex,
         cudaMemcpyAsync(host, src, (size_t)n * sizeof(float), cudaMemcpyDeviceToHost, s->stream),
         "download");
}

static slim_status finish(const slim_exec *ex) {
    cuda_state *s = state(ex);
    s->in_step = false;
    cudaError_t e = cudaStreamSynchronize(s->stream);
    if (s->err)
        return slim_error(SLIM_ERR_BACKEND, "cuda: %s failed: %s", s->err_op,
                          cudaGetErrorString((cudaError_t)s->err));
    return e == cudaSuccess ? SLIM_OK : cuda_fail(e, "the step");
}

static int32_t graph_rows(const slim_exec *ex) {
    const cuda_state *s = state(ex);
    return s->paged && s->bucket >= 0 && !s->no_graphs ? s->bucket_rows : 0;
}

/* The bucket's logits land here (a recorded copy has a fixed destination). */
static float *graph_logits(const slim_exec *ex, int64_t n_floats) {
    cuda_state *s = state(ex);
    if (!s->paged || s->bucket < 0) return NULL;
    float **p = &s->bucket_logits[s->bucket];
    if (!*p) *p = pinned_alloc((size_t)n_floats * sizeof(float));
    s->via_rows = *p != NULL;
    return *p; /* n_floats is the same at every step of the bucket */
}

static cudaGraphExec_t *recorded(cuda_state *s) {
    if (!s->paged) return &s->graph;
    /* only steps padded to their bucket (forward.c's graph_rows path) */
    return s->bucket >= 0 && s->via_rows ? &s->bucket_graph[s->bucket] : NULL;
}

static bool graph_begin(const slim_exec *ex) {
    cuda_state *s = state(ex);
    cudaGraphExec_t *g = recorded(s);
    if (!g || s->no_graphs) { /* a paged step past the buckets runs eagerly */
        s->capturing = false;
        return false;
    }
    if (*g) {
        note(ex, cudaGraphLaunch(*g, s->stream), "graph launch");
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
    cudaGraphExec_t *g = recorded(s);
    if (ok && !s->err && g) {
        e = cudaGraphInstantiate(g, graph, 0);
        if (e == cudaSuccess) e = cudaGraphLaunch(*g, s->stream);
    }
    cudaGraphDestroy(graph);
    return e == cudaSuccess ? SLIM_OK : cuda_fail(e, "replaying the decode step");
}

/* The types the kernels have: the mat-vec and the GEMM for matmul weights
 * (the same list), embed.cu's get_rows for the embedding table. */
static bool supports(slim_dtype type, slim_weight_use use) {
    return use == SLIM_USE_MATMUL
               ? slim_cuda_matvec_supported(type) && slim_cuda_gemm_supported(type)
               : slim_cuda_get_rows_supported(type);
}

static const slim_backend_ops cuda_ops = {
    .name = "cuda",
    .supports = supports,
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
    .gather_rows = gather_rows,
    .scatter_add_rows = scatter_add_rows,
    .graph_begin = graph_begin,
    .graph_end = graph_end,
    .graph_rows = graph_rows,
    .graph_logits = graph_logits,
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
