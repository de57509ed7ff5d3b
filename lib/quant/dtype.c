/* Sizes and names of the element types.  The traits table itself is per CPU
 * level (backend/cpu/kernels.c); slim_dtype_traits_of is in backend/cpu/dispatch.c. */
#include "quant/dtype.h"

size_t slim_dtype_row_size(slim_dtype type, int64_t n) {
    const slim_dtype_traits *t = slim_dtype_traits_of((int)type);
    if (!t || n < 0 || n % t->block_size != 0) return 0;
    return (size_t)(n / t->block_size) * (size_t)t->type_size;
}

const char *slim_dtype_name(int type) {
    const slim_dtype_traits *t = slim_dtype_traits_of(type);
    return t ? t->name : "?";
}
