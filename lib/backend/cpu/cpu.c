#include "backend/cpu/cpu.h"

static const slim_backend_ops cpu_ops = {
    .name = "cpu",
    .matmul = slim_cpu_matmul,
    .get_row = slim_cpu_get_row,
    .rmsnorm = slim_cpu_rmsnorm,
    .rope = slim_cpu_rope,
    .act_mul = slim_cpu_act_mul,
    .add = slim_cpu_add,
    .add_bias = slim_cpu_add_bias,
    .scale = slim_cpu_scale,
    .kv_store = slim_cpu_kv_store,
    .attention = slim_cpu_attention,
};

const slim_backend_ops *slim_backend_cpu(void) { return &cpu_ops; }
