#include "api/api_buf.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

bool api_buf_reserve(api_buf *b, size_t extra) {
    if (b->failed) return false;
    if (extra < b->cap - b->len) return true; // the '<' keeps a byte for the NUL
    size_t cap = b->cap ? b->cap : 256;
    while (cap - b->len <= extra) {
        if (cap > SIZE_MAX / 2) {
            b->failed = true;
            return false;
        }
        cap *= 2;
    }
    char *grown = realloc(b->data, cap);
    if (!grown) {
        b->failed = true;
        return false;
    }
    b->data = grown;
    b->cap = cap;
    api_hint_huge_pages(grown, cap);
    return true;
}

void api_hint_huge_pages(void *p, size_t bytes) {
    enum { HUGE = 2 << 20 };
    uintptr_t from = ((uintptr_t)p + HUGE - 1) & ~(uintptr_t)(HUGE - 1);
    uintptr_t to = ((uintptr_t)p + bytes) & ~(uintptr_t)(HUGE - 1);
    if (p && to > from) madvise((void *)from, to - from, MADV_HUGEPAGE);
}

void api_buf_put(api_buf *b, const char *s, size_t n) {
    if (!api_buf_reserve(b, n)) return;
    memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0';
}

void api_buf_puts(api_buf *b, const char *s) { api_buf_put(b, s, strlen(s)); }

void api_buf_printf(api_buf *b, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || !api_buf_reserve(b, (size_t)n)) return;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

// Length of the valid UTF-8 sequence at s (1-4), or 0 when it is not one.
static size_t utf8_sequence(const unsigned char *s) {
    if (s[0] < 0x80) return 1;
    size_t n = s[0] >= 0xF0 ? 4 : s[0] >= 0xE0 ? 3 : s[0] >= 0xC2 ? 2 : 0;
    if (n == 0 || s[0] > 0xF4) return 0;
    for (size_t i = 1; i < n; i++)
        if ((s[i] & 0xC0) != 0x80) return 0;
    uint32_t cp = s[0] & (0x7F >> n);
    for (size_t i = 1; i < n; i++) cp = cp << 6 | (s[i] & 0x3F);
    static const uint32_t least[5] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < least[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
    return n;
}

void api_buf_json_string(api_buf *b, const char *s) {
    api_buf_put(b, "\"", 1);
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        const unsigned char *run = p;
        while (*p >= 0x20 && *p < 0x80 && *p != '"' && *p != '\\') p++;
        api_buf_put(b, (const char *)run, (size_t)(p - run));
        if (!*p) break;
        if (*p == '"' || *p == '\\') {
            char esc[2] = {'\\', (char)*p++};
            api_buf_put(b, esc, 2);
        } else if (*p < 0x20) {
            api_buf_printf(b, "\\u%04x", *p++);
        } else {
            size_t n = utf8_sequence(p);
            if (n) {
                api_buf_put(b, (const char *)p, n);
                p += n;
            } else {
                api_buf_puts(b, "\\ufffd");
                p++;
            }
        }
    }
    api_buf_put(b, "\"", 1);
}

char *api_buf_take(api_buf *b, size_t *len) {
    char *data = b->failed ? NULL : b->data;
    if (b->failed) free(b->data);
    if (len) *len = data ? b->len : 0;
    *b = (api_buf){0};
    return data;
}

void api_buf_free(api_buf *b) {
    free(b->data);
    *b = (api_buf){0};
}
