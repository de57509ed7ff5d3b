/* On a machine with a GPU (built by make GPU=1): the whole model on the CUDA
 * backend against the CPU backend (backend_compare.h) for each GGUF named on
 * the command line.  --quantized FILE: held to top-1 agreement >= 80% and
 * mean KL <= 0.01 (8-bit activation roundings flip); otherwise every top-1
 * identical and relative error <= 2e-3 (float weights).  Prints one line per
 * model; exit 1 if any disagrees. */
#include <string.h>
#include <stdio.h>

#include "backend_compare.h"
#include "slim.h"

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: gpu_compare [--quantized] MODEL.gguf ...\n");
        return 2;
    }
    int failed = 0, quantized = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--quantized")) {
            quantized = 1;
            continue;
        }
        backend_compare_result r;
        int rc = backend_compare(argv[i], SLIM_BACKEND_CUDA, BACKEND_COMPARE_TOL_FLOAT, !quantized,
                                 1, &r);
        if (!rc && quantized && (r.top1_same < 0.8 * r.positions || r.mean_kl > 0.01)) {
            snprintf(r.why, sizeof r.why, "top-1 same at %d of %d, mean KL %.3g", r.top1_same,
                     r.positions, r.mean_kl);
            rc = 1;
        }
        printf("%s %s: %d positions, top-1 same at %d; max relative logit error prefill %.2e, "
               "decode %.2e; mean KL %.2e%s%s\n",
               rc ? "FAIL" : "ok  ", argv[i], r.positions, r.top1_same, r.worst_prefill,
               r.worst_decode, r.mean_kl, rc ? ": " : "", rc ? r.why : "");
        failed += rc;
        quantized = 0;
    }
    return failed ? 1 : 0;
}
