/* The vocabulary from GGUF metadata (tokenizer.ggml.*), token -> text and
 * detokenization, following llama.cpp's llama_vocab (load, token_to_piece,
 * detokenize) for SentencePiece ("llama") and byte-level BPE ("gpt2")
 * vocabularies; BPE's own parts are in bpe.c. */
#include "tokenizer/hf.h"
#include "tokenizer/vocab_internal.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LOWSP "\xe2\x96\x81" /* U+2581, SentencePiece's space */
#define FWBAR "\xef\xbd\x9c" /* U+FF5C, DeepSeek's full-width bar */

static int32_t lookup_cstr(const slim_vocab *v, const char *s) {
    return slim_vocab_lookup(v, s, strlen(s));
}

/* ---- load ---------------------------------------------------------------- */

static bool str_eq(const slim_gguf_str *s, const char *c) {
    size_t n = strlen(c);
    return s->len == n && memcmp(s->ptr, c, n) == 0;
}

/* An optional token id key: absent leaves *id alone; present must be in range. */
const slim_vocab_id_key slim_vocab_id_keys[SLIM_VOCAB_N_ID_KEYS] = {
    {"tokenizer.ggml.bos_token_id", offsetof(slim_vocab, bos), false},
    {"tokenizer.ggml.eos_token_id", offsetof(slim_vocab, eos), false},
    {"tokenizer.ggml.eot_token_id", offsetof(slim_vocab, eot), false},
    {"tokenizer.ggml.eom_token_id", offsetof(slim_vocab, eom), false},
    {"tokenizer.ggml.unknown_token_id", offsetof(slim_vocab, unk), false},
    {"tokenizer.ggml.seperator_token_id", offsetof(slim_vocab, sep), false},
    {"tokenizer.ggml.padding_token_id", offsetof(slim_vocab, pad), false},
    {"tokenizer.ggml.mask_token_id", offsetof(slim_vocab, mask), false},
    {"tokenizer.ggml.fim_pre_token_id", offsetof(slim_vocab, fim_pre), false},
    {"tokenizer.ggml.fim_suf_token_id", offsetof(slim_vocab, fim_suf), false},
    {"tokenizer.ggml.fim_mid_token_id", offsetof(slim_vocab, fim_mid), false},
    {"tokenizer.ggml.fim_pad_token_id", offsetof(slim_vocab, fim_pad), false},
    {"tokenizer.ggml.fim_rep_token_id", offsetof(slim_vocab, fim_rep), false},
    {"tokenizer.ggml.fim_sep_token_id", offsetof(slim_vocab, fim_sep), false},
    {"tokenizer.ggml.prefix_token_id", offsetof(slim_vocab, fim_pre), true},
    {"tokenizer.ggml.suffix_token_id", offsetof(slim_vocab, fim_suf), true},
    {"tokenizer.ggml.middle_token_id", offsetof(slim_vocab, fim_mid), true},
};

static slim_status read_id(const slim_gguf *g, const char *key, int32_t n, int32_t *id) {
    if (!slim_gguf_find(g, key)) return SLIM_OK;
    uint32_t u;
    if (!slim_gguf_get_u32(g, key, &u))
        return slim_error(SLIM_ERR_FORMAT, "%s: not an unsigned 32-bit integer", key);
    if (u >= (uint32_t)n)
        return slim_error(SLIM_ERR_FORMAT, "%s = %u: out of range (vocabulary of %d tokens)", key,
                          u, n);
    *id = (int32_t)u;
    return SLIM_OK;
}

static slim_status read_bool(const slim_gguf *g, const char *key, bool *out) {
    if (!slim_gguf_find(g, key)) return SLIM_OK;
    if (!slim_gguf_get_bool(g, key, out))
        return slim_error(SLIM_ERR_FORMAT, "%s: not a boolean", key);
    return SLIM_OK;
}

/* llama.cpp finds EOT/EOM/FIM tokens by their text when the file does not name
 * them, and marks what it finds as control tokens.  (llama.cpp walks a hash
 * map; where several spellings exist, slim takes the lowest id.) */
static void detect_by_text(slim_vocab *v, int32_t *id, const char *const *list) {
    if (*id >= 0) return;
    int32_t best = -1;
    for (; *list; list++) {
        int32_t t = lookup_cstr(v, *list);
        if (t >= 0 && (best < 0 || t < best)) best = t;
    }
    if (best >= 0) {
        *id = best;
        v->attr[best] |= SLIM_ATTR_CONTROL;
    }
}

static const char *const EOT_TEXTS[] = {"<|eot_id|>",
                                        "<|im_end|>",
                                        "<|end|>",
                                        "<end_of_turn>",
                                        "<|endoftext|>",
                                        "<|end_of_text|>",
                                        "<EOT>",
                                        "_<EOT>",
                                        "[EOT]",
                                        "<" FWBAR "end" LOWSP "of" LOWSP "sentence" FWBAR ">",
                                        "<end_of_utterance>",
                                        NULL};
static const char *const EOM_TEXTS[] = {"<|eom_id|>", NULL};
static const char *const FIM_PRE_TEXTS[] = {"<|fim_prefix|>",
                                            "<fim-prefix>",
                                            "<fim_prefix>",
                                            "<" FWBAR "fim" LOWSP "begin" FWBAR ">",
                                            "<PRE>",
                                            LOWSP "<PRE>",
                                            "<|code_prefix|>",
                                            "<|prefix|>",
                                            NULL};
static const char *const FIM_SUF_TEXTS[] = {"<|fim_suffix|>",
                                            "<fim-suffix>",
                                            "<fim_suffix>",
                                            "<" FWBAR "fim" LOWSP "hole" FWBAR ">",
                                            "<SUF>",
                                            LOWSP "<SUF>",
                                            "<|code_suffix|>",
                                            "<|suffix|>",
                                            NULL};
static const char *const FIM_MID_TEXTS[] = {"<|fim_middle|>",
                                            "<fim-middle>",
                                            "<fim_middle>",
                                            "<" FWBAR "fim" LOWSP "end" FWBAR ">",
                                            "<MID>",
                                            LOWSP "<MID>",
                                            "<|code_middle|>",
                                            "<|middle|>",
                                            NULL};
static const char *const FIM_PAD_TEXTS[] = {"<|fim_pad|>", "<fim-pad>", "<fim_pad>",
                                            "<PAD>",       "[PAD]",     NULL};
static const char *const FIM_REP_TEXTS[] = {"<|fim_repo|>", "<|repo_name|>", "<fim-repo>",
                                            "<REPO>",       "<reponame>",    NULL};
static const char *const FIM_SEP_TEXTS[] = {"<|file_sep|>", NULL};
/* Texts of tokens that end generation (llama.cpp's list). */
static const char *const EOG_TEXTS[] = {"<|eot_id|>",
                                        "<|im_end|>",
                                        "<|end|>",
                                        "<|return|>",
                                        "<|call|>",
                                        "<|flush|>",
                                        "<|calls|>",
                                        "<end_of_turn>",
                                        "<|endoftext|>",
                                        "</s>",
                                        "<|eom_id|>",
                                        "<EOT>",
                                        "_<EOT>",
                                        "[EOT]",
                                        "[EOS]",
                                        "<|end_of_text|>",
                                        "<end_of_utterance>",
                                        "<eos>",
                                        "<turn|>",
                                        "<|tool_response>",
                                        "<" FWBAR "end" LOWSP "of" LOWSP "sentence" FWBAR ">",
                                        "[e~[",
                                        NULL};
static const char *const ALWAYS_RENDER_TEXTS[] = {"<|channel|>", "<|message|>", "<|start|>",
                                                  "<|constrain|>", NULL};

static bool eog_has(const slim_vocab *v, int32_t id) {
    for (int32_t i = 0; i < v->n_eog; i++)
        if (v->eog[i] == id) return true;
    return false;
}

static slim_status eog_add(slim_vocab *v, int32_t id, int32_t *cap) {
    if (id < 0 || eog_has(v, id)) return SLIM_OK;
    if (v->n_eog == *cap) {
        int32_t ncap = *cap ? *cap * 2 : 8;
        int32_t *p = realloc(v->eog, (size_t)ncap * sizeof *p);
        if (!p) return slim_error(SLIM_ERR_NOMEM, "vocabulary: out of memory");
        v->eog = p;
        *cap = ncap;
    }
    v->eog[v->n_eog++] = id;
    return SLIM_OK;
}

static void eog_remove(slim_vocab *v, int32_t id) {
    for (int32_t i = 0; i < v->n_eog; i++)
        if (v->eog[i] == id) {
            memmove(v->eog + i, v->eog + i + 1, (size_t)(v->n_eog - i - 1) * sizeof *v->eog);
            v->n_eog--;
            return;
        }
}

static int32_t eog_find_text(const slim_vocab *v, const char *text) {
    for (int32_t i = 0; i < v->n_eog; i++) {
        int32_t id = v->eog[i];
        if (strlen(text) == v->len[id] && memcmp(text, v->text[id], v->len[id]) == 0) return id;
    }
    return -1;
}

static slim_status build_eog(slim_vocab *v) {
    int32_t cap = 0;
    slim_status st;
    if ((st = eog_add(v, v->fim_pad, &cap)) || (st = eog_add(v, v->fim_rep, &cap)) ||
        (st = eog_add(v, v->fim_sep, &cap)))
        return st;
    for (const char *const *p = EOG_TEXTS; *p; p++) {
        int32_t t = lookup_cstr(v, *p);
        if (t < 0) continue;
        if ((st = eog_add(v, t, &cap))) return st;
        v->attr[t] |= SLIM_ATTR_CONTROL;
    }
    for (const char *const *p = ALWAYS_RENDER_TEXTS; *p; p++) { /* gpt-oss: always rendered */
        int32_t t = lookup_cstr(v, *p);
        if (t >= 0) v->attr[t] = SLIM_ATTR_USER_DEFINED;
    }
    if ((st = eog_add(v, v->eos, &cap)) || (st = eog_add(v, v->eot, &cap)) ||
        (st = eog_add(v, v->eom, &cap)))
        return st;
    /* o200k_harmony / solar-open: "<|end|>" does not end generation there */
    int32_t end = eog_find_text(v, "<|end|>");
    bool ret = eog_find_text(v, "<|return|>") >= 0, flush = eog_find_text(v, "<|flush|>") >= 0;
    bool call = eog_find_text(v, "<|call|>") >= 0 || eog_find_text(v, "<|calls|>") >= 0;
    if (end >= 0 && call && (ret || flush)) {
        eog_remove(v, end);
        v->attr[end] = SLIM_ATTR_USER_DEFINED;
    }
    /* gemma4 / paddleocr: "</s>" is not an end token where "<|tool_response>" is */
    int32_t s = eog_find_text(v, "</s>");
    if (s >= 0 && eog_find_text(v, "<|tool_response>") >= 0) {
        eog_remove(v, s);
        v->attr[s] = SLIM_ATTR_NORMAL;
    }
    return SLIM_OK;
}

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

/* The special-token list in matching order and a trie over their texts. */
static slim_status build_specials(slim_vocab *v) {
    const uint16_t mask = SLIM_ATTR_CONTROL | SLIM_ATTR_USER_DEFINED | SLIM_ATTR_UNKNOWN;
    size_t total = 1;
    for (int32_t t = 0; t < v->n; t++)
        if (v->attr[t] & mask) {
            v->n_special++;
            total += v->len[t];
        }
    v->special = malloc(((size_t)v->n_special + 1) * sizeof *v->special);
    if (total > INT32_MAX)
        return slim_error(SLIM_ERR_FORMAT, "vocabulary: special tokens too long");
    v->trie = malloc(total * sizeof *v->trie);
    if (!v->special || !v->trie) return slim_error(SLIM_ERR_NOMEM, "vocabulary: out of memory");
    /* longest first; llama.cpp's sort leaves ties unordered, slim takes id order */
    uint64_t *keys = malloc(((size_t)v->n_special + 1) * sizeof *keys);
    if (!keys) return slim_error(SLIM_ERR_NOMEM, "vocabulary: out of memory");
    int32_t k = 0;
    for (int32_t t = 0; t < v->n; t++)
        if (v->attr[t] & mask) keys[k++] = (uint64_t)(UINT32_MAX - v->len[t]) << 32 | (uint32_t)t;
    qsort(keys, (size_t)k, sizeof *keys, cmp_u64);
    for (int32_t i = 0; i < k; i++)
        v->special[i] = (int32_t)(keys[i] & 0xffffffffu);
    free(keys);

    for (int i = 0; i < 256; i++)
        v->root_child[i] = -1;
    v->trie[0] = (slim_trie_node){-1, -1, -1, 0};
    v->n_trie = 1;
    for (int32_t r = 0; r < v->n_special; r++) {
        int32_t id = v->special[r];
        const uint8_t *s = (const uint8_t *)v->text[id];
        int32_t node = 0;
        for (uint32_t i = 0; i < v->len[id]; i++) {
            int32_t c = node == 0 ? v->root_child[s[i]] : v->trie[node].child;
            while (node != 0 && c >= 0 && v->trie[c].byte != s[i])
                c = v->trie[c].sibling;
            if (c < 0) {
                c = v->n_trie++;
                v->trie[c] = (slim_trie_node){-1, -1, -1, s[i]};
                if (node == 0) {
                    v->root_child[s[i]] = c;
                } else {
                    v->trie[c].sibling = v->trie[node].child;
                    v->trie[node].child = c;
                }
            }
            node = c;
        }
        v->trie[node].rank = r;
    }
    return SLIM_OK;
}

/* Copy the token texts into one buffer and build the text -> id map. */
static slim_status load_texts(slim_vocab *v, const slim_gguf_kv *toks) {
    size_t total = 0;
    for (int32_t i = 0; i < v->n; i++) {
        uint64_t l = toks->arr_strs[i].len;
        total += (l ? l : 24) + 1;
        if (l > UINT32_MAX / 2 || total > (size_t)1 << 40)
            return slim_error(SLIM_ERR_FORMAT, "tokenizer.ggml.tokens[%d]: too long", i);
    }
    uint32_t cap = 1;
    while (cap < (uint32_t)v->n * 2u)
        cap <<= 1;
    v->hmask = cap - 1;
    v->text_buf = malloc(total);
    v->hslot = malloc((size_t)cap * sizeof *v->hslot);
    v->hhash = malloc((size_t)cap * sizeof *v->hhash);
    if (!v->text_buf || !v->hslot || !v->hhash)
        return slim_error(SLIM_ERR_NOMEM, "vocabulary: out of memory");
    memset(v->hslot, 0xff, (size_t)cap * sizeof *v->hslot);
    char *p = v->text_buf;
    for (int32_t i = 0; i < v->n; i++) {
        const slim_gguf_str *s = &toks->arr_strs[i];
        v->text[i] = p;
        if (s->len == 0) { /* as llama.cpp: an empty token gets a placeholder text */
            int w = snprintf(p, 24, "[EMPTY_%d]", i);
            v->len[i] = (uint32_t)w;
        } else {
            memcpy(p, s->ptr, s->len);
            v->len[i] = (uint32_t)s->len;
        }
        p += v->len[i];
        *p++ = '\0';
        int32_t dup = slim_vocab_hash_insert(v, i);
        if (dup >= 0)
            return slim_error(SLIM_ERR_FORMAT,
                              "tokenizer.ggml.tokens: duplicate token '%.64s' (ids %d and %d)",
                              v->text[i], dup, i);
    }
    return SLIM_OK;
}

static int hex_digit(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static slim_status load(const slim_gguf *g, slim_vocab *v) {
    slim_gguf_str model;
    if (!slim_gguf_get_str(g, "tokenizer.ggml.model", &model))
        return slim_error(SLIM_ERR_FORMAT, "tokenizer.ggml.model: missing or not a string");
    if (str_eq(&model, "llama"))
        v->type = SLIM_VOCAB_SPM;
    else if (str_eq(&model, "gpt2"))
        v->type = SLIM_VOCAB_BPE;
    else
        return slim_error(SLIM_ERR_UNSUPPORTED,
                          "tokenizer.ggml.model '%.*s': not supported (slim reads SentencePiece "
                          "'llama' and byte-level BPE 'gpt2' vocabularies)",
                          (int)(model.len > 64 ? 64 : model.len), model.ptr);

    const slim_gguf_kv *toks, *scores = NULL, *types = NULL;
    if (!slim_gguf_get_arr(g, "tokenizer.ggml.tokens", SLIM_GGUF_STRING, &toks))
        return slim_error(SLIM_ERR_FORMAT, "tokenizer.ggml.tokens: missing or not a string array");
    if (toks->arr_n == 0 || toks->arr_n > INT32_MAX / 4)
        return slim_error(SLIM_ERR_FORMAT, "tokenizer.ggml.tokens: %llu tokens",
                          (unsigned long long)toks->arr_n);
    v->n = (int32_t)toks->arr_n;
    bool int_scores = false;
    if (slim_gguf_find(g, "tokenizer.ggml.scores")) {
        if (!slim_gguf_get_arr(g, "tokenizer.ggml.scores", SLIM_GGUF_FLOAT32, &scores)) {
            if (!slim_gguf_get_arr(g, "tokenizer.ggml.scores", SLIM_GGUF_INT32, &scores))
                return slim_error(SLIM_ERR_FORMAT, "tokenizer.ggml.scores: not a float32 array");
            int_scores = true;
        }
        if (scores->arr_n != toks->arr_n)
            return slim_error(SLIM_ERR_FORMAT, "tokenizer.ggml.scores: %llu entries for %d tokens",
                              (unsigned long long)scores->arr_n, v->n);
    }
    if (slim_gguf_find(g, "tokenizer.ggml.token_type")) {
        if (!slim_gguf_get_arr(g, "tokenizer.ggml.token_type", SLIM_GGUF_INT32, &types))
            return slim_error(SLIM_ERR_FORMAT, "tokenizer.ggml.token_type: not an int32 array");
        if (types->arr_n != toks->arr_n)
            return slim_error(SLIM_ERR_FORMAT,
                              "tokenizer.ggml.token_type: %llu entries for %d tokens",
                              (unsigned long long)types->arr_n, v->n);
    }

    size_t n = (size_t)v->n;
    v->text = malloc(n * sizeof *v->text);
    v->len = malloc(n * sizeof *v->len);
    v->score = malloc(n * sizeof *v->score);
    v->attr = malloc(n * sizeof *v->attr);
    v->byte_val = calloc(n, 1);
    if (!v->text || !v->len || !v->score || !v->attr || !v->byte_val)
        return slim_error(SLIM_ERR_NOMEM, "vocabulary: out of memory");
    slim_status st = load_texts(v, toks);
    if (st) return st;

    static const uint16_t type_attr[7] = {
        SLIM_ATTR_UNDEFINED,    SLIM_ATTR_NORMAL, SLIM_ATTR_UNKNOWN, SLIM_ATTR_CONTROL,
        SLIM_ATTR_USER_DEFINED, SLIM_ATTR_UNUSED, SLIM_ATTR_BYTE};
    for (int32_t i = 0; i < v->n; i++) {
        if (!scores) {
            v->score[i] = 0.0f;
        } else if (int_scores) {
            int32_t x;
            memcpy(&x, (const char *)scores->arr_data + 4 * (size_t)i, 4);
            v->score[i] = (float)x;
        } else {
            memcpy(&v->score[i], (const char *)scores->arr_data + 4 * (size_t)i, 4);
        }
        int32_t ty = SLIM_TOKEN_TYPE_NORMAL;
        if (types) memcpy(&ty, (const char *)types->arr_data + 4 * (size_t)i, 4);
        if (ty < 0 || ty > 6)
            return slim_error(SLIM_ERR_FORMAT, "tokenizer.ggml.token_type[%d] = %d: unknown type",
                              i, ty);
        v->attr[i] = type_attr[ty];
        if (ty == SLIM_TOKEN_TYPE_BYTE) { /* "<0xXX>", read as llama.cpp does */
            int val = 0;
            for (uint32_t k = 3; k < 5 && k < v->len[i]; k++) {
                int d = hex_digit(v->text[i][k]);
                if (d < 0) break;
                val = val * 16 + d;
            }
            v->byte_val[i] = (uint8_t)val;
        }
    }

    /* special ids and flags: llama.cpp's defaults for the type, then the file's */
    v->eot = v->eom = v->sep = v->pad = v->mask = -1;
    v->fim_pre = v->fim_suf = v->fim_mid = v->fim_pad = v->fim_rep = v->fim_sep = -1;
    if (v->type == SLIM_VOCAB_BPE) {
        if ((st = slim_bpe_load(g, v))) return st; /* merges, pre-tokenizer, defaults */
    } else {
        v->bos = v->n > 1 ? 1 : -1;
        v->eos = v->n > 2 ? 2 : -1;
        v->unk = 0;
        v->add_bos = true;
        v->add_eos = false;
        v->add_space_prefix = true;
    }
    for (size_t i = 0; i < SLIM_VOCAB_N_ID_KEYS; i++) {
        const slim_vocab_id_key *k = &slim_vocab_id_keys[i];
        if ((st = read_id(g, k->key, v->n, (int32_t *)((char *)v + k->off)))) return st;
    }
    if ((st = read_bool(g, "tokenizer.ggml.add_bos_token", &v->add_bos)) ||
        (st = read_bool(g, "tokenizer.ggml.add_eos_token", &v->add_eos)) ||
        (st = read_bool(g, "tokenizer.ggml.add_space_prefix", &v->add_space_prefix)))
        return st;
    if (v->add_bos && v->bos < 0)
        return slim_error(SLIM_ERR_FORMAT,
                          "tokenizer.ggml.add_bos_token is true, but there is no BOS token");
    if (v->add_eos && v->eos < 0)
        return slim_error(SLIM_ERR_FORMAT,
                          "tokenizer.ggml.add_eos_token is true, but there is no EOS token");

    detect_by_text(v, &v->eot, EOT_TEXTS);
    detect_by_text(v, &v->eom, EOM_TEXTS);
    detect_by_text(v, &v->fim_pre, FIM_PRE_TEXTS);
    detect_by_text(v, &v->fim_suf, FIM_SUF_TEXTS);
    detect_by_text(v, &v->fim_mid, FIM_MID_TEXTS);
    detect_by_text(v, &v->fim_pad, FIM_PAD_TEXTS);
    detect_by_text(v, &v->fim_rep, FIM_REP_TEXTS);
    detect_by_text(v, &v->fim_sep, FIM_SEP_TEXTS);
    for (int32_t t = 0; t < v->n; t++)
        if ((v->attr[t] & SLIM_ATTR_CONTROL) && strstr(v->text[t], "unused"))
            v->attr[t] |= SLIM_ATTR_UNUSED;
    if ((st = build_eog(v))) return st;

    /* byte fallback: "<0xXX>", else the byte itself as a token */
    for (int b = 0; b < 256; b++) {
        char hx[7];
        snprintf(hx, sizeof hx, "<0x%02X>", b);
        char one = (char)b;
        int32_t id = lookup_cstr(v, hx);
        v->byte_tok[b] = id >= 0 ? id : slim_vocab_lookup(v, &one, 1);
    }
    if ((st = build_specials(v))) return st;

    /* Phi-3: special tokens swallow the whitespace after them (llama.cpp sets
     * this by model name) */
    slim_gguf_str name;
    if (slim_gguf_get_str(g, "general.name", &name)) {
        char low[256];
        size_t l = name.len < sizeof low - 1 ? name.len : sizeof low - 1;
        for (size_t i = 0; i < l; i++)
            low[i] = (char)tolower((unsigned char)name.ptr[i]);
        low[l] = '\0';
        if (strstr(low, "phi-3") || strstr(low, "phi3")) {
            for (int32_t r = 0; r < v->n_special; r++)
                v->attr[v->special[r]] |= SLIM_ATTR_RSTRIP;
            int32_t id;
            if ((id = lookup_cstr(v, "</s>")) >= 0) v->attr[id] |= SLIM_ATTR_RSTRIP;
            static const char *const keep[] = {"<unk>", "<s>", "<|endoftext|>"};
            for (int i = 0; i < 3; i++)
                if ((id = lookup_cstr(v, keep[i])) >= 0) v->attr[id] &= ~SLIM_ATTR_RSTRIP;
        }
    }
    return SLIM_OK;
}

slim_status slim_vocab_from_gguf(const slim_gguf *g, slim_vocab **out) {
    if (!out) return slim_error(SLIM_ERR_INVALID_ARG, "slim_vocab_from_gguf: out is NULL");
    *out = NULL;
    if (!g) return slim_error(SLIM_ERR_INVALID_ARG, "slim_vocab_from_gguf: gguf is NULL");
    slim_vocab *v = calloc(1, sizeof *v);
    if (!v) return slim_error(SLIM_ERR_NOMEM, "vocabulary: out of memory");
    slim_status st = load(g, v);
    if (st) {
        slim_vocab_free(v);
        return st;
    }
    *out = v;
    return SLIM_OK;
}

/* ---- queries ------------------------------------------------------------- */

int32_t slim_vocab_size(const slim_vocab *v) { return v ? v->n : 0; }
int32_t slim_vocab_bos(const slim_vocab *v) { return v ? v->bos : -1; }
int32_t slim_vocab_eos(const slim_vocab *v) { return v ? v->eos : -1; }

bool slim_vocab_is_eog(const slim_vocab *v, int32_t token) {
    return v && token >= 0 && eog_has(v, token);
}

const char *slim_vocab_token_text(const slim_vocab *v, int32_t token) {
    if (!v || token < 0 || token >= v->n) return NULL;
    return v->text[token];
}

/* ---- detokenize ---------------------------------------------------------- */

/* Bytes to dst (up to cap), skipping up to lstrip leading spaces; n counts
 * every byte written or not. */
typedef struct sink {
    char *dst;
    size_t cap, n;
    int lstrip;
} sink;

static void put(sink *k, char c) {
    if (k->lstrip > 0 && c == ' ' && k->n == 0) {
        k->lstrip--;
        return;
    }
    k->lstrip = 0;
    if (k->n < k->cap) k->dst[k->n] = c;
    k->n++;
}

/* Write the piece of `token` (llama.cpp's token_to_piece) to dst, up to cap
 * bytes, skipping up to `lstrip` leading spaces; returns its full length. */
static size_t piece(const slim_vocab *v, int32_t token, bool special, int lstrip, char *dst,
                    size_t cap) {
    uint16_t a = v->attr[token];
    const uint16_t attr_special = SLIM_ATTR_UNKNOWN | SLIM_ATTR_CONTROL;
    if (!special && (a & attr_special)) return 0;
    const char *s = v->text[token];
    size_t len = v->len[token];
    sink k = {dst, cap, 0, lstrip};
    if (a & (attr_special | SLIM_ATTR_USER_DEFINED)) {
        for (size_t i = 0; i < len; i++) /* the text as is */
            put(&k, s[i]);
    } else if ((a & SLIM_ATTR_NORMAL) && v->type == SLIM_VOCAB_BPE) {
        return slim_bpe_decode(s, len, lstrip, dst, cap); /* GPT-2 byte decoding */
    } else if (a & SLIM_ATTR_NORMAL) {
        for (size_t i = 0; i < len; i++) { /* U+2581 is a space */
            if (i + 3 <= len && memcmp(s + i, LOWSP, 3) == 0) {
                put(&k, ' ');
                i += 2;
            } else {
                put(&k, s[i]);
            }
        }
    } else if (a & SLIM_ATTR_BYTE) {
        put(&k, (char)v->byte_val[token]);
    }
    /* unused and undefined tokens render as nothing */
    return k.n;
}

static slim_status check_out(void *buf, size_t cap, size_t *n_out, const char *fn) {
    if (!n_out) return slim_error(SLIM_ERR_INVALID_ARG, "%s: n_out is NULL", fn);
    *n_out = 0;
    if (!buf && cap)
        return slim_error(SLIM_ERR_INVALID_ARG, "%s: buf is NULL but cap is %zu", fn, cap);
    return SLIM_OK;
}

/* A tokenizer.json vocab's text (hf_tok.c) into the caller's buffer. */
static slim_status hf_out(const slim_vocab *v, const int32_t *tokens, size_t n, bool special,
                          bool one, char *buf, size_t cap, size_t *n_out, const char *fn) {
    char *s;
    size_t len;
    slim_status st = one ? slim_hf_piece(v, tokens[0], special, &s, &len)
                         : slim_hf_detokenize(v, tokens, n, special, &s, &len);
    if (st) return st;
    *n_out = len;
    if (buf) memcpy(buf, s, len < cap ? len : cap);
    free(s);
    if (len > cap && buf)
        return slim_error(SLIM_ERR_BUFFER_TOO_SMALL, "%s: %zu bytes needed, buffer holds %zu", fn,
                          len, cap);
    return SLIM_OK;
}

slim_status slim_vocab_token_to_piece(const slim_vocab *v, int32_t token, uint32_t flags, char *buf,
                                      size_t cap, size_t *n_out) {
    slim_status st = check_out(buf, cap, n_out, "slim_token_to_piece");
    if (st) return st;
    if (!v) return slim_error(SLIM_ERR_INVALID_ARG, "slim_token_to_piece: vocabulary is NULL");
    if (flags & ~(uint32_t)SLIM_DETOKENIZE_RENDER_SPECIAL)
        return slim_error(SLIM_ERR_INVALID_ARG, "slim_token_to_piece: unknown flags 0x%x", flags);
    if (token < 0 || token >= v->n)
        return slim_error(SLIM_ERR_INVALID_ARG,
                          "slim_token_to_piece: token %d out of range (vocabulary of %d)", token,
                          v->n);
    bool special = flags & SLIM_DETOKENIZE_RENDER_SPECIAL;
    if (v->hf) return hf_out(v, &token, 1, special, true, buf, cap, n_out, "slim_token_to_piece");
    size_t need = piece(v, token, special, 0, buf, cap);
    *n_out = need;
    if (need > cap && buf)
        return slim_error(SLIM_ERR_BUFFER_TOO_SMALL,
                          "slim_token_to_piece: %zu bytes needed, buffer holds %zu", need, cap);
    return SLIM_OK;
}

/* llama_detokenize(remove_special = false, unparse_special = RENDER_SPECIAL):
 * with add_space_prefix, the first token's leading space is dropped; BPE
 * vocabularies whose pre-tokenizer asks for it clean up spaces after (the size
 * reported is that of the cleaned text, where llama.cpp reports the size
 * before cleaning). */
slim_status slim_vocab_detokenize(const slim_vocab *v, const int32_t *tokens, size_t n_tokens,
                                  uint32_t flags, char *buf, size_t cap, size_t *n_out) {
    slim_status st = check_out(buf, cap, n_out, "slim_detokenize");
    if (st) return st;
    if (!v) return slim_error(SLIM_ERR_INVALID_ARG, "slim_detokenize: vocabulary is NULL");
    if (!tokens && n_tokens)
        return slim_error(SLIM_ERR_INVALID_ARG, "slim_detokenize: tokens is NULL");
    if (flags & ~(uint32_t)SLIM_DETOKENIZE_RENDER_SPECIAL)
        return slim_error(SLIM_ERR_INVALID_ARG, "slim_detokenize: unknown flags 0x%x", flags);
    for (size_t i = 0; i < n_tokens; i++)
        if (tokens[i] < 0 || tokens[i] >= v->n)
            return slim_error(SLIM_ERR_INVALID_ARG,
                              "slim_detokenize: tokens[%zu] = %d out of range (vocabulary of %d)",
                              i, tokens[i], v->n);
    bool special = flags & SLIM_DETOKENIZE_RENDER_SPECIAL;
    if (v->hf)
        return hf_out(v, tokens, n_tokens, special, false, buf, cap, n_out, "slim_detokenize");
    size_t total = 0;
    char *tmp = NULL;
    if (v->clean_spaces) { /* the whole text first, then llama.cpp's clean-up */
        for (size_t i = 0; i < n_tokens; i++)
            total += piece(v, tokens[i], special, i == 0 && v->add_space_prefix, NULL, 0);
        if (!(tmp = malloc(total ? total : 1)))
            return slim_error(SLIM_ERR_NOMEM, "slim_detokenize: out of memory");
    }
    char *dst = tmp ? tmp : buf;
    size_t dst_cap = tmp ? total : cap;
    total = 0;
    for (size_t i = 0; i < n_tokens; i++) {
        bool fits = dst && total < dst_cap;
        total += piece(v, tokens[i], special, i == 0 && v->add_space_prefix,
                       fits ? dst + total : NULL, fits ? dst_cap - total : 0);
    }
    if (tmp) {
        total = slim_bpe_clean_spaces(tmp, total);
        if (buf) memcpy(buf, tmp, total < cap ? total : cap);
        free(tmp);
    }
    *n_out = total;
    if (total > cap && buf)
        return slim_error(SLIM_ERR_BUFFER_TOO_SMALL,
                          "slim_detokenize: %zu bytes needed, buffer holds %zu", total, cap);
    return SLIM_OK;
}
