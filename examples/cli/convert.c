/* `slim convert`: write a loaded model as a GGUF file llama.cpp loads, with
 * the weight matrices in another type; a progress bar on a terminal. */
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

static const char convert_usage[] =
    "usage: slim convert SRC OUT.gguf [--type T]\n"
    "  Write the model SRC (anything `slim run -m` loads) as a GGUF file.\n"
    "  --type T   weight matrices as keep (default: as in SRC), f32, f16, bf16,\n"
    "             q8_0, q4_0, q4_1, q5_0, q5_1, q4_k, q5_k or q6_k; norms and biases\n"
    "             stay f32; a matrix whose rows the type's block does not divide\n"
    "             falls back as llama-quantize does (q4_k -> q5_0, q5_k -> q5_1,\n"
    "             q6_k -> q8_0, otherwise f16)\n";

typedef struct bar {
    int last; /* last width drawn, -1 before any */
} bar;

/* A 40-column bar on stderr, redrawn only when it grows. */
static void on_progress(float fraction, void *user) {
    bar *b = user;
    int cols = (int)(fraction * 40.0f + 0.5f), pct = (int)(fraction * 100.0f + 0.5f);
    if (cols == b->last && fraction < 1.0f) return;
    b->last = cols;
    char line[41];
    memset(line, '#', (size_t)cols);
    memset(line + cols, '.', (size_t)(40 - cols));
    line[40] = '\0';
    fprintf(stderr, "\r[%s] %3d%%", line, pct);
    if (fraction >= 1.0f) fputc('\n', stderr);
    fflush(stderr);
}

int cli_convert(int argc, char **argv) {
    const char *src = NULL, *out = NULL, *type = NULL;
    cli_opts o = cli_opts_init("convert", argc, argv);
    const char *a;
    int k;
    while ((k = cli_next(&o, &a)) == CLI_OPTION || k == CLI_OPERAND) {
        if (k == CLI_OPERAND) {
            if (src && out) return cli_extra(&o, a);
            *(src ? &out : &src) = a;
        } else if (cli_is(&o, "-h", "--help")) {
            fputs(convert_usage, stdout);
            return 0;
        } else if (cli_is(&o, "-t", "--type")) {
            if (!(type = cli_value(&o))) return 2; /* checked by slim_model_save_gguf */
        } else {
            return cli_unknown(&o);
        }
    }
    if (k == CLI_ERR) return 2;
    if (!src || !out) {
        fprintf(stderr, "slim convert: SRC and OUT are required\n%s", convert_usage);
        return 2;
    }
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    slim_model *model = NULL;
    slim_status st = slim_model_load(src, NULL, &model);
    if (st) return cli_fail("load", st);
    bar b = {-1};
    const int tty = isatty(STDERR_FILENO);
    st = slim_model_save_gguf(model, out, type, tty ? on_progress : NULL, &b);
    if (tty && b.last >= 0 && b.last < 40) fputc('\n', stderr); /* a bar cut short */
    slim_model_free(model);
    if (st) return cli_fail("convert", st);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    fprintf(stderr, "wrote %s (%s) in %.1f s\n", out, type ? type : "keep",
            (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
    return 0;
}
