/* A loaded model written back as a GGUF file that llama.cpp loads: the
 * hyperparameters as llama.cpp's keys, the vocabulary (vocab_export.c), and
 * every weight under its llama.cpp name, matrices converted to the asked
 * type row by row and streamed to the file (gguf_write.c).
 *
 * What is not a plain copy:
 *  - arch llama with Hugging Face Q/K rows (hp.rope_neox, NeoX pairs): the
 *    q and k rows (and biases) are permuted into llama.cpp's adjacent-pair
 *    layout, the inverse of convert_hf_to_gguf.py's `permute`; a pure row
 *    move, so it works on quantized rows too;
 *  - Phi-3: gate and up are written as one ffn_up (llama.cpp requires it), Q,
 *    K, V as one attn_qkv when their types agree;
 *  - an attention scale llama.cpp would not derive (Gemma's
 *    query_pre_attn_scalar from a Hugging Face config) is folded into the
 *    q_norm weights (Gemma 3) or the q rows. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "format/gguf_write.h"
#include "model/model.h"
#include "quant/blocks.h"
#include "quant/dtype.h"

enum { MAX_PARTS = 3, CHUNK_BYTES = 4 << 20 };

/* A slice of the output tensor: source rows, maybe permuted and scaled. */
typedef struct part {
    const slim_tensor *src;
    int64_t rows;
    int32_t perm_heads; /* > 0: llama.cpp's Q/K row order over this many heads */
    float scale;        /* multiplies every value (1: none) */
} part;

typedef struct out_tensor {
    char name[64];
    int32_t n_dims;    /* 1: a vector (rows = its elements, one per row) */
    int64_t ne0, rows; /* row length and rows of the written tensor */
    slim_dtype type;
    part parts[MAX_PARTS];
    int n_parts;
} out_tensor;

typedef struct conv {
    const slim_model *m;
    int want; /* slim_dtype or SLIM_CONVERT_KEEP */
    out_tensor *t;
    size_t n, cap;
    int32_t n_rot, head_dim; /* for the Q/K permutation */
} conv;

slim_dtype slim_convert_type_for(slim_dtype type, int64_t ne0) {
    const slim_dtype_traits *tr = slim_dtype_traits_of((int)type);
    if (!tr || ne0 % tr->block_size == 0) return type;
    slim_dtype fb = SLIM_DTYPE_F16; /* llama-quantize: a 32-block type goes to F16 */
    if (type == SLIM_DTYPE_Q4_K) fb = SLIM_DTYPE_Q5_0;
    if (type == SLIM_DTYPE_Q5_K) fb = SLIM_DTYPE_Q5_1;
    if (type == SLIM_DTYPE_Q6_K) fb = SLIM_DTYPE_Q8_0;
    return ne0 % slim_dtype_traits_of((int)fb)->block_size == 0 ? fb : SLIM_DTYPE_F16;
}

/* Source row of output row r of a permuted part: llama.cpp's row h*hd + 2i + s
 * (s the pair member) holds Hugging Face's h*hd + s*n_rot/2 + i; dims past
 * n_rot are not rotated and keep their place. */
static int64_t perm_row(const conv *c, int64_t r) {
    const int64_t hd = c->head_dim, h = r / hd, j = r % hd, half = c->n_rot / 2;
    if (j >= c->n_rot) return r;
    return h * hd + (j % 2) * half + j / 2;
}

static const void *src_row(const part *p, int64_t r, bool vec) {
    if (vec) return (const char *)p->src->data + (size_t)r * sizeof(float);
    return slim_tensor_row(p->src, r);
}

static slim_status add(conv *c, const char *name, int il, slim_dtype type, int32_t n_dims,
                       int64_t ne0, const part *parts, int n_parts) {
    if (c->n == c->cap) {
        size_t ncap = c->cap ? 2 * c->cap : 64;
        out_tensor *p = realloc(c->t, ncap * sizeof *p);
        if (!p) return slim_error(SLIM_ERR_NOMEM, "convert: out of memory");
        c->t = p, c->cap = ncap;
    }
    out_tensor *o = &c->t[c->n++];
    memset(o, 0, sizeof *o);
    snprintf(o->name, sizeof o->name, name, il);
    o->n_dims = n_dims;
    o->ne0 = ne0;
    o->type = type;
    o->n_parts = n_parts;
    for (int i = 0; i < n_parts; i++) {
        o->parts[i] = parts[i];
        o->rows += parts[i].rows;
    }
    return SLIM_OK;
}

/* A 1-D tensor (norm, bias, RoPE factors): F32, one element per "row". */
static slim_status add_vec(conv *c, const slim_tensor *t, const char *name, int il,
                           int32_t perm_heads, float scale) {
    if (!t->name) return SLIM_OK;
    part p = {t, t->ne[0], perm_heads, scale};
    return add(c, name, il, SLIM_DTYPE_F32, 1, 1, &p, 1);
}

/* The written type of matrices made of these parts: the asked type (with
 * llama-quantize's fallback), or with "keep" the source type where all parts
 * share it and no value changes (else F16 unless the source type can be
 * requantized). */
static slim_status mat_type(const conv *c, const part *p, int n, const char *name, int il,
                            slim_dtype *out) {
    const int64_t ne0 = p[0].src->ne[0];
    if (c->want != SLIM_CONVERT_KEEP) {
        *out = slim_convert_type_for((slim_dtype)c->want, ne0);
        return SLIM_OK;
    }
    for (int i = 1; i < n; i++)
        if (p[i].src->type != p[0].src->type) {
            char full[64];
            snprintf(full, sizeof full, name, il);
            return slim_error(SLIM_ERR_UNSUPPORTED,
                              "convert: '%s' joins weights of types %s and %s; name a --type", full,
                              slim_dtype_name(p[0].src->type), slim_dtype_name(p[i].src->type));
        }
    *out = p[0].src->type;
    for (int i = 0; i < n; i++)
        if (p[i].scale != 1.0f && !slim_quantizer(*out)) *out = SLIM_DTYPE_F16;
    return SLIM_OK;
}

static slim_status add_mat_parts(conv *c, const char *name, int il, const part *p, int n) {
    slim_dtype type;
    slim_status st = mat_type(c, p, n, name, il, &type);
    if (st) return st;
    return add(c, name, il, type, 2, p[0].src->ne[0], p, n);
}

static slim_status add_mat(conv *c, const slim_tensor *t, const char *name, int il,
                           int32_t perm_heads, float scale) {
    if (!t->name) return SLIM_OK;
    part p = {t, t->ne[1], perm_heads, scale};
    return add_mat_parts(c, name, il, &p, 1);
}

/* The q scale llama.cpp derives for the architecture (its f_attention_scale
 * rules), to compare with the model's. */
static float llama_cpp_attn_scale(const slim_model *m) {
    const slim_hparams *hp = &m->hp;
    const char *a = m->arch->name;
    if ((!strcmp(a, "gemma2") && hp->n_layer == 46) || (!strcmp(a, "gemma3") && hp->n_layer == 62))
        return 1.0f / sqrtf((float)(hp->n_embd / hp->n_head));
    return 1.0f / sqrtf((float)hp->head_dim);
}

/* A slot's GGUF name (a printf format of the layer) from the arch's table. */
static const char *name_of(const conv *c, slim_wslot slot) {
    const slim_tensor_spec *s = slim_arch_spec(c->m->arch, slot);
    return s && s->gguf ? s->gguf : "?";
}

static slim_status plan(conv *c) {
    const slim_model *m = c->m;
    const slim_hparams *hp = &m->hp;
    const bool fused = m->arch->gguf_fused;
    int32_t qh = 0, kh = 0; /* heads of the Q/K permutation, 0: none */
    if (hp->rope_neox != m->arch->rope_neox) {
        if (!hp->rope_neox || strcmp(m->arch->name, "llama") != 0)
            return slim_error(SLIM_ERR_UNSUPPORTED,
                              "convert: %s with %s RoPE pairs has no llama.cpp layout",
                              m->arch->name, hp->rope_neox ? "NeoX" : "adjacent");
        qh = hp->n_head, kh = hp->n_head_kv;
    }
    c->n_rot = hp->n_rot, c->head_dim = hp->head_dim;
    float expect = llama_cpp_attn_scale(m), qscale = 1.0f;
    if (fabsf(hp->attn_scale / expect - 1.0f) > 1e-6f) qscale = hp->attn_scale / expect;
    const float want_embd = m->arch->hf && m->arch->hf->embd_scale ? sqrtf((float)hp->n_embd) : 1;
    if (fabsf(hp->embd_scale / want_embd - 1.0f) > 1e-6f)
        return slim_error(SLIM_ERR_UNSUPPORTED,
                          "convert: embedding scale %g, llama.cpp's %s uses %g", hp->embd_scale,
                          m->arch->name, want_embd);

    slim_status st;
    if ((st = add_mat(c, &m->tok_embd, name_of(c, SLIM_W_TOK_EMBD), 0, 0, 1)) ||
        (st = add_vec(c, &m->rope_freqs, name_of(c, SLIM_W_ROPE_FREQS), 0, 0, 1)) ||
        (st = add_vec(c, &m->rope_long, name_of(c, SLIM_W_ROPE_LONG), 0, 0, 1)) ||
        (st = add_vec(c, &m->rope_short, name_of(c, SLIM_W_ROPE_SHORT), 0, 0, 1)))
        return st;
    for (int il = 0; il < hp->n_layer; il++) {
        const slim_layer *l = &m->layers[il];
        const bool fold_norm = qscale != 1.0f && l->q_norm.name;
        const float wqs = fold_norm ? 1.0f : qscale;
        if ((st = add_vec(c, &l->attn_norm, name_of(c, SLIM_W_ATTN_NORM), il, 0, 1))) return st;
        part qkv[3] = {{&l->wq, l->wq.ne[1], qh, wqs},
                       {&l->wk, l->wk.ne[1], kh, 1},
                       {&l->wv, l->wv.ne[1], 0, 1}};
        slim_dtype tq, tk, tv;
        if ((st = mat_type(c, &qkv[0], 1, "q", 0, &tq)) ||
            (st = mat_type(c, &qkv[1], 1, "k", 0, &tk)) ||
            (st = mat_type(c, &qkv[2], 1, "v", 0, &tv)))
            return st;
        if (fused && tq == tk && tk == tv) {
            if ((st = add_mat_parts(c, name_of(c, SLIM_W_QKV), il, qkv, 3))) return st;
        } else if ((st = add_mat(c, &l->wq, name_of(c, SLIM_W_Q), il, qh, wqs)) ||
                   (st = add_mat(c, &l->wk, name_of(c, SLIM_W_K), il, kh, 1)) ||
                   (st = add_mat(c, &l->wv, name_of(c, SLIM_W_V), il, 0, 1))) {
            return st;
        }
        if ((st = add_vec(c, &l->bq, name_of(c, SLIM_W_BQ), il, qh, wqs)) ||
            (st = add_vec(c, &l->bk, name_of(c, SLIM_W_BK), il, kh, 1)) ||
            (st = add_vec(c, &l->bv, name_of(c, SLIM_W_BV), il, 0, 1)) ||
            (st = add_mat(c, &l->wo, name_of(c, SLIM_W_O), il, 0, 1)) ||
            (st = add_vec(c, &l->q_norm, name_of(c, SLIM_W_Q_NORM), il, 0,
                          fold_norm ? qscale : 1)) ||
            (st = add_vec(c, &l->k_norm, name_of(c, SLIM_W_K_NORM), il, 0, 1)) ||
            (st = add_vec(c, &l->post_attn_norm, name_of(c, SLIM_W_POST_ATTN_NORM), il, 0, 1)) ||
            (st = add_vec(c, &l->ffn_norm, name_of(c, SLIM_W_FFN_NORM), il, 0, 1)))
            return st;
        if (fused) { /* llama.cpp's phi3 has no ffn_gate: gate rows then up rows */
            part gu[2] = {{&l->w_gate, l->w_gate.ne[1], 0, 1}, {&l->w_up, l->w_up.ne[1], 0, 1}};
            if ((st = add_mat_parts(c, name_of(c, SLIM_W_GATE_UP), il, gu, 2))) return st;
        } else if ((st = add_mat(c, &l->w_gate, name_of(c, SLIM_W_GATE), il, 0, 1)) ||
                   (st = add_mat(c, &l->w_up, name_of(c, SLIM_W_UP), il, 0, 1))) {
            return st;
        }
        if ((st = add_mat(c, &l->w_down, name_of(c, SLIM_W_DOWN), il, 0, 1)) ||
            (st = add_vec(c, &l->post_ffn_norm, name_of(c, SLIM_W_POST_FFN_NORM), il, 0, 1)))
            return st;
    }
    if ((st = add_vec(c, &m->output_norm, name_of(c, SLIM_W_OUTPUT_NORM), 0, 0, 1))) return st;
    if (m->output.name && m->output.data != m->tok_embd.data)
        return add_mat(c, &m->output, name_of(c, SLIM_W_OUTPUT), 0, 0, 1);
    return SLIM_OK;
}

/* ---- metadata ------------------------------------------------------------- */

static uint32_t file_type_of(const conv *c) {
    static const struct {
        const char *name;
        uint32_t ft;
    } names[] = {{"F32", 0},     {"F16", 1},     {"Q4_0", 2},    {"Q4_1", 3},    {"Q8_0", 7},
                 {"Q5_0", 8},    {"Q5_1", 9},    {"Q2_K", 10},   {"Q3_K_S", 11}, {"Q3_K_M", 12},
                 {"Q3_K_L", 13}, {"Q4_K_S", 14}, {"Q4_K_M", 15}, {"Q5_K_S", 16}, {"Q5_K_M", 17},
                 {"Q6_K", 18},   {"BF16", 32}};
    int type = c->want;
    if (type == SLIM_CONVERT_KEEP) {
        for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
            if (!strcmp(names[i].name, c->m->file_type)) return names[i].ft;
        type = c->t[0].type; /* unknown: the embedding's type says most */
    }
    switch (type) {
    case SLIM_DTYPE_F16: return 1;
    case SLIM_DTYPE_Q4_0: return 2;
    case SLIM_DTYPE_Q4_1: return 3;
    case SLIM_DTYPE_Q8_0: return 7;
    case SLIM_DTYPE_Q5_0: return 8;
    case SLIM_DTYPE_Q5_1: return 9;
    case SLIM_DTYPE_Q4_K: return 14; /* every matrix Q4_K: llama.cpp's name is Q4_K_S */
    case SLIM_DTYPE_Q5_K: return 16;
    case SLIM_DTYPE_Q6_K: return 18;
    case SLIM_DTYPE_BF16: return 32;
    default: return 0;
    }
}

static slim_status kv_arch_u32(slim_gguf_writer *w, const char *arch, const char *key, int64_t v) {
    char full[160];
    snprintf(full, sizeof full, "%s.%s", arch, key);
    return slim_gguf_writer_kv_u32(w, full, (uint32_t)v);
}

static slim_status kv_arch_f32(slim_gguf_writer *w, const char *arch, const char *key, float v) {
    char full[160];
    snprintf(full, sizeof full, "%s.%s", arch, key);
    return slim_gguf_writer_kv_f32(w, full, v);
}

/* Gemma 2/3: every p-th layer global.  Returns p, or 0 if the layers follow
 * no such pattern. */
static uint32_t swa_pattern(const slim_hparams *hp) {
    for (uint32_t p = 1; p <= (uint32_t)hp->n_layer + 1; p++) {
        bool ok = true;
        for (int32_t il = 0; il < hp->n_layer && ok; il++)
            ok = hp->layer_swa[il] == ((uint32_t)(il + 1) % p != 0);
        if (ok) return p;
    }
    return 0;
}

static slim_status write_hparams(const conv *c, slim_gguf_writer *w) {
    const slim_model *m = c->m;
    const slim_hparams *hp = &m->hp;
    const char *a = m->arch->name;
    slim_status st;
    bool any_swa = false;
    for (int32_t il = 0; il < hp->n_layer; il++)
        any_swa |= hp->layer_swa[il];
    if ((st = slim_gguf_writer_kv_str(w, "general.architecture", a, strlen(a))) ||
        (m->name[0] &&
         (st = slim_gguf_writer_kv_str(w, "general.name", m->name, strlen(m->name)))) ||
        (st = slim_gguf_writer_kv_u32(w, "general.file_type", file_type_of(c))) ||
        (st = kv_arch_u32(w, a, "vocab_size", hp->n_vocab)) ||
        (st = kv_arch_u32(w, a, "context_length", hp->n_ctx_train)) ||
        (st = kv_arch_u32(w, a, "embedding_length", hp->n_embd)) ||
        (st = kv_arch_u32(w, a, "block_count", hp->n_layer)) ||
        (st = kv_arch_u32(w, a, "feed_forward_length", hp->n_ff)) ||
        (st = kv_arch_u32(w, a, "attention.head_count", hp->n_head)) ||
        (st = kv_arch_u32(w, a, "attention.head_count_kv", hp->n_head_kv)) ||
        (st = kv_arch_u32(w, a, "attention.key_length", hp->head_dim)) ||
        (st = kv_arch_u32(w, a, "attention.value_length", hp->head_dim)) ||
        (st = kv_arch_f32(w, a, "attention.layer_norm_rms_epsilon", hp->norm_eps)) ||
        (st = kv_arch_f32(w, a, "rope.freq_base", hp->rope_base)) ||
        (st = kv_arch_u32(w, a, "rope.dimension_count", hp->n_rot)))
        return st;
    if (hp->rope_freq_scale != 1.0f) {
        char key[160];
        snprintf(key, sizeof key, "%s.rope.scaling.type", a);
        if ((st = slim_gguf_writer_kv_str(w, key, "linear", 6)) ||
            (st = kv_arch_f32(w, a, "rope.scaling.factor", 1.0f / hp->rope_freq_scale)))
            return st;
    }
    if (hp->n_ctx_orig > 0 &&
        (st = kv_arch_u32(w, a, "rope.scaling.original_context_length", hp->n_ctx_orig)))
        return st;
    if (hp->rope_mscale != 1.0f &&
        (st = kv_arch_f32(w, a, "rope.scaling.attn_factor", hp->rope_mscale)))
        return st;
    if (hp->attn_softcap != 0 &&
        (st = kv_arch_f32(w, a, "attn_logit_softcapping", hp->attn_softcap)))
        return st;
    if (hp->final_softcap != 0 &&
        (st = kv_arch_f32(w, a, "final_logit_softcapping", hp->final_softcap)))
        return st;
    if (any_swa && (!strcmp(a, "llama") || !strcmp(a, "phi3")))
        slim_log(SLIM_LOG_WARN,
                 "convert: llama.cpp ignores the sliding window (%d) of arch %s: its logits "
                 "will differ from slim's past that many tokens",
                 hp->swa_window, a);
    if (any_swa) {
        if ((st = kv_arch_u32(w, a, "attention.sliding_window", hp->swa_window)) ||
            (st = kv_arch_f32(w, a, "rope.freq_base_swa", hp->rope_base_swa)))
            return st;
        uint32_t p = swa_pattern(hp);
        char key[160];
        snprintf(key, sizeof key, "%s.attention.sliding_window_pattern", a);
        if (p) {
            st = slim_gguf_writer_kv_u32(w, key, p);
        } else { /* llama.cpp also reads a per-layer bool array (slim does not) */
            uint8_t swa[SLIM_MAX_LAYERS];
            for (int32_t il = 0; il < hp->n_layer; il++)
                swa[il] = hp->layer_swa[il];
            st = slim_gguf_writer_kv_arr(w, key, SLIM_GGUF_BOOL, swa, (uint64_t)hp->n_layer);
        }
        if (st) return st;
    }
    for (size_t i = 0; i < c->n; i++)
        if (slim_dtype_traits_of((int)c->t[i].type)->quantized)
            return slim_gguf_writer_kv_u32(w, "general.quantization_version", 2);
    return SLIM_OK;
}

static slim_status write_vocab(const slim_model *m, slim_gguf_writer *w) {
    /* The BPE pre-tokenizer's name and the chat template as the source GGUF
     * has them, where there is one (a Hugging Face source: derived). */
    char pre[64];
    const char *pre_p = NULL, *tmpl = NULL;
    size_t tmpl_len = 0;
    slim_gguf_str s;
    if (m->gguf && slim_gguf_get_str(m->gguf, "tokenizer.ggml.pre", &s) && s.len < sizeof pre) {
        memcpy(pre, s.ptr, s.len);
        pre[s.len] = '\0';
        pre_p = pre;
    }
    if (m->gguf && slim_gguf_get_str(m->gguf, "tokenizer.chat_template", &s))
        tmpl = s.ptr, tmpl_len = (size_t)s.len;
    if (!m->gguf && m->vocab && (tmpl = slim_vocab_chat_template(m->vocab)))
        tmpl_len = strlen(tmpl);
    return slim_vocab_write_gguf(m->vocab, pre_p, tmpl, tmpl_len, w);
}

/* One KV of the source GGUF, as it is. */
static slim_status copy_kv(const slim_gguf_kv *kv, slim_gguf_writer *w) {
    if (kv->type == SLIM_GGUF_STRING)
        return slim_gguf_writer_kv_str(w, kv->key, kv->v.str.ptr, (size_t)kv->v.str.len);
    if (kv->type != SLIM_GGUF_ARRAY) {
        union {
            uint8_t u8;
            uint16_t u16;
            uint32_t u32;
            uint64_t u64;
            float f32;
            double f64;
        } v;
        switch (kv->type) { /* the reader widened it; integers keep their bits */
        case SLIM_GGUF_UINT8:
        case SLIM_GGUF_INT8: v.u8 = (uint8_t)kv->v.u64; break;
        case SLIM_GGUF_BOOL: v.u8 = kv->v.b; break;
        case SLIM_GGUF_UINT16:
        case SLIM_GGUF_INT16: v.u16 = (uint16_t)kv->v.u64; break;
        case SLIM_GGUF_UINT32:
        case SLIM_GGUF_INT32: v.u32 = (uint32_t)kv->v.u64; break;
        case SLIM_GGUF_FLOAT32: v.f32 = (float)kv->v.f64; break;
        case SLIM_GGUF_FLOAT64: v.f64 = kv->v.f64; break;
        default: v.u64 = kv->v.u64; break;
        }
        return slim_gguf_writer_kv(w, kv->key, kv->type, &v);
    }
    if (kv->arr_type == SLIM_GGUF_STRING) {
        const size_t n = (size_t)kv->arr_n;
        const char **s = malloc((n ? n : 1) * sizeof *s);
        uint32_t *len = malloc((n ? n : 1) * sizeof *len);
        slim_status st = SLIM_OK;
        for (size_t i = 0; s && len && i < n && !st; i++) {
            if (kv->arr_strs[i].len > UINT32_MAX)
                st = slim_error(SLIM_ERR_UNSUPPORTED, "convert: '%s': string too long", kv->key);
            s[i] = kv->arr_strs[i].ptr, len[i] = (uint32_t)kv->arr_strs[i].len;
        }
        if (!s || !len) st = slim_error(SLIM_ERR_NOMEM, "convert: out of memory");
        if (!st) st = slim_gguf_writer_kv_str_arr(w, kv->key, s, len, n);
        free(s);
        free(len);
        return st;
    }
    if (kv->arr_type == SLIM_GGUF_ARRAY) return SLIM_OK; /* nested arrays: nothing reads them */
    return slim_gguf_writer_kv_arr(w, kv->key, kv->arr_type, kv->arr_data, kv->arr_n);
}

/* A GGUF source's other keys (general.license, tokenizer.ggml.add_sep_token,
 * keys of the architecture slim does not read, ...) come along unchanged. */
static slim_status copy_rest(const slim_model *m, slim_gguf_writer *w) {
    if (!m->gguf) return SLIM_OK;
    for (uint64_t i = 0; i < m->gguf->n_kv; i++) {
        const slim_gguf_kv *kv = &m->gguf->kv[i];
        if (slim_gguf_writer_has(w, kv->key) || !strcmp(kv->key, "general.alignment") ||
            !strcmp(kv->key, "general.quantization_version"))
            continue;
        slim_status st = copy_kv(kv, w);
        if (st) return st;
    }
    return SLIM_OK;
}

/* ---- data ----------------------------------------------------------------- */

static bool finite_row(const float *x, int64_t n) {
    for (int64_t i = 0; i < n; i++)
        if (!isfinite(x[i])) return false;
    return true;
}

/* One output row: copied as is when nothing changes, else through F32. */
static slim_status convert_row(const out_tensor *o, const part *p, int64_t sr, void *dst,
                               float *f32) {
    const bool vec = o->n_dims == 1;
    const slim_dtype st = p->src->type;
    const void *src = src_row(p, sr, vec);
    const int64_t n = o->ne0;
    if (st == o->type && p->scale == 1.0f) {
        memcpy(dst, src, slim_dtype_row_size(st, n));
        return SLIM_OK;
    }
    slim_dtype_traits_of((int)st)->to_float(src, f32, n);
    if (p->scale != 1.0f)
        for (int64_t i = 0; i < n; i++)
            f32[i] *= p->scale;
    if (!finite_row(f32, n))
        return slim_error(SLIM_ERR_FORMAT, "convert: tensor '%s' row %lld has non-finite values",
                          o->name, (long long)sr);
    slim_quantizer(o->type)(f32, dst, n);
    return SLIM_OK;
}

slim_status slim_convert_rows(const slim_tensor *src, int64_t r0, int64_t n, slim_dtype type,
                              void *dst, float *scratch) {
    if (!src || !dst || !scratch || r0 < 0 || n < 0 || r0 + n > src->ne[1])
        return slim_error(SLIM_ERR_INVALID_ARG, "slim_convert_rows: bad arguments");
    const slim_dtype_traits *tr = slim_dtype_traits_of((int)type);
    if (!tr || !slim_quantizer(type) || src->ne[0] % tr->block_size != 0)
        return slim_error(SLIM_ERR_INVALID_ARG, "slim_convert_rows: cannot write %s rows of %lld",
                          slim_dtype_name((int)type), (long long)src->ne[0]);
    out_tensor o = {.n_dims = 2, .ne0 = src->ne[0], .type = type};
    snprintf(o.name, sizeof o.name, "%s", src->name ? src->name : "?");
    part p = {src, src->ne[1], 0, 1.0f};
    const size_t rb = slim_dtype_row_size(type, src->ne[0]);
    for (int64_t r = 0; r < n; r++) {
        slim_status st = convert_row(&o, &p, r0 + r, (char *)dst + (size_t)r * rb, scratch);
        if (st) return st;
    }
    return SLIM_OK;
}

static slim_status write_data(const conv *c, slim_gguf_writer *w, void (*progress)(float, void *),
                              void *user) {
    uint64_t total = 0, done = 0;
    size_t max_row = 0;
    int64_t max_ne0 = 1;
    for (size_t i = 0; i < c->n; i++) {
        const out_tensor *o = &c->t[i];
        total += slim_gguf_writer_tensor_size(w, i);
        size_t rb = slim_dtype_row_size(o->type, o->ne0);
        if (rb > max_row) max_row = rb;
        if (o->ne0 > max_ne0) max_ne0 = o->ne0;
    }
    const size_t cap = max_row > CHUNK_BYTES ? max_row : CHUNK_BYTES;
    uint8_t *chunk = malloc(cap);
    float *f32 = malloc((size_t)max_ne0 * sizeof *f32);
    slim_status st = SLIM_OK;
    if (!chunk || !f32) {
        st = slim_error(SLIM_ERR_NOMEM, "convert: out of memory");
        goto out;
    }
    for (size_t i = 0; i < c->n && !st; i++) {
        const out_tensor *o = &c->t[i];
        const size_t rb = slim_dtype_row_size(o->type, o->ne0);
        for (int ip = 0; ip < o->n_parts && !st; ip++) {
            const part *p = &o->parts[ip];
            for (int64_t r = 0; r < p->rows && !st;) {
                size_t used = 0;
                for (; r < p->rows && used + rb <= cap && !st; r++, used += rb)
                    st = convert_row(o, p, p->perm_heads ? perm_row(c, r) : r, chunk + used, f32);
                if (!st) st = slim_gguf_writer_data(w, chunk, used);
                done += used;
                if (progress && !st && total) progress((float)((double)done / (double)total), user);
            }
        }
    }
out:
    free(chunk);
    free(f32);
    return st;
}

slim_status slim_model_write_gguf(const slim_model *m, const char *path, int type,
                                  void (*progress)(float, void *), void *user) {
    if (!m || !path)
        return slim_error(SLIM_ERR_INVALID_ARG, "slim_model_save_gguf: model or path is NULL");
    if (type != SLIM_CONVERT_KEEP && !slim_quantizer((slim_dtype)type))
        return slim_error(SLIM_ERR_INVALID_ARG, "slim_model_save_gguf: cannot write type %s",
                          slim_dtype_name(type));
    if (m->weights_dev)
        return slim_error(SLIM_ERR_UNSUPPORTED,
                          "slim_model_save_gguf: the weights are on the device; load the model "
                          "on the CPU backend to convert it");
    conv c = {.m = m, .want = type};
    slim_gguf_writer *w = NULL;
    slim_status st = plan(&c);
    if (!st) st = slim_gguf_writer_create(&w);
    if (!st) st = write_hparams(&c, w);
    if (!st) st = write_vocab(m, w);
    if (!st) st = copy_rest(m, w);
    for (size_t i = 0; i < c.n && !st; i++) {
        const out_tensor *o = &c.t[i];
        int64_t ne[2] = {o->n_dims == 1 ? o->rows : o->ne0, o->rows};
        st = slim_gguf_writer_tensor(w, o->name, o->type, o->n_dims, ne);
    }
    if (!st) st = slim_gguf_writer_begin(w, path);
    if (!st) st = write_data(&c, w, progress, user);
    if (!st) st = slim_gguf_writer_finish(w);
    if (!st && progress) progress(1.0f, user);
    slim_gguf_writer_free(w);
    free(c.t);
    return st;
}

/* ---- public entry ----------------------------------------------------------- */

slim_status slim_convert_type_from_name(const char *fn, const char *name, int *out) {
    static const struct {
        const char *name;
        int type;
    } types[] = {{"keep", SLIM_CONVERT_KEEP}, {"f32", SLIM_DTYPE_F32},   {"f16", SLIM_DTYPE_F16},
                 {"bf16", SLIM_DTYPE_BF16},   {"q8_0", SLIM_DTYPE_Q8_0}, {"q4_0", SLIM_DTYPE_Q4_0},
                 {"q4_1", SLIM_DTYPE_Q4_1},   {"q5_0", SLIM_DTYPE_Q5_0}, {"q5_1", SLIM_DTYPE_Q5_1},
                 {"q4_k", SLIM_DTYPE_Q4_K},   {"q5_k", SLIM_DTYPE_Q5_K}, {"q6_k", SLIM_DTYPE_Q6_K}};
    *out = SLIM_CONVERT_KEEP;
    if (!name) return SLIM_OK;
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
        if (strcmp(types[i].name, name) == 0) {
            *out = types[i].type;
            return SLIM_OK;
        }
    return slim_error(SLIM_ERR_INVALID_ARG,
                      "%s: unknown type '%.32s' (keep, f32, f16, bf16, q8_0, q4_0, q4_1, q5_0, "
                      "q5_1, q4_k, q5_k, q6_k)",
                      fn, name);
}

slim_status slim_model_save_gguf(const slim_model *model, const char *path, const char *type,
                                 slim_progress_fn progress, void *user) {
    if (!model) return slim_error(SLIM_ERR_INVALID_ARG, "slim_model_save_gguf: model is NULL");
    if (!path) return slim_error(SLIM_ERR_INVALID_ARG, "slim_model_save_gguf: path is NULL");
    int t;
    slim_status st = slim_convert_type_from_name("slim_model_save_gguf", type, &t);
    if (st) return st;
    return slim_model_write_gguf(model, path, t, progress, user);
}
