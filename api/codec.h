// codec: what the front doors beyond v1 JSON share. The v1 routes take a request in JSON or
// safetensors and answer in either (the client's Accept decides, the request's own format wins
// ties); the Open Inference Protocol v2 door (api/codec_v2.h) has its own framing. All of them
// fill the one api_request and run it through api_validate() and api_execute(): no op exists
// twice.
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

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "binary tensors are little-endian on the wire and are used in place: a little-endian host is needed"
#endif

typedef enum { CODEC_JSON, CODEC_BINARY } codec_format;

// The media types of the two formats.
extern const char codec_json_type[];   // "application/json"
extern const char codec_binary_type[]; // "application/octet-stream" (safetensors on v1 routes)

// The format the client asks for in `accept` (an Accept header value; "" or NULL when absent):
// the one of application/json and application/octet-stream with the higher q-value, wildcards
// (*/*, application/*) counting for both. `own` is the request's format, chosen on a tie, so a
// client that sends binary and says nothing gets binary back.
codec_format codec_negotiate(const char *accept, codec_format own);

// Points *t (its shape already set, numel elements) at `bytes`, little-endian elements of `dt`:
// in place when `bytes` is aligned for the dtype, else copied into an allocation *t owns. Fails
// with non_finite_number (path "NAME[i]", the flat index) for a NaN or an infinity, as JSON
// refuses them, or out_of_memory.
bool codec_tensor_from_bytes(api_tensor *t, const char *bytes, conv_dtype dt, const char *name,
                             api_error *err);

// Runs one request of a v1 route: `body` is JSON or safetensors (`in`), `op_from_path` the
// route's op (NULL on the command line), `accept` picks the answer's format. Always fills `out`:
// the result, or the v1 error JSON (errors are JSON whatever the formats).
void codec_v1_run(api_response *out, codec_format in, const char *body, size_t len,
                  const char *accept, const char *op_from_path, const api_options *opt);

#endif
