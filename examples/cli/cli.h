/* Shared helpers of the slim CLI's subcommands. */
#ifndef SLIM_CLI_H
#define SLIM_CLI_H

#include "slim.h"

/* Print "slim: WHAT: status: message" to stderr; returns 1. */
int cli_fail(const char *what, slim_status st);
/* Parse a number in [lo, hi] for option opt, or print why not; returns 1 if ok. */
int cli_parse_num(const char *opt, const char *s, double lo, double hi, double *out);
int cli_bench(int argc, char **argv);
/* bench_parallel.c: `slim bench --parallel` (the batched engine) when argv has --parallel */
int cli_bench_is_parallel(int argc, char **argv);
int cli_bench_parallel(int argc, char **argv);
int cli_chat(int argc, char **argv);    /* chat.c: `slim chat` */
int cli_convert(int argc, char **argv); /* convert.c: `slim convert` */
/* The model, context and sampler options that `slim chat` shares with `slim
 * run` (-t, -c, --temp, ..., --no-mmap): a (value v, may be NULL) at argv
 * index *i.  Returns 1 if handled (*i advanced past a value), 0 if a is not
 * one of them, -1 on a bad value (reported). */
int cli_parse_model_opt(const char *a, const char *v, int *i, slim_sampler_params *sp,
                        slim_context_params *cp, slim_model_params *mp);

#endif
