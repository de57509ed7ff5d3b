/* Chat templates (lib/runtime/chat.c) against jinja2's renderings of the real
 * templates (tests/data/chat_golden.txt, tools/golden/gen_chat.py); family
 * detection and overrides; argument and buffer conventions; slim_token_is_eog;
 * slim_context_truncate; and `slim chat` driven by a script. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "runtime/chat.h"
#include "slim.h"
#include "suites.h"

#define GOLDEN "tests/data/chat_golden.txt"

/* ---- the golden file -------------------------------------------------------- */

static int hexval(int c) {
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Decode n hex digits at s into a malloc'd NUL-terminated string. */
static char *unhex(const char *s, size_t n, size_t *len) {
    ck_assert_msg(n % 2 == 0, "odd hex field");
    char *out = malloc(n / 2 + 1);
    ck_assert_ptr_nonnull(out);
    for (size_t i = 0; i < n / 2; i++) {
        int hi = hexval(s[2 * i]), lo = hexval(s[2 * i + 1]);
        ck_assert_msg(hi >= 0 && lo >= 0, "bad hex");
        out[i] = (char)(hi << 4 | lo);
    }
    out[n / 2] = '\0';
    if (len) *len = n / 2;
    return out;
}

/* Split a line at tabs in place; returns the field count. */
static size_t split(char *line, char sep, char **f, size_t max) {
    size_t n = 0;
    f[n++] = line;
    for (char *p = line; *p && n < max; p++)
        if (*p == sep) *p = '\0', f[n++] = p + 1;
    return n;
}

typedef struct tmpl_entry {
    char name[64];
    char *text;
    size_t len;
} tmpl_entry;

START_TEST(test_chat_golden) {
    FILE *f = fopen(GOLDEN, "r");
    ck_assert_msg(f != NULL, "cannot open %s (run from the repository root)", GOLDEN);
    tmpl_entry tmpls[32];
    size_t n_tmpl = 0, n_conv = 0, n_err = 0;
    char *line = NULL;
    size_t cap = 0;
    ssize_t got;
    while ((got = getline(&line, &cap, f)) > 0) {
        if (line[got - 1] == '\n') line[--got] = '\0';
        if (line[0] == '#' || !line[0]) continue;
        char *fld[8];
        size_t nf = split(line, '\t', fld, 8);
        if (!strcmp(fld[0], "T")) {
            ck_assert_uint_eq(nf, 4);
            ck_assert_uint_lt(n_tmpl, 32);
            tmpl_entry *t = &tmpls[n_tmpl++];
            snprintf(t->name, sizeof t->name, "%s", fld[1]);
            t->text = unhex(fld[3], strlen(fld[3]), &t->len);
            const char *why = NULL;
            slim_chat_family fam = slim_chat_detect(t->text, t->len, &why);
            ck_assert_msg(fam == slim_chat_family_from_name(fld[2]),
                          "template %s: detected %s, expected %s (%s)", fld[1],
                          slim_chat_family_name(fam) ? slim_chat_family_name(fam) : "none", fld[2],
                          why ? why : "");
            continue;
        }
        ck_assert_str_eq(fld[0], "C");
        ck_assert_uint_eq(nf, 6);
        tmpl_entry *t = NULL;
        for (size_t i = 0; i < n_tmpl; i++)
            if (!strcmp(tmpls[i].name, fld[1])) t = &tmpls[i];
        ck_assert_msg(t != NULL, "conversation for unknown template %s", fld[1]);
        char *roles[16], *contents[16];
        size_t nr = split(fld[3], ',', roles, 16);
        size_t nc = !strcmp(fld[4], "-") ? 0 : split(fld[4], ',', contents, 16);
        ck_assert(nc == nr || nc == 0);
        slim_chat_message msgs[16];
        char *owned[16];
        for (size_t i = 0; i < nr; i++) {
            owned[i] = nc ? unhex(contents[i], strlen(contents[i]), NULL) : unhex("", 0, NULL);
            msgs[i] = (slim_chat_message){roles[i], owned[i]};
        }
        const int add_gen = fld[2][0] == '1';
        size_t need = 0;
        slim_status st =
            slim_chat_render_template(t->text, t->len, NULL, msgs, nr, add_gen, NULL, 0, &need);
        if (!strcmp(fld[5], "ERR")) {
            ck_assert_msg(st == SLIM_ERR_INVALID_ARG, "%s %s: jinja2 raises, slim gives status %d",
                          fld[1], fld[3], st);
            n_err++;
        } else {
            size_t want_len;
            char *want = unhex(fld[5], strlen(fld[5]), &want_len);
            ck_assert_msg(st == SLIM_OK, "%s %s: %s", fld[1], fld[3], slim_last_error());
            ck_assert_uint_eq(need, want_len);
            char *got_buf = malloc(need + 1);
            size_t n = 0;
            ck_assert_int_eq(slim_chat_render_template(t->text, t->len, NULL, msgs, nr, add_gen,
                                                       got_buf, need, &n),
                             SLIM_OK);
            got_buf[n] = '\0';
            ck_assert_msg(n == want_len && !memcmp(got_buf, want, n),
                          "template %s, roles %s, add_gen %d:\nslim:   [%s]\njinja2: [%s]", fld[1],
                          fld[3], add_gen, got_buf, want);
            /* the same through an override holding the template text */
            ck_assert_int_eq(
                slim_chat_render_template(NULL, 0, t->text, msgs, nr, add_gen, got_buf, need, &n),
                SLIM_OK);
            ck_assert(n == want_len && !memcmp(got_buf, want, n));
            free(got_buf);
            free(want);
        }
        for (size_t i = 0; i < nr; i++)
            free(owned[i]);
        n_conv++;
    }
    free(line);
    fclose(f);
    for (size_t i = 0; i < n_tmpl; i++)
        free(tmpls[i].text);
    /* every family, at least 5 conversations each */
    ck_assert_uint_ge(n_tmpl, 7);
    ck_assert_uint_ge(n_conv, 5 * n_tmpl);
    ck_assert_uint_gt(n_err, 0);
}
END_TEST

/* ---- detection, names, overrides ------------------------------------------ */

static slim_chat_family det(const char *t) { return slim_chat_detect(t, strlen(t), NULL); }

START_TEST(test_chat_detect) {
    ck_assert_int_eq(det("{{'<|im_start|>' + role}}"), SLIM_CHAT_CHATML);
    ck_assert_int_eq(det("<|im_start|>system<|im_sep|>"), SLIM_CHAT_PHI4);
    ck_assert_int_eq(det("<|start_header_id|>x<|end_header_id|>"), SLIM_CHAT_LLAMA3);
    ck_assert_int_eq(det("<start_of_turn>user"), SLIM_CHAT_GEMMA);
    ck_assert_int_eq(det("<|user|>\n{{c}}<|end|>"), SLIM_CHAT_PHI3);
    ck_assert_int_eq(det("[AVAILABLE_TOOLS] \"[INST] \""), SLIM_CHAT_MISTRAL_V3);
    ck_assert_int_eq(det("[AVAILABLE_TOOLS][\"[INST]\""), SLIM_CHAT_MISTRAL_TEKKEN);
    const char *why = NULL;
    ck_assert_int_eq(slim_chat_detect("hello {{ x }}", 13, &why), SLIM_CHAT_UNKNOWN);
    ck_assert_str_eq(why, "");
    const char *vlm = "<|im_start|>User:<end_of_utterance>";
    ck_assert_int_eq(slim_chat_detect(vlm, strlen(vlm), &why), SLIM_CHAT_UNKNOWN);
    ck_assert_ptr_nonnull(strstr(why, "SmolVLM"));
    const char *v7 = "[SYSTEM_PROMPT] [INST]";
    ck_assert_int_eq(slim_chat_detect(v7, strlen(v7), &why), SLIM_CHAT_UNKNOWN);
    ck_assert_ptr_nonnull(strstr(why, "v7"));
    const char *l2 = "{{ '[INST] ' + content + ' [/INST]' }}";
    ck_assert_int_eq(slim_chat_detect(l2, strlen(l2), &why), SLIM_CHAT_UNKNOWN);
    ck_assert_ptr_nonnull(strstr(why, "[INST]"));
    ck_assert_int_eq(slim_chat_detect(NULL, 0, NULL), SLIM_CHAT_UNKNOWN);
    /* a needle must lie inside len */
    ck_assert_int_eq(slim_chat_detect("<start_of_turn>", 5, NULL), SLIM_CHAT_UNKNOWN);

    const char *names[] = {"chatml",         "llama3", "gemma", "mistral-v3",
                           "mistral-tekken", "phi3",   "phi4"};
    for (size_t i = 0; i < 7; i++) {
        slim_chat_family f = slim_chat_family_from_name(names[i]);
        ck_assert_int_ne(f, SLIM_CHAT_UNKNOWN);
        ck_assert_str_eq(slim_chat_family_name(f), names[i]);
        slim_chat_family r;
        ck_assert_int_eq(slim_chat_resolve("<start_of_turn>", 15, names[i], &r), SLIM_OK);
        ck_assert_int_eq(r, f); /* the override wins over the template */
    }
    ck_assert_int_eq(slim_chat_family_from_name("ChatML"), SLIM_CHAT_UNKNOWN);
    ck_assert_int_eq(slim_chat_family_from_name(NULL), SLIM_CHAT_UNKNOWN);
    ck_assert_ptr_null(slim_chat_family_name(SLIM_CHAT_UNKNOWN));

    slim_chat_family r;
    ck_assert_int_eq(slim_chat_resolve(NULL, 0, "<|im_start|>", &r), SLIM_OK);
    ck_assert_int_eq(r, SLIM_CHAT_CHATML);
    ck_assert_int_eq(slim_chat_resolve("<|im_start|>", 12, "", &r), SLIM_OK); /* "": none */
    ck_assert_int_eq(r, SLIM_CHAT_CHATML);
    ck_assert_int_eq(slim_chat_resolve(NULL, 0, NULL, &r), SLIM_ERR_UNSUPPORTED);
    ck_assert_ptr_nonnull(strstr(slim_last_error(), "no tokenizer.chat_template"));
    ck_assert_int_eq(slim_chat_resolve("{{ x }}", 7, NULL, &r), SLIM_ERR_UNSUPPORTED);
    ck_assert_ptr_nonnull(strstr(slim_last_error(), "chatml"));
    ck_assert_int_eq(slim_chat_resolve(NULL, 0, "vicuna", &r), SLIM_ERR_UNSUPPORTED);
    ck_assert_ptr_nonnull(strstr(slim_last_error(), "vicuna"));
}
END_TEST

START_TEST(test_chat_default_system) {
    size_t n = 0;
    /* SmolLM2's form: a real newline after the role */
    const char *smol = "{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>"
                       "system\nYou are SmolLM<|im_end|>\n' }}{% endif %}";
    char *s = slim_chat_default_system(smol, strlen(smol), &n);
    ck_assert_ptr_nonnull(s);
    ck_assert_str_eq(s, "You are SmolLM");
    ck_assert_uint_eq(n, 14);
    free(s);
    /* the escaped form, with an escape inside, after a non-literal use */
    const char *qwen =
        "{{- '<|im_start|>system\\n' + messages[0]['content'] + '<|im_end|>\\n' }}"
        "{%- else %}{{- '<|im_start|>system\\nYou are \\'Q\\'.\\tOK<|im_end|>\\n' }}";
    s = slim_chat_default_system(qwen, strlen(qwen), &n);
    ck_assert_ptr_nonnull(s);
    ck_assert_str_eq(s, "You are 'Q'.\tOK");
    free(s);
    const char *plain = "{{'<|im_start|>' + message['role'] + '\\n' + message['content']}}";
    ck_assert_ptr_null(slim_chat_default_system(plain, strlen(plain), &n));
    ck_assert_ptr_null(slim_chat_default_system(NULL, 0, &n));

    /* rendered: inserted only when the first message is not a system one */
    slim_chat_message u = {"user", "Hi"}, sy[2] = {{"system", "S"}, {"user", "Hi"}};
    char buf[256];
    ck_assert_int_eq(slim_chat_render_template(smol, strlen(smol), NULL, &u, 1, 1, buf, 255, &n),
                     SLIM_OK);
    buf[n] = '\0';
    ck_assert_str_eq(buf, "<|im_start|>system\nYou are SmolLM<|im_end|>\n<|im_start|>user\nHi"
                          "<|im_end|>\n<|im_start|>assistant\n");
    ck_assert_int_eq(slim_chat_render_template(smol, strlen(smol), NULL, sy, 2, 0, buf, 255, &n),
                     SLIM_OK);
    buf[n] = '\0';
    ck_assert_str_eq(buf, "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n");
    /* "chatml" named over a ChatML template still takes its default prompt ... */
    ck_assert_int_eq(
        slim_chat_render_template(smol, strlen(smol), "chatml", &u, 1, 0, buf, 255, &n), SLIM_OK);
    buf[n] = '\0';
    ck_assert_str_eq(buf, "<|im_start|>system\nYou are SmolLM<|im_end|>\n<|im_start|>user\nHi"
                          "<|im_end|>\n");
    /* ... but over no template, or another family's, there is none */
    ck_assert_int_eq(slim_chat_render_template(NULL, 0, "chatml", &u, 1, 0, buf, 255, &n), SLIM_OK);
    buf[n] = '\0';
    ck_assert_str_eq(buf, "<|im_start|>user\nHi<|im_end|>\n");
    ck_assert_int_eq(
        slim_chat_render_template("<start_of_turn>", 15, "chatml", &u, 1, 0, buf, 255, &n),
        SLIM_OK);
    ck_assert_uint_eq(n, 30);
    /* no messages: nothing but the assistant prompt */
    ck_assert_int_eq(slim_chat_render_template(smol, strlen(smol), NULL, NULL, 0, 1, buf, 255, &n),
                     SLIM_OK);
    buf[n] = '\0';
    ck_assert_str_eq(buf, "<|im_start|>assistant\n");
}
END_TEST

/* ---- arguments and buffers ------------------------------------------------- */

START_TEST(test_chat_args) {
    slim_chat_message ok[2] = {{"user", "Hello"}, {"assistant", "Hi"}};
    char buf[64];
    size_t n = 12345;
    const char *fams[] = {"chatml",         "llama3", "gemma", "mistral-v3",
                          "mistral-tekken", "phi3",   "phi4"};
    for (size_t i = 0; i < 7; i++) {
        slim_chat_message bad[2] = {{"user", "Hello"}, {"tool", "x"}};
        ck_assert_int_eq(slim_chat_render_template(NULL, 0, fams[i], bad, 2, 1, buf, 64, &n),
                         SLIM_ERR_INVALID_ARG);
        ck_assert_ptr_nonnull(strstr(slim_last_error(), "'tool'"));
        bad[1].role = NULL;
        ck_assert_int_eq(slim_chat_render_template(NULL, 0, fams[i], bad, 2, 1, buf, 64, &n),
                         SLIM_ERR_INVALID_ARG);
        bad[1] = (slim_chat_message){"assistant", NULL};
        ck_assert_int_eq(slim_chat_render_template(NULL, 0, fams[i], bad, 2, 1, buf, 64, &n),
                         SLIM_ERR_INVALID_ARG);
        ck_assert_int_eq(slim_chat_render_template(NULL, 0, fams[i], ok, 2, 1, buf, 64, NULL),
                         SLIM_ERR_INVALID_ARG);
        ck_assert_int_eq(slim_chat_render_template(NULL, 0, fams[i], ok, 2, 1, NULL, 5, &n),
                         SLIM_ERR_INVALID_ARG);
        ck_assert_int_eq(slim_chat_render_template(NULL, 0, fams[i], NULL, 2, 1, buf, 64, &n),
                         SLIM_ERR_INVALID_ARG);
        /* size query, then a short buffer: the first cap bytes and the size */
        size_t need = 0;
        ck_assert_int_eq(slim_chat_render_template(NULL, 0, fams[i], ok, 2, 1, NULL, 0, &need),
                         SLIM_OK);
        ck_assert_uint_gt(need, 8);
        char *full = malloc(need);
        ck_assert_int_eq(slim_chat_render_template(NULL, 0, fams[i], ok, 2, 1, full, need, &n),
                         SLIM_OK);
        ck_assert_uint_eq(n, need);
        memset(buf, 'Z', sizeof buf);
        ck_assert_int_eq(slim_chat_render_template(NULL, 0, fams[i], ok, 2, 1, buf, 5, &n),
                         SLIM_ERR_BUFFER_TOO_SMALL);
        ck_assert_uint_eq(n, need);
        ck_assert(!memcmp(buf, full, 5));
        ck_assert_int_eq(buf[5], 'Z');
        free(full);
    }
    /* Gemma and Mistral: alternation after an optional system message */
    slim_chat_message two_users[2] = {{"user", "a"}, {"user", "b"}};
    ck_assert_int_eq(slim_chat_render_template(NULL, 0, "gemma", two_users, 2, 1, buf, 64, &n),
                     SLIM_ERR_INVALID_ARG);
    ck_assert_ptr_nonnull(strstr(slim_last_error(), "alternate"));
    ck_assert_int_eq(slim_chat_render_template(NULL, 0, "mistral-v3", NULL, 0, 1, buf, 64, &n),
                     SLIM_ERR_INVALID_ARG);
    ck_assert_int_eq(slim_chat_render_template(NULL, 0, "chatml", two_users, 2, 1, NULL, 0, &n),
                     SLIM_OK);
    /* unknown family */
    ck_assert_int_eq(slim_chat_render_template(NULL, 0, "nope", ok, 2, 1, buf, 64, &n),
                     SLIM_ERR_UNSUPPORTED);
}
END_TEST

/* ---- with the default (Gemma 3 base) model --------------------------------- */

static slim_model *g_model;

static void chat_setup(void) {
    if (slim_model_load(test_model_path(), NULL, &g_model) != SLIM_OK) g_model = NULL;
}
static void chat_teardown(void) {
    slim_model_free(g_model);
    g_model = NULL;
}

START_TEST(test_chat_model_api) {
    ck_assert_msg(g_model != NULL, "cannot load %s", test_model_path());
    const char *name = "x";
    /* gemma-3-270m (base) carries no chat template */
    ck_assert_int_eq(slim_chat_template_name(g_model, NULL, &name), SLIM_ERR_UNSUPPORTED);
    ck_assert_int_eq(slim_chat_template_name(g_model, "gemma", &name), SLIM_OK);
    ck_assert_str_eq(name, "gemma");
    ck_assert_int_eq(slim_chat_template_name(g_model, "<|im_start|>", &name), SLIM_OK);
    ck_assert_str_eq(name, "chatml");
    ck_assert_int_eq(slim_chat_template_name(NULL, "gemma", &name), SLIM_ERR_INVALID_ARG);
    ck_assert_int_eq(slim_chat_template_name(g_model, "gemma", NULL), SLIM_ERR_INVALID_ARG);

    slim_chat_message m[2] = {{"system", "Be brief."}, {"user", " Hi "}};
    char buf[128];
    size_t n = 0;
    ck_assert_int_eq(slim_chat_render(g_model, NULL, m, 2, 1, buf, 127, &n), SLIM_ERR_UNSUPPORTED);
    ck_assert_int_eq(slim_chat_render(NULL, "gemma", m, 2, 1, buf, 127, &n), SLIM_ERR_INVALID_ARG);
    ck_assert_int_eq(slim_chat_render(g_model, "gemma", m, 2, 1, buf, 127, &n), SLIM_OK);
    buf[n] = '\0';
    ck_assert_str_eq(buf, "<start_of_turn>user\nBe brief.\n\nHi<end_of_turn>\n"
                          "<start_of_turn>model\n");
    /* the rendering tokenizes to the turn tokens (BOS from the vocabulary) */
    slim_token toks[64];
    size_t nt = 0;
    ck_assert_int_eq(slim_tokenize(g_model, buf, n,
                                   SLIM_TOKENIZE_ADD_BOS | SLIM_TOKENIZE_PARSE_SPECIAL, toks, 64,
                                   &nt),
                     SLIM_OK);
    ck_assert_uint_gt(nt, 4);
    ck_assert_int_eq(toks[0], 2);   /* <bos> */
    ck_assert_int_eq(toks[1], 105); /* <start_of_turn> */

    /* end-of-generation tokens */
    ck_assert_int_eq(slim_token_is_eog(g_model, 1), 1);   /* <eos> */
    ck_assert_int_eq(slim_token_is_eog(g_model, 106), 1); /* <end_of_turn> */
    ck_assert_int_eq(slim_token_is_eog(g_model, 2), 0);
    ck_assert_int_eq(slim_token_is_eog(g_model, 105), 0);
    ck_assert_int_eq(slim_token_is_eog(g_model, -1), 0);
    ck_assert_int_eq(slim_token_is_eog(g_model, 1 << 30), 0);
    ck_assert_int_eq(slim_token_is_eog(NULL, 1), 0);
}
END_TEST

START_TEST(test_context_truncate) {
    ck_assert_msg(g_model != NULL, "cannot load %s", test_model_path());
    slim_context_params cp = slim_context_default_params();
    cp.n_ctx = 64;
    cp.n_threads = 2;
    slim_context *a = NULL, *b = NULL;
    ck_assert_int_eq(slim_context_create(g_model, &cp, &a), SLIM_OK);
    ck_assert_int_eq(slim_context_create(g_model, &cp, &b), SLIM_OK);
    const char *text = "The quick brown fox jumps over the lazy dog again and again";
    slim_token t[32];
    size_t n = 0;
    ck_assert_int_eq(slim_tokenize(g_model, text, strlen(text), SLIM_TOKENIZE_ADD_BOS, t, 32, &n),
                     SLIM_OK);
    ck_assert_uint_ge(n, 8);
    slim_model_info info = {.struct_size = sizeof info};
    slim_model_get_info(g_model, &info);
    const size_t nv = (size_t)info.n_vocab;

    ck_assert_int_eq(slim_context_truncate(NULL, 0), SLIM_ERR_INVALID_ARG);
    ck_assert_int_eq(slim_context_truncate(a, 1), SLIM_ERR_INVALID_ARG); /* beyond n_past 0 */
    ck_assert_int_eq(slim_context_truncate(a, 0), SLIM_OK);

    ck_assert_int_eq(slim_prefill(a, t, 8, NULL), SLIM_OK);
    ck_assert_int_eq(slim_context_truncate(a, -1), SLIM_ERR_INVALID_ARG);
    ck_assert_int_eq(slim_context_truncate(a, 9), SLIM_ERR_INVALID_ARG);
    ck_assert_int_eq(slim_context_n_past(a), 8);
    ck_assert_ptr_nonnull(slim_get_logits(a));
    ck_assert_int_eq(slim_context_truncate(a, 8), SLIM_OK); /* no-op keeps the logits */
    ck_assert_ptr_nonnull(slim_get_logits(a));
    ck_assert_int_eq(slim_context_truncate(a, 5), SLIM_OK);
    ck_assert_int_eq(slim_context_n_past(a), 5);
    ck_assert_ptr_null(slim_get_logits(a));

    /* re-decoding token 5 after the truncation is the same as a fresh run */
    ck_assert_int_eq(slim_decode(a, t[5]), SLIM_OK);
    ck_assert_int_eq(slim_prefill(b, t, 5, NULL), SLIM_OK);
    ck_assert_int_eq(slim_decode(b, t[5]), SLIM_OK);
    ck_assert_int_eq(slim_context_n_past(a), 6);
    ck_assert_msg(!memcmp(slim_get_logits(a), slim_get_logits(b), nv * sizeof(float)),
                  "logits after truncate + decode differ from a fresh prefill + decode");
    /* and a different continuation after a truncation sees none of the old one */
    ck_assert_int_eq(slim_context_truncate(a, 3), SLIM_OK);
    ck_assert_int_eq(slim_prefill(a, t + 5, 3, NULL), SLIM_OK);
    slim_context_reset(b);
    slim_token mix[6] = {t[0], t[1], t[2], t[5], t[6], t[7]};
    ck_assert_int_eq(slim_prefill(b, mix, 3, NULL), SLIM_OK);
    ck_assert_int_eq(slim_prefill(b, mix + 3, 3, NULL), SLIM_OK);
    ck_assert(!memcmp(slim_get_logits(a), slim_get_logits(b), nv * sizeof(float)));
    /* truncating to 0 is a reset */
    ck_assert_int_eq(slim_context_truncate(a, 0), SLIM_OK);
    ck_assert_int_eq(slim_context_n_past(a), 0);
    slim_context_free(a);
    slim_context_free(b);
}
END_TEST

/* ---- `slim chat` on SmolLM2-135M-Instruct, driven by a script --------------- */

static const char *cli_path(void) {
    const char *p = getenv("SLIM_CLI");
    return p && *p ? p : "build/slim";
}

static char *slurp_path(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    ck_assert_msg(f != NULL, "cannot read %s", path);
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc((size_t)size + 1);
    ck_assert_uint_eq(fread(b, 1, (size_t)size, f), (size_t)size);
    b[size] = '\0';
    fclose(f);
    *n = (size_t)size;
    return b;
}

/* The next "--- WHAT N: BYTES bytes\n" record of a --dump-prompt file. */
static char *dump_next(const char **p, const char *end, const char *what, int turn, size_t *len) {
    char head[64];
    int hn = snprintf(head, sizeof head, "--- %s %d: ", what, turn);
    ck_assert_msg(end - *p > hn && !memcmp(*p, head, (size_t)hn), "dump: no '%s' at [%.40s]", head,
                  *p);
    char *e;
    unsigned long long n = strtoull(*p + hn, &e, 10);
    ck_assert(!strncmp(e, " bytes\n", 7));
    const char *body = e + 7;
    ck_assert_msg(body + n + 1 <= end && body[n] == '\n', "dump: truncated record");
    char *s = malloc(n + 1);
    memcpy(s, body, n);
    s[n] = '\0';
    *len = (size_t)n;
    *p = body + n + 1;
    return s;
}

START_TEST(test_chat_cli_smollm2) {
    const char *model_path = test_model_path_smollm2();
    slim_model *m = NULL;
    ck_assert_msg(slim_model_load(model_path, NULL, &m) == SLIM_OK, "%s: %s", model_path,
                  slim_last_error());
    const char *name = NULL;
    ck_assert_int_eq(slim_chat_template_name(m, NULL, &name), SLIM_OK);
    ck_assert_str_eq(name, "chatml");

    static const char *const users[3] = {"What is the capital of France?", "And of Italy?",
                                         "Thanks. Say goodbye."};
    char in_path[] = "/tmp/slim_test_chat_in_XXXXXX", out_path[] = "/tmp/slim_test_chat_out_XXXXXX",
         err_path[] = "/tmp/slim_test_chat_err_XXXXXX",
         dump_path[] = "/tmp/slim_test_chat_dump_XXXXXX";
    int in_fd = mkstemp(in_path), out_fd = mkstemp(out_path), err_fd = mkstemp(err_path),
        dump_fd = mkstemp(dump_path);
    ck_assert(in_fd >= 0 && out_fd >= 0 && err_fd >= 0 && dump_fd >= 0);
    close(dump_fd);
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(write(in_fd, users[i], strlen(users[i])), (ssize_t)strlen(users[i]));
        ck_assert_int_eq(write(in_fd, "\n", 1), 1);
    }
    lseek(in_fd, 0, SEEK_SET);
    ck_assert_msg(access(cli_path(), X_OK) == 0, "CLI %s not found (set SLIM_CLI)", cli_path());
    fflush(NULL);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        dup2(in_fd, STDIN_FILENO);
        dup2(out_fd, STDOUT_FILENO);
        dup2(err_fd, STDERR_FILENO);
        execl(cli_path(), cli_path(), "chat", "-m", model_path, "--temp", "0", "-n", "24", "-t",
              "2", "-c", "512", "--dump-prompt", dump_path, (char *)NULL);
        _exit(127);
    }
    int ws = 0;
    ck_assert_int_eq(waitpid(pid, &ws, 0), pid);
    size_t n_out, n_err, n_dump;
    char *out = slurp_path(out_path, &n_out), *err = slurp_path(err_path, &n_err),
         *dump = slurp_path(dump_path, &n_dump);
    unlink(in_path), unlink(out_path), unlink(err_path), unlink(dump_path);
    close(in_fd), close(out_fd), close(err_fd);
    ck_assert_msg(WIFEXITED(ws) && WEXITSTATUS(ws) == 0, "slim chat: status %d, stderr: %s", ws,
                  err);

    /* Each turn's prompt is the rendering of the conversation so far (the
     * renderer is jinja2's byte for byte: test_chat_golden, same template
     * shape); the replies recorded are what streamed to stdout. */
    slim_chat_message msgs[6];
    char *replies[3] = {0};
    const char *p = dump, *end = dump + n_dump;
    size_t off = 0;
    for (int turn = 1; turn <= 3; turn++) {
        msgs[2 * turn - 2] = (slim_chat_message){"user", users[turn - 1]};
        size_t len = 0, rlen = 0, want_len = 0;
        char *prompt = dump_next(&p, end, "prompt", turn, &len);
        ck_assert_int_eq(
            slim_chat_render(m, NULL, msgs, 2 * (size_t)turn - 1, 1, NULL, 0, &want_len), SLIM_OK);
        char *want = malloc(want_len + 1);
        ck_assert_int_eq(
            slim_chat_render(m, NULL, msgs, 2 * (size_t)turn - 1, 1, want, want_len, &want_len),
            SLIM_OK);
        ck_assert_msg(len == want_len && !memcmp(prompt, want, len),
                      "turn %d: fed\n[%s]\nexpected\n[%.*s]", turn, prompt, (int)want_len, want);
        if (turn == 1)
            ck_assert(!strncmp(prompt,
                               "<|im_start|>system\nYou are a helpful AI assistant "
                               "named SmolLM, trained by Hugging Face<|im_end|>\n",
                               90));
        replies[turn - 1] = dump_next(&p, end, "reply", turn, &rlen);
        ck_assert_msg(rlen > 0, "turn %d: empty reply", turn);
        ck_assert_msg(off + rlen + 1 <= n_out && !memcmp(out + off, replies[turn - 1], rlen) &&
                          out[off + rlen] == '\n',
                      "turn %d: stdout [%s] lacks the reply [%s]", turn, out + off,
                      replies[turn - 1]);
        off += rlen + 1;
        msgs[2 * turn - 1] = (slim_chat_message){"assistant", replies[turn - 1]};
        free(prompt);
        free(want);
    }
    ck_assert_uint_eq(off, n_out);
    ck_assert_ptr_eq(p, end);
    for (int i = 0; i < 3; i++)
        free(replies[i]);
    free(out), free(err), free(dump);
    slim_model_free(m);
}
END_TEST

START_TEST(test_chat_cli_usage) {
    char cmd[512];
    snprintf(cmd, sizeof cmd, "%s chat --help >/dev/null 2>&1", cli_path());
    ck_assert_int_eq(system(cmd), 0);
    snprintf(cmd, sizeof cmd, "%s chat </dev/null >/dev/null 2>&1", cli_path());
    ck_assert_int_eq(WEXITSTATUS(system(cmd)), 2);
    snprintf(cmd, sizeof cmd, "%s chat -m %s --frobnicate </dev/null >/dev/null 2>&1", cli_path(),
             test_model_path());
    ck_assert_int_eq(WEXITSTATUS(system(cmd)), 2);
    /* the base Gemma model has no template: exit 1 unless one is named */
    snprintf(cmd, sizeof cmd, "%s chat -m %s -t 2 </dev/null >/dev/null 2>&1", cli_path(),
             test_model_path());
    ck_assert_int_eq(WEXITSTATUS(system(cmd)), 1);
    snprintf(cmd, sizeof cmd, "%s chat -m %s -t 2 --template gemma </dev/null >/dev/null 2>&1",
             cli_path(), test_model_path());
    ck_assert_int_eq(WEXITSTATUS(system(cmd)), 0);
    snprintf(cmd, sizeof cmd,
             "%s run -m %s -t 2 -n 4 --temp 0 --chat --template gemma -p Hi >/dev/null 2>&1",
             cli_path(), test_model_path());
    ck_assert_int_eq(WEXITSTATUS(system(cmd)), 0);
}
END_TEST

Suite *suite_chat(void) {
    Suite *s = suite_create("chat");
    TCase *tc = tcase_create("templates");
    tcase_add_test(tc, test_chat_golden);
    tcase_add_test(tc, test_chat_detect);
    tcase_add_test(tc, test_chat_default_system);
    tcase_add_test(tc, test_chat_args);
    suite_add_tcase(s, tc);
    TCase *tm = tcase_create("model");
    tcase_add_unchecked_fixture(tm, chat_setup, chat_teardown);
    tcase_set_timeout(tm, 120);
    tcase_add_test(tm, test_chat_model_api);
    tcase_add_test(tm, test_context_truncate);
    tcase_add_test(tm, test_chat_cli_usage);
    tcase_add_test(tm, test_chat_cli_smollm2);
    suite_add_tcase(s, tm);
    return s;
}
