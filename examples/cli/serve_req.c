/* slim serve: OpenAI request bodies parsed (lib/format/json.c, strict RFC 8259 and UTF-8)
 * and validated into srv_req.  Unknown fields are ignored; a known field of the wrong
 * type or out of range is a 400 naming it; JSON null means "not given". */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "format/json.h"
#include "serve.h"

/* A field, or NULL when absent or null. */
static const slim_json *field(const slim_json *obj, const char *key) {
    const slim_json *v = slim_json_get(obj, key);
    return v && !slim_json_is_null(v) ? v : NULL;
}

static int num_field(const slim_json *obj, const char *key, double lo, double hi, double *out,
                     srv_err *err) {
    const slim_json *v = field(obj, key);
    if (!v) return 1;
    double x;
    if (!slim_json_num(v, &x))
        return srv_fail(err, 400, key, "'%s' must be a number, got %s", key,
                        slim_json_type_name(slim_json_type_of(v)));
    if (!(x >= lo && x <= hi))
        return srv_fail(err, 400, key, "'%s' must be between %g and %g, got %g", key, lo, hi, x);
    *out = x;
    return 1;
}

static int int_field(const slim_json *obj, const char *key, long long lo, long long hi,
                     long long *out, int *given, srv_err *err) {
    const slim_json *v = field(obj, key);
    if (!v) return 1;
    int64_t x;
    if (slim_json_type_of(v) != SLIM_JSON_NUMBER || !slim_json_i64(v, &x))
        return srv_fail(err, 400, key, "'%s' must be an integer, got %s", key,
                        slim_json_type_of(v) == SLIM_JSON_NUMBER
                            ? "a fraction"
                            : slim_json_type_name(slim_json_type_of(v)));
    if (x < lo || x > hi)
        return srv_fail(err, 400, key, "'%s' must be between %lld and %lld, got %lld", key, lo, hi,
                        (long long)x);
    *out = x;
    if (given) *given = 1;
    return 1;
}

static int bool_field(const slim_json *obj, const char *key, int *out, srv_err *err) {
    const slim_json *v = field(obj, key);
    if (!v) return 1;
    bool x;
    if (!slim_json_bool(v, &x))
        return srv_fail(err, 400, key, "'%s' must be a boolean, got %s", key,
                        slim_json_type_name(slim_json_type_of(v)));
    *out = x;
    return 1;
}

static int parse_body(const char *body, size_t len, slim_json_doc **doc, srv_err *err) {
    if (slim_json_parse(body, len, "request body", doc))
        return srv_fail(err, 400, NULL, "malformed JSON: %s", slim_last_error());
    if (slim_json_type_of(slim_json_root(*doc)) != SLIM_JSON_OBJECT) {
        slim_json_free(*doc);
        *doc = NULL;
        return srv_fail(err, 400, NULL, "the request body must be a JSON object");
    }
    return 1;
}

int srv_find_model(const srv *s, const char *model, int *lora, const char **name, srv_err *err) {
    *lora = -1;
    *name = s->model_name;
    if (!model || !strcmp(model, s->model_name) || !strcmp(model, s->model_path)) return 1;
    for (int i = 0; i < s->n_lora; i++)
        if (!strcmp(model, s->lora_name[i])) {
            *lora = s->lora_index[i];
            *name = s->lora_name[i];
            return 1;
        }
    srv_fail(err, 404, "model", "The model `%s` does not exist.", model);
    err->code = "model_not_found";
    return 0;
}

static int tokenize(srv *s, const char *text, size_t len, uint32_t flags, srv_prompt *p,
                    srv_err *err) {
    size_t n = 0;
    if (slim_tokenize(s->model, text, len, flags, NULL, 0, &n) ||
        !(p->tok = malloc((n ? n : 1) * sizeof *p->tok)) ||
        slim_tokenize(s->model, text, len, flags, p->tok, n, &n))
        return srv_fail(err, 400, "prompt", "tokenizing the prompt failed: %s", slim_last_error());
    p->n = n;
    return 1;
}

/* A token id array (values checked against the vocabulary). */
static int token_ids(srv *s, const slim_json *a, const char *param, srv_prompt *p, srv_err *err) {
    const size_t n = slim_json_len(a);
    if (!(p->tok = malloc((n ? n : 1) * sizeof *p->tok)))
        return srv_fail(err, 500, NULL, "out of memory");
    for (size_t i = 0; i < n; i++) {
        int64_t t;
        if (!slim_json_i64(slim_json_at(a, i), &t) || t < 0 || t >= s->n_vocab)
            return srv_fail(err, 400, param,
                            "'%s': element %zu is not a token id (an integer in 0..%d)", param, i,
                            s->n_vocab - 1);
        p->tok[i] = (slim_token)t;
    }
    p->n = n;
    /* The text to echo: the ids detokenized. */
    size_t m = 0;
    if (slim_detokenize(s->model, p->tok, n, 0, NULL, 0, &m) || !(p->text = malloc(m + 1)) ||
        slim_detokenize(s->model, p->tok, n, 0, p->text, m, &m))
        return srv_fail(err, 400, param, "detokenizing '%s' failed: %s", param, slim_last_error());
    p->text[m] = '\0';
    p->text_len = m;
    return 1;
}

static int is_token_array(const slim_json *a) {
    return slim_json_type_of(a) == SLIM_JSON_ARRAY && slim_json_len(a) > 0 &&
           slim_json_type_of(slim_json_at(a, 0)) == SLIM_JSON_NUMBER;
}

static int text_prompt(srv *s, const char *t, size_t len, srv_prompt *p, srv_err *err) {
    if (!(p->text = malloc(len + 1))) return srv_fail(err, 500, NULL, "out of memory");
    memcpy(p->text, t, len);
    p->text[len] = '\0';
    p->text_len = len;
    return tokenize(s, t, len, SLIM_TOKENIZE_ADD_BOS | SLIM_TOKENIZE_PARSE_SPECIAL, p, err);
}

/* prompt: a string, a list of strings, a list of token ids, or a list of such lists. */
static int completion_prompts(srv *s, const slim_json *root, srv_req *r, srv_err *err) {
    const slim_json *pr = field(root, "prompt");
    if (!pr) return srv_fail(err, 400, "prompt", "'prompt' is required");
    const slim_json_type t = slim_json_type_of(pr);
    size_t len;
    const char *str = slim_json_str(pr, &len);
    if (str) {
        r->n_prompts = 1;
        return text_prompt(s, str, len, &r->prompts[0], err);
    }
    if (t != SLIM_JSON_ARRAY || slim_json_len(pr) == 0)
        return srv_fail(err, 400, "prompt",
                        "'prompt' must be a string, a list of strings or a list of token ids, "
                        "and not empty");
    if (is_token_array(pr)) {
        r->n_prompts = 1;
        return token_ids(s, pr, "prompt", &r->prompts[0], err);
    }
    const size_t n = slim_json_len(pr);
    if (n > SRV_MAX_PROMPTS)
        return srv_fail(err, 400, "prompt", "'prompt' has %zu prompts: at most %d", n,
                        SRV_MAX_PROMPTS);
    for (size_t i = 0; i < n; i++) {
        const slim_json *e = slim_json_at(pr, i);
        srv_prompt *p = &r->prompts[r->n_prompts++];
        if ((str = slim_json_str(e, &len))) {
            if (!text_prompt(s, str, len, p, err)) return 0;
        } else if (is_token_array(e)) {
            if (!token_ids(s, e, "prompt", p, err)) return 0;
        } else {
            return srv_fail(err, 400, "prompt",
                            "'prompt': element %zu must be a string or a list of token ids", i);
        }
    }
    return 1;
}

/* A message's content: a string, or an array of {"type": "text", "text": ...} parts. */
static int message_content(const slim_json *c, size_t i, srv_buf *out, srv_err *err) {
    char param[64];
    snprintf(param, sizeof param, "messages[%zu].content", i);
    size_t len;
    const char *str = slim_json_str(c, &len);
    if (!c) return 1; /* assistant turns may have none */
    if (str) {
        srv_raw(out, str, len);
        return 1;
    }
    if (slim_json_type_of(c) != SLIM_JSON_ARRAY)
        return srv_fail(err, 400, param, "'%s' must be a string or an array of text parts", param);
    for (size_t k = 0; k < slim_json_len(c); k++) {
        const slim_json *part = slim_json_at(c, k);
        const char *type = slim_json_str(slim_json_get(part, "type"), NULL);
        const char *text = slim_json_str(slim_json_get(part, "text"), &len);
        if (!type || strcmp(type, "text"))
            return srv_fail(err, 400, param, "'%s[%zu]': only parts of type \"text\" are supported",
                            param, k);
        if (!text) return srv_fail(err, 400, param, "'%s[%zu].text' must be a string", param, k);
        srv_raw(out, text, len);
    }
    return 1;
}

/* messages -> the chat template's text; in p->text. */
static int chat_prompt(srv *s, const slim_json *msgs, int add_generation_prompt, srv_prompt *p,
                       srv_err *err) {
    if (slim_json_type_of(msgs) != SLIM_JSON_ARRAY || slim_json_len(msgs) == 0)
        return srv_fail(err, 400, "messages", "'messages' must be a non-empty array");
    const size_t n = slim_json_len(msgs);
    if (n > 4096) return srv_fail(err, 400, "messages", "'messages' has more than 4096 entries");
    slim_chat_message *m = calloc(n, sizeof *m);
    srv_buf *texts = calloc(n, sizeof *texts);
    int ok = m && texts;
    if (!ok) srv_fail(err, 500, NULL, "out of memory");
    for (size_t i = 0; ok && i < n; i++) {
        const slim_json *msg = slim_json_at(msgs, i);
        char param[64];
        snprintf(param, sizeof param, "messages[%zu].role", i);
        const char *role = slim_json_str(slim_json_get(msg, "role"), NULL);
        if (slim_json_type_of(msg) != SLIM_JSON_OBJECT || !role) {
            ok = srv_fail(err, 400, param, "'messages[%zu]' must be an object with a string 'role'",
                          i);
            break;
        }
        if (!strcmp(role, "developer")) role = "system";
        if (strcmp(role, "system") && strcmp(role, "user") && strcmp(role, "assistant")) {
            ok =
                srv_fail(err, 400, param,
                         "'%s' is \"%s\": only system, developer, user and assistant are supported",
                         param, role);
            break;
        }
        ok = message_content(field(msg, "content"), i, &texts[i], err);
        srv_raw(&texts[i], "", 0); /* a NUL-terminated string even when empty */
        if (texts[i].oom) ok = srv_fail(err, 500, NULL, "out of memory");
        m[i].role = role;
        m[i].content = texts[i].p;
    }
    size_t len = 0;
    if (ok && slim_chat_render(s->model, s->template_override, m, n, add_generation_prompt, NULL, 0,
                               &len))
        ok = srv_fail(err, 400, "messages", "the chat template: %s", slim_last_error());
    if (ok && !(p->text = malloc(len + 1))) ok = srv_fail(err, 500, NULL, "out of memory");
    if (ok && slim_chat_render(s->model, s->template_override, m, n, add_generation_prompt, p->text,
                               len, &len))
        ok = srv_fail(err, 400, "messages", "the chat template: %s", slim_last_error());
    if (ok) {
        p->text[len] = '\0';
        p->text_len = len;
    }
    for (size_t i = 0; texts && i < n; i++)
        srv_buf_free(&texts[i]);
    free(texts);
    free(m);
    return ok;
}

static int parse_stop(const slim_json *root, srv_req *r, srv_err *err) {
    const slim_json *st = field(root, "stop");
    if (!st) return 1;
    size_t len;
    const char *one = slim_json_str(st, &len);
    const size_t n = one ? 1 : slim_json_len(st);
    if (!one && slim_json_type_of(st) != SLIM_JSON_ARRAY)
        return srv_fail(err, 400, "stop", "'stop' must be a string or an array of strings");
    if (n > SRV_MAX_STOP)
        return srv_fail(err, 400, "stop", "'stop' has %zu strings: at most %d", n, SRV_MAX_STOP);
    for (size_t i = 0; i < n; i++) {
        const char *t = one ? one : slim_json_str(slim_json_at(st, i), &len);
        if (!t) return srv_fail(err, 400, "stop", "'stop[%zu]' must be a string", i);
        if (len == 0) continue; /* an empty stop string never matches: ignore it */
        if (memchr(t, 0, len)) return srv_fail(err, 400, "stop", "'stop' contains a NUL byte");
        if (!(r->stop[r->n_stop] = strdup(t))) return srv_fail(err, 500, NULL, "out of memory");
        r->n_stop++;
    }
    return 1;
}

/* OpenAI's logit_bias: {"token id": bias in [-100, 100], ...}, added to the logits by the
 * sampler before penalties and filters. */
static int parse_logit_bias(const slim_json *lb, int32_t n_vocab, srv_req *r, srv_err *err) {
    if (!lb) return 1;
    if (slim_json_type_of(lb) != SLIM_JSON_OBJECT)
        return srv_fail(err, 400, "logit_bias",
                        "'logit_bias' must be an object of token ids to numbers, got %s",
                        slim_json_type_name(slim_json_type_of(lb)));
    const size_t n = slim_json_len(lb);
    if (n == 0) return 1;
    if (n > (size_t)n_vocab)
        return srv_fail(err, 400, "logit_bias",
                        "'logit_bias' has %zu entries, more than the %d tokens of the vocabulary",
                        n, (int)n_vocab);
    if (!(r->bias = calloc(n, sizeof *r->bias))) return srv_fail(err, 500, NULL, "out of memory");
    for (size_t i = 0; i < n; i++) {
        const char *key;
        size_t klen;
        const slim_json *v = slim_json_member(lb, i, &key, &klen);
        long long id = 0;
        size_t d = 0;
        while (d < klen && d < 10 && key[d] >= '0' && key[d] <= '9')
            id = id * 10 + (key[d++] - '0');
        /* the key, quoted only when it is short printable ASCII (it goes into the message) */
        int show = klen <= 32;
        for (size_t k = 0; show && k < klen; k++)
            show = key[k] >= 0x20 && key[k] < 0x7f && key[k] != '"' && key[k] != '\\';
        if (d == 0 || d != klen)
            return show
                       ? srv_fail(err, 400, "logit_bias",
                                  "'logit_bias' key \"%.*s\" is not a token id (a decimal integer)",
                                  (int)klen, key)
                       : srv_fail(err, 400, "logit_bias",
                                  "'logit_bias' key %zu is not a token id (a decimal integer)", i);
        if (id >= n_vocab)
            return srv_fail(err, 400, "logit_bias",
                            "'logit_bias' token %lld is outside the vocabulary (0..%d)", id,
                            (int)n_vocab - 1);
        double x;
        if (!slim_json_num(v, &x))
            return srv_fail(err, 400, "logit_bias",
                            "'logit_bias' value for token %lld must be a number, got %s", id,
                            slim_json_type_name(slim_json_type_of(v)));
        if (!(x >= -100 && x <= 100))
            return srv_fail(
                err, 400, "logit_bias",
                "'logit_bias' value for token %lld must be between -100 and 100, got %g", id, x);
        r->bias[r->n_bias++] = (slim_logit_bias){(slim_token)id, (float)x};
    }
    r->sp.logit_bias = r->bias;
    r->sp.n_logit_bias = r->n_bias;
    return 1;
}

static int parse_sampling(const slim_json *root, int32_t s_n_vocab, srv_req *r, srv_err *err) {
    slim_sampler_params *sp = &r->sp;
    *sp = slim_sampler_default_params();
    /* OpenAI's defaults: temperature 1, top_p 1, no top-k or min-p. */
    double temp = 1, top_p = 1, min_p = 0, rep = 1, pres = 0, freq = 0;
    long long top_k = 0, seed = 0;
    if (!num_field(root, "temperature", 0, 2, &temp, err) ||
        !num_field(root, "top_p", 0, 1, &top_p, err) ||
        !num_field(root, "min_p", 0, 1, &min_p, err) ||
        !num_field(root, "repetition_penalty", 0.01, 10, &rep, err) ||
        !num_field(root, "presence_penalty", -2, 2, &pres, err) ||
        !num_field(root, "frequency_penalty", -2, 2, &freq, err) ||
        !int_field(root, "top_k", -1, 1 << 30, &top_k, NULL, err) ||
        !int_field(root, "seed", INT64_MIN, INT64_MAX, &seed, &r->seed_given, err))
        return 0;
    if (top_p <= 0) return srv_fail(err, 400, "top_p", "'top_p' must be greater than 0");
    sp->temperature = (float)temp;
    sp->top_p = (float)top_p;
    sp->min_p = (float)min_p;
    sp->top_k = (int32_t)(top_k < 0 ? 0 : top_k);
    sp->repeat_penalty = (float)rep;
    sp->presence_penalty = (float)pres;
    sp->frequency_penalty = (float)freq;
    if (r->seed_given) {
        sp->seed = (uint64_t)seed;
    } else {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        static _Atomic uint64_t counter;
        sp->seed = ((uint64_t)ts.tv_sec * 1000000007u) ^ (uint64_t)ts.tv_nsec ^
                   (++counter * 0x9E3779B97F4A7C15ull);
    }
    return parse_logit_bias(field(root, "logit_bias"), s_n_vocab, r, err);
    return 1;
}

/* A parsed JSON value written back as JSON text (the schema the constraint compiler reads). */
static void write_value(srv_buf *b, const slim_json *v) {
    size_t len;
    const char *str;
    double x;
    int64_t i;
    bool t;
    switch (slim_json_type_of(v)) {
    case SLIM_JSON_OBJECT:
        srv_obj(b);
        for (size_t k = 0; k < slim_json_len(v); k++) {
            const char *key;
            size_t klen;
            const slim_json *m = slim_json_member(v, k, &key, &klen);
            srv_keyn(b, key, klen);
            write_value(b, m);
        }
        srv_obj_end(b);
        break;
    case SLIM_JSON_ARRAY:
        srv_arr(b);
        for (size_t k = 0; k < slim_json_len(v); k++)
            write_value(b, slim_json_at(v, k));
        srv_arr_end(b);
        break;
    case SLIM_JSON_STRING:
        str = slim_json_str(v, &len);
        srv_jstr(b, str, len);
        break;
    case SLIM_JSON_NUMBER:
        if (slim_json_i64(v, &i))
            srv_jint(b, (long long)i);
        else if (slim_json_num(v, &x))
            srv_jnum(b, x);
        break;
    case SLIM_JSON_BOOL:
        slim_json_bool(v, &t);
        srv_jbool(b, t);
        break;
    default: srv_jnull(b); break;
    }
}

/* response_format: text; json_object (any JSON object); json_schema ({"json_schema":
 * {"name", "schema", "strict"}}), compiled by slim's constraint engine.  A schema it
 * cannot honour exactly is a 400 naming why: never a 200 with unconstrained text. */
static int parse_response_format(srv *s, const slim_json *root, srv_req *r, srv_err *err) {
    const slim_json *rf = field(root, "response_format");
    if (!rf) return 1;
    const char *type = slim_json_str(slim_json_get(rf, "type"), NULL);
    if (slim_json_type_of(rf) != SLIM_JSON_OBJECT || !type)
        return srv_fail(err, 400, "response_format",
                        "'response_format' must be an object with a string 'type'");
    if (!strcmp(type, "text")) return 1;
    slim_constraint_params cp = slim_constraint_default_params();
    slim_status st;
    if (!strcmp(type, "json_object")) {
        st = slim_constraint_compile(s->model, SLIM_CONSTRAINT_JSON_OBJECT, "", 0, &cp,
                                     &r->constraint);
    } else if (!strcmp(type, "json_schema")) {
        const slim_json *js = field(rf, "json_schema");
        const slim_json *schema = field(js, "schema");
        if (slim_json_type_of(js) != SLIM_JSON_OBJECT ||
            (schema && slim_json_type_of(schema) != SLIM_JSON_OBJECT &&
             slim_json_type_of(schema) != SLIM_JSON_BOOL))
            return srv_fail(err, 400, "response_format",
                            "'response_format.json_schema' must be an object whose 'schema' is "
                            "a JSON Schema object");
        srv_buf text = {0};
        if (schema)
            write_value(&text, schema);
        else
            srv_cstr(&text, "{}");
        if (text.oom) {
            srv_buf_free(&text);
            return srv_fail(err, 500, NULL, "out of memory");
        }
        st = slim_constraint_compile(s->model, SLIM_CONSTRAINT_JSON_SCHEMA, text.p, text.len, &cp,
                                     &r->constraint);
        srv_buf_free(&text);
    } else {
        return srv_fail(err, 400, "response_format",
                        "'response_format.type' must be \"text\", \"json_object\" or "
                        "\"json_schema\", got \"%s\"",
                        type);
    }
    if (st) {
        r->constraint = NULL;
        return srv_fail(err, st == SLIM_ERR_NOMEM ? 500 : 400, "response_format",
                        "'response_format': %s", slim_last_error());
    }
    return 1;
}

void srv_req_free(srv_req *r) {
    for (int i = 0; i < r->n_prompts; i++) {
        free(r->prompts[i].tok);
        free(r->prompts[i].text);
    }
    for (int i = 0; i < r->n_stop; i++)
        free(r->stop[i]);
    slim_constraint_free(r->constraint);
    free(r->bias);
    memset(r, 0, sizeof *r);
}

int srv_req_parse(srv *s, int kind, const char *body, size_t len, srv_req *r, srv_err *err) {
    memset(r, 0, sizeof *r);
    r->kind = kind;
    r->logprobs = -1;
    slim_json_doc *doc = NULL;
    if (!parse_body(body, len, &doc, err)) return 0;
    const slim_json *root = slim_json_root(doc);
    int ok = 1;
    const slim_json *mv = field(root, "model");
    if (mv && !slim_json_str(mv, NULL))
        ok = srv_fail(err, 400, "model", "'model' must be a string");
    if (ok) ok = srv_find_model(s, slim_json_str(mv, NULL), &r->lora, &r->model_name, err);
    long long max_tokens = -1, n = 1, top_logprobs = 0, logprobs_n = -1;
    int max_given = 0, dummy = 0;
    if (ok)
        ok = int_field(root, "max_tokens", 0, INT32_MAX, &max_tokens, &max_given, err) &&
             int_field(root, "max_completion_tokens", 0, INT32_MAX, &max_tokens, &max_given, err) &&
             int_field(root, "n", 1, SRV_MAX_N, &n, NULL, err) &&
             bool_field(root, "stream", &r->stream, err) &&
             bool_field(root, "ignore_eos", &r->ignore_eos, err) &&
             parse_sampling(root, s->n_vocab, r, err) && parse_stop(root, r, err) &&
             parse_response_format(s, root, r, err);
    const slim_json *so = field(root, "stream_options");
    if (ok && so) {
        if (slim_json_type_of(so) != SLIM_JSON_OBJECT)
            ok = srv_fail(err, 400, "stream_options", "'stream_options' must be an object");
        else
            ok = bool_field(so, "include_usage", &r->include_usage, err);
    }
    const slim_json *user = field(root, "user");
    if (ok && user && !slim_json_str(user, NULL))
        ok = srv_fail(err, 400, "user", "'user' must be a string");
    if (ok && kind == SRV_CHAT) {
        int lp = 0;
        ok = bool_field(root, "logprobs", &lp, err) &&
             int_field(root, "top_logprobs", 0, 20, &top_logprobs, &dummy, err);
        if (ok && top_logprobs > 0 && !lp)
            ok = srv_fail(err, 400, "top_logprobs", "'top_logprobs' needs 'logprobs': true");
        r->logprobs = lp;
        r->top_logprobs = (int)top_logprobs;
        r->n_prompts = 1;
        if (ok) ok = chat_prompt(s, field(root, "messages"), 1, &r->prompts[0], err);
        if (ok)
            ok = tokenize(s, r->prompts[0].text, r->prompts[0].text_len,
                          SLIM_TOKENIZE_ADD_BOS | SLIM_TOKENIZE_PARSE_SPECIAL, &r->prompts[0], err);
    } else if (ok) {
        ok = int_field(root, "logprobs", 0, 20, &logprobs_n, &dummy, err) &&
             bool_field(root, "echo", &r->echo, err) && completion_prompts(s, root, r, err);
        r->logprobs = (int)logprobs_n;
        if (ok && r->stream && r->echo && r->logprobs >= 0)
            ok = srv_fail(err, 400, "echo",
                          "'echo' with 'logprobs' is not supported when streaming");
    }
    r->n = (int)n;
    if (ok && (long long)r->n_prompts * r->n > SRV_MAX_PROMPTS)
        ok = srv_fail(err, 400, "n", "%d prompts x n = %d choices: at most %d", r->n_prompts,
                      r->n_prompts * r->n, SRV_MAX_PROMPTS);
    /* Context: every prompt plus max_tokens must fit (OpenAI's wording, with the counts). */
    for (int i = 0; ok && i < r->n_prompts; i++) {
        const long long np = (long long)r->prompts[i].n;
        if (np == 0) ok = srv_fail(err, 400, "prompt", "the prompt has no tokens");
        long long mt = max_given ? max_tokens : kind == SRV_CHAT ? s->n_ctx - np : 16;
        if (ok && (np >= s->n_ctx || np + mt > s->n_ctx))
            ok = srv_fail(err, 400, kind == SRV_CHAT ? "messages" : "prompt",
                          "This model's maximum context length is %d tokens. However, you "
                          "requested %lld tokens (%lld in the %s, %lld in the completion). "
                          "Please reduce the length of the %s or completion.",
                          s->n_ctx, np + mt, np, kind == SRV_CHAT ? "messages" : "prompt", mt,
                          kind == SRV_CHAT ? "messages" : "prompt");
        if (ok && (i == 0 || mt < r->max_tokens)) r->max_tokens = (int32_t)mt;
    }
    slim_json_free(doc);
    if (!ok) srv_req_free(r);
    return ok;
}

/* ---- /tokenize, /detokenize (vLLM's shapes) ----------------------------------------- */
int srv_tokenize(srv *s, const char *body, size_t len, srv_buf *out, srv_err *err) {
    slim_json_doc *doc = NULL;
    if (!parse_body(body, len, &doc, err)) return 0;
    const slim_json *root = slim_json_root(doc);
    srv_prompt p = {0};
    int add_special = 1, add_gen = 1, lora;
    const char *name;
    const slim_json *mv = field(root, "model");
    int ok =
        !mv || slim_json_str(mv, NULL) || srv_fail(err, 400, "model", "'model' must be a string");
    ok = ok && srv_find_model(s, slim_json_str(mv, NULL), &lora, &name, err) &&
         bool_field(root, "add_special_tokens", &add_special, err) &&
         bool_field(root, "add_generation_prompt", &add_gen, err);
    const slim_json *msgs = field(root, "messages");
    size_t plen;
    const char *prompt = slim_json_str(field(root, "prompt"), &plen);
    if (ok && msgs) {
        ok = chat_prompt(s, msgs, add_gen, &p, err) &&
             tokenize(s, p.text, p.text_len,
                      (add_special ? SLIM_TOKENIZE_ADD_BOS : 0) | SLIM_TOKENIZE_PARSE_SPECIAL, &p,
                      err);
    } else if (ok && prompt) {
        ok = tokenize(s, prompt, plen,
                      (add_special ? SLIM_TOKENIZE_ADD_BOS : 0) | SLIM_TOKENIZE_PARSE_SPECIAL, &p,
                      err);
    } else if (ok) {
        ok = srv_fail(err, 400, "prompt", "'prompt' (a string) or 'messages' is required");
    }
    if (ok) {
        srv_obj(out);
        srv_key(out, "count");
        srv_jint(out, (long long)p.n);
        srv_key(out, "max_model_len");
        srv_jint(out, s->n_ctx);
        srv_key(out, "tokens");
        srv_arr(out);
        for (size_t i = 0; i < p.n; i++)
            srv_jint(out, p.tok[i]);
        srv_arr_end(out);
        srv_obj_end(out);
    }
    free(p.tok);
    free(p.text);
    slim_json_free(doc);
    return ok;
}

int srv_detokenize(srv *s, const char *body, size_t len, srv_buf *out, srv_err *err) {
    slim_json_doc *doc = NULL;
    if (!parse_body(body, len, &doc, err)) return 0;
    const slim_json *root = slim_json_root(doc);
    srv_prompt p = {0};
    const slim_json *t = field(root, "tokens");
    int ok = 1;
    if (slim_json_type_of(t) != SLIM_JSON_ARRAY)
        ok = srv_fail(err, 400, "tokens", "'tokens' must be an array of token ids");
    if (ok && slim_json_len(t) == 0) {
        srv_cstr(out, "{\"prompt\":\"\"}");
    } else if (ok && token_ids(s, t, "tokens", &p, err)) {
        srv_obj(out);
        srv_key(out, "prompt");
        srv_jstr(out, p.text, p.text_len);
        srv_obj_end(out);
    } else {
        ok = 0;
    }
    free(p.tok);
    free(p.text);
    slim_json_free(doc);
    return ok;
}
