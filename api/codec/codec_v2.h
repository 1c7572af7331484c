// codec_v2: the Open Inference Protocol v2 (KServe's, and Triton's with its binary tensor
// extension), so that existing tensor-serving clients call convd unchanged. Each op is a model,
// "<family>_<pass>": conv2d_forward, conv1d_backward, conv_transpose3d_forward, ... An infer
// request
//   {"id"?, "parameters"?: {...}, "inputs": [{"name", "shape", "datatype", "data" | "parameters":
//    {"binary_data_size": n}}], "outputs"?: [{"name", "parameters"?: {"binary_data": bool}}]}
// becomes the same api_request as a v1 body: inputs x, w, b, dy (FP32 or FP64, all one); the
// layer's parameters as scalars in the request's "parameters": stride, dilation, padding and
// output_padding each one integer for every axis ("stride") or one per axis of the family
// ("stride_d", "stride_h", "stride_w"; the 1-d families have the plain name only), padding also
// "same"/"valid" or conv2d's pad_top, pad_bottom, pad_left, pad_right; groups, padding_mode,
// algorithm; "outputs" picks backward's outputs. Binary inputs follow the JSON header, whose
// length the Inference-Header-Content-Length header gives, in input order. Errors are
// {"error": "<message>"} (with "code" and "path" as in v1, the path in v2 terms). See
// docs/PROTOCOLS.md.
#ifndef CODEC_V2_H
#define CODEC_V2_H

#include <stddef.h>

#include "api/api.h"

#define CODEC_V2_MODEL_VERSION "1"

// The model of an op: "conv2d.forward" -> "conv2d_forward" into buf.
const char *codec_v2_model_name(char *buf, size_t cap, const char *op);

// Runs one infer request for `op`'s model. `header_length` is Inference-Header-Content-Length
// as sent ("" or NULL when absent: the whole body is JSON). Always fills `out`: the response,
// as application/json, or as application/octet-stream when an output is binary (the JSON
// header, then the binary outputs in order; codec_v2_header_length() finds the split), or the
// error body. Binary inputs aligned in `body` are used in place (see api/codec/codec.h).
void codec_v2_infer(api_response *out, const char *body, size_t len, const char *header_length,
                    const char *op, const api_options *opt);

// The length of the JSON object that starts `body` (a binary v2 response's header, for its
// Inference-Header-Content-Length); `len` when the body is not one followed by bytes.
size_t codec_v2_header_length(const char *body, size_t len);

// Rewrites a v1 error body ({"error": {"code", "message", "path"}}: what the server's own
// refusals, 404 to 503, carry) into the v2 form {"error": "<message>", "code", "path"}. Any other
// body is left alone. Without memory the body stays as it was.
void codec_v2_restyle_error(api_response *resp);

// GET /v2: {"name", "version", "extensions": ["binary_tensor_data"]}.
void codec_v2_server_metadata(api_response *out, const char *version);
// GET /v2/models/{model}: the model's inputs and outputs (of the family's rank) and the names
// its request parameters take, from the op table. An op that does not exist is answered as an
// unknown_op error.
void codec_v2_model_metadata(api_response *out, const char *op);
// GET /v2/models/{model}/ready: {"name", "ready": true}.
void codec_v2_model_ready(api_response *out, const char *op);

#endif
