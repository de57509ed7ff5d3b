/* MaskBench conformance and speed runner for the constraint engine.
 *
 *   python3 tools/maskbench/prepare.py ../shared/jsonschemabench /tmp/mb.jsonl
 *   make maskbench && build/maskbench -v models/vocab/llama3.gguf /tmp/mb.jsonl
 *
 * Per schema: compile (timed); per test instance: tokenize its compact text,
 * then per token compute the mask (timed in thread CPU time, single thread), check the token is
 * allowed and advance; at the end EOS must be allowed.  Counted as MaskBench
 * counts: passing (compiles, every valid instance accepted, every invalid one
 * rejected), compile error, validation error (a valid instance rejected),
 * invalidation error (an invalid instance accepted), timeout (10 s per
 * schema, wall clock), crash (here: a mask that disagrees with feeding the token, or an
 * internal error).  Options: -v VOCAB (a GGUF with tokenizer.ggml.*),
 * --no-cache (no per-state mask cache), --errors (print each failure),
 * --only SPLIT, --limit N, --slow US (print masks slower than US, with the parser
 * states each built: the first mask of a state builds the states its tokens reach). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "constrain/constrain.h"
#include "format/gguf.h"
#include "format/json.h"
#include "tokenizer/tokenizer.h"

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* This thread's CPU time: the machine is shared, and wall time would count
 * the time other processes held the core. */
static double cpu_now(void) {
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

typedef struct stats {
    char split[64];
    long schemas, with_tests, passing, compile_err, valid_err, invalid_err, timeout, crash;
    long no_test_compiled;
} stats;

typedef struct dvec {
    double *p;
    size_t n, cap;
} dvec;

static void dpush(dvec *v, double x) {
    if (v->n == v->cap) {
        v->cap = v->cap ? 2 * v->cap : 1 << 16;
        v->p = realloc(v->p, v->cap * sizeof(double));
        if (!v->p) exit(1);
    }
    v->p[v->n++] = x;
}

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double pct(dvec *v, double q) {
    if (!v->n) return 0;
    size_t i = (size_t)(q * (double)(v->n - 1) + 0.5);
    return v->p[i];
}

int main(int argc, char **argv) {
    const char *vocab_path = "models/vocab/llama3.gguf", *data = NULL, *only = NULL;
    bool cache = true, show = false;
    long limit = -1;
    double slow = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-v") && i + 1 < argc)
            vocab_path = argv[++i];
        else if (!strcmp(argv[i], "--no-cache"))
            cache = false;
        else if (!strcmp(argv[i], "--errors"))
            show = true;
        else if (!strcmp(argv[i], "--only") && i + 1 < argc)
            only = argv[++i];
        else if (!strcmp(argv[i], "--slow") && i + 1 < argc)
            slow = atof(argv[++i]);
        else if (!strcmp(argv[i], "--limit") && i + 1 < argc)
            limit = atol(argv[++i]);
        else
            data = argv[i];
    }
    if (!data) {
        fprintf(stderr, "usage: maskbench [-v VOCAB.gguf] [--no-cache] [--errors] DATA.jsonl\n");
        return 2;
    }
    slim_gguf *g = NULL;
    slim_vocab *v = NULL;
    slim_ctokens *toks = NULL;
    if (slim_gguf_open(vocab_path, true, &g) != SLIM_OK || slim_vocab_from_gguf(g, &v) != SLIM_OK) {
        fprintf(stderr, "%s: %s\n", vocab_path, slim_last_error());
        return 1;
    }
    double t0 = now();
    if (slim_ctokens_from_vocab(v, &toks) != SLIM_OK) {
        fprintf(stderr, "tokens: %s\n", slim_last_error());
        return 1;
    }
    fprintf(stderr,
            "vocab %s: %d tokens, trie %d nodes (longest token %d bytes), built in %.0f ms\n",
            vocab_path, toks->n_vocab, toks->safe.n + toks->unsafe.n,
            toks->safe.max_depth > toks->unsafe.max_depth ? toks->safe.max_depth
                                                          : toks->unsafe.max_depth,
            1e3 * (now() - t0));
    FILE *f = fopen(data, "r");
    if (!f) {
        perror(data);
        return 1;
    }
    stats st[64];
    int nst = 0;
    dvec mask_t = {0}, comp_t = {0};
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    int32_t *tk = malloc(sizeof(int32_t) * (1 << 20));
    long count = 0;
    while ((len = getline(&line, &cap, f)) > 0) {
        slim_json_doc *doc = NULL;
        if (slim_json_parse(line, (size_t)len, "data", &doc) != SLIM_OK) {
            fprintf(stderr, "%s\n", slim_last_error());
            return 1;
        }
        const slim_json *r = slim_json_root(doc);
        const char *split = slim_json_str(slim_json_get(r, "split"), NULL);
        if (only && strcmp(split, only)) {
            slim_json_free(doc);
            continue;
        }
        if (limit >= 0 && count++ >= limit) {
            slim_json_free(doc);
            break;
        }
        const char *id = slim_json_str(slim_json_get(r, "id"), NULL);
        int si = 0;
        while (si < nst && strcmp(st[si].split, split))
            si++;
        if (si == nst) {
            memset(&st[nst], 0, sizeof st[0]);
            snprintf(st[nst].split, sizeof st[0].split, "%s", split);
            nst++;
        }
        stats *S = &st[si];
        S->schemas++;
        size_t slen;
        const char *schema = slim_json_str(slim_json_get(r, "schema"), &slen);
        const slim_json *tests = slim_json_get(r, "tests");
        size_t nt = slim_json_len(tests);
        if (nt) S->with_tests++;
        slim_cgrammar *gr = NULL;
        double c0 = cpu_now();
        slim_status cs =
            slim_constrain_compile(SLIM_CONSTRAINT_JSON_SCHEMA, schema, slen, NULL, &gr);
        double c1 = cpu_now();
        if (cs != SLIM_OK) {
            if (nt) S->compile_err++;
            if (show) printf("COMPILE %s %s: %s\n", split, id, slim_last_error());
            slim_json_free(doc);
            continue;
        }
        dpush(&comp_t, c1 - c0);
        if (!nt) {
            S->no_test_compiled++;
            slim_cgrammar_free(gr);
            slim_json_free(doc);
            continue;
        }
        slim_cmatch *m = NULL;
        if (slim_cmatch_new(gr, toks, &m) != SLIM_OK) {
            S->crash++;
            slim_cgrammar_free(gr);
            slim_json_free(doc);
            continue;
        }
        slim_cmatch_set_mask_cache(m, cache);
        bool ok = true, timed_out = false, crashed = false, verr = false, ierr = false;
        double start = now();
        for (size_t ti = 0; ti < nt && !timed_out && !crashed; ti++) {
            const slim_json *t = slim_json_at(tests, ti);
            bool valid = false;
            slim_json_bool(slim_json_get(t, "valid"), &valid);
            size_t tl;
            const char *text = slim_json_str(slim_json_get(t, "text"), &tl);
            size_t n = 0;
            if (slim_vocab_tokenize(v, text, tl, 0, tk, 1 << 20, &n) != SLIM_OK) {
                crashed = true;
                break;
            }
            int32_t s = slim_cmatch_start(m);
            bool accepted = true;
            size_t at = 0;
            for (size_t k = 0; k <= n; k++) {
                size_t ns0 = 0, ns1 = 0;
                if (slow > 0) slim_cmatch_stats(m, &ns0, NULL, NULL);
                double m0 = cpu_now();
                const uint32_t *mask = slim_cmatch_mask(m, s, NULL);
                double m1 = cpu_now();
                if (slow > 0) slim_cmatch_stats(m, &ns1, NULL, NULL);
                dpush(&mask_t, m1 - m0);
                if (slow > 0 && m1 - m0 > slow * 1e-6) {
                    char pre[512];
                    size_t pn = 0;
                    slim_vocab_detokenize(v, tk, k, 0, pre, sizeof pre - 1, &pn);
                    pre[pn < sizeof pre ? pn : sizeof pre - 1] = 0;
                    printf("SLOW %.0f us %s %s token %zu (%zu new parser states): ...%s\n",
                           1e6 * (m1 - m0), split, id, k, ns1 - ns0, pn > 80 ? pre + pn - 80 : pre);
                }
                int32_t tok = k < n ? tk[k] : slim_vocab_eos(v);
                bool bit = (mask[tok >> 5] >> (tok & 31)) & 1;
                if (k == n) { /* end: any end-of-generation token allowed? */
                    bit = slim_cmatch_accepting(m, s);
                    if (!bit) accepted = false, at = k;
                    break;
                }
                int32_t ns = slim_cmatch_advance_token(m, s, tok);
                if (bit != (ns != SLIM_CSTATE_DEAD)) {
                    crashed = true;
                    if (show) printf("MISMATCH %s %s token %zu\n", split, id, k);
                    break;
                }
                if (!bit) {
                    accepted = false;
                    at = k;
                    break;
                }
                s = ns;
                if (now() - start > 10.0) {
                    timed_out = true;
                    break;
                }
            }
            if (valid && !accepted) {
                verr = true;
                if (show) {
                    printf("VALIDATION %s %s at token %zu/%zu: %.*s<<HERE>>%s\n", split, id, at, n,
                           0, "", "");
                    char pre[4096];
                    size_t pn = 0;
                    slim_vocab_detokenize(v, tk, at, 0, pre, sizeof pre - 1, &pn);
                    pre[pn < sizeof pre ? pn : sizeof pre - 1] = 0;
                    printf("   text: %.300s\n   ok up to: ...%.120s\n", text,
                           pn > 120 ? pre + pn - 120 : pre);
                }
            }
            if (!valid && accepted) {
                ierr = true;
                if (show) printf("INVALIDATION %s %s: %.300s\n", split, id, text);
            }
        }
        if (timed_out)
            S->timeout++;
        else if (crashed)
            S->crash++;
        else if (verr)
            S->valid_err++;
        else if (ierr)
            S->invalid_err++;
        else
            S->passing++;
        (void)ok;
        slim_cmatch_free(m);
        slim_cgrammar_free(gr);
        slim_json_free(doc);
    }
    printf(
        "| split | schemas | with tests | passing | compile error | validation error | "
        "invalidation error | timeout | crash |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    stats T = {0};
    snprintf(T.split, sizeof T.split, "TOTAL");
    for (int i = 0; i <= nst; i++) {
        stats *S = i < nst ? &st[i] : &T;
        if (i < nst) {
            T.schemas += S->schemas, T.with_tests += S->with_tests, T.passing += S->passing;
            T.compile_err += S->compile_err, T.valid_err += S->valid_err;
            T.invalid_err += S->invalid_err, T.timeout += S->timeout, T.crash += S->crash;
        }
        printf("| %s | %ld | %ld | %ld (%.1f%%) | %ld | %ld | %ld | %ld | %ld |\n", S->split,
               S->schemas, S->with_tests, S->passing,
               S->with_tests ? 100.0 * (double)S->passing / (double)S->with_tests : 0.0,
               S->compile_err, S->valid_err, S->invalid_err, S->timeout, S->crash);
    }
    qsort(mask_t.p, mask_t.n, sizeof(double), cmp_d);
    qsort(comp_t.p, comp_t.n, sizeof(double), cmp_d);
    double sum = 0;
    for (size_t i = 0; i < mask_t.n; i++)
        sum += mask_t.p[i];
    printf("\nmask (%s, %s cache): %zu masks, mean %.1f us, p50 %.1f, p99 %.1f, p99.9 %.1f, max "
           "%.0f us\n",
           vocab_path, cache ? "with" : "no", mask_t.n,
           1e6 * sum / (double)(mask_t.n ? mask_t.n : 1), 1e6 * pct(&mask_t, 0.5),
           1e6 * pct(&mask_t, 0.99), 1e6 * pct(&mask_t, 0.999),
           1e6 * (mask_t.n ? mask_t.p[mask_t.n - 1] : 0));
    printf("compile: %zu schemas, p50 %.0f us, p99 %.0f us, max %.0f us\n", comp_t.n,
           1e6 * pct(&comp_t, 0.5), 1e6 * pct(&comp_t, 0.99),
           1e6 * (comp_t.n ? comp_t.p[comp_t.n - 1] : 0));
    free(line);
    free(tk);
    free(mask_t.p);
    free(comp_t.p);
    fclose(f);
    slim_ctokens_free(toks);
    slim_vocab_free(v);
    slim_gguf_close(g);
    return 0;
}
