/* LoRA adapters: loading (a PEFT directory or a llama.cpp GGUF adapter), the
 * reference count (attaching to contexts and the forward hook are the runtime's:
 * runtime/lora_apply.c).
 *
 * Every adapter pair becomes F32 tensors in the model's backend memory: A as
 * a weight of r rows (ne = {in, r}) and B as one weight per output it feeds
 * (ne = {r, rows}; a fused Q/K/V or gate/up B is split into row views), so
 * the hook is two backend matmuls, a scale and an add per pair.  The rank is
 * padded to a multiple of 4 with zero rows of A and zero columns of B (the
 * CUDA float kernels want rows of 16 bytes): that adds exact zeros only. */
#include "model/lora.h"

#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "format/gguf.h"
#include "format/json.h"
#include "format/safetensors.h"
#include "quant/dtype.h"

enum { MAX_RANK = 1 << 16, RANK_PAD = 4, ALIGN_FLOATS = 16 };

/* What each target adapts; its names are the weight's in the arch's tensor
 * table (a GGUF adapter's "blk.N.attn_q.weight", a PEFT module's
 * "layers.N.self_attn.q_proj"). */
static const struct {
    slim_wslot slot;
    bool gguf; /* has a GGUF name of its own (a 2*n_ff ffn_up is GATE_UP) */
    slim_lora_site site;
} targets[LORA_T_COUNT] = {
    [LORA_T_Q] = {SLIM_W_Q, true, SLIM_LORA_QKV},
    [LORA_T_K] = {SLIM_W_K, true, SLIM_LORA_QKV},
    [LORA_T_V] = {SLIM_W_V, true, SLIM_LORA_QKV},
    [LORA_T_O] = {SLIM_W_O, true, SLIM_LORA_O},
    [LORA_T_GATE] = {SLIM_W_GATE, true, SLIM_LORA_GATE_UP},
    [LORA_T_UP] = {SLIM_W_UP, true, SLIM_LORA_GATE_UP},
    [LORA_T_DOWN] = {SLIM_W_DOWN, true, SLIM_LORA_DOWN},
    [LORA_T_QKV] = {SLIM_W_QKV, true, SLIM_LORA_QKV},
    [LORA_T_GATE_UP] = {SLIM_W_GATE_UP, false, SLIM_LORA_GATE_UP},
};

/* A table name's part after the layer ("%d."), *len without ".weight". */
static const char *name_stem(const char *fmt, size_t *len) {
    const char *d = strstr(fmt, "%d.");
    const char *stem = d ? d + 3 : fmt;
    *len = strlen(stem);
    if (*len >= 7 && strcmp(stem + *len - 7, ".weight") == 0) *len -= 7;
    return stem;
}

/* The layer prefix of the table's names ("blk.%d." / "layers.%d.") as a
 * sscanf format ending in %n. */
static void layer_prefix(const slim_model *m, bool hf, char *fmt, size_t cap) {
    const slim_tensor_spec *s = slim_arch_spec(m->arch, SLIM_W_ATTN_NORM);
    const char *f = hf ? s->hf : s->gguf, *d = strstr(f, "%d.");
    snprintf(fmt, cap, "%.*s%%n", (int)(d ? d + 3 - f : 0), f);
}

/* The target whose table name's stem is mod[0..len), or -1. */
static int target_by_stem(const slim_model *m, bool hf, const char *mod, size_t len) {
    for (int k = 0; k < LORA_T_COUNT; k++) {
        const slim_tensor_spec *s = slim_arch_spec(m->arch, targets[k].slot);
        const char *fmt = s ? (hf ? s->hf : s->gguf) : NULL;
        if (!fmt || (!hf && !targets[k].gguf)) continue;
        size_t n;
        const char *stem = name_stem(fmt, &n);
        if (n == len && memcmp(stem, mod, len) == 0) return k;
    }
    return -1;
}

/* ------------------------------------------------------------------ loading */

/* A pair as read from the file, before layout: row-major F32 copies. */
typedef struct raw_pair {
    int32_t layer;
    slim_lora_target tgt;
    int32_t rank;
    int64_t in, out;
    float alpha_scale;
    float *a, *b;   /* [rank][in], [out][rank] */
    char name[256]; /* for messages */
} raw_pair;

typedef struct raw_list {
    raw_pair *v;
    size_t n, cap;
} raw_list;

static void raw_free(raw_list *l) {
    for (size_t i = 0; i < l->n; i++) {
        free(l->v[i].a);
        free(l->v[i].b);
    }
    free(l->v);
}

static raw_pair *raw_push(raw_list *l) {
    if (l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 32;
        raw_pair *v = realloc(l->v, cap * sizeof *v);
        if (!v) return NULL;
        l->v = v;
        l->cap = cap;
    }
    raw_pair *p = &l->v[l->n++];
    memset(p, 0, sizeof *p);
    return p;
}

/* The model weights a slim_lora_target adapts: input width and each output's rows. */
static int target_outputs(const slim_model *m, int il, slim_lora_target t, int64_t *in,
                          int64_t rows[3], int slots[3]) {
    const slim_layer *l = &m->layers[il];
    switch (t) {
    case LORA_T_Q: *in = l->wq.ne[0], rows[0] = l->wq.ne[1], slots[0] = 0; return 1;
    case LORA_T_K: *in = l->wk.ne[0], rows[0] = l->wk.ne[1], slots[0] = 1; return 1;
    case LORA_T_V: *in = l->wv.ne[0], rows[0] = l->wv.ne[1], slots[0] = 2; return 1;
    case LORA_T_O: *in = l->wo.ne[0], rows[0] = l->wo.ne[1], slots[0] = 0; return 1;
    case LORA_T_GATE: *in = l->w_gate.ne[0], rows[0] = l->w_gate.ne[1], slots[0] = 0; return 1;
    case LORA_T_UP: *in = l->w_up.ne[0], rows[0] = l->w_up.ne[1], slots[0] = 1; return 1;
    case LORA_T_DOWN: *in = l->w_down.ne[0], rows[0] = l->w_down.ne[1], slots[0] = 0; return 1;
    case LORA_T_QKV:
        *in = l->wq.ne[0];
        rows[0] = l->wq.ne[1], rows[1] = l->wk.ne[1], rows[2] = l->wv.ne[1];
        slots[0] = 0, slots[1] = 1, slots[2] = 2;
        return 3;
    case LORA_T_GATE_UP:
        *in = l->w_gate.ne[0];
        rows[0] = l->w_gate.ne[1], rows[1] = l->w_up.ne[1];
        slots[0] = 0, slots[1] = 1;
        return 2;
    default: return 0;
    }
}

static int64_t target_rows(const slim_model *m, int il, slim_lora_target t, int64_t *in) {
    int64_t rows[3] = {0};
    int slots[3];
    const int n = target_outputs(m, il, t, in, rows, slots);
    return rows[0] + (n > 1 ? rows[1] : 0) + (n > 2 ? rows[2] : 0);
}

/* n elements of a file tensor (any type with to_float) to F32; the source may
 * be unaligned (safetensors), so it is copied first when it is. */
static slim_status to_f32(slim_dtype type, const void *src, bool aligned, int64_t n, float **out,
                          const char *name) {
    const slim_dtype_traits *tr = slim_dtype_traits_of(type);
    if (!tr || !tr->to_float)
        return slim_error(SLIM_ERR_UNSUPPORTED, "lora: tensor '%s' has type %s, not a float type",
                          name, slim_dtype_name(type));
    *out = malloc((size_t)n * sizeof(float));
    if (!*out) return slim_error(SLIM_ERR_NOMEM, "lora: out of memory for '%s'", name);
    if (aligned) {
        tr->to_float(src, *out, n);
        return SLIM_OK;
    }
    const size_t bytes = slim_dtype_row_size(type, n);
    void *tmp = malloc(bytes ? bytes : 1);
    if (!tmp) {
        free(*out);
        *out = NULL;
        return slim_error(SLIM_ERR_NOMEM, "lora: out of memory for '%s'", name);
    }
    memcpy(tmp, src, bytes);
    tr->to_float(tmp, *out, n);
    free(tmp);
    return SLIM_OK;
}

/* llama.cpp's converter reorders each Llama Q/K head's rows from NEOX halves
 * (i * hd/2 + j) to adjacent pairs (2j + i) for its RoPE (convert_hf_to_gguf.py,
 * permute).  to_adjacent: that direction, else back. */
static void permute_rows(float *b, int64_t rows, int64_t rank, int64_t head_dim, bool to_adjacent,
                         float *tmp) {
    const int64_t half = head_dim / 2, row = rank;
    memcpy(tmp, b, (size_t)(rows * row) * sizeof(float));
    for (int64_t h = 0; h < rows / head_dim; h++)
        for (int64_t i = 0; i < 2; i++)
            for (int64_t j = 0; j < half; j++) {
                const int64_t neox = h * head_dim + i * half + j, adj = h * head_dim + 2 * j + i;
                const int64_t dst = to_adjacent ? adj : neox, src = to_adjacent ? neox : adj;
                memcpy(b + dst * row, tmp + src * row, (size_t)row * sizeof(float));
            }
}

/* Q/K B rows into the model's RoPE pairing.  Only llama-architecture files
 * differ (the converter permutes Q and K for no other architecture).
 * from_gguf: the rows are in llama.cpp's order (adjacent), else in Hugging
 * Face's (NEOX halves). */
static slim_status fix_qk_layout(const slim_model *m, raw_pair *p, bool from_gguf) {
    if (strcmp(m->arch->name, "llama") != 0 || (p->tgt != LORA_T_Q && p->tgt != LORA_T_K))
        return SLIM_OK;
    const bool want_adjacent = !m->hp.rope_neox;
    if (want_adjacent == from_gguf) return SLIM_OK;
    float *tmp = malloc((size_t)(p->out * p->rank) * sizeof(float));
    if (!tmp) return slim_error(SLIM_ERR_NOMEM, "lora: out of memory");
    permute_rows(p->b, p->out, p->rank, m->hp.head_dim, want_adjacent, tmp);
    free(tmp);
    return SLIM_OK;
}

/* Checks one pair's shapes against the model: A [rank][in], B [out][rank]. */
static slim_status check_shapes(const slim_model *m, const raw_pair *p, int64_t a_rows,
                                int64_t a_cols, int64_t b_rows, int64_t b_cols) {
    int64_t in = 0;
    const int64_t out = target_rows(m, p->layer, p->tgt, &in);
    if (a_rows < 1 || a_rows > MAX_RANK)
        return slim_error(SLIM_ERR_FORMAT, "lora: '%s': rank %lld outside 1..%d", p->name,
                          (long long)a_rows, (int)MAX_RANK);
    if (a_cols != in)
        return slim_error(SLIM_ERR_FORMAT,
                          "lora: '%s': A has %lld columns, the model's weight has %lld inputs "
                          "(an adapter for another model?)",
                          p->name, (long long)a_cols, (long long)in);
    if (b_rows != out)
        return slim_error(SLIM_ERR_FORMAT,
                          "lora: '%s': B has %lld rows, the model's weight has %lld outputs "
                          "(an adapter for another model?)",
                          p->name, (long long)b_rows, (long long)out);
    if (b_cols != a_rows)
        return slim_error(SLIM_ERR_FORMAT, "lora: '%s': A has rank %lld but B has %lld columns",
                          p->name, (long long)a_rows, (long long)b_cols);
    return SLIM_OK;
}

/* ---- llama.cpp GGUF adapters */

static bool str_eq(slim_gguf_str s, const char *want) {
    return s.len == strlen(want) && memcmp(s.ptr, want, s.len) == 0;
}

static bool ends_with(const char *s, size_t n, const char *suffix) {
    const size_t k = strlen(suffix);
    return n >= k && memcmp(s + n - k, suffix, k) == 0;
}

/* "blk.N.<name>.weight" -> layer and target (n = length without .lora_a/b). */
static slim_status gguf_target(const slim_model *m, const char *name, size_t n, int32_t *layer,
                               slim_lora_target *t) {
    int consumed = 0;
    int il = -1;
    char prefix[64];
    layer_prefix(m, false, prefix, sizeof prefix);
    if (sscanf(name, prefix, &il, &consumed) != 1 || consumed == 0 || il < 0 ||
        !ends_with(name, n, ".weight"))
        return slim_error(SLIM_ERR_UNSUPPORTED,
                          "lora: tensor '%.*s': only per-layer attention and feed-forward "
                          "weights can be adapted",
                          (int)n, name);
    if (il >= m->hp.n_layer)
        return slim_error(SLIM_ERR_FORMAT, "lora: tensor '%.*s': layer %d, the model has %d",
                          (int)n, name, il, m->hp.n_layer);
    const char *mod = name + consumed;
    const size_t len = n - (size_t)consumed - strlen(".weight");
    const int k = target_by_stem(m, false, mod, len);
    if (k >= 0) {
        *layer = il;
        *t = (slim_lora_target)k;
        return SLIM_OK;
    }
    return slim_error(SLIM_ERR_UNSUPPORTED, "lora: tensor '%.*s': module '%.*s' is not supported",
                      (int)n, name, (int)len, mod);
}

static slim_status gguf_pair(const slim_model *m, const slim_gguf *g, const slim_gguf_tensor *ta,
                             float alpha, raw_list *out) {
    const size_t n = strlen(ta->name) - strlen(".lora_a");
    char bname[160];
    if (n + 8 > sizeof bname)
        return slim_error(SLIM_ERR_FORMAT, "lora: tensor name '%s' too long", ta->name);
    memcpy(bname, ta->name, n);
    memcpy(bname + n, ".lora_b", 8);
    const slim_gguf_tensor *tb = slim_gguf_find_tensor(g, bname);
    if (!tb)
        return slim_error(SLIM_ERR_FORMAT, "lora: '%.*s' has lora_a but no lora_b", (int)n,
                          ta->name);
    raw_pair p = {0};
    slim_status st = gguf_target(m, ta->name, n, &p.layer, &p.tgt);
    if (st) return st;
    snprintf(p.name, sizeof p.name, "%.*s", (int)n, ta->name);
    if (ta->n_dims > 2 || tb->n_dims > 2)
        return slim_error(SLIM_ERR_FORMAT, "lora: '%s': lora_a / lora_b must be 2-D", p.name);
    int64_t in = 0;
    /* A 2*n_ff ffn_up is the fused gate+up of Phi-3. */
    if (p.tgt == LORA_T_UP && tb->ne[1] == target_rows(m, p.layer, LORA_T_GATE_UP, &in) &&
        tb->ne[1] != target_rows(m, p.layer, LORA_T_UP, &in))
        p.tgt = LORA_T_GATE_UP;
    /* ggml order: A ne = {in, rank}, B ne = {rank, out}. */
    if ((st = check_shapes(m, &p, ta->ne[1], ta->ne[0], tb->ne[1], tb->ne[0]))) return st;
    p.rank = (int32_t)ta->ne[1];
    p.in = ta->ne[0];
    p.out = tb->ne[1];
    /* llama.cpp: scale * alpha / rank, or the scale alone without alpha. */
    p.alpha_scale = alpha != 0 ? alpha / (float)p.rank : 1.0f;
    raw_pair *dst = raw_push(out);
    if (!dst) return slim_error(SLIM_ERR_NOMEM, "lora: out of memory");
    *dst = p;
    if ((st = to_f32(ta->type, ta->data, true, p.rank * p.in, &dst->a, ta->name)) ||
        (st = to_f32(tb->type, tb->data, true, p.out * p.rank, &dst->b, tb->name)))
        return st;
    return fix_qk_layout(m, dst, true);
}

static slim_status load_gguf(const slim_model *m, const char *path, raw_list *out) {
    slim_gguf *g = NULL;
    slim_status st = slim_gguf_open(path, true, &g);
    if (st) return st;
    slim_gguf_str s;
    float alpha = 0;
    if (!slim_gguf_get_str(g, "general.type", &s) || !str_eq(s, "adapter")) {
        st = slim_error(SLIM_ERR_FORMAT, "lora: general.type is not 'adapter': not an adapter");
    } else if (!slim_gguf_get_str(g, "adapter.type", &s) || !str_eq(s, "lora")) {
        st = slim_error(SLIM_ERR_UNSUPPORTED, "lora: adapter.type is not 'lora'");
    } else if (!slim_gguf_get_str(g, "general.architecture", &s) || !str_eq(s, m->arch->name)) {
        st = slim_error(SLIM_ERR_FORMAT, "lora: general.architecture is not the model's '%s'",
                        m->arch->name);
    } else if (slim_gguf_find(g, "adapter.lora.alpha") &&
               (!slim_gguf_get_f32(g, "adapter.lora.alpha", &alpha) || !isfinite(alpha))) {
        st = slim_error(SLIM_ERR_FORMAT, "lora: adapter.lora.alpha is not a number");
    }
    for (uint64_t i = 0; !st && i < g->n_tensors; i++) {
        const slim_gguf_tensor *t = &g->tensors[i];
        const size_t n = strlen(t->name);
        if (ends_with(t->name, n, ".lora_a")) {
            st = gguf_pair(m, g, t, alpha, out);
        } else if (ends_with(t->name, n, ".lora_b")) {
            char aname[160];
            snprintf(aname, sizeof aname, "%.*s.lora_a", (int)(n - 7), t->name);
            if (!slim_gguf_find_tensor(g, aname))
                st = slim_error(SLIM_ERR_FORMAT, "lora: '%.*s' has lora_b but no lora_a",
                                (int)(n - 7), t->name);
        } else if (!ends_with(t->name, n, "_norm.weight")) {
            /* llama.cpp skips norm vectors too; anything else is not LoRA. */
            st = slim_error(SLIM_ERR_FORMAT, "lora: tensor '%s' is neither lora_a nor lora_b",
                            t->name);
        }
    }
    if (!st && out->n == 0) st = slim_error(SLIM_ERR_FORMAT, "lora: no lora_a/lora_b tensors");
    slim_gguf_close(g);
    return st;
}

/* ---- PEFT directories */

typedef struct peft_cfg {
    const slim_json_doc *doc;
    const slim_json *root, *rank_pattern, *alpha_pattern;
    int64_t r;
    double alpha;
    bool rslora;
} peft_cfg;

/* PEFT's pattern keys match a module name exactly or as a dotted suffix
 * (re.match(r"(.*\.)?(key)$")).  Keys are taken literally: other regular
 * expressions are refused at load. */
static const slim_json *pattern_find(const slim_json *pat, const char *module) {
    const size_t n = strlen(module);
    for (size_t i = 0; i < slim_json_len(pat); i++) {
        const char *key;
        size_t klen;
        const slim_json *v = slim_json_member(pat, i, &key, &klen);
        if (klen == n && memcmp(key, module, n) == 0) return v;
        if (klen < n && memcmp(module + n - klen, key, klen) == 0 && module[n - klen - 1] == '.')
            return v;
    }
    return NULL;
}

static slim_status check_pattern(const peft_cfg *c, const slim_json *pat, const char *what) {
    if (!pat) return SLIM_OK;
    if (slim_json_type_of(pat) != SLIM_JSON_OBJECT)
        return slim_error(SLIM_ERR_FORMAT, "lora: adapter_config.json: %s is not an object", what);
    for (size_t i = 0; i < slim_json_len(pat); i++) {
        const char *key;
        size_t klen;
        double v;
        const slim_json *val = slim_json_member(pat, i, &key, &klen);
        for (size_t k = 0; k < klen; k++)
            if (strchr("*+?[](){}|^$\\", key[k]))
                return slim_error(SLIM_ERR_UNSUPPORTED,
                                  "lora: adapter_config.json: %s key '%s' is a regular "
                                  "expression; only module names and dotted suffixes are "
                                  "supported",
                                  what, key);
        if (!slim_json_num(val, &v) || !(v > 0) || !isfinite(v))
            return slim_error(SLIM_ERR_FORMAT,
                              "lora: adapter_config.json: %s['%s'] is not a positive number", what,
                              key);
    }
    (void)c;
    return SLIM_OK;
}

static slim_status peft_config(const slim_json_doc *doc, peft_cfg *c) {
    const slim_json *root = slim_json_root(doc);
    c->doc = doc;
    c->root = root;
    if (slim_json_type_of(root) != SLIM_JSON_OBJECT)
        return slim_error(SLIM_ERR_FORMAT, "lora: adapter_config.json is not an object");
    const int64_t r_def = 8;
    const double alpha_def = 8;
    const bool f = false;
    const char *s;
    size_t len;
    slim_status st;
    if ((st = slim_json_cfg_str(doc, root, "peft_type", "LORA", &s, NULL))) return st;
    if (strcmp(s, "LORA") != 0)
        return slim_error(SLIM_ERR_UNSUPPORTED,
                          "lora: adapter_config.json: peft_type '%s' is not LORA", s);
    if ((st = slim_json_cfg_i64(doc, root, "r", &r_def, 1, MAX_RANK, &c->r)) ||
        (st = slim_json_cfg_f64(doc, root, "lora_alpha", &alpha_def, &c->alpha)) ||
        (st = slim_json_cfg_bool(doc, root, "use_rslora", &f, &c->rslora)))
        return st;
    if (!isfinite(c->alpha))
        return slim_error(SLIM_ERR_FORMAT, "lora: adapter_config.json: lora_alpha is not finite");
    bool b;
    if ((st = slim_json_cfg_bool(doc, root, "fan_in_fan_out", &f, &b))) return st;
    if (b)
        return slim_error(SLIM_ERR_UNSUPPORTED,
                          "lora: adapter_config.json: fan_in_fan_out true (transposed weights, "
                          "GPT-2 style) is not supported");
    if ((st = slim_json_cfg_bool(doc, root, "use_dora", &f, &b))) return st;
    if (b)
        return slim_error(SLIM_ERR_UNSUPPORTED,
                          "lora: adapter_config.json: use_dora (DoRA) is not supported");
    if ((st = slim_json_cfg_bool(doc, root, "lora_bias", &f, &b))) return st;
    if (b)
        return slim_error(SLIM_ERR_UNSUPPORTED,
                          "lora: adapter_config.json: lora_bias true is not supported");
    if ((st = slim_json_cfg_str(doc, root, "bias", "none", &s, &len))) return st;
    if (strcmp(s, "none") != 0)
        return slim_error(SLIM_ERR_UNSUPPORTED,
                          "lora: adapter_config.json: bias '%s' is not supported (only \"none\")",
                          s);
    const slim_json *v;
    if ((st = slim_json_cfg_value(doc, root, "modules_to_save", SLIM_JSON_ARRAY, false, &v)))
        return st;
    if (slim_json_len(v) > 0)
        return slim_error(SLIM_ERR_UNSUPPORTED,
                          "lora: adapter_config.json: modules_to_save ('%s', ...) replaces whole "
                          "modules: not supported",
                          slim_json_str(slim_json_at(v, 0), NULL)
                              ? slim_json_str(slim_json_at(v, 0), NULL)
                              : "?");
    if ((st = slim_json_cfg_value(doc, root, "target_modules", SLIM_JSON_NONE, false, &v)))
        return st;
    if (v && slim_json_type_of(v) != SLIM_JSON_STRING) {
        if (slim_json_type_of(v) != SLIM_JSON_ARRAY)
            return slim_error(SLIM_ERR_FORMAT,
                              "lora: adapter_config.json: target_modules: expected a string or "
                              "an array, got %s",
                              slim_json_type_name(slim_json_type_of(v)));
        for (size_t i = 0; i < slim_json_len(v); i++)
            if (!slim_json_str(slim_json_at(v, i), NULL))
                return slim_error(SLIM_ERR_FORMAT,
                                  "lora: adapter_config.json: target_modules[%zu] is not a string",
                                  i);
    }
    c->rank_pattern = slim_json_get(root, "rank_pattern");
    c->alpha_pattern = slim_json_get(root, "alpha_pattern");
    if (slim_json_is_null(c->rank_pattern)) c->rank_pattern = NULL;
    if (slim_json_is_null(c->alpha_pattern)) c->alpha_pattern = NULL;
    if ((st = check_pattern(c, c->rank_pattern, "rank_pattern")) ||
        (st = check_pattern(c, c->alpha_pattern, "alpha_pattern")))
        return st;
    return SLIM_OK;
}

/* A PEFT tensor name's module: "...layers.N.self_attn.q_proj" (Gemma 3's
 * multimodal bases add a language_model segment before layers). */
static slim_status peft_target(const slim_model *m, const char *module, int32_t *layer,
                               slim_lora_target *t) {
    char prefix[64];
    layer_prefix(m, true, prefix, sizeof prefix);
    const size_t plen = (size_t)(strstr(prefix, "%d") - prefix); /* "layers." */
    const char *p = NULL;
    for (const char *q = module; (q = memmem(q, strlen(q), prefix, plen)) != NULL; q++)
        if (q == module || q[-1] == '.') p = q;
    int il = -1, consumed = 0;
    /* A multimodal base's vision or audio tower has layers of its own. */
    if (p && (memmem(module, (size_t)(p - module), "vision", 6) ||
              memmem(module, (size_t)(p - module), "audio", 5)))
        return slim_error(SLIM_ERR_UNSUPPORTED,
                          "lora: module '%s': only the language model's layers can be adapted",
                          module);
    if (!p || sscanf(p, prefix, &il, &consumed) != 1 || consumed == 0 || il < 0)
        return slim_error(SLIM_ERR_UNSUPPORTED,
                          "lora: module '%s' is not supported (only the layers' attention and "
                          "MLP projections)",
                          module);
    const char *tail = p + consumed;
    const int k = target_by_stem(m, true, tail, strlen(tail));
    if (k >= 0) {
        if (il >= m->hp.n_layer)
            return slim_error(SLIM_ERR_FORMAT, "lora: module '%s': layer %d, the model has %d",
                              module, il, m->hp.n_layer);
        *layer = il;
        *t = (slim_lora_target)k;
        return SLIM_OK;
    }
    return slim_error(SLIM_ERR_UNSUPPORTED, "lora: module '%s' is not supported", module);
}

static slim_status peft_pair(const slim_model *m, const peft_cfg *c, const slim_st_set *set,
                             const slim_st_tensor *ta, raw_list *out) {
    const size_t n = ta->name_len - strlen(".lora_A.weight");
    char module[256], bname[280];
    if (n >= sizeof module)
        return slim_error(SLIM_ERR_FORMAT, "lora: tensor name '%s' too long", ta->name);
    memcpy(module, ta->name, n);
    module[n] = '\0';
    snprintf(bname, sizeof bname, "%s.lora_B.weight", module);
    const slim_st_tensor *tb = slim_st_set_find(set, bname);
    if (!tb) return slim_error(SLIM_ERR_FORMAT, "lora: '%s' has lora_A but no lora_B", module);
    raw_pair p = {0};
    slim_status st = peft_target(m, module, &p.layer, &p.tgt);
    if (st) return st;
    snprintf(p.name, sizeof p.name, "%s", module);
    if (ta->n_dims != 2 || tb->n_dims != 2)
        return slim_error(SLIM_ERR_FORMAT, "lora: '%s': lora_A / lora_B must be 2-D", module);
    if ((st = check_shapes(m, &p, ta->shape[0], ta->shape[1], tb->shape[0], tb->shape[1])))
        return st;
    p.rank = (int32_t)ta->shape[0];
    p.in = ta->shape[1];
    p.out = tb->shape[0];
    /* PEFT's module names start below base_model.model. */
    const char *pname = strncmp(module, "base_model.model.", 17) == 0 ? module + 17 : module;
    double r = (double)c->r, alpha = c->alpha;
    const slim_json *rv = pattern_find(c->rank_pattern, pname);
    const slim_json *av = pattern_find(c->alpha_pattern, pname);
    if (rv) slim_json_num(rv, &r);
    if (av) slim_json_num(av, &alpha);
    if (r != (double)p.rank)
        return slim_error(SLIM_ERR_FORMAT,
                          "lora: '%s': rank %d in the tensors, %g in adapter_config.json", module,
                          p.rank, r);
    p.alpha_scale = (float)(c->rslora ? alpha / sqrt(r) : alpha / r);
    slim_dtype da, db;
    if (!slim_st_dtype_to_slim(ta->dtype, &da) || !slim_st_dtype_to_slim(tb->dtype, &db))
        return slim_error(SLIM_ERR_UNSUPPORTED, "lora: '%s': dtype %s / %s (need F32, F16, BF16)",
                          module, slim_st_dtype_name(ta->dtype), slim_st_dtype_name(tb->dtype));
    raw_pair *dst = raw_push(out);
    if (!dst) return slim_error(SLIM_ERR_NOMEM, "lora: out of memory");
    *dst = p;
    if ((st = to_f32(da, ta->data, slim_st_tensor_aligned(ta), p.rank * p.in, &dst->a, ta->name)) ||
        (st = to_f32(db, tb->data, slim_st_tensor_aligned(tb), p.out * p.rank, &dst->b, tb->name)))
        return st;
    return fix_qk_layout(m, dst, false);
}

static slim_status load_peft(const slim_model *m, const char *dir, raw_list *out) {
    char cfg_path[4096];
    if (snprintf(cfg_path, sizeof cfg_path, "%s/adapter_config.json", dir) >= (int)sizeof cfg_path)
        return slim_error(SLIM_ERR_INVALID_ARG, "lora: path too long");
    slim_json_doc *doc = NULL;
    slim_st_set *set = NULL;
    peft_cfg c = {0};
    slim_status st = slim_json_parse_file(cfg_path, &doc);
    if (!st) st = peft_config(doc, &c);
    if (!st) st = slim_st_open_dir(dir, "adapter_model", true, &set);
    for (size_t i = 0; !st && i < set->n_tensors; i++) {
        const slim_st_tensor *t = set->tensors[i];
        if (ends_with(t->name, t->name_len, ".lora_A.weight")) {
            st = peft_pair(m, &c, set, t, out);
        } else if (ends_with(t->name, t->name_len, ".lora_B.weight")) {
            char aname[280];
            snprintf(aname, sizeof aname, "%.*s.lora_A.weight",
                     (int)(t->name_len - strlen(".lora_B.weight")), t->name);
            if (!slim_st_set_find(set, aname))
                st = slim_error(SLIM_ERR_FORMAT, "lora: '%s' has lora_B but no lora_A", t->name);
        } else {
            st = slim_error(SLIM_ERR_UNSUPPORTED,
                            "lora: tensor '%s' is not a LoRA A/B weight (embedding LoRA, DoRA "
                            "magnitudes, biases and saved modules are not supported)",
                            t->name);
        }
    }
    if (!st && out->n == 0)
        st = slim_error(SLIM_ERR_FORMAT, "lora: adapter_model has no lora_A/lora_B tensors");
    slim_st_set_close(set);
    slim_json_free(doc);
    return st;
}

/* ---- layout */

static int cmp_raw(const void *x, const void *y) {
    const raw_pair *a = x, *b = y;
    const int sa = a->layer * SLIM_LORA_N_SITES + (int)targets[a->tgt].site;
    const int sb = b->layer * SLIM_LORA_N_SITES + (int)targets[b->tgt].site;
    if (sa != sb) return sa < sb ? -1 : 1;
    return a->tgt < b->tgt ? -1 : a->tgt > b->tgt;
}

static int64_t pad_to(int64_t n, int64_t k) { return (n + k - 1) / k * k; }

static slim_tensor f32_tensor(const char *name, float *data, int64_t cols, int64_t rows) {
    slim_tensor t = {.name = name, .type = SLIM_DTYPE_F32, .n_dims = 2, .data = data};
    t.ne[0] = cols, t.ne[1] = rows, t.ne[2] = t.ne[3] = 1;
    t.nb[0] = sizeof(float);
    t.nb[1] = (size_t)cols * sizeof(float);
    t.nb[2] = t.nb[3] = t.nb[1] * (size_t)rows;
    return t;
}

/* Sorted raw pairs into padded F32 tensors, per-site index, device copy. */
static slim_status build(slim_lora *lo, raw_list *raw) {
    const slim_model *m = lo->model;
    qsort(raw->v, raw->n, sizeof *raw->v, cmp_raw);
    const int n_sites = m->hp.n_layer * SLIM_LORA_N_SITES;
    /* One module adapted twice (q_proj and qkv_proj, or a name twice). */
    for (size_t i = 0; i < raw->n; i++)
        for (size_t j = i + 1; j < raw->n && raw->v[j].layer == raw->v[i].layer; j++) {
            const slim_lora_target a = raw->v[i].tgt, b = raw->v[j].tgt;
            int64_t in;
            int slots_a[3], slots_b[3];
            int64_t rows[3];
            const int na = target_outputs(m, raw->v[i].layer, a, &in, rows, slots_a);
            const int nb = target_outputs(m, raw->v[j].layer, b, &in, rows, slots_b);
            if (targets[a].site != targets[b].site) continue;
            for (int x = 0; x < na; x++)
                for (int y = 0; y < nb; y++)
                    if (slots_a[x] == slots_b[y])
                        return slim_error(SLIM_ERR_FORMAT,
                                          "lora: '%s' and '%s' adapt the same weight",
                                          raw->v[i].name, raw->v[j].name);
        }
    size_t floats = 0;
    for (size_t i = 0; i < raw->n; i++) {
        const raw_pair *p = &raw->v[i];
        const int64_t rp = pad_to(p->rank, RANK_PAD);
        floats += (size_t)pad_to(rp * p->in, ALIGN_FLOATS) +
                  (size_t)pad_to(rp * p->out, ALIGN_FLOATS) + 3 * ALIGN_FLOATS;
    }
    lo->pairs = calloc(raw->n, sizeof *lo->pairs);
    lo->first = calloc((size_t)n_sites + 1, sizeof *lo->first);
    lo->host = aligned_alloc(64, pad_to((int64_t)floats, ALIGN_FLOATS) * sizeof(float));
    if (!lo->pairs || !lo->first || !lo->host)
        return slim_error(SLIM_ERR_NOMEM, "lora: out of memory for %zu floats", floats);
    memset(lo->host, 0, floats * sizeof(float));
    lo->n_pairs = (int32_t)raw->n;
    float *w = lo->host;
    int64_t site_rank = 0;
    int prev_site = -1;
    for (size_t i = 0; i < raw->n; i++) {
        const raw_pair *p = &raw->v[i];
        slim_lora_pair *q = &lo->pairs[i];
        const int64_t rp = pad_to(p->rank, RANK_PAD);
        q->layer = p->layer;
        q->tgt = p->tgt;
        q->rank = p->rank;
        q->alpha_scale = p->alpha_scale;
        /* A: rank rows then zero rows up to rp. */
        memcpy(w, p->a, (size_t)(p->rank * p->in) * sizeof(float));
        q->a = f32_tensor("lora_a", w, p->in, rp);
        w += pad_to(rp * p->in, ALIGN_FLOATS);
        /* B: each row's rank values then zeros up to rp; split per output. */
        for (int64_t r = 0; r < p->out; r++)
            memcpy(w + r * rp, p->b + r * p->rank, (size_t)p->rank * sizeof(float));
        int64_t in, rows[3];
        q->n_out = target_outputs(m, p->layer, p->tgt, &in, rows, q->slot);
        int64_t r0 = 0;
        for (int k = 0; k < q->n_out; k++) {
            q->b[k] = f32_tensor("lora_b", w + r0 * rp, rp, rows[k]);
            if (rows[k] > lo->max_out) lo->max_out = rows[k];
            r0 += rows[k];
        }
        w += pad_to(rp * p->out, ALIGN_FLOATS);
        const int site = p->layer * SLIM_LORA_N_SITES + (int)targets[p->tgt].site;
        site_rank = site == prev_site ? site_rank + rp : rp;
        prev_site = site;
        if (site_rank > lo->max_site_rank) lo->max_site_rank = site_rank;
    }
    /* first[s]: the first pair at site s or later. */
    size_t k = 0;
    for (int s = 0; s <= n_sites; s++) {
        while (k < raw->n &&
               lo->pairs[k].layer * SLIM_LORA_N_SITES + (int)targets[lo->pairs[k].tgt].site < s)
            k++;
        lo->first[s] = (int32_t)k;
    }
    if (!lo->ops->weights_upload) return SLIM_OK;
    const size_t bytes = (size_t)(w - lo->host) * sizeof(float);
    slim_status st = lo->ops->weights_upload(lo->host, bytes, &lo->dev);
    if (st) return st;
    /* Rebase every view into the device copy; host code never reads it. */
    for (int32_t i = 0; i < lo->n_pairs; i++) {
        slim_lora_pair *q = &lo->pairs[i];
        q->a.data = (char *)lo->dev + ((const char *)q->a.data - (const char *)lo->host);
        for (int j = 0; j < q->n_out; j++)
            q->b[j].data = (char *)lo->dev + ((const char *)q->b[j].data - (const char *)lo->host);
    }
    free(lo->host);
    lo->host = NULL;
    return SLIM_OK;
}

static void lora_destroy(slim_lora *lo) {
    if (lo->dev) lo->ops->weights_free(lo->dev);
    free(lo->host);
    free(lo->pairs);
    free(lo->first);
    free(lo);
}

void slim_lora_release(slim_lora *lo) {
    if (lo && atomic_fetch_sub(&lo->refs, 1) == 1) lora_destroy(lo);
}

slim_status slim_lora_load(const slim_model *model, const char *path, slim_lora **out) {
    if (!out) return slim_error(SLIM_ERR_INVALID_ARG, "slim_lora_load: out is NULL");
    *out = NULL;
    if (!model) return slim_error(SLIM_ERR_INVALID_ARG, "slim_lora_load: model is NULL");
    if (!path) return slim_error(SLIM_ERR_INVALID_ARG, "slim_lora_load: path is NULL");
    struct stat sb;
    if (stat(path, &sb) != 0)
        return slim_error(SLIM_ERR_IO, "%s: cannot open the adapter (no such file or directory)",
                          path);
    slim_lora *lo = calloc(1, sizeof *lo);
    if (!lo) return slim_error(SLIM_ERR_NOMEM, "slim_lora_load: out of memory");
    lo->model = model;
    lo->ops = model->ops;
    atomic_init(&lo->refs, 1);
    raw_list raw = {0};
    slim_status st =
        S_ISDIR(sb.st_mode) ? load_peft(model, path, &raw) : load_gguf(model, path, &raw);
    if (!st) st = build(lo, &raw);
    raw_free(&raw);
    if (st) {
        lora_destroy(lo);
        if (strncmp(slim_last_error(), path, strlen(path)) != 0) slim_error_prefix(st, "%s", path);
        return st;
    }
    slim_log(SLIM_LOG_INFO, "lora %s: %d weight pairs, largest rank per site %lld", path,
             lo->n_pairs, (long long)lo->max_site_rank);
    *out = lo;
    return SLIM_OK;
}

void slim_lora_free(slim_lora *lora) { slim_lora_release(lora); }
