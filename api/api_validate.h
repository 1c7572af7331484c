// api_validate: the checks every front door shares, from a decoded api_request to a plan that
// core can run: the op (body or URL), which inputs and outputs, ranks and shapes against each
// other, the geometry (through conv_geom_check), and the request limits. Failures name the
// values involved and point at the request field to fix (see docs/ERRORS.md).
#ifndef API_VALIDATE_H
#define API_VALIDATE_H

#include "api/api.h"
#include "api/api_model.h"

typedef struct {
    const api_op *op;
    conv_geom geom;   // rank 2 and 3 requests are run as N = 1 (and C = F = 1 for rank 2)
    int rank;         // of x (2, 3 or 4); every output comes back in this rank
    unsigned outputs; // API_BIT(API_OUT_*) to compute
    int64_t flops;    // all passes together
    conv_algorithm algorithm; // what runs: direct or winograd (conv_pick_algorithm)
} api_plan;

// `op_from_path` is the op the front door's URL names, or NULL. Returns false with err filled
// when the request cannot run.
bool api_validate(api_plan *plan, const api_request *req, const char *op_from_path,
                  const api_options *opt, api_error *err);

#endif
