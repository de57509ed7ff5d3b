/* The batched engine: requests from any thread, one step thread that
 * schedules them over the paged KV pool (continuous batching, chunked
 * prefill, prefix cache, preemption by recomputation) and runs the forward
 * step through the slim_engine_exec seam (engine.h).
 *
 * Locking: `mu` guards the request table, the inbox of new requests, the
 * per-request event queues and the counters snapshot; the scheduler's lists,
 * the KV pool and a request's token and KV state belong to the step thread.
 * `step_mu` is held while a step runs, so adapters attach between steps.
 * Callbacks run on the step thread with no lock held. */
#include "runtime/engine.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "runtime/context.h"
#include "runtime/engine_constrain.h"
#include "runtime/kv_pool.h"
#include "runtime/sampler.h"
#include <stddef.h>

enum { MAX_TOP = 20, LP_EXTRA_ROWS = 16 };

typedef struct ev_node {
    struct ev_node *next;
    slim_event ev;
    char *piece;
    slim_logprob *top;
} ev_node;

typedef enum { R_WAITING, R_RUNNING, R_FINISHED } req_state;

/* An adapter attached to the engine.  Requests name it by its engine index,
 * which never changes nor is reused (so prefix-cache salts stay distinct);
 * the context numbers its attached adapters densely, so detaching shifts
 * ctx_index of the later ones. */
typedef struct lora_slot {
    slim_lora *lora; /* NULL once detached */
    int32_t ctx_index;
    int32_t users; /* unfinished requests naming it (under mu) */
    bool closing;  /* a detach waits: submits naming it are refused */
} lora_slot;

typedef struct request {
    uint64_t id;
    /* fixed at submit */
    int32_t n_prompt, max_tokens, n_top, lora;
    bool stop_at_eos, want_plp;
    char **stop;
    int32_t n_stop;
    slim_event_fn on_event;
    void *user;
    slim_sampler *sampler;
    /* step thread */
    int32_t *tok; /* prompt, then generated tokens; the last one not yet computed */
    int32_t n_tok;
    size_t cap;
    slim_kv_seq seq;
    slim_kv_seq sseq; /* the sliding-window layers' table (with e->spool) */
    req_state state;
    bool plp_done, admitted, counted; /* counted: in its adapter's users */
    int64_t in_step;                  /* the step (n_steps + 1) it was last put in */
    int32_t n_cached, n_gen, finish;
    slim_status status;
    char error[256];
    slim_logprob *plp, *ptop; /* [n_prompt], [n_prompt * n_top] */
    char *text;
    size_t text_len, text_cap;
    size_t sent; /* text bytes streamed in pieces; the rest could still begin a stop string */
    double t_submit, t_admit, t_first, t_done;
    /* shared, under mu (cancel is also read by the step thread without it) */
    atomic_bool cancel;
    bool released, done_queued;
    ev_node *q_head, *q_tail, *current;
} request;

struct slim_engine {
    const slim_model *model;
    slim_context *ctx; /* NULL with a fake exec */
    slim_engine_exec exec;
    slim_kv_pool *pool;
    slim_kv_pool *spool; /* the sliding-window layers' blocks, or NULL: they use pool's */
    slim_engine_params p;
    int32_t n_vocab, rows_cap;
    lora_slot *loras; /* by engine index; a detached slot's lora is NULL (indices stay) */
    int32_t n_lora;
    pthread_t thread;
    bool started, shutdown;
    pthread_mutex_t mu, step_mu;
    pthread_cond_t work, events;
    uint64_t next_id;
    request **all, **inbox;
    size_t n_all, cap_all, n_inbox, cap_inbox;
    /* step thread */
    request **waiting, **running;
    size_t n_waiting, cap_waiting, n_running, cap_running;
    int32_t *s_tok, *s_pos, *s_seq, *s_from, *s_n;
    uint8_t *s_want;
    slim_step_seq *s_seqs;
    slim_step_table *s_swa;
    request **s_req;
    float *logits;
    char *piece;
    size_t piece_cap;
    /* under mu */
    slim_engine_stats snap;
    int64_t n_steps, n_preempt;
    slim_econ *econ; /* constraint masks computed during the forward pass */
};

#include "core/grow.h"
#include "core/threadpool.h"

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static bool push(request ***v, size_t *n, size_t *cap, request *r) {
    if (!slim_grow((void **)v, cap, *n + 1, sizeof **v)) return false;
    (*v)[(*n)++] = r;
    return true;
}

static void remove_at(request **v, size_t *n, size_t i) {
    memmove(v + i, v + i + 1, (*n - i - 1) * sizeof *v);
    (*n)--;
}

static void remove_ptr(request **v, size_t *n, const request *r) {
    for (size_t i = 0; i < *n; i++)
        if (v[i] == r) {
            remove_at(v, n, i);
            return;
        }
}

static void free_node(ev_node *n) {
    if (!n) return;
    free(n->piece);
    free(n->top);
    free(n);
}

static void request_free(request *r) {
    if (!r) return;
    for (ev_node *n = r->q_head, *next; n; n = next) {
        next = n->next;
        free_node(n);
    }
    free_node(r->current);
    for (int32_t i = 0; i < r->n_stop; i++)
        free(r->stop[i]);
    free(r->stop);
    slim_sampler_free(r->sampler);
    free(r->tok);
    free(r->seq.blocks);
    free(r->seq.hashes);
    free(r->sseq.blocks);
    free(r->sseq.hashes);
    free(r->plp);
    free(r->ptop);
    free(r->text);
    free(r);
}

/* Free a request's KV blocks (cached ones stay cached). */
static void release_kv(slim_engine *e, request *r) {
    slim_kv_pool_release(e->pool, &r->seq);
    if (e->spool) slim_kv_pool_release(e->spool, &r->sseq);
}

/* Under mu: the live request with this id, or NULL. */
static request *find(slim_engine *e, uint64_t id, size_t *index) {
    for (size_t i = 0; i < e->n_all; i++)
        if (e->all[i]->id == id && !e->all[i]->released) {
            if (index) *index = i;
            return e->all[i];
        }
    return NULL;
}

/* Under mu: the counters get_stats reports. */
static void snapshot(slim_engine *e) {
    slim_kv_pool_stats ps;
    slim_kv_pool_get_stats(e->pool, &ps);
    slim_kv_pool_stats ss = {0};
    if (e->spool) slim_kv_pool_get_stats(e->spool, &ss);
    e->snap = (slim_engine_stats){.struct_size = sizeof e->snap,
                                  .kv_blocks = ps.n_blocks,
                                  .kv_block_size = slim_kv_pool_block_size(e->pool),
                                  .kv_free = ps.n_free,
                                  .kv_used = ps.n_used,
                                  .kv_cached = ps.n_cached,
                                  .n_waiting = (int32_t)(e->n_waiting + e->n_inbox),
                                  .n_running = (int32_t)e->n_running,
                                  .n_steps = e->n_steps,
                                  .n_preemptions = e->n_preempt,
                                  .prefix_hit_tokens = ps.hit_tokens,
                                  .kv_swa_blocks = ss.n_blocks,
                                  .kv_swa_used = ss.n_used};
}

/* ---- events ----------------------------------------------------------------- */

/* Hand an event to its request: the callback, or the poll queue (a copy). */
static void deliver(slim_engine *e, request *r, const slim_event *ev) {
    const bool done = ev->type == SLIM_EVENT_DONE;
    if (r->on_event) {
        if (r->on_event(ev, r->user) && !done) atomic_store(&r->cancel, true);
        if (done) {
            pthread_mutex_lock(&e->mu);
            remove_ptr(e->all, &e->n_all, r);
            pthread_mutex_unlock(&e->mu);
            request_free(r);
        }
        return;
    }
    ev_node *n = calloc(1, sizeof *n);
    if (n) {
        n->ev = *ev;
        if (ev->piece_len && !(n->piece = malloc(ev->piece_len))) n->ev.piece_len = 0;
        if (n->piece) memcpy(n->piece, ev->piece, ev->piece_len);
        n->ev.piece = n->piece ? n->piece : "";
        if (ev->n_top && !(n->top = malloc((size_t)ev->n_top * sizeof *n->top))) n->ev.n_top = 0;
        if (n->top) memcpy(n->top, ev->top, (size_t)ev->n_top * sizeof *n->top);
        n->ev.top = n->top;
    }
    pthread_mutex_lock(&e->mu);
    if (r->released) {
        free_node(n);
        if (done) {
            remove_ptr(e->all, &e->n_all, r);
            request_free(r);
        }
    } else if (n) {
        if (r->q_tail)
            r->q_tail->next = n;
        else
            r->q_head = n;
        r->q_tail = n;
        if (done) r->done_queued = true;
    } else if (done) {
        /* Out of memory for the final event: the poller still learns it is done. */
        r->done_queued = true;
    }
    pthread_cond_broadcast(&e->events);
    pthread_mutex_unlock(&e->mu);
}

/* Take a request out of the scheduler, free its KV blocks, report its result. */
static void finish(slim_engine *e, request *r, slim_finish_reason why, slim_status st,
                   const char *msg) {
    if (r->state == R_RUNNING)
        remove_ptr(e->running, &e->n_running, r);
    else if (r->state == R_WAITING)
        remove_ptr(e->waiting, &e->n_waiting, r);
    r->state = R_FINISHED;
    release_kv(e, r);
    r->finish = why;
    r->status = st;
    snprintf(r->error, sizeof r->error, "%s", msg ? msg : "");
    r->t_done = now_ms();
    if (!r->admitted) r->t_admit = r->t_done;
    if (!r->t_first) r->t_first = r->t_done;
    if (r->text) r->text[r->text_len] = '\0';
    const int32_t n_gen_tok = r->n_tok - r->n_prompt;
    const slim_event ev = {.struct_size = sizeof ev,
                           .type = SLIM_EVENT_DONE,
                           .request = r->id,
                           .token = -1,
                           /* what was held back and never streamed (an EOS, a cancel) */
                           .piece = r->text && r->sent < r->text_len ? r->text + r->sent : "",
                           .piece_len =
                               r->text && r->sent < r->text_len ? r->text_len - r->sent : 0,
                           .finish_reason = why,
                           .status = st,
                           .error = r->error,
                           .n_prompt = r->n_prompt,
                           .n_cached = r->n_cached,
                           .n_completion = r->n_gen,
                           .queue_ms = r->t_admit - r->t_submit,
                           .ttft_ms = r->t_first - r->t_submit,
                           .total_ms = r->t_done - r->t_submit,
                           .tokens = r->tok + r->n_prompt,
                           .n_tokens = n_gen_tok,
                           .text = r->text ? r->text : "",
                           .text_len = r->text_len,
                           .prompt_logprobs = r->plp,
                           .prompt_top = r->ptop,
                           .n_prompt_top = r->plp ? r->n_top : 0};
    pthread_mutex_lock(&e->mu);
    if (r->counted) {
        r->counted = false;
        if (--e->loras[r->lora].users == 0) pthread_cond_broadcast(&e->events); /* a detach */
    }
    snapshot(e);
    pthread_mutex_unlock(&e->mu);
    deliver(e, r, &ev);
}

/* ---- log-probabilities ------------------------------------------------------ */

/* log of sum(exp(l)) over the row, in double. */
static double log_sum_exp(const float *l, int32_t n) {
    float mx = -INFINITY;
    for (int32_t i = 0; i < n; i++)
        if (l[i] > mx) mx = l[i];
    double s = 0;
    for (int32_t i = 0; i < n; i++)
        s += exp((double)l[i] - mx);
    return mx + log(s);
}

/* The k most likely tokens, most likely first (ties: lower id first). */
static void top_k(const float *l, int32_t n, int32_t k, double lse, slim_logprob *out) {
    int32_t m = 0;
    for (int32_t i = 0; i < n; i++) {
        if (m == k && l[i] <= l[out[m - 1].token]) continue;
        int32_t j = m < k ? m++ : k - 1;
        while (j > 0 && l[out[j - 1].token] < l[i]) {
            out[j] = out[j - 1];
            j--;
        }
        out[j].token = i;
    }
    for (int32_t j = 0; j < m; j++)
        out[j].logprob = (float)(l[out[j].token] - lse);
}

/* ---- per request ------------------------------------------------------------ */

static bool append_text(request *r, const char *s, size_t n) {
    if (!slim_grow((void **)&r->text, &r->text_cap, r->text_len + n + 1, 1)) return false;
    memcpy(r->text + r->text_len, s, n);
    r->text_len += n;
    r->text[r->text_len] = '\0';
    return true;
}

/* A stop string that ends in the text's last `added` bytes: cut the text
 * before the earliest one. */
static bool check_stop(request *r, size_t added) {
    size_t cut = r->text_len;
    for (int32_t i = 0; i < r->n_stop; i++) {
        const size_t len = strlen(r->stop[i]);
        if (len > r->text_len) continue;
        size_t from = r->text_len - added;
        from = from >= len - 1 ? from - (len - 1) : 0;
        for (size_t at = from; at + len <= r->text_len && at < cut; at++)
            if (!memcmp(r->text + at, r->stop[i], len)) {
                cut = at;
                break;
            }
    }
    if (cut == r->text_len) return false;
    r->text_len = cut;
    r->text[cut] = '\0';
    return true;
}

/* Bytes at the end of the text that begin some stop string (and so may not
 * be streamed yet): the longest proper prefix of a stop string the text ends
 * with. */
static size_t held_back(const request *r) {
    size_t hold = 0;
    for (int32_t i = 0; i < r->n_stop; i++) {
        const size_t len = strlen(r->stop[i]);
        for (size_t k = len - 1 < r->text_len ? len - 1 : r->text_len; k > hold; k--)
            if (!memcmp(r->text + r->text_len - k, r->stop[i], k)) {
                hold = k;
                break;
            }
    }
    return hold;
}

/* A generated token (l: the logits it was sampled from, NULL for a token a
 * constraint forced): report it, decide whether to stop.  False once r finished. */
static bool emit_token(slim_engine *e, request *r, slim_token tok, const float *l) {
    slim_status st;
    slim_sampler_accept(r->sampler, tok);
    r->n_gen++;
    if (r->n_gen == 1) r->t_first = now_ms();
    slim_logprob top[MAX_TOP];
    float lp = 0;
    if (r->n_top > 0 && l) {
        const double lse = log_sum_exp(l, e->n_vocab);
        lp = (float)(l[tok] - lse);
        top_k(l, e->n_vocab, r->n_top, lse, top);
    }
    if (r->stop_at_eos && e->model && slim_token_is_eog(e->model, tok)) {
        finish(e, r, SLIM_FINISH_EOS, SLIM_OK, NULL);
        return false;
    }
    if (!slim_grow((void **)&r->tok, &r->cap, (size_t)r->n_tok + 1, sizeof *r->tok)) {
        finish(e, r, SLIM_FINISH_ERROR, SLIM_ERR_NOMEM, "out of memory");
        return false;
    }
    r->tok[r->n_tok++] = tok;
    size_t n_piece = 0;
    if (e->model) {
        st = slim_token_to_piece(e->model, tok, 0, e->piece, e->piece_cap, &n_piece);
        if (st == SLIM_ERR_BUFFER_TOO_SMALL &&
            slim_grow((void **)&e->piece, &e->piece_cap, n_piece, 1))
            st = slim_token_to_piece(e->model, tok, 0, e->piece, e->piece_cap, &n_piece);
        if (st) n_piece = 0;
    }
    if (!append_text(r, e->piece ? e->piece : "", n_piece)) {
        finish(e, r, SLIM_FINISH_ERROR, SLIM_ERR_NOMEM, "out of memory");
        return false;
    }
    /* Stream the text no stop string can still claim: a stop string's text
     * is never streamed; the last token releases what was held back. */
    slim_finish_reason why = SLIM_FINISH_NONE;
    if (r->n_stop && check_stop(r, n_piece))
        why = SLIM_FINISH_STOP;
    else if (r->n_gen >= r->max_tokens)
        why = SLIM_FINISH_LENGTH;
    else if (r->n_tok >= e->p.n_ctx)
        why = SLIM_FINISH_CONTEXT;
    const size_t upto = why != SLIM_FINISH_NONE ? r->text_len : r->text_len - held_back(r);
    const size_t from = r->sent < upto ? r->sent : upto;
    r->sent = upto;
    const slim_event ev = {.struct_size = sizeof ev,
                           .type = SLIM_EVENT_TOKEN,
                           .request = r->id,
                           .token = tok,
                           .piece = r->text ? r->text + from : "",
                           .piece_len = upto - from,
                           .logprob = lp,
                           .top = r->n_top && l ? top : NULL,
                           .n_top = l ? r->n_top : 0};
    deliver(e, r, &ev);
    if (why == SLIM_FINISH_NONE) return true;
    finish(e, r, why, SLIM_OK, NULL);
    return false;
}

/* A sampled position: choose the next token, then the tokens a constraint
 * forces after it (they join it in the next step's chunk; at the start they
 * come before anything is sampled). */
static void next_token(slim_engine *e, request *r, const float *l) {
    if (r->n_gen >= r->max_tokens) {
        finish(e, r, SLIM_FINISH_LENGTH, SLIM_OK, NULL);
        return;
    }
    slim_token forced[SLIM_ECON_FORCED_MAX];
    int32_t nf = r->n_gen == 0 ? slim_econ_forced(r->sampler, forced) : 0;
    if (nf == 0) {
        slim_token tok;
        slim_status st = slim_sampler_sample(r->sampler, l, e->n_vocab, &tok);
        if (st) {
            finish(e, r, SLIM_FINISH_ERROR, st, slim_last_error());
            return;
        }
        if (!emit_token(e, r, tok, l)) return;
        nf = slim_econ_forced(r->sampler, forced);
    }
    for (int32_t i = 0; i < nf; i++)
        if (!emit_token(e, r, forced[i], NULL)) return;
}

/* ---- scheduling ------------------------------------------------------------- */

/* Whether the pools have room for n new tokens of r now. */
static bool fits(const slim_engine *e, const request *r, int32_t n) {
    if (slim_kv_pool_blocks_needed(e->pool, &r->seq, n) > slim_kv_pool_available(e->pool))
        return false;
    return !e->spool ||
           slim_kv_pool_blocks_needed(e->spool, &r->sseq, n) <= slim_kv_pool_available(e->spool);
}

/* The most of n new tokens of r the pools can hold now. */
static int32_t max_fit(const slim_engine *e, const request *r, int32_t n) {
    if (fits(e, r, n)) return n;
    int32_t lo = 0, hi = n; /* fits(lo), !fits(hi) */
    while (hi - lo > 1) {
        const int32_t mid = lo + (hi - lo) / 2;
        if (fits(e, r, mid))
            lo = mid;
        else
            hi = mid;
    }
    return lo;
}

/* Free a running request's blocks; it waits at the front to be recomputed. */
static void preempt(slim_engine *e, size_t i) {
    request *r = e->running[i];
    remove_at(e->running, &e->n_running, i);
    release_kv(e, r);
    r->state = R_WAITING;
    if (!slim_grow((void **)&e->waiting, &e->cap_waiting, e->n_waiting + 1, sizeof *e->waiting)) {
        finish(e, r, SLIM_FINISH_ERROR, SLIM_ERR_NOMEM, "out of memory");
        return;
    }
    memmove(e->waiting + 1, e->waiting, e->n_waiting * sizeof *e->waiting);
    e->waiting[0] = r;
    e->n_waiting++;
    e->n_preempt++;
}

typedef struct step_fill {
    int32_t nt, ns, budget, extra; /* tokens, sequences, tokens left, extra logit rows used */
} step_fill;

/* Tokens a request would add: its remaining ones within the budget and the
 * logit rows (a prompt-logprob request wants a row per prompt token). */
static int32_t chunk_for(const slim_engine *e, const request *r, const step_fill *f) {
    int32_t n = r->n_tok - r->seq.n_tokens;
    if (n > f->budget) n = f->budget;
    if (r->want_plp && !r->plp_done) {
        const int32_t rows = LP_EXTRA_ROWS - f->extra + 1;
        if (n > rows) n = rows;
    }
    return n;
}

/* Put n tokens of r into the step (the pool has room: max_fit said so). */
static slim_status add_to_step(slim_engine *e, request *r, int32_t n, step_fill *f) {
    const int32_t from = r->seq.n_tokens;
    slim_status st = slim_kv_pool_reserve(e->pool, &r->seq, n);
    if (!st && e->spool) st = slim_kv_pool_reserve(e->spool, &r->sseq, n);
    if (st) return st;
    int32_t rows = 0;
    for (int32_t j = 0; j < n; j++) {
        const int32_t p = from + j, t = f->nt + j;
        e->s_tok[t] = r->tok[p];
        e->s_pos[t] = p;
        e->s_seq[t] = f->ns;
        e->s_want[t] = (r->want_plp && !r->plp_done && p < r->n_prompt - 1) || p == r->n_tok - 1;
        rows += e->s_want[t];
    }
    e->s_seqs[f->ns] = (slim_step_seq){.blocks = r->seq.blocks,
                                       .n_blocks = r->seq.n_blocks,
                                       .lora = r->lora >= 0 ? r->lora : SLIM_STEP_LORA_NONE};
    e->s_swa[f->ns] = (slim_step_table){r->sseq.blocks, r->sseq.n_blocks};
    e->s_req[f->ns] = r;
    e->s_from[f->ns] = from;
    e->s_n[f->ns] = n;
    f->ns++;
    f->nt += n;
    f->budget -= n;
    if (rows > 1) f->extra += rows - 1;
    return SLIM_OK;
}

/* The latest admitted running request other than r not yet in this step, or -1. */
static ptrdiff_t victim(const slim_engine *e, const request *r) {
    for (size_t j = e->n_running; j-- > 0;)
        if (e->running[j] != r && e->running[j]->in_step != e->n_steps + 1) return (ptrdiff_t)j;
    return -1;
}

/* Running requests of one phase (decodes: one token left; else prompt
 * chunks) into the step, in admission order, preempting the latest admitted
 * request not in the step while the pool has no room. */
static void add_running(slim_engine *e, step_fill *f, bool decodes) {
    for (size_t i = 0; i < e->n_running && f->budget > 0 && f->ns < e->p.max_seqs;) {
        request *r = e->running[i];
        const bool decode = r->n_tok - r->seq.n_tokens == 1;
        if (r->in_step == e->n_steps + 1 || decode != decodes) {
            i++;
            continue;
        }
        const int32_t want = chunk_for(e, r, f);
        int32_t n;
        ptrdiff_t v;
        while ((n = max_fit(e, r, want)) == 0 && (v = victim(e, r)) >= 0)
            preempt(e, (size_t)v);
        for (i = 0; e->running[i] != r; i++) /* preemptions move r up */
            ;
        if (n == 0) {
            if (e->n_running > 1 || f->ns > 0)
                preempt(e, i); /* the others in the step hold the blocks: wait for them */
            else
                finish(e, r, SLIM_FINISH_CONTEXT, SLIM_OK, "the KV pool cannot hold the request");
            continue;
        }
        slim_status st = add_to_step(e, r, n, f);
        if (st) {
            finish(e, r, SLIM_FINISH_ERROR, st, slim_last_error());
            continue;
        }
        r->in_step = e->n_steps + 1;
        i++;
    }
}

/* With a sliding-window pool: keep the longest part of the `cached` prefix
 * tokens attached whose last window of blocks the sliding pool still holds
 * (dropped or evicted ones cannot be recomputed alone); the rest goes. */
static int32_t attach_window(slim_engine *e, request *r, int32_t cached) {
    const int32_t bs = e->p.block_size, w = e->exec.swa_window;
    int32_t k = cached / bs;
    for (; k > 0; k--) {
        const int32_t first = k * bs - w + 1 > 0 ? (k * bs - w + 1) / bs : 0;
        if (slim_kv_pool_attach_window(e->spool, &r->sseq, r->tok, k, first)) break;
    }
    if (k * bs < cached) {
        slim_kv_pool_truncate(e->pool, &r->seq, k * bs);
        slim_kv_pool_unhit(e->pool, cached - k * bs);
    }
    return k * bs;
}

/* Build the step: running requests' decodes first, then their prompt
 * chunks, then waiting requests in arrival order while budget and blocks
 * last (first come, first served: a request that does not fit holds the
 * queue). */
static void build_step(slim_engine *e, step_fill *f) {
    const int32_t max_seqs = e->p.max_seqs;
    add_running(e, f, true);
    add_running(e, f, false);
    const bool cache = e->p.prefix_cache != 0;
    while (e->n_waiting > 0 && f->budget > 0 && f->ns < max_seqs) {
        request *r = e->waiting[0];
        int32_t cached = 0;
        if (cache && !(r->want_plp && !r->plp_done)) {
            cached = slim_kv_pool_attach_prefix(e->pool, &r->seq, r->tok, r->n_tok, r->n_tok - 1);
            if (e->spool) cached = attach_window(e, r, cached);
        }
        const int32_t n = max_fit(e, r, chunk_for(e, r, f));
        if (n == 0) {
            release_kv(e, r);
            if (f->ns == 0 && e->n_running == 0)
                finish(e, r, SLIM_FINISH_CONTEXT, SLIM_OK, "the KV pool cannot hold the request");
            else
                break; /* first come, first served: wait for blocks */
            continue;
        }
        if (!r->admitted) {
            r->admitted = true;
            r->n_cached = cached;
            r->t_admit = now_ms();
        }
        remove_at(e->waiting, &e->n_waiting, 0);
        if (!push(&e->running, &e->n_running, &e->cap_running, r)) {
            r->state = R_RUNNING;
            finish(e, r, SLIM_FINISH_ERROR, SLIM_ERR_NOMEM, "out of memory");
            continue;
        }
        r->state = R_RUNNING;
        slim_status st = add_to_step(e, r, n, f);
        if (st)
            finish(e, r, SLIM_FINISH_ERROR, st, slim_last_error());
        else
            r->in_step = e->n_steps + 1;
    }
}

/* After the step: prompt log-probabilities, KV commits, sampling. */
static void take_results(slim_engine *e, const step_fill *f) {
    const int32_t V = e->n_vocab;
    int32_t row = 0, t = 0;
    for (int32_t k = 0; k < f->ns; k++) {
        request *r = e->s_req[k];
        const int32_t from = e->s_from[k], n = e->s_n[k];
        const float *sample = NULL;
        for (int32_t j = 0; j < n; j++, t++) {
            if (!e->s_want[t]) continue;
            const float *l = e->logits + (size_t)row++ * V;
            const int32_t p = from + j;
            if (r->want_plp && !r->plp_done && p < r->n_prompt - 1) {
                const double lse = log_sum_exp(l, V);
                r->plp[p + 1] = (slim_logprob){r->tok[p + 1], (float)(l[r->tok[p + 1]] - lse)};
                if (r->n_top) top_k(l, V, r->n_top, lse, r->ptop + (size_t)(p + 1) * r->n_top);
            }
            if (p == r->n_tok - 1) sample = l;
        }
        slim_kv_pool_commit(e->pool, &r->seq, r->tok, from + n);
        if (e->spool) {
            /* Queries from here on see positions >= from + n - window + 1. */
            slim_kv_pool_commit(e->spool, &r->sseq, r->tok, from + n);
            slim_kv_pool_drop_before(e->spool, &r->sseq, from + n - e->exec.swa_window + 1);
        }
        if (r->want_plp && from + n >= r->n_prompt) r->plp_done = true;
        if (sample) next_token(e, r, sample);
    }
}

static void run_step(slim_engine *e) {
    /* Cancellations first: their blocks are free for this step. */
    for (size_t i = e->n_running; i-- > 0;)
        if (atomic_load(&e->running[i]->cancel))
            finish(e, e->running[i], SLIM_FINISH_CANCELLED, SLIM_OK, NULL);
    for (size_t i = e->n_waiting; i-- > 0;)
        if (atomic_load(&e->waiting[i]->cancel))
            finish(e, e->waiting[i], SLIM_FINISH_CANCELLED, SLIM_OK, NULL);
    step_fill f = {.budget = e->p.step_tokens};
    build_step(e, &f);
    if (f.nt > 0) {
        const slim_step step = {.n_tokens = f.nt,
                                .tokens = e->s_tok,
                                .pos = e->s_pos,
                                .seq = e->s_seq,
                                .want = e->s_want,
                                .n_seqs = f.ns,
                                .seqs = e->s_seqs,
                                .swa_seqs = e->spool ? e->s_swa : NULL};
        for (int32_t k = 0; k < f.ns; k++) /* masks for after this step, computed during it */
            slim_econ_add(e->econ, e->s_req[k]->sampler);
        slim_econ_kick(e->econ);
        pthread_mutex_lock(&e->step_mu);
        /* Adapter indices as the context numbers them now (a detach between
         * steps shifts them); a request's own adapter cannot go meanwhile. */
        for (int32_t k = 0; k < f.ns; k++)
            if (e->s_req[k]->lora >= 0) e->s_seqs[k].lora = e->loras[e->s_req[k]->lora].ctx_index;
        slim_status st = e->exec.step(e->exec.user, &step, e->logits);
        pthread_mutex_unlock(&e->step_mu);
        if (st) {
            char msg[256];
            snprintf(msg, sizeof msg, "forward step: %s", slim_last_error());
            for (int32_t k = 0; k < f.ns; k++)
                finish(e, e->s_req[k], SLIM_FINISH_ERROR, st, msg);
        } else {
            take_results(e, &f);
        }
    }
    pthread_mutex_lock(&e->mu);
    e->n_steps++;
    snapshot(e);
    pthread_mutex_unlock(&e->mu);
}

static void *engine_main(void *arg) {
    slim_engine *e = arg;
    pthread_mutex_lock(&e->mu);
    for (;;) {
        for (size_t i = 0; i < e->n_inbox; i++)
            if (!push(&e->waiting, &e->n_waiting, &e->cap_waiting, e->inbox[i]))
                atomic_store(&e->inbox[i]->cancel, true); /* cannot queue: report it cancelled */
        e->n_inbox = 0;
        if (e->shutdown) break;
        if (!e->n_waiting && !e->n_running) {
            pthread_cond_wait(&e->work, &e->mu);
            continue;
        }
        pthread_mutex_unlock(&e->mu);
        run_step(e);
        pthread_mutex_lock(&e->mu);
    }
    pthread_mutex_unlock(&e->mu);
    while (e->n_running)
        finish(e, e->running[e->n_running - 1], SLIM_FINISH_CANCELLED, SLIM_OK,
               "the engine was freed");
    while (e->n_waiting)
        finish(e, e->waiting[e->n_waiting - 1], SLIM_FINISH_CANCELLED, SLIM_OK,
               "the engine was freed");
    return NULL;
}

/* ---- the real forward pass -------------------------------------------------- */

static slim_status real_step(void *user, const slim_step *step, float *logits) {
    return slim_forward_step(user, step, logits);
}

static slim_status real_copy(void *user, int32_t dst, int32_t src) {
    slim_kv_copy_block_kind(user, dst, src, false);
    return SLIM_OK;
}

static slim_status real_copy_swa(void *user, int32_t dst, int32_t src) {
    slim_kv_copy_block_kind(user, dst, src, true);
    return SLIM_OK;
}

static slim_status real_attach(void *user, slim_lora *lora, float scale) {
    return slim_context_attach_lora(user, lora, scale);
}

static slim_status real_detach(void *user, slim_lora *lora) {
    return slim_context_detach_lora(user, lora);
}

/* ---- public API ------------------------------------------------------------- */

slim_engine_params slim_engine_default_params(void) {
    return (slim_engine_params){.struct_size = sizeof(slim_engine_params), .prefix_cache = 1};
}

slim_request_params slim_request_default_params(void) {
    return (slim_request_params){.struct_size = sizeof(slim_request_params),
                                 .tokenize_flags = SLIM_TOKENIZE_ADD_BOS,
                                 .max_tokens = 128,
                                 .stop_at_eos = 1,
                                 .lora = -1};
}

static slim_status read_engine_params(const slim_model *model, const slim_engine_params *in,
                                      slim_engine_params *p) {
    *p = slim_engine_default_params();
    if (in) {
        if (in->struct_size < sizeof(size_t) || in->struct_size > sizeof *p)
            return slim_error(SLIM_ERR_INVALID_ARG,
                              "slim_engine_create: params->struct_size %zu is not a known size",
                              in->struct_size);
        memcpy(p, in, in->struct_size);
    }
    const int32_t train = model ? model->hp.n_ctx_train : 1 << 20;
    const char *bad = NULL;
    long long v = 0;
    if (p->n_threads < 0 || p->n_threads > 512)
        bad = "n_threads", v = p->n_threads;
    else if (p->block_size < 0 || p->block_size > 1024)
        bad = "block_size", v = p->block_size;
    else if (p->kv_bytes < 0)
        bad = "kv_bytes", v = p->kv_bytes;
    else if (p->kv_tokens < 0)
        bad = "kv_tokens", v = p->kv_tokens;
    else if (p->step_tokens < 0 || p->step_tokens > 8192)
        bad = "step_tokens", v = p->step_tokens;
    else if (p->max_seqs < 0 || p->max_seqs > 1024)
        bad = "max_seqs", v = p->max_seqs;
    else if (p->max_queue < 0)
        bad = "max_queue", v = p->max_queue;
    else if (p->n_ctx < 0 || p->n_ctx > train)
        bad = "n_ctx", v = p->n_ctx;
    else if (p->kv_type != SLIM_KV_F16 && p->kv_type != SLIM_KV_F32)
        bad = "kv_type", v = p->kv_type;
    if (bad)
        return slim_error(SLIM_ERR_INVALID_ARG,
                          "slim_engine_create: params->%s = %lld is out of range", bad, v);
    if (!p->block_size) p->block_size = 16;
    if (!p->step_tokens) p->step_tokens = 512;
    if (!p->max_seqs) p->max_seqs = 64;
    if (!p->max_queue) p->max_queue = 4096;
    if (!p->n_ctx) p->n_ctx = train < 4096 ? train : 4096;
    if (!p->kv_tokens) p->kv_tokens = 8192;
    p->struct_size = sizeof *p;
    return SLIM_OK;
}

static slim_status engine_start(slim_engine *e) {
    const int32_t T = e->p.step_tokens, S = e->p.max_seqs;
    e->rows_cap = S + LP_EXTRA_ROWS < T ? S + LP_EXTRA_ROWS : T;
    e->s_tok = malloc((size_t)T * sizeof *e->s_tok);
    e->s_pos = malloc((size_t)T * sizeof *e->s_pos);
    e->s_seq = malloc((size_t)T * sizeof *e->s_seq);
    e->s_want = malloc((size_t)T);
    e->s_from = malloc((size_t)S * sizeof *e->s_from);
    e->s_n = malloc((size_t)S * sizeof *e->s_n);
    e->s_seqs = malloc((size_t)S * sizeof *e->s_seqs);
    e->s_swa = malloc((size_t)S * sizeof *e->s_swa);
    e->s_req = malloc((size_t)S * sizeof *e->s_req);
    e->logits = malloc((size_t)e->rows_cap * (size_t)e->n_vocab * sizeof *e->logits);
    e->piece_cap = 256;
    e->piece = malloc(e->piece_cap);
    e->econ = slim_econ_new();
    if (!e->s_tok || !e->s_pos || !e->s_seq || !e->s_want || !e->s_from || !e->s_n || !e->s_seqs ||
        !e->s_swa || !e->s_req || !e->logits || !e->piece || !e->econ)
        return slim_error(SLIM_ERR_NOMEM, "slim_engine_create: out of memory for step buffers");
    slim_status st = slim_kv_pool_create(e->exec.n_blocks, e->p.block_size, e->exec.copy,
                                         e->exec.user, &e->pool);
    if (!st && e->exec.n_swa_blocks > 0)
        st = slim_kv_pool_create(e->exec.n_swa_blocks, e->p.block_size, e->exec.copy_swa,
                                 e->exec.user, &e->spool);
    if (st) return st;
    pthread_mutex_init(&e->mu, NULL);
    pthread_mutex_init(&e->step_mu, NULL);
    pthread_cond_init(&e->work, NULL);
    pthread_cond_init(&e->events, NULL);
    snapshot(e);
    if (slim_thread_start(&e->thread, engine_main, e))
        return slim_error(SLIM_ERR_NOMEM, "slim_engine_create: cannot start the step thread");
    e->started = true;
    return SLIM_OK;
}

slim_status slim_engine_create_exec(const slim_model *model, const slim_engine_params *params,
                                    const slim_engine_exec *exec, slim_engine **out) {
    if (!out) return slim_error(SLIM_ERR_INVALID_ARG, "slim_engine_create: out is NULL");
    *out = NULL;
    slim_engine *e = calloc(1, sizeof *e);
    if (!e) return slim_error(SLIM_ERR_NOMEM, "slim_engine_create: out of memory");
    e->model = model;
    e->exec = *exec;
    e->n_vocab = exec->n_vocab;
    slim_status st = read_engine_params(model, params, &e->p);
    if (!st) st = engine_start(e);
    if (st) {
        slim_engine_free(e);
        return st;
    }
    *out = e;
    return SLIM_OK;
}

slim_status slim_engine_create(const slim_model *model, const slim_engine_params *params,
                               slim_engine **out) {
    if (!out) return slim_error(SLIM_ERR_INVALID_ARG, "slim_engine_create: out is NULL");
    *out = NULL;
    if (!model) return slim_error(SLIM_ERR_INVALID_ARG, "slim_engine_create: model is NULL");
    slim_engine_params p;
    slim_status st = read_engine_params(model, params, &p);
    if (st) return st;
    const slim_hparams *hp = &model->hp;
    const int64_t row_bytes =
        2LL * hp->n_layer * hp->n_head_kv * hp->head_dim * (p.kv_type == SLIM_KV_F32 ? 4 : 2);
    const int64_t tokens = p.kv_bytes ? p.kv_bytes / row_bytes : p.kv_tokens;
    const int64_t n_blocks = tokens / p.block_size;
    if (n_blocks < 1 || n_blocks > (1 << 24))
        return slim_error(SLIM_ERR_INVALID_ARG,
                          "slim_engine_create: a KV budget of %lld tokens gives %lld blocks of %d "
                          "(want 1..2^24)",
                          (long long)tokens, (long long)n_blocks, p.block_size);
    slim_context_params cp = slim_context_default_params();
    cp.n_ctx = p.n_ctx;
    cp.n_threads = p.n_threads;
    cp.n_batch = p.step_tokens;
    cp.kv_type = p.kv_type;
    /* Sliding-window layers need at most their window (plus the block a
     * query sits in and one partly filled) per sequence, plus the step's
     * new tokens: their own pool that size, when it is smaller. */
    int64_t n_swa = 0;
    if (hp->swa_window > 0) {
        const int64_t per_seq = (hp->swa_window - 1 + p.block_size - 1) / p.block_size + 2;
        n_swa = p.max_seqs * per_seq + (p.step_tokens + p.block_size - 1) / p.block_size;
    }
    slim_context *ctx = NULL;
    st = slim_context_create_paged_swa(model, &cp, p.block_size, (int32_t)n_blocks,
                                       n_swa < n_blocks ? (int32_t)n_swa : 0, &ctx);
    if (st) return st;
    const slim_engine_exec exec = {.step = real_step,
                                   .copy = real_copy,
                                   .attach = real_attach,
                                   .detach = real_detach,
                                   .user = ctx,
                                   .n_vocab = hp->n_vocab,
                                   .n_blocks = (int32_t)n_blocks,
                                   .n_swa_blocks = ctx->swa_split ? ctx->n_swa_blocks : 0,
                                   .swa_window = hp->swa_window,
                                   .copy_swa = real_copy_swa};
    st = slim_engine_create_exec(model, &p, &exec, out);
    if (st) {
        slim_context_free(ctx);
        return st;
    }
    (*out)->ctx = ctx;
    slim_log(SLIM_LOG_INFO,
             "engine: %lld KV blocks of %d tokens (sliding-window layers: %d), step budget %d, %d "
             "sequences",
             (long long)n_blocks, p.block_size, ctx->n_swa_blocks, p.step_tokens, p.max_seqs);
    return SLIM_OK;
}

void slim_engine_free(slim_engine *e) {
    if (!e) return;
    if (e->started) {
        pthread_mutex_lock(&e->mu);
        e->shutdown = true;
        pthread_cond_signal(&e->work);
        pthread_mutex_unlock(&e->mu);
        pthread_join(e->thread, NULL);
        pthread_mutex_destroy(&e->mu);
        pthread_mutex_destroy(&e->step_mu);
        pthread_cond_destroy(&e->work);
        pthread_cond_destroy(&e->events);
    }
    slim_econ_free(e->econ);
    for (size_t i = 0; i < e->n_all; i++)
        request_free(e->all[i]);
    free(e->all);
    free(e->inbox);
    free(e->waiting);
    free(e->running);
    free(e->s_tok);
    free(e->s_pos);
    free(e->s_seq);
    free(e->s_want);
    free(e->s_from);
    free(e->s_n);
    free(e->s_seqs);
    free(e->s_swa);
    free(e->s_req);
    free(e->logits);
    free(e->piece);
    free(e->loras);
    slim_kv_pool_free(e->pool);
    slim_kv_pool_free(e->spool);
    slim_context_free(e->ctx);
    free(e);
}

slim_status slim_engine_attach_lora(slim_engine *e, slim_lora *lora, float scale,
                                    int32_t *index_out) {
    if (!e || !lora)
        return slim_error(SLIM_ERR_INVALID_ARG, "slim_engine_attach_lora: engine or lora is NULL");
    if (!e->exec.attach)
        return slim_error(SLIM_ERR_UNSUPPORTED, "slim_engine_attach_lora: no adapters here");
    pthread_mutex_lock(&e->step_mu);
    slim_status st = SLIM_OK;
    int32_t n_ctx = 0; /* adapters attached to the context now */
    for (int32_t i = 0; i < e->n_lora; i++) {
        if (!e->loras[i].lora) continue;
        n_ctx++;
        if (e->loras[i].lora == lora)
            st = slim_error(SLIM_ERR_INVALID_ARG,
                            "slim_engine_attach_lora: the adapter is already attached (index %d)",
                            i);
    }
    lora_slot *v = st ? NULL : realloc(e->loras, (size_t)(e->n_lora + 1) * sizeof *v);
    if (!st && !v) st = slim_error(SLIM_ERR_NOMEM, "slim_engine_attach_lora: out of memory");
    if (!st) {
        pthread_mutex_lock(&e->mu);
        e->loras = v;
        pthread_mutex_unlock(&e->mu);
        st = e->exec.attach(e->exec.user, lora, scale);
    }
    if (!st) {
        pthread_mutex_lock(&e->mu);
        e->loras[e->n_lora] = (lora_slot){.lora = lora, .ctx_index = n_ctx};
        if (index_out) *index_out = e->n_lora;
        e->n_lora++;
        pthread_mutex_unlock(&e->mu);
    }
    pthread_mutex_unlock(&e->step_mu);
    return st;
}

slim_status slim_engine_detach_lora(slim_engine *e, int32_t index, int32_t timeout_ms) {
    if (!e) return slim_error(SLIM_ERR_INVALID_ARG, "slim_engine_detach_lora: engine is NULL");
    if (!e->exec.detach)
        return slim_error(SLIM_ERR_UNSUPPORTED, "slim_engine_detach_lora: no adapters here");
    /* A callback runs on the step thread: waiting there would wait for itself. */
    if (pthread_equal(pthread_self(), e->thread)) timeout_ms = 0;
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    if (timeout_ms > 0) {
        until.tv_sec += timeout_ms / 1000;
        until.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
        if (until.tv_nsec >= 1000000000L) until.tv_sec++, until.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&e->mu);
    if (index < 0 || index >= e->n_lora || !e->loras[index].lora || e->loras[index].closing) {
        const bool known = index >= 0 && index < e->n_lora && e->loras[index].lora;
        pthread_mutex_unlock(&e->mu);
        return slim_error(SLIM_ERR_INVALID_ARG, "slim_engine_detach_lora: adapter %d %s", index,
                          known ? "is being detached by another call" : "is not attached");
    }
    lora_slot *s = &e->loras[index];
    s->closing = true; /* no new request names it from here on */
    while (e->loras[index].users > 0 && timeout_ms != 0) {
        if (timeout_ms < 0)
            pthread_cond_wait(&e->events, &e->mu);
        else if (pthread_cond_timedwait(&e->events, &e->mu, &until))
            break;
    }
    s = &e->loras[index]; /* an attach may have moved the array */
    const int32_t users = s->users;
    if (users > 0) {
        s->closing = false;
        pthread_mutex_unlock(&e->mu);
        return slim_error(SLIM_ERR_BUSY,
                          "slim_engine_detach_lora: %d unfinished request%s use%s "
                          "adapter %d",
                          users, users == 1 ? "" : "s", users == 1 ? "s" : "", index);
    }
    pthread_mutex_unlock(&e->mu);
    /* Between steps: the context's adapter list changes under step_mu. */
    pthread_mutex_lock(&e->step_mu);
    pthread_mutex_lock(&e->mu);
    slim_lora *lora = e->loras[index].lora;
    pthread_mutex_unlock(&e->mu);
    slim_status st = e->exec.detach(e->exec.user, lora);
    pthread_mutex_lock(&e->mu);
    s = &e->loras[index];
    s->closing = false;
    if (!st) {
        s->lora = NULL;
        for (int32_t i = index + 1; i < e->n_lora; i++)
            if (e->loras[i].lora) e->loras[i].ctx_index--;
    }
    pthread_mutex_unlock(&e->mu);
    pthread_mutex_unlock(&e->step_mu);
    return st;
}

/* Build a request from the caller's params (everything copied). */
static slim_status make_request(slim_engine *e, const slim_request_params *p, request **out) {
    const char *fn = "slim_engine_submit";
    if (!p->tokens && !p->prompt)
        return slim_error(SLIM_ERR_INVALID_ARG, "%s: neither tokens nor prompt given", fn);
    if (p->max_tokens < 0)
        return slim_error(SLIM_ERR_INVALID_ARG, "%s: max_tokens %d is negative", fn, p->max_tokens);
    if (p->logprobs < 0 || p->logprobs > MAX_TOP)
        return slim_error(SLIM_ERR_INVALID_ARG, "%s: logprobs %d outside 0..%d", fn, p->logprobs,
                          MAX_TOP);
    if (p->n_stop < 0 || (p->n_stop && !p->stop))
        return slim_error(SLIM_ERR_INVALID_ARG, "%s: n_stop %d with stop %s", fn, p->n_stop,
                          p->stop ? "set" : "NULL");
    for (int32_t i = 0; i < p->n_stop; i++)
        if (!p->stop[i] || !p->stop[i][0])
            return slim_error(SLIM_ERR_INVALID_ARG, "%s: stop string %d is NULL or empty", fn, i);
    if (p->lora < -1)
        return slim_error(SLIM_ERR_INVALID_ARG, "%s: lora %d (an adapter index, or -1: none)", fn,
                          p->lora); /* whether it is attached: at submit, under mu */
    request *r = calloc(1, sizeof *r);
    if (!r) return slim_error(SLIM_ERR_NOMEM, "%s: out of memory", fn);
    slim_status st = SLIM_OK;
    size_t n = p->n_tokens;
    if (p->tokens) {
        if (n == 0) st = slim_error(SLIM_ERR_INVALID_ARG, "%s: tokens given but n_tokens is 0", fn);
    } else if (!e->model) {
        st = slim_error(SLIM_ERR_UNSUPPORTED, "%s: no tokenizer here: give tokens", fn);
    } else {
        st = slim_tokenize(e->model, p->prompt, strlen(p->prompt), p->tokenize_flags, NULL, 0, &n);
        if (!st && n == 0)
            st = slim_error(SLIM_ERR_INVALID_ARG, "%s: the prompt has no tokens", fn);
    }
    if (!st && n >= (size_t)e->p.n_ctx)
        st = slim_error(SLIM_ERR_INVALID_ARG, "%s: %zu prompt tokens do not fit n_ctx %d", fn, n,
                        e->p.n_ctx);
    const int64_t pool_tokens = (int64_t)e->exec.n_blocks * e->p.block_size;
    if (!st && (int64_t)n >= pool_tokens)
        st = slim_error(SLIM_ERR_INVALID_ARG, "%s: %zu prompt tokens do not fit the KV pool (%lld)",
                        fn, n, (long long)pool_tokens);
    if (!st) {
        r->cap = n + (size_t)(p->max_tokens < 64 ? p->max_tokens : 64) + 1;
        if (!(r->tok = malloc(r->cap * sizeof *r->tok)))
            st = slim_error(SLIM_ERR_NOMEM, "%s: out of memory", fn);
    }
    if (!st && p->tokens) {
        for (size_t i = 0; i < n && !st; i++)
            if (p->tokens[i] < 0 || p->tokens[i] >= e->n_vocab)
                st = slim_error(SLIM_ERR_INVALID_ARG, "%s: token %zu has id %d outside 0..%d", fn,
                                i, p->tokens[i], e->n_vocab - 1);
        if (!st) memcpy(r->tok, p->tokens, n * sizeof *r->tok);
    } else if (!st) {
        st =
            slim_tokenize(e->model, p->prompt, strlen(p->prompt), p->tokenize_flags, r->tok, n, &n);
    }
    if (!st) {
        slim_sampler_params sp = slim_sampler_default_params();
        sp.temperature = 0; /* greedy unless the caller's params say otherwise */
        st = slim_sampler_create(p->sampling ? p->sampling : &sp, &r->sampler);
        if (!st) st = slim_sampler_check_vocab(r->sampler, e->n_vocab, fn);
    }
    if (!st && p->n_stop && !(r->stop = calloc((size_t)p->n_stop, sizeof *r->stop)))
        st = slim_error(SLIM_ERR_NOMEM, "%s: out of memory", fn);
    for (int32_t i = 0; !st && i < p->n_stop; i++, r->n_stop++)
        if (!(r->stop[i] = strdup(p->stop[i])))
            st = slim_error(SLIM_ERR_NOMEM, "%s: out of memory", fn);
    r->n_prompt = r->n_tok = (int32_t)n;
    r->n_top = p->logprobs;
    r->want_plp = p->prompt_logprobs != 0;
    if (!st && r->want_plp) {
        r->plp = calloc(n, sizeof *r->plp);
        r->ptop = calloc(n * (size_t)(r->n_top ? r->n_top : 1), sizeof *r->ptop);
        if (!r->plp || !r->ptop)
            st = slim_error(SLIM_ERR_NOMEM, "%s: out of memory", fn);
        else
            r->plp[0] = (slim_logprob){r->tok[0], 0};
    }
    if (st) {
        request_free(r);
        return st;
    }
    for (int32_t i = 0; i < r->n_prompt; i++)
        slim_sampler_accept_prompt(r->sampler, r->tok[i]);
    if ((st = slim_econ_attach(r->sampler, p, e->n_vocab))) {
        request_free(r);
        return st;
    }
    r->max_tokens = p->max_tokens;
    r->stop_at_eos = p->stop_at_eos != 0;
    r->lora = p->lora;
    r->on_event = p->on_event;
    r->user = p->user;
    slim_kv_seq_init(&r->seq, (uint64_t)(p->lora + 1));
    slim_kv_seq_init(&r->sseq, (uint64_t)(p->lora + 1));
    r->state = R_WAITING;
    *out = r;
    return SLIM_OK;
}

slim_status slim_engine_submit(slim_engine *e, const slim_request_params *params,
                               uint64_t *id_out) {
    if (!e || !params || !id_out)
        return slim_error(SLIM_ERR_INVALID_ARG,
                          "slim_engine_submit: engine, params or id_out is NULL");
    *id_out = 0;
    slim_request_params p = slim_request_default_params();
    if (params->struct_size < sizeof(size_t) || params->struct_size > sizeof p)
        return slim_error(SLIM_ERR_INVALID_ARG,
                          "slim_engine_submit: params->struct_size %zu is not a known size",
                          params->struct_size);
    memcpy(&p, params, params->struct_size);
    request *r = NULL;
    slim_status st = make_request(e, &p, &r);
    if (st) return st;
    pthread_mutex_lock(&e->mu);
    if (r->lora >= 0 &&
        (r->lora >= e->n_lora || !e->loras[r->lora].lora || e->loras[r->lora].closing)) {
        const int32_t n_lora = e->n_lora;
        pthread_mutex_unlock(&e->mu);
        request_free(r);
        return slim_error(SLIM_ERR_INVALID_ARG,
                          "slim_engine_submit: lora %d is not attached (%d indices given out)",
                          p.lora, n_lora);
    }
    if (e->n_all >= (size_t)e->p.max_queue) {
        pthread_mutex_unlock(&e->mu);
        request_free(r);
        return slim_error(SLIM_ERR_BUSY,
                          "slim_engine_submit: the queue is full (%d unfinished requests)",
                          e->p.max_queue);
    }
    r->id = ++e->next_id;
    r->t_submit = now_ms();
    if (!push(&e->all, &e->n_all, &e->cap_all, r)) {
        st = slim_error(SLIM_ERR_NOMEM, "slim_engine_submit: out of memory");
    } else if (!push(&e->inbox, &e->n_inbox, &e->cap_inbox, r)) {
        e->n_all--;
        st = slim_error(SLIM_ERR_NOMEM, "slim_engine_submit: out of memory");
    }
    if (!st) {
        *id_out = r->id;
        if (r->lora >= 0) {
            e->loras[r->lora].users++;
            r->counted = true;
        }
        pthread_cond_signal(&e->work);
    }
    pthread_mutex_unlock(&e->mu);
    if (st) request_free(r);
    return st;
}

static void copy_event(slim_event *dst, const slim_event *src) {
    const size_t keep = dst->struct_size;
    memcpy(dst, src, keep);
    dst->struct_size = keep;
}

slim_status slim_engine_poll(slim_engine *e, uint64_t id, int32_t timeout_ms, slim_event *ev) {
    if (!e || !ev)
        return slim_error(SLIM_ERR_INVALID_ARG, "slim_engine_poll: engine or event is NULL");
    if (ev->struct_size < offsetof(slim_event, token) || ev->struct_size > sizeof *ev)
        return slim_error(SLIM_ERR_INVALID_ARG,
                          "slim_engine_poll: event->struct_size %zu is not a known size",
                          ev->struct_size);
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    if (timeout_ms > 0) {
        until.tv_sec += timeout_ms / 1000;
        until.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
        if (until.tv_nsec >= 1000000000L) until.tv_sec++, until.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&e->mu);
    slim_status st = SLIM_OK;
    request *r = find(e, id, NULL);
    if (!r)
        st = slim_error(SLIM_ERR_INVALID_ARG, "slim_engine_poll: no request %llu",
                        (unsigned long long)id);
    else if (r->on_event)
        st = slim_error(SLIM_ERR_INVALID_ARG,
                        "slim_engine_poll: request %llu reports through its callback",
                        (unsigned long long)id);
    while (!st && !r->q_head) {
        if (r->done_queued) {
            st = slim_error(SLIM_ERR_INVALID_ARG,
                            "slim_engine_poll: request %llu has finished: release it",
                            (unsigned long long)id);
            break;
        }
        if (timeout_ms == 0) break;
        if (timeout_ms < 0)
            pthread_cond_wait(&e->events, &e->mu);
        else if (pthread_cond_timedwait(&e->events, &e->mu, &until))
            break;
        if (!(r = find(e, id, NULL))) /* released by another thread meanwhile */
            st = slim_error(SLIM_ERR_INVALID_ARG, "slim_engine_poll: request %llu was released",
                            (unsigned long long)id);
    }
    if (!st) {
        ev_node *n = r->q_head;
        if (n) {
            r->q_head = n->next;
            if (!r->q_head) r->q_tail = NULL;
            free_node(r->current);
            r->current = n;
            copy_event(ev, &n->ev);
        } else {
            const slim_event none = {
                .type = SLIM_EVENT_NONE, .request = id, .piece = "", .error = ""};
            copy_event(ev, &none);
        }
    }
    pthread_mutex_unlock(&e->mu);
    return st;
}

slim_status slim_engine_cancel(slim_engine *e, uint64_t id) {
    if (!e) return slim_error(SLIM_ERR_INVALID_ARG, "slim_engine_cancel: engine is NULL");
    pthread_mutex_lock(&e->mu);
    request *r = find(e, id, NULL);
    if (r) {
        atomic_store(&r->cancel, true);
        pthread_cond_signal(&e->work);
    }
    pthread_mutex_unlock(&e->mu);
    return r ? SLIM_OK
             : slim_error(SLIM_ERR_INVALID_ARG, "slim_engine_cancel: no request %llu",
                          (unsigned long long)id);
}

slim_status slim_engine_release(slim_engine *e, uint64_t id) {
    if (!e) return slim_error(SLIM_ERR_INVALID_ARG, "slim_engine_release: engine is NULL");
    pthread_mutex_lock(&e->mu);
    size_t i = 0;
    request *r = find(e, id, &i);
    if (r && r->on_event) {
        atomic_store(&r->cancel, true); /* released after its final callback */
    } else if (r && r->done_queued) {
        remove_at(e->all, &e->n_all, i);
        request_free(r);
    } else if (r) {
        r->released = true; /* the step thread frees it when it finishes */
        atomic_store(&r->cancel, true);
        pthread_cond_signal(&e->work);
    }
    pthread_cond_broadcast(&e->events);
    pthread_mutex_unlock(&e->mu);
    return r ? SLIM_OK
             : slim_error(SLIM_ERR_INVALID_ARG, "slim_engine_release: no request %llu",
                          (unsigned long long)id);
}

slim_status slim_engine_get_stats(slim_engine *e, slim_engine_stats *stats) {
    if (!e || !stats)
        return slim_error(SLIM_ERR_INVALID_ARG, "slim_engine_get_stats: engine or stats is NULL");
    if (stats->struct_size < sizeof(size_t) || stats->struct_size > sizeof *stats)
        return slim_error(SLIM_ERR_INVALID_ARG,
                          "slim_engine_get_stats: stats->struct_size %zu is not a known size",
                          stats->struct_size);
    pthread_mutex_lock(&e->mu);
    slim_engine_stats s = e->snap;
    pthread_mutex_unlock(&e->mu);
    const size_t keep = stats->struct_size;
    memcpy(stats, &s, keep);
    stats->struct_size = keep;
    return SLIM_OK;
}

/* ---- the step-level call ---------------------------------------------------- */

slim_status slim_paged_context_create(const slim_model *model, const slim_context_params *params,
                                      int32_t block_size, int32_t n_blocks, slim_context **out) {
    if (!out) return slim_error(SLIM_ERR_INVALID_ARG, "slim_paged_context_create: out is NULL");
    *out = NULL;
    if (!model) return slim_error(SLIM_ERR_INVALID_ARG, "slim_paged_context_create: model is NULL");
    if (block_size < 1 || block_size > 1024 || n_blocks < 1 || n_blocks > (1 << 24))
        return slim_error(SLIM_ERR_INVALID_ARG,
                          "slim_paged_context_create: %d blocks of %d tokens (want 1..2^24 blocks "
                          "of 1..1024)",
                          n_blocks, block_size);
    return slim_context_create_paged(model, params, block_size, n_blocks, out);
}

slim_status slim_paged_step(slim_context *ctx, const slim_paged_batch *batch, float *logits) {
    if (!ctx || !batch)
        return slim_error(SLIM_ERR_INVALID_ARG, "slim_paged_step: ctx or batch is NULL");
    if (batch->struct_size < offsetof(slim_paged_batch, seqs) + sizeof batch->seqs ||
        batch->struct_size > sizeof *batch)
        return slim_error(SLIM_ERR_INVALID_ARG,
                          "slim_paged_step: batch->struct_size %zu is not a known size",
                          batch->struct_size);
    if (batch->n_seqs < 1 || batch->n_seqs > (1 << 20) || !batch->seqs)
        return slim_error(SLIM_ERR_INVALID_ARG, "slim_paged_step: %d sequences (seqs %s)",
                          batch->n_seqs, batch->seqs ? "set" : "NULL");
    slim_step_seq small[16], *seqs = small;
    if (batch->n_seqs > 16 && !(seqs = malloc((size_t)batch->n_seqs * sizeof *seqs)))
        return slim_error(SLIM_ERR_NOMEM, "slim_paged_step: out of memory");
    slim_status st = SLIM_OK;
    for (int32_t i = 0; i < batch->n_seqs && !st; i++) {
        const slim_paged_seq *q = &batch->seqs[i];
        if (q->lora < -1)
            st = slim_error(SLIM_ERR_INVALID_ARG,
                            "slim_paged_step: sequence %d: lora %d (an adapter index or -1)", i,
                            q->lora);
        seqs[i] = (slim_step_seq){.blocks = q->blocks,
                                  .n_blocks = q->n_blocks,
                                  .lora = q->lora < 0 ? SLIM_STEP_LORA_NONE : q->lora};
    }
    if (!st) {
        const slim_step step = {.n_tokens = batch->n_tokens,
                                .tokens = batch->tokens,
                                .pos = batch->pos,
                                .seq = batch->seq,
                                .want = batch->want,
                                .n_seqs = batch->n_seqs,
                                .seqs = seqs};
        st = slim_forward_step(ctx, &step, logits);
    }
    if (seqs != small) free(seqs);
    return st;
}

slim_status slim_paged_copy_block(slim_context *ctx, int32_t dst, int32_t src) {
    if (!ctx) return slim_error(SLIM_ERR_INVALID_ARG, "slim_paged_copy_block: ctx is NULL");
    if (dst < 0 || dst >= ctx->n_kv_blocks || src < 0 || src >= ctx->n_kv_blocks)
        return slim_error(SLIM_ERR_INVALID_ARG,
                          "slim_paged_copy_block: blocks %d <- %d: outside 0..%d", dst, src,
                          ctx->n_kv_blocks - 1);
    if (dst != src) slim_kv_copy_block(ctx, dst, src);
    return SLIM_OK;
}
