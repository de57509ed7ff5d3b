#include "constrain/constrain.h"
slim_status slim_schema_build(slim_cgb *b, const char *text, size_t len,
                              const slim_constraint_opts *opts, int32_t *root) {
    return slim_error(SLIM_ERR_UNSUPPORTED, "json schema: not yet");
}
