// api (api/): the v1 request model shared by every front door (command line, HTTP JSON, binary),
// as pure functions: bytes in, bytes out. docs/API.md and api/openapi.yaml are the contract.
// This folder owns the model and what every door does with it:
//   api_model.h     the request model (op, dtype, tensors, parameters), the table of ops, a
//                   validated plan and what its outputs' shapes and FLOPs are
//   api_validate.h  the checks every front door shares, giving a plan core can run
//   api_exec.h      running a plan through core (workspace, threads, one pass per output)
//   api_errors.h    error codes, statuses and the error body (docs/ERRORS.md)
//   api_buf.h       the growable byte buffer answers are written into
// Its sub-folders, each depending on this one and core/ only:
//   codec/  the wire formats: v1 JSON (codec_json, with codec_json_parse lifting number arrays
//           out of the text), safetensors, Open Inference Protocol v2; codec.h runs a v1 body
//           whole (codec_run_json, codec_v1_run)
//   num/    exact, fast number parsing and shortest round-trip printing (depends on nothing)
//   grade/  the autograder: its engine on core/ alone, its JSON front door (grade_json) on api/
// A request: api_request_init, fill it from the bytes (a codec), api_validate, api_execute,
// write the result (the codec again).
#ifndef API_H
#define API_H

#include <stddef.h>
#include <stdint.h>

// Whether a request may go on: yes, later (503), never (413), or not here (the caller runs it
// again elsewhere: the HTTP server's small-request lane passing on a big one; any error
// answer is then discarded).
typedef enum { API_ADMIT_OK, API_ADMIT_LATER, API_ADMIT_NEVER, API_ADMIT_MOVE } api_admission;

// Per-request limits and execution settings; api_options_default() fills the defaults.
typedef struct {
    int64_t max_elements;     // largest element count of any one tensor, in or out
    int64_t max_flops;        // largest work of one request (all passes), in FLOPs
    size_t workspace_cap;     // scratch cap per request (bytes)
    int threads;              // threads a request's passes may use
    // Asked once a request is validated, before it allocates what it computes (outputs,
    // scratch, generated tensors, the answer): may it hold `bytes` more and do `flops` of
    // work? NULL admits all (the command line). The HTTP server takes the bytes from its
    // budget (--max-memory) until the request ends.
    api_admission (*admit)(void *ctx, size_t bytes, int64_t flops);
    void *admit_ctx;
} api_options;

// Defaults: max_elements 2^24 (64 MiB of float32), max_flops 5e10, workspace_cap
// CONV_WORKSPACE_CAP_DEFAULT, threads 1.
void api_options_default(api_options *opt);
// `opt`, or `*defaults` filled by api_options_default() when `opt` is NULL (the command line).
const api_options *api_options_or_default(const api_options *opt, api_options *defaults);

// One answer: an HTTP-style status (200, 400, 413, 415, 422, 500, ...), a heap-allocated body
// the caller frees with free(), and its content type (a static string).
typedef struct {
    int status;
    char *body;
    size_t len;
    const char *content_type;
} api_response;

#endif
