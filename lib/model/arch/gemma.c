/* Gemma 3 (text).  The GGUF converter has already folded Gemma's (1 + w)
 * RMSNorm into the stored weights, so the norms here are plain RMSNorm. */
#include <math.h>
#include <stdio.h>

#include "model/arch.h"

static slim_status gemma3_finish(const slim_gguf *g, slim_hparams *hp) {
    /* Gemma 3 scales q by query_pre_attn_scalar^-1/2, which the released models
     * set to head_dim, except the 27B (62 layers) which uses n_embd / n_head;
     * GGUF does not store it, so this follows the released configs. */
    const float qpas =
        hp->n_layer == 62 ? (float)hp->n_embd / (float)hp->n_head : (float)hp->head_dim;
    hp->attn_scale = 1.0f / sqrtf(qpas);
    hp->embd_scale = sqrtf((float)hp->n_embd);
    /* Local layers: RoPE base 10k, unscaled; every 6th layer is global. */
    hp->rope_base_swa = 10000.0f;
    uint32_t pattern = 6;
    if (!slim_gguf_get_u32(g, "gemma3.attention.sliding_window_pattern", &pattern)) pattern = 6;
    if (pattern == 0)
        return slim_error(SLIM_ERR_FORMAT, "gemma3: attention.sliding_window_pattern is 0");
    for (int32_t il = 0; il < hp->n_layer; il++)
        hp->layer_swa[il] = hp->swa_window > 0 && (uint32_t)(il + 1) % pattern != 0;
    return SLIM_OK;
}

const slim_arch slim_arch_gemma3 = {
    .name = "gemma3",
    .act = SLIM_ACT_GELU_TANH,
    .rope_neox = true,
    .qk_norm = true,
    .post_norms = true,
    .finish_hparams = gemma3_finish,
};
