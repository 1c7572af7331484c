// http_log: the server's log on stderr, one JSON object per line, so that log collectors parse
// it without patterns. Access lines are gathered in a buffer and written in blocks (a write per
// request costs ~15% of the requests/s of small requests), at most ~0.1 s late: when the block
// fills, when a line finds the oldest one 0.1 s old, or on http_log_flush, which the server's
// main loop calls every 0.1 s. Events are written at once, after what is buffered, so order
// holds. Lines never interleave.
#ifndef HTTP_LOG_H
#define HTTP_LOG_H

#include <stddef.h>
#include <stdint.h>

// One answered request. Strings are client-controlled and are escaped. queue_ms/compute_ms
// are negative (and left out of the line) when the request never reached a compute worker.
typedef struct {
    const char *remote, *method, *path;
    int status;
    uint64_t bytes_in, bytes_out;
    double queue_ms, compute_ms, total_ms;
    int threads;             // CPU threads the compute used; 0 when it did not compute
    const char *termination; // why no answer went out ("timeout", ...); NULL when one did
} http_access;

// {"ts":"2024-05-01T12:00:00.123Z","event":"access","remote":...,"method":...,"path":...,
//  "status":200,"bytes_in":..,"bytes_out":..,"queue_ms":..,"compute_ms":..,"threads":..,
//  "total_ms":..}, with "termination":"timeout" (or client_closed, error, shutdown) and status
//  0 when the request ended without an answer.
void http_log_access(const http_access *a);

// {"ts":...,"event":EVENT,"message":MESSAGE} for start, drain, stop and library messages.
void http_log_event(const char *event, const char *message);

// Writes out the access lines gathered so far.
void http_log_flush(void);

// Writes `src` as the inside of a JSON string (quotes not included) into `dst` of `cap` bytes,
// truncating on a character boundary; always NUL-terminates. Returns the length written.
size_t http_json_escape(char *dst, size_t cap, const char *src);

#endif
