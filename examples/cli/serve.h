/* slim serve: the OpenAI-compatible HTTP server's internal interfaces.
 *
 *   serve.c          the command, options, libmicrohttpd glue, routing, auth, drain
 *   serve_json.c     a small JSON writer (srv_buf) with proper string escaping
 *   serve_req.c      OpenAI request parsing and validation into srv_req
 *   serve_gen.c      running a request on the engine; JSON and SSE responses
 *   serve_metrics.c  counters and histograms, Prometheus text for /metrics
 *
 * Only serve.c includes microhttpd.h: the rest builds (and is unit-testable)
 * without it. */
#ifndef SLIM_CLI_SERVE_H
#define SLIM_CLI_SERVE_H

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "slim.h"

int cli_serve(int argc, char **argv); /* `slim serve` */

/* ---- a growing byte buffer and JSON writer (serve_json.c) --------------------------- */
typedef struct srv_buf {
    char *p;
    size_t len, cap;
    int oom;           /* an allocation failed: the content is incomplete */
    int depth;         /* containers open */
    uint8_t items[64]; /* per depth: an item was written (so the next needs a comma) */
    int after_key;     /* a key was written: its value follows without a comma */
} srv_buf;

void srv_buf_free(srv_buf *b);
void srv_raw(srv_buf *b, const char *s, size_t n);
void srv_cstr(srv_buf *b, const char *s); /* raw, NUL-terminated */
void srv_printf(srv_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* JSON values; each writes the comma its container needs. */
void srv_obj(srv_buf *b);
void srv_obj_end(srv_buf *b);
void srv_arr(srv_buf *b);
void srv_arr_end(srv_buf *b);
void srv_key(srv_buf *b, const char *key);
void srv_keyn(srv_buf *b, const char *key, size_t n); /* escaped like a string value */
/* A JSON string of s[0..n): escaped; bytes that are not valid UTF-8 become U+FFFD
 * one byte at a time (so the result does not depend on where text was split). */
void srv_jstr(srv_buf *b, const char *s, size_t n);
void srv_jcstr(srv_buf *b, const char *s);
void srv_jint(srv_buf *b, long long v);
void srv_jnum(srv_buf *b, double v); /* non-finite: -9999.0 (as vLLM writes -inf) */
void srv_jbool(srv_buf *b, int v);
void srv_jnull(srv_buf *b);
/* Length of the longest prefix of s[0..n) that does not end inside a UTF-8
 * character that more bytes could still complete. */
size_t srv_utf8_complete(const char *s, size_t n);

/* ---- an error in OpenAI's envelope ------------------------------------------------- */
typedef struct srv_err {
    int status;       /* HTTP status: 400, 401, 404, 413, 429, 500, 503, ... */
    const char *type; /* "invalid_request_error", ... */
    const char *code; /* NULL or e.g. "model_not_found" */
    char param[64];   /* "" or the request field at fault */
    char msg[768];
} srv_err;
/* Fill *e; returns 0 so callers can `return srv_fail(...)`. */
int srv_fail(srv_err *e, int status, const char *param, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
void srv_write_error(srv_buf *b, const srv_err *e);

/* ---- the server's shared state ----------------------------------------------------- */
enum { SRV_MAX_LORA = 16, SRV_MAX_STOP = 16, SRV_MAX_N = 16, SRV_MAX_PROMPTS = 64 };

typedef struct srv_metrics srv_metrics;

typedef struct srv {
    slim_model *model;
    slim_engine *engine;
    const char *model_name; /* what requests name the base model by */
    const char *model_path;
    const char *lora_name[SRV_MAX_LORA];
    const char *lora_path[SRV_MAX_LORA];
    int32_t lora_index[SRV_MAX_LORA];
    int n_lora;
    const char *template_override; /* --template or NULL */
    int32_t n_ctx, n_vocab;
    double timeout_s; /* a request's time limit */
    long long created;
    atomic_int ready;     /* model and engine loaded */
    atomic_int draining;  /* SIGINT/SIGTERM: no new requests */
    atomic_int abort_all; /* drain deadline passed: cancel what runs */
    atomic_int active;    /* requests being generated */
    atomic_int open;      /* HTTP requests begun and not yet completed (their answer sent) */
    srv_metrics *metrics;
} srv;

/* ---- a parsed request (serve_req.c) ------------------------------------------------ */
enum { SRV_CHAT = 1, SRV_COMPLETION = 2 };

typedef struct srv_prompt {
    slim_token *tok;
    size_t n;
    char *text; /* the prompt as text (echo): the request's string or the detokenized ids */
    size_t text_len;
} srv_prompt;

typedef struct srv_req {
    int kind;
    int lora;               /* an engine adapter index, or -1 */
    const char *model_name; /* the name to answer with */
    srv_prompt prompts[SRV_MAX_PROMPTS];
    int n_prompts;
    int32_t max_tokens;
    int n;
    slim_sampler_params sp; /* sp.logit_bias points to bias */
    slim_logit_bias *bias;  /* logit_bias, or NULL */
    int n_bias;
    int seed_given;
    char *stop[SRV_MAX_STOP];
    int n_stop;
    int logprobs;     /* completions: top-N (0..20) or -1 for none; chat: 0/1 */
    int top_logprobs; /* chat: 0..20 */
    int echo;
    int stream;
    int include_usage;
    int ignore_eos; /* vLLM's and llama.cpp's extension: generate past end-of-text tokens */
    slim_constraint *constraint; /* response_format json_object / json_schema, or NULL */
} srv_req;

/* Parse and validate a request body of `kind`: 0 and *err on failure. */
int srv_req_parse(srv *s, int kind, const char *body, size_t len, srv_req *r, srv_err *err);
void srv_req_free(srv_req *r);
/* /tokenize and /detokenize: the whole JSON response in *out; 0 and *err on failure. */
int srv_tokenize(srv *s, const char *body, size_t len, srv_buf *out, srv_err *err);
int srv_detokenize(srv *s, const char *body, size_t len, srv_buf *out, srv_err *err);
/* Resolve `model` (NULL: the base model) to an adapter index (-1: base); 0 and a 404 if
 * unknown. */
int srv_find_model(const srv *s, const char *model, int *lora, const char **name, srv_err *err);

/* ---- running a request (serve_gen.c) ----------------------------------------------- */
typedef struct srv_job srv_job;

/* Submit every choice of `r` (which the job takes over); 0 and *err on failure
 * (queue full: 429).  fd: the client's socket, watched for a hang-up. */
int srv_job_start(srv *s, srv_req *r, int fd, srv_job **out, srv_err *err);
/* Wait for the end and write the JSON response (or an error) into out; returns the HTTP
 * status. */
int srv_job_finish(srv_job *j, srv_buf *out);
/* Streaming: append the next SSE bytes to out, waiting for them; 1 while more may
 * follow, 0 at the end (after "data: [DONE]"), -1 if the client went away. */
int srv_job_stream(srv_job *j, srv_buf *out);
/* Cancel what still runs, wait for the engine's last events, free. */
void srv_job_free(srv_job *j);

/* ---- metrics (serve_metrics.c) ----------------------------------------------------- */
srv_metrics *srv_metrics_new(void);
void srv_metrics_free(srv_metrics *m);
void srv_metrics_request(srv_metrics *m, int n_prompt, int n_cached, int n_gen, double ttft_s,
                         double e2e_s, double queue_s, const char *finish);
void srv_metrics_itl(srv_metrics *m, double s);
void srv_metrics_http(srv_metrics *m, int status);
void srv_metrics_write(srv *s, srv_buf *out);

#endif
