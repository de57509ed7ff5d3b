/* slim eval: the pieces shared by its files.
 *   eval_json.c    a small JSON DOM (task files, datasets, model outputs) and a
 *                  growable string buffer with JSON escaping
 *   eval_task.c    the task file: dataset, labels / schema, prompt, few-shot, candidates
 *   eval_run.c     running one candidate over the items in process
 *   eval_endpoint.c  ... or over an OpenAI-compatible server (libcurl)
 *   eval_metrics.c per-kind metrics, bootstrap intervals, latency, drift, cost
 *   eval_report.c  Markdown, results.json, items.jsonl and report.html
 *   eval.c         `slim eval`: options, resume, progress, the recommendation */
#ifndef SLIM_EVAL_H
#define SLIM_EVAL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "slim.h"

/* ---- JSON (eval_json.c) ---------------------------------------------------------------------- */
enum { EJ_NULL, EJ_BOOL, EJ_NUM, EJ_STR, EJ_ARR, EJ_OBJ };
typedef struct ej {
    int type;
    double num; /* EJ_NUM; EJ_BOOL: 0 or 1 */
    char *str;  /* EJ_STR (NUL-terminated) */
    size_t len;
    size_t n; /* EJ_ARR / EJ_OBJ: elements */
    struct ej **items;
    char **keys; /* EJ_OBJ */
} ej;

/* Parse text[0..len); NULL with a message "LINE:COL: what" in err on failure. */
ej *ej_parse(const char *text, size_t len, char *err, size_t err_cap);
void ej_free(ej *v);
const ej *ej_get(const ej *obj, const char *key);
/* A dotted path ("userInput.text"); NULL if any step is missing. */
const ej *ej_path(const ej *v, const char *path);
const char *ej_str(const ej *v); /* NULL unless a string */
int ej_num(const ej *v, double *out);
/* Deep equality (object member order ignored). */
int ej_equal(const ej *a, const ej *b);

typedef struct sbuf {
    char *p;
    size_t n, cap;
    int oom;
} sbuf;
void sb_add(sbuf *b, const char *s, size_t n);
void sb_puts(sbuf *b, const char *s);
void sb_printf(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void sb_json_str(sbuf *b, const char *s, size_t n); /* a quoted, escaped JSON string */
void sb_html(sbuf *b, const char *s);               /* HTML-escaped text */
void sb_json(sbuf *b, const ej *v);                 /* compact JSON, keys in document order */
void sb_free(sbuf *b);
/* The JSON number form of x: shortest %.17g that reads back; null for NaN / inf. */
void sb_num(sbuf *b, double x);

/* ---- the task (eval_task.c) ------------------------------------------------------------------ */
enum { EVAL_CLASSIFY, EVAL_EXTRACT, EVAL_GENERATE };

typedef struct eval_candidate {
    char *name;
    char *model;       /* resolved path */
    char *weight_type; /* NULL: keep */
    char *lora;        /* NULL: none */
    double lora_scale;
    char *endpoint;  /* NULL: in process; else an OpenAI-compatible base URL */
    char *api_model; /* the "model" field sent to the endpoint */
    char *api_key_env;
} eval_candidate;

typedef struct eval_item {
    char *id;
    ej *rec;      /* the dataset record (owned) */
    char *gold;   /* classify: the label; generate: the reference; extract: compact JSON */
    ej *gold_obj; /* extract: the gold object */
} eval_item;

typedef struct eval_task {
    char *path, *dir, *name;
    int kind;
    char **labels; /* classify */
    int n_labels;
    ej *schema;    /* extract: a JSON Schema (object of properties) */
    char **fields; /* extract: the schema's property names */
    int n_fields;
    eval_item *items;
    int n_items;
    eval_item *shots; /* the few-shot examples, already drawn */
    int n_shots;
    char *instruction, *template, *system;
    char *label_suffix; /* classify: appended to every scored label */
    int chat;
    char **stop;
    int n_stop, max_tokens;
    eval_candidate *cands;
    int n_cands;
    int reference; /* index into cands, or -1 */
    double price_per_hour;
    int concurrency, threads;
    char *bar_metric;
    double bar_threshold;
    int boot_samples;
    uint64_t boot_seed;
    char *hash; /* of the task's resolved content, to refuse resuming another task */
    ej *doc;    /* the parsed task file */
} eval_task;

/* Load and check a task file; returns 0 or prints "slim eval: ..." and returns 1.
 * limit > 0 keeps the first `limit` items. */
int eval_task_load(const char *path, int limit, eval_task *t);
void eval_task_free(eval_task *t);
/* The rendered prompt of item i (completion text, or the chat rendering for
 * `model`), with the answer text that follows it split off into *answer_prefix
 * (e.g. " " when the template reads "Intent: {answer}"). */
char *eval_prompt(const eval_task *t, const slim_model *model, const eval_item *it,
                  char **answer_prefix);

/* ---- one candidate's run (eval_run.c) ----------------------------------------------------------
 */
#define EVAL_TOP 20
typedef struct eval_result {
    int done;
    char *output;   /* classify: the label chosen; else the generated text */
    double *scores; /* classify: [n_labels] summed label log-probabilities */
    double conf;    /* classify: the chosen label's probability among the labels */
    double ttft_ms, e2e_ms;
    int n_prompt, n_out;
    slim_logprob top[EVAL_TOP]; /* the next-token distribution after the prompt */
    int n_top;
    /* per-item score: classify/extract/generate correctness in [0,1] */
    double score;
} eval_result;

typedef struct eval_cand_run {
    eval_result *res; /* [n_items] */
    double wall_s;    /* time running the items (not loading) */
    double load_s;
    double peak_mb;                   /* the largest of this session's and the resumed runs' */
    double sess_wall_s, sess_peak_mb; /* this session's run */
    int n_run;                        /* items run now (not resumed) */
    int n_prev;                       /* items run by the resumed runs (their time is in wall_s) */
    char *error;
} eval_cand_run;

typedef void (*eval_progress_fn)(int done, int total, void *user);
/* Run the candidate over every item whose result is not done. */
int eval_run_candidate(const eval_task *t, int c, eval_cand_run *r, eval_progress_fn progress,
                       void *user);
/* The same over cands[0].endpoint (eval_endpoint.c); model (may be NULL for
 * completion-style generation) tokenizes label-scoring prompts and renders chat. */
int eval_run_endpoint(const eval_task *t, const slim_model *model, eval_cand_run *r,
                      eval_progress_fn progress, void *user);
/* Score one item's output against its gold (sets res->score). */
void eval_score_item(const eval_task *t, int i, eval_result *res);
/* Choose a label from scores (argmax; first on ties) and its probability. */
int eval_pick_label(const eval_task *t, const double *scores, double *conf);

/* ---- metrics (eval_metrics.c) ---------------------------------------------------------------- */
typedef struct eval_ci {
    double value, lo, hi;
} eval_ci;

typedef struct eval_metrics {
    /* classify */
    eval_ci accuracy, macro_f1;
    double ece;
    double *prec, *rec, *f1; /* [n_labels] */
    int *support;
    int *confusion; /* [n_labels * n_labels], row gold, column predicted */
    /* extract */
    eval_ci field_f1, exact, validity;
    double field_p, field_r;
    double *fp_, *fr_, *ff_; /* per field [n_fields] */
    /* generate */
    eval_ci gen_exact, contains, chrf, rougel;
    /* every kind */
    eval_ci *bar;           /* the bar's metric (points into one of the above) */
    double ttft[3], e2e[3]; /* p50, p95, p99 (ms) */
    double items_per_s, cost_per_1k, peak_mb;
    int has_drift;
    double kl, top1;
    int n;
} eval_metrics;

int eval_metrics_compute(const eval_task *t, const eval_cand_run *r, const eval_cand_run *ref,
                         eval_metrics *m);
void eval_metrics_free(eval_metrics *m);
/* Names of the bar metrics each kind has, for checking the task. */
int eval_metric_known(int kind, const char *name);
double eval_chrf(const char *hyp, const char *ref);
double eval_rougel(const char *hyp, const char *ref);

/* ---- reports (eval_report.c) ----------------------------------------------------------------- */
typedef struct eval_summary {
    int recommended; /* candidate index or -1 */
    int best;        /* the highest lower bound */
    char text[512];  /* the recommendation in words */
    char out_hash[32];
} eval_summary;

/* One items.jsonl line for candidate c, item i. */
void eval_item_line(sbuf *b, const eval_task *t, int c, int i, const eval_result *res);
/* Read results back from an items.jsonl line; returns the candidate and item or -1. */
int eval_item_parse(const eval_task *t, const char *line, size_t len, int *c, int *i,
                    eval_result *res);
void eval_report_md(FILE *f, const eval_task *t, const eval_cand_run *runs, const eval_metrics *ms,
                    const eval_summary *s);
int eval_report_json(const char *path, const eval_task *t, const eval_cand_run *runs,
                     const eval_metrics *ms, const eval_summary *s);
int eval_report_html(const char *path, const eval_task *t, const eval_cand_run *runs,
                     const eval_metrics *ms, const eval_summary *s);

#endif
