/* Model loading: open the GGUF, pick the architecture, read hyperparameters,
 * bind every weight by its GGUF name with its shape checked, build the vocab. */
#include "model/model.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "backend/backend.h"
#include "quant/dtype.h"

static bool get_i32(const slim_gguf *g, const char *arch, const char *key, int32_t *out) {
    char full[160];
    snprintf(full, sizeof full, "%s.%s", arch, key);
    int64_t v;
    if (!slim_gguf_get_i64(g, full, &v) || v < 0 || v > INT32_MAX) return false;
    *out = (int32_t)v;
    return true;
}

static bool get_f32(const slim_gguf *g, const char *arch, const char *key, float *out) {
    char full[160];
    snprintf(full, sizeof full, "%s.%s", arch, key);
    return slim_gguf_get_f32(g, full, out);
}

static slim_status require_i32(const slim_gguf *g, const char *arch, const char *key, int32_t min,
                               int32_t max, int32_t *out) {
    if (!get_i32(g, arch, key, out))
        return slim_error(SLIM_ERR_FORMAT, "model: missing or invalid integer key '%s.%s'", arch,
                          key);
    if (*out < min || *out > max)
        return slim_error(SLIM_ERR_FORMAT, "model: '%s.%s' = %d outside %d..%d", arch, key, *out,
                          min, max);
    return SLIM_OK;
}

static slim_status read_hparams(const slim_gguf *g, const slim_arch *arch, slim_hparams *hp) {
    const char *a = arch->name;
    slim_status st;
    memset(hp, 0, sizeof *hp);
    if ((st = require_i32(g, a, "embedding_length", 1, 1 << 16, &hp->n_embd)) ||
        (st = require_i32(g, a, "block_count", 1, SLIM_MAX_LAYERS, &hp->n_layer)) ||
        (st = require_i32(g, a, "feed_forward_length", 1, 1 << 20, &hp->n_ff)) ||
        (st = require_i32(g, a, "attention.head_count", 1, 1024, &hp->n_head)))
        return st;
    if (!get_i32(g, a, "attention.head_count_kv", &hp->n_head_kv)) hp->n_head_kv = hp->n_head;
    if (hp->n_head_kv < 1 || hp->n_head % hp->n_head_kv != 0)
        return slim_error(SLIM_ERR_FORMAT,
                          "model: head_count %d not a multiple of head_count_kv %d", hp->n_head,
                          hp->n_head_kv);
    if (!get_i32(g, a, "attention.key_length", &hp->head_dim))
        hp->head_dim = hp->n_embd / hp->n_head;
    int32_t vlen = hp->head_dim;
    get_i32(g, a, "attention.value_length", &vlen);
    if (hp->head_dim < 2 || hp->head_dim > 1024 || hp->head_dim % 2 || vlen != hp->head_dim)
        return slim_error(SLIM_ERR_UNSUPPORTED,
                          "model: head dims k=%d v=%d (need equal, even, <= 1024)", hp->head_dim,
                          vlen);
    if (!get_i32(g, a, "rope.dimension_count", &hp->n_rot)) hp->n_rot = hp->head_dim;
    if (hp->n_rot < 2 || hp->n_rot > hp->head_dim || hp->n_rot % 2)
        return slim_error(SLIM_ERR_FORMAT, "model: rope.dimension_count %d invalid for head_dim %d",
                          hp->n_rot, hp->head_dim);
    if (!get_i32(g, a, "context_length", &hp->n_ctx_train) || hp->n_ctx_train < 1)
        hp->n_ctx_train = 4096;
    if (!get_f32(g, a, "attention.layer_norm_rms_epsilon", &hp->norm_eps)) hp->norm_eps = 1e-6f;
    if (!(hp->norm_eps > 0 && hp->norm_eps < 1))
        return slim_error(SLIM_ERR_FORMAT, "model: rms epsilon %g invalid", hp->norm_eps);
    if (!get_f32(g, a, "rope.freq_base", &hp->rope_base)) hp->rope_base = 10000.0f;
    hp->rope_base_swa = hp->rope_base;
    hp->rope_freq_scale = 1.0f;
    hp->rope_mscale = 1.0f;
    get_i32(g, a, "rope.scaling.original_context_length", &hp->n_ctx_orig);
    if (!get_f32(g, a, "rope.scaling.attn_factor", &hp->rope_mscale) || !(hp->rope_mscale > 0))
        hp->rope_mscale = 1.0f;
    char key[160];
    snprintf(key, sizeof key, "%s.rope.scaling.type", a);
    slim_gguf_str type;
    float factor;
    if (slim_gguf_get_str(g, key, &type) && type.len == 6 && memcmp(type.ptr, "linear", 6) == 0 &&
        get_f32(g, a, "rope.scaling.factor", &factor) && factor > 0)
        hp->rope_freq_scale = 1.0f / factor;
    if (!(hp->rope_base > 0))
        return slim_error(SLIM_ERR_FORMAT, "model: rope.freq_base %g invalid", hp->rope_base);
    get_f32(g, a, "attn_logit_softcapping", &hp->attn_softcap);
    get_f32(g, a, "final_logit_softcapping", &hp->final_softcap);
    get_i32(g, a, "attention.sliding_window", &hp->swa_window);
    hp->attn_scale = 1.0f / sqrtf((float)hp->head_dim);
    hp->embd_scale = 1.0f;
    hp->rope_neox = arch->rope_neox;
    return arch->finish_hparams ? arch->finish_hparams(g, hp) : SLIM_OK;
}

/* Bind a weight by name with the expected shape (ne1 = 0 for 1-D): the
 * GGUF side of the tensor table's walker. */
static bool gguf_has(void *ctx, const char *name) {
    return slim_gguf_find_tensor(((const slim_model *)ctx)->gguf, name) != NULL;
}

static slim_status gguf_bind(void *ctx, const slim_tensor_spec *spec, const char *name,
                             bool required, int64_t ne0, int64_t ne1, slim_tensor *t) {
    (void)spec;
    const slim_model *m = ctx;
    const slim_gguf_tensor *gt = slim_gguf_find_tensor(m->gguf, name);
    memset(t, 0, sizeof *t);
    if (!gt) {
        if (!required) return SLIM_OK;
        return slim_error(SLIM_ERR_FORMAT, "model: required tensor '%s' missing", name);
    }
    const int64_t want1 = ne1 ? ne1 : 1;
    if (gt->ne[0] != ne0 || gt->ne[1] != want1 || gt->ne[2] != 1 || gt->ne[3] != 1)
        return slim_error(
            SLIM_ERR_FORMAT,
            "model: tensor '%s' has shape [%lld, %lld, %lld, %lld], expected [%lld, %lld]", name,
            (long long)gt->ne[0], (long long)gt->ne[1], (long long)gt->ne[2], (long long)gt->ne[3],
            (long long)ne0, (long long)want1);
    const slim_dtype_traits *tr = slim_dtype_traits_of(gt->type);
    if (!tr) return slim_error(SLIM_ERR_UNSUPPORTED, "model: tensor '%s' has unknown type", name);
    if (ne1 == 0 && gt->type != SLIM_DTYPE_F32)
        return slim_error(SLIM_ERR_UNSUPPORTED, "model: norm tensor '%s' is %s, expected F32", name,
                          tr->name);
    if (ne1 != 0 && !tr->vec_dot)
        return slim_error(SLIM_ERR_UNSUPPORTED, "model: tensor '%s' type %s cannot be a weight",
                          name, tr->name);
    t->name = gt->name;
    t->type = gt->type;
    t->n_dims = gt->n_dims;
    memcpy(t->ne, gt->ne, sizeof t->ne);
    t->nb[0] = (size_t)tr->type_size;
    t->nb[1] = slim_dtype_row_size(gt->type, gt->ne[0]);
    t->nb[2] = t->nb[1] * (size_t)gt->ne[1];
    t->nb[3] = t->nb[2];
    t->data = gt->data;
    return SLIM_OK;
}

const float *slim_model_rope_factors(const slim_model *m, int32_t n_ctx) {
    if (m->rope_freqs.name) return m->rope_freqs.data;
    /* LongRoPE: the long factors once the context outgrows the original one. */
    if (m->rope_long.name && m->hp.n_ctx_orig > 0 && n_ctx > m->hp.n_ctx_orig)
        return m->rope_long.data;
    return m->rope_short.name ? m->rope_short.data : NULL;
}

static slim_status bind_weights(slim_model *m) {
    const slim_bind_src src = {.hf = false, .has = gguf_has, .bind = gguf_bind, .ctx = m};
    return slim_model_bind(m, &src);
}

static const char *file_type_name(int64_t ft) {
    switch (ft) {
    case 0: return "F32";
    case 1: return "F16";
    case 2: return "Q4_0";
    case 3: return "Q4_1";
    case 7: return "Q8_0";
    case 8: return "Q5_0";
    case 9: return "Q5_1";
    case 10: return "Q2_K";
    case 11: return "Q3_K_S";
    case 12: return "Q3_K_M";
    case 13: return "Q3_K_L";
    case 14: return "Q4_K_S";
    case 15: return "Q4_K_M";
    case 16: return "Q5_K_S";
    case 17: return "Q5_K_M";
    case 18: return "Q6_K";
    case 32: return "BF16";
    default: return "unknown";
    }
}

static void copy_str(char *dst, size_t cap, slim_gguf_str s) {
    size_t n = s.len < cap - 1 ? (size_t)s.len : cap - 1;
    memcpy(dst, s.ptr, n);
    dst[n] = '\0';
}

static size_t tensor_bytes(const slim_tensor *t) { return t->nb[1] * (size_t)t->ne[1]; }

/* Sorts idx[0..n) by all[idx[i]]->data, stable (a bottom-up merge sort through
 * tmp): the views come as an argument, so two threads loading models at once
 * share nothing (qsort would need its context in a file-scope variable). */
static void sort_by_address(slim_tensor *const *all, size_t *idx, size_t *tmp, size_t n) {
    for (size_t w = 1; w < n; w *= 2) {
        for (size_t lo = 0; lo < n; lo += 2 * w) {
            const size_t mid = lo + w < n ? lo + w : n, hi = lo + 2 * w < n ? lo + 2 * w : n;
            size_t i = lo, j = mid, k = lo;
            while (i < mid && j < hi)
                tmp[k++] = (const char *)all[idx[j]]->data < (const char *)all[idx[i]]->data
                               ? idx[j++]
                               : idx[i++];
            while (i < mid)
                tmp[k++] = idx[i++];
            while (j < hi)
                tmp[k++] = idx[j++];
        }
        memcpy(idx, tmp, n * sizeof *idx);
    }
}

/* Where each weight view goes in one device buffer (off[i]; bytes in total).
 * A GGUF's tensor data section goes as it is when every view lies in it
 * (*host NULL, *base the section).  Otherwise (a Hugging Face directory,
 * weights converted at load) the views are packed into a staging copy
 * (*host, freed by the caller): overlapping views (fused QKV rows, a tied
 * output) share one extent, extents at 256-byte offsets. */
static slim_status plan_upload(const slim_model *m, slim_tensor **all, size_t n, size_t *off,
                               const char **base, size_t *bytes, char **host) {
    *host = NULL;
    if (m->gguf) {
        *base = (const char *)m->gguf->map.data + m->gguf->data_offset;
        *bytes = m->gguf->map.size - m->gguf->data_offset;
        size_t i = 0;
        for (; i < n; i++) {
            const char *p = all[i]->data;
            if (!all[i]->name) continue;
            if (p < *base || p + tensor_bytes(all[i]) > *base + *bytes) break;
            off[i] = (size_t)(p - *base);
        }
        if (i == n) return SLIM_OK;
    }
    size_t *order = malloc(2 * n * sizeof *order), k = 0;
    if (!order) return slim_error(SLIM_ERR_NOMEM, "slim_model_load: out of memory");
    for (size_t i = 0; i < n; i++)
        if (all[i]->name) order[k++] = i;
    sort_by_address(all, order, order + n, k);
    /* First pass sizes the extents, the second copies them. */
    for (int pass = 0; pass < 2; pass++) {
        size_t used = 0;
        for (size_t e = 0; e < k;) {
            const char *start = all[order[e]]->data, *end = start;
            size_t f = e;
            for (; f < k && (const char *)all[order[f]]->data <= end; f++) {
                const char *t_end = (const char *)all[order[f]]->data + tensor_bytes(all[order[f]]);
                if (t_end > end) end = t_end;
                off[order[f]] = used + (size_t)((const char *)all[order[f]]->data - start);
            }
            if (pass) memcpy(*host + used, start, (size_t)(end - start));
            used += ((size_t)(end - start) + 255) & ~(size_t)255;
            e = f;
        }
        if (!pass && !(*host = malloc(used ? used : 1))) {
            free(order);
            return slim_error(SLIM_ERR_NOMEM, "slim_model_load: out of memory staging weights");
        }
        *base = *host;
        *bytes = used;
    }
    free(order);
    return SLIM_OK;
}

/* The matmul weights (out: NULL to count them); not the embedding table,
 * even when tied: lookups read its rows. */
static size_t matmul_weights(slim_model *m, slim_tensor **out) {
    size_t n = 0;
    if (out) out[n] = &m->output;
    n++;
    for (int32_t il = 0; il < m->hp.n_layer; il++) {
        slim_layer *l = &m->layers[il];
        slim_tensor *per[] = {&l->wq, &l->wk, &l->wv, &l->wo, &l->w_gate, &l->w_up, &l->w_down};
        for (size_t i = 0; i < sizeof per / sizeof per[0]; i++, n++)
            if (out) out[n] = per[i];
    }
    return n;
}

static void *arena_alloc(void *owner, size_t bytes) { return slim_model_alloc(owner, bytes); }

/* The backend's say on the weights, before any is copied: every one of a
 * type it runs in its use (else an error naming the tensor and the type),
 * then its own arrangement of the matmul weights (prepare_weights). */
static slim_status check_and_prepare(slim_model *m, const slim_backend_ops *ops) {
    const size_t n = matmul_weights(m, NULL);
    slim_tensor **w = malloc(n * sizeof *w);
    if (!w) return slim_error(SLIM_ERR_NOMEM, "slim_model_load: out of memory");
    matmul_weights(m, w);
    slim_status st = SLIM_OK;
    const slim_tensor *bad = NULL;
    if (m->tok_embd.name && !ops->supports(m->tok_embd.type, SLIM_USE_ROWS)) bad = &m->tok_embd;
    for (size_t i = 0; !bad && i < n; i++)
        if (w[i]->name && !ops->supports(w[i]->type, SLIM_USE_MATMUL)) bad = w[i];
    if (bad) {
        st = slim_error(SLIM_ERR_UNSUPPORTED,
                        "slim_model_load: the %s backend cannot run tensor '%s' of type %s",
                        ops->name, bad->name, slim_dtype_name(bad->type));
    } else if (ops->prepare_weights) {
        /* only views with a name: a missing optional weight has no data */
        size_t k = 0;
        for (size_t i = 0; i < n; i++)
            if (w[i]->name) w[k++] = w[i];
        const bool mapped = m->gguf && m->gguf->map.mapped;
        const slim_weight_arena arena = {.alloc = arena_alloc,
                                         .owner = m,
                                         .file = mapped ? m->gguf->map.data : NULL,
                                         .file_size = mapped ? m->gguf->map.size : 0};
        st = ops->prepare_weights(w, k, &arena);
    }
    free(w);
    return st;
}

/* Chooses the backend and, for a device one, copies the weights there and
 * points every weight view at its copy. */
static slim_status place_weights(slim_model *m, int32_t backend) {
    if (backend == SLIM_BACKEND_CPU) {
        m->ops = slim_backend_cpu();
        return check_and_prepare(m, m->ops);
    }
    if (backend != SLIM_BACKEND_CUDA)
        return slim_error(SLIM_ERR_INVALID_ARG, "slim_model_load: backend %d is not a slim_backend",
                          backend);
    const slim_backend_ops *ops = NULL;
    slim_status st = slim_backend_cuda(&ops);
    if (st || (st = check_and_prepare(m, ops))) return st;
    const size_t n = slim_model_tensors(m, NULL);
    slim_tensor **all = malloc(n * sizeof *all);
    size_t *off = malloc(n * sizeof *off);
    if (!all || !off) {
        free(all);
        free(off);
        return slim_error(SLIM_ERR_NOMEM, "slim_model_load: out of memory");
    }
    slim_model_tensors(m, all);
    const char *base = NULL;
    char *host = NULL;
    size_t bytes = 0;
    void *dev = NULL;
    if (!(st = plan_upload(m, all, n, off, &base, &bytes, &host)))
        st = ops->weights_upload(base, bytes, &dev);
    free(host);
    if (!st) {
        m->ops = ops;
        m->weights_dev = dev;
        for (size_t i = 0; i < n; i++)
            if (all[i]->name) all[i]->data = (char *)dev + off[i];
    }
    free(off);
    free(all);
    return st;
}

/* Quantize at load: every weight matrix converted to `type` (llama-quantize's
 * choice per matrix, slim_convert_type_for) into model memory. */
static slim_status convert_weights(slim_model *m, int type) {
    if (type == SLIM_CONVERT_KEEP) return SLIM_OK;
    const size_t n = slim_model_tensors(m, NULL);
    slim_tensor **all = malloc(n * sizeof *all);
    if (!all) return slim_error(SLIM_ERR_NOMEM, "model: out of memory");
    slim_model_tensors(m, all);
    const bool tied = m->output.data == m->tok_embd.data;
    slim_status st = SLIM_OK;
    float *scratch = NULL;
    for (size_t i = 0; !st && i < n; i++) {
        slim_tensor *t = all[i];
        if (!t->name || t->n_dims != 2 || (tied && t == &m->output)) continue;
        const slim_dtype to = slim_convert_type_for((slim_dtype)type, t->ne[0]);
        if (to == t->type) continue;
        const size_t row = slim_dtype_row_size(to, t->ne[0]);
        float *s = realloc(scratch, (size_t)t->ne[0] * sizeof *s);
        if (s) scratch = s;
        void *dst = s ? slim_model_alloc(m, row * (size_t)t->ne[1]) : NULL;
        if (!dst) {
            st = slim_error(SLIM_ERR_NOMEM, "model: out of memory converting '%s'", t->name);
            break;
        }
        if ((st = slim_convert_rows(t, 0, t->ne[1], to, dst, scratch))) break;
        t->type = to;
        t->nb[0] = slim_dtype_traits_of(to)->type_size;
        t->nb[1] = row;
        t->nb[2] = t->nb[3] = row * (size_t)t->ne[1];
        t->data = dst;
    }
    free(scratch);
    free(all);
    if (st) return st;
    if (tied) m->output = m->tok_embd;
    snprintf(m->file_type, sizeof m->file_type, "%s", slim_dtype_name(type));
    return SLIM_OK;
}

static bool is_directory(const char *path) {
    struct stat sb;
    return stat(path, &sb) == 0 && S_ISDIR(sb.st_mode);
}

static slim_status model_load(const char *path, const slim_model_params *params, slim_model *m) {
    slim_status st;
    int type;
    if ((st = slim_convert_type_from_name("slim_model_load: weight_type", params->weight_type,
                                          &type)))
        return st;
    if (is_directory(path)) {
        if ((st = slim_model_load_hf(path, params, m)) || (st = convert_weights(m, type)))
            return st;
        return place_weights(m, params->backend);
    }
    if ((st = slim_gguf_open(path, params->use_mmap != 0, &m->gguf))) return st;
    m->file_size = m->gguf->map.size;
    slim_gguf_str s;
    char arch[64];
    if (!slim_gguf_get_str(m->gguf, "general.architecture", &s))
        return slim_error(SLIM_ERR_FORMAT, "model: key 'general.architecture' missing");
    copy_str(arch, sizeof arch, s);
    if (!(m->arch = slim_arch_find("model: general.architecture", arch)))
        return SLIM_ERR_UNSUPPORTED;
    if (slim_gguf_get_str(m->gguf, "general.name", &s)) copy_str(m->name, sizeof m->name, s);
    int64_t ft = -1;
    slim_gguf_get_i64(m->gguf, "general.file_type", &ft);
    snprintf(m->file_type, sizeof m->file_type, "%s", file_type_name(ft));
    if ((st = read_hparams(m->gguf, m->arch, &m->hp))) return st;
    slim_gguf_str tok_model;
    if (slim_gguf_get_str(m->gguf, "tokenizer.ggml.model", &tok_model) && tok_model.len == 4 &&
        memcmp(tok_model.ptr, "none", 4) == 0) {
        /* No tokenizer (written from a checkpoint without one): token ids only. */
        const char *embd = slim_arch_spec(m->arch, SLIM_W_TOK_EMBD)->gguf;
        const slim_gguf_tensor *e = slim_gguf_find_tensor(m->gguf, embd);
        if (!e || e->ne[1] < 1 || e->ne[1] > (1 << 24))
            return slim_error(SLIM_ERR_FORMAT, "model: %s missing or malformed", embd);
        m->hp.n_vocab = (int32_t)e->ne[1];
    } else {
        if ((st = slim_vocab_from_gguf(m->gguf, &m->vocab))) return st;
        m->hp.n_vocab = slim_vocab_size(m->vocab);
    }
    if ((st = bind_weights(m))) return st;
    for (uint64_t i = 0; i < m->gguf->n_tensors; i++) {
        const slim_gguf_tensor *t = &m->gguf->tensors[i];
        m->n_params += (uint64_t)(t->ne[0] * t->ne[1] * t->ne[2] * t->ne[3]);
    }
    if ((st = convert_weights(m, type))) return st;
    return place_weights(m, params->backend);
}

slim_model_params slim_model_default_params(void) {
    return (slim_model_params){.struct_size = sizeof(slim_model_params), .use_mmap = 1};
}

void slim_model_free(slim_model *m) {
    if (!m) return;
    if (m->constrain) m->constrain_free(m->constrain);
    if (m->weights_dev) m->ops->weights_free(m->weights_dev);
    slim_vocab_free(m->vocab);
    free(m->layers);
    for (size_t i = 0; i < m->n_owned; i++)
        free(m->owned[i]);
    free(m->owned);
    slim_st_set_close(m->st);
    slim_gguf_close(m->gguf);
    free(m);
}

slim_status slim_model_load(const char *path, const slim_model_params *params, slim_model **out) {
    if (!out) return slim_error(SLIM_ERR_INVALID_ARG, "slim_model_load: out is NULL");
    *out = NULL;
    if (!path) return slim_error(SLIM_ERR_INVALID_ARG, "slim_model_load: path is NULL");
    slim_model_params p = slim_model_default_params();
    if (params) {
        if (params->struct_size < sizeof(size_t) + sizeof(int32_t) ||
            params->struct_size > sizeof p)
            return slim_error(SLIM_ERR_INVALID_ARG,
                              "slim_model_load: params->struct_size %zu is not a known size",
                              params->struct_size);
        memcpy(&p, params, params->struct_size);
    }
    slim_model *m = calloc(1, sizeof *m);
    if (!m) return slim_error(SLIM_ERR_NOMEM, "slim_model_load: out of memory");
    slim_status st = model_load(path, &p, m);
    if (st) {
        slim_model_free(m);
        if (strncmp(slim_last_error(), path, strlen(path)) != 0) slim_error_prefix(st, "%s", path);
        return st;
    }
    slim_log(SLIM_LOG_INFO, "loaded %s: %s %s, %llu parameters, %d layers, vocab %d", path,
             m->arch->name, m->file_type, (unsigned long long)m->n_params, m->hp.n_layer,
             m->hp.n_vocab);
    *out = m;
    return SLIM_OK;
}
