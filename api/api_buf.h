// api_buf: a growable byte buffer for building response bodies. A failed allocation is
// remembered (`failed`) instead of reported at every call, so writers run straight through and
// check once at the end; after a failure further writes are dropped.
#ifndef API_BUF_H
#define API_BUF_H

#include <stdbool.h>
#include <stddef.h>

typedef struct {
    char *data; // heap, owned; NUL-terminated whenever len > 0 and !failed
    size_t len, cap;
    bool failed;
} api_buf;

// Makes room for `extra` more bytes (plus a NUL); returns false (and sets failed) without memory.
bool api_buf_reserve(api_buf *b, size_t extra);
void api_buf_put(api_buf *b, const char *s, size_t n);
void api_buf_puts(api_buf *b, const char *s);
void api_buf_printf(api_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
// `s` as a JSON string literal, quotes included; bytes that are not valid UTF-8 become U+FFFD.
void api_buf_json_string(api_buf *b, const char *s);
// Asks for huge pages under the 2 MiB-aligned part of [p, p + bytes). Filling megabytes of
// fresh memory 4 KiB page by page costs a page fault each, a fifth of the time of decoding or
// encoding a big tensor on a VM; huge pages cut that 500-fold where the kernel offers them
// (transparent huge pages in "madvise" mode). Only a hint: nothing changes where it is not.
void api_hint_huge_pages(void *p, size_t bytes);

// Hands the bytes over (the caller frees them) and leaves b empty; NULL when b failed.
char *api_buf_take(api_buf *b, size_t *len);
void api_buf_free(api_buf *b);

#endif
