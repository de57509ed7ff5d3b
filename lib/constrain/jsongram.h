/* JSON building blocks over the grammar builder (jsongram.c), shared by
 * json_object (compile.c), the regex compiler and the JSON Schema compiler. */
#ifndef SLIM_CONSTRAIN_JSONGRAM_H
#define SLIM_CONSTRAIN_JSONGRAM_H

#include "constrain/grammar.h"

typedef struct slim_cjson {
    slim_cgb *b;
    bool wsp;
    int32_t ws;      /* whitespace between tokens (empty when compact) */
    int32_t chr;     /* one string character, any code point, raw or escaped */
    int32_t hex4;    /* "u" and four hex digits */
    int32_t string;  /* a whole string */
    int32_t uint;    /* 0 | [1-9][0-9]* */
    int32_t integer; /* -? uint */
    int32_t number;
    int32_t boolean;
    int32_t null;
    int32_t value; /* any value, made on first use (slim_cjson_value) */
} slim_cjson;

SLIM_HIDDEN void slim_cjson_init(slim_cgb *b, slim_cjson *j, bool ws);
SLIM_HIDDEN int32_t slim_cjson_value(slim_cjson *j);
/* open ws (item (ws "," ws item)*)? ws close, with `item` any expression */
SLIM_HIDDEN int32_t slim_cjson_container(slim_cjson *j, const char *open, const char *close,
                                         int32_t item);

#endif
