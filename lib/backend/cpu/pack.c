/* Weight placement for the CPU: which matmul weights are repacked at load
 * into the layout of a faster kernel (docs/PERFORMANCE.md has the figures
 * that decided it): Q4_0, Q8_0, Q4_K and Q6_K in groups of 16 rows (AVX-512 VNNI builds), F16 and
 * BF16 in groups of 64 (AVX-512 builds).  Other formats, and matrices whose
 * rows do not fill whole groups, stay as the file has them. */
#include "backend/cpu/cpu.h"
#include "quant/dtype.h"
#include "quant/half_x64.h"
#include "quant/legacy_x16.h"
#include "quant/q4_k_x16.h"
#include "quant/q6_k_x16.h"

size_t slim_cpu_packed_size(const slim_tensor *t) {
    if (!t->name || t->packed || t->ne[1] <= 0 || t->ne[2] != 1 || t->ne[3] != 1) return 0;
    /* every layout but Q4_K's (scales unpacked) is the file's bytes reordered */
    const size_t same = slim_dtype_row_size(t->type, t->ne[0]) * (size_t)t->ne[1];
    const bool x16 = t->ne[1] % SLIM_X16_ROWS == 0;
    switch (t->type) {
    case SLIM_DTYPE_Q4_0:
    case SLIM_DTYPE_Q8_0: return slim_q4_0x16_available() && x16 ? same : 0;
    case SLIM_DTYPE_Q4_K:
        return slim_q4_kx16_available() && x16 ? slim_q4_kx16_size(t->ne[0], t->ne[1]) : 0;
    case SLIM_DTYPE_Q6_K: return slim_q6_kx16_available() && x16 ? same : 0;
    case SLIM_DTYPE_F16:
    case SLIM_DTYPE_BF16:
        return slim_half_x64_available() && t->ne[1] % SLIM_X64_ROWS == 0 ? same : 0;
    default: return 0;
    }
}

void slim_cpu_pack(slim_tensor *t, void *dst) {
    if (t->type == SLIM_DTYPE_Q4_0)
        slim_q4_0x16_pack(t->data, t->nb[1], t->ne[0], t->ne[1], dst);
    else if (t->type == SLIM_DTYPE_Q8_0)
        slim_q8_0x16_pack(t->data, t->nb[1], t->ne[0], t->ne[1], dst);
    else if (t->type == SLIM_DTYPE_Q4_K)
        slim_q4_kx16_pack(t->data, t->nb[1], t->ne[0], t->ne[1], dst);
    else if (t->type == SLIM_DTYPE_Q6_K)
        slim_q6_kx16_pack(t->data, t->nb[1], t->ne[0], t->ne[1], dst);
    else
        slim_half_x64_pack(t->data, t->nb[1], t->ne[0], t->ne[1], dst);
    t->packed = dst;
}
