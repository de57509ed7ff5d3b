/* The tokenizers against llama.cpp: golden token ids and detokenizations from
 * tools/golden/gen_tokenizer.py.  SentencePiece on the real Gemma 3 vocabulary
 * and on a small synthetic Llama-2-style one (space prefix); byte-level BPE on
 * SmolLM2's vocabulary with its own pre-tokenizer ("smollm") and with each
 * other pre-tokenizer (gpt-2, llama-bpe, dbrx, qwen2, tekken, gpt-4o, default);
 * round trips, buffer conventions, invalid UTF-8, speed, malformed metadata;
 * the Unicode tables and the pre-tokenizers' splits. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "format/gguf.h"
#include "suites.h"
#include "tokenizer/bpe_pretok.h"
#include "tokenizer/tokenizer.h"

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static const char *data_path(const char *name, char *buf, size_t cap) {
    const char *dir = getenv("SLIM_TEST_DATA");
    snprintf(buf, cap, "%s/%s", dir && *dir ? dir : "tests/data", name);
    return buf;
}

/* ---- the default model's vocabulary, loaded once ----------------------- */

static slim_gguf *gemma_gguf;
static slim_vocab *gemma;
static double gemma_load_s;

static void gemma_setup(void) {
    slim_status st = slim_gguf_open(test_model_path(), true, &gemma_gguf);
    if (st) {
        fprintf(stderr, "tokenizer: cannot open %s: %s\n", test_model_path(), slim_last_error());
        return;
    }
    double t0 = now_s();
    st = slim_vocab_from_gguf(gemma_gguf, &gemma);
    gemma_load_s = now_s() - t0;
    if (st) fprintf(stderr, "tokenizer: vocab: %s\n", slim_last_error());
}

static void gemma_teardown(void) {
    slim_vocab_free(gemma);
    slim_gguf_close(gemma_gguf);
    gemma = NULL;
    gemma_gguf = NULL;
}

#define NEED_GEMMA() ck_assert_msg(gemma != NULL, "model %s did not load", test_model_path())

/* ---- golden files -------------------------------------------------------- */

typedef struct bytes {
    unsigned char *p;
    size_t n;
} bytes;

typedef struct ids {
    int32_t *p;
    size_t n;
} ids;

typedef struct gcase {
    bytes text;
    ids a, p;     /* (add_bos, no special), (no bos, parse special) */
    bytes det[4]; /* detok(a, 0), detok(a, render), detok(p, 0), detok(p, render) */
} gcase;

typedef struct golden {
    char name[256]; /* general.name for a synthetic vocabulary, "" if none */
    char pre[64];   /* tokenizer.ggml.pre for a synthetic BPE vocabulary, "" if none */
    char model[256];
    int32_t n_vocab;
    ids eog;
    gcase *cases;
    size_t n_cases;
    bytes *vtext; /* V lines: the synthetic vocabulary */
    float *vscore;
    int32_t *vtype;
    size_t n_v, cap_v;
} golden;

static bytes unhex(const char *s, size_t n) {
    bytes b = {malloc(n / 2 + 1), n / 2};
    for (size_t i = 0; i < b.n; i++) {
        unsigned x;
        sscanf(s + 2 * i, "%2x", &x);
        b.p[i] = (unsigned char)x;
    }
    return b;
}

static ids parse_ids(const char *s, size_t n) {
    ids r = {malloc((n + 1) * sizeof(int32_t)), 0};
    for (size_t i = 0; i < n;) {
        char *end;
        r.p[r.n++] = (int32_t)strtol(s + i, &end, 10);
        i = (size_t)(end - s) + 1;
    }
    return r;
}

/* Split a line at TABs in place; returns the number of fields. */
static int split_tabs(char *line, char **f, size_t *fl, int max) {
    int n = 0;
    char *p = line;
    while (n < max) {
        char *t = strchr(p, '\t');
        f[n] = p;
        fl[n] = t ? (size_t)(t - p) : strlen(p);
        n++;
        if (!t) break;
        *t = '\0';
        p = t + 1;
    }
    return n;
}

static void golden_load(const char *name, golden *g) {
    char path[512];
    memset(g, 0, sizeof *g);
    FILE *f = fopen(data_path(name, path, sizeof path), "r");
    ck_assert_msg(f != NULL, "cannot open %s (run tools/golden/gen_tokenizer.py)", path);
    char *line = NULL;
    size_t lcap = 0, ccap = 0;
    ssize_t len;
    while ((len = getline(&line, &lcap, f)) > 0) {
        if (line[len - 1] == '\n') line[--len] = '\0';
        if (line[0] == '#' || len == 0) continue;
        char *fd[64];
        size_t fl[64];
        int nf = split_tabs(line, fd, fl, 64);
        if (!strcmp(fd[0], "name") && nf == 2) {
            snprintf(g->name, sizeof g->name, "%s", fd[1]);
        } else if (!strcmp(fd[0], "pre") && nf == 2) {
            snprintf(g->pre, sizeof g->pre, "%s", fd[1]);
        } else if (!strcmp(fd[0], "model") && nf == 3) {
            snprintf(g->model, sizeof g->model, "%s", fd[1]);
            g->n_vocab = atoi(fd[2]);
        } else if (!strcmp(fd[0], "eog")) {
            g->eog.p = malloc(64 * sizeof(int32_t));
            for (int i = 1; i < nf; i++)
                g->eog.p[g->eog.n++] = atoi(fd[i]);
        } else if (!strcmp(fd[0], "V") && nf == 4) {
            if (g->n_v == g->cap_v) {
                g->cap_v = g->cap_v ? 2 * g->cap_v : 1024;
                g->vtext = realloc(g->vtext, g->cap_v * sizeof *g->vtext);
                g->vscore = realloc(g->vscore, g->cap_v * sizeof *g->vscore);
                g->vtype = realloc(g->vtype, g->cap_v * sizeof *g->vtype);
            }
            g->vtext[g->n_v] = unhex(fd[1], fl[1]);
            g->vscore[g->n_v] = strtof(fd[2], NULL);
            g->vtype[g->n_v] = atoi(fd[3]);
            g->n_v++;
        } else if (!strcmp(fd[0], "T") && nf == 8) {
            if (g->n_cases == ccap) {
                ccap = ccap ? 2 * ccap : 256;
                g->cases = realloc(g->cases, ccap * sizeof *g->cases);
            }
            gcase *c = &g->cases[g->n_cases++];
            c->text = unhex(fd[1], fl[1]);
            c->a = parse_ids(fd[2], fl[2]);
            c->p = parse_ids(fd[3], fl[3]);
            for (int k = 0; k < 4; k++) { /* "=": the text itself */
                bool same = fl[4 + k] == 1 && fd[4 + k][0] == '=';
                c->det[k] = same ? unhex(fd[1], fl[1]) : unhex(fd[4 + k], fl[4 + k]);
            }
        } else {
            ck_abort_msg("%s: bad line starting '%.20s'", path, fd[0]);
        }
    }
    free(line);
    fclose(f);
}

static void golden_free(golden *g) {
    for (size_t i = 0; i < g->n_cases; i++) {
        gcase *c = &g->cases[i];
        free(c->text.p);
        free(c->a.p);
        free(c->p.p);
        for (int k = 0; k < 4; k++)
            free(c->det[k].p);
    }
    for (size_t i = 0; i < g->n_v; i++)
        free(g->vtext[i].p);
    free(g->cases);
    free(g->vtext);
    free(g->vscore);
    free(g->vtype);
    free(g->eog.p);
}

/* ---- helpers --------------------------------------------------------------- */

static ids tok(const slim_vocab *v, const void *text, size_t len, uint32_t flags) {
    size_t n = 0;
    ck_assert_int_eq(slim_vocab_tokenize(v, text, len, flags, NULL, 0, &n), SLIM_OK);
    ids r = {malloc((n + 1) * sizeof(int32_t)), n};
    size_t n2 = 0;
    ck_assert_int_eq(slim_vocab_tokenize(v, text, len, flags, r.p, n, &n2), SLIM_OK);
    ck_assert_uint_eq(n, n2);
    return r;
}

static bytes detok(const slim_vocab *v, const int32_t *t, size_t n, uint32_t flags) {
    size_t need = 0;
    ck_assert_int_eq(slim_vocab_detokenize(v, t, n, flags, NULL, 0, &need), SLIM_OK);
    bytes b = {malloc(need + 1), 0};
    ck_assert_int_eq(slim_vocab_detokenize(v, t, n, flags, (char *)b.p, need, &b.n), SLIM_OK);
    ck_assert_uint_eq(b.n, need);
    return b;
}

static bool ids_eq(ids x, ids y) {
    return x.n == y.n && (x.n == 0 || !memcmp(x.p, y.p, x.n * sizeof(int32_t)));
}

static bool bytes_eq(bytes x, const void *p, size_t n) {
    return x.n == n && (n == 0 || !memcmp(x.p, p, n));
}

/* Where SentencePiece is lossless (a vocabulary with byte fallback and no
 * space prefix): spaces become U+2581 before splitting and U+2581 becomes a
 * space again, so a literal U+2581 in the text comes back as a space, and an
 * incomplete UTF-8 lead byte just before a space swallows part of the escaped
 * space.  Texts without U+2581 and without such a lead byte come back exactly. */
static bool expect_lossless(const unsigned char *t, size_t n) {
    for (size_t i = 0; i < n; i++) {
        if (i + 3 <= n && !memcmp(t + i, "\xe2\x96\x81", 3)) return false;
        size_t need = t[i] >= 0xf0 ? 4 : t[i] >= 0xe0 ? 3 : t[i] >= 0xc0 ? 2 : 1;
        for (size_t k = 1; k < need && i + k < n; k++)
            if (t[i + k] == ' ') return false;
    }
    return true;
}

static void print_case(const char *what, const gcase *c, ids got, ids want) {
    fprintf(stderr, "  %s mismatch on text (%zu bytes) \"", what, c->text.n);
    for (size_t i = 0; i < c->text.n && i < 80; i++)
        fprintf(stderr, "%02x", c->text.p[i]);
    fprintf(stderr, "\"\n    slim:     ");
    for (size_t i = 0; i < got.n && i < 30; i++)
        fprintf(stderr, "%d ", got.p[i]);
    fprintf(stderr, "\n    llama.cpp: ");
    for (size_t i = 0; i < want.n && i < 30; i++)
        fprintf(stderr, "%d ", want.p[i]);
    fprintf(stderr, "\n");
}

typedef struct stats {
    size_t strings, id_mismatch, det_mismatch, lossless, lossless_plain, roundtrip_fail;
    size_t expected_lossless, expected_lossless_ok;
} stats;

/* Compare slim with llama.cpp on every golden string.  Round trips are
 * required where the tokenization is lossless, taken as: llama.cpp's own
 * detokenization of its ids gives the text back.  Then slim's must too:
 *  - special:  tokenize(PARSE_SPECIAL) -> detokenize(RENDER_SPECIAL), where
 *              llama.cpp's detokenize(ids_p, unparse_special) == text;
 *  - plain:    tokenize(0) -> detokenize(0), where llama.cpp's
 *              detokenize(ids_a, no unparse) == text (BOS renders as nothing).
 * On Gemma (byte fallback, no space prefix) every string that expect_lossless()
 * accepts must be lossless both ways. */
static stats run_golden(const slim_vocab *v, const golden *g) {
    stats s = {0};
    for (size_t i = 0; i < g->n_cases; i++) {
        const gcase *c = &g->cases[i];
        s.strings++;
        ids a = tok(v, c->text.p, c->text.n, SLIM_TOKENIZE_ADD_BOS);
        ids p = tok(v, c->text.p, c->text.n, SLIM_TOKENIZE_PARSE_SPECIAL);
        bool bad = false;
        if (!ids_eq(a, c->a)) {
            if (s.id_mismatch < 5) print_case("ids (add_bos)", c, a, c->a);
            bad = true;
        }
        if (!ids_eq(p, c->p)) {
            if (s.id_mismatch < 5) print_case("ids (parse_special)", c, p, c->p);
            bad = true;
        }
        s.id_mismatch += bad;
        const ids *src[4] = {&c->a, &c->a, &c->p, &c->p};
        bool det_bad = false;
        for (int k = 0; k < 4; k++) {
            bytes d = detok(v, src[k]->p, src[k]->n, k & 1 ? SLIM_DETOKENIZE_RENDER_SPECIAL : 0);
            if (!bytes_eq(d, c->det[k].p, c->det[k].n)) {
                if (s.det_mismatch < 5)
                    fprintf(stderr, "  detokenize #%d mismatch on golden string %zu\n", k, i);
                det_bad = true;
            }
            free(d.p);
        }
        s.det_mismatch += det_bad;
        if (expect_lossless(c->text.p, c->text.n)) {
            s.expected_lossless++;
            s.expected_lossless_ok += bytes_eq(c->det[3], c->text.p, c->text.n) &&
                                      bytes_eq(c->det[0], c->text.p, c->text.n);
        }
        if (bytes_eq(c->det[3], c->text.p, c->text.n)) { /* lossless with special tokens */
            s.lossless++;
            bytes r = detok(v, p.p, p.n, SLIM_DETOKENIZE_RENDER_SPECIAL);
            bool ok = bytes_eq(r, c->text.p, c->text.n);
            if (!ok && s.roundtrip_fail < 5)
                fprintf(stderr, "  round trip (special) failed on golden string %zu\n", i);
            s.roundtrip_fail += !ok;
            free(r.p);
        }
        if (bytes_eq(c->det[0], c->text.p, c->text.n)) { /* lossless as plain text */
            s.lossless_plain++;
            ids t0 = tok(v, c->text.p, c->text.n, 0);
            bytes r = detok(v, t0.p, t0.n, 0);
            bool ok = bytes_eq(r, c->text.p, c->text.n);
            if (!ok && s.roundtrip_fail < 5)
                fprintf(stderr, "  round trip (plain) failed on golden string %zu\n", i);
            s.roundtrip_fail += !ok;
            free(t0.p);
            free(r.p);
        }
        free(a.p);
        free(p.p);
    }
    return s;
}

/* ---- an in-memory GGUF writer, for synthetic vocabularies ------------------ */

typedef struct gbuf {
    unsigned char *p;
    size_t n, cap;
    uint64_t n_kv;
} gbuf;

static void gb_raw(gbuf *b, const void *d, size_t n) {
    if (b->n + n > b->cap) {
        b->cap = (b->n + n) * 2 + 64;
        b->p = realloc(b->p, b->cap);
    }
    memcpy(b->p + b->n, d, n);
    b->n += n;
}
static void gb_u32(gbuf *b, uint32_t x) { gb_raw(b, &x, 4); }
static void gb_u64(gbuf *b, uint64_t x) { gb_raw(b, &x, 8); }
static void gb_str(gbuf *b, const void *s, size_t n) {
    gb_u64(b, n);
    gb_raw(b, s, n);
}
static void gb_key(gbuf *b, const char *key, uint32_t type) {
    gb_str(b, key, strlen(key));
    gb_u32(b, type);
    b->n_kv++;
}
static void gb_kv_str(gbuf *b, const char *key, const char *v) {
    gb_key(b, key, 8);
    gb_str(b, v, strlen(v));
}
static void gb_kv_u32(gbuf *b, const char *key, uint32_t v) {
    gb_key(b, key, 4);
    gb_u32(b, v);
}
static void gb_kv_bool(gbuf *b, const char *key, bool v) {
    gb_key(b, key, 7);
    unsigned char c = v;
    gb_raw(b, &c, 1);
}
static void gb_kv_strs(gbuf *b, const char *key, const bytes *s, size_t n) {
    gb_key(b, key, 9);
    gb_u32(b, 8);
    gb_u64(b, n);
    for (size_t i = 0; i < n; i++)
        gb_str(b, s[i].p, s[i].n);
}
static void gb_kv_arr(gbuf *b, const char *key, uint32_t type, const void *d, size_t n) {
    gb_key(b, key, 9);
    gb_u32(b, type);
    gb_u64(b, n);
    gb_raw(b, d, 4 * n);
}
/* The whole file: header, then the key-values written so far. */
static gbuf gb_finish(gbuf *kv) {
    gbuf f = {0};
    gb_raw(&f, "GGUF", 4);
    gb_u32(&f, 3);
    gb_u64(&f, 0);
    gb_u64(&f, kv->n_kv);
    gb_raw(&f, kv->p, kv->n);
    free(kv->p);
    return f;
}

typedef struct synth {
    const char *name; /* general.name, NULL: none */
    const char *model;
    const bytes *text;
    const float *score;
    const int32_t *type;
    size_t n, n_score, n_type;
    int64_t bos;          /* -1: key absent */
    int add_space_prefix; /* -1: key absent */
} synth;

static gbuf synth_gguf(const synth *s) {
    gbuf kv = {0};
    gb_kv_str(&kv, "general.architecture", "llama");
    if (s->name) gb_kv_str(&kv, "general.name", s->name);
    if (s->model) gb_kv_str(&kv, "tokenizer.ggml.model", s->model);
    gb_kv_strs(&kv, "tokenizer.ggml.tokens", s->text, s->n);
    gb_kv_arr(&kv, "tokenizer.ggml.scores", 6, s->score, s->n_score);
    gb_kv_arr(&kv, "tokenizer.ggml.token_type", 5, s->type, s->n_type);
    if (s->bos >= 0) gb_kv_u32(&kv, "tokenizer.ggml.bos_token_id", (uint32_t)s->bos);
    gb_kv_u32(&kv, "tokenizer.ggml.eos_token_id", 2);
    gb_kv_u32(&kv, "tokenizer.ggml.unknown_token_id", 0);
    if (s->add_space_prefix >= 0)
        gb_kv_bool(&kv, "tokenizer.ggml.add_space_prefix", s->add_space_prefix);
    return gb_finish(&kv);
}

/* ---- tests ------------------------------------------------------------------ */

START_TEST(test_load) {
    NEED_GEMMA();
    fprintf(stderr, "tokenizer: vocabulary of %d built in %.1f ms\n", slim_vocab_size(gemma),
            gemma_load_s * 1e3);
    ck_assert_int_eq(slim_vocab_size(gemma), 262144);
    ck_assert_int_eq(slim_vocab_bos(gemma), 2);
    ck_assert_int_eq(slim_vocab_eos(gemma), 1);
    ck_assert_str_eq(slim_vocab_token_text(gemma, 2), "<bos>");
    ck_assert_str_eq(slim_vocab_token_text(gemma, 106), "<end_of_turn>");
    ck_assert_str_eq(slim_vocab_token_text(gemma, 248), "<0x0A>");
    ck_assert_ptr_null(slim_vocab_token_text(gemma, -1));
    ck_assert_ptr_null(slim_vocab_token_text(gemma, 262144));
    ck_assert(slim_vocab_is_eog(gemma, 1));
    ck_assert(slim_vocab_is_eog(gemma, 106));
    ck_assert(!slim_vocab_is_eog(gemma, 2));
    ck_assert(!slim_vocab_is_eog(gemma, -1));
    ck_assert_msg(gemma_load_s < 1.0, "building the vocabulary took %.3f s", gemma_load_s);
}
END_TEST

START_TEST(test_golden_gemma) {
    NEED_GEMMA();
    golden g;
    golden_load("tokenizer_golden.txt", &g);
    ck_assert_int_eq(g.n_vocab, slim_vocab_size(gemma));
    /* end-of-generation tokens: the same set as llama_vocab_is_eog */
    size_t n_eog = 0;
    for (int32_t t = 0; t < slim_vocab_size(gemma); t++)
        n_eog += slim_vocab_is_eog(gemma, t);
    ck_assert_uint_eq(n_eog, g.eog.n);
    for (size_t i = 0; i < g.eog.n; i++)
        ck_assert(slim_vocab_is_eog(gemma, g.eog.p[i]));
    stats s = run_golden(gemma, &g);
    fprintf(stderr,
            "tokenizer: gemma golden: %zu strings x 2 flag settings, %zu id mismatches, %zu "
            "detokenize mismatches, %zu round trips (%zu special + %zu plain), %zu failed\n",
            s.strings, s.id_mismatch, s.det_mismatch, s.lossless + s.lossless_plain, s.lossless,
            s.lossless_plain, s.roundtrip_fail);
    ck_assert_uint_ge(s.strings, 300);
    ck_assert_uint_eq(s.id_mismatch, 0);
    ck_assert_uint_eq(s.det_mismatch, 0);
    ck_assert_uint_eq(s.roundtrip_fail, 0);
    /* byte fallback, no space prefix: lossless but for U+2581 and broken lead bytes */
    fprintf(stderr, "tokenizer: gemma: %zu strings expected lossless, %zu are\n",
            s.expected_lossless, s.expected_lossless_ok);
    ck_assert_uint_ge(s.expected_lossless, 500);
    ck_assert_uint_eq(s.expected_lossless_ok, s.expected_lossless);
    golden_free(&g);
}
END_TEST

START_TEST(test_golden_synthetic) {
    golden g;
    golden_load("tokenizer_golden_spm.txt", &g);
    ck_assert_uint_eq(g.n_v, (size_t)g.n_vocab);
    synth sy = {NULL, "llama", g.vtext, g.vscore, g.vtype, g.n_v, g.n_v, g.n_v, 1, -1};
    gbuf f = synth_gguf(&sy);
    slim_gguf *gg;
    slim_vocab *v;
    ck_assert_int_eq(slim_gguf_open_memory(f.p, f.n, &gg), SLIM_OK);
    ck_assert_msg(slim_vocab_from_gguf(gg, &v) == SLIM_OK, "%s", slim_last_error());
    size_t n_eog = 0;
    for (int32_t t = 0; t < slim_vocab_size(v); t++)
        n_eog += slim_vocab_is_eog(v, t);
    ck_assert_uint_eq(n_eog, g.eog.n);
    for (size_t i = 0; i < g.eog.n; i++)
        ck_assert(slim_vocab_is_eog(v, g.eog.p[i]));
    stats s = run_golden(v, &g);
    fprintf(stderr,
            "tokenizer: synthetic llama-2-style golden: %zu strings x 2 flag settings, %zu id "
            "mismatches, %zu detokenize mismatches, %zu round trips (%zu special + %zu plain), %zu "
            "failed\n",
            s.strings, s.id_mismatch, s.det_mismatch, s.lossless + s.lossless_plain, s.lossless,
            s.lossless_plain, s.roundtrip_fail);
    ck_assert_uint_ge(s.strings, 300);
    ck_assert_uint_eq(s.id_mismatch, 0);
    ck_assert_uint_eq(s.det_mismatch, 0);
    ck_assert_uint_eq(s.roundtrip_fail, 0);
    ck_assert_uint_gt(s.lossless, 100);

    /* the space prefix: "Hello" and " Hello" differ; detokenize drops one leading space */
    ids a = tok(v, "Hello", 5, 0), b = tok(v, " Hello", 6, 0);
    ck_assert(!ids_eq(a, b));
    bytes d = detok(v, b.p, b.n, 0);
    ck_assert(bytes_eq(d, " Hello", 6));
    free(a.p);
    free(b.p);
    free(d.p);
    slim_vocab_free(v);
    slim_gguf_close(gg);
    free(f.p);
    golden_free(&g);
}
END_TEST

/* The synthetic vocabulary named like Phi-3: llama.cpp strips the whitespace
 * after special tokens there (RSTRIP, set by model name). */
START_TEST(test_golden_phi3) {
    golden voc, g;
    golden_load("tokenizer_golden_spm.txt", &voc);
    golden_load("tokenizer_golden_phi3.txt", &g);
    ck_assert_uint_eq(voc.n_v, (size_t)g.n_vocab);
    ck_assert_msg(strstr(g.name, "Phi-3") != NULL, "name '%s'", g.name);
    synth sy = {g.name,  "llama", voc.vtext, voc.vscore, voc.vtype,
                voc.n_v, voc.n_v, voc.n_v,   1,          -1};
    gbuf f = synth_gguf(&sy);
    slim_gguf *gg;
    slim_vocab *v;
    ck_assert_int_eq(slim_gguf_open_memory(f.p, f.n, &gg), SLIM_OK);
    ck_assert_msg(slim_vocab_from_gguf(gg, &v) == SLIM_OK, "%s", slim_last_error());
    stats s = run_golden(v, &g);
    fprintf(stderr,
            "tokenizer: synthetic phi-3-style golden: %zu strings x 2 flag settings, %zu id "
            "mismatches, %zu detokenize mismatches\n",
            s.strings, s.id_mismatch, s.det_mismatch);
    ck_assert_uint_ge(s.strings, 150);
    ck_assert_uint_eq(s.id_mismatch, 0);
    ck_assert_uint_eq(s.det_mismatch, 0);
    ck_assert_uint_eq(s.roundtrip_fail, 0);
    /* "<|user|>\nHi" parses as <|user|> then "Hi": the newline is gone */
    ids a = tok(v, "<|user|>\nHi", 11, SLIM_TOKENIZE_PARSE_SPECIAL);
    ids b = tok(v, "<|user|>Hi", 10, SLIM_TOKENIZE_PARSE_SPECIAL);
    ck_assert(ids_eq(a, b));
    free(a.p);
    free(b.p);
    slim_vocab_free(v);
    slim_gguf_close(gg);
    free(f.p);
    golden_free(&g);
    golden_free(&voc);
}
END_TEST

START_TEST(test_pieces) {
    NEED_GEMMA();
    char buf[64];
    size_t n;
    /* control: nothing unless rendered */
    ck_assert_int_eq(slim_vocab_token_to_piece(gemma, 2, 0, buf, sizeof buf, &n), SLIM_OK);
    ck_assert_uint_eq(n, 0);
    ck_assert_int_eq(
        slim_vocab_token_to_piece(gemma, 2, SLIM_DETOKENIZE_RENDER_SPECIAL, buf, sizeof buf, &n),
        SLIM_OK);
    ck_assert(n == 5 && !memcmp(buf, "<bos>", 5));
    /* byte token: the raw byte */
    ck_assert_int_eq(slim_vocab_token_to_piece(gemma, 248, 0, buf, sizeof buf, &n), SLIM_OK);
    ck_assert(n == 1 && buf[0] == '\n');
    /* user-defined: its text */
    ck_assert_int_eq(slim_vocab_token_to_piece(gemma, 140, 0, buf, sizeof buf, &n), SLIM_OK);
    ck_assert(n == 4 && !memcmp(buf, "    ", 4));
    /* normal: U+2581 becomes a space */
    ids t = tok(gemma, " the", 4, 0);
    ck_assert_uint_eq(t.n, 1);
    ck_assert_str_eq(slim_vocab_token_text(gemma, t.p[0]), "\xe2\x96\x81the");
    ck_assert_int_eq(slim_vocab_token_to_piece(gemma, t.p[0], 0, buf, sizeof buf, &n), SLIM_OK);
    ck_assert(n == 4 && !memcmp(buf, " the", 4));
    free(t.p);
    /* special tokens only with PARSE_SPECIAL; user-defined ones always */
    ids a = tok(gemma, "<start_of_turn>", 15, SLIM_TOKENIZE_PARSE_SPECIAL);
    ck_assert(a.n == 1 && a.p[0] == 105);
    ids b = tok(gemma, "<start_of_turn>", 15, 0);
    ck_assert_uint_gt(b.n, 1);
    ids c = tok(gemma, "a    b", 6, 0);
    ck_assert(c.n == 3 && c.p[1] == 140);
    ids e = tok(gemma, "", 0, SLIM_TOKENIZE_ADD_BOS);
    ck_assert(e.n == 1 && e.p[0] == 2);
    free(a.p);
    free(b.p);
    free(c.p);
    free(e.p);
}
END_TEST

START_TEST(test_buffers) {
    NEED_GEMMA();
    const char *text = "Hello world, this is a test.";
    size_t len = strlen(text), n = 99;
    /* size query */
    ck_assert_int_eq(slim_vocab_tokenize(gemma, text, len, SLIM_TOKENIZE_ADD_BOS, NULL, 0, &n),
                     SLIM_OK);
    size_t need = n;
    ck_assert_uint_gt(need, 2);
    /* too small: the size needed comes back */
    int32_t small[2];
    n = 0;
    ck_assert_int_eq(slim_vocab_tokenize(gemma, text, len, SLIM_TOKENIZE_ADD_BOS, small, 2, &n),
                     SLIM_ERR_BUFFER_TOO_SMALL);
    ck_assert_uint_eq(n, need);
    int32_t exact[64];
    ck_assert_int_eq(slim_vocab_tokenize(gemma, text, len, SLIM_TOKENIZE_ADD_BOS, exact, need, &n),
                     SLIM_OK);
    ck_assert_uint_eq(n, need);
    ck_assert_int_eq(exact[0], 2);
    /* bad arguments */
    ck_assert_int_eq(slim_vocab_tokenize(gemma, text, len, 0, exact, 64, NULL),
                     SLIM_ERR_INVALID_ARG);
    ck_assert_int_eq(slim_vocab_tokenize(gemma, text, len, 0, NULL, 5, &n), SLIM_ERR_INVALID_ARG);
    ck_assert_int_eq(slim_vocab_tokenize(gemma, NULL, 3, 0, exact, 64, &n), SLIM_ERR_INVALID_ARG);
    ck_assert_int_eq(slim_vocab_tokenize(gemma, text, len, 1u << 7, exact, 64, &n),
                     SLIM_ERR_INVALID_ARG);
    ck_assert_int_eq(slim_vocab_tokenize(gemma, NULL, 0, 0, NULL, 0, &n), SLIM_OK);
    ck_assert_uint_eq(n, 0);

    /* detokenize: size query, too small, exact */
    ck_assert_int_eq(slim_vocab_detokenize(gemma, exact, need, 0, NULL, 0, &n), SLIM_OK);
    ck_assert_uint_eq(n, len);
    char out[64];
    ck_assert_int_eq(slim_vocab_detokenize(gemma, exact, need, 0, out, 5, &n),
                     SLIM_ERR_BUFFER_TOO_SMALL);
    ck_assert_uint_eq(n, len);
    ck_assert_int_eq(slim_vocab_detokenize(gemma, exact, need, 0, out, len, &n), SLIM_OK);
    ck_assert(n == len && !memcmp(out, text, len));
    ck_assert_int_eq(
        slim_vocab_detokenize(gemma, exact, need, SLIM_DETOKENIZE_RENDER_SPECIAL, NULL, 0, &n),
        SLIM_OK);
    ck_assert_uint_eq(n, len + 5); /* "<bos>" */
    /* out-of-range ids */
    int32_t bad[3] = {2, 262144, 5};
    ck_assert_int_eq(slim_vocab_detokenize(gemma, bad, 3, 0, out, sizeof out, &n),
                     SLIM_ERR_INVALID_ARG);
    ck_assert_msg(strstr(slim_last_error(), "262144") && strstr(slim_last_error(), "range"),
                  "message: %s", slim_last_error());
    bad[1] = -1;
    ck_assert_int_eq(slim_vocab_detokenize(gemma, bad, 3, 0, out, sizeof out, &n),
                     SLIM_ERR_INVALID_ARG);
    ck_assert_int_eq(slim_vocab_token_to_piece(gemma, -5, 0, out, sizeof out, &n),
                     SLIM_ERR_INVALID_ARG);
    ck_assert_msg(strstr(slim_last_error(), "-5"), "message: %s", slim_last_error());
    ck_assert_int_eq(slim_vocab_token_to_piece(gemma, 262144, 0, out, sizeof out, &n),
                     SLIM_ERR_INVALID_ARG);
    ck_assert_int_eq(slim_vocab_detokenize(gemma, NULL, 2, 0, out, sizeof out, &n),
                     SLIM_ERR_INVALID_ARG);
    ck_assert_int_eq(slim_vocab_detokenize(gemma, exact, need, 4, out, sizeof out, &n),
                     SLIM_ERR_INVALID_ARG);
    /* token_to_piece: size query and too small */
    ck_assert_int_eq(slim_vocab_token_to_piece(gemma, 140, 0, NULL, 0, &n), SLIM_OK);
    ck_assert_uint_eq(n, 4);
    ck_assert_int_eq(slim_vocab_token_to_piece(gemma, 140, 0, out, 3, &n),
                     SLIM_ERR_BUFFER_TOO_SMALL);
    ck_assert_uint_eq(n, 4);
    ck_assert_int_eq(slim_vocab_token_to_piece(gemma, 140, 0, NULL, 0, NULL), SLIM_ERR_INVALID_ARG);
}
END_TEST

START_TEST(test_invalid_utf8) {
    NEED_GEMMA();
    static const char *const cases[] = {"\xff",
                                        "\xc3",
                                        "\xe2\x82",
                                        "\xf0\x9f\x98",
                                        "\x80\x80",
                                        "a\xc3 b",
                                        "\xe0 ",
                                        "\xf4\x90\x80\x80",
                                        "\xed\xa0\x80",
                                        "<eos\xff>",
                                        "\xfe\xfe\xfe\xfe\xfe",
                                        "\xc0\x80"};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t len = strlen(cases[i]);
        for (uint32_t fl = 0; fl < 4; fl++) {
            ids t = tok(gemma, cases[i], len, fl);
            ck_assert_uint_gt(t.n, 0);
            size_t skip = (fl & SLIM_TOKENIZE_ADD_BOS) ? 1 : 0;
            bytes d = detok(gemma, t.p + skip, t.n - skip,
                            fl & SLIM_TOKENIZE_PARSE_SPECIAL ? SLIM_DETOKENIZE_RENDER_SPECIAL : 0);
            for (size_t k = 0; k < t.n; k++)
                ck_assert(t.p[k] >= 0 && t.p[k] < 262144);
            if (expect_lossless((const unsigned char *)cases[i], len))
                ck_assert_msg(bytes_eq(d, cases[i], len), "round trip of invalid UTF-8 case %zu",
                              i);
            free(t.p);
            free(d.p);
        }
    }
    /* random bytes: no crash, exact round trip where expected (every byte has a token) */
    uint64_t x = 0x9e3779b97f4a7c15ull;
    unsigned char buf[200];
    for (int it = 0; it < 500; it++) {
        size_t len = 1 + (size_t)(it % 199);
        for (size_t i = 0; i < len; i++) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            buf[i] = it % 3 == 0 ? (unsigned char)"<> \n\xe2\x96\x81\xc3"[x % 9]
                                 : (unsigned char)(x >> 24);
        }
        uint32_t fl = (uint32_t)it & SLIM_TOKENIZE_PARSE_SPECIAL;
        ids t = tok(gemma, buf, len, fl);
        bytes d = detok(gemma, t.p, t.n, fl ? SLIM_DETOKENIZE_RENDER_SPECIAL : 0);
        if (expect_lossless(buf, len))
            ck_assert_msg(bytes_eq(d, buf, len), "round trip of random bytes #%d", it);
        free(t.p);
        free(d.p);
    }
}
END_TEST

START_TEST(test_speed) {
    NEED_GEMMA();
    static const char *const parts[] = {
        "The quick brown fox jumps over the lazy dog. ",
        "int main(void) {\n    for (int i = 0; i < 10; ++i) printf(\"%d\\n\", i);\n}\n",
        "\xe4\xbd\xa0\xe5\xa5\xbd\xef\xbc\x8c\xe4\xb8\x96\xe7\x95\x8c\xef\xbc\x81 ",
        "Caf\xc3\xa9 cr\xc3\xa8me br\xc3\xbbl\xc3\xa9"
        "e, na\xc3\xafve r\xc3\xa9sum\xc3\xa9.\n\n",
        "\xf0\x9f\x98\x80\xf0\x9f\x91\x8d\xf0\x9f\x8f\xbd  <start_of_turn>user\n",
        "antidisestablishmentarianism 1234567890 ",
    };
    size_t cap = 100 * 1024, len = 0;
    char *text = malloc(cap + 256);
    for (int i = 0; len < cap; i++) {
        const char *p = parts[i % 6];
        memcpy(text + len, p, strlen(p));
        len += strlen(p);
    }
    double t0 = now_s();
    ids t = tok(gemma, text, len, SLIM_TOKENIZE_ADD_BOS | SLIM_TOKENIZE_PARSE_SPECIAL);
    double dt = now_s() - t0; /* two passes: the size query and the real one */
    fprintf(stderr, "tokenizer: %zu bytes -> %zu tokens: %.1f ms for two calls\n", len, t.n,
            dt * 1e3);
    ck_assert_msg(dt < 1.0, "tokenizing %zu bytes took %.3f s", len, dt);
    free(t.p);
    /* pathological: one long run of a single character, and of spaces */
    memset(text, 'a', cap);
    t0 = now_s();
    t = tok(gemma, text, cap, 0);
    double dt2 = now_s() - t0;
    free(t.p);
    memset(text, ' ', cap);
    t0 = now_s();
    t = tok(gemma, text, cap, 0);
    double dt3 = now_s() - t0;
    fprintf(stderr, "tokenizer: 100 KiB of 'a': %.1f ms, of spaces: %.1f ms (two calls each)\n",
            dt2 * 1e3, dt3 * 1e3);
    ck_assert(dt2 < 2.0 && dt3 < 2.0);
    free(t.p);
    free(text);
}
END_TEST

/* a tiny vocabulary for the malformed-metadata checks */
static const char *const tiny_text[] = {"<unk>", "<s>", "</s>", "a", "b", "ab"};
static const float tiny_score[] = {0, 0, 0, -1, -2, -0.5f};
static const int32_t tiny_type[] = {2, 3, 3, 1, 1, 1};

static slim_status load_synth(synth *s, slim_vocab **v) {
    gbuf f = synth_gguf(s);
    slim_gguf *g;
    slim_status st = slim_gguf_open_memory(f.p, f.n, &g);
    ck_assert_msg(st == SLIM_OK, "gguf: %s", slim_last_error());
    st = slim_vocab_from_gguf(g, v);
    if (st == SLIM_OK) {
        /* exercise it while the mapping lives */
        ids t = tok(*v, "abab b", 6, SLIM_TOKENIZE_ADD_BOS);
        ck_assert_uint_ge(t.n, 3);
        free(t.p);
        slim_vocab_free(*v);
        *v = NULL;
    }
    slim_gguf_close(g);
    free(f.p);
    return st;
}

START_TEST(test_errors) {
    bytes tb[8];
    for (int i = 0; i < 6; i++)
        tb[i] = (bytes){(unsigned char *)tiny_text[i], strlen(tiny_text[i])};
    slim_vocab *v = NULL;
    synth ok = {NULL, "llama", tb, tiny_score, tiny_type, 6, 6, 6, 1, 0};
    ck_assert_msg(load_synth(&ok, &v) == SLIM_OK, "%s", slim_last_error());

    synth s = ok;
    s.model = "bert";
    ck_assert_int_eq(load_synth(&s, &v), SLIM_ERR_UNSUPPORTED);
    ck_assert_msg(strstr(slim_last_error(), "bert"), "message: %s", slim_last_error());
    s.model = "gpt2"; /* BPE needs its merges */
    ck_assert_int_eq(load_synth(&s, &v), SLIM_ERR_FORMAT);
    ck_assert_msg(strstr(slim_last_error(), "merges"), "message: %s", slim_last_error());
    ck_assert_ptr_null(v);
    s = ok;
    s.model = NULL;
    ck_assert_int_eq(load_synth(&s, &v), SLIM_ERR_FORMAT);
    ck_assert_msg(strstr(slim_last_error(), "tokenizer.ggml.model"), "%s", slim_last_error());
    s = ok;
    s.n_score = 5;
    ck_assert_int_eq(load_synth(&s, &v), SLIM_ERR_FORMAT);
    ck_assert_msg(strstr(slim_last_error(), "scores"), "message: %s", slim_last_error());
    s = ok;
    s.n_type = 4;
    ck_assert_int_eq(load_synth(&s, &v), SLIM_ERR_FORMAT);
    ck_assert_msg(strstr(slim_last_error(), "token_type"), "message: %s", slim_last_error());
    s = ok;
    s.bos = 6;
    ck_assert_int_eq(load_synth(&s, &v), SLIM_ERR_FORMAT);
    ck_assert_msg(strstr(slim_last_error(), "bos_token_id"), "message: %s", slim_last_error());
    int32_t bad_type[6] = {2, 3, 3, 1, 9, 1};
    s = ok;
    s.type = bad_type;
    ck_assert_int_eq(load_synth(&s, &v), SLIM_ERR_FORMAT);
    ck_assert_msg(strstr(slim_last_error(), "token_type[4]"), "message: %s", slim_last_error());
    bytes dup[6];
    memcpy(dup, tb, sizeof dup);
    dup[4] = dup[3];
    s = ok;
    s.text = dup;
    ck_assert_int_eq(load_synth(&s, &v), SLIM_ERR_FORMAT);
    ck_assert_msg(strstr(slim_last_error(), "duplicate"), "message: %s", slim_last_error());
    /* an empty token text is kept under a placeholder, as llama.cpp does */
    bytes emp[6];
    memcpy(emp, tb, sizeof emp);
    emp[4] = (bytes){(unsigned char *)"", 0};
    s = ok;
    s.text = emp;
    ck_assert_int_eq(load_synth(&s, &v), SLIM_OK);

    ck_assert_int_eq(slim_vocab_from_gguf(NULL, &v), SLIM_ERR_INVALID_ARG);
    slim_vocab_free(NULL);
}
END_TEST

/* ---- byte-level BPE: SmolLM2's vocabulary --------------------------------- */

static slim_gguf *smol_gguf;
static slim_vocab *smol;
static double smol_load_s;

static void smol_setup(void) {
    const char *path = test_model_path_smollm2();
    if (slim_gguf_open(path, true, &smol_gguf)) {
        fprintf(stderr, "tokenizer: cannot open %s: %s\n", path, slim_last_error());
        return;
    }
    double t0 = now_s();
    if (slim_vocab_from_gguf(smol_gguf, &smol))
        fprintf(stderr, "tokenizer: smollm2 vocab: %s\n", slim_last_error());
    smol_load_s = now_s() - t0;
}

static void smol_teardown(void) {
    slim_vocab_free(smol);
    slim_gguf_close(smol_gguf);
    smol = NULL;
    smol_gguf = NULL;
}

#define NEED_SMOL() ck_assert_msg(smol != NULL, "model %s did not load", test_model_path_smollm2())

/* Strict UTF-8 (no overlong forms, surrogates or code points past U+10FFFF):
 * what byte-level BPE gives back byte for byte. */
static bool valid_utf8(const unsigned char *t, size_t n) {
    for (size_t i = 0; i < n;) {
        unsigned c = t[i];
        size_t len = c < 0x80 ? 1 : c < 0xc2 ? 0 : c < 0xe0 ? 2 : c < 0xf0 ? 3 : c < 0xf5 ? 4 : 0;
        if (len == 0 || i + len > n) return false;
        uint32_t cp = len == 1 ? c : c & (0x7f >> len);
        for (size_t k = 1; k < len; k++) {
            if ((t[i + k] & 0xc0) != 0x80) return false;
            cp = cp << 6 | (t[i + k] & 0x3f);
        }
        if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
            (cp >= 0xd800 && cp <= 0xdfff))
            return false;
        i += len;
    }
    return true;
}

static void check_eog(const slim_vocab *v, const golden *g) {
    size_t n_eog = 0;
    for (int32_t t = 0; t < slim_vocab_size(v); t++)
        n_eog += slim_vocab_is_eog(v, t);
    ck_assert_uint_eq(n_eog, g->eog.n);
    for (size_t i = 0; i < g->eog.n; i++)
        ck_assert(slim_vocab_is_eog(v, g->eog.p[i]));
}

static void gb_kv_gstrs(gbuf *b, const char *key, const slim_gguf_kv *kv) {
    gb_key(b, key, 9);
    gb_u32(b, 8);
    gb_u64(b, kv->arr_n);
    for (uint64_t i = 0; i < kv->arr_n; i++)
        gb_str(b, kv->arr_strs[i].ptr, kv->arr_strs[i].len);
}

/* A vocabulary-only GGUF with SmolLM2's tokens, token types, merges and
 * special ids and tokenizer.ggml.pre = pre (NULL: no such key), without
 * add_bos_token / add_space_prefix: the pre-tokenizer's defaults apply.
 * merges: 0 none, 1 SmolLM2's, 2 an int32 array in their place. */
static gbuf bpe_gguf(const slim_gguf *src, const char *pre, int merges) {
    gbuf kv = {0};
    const slim_gguf_kv *toks, *types, *mg;
    ck_assert(slim_gguf_get_arr(src, "tokenizer.ggml.tokens", SLIM_GGUF_STRING, &toks));
    ck_assert(slim_gguf_get_arr(src, "tokenizer.ggml.token_type", SLIM_GGUF_INT32, &types));
    ck_assert(slim_gguf_get_arr(src, "tokenizer.ggml.merges", SLIM_GGUF_STRING, &mg));
    gb_kv_str(&kv, "general.architecture", "llama");
    gb_kv_str(&kv, "tokenizer.ggml.model", "gpt2");
    if (pre) gb_kv_str(&kv, "tokenizer.ggml.pre", pre);
    gb_kv_gstrs(&kv, "tokenizer.ggml.tokens", toks);
    gb_kv_arr(&kv, "tokenizer.ggml.token_type", 5, types->arr_data, types->arr_n);
    if (merges == 1) gb_kv_gstrs(&kv, "tokenizer.ggml.merges", mg);
    if (merges == 2) gb_kv_arr(&kv, "tokenizer.ggml.merges", 5, types->arr_data, 16);
    static const char *const keys[] = {"tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id",
                                       "tokenizer.ggml.unknown_token_id",
                                       "tokenizer.ggml.padding_token_id"};
    for (int i = 0; i < 4; i++) {
        uint32_t id;
        if (slim_gguf_get_u32(src, keys[i], &id)) gb_kv_u32(&kv, keys[i], id);
    }
    return gb_finish(&kv);
}

START_TEST(test_bpe_load) {
    NEED_SMOL();
    fprintf(stderr, "tokenizer: smollm2 vocabulary of %d (48900 merges) built in %.1f ms\n",
            slim_vocab_size(smol), smol_load_s * 1e3);
    ck_assert_int_eq(slim_vocab_size(smol), 49152);
    ck_assert_int_eq(slim_vocab_bos(smol), 1);
    ck_assert_int_eq(slim_vocab_eos(smol), 2);
    ck_assert_str_eq(slim_vocab_token_text(smol, 1), "<|im_start|>");
    ck_assert(slim_vocab_is_eog(smol, 2) && slim_vocab_is_eog(smol, 0));
    ck_assert(!slim_vocab_is_eog(smol, 1));
    ck_assert_msg(smol_load_s < 1.0, "building the vocabulary took %.3f s", smol_load_s);
}
END_TEST

/* SmolLM2 (pre-tokenizer "smollm") against llama.cpp; every golden string
 * that is valid UTF-8 must come back exactly, both ways. */
START_TEST(test_golden_smollm2) {
    NEED_SMOL();
    golden g;
    golden_load("tokenizer_golden_smollm2.txt", &g);
    ck_assert_int_eq(g.n_vocab, slim_vocab_size(smol));
    check_eog(smol, &g);
    stats s = run_golden(smol, &g);
    size_t valid = 0, valid_ok = 0;
    for (size_t i = 0; i < g.n_cases; i++) {
        const gcase *c = &g.cases[i];
        if (!valid_utf8(c->text.p, c->text.n)) continue;
        valid++;
        ids a = tok(smol, c->text.p, c->text.n, 0);
        ids p = tok(smol, c->text.p, c->text.n, SLIM_TOKENIZE_PARSE_SPECIAL);
        bytes da = detok(smol, a.p, a.n, 0),
              dp = detok(smol, p.p, p.n, SLIM_DETOKENIZE_RENDER_SPECIAL);
        bool ok = bytes_eq(da, c->text.p, c->text.n) && bytes_eq(dp, c->text.p, c->text.n);
        if (!ok) fprintf(stderr, "  smollm2: golden string %zu does not come back\n", i);
        valid_ok += ok;
        free(a.p);
        free(p.p);
        free(da.p);
        free(dp.p);
    }
    fprintf(stderr,
            "tokenizer: smollm2 golden: %zu strings x 2 flag settings, %zu id mismatches, %zu "
            "detokenize mismatches, %zu round trips (%zu special + %zu plain), %zu failed; %zu "
            "valid UTF-8, %zu come back\n",
            s.strings, s.id_mismatch, s.det_mismatch, s.lossless + s.lossless_plain, s.lossless,
            s.lossless_plain, s.roundtrip_fail, valid, valid_ok);
    ck_assert_uint_ge(s.strings, 300);
    ck_assert_uint_eq(s.id_mismatch, 0);
    ck_assert_uint_eq(s.det_mismatch, 0);
    ck_assert_uint_eq(s.roundtrip_fail, 0);
    ck_assert_uint_ge(valid, 600);
    ck_assert_uint_eq(valid_ok, valid);
    golden_free(&g);
}
END_TEST

/* Each other pre-tokenizer on SmolLM2's vocabulary, against llama.cpp. */
START_TEST(test_golden_bpe_pre) {
    NEED_SMOL();
    static const char *const pres[] = {"gpt-2",  "llama-bpe", "dbrx",   "qwen2",
                                       "tekken", "gpt-4o",    "default"};
    const char *pre = pres[_i];
    char name[128];
    snprintf(name, sizeof name, "tokenizer_golden_bpe_%s.txt", pre);
    golden g;
    golden_load(name, &g);
    ck_assert_str_eq(g.pre, pre);
    gbuf f = bpe_gguf(smol_gguf, pre, 1);
    slim_gguf *gg;
    slim_vocab *v;
    ck_assert_int_eq(slim_gguf_open_memory(f.p, f.n, &gg), SLIM_OK);
    ck_assert_msg(slim_vocab_from_gguf(gg, &v) == SLIM_OK, "%s", slim_last_error());
    ck_assert_int_eq(g.n_vocab, slim_vocab_size(v));
    check_eog(v, &g);
    stats s = run_golden(v, &g);
    fprintf(stderr,
            "tokenizer: bpe pre-tokenizer %s golden: %zu strings x 2 flag settings, %zu id "
            "mismatches, %zu detokenize mismatches, %zu round trips, %zu failed\n",
            pre, s.strings, s.id_mismatch, s.det_mismatch, s.lossless + s.lossless_plain,
            s.roundtrip_fail);
    ck_assert_uint_ge(s.strings, 100);
    ck_assert_uint_eq(s.id_mismatch, 0);
    ck_assert_uint_eq(s.det_mismatch, 0);
    ck_assert_uint_eq(s.roundtrip_fail, 0);
    slim_vocab_free(v);
    slim_gguf_close(gg);
    free(f.p);
    golden_free(&g);
}
END_TEST

START_TEST(test_bpe_pieces) {
    NEED_SMOL();
    char buf[64];
    size_t n;
    /* llama.cpp's ids for "don't I'LL": don 't  I ' LL */
    ids t = tok(smol, "don't I'LL", 10, SLIM_TOKENIZE_ADD_BOS);
    const int32_t want[] = {12420, 982, 339, 23, 16421};
    ck_assert(ids_eq(t, (ids){(int32_t *)want, 5}));
    free(t.p);
    /* Ġ is a space */
    t = tok(smol, " the", 4, 0);
    ck_assert_uint_eq(t.n, 1);
    ck_assert_str_eq(slim_vocab_token_text(smol, t.p[0]), "\xc4\xa0the");
    ck_assert_int_eq(slim_vocab_token_to_piece(smol, t.p[0], 0, buf, sizeof buf, &n), SLIM_OK);
    ck_assert(n == 4 && !memcmp(buf, " the", 4));
    free(t.p);
    /* special tokens: parsed only with PARSE_SPECIAL, rendered only with RENDER_SPECIAL */
    t = tok(smol, "<|im_start|>", 12, SLIM_TOKENIZE_PARSE_SPECIAL);
    ck_assert(t.n == 1 && t.p[0] == 1);
    ck_assert_int_eq(slim_vocab_token_to_piece(smol, 1, 0, buf, sizeof buf, &n), SLIM_OK);
    ck_assert_uint_eq(n, 0);
    ck_assert_int_eq(
        slim_vocab_token_to_piece(smol, 1, SLIM_DETOKENIZE_RENDER_SPECIAL, buf, sizeof buf, &n),
        SLIM_OK);
    ck_assert(n == 12 && !memcmp(buf, "<|im_start|>", 12));
    free(t.p);
    t = tok(smol, "<|im_start|>", 12, 0);
    ck_assert_uint_gt(t.n, 1);
    free(t.p);
    /* no BOS for SmolLM2 (add_bos_token false); an invalid byte is U+FFFD */
    t = tok(smol, "", 0, SLIM_TOKENIZE_ADD_BOS);
    ck_assert_uint_eq(t.n, 0);
    free(t.p);
    t = tok(smol, "\xff", 1, 0);
    ck_assert_uint_eq(t.n, 1);
    bytes d = detok(smol, t.p, t.n, 0);
    ck_assert(bytes_eq(d, "\xef\xbf\xbd", 3));
    free(t.p);
    free(d.p);
    /* buffers: size query, too small */
    ck_assert_int_eq(slim_vocab_tokenize(smol, "Hello world", 11, 0, NULL, 0, &n), SLIM_OK);
    ck_assert_uint_eq(n, 2);
    int32_t one[1];
    ck_assert_int_eq(slim_vocab_tokenize(smol, "Hello world", 11, 0, one, 1, &n),
                     SLIM_ERR_BUFFER_TOO_SMALL);
    ck_assert_uint_eq(n, 2);
}
END_TEST

/* clean_spaces (gpt-2 and llama-bpe): the size reported is the cleaned one. */
START_TEST(test_bpe_clean_spaces) {
    NEED_SMOL();
    gbuf f = bpe_gguf(smol_gguf, "gpt-2", 1);
    slim_gguf *gg;
    slim_vocab *v;
    ck_assert_int_eq(slim_gguf_open_memory(f.p, f.n, &gg), SLIM_OK);
    ck_assert_int_eq(slim_vocab_from_gguf(gg, &v), SLIM_OK);
    const char *text = "Hello , world ! it ' s I 'm";
    ids t = tok(v, text, strlen(text), 0);
    size_t need = 0;
    ck_assert_int_eq(slim_vocab_detokenize(v, t.p, t.n, 0, NULL, 0, &need), SLIM_OK);
    const char *clean = "Hello, world! it's I'm";
    ck_assert_uint_eq(need, strlen(clean));
    char out[64];
    size_t n;
    ck_assert_int_eq(slim_vocab_detokenize(v, t.p, t.n, 0, out, 5, &n), SLIM_ERR_BUFFER_TOO_SMALL);
    ck_assert_uint_eq(n, need);
    ck_assert_int_eq(slim_vocab_detokenize(v, t.p, t.n, 0, out, need, &n), SLIM_OK);
    ck_assert(n == need && !memcmp(out, clean, n));
    char raw[64];
    size_t l = 0;
    for (size_t i = 0; i < t.n; i++) { /* the pieces themselves are not cleaned */
        size_t m;
        ck_assert_int_eq(slim_vocab_token_to_piece(v, t.p[i], 0, raw + l, sizeof raw - l, &m),
                         SLIM_OK);
        l += m;
    }
    ck_assert(l == strlen(text) && !memcmp(raw, text, l));
    free(t.p);
    slim_vocab_free(v);
    slim_gguf_close(gg);
    free(f.p);
}
END_TEST

START_TEST(test_bpe_invalid_utf8) {
    NEED_SMOL();
    static const char *const cases[] = {
        "\xff",         "\xc3",           "\xe2\x82",         "\xf0\x9f\x98",
        "\x80\x80",     "a\xc3 b",        "\xf4\x90\x80\x80", "\xf7\xbf\xbf\xbf",
        "\xed\xa0\x80", "<|im_end\xff|>", "\xc0\xaf",         "\xf8\x88\x80\x80\x80"};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        for (uint32_t fl = 0; fl < 4; fl++) {
            ids t = tok(smol, cases[i], strlen(cases[i]), fl);
            ck_assert_uint_gt(t.n, 0);
            for (size_t k = 0; k < t.n; k++)
                ck_assert(t.p[k] >= 0 && t.p[k] < 49152);
            free(t.p);
        }
    /* past U+10FFFF (llama.cpp aborts there): U+FFFD */
    ids a = tok(smol, "\xf4\x90\x80\x80", 4, 0), b = tok(smol, "\xef\xbf\xbd", 3, 0);
    ck_assert(ids_eq(a, b));
    free(a.p);
    free(b.p);
    /* random bytes: no crash, exact round trips of the valid UTF-8 ones */
    uint64_t x = 0x2545f4914f6cdd1dull;
    unsigned char buf[200];
    size_t n_valid = 0;
    static const char *const bits[] = {"a",  " ",  "'", "\n", "\xc3\xa9",     "1",         "<|",
                                       "|>", "\t", "L", "s",  "\xe4\xbd\xa0", "<|im_end|>"};
    for (int it = 0; it < 500; it++) {
        size_t len = 1 + (size_t)(it % 180);
        for (size_t i = 0; i < len;) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            if (it % 2) { /* pieces of valid UTF-8 */
                const char *piece = bits[x % 13];
                size_t bl = strlen(piece) < len - i ? strlen(piece) : len - i;
                memcpy(buf + i, piece, bl);
                i += bl;
            } else {
                buf[i++] = (unsigned char)(x >> 24);
            }
        }
        uint32_t fl = (uint32_t)it & SLIM_TOKENIZE_PARSE_SPECIAL;
        ids t = tok(smol, buf, len, fl);
        bytes d = detok(smol, t.p, t.n, fl ? SLIM_DETOKENIZE_RENDER_SPECIAL : 0);
        if (valid_utf8(buf, len)) {
            n_valid++;
            ck_assert_msg(bytes_eq(d, buf, len), "round trip of random bytes #%d", it);
        }
        free(t.p);
        free(d.p);
    }
    ck_assert_uint_gt(n_valid, 200);
}
END_TEST

START_TEST(test_bpe_speed) {
    NEED_SMOL();
    static const char *const parts[] = {
        "The quick brown fox jumps over the lazy dog. ",
        "int main(void) {\n    for (int i = 0; i < 10; ++i) printf(\"%d\\n\", i);\n}\n",
        "\xe4\xbd\xa0\xe5\xa5\xbd\xef\xbc\x8c\xe4\xb8\x96\xe7\x95\x8c\xef\xbc\x81 ",
        "Caf\xc3\xa9 cr\xc3\xa8me br\xc3\xbbl\xc3\xa9"
        "e, na\xc3\xafve r\xc3\xa9sum\xc3\xa9 don't I'LL.\n\n",
        "\xf0\x9f\x98\x80\xf0\x9f\x91\x8d\xf0\x9f\x8f\xbd  <|im_start|>user\n",
        "antidisestablishmentarianism 1234567890 ",
    };
    size_t cap = 100 * 1024, len = 0;
    char *text = malloc(cap + 256);
    for (int i = 0; len < cap; i++) {
        const char *p = parts[i % 6];
        memcpy(text + len, p, strlen(p));
        len += strlen(p);
    }
    int32_t *out = malloc((len + 16) * sizeof *out);
    size_t n = 0;
    uint32_t fl = SLIM_TOKENIZE_ADD_BOS | SLIM_TOKENIZE_PARSE_SPECIAL;
    double t0 = now_s();
    ck_assert_int_eq(slim_vocab_tokenize(smol, text, len, fl, out, len + 16, &n), SLIM_OK);
    double dt = now_s() - t0;
    fprintf(stderr, "tokenizer: smollm2: %zu bytes -> %zu tokens in %.1f ms\n", len, n, dt * 1e3);
    ck_assert_msg(dt < 0.5, "tokenizing %zu bytes took %.3f s", len, dt);
    /* pathological: one 100 KiB word, spaces, digits */
    static const char fill[] = {'a', ' ', '7', '\n'};
    for (int k = 0; k < 4; k++) {
        memset(text, fill[k], cap);
        t0 = now_s();
        ck_assert_int_eq(slim_vocab_tokenize(smol, text, cap, 0, out, len + 16, &n), SLIM_OK);
        dt = now_s() - t0;
        fprintf(stderr, "tokenizer: smollm2: 100 KiB of 0x%02x -> %zu tokens in %.1f ms\n", fill[k],
                n, dt * 1e3);
        ck_assert_msg(dt < 1.0, "100 KiB of 0x%02x took %.3f s", fill[k], dt);
    }
    free(out);
    free(text);
}
END_TEST

START_TEST(test_bpe_errors) {
    NEED_SMOL();
    slim_gguf *gg;
    slim_vocab *v = NULL;
    /* an unknown pre-tokenizer is refused by name (llama.cpp refuses it too) */
    gbuf f = bpe_gguf(smol_gguf, "no-such-pre", 1);
    ck_assert_int_eq(slim_gguf_open_memory(f.p, f.n, &gg), SLIM_OK);
    ck_assert_int_eq(slim_vocab_from_gguf(gg, &v), SLIM_ERR_UNSUPPORTED);
    ck_assert_msg(strstr(slim_last_error(), "no-such-pre"), "message: %s", slim_last_error());
    ck_assert_ptr_null(v);
    slim_gguf_close(gg);
    free(f.p);
    /* merges missing, or not strings */
    for (int m = 0; m <= 2; m += 2) {
        f = bpe_gguf(smol_gguf, "smollm", m);
        ck_assert_int_eq(slim_gguf_open_memory(f.p, f.n, &gg), SLIM_OK);
        ck_assert_int_eq(slim_vocab_from_gguf(gg, &v), SLIM_ERR_FORMAT);
        ck_assert_msg(strstr(slim_last_error(), "merges"), "message: %s", slim_last_error());
        slim_gguf_close(gg);
        free(f.p);
    }
    /* no tokenizer.ggml.pre: llama.cpp's "default" */
    gbuf fd = bpe_gguf(smol_gguf, "default", 1), fn = bpe_gguf(smol_gguf, NULL, 1);
    slim_gguf *gd, *gn;
    slim_vocab *vd, *vn;
    ck_assert_int_eq(slim_gguf_open_memory(fd.p, fd.n, &gd), SLIM_OK);
    ck_assert_int_eq(slim_gguf_open_memory(fn.p, fn.n, &gn), SLIM_OK);
    ck_assert_int_eq(slim_vocab_from_gguf(gd, &vd), SLIM_OK);
    ck_assert_int_eq(slim_vocab_from_gguf(gn, &vn), SLIM_OK);
    static const char *const texts[] = {"a+b=12345 don't", "Hello, world!!", "x <= y ~ z|w"};
    for (int i = 0; i < 3; i++) {
        ids a = tok(vd, texts[i], strlen(texts[i]), 0), b = tok(vn, texts[i], strlen(texts[i]), 0);
        ck_assert(ids_eq(a, b));
        free(a.p);
        free(b.p);
    }
    slim_vocab_free(vd);
    slim_vocab_free(vn);
    slim_gguf_close(gd);
    slim_gguf_close(gn);
    free(fd.p);
    free(fn.p);
}
END_TEST

/* ---- Unicode tables and the pre-tokenizers' splits ------------------------ */

START_TEST(test_unicode) {
    ck_assert_str_eq(slim_unicode_version, "15.1.0");
    ck_assert_int_eq(slim_unicode_flags('a'), SLIM_UC_LETTER);
    ck_assert_int_eq(slim_unicode_flags('7'), SLIM_UC_NUMBER);
    ck_assert_int_eq(slim_unicode_flags(' '), SLIM_UC_SEPARATOR | SLIM_UC_SPACE);
    ck_assert_int_eq(slim_unicode_flags('\n'), SLIM_UC_CONTROL | SLIM_UC_SPACE);
    ck_assert_int_eq(slim_unicode_flags(0x1c), SLIM_UC_CONTROL); /* not White_Space */
    ck_assert_int_eq(slim_unicode_flags(0x85), SLIM_UC_CONTROL | SLIM_UC_SPACE);
    ck_assert_int_eq(slim_unicode_flags(0x3000), SLIM_UC_SEPARATOR | SLIM_UC_SPACE);
    ck_assert_int_eq(slim_unicode_flags(0x200b), SLIM_UC_CONTROL);
    ck_assert_int_eq(slim_unicode_flags('$'), SLIM_UC_SYMBOL);
    ck_assert_int_eq(slim_unicode_flags('_'), SLIM_UC_PUNCT);
    ck_assert_int_eq(slim_unicode_flags(0x301), SLIM_UC_MARK);
    ck_assert_int_eq(slim_unicode_flags(0x661), SLIM_UC_NUMBER);
    ck_assert_int_eq(slim_unicode_flags(0x1f600), SLIM_UC_SYMBOL);
    ck_assert_int_eq(slim_unicode_flags(0x378), SLIM_UC_UNDEFINED);
    ck_assert_int_eq(slim_unicode_flags(0xd800), SLIM_UC_CONTROL);
    ck_assert_int_eq(slim_unicode_flags(0x2ebf0), SLIM_UC_LETTER); /* new in 15.1 */
    ck_assert_int_eq(slim_unicode_flags(0x10ffff), SLIM_UC_UNDEFINED);
    ck_assert_int_eq(slim_unicode_flags(0x110000), SLIM_UC_UNDEFINED);
    ck_assert_uint_eq(slim_unicode_tolower('Q'), 'q');
    ck_assert_uint_eq(slim_unicode_tolower('q'), 'q');
    ck_assert_uint_eq(slim_unicode_tolower(0x130), 'i');
    ck_assert_uint_eq(slim_unicode_tolower(0x212a), 'k');
    ck_assert_uint_eq(slim_unicode_tolower(0x1e9e), 0xdf);
    ck_assert_uint_eq(slim_unicode_tolower(0x100), 0x101);
    ck_assert_uint_eq(slim_unicode_tolower(0x101), 0x101);
    ck_assert_uint_eq(slim_unicode_tolower(0x10400), 0x10428);
    /* GPT-2's byte map is a bijection onto printable code points */
    bool seen[0x144] = {0};
    for (int b = 0; b < 256; b++) {
        uint32_t c = slim_byte_to_cp((uint8_t)b);
        ck_assert(c < 0x144 && !seen[c]);
        seen[c] = true;
        ck_assert_int_eq(slim_cp_to_byte(c), b);
    }
    ck_assert_uint_eq(slim_byte_to_cp(' '), 0x120); /* Ġ */
    ck_assert_int_eq(slim_cp_to_byte(0x20), -1);
    ck_assert_int_eq(slim_cp_to_byte(0x144), -1);
    /* lenient UTF-8, as llama.cpp */
    static const struct {
        const char *s;
        uint32_t cp;
        size_t used;
    } dec[] = {{"\xc0\xaf", 0x2f, 2},       {"\xed\xa0\x80", 0xd800, 3},
               {"\xff", 0xfffd, 1},         {"\xe2\x82", 0xfffd, 1},
               {"\x80", 0xfffd, 1},         {"\xf4\x90\x80\x80", 0x110000, 4},
               {"\xe2\x82\xac", 0x20ac, 3}, {"\xc3(", 0xfffd, 1}};
    for (size_t i = 0; i < sizeof dec / sizeof dec[0]; i++) {
        size_t used;
        uint32_t c = slim_utf8_decode((const uint8_t *)dec[i].s, strlen(dec[i].s), &used);
        ck_assert_uint_eq(c, dec[i].cp);
        ck_assert_uint_eq(used, dec[i].used);
    }
    uint8_t u[4];
    ck_assert_uint_eq(slim_utf8_encode(0x110000, u), 3);
    ck_assert(!memcmp(u, "\xef\xbf\xbd", 3));
}
END_TEST

/* Words of each pre-tokenizer, joined by '|' */
static void split_str(int kind, const char *text, char *out, size_t cap) {
    slim_pretok pt = {0};
    ck_assert_int_eq(slim_pretok_split(&pt, kind, text, strlen(text)), SLIM_OK);
    size_t o = 0, k = 0;
    for (size_t w = 0; w < pt.n_piece; w++) {
        if (w) out[o++] = '|';
        for (size_t j = 0; j < pt.piece[w]; j++, k++)
            o += slim_utf8_encode(pt.cp[k], (uint8_t *)out + o);
        ck_assert_uint_lt(o + 8, cap);
    }
    out[o] = '\0';
    slim_pretok_free(&pt);
}

START_TEST(test_pretok_splits) {
    static const struct {
        int kind;
        const char *text, *want;
    } cases[] = {
        {SLIM_PRE_GPT2, "a  b\n", "a| | b|\n"},
        {SLIM_PRE_GPT2, "don't 12ab  ", "don|'t| 12|ab|  "},
        {SLIM_PRE_SMOLLM, "don't I'LL 12", "don|'t| I|'|LL| |1|2"},
        {SLIM_PRE_LLAMA3, "don't I'LL 1234", "don|'t| I|'LL| |123|4"},
        {SLIM_PRE_LLAMA3, "(hi)\n\n  x", "(hi|)\n\n| | x"},
        {SLIM_PRE_QWEN2, "don't I'LL 1234", "don|'t| I|'LL| |1|2|3|4"},
        {SLIM_PRE_TEKKEN,
         "\xc3\x89"
         "COLE McDonald's",
         "\xc3\x89|COLE| Mc|Donald|'s"},
        {SLIM_PRE_TEKKEN, "a/b\n//x!/\n/y", "a|/b|\n|//|x|!/\n/|y"},
        {SLIM_PRE_GPT4O,
         "\xc3\x89"
         "COLE McDonald's 12345",
         "\xc3\x89|COLE| Mc|Donald's| |123|45"},
        {SLIM_PRE_DEFAULT, "a+b=12345", "a|+|b|=|123|45"},
        {SLIM_PRE_DEFAULT, "", ""},
    };
    char got[256];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        split_str(cases[i].kind, cases[i].text, got, sizeof got);
        ck_assert_msg(!strcmp(got, cases[i].want), "case %zu: '%s', want '%s'", i, got,
                      cases[i].want);
    }
}
END_TEST

Suite *suite_tokenizer(void) {
    Suite *s = suite_create("tokenizer");
    TCase *tc = tcase_create("gemma");
    tcase_add_unchecked_fixture(tc, gemma_setup, gemma_teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_load);
    tcase_add_test(tc, test_golden_gemma);
    tcase_add_test(tc, test_pieces);
    tcase_add_test(tc, test_buffers);
    tcase_add_test(tc, test_invalid_utf8);
    tcase_add_test(tc, test_speed);
    suite_add_tcase(s, tc);
    TCase *syn = tcase_create("synthetic");
    tcase_set_timeout(syn, 120);
    tcase_add_test(syn, test_golden_synthetic);
    tcase_add_test(syn, test_golden_phi3);
    tcase_add_test(syn, test_errors);
    tcase_add_test(syn, test_unicode);
    tcase_add_test(syn, test_pretok_splits);
    suite_add_tcase(s, syn);
    TCase *bpe = tcase_create("bpe");
    tcase_add_unchecked_fixture(bpe, smol_setup, smol_teardown);
    tcase_set_timeout(bpe, 120);
    tcase_add_test(bpe, test_bpe_load);
    tcase_add_test(bpe, test_golden_smollm2);
    tcase_add_loop_test(bpe, test_golden_bpe_pre, 0, 7);
    tcase_add_test(bpe, test_bpe_pieces);
    tcase_add_test(bpe, test_bpe_clean_spaces);
    tcase_add_test(bpe, test_bpe_invalid_utf8);
    tcase_add_test(bpe, test_bpe_speed);
    tcase_add_test(bpe, test_bpe_errors);
    suite_add_tcase(s, bpe);
    return s;
}
