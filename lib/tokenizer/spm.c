/* SentencePiece-style tokenization of one text fragment, token for token as
 * llama.cpp's SPM path (llm_tokenizer_spm_session):
 *  1. a leading space if the caller asks for one (the vocabulary's space
 *     prefix, where the fragment starts the text or follows a special token),
 *     spaces become U+2581, the text is cut into UTF-8 characters (by the lead
 *     byte's length alone, so invalid UTF-8 is just bytes), and the adjacent
 *     pair whose concatenation is the highest-scoring token is merged, again
 *     and again (ties: leftmost first);
 *  2. pieces that are not tokens fall back to byte tokens <0xXX>.
 * Special tokens are split out before (tokenize.c). */
#include "tokenizer/bigram_heap.h"
#include "tokenizer/vocab_internal.h"

#include <stdlib.h>
#include <string.h>

typedef struct sym {
    int32_t prev, next;
    size_t off, n; /* bytes of the escaped text; n == 0: merged away */
} sym;

struct slim_spm_session {
    const slim_vocab *v;
    char *buf; /* the escaped fragment */
    size_t buf_cap;
    sym *syms;
    size_t syms_cap;
    slim_bigram_heap heap;
};
typedef struct slim_spm_session spm;

static bool try_bigram(spm *s, int32_t left, int32_t right) {
    if (left < 0 || right < 0) return true;
    size_t size = s->syms[left].n + s->syms[right].n;
    int32_t tok = slim_vocab_lookup(s->v, s->buf + s->syms[left].off, size);
    if (tok < 0) return true;
    return slim_bigram_push(&s->heap, (slim_bigram){left, right, s->v->score[tok], size});
}

static size_t utf8_len(uint8_t lead) {
    static const uint8_t lens[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
    return lens[lead >> 4];
}

slim_status slim_spm_fragment(slim_spm_session **session, const slim_vocab *v, const char *text,
                              size_t len, bool space_prefix, slim_ivec *out) {
    if (!*session && !(*session = calloc(1, sizeof **session)))
        return slim_error(SLIM_ERR_NOMEM, "slim_tokenize: out of memory");
    spm *s = *session;
    s->v = v;
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

    s->heap.n = 0;
    for (int32_t i = 1; i < n_sym; i++)
        if (!try_bigram(s, i - 1, i))
            return slim_error(SLIM_ERR_NOMEM, "slim_tokenize: out of memory");
    while (s->heap.n > 0) {
        slim_bigram bg = slim_bigram_pop(&s->heap);
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
            if (!slim_ivec_push(out, tok))
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
            if (!slim_ivec_push(out, bt))
                return slim_error(SLIM_ERR_NOMEM, "slim_tokenize: out of memory");
        }
    }
    return SLIM_OK;
}

void slim_spm_session_free(slim_spm_session *s) {
    if (!s) return;
    free(s->buf);
    free(s->syms);
    free(s->heap.v);
    free(s);
}
