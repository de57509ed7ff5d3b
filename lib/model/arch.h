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

/* ---- the tensor table ------------------------------------------------------------------- */

/* Which weight of slim_model / slim_layer a table entry fills. */
typedef enum slim_wslot {
    SLIM_W_END,  /* ends a table */
    SLIM_W_NONE, /* a Hugging Face tensor that is refused when present */
    SLIM_W_TOK_EMBD,
    SLIM_W_OUTPUT_NORM,
    SLIM_W_OUTPUT,
    SLIM_W_ROPE_FREQS,
    SLIM_W_ROPE_LONG,
    SLIM_W_ROPE_SHORT,
    SLIM_W_ATTN_NORM, /* the first per-layer slot */
    SLIM_W_QKV,       /* fused: row views Q, K, V */
    SLIM_W_Q,
    SLIM_W_K,
    SLIM_W_V,
    SLIM_W_BQ,
    SLIM_W_BK,
    SLIM_W_BV,
    SLIM_W_O,
    SLIM_W_Q_NORM,
    SLIM_W_K_NORM,
    SLIM_W_POST_ATTN_NORM,
    SLIM_W_FFN_NORM,
    SLIM_W_GATE_UP, /* fused: row views GATE, UP */
    SLIM_W_GATE,
    SLIM_W_UP,
    SLIM_W_DOWN,
    SLIM_W_POST_FFN_NORM,
    SLIM_W_COUNT
} slim_wslot;

/* A dimension of a weight, from the hyperparameters (SLIM_D_NONE as ne1: 1-D). */
typedef enum slim_wdim {
    SLIM_D_NONE,
    SLIM_D_EMBD,    /* n_embd */
    SLIM_D_Q,       /* n_head * head_dim */
    SLIM_D_KV,      /* n_head_kv * head_dim */
    SLIM_D_QKV,     /* Q + 2 KV */
    SLIM_D_FF,      /* n_ff */
    SLIM_D_FF2,     /* 2 n_ff */
    SLIM_D_VOCAB,   /* n_vocab */
    SLIM_D_HEAD,    /* head_dim */
    SLIM_D_ROT_HALF /* n_rot / 2 */
} slim_wdim;

typedef enum slim_wneed {
    SLIM_T_OPTIONAL,
    SLIM_T_REQUIRED,
    SLIM_T_IF_QK_NORM,    /* required when the arch has qk_norm, else optional */
    SLIM_T_IF_POST_NORMS, /* required when the arch has post_norms, else optional */
    SLIM_T_REFUSED        /* SLIM_W_NONE: present is an error */
} slim_wneed;

/* One weight: its names (printf formats of the layer number; NULL: the
 * format does not have it), shape and need.  A fused entry (QKV, GATE_UP)
 * binds when its tensor is there and its first part's (Q, GATE) is not; its
 * parts' entries follow it.  Hugging Face names are below the checkpoint's
 * base ("model."); one starting with '!' is from the top (lm_head). */
typedef struct slim_tensor_spec {
    uint8_t slot;     /* slim_wslot */
    uint8_t ne0, ne1; /* slim_wdim: row length, rows */
    uint8_t need;     /* slim_wneed */
    bool norm;        /* an RMSNorm weight (hf_norm_offset applies) */
    const char *gguf, *hf;
} slim_tensor_spec;

/* The decoder block's tables (lib/model/tensors.c): pre-norm blocks, and
 * Gemma 2/3's sandwich (norms before and after attention and FFN). */
extern SLIM_HIDDEN const slim_tensor_spec slim_tensors_prenorm[], slim_tensors_sandwich[];

/* ---- Hugging Face config rules ---------------------------------------------------------- */

/* config.json's model_type and architectures[0] for one family. */
typedef struct slim_hf_name {
    const char *model_type, *architecture;
} slim_hf_name;

/* Which layers use the sliding window when config.json has no layer_types. */
typedef enum slim_hf_swa {
    SLIM_HF_SWA_ALL,       /* every layer (sliding_window alone decides) */
    SLIM_HF_SWA_NONE,      /* none, whatever sliding_window says */
    SLIM_HF_SWA_EVEN,      /* layers 0, 2, 4, ... */
    SLIM_HF_SWA_PATTERN,   /* every sliding_window_pattern-th layer is global */
    SLIM_HF_SWA_MAX_WINDOW /* use_sliding_window and layers >= max_window_layers */
} slim_hf_swa;

typedef struct slim_hf_rules {
    const slim_hf_name *names;   /* ends with {NULL, NULL} */
    const char *act;             /* hidden_act / hidden_activation it runs */
    bool act_key_ignored;        /* hidden_act is not read when hidden_activation is absent */
    float norm_offset;           /* RMSNorm scales by (offset + w) */
    bool tied_default;           /* tie_word_embeddings when absent */
    const char *attn_scalar_key; /* q scaled by key^-1/2 (default head_dim), or NULL */
    bool embd_scale;             /* the embedding times sqrt(n_embd) */
    bool swa_rope_unscaled;      /* rope_scaling is the global layers' only */
    double swa_theta_default;    /* local layers' theta without its key (0: the global one) */
    uint8_t swa;                 /* slim_hf_swa */
    int32_t swa_pattern_default; /* SLIM_HF_SWA_PATTERN without its key */
} slim_hf_rules;

typedef struct slim_arch {
    const char *name; /* general.architecture */
    slim_act act;
    bool rope_neox;  /* rotate (i, i + n_rot/2) pairs rather than adjacent ones */
    bool qk_norm;    /* RMSNorm over each q and k head (attn_q_norm / attn_k_norm) */
    bool post_norms; /* RMSNorm after attention and after the FFN, before the residual add */
    bool gguf_fused; /* written to GGUF with fused attn_qkv and gate+up ffn_up (Phi-3) */
    const slim_tensor_spec *tensors;
    const slim_hf_rules *hf; /* NULL: no Hugging Face checkpoints */
    /* Fill what the generic reader cannot (defaults, derived values); may fail
     * with a message for a file that does not fit the family. */
    slim_status (*finish_hparams)(const slim_gguf *g, slim_hparams *hp);
} slim_arch;

/* The descriptor of general.architecture `name`, or NULL with the error set
 * naming it and listing the known ones (`what` starts the message). */
SLIM_HIDDEN const slim_arch *slim_arch_find(const char *what, const char *name);
/* The descriptor whose Hugging Face names have this architectures[0] (by_arch)
 * or model_type, or NULL (no error set). */
SLIM_HIDDEN const slim_arch *slim_arch_find_hf(const char *s, bool by_arch);
/* Every Hugging Face model_type known, ", "-separated, into buf. */
SLIM_HIDDEN void slim_arch_hf_list(char *buf, size_t cap);
/* The arch's entry for a slot (the first), or NULL. */
SLIM_HIDDEN const slim_tensor_spec *slim_arch_spec(const slim_arch *a, slim_wslot slot);
/* The element count a slim_wdim stands for. */
SLIM_HIDDEN int64_t slim_wdim_size(const slim_hparams *hp, slim_wdim d);

/* Descriptors, one file each under lib/model/arch/, each defined on a line of
 * its own as `const slim_arch slim_arch_NAME = {`: the Makefile collects those
 * lines into the registry tensors.c reads (BUILD/gen/model/arch_list.inc), so
 * adding an architecture is adding its file. */

#endif
