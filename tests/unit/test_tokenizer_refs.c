/* Real tokenizers against their own reference libraries: golden ids from
 * tools/golden/gen_vocab_refs.py (tests/data/tokenizer_ref_<name>.txt) on
 * vocab-only GGUFs that tools/fetch_tokenizers.sh builds into models/vocab/
 * (SLIM_TEST_VOCAB_DIR) from the tokenizer files of PyPI packages:
 *   llama3      Llama 3 (llama-models' tokenizer.model) vs tiktoken
 *   nemo        Mistral Nemo (mistral-common's tekken) vs mistral-common
 *   mistral-v3  Mistral 7B v0.3 (mistral-common's v3 SentencePiece model)
 *               vs mistral-common / sentencepiece
 *   phi4        Phi-4 (cl100k_base + Phi-4's added tokens) vs tiktoken
 * Each string: ids with ADD_BOS (special-token spellings as text) and with
 * PARSE_SPECIAL (where the reference has that mode) equal the reference's;
 * where llama.cpp itself differs from the reference (recorded in the file),
 * slim follows llama.cpp, and the number of such lists must stay as recorded.
 * Round trips back to the text where the tokenizer is lossless. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "format/gguf.h"
#include "suites.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/vocab_internal.h"

typedef struct rbytes {
    unsigned char *p;
    size_t n;
} rbytes;

typedef struct rids {
    int32_t *p;
    size_t n;
    bool none; /* "-" (no such mode) or "=" (same as the reference) */
} rids;

static const char *ref_data_path(const char *name, char *buf, size_t cap) {
    const char *dir = getenv("SLIM_TEST_DATA");
    snprintf(buf, cap, "%s/%s", dir && *dir ? dir : "tests/data", name);
    return buf;
}

static const char *vocab_path(const char *file, char *buf, size_t cap) {
    const char *dir = getenv("SLIM_TEST_VOCAB_DIR");
    snprintf(buf, cap, "%s/%s", dir && *dir ? dir : "models/vocab", file);
    return buf;
}

static rbytes r_unhex(const char *s, size_t n) {
    rbytes b = {malloc(n / 2 + 1), n / 2};
    for (size_t i = 0; i < b.n; i++) {
        unsigned x;
        sscanf(s + 2 * i, "%2x", &x);
        b.p[i] = (unsigned char)x;
    }
    return b;
}

static rids r_ids(const char *s, size_t n) {
    rids r = {malloc((n + 1) * sizeof(int32_t)), 0, false};
    if ((n == 1 && (s[0] == '-' || s[0] == '='))) {
        r.none = true;
        return r;
    }
    for (size_t i = 0; i < n;) {
        char *end;
        r.p[r.n++] = (int32_t)strtol(s + i, &end, 10);
        i = (size_t)(end - s) + 1;
    }
    return r;
}

static rids r_tok(const slim_vocab *v, const void *text, size_t len, uint32_t flags) {
    size_t n = 0;
    ck_assert_int_eq(slim_vocab_tokenize(v, text, len, flags, NULL, 0, &n), SLIM_OK);
    rids r = {malloc((n + 1) * sizeof(int32_t)), n, false};
    size_t n2 = 0;
    ck_assert_int_eq(slim_vocab_tokenize(v, text, len, flags, r.p, n, &n2), SLIM_OK);
    ck_assert_uint_eq(n, n2);
    return r;
}

static rbytes r_detok(const slim_vocab *v, const rids *t, uint32_t flags) {
    size_t need = 0;
    ck_assert_int_eq(slim_vocab_detokenize(v, t->p, t->n, flags, NULL, 0, &need), SLIM_OK);
    rbytes b = {malloc(need + 1), 0};
    ck_assert_int_eq(slim_vocab_detokenize(v, t->p, t->n, flags, (char *)b.p, need, &b.n), SLIM_OK);
    return b;
}

static bool r_eq(const rids *x, const rids *y) {
    return x->n == y->n && (x->n == 0 || !memcmp(x->p, y->p, x->n * sizeof(int32_t)));
}

static void r_print(const char *what, const rbytes *text, const rids *got, const rids *want) {
    fprintf(stderr, "  %s mismatch on \"", what);
    for (size_t i = 0; i < text->n && i < 80; i++)
        fprintf(stderr, text->p[i] >= 0x20 && text->p[i] < 0x7f ? "%c" : "\\x%02x", text->p[i]);
    fprintf(stderr, "\"\n    slim:");
    for (size_t i = 0; i < got->n && i < 24; i++)
        fprintf(stderr, " %d", got->p[i]);
    fprintf(stderr, "\n    want:");
    for (size_t i = 0; i < want->n && i < 24; i++)
        fprintf(stderr, " %d", want->p[i]);
    fprintf(stderr, "\n");
}

typedef struct ref_result {
    int n, bad, diverged, roundtrip_bad, roundtrips;
} ref_result;

/* Run one reference file against its vocabulary.  lossless: 0 none, 1 the
 * text itself (byte-level BPE without space clean-up), 2 after llama.cpp's
 * space clean-up, 3 SentencePiece with a space prefix (the text after a space;
 * texts without U+2581). */
static ref_result run_ref(const char *file, int lossless) {
    char path[512], vpath[512];
    FILE *f = fopen(ref_data_path(file, path, sizeof path), "r");
    ck_assert_msg(f != NULL, "cannot open %s (tools/golden/gen_vocab_refs.py)", path);
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    slim_gguf *g = NULL;
    slim_vocab *v = NULL;
    int want_div = -1;
    ref_result r = {0};
    while ((len = getline(&line, &cap, f)) > 0) {
        if (line[len - 1] == '\n') line[--len] = '\0';
        char *fld[8];
        size_t fl[8];
        int nf = 0;
        char *p = line;
        while (nf < 8) {
            char *t = strchr(p, '\t');
            fld[nf] = p;
            fl[nf] = t ? (size_t)(t - p) : strlen(p);
            nf++;
            if (!t) break;
            *t = '\0';
            p = t + 1;
        }
        if (line[0] == '#') {
            sscanf(line, "# llama.cpp (llama-cpp-python %*s differs from the reference on %d",
                   &want_div);
            continue;
        }
        if (!strcmp(fld[0], "vocab") && nf >= 3) {
            vocab_path(fld[1], vpath, sizeof vpath);
            ck_assert_msg(!slim_gguf_open(vpath, true, &g),
                          "cannot open %s (make vocabs: tools/fetch_tokenizers.sh): %s", vpath,
                          slim_last_error());
            ck_assert_msg(!slim_vocab_from_gguf(g, &v), "%s: %s", vpath, slim_last_error());
            ck_assert_int_eq(slim_vocab_size(v), atoi(fld[2]));
            continue;
        }
        if (strcmp(fld[0], "T") || nf < 6) continue;
        ck_assert_msg(v != NULL, "%s: no vocab line", file);
        rbytes text = r_unhex(fld[1], fl[1]);
        rids want[2] = {r_ids(fld[2], fl[2]), r_ids(fld[3], fl[3])};
        rids cpp[2] = {r_ids(fld[4], fl[4]), r_ids(fld[5], fl[5])};
        uint32_t flags[2] = {SLIM_TOKENIZE_ADD_BOS, SLIM_TOKENIZE_PARSE_SPECIAL};
        r.n++;
        for (int k = 0; k < 2; k++) {
            if (want[k].none) continue; /* the reference has no such mode */
            rids got = r_tok(v, text.p, text.n, flags[k]);
            const rids *exp = cpp[k].none ? &want[k] : &cpp[k];
            if (!cpp[k].none) r.diverged++;
            if (!r_eq(&got, exp)) {
                if (r.bad < 10) r_print(k ? "parse-special" : "add-bos", &text, &got, exp);
                r.bad++;
            }
            /* back to the text: control tokens render as nothing (ADD_BOS)
             * or as their text (PARSE_SPECIAL, rendered) */
            if (lossless && !r.bad) {
                rbytes back = r_detok(v, &got, k ? SLIM_DETOKENIZE_RENDER_SPECIAL : 0);
                unsigned char *exp_t = malloc(text.n + 2);
                size_t exp_n = text.n;
                memcpy(exp_t, text.p, text.n);
                if (lossless == 3 &&
                    exp_n) { /* the space prefix stays (as llama.cpp without remove_special) */
                    memmove(exp_t + 1, exp_t, exp_n++);
                    exp_t[0] = ' ';
                }
                bool check = true;
                if (lossless == 2) exp_n = slim_bpe_clean_spaces((char *)exp_t, exp_n);
                if (lossless == 3)
                    for (size_t i = 0; i + 3 <= text.n; i++)
                        if (!memcmp(text.p + i, "\xe2\x96\x81", 3)) check = false;
                if (check) {
                    r.roundtrips++;
                    if (back.n != exp_n || (exp_n && memcmp(back.p, exp_t, exp_n))) {
                        if (r.roundtrip_bad < 5) {
                            rids none = {0};
                            r_print("round trip", &text, &got, &none);
                            fprintf(stderr, "    back (%zu bytes): \"%.*s\"\n", back.n, (int)back.n,
                                    back.p);
                        }
                        r.roundtrip_bad++;
                    }
                }
                free(exp_t);
                free(back.p);
            }
            free(got.p);
        }
        free(text.p);
        for (int k = 0; k < 2; k++) {
            free(want[k].p);
            free(cpp[k].p);
        }
    }
    free(line);
    fclose(f);
    fprintf(stderr,
            "tokenizer_refs: %s: %d strings, %d mismatches, %d lists where slim follows "
            "llama.cpp against the reference, round trips %d/%d\n",
            file, r.n, r.bad, r.diverged, r.roundtrips - r.roundtrip_bad, r.roundtrips);
    ck_assert_msg(want_div >= 0, "%s: no llama.cpp divergence count", file);
    ck_assert_int_eq(r.diverged, want_div);
    slim_vocab_free(v);
    slim_gguf_close(g);
    return r;
}

static void check_ref(const char *file, int lossless) {
    ref_result r = run_ref(file, lossless);
    ck_assert_int_ge(r.n, 300);
    ck_assert_int_eq(r.bad, 0);
    ck_assert_int_eq(r.roundtrip_bad, 0);
}

START_TEST(test_ref_llama3) { check_ref("tokenizer_ref_llama3.txt", 2); }
END_TEST

START_TEST(test_ref_nemo) { check_ref("tokenizer_ref_nemo.txt", 1); }
END_TEST

START_TEST(test_ref_mistral_v3) { check_ref("tokenizer_ref_mistral-v3.txt", 3); }
END_TEST

START_TEST(test_ref_phi4) { check_ref("tokenizer_ref_phi4.txt", 2); }
END_TEST

Suite *suite_tokenizer_refs(void) {
    Suite *s = suite_create("tokenizer_refs");
    TCase *tc = tcase_create("refs");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_ref_llama3);
    tcase_add_test(tc, test_ref_nemo);
    tcase_add_test(tc, test_ref_mistral_v3);
    tcase_add_test(tc, test_ref_phi4);
    suite_add_tcase(s, tc);
    return s;
}
