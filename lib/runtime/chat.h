/* Chat templates: the families slim renders natively, recognised from a
 * template string (a GGUF's tokenizer.chat_template) by distinctive
 * substrings, as llama.cpp's llm_chat_detect_template does.  No Jinja engine:
 * each family's official template is reproduced byte for byte for plain
 * system/user/assistant text (tests/data/chat_golden.txt, made with jinja2). */
#ifndef SLIM_RUNTIME_CHAT_H
#define SLIM_RUNTIME_CHAT_H

#include <stddef.h>

#include "core/error.h"

typedef enum slim_chat_family {
    SLIM_CHAT_UNKNOWN = 0,
    SLIM_CHAT_CHATML,         /* "chatml": SmolLM2, Qwen2/2.5 */
    SLIM_CHAT_LLAMA3,         /* "llama3" */
    SLIM_CHAT_GEMMA,          /* "gemma": Gemma 3 (Gemma 1/2 alike without a system message) */
    SLIM_CHAT_MISTRAL_V3,     /* "mistral-v3": Mistral 7B v0.3, Mixtral 8x22B, ... */
    SLIM_CHAT_MISTRAL_TEKKEN, /* "mistral-tekken": Mistral Nemo, Ministral */
    SLIM_CHAT_PHI3,           /* "phi3": Phi-3 / Phi-3.5 */
    SLIM_CHAT_PHI4,           /* "phi4": Phi-4 */
} slim_chat_family;

/* The family's name ("chatml", ...), or NULL for SLIM_CHAT_UNKNOWN. */
SLIM_HIDDEN const char *slim_chat_family_name(slim_chat_family f);
/* A family by its name (exact match), or SLIM_CHAT_UNKNOWN. */
SLIM_HIDDEN slim_chat_family slim_chat_family_from_name(const char *name);

/* Detect the family of a template string (len bytes).  On SLIM_CHAT_UNKNOWN,
 * *why (if not NULL) says what was recognised but is not supported, or "". */
SLIM_HIDDEN slim_chat_family slim_chat_detect(const char *tmpl, size_t len, const char **why);

/* The default system prompt a ChatML template inserts when the conversation
 * does not start with a system message (SmolLM2: "You are a helpful AI
 * assistant named SmolLM, trained by Hugging Face"): the literal between
 * "<|im_start|>system\n" and "<|im_end|>" in the template, with Jinja string
 * escapes undone.  Returns a malloc'd NUL-terminated string (*len_out bytes)
 * or NULL when the template has none. */
SLIM_HIDDEN char *slim_chat_default_system(const char *tmpl, size_t len, size_t *len_out);

/* slim_chat_render (slim.h) over a template string instead of a model:
 * tmpl may be NULL (then override must name a family or hold a template). */
SLIM_HIDDEN slim_status slim_chat_render_template(const char *tmpl, size_t tmpl_len,
                                                  const char *override,
                                                  const slim_chat_message *msgs, size_t n_msgs,
                                                  int add_assistant_prompt, char *buf, size_t cap,
                                                  size_t *n_out);

/* The family a template / override pair resolves to (slim_chat_template_name). */
SLIM_HIDDEN slim_status slim_chat_resolve(const char *tmpl, size_t tmpl_len, const char *override,
                                          slim_chat_family *out);

#endif
