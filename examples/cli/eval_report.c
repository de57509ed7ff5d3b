/* slim eval: the reports: items.jsonl lines (written and read back for
 * resuming), the Markdown table, results.json and report.html (self-contained:
 * inline SVG, no scripts, no network). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "eval.h"

/* ---- items.jsonl ----------------------------------------------------------------------------- */
void eval_item_line(sbuf *b, const eval_task *t, int c, int i, const eval_result *res) {
    const eval_item *it = &t->items[i];
    const char *out = res->output ? res->output : "";
    sb_puts(b, "{\"candidate\":");
    sb_json_str(b, t->cands[c].name, strlen(t->cands[c].name));
    sb_puts(b, ",\"id\":");
    sb_json_str(b, it->id, strlen(it->id));
    sb_puts(b, ",\"gold\":");
    if (t->kind == EVAL_EXTRACT)
        sb_json(b, it->gold_obj);
    else
        sb_json_str(b, it->gold, strlen(it->gold));
    sb_puts(b, ",\"output\":");
    sb_json_str(b, out, strlen(out));
    if (t->kind == EVAL_EXTRACT) {
        /* the fields as the metrics read them (null: not a valid instance) */
        char err[64];
        ej *o = ej_parse(out, strlen(out), err, sizeof err);
        int valid = o && o->type == EJ_OBJ;
        for (size_t k = 0; valid && k < o->n; k++) {
            int f = 0;
            while (f < t->n_fields && strcmp(t->fields[f], o->keys[k]))
                f++;
            int ty = o->items[k]->type;
            valid = f < t->n_fields && (ty == EJ_STR || ty == EJ_NUM || ty == EJ_NULL);
        }
        sb_puts(b, ",\"valid\":");
        sb_puts(b, valid ? "true" : "false");
        sb_puts(b, ",\"pred\":");
        if (!valid)
            sb_puts(b, "null");
        else {
            sb_puts(b, "{");
            int first = 1;
            for (int f = 0; f < t->n_fields; f++) {
                const ej *v = ej_get(o, t->fields[f]);
                if (!v || v->type == EJ_NULL) continue;
                if (!first) sb_puts(b, ",");
                first = 0;
                sb_json_str(b, t->fields[f], strlen(t->fields[f]));
                sb_puts(b, ":");
                if (v->type == EJ_STR)
                    sb_json_str(b, v->str, v->len);
                else {
                    sbuf nb = {0};
                    sb_num(&nb, v->num);
                    sb_json_str(b, nb.p ? nb.p : "", nb.n);
                    sb_free(&nb);
                }
            }
            sb_puts(b, "}");
        }
        ej_free(o);
    }
    sb_puts(b, ",\"score\":");
    sb_num(b, res->score);
    if (t->kind == EVAL_CLASSIFY) {
        sb_puts(b, ",\"conf\":");
        sb_num(b, res->conf);
    }
    sb_puts(b, ",\"ttft_ms\":");
    sb_printf(b, "%.3f", res->ttft_ms);
    sb_puts(b, ",\"e2e_ms\":");
    sb_printf(b, "%.3f", res->e2e_ms);
    sb_printf(b, ",\"n_prompt\":%d,\"n_out\":%d,\"top\":[", res->n_prompt, res->n_out);
    for (int k = 0; k < res->n_top; k++)
        sb_printf(b, "%s[%d,%.9g]", k ? "," : "", res->top[k].token, res->top[k].logprob);
    sb_puts(b, "]}\n");
}

int eval_item_parse(const eval_task *t, const char *line, size_t len, int *c, int *i,
                    eval_result *res) {
    char err[128];
    ej *o = ej_parse(line, len, err, sizeof err);
    const char *cn = ej_str(ej_get(o, "candidate")), *id = ej_str(ej_get(o, "id"));
    const char *out = ej_str(ej_get(o, "output"));
    *c = *i = -1;
    for (int k = 0; cn && k < t->n_cands && *c < 0; k++)
        if (!strcmp(t->cands[k].name, cn)) *c = k;
    for (int k = 0; id && k < t->n_items && *i < 0; k++)
        if (!strcmp(t->items[k].id, id)) *i = k;
    if (*c < 0 || *i < 0 || !out) {
        ej_free(o);
        return -1;
    }
    memset(res, 0, sizeof *res);
    res->output = strdup(out);
    ej_num(ej_get(o, "conf"), &res->conf);
    ej_num(ej_get(o, "ttft_ms"), &res->ttft_ms);
    ej_num(ej_get(o, "e2e_ms"), &res->e2e_ms);
    double x = 0;
    if (ej_num(ej_get(o, "n_prompt"), &x)) res->n_prompt = (int)x;
    if (ej_num(ej_get(o, "n_out"), &x)) res->n_out = (int)x;
    const ej *top = ej_get(o, "top");
    for (size_t k = 0; top && k < top->n && k < EVAL_TOP; k++) {
        const ej *pair = top->items[k];
        double tok = 0, lp = 0;
        if (pair->type != EJ_ARR || pair->n != 2 || !ej_num(pair->items[0], &tok) ||
            !ej_num(pair->items[1], &lp))
            continue;
        res->top[res->n_top++] = (slim_logprob){(slim_token)tok, (float)lp};
    }
    res->done = res->output != NULL;
    ej_free(o);
    eval_score_item(t, *i, res);
    return 0;
}

/* ---- Markdown ----------------------------------------------------------------------------------
 */
static const char *metric_title(const eval_task *t) { return t->bar_metric; }

static void md_ci(FILE *f, eval_ci ci) {
    fprintf(f, "%.1f [%.1f, %.1f]", 100 * ci.value, 100 * ci.lo, 100 * ci.hi);
}

void eval_report_md(FILE *f, const eval_task *t, const eval_cand_run *runs, const eval_metrics *ms,
                    const eval_summary *s) {
    fprintf(f, "## %s: %d items, bar %s >= %.1f (95%% CI lower bound)\n\n", t->name, t->n_items,
            metric_title(t), 100 * t->bar_threshold);
    fprintf(f, "| candidate | %s %% [95%% CI] |", metric_title(t));
    if (t->kind == EVAL_CLASSIFY)
        fprintf(f, " macro-F1 %% | ECE |");
    else if (t->kind == EVAL_EXTRACT)
        fprintf(f, " valid %% | exact %% |");
    else
        fprintf(f, " contains %% | ROUGE-L %% |");
    fprintf(f, " TTFT p50/p95/p99 ms | e2e p50/p95/p99 ms | items/s | peak MB | $ / 1k items |"
               " KL | top-1 %% |\n|---|---|---|---|---|---|---|---|---|---|---|\n");
    for (int c = 0; c < t->n_cands; c++) {
        const eval_metrics *m = &ms[c];
        fprintf(f, "| %s%s | ", t->cands[c].name, c == s->recommended ? " **(recommended)**" : "");
        md_ci(f, *m->bar);
        if (t->kind == EVAL_CLASSIFY)
            fprintf(f, " | %.1f | %.3f", 100 * m->macro_f1.value, m->ece);
        else if (t->kind == EVAL_EXTRACT)
            fprintf(f, " | %.1f | %.1f", 100 * m->validity.value, 100 * m->exact.value);
        else
            fprintf(f, " | %.1f | %.1f", 100 * m->contains.value, 100 * m->rougel.value);
        fprintf(f, " | %.0f / %.0f / %.0f | %.0f / %.0f / %.0f | %.2f | %.0f | %.4f | ", m->ttft[0],
                m->ttft[1], m->ttft[2], m->e2e[0], m->e2e[1], m->e2e[2], m->items_per_s, m->peak_mb,
                m->cost_per_1k);
        if (m->has_drift)
            fprintf(f, "%.4f | %.1f |\n", m->kl, 100 * m->top1);
        else
            fprintf(f, "%s | %s |\n", c == t->reference ? "ref" : "-",
                    c == t->reference ? "ref" : "-");
        (void)runs;
    }
    fprintf(f, "\n%s\n\noutput hash: %s\n", s->text, s->out_hash);
}

/* ---- results.json --------------------------------------------------------------------------- */
static void j_ci(sbuf *b, const char *name, eval_ci ci) {
    sb_printf(b, "\"%s\":{\"value\":", name);
    sb_num(b, ci.value);
    sb_puts(b, ",\"lo\":");
    sb_num(b, ci.lo);
    sb_puts(b, ",\"hi\":");
    sb_num(b, ci.hi);
    sb_puts(b, "},");
}

static void j_num(sbuf *b, const char *name, double x) {
    sb_printf(b, "\"%s\":", name);
    sb_num(b, x);
    sb_puts(b, ",");
}

static void j_arr(sbuf *b, const char *name, const double *v, int n) {
    sb_printf(b, "\"%s\":[", name);
    for (int k = 0; k < n; k++) {
        if (k) sb_puts(b, ",");
        sb_num(b, v[k]);
    }
    sb_puts(b, "],");
}

static int write_file(const char *path, const sbuf *b) {
    FILE *f = fopen(path, "wb");
    if (!f || b->oom || fwrite(b->p, 1, b->n, f) != b->n || fclose(f)) {
        if (f) fclose(f);
        fprintf(stderr, "slim eval: %s: cannot write\n", path);
        return 1;
    }
    return 0;
}

int eval_report_json(const char *path, const eval_task *t, const eval_cand_run *runs,
                     const eval_metrics *ms, const eval_summary *s) {
    sbuf b = {0};
    sb_puts(&b, "{\"task\":");
    sb_json_str(&b, t->name, strlen(t->name));
    sb_printf(&b, ",\"kind\":\"%s\",\"n_items\":%d,\"task_hash\":\"%s\",\"output_hash\":\"%s\",",
              t->kind == EVAL_CLASSIFY  ? "classify"
              : t->kind == EVAL_EXTRACT ? "extract"
                                        : "generate",
              t->n_items, t->hash, s->out_hash);
    sb_printf(&b, "\"bar\":{\"metric\":\"%s\",\"threshold\":", t->bar_metric);
    sb_num(&b, t->bar_threshold);
    sb_printf(&b, "},\"bootstrap\":{\"samples\":%d,\"seed\":%llu},", t->boot_samples,
              (unsigned long long)t->boot_seed);
    j_num(&b, "price_per_hour", t->price_per_hour);
    sb_printf(&b, "\"concurrency\":%d,\"recommended\":", t->concurrency);
    if (s->recommended >= 0)
        sb_json_str(&b, t->cands[s->recommended].name, strlen(t->cands[s->recommended].name));
    else
        sb_puts(&b, "null");
    sb_puts(&b, ",\"recommendation\":");
    sb_json_str(&b, s->text, strlen(s->text));
    if (t->kind == EVAL_CLASSIFY) {
        sb_puts(&b, ",\"labels\":[");
        for (int l = 0; l < t->n_labels; l++) {
            if (l) sb_puts(&b, ",");
            sb_json_str(&b, t->labels[l], strlen(t->labels[l]));
        }
        sb_puts(&b, "]");
    } else if (t->kind == EVAL_EXTRACT) {
        sb_puts(&b, ",\"fields\":[");
        for (int f = 0; f < t->n_fields; f++) {
            if (f) sb_puts(&b, ",");
            sb_json_str(&b, t->fields[f], strlen(t->fields[f]));
        }
        sb_puts(&b, "]");
    }
    sb_puts(&b, ",\"item_ids\":["); /* the order bootstrap resamples index */
    for (int i = 0; i < t->n_items; i++) {
        if (i) sb_puts(&b, ",");
        sb_json_str(&b, t->items[i].id, strlen(t->items[i].id));
    }
    sb_puts(&b, "],\"candidates\":[");
    for (int c = 0; c < t->n_cands; c++) {
        const eval_metrics *m = &ms[c];
        const eval_candidate *e = &t->cands[c];
        sb_puts(&b, c ? ",{" : "{");
        sb_puts(&b, "\"name\":");
        sb_json_str(&b, e->name, strlen(e->name));
        sb_puts(&b, ",\"model\":");
        if (e->model)
            sb_json_str(&b, e->model, strlen(e->model));
        else
            sb_json_str(&b, e->endpoint, strlen(e->endpoint));
        sb_puts(&b, ",\"weight_type\":");
        if (e->weight_type)
            sb_json_str(&b, e->weight_type, strlen(e->weight_type));
        else
            sb_puts(&b, "\"keep\"");
        sb_puts(&b, ",");
        if (t->kind == EVAL_CLASSIFY) {
            j_ci(&b, "accuracy", m->accuracy);
            j_ci(&b, "macro_f1", m->macro_f1);
            j_num(&b, "ece", m->ece);
            j_arr(&b, "precision", m->prec, t->n_labels);
            j_arr(&b, "recall", m->rec, t->n_labels);
            j_arr(&b, "f1", m->f1, t->n_labels);
            sb_puts(&b, "\"confusion\":[");
            for (int g = 0; g < t->n_labels; g++) {
                sb_puts(&b, g ? ",[" : "[");
                for (int p = 0; p < t->n_labels; p++)
                    sb_printf(&b, "%s%d", p ? "," : "", m->confusion[g * t->n_labels + p]);
                sb_puts(&b, "]");
            }
            sb_puts(&b, "],");
        } else if (t->kind == EVAL_EXTRACT) {
            j_ci(&b, "field_f1", m->field_f1);
            j_num(&b, "field_precision", m->field_p);
            j_num(&b, "field_recall", m->field_r);
            j_ci(&b, "exact_match", m->exact);
            j_ci(&b, "validity", m->validity);
            j_arr(&b, "per_field_precision", m->fp_, t->n_fields);
            j_arr(&b, "per_field_recall", m->fr_, t->n_fields);
            j_arr(&b, "per_field_f1", m->ff_, t->n_fields);
        } else {
            j_ci(&b, "exact_match", m->gen_exact);
            j_ci(&b, "contains", m->contains);
            j_ci(&b, "chrf", m->chrf);
            j_ci(&b, "rouge_l", m->rougel);
        }
        j_arr(&b, "ttft_ms_p50_p95_p99", m->ttft, 3);
        j_arr(&b, "e2e_ms_p50_p95_p99", m->e2e, 3);
        j_num(&b, "items_per_s", m->items_per_s);
        j_num(&b, "peak_mb", m->peak_mb);
        j_num(&b, "cost_per_1k", m->cost_per_1k);
        j_num(&b, "load_s", runs[c].load_s);
        if (m->has_drift) {
            j_num(&b, "kl", m->kl);
            j_num(&b, "top1_agreement", m->top1);
        }
        sb_printf(&b, "\"reference\":%s}", c == t->reference ? "true" : "false");
    }
    sb_puts(&b, "]}\n");
    int rc = write_file(path, &b);
    sb_free(&b);
    return rc;
}

/* ---- report.html ----------------------------------------------------------------------------- */
static const char *const palette[] = {"#1f77b4", "#d62728", "#2ca02c", "#9467bd",
                                      "#ff7f0e", "#8c564b", "#e377c2", "#17becf"};

static void svg_frontier(sbuf *b, const eval_task *t, const eval_metrics *ms,
                         const eval_summary *s) {
    const double W = 640, H = 360, L = 60, R = 170, T = 20, B = 40;
    double xmax = 0;
    for (int c = 0; c < t->n_cands; c++)
        if (isfinite(ms[c].cost_per_1k) && ms[c].cost_per_1k > xmax) xmax = ms[c].cost_per_1k;
    xmax = xmax > 0 ? xmax * 1.15 : 1;
    double ymax = t->bar_threshold;
    for (int c = 0; c < t->n_cands; c++)
        if (ms[c].bar->hi > ymax) ymax = ms[c].bar->hi;
    ymax = fmin(1, ymax * 1.1 + 0.02);
#define X(v) (L + (v) / xmax * (W - L - R))
#define Y(v) (T + (1 - (v) / ymax) * (H - T - B))
    sb_printf(b,
              "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" "
              "font-family=\"sans-serif\" font-size=\"11\">\n",
              W, H);
    sb_printf(b,
              "<rect x=\"%.0f\" y=\"%.0f\" width=\"%.0f\" height=\"%.0f\" fill=\"#fafafa\" "
              "stroke=\"#999\"/>\n",
              L, T, W - L - R, H - T - B);
    for (int k = 0; k <= 4; k++) {
        double yv = ymax * k / 4, xv = xmax * k / 4;
        sb_printf(b, "<text x=\"%.0f\" y=\"%.1f\" text-anchor=\"end\">%.0f%%</text>\n", L - 4,
                  Y(yv) + 4, 100 * yv);
        sb_printf(b, "<text x=\"%.1f\" y=\"%.0f\" text-anchor=\"middle\">%.4f</text>\n", X(xv),
                  H - B + 14, xv);
    }
    sb_printf(
        b, "<text x=\"%.0f\" y=\"%.0f\" text-anchor=\"middle\">cost per 1,000 items ($)</text>\n",
        (L + W - R) / 2, H - 6);
    sb_printf(
        b,
        "<line x1=\"%.0f\" x2=\"%.0f\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"#c00\" "
        "stroke-dasharray=\"5,4\"/><text x=\"%.0f\" y=\"%.1f\" fill=\"#c00\">bar %.1f%%</text>\n",
        L, W - R, Y(t->bar_threshold), Y(t->bar_threshold), L + 4, Y(t->bar_threshold) - 4,
        100 * t->bar_threshold);
    for (int c = 0; c < t->n_cands; c++) {
        const eval_metrics *m = &ms[c];
        if (!isfinite(m->cost_per_1k)) continue;
        const char *col = palette[c % 8];
        double x = X(m->cost_per_1k);
        sb_printf(b,
                  "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" "
                  "stroke-width=\"2\"/>\n",
                  x, x, Y(m->bar->lo), Y(m->bar->hi), col);
        sb_printf(b, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"%d\" fill=\"%s\"><title>", x,
                  Y(m->bar->value), c == s->recommended ? 7 : 5, col);
        sb_html(b, t->cands[c].name);
        sb_printf(b, "</title></circle>\n<text x=\"%.0f\" y=\"%.0f\" fill=\"%s\">", W - R + 4,
                  T + 30 + 16.0 * c, col);
        sb_html(b, t->cands[c].name);
        sb_puts(b, c == s->recommended ? " *" : "");
        sb_puts(b, "</text>\n");
    }
    sb_puts(b, "</svg>\n");
#undef X
#undef Y
}

static int cmp_d(const void *a, const void *b) { return cli_cmp_double(a, b); }

static void svg_latency(sbuf *b, const eval_task *t, const eval_cand_run *runs,
                        const eval_metrics *ms) {
    const double W = 640, L = 170, R = 20, row = 34;
    const double H = 40 + row * t->n_cands;
    double xmax = 0;
    for (int c = 0; c < t->n_cands; c++)
        for (int i = 0; i < t->n_items; i++)
            if (runs[c].res[i].e2e_ms > xmax) xmax = runs[c].res[i].e2e_ms;
    xmax = xmax > 0 ? xmax * 1.05 : 1;
#define X(v) (L + (v) / xmax * (W - L - R))
    sb_printf(b,
              "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" "
              "font-family=\"sans-serif\" font-size=\"11\">\n",
              W, H);
    for (int c = 0; c < t->n_cands; c++) {
        double y = 20 + row * c + row / 2;
        sb_printf(b, "<text x=\"%.0f\" y=\"%.1f\" text-anchor=\"end\">", L - 6, y + 4);
        sb_html(b, t->cands[c].name);
        sb_puts(b, "</text>\n");
        for (int i = 0; i < t->n_items; i++) /* every item, jittered by its index */
            sb_printf(b,
                      "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"1.5\" fill=\"%s\" opacity=\"0.5\"/>\n",
                      X(runs[c].res[i].e2e_ms), y - 8 + (i * 7 % 17), palette[c % 8]);
        static const char *const q[3] = {"p50", "p95", "p99"};
        for (int k = 0; k < 3; k++)
            sb_printf(b,
                      "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"#000\" "
                      "stroke-width=\"%d\"><title>%s %.0f ms</title></line>\n",
                      X(ms[c].e2e[k]), X(ms[c].e2e[k]), y - 12, y + 12, k ? 1 : 2, q[k],
                      ms[c].e2e[k]);
    }
    for (int k = 0; k <= 4; k++)
        sb_printf(b, "<text x=\"%.1f\" y=\"%.0f\" text-anchor=\"middle\">%.0f</text>\n",
                  X(xmax * k / 4), H - 6, xmax * k / 4);
    sb_printf(
        b,
        "<text x=\"%.0f\" y=\"12\">end-to-end latency per item (ms); bars: p50, p95, p99</text>\n",
        L);
    sb_puts(b, "</svg>\n");
#undef X
    (void)cmp_d;
}

static void svg_confusion(sbuf *b, const eval_task *t, const eval_metrics *m) {
    int L = t->n_labels, named = L <= 20; /* few labels: their names on the rows */
    double cell = L > 40 ? 7 : L > 15 ? 14 : 28, off = 20, left = named ? 200 : off;
    double w = left + cell * L + 10, h = off + cell * L + 24;
    sb_printf(b,
              "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" "
              "font-family=\"sans-serif\" font-size=\"10\">\n",
              w, h);
    sb_printf(b, "<text x=\"%.0f\" y=\"12\">predicted &#8594; (rows: gold)</text>\n", left);
    for (int g = 0; g < L; g++) {
        int row = m->support[g];
        if (named) {
            sb_printf(b, "<text x=\"%.0f\" y=\"%.1f\" text-anchor=\"end\">", left - 4,
                      off + cell * g + cell / 2 + 3);
            sb_html(b, t->labels[g]);
            sb_puts(b, "</text>\n");
        }
        for (int p = 0; p < L; p++) {
            int n = m->confusion[g * L + p];
            double a = row ? (double)n / row : 0;
            sb_printf(b,
                      "<rect x=\"%.0f\" y=\"%.0f\" width=\"%.0f\" height=\"%.0f\" fill=\"%s\" "
                      "fill-opacity=\"%.3f\" stroke=\"#ddd\" stroke-width=\"0.3\">",
                      left + cell * p, off + cell * g, cell, cell, g == p ? "#2ca02c" : "#d62728",
                      n ? 0.15 + 0.85 * a : 0);
            if (n) {
                sb_puts(b, "<title>");
                sb_html(b, t->labels[g]);
                sb_puts(b, " &#8594; ");
                sb_html(b, t->labels[p]);
                sb_printf(b, ": %d</title>", n);
            }
            sb_puts(b, "</rect>\n");
        }
    }
    sb_puts(b, "</svg>\n");
}

static void svg_fields(sbuf *b, const eval_task *t, const eval_metrics *ms) {
    const double W = 640, L = 120, row = 14;
    double H = 30 + row * t->n_cands * t->n_fields + 8 * t->n_fields;
    sb_printf(b,
              "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" "
              "font-family=\"sans-serif\" font-size=\"11\">\n<text x=\"%.0f\" y=\"12\">"
              "per-field F1 (0-100%%)</text>\n",
              W, H, L);
    double y = 22;
    for (int f = 0; f < t->n_fields; f++) {
        sb_printf(b, "<text x=\"%.0f\" y=\"%.0f\" text-anchor=\"end\">", L - 6,
                  y + row * t->n_cands / 2 + 4);
        sb_html(b, t->fields[f]);
        sb_puts(b, "</text>\n");
        for (int c = 0; c < t->n_cands; c++, y += row)
            sb_printf(b,
                      "<rect x=\"%.0f\" y=\"%.0f\" width=\"%.1f\" height=\"%.0f\" fill=\"%s\">"
                      "<title>%.1f%%</title></rect>\n",
                      L, y, (W - L - 20) * ms[c].ff_[f], row - 2, palette[c % 8],
                      100 * ms[c].ff_[f]);
        y += 8;
    }
    sb_puts(b, "</svg>\n");
}

int eval_report_html(const char *path, const eval_task *t, const eval_cand_run *runs,
                     const eval_metrics *ms, const eval_summary *s) {
    sbuf b = {0};
    sb_puts(&b, "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>slim eval: ");
    sb_html(&b, t->name);
    sb_puts(&b, "</title><style>body{font-family:sans-serif;margin:24px;max-width:1100px}"
                "table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ccc;"
                "padding:3px 6px;text-align:right}td:first-child{text-align:left}"
                ".rec{background:#e8f5e9}</style></head><body>\n<h1>slim eval: ");
    sb_html(&b, t->name);
    sb_printf(&b,
              "</h1>\n<p>%d items; bar: %s &ge; %.1f%% (lower bound of the 95%% bootstrap "
              "interval, %d resamples).</p>\n<p><b>",
              t->n_items, t->bar_metric, 100 * t->bar_threshold, t->boot_samples);
    sb_html(&b, s->text);
    sb_puts(&b, "</b></p>\n<table><tr><th>candidate</th><th>");
    sb_html(&b, t->bar_metric);
    sb_puts(
        &b,
        " % [95% CI]</th><th>TTFT p50/p95/p99 ms</th><th>e2e p50/p95/p99 ms</th>"
        "<th>items/s</th><th>peak MB</th><th>$ / 1k items</th><th>KL</th><th>top-1 %</th></tr>\n");
    for (int c = 0; c < t->n_cands; c++) {
        const eval_metrics *m = &ms[c];
        sb_printf(&b, "<tr%s><td>", c == s->recommended ? " class=\"rec\"" : "");
        sb_html(&b, t->cands[c].name);
        sb_printf(&b,
                  "</td><td>%.1f [%.1f, %.1f]</td><td>%.0f / %.0f / %.0f</td>"
                  "<td>%.0f / %.0f / %.0f</td><td>%.2f</td><td>%.0f</td><td>%.4f</td>",
                  100 * m->bar->value, 100 * m->bar->lo, 100 * m->bar->hi, m->ttft[0], m->ttft[1],
                  m->ttft[2], m->e2e[0], m->e2e[1], m->e2e[2], m->items_per_s, m->peak_mb,
                  m->cost_per_1k);
        if (m->has_drift)
            sb_printf(&b, "<td>%.4f</td><td>%.1f</td></tr>\n", m->kl, 100 * m->top1);
        else
            sb_puts(&b, c == t->reference ? "<td>ref</td><td>ref</td></tr>\n"
                                          : "<td>-</td><td>-</td></tr>\n");
    }
    sb_puts(&b, "</table>\n<h2>Accuracy versus cost</h2>\n");
    svg_frontier(&b, t, ms, s);
    sb_puts(&b, "<h2>Latency</h2>\n");
    svg_latency(&b, t, runs, ms);
    if (t->kind == EVAL_CLASSIFY) {
        int c = s->recommended >= 0 ? s->recommended : s->best;
        sb_puts(&b, "<h2>Confusion matrix: ");
        sb_html(&b, t->cands[c].name);
        sb_puts(&b, "</h2>\n");
        svg_confusion(&b, t, &ms[c]);
    } else if (t->kind == EVAL_EXTRACT) {
        sb_puts(&b, "<h2>Fields</h2>\n");
        svg_fields(&b, t, ms);
    }
    sb_printf(&b, "<p>task hash %s, output hash %s</p>\n</body></html>\n", t->hash, s->out_hash);
    int rc = write_file(path, &b);
    sb_free(&b);
    return rc;
}
