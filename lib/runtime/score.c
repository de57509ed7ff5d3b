/* slim_score: log-probabilities of candidate continuations (label scoring).
 *
 * The candidates' tokens form a trie under the context's last position.  A
 * candidate token's log-probability comes from its parent's logits, so only
 * trie nodes with children go through the model ("fed" nodes), level by
 * level, each as its own sequence of a paged step (runtime/step.h) whose
 * block table is the context's full prompt blocks, then its own tail blocks
 * from the context's free ones: a node starting a new block gets a fresh
 * block; one continuing its parent's block writes into it in place when it is
 * the parent's only fed child, else into a copy of it (copy-on-write).  The
 * forward step is batch-invariant, so the scores do not depend on how the
 * levels are split into steps or waves. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/context.h"

enum { ROWS = 16 }; /* logit rows of one step (each n_vocab floats) */

typedef struct node {
    slim_token tok;
    int32_t parent, depth; /* root: parent -1, depth 0 */
    int32_t child, sibling;
    int32_t n_fed; /* fed children */
    bool fed;      /* has children: its logits are needed */
    float lp;      /* log-probability of tok after the parent */
    int32_t tail;  /* fed nodes and the root: offset of its tail in tails[] */
    int32_t n_tail;
    int32_t top; /* the depth-1 ancestor (its subtree's wave) */
} node;

typedef struct scorer {
    slim_context *ctx;
    node *nodes;
    int32_t n_nodes, cap_nodes;
    int32_t *tails; /* tail block lists, max_tail per fed node */
    int32_t max_tail;
    int32_t *free_blocks, n_free, n_free_all;
    float *rows;
    int32_t V;
} scorer;

slim_score_params slim_score_default_params(void) {
    return (slim_score_params){.struct_size = sizeof(slim_score_params), .tokenize_flags = 0};
}

static double log_sum_exp(const float *l, int32_t n) {
    float m = -INFINITY;
    for (int32_t i = 0; i < n; i++)
        m = l[i] > m ? l[i] : m;
    double s = 0;
    for (int32_t i = 0; i < n; i++)
        s += expf(l[i] - m);
    return m + log(s);
}

/* The child of p with token t, made if absent (-1: out of memory). */
static int32_t child_of(scorer *s, int32_t p, slim_token t) {
    for (int32_t c = s->nodes[p].child; c >= 0; c = s->nodes[c].sibling)
        if (s->nodes[c].tok == t) return c;
    if (s->n_nodes == s->cap_nodes) {
        int32_t cap = s->cap_nodes ? 2 * s->cap_nodes : 64;
        node *n = realloc(s->nodes, (size_t)cap * sizeof *n);
        if (!n) return -1;
        s->nodes = n, s->cap_nodes = cap;
    }
    int32_t c = s->n_nodes++;
    node *pn = &s->nodes[p];
    s->nodes[c] = (node){.tok = t,
                         .parent = p,
                         .depth = pn->depth + 1,
                         .child = -1,
                         .sibling = pn->child,
                         .top = pn->depth == 0 ? c : pn->top};
    s->nodes[p].child = c;
    return c;
}

/* Log-probabilities of the children of fed node p from its logits row l. */
static void children_lp(scorer *s, int32_t p, const float *l) {
    const double lse = log_sum_exp(l, s->V);
    for (int32_t c = s->nodes[p].child; c >= 0; c = s->nodes[c].sibling)
        s->nodes[c].lp = (float)((double)l[s->nodes[c].tok] - lse);
}

/* Give fed node n its tail (its parent's already set); -1 when out of blocks. */
static int tail_for(scorer *s, int32_t n, int32_t kb) {
    node *nd = &s->nodes[n], *p = &s->nodes[nd->parent];
    const int32_t bs = s->ctx->kv_block_size;
    const int32_t k = (s->ctx->n_past + nd->depth - 1) / bs - kb; /* its block in the tail */
    int32_t *t = s->tails + (size_t)n * s->max_tail,
            *pt = s->tails + (size_t)nd->parent * s->max_tail;
    memcpy(t, pt, (size_t)p->n_tail * sizeof *t);
    nd->n_tail = p->n_tail;
    if (k == p->n_tail) { /* a new block */
        if (!s->n_free) return -1;
        t[nd->n_tail++] = s->free_blocks[--s->n_free];
    } else if (p->n_fed > 1) { /* the parent's block, shared with siblings: a copy */
        if (!s->n_free) return -1;
        t[k] = s->free_blocks[--s->n_free];
        slim_kv_copy_block(s->ctx, t[k], pt[k]);
    }
    return 0;
}

/* Feed the fed nodes of the depth-1 subtrees tops[0..n_tops), level by level. */
static slim_status run_wave(scorer *s, const int32_t *in_wave, int32_t max_depth, int32_t kb) {
    slim_context *ctx = s->ctx;
    const int32_t bs = ctx->kv_block_size, full = ctx->n_past / bs;
    s->n_free = s->n_free_all;
    const int32_t max_steps = ctx->n_batch < ROWS ? ctx->n_batch : ROWS;
    int32_t tok[ROWS], pos[ROWS], seq[ROWS], idx[ROWS], *tab = NULL;
    uint8_t want[ROWS];
    slim_step_seq seqs[ROWS];
    const int32_t tab_len = full + s->max_tail;
    tab = malloc((size_t)ROWS * tab_len * sizeof *tab);
    if (!tab) return slim_error(SLIM_ERR_NOMEM, "slim_score: out of memory");
    slim_status st = SLIM_OK;
    for (int32_t d = 1; d < max_depth && !st; d++) {
        int32_t n = 0;
        for (int32_t i = 1; i <= s->n_nodes && !st; i++) {
            const bool flush = i == s->n_nodes;
            if (!flush) {
                node *nd = &s->nodes[i];
                if (!nd->fed || nd->depth != d || !in_wave[nd->top]) continue;
                if (tail_for(s, i, kb)) {
                    st = slim_error(SLIM_ERR_CONTEXT_FULL,
                                    "slim_score: the candidates' trie needs more KV blocks than "
                                    "the context has free (%d): use a larger n_ctx",
                                    s->n_free_all);
                    break;
                }
                int32_t *bt = tab + (size_t)n * tab_len;
                for (int32_t k = 0; k < full; k++)
                    bt[k] = ctx->ident_blocks[k];
                memcpy(bt + full, s->tails + (size_t)i * s->max_tail,
                       (size_t)nd->n_tail * sizeof *bt);
                seqs[n] = (slim_step_seq){bt, full + nd->n_tail, SLIM_STEP_LORA_ALL};
                tok[n] = nd->tok;
                pos[n] = ctx->n_past + d - 1;
                seq[n] = n;
                want[n] = 1;
                idx[n] = i;
                n++;
            }
            if (n == max_steps || (flush && n)) {
                const slim_step step = {.n_tokens = n,
                                        .tokens = tok,
                                        .pos = pos,
                                        .seq = seq,
                                        .want = want,
                                        .n_seqs = n,
                                        .seqs = seqs};
                if ((st = slim_forward_step(ctx, &step, s->rows))) break;
                for (int32_t j = 0; j < n; j++)
                    children_lp(s, idx[j], s->rows + (size_t)j * s->V);
                n = 0;
            }
        }
    }
    free(tab);
    return st;
}

static slim_status score(scorer *s, const char *const *cands, size_t K, const slim_score_params *p,
                         slim_score_output *out, int32_t **ends) {
    slim_context *ctx = s->ctx;
    const slim_model *m = ctx->model;
    s->V = m->hp.n_vocab;
    s->nodes = NULL;
    s->n_nodes = s->cap_nodes = 0;
    /* the root */
    s->nodes = malloc(64 * sizeof *s->nodes);
    if (!s->nodes) return slim_error(SLIM_ERR_NOMEM, "slim_score: out of memory");
    s->cap_nodes = 64;
    s->nodes[0] = (node){.parent = -1, .child = -1, .sibling = -1};
    s->n_nodes = 1;
    /* the trie */
    int32_t *end = *ends = malloc(K * sizeof *end);
    if (!end) return slim_error(SLIM_ERR_NOMEM, "slim_score: out of memory");
    size_t total = 0;
    int32_t max_depth = 0;
    slim_token small[256], *toks = small;
    size_t cap = 256;
    slim_status st = SLIM_OK;
    for (size_t k = 0; k < K && !st; k++) {
        const char *c = cands[k];
        if (!c || !*c) {
            st = slim_error(SLIM_ERR_INVALID_ARG, "slim_score: candidate %zu is %s", k,
                            c ? "empty" : "NULL");
            break;
        }
        size_t n = 0, len = strlen(c);
        st = slim_tokenize(m, c, len, p->tokenize_flags, toks, cap, &n);
        if (st == SLIM_ERR_BUFFER_TOO_SMALL) {
            slim_token *big = malloc(n * sizeof *big);
            if (!big) {
                st = slim_error(SLIM_ERR_NOMEM, "slim_score: out of memory");
                break;
            }
            if (toks != small) free(toks);
            toks = big, cap = n;
            st = slim_tokenize(m, c, len, p->tokenize_flags, toks, cap, &n);
        }
        if (st) break;
        if (n == 0) {
            st = slim_error(SLIM_ERR_INVALID_ARG, "slim_score: candidate %zu has no tokens", k);
            break;
        }
        int32_t at = 0;
        for (size_t i = 0; i < n && at >= 0; i++)
            at = child_of(s, at, toks[i]);
        if (at < 0) {
            st = slim_error(SLIM_ERR_NOMEM, "slim_score: out of memory");
            break;
        }
        end[k] = at;
        total += n;
        if ((int32_t)n > max_depth) max_depth = (int32_t)n;
    }
    if (toks != small) free(toks);
    if (st) return st;
    if ((int64_t)ctx->n_past + max_depth - 1 > ctx->n_ctx)
        return slim_error(SLIM_ERR_CONTEXT_FULL,
                          "slim_score: a candidate of %d tokens does not fit after %d of %d "
                          "context positions",
                          (int)max_depth, (int)ctx->n_past, (int)ctx->n_ctx);
    /* fed nodes, and how many each parent has */
    for (int32_t i = 1; i < s->n_nodes; i++) {
        s->nodes[i].fed = s->nodes[i].child >= 0;
        if (s->nodes[i].fed) s->nodes[s->nodes[i].parent].n_fed++;
    }
    children_lp(s, 0, slim_get_logits(ctx));
    if (max_depth > 1) {
        const int32_t bs = ctx->kv_block_size, kb = ctx->n_past / bs;
        s->max_tail = (ctx->n_past % bs + max_depth + bs - 1) / bs + 1;
        s->tails = malloc((size_t)s->n_nodes * s->max_tail * sizeof *s->tails);
        const int32_t first_free = (ctx->n_past + bs - 1) / bs;
        s->n_free_all = ctx->n_kv_blocks - first_free;
        s->free_blocks = malloc(((size_t)s->n_free_all + 1) * sizeof *s->free_blocks);
        s->rows = malloc((size_t)ROWS * s->V * sizeof *s->rows);
        int32_t *in_wave = calloc((size_t)s->n_nodes, sizeof *in_wave);
        int32_t *need = calloc((size_t)s->n_nodes, sizeof *need);
        if (!s->tails || !s->free_blocks || !s->rows || !in_wave || !need) {
            free(in_wave);
            free(need);
            return slim_error(SLIM_ERR_NOMEM, "slim_score: out of memory");
        }
        for (int32_t i = 0; i < s->n_free_all; i++)       /* popped from the end: lowest first */
            s->free_blocks[i] = ctx->n_kv_blocks - 1 - i; /* block ids past the prompt's */
        node *root = &s->nodes[0];
        root->n_tail = 0;
        if (ctx->n_past % bs) s->tails[root->n_tail++] = ctx->ident_blocks[kb];
        /* waves of depth-1 subtrees whose blocks fit (each fed node: one at most) */
        for (int32_t i = 1; i < s->n_nodes; i++)
            if (s->nodes[i].fed) need[s->nodes[i].top]++;
        int32_t used = 0, n_in = 0;
        for (int32_t c = root->child; c >= 0 || n_in; c = c >= 0 ? s->nodes[c].sibling : -1) {
            if (c >= 0 && !need[c]) continue;
            if (c >= 0 && need[c] > s->n_free_all) {
                st = slim_error(SLIM_ERR_CONTEXT_FULL,
                                "slim_score: the candidates' trie needs %d KV blocks, the context "
                                "has %d free: use a larger n_ctx",
                                (int)need[c], (int)s->n_free_all);
                break;
            }
            if (c < 0 || used + need[c] > s->n_free_all) {
                if ((st = run_wave(s, in_wave, max_depth, kb))) break;
                memset(in_wave, 0, (size_t)s->n_nodes * sizeof *in_wave);
                used = n_in = 0;
                if (c < 0) break;
            }
            in_wave[c] = 1;
            used += need[c];
            n_in++;
        }
        free(in_wave);
        free(need);
        if (st) return st;
    }
    /* results */
    double best = -INFINITY;
    out->argmax = 0;
    out->n_tokens = total;
    const bool per_token = out->token_logprobs && out->token_cap >= total;
    size_t at = 0;
    for (size_t k = 0; k < K; k++) {
        int32_t d = s->nodes[end[k]].depth;
        double sum = 0;
        for (int32_t i = end[k]; i > 0; i = s->nodes[i].parent) {
            sum += s->nodes[i].lp;
            if (per_token) out->token_logprobs[at + (size_t)s->nodes[i].depth - 1] = s->nodes[i].lp;
        }
        out->results[k] =
            (slim_score_result){.logprob = sum, .n_tokens = d, .first_token = (int32_t)at};
        at += (size_t)d;
        if (sum > best) best = sum, out->argmax = (int32_t)k;
    }
    double z = 0;
    for (size_t k = 0; k < K; k++)
        z += exp(out->results[k].logprob - best);
    for (size_t k = 0; k < K; k++)
        out->results[k].prob = exp(out->results[k].logprob - best) / z;
    return SLIM_OK;
}

slim_status slim_score(slim_context *ctx, const char *const *candidates, size_t n_candidates,
                       const slim_score_params *params, slim_score_output *out) {
    if (!ctx || !candidates || !n_candidates || !out || !out->results)
        return slim_error(SLIM_ERR_INVALID_ARG,
                          "slim_score: ctx, candidates, out or out->results is NULL, or no "
                          "candidates");
    if (out->struct_size < sizeof *out)
        return slim_error(SLIM_ERR_INVALID_ARG, "slim_score: out->struct_size %zu unknown",
                          out->struct_size);
    if (ctx->n_past < 1 || !slim_get_logits(ctx))
        return slim_error(SLIM_ERR_INVALID_ARG,
                          "slim_score: the context holds no prompt (prefill it first)");
    if (n_candidates > INT32_MAX)
        return slim_error(SLIM_ERR_INVALID_ARG, "slim_score: too many candidates");
    slim_score_params p = slim_score_default_params();
    if (params) {
        if (params->struct_size < sizeof(size_t) || params->struct_size > sizeof p)
            return slim_error(SLIM_ERR_INVALID_ARG,
                              "slim_score: params->struct_size %zu is not a known size",
                              params->struct_size);
        memcpy(&p, params, params->struct_size);
    }
    scorer s = {.ctx = ctx};
    int32_t *ends = NULL;
    slim_status st = score(&s, candidates, n_candidates, &p, out, &ends);
    free(ends);
    free(s.nodes);
    free(s.tails);
    free(s.free_blocks);
    free(s.rows);
    return st;
}
