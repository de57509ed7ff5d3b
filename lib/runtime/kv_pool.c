/* The KV block manager (kv_pool.h): reference-counted blocks, a free list,
 * an LRU list of idle cached blocks and an open-addressing map from chained
 * block hash to block id. */
#include "runtime/kv_pool.h"

#include <stdlib.h>
#include <string.h>

typedef struct kv_block {
    int32_t ref;
    int32_t prev, next; /* LRU links while idle and cached (-1 at the ends) */
    bool cached;        /* registered in the map under `hash` */
    uint64_t hash, parent, salt;
} kv_block;

struct slim_kv_pool {
    int32_t n_blocks, block_size;
    kv_block *b;
    int32_t *tokens; /* [n_blocks][block_size]: a registered block's tokens */
    int32_t *free_list, n_free;
    int32_t lru_head, lru_tail, n_idle; /* head: evicted first */
    int32_t n_used, n_cached;
    uint64_t *map_key; /* 0: empty slot */
    int32_t *map_val;
    uint32_t map_mask;
    slim_kv_copy_fn copy;
    void *user;
    int64_t hit_tokens, query_tokens, evictions, copies;
};

static uint64_t mix64(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

uint64_t slim_kv_block_hash(uint64_t parent, const int32_t *tokens, int32_t n, uint64_t salt) {
    uint64_t h = mix64(parent ^ 0x9e3779b97f4a7c15ULL) ^ mix64(salt + 0x632be59bd9b4e019ULL);
    for (int32_t i = 0; i < n; i++)
        h = mix64(h ^ ((uint64_t)(uint32_t)tokens[i] * 0xd6e8feb86659fd93ULL + (uint64_t)i));
    return h ? h : 1;
}

/* ---- hash map: linear probing, backward-shift deletion ------------------- */

static int32_t map_find(const slim_kv_pool *p, uint64_t key) {
    for (uint32_t i = (uint32_t)key & p->map_mask;; i = (i + 1) & p->map_mask) {
        if (p->map_key[i] == key) return p->map_val[i];
        if (!p->map_key[i]) return -1;
    }
}

static void map_put(slim_kv_pool *p, uint64_t key, int32_t val) {
    uint32_t i = (uint32_t)key & p->map_mask;
    while (p->map_key[i])
        i = (i + 1) & p->map_mask;
    p->map_key[i] = key;
    p->map_val[i] = val;
}

static void map_del(slim_kv_pool *p, uint64_t key) {
    uint32_t i = (uint32_t)key & p->map_mask;
    while (p->map_key[i] != key) {
        if (!p->map_key[i]) return;
        i = (i + 1) & p->map_mask;
    }
    /* Move later entries of the probe run back over the hole. */
    for (uint32_t j = (i + 1) & p->map_mask; p->map_key[j]; j = (j + 1) & p->map_mask) {
        const uint32_t home = (uint32_t)p->map_key[j] & p->map_mask;
        /* Entry j may fill hole i if its home is not in (i, j] cyclically. */
        const bool between = i <= j ? (home > i && home <= j) : (home > i || home <= j);
        if (between) continue;
        p->map_key[i] = p->map_key[j];
        p->map_val[i] = p->map_val[j];
        i = j;
    }
    p->map_key[i] = 0;
}

/* ---- lists ---------------------------------------------------------------- */

static void lru_remove(slim_kv_pool *p, int32_t id) {
    kv_block *b = &p->b[id];
    if (b->prev >= 0)
        p->b[b->prev].next = b->next;
    else
        p->lru_head = b->next;
    if (b->next >= 0)
        p->b[b->next].prev = b->prev;
    else
        p->lru_tail = b->prev;
    b->prev = b->next = -1;
    p->n_idle--;
}

static void lru_push_tail(slim_kv_pool *p, int32_t id) {
    kv_block *b = &p->b[id];
    b->prev = p->lru_tail;
    b->next = -1;
    if (p->lru_tail >= 0)
        p->b[p->lru_tail].next = id;
    else
        p->lru_head = id;
    p->lru_tail = id;
    p->n_idle++;
}

static void uncache(slim_kv_pool *p, int32_t id) {
    kv_block *b = &p->b[id];
    if (!b->cached) return;
    map_del(p, b->hash);
    b->cached = false;
    p->n_cached--;
}

/* A block with a reference count of one, from the free list or else the
 * least recently used idle cached block; -1 when there is none. */
static int32_t take_block(slim_kv_pool *p) {
    int32_t id;
    if (p->n_free > 0) {
        id = p->free_list[--p->n_free];
    } else if (p->lru_head >= 0) {
        id = p->lru_head;
        lru_remove(p, id);
        uncache(p, id);
        p->evictions++;
    } else {
        return -1;
    }
    p->b[id].ref = 1;
    p->n_used++;
    return id;
}

static void ref_block(slim_kv_pool *p, int32_t id) {
    kv_block *b = &p->b[id];
    if (b->ref++ == 0) {
        lru_remove(p, id); /* only an idle cached block has no reference */
        p->n_used++;
    }
}

static void unref_block(slim_kv_pool *p, int32_t id) {
    if (id < 0) return; /* a dropped block (slim_kv_pool_drop_before) */
    kv_block *b = &p->b[id];
    if (--b->ref > 0) return;
    p->n_used--;
    if (b->cached)
        lru_push_tail(p, id);
    else
        p->free_list[p->n_free++] = id;
}

/* ---- pool ----------------------------------------------------------------- */

slim_status slim_kv_pool_create(int32_t n_blocks, int32_t block_size, slim_kv_copy_fn copy,
                                void *user, slim_kv_pool **out) {
    if (!out) return slim_error(SLIM_ERR_INVALID_ARG, "slim_kv_pool_create: out is NULL");
    *out = NULL;
    if (n_blocks < 1 || n_blocks > (1 << 24) || block_size < 1 || block_size > 4096)
        return slim_error(SLIM_ERR_INVALID_ARG,
                          "slim_kv_pool_create: %d blocks of %d tokens (want 1..2^24 blocks of "
                          "1..4096)",
                          n_blocks, block_size);
    slim_kv_pool *p = calloc(1, sizeof *p);
    uint32_t slots = 16;
    while (slots < 2u * (uint32_t)n_blocks)
        slots *= 2;
    if (p) {
        p->b = calloc((size_t)n_blocks, sizeof *p->b);
        p->tokens = malloc((size_t)n_blocks * (size_t)block_size * sizeof *p->tokens);
        p->free_list = malloc((size_t)n_blocks * sizeof *p->free_list);
        p->map_key = calloc(slots, sizeof *p->map_key);
        p->map_val = malloc(slots * sizeof *p->map_val);
    }
    if (!p || !p->b || !p->tokens || !p->free_list || !p->map_key || !p->map_val) {
        slim_kv_pool_free(p);
        return slim_error(SLIM_ERR_NOMEM, "slim_kv_pool_create: out of memory for %d blocks",
                          n_blocks);
    }
    p->n_blocks = n_blocks;
    p->block_size = block_size;
    p->map_mask = slots - 1;
    p->lru_head = p->lru_tail = -1;
    p->copy = copy;
    p->user = user;
    /* Lowest ids first out of the stack. */
    for (int32_t i = 0; i < n_blocks; i++) {
        p->free_list[i] = n_blocks - 1 - i;
        p->b[i].prev = p->b[i].next = -1;
    }
    p->n_free = n_blocks;
    *out = p;
    return SLIM_OK;
}

void slim_kv_pool_free(slim_kv_pool *p) {
    if (!p) return;
    free(p->b);
    free(p->tokens);
    free(p->free_list);
    free(p->map_key);
    free(p->map_val);
    free(p);
}

void slim_kv_pool_get_stats(const slim_kv_pool *p, slim_kv_pool_stats *st) {
    *st = (slim_kv_pool_stats){.n_blocks = p->n_blocks,
                               .n_free = p->n_free,
                               .n_used = p->n_used,
                               .n_cached = p->n_cached,
                               .n_idle = p->n_idle,
                               .hit_tokens = p->hit_tokens,
                               .query_tokens = p->query_tokens,
                               .evictions = p->evictions,
                               .copies = p->copies};
}

int32_t slim_kv_pool_block_size(const slim_kv_pool *p) { return p->block_size; }
int32_t slim_kv_pool_available(const slim_kv_pool *p) { return p->n_free + p->n_idle; }

void slim_kv_pool_evict_idle(slim_kv_pool *p) {
    while (p->lru_head >= 0) {
        const int32_t id = p->lru_head;
        lru_remove(p, id);
        uncache(p, id);
        p->free_list[p->n_free++] = id;
    }
}

/* ---- sequences ------------------------------------------------------------ */

void slim_kv_seq_init(slim_kv_seq *s, uint64_t salt) { *s = (slim_kv_seq){.salt = salt}; }

static bool seq_grow(slim_kv_seq *s, int32_t need) {
    if (need <= s->cap) return true;
    int32_t cap = s->cap ? s->cap : 8;
    while (cap < need)
        cap *= 2;
    int32_t *b = realloc(s->blocks, (size_t)cap * sizeof *b);
    if (!b) return false;
    s->blocks = b;
    uint64_t *h = realloc(s->hashes, (size_t)cap * sizeof *h);
    if (!h) return false;
    s->hashes = h;
    s->cap = cap;
    return true;
}

static uint64_t seq_parent(const slim_kv_seq *s, int32_t k) { return k ? s->hashes[k - 1] : 0; }

int32_t slim_kv_pool_attach_prefix(slim_kv_pool *p, slim_kv_seq *s, const int32_t *tokens,
                                   int32_t n, int32_t max_tokens) {
    if (s->n_blocks || n <= 0) return 0;
    const int32_t bs = p->block_size;
    int32_t limit = (n < max_tokens ? n : max_tokens) / bs;
    p->query_tokens += n;
    int32_t k = 0;
    for (; k < limit; k++) {
        const uint64_t parent = seq_parent(s, k);
        const uint64_t h = slim_kv_block_hash(parent, tokens + (int64_t)k * bs, bs, s->salt);
        const int32_t id = map_find(p, h);
        if (id < 0) break;
        const kv_block *b = &p->b[id];
        if (b->parent != parent || b->salt != s->salt ||
            memcmp(p->tokens + (int64_t)id * bs, tokens + (int64_t)k * bs,
                   (size_t)bs * sizeof *tokens))
            break; /* a hash collision: a miss */
        if (!seq_grow(s, k + 1)) break;
        ref_block(p, id);
        s->blocks[k] = id;
        s->hashes[k] = h;
        s->n_blocks = s->n_hashed = k + 1;
    }
    s->n_tokens = k * bs;
    p->hit_tokens += s->n_tokens;
    return s->n_tokens;
}

/* The last block is partly filled and must not be written in place. */
static bool needs_cow(const slim_kv_pool *p, const slim_kv_seq *s) {
    if (s->n_tokens % p->block_size == 0 || s->n_tokens / p->block_size >= s->n_blocks)
        return false;
    const kv_block *b = &p->b[s->blocks[s->n_tokens / p->block_size]];
    return b->ref > 1 || b->cached;
}

int32_t slim_kv_pool_blocks_needed(const slim_kv_pool *p, const slim_kv_seq *s, int32_t n_new) {
    const int64_t end = (int64_t)s->n_tokens + n_new;
    const int64_t want = (end + p->block_size - 1) / p->block_size;
    int64_t need = want > s->n_blocks ? want - s->n_blocks : 0;
    if (n_new > 0 && needs_cow(p, s)) need++;
    return need > INT32_MAX ? INT32_MAX : (int32_t)need;
}

slim_status slim_kv_pool_reserve(slim_kv_pool *p, slim_kv_seq *s, int32_t n_new) {
    if (n_new <= 0) return SLIM_OK;
    const int32_t need = slim_kv_pool_blocks_needed(p, s, n_new);
    if (need > slim_kv_pool_available(p))
        return slim_error(SLIM_ERR_CONTEXT_FULL, "KV pool: %d blocks needed, %d of %d available",
                          need, slim_kv_pool_available(p), p->n_blocks);
    const int32_t want =
        (int32_t)(((int64_t)s->n_tokens + n_new + p->block_size - 1) / p->block_size);
    if (!seq_grow(s, want)) return slim_error(SLIM_ERR_NOMEM, "KV pool: out of memory");
    if (needs_cow(p, s)) {
        const int32_t k = s->n_tokens / p->block_size, src = s->blocks[k];
        if (!p->copy)
            return slim_error(SLIM_ERR_INTERNAL, "KV pool: a shared block and no copy function");
        const int32_t dst = take_block(p);
        slim_status st = p->copy(p->user, dst, src);
        if (st) {
            unref_block(p, dst);
            return st;
        }
        p->copies++;
        s->blocks[k] = dst;
        unref_block(p, src);
    }
    while (s->n_blocks < want)
        s->blocks[s->n_blocks++] = take_block(p);
    return SLIM_OK;
}

void slim_kv_pool_commit(slim_kv_pool *p, slim_kv_seq *s, const int32_t *tokens, int32_t n_total) {
    const int32_t bs = p->block_size;
    if (n_total > s->n_blocks * bs) n_total = s->n_blocks * bs; /* never past the table */
    s->n_tokens = n_total;
    for (int32_t k = s->n_hashed; k < n_total / bs; k++) {
        const uint64_t parent = seq_parent(s, k);
        const uint64_t h = slim_kv_block_hash(parent, tokens + (int64_t)k * bs, bs, s->salt);
        s->hashes[k] = h;
        s->n_hashed = k + 1;
        const int32_t id = s->blocks[k];
        if (id < 0) continue; /* dropped */
        kv_block *b = &p->b[id];
        if (b->cached || map_find(p, h) >= 0) continue; /* already cached (maybe elsewhere) */
        b->cached = true;
        b->hash = h;
        b->parent = parent;
        b->salt = s->salt;
        memcpy(p->tokens + (int64_t)id * bs, tokens + (int64_t)k * bs, (size_t)bs * sizeof *tokens);
        map_put(p, h, id);
        p->n_cached++;
    }
}

void slim_kv_pool_truncate(slim_kv_pool *p, slim_kv_seq *s, int32_t n) {
    if (n < 0) n = 0;
    if (n >= s->n_tokens) return;
    const int32_t keep = (n + p->block_size - 1) / p->block_size;
    /* Release from the end, so the deepest blocks are evicted first. */
    while (s->n_blocks > keep)
        unref_block(p, s->blocks[--s->n_blocks]);
    s->n_tokens = n;
    if (s->n_hashed > n / p->block_size) s->n_hashed = n / p->block_size;
    if (s->n_dropped > s->n_blocks) s->n_dropped = s->n_blocks;
}

slim_status slim_kv_pool_fork(slim_kv_pool *p, const slim_kv_seq *src, slim_kv_seq *dst) {
    if (dst->n_blocks)
        return slim_error(SLIM_ERR_INTERNAL, "KV pool: fork into a sequence that holds blocks");
    if (!seq_grow(dst, src->n_blocks)) return slim_error(SLIM_ERR_NOMEM, "KV pool: out of memory");
    for (int32_t k = 0; k < src->n_blocks; k++) {
        if (src->blocks[k] >= 0) ref_block(p, src->blocks[k]);
        dst->blocks[k] = src->blocks[k];
    }
    if (src->n_hashed)
        memcpy(dst->hashes, src->hashes, (size_t)src->n_hashed * sizeof *dst->hashes);
    dst->n_blocks = src->n_blocks;
    dst->n_dropped = src->n_dropped;
    dst->n_hashed = src->n_hashed;
    dst->n_tokens = src->n_tokens;
    dst->salt = src->salt;
    return SLIM_OK;
}

void slim_kv_pool_drop_before(slim_kv_pool *p, slim_kv_seq *s, int32_t n) {
    const int32_t end = n / p->block_size < s->n_blocks ? n / p->block_size : s->n_blocks;
    for (int32_t k = s->n_dropped; k < end; k++) {
        unref_block(p, s->blocks[k]);
        s->blocks[k] = -1;
    }
    if (end > s->n_dropped) s->n_dropped = end;
}

bool slim_kv_pool_attach_window(slim_kv_pool *p, slim_kv_seq *s, const int32_t *tokens,
                                int32_t n_blocks, int32_t first) {
    if (s->n_blocks || n_blocks <= 0) return false;
    if (first < 0) first = 0;
    if (first > n_blocks) first = n_blocks;
    const int32_t bs = p->block_size;
    if (!seq_grow(s, n_blocks)) return false;
    uint64_t parent = 0;
    for (int32_t k = 0; k < n_blocks; k++) {
        const uint64_t h = slim_kv_block_hash(parent, tokens + (int64_t)k * bs, bs, s->salt);
        s->hashes[k] = h;
        if (k >= first) {
            const int32_t id = map_find(p, h);
            if (id < 0 || p->b[id].parent != parent || p->b[id].salt != s->salt ||
                memcmp(p->tokens + (int64_t)id * bs, tokens + (int64_t)k * bs,
                       (size_t)bs * sizeof *tokens))
                return false; /* nothing referenced yet: s stays empty */
            s->blocks[k] = id;
        }
        parent = h;
    }
    for (int32_t k = 0; k < n_blocks; k++) {
        if (k < first)
            s->blocks[k] = -1;
        else
            ref_block(p, s->blocks[k]);
    }
    s->n_blocks = s->n_hashed = n_blocks;
    s->n_dropped = first;
    s->n_tokens = n_blocks * bs;
    return true;
}

void slim_kv_pool_unhit(slim_kv_pool *p, int32_t n) { p->hit_tokens -= n; }

void slim_kv_pool_release(slim_kv_pool *p, slim_kv_seq *s) {
    while (s->n_blocks > 0)
        unref_block(p, s->blocks[--s->n_blocks]);
    free(s->blocks);
    free(s->hashes);
    slim_kv_seq_init(s, s->salt);
}
