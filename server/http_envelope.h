// http_envelope: what travels around a body rather than in it, for the front doors past v1
// JSON: compressed request bodies (Content-Encoding: gzip, deflate; the size limit applies to
// the decompressed bytes too), compressed answers (Accept-Encoding), Triton's
// Inference-Header-Content-Length in both directions, and the Open Inference Protocol's error
// style ({"error": "..."}) for every answer in its URL space, the server's refusals included.
// http_server calls it at three points: when a request begins (headers), on the compute worker
// around the codec, and when an answer is queued.
#ifndef HTTP_ENVELOPE_H
#define HTTP_ENVELOPE_H

#include <microhttpd.h>
#include <stdbool.h>
#include <stddef.h>

#include "api/api.h"
#include "server/http_router.h"

typedef struct {
    // From the request's headers ("" when absent).
    char content_encoding[32];
    char accept_encoding[128];
    char header_length[32]; // Inference-Header-Content-Length
    bool v2;                // the path is in the v2 protocol's URL space
    // Decided for the answer.
    const char *answer_encoding;   // "gzip" or "deflate" once the answer is compressed
    char answer_header_length[24]; // Inference-Header-Content-Length of a binary v2 answer
} http_envelope;

// Reads what the exchange needs from the request's headers (on the connection thread, while
// they are certain to be there).
void http_envelope_begin(http_envelope *ex, struct MHD_Connection *conn, const char *path);

// On the compute worker: decodes the body's Content-Encoding (415 for a coding other than
// gzip, deflate or identity; 400 for corrupt data; 413 past `max_body` decompressed bytes),
// runs `run`, notes a binary v2 answer's header length, and compresses the answer when
// Accept-Encoding asks. Always fills `out`.
void http_envelope_run(http_envelope *ex, api_response *out, http_body_fn run,
                       const http_body *body, const char *op, const api_options *opt,
                       size_t max_body);

// Just before an answer is queued (any thread): restyles errors under /v2, and compresses a
// small answer made on the connection thread (GET routes, refusals) when asked. Never fails:
// without memory the answer stays as it is.
void http_envelope_finish(http_envelope *ex, api_response *answer);

// Adds the answer's Content-Encoding, Vary and Inference-Header-Content-Length headers.
void http_envelope_headers(const http_envelope *ex, struct MHD_Response *resp);

#endif
