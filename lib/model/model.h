/* A loaded model: the file, the architecture, hyperparameters, weight views and
 * the vocabulary.  Read-only after load, so any number of contexts share it. */
#ifndef SLIM_MODEL_MODEL_H
#define SLIM_MODEL_MODEL_H

#include "backend/backend.h"
#include "core/tensor.h"
#include "format/gguf.h"
#include "model/arch.h"
#include "tokenizer/tokenizer.h"

typedef struct slim_layer {
    slim_tensor attn_norm, wq, wk, wv, wo, q_norm, k_norm, post_attn_norm;
    slim_tensor ffn_norm, w_gate, w_up, w_down, post_ffn_norm;
} slim_layer;

struct slim_model {
    slim_gguf *gguf;
    const slim_arch *arch;
    const slim_backend_ops *ops;
    slim_hparams hp;
    slim_vocab *vocab;
    slim_tensor tok_embd, output_norm, output; /* output aliases tok_embd when tied */
    slim_layer *layers;
    uint64_t n_params;
    char name[128];
    char file_type[16];
};

#endif
