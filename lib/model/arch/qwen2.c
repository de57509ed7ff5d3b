/* Qwen2 / Qwen2.5: the Llama block with Q/K/V biases (bound when present) and
 * RoPE on NEOX pairs. */
#include "model/arch.h"

const slim_arch slim_arch_qwen2 = {
    .name = "qwen2",
    .act = SLIM_ACT_SILU,
    .rope_neox = true,
};
