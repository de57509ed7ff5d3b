/* The decoder block's tensor tables (GGUF and Hugging Face names, shapes,
 * needs) that the descriptors point at: a tensor's name is spelled here and
 * nowhere else.  Kept apart from the registry (tensors.c) so dependencies
 * point one way: registry -> descriptors -> tables. */
#include "model/arch.h"

/* The entries every block table starts with: the model's own weights and the
 * attention inputs. */
#define SPEC(slot, ne0, ne1, need, norm, gguf, hf)                                                 \
    { SLIM_W_##slot, SLIM_D_##ne0, SLIM_D_##ne1, SLIM_T_##need, norm, gguf, hf }
#define COMMON_HEAD                                                                                \
    SPEC(TOK_EMBD, EMBD, VOCAB, REQUIRED, false, "token_embd.weight", "embed_tokens.weight"),      \
        SPEC(OUTPUT_NORM, EMBD, NONE, REQUIRED, true, "output_norm.weight", "norm.weight"),        \
        SPEC(OUTPUT, EMBD, VOCAB, OPTIONAL, false, "output.weight", "!lm_head.weight"),            \
        SPEC(ROPE_FREQS, ROT_HALF, NONE, OPTIONAL, false, "rope_freqs.weight", NULL),              \
        SPEC(ROPE_LONG, ROT_HALF, NONE, OPTIONAL, false, "rope_factors_long.weight", NULL),        \
        SPEC(ROPE_SHORT, ROT_HALF, NONE, OPTIONAL, false, "rope_factors_short.weight", NULL),      \
        SPEC(ATTN_NORM, EMBD, NONE, REQUIRED, true, "blk.%d.attn_norm.weight",                     \
             "layers.%d.input_layernorm.weight"),                                                  \
        SPEC(QKV, EMBD, QKV, REQUIRED, false, "blk.%d.attn_qkv.weight",                            \
             "layers.%d.self_attn.qkv_proj.weight"),                                               \
        SPEC(Q, EMBD, Q, REQUIRED, false, "blk.%d.attn_q.weight",                                  \
             "layers.%d.self_attn.q_proj.weight"),                                                 \
        SPEC(K, EMBD, KV, REQUIRED, false, "blk.%d.attn_k.weight",                                 \
             "layers.%d.self_attn.k_proj.weight"),                                                 \
        SPEC(V, EMBD, KV, REQUIRED, false, "blk.%d.attn_v.weight",                                 \
             "layers.%d.self_attn.v_proj.weight"),                                                 \
        SPEC(BQ, Q, NONE, OPTIONAL, false, "blk.%d.attn_q.bias",                                   \
             "layers.%d.self_attn.q_proj.bias"),                                                   \
        SPEC(BK, KV, NONE, OPTIONAL, false, "blk.%d.attn_k.bias",                                  \
             "layers.%d.self_attn.k_proj.bias"),                                                   \
        SPEC(BV, KV, NONE, OPTIONAL, false, "blk.%d.attn_v.bias",                                  \
             "layers.%d.self_attn.v_proj.bias"), /* biases no supported family uses (Llama's       \
                                                    attention_bias / mlp_bias) */                  \
        SPEC(NONE, NONE, NONE, REFUSED, false, NULL, "layers.%d.self_attn.o_proj.bias"),           \
        SPEC(NONE, NONE, NONE, REFUSED, false, NULL, "layers.%d.mlp.gate_proj.bias"),              \
        SPEC(NONE, NONE, NONE, REFUSED, false, NULL, "layers.%d.mlp.up_proj.bias"),                \
        SPEC(NONE, NONE, NONE, REFUSED, false, NULL, "layers.%d.mlp.down_proj.bias"),              \
        SPEC(O, Q, EMBD, REQUIRED, false, "blk.%d.attn_output.weight",                             \
             "layers.%d.self_attn.o_proj.weight"),                                                 \
        SPEC(Q_NORM, HEAD, NONE, IF_QK_NORM, true, "blk.%d.attn_q_norm.weight",                    \
             "layers.%d.self_attn.q_norm.weight"),                                                 \
        SPEC(K_NORM, HEAD, NONE, IF_QK_NORM, true, "blk.%d.attn_k_norm.weight",                    \
             "layers.%d.self_attn.k_norm.weight")

/* The feed-forward half: gate+up fused (Phi-3: one 2 n_ff tensor, gate rows
 * then up rows) or separate. */
#define COMMON_FFN                                                                                 \
    SPEC(GATE_UP, EMBD, FF2, REQUIRED, false, "blk.%d.ffn_up.weight",                              \
         "layers.%d.mlp.gate_up_proj.weight"),                                                     \
        SPEC(GATE, EMBD, FF, REQUIRED, false, "blk.%d.ffn_gate.weight",                            \
             "layers.%d.mlp.gate_proj.weight"),                                                    \
        SPEC(UP, EMBD, FF, REQUIRED, false, "blk.%d.ffn_up.weight",                                \
             "layers.%d.mlp.up_proj.weight"),                                                      \
        SPEC(DOWN, FF, EMBD, REQUIRED, false, "blk.%d.ffn_down.weight",                            \
             "layers.%d.mlp.down_proj.weight")

/* Pre-norm: one norm before attention, one before the FFN (which Hugging Face
 * calls post_attention_layernorm). */
const slim_tensor_spec slim_tensors_prenorm[] = {
    COMMON_HEAD,
    SPEC(POST_ATTN_NORM, EMBD, NONE, IF_POST_NORMS, true, "blk.%d.post_attention_norm.weight",
         NULL),
    SPEC(FFN_NORM, EMBD, NONE, REQUIRED, true, "blk.%d.ffn_norm.weight",
         "layers.%d.post_attention_layernorm.weight"),
    COMMON_FFN,
    SPEC(POST_FFN_NORM, EMBD, NONE, IF_POST_NORMS, true, "blk.%d.post_ffw_norm.weight", NULL),
    {SLIM_W_END, 0, 0, 0, false, NULL, NULL},
};

/* Gemma 2/3: a norm before and after each half. */
const slim_tensor_spec slim_tensors_sandwich[] = {
    COMMON_HEAD,
    SPEC(POST_ATTN_NORM, EMBD, NONE, IF_POST_NORMS, true, "blk.%d.post_attention_norm.weight",
         "layers.%d.post_attention_layernorm.weight"),
    SPEC(FFN_NORM, EMBD, NONE, REQUIRED, true, "blk.%d.ffn_norm.weight",
         "layers.%d.pre_feedforward_layernorm.weight"),
    SPEC(POST_FFN_NORM, EMBD, NONE, IF_POST_NORMS, true, "blk.%d.post_ffw_norm.weight",
         "layers.%d.post_feedforward_layernorm.weight"),
    COMMON_FFN,
    {SLIM_W_END, 0, 0, 0, false, NULL, NULL},
};
