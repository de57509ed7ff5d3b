/* libFuzzer: a safetensors file from memory (header JSON, dtypes, shapes,
 * offsets).  An accepted file's every tensor lies inside the data section and
 * is found by its name. */
#include "fuzz_common.h"
#include "format/safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    slim_st_file *f = NULL;
    slim_status st = slim_st_open_memory(data, size, &f);
    fuzz_check(st);
    if (st != SLIM_OK) {
        if (f) abort();
        return 0;
    }
    for (size_t i = 0; i < f->n_tensors; i++) {
        const slim_st_tensor *t = &f->tensors[i];
        if (slim_st_find(f, t->name) != t) abort();
        if (t->offset + t->size > size) abort();
        if (t->size) {
            volatile uint8_t x = ((const uint8_t *)t->data)[0];
            x = ((const uint8_t *)t->data)[t->size - 1];
            (void)x;
        }
        (void)slim_st_dtype_name(t->dtype);
        (void)slim_st_tensor_aligned(t);
    }
    (void)slim_st_meta(f, "format");
    slim_st_close(f);
    return 0;
}
