/* Phi-3 / Phi-3.5 / Phi-4: fused QKV and gate+up tensors (bound as row views),
 * RoPE on NEOX pairs with LongRoPE factors (rope_factors_long / _short, chosen
 * by the context length) and the attention factor rope.scaling.attn_factor. */
#include "model/arch.h"

static slim_status phi3_finish(const slim_gguf *g, slim_hparams *hp) {
    (void)g;
    /* llama.cpp, the reference slim is tested against, runs Phi-3 without its
     * sliding window (llama.cpp PR 13676); so does slim, for the same logits. */
    hp->swa_window = 0;
    return SLIM_OK;
}

static const slim_hf_name hf_names[] = {{"phi3", "Phi3ForCausalLM"}, {NULL, NULL}};

static const slim_hf_rules hf_rules = {
    .names = hf_names,
    .act = "silu",
    .swa = SLIM_HF_SWA_ALL,
};

const slim_arch slim_arch_phi3 = {
    .name = "phi3",
    .act = SLIM_ACT_SILU,
    .rope_neox = true,
    .gguf_fused = true, /* llama.cpp's phi3 wants attn_qkv and no ffn_gate */
    .tensors = slim_tensors_prenorm,
    .hf = &hf_rules,
    .finish_hparams = phi3_finish,
};
