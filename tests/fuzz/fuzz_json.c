/* libFuzzer: the JSON parser (config.json, tokenizer.json, adapter_config.json,
 * safetensors headers and requests all go through it).  A parsed document is
 * walked whole: every value's type, every member, string and number. */
#include "fuzz_common.h"
#include "format/json.h"

static void walk(const slim_json *v, int depth) {
    if (!v || depth > 64) return;
    size_t len = 0;
    double d;
    int64_t i;
    bool b;
    (void)slim_json_type_name(slim_json_type_of(v));
    const char *s = slim_json_str(v, &len);
    if (s && len) (void)((volatile const char *)s)[len - 1];
    (void)slim_json_num(v, &d);
    (void)slim_json_i64(v, &i);
    (void)slim_json_bool(v, &b);
    (void)slim_json_is_null(v);
    const size_t n = slim_json_len(v);
    for (size_t k = 0; k < n; k++) {
        const char *key = NULL;
        size_t klen = 0;
        const slim_json *m = slim_json_member(v, k, &key, &klen);
        if (m) {
            if (slim_json_getn(v, key, klen) == NULL) abort(); /* a member is found by its key */
            walk(m, depth + 1);
        } else {
            walk(slim_json_at(v, k), depth + 1);
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    slim_json_doc *doc = NULL;
    slim_status st = slim_json_parse((const char *)data, size, "fuzz.json", &doc);
    fuzz_check(st);
    if (st != SLIM_OK) {
        if (doc) abort();
        return 0;
    }
    walk(slim_json_root(doc), 0);
    slim_json_free(doc);
    return 0;
}
