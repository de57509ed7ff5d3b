/* How busy other processes kept the machine during a measurement, for `slim bench`: the CPU time
 * all CPUs spent busy (/proc/stat, including time a hypervisor stole) less this process's own
 * CPU time, over the wall time.  On a shared machine the figures of a benchmark say little
 * without it: one busy core halves what two threads can do. */
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

/* Busy and all jiffies of the machine's "cpu" line; 0 if /proc/stat cannot be read. */
static int read_stat(unsigned long long *busy) {
    FILE *f = fopen("/proc/stat", "r");
    if (!f) return 0;
    /* user nice system idle iowait irq softirq steal (guest time is part of user) */
    unsigned long long v[8] = {0};
    const int n = fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2],
                         &v[3], &v[4], &v[5], &v[6], &v[7]);
    fclose(f);
    if (n < 4) return 0;
    *busy = v[0] + v[1] + v[2] + v[5] + v[6] + v[7];
    return 1;
}

static double clock_s(clockid_t id) {
    struct timespec ts;
    if (clock_gettime(id, &ts)) return 0;
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

void cli_load_start(cli_load *l) {
    memset(l, 0, sizeof *l);
    l->ok = read_stat(&l->busy);
    l->wall_s = clock_s(CLOCK_MONOTONIC);
    l->self_s = clock_s(CLOCK_PROCESS_CPUTIME_ID);
}

double cli_load_others(const cli_load *start, int *n_cpus) {
    const long online = sysconf(_SC_NPROCESSORS_ONLN);
    const long hz = sysconf(_SC_CLK_TCK);
    *n_cpus = online > 0 ? (int)online : 0;
    unsigned long long busy;
    const double wall = clock_s(CLOCK_MONOTONIC) - start->wall_s;
    const double self = clock_s(CLOCK_PROCESS_CPUTIME_ID) - start->self_s;
    if (!start->ok || hz <= 0 || wall <= 0 || !read_stat(&busy)) return -1;
    const double others = ((double)(busy - start->busy) / (double)hz - self) / wall;
    return others > 0 ? others : 0; /* jiffies are coarse: a short idle run can come out below */
}

double cli_load_warn(const cli_load *start, const char *who, int *n_cpus) {
    const double others = cli_load_others(start, n_cpus);
    if (others >= 0 && others >= 0.1 * *n_cpus)
        fprintf(stderr,
                "%s: warning: the machine was loaded: other processes kept %.2f of its %d CPUs "
                "busy during the measurement, so these figures are below an idle machine's\n",
                who, others, *n_cpus);
    return others;
}
