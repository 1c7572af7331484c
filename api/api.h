// api: the v1 request model shared by every front door (command line, HTTP JSON, binary).
// Pure functions: bytes in, bytes out. See ../shared/spec/api-v1.md for the contract.
#ifndef API_H
#define API_H

#include <stddef.h>
#include <stdint.h>

// Per-request limits and execution settings; api_options_default() fills the defaults.
typedef struct {
    int64_t max_elements;     // largest element count of any one tensor, in or out
    int64_t max_flops;        // largest work of one request (all passes), in FLOPs
    size_t workspace_cap;     // scratch cap per request (bytes)
    int threads;              // threads a request's passes may use
} api_options;

void api_options_default(api_options *opt);

// One answer: an HTTP-style status (200, 400, 413, 415, 422, 500, ...), a heap-allocated body
// the caller frees with free(), and its content type (a static string).
typedef struct {
    int status;
    char *body;
    size_t len;
    const char *content_type;
} api_response;

// Runs one v1 JSON request. `op_from_path` ("conv2d.forward", "conv2d.backward", or NULL on
// the command line, where the body must name the op) must match the body's "op" when both are
// given. Never fails to produce a response: errors come back as the spec's error JSON.
void api_run_json(api_response *out, const char *body, size_t len, const char *op_from_path,
                  const api_options *opt);

#endif
