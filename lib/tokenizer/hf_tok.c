/* Running a tokenizer.json pipeline (hf.h), token for token as the `tokenizers`
 * package's Tokenizer.encode / decode:
 *  1. invalid UTF-8 becomes U+FFFD per maximal bad sequence (what Python's
 *     decode("utf-8", "replace") and Rust's from_utf8_lossy make of it);
 *  2. added tokens are cut out first (AddedVocabulary: leftmost-longest, with
 *     lstrip / rstrip / single_word; normalized=false ones in the raw text,
 *     the others in the normalized text); without PARSE_SPECIAL, special ones
 *     are text (the package's encode_special_tokens);
 *  3. each other piece goes through the normalizer, the pre-tokenizers and the
 *     BPE model (merges by rank, ties leftmost; byte fallback, unk, fuse_unk,
 *     ignore_merges exactly as BPE::merge_word / Word::merge_all);
 *  4. with ADD_BOS (add_special_tokens) the post-processor's tokens go around.
 * Decoding runs the decoder chain over the tokens' texts. */
#include "core/grow.h"
#include "tokenizer/bpe_pretok.h"
#include "tokenizer/hf.h"

#include <stdlib.h>
#include <string.h>

#define NOMEM slim_error(SLIM_ERR_NOMEM, "slim_tokenize: out of memory")

/* ---- strings ------------------------------------------------------------------ */

typedef struct sbuf {
    char *p;
    size_t n, cap;
} sbuf;

static bool sb_put(sbuf *b, const char *s, size_t n) {
    if (!slim_grow((void **)&b->p, &b->cap, b->n + n + 1, 1)) return false;
    if (n) memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = '\0';
    return true;
}

/* pieces of a buffer; at0: the piece starts at the original text's offset 0 */
typedef struct piece {
    size_t off, len;
    bool at0;
} piece;
typedef struct pvec {
    piece *p;
    size_t n, cap;
} pvec;

static bool pv_push(pvec *v, size_t off, size_t len, bool at0) {
    if (len == 0) return true; /* `tokenizers` drops empty splits */
    if (!slim_grow((void **)&v->p, &v->cap, v->n + 1, sizeof *v->p)) return false;
    v->p[v->n++] = (piece){off, len, at0};
    return true;
}

static size_t cp_len(uint8_t lead) {
    return lead < 0x80 ? 1 : lead < 0xe0 ? 2 : lead < 0xf0 ? 3 : 4;
}

static uint32_t cp_at(const char *s, size_t n, size_t *used) {
    return slim_utf8_decode((const uint8_t *)s, n, used);
}

static bool is_ws(const char *s, size_t n, size_t *used) {
    return slim_unicode_flags(cp_at(s, n, used)) & SLIM_UC_SPACE;
}

/* Length of the valid UTF-8 sequence at s (1..4), or 0 with *bad = the bytes
 * of its maximal valid prefix (Unicode's "maximal subpart", at least 1). */
static size_t utf8_valid(const uint8_t *s, size_t n, size_t *bad) {
    uint8_t c = s[0];
    size_t len;
    uint8_t lo = 0x80, hi = 0xbf;
    if (c < 0x80) return 1;
    if (c >= 0xc2 && c <= 0xdf) {
        len = 2;
    } else if (c >= 0xe0 && c <= 0xef) {
        len = 3;
        if (c == 0xe0) lo = 0xa0;
        if (c == 0xed) hi = 0x9f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        len = 4;
        if (c == 0xf0) lo = 0x90;
        if (c == 0xf4) hi = 0x8f;
    } else {
        *bad = 1;
        return 0;
    }
    size_t i = 1;
    for (; i < len && i < n; i++) {
        uint8_t x = s[i];
        if (x < (i == 1 ? lo : 0x80) || x > (i == 1 ? hi : 0xbf)) break;
    }
    if (i == len) return len;
    *bad = i;
    return 0;
}

/* text with invalid sequences as U+FFFD; NULL in *out when it is valid */
static slim_status sanitize(const char *text, size_t len, char **out, size_t *out_n) {
    *out = NULL;
    size_t i = 0, bad = 0;
    while (i < len) {
        size_t k = utf8_valid((const uint8_t *)text + i, len - i, &bad);
        if (!k) break;
        i += k;
    }
    if (i == len) return SLIM_OK;
    sbuf b = {0};
    if (!sb_put(&b, text, i)) return NOMEM;
    while (i < len) {
        size_t k = utf8_valid((const uint8_t *)text + i, len - i, &bad);
        if (k ? !sb_put(&b, text + i, k) : !sb_put(&b, "\xef\xbf\xbd", 3)) {
            free(b.p);
            return NOMEM;
        }
        i += k ? k : bad;
    }
    *out = b.p;
    *out_n = b.n;
    return SLIM_OK;
}

/* ---- merges ------------------------------------------------------------------ */

bool slim_hf_merge(const slim_hf *h, int32_t left, int32_t right, uint32_t *rank, int32_t *merged) {
    if (!h->mkey) return false;
    uint64_t key = ((uint64_t)(uint32_t)left << 32 | (uint32_t)right) + 1;
    for (uint32_t i = slim_hf_merge_hash(key) & h->mmask;; i = (i + 1) & h->mmask) {
        if (h->mkey[i] == 0) return false;
        if (h->mkey[i] == key) {
            *rank = h->mrank[i];
            *merged = h->mnew[i];
            return true;
        }
    }
}

/* ---- normalizer --------------------------------------------------------------- */

slim_status slim_hf_normalize(const slim_hf *h, const char *s, size_t n, char **out,
                              size_t *out_n) {
    sbuf cur = {0}, nxt = {0};
    if (!sb_put(&cur, s, n)) return NOMEM;
    for (int k = 0; k < h->n_norm; k++) {
        const hf_norm *o = &h->norm[k];
        nxt.n = 0;
        bool ok = sb_put(&nxt, "", 0);
        if (o->kind == HF_NORM_REPLACE) {
            size_t i = 0;
            while (ok && i < cur.n) {
                const char *m = memmem(cur.p + i, cur.n - i, o->a, o->alen);
                size_t end = m ? (size_t)(m - cur.p) : cur.n;
                ok = sb_put(&nxt, cur.p + i, end - i) && (!m || sb_put(&nxt, o->b, o->blen));
                i = m ? end + o->alen : cur.n;
            }
        } else if (o->kind == HF_NORM_PREPEND) {
            if (cur.n) ok = sb_put(&nxt, o->a, o->alen) && sb_put(&nxt, cur.p, cur.n);
        } else { /* STRIP */
            size_t a = 0, b = cur.n, u;
            while (o->left && a < b && is_ws(cur.p + a, b - a, &u))
                a += u;
            while (o->right && b > a) {
                size_t st = b - 1;
                while (st > a && ((uint8_t)cur.p[st] & 0xc0) == 0x80)
                    st--;
                if (!is_ws(cur.p + st, b - st, &u)) break;
                b = st;
            }
            ok = sb_put(&nxt, cur.p + a, b - a);
        }
        if (!ok) {
            free(cur.p);
            free(nxt.p);
            return NOMEM;
        }
        sbuf t = cur;
        cur = nxt;
        nxt = t;
    }
    free(nxt.p);
    *out = cur.p;
    *out_n = cur.n;
    return SLIM_OK;
}

/* ---- added tokens ------------------------------------------------------------- */

typedef struct frag {
    int32_t id; /* an added token, or -1: text[off, off + len) */
    size_t off, len;
} frag;
typedef struct fvec {
    frag *p;
    size_t n, cap;
} fvec;

static bool fv_push(fvec *v, int32_t id, size_t off, size_t len) {
    if (id < 0 && len == 0) return true;
    if (!slim_grow((void **)&v->p, &v->cap, v->n + 1, sizeof *v->p)) return false;
    v->p[v->n++] = (frag){id, off, len};
    return true;
}

/* The longest added token starting at s[i]: its index, end in *end; or -1. */
static int32_t longest(const hf_trie *t, const char *s, size_t n, size_t i, size_t *end) {
    int32_t best = -1;
    int32_t node = t->root[(uint8_t)s[i]];
    for (size_t j = i + 1; node >= 0; j++) {
        if (t->node[node].rank >= 0) {
            best = t->node[node].rank;
            *end = j;
        }
        if (j >= n) break;
        int32_t ch = t->node[node].child;
        while (ch >= 0 && t->node[ch].byte != (uint8_t)s[j])
            ch = t->node[ch].sibling;
        node = ch;
    }
    return best;
}

static bool word_char(const char *s, size_t n) {
    size_t u;
    uint32_t c = cp_at(s, n, &u);
    return c == '_' || (slim_unicode_flags(c) & (SLIM_UC_LETTER | SLIM_UC_NUMBER));
}

/* AddedVocabulary::find_matches over s[0..n) */
static slim_status split_added(const slim_hf *h, const hf_trie *t, const char *s, size_t n,
                               bool parse_special, fvec *out) {
    size_t done = 0; /* end of the last split */
    out->n = 0;
    for (size_t i = 0; i < n;) {
        size_t end = 0;
        int32_t r = t->n > 1 ? longest(t, s, n, i, &end) : -1;
        if (r < 0) {
            i++;
            continue;
        }
        const hf_added *a = &h->added[r];
        size_t start = i, stop = end;
        i = end; /* the matcher goes on after this match, taken or not */
        if (a->special && !parse_special) continue;
        if (a->single_word) {
            bool left_ok = true;
            if (start > 0) { /* the character before start */
                size_t p = start - 1;
                while (p > 0 && ((uint8_t)s[p] & 0xc0) == 0x80)
                    p--;
                left_ok = !word_char(s + p, n - p);
            }
            if (!left_ok || (stop < n && word_char(s + stop, n - stop))) continue;
        }
        if (a->lstrip) {
            while (start > done) {
                size_t p = start - 1, u;
                while (p > done && ((uint8_t)s[p] & 0xc0) == 0x80)
                    p--;
                if (!is_ws(s + p, n - p, &u)) break;
                start = p;
            }
        }
        if (a->rstrip) {
            size_t u;
            while (stop < n && is_ws(s + stop, n - stop, &u))
                stop += u;
            i = stop;
        }
        if (!fv_push(out, -1, done, start - done) || !fv_push(out, a->id, start, stop - start))
            return NOMEM;
        done = stop;
    }
    if (!fv_push(out, -1, done, n - done)) return NOMEM;
    return SLIM_OK;
}

/* ---- pre-tokenizers ------------------------------------------------------------- */

typedef struct sess {
    sbuf a, b;   /* piece texts, double-buffered */
    pvec pa, pb; /* pieces */
    slim_pretok pt;
    sbuf word; /* a model word (GPT-2 characters with ByteLevel) */
    struct sym {
        int32_t id, prev, next;
        uint32_t len; /* 0: merged away */
    } * sym;
    size_t sym_cap;
    struct mrg {
        uint32_t rank, pos;
        int32_t id;
    } * heap;
    size_t heap_n, heap_cap;
    fvec f1, f2;
} sess;

/* one piece's splits from piece-relative [off, off+len) list */
static bool emit(sess *S, const piece *src, size_t off, size_t len) {
    return pv_push(&S->pb, src->off + off, len, src->at0 && off == 0);
}

/* Split on a string pattern: the matches and the text between them, folded
 * per behaviour as NormalizedString::split does. */
static bool split_str(sess *S, const piece *pc, const hf_pre *p) {
    const char *s = S->a.p + pc->off;
    size_t n = pc->len, i = 0, k0 = S->pb.n;
    piece *e = NULL; /* entries: at0 reused as "is a match" */
    size_t ne = 0, cap = 0;
    bool ok = true;
    while (ok && i < n) {
        const char *m = memmem(s + i, n - i, p->pat, p->plen);
        size_t ms = m ? (size_t)(m - s) : n;
        if (ms > i)
            ok = slim_grow((void **)&e, &cap, ne + 1, sizeof *e) &&
                 (e[ne++] = (piece){i, ms - i, false}, true);
        if (ok && m)
            ok = slim_grow((void **)&e, &cap, ne + 1, sizeof *e) &&
                 (e[ne++] = (piece){ms, p->plen, true}, true);
        i = m ? ms + p->plen : n;
    }
    /* fold; `prev` is the previous entry's match flag in the walk's direction */
    bool prev = false;
    if (p->behavior == HF_SPLIT_NEXT) { /* walked from the end */
        size_t out_n = 0;
        for (size_t k = ne; k-- > 0;) {
            if (e[k].at0 && !prev && out_n) {
                e[ne - out_n].len +=
                    e[ne - out_n].off - e[k].off; /* grow the last kept backwards */
                e[ne - out_n].off = e[k].off;
            } else {
                e[ne - ++out_n] = e[k]; /* keep it (compacted at the end of the array) */
            }
            prev = e[k].at0;
        }
        for (size_t k = ne - out_n; ok && k < ne; k++)
            ok = emit(S, pc, e[k].off, e[k].len);
    } else {
        for (size_t k = 0; ok && k < ne; k++) {
            bool m = e[k].at0;
            if (p->behavior == HF_SPLIT_REMOVED) {
                if (!m) ok = emit(S, pc, e[k].off, e[k].len);
            } else if (p->behavior == HF_SPLIT_ISOLATED) {
                ok = emit(S, pc, e[k].off, e[k].len);
            } else if (S->pb.n > k0 && ((p->behavior == HF_SPLIT_PREV && m && !prev) ||
                                        (p->behavior == HF_SPLIT_CONTIGUOUS && m == prev))) {
                S->pb.p[S->pb.n - 1].len += e[k].len;
            } else {
                ok = emit(S, pc, e[k].off, e[k].len);
            }
            prev = m;
        }
    }
    free(e);
    return ok;
}

static bool split_regex(sess *S, const piece *pc, int kind) {
    const char *s = S->a.p + pc->off;
    if (slim_pretok_split(&S->pt, kind, s, pc->len)) return false;
    size_t off = 0;
    for (size_t w = 0; w < S->pt.n_piece; w++) {
        size_t bytes = 0;
        for (size_t k = 0; k < S->pt.piece[w]; k++)
            bytes += cp_len((uint8_t)s[off + bytes]);
        if (!emit(S, pc, off, bytes)) return false;
        off += bytes;
    }
    return true;
}

static bool split_digits(sess *S, const piece *pc, bool individual) {
    const char *s = S->a.p + pc->off;
    size_t n = pc->len, start = 0, u;
    bool prev_num = false;
    for (size_t i = 0; i < n; i += u) {
        bool num = slim_unicode_flags(cp_at(s + i, n - i, &u)) & SLIM_UC_NUMBER;
        if (i > start && (num != prev_num || (num && individual))) {
            if (!emit(S, pc, start, i - start)) return false;
            start = i;
        }
        prev_num = num;
    }
    return emit(S, pc, start, n - start);
}

/* Pieces whose texts change: written into S->b, pieces in S->pb. */
static bool rewrite(sess *S, const piece *pc, const hf_pre *p) {
    const char *s = S->a.p + pc->off;
    size_t n = pc->len, base = S->b.n;
    if (p->kind == HF_PRE_BYTELEVEL) { /* the prefix space */
        if (p->prefix_space && s[0] != ' ' && !sb_put(&S->b, " ", 1)) return false;
        if (!sb_put(&S->b, s, n)) return false;
        return pv_push(&S->pb, base, S->b.n - base, pc->at0);
    }
    /* Metaspace: spaces become the replacement, which is prepended per the scheme */
    bool pre = p->scheme == HF_PREPEND_ALWAYS || (p->scheme == HF_PREPEND_FIRST && pc->at0);
    /* (after the replacement: a leading space counts as one) */
    bool starts = s[0] == ' ' || (n >= p->plen && !memcmp(s, p->pat, p->plen));
    if (pre && !starts && !sb_put(&S->b, p->pat, p->plen)) return false;
    for (size_t i = 0; i < n; i++)
        if (!(s[i] == ' ' ? sb_put(&S->b, p->pat, p->plen) : sb_put(&S->b, s + i, 1))) return false;
    if (!p->split) return pv_push(&S->pb, base, S->b.n - base, pc->at0);
    /* split before every replacement (MergedWithNext) */
    size_t start = base;
    for (size_t i = base; i + p->plen <= S->b.n; i++)
        if (i > start && !memcmp(S->b.p + i, p->pat, p->plen)) {
            if (!pv_push(&S->pb, start, i - start, pc->at0 && start == base)) return false;
            start = i;
        }
    return pv_push(&S->pb, start, S->b.n - start, pc->at0 && start == base);
}

/* S->a / S->pa hold one normalized piece; run every pre-tokenizer over it. */
static slim_status pretokenize(const slim_hf *h, sess *S) {
    for (int k = 0; k < h->n_pre; k++) {
        const hf_pre *p = &h->pre[k];
        bool moves = p->kind == HF_PRE_BYTELEVEL || p->kind == HF_PRE_METASPACE;
        S->pb.n = 0;
        S->b.n = 0;
        if (moves && !sb_put(&S->b, "", 0)) return NOMEM;
        for (size_t i = 0; i < S->pa.n; i++) {
            piece pc = S->pa.p[i];
            bool ok;
            if (p->kind == HF_PRE_SPLIT_STR) {
                ok = split_str(S, &pc, p);
            } else if (p->kind == HF_PRE_SPLIT_RE) {
                ok = split_regex(S, &pc, p->pre);
            } else if (p->kind == HF_PRE_DIGITS) {
                ok = split_digits(S, &pc, p->individual);
            } else {
                ok = rewrite(S, &pc, p);
            }
            if (!ok) return NOMEM;
        }
        if (moves) {
            sbuf t = S->a;
            S->a = S->b;
            S->b = t;
            if (p->kind == HF_PRE_BYTELEVEL && p->use_regex) { /* then GPT-2's regex */
                pvec q = S->pa;
                S->pa = S->pb;
                S->pb = q;
                S->pb.n = 0;
                for (size_t i = 0; i < S->pa.n; i++) {
                    piece pc = S->pa.p[i];
                    if (!split_regex(S, &pc, SLIM_PRE_GPT2)) return NOMEM;
                }
            }
        }
        pvec q = S->pa;
        S->pa = S->pb;
        S->pb = q;
    }
    return SLIM_OK;
}

/* ---- BPE model -------------------------------------------------------------------- */

static bool mless(const struct mrg *x, const struct mrg *y) {
    return x->rank != y->rank ? x->rank < y->rank : x->pos < y->pos;
}

static bool heap_push(sess *S, uint32_t rank, uint32_t pos, int32_t id) {
    if (!slim_grow((void **)&S->heap, &S->heap_cap, S->heap_n + 1, sizeof *S->heap)) return false;
    size_t i = S->heap_n++;
    struct mrg m = {rank, pos, id};
    while (i > 0 && mless(&m, &S->heap[(i - 1) / 2])) {
        S->heap[i] = S->heap[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    S->heap[i] = m;
    return true;
}

static struct mrg heap_pop(sess *S) {
    struct mrg top = S->heap[0], last = S->heap[--S->heap_n];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= S->heap_n) break;
        if (c + 1 < S->heap_n && mless(&S->heap[c + 1], &S->heap[c])) c++;
        if (!mless(&S->heap[c], &last)) break;
        S->heap[i] = S->heap[c];
        i = c;
    }
    if (S->heap_n) S->heap[i] = last;
    return top;
}

static bool add_sym(sess *S, size_t *n, int32_t id, uint32_t len) {
    if (!slim_grow((void **)&S->sym, &S->sym_cap, *n + 1, sizeof *S->sym)) return false;
    S->sym[*n] = (struct sym){id, (int32_t)*n - 1, -1, len};
    if (*n) S->sym[*n - 1].next = (int32_t)*n;
    (*n)++;
    return true;
}

static int32_t model_id(const slim_vocab *v, const char *s, size_t n) {
    int32_t id = slim_vocab_lookup(v, s, n);
    return id >= 0 && v->hf->in_model[id] ? id : -1;
}

/* BPE::tokenize on one word */
static slim_status bpe_word(const slim_vocab *v, sess *S, const char *w, size_t n, slim_ivec *out) {
    const slim_hf *h = v->hf;
    if (n == 0) return SLIM_OK;
    if (h->ignore_merges) {
        int32_t id = model_id(v, w, n);
        if (id >= 0) return slim_ivec_push(out, id) ? SLIM_OK : NOMEM;
    }
    size_t ns = 0;
    int32_t unk = -1;
    uint32_t unk_len = 0;
    for (size_t i = 0; i < n;) {
        size_t cl = cp_len((uint8_t)w[i]);
        if (cl > n - i) cl = n - i;
        int32_t id = model_id(v, w + i, cl);
        if (id >= 0) {
            if (unk >= 0 && !add_sym(S, &ns, unk, unk_len)) return NOMEM;
            unk = -1;
            if (!add_sym(S, &ns, id, (uint32_t)cl)) return NOMEM;
            i += cl;
            continue;
        }
        bool bytes = h->byte_fallback;
        for (size_t k = 0; bytes && k < cl; k++)
            bytes = h->byte_id[(uint8_t)w[i + k]] >= 0;
        if (bytes) { /* as merge_word: byte tokens go in before a pending unk */
            for (size_t k = 0; k < cl; k++)
                if (!add_sym(S, &ns, h->byte_id[(uint8_t)w[i + k]], 1)) return NOMEM;
        } else if (h->unk >= 0) {
            if (unk >= 0 && h->fuse_unk) {
                unk_len += (uint32_t)cl;
            } else {
                if (unk >= 0 && !add_sym(S, &ns, unk, unk_len)) return NOMEM;
                unk = h->unk;
                unk_len = (uint32_t)cl;
            }
        } /* no unk token: the character is dropped */
        i += cl;
    }
    if (unk >= 0 && !add_sym(S, &ns, unk, unk_len)) return NOMEM;

    /* Word::merge_all: lowest rank first, then leftmost; an entry is stale when
     * its pair no longer makes the same token */
    S->heap_n = 0;
    uint32_t rank;
    int32_t merged;
    for (size_t i = 0; i + 1 < ns; i++)
        if (slim_hf_merge(h, S->sym[i].id, S->sym[i + 1].id, &rank, &merged) &&
            !heap_push(S, rank, (uint32_t)i, merged))
            return NOMEM;
    while (S->heap_n) {
        struct mrg top = heap_pop(S);
        struct sym *cur = &S->sym[top.pos];
        if (cur->len == 0 || cur->next < 0) continue;
        struct sym *right = &S->sym[cur->next];
        if (!slim_hf_merge(h, cur->id, right->id, &rank, &merged) || merged != top.id) continue;
        cur->id = top.id;
        cur->len += right->len;
        right->len = 0;
        cur->next = right->next;
        if (cur->next >= 0) S->sym[cur->next].prev = (int32_t)top.pos;
        if (cur->prev >= 0 && slim_hf_merge(h, S->sym[cur->prev].id, cur->id, &rank, &merged) &&
            !heap_push(S, rank, (uint32_t)cur->prev, merged))
            return NOMEM;
        if (cur->next >= 0 && slim_hf_merge(h, cur->id, S->sym[cur->next].id, &rank, &merged) &&
            !heap_push(S, rank, top.pos, merged))
            return NOMEM;
    }
    for (int32_t i = ns ? 0 : -1; i >= 0; i = S->sym[i].next)
        if (!slim_ivec_push(out, S->sym[i].id)) return NOMEM;
    return SLIM_OK;
}

/* One normalized piece (already free of added tokens): pre-tokenize, BPE. */
static slim_status run_model(const slim_vocab *v, sess *S, const char *s, size_t n, bool at0,
                             slim_ivec *out) {
    const slim_hf *h = v->hf;
    S->a.n = 0;
    S->pa.n = 0;
    if (!sb_put(&S->a, s, n) || !pv_push(&S->pa, 0, n, at0)) return NOMEM;
    slim_status st = pretokenize(h, S);
    if (st) return st;
    for (size_t i = 0; i < S->pa.n; i++) {
        const char *w = S->a.p + S->pa.p[i].off;
        size_t wn = S->pa.p[i].len;
        if (h->byte_level) { /* bytes as GPT-2's code points */
            S->word.n = 0;
            for (size_t k = 0; k < wn; k++) {
                uint8_t u[4];
                size_t nu = slim_utf8_encode(slim_byte_to_cp((uint8_t)w[k]), u);
                if (!sb_put(&S->word, (const char *)u, nu)) return NOMEM;
            }
            w = S->word.p;
            wn = S->word.n;
        }
        if ((st = bpe_word(v, S, w, wn, out))) return st;
    }
    return SLIM_OK;
}

static void sess_free(sess *S) {
    free(S->a.p);
    free(S->b.p);
    free(S->pa.p);
    free(S->pb.p);
    slim_pretok_free(&S->pt);
    free(S->word.p);
    free(S->sym);
    free(S->heap);
    free(S->f1.p);
    free(S->f2.p);
}

slim_status slim_hf_tokenize(const slim_vocab *v, const char *text, size_t len, uint32_t flags,
                             slim_ivec *out) {
    const slim_hf *h = v->hf;
    bool add = flags & SLIM_TOKENIZE_ADD_BOS, parse = flags & SLIM_TOKENIZE_PARSE_SPECIAL;
    char *clean;
    size_t clean_n;
    slim_status st = sanitize(text, len, &clean, &clean_n);
    if (st) return st;
    if (clean) {
        text = clean;
        len = clean_n;
    }
    sess S = {0};
    for (int32_t i = 0; add && i < h->n_prefix; i++)
        if (!slim_ivec_push(out, h->prefix[i])) st = NOMEM;
    if (!st) st = split_added(h, &h->raw, text, len, parse, &S.f1);
    for (size_t f = 0; !st && f < S.f1.n; f++) {
        frag fr = S.f1.p[f];
        if (fr.id >= 0) {
            if (!slim_ivec_push(out, fr.id)) st = NOMEM;
            continue;
        }
        char *norm;
        size_t nn;
        if ((st = slim_hf_normalize(h, text + fr.off, fr.len, &norm, &nn))) break;
        if (!(st = split_added(h, &h->normed, norm, nn, parse, &S.f2)))
            for (size_t g = 0; !st && g < S.f2.n; g++) {
                frag fg = S.f2.p[g];
                if (fg.id >= 0)
                    st = slim_ivec_push(out, fg.id) ? SLIM_OK : NOMEM;
                else
                    st = run_model(v, &S, norm + fg.off, fg.len, fr.off == 0 && fg.off == 0, out);
            }
        free(norm);
    }
    for (int32_t i = 0; !st && add && i < h->n_suffix; i++)
        if (!slim_ivec_push(out, h->suffix[i])) st = NOMEM;
    sess_free(&S);
    free(clean);
    return st;
}

/* ---- decoding ---------------------------------------------------------------------- */

/* A list of strings in one buffer (the decoder chain's tokens). */
typedef struct slist {
    sbuf s;
    pvec p;
} slist;

static bool sl_add(slist *l, const char *s, size_t n) {
    size_t off = l->s.n;
    if (!sb_put(&l->s, s, n)) return false;
    if (!slim_grow((void **)&l->p.p, &l->p.cap, l->p.n + 1, sizeof *l->p.p)) return false;
    l->p.p[l->p.n++] = (piece){off, n, false};
    return true;
}

/* from_utf8_lossy of b[0..n) appended to l as one string */
static bool add_lossy(slist *l, const char *b, size_t n) {
    char *clean;
    size_t cn;
    if (sanitize(b, n, &clean, &cn)) return false;
    bool ok = clean ? sl_add(l, clean, cn) : sl_add(l, b, n);
    free(clean);
    return ok;
}

static int hexv(char c) {
    return c >= '0' && c <= '9'   ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                  : -1;
}

/* "<0xXX>": the byte, or -1 */
static int byte_token(const char *s, size_t n) {
    if (n != 6 || memcmp(s, "<0x", 3) || s[5] != '>') return -1;
    int a = hexv(s[3]), b = hexv(s[4]);
    return a < 0 || b < 0 ? -1 : a * 16 + b;
}

/* One decoder step from `in` to `out`.  raw: a single token's piece for
 * streaming (bytes as they are, no Strip, not the first token). */
static bool dec_step(const hf_dec *d, const slist *in, slist *out, bool raw) {
    const char *base = in->s.p;
    sbuf acc = {0};
    bool ok = true;
    if (d->kind == HF_DEC_BYTELEVEL || d->kind == HF_DEC_FUSE) {
        ok = sb_put(&acc, "", 0);
        for (size_t i = 0; ok && i < in->p.n; i++) {
            const char *s = base + in->p.p[i].off;
            size_t n = in->p.p[i].len, u;
            if (d->kind == HF_DEC_FUSE) {
                ok = sb_put(&acc, s, n);
                continue;
            }
            size_t mark = acc.n;
            for (size_t k = 0; ok && k < n; k += u) { /* GPT-2 code points to bytes */
                int b = slim_cp_to_byte(cp_at(s + k, n - k, &u));
                if (b < 0) { /* not all of them: the token's own bytes */
                    acc.n = mark;
                    ok = sb_put(&acc, s, n);
                    break;
                }
                char c = (char)b;
                ok = sb_put(&acc, &c, 1);
            }
        }
        ok = ok && ((raw || d->kind == HF_DEC_FUSE) ? sl_add(out, acc.p, acc.n)
                                                    : add_lossy(out, acc.p, acc.n));
        free(acc.p);
        return ok;
    }
    if (d->kind == HF_DEC_BYTEFALLBACK) {
        ok = sb_put(&acc, "", 0);
        for (size_t i = 0; ok && i <= in->p.n; i++) {
            int b = i < in->p.n ? byte_token(base + in->p.p[i].off, in->p.p[i].len) : -1;
            if (b >= 0) {
                char c = (char)b;
                ok = sb_put(&acc, &c, 1);
                continue;
            }
            if (acc.n) { /* the bytes so far: valid UTF-8, else one U+FFFD per byte */
                char *clean;
                size_t cn;
                if (raw || (!sanitize(acc.p, acc.n, &clean, &cn) && !clean)) {
                    ok = sl_add(out, acc.p, acc.n);
                } else {
                    free(clean);
                    sbuf r = {0};
                    for (size_t k = 0; ok && k < acc.n; k++)
                        ok = sb_put(&r, "\xef\xbf\xbd", 3);
                    ok = ok && sl_add(out, r.p, r.n);
                    free(r.p);
                }
                acc.n = 0;
            }
            if (ok && i < in->p.n) ok = sl_add(out, base + in->p.p[i].off, in->p.p[i].len);
        }
        free(acc.p);
        return ok;
    }
    for (size_t i = 0; ok && i < in->p.n; i++) {
        const char *s = base + in->p.p[i].off;
        size_t n = in->p.p[i].len;
        acc.n = 0;
        ok = sb_put(&acc, "", 0);
        if (d->kind == HF_DEC_REPLACE) {
            for (size_t k = 0; ok && k < n;) {
                const char *m = memmem(s + k, n - k, d->a, d->alen);
                size_t e = m ? (size_t)(m - s) : n;
                ok = sb_put(&acc, s + k, e - k) && (!m || sb_put(&acc, d->b, d->blen));
                k = m ? e + d->alen : n;
            }
        } else if (d->kind == HF_DEC_STRIP) {
            size_t a = 0, b = n;
            for (int k = 0;
                 !raw && k < d->start && a + d->alen <= b && !memcmp(s + a, d->a, d->alen); k++)
                a += d->alen;
            for (int k = 0;
                 !raw && k < d->stop && b >= a + d->alen && !memcmp(s + b - d->alen, d->a, d->alen);
                 k++)
                b -= d->alen;
            ok = sb_put(&acc, s + a, b - a);
        } else { /* METASPACE: the replacement is a space, dropped in the first token */
            bool first = i == 0 && !raw && d->scheme != HF_PREPEND_NEVER;
            for (size_t k = 0; ok && k < n;) {
                if (k + d->alen <= n && !memcmp(s + k, d->a, d->alen)) {
                    if (!first) ok = sb_put(&acc, " ", 1);
                    k += d->alen;
                } else {
                    ok = sb_put(&acc, s + k, 1);
                    k++;
                }
            }
        }
        ok = ok && sl_add(out, acc.p, acc.n);
    }
    free(acc.p);
    return ok;
}

static slim_status decode(const slim_vocab *v, const int32_t *tokens, size_t n, bool special,
                          bool raw, char **out, size_t *out_n) {
    const slim_hf *h = v->hf;
    slist a = {0}, b = {0};
    bool ok = sb_put(&a.s, "", 0);
    for (size_t i = 0; ok && i < n; i++) {
        int32_t t = tokens[i];
        int32_t ai = h->added_of[t];
        if (ai < 0 && !h->in_model[t]) continue; /* a hole */
        if (!special && ai >= 0 && h->added[ai].special) continue;
        ok = sl_add(&a, v->text[t], v->len[t]);
    }
    for (int k = 0; ok && h->has_decoder && k < h->n_dec; k++) {
        b.s.n = 0;
        b.p.n = 0;
        ok = sb_put(&b.s, "", 0) && dec_step(&h->dec[k], &a, &b, raw);
        slist t = a;
        a = b;
        b = t;
    }
    sbuf r = {0};
    ok = ok && sb_put(&r, "", 0);
    for (size_t i = 0; ok && i < a.p.n; i++) /* no decoder: joined with spaces */
        ok = (i == 0 || h->has_decoder || sb_put(&r, " ", 1)) &&
             sb_put(&r, a.s.p + a.p.p[i].off, a.p.p[i].len);
    free(a.s.p);
    free(a.p.p);
    free(b.s.p);
    free(b.p.p);
    if (!ok) {
        free(r.p);
        return slim_error(SLIM_ERR_NOMEM, "slim_detokenize: out of memory");
    }
    *out = r.p;
    *out_n = r.n;
    return SLIM_OK;
}

slim_status slim_hf_detokenize(const slim_vocab *v, const int32_t *tokens, size_t n, bool special,
                               char **out, size_t *out_n) {
    return decode(v, tokens, n, special, false, out, out_n);
}

slim_status slim_hf_piece(const slim_vocab *v, int32_t token, bool special, char **out,
                          size_t *out_n) {
    return decode(v, &token, 1, special, true, out, out_n);
}
