/* The vocabulary as byte strings and a preorder trie over them (constrain.h). */
#include "constrain/constrain.h"

#include <stdlib.h>
#include <string.h>

#include "core/grow.h"
#include "tokenizer/tokenizer.h"

void slim_ctokens_free(slim_ctokens *t) {
    if (!t) return;
    free(t->kind);
    free(t->off);
    free(t->bytes);
    free(t->order);
    free(t->eos);
    free(t->trie);
    free(t);
}

static int cmp_tok(const void *a, const void *b, void *arg) {
    const slim_ctokens *t = arg;
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    uint32_t lx = t->off[x + 1] - t->off[x], ly = t->off[y + 1] - t->off[y];
    int c = memcmp(t->bytes + t->off[x], t->bytes + t->off[y], lx < ly ? lx : ly);
    if (c) return c;
    if (lx != ly) return lx < ly ? -1 : 1;
    return (x > y) - (x < y);
}

static slim_status build_trie(slim_ctokens *t) {
    int32_t n_text = 0;
    for (int32_t i = 0; i < t->n_vocab; i++) {
        if (t->kind[i] == SLIM_CTOK_TEXT)
            t->order[n_text++] = i;
        else if (t->kind[i] == SLIM_CTOK_EOS)
            t->eos[t->n_eos++] = i;
    }
    qsort_r(t->order, (size_t)n_text, sizeof(int32_t), cmp_tok, t);
    size_t cap = 0;
    int32_t *path = malloc(sizeof(int32_t) * ((size_t)t->max_depth + 2));
    if (!path || !slim_grow((void **)&t->trie, &cap, 1, sizeof(slim_ctrie_node))) {
        free(path);
        return slim_error(SLIM_ERR_NOMEM, "constraint tokens: out of memory");
    }
    t->trie[0] = (slim_ctrie_node){0, 0, 0, 0, 0};
    t->n_trie = 1;
    path[0] = 0;
    int32_t depth = 0, prev = -1;
    for (int32_t k = 0; k < n_text; k++) {
        int32_t tok = t->order[k];
        const uint8_t *w = t->bytes + t->off[tok];
        int32_t len = (int32_t)(t->off[tok + 1] - t->off[tok]);
        int32_t lcp = 0;
        if (prev >= 0) {
            const uint8_t *p = t->bytes + t->off[prev];
            int32_t pl = (int32_t)(t->off[prev + 1] - t->off[prev]);
            while (lcp < len && lcp < pl && p[lcp] == w[lcp])
                lcp++;
        }
        while (depth > lcp) /* close the subtrees we leave */
            t->trie[path[depth--]].next = t->n_trie;
        if (depth == len && prev >= 0) { /* the same bytes as the previous token */
            t->trie[path[depth]].tok_n++;
            prev = tok;
            continue;
        }
        for (int32_t d = depth; d < len; d++) {
            if (!slim_grow((void **)&t->trie, &cap, (size_t)t->n_trie + 1,
                           sizeof(slim_ctrie_node))) {
                free(path);
                return slim_error(SLIM_ERR_NOMEM, "constraint tokens: out of memory");
            }
            t->trie[t->n_trie] = (slim_ctrie_node){w[d], (uint16_t)(d + 1), 0, 0, 0};
            path[d + 1] = t->n_trie++;
        }
        depth = len;
        t->trie[path[depth]].tok_lo = k;
        t->trie[path[depth]].tok_n = 1;
        prev = tok;
    }
    while (depth > 0)
        t->trie[path[depth--]].next = t->n_trie;
    t->trie[0].next = t->n_trie;
    free(path);
    return SLIM_OK;
}

slim_status slim_ctokens_new(int32_t n, const uint8_t *kind, const uint32_t *off,
                             const uint8_t *bytes, slim_ctokens **out) {
    *out = NULL;
    if (n <= 0 || !kind || !off || (!bytes && off[n]))
        return slim_error(SLIM_ERR_INVALID_ARG, "constraint tokens: empty vocabulary");
    slim_ctokens *t = calloc(1, sizeof *t);
    if (!t) return slim_error(SLIM_ERR_NOMEM, "constraint tokens: out of memory");
    t->n_vocab = n;
    t->kind = malloc((size_t)n);
    t->off = malloc(sizeof(uint32_t) * ((size_t)n + 1));
    t->bytes = malloc((size_t)off[n] + 1);
    t->order = malloc(sizeof(int32_t) * (size_t)n);
    t->eos = malloc(sizeof(int32_t) * (size_t)n);
    if (!t->kind || !t->off || !t->bytes || !t->order || !t->eos) {
        slim_ctokens_free(t);
        return slim_error(SLIM_ERR_NOMEM, "constraint tokens: out of memory");
    }
    memcpy(t->off, off, sizeof(uint32_t) * ((size_t)n + 1));
    if (off[n]) memcpy(t->bytes, bytes, off[n]);
    for (int32_t i = 0; i < n; i++) {
        uint32_t len = off[i + 1] - off[i];
        t->kind[i] = kind[i];
        if (off[i + 1] < off[i] || len > 65535) {
            slim_ctokens_free(t);
            return slim_error(SLIM_ERR_INVALID_ARG, "constraint tokens: bad offsets at token %d",
                              i);
        }
        if (kind[i] == SLIM_CTOK_TEXT && len == 0) t->kind[i] = SLIM_CTOK_NEVER;
        if (kind[i] == SLIM_CTOK_TEXT && (int32_t)len > t->max_depth) t->max_depth = (int32_t)len;
    }
    slim_status st = build_trie(t);
    if (st != SLIM_OK) {
        slim_ctokens_free(t);
        return st;
    }
    *out = t;
    return SLIM_OK;
}

slim_status slim_ctokens_from_vocab(const slim_vocab *v, slim_ctokens **out) {
    *out = NULL;
    int32_t n = slim_vocab_size(v);
    if (n <= 0) return slim_error(SLIM_ERR_INVALID_ARG, "constraint tokens: empty vocabulary");
    uint8_t *kind = malloc((size_t)n);
    uint32_t *off = malloc(sizeof(uint32_t) * ((size_t)n + 1));
    uint8_t *bytes = NULL;
    size_t capb = 0, nb = 0;
    slim_status st = SLIM_OK;
    if (!kind || !off) {
        st = slim_error(SLIM_ERR_NOMEM, "constraint tokens: out of memory");
        goto done;
    }
    for (int32_t i = 0; i < n; i++) {
        off[i] = (uint32_t)nb;
        char buf[1024];
        size_t len = 0;
        /* control / unknown / unused tokens render as nothing without the
         * special flag: they are never allowed as text */
        st = slim_vocab_token_to_piece(v, i, 0, buf, sizeof buf, &len);
        if (st == SLIM_ERR_BUFFER_TOO_SMALL)
            len = 0; /* a >1 KiB piece: never */
        else if (st != SLIM_OK)
            goto done;
        st = SLIM_OK;
        if (slim_vocab_is_eog(v, i))
            kind[i] = SLIM_CTOK_EOS, len = 0;
        else
            kind[i] = len ? SLIM_CTOK_TEXT : SLIM_CTOK_NEVER;
        if (!slim_grow((void **)&bytes, &capb, nb + len + 1, 1)) {
            st = slim_error(SLIM_ERR_NOMEM, "constraint tokens: out of memory");
            goto done;
        }
        memcpy(bytes + nb, buf, len);
        nb += len;
    }
    off[n] = (uint32_t)nb;
    st = slim_ctokens_new(n, kind, off, bytes, out);
done:
    free(kind);
    free(off);
    free(bytes);
    return st;
}
