/* A whole file, mapped read-only (MAP_PRIVATE) or read into a malloc'd buffer. */
#include "format/mmap.h"

#include "core/bigalloc.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

static slim_status io_error(const char *path, const char *what, int err) {
    return slim_error(SLIM_ERR_IO, "%s '%s': %s", what, path, strerror(err));
}

/* Read exactly `size` bytes from `fd` into `buf`, retrying short reads and EINTR. */
static slim_status read_all(int fd, const char *path, unsigned char *buf, size_t size) {
    size_t done = 0;
    while (done < size) {
        size_t chunk = size - done;
        if (chunk > ((size_t)1 << 30)) chunk = (size_t)1 << 30;
        ssize_t n = read(fd, buf + done, chunk);
        if (n < 0) {
            if (errno == EINTR) continue;
            return io_error(path, "read", errno);
        }
        if (n == 0)
            return slim_error(SLIM_ERR_IO, "read '%s': file shrank to %zu bytes while reading %zu",
                              path, done, size);
        done += (size_t)n;
    }
    return SLIM_OK;
}

slim_status slim_file_map_open(const char *path, bool use_mmap, slim_file_map *out) {
    if (!out) return slim_error(SLIM_ERR_INVALID_ARG, "slim_file_map_open: out is NULL");
    memset(out, 0, sizeof *out);
    if (!path) return slim_error(SLIM_ERR_INVALID_ARG, "slim_file_map_open: path is NULL");

    int fd;
    do
        fd = open(path, O_RDONLY | O_CLOEXEC);
    while (fd < 0 && errno == EINTR);
    if (fd < 0) return io_error(path, "open", errno);

    struct stat st;
    if (fstat(fd, &st) != 0) {
        slim_status s = io_error(path, "stat", errno);
        close(fd);
        return s;
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return slim_error(SLIM_ERR_IO, "open '%s': %s", path,
                          S_ISDIR(st.st_mode) ? strerror(EISDIR) : "not a regular file");
    }
    if (st.st_size < 0 || (uint64_t)st.st_size > (uint64_t)SIZE_MAX) {
        close(fd);
        return slim_error(SLIM_ERR_IO, "open '%s': %s", path, strerror(EFBIG));
    }
    size_t size = (size_t)st.st_size;
    if (size == 0) { /* empty: nothing to map (mmap of length 0 fails) */
        close(fd);
        return SLIM_OK;
    }

    if (use_mmap) {
        void *p = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (p == MAP_FAILED) {
            slim_status s = io_error(path, "mmap", errno);
            close(fd);
            return s;
        }
        close(fd); /* the mapping keeps the file referenced */
        out->data = p;
        out->size = size;
        out->mapped = true;
        return SLIM_OK;
    }

    unsigned char *buf = slim_bigalloc(size);
    if (!buf) {
        close(fd);
        return slim_error(SLIM_ERR_NOMEM, "read '%s': cannot allocate %zu bytes", path, size);
    }
    slim_status s = read_all(fd, path, buf, size);
    close(fd);
    if (s != SLIM_OK) {
        free(buf);
        return s;
    }
    out->data = buf;
    out->size = size;
    out->mapped = false;
    return SLIM_OK;
}

void slim_file_map_close(slim_file_map *map) {
    if (!map) return;
    if (map->data) {
        if (map->mapped)
            munmap((void *)map->data, map->size);
        else
            free((void *)map->data);
    }
    memset(map, 0, sizeof *map);
}
