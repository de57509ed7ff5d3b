/* The slim CLI (examples/cli/main.c) end to end: the binary named by SLIM_CLI
 * (default build/slim) is run with fork + exec, its stdout and stderr are
 * captured separately (through temporary files), and its exit status, output
 * and diagnostics are checked.  Tests run from the repository root. */
#include <fcntl.h>
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

/* Run the CLI with the NULL-terminated arguments (after argv[0]). */
static cli_result run_cli_v(const char *const *args) {
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
        int null_fd = open("/dev/null", O_RDONLY);
        if (null_fd >= 0) dup2(null_fd, STDIN_FILENO);
        dup2(out_fd, STDOUT_FILENO);
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

#define RUN_CLI(...) run_cli_v((const char *const[]){__VA_ARGS__, NULL})

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
    tcase_add_test(tc, test_cli_bench_load);
    suite_add_tcase(s, tc);
    return s;
}
