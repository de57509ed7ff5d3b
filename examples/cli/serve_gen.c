/* slim serve: a request's choices run on the batched engine (callbacks on the engine's
 * thread fill per-choice state under the job's lock); the connection's thread waits for
 * them and writes the OpenAI response, whole or as server-sent events.  While it waits it
 * watches the client's socket: a client that hangs up cancels its request, which frees
 * its KV blocks before the engine's next step. */
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/grow.h"
#include "serve.h"

typedef struct srv_choice {
    struct srv_job *job;
    int index, prompt; /* choice index; which prompt */
    uint64_t id;       /* engine request id (0: not submitted) */
    /* generated so far (TOKEN events) */
    slim_token *tok;
    float *lp;
    slim_logprob *top; /* [n_tok * n_top] */
    size_t *off;       /* [n_tok] byte offset of each token's piece in text */
    int n_tok;
    size_t cap_tok, cap_top, cap_off;
    char *text; /* the pieces, concatenated */
    size_t text_len, text_cap;
    double t_last;
    /* DONE */
    int done, finish;
    slim_status status;
    char error[256];
    char *final; /* the final text (cut before a stop string) */
    size_t final_len;
    int n_prompt, n_cached, n_completion;
    slim_logprob *plp, *ptop; /* prompt logprobs */
    int n_ptop;
    /* streaming cursors */
    size_t sent;  /* text bytes sent */
    int sent_tok; /* tokens whose logprobs were sent */
    int started, finished;
} srv_choice;

struct srv_job {
    srv *s;
    srv_req r;
    int fd;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int n_choices, n_done, cancel;
    srv_choice *c;
    int n_top; /* top log-probabilities the engine gives per token */
    char id[48];
    long long created;
    double t_start;
    int usage_sent, done_sent, gone;
};

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static const char *finish_name(int f) {
    switch (f) {
    case SLIM_FINISH_LENGTH:
    case SLIM_FINISH_CONTEXT: return "length";
    case SLIM_FINISH_EOS:
    case SLIM_FINISH_STOP: return "stop";
    case SLIM_FINISH_CANCELLED: return "abort";
    default: return "error";
    }
}

static int push_token(srv_choice *c, const slim_event *ev, int n_top) {
    const size_t k = (size_t)c->n_tok;
    if (!slim_grow((void **)&c->tok, &c->cap_tok, k + 1, sizeof *c->tok) ||
        !slim_grow((void **)&c->off, &c->cap_off, k + 1, sizeof *c->off) ||
        !slim_grow((void **)&c->top, &c->cap_top, (k + 1) * (size_t)(n_top ? n_top : 1),
                   sizeof *c->top) ||
        !slim_grow((void **)&c->text, &c->text_cap, c->text_len + ev->piece_len + 1, 1))
        return 0;
    /* lp shares cap_tok's growth: keep it in step. */
    float *lp = realloc(c->lp, c->cap_tok * sizeof *lp);
    if (!lp) return 0;
    c->lp = lp;
    c->tok[k] = ev->token;
    c->lp[k] = ev->logprob;
    for (int i = 0; i < n_top; i++)
        c->top[k * (size_t)n_top + (size_t)i] = i < ev->n_top ? ev->top[i] : (slim_logprob){-1, 0};
    c->off[k] = c->text_len;
    memcpy(c->text + c->text_len, ev->piece, ev->piece_len);
    c->text_len += ev->piece_len;
    c->n_tok++;
    return 1;
}

static void take_done(srv_choice *c, const slim_event *ev) {
    c->done = 1;
    c->finish = ev->finish_reason;
    c->status = ev->status;
    snprintf(c->error, sizeof c->error, "%s", ev->error ? ev->error : "");
    c->n_prompt = ev->n_prompt;
    c->n_cached = ev->n_cached;
    c->n_completion = ev->n_completion;
    if ((c->final = malloc(ev->text_len + 1))) {
        memcpy(c->final, ev->text, ev->text_len);
        c->final[ev->text_len] = '\0';
        c->final_len = ev->text_len;
    }
    if (ev->prompt_logprobs && ev->n_prompt > 0) {
        c->plp = malloc((size_t)ev->n_prompt * sizeof *c->plp);
        c->n_ptop = ev->n_prompt_top;
        const size_t nt = (size_t)ev->n_prompt * (size_t)(ev->n_prompt_top ? ev->n_prompt_top : 0);
        c->ptop = nt ? malloc(nt * sizeof *c->ptop) : NULL;
        if (c->plp) memcpy(c->plp, ev->prompt_logprobs, (size_t)ev->n_prompt * sizeof *c->plp);
        if (c->ptop && ev->prompt_top) memcpy(c->ptop, ev->prompt_top, nt * sizeof *c->ptop);
        if (!c->plp || (nt && (!c->ptop || !ev->prompt_top))) {
            free(c->plp);
            free(c->ptop);
            c->plp = c->ptop = NULL;
        }
    }
}

/* The engine's thread: record the event, wake the connection's thread. */
static int on_event(const slim_event *ev, void *user) {
    srv_choice *c = user;
    srv_job *j = c->job;
    const double t = now_s();
    pthread_mutex_lock(&j->mu);
    int stop = j->cancel;
    if (ev->type == SLIM_EVENT_TOKEN) {
        if (c->n_tok > 0) srv_metrics_itl(j->s->metrics, t - c->t_last);
        c->t_last = t;
        if (!push_token(c, ev, j->n_top)) stop = 1;
    } else if (ev->type == SLIM_EVENT_DONE) {
        take_done(c, ev);
        srv_metrics_request(j->s->metrics, ev->n_prompt, ev->n_cached, ev->n_completion,
                            ev->ttft_ms / 1e3, ev->total_ms / 1e3, ev->queue_ms / 1e3,
                            finish_name(ev->finish_reason));
        j->n_done++;
    }
    pthread_cond_broadcast(&j->cv);
    pthread_mutex_unlock(&j->mu); /* after DONE the job may be freed: touch nothing below */
    return stop;
}

static void cancel_locked(srv_job *j) {
    if (j->cancel) return;
    j->cancel = 1;
    for (int i = 0; i < j->n_choices; i++)
        if (j->c[i].id && !j->c[i].done) slim_engine_cancel(j->s->engine, j->c[i].id);
}

/* The client hung up (or its socket failed)?  Pipelined bytes waiting do not count. */
static int client_gone(int fd) {
    if (fd < 0) return 0;
    struct pollfd p = {.fd = fd, .events = POLLIN | POLLRDHUP};
    if (poll(&p, 1, 0) <= 0) return 0;
    return (p.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL)) != 0;
}

/* Wait (locked) until cond or ~100 ms; watch the client, the deadline and the drain. */
static void wait_a_bit(srv_job *j) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_nsec += 100 * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_cond_timedwait(&j->cv, &j->mu, &ts);
    if (j->cancel) return;
    if (client_gone(j->fd)) {
        j->gone = 1;
        cancel_locked(j);
    } else if (atomic_load(&j->s->abort_all) ||
               (j->s->timeout_s > 0 && now_s() - j->t_start > j->s->timeout_s)) {
        cancel_locked(j);
    }
}

int srv_job_start(srv *s, srv_req *r, int fd, srv_job **out, srv_err *err) {
    *out = NULL;
    srv_job *j = calloc(1, sizeof *j);
    if (!j) {
        srv_req_free(r);
        return srv_fail(err, 500, NULL, "out of memory");
    }
    j->s = s;
    j->r = *r;
    memset(r, 0, sizeof *r);
    j->fd = fd;
    pthread_mutex_init(&j->mu, NULL);
    pthread_cond_init(&j->cv, NULL);
    j->t_start = now_s();
    j->created = (long long)time(NULL);
    static _Atomic unsigned long long seq;
    snprintf(j->id, sizeof j->id, "%s-%llx%06llx", j->r.kind == SRV_CHAT ? "chatcmpl" : "cmpl",
             (unsigned long long)j->created, (unsigned long long)++seq);
    const srv_req *q = &j->r;
    j->n_top = q->kind == SRV_CHAT ? (q->logprobs ? (q->top_logprobs ? q->top_logprobs : 1) : 0)
                                   : (q->logprobs > 0    ? q->logprobs
                                      : q->logprobs == 0 ? 1
                                                         : 0);
    /* echo with logprobs: the prompt's too */
    const int want_plp = q->kind == SRV_COMPLETION && q->echo && q->logprobs >= 0;
    j->n_choices = q->n_prompts * q->n;
    if (!(j->c = calloc((size_t)j->n_choices, sizeof *j->c))) {
        srv_job_free(j);
        return srv_fail(err, 500, NULL, "out of memory");
    }
    atomic_fetch_add(&s->active, 1);
    int ok = 1;
    pthread_mutex_lock(&j->mu);
    for (int i = 0; i < j->n_choices; i++) {
        srv_choice *c = &j->c[i];
        c->job = j;
        c->index = i;
        c->prompt = i / q->n;
        slim_sampler_params sp = q->sp;
        sp.seed += (uint64_t)(i % q->n); /* n choices: n different streams, reproducibly */
        slim_request_params rp = slim_request_default_params();
        rp.tokens = q->prompts[c->prompt].tok;
        rp.n_tokens = q->prompts[c->prompt].n;
        rp.sampling = &sp;
        rp.max_tokens = q->max_tokens;
        rp.stop_at_eos = !q->ignore_eos;
        rp.constraint = q->constraint;
        rp.stop = (const char *const *)q->stop;
        rp.n_stop = q->n_stop;
        rp.logprobs = j->n_top;
        rp.prompt_logprobs = want_plp;
        rp.lora = q->lora;
        rp.on_event = on_event;
        rp.user = c;
        const slim_status st = slim_engine_submit(s->engine, &rp, &c->id);
        if (st) {
            c->id = 0;
            if (st == SLIM_ERR_BUSY || st == SLIM_ERR_CONTEXT_FULL) { /* the queue is full */
                srv_fail(err, 429, NULL, "the server's queue is full: retry later (%s)",
                         slim_last_error());
            } else if (st == SLIM_ERR_INVALID_ARG) {
                srv_fail(err, 400, q->kind == SRV_CHAT ? "messages" : "prompt", "%s",
                         slim_last_error());
            } else {
                srv_fail(err, 500, NULL, "submitting the request failed: %s", slim_last_error());
            }
            ok = 0;
            break;
        }
    }
    pthread_mutex_unlock(&j->mu);
    if (!ok) {
        srv_job_free(j);
        return 0;
    }
    *out = j;
    return 1;
}

void srv_job_free(srv_job *j) {
    if (!j) return;
    if (j->c) {
        pthread_mutex_lock(&j->mu);
        cancel_locked(j);
        int submitted = 0;
        for (int i = 0; i < j->n_choices; i++)
            submitted += j->c[i].id != 0;
        while (j->n_done < submitted)
            pthread_cond_wait(&j->cv, &j->mu);
        pthread_mutex_unlock(&j->mu);
        for (int i = 0; i < j->n_choices; i++) {
            srv_choice *c = &j->c[i];
            free(c->tok);
            free(c->lp);
            free(c->top);
            free(c->off);
            free(c->text);
            free(c->final);
            free(c->plp);
            free(c->ptop);
        }
        free(j->c);
        atomic_fetch_sub(&j->s->active, 1);
    }
    pthread_cond_destroy(&j->cv);
    pthread_mutex_destroy(&j->mu);
    srv_req_free(&j->r);
    free(j);
}

/* ---- writing -------------------------------------------------------------------------- */

static void jtoken_text(srv_buf *b, srv *s, slim_token t) {
    char piece[256];
    size_t n = 0;
    if (slim_token_to_piece(s->model, t, 0, piece, sizeof piece, &n)) n = 0;
    srv_jstr(b, piece, n);
}

static void jbytes(srv_buf *b, const char *p, size_t n) {
    srv_arr(b);
    for (size_t i = 0; i < n; i++)
        srv_jint(b, (unsigned char)p[i]);
    srv_arr_end(b);
}

/* Chat logprobs entries for tokens [from, to) of c. */
static void chat_logprobs(srv_buf *b, srv_job *j, const srv_choice *c, int from, int to) {
    srv_obj(b);
    srv_key(b, "content");
    srv_arr(b);
    for (int k = from; k < to; k++) {
        char tp[256];
        size_t tn = 0;
        if (slim_token_to_piece(j->s->model, c->tok[k], 0, tp, sizeof tp, &tn)) tn = 0;
        srv_obj(b);
        srv_key(b, "token");
        srv_jstr(b, tp, tn);
        srv_key(b, "logprob");
        srv_jnum(b, c->lp[k]);
        srv_key(b, "bytes");
        jbytes(b, tp, tn);
        srv_key(b, "top_logprobs");
        srv_arr(b);
        for (int i = 0; i < j->r.top_logprobs; i++) {
            const slim_logprob *t = &c->top[(size_t)k * (size_t)j->n_top + (size_t)i];
            if (t->token < 0) continue;
            char piece[256];
            size_t n = 0;
            if (slim_token_to_piece(j->s->model, t->token, 0, piece, sizeof piece, &n)) n = 0;
            srv_obj(b);
            srv_key(b, "token");
            srv_jstr(b, piece, n);
            srv_key(b, "logprob");
            srv_jnum(b, t->logprob);
            srv_key(b, "bytes");
            jbytes(b, piece, n);
            srv_obj_end(b);
        }
        srv_arr_end(b);
        srv_obj_end(b);
    }
    srv_arr_end(b);
    srv_obj_end(b);
}

/* Completions logprobs {tokens, token_logprobs, top_logprobs, text_offset}: the prompt's
 * tokens first when echoing (the first with null), then tokens [from, to). */
static void completion_logprobs(srv_buf *b, srv_job *j, const srv_choice *c, int echo, int from,
                                int to, size_t base) {
    const srv_prompt *p = &j->r.prompts[c->prompt];
    const int n_prompt = echo && c->plp ? (int)p->n : 0;
    const int ntop = j->r.logprobs;
    size_t *poff = n_prompt ? calloc((size_t)n_prompt + 1, sizeof *poff) : NULL;
    char piece[256];
    size_t n;
    for (int i = 0; i < n_prompt && poff; i++) {
        if (slim_token_to_piece(j->s->model, p->tok[i], 0, piece, sizeof piece, &n)) n = 0;
        poff[i + 1] = poff[i] + n;
    }
    const size_t gen_base = base + (n_prompt ? p->text_len : 0);
    srv_obj(b);
    srv_key(b, "tokens");
    srv_arr(b);
    for (int i = 0; i < n_prompt; i++)
        jtoken_text(b, j->s, p->tok[i]);
    for (int k = from; k < to; k++)
        jtoken_text(b, j->s, c->tok[k]);
    srv_arr_end(b);
    srv_key(b, "token_logprobs");
    srv_arr(b);
    for (int i = 0; i < n_prompt; i++)
        if (i == 0)
            srv_jnull(b);
        else
            srv_jnum(b, c->plp[i].logprob);
    for (int k = from; k < to; k++)
        srv_jnum(b, c->lp[k]);
    srv_arr_end(b);
    srv_key(b, "top_logprobs");
    srv_arr(b);
    for (int i = 0; i < n_prompt; i++) {
        if (i == 0 || !c->ptop) {
            srv_jnull(b);
            continue;
        }
        srv_obj(b);
        for (int t = 0; t < ntop && t < c->n_ptop; t++) {
            const slim_logprob *x = &c->ptop[(size_t)i * (size_t)c->n_ptop + (size_t)t];
            if (slim_token_to_piece(j->s->model, x->token, 0, piece, sizeof piece, &n)) n = 0;
            srv_keyn(b, piece, n);
            srv_jnum(b, x->logprob);
        }
        srv_obj_end(b);
    }
    for (int k = from; k < to; k++) {
        if (ntop <= 0) {
            srv_jnull(b);
            continue;
        }
        srv_obj(b);
        for (int t = 0; t < ntop; t++) {
            const slim_logprob *x = &c->top[(size_t)k * (size_t)j->n_top + (size_t)t];
            if (x->token < 0) continue;
            if (slim_token_to_piece(j->s->model, x->token, 0, piece, sizeof piece, &n)) n = 0;
            srv_keyn(b, piece, n);
            srv_jnum(b, x->logprob);
        }
        srv_obj_end(b);
    }
    srv_arr_end(b);
    srv_key(b, "text_offset");
    srv_arr(b);
    for (int i = 0; i < n_prompt; i++)
        srv_jint(b, (long long)(base + (poff ? poff[i] : 0)));
    for (int k = from; k < to; k++)
        srv_jint(b, (long long)(gen_base + c->off[k]));
    srv_arr_end(b);
    srv_obj_end(b);
    free(poff);
}

static void usage(srv_buf *b, srv_job *j) {
    long long np = 0, nc = 0, cached = 0;
    for (int i = 0; i < j->r.n_prompts; i++)
        np += (long long)j->r.prompts[i].n;
    for (int i = 0; i < j->n_choices; i++) {
        nc += j->c[i].n_completion;
        if (i % j->r.n == 0) cached += j->c[i].n_cached;
    }
    srv_obj(b);
    srv_key(b, "prompt_tokens");
    srv_jint(b, np);
    srv_key(b, "completion_tokens");
    srv_jint(b, nc);
    srv_key(b, "total_tokens");
    srv_jint(b, np + nc);
    srv_key(b, "prompt_tokens_details");
    srv_obj(b);
    srv_key(b, "cached_tokens");
    srv_jint(b, cached);
    srv_obj_end(b);
    srv_obj_end(b);
}

static void head(srv_buf *b, srv_job *j, const char *object) {
    srv_key(b, "id");
    srv_jcstr(b, j->id);
    srv_key(b, "object");
    srv_jcstr(b, object);
    srv_key(b, "created");
    srv_jint(b, j->created);
    srv_key(b, "model");
    srv_jcstr(b, j->r.model_name);
}

/* A job that ended badly: 1 and the error for the whole response in *e, or 0. */
static int job_error(srv_job *j, srv_err *e) {
    if (j->gone) return !srv_fail(e, 499, NULL, "the client closed the connection");
    for (int i = 0; i < j->n_choices; i++) {
        const srv_choice *c = &j->c[i];
        if (c->finish == SLIM_FINISH_ERROR)
            return !srv_fail(e, 500, NULL, "generation failed: %s", c->error);
        if (c->finish == SLIM_FINISH_CANCELLED) {
            if (atomic_load(&j->s->abort_all))
                return !srv_fail(e, 503, NULL, "the server is shutting down");
            if (j->s->timeout_s > 0 && now_s() - j->t_start > j->s->timeout_s)
                return !srv_fail(e, 504, NULL,
                                 "the request ran longer than the server's limit "
                                 "(%g s)",
                                 j->s->timeout_s);
            return !srv_fail(e, 500, NULL, "the request was cancelled");
        }
        if (!c->final) return !srv_fail(e, 500, NULL, "out of memory");
    }
    return 0;
}

int srv_job_finish(srv_job *j, srv_buf *out) {
    pthread_mutex_lock(&j->mu);
    while (j->n_done < j->n_choices)
        wait_a_bit(j);
    pthread_mutex_unlock(&j->mu);
    srv_err e = {0};
    if (job_error(j, &e)) {
        srv_write_error(out, &e);
        return e.status;
    }
    const int chat = j->r.kind == SRV_CHAT;
    srv_obj(out);
    head(out, j, chat ? "chat.completion" : "text_completion");
    srv_key(out, "choices");
    srv_arr(out);
    for (int i = 0; i < j->n_choices; i++) {
        const srv_choice *c = &j->c[i];
        /* tokens whose text lies within the final (stop-cut) text */
        int n_keep = c->n_tok;
        while (n_keep > 0 && c->off[n_keep - 1] >= c->final_len && c->final_len < c->text_len)
            n_keep--;
        srv_obj(out);
        srv_key(out, "index");
        srv_jint(out, i);
        if (chat) {
            srv_key(out, "message");
            srv_obj(out);
            srv_key(out, "role");
            srv_jcstr(out, "assistant");
            srv_key(out, "content");
            srv_jstr(out, c->final, c->final_len);
            srv_obj_end(out);
            srv_key(out, "logprobs");
            if (j->r.logprobs)
                chat_logprobs(out, j, c, 0, n_keep);
            else
                srv_jnull(out);
        } else {
            const srv_prompt *p = &j->r.prompts[c->prompt];
            srv_key(out, "text");
            if (j->r.echo) {
                srv_buf t = {0};
                srv_raw(&t, p->text, p->text_len);
                srv_raw(&t, c->final, c->final_len);
                srv_jstr(out, t.p ? t.p : "", t.len);
                srv_buf_free(&t);
            } else {
                srv_jstr(out, c->final, c->final_len);
            }
            srv_key(out, "logprobs");
            if (j->r.logprobs >= 0)
                completion_logprobs(out, j, c, j->r.echo, 0, n_keep, 0);
            else
                srv_jnull(out);
        }
        srv_key(out, "finish_reason");
        srv_jcstr(out, finish_name(c->finish));
        srv_obj_end(out);
    }
    srv_arr_end(out);
    srv_key(out, "usage");
    usage(out, j);
    srv_obj_end(out);
    if (out->oom) {
        srv_buf_free(out);
        srv_fail(&e, 500, NULL, "out of memory");
        srv_write_error(out, &e);
        return 500;
    }
    return 200;
}

/* How much of c's text can be sent now: not inside a UTF-8 character still arriving, and
 * not a part that may yet turn out to start a stop string (the engine cuts the final text
 * before it). */
static size_t sendable(const srv_job *j, const srv_choice *c) {
    if (c->done) return c->final_len;
    size_t lim = c->text_len;
    for (int i = 0; i < j->r.n_stop; i++) {
        const char *st = j->r.stop[i];
        const size_t sl = strlen(st);
        /* a whole occurrence: the engine is about to finish there */
        const size_t from = c->sent > sl ? c->sent - sl : 0;
        for (size_t at = from; at + sl <= c->text_len; at++)
            if (!memcmp(c->text + at, st, sl) && at < lim) {
                lim = at;
                break;
            }
        for (size_t k = sl - 1; k > 0; k--)
            if (k <= c->text_len && !memcmp(c->text + c->text_len - k, st, k)) {
                if (c->text_len - k < lim) lim = c->text_len - k;
                break;
            }
    }
    return srv_utf8_complete(c->text, lim);
}

static void sse_begin(srv_buf *out, srv_job *j) {
    srv_raw(out, "data: ", 6);
    srv_obj(out);
    head(out, j, j->r.kind == SRV_CHAT ? "chat.completion.chunk" : "text_completion");
    srv_key(out, "choices");
    srv_arr(out);
}

static void sse_end(srv_buf *out, srv_job *j) {
    srv_arr_end(out);
    if (j->r.include_usage) {
        srv_key(out, "usage");
        srv_jnull(out);
    }
    srv_obj_end(out);
    srv_raw(out, "\n\n", 2);
}

/* One chunk for choice c if it has something new; 1 if written. */
static int stream_choice(srv_buf *out, srv_job *j, srv_choice *c) {
    const int chat = j->r.kind == SRV_CHAT;
    const size_t upto = sendable(j, c);
    const int new_text = upto > c->sent;
    /* tokens whose pieces start before `upto` are reported with this chunk */
    int tok_to = c->sent_tok;
    while (tok_to < c->n_tok && c->off[tok_to] < upto)
        tok_to++;
    if (c->done && !c->finished) tok_to = c->n_tok;
    if (c->done && c->final_len < c->text_len)
        while (tok_to > c->sent_tok && c->off[tok_to - 1] >= c->final_len)
            tok_to--;
    const int first = chat && !c->started;
    const int finishing = c->done && !c->finished;
    const int echo_now = !chat && j->r.echo && !c->started;
    if (!new_text && !first && !finishing && !echo_now) return 0;
    sse_begin(out, j);
    srv_obj(out);
    srv_key(out, "index");
    srv_jint(out, c->index);
    const char *src = c->done ? c->final : c->text;
    const char *txt = src && upto > c->sent ? src + c->sent : "";
    const size_t ntxt = upto > c->sent ? upto - c->sent : 0;
    if (chat) {
        srv_key(out, "delta");
        srv_obj(out);
        if (first) {
            srv_key(out, "role");
            srv_jcstr(out, "assistant");
        }
        if (new_text || first) {
            srv_key(out, "content");
            srv_jstr(out, txt, ntxt);
        }
        srv_obj_end(out);
        srv_key(out, "logprobs");
        if (j->r.logprobs && tok_to > c->sent_tok)
            chat_logprobs(out, j, c, c->sent_tok, tok_to);
        else
            srv_jnull(out);
    } else {
        srv_key(out, "text");
        if (echo_now) {
            const srv_prompt *p = &j->r.prompts[c->prompt];
            srv_buf t = {0};
            srv_raw(&t, p->text, p->text_len);
            srv_raw(&t, txt, ntxt);
            srv_jstr(out, t.p ? t.p : "", t.len);
            srv_buf_free(&t);
        } else {
            srv_jstr(out, txt, ntxt);
        }
        srv_key(out, "logprobs");
        if (j->r.logprobs >= 0 && tok_to > c->sent_tok)
            completion_logprobs(out, j, c, 0, c->sent_tok, tok_to, 0);
        else
            srv_jnull(out);
    }
    srv_key(out, "finish_reason");
    if (finishing)
        srv_jcstr(out, finish_name(c->finish));
    else
        srv_jnull(out);
    srv_obj_end(out);
    sse_end(out, j);
    c->started = 1;
    if (upto > c->sent) c->sent = upto;
    c->sent_tok = tok_to;
    if (finishing) c->finished = 1;
    return 1;
}

int srv_job_stream(srv_job *j, srv_buf *out) {
    pthread_mutex_lock(&j->mu);
    for (;;) {
        if (j->gone) {
            pthread_mutex_unlock(&j->mu);
            return -1;
        }
        if (j->done_sent) {
            pthread_mutex_unlock(&j->mu);
            return 0;
        }
        int wrote = 0, all_finished = 1;
        for (int i = 0; i < j->n_choices; i++) {
            wrote |= stream_choice(out, j, &j->c[i]);
            all_finished &= j->c[i].finished;
        }
        if (all_finished) {
            srv_err e = {0};
            int failed = 0;
            for (int i = 0; i < j->n_choices; i++)
                failed |= j->c[i].finish == SLIM_FINISH_ERROR;
            if (failed && job_error(j, &e)) {
                srv_raw(out, "data: ", 6);
                srv_write_error(out, &e);
                srv_raw(out, "\n\n", 2);
            }
            if (j->r.include_usage) {
                srv_raw(out, "data: ", 6);
                srv_obj(out);
                head(out, j, j->r.kind == SRV_CHAT ? "chat.completion.chunk" : "text_completion");
                srv_key(out, "choices");
                srv_arr(out);
                srv_arr_end(out);
                srv_key(out, "usage");
                usage(out, j);
                srv_obj_end(out);
                srv_raw(out, "\n\n", 2);
            }
            srv_cstr(out, "data: [DONE]\n\n");
            j->done_sent = 1;
            wrote = 1;
        }
        if (wrote) {
            pthread_mutex_unlock(&j->mu);
            return out->oom ? -1 : 1;
        }
        wait_a_bit(j);
    }
}
