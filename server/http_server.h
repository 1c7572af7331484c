// http_server: the HTTP front door. libmicrohttpd's polling threads (epoll) do connection I/O
// only; a complete body is handed to the compute pool (http_pool) while its connection is
// suspended, and the connection is resumed with the answer. Limits are checked as early as
// the bytes allow: Content-Length before anything is read, streamed bytes as they arrive,
// queue room and the memory budget before a body is buffered and again before it is computed.
#ifndef HTTP_SERVER_H
#define HTTP_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "server/http_config.h"

typedef struct http_server http_server;

// Starts serving with a copy of `cfg`; the log (one JSON line per event) goes to stderr.
// Returns NULL with a reason in `err` when the address cannot be bound or resources fail.
http_server *http_server_start(const http_config *cfg, char *err, size_t err_cap);

// The port actually bound (the one chosen by the system when cfg->port was 0).
uint16_t http_server_port(const http_server *s);

const http_config *http_server_config(const http_server *s);

// Starts draining: /readyz answers 503, new compute requests get 503 (with Connection: close),
// admitted ones go on. Idempotent.
void http_server_drain(http_server *s);
bool http_server_draining(const http_server *s);

// Compute requests admitted and not yet fully answered.
long http_server_inflight(const http_server *s);

// Answers every request still waiting for a worker with 503 (draining ran out of time).
// Returns how many.
size_t http_server_cancel_waiting(http_server *s);

// The GET /metrics text (heap-allocated; NULL when out of memory).
char *http_server_metrics_text(http_server *s, size_t *len);

// Stops listening, closes every connection, joins every thread and frees the server.
// Returns false, doing nothing, while a compute request is still admitted (its connection is
// suspended, and libmicrohttpd cannot be stopped under it).
bool http_server_stop(http_server *s);

#endif
