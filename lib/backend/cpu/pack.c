/* Weight placement for the CPU: which matmul weights are repacked at load
 * into the layout of a faster kernel (docs/PERFORMANCE.md has the figures
 * that decided it).  Today: Q4_0 with whole groups of 16 rows, where the
 * build has the AVX-512 VNNI kernel. */
#include "backend/cpu/cpu.h"
#include "quant/q4_0_x16.h"

size_t slim_cpu_packed_size(const slim_tensor *t) {
    if (!t->name || t->packed || t->type != SLIM_DTYPE_Q4_0 || !slim_q4_0x16_available()) return 0;
    if (t->ne[1] <= 0 || t->ne[1] % SLIM_X16_ROWS || t->ne[2] != 1 || t->ne[3] != 1) return 0;
    return slim_q4_0x16_size(t->ne[0], t->ne[1]);
}

void slim_cpu_pack(slim_tensor *t, void *dst) {
    slim_q4_0x16_pack(t->data, t->nb[1], t->ne[0], t->ne[1], dst);
    t->packed = dst;
}
