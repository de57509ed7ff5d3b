/* slim: the command-line tool: run, info, tokenize, bench (bench.c), chat (chat.c),
 * version. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "serve.h"

int cli_fail(const char *what, slim_status st) {
    fprintf(stderr, "slim: %s: %s: %s\n", what, slim_status_string(st), slim_last_error());
    return 1;
}

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static const char run_usage[] =
    "usage: slim run -m FILE (-p TEXT | -f FILE) [options]\n"
    "  Generate text after the prompt, streaming it to stdout; timings and why the\n"
    "  generation stopped go to stderr.\n"
    "  -m, --model PATH   GGUF model file or Hugging Face model directory\n"
    "  -p, --prompt TEXT  prompt (completion style)\n"
    "  -f, --file FILE    read the prompt from FILE, - for standard input (one final\n"
    "                     newline is dropped)\n"
    "  --no-echo          print only the generated text, not the prompt before it\n"
    "  -n, --n-predict N  tokens to generate (default 128)\n"
    "  -t, --threads N    CPU threads (default: all)\n"
    "  -c, --ctx-size N   context length (default: min(training context, 4096))\n"
    "  --temp T           temperature, 0 = greedy (default 0.8)\n"
    "  --top-k K          (default 40, 0 = off)\n"
    "  --top-p P          (default 0.95, 1 = off)\n"
    "  --min-p P          (default 0.05, 0 = off)\n"
    "  --repeat-penalty R (default 1 = off)   --repeat-last-n N (default 64)\n"
    "  --presence-penalty F   --frequency-penalty F   (default 0)\n"
    "  --seed S           random seed (default 0)\n"
    "  --no-mmap          read weights into memory instead of mapping the file\n"
    "  --backend B        cpu (default) or cuda (one NVIDIA GPU; a build with GPU=1)\n"
    "  --weight-type T    convert the weight matrices at load: f16, bf16, q8_0, q4_0,\n"
    "                     q4_1, q5_0, q5_1, q4_k, q5_k, q6_k (default keep)\n"
    "  --kv-type K        KV cache f16 (default) or f32 (exact; CPU only)\n"
    "  --chat             the prompt is one user message: render it with the model's\n"
    "                     chat template (only the reply is printed)\n"
    "  --template NAME    with --chat: chatml, llama3, gemma, mistral-v3, mistral-tekken,\n"
    "                     phi3 or phi4 instead of the model's template\n"
    "  --system TEXT      with --chat: a system message before the prompt\n"
    "  --lora PATH[:S]    apply a LoRA adapter (a PEFT directory or a llama.cpp GGUF\n"
    "                     adapter) with scale S (default 1); repeatable, up to 16\n"
    "  --json-schema FILE output: JSON valid for the JSON Schema in FILE\n"
    "  --grammar FILE     output: a sentence of the GBNF grammar in FILE (rule root)\n"
    "  --regex RE         output: matches the regex RE (the whole output)\n"
    "  --choices A,B,C    output: exactly one of the comma-separated strings\n"
    "  --json             output: any JSON object\n"
    "  --json-whitespace  JSON output may have whitespace between tokens (default compact)\n"
    "  Ctrl-C stops the generation (a second one kills).\n"
    "exit status: 0 done (end of text, or -n tokens), 1 error, 2 usage error, 3 the\n"
    "  context filled before -n tokens (raise -c), 130 stopped by Ctrl-C\n";

typedef struct run_state {
    int32_t n_passed; /* tokens the callback saw (an end-of-text token is not passed) */
    int write_failed;
} run_state;

/* Stream a piece; stop on a write error or Ctrl-C. */
static int on_token(slim_token tok, const char *piece, size_t len, void *user) {
    (void)tok;
    run_state *rs = user;
    rs->n_passed++;
    if (fwrite(piece, 1, len, stdout) != len || fflush(stdout)) {
        rs->write_failed = 1;
        return 1;
    }
    return cli_sigint != 0;
}

/* --lora PATH[:scale]: the scale after the last ':' when it parses as a
 * number, else the whole argument is the path.  The context keeps the
 * adapter alive, so the handle is released at once. */
static int attach_lora(slim_model *model, slim_context *ctx, const char *arg) {
    char path[4096];
    double scale = 1.0;
    snprintf(path, sizeof path, "%s", arg);
    char *colon = strrchr(path, ':'), *end;
    if (colon && colon[1]) {
        errno = 0;
        const double v = strtod(colon + 1, &end);
        if (!errno && !*end) {
            scale = v;
            *colon = '\0';
        }
    }
    slim_lora *lora = NULL;
    slim_status st = slim_lora_load(model, path, &lora);
    if (st) return cli_fail("lora", st);
    st = slim_context_attach_lora(ctx, lora, (float)scale);
    slim_lora_free(lora);
    return st ? cli_fail("lora", st) : 0;
}

/* Warn about text that is not UTF-8 (the tokenizer takes the bytes as they are). */
static void warn_utf8(const char *cmd, const char *what, const char *s, size_t n) {
    const long long bad = cli_utf8_invalid(s, n);
    if (bad >= 0)
        fprintf(stderr, "slim %s: warning: %s is not valid UTF-8 at byte offset %lld (0x%02x)\n",
                cmd, what, bad, (unsigned char)s[bad]);
}

static int cmd_run(int argc, char **argv) {
    const char *model_path = NULL, *prompt = NULL, *prompt_file = NULL, *tmpl = NULL;
    const char *system = NULL, *loras[16];
    int chat = 0, n_lora = 0, echo = 1;
    slim_sampler_params sp = slim_sampler_default_params();
    slim_context_params cp = slim_context_default_params();
    slim_model_params mp = slim_model_default_params();
    slim_generate_params gp = slim_generate_default_params();
    cli_constraint con = CLI_CONSTRAINT_NONE;
    cli_opts o = cli_opts_init("run", argc, argv);
    const char *a;
    int k;
    while ((k = cli_next(&o, &a)) == CLI_OPTION || k == CLI_OPERAND) {
        long long x;
        int handled;
        if (k == CLI_OPERAND) {
            return cli_extra(&o, a);
        } else if (cli_is(&o, "-h", "--help")) {
            fputs(run_usage, stdout);
            return 0;
        } else if (cli_is(&o, "-m", "--model")) {
            if (!(model_path = cli_value(&o))) return 2;
        } else if (cli_is(&o, "-p", "--prompt")) {
            if (!(prompt = cli_value(&o))) return 2;
        } else if (cli_is(&o, "-f", "--file")) {
            if (!(prompt_file = cli_value(&o))) return 2;
        } else if (cli_is(&o, NULL, "--no-echo")) {
            echo = 0;
        } else if (cli_is(&o, "-n", "--n-predict")) {
            if (!cli_int(&o, 0, 1000000000, &x)) return 2;
            gp.max_tokens = (int32_t)x;
        } else if ((handled = cli_model_opt(&o, &sp, &cp, &mp)) != 0) {
            if (handled < 0) return 2;
        } else if ((handled = cli_constraint_opt(&o, &con)) != 0) {
            if (handled < 0) return 2;
        } else if (cli_is(&o, NULL, "--chat")) {
            chat = 1;
        } else if (cli_is(&o, NULL, "--lora")) {
            if (n_lora == 16) return cli_usage_error(&o, "at most 16 --lora adapters");
            if (!(loras[n_lora++] = cli_value(&o))) return 2;
        } else if (cli_is(&o, NULL, "--template")) {
            if (!(tmpl = cli_value(&o))) return 2;
        } else if (cli_is(&o, NULL, "--system")) {
            if (!(system = cli_value(&o))) return 2;
        } else {
            return cli_unknown(&o);
        }
    }
    if (k == CLI_ERR) return 2;
    if (!model_path || (!prompt && !prompt_file)) {
        fprintf(stderr, "slim run: -m FILE and -p TEXT (or -f FILE) are required\n%s", run_usage);
        return 2;
    }
    if (prompt && prompt_file) return cli_usage_error(&o, "-p and -f both give the prompt");
    if ((tmpl || system) && !chat)
        return cli_usage_error(&o, "--template and --system need --chat");
    char *file_text = NULL;
    if (prompt_file) {
        size_t len = 0;
        if (!(file_text = cli_read_file("run", prompt_file, &len))) return 1;
        if (strlen(file_text) != len) {
            fprintf(stderr, "slim run: %s has a NUL byte at offset %zu: a prompt is text\n",
                    prompt_file, strlen(file_text));
            free(file_text);
            return 1;
        }
        if (len && file_text[len - 1] == '\n') file_text[--len] = '\0'; /* as `$(cat FILE)` */
        if (len && file_text[len - 1] == '\r') file_text[--len] = '\0';
        prompt = file_text;
    }
    warn_utf8("run", "the prompt", prompt, strlen(prompt));
    if (system) warn_utf8("run", "--system", system, strlen(system));

    double t0 = now_ms();
    slim_model *model = NULL;
    slim_context *ctx = NULL;
    slim_sampler *sampler = NULL;
    char *rendered = NULL;
    int rc = 0;
    slim_status st = slim_model_load(model_path, &mp, &model);
    if (st) {
        rc = cli_fail("load", st);
        goto out;
    }
    double load_ms = now_ms() - t0;
    if ((st = slim_context_create(model, &cp, &ctx))) {
        rc = cli_fail("context", st);
        goto out;
    }
    if ((st = slim_sampler_create(&sp, &sampler))) {
        rc = cli_fail("sampler", st);
        goto out;
    }
    for (int i = 0; i < n_lora; i++)
        if ((rc = attach_lora(model, ctx, loras[i]))) goto out;
    if ((rc = cli_constraint_attach("run", &con, model, sampler))) goto out;
    if (chat) { /* the prompt as one user message, in the model's chat template */
        slim_chat_message msgs[2] = {{"system", system ? system : ""}, {"user", prompt}};
        size_t off = system ? 0 : 1, n = 0;
        if ((st = slim_chat_render(model, tmpl, msgs + off, 2 - off, 1, NULL, 0, &n)) ||
            !(rendered = malloc(n + 1)) ||
            (st = slim_chat_render(model, tmpl, msgs + off, 2 - off, 1, rendered, n, &n))) {
            rc = cli_fail("chat template", st ? st : SLIM_ERR_NOMEM);
            goto out;
        }
        rendered[n] = '\0';
        prompt = rendered;
        gp.tokenize_flags = SLIM_TOKENIZE_ADD_BOS | SLIM_TOKENIZE_PARSE_SPECIAL;
    }
    /* The prompt must fit the context: say so before echoing any of it. */
    size_t n_prompt = 0;
    if ((st =
             slim_tokenize(model, prompt, strlen(prompt), gp.tokenize_flags, NULL, 0, &n_prompt))) {
        rc = cli_fail("tokenize", st);
        goto out;
    }
    const int32_t n_ctx = slim_context_n_ctx(ctx);
    slim_model_info info = {.struct_size = sizeof info};
    slim_model_get_info(model, &info);
    if (n_prompt == 0) {
        fprintf(stderr, "slim run: the prompt is empty (no tokens)\n");
        rc = 1;
        goto out;
    }
    if (n_prompt > (size_t)n_ctx) {
        if (n_ctx < info.n_ctx_train)
            fprintf(stderr,
                    "slim run: the prompt is %zu tokens, longer than the context of %d: "
                    "raise it with -c (--ctx-size; this model allows up to %d)\n",
                    n_prompt, n_ctx, info.n_ctx_train);
        else
            fprintf(stderr,
                    "slim run: the prompt is %zu tokens, longer than this model's context of "
                    "%d tokens (-c cannot go higher): shorten the prompt\n",
                    n_prompt, n_ctx);
        rc = 1;
        goto out;
    }
    if (!chat && echo && (fputs(prompt, stdout) < 0 || fflush(stdout))) {
        rc = cli_check_stdout();
        goto out;
    }
    cli_on_sigint(1);
    run_state rs = {0};
    slim_generate_stats stats = {.struct_size = sizeof stats};
    st = slim_generate(ctx, sampler, prompt, &gp, on_token, &rs, &stats);
    signal(SIGINT, SIG_DFL);
    if (!rs.write_failed) fputc('\n', stdout);
    if (cli_check_stdout()) {
        rc = 1;
        goto out;
    }
    if (st) {
        rc = cli_fail("generate", st);
        goto out;
    }
    fprintf(stderr, "load: %.1f ms\n", load_ms);
    fprintf(stderr, "prompt: %d tokens in %.1f ms, %.2f tokens/s\n", stats.n_prompt,
            stats.prompt_ms, stats.prompt_ms > 0 ? stats.n_prompt * 1e3 / stats.prompt_ms : 0.0);
    int n_dec = stats.n_generated > 1 ? stats.n_generated - 1 : 0;
    fprintf(stderr, "generation: %d tokens in %.1f ms, %.2f tokens/s\n", stats.n_generated,
            stats.gen_ms, stats.gen_ms > 0 ? n_dec * 1e3 / stats.gen_ms : 0.0);
    /* Why it stopped: the callback sees every token but an end-of-text one. */
    const int32_t n = stats.n_generated;
    if (cli_sigint) {
        fprintf(stderr, "stopped: interrupted (Ctrl-C) after %d tokens\n", n);
        rc = 130;
    } else if (n > rs.n_passed) {
        fprintf(stderr, "stopped: end of text after %d tokens\n", n);
    } else if (n >= gp.max_tokens) {
        fprintf(stderr, "stopped: -n %d tokens generated\n", gp.max_tokens);
    } else if (slim_context_n_past(ctx) >= n_ctx) {
        if (n_ctx < info.n_ctx_train)
            fprintf(stderr,
                    "stopped: context full after %d tokens (the context holds %d tokens, %zu of "
                    "them the prompt): raise -c (this model allows up to %d)\n",
                    n, n_ctx, n_prompt, info.n_ctx_train);
        else
            fprintf(stderr,
                    "stopped: context full after %d tokens (this model's context holds %d "
                    "tokens, %zu of them the prompt)\n",
                    n, n_ctx, n_prompt);
        rc = 3;
    } else {
        fprintf(stderr, "stopped after %d tokens\n", n);
    }
out:
    free(rendered);
    free(file_text);
    slim_sampler_free(sampler);
    slim_context_free(ctx);
    slim_model_free(model);
    return rc;
}

static const char info_usage[] = "usage: slim info FILE\n"
                                 "  Print a model's metadata and tensor table.\n";

static int cmd_info(int argc, char **argv) {
    cli_opts o = cli_opts_init("info", argc, argv);
    const char *a, *path = NULL;
    int k;
    while ((k = cli_next(&o, &a)) == CLI_OPTION || k == CLI_OPERAND) {
        if (k == CLI_OPERAND) {
            if (path) return cli_extra(&o, a);
            path = a;
        } else if (cli_is(&o, "-h", "--help")) {
            fputs(info_usage, stdout);
            return 0;
        } else {
            return cli_unknown(&o);
        }
    }
    if (k == CLI_ERR) return 2;
    if (!path) {
        fputs(info_usage, stderr);
        return 2;
    }
    slim_model *model = NULL;
    slim_status st = slim_model_load(path, NULL, &model);
    if (st) return cli_fail("load", st);
    slim_model_info info = {.struct_size = sizeof info};
    slim_model_get_info(model, &info);
    printf("architecture: %s\nname: %s\nfile type: %s\nparameters: %llu\nfile size: %llu bytes\n"
           "vocab: %d  context: %d  embd: %d  layers: %d  heads: %d/%d  head_dim: %d\n\n",
           info.architecture, info.name, info.file_type, (unsigned long long)info.n_params,
           (unsigned long long)info.file_size, info.n_vocab, info.n_ctx_train, info.n_embd,
           info.n_layer, info.n_head, info.n_head_kv, info.head_dim);
    printf("metadata (%lld keys):\n", (long long)slim_model_meta_count(model));
    char key[256], val[512];
    for (int64_t i = 0; i < slim_model_meta_count(model); i++) {
        slim_model_meta_get(model, i, key, sizeof key, val, sizeof val); /* truncation is fine */
        printf("  %-40s %s\n", key, val);
    }
    printf("\ntensors (%lld):\n", (long long)slim_model_tensor_count(model));
    for (int64_t i = 0; i < slim_model_tensor_count(model); i++) {
        slim_tensor_info t = {.struct_size = sizeof t};
        slim_model_tensor_get(model, i, &t);
        char shape[96];
        int n = snprintf(shape, sizeof shape, "[%lld", (long long)t.ne[0]);
        for (int d = 1; d < t.n_dims; d++)
            n += snprintf(shape + n, sizeof shape - (size_t)n, ", %lld", (long long)t.ne[d]);
        snprintf(shape + n, sizeof shape - (size_t)n, "]");
        printf("  %-36s %-6s %-20s offset 0x%-10llx %llu bytes\n", t.name, t.type, shape,
               (unsigned long long)t.offset, (unsigned long long)t.size);
    }
    slim_model_free(model);
    return 0;
}

static const char tokenize_usage[] =
    "usage: slim tokenize -m FILE [--no-bos] [--special] [--] TEXT\n"
    "  Print the token ids and pieces of TEXT (after --, TEXT may start with -).\n";

static int cmd_tokenize(int argc, char **argv) {
    const char *model_path = NULL, *text = NULL;
    uint32_t flags = SLIM_TOKENIZE_ADD_BOS;
    cli_opts o = cli_opts_init("tokenize", argc, argv);
    const char *a;
    int k;
    while ((k = cli_next(&o, &a)) == CLI_OPTION || k == CLI_OPERAND) {
        if (k == CLI_OPERAND) {
            if (text) return cli_extra(&o, a);
            text = a;
        } else if (cli_is(&o, "-h", "--help")) {
            fputs(tokenize_usage, stdout);
            return 0;
        } else if (cli_is(&o, "-m", "--model")) {
            if (!(model_path = cli_value(&o))) return 2;
        } else if (cli_is(&o, NULL, "--no-bos")) {
            flags &= ~(uint32_t)SLIM_TOKENIZE_ADD_BOS;
        } else if (cli_is(&o, NULL, "--special")) {
            flags |= SLIM_TOKENIZE_PARSE_SPECIAL;
        } else {
            return cli_unknown(&o);
        }
    }
    if (k == CLI_ERR) return 2;
    if (!model_path || !text) {
        fputs(tokenize_usage, stderr);
        return 2;
    }
    slim_model *model = NULL;
    slim_status st = slim_model_load(model_path, NULL, &model);
    if (st) return cli_fail("load", st);
    size_t n = 0;
    int rc = 0;
    slim_token *toks = NULL;
    if ((st = slim_tokenize(model, text, strlen(text), flags, NULL, 0, &n)) ||
        !(toks = malloc((n ? n : 1) * sizeof *toks)) ||
        (st = slim_tokenize(model, text, strlen(text), flags, toks, n, &n))) {
        rc = cli_fail("tokenize", st ? st : SLIM_ERR_NOMEM);
    } else {
        for (size_t i = 0; i < n; i++) {
            char piece[256];
            size_t len = 0;
            slim_token_to_piece(model, toks[i], SLIM_DETOKENIZE_RENDER_SPECIAL, piece,
                                sizeof piece - 1, &len);
            piece[len < sizeof piece - 1 ? len : 0] = '\0';
            printf("%6d  '%s'\n", toks[i], piece);
        }
    }
    free(toks);
    slim_model_free(model);
    return rc;
}

static const char usage[] = "usage: slim COMMAND [options]   (slim COMMAND --help for details)\n"
                            "  run       generate text from a prompt\n"
                            "  info      print a model's metadata and tensors\n"
                            "  tokenize  print the tokens of a text\n"
                            "  bench     measure prompt and generation speed\n"
                            "  chat      chat with an instruction-tuned model\n"
                            "  convert   write a model as GGUF, optionally quantized\n"
                            "  classify  label texts with a model: the label, its probability\n"
                            "  serve     an OpenAI-compatible HTTP server\n"
                            "  eval      which candidate model meets a task's bar, at what cost\n"
                            "  version   print the library version (also --version)\n";

static int dispatch(int argc, char **argv) {
    if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
        fputs(usage, argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (!strcmp(argv[1], "run")) return cmd_run(argc - 2, argv + 2);
    if (!strcmp(argv[1], "info")) return cmd_info(argc - 2, argv + 2);
    if (!strcmp(argv[1], "tokenize")) return cmd_tokenize(argc - 2, argv + 2);
    if (!strcmp(argv[1], "bench"))
        return cli_bench_is_parallel(argc - 2, argv + 2) ? cli_bench_parallel(argc - 2, argv + 2)
                                                         : cli_bench(argc - 2, argv + 2);
    if (!strcmp(argv[1], "chat")) return cli_chat(argc - 2, argv + 2);
    if (!strcmp(argv[1], "convert")) return cli_convert(argc - 2, argv + 2);
    if (!strcmp(argv[1], "classify")) return cli_classify(argc - 2, argv + 2);
    if (!strcmp(argv[1], "serve")) return cli_serve(argc - 2, argv + 2);
    if (!strcmp(argv[1], "eval")) return cli_eval(argc - 2, argv + 2);
    if (!strcmp(argv[1], "version") || !strcmp(argv[1], "--version") || !strcmp(argv[1], "-V")) {
        if (argc > 2) {
            fprintf(stderr, "slim version: unexpected argument '%s'\n", argv[2]);
            return 2;
        }
        printf("slim %s\n", slim_version_string()); /* the library linked */
        return 0;
    }
    fprintf(stderr, "slim: unknown command '%s'\n%s", argv[1], usage);
    return 2;
}

int main(int argc, char **argv) {
    const int rc = dispatch(argc, argv);
    /* Output that never arrived (a full disk, a closed pipe) is a failure. */
    return cli_check_stdout() && rc == 0 ? 1 : rc;
}
