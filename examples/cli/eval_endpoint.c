/* slim eval --endpoint URL: the same task over an OpenAI-compatible server's
 * /v1/completions (slim serve, llama.cpp's server, vLLM, ...), through libcurl
 * when the build found it (`make` defines SLIM_CLI_CURL; docs/DEPENDENCIES.md).
 *  - classify: one request per label, the prompt sent as token ids (tokenized
 *    here with the task's first candidate's model, so the server sees exactly
 *    the tokens the in-process run scores), echo + logprobs + max_tokens 0; the
 *    label's score is the sum of the last label-length prompt log-probabilities;
 *  - extract / generate: the prompt text, greedy (temperature 0), the stop
 *    strings; TTFT is the whole request's time (no streaming).
 * `concurrency` threads, each with its own connection. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "eval.h"

#ifndef SLIM_CLI_CURL
int eval_run_endpoint(const eval_task *t, const slim_model *model, eval_cand_run *r,
                      eval_progress_fn progress, void *user) {
    (void)model, (void)r, (void)progress, (void)user;
    fprintf(stderr,
            "slim eval: %s: this slim was built without libcurl (libcurl4-openssl-dev), "
            "so it has no --endpoint\n",
            t->cands[0].name);
    return 1;
}
#else
#include <curl/curl.h>

typedef struct ep_pool {
    const eval_task *t;
    const slim_model *model;
    eval_cand_run *r;
    struct curl_slist *headers;
    char url[2048];
    pthread_mutex_t mu;
    int next, n_done, failed;
    char err[512];
} ep_pool;

static size_t on_body(char *p, size_t size, size_t n, void *user) {
    sb_add(user, p, size * n);
    return ((sbuf *)user)->oom ? 0 : size * n;
}

/* POST body, parse the JSON answer. */
static ej *post(CURL *curl, ep_pool *pl, const sbuf *body, char *err, size_t err_cap) {
    sbuf resp = {0};
    curl_easy_setopt(curl, CURLOPT_URL, pl->url);
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, pl->headers);
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body->p);
    curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE, (long)body->n);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &resp);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT, 600L);
    CURLcode cc = curl_easy_perform(curl);
    long code = 0;
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &code);
    ej *o = NULL;
    if (cc != CURLE_OK)
        snprintf(err, err_cap, "%.300s: %s", pl->url, curl_easy_strerror(cc));
    else if (code != 200)
        snprintf(err, err_cap, "%.200s: HTTP %d: %.200s", pl->url, (int)code, resp.p ? resp.p : "");
    else
        o = ej_parse(resp.p ? resp.p : "", resp.n, err, err_cap); /* NULL: err says why */
    sb_free(&resp);
    return o;
}

static void common_fields(sbuf *b, const eval_task *t) {
    const char *m = t->cands[0].api_model;
    if (m) {
        sb_puts(b, "\"model\":");
        sb_json_str(b, m, strlen(m));
        sb_puts(b, ",");
    }
    sb_puts(b, "\"temperature\":0,");
}

static int tokens_of(const slim_model *m, const char *s, uint32_t flags, slim_token **out,
                     size_t *n) {
    *out = NULL;
    if (slim_tokenize(m, s, strlen(s), flags, NULL, 0, n)) return 1;
    *out = malloc((*n ? *n : 1) * sizeof **out);
    return !*out || slim_tokenize(m, s, strlen(s), flags, *out, *n, n);
}

static int classify_item(CURL *curl, ep_pool *pl, int i, eval_result *res, char *err,
                         size_t err_cap) {
    const eval_task *t = pl->t;
    char *prefix = NULL;
    char *prompt = eval_prompt(t, pl->model, &t->items[i], &prefix);
    slim_token *p = NULL;
    size_t np = 0;
    uint32_t flags = SLIM_TOKENIZE_ADD_BOS | (t->chat ? SLIM_TOKENIZE_PARSE_SPECIAL : 0);
    int rc = !prompt || !prefix || tokens_of(pl->model, prompt, flags, &p, &np);
    double t0 = cli_now_s();
    for (int l = 0; !rc && l < t->n_labels; l++) {
        sbuf s = {0}, body = {0};
        sb_printf(&s, "%s%s%s", prefix, t->labels[l], t->label_suffix);
        slim_token *lt = NULL;
        size_t nl = 0;
        rc = s.oom || tokens_of(pl->model, s.p, 0, &lt, &nl) || nl == 0;
        sb_free(&s);
        if (rc) {
            snprintf(err, err_cap, "label %s: cannot tokenize", t->labels[l]);
            free(lt);
            break;
        }
        sb_puts(&body, "{");
        common_fields(&body, t);
        sb_puts(&body, "\"max_tokens\":0,\"echo\":true,\"logprobs\":1,\"prompt\":[");
        for (size_t k = 0; k < np + nl; k++)
            sb_printf(&body, "%s%d", k ? "," : "", k < np ? p[k] : lt[k - np]);
        sb_puts(&body, "]}");
        ej *o = post(curl, pl, &body, err, err_cap);
        sb_free(&body);
        free(lt);
        const ej *choices = ej_get(o, "choices");
        const ej *lp =
            choices && choices->n ? ej_path(choices->items[0], "logprobs.token_logprobs") : NULL;
        if (!o || !lp || lp->type != EJ_ARR || lp->n < np + nl) {
            if (o)
                snprintf(err, err_cap,
                         "no logprobs.token_logprobs for every prompt token "
                         "(echo) in the answer");
            ej_free(o);
            rc = 1;
            break;
        }
        double sum = 0;
        for (size_t k = np; k < np + nl; k++) { /* max_tokens 0: the list is the prompt's */
            double x = 0;
            ej_num(lp->items[k], &x);
            sum += x;
        }
        res->scores[l] = sum;
        if (l == 0) res->ttft_ms = (cli_now_s() - t0) * 1e3;
        ej_free(o);
    }
    if (!rc) {
        int best = eval_pick_label(t, res->scores, &res->conf);
        res->output = strdup(t->labels[best]);
        res->n_prompt = (int)np;
        res->e2e_ms = (cli_now_s() - t0) * 1e3;
        rc = !res->output;
    }
    free(p), free(prompt), free(prefix);
    return rc;
}

static int generate_item(CURL *curl, ep_pool *pl, int i, eval_result *res, char *err,
                         size_t err_cap) {
    const eval_task *t = pl->t;
    char *prefix = NULL;
    char *prompt = eval_prompt(t, pl->model, &t->items[i], &prefix);
    sbuf body = {0};
    if (!prompt) return 1;
    sb_puts(&body, "{");
    common_fields(&body, t);
    sb_printf(&body, "\"max_tokens\":%d,\"prompt\":", t->max_tokens);
    sb_json_str(&body, prompt, strlen(prompt));
    if (t->n_stop) {
        sb_puts(&body, ",\"stop\":[");
        for (int k = 0; k < t->n_stop; k++) {
            if (k) sb_puts(&body, ",");
            sb_json_str(&body, t->stop[k], strlen(t->stop[k]));
        }
        sb_puts(&body, "]");
    }
    sb_puts(&body, "}");
    double t0 = cli_now_s();
    ej *o = post(curl, pl, &body, err, err_cap);
    sb_free(&body);
    free(prompt), free(prefix);
    const ej *choices = ej_get(o, "choices");
    const char *text = choices && choices->n ? ej_str(ej_get(choices->items[0], "text")) : NULL;
    if (o && !text) snprintf(err, err_cap, "no choices[0].text in the answer");
    if (text) {
        res->output = strdup(text);
        res->e2e_ms = res->ttft_ms = (cli_now_s() - t0) * 1e3;
        double x;
        if (ej_num(ej_path(o, "usage.prompt_tokens"), &x)) res->n_prompt = (int)x;
        if (ej_num(ej_path(o, "usage.completion_tokens"), &x)) res->n_out = (int)x;
    }
    ej_free(o);
    return !text || !res->output;
}

static void *ep_worker(void *arg) {
    ep_pool *pl = arg;
    CURL *curl = curl_easy_init();
    char err[512] = "";
    for (;;) {
        pthread_mutex_lock(&pl->mu);
        int i = pl->failed || cli_sigint || !curl ? pl->t->n_items : pl->next;
        while (i < pl->t->n_items && pl->r->res[i].done)
            i++;
        pl->next = i + 1;
        pthread_mutex_unlock(&pl->mu);
        if (i >= pl->t->n_items) break;
        eval_result *res = &pl->r->res[i];
        int rc;
        if (pl->t->kind == EVAL_CLASSIFY) {
            if (!res->scores) res->scores = calloc((size_t)pl->t->n_labels, sizeof *res->scores);
            rc = !res->scores || classify_item(curl, pl, i, res, err, sizeof err);
        } else
            rc = generate_item(curl, pl, i, res, err, sizeof err);
        if (!rc) eval_score_item(pl->t, i, res);
        pthread_mutex_lock(&pl->mu);
        if (rc && !pl->failed) {
            pl->failed = 1;
            snprintf(pl->err, sizeof pl->err, "%s", err[0] ? err : "out of memory");
        }
        res->done = !rc;
        pl->n_done += !rc;
        pthread_mutex_unlock(&pl->mu);
    }
    if (!curl) {
        pthread_mutex_lock(&pl->mu);
        pl->failed = 1;
        snprintf(pl->err, sizeof pl->err, "curl_easy_init failed");
        pthread_mutex_unlock(&pl->mu);
    }
    curl_easy_cleanup(curl);
    return NULL;
}

int eval_run_endpoint(const eval_task *t, const slim_model *model, eval_cand_run *r,
                      eval_progress_fn progress, void *user) {
    const eval_candidate *c = &t->cands[0];
    ep_pool pl = {.t = t, .model = model, .r = r, .mu = PTHREAD_MUTEX_INITIALIZER};
    size_t n = strlen(c->endpoint);
    while (n && c->endpoint[n - 1] == '/')
        n--;
    /* a base URL (http://host:port or .../v1) gets /v1/completions */
    int has_v1 = n >= 3 && !memcmp(c->endpoint + n - 3, "/v1", 3);
    int full = n >= 12 && !memcmp(c->endpoint + n - 12, "/completions", 12);
    snprintf(pl.url, sizeof pl.url, "%.*s%s", (int)n, c->endpoint,
             full     ? ""
             : has_v1 ? "/completions"
                      : "/v1/completions");
    pl.headers = curl_slist_append(NULL, "Content-Type: application/json");
    if (c->api_key_env) {
        const char *key = getenv(c->api_key_env);
        if (!key || !*key) {
            fprintf(stderr, "slim eval: --api-key-env %s: not set\n", c->api_key_env);
            curl_slist_free_all(pl.headers);
            return 1;
        }
        sbuf h = {0};
        sb_printf(&h, "Authorization: Bearer %s", key);
        pl.headers = curl_slist_append(pl.headers, h.p);
        sb_free(&h);
    }
    curl_global_init(CURL_GLOBAL_DEFAULT);
    int pending = 0;
    for (int i = 0; i < t->n_items; i++)
        pending += !r->res[i].done;
    pthread_t *th = calloc((size_t)t->concurrency, sizeof *th);
    int n_th = 0;
    for (int k = 0; th && k < t->concurrency; k++)
        if (!pthread_create(&th[k], NULL, ep_worker, &pl)) n_th++;
    for (;;) {
        pthread_mutex_lock(&pl.mu);
        int over = pl.next >= t->n_items || pl.failed;
        if (progress) progress(t->n_items - pending + pl.n_done, t->n_items, user);
        pthread_mutex_unlock(&pl.mu);
        if (over || cli_sigint || !n_th) break;
        struct timespec ts = {0, 200 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    for (int k = 0; k < n_th; k++)
        pthread_join(th[k], NULL);
    free(th);
    r->n_run = pl.n_done;
    curl_slist_free_all(pl.headers);
    curl_global_cleanup();
    if (pl.failed || !n_th) {
        fprintf(stderr, "slim eval: %s: %s\n", c->name, n_th ? pl.err : "no threads");
        return 1;
    }
    return 0;
}
#endif
