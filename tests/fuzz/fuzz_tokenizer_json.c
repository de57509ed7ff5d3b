/* libFuzzer: tokenizer.json loading (models, merges, added tokens,
 * normalizers, pre-tokenizers, decoders).  A loaded tokenizer then tokenizes
 * and detokenizes a fixed text, with and without special tokens. */
#include "fuzz_common.h"
#include "tokenizer/tokenizer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fuzz_file(0, "tokenizer.json", data, size);
    slim_vocab *v = NULL;
    slim_status st = slim_vocab_from_hf_dir(fuzz_dir(), &v);
    fuzz_check(st);
    if (st != SLIM_OK) {
        if (v) abort();
        return 0;
    }
    static const char text[] = "Hello, world! <s> caf\xc3\xa9 \xe2\x80\x94 123\n\tend";
    int32_t ids[256];
    char out[1024];
    for (uint32_t flags = 0; flags < 4; flags++) {
        size_t n = 0, m = 0;
        st = slim_vocab_tokenize(v, text, sizeof text - 1, flags, ids, 256, &n);
        fuzz_check(st);
        if (st == SLIM_OK) {
            if (n > 256) n = 256;
            fuzz_check(slim_vocab_detokenize(v, ids, n, flags & 1, out, sizeof out, &m));
        }
    }
    const int32_t nv = slim_vocab_size(v);
    for (int32_t t = 0; t < nv && t < 64; t++) {
        size_t m = 0;
        fuzz_check(slim_vocab_token_to_piece(v, t, 1, out, sizeof out, &m));
        (void)slim_vocab_token_text(v, t);
    }
    slim_vocab_free(v);
    return 0;
}
