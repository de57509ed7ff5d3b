/* A loaded model: the file, the architecture, hyperparameters, weight views and
 * the vocabulary.  Read-only after load, so any number of contexts share it. */
#ifndef SLIM_MODEL_MODEL_H
#define SLIM_MODEL_MODEL_H

#include "backend/backend.h"
#include "core/tensor.h"
#include "format/gguf.h"
#include "model/arch.h"
#include "tokenizer/tokenizer.h"

/* One block's weights; a tensor with name NULL is absent.  Fused GGUF tensors
 * (attn_qkv, a gate+up ffn_up) are bound as row views: wq/wk/wv and
 * w_gate/w_up then point into the one tensor. */
typedef struct slim_layer {
    slim_tensor attn_norm, wq, wk, wv, wo, q_norm, k_norm, post_attn_norm;
    slim_tensor bq, bk, bv; /* Q/K/V biases (Qwen2) */
    slim_tensor ffn_norm, w_gate, w_up, w_down, post_ffn_norm;
} slim_layer;

struct slim_model {
    slim_gguf *gguf;
    const slim_arch *arch;
    const slim_backend_ops *ops;
    slim_hparams hp;
    slim_vocab *vocab;
    slim_tensor tok_embd, output_norm, output; /* output aliases tok_embd when tied */
    /* RoPE frequency divisors (n_rot / 2 floats): Llama 3's rope_freqs, or
     * LongRoPE's pair, chosen by the context length (slim_model_rope_factors). */
    slim_tensor rope_freqs, rope_long, rope_short;
    slim_layer *layers;
    void *weights_dev; /* the file's tensor data in backend memory, or NULL (used in place) */
    uint64_t n_params;
    char name[128];
    char file_type[16];
};

/* The RoPE frequency factors a context of n_ctx tokens uses, or NULL. */
SLIM_HIDDEN const float *slim_model_rope_factors(const slim_model *m, int32_t n_ctx);

#endif
