/* The paged KV cache's block manager: which of a context's n KV blocks each
 * sequence owns (its block table), which are shared (reference counts,
 * copy-on-write of a shared block before it is written), and which hold a
 * cached prompt prefix.
 *
 * Prefix cache: a full block is named by a 64-bit hash chained over (the
 * previous block's hash, the block's block_size tokens, a salt naming the
 * LoRA adapter), so a hash names the whole prefix up to and including the
 * block.  Committed full blocks are registered under their hash; a new
 * sequence whose tokens start with registered blocks attaches to them and
 * computes only the rest.  A registered block nobody references stays
 * cached, in an LRU list, until an allocation needs its room.  The pool
 * keeps the tokens, parent hash and salt of each registered block and checks
 * them on a hit, so a hash collision can cost a miss but never a wrong hit.
 *
 * Pure bookkeeping, no model: the KV rows themselves are the context's.
 * Not thread-safe: one owner (the engine's step thread). */
#ifndef SLIM_RUNTIME_KV_POOL_H
#define SLIM_RUNTIME_KV_POOL_H

#include <stdbool.h>
#include <stdint.h>

#include "core/error.h"

typedef struct slim_kv_pool slim_kv_pool;

/* Copy block src's KV rows to block dst (copy-on-write); non-zero status fails
 * the reservation that asked for it. */
typedef slim_status (*slim_kv_copy_fn)(void *user, int32_t dst, int32_t src);

/* A sequence's block table.  Zero-initialise, or slim_kv_seq_init. */
typedef struct slim_kv_seq {
    int32_t *blocks;   /* [n_blocks] block ids, position p in blocks[p / block_size] */
    uint64_t *hashes;  /* [n_hashed] chained hash of each full block hashed so far */
    int32_t n_blocks;  /* blocks held */
    int32_t cap;       /* capacity of blocks and hashes */
    int32_t n_tokens;  /* positions 0 .. n_tokens - 1 hold computed KV rows */
    int32_t n_hashed;  /* leading full blocks whose hashes are known */
    int32_t n_dropped; /* leading blocks dropped (-1 in blocks): out of a sliding window */
    uint64_t salt;     /* the adapter identity mixed into every hash (0: none) */
} slim_kv_seq;

typedef struct slim_kv_pool_stats {
    int32_t n_blocks;     /* the pool's size */
    int32_t n_free;       /* on the free list: hold nothing */
    int32_t n_used;       /* referenced by at least one sequence */
    int32_t n_cached;     /* registered in the prefix cache (used or idle) */
    int32_t n_idle;       /* registered, referenced by nobody: evictable */
    int64_t hit_tokens;   /* prompt tokens attached from the cache, ever */
    int64_t query_tokens; /* prompt tokens looked up, ever */
    int64_t evictions;    /* idle cached blocks reused for new data */
    int64_t copies;       /* copy-on-write block copies */
} slim_kv_pool_stats;

/* A pool of n_blocks blocks of block_size token rows.  `copy` (may be NULL
 * when sequences are never forked or truncated into shared blocks) copies a
 * block's rows for copy-on-write. */
SLIM_HIDDEN slim_status slim_kv_pool_create(int32_t n_blocks, int32_t block_size,
                                            slim_kv_copy_fn copy, void *user, slim_kv_pool **out);
SLIM_HIDDEN void slim_kv_pool_free(slim_kv_pool *pool);
SLIM_HIDDEN void slim_kv_pool_get_stats(const slim_kv_pool *pool, slim_kv_pool_stats *st);
SLIM_HIDDEN int32_t slim_kv_pool_block_size(const slim_kv_pool *pool);
/* Blocks an allocation can take now: free plus idle cached. */
SLIM_HIDDEN int32_t slim_kv_pool_available(const slim_kv_pool *pool);
/* Drop every idle cached block from the cache (to the free list). */
SLIM_HIDDEN void slim_kv_pool_evict_idle(slim_kv_pool *pool);

SLIM_HIDDEN void slim_kv_seq_init(slim_kv_seq *seq, uint64_t salt);

/* The chained hash of one full block (never 0). */
SLIM_HIDDEN uint64_t slim_kv_block_hash(uint64_t parent, const int32_t *tokens, int32_t n,
                                        uint64_t salt);

/* For an empty sequence: attach the longest run of cached full blocks that
 * tokens[0 .. n) starts with, at most max_tokens tokens' worth (callers
 * leave the last prompt token to compute, for its logits).  Returns the
 * tokens attached (a multiple of block_size; seq->n_tokens becomes that). */
SLIM_HIDDEN int32_t slim_kv_pool_attach_prefix(slim_kv_pool *pool, slim_kv_seq *seq,
                                               const int32_t *tokens, int32_t n,
                                               int32_t max_tokens);

/* Blocks slim_kv_pool_reserve(seq, n_new) would take from the pool. */
SLIM_HIDDEN int32_t slim_kv_pool_blocks_needed(const slim_kv_pool *pool, const slim_kv_seq *seq,
                                               int32_t n_new);

/* Make room for positions n_tokens .. n_tokens + n_new - 1: copy the
 * partly filled last block first if it is shared or cached (copy-on-write),
 * then append blocks.  SLIM_ERR_CONTEXT_FULL, with nothing changed, when the
 * pool has too few available blocks. */
SLIM_HIDDEN slim_status slim_kv_pool_reserve(slim_kv_pool *pool, slim_kv_seq *seq, int32_t n_new);

/* The step computed positions up to n_total - 1 (tokens[0 .. n_total) are the
 * sequence's tokens): n_tokens = n_total, and every block that became full
 * is hashed and registered in the prefix cache (unless its hash already is). */
SLIM_HIDDEN void slim_kv_pool_commit(slim_kv_pool *pool, slim_kv_seq *seq, const int32_t *tokens,
                                     int32_t n_total);

/* Keep positions 0 .. n - 1 (n <= n_tokens): blocks past them go back. */
SLIM_HIDDEN void slim_kv_pool_truncate(slim_kv_pool *pool, slim_kv_seq *seq, int32_t n);

/* dst (empty) shares every block of src; the first of them to write into a
 * shared partly filled block copies it. */
SLIM_HIDDEN slim_status slim_kv_pool_fork(slim_kv_pool *pool, const slim_kv_seq *src,
                                          slim_kv_seq *dst);

/* Sliding-window layers: drop the blocks that hold only positions < n (no
 * later query sees them); their entries become -1, their hashes stay, and a
 * registered one stays cached (idle once nobody else holds it). */
SLIM_HIDDEN void slim_kv_pool_drop_before(slim_kv_pool *pool, slim_kv_seq *seq, int32_t n);

/* For an empty sequence of a sliding-window pool: attach cached blocks
 * first .. n_blocks - 1 of tokens (those a query after the prefix still
 * sees; the earlier entries -1) when all of them are cached, and return
 * true; else attach nothing.  Hashes chain as in attach_prefix. */
SLIM_HIDDEN bool slim_kv_pool_attach_window(slim_kv_pool *pool, slim_kv_seq *seq,
                                            const int32_t *tokens, int32_t n_blocks, int32_t first);

/* Take back n tokens of the last attach_prefix's hits (the caller kept fewer). */
SLIM_HIDDEN void slim_kv_pool_unhit(slim_kv_pool *pool, int32_t n);

/* Release every block of seq (registered ones stay cached) and free its
 * arrays; seq is empty afterwards, with its salt kept. */
SLIM_HIDDEN void slim_kv_pool_release(slim_kv_pool *pool, slim_kv_seq *seq);

#endif
