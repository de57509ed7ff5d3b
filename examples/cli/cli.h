/* Shared helpers of the slim CLI's subcommands.
 *
 * Exit statuses, for every subcommand: 0 done, 1 an error (the library's, a
 * file's, or writing standard output), 2 a usage error; `slim run` adds 3
 * (the context filled before -n tokens) and 130 (stopped by Ctrl-C). */
#ifndef SLIM_CLI_H
#define SLIM_CLI_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include "slim.h"

/* Print "slim: WHAT: status: message" to stderr; returns 1. */
int cli_fail(const char *what, slim_status st);

/* ---- option parsing (opts.c) ----------------------------------------------
 * while ((k = cli_next(&o, &a)) == CLI_OPTION || k == CLI_OPERAND) {
 *     if (k == CLI_OPERAND) ...;
 *     else if (cli_is(&o, "-n", "--n-predict")) { if (!cli_int(&o, 0, 100, &n)) return 2; }
 *     else return cli_unknown(&o);
 * }
 * if (k == CLI_ERR) return 2;
 * The value functions report a missing or bad value and return 0. */
enum { CLI_ERR = -1, CLI_END = 0, CLI_OPTION = 1, CLI_OPERAND = 2 };
typedef struct cli_opts {
    const char *cmd; /* "run": messages start "slim run: " */
    int argc;
    char **argv;
    int i;             /* index of the current argument */
    int operands_only; /* after "--" */
    const char *opt;   /* the current option's name */
    const char *inl;   /* its value from --name=value, until taken */
    char name[64];
} cli_opts;

cli_opts cli_opts_init(const char *cmd, int argc, char **argv);
/* The next argument in *arg: CLI_OPTION, CLI_OPERAND, CLI_END or CLI_ERR. */
int cli_next(cli_opts *o, const char **arg);
/* Is the current option short_name or long_name (either may be NULL)? */
int cli_is(const cli_opts *o, const char *short_name, const char *long_name);
const char *cli_value(cli_opts *o); /* the option's value, or NULL (reported) */
int cli_int(cli_opts *o, long long lo, long long hi, long long *out);
int cli_u64(cli_opts *o, uint64_t *out);
int cli_double(cli_opts *o, double lo, double hi, double *out);
/* The value's index in the NULL-terminated choices. */
int cli_choice(cli_opts *o, const char *const *choices, int *out);
/* "slim CMD: " + the message on stderr; return 2. */
int cli_usage_error(const cli_opts *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int cli_unknown(const cli_opts *o);                /* the current option is unknown: 2 */
int cli_extra(const cli_opts *o, const char *arg); /* an operand too many: 2 */

/* load.c: the CPU time other processes took during a measurement. */
typedef struct cli_load {
    unsigned long long busy; /* all CPUs' busy jiffies at the start */
    double wall_s, self_s;   /* the clock and this process's CPU seconds at the start */
    int ok;                  /* /proc/stat was read */
} cli_load;
void cli_load_start(cli_load *l);
/* CPUs' worth of time other processes kept busy since start (on average), or -1 if unknown;
 * *n_cpus: the CPUs online. */
double cli_load_others(const cli_load *start, int *n_cpus);
/* The same, with a warning line on stderr (prefixed by who) when that was 10% of the machine or
 * more. */
double cli_load_warn(const cli_load *start, const char *who, int *n_cpus);
/* bench_parallel.c: `slim bench --parallel` (the batched engine) when argv has --parallel */
int cli_bench_is_parallel(int argc, char **argv);
int cli_bench_parallel(int argc, char **argv);
/* The model, context and sampler options that `slim chat` shares with `slim
 * run` (-t, -c, --temp, ..., --no-mmap): 1 if the current option is one of
 * them (its value taken), 0 if not, -1 on a bad value (reported). */
int cli_model_opt(cli_opts *o, slim_sampler_params *sp, slim_context_params *cp,
                  slim_model_params *mp);

/* The older forms (still here for code that uses them): a number in [lo, hi]
 * for option opt; the model options at argv index *i, a its name and v the
 * next argument (or NULL). */
int cli_parse_num(const char *opt, const char *s, double lo, double hi, double *out);
int cli_parse_model_opt(const char *a, const char *v, int *i, slim_sampler_params *sp,
                        slim_context_params *cp, slim_model_params *mp);

/* ---- input and output (io.c) ----------------------------------------------- */
/* Set by the SIGINT handler that cli_on_sigint installs. */
extern volatile sig_atomic_t cli_sigint;
/* Catch Ctrl-C into cli_sigint (without SA_RESTART, so that a blocked read
 * returns).  once: the first one only; a second Ctrl-C then kills as usual. */
void cli_on_sigint(int once);
/* Flush stdout; on a write error report it once and return 1, else 0. */
int cli_check_stdout(void);
/* Byte offset of the first invalid UTF-8 sequence in s[0..n), or -1. */
long long cli_utf8_invalid(const char *s, size_t n);
/* Read a whole file ("-": stdin) into a NUL-terminated malloc'd buffer;
 * reports and returns NULL on failure. */
char *cli_read_file(const char *cmd, const char *path, size_t *len);

/* Lines of user input: through libedit (line editing, history) on a terminal
 * when the CLI is built with it, else getline; the prompt goes to stderr, on
 * a terminal only. */
enum { CLI_LINE_EOF = 0, CLI_LINE = 1, CLI_LINE_INTR = 2, CLI_LINE_ERR = -1 };
typedef struct cli_reader cli_reader;
cli_reader *cli_reader_open(const char *prompt);
/* CLI_LINE with the line (no line ending) in *line, valid until the next
 * call; CLI_LINE_EOF at the end of input (ctrl-D); CLI_LINE_INTR on Ctrl-C. */
int cli_reader_get(cli_reader *r, const char **line, size_t *len);
void cli_reader_close(cli_reader *r);
/* "libedit" or "none": what slim chat edits lines with. */
const char *cli_line_editor(void);

/* constraint.c: --json-schema FILE, --grammar FILE, --regex RE, --choices a,b,c,
 * --json, --json-whitespace.  cli_constraint_opt: 1 if the current option is
 * one of them, 0 if not, -1 on a usage error (reported).  attach: compile for
 * the model and attach to the sampler (nothing when none was given); 0, or an
 * exit status (reported). */
typedef struct cli_constraint {
    int kind; /* a slim_constraint_kind, or -1: none */
    const char *opt, *arg;
    int json_whitespace;
} cli_constraint;
#define CLI_CONSTRAINT_NONE ((cli_constraint){.kind = -1})
int cli_constraint_opt(cli_opts *o, cli_constraint *c);
int cli_constraint_attach(const char *cmd, const cli_constraint *c, slim_model *model,
                          slim_sampler *sampler);
int cli_classify(int argc, char **argv); /* classify.c: `slim classify` */

int cli_bench(int argc, char **argv);
/* bench.c: a monotonic clock in seconds; qsort's comparator for doubles. */
double cli_now_s(void);
int cli_cmp_double(const void *a, const void *b);
int cli_chat(int argc, char **argv);    /* chat.c: `slim chat` */
int cli_convert(int argc, char **argv); /* convert.c: `slim convert` */
int cli_eval(int argc, char **argv);    /* eval.c: `slim eval` */

#endif
