/* pool: the thread pool's cost per run (lib/core/threadpool.c), the price of
 * each op a forward pass hands to the pool (a decode step of a 30-layer model
 * runs ~150 of them).
 *
 * For each thread count, -n runs of slim_threadpool_run back to back whose
 * parts do nothing (empty) or spin for -w ns each (work: the cost is then the
 * time above -w).  Each run is timed alone and the 10th, 50th and 90th
 * percentiles reported, in ns per run: on a shared machine a batch's mean is
 * all descheduling, while most single runs see none.  Also the share of runs
 * the pool ran with fewer threads than asked (its contention monitor).
 *
 * usage: pool [-t 1,2] [-n RUNS] [-w NS]
 * build: make bench-pool   (-> build/pool; links build/libslim.a) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/threadpool.h"

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static void empty(void *arg, int ith, int nth) { (void)arg, (void)ith, (void)nth; }

static void spin(void *arg, int ith, int nth) {
    (void)ith, (void)nth;
    const double end = now() + *(const double *)arg;
    while (now() < end) {
    }
}

static int cmp(const void *a, const void *b) {
    const double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv) {
    const char *tlist = "1,2";
    int runs = 200000;
    double work_ns = 2000;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "-t"))
            tlist = argv[i + 1];
        else if (!strcmp(argv[i], "-n"))
            runs = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "-w"))
            work_ns = atof(argv[i + 1]);
        else {
            fprintf(stderr, "usage: pool [-t 1,2] [-n RUNS] [-w NS]\n");
            return 2;
        }
    }
    if (runs < 10 || work_ns < 0) {
        fprintf(stderr, "pool: -n must be >= 10, -w >= 0\n");
        return 2;
    }
    double *ns = malloc((size_t)runs * sizeof *ns);
    if (!ns) return 1;
    printf("| threads | parts | ns per run p10 | p50 | p90 | runs with fewer threads |\n"
           "|---|---|---|---|---|---|\n");
    for (const char *p = tlist; *p;) {
        char *end;
        const long nt = strtol(p, &end, 10);
        if (end == p || nt < 1) {
            fprintf(stderr, "pool: bad -t %s\n", tlist);
            return 2;
        }
        p = *end == ',' ? end + 1 : end;
        slim_threadpool *pool;
        if (slim_threadpool_create((int)nt, &pool)) {
            fprintf(stderr, "pool: %s\n", slim_last_error());
            return 1;
        }
        const double work_s = work_ns * 1e-9;
        for (int kind = 0; kind < 2; kind++) {
            slim_task_fn fn = kind ? spin : empty;
            int fewer = 0;
            for (int i = 0; i < runs / 10; i++) /* warm-up: wake the workers */
                slim_threadpool_run(pool, fn, (void *)&work_s);
            for (int i = 0; i < runs; i++) {
                const double t0 = now();
                slim_threadpool_run(pool, fn, (void *)&work_s);
                ns[i] = (now() - t0) * 1e9 - (kind ? work_ns : 0);
                fewer += slim_threadpool_active(pool) < nt;
            }
            qsort(ns, (size_t)runs, sizeof ns[0], cmp);
            printf("| %ld | %s | %.0f | %.0f | %.0f | %.1f%% |\n", nt,
                   kind ? "spin -w ns (cost above it)" : "empty", ns[runs / 10], ns[runs / 2],
                   ns[runs * 9 / 10], 100.0 * fewer / runs);
        }
        slim_threadpool_free(pool);
    }
    free(ns);
    return 0;
}
