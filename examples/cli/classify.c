/* `slim classify`: label texts with a model through slim_score.
 *
 * Each input (a line of standard input; a line holding a JSON object uses its
 * "text" member) goes into the prompt template; every label is scored as the
 * continuation of that prompt; one JSON line comes out per input with the
 * most likely label, its probability and the distribution over the labels.
 * The prompt tokens shared with the previous input (the template's head) stay
 * in the context and are not computed again. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "eval.h"

static const char classify_usage[] =
    "usage: slim classify -m FILE --labels FILE [options] < INPUT\n"
    "  Label each input line (a JSON object: its \"text\" member) with the most\n"
    "  likely of the labels, as the continuation of the prompt template; writes\n"
    "  one JSON line per input: {\"label\", \"probability\", \"distribution\"}.\n"
    "  -m, --model PATH     GGUF model file or Hugging Face model directory\n"
    "  --labels FILE        the labels, one per line\n"
    "  --template T         the prompt: {text} is the input, {labels} the labels joined\n"
    "                       by \", \" (default \"Text: {text}\\nCategories: {labels}\\n"
    "Category:\")\n"
    "  --chat               the prompt is a user message in the model's chat template\n"
    "                       (the label starts the reply)\n"
    "  --label-prefix S     written before each label (default \" \"; \"\" with --chat)\n"
    "  --logprobs           also \"logprobs\": each label's total log-probability\n"
    "  -t, -c, --no-mmap, --backend, --weight-type, --kv-type: as slim run\n";

/* The template with {text} and {labels} replaced. */
static int fill(sbuf *b, const char *tmpl, const char *text, const char *labels) {
    b->n = 0;
    sb_add(b, "", 0);
    for (const char *p = tmpl; *p;) {
        if (!strncmp(p, "{text}", 6))
            sb_puts(b, text), p += 6;
        else if (!strncmp(p, "{labels}", 8))
            sb_puts(b, labels), p += 8;
        else
            sb_add(b, p++, 1);
    }
    return !b->oom;
}

int cli_classify(int argc, char **argv) {
    const char *model_path = NULL, *labels_path = NULL, *prefix = NULL;
    const char *tmpl = "Text: {text}\nCategories: {labels}\nCategory:";
    int chat = 0, want_lp = 0;
    slim_sampler_params sp = slim_sampler_default_params();
    slim_context_params cp = slim_context_default_params();
    slim_model_params mp = slim_model_default_params();
    cli_opts o = cli_opts_init("classify", argc, argv);
    const char *a;
    int k, handled;
    while ((k = cli_next(&o, &a)) == CLI_OPTION || k == CLI_OPERAND) {
        if (k == CLI_OPERAND) return cli_extra(&o, a);
        if (cli_is(&o, "-h", "--help")) {
            fputs(classify_usage, stdout);
            return 0;
        } else if (cli_is(&o, "-m", "--model")) {
            if (!(model_path = cli_value(&o))) return 2;
        } else if (cli_is(&o, NULL, "--labels")) {
            if (!(labels_path = cli_value(&o))) return 2;
        } else if (cli_is(&o, NULL, "--template")) {
            if (!(tmpl = cli_value(&o))) return 2;
        } else if (cli_is(&o, NULL, "--label-prefix")) {
            if (!(prefix = cli_value(&o))) return 2;
        } else if (cli_is(&o, NULL, "--chat")) {
            chat = 1;
        } else if (cli_is(&o, NULL, "--logprobs")) {
            want_lp = 1;
        } else if ((handled = cli_model_opt(&o, &sp, &cp, &mp)) != 0) {
            if (handled < 0) return 2;
        } else {
            return cli_unknown(&o);
        }
    }
    if (k == CLI_ERR) return 2;
    if (!model_path || !labels_path) {
        fprintf(stderr, "slim classify: -m FILE and --labels FILE are required\n%s",
                classify_usage);
        return 2;
    }
    if (!strstr(tmpl, "{text}"))
        return cli_usage_error(&o, "--template has no {text} for the input");
    if (!prefix) prefix = chat ? "" : " ";

    /* the labels: one per line (a final newline and CRs dropped, blank lines skipped) */
    size_t len = 0;
    char *ltext = cli_read_file("classify", labels_path, &len);
    if (!ltext) return 1;
    char **labels = NULL, **cands = NULL;
    size_t n_labels = 0;
    sbuf joined = {0};
    for (char *s = ltext, *e; s < ltext + len; s = e + 1) {
        e = strchr(s, '\n');
        if (!e) e = ltext + len;
        *e = '\0';
        if (e > s && e[-1] == '\r') e[-1] = '\0';
        if (!*s) continue;
        char **l = realloc(labels, (n_labels + 1) * sizeof *l);
        if (!l) {
            free(labels);
            free(ltext);
            return cli_fail("labels", SLIM_ERR_NOMEM);
        }
        labels = l;
        labels[n_labels++] = s;
    }
    int rc = 0;
    slim_model *model = NULL;
    slim_context *ctx = NULL;
    slim_token *prev = NULL, *toks = NULL;
    size_t n_prev = 0, cap_toks = 0;
    slim_score_result *res = NULL;
    sbuf prompt = {0}, out = {0}, rendered = {0};
    char *line = NULL;
    size_t line_cap = 0;
    if (!n_labels) {
        fprintf(stderr, "slim classify: %s has no labels\n", labels_path);
        rc = 1;
        goto done;
    }
    cands = calloc(n_labels, sizeof *cands);
    res = calloc(n_labels, sizeof *res);
    if (!cands || !res) {
        rc = cli_fail("labels", SLIM_ERR_NOMEM);
        goto done;
    }
    for (size_t i = 0; i < n_labels; i++) {
        size_t n = strlen(prefix) + strlen(labels[i]) + 1;
        if (!(cands[i] = malloc(n))) {
            rc = cli_fail("labels", SLIM_ERR_NOMEM);
            goto done;
        }
        snprintf(cands[i], n, "%s%s", prefix, labels[i]);
        if (i) sb_puts(&joined, ", ");
        sb_puts(&joined, labels[i]);
        if (joined.oom) {
            rc = cli_fail("labels", SLIM_ERR_NOMEM);
            goto done;
        }
    }
    slim_status st = slim_model_load(model_path, &mp, &model);
    if (!st) st = slim_context_create(model, &cp, &ctx);
    if (st) {
        rc = cli_fail("load", st);
        goto done;
    }
    const uint32_t flags = SLIM_TOKENIZE_ADD_BOS | (chat ? SLIM_TOKENIZE_PARSE_SPECIAL : 0);
    ssize_t got;
    size_t n_in = 0;
    while ((got = getline(&line, &line_cap, stdin)) >= 0) {
        n_in++;
        while (got > 0 && (line[got - 1] == '\n' || line[got - 1] == '\r'))
            line[--got] = '\0';
        const char *s = line;
        while (*s == ' ' || *s == '\t')
            s++;
        const char *input = line;
        ej *doc = NULL;
        if (*s == '{') {
            char err[160];
            doc = ej_parse(s, strlen(s), err, sizeof err);
            input = doc ? ej_str(ej_get(doc, "text")) : NULL;
            if (!input) {
                fprintf(stderr, "slim classify: input line %zu: %s\n", n_in,
                        doc ? "a JSON object without a \"text\" string" : err);
                ej_free(doc);
                rc = 1;
                break;
            }
        }
        const int filled = fill(&prompt, tmpl, input, joined.p ? joined.p : "");
        ej_free(doc);
        if (!filled) {
            rc = cli_fail("prompt", SLIM_ERR_NOMEM);
            break;
        }
        const char *ptext = prompt.p;
        if (chat) {
            slim_chat_message msg = {"user", prompt.p};
            size_t n = 0;
            st = slim_chat_render(model, NULL, &msg, 1, 1, NULL, 0, &n);
            rendered.n = 0;
            if (!st && n + 1 > rendered.cap) {
                char *p = realloc(rendered.p, n + 1);
                if (!p)
                    st = SLIM_ERR_NOMEM;
                else
                    rendered.p = p, rendered.cap = n + 1;
            }
            if (!st) st = slim_chat_render(model, NULL, &msg, 1, 1, rendered.p, n, &n);
            if (st) {
                rc = cli_fail("chat template", st);
                break;
            }
            rendered.p[n] = '\0';
            ptext = rendered.p;
        }
        size_t n_tok = 0;
        st = slim_tokenize(model, ptext, strlen(ptext), flags, toks, cap_toks, &n_tok);
        if (st == SLIM_ERR_BUFFER_TOO_SMALL || (!st && n_tok > cap_toks)) {
            slim_token *t = realloc(toks, n_tok * sizeof *t);
            if (!t) {
                rc = cli_fail("tokenize", SLIM_ERR_NOMEM);
                break;
            }
            toks = t, cap_toks = n_tok;
            st = slim_tokenize(model, ptext, strlen(ptext), flags, toks, cap_toks, &n_tok);
        }
        if (st || !n_tok) {
            rc = cli_fail("tokenize", st ? st : SLIM_ERR_INVALID_ARG);
            break;
        }
        /* keep the tokens shared with the previous prompt (at least the last one is fed) */
        size_t keep = 0;
        while (keep < n_prev && keep < n_tok && prev[keep] == toks[keep])
            keep++;
        if (keep == n_tok) keep--;
        st = slim_context_truncate(ctx, (int32_t)keep);
        if (!st) st = slim_prefill(ctx, toks + keep, n_tok - keep, NULL);
        if (st) {
            n_prev = 0;
            slim_context_reset(ctx);
            rc = cli_fail("prompt", st);
            break;
        }
        slim_token *t = realloc(prev, n_tok * sizeof *t);
        if (!t) {
            rc = cli_fail("prompt", SLIM_ERR_NOMEM);
            break;
        }
        prev = t;
        memcpy(prev, toks, n_tok * sizeof *prev);
        n_prev = n_tok;
        slim_score_output so = {.struct_size = sizeof so, .results = res};
        if ((st = slim_score(ctx, (const char *const *)cands, n_labels, NULL, &so))) {
            rc = cli_fail("score", st);
            break;
        }
        out.n = 0;
        sb_puts(&out, "{\"label\":");
        sb_json_str(&out, labels[so.argmax], strlen(labels[so.argmax]));
        sb_printf(&out, ",\"probability\":%.6g,\"distribution\":{", res[so.argmax].prob);
        for (size_t i = 0; i < n_labels; i++) {
            if (i) sb_puts(&out, ",");
            sb_json_str(&out, labels[i], strlen(labels[i]));
            sb_printf(&out, ":%.6g", res[i].prob);
        }
        sb_puts(&out, "}");
        if (want_lp) {
            sb_puts(&out, ",\"logprobs\":{");
            for (size_t i = 0; i < n_labels; i++) {
                if (i) sb_puts(&out, ",");
                sb_json_str(&out, labels[i], strlen(labels[i]));
                sb_printf(&out, ":%.9g", res[i].logprob);
            }
            sb_puts(&out, "}");
        }
        sb_puts(&out, "}\n");
        if (out.oom) {
            rc = cli_fail("output", SLIM_ERR_NOMEM);
            break;
        }
        if (fwrite(out.p, 1, out.n, stdout) != out.n || fflush(stdout)) {
            rc = cli_check_stdout();
            break;
        }
    }
done:
    if (cands)
        for (size_t i = 0; i < n_labels; i++)
            free(cands[i]);
    free(cands);
    free(res);
    free(labels);
    free(ltext);
    sb_free(&joined);
    sb_free(&prompt);
    sb_free(&out);
    sb_free(&rendered);
    free(line);
    free(prev);
    free(toks);
    slim_context_free(ctx);
    slim_model_free(model);
    return rc;
}
