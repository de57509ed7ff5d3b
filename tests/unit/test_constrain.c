/* The constraint engine (lib/constrain): GBNF, regex, JSON Schema, choices and
 * json_object grammars accept exactly their language; masks equal the brute
 * force (each token's bytes fed to the matcher); forced bytes and tokens;
 * compile errors name line:column, the construct or the JSON pointer. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "constrain/constrain.h"
#include "format/gguf.h"
#include "format/json.h"
#include "tokenizer/tokenizer.h"
#include "suites.h"

/* A vocabulary of the 256 single bytes plus EOS (token 256). */
static slim_ctokens *byte_tokens(void) {
    uint8_t kind[257];
    uint32_t off[258];
    uint8_t bytes[256];
    for (int i = 0; i < 256; i++) {
        kind[i] = SLIM_CTOK_TEXT;
        off[i] = (uint32_t)i;
        bytes[i] = (uint8_t)i;
    }
    kind[256] = SLIM_CTOK_EOS;
    off[256] = off[257] = 256;
    slim_ctokens *t = NULL;
    ck_assert_int_eq(slim_ctokens_new(257, kind, off, bytes, &t), SLIM_OK);
    return t;
}

typedef struct cx {
    slim_cgrammar *g;
    slim_ctokens *t;
    slim_cmatch *m;
} cx;

static slim_status cx_new(cx *c, slim_constraint_kind kind, const char *text) {
    memset(c, 0, sizeof *c);
    slim_status st = slim_constrain_compile(kind, text, strlen(text), NULL, &c->g);
    if (st != SLIM_OK) return st;
    c->t = byte_tokens();
    ck_assert_int_eq(slim_cmatch_new(c->g, c->t, &c->m), SLIM_OK);
    return SLIM_OK;
}

static void cx_free(cx *c) {
    slim_cmatch_free(c->m);
    slim_ctokens_free(c->t);
    slim_cgrammar_free(c->g);
}

static bool cx_accepts(cx *c, const char *s) {
    int32_t st =
        slim_cmatch_advance_bytes(c->m, slim_cmatch_start(c->m), (const uint8_t *)s, strlen(s));
    return slim_cmatch_accepting(c->m, st);
}

/* Every string in yes is accepted, every one in no rejected. */
static void check_lang(slim_constraint_kind kind, const char *text, const char *const *yes,
                       const char *const *no) {
    cx c;
    slim_status st = cx_new(&c, kind, text);
    ck_assert_msg(st == SLIM_OK, "compile %s: %s", text, slim_last_error());
    for (; yes && *yes; yes++)
        ck_assert_msg(cx_accepts(&c, *yes), "%s should accept '%s'", text, *yes);
    for (; no && *no; no++)
        ck_assert_msg(!cx_accepts(&c, *no), "%s should reject '%s'", text, *no);
    cx_free(&c);
}

static void check_err(slim_constraint_kind kind, const char *text, slim_status want,
                      const char *msg) {
    slim_cgrammar *g = NULL;
    slim_status st = slim_constrain_compile(kind, text, strlen(text), NULL, &g);
    ck_assert_msg(st == want, "%s: status %d, want %d (%s)", text, st, want, slim_last_error());
    ck_assert_ptr_null(g);
    ck_assert_msg(strstr(slim_last_error(), msg), "%s: message '%s' lacks '%s'", text,
                  slim_last_error(), msg);
}

#define L(...) ((const char *const[]){__VA_ARGS__, NULL})

START_TEST(test_gbnf_lang) {
    check_lang(SLIM_CONSTRAINT_GBNF, "root ::= \"a\" [b-d]+ (\"x\" | \"yz\")?  # comment\n",
               L("ab", "abcdx", "abyz", "adddd"), L("a", "abyx", "x", "abxx", "", "ae"));
    check_lang(SLIM_CONSTRAINT_GBNF, "root ::= [a]{2,3}", L("aa", "aaa"), L("a", "aaaa", ""));
    check_lang(SLIM_CONSTRAINT_GBNF, "root ::= \"x\"{2} \"y\"{1,} \"z\"{0,}", L("xxy", "xxyyzz"),
               L("xy", "xxz", "xxxy"));
    check_lang(SLIM_CONSTRAINT_GBNF, "root ::= [α-ω]+", L("αβ", "ω"), L("a", "\xce", "α\xce", "Ω"));
    check_lang(SLIM_CONSTRAINT_GBNF, "root ::= [^a\\n]", L("b", "é", "\xf0\x9f\x98\x80"),
               L("a", "\n", "bb", "\xed\xa0\x80" /* a surrogate */, "\xc0\x80" /* overlong */));
    check_lang(SLIM_CONSTRAINT_GBNF, "root ::= . .", L("ab", "éé"), L("a", "abc"));
    check_lang(SLIM_CONSTRAINT_GBNF,
               "root ::= list\nlist ::= \"[\" (item (\",\" item)*)? \"]\"\n"
               "item ::= list | [0-9]+\n",
               L("[]", "[1,[2,[]],33]", "[[[[]]]]"), L("[", "[1,]", "[,]", "[[]"));
    check_lang(SLIM_CONSTRAINT_GBNF, "root ::= \"\\x41\\u00e9\\t\\\"\"", L("Aé\t\""), L("A"));
    /* nullable repetitions and empty alternatives terminate */
    check_lang(SLIM_CONSTRAINT_GBNF, "root ::= (\"a\"?)* \"b\" | (\"c\"? \"d\"?){0,3}",
               L("b", "aab", "", "cdcd", "ddd"), L("cdcdcdcd", "ba"));
    /* right recursion: deep, constant stack (tail calls) */
    cx c;
    ck_assert_int_eq(cx_new(&c, SLIM_CONSTRAINT_GBNF, "root ::= \"a\" root | \"b\""), SLIM_OK);
    char buf[5002];
    memset(buf, 'a', 5000);
    buf[5000] = 'b';
    buf[5001] = 0;
    ck_assert(cx_accepts(&c, buf));
    size_t frames = 0;
    slim_cmatch_stats(c.m, NULL, &frames, NULL);
    ck_assert_uint_lt(frames, 20);
    cx_free(&c);
}
END_TEST

START_TEST(test_gbnf_errors) {
    check_err(SLIM_CONSTRAINT_GBNF, "root ::= \"a\"\nfoo ::= (\"b\"", SLIM_ERR_FORMAT,
              "gbnf:2:9: expected ')'");
    check_err(SLIM_CONSTRAINT_GBNF, "root ::= \"a", SLIM_ERR_FORMAT, "gbnf:1:10: unterminated");
    check_err(SLIM_CONSTRAINT_GBNF, "root ::= [b-a]", SLIM_ERR_FORMAT,
              "gbnf:1:10: character range");
    check_err(SLIM_CONSTRAINT_GBNF, "root ::= \"\\q\"", SLIM_ERR_FORMAT,
              "gbnf:1:11: unknown escape");
    check_err(SLIM_CONSTRAINT_GBNF, "root ::= x\n", SLIM_ERR_FORMAT,
              "'x' is used but never defined");
    check_err(SLIM_CONSTRAINT_GBNF, "root ::= root \"a\" | \"b\"", SLIM_ERR_FORMAT,
              "left recursion through rule 'root'");
    check_err(SLIM_CONSTRAINT_GBNF, "root ::= a\na ::= \"x\"? b\nb ::= a \"y\"", SLIM_ERR_FORMAT,
              "left recursion");
    check_err(SLIM_CONSTRAINT_GBNF, "root ::= \"a\"\nroot ::= \"b\"", SLIM_ERR_FORMAT,
              "gbnf:2:1: rule 'root' is defined twice");
    check_err(SLIM_CONSTRAINT_GBNF, "a ::= \"a\"", SLIM_ERR_FORMAT, "no rule named 'root'");
    check_err(SLIM_CONSTRAINT_GBNF, "root ::= \"a\"{3,2}", SLIM_ERR_FORMAT, "n < m");
    check_err(SLIM_CONSTRAINT_GBNF, "root ::= \"a\" )", SLIM_ERR_FORMAT,
              "gbnf:1:14: unexpected ')'");
}
END_TEST

START_TEST(test_regex) {
    check_lang(SLIM_CONSTRAINT_REGEX, "\\d{3}-\\d{4}", L("555-1234"), L("555-123", "55a-1234"));
    check_lang(SLIM_CONSTRAINT_REGEX, "(ab|c)*d", L("d", "abcd", "ccd"), L("abd d", "a", "abc"));
    check_lang(SLIM_CONSTRAINT_REGEX, "^[A-Z][a-z]+?\\s\\w*$", L("Ab ", "Abc x_9"), L("ab ", "A "));
    check_lang(SLIM_CONSTRAINT_REGEX, "a.c", L("abc", "aéc"), L("a\nc", "ac"));
    check_lang(SLIM_CONSTRAINT_REGEX, "[^\\d]x{2,}", L("axx", "-xxx"), L("1xx", "ax"));
    check_lang(SLIM_CONSTRAINT_REGEX, "\\u00e9\\x41\\.\\{", L("éA.{"), L("éAx{"));
    check_err(SLIM_CONSTRAINT_REGEX, "(?=a)b", SLIM_ERR_UNSUPPORTED, "lookaround");
    check_err(SLIM_CONSTRAINT_REGEX, "(a)\\1", SLIM_ERR_UNSUPPORTED, "backreference");
    check_err(SLIM_CONSTRAINT_REGEX, "a\\bc", SLIM_ERR_UNSUPPORTED, "word boundary");
    check_err(SLIM_CONSTRAINT_REGEX, "a^b", SLIM_ERR_UNSUPPORTED, "anchor ^");
    check_err(SLIM_CONSTRAINT_REGEX, "(ab", SLIM_ERR_UNSUPPORTED, "unclosed group");
    check_err(SLIM_CONSTRAINT_REGEX, "*a", SLIM_ERR_UNSUPPORTED, "quantifier without");
    /* a count of counts with a lower bound <= 1 is one count: (e{0,1}){2,3} is e{0,3} */
    check_lang(SLIM_CONSTRAINT_REGEX, "(a?){2,3}b", L("b", "ab", "aaab"), L("aaaab", "a"));
    check_lang(SLIM_CONSTRAINT_REGEX, "(a+){2,3}", L("aa", "aaaaaaa"), L("a", ""));
    check_lang(SLIM_CONSTRAINT_REGEX, "(a{1,2}){2}", L("aa", "aaa", "aaaa"), L("a", "aaaaa"));
    check_lang(SLIM_CONSTRAINT_REGEX, "(a{2,3}){2}", L("aaaa", "aaaaa", "aaaaaa"),
               L("aaa", "aaaaaaa"));
    check_lang(SLIM_CONSTRAINT_REGEX, "((ab)?){0,2}c", L("c", "abc", "ababc"), L("abababc"));
    /* the fuzzer's .?{6,7674} kept every count up to 7674 live after each byte
     * (0.4 s a mask, and over 4 frames a count: one per UTF-8 lead byte);
     * flattened, the counts live are those of the bytes read, ~27 frames each */
    cx c;
    ck_assert_int_eq(cx_new(&c, SLIM_CONSTRAINT_REGEX, ".?{6,7674}"), SLIM_OK);
    char buf[201];
    memset(buf, 'x', 200);
    buf[200] = 0;
    ck_assert(cx_accepts(&c, buf));
    size_t frames = 0;
    slim_cmatch_stats(c.m, NULL, &frames, NULL);
    ck_assert_uint_lt(frames, 40 * 200);
    cx_free(&c);
    /* a part that can match empty text, counted far: every count stays live,
     * so it is refused rather than slow */
    check_err(SLIM_CONSTRAINT_REGEX, "(a?b?){6,7674}", SLIM_ERR_UNSUPPORTED,
              "counted up to 7674 of a part that can match empty text");
    check_lang(SLIM_CONSTRAINT_REGEX, "(a?b?){300,}c", L("c", "abbac"), L("ca"));
    check_lang(SLIM_CONSTRAINT_REGEX, "(a?b?){0,256}", L("", "abab", "bbba"), L("c"));
}
END_TEST

/* A fuzzed grammar of dots, stars and alternatives (tests/data/
 * constrain_ambiguous.gbnf) whose first mask took 0.5 s and hundreds of
 * parser stacks per state: a mask's work is bounded, past it the matcher
 * fails closed (no token allowed, the reason in slim_last_error). */
START_TEST(test_mask_work_bound) {
    size_t n = 0;
    uint8_t *text = test_read_whole("tests/data/constrain_ambiguous.gbnf", &n);
    ck_assert_ptr_nonnull(text);
    slim_cgrammar *g = NULL;
    ck_assert_int_eq(slim_constrain_compile(SLIM_CONSTRAINT_GBNF, (const char *)text, n, NULL, &g),
                     SLIM_OK);
    free(text);
    slim_ctokens *t = byte_tokens();
    slim_cmatch *m = NULL;
    ck_assert_int_eq(slim_cmatch_new(g, t, &m), SLIM_OK);
    int32_t s = slim_cmatch_start(m);
    const uint32_t *mask = slim_cmatch_mask(m, s, NULL);
    uint32_t any = 0;
    for (int i = 0; i < (257 + 31) / 32; i++)
        any |= mask[i];
    ck_assert_uint_eq(any, 0);
    ck_assert_msg(strstr(slim_last_error(), "one mask explores too many parser stacks"), "%s",
                  slim_last_error());
    ck_assert_int_eq(slim_cmatch_advance_byte(m, s, 'a'), SLIM_CSTATE_DEAD);
    slim_cmatch_free(m);
    slim_ctokens_free(t);
    slim_cgrammar_free(g);
    /* the same shape, smaller, is within the bound and masked exactly */
    check_lang(SLIM_CONSTRAINT_GBNF, "root ::= ..| ...*.....| .| ...*..", L("ab", "abcdefgh"),
               L("", "\xff"));
}
END_TEST

START_TEST(test_choices_json_any) {
    const char ch[] = "red\0green\0gre";
    slim_cgrammar *g = NULL;
    ck_assert_int_eq(slim_constrain_compile(SLIM_CONSTRAINT_CHOICES, ch, sizeof ch - 1, NULL, &g),
                     SLIM_OK);
    slim_ctokens *t = byte_tokens();
    slim_cmatch *m = NULL;
    ck_assert_int_eq(slim_cmatch_new(g, t, &m), SLIM_OK);
    int32_t s = slim_cmatch_start(m);
    ck_assert(!slim_cmatch_accepting(m, s));
    s = slim_cmatch_advance_bytes(m, s, (const uint8_t *)"gre", 3);
    ck_assert(slim_cmatch_accepting(m, s));
    uint8_t fb[16];
    ck_assert_uint_eq(slim_cmatch_forced_bytes(m, s, fb, sizeof fb), 0); /* can end here */
    s = slim_cmatch_advance_byte(m, s, 'e');
    ck_assert_uint_eq(slim_cmatch_forced_bytes(m, s, fb, sizeof fb), 1);
    ck_assert_int_eq(fb[0], 'n');
    ck_assert_int_eq(slim_cmatch_forced_token(m, s), 'n');
    s = slim_cmatch_advance_byte(m, s, 'n');
    ck_assert_int_eq(slim_cmatch_forced_token(m, s), 256); /* only EOS */
    ck_assert_int_eq(slim_cmatch_advance_token(m, s, 256), SLIM_CSTATE_DONE);
    ck_assert_int_eq(slim_cmatch_advance_token(m, slim_cmatch_start(m), 256), SLIM_CSTATE_DEAD);
    slim_cmatch_free(m);
    slim_cgrammar_free(g);
    slim_ctokens_free(t);
    check_lang(SLIM_CONSTRAINT_JSON_OBJECT, "",
               L("{}", "{\"a\":[1,-2.5e+3,true,null,\"x\\u00E9\\n\"]}", "{\"\":{\"b\":-0.1}}"),
               L("{", "{a:1}", "{\"a\":[1,]}", "{\"a\":01}", "{\"a\":1.}", "{\"a\":\"\x01\"}",
                 "{\"a\":\"\\x\"}", " {}", "{\"a\":[1, 2]}", "{\"a\":+1}", "[]", "0", "\"\"",
                 "-0.1"));
}
END_TEST

/* A random vocabulary over bytes that matter to JSON, masks against feeding
 * each token to the matcher on random walks. */
START_TEST(test_mask_brute_force) {
    static const char alpha[] = "ab\"\\{}[]:,01-.eu\xc3\xa9 tr";
    const int n = 600;
    uint8_t kind[601];
    uint32_t off[602];
    uint8_t bytes[600 * 6];
    unsigned seed = 12345;
    uint32_t nb = 0;
    for (int i = 0; i < n; i++) {
        off[i] = nb;
        kind[i] = i == 7 ? SLIM_CTOK_NEVER : SLIM_CTOK_TEXT;
        int len = 1 + (int)((seed = seed * 1103515245 + 12345) >> 16) % 5;
        for (int k = 0; k < len; k++) {
            seed = seed * 1103515245 + 12345;
            bytes[nb++] = (uint8_t)alpha[(seed >> 16) % (sizeof alpha - 1)];
        }
    }
    kind[n] = SLIM_CTOK_EOS;
    off[n] = off[n + 1] = nb;
    slim_ctokens *t = NULL;
    ck_assert_int_eq(slim_ctokens_new(n + 1, kind, off, bytes, &t), SLIM_OK);
    const char *grammars[] = {
        "",
        "{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"string\",\"maxLength\":3},"
        "\"b\":{\"type\":\"array\",\"items\":{\"type\":\"integer\"}}},\"required\":[\"a\"]}",
        /* bounds far beyond the longest token (5 bytes): counts that share a mask */
        "{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"string\",\"minLength\":2,"
        "\"maxLength\":20},\"b\":{\"type\":\"array\",\"items\":{\"type\":\"string\","
        "\"pattern\":\"^[ab]{3,25}$\"},\"minItems\":1,\"maxItems\":14}},\"required\":[\"a\"]}",
    };
    for (int gi = 0; gi < 3; gi++) {
        slim_cgrammar *g = NULL;
        slim_constraint_kind kd =
            gi == 0 ? SLIM_CONSTRAINT_JSON_OBJECT : SLIM_CONSTRAINT_JSON_SCHEMA;
        ck_assert_msg(slim_constrain_compile(kd, grammars[gi], strlen(grammars[gi]), NULL, &g) ==
                          SLIM_OK,
                      "%s", slim_last_error());
        slim_cmatch *m = NULL;
        ck_assert_int_eq(slim_cmatch_new(g, t, &m), SLIM_OK);
        slim_cmatch_set_mask_cache(m, gi != 1);
        uint32_t mask[(601 + 31) / 32];
        for (int walk = 0; walk < (gi == 2 ? 200 : 40); walk++) {
            int32_t s = slim_cmatch_start(m);
            for (int step = 0; step < 30 && s >= 0; step++) {
                slim_cmatch_mask(m, s, mask);
                int allowed[601], na = 0;
                for (int tok = 0; tok <= n; tok++) {
                    bool bit = (mask[tok >> 5] >> (tok & 31)) & 1;
                    int32_t x = slim_cmatch_advance_token(m, s, tok);
                    ck_assert_msg(bit == (x != SLIM_CSTATE_DEAD), "token %d: mask %d, feed %d", tok,
                                  bit, x);
                    if (bit && tok != n) allowed[na++] = tok;
                }
                ck_assert_int_eq(kind[7] == SLIM_CTOK_NEVER && ((mask[0] >> 7) & 1), 0);
                if (!na) break;
                seed = seed * 1103515245 + 12345;
                s = slim_cmatch_advance_token(m, s, allowed[(seed >> 16) % (unsigned)na]);
            }
        }
        slim_cmatch_free(m);
        slim_cgrammar_free(g);
    }
    slim_ctokens_free(t);
}
END_TEST

/* States that differ only in a count far from its bound (a string's
 * maxLength, an array's maxItems) share one cached mask; near the bound
 * they do not. */
START_TEST(test_mask_shared_counts) {
    const char *schema = "{\"type\":\"array\",\"items\":{\"type\":\"string\",\"maxLength\":30},"
                         "\"maxItems\":30}";
    slim_cgrammar *g = NULL;
    ck_assert_int_eq(
        slim_constrain_compile(SLIM_CONSTRAINT_JSON_SCHEMA, schema, strlen(schema), NULL, &g),
        SLIM_OK);
    slim_ctokens *t = byte_tokens(); /* the longest token is one byte */
    slim_cmatch *m = NULL;
    ck_assert_int_eq(slim_cmatch_new(g, t, &m), SLIM_OK);
    int32_t s = slim_cmatch_advance_bytes(m, slim_cmatch_start(m), (const uint8_t *)"[\"a", 3);
    int32_t s2 = slim_cmatch_advance_bytes(m, s, (const uint8_t *)"bcd", 3);
    int32_t s3 = slim_cmatch_advance_bytes(m, s2, (const uint8_t *)"efghijklmnopqrstuvwxyz", 22);
    ck_assert(s >= 0 && s2 >= 0 && s3 >= 0 && s != s2);
    /* a cached mask comes from the cache (a fresh one from a scratch buffer) */
    int32_t all[] = {s, s2, s3};
    for (int k = 0; k < 3; k++)
        slim_cmatch_mask(m, all[k], NULL);
    const uint32_t *a = slim_cmatch_mask(m, s, NULL), *b = slim_cmatch_mask(m, s2, NULL);
    ck_assert_ptr_eq(a, b);                             /* counts 1 and 4 of 30 */
    ck_assert_ptr_ne(slim_cmatch_mask(m, s3, NULL), a); /* 26 of 30: 4 bytes left */
    /* the second item of the array: its count shares too */
    int32_t i1 =
        slim_cmatch_advance_bytes(m, slim_cmatch_start(m), (const uint8_t *)"[\"x\",\"", 6);
    int32_t i2 = slim_cmatch_advance_bytes(m, i1, (const uint8_t *)"y\",\"", 4);
    ck_assert(i1 >= 0 && i2 >= 0 && i1 != i2);
    slim_cmatch_mask(m, i1, NULL);
    slim_cmatch_mask(m, i2, NULL);
    ck_assert_ptr_eq(slim_cmatch_mask(m, i1, NULL), slim_cmatch_mask(m, i2, NULL));
    /* and each shared mask is still the exact one */
    int32_t probe[] = {s, s2, s3, i1, i2};
    uint32_t mask[(257 + 31) / 32];
    for (int k = 0; k < 5; k++) {
        slim_cmatch_mask(m, probe[k], mask);
        for (int32_t tok = 0; tok < t->n_vocab; tok++)
            ck_assert_int_eq((mask[tok >> 5] >> (tok & 31)) & 1,
                             slim_cmatch_advance_token(m, probe[k], tok) != SLIM_CSTATE_DEAD);
    }
    slim_cmatch_free(m);
    slim_cgrammar_free(g);
    slim_ctokens_free(t);
}
END_TEST

/* Real vocabularies (Llama 3, 128k; Gemma 3, 262k): along tokenized JSON
 * instances, the mask equals feeding every token's bytes, with and without
 * the bulk paths' favourite states (strings, keys, numbers). */
START_TEST(test_mask_real_vocab) {
    const char *dir = getenv("SLIM_TEST_VOCAB_DIR");
    char path[512];
    snprintf(path, sizeof path, "%s/llama3.gguf", dir && *dir ? dir : "models/vocab");
    const char *paths[] = {path, test_model_path()};
    const char *schema =
        "{\"type\":\"object\",\"properties\":{\"name\":{\"type\":\"string\"},\"tags\":{\"type\":"
        "\"array\",\"items\":{\"type\":\"string\",\"maxLength\":12}},\"n\":{\"type\":\"integer\","
        "\"minimum\":-5,\"maximum\":300},\"when\":{\"type\":\"string\",\"format\":\"date\"},"
        "\"id\":{\"type\":\"string\",\"pattern\":\"[0-9]{4}-[a-z]\"},\"code\":{\"type\":"
        "\"string\",\"maxLength\":40},\"slug\":{\"type\":\"string\",\"pattern\":\"^[0-9a-zA-Z_-]{1,"
        "30}$\"},\"note\":{\"type\":\"string\",\"maxLength\":100}},\"required\":[\"name\"]}";
    /* (an unanchored pattern, length bounds, a counted character class and
     * keys next to defined names: the matcher's memo, counted-string, loop-set,
     * class-reach and lead-byte bulk paths, checked token by token below) */
    const char *texts[] = {
        "{\"name\":\"Zoë \\\"Ñandú\\\" 東京\",\"tags\":[\"a b\",\"ü\"],\"n\":299,"
        "\"when\":\"2024-02-28\",\"id\":\"a 1234-q 東\",\"code\":\"東京 chars, 40 "
        "max\",\"slug\":\"ab-9_Zq\",\"note\":\"東京, a note\",\"extra\":{\"k\":[1.5e3,null]}}",
        "{\"name\":\"x\\n\\u00e9\",\"n\":-5}"};
    for (int vi = 0; vi < 2; vi++) {
        slim_gguf *gg = NULL;
        if (slim_gguf_open(paths[vi], true, &gg) != SLIM_OK) {
            fprintf(stderr, "test_mask_real_vocab: %s missing, skipped\n", paths[vi]);
            continue;
        }
        slim_vocab *v = NULL;
        ck_assert_int_eq(slim_vocab_from_gguf(gg, &v), SLIM_OK);
        slim_ctokens *t = NULL;
        ck_assert_int_eq(slim_ctokens_from_vocab(v, &t), SLIM_OK);
        slim_cgrammar *g = NULL;
        ck_assert_int_eq(
            slim_constrain_compile(SLIM_CONSTRAINT_JSON_SCHEMA, schema, strlen(schema), NULL, &g),
            SLIM_OK);
        slim_cmatch *m = NULL;
        ck_assert_int_eq(slim_cmatch_new(g, t, &m), SLIM_OK);
        size_t words = ((size_t)t->n_vocab + 31) / 32;
        uint32_t *mask = malloc(words * 4);
        int32_t toks[512];
        for (int ti = 0; ti < 2; ti++) {
            size_t n = 0;
            ck_assert_int_eq(slim_vocab_tokenize(v, texts[ti], strlen(texts[ti]), 0, toks, 512, &n),
                             SLIM_OK);
            int32_t s = slim_cmatch_start(m);
            for (size_t k = 0; k <= n; k++) {
                slim_cmatch_mask(m, s, mask);
                for (int32_t tok = 0; tok < t->n_vocab; tok++) {
                    bool bit = (mask[tok >> 5] >> (tok & 31)) & 1;
                    bool feed = slim_cmatch_advance_token(m, s, tok) != SLIM_CSTATE_DEAD;
                    ck_assert_msg(bit == feed, "%s text %d step %zu token %d: mask %d feed %d",
                                  paths[vi], ti, k, tok, bit, feed);
                }
                if (k == n) {
                    ck_assert(slim_cmatch_accepting(m, s));
                    break;
                }
                ck_assert_msg((mask[toks[k] >> 5] >> (toks[k] & 31)) & 1, "token %zu rejected", k);
                s = slim_cmatch_advance_token(m, s, toks[k]);
            }
        }
        free(mask);
        slim_cmatch_free(m);
        slim_cgrammar_free(g);
        slim_ctokens_free(t);
        slim_vocab_free(v);
        slim_gguf_close(gg);
    }
}
END_TEST

#define JS SLIM_CONSTRAINT_JSON_SCHEMA

START_TEST(test_schema_keywords) {
    check_lang(
        JS,
        "{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"integer\"},\"b\":{\"type\":"
        "\"string\"}},\"required\":[\"a\"],\"additionalProperties\":false}",
        L("{\"a\":1}", "{\"a\":1,\"b\":\"x\"}"),
        L("{}", "{\"b\":\"x\",\"a\":1}", "{\"a\":1,\"c\":2}", "{\"a\":\"1\"}", "{\"a\":1,}"));
    /* additional members: any key but the defined ones, after them */
    check_lang(JS, "{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"integer\"}}}",
               L("{\"a\":1,\"zz\":[1]}", "{}", "{\"ab\":1}", "{\"\":1}", "{\"b\":null}"),
               L("{\"a\":1,\"a\":2}", "{\"b\":1,\"a\":1}"));
    check_lang(JS, "{\"type\":\"integer\",\"minimum\":-15,\"maximum\":120}",
               L("-15", "0", "9", "99", "120", "-9"), L("-16", "121", "1000", "01", "-0", "1.5"));
    check_lang(JS, "{\"type\":\"integer\",\"exclusiveMinimum\":0,\"exclusiveMaximum\":1000}",
               L("1", "999"), L("0", "1000"));
    check_lang(JS, "{\"type\":\"number\",\"minimum\":-1,\"maximum\":10}",
               L("0", "10", "9.99", "10.0", "0.5", "-0.5", "-1", "-1.0"),
               L("-1.5", "10.5", "11", "1e1", "-2"));
    check_lang(JS, "{\"type\":\"integer\",\"multipleOf\":3}", L("0", "3", "-9", "123"),
               L("4", "10", "-1"));
    check_lang(JS, "{\"type\":\"string\",\"minLength\":2,\"maxLength\":3}",
               L("\"ab\"", "\"abc\"", "\"é\\n\"", "\"\\u0041b\""), L("\"a\"", "\"abcd\"", "\"\""));
    check_lang(JS, "{\"type\":\"string\",\"pattern\":\"^[a-z]+\\\\d$\"}", L("\"ab1\""),
               L("\"ab\"", "\"Ab1\"", "\"ab12\""));
    check_lang(JS, "{\"pattern\":\"b\",\"type\":\"string\"}", L("\"abc\"", "\"b\"", "\"\\\"b\""),
               L("\"ac\"", "\"\""));
    check_lang(JS, "{\"enum\":[\"red\",1,null,{\"a\":[1]},\"a\\\"b\"]}",
               L("\"red\"", "1", "null", "{\"a\":[1]}", "\"a\\\"b\""), L("\"blue\"", "2", "\"a\""));
    check_lang(JS, "{\"type\":\"string\",\"enum\":[\"x\",1]}", L("\"x\""), L("1"));
    check_lang(JS, "{\"const\":\"k\"}", L("\"k\""), L("\"kk\""));
    check_lang(JS, "{\"anyOf\":[{\"type\":\"string\"},{\"type\":\"integer\"}]}", L("\"x\"", "1"),
               L("1.5", "null"));
    check_lang(JS, "{\"oneOf\":[{\"type\":\"string\"},{\"type\":\"null\"}]}", L("\"x\"", "null"),
               L("1"));
    check_lang(
        JS,
        "{\"oneOf\":[{\"properties\":{\"k\":{\"const\":\"a\"},\"v\":{\"type\":\"integer\"}},"
        "\"required\":[\"k\"]},{\"properties\":{\"k\":{\"const\":\"b\"}},\"required\":[\"k\"]}],"
        "\"type\":\"object\",\"additionalProperties\":false}",
        L("{\"k\":\"a\",\"v\":1}", "{\"k\":\"b\"}"), L("{\"k\":\"c\"}", "{\"k\":\"b\",\"v\":1}"));
    check_lang(JS,
               "{\"allOf\":[{\"properties\":{\"a\":{\"type\":\"integer\"}}},{\"required\":[\"a\"],"
               "\"properties\":{\"a\":{\"minimum\":5}}}],\"additionalProperties\":false}",
               L("{\"a\":5}", "{\"a\":70}"), L("{}", "{\"a\":4}", "{\"a\":\"x\"}"));
    check_lang(
        JS,
        "{\"$defs\":{\"n\":{\"type\":\"object\",\"properties\":{\"c\":{\"$ref\":\"#/$defs/n\"}},"
        "\"additionalProperties\":false}},\"$ref\":\"#/$defs/n\"}",
        L("{\"c\":{\"c\":{}}}", "{}"), L("{\"c\":1}", "{\"d\":{}}"));
    check_lang(JS,
               "{\"type\":\"array\",\"prefixItems\":[{\"type\":\"string\"}],\"items\":{\"type\":"
               "\"integer\"},\"minItems\":2,\"maxItems\":3}",
               L("[\"a\",1]", "[\"a\",1,2]"),
               L("[\"a\"]", "[\"a\",1,2,3]", "[1,1]", "[\"a\",\"b\"]"));
    check_lang(JS,
               "{\"type\":\"array\",\"items\":[{\"type\":\"integer\"}],\"additionalItems\":false}",
               L("[]", "[1]"), L("[1,2]", "[\"a\"]"));
    check_lang(JS, "{\"type\":\"string\",\"format\":\"date\"}",
               L("\"2024-02-28\"", "\"1999-12-31\""),
               L("\"2024-02-30\"", "\"2024-13-01\"", "\"24-01-01\""));
    check_lang(JS, "{\"format\":\"uuid\",\"type\":\"string\"}",
               L("\"123e4567-e89b-12d3-a456-426614174000\""), L("\"123e4567\""));
    check_lang(JS, "{\"type\":\"string\",\"format\":\"date-time\"}", L("\"2024-01-01T10:00:00Z\""),
               L("\"2024-01-01 10:00:00\""));
    check_lang(JS, "{\"not\":{}}", NULL, L("1", "null", "{}"));
    check_lang(JS, "{\"type\":[\"integer\",\"null\"],\"not\":{\"type\":\"null\"}}", L("1"),
               L("null"));
    check_lang(JS, "true", L("1", "{\"a\":[]}"), L("{a}"));
    check_lang(JS,
               "{\"title\":\"t\",\"x-ext\":1,\"unknownKeyword\":5,\"format\":\"int32\","
               "\"type\":\"integer\"}",
               L("5"), L("\"5\""));
}
END_TEST

START_TEST(test_schema_errors) {
    check_err(JS, "{\"patternProperties\":{\"^a\":{}}}", SLIM_ERR_UNSUPPORTED,
              "keyword 'patternProperties' is not supported at /patternProperties");
    check_err(JS, "{\"properties\":{\"x\":{\"uniqueItems\":true}}}", SLIM_ERR_UNSUPPORTED,
              "keyword 'uniqueItems' is not supported at /properties/x/uniqueItems");
    check_err(JS, "{\"$ref\":\"other.json#/a\"}", SLIM_ERR_UNSUPPORTED, "$ref 'other.json#/a'");
    check_err(JS, "{\"type\":\"strin\"}", SLIM_ERR_FORMAT, "unknown type 'strin' at /type");
    check_err(JS, "{\"type\":", SLIM_ERR_FORMAT, "json schema:1:9");
    check_err(JS, "{\"oneOf\":[{\"type\":\"integer\"},{\"minimum\":1}]}", SLIM_ERR_UNSUPPORTED,
              "oneOf alternatives that may overlap");
    check_err(JS, "{\"type\":\"string\",\"pattern\":\"(?=x)\"}", SLIM_ERR_UNSUPPORTED,
              "pattern: regex: lookaround");
    check_err(JS, "{\"type\":\"string\",\"format\":\"hostname\"}", SLIM_ERR_UNSUPPORTED,
              "format 'hostname' is not supported at /format");
    check_err(JS, "{\"type\":\"number\",\"multipleOf\":0.01}", SLIM_ERR_UNSUPPORTED, "multipleOf");
    check_err(JS, "{\"allOf\":[{\"pattern\":\"a\"},{\"pattern\":\"b\"}]}", SLIM_ERR_UNSUPPORTED,
              "two different pattern values");
    check_err(JS,
              "{\"$defs\":{\"a\":{\"allOf\":[{\"$ref\":\"#/$defs/a\"}]}},\"$ref\":\"#/$defs/a\"}",
              SLIM_ERR_UNSUPPORTED, "too deeply");
}
END_TEST

/* ---- the public API (slim.h) on a real model ------------------------------------------- */

typedef struct gen_text {
    char buf[4096];
    size_t n;
    int tokens;
} gen_text;

static int on_piece(slim_token tok, const char *piece, size_t len, void *user) {
    gen_text *g = user;
    ck_assert_uint_lt(g->n + len, sizeof g->buf);
    memcpy(g->buf + g->n, piece, len);
    g->n += len;
    g->buf[g->n] = 0;
    g->tokens++;
    return 0;
}

static int32_t n_vocab_of(const slim_model *m) {
    slim_model_info info = {.struct_size = sizeof info};
    ck_assert_int_eq(slim_model_get_info(m, &info), SLIM_OK);
    return info.n_vocab;
}

static slim_model *api_model(void) {
    slim_model *model = NULL;
    if (slim_model_load(test_model_path(), NULL, &model) != SLIM_OK) {
        fprintf(stderr, "constraint api: %s missing, skipped\n", test_model_path());
        return NULL;
    }
    return model;
}

START_TEST(test_api_compile_errors_cache) {
    slim_model *model = api_model();
    if (!model) return;
    slim_constraint *c = NULL, *c2 = NULL, *c3 = NULL;
    const char *bad = "root ::= \"a\" |\nx ::= [a-";
    ck_assert_int_eq(
        slim_constraint_compile(model, SLIM_CONSTRAINT_GBNF, bad, strlen(bad), NULL, &c),
        SLIM_ERR_FORMAT);
    ck_assert_ptr_null(c);
    ck_assert_msg(strstr(slim_last_error(), "gbnf:2:"), "%s", slim_last_error());
    const char *unsup = "{\"type\":\"object\",\"properties\":{\"a\":{\"patternProperties\":{}}},"
                        "\"dependentRequired\":{}}";
    ck_assert_int_eq(
        slim_constraint_compile(model, SLIM_CONSTRAINT_JSON_SCHEMA, unsup, strlen(unsup), NULL, &c),
        SLIM_ERR_UNSUPPORTED);
    ck_assert_msg(strstr(slim_last_error(), "dependentRequired"), "%s", slim_last_error());
    slim_constraint_params p = slim_constraint_default_params();
    p.property_order = 7;
    ck_assert_int_eq(slim_constraint_compile(model, SLIM_CONSTRAINT_JSON_OBJECT, NULL, 0, &p, &c),
                     SLIM_ERR_INVALID_ARG);
    ck_assert_int_eq(slim_constraint_compile(model, (slim_constraint_kind)9, "", 0, NULL, &c),
                     SLIM_ERR_INVALID_ARG);
    /* the same content gives the cached handle; other params another one */
    const char *re = "[0-9]{3}-[a-z]+";
    ck_assert_int_eq(
        slim_constraint_compile(model, SLIM_CONSTRAINT_REGEX, re, strlen(re), NULL, &c), SLIM_OK);
    ck_assert_int_eq(
        slim_constraint_compile(model, SLIM_CONSTRAINT_REGEX, re, strlen(re), NULL, &c2), SLIM_OK);
    ck_assert_ptr_eq(c, c2);
    p = slim_constraint_default_params();
    p.json_whitespace = 1;
    ck_assert_int_eq(slim_constraint_compile(model, SLIM_CONSTRAINT_REGEX, re, strlen(re), &p, &c3),
                     SLIM_OK);
    ck_assert_ptr_ne(c, c3);
    ck_assert_int_eq(slim_constraint_n_vocab(c), n_vocab_of(model));
    slim_constraint_free(c2);
    slim_constraint_free(c3);
    /* mask against advance over the whole vocabulary, then a walk */
    const int32_t V = n_vocab_of(model);
    uint32_t *mask = calloc(((size_t)V + 31) / 32, 4);
    slim_constraint_state s = slim_constraint_start(c);
    ck_assert_int_eq(slim_constraint_mask(c, s, mask, 1), SLIM_ERR_INVALID_ARG);
    ck_assert_int_eq(slim_constraint_mask(c, s, mask, ((size_t)V + 31) / 32), SLIM_OK);
    int allowed = 0;
    for (slim_token t = 0; t < V; t++) {
        bool bit = (mask[t >> 5] >> (t & 31)) & 1;
        allowed += bit;
        ck_assert_int_eq(bit, slim_constraint_advance(c, s, t) >= 0);
    }
    ck_assert_int_gt(allowed, 10); /* digits and their runs */
    slim_token toks[16];
    size_t n = 0;
    ck_assert_int_eq(slim_tokenize(model, "123-abc", 7, 0, toks, 16, &n), SLIM_OK);
    for (size_t i = 0; i < n; i++) {
        ck_assert(!slim_constraint_accepting(c, s));
        s = slim_constraint_advance(c, s, toks[i]);
        ck_assert_int_ge(s, 0);
    }
    ck_assert(slim_constraint_accepting(c, s));
    ck_assert_int_eq(slim_constraint_advance(c, s, -5), SLIM_CONSTRAINT_DEAD);
    free(mask);
    slim_constraint_free(c);
    slim_model_free(model); /* frees the cached handles */
}
END_TEST

static const char person_schema[] =
    "{\"type\":\"object\",\"properties\":{\"name\":{\"type\":\"string\",\"maxLength\":20},"
    "\"age\":{\"type\":\"integer\",\"minimum\":0,\"maximum\":120},\"city\":{\"enum\":[\"Paris\","
    "\"Rome\",\"Oslo\"]}},\"required\":[\"name\",\"age\",\"city\"],\"additionalProperties\":false}";

/* The output parses as JSON and has the schema's members, checked by hand. */
static void check_person(const char *text) {
    slim_json_doc *doc = NULL;
    ck_assert_msg(slim_json_parse(text, strlen(text), "out", &doc) == SLIM_OK, "'%s': %s", text,
                  slim_last_error());
    const slim_json *r = slim_json_root(doc);
    ck_assert_int_eq(slim_json_type_of(r), SLIM_JSON_OBJECT);
    ck_assert_uint_eq(slim_json_len(r), 3);
    size_t nl = 0;
    const char *name = slim_json_str(slim_json_get(r, "name"), &nl);
    ck_assert_ptr_nonnull(name);
    double age = -1;
    ck_assert(slim_json_num(slim_json_get(r, "age"), &age));
    ck_assert(age >= 0 && age <= 120 && age == (double)(int)age);
    const char *city = slim_json_str(slim_json_get(r, "city"), NULL);
    ck_assert_msg(city &&
                      (!strcmp(city, "Paris") || !strcmp(city, "Rome") || !strcmp(city, "Oslo")),
                  "%s", text);
    slim_json_free(doc);
}

START_TEST(test_api_generate) {
    slim_model *model = api_model();
    if (!model) return;
    slim_constraint *c = NULL;
    ck_assert_int_eq(slim_constraint_compile(model, SLIM_CONSTRAINT_JSON_SCHEMA, person_schema,
                                             strlen(person_schema), NULL, &c),
                     SLIM_OK);
    /* the start forces '{"name":"' : all of it but the last token as the
     * tokenizer writes it, each token allowed in turn */
    slim_token f[64];
    size_t nf = 0;
    ck_assert_int_eq(slim_constraint_forced(c, slim_constraint_start(c), NULL, 0, &nf), SLIM_OK);
    ck_assert_int_ge(nf, 1);
    ck_assert_int_eq(slim_constraint_forced(c, slim_constraint_start(c), f, 64, &nf), SLIM_OK);
    char spelled[64] = "";
    size_t ns = 0;
    slim_constraint_state s = slim_constraint_start(c);
    for (size_t i = 0; i < nf; i++) {
        size_t l = 0;
        ck_assert_int_eq(slim_token_to_piece(model, f[i], 0, spelled + ns, 63 - ns, &l), SLIM_OK);
        ns += l;
        s = slim_constraint_advance(c, s, f[i]);
        ck_assert_int_ge(s, 0);
    }
    spelled[ns] = 0;
    ck_assert_msg(ns > 0 && ns < 9 && !strncmp(spelled, "{\"name\":\"", ns), "forced '%s'",
                  spelled);
    if (nf > 1) { /* a short buffer: the size needed */
        size_t need = 0;
        ck_assert_int_eq(slim_constraint_forced(c, slim_constraint_start(c), f, 1, &need),
                         SLIM_ERR_BUFFER_TOO_SMALL);
        ck_assert_uint_eq(need, nf);
    }

    slim_context *ctx = NULL;
    ck_assert_int_eq(slim_context_create(model, NULL, &ctx), SLIM_OK);
    const char *prompt = "Describe a person as JSON:";
    for (int run = 0; run < 3; run++) {
        slim_sampler_params sp = slim_sampler_default_params();
        sp.temperature = run == 0 ? 0.0f : 1.5f; /* hot: the mask must do the work */
        sp.top_k = 0;
        sp.min_p = 0;
        sp.top_p = 1;
        sp.seed = (uint64_t)run;
        slim_sampler *smp = NULL;
        ck_assert_int_eq(slim_sampler_create(&sp, &smp), SLIM_OK);
        ck_assert_int_eq(slim_sampler_set_constraint(smp, c), SLIM_OK);
        ck_assert_int_ge(slim_sampler_constraint_state(smp), 0);
        slim_generate_params gp = slim_generate_default_params();
        gp.max_tokens = 200;
        gen_text g = {.n = 0};
        slim_generate_stats st = {.struct_size = sizeof st};
        slim_context_reset(ctx);
        ck_assert_int_eq(slim_generate(ctx, smp, prompt, &gp, on_piece, &g, &st), SLIM_OK);
        ck_assert_msg(slim_sampler_constraint_state(smp) == SLIM_CONSTRAINT_DONE,
                      "run %d did not finish: '%s'", run, g.buf);
        check_person(g.buf);
        ck_assert_int_eq(st.n_generated, g.tokens + 1); /* + the end token */
        slim_sampler_free(smp);
    }
    /* choices: exactly one of them */
    const char *const ch[] = {"positive", "negative", "neutral"};
    slim_constraint *cc = NULL;
    ck_assert_int_eq(slim_constraint_compile_choices(model, ch, 3, &cc), SLIM_OK);
    slim_sampler_params sp = slim_sampler_default_params();
    sp.temperature = 0;
    slim_sampler *smp = NULL;
    ck_assert_int_eq(slim_sampler_create(&sp, &smp), SLIM_OK);
    ck_assert_int_eq(slim_sampler_set_constraint(smp, cc), SLIM_OK);
    slim_constraint_free(cc); /* the sampler holds a reference */
    gen_text g = {.n = 0};
    slim_context_reset(ctx);
    ck_assert_int_eq(slim_generate(ctx, smp, "I love it! Sentiment:", NULL, on_piece, &g, NULL),
                     SLIM_OK);
    ck_assert_msg(!strcmp(g.buf, ch[0]) || !strcmp(g.buf, ch[1]) || !strcmp(g.buf, ch[2]), "'%s'",
                  g.buf);
    slim_sampler_free(smp);
    slim_context_free(ctx);
    slim_constraint_free(c);
    slim_model_free(model);
}
END_TEST

/* Engine requests with constraints: several at once (one greedy, others hot
 * with different seeds); each output validates, and the greedy one equals
 * slim_generate's with the same constraint (forced chunks included). */
START_TEST(test_api_engine) {
    slim_model *model = api_model();
    if (!model) return;
    slim_constraint *c = NULL;
    ck_assert_int_eq(slim_constraint_compile(model, SLIM_CONSTRAINT_JSON_SCHEMA, person_schema,
                                             strlen(person_schema), NULL, &c),
                     SLIM_OK);
    const char *prompt = "Describe a person as JSON:";
    /* the single-sequence reference */
    slim_context *ctx = NULL;
    ck_assert_int_eq(slim_context_create(model, NULL, &ctx), SLIM_OK);
    slim_sampler_params greedy = slim_sampler_default_params();
    greedy.temperature = 0;
    slim_sampler *smp = NULL;
    ck_assert_int_eq(slim_sampler_create(&greedy, &smp), SLIM_OK);
    ck_assert_int_eq(slim_sampler_set_constraint(smp, c), SLIM_OK);
    gen_text ref = {.n = 0};
    ck_assert_int_eq(slim_generate(ctx, smp, prompt, NULL, on_piece, &ref, NULL), SLIM_OK);
    slim_sampler_free(smp);
    slim_context_free(ctx);
    check_person(ref.buf);

    slim_engine_params ep = slim_engine_default_params();
    ep.n_threads = 2;
    ep.kv_tokens = 2048;
    slim_engine *e = NULL;
    ck_assert_int_eq(slim_engine_create(model, &ep, &e), SLIM_OK);
    enum { N = 4 };
    uint64_t ids[N];
    slim_sampler_params hot[N];
    for (int i = 0; i < N; i++) {
        hot[i] = slim_sampler_default_params();
        hot[i].temperature = i == 0 ? 0.0f : 1.3f;
        hot[i].top_k = 0;
        hot[i].seed = (uint64_t)i;
        slim_request_params rp = slim_request_default_params();
        rp.prompt = prompt;
        rp.max_tokens = 200;
        rp.sampling = &hot[i];
        rp.constraint = c;
        rp.logprobs = 1;
        ck_assert_int_eq(slim_engine_submit(e, &rp, &ids[i]), SLIM_OK);
    }
    slim_constraint_free(c); /* the requests hold references */
    for (int i = 0; i < N; i++) {
        slim_event ev = {.struct_size = sizeof ev};
        int forced = 0;
        do {
            ck_assert_int_eq(slim_engine_poll(e, ids[i], -1, &ev), SLIM_OK);
            if (ev.type == SLIM_EVENT_TOKEN && ev.n_top == 0) forced++;
        } while (ev.type != SLIM_EVENT_DONE);
        ck_assert_msg(ev.finish_reason == SLIM_FINISH_EOS, "request %d: finish %d (%s) '%s'", i,
                      ev.finish_reason, ev.error, ev.text);
        check_person(ev.text);
        ck_assert_int_gt(forced, 0); /* '{"', 'name', '":', ... came without sampling */
        if (i == 0) ck_assert_str_eq(ev.text, ref.buf);
        ck_assert_int_eq(slim_engine_release(e, ids[i]), SLIM_OK);
    }
    slim_engine_free(e);
    slim_model_free(model);
}
END_TEST

/* ---- label scoring (slim_score) ------------------------------------------------------- */

static double ref_lse(const float *l, int32_t n) {
    double m = -INFINITY, z = 0;
    for (int32_t i = 0; i < n; i++)
        m = l[i] > m ? l[i] : m;
    for (int32_t i = 0; i < n; i++)
        z += exp(l[i] - m);
    return m + log(z);
}

static slim_context *score_ctx(const slim_model *m, int32_t n_ctx, const slim_token *p, size_t n) {
    slim_context_params cp = slim_context_default_params();
    cp.n_ctx = n_ctx;
    cp.n_threads = 2;
    slim_context *ctx = NULL;
    ck_assert_int_eq(slim_context_create(m, &cp, &ctx), SLIM_OK);
    ck_assert_int_eq(slim_prefill(ctx, p, n, NULL), SLIM_OK);
    return ctx;
}

/* Scores against prefilling each candidate after the prompt and summing the
 * log-softmax by hand; bitwise the same alone, together and in a small
 * context that must split the trie into waves; the context left as it was. */
START_TEST(test_api_score) {
    slim_model *model = api_model();
    if (!model) return;
    const int32_t V = n_vocab_of(model);
    const char *prompt = "Q: What is the capital of France?\nA: The capital of France is";
    const char *const c[] = {" Paris",         " London", " Paris, the city of light",
                             " Paris, France", " Rome",   " the city of Paris",
                             " Paris",         "!"};
    enum { K = sizeof c / sizeof c[0] };
    slim_token pt[64];
    size_t np = 0;
    ck_assert_int_eq(
        slim_tokenize(model, prompt, strlen(prompt), SLIM_TOKENIZE_ADD_BOS, pt, 64, &np), SLIM_OK);
    slim_context *ctx = score_ctx(model, 512, pt, np);
    float *l0 = malloc((size_t)V * sizeof *l0);
    memcpy(l0, slim_get_logits(ctx), (size_t)V * sizeof *l0);
    slim_score_result res[K], one[1], small[K];
    float per[256];
    slim_score_output out = {
        .struct_size = sizeof out, .results = res, .token_logprobs = per, .token_cap = 256};
    ck_assert_int_eq(slim_score(ctx, c, K, NULL, &out), SLIM_OK);
    ck_assert_int_eq(slim_context_n_past(ctx), (int32_t)np);
    ck_assert_int_eq(memcmp(slim_get_logits(ctx), l0, (size_t)V * sizeof *l0), 0);
    double psum = 0;
    for (int k = 0; k < K; k++) {
        psum += res[k].prob;
        ck_assert(res[k].logprob <= res[out.argmax].logprob);
    }
    ck_assert_double_eq_tol(psum, 1.0, 1e-9);
    ck_assert_int_eq(out.argmax, 0); /* " Paris" (its duplicate later loses the tie) */
    ck_assert(res[6].logprob == res[0].logprob);

    /* the reference: each candidate prefilled after the prompt */
    float *rows = malloc((size_t)32 * V * sizeof *rows);
    for (int k = 0; k < K; k++) {
        slim_token ct[32];
        size_t nc = 0;
        ck_assert_int_eq(slim_tokenize(model, c[k], strlen(c[k]), 0, ct, 32, &nc), SLIM_OK);
        ck_assert_int_eq(res[k].n_tokens, (int32_t)nc);
        double sum = ct[0] >= 0 ? l0[ct[0]] - ref_lse(l0, V) : 0;
        ck_assert_double_eq_tol(per[res[k].first_token], sum, 1e-4);
        if (nc > 1) {
            ck_assert_int_eq(slim_context_truncate(ctx, (int32_t)np), SLIM_OK);
            ck_assert_int_eq(slim_prefill(ctx, ct, nc - 1, rows), SLIM_OK);
            for (size_t j = 1; j < nc; j++) {
                const float *l = rows + (j - 1) * (size_t)V;
                const double lp = l[ct[j]] - ref_lse(l, V);
                ck_assert_double_eq_tol(per[res[k].first_token + (int32_t)j], lp, 1e-4);
                sum += lp;
            }
        }
        ck_assert_msg(fabs(res[k].logprob - sum) < 1e-3, "%s: %f vs %f", c[k], res[k].logprob, sum);
    }
    /* alone: bitwise the same */
    ck_assert_int_eq(slim_context_truncate(ctx, (int32_t)np - 1), SLIM_OK);
    ck_assert_int_eq(slim_decode(ctx, pt[np - 1]), SLIM_OK);
    for (int k = 0; k < K; k++) {
        slim_score_output o1 = {.struct_size = sizeof o1, .results = one};
        ck_assert_int_eq(slim_score(ctx, &c[k], 1, NULL, &o1), SLIM_OK);
        ck_assert_msg(one[0].logprob == res[k].logprob, "%s alone %.9g, with the others %.9g", c[k],
                      one[0].logprob, res[k].logprob);
        ck_assert(one[0].prob == 1.0);
    }
    /* a context of np + 100 positions: few free blocks, the trie in waves */
    slim_context *tiny = score_ctx(model, (int32_t)np + 100, pt, np);
    slim_score_output os = {.struct_size = sizeof os, .results = small};
    ck_assert_msg(slim_score(tiny, c, K, NULL, &os) == SLIM_OK, "%s", slim_last_error());
    for (int k = 0; k < K; k++)
        ck_assert_msg(small[k].logprob == res[k].logprob, "%s: %.9g in the small context, %.9g",
                      c[k], small[k].logprob, res[k].logprob);
    ck_assert_uint_eq(os.n_tokens, out.n_tokens);
    /* errors */
    const char *const bad[] = {" ok", ""};
    ck_assert_int_eq(slim_score(ctx, bad, 2, NULL, &os), SLIM_ERR_INVALID_ARG);
    ck_assert_msg(strstr(slim_last_error(), "candidate 1 is empty"), "%s", slim_last_error());
    slim_context_reset(tiny);
    ck_assert_int_eq(slim_score(tiny, c, K, NULL, &os), SLIM_ERR_INVALID_ARG);
    free(rows);
    free(l0);
    slim_context_free(tiny);
    slim_context_free(ctx);
    slim_model_free(model);
}
END_TEST

Suite *suite_constrain(void) {
    Suite *s = suite_create("constrain");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 600); /* test_mask_real_vocab under ASan on a loaded machine */
    tcase_add_test(tc, test_gbnf_lang);
    tcase_add_test(tc, test_gbnf_errors);
    tcase_add_test(tc, test_regex);
    tcase_add_test(tc, test_mask_work_bound);
    tcase_add_test(tc, test_choices_json_any);
    tcase_add_test(tc, test_mask_brute_force);
    tcase_add_test(tc, test_mask_shared_counts);
    tcase_add_test(tc, test_schema_keywords);
    tcase_add_test(tc, test_schema_errors);
    tcase_add_test(tc, test_mask_real_vocab);
    suite_add_tcase(s, tc);
    tc = tcase_create("api");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_api_compile_errors_cache);
    tcase_add_test(tc, test_api_generate);
    tcase_add_test(tc, test_api_engine);
    tcase_add_test(tc, test_api_score);
    suite_add_tcase(s, tc);
    return s;
}
