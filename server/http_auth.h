// http_auth: access control for public deployments. Optional API keys (compute routes then need
// `Authorization: Bearer <key>`; 401 with WWW-Authenticate otherwise) and a per-key rate limit
// (a token bucket; 429 with Retry-After beyond it). Health and other GET routes stay open: a
// load balancer or Kubernetes probes them without credentials.
//
// The key file has one key per line, either the key itself or `sha256:` and the SHA-256 of the
// key in hex (so the file need not hold secrets). Blank lines and lines starting with '#' are
// skipped. Keys are kept as SHA-256 digests only and compared in constant time.
#ifndef HTTP_AUTH_H
#define HTTP_AUTH_H

#include <microhttpd.h>
#include <stdbool.h>
#include <stddef.h>

#include "api/api.h"

typedef struct http_auth http_auth;

// Reads the keys of `keys_path` ("" = no keys: every request is admitted) and sets a limit of
// `rate` compute requests per second per key (0 = none) with bursts of `burst` (0 = rate
// rounded up, at least 1). A rate needs keys. Returns NULL with the reason (the file, the line)
// in `err` for an unreadable file, a malformed or too short key, a file without keys, or a
// rate without keys. The caller frees the result with http_auth_free.
http_auth *http_auth_create(const char *keys_path, double rate, int burst, char *err,
                            size_t err_cap);

void http_auth_free(http_auth *a);

// Whether a compute request whose Authorization header is `authorization` ("" when absent) may
// go on; takes one request from its key's bucket when it does. On refusal fills `out` with the
// spec's error body (401 unauthorized, 429 rate_limited; the caller frees out->body) and sets
// *retry_after_s for a 429. Thread-safe.
bool http_auth_admit(http_auth *a, const char *authorization, api_response *out,
                     int *retry_after_s);

// The headers a refusal of http_auth_admit needs: WWW-Authenticate on a 401, Retry-After on a
// 429 (`retry_after_s`). Adds nothing for other statuses.
void http_auth_headers(struct MHD_Response *resp, int status, int retry_after_s);

#endif
