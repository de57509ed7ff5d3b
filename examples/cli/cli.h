/* Shared helpers of the slim CLI's subcommands. */
#ifndef SLIM_CLI_H
#define SLIM_CLI_H

#include "slim.h"

/* Print "slim: WHAT: status: message" to stderr; returns 1. */
int cli_fail(const char *what, slim_status st);
/* Parse a number in [lo, hi] for option opt, or print why not; returns 1 if ok. */
int cli_parse_num(const char *opt, const char *s, double lo, double hi, double *out);
int cli_bench(int argc, char **argv);

#endif
