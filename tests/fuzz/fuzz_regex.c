// libFuzzer entry point for the constraint engine's regex compiler (`make fuzz`):
//   build/fuzz/fuzz_regex -max_total_time=600 -max_len=4096 CORPUS_DIR
#include "fuzz_constrain_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fuzz_constraint(SLIM_CONSTRAINT_REGEX, data, size);
    return 0;
}
