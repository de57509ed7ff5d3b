/* Shared by the constraint fuzz targets: compile, then (if it compiled) run
 * a matcher over a byte vocabulary for a few steps, so the matcher meets the
 * fuzzed grammars too.  Every input must compile or fail with a message. */
#include <stdlib.h>
#include <string.h>

#include "constrain/constrain.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fuzz_constraint(slim_constraint_kind kind, const uint8_t *data, size_t size) {
    slim_cgrammar *g = NULL;
    slim_status st = slim_constrain_compile(kind, (const char *)data, size, NULL, &g);
    if (st != SLIM_OK) {
        if (g || !slim_last_error()[0]) abort();
        return;
    }
    static slim_ctokens *t;
    if (!t) {
        uint8_t kind_[257], bytes[256];
        uint32_t off[258];
        for (int i = 0; i < 256; i++)
            kind_[i] = SLIM_CTOK_TEXT, off[i] = (uint32_t)i, bytes[i] = (uint8_t)i;
        kind_[256] = SLIM_CTOK_EOS;
        off[256] = off[257] = 256;
        if (slim_ctokens_new(257, kind_, off, bytes, &t) != SLIM_OK) abort();
    }
    slim_cmatch *m = NULL;
    if (slim_cmatch_new(g, t, &m) == SLIM_OK) {
        int32_t s = slim_cmatch_start(m);
        for (int step = 0; step < 24 && s >= 0; step++) {
            const uint32_t *mask = slim_cmatch_mask(m, s, NULL);
            int32_t pick = -1;
            for (int tok = (int)(step * 37 % 256), k = 0; k < 256; k++, tok = (tok + 1) % 256)
                if ((mask[tok >> 5] >> (tok & 31)) & 1) {
                    pick = tok;
                    break;
                }
            if (pick < 0) break;
            int32_t x = slim_cmatch_advance_token(m, s, pick);
            if (x < 0) abort(); /* the mask allowed it */
            s = x;
        }
        slim_cmatch_free(m);
    }
    slim_cgrammar_free(g);
}
