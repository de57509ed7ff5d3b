/* Shared by the file-parser fuzz targets (make fuzz, docs/RELIABILITY.md).
 * Every input must be taken or refused with a status and a message; a refusal
 * without a message, a crash, a leak or a sanitizer report is a failure.  The
 * targets run from the repository root (tests/data, models/). */
#ifndef SLIM_FUZZ_COMMON_H
#define SLIM_FUZZ_COMMON_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "slim.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A refusal must say why. */
static inline void fuzz_check(slim_status st) {
    if (st != SLIM_OK && !slim_last_error()[0]) abort();
}

/* A private scratch directory for inputs that are read from files. */
static inline const char *fuzz_dir(void) {
    static char dir[64];
    if (!dir[0]) {
        snprintf(dir, sizeof dir, "%s/slim-fuzz-XXXXXX",
                 access("/dev/shm", W_OK) ? "/tmp" : "/dev/shm");
        if (!mkdtemp(dir)) abort();
    }
    return dir;
}

/* dir/name with the given bytes; returns the path (static buffer per slot). */
static inline const char *fuzz_file(int slot, const char *name, const void *data, size_t size) {
    static char paths[4][512];
    char *p = paths[slot & 3];
    snprintf(p, sizeof paths[0], "%s/%s", fuzz_dir(), name);
    FILE *f = fopen(p, "wb");
    if (!f) abort();
    if (size && fwrite(data, 1, size, f) != size) abort();
    fclose(f);
    return p;
}

/* Link dir/name to a file of the repository (an absolute path). */
static inline void fuzz_link(const char *name, const char *repo_path) {
    char dst[512], src[1024], cwd[512];
    if (!getcwd(cwd, sizeof cwd)) abort();
    snprintf(dst, sizeof dst, "%s/%s", fuzz_dir(), name);
    snprintf(src, sizeof src, "%s/%s", cwd, repo_path);
    unlink(dst);
    if (symlink(src, dst)) abort();
}

/* The next part of `data` up to a separator byte sequence (or the end). */
static inline size_t fuzz_split(const uint8_t **data, size_t *size, const char *sep,
                                const uint8_t **part) {
    const size_t k = strlen(sep);
    *part = *data;
    for (size_t i = 0; i + k <= *size; i++)
        if (!memcmp(*data + i, sep, k)) {
            *data += i + k;
            *size -= i + k;
            return i;
        }
    size_t n = *size;
    *data += n;
    *size = 0;
    return n;
}

/* A NUL-terminated heap copy. */
static inline char *fuzz_strdup(const uint8_t *p, size_t n) {
    char *s = malloc(n + 1);
    if (!s) abort();
    memcpy(s, p, n);
    s[n] = 0;
    return s;
}

#endif
