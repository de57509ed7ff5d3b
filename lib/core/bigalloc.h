/* Large buffers that the CPU streams through (weights, a file read into
 * memory): 2 MiB-aligned and offered to transparent huge pages. */
#ifndef SLIM_CORE_BIGALLOC_H
#define SLIM_CORE_BIGALLOC_H

#include <stddef.h>

#include "core/error.h"

/* `bytes` of uninitialised memory (64-byte aligned), freed with free(); NULL
 * when out of memory.  At 2 MiB and more the whole 2 MiB pages of the buffer get
 * madvise(MADV_HUGEPAGE) before first touch: with THP in its common "madvise"
 * mode, memory that is not advised stays in 4 KiB pages, where each page is a
 * TLB miss and a stop for the hardware prefetcher of a weight stream. */
SLIM_HIDDEN void *slim_bigalloc(size_t bytes);

#endif
