/* The architectures' shared data: the registry of descriptors and the
 * decoder block's tensor tables (GGUF and Hugging Face names, shapes, needs)
 * that the GGUF loader, the Hugging Face loader, the GGUF writer and the LoRA
 * loader all read, so a tensor's name is spelled here and nowhere else. */
#include <stdio.h>
#include <string.h>

#include <stdlib.h>

#include "core/error.h"
#include "model/model.h"

static const slim_arch *const all_archs[] = {&slim_arch_gemma, &slim_arch_gemma2, &slim_arch_gemma3,
                                             &slim_arch_llama, &slim_arch_qwen2,  &slim_arch_qwen3,
                                             &slim_arch_phi3};
enum { N_ARCHS = sizeof all_archs / sizeof all_archs[0] };

const slim_arch *slim_arch_find(const char *what, const char *name) {
    char known[256] = "";
    for (size_t i = 0; i < N_ARCHS; i++) {
        if (strcmp(all_archs[i]->name, name) == 0) return all_archs[i];
        snprintf(known + strlen(known), sizeof known - strlen(known), "%s%s", i ? ", " : "",
                 all_archs[i]->name);
    }
    slim_error(SLIM_ERR_UNSUPPORTED, "%s: architecture '%s' not supported (slim loads %s)", what,
               name, known);
    return NULL;
}

const slim_arch *slim_arch_find_hf(const char *s, bool by_arch) {
    if (!s) return NULL;
    for (size_t i = 0; i < N_ARCHS; i++) {
        if (!all_archs[i]->hf) continue;
        for (const slim_hf_name *n = all_archs[i]->hf->names; n->model_type; n++)
            if (strcmp(by_arch ? n->architecture : n->model_type, s) == 0) return all_archs[i];
    }
    return NULL;
}

void slim_arch_hf_list(char *buf, size_t cap) {
    size_t used = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < N_ARCHS; i++) {
        if (!all_archs[i]->hf) continue;
        for (const slim_hf_name *n = all_archs[i]->hf->names; n->model_type && used < cap; n++) {
            int k = snprintf(buf + used, cap - used, "%s%s", used ? ", " : "", n->model_type);
            if (k < 0) break;
            used += (size_t)k;
        }
    }
}

const slim_tensor_spec *slim_arch_spec(const slim_arch *a, slim_wslot slot) {
    for (const slim_tensor_spec *s = a->tensors; s->slot != SLIM_W_END; s++)
        if (s->slot == slot) return s;
    return NULL;
}

int64_t slim_wdim_size(const slim_hparams *hp, slim_wdim d) {
    const int64_t Q = (int64_t)hp->n_head * hp->head_dim,
                  KV = (int64_t)hp->n_head_kv * hp->head_dim;
    switch (d) {
    case SLIM_D_EMBD: return hp->n_embd;
    case SLIM_D_Q: return Q;
    case SLIM_D_KV: return KV;
    case SLIM_D_QKV: return Q + 2 * KV;
    case SLIM_D_FF: return hp->n_ff;
    case SLIM_D_FF2: return 2 * (int64_t)hp->n_ff;
    case SLIM_D_VOCAB: return hp->n_vocab;
    case SLIM_D_HEAD: return hp->head_dim;
    case SLIM_D_ROT_HALF: return hp->n_rot / 2;
    default: return 0;
    }
}

/* The entries every block table starts with: the model's own weights and the
 * attention inputs. */
#define SPEC(slot, ne0, ne1, need, norm, gguf, hf)                                                 \
    { SLIM_W_##slot, SLIM_D_##ne0, SLIM_D_##ne1, SLIM_T_##need, norm, gguf, hf }
#define COMMON_HEAD                                                                                \
    SPEC(TOK_EMBD, EMBD, VOCAB, REQUIRED, false, "token_embd.weight", "embed_tokens.weight"),      \
        SPEC(OUTPUT_NORM, EMBD, NONE, REQUIRED, true, "output_norm.weight", "norm.weight"),        \
        SPEC(OUTPUT, EMBD, VOCAB, OPTIONAL, false, "output.weight", "!lm_head.weight"),            \
        SPEC(ROPE_FREQS, ROT_HALF, NONE, OPTIONAL, false, "rope_freqs.weight", NULL),              \
        SPEC(ROPE_LONG, ROT_HALF, NONE, OPTIONAL, false, "rope_factors_long.weight", NULL),        \
        SPEC(ROPE_SHORT, ROT_HALF, NONE, OPTIONAL, false, "rope_factors_short.weight", NULL),      \
        SPEC(ATTN_NORM, EMBD, NONE, REQUIRED, true, "blk.%d.attn_norm.weight",                     \
             "layers.%d.input_layernorm.weight"),                                                  \
        SPEC(QKV, EMBD, QKV, REQUIRED, false, "blk.%d.attn_qkv.weight",                            \
             "layers.%d.self_attn.qkv_proj.weight"),                                               \
        SPEC(Q, EMBD, Q, REQUIRED, false, "blk.%d.attn_q.weight",                                  \
             "layers.%d.self_attn.q_proj.weight"),                                                 \
        SPEC(K, EMBD, KV, REQUIRED, false, "blk.%d.attn_k.weight",                                 \
             "layers.%d.self_attn.k_proj.weight"),                                                 \
        SPEC(V, EMBD, KV, REQUIRED, false, "blk.%d.attn_v.weight",                                 \
             "layers.%d.self_attn.v_proj.weight"),                                                 \
        SPEC(BQ, Q, NONE, OPTIONAL, false, "blk.%d.attn_q.bias",                                   \
             "layers.%d.self_attn.q_proj.bias"),                                                   \
        SPEC(BK, KV, NONE, OPTIONAL, false, "blk.%d.attn_k.bias",                                  \
             "layers.%d.self_attn.k_proj.bias"),                                                   \
        SPEC(BV, KV, NONE, OPTIONAL, false, "blk.%d.attn_v.bias",                                  \
             "layers.%d.self_attn.v_proj.bias"), /* biases no supported family uses (Llama's       \
                                                    attention_bias / mlp_bias) */                  \
        SPEC(NONE, NONE, NONE, REFUSED, false, NULL, "layers.%d.self_attn.o_proj.bias"),           \
        SPEC(NONE, NONE, NONE, REFUSED, false, NULL, "layers.%d.mlp.gate_proj.bias"),              \
        SPEC(NONE, NONE, NONE, REFUSED, false, NULL, "layers.%d.mlp.up_proj.bias"),                \
        SPEC(NONE, NONE, NONE, REFUSED, false, NULL, "layers.%d.mlp.down_proj.bias"),              \
        SPEC(O, Q, EMBD, REQUIRED, false, "blk.%d.attn_output.weight",                             \
             "layers.%d.self_attn.o_proj.weight"),                                                 \
        SPEC(Q_NORM, HEAD, NONE, IF_QK_NORM, true, "blk.%d.attn_q_norm.weight",                    \
             "layers.%d.self_attn.q_norm.weight"),                                                 \
        SPEC(K_NORM, HEAD, NONE, IF_QK_NORM, true, "blk.%d.attn_k_norm.weight",                    \
             "layers.%d.self_attn.k_norm.weight")

/* The feed-forward half: gate+up fused (Phi-3: one 2 n_ff tensor, gate rows
 * then up rows) or separate. */
#define COMMON_FFN                                                                                 \
    SPEC(GATE_UP, EMBD, FF2, REQUIRED, false, "blk.%d.ffn_up.weight",                              \
         "layers.%d.mlp.gate_up_proj.weight"),                                                     \
        SPEC(GATE, EMBD, FF, REQUIRED, false, "blk.%d.ffn_gate.weight",                            \
             "layers.%d.mlp.gate_proj.weight"),                                                    \
        SPEC(UP, EMBD, FF, REQUIRED, false, "blk.%d.ffn_up.weight",                                \
             "layers.%d.mlp.up_proj.weight"),                                                      \
        SPEC(DOWN, FF, EMBD, REQUIRED, false, "blk.%d.ffn_down.weight",                            \
             "layers.%d.mlp.down_proj.weight")

/* Pre-norm: one norm before attention, one before the FFN (which Hugging Face
 * calls post_attention_layernorm). */
const slim_tensor_spec slim_tensors_prenorm[] = {
    COMMON_HEAD,
    SPEC(POST_ATTN_NORM, EMBD, NONE, IF_POST_NORMS, true, "blk.%d.post_attention_norm.weight",
         NULL),
    SPEC(FFN_NORM, EMBD, NONE, REQUIRED, true, "blk.%d.ffn_norm.weight",
         "layers.%d.post_attention_layernorm.weight"),
    COMMON_FFN,
    SPEC(POST_FFN_NORM, EMBD, NONE, IF_POST_NORMS, true, "blk.%d.post_ffw_norm.weight", NULL),
    {SLIM_W_END, 0, 0, 0, false, NULL, NULL},
};

/* Gemma 2/3: a norm before and after each half. */
const slim_tensor_spec slim_tensors_sandwich[] = {
    COMMON_HEAD,
    SPEC(POST_ATTN_NORM, EMBD, NONE, IF_POST_NORMS, true, "blk.%d.post_attention_norm.weight",
         "layers.%d.post_attention_layernorm.weight"),
    SPEC(FFN_NORM, EMBD, NONE, REQUIRED, true, "blk.%d.ffn_norm.weight",
         "layers.%d.pre_feedforward_layernorm.weight"),
    SPEC(POST_FFN_NORM, EMBD, NONE, IF_POST_NORMS, true, "blk.%d.post_ffw_norm.weight",
         "layers.%d.post_feedforward_layernorm.weight"),
    COMMON_FFN,
    {SLIM_W_END, 0, 0, 0, false, NULL, NULL},
};

slim_tensor *slim_model_slot(slim_model *m, slim_wslot slot, int il) {
    slim_layer *l = m->layers ? &m->layers[il] : NULL;
    switch (slot) {
    case SLIM_W_TOK_EMBD: return &m->tok_embd;
    case SLIM_W_OUTPUT_NORM: return &m->output_norm;
    case SLIM_W_OUTPUT: return &m->output;
    case SLIM_W_ROPE_FREQS: return &m->rope_freqs;
    case SLIM_W_ROPE_LONG: return &m->rope_long;
    case SLIM_W_ROPE_SHORT: return &m->rope_short;
    default: break;
    }
    if (!l) return NULL;
    switch (slot) {
    case SLIM_W_ATTN_NORM: return &l->attn_norm;
    case SLIM_W_Q: return &l->wq;
    case SLIM_W_K: return &l->wk;
    case SLIM_W_V: return &l->wv;
    case SLIM_W_BQ: return &l->bq;
    case SLIM_W_BK: return &l->bk;
    case SLIM_W_BV: return &l->bv;
    case SLIM_W_O: return &l->wo;
    case SLIM_W_Q_NORM: return &l->q_norm;
    case SLIM_W_K_NORM: return &l->k_norm;
    case SLIM_W_POST_ATTN_NORM: return &l->post_attn_norm;
    case SLIM_W_FFN_NORM: return &l->ffn_norm;
    case SLIM_W_GATE: return &l->w_gate;
    case SLIM_W_UP: return &l->w_up;
    case SLIM_W_DOWN: return &l->w_down;
    case SLIM_W_POST_FFN_NORM: return &l->post_ffn_norm;
    default: return NULL; /* fused (bound as views) or none */
    }
}

static bool is_global(slim_wslot s) { return s >= SLIM_W_TOK_EMBD && s < SLIM_W_ATTN_NORM; }

static bool spec_required(const slim_arch *a, const slim_tensor_spec *s) {
    switch (s->need) {
    case SLIM_T_REQUIRED: return true;
    case SLIM_T_IF_QK_NORM: return a->qk_norm;
    case SLIM_T_IF_POST_NORMS: return a->post_norms;
    default: return false;
    }
}

/* A fused entry's parts: their slots and row counts. */
static int fused_parts(const slim_hparams *hp, slim_wslot s, slim_wslot part[3], int64_t rows[3]) {
    if (s == SLIM_W_QKV) {
        part[0] = SLIM_W_Q, part[1] = SLIM_W_K, part[2] = SLIM_W_V;
        rows[0] = slim_wdim_size(hp, SLIM_D_Q);
        rows[1] = rows[2] = slim_wdim_size(hp, SLIM_D_KV);
        return 3;
    }
    if (s == SLIM_W_GATE_UP) {
        part[0] = SLIM_W_GATE, part[1] = SLIM_W_UP;
        rows[0] = rows[1] = hp->n_ff;
        return 2;
    }
    return 0;
}

static slim_status bind_spec(slim_model *m, const slim_bind_src *src, const slim_tensor_spec *s,
                             int il, uint32_t *skip) {
    const char *fmt = src->hf ? s->hf : s->gguf;
    if (!fmt || (*skip & (1u << s->slot))) return SLIM_OK;
    char name[128];
    snprintf(name, sizeof name, fmt, il);
    const int64_t ne0 = slim_wdim_size(&m->hp, s->ne0), ne1 = slim_wdim_size(&m->hp, s->ne1);
    slim_wslot part[3];
    int64_t rows[3];
    const int n_parts = fused_parts(&m->hp, s->slot, part, rows);
    if (n_parts == 0)
        return src->bind(src->ctx, s, name, spec_required(m->arch, s), ne0, ne1,
                         slim_model_slot(m, s->slot, il));
    /* Fused when its tensor is there and the first part's is not. */
    const slim_tensor_spec *first = slim_arch_spec(m->arch, part[0]);
    const char *first_fmt = first ? (src->hf ? first->hf : first->gguf) : NULL;
    char first_name[128];
    if (first_fmt) snprintf(first_name, sizeof first_name, first_fmt, il);
    if (!src->has(src->ctx, name) || (first_fmt && src->has(src->ctx, first_name))) return SLIM_OK;
    slim_tensor fused;
    slim_status st = src->bind(src->ctx, s, name, true, ne0, ne1, &fused);
    if (st) return st;
    for (int i = 0, r = 0; i < n_parts; r += (int)rows[i], i++) {
        *slim_model_slot(m, part[i], il) = slim_tensor_view_rows(&fused, r, rows[i]);
        *skip |= 1u << part[i];
    }
    return SLIM_OK;
}

slim_status slim_model_bind(slim_model *m, const slim_bind_src *src) {
    slim_status st;
    uint32_t skip = 0;
    for (const slim_tensor_spec *s = m->arch->tensors; s->slot != SLIM_W_END; s++)
        if (is_global(s->slot) && (st = bind_spec(m, src, s, 0, &skip))) return st;
    if (!m->output.name) m->output = m->tok_embd; /* tied embeddings */
    m->layers = calloc((size_t)m->hp.n_layer, sizeof *m->layers);
    if (!m->layers) return slim_error(SLIM_ERR_NOMEM, "model: out of memory");
    for (int il = 0; il < m->hp.n_layer; il++) {
        skip = 0;
        for (const slim_tensor_spec *s = m->arch->tensors; s->slot != SLIM_W_END; s++)
            if (!is_global(s->slot) && (st = bind_spec(m, src, s, il, &skip))) return st;
    }
    return SLIM_OK;
}
