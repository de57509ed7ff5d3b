/* Token sampler: penalties, temperature, top-k, top-p, min-p and a seeded draw.
 *
 * The semantics follow llama.cpp's samplers, applied in the order the header
 * documents.  The work happens on scratch buffers owned by the sampler; the
 * caller's logits are never written.  Nothing sorts the whole vocabulary:
 * top-k is a quickselect, min-p is a linear filter in log space, and top-p
 * sorts a growing prefix found by partial selection until the cumulative
 * probability reaches p.  The RNG is xoshiro256** seeded through splitmix64,
 * so a seed gives the same stream on every platform. */
#include "core/error.h"
#include "runtime/constraint.h"
#include "runtime/sampler.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct cand {
    float s; /* shifted, scaled logit (max is 0); later the weight exp(s) */
    int32_t id;
} cand;

struct slim_sampler {
    slim_sampler_params p;
    float min_p_log; /* log(min_p), or -inf when min-p is off */
    uint64_t seed_state[4];
    uint64_t rng[4];
    int32_t *hist;     /* ring of the last hist_cap accepted tokens */
    int32_t *hist_tmp; /* scratch copy of the window for counting */
    int32_t hist_cap, hist_n, hist_head;
    float *vals; /* n_vocab penalised, sanitised logits */
    size_t vals_cap;
    cand *cands;
    size_t cands_cap;
    slim_constraint *con; /* attached constraint (a reference), or NULL */
    slim_constraint_state cstate;
    uint32_t *mbuf; /* its mask, copied out */
    size_t mbuf_cap;
    slim_logit_bias *bias; /* the caller's logit_bias, copied (p.logit_bias points here) */
};

/* ---- RNG ---------------------------------------------------------------- */

static uint64_t splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

static uint64_t xoshiro_next(uint64_t s[4]) {
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

/* Uniform double in [0, 1) from the top 53 bits. */
static double rng_uniform(slim_sampler *s) {
    return (double)(xoshiro_next(s->rng) >> 11) * 0x1.0p-53;
}

/* ---- params ------------------------------------------------------------- */

slim_sampler_params slim_sampler_default_params(void) {
    slim_sampler_params p;
    memset(&p, 0, sizeof p);
    p.struct_size = sizeof p;
    p.temperature = 0.8f;
    p.top_k = 40;
    p.top_p = 0.95f;
    p.min_p = 0.05f;
    p.repeat_penalty = 1.0f;
    p.repeat_last_n = 64;
    p.presence_penalty = 0.0f;
    p.frequency_penalty = 0.0f;
    p.seed = 0;
    return p;
}

/* Copy the fields an older caller's struct_size covers; the rest keep defaults. */
static slim_status read_params(const slim_sampler_params *in, slim_sampler_params *p) {
    *p = slim_sampler_default_params();
    if (!in) return SLIM_OK;
    size_t n = in->struct_size;
    if (n < offsetof(slim_sampler_params, temperature) || n > sizeof *in)
        return slim_error(SLIM_ERR_INVALID_ARG,
                          "slim_sampler_params.struct_size %zu: expected %zu..%zu (use "
                          "slim_sampler_default_params())",
                          n, offsetof(slim_sampler_params, temperature), sizeof *in);
#define COPY(f)                                                                                    \
    if (offsetof(slim_sampler_params, f) + sizeof in->f <= n) p->f = in->f;
    COPY(temperature)
    COPY(top_k)
    COPY(top_p)
    COPY(min_p)
    COPY(repeat_penalty)
    COPY(repeat_last_n)
    COPY(presence_penalty)
    COPY(frequency_penalty)
    COPY(seed)
    COPY(logit_bias)
    COPY(n_logit_bias)
#undef COPY
    p->struct_size = sizeof *p;

    const char *bad = NULL, *why = "";
    double v = 0;
    if (isnan(p->temperature) || isinf(p->temperature))
        bad = "temperature", v = p->temperature, why = "must be finite (<= 0 is greedy)";
    else if (isnan(p->top_p) || p->top_p <= 0)
        bad = "top_p", v = p->top_p, why = "must be > 0 (>= 1 is off)";
    else if (isnan(p->min_p) || p->min_p > 1)
        bad = "min_p", v = p->min_p, why = "must be <= 1 (<= 0 is off)";
    else if (isnan(p->repeat_penalty) || isinf(p->repeat_penalty) || p->repeat_penalty <= 0)
        bad = "repeat_penalty", v = p->repeat_penalty, why = "must be finite and > 0 (1 is off)";
    else if (isnan(p->presence_penalty) || isinf(p->presence_penalty))
        bad = "presence_penalty", v = p->presence_penalty, why = "must be finite";
    else if (isnan(p->frequency_penalty) || isinf(p->frequency_penalty))
        bad = "frequency_penalty", v = p->frequency_penalty, why = "must be finite";
    if (bad)
        return slim_error(SLIM_ERR_INVALID_ARG, "slim_sampler_params.%s = %g: %s", bad, v, why);
    if (p->repeat_last_n < 0)
        return slim_error(SLIM_ERR_INVALID_ARG,
                          "slim_sampler_params.repeat_last_n = %d: must be >= 0 (0 is off)",
                          (int)p->repeat_last_n);
    if (p->n_logit_bias < 0 || (p->n_logit_bias > 0 && !p->logit_bias))
        return slim_error(SLIM_ERR_INVALID_ARG,
                          "slim_sampler_params.n_logit_bias = %d with logit_bias %s",
                          (int)p->n_logit_bias, p->logit_bias ? "set" : "NULL");
    for (int32_t i = 0; i < p->n_logit_bias; i++) {
        const slim_logit_bias *b = &p->logit_bias[i];
        if (b->token < 0)
            return slim_error(SLIM_ERR_INVALID_ARG,
                              "slim_sampler_params.logit_bias[%d].token = %d: must be >= 0", (int)i,
                              (int)b->token);
        if (isnan(b->bias) || b->bias == INFINITY)
            return slim_error(SLIM_ERR_INVALID_ARG,
                              "slim_sampler_params.logit_bias[%d].bias = %g (token %d): must be "
                              "finite or -inf",
                              (int)i, (double)b->bias, (int)b->token);
    }
    return SLIM_OK;
}

/* ---- lifetime ----------------------------------------------------------- */

slim_status slim_sampler_create(const slim_sampler_params *params, slim_sampler **out) {
    if (!out) return slim_error(SLIM_ERR_INVALID_ARG, "slim_sampler_create: out is NULL");
    *out = NULL;
    slim_sampler_params p;
    slim_status st = read_params(params, &p);
    if (st != SLIM_OK) return st;

    slim_sampler *s = calloc(1, sizeof *s);
    if (!s) return slim_error(SLIM_ERR_NOMEM, "slim_sampler_create: out of memory");
    s->p = p;
    s->p.logit_bias = NULL;
    if (p.n_logit_bias > 0) { /* copied: the caller's array need not outlive the call */
        s->bias = malloc((size_t)p.n_logit_bias * sizeof *s->bias);
        if (!s->bias) {
            slim_sampler_free(s);
            return slim_error(SLIM_ERR_NOMEM,
                              "slim_sampler_create: out of memory for %d logit biases",
                              (int)p.n_logit_bias);
        }
        memcpy(s->bias, p.logit_bias, (size_t)p.n_logit_bias * sizeof *s->bias);
        s->p.logit_bias = s->bias;
    }
    s->min_p_log = p.min_p > 0 ? logf(p.min_p) : -INFINITY;
    s->hist_cap = p.repeat_last_n;
    if (s->hist_cap > 0) {
        s->hist = malloc((size_t)s->hist_cap * sizeof *s->hist);
        s->hist_tmp = malloc((size_t)s->hist_cap * sizeof *s->hist_tmp);
        if (!s->hist || !s->hist_tmp) {
            slim_sampler_free(s);
            return slim_error(SLIM_ERR_NOMEM,
                              "slim_sampler_create: out of memory for a history of %d tokens",
                              (int)p.repeat_last_n);
        }
    }
    uint64_t x = p.seed;
    for (int i = 0; i < 4; i++)
        s->seed_state[i] = splitmix64(&x);
    slim_sampler_reset(s);
    *out = s;
    return SLIM_OK;
}

void slim_sampler_free(slim_sampler *sampler) {
    if (!sampler) return;
    free(sampler->hist);
    free(sampler->hist_tmp);
    free(sampler->vals);
    free(sampler->cands);
    slim_constraint_free(sampler->con);
    free(sampler->mbuf);
    free(sampler->bias);
    free(sampler);
}

void slim_sampler_reset(slim_sampler *sampler) {
    if (!sampler) return;
    memcpy(sampler->rng, sampler->seed_state, sizeof sampler->rng);
    sampler->hist_n = 0;
    sampler->hist_head = 0;
    if (sampler->con) sampler->cstate = slim_constraint_start(sampler->con);
}

void slim_sampler_accept_prompt(slim_sampler *sampler, slim_token token) {
    if (!sampler || sampler->hist_cap == 0) return;
    sampler->hist[sampler->hist_head] = token;
    sampler->hist_head = (sampler->hist_head + 1) % sampler->hist_cap;
    if (sampler->hist_n < sampler->hist_cap) sampler->hist_n++;
}

void slim_sampler_accept(slim_sampler *sampler, slim_token token) {
    if (!sampler) return;
    slim_sampler_accept_prompt(sampler, token);
    if (sampler->con)
        sampler->cstate = slim_constraint_advance(sampler->con, sampler->cstate, token);
}

slim_status slim_sampler_set_constraint(slim_sampler *sampler, slim_constraint *c) {
    if (!sampler)
        return slim_error(SLIM_ERR_INVALID_ARG, "slim_sampler_set_constraint: sampler is NULL");
    slim_constraint_retain(c);
    slim_constraint_free(sampler->con);
    sampler->con = c;
    sampler->cstate = c ? slim_constraint_start(c) : SLIM_CONSTRAINT_DEAD;
    return SLIM_OK;
}

slim_constraint *slim_sampler_get_constraint(const slim_sampler *s) { return s ? s->con : NULL; }

slim_constraint_state slim_sampler_constraint_state(const slim_sampler *sampler) {
    return sampler && sampler->con ? sampler->cstate : SLIM_CONSTRAINT_DEAD;
}

/* ---- logit bias and penalties ------------------------------------------- */

slim_status slim_sampler_check_vocab(const slim_sampler *s, int32_t n_vocab, const char *fn) {
    for (int32_t i = 0; s && i < s->p.n_logit_bias; i++)
        if (s->bias[i].token >= n_vocab)
            return slim_error(SLIM_ERR_INVALID_ARG,
                              "%s: logit_bias[%d].token = %d: outside the vocabulary (0..%d)", fn,
                              (int)i, (int)s->bias[i].token, (int)n_vocab - 1);
    return SLIM_OK;
}

/* Add the biases (the caller's order; tokens the constraint or NaN made -inf stay so). */
static void apply_bias(const slim_sampler *s, float *vals) {
    for (int32_t i = 0; i < s->p.n_logit_bias; i++) {
        float v = vals[s->bias[i].token] + s->bias[i].bias;
        vals[s->bias[i].token] = isnan(v) ? -INFINITY : v;
    }
}

static int cmp_i32(const void *a, const void *b) {
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}

/* Apply repeat/presence/frequency penalties to vals for each distinct token of
 * the window (the ring holds exactly the last repeat_last_n tokens). */
static void apply_penalties(slim_sampler *s, float *vals, int32_t n_vocab) {
    const slim_sampler_params *p = &s->p;
    if (s->hist_n == 0 ||
        (p->repeat_penalty == 1.0f && p->presence_penalty == 0 && p->frequency_penalty == 0))
        return;
    int32_t n = s->hist_n;
    memcpy(s->hist_tmp, s->hist, (size_t)n * sizeof *s->hist);
    qsort(s->hist_tmp, (size_t)n, sizeof *s->hist_tmp, cmp_i32);
    for (int32_t i = 0; i < n;) {
        int32_t t = s->hist_tmp[i], j = i;
        while (j < n && s->hist_tmp[j] == t)
            j++;
        int32_t count = j - i;
        i = j;
        if (t < 0 || t >= n_vocab) continue;
        float v = vals[t];
        if (p->repeat_penalty != 1.0f) v = v > 0 ? v / p->repeat_penalty : v * p->repeat_penalty;
        v -= (float)count * p->frequency_penalty + p->presence_penalty;
        vals[t] = isnan(v) ? -INFINITY : v;
    }
}

/* ---- selection ---------------------------------------------------------- */

/* Total order: larger value first, then lower id. */
static int before(const cand *a, const cand *b) {
    return a->s > b->s || (a->s == b->s && a->id < b->id);
}

static int cmp_cand(const void *a, const void *b) {
    const cand *x = a, *y = b;
    return before(x, y) ? -1 : before(y, x) ? 1 : 0;
}

static void swap_cand(cand *a, cand *b) {
    cand t = *a;
    *a = *b;
    *b = t;
}

/* Partition c[lo..hi] (lo < hi) around a median-of-three pivot: returns the
 * pivot's final index q; c[lo..q) come before it in the order, c(q..hi]
 * after.  *mass receives the sum of .s over c[lo..q). */
static size_t partition(cand *c, size_t lo, size_t hi, double *mass) {
    size_t mid = lo + (hi - lo) / 2;
    if (before(&c[mid], &c[lo])) swap_cand(&c[mid], &c[lo]);
    if (before(&c[hi], &c[lo])) swap_cand(&c[hi], &c[lo]);
    if (before(&c[hi], &c[mid])) swap_cand(&c[hi], &c[mid]);
    swap_cand(&c[mid], &c[hi]);
    cand pivot = c[hi];
    size_t q = lo;
    double sum = 0;
    for (size_t i = lo; i < hi; i++)
        if (before(&c[i], &pivot)) {
            sum += c[i].s;
            swap_cand(&c[i], &c[q++]);
        }
    swap_cand(&c[q], &c[hi]);
    *mass = sum;
    return q;
}

/* Rearrange c[0..n) so c[0..k) holds the first k elements of the order
 * (unsorted), 0 < k < n.  Quickselect; keys are distinct (ids break ties) and
 * a depth guard falls back to qsort. */
static void select_top(cand *c, size_t n, size_t k) {
    size_t lo = 0, hi = n - 1;
    double unused;
    for (int iter = 0; lo < hi; iter++) {
        if (iter > 96) {
            qsort(c + lo, hi - lo + 1, sizeof *c, cmp_cand);
            return;
        }
        size_t q = partition(c, lo, hi, &unused);
        if (k <= q)
            hi = q - 1;
        else if (k > q + 1)
            lo = q + 1;
        else
            return;
    }
}

/* Top-k for small k: a heap of the k best (root = the worst) while scanning
 * v once; most tokens cost one comparison.  Tokens at -inf are skipped.
 * Fills c with .s = the logit and returns the count (<= k). */
static size_t heap_top(const float *v, size_t n, size_t k, cand *c) {
    size_t size = 0;
    for (size_t i = 0; i < n; i++) {
        float x = v[i];
        if (x == -INFINITY || (size == k && !(x > c[0].s))) continue; /* ties: lower id won */
        size_t j;
        if (size < k) { /* sift up */
            j = size++;
            while (j > 0 && before(&c[(j - 1) / 2], &(cand){x, (int32_t)i})) {
                c[j] = c[(j - 1) / 2];
                j = (j - 1) / 2;
            }
        } else { /* replace the root, sift down */
            j = 0;
            for (;;) {
                size_t l = 2 * j + 1, w = l;
                if (l >= size) break;
                if (l + 1 < size && before(&c[l], &c[l + 1])) w = l + 1;
                if (!before(&(cand){x, (int32_t)i}, &c[w])) break;
                c[j] = c[w];
                j = w;
            }
        }
        c[j] = (cand){x, (int32_t)i};
    }
    return size;
}

/* Top-p over candidates whose .s is the weight: move to the front the
 * smallest prefix of the descending order whose mass reaches target and
 * return its length (>= 1).  A quickselect on mass instead of a sort:
 * expected O(n), the kept set unsorted. */
static size_t top_p_select(cand *c, size_t n, double target) {
    size_t lo = 0, hi = n - 1;
    double acc = 0; /* mass of c[0..lo), all kept */
    for (int iter = 0; lo <= hi; iter++) {
        if (lo == hi || iter > 96) {
            qsort(c + lo, hi - lo + 1, sizeof *c, cmp_cand);
            for (size_t i = lo; i <= hi; i++)
                if ((acc += c[i].s) >= target) return i + 1;
            return n; /* rounding: the whole set */
        }
        double mass;
        size_t q = partition(c, lo, hi, &mass);
        if (acc + mass >= target) {
            hi = q - 1; /* q > lo: acc < target */
        } else {
            acc += mass + c[q].s;
            if (acc >= target) return q + 1;
            if (q == hi) return n;
            lo = q + 1;
        }
    }
    return lo > 0 ? lo : 1;
}

/* ---- sampling ----------------------------------------------------------- */

static slim_status grow(void **buf, size_t *cap, size_t n, size_t elem, const char *what) {
    if (*cap >= n) return SLIM_OK;
    void *p = realloc(*buf, n * elem);
    if (!p)
        return slim_error(SLIM_ERR_NOMEM, "slim_sampler_sample: out of memory for %zu %s", n, what);
    *buf = p;
    *cap = n;
    return SLIM_OK;
}

enum { HEAP_TOP_K_MAX = 4096 };

/* Maximum of v[0..n) (no NaN): eight independent lanes so it vectorises. */
static float max_of(const float *v, size_t n) {
    float lane[8];
    for (int j = 0; j < 8; j++)
        lane[j] = -INFINITY;
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int j = 0; j < 8; j++)
            lane[j] = v[i + j] > lane[j] ? v[i + j] : lane[j];
    float m = -INFINITY;
    for (int j = 0; j < 8; j++)
        m = lane[j] > m ? lane[j] : m;
    for (; i < n; i++)
        m = v[i] > m ? v[i] : m;
    return m;
}

/* vals = logits where the constraint allows the token (NaN as -inf), else
 * -inf: one pass over the mask's words, copied out of the shared matcher. */
static slim_status constrained_copy(slim_sampler *s, const float *logits, int32_t n_vocab) {
    if (n_vocab != slim_constraint_n_vocab(s->con))
        return slim_error(SLIM_ERR_INVALID_ARG,
                          "slim_sampler_sample: %d logits, the constraint's vocabulary has %d",
                          (int)n_vocab, (int)slim_constraint_n_vocab(s->con));
    if (s->cstate < 0)
        return slim_error(SLIM_ERR_INVALID_ARG, "slim_sampler_sample: the constraint %s",
                          s->cstate == SLIM_CONSTRAINT_DONE
                              ? "has ended (an end-of-generation token was accepted)"
                              : "allows no token (a token it rejects was accepted)");
    const size_t W = ((size_t)n_vocab + 31) / 32;
    slim_status st = grow((void **)&s->mbuf, &s->mbuf_cap, W, sizeof *s->mbuf, "a token mask");
    if (st == SLIM_OK) st = slim_constraint_mask(s->con, s->cstate, s->mbuf, W);
    if (st != SLIM_OK) return st;
    float *v = s->vals;
    size_t allowed = 0;
    for (size_t w = 0; w < W; w++) {
        const uint32_t bits = s->mbuf[w];
        const size_t base = w * 32, lim = (size_t)n_vocab - base < 32 ? (size_t)n_vocab - base : 32;
        if (!bits) {
            for (size_t j = 0; j < lim; j++)
                v[base + j] = -INFINITY;
            continue;
        }
        allowed += (size_t)__builtin_popcount(bits);
        for (size_t j = 0; j < lim; j++) {
            const float x = logits[base + j];
            v[base + j] = (bits >> j) & 1 && x == x ? x : -INFINITY;
        }
    }
    if (!allowed)
        return slim_error(SLIM_ERR_INVALID_ARG,
                          "slim_sampler_sample: the constraint allows no token here (an internal "
                          "limit of the grammar engine: %s)",
                          slim_last_error());
    return SLIM_OK;
}

slim_status slim_sampler_sample(slim_sampler *sampler, const float *logits, int32_t n_vocab,
                                slim_token *out) {
    if (!sampler) return slim_error(SLIM_ERR_INVALID_ARG, "slim_sampler_sample: sampler is NULL");
    if (!logits) return slim_error(SLIM_ERR_INVALID_ARG, "slim_sampler_sample: logits is NULL");
    if (!out) return slim_error(SLIM_ERR_INVALID_ARG, "slim_sampler_sample: out is NULL");
    if (n_vocab <= 0)
        return slim_error(SLIM_ERR_INVALID_ARG, "slim_sampler_sample: n_vocab = %d: must be > 0",
                          (int)n_vocab);
    slim_sampler *s = sampler;
    const slim_sampler_params *p = &s->p;
    size_t n = (size_t)n_vocab;
    slim_status st = grow((void **)&s->vals, &s->vals_cap, n, sizeof *s->vals, "logits");
    if (st != SLIM_OK) return st;

    /* Copy with NaN as -inf (and tokens the constraint rejects), then
     * penalties, then the maximum. */
    float *v = s->vals;
    if (s->con) {
        if ((st = constrained_copy(s, logits, n_vocab)) != SLIM_OK) return st;
    } else {
        for (size_t i = 0; i < n; i++) {
            float x = logits[i];
            v[i] = x == x ? x : -INFINITY;
        }
    }
    if (p->n_logit_bias) {
        if ((st = slim_sampler_check_vocab(s, n_vocab, "slim_sampler_sample")) != SLIM_OK)
            return st;
        apply_bias(s, v);
    }
    apply_penalties(s, v, n_vocab);
    float m = max_of(v, n);
    if (m == -INFINITY)
        return slim_error(SLIM_ERR_INVALID_ARG,
                          "slim_sampler_sample: all %d logits are NaN or -inf (after penalties)",
                          (int)n_vocab);
    if (p->temperature <= 0) {
        size_t arg = 0;
        while (v[arg] != m)
            arg++;
        *out = (slim_token)arg; /* the first maximum: ties go to the lowest id */
        return SLIM_OK;
    }

    st = grow((void **)&s->cands, &s->cands_cap, n, sizeof *s->cands, "candidates");
    if (st != SLIM_OK) return st;
    cand *c = s->cands;

    /* Top-k on the logits (temperature keeps the order); tokens at -inf have
     * probability 0 and are never candidates. */
    size_t nc = 0, k = p->top_k > 0 ? (size_t)p->top_k : n;
    if (k < n && k <= HEAP_TOP_K_MAX) {
        nc = heap_top(v, n, k, c);
    } else {
        for (size_t i = 0; i < n; i++)
            if (v[i] > -INFINITY) c[nc++] = (cand){v[i], (int32_t)i};
        if (k < nc) {
            select_top(c, nc, k);
            nc = k;
        }
    }

    /* Temperature, weights and min-p.  s = (logit - max) / T, so the maximum
     * has s = 0 and weight 1; a +inf maximum shares the mass evenly among the
     * +inf tokens.  z is the mass after top-k (top-p's denominator).  Min-p
     * (prob >= min_p * max prob, i.e. s >= log min_p) keeps a prefix of the
     * order and top-p always keeps the maximum, so filtering min-p first and
     * cutting top-p on the survivors gives the documented set. */
    float temp = p->temperature;
    double z = 0;
    size_t nk = 0;
    for (size_t i = 0; i < nc; i++) {
        float x = c[i].s;
        float sc = m == INFINITY ? (x == INFINITY ? 0.0f : -INFINITY) : (x - m) / temp;
        float w = expf(sc);
        z += w;
        if (w > 0 && sc >= s->min_p_log) c[nk++] = (cand){w, c[i].id};
    }
    nc = nk;
    if (nc == 0) /* unreachable: the maximum has weight 1 */
        return slim_error(SLIM_ERR_INTERNAL, "slim_sampler_sample: no candidate left");

    if (p->top_p < 1.0f && nc > 1) nc = top_p_select(c, nc, (double)p->top_p * z);

    /* Draw from the survivors, renormalised. */
    double total = 0;
    for (size_t i = 0; i < nc; i++)
        total += c[i].s;
    double r = rng_uniform(s) * total, cum = 0;
    slim_token pick = c[nc - 1].id;
    for (size_t i = 0; i < nc; i++) {
        cum += c[i].s;
        if (r < cum) {
            pick = c[i].id;
            break;
        }
    }
    *out = pick;
    return SLIM_OK;
}
