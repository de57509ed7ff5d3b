/* The CLI's input and output: Ctrl-C, write errors on stdout, UTF-8
 * checking, prompt files, and the chat's line reader (libedit where the build
 * found it: `make` defines SLIM_CLI_LIBEDIT when pkg-config knows libedit). */
#include <errno.h>
#include <locale.h>
#include <langinfo.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <wchar.h>

#ifdef SLIM_CLI_LIBEDIT
#include <histedit.h>
#endif

#include "cli.h"

volatile sig_atomic_t cli_sigint;

static void on_sigint(int sig) {
    (void)sig;
    cli_sigint = 1;
}

void cli_on_sigint(int once) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigint;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = once ? SA_RESETHAND : 0; /* no SA_RESTART: a read returns EINTR */
    sigaction(SIGINT, &sa, NULL);
}

int cli_check_stdout(void) {
    static int reported;
    if (fflush(stdout) == 0 && !ferror(stdout)) return 0;
    if (!reported) {
        const int e = errno;
        fprintf(stderr, "slim: error writing standard output: %s\n",
                e ? strerror(e) : "write failed");
        reported = 1;
    }
    return 1;
}

long long cli_utf8_invalid(const char *s, size_t n) {
    const unsigned char *p = (const unsigned char *)s;
    for (size_t i = 0; i < n;) {
        const unsigned c = p[i];
        size_t len;
        unsigned min, cp;
        if (c < 0x80) {
            i++;
            continue;
        } else if ((c & 0xE0) == 0xC0) {
            len = 2, min = 0x80, cp = c & 0x1F;
        } else if ((c & 0xF0) == 0xE0) {
            len = 3, min = 0x800, cp = c & 0x0F;
        } else if ((c & 0xF8) == 0xF0) {
            len = 4, min = 0x10000, cp = c & 0x07;
        } else {
            return (long long)i;
        }
        if (i + len > n) return (long long)i;
        for (size_t k = 1; k < len; k++) {
            if ((p[i + k] & 0xC0) != 0x80) return (long long)i;
            cp = cp << 6 | (p[i + k] & 0x3F);
        }
        /* overlong forms, UTF-16 surrogates and code points past U+10FFFF */
        if (cp < min || (cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF) return (long long)i;
        i += len;
    }
    return -1;
}

char *cli_read_file(const char *cmd, const char *path, size_t *len) {
    const int is_stdin = !strcmp(path, "-");
    FILE *f = is_stdin ? stdin : fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "slim %s: cannot open %s: %s\n", cmd, path, strerror(errno));
        return NULL;
    }
    size_t n = 0, cap = 1 << 16;
    char *buf = malloc(cap);
    for (;;) {
        if (!buf) break;
        n += fread(buf + n, 1, cap - n - 1, f);
        if (n + 1 < cap) break;
        char *b = realloc(buf, cap * 2);
        if (!b) {
            free(buf);
            buf = NULL;
            break;
        }
        buf = b, cap *= 2;
    }
    const int err = ferror(f), e = errno;
    if (!is_stdin) fclose(f);
    if (!buf || err) {
        fprintf(stderr, "slim %s: cannot read %s: %s\n", cmd, is_stdin ? "standard input" : path,
                buf ? strerror(e) : "out of memory");
        free(buf);
        return NULL;
    }
    buf[n] = '\0';
    *len = n;
    return buf;
}

/* ---- the line reader ------------------------------------------------------ */

struct cli_reader {
    const char *prompt;
    int tty;
    char *line;
    size_t cap;
#ifdef SLIM_CLI_LIBEDIT
    EditLine *el;
    History *hist;
#endif
};

const char *cli_line_editor(void) {
#ifdef SLIM_CLI_LIBEDIT
    return "libedit";
#else
    return "none";
#endif
}

/* Wait until standard input has something to read; -1 (errno EINTR) on a
 * Ctrl-C.  A read that checks the flag and then blocks loses a SIGINT that
 * lands in between (libedit's own read does: the chat then waits for a key).
 * Here SIGINT stays blocked from the check until ppoll() unblocks it
 * atomically, so it was either seen or ends the wait.  The library's threads
 * block signals, so the handler runs on this thread. */
static int wait_stdin(void) {
    for (;;) {
        sigset_t intr, old;
        sigemptyset(&intr);
        sigaddset(&intr, SIGINT);
        pthread_sigmask(SIG_BLOCK, &intr, &old);
        struct pollfd p = {.fd = STDIN_FILENO, .events = POLLIN};
        const int ready = cli_sigint ? (errno = EINTR, -1) : ppoll(&p, 1, NULL, &old);
        const int e = errno;
        pthread_sigmask(SIG_SETMASK, &old, NULL); /* a pending SIGINT is handled here */
        if (ready >= 0) return 0;
        if (e == EINTR && !cli_sigint) continue; /* another signal: SIGWINCH */
        errno = e;
        return -1;
    }
}

/* A terminal's line without stdio, so every wait goes through wait_stdin. */
static ssize_t tty_getline(cli_reader *r) {
    size_t n = 0;
    for (;;) {
        if (n + 256 > r->cap) {
            char *b = realloc(r->line, r->cap * 2 + 256);
            if (!b) return errno = ENOMEM, -1;
            r->line = b, r->cap = r->cap * 2 + 256;
        }
        if (wait_stdin() < 0) return -1;
        const ssize_t k = read(STDIN_FILENO, r->line + n, r->cap - n - 1);
        if (k < 0 && (errno == EINTR || errno == EAGAIN) && !cli_sigint) continue;
        if (k < 0) return -1;
        n += (size_t)k;
        r->line[n] = '\0';
        if (k == 0 || memchr(r->line + n - (size_t)k, '\n', (size_t)k))
            return k == 0 && !n ? -1 : (ssize_t)n;
    }
}

#ifdef SLIM_CLI_LIBEDIT
static const char *el_prompt(EditLine *el) {
    cli_reader *r = NULL;
    el_get(el, EL_CLIENTDATA, &r);
    return r ? r->prompt : "";
}

static int el_read_char(EditLine *el, wchar_t *out) {
    (void)el;
    mbstate_t mbs;
    memset(&mbs, 0, sizeof mbs);
    for (;;) {
        if (wait_stdin() < 0) return -1;
        char byte;
        const ssize_t k = read(STDIN_FILENO, &byte, 1);
        if (k < 0 && (errno == EINTR || errno == EAGAIN) && !cli_sigint) continue;
        if (k <= 0) return (int)k;
        const size_t got = mbrtowc(out, &byte, 1, &mbs);
        if (got == (size_t)-2) continue; /* more bytes of this character */
        if (got == (size_t)-1) {         /* not in the locale: pass the byte on */
            memset(&mbs, 0, sizeof mbs);
            *out = (wchar_t)(unsigned char)byte;
        }
        return 1;
    }
}
#endif

cli_reader *cli_reader_open(const char *prompt) {
    cli_reader *r = calloc(1, sizeof *r);
    if (!r) return NULL;
    r->prompt = prompt;
    r->tty = isatty(STDIN_FILENO);
#ifdef SLIM_CLI_LIBEDIT
    if (r->tty) {
        /* libedit decodes multibyte input by LC_CTYPE; models speak UTF-8, so
         * with a C locale ask for C.UTF-8. */
        setlocale(LC_CTYPE, "");
        if (strcmp(nl_langinfo(CODESET), "UTF-8")) setlocale(LC_CTYPE, "C.UTF-8");
        r->el = el_init("slim", stdin, stderr, stderr);
        r->hist = history_init();
        if (r->el && r->hist) {
            HistEvent ev;
            history(r->hist, &ev, H_SETSIZE, 1000);
            el_set(r->el, EL_CLIENTDATA, r);
            el_set(r->el, EL_PROMPT, el_prompt);
            el_set(r->el, EL_EDITOR, "emacs");
            el_set(r->el, EL_SIGNAL, 1); /* restore the terminal around signals */
            el_set(r->el, EL_GETCFN, el_read_char);
            el_set(r->el, EL_HIST, history, r->hist);
            el_source(r->el, NULL); /* ~/.editrc, as other libedit programs do */
        } else {
            if (r->el) el_end(r->el);
            if (r->hist) history_end(r->hist);
            r->el = NULL, r->hist = NULL;
        }
    }
#endif
    return r;
}

int cli_reader_get(cli_reader *r, const char **line, size_t *len) {
    ssize_t n;
    if (cli_sigint) return CLI_LINE_INTR; /* came after the last reply */
#ifdef SLIM_CLI_LIBEDIT
    if (r->el) {
        int count = 0;
        errno = 0;
        /* el_gets prints the prompt before it makes the terminal raw: a ctrl-D
         * typed in between is queued by the cooked terminal as an end-of-file
         * mark, which reads as a NUL once raw, and the chat waits for ever.  Raw
         * first, then the prompt. */
        el_set(r->el, EL_PREP_TERM, 1);
        const char *s = el_gets(r->el, &count);
        el_set(r->el, EL_PREP_TERM, 0);
        if (!s || count <= 0) {
            if (cli_sigint || errno == EINTR) {
                el_reset(r->el);
                fputc('\n', stderr);
                return CLI_LINE_INTR;
            }
            return count < 0 ? CLI_LINE_ERR : CLI_LINE_EOF;
        }
        n = (ssize_t)strlen(s);
        if (n + 1 > (ssize_t)r->cap) {
            char *b = realloc(r->line, (size_t)n + 1);
            if (!b) return CLI_LINE_ERR;
            r->line = b, r->cap = (size_t)n + 1;
        }
        memcpy(r->line, s, (size_t)n + 1);
        while (n > 0 && (r->line[n - 1] == '\n' || r->line[n - 1] == '\r'))
            r->line[--n] = '\0';
        if (n > 0) {
            HistEvent ev;
            history(r->hist, &ev, H_ENTER, r->line);
        }
        *line = r->line, *len = (size_t)n;
        return CLI_LINE;
    }
#endif
    if (r->tty) {
        fputs(r->prompt, stderr);
        fflush(stderr);
    }
    errno = 0;
    n = r->tty ? tty_getline(r) : getline(&r->line, &r->cap, stdin);
    if (n < 0) {
        if (cli_sigint || errno == EINTR) {
            clearerr(stdin);
            if (r->tty) fputc('\n', stderr);
            return CLI_LINE_INTR;
        }
        return (r->tty ? errno != 0 : ferror(stdin) != 0) ? CLI_LINE_ERR : CLI_LINE_EOF;
    }
    while (n > 0 && (r->line[n - 1] == '\n' || r->line[n - 1] == '\r'))
        r->line[--n] = '\0';
    *line = r->line, *len = (size_t)n;
    return CLI_LINE;
}

void cli_reader_close(cli_reader *r) {
    if (!r) return;
#ifdef SLIM_CLI_LIBEDIT
    if (r->el) el_end(r->el);
    if (r->hist) history_end(r->hist);
#endif
    free(r->line);
    free(r);
}
