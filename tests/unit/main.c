/* The unit test runner: every suite in suites.h, Check's summary at the end.
 * CK_RUN_SUITE=name runs one suite (Check's own variable). */
#include <stdlib.h>

#include "suites.h"

const char *test_model_path(void) {
    const char *p = getenv("SLIM_TEST_MODEL");
    return p && *p ? p : "models/gemma-3-270m-q4_k_m.gguf";
}

/* Weak while the suites are being written; a missing one fails the run unless
 * SLIM_ALLOW_MISSING_SUITES is set. */
#define SUITES(X)                                                                        \
    X(suite_core) X(suite_quant) X(suite_gguf) X(suite_tokenizer) X(suite_sampler)     \
        X(suite_model) X(suite_api) X(suite_cli)
#define DECLARE_WEAK(s) __attribute__((weak)) Suite *s(void);
SUITES(DECLARE_WEAK)

int main(void) {
    SRunner *sr = srunner_create(NULL);
    int missing = 0;
#define ADD(s)                                                                           \
    if (s)                                                                               \
        srunner_add_suite(sr, s());                                                      \
    else                                                                                 \
        missing++;
    SUITES(ADD)
    if (missing && !getenv("SLIM_ALLOW_MISSING_SUITES")) {
        srunner_free(sr);
        return 2;
    }
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 && !missing ? EXIT_SUCCESS : EXIT_FAILURE;
}
