/* The slim CLI (examples/cli/main.c) end to end: the binary named by SLIM_CLI
 * (default build/slim) is run with fork + exec, its stdout and stderr are
 * captured separately (through temporary files), and its exit status, output
 * and diagnostics are checked.  Tests run from the repository root. */
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "slim.h"
#include "suites.h"

static const char *cli_path(void) {
    const char *p = getenv("SLIM_CLI");
    return p && *p ? p : "build/slim";
}

typedef struct cli_result {
    int status; /* exit code; 128 + signal if killed */
    char *out, *err;
    size_t n_out, n_err;
} cli_result;

static char *slurp(int fd, size_t *n) {
    off_t size = lseek(fd, 0, SEEK_END);
    ck_assert_int_ge(size, 0);
    char *buf = malloc((size_t)size + 1);
    ck_assert_ptr_nonnull(buf);
    ck_assert_int_eq(pread(fd, buf, (size_t)size, 0), size);
    buf[size] = '\0';
    *n = (size_t)size;
    return buf;
}

/* Run the CLI with the NULL-terminated arguments (after argv[0]), stdin from
 * in_path (NULL: /dev/null), stdout to to_path (NULL: captured). */
static cli_result run_cli_io(const char *in_path, const char *to_path, const char *const *args) {
    const char *argv[32];
    size_t n = 0;
    argv[n++] = cli_path();
    for (; args[n - 1]; n++) {
        ck_assert_uint_lt(n, 31);
        argv[n] = args[n - 1];
    }
    argv[n] = NULL;
    ck_assert_msg(access(cli_path(), X_OK) == 0, "CLI binary %s not found (set SLIM_CLI)",
                  cli_path());
    char out_path[] = "/tmp/slim_test_cli_out_XXXXXX", err_path[] = "/tmp/slim_test_cli_err_XXXXXX";
    int out_fd = mkstemp(out_path), err_fd = mkstemp(err_path);
    ck_assert_int_ge(out_fd, 0);
    ck_assert_int_ge(err_fd, 0);
    unlink(out_path);
    unlink(err_path);
    fflush(NULL);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        int in_fd = open(in_path ? in_path : "/dev/null", O_RDONLY);
        if (in_fd >= 0) dup2(in_fd, STDIN_FILENO);
        int to_fd = to_path ? open(to_path, O_WRONLY) : out_fd;
        if (to_fd >= 0) dup2(to_fd, STDOUT_FILENO);
        dup2(err_fd, STDERR_FILENO);
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    int ws = 0;
    ck_assert_int_eq(waitpid(pid, &ws, 0), pid);
    cli_result r = {0};
    r.status = WIFEXITED(ws) ? WEXITSTATUS(ws) : 128 + (WIFSIGNALED(ws) ? WTERMSIG(ws) : 0);
    r.out = slurp(out_fd, &r.n_out);
    r.err = slurp(err_fd, &r.n_err);
    close(out_fd);
    close(err_fd);
    ck_assert_msg(r.status != 127, "could not exec %s", cli_path());
    ck_assert_msg(r.status < 128, "%s killed by signal %d; stderr: %s", cli_path(), r.status - 128,
                  r.err);
    return r;
}

static cli_result run_cli_v(const char *const *args) { return run_cli_io(NULL, NULL, args); }

#define RUN_CLI(...) run_cli_v((const char *const[]){__VA_ARGS__, NULL})
/* The same with stdin from a file and stdout to a file (either NULL). */
#define RUN_CLI_IO(in, out, ...) run_cli_io((in), (out), (const char *const[]){__VA_ARGS__, NULL})

static void cli_free(cli_result *r) {
    free(r->out);
    free(r->err);
}

#define ASSERT_CONTAINS(hay, needle)                                                               \
    ck_assert_msg(strstr((hay), (needle)) != NULL, "'%s' not found in:\n%s", (needle), (hay))

#define ASSERT_STATUS(r, want)                                                                     \
    ck_assert_msg((r).status == (want), "exit status %d, expected %d\nstdout: %s\nstderr: %s",     \
                  (r).status, (want), (r).out, (r).err)

/* ---- help, usage, version -------------------------------------------------- */

START_TEST(test_cli_help) {
    cli_result r = RUN_CLI("--help");
    ASSERT_STATUS(r, 0);
    ASSERT_CONTAINS(r.out, "usage: slim");
    ASSERT_CONTAINS(r.out, "run");
    ASSERT_CONTAINS(r.out, "info");
    ASSERT_CONTAINS(r.out, "tokenize");
    cli_free(&r);
    r = RUN_CLI("-h");
    ASSERT_STATUS(r, 0);
    ASSERT_CONTAINS(r.out, "usage: slim");
    cli_free(&r);

    const char *cmds[] = {"run", "info", "tokenize"};
    for (size_t i = 0; i < 3; i++) {
        r = RUN_CLI(cmds[i], "--help");
        ASSERT_STATUS(r, 0);
        char want[64];
        snprintf(want, sizeof want, "usage: slim %s", cmds[i]);
        ASSERT_CONTAINS(r.out, want);
        cli_free(&r);
    }
    r = RUN_CLI("run", "--help");
    ASSERT_CONTAINS(r.out, "--temp");
    ASSERT_CONTAINS(r.out, "--seed");
    ASSERT_CONTAINS(r.out, "-n");
    cli_free(&r);
}
END_TEST

START_TEST(test_cli_usage_errors) {
    /* No command: usage on stderr, exit 2. */
    cli_result r = run_cli_v((const char *const[]){NULL});
    ASSERT_STATUS(r, 2);
    ASSERT_CONTAINS(r.err, "usage: slim");
    ck_assert_uint_eq(r.n_out, 0);
    cli_free(&r);
    r = RUN_CLI("bogus");
    ASSERT_STATUS(r, 2);
    ASSERT_CONTAINS(r.err, "bogus");
    ASSERT_CONTAINS(r.err, "usage: slim");
    ck_assert_uint_eq(r.n_out, 0);
    cli_free(&r);
    /* Missing required arguments. */
    r = RUN_CLI("run");
    ASSERT_STATUS(r, 2);
    ASSERT_CONTAINS(r.err, "-m");
    cli_free(&r);
    r = RUN_CLI("run", "-m", test_model_path());
    ASSERT_STATUS(r, 2);
    ASSERT_CONTAINS(r.err, "-p");
    cli_free(&r);
    r = RUN_CLI("info");
    ASSERT_STATUS(r, 2);
    ASSERT_CONTAINS(r.err, "usage: slim info");
    cli_free(&r);
    r = RUN_CLI("tokenize", "-m", test_model_path());
    ASSERT_STATUS(r, 2);
    ASSERT_CONTAINS(r.err, "usage: slim tokenize");
    cli_free(&r);
    r = RUN_CLI("tokenize", "-m", test_model_path(), "one", "two");
    ASSERT_STATUS(r, 2);
    ASSERT_CONTAINS(r.err, "two");
    cli_free(&r);
}
END_TEST

START_TEST(test_cli_bad_options) {
    const char *m = test_model_path();
    struct {
        const char *opt, *val;
    } bad[] = {
        {"--temp", "abc"}, {"--temp", "-1"}, {"-n", "-5"},     {"-n", "12x"}, {"-t", "0"},
        {"-t", "abc"},     {"--top-p", "2"}, {"--seed", "-3"}, {"-c", "0"},   {"-n", ""},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cli_result r = RUN_CLI("run", "-m", m, "-p", "Hi", bad[i].opt, bad[i].val);
        ASSERT_STATUS(r, 2);
        ASSERT_CONTAINS(r.err, bad[i].opt);
        ck_assert_uint_eq(r.n_out, 0);
        cli_free(&r);
    }
    /* An option without its value. */
    cli_result r = RUN_CLI("run", "-m", m, "-p", "Hi", "--temp");
    ASSERT_STATUS(r, 2);
    ASSERT_CONTAINS(r.err, "--temp");
    cli_free(&r);
    r = RUN_CLI("run", "-m", m, "-p", "Hi", "--frobnicate");
    ASSERT_STATUS(r, 2);
    ASSERT_CONTAINS(r.err, "--frobnicate");
    cli_free(&r);
    /* Chat-only options without --chat are a usage error, not ignored. */
    r = RUN_CLI("run", "-m", m, "-p", "Hi", "--system", "Be brief.");
    ASSERT_STATUS(r, 2);
    ASSERT_CONTAINS(r.err, "--chat");
    cli_free(&r);
    /* A context longer than the model's training context is the library's
     * refusal: exit 1 naming n_ctx. */
    r = RUN_CLI("run", "-m", m, "-p", "Hi", "-c", "40000", "-n", "1");
    ASSERT_STATUS(r, 1);
    ASSERT_CONTAINS(r.err, "n_ctx");
    ASSERT_CONTAINS(r.err, "invalid argument");
    cli_free(&r);
}
END_TEST

/* "nan" is a number to strtod, but inside no range: a usage error (2) like any
 * other bad value, never passed on to the library or cast to an integer. */
START_TEST(test_cli_nan_option) {
    const char *m = test_model_path();
    const char *opts[] = {"--temp", "-n", "-t", "--min-p", "--top-p"};
    for (size_t i = 0; i < sizeof opts / sizeof opts[0]; i++) {
        cli_result r = RUN_CLI("run", "-m", m, "-p", "Hi", opts[i], "nan");
        ASSERT_STATUS(r, 2);
        ASSERT_CONTAINS(r.err, opts[i]);
        ck_assert_uint_eq(r.n_out, 0);
        cli_free(&r);
    }
}
END_TEST

START_TEST(test_cli_version) {
    cli_result r = RUN_CLI("version");
    ASSERT_STATUS(r, 0);
    ck_assert_str_eq(r.out, "slim " SLIM_VERSION_STRING "\n");
    ck_assert_uint_eq(r.n_err, 0);
    cli_free(&r);
}
END_TEST

/* ---- load errors ----------------------------------------------------------- */

START_TEST(test_cli_missing_model) {
    const char *path = "/tmp/slim-test-cli-no-such-dir/missing-model.gguf";
    cli_result r = RUN_CLI("run", "-m", path, "-p", "Hello", "-n", "4");
    ASSERT_STATUS(r, 1);
    ASSERT_CONTAINS(r.err, path);
    ASSERT_CONTAINS(r.err, "I/O");
    ck_assert_uint_eq(r.n_out, 0);
    cli_free(&r);
    r = RUN_CLI("info", path);
    ASSERT_STATUS(r, 1);
    ASSERT_CONTAINS(r.err, path);
    ASSERT_CONTAINS(r.err, "I/O");
    cli_free(&r);
    r = RUN_CLI("tokenize", "-m", path, "Hello");
    ASSERT_STATUS(r, 1);
    ASSERT_CONTAINS(r.err, path);
    cli_free(&r);
    /* Not a model: a malformed file. */
    r = RUN_CLI("info", "tests/data/forward_golden.bin");
    ASSERT_STATUS(r, 1);
    ASSERT_CONTAINS(r.err, "tests/data/forward_golden.bin");
    ASSERT_CONTAINS(r.err, "malformed");
    cli_free(&r);
}
END_TEST

/* ---- run ------------------------------------------------------------------- */

static const char PROMPT[] = "The capital of France is";

/* "generation: N tokens in ..." -> N, or -1. */
static int generated_count(const char *err) {
    const char *g = strstr(err, "generation: ");
    int n = -1;
    if (!g || sscanf(g, "generation: %d tokens", &n) != 1) return -1;
    return n;
}

static void check_run_output(const cli_result *r, int max_tokens) {
    ASSERT_STATUS(*r, 0);
    ck_assert_msg(strncmp(r->out, PROMPT, strlen(PROMPT)) == 0,
                  "stdout does not start with "
                  "the prompt: '%s'",
                  r->out);
    ck_assert_msg(r->n_out > strlen(PROMPT) + 1, "nothing generated: '%s'", r->out);
    ck_assert_int_eq(r->out[r->n_out - 1], '\n');
    ASSERT_CONTAINS(r->err, "prompt:");
    ASSERT_CONTAINS(r->err, "generation:");
    ASSERT_CONTAINS(r->err, "tokens/s");
    ASSERT_CONTAINS(r->err, "load:");
    const int n = generated_count(r->err);
    ck_assert_int_ge(n, 1);
    ck_assert_int_le(n, max_tokens);
    /* Timings go to stderr only. */
    ck_assert_ptr_null(strstr(r->out, "tokens/s"));
}

START_TEST(test_cli_run_seeded) {
    const char *m = test_model_path();
    cli_result a = RUN_CLI("run", "-m", m, "-p", PROMPT, "-n", "12", "--seed", "7", "-t", "2");
    check_run_output(&a, 12);
    cli_result b = RUN_CLI("run", "-m", m, "-p", PROMPT, "-n", "12", "--seed", "7", "-t", "2");
    check_run_output(&b, 12);
    ck_assert_uint_eq(a.n_out, b.n_out);
    ck_assert_str_eq(a.out, b.out);
    cli_free(&a);
    cli_free(&b);
}
END_TEST

typedef struct text_buf {
    char s[1024];
    size_t n;
} text_buf;

static int append_cb(slim_token tok, const char *piece, size_t len, void *user) {
    (void)tok;
    text_buf *t = user;
    ck_assert_uint_lt(t->n + len, sizeof t->s);
    memcpy(t->s + t->n, piece, len);
    t->n += len;
    t->s[t->n] = '\0';
    return 0;
}

START_TEST(test_cli_run_greedy) {
    const char *m = test_model_path();
    cli_result a = RUN_CLI("run", "-m", m, "-p", PROMPT, "-n", "6", "--temp", "0", "-t", "1");
    check_run_output(&a, 6);
    cli_result b =
        RUN_CLI("run", "-m", m, "-p", PROMPT, "-n", "6", "--temp", "0", "-t", "1", "--seed", "99");
    check_run_output(&b, 6);
    /* Greedy ignores the seed. */
    ck_assert_str_eq(a.out, b.out);

    /* The same as the library's greedy generation. */
    slim_model *model = NULL;
    ck_assert_int_eq(slim_model_load(m, NULL, &model), SLIM_OK);
    slim_context_params cp = slim_context_default_params();
    cp.n_ctx = 64;
    cp.n_threads = 1;
    slim_context *ctx = NULL;
    ck_assert_int_eq(slim_context_create(model, &cp, &ctx), SLIM_OK);
    slim_sampler_params sp = slim_sampler_default_params();
    sp.temperature = 0;
    slim_sampler *s = NULL;
    ck_assert_int_eq(slim_sampler_create(&sp, &s), SLIM_OK);
    slim_generate_params gp = slim_generate_default_params();
    gp.max_tokens = 6;
    text_buf t;
    t.n = (size_t)snprintf(t.s, sizeof t.s, "%s", PROMPT);
    ck_assert_int_eq(slim_generate(ctx, s, PROMPT, &gp, append_cb, &t, NULL), SLIM_OK);
    ck_assert_uint_lt(t.n + 1, sizeof t.s);
    t.s[t.n++] = '\n';
    t.s[t.n] = '\0';
    ck_assert_str_eq(a.out, t.s);
    slim_sampler_free(s);
    slim_context_free(ctx);
    slim_model_free(model);

    /* --no-mmap and one token: the first greedy token. */
    cli_result c =
        RUN_CLI("run", "-m", m, "-p", PROMPT, "-n", "1", "--temp", "0", "-t", "1", "--no-mmap");
    check_run_output(&c, 1);
    ck_assert_int_eq(generated_count(c.err), 1);
    ck_assert_msg(strncmp(a.out, c.out, c.n_out - 1) == 0, "'%s' is not a prefix of '%s'", c.out,
                  a.out);
    /* -n 0: the prompt and a newline. */
    cli_result z = RUN_CLI("run", "-m", m, "-p", PROMPT, "-n", "0", "-t", "1");
    ASSERT_STATUS(z, 0);
    ck_assert_str_eq(z.out, "The capital of France is\n");
    ck_assert_int_eq(generated_count(z.err), 0);
    cli_free(&a);
    cli_free(&b);
    cli_free(&c);
    cli_free(&z);
}
END_TEST

/* ---- info, tokenize -------------------------------------------------------- */

START_TEST(test_cli_info) {
    cli_result r = RUN_CLI("info", test_model_path());
    ASSERT_STATUS(r, 0);
    ASSERT_CONTAINS(r.out, "architecture: gemma3");
    ASSERT_CONTAINS(r.out, "file type: Q4_K_M");
    ASSERT_CONTAINS(r.out, "layers: 18");
    ASSERT_CONTAINS(r.out, "vocab: 262144");
    ASSERT_CONTAINS(r.out, "metadata (33 keys)");
    ASSERT_CONTAINS(r.out, "tensors (236)");
    ASSERT_CONTAINS(r.out, "tokenizer.ggml.tokens");
    ASSERT_CONTAINS(r.out, "gemma3.block_count");
    /* The token embedding row: name, type and shape. */
    const char *row = strstr(r.out, "token_embd.weight");
    ck_assert_ptr_nonnull(row);
    const char *eol = strchr(row, '\n');
    ck_assert_ptr_nonnull(eol);
    char line[256];
    snprintf(line, sizeof line, "%.*s", (int)(eol - row), row);
    ASSERT_CONTAINS(line, "Q8_0");
    ASSERT_CONTAINS(line, "[640, 262144]");
    ASSERT_CONTAINS(line, "178257920 bytes");
    cli_free(&r);
}
END_TEST

/* Parse `slim tokenize` output ("%6d  'piece'" per line) into ids. */
static size_t parse_ids(const char *out, slim_token *ids, size_t cap) {
    size_t n = 0;
    for (const char *p = out; *p;) {
        int id;
        ck_assert_msg(sscanf(p, "%d", &id) == 1, "bad tokenize line: %s", p);
        ck_assert_uint_lt(n, cap);
        ids[n++] = id;
        const char *nl = strchr(p, '\n');
        if (!nl) break;
        p = nl + 1;
    }
    return n;
}

static void check_tokenize(slim_model *model, const char *text, uint32_t flags, const char *extra) {
    const char *m = test_model_path();
    cli_result r =
        extra ? RUN_CLI("tokenize", "-m", m, extra, text) : RUN_CLI("tokenize", "-m", m, text);
    ASSERT_STATUS(r, 0);
    slim_token cli_ids[64], api_ids[64];
    const size_t n_cli = parse_ids(r.out, cli_ids, 64);
    size_t n_api = 0;
    ck_assert_int_eq(slim_tokenize(model, text, strlen(text), flags, api_ids, 64, &n_api), SLIM_OK);
    ck_assert_uint_gt(n_api, 0);
    ck_assert_uint_eq(n_cli, n_api);
    ck_assert_mem_eq(cli_ids, api_ids, n_api * sizeof(slim_token));
    cli_free(&r);
}

START_TEST(test_cli_tokenize) {
    slim_model *model = NULL;
    ck_assert_int_eq(slim_model_load(test_model_path(), NULL, &model), SLIM_OK);
    /* Default: with BOS. */
    check_tokenize(model, "Hello world", SLIM_TOKENIZE_ADD_BOS, NULL);
    check_tokenize(model, "Hello world", 0, "--no-bos");
    check_tokenize(model, "<start_of_turn>user",
                   SLIM_TOKENIZE_ADD_BOS | SLIM_TOKENIZE_PARSE_SPECIAL, "--special");
    check_tokenize(model, "Ünïcödé text, 日本語 and emoji 🙂!", SLIM_TOKENIZE_ADD_BOS,
                   NULL);

    /* The lines show id and piece. */
    cli_result r = RUN_CLI("tokenize", "-m", test_model_path(), "Hello world");
    ASSERT_STATUS(r, 0);
    ck_assert_str_eq(r.out, "     2  '<bos>'\n  9259  'Hello'\n  1902  ' world'\n");
    cli_free(&r);
    slim_model_free(model);
}
END_TEST

/* ---- issue 19: output errors, prompt files, stop reasons, options --------- */

/* A small synthetic model: loads and generates in milliseconds, context 512. */
static const char SYNTH[] = "tests/data/synth_llama3.gguf";

/* Tokens of text with BOS on model path, by the library (the reference). */
static size_t lib_token_count(const char *path, const char *text, size_t len) {
    slim_model *model = NULL;
    ck_assert_int_eq(slim_model_load(path, NULL, &model), SLIM_OK);
    size_t n = 0;
    ck_assert_int_eq(slim_tokenize(model, text, len, SLIM_TOKENIZE_ADD_BOS, NULL, 0, &n), SLIM_OK);
    slim_model_free(model);
    return n;
}

static void write_file(const char *path, const char *data, size_t n) {
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(data, 1, n, f), n);
    ck_assert_int_eq(fclose(f), 0);
}

/* Every subcommand that writes to a full disk says so and fails. */
START_TEST(test_cli_output_errors) {
    const char *const cmds[][12] = {
        {"run", "-m", SYNTH, "-p", "hello", "-n", "4", "--temp", "0", NULL},
        {"run", "-m", SYNTH, "-p", "hello", "-n", "4", "--no-echo", NULL},
        {"info", SYNTH, NULL},
        {"bench", "-m", SYNTH, "-p", "8", "-n", "4", "-r", "1", NULL},
        {"tokenize", "-m", SYNTH, "hello", NULL},
        {"version", NULL},
        {"run", "--help", NULL},
    };
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
        cli_result r = run_cli_io(NULL, "/dev/full", cmds[i]);
        ck_assert_msg(r.status == 1, "slim %s > /dev/full: exit %d, stderr: %s", cmds[i][0],
                      r.status, r.err);
        ASSERT_CONTAINS(r.err, "error writing standard output: No space left on device");
        cli_free(&r);
    }
    /* The same to a file: 0. */
    cli_result r = RUN_CLI_IO(NULL, "/dev/null", "info", SYNTH);
    ASSERT_STATUS(r, 0);
    cli_free(&r);
    /* slim chat stops at the first reply it cannot write. */
    char in[] = "/tmp/slim_test_cli_in_XXXXXX";
    int fd = mkstemp(in);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, "hi\nhello\n", 9), 9);
    close(fd);
    r = RUN_CLI_IO(in, "/dev/full", "chat", "-m", SYNTH, "--template", "llama3", "-n", "4", "-v");
    ASSERT_STATUS(r, 1);
    ASSERT_CONTAINS(r.err, "error writing standard output");
    ASSERT_CONTAINS(r.err, "[turn 1: ");
    ck_assert_ptr_null(strstr(r.err, "[turn 2: "));
    cli_free(&r);
    r = RUN_CLI_IO(in, "/dev/null", "chat", "-m", SYNTH, "--template", "llama3", "-n", "4", "-v");
    ASSERT_STATUS(r, 0);
    ASSERT_CONTAINS(r.err, "[turn 2: ");
    cli_free(&r);
    unlink(in);
}
END_TEST

/* "stopped: ..." on stderr, or NULL. */
static const char *stop_line(const cli_result *r) { return strstr(r->err, "stopped"); }

START_TEST(test_cli_prompt_file) {
    char path[] = "/tmp/slim_test_cli_prompt_XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    close(fd);
    /* A file with a final newline (dropped) gives -p's output. */
    write_file(path, "The capital of France is\n", 25);
    cli_result p = RUN_CLI("run", "-m", SYNTH, "-p", PROMPT, "-n", "8", "--temp", "0");
    ASSERT_STATUS(p, 0);
    cli_result f = RUN_CLI("run", "-m", SYNTH, "-f", path, "-n", "8", "--temp", "0");
    ASSERT_STATUS(f, 0);
    ck_assert_str_eq(f.out, p.out);
    cli_result in = RUN_CLI_IO(path, NULL, "run", "-m", SYNTH, "-f", "-", "-n", "8", "--temp", "0");
    ASSERT_STATUS(in, 0);
    ck_assert_str_eq(in.out, p.out);
    /* --no-echo: only what follows the prompt. */
    cli_result ne =
        RUN_CLI("run", "-m", SYNTH, "--file", path, "-n", "8", "--temp", "0", "--no-echo");
    ASSERT_STATUS(ne, 0);
    ck_assert_str_eq(ne.out, p.out + strlen(PROMPT));
    cli_free(&p);
    cli_free(&f);
    cli_free(&in);
    cli_free(&ne);

    /* 200 KiB, more than one argument may be (128 KiB): read whole, counted
     * against the context before anything is echoed, the error in user terms. */
    const size_t big = 200 * 1024;
    char *text = malloc(big);
    ck_assert_ptr_nonnull(text);
    for (size_t i = 0; i < big; i++)
        text[i] = "hello world "[i % 12];
    write_file(path, text, big);
    const size_t n_tok = lib_token_count(SYNTH, text, big);
    ck_assert_uint_gt(n_tok, 512);
    char want[128];
    snprintf(want, sizeof want, "the prompt is %zu tokens, longer than", n_tok);
    const char *const modes[][2] = {{path, NULL}, {"-", path}};
    for (size_t m = 0; m < 2; m++) {
        cli_result r = RUN_CLI_IO(modes[m][1], NULL, "run", "-m", SYNTH, "-f", modes[m][0]);
        ASSERT_STATUS(r, 1);
        ck_assert_uint_eq(r.n_out, 0);
        ASSERT_CONTAINS(r.err, want);
        ASSERT_CONTAINS(r.err, "this model's context of 512 tokens");
        ck_assert_ptr_null(strstr(r.err, "slim_"));
        cli_free(&r);
    }
    cli_result r = RUN_CLI("run", "-m", SYNTH, "-f", path, "-c", "64");
    ASSERT_STATUS(r, 1);
    ck_assert_uint_eq(r.n_out, 0);
    ASSERT_CONTAINS(r.err, want);
    ASSERT_CONTAINS(r.err,
                    "context of 64: raise it with -c (--ctx-size; this model allows up to 512)");
    cli_free(&r);
    free(text);

    /* A NUL byte cannot be in a prompt; a missing file; -p and -f together. */
    write_file(path, "ab\0cd", 5);
    r = RUN_CLI("run", "-m", SYNTH, "-f", path);
    ASSERT_STATUS(r, 1);
    ASSERT_CONTAINS(r.err, "NUL byte at offset 2");
    cli_free(&r);
    unlink(path);
    r = RUN_CLI("run", "-m", SYNTH, "-f", path);
    ASSERT_STATUS(r, 1);
    ASSERT_CONTAINS(r.err, path);
    ASSERT_CONTAINS(r.err, "No such file");
    cli_free(&r);
    r = RUN_CLI("run", "-m", SYNTH, "-f", path, "-p", "hi");
    ASSERT_STATUS(r, 2);
    ASSERT_CONTAINS(r.err, "-p and -f");
    cli_free(&r);
}
END_TEST

START_TEST(test_cli_stop_reason) {
    /* -c 16: the context fills first: exit 3, and why. */
    cli_result r =
        RUN_CLI("run", "-m", SYNTH, "-p", "hello", "-c", "16", "-n", "100", "--temp", "0");
    ASSERT_STATUS(r, 3);
    const int n = generated_count(r.err);
    ck_assert_int_ge(n, 1);
    ck_assert_int_lt(n, 100);
    const size_t n_prompt = lib_token_count(SYNTH, "hello", 5);
    /* The last token is sampled but not fed: prompt + n - 1 fill the 16. */
    ck_assert_int_eq((int)n_prompt + n - 1, 16);
    char want[96];
    snprintf(want, sizeof want, "stopped: context full after %d tokens", n);
    ASSERT_CONTAINS(r.err, want);
    ASSERT_CONTAINS(r.err, "raise -c");
    cli_free(&r);
    /* -n first: exit 0 and that reason. */
    r = RUN_CLI("run", "-m", SYNTH, "-p", "hello", "-n", "3", "--temp", "0");
    ASSERT_STATUS(r, 0);
    ck_assert_int_eq(generated_count(r.err), 3);
    ck_assert_ptr_nonnull(stop_line(&r));
    ASSERT_CONTAINS(stop_line(&r), "stopped: -n 3 tokens generated");
    cli_free(&r);
}
END_TEST

START_TEST(test_cli_invalid_utf8) {
    const struct {
        const char *prompt;
        long offset; /* -1: valid */
    } cases[] = {
        {"ab\xff"
         "cd",
         2},
        {"\xc0\x80 overlong", 0},
        {"x\xed\xa0\x80 surrogate", 1},
        {"cut \xe2\x82", 4},
        {"past \xf4\x90\x80\x80", 5},
        {"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x99\x82", -1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        cli_result r = RUN_CLI("run", "-m", SYNTH, "-p", cases[i].prompt, "-n", "1", "--no-echo");
        ASSERT_STATUS(r, 0);
        if (cases[i].offset < 0) {
            ck_assert_msg(!strstr(r.err, "UTF-8"), "case %zu warned: %s", i, r.err);
        } else {
            char want[96];
            snprintf(want, sizeof want, "warning: the prompt is not valid UTF-8 at byte offset %ld",
                     cases[i].offset);
            ASSERT_CONTAINS(r.err, want);
        }
        cli_free(&r);
    }
}
END_TEST

/* A known option with a bad value names the option and what it takes. */
START_TEST(test_cli_bad_values) {
    const char *const cases[][10] = {
        {"option -r: 0 is not in 1..1000", "bench", "-m", SYNTH, "-r", "0", NULL},
        {"option -p: 100000 is not in 0..8192", "bench", "-m", SYNTH, "-p", "100000", NULL},
        {"option -o: 'xml' is not one of table, json", "bench", "-m", SYNTH, "-o", "xml", NULL},
        {"option -r: 'x' is not an integer", "bench", "-m", SYNTH, "-r", "x", NULL},
        {"option -p: 600 is more than this model's context", "bench", "-m", SYNTH, "-p", "600",
         NULL},
        {"option -n: '1.5' is not an integer", "run", "-m", SYNTH, "-p", "hi", "-n", "1.5"},
        {"option --temp: 'abc' is not a number", "run", "-m", SYNTH, "-p", "hi", "--temp", "abc"},
        {"option --kv-type: 'f8' is not one of f16, f32", "chat", "-m", SYNTH, "--kv-type", "f8",
         NULL},
        {"option --seed: '-3' is not an integer", "run", "-m", SYNTH, "-p", "hi", "--seed", "-3"},
        {"option -m needs a value", "run", "-p", "hi", "-m", NULL},
        {"option --no-mmap takes no value", "run", "-m", SYNTH, "-p", "hi", "--no-mmap=1", NULL},
        {"option -t: 0 is not in 1..512", "chat", "-m", SYNTH, "-t", "0", NULL},
        {"option -n: 0 is not in 1..1000000000", "chat", "-m", SYNTH, "-n", "0", NULL},
        {"option --type needs a value", "convert", "a", "b", "--type", NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        cli_result r = run_cli_v(cases[i] + 1);
        ASSERT_STATUS(r, 2);
        ASSERT_CONTAINS(r.err, cases[i][0]);
        ck_assert_msg(!strstr(r.err, "unknown"), "'%s': %s", cases[i][0], r.err);
        ck_assert_uint_eq(r.n_out, 0);
        cli_free(&r);
    }
    /* --name=value is the same as --name value. */
    cli_result r = RUN_CLI("run", "-m", SYNTH, "-p", "hi", "--temp=0", "-n", "2", "--seed=3");
    ASSERT_STATUS(r, 0);
    cli_free(&r);
}
END_TEST

START_TEST(test_cli_unknown_options) {
    const char *const cases[][9] = {
        {"unknown option '--unknown'", "tokenize", "-m", SYNTH, "--unknown", NULL},
        {"unexpected argument 'extra'", "info", SYNTH, "extra", NULL},
        {"unknown option '--frob'", "info", "--frob", SYNTH, NULL},
        {"unknown option '--frob'", "bench", "-m", SYNTH, "--frob", NULL},
        {"unknown option '--frob'", "chat", "-m", SYNTH, "--frob", NULL},
        {"unknown option '--frob'", "convert", "a", "b", "--frob", NULL},
        {"unexpected argument 'c'", "convert", "a", "b", "c", NULL},
        {"unexpected argument 'extra'", "run", "-m", SYNTH, "-p", "hi", "extra"},
        {"unexpected argument 'extra'", "chat", "-m", SYNTH, "extra", NULL},
        {"unexpected argument 'extra'", "bench", "-m", SYNTH, "extra", NULL},
        {"unexpected argument 'extra'", "version", "extra", NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        cli_result r = run_cli_v(cases[i] + 1);
        ASSERT_STATUS(r, 2);
        ASSERT_CONTAINS(r.err, cases[i][0]);
        ck_assert_uint_eq(r.n_out, 0);
        cli_free(&r);
    }
    /* After --, an argument that starts with - is text. */
    cli_result r = RUN_CLI("tokenize", "-m", SYNTH, "--no-bos", "--", "--unknown");
    ASSERT_STATUS(r, 0);
    slim_token ids[32];
    const size_t n = parse_ids(r.out, ids, 32);
    ck_assert_uint_eq(n, lib_token_count(SYNTH, "--unknown", 9) - 1); /* no BOS */
    cli_free(&r);
}
END_TEST

START_TEST(test_cli_version_option) {
    const char *const forms[] = {"--version", "-V", "version"};
    for (size_t i = 0; i < 3; i++) {
        cli_result r = RUN_CLI(forms[i]);
        ASSERT_STATUS(r, 0);
        char want[64];
        snprintf(want, sizeof want, "slim %s\n", slim_version_string());
        ck_assert_str_eq(r.out, want);
        ck_assert_str_eq(r.out, "slim " SLIM_VERSION_STRING "\n");
        cli_free(&r);
    }
}
END_TEST

/* chat -v: the speed figures its help promises. */
START_TEST(test_cli_chat_verbose) {
    char path[] = "/tmp/slim_test_cli_chat_XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, "hi\nhow are you\n", 15), 15);
    close(fd);
    cli_result r =
        RUN_CLI_IO(path, NULL, "chat", "-m", SYNTH, "--template", "llama3", "-v", "-n", "4");
    ASSERT_STATUS(r, 0);
    for (int turn = 1; turn <= 2; turn++) {
        char want[32];
        snprintf(want, sizeof want, "[turn %d: ", turn);
        const char *line = strstr(r.err, want);
        ck_assert_msg(line != NULL, "no '%s' in %s", want, r.err);
        double pp = 0, tg = 0;
        const char *fed = strstr(line, " ms ("), *gen = strstr(line, "generated in");
        ck_assert_msg(fed && gen, "no speed in %s", line);
        ck_assert_msg(sscanf(fed + 5, "%lf tokens/s", &pp) == 1, "%s", line);
        gen = strstr(gen, " ms (");
        ck_assert_msg(gen && sscanf(gen + 5, "%lf tokens/s", &tg) == 1, "%s", line);
        ck_assert_double_gt(pp, 0);
        ck_assert_double_gt(tg, 0);
    }
    cli_free(&r);
    unlink(path);
    r = RUN_CLI("chat", "--help");
    ASSERT_CONTAINS(r.out, "speed");
    ASSERT_CONTAINS(r.out, "line editing: ");
    cli_free(&r);
}
END_TEST

/* slim classify: a plain line and the same text as a JSON object's top-level "text" member give
 * the same output line (the member found by a parser, not by the first "text" in the line); the
 * distribution covers every label and sums to 1; a malformed JSON line is an error naming the
 * line and the position. */
START_TEST(test_cli_classify) {
    char labels[] = "/tmp/slim_test_cli_labels_XXXXXX", in[] = "/tmp/slim_test_cli_in_XXXXXX";
    int lf = mkstemp(labels), inf = mkstemp(in);
    ck_assert_int_ge(lf, 0);
    ck_assert_int_ge(inf, 0);
    const char *lt = "yes\nno\r\n\nok \"x\"\n";
    ck_assert_int_eq(write(lf, lt, strlen(lt)), (ssize_t)strlen(lt));
    close(lf);
    const char *lines = "I love this, it is wonderful.\n"
                        "{\"text\": \"I love this, it is wonderful.\"}\n"
                        "{\"meta\": {\"text\": 5}, \"text\": \"I love this, it is wonderful.\"}\n"
                        "{\"text\": \"caf\\u00e9 \\ud83d\\ude00\"}\n";
    ck_assert_int_eq(write(inf, lines, strlen(lines)), (ssize_t)strlen(lines));
    close(inf);
    cli_result r = RUN_CLI_IO(in, NULL, "classify", "-m", SYNTH, "--labels", labels);
    ck_assert_msg(r.status == 0, "exit %d: %s", r.status, r.err);
    char *out[4] = {0};
    size_t n = 0;
    for (char *p = r.out, *e; n < 4 && (e = strchr(p, '\n')); p = e + 1)
        *e = '\0', out[n++] = p;
    ck_assert_uint_eq(n, 4);
    ck_assert_str_eq(out[1], out[0]);
    ck_assert_str_eq(out[2], out[0]);
    for (size_t i = 0; i < n; i++) {
        const char *d = strstr(out[i], "\"distribution\":{");
        ck_assert_msg(d != NULL, "%s", out[i]);
        double sum = 0, v = 0;
        const char *names[] = {"\"yes\":", "\"no\":", "\"ok \\\"x\\\"\":"};
        for (int k = 0; k < 3; k++) {
            const char *at = strstr(d, names[k]);
            ck_assert_msg(at && sscanf(at + strlen(names[k]), "%lf", &v) == 1, "%s in %s", names[k],
                          out[i]);
            ck_assert(v >= 0 && v <= 1);
            sum += v;
        }
        ck_assert_double_eq_tol(sum, 1.0, 1e-4);
        ck_assert_msg(!strncmp(out[i], "{\"label\":\"", 10), "%s", out[i]);
    }
    cli_free(&r);
    inf = open(in, O_WRONLY | O_TRUNC);
    ck_assert_int_ge(inf, 0);
    const char *bad = "fine\n{\"text\": \"no end\n";
    ck_assert_int_eq(write(inf, bad, strlen(bad)), (ssize_t)strlen(bad));
    close(inf);
    r = RUN_CLI_IO(in, NULL, "classify", "-m", SYNTH, "--labels", labels);
    ck_assert_int_eq(r.status, 1);
    ASSERT_CONTAINS(r.err, "input line 2: 1:");
    ck_assert_ptr_nonnull(strchr(r.out, '\n')); /* the first line was answered */
    cli_free(&r);
    unlink(labels);
    unlink(in);
}
END_TEST

/* ---- slim chat on a terminal: Ctrl-C, ctrl-D, line editing ---------------- */

typedef struct pty_session {
    pid_t pid;
    int fd;            /* the terminal's master side */
    char buf[1 << 16]; /* everything the terminal showed */
    size_t n;
    int status; /* exit status once reaped, else -1 */
} pty_session;

/* Start the CLI on a new pseudo-terminal, as its controlling terminal (so a
 * ^C written to it is SIGINT to the CLI, as from a keyboard). */
static void pty_start(pty_session *s, const char *const *args) {
    const char *argv[32];
    size_t n = 0;
    argv[n++] = cli_path();
    for (; args[n - 1]; n++)
        argv[n] = args[n - 1];
    argv[n] = NULL;
    s->n = 0, s->status = -1;
    s->fd = posix_openpt(O_RDWR | O_NOCTTY);
    ck_assert_int_ge(s->fd, 0);
    ck_assert_int_eq(grantpt(s->fd), 0);
    ck_assert_int_eq(unlockpt(s->fd), 0);
    const char *slave = ptsname(s->fd);
    ck_assert_ptr_nonnull(slave);
    fflush(NULL);
    s->pid = fork();
    ck_assert_int_ge(s->pid, 0);
    if (s->pid == 0) {
        setsid();
        int t = open(slave, O_RDWR); /* the first terminal a session leader opens: its own */
        if (t < 0) _exit(126);
        dup2(t, 0), dup2(t, 1), dup2(t, 2);
        close(s->fd);
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
}

/* Read what the terminal shows until `until` appears at or after offset
 * `from` (NULL: until more than `from` bytes in all), the CLI exits, or
 * timeout_ms pass.  Returns 1 if found. */
static int pty_wait(pty_session *s, size_t from, const char *until, int timeout_ms) {
    for (int waited = 0; waited < timeout_ms; waited += 20) {
        struct pollfd p = {.fd = s->fd, .events = POLLIN};
        /* Checked after every read: a CLI that writes more often than every
         * 20 ms would otherwise be read to its end before we look. */
        while (poll(&p, 1, 20) > 0 && s->n + 1 < sizeof s->buf) {
            ssize_t k = read(s->fd, s->buf + s->n, sizeof s->buf - 1 - s->n);
            if (k <= 0) break;
            s->n += (size_t)k;
            s->buf[s->n] = '\0';
            if (until ? s->n > from && strstr(s->buf + from, until) != NULL : s->n > from) return 1;
        }
        s->buf[s->n] = '\0';
        if (until ? s->n > from && strstr(s->buf + from, until) != NULL : s->n > from) return 1;
        int ws;
        if (s->status < 0 && waitpid(s->pid, &ws, WNOHANG) == s->pid)
            s->status = WIFEXITED(ws) ? WEXITSTATUS(ws) : 128 + WTERMSIG(ws);
        if (s->status >= 0 && poll(&p, 1, 0) <= 0) return 0;
    }
    return 0;
}

static void pty_send(pty_session *s, const char *text) {
    ck_assert_int_eq(write(s->fd, text, strlen(text)), (ssize_t)strlen(text));
}

static int pty_alive(pty_session *s) {
    int ws;
    if (s->status < 0 && waitpid(s->pid, &ws, WNOHANG) == s->pid)
        s->status = WIFEXITED(ws) ? WEXITSTATUS(ws) : 128 + WTERMSIG(ws);
    return s->status < 0;
}

/* Wait for the CLI to exit; its status.  Up to 2 minutes: on a loaded
 * machine the kernel has been seen to take over 10 s to tear down the exiting
 * process (do_exit -> task_work_run) after the CLI itself had finished. */
static int pty_end(pty_session *s) {
    for (int i = 0; i < 6000 && pty_alive(s); i++)
        pty_wait(s, s->n, "\x01", 20);
    if (pty_alive(s)) {
        /* Where it hangs, for the log: each thread's state and kernel wait channel. */
        char cmd[160];
        snprintf(cmd, sizeof cmd,
                 "for t in /proc/%d/task/*; do echo \"$t $(cut -d' ' -f3 $t/stat) "
                 "$(cat $t/wchan)\"; done >&2",
                 (int)s->pid);
        if (system(cmd) != 0) fprintf(stderr, "pty_end: no /proc for %d\n", (int)s->pid);
        kill(s->pid, SIGKILL);
        waitpid(s->pid, NULL, 0);
        s->status = 128 + SIGKILL;
    }
    close(s->fd);
    return s->status;
}

#define PTY_EXPECT(s, from, text)                                                                  \
    ck_assert_msg(pty_wait((s), (from), (text), 60000),                                            \
                  "'%s' never shown; exit %d; the terminal:\n%s", (text), (s)->status,             \
                  (s)->n > 400 ? (s)->buf + (s)->n - 400 : (s)->buf)

/* Ctrl-C during a reply stops that reply, not the program: the next line is
 * answered; at an empty prompt a second Ctrl-C quits (exit 0). */
START_TEST(test_cli_chat_interrupt) {
    /* Greedy, the base model repeats itself without an end: a long reply. */
    static pty_session s;
    pty_start(&s, (const char *const[]){"chat", "-m", test_model_path(), "--template", "gemma",
                                        "-n", "4000", "--temp", "0", "-t", "1", "-v", NULL});
    PTY_EXPECT(&s, 0, "> ");
    const char *lines[] = {"Count from one to one thousand, one number per line.\r",
                           "Say hello.\r"};
    for (int turn = 1; turn <= 2; turn++) {
        size_t at = s.n;
        pty_send(&s, lines[turn - 1]);
        /* the echoed line, then some of the reply */
        ck_assert_msg(pty_wait(&s, at + strlen(lines[turn - 1]) + 80, NULL, 60000),
                      "no reply to turn %d:\n%s", turn, s.n > 400 ? s.buf + s.n - 400 : s.buf);
        pty_send(&s, "\x03");
        PTY_EXPECT(&s, at, "[reply stopped]");
        char want[32];
        snprintf(want, sizeof want, "[turn %d: ", turn);
        PTY_EXPECT(&s, at, want);
        const char *t = strstr(s.buf + at, want);
        int n_gen = 0;
        const char *ms = strstr(t, " ms (");
        ck_assert_msg(ms && sscanf(ms + 5, "%*f tokens/s), %d generated", &n_gen) == 1, "%s", t);
        ck_assert_int_lt(n_gen, 4000);
        PTY_EXPECT(&s, (size_t)(t - s.buf), "> ");
        ck_assert_msg(pty_alive(&s), "chat died on Ctrl-C (status %d):\n%s", s.status, s.buf);
    }
    size_t at = s.n;
    pty_send(&s, "\x03");
    PTY_EXPECT(&s, at, "Ctrl-C again or ctrl-D to quit");
    ck_assert(pty_alive(&s));
    pty_send(&s, "\x03");
    ck_assert_int_eq(pty_end(&s), 0);
}
END_TEST

/* ctrl-D at the prompt quits; with libedit, arrow keys edit the line. */
START_TEST(test_cli_chat_line_editing) {
    cli_result h = RUN_CLI("chat", "--help");
    const int libedit = strstr(h.out, "line editing: libedit") != NULL;
    cli_free(&h);
    char dump[] = "/tmp/slim_test_cli_dump_XXXXXX";
    int fd = mkstemp(dump);
    ck_assert_int_ge(fd, 0);
    close(fd);
    static pty_session s;
    pty_start(&s, (const char *const[]){"chat", "-m", SYNTH, "--template", "llama3", "-n", "2",
                                        "-v", "--dump-prompt", dump, NULL});
    PTY_EXPECT(&s, 0, "> ");
    size_t at = s.n;
    pty_send(&s, "ab\x1b[DX\r"); /* a, b, left arrow, X */
    PTY_EXPECT(&s, at, "[turn 1: ");
    PTY_EXPECT(&s, (size_t)(strstr(s.buf + at, "[turn 1: ") - s.buf), "> ");
    pty_send(&s, "\x04");
    ck_assert_int_eq(pty_end(&s), 0);
    size_t n = 0;
    FILE *f = fopen(dump, "rb");
    ck_assert_ptr_nonnull(f);
    char text[4096];
    n = fread(text, 1, sizeof text - 1, f);
    text[n] = '\0';
    fclose(f);
    unlink(dump);
    if (libedit) {
        ASSERT_CONTAINS(text, "aXb");
        ck_assert_ptr_null(strstr(text, "\x1b"));
    } else {
        ASSERT_CONTAINS(text, "ab\x1b[DX"); /* documented: plain stdin without libedit */
    }
}
END_TEST

/* slim run: the first Ctrl-C stops the generation, with the timings and why
 * (exit 130). */
START_TEST(test_cli_run_interrupt) {
    static pty_session s;
    pty_start(&s, (const char *const[]){"run", "-m", test_model_path(), "-p", PROMPT, "-n", "4000",
                                        "-c", "4096", "--temp", "0", "-t", "1", NULL});
    ck_assert_msg(pty_wait(&s, strlen(PROMPT) + 40, NULL, 60000), "no output:\n%s", s.buf);
    pty_send(&s, "\x03");
    PTY_EXPECT(&s, 0, "stopped: interrupted (Ctrl-C) after ");
    ck_assert_int_eq(pty_end(&s), 130);
    ASSERT_CONTAINS(s.buf, "generation: ");
    ck_assert_int_lt(generated_count(s.buf), 4000);
}
END_TEST

/* slim bench -o json says how many CPUs other processes kept busy, and warns on stderr when that
 * was a tenth of the machine or more: here a child process spins for the whole run, so at least
 * a good part of one CPU was someone else's (on a loaded machine more). */
START_TEST(test_cli_bench_load) {
    const pid_t spin = fork();
    ck_assert_int_ge(spin, 0);
    if (spin == 0)
        for (;;) {
        }
    cli_result r = RUN_CLI("bench", "-m", test_model_path(), "-p", "8", "-n", "8", "-r", "3", "-t",
                           "1", "-o", "json");
    kill(spin, SIGKILL);
    waitpid(spin, NULL, 0);
    ASSERT_STATUS(r, 0);
    ASSERT_CONTAINS(r.out, "\"online_cpus\": ");
    const char *f = strstr(r.out, "\"other_cpus\": ");
    ck_assert_ptr_nonnull(f);
    const double others = strtod(f + strlen("\"other_cpus\": "), NULL);
    const long online = sysconf(_SC_NPROCESSORS_ONLN);
    ck_assert_msg(others >= 0.3 && others <= online + 0.5, "other_cpus %g of %ld", others, online);
    ASSERT_CONTAINS(r.err, "warning: the machine was loaded");
    cli_free(&r);
}
END_TEST

Suite *suite_cli(void) {
    Suite *s = suite_create("cli");
    TCase *tc = tcase_create("cli");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_cli_help);
    tcase_add_test(tc, test_cli_usage_errors);
    tcase_add_test(tc, test_cli_bad_options);
    tcase_add_test(tc, test_cli_nan_option);
    tcase_add_test(tc, test_cli_version);
    tcase_add_test(tc, test_cli_missing_model);
    tcase_add_test(tc, test_cli_info);
    tcase_add_test(tc, test_cli_tokenize);
    tcase_add_test(tc, test_cli_run_seeded);
    tcase_add_test(tc, test_cli_run_greedy);
    tcase_add_test(tc, test_cli_output_errors);
    tcase_add_test(tc, test_cli_prompt_file);
    tcase_add_test(tc, test_cli_stop_reason);
    tcase_add_test(tc, test_cli_invalid_utf8);
    tcase_add_test(tc, test_cli_bad_values);
    tcase_add_test(tc, test_cli_unknown_options);
    tcase_add_test(tc, test_cli_version_option);
    tcase_add_test(tc, test_cli_chat_verbose);
    tcase_add_test(tc, test_cli_classify);
    tcase_add_test(tc, test_cli_chat_interrupt);
    tcase_add_test(tc, test_cli_run_interrupt);
    tcase_add_test(tc, test_cli_chat_line_editing);
    tcase_add_test(tc, test_cli_bench_load);
    suite_add_tcase(s, tc);
    return s;
}
