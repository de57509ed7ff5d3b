/* libFuzzer: tokenizing arbitrary bytes (invalid UTF-8 included) with each
 * tokenizer kind: SentencePiece (synthetic Gemma 3), byte-level BPE
 * (synthetic Llama 3 and Qwen 2) and, when `make hf-tokenizers` has fetched
 * it, a tokenizer.json (Llama 3).  Byte 0 picks the tokenizer, byte 1 the
 * flags; whatever is tokenized is detokenized again, and a text without
 * special parsing comes back byte for byte from the byte-level BPE when it is
 * valid UTF-8. */
#include "fuzz_common.h"
#include "core/utf8.h"
#include "tokenizer/tokenizer.h"

enum { N_GGUF = 3 };
static slim_model *models[N_GGUF];
static slim_vocab *hf;

static int valid_utf8(const uint8_t *s, size_t n) {
    for (size_t i = 0, k; i < n; i += k)
        if (!(k = slim_utf8_seq_len(s + i, n - i))) return 0;
    return 1;
}

static void load(void) {
    static const char *paths[N_GGUF] = {"tests/data/synth_gemma3.gguf",
                                        "tests/data/synth_llama3.gguf",
                                        "tests/data/synth_qwen2.gguf"};
    for (int i = 0; i < N_GGUF; i++)
        if (slim_model_load(paths[i], NULL, &models[i]) != SLIM_OK) abort();
    if (access("models/hf-tok/llama3/tokenizer.json", R_OK) == 0 &&
        slim_vocab_from_hf_dir("models/hf-tok/llama3", &hf) != SLIM_OK)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!models[0]) load();
    if (size < 2) return 0;
    const int which = data[0] % (N_GGUF + 1);
    const uint32_t flags = data[1] & 3;
    const char *text = (const char *)data + 2;
    const size_t len = size - 2;
    size_t cap = 2 * len + 8, n = 0, m = 0;
    int32_t *ids = malloc(cap * sizeof *ids);
    char *out = malloc(8 * len + 64);
    if (!ids || !out) abort();
    slim_status st;
    if (which < N_GGUF) {
        st = slim_tokenize(models[which], text, len, flags, ids, cap, &n);
        fuzz_check(st);
        if (st == SLIM_OK)
            fuzz_check(slim_detokenize(models[which], ids, n, 0, out, 8 * len + 64, &m));
    } else if (hf) {
        st = slim_vocab_tokenize(hf, text, len, flags, ids, cap, &n);
        fuzz_check(st);
        if (st == SLIM_OK) {
            st = slim_vocab_detokenize(hf, ids, n, 0, out, 8 * len + 64, &m);
            fuzz_check(st);
            /* byte-level BPE is lossless on valid UTF-8 without added BOS or special parsing
               (tokenizer.json tokenizers, like the `tokenizers` package, take text, so invalid
               bytes may be replaced) */
            if (st == SLIM_OK && flags == 0 && valid_utf8((const uint8_t *)text, len) &&
                (m != len || memcmp(out, text, len)))
                abort();
        }
    }
    free(ids);
    free(out);
    return 0;
}
