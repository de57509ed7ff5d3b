/* Names and block layouts of the element types: facts of the formats, the same
 * at every CPU level, so they need no traits table (that one is per level,
 * backend/cpu/traits.c, and above this file). */
#include "quant/dtype.h"

#include "quant/blocks.h"

static const struct {
    const char *name;
    int32_t block_size;
    int32_t type_size;
} layout[SLIM_DTYPE_COUNT] = {
    [SLIM_DTYPE_F32] = {"F32", 1, 4},
    [SLIM_DTYPE_F16] = {"F16", 1, 2},
    [SLIM_DTYPE_BF16] = {"BF16", 1, 2},
    [SLIM_DTYPE_Q4_0] = {"Q4_0", SLIM_QK4_0, sizeof(block_q4_0)},
    [SLIM_DTYPE_Q4_1] = {"Q4_1", SLIM_QK4_1, sizeof(block_q4_1)},
    [SLIM_DTYPE_Q5_0] = {"Q5_0", SLIM_QK5_0, sizeof(block_q5_0)},
    [SLIM_DTYPE_Q5_1] = {"Q5_1", SLIM_QK5_1, sizeof(block_q5_1)},
    [SLIM_DTYPE_Q8_0] = {"Q8_0", SLIM_QK8_0, sizeof(block_q8_0)},
    [SLIM_DTYPE_Q8_1] = {"Q8_1", SLIM_QK8_1, sizeof(block_q8_1)},
    [SLIM_DTYPE_Q2_K] = {"Q2_K", SLIM_QK_K, sizeof(block_q2_K)},
    [SLIM_DTYPE_Q3_K] = {"Q3_K", SLIM_QK_K, sizeof(block_q3_K)},
    [SLIM_DTYPE_Q4_K] = {"Q4_K", SLIM_QK_K, sizeof(block_q4_K)},
    [SLIM_DTYPE_Q5_K] = {"Q5_K", SLIM_QK_K, sizeof(block_q5_K)},
    [SLIM_DTYPE_Q6_K] = {"Q6_K", SLIM_QK_K, sizeof(block_q6_K)},
    [SLIM_DTYPE_Q8_K] = {"Q8_K", SLIM_QK_K, sizeof(block_q8_K)},
};

static bool known(int type) { return type >= 0 && type < SLIM_DTYPE_COUNT && layout[type].name; }

size_t slim_dtype_row_size(slim_dtype type, int64_t n) {
    if (!known((int)type) || n < 0 || n % layout[type].block_size != 0) return 0;
    return (size_t)(n / layout[type].block_size) * (size_t)layout[type].type_size;
}

const char *slim_dtype_name(int type) { return known(type) ? layout[type].name : "?"; }

const char *slim_dtype_layout(int type, int32_t *block_size, int32_t *type_size) {
    if (!known(type)) return NULL;
    *block_size = layout[type].block_size;
    *type_size = layout[type].type_size;
    return layout[type].name;
}
