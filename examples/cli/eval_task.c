/* slim eval: the task file (schema in docs/EVAL.md): the dataset and its field
 * mapping, the labels or JSON Schema, the prompt template and few-shot
 * examples, the candidates, price, concurrency, bar and reference. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "eval.h"

#define TFAIL(...) (fprintf(stderr, "slim eval: " __VA_ARGS__), fputc('\n', stderr), 1)

static uint64_t fnv(uint64_t h, const void *p, size_t n) {
    const unsigned char *s = p;
    for (size_t i = 0; i < n; i++)
        h = (h ^ s[i]) * 0x100000001b3ull;
    return h;
}

static uint64_t splitmix(uint64_t *s) {
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static char *xstrdup(const char *s) {
    if (!s) return NULL;
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

/* "${NAME}/rest": NAME from the environment, else the task's "vars"; a
 * relative result is taken from the task file's directory. */
static char *resolve(const eval_task *t, const char *p) {
    sbuf b = {0};
    if (!strncmp(p, "${", 2)) {
        const char *close = strchr(p, '}');
        if (close) {
            char name[128];
            size_t n = (size_t)(close - p - 2);
            if (n < sizeof name) {
                memcpy(name, p + 2, n);
                name[n] = 0;
                const char *v = getenv(name);
                if (!v || !*v) v = ej_str(ej_get(ej_get(t->doc, "vars"), name));
                if (v) {
                    if (v[0] != '/') sb_printf(&b, "%s/", t->dir);
                    sb_puts(&b, v);
                    sb_puts(&b, close + 1);
                    return b.p;
                }
            }
        }
    }
    if (p[0] != '/') sb_printf(&b, "%s/", t->dir);
    sb_puts(&b, p);
    return b.p;
}

/* ---- datasets: CSV with a header, JSONL, or a JSON array of objects ------------------------- */
static ej *csv_record(char **names, int n_names, char **vals, int n_vals) {
    ej *o = calloc(1, sizeof *o);
    if (!o) return NULL;
    o->type = EJ_OBJ;
    o->items = calloc((size_t)n_names + 1, sizeof *o->items);
    o->keys = calloc((size_t)n_names + 1, sizeof *o->keys);
    if (!o->items || !o->keys) {
        ej_free(o);
        return NULL;
    }
    for (int i = 0; i < n_names; i++) {
        ej *v = calloc(1, sizeof *v);
        if (!v) break;
        v->type = EJ_STR;
        v->str = xstrdup(i < n_vals ? vals[i] : "");
        v->len = v->str ? strlen(v->str) : 0;
        o->keys[o->n] = xstrdup(names[i]);
        o->items[o->n++] = v;
    }
    return o;
}

/* One CSV row (RFC 4180 quoting) from *s; fields are malloc'd.  0 at the end. */
static int csv_row(const char **s, const char *end, char ***out, int *n_out) {
    if (*s >= end) return 0;
    char **f = NULL;
    int n = 0;
    for (;;) {
        sbuf b = {0};
        const char *p = *s;
        if (p < end && *p == '"') {
            p++;
            while (p < end) {
                if (*p == '"' && p + 1 < end && p[1] == '"')
                    sb_add(&b, "\"", 1), p += 2;
                else if (*p == '"') {
                    p++;
                    break;
                } else
                    sb_add(&b, p++, 1);
            }
        }
        while (p < end && *p != ',' && *p != '\n' && *p != '\r')
            sb_add(&b, p++, 1);
        sb_add(&b, "", 0);
        char **nf = realloc(f, (size_t)(n + 1) * sizeof *nf);
        if (!nf) break;
        f = nf;
        f[n++] = b.p ? b.p : xstrdup("");
        *s = p;
        if (p < end && *p == ',') {
            (*s)++;
            continue;
        }
        if (p < end && *p == '\r') p++;
        if (p < end && *p == '\n') p++;
        *s = p;
        break;
    }
    *out = f;
    *n_out = n;
    return 1;
}

static void free_strs(char **v, int n) {
    for (int i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

/* The records of a dataset file as an array. */
static ej *load_records(const char *path, const char *format) {
    size_t len;
    char *text = cli_read_file("eval", path, &len);
    if (!text) return NULL;
    const char *dot = strrchr(path, '.');
    if (!format) format = dot ? dot + 1 : "jsonl";
    ej *arr = calloc(1, sizeof *arr);
    char err[256];
    if (!arr) goto fail;
    arr->type = EJ_ARR;
    if (!strcmp(format, "csv")) {
        const char *s = text, *end = text + len;
        char **names;
        int n_names;
        if (!csv_row(&s, end, &names, &n_names)) {
            fprintf(stderr, "slim eval: %s: no header row\n", path);
            goto fail;
        }
        char **vals;
        int n_vals;
        size_t cap = 0;
        while (csv_row(&s, end, &vals, &n_vals)) {
            if (n_vals == 1 && !vals[0][0]) {
                free_strs(vals, n_vals);
                continue;
            }
            if (arr->n == cap) {
                cap = cap ? cap * 2 : 256;
                ej **ni = realloc(arr->items, cap * sizeof *ni);
                if (!ni) break;
                arr->items = ni;
            }
            ej *r = csv_record(names, n_names, vals, n_vals);
            free_strs(vals, n_vals);
            if (!r) break;
            arr->items[arr->n++] = r;
        }
        free_strs(names, n_names);
    } else if (!strcmp(format, "jsonl")) {
        size_t cap = 0, line = 0;
        for (char *p = text; p < text + len;) {
            char *nl = memchr(p, '\n', (size_t)(text + len - p));
            size_t n = nl ? (size_t)(nl - p) : (size_t)(text + len - p);
            line++;
            int blank = 1;
            for (size_t i = 0; i < n; i++)
                blank &= isspace((unsigned char)p[i]) != 0;
            if (!blank) {
                ej *r = ej_parse(p, n, err, sizeof err);
                if (!r) {
                    fprintf(stderr, "slim eval: %s: line %zu: %s\n", path, line, err);
                    goto fail;
                }
                if (arr->n == cap) {
                    cap = cap ? cap * 2 : 256;
                    ej **ni = realloc(arr->items, cap * sizeof *ni);
                    if (!ni) {
                        ej_free(r);
                        goto fail;
                    }
                    arr->items = ni;
                }
                arr->items[arr->n++] = r;
            }
            p += n + 1;
        }
    } else if (!strcmp(format, "json")) {
        ej_free(arr);
        arr = ej_parse(text, len, err, sizeof err);
        if (!arr || arr->type != EJ_ARR) {
            fprintf(stderr, "slim eval: %s: %s\n", path, arr ? "expected an array" : err);
            goto fail;
        }
    } else {
        fprintf(stderr, "slim eval: %s: format \"%s\" (expected csv, jsonl or json)\n", path,
                format);
        goto fail;
    }
    free(text);
    return arr;
fail:
    free(text);
    ej_free(arr);
    return NULL;
}

/* A value as prompt text: strings as they are, arrays joined with ", ". */
static void render_value(sbuf *b, const ej *v) {
    if (!v) return;
    if (v->type == EJ_STR)
        sb_add(b, v->str, v->len);
    else if (v->type == EJ_ARR)
        for (size_t i = 0; i < v->n; i++) {
            if (i) sb_puts(b, ", ");
            render_value(b, v->items[i]);
        }
    else
        sb_json(b, v);
}

/* Render template with the record's fields; stop at {answer} (*hit set) when
 * answer is NULL, else put answer there. */
static void render(sbuf *b, const char *tpl, const ej *rec, const char *answer, int *hit) {
    for (const char *p = tpl; *p;) {
        if (p[0] == '{' && p[1] == '{') {
            sb_add(b, "{", 1), p += 2;
            continue;
        }
        if (p[0] == '}' && p[1] == '}') {
            sb_add(b, "}", 1), p += 2;
            continue;
        }
        const char *close = p[0] == '{' ? strchr(p, '}') : NULL;
        if (!close) {
            sb_add(b, p++, 1);
            continue;
        }
        char name[256];
        size_t n = (size_t)(close - p - 1);
        if (n >= sizeof name) n = sizeof name - 1;
        memcpy(name, p + 1, n);
        name[n] = 0;
        p = close + 1;
        if (!strcmp(name, "answer")) {
            if (!answer) {
                if (hit) *hit = 1;
                return;
            }
            sb_puts(b, answer);
        } else
            render_value(b, ej_path(rec, name));
    }
}

char *eval_prompt(const eval_task *t, const slim_model *model, const eval_item *it,
                  char **answer_prefix) {
    sbuf b = {0};
    *answer_prefix = NULL;
    if (!t->chat) {
        if (t->instruction) sb_puts(&b, t->instruction);
        for (int k = 0; k < t->n_shots; k++)
            render(&b, t->template, t->shots[k].rec, t->shots[k].gold, NULL);
        int hit = 0;
        render(&b, t->template, it->rec, NULL, &hit);
        /* trailing spaces belong to the answer's first token ("Intent: x") */
        size_t end = b.n;
        while (end > 0 && b.p[end - 1] == ' ')
            end--;
        *answer_prefix = xstrdup(b.p ? b.p + end : "");
        if (b.p) b.p[b.n = end] = 0;
        return b.p ? b.p : xstrdup("");
    }
    int n_msg = 0;
    slim_chat_message *msgs = calloc((size_t)(2 * t->n_shots + 2), sizeof *msgs);
    sbuf *parts = calloc((size_t)(t->n_shots + 1), sizeof *parts);
    if (!msgs || !parts) goto out;
    if (t->system) msgs[n_msg++] = (slim_chat_message){"system", t->system};
    for (int k = 0; k <= t->n_shots; k++) {
        const eval_item *src = k < t->n_shots ? &t->shots[k] : it;
        if (k == 0 && t->instruction) sb_puts(&parts[k], t->instruction);
        int hit = 0;
        render(&parts[k], t->template, src->rec, NULL, &hit);
        size_t end = parts[k].n;
        while (end > 0 && isspace((unsigned char)parts[k].p[end - 1]))
            end--;
        if (parts[k].p) parts[k].p[parts[k].n = end] = 0;
        msgs[n_msg++] = (slim_chat_message){"user", parts[k].p ? parts[k].p : ""};
        if (k < t->n_shots) msgs[n_msg++] = (slim_chat_message){"assistant", src->gold};
    }
    size_t n = 0;
    if (slim_chat_render(model, NULL, msgs, (size_t)n_msg, 1, NULL, 0, &n) == SLIM_OK) {
        char *buf = malloc(n + 1);
        if (buf && slim_chat_render(model, NULL, msgs, (size_t)n_msg, 1, buf, n, &n) == SLIM_OK) {
            buf[n] = 0;
            sb_add(&b, buf, n);
        }
        free(buf);
    }
    *answer_prefix = xstrdup("");
out:
    for (int k = 0; parts && k <= t->n_shots; k++)
        sb_free(&parts[k]);
    free(parts);
    free(msgs);
    return b.p;
}

/* ---- items: gold answers from the field mapping ------------------------------------------- */
static int make_item(eval_task *t, const ej *data, ej *rec, size_t idx, eval_item *it) {
    const char *idf = ej_str(ej_get(data, "id"));
    const ej *idv = idf ? ej_path(rec, idf) : NULL;
    sbuf b = {0};
    if (idv)
        render_value(&b, idv);
    else
        sb_printf(&b, "%zu", idx);
    it->id = b.p;
    it->rec = rec;
    b = (sbuf){0};
    if (t->kind == EVAL_CLASSIFY || t->kind == EVAL_GENERATE) {
        const char *f = ej_str(ej_get(data, t->kind == EVAL_CLASSIFY ? "label" : "reference"));
        const ej *g = f ? ej_path(rec, f) : NULL;
        if (!g) return TFAIL("%s: record %zu has no \"%s\"", t->path, idx, f ? f : "(label)");
        render_value(&b, g);
        it->gold = b.p ? b.p : xstrdup("");
        return 0;
    }
    /* extract: a gold object, or spans over a text field */
    ej *gold = calloc(1, sizeof *gold);
    if (!gold) return 1;
    gold->type = EJ_OBJ;
    const ej *spans = ej_get(data, "gold_spans");
    const char *gf = ej_str(ej_get(data, "gold"));
    const ej *given = gf ? ej_path(rec, gf) : NULL;
    for (int k = 0; k < t->n_fields; k++) {
        const char *want = t->fields[k];
        char *val = NULL;
        if (given) {
            const ej *v = ej_get(given, want);
            if (v && v->type != EJ_NULL) {
                sbuf vb = {0};
                render_value(&vb, v);
                val = vb.p ? vb.p : xstrdup("");
            }
        } else if (spans) {
            const char *text = ej_str(ej_path(rec, ej_str(ej_get(spans, "text"))));
            const ej *list = ej_path(rec, ej_str(ej_get(spans, "list")));
            size_t tl = text ? strlen(text) : 0;
            for (size_t j = 0; text && list && j < list->n && !val; j++) {
                const ej *s = list->items[j];
                const char *name = ej_str(ej_path(s, ej_str(ej_get(spans, "name"))));
                if (!name || strcmp(name, want)) continue;
                double a = 0, e = (double)tl;
                ej_num(ej_path(s, ej_str(ej_get(spans, "start"))), &a);
                ej_num(ej_path(s, ej_str(ej_get(spans, "end"))), &e);
                if (a < 0 || e > (double)tl || a > e) continue;
                val = malloc((size_t)(e - a) + 1);
                if (val) memcpy(val, text + (size_t)a, (size_t)(e - a)), val[(size_t)(e - a)] = 0;
            }
        }
        if (!val) continue;
        ej *sv = calloc(1, sizeof *sv);
        ej **ni = realloc(gold->items, (gold->n + 1) * sizeof *ni);
        if (ni) gold->items = ni;
        char **nk = realloc(gold->keys, (gold->n + 1) * sizeof *nk);
        if (nk) gold->keys = nk;
        if (!sv || !ni || !nk) {
            free(sv), free(val), ej_free(gold);
            return 1;
        }
        sv->type = EJ_STR, sv->str = val, sv->len = strlen(val);
        gold->keys[gold->n] = xstrdup(want);
        gold->items[gold->n++] = sv;
    }
    it->gold_obj = gold;
    sb_json(&b, gold);
    it->gold = b.p;
    return 0;
}

/* n indices of [0, total) drawn with seed, in ascending order. */
static size_t *sample_idx(size_t total, size_t n, uint64_t seed) {
    size_t *all = malloc((total ? total : 1) * sizeof *all);
    if (!all) return NULL;
    for (size_t i = 0; i < total; i++)
        all[i] = i;
    for (size_t i = 0; i < n && i < total; i++) {
        size_t j = i + (size_t)(splitmix(&seed) % (total - i));
        size_t tmp = all[i];
        all[i] = all[j], all[j] = tmp;
    }
    for (size_t i = 1; i < n; i++) /* insertion sort of the n chosen */
        for (size_t j = i; j > 0 && all[j - 1] > all[j]; j--) {
            size_t tmp = all[j];
            all[j] = all[j - 1], all[j - 1] = tmp;
        }
    return all;
}

/* Records of a dataset section -> items (sample / limit applied). */
static int load_items(eval_task *t, const ej *data, const char *what, size_t want, uint64_t seed,
                      eval_item **out, int *n_out) {
    const char *p = ej_str(ej_get(data, "path"));
    if (!p) return TFAIL("%s: %s.path: missing", t->path, what);
    char *path = resolve(t, p);
    ej *recs = path ? load_records(path, ej_str(ej_get(data, "format"))) : NULL;
    free(path);
    if (!recs) return 1;
    const char *lf = ej_str(ej_get(ej_get(t->doc, "data"), "label"));
    const ej *only = ej_get(data, "only_known_labels");
    if (t->kind == EVAL_CLASSIFY && lf && only && only->type == EJ_BOOL && only->num) {
        size_t w = 0; /* a task over a subset of the labels: the other records go */
        for (size_t i = 0; i < recs->n; i++) {
            const char *g = ej_str(ej_path(recs->items[i], lf));
            int known = 0;
            for (int l = 0; g && l < t->n_labels && !known; l++)
                known = !strcmp(g, t->labels[l]);
            if (known)
                recs->items[w++] = recs->items[i];
            else
                ej_free(recs->items[i]);
        }
        recs->n = w;
    }
    size_t n = want && want < recs->n ? want : recs->n;
    size_t *idx = sample_idx(recs->n, n, seed);
    eval_item *items = calloc(n ? n : 1, sizeof *items);
    int rc = !idx || !items;
    for (size_t i = 0; i < n && !rc; i++) {
        rc = make_item(t, ej_get(t->doc, "data"), recs->items[idx[i]], idx[i], &items[i]);
        recs->items[idx[i]] = NULL; /* now owned by the item */
    }
    free(idx);
    ej_free(recs);
    *out = items;
    *n_out = (int)n;
    return rc;
}

static char **str_array(const ej *v, int *n) {
    *n = 0;
    if (!v || v->type != EJ_ARR) return NULL;
    char **out = calloc(v->n + 1, sizeof *out);
    for (size_t i = 0; out && i < v->n; i++)
        if (ej_str(v->items[i])) out[(*n)++] = xstrdup(ej_str(v->items[i]));
    return out;
}

static int get_int(const ej *o, const char *k, int def) {
    double x;
    return ej_num(ej_get(o, k), &x) ? (int)x : def;
}

int eval_task_load(const char *path, int limit, eval_task *t) {
    memset(t, 0, sizeof *t);
    size_t len;
    char *text = cli_read_file("eval", path, &len);
    if (!text) return 1;
    char err[256];
    t->doc = ej_parse(text, len, err, sizeof err);
    uint64_t h = fnv(0xcbf29ce484222325ull, text, len);
    free(text);
    if (!t->doc || t->doc->type != EJ_OBJ)
        return TFAIL("%s: %s", path, t->doc ? "expected an object" : err);
    t->path = xstrdup(path);
    const char *slash = strrchr(path, '/');
    t->dir = xstrdup(slash ? path : ".");
    if (slash && t->dir) t->dir[slash - path] = 0;
    const ej *d = t->doc;
    t->name = xstrdup(ej_str(ej_get(d, "name")) ? ej_str(ej_get(d, "name")) : path);
    const char *kind = ej_str(ej_get(d, "kind"));
    if (!kind) return TFAIL("%s: kind: missing (classify, extract or generate)", path);
    if (!strcmp(kind, "classify"))
        t->kind = EVAL_CLASSIFY;
    else if (!strcmp(kind, "extract"))
        t->kind = EVAL_EXTRACT;
    else if (!strcmp(kind, "generate"))
        t->kind = EVAL_GENERATE;
    else
        return TFAIL("%s: kind: \"%s\" (expected classify, extract or generate)", path, kind);

    if (t->kind == EVAL_CLASSIFY) {
        const ej *lv = ej_get(d, "labels");
        ej *file = NULL;
        if (lv && lv->type == EJ_OBJ && ej_str(ej_get(lv, "path"))) {
            char *lp = resolve(t, ej_str(ej_get(lv, "path")));
            size_t ll;
            char *lt = lp ? cli_read_file("eval", lp, &ll) : NULL;
            file = lt ? ej_parse(lt, ll, err, sizeof err) : NULL;
            if (lt && !file) fprintf(stderr, "slim eval: %s: %s\n", lp, err);
            free(lt), free(lp);
            lv = file;
        }
        t->labels = str_array(lv, &t->n_labels);
        ej_free(file);
        if (t->n_labels < 2) return TFAIL("%s: labels: expected at least two labels", path);
    } else if (t->kind == EVAL_EXTRACT) {
        const ej *props = ej_get(ej_get(d, "schema"), "properties");
        if (!props || props->type != EJ_OBJ || !props->n)
            return TFAIL("%s: schema.properties: expected an object of fields", path);
        t->fields = calloc(props->n, sizeof *t->fields);
        for (size_t i = 0; t->fields && i < props->n; i++)
            t->fields[t->n_fields++] = xstrdup(props->keys[i]);
        t->schema = (ej *)ej_get(d, "schema");
    }
    const ej *pr = ej_get(d, "prompt");
    const char *tpl = ej_str(ej_get(pr, "template"));
    if (!tpl || !strstr(tpl, "{answer}"))
        return TFAIL("%s: prompt.template: missing, or without {answer}", path);
    t->template = xstrdup(tpl);
    t->instruction = xstrdup(ej_str(ej_get(pr, "instruction")));
    t->system = xstrdup(ej_str(ej_get(pr, "system")));
    t->label_suffix =
        xstrdup(ej_str(ej_get(pr, "label_suffix")) ? ej_str(ej_get(pr, "label_suffix")) : "");
    t->chat = ej_get(pr, "chat") && ej_get(pr, "chat")->num != 0;
    t->stop = str_array(ej_get(pr, "stop"), &t->n_stop);
    t->max_tokens = get_int(pr, "max_tokens", 64);

    const ej *data = ej_get(d, "data");
    int sample = get_int(data, "sample", 0);
    if (limit > 0 && (sample == 0 || limit < sample)) sample = limit;
    if (load_items(t, data, "data", (size_t)sample, (uint64_t)get_int(data, "seed", 1), &t->items,
                   &t->n_items))
        return 1;
    if (!t->n_items) return TFAIL("%s: data: no items", path);
    const ej *fs = ej_get(d, "fewshot");
    int k = get_int(fs, "k", 0);
    if (fs && k > 0 &&
        load_items(t, fs, "fewshot", (size_t)k, (uint64_t)get_int(fs, "seed", 1), &t->shots,
                   &t->n_shots))
        return 1;
    for (int i = 0; t->kind == EVAL_CLASSIFY && i < t->n_items; i++) {
        int found = 0;
        for (int l = 0; l < t->n_labels && !found; l++)
            found = !strcmp(t->labels[l], t->items[i].gold);
        if (!found)
            return TFAIL("%s: item %s: label \"%s\" is not in labels", path, t->items[i].id,
                         t->items[i].gold);
    }

    const ej *cs = ej_get(d, "candidates");
    if (!cs || cs->type != EJ_ARR || !cs->n) return TFAIL("%s: candidates: expected a list", path);
    t->cands = calloc(cs->n, sizeof *t->cands);
    if (!t->cands) return 1;
    for (size_t i = 0; i < cs->n; i++) {
        const ej *c = cs->items[i];
        eval_candidate *e = &t->cands[t->n_cands++];
        const char *m = ej_str(ej_get(c, "model"));
        e->endpoint = xstrdup(ej_str(ej_get(c, "endpoint")));
        if (!m && !e->endpoint) return TFAIL("%s: candidates[%zu]: no model", path, i);
        e->model = m ? resolve(t, m) : NULL;
        e->name = xstrdup(ej_str(ej_get(c, "name")) ? ej_str(ej_get(c, "name")) : m);
        e->weight_type = xstrdup(ej_str(ej_get(c, "weight_type")));
        e->lora = ej_str(ej_get(c, "lora")) ? resolve(t, ej_str(ej_get(c, "lora"))) : NULL;
        e->lora_scale = 1;
        ej_num(ej_get(c, "lora_scale"), &e->lora_scale);
        e->api_model = xstrdup(ej_str(ej_get(c, "api_model")));
        e->api_key_env = xstrdup(ej_str(ej_get(c, "api_key_env")));
    }
    t->reference = -1;
    const char *ref = ej_str(ej_get(d, "reference"));
    for (int i = 0; ref && i < t->n_cands; i++)
        if (!strcmp(t->cands[i].name, ref)) t->reference = i;
    if (ref && t->reference < 0) return TFAIL("%s: reference: no candidate \"%s\"", path, ref);
    t->price_per_hour = 0;
    ej_num(ej_get(d, "price_per_hour"), &t->price_per_hour);
    t->concurrency = get_int(d, "concurrency", 1);
    t->threads = get_int(d, "threads", 0);
    if (t->concurrency < 1 || t->concurrency > 256)
        return TFAIL("%s: concurrency: expected 1..256", path);
    const ej *bar = ej_get(d, "bar");
    const char *bm = ej_str(ej_get(bar, "metric"));
    t->bar_metric = xstrdup(bm ? bm
                               : (t->kind == EVAL_CLASSIFY  ? "accuracy"
                                  : t->kind == EVAL_EXTRACT ? "field_f1"
                                                            : "chrf"));
    if (!eval_metric_known(t->kind, t->bar_metric))
        return TFAIL("%s: bar.metric: \"%s\" is not a metric of a %s task", path, t->bar_metric,
                     kind);
    t->bar_threshold = 0;
    ej_num(ej_get(bar, "threshold"), &t->bar_threshold);
    const ej *bs = ej_get(d, "bootstrap");
    t->boot_samples = get_int(bs, "samples", 10000);
    t->boot_seed = (uint64_t)get_int(bs, "seed", 1);
    if (t->boot_samples < 100) return TFAIL("%s: bootstrap.samples: at least 100", path);

    /* the hash covers the task file and the items it selected */
    for (int i = 0; i < t->n_items; i++) {
        h = fnv(h, t->items[i].id, strlen(t->items[i].id) + 1);
        h = fnv(h, t->items[i].gold, strlen(t->items[i].gold) + 1);
    }
    char hex[20];
    snprintf(hex, sizeof hex, "%016llx", (unsigned long long)h);
    t->hash = xstrdup(hex);
    return 0;
}

static void free_items(eval_item *v, int n) {
    for (int i = 0; v && i < n; i++) {
        free(v[i].id), free(v[i].gold);
        ej_free(v[i].rec), ej_free(v[i].gold_obj);
    }
    free(v);
}

void eval_task_free(eval_task *t) {
    free_items(t->items, t->n_items);
    free_items(t->shots, t->n_shots);
    free_strs(t->labels, t->n_labels);
    free_strs(t->fields, t->n_fields);
    free_strs(t->stop, t->n_stop);
    for (int i = 0; t->cands && i < t->n_cands; i++) {
        eval_candidate *c = &t->cands[i];
        free(c->name), free(c->model), free(c->weight_type), free(c->lora), free(c->endpoint);
        free(c->api_model), free(c->api_key_env);
    }
    free(t->cands);
    free(t->path), free(t->dir), free(t->name), free(t->instruction), free(t->template);
    free(t->system), free(t->label_suffix), free(t->bar_metric), free(t->hash);
    ej_free(t->doc);
    memset(t, 0, sizeof *t);
}
