/* A whole file, mapped read-only (or read into memory). */
#ifndef SLIM_FORMAT_MMAP_H
#define SLIM_FORMAT_MMAP_H

#include <stdbool.h>
#include <stddef.h>

#include "core/error.h"

typedef struct slim_file_map {
    const void *data; /* NULL for an empty file */
    size_t size;
    bool mapped; /* true: munmap on release; false: free() */
} slim_file_map;

/* Map `path` (use_mmap) or read it into an allocation.  Errors name the path. */
SLIM_HIDDEN slim_status slim_file_map_open(const char *path, bool use_mmap, slim_file_map *out);
SLIM_HIDDEN void slim_file_map_close(slim_file_map *map);

#endif
