/* libFuzzer: chat template rendering of arbitrary messages, with the model's
 * own template or an override (a family name or a template text).  Input:
 * byte 0 picks the model, byte 1 add_assistant_prompt; then parts separated
 * by "\x1e": the override ("" for none), then role, content, role, ... */
#include "fuzz_common.h"

enum { N_MODELS = 3, MAX_MSGS = 16 };
static slim_model *models[N_MODELS];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!models[0]) {
        static const char *paths[N_MODELS] = {"tests/data/synth_gemma3.gguf",
                                              "tests/data/synth_llama3.gguf",
                                              "tests/data/synth_phi3.gguf"};
        for (int i = 0; i < N_MODELS; i++)
            if (slim_model_load(paths[i], NULL, &models[i]) != SLIM_OK) abort();
    }
    if (size < 2) return 0;
    slim_model *model = models[data[0] % N_MODELS];
    const int add = data[1] & 1;
    data += 2;
    size -= 2;
    const uint8_t *part;
    size_t n = fuzz_split(&data, &size, "\x1e", &part);
    char *override = n ? fuzz_strdup(part, n) : NULL;
    char *strs[2 * MAX_MSGS];
    slim_chat_message msgs[MAX_MSGS];
    size_t n_msgs = 0;
    while (size && n_msgs < MAX_MSGS) {
        n = fuzz_split(&data, &size, "\x1e", &part);
        strs[2 * n_msgs] = fuzz_strdup(part, n);
        n = fuzz_split(&data, &size, "\x1e", &part);
        strs[2 * n_msgs + 1] = fuzz_strdup(part, n);
        msgs[n_msgs] = (slim_chat_message){strs[2 * n_msgs], strs[2 * n_msgs + 1]};
        n_msgs++;
    }
    const char *name = NULL;
    fuzz_check(slim_chat_template_name(model, override, &name));
    char small[16];
    size_t len = 0, len2 = 0;
    slim_status st = slim_chat_render(model, override, msgs, n_msgs, add, NULL, 0, &len);
    fuzz_check(st);
    if (st == SLIM_OK) {
        char *buf = malloc(len + 1);
        if (!buf) abort();
        if (slim_chat_render(model, override, msgs, n_msgs, add, buf, len, &len2) != SLIM_OK ||
            len2 != len)
            abort(); /* the size asked first is the size written */
        fuzz_check(
            slim_chat_render(model, override, msgs, n_msgs, add, small, sizeof small, &len2));
        free(buf);
    }
    for (size_t i = 0; i < 2 * n_msgs; i++)
        free(strs[i]);
    free(override);
    return 0;
}
