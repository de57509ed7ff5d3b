/* SentencePiece-style tokenization, token for token as llama.cpp's SPM path:
 *  1. special tokens are cut out of the raw text first (tokenizer_st_partition:
 *     every control / user-defined / unknown token, longest text first, each
 *     split out of every remaining text fragment; without PARSE_SPECIAL only
 *     the user-defined ones);
 *  2. each remaining text fragment gets a leading space if the vocabulary asks
 *     for one and the fragment starts the text or follows a special token,
 *     spaces become U+2581, the text is cut into UTF-8 characters (by the lead
 *     byte's length alone, so invalid UTF-8 is just bytes), and the adjacent
 *     pair whose concatenation is the highest-scoring token is merged, again
 *     and again (ties: leftmost first);
 *  3. pieces that are not tokens fall back to byte tokens <0xXX>. */
#include "tokenizer/vocab_internal.h"

#include <stdlib.h>
#include <string.h>

typedef struct ivec {
    int32_t *p;
    size_t n, cap;
} ivec;

static bool ivec_push(ivec *v, int32_t x) {
    if (v->n == v->cap) {
        size_t ncap = v->cap ? v->cap * 2 : 64;
        int32_t *p = realloc(v->p, ncap * sizeof *p);
        if (!p) return false;
        v->p = p;
        v->cap = ncap;
    }
    v->p[v->n++] = x;
    return true;
}

/* ---- special-token partition ------------------------------------------- */

typedef struct frag {
    int32_t tok; /* >= 0: a special token; -1: text[off, off + len) */
    size_t off, len;
} frag;

static bool is_space(char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

/* Mark (in `seen`, by rank) every special token whose text occurs in text. */
static void find_specials(const slim_vocab *v, const char *text, size_t len, uint8_t *seen) {
    for (size_t i = 0; i < len; i++) {
        int32_t node = v->root_child[(uint8_t)text[i]];
        size_t j = i + 1;
        while (node >= 0) {
            if (v->trie[node].rank >= 0) seen[v->trie[node].rank] = 1;
            if (j >= len) break;
            uint8_t c = (uint8_t)text[j++];
            int32_t ch = v->trie[node].child;
            while (ch >= 0 && v->trie[ch].byte != c)
                ch = v->trie[ch].sibling;
            node = ch;
        }
    }
}

typedef struct fvec {
    frag *p;
    size_t n, cap;
} fvec;

static bool fvec_push(fvec *v, frag f) {
    if (v->n == v->cap) {
        size_t ncap = v->cap ? v->cap * 2 : 16;
        frag *p = realloc(v->p, ncap * sizeof *p);
        if (!p) return false;
        v->p = p;
        v->cap = ncap;
    }
    v->p[v->n++] = f;
    return true;
}

/* Split every text fragment of `in` at the occurrences of special token `tok`
 * (llama.cpp's loop: leftmost match, then go on after it), into `out`. */
static bool split_by(const slim_vocab *v, const char *text, int32_t tok, const fvec *in,
                     fvec *out) {
    const char *t = v->text[tok];
    size_t tlen = v->len[tok];
    bool lstrip = v->attr[tok] & SLIM_ATTR_LSTRIP, rstrip = v->attr[tok] & SLIM_ATTR_RSTRIP;
    out->n = 0;
    for (size_t f = 0; f < in->n; f++) {
        if (in->p[f].tok >= 0) {
            if (!fvec_push(out, in->p[f])) return false;
            continue;
        }
        size_t pos = in->p[f].off, end = in->p[f].off + in->p[f].len;
        for (;;) {
            const char *m = pos < end ? memmem(text + pos, end - pos, t, tlen) : NULL;
            if (!m) {
                if (end > pos && !fvec_push(out, (frag){-1, pos, end - pos})) return false;
                break;
            }
            size_t at = (size_t)(m - text), left = at - pos;
            if (lstrip)
                while (left > 0 && is_space(text[pos + left - 1]))
                    left--;
            if (left > 0 && !fvec_push(out, (frag){-1, pos, left})) return false;
            if (!fvec_push(out, (frag){tok, 0, 0})) return false;
            if (at + tlen >= end) break;
            pos = at + tlen;
            if (rstrip)
                while (pos < end && is_space(text[pos]))
                    pos++;
        }
    }
    return true;
}

/* The text as a list of fragments: special tokens and the text between them. */
static slim_status partition(const slim_vocab *v, const char *text, size_t len, bool parse_special,
                             fvec *out) {
    *out = (fvec){0};
    if (len == 0) return SLIM_OK;
    fvec a = {0}, b = {0};
    uint8_t *seen = calloc((size_t)v->n_special + 1, 1);
    bool ok = seen && fvec_push(&a, (frag){-1, 0, len});
    if (ok) find_specials(v, text, len, seen);
    for (int32_t r = 0; ok && r < v->n_special; r++) {
        if (!seen[r]) continue;
        int32_t tok = v->special[r];
        if (!parse_special && (v->attr[tok] & (SLIM_ATTR_CONTROL | SLIM_ATTR_UNKNOWN))) continue;
        ok = split_by(v, text, tok, &a, &b);
        fvec tmp = a;
        a = b;
        b = tmp;
    }
    free(seen);
    free(b.p);
    if (!ok) {
        free(a.p);
        return slim_error(SLIM_ERR_NOMEM, "slim_tokenize: out of memory");
    }
    *out = a;
    return SLIM_OK;
}

/* ---- SentencePiece merges ------------------------------------------------ */

typedef struct sym {
    int32_t prev, next;
    size_t off, n; /* bytes of the escaped text; n == 0: merged away */
} sym;

typedef struct bigram {
    int32_t left, right;
    float score;
    size_t size;
} bigram;

typedef struct spm {
    const slim_vocab *v;
    char *buf; /* the escaped fragment */
    size_t buf_cap;
    sym *syms;
    size_t syms_cap;
    bigram *heap;
    size_t heap_n, heap_cap;
} spm;

/* Pop order: the highest score first, then the leftmost. */
static bool before(const bigram *a, const bigram *b) {
    return a->score > b->score || (a->score == b->score && a->left < b->left);
}

static bool heap_push(spm *s, bigram bg) {
    if (s->heap_n == s->heap_cap) {
        size_t ncap = s->heap_cap ? s->heap_cap * 2 : 256;
        bigram *p = realloc(s->heap, ncap * sizeof *p);
        if (!p) return false;
        s->heap = p;
        s->heap_cap = ncap;
    }
    size_t i = s->heap_n++;
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!before(&bg, &s->heap[parent])) break;
        s->heap[i] = s->heap[parent];
        i = parent;
    }
    s->heap[i] = bg;
    return true;
}

static bigram heap_pop(spm *s) {
    bigram top = s->heap[0], last = s->heap[--s->heap_n];
    size_t i = 0, n = s->heap_n;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n) break;
        if (c + 1 < n && before(&s->heap[c + 1], &s->heap[c])) c++;
        if (!before(&s->heap[c], &last)) break;
        s->heap[i] = s->heap[c];
        i = c;
    }
    if (n) s->heap[i] = last;
    return top;
}

static bool try_bigram(spm *s, int32_t left, int32_t right) {
    if (left < 0 || right < 0) return true;
    size_t size = s->syms[left].n + s->syms[right].n;
    int32_t tok = slim_vocab_lookup(s->v, s->buf + s->syms[left].off, size);
    if (tok < 0) return true;
    return heap_push(s, (bigram){left, right, s->v->score[tok], size});
}

static size_t utf8_len(uint8_t lead) {
    static const uint8_t lens[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
    return lens[lead >> 4];
}

static slim_status spm_fragment(spm *s, const char *text, size_t len, bool space_prefix,
                                ivec *out) {
    const slim_vocab *v = s->v;
    size_t need = space_prefix ? 3 : 0;
    for (size_t i = 0; i < len; i++)
        need += text[i] == ' ' ? 3 : 1;
    if (need > s->buf_cap) {
        char *p = realloc(s->buf, need);
        sym *q = realloc(s->syms, need * sizeof *q);
        if (p) s->buf = p;
        if (q) s->syms = q;
        if (!p || !q) return slim_error(SLIM_ERR_NOMEM, "slim_tokenize: out of memory");
        s->buf_cap = s->syms_cap = need;
    }
    size_t bl = 0;
    if (space_prefix) {
        memcpy(s->buf, "\xe2\x96\x81", 3);
        bl = 3;
    }
    for (size_t i = 0; i < len; i++) {
        if (text[i] == ' ') {
            memcpy(s->buf + bl, "\xe2\x96\x81", 3);
            bl += 3;
        } else {
            s->buf[bl++] = text[i];
        }
    }

    int32_t n_sym = 0;
    for (size_t off = 0; off < bl;) {
        size_t n = utf8_len((uint8_t)s->buf[off]);
        if (n > bl - off) n = bl - off;
        s->syms[n_sym] = (sym){n_sym - 1, off + n == bl ? -1 : n_sym + 1, off, n};
        n_sym++;
        off += n;
    }

    s->heap_n = 0;
    for (int32_t i = 1; i < n_sym; i++)
        if (!try_bigram(s, i - 1, i))
            return slim_error(SLIM_ERR_NOMEM, "slim_tokenize: out of memory");
    while (s->heap_n > 0) {
        bigram bg = heap_pop(s);
        sym *l = &s->syms[bg.left], *r = &s->syms[bg.right];
        if (l->n == 0 || r->n == 0 || l->n + r->n != bg.size) continue; /* stale */
        l->n += r->n;
        r->n = 0;
        l->next = r->next;
        if (r->next >= 0) s->syms[r->next].prev = bg.left;
        if (!try_bigram(s, l->prev, bg.left) || !try_bigram(s, bg.left, l->next))
            return slim_error(SLIM_ERR_NOMEM, "slim_tokenize: out of memory");
    }

    for (int32_t i = 0; i >= 0 && n_sym > 0; i = s->syms[i].next) {
        const sym *y = &s->syms[i];
        int32_t tok = slim_vocab_lookup(v, s->buf + y->off, y->n);
        if (tok >= 0) {
            if (!ivec_push(out, tok))
                return slim_error(SLIM_ERR_NOMEM, "slim_tokenize: out of memory");
            continue;
        }
        for (size_t k = 0; k < y->n; k++) { /* byte fallback */
            uint8_t b = (uint8_t)s->buf[y->off + k];
            int32_t bt = v->byte_tok[b] >= 0 ? v->byte_tok[b] : v->unk;
            if (bt < 0)
                return slim_error(SLIM_ERR_UNSUPPORTED,
                                  "slim_tokenize: byte 0x%02X has no token and there is no "
                                  "unknown token",
                                  b);
            if (!ivec_push(out, bt))
                return slim_error(SLIM_ERR_NOMEM, "slim_tokenize: out of memory");
        }
    }
    return SLIM_OK;
}

/* ---- entry --------------------------------------------------------------- */

/* ADD_BOS is llama.cpp's add_special: BOS first if the vocabulary asks for it,
 * and EOS last if it asks for that (tokenizer.ggml.add_eos_token). */
static slim_status tokenize_all(const slim_vocab *v, const char *text, size_t len, uint32_t flags,
                                ivec *out) {
    bool add_special = flags & SLIM_TOKENIZE_ADD_BOS;
    bool parse_special = flags & SLIM_TOKENIZE_PARSE_SPECIAL;
    if (add_special && v->add_bos && !ivec_push(out, v->bos))
        return slim_error(SLIM_ERR_NOMEM, "slim_tokenize: out of memory");
    fvec frags;
    slim_status st = partition(v, text, len, parse_special, &frags);
    if (st) return st;
    spm s = {.v = v};
    bool prev_special = true; /* the text's start counts as after a special token */
    for (size_t f = 0; f < frags.n && !st; f++) {
        const frag *fr = &frags.p[f];
        if (fr->tok >= 0) {
            if (!ivec_push(out, fr->tok))
                st = slim_error(SLIM_ERR_NOMEM, "slim_tokenize: out of memory");
            prev_special = true;
        } else {
            st =
                spm_fragment(&s, text + fr->off, fr->len, v->add_space_prefix && prev_special, out);
            prev_special = false;
        }
    }
    free(s.buf);
    free(s.syms);
    free(s.heap);
    free(frags.p);
    if (st) return st;
    if (add_special && v->add_eos && !ivec_push(out, v->eos))
        return slim_error(SLIM_ERR_NOMEM, "slim_tokenize: out of memory");
    return SLIM_OK;
}

slim_status slim_vocab_tokenize(const slim_vocab *v, const char *text, size_t len, uint32_t flags,
                                int32_t *buf, size_t cap, size_t *n_out) {
    if (!n_out) return slim_error(SLIM_ERR_INVALID_ARG, "slim_tokenize: n_out is NULL");
    *n_out = 0;
    if (!v) return slim_error(SLIM_ERR_INVALID_ARG, "slim_tokenize: vocabulary is NULL");
    if (!text && len) return slim_error(SLIM_ERR_INVALID_ARG, "slim_tokenize: text is NULL");
    if (!buf && cap)
        return slim_error(SLIM_ERR_INVALID_ARG, "slim_tokenize: buf is NULL but cap is %zu", cap);
    if (flags & ~(uint32_t)(SLIM_TOKENIZE_ADD_BOS | SLIM_TOKENIZE_PARSE_SPECIAL))
        return slim_error(SLIM_ERR_INVALID_ARG, "slim_tokenize: unknown flags 0x%x", flags);
    if (len > (size_t)INT32_MAX / 4)
        return slim_error(SLIM_ERR_INVALID_ARG, "slim_tokenize: text of %zu bytes is too long",
                          len);
    ivec out = {0};
    slim_status st = tokenize_all(v, text, len, flags, &out);
    if (st) {
        free(out.p);
        return st;
    }
    *n_out = out.n;
    if (out.n > cap && buf) {
        free(out.p);
        return slim_error(SLIM_ERR_BUFFER_TOO_SMALL, "slim_tokenize: %zu tokens, buffer holds %zu",
                          *n_out, cap);
    }
    if (buf && out.n) memcpy(buf, out.p, out.n * sizeof *buf);
    free(out.p);
    return SLIM_OK;
}
