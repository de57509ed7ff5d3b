/* GGUF v2/v3 reader.  Everything is validated at open: every count, length,
 * offset, dimension and size is checked against the file (overflow-safe), so
 * later lookups can trust what they get.  Strings point into the file and are
 * NOT NUL-terminated (except names, copied at open: kv key and tensor name). */
#ifndef SLIM_FORMAT_GGUF_H
#define SLIM_FORMAT_GGUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/error.h"
#include "format/mmap.h"
#include "core/dtype.h"

typedef enum slim_gguf_type {
    SLIM_GGUF_UINT8 = 0,
    SLIM_GGUF_INT8 = 1,
    SLIM_GGUF_UINT16 = 2,
    SLIM_GGUF_INT16 = 3,
    SLIM_GGUF_UINT32 = 4,
    SLIM_GGUF_INT32 = 5,
    SLIM_GGUF_FLOAT32 = 6,
    SLIM_GGUF_BOOL = 7,
    SLIM_GGUF_STRING = 8,
    SLIM_GGUF_ARRAY = 9,
    SLIM_GGUF_UINT64 = 10,
    SLIM_GGUF_INT64 = 11,
    SLIM_GGUF_FLOAT64 = 12
} slim_gguf_type;

typedef struct slim_gguf_str {
    const char *ptr; /* into the file; not NUL-terminated */
    uint64_t len;
} slim_gguf_str;

typedef struct slim_gguf_kv {
    char *key; /* NUL-terminated copy */
    slim_gguf_type type;
    union {
        uint64_t u64; /* any unsigned integer type, widened */
        int64_t i64;  /* any signed integer type, widened */
        double f64;   /* FLOAT32 / FLOAT64, widened */
        bool b;
        slim_gguf_str str;
    } v;
    /* type == ARRAY: */
    slim_gguf_type arr_type;
    uint64_t arr_n;
    const void *arr_data;    /* element data in the file (not for string arrays) */
    slim_gguf_str *arr_strs; /* string arrays: arr_n entries (allocated) */
} slim_gguf_kv;

typedef struct slim_gguf_tensor {
    char *name; /* NUL-terminated copy */
    int32_t n_dims;
    int64_t ne[4]; /* unused dims are 1 */
    slim_dtype type;
    uint64_t offset; /* from the start of the file */
    uint64_t size;   /* bytes */
    const void *data;
} slim_gguf_tensor;

typedef struct slim_gguf {
    slim_file_map map;
    uint32_t version;
    uint64_t alignment;
    uint64_t data_offset; /* start of the tensor data section */
    uint64_t n_kv;
    slim_gguf_kv *kv;
    uint64_t n_tensors;
    slim_gguf_tensor *tensors;
} slim_gguf;

/* Open and validate a file.  On error *out is NULL and the message names the
 * field, key or tensor at fault (and the byte offset). */
SLIM_HIDDEN slim_status slim_gguf_open(const char *path, bool use_mmap, slim_gguf **out);
/* The same over a caller's buffer, which must outlive the result (tests, fuzzing). */
SLIM_HIDDEN slim_status slim_gguf_open_memory(const void *data, size_t size, slim_gguf **out);
SLIM_HIDDEN void slim_gguf_close(slim_gguf *g);

SLIM_HIDDEN const slim_gguf_kv *slim_gguf_find(const slim_gguf *g, const char *key);
SLIM_HIDDEN const slim_gguf_tensor *slim_gguf_find_tensor(const slim_gguf *g, const char *name);

/* Typed getters: false if the key is missing or not convertible (an integer
 * getter accepts any integer type whose value fits; get_f32 any number). */
SLIM_HIDDEN bool slim_gguf_get_i64(const slim_gguf *g, const char *key, int64_t *out);
SLIM_HIDDEN bool slim_gguf_get_u32(const slim_gguf *g, const char *key, uint32_t *out);
SLIM_HIDDEN bool slim_gguf_get_f32(const slim_gguf *g, const char *key, float *out);
SLIM_HIDDEN bool slim_gguf_get_bool(const slim_gguf *g, const char *key, bool *out);
SLIM_HIDDEN bool slim_gguf_get_str(const slim_gguf *g, const char *key, slim_gguf_str *out);
/* An array of `type` (false if missing or of another element type). */
SLIM_HIDDEN bool slim_gguf_get_arr(const slim_gguf *g, const char *key, slim_gguf_type type,
                                   const slim_gguf_kv **out);

SLIM_HIDDEN const char *slim_gguf_type_name(slim_gguf_type t);

/* Render a value as text for display (arrays: type, length, first items). */
SLIM_HIDDEN void slim_gguf_format_value(const slim_gguf_kv *kv, char *buf, size_t cap);

#endif
