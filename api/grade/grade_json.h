// grade_json: the grading front door's JSON, bytes in and an api_response out, the way
// codec_run_json answers v1 requests (same signature, same error JSON), for `convd check` /
// POST /v1/conv2d/check and `convd problem` / POST /v1/conv2d/problem, for every op of the
// family (a problem's "op"). docs/GRADING.md has the request and response formats.
#ifndef GRADE_JSON_H
#define GRADE_JSON_H

#include <stddef.h>

#include "api/api.h"

// Most cases one check request may hold.
#define GRADE_MAX_CASES 256

// Grades {"problem", "submission", "format", ...} or {"cases": [...], "format", ...}. A wrong
// submission is a normal answer (200); errors are the spec's error JSON (400/422) for a body
// that cannot be graded. `op_from_path` must be NULL or "conv2d.check" (the route's op).
void grade_json_check(api_response *out, const char *body, size_t len, const char *op_from_path,
                      const api_options *opt);

// The same, with the report format `format` ("convd", "gradescope", "prairielearn", "html")
// in place of the body's (NULL: the body's). The html format answers text/html.
void grade_json_check_as(api_response *out, const char *body, size_t len,
                       const char *op_from_path, const api_options *opt, const char *format);

// Generates problems: from a generator spec {"seed", "x_shape", "w_shape", ...} or a suite
// {"suite", "seed", "index"?}, answering {"problems": [{"name", "spec", "problem"}, ...]} where
// "problem" holds the v1 fields with explicit tensors. `op_from_path` must be NULL or
// "conv2d.problem".
void grade_json_problem(api_response *out, const char *body, size_t len, const char *op_from_path,
                        const api_options *opt);

#endif
