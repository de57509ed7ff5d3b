/* slim_constraint (slim.h): compiled constraints for a model's vocabulary.
 *
 * A handle is a compiled grammar (lib/constrain, immutable), the model's
 * constraint tokens (built once per model, on first use) and one matcher
 * whose lazily built tables are shared by every user of the handle under a
 * lock, so the states a request has walked are cache hits for the next.
 * Handles are cached per model by a hash of (kind, params, text): compiling
 * a schema again for the next request returns the warm handle. */
#include "runtime/constraint.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "model/model.h"
#include "tokenizer/tokenizer.h"

enum { CACHE_N = 32, FORCED_BYTES = 256 };

struct slim_cmodel {
    slim_ctokens *t;
    slim_constraint *cache[CACHE_N]; /* most recently used first; each holds a reference */
    int n;
};

/* Guards every model's slim_cmodel (creation and cache). */
static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;

static void destroy(slim_constraint *c) {
    slim_cmatch_free(c->m);
    slim_cgrammar_free(c->g);
    pthread_mutex_destroy(&c->lock);
    free(c->text);
    free(c);
}

slim_constraint *slim_constraint_retain(slim_constraint *c) {
    if (c) atomic_fetch_add(&c->refs, 1);
    return c;
}

void slim_constraint_free(slim_constraint *c) {
    if (c && atomic_fetch_sub(&c->refs, 1) == 1) destroy(c);
}

void slim_cmodel_free(slim_cmodel *cm) {
    if (!cm) return;
    for (int i = 0; i < cm->n; i++)
        slim_constraint_free(cm->cache[i]);
    slim_ctokens_free(cm->t);
    free(cm);
}

/* The model's slim_cmodel, made on first use (under g_mu). */
static slim_status cmodel_get(const slim_model *model, slim_cmodel **out) {
    slim_model *m = (slim_model *)model; /* a cache: logically const */
    if (!m->constrain) {
        slim_cmodel *cm = calloc(1, sizeof *cm);
        if (!cm) return slim_error(SLIM_ERR_NOMEM, "slim_constraint_compile: out of memory");
        slim_status st = slim_ctokens_from_vocab(m->vocab, &cm->t);
        if (st) {
            free(cm);
            return st;
        }
        m->constrain = cm;
        m->constrain_free = slim_cmodel_free;
    }
    *out = m->constrain;
    return SLIM_OK;
}

static uint64_t fnv(uint64_t h, const void *p, size_t n) {
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++)
        h = (h ^ b[i]) * 0x100000001b3ULL;
    return h;
}

static bool same(const slim_constraint *c, uint64_t key, int32_t kind, int32_t ws, int32_t order,
                 const char *text, size_t len) {
    return c->key == key && c->kind == kind && c->json_whitespace == ws &&
           c->property_order == order && c->len == len && (!len || !memcmp(c->text, text, len));
}

/* Look the content up in the cache; a hit is moved to the front and retained. */
static slim_constraint *cache_find(slim_cmodel *cm, uint64_t key, int32_t kind, int32_t ws,
                                   int32_t order, const char *text, size_t len) {
    for (int i = 0; i < cm->n; i++) {
        slim_constraint *c = cm->cache[i];
        if (!same(c, key, kind, ws, order, text, len)) continue;
        memmove(cm->cache + 1, cm->cache, (size_t)i * sizeof *cm->cache);
        cm->cache[0] = c;
        return slim_constraint_retain(c);
    }
    return NULL;
}

slim_constraint_params slim_constraint_default_params(void) {
    return (slim_constraint_params){.struct_size = sizeof(slim_constraint_params),
                                    .json_whitespace = 0,
                                    .property_order = SLIM_PROPERTY_ORDER_DEFINITION};
}

slim_status slim_constraint_compile(const slim_model *model, slim_constraint_kind kind,
                                    const char *text, size_t len,
                                    const slim_constraint_params *params, slim_constraint **out) {
    if (!out) return slim_error(SLIM_ERR_INVALID_ARG, "slim_constraint_compile: out is NULL");
    *out = NULL;
    if (!model) return slim_error(SLIM_ERR_INVALID_ARG, "slim_constraint_compile: model is NULL");
    if (!text && len)
        return slim_error(SLIM_ERR_INVALID_ARG, "slim_constraint_compile: text is NULL");
    if ((int)kind < SLIM_CONSTRAINT_GBNF || (int)kind > SLIM_CONSTRAINT_JSON_OBJECT)
        return slim_error(SLIM_ERR_INVALID_ARG, "slim_constraint_compile: unknown kind %d",
                          (int)kind);
    slim_constraint_params p = slim_constraint_default_params();
    if (params) {
        if (params->struct_size < sizeof(size_t) || params->struct_size > sizeof p)
            return slim_error(SLIM_ERR_INVALID_ARG,
                              "slim_constraint_params.struct_size %zu: expected %zu..%zu (use "
                              "slim_constraint_default_params())",
                              params->struct_size, sizeof(size_t), sizeof p);
        memcpy(&p, params, params->struct_size);
    }
    if (p.json_whitespace != 0 && p.json_whitespace != 1)
        return slim_error(SLIM_ERR_INVALID_ARG,
                          "slim_constraint_params.json_whitespace = %d: must be 0 or 1",
                          (int)p.json_whitespace);
    if (p.property_order != SLIM_PROPERTY_ORDER_DEFINITION)
        return slim_error(SLIM_ERR_INVALID_ARG,
                          "slim_constraint_params.property_order = %d: only "
                          "SLIM_PROPERTY_ORDER_DEFINITION (0) is supported",
                          (int)p.property_order);
    if (kind == SLIM_CONSTRAINT_JSON_OBJECT) len = 0; /* text ignored */
    if (!len) text = "";
    const int32_t k = (int32_t)kind, ws = p.json_whitespace, order = p.property_order;
    uint64_t key = 0xcbf29ce484222325ULL;
    key = fnv(key, &k, sizeof k);
    key = fnv(key, &ws, sizeof ws);
    key = fnv(key, &order, sizeof order);
    key = fnv(key, text, len);

    pthread_mutex_lock(&g_mu);
    slim_cmodel *cm = NULL;
    slim_status st = cmodel_get(model, &cm);
    slim_constraint *hit = st ? NULL : cache_find(cm, key, k, ws, order, text, len);
    pthread_mutex_unlock(&g_mu);
    if (st) return st;
    if (hit) {
        *out = hit;
        return SLIM_OK;
    }

    /* Compile outside the lock (a big schema takes milliseconds). */
    slim_constraint *c = calloc(1, sizeof *c);
    if (!c) return slim_error(SLIM_ERR_NOMEM, "slim_constraint_compile: out of memory");
    atomic_init(&c->refs, 1);
    pthread_mutex_init(&c->lock, NULL);
    c->model = model;
    c->t = cm->t;
    c->n_vocab = cm->t->n_vocab;
    c->key = key;
    c->kind = k;
    c->json_whitespace = ws;
    c->property_order = order;
    c->len = len;
    c->text = malloc(len + 1);
    if (!c->text) {
        destroy(c);
        return slim_error(SLIM_ERR_NOMEM, "slim_constraint_compile: out of memory");
    }
    memcpy(c->text, text, len);
    c->text[len] = 0;
    const slim_constraint_opts opts = {.json_whitespace = ws != 0};
    st = slim_constrain_compile(kind, text, len, &opts, &c->g);
    if (!st) st = slim_cmatch_new(c->g, c->t, &c->m);
    if (st) {
        destroy(c);
        return st;
    }

    pthread_mutex_lock(&g_mu);
    hit = cache_find(cm, key, k, ws, order, text, len); /* another thread was quicker */
    if (!hit) {
        if (cm->n == CACHE_N) slim_constraint_free(cm->cache[--cm->n]);
        memmove(cm->cache + 1, cm->cache, (size_t)cm->n * sizeof *cm->cache);
        cm->cache[0] = slim_constraint_retain(c);
        cm->n++;
    }
    pthread_mutex_unlock(&g_mu);
    if (hit) {
        destroy(c);
        c = hit;
    }
    *out = c;
    return SLIM_OK;
}

slim_status slim_constraint_compile_choices(const slim_model *model, const char *const *choices,
                                            size_t n, slim_constraint **out) {
    if (out) *out = NULL;
    if (!choices || !n)
        return slim_error(SLIM_ERR_INVALID_ARG,
                          "slim_constraint_compile_choices: no choices (need at least one)");
    size_t len = 0;
    for (size_t i = 0; i < n; i++) {
        if (!choices[i])
            return slim_error(SLIM_ERR_INVALID_ARG,
                              "slim_constraint_compile_choices: choice %zu is NULL", i);
        len += strlen(choices[i]) + 1;
    }
    char *text = malloc(len);
    if (!text) return slim_error(SLIM_ERR_NOMEM, "slim_constraint_compile_choices: out of memory");
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        size_t l = strlen(choices[i]);
        memcpy(text + o, choices[i], l + 1);
        o += l + 1;
    }
    slim_status st =
        slim_constraint_compile(model, SLIM_CONSTRAINT_CHOICES, text, len - 1, NULL, out);
    free(text);
    return st;
}

/* ---- driving ----------------------------------------------------------------------------- */

int32_t slim_constraint_n_vocab(const slim_constraint *c) { return c ? c->n_vocab : 0; }

slim_constraint_state slim_constraint_start(slim_constraint *c) {
    if (!c) return SLIM_CONSTRAINT_DEAD;
    pthread_mutex_lock(&c->lock);
    int32_t s = slim_cmatch_start(c->m);
    pthread_mutex_unlock(&c->lock);
    return s;
}

slim_constraint_state slim_constraint_advance(slim_constraint *c, slim_constraint_state state,
                                              slim_token token) {
    if (!c || state < 0 || token < 0 || token >= c->n_vocab) return SLIM_CONSTRAINT_DEAD;
    pthread_mutex_lock(&c->lock);
    int32_t s = slim_cmatch_advance_token(c->m, state, token);
    pthread_mutex_unlock(&c->lock);
    return s == SLIM_CSTATE_DONE ? SLIM_CONSTRAINT_DONE : s < 0 ? SLIM_CONSTRAINT_DEAD : s;
}

int slim_constraint_accepting(slim_constraint *c, slim_constraint_state state) {
    if (!c || state < 0) return 0;
    pthread_mutex_lock(&c->lock);
    bool a = slim_cmatch_accepting(c->m, state);
    pthread_mutex_unlock(&c->lock);
    return a;
}

slim_status slim_constraint_mask(slim_constraint *c, slim_constraint_state state, uint32_t *mask,
                                 size_t n_words) {
    if (!c || !mask)
        return slim_error(SLIM_ERR_INVALID_ARG, "slim_constraint_mask: constraint or mask is NULL");
    const size_t need = ((size_t)c->n_vocab + 31) / 32;
    if (n_words < need)
        return slim_error(SLIM_ERR_INVALID_ARG,
                          "slim_constraint_mask: n_words = %zu: the vocabulary needs %zu", n_words,
                          need);
    if (state < 0) {
        memset(mask, 0, need * sizeof *mask);
        return SLIM_OK;
    }
    pthread_mutex_lock(&c->lock);
    slim_cmatch_mask(c->m, state, mask);
    pthread_mutex_unlock(&c->lock);
    return SLIM_OK;
}

void slim_constraint_prefetch(slim_constraint *c, slim_constraint_state s) {
    if (!c || s < 0) return;
    pthread_mutex_lock(&c->lock);
    slim_cmatch_mask(c->m, s, NULL);
    pthread_mutex_unlock(&c->lock);
}

/* Forced tokens from state s under c->lock: the forced bytes as the
 * tokenizer writes them (all but the last token, which text after it could
 * merge with), then a token that is the only one allowed; repeated. */
static size_t forced_locked(slim_constraint *c, int32_t s, slim_token *buf, size_t cap) {
    const slim_ctokens *t = c->t;
    size_t n = 0;
    while (s >= 0 && n < cap) {
        uint8_t fb[FORCED_BYTES];
        slim_token toks[FORCED_BYTES];
        size_t nb = slim_cmatch_forced_bytes(c->m, s, fb, sizeof fb), nt = 0, emitted = 0;
        if (nb && slim_vocab_tokenize(c->model->vocab, (const char *)fb, nb, 0, toks, FORCED_BYTES,
                                      &nt) == SLIM_OK) {
            /* the tokens must spell the bytes exactly (no added space, no
             * special token) and each be allowed in turn */
            size_t at = 0;
            for (size_t i = 0; i + 1 < nt && n < cap; i++) {
                const int32_t tk = toks[i];
                if (tk < 0 || tk >= t->n_vocab || t->kind[tk] != SLIM_CTOK_TEXT) break;
                const size_t l = t->off[tk + 1] - t->off[tk];
                if (at + l > nb || memcmp(fb + at, t->bytes + t->off[tk], l)) break;
                const int32_t next = slim_cmatch_advance_token(c->m, s, tk);
                if (next < 0) break;
                at += l;
                buf[n++] = tk;
                s = next;
                emitted++;
            }
        }
        if (emitted) continue;
        const int32_t one = slim_cmatch_forced_token(c->m, s);
        if (one < 0) break;
        buf[n++] = one;
        s = slim_cmatch_advance_token(c->m, s, one);
    }
    return n;
}

slim_status slim_constraint_forced(slim_constraint *c, slim_constraint_state state, slim_token *buf,
                                   size_t cap, size_t *n_out) {
    if (!c || !n_out || (!buf && cap))
        return slim_error(SLIM_ERR_INVALID_ARG,
                          "slim_constraint_forced: constraint, buf or n_out is NULL");
    *n_out = 0;
    if (state < 0) return SLIM_OK;
    /* All of them first (for n_out on a sizing call or a short buffer). */
    pthread_mutex_lock(&c->lock);
    slim_token small[64];
    slim_token *all = small;
    size_t total = forced_locked(c, state, small, 64);
    if (total == 64) { /* long forced runs are rare: count in a bigger buffer */
        size_t big = 1 << 16;
        all = malloc(big * sizeof *all);
        total = all ? forced_locked(c, state, all, big) : 0;
    }
    pthread_mutex_unlock(&c->lock);
    if (!all) return slim_error(SLIM_ERR_NOMEM, "slim_constraint_forced: out of memory");
    *n_out = total;
    slim_status st = SLIM_OK;
    if (total > cap && (buf || cap)) /* not a sizing call */
        st = slim_error(SLIM_ERR_BUFFER_TOO_SMALL,
                        "slim_constraint_forced: %zu tokens, the buffer holds %zu", total, cap);
    else if (total && total <= cap)
        memcpy(buf, all, total * sizeof *buf);
    if (all != small) free(all);
    return st;
}
