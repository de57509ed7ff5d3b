/* The constraint tokens of a model vocabulary (apart from tokens.c so the
 * fuzz targets link without the tokenizer). */
#include "constrain/constrain.h"

#include <stdlib.h>
#include <string.h>

#include "core/grow.h"
#include "tokenizer/tokenizer.h"

slim_status slim_ctokens_from_vocab(const slim_vocab *v, slim_ctokens **out) {
    *out = NULL;
    int32_t n = slim_vocab_size(v);
    if (n <= 0) return slim_error(SLIM_ERR_INVALID_ARG, "constraint tokens: empty vocabulary");
    uint8_t *kind = malloc((size_t)n);
    uint32_t *off = malloc(sizeof(uint32_t) * ((size_t)n + 1));
    uint8_t *bytes = NULL;
    size_t capb = 0, nb = 0;
    slim_status st = SLIM_OK;
    if (!kind || !off) {
        st = slim_error(SLIM_ERR_NOMEM, "constraint tokens: out of memory");
        goto done;
    }
    for (int32_t i = 0; i < n; i++) {
        off[i] = (uint32_t)nb;
        char buf[1024];
        size_t len = 0;
        /* control / unknown / unused tokens render as nothing without the
         * special flag: they are never allowed as text */
        st = slim_vocab_token_to_piece(v, i, 0, buf, sizeof buf, &len);
        if (st == SLIM_ERR_BUFFER_TOO_SMALL)
            len = 0; /* a >1 KiB piece: never */
        else if (st != SLIM_OK)
            goto done;
        st = SLIM_OK;
        if (slim_vocab_is_eog(v, i))
            kind[i] = SLIM_CTOK_EOS, len = 0;
        else
            kind[i] = len ? SLIM_CTOK_TEXT : SLIM_CTOK_NEVER;
        if (!slim_grow((void **)&bytes, &capb, nb + len + 1, 1)) {
            st = slim_error(SLIM_ERR_NOMEM, "constraint tokens: out of memory");
            goto done;
        }
        memcpy(bytes + nb, buf, len);
        nb += len;
    }
    off[n] = (uint32_t)nb;
    st = slim_ctokens_new(n, kind, off, bytes, out);
done:
    free(kind);
    free(off);
    free(bytes);
    return st;
}
