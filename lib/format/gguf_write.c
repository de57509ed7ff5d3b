/* GGUF v3 writer: metadata and tensor infos serialized into memory as they
 * are added, tensor data streamed to the file afterwards (see gguf_write.h). */
#include "format/gguf_write.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/grow.h"
#include "quant/dtype.h"

enum { NAME_MAX_LEN = 63 }; /* GGML_MAX_NAME 64 with its NUL */

typedef struct buf {
    uint8_t *p;
    size_t n, cap;
} buf;

typedef struct tinfo {
    char *name;
    uint64_t offset, size; /* within the data section */
} tinfo;

struct slim_gguf_writer {
    buf kv; /* serialized KV pairs */
    uint64_t n_kv;
    char **keys; /* for duplicate checks */
    size_t keys_cap;
    buf ti; /* serialized tensor infos */
    tinfo *tensors;
    uint64_t n_tensors;
    size_t tensors_cap;
    uint64_t alignment;
    uint64_t data_size; /* running, aligned */
    bool nomem;         /* a serialization ran out of memory */
    /* streaming */
    FILE *f;
    char *path, *part;
    uint64_t cur;      /* tensor being filled */
    uint64_t cur_done; /* bytes of it written */
    uint64_t pos;      /* bytes written into the data section */
    bool finished;
};

static bool put(buf *b, const void *data, size_t n) {
    if (n > SIZE_MAX - b->n || !slim_grow((void **)&b->p, &b->cap, b->n + n, 1)) return false;
    if (n) memcpy(b->p + b->n, data, n);
    b->n += n;
    return true;
}

static bool put_u32(buf *b, uint32_t v) { return put(b, &v, 4); }
static bool put_u64(buf *b, uint64_t v) { return put(b, &v, 8); }
static bool put_str(buf *b, const char *s, size_t len) {
    return put_u64(b, (uint64_t)len) && put(b, s, len);
}

slim_status slim_gguf_writer_create(slim_gguf_writer **out) {
    if (!out) return slim_error(SLIM_ERR_INVALID_ARG, "gguf writer: out is NULL");
    *out = calloc(1, sizeof **out);
    if (!*out) return slim_error(SLIM_ERR_NOMEM, "gguf writer: out of memory");
    (*out)->alignment = 32;
    return SLIM_OK;
}

void slim_gguf_writer_free(slim_gguf_writer *w) {
    if (!w) return;
    if (w->f) {
        fclose(w->f);
        remove(w->part);
    }
    for (uint64_t i = 0; i < w->n_kv; i++)
        free(w->keys[i]);
    free(w->keys);
    for (uint64_t i = 0; i < w->n_tensors; i++)
        free(w->tensors[i].name);
    free(w->kv.p);
    free(w->ti.p);
    free(w->tensors);
    free(w->path);
    free(w->part);
    free(w);
}

static size_t scalar_size(slim_gguf_type t) {
    switch (t) {
    case SLIM_GGUF_UINT8:
    case SLIM_GGUF_INT8:
    case SLIM_GGUF_BOOL: return 1;
    case SLIM_GGUF_UINT16:
    case SLIM_GGUF_INT16: return 2;
    case SLIM_GGUF_UINT32:
    case SLIM_GGUF_INT32:
    case SLIM_GGUF_FLOAT32: return 4;
    case SLIM_GGUF_UINT64:
    case SLIM_GGUF_INT64:
    case SLIM_GGUF_FLOAT64: return 8;
    default: return 0; /* STRING, ARRAY, unknown */
    }
}

/* Checks shared by every KV setter; on success the key is recorded and its
 * name and type are serialized. */
static slim_status kv_begin(slim_gguf_writer *w, const char *key, slim_gguf_type type) {
    if (!w || !key) return slim_error(SLIM_ERR_INVALID_ARG, "gguf writer: writer or key is NULL");
    if (w->f || w->finished)
        return slim_error(SLIM_ERR_INVALID_ARG, "gguf writer: key '%s' added after the data began",
                          key);
    size_t len = strlen(key);
    if (len == 0 || len > 65535)
        return slim_error(SLIM_ERR_INVALID_ARG, "gguf writer: key of %zu bytes", len);
    for (uint64_t i = 0; i < w->n_kv; i++)
        if (strcmp(w->keys[i], key) == 0)
            return slim_error(SLIM_ERR_INVALID_ARG, "gguf writer: duplicate key '%s'", key);
    if (!slim_grow((void **)&w->keys, &w->keys_cap, (size_t)w->n_kv + 1, sizeof *w->keys) ||
        !(w->keys[w->n_kv] = strdup(key)))
        return slim_error(SLIM_ERR_NOMEM, "gguf writer: out of memory");
    w->n_kv++;
    if (!put_str(&w->kv, key, len) || !put_u32(&w->kv, (uint32_t)type)) w->nomem = true;
    return SLIM_OK;
}

static slim_status kv_end(slim_gguf_writer *w, bool ok) {
    if (!ok || w->nomem) {
        w->nomem = true;
        return slim_error(SLIM_ERR_NOMEM, "gguf writer: out of memory");
    }
    return SLIM_OK;
}

slim_status slim_gguf_writer_kv(slim_gguf_writer *w, const char *key, slim_gguf_type type,
                                const void *value) {
    size_t sz = scalar_size(type);
    if (!sz || !value)
        return slim_error(SLIM_ERR_INVALID_ARG, "gguf writer: key '%s': type %d is not a scalar",
                          key ? key : "(null)", (int)type);
    bool is_align = key && strcmp(key, "general.alignment") == 0;
    if (is_align) {
        uint32_t a;
        memcpy(&a, value, 4);
        if (type != SLIM_GGUF_UINT32 || a == 0 || (a & (a - 1)) != 0)
            return slim_error(SLIM_ERR_INVALID_ARG,
                              "gguf writer: general.alignment must be a UINT32 power of two");
        if (w && w->n_tensors)
            return slim_error(SLIM_ERR_INVALID_ARG,
                              "gguf writer: general.alignment set after the first tensor");
    }
    slim_status st = kv_begin(w, key, type);
    if (st) return st;
    if (type == SLIM_GGUF_BOOL) {
        uint8_t b = *(const uint8_t *)value ? 1 : 0;
        return kv_end(w, put(&w->kv, &b, 1));
    }
    if (is_align) {
        uint32_t a;
        memcpy(&a, value, 4);
        w->alignment = a;
    }
    return kv_end(w, put(&w->kv, value, sz));
}

slim_status slim_gguf_writer_kv_u32(slim_gguf_writer *w, const char *key, uint32_t v) {
    return slim_gguf_writer_kv(w, key, SLIM_GGUF_UINT32, &v);
}

slim_status slim_gguf_writer_kv_f32(slim_gguf_writer *w, const char *key, float v) {
    return slim_gguf_writer_kv(w, key, SLIM_GGUF_FLOAT32, &v);
}

slim_status slim_gguf_writer_kv_bool(slim_gguf_writer *w, const char *key, bool v) {
    uint8_t b = v;
    return slim_gguf_writer_kv(w, key, SLIM_GGUF_BOOL, &b);
}

slim_status slim_gguf_writer_kv_str(slim_gguf_writer *w, const char *key, const char *s,
                                    size_t len) {
    if (!s && len)
        return slim_error(SLIM_ERR_INVALID_ARG, "gguf writer: key '%s': string is NULL",
                          key ? key : "(null)");
    slim_status st = kv_begin(w, key, SLIM_GGUF_STRING);
    if (st) return st;
    return kv_end(w, put_str(&w->kv, s, len));
}

slim_status slim_gguf_writer_kv_arr(slim_gguf_writer *w, const char *key, slim_gguf_type elem,
                                    const void *data, uint64_t n) {
    size_t sz = scalar_size(elem);
    if (!sz || (!data && n))
        return slim_error(SLIM_ERR_INVALID_ARG,
                          "gguf writer: key '%s': bad array (element type %d, data %s)",
                          key ? key : "(null)", (int)elem, data ? "set" : "NULL");
    if (n > SIZE_MAX / sz)
        return slim_error(SLIM_ERR_INVALID_ARG, "gguf writer: key '%s': array too long", key);
    slim_status st = kv_begin(w, key, SLIM_GGUF_ARRAY);
    if (st) return st;
    bool ok = put_u32(&w->kv, (uint32_t)elem) && put_u64(&w->kv, n);
    if (elem == SLIM_GGUF_BOOL) { /* normalized to 0/1 */
        for (uint64_t i = 0; ok && i < n; i++) {
            uint8_t b = ((const uint8_t *)data)[i] ? 1 : 0;
            ok = put(&w->kv, &b, 1);
        }
    } else if (ok) {
        ok = put(&w->kv, data, (size_t)n * sz);
    }
    return kv_end(w, ok);
}

slim_status slim_gguf_writer_kv_str_arr(slim_gguf_writer *w, const char *key,
                                        const char *const *strs, const uint32_t *lens, uint64_t n) {
    if (!strs && n)
        return slim_error(SLIM_ERR_INVALID_ARG, "gguf writer: key '%s': strings are NULL",
                          key ? key : "(null)");
    for (uint64_t i = 0; i < n; i++)
        if (!strs[i] && (!lens || lens[i]))
            return slim_error(SLIM_ERR_INVALID_ARG, "gguf writer: key '%s': string %llu is NULL",
                              key ? key : "(null)", (unsigned long long)i);
    slim_status st = kv_begin(w, key, SLIM_GGUF_ARRAY);
    if (st) return st;
    bool ok = put_u32(&w->kv, SLIM_GGUF_STRING) && put_u64(&w->kv, n);
    for (uint64_t i = 0; ok && i < n; i++)
        ok = put_str(&w->kv, strs[i], lens ? lens[i] : strlen(strs[i]));
    return kv_end(w, ok);
}

bool slim_gguf_writer_has(const slim_gguf_writer *w, const char *key) {
    for (uint64_t i = 0; w && key && i < w->n_kv; i++)
        if (strcmp(w->keys[i], key) == 0) return true;
    return false;
}

static uint64_t align_up(uint64_t x, uint64_t a) { return (x + a - 1) / a * a; }

slim_status slim_gguf_writer_tensor(slim_gguf_writer *w, const char *name, slim_dtype type,
                                    int32_t n_dims, const int64_t *ne) {
    if (!w || !name || !ne)
        return slim_error(SLIM_ERR_INVALID_ARG, "gguf writer: writer, name or shape is NULL");
    if (w->f || w->finished)
        return slim_error(SLIM_ERR_INVALID_ARG,
                          "gguf writer: tensor '%s' added after the data began", name);
    size_t len = strlen(name);
    if (len == 0 || len > NAME_MAX_LEN)
        return slim_error(SLIM_ERR_INVALID_ARG,
                          "gguf writer: tensor name '%.80s' of %zu bytes (1..%d allowed)", name,
                          len, NAME_MAX_LEN);
    int32_t block = 0, bytes = 0;
    const char *tname = slim_dtype_layout((int)type, &block, &bytes);
    if (!tname)
        return slim_error(SLIM_ERR_INVALID_ARG, "gguf writer: tensor '%s': unknown type %d", name,
                          (int)type);
    if (n_dims < 1 || n_dims > 4)
        return slim_error(SLIM_ERR_INVALID_ARG, "gguf writer: tensor '%s': %d dims", name, n_dims);
    uint64_t nel = 1;
    for (int d = 0; d < n_dims; d++) {
        if (ne[d] < 1 || (uint64_t)ne[d] > (UINT64_MAX >> 8) / nel)
            return slim_error(SLIM_ERR_INVALID_ARG, "gguf writer: tensor '%s': bad dim %d = %lld",
                              name, d, (long long)ne[d]);
        nel *= (uint64_t)ne[d];
    }
    if (ne[0] % block != 0)
        return slim_error(SLIM_ERR_INVALID_ARG,
                          "gguf writer: tensor '%s': ne[0] = %lld is not a multiple of %s's "
                          "block size %d",
                          name, (long long)ne[0], tname, block);
    for (uint64_t i = 0; i < w->n_tensors; i++)
        if (strcmp(w->tensors[i].name, name) == 0)
            return slim_error(SLIM_ERR_INVALID_ARG, "gguf writer: duplicate tensor '%s'", name);
    const uint64_t size = nel / (uint64_t)block * (uint64_t)bytes;
    if (!slim_grow((void **)&w->tensors, &w->tensors_cap, (size_t)w->n_tensors + 1,
                   sizeof *w->tensors))
        return slim_error(SLIM_ERR_NOMEM, "gguf writer: out of memory");
    const uint64_t offset = w->data_size;
    bool ok = put_str(&w->ti, name, len) && put_u32(&w->ti, (uint32_t)n_dims);
    for (int d = 0; ok && d < n_dims; d++)
        ok = put_u64(&w->ti, (uint64_t)ne[d]);
    ok = ok && put_u32(&w->ti, (uint32_t)type) && put_u64(&w->ti, offset);
    if (!ok) {
        w->nomem = true;
        return slim_error(SLIM_ERR_NOMEM, "gguf writer: out of memory");
    }
    char *copy = strdup(name);
    if (!copy) {
        w->nomem = true;
        return slim_error(SLIM_ERR_NOMEM, "gguf writer: out of memory");
    }
    w->tensors[w->n_tensors++] = (tinfo){copy, offset, size};
    w->data_size = align_up(offset + size, w->alignment);
    return SLIM_OK;
}

uint64_t slim_gguf_writer_tensor_size(const slim_gguf_writer *w, uint64_t index) {
    return w && index < w->n_tensors ? w->tensors[index].size : 0;
}

uint64_t slim_gguf_writer_tensor_count(const slim_gguf_writer *w) { return w ? w->n_tensors : 0; }

static slim_status io_error(slim_gguf_writer *w, const char *what) {
    int e = errno;
    return slim_error(SLIM_ERR_IO, "%s: %s: %s", w->path, what, e ? strerror(e) : "write failed");
}

static slim_status zeros(slim_gguf_writer *w, uint64_t n) {
    static const uint8_t z[64];
    while (n) {
        size_t k = n < sizeof z ? (size_t)n : sizeof z;
        if (fwrite(z, 1, k, w->f) != k) return io_error(w, "write");
        n -= k;
    }
    return SLIM_OK;
}

slim_status slim_gguf_writer_begin(slim_gguf_writer *w, const char *path) {
    if (!w || !path) return slim_error(SLIM_ERR_INVALID_ARG, "gguf writer: writer or path is NULL");
    if (w->f || w->finished)
        return slim_error(SLIM_ERR_INVALID_ARG, "gguf writer: %s: begin called twice", path);
    if (w->nomem) return slim_error(SLIM_ERR_NOMEM, "gguf writer: out of memory");
    size_t len = strlen(path);
    w->path = strdup(path);
    w->part = malloc(len + 6);
    if (!w->path || !w->part) return slim_error(SLIM_ERR_NOMEM, "gguf writer: out of memory");
    memcpy(w->part, path, len);
    memcpy(w->part + len, ".part", 6);
    errno = 0;
    if (!(w->f = fopen(w->part, "wb")))
        return slim_error(SLIM_ERR_IO, "%s: cannot create '%s': %s", path, w->part,
                          strerror(errno));
    buf h = {0};
    bool ok =
        put(&h, "GGUF", 4) && put_u32(&h, 3) && put_u64(&h, w->n_tensors) && put_u64(&h, w->n_kv);
    if (!ok) {
        free(h.p);
        return slim_error(SLIM_ERR_NOMEM, "gguf writer: out of memory");
    }
    errno = 0;
    ok = fwrite(h.p, 1, h.n, w->f) == h.n && /* an empty section has no buffer */
         (!w->kv.n || fwrite(w->kv.p, 1, w->kv.n, w->f) == w->kv.n) &&
         (!w->ti.n || fwrite(w->ti.p, 1, w->ti.n, w->f) == w->ti.n);
    const uint64_t head = h.n + w->kv.n + w->ti.n;
    free(h.p);
    if (!ok) return io_error(w, "write");
    /* the metadata is on disk: drop the in-memory copies */
    free(w->kv.p), free(w->ti.p);
    w->kv = w->ti = (buf){0};
    return zeros(w, align_up(head, w->alignment) - head);
}

slim_status slim_gguf_writer_data(slim_gguf_writer *w, const void *data, size_t n) {
    if (!w || !w->f)
        return slim_error(SLIM_ERR_INVALID_ARG, "gguf writer: data written before begin");
    if (!data && n) return slim_error(SLIM_ERR_INVALID_ARG, "gguf writer: data is NULL");
    const uint8_t *p = data;
    while (n) {
        if (w->cur >= w->n_tensors)
            return slim_error(SLIM_ERR_INVALID_ARG,
                              "gguf writer: %s: %zu bytes of data beyond the last tensor", w->path,
                              n);
        const tinfo *t = &w->tensors[w->cur];
        if (w->cur_done == 0 && w->pos < t->offset) { /* padding before this tensor */
            slim_status st = zeros(w, t->offset - w->pos);
            if (st) return st;
            w->pos = t->offset;
        }
        uint64_t left = t->size - w->cur_done;
        size_t k = left < n ? (size_t)left : n;
        errno = 0;
        if (fwrite(p, 1, k, w->f) != k) return io_error(w, "write");
        p += k, n -= k;
        w->cur_done += k, w->pos += k;
        if (w->cur_done == t->size) w->cur++, w->cur_done = 0;
    }
    return SLIM_OK;
}

slim_status slim_gguf_writer_finish(slim_gguf_writer *w) {
    if (!w || !w->f)
        return slim_error(SLIM_ERR_INVALID_ARG, "gguf writer: finish called before begin");
    /* zero-size tensors cannot exist (dims >= 1), so all are done when cur is past the end */
    if (w->cur < w->n_tensors)
        return slim_error(SLIM_ERR_INVALID_ARG,
                          "gguf writer: %s: tensor %llu of %llu incomplete (%llu of %llu bytes)",
                          w->path, (unsigned long long)w->cur, (unsigned long long)w->n_tensors,
                          (unsigned long long)w->cur_done,
                          (unsigned long long)w->tensors[w->cur].size);
    slim_status st = zeros(w, w->data_size - w->pos); /* gguf-py pads after the last tensor too */
    if (st) return st;
    errno = 0;
    int bad = fflush(w->f) != 0 || ferror(w->f);
    bad |= fclose(w->f) != 0;
    w->f = NULL;
    if (bad) {
        st = io_error(w, "write");
        remove(w->part);
        return st;
    }
    if (rename(w->part, w->path) != 0) {
        st = slim_error(SLIM_ERR_IO, "%s: cannot rename '%s' to it: %s", w->path, w->part,
                        strerror(errno));
        remove(w->part);
        return st;
    }
    w->finished = true;
    return SLIM_OK;
}
