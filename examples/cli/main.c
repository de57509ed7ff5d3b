/* slim: the command-line tool: run, info, tokenize, bench (bench.c), chat (chat.c),
 * version. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"

int cli_fail(const char *what, slim_status st) {
    fprintf(stderr, "slim: %s: %s: %s\n", what, slim_status_string(st), slim_last_error());
    return 1;
}

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* Parse a number option's value or report it. */
int cli_parse_num(const char *opt, const char *s, double lo, double hi, double *out) {
    char *end;
    errno = 0;
    double v = s ? strtod(s, &end) : 0;
    if (!s || errno || end == s || *end || !(v >= lo && v <= hi)) { /* NaN fails too */
        fprintf(stderr, "slim: %s needs a number in [%g, %g], got '%s'\n", opt, lo, hi, s ? s : "");
        return 0;
    }
    *out = v;
    return 1;
}

static const char run_usage[] =
    "usage: slim run -m FILE -p TEXT [options]\n"
    "  Generate text after the prompt, streaming it to stdout; timings go to stderr.\n"
    "  -m, --model PATH   GGUF model file or Hugging Face model directory\n"
    "  -p, --prompt TEXT  prompt (completion style)\n"
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
    "                     adapter) with scale S (default 1); repeatable, up to 16\n";

static int on_token(slim_token tok, const char *piece, size_t len, void *user) {
    (void)tok, (void)user;
    fwrite(piece, 1, len, stdout);
    fflush(stdout);
    return 0;
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

static int cmd_run(int argc, char **argv) {
    const char *model_path = NULL, *prompt = NULL, *tmpl = NULL, *system = NULL;
    const char *loras[16];
    int chat = 0, n_lora = 0;
    slim_sampler_params sp = slim_sampler_default_params();
    slim_context_params cp = slim_context_default_params();
    slim_model_params mp = slim_model_default_params();
    slim_generate_params gp = slim_generate_default_params();
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        double d;
        int handled;
#define NUM(lo, hi) (cli_parse_num(a, v, lo, hi, &d) ? (i++, 1) : 0)
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(run_usage, stdout);
            return 0;
        } else if (!strcmp(a, "-m") || !strcmp(a, "--model")) {
            if (!v) break;
            model_path = v, i++;
        } else if (!strcmp(a, "-p") || !strcmp(a, "--prompt")) {
            if (!v) break;
            prompt = v, i++;
        } else if (!strcmp(a, "-n") || !strcmp(a, "--n-predict")) {
            if (!NUM(0, 1e9)) return 2;
            gp.max_tokens = (int32_t)d;
        } else if ((handled = cli_parse_model_opt(a, v, &i, &sp, &cp, &mp)) != 0) {
            if (handled < 0) return 2;
        } else if (!strcmp(a, "--chat")) {
            chat = 1;
        } else if (!strcmp(a, "--lora")) {
            if (!v) break;
            if (n_lora == 16) {
                fprintf(stderr, "slim run: at most 16 --lora adapters\n");
                return 2;
            }
            loras[n_lora++] = v, i++;
        } else if (!strcmp(a, "--template") || !strcmp(a, "--system")) {
            if (!v) break;
            *(a[2] == 't' ? &tmpl : &system) = v, i++;
        } else {
            fprintf(stderr, "slim run: unknown option '%s'\n%s", a, run_usage);
            return 2;
        }
#undef NUM
    }
    if (!model_path || !prompt) {
        fprintf(stderr, "slim run: -m FILE and -p TEXT are required\n%s", run_usage);
        return 2;
    }
    if ((tmpl || system) && !chat) {
        fprintf(stderr, "slim run: --template and --system need --chat\n");
        return 2;
    }
    double t0 = now_ms();
    slim_model *model = NULL;
    slim_context *ctx = NULL;
    slim_sampler *sampler = NULL;
    char *rendered = NULL;
    slim_status st = slim_model_load(model_path, &mp, &model);
    if (st) return cli_fail("load", st);
    double load_ms = now_ms() - t0;
    int rc = 0;
    if ((st = slim_context_create(model, &cp, &ctx))) {
        rc = cli_fail("context", st);
        goto out;
    }
    if ((st = slim_sampler_create(&sp, &sampler))) {
        rc = cli_fail("sampler", st);
        goto out;
    }
    for (int k = 0; k < n_lora; k++)
        if ((rc = attach_lora(model, ctx, loras[k]))) goto out;
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
    } else {
        fputs(prompt, stdout);
    }
    slim_generate_stats stats = {.struct_size = sizeof stats};
    st = slim_generate(ctx, sampler, prompt, &gp, on_token, NULL, &stats);
    fputc('\n', stdout);
    fflush(stdout);
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
out:
    free(rendered);
    slim_sampler_free(sampler);
    slim_context_free(ctx);
    slim_model_free(model);
    return rc;
}

static int cmd_info(int argc, char **argv) {
    if (argc < 1 || !strcmp(argv[0], "-h") || !strcmp(argv[0], "--help")) {
        fputs("usage: slim info FILE\n  Print a GGUF model's metadata and tensor table.\n",
              argc < 1 ? stderr : stdout);
        return argc < 1 ? 2 : 0;
    }
    slim_model *model = NULL;
    slim_status st = slim_model_load(argv[0], NULL, &model);
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

static int cmd_tokenize(int argc, char **argv) {
    const char *model_path = NULL, *text = NULL;
    uint32_t flags = SLIM_TOKENIZE_ADD_BOS;
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            puts("usage: slim tokenize -m FILE [--no-bos] [--special] TEXT\n"
                 "  Print the token ids and pieces of TEXT.");
            return 0;
        } else if (!strcmp(argv[i], "-m") && i + 1 < argc) {
            model_path = argv[++i];
        } else if (!strcmp(argv[i], "--no-bos")) {
            flags &= ~(uint32_t)SLIM_TOKENIZE_ADD_BOS;
        } else if (!strcmp(argv[i], "--special")) {
            flags |= SLIM_TOKENIZE_PARSE_SPECIAL;
        } else if (!text) {
            text = argv[i];
        } else {
            fprintf(stderr, "slim tokenize: unexpected argument '%s'\n", argv[i]);
            return 2;
        }
    }
    if (!model_path || !text) {
        fprintf(stderr, "usage: slim tokenize -m FILE [--no-bos] [--special] TEXT\n");
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
                            "  version   print the library version\n";

int main(int argc, char **argv) {
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
    if (!strcmp(argv[1], "version")) {
        printf("slim %s\n", slim_version_string());
        return 0;
    }
    fprintf(stderr, "slim: unknown command '%s'\n%s", argv[1], usage);
    return 2;
}
