/* A vocab from a Hugging Face model directory: tokenizer.json (the model,
 * added tokens, normalizer, pre-tokenizer, post-processor, decoder, as the
 * `tokenizers` package reads them), tokenizer_config.json (bos/eos tokens,
 * add_bos_token / add_eos_token as transformers applies them, the chat
 * template) and generation_config.json (eos_token_id: every one ends
 * generation).  What slim does not implement is SLIM_ERR_UNSUPPORTED naming
 * it; malformed files are SLIM_ERR_FORMAT naming the file and the key. */
#include "format/json.h"
#include "tokenizer/bpe_pretok.h"
#include "tokenizer/hf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

typedef struct ld {
    const char *name; /* the file, for messages */
    slim_vocab *v;
    slim_hf *h;
    double growth; /* how many times the normalizers so far can lengthen a text */
} ld;

/* Real normalizers lengthen text a few times at most (' ' -> '\u2581' is 3x); a
 * chain of Replaces that each multiply it would make every text, and each
 * added token's normalized form at load, gigabytes long. */
#define NORM_GROWTH_MAX 64.0

static slim_status nomem(void) {
    return slim_error(SLIM_ERR_NOMEM, "tokenizer.json: out of memory");
}

static char *dup_n(const char *s, size_t n) {
    char *p = malloc(n + 1);
    if (p) {
        memcpy(p, s, n);
        p[n] = '\0';
    }
    return p;
}

static const char *type_of(const slim_json *o) {
    return slim_json_str(slim_json_get(o, "type"), NULL);
}

/* A string member; *out NULL when absent or null (unless required). */
static slim_status get_str(const ld *L, const slim_json *o, const char *what, const char *key,
                           bool required, const char **out, size_t *len) {
    const slim_json *x = slim_json_get(o, key);
    *out = NULL;
    if (len) *len = 0;
    if (!x || slim_json_is_null(x)) {
        if (!required) return SLIM_OK;
        return slim_error(SLIM_ERR_FORMAT, "%s: %s.%s: missing", L->name, what, key);
    }
    if (!(*out = slim_json_str(x, len)))
        return slim_error(SLIM_ERR_FORMAT, "%s: %s.%s: expected a string, got %s", L->name, what,
                          key, slim_json_type_name(slim_json_type_of(x)));
    return SLIM_OK;
}

static slim_status get_bool(const ld *L, const slim_json *o, const char *what, const char *key,
                            bool def, bool *out) {
    const slim_json *x = slim_json_get(o, key);
    *out = def;
    if (!x || slim_json_is_null(x)) return SLIM_OK;
    if (!slim_json_bool(x, out))
        return slim_error(SLIM_ERR_FORMAT, "%s: %s.%s: expected a boolean, got %s", L->name, what,
                          key, slim_json_type_name(slim_json_type_of(x)));
    return SLIM_OK;
}

static slim_status get_int(const ld *L, const slim_json *o, const char *what, const char *key,
                           int64_t lo, int64_t hi, int64_t *out) {
    const slim_json *x = slim_json_get(o, key);
    if (!x) return slim_error(SLIM_ERR_FORMAT, "%s: %s.%s: missing", L->name, what, key);
    if (!slim_json_i64(x, out) || *out < lo || *out > hi)
        return slim_error(SLIM_ERR_FORMAT, "%s: %s.%s: expected an integer in [%lld, %lld]",
                          L->name, what, key, (long long)lo, (long long)hi);
    return SLIM_OK;
}

/* {"String": s} patterns; {"Regex": r} is returned through *regex */
static slim_status get_pattern(const ld *L, const slim_json *o, const char *what, const char **s,
                               size_t *n, bool *regex) {
    const slim_json *p = slim_json_get(o, "pattern");
    *regex = false;
    if (slim_json_type_of(p) != SLIM_JSON_OBJECT)
        return slim_error(SLIM_ERR_FORMAT, "%s: %s.pattern: expected an object", L->name, what);
    const slim_json *x = slim_json_get(p, "String");
    if (!x) {
        x = slim_json_get(p, "Regex");
        *regex = true;
    }
    if (!(*s = slim_json_str(x, n)))
        return slim_error(SLIM_ERR_FORMAT,
                          "%s: %s.pattern: expected {\"String\": ...} or "
                          "{\"Regex\": ...}",
                          L->name, what);
    if (*n == 0) return slim_error(SLIM_ERR_FORMAT, "%s: %s.pattern: empty", L->name, what);
    return SLIM_OK;
}

static slim_status unsupported(const ld *L, const char *what, const char *type) {
    return slim_error(SLIM_ERR_UNSUPPORTED, "%s: %s type '%.64s' is not supported", L->name, what,
                      type ? type : "(none)");
}

/* ---- normalizer -------------------------------------------------------------- */

static slim_status add_norm(ld *L, const slim_json *o, int depth) {
    const char *t = type_of(o);
    slim_hf *h = L->h;
    if (slim_json_type_of(o) != SLIM_JSON_OBJECT || !t)
        return slim_error(SLIM_ERR_FORMAT, "%s: normalizer: expected an object with a type",
                          L->name);
    if (!strcmp(t, "Sequence")) {
        const slim_json *a = slim_json_get(o, "normalizers");
        if (slim_json_type_of(a) != SLIM_JSON_ARRAY || depth > 8)
            return slim_error(SLIM_ERR_FORMAT, "%s: normalizer.normalizers: expected an array",
                              L->name);
        for (size_t i = 0; i < slim_json_len(a); i++) {
            slim_status st = add_norm(L, slim_json_at(a, i), depth + 1);
            if (st) return st;
        }
        return SLIM_OK;
    }
    hf_norm n = {0};
    slim_status st;
    if (!strcmp(t, "Replace")) {
        const char *p, *c;
        size_t pn, cn;
        bool re;
        if ((st = get_pattern(L, o, "normalizer Replace", &p, &pn, &re)) ||
            (st = get_str(L, o, "normalizer Replace", "content", true, &c, &cn)))
            return st;
        if (re)
            return slim_error(SLIM_ERR_UNSUPPORTED,
                              "%s: normalizer Replace with a Regex pattern is not supported",
                              L->name);
        if (cn > pn && (L->growth *= (double)cn / (double)pn) > NORM_GROWTH_MAX)
            return slim_error(SLIM_ERR_UNSUPPORTED,
                              "%s: normalizer Replace of %zu bytes by %zu: the normalizers would "
                              "lengthen a text over %.0f times",
                              L->name, pn, cn, NORM_GROWTH_MAX);
        n = (hf_norm){HF_NORM_REPLACE, dup_n(p, pn), dup_n(c, cn), pn, cn, false, false};
        if (!n.a || !n.b) {
            free(n.a);
            free(n.b);
            return nomem();
        }
    } else if (!strcmp(t, "Prepend")) {
        const char *p;
        size_t pn;
        if ((st = get_str(L, o, "normalizer Prepend", "prepend", true, &p, &pn))) return st;
        n = (hf_norm){HF_NORM_PREPEND, dup_n(p, pn), NULL, pn, 0, false, false};
        if (!n.a) return nomem();
    } else if (!strcmp(t, "Strip")) {
        n.kind = HF_NORM_STRIP;
        if ((st = get_bool(L, o, "normalizer Strip", "strip_left", true, &n.left)) ||
            (st = get_bool(L, o, "normalizer Strip", "strip_right", true, &n.right)))
            return st;
    } else {
        /* NFC/NFD/NFKC/NFKD, Lowercase, BertNormalizer, Precompiled, ...: slim has
         * no Unicode normalization tables */
        return unsupported(L, "normalizer", t);
    }
    hf_norm *p = realloc(h->norm, (size_t)(h->n_norm + 1) * sizeof *p);
    if (!p) {
        free(n.a);
        free(n.b);
        return nomem();
    }
    h->norm = p;
    h->norm[h->n_norm++] = n;
    return SLIM_OK;
}

/* ---- pre-tokenizer ----------------------------------------------------------- */

/* The split regexes of the families slim knows, each mapped onto a
 * hand-written pre-tokenizer of bpe_pretok.c. */
static const struct {
    const char *re;
    int pre;
} KNOWN_RE[] = {
    /* Llama 3, cl100k (Phi-4, DBRX, ...) */
    {"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| "
     "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
     SLIM_PRE_LLAMA3_RE},
    /* Qwen2 / Qwen2.5 / Qwen3 */
    {"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| "
     "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
     SLIM_PRE_QWEN2},
    /* GPT-2 (ByteLevel's own regex, when written out) */
    {"'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+",
     SLIM_PRE_GPT2},
    /* Mistral tekken (Nemo, Pixtral, ...) */
    {"[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]*[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]+|[^"
     "\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]+[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]*|\\p{"
     "N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
     SLIM_PRE_TEKKEN_HF},
    /* o200k (Phi-4-mini, GPT-4o-style) */
    {"[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]*[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]+(?i:"
     "'s|'t|'re|'ve|'m|'ll|'d)?|[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]+[\\p{Ll}"
     "\\p{Lm}\\p{Lo}\\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?|\\p{N}{1,3}| "
     "?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
     SLIM_PRE_GPT4O_HF},
};

static slim_status behavior_of(const ld *L, const slim_json *o, int *out) {
    static const char *const names[] = {"Removed", "Isolated", "MergedWithPrevious",
                                        "MergedWithNext", "Contiguous"};
    const char *b = slim_json_str(slim_json_get(o, "behavior"), NULL);
    for (int i = 0; b && i < 5; i++)
        if (!strcmp(b, names[i])) {
            *out = i;
            return SLIM_OK;
        }
    return slim_error(SLIM_ERR_FORMAT,
                      "%s: pre_tokenizer Split.behavior: expected one of Removed, "
                      "Isolated, MergedWithPrevious, MergedWithNext, Contiguous",
                      L->name);
}

static slim_status add_pre(ld *L, const slim_json *o, int depth) {
    const char *t = type_of(o);
    slim_hf *h = L->h;
    slim_status st;
    if (slim_json_type_of(o) != SLIM_JSON_OBJECT || !t)
        return slim_error(SLIM_ERR_FORMAT, "%s: pre_tokenizer: expected an object with a type",
                          L->name);
    if (!strcmp(t, "Sequence")) {
        const slim_json *a = slim_json_get(o, "pretokenizers");
        if (slim_json_type_of(a) != SLIM_JSON_ARRAY || depth > 8)
            return slim_error(SLIM_ERR_FORMAT, "%s: pre_tokenizer.pretokenizers: expected an array",
                              L->name);
        for (size_t i = 0; i < slim_json_len(a); i++)
            if ((st = add_pre(L, slim_json_at(a, i), depth + 1))) return st;
        return SLIM_OK;
    }
    if (h->byte_level)
        return slim_error(SLIM_ERR_UNSUPPORTED,
                          "%s: pre_tokenizer: a %s after ByteLevel is not supported", L->name, t);
    hf_pre p = {0};
    if (!strcmp(t, "Split")) {
        const char *pat;
        size_t pn;
        bool re, invert;
        if ((st = get_pattern(L, o, "pre_tokenizer Split", &pat, &pn, &re)) ||
            (st = behavior_of(L, o, &p.behavior)) ||
            (st = get_bool(L, o, "pre_tokenizer Split", "invert", false, &invert)))
            return st;
        if (invert)
            return slim_error(SLIM_ERR_UNSUPPORTED,
                              "%s: pre_tokenizer Split with invert: true is not supported",
                              L->name);
        if (re) {
            p.kind = HF_PRE_SPLIT_RE;
            p.pre = -1;
            for (size_t i = 0; i < sizeof KNOWN_RE / sizeof KNOWN_RE[0]; i++)
                if (strlen(KNOWN_RE[i].re) == pn && !memcmp(KNOWN_RE[i].re, pat, pn))
                    p.pre = KNOWN_RE[i].pre;
            if (p.pre < 0)
                return slim_error(SLIM_ERR_UNSUPPORTED,
                                  "%s: pre_tokenizer Split: regex '%.80s%s' is not one slim knows "
                                  "(GPT-2, Llama 3 / cl100k, Qwen2, tekken, o200k)",
                                  L->name, pat, pn > 80 ? "..." : "");
            if (p.behavior != HF_SPLIT_ISOLATED)
                return slim_error(SLIM_ERR_UNSUPPORTED,
                                  "%s: pre_tokenizer Split: a regex with a behavior other than "
                                  "Isolated is not supported",
                                  L->name);
        } else {
            p.kind = HF_PRE_SPLIT_STR;
            if (!(p.pat = dup_n(pat, pn))) return nomem();
            p.plen = pn;
        }
    } else if (!strcmp(t, "ByteLevel")) {
        p.kind = HF_PRE_BYTELEVEL;
        if ((st = get_bool(L, o, "pre_tokenizer ByteLevel", "add_prefix_space", true,
                           &p.prefix_space)) ||
            (st = get_bool(L, o, "pre_tokenizer ByteLevel", "use_regex", true, &p.use_regex)))
            return st;
        h->byte_level = true;
    } else if (!strcmp(t, "Metaspace")) {
        const char *r, *sch;
        size_t rn;
        p.kind = HF_PRE_METASPACE;
        if ((st = get_str(L, o, "pre_tokenizer Metaspace", "replacement", true, &r, &rn)) ||
            (st = get_str(L, o, "pre_tokenizer Metaspace", "prepend_scheme", false, &sch, NULL)) ||
            (st = get_bool(L, o, "pre_tokenizer Metaspace", "split", true, &p.split)))
            return st;
        size_t used;
        if (rn == 0 || slim_utf8_decode((const uint8_t *)r, rn, &used) == 0xfffd || used != rn)
            return slim_error(SLIM_ERR_FORMAT,
                              "%s: pre_tokenizer Metaspace.replacement: expected one character",
                              L->name);
        p.scheme = HF_PREPEND_ALWAYS;
        if (!sch) { /* older files: add_prefix_space */
            bool aps;
            if ((st = get_bool(L, o, "pre_tokenizer Metaspace", "add_prefix_space", true, &aps)))
                return st;
            p.scheme = aps ? HF_PREPEND_ALWAYS : HF_PREPEND_NEVER;
        } else if (!strcmp(sch, "first")) {
            p.scheme = HF_PREPEND_FIRST;
        } else if (!strcmp(sch, "never")) {
            p.scheme = HF_PREPEND_NEVER;
        } else if (strcmp(sch, "always")) {
            return slim_error(SLIM_ERR_FORMAT,
                              "%s: pre_tokenizer Metaspace.prepend_scheme: expected always, "
                              "first or never",
                              L->name);
        }
        if (!(p.pat = dup_n(r, rn))) return nomem();
        p.plen = rn;
    } else if (!strcmp(t, "Digits")) {
        p.kind = HF_PRE_DIGITS;
        if ((st =
                 get_bool(L, o, "pre_tokenizer Digits", "individual_digits", false, &p.individual)))
            return st;
    } else {
        return unsupported(L, "pre_tokenizer", t);
    }
    hf_pre *q = realloc(h->pre, (size_t)(h->n_pre + 1) * sizeof *q);
    if (!q) {
        free(p.pat);
        return nomem();
    }
    h->pre = q;
    h->pre[h->n_pre++] = p;
    return SLIM_OK;
}

/* ---- decoder ----------------------------------------------------------------- */

static slim_status one_char(const ld *L, const slim_json *o, const char *what, const char *key,
                            char **out, size_t *n) {
    const char *s;
    size_t sn, used;
    slim_status st = get_str(L, o, what, key, true, &s, &sn);
    if (st) return st;
    if (sn == 0 || slim_utf8_decode((const uint8_t *)s, sn, &used) == 0xfffd || used != sn)
        return slim_error(SLIM_ERR_FORMAT, "%s: %s.%s: expected one character", L->name, what, key);
    if (!(*out = dup_n(s, sn))) return nomem();
    *n = sn;
    return SLIM_OK;
}

static slim_status add_dec(ld *L, const slim_json *o, int depth) {
    const char *t = type_of(o);
    slim_hf *h = L->h;
    slim_status st;
    if (slim_json_type_of(o) != SLIM_JSON_OBJECT || !t)
        return slim_error(SLIM_ERR_FORMAT, "%s: decoder: expected an object with a type", L->name);
    if (!strcmp(t, "Sequence")) {
        const slim_json *a = slim_json_get(o, "decoders");
        if (slim_json_type_of(a) != SLIM_JSON_ARRAY || depth > 8)
            return slim_error(SLIM_ERR_FORMAT, "%s: decoder.decoders: expected an array", L->name);
        for (size_t i = 0; i < slim_json_len(a); i++)
            if ((st = add_dec(L, slim_json_at(a, i), depth + 1))) return st;
        return SLIM_OK;
    }
    hf_dec d = {0};
    if (!strcmp(t, "ByteLevel")) {
        d.kind = HF_DEC_BYTELEVEL;
    } else if (!strcmp(t, "ByteFallback")) {
        d.kind = HF_DEC_BYTEFALLBACK;
    } else if (!strcmp(t, "Fuse")) {
        d.kind = HF_DEC_FUSE;
    } else if (!strcmp(t, "Replace")) {
        const char *p, *c;
        size_t pn, cn;
        bool re;
        if ((st = get_pattern(L, o, "decoder Replace", &p, &pn, &re)) ||
            (st = get_str(L, o, "decoder Replace", "content", true, &c, &cn)))
            return st;
        if (re)
            return slim_error(SLIM_ERR_UNSUPPORTED,
                              "%s: decoder Replace with a Regex pattern is not supported", L->name);
        d = (hf_dec){HF_DEC_REPLACE, dup_n(p, pn), dup_n(c, cn), pn, cn, 0, 0, 0};
        if (!d.a || !d.b) {
            free(d.a);
            free(d.b);
            return nomem();
        }
    } else if (!strcmp(t, "Strip")) {
        int64_t a, b;
        d.kind = HF_DEC_STRIP;
        if ((st = one_char(L, o, "decoder Strip", "content", &d.a, &d.alen))) return st;
        if ((st = get_int(L, o, "decoder Strip", "start", 0, 1 << 20, &a)) ||
            (st = get_int(L, o, "decoder Strip", "stop", 0, 1 << 20, &b))) {
            free(d.a);
            return st;
        }
        d.start = (int)a;
        d.stop = (int)b;
    } else if (!strcmp(t, "Metaspace")) {
        const char *sch;
        d.kind = HF_DEC_METASPACE;
        if ((st = get_str(L, o, "decoder Metaspace", "prepend_scheme", false, &sch, NULL)))
            return st;
        d.scheme = HF_PREPEND_ALWAYS;
        if (!sch) {
            bool aps;
            if ((st = get_bool(L, o, "decoder Metaspace", "add_prefix_space", true, &aps)))
                return st;
            d.scheme = aps ? HF_PREPEND_ALWAYS : HF_PREPEND_NEVER;
        } else if (!strcmp(sch, "never")) {
            d.scheme = HF_PREPEND_NEVER;
        } else if (!strcmp(sch, "first")) {
            d.scheme = HF_PREPEND_FIRST;
        }
        if ((st = one_char(L, o, "decoder Metaspace", "replacement", &d.a, &d.alen))) return st;
    } else {
        return unsupported(L, "decoder", t);
    }
    hf_dec *q = realloc(h->dec, (size_t)(h->n_dec + 1) * sizeof *q);
    if (!q) {
        free(d.a);
        free(d.b);
        return nomem();
    }
    h->dec = q;
    h->dec[h->n_dec++] = d;
    return SLIM_OK;
}

/* ---- model: vocab, merges ------------------------------------------------------- */

/* A merge's two sides: "a b" (exactly one space, as `tokenizers` requires) or ["a", "b"]. */
static slim_status merge_sides(const ld *L, const slim_json *m, size_t i, const char **a,
                               size_t *an, const char **b, size_t *bn) {
    size_t n;
    const char *s = slim_json_str(m, &n);
    if (s) {
        const char *sp = memchr(s, ' ', n);
        if (!sp || memchr(sp + 1, ' ', n - (size_t)(sp - s) - 1))
            return slim_error(SLIM_ERR_FORMAT,
                              "%s: model.merges[%zu]: '%.64s' is not two tokens separated by "
                              "one space",
                              L->name, i, s);
        *a = s;
        *an = (size_t)(sp - s);
        *b = sp + 1;
        *bn = n - *an - 1;
        return SLIM_OK;
    }
    if (slim_json_len(m) != 2 || slim_json_type_of(m) != SLIM_JSON_ARRAY ||
        !(*a = slim_json_str(slim_json_at(m, 0), an)) ||
        !(*b = slim_json_str(slim_json_at(m, 1), bn)))
        return slim_error(SLIM_ERR_FORMAT,
                          "%s: model.merges[%zu]: expected \"a b\" or [\"a\", \"b\"]", L->name, i);
    return SLIM_OK;
}

static slim_status load_merges(ld *L, const slim_json *arr) {
    slim_vocab *v = L->v;
    slim_hf *h = L->h;
    size_t n = slim_json_len(arr), total = 0;
    if (n > (size_t)INT32_MAX / 4)
        return slim_error(SLIM_ERR_FORMAT, "%s: model.merges: too many", L->name);
    uint32_t cap = 1;
    while (cap < 2 * n + 2)
        cap <<= 1;
    h->mmask = cap - 1;
    h->mkey = calloc(cap, sizeof *h->mkey);
    h->mrank = malloc((size_t)cap * sizeof *h->mrank);
    h->mnew = malloc((size_t)cap * sizeof *h->mnew);
    v->merges = malloc((n + 1) * sizeof *v->merges);
    if (!h->mkey || !h->mrank || !h->mnew || !v->merges) return nomem();
    for (size_t i = 0; i < n; i++) { /* the texts for merge_buf (GGUF export) */
        const char *a, *b;
        size_t an, bn;
        slim_status st = merge_sides(L, slim_json_at(arr, i), i, &a, &an, &b, &bn);
        if (st) return st;
        total += an + bn + 1;
        if (total > UINT32_MAX / 2)
            return slim_error(SLIM_ERR_FORMAT, "%s: model.merges: too long", L->name);
    }
    if (!(v->merge_buf = malloc(total + 1))) return nomem();
    char *cat = NULL;
    size_t cat_cap = 0, off = 0;
    for (size_t i = 0; i < n; i++) {
        const char *a, *b;
        size_t an, bn;
        merge_sides(L, slim_json_at(arr, i), i, &a, &an, &b, &bn);
        int32_t ia = slim_vocab_lookup(v, a, an), ib = slim_vocab_lookup(v, b, bn);
        if (an + bn + 1 > cat_cap) {
            char *p = realloc(cat, an + bn + 1);
            if (!p) {
                free(cat);
                return nomem();
            }
            cat = p;
            cat_cap = an + bn + 1;
        }
        memcpy(cat, a, an);
        memcpy(cat + an, b, bn);
        int32_t im = slim_vocab_lookup(v, cat, an + bn);
        const char *bad = ia < 0 || !h->in_model[ia] ? a : ib < 0 || !h->in_model[ib] ? b : NULL;
        size_t bad_n = bad == a ? an : bn;
        if (!bad && (im < 0 || !h->in_model[im])) {
            bad = cat;
            bad_n = an + bn;
        }
        if (bad) {
            slim_status st =
                slim_error(SLIM_ERR_FORMAT, "%s: model.merges[%zu]: '%.*s' is not in model.vocab",
                           L->name, i, (int)(bad_n > 64 ? 64 : bad_n), bad);
            free(cat);
            return st;
        }
        memcpy(v->merge_buf + off, a, an);
        v->merge_buf[off + an] = ' ';
        memcpy(v->merge_buf + off + an + 1, b, bn);
        v->merges[i] = (slim_merge){(uint32_t)off, (uint32_t)an, (uint32_t)bn};
        off += an + bn + 1;
        /* a repeated pair takes its last rank, as the `tokenizers` map does */
        uint64_t key = ((uint64_t)(uint32_t)ia << 32 | (uint32_t)ib) + 1;
        uint32_t j = slim_hf_merge_hash(key) & h->mmask;
        while (h->mkey[j] && h->mkey[j] != key)
            j = (j + 1) & h->mmask;
        h->mkey[j] = key;
        h->mrank[j] = (uint32_t)i;
        h->mnew[j] = im;
    }
    free(cat);
    v->n_merges = (int32_t)n;
    return SLIM_OK;
}

/* The ids of model.vocab and added_tokens: their texts, the text -> id map. */
static slim_status load_vocab(ld *L, const slim_json *vocab, const slim_json *added) {
    slim_vocab *v = L->v;
    slim_hf *h = L->h;
    size_t nv = slim_json_len(vocab), na = slim_json_len(added);
    int64_t max_id = -1;
    size_t total = 0;
    if (nv + na > (size_t)INT32_MAX / 8)
        return slim_error(SLIM_ERR_FORMAT, "%s: too many tokens", L->name);
    for (size_t i = 0; i < nv; i++) {
        const char *k;
        size_t kn;
        int64_t id;
        const slim_json *x = slim_json_member(vocab, i, &k, &kn);
        if (!slim_json_i64(x, &id) || id < 0 || id >= INT32_MAX / 8)
            return slim_error(SLIM_ERR_FORMAT, "%s: model.vocab['%.64s']: expected a token id",
                              L->name, k);
        if (id > max_id) max_id = id;
        total += kn + 1;
    }
    for (size_t i = 0; i < na; i++) {
        const slim_json *a = slim_json_at(added, i);
        int64_t id;
        const char *c;
        size_t cn;
        slim_status st;
        if (slim_json_type_of(a) != SLIM_JSON_OBJECT)
            return slim_error(SLIM_ERR_FORMAT, "%s: added_tokens[%zu]: expected an object", L->name,
                              i);
        if ((st = get_int(L, a, "added_tokens[]", "id", 0, INT32_MAX / 8 - 1, &id)) ||
            (st = get_str(L, a, "added_tokens[]", "content", true, &c, &cn)))
            return st;
        if (cn == 0)
            return slim_error(SLIM_ERR_FORMAT, "%s: added_tokens[%zu]: empty content", L->name, i);
        if (id > max_id) max_id = id;
        total += cn + 1;
    }
    if (max_id < 0) return slim_error(SLIM_ERR_FORMAT, "%s: model.vocab: no tokens", L->name);
    /* The tables are sized by the largest id: ids far past the tokens listed would cost memory
     * out of proportion to the file (an id of 2e8 among seven tokens: gigabytes). */
    if ((size_t)max_id >= 2 * (nv + na) + 1024)
        return slim_error(SLIM_ERR_FORMAT,
                          "%s: token id %lld is far past the %zu tokens model.vocab and "
                          "added_tokens list",
                          L->name, (long long)max_id, nv + na);
    v->n = (int32_t)(max_id + 1);
    size_t n = (size_t)v->n;
    uint32_t cap = 1;
    while (cap < (uint32_t)v->n * 2u)
        cap <<= 1;
    v->hmask = cap - 1;
    v->text = calloc(n, sizeof *v->text);
    v->len = calloc(n, sizeof *v->len);
    v->score = calloc(n, sizeof *v->score);
    v->attr = calloc(n, sizeof *v->attr);
    v->byte_val = calloc(n, 1);
    v->text_buf = malloc(total + 1);
    v->hslot = malloc((size_t)cap * sizeof *v->hslot);
    v->hhash = malloc((size_t)cap * sizeof *v->hhash);
    h->in_model = calloc(n, 1);
    h->added_of = malloc(n * sizeof *h->added_of);
    h->added = calloc(na + 1, sizeof *h->added);
    if (!v->text || !v->len || !v->score || !v->attr || !v->byte_val || !v->text_buf || !v->hslot ||
        !v->hhash || !h->in_model || !h->added_of || !h->added)
        return nomem();
    memset(v->hslot, 0xff, (size_t)cap * sizeof *v->hslot);
    memset(h->added_of, 0xff, n * sizeof *h->added_of);
    char *p = v->text_buf;
    *p = '\0';
    for (size_t i = 0; i < n; i++) { /* holes: empty text, unused */
        v->text[i] = p;
        v->attr[i] = SLIM_ATTR_UNUSED;
    }
    p++;
    for (size_t i = 0; i < nv; i++) {
        const char *k;
        size_t kn;
        int64_t id;
        slim_json_i64(slim_json_member(vocab, i, &k, &kn), &id);
        if (h->in_model[id])
            return slim_error(SLIM_ERR_FORMAT, "%s: model.vocab: id %lld is given twice ('%.64s')",
                              L->name, (long long)id, k);
        h->in_model[id] = 1;
        memcpy(p, k, kn);
        p[kn] = '\0';
        v->text[id] = p;
        v->len[id] = (uint32_t)kn;
        v->attr[id] = SLIM_ATTR_NORMAL;
        p += kn + 1;
        int32_t dup = slim_vocab_hash_insert(v, (int32_t)id);
        if (dup >= 0)
            return slim_error(SLIM_ERR_FORMAT, "%s: model.vocab: '%.64s' has two ids (%d and %lld)",
                              L->name, k, dup, (long long)id);
    }
    for (size_t i = 0; i < na; i++) {
        const slim_json *a = slim_json_at(added, i);
        int64_t id;
        const char *c;
        size_t cn;
        hf_added *t = &h->added[h->n_added];
        slim_json_i64(slim_json_get(a, "id"), &id);
        c = slim_json_str(slim_json_get(a, "content"), &cn);
        slim_status st;
        if ((st = get_bool(L, a, "added_tokens[]", "special", false, &t->special)) ||
            (st = get_bool(L, a, "added_tokens[]", "lstrip", false, &t->lstrip)) ||
            (st = get_bool(L, a, "added_tokens[]", "rstrip", false, &t->rstrip)) ||
            (st = get_bool(L, a, "added_tokens[]", "normalized", !t->special, &t->normalized)) ||
            (st = get_bool(L, a, "added_tokens[]", "single_word", false, &t->single_word)))
            return st;
        if (h->added_of[id] >= 0)
            return slim_error(SLIM_ERR_FORMAT, "%s: added_tokens: id %lld is given twice", L->name,
                              (long long)id);
        int32_t have = slim_vocab_lookup(v, c, cn);
        if (h->in_model[id] && (v->len[id] != cn || memcmp(v->text[id], c, cn)))
            return slim_error(SLIM_ERR_FORMAT,
                              "%s: added_tokens[%zu]: '%.64s' has id %lld, which model.vocab "
                              "gives to '%.64s'",
                              L->name, i, c, (long long)id, v->text[id]);
        if (have >= 0 && have != id)
            return slim_error(SLIM_ERR_FORMAT, "%s: added_tokens[%zu]: '%.64s' has ids %d and %lld",
                              L->name, i, c, have, (long long)id);
        if (!h->in_model[id]) {
            memcpy(p, c, cn);
            p[cn] = '\0';
            v->text[id] = p;
            v->len[id] = (uint32_t)cn;
            p += cn + 1;
            slim_vocab_hash_insert(v, (int32_t)id);
        }
        t->id = (int32_t)id;
        t->content = v->text[id];
        t->len = cn;
        v->attr[id] = t->special ? SLIM_ATTR_CONTROL : SLIM_ATTR_USER_DEFINED;
        h->added_of[id] = h->n_added++;
    }
    return SLIM_OK;
}

static slim_status load_model(ld *L, const slim_json *root) {
    const slim_json *m = slim_json_get(root, "model");
    slim_hf *h = L->h;
    slim_vocab *v = L->v;
    slim_status st;
    if (slim_json_type_of(m) != SLIM_JSON_OBJECT)
        return slim_error(SLIM_ERR_FORMAT, "%s: model: missing or not an object", L->name);
    const char *t = type_of(m);
    if (t && strcmp(t, "BPE"))
        return slim_error(SLIM_ERR_UNSUPPORTED,
                          "%s: model type '%.64s' is not supported (slim reads BPE tokenizers; "
                          "not Unigram, WordPiece or WordLevel)",
                          L->name, t);
    const slim_json *vocab = slim_json_get(m, "vocab"), *merges = slim_json_get(m, "merges");
    const slim_json *added = slim_json_get(root, "added_tokens");
    if (slim_json_type_of(vocab) != SLIM_JSON_OBJECT)
        return slim_error(SLIM_ERR_FORMAT, "%s: model.vocab: missing or not an object", L->name);
    if (slim_json_type_of(merges) != SLIM_JSON_ARRAY)
        return slim_error(SLIM_ERR_FORMAT, "%s: model.merges: missing or not an array", L->name);
    if (added && !slim_json_is_null(added) && slim_json_type_of(added) != SLIM_JSON_ARRAY)
        return slim_error(SLIM_ERR_FORMAT, "%s: added_tokens: expected an array", L->name);
    const char *s;
    double dropout = 0;
    const slim_json *dj = slim_json_get(m, "dropout");
    if (dj && !slim_json_is_null(dj) && (!slim_json_num(dj, &dropout) || dropout != 0))
        return slim_error(SLIM_ERR_UNSUPPORTED, "%s: model.dropout: BPE dropout is not supported",
                          L->name);
    static const char *const affix[] = {"continuing_subword_prefix", "end_of_word_suffix"};
    for (int i = 0; i < 2; i++) {
        size_t sn;
        if ((st = get_str(L, m, "model", affix[i], false, &s, &sn))) return st;
        if (s && sn)
            return slim_error(SLIM_ERR_UNSUPPORTED, "%s: model.%s '%.32s' is not supported",
                              L->name, affix[i], s);
    }
    if ((st = get_bool(L, m, "model", "byte_fallback", false, &h->byte_fallback)) ||
        (st = get_bool(L, m, "model", "fuse_unk", false, &h->fuse_unk)) ||
        (st = get_bool(L, m, "model", "ignore_merges", false, &h->ignore_merges)) ||
        (st = load_vocab(L, vocab, added)))
        return st;
    size_t un;
    h->unk = -1;
    if ((st = get_str(L, m, "model", "unk_token", false, &s, &un))) return st;
    if (s) {
        h->unk = slim_vocab_lookup(v, s, un);
        if (h->unk < 0 || !h->in_model[h->unk])
            return slim_error(SLIM_ERR_FORMAT, "%s: model.unk_token '%.64s' is not in model.vocab",
                              L->name, s);
        v->attr[h->unk] = SLIM_ATTR_UNKNOWN;
    }
    v->unk = h->unk;
    for (int b = 0; b < 256; b++) {
        char hx[7];
        snprintf(hx, sizeof hx, "<0x%02X>", b);
        int32_t id = slim_vocab_lookup(v, hx, 6);
        h->byte_id[b] = id >= 0 && h->in_model[id] ? id : -1;
        if (h->byte_fallback && h->byte_id[b] >= 0 && h->added_of[id] < 0) {
            v->attr[id] = SLIM_ATTR_BYTE;
            v->byte_val[id] = (uint8_t)b;
        }
        v->byte_tok[b] = h->byte_id[b];
    }
    return load_merges(L, merges);
}

/* ---- post-processor ---------------------------------------------------------- */

static slim_status push_ids(int32_t **p, int32_t *n, const int32_t *ids, int32_t k) {
    if (k == 0) return SLIM_OK;
    int32_t *q = realloc(*p, (size_t)(*n + k) * sizeof *q);
    if (!q) return nomem();
    memcpy(q + *n, ids, (size_t)k * sizeof *q);
    *p = q;
    *n += k;
    return SLIM_OK;
}

/* A [token, id] pair (RobertaProcessing's cls and sep) */
static slim_status pair_id(const ld *L, const slim_json *o, const char *key, int32_t *id) {
    const slim_json *x = slim_json_get(o, key);
    int64_t i;
    if (slim_json_len(x) != 2 || !slim_json_i64(slim_json_at(x, 1), &i) || i < 0 || i >= L->v->n)
        return slim_error(SLIM_ERR_FORMAT,
                          "%s: post_processor.%s: expected [token, id] with an "
                          "id in range",
                          L->name, key);
    *id = (int32_t)i;
    return SLIM_OK;
}

static slim_status template_ids(const ld *L, const slim_json *o, int32_t **pre, int32_t *npre,
                                int32_t **suf, int32_t *nsuf) {
    const slim_json *single = slim_json_get(o, "single"), *sp = slim_json_get(o, "special_tokens");
    slim_status st;
    if (slim_json_type_of(single) != SLIM_JSON_ARRAY)
        return slim_error(SLIM_ERR_FORMAT, "%s: post_processor.single: expected an array", L->name);
    bool seen_a = false;
    for (size_t i = 0; i < slim_json_len(single); i++) {
        const slim_json *it = slim_json_at(single, i), *x;
        const char *id;
        if ((x = slim_json_get(it, "Sequence"))) {
            if (seen_a)
                return slim_error(SLIM_ERR_FORMAT, "%s: post_processor.single: two sequences",
                                  L->name);
            seen_a = true;
            continue;
        }
        x = slim_json_get(it, "SpecialToken");
        if (!(id = slim_json_str(slim_json_get(x, "id"), NULL)))
            return slim_error(SLIM_ERR_FORMAT,
                              "%s: post_processor.single[%zu]: expected a Sequence or a "
                              "SpecialToken with an id",
                              L->name, i);
        const slim_json *ids = slim_json_get(slim_json_get(sp, id), "ids");
        if (slim_json_type_of(ids) != SLIM_JSON_ARRAY)
            return slim_error(SLIM_ERR_FORMAT,
                              "%s: post_processor.special_tokens: '%.64s' missing or without ids",
                              L->name, id);
        for (size_t k = 0; k < slim_json_len(ids); k++) {
            int64_t t;
            if (!slim_json_i64(slim_json_at(ids, k), &t) || t < 0 || t >= L->v->n)
                return slim_error(SLIM_ERR_FORMAT,
                                  "%s: post_processor.special_tokens['%.64s'].ids[%zu]: not a "
                                  "token id",
                                  L->name, id, k);
            int32_t t32 = (int32_t)t;
            if ((st = seen_a ? push_ids(suf, nsuf, &t32, 1) : push_ids(pre, npre, &t32, 1)))
                return st;
        }
    }
    if (!seen_a)
        return slim_error(SLIM_ERR_FORMAT, "%s: post_processor.single: no sequence $A", L->name);
    return SLIM_OK;
}

static slim_status load_post(ld *L, const slim_json *o, int depth) {
    slim_hf *h = L->h;
    const char *t = type_of(o);
    slim_status st;
    if (!t)
        return slim_error(SLIM_ERR_FORMAT, "%s: post_processor: expected an object with a type",
                          L->name);
    if (!strcmp(t, "ByteLevel")) return SLIM_OK; /* offsets only */
    if (!strcmp(t, "Sequence")) {
        const slim_json *a = slim_json_get(o, "processors");
        if (slim_json_type_of(a) != SLIM_JSON_ARRAY || depth > 8)
            return slim_error(SLIM_ERR_FORMAT, "%s: post_processor.processors: expected an array",
                              L->name);
        for (size_t i = 0; i < slim_json_len(a); i++)
            if ((st = load_post(L, slim_json_at(a, i), depth + 1))) return st;
        return SLIM_OK;
    }
    int32_t *pre = NULL, *suf = NULL, npre = 0, nsuf = 0;
    if (!strcmp(t, "TemplateProcessing")) {
        st = template_ids(L, o, &pre, &npre, &suf, &nsuf);
    } else if (!strcmp(t, "RobertaProcessing") || !strcmp(t, "BertProcessing")) {
        int32_t cls, sep;
        if (!(st = pair_id(L, o, "cls", &cls)) && !(st = pair_id(L, o, "sep", &sep)) &&
            !(st = push_ids(&pre, &npre, &cls, 1)))
            st = push_ids(&suf, &nsuf, &sep, 1);
    } else {
        return unsupported(L, "post_processor", t);
    }
    /* a later processor wraps what the earlier ones made */
    if (!st) st = push_ids(&pre, &npre, h->prefix, h->n_prefix);
    if (!st) st = push_ids(&h->suffix, &h->n_suffix, suf, nsuf);
    if (!st) {
        free(h->prefix);
        h->prefix = pre;
        h->n_prefix = npre;
        pre = NULL;
    }
    free(pre);
    free(suf);
    return st;
}

/* ---- added-token tries --------------------------------------------------------- */

static bool trie_add(hf_trie *t, const char *s, size_t n, int32_t rank) {
    int32_t node = 0;
    for (size_t i = 0; i < n; i++) {
        uint8_t c = (uint8_t)s[i];
        int32_t ch = node == 0 ? t->root[c] : t->node[node].child;
        while (node != 0 && ch >= 0 && t->node[ch].byte != c)
            ch = t->node[ch].sibling;
        if (ch < 0) {
            if (t->n == t->cap) {
                int32_t nc = t->cap ? t->cap * 2 : 256;
                slim_trie_node *p = realloc(t->node, (size_t)nc * sizeof *p);
                if (!p) return false;
                t->node = p;
                t->cap = nc;
            }
            ch = t->n++;
            t->node[ch] = (slim_trie_node){-1, -1, -1, c};
            if (node == 0) {
                t->root[c] = ch;
            } else {
                t->node[ch].sibling = t->node[node].child;
                t->node[node].child = ch;
            }
        }
        node = ch;
    }
    if (t->node[node].rank < 0) t->node[node].rank = rank; /* same text twice: the first */
    return true;
}

static slim_status build_tries(ld *L) {
    slim_hf *h = L->h;
    hf_trie *ts[2] = {&h->raw, &h->normed};
    for (int k = 0; k < 2; k++) {
        for (int i = 0; i < 256; i++)
            ts[k]->root[i] = -1;
        if (!(ts[k]->node = malloc(256 * sizeof *ts[k]->node))) return nomem();
        ts[k]->cap = 256;
        ts[k]->n = 1;
        ts[k]->node[0] = (slim_trie_node){-1, -1, -1, 0};
    }
    for (int32_t i = 0; i < h->n_added; i++) {
        hf_added *a = &h->added[i];
        if (a->normalized) { /* matched in normalized text: the content normalized too */
            slim_status st = slim_hf_normalize(h, a->content, a->len, &a->norm, &a->nlen);
            if (st) return st;
            if (a->nlen && !trie_add(&h->normed, a->norm, a->nlen, i)) return nomem();
        } else if (!trie_add(&h->raw, a->content, a->len, i)) {
            return nomem();
        }
    }
    return SLIM_OK;
}

/* ---- the directory ------------------------------------------------------------- */

static bool file_exists(const char *path) {
    struct stat sb;
    return stat(path, &sb) == 0 && S_ISREG(sb.st_mode);
}

/* bos_token / eos_token: a string or {"content": ...} (AddedToken); -1 if absent. */
static slim_status config_token(const char *name, const slim_json *cfg, const char *key,
                                const slim_vocab *v, int32_t *id) {
    const slim_json *x = slim_json_get(cfg, key);
    *id = -1;
    if (!x || slim_json_is_null(x)) return SLIM_OK;
    if (slim_json_type_of(x) == SLIM_JSON_OBJECT) x = slim_json_get(x, "content");
    size_t n;
    const char *s = slim_json_str(x, &n);
    if (!s)
        return slim_error(SLIM_ERR_FORMAT,
                          "%s: %s: expected a string or an object with a content string", name,
                          key);
    if ((*id = slim_vocab_lookup(v, s, n)) < 0)
        return slim_error(SLIM_ERR_FORMAT, "%s: %s '%.64s' is not a token", name, key, s);
    return SLIM_OK;
}

static slim_status read_text_file(const char *path, char **out) {
    FILE *f = fopen(path, "rb");
    if (!f) return slim_error(SLIM_ERR_IO, "%s: cannot open", path);
    char *buf = NULL;
    size_t n = 0, cap = 0;
    for (;;) {
        if (n + 4096 + 1 > cap) {
            size_t nc = cap ? cap * 2 : 8192;
            char *p = realloc(buf, nc);
            if (!p) {
                free(buf);
                fclose(f);
                return nomem();
            }
            buf = p;
            cap = nc;
        }
        size_t r = fread(buf + n, 1, 4096, f);
        n += r;
        if (r < 4096) break;
    }
    bool err = ferror(f);
    fclose(f);
    if (err) {
        free(buf);
        return slim_error(SLIM_ERR_IO, "%s: read error", path);
    }
    buf[n] = '\0';
    *out = buf;
    return SLIM_OK;
}

static slim_status load_config(slim_vocab *v, const char *dir, char *path, size_t cap) {
    slim_hf *h = v->hf;
    slim_json_doc *doc = NULL;
    slim_status st = SLIM_OK;
    snprintf(path, cap, "%s/tokenizer_config.json", dir);
    const slim_json *cfg = NULL;
    if (file_exists(path)) {
        if ((st = slim_json_parse_file(path, &doc))) return st;
        cfg = slim_json_root(doc);
        if (slim_json_type_of(cfg) != SLIM_JSON_OBJECT) {
            slim_json_free(doc);
            return slim_error(SLIM_ERR_FORMAT, "%s: expected an object", path);
        }
    }
    int32_t bos = -1, eos = -1;
    bool add_bos = false, add_eos = false;
    const slim_json *ab = slim_json_get(cfg, "add_bos_token"),
                    *ae = slim_json_get(cfg, "add_eos_token");
    if ((st = config_token(path, cfg, "bos_token", v, &bos)) ||
        (st = config_token(path, cfg, "eos_token", v, &eos)))
        goto done;
    for (int k = 0; k < 2; k++) {
        const slim_json *x = k ? ae : ab;
        if (x && !slim_json_is_null(x) && !slim_json_bool(x, k ? &add_eos : &add_bos)) {
            st = slim_error(SLIM_ERR_FORMAT, "%s: %s: expected a boolean", path,
                            k ? "add_eos_token" : "add_bos_token");
            goto done;
        }
    }
    /* transformers rebuilds the post-processor from these flags where the file
     * sets them or tokenizer.json has none (TokenizersBackend.update_post_processor) */
    if (ab || ae || !h->post_set) {
        free(h->prefix);
        free(h->suffix);
        h->prefix = h->suffix = NULL;
        h->n_prefix = h->n_suffix = 0;
        if (add_bos && bos >= 0 && (st = push_ids(&h->prefix, &h->n_prefix, &bos, 1))) goto done;
        if (add_eos && eos >= 0 && (st = push_ids(&h->suffix, &h->n_suffix, &eos, 1))) goto done;
    }
    v->bos = bos >= 0 ? bos : h->n_prefix == 1 ? h->prefix[0] : -1;
    v->eos = eos;
    v->add_bos = h->n_prefix > 0;
    v->add_eos = h->n_suffix > 0;

    /* the chat template: chat_template.jinja (transformers prefers it), else the config's */
    snprintf(path, cap, "%s/chat_template.jinja", dir);
    if (file_exists(path)) {
        st = read_text_file(path, &v->chat_template);
        goto done;
    }
    snprintf(path, cap, "%s/tokenizer_config.json", dir);
    const slim_json *ct = slim_json_get(cfg, "chat_template");
    if (!ct || slim_json_is_null(ct)) goto done;
    const char *s = slim_json_str(ct, NULL);
    for (size_t i = 0; !s && i < slim_json_len(ct) && slim_json_type_of(ct) == SLIM_JSON_ARRAY;
         i++) {
        const slim_json *e = slim_json_at(ct, i);
        const char *nm = slim_json_str(slim_json_get(e, "name"), NULL);
        if (nm && !strcmp(nm, "default")) s = slim_json_str(slim_json_get(e, "template"), NULL);
    }
    if (!s && slim_json_type_of(ct) != SLIM_JSON_ARRAY) {
        st = slim_error(SLIM_ERR_FORMAT,
                        "%s: chat_template: expected a string or a list of "
                        "{name, template}",
                        path);
        goto done;
    }
    if (s && !(v->chat_template = dup_n(s, strlen(s)))) st = nomem();
done:
    slim_json_free(doc);
    return st;
}

static slim_status eog_push(slim_vocab *v, int32_t id) {
    for (int32_t i = 0; i < v->n_eog; i++)
        if (v->eog[i] == id) return SLIM_OK;
    int32_t *p = realloc(v->eog, (size_t)(v->n_eog + 1) * sizeof *p);
    if (!p) return nomem();
    v->eog = p;
    v->eog[v->n_eog++] = id;
    return SLIM_OK;
}

static slim_status load_generation(slim_vocab *v, const char *dir, char *path, size_t cap) {
    snprintf(path, cap, "%s/generation_config.json", dir);
    slim_status st = SLIM_OK;
    if (file_exists(path)) {
        slim_json_doc *doc;
        if ((st = slim_json_parse_file(path, &doc))) return st;
        const slim_json *e = slim_json_get(slim_json_root(doc), "eos_token_id");
        bool list = slim_json_type_of(e) == SLIM_JSON_ARRAY;
        size_t n = list ? slim_json_len(e) : (e && !slim_json_is_null(e));
        for (size_t i = 0; i < n && !st; i++) {
            int64_t id;
            if (!slim_json_i64(list ? slim_json_at(e, i) : e, &id) || id < 0 || id >= v->n)
                st = slim_error(SLIM_ERR_FORMAT,
                                "%s: eos_token_id: expected token ids below %d (an integer or a "
                                "list of them)",
                                path, v->n);
            else if (!(st = eog_push(v, (int32_t)id)) && v->eos < 0)
                v->eos = (int32_t)id;
        }
        slim_json_free(doc);
    }
    if (!st && v->eos >= 0) st = eog_push(v, v->eos);
    return st;
}

static slim_status load_tokenizer(slim_vocab *v, const char *path) {
    slim_json_doc *doc;
    slim_status st = slim_json_parse_file(path, &doc);
    if (st) return st;
    ld L = {path, v, v->hf, 1.0};
    const slim_json *root = slim_json_root(doc), *x;
    if (slim_json_type_of(root) != SLIM_JSON_OBJECT) {
        st = slim_error(SLIM_ERR_FORMAT, "%s: expected an object", path);
        goto done;
    }
    if ((st = load_model(&L, root))) goto done;
    if ((x = slim_json_get(root, "normalizer")) && !slim_json_is_null(x) &&
        (st = add_norm(&L, x, 0)))
        goto done;
    if ((x = slim_json_get(root, "pre_tokenizer")) && !slim_json_is_null(x) &&
        (st = add_pre(&L, x, 0)))
        goto done;
    if ((x = slim_json_get(root, "decoder")) && !slim_json_is_null(x)) {
        v->hf->has_decoder = true;
        if ((st = add_dec(&L, x, 0))) goto done;
    }
    if ((x = slim_json_get(root, "post_processor")) && !slim_json_is_null(x)) {
        v->hf->post_set = true;
        if (slim_json_type_of(x) != SLIM_JSON_OBJECT) {
            st = slim_error(SLIM_ERR_FORMAT, "%s: post_processor: expected an object", path);
            goto done;
        }
        if ((st = load_post(&L, x, 0))) goto done;
    }
    st = build_tries(&L);
    /* what GGUF would call it */
    v->type = SLIM_VOCAB_SPM;
    v->pre = SLIM_PRE_GPT2;
    for (int i = 0; i < v->hf->n_pre; i++) {
        const hf_pre *p = &v->hf->pre[i];
        if (p->kind == HF_PRE_BYTELEVEL) v->type = SLIM_VOCAB_BPE;
        if (p->kind == HF_PRE_SPLIT_RE) v->pre = p->pre;
        if (p->kind == HF_PRE_METASPACE && p->scheme != HF_PREPEND_NEVER)
            v->add_space_prefix = true;
    }
    for (int i = 0; i < v->hf->n_norm; i++)
        if (v->hf->norm[i].kind == HF_NORM_PREPEND) v->add_space_prefix = true;
    v->ignore_merges = v->hf->ignore_merges;
done:
    slim_json_free(doc);
    return st;
}

slim_status slim_vocab_from_hf_dir(const char *dir, slim_vocab **out) {
    if (!out) return slim_error(SLIM_ERR_INVALID_ARG, "slim_vocab_from_hf_dir: out is NULL");
    *out = NULL;
    if (!dir) return slim_error(SLIM_ERR_INVALID_ARG, "slim_vocab_from_hf_dir: dir is NULL");
    size_t cap = strlen(dir) + 64;
    char *path = malloc(cap);
    slim_vocab *v = calloc(1, sizeof *v);
    if (v) v->hf = calloc(1, sizeof *v->hf);
    if (!path || !v || !v->hf) {
        free(path);
        slim_vocab_free(v);
        return nomem();
    }
    v->bos = v->eos = v->eot = v->eom = v->unk = v->sep = v->pad = v->mask = -1;
    v->fim_pre = v->fim_suf = v->fim_mid = v->fim_pad = v->fim_rep = v->fim_sep = -1;
    for (int b = 0; b < 256; b++)
        v->byte_tok[b] = -1;
    for (int i = 0; i < 256; i++)
        v->root_child[i] = -1;
    slim_status st;
    snprintf(path, cap, "%s/tokenizer.json", dir);
    if (!file_exists(path))
        st = slim_error(SLIM_ERR_IO, "%s: no tokenizer.json (a Hugging Face tokenizer needs one)",
                        dir);
    else if (!(st = load_tokenizer(v, path)) && !(st = load_config(v, dir, path, cap)))
        st = load_generation(v, dir, path, cap);
    free(path);
    if (st) {
        slim_vocab_free(v);
        return st;
    }
    *out = v;
    return SLIM_OK;
}

const char *slim_vocab_chat_template(const slim_vocab *v) { return v ? v->chat_template : NULL; }
