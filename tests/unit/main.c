/* The unit test runner: every suite in suites.h, Check's summary at the end.
 * CK_RUN_SUITE=name runs one suite (Check's own variable). */
#include <stdio.h>
#include <stdlib.h>

#include "suites.h"

int32_t test_argmax(const float *x, int32_t n) {
    int32_t best = 0;
    for (int32_t i = 1; i < n; i++)
        if (x[i] > x[best]) best = i;
    return best;
}

uint8_t *test_read_whole(const char *path, size_t *size) {
    FILE *f = fopen(path, "rb");
    ck_assert_msg(f != NULL, "cannot open %s (run from the repo root)", path);
    ck_assert_int_eq(fseek(f, 0, SEEK_END), 0);
    long n = ftell(f);
    ck_assert_int_ge(n, 0);
    rewind(f);
    uint8_t *buf = malloc((size_t)n + 1);
    ck_assert_ptr_nonnull(buf);
    ck_assert_uint_eq(fread(buf, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    *size = (size_t)n;
    return buf;
}

const char *test_model_path(void) {
    const char *p = getenv("SLIM_TEST_MODEL");
    return p && *p ? p : "models/gemma-3-270m-q4_k_m.gguf";
}

/* SmolLM2-135M-Instruct Q4_1 (SLIM_TEST_MODEL_SMOLLM2, else under models/). */
const char *test_model_path_smollm2(void) {
    const char *p = getenv("SLIM_TEST_MODEL_SMOLLM2");
    return p && *p ? p : "models/smollm2-135m-instruct-q4_1.gguf";
}

int main(void) {
    Suite *(*const suites[])(void) = {suite_core,
                                      suite_quant,
                                      suite_gguf,
                                      suite_json,
                                      suite_safetensors,
                                      suite_tokenizer,
                                      suite_tokenizer_refs,
                                      suite_sampler,
                                      suite_model,
                                      suite_api,
                                      suite_cli,
                                      suite_arch,
                                      suite_chat,
                                      suite_hf_tokenizer,
                                      suite_hf_model,
                                      suite_lora,
                                      suite_convert,
                                      suite_cpu,
                                      suite_weight_type,
                                      suite_batch,
                                      suite_kv_pool,
                                      suite_engine,
                                      suite_constrain,
                                      suite_repack_model};
    SRunner *sr = srunner_create(NULL);
    for (size_t i = 0; i < sizeof suites / sizeof suites[0]; i++)
        srunner_add_suite(sr, suites[i]());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
