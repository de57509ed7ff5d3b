/* Run-time CPU dispatch (kernels.h): the table of the level this CPU runs,
 * and behind it the entry points the rest of the library calls by name. */
#include "backend/cpu/kernels.h"
#include "core/cpu_features.h"

#if defined(SLIM_CPU_DISPATCH)
/* one per level the Makefile builds (CPU_LEVELS), in slim_cpu_level order */
SLIM_HIDDEN extern const slim_cpu_kernels slim_cpu_kernels_baseline;
#if defined(__x86_64__)
SLIM_HIDDEN extern const slim_cpu_kernels slim_cpu_kernels_avx2, slim_cpu_kernels_avx512;
static const slim_cpu_kernels *const levels[] = {&slim_cpu_kernels_baseline, &slim_cpu_kernels_avx2,
                                                 &slim_cpu_kernels_avx512};
#else
static const slim_cpu_kernels *const levels[] = {&slim_cpu_kernels_baseline};
#endif
enum { N_LEVELS = sizeof levels / sizeof levels[0] };

const slim_cpu_kernels *slim_cpu_kernels_active(void) {
    const int level = (int)slim_cpu_level_get();
    return levels[level < N_LEVELS ? level : N_LEVELS - 1];
}

/* The level objects keep these names local: the model calls them here. */
const slim_backend_ops *slim_backend_cpu(void) { return slim_cpu_kernels_active()->backend(); }
size_t slim_cpu_packed_size(const slim_tensor *t) {
    return slim_cpu_kernels_active()->packed_size(t);
}
void slim_cpu_pack(slim_tensor *t, void *dst) { slim_cpu_kernels_active()->pack(t, dst); }

#else /* one target: the functions keep their names */
SLIM_HIDDEN extern const slim_cpu_kernels slim_cpu_kernels_single;
const slim_cpu_kernels *slim_cpu_kernels_active(void) { return &slim_cpu_kernels_single; }
#endif

const slim_dtype_traits *slim_dtype_traits_of(int type) {
    if (type < 0 || type >= SLIM_DTYPE_COUNT) return NULL;
    return slim_cpu_kernels_active()->traits[type];
}
