/* slim chat: an interactive, multi-turn chat on a model's chat template.
 *
 * Each turn renders the whole conversation (slim_chat_render, with the
 * assistant prompt), tokenizes it, keeps the tokens already in the KV cache
 * where they are a prefix of it (slim_context_truncate at the first token that
 * differs) and feeds the rest, then streams the reply to stdout until an
 * end-of-generation token or -n tokens.  The reply's text becomes the
 * assistant message of the next rendering.
 *
 * Ctrl-C stops the reply (the generate callback's stop return, from a SIGINT
 * flag) and returns to the prompt, the partial reply kept as the assistant's
 * message; at an empty prompt a second Ctrl-C, or ctrl-D, quits. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

static const char chat_usage[] =
    "usage: slim chat -m FILE [options]\n"
    "  Chat with an instruction-tuned model: one user message per line of stdin, the\n"
    "  reply streams to stdout.  /reset forgets the conversation; end of input quits.\n"
    "  -m, --model PATH     GGUF model file or Hugging Face model directory\n"
    "  --template NAME      chat template: chatml, llama3, gemma, mistral-v3,\n"
    "                       mistral-tekken, phi3, phi4 (default: from the model)\n"
    "  --system TEXT        a system message opening the conversation\n"
    "  -n, --n-predict N    tokens per reply at most (default 1024)\n"
    "  --dump-prompt FILE   write each turn's rendered prompt and reply to FILE\n"
    "  -v, --verbose        per turn on stderr: token counts, prompt and reply speed\n"
    "  -t, --threads N   -c, --ctx-size N   --temp T   --top-k K   --top-p P\n"
    "  --min-p P   --repeat-penalty R   --repeat-last-n N   --presence-penalty F\n"
    "  --frequency-penalty F   --seed S   --no-mmap   --backend B   --weight-type T\n"
    "  --kv-type K   (as for slim run)\n"
    "  Ctrl-C stops a reply; at an empty prompt a second Ctrl-C, or ctrl-D, quits.\n";

int cli_model_opt(cli_opts *o, slim_sampler_params *sp, slim_context_params *cp,
                  slim_model_params *mp) {
    static const char *const kv_types[] = {"f16", "f32", NULL};
    static const char *const backends[] = {"cpu", "cuda", NULL};
    long long x;
    double d;
    int c;
    if (cli_is(o, "-t", "--threads")) {
        if (!cli_int(o, 1, 512, &x)) return -1;
        cp->n_threads = (int32_t)x;
    } else if (cli_is(o, "-c", "--ctx-size")) {
        if (!cli_int(o, 1, 10000000, &x)) return -1;
        cp->n_ctx = (int32_t)x;
    } else if (cli_is(o, NULL, "--temp")) {
        if (!cli_double(o, 0, 100, &d)) return -1;
        sp->temperature = (float)d;
    } else if (cli_is(o, NULL, "--top-k")) {
        if (!cli_int(o, 0, 1000000000, &x)) return -1;
        sp->top_k = (int32_t)x;
    } else if (cli_is(o, NULL, "--top-p")) {
        if (!cli_double(o, 0, 1, &d)) return -1;
        sp->top_p = (float)d;
    } else if (cli_is(o, NULL, "--min-p")) {
        if (!cli_double(o, 0, 1, &d)) return -1;
        sp->min_p = (float)d;
    } else if (cli_is(o, NULL, "--repeat-penalty")) {
        if (!cli_double(o, 0, 100, &d)) return -1;
        sp->repeat_penalty = (float)d;
    } else if (cli_is(o, NULL, "--repeat-last-n")) {
        if (!cli_int(o, 0, 1000000, &x)) return -1;
        sp->repeat_last_n = (int32_t)x;
    } else if (cli_is(o, NULL, "--presence-penalty")) {
        if (!cli_double(o, -100, 100, &d)) return -1;
        sp->presence_penalty = (float)d;
    } else if (cli_is(o, NULL, "--frequency-penalty")) {
        if (!cli_double(o, -100, 100, &d)) return -1;
        sp->frequency_penalty = (float)d;
    } else if (cli_is(o, NULL, "--seed")) {
        if (!cli_u64(o, &sp->seed)) return -1;
    } else if (cli_is(o, NULL, "--no-mmap")) {
        mp->use_mmap = 0;
    } else if (cli_is(o, NULL, "--weight-type")) {
        if (!(mp->weight_type = cli_value(o))) return -1; /* checked by slim_model_load */
    } else if (cli_is(o, NULL, "--kv-type")) {
        if (!cli_choice(o, kv_types, &c)) return -1;
        cp->kv_type = c ? SLIM_KV_F32 : SLIM_KV_F16;
    } else if (cli_is(o, NULL, "--backend")) {
        if (!cli_choice(o, backends, &c)) return -1;
        mp->backend = c ? SLIM_BACKEND_CUDA : SLIM_BACKEND_CPU;
    } else {
        return 0;
    }
    return 1;
}

typedef struct buf {
    char *p;
    size_t n, cap;
} buf;

/* Room for n more bytes and a NUL. */
static int buf_reserve(buf *b, size_t n) {
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->n + n + 1)
            cap *= 2;
        char *q = realloc(b->p, cap);
        if (!q) return 0;
        b->p = q, b->cap = cap;
    }
    return 1;
}

static int buf_add(buf *b, const void *p, size_t n) {
    if (!buf_reserve(b, n)) return 0;
    memcpy(b->p + b->n, p, n);
    b->n += n;
    b->p[b->n] = '\0';
    return 1;
}

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

typedef struct chat {
    slim_model *model;
    slim_context *ctx;
    slim_sampler *sampler;
    const char *tmpl;
    int32_t n_vocab, max_reply;
    int verbose;
    int write_failed; /* stdout failed: stop */
    FILE *dump;
    int turn;
    /* the conversation: roles point to constants, contents are owned */
    slim_chat_message *msgs;
    size_t n_msgs, cap_msgs;
    /* the tokens in the KV cache, in order (n_past of them) */
    slim_token *kv;
    size_t n_kv, cap_kv;
} chat;

static int push_msg(chat *c, const char *role, const char *text, size_t len) {
    if (c->n_msgs == c->cap_msgs) {
        size_t cap = c->cap_msgs ? 2 * c->cap_msgs : 16;
        slim_chat_message *m = realloc(c->msgs, cap * sizeof *m);
        if (!m) return 0;
        c->msgs = m, c->cap_msgs = cap;
    }
    char *s = malloc(len + 1);
    if (!s) return 0;
    memcpy(s, text, len);
    s[len] = '\0';
    c->msgs[c->n_msgs++] = (slim_chat_message){role, s};
    return 1;
}

static void pop_msgs(chat *c, size_t keep) {
    while (c->n_msgs > keep)
        free((char *)c->msgs[--c->n_msgs].content);
}

static int kv_reserve(chat *c, size_t n) {
    if (n <= c->cap_kv) return 1;
    slim_token *k = realloc(c->kv, n * sizeof *k);
    if (!k) return 0;
    c->kv = k, c->cap_kv = n;
    return 1;
}

static void dump_record(chat *c, const char *what, const char *p, size_t n) {
    if (!c->dump) return;
    fprintf(c->dump, "--- %s %d: %zu bytes\n", what, c->turn, n);
    fwrite(p, 1, n, c->dump);
    fputc('\n', c->dump);
    fflush(c->dump);
}

/* Render and tokenize the conversation (with the assistant prompt). */
static slim_status render_tokens(chat *c, buf *text, slim_token **toks, size_t *n_toks) {
    size_t n = 0;
    slim_status st = slim_chat_render(c->model, c->tmpl, c->msgs, c->n_msgs, 1, NULL, 0, &n);
    if (st) return st;
    text->n = 0;
    if (!buf_reserve(text, n)) return SLIM_ERR_NOMEM;
    if ((st = slim_chat_render(c->model, c->tmpl, c->msgs, c->n_msgs, 1, text->p, n, &n)))
        return st;
    text->n = n;
    text->p[n] = '\0';
    const uint32_t flags = SLIM_TOKENIZE_ADD_BOS | SLIM_TOKENIZE_PARSE_SPECIAL;
    size_t nt = 0;
    if ((st = slim_tokenize(c->model, text->p, n, flags, NULL, 0, &nt))) return st;
    *toks = malloc((nt ? nt : 1) * sizeof **toks);
    if (!*toks) return SLIM_ERR_NOMEM;
    if ((st = slim_tokenize(c->model, text->p, n, flags, *toks, nt, &nt))) {
        free(*toks);
        *toks = NULL;
        return st;
    }
    *n_toks = nt;
    return SLIM_OK;
}

/* The reply's pieces, as slim_generate's callback: non-zero stops (Ctrl-C, or
 * stdout failed). */
static int on_piece(slim_token tok, const char *piece, size_t len, void *user) {
    (void)tok;
    chat *c = user;
    if (fwrite(piece, 1, len, stdout) != len || fflush(stdout)) {
        c->write_failed = 1;
        return 1;
    }
    return cli_sigint != 0;
}

/* One user turn: feed the conversation, stream the reply, record it.
 * Returns 0 on success, 1 on a library error (reported), -1 when the
 * conversation does not fit (reported; the user message is dropped). */
static int chat_turn(chat *c, const char *line, size_t len) {
    size_t before = c->n_msgs;
    if (!push_msg(c, "user", line, len)) return cli_fail("chat", SLIM_ERR_NOMEM);
    c->turn++;
    buf text = {0}, reply = {0};
    slim_token *toks = NULL;
    size_t n_toks = 0;
    slim_status st = render_tokens(c, &text, &toks, &n_toks);
    if (st) {
        free(text.p);
        pop_msgs(c, before);
        return cli_fail("render", st);
    }
    dump_record(c, "prompt", text.p, text.n);
    int rc = 0;
    const int32_t n_ctx = slim_context_n_ctx(c->ctx);
    if (n_toks == 0 || n_toks >= (size_t)n_ctx) {
        fprintf(stderr,
                "slim chat: the conversation is %zu tokens, the context %d: /reset to start "
                "over (or a larger -c)\n",
                n_toks, n_ctx);
        pop_msgs(c, before);
        rc = -1;
        goto out;
    }
    /* Keep the common prefix of the cache and the new tokens; at least the
     * last token is fed again so that there are logits to sample from. */
    size_t keep = 0;
    while (keep < c->n_kv && keep < n_toks && c->kv[keep] == toks[keep])
        keep++;
    if (keep == n_toks) keep--;
    if (keep < c->n_kv) {
        if ((st = slim_context_truncate(c->ctx, (int32_t)keep))) {
            rc = cli_fail("truncate", st);
            goto out;
        }
        c->n_kv = keep;
    }
    if (!kv_reserve(c, n_toks + (size_t)c->max_reply)) {
        rc = cli_fail("chat", SLIM_ERR_NOMEM);
        goto out;
    }
    const double t0 = now_ms();
    if ((st = slim_prefill(c->ctx, toks + keep, n_toks - keep, NULL))) {
        /* The cache no longer matches what we know of it: start it over. */
        slim_context_reset(c->ctx);
        c->n_kv = 0;
        rc = cli_fail("prefill", st);
        goto out;
    }
    memcpy(c->kv + keep, toks + keep, (n_toks - keep) * sizeof *toks);
    c->n_kv = n_toks;
    slim_sampler_reset(c->sampler);
    for (size_t i = 0; i < n_toks; i++)
        slim_sampler_accept(c->sampler, toks[i]);

    const double t1 = now_ms();
    int32_t n_gen = 0;
    int full = 0;
    for (int32_t i = 0; i < c->max_reply; i++) {
        slim_token t;
        if ((st = slim_sampler_sample(c->sampler, slim_get_logits(c->ctx), c->n_vocab, &t))) {
            rc = cli_fail("sample", st);
            break;
        }
        slim_sampler_accept(c->sampler, t);
        n_gen++;
        if (slim_token_is_eog(c->model, t)) break;
        char piece[256], *pp = piece;
        size_t np = 0;
        st = slim_token_to_piece(c->model, t, 0, piece, sizeof piece, &np);
        if (st == SLIM_ERR_BUFFER_TOO_SMALL && (pp = malloc(np)))
            st = slim_token_to_piece(c->model, t, 0, pp, np, &np);
        int stop = 0;
        if (!st && !buf_add(&reply, pp, np)) st = SLIM_ERR_NOMEM;
        if (!st) stop = on_piece(t, pp, np, c);
        if (pp != piece) free(pp);
        if (st) {
            rc = cli_fail("detokenize", st);
            break;
        }
        if (stop) break;
        if (i + 1 == c->max_reply) break;
        if (slim_context_n_past(c->ctx) >= n_ctx) {
            full = 1;
            break;
        }
        if ((st = slim_decode(c->ctx, t))) {
            rc = cli_fail("decode", st);
            break;
        }
        c->kv[c->n_kv++] = t;
    }
    const double t2 = now_ms();
    if (!c->write_failed) fputc('\n', stdout);
    if (cli_check_stdout()) c->write_failed = 1, rc = 1;
    if (cli_sigint) fputs("[reply stopped]\n", stderr);
    cli_sigint = 0; /* that Ctrl-C is spent */
    if (full)
        fprintf(stderr,
                "[reply cut: the context of %d tokens is full; /reset to start over, or a "
                "larger -c]\n",
                n_ctx);
    if (c->verbose) /* decode speed: the first token came from the prompt's logits */
        fprintf(stderr,
                "[turn %d: %zu prompt tokens, %zu fed in %.1f ms (%.2f tokens/s), %d generated "
                "in %.1f ms (%.2f tokens/s), %d in cache]\n",
                c->turn, n_toks, n_toks - keep, t1 - t0,
                t1 > t0 ? (double)(n_toks - keep) * 1e3 / (t1 - t0) : 0.0, n_gen, t2 - t1,
                t2 > t1 && n_gen > 1 ? (n_gen - 1) * 1e3 / (t2 - t1) : 0.0,
                slim_context_n_past(c->ctx));
    dump_record(c, "reply", reply.p ? reply.p : "", reply.n);
    if (!push_msg(c, "assistant", reply.p ? reply.p : "", reply.n))
        rc = cli_fail("chat", SLIM_ERR_NOMEM);
out:
    free(toks);
    free(text.p);
    free(reply.p);
    return rc;
}

int cli_chat(int argc, char **argv) {
    const char *model_path = NULL, *tmpl = NULL, *system = NULL, *dump_path = NULL;
    slim_sampler_params sp = slim_sampler_default_params();
    slim_context_params cp = slim_context_default_params();
    slim_model_params mp = slim_model_default_params();
    int32_t max_reply = 1024;
    int verbose = 0;
    cli_opts o = cli_opts_init("chat", argc, argv);
    const char *a;
    int k;
    while ((k = cli_next(&o, &a)) == CLI_OPTION || k == CLI_OPERAND) {
        int r;
        long long x;
        if (k == CLI_OPERAND) {
            return cli_extra(&o, a);
        } else if (cli_is(&o, "-h", "--help")) {
            fputs(chat_usage, stdout);
            printf("  line editing: %s\n", !strcmp(cli_line_editor(), "libedit")
                                               ? "libedit (arrow keys, history)"
                                               : "none (built without libedit)");
            return 0;
        } else if ((r = cli_model_opt(&o, &sp, &cp, &mp))) {
            if (r < 0) return 2;
        } else if (cli_is(&o, "-n", "--n-predict")) {
            if (!cli_int(&o, 1, 1000000000, &x)) return 2;
            max_reply = (int32_t)x;
        } else if (cli_is(&o, "-v", "--verbose")) {
            verbose = 1;
        } else if (cli_is(&o, "-m", "--model")) {
            if (!(model_path = cli_value(&o))) return 2;
        } else if (cli_is(&o, NULL, "--template")) {
            if (!(tmpl = cli_value(&o))) return 2;
        } else if (cli_is(&o, NULL, "--system")) {
            if (!(system = cli_value(&o))) return 2;
        } else if (cli_is(&o, NULL, "--dump-prompt")) {
            if (!(dump_path = cli_value(&o))) return 2;
        } else {
            return cli_unknown(&o);
        }
    }
    if (k == CLI_ERR) return 2;
    if (!model_path) {
        fprintf(stderr, "slim chat: -m FILE is required\n%s", chat_usage);
        return 2;
    }
    chat c = {.tmpl = tmpl, .max_reply = max_reply, .verbose = verbose};
    int rc = 0;
    slim_status st = slim_model_load(model_path, &mp, &c.model);
    if (st) return cli_fail("load", st);
    const char *family = NULL;
    if ((st = slim_chat_template_name(c.model, tmpl, &family))) {
        rc = cli_fail("chat template", st);
        goto out;
    }
    slim_model_info info = {.struct_size = sizeof info};
    slim_model_get_info(c.model, &info);
    c.n_vocab = info.n_vocab;
    if ((st = slim_context_create(c.model, &cp, &c.ctx))) {
        rc = cli_fail("context", st);
        goto out;
    }
    if ((st = slim_sampler_create(&sp, &c.sampler))) {
        rc = cli_fail("sampler", st);
        goto out;
    }
    if (dump_path && !(c.dump = fopen(dump_path, "wb"))) {
        fprintf(stderr, "slim chat: cannot write %s\n", dump_path);
        rc = 1;
        goto out;
    }
    if (system && !push_msg(&c, "system", system, strlen(system))) {
        rc = cli_fail("chat", SLIM_ERR_NOMEM);
        goto out;
    }
    const size_t n_head = c.n_msgs;
    const int tty = isatty(STDIN_FILENO);
    if (tty)
        fprintf(stderr,
                "slim chat: %s, template %s, context %d tokens.  /reset starts over; Ctrl-C "
                "stops a reply; ctrl-D quits.\n",
                info.name[0] ? info.name : info.architecture, family, slim_context_n_ctx(c.ctx));
    cli_reader *in = cli_reader_open("> ");
    if (!in) {
        rc = cli_fail("chat", SLIM_ERR_NOMEM);
        goto out;
    }
    cli_on_sigint(0);
    int armed = 0; /* a Ctrl-C at an empty prompt: the next one quits */
    for (;;) {
        const char *line = NULL;
        size_t len = 0;
        const int got = cli_reader_get(in, &line, &len);
        if (got == CLI_LINE_INTR) {
            cli_sigint = 0;
            if (armed) break;
            armed = 1;
            fputs("(Ctrl-C again or ctrl-D to quit)\n", stderr);
            continue;
        }
        if (got == CLI_LINE_ERR) {
            fprintf(stderr, "slim chat: cannot read standard input\n");
            rc = 1;
            break;
        }
        if (got == CLI_LINE_EOF) break;
        armed = 0;
        if (len == 0) continue;
        if (!strcmp(line, "/reset")) {
            pop_msgs(&c, n_head);
            slim_context_reset(c.ctx);
            slim_sampler_reset(c.sampler);
            c.n_kv = 0;
            if (tty) fputs("(conversation reset)\n", stderr);
            continue;
        }
        const long long bad = cli_utf8_invalid(line, len);
        if (bad >= 0)
            fprintf(stderr, "slim chat: warning: the line is not valid UTF-8 at byte offset %lld\n",
                    bad);
        cli_sigint = 0; /* a Ctrl-C from now on stops this reply */
        if (chat_turn(&c, line, len) > 0 || c.write_failed) {
            rc = 1;
            break;
        }
    }
    signal(SIGINT, SIG_DFL);
    if (tty) fputc('\n', stderr);
    cli_reader_close(in);
out:
    if (c.dump) fclose(c.dump);
    pop_msgs(&c, 0);
    free(c.msgs);
    free(c.kv);
    slim_sampler_free(c.sampler);
    slim_context_free(c.ctx);
    slim_model_free(c.model);
    return rc;
}
