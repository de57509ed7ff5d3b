/* The JSON building blocks (any value, strings, numbers, containers) over the
 * grammar builder: below compile.c, regex.c and schema.c, which all use them. */
#include "constrain/jsongram.h"

#include <string.h>

static int32_t rule_of(slim_cgb *b, int32_t e) {
    int32_t r = slim_cgb_rule_new(b, NULL, 0);
    slim_cgb_rule_set(b, r, e);
    return slim_cgb_ref(b, r);
}

void slim_cjson_init(slim_cgb *b, slim_cjson *j, bool ws) {
    memset(j, 0, sizeof *j);
    j->b = b;
    j->wsp = ws;
    uint32_t sp[] = {'\t', '\n', '\r', '\r', ' ', ' '};
    j->ws = ws ? slim_cgb_rep(b, slim_cgb_cps(b, sp, 3), 0, SLIM_CREP_INF) : slim_cgb_empty(b);
    /* one JSON string character, any code point */
    uint32_t raw[] = {0x20, 0x21, 0x23, 0x5B, 0x5D, 0x10FFFF};
    uint32_t esc[] = {'"', '"', '/', '/', '\\', '\\', 'b', 'b',
                      'f', 'f', 'n', 'n', 'r',  'r',  't', 't'};
    uint32_t hex[] = {'0', '9', 'A', 'F', 'a', 'f'};
    int32_t h = slim_cgb_cps(b, hex, 3);
    size_t base = b->nstk;
    slim_cgb_push(b, slim_cgb_lit(b, "u", 1));
    for (int i = 0; i < 4; i++)
        slim_cgb_push(b, h);
    int32_t u = slim_cgb_seq(b, base);
    int32_t escaped =
        slim_cgb_seq2(b, slim_cgb_lit(b, "\\", 1), slim_cgb_alt2(b, slim_cgb_cps(b, esc, 8), u));
    j->chr = rule_of(b, slim_cgb_alt2(b, slim_cgb_cps(b, raw, 3), escaped));
    j->hex4 = u;
    base = b->nstk;
    slim_cgb_push(b, slim_cgb_lit(b, "\"", 1));
    slim_cgb_push(b, slim_cgb_rep(b, j->chr, 0, SLIM_CREP_INF));
    slim_cgb_push(b, slim_cgb_lit(b, "\"", 1));
    j->string = rule_of(b, slim_cgb_seq(b, base));
    /* numbers */
    int32_t digit = slim_cgb_range(b, '0', '9');
    int32_t digits = slim_cgb_rep(b, digit, 1, SLIM_CREP_INF);
    int32_t intpart = slim_cgb_alt2(
        b, slim_cgb_lit(b, "0", 1),
        slim_cgb_seq2(b, slim_cgb_range(b, '1', '9'), slim_cgb_rep(b, digit, 0, SLIM_CREP_INF)));
    j->uint = rule_of(b, intpart);
    int32_t minus = slim_cgb_rep(b, slim_cgb_lit(b, "-", 1), 0, 1);
    j->integer = rule_of(b, slim_cgb_seq2(b, minus, j->uint));
    int32_t frac = slim_cgb_rep(b, slim_cgb_seq2(b, slim_cgb_lit(b, ".", 1), digits), 0, 1);
    uint32_t eE[] = {'E', 'E', 'e', 'e'}, pm[] = {'+', '+', '-', '-'};
    base = b->nstk;
    slim_cgb_push(b, slim_cgb_cps(b, eE, 2));
    slim_cgb_push(b, slim_cgb_rep(b, slim_cgb_cps(b, pm, 2), 0, 1));
    slim_cgb_push(b, digits);
    int32_t expo = slim_cgb_rep(b, slim_cgb_seq(b, base), 0, 1);
    base = b->nstk;
    slim_cgb_push(b, j->integer);
    slim_cgb_push(b, frac);
    slim_cgb_push(b, expo);
    j->number = rule_of(b, slim_cgb_seq(b, base));
    j->boolean =
        rule_of(b, slim_cgb_alt2(b, slim_cgb_lit(b, "true", 4), slim_cgb_lit(b, "false", 5)));
    j->null = slim_cgb_lit(b, "null", 4);
    j->value = -1;
}

/* open ws (item ws ("," ws item ws)*)? close */
int32_t slim_cjson_container(slim_cjson *j, const char *open, const char *close, int32_t item) {
    slim_cgb *b = j->b;
    size_t base = b->nstk;
    slim_cgb_push(b, slim_cgb_lit(b, ",", 1));
    slim_cgb_push(b, j->ws);
    slim_cgb_push(b, item);
    slim_cgb_push(b, j->ws);
    int32_t more = slim_cgb_rep(b, slim_cgb_seq(b, base), 0, SLIM_CREP_INF);
    base = b->nstk;
    slim_cgb_push(b, item);
    slim_cgb_push(b, j->ws);
    slim_cgb_push(b, more);
    int32_t some = slim_cgb_rep(b, slim_cgb_seq(b, base), 0, 1);
    base = b->nstk;
    slim_cgb_push(b, slim_cgb_lit(b, open, 1));
    slim_cgb_push(b, j->ws);
    slim_cgb_push(b, some);
    slim_cgb_push(b, slim_cgb_lit(b, close, 1));
    return slim_cgb_seq(b, base);
}

int32_t slim_cjson_value(slim_cjson *j) {
    slim_cgb *b = j->b;
    if (j->value >= 0) return j->value;
    int32_t r = slim_cgb_rule_new(b, NULL, 0);
    j->value = slim_cgb_ref(b, r);
    size_t base = b->nstk;
    slim_cgb_push(b, j->string);
    slim_cgb_push(b, j->ws);
    slim_cgb_push(b, slim_cgb_lit(b, ":", 1));
    slim_cgb_push(b, j->ws);
    slim_cgb_push(b, j->value);
    int32_t member = slim_cgb_seq(b, base);
    base = b->nstk;
    slim_cgb_push(b, slim_cjson_container(j, "{", "}", member));
    slim_cgb_push(b, slim_cjson_container(j, "[", "]", j->value));
    slim_cgb_push(b, j->string);
    slim_cgb_push(b, j->number);
    slim_cgb_push(b, j->boolean);
    slim_cgb_push(b, j->null);
    slim_cgb_rule_set(b, r, slim_cgb_alt(b, base));
    return j->value;
}
