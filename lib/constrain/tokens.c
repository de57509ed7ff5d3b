/* The vocabulary as byte strings and a preorder trie over them (constrain.h). */
#include "constrain/constrain.h"

#include <stdlib.h>
#include <string.h>

#include "core/grow.h"

static void trie_free(slim_ctrie *r) {
    free(r->nodes);
    free(r->order);
    free(r->tok_start);
    free(r->sub);
}

void slim_ctokens_free(slim_ctokens *t) {
    if (!t) return;
    free(t->kind);
    free(t->off);
    free(t->bytes);
    free(t->eos);
    free(t->safe_mask);
    free(t->safe_len_mask);
    trie_free(&t->safe);
    trie_free(&t->unsafe);
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

/* The trie of the TEXT tokens with pick[token] set. */
static slim_status build_trie(slim_ctokens *t, const uint8_t *pick, slim_ctrie *r) {
    memset(r, 0, sizeof *r);
    r->order = malloc(sizeof(int32_t) * ((size_t)t->n_vocab + 1));
    if (!r->order) return slim_error(SLIM_ERR_NOMEM, "constraint tokens: out of memory");
    int32_t n_text = 0;
    for (int32_t i = 0; i < t->n_vocab; i++)
        if (t->kind[i] == SLIM_CTOK_TEXT && pick[i]) {
            r->order[n_text++] = i;
            int32_t len = (int32_t)(t->off[i + 1] - t->off[i]);
            if (len > r->max_depth) r->max_depth = len;
        }
    qsort_r(r->order, (size_t)n_text, sizeof(int32_t), cmp_tok, t);
    size_t cap = 0;
    int32_t *path = malloc(sizeof(int32_t) * ((size_t)r->max_depth + 2));
    if (!path || !slim_grow((void **)&r->nodes, &cap, 1, sizeof(slim_ctrie_node))) {
        free(path);
        return slim_error(SLIM_ERR_NOMEM, "constraint tokens: out of memory");
    }
    r->nodes[0] = (slim_ctrie_node){.byte = 0};
    r->n = 1;
    path[0] = 0;
    int32_t depth = 0, prev = -1;
    for (int32_t k = 0; k < n_text; k++) {
        int32_t tok = r->order[k];
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
            r->nodes[path[depth--]].next = r->n;
        if (depth == len && prev >= 0) { /* the same bytes as the previous token */
            r->nodes[path[depth]].tok_n++;
            prev = tok;
            continue;
        }
        for (int32_t d = depth; d < len; d++) {
            if (!slim_grow((void **)&r->nodes, &cap, (size_t)r->n + 1, sizeof(slim_ctrie_node))) {
                free(path);
                return slim_error(SLIM_ERR_NOMEM, "constraint tokens: out of memory");
            }
            /* a boundary after byte d: ASCII, or the last byte its lead asks for */
            int32_t q = d;
            while (q > 0 && (w[q] & 0xC0) == 0x80)
                q--;
            int need = w[q] < 0x80 ? 1 : w[q] >= 0xF0 ? 4 : w[q] >= 0xE0 ? 3 : w[q] >= 0xC0 ? 2 : 0;
            bool bd = need && d - q + 1 == need;
            r->nodes[r->n] =
                (slim_ctrie_node){.byte = w[d], .boundary = bd, .depth = (uint16_t)(d + 1)};
            path[d + 1] = r->n++;
        }
        depth = len;
        r->nodes[path[depth]].tok_lo = k;
        r->nodes[path[depth]].tok_n = 1;
        prev = tok;
    }
    while (depth > 0)
        r->nodes[path[depth--]].next = r->n;
    r->nodes[0].next = r->n;
    free(path);
    /* subtree summaries for the bulk path of the mask (matcher.c) */
    r->tok_start = malloc(sizeof(int32_t) * ((size_t)r->n + 1));
    if (!r->tok_start) return slim_error(SLIM_ERR_NOMEM, "constraint tokens: out of memory");
    int32_t seen = 0;
    for (int32_t i = 0; i < r->n; i++) {
        r->tok_start[i] = seen;
        seen += r->nodes[i].tok_n;
    }
    r->tok_start[r->n] = seen;
    r->sub = calloc(2 * (size_t)r->n, sizeof(uint64_t));
    if (!r->sub) return slim_error(SLIM_ERR_NOMEM, "constraint tokens: out of memory");
    for (int32_t i = r->n - 1; i >= 1; i--) {
        slim_ctrie_node *nd = &r->nodes[i];
        uint8_t c = nd->byte;
        bool plain = c >= 0x20 && c < 0x7F && c != '"' && c != '\\';
        uint16_t h = 0;
        int hc = 0;
        uint64_t *sb = r->sub + 2 * (size_t)i;
        int bit = c < 0x80 ? c : 0;
        sb[bit >> 6] |= 1ull << (bit & 63);
        for (int32_t j = i + 1; j < nd->next; j = r->nodes[j].next) {
            sb[0] |= r->sub[2 * (size_t)j];
            sb[1] |= r->sub[2 * (size_t)j + 1];
            plain = plain && r->nodes[j].plain;
            if (r->nodes[j].h > h) h = r->nodes[j].h;
            if (r->nodes[j].hc > hc) hc = r->nodes[j].hc;
        }
        nd->plain = plain;
        nd->h = (uint16_t)(h + 1);
        hc += (c & 0xC0) != 0x80;
        nd->hc = (uint8_t)(hc < 255 ? hc : 255);
    }
    return SLIM_OK;
}

/* Complete UTF-8 characters (not '"', '\' or controls), then at most a valid
 * start of one more. */
static bool string_safe(const uint8_t *p, size_t n) {
    for (size_t i = 0; i < n;) {
        uint8_t c = p[i];
        if (c < 0x80) {
            if (c < 0x20 || c == '"' || c == '\\' || c == 0x7F) return false;
            i++;
            continue;
        }
        size_t len;
        uint8_t lo = 0x80, hi = 0xBF; /* the second byte's range */
        if (c >= 0xC2 && c <= 0xDF)
            len = 2;
        else if (c >= 0xE0 && c <= 0xEF) {
            len = 3;
            if (c == 0xE0) lo = 0xA0;
            if (c == 0xED) hi = 0x9F;
        } else if (c >= 0xF0 && c <= 0xF4) {
            len = 4;
            if (c == 0xF0) lo = 0x90;
            if (c == 0xF4) hi = 0x8F;
        } else
            return false;
        for (size_t k = 1; k < len; k++) {
            if (i + k >= n) return true; /* a valid start of a character */
            uint8_t d = p[i + k];
            if (k == 1 ? (d < lo || d > hi) : (d < 0x80 || d > 0xBF)) return false;
        }
        i += len;
    }
    return true;
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
    t->eos = malloc(sizeof(int32_t) * (size_t)n);
    const size_t words = ((size_t)n + 31) / 32 + 1;
    t->safe_mask = calloc(words, sizeof(uint32_t));
    t->safe_len_mask = calloc(words * (SLIM_CTOK_LEN_MAX + 1), sizeof(uint32_t));
    uint8_t *pick = malloc((size_t)n);
    if (!t->kind || !t->off || !t->bytes || !t->eos || !t->safe_mask || !t->safe_len_mask ||
        !pick) {
        free(pick);
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
        if (t->kind[i] == SLIM_CTOK_EOS) t->eos[t->n_eos++] = i;
    }
    for (int32_t i = 0; i < n; i++) {
        bool safe =
            t->kind[i] == SLIM_CTOK_TEXT && string_safe(t->bytes + off[i], off[i + 1] - off[i]);
        if (safe) t->safe_mask[i >> 5] |= 1u << (i & 31);
        pick[i] = 1;
        if (!safe) continue;
        int chars = 0;
        bool na = false;
        for (uint32_t b = off[i]; b < off[i + 1]; b++) {
            chars += (t->bytes[b] & 0xC0) != 0x80;
            na |= t->bytes[b] >= 0x80;
        }
        if (na && chars > t->na_chars) t->na_chars = chars;
        for (int c = chars; c <= SLIM_CTOK_LEN_MAX; c++)
            t->safe_len_mask[(size_t)c * words + (i >> 5)] |= 1u << (i & 31);
    }
    for (int32_t i = 0; i < n; i++)
        pick[i] = (t->safe_mask[i >> 5] >> (i & 31)) & 1;
    slim_status st = build_trie(t, pick, &t->safe);
    for (int32_t i = 0; i < n; i++)
        pick[i] = !pick[i];
    if (st == SLIM_OK) st = build_trie(t, pick, &t->unsafe);
    free(pick);
    if (st != SLIM_OK) {
        slim_ctokens_free(t);
        return st;
    }
    *out = t;
    return SLIM_OK;
}
