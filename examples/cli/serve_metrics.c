/* slim serve: /metrics in Prometheus text format, with the metric names vLLM exports (the
 * Kubernetes Gateway API inference extension's endpoint picker reads them: queue length,
 * KV cache usage, LoRA adapters). */
#include <stdlib.h>
#include <string.h>

#include "serve.h"

enum { N_TTFT = 22, N_ITL = 19, N_E2E = 21 };
static const double ttft_b[N_TTFT] = {0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1,
                                      0.25,  0.5,   0.75, 1.0,  2.5,  5.0,  7.5,  10.0,
                                      20.0,  40.0,  80.0, 160., 640., 2560.};
static const double itl_b[N_ITL] = {0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2,  0.3,  0.4, 0.5,
                                    0.75, 1.0,   2.5,  5.0,   7.5, 10.0, 20.0, 40.0, 80.0};
static const double e2e_b[N_E2E] = {0.3,  0.5,  0.8,  1.0,  1.5,  2.0,   2.5,
                                    5.0,  10.0, 15.0, 20.0, 30.0, 40.0,  50.0,
                                    60.0, 120., 240., 480., 960., 1920., 7680.};

typedef struct hist {
    const double *bounds;
    int n;
    unsigned long long count[32]; /* per bucket (not cumulative); [n] is +Inf */
    double sum;
} hist;

static const char *const finishes[] = {"stop", "length", "abort", "error"};

struct srv_metrics {
    pthread_mutex_t mu;
    unsigned long long prompt_tokens, gen_tokens, cached_tokens, requests[4];
    unsigned long long http[6]; /* 2xx 3xx 4xx 5xx other, 429 */
    hist ttft, itl, e2e, queue;
};

srv_metrics *srv_metrics_new(void) {
    srv_metrics *m = calloc(1, sizeof *m);
    if (!m) return NULL;
    pthread_mutex_init(&m->mu, NULL);
    m->ttft = (hist){.bounds = ttft_b, .n = N_TTFT};
    m->itl = (hist){.bounds = itl_b, .n = N_ITL};
    m->e2e = (hist){.bounds = e2e_b, .n = N_E2E};
    m->queue = (hist){.bounds = e2e_b, .n = N_E2E};
    return m;
}

void srv_metrics_free(srv_metrics *m) {
    if (!m) return;
    pthread_mutex_destroy(&m->mu);
    free(m);
}

static void observe(hist *h, double v) {
    int i = 0;
    while (i < h->n && v > h->bounds[i])
        i++;
    h->count[i]++;
    h->sum += v;
}

void srv_metrics_request(srv_metrics *m, int n_prompt, int n_cached, int n_gen, double ttft_s,
                         double e2e_s, double queue_s, const char *finish) {
    if (!m) return;
    pthread_mutex_lock(&m->mu);
    m->prompt_tokens += (unsigned long long)(n_prompt > 0 ? n_prompt : 0);
    m->cached_tokens += (unsigned long long)(n_cached > 0 ? n_cached : 0);
    m->gen_tokens += (unsigned long long)(n_gen > 0 ? n_gen : 0);
    for (int i = 0; i < 4; i++)
        if (!strcmp(finish, finishes[i])) m->requests[i]++;
    if (n_gen > 0) observe(&m->ttft, ttft_s);
    observe(&m->e2e, e2e_s);
    observe(&m->queue, queue_s);
    pthread_mutex_unlock(&m->mu);
}

void srv_metrics_itl(srv_metrics *m, double s) {
    if (!m) return;
    pthread_mutex_lock(&m->mu);
    observe(&m->itl, s);
    pthread_mutex_unlock(&m->mu);
}

void srv_metrics_http(srv_metrics *m, int status) {
    if (!m) return;
    pthread_mutex_lock(&m->mu);
    const int k = status / 100 - 2;
    m->http[k >= 0 && k < 4 ? k : 4]++;
    if (status == 429) m->http[5]++;
    pthread_mutex_unlock(&m->mu);
}

static void help(srv_buf *b, const char *name, const char *type, const char *text) {
    srv_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, text, name, type);
}

static void gauge(srv_buf *b, const char *name, const char *label, double v, const char *text) {
    help(b, name, "gauge", text);
    srv_printf(b, "%s{%s} %.9g\n", name, label, v);
}

static void counter(srv_buf *b, const char *name, const char *label, unsigned long long v,
                    const char *text) {
    help(b, name, "counter", text);
    srv_printf(b, "%s_total{%s} %llu\n", name, label, v);
}

static void histogram(srv_buf *b, const char *name, const char *label, const hist *h,
                      const char *text) {
    help(b, name, "histogram", text);
    unsigned long long cum = 0;
    for (int i = 0; i < h->n; i++) {
        cum += h->count[i];
        srv_printf(b, "%s_bucket{%s,le=\"%g\"} %llu\n", name, label, h->bounds[i], cum);
    }
    cum += h->count[h->n];
    srv_printf(b, "%s_bucket{%s,le=\"+Inf\"} %llu\n", name, label, cum);
    srv_printf(b, "%s_sum{%s} %.9g\n", name, label, h->sum);
    srv_printf(b, "%s_count{%s} %llu\n", name, label, cum);
}

void srv_metrics_write(srv *s, srv_buf *b) {
    srv_metrics *m = s->metrics;
    slim_engine_stats st = {.struct_size = sizeof st};
    if (!atomic_load(&s->ready) || slim_engine_get_stats(s->engine, &st)) memset(&st, 0, sizeof st);
    /* The model name as a label value: escaped as Prometheus wants (\\, \", \n). */
    srv_buf label = {0};
    srv_cstr(&label, "model_name=\"");
    for (const char *p = s->model_name; *p; p++) {
        if (*p == '\\' || *p == '"') srv_raw(&label, "\\", 1);
        if (*p == '\n')
            srv_cstr(&label, "\\n");
        else
            srv_raw(&label, p, 1);
    }
    srv_cstr(&label, "\"");
    const char *l = label.p ? label.p : "";
    const double kv = st.kv_blocks > 0 ? (double)st.kv_used / st.kv_blocks : 0;
    gauge(b, "vllm:num_requests_running", l, st.n_running,
          "Requests in the running batch (holding KV blocks).");
    gauge(b, "vllm:num_requests_waiting", l, st.n_waiting, "Requests waiting to be scheduled.");
    gauge(b, "vllm:kv_cache_usage_perc", l, kv,
          "Fraction of the KV pool's blocks in use (1 = full).");
    gauge(b, "vllm:gpu_cache_usage_perc", l, kv,
          "Fraction of the KV pool's blocks in use (1 = full; the older name).");
    help(b, "vllm:cache_config_info", "gauge", "KV pool blocks and block size as labels.");
    srv_printf(b, "vllm:cache_config_info{%s,num_gpu_blocks=\"%d\",block_size=\"%d\"} 1\n", l,
               st.kv_blocks, st.kv_block_size);
    /* The adapters this server can run (the gateway's LoRA affinity reads this). */
    help(b, "vllm:lora_requests_info", "gauge", "LoRA adapters served: max_lora and names.");
    srv_printf(b, "vllm:lora_requests_info{max_lora=\"%d\",running_lora_adapters=\"", s->n_lora);
    for (int i = 0; i < s->n_lora; i++)
        srv_printf(b, "%s%s", i ? "," : "", s->lora_name[i]);
    srv_cstr(b, "\",waiting_lora_adapters=\"\"} 1\n");
    pthread_mutex_lock(&m->mu);
    counter(b, "vllm:num_preemptions", l, (unsigned long long)st.n_preemptions,
            "Requests preempted (KV blocks freed, recomputed later).");
    counter(b, "vllm:prompt_tokens", l, m->prompt_tokens, "Prompt tokens processed.");
    counter(b, "vllm:generation_tokens", l, m->gen_tokens, "Tokens generated.");
    counter(b, "vllm:prefix_cache_queries", l, m->prompt_tokens,
            "Prompt tokens looked up in the prefix cache.");
    counter(b, "vllm:prefix_cache_hits", l, m->cached_tokens,
            "Prompt tokens found in the prefix cache.");
    help(b, "vllm:request_success", "counter", "Finished requests by finish reason.");
    for (int i = 0; i < 4; i++)
        srv_printf(b, "vllm:request_success_total{%s,finished_reason=\"%s\"} %llu\n", l,
                   finishes[i], m->requests[i]);
    histogram(b, "vllm:time_to_first_token_seconds", l, &m->ttft,
              "Time from arrival to the first generated token.");
    histogram(b, "vllm:inter_token_latency_seconds", l, &m->itl,
              "Time between successive generated tokens of a request.");
    histogram(b, "vllm:time_per_output_token_seconds", l, &m->itl,
              "Time between successive generated tokens of a request (the older name).");
    histogram(b, "vllm:e2e_request_latency_seconds", l, &m->e2e,
              "Time from arrival to the last token.");
    histogram(b, "vllm:request_queue_time_seconds", l, &m->queue,
              "Time from arrival to the first scheduled step.");
    help(b, "slim:http_responses", "counter", "HTTP responses by status class.");
    static const char *const cls[6] = {"2xx", "3xx", "4xx", "5xx", "other", "429"};
    for (int i = 0; i < 6; i++)
        srv_printf(b, "slim:http_responses_total{status=\"%s\"} %llu\n", cls[i], m->http[i]);
    pthread_mutex_unlock(&m->mu);
    srv_buf_free(&label);
}
