/* The whole model on a device backend against the CPU backend, through the
 * public API: one GGUF loaded twice, a 32-token prefill with every position's
 * logits, then 16 decode steps fed the CPU's greedy token (on CUDA the first
 * is recorded as a graph, the rest replay it).  At every position the top-1
 * token must be the CPU's and
 *   rel err = max_i |dev_i - cpu_i| / max_i |cpu_i|  <=  tol
 * (BACKEND_COMPARE_TOL_FLOAT for float weights: the backends then differ by
 * summation order and the f16 rounding of q and P in flash attention).  With
 * quantized weights a last-bit float difference can flip an activation's
 * 8-bit rounding, and the flips add up over layers and positions: callers
 * hold those to statistics (top-1 agreement, mean KL) instead.
 * Used by the emulator test (tests/cudasim/test_ops_model.cc) and on a GPU by
 * tests/gpu/gpu_compare.c. */
#ifndef SLIM_TESTS_BACKEND_COMPARE_H
#define SLIM_TESTS_BACKEND_COMPARE_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

#define BACKEND_COMPARE_TOL_FLOAT 2e-3
enum { BACKEND_COMPARE_PREFILL = 32, BACKEND_COMPARE_DECODE = 16 };

typedef struct backend_compare_result {
    double worst_prefill, worst_decode; /* largest relative logit error seen */
    double mean_kl;                     /* mean KL(cpu || device) of the softmaxes, nats */
    int positions;                      /* positions compared */
    int top1_same;                      /* positions whose top-1 tokens agree */
    char why[512];                      /* the first failure, "" if none */
} backend_compare_result;

/* Runs the comparison and fills r.  all_logits: compare every prefill
 * position (else only the last: a 262k vocabulary makes the output matrix
 * for 32 rows the bulk of an emulated run).  strict: fail (return 1, r->why set) at
 * the first position whose top-1 differs or whose relative error exceeds tol;
 * otherwise only a run error fails and r holds the statistics. */
int backend_compare(const char *path, int backend, double tol, int strict, int all_logits,
                    backend_compare_result *r);

#ifdef __cplusplus
}
#endif

#endif
