/* A loaded model: the file, the architecture, hyperparameters, weight views and
 * the vocabulary.  Read-only after load, so any number of contexts share it. */
#ifndef SLIM_MODEL_MODEL_H
#define SLIM_MODEL_MODEL_H

#include "backend/backend.h"
#include "core/tensor.h"
#include "format/gguf.h"
#include "format/safetensors.h"
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
    slim_gguf *gguf; /* a GGUF file, or NULL for a Hugging Face directory: */
    slim_st_set *st; /* its safetensors (weights used in place where the dtype allows) */
    void **owned;    /* tensors converted at load (norms, unaligned or quantized weights) */
    size_t n_owned, cap_owned;
    uint64_t file_size; /* bytes of the weight files */
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
    /* constraint tokens and cache (runtime/constraint.c), made lazily; the runtime sets the
       function that frees it, so the model layer needs nothing from above */
    struct slim_cmodel *constrain;
    void (*constrain_free)(struct slim_cmodel *);
};

/* Memory owned by the model (64-byte aligned, freed with it), or NULL with
 * the error set. */
SLIM_HIDDEN void *slim_model_alloc(slim_model *m, size_t bytes);
/* Hyperparameters, weights and vocab of a Hugging Face model directory
 * (load_hf.c); model.c does the rest (backend placement). */
SLIM_HIDDEN slim_status slim_model_load_hf(const char *dir, const slim_model_params *params,
                                           slim_model *m);
/* Where a tensor table's entries are read from (tensors.c's walker):
 * `has` says whether a tensor is there, `bind` binds one (name formatted
 * from the table, ne1 0 for 1-D, required: absent is an error; spec->need
 * SLIM_T_REFUSED: present is an error) into t. */
typedef struct slim_bind_src {
    bool hf; /* the Hugging Face names, else the GGUF ones */
    bool (*has)(void *ctx, const char *name);
    slim_status (*bind)(void *ctx, const slim_tensor_spec *spec, const char *name, bool required,
                        int64_t ne0, int64_t ne1, slim_tensor *t);
    void *ctx;
} slim_bind_src;
/* Binds every weight of m->arch's table (m->hp set; m->layers allocated here);
 * an absent output is the embedding (tied). */
SLIM_HIDDEN slim_status slim_model_bind(slim_model *m, const slim_bind_src *src);
/* The model's tensor a table slot names (il: the layer), NULL for a fused one. */
SLIM_HIDDEN slim_tensor *slim_model_slot(slim_model *m, slim_wslot slot, int il);
/* Every weight view of the model (out NULL: just count them). */
SLIM_HIDDEN size_t slim_model_tensors(slim_model *m, slim_tensor **out);

/* The RoPE frequency factors a context of n_ctx tokens uses, or NULL. */
SLIM_HIDDEN const float *slim_model_rope_factors(const slim_model *m, int32_t n_ctx);

/* ---- writing GGUF and converting weights (convert.c, vocab_export.c) ------ */

enum { SLIM_CONVERT_KEEP = -1 }; /* a `type` that keeps every tensor's own type */
struct slim_gguf_writer;
/* The model as a GGUF llama.cpp loads (slim_model_save_gguf's work): matrices
 * to `type` (a slim_dtype with a quantizer, or SLIM_CONVERT_KEEP). */
SLIM_HIDDEN slim_status slim_model_write_gguf(const slim_model *m, const char *path, int type,
                                              void (*progress)(float fraction, void *user),
                                              void *user);
/* "keep", "f32", "q4_k", ... (NULL: keep) as a slim_dtype or SLIM_CONVERT_KEEP;
 * an unknown name is SLIM_ERR_INVALID_ARG, the message starting with fn. */
SLIM_HIDDEN slim_status slim_convert_type_from_name(const char *fn, const char *name, int *out);
/* The type a matrix of rows of ne0 elements gets when `type` is asked for:
 * llama-quantize's fallback where the block does not divide ne0. */
SLIM_HIDDEN slim_dtype slim_convert_type_for(slim_dtype type, int64_t ne0);
/* Rows [r0, r0 + n) of a 2-D weight converted to `type` (which must have a
 * quantizer and divide ne[0]) into dst; scratch holds ne[0] floats.  For
 * quantizing at load.  Non-finite weights are SLIM_ERR_FORMAT. */
SLIM_HIDDEN slim_status slim_convert_rows(const slim_tensor *src, int64_t r0, int64_t n,
                                          slim_dtype type, void *dst, float *scratch);
/* tokenizer.ggml.* for `v` (NULL: model "none"): `pre` names the BPE
 * pre-tokenizer (NULL: one of llama.cpp's names with the vocab's split rules
 * and flags), chat_template (NULL: none) of tmpl_len bytes. */
SLIM_HIDDEN slim_status slim_vocab_write_gguf(const slim_vocab *v, const char *pre,
                                              const char *chat_template, size_t tmpl_len,
                                              struct slim_gguf_writer *w);

#endif
