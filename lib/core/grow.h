/* Growing an array in place: the one helper for "make room for need items". */
#ifndef SLIM_CORE_GROW_H
#define SLIM_CORE_GROW_H

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

/* Make *p hold at least `need` items of `elem` bytes (capacity doubling from
 * 256); false on overflow or out of memory, with *p and *cap unchanged. */
static inline bool slim_grow(void **p, size_t *cap, size_t need, size_t elem) {
    if (need <= *cap) return true;
    size_t ncap = *cap ? *cap : 256;
    while (ncap < need) {
        if (ncap > SIZE_MAX / 2) return false;
        ncap *= 2;
    }
    if (ncap > SIZE_MAX / elem) return false;
    void *q = realloc(*p, ncap * elem);
    if (!q) return false;
    *p = q;
    *cap = ncap;
    return true;
}

#endif
