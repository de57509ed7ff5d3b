/* Core: status strings, the last-error message, the log callback, fp16/bf16
 * conversion, and the thread pool. */
#include <math.h>
#include <stdatomic.h>
#include <string.h>

#include "core/error.h"
#include "core/fp16.h"
#include "core/threadpool.h"
#include "suites.h"

START_TEST(test_status_strings) {
    for (int s = SLIM_OK; s <= SLIM_ERR_INTERNAL; s++) {
        const char *str = slim_status_string((slim_status)s);
        ck_assert_ptr_nonnull(str);
        ck_assert_str_ne(str, "unknown status");
    }
    ck_assert_str_eq(slim_status_string((slim_status)999), "unknown status");
    ck_assert_int_eq(SLIM_ERR_FORMAT, 4); /* pinned values */
    ck_assert_int_eq(SLIM_ERR_BUFFER_TOO_SMALL, 9);
    ck_assert_uint_eq(slim_version_number(), SLIM_VERSION_NUMBER);
    ck_assert_str_eq(slim_version_string(), SLIM_VERSION_STRING);
}
END_TEST

START_TEST(test_last_error) {
    slim_error_clear();
    ck_assert_str_eq(slim_last_error(), "");
    ck_assert_int_eq(slim_error(SLIM_ERR_FORMAT, "tensor %s: bad", "x"), SLIM_ERR_FORMAT);
    ck_assert_str_eq(slim_last_error(), "tensor x: bad");
    ck_assert_int_eq(slim_error_prefix(SLIM_ERR_FORMAT, "file.gguf"), SLIM_ERR_FORMAT);
    ck_assert_str_eq(slim_last_error(), "file.gguf: tensor x: bad");
    char big[4000];
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = 0;
    slim_error(SLIM_ERR_IO, "%s", big); /* truncated, never overflows */
    ck_assert_uint_lt(strlen(slim_last_error()), 1024);
    slim_error_prefix(SLIM_ERR_IO, "%s", big);
    ck_assert_uint_lt(strlen(slim_last_error()), 1024);
}
END_TEST

static int log_calls;
static char log_last[256];
static void log_cb(slim_log_level level, const char *msg, void *user) {
    (void)level;
    log_calls += *(int *)user;
    strncpy(log_last, msg, sizeof log_last - 1);
}

START_TEST(test_log_callback) {
    int one = 1;
    slim_set_log_callback(log_cb, &one, SLIM_LOG_WARN);
    slim_log(SLIM_LOG_WARN, "hello %d", 7);
    slim_log(SLIM_LOG_DEBUG, "not shown");
    ck_assert_int_eq(log_calls, 1);
    ck_assert_str_eq(log_last, "hello 7");
    slim_set_log_callback(NULL, NULL, SLIM_LOG_INFO);
    slim_log(SLIM_LOG_ERROR, "silent");
    ck_assert_int_eq(log_calls, 1);
}
END_TEST

START_TEST(test_fp16_roundtrip) {
    /* Every finite half converts to float and back unchanged. */
    for (uint32_t h = 0; h < 0x10000; h++) {
        if ((h & 0x7c00) == 0x7c00) continue;
        ck_assert_uint_eq(slim_f32_to_fp16(slim_fp16_to_f32((uint16_t)h)), h);
    }
    ck_assert_float_eq(slim_fp16_to_f32(0x3c00), 1.0f);
    ck_assert_float_eq(slim_fp16_to_f32(0xc000), -2.0f);
    ck_assert_float_eq(slim_fp16_to_f32(0x0001), 5.9604644775390625e-08f);
    ck_assert_uint_eq(slim_f32_to_fp16(65520.0f), 0x7c00);           /* rounds to inf */
    ck_assert_uint_eq(slim_f32_to_fp16(1.0f + 1.0f / 2048), 0x3c00); /* tie to even */
    ck_assert_uint_eq(slim_f32_to_fp16(1.0f + 3.0f / 2048), 0x3c02);
    ck_assert(isnan(slim_fp16_to_f32(slim_f32_to_fp16(NAN))));
    ck_assert_float_eq(slim_bf16_to_f32(0x3f80), 1.0f);
    ck_assert_uint_eq(slim_f32_to_bf16(1.0f), 0x3f80);
    ck_assert_uint_eq(slim_f32_to_bf16(slim_bits_to_f32(0x3f808000u)), 0x3f80); /* tie: even */
    ck_assert_uint_eq(slim_f32_to_bf16(slim_bits_to_f32(0x3f818000u)), 0x3f82);
    ck_assert(isnan(slim_bf16_to_f32(slim_f32_to_bf16(NAN))));
}
END_TEST

typedef struct {
    atomic_int hits[8];
    atomic_long sum;
} pool_probe;

static void probe_task(void *arg, int ith, int nth) {
    pool_probe *p = arg;
    atomic_fetch_add(&p->hits[ith], 1);
    atomic_fetch_add(&p->sum, nth);
}

START_TEST(test_threadpool) {
    for (int n = 1; n <= 4; n++) {
        slim_threadpool *pool = NULL;
        ck_assert_int_eq(slim_threadpool_create(n, &pool), SLIM_OK);
        ck_assert_int_eq(slim_threadpool_size(pool), n);
        pool_probe probe = {0};
        for (int round = 0; round < 2000; round++)
            slim_threadpool_run(pool, probe_task, &probe);
        for (int i = 0; i < n; i++)
            ck_assert_int_eq(atomic_load(&probe.hits[i]), 2000);
        ck_assert_int_eq(atomic_load(&probe.sum), 2000L * n * n);
        slim_threadpool_free(pool);
    }
    slim_threadpool *pool = (slim_threadpool *)1;
    ck_assert_int_eq(slim_threadpool_create(0, &pool), SLIM_ERR_INVALID_ARG);
    ck_assert_ptr_null(pool);
    slim_threadpool_free(NULL);
}
END_TEST

Suite *suite_core(void) {
    Suite *s = suite_create("core");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_status_strings);
    tcase_add_test(tc, test_last_error);
    tcase_add_test(tc, test_log_callback);
    tcase_add_test(tc, test_fp16_roundtrip);
    tcase_add_test(tc, test_threadpool);
    suite_add_tcase(s, tc);
    return s;
}
