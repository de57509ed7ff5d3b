/* The vocabulary's storage, below every other tokenizer file: the text -> id
 * map, the id vector, and freeing a vocab with its tokenizer.json pipeline.
 * The loaders (vocab.c, hf_json.c), the tokenizers (spm.c, bpe.c, hf_tok.c)
 * and tokenize.c call down here and never into each other's loaders
 * (tools/check/symbols.py keeps it so). */
#include <stdlib.h>
#include <string.h>

#include "core/grow.h"
#include "tokenizer/hf.h"
#include "tokenizer/vocab_internal.h"

static uint32_t hash_bytes(const char *s, size_t len) {
    uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a, 64-bit, folded */
    for (size_t i = 0; i < len; i++)
        h = (h ^ (uint8_t)s[i]) * 0x100000001b3ull;
    return (uint32_t)(h ^ (h >> 32));
}

int32_t slim_vocab_lookup(const slim_vocab *v, const char *s, size_t len) {
    uint32_t h = hash_bytes(s, len);
    for (uint32_t i = h & v->hmask;; i = (i + 1) & v->hmask) {
        int32_t id = v->hslot[i];
        if (id < 0) return -1;
        if (v->hhash[i] == h && v->len[id] == len && memcmp(v->text[id], s, len) == 0) return id;
    }
}

int32_t slim_vocab_hash_insert(slim_vocab *v, int32_t id) {
    uint32_t h = hash_bytes(v->text[id], v->len[id]);
    for (uint32_t i = h & v->hmask;; i = (i + 1) & v->hmask) {
        int32_t other = v->hslot[i];
        if (other < 0) {
            v->hslot[i] = id;
            v->hhash[i] = h;
            return -1;
        }
        if (v->hhash[i] == h && v->len[other] == v->len[id] &&
            memcmp(v->text[other], v->text[id], v->len[id]) == 0)
            return other;
    }
}

bool slim_ivec_push(slim_ivec *v, int32_t x) {
    if (!slim_grow((void **)&v->p, &v->cap, v->n + 1, sizeof *v->p)) return false;
    v->p[v->n++] = x;
    return true;
}

void slim_vocab_free(slim_vocab *v) {
    if (!v) return;
    free(v->text_buf);
    free(v->text);
    free(v->len);
    free(v->score);
    free(v->attr);
    free(v->byte_val);
    free(v->hslot);
    free(v->hhash);
    free(v->special);
    free(v->trie);
    free(v->eog);
    free(v->merge_buf);
    free(v->merges);
    free(v->mslot);
    slim_hf_free(v->hf);
    free(v->chat_template);
    free(v);
}

void slim_hf_free(slim_hf *h) {
    if (!h) return;
    for (int i = 0; i < h->n_norm; i++) {
        free(h->norm[i].a);
        free(h->norm[i].b);
    }
    for (int i = 0; i < h->n_pre; i++)
        free(h->pre[i].pat);
    for (int i = 0; i < h->n_dec; i++) {
        free(h->dec[i].a);
        free(h->dec[i].b);
    }
    for (int32_t i = 0; i < h->n_added; i++)
        free(h->added[i].norm);
    free(h->norm);
    free(h->pre);
    free(h->dec);
    free(h->added);
    free(h->added_of);
    free(h->raw.node);
    free(h->normed.node);
    free(h->in_model);
    free(h->mkey);
    free(h->mrank);
    free(h->mnew);
    free(h->prefix);
    free(h->suffix);
    free(h);
}
