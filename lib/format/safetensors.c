/* safetensors reader (see safetensors.h for the rules checked). */
#include "format/safetensors.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

typedef unsigned long long ull;

enum { NAME_SHOWN = 96, SHAPE_TEXT = 160 };

/* ---- name -> index hash (tensor lookup) --------------------------------------------------- */

typedef struct name_index {
    uint32_t *slot; /* index + 1; 0 = empty */
    size_t mask;
} name_index;

static uint64_t hash_name(const char *s, size_t n) {
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (uint8_t)s[i]) * 1099511628211ull;
    return h ^ (h >> 29);
}

static bool index_init(name_index *ix, size_t n) {
    size_t cap = 16;
    while (cap < 2 * n)
        cap *= 2;
    ix->slot = calloc(cap, sizeof *ix->slot);
    ix->mask = cap - 1;
    return ix->slot != NULL;
}

/* Insert tensor i of ts (names unique: the header JSON has no duplicate keys;
 * a set's weight_map neither). */
static void index_put(name_index *ix, const slim_st_tensor *const *ts, uint32_t i) {
    for (size_t h = hash_name(ts[i]->name, ts[i]->name_len) & ix->mask;; h = (h + 1) & ix->mask)
        if (!ix->slot[h]) {
            ix->slot[h] = i + 1;
            return;
        }
}

static const slim_st_tensor *index_get(const name_index *ix, const slim_st_tensor *const *ts,
                                       const char *name) {
    if (!ix->slot || !name) return NULL;
    size_t n = strlen(name);
    for (size_t h = hash_name(name, n) & ix->mask;; h = (h + 1) & ix->mask) {
        uint32_t v = ix->slot[h];
        if (!v) return NULL;
        const slim_st_tensor *t = ts[v - 1];
        if (t->name_len == n && memcmp(t->name, name, n) == 0) return t;
    }
}

/* ---- dtypes ------------------------------------------------------------------------------- */

static const struct {
    const char *name;
    int bits;
} dtypes[SLIM_ST_DTYPE_COUNT] = {
    [SLIM_ST_BOOL] = {"BOOL", 8},
    [SLIM_ST_U8] = {"U8", 8},
    [SLIM_ST_I8] = {"I8", 8},
    [SLIM_ST_U16] = {"U16", 16},
    [SLIM_ST_I16] = {"I16", 16},
    [SLIM_ST_U32] = {"U32", 32},
    [SLIM_ST_I32] = {"I32", 32},
    [SLIM_ST_U64] = {"U64", 64},
    [SLIM_ST_I64] = {"I64", 64},
    [SLIM_ST_F16] = {"F16", 16},
    [SLIM_ST_BF16] = {"BF16", 16},
    [SLIM_ST_F32] = {"F32", 32},
    [SLIM_ST_F64] = {"F64", 64},
    [SLIM_ST_C64] = {"C64", 64},
    [SLIM_ST_F8_E4M3] = {"F8_E4M3", 8},
    [SLIM_ST_F8_E5M2] = {"F8_E5M2", 8},
    [SLIM_ST_F8_E4M3FNUZ] = {"F8_E4M3FNUZ", 8},
    [SLIM_ST_F8_E5M2FNUZ] = {"F8_E5M2FNUZ", 8},
    [SLIM_ST_F8_E8M0] = {"F8_E8M0", 8},
    [SLIM_ST_F4] = {"F4", 4},
    [SLIM_ST_F6_E2M3] = {"F6_E2M3", 6},
    [SLIM_ST_F6_E3M2] = {"F6_E3M2", 6},
};

const char *slim_st_dtype_name(slim_st_dtype t) {
    return (unsigned)t < SLIM_ST_DTYPE_COUNT ? dtypes[t].name : "?";
}

int slim_st_dtype_bits(slim_st_dtype t) {
    return (unsigned)t < SLIM_ST_DTYPE_COUNT ? dtypes[t].bits : 0;
}

int slim_st_dtype_from_name(const char *s, size_t len) {
    if (!s) return -1;
    for (int t = 0; t < SLIM_ST_DTYPE_COUNT; t++)
        if (strlen(dtypes[t].name) == len && memcmp(dtypes[t].name, s, len) == 0) return t;
    return -1;
}

bool slim_st_dtype_to_slim(slim_st_dtype t, slim_dtype *out) {
    slim_dtype d;
    switch (t) {
    case SLIM_ST_F32: d = SLIM_DTYPE_F32; break;
    case SLIM_ST_F16: d = SLIM_DTYPE_F16; break;
    case SLIM_ST_BF16: d = SLIM_DTYPE_BF16; break;
    default: return false;
    }
    if (out) *out = d;
    return true;
}

bool slim_st_tensor_aligned(const slim_st_tensor *t) {
    if (!t) return false;
    int bits = slim_st_dtype_bits(t->dtype);
    uint32_t need = bits <= 8 ? 1u : (uint32_t)bits / 8;
    if (t->dtype == SLIM_ST_C64) need = 4; /* two F32s */
    return t->align >= need;
}

/* ---- messages ----------------------------------------------------------------------------- */

/* A name for a message, quoted: at most NAME_SHOWN bytes (not splitting UTF-8)
 * then "...", control characters (NUL included) as '?'.  cap >= NAME_SHOWN + 6. */
static void show_name(char *buf, size_t cap, const char *s, size_t n) {
    size_t m = n < NAME_SHOWN ? n : NAME_SHOWN;
    while (m < n && m > 0 && ((uint8_t)s[m] & 0xC0) == 0x80)
        m--;
    if (m + 6 > cap) m = 0; /* (cannot happen with the callers' buffers) */
    size_t k = 0;
    buf[k++] = '\'';
    for (size_t i = 0; i < m; i++)
        buf[k++] = (uint8_t)s[i] < 0x20 ? '?' : s[i];
    if (m < n) {
        memcpy(buf + k, "...", 3);
        k += 3;
    }
    buf[k++] = '\'';
    buf[k] = '\0';
}

static slim_status terr(slim_status s, const char *name, size_t name_len, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static slim_status terr(slim_status s, const char *name, size_t name_len, const char *fmt, ...) {
    char shown[NAME_SHOWN + 8], msg[512];
    show_name(shown, sizeof shown, name, name_len);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return slim_error(s, "safetensors: tensor %s: %s", shown, msg);
}

static void shape_text(char *buf, size_t cap, const slim_st_tensor *t) {
    size_t n = (size_t)snprintf(buf, cap, "[");
    for (int d = 0; d < t->n_dims && n < cap; d++)
        n += (size_t)snprintf(buf + n, cap - n, "%s%lld", d ? ", " : "", (long long)t->shape[d]);
    if (n < cap) snprintf(buf + n, cap - n, "]");
}

/* ---- one file ----------------------------------------------------------------------------- */

typedef struct st_impl {
    slim_st_file pub; /* first: a slim_st_file * from open is an st_impl * */
    bool owns_map;
    char *path_copy;
    name_index names;
    const slim_st_tensor **by_index; /* &tensors[i], for the name index */
} st_impl;

static uint64_t ld64(const uint8_t *p) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

/* A non-negative integer member of a JSON array (shape entries, offsets). */
static bool nonneg(const slim_json *v, int64_t *out) { return slim_json_i64(v, out) && *out >= 0; }

static slim_status parse_info(slim_st_tensor *t, const slim_json *info, uint64_t data_size) {
    const char *nm = t->name;
    size_t nl = t->name_len;
    if (slim_json_type_of(info) != SLIM_JSON_OBJECT)
        return terr(SLIM_ERR_FORMAT, nm, nl, "expected an object, got %s",
                    slim_json_type_name(slim_json_type_of(info)));
    if (memchr(nm, '\0', nl))
        return terr(SLIM_ERR_UNSUPPORTED, nm, nl,
                    "names containing a NUL character are not supported");

    const slim_json *v = slim_json_get(info, "dtype");
    size_t dl;
    const char *ds = slim_json_str(v, &dl);
    if (!v) return terr(SLIM_ERR_FORMAT, nm, nl, "missing \"dtype\"");
    if (!ds)
        return terr(SLIM_ERR_FORMAT, nm, nl, "\"dtype\" is %s, expected a string",
                    slim_json_type_name(slim_json_type_of(v)));
    int dt = slim_st_dtype_from_name(ds, dl);
    if (dt < 0) {
        char shown[NAME_SHOWN + 8];
        show_name(shown, sizeof shown, ds, dl);
        return terr(SLIM_ERR_UNSUPPORTED, nm, nl, "unknown dtype %s", shown);
    }
    t->dtype = (slim_st_dtype)dt;

    v = slim_json_get(info, "shape");
    if (!v) return terr(SLIM_ERR_FORMAT, nm, nl, "missing \"shape\"");
    if (slim_json_type_of(v) != SLIM_JSON_ARRAY)
        return terr(SLIM_ERR_FORMAT, nm, nl, "\"shape\" is %s, expected an array",
                    slim_json_type_name(slim_json_type_of(v)));
    size_t nd = slim_json_len(v);
    if (nd > SLIM_ST_MAX_DIMS)
        return terr(SLIM_ERR_UNSUPPORTED, nm, nl, "%zu dimensions (slim supports up to %d)", nd,
                    SLIM_ST_MAX_DIMS);
    t->n_dims = (int)nd;
    int64_t numel = 1;
    bool overflow = false;
    for (int d = 0; d < SLIM_ST_MAX_DIMS; d++)
        t->shape[d] = 1;
    for (size_t d = 0; d < nd; d++) {
        const slim_json *e = slim_json_at(v, d);
        int64_t x;
        if (!nonneg(e, &x)) {
            double dv;
            if (slim_json_num(e, &dv))
                return terr(SLIM_ERR_FORMAT, nm, nl,
                            "shape[%zu] = %.17g is not a non-negative integer", d, dv);
            return terr(SLIM_ERR_FORMAT, nm, nl,
                        "shape[%zu] is %s, expected a non-negative integer", d,
                        slim_json_type_name(slim_json_type_of(e)));
        }
        t->shape[d] = x;
        if (__builtin_mul_overflow(numel, x, &numel)) overflow = true;
    }
    char shape[SHAPE_TEXT];
    shape_text(shape, sizeof shape, t);
    if (overflow) /* as the reference: even when a later dimension is 0 */
        return terr(SLIM_ERR_FORMAT, nm, nl, "the element count of shape %s overflows int64",
                    shape);
    t->numel = numel;
    uint64_t bits;
    int eb = slim_st_dtype_bits(t->dtype);
    if (__builtin_mul_overflow((uint64_t)numel, (uint64_t)eb, &bits))
        return terr(SLIM_ERR_FORMAT, nm, nl, "the byte size of shape %s of %s overflows", shape,
                    slim_st_dtype_name(t->dtype));
    if (bits % 8 != 0)
        return terr(SLIM_ERR_FORMAT, nm, nl,
                    "shape %s of %s (%d-bit elements) is not a whole number of bytes", shape,
                    slim_st_dtype_name(t->dtype), eb);
    uint64_t need = bits / 8;

    v = slim_json_get(info, "data_offsets");
    if (!v) return terr(SLIM_ERR_FORMAT, nm, nl, "missing \"data_offsets\"");
    if (slim_json_type_of(v) != SLIM_JSON_ARRAY)
        return terr(SLIM_ERR_FORMAT, nm, nl,
                    "\"data_offsets\" is %s, expected an array of 2 integers [begin, end]",
                    slim_json_type_name(slim_json_type_of(v)));
    if (slim_json_len(v) != 2)
        return terr(SLIM_ERR_FORMAT, nm, nl,
                    "\"data_offsets\" has %zu entries, expected 2 integers [begin, end]",
                    slim_json_len(v));
    int64_t b, e;
    for (int k = 0; k < 2; k++) {
        const slim_json *o = slim_json_at(v, (size_t)k);
        if (!nonneg(o, k ? &e : &b)) {
            double dv;
            if (slim_json_num(o, &dv))
                return terr(SLIM_ERR_FORMAT, nm, nl,
                            "data_offsets[%d] = %.17g is not a non-negative integer", k, dv);
            return terr(SLIM_ERR_FORMAT, nm, nl,
                        "data_offsets[%d] is %s, expected a non-negative integer", k,
                        slim_json_type_name(slim_json_type_of(o)));
        }
    }
    t->begin = (uint64_t)b;
    t->end = (uint64_t)e;
    if (t->begin > t->end)
        return terr(SLIM_ERR_FORMAT, nm, nl, "data_offsets [%llu, %llu]: begin is after end",
                    (ull)t->begin, (ull)t->end);
    if (t->end > data_size)
        return terr(SLIM_ERR_FORMAT, nm, nl,
                    "data_offsets [%llu, %llu] past the end of the data section (%llu bytes)",
                    (ull)t->begin, (ull)t->end, (ull)data_size);
    t->size = t->end - t->begin;
    if (t->size != need)
        return terr(SLIM_ERR_FORMAT, nm, nl,
                    "data_offsets [%llu, %llu] hold %llu bytes, but shape %s of %s needs %llu",
                    (ull)t->begin, (ull)t->end, (ull)t->size, shape, slim_st_dtype_name(t->dtype),
                    (ull)need);
    return SLIM_OK;
}

static int cmp_offsets(const void *pa, const void *pb) {
    const slim_st_tensor *a = pa, *b = pb;
    if (a->begin != b->begin) return a->begin < b->begin ? -1 : 1;
    if (a->end != b->end) return a->end < b->end ? -1 : 1;
    return (a->file_index > b->file_index) - (a->file_index < b->file_index); /* header order */
}

static slim_status parse_file(st_impl *impl) {
    slim_st_file *f = &impl->pub;
    const uint8_t *p = f->map.data;
    uint64_t size = f->map.size;
    if (size < 8)
        return slim_error(SLIM_ERR_FORMAT,
                          "safetensors: file too small for a header (%llu bytes, need at least 8)",
                          (ull)size);
    uint64_t n = ld64(p);
    if (n > SLIM_ST_MAX_HEADER)
        return slim_error(SLIM_ERR_FORMAT,
                          "safetensors: header length %llu exceeds the limit of %llu bytes", (ull)n,
                          (ull)SLIM_ST_MAX_HEADER);
    if (n > size - 8)
        return slim_error(SLIM_ERR_FORMAT,
                          "safetensors: header length %llu exceeds the %llu bytes after the "
                          "length field (file size %llu)",
                          (ull)n, (ull)(size - 8), (ull)size);
    if (n < 2)
        return slim_error(SLIM_ERR_FORMAT,
                          "safetensors: header length %llu is too small for a JSON object", (ull)n);
    if (p[8] != '{')
        return slim_error(SLIM_ERR_FORMAT,
                          "safetensors: the header does not start with '{' (byte 0x%02x at "
                          "offset 8)",
                          p[8]);
    f->header_len = n;
    f->data_offset = 8 + n;
    f->data_size = size - f->data_offset;
    slim_status s =
        slim_json_parse((const char *)p + 8, (size_t)n, "safetensors: header", &f->header);
    if (s) return s;
    const slim_json *root = slim_json_root(f->header);
    if (slim_json_type_of(root) != SLIM_JSON_OBJECT) /* cannot happen after the '{' check */
        return slim_error(SLIM_ERR_FORMAT, "safetensors: the header is not a JSON object");

    size_t nm = slim_json_len(root), nt = 0;
    f->tensors = calloc(nm ? nm : 1, sizeof *f->tensors);
    if (!f->tensors)
        return slim_error(SLIM_ERR_NOMEM, "safetensors: out of memory for %zu tensors", nm);
    for (size_t i = 0; i < nm; i++) {
        const char *key;
        size_t kl;
        const slim_json *v = slim_json_member(root, i, &key, &kl);
        if (kl == 12 && memcmp(key, "__metadata__", 12) == 0) {
            if (slim_json_is_null(v)) continue;
            if (slim_json_type_of(v) != SLIM_JSON_OBJECT)
                return slim_error(SLIM_ERR_FORMAT,
                                  "safetensors: \"__metadata__\" is %s, expected an object of "
                                  "strings",
                                  slim_json_type_name(slim_json_type_of(v)));
            for (size_t j = 0; j < slim_json_len(v); j++) {
                const char *mk;
                size_t mkl;
                const slim_json *mv = slim_json_member(v, j, &mk, &mkl);
                if (slim_json_type_of(mv) != SLIM_JSON_STRING) {
                    char shown[NAME_SHOWN + 8];
                    show_name(shown, sizeof shown, mk, mkl);
                    return slim_error(SLIM_ERR_FORMAT,
                                      "safetensors: \"__metadata__\" %s is %s, expected a string",
                                      shown, slim_json_type_name(slim_json_type_of(mv)));
                }
            }
            f->metadata = v;
            continue;
        }
        slim_st_tensor *t = &f->tensors[nt];
        t->name = key;
        t->name_len = kl;
        t->file_index = (uint32_t)nt; /* header order, for sorting ties; reset below */
        if ((s = parse_info(t, v, f->data_size))) return s;
        nt++;
    }
    f->n_tensors = nt;

    /* In offset order the tensors must tile the data section exactly. */
    qsort(f->tensors, nt, sizeof *f->tensors, cmp_offsets);
    uint64_t at = 0;
    for (size_t i = 0; i < nt; i++) {
        slim_st_tensor *t = &f->tensors[i];
        if (t->begin < at) {
            const slim_st_tensor *q = &f->tensors[i - 1];
            char other[NAME_SHOWN + 8];
            show_name(other, sizeof other, q->name, q->name_len);
            return terr(SLIM_ERR_FORMAT, t->name, t->name_len,
                        "data_offsets [%llu, %llu] overlap tensor %s [%llu, %llu]", (ull)t->begin,
                        (ull)t->end, other, (ull)q->begin, (ull)q->end);
        }
        if (t->begin > at) {
            if (i == 0)
                return terr(SLIM_ERR_FORMAT, t->name, t->name_len,
                            "data_offsets [%llu, %llu] leave bytes [0, %llu) of the data section "
                            "before the first tensor unused",
                            (ull)t->begin, (ull)t->end, (ull)t->begin);
            const slim_st_tensor *q = &f->tensors[i - 1];
            char other[NAME_SHOWN + 8];
            show_name(other, sizeof other, q->name, q->name_len);
            return terr(SLIM_ERR_FORMAT, t->name, t->name_len,
                        "data_offsets [%llu, %llu] leave a gap [%llu, %llu) after tensor %s",
                        (ull)t->begin, (ull)t->end, (ull)at, (ull)t->begin, other);
        }
        at = t->end;
        t->offset = f->data_offset + t->begin;
        t->data = p + t->offset;
        uintptr_t addr = (uintptr_t)t->data;
        t->align = addr ? (uint32_t)(addr & (~addr + 1)) : 4096;
        if (t->align > 4096 || t->align == 0) t->align = 4096;
        t->file_index = 0;
    }
    if (at != f->data_size)
        return slim_error(SLIM_ERR_FORMAT,
                          "safetensors: the tensors cover %llu bytes of the %llu-byte data section "
                          "(file size %llu): %llu bytes after the last tensor are unused",
                          (ull)at, (ull)f->data_size, (ull)size, (ull)(f->data_size - at));

    impl->by_index = malloc((nt ? nt : 1) * sizeof *impl->by_index);
    if (!impl->by_index || !index_init(&impl->names, nt))
        return slim_error(SLIM_ERR_NOMEM, "safetensors: out of memory for the tensor index");
    for (size_t i = 0; i < nt; i++) {
        impl->by_index[i] = &f->tensors[i];
        index_put(&impl->names, impl->by_index, (uint32_t)i);
    }
    return SLIM_OK;
}

void slim_st_close(slim_st_file *f) {
    if (!f) return;
    st_impl *impl = (st_impl *)f;
    free(f->tensors);
    slim_json_free(f->header);
    free(impl->names.slot);
    free(impl->by_index);
    if (impl->owns_map) slim_file_map_close(&f->map);
    free(impl->path_copy);
    free(impl);
}

static slim_status open_common(st_impl *impl, slim_st_file **out) {
    slim_status s = parse_file(impl);
    if (s) {
        slim_st_close(&impl->pub);
        return s;
    }
    *out = &impl->pub;
    return SLIM_OK;
}

slim_status slim_st_open_memory(const void *data, size_t size, slim_st_file **out) {
    if (!out) return slim_error(SLIM_ERR_INVALID_ARG, "slim_st_open_memory: out is NULL");
    *out = NULL;
    if (!data && size) return slim_error(SLIM_ERR_INVALID_ARG, "slim_st_open_memory: data is NULL");
    st_impl *impl = calloc(1, sizeof *impl);
    if (!impl) return slim_error(SLIM_ERR_NOMEM, "safetensors: out of memory");
    impl->pub.map.data = data;
    impl->pub.map.size = size;
    impl->pub.path = "<memory>";
    return open_common(impl, out);
}

slim_status slim_st_open(const char *path, bool use_mmap, slim_st_file **out) {
    if (!out) return slim_error(SLIM_ERR_INVALID_ARG, "slim_st_open: out is NULL");
    *out = NULL;
    if (!path) return slim_error(SLIM_ERR_INVALID_ARG, "slim_st_open: path is NULL");
    st_impl *impl = calloc(1, sizeof *impl);
    char *copy = impl ? strdup(path) : NULL;
    if (!copy) {
        free(impl);
        return slim_error(SLIM_ERR_NOMEM, "%s: safetensors: out of memory", path);
    }
    impl->path_copy = copy;
    impl->pub.path = copy;
    slim_status s = slim_file_map_open(path, use_mmap, &impl->pub.map); /* names the path */
    if (s) {
        free(copy);
        free(impl);
        return s;
    }
    impl->owns_map = true;
    s = open_common(impl, out);
    if (s) return slim_error_prefix(s, "%s", path);
    return SLIM_OK;
}

const slim_st_tensor *slim_st_find(const slim_st_file *f, const char *name) {
    if (!f) return NULL;
    const st_impl *impl = (const st_impl *)f;
    return index_get(&impl->names, impl->by_index, name);
}

const char *slim_st_meta(const slim_st_file *f, const char *key) {
    return f ? slim_json_str(slim_json_get(f->metadata, key), NULL) : NULL;
}

/* ---- sets: sharded checkpoints and directories --------------------------------------------- */

typedef struct set_impl {
    slim_st_set pub;
    name_index names;
} set_impl;

void slim_st_set_close(slim_st_set *set) {
    if (!set) return;
    set_impl *impl = (set_impl *)set;
    if (set->files)
        for (size_t i = 0; i < set->n_files; i++)
            slim_st_close(set->files[i]);
    free(set->files);
    free(set->tensors);
    slim_json_free(set->index);
    free(impl->names.slot);
    free(impl);
}

static slim_status set_index_names(set_impl *impl, const char *what) {
    slim_st_set *set = &impl->pub;
    if (!index_init(&impl->names, set->n_tensors))
        return slim_error(SLIM_ERR_NOMEM, "%s: out of memory for the tensor index", what);
    for (size_t i = 0; i < set->n_tensors; i++)
        index_put(&impl->names, set->tensors, (uint32_t)i);
    return SLIM_OK;
}

slim_status slim_st_open_file_set(const char *path, bool use_mmap, slim_st_set **out) {
    if (!out) return slim_error(SLIM_ERR_INVALID_ARG, "slim_st_open_file_set: out is NULL");
    *out = NULL;
    set_impl *impl = calloc(1, sizeof *impl);
    if (!impl) return slim_error(SLIM_ERR_NOMEM, "safetensors: out of memory");
    slim_st_set *set = &impl->pub;
    set->files = calloc(1, sizeof *set->files);
    if (!set->files) {
        slim_st_set_close(set);
        return slim_error(SLIM_ERR_NOMEM, "safetensors: out of memory");
    }
    slim_status s = slim_st_open(path, use_mmap, &set->files[0]);
    if (s) {
        slim_st_set_close(set);
        return s;
    }
    set->n_files = 1;
    slim_st_file *f = set->files[0];
    set->tensors = malloc((f->n_tensors ? f->n_tensors : 1) * sizeof *set->tensors);
    if (!set->tensors) {
        slim_st_set_close(set);
        return slim_error(SLIM_ERR_NOMEM, "%s: out of memory", path);
    }
    for (size_t i = 0; i < f->n_tensors; i++)
        set->tensors[i] = &f->tensors[i];
    set->n_tensors = f->n_tensors;
    if ((s = set_index_names(impl, path))) {
        slim_st_set_close(set);
        return s;
    }
    *out = set;
    return SLIM_OK;
}

/* "dir/name" (dir "" or NULL: name alone). */
static char *join_path(const char *dir, size_t dir_len, const char *name) {
    size_t nl = strlen(name);
    char *p = malloc(dir_len + 1 + nl + 1);
    if (!p) return NULL;
    if (dir_len) {
        memcpy(p, dir, dir_len);
        p[dir_len] = '/';
        memcpy(p + dir_len + 1, name, nl + 1);
    } else {
        memcpy(p, name, nl + 1);
    }
    return p;
}

static slim_status open_index(set_impl *impl, const char *index_path, bool use_mmap) {
    slim_st_set *set = &impl->pub;
    slim_status s = slim_json_parse_file(index_path, &set->index);
    if (s) return s;
    const slim_json *root = slim_json_root(set->index), *wm;
    if (slim_json_type_of(root) != SLIM_JSON_OBJECT)
        return slim_error(SLIM_ERR_FORMAT, "%s: expected a JSON object, got %s", index_path,
                          slim_json_type_name(slim_json_type_of(root)));
    if ((s = slim_json_cfg_value(set->index, root, "weight_map", SLIM_JSON_OBJECT, true, &wm)))
        return s;
    const char *slash = strrchr(index_path, '/');
    size_t dir_len = slash ? (size_t)(slash - index_path) + (slash == index_path) : 0;
    size_t n = slim_json_len(wm);

    /* The distinct shard names, in order of first use, each opened once. */
    const char **names = calloc(n ? n : 1, sizeof *names);
    uint32_t *which = calloc(n ? n : 1, sizeof *which); /* shard of each weight_map entry */
    set->files = calloc(n ? n : 1, sizeof *set->files);
    set->tensors = calloc(n ? n : 1, sizeof *set->tensors);
    if (!names || !which || !set->files || !set->tensors) {
        free(names);
        free(which);
        return slim_error(SLIM_ERR_NOMEM, "%s: out of memory", index_path);
    }
    size_t n_names = 0;
    for (size_t i = 0; i < n && !s; i++) {
        const char *key, *file;
        size_t kl, fl;
        const slim_json *v = slim_json_member(wm, i, &key, &kl);
        char shown[NAME_SHOWN + 8];
        show_name(shown, sizeof shown, key, kl);
        file = slim_json_str(v, &fl);
        if (!file) {
            s = slim_error(SLIM_ERR_FORMAT, "%s: weight_map[%s]: expected a file name, got %s",
                           index_path, shown, slim_json_type_name(slim_json_type_of(v)));
            break;
        }
        if (fl == 0 || memchr(file, '/', fl) || memchr(file, '\0', fl) ||
            (fl == 1 && file[0] == '.') || (fl == 2 && file[0] == '.' && file[1] == '.')) {
            char fshown[NAME_SHOWN + 8];
            show_name(fshown, sizeof fshown, file, fl);
            s = slim_error(SLIM_ERR_FORMAT,
                           "%s: weight_map[%s]: shard %s is not a plain file name in the index's "
                           "directory",
                           index_path, shown, fshown);
            break;
        }
        size_t k = (i > 0 && strcmp(names[which[i - 1]], file) == 0) ? which[i - 1] : n_names;
        for (size_t j = 0; j < n_names && k == n_names; j++)
            if (strcmp(names[j], file) == 0) k = j;
        if (k == n_names) {
            char *path = join_path(index_path, dir_len, file);
            if (!path) {
                s = slim_error(SLIM_ERR_NOMEM, "%s: out of memory", index_path);
                break;
            }
            s = slim_st_open(path, use_mmap, &set->files[n_names]);
            free(path);
            if (s) {
                s = slim_error_prefix(s, "%s", index_path);
                break;
            }
            names[n_names] = file;
            set->n_files = ++n_names;
        }
        which[i] = (uint32_t)k;
        const slim_st_tensor *t = slim_st_find(set->files[k], key);
        if (!t || t->name_len != kl) {
            s = slim_error(SLIM_ERR_FORMAT,
                           "%s: tensor %s is mapped to '%s', which has no such tensor", index_path,
                           shown, file);
            break;
        }
        ((slim_st_tensor *)t)->file_index = (uint32_t)k;
        set->tensors[i] = t;
        set->n_tensors = i + 1;
    }
    free(names);
    free(which);
    if (s) return s;
    return set_index_names(impl, index_path);
}

slim_status slim_st_open_index(const char *index_path, bool use_mmap, slim_st_set **out) {
    if (!out) return slim_error(SLIM_ERR_INVALID_ARG, "slim_st_open_index: out is NULL");
    *out = NULL;
    if (!index_path) return slim_error(SLIM_ERR_INVALID_ARG, "slim_st_open_index: path is NULL");
    set_impl *impl = calloc(1, sizeof *impl);
    if (!impl) return slim_error(SLIM_ERR_NOMEM, "safetensors: out of memory");
    slim_status s = open_index(impl, index_path, use_mmap);
    if (s) {
        slim_st_set_close(&impl->pub);
        return s;
    }
    *out = &impl->pub;
    return SLIM_OK;
}

static bool is_file(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

slim_status slim_st_open_dir(const char *dir, const char *stem, bool use_mmap, slim_st_set **out) {
    if (!out) return slim_error(SLIM_ERR_INVALID_ARG, "slim_st_open_dir: out is NULL");
    *out = NULL;
    if (!dir) return slim_error(SLIM_ERR_INVALID_ARG, "slim_st_open_dir: dir is NULL");
    if (!stem) stem = "model";
    struct stat st;
    if (stat(dir, &st) != 0) return slim_error(SLIM_ERR_IO, "open '%s': %s", dir, strerror(errno));
    if (!S_ISDIR(st.st_mode))
        return slim_error(SLIM_ERR_IO, "open '%s': %s", dir, strerror(ENOTDIR));
    size_t dl = strlen(dir);
    while (dl > 1 && dir[dl - 1] == '/')
        dl--;
    size_t sl = strlen(stem);
    char *name = malloc(sl + sizeof ".safetensors.index.json");
    if (!name) return slim_error(SLIM_ERR_NOMEM, "%s: out of memory", dir);
    memcpy(name, stem, sl);
    memcpy(name + sl, ".safetensors", sizeof ".safetensors");
    char *single = join_path(dir, dl, name);
    memcpy(name + sl, ".safetensors.index.json", sizeof ".safetensors.index.json");
    char *index = join_path(dir, dl, name);
    free(name);
    slim_status s;
    if (!single || !index) {
        s = slim_error(SLIM_ERR_NOMEM, "%s: out of memory", dir);
    } else if (is_file(single)) {
        s = slim_st_open_file_set(single, use_mmap, out);
    } else if (is_file(index)) {
        s = slim_st_open_index(index, use_mmap, out);
    } else {
        s = slim_error(SLIM_ERR_IO, "'%s': no %s.safetensors or %s.safetensors.index.json in it",
                       dir, stem, stem);
    }
    free(single);
    free(index);
    return s;
}

const slim_st_tensor *slim_st_set_find(const slim_st_set *set, const char *name) {
    if (!set) return NULL;
    const set_impl *impl = (const set_impl *)set;
    return index_get(&impl->names, set->tensors, name);
}

const slim_st_file *slim_st_set_file_of(const slim_st_set *set, const slim_st_tensor *t) {
    if (!set || !t || t->file_index >= set->n_files) return NULL;
    return set->files[t->file_index];
}
