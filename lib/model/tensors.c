/* The registry of architecture descriptors, and binding a model's weights
 * from its descriptor's tensor table (arch/tables.c) for the GGUF loader, the
 * Hugging Face loader, the GGUF writer and the LoRA loader alike; the list of
 * a model's weight views and the memory it owns. */
#include <stdio.h>
#include <string.h>

#include <stdlib.h>

#include "core/bigalloc.h"
#include "core/error.h"
#include "core/grow.h"
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

size_t slim_model_tensors(slim_model *m, slim_tensor **out) {
    slim_tensor *top[] = {&m->tok_embd,   &m->output_norm, &m->output,
                          &m->rope_freqs, &m->rope_long,   &m->rope_short};
    size_t n = 0;
    for (size_t i = 0; i < sizeof top / sizeof top[0]; i++, n++)
        if (out) out[n] = top[i];
    for (int32_t il = 0; il < m->hp.n_layer; il++) {
        slim_layer *l = &m->layers[il];
        slim_tensor *per[] = {&l->attn_norm, &l->wq,     &l->wk,     &l->wv,
                              &l->wo,        &l->q_norm, &l->k_norm, &l->post_attn_norm,
                              &l->bq,        &l->bk,     &l->bv,     &l->ffn_norm,
                              &l->w_gate,    &l->w_up,   &l->w_down, &l->post_ffn_norm};
        for (size_t i = 0; i < sizeof per / sizeof per[0]; i++, n++)
            if (out) out[n] = per[i];
    }
    return n;
}

/* Below model.c and load_hf.c, which both fill the model through it. */
void *slim_model_alloc(slim_model *m, size_t bytes) {
    if (!slim_grow((void **)&m->owned, &m->cap_owned, m->n_owned + 1, sizeof *m->owned)) {
        slim_error(SLIM_ERR_NOMEM, "model: out of memory");
        return NULL;
    }
    void *p = slim_bigalloc(bytes);
    if (!p) {
        slim_error(SLIM_ERR_NOMEM, "model: out of memory (%zu bytes)", bytes);
        return NULL;
    }
    m->owned[m->n_owned++] = p;
    return p;
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
