/* libFuzzer: LoRA adapters for the synthetic Llama 3 model.  Byte 0 even: the
 * rest is a GGUF adapter file; odd: a PEFT directory whose
 * adapter_config.json is the part before "\x1e\x1e" and whose
 * adapter_model.safetensors is the part after it.  An accepted adapter is
 * attached to a context and one token is decoded through it. */
#include "fuzz_common.h"

static slim_model *model;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!model && slim_model_load("tests/data/synth_llama3.gguf", NULL, &model) != SLIM_OK) abort();
    if (size < 1) return 0;
    const int peft = data[0] & 1;
    data++;
    size--;
    const char *path;
    if (peft) {
        const uint8_t *cfg;
        size_t n = fuzz_split(&data, &size, "\x1e\x1e", &cfg);
        fuzz_file(0, "adapter_config.json", cfg, n);
        fuzz_file(1, "adapter_model.safetensors", data, size);
        path = fuzz_dir();
    } else {
        path = fuzz_file(0, "adapter.gguf", data, size);
    }
    slim_lora *lora = NULL;
    slim_status st = slim_lora_load(model, path, &lora);
    fuzz_check(st);
    if (st != SLIM_OK) {
        if (lora) abort();
        return 0;
    }
    slim_context_params cp = slim_context_default_params();
    cp.n_ctx = 8;
    cp.n_threads = 1;
    slim_context *ctx = NULL;
    if (slim_context_create(model, &cp, &ctx) != SLIM_OK) abort();
    fuzz_check(slim_context_attach_lora(ctx, lora, 1.0f));
    const slim_token tok = 1;
    fuzz_check(slim_prefill(ctx, &tok, 1, NULL));
    slim_context_free(ctx);
    slim_lora_free(lora);
    return 0;
}
