/* The GGUF writer, the weight quantizers and `slim convert`, against
 * independent implementations (tools/golden/gen_convert.py):
 *  - quantizers: tests/data/convert_quant.bin holds 40 F32 rows of 256 (edge
 *    cases: zeros, constants, denormals, values below GGML's GROUP_MAX_EPS,
 *    large values, outliers, rounding ties, zero sub-blocks; then random rows)
 *    and their bytes from llama.cpp's llama_model_quantize (Q4_0..Q8_0, Q4_K,
 *    Q5_K, Q6_K) and the gguf package (F16, BF16): slim's must be identical;
 *  - writer: tests/data/convert_writer.gguf was written by gguf-py's GGUFWriter;
 *    slim's writer, given the same keys and tensors, must produce the same
 *    bytes, and slim's reader reads every value back;
 *  - convert: every synthetic model converted keep / f16 / q8_0 / q4_k / q6_k
 *    loads in slim, keep bitwise (tensors and logits), the others within a
 *    per-type tolerance of the source's logits; the default model converted
 *    keep has byte-identical tensors, every source key, the same
 *    tokenization and logits.  (tools/golden/check_convert.py checks the same
 *    files with llama.cpp: every tensor equals llama-quantize's own output.)
 *  - Hugging Face Q/K layout and folded attention scales on in-memory models.
 * Temporary files go to a mkdtemp directory under /tmp. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/fp16.h"
#include "format/gguf_write.h"
#include "model/model.h"
#include "quant/dtype.h"
#include "slim.h"
#include "suites.h"
#include "tokenizer/vocab_internal.h"

static char tmp_dir[64];

static void tmp_setup(void) {
    snprintf(tmp_dir, sizeof tmp_dir, "/tmp/slim_convert_XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(tmp_dir));
}

static void tmp_teardown(void) {
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp_dir);
    ck_assert_int_eq(system(cmd), 0);
}

static const char *tmp_path(const char *name) {
    static char buf[4][128];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", tmp_dir, name);
    return buf[k];
}

/* ---- quantizers ------------------------------------------------------------ */

START_TEST(test_quantizers_match_llama_cpp) {
    size_t size;
    uint8_t *d = test_read_whole("tests/data/convert_quant.bin", &size);
    ck_assert_msg(size > 20 && memcmp(d, "SLIMCVQ1", 8) == 0, "convert_quant.bin: bad header");
    uint32_t h[3];
    memcpy(h, d + 8, sizeof h);
    const uint32_t n_rows = h[0], n_cols = h[1], n_types = h[2];
    ck_assert(n_rows == 40 && n_cols == 256 && n_types == 10);
    const float *rows = (const float *)(d + 20);
    size_t off = 20 + (size_t)n_rows * n_cols * 4;
    uint8_t out[1024];
    int types_seen = 0;
    for (uint32_t t = 0; t < n_types; t++) {
        uint32_t th[3];
        ck_assert(off + sizeof th <= size);
        memcpy(th, d + off, sizeof th);
        off += sizeof th;
        const slim_dtype type = (slim_dtype)th[0];
        const size_t rb = th[2];
        ck_assert_msg(off + rb * n_rows <= size, "convert_quant.bin truncated");
        ck_assert_uint_eq(rb, slim_dtype_row_size(type, n_cols));
        slim_quantize_fn q = slim_quantizer(type);
        ck_assert_msg(q != NULL, "no quantizer for %s", slim_dtype_name((int)type));
        int same = 0;
        for (uint32_t r = 0; r < n_rows; r++) {
            q(rows + (size_t)r * n_cols, out, n_cols);
            if (memcmp(out, d + off + r * rb, rb) == 0)
                same++;
            else
                fprintf(stderr, "%s row %u differs from %s\n", slim_dtype_name((int)type), r,
                        th[1] ? "llama.cpp" : "gguf-py");
        }
        ck_assert_msg(same == (int)n_rows, "%s: %d of %u rows bitwise equal",
                      slim_dtype_name((int)type), same, n_rows);
        off += rb * n_rows;
        types_seen++;
    }
    ck_assert_int_eq(types_seen, 10);
    ck_assert_uint_eq(off, size);
    free(d);
}
END_TEST

START_TEST(test_quantizer_table_and_fallback) {
    const slim_dtype yes[] = {SLIM_DTYPE_F32,  SLIM_DTYPE_F16,  SLIM_DTYPE_BF16, SLIM_DTYPE_Q4_0,
                              SLIM_DTYPE_Q4_1, SLIM_DTYPE_Q5_0, SLIM_DTYPE_Q5_1, SLIM_DTYPE_Q8_0,
                              SLIM_DTYPE_Q4_K, SLIM_DTYPE_Q5_K, SLIM_DTYPE_Q6_K};
    for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++)
        ck_assert_ptr_nonnull(slim_quantizer(yes[i]));
    ck_assert_ptr_null(slim_quantizer(SLIM_DTYPE_Q8_1)); /* activation-only types */
    ck_assert_ptr_null(slim_quantizer(SLIM_DTYPE_Q8_K));
    ck_assert_ptr_null(slim_quantizer(SLIM_DTYPE_Q2_K));
    /* llama-quantize's tensor_type_fallback */
    ck_assert_int_eq(slim_convert_type_for(SLIM_DTYPE_Q4_K, 512), SLIM_DTYPE_Q4_K);
    ck_assert_int_eq(slim_convert_type_for(SLIM_DTYPE_Q4_K, 640), SLIM_DTYPE_Q5_0);
    ck_assert_int_eq(slim_convert_type_for(SLIM_DTYPE_Q5_K, 64), SLIM_DTYPE_Q5_1);
    ck_assert_int_eq(slim_convert_type_for(SLIM_DTYPE_Q6_K, 96), SLIM_DTYPE_Q8_0);
    ck_assert_int_eq(slim_convert_type_for(SLIM_DTYPE_Q6_K, 48), SLIM_DTYPE_F16);
    ck_assert_int_eq(slim_convert_type_for(SLIM_DTYPE_Q8_0, 48), SLIM_DTYPE_F16);
    ck_assert_int_eq(slim_convert_type_for(SLIM_DTYPE_Q4_0, 64), SLIM_DTYPE_Q4_0);
    ck_assert_int_eq(slim_convert_type_for(SLIM_DTYPE_BF16, 7), SLIM_DTYPE_BF16);
}
END_TEST

/* ---- writer ------------------------------------------------------------------ */

/* The content of gen_convert.py's writer_fixture(), in the same order. */
static void writer_fixture(slim_gguf_writer *w) {
#define OK(x) ck_assert_int_eq((x), SLIM_OK)
    OK(slim_gguf_writer_kv_str(w, "general.architecture", "slimtest", 8));
    OK(slim_gguf_writer_kv_u32(w, "general.alignment", 64));
    uint8_t u8 = 200;
    int8_t i8 = -100;
    uint16_t u16 = 65000;
    int16_t i16 = -30000;
    int32_t i32 = -2000000000;
    uint64_t u64 = (1ull << 60) + 3;
    int64_t i64 = -(1ll << 60);
    double f64 = 1.0 / 3.0;
    OK(slim_gguf_writer_kv(w, "t.u8", SLIM_GGUF_UINT8, &u8));
    OK(slim_gguf_writer_kv(w, "t.i8", SLIM_GGUF_INT8, &i8));
    OK(slim_gguf_writer_kv(w, "t.u16", SLIM_GGUF_UINT16, &u16));
    OK(slim_gguf_writer_kv(w, "t.i16", SLIM_GGUF_INT16, &i16));
    OK(slim_gguf_writer_kv_u32(w, "t.u32", 4000000000u));
    OK(slim_gguf_writer_kv(w, "t.i32", SLIM_GGUF_INT32, &i32));
    OK(slim_gguf_writer_kv_f32(w, "t.f32", 3.25f));
    OK(slim_gguf_writer_kv_bool(w, "t.bool", true));
    const char *str = "h\xc3\xa9llo w\xc3\xb6rld";
    OK(slim_gguf_writer_kv_str(w, "t.str", str, strlen(str)));
    OK(slim_gguf_writer_kv(w, "t.u64", SLIM_GGUF_UINT64, &u64));
    OK(slim_gguf_writer_kv(w, "t.i64", SLIM_GGUF_INT64, &i64));
    OK(slim_gguf_writer_kv(w, "t.f64", SLIM_GGUF_FLOAT64, &f64));
    OK(slim_gguf_writer_kv_str(w, "t.empty", "", 0));
    const uint8_t a_u8[] = {1, 2, 255};
    const int8_t a_i8[] = {-1, 0, 127};
    const uint16_t a_u16[] = {7, 65535};
    const int16_t a_i16[] = {-32768, 5};
    const uint32_t a_u32[] = {1, 2, 3, 4};
    const int32_t a_i32[] = {-7, 0, 7};
    const float a_f32[] = {0.5f, -1.25f, 1e-3f};
    const uint8_t a_bool[] = {1, 0, 1};
    const char *a_str[] = {"a", "",
                           "\xc3\xbcn\xc3\xaf"
                           "code",
                           "<0x0A>"};
    const uint64_t a_u64[] = {(1ull << 63) + 1};
    const int64_t a_i64[] = {-1, 1ll << 62};
    const double a_f64[] = {2.5, -0.1};
    OK(slim_gguf_writer_kv_arr(w, "a.u8", SLIM_GGUF_UINT8, a_u8, 3));
    OK(slim_gguf_writer_kv_arr(w, "a.i8", SLIM_GGUF_INT8, a_i8, 3));
    OK(slim_gguf_writer_kv_arr(w, "a.u16", SLIM_GGUF_UINT16, a_u16, 2));
    OK(slim_gguf_writer_kv_arr(w, "a.i16", SLIM_GGUF_INT16, a_i16, 2));
    OK(slim_gguf_writer_kv_arr(w, "a.u32", SLIM_GGUF_UINT32, a_u32, 4));
    OK(slim_gguf_writer_kv_arr(w, "a.i32", SLIM_GGUF_INT32, a_i32, 3));
    OK(slim_gguf_writer_kv_arr(w, "a.f32", SLIM_GGUF_FLOAT32, a_f32, 3));
    OK(slim_gguf_writer_kv_arr(w, "a.bool", SLIM_GGUF_BOOL, a_bool, 3));
    OK(slim_gguf_writer_kv_str_arr(w, "a.str", a_str, NULL, 4));
    OK(slim_gguf_writer_kv_arr(w, "a.u64", SLIM_GGUF_UINT64, a_u64, 1));
    OK(slim_gguf_writer_kv_arr(w, "a.i64", SLIM_GGUF_INT64, a_i64, 2));
    OK(slim_gguf_writer_kv_arr(w, "a.f64", SLIM_GGUF_FLOAT64, a_f64, 2));
    OK(slim_gguf_writer_tensor(w, "f32.weight", SLIM_DTYPE_F32, 2, (int64_t[]){3, 5}));
    OK(slim_gguf_writer_tensor(w, "f16.weight", SLIM_DTYPE_F16, 2, (int64_t[]){8, 2}));
    OK(slim_gguf_writer_tensor(w, "blk.0.q8.weight", SLIM_DTYPE_Q8_0, 2, (int64_t[]){32, 2}));
    OK(slim_gguf_writer_tensor(w, "one", SLIM_DTYPE_F32, 1, (int64_t[]){1}));
}

/* The fixture's tensor data (as gen_convert.py makes it), written in uneven pieces. */
static void writer_fixture_data(slim_gguf_writer *w) {
    float f32[15];
    for (int i = 0; i < 15; i++)
        f32[i] = (float)i * 0.25f - 3.0f;
    uint16_t f16[16];
    for (int i = 0; i < 16; i++)
        f16[i] = slim_f32_to_fp16((float)i * 0.5f);
    uint8_t q8[68];
    for (int i = 0; i < 68; i++)
        q8[i] = (uint8_t)(i % 251);
    float one = 42.0f;
    OK(slim_gguf_writer_data(w, f32, 10));
    OK(slim_gguf_writer_data(w, (const uint8_t *)f32 + 10, 50));
    OK(slim_gguf_writer_data(w, f16, sizeof f16));
    uint8_t cat[68 + 4]; /* one call spanning two tensors */
    memcpy(cat, q8, 68);
    memcpy(cat + 68, &one, 4);
    OK(slim_gguf_writer_data(w, cat, sizeof cat));
}

START_TEST(test_writer_bytes_equal_gguf_py) {
    slim_gguf_writer *w;
    OK(slim_gguf_writer_create(&w));
    writer_fixture(w);
    ck_assert_uint_eq(slim_gguf_writer_tensor_count(w), 4);
    ck_assert_uint_eq(slim_gguf_writer_tensor_size(w, 2), 68);
    const char *path = tmp_path("fixture.gguf");
    OK(slim_gguf_writer_begin(w, path));
    writer_fixture_data(w);
    OK(slim_gguf_writer_finish(w));
    slim_gguf_writer_free(w);
    size_t n_ref, n_out;
    uint8_t *ref = test_read_whole("tests/data/convert_writer.gguf", &n_ref);
    uint8_t *out = test_read_whole(path, &n_out);
    ck_assert_uint_eq(n_out, n_ref);
    size_t i = 0;
    while (i < n_ref && ref[i] == out[i])
        i++;
    ck_assert_msg(i == n_ref, "first difference from gguf-py's file at byte %zu of %zu", i, n_ref);
    ck_assert_int_eq(access(tmp_path("fixture.gguf.part"), F_OK), -1);

    /* slim's reader gets every value back */
    slim_gguf *g;
    OK(slim_gguf_open(path, true, &g));
    ck_assert_uint_eq(g->alignment, 64);
    ck_assert_uint_eq(g->n_kv, 27);
    int64_t v;
    ck_assert(slim_gguf_get_i64(g, "t.u8", &v) && v == 200);
    ck_assert(slim_gguf_get_i64(g, "t.i8", &v) && v == -100);
    ck_assert(slim_gguf_get_i64(g, "t.i16", &v) && v == -30000);
    ck_assert(slim_gguf_get_i64(g, "t.u32", &v) && v == 4000000000ll);
    ck_assert(slim_gguf_get_i64(g, "t.i64", &v) && v == -(1ll << 60));
    ck_assert_uint_eq(slim_gguf_find(g, "t.u64")->v.u64, (1ull << 60) + 3);
    ck_assert(slim_gguf_find(g, "t.f64")->v.f64 == 1.0 / 3.0);
    float f;
    ck_assert(slim_gguf_get_f32(g, "t.f32", &f) && f == 3.25f);
    bool b;
    ck_assert(slim_gguf_get_bool(g, "t.bool", &b) && b);
    slim_gguf_str s;
    ck_assert(slim_gguf_get_str(g, "t.str", &s) && s.len == 13 && !memcmp(s.ptr, "h\xc3\xa9", 3));
    ck_assert(slim_gguf_get_str(g, "t.empty", &s) && s.len == 0);
    const slim_gguf_kv *kv;
    ck_assert(slim_gguf_get_arr(g, "a.str", SLIM_GGUF_STRING, &kv) && kv->arr_n == 4);
    ck_assert(kv->arr_strs[1].len == 0 && kv->arr_strs[3].len == 6);
    ck_assert(slim_gguf_get_arr(g, "a.i16", SLIM_GGUF_INT16, &kv) && kv->arr_n == 2);
    int16_t i16s[2];
    memcpy(i16s, kv->arr_data, 4);
    ck_assert(i16s[0] == -32768 && i16s[1] == 5);
    ck_assert(slim_gguf_get_arr(g, "a.f64", SLIM_GGUF_FLOAT64, &kv) && kv->arr_n == 2);
    ck_assert_uint_eq(g->n_tensors, 4);
    const slim_gguf_tensor *t = slim_gguf_find_tensor(g, "blk.0.q8.weight");
    ck_assert(t && t->type == SLIM_DTYPE_Q8_0 && t->ne[0] == 32 && t->ne[1] == 2);
    ck_assert_uint_eq(t->offset % 64, 0);
    ck_assert_int_eq(((const uint8_t *)t->data)[67], 67);
    t = slim_gguf_find_tensor(g, "f32.weight");
    ck_assert(t && t->ne[0] == 3 && t->ne[1] == 5 && ((const float *)t->data)[14] == 0.5f);
    t = slim_gguf_find_tensor(g, "one");
    ck_assert(t && t->n_dims == 1 && *(const float *)t->data == 42.0f);
    slim_gguf_close(g);
    free(ref);
    free(out);
}
END_TEST

#define EXPECT_ERR(call, status, text)                                                             \
    do {                                                                                           \
        slim_status st_ = (call);                                                                  \
        ck_assert_msg(st_ == (status), "%s: status %d, expected %d (%s)", #call, st_, (status),    \
                      slim_last_error());                                                          \
        ck_assert_msg(strstr(slim_last_error(), (text)) != NULL, "%s: message '%s' lacks '%s'",    \
                      #call, slim_last_error(), (text));                                           \
    } while (0)

START_TEST(test_writer_errors) {
    slim_gguf_writer *w;
    OK(slim_gguf_writer_create(&w));
    OK(slim_gguf_writer_kv_u32(w, "k", 1));
    EXPECT_ERR(slim_gguf_writer_kv_u32(w, "k", 2), SLIM_ERR_INVALID_ARG, "duplicate key 'k'");
    EXPECT_ERR(slim_gguf_writer_kv_u32(w, "general.alignment", 48), SLIM_ERR_INVALID_ARG,
               "power of two");
    EXPECT_ERR(slim_gguf_writer_kv_f32(w, "general.alignment", 64), SLIM_ERR_INVALID_ARG, "UINT32");
    EXPECT_ERR(slim_gguf_writer_kv(w, "x", SLIM_GGUF_STRING, "s"), SLIM_ERR_INVALID_ARG,
               "not a scalar");
    EXPECT_ERR(slim_gguf_writer_kv_arr(w, "x", SLIM_GGUF_ARRAY, "", 0), SLIM_ERR_INVALID_ARG,
               "bad array");
    EXPECT_ERR(slim_gguf_writer_kv_str(w, "", "s", 1), SLIM_ERR_INVALID_ARG, "key of 0 bytes");
    EXPECT_ERR(slim_gguf_writer_tensor(w, "q", SLIM_DTYPE_Q4_K, 2, (int64_t[]){128, 2}),
               SLIM_ERR_INVALID_ARG, "not a multiple of Q4_K's block size 256");
    EXPECT_ERR(slim_gguf_writer_tensor(w, "q", (slim_dtype)5, 1, (int64_t[]){32}),
               SLIM_ERR_INVALID_ARG, "unknown type 5");
    EXPECT_ERR(slim_gguf_writer_tensor(w, "q", SLIM_DTYPE_F32, 5, (int64_t[]){1, 1, 1, 1, 1}),
               SLIM_ERR_INVALID_ARG, "5 dims");
    EXPECT_ERR(slim_gguf_writer_tensor(w, "q", SLIM_DTYPE_F32, 1, (int64_t[]){0}),
               SLIM_ERR_INVALID_ARG, "bad dim 0");
    char long_name[80];
    memset(long_name, 'n', 64);
    long_name[64] = '\0';
    EXPECT_ERR(slim_gguf_writer_tensor(w, long_name, SLIM_DTYPE_F32, 1, (int64_t[]){4}),
               SLIM_ERR_INVALID_ARG, "64 bytes");
    OK(slim_gguf_writer_tensor(w, "a", SLIM_DTYPE_F32, 1, (int64_t[]){4}));
    EXPECT_ERR(slim_gguf_writer_tensor(w, "a", SLIM_DTYPE_F32, 1, (int64_t[]){4}),
               SLIM_ERR_INVALID_ARG, "duplicate tensor 'a'");
    EXPECT_ERR(slim_gguf_writer_kv_u32(w, "general.alignment", 64), SLIM_ERR_INVALID_ARG,
               "after the first tensor");
    EXPECT_ERR(slim_gguf_writer_data(w, "abcd", 4), SLIM_ERR_INVALID_ARG, "before begin");
    EXPECT_ERR(slim_gguf_writer_begin(w, "/nonexistent-dir/x.gguf"), SLIM_ERR_IO,
               "/nonexistent-dir/x.gguf");
    slim_gguf_writer_free(w);

    /* an unfinished file leaves nothing behind; extra data is refused */
    OK(slim_gguf_writer_create(&w));
    OK(slim_gguf_writer_tensor(w, "a", SLIM_DTYPE_F32, 1, (int64_t[]){4}));
    const char *path = tmp_path("partial.gguf");
    OK(slim_gguf_writer_begin(w, path));
    EXPECT_ERR(slim_gguf_writer_kv_u32(w, "late", 1), SLIM_ERR_INVALID_ARG, "after the data");
    OK(slim_gguf_writer_data(w, "abcdefgh", 8));
    EXPECT_ERR(slim_gguf_writer_finish(w), SLIM_ERR_INVALID_ARG, "incomplete (8 of 16 bytes)");
    EXPECT_ERR(slim_gguf_writer_data(w, "abcdefghij", 10), SLIM_ERR_INVALID_ARG,
               "beyond the last tensor");
    slim_gguf_writer_free(w);
    ck_assert_int_eq(access(path, F_OK), -1);
    ck_assert_int_eq(access(tmp_path("partial.gguf.part"), F_OK), -1);
}
END_TEST

/* ---- convert ------------------------------------------------------------------ */

static slim_model *load(const char *path) {
    slim_model *m = NULL;
    slim_status st = slim_model_load(path, NULL, &m);
    ck_assert_msg(st == SLIM_OK, "load %s: %s", path, slim_last_error());
    return m;
}

enum { N_TOK = 48 };

/* Logits of a fixed token sequence (all positions), malloc'd. */
static float *run_logits(const slim_model *m, int *n_vocab) {
    slim_model_info info = {.struct_size = sizeof info};
    OK(slim_model_get_info(m, &info));
    slim_context_params cp = slim_context_default_params();
    cp.n_ctx = 64, cp.n_threads = 1;
    slim_context *ctx;
    OK(slim_context_create(m, &cp, &ctx));
    slim_token toks[N_TOK];
    uint32_t x = 12345;
    toks[0] = info.bos >= 0 ? info.bos : 1;
    for (int i = 1; i < N_TOK; i++) { /* a fixed pseudo-random sequence past the specials */
        x = x * 1103515245u + 12345u;
        toks[i] = 5 + (slim_token)((x >> 8) % (uint32_t)(info.n_vocab - 5));
    }
    float *lg = malloc((size_t)N_TOK * (size_t)info.n_vocab * sizeof *lg);
    ck_assert_ptr_nonnull(lg);
    OK(slim_prefill(ctx, toks, N_TOK, lg));
    slim_context_free(ctx);
    *n_vocab = info.n_vocab;
    return lg;
}

typedef struct agreement {
    double rel_rms; /* rms(diff) / rms(source logits) */
    double top1;    /* fraction of positions with the same argmax */
} agreement;

static agreement compare_logits(const float *a, const float *b, int n_vocab) {
    double d2 = 0, s2 = 0;
    int same = 0;
    for (int t = 0; t < N_TOK; t++) {
        int ia = 0, ib = 0;
        for (int i = 0; i < n_vocab; i++) {
            size_t k = (size_t)t * n_vocab + i;
            d2 += (double)(a[k] - b[k]) * (a[k] - b[k]);
            s2 += (double)a[k] * a[k];
            if (a[k] > a[(size_t)t * n_vocab + ia]) ia = i;
            if (b[k] > b[(size_t)t * n_vocab + ib]) ib = i;
        }
        same += ia == ib;
    }
    return (agreement){sqrt(d2 / s2), (double)same / N_TOK};
}

/* Every tensor of `src` is in `out` with the same type, shape and bytes. */
static void expect_same_tensors(const slim_model *src, const slim_model *out) {
    ck_assert_uint_eq(out->gguf->n_tensors, src->gguf->n_tensors);
    for (uint64_t i = 0; i < src->gguf->n_tensors; i++) {
        const slim_gguf_tensor *a = &src->gguf->tensors[i];
        const slim_gguf_tensor *b = slim_gguf_find_tensor(out->gguf, a->name);
        ck_assert_msg(b != NULL, "tensor %s missing", a->name);
        ck_assert_msg(a->type == b->type && a->n_dims == b->n_dims && a->size == b->size &&
                          !memcmp(a->ne, b->ne, sizeof a->ne),
                      "tensor %s: type or shape changed", a->name);
        ck_assert_msg(memcmp(a->data, b->data, a->size) == 0, "tensor %s: bytes differ", a->name);
    }
}

/* The vocabularies tokenize alike: same tokens, scores, attributes, ids, flags. */
static void expect_same_vocab(const slim_vocab *a, const slim_vocab *b) {
    ck_assert_int_eq(a->type, b->type);
    ck_assert_int_eq(a->n, b->n);
    for (int32_t i = 0; i < a->n; i++) {
        ck_assert(a->len[i] == b->len[i] && !memcmp(a->text[i], b->text[i], a->len[i]));
        ck_assert(a->score[i] == b->score[i] || a->type == SLIM_VOCAB_BPE);
        ck_assert_msg(a->attr[i] == b->attr[i], "token %d: attr %u -> %u", i, a->attr[i],
                      b->attr[i]);
    }
    ck_assert(a->bos == b->bos && a->eos == b->eos && a->eot == b->eot && a->unk == b->unk &&
              a->pad == b->pad);
    ck_assert(a->add_bos == b->add_bos && a->add_eos == b->add_eos &&
              a->add_space_prefix == b->add_space_prefix);
    ck_assert_int_eq(a->n_eog, b->n_eog);
    ck_assert_int_eq(a->n_merges, b->n_merges);
    ck_assert(a->pre == b->pre && a->clean_spaces == b->clean_spaces &&
              a->ignore_merges == b->ignore_merges);
}

/* Per type: bars on rms(diff)/rms(logits) and top-1 agreement over the 48
 * positions.  Worst figures measured on the seven synthetic models (their
 * matrices are 32..128 wide, so q4_k falls back to q5_0 as in llama-quantize,
 * q6_k to q8_0): f16 0.0017 / 1.000, q8_0 and q6_k 0.046 / 0.917, q4_k 0.27 /
 * 0.56; the bars leave about 2x (a wrong Q/K order or scale gives ~1).  The F32 source keeps
 * everything exact, so these are the formats' own errors; llama.cpp shows the same spread on the
 * same files (tools/golden/check_convert.py). */
static const struct {
    const char *type;
    double max_rel_rms, min_top1;
} SYNTH_TYPES[] = {
    {"keep", 0, 1},       {"f16", 0.004, 0.97}, {"q8_0", 0.09, 0.80},
    {"q6_k", 0.09, 0.80}, {"q4_k", 0.55, 0.40},
};

static const char *const SYNTH[] = {"llama3", "mistral", "qwen2", "phi3",
                                    "gemma",  "gemma2",  "gemma3"};

START_TEST(test_convert_synthetic) {
    const char *name = SYNTH[_i];
    char src_path[128];
    snprintf(src_path, sizeof src_path, "tests/data/synth_%s.gguf", name);
    slim_model *src = load(src_path);
    int nv;
    float *ref = run_logits(src, &nv);
    for (size_t k = 0; k < sizeof SYNTH_TYPES / sizeof SYNTH_TYPES[0]; k++) {
        const char *out_path = tmp_path("out.gguf");
        slim_status st = slim_model_save_gguf(src, out_path, SYNTH_TYPES[k].type, NULL, NULL);
        ck_assert_msg(st == SLIM_OK, "%s %s: %s", name, SYNTH_TYPES[k].type, slim_last_error());
        slim_model *out = load(out_path);
        expect_same_vocab(src->vocab, out->vocab);
        ck_assert_str_eq(out->arch->name, src->arch->name);
        ck_assert(!memcmp(&out->hp, &src->hp, sizeof out->hp)); /* every hyperparameter */
        int nv2;
        float *lg = run_logits(out, &nv2);
        ck_assert_int_eq(nv2, nv);
        agreement a = compare_logits(ref, lg, nv);
        if (!strcmp(SYNTH_TYPES[k].type, "keep")) {
            expect_same_tensors(src, out);
            ck_assert_msg(!memcmp(ref, lg, (size_t)N_TOK * nv * sizeof *lg),
                          "%s keep: logits not bitwise equal", name);
        }
        ck_assert_msg(a.rel_rms <= SYNTH_TYPES[k].max_rel_rms && a.top1 >= SYNTH_TYPES[k].min_top1,
                      "%s %s: rms ratio %.4f (bar %.4f), top-1 %.3f (bar %.3f)", name,
                      SYNTH_TYPES[k].type, a.rel_rms, SYNTH_TYPES[k].max_rel_rms, a.top1,
                      SYNTH_TYPES[k].min_top1);
        if (getenv("SLIM_CONVERT_VERBOSE"))
            fprintf(stderr, "%-8s %-5s rms ratio %.4f top-1 %.3f\n", name, SYNTH_TYPES[k].type,
                    a.rel_rms, a.top1);
        free(lg);
        slim_model_free(out);
    }
    free(ref);
    slim_model_free(src);
}
END_TEST

/* A model with Hugging Face Q/K rows (NeoX pairs) in arch llama: built in
 * memory from synth_llama3 by applying convert_hf_to_gguf.py's permute in
 * reverse; converting it must give back the original file's q and k bytes. */
START_TEST(test_convert_hf_qk_layout) {
    slim_model *m = load("tests/data/synth_llama3.gguf");
    slim_model *orig = load("tests/data/synth_llama3.gguf");
    const int32_t hd = m->hp.head_dim, half = m->hp.n_rot / 2;
    ck_assert_int_eq(m->hp.n_rot, hd);
    void *bufs[2 * 8];
    int nb = 0;
    for (int il = 0; il < m->hp.n_layer; il++) {
        slim_tensor *ts[2] = {&m->layers[il].wq, &m->layers[il].wk};
        for (int j = 0; j < 2; j++) {
            slim_tensor *t = ts[j];
            const size_t rb = t->nb[1];
            char *hf = malloc(rb * (size_t)t->ne[1]);
            ck_assert_ptr_nonnull(hf);
            for (int64_t r = 0; r < t->ne[1];
                 r++) { /* gguf row h*hd + 2i + s -> hf h*hd + s*half + i */
                int64_t h = r / hd, jj = r % hd;
                int64_t hr = h * hd + (jj % 2) * half + jj / 2;
                memcpy(hf + hr * rb, slim_tensor_row(t, r), rb);
            }
            t->data = hf;
            bufs[nb++] = hf;
        }
    }
    m->hp.rope_neox = true; /* slim runs it as NeoX: same logits as the original */
    int nv;
    float *a = run_logits(orig, &nv), *b = run_logits(m, &nv);
    agreement ag = compare_logits(a, b, nv);
    ck_assert_msg(ag.rel_rms < 1e-5 && ag.top1 == 1.0, "NeoX twin differs: %g", ag.rel_rms);
    const char *path = tmp_path("hf.gguf");
    OK(slim_model_save_gguf(m, path, "keep", NULL, NULL));
    slim_model *out = load(path);
    ck_assert(!out->hp.rope_neox);
    expect_same_tensors(orig, out);
    slim_model_free(out);
    free(a);
    free(b);
    for (int i = 0; i < nb; i++)
        free(bufs[i]);
    slim_model_free(m);
    slim_model_free(orig);
}
END_TEST

/* An attention scale llama.cpp would not derive (Gemma's query_pre_attn_scalar
 * in a Hugging Face config) is folded into the weights: q_norm for Gemma 3,
 * the q rows for Gemma 2.  The converted file, run at llama.cpp's scale,
 * gives the logits of the model run at the odd scale. */
START_TEST(test_convert_folds_attn_scale) {
    const char *names[] = {"tests/data/synth_gemma3.gguf", "tests/data/synth_gemma2.gguf"};
    for (int k = 0; k < 2; k++) {
        slim_model *m = load(names[k]);
        m->hp.attn_scale *= 1.37f;
        int nv;
        float *a = run_logits(m, &nv);
        const char *path = tmp_path("scaled.gguf");
        OK(slim_model_save_gguf(m, path, NULL, NULL, NULL));
        slim_model *out = load(path);
        ck_assert(out->hp.attn_scale != m->hp.attn_scale); /* llama.cpp's rule again */
        float *b = run_logits(out, &nv);
        agreement ag = compare_logits(a, b, nv);
        ck_assert_msg(ag.rel_rms < 1e-4 && ag.top1 == 1.0, "%s: rms ratio %g", names[k],
                      ag.rel_rms);
        const slim_gguf_tensor *t = slim_gguf_find_tensor(
            out->gguf, k == 0 ? "blk.0.attn_q_norm.weight" : "blk.0.attn_q.weight");
        const slim_gguf_tensor *s = slim_gguf_find_tensor(
            m->gguf, k == 0 ? "blk.0.attn_q_norm.weight" : "blk.0.attn_q.weight");
        ck_assert(t && s && t->type == SLIM_DTYPE_F32);
        ck_assert_float_eq(((const float *)t->data)[3], ((const float *)s->data)[3] * 1.37f);
        free(a);
        free(b);
        slim_model_free(out);
        slim_model_free(m);
    }
}
END_TEST

/* The two real models (Gemma 3 SentencePiece, SmolLM2 byte-level BPE with a
 * chat template), converted keep. */
START_TEST(test_convert_real_models_keep) {
    const char *src_path = _i == 0 ? test_model_path() : test_model_path_smollm2();
    slim_model *src = load(src_path);
    const char *path = tmp_path("real.gguf");
    OK(slim_model_save_gguf(src, path, "keep", NULL, NULL));
    slim_model *out = load(path);
    expect_same_tensors(src, out);
    expect_same_vocab(src->vocab, out->vocab);
    ck_assert_str_eq(out->file_type, src->file_type);
    ck_assert_str_eq(out->name, src->name);
    ck_assert(!memcmp(&out->hp, &src->hp, sizeof out->hp));
    /* every key of the source is there with its value, but for Gemma's token
     * type of "</s>" (user-defined; both slim and llama.cpp make it control on
     * load, and it is written back as user-defined) */
    for (uint64_t i = 0; i < src->gguf->n_kv; i++) {
        const slim_gguf_kv *a = &src->gguf->kv[i], *b = slim_gguf_find(out->gguf, a->key);
        ck_assert_msg(b != NULL, "key %s missing", a->key);
        char va[256], vb[256];
        slim_gguf_format_value(a, va, sizeof va);
        slim_gguf_format_value(b, vb, sizeof vb);
        ck_assert_msg(!strcmp(va, vb) && a->type == b->type, "key %s: %s -> %s", a->key, va, vb);
        if (a->type == SLIM_GGUF_ARRAY && a->arr_type != SLIM_GGUF_STRING) {
            const size_t es = a->arr_type == SLIM_GGUF_FLOAT32 || a->arr_type == SLIM_GGUF_INT32 ||
                                      a->arr_type == SLIM_GGUF_UINT32
                                  ? 4
                                  : 1;
            ck_assert(a->arr_n == b->arr_n && b->arr_type == a->arr_type);
            ck_assert_msg(!memcmp(a->arr_data, b->arr_data, (size_t)a->arr_n * es),
                          "key %s: array differs", a->key);
        }
    }
    const char *text = "The three primary colors are <start_of_turn>user\nhi \xf0\x9f\x98\x80 "
                       "<|im_start|>assistant don't 1234567";
    slim_token ta[96], tb[96];
    size_t na, nb;
    for (uint32_t flags = 0; flags < 4; flags++) {
        OK(slim_tokenize(src, text, strlen(text), flags, ta, 96, &na));
        OK(slim_tokenize(out, text, strlen(text), flags, tb, 96, &nb));
        ck_assert(na == nb && !memcmp(ta, tb, na * sizeof *ta));
    }
    const char *t1 = NULL, *t2 = NULL;
    slim_status s1 = slim_chat_template_name(src, NULL, &t1);
    slim_status s2 = slim_chat_template_name(out, NULL, &t2);
    ck_assert_int_eq(s1, s2);
    if (_i == 1) ck_assert(s2 == SLIM_OK && !strcmp(t2, "chatml"));
    slim_model_free(out);
    slim_model_free(src);
}
END_TEST

typedef struct progress_log {
    float last;
    int calls, ok;
} progress_log;

static void on_progress(float f, void *user) {
    progress_log *p = user;
    if (!(f >= p->last && f <= 1.0f)) p->ok = 0;
    p->last = f;
    p->calls++;
}

START_TEST(test_convert_progress_and_errors) {
    slim_model *m = load("tests/data/synth_qwen2.gguf");
    progress_log p = {0, 0, 1};
    OK(slim_model_save_gguf(m, tmp_path("p.gguf"), "q8_0", on_progress, &p));
    ck_assert(p.ok && p.calls >= 2 && p.last == 1.0f);
    EXPECT_ERR(slim_model_save_gguf(m, tmp_path("x.gguf"), "q3_k", NULL, NULL),
               SLIM_ERR_INVALID_ARG, "unknown type 'q3_k'");
    EXPECT_ERR(slim_model_save_gguf(m, tmp_path("x.gguf"), "Q8_0", NULL, NULL),
               SLIM_ERR_INVALID_ARG, "unknown type 'Q8_0'");
    EXPECT_ERR(slim_model_save_gguf(NULL, tmp_path("x.gguf"), NULL, NULL, NULL),
               SLIM_ERR_INVALID_ARG, "model is NULL");
    EXPECT_ERR(slim_model_save_gguf(m, NULL, NULL, NULL, NULL), SLIM_ERR_INVALID_ARG,
               "path is NULL");
    EXPECT_ERR(slim_model_save_gguf(m, "/nonexistent-dir/out.gguf", "f16", NULL, NULL), SLIM_ERR_IO,
               "/nonexistent-dir/out.gguf");
    EXPECT_ERR(slim_model_write_gguf(m, tmp_path("x.gguf"), SLIM_DTYPE_Q8_K, NULL, NULL),
               SLIM_ERR_INVALID_ARG, "cannot write type Q8_K");
    ck_assert_int_eq(access(tmp_path("x.gguf"), F_OK), -1);
    /* a non-finite weight is refused with its tensor named, and no file is left */
    const float *w = m->layers[1].wo.data;
    slim_tensor wo = m->layers[1].wo;
    float *copy = malloc(wo.nb[1] * (size_t)wo.ne[1]);
    ck_assert_ptr_nonnull(copy);
    memcpy(copy, w, wo.nb[1] * (size_t)wo.ne[1]);
    copy[5] = INFINITY;
    m->layers[1].wo.data = copy;
    EXPECT_ERR(slim_model_save_gguf(m, tmp_path("x.gguf"), "q4_0", NULL, NULL), SLIM_ERR_FORMAT,
               "'blk.1.attn_output.weight' row 0 has non-finite values");
    ck_assert_int_eq(access(tmp_path("x.gguf"), F_OK), -1);
    ck_assert_int_eq(access(tmp_path("x.gguf.part"), F_OK), -1);
    OK(slim_model_save_gguf(m, tmp_path("x.gguf"), "keep", NULL, NULL)); /* copied as is */
    free(copy);
    /* slim_convert_rows (quantize at load) */
    m->layers[1].wo = wo;
    float scratch[128];
    uint8_t rows[2 * 34 * 4];
    OK(slim_convert_rows(&wo, 1, 2, SLIM_DTYPE_Q8_0, rows, scratch));
    uint8_t one[34 * 4];
    slim_quantizer(SLIM_DTYPE_Q8_0)((const float *)slim_tensor_row(&wo, 2), one, wo.ne[0]);
    ck_assert(!memcmp(rows + slim_dtype_row_size(SLIM_DTYPE_Q8_0, wo.ne[0]), one,
                      slim_dtype_row_size(SLIM_DTYPE_Q8_0, wo.ne[0])));
    EXPECT_ERR(slim_convert_rows(&wo, 0, wo.ne[1] + 1, SLIM_DTYPE_Q8_0, rows, scratch),
               SLIM_ERR_INVALID_ARG, "bad arguments");
    EXPECT_ERR(slim_convert_rows(&wo, 0, 1, SLIM_DTYPE_Q4_K, rows, scratch), SLIM_ERR_INVALID_ARG,
               "cannot write Q4_K rows");
    slim_model_free(m);
}
END_TEST

/* `slim convert` end to end (SLIM_CLI, default build/slim). */
static int run_convert_cli(const char *const *args) {
    const char *cli = getenv("SLIM_CLI");
    if (!cli || !*cli) cli = "build/slim";
    ck_assert_msg(access(cli, X_OK) == 0, "CLI binary %s not found (set SLIM_CLI)", cli);
    const char *argv[16] = {cli, "convert"};
    int n = 2;
    for (; args[n - 2]; n++)
        argv[n] = args[n - 2];
    argv[n] = NULL;
    fflush(NULL);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        if (!freopen("/dev/null", "w", stderr) || !freopen("/dev/null", "w", stdout)) _exit(126);
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    int ws = 0;
    ck_assert_int_eq(waitpid(pid, &ws, 0), pid);
    return WIFEXITED(ws) ? WEXITSTATUS(ws) : 128;
}

START_TEST(test_convert_cli) {
    const char *out = tmp_path("cli.gguf");
    ck_assert_int_eq(run_convert_cli((const char *[]){"tests/data/synth_phi3.gguf", out, "--type",
                                                      "q5_k", NULL}),
                     0);
    slim_model *m = load(out);
    ck_assert_str_eq(m->file_type, "Q5_K_S");
    const slim_gguf_tensor *t = slim_gguf_find_tensor(m->gguf, "blk.0.attn_qkv.weight");
    ck_assert(t && t->type == SLIM_DTYPE_Q5_1); /* 64 columns: Q5_K falls back */
    slim_model_free(m);
    ck_assert_int_eq(
        run_convert_cli((const char *[]){"tests/data/synth_phi3.gguf", out, "--type", "q9", NULL}),
        1);
    ck_assert_int_eq(run_convert_cli((const char *[]){"tests/data/synth_phi3.gguf", NULL}), 2);
    ck_assert_int_eq(run_convert_cli((const char *[]){"--bogus", NULL}), 2);
    ck_assert_int_eq(run_convert_cli((const char *[]){"--help", NULL}), 0);
}
END_TEST

Suite *suite_convert(void) {
    Suite *s = suite_create("convert");
    TCase *tc = tcase_create("quantizers");
    tcase_add_test(tc, test_quantizers_match_llama_cpp);
    tcase_add_test(tc, test_quantizer_table_and_fallback);
    suite_add_tcase(s, tc);
    tc = tcase_create("writer");
    tcase_add_checked_fixture(tc, tmp_setup, tmp_teardown);
    tcase_add_test(tc, test_writer_bytes_equal_gguf_py);
    tcase_add_test(tc, test_writer_errors);
    suite_add_tcase(s, tc);
    tc = tcase_create("convert");
    tcase_add_checked_fixture(tc, tmp_setup, tmp_teardown);
    tcase_set_timeout(tc, 300);
    tcase_add_loop_test(tc, test_convert_synthetic, 0, (int)(sizeof SYNTH / sizeof SYNTH[0]));
    tcase_add_test(tc, test_convert_hf_qk_layout);
    tcase_add_test(tc, test_convert_folds_attn_scale);
    tcase_add_loop_test(tc, test_convert_real_models_keep, 0, 2);
    tcase_add_test(tc, test_convert_progress_and_errors);
    tcase_add_test(tc, test_convert_cli);
    suite_add_tcase(s, tc);
    return s;
}
