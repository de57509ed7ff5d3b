#include "tokenizer/bigram_heap.h"

#include "core/grow.h"

static bool before(const slim_bigram *a, const slim_bigram *b) {
    return a->priority > b->priority || (a->priority == b->priority && a->left < b->left);
}

bool slim_bigram_push(slim_bigram_heap *h, slim_bigram b) {
    if (!slim_grow((void **)&h->v, &h->cap, h->n + 1, sizeof *h->v)) return false;
    size_t i = h->n++;
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!before(&b, &h->v[parent])) break;
        h->v[i] = h->v[parent];
        i = parent;
    }
    h->v[i] = b;
    return true;
}

slim_bigram slim_bigram_pop(slim_bigram_heap *h) {
    slim_bigram top = h->v[0], last = h->v[--h->n];
    size_t i = 0, n = h->n;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n) break;
        if (c + 1 < n && before(&h->v[c + 1], &h->v[c])) c++;
        if (!before(&h->v[c], &last)) break;
        h->v[i] = h->v[c];
        i = c;
    }
    if (n) h->v[i] = last;
    return top;
}
