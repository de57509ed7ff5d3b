/* Qwen2 / Qwen2.5: the Llama block with Q/K/V biases (bound when present) and
 * RoPE on NEOX pairs. */
#include "model/arch.h"

static const slim_hf_name hf_names[] = {{"qwen2", "Qwen2ForCausalLM"}, {NULL, NULL}};

/* The window (when use_sliding_window) is on layers >= max_window_layers. */
static const slim_hf_rules hf_rules = {
    .names = hf_names,
    .act = "silu",
    .swa = SLIM_HF_SWA_MAX_WINDOW,
};

const slim_arch slim_arch_qwen2 = {
    .name = "qwen2",
    .act = SLIM_ACT_SILU,
    .rope_neox = true,
    .tensors = slim_tensors_prenorm,
    .hf = &hf_rules,
};
