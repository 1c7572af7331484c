// api_exec: runs a validated request through core, one pass per requested output, with the
// scratch and threads that api_options allow.
#ifndef API_EXEC_H
#define API_EXEC_H

#include <stddef.h>

#include "api/api.h"
#include "api/api_model.h"

typedef struct {
    api_tensor out[API_OUT_COUNT]; // the outputs computed (rank 0 for the others)
    double elapsed_ms;             // the passes alone, not decoding or encoding
    int threads;
    size_t workspace_bytes;
} api_result;

// Bytes of an answer per number at most: JSON's longest shortest-round-trip double (24
// characters, "-2.2250738585072014e-308") and a separator.
#define API_JSON_NUMBER_BYTES 25

// What a validated request holds while it runs, beyond its decoded inputs: its outputs, the
// scratch core will use, and the answer at `answer_number_bytes` per output number.
size_t api_working_set(const api_request *req, const api_plan *plan, const api_options *opt,
                       size_t answer_number_bytes);

// Asks opt->admit for `bytes` and `flops` (true when there is no admit or it says yes). Fails
// with overloaded (503: not now, or moved) or body_too_large (413: never), naming what the
// bytes are for.
bool api_admit(const api_options *opt, size_t bytes, int64_t flops, const char *what,
               api_error *err);

// Allocates and computes every output of the plan into *res (which the caller frees with
// api_result_free, also after a failure). Fails only for the server's own reasons (no memory,
// no thread): internal_error.
bool api_execute(api_result *res, const api_request *req, const api_plan *plan,
                 const api_options *opt, api_error *err);
void api_result_free(api_result *res);

#endif
