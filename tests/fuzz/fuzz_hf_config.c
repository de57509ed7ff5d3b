/* libFuzzer: a Hugging Face config.json turned into hyper-parameters.  The
 * input is config.json of a directory whose weights are the tiny Llama test
 * checkpoint, loaded through slim_model_load: any config must load or be
 * refused with a message naming the key (mismatched shapes included). */
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static int ready;
    if (!ready) {
        fuzz_link("model.safetensors", "tests/data/hf/llama/model.safetensors");
        ready = 1;
    }
    fuzz_file(0, "config.json", data, size);
    slim_model *m = NULL;
    slim_status st = slim_model_load(fuzz_dir(), NULL, &m);
    fuzz_check(st);
    if (st == SLIM_OK) {
        slim_model_info info = {.struct_size = sizeof info};
        if (slim_model_get_info(m, &info) != SLIM_OK) abort();
    } else if (m) {
        abort();
    }
    slim_model_free(m);
    return 0;
}
