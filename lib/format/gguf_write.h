/* GGUF v3 writer.  Metadata and tensor infos are collected in memory (they
 * are small), then written with the tensor data streamed after them, tensor by
 * tensor in the order they were added, so a model's weights never sit in
 * memory twice.  The file appears under its name only when complete: it is
 * written as "<path>.part" and renamed by slim_gguf_writer_finish.
 *
 * Layout as ggml and gguf-py write it (little-endian): header, KV pairs in
 * insertion order, tensor infos, padding to the alignment, then each tensor's
 * data followed by padding to the alignment.  The alignment is 32 unless a
 * "general.alignment" (UINT32, a power of two) is set before the first tensor. */
#ifndef SLIM_FORMAT_GGUF_WRITE_H
#define SLIM_FORMAT_GGUF_WRITE_H

#include <stddef.h>
#include <stdint.h>

#include "format/gguf.h"

typedef struct slim_gguf_writer slim_gguf_writer;

SLIM_HIDDEN slim_status slim_gguf_writer_create(slim_gguf_writer **out);
/* Frees the writer; an unfinished file is closed and removed. */
SLIM_HIDDEN void slim_gguf_writer_free(slim_gguf_writer *w);

/* A scalar KV of any non-string, non-array type; `value` points at a value of
 * the type's own width (uint8_t for UINT8 and BOOL, ..., double for FLOAT64).
 * A key may be set once (SLIM_ERR_INVALID_ARG otherwise). */
SLIM_HIDDEN slim_status slim_gguf_writer_kv(slim_gguf_writer *w, const char *key,
                                            slim_gguf_type type, const void *value);
SLIM_HIDDEN slim_status slim_gguf_writer_kv_u32(slim_gguf_writer *w, const char *key, uint32_t v);
SLIM_HIDDEN slim_status slim_gguf_writer_kv_f32(slim_gguf_writer *w, const char *key, float v);
SLIM_HIDDEN slim_status slim_gguf_writer_kv_bool(slim_gguf_writer *w, const char *key, bool v);
/* A string of len bytes (need not be NUL-terminated). */
SLIM_HIDDEN slim_status slim_gguf_writer_kv_str(slim_gguf_writer *w, const char *key, const char *s,
                                                size_t len);
/* An array of n elements of a scalar type, packed at `data`. */
SLIM_HIDDEN slim_status slim_gguf_writer_kv_arr(slim_gguf_writer *w, const char *key,
                                                slim_gguf_type elem, const void *data, uint64_t n);
/* An array of n strings: strs[i] of lens[i] bytes (lens NULL: NUL-terminated). */
SLIM_HIDDEN slim_status slim_gguf_writer_kv_str_arr(slim_gguf_writer *w, const char *key,
                                                    const char *const *strs, const uint32_t *lens,
                                                    uint64_t n);

/* True if `key` has been set. */
SLIM_HIDDEN bool slim_gguf_writer_has(const slim_gguf_writer *w, const char *key);

/* Declare the next tensor: name (1..63 bytes), a type from the traits table,
 * n_dims 1..4 dims with ne[0] a multiple of the type's block size. */
SLIM_HIDDEN slim_status slim_gguf_writer_tensor(slim_gguf_writer *w, const char *name,
                                                slim_dtype type, int32_t n_dims, const int64_t *ne);
/* Bytes of the tensor `index` (for sizing buffers and progress). */
SLIM_HIDDEN uint64_t slim_gguf_writer_tensor_size(const slim_gguf_writer *w, uint64_t index);
SLIM_HIDDEN uint64_t slim_gguf_writer_tensor_count(const slim_gguf_writer *w);

/* Create "<path>.part" and write header, metadata and tensor infos; no KV or
 * tensor can be added after this. */
SLIM_HIDDEN slim_status slim_gguf_writer_begin(slim_gguf_writer *w, const char *path);
/* Append n bytes of tensor data: they fill the tensors in order (a call may
 * span tensors; padding between them is written here). */
SLIM_HIDDEN slim_status slim_gguf_writer_data(slim_gguf_writer *w, const void *data, size_t n);
/* Check that every tensor got all its bytes, flush, close, rename to path. */
SLIM_HIDDEN slim_status slim_gguf_writer_finish(slim_gguf_writer *w);

#endif
