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

// Allocates and computes every output of the plan into *res (which the caller frees with
// api_result_free, also after a failure). Fails only for the server's own reasons (no memory,
// no thread): internal_error.
bool api_execute(api_result *res, const api_request *req, const api_plan *plan,
                 const api_options *opt, api_error *err);
void api_result_free(api_result *res);

#endif
