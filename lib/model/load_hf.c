/* Hugging Face model directories as training writes them: config.json for the
 * hyperparameters, model.safetensors (or shards) for the weights, the
 * tokenizer files for the vocabulary.  The weights land in the same slim_model
 * a GGUF fills, so the forward pass does not know where they came from.
 *
 * What differs from a GGUF, and how it is bridged:
 *   - Q and K are stored as trained, for RoPE on rotate-half (NEOX) pairs;
 *     llama.cpp's converter permutes Llama's rows for adjacent pairs instead.
 *     A model loaded here always runs NEOX RoPE (hp.rope_neox), so the
 *     matrices are used as they are.
 *   - Gemma's RMSNorm multiplies by (1 + w); the stored w gets its 1 here,
 *     into an F32 copy (GGUF converters fold it in the same way).
 *   - 1-D tensors (norms, biases) become F32 copies; matrices in F32, F16 or
 *     BF16 are used in place from the mapping when aligned, else copied.
 *   - Both config styles are read: transformers 4 (rope_theta, rope_scaling,
 *     sliding_window_pattern) and 5 (rope_parameters, per layer type, and
 *     layer_types). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/fp16.h"
#include "model/model.h"
#include "quant/dtype.h"

/* The parsed config: the document, and the object holding the text model's
 * hyperparameters (a multimodal config nests it in text_config).  The family
 * rules (names, keys, defaults, sliding layers) are the arch's (arch.h). */
typedef struct hf_config {
    slim_json_doc *doc;
    const slim_json *cfg;
    const slim_arch *arch;
    const slim_hf_rules *rules;
    const char *model_type; /* of the text model */
} hf_config;

/* The family config.json names: model_type and architectures[0] must each be
 * one slim knows (a misspelling is an error naming it), and agree. */
static slim_status find_family(const char *path, const char *mt, const char *arch, hf_config *c) {
    const slim_arch *by_arch = slim_arch_find_hf(arch, true), *by_mt = slim_arch_find_hf(mt, false);
    char known[256];
    slim_arch_hf_list(known, sizeof known);
    if ((!arch && !mt) || (arch && !by_arch) || (mt && !by_mt)) {
        const bool bad_arch = arch && !by_arch;
        return slim_error(SLIM_ERR_UNSUPPORTED,
                          "%s: model_type '%s' / architectures '%s' not supported: %s '%s' is "
                          "not a family slim knows (model_type one of: %s)",
                          path, mt ? mt : "(none)", arch ? arch : "(none)",
                          bad_arch ? "architectures" : "model_type",
                          bad_arch ? arch : (mt ? mt : "(none)"), known);
    }
    if (by_arch && by_mt && by_arch != by_mt)
        return slim_error(SLIM_ERR_UNSUPPORTED,
                          "%s: model_type '%s' and architectures '%s' name different families",
                          path, mt, arch);
    c->arch = by_arch ? by_arch : by_mt;
    c->rules = c->arch->hf;
    return SLIM_OK;
}

static slim_status read_config(const char *dir, hf_config *c) {
    char path[4096];
    snprintf(path, sizeof path, "%s/config.json", dir);
    slim_status st = slim_json_parse_file(path, &c->doc);
    if (st) return st;
    const slim_json *root = slim_json_root(c->doc);
    if (slim_json_type_of(root) != SLIM_JSON_OBJECT)
        return slim_error(SLIM_ERR_FORMAT, "%s: expected an object at the top", path);
    const char *mt = slim_json_str(slim_json_get(root, "model_type"), NULL);
    const char *arch = slim_json_str(slim_json_at(slim_json_get(root, "architectures"), 0), NULL);
    if ((st = find_family(path, mt, arch, c))) return st;
    c->cfg = root;
    const slim_json *text = slim_json_get(root, "text_config");
    if (slim_json_type_of(text) == SLIM_JSON_OBJECT) c->cfg = text;
    c->model_type = slim_json_str(slim_json_get(c->cfg, "model_type"), NULL);
    if (!c->model_type) c->model_type = mt ? mt : c->arch->name;
    return SLIM_OK;
}

/* ---- hyperparameters ---------------------------------------------------------------------- */

static slim_status cfg_i32(const hf_config *c, const char *key, const int64_t *def, int64_t min,
                           int64_t max, int32_t *out) {
    int64_t v;
    slim_status st = slim_json_cfg_i64(c->doc, c->cfg, key, def, min, max, &v);
    if (!st) *out = (int32_t)v;
    return st;
}

/* One RoPE setting: base, type and the object with the type's parameters. */
typedef struct hf_rope {
    double theta;
    const char *type;
    const slim_json *obj; /* NULL: none */
} hf_rope;

/* The RoPE of `layer_type` ("full_attention" / "sliding_attention"). */
static slim_status rope_of(const hf_config *c, const char *layer_type, double def_theta,
                           hf_rope *r) {
    const slim_json *rp = slim_json_get(c->cfg, "rope_parameters");
    slim_status st;
    r->type = "default";
    r->obj = NULL;
    if (slim_json_type_of(rp) == SLIM_JSON_OBJECT) { /* transformers 5 */
        const slim_json *per = slim_json_get(rp, layer_type);
        if (slim_json_type_of(per) == SLIM_JSON_OBJECT) rp = per;
        r->obj = rp;
        if ((st = slim_json_cfg_f64(c->doc, rp, "rope_theta", &def_theta, &r->theta))) return st;
    } else { /* transformers 4: rope_theta (Gemma 3's local layers: rope_local_base_freq) */
        const bool local = strcmp(layer_type, "sliding_attention") == 0 &&
                           slim_json_get(c->cfg, "rope_local_base_freq");
        if ((st = slim_json_cfg_f64(c->doc, c->cfg, local ? "rope_local_base_freq" : "rope_theta",
                                    &def_theta, &r->theta)))
            return st;
        if (strcmp(layer_type, "full_attention") == 0 || !c->rules->swa_rope_unscaled)
            r->obj = slim_json_get(c->cfg, "rope_scaling");
        if (slim_json_type_of(r->obj) != SLIM_JSON_OBJECT) r->obj = NULL;
    }
    if (r->obj) {
        const char *t = slim_json_str(slim_json_get(r->obj, "rope_type"), NULL);
        if (!t) t = slim_json_str(slim_json_get(r->obj, "type"), NULL);
        if (t) r->type = t;
    }
    if (!(r->theta > 0) || !isfinite(r->theta))
        return slim_error(SLIM_ERR_FORMAT, "config.json: rope_theta %g invalid", r->theta);
    return SLIM_OK;
}

/* A 1-D F32 tensor over n floats of model memory. */
static slim_tensor f32_vector(const char *name, int64_t n, const float *data) {
    const size_t bytes = (size_t)n * sizeof(float);
    return (slim_tensor){.name = name,
                         .type = SLIM_DTYPE_F32,
                         .n_dims = 1,
                         .ne = {n, 1, 1, 1},
                         .nb = {sizeof(float), bytes, bytes, bytes},
                         .data = data};
}

/* Reads n floats of a factor list into model memory. */
static slim_status factor_list(slim_model *m, const hf_config *c, const slim_json *obj,
                               const char *key, int64_t n, slim_tensor *t) {
    const slim_json *a = slim_json_get(obj, key);
    if (slim_json_type_of(a) != SLIM_JSON_ARRAY || (int64_t)slim_json_len(a) != n)
        return slim_error(SLIM_ERR_FORMAT, "%s: rope %s must be a list of %lld numbers",
                          slim_json_doc_name(c->doc), key, (long long)n);
    float *f = slim_model_alloc(m, (size_t)n * sizeof *f);
    if (!f) return SLIM_ERR_NOMEM;
    for (int64_t i = 0; i < n; i++) {
        double v;
        if (!slim_json_num(slim_json_at(a, (size_t)i), &v) || !(v > 0))
            return slim_error(SLIM_ERR_FORMAT, "%s: rope %s[%lld] is not a positive number",
                              slim_json_doc_name(c->doc), key, (long long)i);
        f[i] = (float)v;
    }
    *t = f32_vector(key, n, f);
    return SLIM_OK;
}

/* Llama 3's frequency divisors (as its reference code computes the scaled
 * inverse frequencies): long wavelengths divided by `factor`, short ones
 * kept, a smooth blend between. */
static slim_status llama3_factors(slim_model *m, const hf_config *c, const hf_rope *r) {
    const slim_hparams *hp = &m->hp;
    double factor, lo, hi, orig;
    const double d_lo = 1, d_hi = 4, d_orig = 8192;
    slim_status st;
    if ((st = slim_json_cfg_f64(c->doc, r->obj, "factor", NULL, &factor)) ||
        (st = slim_json_cfg_f64(c->doc, r->obj, "low_freq_factor", &d_lo, &lo)) ||
        (st = slim_json_cfg_f64(c->doc, r->obj, "high_freq_factor", &d_hi, &hi)) ||
        (st =
             slim_json_cfg_f64(c->doc, r->obj, "original_max_position_embeddings", &d_orig, &orig)))
        return st;
    if (!(factor > 0) || !(lo > 0) || !(hi > lo) || !(orig > 0))
        return slim_error(SLIM_ERR_FORMAT, "config.json: llama3 rope parameters invalid");
    const int64_t n = hp->n_rot / 2;
    float *f = slim_model_alloc(m, (size_t)n * sizeof *f);
    if (!f) return SLIM_ERR_NOMEM;
    const double lo_wavelen = orig / lo, hi_wavelen = orig / hi;
    for (int64_t i = 0; i < n; i++) {
        const double freq = 1.0 / pow(r->theta, (double)(2 * i) / hp->n_rot);
        const double wavelen = 2 * M_PI / freq;
        if (wavelen < hi_wavelen) {
            f[i] = 1.0f;
        } else if (wavelen > lo_wavelen) {
            f[i] = (float)factor;
        } else {
            const double smooth = (orig / wavelen - lo) / (hi - lo);
            f[i] = (float)(1.0 / ((1 - smooth) / factor + smooth));
        }
    }
    m->rope_freqs = f32_vector("rope_freqs", n, f);
    return SLIM_OK;
}

/* The global layers' RoPE scaling: linear, llama3 or LongRoPE. */
static slim_status rope_scaling(slim_model *m, const hf_config *c, const hf_rope *r) {
    slim_hparams *hp = &m->hp;
    slim_status st;
    if (strcmp(r->type, "default") == 0) return SLIM_OK;
    if (strcmp(r->type, "linear") == 0) {
        double factor;
        if ((st = slim_json_cfg_f64(c->doc, r->obj, "factor", NULL, &factor))) return st;
        if (!(factor > 0))
            return slim_error(SLIM_ERR_FORMAT, "config.json: rope factor %g invalid", factor);
        hp->rope_freq_scale = (float)(1.0 / factor);
        return SLIM_OK;
    }
    if (strcmp(r->type, "llama3") == 0) return llama3_factors(m, c, r);
    if (strcmp(r->type, "longrope") == 0 || strcmp(r->type, "su") == 0) {
        const int64_t n = hp->n_rot / 2;
        int64_t orig = 0;
        const slim_json *src =
            slim_json_get(r->obj, "original_max_position_embeddings") ? r->obj : c->cfg;
        if ((st = slim_json_cfg_i64(c->doc, src, "original_max_position_embeddings", NULL, 1,
                                    INT32_MAX, &orig)) ||
            (st = factor_list(m, c, r->obj, "long_factor", n, &m->rope_long)) ||
            (st = factor_list(m, c, r->obj, "short_factor", n, &m->rope_short)))
            return st;
        hp->n_ctx_orig = (int32_t)orig;
        /* The attention factor scales cos and sin, i.e. rotated q and k. */
        const double scale = (double)hp->n_ctx_train / (double)orig;
        const double def = scale <= 1 ? 1.0 : sqrt(1 + log(scale) / log((double)orig));
        double af;
        if ((st = slim_json_cfg_f64(c->doc, r->obj, "attention_factor", &def, &af))) return st;
        hp->rope_mscale = (float)af;
        return SLIM_OK;
    }
    return slim_error(SLIM_ERR_UNSUPPORTED, "config.json: rope type '%s' not supported", r->type);
}

/* Which layers use the sliding window (swa_window already read). */
static slim_status sliding_layers(const hf_config *c, slim_hparams *hp) {
    const slim_json *types = slim_json_get(c->cfg, "layer_types");
    slim_status st;
    if (slim_json_type_of(types) == SLIM_JSON_ARRAY) {
        if ((int64_t)slim_json_len(types) != hp->n_layer)
            return slim_error(SLIM_ERR_FORMAT,
                              "config.json: layer_types has %zu entries, %d layers",
                              slim_json_len(types), hp->n_layer);
        for (int32_t il = 0; il < hp->n_layer; il++) {
            const char *t = slim_json_str(slim_json_at(types, (size_t)il), NULL);
            if (!t || (strcmp(t, "sliding_attention") && strcmp(t, "full_attention")))
                return slim_error(SLIM_ERR_UNSUPPORTED, "config.json: layer_types[%d] '%s'", il,
                                  t ? t : "(not a string)");
            hp->layer_swa[il] = hp->swa_window > 0 && strcmp(t, "sliding_attention") == 0;
        }
        return SLIM_OK;
    }
    switch ((slim_hf_swa)c->rules->swa) {
    case SLIM_HF_SWA_NONE: hp->swa_window = 0; break;
    case SLIM_HF_SWA_EVEN:
        for (int32_t il = 0; il < hp->n_layer; il++)
            hp->layer_swa[il] = il % 2 == 0;
        break;
    case SLIM_HF_SWA_PATTERN: {
        int32_t pattern;
        if ((st = cfg_i32(c, "sliding_window_pattern", &(int64_t){c->rules->swa_pattern_default}, 1,
                          1 << 20, &pattern)))
            return st;
        for (int32_t il = 0; il < hp->n_layer; il++)
            hp->layer_swa[il] = (il + 1) % pattern != 0;
        break;
    }
    case SLIM_HF_SWA_MAX_WINDOW: {
        bool use;
        int32_t max_window_layers;
        if ((st = slim_json_cfg_bool(c->doc, c->cfg, "use_sliding_window", &(bool){false}, &use)) ||
            (st = cfg_i32(c, "max_window_layers", &(int64_t){0}, 0, INT32_MAX, &max_window_layers)))
            return st;
        for (int32_t il = 0; il < hp->n_layer; il++)
            hp->layer_swa[il] = use && il >= max_window_layers;
        break;
    }
    case SLIM_HF_SWA_ALL:
        for (int32_t il = 0; il < hp->n_layer; il++)
            hp->layer_swa[il] = true;
        break;
    }
    if (hp->swa_window == 0)
        for (int32_t il = 0; il < hp->n_layer; il++)
            hp->layer_swa[il] = false;
    return SLIM_OK;
}

static slim_status read_hparams(slim_model *m, const hf_config *c) {
    slim_hparams *hp = &m->hp;
    const slim_hf_rules *rules = c->rules;
    slim_status st;
    memset(hp, 0, sizeof *hp);
    if ((st = cfg_i32(c, "hidden_size", NULL, 1, 1 << 16, &hp->n_embd)) ||
        (st = cfg_i32(c, "num_hidden_layers", NULL, 1, SLIM_MAX_LAYERS, &hp->n_layer)) ||
        (st = cfg_i32(c, "intermediate_size", NULL, 1, 1 << 20, &hp->n_ff)) ||
        (st = cfg_i32(c, "num_attention_heads", NULL, 1, 1024, &hp->n_head)) ||
        (st = cfg_i32(c, "num_key_value_heads", &(int64_t){hp->n_head}, 1, 1024, &hp->n_head_kv)) ||
        (st =
             cfg_i32(c, "head_dim", &(int64_t){hp->n_embd / hp->n_head}, 2, 1024, &hp->head_dim)) ||
        (st = cfg_i32(c, "vocab_size", NULL, 1, 1 << 24, &hp->n_vocab)) ||
        (st = cfg_i32(c, "max_position_embeddings", &(int64_t){4096}, 1, INT32_MAX,
                      &hp->n_ctx_train)))
        return st;
    if (hp->n_head % hp->n_head_kv)
        return slim_error(SLIM_ERR_FORMAT,
                          "config.json: num_attention_heads %d not a multiple of "
                          "num_key_value_heads %d",
                          hp->n_head, hp->n_head_kv);
    if (hp->head_dim % 2)
        return slim_error(SLIM_ERR_UNSUPPORTED, "config.json: head_dim %d is odd", hp->head_dim);
    double eps, prf;
    if ((st = slim_json_cfg_f64(c->doc, c->cfg, "rms_norm_eps", &(double){1e-6}, &eps)) ||
        (st = slim_json_cfg_f64(c->doc, c->cfg, "partial_rotary_factor", &(double){1.0}, &prf)))
        return st;
    /* transformers 5 keeps it with the RoPE parameters */
    const slim_json *rp = slim_json_get(c->cfg, "rope_parameters");
    if (slim_json_get(rp, "partial_rotary_factor") &&
        (st = slim_json_cfg_f64(c->doc, rp, "partial_rotary_factor", NULL, &prf)))
        return st;
    if (!(eps > 0 && eps < 1))
        return slim_error(SLIM_ERR_FORMAT, "config.json: rms_norm_eps %g invalid", eps);
    hp->norm_eps = (float)eps;
    hp->n_rot = (int32_t)(hp->head_dim * prf);
    if (!(prf > 0 && prf <= 1) || hp->n_rot < 2 || hp->n_rot % 2)
        return slim_error(SLIM_ERR_FORMAT,
                          "config.json: partial_rotary_factor %g gives %d rotary dims of %d", prf,
                          hp->n_rot, hp->head_dim);

    /* The activation is the family's; a config asking for another is refused. */
    const char *act = slim_json_str(slim_json_get(c->cfg, "hidden_activation"), NULL);
    if (!act) act = slim_json_str(slim_json_get(c->cfg, "hidden_act"), NULL);
    const bool act_ok = !act || strcmp(act, rules->act) == 0 ||
                        (rules->act_key_ignored && !slim_json_get(c->cfg, "hidden_activation"));
    if (!act_ok)
        return slim_error(SLIM_ERR_UNSUPPORTED, "config.json: activation '%s' not supported for %s",
                          act, c->model_type);

    hf_rope global, local;
    if ((st = rope_of(c, "full_attention", 10000.0, &global)) ||
        (st = rope_of(c, "sliding_attention", global.theta, &local)))
        return st;
    if (rules->swa_theta_default > 0 && !slim_json_get(c->cfg, "rope_parameters") &&
        !slim_json_get(c->cfg, "rope_local_base_freq"))
        local.theta = rules->swa_theta_default; /* e.g. Gemma 3's local layers */
    hp->rope_base = (float)global.theta;
    hp->rope_base_swa = (float)local.theta;
    hp->rope_freq_scale = 1.0f;
    hp->rope_mscale = 1.0f;
    hp->rope_neox = true;
    if ((st = rope_scaling(m, c, &global))) return st;
    if (strcmp(local.type, "default") != 0 && local.obj != global.obj)
        return slim_error(SLIM_ERR_UNSUPPORTED,
                          "config.json: rope type '%s' on sliding-window layers not supported",
                          local.type);

    int64_t window = 0;
    if ((st = slim_json_cfg_i64(c->doc, c->cfg, "sliding_window", &window, 0, INT32_MAX, &window)))
        return st;
    hp->swa_window = (int32_t)window;
    if ((st = sliding_layers(c, hp))) return st;
    if ((st = slim_json_cfg_f32(c->doc, c->cfg, "attn_logit_softcapping", &(float){0},
                                &hp->attn_softcap)) ||
        (st = slim_json_cfg_f32(c->doc, c->cfg, "final_logit_softcapping", &(float){0},
                                &hp->final_softcap)))
        return st;
    if (hp->attn_softcap < 0 || hp->final_softcap < 0)
        return slim_error(SLIM_ERR_FORMAT, "config.json: negative softcapping");

    double qpas = hp->head_dim;
    if (rules->attn_scalar_key && (st = slim_json_cfg_f64(c->doc, c->cfg, rules->attn_scalar_key,
                                                          &(double){hp->head_dim}, &qpas)))
        return st;
    if (!(qpas > 0)) return slim_error(SLIM_ERR_FORMAT, "config.json: %s", rules->attn_scalar_key);
    hp->attn_scale = (float)(1.0 / sqrt(qpas));
    hp->embd_scale = rules->embd_scale ? sqrtf((float)hp->n_embd) : 1.0f;
    return SLIM_OK;
}

/* ---- weights ------------------------------------------------------------------------------ */

typedef struct hf_names {
    char base[64]; /* "model.", "model.language_model.", "language_model.model." */
} hf_names;

/* An F32 copy of a 1-D tensor of n elements (+1 for Gemma's norms). */
static slim_status to_f32(slim_model *m, const slim_st_tensor *st, int64_t n, float add,
                          slim_tensor *t) {
    float *f = slim_model_alloc(m, (size_t)n * sizeof *f);
    if (!f) return SLIM_ERR_NOMEM;
    const uint8_t *p = st->data;
    for (int64_t i = 0; i < n; i++) {
        float v;
        if (st->dtype == SLIM_ST_F32) {
            memcpy(&v, p + 4 * i, 4);
        } else {
            uint16_t h;
            memcpy(&h, p + 2 * i, 2);
            v = st->dtype == SLIM_ST_F16 ? slim_fp16_to_f32(h) : slim_bf16_to_f32(h);
        }
        f[i] = v + add;
    }
    *t = f32_vector(st->name, n, f);
    return SLIM_OK;
}

/* The Hugging Face side of the tensor table's walker. */
typedef struct hf_bind {
    slim_model *m;
    const hf_config *c;
    hf_names nm;
    bool tie;
} hf_bind;

/* `<base><rel>`, or for a name from the top ('!') lm_head beside the base's
 * language_model (a multimodal checkpoint's). */
static void full_name(const hf_names *nm, const char *rel, char *name, size_t cap) {
    if (rel[0] != '!') {
        snprintf(name, cap, "%s%s", nm->base, rel);
        return;
    }
    const bool lm = strncmp(nm->base, "language_model.", 15) == 0;
    snprintf(name, cap, "%s%s", lm ? "language_model." : "", rel + 1);
}

static bool hf_has(void *ctx, const char *rel) {
    const hf_bind *b = ctx;
    char name[192];
    full_name(&b->nm, rel, name, sizeof name);
    return slim_st_set_find(b->m->st, name) != NULL;
}

/* Bind `rel` with the shape [ne1][ne0] as stored (ne1 = 0: 1-D of ne0). */
static slim_status hf_bind_one(void *ctx, const slim_tensor_spec *spec, const char *rel,
                               bool required, int64_t ne0, int64_t ne1, slim_tensor *t) {
    hf_bind *b = ctx;
    slim_model *m = b->m;
    char name[192];
    full_name(&b->nm, rel, name, sizeof name);
    if (spec->slot == SLIM_W_OUTPUT && b->tie) return SLIM_OK;
    const slim_st_tensor *st = slim_st_set_find(m->st, name);
    if (spec->need == SLIM_T_REFUSED) {
        if (st)
            return slim_error(SLIM_ERR_UNSUPPORTED,
                              "model: tensor '%s': this bias is not supported", name);
        return SLIM_OK;
    }
    memset(t, 0, sizeof *t);
    if (!st) {
        if (!required) return SLIM_OK;
        return slim_error(SLIM_ERR_FORMAT, "model: required tensor '%s' missing", name);
    }
    const float add = spec->norm ? b->c->rules->norm_offset : 0.0f;
    const bool shape_ok = ne1 ? st->n_dims == 2 && st->shape[0] == ne1 && st->shape[1] == ne0
                              : st->n_dims == 1 && st->shape[0] == ne0;
    if (!shape_ok) {
        char got[96] = "";
        for (int d = 0; d < st->n_dims && d < 4; d++)
            snprintf(got + strlen(got), sizeof got - strlen(got), "%s%lld", d ? ", " : "",
                     (long long)st->shape[d]);
        return ne1 ? slim_error(SLIM_ERR_FORMAT,
                                "model: tensor '%s' has shape [%s], expected [%lld, %lld]", name,
                                got, (long long)ne1, (long long)ne0)
                   : slim_error(SLIM_ERR_FORMAT,
                                "model: tensor '%s' has shape [%s], expected [%lld]", name, got,
                                (long long)ne0);
    }
    slim_dtype dt;
    if (!slim_st_dtype_to_slim(st->dtype, &dt))
        return slim_error(SLIM_ERR_UNSUPPORTED,
                          "model: tensor '%s' is %s (slim loads F32, F16 and BF16 checkpoints)",
                          name, slim_st_dtype_name(st->dtype));
    if (!ne1) return to_f32(m, st, ne0, add, t);
    const size_t row = slim_dtype_row_size(dt, ne0);
    const void *data = st->data;
    if (!slim_st_tensor_aligned(st) || ((uintptr_t)data & 15)) {
        void *copy = slim_model_alloc(m, (size_t)st->size);
        if (!copy) return SLIM_ERR_NOMEM;
        memcpy(copy, data, (size_t)st->size);
        data = copy;
    }
    *t = (slim_tensor){
        .name = st->name,
        .type = dt,
        .n_dims = 2,
        .ne = {ne0, ne1, 1, 1},
        .nb = {slim_dtype_traits_of(dt)->type_size, row, row * (size_t)ne1, row * (size_t)ne1},
        .data = data};
    return SLIM_OK;
}

static slim_status bind_weights(slim_model *m, const hf_config *c) {
    static const char *const bases[] = {"model.", "model.language_model.", "language_model.model.",
                                        ""};
    const char *embd = slim_arch_spec(m->arch, SLIM_W_TOK_EMBD)->hf;
    hf_bind b = {.m = m, .c = c};
    size_t i = 0;
    for (; i < sizeof bases / sizeof bases[0]; i++) {
        char name[96];
        snprintf(name, sizeof name, "%s%s", bases[i], embd);
        if (slim_st_set_find(m->st, name)) break;
    }
    if (i == sizeof bases / sizeof bases[0])
        return slim_error(SLIM_ERR_FORMAT,
                          "model: no %s tensor (looked for model.%s and the multimodal names)",
                          embd, embd);
    snprintf(b.nm.base, sizeof b.nm.base, "%s", bases[i]);
    slim_status st = slim_json_cfg_bool(c->doc, c->cfg, "tie_word_embeddings",
                                        &(bool){c->rules->tied_default}, &b.tie);
    if (st) return st;
    const slim_bind_src src = {.hf = true, .has = hf_has, .bind = hf_bind_one, .ctx = &b};
    return slim_model_bind(m, &src);
}

/* ---- the whole load ----------------------------------------------------------------------- */

static bool file_exists(const char *dir, const char *name) {
    char path[4096];
    struct stat sb;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return stat(path, &sb) == 0 && S_ISREG(sb.st_mode);
}

static void describe(slim_model *m, const hf_config *c, const char *dir) {
    const char *name = slim_json_str(slim_json_get(slim_json_root(c->doc), "_name_or_path"), NULL);
    if (!name || !*name) { /* the directory's own name */
        const size_t n = strlen(dir);
        size_t end = n;
        while (end > 1 && dir[end - 1] == '/')
            end--;
        size_t start = end;
        while (start > 0 && dir[start - 1] != '/')
            start--;
        snprintf(m->name, sizeof m->name, "%.*s", (int)(end - start), dir + start);
    } else {
        snprintf(m->name, sizeof m->name, "%s", name);
    }
    snprintf(m->file_type, sizeof m->file_type, "%s", slim_dtype_name(m->layers[0].wq.type));
    uint64_t n = 0;
    const size_t count = slim_model_tensors(m, NULL);
    slim_tensor **all = malloc(count * sizeof *all);
    if (all) {
        slim_model_tensors(m, all);
        for (size_t i = 0; i < count; i++) {
            const slim_tensor *t = all[i];
            if (!t->name || (t == &m->output && m->output.data == m->tok_embd.data)) continue;
            if (t == &m->rope_freqs || t == &m->rope_long || t == &m->rope_short) continue;
            n += (uint64_t)(t->ne[0] * t->ne[1]);
        }
        free(all);
    }
    m->n_params = n;
    for (size_t i = 0; i < m->st->n_files; i++)
        m->file_size += m->st->files[i]->map.size;
}

slim_status slim_model_load_hf(const char *dir, const slim_model_params *params, slim_model *m) {
    hf_config c = {0};
    slim_status st = read_config(dir, &c);
    if (st) goto out;
    m->arch = c.arch;
    if ((st = read_hparams(m, &c))) goto out;
    if ((st = slim_st_open_dir(dir, NULL, params->use_mmap != 0, &m->st))) goto out;
    if ((st = bind_weights(m, &c))) goto out;
    if (file_exists(dir, "tokenizer.json")) {
        if ((st = slim_vocab_from_hf_dir(dir, &m->vocab))) goto out;
        if (slim_vocab_size(m->vocab) > m->hp.n_vocab) {
            st = slim_error(SLIM_ERR_FORMAT, "tokenizer.json has %d tokens, the model %d",
                            slim_vocab_size(m->vocab), m->hp.n_vocab);
            goto out;
        }
    }
    describe(m, &c, dir);
out:
    slim_json_free(c.doc);
    return st;
}
