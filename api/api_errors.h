// api_errors: the spec's error object {"code", "message", "path"} and the registry of codes.
// Codes are stable snake_case identifiers with a fixed HTTP status each; docs/ERRORS.md lists
// them all with an example message. Every front door reports failures through api_error, so a
// client sees the same code for the same mistake whichever door it used.
#ifndef API_ERRORS_H
#define API_ERRORS_H

#include <stdbool.h>
#include <stddef.h>

#include "api/api.h"

// X(enum, code, HTTP status). Append new codes; never rename or renumber a released one.
#define API_ERROR_CODES(X)                                                                         \
    X(API_E_INVALID_JSON, "invalid_json", 400)                                                     \
    X(API_E_INVALID_TYPE, "invalid_type", 422)                                                     \
    X(API_E_MISSING_FIELD, "missing_field", 422)                                                   \
    X(API_E_UNKNOWN_FIELD, "unknown_field", 422)                                                   \
    X(API_E_DUPLICATE_FIELD, "duplicate_field", 422)                                               \
    X(API_E_FIELD_NOT_ALLOWED, "field_not_allowed", 422)                                           \
    X(API_E_UNKNOWN_OP, "unknown_op", 422)                                                         \
    X(API_E_OP_MISMATCH, "op_mismatch", 422)                                                       \
    X(API_E_UNSUPPORTED_DTYPE, "unsupported_dtype", 422)                                           \
    X(API_E_INVALID_VALUE, "invalid_value", 422)                                                   \
    X(API_E_UNKNOWN_OUTPUT, "unknown_output", 422)                                                 \
    X(API_E_NON_FINITE_NUMBER, "non_finite_number", 422)                                           \
    X(API_E_VALUE_OUT_OF_RANGE, "value_out_of_range", 422)                                         \
    X(API_E_RAGGED_ARRAY, "ragged_array", 422)                                                     \
    X(API_E_INVALID_SHAPE, "invalid_shape", 422)                                                   \
    X(API_E_DATA_LENGTH_MISMATCH, "data_length_mismatch", 422)                                     \
    X(API_E_SHAPE_MISMATCH, "shape_mismatch", 422)                                                 \
    X(API_E_KERNEL_TOO_LARGE, "kernel_too_large", 422)                                             \
    X(API_E_TOO_MANY_ELEMENTS, "too_many_elements", 422)                                           \
    X(API_E_TOO_MUCH_WORK, "too_much_work", 422)                                                   \
    X(API_E_NOT_FOUND, "not_found", 404)                                                           \
    X(API_E_METHOD_NOT_ALLOWED, "method_not_allowed", 405)                                         \
    X(API_E_BODY_TOO_LARGE, "body_too_large", 413)                                                 \
    X(API_E_UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type", 415)                                 \
    X(API_E_OVERLOADED, "overloaded", 503)                                                         \
    X(API_E_INTERNAL, "internal_error", 500)                                                       \
    X(API_E_UNAUTHORIZED, "unauthorized", 401)                                                     \
    X(API_E_RATE_LIMITED, "rate_limited", 429)                                                     \
    X(API_E_JSON_TOO_COMPLEX, "json_too_complex", 413)                                             \
    X(API_E_OUT_OF_MEMORY, "out_of_memory", 503)                                                   \
    X(API_E_INVALID_HTTP, "invalid_http", 400)                                                     \
    X(API_E_NOT_IMPLEMENTED, "not_implemented", 501)

typedef enum {
#define API_ERROR_ENUM(e, code, status) e,
    API_ERROR_CODES(API_ERROR_ENUM)
#undef API_ERROR_ENUM
        API_E_COUNT
} api_code;

const char *api_code_name(api_code code); // "invalid_json", ...
int api_code_status(api_code code);       // 400, 422, ...

// One failure. `path` points into the request ("w.shape[1]", "padding", "x.data[17]"; "" when
// the whole body is at fault); `message` is a full sentence naming the values involved.
typedef struct {
    api_code code;
    char path[96];
    char message[400];
} api_error;

// Fills *err (when not NULL) and returns false, so that checks read `return api_fail(...)`.
bool api_fail(api_error *err, api_code code, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

// A client-supplied string made safe to quote inside a message: at most `cap - 1` bytes
// (cap >= 8), printable ASCII only (others become '?'), cut with "..." when longer.
const char *api_quote(char *buf, size_t cap, const char *s);

// The spec's error body for *err as an api_response: status from the code, JSON body on the
// heap (the caller frees it). Without memory for the body: status 503, body NULL, len 0.
void api_error_to_response(api_response *out, const api_error *err);

// Convenience for front doors that fail before any request exists (404, 405, 413, ...).
void api_error_refuse(api_response *out, api_code code, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif
