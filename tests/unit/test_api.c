/* The public API (include/slim.h) end to end on the default model: every
 * function's argument checks, load errors, introspection values, the
 * tokenizer calls, contexts (KV cache bookkeeping, determinism across
 * contexts and thread counts) and slim_generate. */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "slim.h"
#include "suites.h"

/* ---- helpers -------------------------------------------------------------- */

/* One model for the whole "model" test case: an unchecked fixture loads it in
 * the runner (before the per-test fork), so each test starts from it. */
static slim_model *g_model;

static void model_setup(void) {
    g_model = NULL;
    if (slim_model_load(test_model_path(), NULL, &g_model) != SLIM_OK) g_model = NULL;
}

static void model_teardown(void) {
    slim_model_free(g_model);
    g_model = NULL;
}

static slim_model *model(void) {
    ck_assert_msg(g_model != NULL, "cannot load the test model %s", test_model_path());
    return g_model;
}

/* Put a known message in slim_last_error(), so that a check after a failing
 * call sees that call's own message and not a stale one. */
static void mark_error(void) {
    slim_model *m = (slim_model *)1;
    slim_model_load("/nonexistent-dir/__slim_marker__", NULL, &m);
    ck_assert_ptr_null(m);
    ck_assert_ptr_nonnull(strstr(slim_last_error(), "__slim_marker__"));
}

/* `call` fails with `status` and sets a fresh message containing `substr`. */
#define EXPECT_ERR(call, status, substr)                                                           \
    do {                                                                                           \
        mark_error();                                                                              \
        slim_status st_ = (call);                                                                  \
        const char *e_ = slim_last_error();                                                        \
        ck_assert_msg(st_ == (status), "%s: got status %d (%s), expected %d; error '%s'", #call,   \
                      (int)st_, slim_status_string(st_), (int)(status), e_);                       \
        ck_assert_msg(e_[0] != '\0' && !strstr(e_, "__slim_marker__"),                             \
                      "%s: no message of its own (last error '%s')", #call, e_);                   \
        ck_assert_msg(strstr(e_, substr) != NULL, "%s: message '%s' lacks '%s'", #call, e_,        \
                      substr);                                                                     \
    } while (0)

#define EXPECT_INVALID(call, substr) EXPECT_ERR(call, SLIM_ERR_INVALID_ARG, substr)

static int32_t n_vocab_of(const slim_model *m) {
    slim_model_info info = {.struct_size = sizeof info};
    ck_assert_int_eq(slim_model_get_info(m, &info), SLIM_OK);
    return info.n_vocab;
}

static size_t tokenize(const slim_model *m, const char *text, uint32_t flags, slim_token *buf,
                       size_t cap) {
    size_t n = 0;
    ck_assert_int_eq(slim_tokenize(m, text, strlen(text), flags, buf, cap, &n), SLIM_OK);
    ck_assert_uint_le(n, cap);
    return n;
}

static slim_context *make_ctx(int32_t n_ctx, int32_t n_threads) {
    slim_context_params cp = slim_context_default_params();
    cp.n_ctx = n_ctx;
    cp.n_threads = n_threads;
    slim_context *ctx = NULL;
    slim_status st = slim_context_create(model(), &cp, &ctx);
    ck_assert_msg(st == SLIM_OK, "slim_context_create: %s", slim_last_error());
    ck_assert_ptr_nonnull(ctx);
    return ctx;
}

static slim_sampler *make_sampler(float temperature, uint64_t seed) {
    slim_sampler_params sp = slim_sampler_default_params();
    sp.temperature = temperature;
    sp.seed = seed;
    slim_sampler *s = NULL;
    ck_assert_int_eq(slim_sampler_create(&sp, &s), SLIM_OK);
    ck_assert_ptr_nonnull(s);
    return s;
}

/* A temporary file holding `n` bytes of `data`; the caller unlinks it. */
static void write_temp(char path[64], const void *data, size_t n) {
    strcpy(path, "/tmp/slim_test_api_XXXXXX");
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(n ? write(fd, data, n) : 0, (ssize_t)n);
    close(fd);
}

/* Minimal GGUF v3 writer: string and uint32 key/values, no tensors. */
typedef struct gbuf {
    unsigned char b[1024];
    size_t n;
} gbuf;

static void gput(gbuf *g, const void *p, size_t n) {
    ck_assert_uint_le(g->n + n, sizeof g->b);
    memcpy(g->b + g->n, p, n);
    g->n += n;
}
static void gput_u32(gbuf *g, uint32_t v) { gput(g, &v, 4); }
static void gput_u64(gbuf *g, uint64_t v) { gput(g, &v, 8); }
static void gput_str(gbuf *g, const char *s) {
    gput_u64(g, strlen(s));
    gput(g, s, strlen(s));
}
static void gguf_begin(gbuf *g, uint64_t n_kv) {
    g->n = 0;
    gput(g, "GGUF", 4);
    gput_u32(g, 3);
    gput_u64(g, 0); /* tensors */
    gput_u64(g, n_kv);
}
static void gguf_kv_str(gbuf *g, const char *key, const char *val) {
    gput_str(g, key);
    gput_u32(g, 8); /* GGUF_TYPE_STRING */
    gput_str(g, val);
}
static void gguf_kv_u32(gbuf *g, const char *key, uint32_t val) {
    gput_str(g, key);
    gput_u32(g, 4); /* GGUF_TYPE_UINT32 */
    gput_u32(g, val);
}

/* ---- version, status, NULL handles --------------------------------------- */

START_TEST(test_version_and_status) {
    ck_assert_uint_eq(slim_version_number(), SLIM_VERSION_NUMBER);
    ck_assert_str_eq(slim_version_string(), SLIM_VERSION_STRING);
    for (int s = SLIM_OK; s <= SLIM_ERR_BUSY; s++) {
        const char *txt = slim_status_string((slim_status)s);
        ck_assert_ptr_nonnull(txt);
        ck_assert_uint_gt(strlen(txt), 0);
        for (int t = SLIM_OK; t < s; t++)
            ck_assert_str_ne(txt, slim_status_string((slim_status)t));
    }
    ck_assert_str_eq(slim_status_string(SLIM_OK), "ok");
    ck_assert_ptr_nonnull(slim_status_string((slim_status)12345));
    ck_assert_ptr_nonnull(slim_last_error());
}
END_TEST

START_TEST(test_free_null_and_null_handles) {
    /* Every *_free accepts NULL; the void calls ignore NULL. */
    slim_model_free(NULL);
    slim_context_free(NULL);
    slim_sampler_free(NULL);
    slim_context_reset(NULL);
    slim_sampler_reset(NULL);
    slim_sampler_accept(NULL, 1);
    slim_set_log_callback(NULL, NULL, SLIM_LOG_DEBUG);
    /* Queries on NULL give empty answers. */
    ck_assert_int_eq(slim_context_n_past(NULL), 0);
    ck_assert_int_eq(slim_context_n_ctx(NULL), 0);
    ck_assert_ptr_null(slim_get_logits(NULL));
    ck_assert_int_eq(slim_model_meta_count(NULL), 0);
    ck_assert_int_eq(slim_model_tensor_count(NULL), 0);
    ck_assert_ptr_null(slim_token_text(NULL, 2));
}
END_TEST

START_TEST(test_args_model_load) {
    slim_model *m = (slim_model *)1;
    EXPECT_INVALID(slim_model_load(test_model_path(), NULL, NULL), "out");
    EXPECT_INVALID(slim_model_load(NULL, NULL, &m), "path");
    ck_assert_ptr_null(m);
    const size_t bad_sizes[] = {0, 1, sizeof(slim_model_params) + 1, 1u << 20, (size_t)-1};
    for (size_t i = 0; i < sizeof bad_sizes / sizeof bad_sizes[0]; i++) {
        slim_model_params mp = slim_model_default_params();
        mp.struct_size = bad_sizes[i];
        m = (slim_model *)1;
        EXPECT_INVALID(slim_model_load(test_model_path(), &mp, &m), "struct_size");
        ck_assert_ptr_null(m);
    }
    slim_model_params mp = slim_model_default_params();
    ck_assert_uint_eq(mp.struct_size, sizeof mp);
    ck_assert_int_eq(mp.use_mmap, 1);
}
END_TEST

START_TEST(test_args_context_create) {
    slim_model *mdl = model();
    slim_context *ctx = (slim_context *)1;
    EXPECT_INVALID(slim_context_create(mdl, NULL, NULL), "out");
    EXPECT_INVALID(slim_context_create(NULL, NULL, &ctx), "model");
    ck_assert_ptr_null(ctx);
    const size_t bad_sizes[] = {0, 1, sizeof(slim_context_params) + 1, (size_t)-1};
    for (size_t i = 0; i < sizeof bad_sizes / sizeof bad_sizes[0]; i++) {
        slim_context_params cp = slim_context_default_params();
        cp.struct_size = bad_sizes[i];
        ctx = (slim_context *)1;
        EXPECT_INVALID(slim_context_create(mdl, &cp, &ctx), "struct_size");
        ck_assert_ptr_null(ctx);
    }
    struct {
        int32_t n_ctx, n_threads, n_batch;
        const char *what;
    } bad[] = {
        {32769, 1, 0, "n_ctx"}, /* one past the training context (32768) */
        {1 << 30, 1, 0, "n_ctx"}, {-1, 1, 0, "n_ctx"},          {16, -1, 0, "n_threads"},
        {16, 1, -1, "n_batch"},   {16, 100000, 0, "n_threads"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        slim_context_params cp = slim_context_default_params();
        cp.n_ctx = bad[i].n_ctx;
        cp.n_threads = bad[i].n_threads;
        cp.n_batch = bad[i].n_batch;
        ctx = (slim_context *)1;
        EXPECT_INVALID(slim_context_create(mdl, &cp, &ctx), bad[i].what);
        ck_assert_ptr_null(ctx);
    }
    /* The training context itself is accepted as a value (not allocated here:
     * a small context is created to show defaults are sane). */
    slim_context_params cp = slim_context_default_params();
    ck_assert_uint_eq(cp.struct_size, sizeof cp);
    ck_assert_int_eq(cp.n_ctx, 0);
    ck_assert_int_eq(cp.n_threads, 0);
    ck_assert_int_eq(cp.n_batch, 0);
    /* NULL params: defaults, n_ctx = min(training context 32768, 4096). */
    ck_assert_int_eq(slim_context_create(mdl, NULL, &ctx), SLIM_OK);
    ck_assert_int_eq(slim_context_n_ctx(ctx), 4096);
    ck_assert_int_eq(slim_context_n_past(ctx), 0);
    slim_context_free(ctx);
}
END_TEST

START_TEST(test_args_prefill_decode) {
    slim_context *ctx = make_ctx(16, 1);
    slim_token t = 2;
    EXPECT_INVALID(slim_prefill(NULL, &t, 1, NULL), "ctx");
    EXPECT_INVALID(slim_prefill(ctx, NULL, 1, NULL), "slim_prefill");
    EXPECT_INVALID(slim_prefill(ctx, &t, 0, NULL), "slim_prefill");
    EXPECT_INVALID(slim_decode(NULL, 2), "ctx");
    ck_assert_int_eq(slim_context_n_past(ctx), 0);
    ck_assert_ptr_null(slim_get_logits(ctx));
    slim_context_free(ctx);
}
END_TEST

START_TEST(test_args_model_queries) {
    slim_model *mdl = model();
    slim_model_info info = {.struct_size = sizeof info};
    EXPECT_INVALID(slim_model_get_info(NULL, &info), "model");
    EXPECT_INVALID(slim_model_get_info(mdl, NULL), "NULL");
    const size_t bad_sizes[] = {0, 1, sizeof(size_t) - 1, sizeof info + 1, (size_t)-1};
    for (size_t i = 0; i < sizeof bad_sizes / sizeof bad_sizes[0]; i++) {
        memset(&info, 0xAB, sizeof info);
        info.struct_size = bad_sizes[i];
        EXPECT_INVALID(slim_model_get_info(mdl, &info), "struct_size");
        /* Nothing written. */
        const unsigned char *b = (const unsigned char *)&info;
        for (size_t k = sizeof(size_t); k < sizeof info; k++)
            ck_assert_uint_eq(b[k], 0xAB);
    }

    slim_tensor_info ti = {.struct_size = sizeof ti};
    EXPECT_INVALID(slim_model_tensor_get(NULL, 0, &ti), "model");
    EXPECT_INVALID(slim_model_tensor_get(mdl, 0, NULL), "NULL");
    const size_t bad_ti_sizes[] = {0, 1, sizeof(size_t) - 1, sizeof ti + 1, (size_t)-1};
    for (size_t i = 0; i < sizeof bad_ti_sizes / sizeof bad_ti_sizes[0]; i++) {
        memset(&ti, 0xAB, sizeof ti);
        ti.struct_size = bad_ti_sizes[i];
        EXPECT_INVALID(slim_model_tensor_get(mdl, 0, &ti), "struct_size");
        ck_assert_int_eq(ti.n_dims, (int32_t)0xABABABAB);
    }
    ti.struct_size = sizeof ti;
    const int64_t nt = slim_model_tensor_count(mdl);
    EXPECT_INVALID(slim_model_tensor_get(mdl, -1, &ti), "index");
    EXPECT_INVALID(slim_model_tensor_get(mdl, nt, &ti), "index");
    EXPECT_INVALID(slim_model_tensor_get(mdl, INT64_MAX, &ti), "index");

    char key[64], val[64];
    const int64_t nm = slim_model_meta_count(mdl);
    EXPECT_INVALID(slim_model_meta_get(NULL, 0, key, sizeof key, val, sizeof val), "model");
    EXPECT_INVALID(slim_model_meta_get(mdl, -1, key, sizeof key, val, sizeof val), "index");
    EXPECT_INVALID(slim_model_meta_get(mdl, nm, key, sizeof key, val, sizeof val), "index");
    EXPECT_INVALID(slim_model_meta_get(mdl, INT64_MIN, key, sizeof key, val, sizeof val), "index");
}
END_TEST

/* The header's convention: a NULL buffer with a nonzero capacity is an
 * invalid argument (as for slim_tokenize, slim_detokenize, slim_token_to_piece). */
START_TEST(test_args_meta_null_buffer) {
    slim_model *mdl = model();
    char key[64], val[64];
    EXPECT_INVALID(slim_model_meta_get(mdl, 0, NULL, 16, val, sizeof val), "NULL");
    EXPECT_INVALID(slim_model_meta_get(mdl, 0, key, sizeof key, NULL, 16), "NULL");
}
END_TEST

START_TEST(test_args_tokenizer) {
    slim_model *mdl = model();
    slim_token toks[8];
    char buf[64];
    size_t n = 77;
    const char *t = "hi";
    EXPECT_INVALID(slim_tokenize(NULL, t, 2, 0, toks, 8, &n), "slim_tokenize");
    EXPECT_INVALID(slim_tokenize(mdl, t, 2, 0, toks, 8, NULL), "slim_tokenize");
    EXPECT_INVALID(slim_tokenize(mdl, NULL, 2, 0, toks, 8, &n), "slim_tokenize");
    EXPECT_INVALID(slim_tokenize(mdl, t, 2, 1u << 2, toks, 8, &n), "flags");
    EXPECT_INVALID(slim_tokenize(mdl, t, 2, 0x80000000u, toks, 8, &n), "flags");
    EXPECT_INVALID(slim_tokenize(mdl, t, 2, 0, NULL, 8, &n), "buf");
    /* NULL text with length 0 is the empty text. */
    ck_assert_int_eq(slim_tokenize(mdl, NULL, 0, 0, NULL, 0, &n), SLIM_OK);
    ck_assert_uint_eq(n, 0);
    ck_assert_int_eq(slim_tokenize(mdl, NULL, 0, SLIM_TOKENIZE_ADD_BOS, toks, 8, &n), SLIM_OK);
    ck_assert_uint_eq(n, 1);
    ck_assert_int_eq(toks[0], 2);

    slim_token one = 9259;
    EXPECT_INVALID(slim_detokenize(NULL, &one, 1, 0, buf, sizeof buf, &n), "slim_detokenize");
    EXPECT_INVALID(slim_detokenize(mdl, &one, 1, 0, buf, sizeof buf, NULL), "slim_detokenize");
    EXPECT_INVALID(slim_detokenize(mdl, NULL, 1, 0, buf, sizeof buf, &n), "slim_detokenize");
    EXPECT_INVALID(slim_detokenize(mdl, &one, 1, 1u << 1, buf, sizeof buf, &n), "flags");
    EXPECT_INVALID(slim_detokenize(mdl, &one, 1, 0, NULL, 4, &n), "buf");
    slim_token bad_ids[] = {-1, 262144, INT32_MAX, INT32_MIN};
    for (size_t i = 0; i < 4; i++)
        EXPECT_INVALID(slim_detokenize(mdl, &bad_ids[i], 1, 0, buf, sizeof buf, &n), "range");
    ck_assert_int_eq(slim_detokenize(mdl, NULL, 0, 0, buf, sizeof buf, &n), SLIM_OK);
    ck_assert_uint_eq(n, 0);

    EXPECT_INVALID(slim_token_to_piece(NULL, 2, 0, buf, sizeof buf, &n), "slim_token_to_piece");
    EXPECT_INVALID(slim_token_to_piece(mdl, 2, 0, buf, sizeof buf, NULL), "slim_token_to_piece");
    EXPECT_INVALID(slim_token_to_piece(mdl, 2, 1u << 3, buf, sizeof buf, &n), "flags");
    EXPECT_INVALID(slim_token_to_piece(mdl, 2, 0, NULL, 4, &n), "buf");
    for (size_t i = 0; i < 4; i++)
        EXPECT_INVALID(slim_token_to_piece(mdl, bad_ids[i], 0, buf, sizeof buf, &n), "range");
}
END_TEST

START_TEST(test_args_sampler) {
    slim_sampler *s = (slim_sampler *)1;
    EXPECT_INVALID(slim_sampler_create(NULL, NULL), "out");
    const size_t bad_sizes[] = {0, 1, sizeof(slim_sampler_params) + 1, (size_t)-1};
    for (size_t i = 0; i < sizeof bad_sizes / sizeof bad_sizes[0]; i++) {
        slim_sampler_params sp = slim_sampler_default_params();
        sp.struct_size = bad_sizes[i];
        s = (slim_sampler *)1;
        EXPECT_INVALID(slim_sampler_create(&sp, &s), "struct_size");
        ck_assert_ptr_null(s);
    }
    slim_sampler_params sp = slim_sampler_default_params();
    sp.temperature = NAN;
    s = (slim_sampler *)1;
    EXPECT_INVALID(slim_sampler_create(&sp, &s), "temperature");
    ck_assert_ptr_null(s);

    ck_assert_int_eq(slim_sampler_create(NULL, &s), SLIM_OK);
    ck_assert_ptr_nonnull(s);
    float logits[4] = {0, 1, 3, 2};
    slim_token tok = -5;
    EXPECT_INVALID(slim_sampler_sample(NULL, logits, 4, &tok), "sampler");
    EXPECT_INVALID(slim_sampler_sample(s, NULL, 4, &tok), "logits");
    EXPECT_INVALID(slim_sampler_sample(s, logits, 4, NULL), "out");
    EXPECT_INVALID(slim_sampler_sample(s, logits, 0, &tok), "n_vocab");
    EXPECT_INVALID(slim_sampler_sample(s, logits, -3, &tok), "n_vocab");
    ck_assert_int_eq(tok, -5);
    slim_sampler_free(s);
}
END_TEST

static int count_cb(slim_token tok, const char *piece, size_t len, void *user) {
    (void)tok, (void)piece, (void)len;
    (*(int *)user)++;
    return 0;
}

START_TEST(test_args_generate) {
    slim_context *ctx = make_ctx(32, 1);
    slim_sampler *s = make_sampler(0, 0);
    int calls = 0;
    slim_generate_params gp = slim_generate_default_params();
    ck_assert_uint_eq(gp.struct_size, sizeof gp);
    ck_assert_int_eq(gp.max_tokens, 128);
    ck_assert_int_eq(gp.stop_at_eos, 1);
    ck_assert_uint_eq(gp.tokenize_flags, SLIM_TOKENIZE_ADD_BOS);
    gp.max_tokens = 2;
    EXPECT_INVALID(slim_generate(NULL, s, "Hi", &gp, count_cb, &calls, NULL), "slim_generate");
    EXPECT_INVALID(slim_generate(ctx, NULL, "Hi", &gp, count_cb, &calls, NULL), "slim_generate");
    EXPECT_INVALID(slim_generate(ctx, s, NULL, &gp, count_cb, &calls, NULL), "slim_generate");
    const size_t bad_sizes[] = {0, 1, sizeof gp + 1, (size_t)-1};
    for (size_t i = 0; i < sizeof bad_sizes / sizeof bad_sizes[0]; i++) {
        slim_generate_params bad = gp;
        bad.struct_size = bad_sizes[i];
        EXPECT_INVALID(slim_generate(ctx, s, "Hi", &bad, count_cb, &calls, NULL), "struct_size");
    }
    const size_t bad_stats_sizes[] = {0, 1, sizeof(slim_generate_stats) + 1, (size_t)-1};
    for (size_t i = 0; i < sizeof bad_stats_sizes / sizeof bad_stats_sizes[0]; i++) {
        slim_generate_stats st;
        memset(&st, 0xAB, sizeof st);
        st.struct_size = bad_stats_sizes[i];
        EXPECT_INVALID(slim_generate(ctx, s, "Hi", &gp, count_cb, &calls, &st), "struct_size");
        ck_assert_int_eq(st.n_prompt, (int32_t)0xABABABAB);
    }
    slim_generate_params neg = gp;
    neg.max_tokens = -1;
    EXPECT_INVALID(slim_generate(ctx, s, "Hi", &neg, count_cb, &calls, NULL), "max_tokens");
    slim_generate_params flags = gp;
    flags.tokenize_flags = 1u << 7;
    EXPECT_INVALID(slim_generate(ctx, s, "Hi", &flags, count_cb, &calls, NULL), "flags");
    /* A prompt without tokens (no BOS asked for) is refused. */
    slim_generate_params nobos = gp;
    nobos.tokenize_flags = 0;
    EXPECT_INVALID(slim_generate(ctx, s, "", &nobos, count_cb, &calls, NULL), "prompt");
    /* None of these evaluated anything or called back. */
    ck_assert_int_eq(calls, 0);
    ck_assert_int_eq(slim_context_n_past(ctx), 0);
    ck_assert_ptr_null(slim_get_logits(ctx));
    slim_sampler_free(s);
    slim_context_free(ctx);
}
END_TEST

/* ---- loading errors -------------------------------------------------------- */

static void expect_load_error(const char *path, slim_status want, const char *substr) {
    slim_model *m = (slim_model *)1;
    mark_error();
    slim_status st = slim_model_load(path, NULL, &m);
    const char *e = slim_last_error();
    ck_assert_msg(st == want, "%s: status %d (%s), expected %d; error '%s'", path, (int)st,
                  slim_status_string(st), (int)want, e);
    ck_assert_ptr_null(m);
    ck_assert_msg(!strstr(e, "__slim_marker__"), "%s: stale message '%s'", path, e);
    ck_assert_msg(strstr(e, path) != NULL, "%s: message '%s' does not name the file", path, e);
    if (substr) ck_assert_msg(strstr(e, substr) != NULL, "message '%s' lacks '%s'", e, substr);
}

START_TEST(test_load_errors) {
    char dir[] = "/tmp/slim_test_api_dir_XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(dir));
    char missing[128];
    snprintf(missing, sizeof missing, "%s/no-such-model.gguf", dir);
    expect_load_error(missing, SLIM_ERR_IO, NULL);
    expect_load_error(dir, SLIM_ERR_IO, NULL); /* a directory */
    rmdir(dir);

    char path[64];
    write_temp(path, "", 0);
    expect_load_error(path, SLIM_ERR_FORMAT, NULL);
    unlink(path);

    const char text[] = "this is a plain text file and not a GGUF model at all\n";
    write_temp(path, text, sizeof text - 1);
    expect_load_error(path, SLIM_ERR_FORMAT, "magic");
    unlink(path);

    /* GGUF magic with an unknown version (99): not something slim reads. */
    gbuf g;
    gguf_begin(&g, 0);
    memcpy(g.b + 4, "\x63\x00\x00\x00", 4);
    write_temp(path, g.b, g.n);
    expect_load_error(path, SLIM_ERR_UNSUPPORTED, "version");
    unlink(path);

    /* A valid GGUF that is not a model: no general.architecture. */
    gguf_begin(&g, 1);
    gguf_kv_str(&g, "general.name", "not a model");
    write_temp(path, g.b, g.n);
    expect_load_error(path, SLIM_ERR_FORMAT, "general.architecture");
    unlink(path);

    /* A known architecture without its hyperparameters. */
    gguf_begin(&g, 2);
    gguf_kv_str(&g, "general.architecture", "gemma3");
    gguf_kv_u32(&g, "general.alignment", 32);
    write_temp(path, g.b, g.n);
    expect_load_error(path, SLIM_ERR_FORMAT, "gemma3.embedding_length");
    unlink(path);

    /* tests/data/tiny.gguf: a valid GGUF whose architecture ('tiny') is not a
     * model slim runs. */
    expect_load_error("tests/data/tiny.gguf", SLIM_ERR_UNSUPPORTED, "tiny");
}
END_TEST

/* The first `n` bytes of the real model, as a temporary file. */
static void write_truncated_model(char path[64], size_t n) {
    FILE *in = fopen(test_model_path(), "rb");
    ck_assert_ptr_nonnull(in);
    unsigned char *buf = malloc(n);
    ck_assert_ptr_nonnull(buf);
    ck_assert_uint_eq(fread(buf, 1, n, in), n);
    fclose(in);
    write_temp(path, buf, n);
    free(buf);
}

START_TEST(test_load_truncated) {
    char path[64];
    /* 1 MB: cut inside the metadata (the 262144-entry token list). */
    write_truncated_model(path, 1u << 20);
    slim_model *m = (slim_model *)1;
    ck_assert_int_eq(slim_model_load(path, NULL, &m), SLIM_ERR_FORMAT);
    ck_assert_ptr_null(m);
    const char *e = slim_last_error();
    ck_assert_msg(strstr(e, path) && (strstr(e, "tokenizer.ggml.") || strstr(e, "tensor")),
                  "truncated (1 MB) message '%s' names no file/field/tensor", e);
    unlink(path);
    /* 7 MB: the metadata and tensor table are whole, the tensor data is not. */
    write_truncated_model(path, 7000000);
    m = (slim_model *)1;
    ck_assert_int_eq(slim_model_load(path, NULL, &m), SLIM_ERR_FORMAT);
    ck_assert_ptr_null(m);
    e = slim_last_error();
    ck_assert_msg(strstr(e, path) && strstr(e, "token_embd.weight"),
                  "truncated (7 MB) message '%s' does not name the tensor", e);
    unlink(path);
}
END_TEST

/* ---- model introspection --------------------------------------------------- */

START_TEST(test_model_info) {
    slim_model *mdl = model();
    slim_model_info info;
    memset(&info, 0xCD, sizeof info);
    info.struct_size = sizeof info;
    ck_assert_int_eq(slim_model_get_info(mdl, &info), SLIM_OK);
    ck_assert_uint_eq(info.struct_size, sizeof info);
    ck_assert_str_eq(info.architecture, "gemma3");
    ck_assert_str_eq(info.name, "Gemma 3 270m");
    ck_assert_str_eq(info.file_type, "Q4_K_M");
    ck_assert_int_eq(info.n_vocab, 262144);
    ck_assert_int_eq(info.n_layer, 18);
    ck_assert_int_eq(info.n_embd, 640);
    ck_assert_int_eq(info.n_head, 4);
    ck_assert_int_eq(info.n_head_kv, 1);
    ck_assert_int_eq(info.head_dim, 256);
    ck_assert_int_eq(info.n_ctx_train, 32768);
    ck_assert_int_eq(info.bos, 2);
    ck_assert_int_eq(info.eos, 1);
    ck_assert_uint_ge(info.n_params, 250000000u);
    ck_assert_uint_le(info.n_params, 300000000u);
    struct stat sb;
    ck_assert_int_eq(stat(test_model_path(), &sb), 0);
    ck_assert_uint_eq(info.file_size, (uint64_t)sb.st_size);

    /* n_params is the sum of the tensors' element counts. */
    uint64_t sum = 0;
    for (int64_t i = 0; i < slim_model_tensor_count(mdl); i++) {
        slim_tensor_info t = {.struct_size = sizeof t};
        ck_assert_int_eq(slim_model_tensor_get(mdl, i, &t), SLIM_OK);
        sum += (uint64_t)(t.ne[0] * t.ne[1] * t.ne[2] * t.ne[3]);
    }
    ck_assert_uint_eq(info.n_params, sum);

    /* An older caller's smaller struct is filled only up to its size. */
    const size_t old = offsetof(slim_model_info, n_params);
    slim_model_info small;
    memset(&small, 0xAB, sizeof small);
    small.struct_size = old;
    ck_assert_int_eq(slim_model_get_info(mdl, &small), SLIM_OK);
    ck_assert_uint_eq(small.struct_size, old);
    ck_assert_str_eq(small.architecture, "gemma3");
    ck_assert_str_eq(small.file_type, "Q4_K_M");
    const unsigned char *b = (const unsigned char *)&small;
    for (size_t k = old; k < sizeof small; k++)
        ck_assert_msg(b[k] == 0xAB, "byte %zu beyond struct_size %zu was written", k, old);
    /* The smallest size: just struct_size, nothing else touched. */
    memset(&small, 0xAB, sizeof small);
    small.struct_size = sizeof(size_t);
    ck_assert_int_eq(slim_model_get_info(mdl, &small), SLIM_OK);
    for (size_t k = sizeof(size_t); k < sizeof small; k++)
        ck_assert_uint_eq(b[k], 0xAB);
}
END_TEST

START_TEST(test_model_meta) {
    slim_model *mdl = model();
    const int64_t n = slim_model_meta_count(mdl);
    ck_assert_int_eq(n, 33);
    char key[256], val[512];
    int found_blocks = 0, found_arch = 0, found_tokens = 0;
    for (int64_t i = 0; i < n; i++) {
        key[0] = val[0] = 'X';
        slim_status st = slim_model_meta_get(mdl, i, key, sizeof key, val, sizeof val);
        ck_assert_msg(st == SLIM_OK, "meta %lld: %s", (long long)i, slim_last_error());
        ck_assert_uint_gt(strlen(key), 0);
        ck_assert_ptr_nonnull(memchr(val, '\0', sizeof val));
        if (!strcmp(key, "gemma3.block_count")) {
            found_blocks++;
            ck_assert_str_eq(val, "18");
        } else if (!strcmp(key, "general.architecture")) {
            found_arch++;
            ck_assert_ptr_nonnull(strstr(val, "gemma3"));
        } else if (!strcmp(key, "tokenizer.ggml.tokens")) {
            found_tokens++;
            ck_assert_ptr_nonnull(strstr(val, "262144"));
            ck_assert_ptr_nonnull(strstr(val, "<bos>"));
        }
    }
    ck_assert_int_eq(found_blocks, 1);
    ck_assert_int_eq(found_arch, 1);
    ck_assert_int_eq(found_tokens, 1);

    /* Key or value only (NULL buffer with capacity 0 skips that output). */
    ck_assert_int_eq(slim_model_meta_get(mdl, 0, key, sizeof key, NULL, 0), SLIM_OK);
    ck_assert_str_eq(key, "general.architecture");
    ck_assert_int_eq(slim_model_meta_get(mdl, 0, NULL, 0, val, sizeof val), SLIM_OK);
    ck_assert_ptr_nonnull(strstr(val, "gemma3"));

    /* Too small: BUFFER_TOO_SMALL, output truncated and NUL-terminated. */
    char tiny[8];
    memset(tiny, 'Z', sizeof tiny);
    EXPECT_ERR(slim_model_meta_get(mdl, 0, tiny, sizeof tiny, val, sizeof val),
               SLIM_ERR_BUFFER_TOO_SMALL, "slim_model_meta_get");
    ck_assert_str_eq(tiny, "general");
    ck_assert_ptr_nonnull(strstr(val, "gemma3")); /* the value still fit */
    memset(tiny, 'Z', sizeof tiny);
    EXPECT_ERR(slim_model_meta_get(mdl, 0, key, sizeof key, tiny, 4), SLIM_ERR_BUFFER_TOO_SMALL,
               "slim_model_meta_get");
    ck_assert_str_eq(key, "general.architecture");
    ck_assert_uint_eq(strlen(tiny), 3);
    /* Exactly the key's length plus its NUL fits. */
    char exact[sizeof "general.architecture"];
    ck_assert_int_eq(slim_model_meta_get(mdl, 0, exact, sizeof exact, NULL, 0), SLIM_OK);
    ck_assert_str_eq(exact, "general.architecture");
    EXPECT_ERR(slim_model_meta_get(mdl, 0, exact, sizeof exact - 1, NULL, 0),
               SLIM_ERR_BUFFER_TOO_SMALL, "slim_model_meta_get");
}
END_TEST

START_TEST(test_model_tensors) {
    slim_model *mdl = model();
    const int64_t n = slim_model_tensor_count(mdl);
    ck_assert_int_eq(n, 236);
    slim_model_info info = {.struct_size = sizeof info};
    ck_assert_int_eq(slim_model_get_info(mdl, &info), SLIM_OK);
    int found = 0;
    for (int64_t i = 0; i < n; i++) {
        slim_tensor_info t = {.struct_size = sizeof t};
        ck_assert_int_eq(slim_model_tensor_get(mdl, i, &t), SLIM_OK);
        ck_assert_ptr_nonnull(t.name);
        ck_assert_ptr_nonnull(t.type);
        ck_assert_int_ge(t.n_dims, 1);
        ck_assert_int_le(t.n_dims, 4);
        ck_assert_uint_le(t.offset + t.size, info.file_size);
        if (!strcmp(t.name, "token_embd.weight")) {
            found++;
            ck_assert_str_eq(t.type, "Q8_0");
            ck_assert_int_eq(t.n_dims, 2);
            ck_assert_int_eq(t.ne[0], 640);
            ck_assert_int_eq(t.ne[1], 262144);
            ck_assert_int_eq(t.ne[2], 1);
            ck_assert_int_eq(t.ne[3], 1);
            ck_assert_uint_eq(t.size, 262144ull * 640 / 32 * 34); /* Q8_0: 34 bytes / 32 */
        } else if (!strcmp(t.name, "output_norm.weight")) {
            found++;
            ck_assert_str_eq(t.type, "F32");
            ck_assert_int_eq(t.n_dims, 1);
            ck_assert_int_eq(t.ne[0], 640);
            ck_assert_uint_eq(t.size, 640 * 4);
        }
    }
    ck_assert_int_eq(found, 2);

    /* An older, smaller struct: filled up to its size only. */
    const size_t old = offsetof(slim_tensor_info, ne);
    slim_tensor_info small;
    memset(&small, 0xAB, sizeof small);
    small.struct_size = old;
    ck_assert_int_eq(slim_model_tensor_get(mdl, 0, &small), SLIM_OK);
    ck_assert_ptr_nonnull(small.name);
    ck_assert_int_ge(small.n_dims, 1);
    const unsigned char *b = (const unsigned char *)&small;
    for (size_t k = old; k < sizeof small; k++)
        ck_assert_msg(b[k] == 0xAB, "byte %zu beyond struct_size %zu was written", k, old);
}
END_TEST

/* ---- tokenizer through the public API --------------------------------------- */

START_TEST(test_tokenize_roundtrip) {
    slim_model *mdl = model();
    const char *text = "Hello, world!";
    size_t n = 99;
    /* Size query. */
    ck_assert_int_eq(slim_tokenize(mdl, text, strlen(text), 0, NULL, 0, &n), SLIM_OK);
    ck_assert_uint_ge(n, 2);
    ck_assert_uint_le(n, 8);
    const size_t need = n;
    slim_token toks[16];
    ck_assert_uint_eq(tokenize(mdl, text, 0, toks, 16), need);
    for (size_t i = 0; i < need; i++) {
        ck_assert_int_ge(toks[i], 0);
        ck_assert_int_lt(toks[i], 262144);
        ck_assert_int_ne(toks[i], 2);
    }
    /* Too small: BUFFER_TOO_SMALL with the size needed. */
    size_t m = 0;
    EXPECT_ERR(slim_tokenize(mdl, text, strlen(text), 0, toks, need - 1, &m),
               SLIM_ERR_BUFFER_TOO_SMALL, "slim_tokenize");
    ck_assert_uint_eq(m, need);
    /* ADD_BOS prepends 2, the rest unchanged. */
    slim_token with_bos[16];
    ck_assert_uint_eq(tokenize(mdl, text, SLIM_TOKENIZE_ADD_BOS, with_bos, 16), need + 1);
    ck_assert_int_eq(with_bos[0], 2);
    ck_assert_mem_eq(with_bos + 1, toks, need * sizeof *toks);
    /* `len` is honoured: no NUL needed. */
    slim_token prefix[16];
    ck_assert_int_eq(slim_tokenize(mdl, "Hello, world!XYZ", strlen(text), 0, prefix, 16, &m),
                     SLIM_OK);
    ck_assert_uint_eq(m, need);
    ck_assert_mem_eq(prefix, toks, need * sizeof *toks);

    /* Detokenize: size query, then exact bytes back. */
    char buf[64];
    ck_assert_int_eq(slim_detokenize(mdl, toks, need, 0, NULL, 0, &m), SLIM_OK);
    ck_assert_uint_eq(m, strlen(text));
    memset(buf, 0, sizeof buf);
    ck_assert_int_eq(slim_detokenize(mdl, toks, need, 0, buf, sizeof buf, &m), SLIM_OK);
    ck_assert_uint_eq(m, strlen(text));
    ck_assert_str_eq(buf, text);
    EXPECT_ERR(slim_detokenize(mdl, toks, need, 0, buf, 5, &m), SLIM_ERR_BUFFER_TOO_SMALL,
               "slim_detokenize");
    ck_assert_uint_eq(m, strlen(text));
    /* BOS renders as nothing by default and as "<bos>" with RENDER_SPECIAL. */
    ck_assert_int_eq(slim_detokenize(mdl, with_bos, need + 1, 0, buf, sizeof buf, &m), SLIM_OK);
    ck_assert_uint_eq(m, strlen(text));
    ck_assert_int_eq(memcmp(buf, text, m), 0);
    ck_assert_int_eq(slim_detokenize(mdl, with_bos, need + 1, SLIM_DETOKENIZE_RENDER_SPECIAL, buf,
                                     sizeof buf, &m),
                     SLIM_OK);
    ck_assert_uint_eq(m, strlen(text) + 5);
    ck_assert_int_eq(memcmp(buf, "<bos>Hello, world!", m), 0);

    /* Pieces concatenate to the text. */
    size_t at = 0;
    for (size_t i = 0; i < need; i++) {
        size_t len = 0;
        ck_assert_int_eq(slim_token_to_piece(mdl, toks[i], 0, NULL, 0, &len), SLIM_OK);
        ck_assert_uint_gt(len, 0);
        ck_assert_uint_le(at + len, strlen(text));
        size_t len2 = 0;
        ck_assert_int_eq(slim_token_to_piece(mdl, toks[i], 0, buf, sizeof buf, &len2), SLIM_OK);
        ck_assert_uint_eq(len2, len);
        ck_assert_int_eq(memcmp(buf, text + at, len), 0);
        at += len;
    }
    ck_assert_uint_eq(at, strlen(text));
    /* "Hello world": 9259 'Hello', 1902 ' world'. */
    slim_token hw[4];
    ck_assert_uint_eq(tokenize(mdl, "Hello world", 0, hw, 4), 2);
    ck_assert_int_eq(hw[0], 9259);
    ck_assert_int_eq(hw[1], 1902);
    ck_assert_int_eq(slim_token_to_piece(mdl, 1902, 0, buf, sizeof buf, &m), SLIM_OK);
    ck_assert_uint_eq(m, 6);
    ck_assert_int_eq(memcmp(buf, " world", 6), 0);
    EXPECT_ERR(slim_token_to_piece(mdl, 1902, 0, buf, 3, &m), SLIM_ERR_BUFFER_TOO_SMALL,
               "slim_token_to_piece");
    ck_assert_uint_eq(m, 6);
}
END_TEST

START_TEST(test_tokenize_special) {
    slim_model *mdl = model();
    slim_token toks[32];
    const char *turn = "<start_of_turn>";
    ck_assert_uint_eq(tokenize(mdl, turn, SLIM_TOKENIZE_PARSE_SPECIAL, toks, 32), 1);
    const slim_token sot = toks[0];
    ck_assert_int_eq(sot, 105);
    ck_assert_str_eq(slim_token_text(mdl, sot), "<start_of_turn>");
    /* Without PARSE_SPECIAL it is plain text: several ordinary tokens. */
    size_t n = tokenize(mdl, turn, 0, toks, 32);
    ck_assert_uint_gt(n, 1);
    for (size_t i = 0; i < n; i++)
        ck_assert_int_ne(toks[i], sot);
    /* Both flags. */
    ck_assert_uint_eq(tokenize(mdl, "<start_of_turn>user",
                               SLIM_TOKENIZE_ADD_BOS | SLIM_TOKENIZE_PARSE_SPECIAL, toks, 32),
                      3);
    ck_assert_int_eq(toks[0], 2);
    ck_assert_int_eq(toks[1], 105);
    ck_assert_int_eq(toks[2], 2364);

    ck_assert_str_eq(slim_token_text(mdl, 2), "<bos>");
    ck_assert_str_eq(slim_token_text(mdl, 1), "<eos>");
    ck_assert_str_eq(slim_token_text(mdl, 0), "<pad>");
    ck_assert_str_eq(slim_token_text(mdl, 1902), "\xe2\x96\x81world"); /* "▁world" */
    ck_assert_ptr_nonnull(slim_token_text(mdl, 262143));
    ck_assert_ptr_null(slim_token_text(mdl, 262144));
    ck_assert_ptr_null(slim_token_text(mdl, -1));
    ck_assert_ptr_null(slim_token_text(mdl, INT32_MAX));

    /* A control token's piece: empty by default, its text with RENDER_SPECIAL. */
    char buf[32];
    size_t len = 99;
    ck_assert_int_eq(slim_token_to_piece(mdl, 2, 0, buf, sizeof buf, &len), SLIM_OK);
    ck_assert_uint_eq(len, 0);
    ck_assert_int_eq(
        slim_token_to_piece(mdl, 2, SLIM_DETOKENIZE_RENDER_SPECIAL, buf, sizeof buf, &len),
        SLIM_OK);
    ck_assert_uint_eq(len, 5);
    ck_assert_int_eq(memcmp(buf, "<bos>", 5), 0);
}
END_TEST

/* ---- contexts -------------------------------------------------------------- */

static void assert_finite(const float *x, int32_t n) {
    for (int32_t i = 0; i < n; i++)
        ck_assert_msg(isfinite(x[i]), "logit %d is %g", i, x[i]);
}

START_TEST(test_context_basics) {
    slim_model *mdl = model();
    const int32_t V = n_vocab_of(mdl);
    slim_context *ctx = make_ctx(128, 1);
    ck_assert_int_eq(slim_context_n_ctx(ctx), 128);
    ck_assert_int_eq(slim_context_n_past(ctx), 0);
    ck_assert_ptr_null(slim_get_logits(ctx));

    /* An out-of-vocabulary id anywhere in the batch: INVALID_ARG, no change. */
    slim_token bad[3] = {2, 262144, 9259};
    EXPECT_INVALID(slim_prefill(ctx, bad, 3, NULL), "262144");
    bad[1] = -7;
    EXPECT_INVALID(slim_prefill(ctx, bad, 3, NULL), "-7");
    EXPECT_INVALID(slim_decode(ctx, 262144), "262144");
    ck_assert_int_eq(slim_context_n_past(ctx), 0);
    ck_assert_ptr_null(slim_get_logits(ctx));

    slim_token toks[16];
    const size_t n = tokenize(mdl, "The capital of France is", SLIM_TOKENIZE_ADD_BOS, toks, 16);
    ck_assert_uint_ge(n, 4);
    float *all = malloc((size_t)n * (size_t)V * sizeof(float));
    ck_assert_ptr_nonnull(all);
    ck_assert_int_eq(slim_prefill(ctx, toks, n, all), SLIM_OK);
    ck_assert_int_eq(slim_context_n_past(ctx), (int)n);
    const float *logits = slim_get_logits(ctx);
    ck_assert_ptr_nonnull(logits);
    assert_finite(logits, V);
    assert_finite(all, (int32_t)((size_t)n * (size_t)V));
    /* all_logits' last row is the logits after the last token. */
    ck_assert_int_eq(test_argmax(all + (n - 1) * (size_t)V, V), test_argmax(logits, V));
    double maxd = 0;
    for (int32_t i = 0; i < V; i++)
        maxd = fmax(maxd, fabs(all[(n - 1) * (size_t)V + i] - logits[i]));
    ck_assert_msg(maxd < 1e-5, "last all_logits row differs from slim_get_logits by %g", maxd);
    /* Logits are not degenerate: rows differ between positions. */
    ck_assert_int_ne(memcmp(all, all + V, (size_t)V * sizeof(float)), 0);
    /* The greedy continuation is " the" (" the capital of the country of France."). */
    char piece[32];
    size_t len = 0;
    ck_assert_int_eq(
        slim_token_to_piece(mdl, test_argmax(logits, V), 0, piece, sizeof piece - 1, &len),
        SLIM_OK);
    piece[len] = '\0';
    ck_assert_str_eq(piece, " the");

    /* A bad id after some tokens: n_past and the logits are kept. */
    const float first = logits[0];
    EXPECT_INVALID(slim_decode(ctx, -1), "-1");
    ck_assert_int_eq(slim_context_n_past(ctx), (int)n);
    ck_assert_ptr_eq(slim_get_logits(ctx), logits);
    ck_assert_float_eq(slim_get_logits(ctx)[0], first);

    ck_assert_int_eq(slim_decode(ctx, test_argmax(logits, V)), SLIM_OK);
    ck_assert_int_eq(slim_context_n_past(ctx), (int)n + 1);
    slim_context_reset(ctx);
    ck_assert_int_eq(slim_context_n_past(ctx), 0);
    ck_assert_ptr_null(slim_get_logits(ctx));
    ck_assert_int_eq(slim_context_n_ctx(ctx), 128);
    free(all);
    slim_context_free(ctx);
}
END_TEST

START_TEST(test_context_full) {
    slim_model *mdl = model();
    const int32_t V = n_vocab_of(mdl);
    slim_context *ctx = make_ctx(4, 1);
    ck_assert_int_eq(slim_context_n_ctx(ctx), 4);
    slim_token toks[5] = {2, 9259, 1902, 9259, 1902};
    /* Too many for an empty context: refused before any work. */
    EXPECT_ERR(slim_prefill(ctx, toks, 5, NULL), SLIM_ERR_CONTEXT_FULL, "slim_prefill");
    ck_assert_int_eq(slim_context_n_past(ctx), 0);
    ck_assert_ptr_null(slim_get_logits(ctx));
    ck_assert_int_eq(slim_prefill(ctx, toks, 2, NULL), SLIM_OK);
    ck_assert_int_eq(slim_context_n_past(ctx), 2);
    float *saved = malloc((size_t)V * sizeof(float));
    memcpy(saved, slim_get_logits(ctx), (size_t)V * sizeof(float));
    EXPECT_ERR(slim_prefill(ctx, toks, 3, NULL), SLIM_ERR_CONTEXT_FULL, "slim_prefill");
    ck_assert_int_eq(slim_context_n_past(ctx), 2);
    ck_assert_ptr_nonnull(slim_get_logits(ctx));
    ck_assert_mem_eq(slim_get_logits(ctx), saved, (size_t)V * sizeof(float));
    ck_assert_int_eq(slim_prefill(ctx, toks + 2, 2, NULL), SLIM_OK);
    ck_assert_int_eq(slim_context_n_past(ctx), 4);
    EXPECT_ERR(slim_decode(ctx, 9259), SLIM_ERR_CONTEXT_FULL, "slim_prefill");
    ck_assert_int_eq(slim_context_n_past(ctx), 4);
    ck_assert_ptr_nonnull(slim_get_logits(ctx));
    /* After a reset the same context takes tokens again. */
    slim_context_reset(ctx);
    ck_assert_int_eq(slim_prefill(ctx, toks, 2, NULL), SLIM_OK);
    ck_assert_mem_eq(slim_get_logits(ctx), saved, (size_t)V * sizeof(float));
    free(saved);
    slim_context_free(ctx);
}
END_TEST

typedef struct prefill_job {
    slim_context *ctx;
    const slim_token *toks;
    size_t n;
    slim_status st;
} prefill_job;

static void *prefill_thread(void *arg) {
    prefill_job *j = arg;
    j->st = slim_prefill(j->ctx, j->toks, j->n, NULL);
    return NULL;
}

START_TEST(test_context_determinism) {
    slim_model *mdl = model();
    const int32_t V = n_vocab_of(mdl);
    slim_token toks[16];
    const size_t n = tokenize(mdl, "Once upon a time", SLIM_TOKENIZE_ADD_BOS, toks, 16);
    const size_t bytes = (size_t)V * sizeof(float);

    /* Two contexts on one model, same tokens, same n_threads: bitwise equal. */
    slim_context *a = make_ctx(32, 2), *b = make_ctx(32, 2);
    ck_assert_int_eq(slim_prefill(a, toks, n, NULL), SLIM_OK);
    ck_assert_int_eq(slim_prefill(b, toks, n, NULL), SLIM_OK);
    ck_assert_ptr_ne(slim_get_logits(a), slim_get_logits(b));
    ck_assert_mem_eq(slim_get_logits(a), slim_get_logits(b), bytes);

    /* One thread against two: bitwise equal too (a row is always reduced by one
     * thread in one order, whatever the split). */
    slim_context *one = make_ctx(32, 1);
    ck_assert_int_eq(slim_prefill(one, toks, n, NULL), SLIM_OK);
    const float *l1 = slim_get_logits(one), *l2 = slim_get_logits(a);
    ck_assert_mem_eq(l1, l2, bytes);
    ck_assert_int_eq(test_argmax(l1, V), test_argmax(l2, V));
    float *seq = malloc(bytes);
    ck_assert_ptr_nonnull(seq);
    memcpy(seq, l1, bytes);
    slim_context_free(a);
    slim_context_free(b);

    /* Two 1-thread contexts of one model used from two threads at once (the
     * model is shared read-only): the same logits as alone. */
    a = one;
    b = make_ctx(32, 1);
    slim_context_reset(a);
    prefill_job ja = {a, toks, n, SLIM_ERR_INTERNAL}, jb = {b, toks, n, SLIM_ERR_INTERNAL};
    pthread_t ta, tb;
    ck_assert_int_eq(pthread_create(&ta, NULL, prefill_thread, &ja), 0);
    ck_assert_int_eq(pthread_create(&tb, NULL, prefill_thread, &jb), 0);
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
    ck_assert_int_eq(ja.st, SLIM_OK);
    ck_assert_int_eq(jb.st, SLIM_OK);
    ck_assert_mem_eq(slim_get_logits(a), seq, bytes);
    ck_assert_mem_eq(slim_get_logits(b), seq, bytes);
    free(seq);
    slim_context_free(a);
    slim_context_free(b);
}
END_TEST

/* ---- generate -------------------------------------------------------------- */

typedef struct collect {
    slim_token toks[64];
    char text[1024];
    size_t n_text;
    int n, stop_after;
} collect;

static int collect_cb(slim_token tok, const char *piece, size_t len, void *user) {
    collect *c = user;
    ck_assert_int_lt(c->n, 64);
    ck_assert_ptr_nonnull(piece);
    ck_assert_uint_le(c->n_text + len, sizeof c->text);
    c->toks[c->n++] = tok;
    memcpy(c->text + c->n_text, piece, len);
    c->n_text += len;
    return c->stop_after && c->n >= c->stop_after;
}

static const char *const PROMPT = "The capital of France is";

START_TEST(test_generate_greedy) {
    slim_model *mdl = model();
    const int32_t V = n_vocab_of(mdl);
    slim_context *ctx = make_ctx(128, 1);
    slim_sampler *s = make_sampler(0.0f, 0);
    slim_generate_params gp = slim_generate_default_params();
    gp.max_tokens = 8;
    slim_generate_stats stats;
    memset(&stats, 0xAB, sizeof stats);
    stats.struct_size = sizeof stats;
    collect c = {0};
    slim_status st = slim_generate(ctx, s, PROMPT, &gp, collect_cb, &c, &stats);
    ck_assert_msg(st == SLIM_OK, "slim_generate: %s", slim_last_error());
    slim_token ptoks[16];
    const size_t np = tokenize(mdl, PROMPT, SLIM_TOKENIZE_ADD_BOS, ptoks, 16);
    ck_assert_uint_eq(stats.struct_size, sizeof stats);
    ck_assert_int_eq(stats.n_prompt, (int)np);
    ck_assert_double_gt(stats.prompt_ms, 0);
    ck_assert_double_ge(stats.gen_ms, 0);
    ck_assert_double_lt(stats.prompt_ms, 600000);
    ck_assert_int_le(stats.n_generated, 8);
    if (c.n < 8) {
        /* Only an end-of-generation token stops early; it is not passed on. */
        ck_assert_int_eq(stats.n_generated, c.n + 1);
    } else {
        ck_assert_int_eq(c.n, 8);
        ck_assert_int_eq(stats.n_generated, 8);
        /* The last token was sampled from the current logits, not fed back. */
        ck_assert_int_eq(slim_context_n_past(ctx), (int)np + 7);
        ck_assert_int_eq(test_argmax(slim_get_logits(ctx), V), c.toks[7]);
    }
    /* The pieces are exactly the detokenized tokens. */
    char text[1024];
    size_t len = 0;
    ck_assert_int_eq(slim_detokenize(mdl, c.toks, (size_t)c.n, 0, text, sizeof text, &len),
                     SLIM_OK);
    ck_assert_uint_eq(len, c.n_text);
    ck_assert_int_eq(memcmp(text, c.text, len), 0);
    ck_assert_msg(c.n_text >= 4 && memcmp(c.text, " the", 4) == 0, "greedy text '%.*s'",
                  (int)c.n_text, c.text);

    /* Greedy is the argmax chain: redo it by hand with prefill/decode. */
    slim_context *ref = make_ctx(128, 1);
    ck_assert_int_eq(slim_prefill(ref, ptoks, np, NULL), SLIM_OK);
    for (int i = 0; i < c.n; i++) {
        const slim_token t = test_argmax(slim_get_logits(ref), V);
        ck_assert_int_eq(t, c.toks[i]);
        if (i + 1 < c.n) ck_assert_int_eq(slim_decode(ref, t), SLIM_OK);
    }
    slim_context_free(ref);
    slim_sampler_free(s);
    slim_context_free(ctx);
}
END_TEST

START_TEST(test_generate_callback_stop) {
    slim_context *ctx = make_ctx(64, 1);
    slim_sampler *s = make_sampler(0.0f, 0);
    slim_generate_params gp = slim_generate_default_params();
    gp.max_tokens = 16;
    /* An older stats struct: only n_prompt and n_generated. */
    slim_generate_stats stats;
    memset(&stats, 0xAB, sizeof stats);
    const size_t old = offsetof(slim_generate_stats, prompt_ms);
    stats.struct_size = old;
    collect c = {.stop_after = 3};
    ck_assert_int_eq(slim_generate(ctx, s, PROMPT, &gp, collect_cb, &c, &stats), SLIM_OK);
    ck_assert_int_eq(c.n, 3);
    ck_assert_uint_eq(stats.struct_size, old);
    ck_assert_int_eq(stats.n_generated, 3);
    ck_assert_int_gt(stats.n_prompt, 0);
    /* The stop token was not fed back. */
    ck_assert_int_eq(slim_context_n_past(ctx), stats.n_prompt + 2);
    const unsigned char *b = (const unsigned char *)&stats;
    for (size_t k = old; k < sizeof stats; k++)
        ck_assert_msg(b[k] == 0xAB, "stats byte %zu beyond struct_size %zu was written", k, old);

    /* max_tokens 0: the prompt is evaluated, nothing is generated. */
    slim_context_reset(ctx);
    slim_sampler_reset(s);
    gp.max_tokens = 0;
    collect z = {0};
    slim_generate_stats st0 = {.struct_size = sizeof st0};
    ck_assert_int_eq(slim_generate(ctx, s, PROMPT, &gp, collect_cb, &z, &st0), SLIM_OK);
    ck_assert_int_eq(z.n, 0);
    ck_assert_int_eq(st0.n_generated, 0);
    ck_assert_int_eq(st0.n_prompt, stats.n_prompt);
    ck_assert_int_eq(slim_context_n_past(ctx), st0.n_prompt);
    ck_assert_ptr_nonnull(slim_get_logits(ctx));
    /* A NULL callback is allowed. */
    slim_context_reset(ctx);
    gp.max_tokens = 1;
    ck_assert_int_eq(slim_generate(ctx, s, PROMPT, &gp, NULL, NULL, &st0), SLIM_OK);
    ck_assert_int_eq(st0.n_generated, 1);
    slim_sampler_free(s);
    slim_context_free(ctx);
}
END_TEST

START_TEST(test_generate_seeded) {
    slim_generate_params gp = slim_generate_default_params();
    gp.max_tokens = 8;
    collect runs[2];
    memset(runs, 0, sizeof runs);
    for (int r = 0; r < 2; r++) {
        slim_context *ctx = make_ctx(64, 1);
        slim_sampler *s = make_sampler(0.8f, 1234);
        ck_assert_int_eq(
            slim_generate(ctx, s, "My favourite animal is", &gp, collect_cb, &runs[r], NULL),
            SLIM_OK);
        slim_sampler_free(s);
        slim_context_free(ctx);
    }
    ck_assert_int_gt(runs[0].n, 0);
    ck_assert_int_eq(runs[0].n, runs[1].n);
    ck_assert_mem_eq(runs[0].toks, runs[1].toks, (size_t)runs[0].n * sizeof(slim_token));
    ck_assert_uint_eq(runs[0].n_text, runs[1].n_text);
    ck_assert_mem_eq(runs[0].text, runs[1].text, runs[0].n_text);
}
END_TEST

START_TEST(test_generate_edges) {
    slim_model *mdl = model();
    slim_sampler *s = make_sampler(0.0f, 0);
    slim_generate_params gp = slim_generate_default_params();

    /* "" with ADD_BOS is just BOS: one prompt token, generation proceeds. */
    slim_context *ctx = make_ctx(16, 1);
    gp.max_tokens = 2;
    collect c = {0};
    slim_generate_stats stats = {.struct_size = sizeof stats};
    slim_status st = slim_generate(ctx, s, "", &gp, collect_cb, &c, &stats);
    ck_assert_msg(st == SLIM_OK, "empty prompt: %s", slim_last_error());
    ck_assert_int_eq(stats.n_prompt, 1);
    ck_assert_int_ge(stats.n_generated, 1);
    ck_assert_int_le(c.n, 2);
    slim_context_free(ctx);

    /* The context fills up: generation ends normally with the last sampled
     * token (which needs no slot) and n_past == n_ctx. */
    slim_token ptoks[16];
    const size_t np = tokenize(mdl, PROMPT, SLIM_TOKENIZE_ADD_BOS, ptoks, 16);
    ctx = make_ctx((int32_t)np + 2, 1);
    gp.max_tokens = 16;
    slim_sampler_reset(s);
    collect f = {0};
    st = slim_generate(ctx, s, PROMPT, &gp, collect_cb, &f, &stats);
    ck_assert_msg(st == SLIM_OK, "full context: %d %s", st, slim_last_error());
    ck_assert_int_eq(slim_context_n_past(ctx), (int)np + 2);
    ck_assert_int_eq(f.n, 3);
    ck_assert_int_eq(stats.n_generated, 3);
    /* No room for a new prompt now. */
    collect g = {0};
    EXPECT_ERR(slim_generate(ctx, s, PROMPT, &gp, collect_cb, &g, NULL), SLIM_ERR_CONTEXT_FULL,
               "slim_prefill");
    ck_assert_int_eq(g.n, 0);
    ck_assert_int_eq(slim_context_n_past(ctx), (int)np + 2);
    slim_context_free(ctx);

    /* A prompt longer than the whole context. */
    ctx = make_ctx(3, 1);
    EXPECT_ERR(slim_generate(ctx, s, PROMPT, &gp, collect_cb, &g, &stats), SLIM_ERR_CONTEXT_FULL,
               "slim_prefill");
    ck_assert_int_eq(g.n, 0);
    ck_assert_int_eq(stats.n_generated, 0);
    ck_assert_int_eq(slim_context_n_past(ctx), 0);
    slim_context_free(ctx);
    slim_sampler_free(s);
}
END_TEST

typedef struct log_capture {
    int n_info;
    char text[512];
} log_capture;

static void capture_log(slim_log_level level, const char *message, void *user) {
    log_capture *c = user;
    if (level == SLIM_LOG_INFO && c->n_info++ == 0)
        snprintf(c->text, sizeof c->text, "%s", message);
}

/* The log callback hears about a model load; with none installed, nothing is
 * produced (the library never prints). */
START_TEST(test_log_callback_on_load) {
    log_capture cap = {0};
    slim_set_log_callback(capture_log, &cap, SLIM_LOG_INFO);
    slim_model *m = NULL;
    ck_assert_int_eq(slim_model_load(test_model_path(), NULL, &m), SLIM_OK);
    slim_set_log_callback(NULL, NULL, SLIM_LOG_INFO);
    ck_assert_int_ge(cap.n_info, 1);
    ck_assert_ptr_nonnull(strstr(cap.text, "gemma3"));
    ck_assert_ptr_nonnull(strstr(cap.text, "Q4_K_M"));
    cap.n_info = 0;
    slim_context *ctx = NULL;
    ck_assert_int_eq(slim_context_create(m, NULL, &ctx), SLIM_OK);
    ck_assert_int_eq(cap.n_info, 0);
    slim_context_free(ctx);
    slim_model_free(m);
}
END_TEST

Suite *suite_api(void) {
    Suite *s = suite_create("api");
    TCase *basic = tcase_create("basic");
    tcase_set_timeout(basic, 300);
    tcase_add_test(basic, test_version_and_status);
    tcase_add_test(basic, test_free_null_and_null_handles);
    tcase_add_test(basic, test_args_model_load);
    tcase_add_test(basic, test_args_sampler);
    tcase_add_test(basic, test_load_errors);
    tcase_add_test(basic, test_load_truncated);
    tcase_add_test(basic, test_log_callback_on_load);
    suite_add_tcase(s, basic);

    TCase *tc = tcase_create("model");
    tcase_set_timeout(tc, 300);
    tcase_add_unchecked_fixture(tc, model_setup, model_teardown);
    tcase_add_test(tc, test_args_context_create);
    tcase_add_test(tc, test_args_prefill_decode);
    tcase_add_test(tc, test_args_model_queries);
    tcase_add_test(tc, test_args_meta_null_buffer);
    tcase_add_test(tc, test_args_tokenizer);
    tcase_add_test(tc, test_args_generate);
    tcase_add_test(tc, test_model_info);
    tcase_add_test(tc, test_model_meta);
    tcase_add_test(tc, test_model_tensors);
    tcase_add_test(tc, test_tokenize_roundtrip);
    tcase_add_test(tc, test_tokenize_special);
    tcase_add_test(tc, test_context_basics);
    tcase_add_test(tc, test_context_full);
    tcase_add_test(tc, test_context_determinism);
    tcase_add_test(tc, test_generate_greedy);
    tcase_add_test(tc, test_generate_callback_stop);
    tcase_add_test(tc, test_generate_seeded);
    tcase_add_test(tc, test_generate_edges);
    suite_add_tcase(s, tc);
    return s;
}
