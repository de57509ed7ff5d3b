/* The Gemma family (1, 2, 3; text).  The GGUF converter has already folded
 * Gemma's (1 + w) RMSNorm into the stored weights, so the norms here are
 * plain RMSNorm.  The three differ in data: post norms (2, 3), QK norm (3),
 * softcaps (2), and which layers use the sliding window. */
#include <math.h>
#include <stdio.h>

#include "model/arch.h"

/* Every `pattern`-th layer is global, the others use the sliding window. */
static slim_status set_swa_pattern(const slim_gguf *g, const char *key, uint32_t pattern,
                                   slim_hparams *hp) {
    slim_gguf_get_u32(g, key, &pattern); /* absent: the family's default */
    if (pattern == 0) return slim_error(SLIM_ERR_FORMAT, "%s is 0", key);
    for (int32_t il = 0; il < hp->n_layer; il++)
        hp->layer_swa[il] = hp->swa_window > 0 && (uint32_t)(il + 1) % pattern != 0;
    return SLIM_OK;
}

/* Gemma scales q by query_pre_attn_scalar^-1/2, which the released models set
 * to head_dim except the largest (Gemma 2 27B: 46 layers, Gemma 3 27B: 62)
 * where it is n_embd / n_head; GGUF does not store it, so this follows the
 * released configs (as llama.cpp does). */
static void gemma_scales(slim_hparams *hp, int32_t layers_of_27b) {
    const float qpas =
        hp->n_layer == layers_of_27b ? (float)hp->n_embd / (float)hp->n_head : (float)hp->head_dim;
    hp->attn_scale = 1.0f / sqrtf(qpas);
    hp->embd_scale = sqrtf((float)hp->n_embd);
}

static slim_status gemma_finish(const slim_gguf *g, slim_hparams *hp) {
    (void)g;
    gemma_scales(hp, -1);
    hp->swa_window = 0;
    return SLIM_OK;
}

static slim_status gemma2_finish(const slim_gguf *g, slim_hparams *hp) {
    gemma_scales(hp, 46);
    /* Defaults of the released models where the file is silent. */
    if (!slim_gguf_get_i64(g, "gemma2.attention.sliding_window", &(int64_t){0}))
        hp->swa_window = 4096;
    if (!slim_gguf_get_f32(g, "gemma2.attn_logit_softcapping", &hp->attn_softcap))
        hp->attn_softcap = 50.0f;
    if (!slim_gguf_get_f32(g, "gemma2.final_logit_softcapping", &hp->final_softcap))
        hp->final_softcap = 30.0f;
    if (!slim_gguf_get_f32(g, "gemma2.rope.freq_base_swa", &hp->rope_base_swa))
        hp->rope_base_swa = hp->rope_base;
    return set_swa_pattern(g, "gemma2.attention.sliding_window_pattern", 2, hp);
}

static slim_status gemma3_finish(const slim_gguf *g, slim_hparams *hp) {
    gemma_scales(hp, 62);
    /* Local layers: RoPE base 10k, unscaled; every 6th layer is global. */
    hp->rope_base_swa = 10000.0f;
    return set_swa_pattern(g, "gemma3.attention.sliding_window_pattern", 6, hp);
}

/* Hugging Face: RMSNorm scales by (1 + w) (the GGUF converter folds the 1 in),
 * tied embeddings, the embedding times sqrt(n_embd), q scaled by
 * query_pre_attn_scalar^-1/2, rope_scaling on the global layers only. */
#define GEMMA_HF_RULES                                                                             \
    .act = "gelu_pytorch_tanh", .norm_offset = 1.0f, .tied_default = true,                         \
    .attn_scalar_key = "query_pre_attn_scalar", .embd_scale = true, .swa_rope_unscaled = true

static const slim_hf_name gemma_names[] = {{"gemma", "GemmaForCausalLM"}, {NULL, NULL}};
static const slim_hf_name gemma2_names[] = {{"gemma2", "Gemma2ForCausalLM"}, {NULL, NULL}};
static const slim_hf_name gemma3_names[] = {{"gemma3_text", "Gemma3ForCausalLM"},
                                            {"gemma3", "Gemma3ForConditionalGeneration"},
                                            {NULL, NULL}};

/* Gemma 1 has no window; its configs' hidden_act is not what it runs. */
static const slim_hf_rules gemma_hf = {GEMMA_HF_RULES, .names = gemma_names,
                                       .act_key_ignored = true, .swa = SLIM_HF_SWA_NONE};
/* Gemma 2: even layers slide. */
static const slim_hf_rules gemma2_hf = {GEMMA_HF_RULES, .names = gemma2_names,
                                        .swa = SLIM_HF_SWA_EVEN};
/* Gemma 3: every sliding_window_pattern-th layer (6) global; local RoPE base 10k. */
static const slim_hf_rules gemma3_hf = {GEMMA_HF_RULES, .names = gemma3_names,
                                        .swa = SLIM_HF_SWA_PATTERN, .swa_pattern_default = 6,
                                        .swa_theta_default = 10000.0};

const slim_arch slim_arch_gemma = {
    .name = "gemma",
    .act = SLIM_ACT_GELU_TANH,
    .rope_neox = true,
    .tensors = slim_tensors_prenorm,
    .hf = &gemma_hf,
    .finish_hparams = gemma_finish,
};

const slim_arch slim_arch_gemma2 = {
    .name = "gemma2",
    .act = SLIM_ACT_GELU_TANH,
    .rope_neox = true,
    .post_norms = true,
    .tensors = slim_tensors_sandwich,
    .hf = &gemma2_hf,
    .finish_hparams = gemma2_finish,
};

const slim_arch slim_arch_gemma3 = {
    .name = "gemma3",
    .act = SLIM_ACT_GELU_TANH,
    .rope_neox = true,
    .qk_norm = true,
    .post_norms = true,
    .tensors = slim_tensors_sandwich,
    .hf = &gemma3_hf,
    .finish_hparams = gemma3_finish,
};
