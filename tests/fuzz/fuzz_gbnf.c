// libFuzzer entry point for the constraint engine's gbnf compiler (`make fuzz`):
//   build/fuzz/fuzz_gbnf -max_total_time=600 -max_len=4096 CORPUS_DIR
#include "fuzz_constrain_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fuzz_constraint(SLIM_CONSTRAINT_GBNF, data, size);
    return 0;
}
