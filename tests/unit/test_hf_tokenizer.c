/* Hugging Face tokenizer.json directories against the `tokenizers` package:
 * golden ids from tools/golden/gen_hf_tokenizer.py (tests/data/hf_tok_<family>.txt)
 * on the directories tools/fetch_hf_tokenizers.sh makes with transformers'
 * converters (models/hf-tok/<family>, SLIM_TEST_HF_TOK_DIR):
 *   gemma3, smollm2 (from the models' GGUFs), llama3, mistral-v3, nemo, phi4.
 * Each string: the ids of the four flag combinations and both decodings equal
 * the package's; the pieces of byte-level vocabs put the text back together.
 * Then what the directory adds (EOS ids, chat template) and malformed input:
 * the real file truncated at many offsets, keys and values mutated. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "suites.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/vocab_internal.h"

static const char *hf_dir(const char *family, char *buf, size_t cap) {
    const char *d = getenv("SLIM_TEST_HF_TOK_DIR");
    snprintf(buf, cap, "%s/%s", d && *d ? d : "models/hf-tok", family);
    return buf;
}

typedef struct hbytes {
    unsigned char *p;
    size_t n;
} hbytes;

static hbytes h_unhex(const char *s, size_t n) {
    hbytes b = {malloc(n / 2 + 1), n / 2};
    for (size_t i = 0; i < b.n; i++) {
        unsigned x;
        sscanf(s + 2 * i, "%2x", &x);
        b.p[i] = (unsigned char)x;
    }
    return b;
}

typedef struct hids {
    int32_t *p;
    size_t n;
} hids;

static hids h_ids(const char *s, size_t n) {
    hids r = {malloc((n + 1) * sizeof(int32_t)), 0};
    for (size_t i = 0; i < n;) {
        char *end;
        r.p[r.n++] = (int32_t)strtol(s + i, &end, 10);
        i = (size_t)(end - s) + 1;
    }
    return r;
}

static hids h_tok(const slim_vocab *v, const void *text, size_t len, uint32_t flags) {
    size_t n = 0;
    ck_assert_int_eq(slim_vocab_tokenize(v, text, len, flags, NULL, 0, &n), SLIM_OK);
    hids r = {malloc((n + 1) * sizeof(int32_t)), n};
    size_t n2 = 0;
    ck_assert_int_eq(slim_vocab_tokenize(v, text, len, flags, r.p, n, &n2), SLIM_OK);
    ck_assert_uint_eq(n, n2);
    return r;
}

static hbytes h_detok(const slim_vocab *v, const hids *t, uint32_t flags) {
    size_t need = 0;
    ck_assert_int_eq(slim_vocab_detokenize(v, t->p, t->n, flags, NULL, 0, &need), SLIM_OK);
    hbytes b = {malloc(need + 1), 0};
    ck_assert_int_eq(slim_vocab_detokenize(v, t->p, t->n, flags, (char *)b.p, need, &b.n), SLIM_OK);
    ck_assert_uint_eq(b.n, need);
    return b;
}

static bool ids_eq(const hids *x, const hids *y) {
    return x->n == y->n && (x->n == 0 || !memcmp(x->p, y->p, x->n * sizeof(int32_t)));
}

static void show(const char *what, const hbytes *text, const hids *got, const hids *want) {
    fprintf(stderr, "  %s mismatch on \"", what);
    for (size_t i = 0; i < text->n && i < 80; i++)
        fprintf(stderr, text->p[i] >= 0x20 && text->p[i] < 0x7f ? "%c" : "\\x%02x", text->p[i]);
    fprintf(stderr, "\"\n    slim:");
    for (size_t i = 0; got && i < got->n && i < 24; i++)
        fprintf(stderr, " %d", got->p[i]);
    fprintf(stderr, "\n    want:");
    for (size_t i = 0; want && i < want->n && i < 24; i++)
        fprintf(stderr, " %d", want->p[i]);
    fprintf(stderr, "\n");
}

/* Run tests/data/hf_tok_<family>.txt; pieces: byte-level, so the pieces of
 * the ids without BOS are the text's bytes. */
static void check_family(const char *family, bool pieces) {
    char path[512], dir[512];
    const char *data = getenv("SLIM_TEST_DATA");
    snprintf(path, sizeof path, "%s/hf_tok_%s.txt", data && *data ? data : "tests/data", family);
    FILE *f = fopen(path, "r");
    ck_assert_msg(f != NULL, "cannot open %s (tools/golden/gen_hf_tokenizer.py golden)", path);
    slim_vocab *v = NULL;
    hf_dir(family, dir, sizeof dir);
    ck_assert_msg(!slim_vocab_from_hf_dir(dir, &v),
                  "%s: %s (make hf-tokenizers: tools/fetch_hf_tokenizers.sh)", dir,
                  slim_last_error());
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    int n = 0, bad = 0, dec_bad = 0, piece_bad = 0, lists = 0;
    while ((len = getline(&line, &cap, f)) > 0) {
        if (line[len - 1] == '\n') line[--len] = '\0';
        char *fld[9];
        size_t fl[9];
        int nf = 0;
        for (char *p = line; nf < 9;) {
            char *t = strchr(p, '\t');
            fld[nf] = p;
            fl[nf++] = t ? (size_t)(t - p) : strlen(p);
            if (!t) break;
            *t = '\0';
            p = t + 1;
        }
        if (!strcmp(fld[0], "family") && nf >= 3) {
            ck_assert_int_eq(slim_vocab_size(v), atoi(fld[2]));
            continue;
        }
        if (strcmp(fld[0], "T") || nf < 8) continue;
        n++;
        hbytes text = h_unhex(fld[1], fl[1]);
        hids want[4];
        for (int k = 0; k < 4; k++) { /* A, P, AT ("=": A), T0 ("=": P) */
            bool same = fl[2 + k] == 1 && fld[2 + k][0] == '=';
            want[k] = same ? h_ids(fld[k], fl[k]) : h_ids(fld[2 + k], fl[2 + k]);
        }
        static const uint32_t flags[4] = {SLIM_TOKENIZE_ADD_BOS | SLIM_TOKENIZE_PARSE_SPECIAL,
                                          SLIM_TOKENIZE_PARSE_SPECIAL, SLIM_TOKENIZE_ADD_BOS, 0};
        static const char *const names[4] = {"add+parse", "parse", "add", "none"};
        hids got[4];
        for (int k = 0; k < 4; k++) {
            got[k] = h_tok(v, text.p, text.n, flags[k]);
            lists++;
            if (!ids_eq(&got[k], &want[k])) {
                if (bad < 10) show(names[k], &text, &got[k], &want[k]);
                bad++;
            }
        }
        /* decode(A) with and without the special tokens, as the package decodes */
        for (int k = 0; k < 2; k++) {
            const char *d = fld[6 + k];
            hbytes exp =
                fl[6 + k] == 1 && d[0] == '=' ? h_unhex(fld[1], fl[1]) : h_unhex(d, fl[6 + k]);
            hbytes back = h_detok(v, &want[0], k ? 0 : SLIM_DETOKENIZE_RENDER_SPECIAL);
            if (back.n != exp.n || (exp.n && memcmp(back.p, exp.p, exp.n))) {
                if (dec_bad < 5) {
                    show(k ? "decode" : "decode (special)", &text, &want[0], NULL);
                    fprintf(stderr, "    slim: \"%.*s\"\n    want: \"%.*s\"\n", (int)back.n, back.p,
                            (int)exp.n, exp.p);
                }
                dec_bad++;
            }
            free(exp.p);
            free(back.p);
        }
        /* byte-level: the pieces of P, rendered, are the text's bytes */
        bool valid = true; /* (invalid UTF-8 became U+FFFD: compare with the decoding) */
        hbytes exp = h_unhex(fld[6], fl[6]);
        if (fl[6] != 1 || fld[6][0] != '=') valid = false;
        free(exp.p);
        if (pieces && valid) {
            hbytes cat = {malloc(text.n * 2 + 16), 0};
            for (size_t i = 0; i < want[1].n; i++) {
                char buf[256];
                size_t pn = 0;
                ck_assert_int_eq(slim_vocab_token_to_piece(v, want[1].p[i],
                                                           SLIM_DETOKENIZE_RENDER_SPECIAL, buf,
                                                           sizeof buf, &pn),
                                 SLIM_OK);
                if (cat.n + pn <= text.n * 2 + 16) memcpy(cat.p + cat.n, buf, pn);
                cat.n += pn;
            }
            if (cat.n != text.n || (text.n && memcmp(cat.p, text.p, text.n))) {
                if (piece_bad < 5) show("pieces", &text, &want[1], NULL);
                piece_bad++;
            }
            free(cat.p);
        }
        for (int k = 0; k < 4; k++) {
            free(want[k].p);
            free(got[k].p);
        }
        free(text.p);
    }
    free(line);
    fclose(f);
    fprintf(stderr,
            "hf_tokenizer: %s: %d strings, %d id lists, %d mismatches, %d decode mismatches, %d "
            "piece mismatches\n",
            family, n, lists, bad, dec_bad, piece_bad);
    slim_vocab_free(v);
    ck_assert_int_ge(n, 300);
    ck_assert_int_eq(bad, 0);
    ck_assert_int_eq(dec_bad, 0);
    ck_assert_int_eq(piece_bad, 0);
}

START_TEST(test_gemma3) { check_family("gemma3", false); }
END_TEST
START_TEST(test_smollm2) { check_family("smollm2", true); }
END_TEST
START_TEST(test_llama3) { check_family("llama3", true); }
END_TEST
START_TEST(test_mistral_v3) { check_family("mistral-v3", false); }
END_TEST
START_TEST(test_nemo) { check_family("nemo", true); }
END_TEST
START_TEST(test_phi4) { check_family("phi4", true); }
END_TEST

static slim_vocab *load(const char *family) {
    char dir[512];
    slim_vocab *v = NULL;
    hf_dir(family, dir, sizeof dir);
    ck_assert_msg(!slim_vocab_from_hf_dir(dir, &v), "%s: %s", dir, slim_last_error());
    return v;
}

/* What the directory's other files say: EOS / end-of-generation ids, BOS, the
 * chat template. */
START_TEST(test_directory) {
    slim_vocab *v = load("llama3");
    ck_assert_int_eq(slim_vocab_bos(v), 128000);
    ck_assert_int_eq(slim_vocab_eos(v), 128009); /* tokenizer_config's eos_token */
    ck_assert(slim_vocab_is_eog(v, 128001) && slim_vocab_is_eog(v, 128008) &&
              slim_vocab_is_eog(v, 128009));
    ck_assert(!slim_vocab_is_eog(v, 128000) && !slim_vocab_is_eog(v, 0));
    ck_assert_ptr_null(slim_vocab_chat_template(v));
    ck_assert_str_eq(slim_vocab_token_text(v, 128000), "<|begin_of_text|>");
    slim_vocab_free(v);

    v = load("gemma3");
    ck_assert_int_eq(slim_vocab_bos(v), 2);
    ck_assert_int_eq(slim_vocab_eos(v), 1);
    ck_assert(slim_vocab_is_eog(v, 1) && slim_vocab_is_eog(v, 106) && !slim_vocab_is_eog(v, 2));
    ck_assert_ptr_null(slim_vocab_chat_template(v)); /* "chat_template": null */
    slim_vocab_free(v);

    v = load("smollm2"); /* chat_template.jinja */
    const char *ct = slim_vocab_chat_template(v);
    ck_assert_ptr_nonnull(ct);
    ck_assert_ptr_nonnull(strstr(ct, "<|im_start|>"));
    ck_assert_int_eq(slim_vocab_eos(v), 2);
    ck_assert(slim_vocab_is_eog(v, 2));
    /* no BOS for SmolLM2: ADD_BOS adds nothing */
    int32_t ids[8];
    size_t n = 0;
    ck_assert_int_eq(slim_vocab_tokenize(v, "Hi", 2, SLIM_TOKENIZE_ADD_BOS, ids, 8, &n), SLIM_OK);
    ck_assert_uint_eq(n, 1);
    /* buffer too small: the count, and an error */
    ck_assert_int_eq(slim_vocab_tokenize(v, "Hello world", 11, 0, ids, 1, &n),
                     SLIM_ERR_BUFFER_TOO_SMALL);
    ck_assert_uint_eq(n, 2);
    char buf[4];
    int32_t two[2] = {19556, 905}; /* "Hello", " world" */
    ck_assert_int_eq(slim_vocab_detokenize(v, two, 2, 0, buf, sizeof buf, &n),
                     SLIM_ERR_BUFFER_TOO_SMALL);
    ck_assert_uint_eq(n, 11);
    slim_vocab_free(v);

    v = load("nemo");
    ct = slim_vocab_chat_template(v);
    ck_assert_ptr_nonnull(ct);
    ck_assert_ptr_nonnull(strstr(ct, "[INST]"));
    slim_vocab_free(v);
}
END_TEST

/* ---- malformed input ------------------------------------------------------------ */

static char tmpdir[256];

static void write_file(const char *name, const void *p, size_t n) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s", tmpdir, name);
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(p, 1, n, f), n);
    fclose(f);
}

static void remove_file(const char *name) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s", tmpdir, name);
    unlink(path);
}

static void make_tmpdir(void) {
    snprintf(tmpdir, sizeof tmpdir, "/tmp/slim_hf_tok_XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

static void drop_tmpdir(void) {
    remove_file("tokenizer.json");
    remove_file("tokenizer_config.json");
    remove_file("generation_config.json");
    rmdir(tmpdir);
}

/* Load tmpdir; returns the status, checking that errors have a message naming something. */
static slim_status try_load(void) {
    slim_vocab *v = NULL;
    slim_status st = slim_vocab_from_hf_dir(tmpdir, &v);
    if (st) {
        ck_assert_ptr_null(v);
        ck_assert(strlen(slim_last_error()) > 10);
    } else {
        ck_assert_ptr_nonnull(v);
        int32_t ids[64];
        size_t n;
        ck_assert_int_eq(slim_vocab_tokenize(v, "ab c", 4, SLIM_TOKENIZE_ADD_BOS, ids, 64, &n),
                         SLIM_OK);
        slim_vocab_free(v);
    }
    return st;
}

/* A small byte-level tokenizer.json the mutations start from. */
static const char SMALL[] =
    "{\"version\": \"1.0\", \"truncation\": null, \"padding\": null,\n"
    " \"added_tokens\": [{\"id\": 5, \"content\": \"<s>\", \"single_word\": false, \"lstrip\": "
    "false, \"rstrip\": false, \"normalized\": false, \"special\": true}],\n"
    " \"normalizer\": null,\n"
    " \"pre_tokenizer\": {\"type\": \"ByteLevel\", \"add_prefix_space\": false, \"trim_offsets\": "
    "true, \"use_regex\": true},\n"
    " \"post_processor\": {\"type\": \"TemplateProcessing\", \"single\": [{\"SpecialToken\": "
    "{\"id\": \"<s>\", \"type_id\": 0}}, {\"Sequence\": {\"id\": \"A\", \"type_id\": 0}}], "
    "\"pair\": [], \"special_tokens\": {\"<s>\": {\"id\": \"<s>\", \"ids\": [5], \"tokens\": "
    "[\"<s>\"]}}},\n"
    " \"decoder\": {\"type\": \"ByteLevel\", \"add_prefix_space\": true, \"trim_offsets\": true, "
    "\"use_regex\": true},\n"
    " \"model\": {\"type\": \"BPE\", \"dropout\": null, \"unk_token\": null, "
    "\"continuing_subword_prefix\": null, \"end_of_word_suffix\": null, \"fuse_unk\": false, "
    "\"byte_fallback\": false, \"ignore_merges\": false,\n"
    "  \"vocab\": {\"a\": 0, \"b\": 1, \"c\": 2, \"\\u0120\": 3, \"ab\": 4, \"<s>\": 5, "
    "\"\\u0120c\": 6},\n"
    "  \"merges\": [\"a b\", [\"\\u0120\", \"c\"]]}}\n";

static char *replace_once(const char *s, const char *from, const char *to) {
    const char *m = strstr(s, from);
    ck_assert_msg(m != NULL, "mutation '%s' not found", from);
    size_t a = (size_t)(m - s), fl = strlen(from), tl = strlen(to), n = strlen(s);
    char *r = malloc(n - fl + tl + 1);
    memcpy(r, s, a);
    memcpy(r + a, to, tl);
    memcpy(r + a + tl, m + fl, n - a - fl + 1);
    return r;
}

START_TEST(test_small_and_mutations) {
    make_tmpdir();
    write_file("tokenizer.json", SMALL, strlen(SMALL));
    slim_vocab *v = NULL;
    ck_assert_int_eq(slim_vocab_from_hf_dir(tmpdir, &v), SLIM_OK);
    int32_t ids[16];
    size_t n = 0;
    ck_assert_int_eq(slim_vocab_tokenize(v, "ab c<s>", 7,
                                         SLIM_TOKENIZE_ADD_BOS | SLIM_TOKENIZE_PARSE_SPECIAL, ids,
                                         16, &n),
                     SLIM_OK);
    ck_assert_uint_eq(n, 4); /* <s> ab Ġc <s> */
    ck_assert(ids[0] == 5 && ids[1] == 4 && ids[2] == 6 && ids[3] == 5);
    ck_assert_int_eq(slim_vocab_size(v), 7);
    ck_assert_int_eq(slim_vocab_bos(v), 5); /* the template's token */
    slim_vocab_free(v);

    static const struct {
        const char *from, *to;
        slim_status want;
    } muts[] = {
        {"\"model\"", "\"modelx\"", SLIM_ERR_FORMAT},
        {"\"vocab\"", "\"vocabx\"", SLIM_ERR_FORMAT},
        {"\"merges\"", "\"mergex\"", SLIM_ERR_FORMAT},
        {"\"type\": \"BPE\"", "\"type\": \"Unigram\"", SLIM_ERR_UNSUPPORTED},
        {"\"type\": \"BPE\"", "\"type\": \"WordPiece\"", SLIM_ERR_UNSUPPORTED},
        {"\"ab\": 4", "\"ab\": -4", SLIM_ERR_FORMAT},
        {"\"ab\": 4", "\"ab\": 1", SLIM_ERR_FORMAT},     /* id given twice */
        {"\"ab\": 4", "\"ab\": \"4\"", SLIM_ERR_FORMAT}, /* wrong type */
        {"\"ab\": 4", "\"ab\": 4.5", SLIM_ERR_FORMAT},
        {"\"a b\"", "\"a x\"", SLIM_ERR_FORMAT},  /* merge of an unknown token */
        {"\"a b\"", "\"b c\"", SLIM_ERR_FORMAT},  /* merged token unknown */
        {"\"a b\"", "\"a  b\"", SLIM_ERR_FORMAT}, /* not two tokens */
        {"\"a b\"", "\"ab\"", SLIM_ERR_FORMAT},
        {"\"a b\"", "7", SLIM_ERR_FORMAT},
        {"[\"\\u0120\", \"c\"]", "[\"\\u0120\"]", SLIM_ERR_FORMAT},
        {"\"id\": 5, \"content\"", "\"id\": 6, \"content\"", SLIM_ERR_FORMAT}, /* id of another */
        {"\"id\": 5, \"content\"", "\"id\": \"5\", \"content\"", SLIM_ERR_FORMAT},
        {"\"content\": \"<s>\"", "\"content\": \"\"", SLIM_ERR_FORMAT},
        {"\"special\": true", "\"special\": 1", SLIM_ERR_FORMAT},
        {"\"ids\": [5]", "\"ids\": [99]", SLIM_ERR_FORMAT},
        {"\"ids\": [5]", "\"ids\": 5", SLIM_ERR_FORMAT},
        {"{\"Sequence\": {\"id\": \"A\", \"type_id\": 0}}", "{\"Foo\": 1}", SLIM_ERR_FORMAT},
        {"\"type\": \"TemplateProcessing\"", "\"type\": \"BertFoo\"", SLIM_ERR_UNSUPPORTED},
        {"\"normalizer\": null", "\"normalizer\": {\"type\": \"NFKC\"}", SLIM_ERR_UNSUPPORTED},
        {"\"normalizer\": null",
         "\"normalizer\": {\"type\": \"Replace\", \"pattern\": {\"Regex\": "
         "\" +\"}, \"content\": \" \"}",
         SLIM_ERR_UNSUPPORTED},
        {"\"normalizer\": null", "\"normalizer\": 3", SLIM_ERR_FORMAT},
        /* Replaces that each lengthen a text 9 times: the fuzzer's 2 GB added token */
        {"\"normalizer\": null",
         "\"normalizer\": {\"type\": \"Sequence\", \"normalizers\": ["
         "{\"type\": \"Replace\", \"pattern\": {\"String\": \" \"}, \"content\": \"  x  x  x\"},"
         "{\"type\": \"Replace\", \"pattern\": {\"String\": \" \"}, \"content\": \"  x  x  x\"}]}",
         SLIM_ERR_UNSUPPORTED},
        {"\"normalizer\": null", /* ' ' -> U+2581 twice over: 9 times, allowed */
         "\"normalizer\": {\"type\": \"Sequence\", \"normalizers\": ["
         "{\"type\": \"Replace\", \"pattern\": {\"String\": \" \"}, \"content\": \"\u2581\"},"
         "{\"type\": \"Replace\", \"pattern\": {\"String\": \"\u2581\"}, \"content\": "
         "\"\u2581\u2581\u2581\"}]}",
         SLIM_OK},
        {"\"pre_tokenizer\": {\"type\": \"ByteLevel\"",
         "\"pre_tokenizer\": {\"type\": \"Sequence\", \"pretokenizers\": [{\"type\": \"Split\", "
         "\"pattern\": {\"Regex\": \"\\\\w+\"}, \"behavior\": \"Isolated\", \"invert\": false}, "
         "{\"type\": \"ByteLevel\"}]}, \"x\": {\"type\": \"ByteLevel\"",
         SLIM_ERR_UNSUPPORTED}, /* an unknown regex */
        {"\"pre_tokenizer\": {\"type\": \"ByteLevel\"",
         "\"pre_tokenizer\": {\"type\": \"Whitespace\"", SLIM_ERR_UNSUPPORTED},
        {"\"decoder\": {\"type\": \"ByteLevel\"", "\"decoder\": {\"type\": \"WordPiece\"",
         SLIM_ERR_UNSUPPORTED},
        {"\"dropout\": null", "\"dropout\": 0.1", SLIM_ERR_UNSUPPORTED},
        {"\"unk_token\": null", "\"unk_token\": \"<unk>\"", SLIM_ERR_FORMAT},
        {"\"continuing_subword_prefix\": null", "\"continuing_subword_prefix\": \"##\"",
         SLIM_ERR_UNSUPPORTED},
        {"\"byte_fallback\": false", "\"byte_fallback\": \"no\"", SLIM_ERR_FORMAT},
        {"{\"version\"", "[{\"version\"", SLIM_ERR_FORMAT}, /* not JSON any more */
    };
    for (size_t i = 0; i < sizeof muts / sizeof muts[0]; i++) {
        char *m = replace_once(SMALL, muts[i].from, muts[i].to);
        write_file("tokenizer.json", m, strlen(m));
        slim_status st = try_load();
        ck_assert_msg(st == muts[i].want, "mutation %zu (%s -> %s): status %d (%s), want %d", i,
                      muts[i].from, muts[i].to, st, slim_last_error(), muts[i].want);
        free(m);
    }

    /* tokenizer_config.json and generation_config.json */
    write_file("tokenizer.json", SMALL, strlen(SMALL));
    static const struct {
        const char *file, *text;
        slim_status want;
    } cfgs[] = {
        {"tokenizer_config.json", "{\"bos_token\": \"<x>\"}", SLIM_ERR_FORMAT},
        {"tokenizer_config.json", "{\"bos_token\": 5}", SLIM_ERR_FORMAT},
        {"tokenizer_config.json", "{\"add_bos_token\": \"yes\"}", SLIM_ERR_FORMAT},
        {"tokenizer_config.json", "{\"chat_template\": 7}", SLIM_ERR_FORMAT},
        {"tokenizer_config.json", "{\"eos_token\": {\"content\": \"<s>\"},", SLIM_ERR_FORMAT},
        {"tokenizer_config.json", "[]", SLIM_ERR_FORMAT},
        {"tokenizer_config.json",
         "{\"eos_token\": {\"content\": \"<s>\"}, \"add_bos_token\": false,"
         " \"chat_template\": [{\"name\": \"tool\", \"template\": \"t\"}, "
         "{\"name\": \"default\", \"template\": \"d\"}]}",
         SLIM_OK},
        {"generation_config.json", "{\"eos_token_id\": 7}", SLIM_ERR_FORMAT},
        {"generation_config.json", "{\"eos_token_id\": [1, -1]}", SLIM_ERR_FORMAT},
        {"generation_config.json", "{\"eos_token_id\": \"1\"}", SLIM_ERR_FORMAT},
        {"generation_config.json", "{\"eos_token_id\": [6, 2]", SLIM_ERR_FORMAT},
        {"generation_config.json", "{\"eos_token_id\": [6, 2]}", SLIM_OK},
    };
    for (size_t i = 0; i < sizeof cfgs / sizeof cfgs[0]; i++) {
        write_file(cfgs[i].file, cfgs[i].text, strlen(cfgs[i].text));
        slim_status st = try_load();
        ck_assert_msg(st == cfgs[i].want, "%s '%s': status %d (%s), want %d", cfgs[i].file,
                      cfgs[i].text, st, slim_last_error(), cfgs[i].want);
    }
    /* the last two: the config's flags and template, generation's EOS ids */
    ck_assert_int_eq(slim_vocab_from_hf_dir(tmpdir, &v), SLIM_OK);
    ck_assert_str_eq(slim_vocab_chat_template(v), "d");
    ck_assert_int_eq(slim_vocab_eos(v), 5);
    ck_assert(slim_vocab_is_eog(v, 5) && slim_vocab_is_eog(v, 6) && slim_vocab_is_eog(v, 2));
    ck_assert(!slim_vocab_is_eog(v, 4));
    ck_assert_int_eq(slim_vocab_tokenize(v, "ab", 2, SLIM_TOKENIZE_ADD_BOS, ids, 16, &n), SLIM_OK);
    ck_assert_uint_eq(n, 1); /* add_bos_token false replaces the template */
    slim_vocab_free(v);

    /* no tokenizer.json; a NULL directory */
    remove_file("tokenizer.json");
    ck_assert_int_eq(slim_vocab_from_hf_dir(tmpdir, &v), SLIM_ERR_IO);
    ck_assert_ptr_null(v);
    ck_assert_int_eq(slim_vocab_from_hf_dir(NULL, &v), SLIM_ERR_INVALID_ARG);
    ck_assert_int_eq(slim_vocab_from_hf_dir(tmpdir, NULL), SLIM_ERR_INVALID_ARG);
    drop_tmpdir();
}
END_TEST

/* The real SmolLM2 tokenizer.json cut at many offsets: each one a clear error. */
START_TEST(test_truncated) {
    char dir[512], path[600];
    hf_dir("smollm2", dir, sizeof dir);
    snprintf(path, sizeof path, "%s/tokenizer.json", dir);
    size_t size = 0;
    uint8_t *all = test_read_whole(path, &size);
    make_tmpdir();
    int n = 0;
    for (size_t cut = 0; cut < size; cut += 1 + size / 37, n++) {
        write_file("tokenizer.json", all, cut);
        slim_status st = try_load();
        ck_assert_msg(st == SLIM_ERR_FORMAT, "cut at %zu: status %d (%s)", cut, st,
                      slim_last_error());
    }
    /* the head and the tail, byte by byte */
    for (size_t cut = 1; cut < 40; cut++, n++) {
        write_file("tokenizer.json", all, size - cut > 0 && cut < 20 ? size - cut : cut);
        ck_assert_int_eq(try_load(), SLIM_ERR_FORMAT);
    }
    fprintf(stderr, "hf_tokenizer: %d truncations of %s, all SLIM_ERR_FORMAT\n", n, path);
    free(all);
    drop_tmpdir();
}
END_TEST

Suite *suite_hf_tokenizer(void) {
    Suite *s = suite_create("hf_tokenizer");
    TCase *tc = tcase_create("families");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_gemma3);
    tcase_add_test(tc, test_smollm2);
    tcase_add_test(tc, test_llama3);
    tcase_add_test(tc, test_mistral_v3);
    tcase_add_test(tc, test_nemo);
    tcase_add_test(tc, test_phi4);
    tcase_add_test(tc, test_directory);
    suite_add_tcase(s, tc);
    TCase *tm = tcase_create("malformed");
    tcase_set_timeout(tm, 300);
    tcase_add_test(tm, test_small_and_mutations);
    tcase_add_test(tm, test_truncated);
    suite_add_tcase(s, tm);
    return s;
}
