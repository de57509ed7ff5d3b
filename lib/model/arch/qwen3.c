/* Qwen3 (dense): the Llama block with an RMSNorm over each q and k head
 * before RoPE (attn_q_norm / attn_k_norm, Hugging Face's q_norm / k_norm), no
 * Q/K/V biases, RoPE on NEOX pairs, head_dim from the file (128 where
 * n_embd / n_head is 64 or 80), tied or separate output matrix.  Hugging
 * Face: the sliding window, when use_sliding_window, on layers >=
 * max_window_layers (as Qwen2). */
#include "model/arch.h"

static const slim_hf_name hf_names[] = {{"qwen3", "Qwen3ForCausalLM"}, {NULL, NULL}};

static const slim_hf_rules hf_rules = {
    .names = hf_names,
    .act = "silu",
    .swa = SLIM_HF_SWA_MAX_WINDOW,
};

const slim_arch slim_arch_qwen3 = {
    .name = "qwen3",
    .act = SLIM_ACT_SILU,
    .rope_neox = true,
    .qk_norm = true,
    .tensors = slim_tensors_prenorm,
    .hf = &hf_rules,
};
