// codec (api/codec/): the wire formats, each filling the one api_request from its bytes and
// writing the result back: v1 JSON (codec_json.h, with codec_json_parse.h lifting the number
// arrays out of the text), safetensors (codec_safetensors.h) and the Open Inference Protocol v2
// (codec_v2.h, with its own framing). All of them run the request through api_validate() and
// api_execute(): no op exists twice. This header is the v1 routes' side: a request in JSON or
// safetensors, answered in either (the client's Accept decides, the request's own format wins
// ties). The folder depends on api/ and api/num/ only.
//
// Tensors that arrive as raw bytes are used where they lie in the request body when the bytes
// are aligned for their dtype (safetensors writers align them); only misaligned bytes are copied,
// once. So the body must outlive the request that points into it.
#ifndef CODEC_H
#define CODEC_H

#include <stdbool.h>
#include <stddef.h>

#include "api/api.h"
#include "api/api_model.h"

typedef enum { CODEC_JSON, CODEC_BINARY } codec_format;

// The media types of the two formats.
extern const char codec_json_type[];   // "application/json"
extern const char codec_binary_type[]; // "application/octet-stream" (safetensors on v1 routes)

// The format the client asks for in `accept` (an Accept header value; "" or NULL when absent):
// the one of application/json and application/octet-stream with the higher q-value, wildcards
// (*/*, application/*) counting for both. `own` is the request's format, chosen on a tie, so a
// client that sends binary and says nothing gets binary back.
codec_format codec_negotiate(const char *accept, codec_format own);

// Runs one request of a v1 route: `body` is JSON or safetensors (`in`), `op_from_path` the
// route's op (NULL on the command line), `accept` picks the answer's format. Always fills `out`:
// the result, or the v1 error JSON (errors are JSON whatever the formats).
void codec_v1_run(api_response *out, codec_format in, const char *body, size_t len,
                  const char *accept, const char *op_from_path, const api_options *opt);

// Runs one v1 JSON request: codec_v1_run for a JSON body with no Accept (so a JSON answer).
// Never fails to produce a response: errors come back as the spec's error JSON.
void codec_run_json(api_response *out, const char *body, size_t len, const char *op_from_path,
                    const api_options *opt);

#endif
