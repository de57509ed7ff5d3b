/* safetensors reader: single files, sharded checkpoints (an index JSON with a
 * weight_map) and Hugging Face model directories.
 *
 * A file is: u64 little-endian N, N bytes of JSON header, the data section.
 * The header is an object mapping each tensor name to {"dtype", "shape",
 * "data_offsets": [begin, end]} (offsets relative to the data section), plus
 * an optional "__metadata__" object of strings.  Everything is validated at
 * open, as the reference implementation (the `safetensors` Rust crate) does:
 *   - N <= SLIM_ST_MAX_HEADER (100,000,000) and N <= file size - 8; the header
 *     starts with '{' and is strict JSON (json.h: valid UTF-8, no duplicate
 *     names); trailing spaces in it are padding;
 *   - each dtype is one the format defines (unknown: SLIM_ERR_UNSUPPORTED),
 *     shape entries are non-negative integers (at most SLIM_ST_MAX_DIMS of
 *     them, else SLIM_ERR_UNSUPPORTED), the element and byte counts are
 *     overflow-checked, end - begin == the byte size (sub-byte dtypes F4/F6:
 *     a whole number of bytes), and end <= the data section size;
 *   - sorted by offset, the tensors cover the data section exactly: no
 *     overlap, no gap, nothing after the last one;
 *   - tensor info members other than dtype/shape/data_offsets are ignored (as
 *     the reference does); a name holding a NUL character is UNSUPPORTED.
 *
 * Alignment: the format guarantees nothing beyond 1 byte.  The official
 * writers pad the header with spaces to a multiple of 8 (so the data section
 * starts 8-aligned in the file) and lay tensors out largest dtype first, so
 * their files have every tensor aligned to its element size; other writers
 * need not.  Tensor data is used in place from the mapping (page-aligned) or
 * the read buffer (malloc-aligned): each tensor reports `align`, the largest
 * power of two dividing its address (capped at 4096), and
 * slim_st_tensor_aligned() tells whether it can be read as its element type
 * directly; otherwise copy it (memcpy) first. */
#ifndef SLIM_FORMAT_SAFETENSORS_H
#define SLIM_FORMAT_SAFETENSORS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/error.h"
#include "format/json.h"
#include "format/mmap.h"
#include "core/dtype.h"

enum { SLIM_ST_MAX_DIMS = 8 };
#define SLIM_ST_MAX_HEADER ((uint64_t)100000000) /* the reference's limit */

typedef enum slim_st_dtype {
    SLIM_ST_BOOL,
    SLIM_ST_U8,
    SLIM_ST_I8,
    SLIM_ST_U16,
    SLIM_ST_I16,
    SLIM_ST_U32,
    SLIM_ST_I32,
    SLIM_ST_U64,
    SLIM_ST_I64,
    SLIM_ST_F16,
    SLIM_ST_BF16,
    SLIM_ST_F32,
    SLIM_ST_F64,
    SLIM_ST_C64,
    SLIM_ST_F8_E4M3,
    SLIM_ST_F8_E5M2,
    SLIM_ST_F8_E4M3FNUZ,
    SLIM_ST_F8_E5M2FNUZ,
    SLIM_ST_F8_E8M0,
    SLIM_ST_F4,      /* 4 bits */
    SLIM_ST_F6_E2M3, /* 6 bits */
    SLIM_ST_F6_E3M2, /* 6 bits */
    SLIM_ST_DTYPE_COUNT
} slim_st_dtype;

typedef struct slim_st_tensor {
    const char *name; /* NUL-terminated (in the header document) */
    size_t name_len;
    slim_st_dtype dtype;
    int n_dims;                      /* 0 for a scalar */
    int64_t shape[SLIM_ST_MAX_DIMS]; /* as in the file, outermost first; unused entries 1 */
    int64_t numel;
    uint64_t begin, end; /* data_offsets, relative to the data section */
    uint64_t offset;     /* of the data from the start of the file */
    uint64_t size;       /* bytes (end - begin) */
    const void *data;    /* in the mapping; may be unaligned (see align) */
    uint32_t align;      /* largest power of two (<= 4096) dividing the data address */
    uint32_t file_index; /* which file of a slim_st_set (0 for a lone file) */
} slim_st_tensor;

typedef struct slim_st_file {
    slim_file_map map;
    const char *path;     /* as opened ("<memory>" for open_memory) */
    uint64_t header_len;  /* N */
    uint64_t data_offset; /* 8 + N */
    uint64_t data_size;   /* file size - data_offset */
    size_t n_tensors;
    slim_st_tensor *tensors;   /* sorted by data offset, i.e. in file order */
    const slim_json *metadata; /* the "__metadata__" object (strings), or NULL */
    slim_json_doc *header;     /* the parsed header; names point into it */
} slim_st_file;

/* Open and validate a file.  On error *out is NULL and the message names the
 * path, the tensor and the field at fault. */
SLIM_HIDDEN slim_status slim_st_open(const char *path, bool use_mmap, slim_st_file **out);
/* The same over a caller's buffer, which must outlive the result (tests, fuzzing). */
SLIM_HIDDEN slim_status slim_st_open_memory(const void *data, size_t size, slim_st_file **out);
SLIM_HIDDEN void slim_st_close(slim_st_file *f);

/* By name (hashed); NULL if absent. */
SLIM_HIDDEN const slim_st_tensor *slim_st_find(const slim_st_file *f, const char *name);
/* A "__metadata__" string, or NULL. */
SLIM_HIDDEN const char *slim_st_meta(const slim_st_file *f, const char *key);

/* "F32", ...; "?" for an unknown value. */
SLIM_HIDDEN const char *slim_st_dtype_name(slim_st_dtype t);
/* Bits of one element: 8 for BOOL (a byte each), 4 for F4, 6 for F6_*; 0 if unknown. */
SLIM_HIDDEN int slim_st_dtype_bits(slim_st_dtype t);
/* The dtype named s[0..len), or -1. */
SLIM_HIDDEN int slim_st_dtype_from_name(const char *s, size_t len);
/* F32/F16/BF16 as slim's dtype; false for the others. */
SLIM_HIDDEN bool slim_st_dtype_to_slim(slim_st_dtype t, slim_dtype *out);
/* Whether t->data may be read as its element type in place (address aligned
 * to the element size; always true for byte and sub-byte types). */
SLIM_HIDDEN bool slim_st_tensor_aligned(const slim_st_tensor *t);

/* ---- checkpoints of one or more files --------------------------------------------------- */

typedef struct slim_st_set {
    size_t n_files;
    slim_st_file **files;
    size_t n_tensors;
    const slim_st_tensor **tensors; /* index: weight_map order; lone file: file order */
    slim_json_doc *index;           /* the index document (NULL for a lone file) */
} slim_st_set;

/* A Hugging Face directory: <dir>/<stem>.safetensors if present (as
 * transformers prefers), else <dir>/<stem>.safetensors.index.json.  stem NULL
 * means "model" ("adapter_model" for a PEFT adapter). */
SLIM_HIDDEN slim_status slim_st_open_dir(const char *dir, const char *stem, bool use_mmap,
                                         slim_st_set **out);
/* A sharded checkpoint from its index: {"metadata": {...}, "weight_map":
 * {tensor: shard file name}}.  Shard names must be plain file names (no '/')
 * in the index's directory; each shard is opened once, and every mapped tensor
 * must be in its shard.  The set holds exactly the weight_map's tensors. */
SLIM_HIDDEN slim_status slim_st_open_index(const char *index_path, bool use_mmap,
                                           slim_st_set **out);
/* One file as a set. */
SLIM_HIDDEN slim_status slim_st_open_file_set(const char *path, bool use_mmap, slim_st_set **out);
SLIM_HIDDEN const slim_st_tensor *slim_st_set_find(const slim_st_set *set, const char *name);
/* The file a tensor of the set lives in. */
SLIM_HIDDEN const slim_st_file *slim_st_set_file_of(const slim_st_set *set,
                                                    const slim_st_tensor *t);
SLIM_HIDDEN void slim_st_set_close(slim_st_set *set);

#endif
