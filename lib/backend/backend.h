/* The ops a compute backend provides.  The model layer calls these only: it
 * never knows which backend runs them.  Activations are float rows, one row
 * per token, in the backend's memory (device memory for CUDA: host code never
 * dereferences them); weights are slim_tensor views, uploaded by the backend
 * at model load.  The CPU backend is the reference; the CUDA backend
 * (backend/cuda) implements the same table with kernels/. */
#ifndef SLIM_BACKEND_BACKEND_H
#define SLIM_BACKEND_BACKEND_H

#include <stdbool.h>
#include <stdint.h>

#include "core/dtype.h"
#include "core/tensor.h"
#include "core/threadpool.h"

/* One step's tokens as the backend sees them (runtime/forward.c builds it from
 * a slim_step, runtime/step.h): per token its position in its sequence, the
 * sequence and the KV cache row it writes; per sequence its block table.
 * Position p of sequence s lives in row
 *     seqs[s].blocks[p / block_size] * block_size + p % block_size
 * of every layer's cache (slim_batch_kv_row). */
typedef struct slim_batch_seq {
    const int32_t *blocks;
    int32_t n_blocks;
} slim_batch_seq;

typedef struct slim_batch {
    int32_t n_tokens;
    const int32_t *tokens; /* [n_tokens] token ids (host) */
    const int32_t *pos;    /* [n_tokens] */
    const int32_t *seq;    /* [n_tokens] index into seqs */
    const int32_t *row;    /* [n_tokens] the KV row of (seq, pos) */
    int32_t n_seqs, block_size;
    const slim_batch_seq *seqs;
} slim_batch;

static inline int64_t slim_batch_kv_row(const slim_batch *b, int32_t s, int32_t p) {
    return (int64_t)b->seqs[s].blocks[p / b->block_size] * b->block_size + p % b->block_size;
}

/* rows[j] = slim_batch_kv_row(b, s, p0 + j) * scale for j < n, walking the
 * block table with one division instead of one per position. */
static inline void slim_batch_kv_rows(const slim_batch *b, int32_t s, int32_t p0, int32_t n,
                                      int64_t scale, int64_t *rows) {
    const int32_t bs = b->block_size, *blocks = b->seqs[s].blocks;
    int32_t blk = p0 / bs, off = p0 % bs;
    for (int32_t j = 0; j < n; j++) {
        rows[j] = ((int64_t)blocks[blk] * bs + off) * scale;
        if (++off == bs) {
            off = 0;
            blk++;
        }
    }
}

/* Everything an op may use besides its operands: the threads, a host scratch
 * area the backend's exec_init sizes (the CPU's: the widest quantized
 * activation batch), and the step begun. */
typedef struct slim_exec {
    slim_threadpool *pool;
    void *scratch;
    size_t scratch_size;
    void *dev; /* a device backend's per-context state (stream, device scratch); NULL on the CPU */
    bool kv_f32;             /* the KV cache holds F32 rather than fp16 (slim_kv_type) */
    const slim_batch *batch; /* this step's tokens (begin() sets it) */
} slim_exec;

/* What a device backend sizes its per-context scratch from. */
typedef struct slim_exec_shape {
    int32_t n_batch, n_ctx, n_head, head_dim;
    int64_t widest; /* widest activation row (elements) a matmul reads */
} slim_exec_shape;

/* One attention call: the step's n_tokens queries, each at its own position
 * (ex->batch), attending to positions 0 .. pos of its own sequence through
 * the sequence's block table, in the layer's KV cache (fp16 or F32, rows of
 * n_head_kv * head_dim) which already holds the keys and values of these
 * tokens. */
typedef struct slim_attn_args {
    const float *q;                /* [n_tokens][n_head * head_dim], already scaled */
    float *out;                    /* [n_tokens][n_head * head_dim] */
    const void *k_cache, *v_cache; /* fp16, or F32 with exec->kv_f32 */
    int32_t n_tokens;
    int32_t n_head, n_head_kv, head_dim;
    int32_t window; /* > 0: a query at p sees keys at p - window + 1 .. p */
    float softcap;  /* > 0: scores = softcap * tanh(scores / softcap) */
    float *scratch; /* n_threads * n_ctx floats */
    int32_t n_ctx;  /* the longest sequence: positions < n_ctx */
} slim_attn_args;

typedef enum slim_act { SLIM_ACT_GELU_TANH, SLIM_ACT_SILU } slim_act;

/* RoPE on the first n_rot dims of each head of row t (at position pos of the
 * step's token t, ex->batch): pair i (of n_rot / 2) turns by
 * (pos * freq_scale) * theta_base^(-2i / n_rot) / freq_factors[i], and the
 * rotated values are scaled by mscale (LongRoPE's attention factor, else 1).
 * neox: pairs (i, i + n_rot/2); else adjacent pairs (2i, 2i+1). */
typedef struct slim_rope_args {
    int32_t n_heads, head_dim, n_rot;
    float theta_base, freq_scale, mscale;
    const float *freq_factors; /* NULL: all 1 */
    bool neox;
} slim_rope_args;

/* What a model uses a weight for, as supports() is asked at load. */
typedef enum slim_weight_use {
    SLIM_USE_MATMUL, /* a matrix of matmul() */
    SLIM_USE_ROWS,   /* a table get_rows() reads (the token embeddings) */
} slim_weight_use;

/* Memory prepare_weights may take for rearranged copies: alloc(owner, bytes)
 * lives as long as the model (NULL: out of memory, the error set).  file /
 * file_size: the read-only private mapping of the model file (NULL, 0: none),
 * whose pages a backend may drop once it holds a copy. */
typedef struct slim_weight_arena {
    void *(*alloc)(void *owner, size_t bytes);
    void *owner;
    const void *file;
    size_t file_size;
} slim_weight_arena;

typedef struct slim_backend_ops {
    const char *name;
    /* Whether this backend runs weights of `type` used as `use`: the model
     * asks it for every weight at load and refuses a model with one it
     * cannot run (SLIM_ERR_UNSUPPORTED naming the tensor and the type), so
     * no step meets one. */
    bool (*supports)(slim_dtype type, slim_weight_use use);
    /* Optional (NULL: weights stay as they are): at load, after supports(),
     * rearrange the n_w matmul weights w (host memory) for this backend's
     * kernels, e.g. the CPU's repacked layouts (t->packed). */
    slim_status (*prepare_weights)(slim_tensor *const *w, size_t n_w,
                                   const slim_weight_arena *arena);
    /* For each of n_w weights with the same row length (Q, K and V; gate and
     * up): y[i][t][r] = dot(w[i] row r, x[t]), t < n_tokens, r < w[i]->ne[1].
     * x is converted to a weight type's vec_dot_type once for all of them. */
    slim_status (*matmul)(const slim_exec *ex, int n_w, const slim_tensor *const *w, const float *x,
                          int64_t n_tokens, float *const *y);
    /* out[t] = row tokens[t] of an embedding table as floats, times scale (1: none).
     * tokens are host ids, the ones passed to begin() for this step. */
    void (*get_rows)(const slim_exec *ex, const slim_tensor *table, const int32_t *tokens,
                     int64_t n_tokens, float scale, float *out);
    /* y = x / rms(x) * w over rows of n (w NULL: no weight); in place allowed. */
    void (*rmsnorm)(const slim_exec *ex, float *y, const float *x, const float *w, int64_t n,
                    int64_t n_rows, float eps);
    /* Rotate the step's n_rows token rows of n_heads heads, see slim_rope_args. */
    void (*rope)(const slim_exec *ex, float *x, int64_t n_rows, const slim_rope_args *r);
    /* g = act(g) * u, n elements. */
    void (*act_mul)(const slim_exec *ex, float *g, const float *u, int64_t n, slim_act act);
    void (*add)(const slim_exec *ex, float *y, const float *x, int64_t n); /* y += x */
    /* y[r][i] += b[i] for n_rows rows of n */
    void (*add_bias)(const slim_exec *ex, float *y, const float *b, int64_t n, int64_t n_rows);
    void (*scale)(const slim_exec *ex, float *y, float s, int64_t n);
    /* y = cap * tanh(y / cap) */
    void (*softcap)(const slim_exec *ex, float *y, float cap, int64_t n);
    /* Store the step's n_tokens rows of width into the cache (fp16, or F32
     * with ex->kv_f32), each at its token's KV row (ex->batch->row). */
    void (*kv_store)(const slim_exec *ex, void *cache, const float *src, int64_t n_tokens,
                     int64_t width);
    void (*attention)(const slim_exec *ex, const slim_attn_args *a);
    /* Optional (NULL: steps of one sequence only): dst[i] = src[idx[i]], and
     * dst[idx[i]] += src[i], for rows of n floats; idx is host memory. */
    void (*gather_rows)(const slim_exec *ex, float *dst, const float *src, const int32_t *idx,
                        int64_t n_idx, int64_t n);
    void (*scatter_add_rows)(const slim_exec *ex, float *dst, const float *src, const int32_t *idx,
                             int64_t n_idx, int64_t n);

    /* ---- memory and steps.  The CPU's are plain malloc / memcpy / no-ops. */
    /* Backend memory for activations and the KV cache (NULL: out of memory). */
    void *(*alloc)(size_t bytes);
    void (*release)(void *p);
    /* Copy bytes within backend memory (in order with the context's ops). */
    void (*copy)(const slim_exec *ex, void *dst, const void *src, size_t bytes);
    /* Host memory the backend copies results into (pinned for CUDA). */
    void *(*alloc_host)(size_t bytes);
    void (*release_host)(void *p);
    /* Per-context state: ex->dev, and ex->scratch / scratch_size where the
     * backend's ops want host scratch (the CPU's quantized activations);
     * exec_free releases what exec_init set, also after a failed one. */
    slim_status (*exec_init)(slim_exec *ex, const slim_exec_shape *shape);
    void (*exec_free)(slim_exec *ex);
    /* One forward step: begin() hands the backend this step's description
     * (ex->batch = b; b lives until finish(); device backends upload what
     * their kernels read, so a captured decode graph stays valid at every
     * position, and may refuse a step they cannot run with
     * SLIM_ERR_UNSUPPORTED); download() queues a copy of n floats of
     * backend memory into host memory from alloc_host; finish() waits for the
     * step and reports the first error of its ops. */
    slim_status (*begin)(slim_exec *ex, const slim_batch *b);
    void (*download)(const slim_exec *ex, float *host, const float *src, int64_t n);
    slim_status (*finish)(const slim_exec *ex);
    /* Optional (NULL: none): a single-token step recorded once and replayed.
     * graph_begin returns true when it replayed the recorded step (the caller
     * then skips the ops), false when it started recording them; graph_end
     * stops recording and runs the step (ok false: discard the recording). */
    bool (*graph_begin)(const slim_exec *ex);
    slim_status (*graph_end)(const slim_exec *ex, bool ok);
    /* Optional (NULL: none): decode steps of many sequences recorded once per
     * batch-size bucket and replayed.  After begin() of a step whose tokens
     * all want their logits and use no adapter, graph_rows returns the rows
     * its ops are to run on (the step padded to its bucket: padding rows
     * store no KV and see no key), or 0: no recording for this step.  Then
     * graph_logits gives the backend's host memory for those rows' logits
     * (n_floats = rows * n_vocab; NULL: run without a recording), the caller
     * runs graph_begin / the ops on all rows into it / graph_end, and copies
     * the step's rows out after finish(). */
    int32_t (*graph_rows)(const slim_exec *ex);
    float *(*graph_logits)(const slim_exec *ex, int64_t n_floats);
    /* Model weights: copy the file's tensor data (bytes at host) into backend
     * memory; *dev receives its address there.  NULL: weights stay in place. */
    slim_status (*weights_upload)(const void *host, size_t bytes, void **dev);
    void (*weights_free)(void *dev);
} slim_backend_ops;

SLIM_HIDDEN const slim_backend_ops *slim_backend_cpu(void);
/* The CUDA backend, or an error saying why not (built without CUDA, no
 * device, no driver). */
SLIM_HIDDEN slim_status slim_backend_cuda(const slim_backend_ops **out);

#endif
