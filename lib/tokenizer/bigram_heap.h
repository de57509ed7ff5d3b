/* The merge queue both BPE tokenizers share: pending merges of two adjacent
 * symbols, popped highest priority first, ties to the leftmost.  SentencePiece
 * merges by score (priority = score), byte-level BPE by merge rank (priority =
 * -rank; ranks stay below 2^24, exact in a float). */
#ifndef SLIM_TOKENIZER_BIGRAM_HEAP_H
#define SLIM_TOKENIZER_BIGRAM_HEAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/error.h"

typedef struct slim_bigram {
    int32_t left, right; /* symbol indices */
    float priority;
    size_t size; /* bytes of the merged piece, to spot stale entries */
} slim_bigram;

typedef struct slim_bigram_heap {
    slim_bigram *v;
    size_t n, cap;
} slim_bigram_heap;

/* false: out of memory (the heap is unchanged). */
SLIM_HIDDEN bool slim_bigram_push(slim_bigram_heap *h, slim_bigram b);
/* The next merge; the heap must not be empty. */
SLIM_HIDDEN slim_bigram slim_bigram_pop(slim_bigram_heap *h);

#endif
