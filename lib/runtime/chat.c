/* Chat templates: family detection and rendering (see chat.h).  Each
 * family's rendering follows its official Jinja template (sources are named in
 * tools/golden/gen_chat.py) for plain string content; Jinja's `trim` is
 * Python's str.strip(), so Unicode whitespace is trimmed too. */
#include "runtime/chat.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "model/model.h"
#include "tokenizer/tokenizer.h"

static const struct {
    slim_chat_family f;
    const char *name;
} FAMILIES[] = {
    {SLIM_CHAT_CHATML, "chatml"},
    {SLIM_CHAT_LLAMA3, "llama3"},
    {SLIM_CHAT_GEMMA, "gemma"},
    {SLIM_CHAT_MISTRAL_V3, "mistral-v3"},
    {SLIM_CHAT_MISTRAL_TEKKEN, "mistral-tekken"},
    {SLIM_CHAT_PHI3, "phi3"},
    {SLIM_CHAT_PHI4, "phi4"},
};

const char *slim_chat_family_name(slim_chat_family f) {
    for (size_t i = 0; i < sizeof FAMILIES / sizeof FAMILIES[0]; i++)
        if (FAMILIES[i].f == f) return FAMILIES[i].name;
    return NULL;
}

slim_chat_family slim_chat_family_from_name(const char *name) {
    if (!name) return SLIM_CHAT_UNKNOWN;
    for (size_t i = 0; i < sizeof FAMILIES / sizeof FAMILIES[0]; i++)
        if (!strcmp(FAMILIES[i].name, name)) return FAMILIES[i].f;
    return SLIM_CHAT_UNKNOWN;
}

/* ---- detection ------------------------------------------------------------ */

static bool has(const char *t, size_t len, const char *needle) {
    size_t n = strlen(needle);
    if (n > len) return false;
    for (size_t i = 0; i + n <= len; i++)
        if (t[i] == needle[0] && !memcmp(t + i, needle, n)) return true;
    return false;
}

slim_chat_family slim_chat_detect(const char *t, size_t len, const char **why) {
    const char *dummy;
    if (!why) why = &dummy;
    *why = "";
    if (!t) return SLIM_CHAT_UNKNOWN;
    /* The order follows llama.cpp's llm_chat_detect_template, so that a
     * template it tells apart from a look-alike is told apart here too. */
    if (has(t, len, "<|im_start|>")) {
        if (has(t, len, "<|im_sep|>")) return SLIM_CHAT_PHI4;
        if (has(t, len, "<end_of_utterance>")) {
            *why = "SmolVLM (<|im_start|> with <end_of_utterance>) is not ChatML";
            return SLIM_CHAT_UNKNOWN;
        }
        return SLIM_CHAT_CHATML;
    }
    if ((len >= 7 && !memcmp(t, "mistral", 7)) || has(t, len, "[INST]")) {
        if (has(t, len, "[SYSTEM_PROMPT]")) {
            *why = "Mistral v7 ([SYSTEM_PROMPT]) templates are not supported";
            return SLIM_CHAT_UNKNOWN;
        }
        if (has(t, len, "' [INST] ' + system_message") || has(t, len, "[AVAILABLE_TOOLS]")) {
            if (has(t, len, " [INST]")) {
                *why = "Mistral v1 (' [INST] ') templates are not supported";
                return SLIM_CHAT_UNKNOWN;
            }
            /* v3 writes "[INST] " (a space inside the string), tekken "[INST]". */
            if (has(t, len, "\"[INST]\"")) return SLIM_CHAT_MISTRAL_TEKKEN;
            return SLIM_CHAT_MISTRAL_V3;
        }
        *why = "Llama 2 style [INST] templates are not supported";
        return SLIM_CHAT_UNKNOWN;
    }
    if (has(t, len, "<|end|>") && (has(t, len, "<|assistant|>") || has(t, len, "<|user|>")))
        return SLIM_CHAT_PHI3;
    if (has(t, len, "<start_of_turn>")) return SLIM_CHAT_GEMMA;
    if (has(t, len, "<|start_header_id|>") && has(t, len, "<|end_header_id|>"))
        return SLIM_CHAT_LLAMA3;
    return SLIM_CHAT_UNKNOWN;
}

/* ---- ChatML default system prompt ----------------------------------------- */

char *slim_chat_default_system(const char *t, size_t len, size_t *len_out) {
    static const char head[] = "<|im_start|>system", tail[] = "<|im_end|>";
    const size_t nh = sizeof head - 1, nt = sizeof tail - 1;
    if (!t) return NULL;
    for (size_t i = 0; i + nh <= len; i++) {
        if (memcmp(t + i, head, nh)) continue;
        size_t p = i + nh;
        /* the newline after the role: a real one or the escape \n */
        if (p < len && t[p] == '\n')
            p += 1;
        else if (p + 1 < len && t[p] == '\\' && t[p + 1] == 'n')
            p += 2;
        else
            continue;
        /* a string literal up to <|im_end|>: no quote may end it first */
        size_t e = p;
        bool literal = false;
        while (e + nt <= len) {
            if (!memcmp(t + e, tail, nt)) {
                literal = true;
                break;
            }
            if (t[e] == '\'' || t[e] == '"' || t[e] == '{' || t[e] == '}') break;
            e += (t[e] == '\\' && e + 1 < len) ? 2 : 1;
        }
        if (!literal || e == p) continue;
        char *out = malloc(e - p + 1);
        if (!out) return NULL;
        size_t n = 0;
        for (size_t k = p; k < e; k++) {
            char c = t[k];
            if (c == '\\' && k + 1 < e) {
                char d = t[++k];
                c = d == 'n' ? '\n' : d == 't' ? '\t' : d == 'r' ? '\r' : d;
            }
            out[n++] = c;
        }
        out[n] = '\0';
        *len_out = n;
        return out;
    }
    return NULL;
}

/* ---- rendering ------------------------------------------------------------ */

typedef struct sink {
    char *buf;
    size_t cap, n;
} sink;

static void put(sink *s, const char *p, size_t n) {
    if (s->n < s->cap) {
        size_t k = s->cap - s->n < n ? s->cap - s->n : n;
        memcpy(s->buf + s->n, p, k);
    }
    s->n += n;
}
static void puts_(sink *s, const char *p) { put(s, p, strlen(p)); }

/* Length of the UTF-8 character at p if it is whitespace to Python's
 * str.isspace(), else 0. */
static size_t space_at(const unsigned char *p, size_t n) {
    if (n == 0) return 0;
    unsigned c = p[0];
    if ((c >= 0x09 && c <= 0x0d) || (c >= 0x1c && c <= 0x20)) return 1;
    if (c == 0xc2 && n >= 2 && (p[1] == 0x85 || p[1] == 0xa0)) return 2;
    if (n < 3) return 0;
    unsigned cp = ((c & 0x0fu) << 12) | ((p[1] & 0x3fu) << 6) | (p[2] & 0x3fu);
    if ((c & 0xf0) != 0xe0 || (p[1] & 0xc0) != 0x80 || (p[2] & 0xc0) != 0x80) return 0;
    if (cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200a) || cp == 0x2028 || cp == 0x2029 ||
        cp == 0x202f || cp == 0x205f || cp == 0x3000)
        return 3;
    return 0;
}

/* The last whitespace character ending at p + n (its length), or 0. */
static size_t space_before(const unsigned char *p, size_t n) {
    for (size_t k = 1; k <= 3 && k <= n; k++)
        if (space_at(p + n - k, k) == k) return k;
    return 0;
}

static void put_trim(sink *s, const char *text) {
    const unsigned char *p = (const unsigned char *)text;
    size_t n = strlen(text), k;
    while ((k = space_at(p, n)) > 0)
        p += k, n -= k;
    while ((k = space_before(p, n)) > 0)
        n -= k;
    put(s, (const char *)p, n);
}

enum { R_SYSTEM, R_USER, R_ASSISTANT };

static int role_of(const char *r) {
    if (!strcmp(r, "system")) return R_SYSTEM;
    if (!strcmp(r, "user")) return R_USER;
    if (!strcmp(r, "assistant")) return R_ASSISTANT;
    return -1;
}

/* Gemma and Mistral: an optional leading system message, then user /
 * assistant alternating from user (their templates raise otherwise). */
static slim_status check_alternating(const int *roles, size_t n, const char *fam) {
    size_t first = n > 0 && roles[0] == R_SYSTEM ? 1 : 0;
    for (size_t i = first; i < n; i++)
        if (roles[i] != ((i - first) % 2 == 0 ? R_USER : R_ASSISTANT))
            return slim_error(SLIM_ERR_INVALID_ARG,
                              "slim_chat_render: %s: message %zu: after an optional system "
                              "message, roles must alternate user/assistant/user/...",
                              fam, i);
    return SLIM_OK;
}

static slim_status render(slim_chat_family f, const char *default_sys, const slim_chat_message *m,
                          const int *roles, size_t n, int add_ass, sink *s) {
    static const char *const NAMES[] = {"system", "user", "assistant"};
    slim_status st;
    switch (f) {
    case SLIM_CHAT_CHATML:
        /* SmolLM2 / Qwen: a default system message when the first is not one */
        if (default_sys && n > 0 && roles[0] != R_SYSTEM) {
            puts_(s, "<|im_start|>system\n");
            puts_(s, default_sys);
            puts_(s, "<|im_end|>\n");
        }
        for (size_t i = 0; i < n; i++) {
            puts_(s, "<|im_start|>");
            puts_(s, NAMES[roles[i]]);
            puts_(s, "\n");
            puts_(s, m[i].content);
            puts_(s, "<|im_end|>\n");
        }
        if (add_ass) puts_(s, "<|im_start|>assistant\n");
        return SLIM_OK;
    case SLIM_CHAT_LLAMA3: /* Meta-Llama-3-*-Instruct; bos_token left out */
        for (size_t i = 0; i < n; i++) {
            puts_(s, "<|start_header_id|>");
            puts_(s, NAMES[roles[i]]);
            puts_(s, "<|end_header_id|>\n\n");
            put_trim(s, m[i].content);
            puts_(s, "<|eot_id|>");
        }
        if (add_ass) puts_(s, "<|start_header_id|>assistant<|end_header_id|>\n\n");
        return SLIM_OK;
    case SLIM_CHAT_GEMMA: { /* gemma-3-*-it: the system text opens the first user turn */
        if (n == 0) return slim_error(SLIM_ERR_INVALID_ARG, "slim_chat_render: gemma: no messages");
        if ((st = check_alternating(roles, n, "gemma"))) return st;
        size_t first = roles[0] == R_SYSTEM ? 1 : 0;
        for (size_t i = first; i < n; i++) {
            puts_(s, roles[i] == R_ASSISTANT ? "<start_of_turn>model\n" : "<start_of_turn>user\n");
            if (i == first && first == 1) {
                puts_(s, m[0].content);
                puts_(s, "\n\n");
            }
            put_trim(s, m[i].content);
            puts_(s, "<end_of_turn>\n");
        }
        if (add_ass) puts_(s, "<start_of_turn>model\n");
        return SLIM_OK;
    }
    case SLIM_CHAT_MISTRAL_V3:
    case SLIM_CHAT_MISTRAL_TEKKEN: {
        /* Mistral-7B-Instruct-v0.3 / Mistral-Nemo-Instruct-2407: the system
         * message is prepended to the last message when that is a user one;
         * add_generation_prompt is not used. */
        const bool v3 = f == SLIM_CHAT_MISTRAL_V3;
        const char *fam = v3 ? "mistral-v3" : "mistral-tekken";
        if (n == 0)
            return slim_error(SLIM_ERR_INVALID_ARG, "slim_chat_render: %s: no messages", fam);
        if ((st = check_alternating(roles, n, fam))) return st;
        size_t first = roles[0] == R_SYSTEM ? 1 : 0;
        for (size_t i = first; i < n; i++) {
            if (roles[i] == R_USER) {
                puts_(s, v3 ? "[INST] " : "[INST]");
                if (i + 1 == n && first == 1) {
                    puts_(s, m[0].content);
                    puts_(s, "\n\n");
                }
                puts_(s, m[i].content);
                puts_(s, "[/INST]");
            } else if (v3) {
                puts_(s, " ");
                put_trim(s, m[i].content);
                puts_(s, "</s>");
            } else {
                puts_(s, m[i].content);
                puts_(s, "</s>");
            }
        }
        return SLIM_OK;
    }
    case SLIM_CHAT_PHI3: /* Phi-3.5-mini-instruct */
        for (size_t i = 0; i < n; i++) {
            if (roles[i] == R_SYSTEM && !m[i].content[0]) continue;
            puts_(s, "<|");
            puts_(s, NAMES[roles[i]]);
            puts_(s, "|>\n");
            puts_(s, m[i].content);
            puts_(s, "<|end|>\n");
        }
        puts_(s, add_ass ? "<|assistant|>\n" : "<|endoftext|>");
        return SLIM_OK;
    case SLIM_CHAT_PHI4: /* microsoft/phi-4: the assistant header follows every user turn */
        for (size_t i = 0; i < n; i++) {
            if (roles[i] == R_ASSISTANT) {
                puts_(s, m[i].content);
                puts_(s, "<|im_end|>");
                continue;
            }
            puts_(s, roles[i] == R_SYSTEM ? "<|im_start|>system<|im_sep|>"
                                          : "<|im_start|>user<|im_sep|>");
            puts_(s, m[i].content);
            puts_(s, roles[i] == R_SYSTEM ? "<|im_end|>"
                                          : "<|im_end|><|im_start|>assistant<|im_sep|>");
        }
        return SLIM_OK;
    default: return slim_error(SLIM_ERR_INTERNAL, "slim_chat_render: family %d", (int)f);
    }
}

slim_status slim_chat_resolve(const char *tmpl, size_t tmpl_len, const char *override,
                              slim_chat_family *out) {
    const char *why = "";
    slim_chat_family f;
    if (override && *override) {
        if ((f = slim_chat_family_from_name(override))) {
            *out = f;
            return SLIM_OK;
        }
        if ((f = slim_chat_detect(override, strlen(override), &why))) {
            *out = f;
            return SLIM_OK;
        }
        return slim_error(SLIM_ERR_UNSUPPORTED,
                          "chat template '%.60s%s' is neither a known family (chatml, llama3, "
                          "gemma, mistral-v3, mistral-tekken, phi3, phi4) nor a template of "
                          "one%s%s",
                          override, strlen(override) > 60 ? "..." : "", *why ? ": " : "", why);
    }
    if (!tmpl)
        return slim_error(SLIM_ERR_UNSUPPORTED,
                          "the model has no tokenizer.chat_template; name one (chatml, llama3, "
                          "gemma, mistral-v3, mistral-tekken, phi3, phi4)");
    if ((f = slim_chat_detect(tmpl, tmpl_len, &why))) {
        *out = f;
        return SLIM_OK;
    }
    return slim_error(SLIM_ERR_UNSUPPORTED,
                      "the model's chat template is of no family slim knows%s%s; name one "
                      "(chatml, llama3, gemma, mistral-v3, mistral-tekken, phi3, phi4)",
                      *why ? ": " : "", why);
}

slim_status slim_chat_render_template(const char *tmpl, size_t tmpl_len, const char *override,
                                      const slim_chat_message *msgs, size_t n_msgs,
                                      int add_assistant_prompt, char *buf, size_t cap,
                                      size_t *n_out) {
    if (!n_out) return slim_error(SLIM_ERR_INVALID_ARG, "slim_chat_render: n_out is NULL");
    if (!buf && cap)
        return slim_error(SLIM_ERR_INVALID_ARG, "slim_chat_render: buf is NULL with cap %zu", cap);
    if (!msgs && n_msgs) return slim_error(SLIM_ERR_INVALID_ARG, "slim_chat_render: msgs is NULL");
    if (n_msgs > ((size_t)1 << 24))
        return slim_error(SLIM_ERR_INVALID_ARG, "slim_chat_render: %zu messages", n_msgs);
    slim_chat_family f;
    slim_status st = slim_chat_resolve(tmpl, tmpl_len, override, &f);
    if (st) return st;
    int small[16], *roles = n_msgs <= 16 ? small : malloc(n_msgs * sizeof *roles);
    if (!roles) return slim_error(SLIM_ERR_NOMEM, "slim_chat_render: out of memory");
    for (size_t i = 0; i < n_msgs && !st; i++) {
        if (!msgs[i].role || !msgs[i].content)
            st = slim_error(SLIM_ERR_INVALID_ARG, "slim_chat_render: message %zu: %s is NULL", i,
                            msgs[i].role ? "content" : "role");
        else if ((roles[i] = role_of(msgs[i].role)) < 0)
            st = slim_error(SLIM_ERR_INVALID_ARG,
                            "slim_chat_render: message %zu: role '%.40s' is not system, user or "
                            "assistant",
                            i, msgs[i].role);
    }
    /* The default system prompt comes from the template text that chose ChatML. */
    char *def = NULL;
    if (!st && f == SLIM_CHAT_CHATML) {
        size_t dl = 0;
        bool named = override && *override && slim_chat_family_from_name(override);
        if (override && *override && !named)
            def = slim_chat_default_system(override, strlen(override), &dl);
        else if (tmpl && slim_chat_detect(tmpl, tmpl_len, NULL) == SLIM_CHAT_CHATML)
            def = slim_chat_default_system(tmpl, tmpl_len, &dl);
    }
    sink s = {buf, cap, 0};
    if (!st) st = render(f, def, msgs, roles, n_msgs, add_assistant_prompt, &s);
    free(def);
    if (roles != small) free(roles);
    if (st) return st;
    *n_out = s.n;
    if (buf && s.n > cap)
        return slim_error(SLIM_ERR_BUFFER_TOO_SMALL,
                          "slim_chat_render: %zu bytes do not fit in %zu", s.n, cap);
    return SLIM_OK;
}

/* The model's chat template (GGUF tokenizer.chat_template, or a Hugging Face
 * directory's tokenizer_config.json / chat_template.jinja), or NULL. */
static const char *model_template(const slim_model *m, size_t *len) {
    slim_gguf_str str;
    if (!m->gguf) {
        const char *t = m->vocab ? slim_vocab_chat_template(m->vocab) : NULL;
        if (t) *len = strlen(t);
        return t;
    }
    if (!slim_gguf_get_str(m->gguf, "tokenizer.chat_template", &str)) return NULL;
    *len = (size_t)str.len;
    return str.ptr;
}

slim_status slim_chat_template_name(const slim_model *model, const char *override,
                                    const char **name_out) {
    if (!model || !name_out)
        return slim_error(SLIM_ERR_INVALID_ARG,
                          "slim_chat_template_name: model or name_out is NULL");
    size_t len = 0;
    const char *t = model_template(model, &len);
    slim_chat_family f;
    slim_status st = slim_chat_resolve(t, len, override, &f);
    if (st) return st;
    *name_out = slim_chat_family_name(f);
    return SLIM_OK;
}

slim_status slim_chat_render(const slim_model *model, const char *override,
                             const slim_chat_message *msgs, size_t n_msgs, int add_assistant_prompt,
                             char *buf, size_t cap, size_t *n_out) {
    if (!model) return slim_error(SLIM_ERR_INVALID_ARG, "slim_chat_render: model is NULL");
    size_t len = 0;
    const char *t = model_template(model, &len);
    return slim_chat_render_template(t, len, override, msgs, n_msgs, add_assistant_prompt, buf, cap,
                                     n_out);
}

int slim_token_is_eog(const slim_model *model, slim_token token) {
    if (!model || !model->vocab || token < 0 || token >= model->hp.n_vocab) return 0;
    return slim_vocab_is_eog(model->vocab, token) ? 1 : 0;
}
