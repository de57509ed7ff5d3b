/* slim eval: one candidate over the task's items, in process.
 *  - classify: label scoring.  Each worker (one per unit of concurrency) owns
 *    a slim_context: an item's prompt is prefilled after the tokens it shares
 *    with the worker's last prompt, then slim_score scores every label as one
 *    token trie (a label's score: the sum of its tokens' log-probabilities).
 *    score_labels() is the one place that does it.
 *  - extract / generate: greedy generation on the batched engine with
 *    `concurrency` requests in flight; extract's constrained to the task's
 *    JSON Schema. */
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "eval.h"

int eval_pick_label(const eval_task *t, const double *scores, double *conf) {
    int best = 0;
    for (int l = 1; l < t->n_labels; l++)
        if (scores[l] > scores[best]) best = l;
    double z = 0;
    for (int l = 0; l < t->n_labels; l++)
        z += exp(scores[l] - scores[best]);
    *conf = 1.0 / z;
    return best;
}

static char *dupstr(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

/* The top EVAL_TOP log-probabilities of a logits row. */
static void top_of(const float *logits, int n_vocab, double lse, slim_logprob *top, int *n_top) {
    int n = 0;
    for (int v = 0; v < n_vocab; v++) {
        if (n == EVAL_TOP && logits[v] <= top[n - 1].logprob) continue;
        int j = n < EVAL_TOP ? n++ : n - 1;
        while (j > 0 && top[j - 1].logprob < logits[v])
            top[j] = top[j - 1], j--;
        top[j] = (slim_logprob){v, logits[v]};
    }
    for (int j = 0; j < n; j++)
        top[j].logprob = (float)(top[j].logprob - lse);
    *n_top = n;
}

static double logsumexp(const float *x, int n) {
    float m = x[0];
    for (int i = 1; i < n; i++)
        m = x[i] > m ? x[i] : m;
    double s = 0;
    for (int i = 0; i < n; i++)
        s += exp((double)x[i] - m);
    return m + log(s);
}

/* ---- classification by label scoring --------------------------------------------------------- */
typedef struct toks {
    slim_token *v;
    int n;
} toks;

typedef struct worker_ctx {
    const eval_task *t;
    const slim_model *model;
    slim_context *ctx;
    int n_vocab;
    toks prev;                  /* the tokens the context holds (the last item's prompt) */
    slim_score_result *results; /* [n_labels] */
    int check;                  /* SLIM_EVAL_CHECK_SCORING */
    double check_max;           /* the largest difference it found */
} worker_ctx;

static slim_status tokenize(const slim_model *m, const char *s, uint32_t flags, toks *out) {
    size_t n = 0;
    slim_status st = slim_tokenize(m, s, strlen(s), flags, NULL, 0, &n);
    if (st) return st;
    out->v = malloc((n ? n : 1) * sizeof *out->v);
    if (!out->v) return SLIM_ERR_NOMEM;
    out->n = (int)n;
    return slim_tokenize(m, s, strlen(s), flags, out->v, n, &n);
}

/* log-sum-exp as lib/runtime/score.c computes it (float max, expf, double sum),
 * so that the check below compares logits, not two roundings of them */
static double lse_as_score(const float *l, int n) {
    float m = -INFINITY;
    for (int i = 0; i < n; i++)
        m = l[i] > m ? l[i] : m;
    double s = 0;
    for (int i = 0; i < n; i++)
        s += expf(l[i] - m);
    return m + log(s);
}

/* SLIM_EVAL_CHECK_SCORING=1 (tests/eval/run.sh): every label again from one whole
 * prefill of prompt + label, against slim_score's trie over the cached prompt. */
static slim_status check_scores(worker_ctx *w, const toks *p, char *const *cands,
                                const eval_result *res) {
    slim_status st = SLIM_OK;
    for (int l = 0; !st && l < w->t->n_labels; l++) {
        toks lab = {0};
        if ((st = tokenize(w->model, cands[l], 0, &lab))) break;
        size_t n = (size_t)p->n + (size_t)lab.n - 1;
        slim_token *all = malloc(n * sizeof *all);
        float *buf = malloc(n * (size_t)w->n_vocab * sizeof *buf);
        if (!all || !buf || !lab.n) st = all && buf ? SLIM_ERR_INVALID_ARG : SLIM_ERR_NOMEM;
        if (!st) {
            memcpy(all, p->v, (size_t)p->n * sizeof *all);
            memcpy(all + p->n, lab.v, (size_t)(lab.n - 1) * sizeof *all);
            slim_context_reset(w->ctx);
            st = slim_prefill(w->ctx, all, n, buf);
        }
        double s = 0; /* summed last token first, as slim_score does */
        for (int j = lab.n - 1; !st && j >= 0; j--) {
            const float *row = buf + (size_t)(p->n - 1 + j) * (size_t)w->n_vocab;
            s += (float)((double)row[lab.v[j]] - lse_as_score(row, w->n_vocab));
        }
        if (!st && fabs(s - res->scores[l]) > w->check_max) w->check_max = fabs(s - res->scores[l]);
        free(all), free(buf), free(lab.v);
    }
    return st;
}

/* Score every label after item i's prompt into res->scores: the prompt is
 * prefilled after the part it shares with the last item's (the instruction and
 * few-shot examples), then slim_score runs the labels as one token trie. */
static slim_status score_labels(worker_ctx *w, int i, eval_result *res) {
    const eval_task *t = w->t;
    char *prefix = NULL;
    double t0 = cli_now_s();
    char *prompt = eval_prompt(t, w->model, &t->items[i], &prefix);
    toks p = {0};
    char **cands = calloc((size_t)t->n_labels, sizeof *cands);
    slim_status st = prompt && prefix && cands ? SLIM_OK : SLIM_ERR_NOMEM;
    uint32_t flags = SLIM_TOKENIZE_ADD_BOS | (t->chat ? SLIM_TOKENIZE_PARSE_SPECIAL : 0);
    if (!st) st = tokenize(w->model, prompt, flags, &p);
    if (!st && p.n == 0) st = SLIM_ERR_INVALID_ARG;
    int n_prompt = p.n;
    for (int l = 0; !st && l < t->n_labels; l++) {
        size_t n = strlen(prefix) + strlen(t->labels[l]) + strlen(t->label_suffix) + 1;
        if (!(cands[l] = malloc(n))) st = SLIM_ERR_NOMEM;
        if (!st) snprintf(cands[l], n, "%s%s%s", prefix, t->labels[l], t->label_suffix);
    }
    if (!st) {
        int keep = 0;
        while (keep < w->prev.n && keep < p.n && w->prev.v[keep] == p.v[keep])
            keep++;
        if (keep == p.n) keep--; /* at least one token prefilled: its logits are the first row */
        st = keep ? slim_context_truncate(w->ctx, keep) : (slim_context_reset(w->ctx), SLIM_OK);
        if (!st) st = slim_prefill(w->ctx, p.v + keep, (size_t)(p.n - keep), NULL);
        free(w->prev.v);
        w->prev = st ? (toks){0} : p;
        if (!st) p = (toks){0}; /* owned by w->prev now */
    }
    if (!st) {
        const float *logits = slim_get_logits(w->ctx);
        res->ttft_ms = (cli_now_s() - t0) * 1e3;
        top_of(logits, w->n_vocab, logsumexp(logits, w->n_vocab), res->top, &res->n_top);
        slim_score_output so = {.struct_size = sizeof so, .results = w->results};
        st = slim_score(w->ctx, (const char *const *)cands, (size_t)t->n_labels, NULL, &so);
        for (int l = 0; !st && l < t->n_labels; l++)
            res->scores[l] = w->results[l].logprob;
    }
    if (!st && w->check) {
        st = check_scores(w, &w->prev, cands, res);
        /* back to the prompt's rows, so the next item reuses its prefix as unchecked runs do */
        if (!st) st = slim_context_truncate(w->ctx, w->prev.n);
    }
    if (!st) {
        double conf;
        int best = eval_pick_label(t, res->scores, &conf);
        res->output = dupstr(t->labels[best]);
        res->conf = conf;
        res->n_prompt = n_prompt;
        res->e2e_ms = (cli_now_s() - t0) * 1e3;
        if (!res->output) st = SLIM_ERR_NOMEM;
    }
    if (st) w->prev.n = 0; /* unknown contents: prefill the next prompt whole */
    for (int l = 0; cands && l < t->n_labels; l++)
        free(cands[l]);
    free(cands), free(p.v), free(prompt), free(prefix);
    return st;
}

typedef struct pool {
    const eval_task *t;
    const slim_model *model;
    slim_lora *lora;
    eval_cand_run *r;
    int n_threads;
    pthread_mutex_t mu;
    int next, n_done;
    slim_status st;
    char err[512];
    int check;
    double check_max;
} pool;

static void *classify_worker(void *arg) {
    pool *pl = arg;
    slim_context_params cp = slim_context_default_params();
    cp.n_threads = pl->n_threads;
    slim_model_info info = {.struct_size = sizeof info};
    const char *chk = getenv("SLIM_EVAL_CHECK_SCORING");
    worker_ctx w = {.t = pl->t, .model = pl->model, .check = chk && *chk && *chk != '0'};
    w.results = calloc((size_t)pl->t->n_labels, sizeof *w.results);
    slim_status st = w.results ? slim_model_get_info(pl->model, &info) : SLIM_ERR_NOMEM;
    w.n_vocab = info.n_vocab;
    if (!st) st = slim_context_create(pl->model, &cp, &w.ctx);
    if (!st && pl->lora)
        st = slim_context_attach_lora(w.ctx, pl->lora, (float)pl->t->cands[0].lora_scale);
    for (;;) {
        pthread_mutex_lock(&pl->mu);
        if (st && !pl->st) {
            pl->st = st;
            snprintf(pl->err, sizeof pl->err, "%s", slim_last_error());
        }
        int i = pl->st || cli_sigint ? pl->t->n_items : pl->next;
        while (i < pl->t->n_items && pl->r->res[i].done)
            i++;
        pl->next = i + 1;
        pthread_mutex_unlock(&pl->mu);
        if (i >= pl->t->n_items) break;
        eval_result *res = &pl->r->res[i];
        if (!res->scores) res->scores = calloc((size_t)pl->t->n_labels, sizeof *res->scores);
        st = res->scores ? score_labels(&w, i, res) : SLIM_ERR_NOMEM;
        if (!st) eval_score_item(pl->t, i, res);
        pthread_mutex_lock(&pl->mu); /* done is read under the lock by the progress writer */
        res->done = !st;
        pl->n_done += !st;
        pthread_mutex_unlock(&pl->mu);
    }
    pthread_mutex_lock(&pl->mu);
    pl->check_max = w.check_max > pl->check_max ? w.check_max : pl->check_max;
    pl->check |= w.check;
    pthread_mutex_unlock(&pl->mu);
    slim_context_free(w.ctx);
    free(w.results), free(w.prev.v);
    return NULL;
}

/* ---- extraction and generation on the engine ---------------------------------------------------
 */
typedef struct gen_state {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int in_flight, n_done;
    slim_status st;
    char err[512];
} gen_state;

typedef struct gen_req {
    gen_state *g;
    const eval_task *t;
    int item;
    eval_result *res;
    int first;
} gen_req;

static int on_gen_event(const slim_event *ev, void *user) {
    gen_req *q = user;
    eval_result *res = q->res;
    if (ev->type == SLIM_EVENT_TOKEN) {
        if (q->first && ev->n_top > 0) {
            res->n_top = ev->n_top < EVAL_TOP ? ev->n_top : EVAL_TOP;
            memcpy(res->top, ev->top, (size_t)res->n_top * sizeof *res->top);
        }
        q->first = 0;
        return 0;
    }
    pthread_mutex_lock(&q->g->mu);
    if (ev->finish_reason == SLIM_FINISH_ERROR || ev->finish_reason == SLIM_FINISH_CONTEXT) {
        if (!q->g->st) {
            q->g->st = ev->status ? ev->status : SLIM_ERR_CONTEXT_FULL;
            snprintf(q->g->err, sizeof q->g->err, "%s",
                     ev->error && *ev->error ? ev->error : "the prompt does not fit");
        }
    } else if (ev->finish_reason != SLIM_FINISH_CANCELLED) {
        res->output = malloc(ev->text_len + 1);
        if (res->output) {
            memcpy(res->output, ev->text, ev->text_len);
            res->output[ev->text_len] = 0;
        }
        res->ttft_ms = ev->ttft_ms;
        res->e2e_ms = ev->total_ms;
        res->n_prompt = ev->n_prompt;
        res->n_out = ev->n_completion;
        if (res->output) eval_score_item(q->t, q->item, res);
        res->done = res->output != NULL;
    }
    q->g->in_flight--;
    q->g->n_done++;
    pthread_cond_signal(&q->g->cv);
    pthread_mutex_unlock(&q->g->mu);
    free(q);
    return 0;
}

static int run_generate(const eval_task *t, const slim_model *model, slim_lora *lora,
                        eval_cand_run *r, eval_progress_fn progress, void *user) {
    slim_engine_params ep = slim_engine_default_params();
    ep.n_threads = t->threads;
    ep.max_seqs = t->concurrency;
    slim_engine *engine = NULL;
    int32_t lora_idx = -1;
    slim_status st = slim_engine_create(model, &ep, &engine);
    if (!st && lora)
        st = slim_engine_attach_lora(engine, lora, (float)t->cands[0].lora_scale, &lora_idx);
    /* extract: generation constrained to the task's JSON Schema (compact JSON,
     * members in the schema's order); the requests hold references */
    slim_constraint *schema = NULL;
    if (!st && t->kind == EVAL_EXTRACT && t->schema) {
        sbuf sb = {0};
        sb_json(&sb, t->schema);
        st = sb.p ? slim_constraint_compile(model, SLIM_CONSTRAINT_JSON_SCHEMA, sb.p, sb.n, NULL,
                                            &schema)
                  : SLIM_ERR_NOMEM;
        sb_free(&sb);
        if (st) {
            slim_engine_free(engine);
            return cli_fail("eval: the task's schema", st);
        }
    }
    if (st) {
        slim_engine_free(engine);
        return cli_fail("eval: engine", st);
    }
    gen_state g = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};
    int total = t->n_items, done0 = 0;
    for (int i = 0; i < total; i++)
        done0 += r->res[i].done;
    int i = 0;
    pthread_mutex_lock(&g.mu);
    for (;;) {
        while (i < total && r->res[i].done)
            i++;
        if (i < total && g.in_flight < t->concurrency && !g.st && !cli_sigint) {
            pthread_mutex_unlock(&g.mu);
            char *prefix = NULL;
            char *prompt = eval_prompt(t, model, &t->items[i], &prefix);
            gen_req *q = calloc(1, sizeof *q);
            slim_request_params rp = slim_request_default_params();
            rp.prompt = prompt;
            rp.tokenize_flags = SLIM_TOKENIZE_ADD_BOS | (t->chat ? SLIM_TOKENIZE_PARSE_SPECIAL : 0);
            rp.max_tokens = t->max_tokens;
            rp.stop = (const char *const *)t->stop;
            rp.n_stop = t->n_stop;
            rp.logprobs = EVAL_TOP;
            rp.lora = lora_idx;
            rp.constraint = schema;
            rp.on_event = on_gen_event;
            rp.user = q;
            uint64_t id;
            if (q) *q = (gen_req){&g, t, i, &r->res[i], 1};
            pthread_mutex_lock(&g.mu);
            g.in_flight++;
            pthread_mutex_unlock(&g.mu);
            st = prompt && q ? slim_engine_submit(engine, &rp, &id) : SLIM_ERR_NOMEM;
            free(prompt), free(prefix);
            pthread_mutex_lock(&g.mu);
            if (st) {
                g.in_flight--;
                free(q);
                if (!g.st) {
                    g.st = st;
                    snprintf(g.err, sizeof g.err, "%s", slim_last_error());
                }
            }
            i++;
            continue;
        }
        if (g.in_flight == 0 && (i >= total || g.st || cli_sigint)) break;
        pthread_cond_wait(&g.cv, &g.mu);
        if (progress) progress(done0 + g.n_done, total, user); /* under the lock: reads done */
    }
    pthread_mutex_unlock(&g.mu);
    slim_engine_free(engine);
    slim_constraint_free(schema);
    r->n_run = g.n_done;
    if (g.st) {
        fprintf(stderr, "slim eval: %s: %s: %s\n", t->cands[0].name, slim_status_string(g.st),
                g.err);
        return 1;
    }
    return 0;
}

/* ---- a candidate ------------------------------------------------------------------------------
 */
static double peak_rss_mb(void) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    double kb = -1;
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, "VmHWM:", 6)) kb = atof(line + 6);
    if (f) fclose(f);
    return kb / 1024.0;
}

static void reset_peak(void) {
    FILE *f = fopen("/proc/self/clear_refs", "w"); /* "5": reset the peak RSS (Linux 4.0) */
    if (f) fputs("5", f), fclose(f);
}

int eval_run_candidate(const eval_task *t0, int c, eval_cand_run *r, eval_progress_fn progress,
                       void *user) {
    eval_task tc = *t0; /* this candidate first: workers read cands[0] */
    tc.cands = &t0->cands[c];
    const eval_task *t = &tc;
    const eval_candidate *cand = &t0->cands[c];
    int pending = 0;
    for (int i = 0; i < t->n_items; i++)
        pending += !r->res[i].done;
    if (!pending) return 0;
    if (cand->endpoint) {
        slim_model *tok = NULL; /* the tokenizer and chat template: the task's first model */
        slim_status ts = cand->model ? slim_model_load(cand->model, NULL, &tok) : SLIM_OK;
        if (ts) return cli_fail(cand->model, ts);
        if (!tok && (t->kind == EVAL_CLASSIFY || t->chat)) {
            fprintf(stderr,
                    "slim eval: %s: label scoring and chat prompts need a candidate "
                    "model file for the tokenizer\n",
                    cand->name);
            return 1;
        }
        double ts0 = cli_now_s();
        int rc = eval_run_endpoint(t, tok, r, progress, user);
        r->sess_wall_s = cli_now_s() - ts0;
        r->wall_s += r->sess_wall_s;
        slim_model_free(tok);
        return rc;
    }
    reset_peak();
    double tl = cli_now_s();
    slim_model_params mp = slim_model_default_params();
    mp.weight_type = cand->weight_type;
    slim_model *model = NULL;
    slim_lora *lora = NULL;
    slim_status st = slim_model_load(cand->model, &mp, &model);
    if (st) return cli_fail(cand->model, st);
    if (cand->lora && (st = slim_lora_load(model, cand->lora, &lora))) {
        slim_model_free(model);
        return cli_fail(cand->lora, st);
    }
    r->load_s = cli_now_s() - tl;
    double t_start = cli_now_s();
    int rc = 0;
    if (t->kind == EVAL_CLASSIFY) {
        pool pl = {.t = t, .model = model, .lora = lora, .r = r, .mu = PTHREAD_MUTEX_INITIALIZER};
        long n_cpu = sysconf(_SC_NPROCESSORS_ONLN);
        int threads = t->threads > 0 ? t->threads : (int)(n_cpu > 0 ? n_cpu : 1);
        pl.n_threads = threads / t->concurrency > 0 ? threads / t->concurrency : 1;
        pthread_t *th = calloc((size_t)t->concurrency, sizeof *th);
        int n_th = 0;
        for (int k = 0; th && k < t->concurrency; k++)
            if (!pthread_create(&th[k], NULL, classify_worker, &pl)) n_th++;
        for (;;) {
            pthread_mutex_lock(&pl.mu);
            int d = pl.n_done, over = pl.next >= t->n_items || pl.st;
            if (progress) progress(t->n_items - pending + d, t->n_items, user);
            pthread_mutex_unlock(&pl.mu);
            if (over || cli_sigint) break;
            usleep(200 * 1000);
        }
        for (int k = 0; k < n_th; k++)
            pthread_join(th[k], NULL);
        free(th);
        r->n_run = pl.n_done;
        if (progress) progress(t->n_items - pending + pl.n_done, t->n_items, user);
        if (pl.check)
            fprintf(stderr,
                    "slim eval: %s: scoring check: %d items, max |difference| from whole "
                    "prefills %.3g\n",
                    cand->name, pl.n_done, pl.check_max);
        if (pl.st || !n_th) {
            fprintf(stderr, "slim eval: %s: %s: %s\n", cand->name,
                    slim_status_string(pl.st ? pl.st : SLIM_ERR_NOMEM), pl.err);
            rc = 1;
        }
    } else {
        rc = run_generate(t, model, lora, r, progress, user);
    }
    r->sess_wall_s = cli_now_s() - t_start;
    r->wall_s += r->sess_wall_s;
    r->sess_peak_mb = peak_rss_mb();
    r->peak_mb = r->sess_peak_mb > r->peak_mb ? r->sess_peak_mb : r->peak_mb;
    slim_lora_free(lora);
    slim_model_free(model);
    return rc;
}
