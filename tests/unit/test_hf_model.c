/* Hugging Face model directories (config.json + safetensors) against
 * transformers' own logits.  tools/golden/gen_hf.py builds, per family, a tiny
 * random checkpoint with the family's features switched on and saves it with
 * save_pretrained, in F32 (tests/data/hf/<case>/) and BF16 (<case>/bf16/),
 * with the logits transformers computes for 64 teacher-forced tokens
 * (golden.bin: int32 magic "GHLS", n_tokens, n_vocab, tokens, then F32
 * logits[n_tokens][n_vocab]; the BF16 golden is the BF16 weights computed in
 * F32).  See tests/data/hf/README.md for each case's features.
 *
 * Pass marks: top-1 identical at every position, and max |slim - transformers|
 * over the whole vocabulary within a fraction of the golden logits' standard
 * deviation: HF_TOL_F32 for F32 weights and HF_TOL_BF16 for BF16 (see below
 * for what limits each).  Also: the same model in chunks (the KV cache across
 * batches), and malformed configs and checkpoints failing with clear
 * messages. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "slim.h"
#include "suites.h"

/* With the F32 KV cache slim computes what transformers computes, in another
 * summation order.  With the default fp16 cache, rounding K and V is the
 * error floor: transformers with K and V rounded to fp16 moves its own logits
 * by the same amount slim differs by (0.00039 of 0.00039 on a llama case), up
 * to ~2.9e-3 x std over these cases (gemma2). */
#define HF_TOL_F32 1e-4 /* the issue asks 1e-3; measured <= 4.2e-6 */
#define HF_TOL_BF16 1e-4
#define HF_TOL_FP16_KV 5e-3

enum { HF_MAGIC = 0x534C4847, HF_N_CTX = 128, HF_CHUNK = 23 };

typedef struct hf_golden {
    int32_t n_tokens, n_vocab;
    int32_t *tokens;
    float *logits;
} hf_golden;

static const char *hf_dir(void) {
    const char *d = getenv("SLIM_TEST_HF_DIR");
    return d && *d ? d : "tests/data/hf";
}

static hf_golden hf_golden_load(const char *path) {
    size_t size = 0;
    uint8_t *buf = test_read_whole(path, &size);
    int32_t hdr[3];
    ck_assert_msg(size >= sizeof hdr, "%s: truncated", path);
    memcpy(hdr, buf, sizeof hdr);
    ck_assert_msg(hdr[0] == HF_MAGIC && hdr[1] > 0 && hdr[1] <= HF_N_CTX && hdr[2] > 0,
                  "%s: bad header", path);
    hf_golden g = {.n_tokens = hdr[1], .n_vocab = hdr[2]};
    const size_t T = (size_t)g.n_tokens, V = (size_t)g.n_vocab;
    ck_assert_msg(size == sizeof hdr + T * 4 + T * V * 4, "%s: %zu bytes", path, size);
    g.tokens = malloc(T * 4);
    g.logits = malloc(T * V * 4);
    ck_assert(g.tokens && g.logits);
    memcpy(g.tokens, buf + sizeof hdr, T * 4);
    memcpy(g.logits, buf + sizeof hdr + T * 4, T * V * 4);
    free(buf);
    return g;
}

/* Runs the golden's tokens through the model at `dir` (in chunks of `chunk`
 * tokens) and checks the pass marks; returns max |diff| / std. */
static double hf_check(const char *dir, const char *golden_path, double tol, int chunk,
                       int32_t kv_type) {
    hf_golden g = hf_golden_load(golden_path);
    slim_model *m = NULL;
    slim_status st = slim_model_load(dir, NULL, &m);
    ck_assert_msg(st == SLIM_OK, "%s: %s", dir, slim_last_error());
    slim_model_info info = {.struct_size = sizeof info};
    ck_assert_int_eq(slim_model_get_info(m, &info), SLIM_OK);
    ck_assert_int_eq(info.n_vocab, g.n_vocab);
    slim_context_params cp = slim_context_default_params();
    cp.n_ctx = HF_N_CTX;
    cp.n_threads = 2;
    cp.kv_type = kv_type;
    slim_context *ctx = NULL;
    ck_assert_int_eq(slim_context_create(m, &cp, &ctx), SLIM_OK);
    const size_t T = (size_t)g.n_tokens, V = (size_t)g.n_vocab;
    float *out = malloc(T * V * sizeof *out);
    ck_assert_ptr_nonnull(out);
    for (size_t t0 = 0; t0 < T; t0 += (size_t)chunk) {
        const size_t n = T - t0 < (size_t)chunk ? T - t0 : (size_t)chunk;
        st = slim_prefill(ctx, g.tokens + t0, n, out + t0 * V);
        ck_assert_msg(st == SLIM_OK, "%s: %s", dir, slim_last_error());
    }
    double sum = 0, sum2 = 0, max_diff = 0;
    int top1_same = 0;
    for (size_t i = 0; i < T * V; i++) {
        sum += g.logits[i];
        sum2 += (double)g.logits[i] * g.logits[i];
        const double d = fabs((double)out[i] - g.logits[i]);
        if (!(d <= max_diff)) max_diff = d; /* NaN propagates */
    }
    for (size_t t = 0; t < T; t++)
        top1_same +=
            test_argmax(out + t * V, (int32_t)V) == test_argmax(g.logits + t * V, (int32_t)V);
    const double mean = sum / (double)(T * V);
    const double sd = sqrt(sum2 / (double)(T * V) - mean * mean);
    const double rel = max_diff / sd;
    printf("hf %-28s kv %s chunk %3d: top-1 %d/%zu, max |diff| %.3g = %.3g x std (%.3g)\n",
           golden_path, kv_type == SLIM_KV_F32 ? "f32" : "f16", chunk, top1_same, T, max_diff, rel,
           sd);
    fflush(stdout);
    ck_assert_msg(top1_same == (int)T, "%s: top-1 differs at %zu of %zu positions", dir,
                  T - (size_t)top1_same, T);
    ck_assert_msg(rel <= tol, "%s: max |diff| %.3g x std > %.3g", dir, rel, tol);
    free(out);
    slim_context_free(ctx);
    slim_model_free(m);
    free(g.tokens);
    free(g.logits);
    return rel;
}

/* Every golden is transformers' logits (qwen3's checkpoint is tools/golden/
 * gen_synthetic.py --hf qwen3's, its golden gen_hf.py's; tests/data/hf/README.md). */
static const char *const hf_cases[] = {"llama",  "llama_tied", "mistral",   "qwen2", "gemma",
                                       "gemma2", "gemma3",     "gemma3_mm", "phi3",  "qwen3"};
enum { HF_N_CASES = sizeof hf_cases / sizeof hf_cases[0] };

static void case_paths(int i, const char *sub, char *dir, size_t cap, char *golden,
                       size_t golden_cap) {
    snprintf(dir, cap, "%s/%s%s%s", hf_dir(), hf_cases[i], sub ? "/" : "", sub ? sub : "");
    snprintf(golden, golden_cap, "%.*s/golden.bin", (int)(golden_cap - 12), dir);
}

START_TEST(test_hf_f32) {
    char dir[512], golden[600];
    case_paths(_i, NULL, dir, sizeof dir, golden, sizeof golden);
    hf_check(dir, golden, HF_TOL_F32, HF_N_CTX, SLIM_KV_F32);
    hf_check(dir, golden, HF_TOL_F32, HF_CHUNK, SLIM_KV_F32);
    hf_check(dir, golden, HF_TOL_FP16_KV, HF_N_CTX, SLIM_KV_F16);
}
END_TEST

START_TEST(test_hf_bf16) {
    char dir[512], golden[600];
    case_paths(_i, "bf16", dir, sizeof dir, golden, sizeof golden);
    struct stat sb;
    if (stat(dir, &sb) != 0) return; /* the README says which cases have no BF16 copy */
    hf_check(dir, golden, HF_TOL_BF16, HF_N_CTX, SLIM_KV_F32);
}
END_TEST

/* ---- malformed directories ------------------------------------------------------------- */

static char tmp_root[256];

static void tmp_path(char *out, size_t cap, const char *name) {
    snprintf(out, cap, "%s/%s", tmp_root, name);
}

static void write_file(const char *name, const void *data, size_t n) {
    char path[512];
    tmp_path(path, sizeof path, name);
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(data, 1, n, f), n);
    fclose(f);
}

/* A scratch directory holding the llama case's weights; each case writes its
 * config.json (NULL: none) there. */
static void make_scratch(void) {
    snprintf(tmp_root, sizeof tmp_root, "/tmp/slim_hf_bad_%d", (int)getpid());
    mkdir(tmp_root, 0700);
    char src[512];
    snprintf(src, sizeof src, "%s/llama/model.safetensors", hf_dir());
    size_t n = 0;
    uint8_t *st = test_read_whole(src, &n);
    write_file("model.safetensors", st, n);
    free(st);
}

static void remove_scratch(void) {
    char path[512];
    tmp_path(path, sizeof path, "config.json");
    remove(path);
    tmp_path(path, sizeof path, "model.safetensors");
    remove(path);
    rmdir(tmp_root);
}

static void expect_error(const char *name, const char *config, slim_status want,
                         const char *needle) {
    char path[512];
    tmp_path(path, sizeof path, "config.json");
    if (config)
        write_file("config.json", config, strlen(config));
    else
        remove(path);
    slim_model *m = (slim_model *)1;
    const slim_status st = slim_model_load(tmp_root, NULL, &m);
    ck_assert_msg(st == want, "%s: status %d (%s), want %d", name, st, slim_last_error(), want);
    ck_assert_ptr_null(m);
    ck_assert_msg(strstr(slim_last_error(), needle) != NULL, "%s: message '%s' lacks '%s'", name,
                  slim_last_error(), needle);
}

/* cfg (freed) with one key's value replaced, or the member removed (value NULL). */
static char *replace_key(char *cfg, const char *key, const char *value) {
    const size_t n = strlen(cfg);
    char pat[128];
    snprintf(pat, sizeof pat, "\"%s\":", key);
    char *at = strstr(cfg, pat);
    ck_assert_msg(at != NULL, "llama/config.json has no %s", key);
    char *v = at + strlen(pat);
    while (*v == ' ')
        v++;
    char *end = v;
    if (*end == '{' || *end == '[') { /* up to the closing bracket (no nesting in these keys) */
        end = strchr(end, *end == '{' ? '}' : ']') + 1;
    } else {
        while (*end && *end != ',' && *end != '\n' && *end != '}')
            end++;
    }
    char *out = malloc(n + (value ? strlen(value) : 0) + 64);
    ck_assert_ptr_nonnull(out);
    if (value) {
        sprintf(out, "%.*s%s%s", (int)(v - cfg), cfg, value, end);
    } else { /* drop the member: from the key to the next one */
        if (*end == ',') end++;
        sprintf(out, "%.*s%s", (int)(at - cfg), cfg, end);
    }
    free(cfg);
    return out;
}

/* The llama case's config.json with one key's value replaced (or removed). */
static char *config_with(const char *key, const char *value) {
    char path[512];
    snprintf(path, sizeof path, "%s/llama/config.json", hf_dir());
    size_t n = 0;
    char *cfg = (char *)test_read_whole(path, &n);
    cfg[n] = '\0';
    return replace_key(cfg, key, value);
}

START_TEST(test_hf_malformed) {
    /* the llama case's config.json with one key's value replaced (NULL: removed) */
    static const struct {
        const char *key, *value;
        slim_status want;
        const char *needle;
    } bad[] = {
        {"hidden_size", "\"64\"", SLIM_ERR_FORMAT, "hidden_size"},
        {"num_hidden_layers", NULL, SLIM_ERR_FORMAT, "num_hidden_layers"},
        {"hidden_size", "96", SLIM_ERR_FORMAT, "shape"},
        {"num_hidden_layers", "100000", SLIM_ERR_FORMAT, "num_hidden_layers"},
        {"num_key_value_heads", "3", SLIM_ERR_FORMAT, "num_key_value_heads"},
        {"hidden_act", "\"relu\"", SLIM_ERR_UNSUPPORTED, "relu"},
        {"vocab_size", "999", SLIM_ERR_FORMAT, "embed_tokens"},
        /* a misspelled family is named, with the known ones listed (not a guess) */
        {"model_type", "\"lama\"", SLIM_ERR_UNSUPPORTED, "model_type 'lama' is not a family"},
        {"model_type", "\"qwen\"", SLIM_ERR_UNSUPPORTED, "one of: gemma, gemma2, gemma3_text"},
        {"architectures", "[\"LlamaForCausalLN\"]", SLIM_ERR_UNSUPPORTED,
         "architectures 'LlamaForCausalLN' is not a family"},
        {"model_type", "\"qwen2\"", SLIM_ERR_UNSUPPORTED, "name different families"},
    };
    make_scratch();
    expect_error("noconfig", NULL, SLIM_ERR_IO, "config.json");
    expect_error("notjson", "{\"hidden_size\": 64,", SLIM_ERR_FORMAT, "config.json");
    expect_error("array", "[1, 2]", SLIM_ERR_FORMAT, "object");
    char *c =
        replace_key(config_with("model_type", "\"bert\""), "architectures", "[\"BertModel\"]");
    expect_error("family", c, SLIM_ERR_UNSUPPORTED, "bert");
    free(c);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        c = config_with(bad[i].key, bad[i].value);
        expect_error(bad[i].key, c, bad[i].want, bad[i].needle);
        free(c);
    }
    remove_scratch();
}
END_TEST

/* kv_type: a value that is not a slim_kv_type is refused; F32 and F16 caches
 * of one model give the same top-1 on the llama case (checked above), and
 * the same first-token logits to fp16 rounding. */
START_TEST(test_hf_kv_type_args) {
    char dir[512];
    snprintf(dir, sizeof dir, "%s/llama", hf_dir());
    slim_model *m = NULL;
    ck_assert_int_eq(slim_model_load(dir, NULL, &m), SLIM_OK);
    slim_context_params cp = slim_context_default_params();
    ck_assert_int_eq(cp.kv_type, SLIM_KV_F16);
    cp.n_ctx = 64;
    slim_context *ctx = (slim_context *)1;
    cp.kv_type = 2;
    ck_assert_int_eq(slim_context_create(m, &cp, &ctx), SLIM_ERR_INVALID_ARG);
    ck_assert_ptr_null(ctx);
    ck_assert_ptr_nonnull(strstr(slim_last_error(), "kv_type 2"));
    cp.kv_type = -1;
    ck_assert_int_eq(slim_context_create(m, &cp, &ctx), SLIM_ERR_INVALID_ARG);
    slim_model_free(m);
}
END_TEST

/* Quantize at load: a directory loaded with weight_type "q8_0" computes what
 * the same directory written by slim_model_save_gguf(..., "q8_0") computes
 * (the same rows, the same quantizer: llama-quantize's bytes, checked in the
 * convert suite), and stays close to transformers. */
START_TEST(test_hf_quantize_at_load) {
    char dir[512], golden[600];
    snprintf(dir, sizeof dir, "%s/qwen2", hf_dir());
    snprintf(golden, sizeof golden, "%s/golden.bin", dir);
    hf_golden g = hf_golden_load(golden);
    const size_t T = (size_t)g.n_tokens, V = (size_t)g.n_vocab;
    slim_model_params mp = slim_model_default_params();
    mp.weight_type = "q9_9";
    slim_model *m = (slim_model *)1;
    ck_assert_int_eq(slim_model_load(dir, &mp, &m), SLIM_ERR_INVALID_ARG);
    ck_assert_ptr_nonnull(strstr(slim_last_error(), "q9_9"));
    mp.weight_type = "q8_0";
    ck_assert_int_eq(slim_model_load(dir, &mp, &m), SLIM_OK);
    slim_model_info info = {.struct_size = sizeof info};
    slim_model_get_info(m, &info);
    ck_assert_str_eq(info.file_type, "Q8_0");
    char path[64];
    snprintf(path, sizeof path, "/tmp/slim_hf_q8_%d.gguf", (int)getpid());
    ck_assert_int_eq(slim_model_save_gguf(m, path, "keep", NULL, NULL), SLIM_OK);
    slim_model *f = NULL;
    ck_assert_int_eq(slim_model_load(path, NULL, &f), SLIM_OK);
    slim_model *both[2] = {m, f};
    float *out[2];
    for (int k = 0; k < 2; k++) {
        slim_context_params cp = slim_context_default_params();
        cp.n_ctx = HF_N_CTX;
        cp.kv_type = SLIM_KV_F32;
        slim_context *ctx = NULL;
        ck_assert_int_eq(slim_context_create(both[k], &cp, &ctx), SLIM_OK);
        out[k] = malloc(T * V * sizeof(float));
        ck_assert_int_eq(slim_prefill(ctx, g.tokens, T, out[k]), SLIM_OK);
        slim_context_free(ctx);
    }
    int top1 = 0;
    double max_dir_file = 0, max_ref = 0, sd = 0;
    for (size_t i = 0; i < T * V; i++) {
        max_dir_file = fmax(max_dir_file, fabs((double)out[0][i] - out[1][i]));
        max_ref = fmax(max_ref, fabs((double)out[0][i] - g.logits[i]));
        sd += (double)g.logits[i] * g.logits[i];
    }
    sd = sqrt(sd / (double)(T * V));
    for (size_t t = 0; t < T; t++)
        top1 +=
            test_argmax(out[0] + t * V, (int32_t)V) == test_argmax(g.logits + t * V, (int32_t)V);
    printf("hf qwen2 q8_0 at load: vs its GGUF max |diff| %.3g; vs transformers top-1 %d/%zu, "
           "max |diff| %.3g (rms %.3g)\n",
           max_dir_file, top1, T, max_ref, sd);
    fflush(stdout);
    ck_assert_msg(max_dir_file <= 1e-5, "q8_0 at load vs its GGUF: %g", max_dir_file);
    ck_assert_int_ge(top1, (int)(T * 9 / 10));
    remove(path);
    for (int k = 0; k < 2; k++)
        free(out[k]);
    slim_model_free(f);
    slim_model_free(m);
    free(g.tokens);
    free(g.logits);
}
END_TEST

/* Q4_0 at load on the CPU: the matmul weights are repacked into 16-row
 * groups (quant/legacy_x16.h).  A prompt evaluated at once and one token at a
 * time gives bitwise the same logits; the plain Q4_0 kernels
 * (SLIM_CPU_REPACK=0) give the same top-1 everywhere and logits equal up to
 * float rounding (1e-4 x std); transformers' top-1 is printed (random tiny
 * models have close logits, Q4_0's own error moves many). */
START_TEST(test_hf_q4_0_packed) {
    char dir[512], golden[600];
    snprintf(dir, sizeof dir, "%s/llama", hf_dir());
    snprintf(golden, sizeof golden, "%s/golden.bin", dir);
    hf_golden g = hf_golden_load(golden);
    const size_t T = (size_t)g.n_tokens, V = (size_t)g.n_vocab;
    slim_model_params mp = slim_model_default_params();
    mp.weight_type = "q4_0";
    float *all[2];
    for (int k = 0; k < 2; k++) {
        if (k) setenv("SLIM_CPU_REPACK", "0", 1);
        slim_model *m = NULL;
        ck_assert_int_eq(slim_model_load(dir, &mp, &m), SLIM_OK);
        unsetenv("SLIM_CPU_REPACK");
        slim_context_params cp = slim_context_default_params();
        cp.n_ctx = HF_N_CTX;
        cp.kv_type = SLIM_KV_F32;
        slim_context *ctx = NULL;
        ck_assert_int_eq(slim_context_create(m, &cp, &ctx), SLIM_OK);
        all[k] = malloc(T * V * sizeof(float));
        ck_assert_ptr_nonnull(all[k]);
        ck_assert_int_eq(slim_prefill(ctx, g.tokens, T, all[k]), SLIM_OK);
        slim_context_reset(ctx);
        for (size_t t = 0; k == 0 && t < T; t++) {
            ck_assert_int_eq(slim_decode(ctx, g.tokens[t]), SLIM_OK);
            ck_assert_msg(memcmp(slim_get_logits(ctx), all[k] + t * V, V * sizeof(float)) == 0,
                          "q4_0 repacked: decode != prefill at position %zu", t);
        }
        slim_context_free(ctx);
        slim_model_free(m);
    }
    int top1 = 0, same = 0;
    double max_d = 0, sd = 0;
    for (size_t i = 0; i < T * V; i++) {
        max_d = fmax(max_d, fabs((double)all[0][i] - all[1][i]));
        sd += (double)g.logits[i] * g.logits[i];
    }
    sd = sqrt(sd / (double)(T * V));
    for (size_t t = 0; t < T; t++) {
        same += test_argmax(all[0] + t * V, (int32_t)V) == test_argmax(all[1] + t * V, (int32_t)V);
        top1 +=
            test_argmax(all[0] + t * V, (int32_t)V) == test_argmax(g.logits + t * V, (int32_t)V);
    }
    printf(
        "hf llama q4_0 at load: repacked decode == prefill bitwise at %zu positions; vs plain "
        "Q4_0 kernels top-1 %d/%zu, max |diff| %.3g = %.3g x std; vs transformers top-1 %d/%zu\n",
        T, same, T, max_d, max_d / sd, top1, T);
    fflush(stdout);
    ck_assert_int_eq(same, (int)T);
    ck_assert_msg(max_d <= 1e-4 * sd, "repacked vs plain Q4_0: %g", max_d);
    for (int k = 0; k < 2; k++)
        free(all[k]);
    free(g.tokens);
    free(g.logits);
}
END_TEST

/* Real models as Hugging Face directories (tools/golden/gguf_to_hf.py:
 * SmolLM2-135M and Gemma 3 270M rebuilt from their GGUFs, with transformers'
 * logits): SLIM_TEST_HF_REAL lists them, `make test-full` sets it. */
START_TEST(test_hf_real) {
    const char *list = getenv("SLIM_TEST_HF_REAL");
    if (!list || !*list) return;
    char buf[1024];
    snprintf(buf, sizeof buf, "%s", list);
    for (char *save = NULL, *dir = strtok_r(buf, ",", &save); dir;
         dir = strtok_r(NULL, ",", &save)) {
        char golden[1100];
        snprintf(golden, sizeof golden, "%s/golden.bin", dir);
        hf_check(dir, golden, HF_TOL_F32, HF_N_CTX, SLIM_KV_F32);
    }
}
END_TEST

Suite *suite_hf_model(void) {
    Suite *s = suite_create("hf_model");
    TCase *tc = tcase_create("hf_model");
    tcase_set_timeout(tc, 300);
    tcase_add_loop_test(tc, test_hf_f32, 0, HF_N_CASES);
    tcase_add_loop_test(tc, test_hf_bf16, 0, HF_N_CASES);
    tcase_add_test(tc, test_hf_malformed);
    tcase_add_test(tc, test_hf_kv_type_args);
    tcase_add_test(tc, test_hf_quantize_at_load);
    tcase_add_test(tc, test_hf_q4_0_packed);
    tcase_add_test(tc, test_hf_real);
    suite_add_tcase(s, tc);
    return s;
}
