/* Core: status strings, the last-error message, the log callback, fp16/bf16
 * conversion, and the thread pool. */
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/error.h"
#include "core/fp16.h"
#include "core/threadpool.h"
#include "suites.h"

START_TEST(test_status_strings) {
    for (int s = SLIM_OK; s <= SLIM_ERR_BUSY; s++) {
        const char *str = slim_status_string((slim_status)s);
        ck_assert_ptr_nonnull(str);
        ck_assert_str_ne(str, "unknown status");
    }
    ck_assert_str_eq(slim_status_string((slim_status)999), "unknown status");
    ck_assert_int_eq(SLIM_ERR_FORMAT, 4); /* pinned values */
    ck_assert_int_eq(SLIM_ERR_BUFFER_TOO_SMALL, 9);
    ck_assert_int_eq(SLIM_ERR_BUSY, 11);
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

/* One round's record: how often each part ran, the nth each call saw, and which threads ran. */
typedef struct {
    atomic_int hits[8];
    atomic_int nth_seen; /* the first call's nth; -1 once two calls disagree */
    atomic_int calls;
    pthread_t caller;
    int sleep_us;  /* > 0: parts on threads other than the caller sleep this long */
    int work_us;   /* each part spins this long first, so workers get to take parts */
    unsigned seed; /* > 0: a random part sleeps up to 200 us, whichever thread runs it */
} pool_round;

static double mono_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void sleep_us(int us) {
    struct timespec ts = {us / 1000000, (long)(us % 1000000) * 1000};
    nanosleep(&ts, NULL);
}

static void round_task(void *arg, int ith, int nth) {
    pool_round *r = arg;
    ck_assert(ith >= 0 && ith < 8 && nth >= 1 && ith < nth);
    int expected = 0;
    if (!atomic_compare_exchange_strong(&r->nth_seen, &expected, nth) && expected != nth)
        atomic_store(&r->nth_seen, -1);
    const double t0 = mono_s();
    while (mono_s() - t0 < r->work_us * 1e-6) {
    }
    if (r->sleep_us && !pthread_equal(pthread_self(), r->caller)) sleep_us(r->sleep_us);
    if (r->seed && (r->seed * 2654435761u >> 16) % 4 == (unsigned)ith)
        sleep_us((int)((r->seed * 40503u >> 8) % 200));
    atomic_fetch_add(&r->hits[ith], 1);
    atomic_fetch_add(&r->calls, 1);
}

/* One run: every part 0 .. nth-1 exactly once, one nth for all, 1 <= nth <= the pool's size,
 * and the pool tells which nth it used. */
static int run_round(slim_threadpool *pool, pool_round *r) {
    const int n = slim_threadpool_size(pool);
    for (int i = 0; i < 8; i++)
        atomic_store(&r->hits[i], 0);
    atomic_store(&r->nth_seen, 0);
    atomic_store(&r->calls, 0);
    r->caller = pthread_self();
    slim_threadpool_run(pool, round_task, r);
    const int nth = atomic_load(&r->nth_seen);
    ck_assert(nth >= 1 && nth <= n);
    ck_assert_int_eq(nth, slim_threadpool_active(pool));
    ck_assert_int_eq(atomic_load(&r->calls), nth);
    for (int i = 0; i < 8; i++)
        ck_assert_int_eq(atomic_load(&r->hits[i]), i < nth);
    return nth;
}

START_TEST(test_threadpool) {
    for (int n = 1; n <= 4; n++) {
        slim_threadpool *pool = NULL;
        ck_assert_int_eq(slim_threadpool_create(n, &pool), SLIM_OK);
        ck_assert_int_eq(slim_threadpool_size(pool), n);
        ck_assert_int_eq(slim_threadpool_active(pool), n);
        pool_round r = {0};
        for (int round = 0; round < 5000; round++)
            run_round(pool, &r);
        /* random sleeps in random parts, on whichever thread runs them */
        for (unsigned round = 1; round <= 1000; round++) {
            r.seed = round;
            run_round(pool, &r);
        }
        slim_threadpool_free(pool);
    }
    slim_threadpool *pool = (slim_threadpool *)1;
    ck_assert_int_eq(slim_threadpool_create(0, &pool), SLIM_ERR_INVALID_ARG);
    ck_assert_ptr_null(pool);
    ck_assert_int_eq(slim_threadpool_create(1025, &pool), SLIM_ERR_INVALID_ARG);
    slim_threadpool_free(NULL);
    ck_assert_int_eq(slim_threadpool_size(NULL), 1);
}
END_TEST

/* Workers that the OS does not run (here: that sleep 2 ms in every part they take) make the pool
 * drop threads until the caller runs alone; once they run again it takes them all back (where
 * the machine has the cores for them). */
START_TEST(test_threadpool_contention) {
    for (int n = 2; n <= 4; n++) {
        slim_threadpool *pool = NULL;
        ck_assert_int_eq(slim_threadpool_create(n, &pool), SLIM_OK);
        pool_round r = {.sleep_us = 2000, .work_us = 20};
        int lowest = n;
        /* bounded by time: on a loaded machine the workers may not run for a while */
        const double t1 = mono_s();
        while (lowest > 1 && mono_s() - t1 < 20.0) {
            const int nth = run_round(pool, &r);
            lowest = nth < lowest ? nth : lowest;
        }
        ck_assert_msg(lowest == 1, "%d threads: still %d after %.1f s of slow workers", n, lowest,
                      mono_s() - t1);
        r.sleep_us = 0;
        if (n > 2 && n > sysconf(_SC_NPROCESSORS_ONLN)) { /* they cannot all run at once anyway */
            slim_threadpool_free(pool);
            continue;
        }
        const double t0 = mono_s();
        while (slim_threadpool_active(pool) < n && mono_s() - t0 < 20.0)
            run_round(pool, &r);
        ck_assert_msg(slim_threadpool_active(pool) == n, "%d threads: %d after %.1f s", n,
                      slim_threadpool_active(pool), mono_s() - t0);
        slim_threadpool_free(pool);
    }
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
    /* up to 20 s a phase on a loaded machine */
    TCase *slow = tcase_create("threadpool_contention");
    tcase_set_timeout(slow, 150);
    tcase_add_test(slow, test_threadpool_contention);
    suite_add_tcase(s, slow);
    return s;
}
