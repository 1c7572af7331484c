// api_validate: the checks every front door shares, from a decoded api_request to a plan that
// core can run: the op (body or URL), which inputs and outputs, ranks and shapes against each
// other, the geometry (through conv_geom_check), and the request limits. Failures name the
// values involved and point at the request field to fix (see docs/ERRORS.md).
#ifndef API_VALIDATE_H
#define API_VALIDATE_H

#include "api/api.h"
#include "api/api_model.h"

// `op_from_path` is the op the front door's URL names, or NULL. Returns false with err filled
// when the request cannot run.
bool api_validate(api_plan *plan, const api_request *req, const char *op_from_path,
                  const api_options *opt, api_error *err);

#endif
