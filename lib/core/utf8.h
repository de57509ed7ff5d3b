/* UTF-8 validation shared by the file readers (GGUF strings, JSON text). */
#ifndef SLIM_CORE_UTF8_H
#define SLIM_CORE_UTF8_H

#include <stddef.h>
#include <stdint.h>

/* Length of the valid UTF-8 sequence at s[0..n) (n >= 1), or 0 if it is not
 * one: a continuation byte, an overlong form, a surrogate, past U+10FFFF, or
 * cut short. */
static inline size_t slim_utf8_seq_len(const uint8_t *s, size_t n) {
    uint8_t c = s[0];
    if (c < 0x80) return 1;
    size_t len;
    uint32_t cp;
    if (c >= 0xC2 && c <= 0xDF) {
        len = 2;
        cp = c & 0x1Fu;
    } else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        cp = c & 0x0Fu;
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        cp = c & 0x07u;
    } else {
        return 0; /* a continuation byte, an overlong 2-byte lead (C0, C1) or F5..FF */
    }
    if (n < len) return 0;
    for (size_t k = 1; k < len; k++) {
        if ((s[k] & 0xC0u) != 0x80u) return 0;
        cp = cp << 6 | (s[k] & 0x3Fu);
    }
    if (len == 3 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) return 0;
    if (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)) return 0;
    return len;
}

#endif
