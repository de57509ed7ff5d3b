/* See backend_compare.h. */
#include "backend_compare.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "slim.h"

typedef struct side {
    slim_model *model;
    slim_context *ctx;
} side;

static int fail(backend_compare_result *r, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->why, sizeof r->why, fmt, ap);
    va_end(ap);
    return 1;
}

static int open_side(const char *path, int backend, side *s, backend_compare_result *r) {
    slim_model_params mp = slim_model_default_params();
    mp.backend = backend;
    if (slim_model_load(path, &mp, &s->model))
        return fail(r, "load (backend %d): %s", backend, slim_last_error());
    slim_context_params cp = slim_context_default_params();
    cp.n_ctx = 64;
    cp.n_batch = 64;
    cp.n_threads = 1;
    if (slim_context_create(s->model, &cp, &s->ctx))
        return fail(r, "context (backend %d): %s", backend, slim_last_error());
    return 0;
}

static int argmax(const float *x, int n) {
    int best = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[best]) best = i;
    return best;
}

/* KL(p || q) of the softmaxes of two logit rows, in nats. */
static double kl_div(const float *p, const float *q, int n) {
    double mp = p[0], mq = q[0], sp = 0, sq = 0, kl = 0;
    for (int i = 1; i < n; i++)
        mp = fmax(mp, p[i]), mq = fmax(mq, q[i]);
    for (int i = 0; i < n; i++)
        sp += exp(p[i] - mp), sq += exp(q[i] - mq);
    for (int i = 0; i < n; i++) {
        const double lp = p[i] - mp - log(sp), lq = q[i] - mq - log(sq);
        kl += exp(lp) * (lp - lq);
    }
    return kl;
}

static int compare_row(const char *what, int pos, const float *cpu, const float *dev, int n,
                       double tol, int strict, double *worst, backend_compare_result *r) {
    double maxabs = 0, maxdiff = 0;
    for (int i = 0; i < n; i++) {
        if (!isfinite(dev[i]))
            return fail(r, "%s position %d: logit %d is %g", what, pos, i, dev[i]);
        maxabs = fmax(maxabs, fabs(cpu[i]));
        maxdiff = fmax(maxdiff, fabs((double)dev[i] - cpu[i]));
    }
    const double rel = maxdiff / (maxabs > 0 ? maxabs : 1);
    if (rel > *worst) *worst = rel;
    const int a = argmax(cpu, n), b = argmax(dev, n);
    r->mean_kl += kl_div(cpu, dev, n);
    r->positions++;
    r->top1_same += a == b;
    if (strict && a != b)
        return fail(r, "%s position %d: top-1 %d (cpu, %.5f) vs %d (device, %.5f)", what, pos, a,
                    cpu[a], b, dev[b]);
    if (strict && rel > tol)
        return fail(r, "%s position %d: relative logit error %.3g > %.3g", what, pos, rel, tol);
    return 0;
}

int backend_compare(const char *path, int backend, double tol, int strict, int all_logits,
                    backend_compare_result *r) {
    memset(r, 0, sizeof *r);
    side cpu = {0}, dev = {0};
    float *lc = NULL, *ld = NULL;
    int rc = 1;
    if (open_side(path, SLIM_BACKEND_CPU, &cpu, r) || open_side(path, backend, &dev, r)) goto out;
    slim_model_info info = {.struct_size = sizeof info};
    if (slim_model_get_info(cpu.model, &info)) {
        fail(r, "info: %s", slim_last_error());
        goto out;
    }
    const int V = info.n_vocab, P = BACKEND_COMPARE_PREFILL;
    /* A real sentence where the vocabulary has one, topped up with fixed ids. */
    const char *text = "The history of the printing press begins in the fifteenth century, when "
                       "movable type changed how books were made and who could read them.";
    slim_token toks[256];
    size_t n = 0;
    slim_tokenize(cpu.model, text, strlen(text), SLIM_TOKENIZE_ADD_BOS, toks, 256, &n);
    for (size_t i = n; i < (size_t)P; i++)
        toks[i] = (slim_token)((i * 7919u + 13u) % (unsigned)V);
    lc = malloc((size_t)P * (size_t)V * sizeof *lc);
    ld = malloc((size_t)P * (size_t)V * sizeof *ld);
    if (!lc || !ld) {
        fail(r, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < (size_t)P * (size_t)V; i++)
        ld[i] = NAN;
    if (slim_prefill(cpu.ctx, toks, (size_t)P, all_logits ? lc : NULL)) {
        fail(r, "cpu prefill: %s", slim_last_error());
        goto out;
    }
    if (slim_prefill(dev.ctx, toks, (size_t)P, all_logits ? ld : NULL)) {
        fail(r, "device prefill: %s", slim_last_error());
        goto out;
    }
    if (all_logits) {
        for (int p = 0; p < P; p++)
            if (compare_row("prefill", p, lc + (size_t)p * V, ld + (size_t)p * V, V, tol, strict,
                            &r->worst_prefill, r))
                goto out;
    } else if (compare_row("prefill", P - 1, slim_get_logits(cpu.ctx), slim_get_logits(dev.ctx), V,
                           tol, strict, &r->worst_prefill, r)) {
        goto out;
    }
    for (int step = 0; step < BACKEND_COMPARE_DECODE; step++) {
        const slim_token next = argmax(slim_get_logits(cpu.ctx), V);
        if (slim_decode(cpu.ctx, next)) {
            fail(r, "cpu decode: %s", slim_last_error());
            goto out;
        }
        if (slim_decode(dev.ctx, next)) {
            fail(r, "device decode %d: %s", step, slim_last_error());
            goto out;
        }
        if (compare_row("decode", P + step, slim_get_logits(cpu.ctx), slim_get_logits(dev.ctx), V,
                        tol, strict, &r->worst_decode, r))
            goto out;
    }
    rc = 0;
out:
    if (r->positions) r->mean_kl /= r->positions;
    free(lc);
    free(ld);
    slim_context_free(cpu.ctx);
    slim_context_free(dev.ctx);
    slim_model_free(cpu.model);
    slim_model_free(dev.model);
    return rc;
}
