/* stream: STREAM-style memory bandwidth (McCalpin's copy, scale, add, triad)
 * plus a read-only sum, the access pattern of weight streaming in decode.
 *
 * Three arrays of doubles, each -s MiB (default 512, far larger than any
 * cache), split into one contiguous chunk per thread; pthreads, no OpenMP.
 * For each thread count the arrays are allocated afresh and first touched by
 * the worker that later uses each chunk; they are advised for transparent
 * huge pages (--no-huge: not).  Each kernel runs -r times (default
 * 10) after one untimed warm-up; all threads start together at a barrier and
 * the time runs until the last one ends.  Reported: the best (and mean) rate
 * of each kernel in GB/s (10^9 bytes/s) and the best read-only rate.
 *
 * Bytes counted as STREAM does, per element: copy c = a 16, scale b = q c 16,
 * add c = a + b 24, triad a = b + q c 24, read (sum of a and b) 16.  Stores
 * also cost a read for ownership on most CPUs (not counted), which is why
 * the read kernel is the number to set weight traffic against.
 *
 * usage: stream [-s MiB] [-t 1,2 | -t N (1..N)] [-r N] [-o table|json] [--pin] [--no-huge]
 * build: make stream   (-> build/stream)
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

enum { K_COPY, K_SCALE, K_ADD, K_TRIAD, K_READ, K_COUNT };
static const char *const kname[K_COUNT] = {"copy", "scale", "add", "triad", "read"};
static const int kbytes[K_COUNT] = {16, 16, 24, 24, 16}; /* per element */

/* 8 doubles: wide loads and independent partial sums for the read kernel
 * (C does not let the compiler reassociate one scalar sum). */
typedef double v8d __attribute__((vector_size(64)));

typedef struct {
    double *a, *b, *c;
    size_t n; /* elements per array */
    int nthreads, pin;
    pthread_barrier_t start, done;
    volatile int kernel; /* -1: quit, K_COUNT: first touch */
    double sink[256];    /* per-thread read sums, so the loads are kept */
} shared;

typedef struct {
    shared *s;
    int id;
} worker;

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* [i0, i1) of thread id, multiples of 8 elements (64-byte lines). */
static void chunk(const shared *s, int id, size_t *i0, size_t *i1) {
    const size_t lines = s->n / 8;
    *i0 = lines * (size_t)id / (size_t)s->nthreads * 8;
    *i1 = lines * (size_t)(id + 1) / (size_t)s->nthreads * 8;
}

static void run_kernel(shared *s, int id, int k) {
    size_t i0, i1;
    chunk(s, id, &i0, &i1);
    double *restrict a = s->a, *restrict b = s->b, *restrict c = s->c;
    const double q = 3.0;
    switch (k) {
    case K_COUNT: /* first touch, with STREAM's initial values */
        for (size_t i = i0; i < i1; i++) {
            a[i] = 1.0;
            b[i] = 2.0;
            c[i] = 0.0;
        }
        break;
    case K_COPY:
        for (size_t i = i0; i < i1; i++)
            c[i] = a[i];
        break;
    case K_SCALE:
        for (size_t i = i0; i < i1; i++)
            b[i] = q * c[i];
        break;
    case K_ADD:
        for (size_t i = i0; i < i1; i++)
            c[i] = a[i] + b[i];
        break;
    case K_TRIAD:
        for (size_t i = i0; i < i1; i++)
            a[i] = b[i] + q * c[i];
        break;
    case K_READ: {
        const v8d *va = (const v8d *)(a + i0), *vb = (const v8d *)(b + i0);
        const size_t nv = (i1 - i0) / 8;
        v8d s0 = {0}, s1 = {0}, s2 = {0}, s3 = {0};
        size_t i = 0;
        for (; i + 2 <= nv; i += 2) {
            s0 += va[i];
            s1 += va[i + 1];
            s2 += vb[i];
            s3 += vb[i + 1];
        }
        for (; i < nv; i++) {
            s0 += va[i];
            s2 += vb[i];
        }
        const v8d t = s0 + s1 + s2 + s3;
        double sum = 0;
        for (int j = 0; j < 8; j++)
            sum += t[j];
        s->sink[id] += sum;
        break;
    }
    }
}

static void pin_to(int cpu) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    pthread_setaffinity_np(pthread_self(), sizeof set, &set);
}

static void *worker_main(void *p) {
    const worker *w = p;
    shared *s = w->s;
    if (s->pin) pin_to(w->id);
    for (;;) {
        pthread_barrier_wait(&s->start);
        const int k = s->kernel;
        if (k < 0) break;
        run_kernel(s, w->id, k);
        pthread_barrier_wait(&s->done);
    }
    return NULL;
}

/* Thread 0 is the caller: one timed run of kernel k on all threads. */
static double timed(shared *s, int k) {
    s->kernel = k;
    const double t0 = now_s();
    pthread_barrier_wait(&s->start);
    run_kernel(s, 0, k);
    pthread_barrier_wait(&s->done);
    return now_s() - t0;
}

static int huge = 1; /* --no-huge: leave the arrays in whatever pages the kernel gives */

static void *alloc_array(size_t bytes) {
    void *p = NULL;
    /* 2 MiB-aligned and advised, so transparent huge pages back the arrays even
     * where THP is in "madvise" mode (slim's weight buffers are, core/bigalloc.c);
     * 4 KiB pages cost a TLB miss and a prefetcher stop per page */
    const size_t big = (size_t)2 << 20, rounded = (bytes + big - 1) / big * big;
    if (posix_memalign(&p, big, rounded)) return NULL;
#ifdef MADV_HUGEPAGE
    if (huge) (void)madvise(p, rounded, MADV_HUGEPAGE);
#endif
    return p;
}

static int usage(const char *why) {
    if (why) fprintf(stderr, "stream: %s\n", why);
    fputs("usage: stream [-s MiB per array (512)] [-t 1,2 | -t N] [-r reps (10)] "
          "[-o table|json] [--pin] [--no-huge]\n"
          "  -t N runs 1..N threads; -t 1,4 runs exactly those counts (default: 1..ncpu)\n",
          why ? stderr : stdout);
    return why ? 2 : 0;
}

int main(int argc, char **argv) {
    size_t mib = 512;
    int reps = 10, json = 0, pin = 0, nt = 0, tlist[64];
    long ncpu = 1;
    cpu_set_t cs;
    if (sched_getaffinity(0, sizeof cs, &cs) == 0) ncpu = CPU_COUNT(&cs);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) return usage(NULL);
        if (!strcmp(a, "--pin")) {
            pin = 1;
        } else if (!strcmp(a, "--no-huge")) {
            huge = 0;
        } else if (!strcmp(a, "-s") && v) {
            mib = strtoull(v, NULL, 10), i++;
            if (mib < 1 || mib > (1u << 20)) return usage("bad -s");
        } else if (!strcmp(a, "-r") && v) {
            reps = atoi(v), i++;
            if (reps < 1 || reps > 10000) return usage("bad -r");
        } else if (!strcmp(a, "-o") && v) {
            if (strcmp(v, "json") && strcmp(v, "table")) return usage("bad -o");
            json = !strcmp(v, "json"), i++;
        } else if (!strcmp(a, "-t") && v) {
            i++;
            if (!strchr(v, ',')) {
                const int n = atoi(v);
                if (n < 1 || n > 64) return usage("bad -t");
                for (nt = 0; nt < n; nt++)
                    tlist[nt] = nt + 1;
            } else {
                nt = 0;
                for (const char *p = v; *p && nt < 64; p = strchr(p, ',') ? strchr(p, ',') + 1 : "")
                    if ((tlist[nt++] = atoi(p)) < 1 || tlist[nt - 1] > 256) return usage("bad -t");
            }
        } else {
            return usage("unknown option");
        }
    }
    if (nt == 0)
        for (nt = 0; nt < ncpu && nt < 64; nt++)
            tlist[nt] = nt + 1;

    const size_t n = mib * ((size_t)1 << 20) / sizeof(double) / 64 * 64;
    double best[64][K_COUNT], mean[64][K_COUNT];
    double best_read = 0;
    int best_read_t = 0;
    for (int ti = 0; ti < nt; ti++) {
        shared *s = calloc(1, sizeof *s);
        const int T = tlist[ti];
        if (!s) return 1;
        s->n = n;
        s->nthreads = T;
        s->pin = pin;
        s->a = alloc_array(n * sizeof(double));
        s->b = alloc_array(n * sizeof(double));
        s->c = alloc_array(n * sizeof(double));
        if (!s->a || !s->b || !s->c) {
            fprintf(stderr, "stream: cannot allocate 3 x %zu MiB\n", mib);
            return 1;
        }
        pthread_barrier_init(&s->start, NULL, (unsigned)T);
        pthread_barrier_init(&s->done, NULL, (unsigned)T);
        pthread_t th[256];
        worker w[256];
        for (int id = 1; id < T; id++) {
            w[id] = (worker){s, id};
            if ((errno = pthread_create(&th[id], NULL, worker_main, &w[id]))) {
                perror("stream: pthread_create");
                return 1;
            }
        }
        if (pin) pin_to(0);
        timed(s, K_COUNT); /* first touch by the owners */
        for (int k = 0; k < K_COUNT; k++) {
            timed(s, k); /* warm-up */
            double b = 1e30, sum = 0;
            for (int r = 0; r < reps; r++) {
                const double t = timed(s, k);
                b = t < b ? t : b;
                sum += t;
            }
            const double bytes = (double)kbytes[k] * (double)n;
            best[ti][k] = bytes / b * 1e-9;
            mean[ti][k] = bytes / (sum / reps) * 1e-9;
        }
        if (best[ti][K_READ] > best_read) best_read = best[ti][K_READ], best_read_t = T;
        s->kernel = -1;
        pthread_barrier_wait(&s->start);
        for (int id = 1; id < T; id++)
            pthread_join(th[id], NULL);
        if (pin) {
            cpu_set_t all = cs;
            pthread_setaffinity_np(pthread_self(), sizeof all, &all);
        }
        double sink = 0;
        for (int id = 0; id < T; id++)
            sink += s->sink[id];
        if (sink == 42.0) fputs("", stderr); /* keep the sums live */
        pthread_barrier_destroy(&s->start);
        pthread_barrier_destroy(&s->done);
        free(s->a);
        free(s->b);
        free(s->c);
        free(s);
    }

    if (json) {
        printf("{\"array_mib\": %zu, \"reps\": %d, \"results\": [", mib, reps);
        for (int ti = 0; ti < nt; ti++) {
            printf("%s\n  {\"threads\": %d", ti ? "," : "", tlist[ti]);
            for (int k = 0; k < K_COUNT; k++)
                printf(", \"%s_gbs\": %.3f, \"%s_mean_gbs\": %.3f", kname[k], best[ti][k], kname[k],
                       mean[ti][k]);
            printf("}");
        }
        printf("\n], \"best_read_gbs\": %.3f, \"best_read_threads\": %d}\n", best_read,
               best_read_t);
        return 0;
    }
    printf("STREAM-style bandwidth: 3 arrays x %zu MiB, best (mean) of %d runs, GB/s = 1e9 B/s\n\n",
           mib, reps);
    printf("| threads |");
    for (int k = 0; k < K_COUNT; k++)
        printf(" %s |", kname[k]);
    printf("\n|---|");
    for (int k = 0; k < K_COUNT; k++)
        printf("---|");
    printf("\n");
    for (int ti = 0; ti < nt; ti++) {
        printf("| %d |", tlist[ti]);
        for (int k = 0; k < K_COUNT; k++)
            printf(" %.2f (%.2f) |", best[ti][k], mean[ti][k]);
        printf("\n");
    }
    printf("\nbest read bandwidth: %.2f GB/s (%d threads)\n", best_read, best_read_t);
    return 0;
}
