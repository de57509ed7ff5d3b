/* slim serve: an OpenAI-compatible HTTP server on the batched engine (docs/SERVER.md).
 * HTTP is GNU libmicrohttpd's (a thread per connection: a request's thread waits for its
 * tokens); this file is the glue: options, routing, API keys, limits, the drain on
 * SIGINT/SIGTERM.  Built without libmicrohttpd, `slim serve` says so. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "serve.h"

static const char serve_usage[] =
    "usage: slim serve -m FILE [options]\n"
    "  An OpenAI-compatible HTTP server (docs/SERVER.md): /v1/chat/completions,\n"
    "  /v1/completions, /v1/models, /health, /metrics, /tokenize, /detokenize.\n"
    "  -m, --model PATH       GGUF model file or Hugging Face model directory\n"
    "  --served-model-name N  the name requests use for the model (default: the file's\n"
    "                         name without .gguf)\n"
    "  --lora NAME=PATH[:S]   a LoRA adapter requests choose with \"model\": NAME (scale S,\n"
    "                         default 1); repeatable, up to 16\n"
    "  --host ADDR            address to listen on (default 127.0.0.1: loopback only)\n"
    "  --port N               port (default 8080; 0: any free port, printed)\n"
    "  --api-key KEY          require \"Authorization: Bearer KEY\" on /v1/*, /tokenize and\n"
    "                         /detokenize (also: $SLIM_API_KEY)\n"
    "  --api-key-file F       the key from the first line of file F\n"
    "  -t, --threads N        CPU threads of the forward pass (default: all)\n"
    "  -c, --ctx-size N       a request's prompt + completion tokens at most (default:\n"
    "                         min(training context, 4096))\n"
    "  --kv-budget N[MiB|GiB] the KV pool: N tokens, or a size in MiB/GiB (default 8192\n"
    "                         tokens)\n"
    "  --kv-type K            f16 (default) or f32\n"
    "  --max-seqs N           sequences in one step at most (parallel slots; default 64)\n"
    "  --step-tokens N        tokens in one step at most (default 512)\n"
    "  --no-prefix-cache      do not reuse cached prompt blocks\n"
    "  --max-queue N          requests queued or running at most; more get 429 (default 256)\n"
    "  --max-connections N    open connections at most (default 512)\n"
    "  --max-body BYTES       request body size limit; larger get 413 (default 4194304)\n"
    "  --timeout S            a request's time limit in seconds (default 600; 0: none)\n"
    "  --idle-timeout S       close a connection idle this long (default 60)\n"
    "  --drain-timeout S      on SIGINT/SIGTERM, let running requests finish this long\n"
    "                         before cancelling them (default 30)\n"
    "  --template NAME        chat template family instead of the model's\n"
    "  --no-mmap, --backend B, --weight-type T   as for slim run\n"
    "exit status: 0 after a drain (SIGINT/SIGTERM), 1 an error, 2 a usage error\n";

#ifndef SLIM_CLI_SERVER

int cli_serve(int argc, char **argv) {
    if (argc == 1 && (!strcmp(argv[0], "-h") || !strcmp(argv[0], "--help"))) {
        fputs(serve_usage, stdout);
        return 0;
    }
    fprintf(stderr, "slim serve: this slim was built without the server (libmicrohttpd was not "
                    "found by pkg-config when it was built: install libmicrohttpd-dev and "
                    "rebuild)\n");
    return 1;
}

#else

#include <errno.h>
#include <fcntl.h>
#include <microhttpd.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

typedef struct serve_opts {
    const char *host, *api_key;
    int port, max_conn;
    long long max_body;
    double idle_timeout, drain_timeout;
} serve_opts;

static serve_opts g_opt;
static int g_sigpipe[2] = {-1, -1};
static volatile sig_atomic_t g_signals;

static void on_signal(int sig) {
    (void)sig;
    g_signals++;
    const int saved = errno;
    if (g_sigpipe[1] >= 0 && write(g_sigpipe[1], "x", 1) < 0) {
    }
    errno = saved;
}

typedef struct conn_state {
    srv_buf body;
    int too_big;
} conn_state;

typedef struct stream_state {
    srv_job *job;
    srv_buf out;
    size_t off;
    int end;
} stream_state;

static enum MHD_Result send_buf(srv *s, struct MHD_Connection *c, int status, const srv_buf *b,
                                const char *type) {
    struct MHD_Response *r =
        MHD_create_response_from_buffer(b->len, b->p ? b->p : (char *)"", MHD_RESPMEM_MUST_COPY);
    if (!r) return MHD_NO;
    MHD_add_response_header(r, "Content-Type", type);
    if (status == 429 || status == 503) MHD_add_response_header(r, "Retry-After", "1");
    if (status == 401) MHD_add_response_header(r, "WWW-Authenticate", "Bearer");
    const enum MHD_Result ret = MHD_queue_response(c, (unsigned)status, r);
    MHD_destroy_response(r);
    srv_metrics_http(s->metrics, status);
    return ret;
}

static enum MHD_Result send_error(srv *s, struct MHD_Connection *c, const srv_err *e) {
    srv_buf b = {0};
    srv_write_error(&b, e);
    const enum MHD_Result ret = send_buf(s, c, e->status, &b, "application/json");
    srv_buf_free(&b);
    return ret;
}

static enum MHD_Result fail(srv *s, struct MHD_Connection *c, int status, const char *param,
                            const char *msg) {
    srv_err e = {0};
    srv_fail(&e, status, param, "%s", msg);
    return send_error(s, c, &e);
}

/* Bearer token check in time independent of where the strings differ. */
static int authorized(struct MHD_Connection *c) {
    if (!g_opt.api_key) return 1;
    const char *h = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
    if (!h || strncasecmp(h, "Bearer ", 7)) return 0;
    h += 7;
    const size_t a = strlen(h), b = strlen(g_opt.api_key);
    unsigned diff = (unsigned)(a != b);
    for (size_t i = 0; i < b; i++)
        diff |= (unsigned char)g_opt.api_key[i] ^ (unsigned char)(i < a ? h[i] : 0);
    return diff == 0;
}

static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max) {
    (void)pos;
    stream_state *st = cls;
    while (st->off >= st->out.len) {
        if (st->end)
            return st->end < 0 ? MHD_CONTENT_READER_END_WITH_ERROR
                               : MHD_CONTENT_READER_END_OF_STREAM;
        st->out.len = 0;
        st->off = 0;
        const int r = srv_job_stream(st->job, &st->out);
        if (r <= 0) st->end = r < 0 ? -1 : 1;
        if (r < 0) return MHD_CONTENT_READER_END_WITH_ERROR;
    }
    size_t n = st->out.len - st->off;
    if (n > max) n = max;
    memcpy(buf, st->out.p + st->off, n);
    st->off += n;
    return (ssize_t)n;
}

static void stream_free(void *cls) {
    stream_state *st = cls;
    srv_job_free(st->job);
    srv_buf_free(&st->out);
    free(st);
}

static int client_fd(struct MHD_Connection *c) {
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
    return ci ? ci->connect_fd : -1;
}

static enum MHD_Result generate(srv *s, struct MHD_Connection *c, int kind, const srv_buf *body) {
    srv_req r;
    srv_err e = {0};
    srv_job *j = NULL;
    if (!srv_req_parse(s, kind, body->p ? body->p : "", body->len, &r, &e))
        return send_error(s, c, &e);
    const int stream = r.stream;
    if (!srv_job_start(s, &r, client_fd(c), &j, &e)) return send_error(s, c, &e);
    if (stream) {
        stream_state *st = calloc(1, sizeof *st);
        struct MHD_Response *resp =
            st ? MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16 * 1024, stream_read, st,
                                                   stream_free)
               : NULL;
        if (!resp) {
            free(st);
            srv_job_free(j);
            return fail(s, c, 500, NULL, "out of memory");
        }
        st->job = j;
        MHD_add_response_header(resp, "Content-Type", "text/event-stream");
        MHD_add_response_header(resp, "Cache-Control", "no-cache");
        const enum MHD_Result ret = MHD_queue_response(c, MHD_HTTP_OK, resp);
        MHD_destroy_response(resp);
        srv_metrics_http(s->metrics, 200);
        return ret;
    }
    srv_buf out = {0};
    const int status = srv_job_finish(j, &out);
    srv_job_free(j);
    const enum MHD_Result ret = send_buf(s, c, status, &out, "application/json");
    srv_buf_free(&out);
    return ret;
}

static void models(srv *s, srv_buf *b) {
    srv_obj(b);
    srv_key(b, "object");
    srv_jcstr(b, "list");
    srv_key(b, "data");
    srv_arr(b);
    for (int i = -1; i < s->n_lora; i++) {
        srv_obj(b);
        srv_key(b, "id");
        srv_jcstr(b, i < 0 ? s->model_name : s->lora_name[i]);
        srv_key(b, "object");
        srv_jcstr(b, "model");
        srv_key(b, "created");
        srv_jint(b, s->created);
        srv_key(b, "owned_by");
        srv_jcstr(b, "slim");
        srv_key(b, "root");
        srv_jcstr(b, i < 0 ? s->model_path : s->lora_path[i]);
        srv_key(b, "parent");
        if (i < 0)
            srv_jnull(b);
        else
            srv_jcstr(b, s->model_name);
        srv_key(b, "max_model_len");
        srv_jint(b, s->n_ctx);
        srv_obj_end(b);
    }
    srv_arr_end(b);
    srv_obj_end(b);
}

static enum MHD_Result route(srv *s, struct MHD_Connection *c, const char *url, const char *method,
                             const srv_buf *body) {
    const int get = !strcmp(method, "GET") || !strcmp(method, "HEAD");
    const int post = !strcmp(method, "POST");
    srv_buf b = {0};
    enum MHD_Result ret;
    if (!strcmp(url, "/health")) {
        if (!get) return fail(s, c, 405, NULL, "use GET /health");
        const int ok = atomic_load(&s->ready) && !atomic_load(&s->draining);
        srv_cstr(&b, ok                       ? "{\"status\":\"ok\"}"
                     : atomic_load(&s->ready) ? "{\"status\":\"draining\"}"
                                              : "{\"status\":\"loading\"}");
        ret = send_buf(s, c, ok ? 200 : 503, &b, "application/json");
        srv_buf_free(&b);
        return ret;
    }
    if (!strcmp(url, "/metrics")) {
        if (!get) return fail(s, c, 405, NULL, "use GET /metrics");
        srv_metrics_write(s, &b);
        ret = send_buf(s, c, 200, &b, "text/plain; version=0.0.4; charset=utf-8");
        srv_buf_free(&b);
        return ret;
    }
    static const char *const routes[] = {
        "/v1/models",  "/v1/chat/completions", "/v1/completions", "/tokenize",
        "/detokenize", "/v1/tokenize",         "/v1/detokenize",  NULL};
    int k = 0;
    while (routes[k] && strcmp(url, routes[k]))
        k++;
    if (!routes[k]) {
        srv_err e = {0};
        srv_fail(&e, 404, NULL, "no route %s %s", method, url);
        return send_error(s, c, &e);
    }
    if (!authorized(c))
        return fail(s, c, 401, NULL,
                    "a valid API key is required: send the header \"Authorization: Bearer KEY\"");
    if (!atomic_load(&s->ready)) return fail(s, c, 503, NULL, "the model is still loading");
    if (atomic_load(&s->draining)) return fail(s, c, 503, NULL, "the server is shutting down");
    if (k == 0) {
        if (!get) return fail(s, c, 405, NULL, "use GET /v1/models");
        models(s, &b);
        ret = send_buf(s, c, 200, &b, "application/json");
        srv_buf_free(&b);
        return ret;
    }
    if (!post) return fail(s, c, 405, NULL, "use POST");
    if (k == 1 || k == 2) return generate(s, c, k == 1 ? SRV_CHAT : SRV_COMPLETION, body);
    srv_err e = {0};
    const char *p = body->p ? body->p : "";
    const int ok = (k == 3 || k == 5) ? srv_tokenize(s, p, body->len, &b, &e)
                                      : srv_detokenize(s, p, body->len, &b, &e);
    ret = ok ? send_buf(s, c, 200, &b, "application/json") : send_error(s, c, &e);
    srv_buf_free(&b);
    return ret;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_size, void **con_cls) {
    (void)version;
    srv *s = cls;
    conn_state *cs = *con_cls;
    if (!cs) {
        if (!(cs = calloc(1, sizeof *cs))) return MHD_NO;
        *con_cls = cs;
        atomic_fetch_add(&s->open, 1);
        /* A declared body over the limit: answer at once, without reading it. */
        const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Length");
        if (cl && strtoull(cl, NULL, 10) > (unsigned long long)g_opt.max_body) {
            cs->too_big = 2;
            char msg[128];
            snprintf(msg, sizeof msg,
                     "the request body is larger than the server's limit (%lld "
                     "bytes)",
                     g_opt.max_body);
            return fail(s, c, 413, NULL, msg);
        }
        return MHD_YES;
    }
    if (cs->too_big == 2) {
        *upload_size = 0;
        return MHD_YES;
    }
    if (*upload_size) {
        if (cs->body.len + *upload_size > (size_t)g_opt.max_body) cs->too_big = 1;
        if (!cs->too_big) srv_raw(&cs->body, upload_data, *upload_size);
        *upload_size = 0;
        return MHD_YES;
    }
    if (cs->too_big) {
        char msg[128];
        snprintf(msg, sizeof msg, "the request body is larger than the server's limit (%lld bytes)",
                 g_opt.max_body);
        return fail(s, c, 413, NULL, msg);
    }
    if (cs->body.oom) return fail(s, c, 500, NULL, "out of memory");
    return route(s, c, url, method, &cs->body);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe) {
    (void)c;
    (void)toe;
    conn_state *cs = *con_cls;
    if (!cs) return;
    atomic_fetch_sub(&((srv *)cls)->open, 1);
    srv_buf_free(&cs->body);
    free(cs);
    *con_cls = NULL;
}

/* --lora NAME=PATH[:scale] */
static int parse_lora(const char *arg, char **name, char **path, double *scale) {
    const char *eq = strchr(arg, '=');
    if (!eq || eq == arg || !eq[1]) return 0;
    *name = strndup(arg, (size_t)(eq - arg));
    *path = strdup(eq + 1);
    *scale = 1;
    if (!*name || !*path) return 0;
    char *colon = strrchr(*path, ':'), *end;
    if (colon && colon[1]) {
        errno = 0;
        const double v = strtod(colon + 1, &end);
        if (!errno && !*end) {
            *scale = v;
            *colon = '\0';
        }
    }
    return 1;
}

static int parse_kv_budget(const char *v, slim_engine_params *ep) {
    char *end;
    errno = 0;
    const double x = strtod(v, &end);
    if (errno || end == v || !(x > 0)) return 0;
    if (!*end) {
        if (x > 1 << 30) return 0;
        ep->kv_tokens = (int32_t)x;
        return 1;
    }
    const double mul = !strcasecmp(end, "MiB") || !strcasecmp(end, "M")   ? 1048576.0
                       : !strcasecmp(end, "GiB") || !strcasecmp(end, "G") ? 1073741824.0
                                                                          : 0;
    if (!mul) return 0;
    ep->kv_bytes = (int64_t)(x * mul);
    return 1;
}

static char *read_key_file(const char *path) {
    FILE *f = fopen(path, "r");
    if (!f) return NULL;
    char line[4096];
    char *key = NULL;
    if (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\r\n")] = '\0';
        if (line[0]) key = strdup(line);
    }
    fclose(f);
    return key;
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

int cli_serve(int argc, char **argv) {
    srv s = {0};
    slim_model_params mp = slim_model_default_params();
    slim_engine_params ep = slim_engine_default_params();
    ep.max_queue = 256;
    g_opt = (serve_opts){.host = "127.0.0.1",
                         .port = 8080,
                         .max_conn = 512,
                         .max_body = 4 << 20,
                         .idle_timeout = 60,
                         .drain_timeout = 30};
    g_opt.api_key = getenv("SLIM_API_KEY");
    if (g_opt.api_key && !g_opt.api_key[0]) g_opt.api_key = NULL;
    s.timeout_s = 600;
    const char *model_path = NULL, *name = NULL, *key_file = NULL;
    char *lora_names[SRV_MAX_LORA] = {0}, *lora_paths[SRV_MAX_LORA] = {0};
    double lora_scale[SRV_MAX_LORA];
    int n_lora = 0, rc = 1;
    char *name_buf = NULL, *file_key = NULL;
    cli_opts o = cli_opts_init("serve", argc, argv);
    const char *a;
    int k;
    while ((k = cli_next(&o, &a)) == CLI_OPTION || k == CLI_OPERAND) {
        long long x;
        double d;
        int choice;
        if (k == CLI_OPERAND) {
            rc = cli_extra(&o, a);
            goto out;
        } else if (cli_is(&o, "-h", "--help")) {
            fputs(serve_usage, stdout);
            rc = 0;
            goto out;
        } else if (cli_is(&o, "-m", "--model")) {
            if (!(model_path = cli_value(&o))) goto usage;
        } else if (cli_is(&o, NULL, "--served-model-name")) {
            if (!(name = cli_value(&o))) goto usage;
        } else if (cli_is(&o, NULL, "--lora")) {
            const char *v = cli_value(&o);
            if (!v) goto usage;
            if (n_lora == SRV_MAX_LORA) {
                rc = cli_usage_error(&o, "at most %d --lora adapters", SRV_MAX_LORA);
                goto out;
            }
            if (!parse_lora(v, &lora_names[n_lora], &lora_paths[n_lora], &lora_scale[n_lora])) {
                n_lora++;
                rc = cli_usage_error(&o, "--lora %s: expected NAME=PATH[:SCALE]", v);
                goto out;
            }
            n_lora++;
        } else if (cli_is(&o, NULL, "--host")) {
            if (!(g_opt.host = cli_value(&o))) goto usage;
        } else if (cli_is(&o, NULL, "--port")) {
            if (!cli_int(&o, 0, 65535, &x)) goto usage;
            g_opt.port = (int)x;
        } else if (cli_is(&o, NULL, "--api-key")) {
            if (!(g_opt.api_key = cli_value(&o))) goto usage;
        } else if (cli_is(&o, NULL, "--api-key-file")) {
            if (!(key_file = cli_value(&o))) goto usage;
        } else if (cli_is(&o, "-t", "--threads")) {
            if (!cli_int(&o, 0, 1024, &x)) goto usage;
            ep.n_threads = (int32_t)x;
        } else if (cli_is(&o, "-c", "--ctx-size")) {
            if (!cli_int(&o, 0, 1 << 20, &x)) goto usage;
            ep.n_ctx = (int32_t)x;
        } else if (cli_is(&o, NULL, "--kv-budget")) {
            const char *v = cli_value(&o);
            if (!v) goto usage;
            if (!parse_kv_budget(v, &ep)) {
                rc = cli_usage_error(&o, "--kv-budget %s: expected tokens or N MiB / N GiB", v);
                goto out;
            }
        } else if (cli_is(&o, NULL, "--kv-type")) {
            static const char *const kvt[] = {"f16", "f32", NULL};
            if (!cli_choice(&o, kvt, &choice)) goto usage;
            ep.kv_type = choice;
        } else if (cli_is(&o, NULL, "--max-seqs")) {
            if (!cli_int(&o, 1, 4096, &x)) goto usage;
            ep.max_seqs = (int32_t)x;
        } else if (cli_is(&o, NULL, "--step-tokens")) {
            if (!cli_int(&o, 1, 1 << 16, &x)) goto usage;
            ep.step_tokens = (int32_t)x;
        } else if (cli_is(&o, NULL, "--no-prefix-cache")) {
            ep.prefix_cache = 0;
        } else if (cli_is(&o, NULL, "--max-queue")) {
            if (!cli_int(&o, 1, 1 << 20, &x)) goto usage;
            ep.max_queue = (int32_t)x;
        } else if (cli_is(&o, NULL, "--max-connections")) {
            if (!cli_int(&o, 1, 65536, &x)) goto usage;
            g_opt.max_conn = (int)x;
        } else if (cli_is(&o, NULL, "--max-body")) {
            if (!cli_int(&o, 16, 1LL << 30, &x)) goto usage;
            g_opt.max_body = x;
        } else if (cli_is(&o, NULL, "--timeout")) {
            if (!cli_double(&o, 0, 1e7, &d)) goto usage;
            s.timeout_s = d;
        } else if (cli_is(&o, NULL, "--idle-timeout")) {
            if (!cli_double(&o, 1, 1e6, &d)) goto usage;
            g_opt.idle_timeout = d;
        } else if (cli_is(&o, NULL, "--drain-timeout")) {
            if (!cli_double(&o, 0, 1e6, &d)) goto usage;
            g_opt.drain_timeout = d;
        } else if (cli_is(&o, NULL, "--template")) {
            if (!(s.template_override = cli_value(&o))) goto usage;
        } else if (cli_is(&o, NULL, "--no-mmap")) {
            mp.use_mmap = 0;
        } else if (cli_is(&o, NULL, "--backend")) {
            static const char *const be[] = {"cpu", "cuda", NULL};
            if (!cli_choice(&o, be, &choice)) goto usage;
            mp.backend = choice;
        } else if (cli_is(&o, NULL, "--weight-type")) {
            if (!(mp.weight_type = cli_value(&o))) goto usage;
        } else {
            rc = cli_unknown(&o);
            goto out;
        }
    }
    if (k == CLI_ERR) goto usage;
    if (!model_path) {
        rc = cli_usage_error(&o, "-m MODEL is required (slim serve --help)");
        goto out;
    }
    if (key_file && !(g_opt.api_key = file_key = read_key_file(key_file))) {
        fprintf(stderr, "slim serve: --api-key-file %s: cannot read a key from it\n", key_file);
        goto out;
    }
    if (!name) {
        const char *base = strrchr(model_path, '/');
        base = base && base[1] ? base + 1 : model_path;
        name_buf = strdup(base);
        if (!name_buf) goto out;
        const size_t n = strlen(name_buf);
        if (n > 5 && !strcmp(name_buf + n - 5, ".gguf")) name_buf[n - 5] = '\0';
        name = name_buf;
    }
    for (int i = 0; i < n_lora; i++) {
        if (!strcmp(lora_names[i], name)) {
            fprintf(stderr, "slim serve: --lora %s: the base model has that name\n", name);
            goto out;
        }
        for (int j = 0; j < i; j++)
            if (!strcmp(lora_names[i], lora_names[j])) {
                fprintf(stderr, "slim serve: --lora %s given twice\n", lora_names[i]);
                goto out;
            }
    }
    s.model_name = name;
    s.model_path = model_path;
    s.created = (long long)time(NULL);
    if (!(s.metrics = srv_metrics_new())) goto out;

    /* Listen first, so /health answers 503 while the model loads. */
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *ai = NULL;
    char port_s[16];
    snprintf(port_s, sizeof port_s, "%d", g_opt.port);
    const int gai = getaddrinfo(g_opt.host, port_s, &hints, &ai);
    if (gai) {
        fprintf(stderr, "slim serve: --host %s: %s\n", g_opt.host, gai_strerror(gai));
        goto out;
    }
    if (pipe(g_sigpipe) || fcntl(g_sigpipe[1], F_SETFL, O_NONBLOCK)) {
        perror("slim serve: pipe");
        freeaddrinfo(ai);
        goto out;
    }
    struct sigaction sa = {0};
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ITC;
    if (ai->ai_family == AF_INET6) flags |= MHD_USE_IPv6;
    struct MHD_Daemon *d = MHD_start_daemon(
        flags, (uint16_t)g_opt.port, NULL, NULL, on_request, &s, MHD_OPTION_SOCK_ADDR, ai->ai_addr,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned)g_opt.max_conn, MHD_OPTION_CONNECTION_TIMEOUT,
        (unsigned)g_opt.idle_timeout, MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)64 * 1024,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, &s, MHD_OPTION_LISTEN_BACKLOG_SIZE, 1024u,
        MHD_OPTION_END);
    freeaddrinfo(ai);
    if (!d) {
        fprintf(stderr, "slim serve: cannot listen on %s port %d: %s\n", g_opt.host, g_opt.port,
                strerror(errno));
        goto out;
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    const int port = di ? di->port : g_opt.port;
    fprintf(stderr, "slim serve: loading %s\n", model_path);
    slim_status st = slim_model_load(model_path, &mp, &s.model);
    slim_model_info info = {.struct_size = sizeof info};
    if (!st) st = slim_model_get_info(s.model, &info);
    if (!st) st = slim_engine_create(s.model, &ep, &s.engine);
    for (int i = 0; !st && i < n_lora; i++) {
        slim_lora *lo = NULL;
        st = slim_lora_load(s.model, lora_paths[i], &lo);
        if (!st) st = slim_engine_attach_lora(s.engine, lo, (float)lora_scale[i], &s.lora_index[i]);
        slim_lora_free(lo);
        if (st) fprintf(stderr, "slim serve: --lora %s: ", lora_names[i]);
        s.lora_name[i] = lora_names[i];
        s.lora_path[i] = lora_paths[i];
        s.n_lora = i + 1;
    }
    if (st) {
        cli_fail("load", st);
        MHD_stop_daemon(d);
        goto out;
    }
    s.n_vocab = info.n_vocab;
    s.n_ctx = ep.n_ctx > 0 ? ep.n_ctx : info.n_ctx_train < 4096 ? info.n_ctx_train : 4096;
    atomic_store(&s.ready, 1);
    printf("slim serve: listening on http://%s%s%s:%d (model \"%s\"%s)\n",
           strchr(g_opt.host, ':') ? "[" : "", g_opt.host, strchr(g_opt.host, ':') ? "]" : "", port,
           s.model_name, g_opt.api_key ? ", API key required" : "");
    fflush(stdout);

    /* Wait for SIGINT/SIGTERM, then drain: stop accepting, let running requests finish
     * within the deadline, cancel the rest, exit 0. */
    struct pollfd pfd = {.fd = g_sigpipe[0], .events = POLLIN};
    while (!g_signals)
        poll(&pfd, 1, -1);
    atomic_store(&s.draining, 1);
    const MHD_socket lfd = MHD_quiesce_daemon(d);
    if (lfd != MHD_INVALID_SOCKET) close(lfd);
    fprintf(stderr, "slim serve: draining (%d requests running; %g s)\n", atomic_load(&s.active),
            g_opt.drain_timeout);
    const double t0 = now_s();
    while (atomic_load(&s.active) > 0 && now_s() - t0 < g_opt.drain_timeout && g_signals < 2)
        poll(&pfd, 1, 50);
    if (atomic_load(&s.active) > 0) {
        fprintf(stderr, "slim serve: cancelling %d requests\n", atomic_load(&s.active));
        atomic_store(&s.abort_all, 1);
        const double t1 = now_s();
        while (atomic_load(&s.active) > 0 && now_s() - t1 < 10)
            poll(&pfd, 1, 20);
    }
    /* A finished generation's answer may still be on its way out: stopping the daemon
       now would close that connection unanswered. */
    const double t2 = now_s();
    while (atomic_load(&s.open) > 0 && now_s() - t2 < 10)
        poll(&pfd, 1, 20);
    MHD_stop_daemon(d);
    slim_engine_free(s.engine);
    s.engine = NULL;
    fprintf(stderr, "slim serve: stopped\n");
    rc = 0;
    goto out;
usage:
    rc = 2;
out:
    slim_engine_free(s.engine);
    slim_model_free(s.model);
    srv_metrics_free(s.metrics);
    for (int i = 0; i < n_lora; i++) {
        free(lora_names[i]);
        free(lora_paths[i]);
    }
    free(name_buf);
    free(file_key);
    for (int i = 0; i < 2; i++)
        if (g_sigpipe[i] >= 0) close(g_sigpipe[i]);
    return rc;
}

#endif
