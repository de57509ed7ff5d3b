/* The GGUF reader: tests/data/tiny.gguf (tools/golden/gen_gguf_fixture.py) read
 * back exactly, the real model when present, and a malformed corpus generated
 * here from tiny.gguf (truncations, huge counts/lengths/dims/offsets, bad
 * types, bad UTF-8, bad magic/version/alignment, duplicates), each of which
 * must fail cleanly with the right status and a message. */
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "format/gguf.h"
#include "format/mmap.h"
#include "quant/dtype.h"
#include "suites.h"

#define TINY "tests/data/tiny.gguf"
#define TINY_DATA_OFFSET 1216 /* 64-aligned end of the tensor infos */

/* ---- tiny.gguf read back -------------------------------------------------------------------- */

static const slim_gguf_kv *kv_of(const slim_gguf *g, const char *key, slim_gguf_type type) {
    const slim_gguf_kv *kv = slim_gguf_find(g, key);
    ck_assert_msg(kv != NULL, "key %s missing", key);
    ck_assert_msg(kv->type == type, "key %s: type %d, want %d", key, kv->type, type);
    return kv;
}

static bool str_eq(slim_gguf_str s, const char *want) {
    return s.len == strlen(want) && memcmp(s.ptr, want, s.len) == 0;
}

static void check_tiny_kvs(const slim_gguf *g) {
    ck_assert_uint_eq(g->version, 3);
    ck_assert_uint_eq(g->n_kv, 24);
    ck_assert_uint_eq(g->alignment, 64);
    ck_assert_uint_eq(g->data_offset, TINY_DATA_OFFSET);

    ck_assert_str_eq(g->kv[0].key, "general.architecture");
    ck_assert(str_eq(kv_of(g, "general.architecture", SLIM_GGUF_STRING)->v.str, "tiny"));
    ck_assert_uint_eq(kv_of(g, "general.alignment", SLIM_GGUF_UINT32)->v.u64, 64);
    ck_assert_uint_eq(kv_of(g, "test.u8", SLIM_GGUF_UINT8)->v.u64, 200);
    ck_assert_int_eq(kv_of(g, "test.i8", SLIM_GGUF_INT8)->v.i64, -100);
    ck_assert_uint_eq(kv_of(g, "test.u16", SLIM_GGUF_UINT16)->v.u64, 60000);
    ck_assert_int_eq(kv_of(g, "test.i16", SLIM_GGUF_INT16)->v.i64, -30000);
    ck_assert_uint_eq(kv_of(g, "test.u32", SLIM_GGUF_UINT32)->v.u64, 4000000000u);
    ck_assert_int_eq(kv_of(g, "test.i32", SLIM_GGUF_INT32)->v.i64, -2000000000);
    ck_assert(kv_of(g, "test.f32", SLIM_GGUF_FLOAT32)->v.f64 == (double)0.1f);
    ck_assert(kv_of(g, "test.bool_t", SLIM_GGUF_BOOL)->v.b == true);
    ck_assert(kv_of(g, "test.bool_f", SLIM_GGUF_BOOL)->v.b == false);
    ck_assert(str_eq(kv_of(g, "test.string", SLIM_GGUF_STRING)->v.str,
                     "hello, gguf \xe2\x9c\x93\n'quoted'"));
    ck_assert_uint_eq(kv_of(g, "test.empty_string", SLIM_GGUF_STRING)->v.str.len, 0);
    ck_assert_uint_eq(kv_of(g, "test.u64", SLIM_GGUF_UINT64)->v.u64, UINT64_MAX);
    ck_assert_uint_eq(kv_of(g, "test.u64_small", SLIM_GGUF_UINT64)->v.u64, 42);
    ck_assert_int_eq(kv_of(g, "test.i64", SLIM_GGUF_INT64)->v.i64, -(INT64_C(1) << 40) - 7);
    ck_assert(kv_of(g, "test.f64", SLIM_GGUF_FLOAT64)->v.f64 == 2.718281828459045);
    ck_assert(str_eq(kv_of(g,
                           "test.\xc3\xbcnic\xc3\xb6"
                           "de",
                           SLIM_GGUF_STRING)
                         ->v.str,
                     "ok"));

    const slim_gguf_kv *a = kv_of(g, "test.arr_i32", SLIM_GGUF_ARRAY);
    ck_assert_int_eq(a->arr_type, SLIM_GGUF_INT32);
    ck_assert_uint_eq(a->arr_n, 5);
    int32_t i32[5];
    memcpy(i32, a->arr_data, sizeof i32);
    const int32_t want_i32[5] = {1, -2, 3, -4, 2147483647};
    ck_assert_mem_eq(i32, want_i32, sizeof i32);

    a = kv_of(g, "test.arr_u8", SLIM_GGUF_ARRAY);
    ck_assert_int_eq(a->arr_type, SLIM_GGUF_UINT8);
    ck_assert_uint_eq(a->arr_n, 4);
    ck_assert_mem_eq(a->arr_data, "\x00\x01\xfe\xff", 4);

    a = kv_of(g, "test.arr_u64", SLIM_GGUF_ARRAY);
    ck_assert_int_eq(a->arr_type, SLIM_GGUF_UINT64);
    ck_assert_uint_eq(a->arr_n, 3);
    uint64_t u64[3];
    memcpy(u64, a->arr_data, sizeof u64);
    ck_assert(u64[0] == UINT64_MAX && u64[1] == 0 && u64[2] == 1);

    a = kv_of(g, "test.arr_f32", SLIM_GGUF_ARRAY);
    ck_assert_int_eq(a->arr_type, SLIM_GGUF_FLOAT32);
    float f32[3];
    memcpy(f32, a->arr_data, sizeof f32);
    ck_assert(a->arr_n == 3 && f32[0] == 0.5f && f32[1] == -1.25f && f32[2] == 3.0f);

    a = kv_of(g, "test.arr_bool", SLIM_GGUF_ARRAY);
    ck_assert_int_eq(a->arr_type, SLIM_GGUF_BOOL);
    ck_assert_uint_eq(a->arr_n, 3);
    ck_assert_mem_eq(a->arr_data, "\x01\x00\x01", 3);

    a = kv_of(g, "test.arr_str", SLIM_GGUF_ARRAY);
    ck_assert_int_eq(a->arr_type, SLIM_GGUF_STRING);
    ck_assert_uint_eq(a->arr_n, 5);
    const char *want_s[5] = {"<pad>", "<eos>", "hello world", "", "\xc3\xbcn\xc3\xaf"};
    for (int i = 0; i < 5; i++)
        ck_assert_msg(str_eq(a->arr_strs[i], want_s[i]), "arr_str[%d]", i);
}

typedef struct want_tensor {
    const char *name;
    slim_dtype type;
    int n_dims;
    int64_t ne[4];
    uint64_t rel_offset, size;
} want_tensor;

static const want_tensor tiny_tensors[] = {
    {"f32.1d", SLIM_DTYPE_F32, 1, {7, 1, 1, 1}, 0, 28},
    {"f32.2d", SLIM_DTYPE_F32, 2, {5, 3, 1, 1}, 64, 60},
    {"f32.3d", SLIM_DTYPE_F32, 3, {2, 3, 4, 1}, 128, 96},
    {"f16.2d", SLIM_DTYPE_F16, 2, {8, 4, 1, 1}, 256, 64},
    {"q8_0.2d", SLIM_DTYPE_Q8_0, 2, {64, 3, 1, 1}, 320, 204},
    {"q4_k.2d", SLIM_DTYPE_Q4_K, 2, {256, 2, 1, 1}, 576, 288},
};

static float q8_value(int r, int j) { /* the script's q8_0_values() */
    if (j % 32 == 0) return r % 2 == 0 ? 127.0f : -127.0f;
    return (float)((j * 37 + r * 11) % 255 - 127);
}

/* IEEE half to float (normal numbers and zero: all the fixture holds). */
static float half_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, exp = (h >> 10) & 0x1f, man = h & 0x3ff;
    uint32_t bits = exp == 0 && man == 0 ? sign : sign | (exp + 112) << 23 | man << 13;
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

static void check_tiny_tensors(const slim_gguf *g) {
    ck_assert_uint_eq(g->n_tensors, 6);
    for (int i = 0; i < 6; i++) {
        const want_tensor *w = &tiny_tensors[i];
        const slim_gguf_tensor *t = slim_gguf_find_tensor(g, w->name);
        ck_assert_msg(t == &g->tensors[i], "tensor %s not found in order", w->name);
        ck_assert_str_eq(t->name, w->name);
        ck_assert_int_eq(t->type, w->type);
        ck_assert_int_eq(t->n_dims, w->n_dims);
        for (int d = 0; d < 4; d++)
            ck_assert_int_eq(t->ne[d], w->ne[d]);
        ck_assert_uint_eq(t->offset, TINY_DATA_OFFSET + w->rel_offset);
        ck_assert_uint_eq(t->size, w->size);
        ck_assert_ptr_eq(t->data, (const uint8_t *)g->map.data + t->offset);
        ck_assert_uint_eq(t->offset % 64, 0);
    }
    ck_assert_ptr_null(slim_gguf_find_tensor(g, "missing"));
    ck_assert_ptr_null(slim_gguf_find_tensor(g, "f32.1"));

    float f[24];
    memcpy(f, g->tensors[0].data, 7 * sizeof(float));
    for (int i = 0; i < 7; i++)
        ck_assert(f[i] == 0.5f * (float)i - 1.0f);
    memcpy(f, g->tensors[1].data, 15 * sizeof(float));
    for (int r = 0; r < 3; r++)
        for (int c = 0; c < 5; c++)
            ck_assert(f[r * 5 + c] == (float)(r * 10 + c) + 0.25f);
    memcpy(f, g->tensors[2].data, 24 * sizeof(float));
    for (int i = 0; i < 24; i++)
        ck_assert(f[i] == (float)i * -1.5f);
    uint16_t h[32];
    memcpy(h, g->tensors[3].data, sizeof h);
    for (int i = 0; i < 32; i++)
        ck_assert(half_to_f32(h[i]) == (float)i / 8.0f - 2.0f);
    const uint8_t *q = g->tensors[4].data;
    for (int r = 0; r < 3; r++)
        for (int b = 0; b < 2; b++) {
            const uint8_t *blk = q + (r * 2 + b) * 34;
            ck_assert(blk[0] == 0x00 && blk[1] == 0x3C); /* d = 1.0 */
            for (int k = 0; k < 32; k++)
                ck_assert_int_eq((int8_t)blk[2 + k], (int)q8_value(r, b * 32 + k));
        }
    const uint8_t *k4 = g->tensors[5].data;
    for (int r = 0; r < 2; r++) {
        const uint8_t *blk = k4 + r * 144;
        ck_assert(blk[0] == 0x00 && blk[1] == 0x3C && blk[2] == 0x00 && blk[3] == 0x38);
        for (int k = 0; k < 12; k++)
            ck_assert_uint_eq(blk[4 + k], (k * 5 + r) & 63);
        for (int k = 0; k < 128; k++)
            ck_assert_uint_eq(blk[16 + k], (k * 3 + r * 7) & 0xFF);
    }
}

START_TEST(test_tiny_open) {
    for (int mode = 0; mode < 3; mode++) {
        slim_gguf *g = NULL;
        uint8_t *buf = NULL;
        size_t size = 0;
        slim_status s;
        if (mode < 2) {
            s = slim_gguf_open(TINY, mode == 0, &g);
        } else {
            buf = test_read_whole(TINY, &size);
            s = slim_gguf_open_memory(buf, size, &g);
        }
        ck_assert_msg(s == SLIM_OK, "mode %d: %s", mode, slim_last_error());
        ck_assert_ptr_nonnull(g);
        if (mode < 2) ck_assert(g->map.mapped == (mode == 0));
        check_tiny_kvs(g);
        check_tiny_tensors(g);
        slim_gguf_close(g);
        free(buf);
    }
}
END_TEST

START_TEST(test_tiny_v2) {
    /* v2 and v3 share the layout (v3 only added big-endian files). */
    size_t size;
    uint8_t *buf = test_read_whole(TINY, &size);
    buf[4] = 2;
    slim_gguf *g = NULL;
    ck_assert_int_eq(slim_gguf_open_memory(buf, size, &g), SLIM_OK);
    ck_assert_uint_eq(g->version, 2);
    check_tiny_tensors(g);
    slim_gguf_close(g);
    free(buf);
}
END_TEST

START_TEST(test_getters) {
    slim_gguf *g = NULL;
    ck_assert_int_eq(slim_gguf_open(TINY, true, &g), SLIM_OK);
    int64_t i;
    uint32_t u;
    float f;
    bool b;
    slim_gguf_str s;
    const slim_gguf_kv *kv;

    ck_assert(slim_gguf_get_i64(g, "test.u8", &i) && i == 200);
    ck_assert(slim_gguf_get_i64(g, "test.i8", &i) && i == -100);
    ck_assert(slim_gguf_get_i64(g, "test.u32", &i) && i == 4000000000);
    ck_assert(slim_gguf_get_i64(g, "test.i64", &i) && i == -(INT64_C(1) << 40) - 7);
    ck_assert(slim_gguf_get_i64(g, "test.u64_small", &i) && i == 42);
    ck_assert(!slim_gguf_get_i64(g, "test.u64", &i)); /* 2^64-1 does not fit */
    ck_assert(!slim_gguf_get_i64(g, "test.f32", &i));
    ck_assert(!slim_gguf_get_i64(g, "test.bool_t", &i));
    ck_assert(!slim_gguf_get_i64(g, "test.string", &i));
    ck_assert(!slim_gguf_get_i64(g, "nope", &i));

    ck_assert(slim_gguf_get_u32(g, "test.u8", &u) && u == 200);
    ck_assert(slim_gguf_get_u32(g, "test.u16", &u) && u == 60000);
    ck_assert(slim_gguf_get_u32(g, "test.u32", &u) && u == 4000000000u);
    ck_assert(slim_gguf_get_u32(g, "test.u64_small", &u) && u == 42);
    ck_assert(slim_gguf_get_u32(g, "general.alignment", &u) && u == 64);
    ck_assert(!slim_gguf_get_u32(g, "test.i8", &u)); /* negative */
    ck_assert(!slim_gguf_get_u32(g, "test.i64", &u));
    ck_assert(!slim_gguf_get_u32(g, "test.u64", &u)); /* too large */
    ck_assert(!slim_gguf_get_u32(g, "test.arr_i32", &u));

    ck_assert(slim_gguf_get_f32(g, "test.f32", &f) && f == 0.1f);
    ck_assert(slim_gguf_get_f32(g, "test.f64", &f) && f == (float)2.718281828459045);
    ck_assert(slim_gguf_get_f32(g, "test.u16", &f) && f == 60000.0f);
    ck_assert(slim_gguf_get_f32(g, "test.i16", &f) && f == -30000.0f);
    ck_assert(!slim_gguf_get_f32(g, "test.string", &f));
    ck_assert(!slim_gguf_get_f32(g, "test.bool_t", &f));

    ck_assert(slim_gguf_get_bool(g, "test.bool_t", &b) && b);
    ck_assert(slim_gguf_get_bool(g, "test.bool_f", &b) && !b);
    ck_assert(!slim_gguf_get_bool(g, "test.u8", &b));

    ck_assert(slim_gguf_get_str(g, "general.architecture", &s) && str_eq(s, "tiny"));
    ck_assert(slim_gguf_get_str(g, "test.empty_string", &s) && s.len == 0);
    ck_assert(!slim_gguf_get_str(g, "test.arr_str", &s));

    ck_assert(slim_gguf_get_arr(g, "test.arr_str", SLIM_GGUF_STRING, &kv) && kv->arr_n == 5);
    ck_assert(slim_gguf_get_arr(g, "test.arr_i32", SLIM_GGUF_INT32, &kv) && kv->arr_n == 5);
    ck_assert(!slim_gguf_get_arr(g, "test.arr_i32", SLIM_GGUF_UINT32, &kv));
    ck_assert(!slim_gguf_get_arr(g, "test.string", SLIM_GGUF_STRING, &kv));
    ck_assert(!slim_gguf_get_arr(g, "nope", SLIM_GGUF_STRING, &kv));

    ck_assert_ptr_null(slim_gguf_find(g, "test"));
    ck_assert_ptr_null(slim_gguf_find(g, NULL));
    ck_assert_ptr_null(slim_gguf_find(NULL, "test.u8"));
    ck_assert(!slim_gguf_get_i64(NULL, "test.u8", &i));
    slim_gguf_close(g);
    slim_gguf_close(NULL);
}
END_TEST

START_TEST(test_format_value) {
    slim_gguf *g = NULL;
    ck_assert_int_eq(slim_gguf_open(TINY, true, &g), SLIM_OK);
    static const struct {
        const char *key, *text;
    } cases[] = {
        {"test.u8", "200"},
        {"test.i8", "-100"},
        {"test.u16", "60000"},
        {"test.i16", "-30000"},
        {"test.u32", "4000000000"},
        {"test.i32", "-2000000000"},
        {"test.f32", "0.1"},
        {"test.bool_t", "true"},
        {"test.bool_f", "false"},
        {"test.string", "'hello, gguf \xe2\x9c\x93\\n\\'quoted\\''"},
        {"test.empty_string", "''"},
        {"test.u64", "18446744073709551615"},
        {"test.i64", "-1099511627783"},
        {"test.f64", "2.718281828459045"},
        {"test.arr_i32", "[int32; 5] [1, -2, 3, -4, 2147483647]"},
        {"test.arr_u8", "[uint8; 4] [0, 1, 254, 255]"},
        {"test.arr_u64", "[uint64; 3] [18446744073709551615, 0, 1]"},
        {"test.arr_f32", "[float32; 3] [0.5, -1.25, 3]"},
        {"test.arr_bool", "[bool; 3] [true, false, true]"},
        {"test.arr_str", "[string; 5] ['<pad>', '<eos>', 'hello world', '', '\xc3\xbcn\xc3\xaf']"},
    };
    char buf[256];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        slim_gguf_format_value(slim_gguf_find(g, cases[i].key), buf, sizeof buf);
        ck_assert_msg(strcmp(buf, cases[i].text) == 0, "%s: got <%s> want <%s>", cases[i].key, buf,
                      cases[i].text);
    }
    ck_assert_str_eq(slim_gguf_type_name(SLIM_GGUF_STRING), "string");
    ck_assert_str_eq(slim_gguf_type_name(SLIM_GGUF_FLOAT64), "float64");
    ck_assert_str_eq(slim_gguf_type_name((slim_gguf_type)99), "?");

    /* Truncation: always NUL-terminated, within cap, "..." at the end. */
    const slim_gguf_kv *kv = slim_gguf_find(g, "test.arr_str");
    for (size_t cap = 1; cap < 80; cap++) {
        memset(buf, 'X', sizeof buf);
        slim_gguf_format_value(kv, buf, cap);
        size_t n = strlen(buf);
        ck_assert_uint_lt(n, cap);
        ck_assert_int_eq(buf[cap], 'X');
        if (cap >= 4 && cap <= 60)
            ck_assert_msg(n >= 3 && strcmp(buf + n - 3, "...") == 0, "%s", buf);
    }
    slim_gguf_format_value(kv, buf, 12);
    ck_assert_str_eq(buf, "[string;...");
    /* A UTF-8 sequence is never split. */
    kv = slim_gguf_find(g, "test.string");
    slim_gguf_format_value(kv, buf, 19); /* 'hello, gguf + 3-byte check mark does not fit */
    ck_assert_str_eq(buf, "'hello, gguf ...");
    slim_gguf_format_value(NULL, buf, sizeof buf);
    ck_assert_str_eq(buf, "");
    slim_gguf_format_value(kv, buf, 0); /* no write */
    slim_gguf_close(g);
}
END_TEST

START_TEST(test_file_errors) {
    slim_gguf *g = (slim_gguf *)&g;
    ck_assert_int_eq(slim_gguf_open("tests/data/no-such-file.gguf", true, &g), SLIM_ERR_IO);
    ck_assert_ptr_null(g);
    ck_assert_ptr_nonnull(strstr(slim_last_error(), "tests/data/no-such-file.gguf"));
    ck_assert_ptr_nonnull(strstr(slim_last_error(), "No such file"));
    ck_assert_int_eq(slim_gguf_open("tests/data", false, &g), SLIM_ERR_IO);
    ck_assert_int_eq(slim_gguf_open("tests/data", true, &g), SLIM_ERR_IO);
    ck_assert_int_eq(slim_gguf_open(NULL, true, &g), SLIM_ERR_INVALID_ARG);
    ck_assert_int_eq(slim_gguf_open(TINY, true, NULL), SLIM_ERR_INVALID_ARG);
    ck_assert_int_eq(slim_gguf_open_memory(NULL, 5, &g), SLIM_ERR_INVALID_ARG);
    ck_assert_int_eq(slim_gguf_open_memory(NULL, 0, &g), SLIM_ERR_FORMAT);
    ck_assert_ptr_null(g);

    /* An empty file maps fine and is then rejected with its path named. */
    char path[] = "/tmp/slim_gguf_emptyXXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    close(fd);
    slim_file_map map;
    for (int m = 0; m < 2; m++) {
        ck_assert_int_eq(slim_file_map_open(path, m, &map), SLIM_OK);
        ck_assert(map.data == NULL && map.size == 0);
        slim_file_map_close(&map);
        ck_assert_int_eq(slim_gguf_open(path, m, &g), SLIM_ERR_FORMAT);
        ck_assert_ptr_null(g);
        ck_assert_msg(strncmp(slim_last_error(), path, strlen(path)) == 0, "%s", slim_last_error());
    }
    /* A file truncated inside tensor data: path, tensor name and offsets in the message. */
    size_t size;
    uint8_t *buf = test_read_whole(TINY, &size);
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(buf, 1, 2000, f), 2000);
    fclose(f);
    ck_assert_int_eq(slim_gguf_open(path, true, &g), SLIM_ERR_FORMAT);
    char want[256];
    snprintf(want, sizeof want,
             "%s: gguf: tensor 'q4_k.2d': data [0x700, 0x820) past end of file (size 0x7d0)", path);
    ck_assert_str_eq(slim_last_error(), want);
    unlink(path);

    /* Both mapping modes give the same bytes. */
    slim_file_map a, b;
    ck_assert_int_eq(slim_file_map_open(TINY, true, &a), SLIM_OK);
    ck_assert_int_eq(slim_file_map_open(TINY, false, &b), SLIM_OK);
    ck_assert(a.mapped && !b.mapped && a.size == size && b.size == size);
    ck_assert_mem_eq(a.data, buf, size);
    ck_assert_mem_eq(b.data, buf, size);
    slim_file_map_close(&a);
    slim_file_map_close(&b);
    ck_assert_ptr_null(a.data);
    slim_file_map_close(&a); /* twice is harmless */
    slim_file_map_close(NULL);
    ck_assert_int_eq(slim_file_map_open("tests/data/no-such-file", false, &a), SLIM_ERR_IO);
    ck_assert_ptr_nonnull(strstr(slim_last_error(), "tests/data/no-such-file"));
    free(buf);
}
END_TEST

/* ---- hand-built files ------------------------------------------------------------------------ */

typedef struct builder {
    uint8_t buf[1 << 17];
    size_t n;
} builder;

static void b_bytes(builder *b, const void *p, size_t n) {
    ck_assert_uint_le(b->n + n, sizeof b->buf);
    memcpy(b->buf + b->n, p, n);
    b->n += n;
}
static void b_u32(builder *b, uint32_t v) { b_bytes(b, &v, 4); }
static void b_u64(builder *b, uint64_t v) { b_bytes(b, &v, 8); }
static void b_str(builder *b, const char *s) {
    b_u64(b, strlen(s));
    b_bytes(b, s, strlen(s));
}
static void b_header(builder *b, uint64_t nt, uint64_t nkv) {
    b->n = 0;
    b_bytes(b, "GGUF", 4);
    b_u32(b, 3);
    b_u64(b, nt);
    b_u64(b, nkv);
}
static void b_pad(builder *b, size_t align) {
    while (b->n % align)
        b_bytes(b, "", 1);
}
static slim_status b_open(builder *b, slim_gguf **g) {
    uint8_t *copy = malloc(b->n ? b->n : 1); /* exact size, so ASan sees any overread */
    memcpy(copy, b->buf, b->n);
    slim_error_clear();
    slim_status s = slim_gguf_open_memory(copy, b->n, g);
    if (s == SLIM_OK) slim_gguf_close(*g);
    free(copy);
    return s;
}

START_TEST(test_built_files) {
    static builder bb;
    builder *b = &bb;
    slim_gguf *g;

    b_header(b, 0, 0); /* the smallest valid file */
    ck_assert_int_eq(b_open(b, &g), SLIM_OK);

    b_header(b, 0, 2); /* empty arrays are fine */
    b_str(b, "a.empty");
    b_u32(b, SLIM_GGUF_ARRAY);
    b_u32(b, SLIM_GGUF_STRING);
    b_u64(b, 0);
    b_str(b, "b.empty");
    b_u32(b, SLIM_GGUF_ARRAY);
    b_u32(b, SLIM_GGUF_FLOAT64);
    b_u64(b, 0);
    ck_assert_int_eq(b_open(b, &g), SLIM_OK);

    b_header(b, 0, 1); /* nested arrays: unsupported */
    b_str(b, "nested");
    b_u32(b, SLIM_GGUF_ARRAY);
    b_u32(b, SLIM_GGUF_ARRAY);
    b_u64(b, 1);
    b_u32(b, SLIM_GGUF_UINT8);
    b_u64(b, 1);
    b_bytes(b, "x", 1);
    ck_assert_int_eq(b_open(b, &g), SLIM_ERR_UNSUPPORTED);
    ck_assert_ptr_nonnull(strstr(slim_last_error(), "nested"));

    b_header(b, 0, 1); /* a string array whose count exceeds what the bytes could hold */
    b_str(b, "big");
    b_u32(b, SLIM_GGUF_ARRAY);
    b_u32(b, SLIM_GGUF_STRING);
    b_u64(b, UINT64_C(1) << 61);
    b_u64(b, 0);
    ck_assert_int_eq(b_open(b, &g), SLIM_ERR_FORMAT);
    ck_assert_str_eq(slim_last_error(),
                     "gguf: key #0 ('big'): array of 2305843009213693952 strings exceeds "
                     "remaining 8 bytes at offset 0x2b");

    b_header(b, 0, 1); /* the message from the brief */
    b_str(b, "general.name");
    b_u32(b, SLIM_GGUF_STRING);
    b_u64(b, UINT64_MAX);
    b_bytes(b, "0123456789", 10);
    ck_assert_int_eq(b_open(b, &g), SLIM_ERR_FORMAT);
    ck_assert_str_eq(slim_last_error(),
                     "gguf: key #0 ('general.name'): string length 18446744073709551615 exceeds "
                     "remaining 10 bytes at offset 0x30");

    b_header(b, 0, 1); /* a key longer than 65535 bytes */
    b_u64(b, 70000);
    for (int i = 0; i < 70000; i++)
        b_bytes(b, "k", 1);
    b_u32(b, SLIM_GGUF_UINT8);
    b_bytes(b, "", 1);
    ck_assert_int_eq(b_open(b, &g), SLIM_ERR_FORMAT);

    /* Two tensors sharing their data (overlap is allowed), default alignment 32. */
    b_header(b, 2, 0);
    for (int i = 0; i < 2; i++) {
        b_str(b, i ? "t1" : "t0");
        b_u32(b, 1);
        b_u64(b, 8);
        b_u32(b, SLIM_DTYPE_F32);
        b_u64(b, 0);
    }
    b_pad(b, 32);
    size_t data_at = b->n;
    for (int i = 0; i < 8; i++)
        b_bytes(b, "\0\0\x80\x3f", 4);
    uint8_t *copy = malloc(b->n);
    memcpy(copy, b->buf, b->n);
    ck_assert_int_eq(slim_gguf_open_memory(copy, b->n, &g), SLIM_OK);
    ck_assert_uint_eq(g->alignment, 32);
    ck_assert_uint_eq(g->data_offset, data_at);
    ck_assert_ptr_eq(g->tensors[0].data, g->tensors[1].data);
    ck_assert_uint_eq(g->tensors[1].size, 32);
    slim_gguf_close(g);
    free(copy);
    b->n -= 1; /* one byte short */
    ck_assert_int_eq(b_open(b, &g), SLIM_ERR_FORMAT);
    ck_assert_ptr_nonnull(strstr(slim_last_error(), "tensor 't0': data"));

    /* A 4-D tensor whose element count overflows int64. */
    b_header(b, 1, 0);
    b_str(b, "huge");
    b_u32(b, 4);
    b_u64(b, UINT64_C(1) << 20);
    b_u64(b, UINT64_C(1) << 20);
    b_u64(b, UINT64_C(1) << 20);
    b_u64(b, UINT64_C(1) << 4);
    b_u32(b, SLIM_DTYPE_F32);
    b_u64(b, 0);
    ck_assert_int_eq(b_open(b, &g), SLIM_ERR_FORMAT);
    ck_assert_ptr_nonnull(strstr(slim_last_error(), "overflows"));
    /* ... and one whose element count fits but byte size does not. */
    b_header(b, 1, 0);
    b_str(b, "huge");
    b_u32(b, 2);
    b_u64(b, UINT64_C(1) << 31);
    b_u64(b, UINT64_C(1) << 31);
    b_u32(b, SLIM_DTYPE_F32);
    b_u64(b, 0);
    ck_assert_int_eq(b_open(b, &g), SLIM_ERR_FORMAT);
    ck_assert_ptr_nonnull(strstr(slim_last_error(), "byte size"));
}
END_TEST

/* ---- the malformed corpus ---------------------------------------------------------------------
 */

typedef enum fkind {
    FK_MAGIC,
    FK_VERSION,
    FK_NT,
    FK_NKV,
    FK_KEY_LEN,
    FK_KEY,
    FK_KV_TYPE,
    FK_STR_LEN,
    FK_BOOL,
    FK_ALIGN,
    FK_ARR_TYPE,
    FK_ARR_N,
    FK_ARR_STR_LEN,
    FK_ARR_BOOL,
    FK_NAME_LEN,
    FK_NAME,
    FK_NDIMS,
    FK_NE,
    FK_TTYPE,
    FK_TOFF,
} fkind;

typedef struct field {
    fkind kind;
    size_t off, len;
    int idx;      /* key or tensor index */
    uint32_t sub; /* FK_ARR_N: element type; FK_NE: dim; FK_TTYPE: type */
} field;

typedef struct layout {
    field f[512];
    int n;
    size_t info_end, data_end;
} layout;

static void add_field(layout *l, fkind k, size_t off, size_t len, int idx, uint32_t sub) {
    ck_assert_int_lt(l->n, 512);
    l->f[l->n++] = (field){k, off, len, idx, sub};
}

static uint32_t get32(const uint8_t *p, size_t off) {
    uint32_t v;
    memcpy(&v, p + off, 4);
    return v;
}
static uint64_t get64(const uint8_t *p, size_t off) {
    uint64_t v;
    memcpy(&v, p + off, 8);
    return v;
}

/* A trusting walker over the (known-good) fixture that records every field. */
static void walk(const uint8_t *p, size_t size, layout *l) {
    static const size_t esz[] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};
    memset(l, 0, sizeof *l);
    add_field(l, FK_MAGIC, 0, 4, 0, 0);
    add_field(l, FK_VERSION, 4, 4, 0, 0);
    add_field(l, FK_NT, 8, 8, 0, 0);
    add_field(l, FK_NKV, 16, 8, 0, 0);
    uint64_t nt = get64(p, 8), nkv = get64(p, 16);
    size_t o = 24;
    for (int i = 0; i < (int)nkv; i++) {
        uint64_t kl = get64(p, o);
        add_field(l, FK_KEY_LEN, o, 8, i, 0);
        add_field(l, FK_KEY, o + 8, kl, i, 0);
        bool is_align = kl == 17 && memcmp(p + o + 8, "general.alignment", 17) == 0;
        o += 8 + kl;
        uint32_t t = get32(p, o);
        add_field(l, FK_KV_TYPE, o, 4, i, 0);
        o += 4;
        if (t == SLIM_GGUF_STRING) {
            add_field(l, FK_STR_LEN, o, 8, i, 0);
            o += 8 + get64(p, o);
        } else if (t == SLIM_GGUF_ARRAY) {
            uint32_t et = get32(p, o);
            add_field(l, FK_ARR_TYPE, o, 4, i, 0);
            uint64_t n = get64(p, o + 4);
            add_field(l, FK_ARR_N, o + 4, 8, i, et);
            o += 12;
            for (uint64_t j = 0; j < n; j++) {
                if (et == SLIM_GGUF_STRING) {
                    add_field(l, FK_ARR_STR_LEN, o, 8, i, 0);
                    o += 8 + get64(p, o);
                } else {
                    if (et == SLIM_GGUF_BOOL) add_field(l, FK_ARR_BOOL, o, 1, i, 0);
                    o += esz[et];
                }
            }
        } else {
            if (t == SLIM_GGUF_BOOL) add_field(l, FK_BOOL, o, 1, i, 0);
            if (is_align) add_field(l, FK_ALIGN, o, 4, i, 0);
            o += esz[t];
        }
        ck_assert_uint_le(o, size);
    }
    size_t data_end = 0, tensor_offs[16], tensor_sizes[16];
    ck_assert_uint_le(nt, 16);
    for (int i = 0; i < (int)nt; i++) {
        uint64_t nl = get64(p, o);
        add_field(l, FK_NAME_LEN, o, 8, i, 0);
        add_field(l, FK_NAME, o + 8, nl, i, 0);
        o += 8 + nl;
        uint32_t nd = get32(p, o);
        add_field(l, FK_NDIMS, o, 4, i, 0);
        o += 4;
        int64_t nel = 1, ne0 = 0;
        for (uint32_t d = 0; d < nd; d++) {
            add_field(l, FK_NE, o, 8, i, d);
            nel *= (int64_t)get64(p, o);
            if (d == 0) ne0 = (int64_t)get64(p, o);
            o += 8;
        }
        uint32_t type = get32(p, o);
        add_field(l, FK_TTYPE, o, 4, i, type);
        o += 4;
        add_field(l, FK_TOFF, o, 8, i, 0);
        tensor_offs[i] = get64(p, o);
        o += 8;
        const slim_dtype_traits *tr = slim_dtype_traits_of((int)type);
        ck_assert_ptr_nonnull(tr);
        tensor_sizes[i] = (size_t)(nel / ne0 * (ne0 / tr->block_size) * tr->type_size);
    }
    l->info_end = o;
    size_t data_off = (o + 63) / 64 * 64;
    ck_assert_uint_eq(data_off, TINY_DATA_OFFSET);
    for (int i = 0; i < (int)nt; i++)
        if (data_off + tensor_offs[i] + tensor_sizes[i] > data_end)
            data_end = data_off + tensor_offs[i] + tensor_sizes[i];
    l->data_end = data_end;
    ck_assert_uint_le(data_end, size);
}

static int n_cases;
static int n_by_status[16];

/* Open buf[0..n) (copied into an exact-size allocation) and expect `want`. */
static void expect(const uint8_t *buf, size_t n, slim_status want, const char *what) {
    uint8_t *copy = malloc(n ? n : 1);
    ck_assert_ptr_nonnull(copy);
    memcpy(copy, buf, n);
    slim_gguf *g = (slim_gguf *)&g;
    slim_error_clear();
    slim_status s = slim_gguf_open_memory(copy, n, &g);
    ck_assert_msg(s == want, "%s: status %d (%s), want %d", what, s, slim_last_error(), want);
    if (s == SLIM_OK) {
        slim_gguf_close(g);
    } else {
        ck_assert_msg(g == NULL, "%s: *out not NULL on error", what);
        ck_assert_msg(slim_last_error()[0] != '\0', "%s: empty error message", what);
        ck_assert_msg(strncmp(slim_last_error(), "gguf: ", 6) == 0, "%s: %s", what,
                      slim_last_error());
        n_cases++;
        n_by_status[s & 15]++;
    }
    free(copy);
}

static void patch(const uint8_t *base, size_t size, size_t off, const void *bytes, size_t len,
                  slim_status want, const char *what) {
    uint8_t *m = malloc(size);
    memcpy(m, base, size);
    memcpy(m + off, bytes, len);
    expect(m, size, want, what);
    free(m);
}
static void patch32(const uint8_t *base, size_t size, size_t off, uint32_t v, slim_status want,
                    const char *what) {
    patch(base, size, off, &v, 4, want, what);
}
static void patch64(const uint8_t *base, size_t size, size_t off, uint64_t v, slim_status want,
                    const char *what) {
    patch(base, size, off, &v, 8, want, what);
}

START_TEST(test_malformed_corpus) {
    size_t size;
    uint8_t *tiny = test_read_whole(TINY, &size);
    static layout L;
    walk(tiny, size, &L);
    char what[160];
    n_cases = 0;
    memset(n_by_status, 0, sizeof n_by_status);
    expect(tiny, size, SLIM_OK, "the fixture itself");

    /* Truncation: every length through the tensor infos, then a spread through the data
     * up to the end of the last tensor (the trailing padding after it is optional). */
    for (size_t n = 0; n < L.data_end; n += n <= L.info_end + 64 ? 1 : 7) {
        snprintf(what, sizeof what, "truncated to %zu bytes", n);
        expect(tiny, n, SLIM_ERR_FORMAT, what);
    }
    expect(tiny, L.data_end - 1, SLIM_ERR_FORMAT, "truncated by one byte");
    expect(tiny, L.data_end, SLIM_OK, "truncated after the last tensor");

    const uint64_t huge[] = {UINT64_C(1) << 63, UINT64_MAX,         UINT64_MAX - 7,
                             INT64_MAX,         UINT64_C(1) << 32,  (UINT64_C(1) << 32) + 1,
                             (uint64_t)size,    (uint64_t)size + 1, UINT64_C(1) << 20};
    const size_t n_huge = sizeof huge / sizeof huge[0];
    static const uint8_t *bad_utf8[] = {
        (const uint8_t *)"\xff",
        (const uint8_t *)"\xc0\x80", /* overlong NUL */
        (const uint8_t *)"\xc1\xbf",
        (const uint8_t *)"\x80",         /* lone continuation */
        (const uint8_t *)"\xed\xa0\x80", /* surrogate U+D800 */
        (const uint8_t *)"\xed\xbf\xbf", /* surrogate U+DFFF */
        (const uint8_t *)"\xe0\x80\xaf", /* overlong '/' */
        (const uint8_t *)"\xf0\x80\x80\xaf",
        (const uint8_t *)"\xf4\x90\x80\x80", /* > U+10FFFF */
        (const uint8_t *)"\xf8\x88\x80\x80",
        (const uint8_t *)"\xe2\x82", /* cut short */
    };
    const size_t bad_utf8_len[] = {1, 2, 2, 1, 3, 3, 3, 4, 4, 4, 2};

    for (int fi = 0; fi < L.n; fi++) {
        const field *f = &L.f[fi];
        switch (f->kind) {
        case FK_MAGIC:
            for (int b = 0; b < 4; b++) {
                uint8_t v = tiny[b] ^ 0x20;
                snprintf(what, sizeof what, "magic byte %d", b);
                patch(tiny, size, (size_t)b, &v, 1, SLIM_ERR_FORMAT, what);
            }
            break;
        case FK_VERSION: {
            const uint32_t vs[] = {0, 1, 4, 5, 0x01000000, 0x02000000, 0x03000000, 0xffffffff};
            for (size_t k = 0; k < sizeof vs / sizeof vs[0]; k++) {
                snprintf(what, sizeof what, "version 0x%x", vs[k]);
                patch32(tiny, size, f->off, vs[k], SLIM_ERR_UNSUPPORTED, what);
            }
            break;
        }
        case FK_NT:
        case FK_NKV:
        case FK_KEY_LEN:
        case FK_STR_LEN:
        case FK_ARR_N:
        case FK_ARR_STR_LEN:
        case FK_NAME_LEN:
            for (size_t k = 0; k < n_huge; k++) {
                snprintf(what, sizeof what, "field kind %d #%d at 0x%zx = %llu", f->kind, f->idx,
                         f->off, (unsigned long long)huge[k]);
                patch64(tiny, size, f->off, huge[k], SLIM_ERR_FORMAT, what);
            }
            if (f->kind == FK_KEY_LEN || f->kind == FK_NAME_LEN) {
                snprintf(what, sizeof what, "empty name #%d", f->idx);
                patch64(tiny, size, f->off, 0, SLIM_ERR_FORMAT, what);
            }
            break;
        case FK_KEY:
        case FK_NAME:
            for (size_t k = 0; k < sizeof bad_utf8 / sizeof bad_utf8[0]; k++) {
                if (bad_utf8_len[k] > f->len) continue;
                /* the cut-short sequence goes at the end, the others at the start */
                size_t at = k == 10 ? f->off + f->len - bad_utf8_len[k] : f->off;
                snprintf(what, sizeof what, "bad UTF-8 #%zu in %s #%d", k,
                         f->kind == FK_KEY ? "key" : "tensor name", f->idx);
                patch(tiny, size, at, bad_utf8[k], bad_utf8_len[k], SLIM_ERR_FORMAT, what);
            }
            snprintf(what, sizeof what, "NUL in name #%d", f->idx);
            patch(tiny, size, f->off + f->len / 2, "", 1, SLIM_ERR_FORMAT, what);
            break;
        case FK_KV_TYPE: {
            const uint32_t ts[] = {13, 14, 100, 0x80000000, 0xffffffff};
            for (size_t k = 0; k < sizeof ts / sizeof ts[0]; k++) {
                snprintf(what, sizeof what, "kv #%d type %u", f->idx, ts[k]);
                patch32(tiny, size, f->off, ts[k], SLIM_ERR_FORMAT, what);
            }
            break;
        }
        case FK_ARR_TYPE: {
            const uint32_t ts[] = {13, 0xffffffff};
            for (size_t k = 0; k < 2; k++) {
                snprintf(what, sizeof what, "kv #%d array type %u", f->idx, ts[k]);
                patch32(tiny, size, f->off, ts[k], SLIM_ERR_FORMAT, what);
            }
            snprintf(what, sizeof what, "kv #%d nested array", f->idx);
            patch32(tiny, size, f->off, SLIM_GGUF_ARRAY, SLIM_ERR_UNSUPPORTED, what);
            break;
        }
        case FK_BOOL:
        case FK_ARR_BOOL: {
            const uint8_t vs[] = {2, 0x80, 0xff};
            for (size_t k = 0; k < sizeof vs; k++) {
                snprintf(what, sizeof what, "kv #%d bool at 0x%zx = %u", f->idx, f->off, vs[k]);
                patch(tiny, size, f->off, &vs[k], 1, SLIM_ERR_FORMAT, what);
            }
            break;
        }
        case FK_ALIGN: {
            const uint32_t vs[] = {0, 3, 48, 0x80000001, 0xffffffff};
            for (size_t k = 0; k < sizeof vs / sizeof vs[0]; k++) {
                snprintf(what, sizeof what, "alignment %u", vs[k]);
                patch32(tiny, size, f->off, vs[k], SLIM_ERR_FORMAT, what);
            }
            /* the same 4 bytes typed int32 / float32: not a uint32 */
            patch32(tiny, size, f->off - 4, SLIM_GGUF_INT32, SLIM_ERR_FORMAT, "alignment int32");
            patch32(tiny, size, f->off - 4, SLIM_GGUF_FLOAT32, SLIM_ERR_FORMAT,
                    "alignment float32");
            break;
        }
        case FK_NDIMS: {
            const uint32_t vs[] = {0, 5, 0x80000000, 0xffffffff};
            for (size_t k = 0; k < sizeof vs / sizeof vs[0]; k++) {
                snprintf(what, sizeof what, "tensor #%d n_dims %u", f->idx, vs[k]);
                patch32(tiny, size, f->off, vs[k], SLIM_ERR_FORMAT, what);
            }
            break;
        }
        case FK_NE: {
            const uint64_t vs[] = {0,
                                   UINT64_C(1) << 63,
                                   UINT64_MAX,
                                   INT64_MAX,
                                   UINT64_C(1) << 62,
                                   UINT64_C(1) << 32,
                                   (uint64_t)size * 256};
            for (size_t k = 0; k < sizeof vs / sizeof vs[0]; k++) {
                snprintf(what, sizeof what, "tensor #%d ne[%u] = %llu", f->idx, f->sub,
                         (unsigned long long)vs[k]);
                patch64(tiny, size, f->off, vs[k], SLIM_ERR_FORMAT, what);
            }
            const slim_dtype_traits *tr = slim_dtype_traits_of(tiny_tensors[f->idx].type);
            if (f->sub == 0 && tr->block_size > 1) { /* ne[0] not a multiple of the block */
                uint64_t ne0 = get64(tiny, f->off) + 1;
                snprintf(what, sizeof what, "tensor #%d ne[0] = %llu", f->idx,
                         (unsigned long long)ne0);
                patch64(tiny, size, f->off, ne0, SLIM_ERR_FORMAT, what);
            }
            break;
        }
        case FK_TTYPE: {
            const uint32_t ts[] = {4, 5, 31, 39, 40, 41, 1000, 0x7fffffff, 0x80000000, 0xffffffff};
            for (size_t k = 0; k < sizeof ts / sizeof ts[0]; k++) {
                if (ts[k] <= INT_MAX && slim_dtype_traits_of((int)ts[k])) continue;
                snprintf(what, sizeof what, "tensor #%d type %u", f->idx, ts[k]);
                patch32(tiny, size, f->off, ts[k], SLIM_ERR_UNSUPPORTED, what);
            }
            break;
        }
        case FK_TOFF: {
            uint64_t off = get64(tiny, f->off);
            const uint64_t vs[] = {
                off + 1,           off + 32,   off + 63,        (size + 63) / 64 * 64,
                UINT64_C(1) << 63, UINT64_MAX, UINT64_MAX - 63, /* aligned; overflows when added */
                INT64_MAX};
            for (size_t k = 0; k < sizeof vs / sizeof vs[0]; k++) {
                snprintf(what, sizeof what, "tensor #%d offset 0x%llx", f->idx,
                         (unsigned long long)vs[k]);
                patch64(tiny, size, f->off, vs[k], SLIM_ERR_FORMAT, what);
            }
            break;
        }
        }
    }

    /* Duplicates: make a key equal to another of the same length (test.u8 -> test.i8),
     * and a tensor name equal to another (f32.2d -> f32.1d). */
    int dup_keys = 0, dup_names = 0;
    for (int a = 0; a < L.n; a++)
        for (int b = a + 1; b < L.n; b++) {
            const field *fa = &L.f[a], *fb = &L.f[b];
            if (fa->kind != fb->kind || (fa->kind != FK_KEY && fa->kind != FK_NAME) ||
                fa->len != fb->len)
                continue;
            snprintf(what, sizeof what, "duplicate %s #%d = #%d",
                     fa->kind == FK_KEY ? "key" : "tensor", fb->idx, fa->idx);
            patch(tiny, size, fb->off, tiny + fa->off, fa->len, SLIM_ERR_FORMAT, what);
            if (fa->kind == FK_KEY)
                dup_keys++;
            else
                dup_names++;
        }
    ck_assert_int_gt(dup_keys, 0);
    ck_assert_int_gt(dup_names, 0);

    fprintf(stderr, "gguf: %d malformed cases rejected (%d format, %d unsupported)\n", n_cases,
            n_by_status[SLIM_ERR_FORMAT], n_by_status[SLIM_ERR_UNSUPPORTED]);
    ck_assert_int_ge(n_cases, 200);
    ck_assert_int_eq(n_cases, n_by_status[SLIM_ERR_FORMAT] + n_by_status[SLIM_ERR_UNSUPPORTED]);
    free(tiny);
}
END_TEST

START_TEST(test_error_messages) {
    size_t size;
    uint8_t *tiny = test_read_whole(TINY, &size);
    static layout L;
    walk(tiny, size, &L);
    slim_gguf *g;
    uint8_t *m = malloc(size);

    memcpy(m, tiny, size);
    m[4] = 1;
    ck_assert_int_eq(slim_gguf_open_memory(m, size, &g), SLIM_ERR_UNSUPPORTED);
    ck_assert_ptr_nonnull(strstr(slim_last_error(), "version 1"));
    memcpy(m, tiny, size);
    memcpy(m + 4, "\0\0\0\3", 4);
    ck_assert_int_eq(slim_gguf_open_memory(m, size, &g), SLIM_ERR_UNSUPPORTED);
    ck_assert_ptr_nonnull(strstr(slim_last_error(), "big-endian"));

    for (int i = 0; i < L.n; i++) {
        const field *f = &L.f[i];
        memcpy(m, tiny, size);
        if (f->kind == FK_TTYPE && f->idx == 4) { /* q8_0.2d */
            uint32_t v = 1000;
            memcpy(m + f->off, &v, 4);
            ck_assert_int_eq(slim_gguf_open_memory(m, size, &g), SLIM_ERR_UNSUPPORTED);
            char want[128];
            snprintf(want, sizeof want,
                     "gguf: tensor 'q8_0.2d': unknown tensor type 1000 at offset 0x%zx", f->off);
            ck_assert_str_eq(slim_last_error(), want);
        }
        if (f->kind == FK_TOFF && f->idx == 1) { /* f32.2d, misaligned */
            uint64_t v = 65;
            memcpy(m + f->off, &v, 8);
            ck_assert_int_eq(slim_gguf_open_memory(m, size, &g), SLIM_ERR_FORMAT);
            ck_assert_ptr_nonnull(strstr(slim_last_error(), "tensor 'f32.2d'"));
            ck_assert_ptr_nonnull(strstr(slim_last_error(), "alignment 64"));
        }
        if (f->kind == FK_KEY && f->idx == 3) { /* key #3: test.i8 */
            m[f->off + 1] = 0xC0;
            ck_assert_int_eq(slim_gguf_open_memory(m, size, &g), SLIM_ERR_FORMAT);
            char want[128];
            snprintf(want, sizeof want,
                     "gguf: key #3: key is not valid UTF-8 (byte 0xc0 at offset 0x%zx)",
                     f->off + 1);
            ck_assert_str_eq(slim_last_error(), want);
        }
        if (f->kind == FK_KV_TYPE && f->idx == 4) {
            uint32_t v = 77;
            memcpy(m + f->off, &v, 4);
            ck_assert_int_eq(slim_gguf_open_memory(m, size, &g), SLIM_ERR_FORMAT);
            char want[128];
            snprintf(want, sizeof want,
                     "gguf: key #4 ('test.u16'): unknown value type 77 at offset 0x%zx", f->off);
            ck_assert_str_eq(slim_last_error(), want);
        }
    }
    free(m);
    free(tiny);
}
END_TEST

/* ---- the real model ----------------------------------------------------------------------------
 */

START_TEST(test_real_model) {
    const char *path = test_model_path();
    if (access(path, R_OK) != 0) {
        fprintf(stderr, "gguf: %s not present, real-model test skipped\n", path);
        return;
    }
    slim_gguf *g = NULL;
    ck_assert_msg(slim_gguf_open(path, true, &g) == SLIM_OK, "%s", slim_last_error());
    ck_assert_uint_eq(g->version, 3);
    ck_assert_uint_eq(g->n_kv, 33);
    ck_assert_uint_eq(g->n_tensors, 236);
    ck_assert_uint_eq(g->alignment, 32);
    uint32_t u;
    ck_assert(slim_gguf_get_u32(g, "gemma3.block_count", &u) && u == 18);
    ck_assert(slim_gguf_get_u32(g, "gemma3.embedding_length", &u) && u == 640);
    slim_gguf_str s;
    ck_assert(slim_gguf_get_str(g, "general.architecture", &s) && str_eq(s, "gemma3"));
    float f;
    ck_assert(slim_gguf_get_f32(g, "gemma3.rope.freq_base", &f) && f == 1e6f);
    const slim_gguf_kv *tok;
    ck_assert(slim_gguf_get_arr(g, "tokenizer.ggml.tokens", SLIM_GGUF_STRING, &tok));
    ck_assert_uint_eq(tok->arr_n, 262144);
    ck_assert(str_eq(tok->arr_strs[2], "<bos>"));
    char buf[128];
    slim_gguf_format_value(tok, buf, sizeof buf);
    ck_assert_msg(strncmp(buf, "[string; 262144] ['<pad>', '<eos>', '<bos>', '<unk>'", 52) == 0,
                  "%s", buf);
    const slim_gguf_tensor *t = slim_gguf_find_tensor(g, "token_embd.weight");
    ck_assert_ptr_nonnull(t);
    ck_assert_int_eq(t->type, SLIM_DTYPE_Q8_0);
    ck_assert_int_eq(t->n_dims, 2);
    ck_assert(t->ne[0] == 640 && t->ne[1] == 262144 && t->ne[2] == 1 && t->ne[3] == 1);
    ck_assert_uint_eq(t->size, 640 / 32 * 34 * 262144);
    ck_assert_uint_eq(t->offset, 6527680); /* absolute, as gguf-py reports it */
    uint64_t total = 0;
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        ck_assert_uint_le(g->tensors[i].offset + g->tensors[i].size, g->map.size);
        total += g->tensors[i].size;
    }
    ck_assert_uint_le(total, g->map.size);
    slim_gguf_close(g);
}
END_TEST

Suite *suite_gguf(void) {
    Suite *s = suite_create("gguf");
    TCase *tc = tcase_create("reader");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_tiny_open);
    tcase_add_test(tc, test_tiny_v2);
    tcase_add_test(tc, test_getters);
    tcase_add_test(tc, test_format_value);
    tcase_add_test(tc, test_file_errors);
    tcase_add_test(tc, test_built_files);
    tcase_add_test(tc, test_error_messages);
    tcase_add_test(tc, test_malformed_corpus);
    tcase_add_test(tc, test_real_model);
    suite_add_tcase(s, tc);
    return s;
}
