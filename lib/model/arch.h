/* Architectures as data: a descriptor per family with the flags the generic
 * decoder block reads, plus a hook for what cannot be data. */
#ifndef SLIM_MODEL_ARCH_H
#define SLIM_MODEL_ARCH_H

#include <stdbool.h>
#include <stdint.h>

#include "backend/backend.h"
#include "format/gguf.h"

enum { SLIM_MAX_LAYERS = 512 };

/* Hyperparameters as the forward pass uses them (read from the file by
 * model.c, adjusted by the architecture's hook). */
typedef struct slim_hparams {
    int32_t n_vocab, n_ctx_train, n_embd, n_layer, n_ff;
    int32_t n_head, n_head_kv, head_dim, n_rot;
    float norm_eps;
    float rope_base, rope_base_swa;    /* global / sliding-window layers */
    float rope_freq_scale;             /* global layers (linear scaling: 1/factor) */
    float rope_mscale;                 /* scales rotated q and k (LongRoPE attention factor) */
    int32_t n_ctx_orig;                /* rope.scaling.original_context_length (0: none) */
    float attn_scale;                  /* multiplies q before q.k */
    float attn_softcap, final_softcap; /* 0: off */
    float embd_scale;                  /* multiplies the embedding (1: off) */
    int32_t swa_window;                /* 0: no sliding window */
    bool rope_neox; /* the architecture's pairing, or NEOX for Hugging Face Q/K layouts */
    bool layer_swa[SLIM_MAX_LAYERS]; /* per layer: uses the sliding window */
} slim_hparams;

typedef struct slim_arch {
    const char *name; /* general.architecture */
    slim_act act;
    bool rope_neox;  /* rotate (i, i + n_rot/2) pairs rather than adjacent ones */
    bool qk_norm;    /* RMSNorm over each q and k head (attn_q_norm / attn_k_norm) */
    bool post_norms; /* RMSNorm after attention and after the FFN, before the residual add */
    /* Fill what the generic reader cannot (defaults, derived values); may fail
     * with a message for a file that does not fit the family. */
    slim_status (*finish_hparams)(const slim_gguf *g, slim_hparams *hp);
} slim_arch;

SLIM_HIDDEN const slim_arch *slim_arch_find(const char *name);

/* Descriptors, one file each under lib/model/arch/. */
extern SLIM_HIDDEN const slim_arch slim_arch_gemma, slim_arch_gemma2, slim_arch_gemma3;
extern SLIM_HIDDEN const slim_arch slim_arch_llama, slim_arch_qwen2, slim_arch_phi3;

#endif
