/* slim_constrain_compile: the front ends (GBNF, regex, JSON Schema, choices,
 * JSON object) to one compiled grammar. */
#include "constrain/constrain.h"
#include "constrain/jsongram.h"

static slim_status choices(slim_cgb *b, const char *text, size_t len, int32_t *root) {
    size_t base = b->nstk;
    size_t s = 0;
    for (size_t i = 0; i <= len; i++)
        if (i == len || text[i] == 0) {
            slim_cgb_push(b, slim_cgb_lit(b, text + s, i - s));
            s = i + 1;
        }
    *root = slim_cgb_rule_new(b, "root", 4);
    slim_cgb_rule_set(b, *root, slim_cgb_alt(b, base));
    return SLIM_OK;
}

slim_status slim_constrain_compile(slim_constraint_kind kind, const char *text, size_t len,
                                   const slim_constraint_opts *opts, slim_cgrammar **out) {
    *out = NULL;
    if (!text && len) return slim_error(SLIM_ERR_INVALID_ARG, "constraint: NULL text");
    slim_constraint_opts o = {0};
    if (opts) o = *opts;
    slim_cgb b;
    slim_cgb_init(&b);
    int32_t root = -1;
    slim_status st = SLIM_OK;
    switch (kind) {
    case SLIM_CONSTRAINT_GBNF: st = slim_gbnf_build(&b, text, len, &root); break;
    case SLIM_CONSTRAINT_REGEX: {
        int32_t e = -1;
        st = slim_regex_build(&b, text, len, false, false, &e);
        if (st == SLIM_OK) {
            root = slim_cgb_rule_new(&b, "root", 4);
            slim_cgb_rule_set(&b, root, e);
        }
        break;
    }
    case SLIM_CONSTRAINT_JSON_SCHEMA: st = slim_schema_build(&b, text, len, &o, &root); break;
    case SLIM_CONSTRAINT_CHOICES: st = choices(&b, text, len, &root); break;
    case SLIM_CONSTRAINT_JSON_OBJECT: {
        slim_cjson j;
        slim_cjson_init(&b, &j, o.json_whitespace);
        /* an object whose members are any JSON ("JSON mode") */
        int32_t value = slim_cjson_value(&j);
        size_t base = b.nstk;
        slim_cgb_push(&b, j.string);
        slim_cgb_push(&b, j.ws);
        slim_cgb_push(&b, slim_cgb_lit(&b, ":", 1));
        slim_cgb_push(&b, j.ws);
        slim_cgb_push(&b, value);
        int32_t member = slim_cgb_seq(&b, base);
        root = slim_cgb_rule_new(&b, "root", 4);
        slim_cgb_rule_set(&b, root, slim_cjson_container(&j, "{", "}", member));
        break;
    }
    default: st = slim_error(SLIM_ERR_INVALID_ARG, "constraint: unknown kind %d", (int)kind);
    }
    if (st == SLIM_OK) st = slim_cgb_compile(&b, root, out);
    slim_cgb_free(&b);
    return st;
}
