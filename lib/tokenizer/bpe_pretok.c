/* The BPE pre-tokenizers: text -> words, token for token as llama.cpp's
 * unicode_regex_split() with the regexes llama-vocab.cpp picks for each
 * tokenizer.ggml.pre, written as hand-made matchers over code points.
 *
 * llama.cpp splits in passes, each regex cutting every piece of the previous
 * pass.  Two regexes have hand-written splitters there (GPT-2's and Llama 3's),
 * reproduced here statement for statement, quirks included.  The others run
 * through std::regex (ECMAScript: at each position the alternatives are tried
 * in order, quantifiers greedy with backtracking, the first match wins; text
 * between matches is a piece of its own) over a "collapsed" text in which
 * every non-ASCII code point stands for its class; \s, \p{L}, \p{N} there are
 * exactly the White_Space, letter and number flags, and [a-z], [A-Z] are ASCII
 * only.  The matchers below return the length of that first match. */
#include "core/grow.h"
#include "tokenizer/bpe_pretok.h"

#include <stdlib.h>
#include <string.h>

#define OUT_OF_RANGE 0xffffffffu

typedef struct span {
    const uint32_t *cp;
    const uint16_t *fl;
    size_t end;
} span;

static uint16_t F(const span *s, size_t i) { return i < s->end ? s->fl[i] : 0; }
static uint32_t C(const span *s, size_t i) { return i < s->end ? s->cp[i] : OUT_OF_RANGE; }
static bool is_letter(const span *s, size_t i) { return F(s, i) & SLIM_UC_LETTER; }
static bool is_number(const span *s, size_t i) { return F(s, i) & SLIM_UC_NUMBER; }
static bool is_space(const span *s, size_t i) { return F(s, i) & SLIM_UC_SPACE; }
static bool is_rn(uint32_t c) { return c == '\r' || c == '\n'; }

/* [^\s\p{L}\p{N}] */
static bool is_other(const span *s, size_t i) {
    return i < s->end && !(s->fl[i] & (SLIM_UC_SPACE | SLIM_UC_LETTER | SLIM_UC_NUMBER));
}
/* [^\r\n\p{L}\p{N}] */
static bool is_lead(const span *s, size_t i) {
    return i < s->end && !is_rn(s->cp[i]) && !(s->fl[i] & (SLIM_UC_LETTER | SLIM_UC_NUMBER));
}
/* (?=[\p{L}])([^a-z]) and (?=[\p{L}])([^A-Z]) */
static bool is_upperish(const span *s, size_t i) {
    return is_letter(s, i) && !(s->cp[i] >= 'a' && s->cp[i] <= 'z');
}
static bool is_lowerish(const span *s, size_t i) {
    return is_letter(s, i) && !(s->cp[i] >= 'A' && s->cp[i] <= 'Z');
}

/* ---- output: piece lengths in code points ---------------------------------- */

typedef struct out {
    size_t *p, n, cap;
    bool oom;
} out;

static void emit(out *o, size_t len) {
    if (len == 0 || o->oom) return;
    if (!slim_grow((void **)&o->p, &o->cap, o->n + 1, sizeof *o->p)) {
        o->oom = true;
        return;
    }
    o->p[o->n++] = len;
}

/* The tail both hand-written splitters end with, `\s+(?!\S)|\s+|.`, at pos
 * with nws spaces there: the end of that piece. */
static size_t space_run_end(const span *s, size_t pos, size_t nws) {
    if (nws > 1 && C(s, pos + nws) != OUT_OF_RANGE) return pos + nws - 1;
    return pos + (nws > 0 ? nws : 1);
}

/* ---- llama.cpp's hand-written splitters ----------------------------------- */

/* TOKEN(e) ends the current piece at e (llama.cpp's _add_token; empty ones are not kept). */
#define TOKEN(e) (emit(o, (e)-prev), prev = (e))

/* 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+ */
static void split_gpt2(const span *s, size_t ini, out *o) {
    size_t pos = ini, prev = ini;
    while (pos < s->end) {
        uint32_t c = C(s, pos);
        uint16_t f = F(s, pos);
        if (c == '\'' && pos + 1 < s->end) {
            uint32_t n1 = C(s, pos + 1);
            if (n1 == 's' || n1 == 't' || n1 == 'm' || n1 == 'd') {
                pos += 2;
                TOKEN(pos);
                continue;
            }
            if (pos + 2 < s->end) {
                uint32_t n2 = C(s, pos + 2);
                if ((n1 == 'r' && n2 == 'e') || (n1 == 'v' && n2 == 'e') ||
                    (n1 == 'l' && n2 == 'l')) {
                    pos += 3;
                    TOKEN(pos);
                    continue;
                }
            }
        }
        uint16_t f2 = c == ' ' ? F(s, pos + 1) : f;
        if (f2 & SLIM_UC_LETTER) {
            pos += c == ' ';
            while (f2 & SLIM_UC_LETTER)
                f2 = F(s, ++pos);
            TOKEN(pos);
            continue;
        }
        if (f2 & SLIM_UC_NUMBER) {
            pos += c == ' ';
            while (f2 & SLIM_UC_NUMBER)
                f2 = F(s, ++pos);
            TOKEN(pos);
            continue;
        }
        const uint16_t sln = SLIM_UC_SPACE | SLIM_UC_LETTER | SLIM_UC_NUMBER;
        if (!(f2 & sln) && f2) {
            pos += c == ' ';
            while (!(f2 & sln) && f2)
                f2 = F(s, ++pos);
            TOKEN(pos);
            continue;
        }
        size_t nws = 0;
        while (is_space(s, pos + nws))
            nws++;
        pos = space_run_end(s, pos, nws);
        TOKEN(pos);
    }
}

/* (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|
 *  ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+ */
static void split_llama3(const span *s, size_t ini, out *o) {
    size_t pos = ini, prev = ini;
    while (pos < s->end) {
        uint32_t c = C(s, pos);
        uint16_t f = F(s, pos);
        if (c == '\'' && pos + 1 < s->end) {
            uint32_t n1 = slim_unicode_tolower(C(s, pos + 1));
            if (n1 == 's' || n1 == 't' || n1 == 'm' || n1 == 'd') {
                pos += 2;
                TOKEN(pos);
                continue;
            }
            if (pos + 2 < s->end) {
                uint32_t n2 = slim_unicode_tolower(C(s, pos + 2));
                if ((n1 == 'r' && n2 == 'e') || (n1 == 'v' && n2 == 'e') ||
                    (n1 == 'l' && n2 == 'l')) {
                    pos += 3;
                    TOKEN(pos);
                    continue;
                }
            }
        }
        if (!(is_rn(c) || (f & SLIM_UC_NUMBER))) {
            if ((f & SLIM_UC_LETTER) || is_letter(s, pos + 1)) {
                pos++;
                while (is_letter(s, pos))
                    pos++;
                TOKEN(pos);
                continue;
            }
        }
        if (f & SLIM_UC_NUMBER) {
            size_t start = pos;
            while (is_number(s, pos)) {
                if (++pos - start >= 3) {
                    TOKEN(pos);
                    start = pos;
                }
            }
            TOKEN(pos);
            continue;
        }
        const uint16_t sln = SLIM_UC_SPACE | SLIM_UC_LETTER | SLIM_UC_NUMBER;
        uint16_t f2 = c == ' ' ? F(s, pos + 1) : f;
        if (!(f2 & sln) && f) { /* llama.cpp tests the first flags here */
            pos += c == ' ';
            while (!(f2 & sln) && f2)
                f2 = F(s, ++pos);
            while (is_rn(C(s, pos)))
                pos++;
            TOKEN(pos);
            continue;
        }
        size_t nws = 0, last_rn = 0;
        while (is_space(s, pos + nws)) {
            if (is_rn(C(s, pos + nws))) last_rn = pos + nws + 1;
            nws++;
        }
        if (last_rn > 0) {
            pos = last_rn;
            TOKEN(pos);
            continue;
        }
        pos = space_run_end(s, pos, nws);
        TOKEN(pos);
    }
}
#undef TOKEN

/* ---- regex alternatives, as matchers: length of the first match at pos ----- */

static size_t run(const span *s, size_t i, bool (*pred)(const span *, size_t)) {
    while (pred(s, i))
        i++;
    return i;
}

/* (?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD]) */
static size_t contraction(const span *s, size_t pos) {
    if (C(s, pos) != '\'' || pos + 1 >= s->end) return 0;
    uint32_t a = C(s, pos + 1) | 0x20, b = C(s, pos + 2) | 0x20; /* ASCII case folding */
    if (C(s, pos + 1) < 0x80 && (a == 's' || a == 't' || a == 'm' || a == 'd')) return 2;
    if (C(s, pos + 1) < 0x80 && C(s, pos + 2) < 0x80 &&
        ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')))
        return 3;
    return 0;
}

/* [^\r\n\p{L}\p{N}]?\p{L}+  (end of the match, or 0) */
static size_t lead_letters(const span *s, size_t pos) {
    if (is_letter(s, pos)) return run(s, pos, is_letter);
    if (is_lead(s, pos) && is_letter(s, pos + 1)) return run(s, pos + 1, is_letter);
    return 0;
}

/* U*Lw+ from i (U: a letter but a-z, Lw: a letter but A-Z): U* takes the
 * longest run; Lw+ then needs a-z after it, else U* gives back letters until
 * one that is also Lw (a non-ASCII letter) can start Lw+.  End, or 0. */
static size_t upper_star_lower_plus(const span *s, size_t i) {
    size_t u = run(s, i, is_upperish);
    if (u < s->end && s->cp[u] >= 'a' && s->cp[u] <= 'z') return run(s, u, is_lowerish);
    for (size_t k = u; k > i; k--)
        if (is_lowerish(s, k - 1)) return k;
    return 0;
}

/* U+Lw* from i: end, or 0 */
static size_t upper_plus_lower_star(const span *s, size_t i) {
    if (!is_upperish(s, i)) return 0;
    return run(s, run(s, i, is_upperish), is_lowerish);
}

/* [^\r\n\p{L}\p{N}]?(core) where the core must start with a letter */
static size_t with_lead(const span *s, size_t pos, size_t (*core)(const span *, size_t)) {
    if (is_lead(s, pos)) return core(s, pos + 1);
    if (is_letter(s, pos)) return core(s, pos);
    return 0;
}

/*  ?[^\s\p{L}\p{N}]+ followed by [\r\n]* or, with slash, [\r\n/]*  (end, or 0) */
static size_t space_other(const span *s, size_t pos, bool slash) {
    size_t q = pos;
    if (C(s, q) == ' ' && is_other(s, q + 1)) q++;
    if (!is_other(s, q)) return 0;
    q = run(s, q, is_other);
    while (q < s->end && (is_rn(s->cp[q]) || (slash && s->cp[q] == '/')))
        q++;
    return q;
}

/* \s*[\r\n]+|\s+(?!\S)|\s+  (end, or 0) */
static size_t spaces(const span *s, size_t pos) {
    size_t w = run(s, pos, is_space);
    if (w == pos) return 0;
    for (size_t k = w; k > pos; k--)
        if (is_rn(s->cp[k - 1])) return k;
    if (w == s->end || w - pos == 1) return w;
    return w - 1;
}

/* qwen2: (?:'[sS]|...|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}|
 *         ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+ */
static size_t match_qwen2(const span *s, size_t pos) {
    size_t e;
    if ((e = contraction(s, pos))) return e;
    if ((e = lead_letters(s, pos))) return e - pos;
    if (is_number(s, pos)) return 1;
    if ((e = space_other(s, pos, false))) return e - pos;
    if ((e = spaces(s, pos))) return e - pos;
    return 0;
}

/* \p{N}{1,3} (0 if no number starts at pos) */
static size_t numbers_upto3(const span *s, size_t pos) {
    size_t n = 0;
    while (n < 3 && is_number(s, pos + n))
        n++;
    return n;
}

/* The case-aware word splitters (tekken, o200k) differ in their letter
 * classes (llama.cpp's approximation or tokenizer.json's exact ones), in a
 * contraction after the word (o200k) and in \p{N} vs \p{N}{1,3}. */
typedef struct cased_rules {
    size_t (*lead)(const span *, size_t, size_t (*)(const span *, size_t));
    size_t (*star_plus)(const span *, size_t), (*plus_star)(const span *, size_t);
    size_t (*contraction)(const span *, size_t); /* NULL: none after the word */
    bool numbers3;
} cased_rules;

/* [^\r\n\p{L}\p{N}]?U*L+(c)?|[^\r\n\p{L}\p{N}]?U+L*(c)?|\p{N}(or {1,3})|
 *  ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+ */
static size_t match_cased(const span *s, size_t pos, const cased_rules *r) {
    size_t e;
    if ((e = r->lead(s, pos, r->star_plus)) || (e = r->lead(s, pos, r->plus_star)))
        return e + (r->contraction ? r->contraction(s, e) : 0) - pos;
    if (is_number(s, pos)) return r->numbers3 ? numbers_upto3(s, pos) : 1;
    if ((e = space_other(s, pos, true))) return e - pos;
    if ((e = spaces(s, pos))) return e - pos;
    return 0;
}

/* tekken as llama.cpp splits it (U, L: its letter-case approximation) */
static size_t match_tekken(const span *s, size_t pos) {
    static const cased_rules r = {with_lead, upper_star_lower_plus, upper_plus_lower_star, NULL,
                                  false};
    return match_cased(s, pos, &r);
}

/* gpt-4o as llama.cpp splits it: tekken with a contraction after the words
 * and \p{N}{1,3} */
static size_t match_gpt4o(const span *s, size_t pos) {
    static const cased_rules r = {with_lead, upper_star_lower_plus, upper_plus_lower_star,
                                  contraction, true};
    return match_cased(s, pos, &r);
}

/* ---- tokenizer.json's regexes (Oniguruma semantics) -------------------------- */

/* Upper: [\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}], lower: [\p{Ll}\p{Lm}\p{Lo}\p{M}] */
static bool is_upper_hf(const span *s, size_t i) {
    if (i >= s->end) return false;
    if (s->fl[i] & SLIM_UC_MARK) return true;
    int c = (s->fl[i] & SLIM_UC_LETTER) ? slim_unicode_case_of(s->cp[i]) : 0;
    return c == SLIM_UC_CASE_UPPER || c == SLIM_UC_CASE_OTHER;
}
static bool is_lower_hf(const span *s, size_t i) {
    if (i >= s->end) return false;
    if (s->fl[i] & SLIM_UC_MARK) return true;
    int c = (s->fl[i] & SLIM_UC_LETTER) ? slim_unicode_case_of(s->cp[i]) : 0;
    return c == SLIM_UC_CASE_LOWER || c == SLIM_UC_CASE_OTHER;
}

/* Upper*Lower+ from i, backtracking as a regex engine does: end, or 0 */
static size_t upper_star_lower_plus_hf(const span *s, size_t i) {
    size_t u = run(s, i, is_upper_hf);
    if (is_lower_hf(s, u)) return run(s, u, is_lower_hf);
    for (size_t k = u; k > i; k--) /* give back until a lower one can start Lower+ */
        if (is_lower_hf(s, k - 1)) return k;
    return 0;
}

/* Upper+Lower* from i: end, or 0 */
static size_t upper_plus_lower_star_hf(const span *s, size_t i) {
    if (!is_upper_hf(s, i)) return 0;
    return run(s, run(s, i, is_upper_hf), is_lower_hf);
}

/* [^\r\n\p{L}\p{N}]?(core): with the optional character first, then without
 * (a mark is both that character and part of a word) */
static size_t with_lead_hf(const span *s, size_t pos, size_t (*core)(const span *, size_t)) {
    size_t e;
    if (is_lead(s, pos) && (e = core(s, pos + 1))) return e;
    return core(s, pos);
}

/* (?i:'s|'t|'re|'ve|'m|'ll|'d): Unicode simple case folding, so the long s
 * U+017F matches s and the Kelvin sign U+212A matches k */
static uint32_t fold(uint32_t c) {
    if (c == 0x17f) return 's';
    if (c == 0x212a) return 'k';
    return slim_unicode_tolower(c);
}
static size_t contraction_hf(const span *s, size_t pos) {
    if (C(s, pos) != '\'' || pos + 1 >= s->end) return 0;
    uint32_t a = fold(C(s, pos + 1)), b = pos + 2 < s->end ? fold(C(s, pos + 2)) : 0;
    if (a == 's' || a == 't' || a == 'm' || a == 'd') return 2;
    if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) return 3;
    return 0;
}

/* (?i:'s|...|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|
 * \s*[\r\n]+|\s+(?!\S)|\s+ */
static size_t match_llama3_re(const span *s, size_t pos) {
    size_t e;
    if ((e = contraction_hf(s, pos))) return e;
    if ((e = lead_letters(s, pos))) return e - pos;
    if ((e = numbers_upto3(s, pos))) return e;
    if ((e = space_other(s, pos, false))) return e - pos;
    if ((e = spaces(s, pos))) return e - pos;
    return 0;
}

/* tekken: [^\r\n\p{L}\p{N}]?Upper*Lower+|[^\r\n\p{L}\p{N}]?Upper+Lower*|\p{N}|
 *          ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+ */
static size_t match_tekken_hf(const span *s, size_t pos) {
    static const cased_rules r = {with_lead_hf, upper_star_lower_plus_hf, upper_plus_lower_star_hf,
                                  NULL, false};
    return match_cased(s, pos, &r);
}

/* o200k: as tekken with (?i:'s|...)? after the words, and \p{N}{1,3} */
static size_t match_gpt4o_hf(const span *s, size_t pos) {
    static const cased_rules r = {with_lead_hf, upper_star_lower_plus_hf, upper_plus_lower_star_hf,
                                  contraction_hf, true};
    return match_cased(s, pos, &r);
}

/* \p{N} */
static size_t match_number(const span *s, size_t pos) { return is_number(s, pos); }

/* \p{N}+ */
static size_t match_numbers(const span *s, size_t pos) { return run(s, pos, is_number) - pos; }

/* [\p{P}\$\+<=>\^~\|]+ */
static bool is_punct_default(const span *s, size_t i) {
    if (i >= s->end) return false;
    uint32_t c = s->cp[i];
    return (s->fl[i] & SLIM_UC_PUNCT) || (c < 0x80 && c && strchr("$+<=>^~|", (int)c));
}
static size_t match_punct_default(const span *s, size_t pos) {
    return run(s, pos, is_punct_default) - pos;
}

/* [0-9][0-9][0-9] */
static size_t match_digits3(const span *s, size_t pos) {
    for (size_t k = 0; k < 3; k++)
        if (C(s, pos + k) < '0' || C(s, pos + k) > '9') return 0;
    return 3;
}

typedef size_t (*matcher)(const span *, size_t);

/* One regex pass over [ini, end): matches and the gaps between them. */
static void split_regex(const span *s, size_t ini, matcher m, out *o) {
    size_t gap = ini;
    for (size_t pos = ini; pos < s->end;) {
        size_t len = m(s, pos);
        if (len == 0) {
            pos++;
            continue;
        }
        emit(o, pos - gap);
        emit(o, len);
        pos += len;
        gap = pos;
    }
    emit(o, s->end - gap);
}

/* ---- passes ----------------------------------------------------------------- */

enum { PASS_GPT2 = 1, PASS_LLAMA3 };
typedef struct pass {
    int custom; /* PASS_*, or 0 for a regex */
    matcher m;
} pass;

static const pass PASSES[][4] = {
    [SLIM_PRE_DEFAULT] = {{0, match_punct_default},
                          {PASS_GPT2, NULL},
                          {0, match_numbers},
                          {0, match_digits3}},
    [SLIM_PRE_GPT2] = {{PASS_GPT2, NULL}},
    [SLIM_PRE_SMOLLM] = {{0, match_number}, {PASS_GPT2, NULL}},
    [SLIM_PRE_LLAMA3] = {{PASS_LLAMA3, NULL}},
    [SLIM_PRE_QWEN2] = {{0, match_qwen2}},
    [SLIM_PRE_TEKKEN] = {{0, match_tekken}},
    [SLIM_PRE_GPT4O] = {{0, match_gpt4o}},
    [SLIM_PRE_LLAMA3_RE] = {{0, match_llama3_re}},
    [SLIM_PRE_TEKKEN_HF] = {{0, match_tekken_hf}},
    [SLIM_PRE_GPT4O_HF] = {{0, match_gpt4o_hf}},
};

slim_status slim_pretok_split(slim_pretok *pt, int kind, const char *text, size_t len) {
    const uint8_t *t = (const uint8_t *)text;
    pt->n_cp = pt->n_piece = 0;
    size_t cap_cp = pt->cap_cp;
    if (!slim_grow((void **)&pt->cp, &cap_cp, len + 1, sizeof *pt->cp) ||
        !slim_grow((void **)&pt->fl, &pt->cap_cp, len + 1, sizeof *pt->fl))
        return slim_error(SLIM_ERR_NOMEM, "slim_tokenize: out of memory");
    for (size_t i = 0; i < len;) {
        size_t used;
        uint32_t c = slim_utf8_decode(t + i, len - i, &used);
        pt->cp[pt->n_cp] = c;
        pt->fl[pt->n_cp++] = slim_unicode_flags(c);
        i += used;
    }
    out a = {pt->piece, 0, pt->cap_piece, false}, b = {pt->piece2, 0, pt->cap_piece2, false};
    emit(&a, pt->n_cp);
    for (int k = 0; k < 4 && !a.oom; k++) {
        const pass *ps = &PASSES[kind][k];
        if (!ps->custom && !ps->m) break;
        b.n = 0;
        size_t start = 0;
        for (size_t i = 0; i < a.n && !b.oom; i++) {
            span s = {pt->cp, pt->fl, start + a.p[i]};
            if (ps->custom == PASS_GPT2)
                split_gpt2(&s, start, &b);
            else if (ps->custom == PASS_LLAMA3)
                split_llama3(&s, start, &b);
            else
                split_regex(&s, start, ps->m, &b);
            start += a.p[i];
        }
        out tmp = a;
        a = b;
        b = tmp;
        a.oom |= b.oom;
    }
    pt->piece = a.p;
    pt->cap_piece = a.cap;
    pt->n_piece = a.n;
    pt->piece2 = b.p;
    pt->cap_piece2 = b.cap;
    if (a.oom) return slim_error(SLIM_ERR_NOMEM, "slim_tokenize: out of memory");
    return SLIM_OK;
}

void slim_pretok_free(slim_pretok *pt) {
    free(pt->cp);
    free(pt->fl);
    free(pt->piece);
    free(pt->piece2);
    memset(pt, 0, sizeof *pt);
}
