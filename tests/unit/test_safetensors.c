/* The safetensors reader: tests/data/tiny.safetensors and tests/data/st_sharded/
 * (tools/golden/gen_safetensors_fixture.py, written with the `safetensors`
 * package) read back byte for byte; model directories and index files; hand-built
 * files for every rule with its exact message; and a malformed corpus generated
 * from the fixture (every truncation, every header length, corrupted header
 * bytes, rewritten offsets/shapes/dtypes), each failing cleanly. */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "format/safetensors.h"
#include "suites.h"

#define TINY "tests/data/tiny.safetensors"
#define SHARDED "tests/data/st_sharded"
#define TINY_HEADER 816 /* N: a multiple of 8, as the writer pads it */
#define TINY_DATA 156   /* bytes of tensor data */

static void write_file(const char *path, const void *data, size_t n) {
    FILE *f = fopen(path, "wb");
    ck_assert_msg(f != NULL, "cannot write %s", path);
    ck_assert_uint_eq(fwrite(data, 1, n, f), n);
    fclose(f);
}

static void write_text(const char *path, const char *text) { write_file(path, text, strlen(text)); }

static float half_to_f32(uint16_t h) { /* normal numbers and zero */
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, exp = (h >> 10) & 0x1f, man = h & 0x3ff;
    uint32_t bits = exp == 0 && man == 0 ? sign : sign | (exp + 112) << 23 | man << 13;
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

static float bf16_to_f32(uint16_t h) {
    uint32_t bits = (uint32_t)h << 16;
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

/* ---- tiny.safetensors read back ------------------------------------------------------------ */

typedef struct want_tensor {
    const char *name;
    slim_st_dtype dtype;
    int n_dims;
    int64_t shape[2];
    uint64_t begin, end;
} want_tensor;

/* In file order (the writer puts larger dtypes first, then sorts by name). */
static const want_tensor tiny_tensors[] = {
    {"i64.1d", SLIM_ST_I64, 1, {3, 1}, 0, 24},
    {"f64.1d", SLIM_ST_F64, 1, {2, 1}, 24, 40},
    {"empty", SLIM_ST_F32, 2, {0, 4}, 40, 40},
    {"f32.2d", SLIM_ST_F32, 2, {3, 5}, 40, 100},
    {"\xc3\xbcn\xc3\xaf"
     "code.name",
     SLIM_ST_F32,
     1,
     {1, 1},
     100,
     104},
    {"i32.scalar", SLIM_ST_I32, 0, {1, 1}, 104, 108},
    {"bf16.2d", SLIM_ST_BF16, 2, {2, 4}, 108, 124},
    {"f16.1d", SLIM_ST_F16, 1, {8, 1}, 124, 140},
    {"f8.1d", SLIM_ST_F8_E4M3, 1, {4, 1}, 140, 144},
    {"i8.2d", SLIM_ST_I8, 2, {2, 2}, 144, 148},
    {"u8.1d", SLIM_ST_U8, 1, {5, 1}, 148, 153},
    {"bool.1d", SLIM_ST_BOOL, 1, {3, 1}, 153, 156},
};
enum { N_TINY = sizeof tiny_tensors / sizeof tiny_tensors[0] };

static const void *data_of(const slim_st_file *f, const char *name) {
    const slim_st_tensor *t = slim_st_find(f, name);
    ck_assert_msg(t != NULL, "tensor %s missing", name);
    return t->data;
}

static void check_tiny(const slim_st_file *f) {
    ck_assert_uint_eq(f->header_len, TINY_HEADER);
    ck_assert_uint_eq(f->data_offset, 8 + TINY_HEADER);
    ck_assert_uint_eq(f->data_size, TINY_DATA);
    ck_assert_uint_eq(f->map.size, 8 + TINY_HEADER + TINY_DATA);
    ck_assert_uint_eq(f->n_tensors, N_TINY);
    for (int i = 0; i < N_TINY; i++) {
        const want_tensor *w = &tiny_tensors[i];
        const slim_st_tensor *t = &f->tensors[i];
        ck_assert_str_eq(t->name, w->name);
        ck_assert_uint_eq(t->name_len, strlen(w->name));
        ck_assert_ptr_eq(slim_st_find(f, w->name), t);
        ck_assert_int_eq(t->dtype, w->dtype);
        ck_assert_int_eq(t->n_dims, w->n_dims);
        int64_t numel = 1;
        for (int d = 0; d < SLIM_ST_MAX_DIMS; d++) {
            int64_t want = d < 2 && d < w->n_dims ? w->shape[d] : 1;
            ck_assert_int_eq(t->shape[d], want);
            if (d < w->n_dims) numel *= want;
        }
        ck_assert_int_eq(t->numel, numel);
        ck_assert_uint_eq(t->begin, w->begin);
        ck_assert_uint_eq(t->end, w->end);
        ck_assert_uint_eq(t->size, w->end - w->begin);
        ck_assert_uint_eq(t->size, (uint64_t)numel * (uint64_t)slim_st_dtype_bits(t->dtype) / 8);
        ck_assert_uint_eq(t->offset, 8 + TINY_HEADER + w->begin);
        ck_assert_ptr_eq(t->data, (const uint8_t *)f->map.data + t->offset);
        ck_assert_uint_eq(t->file_index, 0);
        /* The official writer's layout: every tensor aligned to its element size. */
        ck_assert_msg(slim_st_tensor_aligned(t), "%s: align %u", t->name, t->align);
        ck_assert_uint_eq((uintptr_t)t->data % t->align, 0);
    }
    ck_assert_ptr_null(slim_st_find(f, "missing"));
    ck_assert_ptr_null(slim_st_find(f, "f32"));
    ck_assert_ptr_null(slim_st_find(f, "__metadata__"));
    ck_assert_ptr_null(slim_st_find(f, NULL));
    ck_assert_str_eq(slim_st_meta(f, "note"), "\xc3\xbcn\xc3\xaf"
                                              "code \xe2\x9c\x93 \"quoted\"");
    ck_assert_ptr_null(slim_st_meta(f, "format"));
    ck_assert_uint_eq(slim_json_len(f->metadata), 1);

    int64_t i64[3];
    memcpy(i64, data_of(f, "i64.1d"), sizeof i64);
    ck_assert(i64[0] == -(INT64_C(1) << 62) && i64[1] == -1 && i64[2] == (INT64_C(1) << 40) + 7);
    double f64[2];
    memcpy(f64, data_of(f, "f64.1d"), sizeof f64);
    ck_assert(f64[0] == 2.718281828459045 && f64[1] == 0.0 && signbit(f64[1]));
    float f32[15];
    memcpy(f32, data_of(f, "f32.2d"), sizeof f32);
    for (int r = 0; r < 3; r++)
        for (int c = 0; c < 5; c++)
            ck_assert(f32[r * 5 + c] == (float)(r * 10 + c) + 0.25f);
    memcpy(f32,
           data_of(f, "\xc3\xbcn\xc3\xaf"
                      "code.name"),
           4);
    ck_assert(f32[0] == 42.0f);
    int32_t i32;
    memcpy(&i32, data_of(f, "i32.scalar"), 4);
    ck_assert_int_eq(i32, 123456789);
    uint16_t h[8];
    memcpy(h, data_of(f, "bf16.2d"), sizeof h);
    for (int k = 0; k < 8; k++)
        ck_assert(bf16_to_f32(h[k]) == (float)k * 0.5f - 1.0f);
    memcpy(h, data_of(f, "f16.1d"), sizeof h);
    for (int k = 0; k < 8; k++)
        ck_assert(half_to_f32(h[k]) == (float)k / 8.0f - 2.0f);
    ck_assert_mem_eq(data_of(f, "f8.1d"), "\x38\x40\xb8\x7e", 4);
    ck_assert_mem_eq(data_of(f, "i8.2d"), "\x80\x7f\x00\xff", 4);
    ck_assert_mem_eq(data_of(f, "u8.1d"), "\x00\x01\x7f\x80\xff", 5);
    ck_assert_mem_eq(data_of(f, "bool.1d"), "\x01\x00\x01", 3);
}

START_TEST(test_tiny) {
    for (int mode = 0; mode < 3; mode++) {
        slim_st_file *f = NULL;
        uint8_t *buf = NULL;
        size_t size = 0;
        slim_status s;
        if (mode < 2) {
            s = slim_st_open(TINY, mode == 0, &f);
        } else {
            buf = test_read_whole(TINY, &size);
            s = slim_st_open_memory(buf, size, &f);
        }
        ck_assert_msg(s == SLIM_OK, "mode %d: %s", mode, slim_last_error());
        if (mode < 2) {
            ck_assert(f->map.mapped == (mode == 0));
            ck_assert_str_eq(f->path, TINY);
        } else {
            ck_assert_str_eq(f->path, "<memory>");
        }
        check_tiny(f);
        slim_st_close(f);
        free(buf);
    }
    slim_st_close(NULL);
}
END_TEST

START_TEST(test_dtypes) {
    static const struct {
        const char *name;
        slim_st_dtype t;
        int bits;
    } all[] = {
        {"BOOL", SLIM_ST_BOOL, 8},
        {"U8", SLIM_ST_U8, 8},
        {"I8", SLIM_ST_I8, 8},
        {"U16", SLIM_ST_U16, 16},
        {"I16", SLIM_ST_I16, 16},
        {"U32", SLIM_ST_U32, 32},
        {"I32", SLIM_ST_I32, 32},
        {"U64", SLIM_ST_U64, 64},
        {"I64", SLIM_ST_I64, 64},
        {"F16", SLIM_ST_F16, 16},
        {"BF16", SLIM_ST_BF16, 16},
        {"F32", SLIM_ST_F32, 32},
        {"F64", SLIM_ST_F64, 64},
        {"C64", SLIM_ST_C64, 64},
        {"F8_E4M3", SLIM_ST_F8_E4M3, 8},
        {"F8_E5M2", SLIM_ST_F8_E5M2, 8},
        {"F8_E4M3FNUZ", SLIM_ST_F8_E4M3FNUZ, 8},
        {"F8_E5M2FNUZ", SLIM_ST_F8_E5M2FNUZ, 8},
        {"F8_E8M0", SLIM_ST_F8_E8M0, 8},
        {"F4", SLIM_ST_F4, 4},
        {"F6_E2M3", SLIM_ST_F6_E2M3, 6},
        {"F6_E3M2", SLIM_ST_F6_E3M2, 6},
    };
    ck_assert_int_eq(sizeof all / sizeof all[0], SLIM_ST_DTYPE_COUNT);
    for (size_t k = 0; k < sizeof all / sizeof all[0]; k++) {
        ck_assert_str_eq(slim_st_dtype_name(all[k].t), all[k].name);
        ck_assert_int_eq(slim_st_dtype_bits(all[k].t), all[k].bits);
        ck_assert_int_eq(slim_st_dtype_from_name(all[k].name, strlen(all[k].name)), all[k].t);
    }
    ck_assert_int_eq(slim_st_dtype_from_name("f32", 3), -1);
    ck_assert_int_eq(slim_st_dtype_from_name("F32x", 4), -1);
    ck_assert_int_eq(slim_st_dtype_from_name("F32", 2), -1);
    ck_assert_int_eq(slim_st_dtype_from_name(NULL, 0), -1);
    ck_assert_str_eq(slim_st_dtype_name((slim_st_dtype)99), "?");
    ck_assert_int_eq(slim_st_dtype_bits((slim_st_dtype)-1), 0);
    slim_dtype d;
    ck_assert(slim_st_dtype_to_slim(SLIM_ST_F32, &d) && d == SLIM_DTYPE_F32);
    ck_assert(slim_st_dtype_to_slim(SLIM_ST_F16, &d) && d == SLIM_DTYPE_F16);
    ck_assert(slim_st_dtype_to_slim(SLIM_ST_BF16, &d) && d == SLIM_DTYPE_BF16);
    ck_assert(!slim_st_dtype_to_slim(SLIM_ST_F64, &d));
    ck_assert(!slim_st_dtype_to_slim(SLIM_ST_I32, &d));
    ck_assert(!slim_st_tensor_aligned(NULL));
}
END_TEST

/* ---- hand-built files ---------------------------------------------------------------------- */

/* le64(strlen(header)) + header + data, in an exact-size allocation. */
static uint8_t *build(const char *header, const void *data, size_t data_len, size_t *size) {
    size_t n = strlen(header);
    *size = 8 + n + data_len;
    uint8_t *buf = malloc(*size);
    ck_assert_ptr_nonnull(buf);
    for (int i = 0; i < 8; i++)
        buf[i] = (uint8_t)((uint64_t)n >> (8 * i));
    memcpy(buf + 8, header, n);
    if (data_len) memcpy(buf + 8 + n, data, data_len);
    return buf;
}

static int n_cases, n_by_status[16];

/* Open buf[0..n) from an exact-size copy and expect `want`; with `msg`, the exact
 * message ('~' first: a substring).  Errors are counted. */
static void expect(const uint8_t *buf, size_t n, slim_status want, const char *msg,
                   const char *what) {
    uint8_t *copy = malloc(n ? n : 1);
    ck_assert_ptr_nonnull(copy);
    if (n) memcpy(copy, buf, n);
    slim_st_file *f = (slim_st_file *)&f;
    slim_error_clear();
    slim_status s = slim_st_open_memory(copy, n, &f);
    ck_assert_msg(s == want, "%s: status %d (%s), want %d", what, s, slim_last_error(), want);
    if (s == SLIM_OK) {
        static volatile uint8_t sink;
        for (size_t i = 0; i < f->n_tensors; i++) /* touch every byte: ASan checks bounds */
            for (uint64_t k = 0; k < f->tensors[i].size; k++)
                sink ^= ((const uint8_t *)f->tensors[i].data)[k];
        slim_st_close(f);
    } else {
        ck_assert_msg(f == NULL, "%s: *out not NULL on error", what);
        const char *e = slim_last_error();
        ck_assert_msg(strncmp(e, "safetensors: ", 13) == 0, "%s: %s", what, e);
        if (msg && msg[0] == '~')
            ck_assert_msg(strstr(e, msg + 1) != NULL, "%s: got <%s>, want ~<%s>", what, e, msg + 1);
        else if (msg)
            ck_assert_msg(strcmp(e, msg) == 0, "%s: got <%s>, want <%s>", what, e, msg);
        n_cases++;
        n_by_status[s & 15]++;
    }
    free(copy);
}

static void expect_built(const char *header, size_t data_len, slim_status want, const char *msg) {
    static const uint8_t zeros[64];
    ck_assert_uint_le(data_len, sizeof zeros);
    size_t size;
    uint8_t *buf = build(header, zeros, data_len, &size);
    expect(buf, size, want, msg, header);
    free(buf);
}

#define T1(name, dtype, shape, b, e)                                                               \
    "\"" name "\":{\"dtype\":\"" dtype "\",\"shape\":" shape ",\"data_offsets\":[" #b "," #e "]}"

START_TEST(test_built_files) {
    const slim_status F = SLIM_ERR_FORMAT, U = SLIM_ERR_UNSUPPORTED;
    /* The header itself. */
    expect((const uint8_t *)"\x02\0\0\0\0", 5, F,
           "safetensors: file too small for a header (5 bytes, need at least 8)", "5 bytes");
    expect(NULL, 0, F, "safetensors: file too small for a header (0 bytes, need at least 8)",
           "empty");
    uint8_t hdr[18] = {0x01, 0xe1, 0xf5, 0x05, 0, 0, 0, 0, '{', '}'}; /* 100000001 */
    expect(hdr, sizeof hdr, F,
           "safetensors: header length 100000001 exceeds the limit of 100000000 bytes", "limit");
    memcpy(hdr, "\x64\0\0\0\0\0\0\0", 8); /* 100 */
    expect(hdr, sizeof hdr, F,
           "safetensors: header length 100 exceeds the 10 bytes after the length field (file "
           "size 18)",
           "past the end");
    memcpy(hdr, "\0\0\0\0\0\0\0\0", 8);
    expect(hdr, sizeof hdr, F, "safetensors: header length 0 is too small for a JSON object",
           "zero");
    memcpy(hdr, "\x01\0\0\0\0\0\0\0", 8);
    expect(hdr, 9, F, "safetensors: header length 1 is too small for a JSON object", "one");
    expect_built("[]", 0, F,
                 "safetensors: the header does not start with '{' (byte 0x5b at offset 8)");
    expect_built(" {}", 0, F, "~does not start with '{' (byte 0x20");
    expect_built("{\"a\":", 0, F, "safetensors: header:1:6: expected a value, got end of input");
    expect_built("{}x", 0, F, "~header:1:3: expected end of input after the JSON value, got 'x'");
    expect_built("{\"\xff\":1}", 0, F, "~header:1:3: invalid UTF-8 (byte 0xff)");
    expect_built("{" T1("a", "F32", "[1]", 0, 4) "," T1("a", "F32", "[1]", 4, 8) "}", 8, F,
                 "~duplicate key \"a\"");
    expect_built("{}", 0, SLIM_OK, NULL);
    expect_built("{}      ", 0, SLIM_OK, NULL); /* space padding */
    expect_built("{}", 1, F,
                 "safetensors: the tensors cover 0 bytes of the 1-byte data section (file size "
                 "11): 1 bytes after the last tensor are unused");

    /* One tensor's info. */
    expect_built("{\"a\":[1]}", 0, F, "safetensors: tensor 'a': expected an object, got array");
    expect_built("{\"a\":{\"shape\":[1],\"data_offsets\":[0,4]}}", 4, F,
                 "safetensors: tensor 'a': missing \"dtype\"");
    expect_built("{\"a\":{\"dtype\":7,\"shape\":[1],\"data_offsets\":[0,4]}}", 4, F,
                 "safetensors: tensor 'a': \"dtype\" is number, expected a string");
    expect_built("{" T1("a", "F128", "[1]", 0, 4) "}", 4, U,
                 "safetensors: tensor 'a': unknown dtype 'F128'");
    expect_built("{" T1("a", "f32", "[1]", 0, 4) "}", 4, U, "~unknown dtype 'f32'");
    expect_built("{" T1("a", "", "[1]", 0, 4) "}", 4, U, "~unknown dtype ''");
    expect_built("{\"a\":{\"dtype\":\"F32\",\"data_offsets\":[0,4]}}", 4, F,
                 "safetensors: tensor 'a': missing \"shape\"");
    expect_built("{" T1("a", "F32", "{}", 0, 4) "}", 4, F,
                 "safetensors: tensor 'a': \"shape\" is object, expected an array");
    expect_built("{" T1("a", "F32", "[-1]", 0, 4) "}", 4, F,
                 "safetensors: tensor 'a': shape[0] = -1 is not a non-negative integer");
    expect_built("{" T1("a", "F32", "[1,1.5]", 0, 4) "}", 4, F,
                 "safetensors: tensor 'a': shape[1] = 1.5 is not a non-negative integer");
    expect_built("{" T1("a", "F32", "[\"1\"]", 0, 4) "}", 4, F,
                 "safetensors: tensor 'a': shape[0] is string, expected a non-negative integer");
    expect_built("{" T1("a", "F32", "[1e30]", 0, 4) "}", 4, F,
                 "safetensors: tensor 'a': shape[0] = 1e+30 is not a non-negative "
                 "integer");
    expect_built("{" T1("a", "F32", "[1,1,1,1,1,1,1,1,1]", 0, 4) "}", 4, U,
                 "safetensors: tensor 'a': 9 dimensions (slim supports up to 8)");
    expect_built("{" T1("a", "F32", "[1,1,1,1,1,1,1,1]", 0, 4) "}", 4, SLIM_OK, NULL);
    expect_built("{" T1("a", "F32", "[4294967296,4294967296]", 0, 4) "}", 4, F,
                 "safetensors: tensor 'a': the element count of shape [4294967296, 4294967296] "
                 "overflows int64");
    expect_built("{" T1("a", "F32", "[4294967296,4294967296,0]", 0, 0) "}", 0, F,
                 "~overflows int64"); /* as the reference: overflow before the 0 */
    expect_built("{" T1("a", "F64", "[4611686018427387904]", 0, 4) "}", 4, F,
                 "safetensors: tensor 'a': the byte size of shape [4611686018427387904] of F64 "
                 "overflows");
    expect_built("{" T1("a", "F4", "[3]", 0, 2) "}", 2, F,
                 "safetensors: tensor 'a': shape [3] of F4 (4-bit elements) is not a whole number "
                 "of bytes");
    expect_built("{" T1("a", "F4", "[2,3]", 0, 3) "}", 3, SLIM_OK, NULL);
    expect_built("{" T1("a", "F6_E2M3", "[4]", 0, 3) "}", 3, SLIM_OK, NULL);
    expect_built("{" T1("a", "F6_E3M2", "[2]", 0, 2) "}", 2, F, "~(6-bit elements) is not a whole");
    expect_built("{\"a\":{\"dtype\":\"F32\",\"shape\":[1]}}", 4, F,
                 "safetensors: tensor 'a': missing \"data_offsets\"");
    expect_built("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":{}}}", 4, F,
                 "safetensors: tensor 'a': \"data_offsets\" is object, expected an array of 2 "
                 "integers [begin, end]");
    expect_built("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0]}}", 4, F,
                 "safetensors: tensor 'a': \"data_offsets\" has 1 entries, expected 2 integers "
                 "[begin, end]");
    expect_built("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4,8]}}", 8, F,
                 "~has 3 entries");
    expect_built("{" T1("a", "F32", "[1]", -1, 3) "}", 4, F,
                 "safetensors: tensor 'a': data_offsets[0] = -1 is not a non-negative integer");
    expect_built("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,\"4\"]}}", 4, F,
                 "safetensors: tensor 'a': data_offsets[1] is string, expected a non-negative "
                 "integer");
    expect_built("{" T1("a", "F32", "[1]", 8, 4) "}", 8, F,
                 "safetensors: tensor 'a': data_offsets [8, 4]: begin is after end");
    expect_built("{" T1("a", "F32", "[2]", 0, 8) "}", 4, F,
                 "safetensors: tensor 'a': data_offsets [0, 8] past the end of the data section "
                 "(4 bytes)");
    expect_built("{" T1("a", "F32", "[1]", 0, 18446744073709551615) "}", 4, F,
                 "~data_offsets[1] = 1.8446744073709552e+19 is not a non-negative integer");
    expect_built("{" T1("a", "F32", "[2]", 0, 4) "}", 4, F,
                 "safetensors: tensor 'a': data_offsets [0, 4] hold 4 bytes, but shape [2] of F32 "
                 "needs 8");
    expect_built("{" T1("a", "BF16", "[3]", 0, 4) "}", 4, F, "~shape [3] of BF16 needs 6");
    expect_built("{" T1("a", "F32", "[]", 0, 0) "}", 0, F, "~shape [] of F32 needs 4");
    expect_built("{\"a\\u0000b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4, U,
                 "safetensors: tensor 'a?b': names containing a NUL character are not supported");
    expect_built("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4],\"x\":[]}}", 4,
                 SLIM_OK, NULL); /* other members are ignored, as the reference does */

    /* The layout of the data section. */
    expect_built("{" T1("a", "F32", "[2]", 0, 8) "," T1("b", "F32", "[2]", 4, 12) "}", 12, F,
                 "safetensors: tensor 'b': data_offsets [4, 12] overlap tensor 'a' [0, 8]");
    expect_built("{" T1("b", "F32", "[2]", 4, 12) "," T1("a", "F32", "[2]", 0, 8) "}", 12, F,
                 "safetensors: tensor 'b': data_offsets [4, 12] overlap tensor 'a' [0, 8]");
    expect_built("{" T1("a", "F32", "[1]", 0, 4) "," T1("b", "F32", "[1]", 0, 4) "}", 4, F,
                 "safetensors: tensor 'b': data_offsets [0, 4] overlap tensor 'a' [0, 4]");
    expect_built("{" T1("a", "F32", "[1]", 4, 8) "}", 8, F,
                 "safetensors: tensor 'a': data_offsets [4, 8] leave bytes [0, 4) of the data "
                 "section before the first tensor unused");
    expect_built("{" T1("a", "F32", "[1]", 0, 4) "," T1("b", "F32", "[1]", 8, 12) "}", 12, F,
                 "safetensors: tensor 'b': data_offsets [8, 12] leave a gap [4, 8) after tensor "
                 "'a'");
    expect_built("{" T1("a", "F32", "[1]", 0, 4) "}", 8, F,
                 "safetensors: the tensors cover 4 bytes of the 8-byte data section (file size "
                 "70): 4 bytes after the last tensor are unused");
    /* Zero-size tensors may share an offset with anything. */
    expect_built("{" T1("z", "F32", "[0]", 0, 0) "," T1("a", "F32", "[1]", 0, 4) "," T1(
                     "y", "U8", "[0,3]", 4, 4) "," T1("x", "U8", "[3,0]", 4, 4) "}",
                 4, SLIM_OK, NULL);
    expect_built("{" T1("z", "F32", "[0]", 0, 0) "}", 0, SLIM_OK, NULL);

    /* __metadata__. */
    expect_built("{\"__metadata__\":null}", 0, SLIM_OK, NULL);
    expect_built("{\"__metadata__\":{}}", 0, SLIM_OK, NULL);
    expect_built("{\"__metadata__\":[]}", 0, F,
                 "safetensors: \"__metadata__\" is array, expected an object of strings");
    expect_built("{\"__metadata__\":{\"a\":\"x\",\"k\":1}}", 0, F,
                 "safetensors: \"__metadata__\" 'k' is number, expected a string");
    expect_built("{\"__metadata__\":{\"a\":\"x\"}," T1("t", "U8", "[1]", 0, 1) "}", 1, SLIM_OK,
                 NULL);

    /* A long name is shortened in messages. */
    char big[400];
    snprintf(big, sizeof big, "{\"%0200d\":[]}", 7);
    expect_built(big, 0, F, "~...': expected an object");
}
END_TEST

START_TEST(test_alignment) {
    /* A header of odd length puts the data at an odd address: reported, readable by memcpy. */
    const char *header = "{" T1("w", "F32", "[3]", 0, 12) "," T1("h", "F16", "[2]", 12, 16) "}";
    size_t hl = strlen(header);
    for (size_t pad = 0; pad < 8; pad++) {
        char padded[256];
        snprintf(padded, sizeof padded, "%s%*s", header, (int)pad, "");
        const float w[3] = {1.5f, -2.0f, 3.25f};
        const uint16_t h[2] = {0x3C00, 0xC000}; /* 1.0, -2.0 */
        uint8_t data[16];
        memcpy(data, w, 12);
        memcpy(data + 12, h, 4);
        size_t size;
        uint8_t *buf = build(padded, data, sizeof data, &size); /* malloc: 16-aligned */
        slim_st_file *f = NULL;
        ck_assert_int_eq(slim_st_open_memory(buf, size, &f), SLIM_OK);
        const slim_st_tensor *tw = slim_st_find(f, "w"), *th = slim_st_find(f, "h");
        size_t at = 8 + hl + pad;
        ck_assert_uint_eq(tw->offset, at);
        uint32_t want = 1;
        while (want < 4096 && ((uintptr_t)buf + at) % (want * 2) == 0)
            want *= 2;
        ck_assert_uint_eq(tw->align, want);
        ck_assert(slim_st_tensor_aligned(tw) == (((uintptr_t)buf + at) % 4 == 0));
        ck_assert(slim_st_tensor_aligned(th) == (((uintptr_t)buf + at + 12) % 2 == 0));
        float got[3];
        memcpy(got, tw->data, sizeof got);
        ck_assert(got[0] == 1.5f && got[1] == -2.0f && got[2] == 3.25f);
        uint16_t gh[2];
        memcpy(gh, th->data, sizeof gh);
        ck_assert(half_to_f32(gh[0]) == 1.0f && half_to_f32(gh[1]) == -2.0f);
        slim_st_close(f);
        free(buf);
    }
}
END_TEST

START_TEST(test_file_errors) {
    slim_st_file *f = (slim_st_file *)&f;
    ck_assert_int_eq(slim_st_open("tests/data/no-such.safetensors", true, &f), SLIM_ERR_IO);
    ck_assert_ptr_null(f);
    ck_assert_ptr_nonnull(strstr(slim_last_error(), "tests/data/no-such.safetensors"));
    ck_assert_int_eq(slim_st_open("tests/data", false, &f), SLIM_ERR_IO);
    ck_assert_int_eq(slim_st_open(NULL, true, &f), SLIM_ERR_INVALID_ARG);
    ck_assert_int_eq(slim_st_open(TINY, true, NULL), SLIM_ERR_INVALID_ARG);
    ck_assert_int_eq(slim_st_open_memory(NULL, 5, &f), SLIM_ERR_INVALID_ARG);
    ck_assert_int_eq(slim_st_open_memory(NULL, 0, &f), SLIM_ERR_FORMAT);
    ck_assert_int_eq(slim_st_open_memory("", 0, NULL), SLIM_ERR_INVALID_ARG);

    /* A truncated file: the message names the path. */
    char path[] = "/tmp/slim_st_XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    close(fd);
    size_t size;
    uint8_t *buf = test_read_whole(TINY, &size);
    for (int m = 0; m < 2; m++) {
        write_file(path, buf, 0);
        ck_assert_int_eq(slim_st_open(path, m, &f), SLIM_ERR_FORMAT);
        char want[256];
        snprintf(want, sizeof want,
                 "%s: safetensors: file too small for a header (0 bytes, need at least 8)", path);
        ck_assert_str_eq(slim_last_error(), want);
        write_file(path, buf, size - 1);
        ck_assert_int_eq(slim_st_open(path, m, &f), SLIM_ERR_FORMAT);
        snprintf(want, sizeof want,
                 "%s: safetensors: tensor 'bool.1d': data_offsets [153, 156] past the end of the "
                 "data section (155 bytes)",
                 path);
        ck_assert_str_eq(slim_last_error(), want);
        write_file(path, buf, 100);
        ck_assert_int_eq(slim_st_open(path, m, &f), SLIM_ERR_FORMAT);
        snprintf(want, sizeof want,
                 "%s: safetensors: header length 816 exceeds the 92 bytes after the length field "
                 "(file size 100)",
                 path);
        ck_assert_str_eq(slim_last_error(), want);
    }
    unlink(path);
    free(buf);
}
END_TEST

/* ---- the malformed corpus ------------------------------------------------------------------ */

/* The fixture with header[at, at + len) replaced by `rep` (a new header length). */
static void expect_rewrite(const uint8_t *tiny, size_t at, size_t len, const char *rep,
                           slim_status want, const char *what) {
    char header[TINY_HEADER + 64];
    size_t rl = strlen(rep);
    ck_assert_uint_le(TINY_HEADER - len + rl, sizeof header - 1);
    memcpy(header, tiny + 8, at);
    memcpy(header + at, rep, rl);
    memcpy(header + at + rl, tiny + 8 + at + len, TINY_HEADER - at - len);
    header[TINY_HEADER - len + rl] = '\0';
    size_t size;
    uint8_t *buf = build(header, tiny + 8 + TINY_HEADER, TINY_DATA, &size);
    expect(buf, size, want, NULL, what);
    free(buf);
}

static void patch(const uint8_t *base, size_t size, size_t off, const void *bytes, size_t len,
                  slim_status want, const char *what) {
    uint8_t *m = malloc(size);
    memcpy(m, base, size);
    memcpy(m + off, bytes, len);
    expect(m, size, want, NULL, what);
    free(m);
}

START_TEST(test_malformed_corpus) {
    size_t size;
    uint8_t *tiny = test_read_whole(TINY, &size);
    char what[160];
    n_cases = 0;
    memset(n_by_status, 0, sizeof n_by_status);
    expect(tiny, size, SLIM_OK, NULL, "the fixture itself");

    /* Every truncation (the data section must be covered exactly). */
    for (size_t n = 0; n < size; n++) {
        snprintf(what, sizeof what, "truncated to %zu bytes", n);
        expect(tiny, n, SLIM_ERR_FORMAT, NULL, what);
    }
    /* One byte too many. */
    uint8_t *longer = malloc(size + 1);
    memcpy(longer, tiny, size);
    longer[size] = 0;
    expect(longer, size + 1, SLIM_ERR_FORMAT, "~1 bytes after the last tensor are unused", "+1");
    free(longer);

    /* Every header length but the right one. */
    const uint64_t lens[] = {0,
                             1,
                             2,
                             7,
                             8,
                             TINY_HEADER - 8,
                             TINY_HEADER - 7, /* cuts into the JSON */
                             TINY_HEADER - 1, /* only padding cut: the data section moves */
                             TINY_HEADER + 1,
                             TINY_HEADER + 8,
                             size - 8,
                             size - 7,
                             size,
                             100000000,
                             100000001,
                             UINT64_C(1) << 32,
                             UINT64_C(1) << 63,
                             UINT64_MAX,
                             UINT64_MAX - 7};
    for (size_t k = 0; k < sizeof lens / sizeof lens[0]; k++) {
        uint8_t le[8];
        for (int i = 0; i < 8; i++)
            le[i] = (uint8_t)(lens[k] >> (8 * i));
        snprintf(what, sizeof what, "header length %llu", (unsigned long long)lens[k]);
        patch(tiny, size, 0, le, 8, SLIM_ERR_FORMAT, what);
    }

    /* Every header byte replaced by a few others: a status and a message, never a crash. */
    static const char subs[] = {'\0', '"', '\\', '{', '}', '[', ']', ',',    ':',
                                '0',  '9', '-',  ' ', 'e', '.', 'x', '\x80', '\xff'};
    int ok_after_sub = 0;
    uint8_t *m = malloc(size);
    for (size_t at = 8; at < 8 + TINY_HEADER; at++)
        for (size_t k = 0; k < sizeof subs; k++) {
            if (tiny[at] == (uint8_t)subs[k]) continue;
            memcpy(m, tiny, size);
            m[at] = (uint8_t)subs[k];
            uint8_t *copy = malloc(size);
            memcpy(copy, m, size);
            slim_st_file *f = (slim_st_file *)&f;
            slim_status s = slim_st_open_memory(copy, size, &f);
            if (s == SLIM_OK) {
                ok_after_sub++;
                slim_st_close(f);
            } else {
                ck_assert_msg(s == SLIM_ERR_FORMAT || s == SLIM_ERR_UNSUPPORTED,
                              "byte %zu = 0x%02x: status %d", at, (uint8_t)subs[k], s);
                ck_assert_ptr_null(f);
                ck_assert_msg(strncmp(slim_last_error(), "safetensors: ", 13) == 0, "%s",
                              slim_last_error());
                n_cases++;
                n_by_status[s & 15]++;
            }
            free(copy);
        }
    free(m);
    /* The data bytes are not validated: any content is fine. */
    for (size_t at = 8 + TINY_HEADER; at < size; at += 5) {
        uint8_t v = (uint8_t)~tiny[at];
        patch(tiny, size, at, &v, 1, SLIM_OK, "data byte");
    }

    /* Rewritten fields: each offset and each dimension off by one, each dtype unknown or of
     * another size.  Found by walking the header text of the fixture. */
    const char *h = (const char *)tiny + 8;
    int n_off = 0, n_shape = 0, n_dtype = 0;
    for (size_t at = 0; at < TINY_HEADER; at++) {
        if (strncmp(h + at, "\"data_offsets\":[", 16) == 0) {
            size_t p = at + 16;
            for (int k = 0; k < 2; k++) {
                char *end;
                unsigned long long v = strtoull(h + p, &end, 10);
                size_t len = (size_t)(end - (h + p));
                char rep[32];
                snprintf(rep, sizeof rep, "%llu", v + 1);
                snprintf(what, sizeof what, "data_offsets[%d] at %zu + 1", k, p);
                expect_rewrite(tiny, p, len, rep, SLIM_ERR_FORMAT, what);
                if (v > 0) {
                    snprintf(rep, sizeof rep, "%llu", v - 1);
                    snprintf(what, sizeof what, "data_offsets[%d] at %zu - 1", k, p);
                    expect_rewrite(tiny, p, len, rep, SLIM_ERR_FORMAT, what);
                }
                expect_rewrite(tiny, p, len, "-1", SLIM_ERR_FORMAT, "negative offset");
                expect_rewrite(tiny, p, len, "1e300", SLIM_ERR_FORMAT, "huge offset");
                expect_rewrite(tiny, p, len, "null", SLIM_ERR_FORMAT, "null offset");
                n_off++;
                p += len + 1;
            }
            /* [b, e] -> [b, e, e] and [b] */
            size_t close = p - 1;
            expect_rewrite(tiny, close, 0, ",0", SLIM_ERR_FORMAT, "3 offsets");
        }
        if (strncmp(h + at, "\"shape\":[", 9) == 0) {
            size_t p = at + 9;
            if (h[p] == ']') { /* the scalar: give it a dimension of 2 */
                expect_rewrite(tiny, p, 0, "2", SLIM_ERR_FORMAT, "scalar -> [2]");
                expect_rewrite(tiny, p, 0, "1", SLIM_OK, "scalar -> [1]");
                continue;
            }
            int n_zero = 0;
            for (const char *q = h + p; *q != ']'; q++)
                n_zero +=
                    *q == '0' && (q[-1] == '[' || q[-1] == ',') && (q[1] == ',' || q[1] == ']');
            while (h[p] != ']') {
                char *end;
                unsigned long long v = strtoull(h + p, &end, 10);
                size_t len = (size_t)(end - (h + p));
                /* another dimension of 0 keeps the tensor empty whatever this one is */
                slim_status resized = n_zero - (v == 0) > 0 ? SLIM_OK : SLIM_ERR_FORMAT;
                char rep[32];
                snprintf(rep, sizeof rep, "%llu", v + 1);
                snprintf(what, sizeof what, "shape entry at %zu + 1", p);
                expect_rewrite(tiny, p, len, rep, resized, what);
                if (v > 1) { /* (0 -> -1 is tested below; 1 -> 0 may keep a 0-size tensor) */
                    snprintf(rep, sizeof rep, "%llu", v - 1);
                    expect_rewrite(tiny, p, len, rep, resized, what);
                }
                expect_rewrite(tiny, p, len, "-1", SLIM_ERR_FORMAT, "negative dim");
                expect_rewrite(tiny, p, len, "4294967296", resized, "big dim");
                expect_rewrite(tiny, p, len, "\"2\"", SLIM_ERR_FORMAT, "string dim");
                n_shape++;
                p += len;
                if (h[p] == ',') p++;
            }
        }
        if (strncmp(h + at, "\"dtype\":\"", 9) == 0) {
            size_t p = at + 9, len = 0;
            while (h[p + len] != '"')
                len++;
            int cur = slim_st_dtype_from_name(h + p, len);
            ck_assert_int_ge(cur, 0);
            expect_rewrite(tiny, p, len, "Q9", SLIM_ERR_UNSUPPORTED, "unknown dtype");
            expect_rewrite(tiny, p, len, "f32", SLIM_ERR_UNSUPPORTED, "lowercase dtype");
            for (int t = 0; t < SLIM_ST_DTYPE_COUNT; t++) {
                snprintf(what, sizeof what, "dtype %.*s -> %s", (int)len, h + p,
                         slim_st_dtype_name((slim_st_dtype)t));
                const char *name = slim_st_dtype_name((slim_st_dtype)t);
                bool same =
                    slim_st_dtype_bits((slim_st_dtype)t) == slim_st_dtype_bits((slim_st_dtype)cur);
                /* a zero-size tensor fits any dtype */
                bool empty = len == 3 && strncmp(h + p, "F32", 3) == 0 &&
                             strncmp(h + at - 9, "\"empty\":{", 9) == 0;
                if (same || empty) {
                    if (t != cur || empty) expect_rewrite(tiny, p, len, name, SLIM_OK, what);
                } else {
                    expect_rewrite(tiny, p, len, name, SLIM_ERR_FORMAT, what);
                }
            }
            n_dtype++;
        }
    }
    ck_assert_int_eq(n_off, 2 * N_TINY);
    ck_assert_int_eq(n_dtype, N_TINY);
    ck_assert_int_ge(n_shape, 12);

    fprintf(stderr,
            "safetensors: %d malformed cases rejected (%d format, %d unsupported); %d header "
            "byte substitutions still valid\n",
            n_cases, n_by_status[SLIM_ERR_FORMAT], n_by_status[SLIM_ERR_UNSUPPORTED], ok_after_sub);
    ck_assert_int_ge(n_cases, 5000);
    ck_assert_int_eq(n_cases, n_by_status[SLIM_ERR_FORMAT] + n_by_status[SLIM_ERR_UNSUPPORTED]);
    free(tiny);
}
END_TEST

/* ---- sharded checkpoints and directories ---------------------------------------------------- */

static void check_sharded(const slim_st_set *set) {
    ck_assert_uint_eq(set->n_files, 2);
    ck_assert_uint_eq(set->n_tensors, 4);
    ck_assert_ptr_nonnull(set->index);
    static const char *names[4] = {"lm_head.weight", "model.embed_tokens.weight",
                                   "model.layers.0.mlp.weight", "model.layers.1.mlp.weight"};
    static const char *shard[4] = {
        "model-00002-of-00002.safetensors", "model-00001-of-00002.safetensors",
        "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"};
    for (int i = 0; i < 4; i++) {
        const slim_st_tensor *t = set->tensors[i]; /* weight_map order (sorted by name) */
        ck_assert_str_eq(t->name, names[i]);
        ck_assert_ptr_eq(slim_st_set_find(set, names[i]), t);
        const slim_st_file *f = slim_st_set_file_of(set, t);
        ck_assert_ptr_nonnull(f);
        size_t pl = strlen(f->path), sl = strlen(shard[i]);
        ck_assert_msg(pl > sl && strcmp(f->path + pl - sl, shard[i]) == 0 &&
                          f->path[pl - sl - 1] == '/',
                      "%s in %s", names[i], f->path);
        ck_assert_ptr_eq(slim_st_find(f, names[i]), t);
        ck_assert_ptr_eq(set->files[t->file_index], f);
    }
    ck_assert_ptr_ne(set->files[0], set->files[1]);
    ck_assert_str_eq(slim_st_meta(set->files[0], "format"), "pt");
    ck_assert_ptr_null(slim_st_set_find(set, "unlisted.extra")); /* not in the weight_map */
    /* files in order of first use in the weight_map: shard 2 (lm_head) first */
    ck_assert_ptr_nonnull(slim_st_find(set->files[0], "unlisted.extra"));
    ck_assert_ptr_null(slim_st_set_find(set, "missing"));
    ck_assert_ptr_null(slim_st_set_file_of(set, NULL));
    int64_t total;
    ck_assert(slim_json_i64(
        slim_json_get(slim_json_get(slim_json_root(set->index), "metadata"), "total_size"),
        &total));
    ck_assert_int_eq(total, 48 + 8 + 8 + 48);

    float f[12];
    const slim_st_tensor *t = slim_st_set_find(set, "model.embed_tokens.weight");
    ck_assert(t->dtype == SLIM_ST_F32 && t->n_dims == 2 && t->shape[0] == 4 && t->shape[1] == 3);
    memcpy(f, t->data, sizeof f);
    for (int i = 0; i < 12; i++)
        ck_assert(f[i] == (float)i * 0.5f);
    t = slim_st_set_find(set, "lm_head.weight");
    memcpy(f, t->data, sizeof f);
    for (int i = 0; i < 12; i++)
        ck_assert(f[i] == -(float)i);
    uint16_t h[4];
    t = slim_st_set_find(set, "model.layers.0.mlp.weight");
    ck_assert_int_eq(t->dtype, SLIM_ST_F16);
    memcpy(h, t->data, sizeof h);
    ck_assert(half_to_f32(h[0]) == 1.0f && half_to_f32(h[1]) == -1.0f &&
              half_to_f32(h[2]) == 0.5f && half_to_f32(h[3]) == 2.0f);
    t = slim_st_set_find(set, "model.layers.1.mlp.weight");
    ck_assert_int_eq(t->dtype, SLIM_ST_BF16);
    memcpy(h, t->data, sizeof h);
    ck_assert(bf16_to_f32(h[0]) == 1.0f && bf16_to_f32(h[1]) == 2.0f && bf16_to_f32(h[2]) == 3.0f &&
              bf16_to_f32(h[3]) == -4.0f);
}

START_TEST(test_sharded) {
    slim_st_set *set = NULL;
    ck_assert_msg(slim_st_open_index(SHARDED "/model.safetensors.index.json", true, &set) ==
                      SLIM_OK,
                  "%s", slim_last_error());
    check_sharded(set);
    slim_st_set_close(set);
    const char *dirs[] = {SHARDED, SHARDED "/", SHARDED "//"};
    for (int k = 0; k < 3; k++) {
        set = NULL;
        ck_assert_msg(slim_st_open_dir(dirs[k], NULL, k == 1, &set) == SLIM_OK, "%s",
                      slim_last_error());
        check_sharded(set);
        slim_st_set_close(set);
    }
    slim_st_set_close(NULL);
    /* An index opened from its own directory (a relative name with no '/'). */
    char cwd[4096];
    ck_assert_ptr_nonnull(getcwd(cwd, sizeof cwd));
    ck_assert_int_eq(chdir(SHARDED), 0);
    slim_status s = slim_st_open_index("model.safetensors.index.json", false, &set);
    ck_assert_int_eq(chdir(cwd), 0);
    ck_assert_msg(s == SLIM_OK, "%s", slim_last_error());
    ck_assert_uint_eq(set->n_tensors, 4);
    slim_st_set_close(set);
}
END_TEST

/* A scratch directory with files; removed by cleanup(). */
typedef struct scratch {
    char dir[64];
    char paths[16][160];
    int n;
} scratch;

static const char *scratch_path(scratch *sc, const char *name) {
    for (int i = 0; i < sc->n; i++) /* reuse */
        if (strcmp(strrchr(sc->paths[i], '/') + 1, name) == 0) return sc->paths[i];
    ck_assert_int_lt(sc->n, 16);
    char dir[sizeof sc->dir];
    memcpy(dir, sc->dir, sizeof dir);
    snprintf(sc->paths[sc->n], sizeof sc->paths[0], "%s/%s", dir, name);
    return sc->paths[sc->n++];
}

static void scratch_init(scratch *sc) {
    memset(sc, 0, sizeof *sc);
    strcpy(sc->dir, "/tmp/slim_st_dir_XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(sc->dir));
}

static void scratch_cleanup(scratch *sc) {
    for (int i = 0; i < sc->n; i++)
        unlink(sc->paths[i]);
    ck_assert_int_eq(rmdir(sc->dir), 0);
}

/* Expect `want` from opening the index `text` in the scratch dir; message prefix: the
 * index path, then `msg` (exact, or '~' substring). */
static void expect_index(scratch *sc, const char *text, slim_status want, const char *msg) {
    const char *ip = scratch_path(sc, "model.safetensors.index.json");
    write_text(ip, text);
    slim_st_set *set = (slim_st_set *)&set;
    slim_status s = slim_st_open_dir(sc->dir, NULL, true, &set);
    ck_assert_msg(s == want, "<%s>: status %d (%s)", text, s, slim_last_error());
    if (s == SLIM_OK) {
        slim_st_set_close(set);
        return;
    }
    ck_assert_ptr_null(set);
    const char *e = slim_last_error();
    ck_assert_msg(strncmp(e, ip, strlen(ip)) == 0 && e[strlen(ip)] == ':', "<%s>: %s", text, e);
    const char *rest = e + strlen(ip);
    if (msg[0] == '~')
        ck_assert_msg(strstr(rest, msg + 1) != NULL, "<%s>: got <%s>, want ~<%s>", text, e,
                      msg + 1);
    else
        ck_assert_msg(strcmp(rest, msg) == 0, "<%s>: got <%s>, want <path>%s", text, e, msg);
}

START_TEST(test_dirs) {
    size_t size;
    uint8_t *tiny = test_read_whole(TINY, &size);
    scratch sc;
    scratch_init(&sc);
    slim_st_set *set = (slim_st_set *)&set;
    char want[512];

    /* Nothing there. */
    ck_assert_int_eq(slim_st_open_dir(sc.dir, NULL, true, &set), SLIM_ERR_IO);
    ck_assert_ptr_null(set);
    snprintf(want, sizeof want, "'%s': no model.safetensors or model.safetensors.index.json in it",
             sc.dir);
    ck_assert_str_eq(slim_last_error(), want);
    ck_assert_int_eq(slim_st_open_dir("/nonexistent/slim", NULL, true, &set), SLIM_ERR_IO);
    ck_assert_str_eq(slim_last_error(), "open '/nonexistent/slim': No such file or directory");
    ck_assert_int_eq(slim_st_open_dir(TINY, NULL, true, &set), SLIM_ERR_IO);
    ck_assert_str_eq(slim_last_error(), "open '" TINY "': Not a directory");
    ck_assert_int_eq(slim_st_open_dir(NULL, NULL, true, &set), SLIM_ERR_INVALID_ARG);
    ck_assert_int_eq(slim_st_open_dir(sc.dir, NULL, true, NULL), SLIM_ERR_INVALID_ARG);
    ck_assert_int_eq(slim_st_open_index(NULL, true, &set), SLIM_ERR_INVALID_ARG);
    ck_assert_int_eq(slim_st_open_file_set(TINY, true, NULL), SLIM_ERR_INVALID_ARG);

    /* A single file; preferred over an index (as transformers does). */
    write_file(scratch_path(&sc, "model.safetensors"), tiny, size);
    write_text(scratch_path(&sc, "model.safetensors.index.json"), "not json");
    ck_assert_msg(slim_st_open_dir(sc.dir, NULL, false, &set) == SLIM_OK, "%s", slim_last_error());
    ck_assert_uint_eq(set->n_files, 1);
    ck_assert_ptr_null(set->index);
    ck_assert_uint_eq(set->n_tensors, N_TINY);
    for (int i = 0; i < N_TINY; i++) {
        ck_assert_ptr_eq(set->tensors[i], &set->files[0]->tensors[i]);
        ck_assert_ptr_eq(slim_st_set_find(set, tiny_tensors[i].name), set->tensors[i]);
        ck_assert_ptr_eq(slim_st_set_file_of(set, set->tensors[i]), set->files[0]);
    }
    check_tiny(set->files[0]);
    slim_st_set_close(set);
    /* A PEFT adapter next to it. */
    ck_assert_int_eq(slim_st_open_dir(sc.dir, "adapter_model", true, &set), SLIM_ERR_IO);
    ck_assert_ptr_nonnull(strstr(slim_last_error(), "no adapter_model.safetensors or "
                                                    "adapter_model.safetensors.index.json"));
    write_file(scratch_path(&sc, "adapter_model.safetensors"), tiny, 64); /* truncated */
    ck_assert_int_eq(slim_st_open_dir(sc.dir, "adapter_model", true, &set), SLIM_ERR_FORMAT);
    snprintf(want, sizeof want,
             "%s/adapter_model.safetensors: safetensors: header length 816 exceeds the 56 bytes "
             "after the length field (file size 64)",
             sc.dir);
    ck_assert_str_eq(slim_last_error(), want);
    write_file(scratch_path(&sc, "adapter_model.safetensors"), tiny, size);
    ck_assert_int_eq(slim_st_open_dir(sc.dir, "adapter_model", true, &set), SLIM_OK);
    ck_assert_uint_eq(set->n_tensors, N_TINY);
    slim_st_set_close(set);
    unlink(scratch_path(&sc, "model.safetensors"));

    /* Index files: shards in the same directory, each opened once. */
    write_file(scratch_path(&sc, "a.safetensors"), tiny, size);
    write_file(scratch_path(&sc, "b.safetensors"), tiny, size);
    write_file(scratch_path(&sc, "bad.safetensors"), tiny, size - 3);
    expect_index(&sc,
                 "{\"weight_map\": {\"f32.2d\": \"a.safetensors\", \"i8.2d\": "
                 "\"b.safetensors\", \"u8.1d\": \"a.safetensors\", \"bool.1d\": "
                 "\"a.safetensors\"}}",
                 SLIM_OK, NULL);
    ck_assert_int_eq(slim_st_open_dir(sc.dir, NULL, true, &set), SLIM_OK);
    ck_assert_uint_eq(set->n_files, 2);
    ck_assert_uint_eq(set->n_tensors, 4);
    ck_assert_ptr_eq(slim_st_set_file_of(set, slim_st_set_find(set, "u8.1d")), set->files[0]);
    ck_assert_ptr_eq(slim_st_set_file_of(set, slim_st_set_find(set, "i8.2d")), set->files[1]);
    ck_assert_ptr_null(slim_st_set_find(set, "f16.1d"));
    slim_st_set_close(set);
    expect_index(&sc, "{\"metadata\": {}, \"weight_map\": {}}", SLIM_OK, NULL);

    expect_index(&sc, "[]", SLIM_ERR_FORMAT, ": expected a JSON object, got array");
    expect_index(&sc, "{}", SLIM_ERR_FORMAT, ": weight_map: missing required key");
    expect_index(&sc, "{\"weight_map\": null}", SLIM_ERR_FORMAT,
                 ": weight_map: missing required key");
    expect_index(&sc, "{\"weight_map\": []}", SLIM_ERR_FORMAT,
                 ": weight_map: expected an object, got array");
    expect_index(&sc, "{\"weight_map\": {", SLIM_ERR_FORMAT,
                 ":1:17: expected a string key or '}', got end of input");
    expect_index(&sc, "{\"weight_map\": {\"x\": 1}}", SLIM_ERR_FORMAT,
                 ": weight_map['x']: expected a file name, got number");
    static const char *bad_names[] = {
        "../a.safetensors", "sub/a.safetensors", "/etc/passwd", "", ".", "..", "a\\u0000b"};
    for (size_t k = 0; k < sizeof bad_names / sizeof bad_names[0]; k++) {
        char text[128];
        snprintf(text, sizeof text, "{\"weight_map\": {\"f32.2d\": \"%s\"}}", bad_names[k]);
        expect_index(&sc, text, SLIM_ERR_FORMAT,
                     "~is not a plain file name in the index's directory");
    }
    snprintf(want, sizeof want, ": open '%s/nope.safetensors': No such file or directory", sc.dir);
    expect_index(&sc, "{\"weight_map\": {\"f32.2d\": \"nope.safetensors\"}}", SLIM_ERR_IO, want);
    expect_index(
        &sc, "{\"weight_map\": {\"f32.2d\": \"a.safetensors\", \"nope\": \"a.safetensors\"}}",
        SLIM_ERR_FORMAT, ": tensor 'nope' is mapped to 'a.safetensors', which has no such tensor");
    expect_index(&sc, "{\"weight_map\": {\"f32.2d\\u0000x\": \"a.safetensors\"}}", SLIM_ERR_FORMAT,
                 "~is mapped to 'a.safetensors', which has no such tensor");
    snprintf(want, sizeof want,
             ": %s/bad.safetensors: safetensors: tensor 'bool.1d': data_offsets [153, 156] past "
             "the end of the data section (153 bytes)",
             sc.dir);
    expect_index(
        &sc, "{\"weight_map\": {\"f32.2d\": \"a.safetensors\", \"u8.1d\": \"bad.safetensors\"}}",
        SLIM_ERR_FORMAT, want);
    /* A file set from a bad file. */
    ck_assert_int_eq(slim_st_open_file_set(scratch_path(&sc, "bad.safetensors"), true, &set),
                     SLIM_ERR_FORMAT);
    ck_assert_ptr_null(set);

    scratch_cleanup(&sc);
    free(tiny);
}
END_TEST

Suite *suite_safetensors(void) {
    Suite *s = suite_create("safetensors");
    TCase *tc = tcase_create("reader");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_tiny);
    tcase_add_test(tc, test_dtypes);
    tcase_add_test(tc, test_built_files);
    tcase_add_test(tc, test_alignment);
    tcase_add_test(tc, test_file_errors);
    tcase_add_test(tc, test_malformed_corpus);
    tcase_add_test(tc, test_sharded);
    tcase_add_test(tc, test_dirs);
    suite_add_tcase(s, tc);
    return s;
}
