/* LoRA adapters applied at run time, without merging: for a weight W with an
 * adapter pair A (r x in), B (out x r), y = W x + s * B (A x), where s is the
 * context's scale times the adapter's alpha / r (alpha / sqrt(r) for rsLoRA).
 * An adapter is read-only after load and reference counted (the caller's
 * handle plus one per context it is attached to), so contexts on other
 * threads may use it while it is freed.  Each context keeps its own list of
 * attached adapters and scratch buffers (runtime/lora_apply.c). */
#ifndef SLIM_MODEL_LORA_H
#define SLIM_MODEL_LORA_H

#include <stdatomic.h>

#include "model/model.h"

/* Where forward.c calls in: after the grouped Q/K/V matmul (outputs q, k,
 * v), the attention output, the grouped gate/up matmul (gate, up) and the
 * down projection. */
typedef enum slim_lora_site {
    SLIM_LORA_QKV,
    SLIM_LORA_O,
    SLIM_LORA_GATE_UP,
    SLIM_LORA_DOWN,
    SLIM_LORA_N_SITES
} slim_lora_site;

/* What a pair adapts; the fused ones feed several outputs of one site. */
typedef enum slim_lora_target {
    LORA_T_Q,
    LORA_T_K,
    LORA_T_V,
    LORA_T_O,
    LORA_T_GATE,
    LORA_T_UP,
    LORA_T_DOWN,
    LORA_T_QKV,
    LORA_T_GATE_UP,
    LORA_T_COUNT
} slim_lora_target;

/* One A with the B views it feeds. */
typedef struct slim_lora_pair {
    int32_t layer;
    slim_lora_target tgt;
    int32_t rank;      /* as trained (the padded rank is a.ne[1]) */
    float alpha_scale; /* alpha / r (rsLoRA: alpha / sqrt(r)); GGUF without alpha: 1 */
    slim_tensor a;     /* ne = {in, r_pad} */
    int n_out;
    slim_tensor b[3]; /* ne = {r_pad, rows} */
    int slot[3];      /* which output of the site each b adds to */
} slim_lora_pair;

struct slim_lora {
    const slim_model *model;
    const slim_backend_ops *ops;
    atomic_int refs; /* the caller's handle + one per attached context */
    int32_t n_pairs;
    slim_lora_pair *pairs; /* sorted by (layer, site) */
    int32_t *first;        /* [n_layer * SLIM_LORA_N_SITES + 1]: first pair of each */
    int64_t max_site_rank; /* largest sum of padded ranks over one site */
    int64_t max_out;       /* most rows of one B view */
    float *host;           /* every A and B (NULL once uploaded to a device) */
    void *dev;             /* the device copy, or NULL */
};

/* Drop one reference (the caller's handle or an attached context's); the last
 * frees the adapter.  Taking one is atomic_fetch_add(&lora->refs, 1). */
SLIM_HIDDEN void slim_lora_release(slim_lora *lora);

#endif
