// codec_safetensors: v1 requests and responses as safetensors (Content-Type:
// application/octet-stream). A body is an 8-byte little-endian header length N, N bytes of JSON
// header {"NAME": {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {...}}, then
// the tensors' bytes. Requests carry the tensors x, w, b, dy (F32 or F64, all one dtype; the
// dtype is the request's) and the other v1 fields in __metadata__, each a string holding the
// field's JSON value ("padding": "[1, 0, 2, 1]", "stride": "2") or, for string fields, the bare
// string ("op": "conv2d.backward", "padding": "same"). Responses carry the outputs and, in
// __metadata__, the v1 response's meta. See docs/PROTOCOLS.md.
//
// Decoding enforces every rule of the reference reader (huggingface/safetensors): a body shorter
// than 8 bytes, a header over 100,000,000 bytes or past the body's end, a header that is not
// UTF-8 JSON starting with '{', a tensor entry without a known dtype, a shape of sizes or a pair
// of offsets, duplicate names, offsets that overlap, leave gaps or run backwards, a byte range
// that is not numel * dtype size (numel overflow-checked), a body longer or shorter than
// 8 + N + the last offset, and __metadata__ values that are not strings. Those are 400s
// (invalid_json: the body cannot be read); what the file says that convd cannot take (other
// dtypes, unknown names, bad parameters) is a 422 with the v1 codes.
#ifndef CODEC_SAFETENSORS_H
#define CODEC_SAFETENSORS_H

#include <stdbool.h>
#include <stddef.h>

#include "api/api_buf.h"
#include "api/api_exec.h"
#include "api/api_model.h"
#include "api/api_validate.h"

#define CODEC_SAFETENSORS_MAX_HEADER 100000000 // the reference reader's limit, in bytes

// Decodes `len` bytes into *req (initialised with api_request_init; the caller frees it with
// api_request_free, also after a failure). Tensors aligned in `body` point into it, so `body`
// must outlive *req's use; misaligned ones are copied (see codec.h).
bool codec_safetensors_decode(api_request *req, const char *body, size_t len, api_error *err);

// Appends the safetensors response for a computed result: the outputs in the request's dtype,
// the meta (op, dtype, elapsed_ms, threads, flops, the layer as applied, algorithm) in
// __metadata__, the header padded with spaces so that every tensor starts 8-byte aligned.
void codec_safetensors_put_result(api_buf *out, const api_request *req, const api_plan *plan,
                                  const api_result *res);

#endif
