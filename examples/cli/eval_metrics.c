/* slim eval: scores and metrics.
 *  - classify: accuracy, macro-F1 (over the labels in gold or predicted, as
 *    scikit-learn's default; zero_division 0), per-class P/R/F1, confusion
 *    matrix, expected calibration error (10 equal-width bins of the chosen
 *    label's probability among the labels);
 *  - extract: schema validity, per-field and micro P/R/F1 (a field counts as
 *    found when the predicted value equals the gold one), exact match;
 *  - generate: exact match, contains, chrF (character 1..6-grams, beta 2,
 *    whitespace removed), ROUGE-L (word LCS F1);
 *  - 95% percentile bootstrap intervals: the same seeded resamples of item
 *    indices for every metric and candidate (paired), percentiles
 *    interpolated linearly as numpy does;
 *  - latency percentiles, items/s, cost per 1,000 items, drift against the
 *    reference's next-token distribution after the prompt (top-20 of each). */
#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "eval.h"

int eval_metric_known(int kind, const char *name) {
    static const char *const cls[] = {"accuracy", "macro_f1", NULL};
    static const char *const ext[] = {"field_f1", "exact_match", "validity", NULL};
    static const char *const gen[] = {"exact_match", "contains", "chrf", "rouge_l", NULL};
    const char *const *v = kind == EVAL_CLASSIFY ? cls : kind == EVAL_EXTRACT ? ext : gen;
    for (; *v; v++)
        if (!strcmp(*v, name)) return 1;
    return 0;
}

static char *trimmed(const char *s) {
    while (isspace((unsigned char)*s))
        s++;
    size_t n = strlen(s);
    while (n && isspace((unsigned char)s[n - 1]))
        n--;
    char *d = malloc(n + 1);
    if (d) memcpy(d, s, n), d[n] = 0;
    return d;
}

/* ---- extraction: an output's fields --------------------------------------------------------- */
/* The predicted value of each field as text (NULL: absent) and whether the
 * output is a valid instance of the schema: an object whose members are all
 * schema properties with string, number or null values. */
static int extract_fields(const eval_task *t, const char *out, char **vals) {
    char err[128];
    char *s = trimmed(out ? out : "");
    ej *o = s ? ej_parse(s, strlen(s), err, sizeof err) : NULL;
    free(s);
    for (int f = 0; f < t->n_fields; f++)
        vals[f] = NULL;
    int valid = o && o->type == EJ_OBJ;
    for (size_t k = 0; valid && k < o->n; k++) {
        int f = 0;
        while (f < t->n_fields && strcmp(t->fields[f], o->keys[k]))
            f++;
        const ej *v = o->items[k];
        if (f == t->n_fields || (v->type != EJ_STR && v->type != EJ_NUM && v->type != EJ_NULL)) {
            valid = 0;
            break;
        }
        if (v->type == EJ_NULL || vals[f]) continue;
        sbuf b = {0};
        if (v->type == EJ_STR)
            sb_add(&b, v->str, v->len);
        else
            sb_num(&b, v->num);
        vals[f] = b.p ? b.p : calloc(1, 1);
    }
    if (!valid)
        for (int f = 0; f < t->n_fields; f++)
            free(vals[f]), vals[f] = NULL;
    ej_free(o);
    return valid;
}

typedef struct fcounts {
    int tp, fp, fn;
} fcounts;

/* Per field of item i: tp/fp/fn into c[n_fields]; returns validity. */
static int field_counts(const eval_task *t, int i, const char *out, fcounts *c) {
    char **vals = calloc((size_t)t->n_fields, sizeof *vals);
    if (!vals) return 0;
    int valid = extract_fields(t, out, vals);
    for (int f = 0; f < t->n_fields; f++) {
        const char *g = ej_str(ej_get(t->items[i].gold_obj, t->fields[f]));
        const char *p = vals[f];
        c[f] = (fcounts){0, 0, 0};
        if (p && g && !strcmp(p, g))
            c[f].tp = 1;
        else {
            c[f].fp = p != NULL;
            c[f].fn = g != NULL;
        }
        free(vals[f]);
    }
    free(vals);
    return valid;
}

/* ---- generation: chrF and ROUGE-L ------------------------------------------------------------ */
static int cmp_str_n(const void *a, const void *b, size_t n) { return memcmp(a, b, n); }
static size_t g_n; /* qsort comparator's n-gram length (single-threaded here) */
static int cmp_gram(const void *a, const void *b) {
    return cmp_str_n(*(const char *const *)a, *(const char *const *)b, g_n);
}

/* Matches of character n-grams between a and b (multiset intersection). */
static size_t ngram_matches(const char *a, size_t na, const char *b, size_t nb, size_t n) {
    if (na < n || nb < n) return 0;
    size_t ka = na - n + 1, kb = nb - n + 1;
    const char **ga = malloc(ka * sizeof *ga), **gb = malloc(kb * sizeof *gb);
    size_t m = 0;
    if (ga && gb) {
        for (size_t i = 0; i < ka; i++)
            ga[i] = a + i;
        for (size_t i = 0; i < kb; i++)
            gb[i] = b + i;
        g_n = n;
        qsort(ga, ka, sizeof *ga, cmp_gram);
        qsort(gb, kb, sizeof *gb, cmp_gram);
        for (size_t i = 0, j = 0; i < ka && j < kb;) {
            int c = memcmp(ga[i], gb[j], n);
            if (!c)
                m++, i++, j++;
            else if (c < 0)
                i++;
            else
                j++;
        }
    }
    free(ga), free(gb);
    return m;
}

static char *no_space(const char *s, size_t *n) {
    char *d = malloc(strlen(s) + 1);
    *n = 0;
    if (!d) return NULL;
    for (; *s; s++)
        if (!isspace((unsigned char)*s)) d[(*n)++] = *s;
    d[*n] = 0;
    return d;
}

double eval_chrf(const char *hyp, const char *ref) {
    size_t nh, nr;
    char *h = no_space(hyp, &nh), *r = no_space(ref, &nr);
    double P = 0, R = 0;
    int k = 0;
    for (size_t n = 1; h && r && n <= 6; n++) {
        size_t th = nh >= n ? nh - n + 1 : 0, tr = nr >= n ? nr - n + 1 : 0;
        if (!th && !tr) continue;
        size_t m = ngram_matches(h, nh, r, nr, n);
        P += th ? (double)m / (double)th : 0;
        R += tr ? (double)m / (double)tr : 0;
        k++;
    }
    free(h), free(r);
    if (!k) return 1; /* both empty */
    P /= k, R /= k;
    const double b2 = 4;
    return P + R > 0 ? (1 + b2) * P * R / (b2 * P + R) : 0;
}

static int words(const char *s, const char ***w, size_t **len) {
    int n = 0, cap = 0;
    *w = NULL, *len = NULL;
    while (*s) {
        while (isspace((unsigned char)*s))
            s++;
        if (!*s) break;
        const char *st = s;
        while (*s && !isspace((unsigned char)*s))
            s++;
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            const char **nw = realloc(*w, (size_t)cap * sizeof *nw);
            size_t *nl = realloc(*len, (size_t)cap * sizeof *nl);
            if (nw) *w = nw;
            if (nl) *len = nl;
            if (!nw || !nl) return n;
        }
        (*w)[n] = st, (*len)[n++] = (size_t)(s - st);
    }
    return n;
}

double eval_rougel(const char *hyp, const char *ref) {
    const char **a, **b;
    size_t *la, *lb;
    int na = words(hyp, &a, &la), nb = words(ref, &b, &lb);
    double f = 0;
    int *prev = calloc((size_t)nb + 1, sizeof *prev), *cur = calloc((size_t)nb + 1, sizeof *cur);
    if (prev && cur && na && nb) {
        for (int i = 1; i <= na; i++) {
            for (int j = 1; j <= nb; j++) {
                int eq = la[i - 1] == lb[j - 1] && !memcmp(a[i - 1], b[j - 1], la[i - 1]);
                cur[j] = eq ? prev[j - 1] + 1 : (prev[j] > cur[j - 1] ? prev[j] : cur[j - 1]);
            }
            int *tmp = prev;
            prev = cur, cur = tmp;
        }
        double lcs = prev[nb], p = lcs / na, r = lcs / nb;
        f = p + r > 0 ? 2 * p * r / (p + r) : 0;
    } else if (!na && !nb)
        f = 1;
    free(prev), free(cur), free(a), free(b), free(la), free(lb);
    return f;
}

void eval_score_item(const eval_task *t, int i, eval_result *res) {
    const char *out = res->output ? res->output : "";
    const char *gold = t->items[i].gold;
    if (t->kind == EVAL_CLASSIFY) {
        res->score = !strcmp(out, gold);
    } else if (t->kind == EVAL_EXTRACT) {
        fcounts *c = calloc((size_t)t->n_fields, sizeof *c);
        int valid = c && field_counts(t, i, out, c), exact = valid;
        for (int f = 0; c && f < t->n_fields; f++)
            exact &= !c[f].fp && !c[f].fn;
        free(c);
        res->score = exact;
    } else {
        char *a = trimmed(out), *b = trimmed(gold);
        res->score = a && b && !strcmp(a, b);
        free(a), free(b);
    }
}

/* ---- bootstrap ---------------------------------------------------------------------------------
 */
typedef double (*stat_fn)(const int *idx, int n, void *ctx);

static uint64_t splitmix(uint64_t *s) {
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static double percentile(const double *sorted, int n, double q) {
    double pos = q * (n - 1);
    int k = (int)floor(pos);
    if (k >= n - 1) return sorted[n - 1];
    return sorted[k] + (pos - k) * (sorted[k + 1] - sorted[k]);
}

static eval_ci bootstrap(const eval_task *t, int n, stat_fn f, void *ctx) {
    eval_ci ci = {NAN, NAN, NAN};
    int *idx = malloc((size_t)n * sizeof *idx);
    double *v = malloc((size_t)t->boot_samples * sizeof *v);
    if (idx && v && n > 0) {
        for (int i = 0; i < n; i++)
            idx[i] = i;
        ci.value = f(idx, n, ctx);
        uint64_t s = t->boot_seed;
        for (int b = 0; b < t->boot_samples; b++) {
            for (int i = 0; i < n; i++)
                idx[i] = (int)(splitmix(&s) % (uint64_t)n);
            v[b] = f(idx, n, ctx);
        }
        qsort(v, (size_t)t->boot_samples, sizeof *v, cli_cmp_double);
        ci.lo = percentile(v, t->boot_samples, 0.025);
        ci.hi = percentile(v, t->boot_samples, 0.975);
    }
    free(idx), free(v);
    return ci;
}

typedef struct mctx {
    const double *x;        /* per-item values (means) */
    const int *gold, *pred; /* classify: label indices */
    int n_labels;
    int *tp, *fp, *fn; /* scratch [n_labels] */
    const fcounts *fc; /* extract: per item, summed over fields */
} mctx;

static double st_mean(const int *idx, int n, void *ctx) {
    const mctx *m = ctx;
    double s = 0;
    for (int i = 0; i < n; i++)
        s += m->x[idx[i]];
    return s / n;
}

static double st_macro_f1(const int *idx, int n, void *ctx) {
    mctx *m = ctx;
    memset(m->tp, 0, (size_t)m->n_labels * sizeof *m->tp);
    memset(m->fp, 0, (size_t)m->n_labels * sizeof *m->fp);
    memset(m->fn, 0, (size_t)m->n_labels * sizeof *m->fn);
    for (int i = 0; i < n; i++) {
        int g = m->gold[idx[i]], p = m->pred[idx[i]];
        if (g == p)
            m->tp[g]++;
        else
            m->fp[p]++, m->fn[g]++;
    }
    double s = 0;
    int k = 0;
    for (int l = 0; l < m->n_labels; l++) {
        if (!m->tp[l] && !m->fp[l] && !m->fn[l]) continue; /* neither gold nor predicted */
        s += 2.0 * m->tp[l] / (2.0 * m->tp[l] + m->fp[l] + m->fn[l]);
        k++;
    }
    return k ? s / k : 0;
}

static double st_micro_f1(const int *idx, int n, void *ctx) {
    const mctx *m = ctx;
    double tp = 0, fp = 0, fn = 0;
    for (int i = 0; i < n; i++) {
        tp += m->fc[idx[i]].tp, fp += m->fc[idx[i]].fp, fn += m->fc[idx[i]].fn;
    }
    return tp + fp + fn > 0 ? 2 * tp / (2 * tp + fp + fn) : 0;
}

static double pctl(double *v, int n, double q) {
    if (n <= 0) return NAN;
    qsort(v, (size_t)n, sizeof *v, cli_cmp_double);
    return percentile(v, n, q);
}

static int label_index(const eval_task *t, const char *s) {
    for (int l = 0; s && l < t->n_labels; l++)
        if (!strcmp(t->labels[l], s)) return l;
    return 0;
}

/* KL(ref || cand) and top-1 agreement from the two top-20 lists (see docs/EVAL.md). */
static double kl_top(const eval_result *p, const eval_result *q) {
    double q_min = 1, q_sum = 0, kl = 0, p_sum = 0, q_used = 0;
    for (int j = 0; j < q->n_top; j++) {
        double x = exp(q->top[j].logprob);
        q_sum += x;
        q_min = x < q_min ? x : q_min;
    }
    double q_rest = 1 - q_sum > 0 ? 1 - q_sum : 0;
    for (int j = 0; j < p->n_top; j++) {
        double pj = exp(p->top[j].logprob), qj = -1;
        for (int k = 0; k < q->n_top; k++)
            if (q->top[k].token == p->top[j].token) qj = exp(q->top[k].logprob);
        if (qj < 0) qj = q_min < q_rest ? q_min : q_rest; /* at most the candidate's 20th */
        if (qj < 1e-12) qj = 1e-12;
        kl += pj * log(pj / qj);
        p_sum += pj, q_used += qj;
    }
    double pt = 1 - p_sum, qt = 1 - q_used;
    if (pt > 1e-9) kl += pt * log(pt / (qt > 1e-12 ? qt : 1e-12));
    return kl;
}

int eval_metrics_compute(const eval_task *t, const eval_cand_run *r, const eval_cand_run *ref,
                         eval_metrics *m) {
    memset(m, 0, sizeof *m);
    int n = t->n_items;
    m->n = n;
    double *x = calloc((size_t)n, sizeof *x), *lat = calloc((size_t)n, sizeof *lat);
    mctx c = {.x = x, .n_labels = t->n_labels};
    if (!x || !lat) goto oom;
    for (int i = 0; i < n; i++)
        x[i] = r->res[i].score;
    if (t->kind == EVAL_CLASSIFY) {
        int L = t->n_labels;
        int *gold = calloc((size_t)n, sizeof *gold), *pred = calloc((size_t)n, sizeof *pred);
        c.tp = calloc((size_t)L, sizeof *c.tp), c.fp = calloc((size_t)L, sizeof *c.fp);
        c.fn = calloc((size_t)L, sizeof *c.fn);
        m->confusion = calloc((size_t)L * (size_t)L, sizeof *m->confusion);
        m->prec = calloc((size_t)L, sizeof *m->prec), m->rec = calloc((size_t)L, sizeof *m->rec);
        m->f1 = calloc((size_t)L, sizeof *m->f1), m->support = calloc((size_t)L, sizeof(int));
        if (!gold || !pred || !c.tp || !c.fp || !c.fn || !m->confusion || !m->prec || !m->rec ||
            !m->f1 || !m->support) {
            free(gold), free(pred);
            goto oom;
        }
        for (int i = 0; i < n; i++) {
            gold[i] = label_index(t, t->items[i].gold);
            pred[i] = label_index(t, r->res[i].output);
            m->confusion[gold[i] * L + pred[i]]++;
            m->support[gold[i]]++;
        }
        c.gold = gold, c.pred = pred;
        m->accuracy = bootstrap(t, n, st_mean, &c);
        m->macro_f1 = bootstrap(t, n, st_macro_f1, &c);
        for (int l = 0; l < L; l++) {
            int tp = m->confusion[l * L + l], col = 0;
            for (int g = 0; g < L; g++)
                col += m->confusion[g * L + l];
            m->prec[l] = col ? (double)tp / col : 0;
            m->rec[l] = m->support[l] ? (double)tp / m->support[l] : 0;
            m->f1[l] = m->prec[l] + m->rec[l] > 0
                           ? 2 * m->prec[l] * m->rec[l] / (m->prec[l] + m->rec[l])
                           : 0;
        }
        double bc[10] = {0}, ba[10] = {0};
        int bn[10] = {0};
        for (int i = 0; i < n; i++) {
            int b = (int)(r->res[i].conf * 10);
            b = b < 0 ? 0 : b > 9 ? 9 : b;
            bn[b]++, bc[b] += r->res[i].conf, ba[b] += x[i];
        }
        for (int b = 0; b < 10; b++)
            if (bn[b]) m->ece += fabs(ba[b] - bc[b]) / n;
        m->bar = !strcmp(t->bar_metric, "macro_f1") ? &m->macro_f1 : &m->accuracy;
        free(gold), free(pred);
    } else if (t->kind == EVAL_EXTRACT) {
        int F = t->n_fields;
        fcounts *per = calloc((size_t)F, sizeof *per), *sum = calloc((size_t)F, sizeof *sum);
        fcounts *fc = calloc((size_t)n, sizeof *fc);
        double *valid = calloc((size_t)n, sizeof *valid);
        m->fp_ = calloc((size_t)F, sizeof(double)), m->fr_ = calloc((size_t)F, sizeof(double));
        m->ff_ = calloc((size_t)F, sizeof(double));
        if (!per || !sum || !fc || !valid || !m->fp_ || !m->fr_ || !m->ff_) {
            free(per), free(sum), free(fc), free(valid);
            goto oom;
        }
        for (int i = 0; i < n; i++) {
            valid[i] = field_counts(t, i, r->res[i].output, per);
            for (int f = 0; f < F; f++) {
                sum[f].tp += per[f].tp, sum[f].fp += per[f].fp, sum[f].fn += per[f].fn;
                fc[i].tp += per[f].tp, fc[i].fp += per[f].fp, fc[i].fn += per[f].fn;
            }
        }
        double tp = 0, fp = 0, fn = 0;
        for (int f = 0; f < F; f++) {
            tp += sum[f].tp, fp += sum[f].fp, fn += sum[f].fn;
            m->fp_[f] = sum[f].tp + sum[f].fp ? (double)sum[f].tp / (sum[f].tp + sum[f].fp) : 0;
            m->fr_[f] = sum[f].tp + sum[f].fn ? (double)sum[f].tp / (sum[f].tp + sum[f].fn) : 0;
            m->ff_[f] = 2.0 * sum[f].tp + sum[f].fp + sum[f].fn
                            ? 2.0 * sum[f].tp / (2.0 * sum[f].tp + sum[f].fp + sum[f].fn)
                            : 0;
        }
        m->field_p = tp + fp ? tp / (tp + fp) : 0;
        m->field_r = tp + fn ? tp / (tp + fn) : 0;
        c.fc = fc;
        m->field_f1 = bootstrap(t, n, st_micro_f1, &c);
        m->exact = bootstrap(t, n, st_mean, &c);
        c.x = valid;
        m->validity = bootstrap(t, n, st_mean, &c);
        m->bar = !strcmp(t->bar_metric, "exact_match") ? &m->exact
                 : !strcmp(t->bar_metric, "validity")  ? &m->validity
                                                       : &m->field_f1;
        free(per), free(sum), free(fc), free(valid);
    } else {
        double *cont = calloc((size_t)n, sizeof *cont), *chrf = calloc((size_t)n, sizeof *chrf);
        double *rl = calloc((size_t)n, sizeof *rl);
        if (!cont || !chrf || !rl) {
            free(cont), free(chrf), free(rl);
            goto oom;
        }
        for (int i = 0; i < n; i++) {
            const char *o = r->res[i].output ? r->res[i].output : "";
            char *g = trimmed(t->items[i].gold);
            cont[i] = g && strstr(o, g) != NULL;
            chrf[i] = eval_chrf(o, t->items[i].gold);
            rl[i] = eval_rougel(o, t->items[i].gold);
            free(g);
        }
        m->gen_exact = bootstrap(t, n, st_mean, &c);
        c.x = cont, m->contains = bootstrap(t, n, st_mean, &c);
        c.x = chrf, m->chrf = bootstrap(t, n, st_mean, &c);
        c.x = rl, m->rougel = bootstrap(t, n, st_mean, &c);
        m->bar = !strcmp(t->bar_metric, "exact_match") ? &m->gen_exact
                 : !strcmp(t->bar_metric, "contains")  ? &m->contains
                 : !strcmp(t->bar_metric, "rouge_l")   ? &m->rougel
                                                       : &m->chrf;
        free(cont), free(chrf), free(rl);
    }
    static const double qs[3] = {0.5, 0.95, 0.99};
    double sum_e2e = 0;
    for (int k = 0; k < 3; k++) {
        for (int i = 0; i < n; i++)
            lat[i] = r->res[i].ttft_ms;
        m->ttft[k] = pctl(lat, n, qs[k]);
        for (int i = 0; i < n; i++)
            lat[i] = r->res[i].e2e_ms;
        m->e2e[k] = pctl(lat, n, qs[k]);
    }
    for (int i = 0; i < n; i++)
        sum_e2e += r->res[i].e2e_ms;
    /* items/s from this run's wall time; a run resumed whole has only the
     * latencies: their sum over the concurrency */
    double wall = r->n_run + r->n_prev > 0 && r->wall_s > 0 ? r->wall_s * n / (r->n_run + r->n_prev)
                                                            : sum_e2e / 1e3 / t->concurrency;
    m->items_per_s = wall > 0 ? n / wall : NAN;
    m->cost_per_1k = t->price_per_hour / 3600.0 * 1000.0 / m->items_per_s;
    m->peak_mb = r->peak_mb;
    if (ref && ref != r) {
        double kl = 0, agree = 0;
        int k = 0;
        for (int i = 0; i < n; i++) {
            if (!ref->res[i].n_top || !r->res[i].n_top) continue;
            kl += kl_top(&ref->res[i], &r->res[i]);
            agree += ref->res[i].top[0].token == r->res[i].top[0].token;
            k++;
        }
        if (k) m->has_drift = 1, m->kl = kl / k, m->top1 = agree / k;
    }
    free(x), free(lat), free(c.tp), free(c.fp), free(c.fn);
    return 0;
oom:
    free(x), free(lat), free(c.tp), free(c.fp), free(c.fn);
    fprintf(stderr, "slim eval: out of memory computing metrics\n");
    return 1;
}

void eval_metrics_free(eval_metrics *m) {
    free(m->prec), free(m->rec), free(m->f1), free(m->support), free(m->confusion);
    free(m->fp_), free(m->fr_), free(m->ff_);
    memset(m, 0, sizeof *m);
}
