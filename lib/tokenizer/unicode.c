/* Code point classes, lenient UTF-8 and GPT-2's byte map (see unicode.h). */
#include "tokenizer/unicode.h"

#include <stdbool.h>

uint16_t slim_unicode_flags(uint32_t cp) {
    /* ASCII fast path: the first ranges cover it; binary search otherwise */
    uint32_t lo = 0, hi = slim_unicode_n_ranges; /* ranges[lo].start <= cp < ranges[hi].start */
    if (cp >= 0x110000) return SLIM_UC_UNDEFINED;
    while (hi - lo > 1) {
        uint32_t mid = (lo + hi) / 2;
        if ((slim_unicode_ranges[mid] >> 9) <= cp)
            lo = mid;
        else
            hi = mid;
    }
    return (uint16_t)(slim_unicode_ranges[lo] & 0x1ff);
}

int slim_unicode_case_of(uint32_t cp) {
    if (cp < 0x80) return cp >= 'A' && cp <= 'Z' ? 1 : cp >= 'a' && cp <= 'z' ? 2 : 0;
    if (cp >= 0x110000) return 0;
    uint32_t lo = 0, hi = slim_unicode_n_case; /* case[lo].start <= cp < case[hi].start */
    while (hi - lo > 1) {
        uint32_t mid = (lo + hi) / 2;
        if ((slim_unicode_case[mid] >> 2) <= cp)
            lo = mid;
        else
            hi = mid;
    }
    return (int)(slim_unicode_case[lo] & 3);
}

uint32_t slim_unicode_tolower(uint32_t cp) {
    if (cp < 0x80) return cp >= 'A' && cp <= 'Z' ? cp + 32 : cp;
    uint32_t lo = 0, hi = slim_unicode_n_lower; /* the last run starting at or before cp */
    while (hi - lo > 1) {
        uint32_t mid = (lo + hi) / 2;
        if (slim_unicode_lower[mid].first <= cp)
            lo = mid;
        else
            hi = mid;
    }
    const slim_unicode_lower_run *r = &slim_unicode_lower[lo];
    if (cp < r->first) return cp;
    uint32_t k = (cp - r->first) / r->stride;
    if (k < r->count && r->first + k * r->stride == cp) return (uint32_t)((int32_t)cp + r->delta);
    return cp;
}

uint32_t slim_utf8_decode(const uint8_t *s, size_t n, size_t *used) {
    uint8_t c = s[0];
    size_t len = c < 0x80 ? 1 : c < 0xc0 ? 0 : c < 0xe0 ? 2 : c < 0xf0 ? 3 : c < 0xf8 ? 4 : 0;
    *used = 1;
    if (len == 1) return c;
    if (len == 0 || len > n) return 0xfffd;
    uint32_t cp = c & (0x7f >> len);
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80) return 0xfffd;
        cp = cp << 6 | (s[i] & 0x3f);
    }
    *used = len;
    return cp;
}

size_t slim_utf8_encode(uint32_t cp, uint8_t out[4]) {
    if (cp > 0x10ffff) cp = 0xfffd;
    if (cp < 0x80) {
        out[0] = (uint8_t)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (uint8_t)(0xc0 | cp >> 6);
        out[1] = (uint8_t)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (uint8_t)(0xe0 | cp >> 12);
        out[1] = (uint8_t)(0x80 | (cp >> 6 & 0x3f));
        out[2] = (uint8_t)(0x80 | (cp & 0x3f));
        return 3;
    }
    out[0] = (uint8_t)(0xf0 | cp >> 18);
    out[1] = (uint8_t)(0x80 | (cp >> 12 & 0x3f));
    out[2] = (uint8_t)(0x80 | (cp >> 6 & 0x3f));
    out[3] = (uint8_t)(0x80 | (cp & 0x3f));
    return 4;
}

/* Bytes that are printable Latin-1 stand for themselves ('!'..'~', U+00A1..
 * U+00AC, U+00AE..U+00FF); the other 68 get U+0100.. in byte order: 0x00..0x20,
 * then 0x7F..0xA0, then 0xAD. */
uint32_t slim_byte_to_cp(uint8_t b) {
    if (b <= 0x20) return 0x100u + b;
    if (b >= 0x7f && b <= 0xa0) return 0x121u + (b - 0x7fu);
    if (b == 0xad) return 0x143;
    return b;
}

int slim_cp_to_byte(uint32_t cp) {
    if (cp < 0x100) {
        bool printable = (cp >= 0x21 && cp <= 0x7e) || (cp >= 0xa1 && cp != 0xad);
        return printable ? (int)cp : -1;
    }
    if (cp <= 0x120) return (int)(cp - 0x100);
    if (cp <= 0x142) return (int)(cp - 0x121 + 0x7f);
    return cp == 0x143 ? 0xad : -1;
}
