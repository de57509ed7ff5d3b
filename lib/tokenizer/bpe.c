/* Byte-level BPE (tokenizer.ggml.model "gpt2"), token for token as llama.cpp's
 * llm_tokenizer_bpe_session:
 *  1. the pre-tokenizer named by tokenizer.ggml.pre cuts the fragment into
 *     words (bpe_pretok.c); each word's code points are encoded again as
 *     UTF-8 (invalid input has become U+FFFD, and so have code points past
 *     U+10FFFF, where llama.cpp aborts) and every byte is written as its
 *     GPT-2 code point (Ġ for a space, ...);
 *  2. where the pre-tokenizer says so (ignore_merges), a word that is a token
 *     is that token;
 *  3. otherwise the word starts as one symbol per character and the adjacent
 *     pair with the lowest merge rank (tokenizer.ggml.merges, "left right",
 *     rank = index; ties: leftmost) is merged until no pair has a rank;
 *  4. each symbol is its token; a symbol that is not a token becomes the
 *     tokens of its single bytes, those that exist (the rest is dropped, as
 *     llama.cpp drops it).
 * Special tokens are split out before (tokenize.c). */
#include "core/grow.h"
#include "tokenizer/bpe_pretok.h"
#include "tokenizer/bigram_heap.h"
#include "tokenizer/vocab_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- tokenizer.ggml.pre ------------------------------------------------------ */

/* llama.cpp's names for each regex set and what else they set (llama-vocab.cpp,
 * llama_vocab::impl::load); names it does not know are refused there too. */
typedef struct pre_name {
    const char *name;
    int kind;
    bool clean_spaces, ignore_merges, add_bos;
} pre_name;

static const pre_name PRE_NAMES[] = {
    {"default", SLIM_PRE_DEFAULT, true, false, false},
    {"gpt-2", SLIM_PRE_GPT2, true, false, false},
    {"phi-2", SLIM_PRE_GPT2, true, false, false},
    {"mpt", SLIM_PRE_GPT2, true, false, false},
    {"olmo", SLIM_PRE_GPT2, true, false, false},
    {"jais", SLIM_PRE_GPT2, true, false, false},
    {"gigachat", SLIM_PRE_GPT2, true, false, false},
    {"a.x-4.0", SLIM_PRE_GPT2, true, false, false},
    {"mellum", SLIM_PRE_GPT2, true, false, false},
    {"exaone4", SLIM_PRE_GPT2, true, false, false},
    {"trillion", SLIM_PRE_GPT2, false, false, false},
    {"granite-docling", SLIM_PRE_GPT2, false, false, false},
    {"smollm", SLIM_PRE_SMOLLM, false, false, false},
    {"command-r", SLIM_PRE_SMOLLM, false, false, false},
    {"starcoder", SLIM_PRE_SMOLLM, true, false, false},
    {"refact", SLIM_PRE_SMOLLM, true, false, false},
    {"codeshell", SLIM_PRE_SMOLLM, true, false, false},
    {"exaone", SLIM_PRE_SMOLLM, true, false, false},
    {"minerva-7b", SLIM_PRE_SMOLLM, true, false, false},
    {"mellum2", SLIM_PRE_SMOLLM, true, false, false},
    {"llama3", SLIM_PRE_LLAMA3, true, true, true},
    {"llama-v3", SLIM_PRE_LLAMA3, true, true, true},
    {"llama-bpe", SLIM_PRE_LLAMA3, true, true, true},
    {"falcon3", SLIM_PRE_LLAMA3, true, true, true},
    {"falcon-h1", SLIM_PRE_LLAMA3, true, true, true},
    {"pixtral", SLIM_PRE_LLAMA3, true, true, true},
    {"midm-2.0", SLIM_PRE_LLAMA3, true, true, true},
    {"lfm2", SLIM_PRE_LLAMA3, true, true, true},
    {"dbrx", SLIM_PRE_LLAMA3, true, false, false}, /* cl100k: Phi-4 */
    {"smaug-bpe", SLIM_PRE_LLAMA3, true, false, false},
    {"qwen2", SLIM_PRE_QWEN2, false, false, false},
    {"deepseek-r1-qwen", SLIM_PRE_QWEN2, false, false, false},
    {"kormo", SLIM_PRE_QWEN2, false, false, false},
    {"f2llmv2", SLIM_PRE_QWEN2, false, false, false},
    {"hunyuan", SLIM_PRE_QWEN2, false, false, false},
    {"solar-open", SLIM_PRE_QWEN2, false, false, false},
    {"megrez", SLIM_PRE_QWEN2, true, false, false},
    {"stablelm2", SLIM_PRE_QWEN2, true, false, false},
    {"tekken", SLIM_PRE_TEKKEN, false, true, true},
    {"gpt-4o", SLIM_PRE_GPT4O, false, false, false}, /* o200k: Phi-4-mini */
    {"llama4", SLIM_PRE_GPT4O, false, false, false},
    {"kanana2", SLIM_PRE_GPT4O, false, false, false},
    {"talkie", SLIM_PRE_GPT4O, false, false, false},
    {"minimax-m2", SLIM_PRE_GPT4O, false, false, false},
};

/* ---- merges: (left, right) -> rank ------------------------------------------- */

static uint32_t pair_hash(const char *l, size_t ln, const char *r, size_t rn) {
    uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a over both sides, then the split */
    for (size_t i = 0; i < ln; i++)
        h = (h ^ (uint8_t)l[i]) * 0x100000001b3ull;
    for (size_t i = 0; i < rn; i++)
        h = (h ^ (uint8_t)r[i]) * 0x100000001b3ull;
    h ^= (uint64_t)ln * 0x9e3779b97f4a7c15ull;
    return (uint32_t)(h ^ (h >> 32));
}

/* The rank of merging l and r, or -1. */
static int32_t find_rank(const slim_vocab *v, const char *l, size_t ln, const char *r, size_t rn) {
    if (!v->mslot) return -1;
    for (uint32_t i = pair_hash(l, ln, r, rn) & v->mmask;; i = (i + 1) & v->mmask) {
        int32_t k = v->mslot[i];
        if (k < 0) return -1;
        const slim_merge *m = &v->merges[k];
        const char *s = v->merge_buf + m->off;
        if (m->left == ln && m->right == rn && memcmp(s, l, ln) == 0 &&
            memcmp(s + ln + 1, r, rn) == 0)
            return k;
    }
}

static slim_status load_merges(const slim_gguf *g, slim_vocab *v) {
    const slim_gguf_kv *kv;
    if (!slim_gguf_find(g, "tokenizer.ggml.merges"))
        return slim_error(SLIM_ERR_FORMAT,
                          "tokenizer.ggml.merges: missing (a gpt2 vocabulary needs its merges)");
    if (!slim_gguf_get_arr(g, "tokenizer.ggml.merges", SLIM_GGUF_STRING, &kv))
        return slim_error(SLIM_ERR_FORMAT, "tokenizer.ggml.merges: not a string array");
    if (kv->arr_n > INT32_MAX / 4)
        return slim_error(SLIM_ERR_FORMAT, "tokenizer.ggml.merges: %llu merges",
                          (unsigned long long)kv->arr_n);
    size_t n = (size_t)kv->arr_n, total = 0;
    for (size_t i = 0; i < n; i++) {
        total += kv->arr_strs[i].len;
        if (kv->arr_strs[i].len > UINT32_MAX / 2 || total > UINT32_MAX / 2)
            return slim_error(SLIM_ERR_FORMAT, "tokenizer.ggml.merges: too long");
    }
    uint32_t cap = 1;
    while (cap < 2 * n + 2)
        cap <<= 1;
    v->merge_buf = malloc(total + 1);
    v->merges = malloc((n + 1) * sizeof *v->merges);
    v->mslot = malloc((size_t)cap * sizeof *v->mslot);
    if (!v->merge_buf || !v->merges || !v->mslot)
        return slim_error(SLIM_ERR_NOMEM, "vocabulary: out of memory");
    memset(v->mslot, 0xff, (size_t)cap * sizeof *v->mslot);
    v->mmask = cap - 1;
    v->n_merges = (int32_t)n;
    size_t off = 0;
    for (size_t i = 0; i < n; i++) {
        const slim_gguf_str *s = &kv->arr_strs[i];
        memcpy(v->merge_buf + off, s->ptr, s->len);
        const char *t = v->merge_buf + off;
        /* "left right", split at the first space after the first byte; no
         * space: llama.cpp ranks an empty pair, which never matches */
        const char *sp = s->len > 1 ? memchr(t + 1, ' ', s->len - 1) : NULL;
        slim_merge *m = &v->merges[i];
        m->off = (uint32_t)off;
        m->left = sp ? (uint32_t)(sp - t) : 0;
        m->right = sp ? (uint32_t)(s->len - m->left - 1) : 0;
        off += s->len;
        if (!sp) continue;
        if (find_rank(v, t, m->left, sp + 1, m->right) >= 0) continue; /* the first rank wins */
        uint32_t h = pair_hash(t, m->left, sp + 1, m->right);
        uint32_t j = h & v->mmask;
        while (v->mslot[j] >= 0)
            j = (j + 1) & v->mmask;
        v->mslot[j] = (int32_t)i;
    }
    return SLIM_OK;
}

slim_status slim_bpe_load(const slim_gguf *g, slim_vocab *v) {
    slim_status st = load_merges(g, v);
    if (st) return st;
    slim_gguf_str pre = {0};
    const pre_name *p = &PRE_NAMES[0]; /* missing: llama.cpp warns and takes "default" */
    if (slim_gguf_find(g, "tokenizer.ggml.pre")) {
        if (!slim_gguf_get_str(g, "tokenizer.ggml.pre", &pre))
            return slim_error(SLIM_ERR_FORMAT, "tokenizer.ggml.pre: not a string");
        p = NULL;
        for (size_t i = 0; i < sizeof PRE_NAMES / sizeof PRE_NAMES[0]; i++)
            if (strlen(PRE_NAMES[i].name) == pre.len &&
                memcmp(PRE_NAMES[i].name, pre.ptr, pre.len) == 0)
                p = &PRE_NAMES[i];
        if (!p)
            return slim_error(SLIM_ERR_UNSUPPORTED,
                              "tokenizer.ggml.pre '%.*s': unknown pre-tokenizer (slim knows "
                              "llama.cpp's gpt-2, smollm, llama-bpe, dbrx, qwen2, tekken, gpt-4o, "
                              "default and their aliases)",
                              (int)(pre.len > 64 ? 64 : pre.len), pre.ptr);
    }
    v->pre = p->kind;
    v->clean_spaces = p->clean_spaces;
    v->ignore_merges = p->ignore_merges;
    /* llama.cpp's BPE defaults; the file's keys come after */
    v->add_bos = p->add_bos;
    v->add_eos = false;
    v->add_space_prefix = false;
    v->bos = v->eos = v->n > 11 ? 11 : -1;
    v->unk = -1;
    return SLIM_OK;
}

/* ---- tokenize -------------------------------------------------------------- */

typedef struct sym {
    int32_t prev, next;
    uint32_t off, n; /* bytes of the encoded word; n == 0: merged away */
} sym;

struct slim_bpe_session {
    slim_pretok pt;
    char *word; /* the encoded word */
    size_t word_cap;
    sym *syms;
    size_t syms_cap;
    slim_bigram_heap heap;
};

static bool try_bigram(slim_bpe_session *s, const slim_vocab *v, int32_t left, int32_t right) {
    if (left < 0 || right < 0) return true;
    const sym *l = &s->syms[left], *r = &s->syms[right];
    int32_t rank = find_rank(v, s->word + l->off, l->n, s->word + r->off, r->n);
    if (rank < 0) return true;
    return slim_bigram_push(&s->heap, (slim_bigram){left, right, -(float)rank, l->n + r->n});
}

/* BPE on s->word[0..len) */
static slim_status bpe_word(slim_bpe_session *s, const slim_vocab *v, size_t len, slim_ivec *out) {
    const slim_status nomem = SLIM_ERR_NOMEM;
    if (v->ignore_merges) {
        int32_t tok = slim_vocab_lookup(v, s->word, len);
        if (tok >= 0) return slim_ivec_push(out, tok) ? SLIM_OK : nomem;
    }
    if (!slim_grow((void **)&s->syms, &s->syms_cap, len, sizeof *s->syms)) return nomem;
    int32_t n_sym = 0;
    for (size_t off = 0; off < len;) {
        size_t n = (uint8_t)s->word[off] < 0x80 ? 1 : 2; /* GPT-2 code points are < U+0800 */
        if (n > len - off) n = len - off;
        s->syms[n_sym] =
            (sym){n_sym - 1, off + n == len ? -1 : n_sym + 1, (uint32_t)off, (uint32_t)n};
        n_sym++;
        off += n;
    }
    s->heap.n = 0;
    for (int32_t i = 1; i < n_sym; i++)
        if (!try_bigram(s, v, i - 1, i)) return nomem;
    while (s->heap.n > 0) {
        slim_bigram bg = slim_bigram_pop(&s->heap);
        sym *l = &s->syms[bg.left], *r = &s->syms[bg.right];
        if (l->n == 0 || r->n == 0 || l->n + r->n != bg.size) continue; /* outdated */
        l->n += r->n;
        r->n = 0;
        l->next = r->next;
        if (r->next >= 0) s->syms[r->next].prev = bg.left;
        if (!try_bigram(s, v, l->prev, bg.left) || !try_bigram(s, v, bg.left, l->next))
            return nomem;
    }
    for (int32_t i = 0; i >= 0 && n_sym > 0; i = s->syms[i].next) {
        const sym *y = &s->syms[i];
        int32_t tok = slim_vocab_lookup(v, s->word + y->off, y->n);
        if (tok >= 0) {
            if (!slim_ivec_push(out, tok)) return nomem;
            continue;
        }
        for (uint32_t k = 0; k < y->n; k++) { /* single bytes, where they are tokens */
            int32_t bt = slim_vocab_lookup(v, s->word + y->off + k, 1);
            if (bt >= 0 && !slim_ivec_push(out, bt)) return nomem;
        }
    }
    return SLIM_OK;
}

slim_status slim_bpe_fragment(slim_bpe_session **session, const slim_vocab *v, const char *text,
                              size_t len, slim_ivec *out) {
    if (!*session && !(*session = calloc(1, sizeof **session)))
        return slim_error(SLIM_ERR_NOMEM, "slim_tokenize: out of memory");
    slim_bpe_session *s = *session;
    slim_status st = slim_pretok_split(&s->pt, v->pre, text, len);
    if (st) return st;
    const uint32_t *cp = s->pt.cp;
    for (size_t w = 0; w < s->pt.n_piece; w++) {
        size_t n_cp = s->pt.piece[w];
        if (!slim_grow((void **)&s->word, &s->word_cap, n_cp * 8, 1))
            return slim_error(SLIM_ERR_NOMEM, "slim_tokenize: out of memory");
        size_t len_w = 0;
        for (size_t k = 0; k < n_cp; k++) {
            uint8_t u[4];
            size_t nu = slim_utf8_encode(cp[k], u);
            for (size_t j = 0; j < nu; j++) {
                uint32_t c = slim_byte_to_cp(u[j]);
                if (c < 0x80) {
                    s->word[len_w++] = (char)c;
                } else {
                    s->word[len_w++] = (char)(0xc0 | c >> 6);
                    s->word[len_w++] = (char)(0x80 | (c & 0x3f));
                }
            }
        }
        cp += n_cp;
        if (bpe_word(s, v, len_w, out))
            return slim_error(SLIM_ERR_NOMEM, "slim_tokenize: out of memory");
    }
    return SLIM_OK;
}

void slim_bpe_session_free(slim_bpe_session *s) {
    if (!s) return;
    slim_pretok_free(&s->pt);
    free(s->word);
    free(s->syms);
    free(s->heap.v);
    free(s);
}

/* ---- detokenize ------------------------------------------------------------ */

typedef struct sink {
    char *dst;
    size_t cap, n;
    int lstrip;
} sink;

static void put(sink *k, const char *s, size_t n) {
    for (size_t i = 0; i < n; i++) {
        if (k->lstrip > 0 && s[i] == ' ' && k->n == 0) {
            k->lstrip--;
            continue;
        }
        k->lstrip = 0;
        if (k->n < k->cap) k->dst[k->n] = s[i];
        k->n++;
    }
}

size_t slim_bpe_decode(const char *text, size_t len, int lstrip, char *dst, size_t cap) {
    sink k = {dst, dst ? cap : 0, 0, lstrip};
    const uint8_t *t = (const uint8_t *)text;
    for (size_t i = 0; i < len;) {
        size_t used;
        uint32_t c = slim_utf8_decode(t + i, len - i, &used);
        i += used;
        int b = slim_cp_to_byte(c);
        if (b >= 0) {
            char ch = (char)b;
            put(&k, &ch, 1);
            continue;
        }
        /* as llama.cpp: "[UNK_BYTE_0x<the code point's UTF-8 in hex><token text>]" */
        uint8_t u[4];
        size_t nu = slim_utf8_encode(c, u);
        char hex[16];
        put(&k, "[UNK_BYTE_0x", 12);
        for (size_t j = 0; j < nu; j++) {
            snprintf(hex, sizeof hex, "%02x", u[j]);
            put(&k, hex, 2);
        }
        put(&k, text, len);
        put(&k, "]", 1);
    }
    return k.n;
}

/* llama.cpp's three passes (llama_vocab::impl::detokenize, clean_spaces), in
 * place: each reads the previous pass's text and writes at most as much. */
size_t slim_bpe_clean_spaces(char *t, size_t n) {
    /* 1: no space before ? ! . , */
    size_t total = n ? 1 : 0;
    for (size_t i = 1; i < n; i++) {
        char x = t[i];
        if (t[i - 1] == ' ' && (x == '?' || x == '!' || x == '.' || x == ',')) total--;
        t[total++] = x;
    }
    /* 2: " ' " becomes "'" */
    n = total;
    total = n ? 1 : 0;
    for (size_t i = 1; i < n; i++) {
        char x = t[i];
        if (x == '\'' && i + 1 < n && t[i - 1] == ' ' && t[i + 1] == ' ') {
            total--;
            t[++i] = '\0';
        }
        t[total++] = x;
    }
    /* 3: no space before 's 'm 're 've */
    n = total;
    total = n ? 1 : 0;
    for (size_t i = 1; i < n; i++) {
        char x = t[i];
        if (t[i - 1] == ' ' && x == '\'' && i + 1 < n) {
            char x1 = t[i + 1];
            if (x1 == 's' || x1 == 'm')
                total--;
            else if (i + 2 < n &&
                     ((x1 == 'r' && t[i + 2] == 'e') || (x1 == 'v' && t[i + 2] == 'e')))
                total--;
        }
        t[total++] = x;
    }
    return total;
}
