// http_guard: keeps slow clients from holding the connection cap. libmicrohttpd's --timeout
// is an idle timeout: a client that sends one byte of its headers or body every few seconds
// is never idle, and a thousand of them fill every connection slot (slowloris). The guard
// knows each connection's phase and ends (shutdown(2) of its socket, which libmicrohttpd then
// closes as a hang-up) one that
//   - has not finished its request line and headers within `header_timeout_s` of the
//     connection opening or its previous answer (a total time, not an idle one);
//   - sends its body slower than `min_body_rate` bytes per second on average, once
//     `header_timeout_s` of the body has passed, or sends none of it for `header_timeout_s`
//     (stalled, or half-closed: what it holds is released then, not at --timeout);
//   - is the oldest still in its headers when the connections reach the cap, to make room
//     for the one arriving (so /healthz and small requests always get a slot).
// Connections being computed or answered are never touched. A sweeper thread checks the
// deadlines four times a second.
#ifndef HTTP_GUARD_H
#define HTTP_GUARD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct http_guard http_guard;
typedef struct http_guard_conn http_guard_conn;

// NULL without memory or a thread. `max_connections` is the cap given to libmicrohttpd.
http_guard *http_guard_create(unsigned max_connections, double header_timeout_s,
                              double min_body_rate);
void http_guard_free(http_guard *g);

// A connection opened on socket `fd` (libmicrohttpd's NOTIFY_STARTED); NULL without memory
// (the connection is then not guarded). Evicts the oldest connection still in its headers
// when the open connections are close to the cap.
http_guard_conn *http_guard_open(http_guard *g, int fd);
// The connection is closed (NOTIFY_CLOSED): forget it. NULL is allowed.
void http_guard_close(http_guard *g, http_guard_conn *c);

// The phases of a connection, each reported by the request code (NULL c is allowed).
void http_guard_headers_done(http_guard_conn *c, bool body_follows); // headers are complete
void http_guard_body_bytes(http_guard_conn *c, uint64_t total);      // body read so far
void http_guard_busy(http_guard_conn *c); // body complete: computing or answering
void http_guard_idle(http_guard_conn *c); // answered: waiting for the next request

// Bodies being sent at once by one client address, capped at `max` (0: no cap): false when the
// address is at the cap (the upload is then not counted). Each true begin needs its end.
bool http_guard_upload_begin(http_guard *g, const char *address, int max);
void http_guard_upload_end(http_guard *g, const char *address);

// Connections the guard has ended so far, by reason (for /metrics and tests).
typedef struct {
    uint64_t header_timeouts, slow_bodies, evicted;
} http_guard_counts;
http_guard_counts http_guard_counters(const http_guard *g);

#endif
