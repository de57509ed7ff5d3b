/* The option parsing every `slim` subcommand shares: one loop over argv that
 * tells options from operands ("--" ends the options, "-" is an operand),
 * splits --name=value, and parses values with messages that name the option
 * and what it accepts ("option -r: 0 is not in 1..1000").  Every message goes
 * to stderr as "slim CMD: ..."; the caller then exits with status 2. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

cli_opts cli_opts_init(const char *cmd, int argc, char **argv) {
    return (cli_opts){.cmd = cmd, .argc = argc, .argv = argv, .i = -1};
}

int cli_usage_error(const cli_opts *o, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "slim%s%s: ", o->cmd[0] ? " " : "", o->cmd);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return 2;
}

int cli_next(cli_opts *o, const char **arg) {
    if (o->inl) { /* the last option was a flag, but came as --flag=value */
        cli_usage_error(o, "option %s takes no value", o->opt);
        return CLI_ERR;
    }
    if (++o->i >= o->argc) return CLI_END;
    const char *a = o->argv[o->i];
    if (!o->operands_only && !strcmp(a, "--")) {
        o->operands_only = 1;
        if (++o->i >= o->argc) return CLI_END;
        a = o->argv[o->i];
    }
    *arg = a;
    if (o->operands_only || a[0] != '-' || !a[1]) return CLI_OPERAND;
    o->opt = a;
    const char *eq = a[1] == '-' ? strchr(a, '=') : NULL;
    if (eq) { /* --name=value: the name alone is the option */
        size_t n = (size_t)(eq - a);
        if (n >= sizeof o->name) n = sizeof o->name - 1;
        memcpy(o->name, a, n);
        o->name[n] = '\0';
        o->opt = o->name;
        o->inl = eq + 1;
    }
    *arg = o->opt;
    return CLI_OPTION;
}

int cli_is(const cli_opts *o, const char *short_name, const char *long_name) {
    return (short_name && !strcmp(o->opt, short_name)) || (long_name && !strcmp(o->opt, long_name));
}

const char *cli_value(cli_opts *o) {
    if (o->inl) {
        const char *v = o->inl;
        o->inl = NULL;
        return v;
    }
    if (o->i + 1 >= o->argc) {
        cli_usage_error(o, "option %s needs a value", o->opt);
        return NULL;
    }
    return o->argv[++o->i];
}

/* A decimal integer: optional sign, digits, nothing else. */
static int parse_ll(const char *s, long long *out, int *range) {
    char *end;
    errno = 0;
    *range = 0;
    if (!*s || (*s != '-' && *s != '+' && (*s < '0' || *s > '9'))) return 0;
    long long v = strtoll(s, &end, 10);
    if (end == s || *end) return 0;
    *range = errno == ERANGE;
    *out = v;
    return 1;
}

int cli_int(cli_opts *o, long long lo, long long hi, long long *out) {
    const char *v = cli_value(o);
    if (!v) return 0;
    long long x = 0;
    int range = 0;
    if (!parse_ll(v, &x, &range)) {
        cli_usage_error(o, "option %s: '%s' is not an integer (%lld..%lld)", o->opt, v, lo, hi);
        return 0;
    }
    if (range || x < lo || x > hi) {
        cli_usage_error(o, "option %s: %s is not in %lld..%lld", o->opt, v, lo, hi);
        return 0;
    }
    *out = x;
    return 1;
}

int cli_u64(cli_opts *o, uint64_t *out) {
    const char *v = cli_value(o);
    if (!v) return 0;
    char *end;
    errno = 0;
    unsigned long long x = v[0] >= '0' && v[0] <= '9' ? strtoull(v, &end, 10) : 0;
    if (v[0] < '0' || v[0] > '9' || *end || errno == ERANGE) {
        cli_usage_error(o, "option %s: '%s' is not an integer in 0..%llu", o->opt, v,
                        (unsigned long long)UINT64_MAX);
        return 0;
    }
    *out = (uint64_t)x;
    return 1;
}

int cli_double(cli_opts *o, double lo, double hi, double *out) {
    const char *v = cli_value(o);
    if (!v) return 0;
    char *end;
    errno = 0;
    double x = strtod(v, &end);
    if (end == v || *end) {
        cli_usage_error(o, "option %s: '%s' is not a number (%g..%g)", o->opt, v, lo, hi);
        return 0;
    }
    if (errno == ERANGE || !(x >= lo && x <= hi)) { /* NaN fails too */
        cli_usage_error(o, "option %s: %s is not in %g..%g", o->opt, v, lo, hi);
        return 0;
    }
    *out = x;
    return 1;
}

int cli_choice(cli_opts *o, const char *const *choices, int *out) {
    const char *v = cli_value(o);
    if (!v) return 0;
    for (int k = 0; choices[k]; k++)
        if (!strcmp(v, choices[k])) {
            *out = k;
            return 1;
        }
    char list[256];
    size_t n = 0;
    for (int k = 0; choices[k] && n < sizeof list; k++)
        n += (size_t)snprintf(list + n, sizeof list - n, "%s%s", k ? ", " : "", choices[k]);
    cli_usage_error(o, "option %s: '%s' is not one of %s", o->opt, v, list);
    return 0;
}

int cli_unknown(const cli_opts *o) {
    return cli_usage_error(o, "unknown option '%s' (slim %s --help lists them)", o->argv[o->i],
                           o->cmd);
}

int cli_extra(const cli_opts *o, const char *arg) {
    return cli_usage_error(o, "unexpected argument '%s'", arg);
}

/* ---- the older one-call forms, for code written against them ------------- */

int cli_parse_num(const char *opt, const char *s, double lo, double hi, double *out) {
    char *argv[2] = {(char *)opt, (char *)s};
    cli_opts o = cli_opts_init("", s ? 2 : 1, argv);
    o.i = 0, o.opt = opt;
    char *end;
    errno = 0;
    const double v = s ? strtod(s, &end) : 0;
    if (s && !errno && end != s && !*end && v >= lo && v <= hi) {
        *out = v;
        return 1;
    }
    return cli_double(&o, lo, hi, out); /* reports it: "option -r: 0 is not in 1..1000" */
}

int cli_parse_model_opt(const char *a, const char *v, int *i, slim_sampler_params *sp,
                        slim_context_params *cp, slim_model_params *mp) {
    char *argv[2] = {(char *)a, (char *)v};
    cli_opts o = cli_opts_init("", v ? 2 : 1, argv);
    const char *arg;
    if (cli_next(&o, &arg) != CLI_OPTION) return 0;
    const int r = cli_model_opt(&o, sp, cp, mp);
    if (r > 0) *i += o.i;
    return r;
}
