// codec_json: the v1 JSON codec. Decoding fills an api_request from a body (JSON types, field
// names, both tensor forms, every number finite and within the dtype); api_validate() then
// checks the fields against each other. Encoding writes the v1 response.
//
// Non-finite results (a float32 overflow, say) cannot be JSON numbers: they are written as
// null, and meta.warnings says how many there are in which tensor.
#ifndef CODEC_JSON_H
#define CODEC_JSON_H

#include <stdint.h>

#include "api/api_buf.h"
#include "api/api_exec.h"
#include "api/codec/codec_json_parse.h"
#include "api/api_model.h"
#include "api/api_validate.h"

// Decodes `len` bytes into *req (initialised with api_request_init; the caller frees it with
// api_request_free, also after a failure). Fails with invalid_json (400) or a 422 code.
bool codec_json_decode(api_request *req, const char *body, size_t len, api_error *err);

// One tensor of a lifted document as an api_tensor of dtype `dt`: a nested array (shape from
// the nesting) or {"shape": [...], "data": [...]}. `name` starts every error path ("x" gives
// "x.shape[1]", "x.data[7]", "x[0][2]"). On success the tensor owns its data. Exposed for other
// JSON front doors with tensors in them.
bool codec_json_tensor(api_tensor *t, const codec_json_doc *doc, const cJSON *item,
                       const char *name, conv_dtype dt, api_error *err);

// How a JSON value is named in messages: "a string", "a number", "true", "false", "null", "an
// object" or "an array".
const char *codec_json_type_name(const cJSON *item);

// A list of whole numbers (a shape, a stride pair, ...) in a lifted document: a flat array or
// a lone number. `limit` caps how many; *count gets how many were given. Values that are not
// whole numbers (or too large for any size) fail with `bad_value`; other types with
// invalid_type. Errors name `name` ("stride", "stride[1]"). Exposed for other JSON front doors.
bool codec_json_whole_numbers(int64_t *out, int *count, int limit, const codec_json_doc *doc,
                              const cJSON *item, const char *name, const char *expected,
                              api_code bad_value, api_error *err);

// Appends `n` numbers of dtype `dt` as a JSON array, each the shortest text that reads back to
// the same value; non-finite values as null. Returns how many were non-finite.
int64_t codec_json_put_numbers(api_buf *out, const void *data, int64_t n, conv_dtype dt);

// Appends the layer's parameters as applied, one per axis of the op whatever form the request
// used: `,"stride":[...],"dilation":[...],"padding":[both sides of each axis],"groups":G`, and
// `"output_padding":[...]` for a transposed op, `"padding_mode":"..."` for the others. With
// `as_strings` each value is written as a JSON string holding its text (`"stride":"[2,1]"`,
// `"padding_mode":"reflect"`): what safetensors' __metadata__ holds, and what a request's
// __metadata__ reads back to the same layer.
void codec_json_put_layer(api_buf *out, const api_request *req, const api_plan *plan,
                          bool as_strings);

// Appends the v1 response for a computed result: each output as {"shape", "data"}, then meta
// (op, dtype, elapsed_ms, threads, flops, the layer as applied (codec_json_put_layer),
// algorithm, and warnings when any).
void codec_json_put_result(api_buf *out, const api_request *req, const api_plan *plan,
                           const api_result *res);

#endif
