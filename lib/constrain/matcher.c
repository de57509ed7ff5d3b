/* The matcher: parser states as hash-consed sets of pushdown stacks, a lazily
 * built transition table over them, and token masks by a walk of the
 * vocabulary trie that prunes at the first rejected byte (constrain.h). */
#include "constrain/constrain.h"

#include <stdlib.h>
#include <string.h>

#include "core/grow.h"

enum { UNKNOWN = -3 };
#define MAX_FRAMES ((size_t)1 << 23)
#define MAX_STATES ((size_t)1 << 21)
#define ROW_BUDGET ((size_t)96 << 20)  /* bytes of transition rows before they are dropped */
#define ROW_BLOCK 256                  /* rows per allocation */
#define MASK_BLOCK 16                  /* cached masks per allocation */
#define MASK_BUDGET ((size_t)96 << 20) /* bytes of cached masks before they are dropped */
/* Work one step may do (frames visited by a closure, frames in a state):
 * highly ambiguous grammars blow a stack set up; they fail closed instead. */
#define STEP_BUDGET ((size_t)1 << 18)
/* Work one mask may do (frames visited by closures, frames read by the
 * transitions of the states its walk creates): bounds the time of a mask on
 * a hostile grammar to ~30 ms (measured); MaskBench's largest real mask does
 * 227k of it. */
#define MASK_WORK_BUDGET ((size_t)1 << 21)
/* Subtrees of at least this many tokens are remembered as all allowed from a
 * state (masks of states that differ only in what a few tokens would do, e.g.
 * an unanchored pattern inside a string, then skip them). */
#define MEMO_MIN_TOKENS 64
#define MEMO_MAX ((size_t)1 << 20)
/* String-safe characters looked ahead from a state for the bulk path (a
 * string with a length bound): tokens longer than this are walked. */
#define SAFE_REACH_MAX SLIM_CTOK_LEN_MAX

typedef struct cstate {
    int32_t off, n; /* frames: spool[off .. off+n), sorted */
    int32_t row;    /* transition row, -1 if none */
    int32_t mask;   /* cached mask, -1 if none */
    int32_t uni;    /* the one state every plain byte leads to; -1 none, UNKNOWN */
    int32_t suni;   /* the one state every string-safe character leads to; -1 none, UNKNOWN */
    int8_t sloop;   /* every string-safe character leads back here: 1, 0, -1 unknown */
    uint8_t accept;
    uint8_t lpk; /* lp is known */
    int8_t na;   /* every valid non-ASCII character leads back here: 1, 0, -1 unknown */
    uint64_t h;
    uint64_t lp[2]; /* the ASCII bytes (not NUL) that lead back here */
} cstate;

struct slim_cmatch {
    const slim_cgrammar *g;
    const slim_ctokens *t;
    int32_t *fpos, *fcnt, *fpar; /* frames */
    size_t nf, capf, capf2, capf3;
    int32_t *fhash;
    size_t fhcap;
    cstate *st;
    size_t ns, caps;
    int32_t *spool;
    size_t nsp, capsp;
    int32_t *shash;
    size_t shcap;
    int32_t **rowblk; /* rows in blocks of ROW_BLOCK (no copying as they grow) */
    size_t nrows, nblk, capblk;
    uint32_t **maskblk; /* cached masks in blocks of MASK_BLOCK */
    size_t nmasks, nmblk, capmblk, mask_words;
    bool cache_masks;
    uint32_t *visit;
    size_t capvisit;
    uint32_t stamp;
    int32_t *work;
    size_t nwork, capwork;
    int32_t *res;
    size_t nres, capres;
    uint8_t res_acc;
    size_t steps; /* closure work in this step */
    size_t mwork; /* work in the mask being computed (MASK_WORK_BUDGET) */
    bool in_mask;
    bool failed;
    int32_t start;
    int32_t *walk;  /* [max_depth + 1] */
    int32_t *cdep;  /* [max_depth + 1] characters on the walk's path */
    int32_t *pend;  /* [max_depth + 1][3] subtrees being checked for the memo */
    uint64_t *memo; /* open addressing: (state, trie node) whose subtree is all allowed */
    size_t nmemo, capmemo;
    uint64_t *lkey; /* open addressing: (state, lead byte) -> lval, lead_to's answers */
    int32_t *lval;
    size_t nlead, caplead;
    uint32_t *out;  /* the last mask */
    int32_t *canon; /* [capcanon] frame -> its count-canonical frame + 1 (0: not yet) */
    size_t capcanon;
    int32_t *chain; /* canon_frame's stack of frames */
    size_t capchain;
    int32_t count_slack; /* a bounded count this far below its max is as good as any other */
};

static uint64_t mix(uint64_t h) {
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    return h;
}

static void fail(slim_cmatch *m, const char *why) {
    if (!m->failed) slim_error(SLIM_ERR_NOMEM, "constraint matcher: %s; failing closed", why);
    m->failed = true;
}

/* ---- frames ------------------------------------------------------------------------------ */

static uint64_t fkey(int32_t pos, int32_t cnt, int32_t par) {
    return mix(((uint64_t)(uint32_t)pos << 32 | (uint32_t)cnt) ^ mix((uint64_t)(uint32_t)par + 7));
}

static bool frehash(slim_cmatch *m, size_t cap) {
    int32_t *h = malloc(cap * sizeof *h);
    if (!h) return false;
    memset(h, 0xff, cap * sizeof *h);
    for (size_t i = 0; i < m->nf; i++) {
        size_t j = fkey(m->fpos[i], m->fcnt[i], m->fpar[i]) & (cap - 1);
        while (h[j] >= 0)
            j = (j + 1) & (cap - 1);
        h[j] = (int32_t)i;
    }
    free(m->fhash);
    m->fhash = h;
    m->fhcap = cap;
    return true;
}

static int32_t frame(slim_cmatch *m, int32_t pos, int32_t cnt, int32_t par) {
    if (m->failed) return -1;
    if (2 * (m->nf + 1) > m->fhcap && !frehash(m, m->fhcap ? 2 * m->fhcap : 4096)) {
        fail(m, "out of memory");
        return -1;
    }
    size_t j = fkey(pos, cnt, par) & (m->fhcap - 1);
    for (;; j = (j + 1) & (m->fhcap - 1)) {
        int32_t f = m->fhash[j];
        if (f < 0) break;
        if (m->fpos[f] == pos && m->fcnt[f] == cnt && m->fpar[f] == par) return f;
    }
    if (m->nf >= MAX_FRAMES) {
        fail(m, "too many parser frames");
        return -1;
    }
    if (!slim_grow((void **)&m->fpos, &m->capf, m->nf + 1, sizeof(int32_t)) ||
        !slim_grow((void **)&m->fcnt, &m->capf2, m->nf + 1, sizeof(int32_t)) ||
        !slim_grow((void **)&m->fpar, &m->capf3, m->nf + 1, sizeof(int32_t))) {
        fail(m, "out of memory");
        return -1;
    }
    m->fpos[m->nf] = pos;
    m->fcnt[m->nf] = cnt;
    m->fpar[m->nf] = par;
    m->fhash[j] = (int32_t)m->nf;
    return (int32_t)m->nf++;
}

/* ---- closure: from frames to the set of frames waiting on a byte ----------------------- */

static void push_work(slim_cmatch *m, int32_t f) {
    if (f < 0) return;
    if (!slim_grow((void **)&m->work, &m->capwork, m->nwork + 1, sizeof(int32_t))) {
        fail(m, "out of memory");
        return;
    }
    m->work[m->nwork++] = f;
}

static void closure(slim_cmatch *m, int32_t f0) {
    const slim_cgrammar *g = m->g;
    push_work(m, f0);
    while (m->nwork > 0 && !m->failed) {
        int32_t f = m->work[--m->nwork];
        if (++m->steps > STEP_BUDGET) {
            fail(m, "one step explores too many parser stacks (a highly ambiguous grammar)");
            return;
        }
        if (m->in_mask && ++m->mwork > MASK_WORK_BUDGET) {
            fail(m, "one mask explores too many parser stacks (a highly ambiguous grammar)");
            return;
        }
        if ((size_t)f >= m->capvisit) {
            size_t old = m->capvisit;
            if (!slim_grow((void **)&m->visit, &m->capvisit, (size_t)f + 1, sizeof(uint32_t))) {
                fail(m, "out of memory");
                return;
            }
            memset(m->visit + old, 0, (m->capvisit - old) * sizeof(uint32_t));
        }
        if (m->visit[f] == m->stamp) continue;
        m->visit[f] = m->stamp;
        int32_t pos = m->fpos[f], par = m->fpar[f], cnt = m->fcnt[f];
        const slim_citem *it = &g->items[pos];
        switch (it->kind) {
        case SLIM_CI_BYTES:
            if (!slim_grow((void **)&m->res, &m->capres, m->nres + 1, sizeof(int32_t))) {
                fail(m, "out of memory");
                return;
            }
            m->res[m->nres++] = f;
            break;
        case SLIM_CI_END:
            if (par < 0)
                m->res_acc = 1;
            else
                push_work(m, par);
            break;
        case SLIM_CI_REF: {
            /* a call in tail position returns straight to our caller */
            int32_t ret = g->items[pos + 1].kind == SLIM_CI_END ? par : frame(m, pos + 1, 0, par);
            if (ret < 0 && g->items[pos + 1].kind != SLIM_CI_END) return;
            for (int32_t a = g->alt_off[it->arg]; a < g->alt_off[it->arg + 1]; a++)
                push_work(m, frame(m, g->alt_start[a], 0, ret));
            break;
        }
        case SLIM_CI_REP: {
            if (cnt >= it->min) {
                if (g->items[pos + 1].kind == SLIM_CI_END) {
                    if (par < 0)
                        m->res_acc = 1;
                    else
                        push_work(m, par);
                } else {
                    push_work(m, frame(m, pos + 1, 0, par));
                }
            }
            if (cnt < it->max) {
                /* counts past min are all alike when there is no upper bound */
                int32_t k = cnt + 1;
                if (it->max == SLIM_CREP_INF && k > it->min) k = it->min;
                int32_t ret = frame(m, pos, k, par);
                if (ret < 0) return;
                for (int32_t a = g->alt_off[it->arg]; a < g->alt_off[it->arg + 1]; a++)
                    push_work(m, frame(m, g->alt_start[a], 0, ret));
            }
            break;
        }
        }
    }
}

static void begin(slim_cmatch *m) {
    if (++m->stamp == 0) {
        memset(m->visit, 0, m->capvisit * sizeof(uint32_t));
        m->stamp = 1;
    }
    m->nres = 0;
    m->res_acc = 0;
    m->nwork = 0;
    m->steps = 0;
}

static int cmp_i32(const void *a, const void *b) {
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}

/* ---- states ------------------------------------------------------------------------------ */

static bool srehash(slim_cmatch *m, size_t cap) {
    int32_t *h = malloc(cap * sizeof *h);
    if (!h) return false;
    memset(h, 0xff, cap * sizeof *h);
    for (size_t i = 0; i < m->ns; i++) {
        size_t j = m->st[i].h & (cap - 1);
        while (h[j] >= 0)
            j = (j + 1) & (cap - 1);
        h[j] = (int32_t)i;
    }
    free(m->shash);
    m->shash = h;
    m->shcap = cap;
    return true;
}

/* The state of the frames in res (sorted here) and res_acc; DEAD if empty. */
static int32_t intern_state(slim_cmatch *m) {
    if (m->failed) return SLIM_CSTATE_DEAD;
    if (m->nres == 0 && !m->res_acc) return SLIM_CSTATE_DEAD;
    if (m->nres > 1) qsort(m->res, m->nres, sizeof(int32_t), cmp_i32);
    uint64_t h = m->res_acc ? 0x9e3779b97f4a7c15ull : 1;
    for (size_t i = 0; i < m->nres; i++)
        h = mix(h ^ (uint64_t)(uint32_t)m->res[i]) + i;
    if (2 * (m->ns + 1) > m->shcap && !srehash(m, m->shcap ? 2 * m->shcap : 1024)) {
        fail(m, "out of memory");
        return SLIM_CSTATE_DEAD;
    }
    size_t j = h & (m->shcap - 1);
    for (;; j = (j + 1) & (m->shcap - 1)) {
        int32_t s = m->shash[j];
        if (s < 0) break;
        const cstate *S = &m->st[s];
        if (S->h == h && S->accept == m->res_acc && (size_t)S->n == m->nres &&
            (m->nres == 0 || memcmp(m->spool + S->off, m->res, m->nres * sizeof(int32_t)) == 0))
            return s;
    }
    if (m->ns >= MAX_STATES) {
        fail(m, "too many parser states");
        return SLIM_CSTATE_DEAD;
    }
    if (!slim_grow((void **)&m->st, &m->caps, m->ns + 1, sizeof(cstate)) ||
        !slim_grow((void **)&m->spool, &m->capsp, m->nsp + m->nres, sizeof(int32_t))) {
        fail(m, "out of memory");
        return SLIM_CSTATE_DEAD;
    }
    if (m->nres) memcpy(m->spool + m->nsp, m->res, m->nres * sizeof(int32_t));
    m->st[m->ns] = (cstate){.off = (int32_t)m->nsp,
                            .n = (int32_t)m->nres,
                            .row = -1,
                            .mask = -1,
                            .uni = UNKNOWN,
                            .suni = UNKNOWN,
                            .sloop = -1,
                            .na = -1,
                            .accept = m->res_acc,
                            .h = h};
    m->nsp += m->nres;
    m->shash[j] = (int32_t)m->ns;
    return (int32_t)m->ns++;
}

static int32_t transition(slim_cmatch *m, int32_t s, uint8_t c) {
    begin(m);
    const slim_cgrammar *g = m->g;
    int32_t off = m->st[s].off, n = m->st[s].n;
    if (m->in_mask) m->mwork += (size_t)n;
    for (int32_t i = 0; i < n && !m->failed; i++) {
        int32_t f = m->spool[off + i];
        int32_t pos = m->fpos[f];
        if (slim_cset_has(g->sets[g->items[pos].arg], c))
            closure(m, frame(m, pos + 1, 0, m->fpar[f]));
    }
    return intern_state(m);
}

static inline int32_t *row_at(const slim_cmatch *m, int32_t r) {
    return m->rowblk[r / ROW_BLOCK] + (size_t)(r % ROW_BLOCK) * 256;
}

static int32_t *row_of(slim_cmatch *m, int32_t s) {
    cstate *S = &m->st[s];
    if (S->row < 0) {
        if ((m->nrows + 1) * 256 * sizeof(int32_t) > ROW_BUDGET) { /* drop the cache */
            for (size_t i = 0; i < m->ns; i++)
                m->st[i].row = -1;
            m->nrows = 0; /* the blocks are reused */
        }
        if (m->nrows / ROW_BLOCK >= m->nblk) {
            int32_t *blk = malloc(sizeof(int32_t) * 256 * ROW_BLOCK);
            if (!blk || !slim_grow((void **)&m->rowblk, &m->capblk, m->nblk + 1, sizeof blk)) {
                free(blk);
                fail(m, "out of memory");
                return NULL;
            }
            m->rowblk[m->nblk++] = blk;
        }
        S->row = (int32_t)m->nrows++;
        int32_t *r = row_at(m, S->row);
        for (int i = 0; i < 256; i++)
            r[i] = UNKNOWN;
    }
    return row_at(m, S->row);
}

/* Fill s's whole row: bytes that every frame of s treats alike (the same
 * membership in each frame's byte set) lead to the same state, so one
 * transition per class of bytes. */
static void fill_row(slim_cmatch *m, int32_t s) {
    int32_t n = m->st[s].n, off = m->st[s].off;
    if (!row_of(m, s)) return;
    const slim_cgrammar *g = m->g;
    /* Frames that wait on the same byte set treat every byte alike, so the
     * classes are those of the distinct sets (a key position's frames share a
     * handful): one signature bit per distinct set instead of per frame. */
    int32_t dset[64];
    int nd = 0;
    for (int32_t i = 0; i < n && nd <= 64; i++) {
        int32_t a = g->items[m->fpos[m->spool[off + i]]].arg, k = 0;
        while (k < nd && dset[k] != a)
            k++;
        if (k == nd) {
            if (nd == 64) {
                nd = 65; /* too many: per frame below */
                break;
            }
            dset[nd++] = a;
        }
    }
    if (nd <= 64) {
        uint64_t sg[256];
        memset(sg, 0, sizeof sg);
        for (int k = 0; k < nd; k++) {
            const uint64_t *set = g->sets[dset[k]];
            for (int w = 0; w < 4; w++)
                for (uint64_t bits = set[w]; bits; bits &= bits - 1)
                    sg[w * 64 + __builtin_ctzll(bits)] |= 1ull << k;
        }
        int32_t done[256], val[256];
        uint64_t cls[256];
        int ncls = 0;
        for (int c = 0; c < 256 && !m->failed; c++) {
            if (c && sg[c] == sg[c - 1]) { /* runs of bytes alike are the common case */
                done[c] = done[c - 1];
                continue;
            }
            int k = 0;
            while (k < ncls && cls[k] != sg[c])
                k++;
            if (k == ncls) {
                cls[ncls] = sg[c];
                val[ncls++] = sg[c] ? transition(m, s, (uint8_t)c) : SLIM_CSTATE_DEAD;
            }
            done[c] = val[k];
        }
        int32_t *row = row_of(m, s);
        if (row && !m->failed) memcpy(row, done, sizeof done);
        return;
    }
    size_t words = ((size_t)n + 63) / 64;
    if (!words) words = 1;
    uint64_t small[256];
    uint64_t *sig = words == 1 ? small : calloc(256 * words, sizeof(uint64_t));
    if (!sig) {
        fail(m, "out of memory");
        return;
    }
    if (words == 1) memset(small, 0, sizeof small);
    for (int32_t i = 0; i < n; i++) {
        const uint64_t *set = g->sets[g->items[m->fpos[m->spool[off + i]]].arg];
        for (int w = 0; w < 4; w++)
            for (uint64_t bits = set[w]; bits; bits &= bits - 1)
                sig[(size_t)(w * 64 + __builtin_ctzll(bits)) * words + (size_t)i / 64] |=
                    1ull << (i % 64);
    }
    int32_t done[256];
    for (int c = 0; c < 256; c++)
        done[c] = UNKNOWN;
    if (words == 1) { /* the common case: classes by a scan of the distinct signatures */
        uint64_t cls[256];
        int32_t val[256];
        int ncls = 0;
        for (int c = 0; c < 256 && !m->failed; c++) {
            int k = 0;
            while (k < ncls && cls[k] != small[c])
                k++;
            if (k == ncls) {
                cls[ncls] = small[c];
                val[ncls++] = small[c] ? transition(m, s, (uint8_t)c) : SLIM_CSTATE_DEAD;
            }
            done[c] = val[k];
        }
    }
    for (int c = 0; c < 256 && !m->failed; c++) {
        if (done[c] != UNKNOWN) continue;
        const uint64_t *sc = sig + (size_t)c * words;
        bool any = false;
        for (size_t w = 0; w < words; w++)
            any |= sc[w] != 0;
        int32_t v = any ? transition(m, s, (uint8_t)c) : SLIM_CSTATE_DEAD;
        for (int k = c; k < 256; k++)
            if (done[k] == UNKNOWN && memcmp(sig + (size_t)k * words, sc, words * 8) == 0)
                done[k] = v;
    }
    if (sig != small) free(sig);
    int32_t *row = row_of(m, s);
    if (row && !m->failed) memcpy(row, done, sizeof done);
}

static inline int32_t delta(slim_cmatch *m, int32_t s, uint8_t c) {
    int32_t r = m->st[s].row;
    if (r >= 0) {
        int32_t v = row_at(m, r)[c];
        if (v != UNKNOWN) return v;
    }
    fill_row(m, s);
    if (m->failed || m->st[s].row < 0) return SLIM_CSTATE_DEAD;
    return row_at(m, m->st[s].row)[c];
}

/* ---- public -------------------------------------------------------------------------------- */

slim_status slim_cmatch_new(const slim_cgrammar *g, const slim_ctokens *t, slim_cmatch **out) {
    *out = NULL;
    if (!g || !t)
        return slim_error(SLIM_ERR_INVALID_ARG, "constraint matcher: no grammar or tokens");
    slim_cmatch *m = calloc(1, sizeof *m);
    if (!m) return slim_error(SLIM_ERR_NOMEM, "constraint matcher: out of memory");
    m->g = g;
    m->t = t;
    m->cache_masks = true;
    m->mask_words = ((size_t)t->n_vocab + 31) / 32;
    const size_t depth = (size_t)(t->safe.max_depth > t->unsafe.max_depth ? t->safe.max_depth
                                                                          : t->unsafe.max_depth) +
                         2;
    /* a token of L bytes finishes at most L iterations of a repetition, and
     * may start one more */
    m->count_slack = (int32_t)depth + 1;
    m->walk = malloc(sizeof(int32_t) * depth);
    m->cdep = malloc(sizeof(int32_t) * depth);
    m->pend = malloc(sizeof(int32_t) * 3 * depth);
    m->out = calloc(m->mask_words + 1, sizeof(uint32_t));
    if (!m->walk || !m->cdep || !m->pend || !m->out) {
        slim_cmatch_free(m);
        return slim_error(SLIM_ERR_NOMEM, "constraint matcher: out of memory");
    }
    begin(m);
    for (int32_t a = g->alt_off[g->root]; a < g->alt_off[g->root + 1]; a++)
        closure(m, frame(m, g->alt_start[a], 0, -1));
    m->start = intern_state(m);
    if (m->failed) {
        slim_cmatch_free(m);
        return SLIM_ERR_NOMEM;
    }
    *out = m;
    return SLIM_OK;
}

void slim_cmatch_free(slim_cmatch *m) {
    if (!m) return;
    free(m->fpos);
    free(m->fcnt);
    free(m->fpar);
    free(m->fhash);
    free(m->st);
    free(m->spool);
    free(m->shash);
    for (size_t i = 0; i < m->nblk; i++)
        free(m->rowblk[i]);
    free(m->rowblk);
    for (size_t i = 0; i < m->nmblk; i++)
        free(m->maskblk[i]);
    free(m->maskblk);
    free(m->visit);
    free(m->work);
    free(m->res);
    free(m->walk);
    free(m->cdep);
    free(m->pend);
    free(m->memo);
    free(m->lkey);
    free(m->lval);
    free(m->out);
    free(m->canon);
    free(m->chain);
    free(m);
}

void slim_cmatch_set_mask_cache(slim_cmatch *m, bool on) { m->cache_masks = on; }

int32_t slim_cmatch_start(slim_cmatch *m) { return m->start; }

int32_t slim_cmatch_advance_byte(slim_cmatch *m, int32_t s, uint8_t c) {
    if (s < 0 || m->failed) return SLIM_CSTATE_DEAD;
    return delta(m, s, c);
}

int32_t slim_cmatch_advance_bytes(slim_cmatch *m, int32_t s, const uint8_t *p, size_t n) {
    for (size_t i = 0; i < n && s >= 0; i++)
        s = slim_cmatch_advance_byte(m, s, p[i]);
    return s;
}

bool slim_cmatch_accepting(slim_cmatch *m, int32_t s) {
    return s >= 0 && !m->failed && m->st[s].accept;
}

int32_t slim_cmatch_advance_token(slim_cmatch *m, int32_t s, int32_t tok) {
    const slim_ctokens *t = m->t;
    if (s < 0 || tok < 0 || tok >= t->n_vocab || m->failed) return SLIM_CSTATE_DEAD;
    if (t->kind[tok] == SLIM_CTOK_EOS) return m->st[s].accept ? SLIM_CSTATE_DONE : SLIM_CSTATE_DEAD;
    if (t->kind[tok] != SLIM_CTOK_TEXT) return SLIM_CSTATE_DEAD;
    return slim_cmatch_advance_bytes(m, s, t->bytes + t->off[tok], t->off[tok + 1] - t->off[tok]);
}

static bool is_plain(int c) { return c >= 0x20 && c < 0x7F && c != '"' && c != '\\'; }

/* The state all plain bytes lead to from s (all alike, live), else -1. */
static int32_t uniform(slim_cmatch *m, int32_t s) {
    if (m->st[s].uni != UNKNOWN) return m->st[s].uni;
    int32_t u = -1;
    for (int c = 0x20; c < 0x7F; c++) {
        if (!is_plain(c)) continue;
        int32_t x = delta(m, s, (uint8_t)c);
        if (x < 0 || (u >= 0 && x != u)) {
            u = -1;
            break;
        }
        u = x;
    }
    if (m->failed) return -1;
    m->st[s].uni = u;
    return u;
}

/* Every sequence of k continuation bytes from x leads to s (memo: states
 * already verified for each k). */
typedef struct vmemo {
    int32_t st[3][64];
    int n[3];
} vmemo;

static bool conts_to(slim_cmatch *m, int32_t x, int k, int32_t s, vmemo *v) {
    for (int q = 0; q < v->n[k - 1]; q++)
        if (v->st[k - 1][q] == x) return true;
    for (int c = 0x80; c <= 0xBF; c++) {
        int32_t y = delta(m, x, (uint8_t)c);
        if (k == 1 ? y != s : (y < 0 || !conts_to(m, y, k - 1, s, v))) return false;
    }
    if (v->n[k - 1] < 64) v->st[k - 1][v->n[k - 1]++] = x;
    return true;
}

/* Does every string-safe character (tokens.c) lead from s back to s?  Then
 * all string-safe tokens are allowed at s: their complete characters loop,
 * and a trailing partial character can be completed. */
static bool string_loop(slim_cmatch *m, int32_t s) {
    if (m->st[s].sloop >= 0) return m->st[s].sloop;
    bool ok = true;
    for (int c = 0x20; c < 0x7F && ok; c++)
        if (c != '"' && c != '\\') ok = delta(m, s, (uint8_t)c) == s;
    vmemo v;
    v.n[0] = v.n[1] = v.n[2] = 0;
    for (int lead = 0xC2; lead <= 0xF4 && ok; lead++) {
        int32_t x = delta(m, s, (uint8_t)lead);
        if (x < 0) {
            ok = false;
            break;
        }
        int len = lead <= 0xDF ? 2 : lead <= 0xEF ? 3 : 4;
        if (len == 2) {
            ok = conts_to(m, x, 1, s, &v);
            continue;
        }
        /* the second byte's range depends on the lead (no overlong forms,
         * surrogates or values past U+10FFFF) */
        int lo = lead == 0xE0 ? 0xA0 : lead == 0xF0 ? 0x90 : 0x80;
        int hi = lead == 0xED ? 0x9F : lead == 0xF4 ? 0x8F : 0xBF;
        for (int c2 = lo; c2 <= hi && ok; c2++) {
            int32_t y = delta(m, x, (uint8_t)c2);
            ok = y >= 0 && conts_to(m, y, len - 2, s, &v);
        }
    }
    if (m->failed) return false;
    m->st[s].sloop = ok;
    return ok;
}

/* The one live state every string-safe character (tokens.c) leads to from s,
 * else -1: inside a string with a length bound, each character moves the
 * count on whatever it is, so a subtree of string-safe tokens no longer than
 * the steps available is allowed whole. */
static int32_t safe_uniform(slim_cmatch *m, int32_t s) {
    if (m->st[s].suni != UNKNOWN) return m->st[s].suni;
    int32_t u = uniform(m, s);
    vmemo v;
    v.n[0] = v.n[1] = v.n[2] = 0;
    for (int lead = 0xC2; lead <= 0xF4 && u >= 0; lead++) {
        int32_t x = delta(m, s, (uint8_t)lead);
        if (x < 0) {
            u = -1;
            break;
        }
        int len = lead <= 0xDF ? 2 : lead <= 0xEF ? 3 : 4;
        if (len == 2) {
            if (!conts_to(m, x, 1, u, &v)) u = -1;
            continue;
        }
        int lo = lead == 0xE0 ? 0xA0 : lead == 0xF0 ? 0x90 : 0x80;
        int hi = lead == 0xED ? 0x9F : lead == 0xF4 ? 0x8F : 0xBF;
        for (int c2 = lo; c2 <= hi && u >= 0; c2++) {
            int32_t y = delta(m, x, (uint8_t)c2);
            if (y < 0 || !conts_to(m, y, len - 2, u, &v)) u = -1;
        }
    }
    if (m->failed) return -1;
    m->st[s].suni = u;
    return u;
}

static uint64_t memo_key(int32_t x, int32_t node, bool safe) {
    return ((uint64_t)(uint32_t)x << 32 | (uint64_t)(uint32_t)node << 1 | safe) + 1; /* 0: empty */
}

static bool memo_has(const slim_cmatch *m, uint64_t k) {
    if (!m->capmemo) return false;
    for (size_t j = mix(k) & (m->capmemo - 1);; j = (j + 1) & (m->capmemo - 1)) {
        if (m->memo[j] == k) return true;
        if (!m->memo[j]) return false;
    }
}

static void memo_add(slim_cmatch *m, uint64_t k) {
    if ((m->nmemo + 1) * 2 > m->capmemo) {
        size_t cap = m->capmemo ? m->capmemo * 2 : 1024;
        if (cap > 2 * MEMO_MAX) { /* full: start again */
            memset(m->memo, 0, m->capmemo * sizeof *m->memo);
            m->nmemo = 0;
        } else {
            uint64_t *t = calloc(cap, sizeof *t);
            if (!t) return; /* only a cache */
            for (size_t i = 0; i < m->capmemo; i++)
                if (m->memo[i])
                    for (size_t j = mix(m->memo[i]) & (cap - 1);; j = (j + 1) & (cap - 1))
                        if (!t[j]) {
                            t[j] = m->memo[i];
                            break;
                        }
            free(m->memo);
            m->memo = t;
            m->capmemo = cap;
        }
    }
    for (size_t j = mix(k) & (m->capmemo - 1);; j = (j + 1) & (m->capmemo - 1)) {
        if (m->memo[j] == k) return;
        if (!m->memo[j]) {
            m->memo[j] = k;
            m->nmemo++;
            return;
        }
    }
}

/* The ASCII bytes that lead from s back to s (lp of cstate). */
static const uint64_t *loop_set(slim_cmatch *m, int32_t s) {
    if (!m->st[s].lpk) {
        uint64_t lp[2] = {0, 0};
        for (int c = 1; c < 0x80; c++)
            if (delta(m, s, (uint8_t)c) == s) lp[c >> 6] |= 1ull << (c & 63);
        cstate *S = &m->st[s]; /* delta may have grown m->st */
        S->lp[0] = lp[0], S->lp[1] = lp[1];
        S->lpk = 1;
    }
    return m->st[s].lp;
}

static int32_t lead_to(slim_cmatch *m, int32_t s, uint8_t lead);

/* Does every valid non-ASCII character lead from s back to s? */
static bool nonascii_loop(slim_cmatch *m, int32_t s) {
    if (m->st[s].na < 0) {
        bool ok = true;
        for (int lead = 0xC2; lead <= 0xF4 && ok; lead++)
            ok = lead_to(m, s, (uint8_t)lead) == s;
        if (m->failed) return false;
        m->st[s].na = ok;
    }
    return m->st[s].na;
}

/* The one state every complete character with lead byte `lead` leads to
 * from s (its valid continuations only), else -1: where that state loops on
 * every string-safe character, the whole subtree of the safe trie under the
 * lead byte is allowed, without walking its continuation bytes (thousands of
 * CJK tokens under one lead in a 262k vocabulary). */
static int32_t lead_to(slim_cmatch *m, int32_t s, uint8_t lead) {
    uint64_t key = ((uint64_t)(uint32_t)s << 8 | lead) + 1; /* 0: empty */
    if (m->caplead)
        for (size_t j = mix(key) & (m->caplead - 1);; j = (j + 1) & (m->caplead - 1)) {
            if (m->lkey[j] == key) return m->lval[j];
            if (!m->lkey[j]) break;
        }
    int32_t x = delta(m, s, lead), y = -1;
    int len = lead <= 0xDF ? 2 : lead <= 0xEF ? 3 : 4;
    int lo = lead == 0xE0 ? 0xA0 : lead == 0xF0 ? 0x90 : 0x80;
    int hi = lead == 0xED ? 0x9F : lead == 0xF4 ? 0x8F : 0xBF;
    if (x >= 0) { /* the candidate: the first continuation bytes */
        y = x;
        for (int k = 1; k < len && y >= 0; k++)
            y = delta(m, y, (uint8_t)(k == 1 ? lo : 0x80));
    }
    if (y >= 0) {
        vmemo v;
        v.n[0] = v.n[1] = v.n[2] = 0;
        for (int c2 = lo; c2 <= hi && y >= 0; c2++) {
            int32_t z = delta(m, x, (uint8_t)c2);
            if (len == 2 ? z != y : (z < 0 || !conts_to(m, z, len - 2, y, &v))) y = -1;
        }
    }
    if (m->failed) return -1;
    if ((m->nlead + 1) * 2 > m->caplead) {
        size_t cap = m->caplead ? m->caplead * 2 : 256;
        uint64_t *nk = calloc(cap, sizeof *nk);
        int32_t *nv = malloc(cap * sizeof *nv);
        if (!nk || !nv) { /* only a cache */
            free(nk);
            free(nv);
            return y;
        }
        for (size_t i = 0; i < m->caplead; i++)
            if (m->lkey[i])
                for (size_t j = mix(m->lkey[i]) & (cap - 1);; j = (j + 1) & (cap - 1))
                    if (!nk[j]) {
                        nk[j] = m->lkey[i], nv[j] = m->lval[i];
                        break;
                    }
        free(m->lkey);
        free(m->lval);
        m->lkey = nk, m->lval = nv, m->caplead = cap;
    }
    for (size_t j = mix(key) & (m->caplead - 1);; j = (j + 1) & (m->caplead - 1))
        if (!m->lkey[j]) {
            m->lkey[j] = key, m->lval[j] = y;
            m->nlead++;
            break;
        }
    return y;
}

/* The largest class C of ASCII bytes that lead from s to one live state,
 * and how many steps every byte of C keeps leading (all of C to one live
 * state each step) from there: inside a string with counted characters of a
 * class (a pattern's [0-9a-z_-]{1,255}, say) each character makes a new
 * state, but a subtree whose bytes are all in C and no deeper than the reach
 * is allowed whole.  Returns the reach (0: none). */
static int32_t class_reach(slim_cmatch *m, int32_t s, int32_t cap, uint64_t C[2]) {
    int32_t tgt[128], best = -1, bestn = 0;
    C[0] = C[1] = 0;
    for (int c = 1; c < 0x80; c++)
        tgt[c] = delta(m, s, (uint8_t)c);
    for (int c = 1; c < 0x80; c++) {
        if (tgt[c] < 0 || tgt[c] == best) continue;
        int n = 0;
        for (int k = c; k < 0x80; k++)
            n += tgt[k] == tgt[c];
        if (n > bestn) bestn = n, best = tgt[c];
    }
    if (bestn < 2 || m->failed) return 0;
    for (int c = 1; c < 0x80; c++)
        if (tgt[c] == best) C[c >> 6] |= 1ull << (c & 63);
    int32_t r = 1;
    for (int32_t u = best; r < cap; r++) {
        int32_t v = SLIM_CSTATE_DEAD;
        for (int c = 1; c < 0x80; c++) {
            if (!((C[c >> 6] >> (c & 63)) & 1)) continue;
            int32_t x = delta(m, u, (uint8_t)c);
            if (x < 0 || (v >= 0 && x != v)) {
                v = SLIM_CSTATE_DEAD;
                break;
            }
            v = x;
        }
        if (v < 0) break;
        if (v == u) return m->failed ? 0 : cap; /* a loop: live for ever */
        u = v;
    }
    return m->failed ? 0 : r;
}

/* The trie walk: a node's bytes are fed to the automaton from its parent's
 * state; a dead state skips the whole subtree.  Bulk path: where every plain
 * byte leads to one live state for `reach` steps from the root (inside a
 * counted string, say), a subtree of plain bytes no deeper than that is
 * allowed whole, without visiting it. */
static bool string_loop(slim_cmatch *m, int32_t s);

static void set_range(uint32_t *mask, const slim_ctrie *r, int32_t i, bool on) {
    for (int32_t k = r->tok_start[i]; k < r->tok_start[r->nodes[i].next]; k++) {
        int32_t tok = r->order[k];
        if (on)
            mask[tok >> 5] |= 1u << (tok & 31);
        else
            mask[tok >> 5] &= ~(1u << (tok & 31));
    }
}

/* neg: the mask starts with every token of r set, and the walk clears the
 * dead subtrees instead of setting the live ones (cheaper when most are). */
static void walk_trie(slim_cmatch *m, int32_t s, const slim_ctrie *r, bool safe, bool neg,
                      uint32_t *mask) {
    const slim_ctrie_node *T = r->nodes;
    int32_t *walk = m->walk;
    walk[0] = s;
    int32_t reach = 0; /* uniform steps available from the root */
    for (int32_t u = s; reach < r->max_depth && (u = uniform(m, u)) >= 0;)
        reach++;
    int32_t *cdep = m->cdep; /* characters on the path down to each depth */
    cdep[0] = 0;
    int32_t sreach = 0; /* the same over string-safe characters (the safe trie) */
    /* non-ASCII characters are costly to look ahead over (each lead byte's
     * states); no further than the longest such token needs: plain ASCII has
     * `reach` */
    const int32_t smax = m->t->na_chars < SAFE_REACH_MAX ? m->t->na_chars : SAFE_REACH_MAX;
    for (int32_t u = s; safe && sreach < smax && (u = safe_uniform(m, u)) >= 0;)
        sreach++;
    uint64_t C[2]; /* a class of bytes and the steps it stays live (class_reach) */
    int32_t creach =
        class_reach(m, s, r->max_depth < SAFE_REACH_MAX ? r->max_depth : SAFE_REACH_MAX, C);
    int32_t crun = 0;                /* depth to which the current path is all in C */
    int32_t plain_run = 0;           /* depth to which the current path is all plain */
    int32_t *pend = m->pend, np = 0; /* (node, state, dead count) of open memo candidates */
    int64_t dead = 0;                /* dead subtrees met so far */
    for (int32_t i = 1;;) {
        while (np > 0 && i >= T[pend[3 * np - 3]].next) { /* subtrees finished */
            np--;
            if (pend[3 * np + 2] == (int32_t)dead)
                memo_add(m, memo_key(pend[3 * np + 1], pend[3 * np], safe));
        }
        if (i >= r->n) break;
        const slim_ctrie_node *nd = &T[i];
        int32_t d = nd->depth;
        if (plain_run > d - 1) plain_run = d - 1;
        if (crun > d - 1) crun = d - 1;
        /* every token below has at most sreach characters (a trailing
         * partial one counted) */
        cdep[d] = cdep[d - 1] + ((nd->byte & 0xC0) != 0x80);
        if (sreach && cdep[d - 1] + nd->hc <= sreach) { /* safe tokens start with a lead byte */
            if (!neg) set_range(mask, r, i, true);
            i = nd->next;
            continue;
        }
        const uint64_t *sb = r->sub + 2 * (size_t)i;
        /* bytes of C all the way from the root, no deeper than C's reach */
        if (crun == d - 1 && d - 1 + nd->h <= creach && !(sb[0] & ~C[0]) && !(sb[1] & ~C[1])) {
            if (!neg) set_range(mask, r, i, true);
            i = nd->next;
            continue;
        }
        /* plain bytes all the way down, and the state loops on them (or
         * they stay live long enough from the root) */
        if (nd->plain && ((plain_run == d - 1 && d - 1 + nd->h <= reach) ||
                          uniform(m, walk[d - 1]) == walk[d - 1])) {
            if (!neg) set_range(mask, r, i, true);
            i = nd->next;
            continue;
        }
        int32_t x = delta(m, walk[d - 1], nd->byte);
        if (x < 0) {
            if (neg) set_range(mask, r, i, false);
            dead++;
            i = nd->next;
            continue;
        }
        if (nd->next == i + 1) { /* a leaf: its tokens are allowed, and the bulk checks
                                    below would only build x's row for nothing */
            if (!neg)
                for (int32_t k = 0; k < nd->tok_n; k++) {
                    int32_t tok = r->order[nd->tok_lo + k];
                    mask[tok >> 5] |= 1u << (tok & 31);
                }
            i++;
            continue;
        }
        /* every character below is one the parent's state loops on (bit 0:
         * non-ASCII bytes, all valid UTF-8 in the safe trie only); first the
         * node's own character, as the loop set costs a row scan */
        int32_t p = walk[d - 1];
        if (x == p ||
            (safe && nd->byte >= 0xC2 && nd->byte <= 0xF4 && lead_to(m, p, nd->byte) == p)) {
            const uint64_t *lp = loop_set(m, p);
            if (!((sb[0] & ~lp[0]) >> 1) && !(sb[1] & ~lp[1]) &&
                (!(sb[0] & 1) || (safe && nonascii_loop(m, p)))) {
                if (!neg) set_range(mask, r, i, true);
                i = nd->next;
                continue;
            }
        }
        if (r->tok_start[nd->next] - r->tok_start[i] >= MEMO_MIN_TOKENS) {
            if (memo_has(m, memo_key(x, i, safe))) {
                if (!neg) set_range(mask, r, i, true);
                i = nd->next;
                continue;
            }
            pend[3 * np] = i, pend[3 * np + 1] = x, pend[3 * np + 2] = (int32_t)dead;
            np++;
        }
        if (safe && nd->byte >= 0xC2 && nd->byte <= 0xF4 && !nd->boundary) {
            int32_t y = lead_to(m, walk[d - 1], nd->byte);
            if (y >= 0 && string_loop(m, y)) { /* the first character lands in a loop */
                if (!neg) set_range(mask, r, i, true);
                i = nd->next;
                continue;
            }
        }
        if (safe && nd->boundary && string_loop(m, x)) {
            /* every safe token below continues with safe characters */
            if (!neg) set_range(mask, r, i, true);
            i = nd->next;
            continue;
        }
        walk[d] = x;
        if (plain_run == d - 1 && is_plain(nd->byte)) plain_run = d;
        if (crun == d - 1 && nd->byte < 0x80 && ((C[nd->byte >> 6] >> (nd->byte & 63)) & 1))
            crun = d;
        if (!neg)
            for (int32_t k = 0; k < nd->tok_n; k++) {
                int32_t tok = r->order[nd->tok_lo + k];
                mask[tok >> 5] |= 1u << (tok & 31);
            }
        i++;
    }
}

/* Are most safe tokens allowed (judged by the first byte's subtrees)? */
static bool mostly_allowed(slim_cmatch *m, int32_t s, const slim_ctrie *r) {
    int64_t yes = 0, no = 0;
    for (int32_t i = 1; i < r->n; i = r->nodes[i].next) {
        int32_t x = delta(m, s, r->nodes[i].byte);
        int64_t cnt = r->tok_start[r->nodes[i].next] - r->tok_start[i];
        if (x < 0)
            no += cnt;
        else if (r->nodes[i].boundary && string_loop(m, x))
            yes += cnt;
    }
    return yes > no;
}

/* No string-safe character is allowed at s. */
static bool safe_dead(slim_cmatch *m, int32_t s) {
    for (int c = 0x20; c < 0x7F; c++)
        if (c != '"' && c != '\\' && delta(m, s, (uint8_t)c) >= 0) return false;
    for (int c = 0xC2; c <= 0xF4; c++)
        if (delta(m, s, (uint8_t)c) >= 0) return false;
    return true;
}

/* r when every string-safe character moves s on for r steps and none is
 * allowed after them (a string with a length bound): the safe tokens of at
 * most r characters are the allowed ones.  Else -1. */
static int32_t safe_count(slim_cmatch *m, int32_t s) {
    int32_t r = 0, u = s;
    /* first the cheap necessary condition over plain ASCII (one row per
     * state): a string with many characters left is not worth the lead bytes */
    for (int32_t next; r < SAFE_REACH_MAX && (next = uniform(m, u)) >= 0; r++)
        u = next;
    if (r >= SAFE_REACH_MAX || m->failed) return -1;
    r = 0, u = s;
    for (int32_t next; r < SAFE_REACH_MAX && (next = safe_uniform(m, u)) >= 0; r++)
        u = next;
    return r < SAFE_REACH_MAX && safe_dead(m, u) && !m->failed ? r : -1;
}

static void compute_mask(slim_cmatch *m, int32_t s, uint32_t *mask) {
    const slim_ctokens *t = m->t;
    int32_t r;
    m->mwork = 0;
    m->in_mask = true;
    if (string_loop(m, s)) {
        memcpy(mask, t->safe_mask, m->mask_words * sizeof(uint32_t));
    } else if ((r = safe_count(m, s)) >= 0) {
        memcpy(mask, t->safe_len_mask + (size_t)r * (m->mask_words + 1),
               m->mask_words * sizeof(uint32_t));
    } else if (mostly_allowed(m, s, &t->safe)) {
        memcpy(mask, t->safe_mask, m->mask_words * sizeof(uint32_t));
        walk_trie(m, s, &t->safe, true, true, mask);
    } else {
        memset(mask, 0, m->mask_words * sizeof(uint32_t));
        walk_trie(m, s, &t->safe, true, false, mask);
    }
    walk_trie(m, s, &t->unsafe, false, false, mask);
    if (m->st[s].accept)
        for (int32_t k = 0; k < t->n_eos; k++)
            mask[t->eos[k] >> 5] |= 1u << (t->eos[k] & 31);
    m->in_mask = false;
    if (m->failed) memset(mask, 0, m->mask_words * sizeof(uint32_t));
}

/* ---- masks shared by states that differ only in far-from-full counts -------------------- */

/* A bounded repetition's count c with min <= c <= max - slack, as a frame
 * anywhere on a stack, only limits how many more iterations may follow, and
 * no token (at most slack - 2 bytes, each finished iteration at least one)
 * gets near that limit: such counts are interchangeable for a mask.  The
 * canonical count is max - slack, so the characters of a string with a
 * maxLength, or the items of an array with a maxItems, share one mask
 * instead of a first mask (a trie walk) per count. */
static int32_t canon_count(const slim_cmatch *m, int32_t pos, int32_t cnt) {
    const slim_citem *it = &m->g->items[pos];
    if (it->kind != SLIM_CI_REP || it->max == SLIM_CREP_INF || cnt < it->min ||
        cnt > it->max - m->count_slack)
        return cnt;
    return it->max - m->count_slack;
}

/* f with every count on its stack canonical (memoized per frame). */
static int32_t canon_frame(slim_cmatch *m, int32_t f) {
    size_t n = 0;
    for (int32_t g = f; g >= 0; g = m->fpar[g]) { /* up to the first frame already known */
        if ((size_t)g < m->capcanon && m->canon[g]) break;
        if (!slim_grow((void **)&m->chain, &m->capchain, n + 1, sizeof(int32_t))) {
            fail(m, "out of memory");
            return -1;
        }
        m->chain[n++] = g;
    }
    while (n > 0 && !m->failed) { /* then down, each parent canonical before its children */
        int32_t g = m->chain[--n], par = m->fpar[g];
        int32_t cpar = par < 0 ? par : m->canon[par] - 1;
        int32_t cnt = canon_count(m, m->fpos[g], m->fcnt[g]);
        int32_t c = cpar == par && cnt == m->fcnt[g] ? g : frame(m, m->fpos[g], cnt, cpar);
        if (c < 0) return -1;
        size_t need = (size_t)(g > c ? g : c) + 1;
        if (need > m->capcanon) {
            size_t old = m->capcanon;
            if (!slim_grow((void **)&m->canon, &m->capcanon, need, sizeof(int32_t))) {
                fail(m, "out of memory");
                return -1;
            }
            memset(m->canon + old, 0, (m->capcanon - old) * sizeof(int32_t));
        }
        m->canon[g] = c + 1;
        m->canon[c] = c + 1; /* canonical already */
    }
    return m->failed ? -1 : m->canon[f] - 1;
}

/* The state of s's stacks with canonical counts (s itself when it has none
 * to change), DEAD on failure. */
static int32_t canon_state(slim_cmatch *m, int32_t s) {
    begin(m);
    m->res_acc = m->st[s].accept;
    bool same = true;
    for (int32_t i = 0; i < m->st[s].n && !m->failed; i++) {
        int32_t f = m->spool[m->st[s].off + i], c = canon_frame(m, f);
        if (c < 0) return SLIM_CSTATE_DEAD;
        same &= c == f;
        if (!slim_grow((void **)&m->res, &m->capres, m->nres + 1, sizeof(int32_t))) {
            fail(m, "out of memory");
            return SLIM_CSTATE_DEAD;
        }
        m->res[m->nres++] = c;
    }
    if (same) return s;
    qsort(m->res, m->nres, sizeof(int32_t), cmp_i32);
    size_t k = 0; /* two stacks may have become one */
    for (size_t i = 0; i < m->nres; i++)
        if (!k || m->res[i] != m->res[k - 1]) m->res[k++] = m->res[i];
    m->nres = k;
    return intern_state(m);
}

const uint32_t *slim_cmatch_mask(slim_cmatch *m, int32_t s, uint32_t *mask) {
    size_t W = m->mask_words;
    if (s < 0 || m->failed) {
        memset(m->out, 0, W * sizeof(uint32_t));
    } else if (m->st[s].mask >= 0) {
        size_t k = (size_t)m->st[s].mask;
        const uint32_t *c = m->maskblk[k / MASK_BLOCK] + (k % MASK_BLOCK) * W;
        if (mask) memcpy(mask, c, W * sizeof(uint32_t));
        return c;
    } else {
        /* with the cache on, the mask is computed for (and cached with) the
         * canonical state, and s shares it */
        int32_t c = m->cache_masks ? canon_state(m, s) : s;
        if (c < 0) {
            memset(m->out, 0, W * sizeof(uint32_t));
            if (mask) memcpy(mask, m->out, W * sizeof(uint32_t));
            return m->out;
        }
        if (c != s && m->st[c].mask >= 0) {
            m->st[s].mask = m->st[c].mask;
            return slim_cmatch_mask(m, s, mask);
        }
        compute_mask(m, c, m->out);
        if (m->cache_masks && !m->failed) {
            if ((m->nmasks + 1) * W * sizeof(uint32_t) > MASK_BUDGET) {
                for (size_t i = 0; i < m->ns; i++)
                    m->st[i].mask = -1;
                m->nmasks = 0;
            }
            if (m->nmasks / MASK_BLOCK >= m->nmblk) { /* blocks: no copying as they grow */
                uint32_t *blk = malloc(sizeof(uint32_t) * W * MASK_BLOCK);
                if (blk && slim_grow((void **)&m->maskblk, &m->capmblk, m->nmblk + 1, sizeof blk))
                    m->maskblk[m->nmblk++] = blk;
                else
                    free(blk); /* only a cache */
            }
            if (m->nmasks / MASK_BLOCK < m->nmblk) {
                memcpy(m->maskblk[m->nmasks / MASK_BLOCK] + (m->nmasks % MASK_BLOCK) * W, m->out,
                       W * sizeof(uint32_t));
                m->st[c].mask = m->st[s].mask = (int32_t)m->nmasks++;
            }
        }
    }
    if (mask) memcpy(mask, m->out, W * sizeof(uint32_t));
    return m->out;
}

size_t slim_cmatch_forced_bytes(slim_cmatch *m, int32_t s, uint8_t *buf, size_t cap) {
    size_t n = 0;
    while (n < cap && s >= 0 && !m->failed && !m->st[s].accept) {
        int32_t only = -1, next = SLIM_CSTATE_DEAD;
        for (int c = 0; c < 256; c++) {
            int32_t x = delta(m, s, (uint8_t)c);
            if (x < 0) continue;
            if (only >= 0) return n;
            only = c;
            next = x;
        }
        if (only < 0) break;
        buf[n++] = (uint8_t)only;
        s = next;
    }
    return n;
}

int32_t slim_cmatch_forced_token(slim_cmatch *m, int32_t s) {
    const uint32_t *mask = slim_cmatch_mask(m, s, NULL);
    int32_t found = -1;
    for (size_t w = 0; w < m->mask_words; w++) {
        if (!mask[w]) continue;
        if (found >= 0 || (mask[w] & (mask[w] - 1))) return -1;
        found = (int32_t)(w * 32 + (size_t)__builtin_ctz(mask[w]));
    }
    return found;
}

void slim_cmatch_stats(const slim_cmatch *m, size_t *states, size_t *frames, size_t *bytes) {
    if (states) *states = m->ns;
    if (frames) *frames = m->nf;
    if (bytes)
        *bytes = m->capf * 12 + m->fhcap * 4 + m->caps * sizeof(cstate) + m->capsp * 4 +
                 m->shcap * 4 + m->nblk * ROW_BLOCK * 1024 +
                 m->nmblk * MASK_BLOCK * m->mask_words * 4;
}
