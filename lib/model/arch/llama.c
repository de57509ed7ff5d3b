/* Llama (and the many models that reuse its GGUF layout, e.g. SmolLM2):
 * pre-norm RMSNorm blocks, SwiGLU, RoPE on adjacent pairs (the GGUF converter
 * permutes Q and K for that), tied or separate output matrix. */
#include "model/arch.h"

/* Mistral's checkpoints are this block too; both slide every layer when
 * config.json sets sliding_window. */
static const slim_hf_name hf_names[] = {
    {"llama", "LlamaForCausalLM"}, {"mistral", "MistralForCausalLM"}, {NULL, NULL}};

static const slim_hf_rules hf_rules = {
    .names = hf_names,
    .act = "silu",
    .swa = SLIM_HF_SWA_ALL,
};

const slim_arch slim_arch_llama = {
    .name = "llama",
    .act = SLIM_ACT_SILU,
    .rope_neox = false,
    .qk_norm = false,
    .post_norms = false,
    .tensors = slim_tensors_prenorm,
    .hf = &hf_rules,
    .finish_hparams = NULL,
};
