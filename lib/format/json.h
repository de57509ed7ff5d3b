/* A strict RFC 8259 JSON parser into an immutable DOM (config.json,
 * tokenizer.json, safetensors headers, ...).
 *
 * The whole document lives in one allocation owned by the slim_json_doc:
 * values, decoded strings and the key indexes of large objects.  Values are
 * handed out as `const slim_json *` pointers into it, valid until the document
 * is freed; every accessor accepts NULL (and the wrong type) and answers
 * "absent", so lookups chain: slim_json_get(slim_json_get(root, "a"), "b").
 *
 * Strictness: exactly the RFC grammar (no comments, trailing commas, NaN,
 * single quotes, leading zeros or '+'), one value per document, whitespace
 * only around it (a leading UTF-8 byte order mark is skipped, as RFC 8259
 * section 8.1 allows).  Text must be valid UTF-8 (no overlong forms,
 * surrogates or code points past U+10FFFF); \u escapes are decoded to UTF-8,
 * surrogate pairs combined and lone surrogates rejected.  Duplicate keys in
 * one object are an error.  Numbers beyond the double range (1e400) are an
 * error; numbers that underflow become 0 or subnormal.  Nesting is limited to
 * SLIM_JSON_MAX_DEPTH arrays/objects, the text to SLIM_JSON_MAX_TEXT bytes.
 * Errors name the document, line:column (1-based; the column counts
 * characters) and what was expected:
 *   "config.json:3:17: expected ',' or '}' after an object member, got ']'". */
#ifndef SLIM_FORMAT_JSON_H
#define SLIM_FORMAT_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/error.h"

enum {
    SLIM_JSON_MAX_DEPTH = 512,
};
#define SLIM_JSON_MAX_TEXT ((size_t)1 << 30) /* 1 GiB */

typedef enum slim_json_type {
    SLIM_JSON_NONE = 0, /* what slim_json_type(NULL) answers: no value */
    SLIM_JSON_NULL,
    SLIM_JSON_BOOL,
    SLIM_JSON_NUMBER,
    SLIM_JSON_STRING,
    SLIM_JSON_ARRAY,
    SLIM_JSON_OBJECT,
} slim_json_type;

typedef struct slim_json slim_json;         /* one value, inside a document */
typedef struct slim_json_doc slim_json_doc; /* a parsed document (owns every value) */

/* Parse text[0..len) (need not be NUL-terminated; the document does not keep
 * pointers into it).  `name` (e.g. "config.json" or a path) starts every error
 * message; NULL means "json".  On error *out is NULL. */
SLIM_HIDDEN slim_status slim_json_parse(const char *text, size_t len, const char *name,
                                        slim_json_doc **out);
/* Read and parse a file; messages name the path. */
SLIM_HIDDEN slim_status slim_json_parse_file(const char *path, slim_json_doc **out);
SLIM_HIDDEN void slim_json_free(slim_json_doc *doc);

SLIM_HIDDEN const slim_json *slim_json_root(const slim_json_doc *doc);
/* The name given to slim_json_parse ("json" if none). */
SLIM_HIDDEN const char *slim_json_doc_name(const slim_json_doc *doc);

SLIM_HIDDEN slim_json_type slim_json_type_of(const slim_json *v);
/* "null", "boolean", "number", "string", "array", "object"; "nothing" for NONE. */
SLIM_HIDDEN const char *slim_json_type_name(slim_json_type t);

/* Object member by key (NUL-terminated, or key[0..len) with getn); NULL if
 * absent or `obj` is not an object.  O(1) expected for large objects. */
SLIM_HIDDEN const slim_json *slim_json_get(const slim_json *obj, const char *key);
SLIM_HIDDEN const slim_json *slim_json_getn(const slim_json *obj, const char *key, size_t len);
/* Array element i, or (objects) the value of member i in document order. */
SLIM_HIDDEN const slim_json *slim_json_at(const slim_json *v, size_t i);
/* Member i of an object in document order: its value, and its key through
 * *key / *key_len (either may be NULL).  NULL if out of range. */
SLIM_HIDDEN const slim_json *slim_json_member(const slim_json *obj, size_t i, const char **key,
                                              size_t *key_len);
/* Elements of an array or members of an object; 0 for anything else. */
SLIM_HIDDEN size_t slim_json_len(const slim_json *v);

/* A string's decoded UTF-8 bytes (NUL-terminated; may contain NUL bytes from
 * \u0000, so use *len) or NULL if `v` is not a string.  len may be NULL. */
SLIM_HIDDEN const char *slim_json_str(const slim_json *v, size_t *len);
/* A number as double (false if not a number). */
SLIM_HIDDEN bool slim_json_num(const slim_json *v, double *out);
/* A number whose value is an integer exactly representable in int64 (2, -0,
 * 2.0, 1e3, 9007199254740993: decided from the digits, not the double);
 * false for 2.5, 1e19, 1e-400, strings, ... */
SLIM_HIDDEN bool slim_json_i64(const slim_json *v, int64_t *out);
SLIM_HIDDEN bool slim_json_bool(const slim_json *v, bool *out);
SLIM_HIDDEN bool slim_json_is_null(const slim_json *v);

/* ---- typed getters for config files ----------------------------------------------------
 * `path` is a dotted key path below `obj` ("rope_scaling.factor"); pass the
 * root to have messages show the whole path.  A key that is missing, or JSON
 * null (configs write "rope_scaling": null), or below a missing/null parent,
 * takes the default when one is given (def != NULL) and is otherwise
 * SLIM_ERR_FORMAT "config.json: num_hidden_layers: missing required key".
 * A present value of the wrong type or out of range is always an error:
 *   "config.json: rope_scaling.factor: expected a number, got string"
 *   "config.json: rope_scaling: expected an object, got array (at rope_scaling.factor)"
 * `doc` gives the name for messages (NULL: "json"). */
SLIM_HIDDEN slim_status slim_json_cfg_i64(const slim_json_doc *doc, const slim_json *obj,
                                          const char *path, const int64_t *def, int64_t min,
                                          int64_t max, int64_t *out);
SLIM_HIDDEN slim_status slim_json_cfg_f64(const slim_json_doc *doc, const slim_json *obj,
                                          const char *path, const double *def, double *out);
SLIM_HIDDEN slim_status slim_json_cfg_f32(const slim_json_doc *doc, const slim_json *obj,
                                          const char *path, const float *def, float *out);
SLIM_HIDDEN slim_status slim_json_cfg_bool(const slim_json_doc *doc, const slim_json *obj,
                                           const char *path, const bool *def, bool *out);
/* def: the default string (NULL: required); *len may be NULL. */
SLIM_HIDDEN slim_status slim_json_cfg_str(const slim_json_doc *doc, const slim_json *obj,
                                          const char *path, const char *def, const char **out,
                                          size_t *len);
/* Any value of type `want` (SLIM_JSON_NONE: any type); *out = NULL when
 * absent/null and !required. */
SLIM_HIDDEN slim_status slim_json_cfg_value(const slim_json_doc *doc, const slim_json *obj,
                                            const char *path, slim_json_type want, bool required,
                                            const slim_json **out);

#endif
