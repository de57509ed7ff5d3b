/*
 * slim.h - small language inference machine: the stable C API.
 *
 * Conventions (the same for every function below):
 *  - Functions that can fail return slim_status.  SLIM_OK is 0.  On failure a
 *    message naming what went wrong is kept per thread: slim_last_error().
 *  - Constructors return the handle through an out-parameter; every *_free
 *    accepts NULL.
 *  - Params structs come from slim_*_default_params(), start with
 *    `size_t struct_size` (set by the defaults function: keep it), are passed by
 *    const pointer (NULL means defaults) and only ever grow at the end.
 *  - Outputs go into caller buffers (buf, cap, &n_out).  A NULL buf with cap 0
 *    asks for the size: n_out receives it and the call returns SLIM_OK.  A
 *    buffer that is too small gives SLIM_ERR_BUFFER_TOO_SMALL with n_out set to
 *    the size needed.
 *  - Threads: a slim_model is read-only after load and may be shared by any
 *    number of threads and contexts.  A slim_context and a slim_sampler belong
 *    to one thread at a time.
 *  - The library never prints, exits or aborts on user input; diagnostics go to
 *    the log callback (silent by default).
 */
#ifndef SLIM_H
#define SLIM_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(SLIM_BUILDING) && defined(__GNUC__)
#define SLIM_API __attribute__((visibility("default")))
#else
#define SLIM_API
#endif

/* ---- version ------------------------------------------------------------ */

#define SLIM_VERSION_MAJOR 0
#define SLIM_VERSION_MINOR 1
#define SLIM_VERSION_PATCH 0
#define SLIM_VERSION_NUMBER                                                                        \
    (SLIM_VERSION_MAJOR * 10000 + SLIM_VERSION_MINOR * 100 + SLIM_VERSION_PATCH)
#define SLIM_VERSION_STRING "0.1.0"

/* The version of the library actually linked (compare with SLIM_VERSION_NUMBER). */
SLIM_API unsigned slim_version_number(void);
SLIM_API const char *slim_version_string(void);

/* ---- status and errors -------------------------------------------------- */

/* Pinned values: appended to, never renumbered. */
typedef enum slim_status {
    SLIM_OK = 0,
    SLIM_ERR_INVALID_ARG = 1,      /* a NULL handle, a bad size, a bad flag */
    SLIM_ERR_NOMEM = 2,            /* an allocation failed */
    SLIM_ERR_IO = 3,               /* open/read/mmap failed */
    SLIM_ERR_FORMAT = 4,           /* a malformed or truncated file */
    SLIM_ERR_UNSUPPORTED = 5,      /* valid, but not something slim runs (yet) */
    SLIM_ERR_CONTEXT_FULL = 6,     /* no room left in the context's KV cache */
    SLIM_ERR_BACKEND = 7,          /* a compute backend failed */
    SLIM_ERR_ABORTED = 8,          /* stopped by a callback */
    SLIM_ERR_BUFFER_TOO_SMALL = 9, /* caller buffer too small; n_out has the size */
    SLIM_ERR_INTERNAL = 10,        /* a bug in slim: please report it */
    SLIM_ERR_BUSY = 11             /* a queue is full, or an object is still in use */
} slim_status;

/* A short constant description of a status ("invalid argument", ...). */
SLIM_API const char *slim_status_string(slim_status status);

/* The message of the last failing call on this thread ("" if none).  The
 * pointer is valid until the next slim call on this thread. */
SLIM_API const char *slim_last_error(void);

typedef enum slim_log_level {
    SLIM_LOG_ERROR = 0,
    SLIM_LOG_WARN = 1,
    SLIM_LOG_INFO = 2,
    SLIM_LOG_DEBUG = 3
} slim_log_level;

/* Log callback; `message` has no trailing newline and lives for the call. */
typedef void (*slim_log_fn)(slim_log_level level, const char *message, void *user);

/* Install a process-wide log callback (NULL: silent, the default).  Messages
 * above max_level are not produced.  Not thread-safe against concurrent logging:
 * set it once at start-up. */
SLIM_API void slim_set_log_callback(slim_log_fn fn, void *user, slim_log_level max_level);

/* ---- handles ------------------------------------------------------------ */

typedef int32_t slim_token;
typedef struct slim_model slim_model;
typedef struct slim_context slim_context;
typedef struct slim_sampler slim_sampler;

/* ---- model -------------------------------------------------------------- */

/* Where a model's weights live and its contexts compute. */
typedef enum slim_backend {
    SLIM_BACKEND_CPU = 0,  /* the default */
    SLIM_BACKEND_CUDA = 1, /* one NVIDIA GPU (device 0); needs a build with CUDA
                              (make GPU=1), else SLIM_ERR_UNSUPPORTED */
} slim_backend;

typedef struct slim_model_params {
    size_t struct_size;
    int32_t use_mmap;        /* 1 (default): weights are used in place from the mapped file;
                                0: they are read into ordinary memory.  On the CPU, Q4_0, Q4_1,
                                Q5_0, Q5_1, Q8_0, Q2_K..Q6_K, F16 and BF16 matrices are
                                repacked at load into the SIMD kernels' layout either way
                                (SLIM_CPU_REPACK=0 in the environment turns that off); with 0
                                the read copy stays as well */
    int32_t backend;         /* a slim_backend; CUDA copies the weights to the GPU at load */
    const char *weight_type; /* NULL or "keep": matrices as stored; else converted at load to
                                "f32", "f16", "bf16", "q8_0", "q4_0", "q4_1", "q5_0", "q5_1",
                                "q4_k", "q5_k" or "q6_k" (as slim_model_save_gguf writes them) */
} slim_model_params;

SLIM_API slim_model_params slim_model_default_params(void);

/* Load a GGUF model file.  On failure *out is NULL and the message names the
 * field or tensor at fault.  The model owns its file mapping and must outlive
 * every context created from it. */
SLIM_API slim_status slim_model_load(const char *path, const slim_model_params *params,
                                     slim_model **out);
SLIM_API void slim_model_free(slim_model *model);

/* Progress of a long operation: fraction in [0, 1], non-decreasing, 1 last. */
typedef void (*slim_progress_fn)(float fraction, void *user);
/* Write the loaded model as a GGUF file llama.cpp loads: weight matrices
 * converted to `type` ("keep", "f32", "f16", "bf16", "q8_0", "q4_0", "q4_1", "q5_0",
 * "q5_1", "q4_k", "q5_k", "q6_k"; NULL = keep); 1-D tensors stay F32.  A matrix
 * whose row length the type's block does not divide falls back as
 * llama-quantize does (q4_k -> q5_0, q5_k -> q5_1, q6_k -> q8_0, else f16).
 * The file appears complete or not at all ("<path>.part" is renamed at the
 * end).  The model must be loaded on the CPU backend.  `progress` may be NULL. */
SLIM_API slim_status slim_model_save_gguf(const slim_model *model, const char *path,
                                          const char *type, slim_progress_fn progress, void *user);

typedef struct slim_model_info {
    size_t struct_size;       /* set by the caller: sizeof(slim_model_info) */
    const char *architecture; /* "gemma3", ... (lives as long as the model) */
    const char *name;         /* general.name or "" */
    const char *file_type;    /* "Q4_K_M", "F16", ... or "unknown" */
    uint64_t n_params;        /* weights, counted from the tensor shapes */
    uint64_t file_size;       /* bytes */
    int32_t n_vocab;
    int32_t n_ctx_train;
    int32_t n_embd;
    int32_t n_layer;
    int32_t n_head;
    int32_t n_head_kv;
    int32_t head_dim;
    slim_token bos; /* -1 if none */
    slim_token eos; /* -1 if none */
} slim_model_info;

SLIM_API slim_status slim_model_get_info(const slim_model *model, slim_model_info *info);

/* Metadata, as in the file: count, and key / value rendered as text for
 * display by index (arrays are shown by type and length with their first
 * elements; long strings are shortened).  Each output is NUL-terminated and
 * truncated to its capacity, with SLIM_ERR_BUFFER_TOO_SMALL; a NULL buffer
 * must come with capacity 0 and skips that output. */
SLIM_API int64_t slim_model_meta_count(const slim_model *model);
SLIM_API slim_status slim_model_meta_get(const slim_model *model, int64_t index, char *key,
                                         size_t key_cap, char *value, size_t value_cap);

typedef struct slim_tensor_info {
    size_t struct_size; /* set by the caller */
    const char *name;   /* lives as long as the model */
    const char *type;   /* "Q4_K", "F32", ... */
    int32_t n_dims;
    int64_t ne[4];   /* elements per dimension, ne[0] fastest */
    uint64_t offset; /* byte offset in the file */
    uint64_t size;   /* bytes */
} slim_tensor_info;

SLIM_API int64_t slim_model_tensor_count(const slim_model *model);
SLIM_API slim_status slim_model_tensor_get(const slim_model *model, int64_t index,
                                           slim_tensor_info *info);

/* ---- tokenizer ---------------------------------------------------------- */

enum {
    SLIM_TOKENIZE_ADD_BOS = 1u << 0,       /* add BOS (and EOS) where the model's tokenizer
                                              metadata asks for them */
    SLIM_TOKENIZE_PARSE_SPECIAL = 1u << 1, /* text like "<eos>" becomes that token */
};

/* Text (UTF-8, `len` bytes, need not be NUL-terminated) to token ids. */
SLIM_API slim_status slim_tokenize(const slim_model *model, const char *text, size_t len,
                                   uint32_t flags, slim_token *buf, size_t cap, size_t *n_out);

enum {
    SLIM_DETOKENIZE_RENDER_SPECIAL = 1u << 0, /* show control tokens ("<eos>") */
};

/* Token ids to text.  Bytes are exact: a piece may end inside a UTF-8
 * character that the next token completes.  No NUL is appended. */
SLIM_API slim_status slim_detokenize(const slim_model *model, const slim_token *tokens,
                                     size_t n_tokens, uint32_t flags, char *buf, size_t cap,
                                     size_t *n_out);

/* The text of one token as it appears in detokenized output. */
SLIM_API slim_status slim_token_to_piece(const slim_model *model, slim_token token, uint32_t flags,
                                         char *buf, size_t cap, size_t *n_out);

/* The raw vocabulary string of a token (as stored, e.g. "▁the"); lives as long
 * as the model; NULL for an id out of range. */
SLIM_API const char *slim_token_text(const slim_model *model, slim_token token);

/* ---- context: KV cache and forward pass --------------------------------- */

/* The KV cache's element type.  F16 (the default) takes half the memory;
 * F32 keeps keys and values exactly, for logits that match an F32 reference
 * to the last digits (CPU backend only). */
typedef enum slim_kv_type { SLIM_KV_F16 = 0, SLIM_KV_F32 = 1 } slim_kv_type;

typedef struct slim_context_params {
    size_t struct_size;
    int32_t n_ctx;     /* KV cache length in tokens, at most the model's training context
                          (0: min(training context, 4096)) */
    int32_t n_threads; /* CPU threads (0: all online CPUs) */
    int32_t n_batch;   /* prompt tokens per forward chunk, at most 8192 and n_ctx (0: 512) */
    int32_t kv_type;   /* a slim_kv_type: how the KV cache stores keys and values */
} slim_context_params;

SLIM_API slim_context_params slim_context_default_params(void);
SLIM_API slim_status slim_context_create(const slim_model *model, const slim_context_params *params,
                                         slim_context **out);
SLIM_API void slim_context_free(slim_context *ctx);

/* Forget every token in the KV cache. */
SLIM_API void slim_context_reset(slim_context *ctx);
/* Tokens currently in the KV cache. */
SLIM_API int32_t slim_context_n_past(const slim_context *ctx);
SLIM_API int32_t slim_context_n_ctx(const slim_context *ctx);

/* Run `n_tokens` tokens through the model, appending them to the KV cache at
 * positions n_past .. n_past + n_tokens - 1.  Afterwards slim_get_logits()
 * gives the next-token logits after the last token.  If all_logits is not
 * NULL it receives n_tokens * n_vocab floats: row i holds the logits after
 * token i.  SLIM_ERR_CONTEXT_FULL or SLIM_ERR_INVALID_ARG (a token id out of
 * range) leave the context unchanged; a failure inside the forward pass (not
 * expected on valid input) keeps the chunks of n_batch tokens already done. */
SLIM_API slim_status slim_prefill(slim_context *ctx, const slim_token *tokens, size_t n_tokens,
                                  float *all_logits);

/* One token: the same as slim_prefill with n_tokens = 1. */
SLIM_API slim_status slim_decode(slim_context *ctx, slim_token token);

/* Logits after the last token evaluated (n_vocab floats), NULL before any.
 * Valid until the next prefill/decode/reset/truncate/free on this context. */
SLIM_API const float *slim_get_logits(const slim_context *ctx);

/* ---- LoRA adapters ------------------------------------------------------- */

/* A LoRA adapter, applied at run time without merging: for an adapted weight
 * W, y = W x + scale * (alpha / r) * B (A x) (alpha / sqrt(r) for rsLoRA).
 * Adaptable: the layers' q, k, v, o, gate, up and down projections (Phi-3's
 * fused qkv_proj and gate_up_proj too).  Several adapters may be loaded for
 * one model, and each context attaches its own set with its own scales; the
 * model stays read-only. */
typedef struct slim_lora slim_lora;

/* Load an adapter for `model` from `path`: a PEFT directory
 * (adapter_config.json + adapter_model.safetensors, F32/F16/BF16) or a
 * llama.cpp GGUF adapter file (general.type "adapter", adapter.type "lora").
 * Every tensor's shape is checked against the model; modules other than the
 * projections above (lm_head, embed_tokens, ...) are SLIM_ERR_UNSUPPORTED,
 * naming the module.  Llama Q/K rows are reordered where the adapter's and
 * the model's RoPE layouts differ (Hugging Face vs llama.cpp).  The adapter
 * is independent of contexts; the model must outlive it.  Thread-safe
 * against contexts of the same model running on other threads. */
SLIM_API slim_status slim_lora_load(const slim_model *model, const char *path, slim_lora **out);

/* Release the caller's handle.  The adapter is reference counted: contexts
 * it is attached to keep using it, and it is freed when the last one
 * detaches (or is freed).  Accepts NULL. */
SLIM_API void slim_lora_free(slim_lora *lora);

/* Apply `lora` to this context's following forward passes with `scale`
 * (multiplying alpha / r; 0 computes exactly the base model).  Attaching an
 * adapter already attached replaces its scale.  Tokens already in the KV
 * cache keep what they were computed with.  SLIM_ERR_INVALID_ARG for an
 * adapter of another model or a non-finite scale.  On CUDA a context with
 * adapters runs its decode steps without the recorded graph. */
SLIM_API slim_status slim_context_attach_lora(slim_context *ctx, slim_lora *lora, float scale);

/* Stop applying `lora` in this context (SLIM_ERR_INVALID_ARG if it is not
 * attached).  A context with no adapters computes bitwise what one that
 * never had any does. */
SLIM_API slim_status slim_context_detach_lora(slim_context *ctx, slim_lora *lora);

/* ---- sampling ----------------------------------------------------------- */

/* A bias added to one token's logit before the penalties and filters (OpenAI's
 * logit_bias): -100 all but bans the token, 100 all but forces it, -INFINITY
 * bans it outright.  The same token twice: the biases add.  A token outside the
 * vocabulary is an error at sampling (at submit for engine requests). */
typedef struct slim_logit_bias {
    slim_token token;
    float bias; /* finite, or -INFINITY */
} slim_logit_bias;

typedef struct slim_sampler_params {
    size_t struct_size;
    float temperature;       /* <= 0: greedy (argmax); default 0.8 */
    int32_t top_k;           /* <= 0: off; default 40 */
    float top_p;             /* >= 1: off; default 0.95 */
    float min_p;             /* <= 0: off; default 0.05 */
    float repeat_penalty;    /* 1: off (default); logits of recent tokens / or * by it */
    int32_t repeat_last_n;   /* window for the penalties; default 64 */
    float presence_penalty;  /* 0: off */
    float frequency_penalty; /* 0: off */
    uint64_t seed;           /* same seed, same choices */

    /* [n_logit_bias] biases added to the logits first (copied at create) */
    const slim_logit_bias *logit_bias;
    int32_t n_logit_bias; /* default 0 */
} slim_sampler_params;

SLIM_API slim_sampler_params slim_sampler_default_params(void);
SLIM_API slim_status slim_sampler_create(const slim_sampler_params *params, slim_sampler **out);
SLIM_API void slim_sampler_free(slim_sampler *sampler);

/* Choose a token from n_vocab logits (not modified).  Order: logit bias,
 * penalties, temperature, top-k, top-p, min-p, then a draw; greedy skips the
 * draw. */
SLIM_API slim_status slim_sampler_sample(slim_sampler *sampler, const float *logits,
                                         int32_t n_vocab, slim_token *out);
/* Record a token as part of the history the penalties look at (prompt tokens too). */
SLIM_API void slim_sampler_accept(slim_sampler *sampler, slim_token token);
/* Forget the history and restart the random stream from the seed. */
SLIM_API void slim_sampler_reset(slim_sampler *sampler);

/* ---- constraints: grammars, JSON Schema, regex, choices ----------------- */

/* A compiled constraint on generated text, for one model's vocabulary: at each
 * step the set of allowed tokens (a bitmask over the vocabulary) and the
 * tokens that are forced (only one continuation possible).  docs/STRUCTURED.md
 * lists what each kind supports.  A handle is immutable and reference-counted:
 * it may be attached to any number of samplers and engine requests, on any
 * threads, at once (the parser tables it builds lazily are shared under a
 * lock).  Compiling the same (kind, text, params) for the same model returns
 * the cached handle (keyed by a hash of the content) with a new reference.
 * The model must outlive every handle compiled for it. */
typedef struct slim_constraint slim_constraint;

typedef enum slim_constraint_kind {
    SLIM_CONSTRAINT_GBNF = 0,        /* llama.cpp's GBNF grammar; start rule "root" */
    SLIM_CONSTRAINT_REGEX = 1,       /* the whole output matches the regex (ECMAScript subset) */
    SLIM_CONSTRAINT_JSON_SCHEMA = 2, /* the output is JSON valid for a JSON Schema (draft
                                        2020-12 / draft-07), given as JSON text */
    SLIM_CONSTRAINT_CHOICES = 3,     /* exactly one of several strings, separated by NUL
                                        bytes in text[0..len) */
    SLIM_CONSTRAINT_JSON_OBJECT = 4  /* any JSON object ("{...}"; text ignored) */
} slim_constraint_kind;

typedef enum slim_property_order {
    SLIM_PROPERTY_ORDER_DEFINITION = 0 /* object members in the schema's order (llguidance's) */
} slim_property_order;

typedef struct slim_constraint_params {
    size_t struct_size;
    int32_t json_whitespace; /* JSON kinds: 0 (default) compact, no whitespace between
                                tokens; 1: JSON whitespace allowed there */
    int32_t property_order;  /* JSON Schema: a slim_property_order (default DEFINITION) */
} slim_constraint_params;

SLIM_API slim_constraint_params slim_constraint_default_params(void);

/* Compile a constraint for `model`'s vocabulary (text need not be
 * NUL-terminated; len bytes).  Errors: SLIM_ERR_FORMAT for malformed input,
 * the message naming where ("gbnf:LINE:COL: ...", the regex's byte offset,
 * the schema's JSON pointer); SLIM_ERR_UNSUPPORTED for a construct or schema
 * keyword that cannot be honoured exactly (named: it is never silently
 * dropped); SLIM_ERR_INVALID_ARG, SLIM_ERR_NOMEM. */
SLIM_API slim_status slim_constraint_compile(const slim_model *model, slim_constraint_kind kind,
                                             const char *text, size_t len,
                                             const slim_constraint_params *params,
                                             slim_constraint **out);
/* SLIM_CONSTRAINT_CHOICES from an array of n NUL-terminated strings. */
SLIM_API slim_status slim_constraint_compile_choices(const slim_model *model,
                                                     const char *const *choices, size_t n,
                                                     slim_constraint **out);
/* Another reference to `c` (returned; NULL stays NULL). */
SLIM_API slim_constraint *slim_constraint_retain(slim_constraint *c);
/* Drop one reference; the last one frees it.  Accepts NULL. */
SLIM_API void slim_constraint_free(slim_constraint *c);

/* Driving a constraint yourself (samplers and engine requests do this for
 * you).  A state is an int: copying it copies the position in the grammar. */
typedef int32_t slim_constraint_state;
#define SLIM_CONSTRAINT_DEAD ((slim_constraint_state)-1) /* nothing allowed any more */
#define SLIM_CONSTRAINT_DONE ((slim_constraint_state)-2) /* an end-of-generation token ended it */

/* The state before any generated token. */
SLIM_API slim_constraint_state slim_constraint_start(slim_constraint *c);
/* The state after `token`: SLIM_CONSTRAINT_DONE for an allowed end-of-generation
 * token, SLIM_CONSTRAINT_DEAD for a token not allowed (or a bad state). */
SLIM_API slim_constraint_state slim_constraint_advance(slim_constraint *c,
                                                       slim_constraint_state state,
                                                       slim_token token);
/* The allowed tokens in `state`: bit t % 32 of mask[t / 32] for token t;
 * n_words >= (n_vocab + 31) / 32 (all written).  End-of-generation tokens are
 * allowed exactly where the text so far is complete; control tokens never. */
SLIM_API slim_status slim_constraint_mask(slim_constraint *c, slim_constraint_state state,
                                          uint32_t *mask, size_t n_words);
/* 1 if the text so far is a complete match, else 0. */
SLIM_API int slim_constraint_accepting(slim_constraint *c, slim_constraint_state state);
/* The tokens that must come next whatever is sampled, as the model's
 * tokenizer writes the forced text (its last token left out, as text after it
 * could merge with it), then a token that is the only one allowed; none when
 * the next token is a free choice.  Into (buf, cap, &n_out) as slim.h's
 * convention; each is allowed in turn. */
SLIM_API slim_status slim_constraint_forced(slim_constraint *c, slim_constraint_state state,
                                            slim_token *buf, size_t cap, size_t *n_out);
/* The vocabulary size of the model it was compiled for. */
SLIM_API int32_t slim_constraint_n_vocab(const slim_constraint *c);

/* Attach a constraint to a sampler (NULL detaches): slim_sampler_sample then
 * picks only tokens it allows (the others' logits are -inf before the
 * penalties and filters), and slim_sampler_accept advances it from its start
 * (slim_sampler_reset goes back there).  Feed prompt tokens to the penalty
 * history with slim_sampler_accept_prompt.  The sampler holds a reference.
 * slim_generate with such a sampler appends forced tokens as a prefill chunk. */
SLIM_API slim_status slim_sampler_set_constraint(slim_sampler *sampler, slim_constraint *c);
/* Record a prompt token in the penalty history only (the constraint is not
 * advanced). */
SLIM_API void slim_sampler_accept_prompt(slim_sampler *sampler, slim_token token);
/* The attached constraint's state (SLIM_CONSTRAINT_DEAD when none is attached). */
SLIM_API slim_constraint_state slim_sampler_constraint_state(const slim_sampler *sampler);

/* ---- generation --------------------------------------------------------- */

/* Called for every generated token with its text piece (exact bytes, may be a
 * partial UTF-8 character).  Return non-zero to stop. */
typedef int (*slim_token_fn)(slim_token token, const char *piece, size_t len, void *user);

typedef struct slim_generate_params {
    size_t struct_size;
    int32_t max_tokens;      /* tokens to generate at most; default 128 */
    int32_t stop_at_eos;     /* stop at an end-of-generation token (EOS, and end-of-turn
                                tokens the vocabulary marks); default 1.  That token is
                                counted in n_generated but not passed to the callback */
    uint32_t tokenize_flags; /* for the prompt; default SLIM_TOKENIZE_ADD_BOS */
} slim_generate_params;

typedef struct slim_generate_stats {
    size_t struct_size; /* set by the caller */
    int32_t n_prompt;   /* prompt tokens evaluated */
    int32_t n_generated;
    double prompt_ms; /* wall time of the prompt's forward pass */
    double gen_ms;    /* wall time of generation after the prompt */
} slim_generate_stats;

SLIM_API slim_generate_params slim_generate_default_params(void);

/* Tokenize `prompt`, append it to the context, then sample and feed tokens
 * until max_tokens, EOS, a full context, or the callback asks to stop
 * (SLIM_ERR_ABORTED is not returned for that: it is a normal end).  `stats`
 * may be NULL. */
SLIM_API slim_status slim_generate(slim_context *ctx, slim_sampler *sampler, const char *prompt,
                                   const slim_generate_params *params, slim_token_fn on_token,
                                   void *user, slim_generate_stats *stats);

/* ---- label scoring ------------------------------------------------------ */

/* Score K candidate continuations of what a context holds: each candidate's
 * total log-probability (natural log, the sum over its tokens given the
 * context and its earlier tokens; the model's distribution before any sampling
 * parameter), per-token values, the distribution normalised over the K, and
 * the argmax.  The context's contents are computed once (prefill the prompt,
 * or keep a shared prefix with slim_context_truncate and prefill the rest);
 * the candidates go through the model as a token trie, so shared prefixes are
 * computed once and single-token candidates need no forward pass at all.
 * Scores do not depend on how the trie is batched. */
typedef struct slim_score_params {
    size_t struct_size;
    uint32_t tokenize_flags; /* for the candidates (default 0: as continuations, no BOS) */
} slim_score_params;

SLIM_API slim_score_params slim_score_default_params(void);

typedef struct slim_score_result {
    double logprob;      /* total log-probability of the candidate */
    double prob;         /* exp(logprob) normalised over the candidates */
    int32_t n_tokens;    /* its tokens */
    int32_t first_token; /* where its per-token values start in token_logprobs */
} slim_score_result;

typedef struct slim_score_output {
    size_t struct_size;         /* set by the caller */
    slim_score_result *results; /* [n_candidates], the caller's */
    float *token_logprobs;      /* NULL, or [token_cap]: per-token log-probabilities, candidate
                                   after candidate (filled when token_cap >= n_tokens) */
    size_t token_cap;
    size_t n_tokens; /* out: all candidates' tokens together */
    int32_t argmax;  /* out: the most likely candidate (the lowest index on ties) */
} slim_score_output;

/* Score n_candidates (NUL-terminated, non-empty UTF-8; tokenized alone, so
 * write " yes" where the prompt leaves the space to the answer) after the
 * context's n_past tokens (at least 1, its logits current).  Afterwards the
 * context is as it was (n_past and slim_get_logits); its KV rows past n_past
 * were used as scratch.  SLIM_ERR_CONTEXT_FULL when the longest candidate does
 * not fit after n_past or the trie's blocks do not fit the context's cache. */
SLIM_API slim_status slim_score(slim_context *ctx, const char *const *candidates,
                                size_t n_candidates, const slim_score_params *params,
                                slim_score_output *out);

/* ---- chat ---------------------------------------------------------------- */

/* One message of a conversation: role "system", "user" or "assistant" (any
 * other role is SLIM_ERR_INVALID_ARG); content is NUL-terminated UTF-8. */
typedef struct slim_chat_message {
    const char *role;
    const char *content;
} slim_chat_message;

/* The chat template family slim uses for `model`: "chatml" (SmolLM2, Qwen),
 * "llama3", "gemma", "mistral-v3", "mistral-tekken", "phi3" or "phi4".  It is
 * recognised from the GGUF's tokenizer.chat_template, unless `override` (NULL:
 * none) is given: a family name from that list, or a template string to
 * recognise instead.  SLIM_ERR_UNSUPPORTED, with a message, when the model has
 * no template or one of no supported family.  *name_out is a constant. */
SLIM_API slim_status slim_chat_template_name(const slim_model *model, const char *override,
                                             const char **name_out);

/* Render a conversation as the family's official template does for plain
 * text (the exact bytes of a jinja2 rendering), into (buf, cap, &n_out): no
 * NUL appended; a short buffer gets the first cap bytes.  add_assistant_prompt
 * non-zero appends the header of the assistant's next turn (templates that
 * ignore add_generation_prompt, Mistral and Phi-4, ignore it too).  The
 * leading BOS of templates that start with {{ bos_token }} is left out, as in
 * llama.cpp: tokenize the result with SLIM_TOKENIZE_ADD_BOS, which adds BOS
 * where the vocabulary asks for it, and SLIM_TOKENIZE_PARSE_SPECIAL.  A ChatML
 * template's default system prompt (SmolLM2's) is taken from the model's
 * template text (also when override is "chatml"; an override holding a
 * template string supplies its own).  Gemma and Mistral require, after an optional leading system
 * message, roles alternating user/assistant from a user message (their
 * templates raise otherwise): SLIM_ERR_INVALID_ARG. */
SLIM_API slim_status slim_chat_render(const slim_model *model, const char *override,
                                      const slim_chat_message *msgs, size_t n_msgs,
                                      int add_assistant_prompt, char *buf, size_t cap,
                                      size_t *n_out);

/* Drop the KV cache entries from position n_past on (0 <= n_past <=
 * slim_context_n_past(ctx)), so that a chat can re-feed a conversation from
 * the first token that differs.  When n_past is below the current count,
 * slim_get_logits() is NULL afterwards until the next prefill/decode; the same
 * count changes nothing. */
SLIM_API slim_status slim_context_truncate(slim_context *ctx, int32_t n_past);

/* 1 if `token` ends a generation for this model (EOS, and end-of-turn tokens
 * such as <end_of_turn>, <|eot_id|>, <|im_end|> that the vocabulary marks: the
 * set slim_generate stops at), else 0 (also for a NULL model or an id out of
 * range).  For callers that drive slim_decode and the sampler themselves. */
SLIM_API int slim_token_is_eog(const slim_model *model, slim_token token);

/* ---- batched engine: many requests at once ------------------------------ */

/* A slim_engine owns a model's batched runtime: one thread that runs forward
 * steps over many sequences at once, a paged KV cache (a pool of fixed-size
 * blocks with a prefix cache: prompts that start with the same full blocks
 * share them), and a scheduler (continuous batching: requests join and leave
 * between steps; each step runs every running request's next token first,
 * then prompt chunks of waiting requests within the step's token budget).
 * When the KV pool is full a request waits, or the most recently admitted
 * request is preempted (its blocks freed and recomputed later from its
 * tokens): no request is lost.  A request's logits do not depend on what
 * else shares its steps, so a greedy request gives the same tokens as it
 * does alone in a slim_context.
 *
 * Threads: every slim_engine_* call may come from any thread, concurrently,
 * except slim_engine_free (one call, after every other call has returned).
 * Callbacks run on the engine's thread, never under a lock: they may submit,
 * cancel and release requests, but must not free the engine.  The model must
 * outlive the engine; adapters attached to it are kept alive by it. */
typedef struct slim_engine slim_engine;

typedef struct slim_engine_params {
    size_t struct_size;
    int32_t n_threads;    /* CPU threads of the forward pass (0: all online CPUs) */
    int32_t block_size;   /* tokens per KV block (0: 16) */
    int64_t kv_bytes;     /* KV pool budget in bytes (0: use kv_tokens) */
    int32_t kv_tokens;    /* KV pool budget in tokens when kv_bytes is 0 (0: 8192) */
    int32_t step_tokens;  /* token budget of one step (0: 512) */
    int32_t max_seqs;     /* sequences in one step at most (0: 64) */
    int32_t max_queue;    /* requests submitted and not yet released at most; submit
                             beyond it gives SLIM_ERR_BUSY (0: 4096) */
    int32_t n_ctx;        /* a request's prompt + generated tokens at most, at most the
                             model's training context (0: min(training context, 4096)) */
    int32_t kv_type;      /* a slim_kv_type */
    int32_t prefix_cache; /* 1 (default): reuse cached prompt blocks; 0: never */
} slim_engine_params;

SLIM_API slim_engine_params slim_engine_default_params(void);

/* Create an engine for `model` and start its thread.  SLIM_ERR_INVALID_ARG
 * names a bad parameter; SLIM_ERR_NOMEM a KV pool that does not fit. */
SLIM_API slim_status slim_engine_create(const slim_model *model, const slim_engine_params *params,
                                        slim_engine **out);

/* Cancel every unfinished request (callbacks get their final event), stop
 * the thread and free everything.  Accepts NULL. */
SLIM_API void slim_engine_free(slim_engine *engine);

/* Attach a LoRA adapter with `scale`; *index_out (may be NULL) receives the
 * index requests name it by (0, 1, ... in attach order; an index is never
 * reused).  Requests with different adapters (or none) share steps.  An
 * adapter is attached at most once at a time (SLIM_ERR_INVALID_ARG while it
 * is) and stays attached until detached or the engine is freed; the engine
 * holds a reference (slim_lora_free on the caller's handle is fine after). */
SLIM_API slim_status slim_engine_attach_lora(slim_engine *engine, slim_lora *lora, float scale,
                                             int32_t *index_out);

/* Detach the adapter at `index` once no unfinished request (waiting or
 * running) names it, waiting up to timeout_ms for those to finish (0: do
 * not wait; negative: wait for ever); meanwhile submits naming it are
 * refused.  SLIM_ERR_BUSY, with the adapter still attached, when requests
 * still use it at the timeout; SLIM_ERR_INVALID_ARG for an index that is not
 * attached.  Other adapters keep their indices; the engine drops its
 * reference.  From an event callback it never waits (timeout 0). */
SLIM_API slim_status slim_engine_detach_lora(slim_engine *engine, int32_t index,
                                             int32_t timeout_ms);

/* What a request reports (slim_engine_poll fills one; callbacks get one). */
typedef enum slim_event_type {
    SLIM_EVENT_NONE = 0,  /* poll: nothing arrived within the timeout */
    SLIM_EVENT_TOKEN = 1, /* a generated token */
    SLIM_EVENT_DONE = 2   /* the request finished: its result; always the last event */
} slim_event_type;

typedef enum slim_finish_reason {
    SLIM_FINISH_NONE = 0,
    SLIM_FINISH_LENGTH = 1,    /* max_tokens generated */
    SLIM_FINISH_EOS = 2,       /* an end-of-generation token (not in text or tokens) */
    SLIM_FINISH_STOP = 3,      /* a stop string (text ends before it) */
    SLIM_FINISH_CANCELLED = 4, /* slim_engine_cancel, release, a callback or engine free */
    SLIM_FINISH_CONTEXT = 5,   /* n_ctx tokens, or the KV pool cannot hold the request */
    SLIM_FINISH_ERROR = 6      /* a forward step failed: see status and error */
} slim_finish_reason;

/* A token and its log-probability (natural log, of the model's distribution
 * before sampling parameters). */
typedef struct slim_logprob {
    slim_token token;
    float logprob;
} slim_logprob;

typedef struct slim_event {
    size_t struct_size; /* poll: set by the caller; callbacks: sizeof(slim_event) */
    int32_t type;       /* a slim_event_type */
    uint64_t request;   /* the request's id */
    /* SLIM_EVENT_TOKEN */
    slim_token token;
    const char *piece; /* TOKEN: the text it releases (exact bytes, may end inside a UTF-8
                          character): with stop strings, bytes that could begin one are held
                          back until they cannot, so no piece holds text of a stop string;
                          DONE: held-back text never released (an end-of-generation token,
                          a cancel).  The pieces of all events add up to `text`. */
    size_t piece_len;
    float logprob;           /* of this token (0 when the request's logprobs is 0) */
    const slim_logprob *top; /* the n_top most likely tokens, most likely first */
    int32_t n_top;
    /* SLIM_EVENT_DONE */
    int32_t finish_reason;    /* a slim_finish_reason */
    slim_status status;       /* SLIM_OK unless finish_reason is SLIM_FINISH_ERROR */
    const char *error;        /* "" or what failed */
    int32_t n_prompt;         /* usage: prompt tokens */
    int32_t n_cached;         /* prompt tokens taken from the prefix cache on admission */
    int32_t n_completion;     /* generated tokens (an end-of-generation token counted) */
    double queue_ms;          /* submit to first scheduled */
    double ttft_ms;           /* submit to first generated token */
    double total_ms;          /* submit to finish */
    const slim_token *tokens; /* [n_tokens] generated tokens (the end-of-generation token
                                 left out) */
    int32_t n_tokens;
    const char *text; /* their text, NUL-terminated, cut before a stop string */
    size_t text_len;
    /* with prompt_logprobs: per prompt token i its log-probability given tokens 0..i-1
       (token 0: logprob 0), and top[i * n_prompt_top ..] the most likely there */
    const slim_logprob *prompt_logprobs;
    const slim_logprob *prompt_top;
    int32_t n_prompt_top;
} slim_event;

/* Called on the engine's thread for every event of a request (the pointers
 * live for the call).  Return non-zero to cancel the request. */
typedef int (*slim_event_fn)(const slim_event *event, void *user);

typedef struct slim_request_params {
    size_t struct_size;
    const slim_token *tokens; /* the prompt as token ids, or NULL: */
    size_t n_tokens;
    const char *prompt;                  /* the prompt as text (NUL-terminated), tokenized with: */
    uint32_t tokenize_flags;             /* default SLIM_TOKENIZE_ADD_BOS */
    const slim_sampler_params *sampling; /* NULL: greedy */
    int32_t max_tokens;                  /* default 128 */
    int32_t stop_at_eos;                 /* default 1 */
    const char *const *stop;             /* [n_stop] stop strings (copied at submit) */
    int32_t n_stop;
    int32_t logprobs;        /* top-N log-probabilities per generated token, 0..20 (default 0) */
    int32_t prompt_logprobs; /* non-zero: also of each prompt token (such a request does not
                                use the prefix cache) */
    int32_t lora;            /* an attached adapter's index, or -1 (default): none */
    slim_event_fn on_event;  /* NULL: events queue for slim_engine_poll */
    void *user;
    slim_constraint *constraint; /* NULL (default): none; else generated tokens follow it
                                    (forced tokens are appended as a prefill chunk and
                                    reported as tokens); the request holds a reference */
} slim_request_params;

SLIM_API slim_request_params slim_request_default_params(void);

/* Queue a request; *id_out receives its id (never 0).  Everything the params
 * point to is copied.  SLIM_ERR_INVALID_ARG names a bad field, a prompt
 * that does not fit n_ctx or the KV pool, or an unknown adapter. */
SLIM_API slim_status slim_engine_submit(slim_engine *engine, const slim_request_params *params,
                                        uint64_t *id_out);

/* The next event of a request submitted without a callback, waiting up to
 * timeout_ms (0: do not wait; negative: wait for ever); SLIM_EVENT_NONE when
 * none came.  The event's pointers stay valid until the next poll of the same
 * request or its release.  After SLIM_EVENT_DONE, call slim_engine_release. */
SLIM_API slim_status slim_engine_poll(slim_engine *engine, uint64_t id, int32_t timeout_ms,
                                      slim_event *event);

/* Ask a request to stop: it finishes with SLIM_FINISH_CANCELLED (unless it
 * already finished) and its KV blocks are freed before the next step. */
SLIM_API slim_status slim_engine_cancel(slim_engine *engine, uint64_t id);

/* Forget a polled request (cancelling it if unfinished); its id becomes
 * unknown.  A request with a callback is released after its final event. */
SLIM_API slim_status slim_engine_release(slim_engine *engine, uint64_t id);

typedef struct slim_engine_stats {
    size_t struct_size; /* set by the caller */
    int32_t kv_blocks;  /* the pool's blocks */
    int32_t kv_block_size;
    int32_t kv_free;   /* blocks holding nothing */
    int32_t kv_used;   /* blocks referenced by requests */
    int32_t kv_cached; /* blocks in the prefix cache (referenced or not) */
    int32_t n_waiting; /* requests not holding KV blocks */
    int32_t n_running; /* requests holding KV blocks */
    int64_t n_steps;
    int64_t n_preemptions;
    int64_t prefix_hit_tokens;
    /* Models with sliding-window layers, when they keep a pool of their own
       (smaller: a sequence holds only its last window there); else 0 */
    int32_t kv_swa_blocks;
    int32_t kv_swa_used;
} slim_engine_stats;

/* A snapshot of the engine's counters (taken between steps). */
SLIM_API slim_status slim_engine_get_stats(slim_engine *engine, slim_engine_stats *stats);

/* ---- step-level batched forward pass (for callers who schedule) ---------- */

/* A context whose KV cache is a pool of n_blocks blocks of block_size token
 * rows (slim_context_params.n_batch: a step's token budget; n_ctx: the
 * longest sequence).  The caller decides which blocks each sequence owns.
 * slim_prefill / slim_decode on it use blocks 0, 1, ... as one sequence. */
SLIM_API slim_status slim_paged_context_create(const slim_model *model,
                                               const slim_context_params *params,
                                               int32_t block_size, int32_t n_blocks,
                                               slim_context **out);

/* One sequence of a step: its block table (position p in row
 * blocks[p / block_size] * block_size + p % block_size of the cache) and its
 * adapter: an index into the context's attached adapters (attach order), or
 * -1 for none. */
typedef struct slim_paged_seq {
    const int32_t *blocks;
    int32_t n_blocks;
    int32_t lora;
} slim_paged_seq;

/* One step: tokens of any number of sequences, each with its position; a
 * sequence's tokens in ascending position, every earlier position already in
 * its blocks or earlier in the step. */
typedef struct slim_paged_batch {
    size_t struct_size;
    int32_t n_tokens;         /* 1 .. the context's n_batch */
    const slim_token *tokens; /* [n_tokens] */
    const int32_t *pos;       /* [n_tokens] */
    const int32_t *seq;       /* [n_tokens] index into seqs */
    const uint8_t *want;      /* [n_tokens] non-zero: logits out for this token; NULL: none */
    int32_t n_seqs;
    const slim_paged_seq *seqs;
} slim_paged_batch;

/* Run one step on a paged context.  logits receives n_vocab floats per
 * wanted token, in token order (NULL when none is wanted).  The context's
 * threads are used; one thread at a time per context. */
SLIM_API slim_status slim_paged_step(slim_context *ctx, const slim_paged_batch *batch,
                                     float *logits);

/* Copy block src's KV rows to block dst (copy-on-write when two sequences
 * sharing a partly filled block diverge). */
SLIM_API slim_status slim_paged_copy_block(slim_context *ctx, int32_t dst, int32_t src);

#ifdef __cplusplus
}
#endif
#endif /* SLIM_H */
