/* The constraint options of `slim run` (and any subcommand that generates):
 * --json-schema FILE, --grammar FILE, --regex RE, --choices a,b,c, --json,
 * --json-whitespace.  The constraint is compiled for the loaded model and
 * attached to the sampler; compile errors name the line:column (GBNF), the
 * regex offset or the schema's JSON pointer. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

int cli_constraint_opt(cli_opts *o, cli_constraint *c) {
    const char *v;
    int kind = -1;
    if (cli_is(o, NULL, "--json-schema"))
        kind = SLIM_CONSTRAINT_JSON_SCHEMA;
    else if (cli_is(o, NULL, "--grammar"))
        kind = SLIM_CONSTRAINT_GBNF;
    else if (cli_is(o, NULL, "--regex"))
        kind = SLIM_CONSTRAINT_REGEX;
    else if (cli_is(o, NULL, "--choices"))
        kind = SLIM_CONSTRAINT_CHOICES;
    else if (cli_is(o, NULL, "--json"))
        kind = SLIM_CONSTRAINT_JSON_OBJECT;
    else if (cli_is(o, NULL, "--json-whitespace")) {
        c->json_whitespace = 1;
        return 1;
    } else
        return 0;
    if (c->kind >= 0) {
        cli_usage_error(o, "%s: only one of --json-schema, --grammar, --regex, --choices, --json",
                        o->opt);
        return -1;
    }
    c->kind = kind;
    c->opt = o->opt;
    if (kind == SLIM_CONSTRAINT_JSON_OBJECT) return 1;
    if (!(v = cli_value(o))) return -1;
    c->arg = v;
    return 1;
}

int cli_constraint_attach(const char *cmd, const cli_constraint *c, slim_model *model,
                          slim_sampler *sampler) {
    if (c->kind < 0) return 0;
    char *text = NULL;
    size_t len = 0;
    if (c->kind == SLIM_CONSTRAINT_JSON_SCHEMA || c->kind == SLIM_CONSTRAINT_GBNF) {
        if (!(text = cli_read_file(cmd, c->arg, &len))) return 1;
    } else if (c->kind == SLIM_CONSTRAINT_CHOICES) { /* a,b,c: NUL-separated */
        len = strlen(c->arg);
        if (!len) {
            fprintf(stderr, "slim %s: --choices: no choices\n", cmd);
            return 2;
        }
        if (!(text = strdup(c->arg))) return cli_fail("constraint", SLIM_ERR_NOMEM);
        for (size_t i = 0; i < len; i++)
            if (text[i] == ',') text[i] = '\0';
    } else if (c->arg) {
        len = strlen(c->arg);
    }
    slim_constraint_params p = slim_constraint_default_params();
    p.json_whitespace = c->json_whitespace;
    slim_constraint *con = NULL;
    slim_status st = slim_constraint_compile(model, (slim_constraint_kind)c->kind,
                                             text ? text : c->arg, len, &p, &con);
    free(text);
    if (st) {
        fprintf(stderr, "slim %s: %s %s: %s: %s\n", cmd, c->opt, c->arg ? c->arg : "",
                slim_status_string(st), slim_last_error());
        return 1;
    }
    st = slim_sampler_set_constraint(sampler, con);
    slim_constraint_free(con);
    return st ? cli_fail("constraint", st) : 0;
}
