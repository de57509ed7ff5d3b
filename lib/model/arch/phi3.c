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

const slim_arch slim_arch_phi3 = {
    .name = "phi3",
    .act = SLIM_ACT_SILU,
    .rope_neox = true,
    .finish_hparams = phi3_finish,
};
