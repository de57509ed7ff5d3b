#include "slim.h"

unsigned slim_version_number(void) { return SLIM_VERSION_NUMBER; }
const char *slim_version_string(void) { return SLIM_VERSION_STRING; }
