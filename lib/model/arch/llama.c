/* Llama (and the many models that reuse its GGUF layout, e.g. SmolLM2):
 * pre-norm RMSNorm blocks, SwiGLU, RoPE on adjacent pairs (the GGUF converter
 * permutes Q and K for that), tied or separate output matrix. */
#include "model/arch.h"

const slim_arch slim_arch_llama = {
    .name = "llama",
    .act = SLIM_ACT_SILU,
    .rope_neox = false,
    .qk_norm = false,
    .post_norms = false,
    .finish_hparams = NULL,
};
