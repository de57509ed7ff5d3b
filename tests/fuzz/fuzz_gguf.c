// libFuzzer entry point for the GGUF reader (make fuzz; docs/RELIABILITY.md).
//
// Every input must either open (and then every lookup and rendering of what was
// read must be safe) or fail with a message; never crash, leak or read out of
// bounds.
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "format/gguf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    slim_gguf *g = NULL;
    slim_status s = slim_gguf_open_memory(data, size, &g);
    if (s != SLIM_OK) {
        if (g || !slim_last_error()[0]) abort();
        return 0;
    }
    char buf[256];
    for (uint64_t i = 0; i < g->n_kv; i++) {
        const slim_gguf_kv *kv = &g->kv[i];
        if (slim_gguf_find(g, kv->key) != kv) abort(); /* keys are unique */
        slim_gguf_format_value(kv, buf, sizeof buf);
        slim_gguf_format_value(kv, buf, 1 + (i % 16));
        int64_t i64;
        uint32_t u32;
        float f;
        bool b;
        slim_gguf_str str;
        const slim_gguf_kv *arr;
        (void)slim_gguf_get_i64(g, kv->key, &i64);
        (void)slim_gguf_get_u32(g, kv->key, &u32);
        (void)slim_gguf_get_f32(g, kv->key, &f);
        (void)slim_gguf_get_bool(g, kv->key, &b);
        if (slim_gguf_get_str(g, kv->key, &str) && str.len)
            (void)((volatile char *)str.ptr)[str.len - 1];
        if (slim_gguf_get_arr(g, kv->key, kv->arr_type, &arr) && arr->arr_type == SLIM_GGUF_STRING)
            for (uint64_t j = 0; j < arr->arr_n; j++)
                if (arr->arr_strs[j].len)
                    (void)((volatile char *)arr->arr_strs[j].ptr)[arr->arr_strs[j].len - 1];
    }
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        const slim_gguf_tensor *t = &g->tensors[i];
        if (slim_gguf_find_tensor(g, t->name) != t) abort(); /* names are unique */
        if (t->offset + t->size > size || t->size == 0) abort();
        /* touch the first and last byte of the data */
        volatile uint8_t x = ((const uint8_t *)t->data)[0];
        x = ((const uint8_t *)t->data)[t->size - 1];
        (void)x;
    }
    slim_gguf_close(g);
    return 0;
}
