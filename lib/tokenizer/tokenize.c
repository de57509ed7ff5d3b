/* The tokenize entry point, shared by every vocabulary type, as llama.cpp's
 * llama_vocab::tokenize:
 *  1. special tokens are cut out of the raw text first (tokenizer_st_partition:
 *     every control / user-defined / unknown token, longest text first, each
 *     split out of every remaining text fragment; without PARSE_SPECIAL only
 *     the user-defined ones);
 *  2. each remaining text fragment goes to the vocabulary's tokenizer
 *     (SentencePiece: spm.c; byte-level BPE: bpe.c), special tokens stay as
 *     they are;
 *  3. with ADD_BOS (llama.cpp's add_special), BOS first and EOS last where the
 *     vocabulary asks for them. */
#include "core/grow.h"
#include "tokenizer/hf.h"
#include "tokenizer/vocab_internal.h"

#include <stdlib.h>
#include <string.h>

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
    if (!slim_grow((void **)&v->p, &v->cap, v->n + 1, sizeof *v->p)) return false;
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

/* ---- entry --------------------------------------------------------------- */

/* ADD_BOS is llama.cpp's add_special: BOS first if the vocabulary asks for it,
 * and EOS last if it asks for that (tokenizer.ggml.add_eos_token). */
static slim_status tokenize_all(const slim_vocab *v, const char *text, size_t len, uint32_t flags,
                                slim_ivec *out) {
    if (v->hf) return slim_hf_tokenize(v, text, len, flags, out); /* tokenizer.json */
    bool add_special = flags & SLIM_TOKENIZE_ADD_BOS;
    bool parse_special = flags & SLIM_TOKENIZE_PARSE_SPECIAL;
    if (add_special && v->add_bos && !slim_ivec_push(out, v->bos))
        return slim_error(SLIM_ERR_NOMEM, "slim_tokenize: out of memory");
    fvec frags;
    slim_status st = partition(v, text, len, parse_special, &frags);
    if (st) return st;
    slim_spm_session *spm = NULL;
    slim_bpe_session *bpe = NULL;
    bool prev_special = true; /* the text's start counts as after a special token */
    for (size_t f = 0; f < frags.n && !st; f++) {
        const frag *fr = &frags.p[f];
        if (fr->tok >= 0) {
            if (!slim_ivec_push(out, fr->tok))
                st = slim_error(SLIM_ERR_NOMEM, "slim_tokenize: out of memory");
            prev_special = true;
        } else if (v->type == SLIM_VOCAB_BPE) {
            st = slim_bpe_fragment(&bpe, v, text + fr->off, fr->len, out);
        } else {
            /* SentencePiece: a leading space where the fragment starts the text
             * or follows a special token */
            st = slim_spm_fragment(&spm, v, text + fr->off, fr->len,
                                   v->add_space_prefix && prev_special, out);
            prev_special = false;
        }
    }
    slim_spm_session_free(spm);
    slim_bpe_session_free(bpe);
    free(frags.p);
    if (st) return st;
    if (add_special && v->add_eos && !slim_ivec_push(out, v->eos))
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
    slim_ivec out = {0};
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
