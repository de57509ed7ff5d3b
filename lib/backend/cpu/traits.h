/* This CPU level's traits table (traits.c), for the level's own files and its
 * kernels table; elsewhere use slim_dtype_traits_of (the active level's). */
#ifndef SLIM_BACKEND_CPU_TRAITS_H
#define SLIM_BACKEND_CPU_TRAITS_H

#include "quant/dtype.h"

SLIM_HIDDEN extern const slim_dtype_traits *const slim_cpu_traits[SLIM_DTYPE_COUNT];
/* This level's traits of a type, or NULL if the id is not a type slim knows. */
SLIM_HIDDEN const slim_dtype_traits *slim_cpu_traits_of(int type);

#endif
