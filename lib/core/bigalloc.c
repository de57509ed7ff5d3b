#include "core/bigalloc.h"

#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>

enum { BIG_PAGE = 2 << 20 };

void *slim_bigalloc(size_t bytes) {
    if (bytes > SIZE_MAX - BIG_PAGE) return NULL;
    if (bytes < BIG_PAGE) return aligned_alloc(64, bytes ? (bytes + 63) & ~(size_t)63 : 64);
    const size_t rounded = (bytes + BIG_PAGE - 1) & ~(size_t)(BIG_PAGE - 1);
    void *p = aligned_alloc(BIG_PAGE, rounded);
#ifdef MADV_HUGEPAGE
    /* Only a hint: where the kernel has no THP this fails and nothing changes. */
    if (p) (void)madvise(p, rounded, MADV_HUGEPAGE);
#endif
    return p;
}
