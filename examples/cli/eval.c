/* slim eval TASK.json [--out DIR]: run a labelled task over candidate models
 * and report, per candidate, the task metric with a 95% bootstrap interval,
 * latency, throughput, memory, cost and drift, and which candidate is the
 * cheapest to meet the bar.  Items are appended to DIR/items.jsonl as they
 * finish, so an interrupted run resumes where it stopped. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "eval.h"

static const char eval_usage[] =
    "usage: slim eval TASK.json [--out DIR] [options]\n"
    "  Run a task (docs/EVAL.md) over its candidates; print a Markdown table and write\n"
    "  DIR/results.json, DIR/items.jsonl and DIR/report.html (DIR default: eval-out).\n"
    "  --limit N          the first N of the task's items only\n"
    "  --fresh            start again: ignore (overwrite) DIR/items.jsonl\n"
    "  --threads N        CPU threads (default: the task's, else all)\n"
    "  --concurrency N    requests in flight (default: the task's, else 1)\n"
    "  --only NAME        run only the candidate NAME (repeatable)\n"
    "  --endpoint URL     run against an OpenAI-compatible server (/v1/completions)\n"
    "                     instead of the task's candidates\n"
    "  --api-key-env VAR  with --endpoint: the bearer token is in environment VAR\n"
    "  --api-model NAME   with --endpoint: the request's \"model\" (default: the server's)\n"
    "  -q, --quiet        no progress line\n"
    "exit status: 0 done, 1 error, 2 usage error, 130 interrupted (rerun to resume)\n";

typedef struct prog {
    const eval_task *t;
    eval_cand_run *run;
    int c;
    FILE *items;
    char *written; /* [n_items] */
    int tty, write_failed;
    double t0;
    int done0;
} prog;

/* Called with the run's lock held: append the newly finished items, in item
 * order, and show the progress line. */
static void on_progress(int done, int total, void *user) {
    prog *p = user;
    sbuf b = {0};
    for (int i = 0; i < p->t->n_items; i++) {
        if (!p->run->res[i].done || p->written[i]) continue;
        eval_item_line(&b, p->t, p->c, i, &p->run->res[i]);
        p->written[i] = 1;
    }
    if (b.n && (fwrite(b.p, 1, b.n, p->items) != b.n || fflush(p->items))) p->write_failed = 1;
    sb_free(&b);
    if (!p->tty) return;
    double el = cli_now_s() - p->t0, rate = el > 0 ? (done - p->done0) / el : 0;
    double eta = rate > 0 ? (total - done) / rate : 0;
    fprintf(stderr, "\r\033[K  %s: %d/%d items, %.2f items/s, ETA %d:%02d", p->t->cands[p->c].name,
            done, total, rate, (int)eta / 60, (int)eta % 60);
}

static uint64_t fnv(uint64_t h, const char *s, size_t n) {
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 0x100000001b3ull;
    return h;
}

static void summarize(const eval_task *t, const eval_cand_run *runs, const eval_metrics *ms,
                      eval_summary *s) {
    s->recommended = -1, s->best = 0;
    for (int c = 0; c < t->n_cands; c++) {
        const eval_metrics *m = &ms[c];
        if (m->bar->lo > ms[s->best].bar->lo) s->best = c;
        if (m->bar->lo >= t->bar_threshold &&
            (s->recommended < 0 || m->cost_per_1k < ms[s->recommended].cost_per_1k))
            s->recommended = c;
    }
    if (s->recommended >= 0) {
        const eval_metrics *m = &ms[s->recommended];
        snprintf(s->text, sizeof s->text,
                 "Recommended: %s, the cheapest candidate whose %s interval's lower bound "
                 "(%.1f%%) meets the bar of %.1f%%, at $%.4f per 1,000 items.",
                 t->cands[s->recommended].name, t->bar_metric, 100 * m->bar->lo,
                 100 * t->bar_threshold, m->cost_per_1k);
    } else {
        const eval_metrics *m = &ms[s->best];
        snprintf(s->text, sizeof s->text,
                 "No candidate meets the bar of %.1f%% %s: the best, %s, has a lower bound of "
                 "%.1f%% (point estimate %.1f%%), %.1f points short.",
                 100 * t->bar_threshold, t->bar_metric, t->cands[s->best].name, 100 * m->bar->lo,
                 100 * m->bar->value, 100 * (t->bar_threshold - m->bar->lo));
    }
    uint64_t h = 0xcbf29ce484222325ull;
    for (int c = 0; c < t->n_cands; c++)
        for (int i = 0; i < t->n_items; i++) {
            const char *o = runs[c].res[i].output ? runs[c].res[i].output : "";
            h = fnv(h, t->cands[c].name, strlen(t->cands[c].name) + 1);
            h = fnv(h, t->items[i].id, strlen(t->items[i].id) + 1);
            h = fnv(h, o, strlen(o) + 1);
        }
    snprintf(s->out_hash, sizeof s->out_hash, "%016llx", (unsigned long long)h);
}

/* A {"run": name, ...} line: a finished session's time, items and peak memory. */
static int resume_run_line(const eval_task *t, const char *line, size_t len, eval_cand_run *runs) {
    if (!strstr(line, "\"run\":")) return 0;
    char err[64];
    ej *o = ej_parse(line, len, err, sizeof err);
    const char *name = ej_str(ej_get(o, "run"));
    int found = name != NULL;
    for (int c = 0; name && c < t->n_cands; c++) {
        if (strcmp(t->cands[c].name, name)) continue;
        double n = 0, w = 0, l = 0, pk = 0;
        ej_num(ej_get(o, "n_run"), &n), ej_num(ej_get(o, "wall_s"), &w);
        ej_num(ej_get(o, "load_s"), &l), ej_num(ej_get(o, "peak_mb"), &pk);
        runs[c].n_prev += (int)n;
        runs[c].wall_s += w;
        runs[c].load_s = l;
        runs[c].peak_mb = pk > runs[c].peak_mb ? pk : runs[c].peak_mb;
    }
    ej_free(o);
    return found;
}

/* Read DIR/items.jsonl back into the runs; 0 fine (or no file), 1 an error. */
static int resume(const eval_task *t, const char *path, eval_cand_run *runs, int *n_resumed) {
    FILE *f = fopen(path, "r");
    *n_resumed = 0;
    if (!f) return 0;
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    int first = 1, rc = 0;
    while ((n = getline(&line, &cap, f)) > 0) {
        if (first) {
            first = 0;
            char err[64];
            ej *h = ej_parse(line, (size_t)n, err, sizeof err);
            const char *hash = ej_str(ej_get(h, "task_hash"));
            if (!hash || strcmp(hash, t->hash)) {
                fprintf(stderr,
                        "slim eval: %s: written for another task or item set (task hash %s, "
                        "this one %s): use --fresh or another --out\n",
                        path, hash ? hash : "none", t->hash);
                rc = 1;
            }
            ej_free(h);
            if (rc) break;
            continue;
        }
        int c, i;
        eval_result res;
        if (resume_run_line(t, line, (size_t)n, runs)) continue;
        if (eval_item_parse(t, line, (size_t)n, &c, &i, &res)) continue; /* a torn last line */
        if (runs[c].res[i].done) {
            free(res.output);
            continue;
        }
        runs[c].res[i] = res;
        (*n_resumed)++;
    }
    free(line);
    fclose(f);
    return rc;
}

int cli_eval(int argc, char **argv) {
    cli_opts o = cli_opts_init("eval", argc, argv);
    const char *arg, *task_path = NULL, *out = "eval-out", *endpoint = NULL, *key_env = NULL;
    const char *api_model = NULL;
    const char *only[16];
    int n_only = 0, fresh = 0, quiet = 0, k;
    long long limit = 0, threads = -1, conc = -1;
    while ((k = cli_next(&o, &arg)) == CLI_OPTION || k == CLI_OPERAND) {
        if (k == CLI_OPERAND) {
            if (task_path) return cli_extra(&o, arg);
            task_path = arg;
        } else if (cli_is(&o, "-h", "--help")) {
            fputs(eval_usage, stdout);
            return 0;
        } else if (cli_is(&o, NULL, "--out")) {
            if (!(out = cli_value(&o))) return 2;
        } else if (cli_is(&o, NULL, "--limit")) {
            if (!cli_int(&o, 1, 1000000000, &limit)) return 2;
        } else if (cli_is(&o, NULL, "--threads") || cli_is(&o, "-t", NULL)) {
            if (!cli_int(&o, 1, 4096, &threads)) return 2;
        } else if (cli_is(&o, NULL, "--concurrency")) {
            if (!cli_int(&o, 1, 256, &conc)) return 2;
        } else if (cli_is(&o, NULL, "--fresh")) {
            fresh = 1;
        } else if (cli_is(&o, "-q", "--quiet")) {
            quiet = 1;
        } else if (cli_is(&o, NULL, "--only")) {
            if (n_only == 16) return cli_usage_error(&o, "--only: at most 16");
            if (!(only[n_only++] = cli_value(&o))) return 2;
        } else if (cli_is(&o, NULL, "--endpoint")) {
            if (!(endpoint = cli_value(&o))) return 2;
        } else if (cli_is(&o, NULL, "--api-key-env")) {
            if (!(key_env = cli_value(&o))) return 2;
        } else if (cli_is(&o, NULL, "--api-model")) {
            if (!(api_model = cli_value(&o))) return 2;
        } else
            return cli_unknown(&o);
    }
    if (k == CLI_ERR) return 2;
    if (!task_path) {
        fputs(eval_usage, stderr);
        return 2;
    }
    eval_task t;
    if (eval_task_load(task_path, (int)limit, &t)) {
        eval_task_free(&t);
        return 1;
    }
    if (threads > 0) t.threads = (int)threads;
    if (conc > 0) t.concurrency = (int)conc;
    if (endpoint) { /* the task's candidates give way to the server */
        for (int c = 1; c < t.n_cands; c++) {
            eval_candidate *e = &t.cands[c];
            free(e->name), free(e->model), free(e->weight_type), free(e->lora);
            free(e->endpoint), free(e->api_model), free(e->api_key_env);
        }
        eval_candidate *e = &t.cands[0];
        free(e->name), free(e->weight_type), free(e->lora), free(e->endpoint);
        free(e->api_model), free(e->api_key_env);
        /* the first candidate's model file stays: chat prompts are rendered with its template */
        e->name = strdup(endpoint);
        e->endpoint = strdup(endpoint);
        e->weight_type = e->lora = NULL;
        e->api_model = api_model ? strdup(api_model) : NULL;
        e->api_key_env = key_env ? strdup(key_env) : NULL;
        t.n_cands = 1;
        t.reference = -1;
    }
    if (n_only) { /* keep the named candidates, in the task's order */
        int w = 0, ref = -1;
        for (int c = 0; c < t.n_cands; c++) {
            int keep = 0;
            for (int j = 0; j < n_only; j++)
                keep |= !strcmp(only[j], t.cands[c].name);
            if (!keep) continue;
            if (c == t.reference) ref = w;
            eval_candidate tmp = t.cands[w];
            t.cands[w] = t.cands[c];
            t.cands[c] = tmp;
            w++;
        }
        if (!w) {
            fprintf(stderr, "slim eval: --only: no such candidate\n");
            eval_task_free(&t);
            return 2;
        }
        for (int c = w; c < t.n_cands; c++) { /* moved past the end: free them */
            eval_candidate *e = &t.cands[c];
            free(e->name), free(e->model), free(e->weight_type), free(e->lora);
            free(e->endpoint), free(e->api_model), free(e->api_key_env);
        }
        t.n_cands = w;
        t.reference = ref;
    }

    int rc = 1;
    eval_cand_run *runs = calloc((size_t)t.n_cands, sizeof *runs);
    eval_metrics *ms = calloc((size_t)t.n_cands, sizeof *ms);
    char *written = calloc((size_t)t.n_items, 1);
    char path[4096];
    FILE *items = NULL;
    if (!runs || !ms || !written) goto done;
    for (int c = 0; c < t.n_cands; c++)
        if (!(runs[c].res = calloc((size_t)t.n_items, sizeof *runs[c].res))) goto done;
    if (mkdir(out, 0777) && errno != EEXIST) {
        fprintf(stderr, "slim eval: %s: %s\n", out, strerror(errno));
        goto done;
    }
    snprintf(path, sizeof path, "%s/items.jsonl", out);
    int n_resumed = 0;
    if (!fresh && resume(&t, path, runs, &n_resumed)) goto done;
    items = fopen(path, n_resumed || (!fresh && access(path, F_OK) == 0) ? "a" : "w");
    if (!items) {
        fprintf(stderr, "slim eval: %s: %s\n", path, strerror(errno));
        goto done;
    }
    if (ftell(items) == 0) {
        sbuf h = {0};
        sb_puts(&h, "{\"slim_eval\":1,\"task\":");
        sb_json_str(&h, t.name, strlen(t.name));
        sb_printf(&h, ",\"task_hash\":\"%s\"}\n", t.hash);
        fputs(h.p ? h.p : "", items);
        sb_free(&h);
    }
    if (n_resumed) fprintf(stderr, "slim eval: resuming: %d results from %s\n", n_resumed, path);
    cli_on_sigint(1);
    int failed = 0;
    for (int c = 0; c < t.n_cands && !cli_sigint; c++) {
        prog p = {&t, &runs[c], c, items, written, !quiet && isatty(2), 0, cli_now_s(), 0};
        for (int i = 0; i < t.n_items; i++)
            written[i] = runs[c].res[i].done;
        for (int i = 0; i < t.n_items; i++)
            p.done0 += runs[c].res[i].done;
        if (eval_run_candidate(&t, c, &runs[c], on_progress, &p)) failed = 1;
        on_progress(p.done0 + runs[c].n_run, t.n_items, &p);
        if (runs[c].n_run > 0) { /* the session's figures, for a later resume */
            sbuf b = {0};
            sb_puts(&b, "{\"run\":");
            sb_json_str(&b, t.cands[c].name, strlen(t.cands[c].name));
            sb_printf(&b, ",\"n_run\":%d,\"wall_s\":%.3f,\"load_s\":%.3f,\"peak_mb\":%.1f}\n",
                      runs[c].n_run, runs[c].sess_wall_s, runs[c].load_s, runs[c].sess_peak_mb);
            if (fwrite(b.p, 1, b.n, items) != b.n || fflush(items)) p.write_failed = 1;
            sb_free(&b);
        }
        if (p.tty) fputc('\n', stderr);
        if (p.write_failed) {
            fprintf(stderr, "slim eval: %s: write failed\n", path);
            failed = 1;
        }
        if (failed) break;
    }
    if (fclose(items)) failed = 1;
    items = NULL;
    if (failed) goto done;
    if (cli_sigint) {
        fprintf(stderr, "slim eval: interrupted; run the same command again to resume\n");
        rc = 130;
        goto done;
    }
    for (int c = 0; c < t.n_cands; c++) {
        int r = t.reference;
        /* drift compares next-token distributions: the same model file (vocabulary) only */
        const eval_cand_run *ref = r >= 0 && c != r && t.cands[c].model && t.cands[r].model &&
                                           !strcmp(t.cands[c].model, t.cands[r].model)
                                       ? &runs[r]
                                       : NULL;
        if (eval_metrics_compute(&t, &runs[c], ref, &ms[c])) goto done;
    }
    eval_summary s;
    summarize(&t, runs, ms, &s);
    eval_report_md(stdout, &t, runs, ms, &s);
    snprintf(path, sizeof path, "%s/results.json", out);
    if (eval_report_json(path, &t, runs, ms, &s)) goto done;
    snprintf(path, sizeof path, "%s/report.html", out);
    if (eval_report_html(path, &t, runs, ms, &s)) goto done;
    rc = cli_check_stdout();
done:
    if (items) fclose(items);
    for (int c = 0; runs && c < t.n_cands; c++) {
        for (int i = 0; runs[c].res && i < t.n_items; i++) {
            free(runs[c].res[i].output);
            free(runs[c].res[i].scores);
        }
        free(runs[c].res);
        if (ms) eval_metrics_free(&ms[c]);
    }
    free(runs), free(ms), free(written);
    eval_task_free(&t);
    return rc;
}
